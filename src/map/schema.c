/* SPDX-License-Identifier: MIT */
/*
 * Pre-flight validation: a target schema (required fields, max lengths, picklist values,
 * types) from a connector's describe() or declared in the flow's config, and the check of a
 * mapped record against it before any write. A failure names the field and the rule, so the
 * "missing required field" rejections a target system would send become early, countable
 * validation errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "map/schema.h"

enum ftype { F_STRING, F_INTEGER, F_DECIMAL, F_BOOLEAN, F_DATE, F_DATETIME, F_ANY };

struct sfield {
    char *name;
    struct es_path path;
    int type;
    int required;
    long long max_length; /* 0 = no limit */
    char **picklist;
    size_t npick;
};

struct es_map_schema {
    struct sfield *fields;
    size_t count, cap;
};

static const struct {
    const char *name;
    int type;
} type_names[] = {
    {"string", F_STRING},
    {"text", F_STRING},
    {"textarea", F_STRING},
    {"picklist", F_STRING},
    {"multipicklist", F_STRING},
    {"id", F_STRING},
    {"reference", F_STRING},
    {"email", F_STRING},
    {"phone", F_STRING},
    {"url", F_STRING},
    {"combobox", F_STRING},
    {"edm.string", F_STRING},
    {"char", F_STRING},
    {"selection", F_STRING},
    {"many2one", F_ANY},
    {"integer", F_INTEGER},
    {"int", F_INTEGER},
    {"long", F_INTEGER},
    {"edm.int16", F_INTEGER},
    {"edm.int32", F_INTEGER},
    {"edm.int64", F_INTEGER},
    {"edm.byte", F_INTEGER},
    {"decimal", F_DECIMAL},
    {"double", F_DECIMAL},
    {"currency", F_DECIMAL},
    {"percent", F_DECIMAL},
    {"numeric", F_DECIMAL},
    {"float", F_DECIMAL},
    {"edm.decimal", F_DECIMAL},
    {"edm.double", F_DECIMAL},
    {"edm.single", F_DECIMAL},
    {"boolean", F_BOOLEAN},
    {"bool", F_BOOLEAN},
    {"edm.boolean", F_BOOLEAN},
    {"date", F_DATE},
    {"edm.date", F_DATE},
    {"datetime", F_DATETIME},
    {"edm.datetime", F_DATETIME},
    {"edm.datetimeoffset", F_DATETIME},
    {"timestamp", F_DATETIME},
    {"any", F_ANY},
};

static const char *const ftype_names[] = {"string", "integer",  "decimal", "boolean",
                                          "date",   "datetime", "any"};

static int type_from_name(const char *s, int *ok)
{
    *ok = 1;
    for (size_t i = 0; i < ES_ARRAY_LEN(type_names); i++) {
        if (strcasecmp(type_names[i].name, s) == 0) {
            return type_names[i].type;
        }
    }
    *ok = 0;
    return F_ANY;
}

void es_map_schema_free(struct es_map_schema *schema)
{
    if (!schema) {
        return;
    }
    for (size_t i = 0; i < schema->count; i++) {
        struct sfield *f = &schema->fields[i];
        es_free(f->name);
        es_path_release(&f->path);
        for (size_t k = 0; k < f->npick; k++) {
            es_free(f->picklist[k]);
        }
        es_free(f->picklist);
    }
    es_free(schema->fields);
    es_free(schema);
}

static struct sfield *add_field(struct es_map_schema *s, const char *name)
{
    ES_GROW(s->fields, s->cap, s->count + 1);
    struct sfield *f = &s->fields[s->count++];
    memset(f, 0, sizeof *f);
    f->name = es_xstrdup(name);
    f->type = F_ANY;
    size_t bad = 0;
    if (es_path_parse(name, strlen(name), &f->path, &bad) != ES_OK) {
        memset(&f->path, 0, sizeof f->path);
    }
    return f;
}

