/* SPDX-License-Identifier: MIT */
/*
 * Mapping values: the small JSON-like tree every evaluation works on, kept in the arena of
 * one record. JSON text is parsed with yajl's event parser straight into arena nodes (yajl's
 * own allocations go to the arena too, so a record costs no malloc), numbers keep the digits
 * they were written with, and the writer emits compact JSON. Conversions to and from jansson
 * serve the engine's json_t boundary.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "core/mem.h"
#include "map/internal.h"

struct es_mv es_mv_null_value = {.kind = MV_NULL};

struct es_mv *es_mv_new(struct es_arena *a, enum es_mv_kind kind)
{
    struct es_mv *v = es_arena_alloc(a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->kind = kind;
    return v;
}

struct es_mv *es_mv_str(struct es_arena *a, const char *s, size_t n)
{
    struct es_mv *v = es_mv_new(a, MV_STR);
    char *p = es_arena_alloc(a, n + 1);
    if (n) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    v->u.str.s = p;
    v->u.str.n = n;
    return v;
}

struct es_mv *es_mv_str_ref(struct es_arena *a, const char *s, size_t n)
{
    struct es_mv *v = es_mv_new(a, MV_STR);
    v->u.str.s = s;
    v->u.str.n = n;
    return v;
}

struct es_mv *es_mv_bool(struct es_arena *a, int b)
{
    struct es_mv *v = es_mv_new(a, MV_BOOL);
    v->u.b = b != 0;
    return v;
}

struct es_mv *es_mv_dec(struct es_arena *a, struct es_dec d)
{
    struct es_mv *v = es_mv_new(a, MV_NUM);
    v->u.num.d = d;
    v->u.num.has_dec = 1;
    return v;
}

struct es_mv *es_mv_date(struct es_arena *a, struct es_date d)
{
    struct es_mv *v = es_mv_new(a, MV_DATE);
    v->u.date = d;
    return v;
}

int es_mv_is_null(const struct es_mv *v)
{
    return !v || v->kind == MV_NULL;
}

void es_mv_arr_push(struct es_arena *a, struct es_mv *arr, struct es_mv *v)
{
    if (arr->u.arr.n == arr->u.arr.cap) {
        size_t cap = arr->u.arr.cap ? arr->u.arr.cap * 2 : 4;
        struct es_mv **items = es_arena_alloc(a, cap * sizeof *items);
        if (arr->u.arr.n) {
            memcpy(items, arr->u.arr.items, arr->u.arr.n * sizeof *items);
        }
        arr->u.arr.items = items;
        arr->u.arr.cap = cap;
    }
    arr->u.arr.items[arr->u.arr.n++] = v;
}

static void obj_push(struct es_arena *a, struct es_mv *obj, const char *key, size_t klen,
                     struct es_mv *v)
{
    if (obj->u.obj.n == obj->u.obj.cap) {
        size_t cap = obj->u.obj.cap ? obj->u.obj.cap * 2 : 16;
        struct es_mv_pair *pairs = es_arena_alloc(a, cap * sizeof *pairs);
        if (obj->u.obj.n) {
            memcpy(pairs, obj->u.obj.pairs, obj->u.obj.n * sizeof *pairs);
        }
        obj->u.obj.pairs = pairs;
        obj->u.obj.cap = cap;
    }
    struct es_mv_pair *p = &obj->u.obj.pairs[obj->u.obj.n++];
    p->key = key;
    p->klen = klen;
    p->val = v;
}

void es_mv_push(struct es_arena *a, struct es_mv *obj, const char *key, size_t klen,
                struct es_mv *v)
{
    obj_push(a, obj, key, klen, v);
}

struct es_mv *es_mv_get(const struct es_mv *obj, const char *key, size_t klen)
{
    if (!obj || obj->kind != MV_OBJ) {
        return NULL;
    }
    /* Rules read fields in about the order records carry them: start after the last hit. */
    size_t n = obj->u.obj.n;
    size_t start = obj->u.obj.cursor < n ? obj->u.obj.cursor : 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = start + k < n ? start + k : start + k - n;
        const struct es_mv_pair *p = &obj->u.obj.pairs[i];
        if (p->klen == klen && (klen == 0 || p->key[0] == key[0]) &&
            memcmp(p->key, key, klen) == 0) {
            ((struct es_mv *)obj)->u.obj.cursor = i + 1;
            return p->val;
        }
    }
    return NULL;
}

void es_mv_set(struct es_arena *a, struct es_mv *obj, const char *key, size_t klen, struct es_mv *v)
{
    for (size_t i = 0; i < obj->u.obj.n; i++) {
        struct es_mv_pair *p = &obj->u.obj.pairs[i];
        if (p->klen == klen && memcmp(p->key, key, klen) == 0) {
            p->val = v;
            return;
        }
    }
    obj_push(a, obj, es_arena_strndup(a, key, klen), klen, v);
}

