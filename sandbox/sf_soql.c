/* SPDX-License-Identifier: MIT */
/*
 * Salesforce emulator: the SOQL subset. A hand-written lexer and recursive-descent parser
 * for SELECT fields (incl. relationship paths like Account.Owner.Name, and COUNT()) FROM one
 * object [WHERE conditions with = != <> < > <= >= LIKE IN NOT IN AND OR NOT and parentheses,
 * string/number/boolean/null/date/datetime literals and TODAY, YESTERDAY, LAST_N_DAYS:n]
 * [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]; evaluated in memory
 * over the object's records. Errors use the org's codes (MALFORMED_QUERY, INVALID_FIELD,
 * INVALID_TYPE).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mem.h"
#include "sf_int.h"

enum tk { T_END = 0, T_IDENT, T_STR, T_NUM, T_DATE, T_DATETIME, T_OP, T_LP, T_RP, T_COMMA, T_BAD };

struct tok {
    enum tk k;
    char text[512];
    int pos;
};

struct lex {
    const char *s;
    int p;
    struct tok cur;
};

static void lex_next(struct lex *L)
{
    const char *s = L->s;
    while (isspace((unsigned char)s[L->p])) {
        L->p++;
    }
    struct tok *t = &L->cur;
    t->pos = L->p;
    t->text[0] = '\0';
    char ch = s[L->p];
    if (!ch) {
        t->k = T_END;
        return;
    }
    if (ch == '(' || ch == ')' || ch == ',') {
        t->k = ch == '(' ? T_LP : ch == ')' ? T_RP : T_COMMA;
        t->text[0] = ch;
        t->text[1] = '\0';
        L->p++;
        return;
    }
    if (ch == '\'') {
        size_t n = 0;
        L->p++;
        while (s[L->p] && s[L->p] != '\'') {
            char c = s[L->p];
            if (c == '\\' && s[L->p + 1]) {
                L->p++;
                c = s[L->p];
                c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
            }
            if (n + 1 < sizeof t->text) {
                t->text[n++] = c;
            }
            L->p++;
        }
        t->text[n] = '\0';
        t->k = s[L->p] == '\'' ? T_STR : T_BAD;
        if (s[L->p]) {
            L->p++;
        }
        return;
    }
    if (strchr("=!<>", ch)) {
        int n = 1;
        if ((ch == '!' || ch == '<' || ch == '>') && s[L->p + 1] == '=') {
            n = 2;
        } else if (ch == '<' && s[L->p + 1] == '>') {
            n = 2;
        }
        memcpy(t->text, s + L->p, (size_t)n);
        t->text[n] = '\0';
        t->k = (ch == '!' && n == 1) ? T_BAD : T_OP;
        L->p += n;
        return;
    }
    if (isdigit((unsigned char)ch) ||
        ((ch == '-' || ch == '+') && isdigit((unsigned char)s[L->p + 1]))) {
        int q = L->p;
        /* date or datetime literal: YYYY-MM-DD[THH:MM:SS[.fff](Z|+hh:mm)] */
        if (isdigit((unsigned char)s[q]) && strlen(s + q) >= 10 && s[q + 4] == '-' &&
            s[q + 7] == '-') {
            int e = q + 10;
            if (s[e] == 'T') {
                while (s[e] && (isalnum((unsigned char)s[e]) || strchr(":.+-", s[e]))) {
                    e++;
                }
                t->k = T_DATETIME;
            } else {
                t->k = T_DATE;
            }
            size_t n = (size_t)(e - q) < sizeof t->text ? (size_t)(e - q) : sizeof t->text - 1;
            memcpy(t->text, s + q, n);
            t->text[n] = '\0';
            L->p = e;
            return;
        }
        int e = q + 1;
        while (isdigit((unsigned char)s[e]) || s[e] == '.') {
            e++;
        }
        size_t n = (size_t)(e - q) < sizeof t->text ? (size_t)(e - q) : sizeof t->text - 1;
        memcpy(t->text, s + q, n);
        t->text[n] = '\0';
        t->k = T_NUM;
        L->p = e;
        return;
    }
    if (isalpha((unsigned char)ch) || ch == '_') {
        int e = L->p;
        while (isalnum((unsigned char)s[e]) || s[e] == '_' || s[e] == '.' ||
               (s[e] == ':' && isdigit((unsigned char)s[e + 1]))) {
            e++;
        }
        size_t n = (size_t)(e - L->p) < sizeof t->text ? (size_t)(e - L->p) : sizeof t->text - 1;
        memcpy(t->text, s + L->p, n);
        t->text[n] = '\0';
        t->k = T_IDENT;
        L->p = e;
        return;
    }
    t->k = T_BAD;
    t->text[0] = ch;
    t->text[1] = '\0';
    L->p++;
}

