/* SPDX-License-Identifier: MIT */
/*
 * The schema walker. Every value is checked against its declared type, and every error
 * points at the node that caused it; unknown keys get the nearest known name as a hint.
 */
#include "core/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/cron.h"
#include "core/mem.h"

static void add(const struct es_cfg_ctx *ctx, enum es_diag_severity sev, const struct es_node *at,
                const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    es_diags_add(ctx->diags, sev, ctx->doc ? ctx->doc->text : NULL,
                 at ? at->file : (ctx->doc ? ctx->doc->file : NULL), at ? at->line : 0,
                 at ? at->col : 0, "%s", msg);
}

void es_cfg_error(const struct es_cfg_ctx *ctx, const struct es_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(ctx, ES_DIAG_ERROR, at, fmt, ap);
    va_end(ap);
}

void es_cfg_warning(const struct es_cfg_ctx *ctx, const struct es_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(ctx, ES_DIAG_WARNING, at, fmt, ap);
    va_end(ap);
}

const char *es_cfg_type_name(enum es_cfg_type type)
{
    switch (type) {
    case ES_CFG_STR:
        return "string";
    case ES_CFG_INT:
        return "integer";
    case ES_CFG_NUM:
        return "number";
    case ES_CFG_BOOL:
        return "boolean";
    case ES_CFG_DURATION:
        return "duration";
    case ES_CFG_SIZE:
        return "size";
    case ES_CFG_ENUM:
        return "one of";
    case ES_CFG_ENV:
        return "environment variable name";
    case ES_CFG_STRLIST:
        return "list of strings";
    case ES_CFG_SECTION:
        return "mapping";
    case ES_CFG_NODE:
        return "any";
    case ES_CFG_CRON:
        return "cron expression";
    }
    return "?";
}

const char *es_cfg_suggest(const struct es_cfg_schema *schema, const char *key)
{
    const char *best = NULL;
    int best_d = 1000;
    for (const struct es_cfg_field *f = schema->fields; f->name; f++) {
        int d = es_edit_distance(key, f->name);
        if (d < best_d) {
            best_d = d;
            best = f->name;
        }
    }
    size_t len = strlen(key);
    int limit = len <= 4 ? 1 : (len <= 8 ? 2 : 3);
    return best_d <= limit ? best : NULL;
}

int es_size_parse(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0) {
        return ES_EINVAL;
    }
    while (*end == ' ') {
        end++;
    }
    static const struct {
        const char *suffix;
        long long mul;
    } units[] = {{"", 1},          {"B", 1},        {"KiB", 1024},    {"KB", 1000},
                 {"MiB", 1 << 20}, {"MB", 1000000}, {"GiB", 1 << 30}, {"GB", 1000000000}};
    for (size_t i = 0; i < ES_ARRAY_LEN(units); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > (1LL << 50) / units[i].mul) {
                return ES_EINVAL;
            }
            *out = v * units[i].mul;
            return ES_OK;
        }
    }
    return ES_EINVAL;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    for (size_t i = 0; i < ES_ARRAY_LEN(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return ES_OK;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return ES_OK;
        }
    }
    return ES_EINVAL;
}

static int valid_env_name(const char *s)
{
    if (!*s || isdigit((unsigned char)*s)) {
        return 0;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_') {
            return 0;
        }
    }
    return 1;
}

static void choices_text(const char *const *choices, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    for (int i = 0; choices[i] && off < cap; i++) {
        off += (size_t)snprintf(out + off, cap - off, "%s%s", i ? ", " : "", choices[i]);
    }
}