/* ---- yajl -> arena tree ---- */

#define PARSE_MAX_DEPTH 64

struct pstate {
    struct es_arena *a;
    const char *text; /* the input: strings without escapes are referenced, not copied */
    size_t text_len;
    struct es_mv *stack[PARSE_MAX_DEPTH];
    int depth;
    const char *key;
    size_t klen;
    struct es_mv *root;
    int too_deep;
};

static int add_value(struct pstate *p, struct es_mv *v)
{
    if (p->depth == 0) {
        p->root = v;
        return 1;
    }
    struct es_mv *top = p->stack[p->depth - 1];
    if (top->kind == MV_ARR) {
        es_mv_arr_push(p->a, top, v);
    } else {
        obj_push(p->a, top, p->key, p->klen, v);
    }
    return 1;
}

static int cb_null(void *ctx)
{
    struct pstate *p = ctx;
    return add_value(p, es_mv_new(p->a, MV_NULL));
}

static int cb_bool(void *ctx, int b)
{
    struct pstate *p = ctx;
    return add_value(p, es_mv_bool(p->a, b));
}

/* yajl hands strings without escapes as pointers into the input, which outlives the
 * evaluation: those are referenced; decoded ones (escapes) live in yajl's buffer and are
 * copied. */
static const char *keep(struct pstate *p, const char *s, size_t n)
{
    if (s >= p->text && s + n <= p->text + p->text_len) {
        return s;
    }
    return es_arena_strndup(p->a, s, n);
}

static int cb_number(void *ctx, const char *s, size_t n)
{
    struct pstate *p = ctx;
    struct es_mv *v = es_mv_new(p->a, MV_NUM);
    v->u.num.raw = keep(p, s, n);
    v->u.num.rawlen = n;
    return add_value(p, v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    struct pstate *p = ctx;
    return add_value(p, es_mv_str_ref(p->a, keep(p, (const char *)s, n), n));
}

static int push(struct pstate *p, enum es_mv_kind kind)
{
    if (p->depth >= PARSE_MAX_DEPTH) {
        p->too_deep = 1;
        return 0;
    }
    struct es_mv *v = es_mv_new(p->a, kind);
    add_value(p, v);
    p->stack[p->depth++] = v;
    return 1;
}

static int cb_start_map(void *ctx)
{
    return push(ctx, MV_OBJ);
}

static int cb_map_key(void *ctx, const unsigned char *s, size_t n)
{
    struct pstate *p = ctx;
    p->key = keep(p, (const char *)s, n);
    p->klen = n;
    return 1;
}

static int cb_end(void *ctx)
{
    struct pstate *p = ctx;
    p->depth--;
    return 1;
}

static int cb_start_array(void *ctx)
{
    return push(ctx, MV_ARR);
}

static const yajl_callbacks callbacks = {
    cb_null,      cb_bool,    NULL,   NULL,           cb_number, cb_string,
    cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

/* yajl's allocations come from the arena: a size header lets realloc copy. */
static void *ya_malloc(void *ctx, size_t n)
{
    size_t *p = es_arena_alloc(ctx, n + 16);
    p[0] = n;
    return (char *)p + 16;
}

static void *ya_realloc(void *ctx, void *old, size_t n)
{
    void *p = ya_malloc(ctx, n);
    if (old) {
        size_t oldn = *(size_t *)((char *)old - 16);
        memcpy(p, old, oldn < n ? oldn : n);
    }
    return p;
}

static void ya_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p;
}

int es_mv_parse(struct es_arena *a, const char *json, size_t len, struct es_mv **out,
                struct es_err *err)
{
    struct pstate p;
    memset(&p, 0, sizeof p);
    p.a = a;
    p.text = json;
    p.text_len = len;
    yajl_alloc_funcs af = {ya_malloc, ya_realloc, ya_free, a};
    yajl_handle h = yajl_alloc(&callbacks, &af, &p);
    yajl_status st = yajl_parse(h, (const unsigned char *)json, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }
    if (st != yajl_status_ok) {
        if (p.too_deep) {
            es_err_set(err, ES_EPOISON, "JSON nested deeper than %d levels", PARSE_MAX_DEPTH);
        } else {
            unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)json, len);
            size_t off = yajl_get_bytes_consumed(h);
            size_t ml = strlen((const char *)msg);
            while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == ' ' || msg[ml - 1] == '.')) {
                msg[--ml] = '\0';
            }
            es_err_set(err, ES_EPOISON, "invalid JSON at byte %zu: %s", off, (const char *)msg);
            yajl_free_error(h, msg);
        }
        yajl_free(h);
        return ES_EPOISON;
    }
    yajl_free(h);
    if (!p.root) {
        return es_err_set(err, ES_EPOISON, "empty JSON text");
    }
    *out = p.root;
    return ES_OK;
}

