/* SPDX-License-Identifier: MIT */
/*
 * The expression language of `expr:` rules (docs/mapping.md): a lexer and a recursive-descent
 * parser build a small tree once at compile time; evaluation walks it per record with values
 * in the record's arena. Function names, arities, lookup tables and Lua functions are all
 * resolved at compile time, so a typo fails at load with a position, never at 3 a.m.
 *
 * Precedence, lowest first: or, and, not, comparison (== != < <= > >=), + -, * /, unary -.
 * null propagates through arithmetic; `+` concatenates when either side is a string.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "map/internal.h"

enum ntype { N_LIT, N_PATH, N_NEG, N_NOT, N_BIN, N_AND, N_OR, N_CALL, N_IF, N_LUA };
enum binop { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

struct node;
typedef int (*es_builtin_fn)(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                             struct es_mv **out);

struct builtin {
    const char *name;
    int min, max;
    es_builtin_fn fn;
    const char *doc;
};

struct node {
    enum ntype type;
    int op;
    size_t pos; /* byte offset in the expression text */
    struct es_mv *lit;
    struct es_path path;
    const struct builtin *fn;
    struct es_ctable *table;
    char *name; /* lua function, xref entity */
    struct es_lua *lua;
    struct node **args;
    size_t nargs;
};

struct es_expr {
    struct es_arena arena; /* literals */
    struct node *root;
    struct node **all; /* every node, for freeing paths */
    size_t nall, capall;
    const struct es_path *star; /* first path with [*] */
};

/* ---- failures ---- */

int es_eval_fail(struct es_eval *ev, enum es_code code, const char *fmt, ...)
{
    if (ev->fail && ev->fail->code == ES_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ev->fail->message, sizeof ev->fail->message, fmt, ap);
        va_end(ap);
        ev->fail->code = code;
    }
    return code;
}

/* ---- helpers for builtins ---- */

static struct es_mv *str_out(struct es_eval *ev, const char *s, size_t n)
{
    return es_mv_str(ev->arena, s, n);
}

static int text_of(struct es_eval *ev, const struct es_mv *v, const char **s, size_t *n)
{
    return es_mv_text(ev->arena, v, s, n);
}

static int num_of(struct es_eval *ev, struct es_mv *v, struct es_dec *d, const char *what)
{
    if (v->kind == MV_NUM) {
        if (es_mv_num_dec(v, d) == ES_OK) {
            return ES_OK;
        }
        return es_eval_fail(ev, ES_EVALIDATION, "%s: number %.*s has more than 18 digits", what,
                            (int)v->u.num.rawlen, v->u.num.raw);
    }
    if (v->kind == MV_STR && es_dec_parse(v->u.str.s, v->u.str.n, d) == ES_OK) {
        return ES_OK;
    }
    const char *s = "";
    size_t n = 0;
    if (!text_of(ev, v, &s, &n)) {
        s = v->kind == MV_ARR ? "a list" : "an object";
        n = strlen(s);
    }
    return es_eval_fail(ev, ES_EVALIDATION, "%s: expected a number, got '%.*s'", what,
                        (int)(n > 60 ? 60 : n), s);
}

static int int_arg(struct es_eval *ev, struct es_mv *v, long *out, const char *what)
{
    struct es_dec d;
    int rc = num_of(ev, v, &d, what);
    if (rc) {
        return rc;
    }
    d = es_dec_normalize(d);
    if (d.scale != 0 || d.m > 1000000 || d.m < -1000000) {
        return es_eval_fail(ev, ES_EVALIDATION, "%s: expected a small whole number", what);
    }
    *out = (long)d.m;
    return ES_OK;
}

static int date_of(struct es_eval *ev, struct es_mv *v, struct es_date *d, const char *what)
{
    if (v->kind == MV_DATE) {
        *d = v->u.date;
        return ES_OK;
    }
    const char *s;
    size_t n;
    if (text_of(ev, v, &s, &n) && es_date_parse(s, n, NULL, d) == ES_OK) {
        return ES_OK;
    }
    if (!text_of(ev, v, &s, &n)) {
        s = "?";
        n = 1;
    }
    return es_eval_fail(ev, ES_EVALIDATION, "%s: not a date or time: '%.*s'", what,
                        (int)(n > 60 ? 60 : n), s);
}

/* For string functions: NULL result when the input is null. */
#define NULL_IN(v)                                                                                 \
    do {                                                                                           \
        if (es_mv_is_null(v)) {                                                                    \
            *out = &es_mv_null_value;                                                              \
            return ES_OK;                                                                          \
        }                                                                                          \
    } while (0)

static int need_text(struct es_eval *ev, struct es_mv *v, const char **s, size_t *n,
                     const char *what)
{
    if (!text_of(ev, v, s, n)) {
        return es_eval_fail(ev, ES_EVALIDATION, "%s: expected text, got %s", what,
                            v->kind == MV_ARR ? "a list" : "an object");
    }
    return ES_OK;
}

/* ---- builtins ---- */

static int b_concat(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                    struct es_mv **out)
{
    (void)n;
    es_buf_reset(&ev->tmp);
    for (size_t i = 0; i < na; i++) {
        const char *s;
        size_t len;
        if (es_mv_is_null(a[i])) {
            continue;
        }
        int rc = need_text(ev, a[i], &s, &len, "concat");
        if (rc) {
            return rc;
        }
        (void)es_buf_append(&ev->tmp, s, len);
    }
    *out = str_out(ev, ev->tmp.data ? ev->tmp.data : "", ev->tmp.len);
    return ES_OK;
}

static int b_trim(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                  struct es_mv **out)
{
    (void)n;
    (void)na;
    NULL_IN(a[0]);
    const char *s;
    size_t len;
    int rc = need_text(ev, a[0], &s, &len, "trim");
    if (rc) {
        return rc;
    }
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1])) {
        len--;
    }
    *out = es_mv_str_ref(ev->arena, s, len);
    return ES_OK;
}

static int b_case(struct es_eval *ev, struct es_mv *v, int upper, struct es_mv **out)
{
    NULL_IN(v);
    const char *s;
    size_t len;
    int rc = need_text(ev, v, &s, &len, upper ? "upper" : "lower");
    if (rc) {
        return rc;
    }
    es_buf_reset(&ev->tmp);
    es_utf8_case(s, len, upper, &ev->tmp);
    *out = str_out(ev, ev->tmp.data ? ev->tmp.data : "", ev->tmp.len);
    return ES_OK;
}

static int b_upper(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                   struct es_mv **out)
{
    (void)n;
    (void)na;
    return b_case(ev, a[0], 1, out);
}

static int b_lower(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                   struct es_mv **out)
{
    (void)n;
    (void)na;
    return b_case(ev, a[0], 0, out);
}