/* Sets one field from a node; returns errors added (0 or 1). */
static int set_field(const struct es_cfg_ctx *ctx, const struct es_cfg_field *f,
                     const struct es_node *v, void *base)
{
    char *slot = (char *)base + f->offset;
    if (f->type == ES_CFG_NODE) {
        *(const struct es_node **)slot = v;
        return 0;
    }
    if (f->type == ES_CFG_SECTION) {
        if (v->kind == ES_NODE_SCALAR && (f->sub->fields && (f->flags & ES_CFG_SHORTHAND))) {
            const struct es_cfg_field *sf = &f->sub->fields[f->sub->shorthand_field];
            return set_field(ctx, sf, v, slot);
        }
        if (v->kind != ES_NODE_MAP) {
            es_cfg_error(ctx, v, "'%s' must be a mapping, not %s", f->name,
                         es_node_kind_name(v->kind));
            return 1;
        }
        return es_cfg_apply(ctx, f->sub, v, slot);
    }
    if (f->type == ES_CFG_STRLIST) {
        struct es_cfg_strlist *l = (struct es_cfg_strlist *)slot;
        l->node = v;
        if (v->kind == ES_NODE_SCALAR) {
            l->count = 1;
            l->items = es_arena_alloc(ctx->arena, sizeof *l->items);
            l->items[0] = v->str;
            return 0;
        }
        if (v->kind != ES_NODE_SEQ) {
            es_cfg_error(ctx, v, "'%s' must be a list of strings, not %s", f->name,
                         es_node_kind_name(v->kind));
            return 1;
        }
        l->count = v->count;
        l->items = es_arena_alloc(ctx->arena, (v->count ? v->count : 1) * sizeof *l->items);
        for (size_t i = 0; i < v->count; i++) {
            if (v->items[i]->kind != ES_NODE_SCALAR) {
                es_cfg_error(ctx, v->items[i], "'%s' items must be strings, not %s", f->name,
                             es_node_kind_name(v->items[i]->kind));
                return 1;
            }
            l->items[i] = v->items[i]->str;
        }
        return 0;
    }
    if (v->kind != ES_NODE_SCALAR) {
        es_cfg_error(ctx, v, "'%s' must be a %s, not %s", f->name, es_cfg_type_name(f->type),
                     es_node_kind_name(v->kind));
        return 1;
    }
    const char *s = v->str;
    switch (f->type) {
    case ES_CFG_STR:
        if (v->is_null) {
            *(const char **)slot = NULL;
            return 0;
        }
        *(const char **)slot = s;
        return 0;
    case ES_CFG_ENV:
        if (!valid_env_name(s)) {
            es_cfg_error(ctx, v,
                         "'%s' names an environment variable (letters, digits, '_'), got '%s'; "
                         "the secret itself never goes in the file",
                         f->name, s);
            return 1;
        }
        *(const char **)slot = s;
        return 0;
    case ES_CFG_INT:
    case ES_CFG_SIZE: {
        long long n;
        int ok;
        if (f->type == ES_CFG_INT) {
            char *end = NULL;
            errno = 0;
            n = strtoll(s, &end, 10);
            ok = end != s && *end == '\0' && errno == 0;
        } else {
            ok = es_size_parse(s, &n) == ES_OK;
        }
        if (!ok) {
            es_cfg_error(ctx, v, "'%s' must be %s, got '%s'", f->name,
                         f->type == ES_CFG_INT ? "an integer" : "a size like 1MiB or 65536", s);
            return 1;
        }
        if (f->min < f->max && (n < f->min || n > f->max)) {
            es_cfg_error(ctx, v, "'%s' must be between %lld and %lld, got %lld", f->name, f->min,
                         f->max, n);
            return 1;
        }
        *(long long *)slot = n;
        return 0;
    }
    case ES_CFG_NUM: {
        char *end = NULL;
        errno = 0;
        double d = strtod(s, &end);
        if (end == s || *end != '\0' || errno) {
            es_cfg_error(ctx, v, "'%s' must be a number, got '%s'", f->name, s);
            return 1;
        }
        if (f->min < f->max && (d < (double)f->min || d > (double)f->max)) {
            es_cfg_error(ctx, v, "'%s' must be between %lld and %lld, got %s", f->name, f->min,
                         f->max, s);
            return 1;
        }
        *(double *)slot = d;
        return 0;
    }
    case ES_CFG_BOOL:
        if (parse_bool(s, (int *)slot) != ES_OK) {
            es_cfg_error(ctx, v, "'%s' must be true or false, got '%s'", f->name, s);
            return 1;
        }
        return 0;
    case ES_CFG_DURATION: {
        int bad_at = 0;
        if (es_duration_parse(s, (int64_t *)slot, &bad_at) != ES_OK) {
            es_cfg_error(ctx, v, "'%s' must be a duration like 30s, 15m, 2h or 1h30m, got '%s'",
                         f->name, s);
            return 1;
        }
        return 0;
    }
    case ES_CFG_ENUM:
        for (int i = 0; f->choices[i]; i++) {
            if (strcmp(f->choices[i], s) == 0) {
                *(int *)slot = i;
                return 0;
            }
        }
        {
            char list[256];
            choices_text(f->choices, list, sizeof list);
            const char *near = NULL;
            int best = 3;
            for (int i = 0; f->choices[i]; i++) {
                int d = es_edit_distance(s, f->choices[i]);
                if (d < best) {
                    best = d;
                    near = f->choices[i];
                }
            }
            if (near) {
                es_cfg_error(ctx, v, "'%s' must be one of: %s; got '%s' (did you mean '%s'?)",
                             f->name, list, s, near);
            } else {
                es_cfg_error(ctx, v, "'%s' must be one of: %s; got '%s'", f->name, list, s);
            }
        }
        return 1;
    case ES_CFG_CRON: {
        struct es_cron cron;
        struct es_err err;
        es_err_clear(&err);
        int bad_at = 0;
        if (es_cron_parse(s, &cron, &bad_at, &err) != ES_OK) {
            struct es_node at = *v;
            if (!v->quoted) {
                at.col += bad_at;
            } else {
                at.col += bad_at + 1;
            }
            es_cfg_error(ctx, &at, "'%s': %s", f->name, err.msg);
            return 1;
        }
        *(const char **)slot = s;
        return 0;
    }
    default:
        es_cfg_error(ctx, v, "internal: unhandled type for '%s'", f->name);
        return 1;
    }
}

