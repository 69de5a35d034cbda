/* SPDX-License-Identifier: MIT */
/*
 * Internals of the mapping engine shared by its files (not part of the public API).
 *
 * Values (struct es_mv) live in the arena of one evaluation: a record parsed from JSON, the
 * intermediate results of expressions and the output tree are all arena memory, released
 * together when the record is done. Strings are (pointer, length) and need not be
 * NUL-terminated. Numbers keep the digits they were written with (raw) and are turned into an
 * exact decimal (int64 mantissa, scale 0..18) only when arithmetic needs them.
 */
#ifndef ES_MAP_INTERNAL_H
#define ES_MAP_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "map/map.h"

#define ES_DEC_MAX_SCALE 18

/* An exact decimal: value = m / 10^scale. */
struct es_dec {
    int64_t m;
    int scale;
};

enum es_date_kind { ES_DATE_DATE = 0, ES_DATE_DATETIME, ES_DATE_TIME };

/* A point in time or a calendar date.
 *  DATE: ms is midnight UTC of that calendar day (offset ignored; a date never shifts).
 *  DATETIME: ms is the UTC instant; offset_min the zone it was written in (for formatting).
 *  TIME: ms is milliseconds since midnight (SAP PT13H20M19S). */
struct es_date {
    int64_t ms;
    int kind;
    int offset_min;
};

enum es_mv_kind { MV_NULL = 0, MV_BOOL, MV_NUM, MV_STR, MV_ARR, MV_OBJ, MV_DATE };

struct es_mv;
struct es_mv_pair {
    const char *key;
    size_t klen;
    struct es_mv *val;
};

struct es_mv {
    enum es_mv_kind kind;
    union {
        int b;
        struct {
            const char *raw; /* digits as written, or NULL when computed */
            size_t rawlen;
            struct es_dec d; /* valid when has_dec */
            int has_dec;
        } num;
        struct {
            const char *s;
            size_t n;
        } str;
        struct {
            struct es_mv **items;
            size_t n, cap;
        } arr;
        struct {
            struct es_mv_pair *pairs;
            size_t n, cap;
            size_t cursor; /* where the last lookup hit: records share a field order */
        } obj;
        struct es_date date;
    } u;
};

extern struct es_mv es_mv_null_value;

/* Constructors (arena). */
struct es_mv *es_mv_new(struct es_arena *a, enum es_mv_kind kind);
struct es_mv *es_mv_str(struct es_arena *a, const char *s, size_t n); /* copies */
struct es_mv *es_mv_str_ref(struct es_arena *a, const char *s, size_t n);
struct es_mv *es_mv_bool(struct es_arena *a, int b);
struct es_mv *es_mv_dec(struct es_arena *a, struct es_dec d);
struct es_mv *es_mv_date(struct es_arena *a, struct es_date d);
void es_mv_arr_push(struct es_arena *a, struct es_mv *arr, struct es_mv *v);
/* Object field: returns the value or NULL. */
struct es_mv *es_mv_get(const struct es_mv *obj, const char *key, size_t klen);
/* Sets (replaces) an object field; key is copied. */
void es_mv_set(struct es_arena *a, struct es_mv *obj, const char *key, size_t klen,
               struct es_mv *v);
/* Appends a field without looking for an existing one; key is borrowed (must outlive the
 * value: plan keys do). */
void es_mv_push(struct es_arena *a, struct es_mv *obj, const char *key, size_t klen,
                struct es_mv *v);
int es_mv_is_null(const struct es_mv *v);

/* JSON text -> value (yajl). Returns ES_OK or ES_EPOISON with a message in err. */
int es_mv_parse(struct es_arena *a, const char *json, size_t len, struct es_mv **out,
                struct es_err *err);
/* Value -> compact JSON appended to b. */
int es_mv_write(struct es_buf *b, const struct es_mv *v);
/* jansson <-> value. */
struct es_mv *es_mv_from_json(struct es_arena *a, const json_t *j);
json_t *es_mv_to_json(const struct es_mv *v);