static int is_kw(const struct tok *t, const char *kw)
{
    return t->k == T_IDENT && strcasecmp(t->text, kw) == 0;
}

/* A resolved field path: hops through reference fields, then the final field. */
#define MAX_HOPS 5
struct path {
    int nhops;
    const struct sf_field *hop[MAX_HOPS]; /* reference fields */
    const struct sf_object *hop_obj[MAX_HOPS + 1];
    const struct sf_field *f; /* final field */
};

enum op { OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE, OP_GE, OP_LIKE, OP_IN, OP_NIN };
enum nk { N_AND, N_OR, N_NOT, N_CMP };

/* A literal. */
struct lit {
    enum { L_STR, L_NUM, L_BOOL, L_NULL, L_DATE, L_DT, L_RANGE } k;
    char s[512];
    double d;
    int64_t ms, ms_end; /* L_DT: ms; L_RANGE: [ms, ms_end) */
};

struct node {
    enum nk k;
    struct node *a, *b;
    struct path path;
    enum op op;
    struct lit *lits;
    int nlits;
};

struct order {
    struct path path;
    int desc, nulls_last;
};

struct query {
    const struct sf_object *obj;
    int count_only;
    struct path sel[128];
    int nsel;
    struct node *where;
    struct order ord[8];
    int nord;
    long limit, offset;
};

struct parser {
    struct sf_ctx *c;
    struct lex L;
    const char *q;
    int status;
    json_t *errs;
    int failed;
    const struct sf_object *obj;
};

static void perr(struct parser *P, const char *code, const char *fmt, ...) ES_PRINTF(3, 4);

static void perr(struct parser *P, const char *code, const char *fmt, ...)
{
    if (P->failed) {
        return;
    }
    P->failed = 1;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sf_err_add(P->errs, code, msg, NULL);
    P->status = 400;
}

static void unexpected(struct parser *P)
{
    perr(P, "MALFORMED_QUERY", "\n%s\n^\nERROR at Row:1:Column:%d\nunexpected token: '%s'", P->q,
         P->L.cur.pos + 1, P->L.cur.k == T_END ? "<EOF>" : P->L.cur.text);
}

static void free_node(struct node *n)
{
    if (!n) {
        return;
    }
    free_node(n->a);
    free_node(n->b);
    es_free(n->lits);
    es_free(n);
}

static int resolve(struct parser *P, const struct sf_object *o, const char *text, struct path *p)
{
    memset(p, 0, sizeof *p);
    p->hop_obj[0] = o;
    char buf[512];
    es_strlcpy(buf, text, sizeof buf);
    char *part = buf;
    /* a leading "Account." naming the queried object itself is allowed */
    char *dot = strchr(part, '.');
    if (dot && (size_t)(dot - part) == strlen(o->name) &&
        strncasecmp(part, o->name, (size_t)(dot - part)) == 0 && !sf_fld_rel(o, o->name)) {
        part = dot + 1;
    }
    for (;;) {
        dot = strchr(part, '.');
        if (!dot) {
            break;
        }
        *dot = '\0';
        const struct sf_field *ref = sf_fld_rel(p->hop_obj[p->nhops], part);
        const struct sf_object *to = ref ? sf_obj(P->c, ref->reference_to) : NULL;
        if (!ref || !to || p->nhops >= MAX_HOPS) {
            perr(P, "INVALID_FIELD",
                 "\n%s\n^\nERROR at Row:1:Column:1\nDidn't understand relationship '%s' in "
                 "field path. If you are attempting to use a custom relationship, be sure to "
                 "append the '__r' after the custom relationship name. Please reference your "
                 "WSDL or the describe call for the appropriate names.",
                 P->q, part);
            return -1;
        }
        p->hop[p->nhops++] = ref;
        p->hop_obj[p->nhops] = to;
        part = dot + 1;
    }
    p->f = sf_fld(p->hop_obj[p->nhops], part);
    if (!p->f) {
        perr(P, "INVALID_FIELD",
             "\n%s\n^\nERROR at Row:1:Column:1\nNo such column '%s' on entity '%s'. If you are "
             "attempting to use a custom field, be sure to append the '__c' after the custom "
             "field name. Please reference your WSDL or the describe call for the appropriate "
             "names.",
             P->q, part, p->hop_obj[p->nhops]->name);
        return -1;
    }
    return 0;
}

