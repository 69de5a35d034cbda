/* SPDX-License-Identifier: MIT */
/*
 * The connectors' bounded XML scanner (contract in http_xml.h). It understands exactly as
 * much XML as SOAP notifications and EDMX need: elements, attributes, character references
 * and CDATA. No DTD or entity expansion is ever performed.
 */
#include <string.h>

#include "connectors/http_xml.h"

static const char *skip_past(const char *p, const char *end, const char *pat)
{
    size_t n = strlen(pat);
    while (p + n <= end) {
        if (memcmp(p, pat, n) == 0) {
            return p + n;
        }
        p++;
    }
    return NULL;
}

static int is_name_char(char c)
{
    return c && !strchr(" \t\r\n/>=", c);
}

/* After "<name ...", finds the end of the start tag honouring quoted values. */
static const char *tag_end(const char *p, const char *end)
{
    char q = 0;
    for (; p < end; p++) {
        if (q) {
            if (*p == q) {
                q = 0;
            }
        } else if (*p == '"' || *p == '\'') {
            q = *p;
        } else if (*p == '>') {
            return p;
        }
    }
    return NULL;
}

#define XML_MAX_DEPTH 64

static int next_elem(const char *p, const char *end, struct es_xml_elem *e, int depth)
{
    if (depth > XML_MAX_DEPTH) {
        return -1;
    }
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || lt + 1 >= end) {
            return 0;
        }
        if (lt[1] == '?') {
            p = skip_past(lt, end, "?>");
        } else if (end - lt >= 4 && memcmp(lt, "<!--", 4) == 0) {
            p = skip_past(lt, end, "-->");
        } else if (end - lt >= 9 && memcmp(lt, "<![CDATA[", 9) == 0) {
            p = skip_past(lt, end, "]]>");
        } else if (lt[1] == '!') {
            p = skip_past(lt, end, ">");
        } else if (lt[1] == '/') {
            return 0; /* the parent's closing tag: no more children */
        } else {
            const char *n = lt + 1;
            const char *ne = n;
            while (ne < end && is_name_char(*ne)) {
                ne++;
            }
            if (ne == n) {
                return -1;
            }
            const char *gt = tag_end(ne, end);
            if (!gt) {
                return -1;
            }
            e->name = n;
            e->name_len = (size_t)(ne - n);
            e->attrs = ne;
            e->attrs_len = (size_t)(gt - ne);
            if (gt > ne && gt[-1] == '/') {
                e->attrs_len--;
                e->inner = gt + 1;
                e->inner_len = 0;
                e->next = gt + 1;
                return 1;
            }
            /* Walk children until our closing tag. */
            const char *c = gt + 1;
            for (;;) {
                struct es_xml_elem child;
                int rc = next_elem(c, end, &child, depth + 1);
                if (rc < 0) {
                    return -1;
                }
                if (rc == 0) {
                    /* c is at "</" of our end tag (or at the end of input) */
                    const char *close = c;
                    for (;;) {
                        close = memchr(close, '<', (size_t)(end - close));
                        if (!close) {
                            return -1;
                        }
                        if (end - close >= 9 && memcmp(close, "<![CDATA[", 9) == 0) {
                            close = skip_past(close, end, "]]>");
                            if (!close) {
                                return -1;
                            }
                            continue;
                        }
                        if (end - close >= 4 && memcmp(close, "<!--", 4) == 0) {
                            close = skip_past(close, end, "-->");
                            if (!close) {
                                return -1;
                            }
                            continue;
                        }
                        break;
                    }
                    if (close[1] != '/' || (size_t)(end - close) < e->name_len + 3 ||
                        memcmp(close + 2, e->name, e->name_len) != 0) {
                        return -1;
                    }
                    const char *ce = tag_end(close + 2 + e->name_len, end);
                    if (!ce) {
                        return -1;
                    }
                    e->inner = gt + 1;
                    e->inner_len = (size_t)(close - (gt + 1));
                    e->next = ce + 1;
                    return 1;
                }
                c = child.next;
            }
        }
        if (!p) {
            return -1;
        }
    }
    return 0;
}

int es_xml_next(const char *p, const char *end, struct es_xml_elem *e)
{
    return next_elem(p, end, e, 0);
}

static int local_eq(const char *name, size_t len, const char *local)
{
    const char *colon = memchr(name, ':', len);
    if (colon) {
        len -= (size_t)(colon + 1 - name);
        name = colon + 1;
    }
    return strlen(local) == len && memcmp(name, local, len) == 0;
}