static int b_length(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                    struct es_mv **out)
{
    (void)n;
    (void)na;
    NULL_IN(a[0]);
    struct es_dec d = {0, 0};
    if (a[0]->kind == MV_ARR) {
        d.m = (int64_t)a[0]->u.arr.n;
    } else {
        const char *s;
        size_t len;
        int rc = need_text(ev, a[0], &s, &len, "length");
        if (rc) {
            return rc;
        }
        d.m = (int64_t)es_utf8_len(s, len);
    }
    *out = es_mv_dec(ev->arena, d);
    return ES_OK;
}

static int b_substr(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                    struct es_mv **out)
{
    (void)n;
    NULL_IN(a[0]);
    const char *s;
    size_t len;
    long start = 0, count = -1;
    int rc = need_text(ev, a[0], &s, &len, "substr");
    if (!rc) {
        rc = int_arg(ev, a[1], &start, "substr start");
    }
    if (!rc && na > 2) {
        rc = int_arg(ev, a[2], &count, "substr length");
    }
    if (rc) {
        return rc;
    }
    size_t chars = es_utf8_len(s, len);
    if (start < 0) {
        start = (long)chars + start;
        if (start < 0) {
            start = 0;
        }
    }
    size_t b0 = es_utf8_offset(s, len, (size_t)start);
    size_t b1 = len;
    if (count >= 0) {
        b1 = es_utf8_offset(s, len, (size_t)start + (size_t)count);
    }
    *out = es_mv_str_ref(ev->arena, s + b0, b1 - b0);
    return ES_OK;
}

static int b_replace(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                     struct es_mv **out)
{
    (void)n;
    (void)na;
    NULL_IN(a[0]);
    const char *s, *f, *t = "";
    size_t len, fl, tl = 0;
    int rc = need_text(ev, a[0], &s, &len, "replace");
    if (!rc) {
        rc = need_text(ev, a[1], &f, &fl, "replace");
    }
    if (!rc && !es_mv_is_null(a[2])) {
        rc = need_text(ev, a[2], &t, &tl, "replace");
    }
    if (rc) {
        return rc;
    }
    if (fl == 0) {
        *out = a[0];
        return ES_OK;
    }
    es_buf_reset(&ev->tmp);
    size_t i = 0;
    while (i < len) {
        if (len - i >= fl && memcmp(s + i, f, fl) == 0) {
            (void)es_buf_append(&ev->tmp, t, tl);
            i += fl;
        } else {
            (void)es_buf_putc(&ev->tmp, s[i]);
            i++;
        }
    }
    *out = str_out(ev, ev->tmp.data ? ev->tmp.data : "", ev->tmp.len);
    return ES_OK;
}

static int b_split(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                   struct es_mv **out)
{
    (void)n;
    NULL_IN(a[0]);
    const char *s, *sep;
    size_t len, sl;
    long idx = -1;
    int rc = need_text(ev, a[0], &s, &len, "split");
    if (!rc) {
        rc = need_text(ev, a[1], &sep, &sl, "split");
    }
    if (!rc && na > 2) {
        rc = int_arg(ev, a[2], &idx, "split index");
    }
    if (rc) {
        return rc;
    }
    struct es_mv *arr = es_mv_new(ev->arena, MV_ARR);
    size_t st = 0;
    for (size_t i = 0; sl && i + sl <= len;) {
        if (memcmp(s + i, sep, sl) == 0) {
            es_mv_arr_push(ev->arena, arr, es_mv_str_ref(ev->arena, s + st, i - st));
            i += sl;
            st = i;
        } else {
            i++;
        }
    }
    es_mv_arr_push(ev->arena, arr, es_mv_str_ref(ev->arena, s + st, len - st));
    if (na > 2) {
        if (idx < 0) {
            idx += (long)arr->u.arr.n;
        }
        *out = idx >= 0 && (size_t)idx < arr->u.arr.n ? arr->u.arr.items[idx] : &es_mv_null_value;
        return ES_OK;
    }
    *out = arr;
    return ES_OK;
}

static int b_join(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                  struct es_mv **out)
{
    (void)n;
    (void)na;
    NULL_IN(a[0]);
    const char *sep, *s;
    size_t sl, len;
    int rc = need_text(ev, a[1], &sep, &sl, "join");
    if (rc) {
        return rc;
    }
    if (a[0]->kind != MV_ARR) {
        *out = a[0];
        return ES_OK;
    }
    struct es_buf b;
    es_buf_init(&b, 0);
    int first = 1;
    for (size_t i = 0; i < a[0]->u.arr.n; i++) {
        struct es_mv *v = a[0]->u.arr.items[i];
        if (es_mv_is_null(v)) {
            continue;
        }
        rc = need_text(ev, v, &s, &len, "join");
        if (rc) {
            es_buf_release(&b);
            return rc;
        }
        if (!first) {
            (void)es_buf_append(&b, sep, sl);
        }
        first = 0;
        (void)es_buf_append(&b, s, len);
    }
    *out = str_out(ev, b.data ? b.data : "", b.len);
    es_buf_release(&b);
    return ES_OK;
}

static int b_pad_left(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                      struct es_mv **out)
{
    (void)n;
    NULL_IN(a[0]);
    const char *s, *pad = " ";
    size_t len, pl = 1;
    long width = 0;
    int rc = need_text(ev, a[0], &s, &len, "pad_left");
    if (!rc) {
        rc = int_arg(ev, a[1], &width, "pad_left width");
    }
    if (!rc && na > 2) {
        rc = need_text(ev, a[2], &pad, &pl, "pad_left");
    }
    if (rc) {
        return rc;
    }
    size_t chars = es_utf8_len(s, len);
    es_buf_reset(&ev->tmp);
    for (long k = (long)chars; k < width && pl; k++) {
        (void)es_buf_append(&ev->tmp, pad, pl);
    }
    (void)es_buf_append(&ev->tmp, s, len);
    *out = str_out(ev, ev->tmp.data, ev->tmp.len);
    return ES_OK;
}

static int b_coalesce(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                      struct es_mv **out)
{
    (void)ev;
    (void)n;
    for (size_t i = 0; i < na; i++) {
        if (!es_mv_is_null(a[i]) && !(a[i]->kind == MV_STR && a[i]->u.str.n == 0)) {
            *out = a[i];
            return ES_OK;
        }
    }
    *out = &es_mv_null_value;
    return ES_OK;
}

static int b_round(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                   struct es_mv **out)
{
    (void)n;
    NULL_IN(a[0]);
    struct es_dec d, r;
    long places = 0;
    int rc = num_of(ev, a[0], &d, "round");
    if (!rc && na > 1) {
        rc = int_arg(ev, a[1], &places, "round places");
    }
    if (rc) {
        return rc;
    }
    if (es_dec_round(d, (int)places, &r) != ES_OK) {
        return es_eval_fail(ev, ES_EVALIDATION, "round: number too large");
    }
    *out = es_mv_dec(ev->arena, r);
    return ES_OK;
}