static int64_t day_start(int64_t now_ms, int days_back)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    return ((int64_t)timegm(&tm) - (int64_t)days_back * 86400) * 1000;
}

static int parse_lit(struct parser *P, struct lit *l)
{
    struct tok *t = &P->L.cur;
    memset(l, 0, sizeof *l);
    if (t->k == T_STR) {
        l->k = L_STR;
        es_strlcpy(l->s, t->text, sizeof l->s);
    } else if (t->k == T_NUM) {
        l->k = L_NUM;
        l->d = strtod(t->text, NULL);
        es_strlcpy(l->s, t->text, sizeof l->s);
    } else if (t->k == T_DATE) {
        l->k = L_DATE;
        es_strlcpy(l->s, t->text, sizeof l->s);
        if (!sf_parse_dt(t->text, &l->ms)) {
            perr(P, "MALFORMED_QUERY", "value of filter criterion is not a valid date: %s",
                 t->text);
            return -1;
        }
    } else if (t->k == T_DATETIME) {
        l->k = L_DT;
        if (!sf_parse_dt(t->text, &l->ms)) {
            perr(P, "MALFORMED_QUERY",
                 "\n%s\n^\nERROR at Row:1:Column:%d\nline 1:%d no viable alternative at "
                 "character ' ' (a '+' in a URL must be encoded as %%2B)",
                 P->q, t->pos + 1, t->pos);
            return -1;
        }
    } else if (is_kw(t, "true") || is_kw(t, "false")) {
        l->k = L_BOOL;
        l->d = is_kw(t, "true");
    } else if (is_kw(t, "null")) {
        l->k = L_NULL;
    } else if (t->k == T_IDENT) {
        int64_t now = sb_now_ms();
        l->k = L_RANGE;
        if (is_kw(t, "TODAY")) {
            l->ms = day_start(now, 0);
            l->ms_end = l->ms + 86400000;
        } else if (is_kw(t, "YESTERDAY")) {
            l->ms = day_start(now, 1);
            l->ms_end = l->ms + 86400000;
        } else if (is_kw(t, "TOMORROW")) {
            l->ms = day_start(now, -1);
            l->ms_end = l->ms + 86400000;
        } else if (strncasecmp(t->text, "LAST_N_DAYS:", 12) == 0 &&
                   isdigit((unsigned char)t->text[12])) {
            l->ms = day_start(now, (int)strtol(t->text + 12, NULL, 10));
            l->ms_end = day_start(now, -1);
        } else {
            unexpected(P);
            return -1;
        }
    } else {
        unexpected(P);
        return -1;
    }
    lex_next(&P->L);
    return 0;
}

static struct node *parse_or(struct parser *P);

/* 15-character id literals compare equal to the stored 18-character ids. */
static void norm_ids(struct node *n)
{
    if (!n->path.f || (n->path.f->type != SF_ID && n->path.f->type != SF_REFERENCE)) {
        return;
    }
    for (int i = 0; i < n->nlits; i++) {
        char id18[19];
        if (n->lits[i].k == L_STR && sf_id18(n->lits[i].s, id18)) {
            es_strlcpy(n->lits[i].s, id18, sizeof n->lits[i].s);
        }
    }
}

