/* SPDX-License-Identifier: MIT */
/*
 * Bounded growable buffer. Growth doubles; the maximum protects every buffer filled from
 * the network against a hostile or broken peer.
 */
#include "core/buf.h"

#include <stdio.h>
#include <string.h>

#include "core/mem.h"

void es_buf_init(struct es_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void es_buf_release(struct es_buf *b)
{
    if (!b) {
        return;
    }
    es_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void es_buf_reset(struct es_buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

int es_buf_reserve(struct es_buf *b, size_t n)
{
    if (b->max && (n > b->max || b->len > b->max - n)) {
        return ES_ENOMEM;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap) {
        return ES_OK;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    if (b->max && cap > b->max + 1) {
        cap = b->max + 1;
    }
    b->data = es_xrealloc(b->data, cap);
    b->cap = cap;
    return ES_OK;
}

int es_buf_append(struct es_buf *b, const void *p, size_t n)
{
    int rc = es_buf_reserve(b, n);
    if (rc) {
        return rc;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return ES_OK;
}

int es_buf_puts(struct es_buf *b, const char *s)
{
    return es_buf_append(b, s, strlen(s));
}

int es_buf_putc(struct es_buf *b, char c)
{
    return es_buf_append(b, &c, 1);
}

int es_buf_vprintf(struct es_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return ES_EINVAL;
    }
    if ((size_t)n < sizeof small) {
        return es_buf_append(b, small, (size_t)n);
    }
    int rc = es_buf_reserve(b, (size_t)n);
    if (rc) {
        return rc;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return ES_OK;
}

int es_buf_printf(struct es_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = es_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int es_buf_json_str(struct es_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = es_buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n && rc == ES_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        rc = es_buf_append(b, s + i - run, run);
        run = 0;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (rc == ES_OK) {
            rc = es_buf_append(b, esc, elen);
        }
    }
    if (rc == ES_OK) {
        rc = es_buf_append(b, s + n - run, run);
    }
    if (rc == ES_OK) {
        rc = es_buf_putc(b, '"');
    }
    return rc;
}

char *es_buf_detach(struct es_buf *b, size_t *len)
{
    char *p = b->data ? b->data : es_xstrdup("");
    if (len) {
        *len = b->len;
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