static int b_format_decimal(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                            struct es_mv **out)
{
    (void)n;
    NULL_IN(a[0]);
    struct es_dec d, r;
    long places = 2;
    const char *dsep = ".", *gsep = "";
    size_t dl = 1, gl = 0;
    int rc = num_of(ev, a[0], &d, "format_decimal");
    if (!rc && na > 1) {
        rc = int_arg(ev, a[1], &places, "format_decimal places");
    }
    if (!rc && na > 2) {
        rc = need_text(ev, a[2], &dsep, &dl, "format_decimal");
    }
    if (!rc && na > 3) {
        rc = need_text(ev, a[3], &gsep, &gl, "format_decimal");
    }
    if (rc) {
        return rc;
    }
    if (places < 0 || places > ES_DEC_MAX_SCALE || es_dec_round(d, (int)places, &r) != ES_OK) {
        return es_eval_fail(ev, ES_EVALIDATION, "format_decimal: cannot format with %ld places",
                            places);
    }
    char digits[48];
    size_t len = es_dec_format(r, digits, sizeof digits);
    const char *p = digits;
    es_buf_reset(&ev->tmp);
    if (*p == '-') {
        (void)es_buf_putc(&ev->tmp, '-');
        p++;
        len--;
    }
    const char *dot = memchr(p, '.', len);
    size_t intlen = dot ? (size_t)(dot - p) : len;
    for (size_t i = 0; i < intlen; i++) {
        if (gl && i && (intlen - i) % 3 == 0) {
            (void)es_buf_append(&ev->tmp, gsep, gl);
        }
        (void)es_buf_putc(&ev->tmp, p[i]);
    }
    if (dot) {
        (void)es_buf_append(&ev->tmp, dsep, dl);
        (void)es_buf_append(&ev->tmp, dot + 1, len - intlen - 1);
    }
    *out = str_out(ev, ev->tmp.data, ev->tmp.len);
    return ES_OK;
}

static int b_parse_date(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                        struct es_mv **out)
{
    (void)n;
    NULL_IN(a[0]);
    if (a[0]->kind == MV_STR && a[0]->u.str.n == 0) {
        *out = &es_mv_null_value;
        return ES_OK;
    }
    const char *s, *fmt = NULL;
    size_t len, fl;
    int rc = need_text(ev, a[0], &s, &len, "parse_date");
    if (!rc && na > 1 && !es_mv_is_null(a[1])) {
        rc = need_text(ev, a[1], &fmt, &fl, "parse_date");
    }
    if (rc) {
        return rc;
    }
    struct es_date d;
    if (es_date_parse(s, len, fmt, &d) != ES_OK) {
        return es_eval_fail(ev, ES_EVALIDATION, "parse_date: '%.*s' is not a date%s%s",
                            (int)(len > 60 ? 60 : len), s, fmt ? " of form " : "", fmt ? fmt : "");
    }
    *out = es_mv_date(ev->arena, d);
    return ES_OK;
}

static int b_format_date(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                         struct es_mv **out)
{
    (void)n;
    (void)na;
    NULL_IN(a[0]);
    if (a[0]->kind == MV_STR && a[0]->u.str.n == 0) {
        *out = &es_mv_null_value;
        return ES_OK;
    }
    struct es_date d;
    const char *fmt;
    size_t fl;
    int rc = date_of(ev, a[0], &d, "format_date");
    if (!rc) {
        rc = need_text(ev, a[1], &fmt, &fl, "format_date");
    }
    if (rc) {
        return rc;
    }
    char f[64], buf[128];
    snprintf(f, sizeof f, "%.*s", (int)fl, fmt);
    size_t len = es_date_format(&d, f, buf, sizeof buf);
    *out = str_out(ev, buf, len);
    return ES_OK;
}

static int b_to_utc(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                    struct es_mv **out)
{
    (void)n;
    (void)na;
    NULL_IN(a[0]);
    struct es_date d;
    int rc = date_of(ev, a[0], &d, "to_utc");
    if (rc) {
        return rc;
    }
    d.offset_min = 0;
    *out = es_mv_date(ev->arena, d);
    return ES_OK;
}

static int b_now(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                 struct es_mv **out)
{
    (void)n;
    (void)a;
    (void)na;
    struct es_date d = {0, ES_DATE_DATETIME, 0};
    d.ms = ev->env && ev->env->now_ms ? ev->env->now_ms : es_clock_wall_ms();
    *out = es_mv_date(ev->arena, d);
    return ES_OK;
}

static int b_lookup(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                    struct es_mv **out)
{
    const char *s;
    size_t len;
    if (es_mv_is_null(a[1]) || !text_of(ev, a[1], &s, &len)) {
        *out = na > 2 ? a[2] : &es_mv_null_value;
        return ES_OK;
    }
    const char *v;
    size_t vn;
    if (es_ctable_find(n->table, s, len, &v, &vn)) {
        *out = es_mv_str_ref(ev->arena, v, vn);
        return ES_OK;
    }
    *out = na > 2 ? a[2] : &es_mv_null_value;
    return ES_OK;
}

static int b_xref(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                  struct es_mv **out)
{
    (void)na;
    NULL_IN(a[1]);
    const char *s;
    size_t len;
    int rc = need_text(ev, a[1], &s, &len, "xref");
    if (rc) {
        return rc;
    }
    if (!ev->env || !ev->env->xref) {
        return es_eval_fail(ev, ES_ENOTFOUND, "xref('%s', '%.*s'): no xref available", n->name,
                            (int)(len > 60 ? 60 : len), s);
    }
    char key[256], id[256];
    snprintf(key, sizeof key, "%.*s", (int)len, s);
    id[0] = '\0';
    rc = ev->env->xref(ev->env->ud, n->name, key, id, sizeof id);
    if (rc == ES_ENOTFOUND) {
        return es_eval_fail(ev, ES_ENOTFOUND, "xref('%s', '%s'): not synced yet", n->name, key);
    }
    if (rc != ES_OK) {
        return es_eval_fail(ev, (enum es_code)rc, "xref('%s', '%s') failed: %s", n->name, key,
                            es_code_name((enum es_code)rc));
    }
    *out = str_out(ev, id, strlen(id));
    return ES_OK;
}