static struct node *parse_cmp(struct parser *P, const struct sf_object *o)
{
    struct tok *t = &P->L.cur;
    if (is_kw(t, "NOT")) {
        lex_next(&P->L);
        struct node *n = es_xcalloc(1, sizeof *n);
        n->k = N_NOT;
        n->a = parse_cmp(P, o);
        return n;
    }
    if (t->k == T_LP) {
        lex_next(&P->L);
        struct node *n = parse_or(P);
        if (P->L.cur.k != T_RP) {
            unexpected(P);
        } else {
            lex_next(&P->L);
        }
        return n;
    }
    if (t->k != T_IDENT) {
        unexpected(P);
        return NULL;
    }
    struct node *n = es_xcalloc(1, sizeof *n);
    n->k = N_CMP;
    if (resolve(P, o, t->text, &n->path) != 0) {
        return n;
    }
    lex_next(&P->L);
    int negate_in = 0;
    if (is_kw(t, "NOT")) {
        negate_in = 1;
        lex_next(&P->L);
    }
    if (is_kw(t, "IN")) {
        n->op = negate_in ? OP_NIN : OP_IN;
        lex_next(&P->L);
        if (t->k != T_LP) {
            unexpected(P);
            return n;
        }
        lex_next(&P->L);
        int cap = 0;
        while (!P->failed) {
            ES_GROW(n->lits, cap, n->nlits + 1);
            if (parse_lit(P, &n->lits[n->nlits]) != 0) {
                return n;
            }
            n->nlits++;
            if (t->k == T_COMMA) {
                lex_next(&P->L);
                continue;
            }
            if (t->k == T_RP) {
                lex_next(&P->L);
                norm_ids(n);
                break;
            }
            unexpected(P);
        }
        return n;
    }
    if (negate_in) {
        unexpected(P);
        return n;
    }
    if (is_kw(t, "LIKE")) {
        n->op = OP_LIKE;
    } else if (t->k == T_OP) {
        n->op = strcmp(t->text, "=") == 0    ? OP_EQ
                : strcmp(t->text, "<") == 0  ? OP_LT
                : strcmp(t->text, ">") == 0  ? OP_GT
                : strcmp(t->text, "<=") == 0 ? OP_LE
                : strcmp(t->text, ">=") == 0 ? OP_GE
                                             : OP_NE;
    } else {
        unexpected(P);
        return n;
    }
    lex_next(&P->L);
    n->lits = es_xcalloc(1, sizeof *n->lits);
    n->nlits = 1;
    parse_lit(P, &n->lits[0]);
    norm_ids(n);
    return n;
}

static struct node *parse_and(struct parser *P)
{
    struct node *a = parse_cmp(P, P->obj);
    while (!P->failed && is_kw(&P->L.cur, "AND")) {
        lex_next(&P->L);
        struct node *n = es_xcalloc(1, sizeof *n);
        n->k = N_AND;
        n->a = a;
        n->b = parse_cmp(P, P->obj);
        a = n;
    }
    return a;
}

static struct node *parse_or(struct parser *P)
{
    struct node *a = parse_and(P);
    while (!P->failed && is_kw(&P->L.cur, "OR")) {
        lex_next(&P->L);
        struct node *n = es_xcalloc(1, sizeof *n);
        n->k = N_OR;
        n->a = a;
        n->b = parse_and(P);
        a = n;
    }
    return a;
}

