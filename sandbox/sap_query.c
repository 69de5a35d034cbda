/* SPDX-License-Identifier: MIT */
/*
 * OData v2 values and query options for the SAP emulator: payload <-> stored values per Edm
 * type ("/Date(ms)/", decimals as strings with the property's scale), key predicates, a
 * $filter compiler and evaluator (eq ne gt ge lt le and or not, parentheses, string/number/
 * datetime/datetimeoffset/guid/time/boolean/null literals, substringof startswith endswith
 * tolower toupper length trim) and $orderby sorting.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "sap_int.h"

/* ---- dates ---- */

static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + doe - 719468;
}

int sap_parse_iso(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) {
        return -1;
    }
    const char *p = s + 10;
    int64_t frac = 0;
    if (*p == 'T') {
        n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5) {
            return -1;
        }
        p += 6;
        if (*p == ':') {
            if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2])) {
                return -1;
            }
            se = (p[1] - '0') * 10 + (p[2] - '0');
            p += 3;
            if (*p == '.') {
                p++;
                int digits = 0;
                while (isdigit((unsigned char)*p)) {
                    if (digits < 3) {
                        frac = frac * 10 + (*p - '0');
                    }
                    digits++;
                    p++;
                }
                for (; digits < 3; digits++) {
                    frac *= 10;
                }
            }
        }
    }
    int64_t off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5) {
            return -1;
        }
        off = (int64_t)(oh * 60 + om) * 60000 * (*p == '-' ? -1 : 1);
        p += 6;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59) {
        return -1;
    }
    *ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000 + frac) - off;
    return 0;
}