static int addr_part(struct es_eval *ev, struct es_mv **a, enum es_addr_part part,
                     struct es_mv **out)
{
    NULL_IN(a[0]);
    const char *s, *c = NULL;
    size_t len, cl = 0;
    int rc = need_text(ev, a[0], &s, &len, "address");
    if (!rc && !es_mv_is_null(a[1])) {
        rc = need_text(ev, a[1], &c, &cl, "address");
    }
    if (rc) {
        return rc;
    }
    /* The same block and country as the previous call (street, number, supplement of one
     * record): reuse the split. */
    if (!(ev->addr_block == s && ev->addr_block_n == len && ev->addr_country_n == cl &&
          (cl == 0 || (ev->addr_country && memcmp(ev->addr_country, c, cl) == 0)))) {
        es_addr_parse(s, len, c, cl, &ev->addr);
        ev->addr_block = s;
        ev->addr_block_n = len;
        ev->addr_country = c ? es_arena_strndup(ev->arena, c, cl) : NULL;
        ev->addr_country_n = cl;
    }
    const char *p = NULL;
    size_t n = 0;
    switch (part) {
    case ES_ADDR_STREET:
        p = ev->addr.street;
        n = ev->addr.street_n;
        break;
    case ES_ADDR_HOUSE_NUMBER:
        p = ev->addr.number;
        n = ev->addr.number_n;
        break;
    case ES_ADDR_SUPPLEMENT:
        p = ev->addr.supplement;
        n = ev->addr.supplement_n;
        break;
    }
    *out = n ? str_out(ev, p, n) : &es_mv_null_value;
    return ES_OK;
}

static int b_addr_street(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                         struct es_mv **out)
{
    (void)n;
    (void)na;
    return addr_part(ev, a, ES_ADDR_STREET, out);
}

static int b_addr_number(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                         struct es_mv **out)
{
    (void)n;
    (void)na;
    return addr_part(ev, a, ES_ADDR_HOUSE_NUMBER, out);
}

static int b_addr_supplement(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                             struct es_mv **out)
{
    (void)n;
    (void)na;
    return addr_part(ev, a, ES_ADDR_SUPPLEMENT, out);
}

static int b_addr_join(struct es_eval *ev, const struct node *n, struct es_mv **a, size_t na,
                       struct es_mv **out)
{
    (void)n;
    (void)na;
    const char *s[4] = {NULL, NULL, NULL, NULL};
    size_t l[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        if (!es_mv_is_null(a[i])) {
            int rc = need_text(ev, a[i], &s[i], &l[i], "address_join");
            if (rc) {
                return rc;
            }
        }
    }
    es_buf_reset(&ev->tmp);
    es_addr_join(s[0], l[0], s[1], l[1], s[2], l[2], s[3], l[3], &ev->tmp);
    *out = ev->tmp.len ? str_out(ev, ev->tmp.data, ev->tmp.len) : &es_mv_null_value;
    return ES_OK;
}

static const struct builtin builtins[] = {
    {"concat", 1, 16, b_concat, "joins texts; null arguments are skipped"},
    {"trim", 1, 1, b_trim, "removes leading and trailing white space"},
    {"upper", 1, 1, b_upper, "upper case (Unicode)"},
    {"lower", 1, 1, b_lower, "lower case (Unicode)"},
    {"length", 1, 1, b_length, "characters of a text, items of a list"},
    {"substr", 2, 3, b_substr, "substr(s, start[, length]) in characters, 0-based"},
    {"replace", 3, 3, b_replace, "replaces every occurrence"},
    {"split", 2, 3, b_split, "split(s, sep[, index]): list, or one item"},
    {"join", 2, 2, b_join, "join(list, sep)"},
    {"pad_left", 2, 3, b_pad_left, "pad_left(s, width[, char])"},
    {"coalesce", 1, 16, b_coalesce, "first argument that is neither null nor empty"},
    {"round", 1, 2, b_round, "round(x[, places]) half away from zero"},
    {"format_decimal", 1, 4, b_format_decimal,
     "format_decimal(x[, places[, decimal_sep[, group_sep]]])"},
    {"parse_date", 1, 2, b_parse_date, "parse_date(s[, format])"},
    {"format_date", 2, 2, b_format_date, "format_date(d, format)"},
    {"to_utc", 1, 1, b_to_utc, "the same instant in UTC"},
    {"now", 0, 0, b_now, "the time of the evaluation"},
    {"lookup", 2, 3, b_lookup, "lookup('table', key[, default])"},
    {"xref", 2, 2, b_xref, "xref('entity', source_id): the id in the target system"},
    {"address_street", 2, 2, b_addr_street, "street name from a street block"},
    {"address_house_number", 2, 2, b_addr_number, "house number from a street block"},
    {"address_supplement", 2, 2, b_addr_supplement, "unit, building, c/o lines"},
    {"address_join", 4, 4, b_addr_join, "address_join(street, number, supplement, country)"},
    {NULL, 0, 0, NULL, NULL},
};

/* ---- tables ---- */

struct es_ctable *es_ctable_new(const struct es_table_cfg *t)
{
    struct es_ctable *c = es_xcalloc(1, sizeof *c);
    c->cfg = t;
    c->n = t->count;
    c->keys = t->keys;
    c->values = t->values;
    c->klen = es_xcalloc(t->count + 1, sizeof *c->klen);
    c->vlen = es_xcalloc(t->count + 1, sizeof *c->vlen);
    for (size_t i = 0; i < t->count; i++) {
        c->klen[i] = strlen(t->keys[i]);
        c->vlen[i] = strlen(t->values[i]);
    }
    return c;
}

void es_ctable_free(struct es_ctable *t)
{
    if (!t) {
        return;
    }
    es_free(t->klen);
    es_free(t->vlen);
    es_free(t);
}

int es_ctable_find(const struct es_ctable *t, const char *key, size_t n, const char **v, size_t *vn)
{
    for (size_t i = 0; t && i < t->n; i++) {
        if (t->klen[i] == n && (n == 0 || t->keys[i][0] == key[0]) &&
            memcmp(t->keys[i], key, n) == 0) {
            *v = t->values[i];
            *vn = t->vlen[i];
            return 1;
        }
    }
    return 0;
}

/* ---- paths ---- */

int es_path_parse(const char *s, size_t n, struct es_path *out, size_t *bad_at)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0, i = 0;
    while (i < n) {
        ES_GROW(out->segs, cap, out->n + 1);
        struct es_path_seg *seg = &out->segs[out->n];
        if (s[i] == '[') {
            size_t st = ++i;
            if (i < n && s[i] == '*') {
                i++;
                seg->index = -1;
                if (out->has_star) {
                    *bad_at = st;
                    return ES_ECONFIG; /* one [*] per path */
                }
                out->has_star = 1;
                out->star_at = out->n;
            } else {
                long v = 0;
                while (i < n && isdigit((unsigned char)s[i]) && v < 1000000) {
                    v = v * 10 + (s[i] - '0');
                    i++;
                }
                if (i == st) {
                    *bad_at = st;
                    return ES_ECONFIG;
                }
                seg->index = v;
            }
            if (i >= n || s[i] != ']') {
                *bad_at = i;
                return ES_ECONFIG;
            }
            i++;
            seg->key = NULL;
            out->n++;
            if (i < n && s[i] == '.') {
                i++;
                if (i >= n) {
                    *bad_at = i;
                    return ES_ECONFIG;
                }
            }
            continue;
        }
        size_t st = i;
        while (i < n && s[i] != '.' && s[i] != '[') {
            i++;
        }
        if (i == st) {
            *bad_at = i;
            return ES_ECONFIG;
        }
        seg->key = es_xstrndup(s + st, i - st);
        seg->klen = i - st;
        seg->index = 0;
        out->n++;
        if (i < n && s[i] == '.') {
            i++;
            if (i >= n) {
                *bad_at = i;
                return ES_ECONFIG;
            }
        }
    }
    if (out->n == 0) {
        *bad_at = 0;
        return ES_ECONFIG;
    }
    return ES_OK;
}