static int parse_query(struct parser *P, struct query *Q)
{
    struct tok *t = &P->L.cur;
    char sel_text[128][256];
    int nsel_text = 0, fields_kind = 0; /* FIELDS(ALL=1|STANDARD=2|CUSTOM=3) */
    lex_next(&P->L);
    if (!is_kw(t, "SELECT")) {
        unexpected(P);
        return -1;
    }
    lex_next(&P->L);
    if (is_kw(t, "COUNT")) {
        lex_next(&P->L);
        if (t->k != T_LP) {
            unexpected(P);
            return -1;
        }
        lex_next(&P->L);
        if (t->k != T_RP) {
            perr(P, "MALFORMED_QUERY", "only COUNT() without a field is supported here");
            return -1;
        }
        lex_next(&P->L);
        Q->count_only = 1;
    } else {
        for (;;) {
            if (t->k != T_IDENT || is_kw(t, "FROM")) {
                unexpected(P);
                return -1;
            }
            if (nsel_text >= 128) {
                perr(P, "MALFORMED_QUERY", "too many fields");
                return -1;
            }
            if (is_kw(t, "FIELDS")) {
                lex_next(&P->L);
                if (t->k != T_LP) {
                    unexpected(P);
                    return -1;
                }
                lex_next(&P->L);
                fields_kind = is_kw(t, "ALL")        ? 1
                              : is_kw(t, "STANDARD") ? 2
                              : is_kw(t, "CUSTOM")   ? 3
                                                     : 0;
                if (!fields_kind) {
                    unexpected(P);
                    return -1;
                }
                lex_next(&P->L);
                if (t->k != T_RP) {
                    unexpected(P);
                    return -1;
                }
                lex_next(&P->L);
                if (t->k == T_COMMA) {
                    lex_next(&P->L);
                    continue;
                }
                break;
            }
            es_strlcpy(sel_text[nsel_text++], t->text, sizeof sel_text[0]);
            lex_next(&P->L);
            if (t->k == T_COMMA) {
                lex_next(&P->L);
                continue;
            }
            break;
        }
    }
    if (!is_kw(t, "FROM")) {
        unexpected(P);
        return -1;
    }
    lex_next(&P->L);
    if (t->k != T_IDENT) {
        unexpected(P);
        return -1;
    }
    Q->obj = sf_obj(P->c, t->text);
    if (!Q->obj) {
        perr(P, "INVALID_TYPE",
             "\n%s\n^\nERROR at Row:1:Column:%d\nsObject type '%s' is not supported. If you are "
             "attempting to use a custom object, be sure to append the '__c' after the entity "
             "name. Please reference your WSDL or the describe call for the appropriate names.",
             P->q, t->pos + 1, t->text);
        return -1;
    }
    lex_next(&P->L);
    for (int i = 0; i < nsel_text; i++) {
        if (resolve(P, Q->obj, sel_text[i], &Q->sel[Q->nsel]) != 0) {
            return -1;
        }
        Q->nsel++;
    }
    for (int i = 0; fields_kind && i < Q->obj->nfields && Q->nsel < 128; i++) {
        const struct sf_field *f = &Q->obj->fields[i];
        size_t n = strlen(f->name);
        int custom = n > 3 && strcmp(f->name + n - 3, "__c") == 0;
        int dup = 0;
        for (int k = 0; k < Q->nsel && !dup; k++) {
            dup = Q->sel[k].nhops == 0 && Q->sel[k].f == f;
        }
        if (dup || (fields_kind == 2 && custom) || (fields_kind == 3 && !custom)) {
            continue;
        }
        memset(&Q->sel[Q->nsel], 0, sizeof Q->sel[0]);
        Q->sel[Q->nsel].hop_obj[0] = Q->obj;
        Q->sel[Q->nsel].f = f;
        Q->nsel++;
    }
    P->obj = Q->obj;
    if (is_kw(t, "WHERE")) {
        lex_next(&P->L);
        Q->where = parse_or(P);
        if (P->failed) {
            return -1;
        }
    }
    if (is_kw(t, "ORDER")) {
        lex_next(&P->L);
        if (!is_kw(t, "BY")) {
            unexpected(P);
            return -1;
        }
        lex_next(&P->L);
        for (;;) {
            if (t->k != T_IDENT || Q->nord >= 8) {
                unexpected(P);
                return -1;
            }
            struct order *o = &Q->ord[Q->nord++];
            if (resolve(P, Q->obj, t->text, &o->path) != 0) {
                return -1;
            }
            lex_next(&P->L);
            if (is_kw(t, "ASC") || is_kw(t, "DESC")) {
                o->desc = is_kw(t, "DESC");
                lex_next(&P->L);
            }
            o->nulls_last = o->desc;
            if (is_kw(t, "NULLS")) {
                lex_next(&P->L);
                if (!is_kw(t, "FIRST") && !is_kw(t, "LAST")) {
                    unexpected(P);
                    return -1;
                }
                o->nulls_last = is_kw(t, "LAST");
                lex_next(&P->L);
            }
            if (t->k == T_COMMA) {
                lex_next(&P->L);
                continue;
            }
            break;
        }
    }
    Q->limit = -1;
    if (is_kw(t, "LIMIT")) {
        lex_next(&P->L);
        if (t->k != T_NUM) {
            unexpected(P);
            return -1;
        }
        Q->limit = strtol(t->text, NULL, 10);
        lex_next(&P->L);
    }
    if (is_kw(t, "OFFSET")) {
        lex_next(&P->L);
        if (t->k != T_NUM) {
            unexpected(P);
            return -1;
        }
        Q->offset = strtol(t->text, NULL, 10);
        if (Q->offset > 2000) {
            perr(P, "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000");
            return -1;
        }
        lex_next(&P->L);
    }
    if (t->k != T_END) {
        unexpected(P);
        return -1;
    }
    if ((fields_kind == 1 || fields_kind == 3) && (Q->limit < 0 || Q->limit > 200)) {
        perr(P, "MALFORMED_QUERY", "The SOQL FIELDS function must have a LIMIT of at most 200");
        return -1;
    }
    return 0;
}