/* The number's exact decimal; ES_EVALIDATION when the written number cannot be represented
 * in 18 digits (the message says so). */
int es_mv_num_dec(struct es_mv *v, struct es_dec *out);

/* Decimals. All return ES_OK or ES_EVALIDATION (overflow, division by zero, bad text). */
int es_dec_parse(const char *s, size_t n, struct es_dec *out);
int es_dec_add(struct es_dec a, struct es_dec b, struct es_dec *out);
int es_dec_sub(struct es_dec a, struct es_dec b, struct es_dec *out);
int es_dec_mul(struct es_dec a, struct es_dec b, struct es_dec *out);
int es_dec_div(struct es_dec a, struct es_dec b, struct es_dec *out);
int es_dec_cmp(struct es_dec a, struct es_dec b);
/* Rounds half away from zero to `places` (may be negative: round to tens). */
int es_dec_round(struct es_dec a, int places, struct es_dec *out);
/* Removes trailing fractional zeros. */
struct es_dec es_dec_normalize(struct es_dec a);
/* Writes digits ("-12.50") into out[cap]; returns the length. */
size_t es_dec_format(struct es_dec a, char *out, size_t cap);

/* Dates. Parse: ISO 8601 (date, date-time with Z/offset, fraction), Salesforce
 * 2024-05-01T13:20:19.000+0000, SAP /Date(ms)/ and /Date(ms+0000)/, PT13H20M19S. With fmt
 * (strptime-like: %Y %m %d %H %M %S %y %b %f %z, other characters literal) only that form.
 * Returns ES_OK or ES_EVALIDATION. */
int es_date_parse(const char *s, size_t n, const char *fmt, struct es_date *out);
/* Formats: fmt NULL or "iso" (ISO 8601), "sap" (/Date(ms)/), "salesforce", "sap_time"
 * (PT..H..M..S), or a strftime-like pattern. Returns the length written (out NUL-terminated). */
size_t es_date_format(const struct es_date *d, const char *fmt, char *out, size_t cap);
/* Days since 1970-01-01 for a proleptic Gregorian date and back. */
int64_t es_days_from_civil(int64_t y, unsigned m, unsigned d);
void es_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* A lookup table of the config with key lengths precomputed (compiled once per use). */
struct es_ctable {
    const struct es_table_cfg *cfg;
    size_t n;
    const char **keys, **values;
    size_t *klen, *vlen;
};
struct es_ctable *es_ctable_new(const struct es_table_cfg *t);
void es_ctable_free(struct es_ctable *t);
/* Finds key; returns 1 and the value, or 0. */
int es_ctable_find(const struct es_ctable *t, const char *key, size_t n, const char **v,
                   size_t *vn);

/* A street block split once into its three parts (spans into the block). */
struct es_addr_parts {
    const char *street, *number;
    size_t street_n, number_n;
    char supplement[512];
    size_t supplement_n;
};
void es_addr_parse(const char *block, size_t n, const char *country, size_t clen,
                   struct es_addr_parts *out);

/* Addresses (address.c). Each writes its part of the block into out (arena string). */
enum es_addr_part { ES_ADDR_STREET, ES_ADDR_HOUSE_NUMBER, ES_ADDR_SUPPLEMENT };
/* Splits a street block (one or more lines) by the country's convention. */
void es_addr_split(const char *block, size_t n, const char *country, size_t clen,
                   enum es_addr_part part, struct es_buf *out);
/* Joins structured parts into one block by the country's convention. */
void es_addr_join(const char *street, size_t sn, const char *number, size_t nn,
                  const char *supplement, size_t supn, const char *country, size_t cn,
                  struct es_buf *out);
/* 1 when the country writes the house number before the street name. */
int es_addr_number_first(const char *country, size_t cn);

/* UTF-8 helpers (utf8proc). */
size_t es_utf8_len(const char *s, size_t n);
/* Byte offset of the character index ci (clamped to n). */
size_t es_utf8_offset(const char *s, size_t n, size_t ci);
/* Upper/lower-cases into out. */
void es_utf8_case(const char *s, size_t n, int upper, struct es_buf *out);