void es_path_release(struct es_path *p)
{
    for (size_t i = 0; i < p->n; i++) {
        es_free((void *)p->segs[i].key);
    }
    es_free(p->segs);
    memset(p, 0, sizeof *p);
}

static const struct es_mv *path_walk(struct es_arena *a, const struct es_path *p, size_t from,
                                     const struct es_mv *v, long star)
{
    for (size_t i = from; i < p->n && v; i++) {
        const struct es_path_seg *seg = &p->segs[i];
        if (seg->key) {
            v = es_mv_get(v, seg->key, seg->klen);
            continue;
        }
        if (v->kind != MV_ARR) {
            return NULL;
        }
        if (seg->index >= 0) {
            v = (size_t)seg->index < v->u.arr.n ? v->u.arr.items[seg->index] : NULL;
        } else if (star >= 0) {
            v = (size_t)star < v->u.arr.n ? v->u.arr.items[star] : NULL;
        } else {
            /* The whole list, mapped through the rest of the path. */
            struct es_mv *arr = es_mv_new(a, MV_ARR);
            for (size_t k = 0; k < v->u.arr.n; k++) {
                const struct es_mv *e = path_walk(a, p, i + 1, v->u.arr.items[k], -1);
                es_mv_arr_push(a, arr, e ? (struct es_mv *)e : &es_mv_null_value);
            }
            return arr;
        }
    }
    return v;
}

struct es_mv *es_path_get(struct es_arena *a, const struct es_path *p, const struct es_mv *rec,
                          long star)
{
    const struct es_mv *v = path_walk(a, p, 0, rec, star);
    return v ? (struct es_mv *)v : &es_mv_null_value;
}

size_t es_path_star_len(const struct es_path *p, const struct es_mv *rec)
{
    if (!p->has_star) {
        return 0;
    }
    struct es_path pre = *p;
    pre.n = p->star_at;
    const struct es_mv *v = pre.n ? path_walk(NULL, &pre, 0, rec, 0) : rec;
    return v && v->kind == MV_ARR ? v->u.arr.n : 0;
}

/* ---- lexer/parser ---- */

enum tok {
    T_END,
    T_NUM,
    T_STR,
    T_IDENT,
    T_LP,
    T_RP,
    T_COMMA,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_ERR
};

struct parser {
    const struct es_expr_ctx *ctx;
    struct es_expr *e;
    const char *s;
    size_t n, i;
    enum tok t;
    size_t tpos, tlen;
    char *msg;
    size_t msgcap;
    size_t err_off;
    int failed;
    int depth;
};

static void perr(struct parser *p, size_t at, const char *fmt, ...) ES_PRINTF(3, 4);
static void perr(struct parser *p, size_t at, const char *fmt, ...)
{
    if (p->failed) {
        return;
    }
    p->failed = 1;
    p->err_off = at;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, p->msgcap, fmt, ap);
    va_end(ap);
}

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$';
}

static void next(struct parser *p)
{
    while (p->i < p->n && isspace((unsigned char)p->s[p->i])) {
        p->i++;
    }
    p->tpos = p->i;
    if (p->i >= p->n) {
        p->t = T_END;
        p->tlen = 0;
        return;
    }
    char c = p->s[p->i];
    char d = p->i + 1 < p->n ? p->s[p->i + 1] : '\0';
    p->tlen = 1;
    switch (c) {
    case '(':
        p->t = T_LP;
        break;
    case ')':
        p->t = T_RP;
        break;
    case ',':
        p->t = T_COMMA;
        break;
    case '+':
        p->t = T_PLUS;
        break;
    case '-':
        p->t = T_MINUS;
        break;
    case '*':
        p->t = T_STAR;
        break;
    case '/':
        p->t = T_SLASH;
        break;
    case '=':
        if (d != '=') {
            perr(p, p->i, "'=' is not an operator: compare with '=='");
            p->t = T_ERR;
            return;
        }
        p->t = T_EQ;
        p->tlen = 2;
        break;
    case '!':
        if (d != '=') {
            perr(p, p->i, "unexpected '!': use not(...) or '!='");
            p->t = T_ERR;
            return;
        }
        p->t = T_NE;
        p->tlen = 2;
        break;
    case '<':
        p->t = d == '=' ? T_LE : T_LT;
        p->tlen = d == '=' ? 2 : 1;
        break;
    case '>':
        p->t = d == '=' ? T_GE : T_GT;
        p->tlen = d == '=' ? 2 : 1;
        break;
    case '\'':
    case '"': {
        size_t j = p->i + 1;
        while (j < p->n && p->s[j] != c) {
            if (p->s[j] == '\\' && j + 1 < p->n) {
                j++;
            }
            j++;
        }
        if (j >= p->n) {
            perr(p, p->i, "unterminated string");
            p->t = T_ERR;
            return;
        }
        p->t = T_STR;
        p->tlen = j + 1 - p->i;
        break;
    }
    default:
        if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)d))) {
            size_t j = p->i;
            while (j < p->n && (isdigit((unsigned char)p->s[j]) || p->s[j] == '.')) {
                j++;
            }
            p->t = T_NUM;
            p->tlen = j - p->i;
        } else if (ident_char(c)) {
            /* identifier or path: Name, A.B[0].C, Items[*].Qty, lua.fn */
            size_t j = p->i;
            for (;;) {
                while (j < p->n && ident_char(p->s[j])) {
                    j++;
                }
                if (j < p->n && p->s[j] == '.' && j + 1 < p->n && ident_char(p->s[j + 1])) {
                    j++;
                    continue;
                }
                if (j < p->n && p->s[j] == '[') {
                    size_t k = j + 1;
                    while (k < p->n && (isdigit((unsigned char)p->s[k]) || p->s[k] == '*')) {
                        k++;
                    }
                    if (k < p->n && p->s[k] == ']' && k > j + 1) {
                        j = k + 1;
                        if (j < p->n && p->s[j] == '.' && j + 1 < p->n && ident_char(p->s[j + 1])) {
                            j++;
                        }
                        continue;
                    }
                }
                break;
            }
            p->t = T_IDENT;
            p->tlen = j - p->i;
        } else {
            perr(p, p->i, "unexpected character '%c'", c);
            p->t = T_ERR;
            return;
        }
    }
    p->i += p->tlen;
}