/* ---- evaluation ---- */

struct evalctx {
    struct sf_ctx *c;
    json_t *cache; /* id -> record (parents) */
};

static const json_t *parent(struct evalctx *E, const char *id)
{
    json_t *r = json_object_get(E->cache, id);
    if (r) {
        return json_is_null(r) ? NULL : r;
    }
    r = sf_rec_get(E->c, id, 0, NULL);
    json_object_set_new(E->cache, id, r ? r : json_null());
    return r;
}

/* The record a path's final field lives on (NULL when a hop is null). */
static const json_t *walk(struct evalctx *E, const json_t *rec, const struct path *p)
{
    for (int i = 0; i < p->nhops && rec; i++) {
        const char *id = json_string_value(json_object_get(rec, p->hop[i]->name));
        rec = id ? parent(E, id) : NULL;
    }
    return rec;
}

static const json_t *value_of(struct evalctx *E, const json_t *rec, const struct path *p)
{
    const json_t *r = walk(E, rec, p);
    return r ? json_object_get(r, p->f->name) : NULL;
}

static int like(const char *s, const char *pat)
{
    for (; *pat; pat++, s++) {
        if (*pat == '%') {
            while (*pat == '%') {
                pat++;
            }
            if (!*pat) {
                return 1;
            }
            for (; *s; s++) {
                if (like(s, pat)) {
                    return 1;
                }
            }
            return 0;
        }
        if (!*s) {
            return 0;
        }
        if (*pat == '\\' && pat[1]) {
            pat++;
            if (*s != *pat) {
                return 0;
            }
            continue;
        }
        if (*pat != '_' && tolower((unsigned char)*s) != tolower((unsigned char)*pat)) {
            return 0;
        }
    }
    return *s == '\0';
}

/* Compares a non-null record value with a literal: <0, 0, >0; 2 when incomparable. */
static int cmp_val(const struct sf_field *f, const json_t *v, const struct lit *l)
{
    if (f->type == SF_DATETIME) {
        int64_t ms;
        if (!json_is_string(v) || !sf_parse_dt(json_string_value(v), &ms)) {
            return 2;
        }
        if (l->k == L_DT || l->k == L_DATE) {
            return ms < l->ms ? -1 : ms > l->ms;
        }
        return 2;
    }
    if (f->type == SF_DATE) {
        const char *s = json_string_value(v);
        if (!s || l->k != L_DATE) {
            return 2;
        }
        int r = strcmp(s, l->s);
        return r < 0 ? -1 : r > 0;
    }
    if (json_is_number(v)) {
        if (l->k != L_NUM) {
            return 2;
        }
        double d = json_number_value(v);
        return d < l->d ? -1 : d > l->d;
    }
    if (json_is_boolean(v)) {
        if (l->k != L_BOOL) {
            return 2;
        }
        return json_is_true(v) == (l->d != 0) ? 0 : 1;
    }
    const char *s = json_string_value(v);
    if (!s) {
        return 2;
    }
    /* Ids are case-sensitive (base 62: 0-9 < A-Z < a-z, which is byte order): "...0a" and
     * "...0A" are two records, so keyset paging (Id > :last ORDER BY Id) must not fold case.
     * Literals were made canonical 18-character ids by norm_ids(). */
    int id = f && (f->type == SF_ID || f->type == SF_REFERENCE);
    int r = id ? strcmp(s, l->s) : strcasecmp(s, l->s);
    return r < 0 ? -1 : r > 0;
}

