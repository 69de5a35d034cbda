/* SPDX-License-Identifier: MIT */
/*
 * The mapping plan: a flow's `map:` compiled once into rules (target path, source, checks),
 * and the per-record evaluator that runs them in file order into an output tree. Every
 * record gets one arena for its parsed input, intermediate values and output; nothing is
 * allocated per field outside it. Rule semantics, in order:
 *   when -> source (from | const | expr) -> default when null -> table -> type -> format
 *   -> max_length -> required -> set (a null result leaves the field out).
 * A target path with [*] repeats the rule for each element of the source list it reads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "map/internal.h"
#include "map/schema.h"

enum src_kind { SRC_NONE, SRC_FROM, SRC_CONST, SRC_EXPR };
enum { TYPE_STRING, TYPE_INTEGER, TYPE_DECIMAL, TYPE_BOOLEAN, TYPE_DATE, TYPE_DATETIME, TYPE_ANY };

struct rule {
    const char *target_text;
    struct es_path target;
    enum src_kind src;
    struct es_path from;
    struct es_mv *const_val;
    struct es_mv *default_val;
    struct es_expr *expr;
    struct es_expr *when;
    int required;
    long long max_length;
    int on_overflow; /* 0 truncate, 1 reject */
    struct es_ctable *table;
    int unmapped; /* 0 reject, 1 keep, 2 default */
    int type;
    const char *format;
    const struct es_path *star; /* source list for a [*] target */
    int fresh_key;              /* one-segment target no other rule writes: append directly */
};

struct es_map_plan {
    struct es_arena arena;
    const struct es_config *cfg;
    struct rule *rules;
    size_t nrules;
    struct es_map_schema *schema;
    struct es_map_schema *target_schema; /* es_map_plan_use_schema() */
    struct es_lua *lua;
};

/* ---- YAML scalars -> values ---- */

static struct es_mv *node_value(struct es_arena *a, const struct es_node *n)
{
    if (!n || n->is_null) {
        return &es_mv_null_value;
    }
    if (n->kind == ES_NODE_MAP) {
        struct es_mv *o = es_mv_new(a, MV_OBJ);
        for (size_t i = 0; i < n->count; i++) {
            es_mv_set(a, o, n->pairs[i].key->str, n->pairs[i].key->len,
                      node_value(a, n->pairs[i].value));
        }
        return o;
    }
    if (n->kind == ES_NODE_SEQ) {
        struct es_mv *arr = es_mv_new(a, MV_ARR);
        for (size_t i = 0; i < n->count; i++) {
            es_mv_arr_push(a, arr, node_value(a, n->items[i]));
        }
        return arr;
    }
    if (!n->quoted) {
        if (strcmp(n->str, "true") == 0) {
            return es_mv_bool(a, 1);
        }
        if (strcmp(n->str, "false") == 0) {
            return es_mv_bool(a, 0);
        }
        struct es_dec d;
        if (es_dec_parse(n->str, n->len, &d) == ES_OK && n->len && n->str[0] != '+' &&
            n->str[0] != ' ' && !(n->len > 1 && n->str[0] == '0' && n->str[1] != '.')) {
            struct es_mv *v = es_mv_new(a, MV_NUM);
            v->u.num.raw = es_arena_strndup(a, n->str, n->len);
            v->u.num.rawlen = n->len;
            v->u.num.d = d;
            v->u.num.has_dec = 1;
            return v;
        }
    }
    return es_mv_str(a, n->str, n->len);
}

/* ---- compile ---- */

static void diag_at(struct es_diags *d, const struct es_config *cfg, const struct es_node *n,
                    int coloff, const char *fmt, ...) ES_PRINTF(5, 6);
static void diag_at(struct es_diags *d, const struct es_config *cfg, const struct es_node *n,
                    int coloff, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    es_diags_add(d, ES_DIAG_ERROR, cfg && cfg->doc ? cfg->doc->text : NULL,
                 n && n->file ? n->file : (cfg ? cfg->path : NULL), n ? n->line : 0,
                 n ? n->col + coloff : 0, "%s", msg);
}