static struct node *new_node(struct parser *p, enum ntype t, size_t pos)
{
    struct node *nd = es_xcalloc(1, sizeof *nd);
    nd->type = t;
    nd->pos = pos;
    ES_GROW(p->e->all, p->e->capall, p->e->nall + 1);
    p->e->all[p->e->nall++] = nd;
    return nd;
}

static int is_word(struct parser *p, const char *w)
{
    return p->t == T_IDENT && p->tlen == strlen(w) && memcmp(p->s + p->tpos, w, p->tlen) == 0;
}

static struct node *parse_or(struct parser *p);

static void add_arg(struct node *call, struct node *arg, size_t *cap)
{
    ES_GROW(call->args, *cap, call->nargs + 1);
    call->args[call->nargs++] = arg;
}

static const char *closest_builtin(const char *name)
{
    const char *best = NULL;
    int bd = 3;
    for (const struct builtin *b = builtins; b->name; b++) {
        int d = es_edit_distance(name, b->name);
        if (d < bd) {
            bd = d;
            best = b->name;
        }
    }
    if (es_edit_distance(name, "if") < bd) {
        best = "if";
    }
    return best;
}

static struct node *parse_call(struct parser *p, size_t pos, const char *name, size_t nlen)
{
    /* current token is '(' */
    struct node *call = new_node(p, N_CALL, pos);
    size_t cap = 0;
    next(p);
    if (p->t != T_RP) {
        for (;;) {
            struct node *a = parse_or(p);
            if (!a) {
                return NULL;
            }
            add_arg(call, a, &cap);
            if (p->t == T_COMMA) {
                next(p);
                continue;
            }
            break;
        }
    }
    if (p->t != T_RP) {
        perr(p, p->tpos, "expected ',' or ')' in call of %.*s", (int)nlen, name);
        return NULL;
    }
    next(p);
    char fname[64];
    snprintf(fname, sizeof fname, "%.*s", (int)nlen, name);
    if (nlen > 4 && memcmp(name, "lua.", 4) == 0) {
        call->type = N_LUA;
        call->name = es_xstrdup(fname + 4);
        call->lua = p->ctx->lua;
        if (!p->ctx->lua) {
            perr(p, pos, "%s: no Lua file is configured (top-level 'lua:' key)", fname);
            return NULL;
        }
        if (!es_lua_has(p->ctx->lua, call->name)) {
            perr(p, pos, "%s: the Lua file defines no function '%s'", fname, call->name);
            return NULL;
        }
        return call;
    }
    if (strcmp(fname, "if") == 0) {
        if (call->nargs != 3) {
            perr(p, pos, "if takes 3 arguments (condition, then, else), not %zu", call->nargs);
            return NULL;
        }
        call->type = N_IF;
        return call;
    }
    if (strcmp(fname, "not") == 0) {
        if (call->nargs != 1) {
            perr(p, pos, "not takes 1 argument, not %zu", call->nargs);
            return NULL;
        }
        call->type = N_NOT;
        return call;
    }
    for (const struct builtin *b = builtins; b->name; b++) {
        if (strcmp(b->name, fname) != 0) {
            continue;
        }
        call->fn = b;
        if ((int)call->nargs < b->min || (int)call->nargs > b->max) {
            if (b->min == b->max) {
                perr(p, pos, "%s takes %d argument%s, not %zu", b->name, b->min,
                     b->min == 1 ? "" : "s", call->nargs);
            } else {
                perr(p, pos, "%s takes %d to %d arguments, not %zu", b->name, b->min, b->max,
                     call->nargs);
            }
            return NULL;
        }
        if (b->fn == b_lookup || b->fn == b_xref) {
            struct node *a0 = call->args[0];
            if (a0->type != N_LIT || a0->lit->kind != MV_STR) {
                perr(p, a0->pos, "%s: the first argument must be a quoted name", b->name);
                return NULL;
            }
            call->name = es_xstrndup(a0->lit->u.str.s, a0->lit->u.str.n);
            if (b->fn == b_lookup) {
                const struct es_table_cfg *t =
                    p->ctx->cfg ? es_config_table(p->ctx->cfg, call->name) : NULL;
                call->table = t ? es_ctable_new(t) : NULL;
                if (!call->table) {
                    perr(p, a0->pos, "lookup: unknown table '%s'", call->name);
                    return NULL;
                }
            }
        }
        return call;
    }
    const char *hint = closest_builtin(fname);
    if (hint) {
        perr(p, pos, "unknown function '%s' (did you mean '%s'?)", fname, hint);
    } else {
        perr(p, pos, "unknown function '%s'", fname);
    }
    return NULL;
}

static struct node *parse_primary(struct parser *p)
{
    if (p->failed) {
        return NULL;
    }
    if (++p->depth > 64) {
        perr(p, p->tpos, "expression nested too deeply");
        return NULL;
    }
    size_t pos = p->tpos;
    struct node *nd = NULL;
    switch (p->t) {
    case T_NUM: {
        struct es_dec d;
        if (es_dec_parse(p->s + p->tpos, p->tlen, &d) != ES_OK) {
            perr(p, pos, "bad number '%.*s'", (int)p->tlen, p->s + p->tpos);
            return NULL;
        }
        nd = new_node(p, N_LIT, pos);
        nd->lit = es_mv_dec(&p->e->arena, d);
        next(p);
        break;
    }
    case T_STR: {
        nd = new_node(p, N_LIT, pos);
        struct es_buf b;
        es_buf_init(&b, 0);
        const char *s = p->s + p->tpos + 1;
        size_t len = p->tlen - 2;
        for (size_t k = 0; k < len; k++) {
            char c = s[k];
            if (c == '\\' && k + 1 < len) {
                k++;
                c = s[k] == 'n' ? '\n' : s[k] == 't' ? '\t' : s[k];
            }
            (void)es_buf_putc(&b, c);
        }
        nd->lit = es_mv_str(&p->e->arena, b.data ? b.data : "", b.len);
        es_buf_release(&b);
        next(p);
        break;
    }
    case T_LP:
        next(p);
        nd = parse_or(p);
        if (!nd) {
            return NULL;
        }
        if (p->t != T_RP) {
            perr(p, p->tpos, "expected ')'");
            return NULL;
        }
        next(p);
        break;
    case T_IDENT: {
        const char *name = p->s + p->tpos;
        size_t nlen = p->tlen;
        next(p);
        if (p->t == T_LP) {
            nd = parse_call(p, pos, name, nlen);
            break;
        }
        if (nlen == 4 && memcmp(name, "true", 4) == 0) {
            nd = new_node(p, N_LIT, pos);
            nd->lit = es_mv_bool(&p->e->arena, 1);
        } else if (nlen == 5 && memcmp(name, "false", 5) == 0) {
            nd = new_node(p, N_LIT, pos);
            nd->lit = es_mv_bool(&p->e->arena, 0);
        } else if (nlen == 4 && memcmp(name, "null", 4) == 0) {
            nd = new_node(p, N_LIT, pos);
            nd->lit = &es_mv_null_value;
        } else {
            nd = new_node(p, N_PATH, pos);
            size_t bad = 0;
            if (es_path_parse(name, nlen, &nd->path, &bad) != ES_OK) {
                perr(p, pos + bad, "bad path '%.*s'", (int)nlen, name);
                return NULL;
            }
            if (nd->path.has_star && !p->e->star) {
                p->e->star = &nd->path;
            }
        }
        break;
    }
    case T_END:
        perr(p, pos, "expression ends too early");
        return NULL;
    case T_ERR:
        return NULL;
    default:
        perr(p, pos, "unexpected '%.*s'", (int)p->tlen, p->s + p->tpos);
        return NULL;
    }
    p->depth--;
    return nd;
}

