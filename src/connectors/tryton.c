/* SPDX-License-Identifier: MIT */
/*
 * The `tryton` connector: Tryton 6.x over JSON-RPC (POST <url>/<database>/ with exactly the
 * keys id, method, params; the last param of a model call is the context).
 *
 * Session: common.db.login gives [user id, key]; every call then carries
 * `Authorization: Session base64(login:uid:key)`. A 401 logs in again once and repeats.
 * Records cross as plain JSON: Tryton's typed values ({"__class__": "Decimal"|"datetime"|
 * "date"...}) become strings ("10.00", "2026-11-27T17:42:55.748351", "2026-11-27"), and
 * booleans become true/false on both backends (SQLite answers 0/1). On the way in, values
 * are typed from fields_get: numeric -> Decimal, date/datetime strings -> Tryton dates,
 * one2many arrays of objects -> [["create", [...]]]; on updates those are matched to the
 * record's existing children by position (write the k-th, create beyond; never delete).
 *
 * Changes: write_date is null on never-edited records, so the change time is
 * coalesce(write_date, create_date). Tryton cannot order by that, so read_changes runs two
 * keyset queries (edited records by (write_date, id), never-edited ones by (create_date, id))
 * and merges them; the watermark "timestamp|id" never skips records sharing a timestamp.
 *
 * Writes are idempotent through a match field (a unique code or reference): records are
 * looked up by it before anything is created, so a retry after a timeout finds the record
 * the first attempt made. Creates go in one call; when that call fails, the records are
 * created one by one so only the bad ones fail. Sales can be quoted and confirmed after the
 * write; a refusal (credit limit) is ES_EREJECTED with Tryton's words, and the sale state is
 * read back because Tryton silently ignores a transition that is not allowed.
 *
 * Options (systems.<name>.options): see docs/connectors.md, "tryton".
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/connector.h"
#include "connectors/http.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/clock.h"
#include "core/diag.h"
#include "core/mem.h"

#define STOCK_OBJECT "stock_quantity"

struct tr_object {
    const char *model;
    const struct es_node *fields; /* sequence of field names, or NULL = every simple field */
    const char *match;            /* unique field for idempotent creates */
    const struct es_node *readback;
    int confirm;             /* sale-like: quote + confirm after the write */
    int archived_as_deleted; /* read_changes: records with active = false are deletes */
    int detect_vanished;     /* read_changes: ids gone since the last full id scan are deletes */
};

struct tr_ctx {
    struct es_http *http;
    char *path; /* "/<database>/" */
    const char *login;
    const char *password;
    char *auth;   /* "Authorization: Session ..." */
    long company; /* 0 = the user's company */
    int64_t overlap_ms;
    size_t nobjects;
    struct tr_object *objects;
    size_t nwarehouses;
    long *warehouses;
    json_t *fields; /* model -> fields_get */
    json_t *known;  /* detect_vanished: model -> {id: true} of the last id scan (this process) */
    long next_id;
};

/* ---- options --------------------------------------------------------------------------- */

static const char *const top_keys[] = {"company", "overlap", "warehouses", "objects", NULL};
static const char *const object_keys[] = {
    "fields", "match", "readback", "confirm", "archived_as_deleted", "detect_vanished", NULL};

static int opt_long(const struct es_node *n, long *out, struct es_err *err)
{
    char *end = NULL;
    if (n->kind != ES_NODE_SCALAR || !n->len) {
        goto bad;
    }
    long v = strtol(n->str, &end, 10);
    if (*end || v <= 0) {
        goto bad;
    }
    *out = v;
    return ES_OK;
bad:
    return es_err_set(err, ES_ECONFIG, "%s:%d:%d: expected a record id (a positive integer)",
                      n->file, n->line, n->col);
}

static int opt_names(const struct es_node *n, struct es_err *err)
{
    if (!n || n->is_null) {
        return ES_OK;
    }
    if (n->kind != ES_NODE_SEQ) {
        return es_err_set(err, ES_ECONFIG, "%s:%d:%d: expected a list of field names", n->file,
                          n->line, n->col);
    }
    for (size_t i = 0; i < n->count; i++) {
        if (n->items[i]->kind != ES_NODE_SCALAR || !n->items[i]->len) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: expected a field name", n->items[i]->file,
                              n->items[i]->line, n->items[i]->col);
        }
    }
    return ES_OK;
}

/* A true/false option (absent = unchanged). */
static int opt_flag(const struct es_node *ob, const char *key, int *out, struct es_err *err)
{
    const struct es_node *cf = es_node_get(ob, key);
    if (!cf || cf->is_null) {
        return ES_OK;
    }
    if (cf->kind == ES_NODE_SCALAR && (!strcmp(cf->str, "true") || !strcmp(cf->str, "yes"))) {
        *out = 1;
    } else if (cf->kind == ES_NODE_SCALAR &&
               (!strcmp(cf->str, "false") || !strcmp(cf->str, "no"))) {
        *out = 0;
    } else {
        return es_err_set(err, ES_ECONFIG, "%s:%d:%d: %s must be true or false", cf->file, cf->line,
                          cf->col, key);
    }
    return ES_OK;
}

static int parse_options(struct tr_ctx *x, const struct es_node *o, struct es_err *err)
{
    int rc = es_cfg_check_keys(o, top_keys, "tryton options", err);
    if (rc != ES_OK || !o || o->is_null) {
        return rc;
    }
    const struct es_node *n = es_node_get(o, "company");
    if (n && !n->is_null && (rc = opt_long(n, &x->company, err)) != ES_OK) {
        return rc;
    }
    n = es_node_get(o, "overlap");
    if (n && !n->is_null) {
        int bad = 0;
        if (n->kind != ES_NODE_SCALAR || es_duration_parse(n->str, &x->overlap_ms, &bad)) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: overlap must be a duration like 5s",
                              n->file, n->line, n->col);
        }
    }
    n = es_node_get(o, "warehouses");
    if (n && !n->is_null) {
        if (n->kind != ES_NODE_SEQ) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: warehouses must be a list of ids",
                              n->file, n->line, n->col);
        }
        x->warehouses = es_xcalloc(n->count + 1, sizeof *x->warehouses);
        for (size_t i = 0; i < n->count; i++) {
            if ((rc = opt_long(n->items[i], &x->warehouses[i], err)) != ES_OK) {
                return rc;
            }
            x->nwarehouses++;
        }
    }
    n = es_node_get(o, "objects");
    if (n && !n->is_null) {
        if (n->kind != ES_NODE_MAP) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: objects must be a mapping", n->file,
                              n->line, n->col);
        }
        x->objects = es_xcalloc(n->count + 1, sizeof *x->objects);
        for (size_t i = 0; i < n->count; i++) {
            const struct es_node *ob = n->pairs[i].value;
            struct tr_object *t = &x->objects[x->nobjects++];
            t->model = n->pairs[i].key->str;
            if ((rc = es_cfg_check_keys(ob, object_keys, "a tryton object", err)) != ES_OK) {
                return rc;
            }
            t->fields = es_node_get(ob, "fields");
            t->readback = es_node_get(ob, "readback");
            if ((rc = opt_names(t->fields, err)) != ES_OK ||
                (rc = opt_names(t->readback, err)) != ES_OK) {
                return rc;
            }
            const struct es_node *m = es_node_get(ob, "match");
            if (m && !m->is_null) {
                if (m->kind != ES_NODE_SCALAR || !m->len) {
                    return es_err_set(err, ES_ECONFIG, "%s:%d:%d: match must be a field name",
                                      m->file, m->line, m->col);
                }
                t->match = m->str;
            }
            if ((rc = opt_flag(ob, "archived_as_deleted", &t->archived_as_deleted, err)) != ES_OK ||
                (rc = opt_flag(ob, "detect_vanished", &t->detect_vanished, err)) != ES_OK) {
                return rc;
            }
            const struct es_node *cf = es_node_get(ob, "confirm");
            if (cf && !cf->is_null) {
                if (cf->kind == ES_NODE_SCALAR &&
                    (!strcmp(cf->str, "true") || !strcmp(cf->str, "yes"))) {
                    t->confirm = 1;
                } else if (cf->kind != ES_NODE_SCALAR ||
                           (strcmp(cf->str, "false") && strcmp(cf->str, "no"))) {
                    return es_err_set(err, ES_ECONFIG, "%s:%d:%d: confirm must be true or false",
                                      cf->file, cf->line, cf->col);
                }
            }
        }
    }
    return ES_OK;
}