static void add_pick(struct sfield *f, const char *v)
{
    size_t cap = f->npick;
    f->picklist = es_xrealloc(f->picklist, (cap + 1) * sizeof *f->picklist);
    f->picklist[f->npick++] = es_xstrdup(v);
}

/* One field from JSON: declared form {type, required, max_length, picklist} or describe form
 * {name, type, length, required/nillable, picklist: [".."|{"value": ".."}]}. */
static int field_from_json(struct es_map_schema *s, const char *name, const json_t *fj,
                           int describe, struct es_err *err)
{
    if (!json_is_object(fj)) {
        return es_err_set(err, ES_EINVAL, "schema field '%s' must be an object", name);
    }
    struct sfield *f = add_field(s, name);
    if (!f->path.n) {
        return es_err_set(err, ES_EINVAL, "schema field '%s': bad field path", name);
    }
    json_t *t = json_object_get(fj, "type");
    if (json_is_string(t)) {
        int ok;
        f->type = type_from_name(json_string_value(t), &ok);
        if (!ok && !describe) {
            return es_err_set(err, ES_EINVAL, "schema field '%s': unknown type '%s'", name,
                              json_string_value(t));
        }
    }
    json_t *req = json_object_get(fj, "required");
    if (json_is_boolean(req)) {
        f->required = json_is_true(req);
    } else if (describe) {
        /* Salesforce: not nillable, createable and not defaulted on create means required. */
        json_t *nil = json_object_get(fj, "nillable");
        json_t *cre = json_object_get(fj, "createable");
        json_t *def = json_object_get(fj, "defaultedOnCreate");
        f->required = json_is_false(nil) && !json_is_false(cre) && !json_is_true(def);
    }
    json_t *len = json_object_get(fj, describe ? "length" : "max_length");
    if (!len) {
        len = json_object_get(fj, describe ? "max_length" : "length");
    }
    if (json_is_integer(len) && json_integer_value(len) > 0) {
        f->max_length = json_integer_value(len);
    }
    json_t *pl = json_object_get(fj, "picklist");
    if (!pl) {
        pl = json_object_get(fj, "picklistValues");
    }
    size_t i;
    json_t *pv;
    json_array_foreach(pl, i, pv)
    {
        if (json_is_string(pv)) {
            add_pick(f, json_string_value(pv));
        } else if (json_is_object(pv) && json_is_string(json_object_get(pv, "value"))) {
            json_t *active = json_object_get(pv, "active");
            if (!json_is_false(active)) {
                add_pick(f, json_string_value(json_object_get(pv, "value")));
            }
        }
    }
    return ES_OK;
}

int es_map_schema_from_json(const json_t *describe, struct es_map_schema **out, struct es_err *err)
{
    *out = NULL;
    if (!json_is_object(describe)) {
        return es_err_set(err, ES_EINVAL, "a schema must be a JSON object");
    }
    struct es_map_schema *s = es_xcalloc(1, sizeof *s);
    int rc = ES_OK;
    json_t *fields = json_object_get(describe, "fields");
    if (json_is_array(fields)) {
        size_t i;
        json_t *fj;
        json_array_foreach(fields, i, fj)
        {
            json_t *nm = json_object_get(fj, "name");
            if (!json_is_string(nm)) {
                rc = es_err_set(err, ES_EINVAL, "describe: field %zu has no name", i);
                break;
            }
            rc = field_from_json(s, json_string_value(nm), fj, 1, err);
            if (rc) {
                break;
            }
        }
    } else {
        const char *k;
        json_t *fj;
        json_object_foreach((json_t *)describe, k, fj)
        {
            rc = field_from_json(s, k, fj, 0, err);
            if (rc) {
                break;
            }
        }
    }
    if (rc) {
        es_map_schema_free(s);
        return rc;
    }
    *out = s;
    return ES_OK;
}