static int compile_expr(struct es_map_plan *plan, const struct es_node *n, const char *text,
                        struct es_expr **out, const char *what, const char *target,
                        struct es_diags *diags)
{
    struct es_expr_ctx ctx = {plan->cfg,       plan->lua,      n ? n->file : NULL,
                              n ? n->line : 0, n ? n->col : 0, n ? n->quoted : 0};
    char msg[256];
    size_t off = 0;
    if (es_expr_compile(&ctx, text, out, msg, sizeof msg, &off) != ES_OK) {
        int shift = (int)off;
        if (n && n->quoted && n->str && (n->line > 0)) {
            shift += 1; /* the opening quote */
        }
        diag_at(diags, plan->cfg, n, shift, "map rule '%s': %s: %s", target, what, msg);
        return ES_ECONFIG;
    }
    return ES_OK;
}

static int compile_rule(struct es_map_plan *plan, const struct es_node *key,
                        const struct es_node *val, struct rule *r, struct es_diags *diags)
{
    int errors = 0;
    size_t bad = 0;
    memset(r, 0, sizeof *r);
    r->type = TYPE_ANY;
    r->target_text = key->str;
    if (es_path_parse(key->str, key->len, &r->target, &bad) != ES_OK) {
        diag_at(diags, plan->cfg, key, (int)bad, "bad target path '%s'", key->str);
        return 1;
    }
    const char *from = NULL;
    const struct es_node *from_node = val;
    if (val->kind == ES_NODE_SCALAR) {
        from = val->str;
    } else {
        struct es_map_rule_shape sh;
        memset(&sh, 0, sizeof sh);
        struct es_cfg_ctx cctx = {diags, plan->cfg ? plan->cfg->doc : NULL, &plan->arena, NULL};
        struct es_diags quiet;
        es_diags_init(&quiet);
        cctx.diags = &quiet; /* the loader has reported shape errors already */
        errors += es_cfg_apply(&cctx, &es_map_rule_schema, val, &sh) ? 1 : 0;
        if (errors) {
            /* re-add the first of them for callers that compile without loading */
            for (size_t i = 0; i < quiet.count && i < 1; i++) {
                es_diags_add(diags, ES_DIAG_ERROR, NULL, quiet.items[i].file, quiet.items[i].line,
                             quiet.items[i].col, "%s", quiet.items[i].msg);
            }
        }
        es_diags_release(&quiet);
        from = sh.from;
        from_node = es_node_get(val, "from");
        r->required = sh.required;
        r->max_length = sh.max_length;
        r->on_overflow = sh.on_overflow;
        r->unmapped = sh.unmapped;
        r->type = sh.type;
        r->format = sh.format;
        if (sh.table) {
            const struct es_table_cfg *t = plan->cfg ? es_config_table(plan->cfg, sh.table) : NULL;
            r->table = t ? es_ctable_new(t) : NULL;
            if (!r->table) {
                diag_at(diags, plan->cfg, es_node_get(val, "table"), 0, "unknown table '%s'",
                        sh.table);
                errors++;
            }
        }
        const struct es_node *cn = es_node_get(val, "const");
        const struct es_node *dn = es_node_get(val, "default");
        if (cn) {
            r->src = SRC_CONST;
            r->const_val = node_value(&plan->arena, cn);
        }
        if (dn) {
            r->default_val = node_value(&plan->arena, dn);
        }
        if (sh.expr) {
            r->src = SRC_EXPR;
            errors += compile_expr(plan, es_node_get(val, "expr"), sh.expr, &r->expr, "expr",
                                   key->str, diags) != ES_OK;
        }
        if (sh.when) {
            errors += compile_expr(plan, es_node_get(val, "when"), sh.when, &r->when, "when",
                                   key->str, diags) != ES_OK;
        }
        if ((from != NULL) + (cn != NULL) + (sh.expr != NULL) > 1) {
            diag_at(diags, plan->cfg, val, 0, "map rule '%s' takes one of from, const, expr",
                    key->str);
            errors++;
        }
    }
    if (from) {
        r->src = SRC_FROM;
        if (es_path_parse(from, strlen(from), &r->from, &bad) != ES_OK) {
            diag_at(diags, plan->cfg, from_node, (int)bad + (from_node->quoted ? 1 : 0),
                    "map rule '%s': bad source path '%s'", key->str, from);
            errors++;
        }
    }
    if (r->src == SRC_NONE && !r->default_val && !errors) {
        diag_at(diags, plan->cfg, val, 0,
                "map rule '%s' needs a source: from, const, expr or default", key->str);
        errors++;
    }
    if (!errors && r->target.has_star) {
        r->star = r->src == SRC_FROM && r->from.has_star ? &r->from
                  : r->src == SRC_EXPR                   ? es_expr_star_path(r->expr)
                                                         : NULL;
        if (!r->star) {
            diag_at(diags, plan->cfg, key, 0,
                    "target '%s' has [*] but its source reads no list with [*]", key->str);
            errors++;
        }
    }
    if (!errors && !r->target.has_star && r->src == SRC_FROM && r->from.has_star) {
        /* A list mapped whole into one field is fine (join/arrays); nothing to check. */
    }
    return errors;
}