static int eval_cmp(struct evalctx *E, const json_t *rec, const struct node *n)
{
    const json_t *v = value_of(E, rec, &n->path);
    int isnull = !v || json_is_null(v);
    if (n->op == OP_IN || n->op == OP_NIN) {
        int hit = 0;
        for (int i = 0; i < n->nlits && !hit; i++) {
            if (n->lits[i].k == L_NULL) {
                hit = isnull;
            } else if (!isnull) {
                hit = cmp_val(n->path.f, v, &n->lits[i]) == 0;
            }
        }
        return n->op == OP_IN ? hit : !hit;
    }
    const struct lit *l = &n->lits[0];
    if (l->k == L_NULL) {
        return n->op == OP_EQ ? isnull : n->op == OP_NE ? !isnull : 0;
    }
    if (isnull) {
        return n->op == OP_NE;
    }
    if (n->op == OP_LIKE) {
        const char *s = json_string_value(v);
        return s && like(s, l->s);
    }
    if (l->k == L_RANGE) {
        int64_t ms;
        const char *s = json_string_value(v);
        if (!s || !sf_parse_dt(s, &ms)) {
            return 0;
        }
        switch (n->op) {
        case OP_EQ:
            return ms >= l->ms && ms < l->ms_end;
        case OP_NE:
            return !(ms >= l->ms && ms < l->ms_end);
        case OP_LT:
            return ms < l->ms;
        case OP_LE:
            return ms < l->ms_end;
        case OP_GT:
            return ms >= l->ms_end;
        default:
            return ms >= l->ms;
        }
    }
    int r = cmp_val(n->path.f, v, l);
    if (r == 2) {
        return n->op == OP_NE;
    }
    switch (n->op) {
    case OP_EQ:
        return r == 0;
    case OP_NE:
        return r != 0;
    case OP_LT:
        return r < 0;
    case OP_GT:
        return r > 0;
    case OP_LE:
        return r <= 0;
    default:
        return r >= 0;
    }
}

static int eval(struct evalctx *E, const json_t *rec, const struct node *n)
{
    switch (n->k) {
    case N_AND:
        return eval(E, rec, n->a) && eval(E, rec, n->b);
    case N_OR:
        return eval(E, rec, n->a) || eval(E, rec, n->b);
    case N_NOT:
        return !eval(E, rec, n->a);
    default:
        return eval_cmp(E, rec, n);
    }
}

struct sortctx {
    struct evalctx *E;
    const struct query *Q;
};

static int cmp_json(const json_t *a, const json_t *b, int case_sensitive)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_boolean(a) && json_is_boolean(b)) {
        return json_is_true(a) - json_is_true(b);
    }
    const char *x = json_string_value(a), *y = json_string_value(b);
    return case_sensitive ? strcmp(x ? x : "", y ? y : "") : strcasecmp(x ? x : "", y ? y : "");
}

static int sort_cmp(const void *pa, const void *pb, void *arg)
{
    struct sortctx *S = arg;
    const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    for (int i = 0; i < S->Q->nord; i++) {
        const struct order *o = &S->Q->ord[i];
        const json_t *va = value_of(S->E, a, &o->path), *vb = value_of(S->E, b, &o->path);
        int na = !va || json_is_null(va), nb = !vb || json_is_null(vb);
        int r;
        if (na || nb) {
            if (na && nb) {
                continue;
            }
            r = na ? -1 : 1;
            if (o->nulls_last) {
                r = -r;
            }
            return r;
        }
        const struct sf_field *f = o->path.f;
        r = cmp_json(va, vb, f && (f->type == SF_ID || f->type == SF_REFERENCE));
        if (r) {
            return o->desc ? -r : r;
        }
    }
    return strcmp(json_string_value(json_object_get(a, "Id")),
                  json_string_value(json_object_get(b, "Id")));
}