static struct node *parse_unary(struct parser *p)
{
    if (p->t == T_MINUS) {
        size_t pos = p->tpos;
        next(p);
        struct node *a = parse_unary(p);
        if (!a) {
            return NULL;
        }
        struct node *nd = new_node(p, N_NEG, pos);
        size_t cap = 0;
        add_arg(nd, a, &cap);
        return nd;
    }
    return parse_primary(p);
}

static struct node *binary(struct parser *p, enum ntype t, int op, size_t pos, struct node *l,
                           struct node *r)
{
    struct node *nd = new_node(p, t, pos);
    nd->op = op;
    size_t cap = 0;
    add_arg(nd, l, &cap);
    add_arg(nd, r, &cap);
    return nd;
}

static struct node *parse_mul(struct parser *p)
{
    struct node *l = parse_unary(p);
    while (l && (p->t == T_STAR || p->t == T_SLASH)) {
        int op = p->t == T_STAR ? OP_MUL : OP_DIV;
        size_t pos = p->tpos;
        next(p);
        struct node *r = parse_unary(p);
        if (!r) {
            return NULL;
        }
        l = binary(p, N_BIN, op, pos, l, r);
    }
    return l;
}

static struct node *parse_add(struct parser *p)
{
    struct node *l = parse_mul(p);
    while (l && (p->t == T_PLUS || p->t == T_MINUS)) {
        int op = p->t == T_PLUS ? OP_ADD : OP_SUB;
        size_t pos = p->tpos;
        next(p);
        struct node *r = parse_mul(p);
        if (!r) {
            return NULL;
        }
        l = binary(p, N_BIN, op, pos, l, r);
    }
    return l;
}

static struct node *parse_cmp(struct parser *p)
{
    struct node *l = parse_add(p);
    if (!l) {
        return NULL;
    }
    int op = -1;
    switch (p->t) {
    case T_EQ:
        op = OP_EQ;
        break;
    case T_NE:
        op = OP_NE;
        break;
    case T_LT:
        op = OP_LT;
        break;
    case T_LE:
        op = OP_LE;
        break;
    case T_GT:
        op = OP_GT;
        break;
    case T_GE:
        op = OP_GE;
        break;
    default:
        return l;
    }
    size_t pos = p->tpos;
    next(p);
    struct node *r = parse_add(p);
    return r ? binary(p, N_BIN, op, pos, l, r) : NULL;
}

static struct node *parse_not(struct parser *p)
{
    if (is_word(p, "not")) {
        size_t pos = p->tpos;
        next(p);
        struct node *a = parse_not(p);
        if (!a) {
            return NULL;
        }
        struct node *nd = new_node(p, N_NOT, pos);
        size_t cap = 0;
        add_arg(nd, a, &cap);
        return nd;
    }
    return parse_cmp(p);
}

static struct node *parse_and(struct parser *p)
{
    struct node *l = parse_not(p);
    while (l && is_word(p, "and")) {
        size_t pos = p->tpos;
        next(p);
        struct node *r = parse_not(p);
        if (!r) {
            return NULL;
        }
        l = binary(p, N_AND, 0, pos, l, r);
    }
    return l;
}

static struct node *parse_or(struct parser *p)
{
    if (++p->depth > 64) {
        perr(p, p->tpos, "expression nested too deeply");
        return NULL;
    }
    struct node *l = parse_and(p);
    while (l && is_word(p, "or")) {
        size_t pos = p->tpos;
        next(p);
        struct node *r = parse_and(p);
        if (!r) {
            return NULL;
        }
        l = binary(p, N_OR, 0, pos, l, r);
    }
    p->depth--;
    return l;
}

int es_expr_compile(const struct es_expr_ctx *ctx, const char *text, struct es_expr **out,
                    char *msg, size_t msgcap, size_t *err_off)
{
    struct es_expr *e = es_xcalloc(1, sizeof *e);
    es_arena_init(&e->arena, 1024);
    struct parser p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.e = e;
    p.s = text;
    p.n = strlen(text);
    p.msg = msg;
    p.msgcap = msgcap;
    next(&p);
    e->root = parse_or(&p);
    if (e->root && !p.failed && p.t != T_END) {
        perr(&p, p.tpos, "unexpected '%.*s' after the expression", (int)p.tlen, p.s + p.tpos);
    }
    if (p.failed || !e->root) {
        if (!p.failed) {
            perr(&p, p.tpos, "syntax error");
        }
        *err_off = p.err_off;
        es_expr_free(e);
        *out = NULL;
        return ES_ECONFIG;
    }
    *out = e;
    return ES_OK;
}

void es_expr_free(struct es_expr *e)
{
    if (!e) {
        return;
    }
    for (size_t i = 0; i < e->nall; i++) {
        struct node *nd = e->all[i];
        es_path_release(&nd->path);
        es_ctable_free(nd->table);
        es_free(nd->args);
        es_free(nd->name);
        es_free(nd);
    }
    es_free(e->all);
    es_arena_release(&e->arena);
    es_free(e);
}

const struct es_path *es_expr_star_path(const struct es_expr *e)
{
    return e ? e->star : NULL;
}

/* ---- evaluation ---- */

static int eval(const struct node *nd, struct es_eval *ev, struct es_mv **out);