static void plan_free_rules(struct es_map_plan *plan)
{
    for (size_t i = 0; i < plan->nrules; i++) {
        struct rule *r = &plan->rules[i];
        es_path_release(&r->target);
        es_path_release(&r->from);
        es_expr_free(r->expr);
        es_expr_free(r->when);
        es_ctable_free(r->table);
    }
    es_free(plan->rules);
}

void es_map_plan_free(struct es_map_plan *plan)
{
    if (!plan) {
        return;
    }
    plan_free_rules(plan);
    es_map_schema_free(plan->schema);
    es_map_schema_free(plan->target_schema);
    es_lua_close(plan->lua);
    es_arena_release(&plan->arena);
    es_free(plan);
}

static char *lua_path(const struct es_config *cfg)
{
    const char *l = cfg->lua;
    if (l[0] == '/' || !cfg->path) {
        return es_xstrdup(l);
    }
    const char *slash = strrchr(cfg->path, '/');
    if (!slash) {
        return es_xstrdup(l);
    }
    return es_xasprintf("%.*s/%s", (int)(slash - cfg->path), cfg->path, l);
}

int es_map_compile(const struct es_config *cfg, const struct es_flow_cfg *flow,
                   struct es_map_plan **out, struct es_diags *diags)
{
    *out = NULL;
    struct es_map_plan *plan = es_xcalloc(1, sizeof *plan);
    es_arena_init(&plan->arena, 4096);
    plan->cfg = cfg;
    int errors = 0;
    if (cfg && cfg->lua) {
        char *path = lua_path(cfg);
        char msg[300];
        if (es_lua_open(path, &plan->lua, msg, sizeof msg) != ES_OK) {
            const struct es_node *ln = cfg->doc ? es_node_get(cfg->doc->root, "lua") : NULL;
            diag_at(diags, cfg, ln, 0, "lua: %s", msg);
            errors++;
        }
        es_free(path);
    }
    const struct es_node *m = flow ? flow->map : NULL;
    if (!m || m->kind != ES_NODE_MAP || m->count == 0) {
        diag_at(diags, cfg, flow ? flow->node : NULL, 0, "flow '%s': map must be a mapping",
                flow && flow->name ? flow->name : "?");
        es_map_plan_free(plan);
        return ES_ECONFIG;
    }
    plan->rules = es_xcalloc(m->count, sizeof *plan->rules);
    for (size_t i = 0; i < m->count && !errors; i++) {
        errors += compile_rule(plan, m->pairs[i].key, m->pairs[i].value, &plan->rules[i], diags);
        plan->nrules = i + 1;
    }
    for (size_t i = 0; i < plan->nrules && !errors; i++) {
        struct rule *r = &plan->rules[i];
        r->fresh_key = r->target.n == 1 && r->target.segs[0].key != NULL;
        for (size_t k = 0; k < plan->nrules && r->fresh_key; k++) {
            const struct es_path_seg *o = &plan->rules[k].target.segs[0];
            if (k != i && o->key && o->klen == r->target.segs[0].klen &&
                memcmp(o->key, r->target.segs[0].key, o->klen) == 0) {
                r->fresh_key = 0;
            }
        }
    }
    for (size_t i = plan->nrules; i < m->count && errors && !es_diags_full(diags); i++) {
        /* keep reporting the remaining rules' errors */
        struct rule tmp;
        errors += compile_rule(plan, m->pairs[i].key, m->pairs[i].value, &tmp, diags);
        es_path_release(&tmp.target);
        es_path_release(&tmp.from);
        es_expr_free(tmp.expr);
        es_expr_free(tmp.when);
        es_ctable_free(tmp.table);
    }
    if (!errors && flow->schema && !flow->schema->is_null) {
        if (es_map_schema_from_node(flow->schema, cfg && cfg->doc ? cfg->doc->text : NULL,
                                    &plan->schema, diags) != ES_OK) {
            errors++;
        }
    }
    if (errors) {
        es_map_plan_free(plan);
        return ES_ECONFIG;
    }
    *out = plan;
    return ES_OK;
}