static const struct tr_object *object_of(const struct tr_ctx *x, const char *model)
{
    static const struct tr_object none = {NULL, NULL, NULL, NULL, 0, 0, 0};
    for (size_t i = 0; i < x->nobjects; i++) {
        if (strcmp(x->objects[i].model, model) == 0) {
            return &x->objects[i];
        }
    }
    return &none;
}

/* ---- values ---------------------------------------------------------------------------- */

static long long jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v)
                              : (json_is_real(v) ? (long long)json_real_value(v) : 0);
}

/* Tryton's typed values to plain JSON. OUT: new reference (steals nothing). */
static json_t *decode(json_t *v)
{
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            json_array_append_new(a, decode(e));
        }
        return a;
    }
    if (!json_is_object(v)) {
        return json_incref(v);
    }
    const char *cls = json_string_value(json_object_get(v, "__class__"));
    char buf[64];
    if (cls && strcmp(cls, "Decimal") == 0) {
        return json_incref(json_object_get(v, "decimal"));
    }
    if (cls && strcmp(cls, "datetime") == 0) {
        snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%06lld",
                 jint(v, "year"), jint(v, "month"), jint(v, "day"), jint(v, "hour"),
                 jint(v, "minute"), jint(v, "second"), jint(v, "microsecond"));
        return json_string(buf);
    }
    if (cls && strcmp(cls, "date") == 0) {
        snprintf(buf, sizeof buf, "%04lld-%02lld-%02lld", jint(v, "year"), jint(v, "month"),
                 jint(v, "day"));
        return json_string(buf);
    }
    if (cls && strcmp(cls, "time") == 0) {
        snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", jint(v, "hour"), jint(v, "minute"),
                 jint(v, "second"));
        return json_string(buf);
    }
    if (cls && strcmp(cls, "timedelta") == 0) {
        return json_incref(json_object_get(v, "seconds"));
    }
    if (cls && strcmp(cls, "bytes") == 0) {
        return json_incref(json_object_get(v, "base64"));
    }
    json_t *o = json_object();
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e)
    {
        json_object_set_new(o, k, decode(e));
    }
    return o;
}

/* A Tryton datetime from "YYYY-MM-DD[T ]HH:MM:SS[.ffffff]" (NULL when malformed). */
static json_t *tr_datetime(const char *s)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    long us = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3) {
        return NULL;
    }
    const char *p = s + n;
    if (*p == 'T' || *p == ' ') {
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3) {
            return NULL;
        }
        p += 1 + n;
        if (*p == '.') {
            char frac[7] = "000000";
            for (int i = 0; i < 6 && isdigit((unsigned char)p[1 + i]); i++) {
                frac[i] = p[1 + i];
            }
            us = strtol(frac, NULL, 10);
        }
    }
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:I}", "__class__", "datetime", "year", y,
                     "month", mo, "day", d, "hour", h, "minute", mi, "second", sec, "microsecond",
                     (json_int_t)us);
}

static json_t *fields_of(struct tr_ctx *x, const char *model, struct es_err *err);

/* Plain JSON to Tryton values for model (typed by fields_get). OUT: new reference. */
static json_t *encode(struct tr_ctx *x, const char *model, json_t *data, struct es_err *err)
{
    json_t *fields = fields_of(x, model, err);
    if (!fields) {
        return NULL;
    }
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(data, k, v)
    {
        json_t *f = json_object_get(fields, k);
        const char *type = json_string_value(json_object_get(f, "type"));
        json_t *nv = NULL;
        if (!type || json_is_null(v)) {
            nv = json_incref(v);
        } else if (!strcmp(type, "numeric")) {
            if (json_is_string(v)) {
                nv = json_pack("{s:s, s:O}", "__class__", "Decimal", "decimal", v);
            } else if (json_is_integer(v)) {
                char b[32];
                snprintf(b, sizeof b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                nv = json_pack("{s:s, s:s}", "__class__", "Decimal", "decimal", b);
            } else if (json_is_real(v)) {
                char b[40];
                snprintf(b, sizeof b, "%.15g", json_real_value(v));
                nv = json_pack("{s:s, s:s}", "__class__", "Decimal", "decimal", b);
            }
        } else if (!strcmp(type, "date") && json_is_string(v)) {
            int y, mo, d;
            if (sscanf(json_string_value(v), "%4d-%2d-%2d", &y, &mo, &d) == 3) {
                nv = json_pack("{s:s, s:i, s:i, s:i}", "__class__", "date", "year", y, "month", mo,
                               "day", d);
            }
        } else if (!strcmp(type, "datetime") && json_is_string(v)) {
            nv = tr_datetime(json_string_value(v));
        } else if ((!strcmp(type, "many2one") || !strcmp(type, "integer")) && json_is_string(v)) {
            char *end = NULL;
            long long id = strtoll(json_string_value(v), &end, 10);
            if (end && !*end && json_string_length(v)) {
                nv = json_integer(id);
            }
        } else if ((!strcmp(type, "one2many") || !strcmp(type, "many2many")) && json_is_array(v) &&
                   json_array_size(v) && json_is_object(json_array_get(v, 0))) {
            const char *rel = json_string_value(json_object_get(f, "relation"));
            json_t *rows = json_array();
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                json_t *enc = rel ? encode(x, rel, e, err) : json_incref(e);
                if (!enc) {
                    json_decref(rows);
                    json_decref(out);
                    return NULL;
                }
                json_array_append_new(rows, enc);
            }
            nv = json_pack("[[s, o]]", "create", rows);
        } else if (!strcmp(type, "many2many") && json_is_array(v) && json_array_size(v) &&
                   json_is_integer(json_array_get(v, 0))) {
            nv = json_pack("[[s, O]]", "add", v);
        }
        json_object_set_new(out, k, nv ? nv : json_incref(v));
    }
    return out;
}

/* ---- JSON-RPC -------------------------------------------------------------------------- */

static void b64(struct es_buf *b, const unsigned char *s, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n) {
            v |= (unsigned)s[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= s[i + 2];
        }
        (void)es_buf_putc(b, t[(v >> 18) & 63]);
        (void)es_buf_putc(b, t[(v >> 12) & 63]);
        (void)es_buf_putc(b, i + 1 < n ? t[(v >> 6) & 63] : '=');
        (void)es_buf_putc(b, i + 2 < n ? t[v & 63] : '=');
    }
}