static int set_default(const struct es_cfg_ctx *ctx, const struct es_cfg_field *f, void *base)
{
    if (f->type == ES_CFG_SECTION) {
        /* Sections get their own defaults even when absent from the file. */
        return es_cfg_apply(ctx, f->sub, NULL, (char *)base + f->offset);
    }
    if (!f->def) {
        return 0;
    }
    struct es_node n;
    memset(&n, 0, sizeof n);
    n.kind = ES_NODE_SCALAR;
    n.str = f->def;
    n.len = strlen(f->def);
    n.file = "<default>";
    return set_field(ctx, f, &n, base);
}

int es_cfg_apply(const struct es_cfg_ctx *ctx, const struct es_cfg_schema *schema,
                 const struct es_node *node, void *base)
{
    int errors = 0;
    for (const struct es_cfg_field *f = schema->fields; f->name; f++) {
        errors += set_default(ctx, f, base);
    }
    if (!node || node->kind != ES_NODE_MAP) {
        if (node && !node->is_null) {
            es_cfg_error(ctx, node, "'%s' must be a mapping, not %s", schema->name,
                         es_node_kind_name(node->kind));
            return errors + 1;
        }
        node = NULL;
    }
    for (size_t i = 0; node && i < node->count; i++) {
        const struct es_node *k = node->pairs[i].key;
        const struct es_node *v = node->pairs[i].value;
        const struct es_cfg_field *f = schema->fields;
        while (f->name && strcmp(f->name, k->str) != 0) {
            f++;
        }
        if (!f->name) {
            char env_name[128];
            snprintf(env_name, sizeof env_name, "%s_env", k->str);
            const struct es_cfg_field *g = schema->fields;
            while (g->name && strcmp(g->name, env_name) != 0) {
                g++;
            }
            const char *near = es_cfg_suggest(schema, k->str);
            if (g->name) {
                es_cfg_error(ctx, k,
                             "'%s' cannot hold a secret in the file: put it in an environment "
                             "variable and name it with '%s'",
                             k->str, g->name);
            } else if (near) {
                es_cfg_error(ctx, k, "%s: unknown key '%s' (did you mean '%s'?)",
                             ctx->label ? ctx->label : schema->name, k->str, near);
            } else {
                char known[512];
                size_t off = 0;
                known[0] = '\0';
                for (const struct es_cfg_field *h = schema->fields; h->name && off < sizeof known;
                     h++) {
                    off += (size_t)snprintf(known + off, sizeof known - off, "%s%s",
                                            h == schema->fields ? "" : ", ", h->name);
                }
                es_cfg_error(ctx, k, "%s: unknown key '%s' (known keys: %s)",
                             ctx->label ? ctx->label : schema->name, k->str, known);
            }
            errors++;
            continue;
        }
        if (v->is_null && f->type != ES_CFG_NODE && f->type != ES_CFG_STR) {
            if (f->flags & ES_CFG_REQUIRED) {
                es_cfg_error(ctx, v, "'%s' needs a value", f->name);
                errors++;
            }
            continue;
        }
        errors += set_field(ctx, f, v, base);
    }
    for (const struct es_cfg_field *f = schema->fields; f->name; f++) {
        if (!(f->flags & ES_CFG_REQUIRED)) {
            continue;
        }
        const struct es_node *present = node ? es_node_get(node, f->name) : NULL;
        if (!present || (present->is_null && f->type != ES_CFG_NODE)) {
            if (node) {
                es_cfg_error(ctx, node, "%s: missing required key '%s' (%s)", schema->name, f->name,
                             f->doc);
                errors++;
            }
        }
    }
    return errors;
}