static void nerr(struct es_diags *d, const char *text, const struct es_node *n, const char *fmt,
                 ...) ES_PRINTF(4, 5);
static void nerr(struct es_diags *d, const char *text, const struct es_node *n, const char *fmt,
                 ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    es_diags_add(d, ES_DIAG_ERROR, text, n->file, n->line, n->col, "%s", msg);
}

int es_map_schema_from_node(const struct es_node *node, const char *text,
                            struct es_map_schema **out, struct es_diags *diags)
{
    *out = NULL;
    if (!node || node->kind != ES_NODE_MAP) {
        if (node) {
            nerr(diags, text, node, "schema must be a mapping {Field: {type, required, ...}}");
        }
        return ES_ECONFIG;
    }
    struct es_map_schema *s = es_xcalloc(1, sizeof *s);
    int errors = 0;
    for (size_t i = 0; i < node->count; i++) {
        const struct es_node *k = node->pairs[i].key, *v = node->pairs[i].value;
        struct sfield *f = add_field(s, k->str);
        if (!f->path.n) {
            nerr(diags, text, k, "schema: bad field path '%s'", k->str);
            errors++;
            continue;
        }
        if (v->kind == ES_NODE_SCALAR && !v->is_null) {
            int ok;
            f->type = type_from_name(v->str, &ok); /* short form  Field: string */
            if (!ok) {
                nerr(diags, text, v, "schema field '%s': unknown type '%s'", k->str, v->str);
                errors++;
            }
            continue;
        }
        if (v->kind != ES_NODE_MAP) {
            nerr(diags, text, v, "schema field '%s' must be a mapping {type, required, ...}",
                 k->str);
            errors++;
            continue;
        }
        for (size_t j = 0; j < v->count; j++) {
            const struct es_node *pk = v->pairs[j].key, *pv = v->pairs[j].value;
            if (strcmp(pk->str, "type") == 0 && pv->kind == ES_NODE_SCALAR) {
                int ok;
                f->type = type_from_name(pv->str, &ok);
                if (!ok) {
                    nerr(diags, text, pv,
                         "schema field '%s': unknown type '%s' (string, integer, decimal, "
                         "boolean, date, datetime)",
                         k->str, pv->str);
                    errors++;
                }
            } else if (strcmp(pk->str, "required") == 0 && pv->kind == ES_NODE_SCALAR) {
                if (strcmp(pv->str, "true") == 0 || strcmp(pv->str, "yes") == 0) {
                    f->required = 1;
                } else if (strcmp(pv->str, "false") != 0 && strcmp(pv->str, "no") != 0) {
                    nerr(diags, text, pv, "schema field '%s': required must be true or false",
                         k->str);
                    errors++;
                }
            } else if (strcmp(pk->str, "max_length") == 0 && pv->kind == ES_NODE_SCALAR) {
                char *end = NULL;
                long long n = strtoll(pv->str, &end, 10);
                if (!end || *end || n <= 0) {
                    nerr(diags, text, pv, "schema field '%s': max_length must be a positive number",
                         k->str);
                    errors++;
                }
                f->max_length = n;
            } else if (strcmp(pk->str, "picklist") == 0 && pv->kind == ES_NODE_SEQ) {
                for (size_t q = 0; q < pv->count; q++) {
                    if (pv->items[q]->kind == ES_NODE_SCALAR) {
                        add_pick(f, pv->items[q]->str);
                    }
                }
            } else {
                nerr(diags, text, pk,
                     "schema field '%s': unknown or malformed key '%s' (type, "
                     "required, max_length, picklist)",
                     k->str, pk->str);
                errors++;
            }
        }
    }
    if (errors) {
        es_map_schema_free(s);
        return ES_ECONFIG;
    }
    *out = s;
    return ES_OK;
}

static int sfail(struct es_map_failure *fail, const struct sfield *f, const char *rule,
                 const char *fmt, ...) ES_PRINTF(4, 5);