void es_map_plan_use_schema(struct es_map_plan *plan, struct es_map_schema *schema)
{
    es_map_schema_free(plan->target_schema);
    plan->target_schema = schema;
}

const struct es_map_schema *es_map_plan_schema(const struct es_map_plan *plan)
{
    return plan ? plan->schema : NULL;
}

/* ---- evaluation ---- */

static int rule_fail(struct es_eval *ev, const struct rule *r, long star, const char *rule,
                     enum es_code code, const char *fmt, ...) ES_PRINTF(6, 7);
static int rule_fail(struct es_eval *ev, const struct rule *r, long star, const char *rule,
                     enum es_code code, const char *fmt, ...)
{
    struct es_map_failure *f = ev->fail;
    if (f && f->code == ES_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->message, sizeof f->message, fmt, ap);
        va_end(ap);
        f->code = code;
    }
    if (f) {
        if (!f->field[0]) {
            const char *t = r->target_text;
            const char *st = star >= 0 ? strstr(t, "[*]") : NULL;
            if (st) {
                snprintf(f->field, sizeof f->field, "%.*s[%ld]%s", (int)(st - t), t, star, st + 3);
            } else {
                es_strlcpy(f->field, t, sizeof f->field);
            }
        }
        if (!f->rule[0]) {
            es_strlcpy(f->rule, rule, sizeof f->rule);
        }
    }
    return f ? f->code : code;
}