static void print_default(const struct es_cfg_field *f, FILE *out)
{
    if (f->flags & ES_CFG_REQUIRED) {
        fputs("required", out);
    } else if (f->def) {
        fprintf(out, "`%s`", f->def);
    } else {
        fputs("–", out);
    }
}

void es_cfg_docs(const struct es_cfg_schema *schema, FILE *out, int depth)
{
    fprintf(out, "%.*s `%s`\n\n", depth > 5 ? 6 : depth + 1, "######", schema->name);
    if (schema->doc) {
        fprintf(out, "%s\n\n", schema->doc);
    }
    fputs("| key | type | default | description |\n|---|---|---|---|\n", out);
    for (const struct es_cfg_field *f = schema->fields; f->name; f++) {
        fprintf(out, "| `%s` | %s", f->name, es_cfg_type_name(f->type));
        if (f->type == ES_CFG_ENUM) {
            char list[256];
            choices_text(f->choices, list, sizeof list);
            fprintf(out, " %s", list);
        }
        fputs(" | ", out);
        print_default(f, out);
        fprintf(out, " | %s |\n", f->doc ? f->doc : "");
    }
    fputc('\n', out);
    for (const struct es_cfg_field *f = schema->fields; f->name; f++) {
        if (f->type == ES_CFG_SECTION) {
            es_cfg_docs(f->sub, out, depth + 1);
        }
    }
}

int es_cfg_check_keys(const struct es_node *map, const char *const *allowed, const char *where,
                      struct es_err *err)
{
    if (!map || map->is_null) {
        return ES_OK;
    }
    if (map->kind != ES_NODE_MAP) {
        return es_err_set(err, ES_ECONFIG, "%s:%d:%d: %s must be a mapping", map->file, map->line,
                          map->col, where);
    }
    for (size_t i = 0; i < map->count; i++) {
        const struct es_node *k = map->pairs[i].key;
        const char *best = NULL;
        int best_d = 3, known = 0;
        for (size_t j = 0; allowed[j]; j++) {
            if (strcmp(k->str, allowed[j]) == 0) {
                known = 1;
                break;
            }
            int d = es_edit_distance(k->str, allowed[j]);
            if (d < best_d) {
                best_d = d;
                best = allowed[j];
            }
        }
        if (!known) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: unknown key '%s' in %s%s%s%s", k->file,
                              k->line, k->col, k->str, where, best ? " (did you mean '" : "",
                              best ? best : "", best ? "'?)" : "");
        }
    }
    return ES_OK;
}