static int sfail(struct es_map_failure *fail, const struct sfield *f, const char *rule,
                 const char *fmt, ...)
{
    if (fail && fail->code == ES_OK) {
        fail->code = ES_EVALIDATION;
        es_strlcpy(fail->field, f->name, sizeof fail->field);
        es_strlcpy(fail->rule, rule, sizeof fail->rule);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fail->message, sizeof fail->message, fmt, ap);
        va_end(ap);
    }
    return ES_EVALIDATION;
}

static int check_type(const struct sfield *f, struct es_mv *v, struct es_arena *a,
                      struct es_map_failure *fail)
{
    const char *s;
    size_t n;
    struct es_dec d;
    struct es_date dt;
    int ok = 1;
    switch (f->type) {
    case F_STRING:
        ok = v->kind != MV_ARR && v->kind != MV_OBJ;
        break;
    case F_INTEGER:
    case F_DECIMAL:
        if (v->kind == MV_NUM) {
            ok = es_mv_num_dec(v, &d) == ES_OK;
        } else if (v->kind == MV_STR) {
            ok = es_dec_parse(v->u.str.s, v->u.str.n, &d) == ES_OK;
        } else {
            ok = 0;
        }
        if (ok && f->type == F_INTEGER) {
            ok = es_dec_normalize(d).scale == 0;
        }
        break;
    case F_BOOLEAN:
        ok = v->kind == MV_BOOL;
        break;
    case F_DATE:
    case F_DATETIME:
        ok = v->kind == MV_DATE ||
             (es_mv_text(a, v, &s, &n) && es_date_parse(s, n, NULL, &dt) == ES_OK);
        break;
    default:
        break;
    }
    if (!ok) {
        if (!es_mv_text(a, v, &s, &n)) {
            s = v->kind == MV_ARR ? "a list" : "an object";
            n = strlen(s);
        }
        return sfail(fail, f, "type", "expected %s, got '%.*s'", ftype_names[f->type],
                     (int)(n > 60 ? 60 : n), s);
    }
    return ES_OK;
}

int es_map_schema_check(const struct es_map_schema *schema, const struct es_mv *rec,
                        struct es_arena *a, struct es_map_failure *fail)
{
    for (size_t i = 0; schema && i < schema->count; i++) {
        const struct sfield *f = &schema->fields[i];
        struct es_mv *v = es_path_get(a, &f->path, rec, -1);
        if (es_mv_is_null(v) || (v->kind == MV_STR && v->u.str.n == 0)) {
            if (f->required) {
                return sfail(fail, f, "required", "required by the target and missing");
            }
            continue;
        }
        int rc = check_type(f, v, a, fail);
        if (rc) {
            return rc;
        }
        const char *s;
        size_t n;
        if (!es_mv_text(a, v, &s, &n)) {
            continue;
        }
        if (f->max_length > 0) {
            size_t chars = es_utf8_len(s, n);
            if (chars > (size_t)f->max_length) {
                return sfail(fail, f, "max_length", "%zu characters, the target allows %lld", chars,
                             f->max_length);
            }
        }
        if (f->npick) {
            int found = 0;
            for (size_t k = 0; k < f->npick && !found; k++) {
                found = strlen(f->picklist[k]) == n && memcmp(f->picklist[k], s, n) == 0;
            }
            if (!found) {
                return sfail(fail, f, "picklist", "'%.*s' is not an allowed value",
                             (int)(n > 60 ? 60 : n), s);
            }
        }
    }
    return ES_OK;
}

int es_map_validate(const struct es_map_schema *schema, const json_t *rec,
                    struct es_map_failure *fail)
{
    if (fail) {
        memset(fail, 0, sizeof *fail);
    }
    struct es_arena a;
    es_arena_init(&a, 4096);
    struct es_mv *v = es_mv_from_json(&a, rec);
    int rc = es_map_schema_check(schema, v, &a, fail);
    es_arena_release(&a);
    return rc;
}