/* ---- writer ---- */

/* An upper bound of the bytes es_mv_write produces for v. */
static size_t write_bound(const struct es_mv *v)
{
    size_t n = 0;
    switch (v ? v->kind : MV_NULL) {
    case MV_NULL:
    case MV_BOOL:
        return 5;
    case MV_NUM:
        return v->u.num.raw ? v->u.num.rawlen : 48;
    case MV_STR:
        return v->u.str.n * 6 + 2;
    case MV_DATE:
        return 64 * 6 + 2;
    case MV_ARR:
        n = 2;
        for (size_t i = 0; i < v->u.arr.n; i++) {
            n += write_bound(v->u.arr.items[i]) + 1;
        }
        return n;
    case MV_OBJ:
        n = 2;
        for (size_t i = 0; i < v->u.obj.n; i++) {
            n += v->u.obj.pairs[i].klen * 6 + 4 + write_bound(v->u.obj.pairs[i].val);
        }
        return n;
    }
    return 0;
}

/* 8 bytes at a time: does any byte need an escape (< 0x20, '"', '\\')? */
static int word_needs_escape(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t lt20 = (x - ones * 0x20) & ~x;
    uint64_t q = x ^ (ones * '"');
    uint64_t bs = x ^ (ones * '\\');
    return ((lt20 | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & highs) != 0;
}

static char *put_str(char *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '"';
    size_t i = 0, run = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!word_needs_escape(w)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        memcpy(o, s + run, i - run);
        o += i - run;
        run = i + 1;
        i++;
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *o++ = (char)c;
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
            break;
        }
    }
    memcpy(o, s + run, n - run);
    o += n - run;
    *o++ = '"';
    return o;
}

/* Writes v at o (room checked by the caller through write_bound). */
static char *put_value(char *o, const struct es_mv *v)
{
    char tmp[64];
    size_t n;
    switch (v ? v->kind : MV_NULL) {
    case MV_NULL:
        memcpy(o, "null", 4);
        return o + 4;
    case MV_BOOL:
        if (v->u.b) {
            memcpy(o, "true", 4);
            return o + 4;
        }
        memcpy(o, "false", 5);
        return o + 5;
    case MV_NUM:
        if (v->u.num.raw) {
            memcpy(o, v->u.num.raw, v->u.num.rawlen);
            return o + v->u.num.rawlen;
        }
        n = es_dec_format(v->u.num.d, tmp, sizeof tmp);
        memcpy(o, tmp, n);
        return o + n;
    case MV_STR:
        return put_str(o, v->u.str.s, v->u.str.n);
    case MV_DATE:
        n = es_date_format(&v->u.date, NULL, tmp, sizeof tmp);
        return put_str(o, tmp, n);
    case MV_ARR:
        *o++ = '[';
        for (size_t i = 0; i < v->u.arr.n; i++) {
            if (i) {
                *o++ = ',';
            }
            o = put_value(o, v->u.arr.items[i]);
        }
        *o++ = ']';
        return o;
    case MV_OBJ:
        *o++ = '{';
        for (size_t i = 0; i < v->u.obj.n; i++) {
            const struct es_mv_pair *p = &v->u.obj.pairs[i];
            if (i) {
                *o++ = ',';
            }
            o = put_str(o, p->key, p->klen);
            *o++ = ':';
            o = put_value(o, p->val);
        }
        *o++ = '}';
        return o;
    }
    return o;
}

int es_mv_write(struct es_buf *b, const struct es_mv *v)
{
    size_t bound = write_bound(v);
    int rc = es_buf_reserve(b, bound + 1);
    if (rc) {
        return rc;
    }
    char *end = put_value(b->data + b->len, v);
    b->len = (size_t)(end - b->data);
    b->data[b->len] = '\0';
    return ES_OK;
}

/* ---- jansson ---- */