/* Classifies Tryton's "error" member: [type, args] or [text, ""]. */
static int rpc_error(const json_t *e, const char *method, struct es_err *err)
{
    const char *type = json_string_value(json_array_get(e, 0));
    const json_t *args = json_array_get(e, 1);
    const char *msg = NULL;
    if (json_is_array(args)) {
        msg = json_string_value(json_array_get(args, 0));
        if (type && !strcmp(type, "UserWarning")) { /* [name, message, description] */
            msg = json_string_value(json_array_get(args, 1));
        }
    }
    if (!type) {
        type = "error";
    }
    enum es_code code;
    const char *rcode = type;
    if (!strcmp(type, "UserError") || !strcmp(type, "UserWarning")) {
        code = ES_EREJECTED;
        if (msg && (strstr(msg, "A value is required") || strstr(msg, "is not valid according") ||
                    strstr(msg, "is not valid") || strstr(msg, "size of"))) {
            code = ES_EVALIDATION;
        } else if (msg && strstr(msg, "must be unique")) {
            code = ES_EDUPLICATE;
        } else if (msg && strstr(msg, "don't exist anymore")) {
            code = ES_ENOTFOUND;
        } else if (msg && (strstr(msg, "not allowed to") || strstr(msg, "is not allowed"))) {
            /* model/field access, record rules, buttons: the API user's rights */
            code = ES_EAUTH;
        }
    } else if (!strcmp(type, "ConcurrencyException")) {
        code = ES_ECONFLICT;
    } else if (!strcmp(type, "LoginException")) {
        code = ES_EAUTH;
    } else if (!strcmp(type, "RateLimitException")) {
        code = ES_ERATELIMIT;
    } else {
        /* a bare Python exception text: a KeyError names an unknown field or model */
        msg = type;
        rcode = "exception";
        if (strstr(type, "Database") && strstr(type, "exist")) {
            code = ES_ECONFIG;
        } else if (type[0] == '\'' || strstr(type, "invalid literal")) {
            code = ES_EVALIDATION;
        } else {
            code = ES_EREMOTE;
        }
    }
    int rc = es_err_set(err, code, "tryton %s: %s", method, msg ? msg : "error");
    es_err_remote(err, 200, rcode, msg);
    return rc;
}

static int login(struct tr_ctx *x, struct es_err *err);

/* One call. params is stolen. OUT: *result (new reference, may be JSON null). */
static int rpc(struct tr_ctx *x, const char *method, json_t *params, json_t **result,
               struct es_err *err)
{
    *result = NULL;
    int is_login = !strcmp(method, "common.db.login");
    if (!is_login && !x->auth) {
        int rc = login(x, err);
        if (rc != ES_OK) {
            json_decref(params);
            return rc;
        }
    }
    json_t *req = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)++x->next_id, "method", method,
                            "params", params);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body) {
        return es_err_set(err, ES_EINTERNAL, "tryton %s: cannot encode the request", method);
    }
    struct es_http_resp resp;
    es_http_resp_init(&resp, x->http);
    int rc = ES_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *hdrs[2] = {is_login ? NULL : x->auth, NULL};
        struct es_http_req_opts rq = {
            .method = "POST",
            .url = x->path,
            .headers = hdrs,
            .body = body,
            .body_len = strlen(body),
            .content_type = "application/json",
            .no_auth = 1,
            .no_reauth = 1,
        };
        rc = es_http_send(x->http, &rq, &resp, err);
        if (rc != ES_OK) {
            break;
        }
        if (resp.status == 401 && !is_login && attempt == 0) {
            /* session expired or revoked: log in again once and repeat the call */
            es_free(x->auth);
            x->auth = NULL;
            rc = login(x, err);
            if (rc != ES_OK) {
                break;
            }
            hdrs[0] = x->auth;
            continue;
        }
        break;
    }
    free(body); /* checksrc: ok (jansson allocates with malloc) */
    if (rc == ES_OK) {
        char what[160];
        snprintf(what, sizeof what, "tryton %s", method);
        rc = es_http_check(x->http, &resp, 1, what, err);
    }
    json_t *j = NULL;
    if (rc == ES_OK) {
        json_error_t je;
        j = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
        if (!j || !json_is_object(j) ||
            (!json_object_get(j, "result") && !json_object_get(j, "error"))) {
            rc = es_err_set(err, ES_EPROTOCOL,
                            "tryton %s: the answer is not a JSON-RPC reply (HTTP %ld, %zu bytes)",
                            method, resp.status, resp.body.len);
            es_err_remote(err, resp.status, NULL, NULL);
        } else if (json_object_get(j, "error") && !json_is_null(json_object_get(j, "error"))) {
            rc = rpc_error(json_object_get(j, "error"), method, err);
        } else {
            *result = json_incref(json_object_get(j, "result"));
        }
    }
    json_decref(j);
    es_http_resp_release(&resp);
    return rc;
}

static int login(struct tr_ctx *x, struct es_err *err)
{
    if (!x->login || !x->password) {
        return es_err_set(err, ES_ECONFIG,
                          "tryton: auth.login_env and auth.password_env must name set variables");
    }
    json_t *res = NULL;
    int rc = rpc(x, "common.db.login",
                 json_pack("[s, {s:s}, s]", x->login, "password", x->password, "en"), &res, err);
    if (rc != ES_OK) {
        if (rc == ES_EAUTH) {
            es_err_hint(err, "Tryton refused the login; check auth.login_env/password_env");
        } else if (err && err->http_status == 404) {
            /* Tryton on PostgreSQL answers an unknown database with a bare 404 */
            es_err_clear(err);
            rc = es_err_set(err, ES_ECONFIG, "tryton: no database '%.*s' on this server (HTTP 404)",
                            (int)strlen(x->path) - 2, x->path + 1);
            err->http_status = 404;
        }
        return rc;
    }
    if (!json_is_array(res) || !json_is_integer(json_array_get(res, 0)) ||
        !json_is_string(json_array_get(res, 1))) {
        json_decref(res);
        return es_err_set(err, ES_EPROTOCOL, "tryton: unexpected login answer");
    }
    struct es_buf raw, hdr;
    es_buf_init(&raw, 0);
    es_buf_init(&hdr, 0);
    (void)es_buf_printf(&raw, "%s:%" JSON_INTEGER_FORMAT ":%s", x->login,
                        json_integer_value(json_array_get(res, 0)),
                        json_string_value(json_array_get(res, 1)));
    (void)es_buf_puts(&hdr, "Authorization: Session ");
    b64(&hdr, (const unsigned char *)raw.data, raw.len);
    es_buf_release(&raw);
    json_decref(res);
    x->auth = es_buf_detach(&hdr, NULL);
    if (!x->company) {
        json_t *prefs = NULL;
        rc = rpc(x, "model.res.user.get_preferences", json_pack("[b, {}]", 1), &prefs, err);
        if (rc != ES_OK) {
            return rc;
        }
        json_t *co = json_object_get(prefs, "company");
        x->company = json_is_integer(co) ? (long)json_integer_value(co) : 0;
        json_decref(prefs);
    }
    return ES_OK;
}

/* The context of business calls (company), plus extra keys from add (borrowed). */
static json_t *context(const struct tr_ctx *x, json_t *add)
{
    json_t *c = json_object();
    if (x->company) {
        json_object_set_new(c, "company", json_integer(x->company));
    }
    if (add) {
        json_object_update(c, add);
    }
    return c;
}