static int values_equal(struct es_eval *ev, struct es_mv *a, struct es_mv *b)
{
    if (es_mv_is_null(a) || es_mv_is_null(b)) {
        return es_mv_is_null(a) && es_mv_is_null(b);
    }
    if (a->kind == MV_NUM || b->kind == MV_NUM) {
        struct es_dec x, y;
        struct es_map_failure *f = ev->fail;
        ev->fail = NULL; /* a text that is no number is simply not equal */
        int ok = num_of(ev, a, &x, "") == ES_OK && num_of(ev, b, &y, "") == ES_OK;
        ev->fail = f;
        return ok && es_dec_cmp(x, y) == 0;
    }
    if (a->kind == MV_BOOL && b->kind == MV_BOOL) {
        return a->u.b == b->u.b;
    }
    const char *s, *t;
    size_t sl, tl;
    if (text_of(ev, a, &s, &sl) && text_of(ev, b, &t, &tl)) {
        return sl == tl && memcmp(s, t, sl) == 0;
    }
    return 0;
}

static int compare(struct es_eval *ev, const struct node *nd, struct es_mv *a, struct es_mv *b,
                   int *cmp)
{
    if ((a->kind == MV_DATE || b->kind == MV_DATE)) {
        struct es_date x, y;
        int rc = date_of(ev, a, &x, "comparison");
        if (!rc) {
            rc = date_of(ev, b, &y, "comparison");
        }
        if (rc) {
            return rc;
        }
        *cmp = x.ms < y.ms ? -1 : x.ms > y.ms;
        return ES_OK;
    }
    if (a->kind == MV_NUM || b->kind == MV_NUM) {
        struct es_dec x, y;
        int rc = num_of(ev, a, &x, "comparison");
        if (!rc) {
            rc = num_of(ev, b, &y, "comparison");
        }
        if (rc) {
            return rc;
        }
        *cmp = es_dec_cmp(x, y);
        return ES_OK;
    }
    const char *s, *t;
    size_t sl, tl;
    if (!text_of(ev, a, &s, &sl) || !text_of(ev, b, &t, &tl)) {
        (void)nd;
        return es_eval_fail(ev, ES_EVALIDATION, "cannot compare lists or objects");
    }
    int c = memcmp(s, t, sl < tl ? sl : tl);
    *cmp = c ? (c < 0 ? -1 : 1) : (sl < tl ? -1 : sl > tl);
    return ES_OK;
}

static int eval_bin(const struct node *nd, struct es_eval *ev, struct es_mv **out)
{
    struct es_mv *a, *b;
    int rc = eval(nd->args[0], ev, &a);
    if (!rc) {
        rc = eval(nd->args[1], ev, &b);
    }
    if (rc) {
        return rc;
    }
    if (nd->op == OP_EQ || nd->op == OP_NE) {
        int eq = values_equal(ev, a, b);
        *out = es_mv_bool(ev->arena, nd->op == OP_EQ ? eq : !eq);
        return ES_OK;
    }
    if (es_mv_is_null(a) || es_mv_is_null(b)) {
        if (nd->op >= OP_LT) {
            *out = es_mv_bool(ev->arena, 0);
        } else {
            *out = &es_mv_null_value;
        }
        return ES_OK;
    }
    if (nd->op >= OP_LT) {
        int c = 0;
        rc = compare(ev, nd, a, b, &c);
        if (rc) {
            return rc;
        }
        int r = nd->op == OP_LT   ? c < 0
                : nd->op == OP_LE ? c <= 0
                : nd->op == OP_GT ? c > 0
                                  : c >= 0;
        *out = es_mv_bool(ev->arena, r);
        return ES_OK;
    }
    if (nd->op == OP_ADD && (a->kind == MV_STR || b->kind == MV_STR)) {
        struct es_mv *args[2] = {a, b};
        return b_concat(ev, nd, args, 2, out);
    }
    struct es_dec x, y, r;
    rc = num_of(ev, a, &x, "arithmetic");
    if (!rc) {
        rc = num_of(ev, b, &y, "arithmetic");
    }
    if (rc) {
        return rc;
    }
    switch (nd->op) {
    case OP_ADD:
        rc = es_dec_add(x, y, &r);
        break;
    case OP_SUB:
        rc = es_dec_sub(x, y, &r);
        break;
    case OP_MUL:
        rc = es_dec_mul(x, y, &r);
        break;
    default:
        if (y.m == 0) {
            return es_eval_fail(ev, ES_EVALIDATION, "division by zero");
        }
        rc = es_dec_div(x, y, &r);
        break;
    }
    if (rc) {
        return es_eval_fail(ev, ES_EVALIDATION, "arithmetic overflow (more than 18 digits)");
    }
    *out = es_mv_dec(ev->arena, r);
    return ES_OK;
}

#define MAX_ARGS 16

static int eval(const struct node *nd, struct es_eval *ev, struct es_mv **out)
{
    int rc;
    struct es_mv *a;
    switch (nd->type) {
    case N_LIT:
        *out = nd->lit;
        return ES_OK;
    case N_PATH:
        *out = es_path_get(ev->arena, &nd->path, ev->rec, ev->star);
        return ES_OK;
    case N_NEG: {
        rc = eval(nd->args[0], ev, &a);
        if (rc) {
            return rc;
        }
        if (es_mv_is_null(a)) {
            *out = a;
            return ES_OK;
        }
        struct es_dec d;
        rc = num_of(ev, a, &d, "minus");
        if (rc) {
            return rc;
        }
        d.m = -d.m;
        *out = es_mv_dec(ev->arena, d);
        return ES_OK;
    }
    case N_NOT:
        rc = eval(nd->args[0], ev, &a);
        if (rc) {
            return rc;
        }
        *out = es_mv_bool(ev->arena, !es_mv_truthy(a));
        return ES_OK;
    case N_AND:
    case N_OR:
        rc = eval(nd->args[0], ev, &a);
        if (rc) {
            return rc;
        }
        if (es_mv_truthy(a) == (nd->type == N_OR)) {
            *out = es_mv_bool(ev->arena, nd->type == N_OR);
            return ES_OK;
        }
        rc = eval(nd->args[1], ev, &a);
        if (rc) {
            return rc;
        }
        *out = es_mv_bool(ev->arena, es_mv_truthy(a));
        return ES_OK;
    case N_BIN:
        return eval_bin(nd, ev, out);
    case N_IF:
        rc = eval(nd->args[0], ev, &a);
        if (rc) {
            return rc;
        }
        return eval(nd->args[es_mv_truthy(a) ? 1 : 2], ev, out);
    case N_CALL:
    case N_LUA: {
        struct es_mv *args[MAX_ARGS];
        for (size_t i = 0; i < nd->nargs && i < MAX_ARGS; i++) {
            rc = eval(nd->args[i], ev, &args[i]);
            if (rc) {
                return rc;
            }
        }
        if (nd->type == N_LUA) {
            return es_lua_call(nd->lua, nd->name, args, nd->nargs, ev, out);
        }
        return nd->fn->fn(ev, nd, args, nd->nargs, out);
    }
    }
    return es_eval_fail(ev, ES_EINTERNAL, "bad expression node");
}

int es_expr_eval(const struct es_expr *e, struct es_eval *ev, struct es_mv **out)
{
    return eval(e->root, ev, out);
}