/* ---- Expressions (expr.c) ---- */

struct es_expr;
struct es_lua;

/* What expression compilation needs to know. */
struct es_expr_ctx {
    const struct es_config *cfg; /* for lookup() tables; may be NULL */
    struct es_lua *lua;          /* for lua.fn(); may be NULL */
    /* Error position: the YAML node holding the expression (column of the text start). */
    const char *file;
    int line, col;
    int quoted; /* the scalar was quoted: columns shift by one */
};

/* Per-evaluation state. */
struct es_eval {
    struct es_arena *arena;
    const struct es_mv *rec;
    const struct es_map_env *env;
    struct es_map_failure *fail;
    long star; /* current index for [*], -1 when none */
    struct es_buf tmp;
    /* The last street block split (address_* are usually called three times in a row). */
    const char *addr_block, *addr_country;
    size_t addr_block_n, addr_country_n;
    struct es_addr_parts addr;
};

/* Compiles text. On error returns ES_ECONFIG with msg and *err_off = byte offset in text. */
int es_expr_compile(const struct es_expr_ctx *ctx, const char *text, struct es_expr **out,
                    char *msg, size_t msgcap, size_t *err_off);
void es_expr_free(struct es_expr *e);
/* Evaluates. On failure fills ev->fail (message, code) and returns the code. */
int es_expr_eval(const struct es_expr *e, struct es_eval *ev, struct es_mv **out);
/* The source list an expression iterates over with [*] (first [*] path), or NULL. */
const struct es_path *es_expr_star_path(const struct es_expr *e);

/* Paths: A.B[0].C, A[*].B, compiled into segments. */
struct es_path_seg {
    const char *key; /* NULL for an index segment */
    size_t klen;
    long index; /* -1 = [*] */
};
struct es_path {
    struct es_path_seg *segs;
    size_t n;
    int has_star;
    size_t star_at; /* index of the [*] segment */
};
/* Parses a path; returns ES_OK or ES_ECONFIG with *bad_at. Strings are copied (es_xmalloc). */
int es_path_parse(const char *s, size_t n, struct es_path *out, size_t *bad_at);
void es_path_release(struct es_path *p);
/* Resolves a path in rec; [*] uses star (or the whole list when star < 0: returns an array). */
struct es_mv *es_path_get(struct es_arena *a, const struct es_path *p, const struct es_mv *rec,
                          long star);
/* Length of the list at the [*] of p (0 when absent or not a list). */
size_t es_path_star_len(const struct es_path *p, const struct es_mv *rec);

/* Truthiness: null, false, "", 0 are false. */
int es_mv_truthy(const struct es_mv *v);
/* Text of a scalar for string functions (numbers as written, booleans true/false, dates ISO).
 * Returns 0 for null/array/object. The text may point into a temporary in ev->arena. */
int es_mv_text(struct es_arena *a, const struct es_mv *v, const char **s, size_t *n);

/* Fails the evaluation: fills ev->fail->code/message (first failure kept) and returns code. */
int es_eval_fail(struct es_eval *ev, enum es_code code, const char *fmt, ...) ES_PRINTF(3, 4);

/* ---- Lua (lua.c) ---- */
/* Loads the file of custom functions into a sandbox. Returns ES_OK or ES_ECONFIG (msg). */
int es_lua_open(const char *path, struct es_lua **out, char *msg, size_t cap);
void es_lua_close(struct es_lua *l);
/* 1 when the Lua file defines a function named name. */
int es_lua_has(struct es_lua *l, const char *name);
/* Calls name(args...) with a time limit; result converted back into the arena. */
int es_lua_call(struct es_lua *l, const char *name, struct es_mv **args, size_t nargs,
                struct es_eval *ev, struct es_mv **out);
/* Instruction budget and wall time per call (tests lower them). */
void es_lua_set_limits(struct es_lua *l, long ms);

#endif