static int convert(struct es_eval *ev, const struct rule *r, long star, struct es_mv *v,
                   struct es_mv **out)
{
    const char *s;
    size_t n;
    char tmp[64];
    struct es_dec d;
    struct es_date dt;
    *out = v;
    switch (r->type) {
    case TYPE_STRING:
        if (v->kind == MV_STR) {
            return ES_OK;
        }
        if (!es_mv_text(ev->arena, v, &s, &n)) {
            return rule_fail(ev, r, star, "type", ES_EVALIDATION, "expected text, got %s",
                             v->kind == MV_ARR ? "a list" : "an object");
        }
        *out = es_mv_str_ref(ev->arena, s, n);
        return ES_OK;
    case TYPE_INTEGER:
    case TYPE_DECIMAL:
        if (v->kind == MV_BOOL || v->kind == MV_ARR || v->kind == MV_OBJ || v->kind == MV_DATE) {
            return rule_fail(ev, r, star, "type", ES_EVALIDATION, "expected a number");
        }
        if (v->kind == MV_STR) {
            s = v->u.str.s;
            n = v->u.str.n;
            while (n && s[0] == ' ') {
                s++;
                n--;
            }
            if (n == 0) {
                *out = &es_mv_null_value;
                return ES_OK;
            }
            if (es_dec_parse(s, n, &d) != ES_OK) {
                return rule_fail(ev, r, star, "type", ES_EVALIDATION, "'%.*s' is not a number",
                                 (int)(n > 60 ? 60 : n), s);
            }
        } else if (es_mv_num_dec(v, &d) != ES_OK) {
            return rule_fail(ev, r, star, "type", ES_EVALIDATION,
                             "number %.*s has more than 18 digits", (int)v->u.num.rawlen,
                             v->u.num.raw);
        }
        if (r->type == TYPE_INTEGER) {
            struct es_dec nd = es_dec_normalize(d);
            if (nd.scale != 0) {
                es_dec_format(d, tmp, sizeof tmp);
                return rule_fail(ev, r, star, "type", ES_EVALIDATION, "%s is not a whole number",
                                 tmp);
            }
            d = nd;
        }
        if (v->kind == MV_NUM && v->u.num.raw && r->type == TYPE_DECIMAL &&
            !memchr(v->u.num.raw, 'e', v->u.num.rawlen) &&
            !memchr(v->u.num.raw, 'E', v->u.num.rawlen)) {
            return ES_OK; /* keep the digits as written */
        }
        *out = es_mv_dec(ev->arena, d);
        return ES_OK;
    case TYPE_BOOLEAN:
        if (v->kind == MV_BOOL) {
            return ES_OK;
        }
        if (v->kind == MV_NUM && es_mv_num_dec(v, &d) == ES_OK && (d.m == 0 || d.m == 1) &&
            d.scale == 0) {
            *out = es_mv_bool(ev->arena, (int)d.m);
            return ES_OK;
        }
        if (v->kind == MV_STR) {
            static const char *const yes[] = {"true", "TRUE", "True", "1", "yes", "Yes",
                                              "YES",  "X",    "x",    "Y", "y",   NULL};
            static const char *const no[] = {"false", "FALSE", "False", "0", "no", "No",
                                             "NO",    "",      "N",     "n", NULL};
            for (const char *const *p = yes; *p; p++) {
                if (strlen(*p) == v->u.str.n && memcmp(*p, v->u.str.s, v->u.str.n) == 0) {
                    *out = es_mv_bool(ev->arena, 1);
                    return ES_OK;
                }
            }
            for (const char *const *p = no; *p; p++) {
                if (strlen(*p) == v->u.str.n && memcmp(*p, v->u.str.s, v->u.str.n) == 0) {
                    *out = es_mv_bool(ev->arena, 0);
                    return ES_OK;
                }
            }
        }
        if (es_mv_text(ev->arena, v, &s, &n)) {
            return rule_fail(ev, r, star, "type", ES_EVALIDATION, "'%.*s' is not a boolean",
                             (int)(n > 60 ? 60 : n), s);
        }
        return rule_fail(ev, r, star, "type", ES_EVALIDATION, "expected a boolean");
    case TYPE_DATE:
    case TYPE_DATETIME:
        if (v->kind == MV_DATE) {
            dt = v->u.date;
        } else if (v->kind == MV_STR && v->u.str.n == 0) {
            *out = &es_mv_null_value;
            return ES_OK;
        } else if (!es_mv_text(ev->arena, v, &s, &n) || es_date_parse(s, n, NULL, &dt) != ES_OK) {
            if (!es_mv_text(ev->arena, v, &s, &n)) {
                s = "?";
                n = 1;
            }
            return rule_fail(ev, r, star, "type", ES_EVALIDATION, "'%.*s' is not a %s",
                             (int)(n > 60 ? 60 : n), s,
                             r->type == TYPE_DATE ? "date" : "date-time");
        }
        if (r->type == TYPE_DATE && dt.kind == ES_DATE_DATETIME) {
            /* The calendar day as written (in its own zone): never shifted. */
            int64_t local = dt.ms + (int64_t)dt.offset_min * 60000LL;
            int64_t days = local >= 0 ? local / 86400000LL : -((-local + 86399999LL) / 86400000LL);
            dt.ms = days * 86400000LL;
            dt.kind = ES_DATE_DATE;
            dt.offset_min = 0;
        } else if (r->type == TYPE_DATETIME) {
            if (dt.kind == ES_DATE_TIME) {
                return rule_fail(ev, r, star, "type", ES_EVALIDATION,
                                 "a time of day is not a date-time");
            }
            dt.kind = ES_DATE_DATETIME;
        }
        *out = es_mv_date(ev->arena, dt);
        return ES_OK;
    default:
        return ES_OK;
    }
}