/* Model method call: params (stolen) get the context, plus ctx_extra (stolen), appended. */
static int call(struct tr_ctx *x, const char *model, const char *method, json_t *params,
                json_t *ctx_extra, json_t **result, struct es_err *err)
{
    char name[160];
    snprintf(name, sizeof name, "model.%s.%s", model, method);
    json_array_append_new(params, context(x, ctx_extra));
    json_decref(ctx_extra);
    json_t *res = NULL;
    int rc = rpc(x, name, params, &res, err);
    if (result) {
        *result = res;
    } else {
        json_decref(res);
    }
    return rc;
}

static json_t *fields_of(struct tr_ctx *x, const char *model, struct es_err *err)
{
    json_t *f = json_object_get(x->fields, model);
    if (f) {
        return f;
    }
    json_t *res = NULL;
    if (call(x, model, "fields_get", json_pack("[n]"), NULL, &res, err) != ES_OK) {
        return NULL;
    }
    if (!json_is_object(res)) {
        json_decref(res);
        es_err_set(err, ES_EPROTOCOL, "tryton: fields_get of %s is not an object", model);
        return NULL;
    }
    json_object_set_new(x->fields, model, res);
    return res;
}

/* Field names to read: configured, or every field that is not a list or a blob. */
static json_t *read_fields(struct tr_ctx *x, const char *model, struct es_err *err)
{
    const struct tr_object *o = object_of(x, model);
    json_t *fields = fields_of(x, model, err); /* also types the booleans read later */
    if (!fields) {
        return NULL;
    }
    json_t *names = json_array();
    if (o->fields) {
        for (size_t i = 0; i < o->fields->count; i++) {
            json_array_append_new(names, json_string(o->fields->items[i]->str));
        }
        return names;
    }
    const char *k;
    json_t *f;
    json_object_foreach(fields, k, f)
    {
        const char *t = json_string_value(json_object_get(f, "type"));
        if (t && strcmp(t, "one2many") && strcmp(t, "many2many") && strcmp(t, "binary") &&
            strcmp(t, "dict")) {
            json_array_append_new(names, json_string(k));
        }
    }
    return names;
}

/* A record from Tryton as plain JSON (booleans typed by fields_get). OUT: new reference. */
static json_t *plain_record(struct tr_ctx *x, const char *model, json_t *rec)
{
    json_t *out = decode(rec);
    json_t *fields = json_object_get(x->fields, model);
    const char *k;
    json_t *v;
    json_object_foreach(out, k, v)
    {
        const char *t = json_string_value(json_object_get(json_object_get(fields, k), "type"));
        if (t && !strcmp(t, "boolean") && json_is_integer(v)) {
            json_object_set_new(out, k, json_boolean(json_integer_value(v) != 0));
        }
    }
    return out;
}

static int ping(struct es_conn *c, struct es_err *err)
{
    struct tr_ctx *x = c->ctx;
    json_t *res = NULL;
    int rc = rpc(x, "model.res.user.get_preferences", json_pack("[b, {}]", 1), &res, err);
    json_decref(res);
    return rc;
}

/* ---- reading --------------------------------------------------------------------------- */

/* The change time of a plain record: coalesce(write_date, create_date). */
static const char *change_ts(const json_t *rec)
{
    const char *w = json_string_value(json_object_get(rec, "write_date"));
    return w ? w : json_string_value(json_object_get(rec, "create_date"));
}

/* One keyset query over the records whose change time is held in `col` (write_date for
 * edited records, create_date for never-edited ones). OUT: *rows (plain records). */
static int changes_query(struct tr_ctx *x, const char *model, int edited, const char *ts,
                         long long id, size_t limit, json_t *fields, int archived, json_t **rows,
                         struct es_err *err)
{
    const char *col = edited ? "write_date" : "create_date";
    json_t *dom = json_array();
    json_array_append_new(dom, json_pack("[s, s, n]", "write_date", edited ? "!=" : "="));
    if (ts) {
        json_t *t1 = tr_datetime(ts), *t2 = tr_datetime(ts);
        json_array_append_new(dom, json_pack("[s, [s, s, o], [[s, s, o], [s, s, I]]]", "OR", col,
                                             ">", t1, col, "=", t2, "id", ">", (json_int_t)id));
    }
    json_t *res = NULL;
    int rc = call(x, model, "search_read",
                  json_pack("[o, i, I, [[s, s], [s, s]], O]", dom, 0, (json_int_t)limit, col, "ASC",
                            "id", "ASC", fields),
                  archived ? json_pack("{s:b}", "active_test", 0) : NULL, &res, err);
    if (rc != ES_OK) {
        return rc;
    }
    if (!json_is_array(res)) {
        json_decref(res);
        return es_err_set(err, ES_EPROTOCOL, "tryton: search_read of %s is not a list", model);
    }
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r)
    {
        json_array_append_new(out, plain_record(x, model, r));
    }
    json_decref(res);
    *rows = out;
    return ES_OK;
}

static int key_cmp(const json_t *a, const json_t *b)
{
    int c = strcmp(change_ts(a) ? change_ts(a) : "", change_ts(b) ? change_ts(b) : "");
    if (c) {
        return c;
    }
    long long ia = jint(a, "id"), ib = jint(b, "id");
    return ia < ib ? -1 : ia > ib;
}

/* "ts" minus ms, same format. */
static void ts_minus(const char *ts, int64_t ms, char *out, size_t cap)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int us = 0;
    if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%6d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &us) < 6) {
        es_strlcpy(out, ts, cap);
        return;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    long long t = (long long)timegm(&tm) * 1000000LL + us - (long long)ms * 1000LL;
    time_t secs = (time_t)(t / 1000000LL);
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, t % 1000000LL);
}

/* detect_vanished: every id of model now, archived ones included. OUT: *set {id: true}. */
static int all_ids(struct tr_ctx *x, const char *model, json_t **set, struct es_err *err)
{
    json_t *res = NULL;
    int rc = call(x, model, "search", json_pack("[[], i, n, [[s, s]]]", 0, "id", "ASC"),
                  json_pack("{s:b}", "active_test", 0), &res, err);
    if (rc != ES_OK) {
        return rc;
    }
    if (!json_is_array(res)) {
        json_decref(res);
        return es_err_set(err, ES_EPROTOCOL, "tryton: search of %s is not a list", model);
    }
    json_t *out = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(res, i, v)
    {
        if (!json_is_integer(v)) {
            json_decref(out);
            json_decref(res);
            return es_err_set(err, ES_EPROTOCOL, "tryton: search of %s returned a non-id", model);
        }
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(v));
        json_object_set_new(out, key, json_true());
    }
    json_decref(res);
    *set = out;
    return ES_OK;
}

/* Tryton keeps no tombstones: ids that were there at this process's last scan and are gone
 * now were deleted. They become deleted records (version "vanished@<time of the scan>"); the
 * first scan only learns the ids. At most `limit` records in all: the rest stay known and come
 * at the next call. */
static int report_vanished(struct tr_ctx *x, const char *model, size_t limit, struct es_batch *out,
                           struct es_err *err)
{
    json_t *now = NULL;
    int rc = all_ids(x, model, &now, err);
    if (rc != ES_OK) {
        return rc;
    }
    json_t *prev = json_object_get(x->known, model);
    char ver[64] = "vanished@";
    es_clock_iso8601(es_clock_wall_ms(), ver + 9, sizeof ver - 9);
    const char *k;
    json_t *v;
    json_object_foreach(prev, k, v)
    {
        if (json_object_get(now, k)) {
            continue;
        }
        if (out->count >= limit) {
            json_object_set_new(now, k, json_true()); /* reported next time */
            continue;
        }
        es_batch_add(out, k, ver, 1, json_pack("{s:I}", "id", (json_int_t)strtoll(k, NULL, 10)));
    }
    json_object_set_new(x->known, model, now);
    return ES_OK;
}