static json_t *project(struct evalctx *E, const struct query *Q, const json_t *rec, const char *ver)
{
    json_t *out = json_object();
    char url[200];
    snprintf(url, sizeof url, "/services/data/v%s/sobjects/%s/%s", ver, Q->obj->name,
             json_string_value(json_object_get(rec, "Id")));
    json_object_set_new(out, "attributes",
                        json_pack("{s:s,s:s}", "type", Q->obj->name, "url", url));
    for (int i = 0; i < Q->nsel; i++) {
        const struct path *p = &Q->sel[i];
        json_t *dst = out;
        const json_t *cur = rec;
        int dead = 0;
        for (int h = 0; h < p->nhops; h++) {
            const char *rel = p->hop[h]->relationship;
            json_t *sub = json_object_get(dst, rel);
            const char *id = cur ? json_string_value(json_object_get(cur, p->hop[h]->name)) : NULL;
            cur = id ? parent(E, id) : NULL;
            if (!cur) {
                if (!sub) {
                    json_object_set_new(dst, rel, json_null());
                }
                dead = 1;
                break;
            }
            if (!sub || json_is_null(sub)) {
                char u[200];
                snprintf(u, sizeof u, "/services/data/v%s/sobjects/%s/%s", ver,
                         p->hop_obj[h + 1]->name, id);
                sub = json_object();
                json_object_set_new(
                    sub, "attributes",
                    json_pack("{s:s,s:s}", "type", p->hop_obj[h + 1]->name, "url", u));
                json_object_set_new(dst, rel, sub);
            }
            dst = sub;
        }
        if (dead) {
            continue;
        }
        if (p->f->type == SF_ADDRESS) {
            json_t *tmp = sf_rec_render(E->c, p->hop_obj[p->nhops], cur, p->f->name, ver);
            json_object_set(dst, p->f->name, json_object_get(tmp, p->f->name));
            json_decref(tmp);
            continue;
        }
        json_t *v = json_object_get(cur, p->f->name);
        json_object_set(dst, p->f->name, v ? v : json_null());
    }
    return out;
}

json_t *sf_soql_run(struct sf_ctx *c, const char *q, int all_rows, const char *ver, int *status,
                    json_t *errs)
{
    struct parser P = {0};
    struct query Q;
    memset(&Q, 0, sizeof Q);
    P.c = c;
    P.q = q;
    P.L.s = q;
    P.errs = errs;
    P.status = 400;
    if (parse_query(&P, &Q) != 0 || P.failed) {
        *status = P.status;
        if (!json_array_size(errs)) {
            sf_err_add(errs, "MALFORMED_QUERY", "unexpected end of query", NULL);
        }
        free_node(Q.where);
        return NULL;
    }
    struct evalctx E = {c, json_object()};
    sqlite3_stmt *st = NULL;
    json_t **rows = NULL;
    size_t nrows = 0, cap = 0;
    sqlite3_prepare_v2(c->db, "SELECT data FROM rec WHERE obj=?1 AND (deleted=0 OR ?2) ORDER BY id",
                       -1, &st, NULL);
    sqlite3_bind_text(st, 1, Q.obj->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, all_rows);
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *r = json_loadb((const char *)sqlite3_column_text(st, 0),
                               (size_t)sqlite3_column_bytes(st, 0), 0, NULL);
        if (!r) {
            continue;
        }
        if (Q.where && !eval(&E, r, Q.where)) {
            json_decref(r);
            continue;
        }
        ES_GROW(rows, cap, nrows + 1);
        rows[nrows++] = r;
    }
    sqlite3_finalize(st);
    if (Q.nord && nrows > 1) {
        struct sortctx S = {&E, &Q};
        qsort_r(rows, nrows, sizeof *rows, sort_cmp, &S);
    }
    size_t from = (size_t)Q.offset < nrows ? (size_t)Q.offset : nrows;
    size_t to = nrows;
    if (Q.limit >= 0 && from + (size_t)Q.limit < to) {
        to = from + (size_t)Q.limit;
    }
    json_t *records = json_array();
    if (!Q.count_only) {
        for (size_t i = from; i < to; i++) {
            json_array_append_new(records, project(&E, &Q, rows[i], ver));
        }
    }
    for (size_t i = 0; i < nrows; i++) {
        json_decref(rows[i]);
    }
    es_free(rows);
    json_decref(E.cache);
    free_node(Q.where);
    *status = 200;
    return json_pack("{s:I,s:o}", "totalSize", (json_int_t)(to - from), "records", records);
}