static int apply_format(struct es_eval *ev, const struct rule *r, struct es_mv **v)
{
    char buf[128];
    if ((*v)->kind == MV_DATE) {
        size_t n = es_date_format(&(*v)->u.date, r->format, buf, sizeof buf);
        *v = es_mv_str(ev->arena, buf, n);
        return ES_OK;
    }
    if ((*v)->kind == MV_NUM || (*v)->kind == MV_STR) {
        /* format: "0.00" -> a number with two places */
        const char *dot = strchr(r->format, '.');
        int places = dot ? (int)strlen(dot + 1) : 0;
        struct es_dec d, rd;
        int ok = (*v)->kind == MV_NUM ? es_mv_num_dec(*v, &d) == ES_OK
                                      : es_dec_parse((*v)->u.str.s, (*v)->u.str.n, &d) == ES_OK;
        if (ok && es_dec_round(d, places, &rd) == ES_OK) {
            *v = es_mv_dec(ev->arena, rd);
        }
    }
    return ES_OK;
}

static void set_path(struct es_arena *a, struct es_mv *root, const struct es_path *p, long star,
                     struct es_mv *v, int fresh_key)
{
    if (fresh_key) {
        es_mv_push(a, root, p->segs[0].key, p->segs[0].klen, v);
        return;
    }
    struct es_mv *cur = root;
    for (size_t i = 0; i < p->n; i++) {
        const struct es_path_seg *seg = &p->segs[i];
        int last = i + 1 == p->n;
        int next_is_index = !last && p->segs[i + 1].key == NULL;
        if (seg->key) {
            if (last) {
                es_mv_set(a, cur, seg->key, seg->klen, v);
                return;
            }
            struct es_mv *child = es_mv_get(cur, seg->key, seg->klen);
            enum es_mv_kind want = next_is_index ? MV_ARR : MV_OBJ;
            if (!child || child->kind != want) {
                child = es_mv_new(a, want);
                es_mv_set(a, cur, seg->key, seg->klen, child);
            }
            cur = child;
        } else {
            size_t idx = seg->index >= 0 ? (size_t)seg->index : (size_t)star;
            while (cur->u.arr.n <= idx) {
                es_mv_arr_push(a, cur, &es_mv_null_value);
            }
            if (last) {
                cur->u.arr.items[idx] = v;
                return;
            }
            struct es_mv *child = cur->u.arr.items[idx];
            enum es_mv_kind want = next_is_index ? MV_ARR : MV_OBJ;
            if (!child || child->kind != want) {
                child = es_mv_new(a, want);
                cur->u.arr.items[idx] = child;
            }
            cur = child;
        }
    }
}