static int read_changes(struct es_conn *c, const char *model, const char *watermark, size_t limit,
                        struct es_batch *out, struct es_err *err)
{
    struct tr_ctx *x = c->ctx;
    es_batch_init(out);
    if (!strcmp(model, STOCK_OBJECT)) {
        return es_err_set(err, ES_EINVAL, "tryton: %s has no change time: use a batch flow",
                          STOCK_OBJECT);
    }
    if (!limit) {
        limit = 500;
    }
    char ts[40] = "";
    long long id = 0;
    if (watermark && *watermark) {
        const char *bar = strchr(watermark, '|');
        if (!bar || bar == watermark || (size_t)(bar - watermark) >= sizeof ts) {
            return es_err_set(err, ES_EINVAL, "tryton: bad watermark '%s' (want 'ts|id')",
                              watermark);
        }
        memcpy(ts, watermark, (size_t)(bar - watermark));
        ts[bar - watermark] = '\0';
        id = strtoll(bar + 1, NULL, 10);
    }
    json_t *fields = read_fields(x, model, err);
    if (!fields) {
        return err && err->code ? err->code : ES_EREMOTE;
    }
    json_array_append_new(fields, json_string("write_date"));
    json_array_append_new(fields, json_string("create_date"));
    const struct tr_object *o = object_of(x, model);
    /* archived records are read too (Tryton hides them by default) when they count as deletes
     * and the model can archive (has a boolean `active`) */
    json_t *active_f = json_object_get(json_object_get(x->fields, model), "active");
    const char *active_t = json_string_value(json_object_get(active_f, "type"));
    int archived = o->archived_as_deleted && active_t && !strcmp(active_t, "boolean");
    if (archived) {
        json_array_append_new(fields, json_string("active"));
    }
    json_t *a = NULL, *b = NULL;
    int rc = changes_query(x, model, 1, ts[0] ? ts : NULL, id, limit, fields, archived, &a, err);
    if (rc == ES_OK) {
        rc = changes_query(x, model, 0, ts[0] ? ts : NULL, id, limit, fields, archived, &b, err);
    }
    json_decref(fields);
    if (rc != ES_OK) {
        json_decref(a);
        return rc;
    }
    /* merge the two sorted lists; the first `limit` of the union are the next changes */
    size_t ia = 0, ib = 0, na = json_array_size(a), nb = json_array_size(b);
    json_t *last = NULL;
    while (out->count < limit && (ia < na || ib < nb)) {
        json_t *r;
        if (ib >= nb || (ia < na && key_cmp(json_array_get(a, ia), json_array_get(b, ib)) < 0)) {
            r = json_array_get(a, ia++);
        } else {
            r = json_array_get(b, ib++);
        }
        char key[32];
        snprintf(key, sizeof key, "%lld", jint(r, "id"));
        int deleted = archived && json_is_false(json_object_get(r, "active"));
        es_batch_add(out, key, change_ts(r), deleted, json_incref(r));
        last = r;
    }
    if (last && out->count == limit) {
        out->watermark = es_xasprintf("%s|%lld", change_ts(last), jint(last, "id"));
    } else if (last && x->overlap_ms > 0) {
        char back[40];
        ts_minus(change_ts(last), x->overlap_ms, back, sizeof back);
        out->watermark = es_xasprintf("%s|0", back);
    } else if (last) {
        out->watermark = es_xasprintf("%s|%lld", change_ts(last), jint(last, "id"));
    } else {
        out->watermark = watermark ? es_xstrdup(watermark) : NULL;
    }
    json_decref(a);
    json_decref(b);
    if (o->detect_vanished && out->count < limit) {
        /* caught up: compare the ids with the last scan (the watermark is not involved) */
        rc = report_vanished(x, model, limit, out, err);
        if (rc != ES_OK) {
            es_batch_release(out);
            es_batch_init(out);
        }
    }
    return rc;
}

static int warehouses(struct tr_ctx *x, json_t **ids, struct es_err *err)
{
    if (x->nwarehouses) {
        *ids = json_array();
        for (size_t i = 0; i < x->nwarehouses; i++) {
            json_array_append_new(*ids, json_integer(x->warehouses[i]));
        }
        return ES_OK;
    }
    return call(
        x, "stock.location", "search",
        json_pack("[[[s, s, s]], i, n, [[s, s]]]", "type", "=", "warehouse", 0, "id", "ASC"), NULL,
        ids, err);
}

/* Stock quantities per (product, warehouse) for products with ids > after. */
static int read_stock(struct tr_ctx *x, const char *page, size_t limit, struct es_batch *out,
                      struct es_err *err)
{
    long long after = page ? strtoll(page, NULL, 10) : 0;
    json_t *whs = NULL, *prods = NULL;
    int rc = warehouses(x, &whs, err);
    if (rc == ES_OK) {
        rc = call(x, "product.product", "search_read",
                  json_pack("[[[s, s, I], [s, s, s]], i, I, [[s, s]], [s, s]]", "id", ">",
                            (json_int_t)after, "type", "=", "goods", 0, (json_int_t)limit + 1, "id",
                            "ASC", "code", "name"),
                  NULL, &prods, err);
    }
    if (rc != ES_OK) {
        json_decref(whs);
        return rc;
    }
    size_t n = json_array_size(prods);
    size_t take = n > limit ? limit : n;
    json_t *ids = json_array();
    for (size_t i = 0; i < take; i++) {
        json_array_append_new(ids, json_incref(json_object_get(json_array_get(prods, i), "id")));
    }
    size_t w;
    json_t *wh;
    json_array_foreach(whs, w, wh)
    {
        json_t *q = NULL;
        rc = call(x, "product.product", "read",
                  json_pack("[O, [s, s]]", ids, "quantity", "forecast_quantity"),
                  json_pack("{s:[O]}", "locations", wh), &q, err);
        if (rc != ES_OK) {
            break;
        }
        /* read answers in any order: index by id */
        for (size_t i = 0; i < take; i++) {
            json_t *p = json_array_get(prods, i);
            long long pid = jint(p, "id");
            json_t *row = NULL;
            size_t j;
            json_t *r;
            json_array_foreach(q, j, r)
            {
                if (jint(r, "id") == pid) {
                    row = r;
                    break;
                }
            }
            char key[64];
            snprintf(key, sizeof key, "%lld@%lld", pid, (long long)json_integer_value(wh));
            json_t *rec = json_object();
            json_object_set_new(rec, "product", json_integer(pid));
            json_object_set(rec, "code", json_object_get(p, "code"));
            json_object_set(rec, "name", json_object_get(p, "name"));
            json_object_set(rec, "warehouse", wh);
            json_t *qty = row ? json_object_get(row, "quantity") : NULL;
            json_t *fc = row ? json_object_get(row, "forecast_quantity") : NULL;
            json_object_set_new(rec, "quantity", qty ? json_incref(qty) : json_real(0));
            json_object_set_new(rec, "forecast_quantity", fc ? json_incref(fc) : json_real(0));
            es_batch_add(out, key, NULL, 0, rec);
        }
        json_decref(q);
    }
    if (rc == ES_OK && n > limit) {
        out->next_page = es_xasprintf("%lld", jint(json_array_get(prods, take - 1), "id"));
    }
    json_decref(ids);
    json_decref(whs);
    json_decref(prods);
    if (rc != ES_OK) {
        es_batch_release(out);
    }
    return rc;
}