int es_xml_is(const struct es_xml_elem *e, const char *local)
{
    return local_eq(e->name, e->name_len, local);
}

int es_xml_text(const char *s, size_t n, struct es_buf *out)
{
    const char *end = s + n;
    while (s < end) {
        if (end - s >= 9 && memcmp(s, "<![CDATA[", 9) == 0) {
            const char *ce = skip_past(s + 9, end, "]]>");
            if (!ce) {
                return ES_EINVAL;
            }
            if (es_buf_append(out, s + 9, (size_t)(ce - 3 - (s + 9))) != ES_OK) {
                return ES_ENOMEM;
            }
            s = ce;
            continue;
        }
        if (*s != '&') {
            if (es_buf_putc(out, *s) != ES_OK) {
                return ES_ENOMEM;
            }
            s++;
            continue;
        }
        const char *semi = memchr(s, ';', (size_t)(end - s));
        if (!semi || semi - s > 10) {
            return ES_EINVAL;
        }
        size_t len = (size_t)(semi - s - 1);
        const char *ent = s + 1;
        unsigned long cp = 0;
        if (len == 3 && memcmp(ent, "amp", 3) == 0) {
            cp = '&';
        } else if (len == 2 && memcmp(ent, "lt", 2) == 0) {
            cp = '<';
        } else if (len == 2 && memcmp(ent, "gt", 2) == 0) {
            cp = '>';
        } else if (len == 4 && memcmp(ent, "quot", 4) == 0) {
            cp = '"';
        } else if (len == 4 && memcmp(ent, "apos", 4) == 0) {
            cp = '\'';
        } else if (len >= 2 && ent[0] == '#') {
            int hex = ent[1] == 'x' || ent[1] == 'X';
            for (const char *d = ent + 1 + hex; d < semi; d++) {
                int v;
                if (*d >= '0' && *d <= '9') {
                    v = *d - '0';
                } else if (hex && *d >= 'a' && *d <= 'f') {
                    v = *d - 'a' + 10;
                } else if (hex && *d >= 'A' && *d <= 'F') {
                    v = *d - 'A' + 10;
                } else {
                    return ES_EINVAL;
                }
                cp = cp * (hex ? 16u : 10u) + (unsigned long)v;
                if (cp > 0x10FFFF) {
                    return ES_EINVAL;
                }
            }
            if (cp == 0) {
                return ES_EINVAL;
            }
        } else {
            return ES_EINVAL;
        }
        char u[4];
        size_t un;
        if (cp < 0x80) {
            u[0] = (char)cp;
            un = 1;
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            un = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | (cp >> 12));
            u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            un = 3;
        } else {
            u[0] = (char)(0xF0 | (cp >> 18));
            u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            un = 4;
        }
        if (es_buf_append(out, u, un) != ES_OK) {
            return ES_ENOMEM;
        }
        s = semi + 1;
    }
    return ES_OK;
}

int es_xml_attr(const struct es_xml_elem *e, const char *name, struct es_buf *out)
{
    const char *p = e->attrs;
    const char *end = e->attrs + e->attrs_len;
    while (p < end) {
        while (p < end && strchr(" \t\r\n", *p)) {
            p++;
        }
        const char *n = p;
        while (p < end && *p != '=' && !strchr(" \t\r\n", *p)) {
            p++;
        }
        size_t nlen = (size_t)(p - n);
        while (p < end && strchr(" \t\r\n", *p)) {
            p++;
        }
        if (p >= end || *p != '=') {
            return 0;
        }
        p++;
        while (p < end && strchr(" \t\r\n", *p)) {
            p++;
        }
        if (p >= end || (*p != '"' && *p != '\'')) {
            return 0;
        }
        char q = *p++;
        const char *v = p;
        while (p < end && *p != q) {
            p++;
        }
        if (p >= end) {
            return 0;
        }
        int match = (strlen(name) == nlen && memcmp(n, name, nlen) == 0) ||
                    (!strchr(name, ':') && local_eq(n, nlen, name));
        if (match) {
            es_buf_reset(out);
            return es_xml_text(v, (size_t)(p - v), out) == ES_OK;
        }
        p++;
    }
    return 0;
}

int es_xml_find(const char *p, const char *end, const char *local, struct es_xml_elem *e)
{
    struct es_xml_elem c;
    while (p < end && es_xml_next(p, end, &c) == 1) {
        if (es_xml_is(&c, local)) {
            *e = c;
            return 1;
        }
        if (c.inner_len && es_xml_find(c.inner, c.inner + c.inner_len, local, e)) {
            return 1;
        }
        p = c.next;
    }
    return 0;
}