static int run_rule(struct es_eval *ev, const struct rule *r, long star, struct es_mv *outrec)
{
    int rc;
    struct es_mv *v = &es_mv_null_value;
    ev->star = star;
    if (r->when) {
        struct es_mv *c;
        rc = es_expr_eval(r->when, ev, &c);
        if (rc) {
            return rule_fail(ev, r, star, "when", (enum es_code)rc, "when failed");
        }
        if (!es_mv_truthy(c)) {
            return ES_OK;
        }
    }
    switch (r->src) {
    case SRC_FROM:
        v = es_path_get(ev->arena, &r->from, ev->rec, star);
        break;
    case SRC_CONST:
        v = r->const_val;
        break;
    case SRC_EXPR:
        rc = es_expr_eval(r->expr, ev, &v);
        if (rc) {
            return rule_fail(ev, r, star, "expr", (enum es_code)rc, "expression failed");
        }
        break;
    case SRC_NONE:
        break;
    }
    if (r->default_val && (es_mv_is_null(v) || (v->kind == MV_STR && v->u.str.n == 0))) {
        v = r->default_val;
    }
    if (r->table && !es_mv_is_null(v)) {
        const char *s;
        size_t n;
        const char *mapped = NULL;
        size_t mn = 0;
        int found = 0;
        if (es_mv_text(ev->arena, v, &s, &n)) {
            found = es_ctable_find(r->table, s, n, &mapped, &mn);
        } else {
            s = "?";
            n = 1;
        }
        if (found) {
            v = es_mv_str_ref(ev->arena, mapped, mn);
        } else if (r->unmapped == 0) {
            return rule_fail(ev, r, star, "table", ES_EVALIDATION,
                             "value '%.*s' is not in table '%s'", (int)(n > 80 ? 80 : n), s,
                             r->table->cfg->name);
        } else if (r->unmapped == 2) {
            v = r->default_val ? r->default_val : &es_mv_null_value;
        }
    }
    if (!es_mv_is_null(v) && r->type != TYPE_ANY) {
        rc = convert(ev, r, star, v, &v);
        if (rc) {
            return rc;
        }
    }
    if (r->format && !es_mv_is_null(v)) {
        apply_format(ev, r, &v);
    }
    if (r->max_length > 0 && v->kind == MV_STR) {
        size_t chars = es_utf8_len(v->u.str.s, v->u.str.n);
        if (chars > (size_t)r->max_length) {
            if (r->on_overflow == 1) {
                return rule_fail(ev, r, star, "max_length", ES_EVALIDATION,
                                 "%zu characters, at most %lld allowed", chars, r->max_length);
            }
            size_t b = es_utf8_offset(v->u.str.s, v->u.str.n, (size_t)r->max_length);
            v = es_mv_str_ref(ev->arena, v->u.str.s, b);
        }
    }
    if (r->required && (es_mv_is_null(v) || (v->kind == MV_STR && v->u.str.n == 0))) {
        if (r->src == SRC_FROM) {
            return rule_fail(ev, r, star, "required", ES_EVALIDATION,
                             "required field is missing: source '%s' is empty",
                             r->from.n ? r->from.segs[0].key ? r->from.segs[0].key : "?" : "?");
        }
        return rule_fail(ev, r, star, "required", ES_EVALIDATION, "required field is empty");
    }
    if (!es_mv_is_null(v)) {
        set_path(ev->arena, outrec, &r->target, star, v, r->fresh_key);
    }
    return ES_OK;
}

static int eval_rec(const struct es_map_plan *plan, struct es_eval *ev, struct es_mv **out)
{
    struct es_mv *outrec = es_mv_new(ev->arena, MV_OBJ);
    /* one slot per rule up front: the output never regrows */
    outrec->u.obj.cap = plan->nrules ? plan->nrules : 1;
    outrec->u.obj.pairs = es_arena_alloc(ev->arena, outrec->u.obj.cap * sizeof(struct es_mv_pair));
    for (size_t i = 0; i < plan->nrules; i++) {
        const struct rule *r = &plan->rules[i];
        int rc;
        if (r->target.has_star) {
            size_t n = es_path_star_len(r->star, ev->rec);
            for (size_t k = 0; k < n; k++) {
                rc = run_rule(ev, r, (long)k, outrec);
                if (rc) {
                    return rc;
                }
            }
            continue;
        }
        rc = run_rule(ev, r, -1, outrec);
        if (rc) {
            return rc;
        }
    }
    const struct es_map_schema *schemas[2] = {plan->schema, plan->target_schema};
    for (int k = 0; k < 2; k++) {
        if (schemas[k]) {
            int rc = es_map_schema_check(schemas[k], outrec, ev->arena, ev->fail);
            if (rc) {
                return rc;
            }
        }
    }
    *out = outrec;
    return ES_OK;
}

static void eval_init(struct es_eval *ev, struct es_arena *a, const struct es_map_env *env,
                      struct es_map_failure *fail)
{
    memset(ev, 0, sizeof *ev);
    ev->arena = a;
    ev->env = env;
    ev->fail = fail;
    ev->star = -1;
    es_buf_init(&ev->tmp, 0);
    if (fail) {
        memset(fail, 0, sizeof *fail);
    }
}