static int read_page(struct es_conn *c, const char *model, const char *page, size_t limit,
                     struct es_batch *out, struct es_err *err)
{
    struct tr_ctx *x = c->ctx;
    es_batch_init(out);
    if (!limit) {
        limit = 500;
    }
    if (!strcmp(model, STOCK_OBJECT)) {
        return read_stock(x, page, limit, out, err);
    }
    long long after = page ? strtoll(page, NULL, 10) : 0;
    json_t *fields = read_fields(x, model, err);
    if (!fields) {
        return err && err->code ? err->code : ES_EREMOTE;
    }
    json_t *res = NULL;
    int rc = call(x, model, "search_read",
                  json_pack("[[[s, s, I]], i, I, [[s, s]], o]", "id", ">", (json_int_t)after, 0,
                            (json_int_t)limit + 1, "id", "ASC", fields),
                  NULL, &res, err);
    if (rc != ES_OK) {
        return rc;
    }
    if (!json_is_array(res)) {
        json_decref(res);
        return es_err_set(err, ES_EPROTOCOL, "tryton: search_read of %s is not a list", model);
    }
    size_t n = json_array_size(res);
    size_t take = n > limit ? limit : n;
    for (size_t i = 0; i < take; i++) {
        json_t *r = json_array_get(res, i);
        char key[32];
        snprintf(key, sizeof key, "%lld", jint(r, "id"));
        es_batch_add(out, key, NULL, 0, plain_record(x, model, r));
    }
    if (n > limit) {
        out->next_page = es_xasprintf("%lld", jint(json_array_get(res, take - 1), "id"));
    }
    json_decref(res);
    return ES_OK;
}

static int get(struct es_conn *c, const char *model, const char *id, json_t **out,
               struct es_err *err)
{
    struct tr_ctx *x = c->ctx;
    char *end = NULL;
    long long n = strtoll(id, &end, 10);
    if (!strcmp(model, STOCK_OBJECT)) {
        long long wh = end && *end == '@' ? strtoll(end + 1, NULL, 10) : 0;
        json_t *q = NULL;
        int rc = call(
            x, "product.product", "read",
            json_pack("[[I], [s, s, s]]", (json_int_t)n, "code", "quantity", "forecast_quantity"),
            json_pack("{s:[I]}", "locations", (json_int_t)wh), &q, err);
        if (rc == ES_OK && json_array_size(q) == 1) {
            *out = decode(json_array_get(q, 0));
            json_object_set_new(*out, "warehouse", json_integer(wh));
            json_object_set_new(*out, "product", json_integer(n));
            json_object_del(*out, "id");
        } else if (rc == ES_OK) {
            rc = es_err_set(err, ES_ENOTFOUND, "tryton: product %lld not found", n);
        }
        json_decref(q);
        return rc;
    }
    if (!end || *end || n <= 0) {
        return es_err_set(err, ES_ENOTFOUND, "tryton: '%s' is not a %s id", id, model);
    }
    json_t *fields = read_fields(x, model, err);
    if (!fields) {
        return err && err->code ? err->code : ES_EREMOTE;
    }
    json_t *res = NULL;
    int rc = call(x, model, "read", json_pack("[[I], o]", (json_int_t)n, fields), NULL, &res, err);
    if (rc == ES_OK && json_array_size(res) == 1) {
        *out = plain_record(x, model, json_array_get(res, 0));
    } else if (rc == ES_OK) {
        rc = es_err_set(err, ES_ENOTFOUND, "tryton: %s %lld not found", model, n);
    }
    json_decref(res);
    return rc;
}

static int describe(struct es_conn *c, const char *model, json_t **out, struct es_err *err)
{
    struct tr_ctx *x = c->ctx;
    if (!model) {
        json_t *res = NULL;
        int rc = call(x, "ir.model", "search_read",
                      json_pack("[[], i, n, [[s, s]], [s]]", 0, "model", "ASC", "model"), NULL,
                      &res, err);
        if (rc != ES_OK) {
            return rc;
        }
        json_t *names = json_array();
        size_t i;
        json_t *r;
        json_array_foreach(res, i, r)
        {
            json_array_append(names, json_object_get(r, "model"));
        }
        json_array_append_new(names, json_string(STOCK_OBJECT));
        json_decref(res);
        *out = json_pack("{s:o}", "objects", names);
        return ES_OK;
    }
    json_t *fields = fields_of(x, model, err);
    if (!fields) {
        return err && err->code ? err->code : ES_EREMOTE;
    }
    json_t *list = json_array();
    const char *k;
    json_t *f;
    json_object_foreach(fields, k, f)
    {
        int ro = json_is_true(json_object_get(f, "readonly"));
        json_t *d = json_pack("{s:s, s:O, s:b, s:b, s:b, s:b, s:b}", "name", k, "type",
                              json_object_get(f, "type"), "required",
                              json_is_true(json_object_get(f, "required")), "nillable",
                              !json_is_true(json_object_get(f, "required")), "createable", !ro,
                              "updateable", !ro, "external_id", 0);
        json_t *size = json_object_get(f, "size");
        if (json_is_integer(size)) {
            json_object_set(d, "length", size);
        }
        json_t *rel = json_object_get(f, "relation");
        if (json_is_string(rel)) {
            json_object_set(d, "relation", rel);
        }
        json_t *sel = json_object_get(f, "selection");
        if (json_is_array(sel)) {
            json_t *pick = json_array();
            size_t i;
            json_t *s;
            json_array_foreach(sel, i, s)
            {
                if (json_is_array(s) && json_is_string(json_array_get(s, 0))) {
                    json_array_append(pick, json_array_get(s, 0));
                }
            }
            json_object_set_new(d, "picklist", pick);
        }
        json_array_append_new(list, d);
    }
    *out = json_pack("{s:s, s:o}", "name", model, "fields", list);
    return ES_OK;
}

/* ---- writing --------------------------------------------------------------------------- */

/* Failures that concern the whole batch (the call could not be made or judged). A
 * permission refused inside a JSON-RPC answer (HTTP 200) concerns the record only. */
static int batch_failure(int rc, const struct es_err *e)
{
    if (rc == ES_EAUTH) {
        return e->http_status != 200;
    }
    return rc == ES_EIO || rc == ES_ETIMEOUT || rc == ES_ERATELIMIT || rc == ES_EPROTOCOL ||
           rc == ES_ECONFIG || rc == ES_ENOMEM || rc == ES_EINTERNAL;
}

static void set_result_err(struct es_write_result *r, const struct es_err *e)
{
    r->code = e->code ? e->code : ES_EREMOTE;
    r->err = *e;
}

/* The value of the match field for one record (borrowed, NULL when none). */
static const char *match_value(const struct es_write *w, const char *field)
{
    if (w->match) {
        return w->match;
    }
    json_t *v = field ? json_object_get(w->data, field) : NULL;
    return json_string_value(v);
}