void sap_iso(int64_t ms, char *out, size_t cap, int frac7)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int rem = (int)(ms - (int64_t)t * 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (frac7) {
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03d0000Z", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rem);
    } else {
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
}

static int parse_msdate(const char *s, int64_t *ms)
{
    if (strncmp(s, "/Date(", 6) != 0) {
        return -1;
    }
    char *end = NULL;
    long long v = strtoll(s + 6, &end, 10);
    if (end == s + 6) {
        return -1;
    }
    if (*end == '+' || *end == '-') {
        char *e2 = NULL;
        long off = strtol(end + 1, &e2, 10);
        if (e2 == end + 1) {
            return -1;
        }
        (void)off; /* the ms value is UTC; the offset only tells how to display it */
        end = e2;
    }
    if (strcmp(end, ")/") != 0) {
        return -1;
    }
    *ms = v;
    return 0;
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

/* Normalises a decimal string to the scale; -1 when not a decimal or too large. */
static int norm_decimal(const char *s, int prec, int scale, char *out, size_t cap)
{
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    const char *ip = p;
    while (isdigit((unsigned char)*p)) {
        p++;
    }
    size_t ilen = (size_t)(p - ip);
    const char *fp = "";
    size_t flen = 0;
    if (*p == '.') {
        fp = ++p;
        while (isdigit((unsigned char)*p)) {
            p++;
        }
        flen = (size_t)(p - fp);
    }
    if (*p || (ilen == 0 && flen == 0)) {
        return -1;
    }
    while (ilen > 1 && *ip == '0') {
        ip++;
        ilen--;
    }
    if (ilen == 0) {
        ip = "0";
        ilen = 1;
    }
    for (size_t i = (size_t)scale; i < flen; i++) {
        if (fp[i] != '0') {
            return -1;
        }
    }
    if (prec && (int)ilen > prec - scale && !(ilen == 1 && *ip == '0')) {
        return -1;
    }
    struct es_buf b;
    es_buf_init(&b, 0);
    es_buf_printf(&b, "%s%.*s", neg ? "-" : "", (int)ilen, ip);
    if (scale > 0) {
        es_buf_putc(&b, '.');
        for (int i = 0; i < scale; i++) {
            es_buf_putc(&b, (size_t)i < flen ? fp[i] : '0');
        }
    }
    int rc = b.len < cap ? 0 : -1;
    if (rc == 0) {
        memcpy(out, b.data, b.len + 1);
    }
    es_buf_release(&b);
    return rc;
}

json_t *sap_value_in(const struct sap_prop *p, json_t *v, char *why, size_t whycap)
{
    if (json_is_null(v)) {
        if (p->flags & (P_KEY | P_NN)) {
            snprintf(why, whycap, "Property '%s' must not be null", p->name);
            return NULL;
        }
        return p->type == T_STR ? json_string("") : json_null();
    }
    switch (p->type) {
    case T_STR:
    case T_GUID:
    case T_TIME:
        if (!json_is_string(v)) {
            snprintf(why, whycap, "Property '%s' expects a string", p->name);
            return NULL;
        }
        if (p->type == T_STR && p->len && utf8_len(json_string_value(v)) > (size_t)p->len) {
            snprintf(why, whycap, "Value '%.60s' of property '%s' exceeds the maximum length of %d",
                     json_string_value(v), p->name, p->len);
            return NULL;
        }
        return json_incref(v);
    case T_DEC: {
        char buf[80];
        char num[64];
        if (json_is_string(v)) {
            snprintf(buf, sizeof buf, "%s", json_string_value(v));
        } else if (json_is_integer(v)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        } else if (json_is_real(v)) {
            snprintf(buf, sizeof buf, "%.*f", p->scale, json_real_value(v));
        } else {
            snprintf(why, whycap, "Property '%s' expects a decimal string", p->name);
            return NULL;
        }
        if (norm_decimal(buf, p->len, p->scale, num, sizeof num) != 0) {
            snprintf(why, whycap, "Value '%.40s' is not a valid Edm.Decimal(%d,%d) for '%s'", buf,
                     p->len, p->scale, p->name);
            return NULL;
        }
        return json_string(num);
    }
    case T_BOOL:
        if (!json_is_boolean(v)) {
            snprintf(why, whycap, "Property '%s' expects true or false", p->name);
            return NULL;
        }
        return json_incref(v);
    case T_INT:
        if (!json_is_integer(v)) {
            snprintf(why, whycap, "Property '%s' expects an integer", p->name);
            return NULL;
        }
        return json_incref(v);
    case T_DATE:
    case T_DTO: {
        int64_t ms;
        const char *s = json_string_value(v);
        if (s && parse_msdate(s, &ms) == 0) {
            return json_integer(ms);
        }
        if (s && p->type == T_DTO && sap_parse_iso(s, &ms) == 0) {
            return json_integer(ms);
        }
        snprintf(why, whycap, "Invalid value '%.40s' for property '%s': use \"/Date(ms)/\"",
                 s ? s : "(not a string)", p->name);
        return NULL;
    }
    }
    return NULL;
}

json_t *sap_value_out(const struct sap_prop *p, json_t *v)
{
    switch (p->type) {
    case T_DATE:
    case T_DTO:
        if (!json_is_integer(v)) {
            return json_null();
        }
        {
            char b[48];
            snprintf(b, sizeof b, p->type == T_DTO ? "/Date(%lld+0000)/" : "/Date(%lld)/",
                     (long long)json_integer_value(v));
            return json_string(b);
        }
    case T_BOOL:
        return json_boolean(json_is_true(v));
    case T_STR:
        return json_is_string(v) ? json_incref(v) : json_string("");
    case T_DEC:
        if (json_is_string(v)) {
            return json_incref(v);
        }
        {
            char b[40];
            snprintf(b, sizeof b, "%.*f", p->scale, 0.0);
            return json_string(b);
        }
    case T_TIME:
        return json_is_string(v) ? json_incref(v) : json_string("PT00H00M00S");
    case T_GUID:
    case T_INT:
        break;
    }
    return v ? json_incref(v) : json_null();
}

/* The literal form of a key value. */
static void key_literal(struct es_buf *b, const struct sap_prop *p, json_t *v)
{
    if (p->type == T_DATE || p->type == T_DTO) {
        char iso[40];
        sap_iso(json_integer_value(v), iso, sizeof iso, 0);
        es_buf_printf(b, "%s'%s'", p->type == T_DATE ? "datetime" : "datetimeoffset", iso);
        return;
    }
    es_buf_putc(b, '\'');
    for (const char *s = json_string_value(v) ? json_string_value(v) : ""; *s; s++) {
        if (*s == '\'') {
            es_buf_puts(b, "''");
        } else {
            es_buf_putc(b, *s);
        }
    }
    es_buf_putc(b, '\'');
}

void sap_key_pred(struct es_buf *b, const struct sap_set *s, json_t *e)
{
    struct es_buf lit;
    es_buf_init(&lit, 0);
    int n = sap_nkeys(s);
    es_buf_putc(b, '(');
    for (int i = 0; i < n; i++) {
        const struct sap_prop *k = sap_key(s, i);
        es_buf_reset(&lit);
        key_literal(&lit, k, json_object_get(e, k->name));
        if (n > 1) {
            es_buf_printf(b, "%s%s=", i ? "," : "", k->name);
        }
        for (const char *q = lit.data; *q; q++) {
            unsigned char ch = (unsigned char)*q;
            if (isalnum(ch) || strchr("-._~'=,:()!*$@;", ch)) {
                es_buf_putc(b, (char)ch);
            } else {
                es_buf_printf(b, "%%%02X", ch);
            }
        }
    }
    es_buf_putc(b, ')');
    es_buf_release(&lit);
}

char *sap_key_str(const struct sap_set *s, json_t *e)
{
    struct es_buf b;
    es_buf_init(&b, 0);
    for (int i = 0; i < sap_nkeys(s); i++) {
        json_t *v = json_object_get(e, sap_key(s, i)->name);
        if (i) {
            es_buf_putc(&b, '\t');
        }
        if (json_is_integer(v)) {
            es_buf_printf(&b, "%lld", (long long)json_integer_value(v));
        } else if (json_is_string(v)) {
            es_buf_puts(&b, json_string_value(v));
        }
    }
    if (!b.data) {
        es_buf_puts(&b, "");
    }
    return es_buf_detach(&b, NULL);
}

/* Parses one literal at *pp: 'x', datetime'..', datetimeoffset'..', number. */
static json_t *parse_key_value(const struct sap_prop *p, const char **pp)
{
    const char *s = *pp;
    const char *q = s;
    while (isalpha((unsigned char)*q)) {
        q++;
    }
    if (*q == '\'') {
        size_t plen = (size_t)(q - s);
        struct es_buf b;
        es_buf_init(&b, 0);
        es_buf_puts(&b, "");
        q++;
        for (;;) {
            if (!*q) {
                es_buf_release(&b);
                return NULL;
            }
            if (*q == '\'') {
                if (q[1] == '\'') {
                    es_buf_putc(&b, '\'');
                    q += 2;
                    continue;
                }
                q++;
                break;
            }
            es_buf_putc(&b, *q++);
        }
        *pp = q;
        json_t *out = NULL;
        if (p->type == T_DATE || p->type == T_DTO) {
            int64_t ms;
            if (plen && sap_parse_iso(b.data, &ms) == 0) {
                out = json_integer(ms);
            }
        } else if (plen == 0 || (p->type == T_GUID && plen == 4)) {
            out = json_string(b.data);
        }
        es_buf_release(&b);
        return out;
    }
    if (p->type == T_STR) {
        /* SAP accepts unquoted numeric keys for strings only in some services: refuse. */
        return NULL;
    }
    return NULL;
}

int sap_key_parse(const struct sap_set *s, const char *pred, json_t **keys, char *why, size_t cap)
{
    json_t *k = json_object();
    int n = sap_nkeys(s);
    const char *p = pred;
    for (int i = 0; i < n; i++) {
        const struct sap_prop *kp = sap_key(s, i);
        if (n > 1 || strchr(p, '=')) {
            const char *eq = strchr(p, '=');
            if (!eq) {
                goto bad;
            }
            char name[64];
            size_t nl = (size_t)(eq - p);
            if (nl >= sizeof name) {
                goto bad;
            }
            memcpy(name, p, nl);
            name[nl] = '\0';
            kp = sap_prop_find(s, name);
            if (!kp || !(kp->flags & P_KEY)) {
                snprintf(why, cap, "Invalid key predicate: '%s' is not a key of %s", name, s->name);
                json_decref(k);
                return -1;
            }
            p = eq + 1;
        }
        json_t *v = parse_key_value(kp, &p);
        if (!v) {
            goto bad;
        }
        json_object_set_new(k, kp->name, v);
        if (*p == ',') {
            p++;
        }
    }
    if (*p || (int)json_object_size(k) != n) {
        goto bad;
    }
    *keys = k;
    return 0;
bad:
    snprintf(why, cap, "Invalid key predicate '(%.80s)' for entity set %s", pred, s->name);
    json_decref(k);
    return -1;
}

/* ---- $filter ---- */

enum vk { VK_NULL, VK_STR, VK_NUM, VK_TIME, VK_BOOL };
struct val {
    enum vk k;
    double n;
    int64_t t;
    int b;
    const char *s;
    char *owned;
};

enum nk { NK_OR, NK_AND, NK_NOT, NK_CMP, NK_LIT, NK_PROP, NK_FN };
enum cmpop { C_EQ, C_NE, C_GT, C_GE, C_LT, C_LE };
enum fn { F_SUBSTRINGOF, F_STARTSWITH, F_ENDSWITH, F_TOLOWER, F_TOUPPER, F_LENGTH, F_TRIM };

struct fnode {
    enum nk k;
    int op;
    int a, b; /* child indexes */
    struct val lit;
    const struct sap_prop *prop;
};

#define MAXNODES 256

struct sap_filter {
    const struct sap_set *set;
    int n;
    int root;
    struct fnode nodes[MAXNODES];
    char *strings; /* literal text storage */
    size_t slen, scap;
    const char *p; /* parse cursor */
    char *why;
    size_t whycap;
    int failed;
};

static int fail(struct sap_filter *f, const char *msg)
{
    if (!f->failed) {
        snprintf(f->why, f->whycap, "Invalid filter expression: %s near '%.40s'", msg, f->p);
    }
    f->failed = 1;
    return -1;
}

static int node(struct sap_filter *f, enum nk k)
{
    if (f->n >= MAXNODES) {
        return fail(f, "expression too long");
    }
    memset(&f->nodes[f->n], 0, sizeof f->nodes[0]);
    f->nodes[f->n].k = k;
    f->nodes[f->n].a = f->nodes[f->n].b = -1;
    return f->n++;
}

static void skip_ws(struct sap_filter *f)
{
    while (*f->p == ' ' || *f->p == '\t') {
        f->p++;
    }
}

static int word(struct sap_filter *f, const char *w)
{
    skip_ws(f);
    size_t n = strlen(w);
    if (strncmp(f->p, w, n) == 0 && !isalnum((unsigned char)f->p[n]) && f->p[n] != '_') {
        f->p += n;
        return 1;
    }
    return 0;
}

static int parse_or(struct sap_filter *f);

/* Copies a quoted literal body (after the opening quote) into literal storage. */
static const char *quoted(struct sap_filter *f)
{
    size_t start = f->slen;
    for (;;) {
        if (!*f->p) {
            fail(f, "unterminated string");
            return NULL;
        }
        char c = *f->p++;
        if (c == '\'') {
            if (*f->p == '\'') {
                f->p++;
            } else {
                break;
            }
        }
        if (f->slen + 2 > f->scap) {
            return NULL; /* cannot happen: storage is as long as the text */
        }
        f->strings[f->slen++] = c;
    }
    f->strings[f->slen++] = '\0';
    return f->strings + start;
}

static int parse_primary(struct sap_filter *f)
{
    skip_ws(f);
    if (*f->p == '(') {
        f->p++;
        int r = parse_or(f);
        skip_ws(f);
        if (*f->p != ')') {
            return fail(f, "')' expected");
        }
        f->p++;
        return r;
    }
    if (*f->p == '\'') {
        f->p++;
        int i = node(f, NK_LIT);
        if (i < 0) {
            return -1;
        }
        const char *s = quoted(f);
        if (!s) {
            return -1;
        }
        f->nodes[i].lit.k = VK_STR;
        f->nodes[i].lit.s = s;
        return i;
    }
    if (isdigit((unsigned char)*f->p) || *f->p == '-') {
        char *end = NULL;
        double d = strtod(f->p, &end);
        if (end == f->p) {
            return fail(f, "number expected");
        }
        f->p = end;
        if (*f->p == 'M' || *f->p == 'm' || *f->p == 'L' || *f->p == 'l' || *f->p == 'd' ||
            *f->p == 'D' || *f->p == 'f' || *f->p == 'F') {
            f->p++;
        }
        int i = node(f, NK_LIT);
        if (i < 0) {
            return -1;
        }
        f->nodes[i].lit.k = VK_NUM;
        f->nodes[i].lit.n = d;
        return i;
    }
    const char *w = f->p;
    while (isalnum((unsigned char)*f->p) || *f->p == '_') {
        f->p++;
    }
    size_t wl = (size_t)(f->p - w);
    if (!wl) {
        return fail(f, "operand expected");
    }
    char name[80];
    if (wl >= sizeof name) {
        return fail(f, "name too long");
    }
    memcpy(name, w, wl);
    name[wl] = '\0';
    if (*f->p == '\'') {
        f->p++;
        const char *s = quoted(f);
        if (!s) {
            return -1;
        }
        int i = node(f, NK_LIT);
        if (i < 0) {
            return -1;
        }
        struct val *v = &f->nodes[i].lit;
        if (strcmp(name, "datetime") == 0 || strcmp(name, "datetimeoffset") == 0) {
            if (sap_parse_iso(s, &v->t) != 0) {
                return fail(f, "bad date/time literal");
            }
            v->k = VK_TIME;
        } else if (strcmp(name, "guid") == 0 || strcmp(name, "time") == 0 ||
                   strcmp(name, "X") == 0 || strcmp(name, "binary") == 0) {
            v->k = VK_STR;
            v->s = s;
        } else {
            return fail(f, "unknown literal type");
        }
        return i;
    }
    if (strcmp(name, "true") == 0 || strcmp(name, "false") == 0) {
        int i = node(f, NK_LIT);
        if (i < 0) {
            return -1;
        }
        f->nodes[i].lit.k = VK_BOOL;
        f->nodes[i].lit.b = name[0] == 't';
        return i;
    }
    if (strcmp(name, "null") == 0) {
        return node(f, NK_LIT);
    }
    skip_ws(f);
    if (*f->p == '(') {
        static const char *const fns[] = {"substringof", "startswith", "endswith", "tolower",
                                          "toupper",     "length",     "trim",     NULL};
        int fi = -1;
        for (int k = 0; fns[k]; k++) {
            if (strcmp(fns[k], name) == 0) {
                fi = k;
            }
        }
        if (fi < 0) {
            return fail(f, "unknown function");
        }
        f->p++;
        int i = node(f, NK_FN);
        if (i < 0) {
            return -1;
        }
        f->nodes[i].op = fi;
        int a = parse_or(f);
        if (a < 0) {
            return -1;
        }
        f->nodes[i].a = a;
        skip_ws(f);
        if (fi <= F_ENDSWITH) {
            if (*f->p != ',') {
                return fail(f, "',' expected");
            }
            f->p++;
            int b = parse_or(f);
            if (b < 0) {
                return -1;
            }
            f->nodes[i].b = b;
            skip_ws(f);
        }
        if (*f->p != ')') {
            return fail(f, "')' expected");
        }
        f->p++;
        return i;
    }
    const struct sap_prop *pr = sap_prop_find(f->set, name);
    if (!pr) {
        f->p = w;
        return fail(f, "unknown property");
    }
    if (pr->flags & P_NOFL) {
        f->p = w;
        return fail(f, "property is not filterable");
    }
    int i = node(f, NK_PROP);
    if (i >= 0) {
        f->nodes[i].prop = pr;
    }
    return i;
}

static int parse_cmp(struct sap_filter *f)
{
    int a = parse_primary(f);
    if (a < 0) {
        return -1;
    }
    static const char *const ops[] = {"eq", "ne", "gt", "ge", "lt", "le", NULL};
    for (int k = 0; ops[k]; k++) {
        const char *save = f->p;
        if (word(f, ops[k])) {
            int b = parse_primary(f);
            if (b < 0) {
                return -1;
            }
            int i = node(f, NK_CMP);
            if (i < 0) {
                return -1;
            }
            f->nodes[i].op = k;
            f->nodes[i].a = a;
            f->nodes[i].b = b;
            return i;
        }
        f->p = save;
    }
    return a;
}

static int parse_not(struct sap_filter *f)
{
    if (word(f, "not")) {
        int a = parse_not(f);
        if (a < 0) {
            return -1;
        }
        int i = node(f, NK_NOT);
        if (i >= 0) {
            f->nodes[i].a = a;
        }
        return i;
    }
    return parse_cmp(f);
}

static int parse_and(struct sap_filter *f)
{
    int a = parse_not(f);
    while (a >= 0 && word(f, "and")) {
        int b = parse_not(f);
        if (b < 0) {
            return -1;
        }
        int i = node(f, NK_AND);
        if (i < 0) {
            return -1;
        }
        f->nodes[i].a = a;
        f->nodes[i].b = b;
        a = i;
    }
    return a;
}

static int parse_or(struct sap_filter *f)
{
    int a = parse_and(f);
    while (a >= 0 && word(f, "or")) {
        int b = parse_and(f);
        if (b < 0) {
            return -1;
        }
        int i = node(f, NK_OR);
        if (i < 0) {
            return -1;
        }
        f->nodes[i].a = a;
        f->nodes[i].b = b;
        a = i;
    }
    return a;
}

struct sap_filter *sap_filter_parse(const struct sap_set *s, const char *text, char *why,
                                    size_t cap)
{
    struct sap_filter *f = es_xcalloc(1, sizeof *f);
    f->set = s;
    f->scap = strlen(text) + 2;
    f->strings = es_xmalloc(f->scap);
    f->p = text;
    f->why = why;
    f->whycap = cap;
    f->root = parse_or(f);
    skip_ws(f);
    if (f->root >= 0 && *f->p) {
        fail(f, "unexpected text");
    }
    if (f->failed || f->root < 0) {
        if (!f->failed) {
            fail(f, "syntax error");
        }
        sap_filter_free(f);
        return NULL;
    }
    return f;
}

void sap_filter_free(struct sap_filter *f)
{
    if (f) {
        es_free(f->strings);
        es_free(f);
    }
}

static void val_release(struct val *v)
{
    es_free(v->owned);
    v->owned = NULL;
}

static struct val prop_val(const struct sap_prop *p, json_t *e)
{
    struct val v = {0};
    json_t *j = json_object_get(e, p->name);
    switch (p->type) {
    case T_DATE:
    case T_DTO:
        if (json_is_integer(j)) {
            v.k = VK_TIME;
            v.t = json_integer_value(j);
        }
        break;
    case T_DEC:
        v.k = VK_NUM;
        v.n = json_is_string(j) ? strtod(json_string_value(j), NULL) : 0;
        break;
    case T_INT:
        v.k = VK_NUM;
        v.n = (double)json_integer_value(j);
        break;
    case T_BOOL:
        v.k = VK_BOOL;
        v.b = json_is_true(j);
        break;
    default:
        v.k = VK_STR;
        v.s = json_is_string(j) ? json_string_value(j) : "";
    }
    return v;
}

static struct val eval(const struct sap_filter *f, int i, json_t *e);

static int truthy(const struct sap_filter *f, int i, json_t *e)
{
    struct val v = eval(f, i, e);
    int r = v.k == VK_BOOL && v.b;
    val_release(&v);
    return r;
}

static int compare(struct val *a, struct val *b, int *res)
{
    if (a->k == VK_NULL || b->k == VK_NULL) {
        *res = (a->k == VK_NULL) - (b->k == VK_NULL);
        return a->k == b->k ? 0 : 1; /* 1 = unordered (only eq/ne meaningful) */
    }
    if (a->k == VK_TIME && b->k == VK_STR && sap_parse_iso(b->s, &b->t) == 0) {
        b->k = VK_TIME;
    }
    if (b->k == VK_TIME && a->k == VK_STR && sap_parse_iso(a->s, &a->t) == 0) {
        a->k = VK_TIME;
    }
    if (a->k == VK_NUM && b->k == VK_STR) {
        b->n = strtod(b->s, NULL);
        b->k = VK_NUM;
    }
    if (b->k == VK_NUM && a->k == VK_STR) {
        a->n = strtod(a->s, NULL);
        a->k = VK_NUM;
    }
    if (a->k != b->k) {
        *res = 1;
        return 1;
    }
    switch (a->k) {
    case VK_STR:
        *res = strcmp(a->s, b->s);
        break;
    case VK_NUM:
        *res = (a->n > b->n) - (a->n < b->n);
        break;
    case VK_TIME:
        *res = (a->t > b->t) - (a->t < b->t);
        break;
    case VK_BOOL:
        *res = a->b - b->b;
        break;
    case VK_NULL:
        *res = 0;
    }
    return 0;
}

static struct val eval(const struct sap_filter *f, int i, json_t *e)
{
    const struct fnode *n = &f->nodes[i];
    struct val r = {0};
    switch (n->k) {
    case NK_LIT:
        r = n->lit;
        r.owned = NULL;
        return r;
    case NK_PROP:
        return prop_val(n->prop, e);
    case NK_OR:
        r.k = VK_BOOL;
        r.b = truthy(f, n->a, e) || truthy(f, n->b, e);
        return r;
    case NK_AND:
        r.k = VK_BOOL;
        r.b = truthy(f, n->a, e) && truthy(f, n->b, e);
        return r;
    case NK_NOT:
        r.k = VK_BOOL;
        r.b = !truthy(f, n->a, e);
        return r;
    case NK_CMP: {
        struct val a = eval(f, n->a, e);
        struct val b = eval(f, n->b, e);
        int c = 0;
        int unordered = compare(&a, &b, &c);
        r.k = VK_BOOL;
        switch ((enum cmpop)n->op) {
        case C_EQ:
            r.b = c == 0 && !unordered;
            break;
        case C_NE:
            r.b = c != 0 || unordered;
            break;
        case C_GT:
            r.b = !unordered && c > 0;
            break;
        case C_GE:
            r.b = !unordered && c >= 0;
            break;
        case C_LT:
            r.b = !unordered && c < 0;
            break;
        case C_LE:
            r.b = !unordered && c <= 0;
            break;
        }
        val_release(&a);
        val_release(&b);
        return r;
    }
    case NK_FN: {
        struct val a = eval(f, n->a, e);
        struct val b = {0};
        if (n->b >= 0) {
            b = eval(f, n->b, e);
        }
        const char *as = a.k == VK_STR ? a.s : "";
        const char *bs = b.k == VK_STR ? b.s : "";
        size_t al = strlen(as), bl = strlen(bs);
        switch ((enum fn)n->op) {
        case F_SUBSTRINGOF: /* substringof('needle', Field) */
            r.k = VK_BOOL;
            r.b = strstr(bs, as) != NULL;
            break;
        case F_STARTSWITH:
            r.k = VK_BOOL;
            r.b = al >= bl && strncmp(as, bs, bl) == 0;
            break;
        case F_ENDSWITH:
            r.k = VK_BOOL;
            r.b = al >= bl && strcmp(as + al - bl, bs) == 0;
            break;
        case F_TOLOWER:
        case F_TOUPPER:
        case F_TRIM: {
            char *o = es_xstrdup(as);
            if (n->op == F_TRIM) {
                char *s = o;
                while (*s == ' ') {
                    s++;
                }
                memmove(o, s, strlen(s) + 1);
                size_t l = strlen(o);
                while (l && o[l - 1] == ' ') {
                    o[--l] = '\0';
                }
            } else {
                for (char *s = o; *s; s++) {
                    *s = (char)(n->op == F_TOLOWER ? tolower((unsigned char)*s)
                                                   : toupper((unsigned char)*s));
                }
            }
            r.k = VK_STR;
            r.s = r.owned = o;
            break;
        }
        case F_LENGTH:
            r.k = VK_NUM;
            r.n = (double)utf8_len(as);
            break;
        }
        val_release(&a);
        val_release(&b);
        return r;
    }
    }
    return r;
}

int sap_filter_match(const struct sap_filter *f, json_t *e)
{
    return truthy(f, f->root, e);
}

/* ---- $orderby ---- */

struct okey {
    const struct sap_prop *p;
    int desc;
};
static _Thread_local struct okey *sort_keys;
static _Thread_local int sort_n;

static int cmp_entities(const void *x, const void *y)
{
    json_t *a = *(json_t *const *)x;
    json_t *b = *(json_t *const *)y;
    for (int i = 0; i < sort_n; i++) {
        struct val va = prop_val(sort_keys[i].p, a);
        struct val vb = prop_val(sort_keys[i].p, b);
        int c = 0;
        compare(&va, &vb, &c);
        if (c) {
            return sort_keys[i].desc ? -c : c;
        }
    }
    return 0;
}

int sap_orderby(const struct sap_set *s, json_t *arr, const char *orderby, char *why, size_t cap)
{
    struct okey keys[16];
    int n = 0;
    if (orderby && *orderby) {
        const char *p = orderby;
        while (*p) {
            while (*p == ' ' || *p == ',') {
                p++;
            }
            if (!*p) {
                break;
            }
            const char *w = p;
            while (*p && *p != ' ' && *p != ',') {
                p++;
            }
            char name[80];
            size_t wl = (size_t)(p - w);
            if (wl >= sizeof name || n >= 12) {
                snprintf(why, cap, "Invalid $orderby '%.60s'", orderby);
                return -1;
            }
            memcpy(name, w, wl);
            name[wl] = '\0';
            const struct sap_prop *pr = sap_prop_find(s, name);
            if (!pr) {
                snprintf(why, cap, "Property '%s' in $orderby does not exist in %s", name, s->name);
                return -1;
            }
            keys[n].p = pr;
            keys[n].desc = 0;
            while (*p == ' ') {
                p++;
            }
            if (strncmp(p, "desc", 4) == 0 && (!p[4] || p[4] == ',' || p[4] == ' ')) {
                keys[n].desc = 1;
                p += 4;
            } else if (strncmp(p, "asc", 3) == 0 && (!p[3] || p[3] == ',' || p[3] == ' ')) {
                p += 3;
            }
            n++;
        }
    }
    /* Ties are broken by the key so paging is stable. */
    for (int i = 0; i < sap_nkeys(s) && n < 16; i++) {
        keys[n].p = sap_key(s, i);
        keys[n].desc = 0;
        n++;
    }
    size_t len = json_array_size(arr);
    if (len < 2) {
        return 0;
    }
    json_t **v = es_xmalloc(len * sizeof *v);
    for (size_t i = 0; i < len; i++) {
        v[i] = json_incref(json_array_get(arr, i));
    }
    sort_keys = keys;
    sort_n = n;
    qsort(v, len, sizeof *v, cmp_entities);
    json_array_clear(arr);
    for (size_t i = 0; i < len; i++) {
        json_array_append_new(arr, v[i]);
    }
    es_free(v);
    return 0;
}