struct es_mv *es_mv_from_json(struct es_arena *a, const json_t *j)
{
    char tmp[64];
    switch (j ? json_typeof(j) : JSON_NULL) {
    case JSON_OBJECT: {
        struct es_mv *v = es_mv_new(a, MV_OBJ);
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)j, k, val)
        {
            size_t klen = strlen(k);
            obj_push(a, v, es_arena_strndup(a, k, klen), klen, es_mv_from_json(a, val));
        }
        return v;
    }
    case JSON_ARRAY: {
        struct es_mv *v = es_mv_new(a, MV_ARR);
        for (size_t i = 0; i < json_array_size(j); i++) {
            es_mv_arr_push(a, v, es_mv_from_json(a, json_array_get(j, i)));
        }
        return v;
    }
    case JSON_STRING:
        return es_mv_str_ref(a, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: {
        int n = snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        struct es_mv *v = es_mv_new(a, MV_NUM);
        v->u.num.raw = es_arena_strndup(a, tmp, (size_t)n);
        v->u.num.rawlen = (size_t)n;
        return v;
    }
    case JSON_REAL: {
        /* jansson keeps a double: 15 significant digits give back what was written. */
        int n = snprintf(tmp, sizeof tmp, "%.15g", json_real_value(j));
        struct es_mv *v = es_mv_new(a, MV_NUM);
        v->u.num.raw = es_arena_strndup(a, tmp, (size_t)n);
        v->u.num.rawlen = (size_t)n;
        return v;
    }
    case JSON_TRUE:
        return es_mv_bool(a, 1);
    case JSON_FALSE:
        return es_mv_bool(a, 0);
    case JSON_NULL:
        break;
    }
    return es_mv_new(a, MV_NULL);
}

json_t *es_mv_to_json(const struct es_mv *v)
{
    char tmp[64];
    switch (v ? v->kind : MV_NULL) {
    case MV_NULL:
        return json_null();
    case MV_BOOL:
        return json_boolean(v->u.b);
    case MV_STR:
        return json_stringn_nocheck(v->u.str.s, v->u.str.n);
    case MV_DATE: {
        size_t n = es_date_format(&v->u.date, NULL, tmp, sizeof tmp);
        return json_stringn(tmp, n);
    }
    case MV_NUM: {
        json_t *j = NULL;
        if (v->u.num.raw) {
            j = json_loadb(v->u.num.raw, v->u.num.rawlen, JSON_DECODE_ANY, NULL);
        } else {
            size_t n = es_dec_format(v->u.num.d, tmp, sizeof tmp);
            j = json_loadb(tmp, n, JSON_DECODE_ANY, NULL);
        }
        return j ? j : json_null();
    }
    case MV_ARR: {
        json_t *arr = json_array();
        for (size_t i = 0; i < v->u.arr.n; i++) {
            json_array_append_new(arr, es_mv_to_json(v->u.arr.items[i]));
        }
        return arr;
    }
    case MV_OBJ: {
        json_t *obj = json_object();
        for (size_t i = 0; i < v->u.obj.n; i++) {
            const struct es_mv_pair *p = &v->u.obj.pairs[i];
            json_object_setn_new(obj, p->key, p->klen, es_mv_to_json(p->val));
        }
        return obj;
    }
    }
    return json_null();
}

int es_mv_num_dec(struct es_mv *v, struct es_dec *out)
{
    if (!v->u.num.has_dec) {
        if (es_dec_parse(v->u.num.raw, v->u.num.rawlen, &v->u.num.d) != ES_OK) {
            return ES_EVALIDATION;
        }
        v->u.num.has_dec = 1;
    }
    *out = v->u.num.d;
    return ES_OK;
}

int es_mv_truthy(const struct es_mv *v)
{
    if (!v) {
        return 0;
    }
    switch (v->kind) {
    case MV_NULL:
        return 0;
    case MV_BOOL:
        return v->u.b;
    case MV_STR:
        return v->u.str.n > 0;
    case MV_NUM: {
        struct es_dec d;
        if (es_mv_num_dec((struct es_mv *)v, &d) != ES_OK) {
            return 1;
        }
        return d.m != 0;
    }
    default:
        return 1;
    }
}

int es_mv_text(struct es_arena *a, const struct es_mv *v, const char **s, size_t *n)
{
    char tmp[64];
    switch (v ? v->kind : MV_NULL) {
    case MV_STR:
        *s = v->u.str.s;
        *n = v->u.str.n;
        return 1;
    case MV_BOOL:
        *s = v->u.b ? "true" : "false";
        *n = strlen(*s);
        return 1;
    case MV_NUM:
        if (v->u.num.raw) {
            *s = v->u.num.raw;
            *n = v->u.num.rawlen;
        } else {
            size_t len = es_dec_format(v->u.num.d, tmp, sizeof tmp);
            *s = es_arena_strndup(a, tmp, len);
            *n = len;
        }
        return 1;
    case MV_DATE: {
        size_t len = es_date_format(&v->u.date, NULL, tmp, sizeof tmp);
        *s = es_arena_strndup(a, tmp, len);
        *n = len;
        return 1;
    }
    default:
        return 0;
    }
}