/* Looks records up by the match field: fills ids[i] (0 when absent). */
static int find_existing(struct tr_ctx *x, const char *model, const char *field,
                         const struct es_write *in, size_t n, long long *ids, struct es_err *err)
{
    json_t *vals = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *v = match_value(&in[i], field);
        if (v) {
            json_array_append_new(vals, json_string(v));
        }
    }
    if (!json_array_size(vals)) {
        json_decref(vals);
        return ES_OK;
    }
    json_t *res = NULL;
    int rc = call(x, model, "search_read",
                  json_pack("[[[s, s, o]], i, n, n, [s]]", field, "in", vals, 0, field), NULL, &res,
                  err);
    if (rc != ES_OK) {
        return rc;
    }
    size_t j;
    json_t *r;
    json_array_foreach(res, j, r)
    {
        const char *v = json_string_value(json_object_get(r, field));
        for (size_t i = 0; v && i < n; i++) {
            const char *mv = match_value(&in[i], field);
            if (mv && !strcmp(mv, v)) {
                ids[i] = jint(r, "id");
            }
        }
    }
    json_decref(res);
    return ES_OK;
}

/* Data to send for record w: encoded, with the match field set. OUT: new reference. */
static json_t *payload(struct tr_ctx *x, const char *model, const char *field,
                       const struct es_write *w, struct es_err *err)
{
    json_t *data = encode(x, model, w->data, err);
    if (data && field && w->match && !json_object_get(data, field)) {
        json_object_set_new(data, field, json_string(w->match));
    }
    return data;
}

/* Creates the records idx[0..m) in one call; on failure one by one so only bad ones fail.
 * Returns non-OK only for a failure of the whole batch (auth, network). */
static int create_records(struct tr_ctx *x, const char *model, const char *field,
                          const struct es_write *in, const size_t *idx, size_t m,
                          struct es_write_result *res, struct es_err *err)
{
    json_t *list = json_array();
    for (size_t i = 0; i < m; i++) {
        struct es_err e = {0};
        json_t *d = payload(x, model, field, &in[idx[i]], &e);
        if (!d) {
            json_decref(list);
            return es_err_set(err, e.code ? e.code : ES_EREMOTE, "%s", e.msg);
        }
        json_array_append_new(list, d);
    }
    struct es_err e = {0};
    json_t *ids = NULL;
    int rc = call(x, model, "create", json_pack("[O]", list), NULL, &ids, &e);
    if (rc == ES_OK && json_array_size(ids) == m) {
        for (size_t i = 0; i < m; i++) {
            res[idx[i]].code = ES_OK;
            res[idx[i]].created = 1;
            res[idx[i]].target_id =
                es_xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(json_array_get(ids, i)));
        }
    } else if (rc == ES_OK) {
        rc = es_err_set(err, ES_EPROTOCOL, "tryton: create of %s answered %zu ids for %zu", model,
                        json_array_size(ids), m);
    } else if (batch_failure(rc, &e)) {
        if (err) {
            *err = e;
        }
    } else if (m == 1) {
        set_result_err(&res[idx[0]], &e);
        rc = ES_OK;
    } else {
        /* the call is one transaction: nothing was created; find the bad records */
        rc = ES_OK;
        for (size_t i = 0; i < m && rc == ES_OK; i++) {
            rc = create_records(x, model, field, in, &idx[i], 1, res, err);
        }
    }
    json_decref(ids);
    json_decref(list);
    return rc;
}

/* On an update, the one2many lists of d (encoded as [["create", rows]]) are matched to the
 * record's existing children by position: the k-th mapped child writes the k-th child the
 * record has now (in the field's order, e.g. party.address by sequence, id), children beyond
 * the existing count are created, existing ones beyond the mapped count are left as they are
 * (never deleted). The commands go into the record's own write: one transaction. many2many
 * lists to create are left out (they cannot be matched). */
static int match_children(struct tr_ctx *x, const char *model, long long id, json_t *d,
                          struct es_err *err)
{
    json_t *fields = fields_of(x, model, err);
    if (!fields) {
        return err && err->code ? err->code : ES_EREMOTE;
    }
    json_t *names = json_array();
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(d, tmp, k, v)
    {
        const char *cmd = json_string_value(json_array_get(json_array_get(v, 0), 0));
        if (!cmd || strcmp(cmd, "create") != 0) {
            continue;
        }
        const char *type = json_string_value(json_object_get(json_object_get(fields, k), "type"));
        if (type && !strcmp(type, "one2many")) {
            json_array_append_new(names, json_string(k));
        } else {
            json_object_del(d, k);
        }
    }
    if (!json_array_size(names)) {
        json_decref(names);
        return ES_OK;
    }
    json_t *cur = NULL;
    int rc = call(x, model, "read", json_pack("[[I], O]", (json_int_t)id, names), NULL, &cur, err);
    json_t *rec = json_array_get(cur, 0);
    if (rc == ES_OK && !json_is_object(rec)) {
        rc = es_err_set(err, ES_ENOTFOUND, "tryton: %s %lld not found", model, id);
    }
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
    {
        if (rc != ES_OK) {
            break;
        }
        const char *f = json_string_value(name);
        json_t *have = json_object_get(rec, f);
        json_t *rows = json_array_get(json_array_get(json_object_get(d, f), 0), 1);
        json_t *cmds = json_array();
        json_t *fresh = json_array();
        size_t r;
        json_t *row;
        json_array_foreach(rows, r, row)
        {
            json_t *hid = json_array_get(have, r);
            if (json_is_integer(hid)) {
                json_array_append_new(cmds, json_pack("[s, [O], O]", "write", hid, row));
            } else {
                json_array_append(fresh, row);
            }
        }
        if (json_array_size(fresh)) {
            json_array_append_new(cmds, json_pack("[s, O]", "create", fresh));
        }
        json_decref(fresh);
        json_object_set_new(d, f, cmds);
    }
    json_decref(cur);
    json_decref(names);
    return rc;
}

static int write_record(struct tr_ctx *x, const char *model, long long id, const char *field,
                        const struct es_write *w, struct es_write_result *res, struct es_err *err)
{
    struct es_err e = {0};
    json_t *d = payload(x, model, field, w, &e);
    int rc = d ? ES_OK : (e.code ? e.code : ES_EREMOTE);
    if (rc == ES_OK) {
        rc = match_children(x, model, id, d, &e);
    }
    if (d && rc == ES_OK && json_object_size(d)) {
        rc = call(x, model, "write", json_pack("[[I], o]", (json_int_t)id, d), NULL, NULL, &e);
    } else {
        json_decref(d);
    }
    res->target_id = es_xasprintf("%lld", id);
    if (batch_failure(rc, &e)) {
        if (err) {
            *err = e;
        }
        return rc;
    }
    if (rc != ES_OK) {
        set_result_err(res, &e);
    }
    return ES_OK;
}

/* Reads the readback fields of record id into res->readback. */
static int read_back(struct tr_ctx *x, const char *model, const struct tr_object *o, long long id,
                     struct es_write_result *res, struct es_err *err)
{
    json_t *names = json_array();
    if (o->readback) {
        for (size_t i = 0; i < o->readback->count; i++) {
            json_array_append_new(names, json_string(o->readback->items[i]->str));
        }
    }
    if (o->confirm && !json_array_size(names)) {
        json_array_append_new(names, json_string("state"));
    }
    if (!json_array_size(names)) {
        json_decref(names);
        return ES_OK;
    }
    if (!fields_of(x, model, err)) {
        json_decref(names);
        return err && err->code ? err->code : ES_EREMOTE;
    }
    json_t *r = NULL;
    int rc = call(x, model, "read", json_pack("[[I], o]", (json_int_t)id, names), NULL, &r, err);
    if (rc == ES_OK && json_array_size(r) == 1) {
        json_decref(res->readback);
        res->readback = plain_record(x, model, json_array_get(r, 0));
    }
    json_decref(r);
    return rc;
}