int es_map_eval(const struct es_map_plan *plan, const json_t *in, json_t **out,
                const struct es_map_env *env, struct es_map_failure *fail)
{
    struct es_map_failure local;
    if (!fail) {
        fail = &local;
    }
    *out = NULL;
    struct es_arena a;
    es_arena_init(&a, 16384);
    struct es_eval ev;
    eval_init(&ev, &a, env, fail);
    if (!json_is_object(in)) {
        es_buf_release(&ev.tmp);
        es_arena_release(&a);
        fail->code = ES_EPOISON;
        es_strlcpy(fail->message, "the record is not a JSON object", sizeof fail->message);
        return ES_EPOISON;
    }
    ev.rec = es_mv_from_json(&a, in);
    struct es_mv *res = NULL;
    int rc = eval_rec(plan, &ev, &res);
    if (rc == ES_OK) {
        *out = es_mv_to_json(res);
    }
    es_buf_release(&ev.tmp);
    es_arena_release(&a);
    return rc;
}

int es_map_eval_json_arena(const struct es_map_plan *plan, struct es_arena *a, const char *json,
                           size_t len, struct es_buf *out, const struct es_map_env *env,
                           struct es_map_failure *fail)
{
    struct es_map_failure local;
    if (!fail) {
        fail = &local;
    }
    struct es_eval ev;
    eval_init(&ev, a, env, fail);
    struct es_mv *rec = NULL;
    struct es_err err;
    es_err_clear(&err);
    int rc = es_mv_parse(a, json, len, &rec, &err);
    if (rc == ES_OK && rec->kind != MV_OBJ) {
        rc = es_err_set(&err, ES_EPOISON, "the record is not a JSON object");
    }
    if (rc) {
        fail->code = ES_EPOISON;
        es_strlcpy(fail->message, err.msg, sizeof fail->message);
        es_buf_release(&ev.tmp);
        return ES_EPOISON;
    }
    ev.rec = rec;
    struct es_mv *res = NULL;
    rc = eval_rec(plan, &ev, &res);
    if (rc == ES_OK) {
        rc = es_mv_write(out, res);
    }
    es_buf_release(&ev.tmp);
    return rc;
}

int es_map_eval_json(const struct es_map_plan *plan, const char *json, size_t len,
                     struct es_buf *out, const struct es_map_env *env, struct es_map_failure *fail)
{
    struct es_arena a;
    es_arena_init(&a, 16384);
    int rc = es_map_eval_json_arena(plan, &a, json, len, out, env, fail);
    es_arena_release(&a);
    return rc;
}

int es_map_eval_expr(const struct es_config *cfg, const char *expr, const json_t *in,
                     const struct es_map_env *env, json_t **out, struct es_map_failure *fail,
                     struct es_err *err)
{
    struct es_map_failure local;
    if (!fail) {
        fail = &local;
    }
    *out = NULL;
    struct es_lua *lua = NULL;
    char msg[300];
    if (cfg && cfg->lua) {
        char *path = lua_path(cfg);
        int rc = es_lua_open(path, &lua, msg, sizeof msg);
        es_free(path);
        if (rc) {
            return es_err_set(err, ES_ECONFIG, "lua: %s", msg);
        }
    }
    struct es_expr_ctx ctx = {cfg, lua, NULL, 0, 0, 0};
    struct es_expr *e = NULL;
    size_t off = 0;
    if (es_expr_compile(&ctx, expr, &e, msg, sizeof msg, &off) != ES_OK) {
        es_lua_close(lua);
        return es_err_set(err, ES_ECONFIG, "at column %zu: %s", off + 1, msg);
    }
    struct es_arena a;
    es_arena_init(&a, 4096);
    struct es_eval ev;
    eval_init(&ev, &a, env, fail);
    ev.rec = in ? es_mv_from_json(&a, in) : es_mv_new(&a, MV_OBJ);
    struct es_mv *v = NULL;
    int rc = es_expr_eval(e, &ev, &v);
    if (rc == ES_OK) {
        *out = es_mv_to_json(v);
    } else {
        es_strlcpy(fail->rule, "expr", sizeof fail->rule);
    }
    es_buf_release(&ev.tmp);
    es_arena_release(&a);
    es_expr_free(e);
    es_lua_close(lua);
    return rc;
}