/* quote + confirm a sale-like record, then read its state back. */
static int confirm_record(struct tr_ctx *x, const char *model, const struct tr_object *o,
                          long long id, struct es_write_result *res, struct es_err *err)
{
    struct es_err e = {0};
    int rc = read_back(x, model, o, id, res, &e);
    const char *state = json_string_value(json_object_get(res->readback, "state"));
    if (rc == ES_OK && state && !strcmp(state, "draft")) {
        rc = call(x, model, "quote", json_pack("[[I]]", (json_int_t)id), NULL, NULL, &e);
    }
    if (rc == ES_OK && state && (!strcmp(state, "draft") || !strcmp(state, "quotation"))) {
        rc = call(x, model, "confirm", json_pack("[[I]]", (json_int_t)id), NULL, NULL, &e);
    }
    if (rc == ES_OK) {
        rc = read_back(x, model, o, id, res, &e);
    }
    if (batch_failure(rc, &e)) {
        if (err) {
            *err = e;
        }
        return rc;
    }
    if (rc != ES_OK) {
        set_result_err(res, &e);
        if (res->code == ES_EREJECTED) {
            es_err_hint(&res->err, "Tryton refused the confirmation; the record stays in "
                                   "Tryton unconfirmed and a retry confirms it again");
        }
        (void)read_back(x, model, o, id, res, &e);
        return ES_OK;
    }
    state = json_string_value(json_object_get(res->readback, "state"));
    if (!state ||
        (strcmp(state, "confirmed") && strcmp(state, "processing") && strcmp(state, "done"))) {
        res->code = es_err_set(&res->err, ES_EREJECTED,
                               "tryton: %s %lld stayed in state '%s' after confirm", model, id,
                               state ? state : "?");
    }
    return ES_OK;
}

static int write_batch(struct es_conn *c, const char *model, enum es_write_op op,
                       const char *external_id, const struct es_write *in, size_t n,
                       struct es_write_result *res, struct es_err *err)
{
    struct tr_ctx *x = c->ctx;
    const struct tr_object *o = object_of(x, model);
    const char *field = external_id ? external_id : o->match;
    long long *ids = es_xcalloc(n ? n : 1, sizeof *ids);
    size_t *todo = es_xcalloc(n ? n : 1, sizeof *todo);
    size_t ntodo = 0;
    int rc = ES_OK;
    for (size_t i = 0; i < n; i++) {
        if (in[i].target_id) {
            ids[i] = strtoll(in[i].target_id, NULL, 10);
        }
        if (!in[i].data && op != ES_WRITE_DELETE) {
            res[i].code = es_err_set(&res[i].err, ES_EVALIDATION, "tryton: no data to write");
        }
    }
    if (op != ES_WRITE_DELETE && field) {
        /* idempotency: what a timed-out earlier attempt created is found here */
        long long *found = es_xcalloc(n ? n : 1, sizeof *found);
        rc = find_existing(x, model, field, in, n, found, err);
        for (size_t i = 0; i < n; i++) {
            if (!ids[i]) {
                ids[i] = found[i];
            }
        }
        es_free(found);
    }
    for (size_t i = 0; rc == ES_OK && i < n; i++) {
        if (res[i].code != ES_OK) {
            continue;
        }
        if (op == ES_WRITE_DELETE) {
            struct es_err e = {0};
            if (!ids[i]) {
                res[i].code = es_err_set(&res[i].err, ES_ENOTFOUND, "tryton: no id to delete");
                continue;
            }
            rc = call(x, model, "delete", json_pack("[[I]]", (json_int_t)ids[i]), NULL, NULL, &e);
            if (rc == ES_OK) {
                res[i].target_id = es_xasprintf("%lld", ids[i]);
            } else if (!batch_failure(rc, &e)) {
                set_result_err(&res[i], &e);
                rc = ES_OK;
            } else if (err) {
                *err = e;
            }
        } else if (ids[i] && (op == ES_WRITE_CREATE || o->confirm)) {
            /* already there (idempotent create); a quoted sale is not edited, only confirmed */
            res[i].target_id = es_xasprintf("%lld", ids[i]);
        } else if (ids[i]) {
            rc = write_record(x, model, ids[i], field, &in[i], &res[i], err);
        } else if (op == ES_WRITE_UPDATE) {
            res[i].code =
                es_err_set(&res[i].err, ES_ENOTFOUND, "tryton: %s record not found", model);
        } else {
            todo[ntodo++] = i;
        }
    }
    if (rc == ES_OK && ntodo) {
        rc = create_records(x, model, field, in, todo, ntodo, res, err);
    }
    for (size_t i = 0; rc == ES_OK && i < n; i++) {
        if (res[i].code != ES_OK || !res[i].target_id || op == ES_WRITE_DELETE) {
            continue;
        }
        long long id = strtoll(res[i].target_id, NULL, 10);
        if (o->confirm) {
            rc = confirm_record(x, model, o, id, &res[i], err);
        } else if (o->readback) {
            struct es_err e = {0};
            if (read_back(x, model, o, id, &res[i], &e) != ES_OK) {
                set_result_err(&res[i], &e);
            }
        }
    }
    if (rc != ES_OK) {
        for (size_t i = 0; i < n; i++) {
            es_free(res[i].target_id);
            res[i].target_id = NULL;
            json_decref(res[i].readback);
            res[i].readback = NULL;
            res[i].created = 0;
            res[i].code = rc;
            if (err) {
                res[i].err = *err;
            }
        }
    }
    es_free(ids);
    es_free(todo);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static int init(struct es_conn *c, struct es_err *err)
{
    struct tr_ctx *x = c->ctx;
    const struct es_system_cfg *cfg = c->cfg;
    x->fields = json_object();
    x->known = json_object();
    int rc = parse_options(x, cfg->options, err);
    if (rc != ES_OK) {
        return rc;
    }
    if (!cfg->url) {
        return es_err_set(err, ES_ECONFIG, "tryton: 'url' is required");
    }
    if (!cfg->database) {
        return es_err_set(err, ES_ECONFIG, "tryton: 'database' is required");
    }
    x->path = es_xasprintf("/%s/", cfg->database);
    x->login = es_config_secret(cfg->auth.login_env);
    x->password = es_config_secret(cfg->auth.password_env);
    if (!x->login || !x->password) {
        return es_err_set(err, ES_ECONFIG,
                          "tryton: auth.login_env and auth.password_env must name set variables");
    }
    rc = es_http_new(cfg, &x->http, err);
    if (rc == ES_OK) {
        es_http_set_name(x->http, cfg->name);
    }
    return rc;
}

static void fini(struct es_conn *c)
{
    struct tr_ctx *x = c->ctx;
    es_http_free(x->http);
    es_free(x->path);
    es_free(x->auth);
    es_free(x->objects);
    es_free(x->warehouses);
    json_decref(x->fields);
    json_decref(x->known);
}

static const struct es_connector_ops tryton_ops = {
    .init = init,
    .fini = fini,
    .ping = ping,
    .describe = describe,
    .read_changes = read_changes,
    .read_page = read_page,
    .get = get,
    .write_batch = write_batch,
};

const struct es_connector es_connector_tryton = {
    .abi = ES_CONNECTOR_ABI,
    .name = "tryton",
    .flags = ES_CONN_SOURCE | ES_CONN_SINK,
    .ctx_size = sizeof(struct tr_ctx),
    .doc = "Tryton 6.x over JSON-RPC: parties, products, sales, invoices, stock",
    .ops = &tryton_ops,
};
