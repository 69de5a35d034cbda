/* SPDX-License-Identifier: MIT */
/*
 * The salesforce connector: Salesforce REST API (v42+) through the shared HTTP client.
 *
 *  - describe: /sobjects (global) and /sobjects/{Obj}/describe, reduced to connector.h's shape.
 *  - read_changes: SOQL on (SystemModstamp, Id) through /queryAll (soft deletes arrive as
 *    IsDeleted = true records), following every nextRecordsUrl; an overlap window re-reads the
 *    last seconds once caught up, so records committed late are not lost.
 *  - read_page: keyset pages (Id > last ORDER BY Id), no query locator to expire.
 *  - write_batch: sObject Collections of up to 200 records, allOrNone false, per-record results;
 *    upserts by external id; Bulk API 2.0 ingest above options.bulk_threshold records.
 *  - parse_webhook: Outbound Messages (SOAP, answered with the Ack) and CDC-shaped JSON events.
 *  - Sforce-Limit-Info feeds c->api_used / c->api_max after every call.
 *
 * Options (systems.<name>.options): bulk_threshold, query_batch_size, overlap,
 * include_deleted, bulk_timeout, bulk_poll (see docs/connectors.md).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "connectors/connector.h"
#include "connectors/http.h"
#include "connectors/http_xml.h"
#include "connectors/salesforce.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#define SF_COLLECTION_MAX 200

/* ---- pure parts (salesforce.h) ------------------------------------------------------ */

enum es_code es_sf_classify(const char *code)
{
    if (!code || !*code) {
        return ES_EREJECTED;
    }
    static const struct {
        const char *name;
        enum es_code code;
    } exact[] = {
        {"DUPLICATES_DETECTED", ES_EDUPLICATE},
        {"DUPLICATE_VALUE", ES_EDUPLICATE},
        {"DUPLICATE_EXTERNAL_ID", ES_ECONFLICT},
        {"INVALID_SESSION_ID", ES_EAUTH},
        {"INVALID_AUTH_HEADER", ES_EAUTH},
        {"UNABLE_TO_LOCK_ROW", ES_EREMOTE},
        {"SERVER_UNAVAILABLE", ES_EREMOTE},
        {"ALL_OR_NONE_OPERATION_ROLLED_BACK", ES_EREMOTE},
        {"REQUEST_LIMIT_EXCEEDED", ES_ERATELIMIT},
        {"TOO_MANY_REQUESTS", ES_ERATELIMIT},
        {"API_CURRENTLY_DISABLED", ES_EAUTH},
        {"NOT_FOUND", ES_ENOTFOUND},
        {"ENTITY_IS_DELETED", ES_ENOTFOUND},
        {"REQUIRED_FIELD_MISSING", ES_EVALIDATION},
        {"STRING_TOO_LONG", ES_EVALIDATION},
        {"FIELD_CUSTOM_VALIDATION_EXCEPTION", ES_EVALIDATION},
        {"FIELD_INTEGRITY_EXCEPTION", ES_EVALIDATION},
        {"JSON_PARSER_ERROR", ES_EVALIDATION},
        {"NUMBER_OUTSIDE_VALID_RANGE", ES_EVALIDATION},
        {"MALFORMED_ID", ES_EVALIDATION},
        {"MALFORMED_QUERY", ES_EVALIDATION},
        {"STANDARD_PRICE_NOT_DEFINED", ES_EVALIDATION},
        {"CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", ES_EREJECTED},
        {"INSUFFICIENT_ACCESS_OR_READONLY", ES_EREJECTED},
        {"PROCESSING_HALTED", ES_EREMOTE},
    };
    for (size_t i = 0; i < ES_ARRAY_LEN(exact); i++) {
        if (strcmp(code, exact[i].name) == 0) {
            return exact[i].code;
        }
    }
    if (strncmp(code, "INVALID_", 8) == 0 || strncmp(code, "MALFORMED_", 10) == 0) {
        return ES_EVALIDATION;
    }
    if (strncmp(code, "INSUFFICIENT_ACCESS", 19) == 0) {
        return ES_EREJECTED;
    }
    return ES_EREJECTED; /* an unknown refusal goes to review, where a person reads it */
}

int es_sf_parse_ts(const char *s, int64_t *ms)
{
    if (!s) {
        return ES_EINVAL;
    }
    int y, mo, d, h, mi, sec;
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19) {
        return ES_EINVAL;
    }
    const char *p = s + 19;
    int frac = 0;
    if (*p == '.') {
        int digits = 0;
        p++;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3) {
                frac = frac * 10 + (*p - '0');
            }
            digits++;
            p++;
        }
        if (digits == 0) {
            return ES_EINVAL;
        }
        for (; digits < 3; digits++) {
            frac *= 10;
        }
    }
    long off_min = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om;
        if (isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) && p[3] == ':' &&
            sscanf(p + 1, "%2d:%2d", &oh, &om) == 2) {
            p += 6;
        } else if (sscanf(p + 1, "%2d%2d", &oh, &om) == 2 && isdigit((unsigned char)p[4])) {
            p += 5;
        } else {
            return ES_EINVAL;
        }
        off_min = sign * (oh * 60 + om);
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return ES_EINVAL;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    int64_t t = (int64_t)timegm(&tm);
    *ms = (t - (int64_t)off_min * 60) * 1000 + frac;
    return ES_OK;
}

static int valid_id(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        if (!isalnum((unsigned char)id[n])) {
            return 0;
        }
    }
    return n <= 18;
}

int es_sf_watermark_parse(const char *wm, int64_t *ts, char *id, size_t cap)
{
    *ts = -1;
    id[0] = '\0';
    if (!wm || !*wm) {
        return ES_OK;
    }
    const char *bar = strchr(wm, '|');
    if (!bar || (size_t)(bar - wm) >= 40) {
        return ES_EINVAL;
    }
    char tsbuf[40];
    memcpy(tsbuf, wm, (size_t)(bar - wm));
    tsbuf[bar - wm] = '\0';
    if (es_sf_parse_ts(tsbuf, ts) != ES_OK || !valid_id(bar + 1) || strlen(bar + 1) >= cap) {
        *ts = -1;
        return ES_EINVAL;
    }
    es_strlcpy(id, bar + 1, cap);
    return ES_OK;
}

static int valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 80) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_') {
            return 0;
        }
    }
    return 1;
}

int es_sf_soql_changes(struct es_buf *b, const char *fields, const char *object, int64_t ts,
                       const char *id, size_t limit, struct es_err *err)
{
    if (!valid_name(object)) {
        return es_err_set(err, ES_EINVAL, "'%s' is not a Salesforce object name",
                          object ? object : "");
    }
    if (id && !valid_id(id)) {
        return es_err_set(err, ES_EINVAL, "watermark id is not a Salesforce id");
    }
    (void)es_buf_printf(b, "SELECT %s FROM %s", fields, object);
    if (ts >= 0) {
        char iso[40];
        es_clock_iso8601(ts, iso, sizeof iso);
        if (id && *id) {
            (void)es_buf_printf(b,
                                " WHERE SystemModstamp > %s OR (SystemModstamp = %s AND Id > '%s')",
                                iso, iso, id);
        } else {
            (void)es_buf_printf(b, " WHERE SystemModstamp >= %s", iso);
        }
    }
    (void)es_buf_printf(b, " ORDER BY SystemModstamp, Id");
    if (limit) {
        (void)es_buf_printf(b, " LIMIT %zu", limit);
    }
    return ES_OK;
}

int es_sf_limit_info(const char *hdr, long *used, long *max)
{
    const char *p = hdr;
    while (p && (p = strstr(p, "api-usage=")) != NULL) {
        if (p == hdr || p[-1] == ' ' || p[-1] == ';' || p[-1] == ',') {
            break; /* not the tail of per-app-api-usage */
        }
        p += 10;
    }
    if (!p) {
        return 0;
    }
    long u, m;
    if (sscanf(p + 10, "%ld/%ld", &u, &m) != 2) {
        return 0;
    }
    *used = u;
    *max = m;
    return 1;
}

/* ---- calls -------------------------------------------------------------------------- */

/* Reads the remote code and message of a Salesforce error body. */
static void sf_error_hook(void *ud, const struct es_http_resp *resp, struct es_http_remote *out)
{
    (void)ud;
    json_error_t je;
    json_t *j = resp->body.len ? json_loadb(resp->body.data, resp->body.len, 0, &je) : NULL;
    if (!j) {
        return;
    }
    json_t *first = json_is_array(j) ? json_array_get(j, 0) : j;
    const char *code = json_string_value(json_object_get(first, "errorCode"));
    if (!code) {
        code = json_string_value(json_object_get(first, "statusCode"));
    }
    if (!code) {
        code = json_string_value(json_object_get(first, "error"));
    }
    const char *msg = json_string_value(json_object_get(first, "message"));
    if (!msg) {
        msg = json_string_value(json_object_get(first, "error_description"));
    }
    if (code) {
        es_strlcpy(out->code_text, code, sizeof out->code_text);
        if (resp->status == 401 || resp->status == 403 || resp->status == 400 ||
            resp->status == 404 || resp->status == 409) {
            out->code = es_sf_classify(code);
        }
    }
    if (msg) {
        es_strlcpy(out->msg, msg, sizeof out->msg);
    }
    json_decref(j);
}

static void note_limits(struct es_conn *c, const struct es_http_resp *resp)
{
    long used, max;
    if (es_sf_limit_info(es_http_resp_header(resp, "sforce-limit-info"), &used, &max)) {
        c->api_used = used;
        c->api_max = max;
    }
}

/* One JSON call. body may be NULL. OUT: *out (NULL for 204), json_decref(). */
static int sf_call(struct es_sf_ctx *ctx, const char *method, const char *url, json_t *body,
                   const char *const *headers, json_t **out, long *status, struct es_err *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct es_http_req_opts rq = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = text,
        .body_len = text ? strlen(text) : 0,
    };
    struct es_http_resp resp;
    es_http_resp_init(&resp, ctx->http);
    json_t *j = NULL;
    int rc = es_http_json(ctx->http, &rq, &resp, &j, err);
    note_limits(ctx->c, &resp);
    if (status) {
        *status = resp.status;
    }
    es_http_resp_release(&resp);
    free(text); /* checksrc: ok (jansson allocates with malloc) */
    if (out) {
        *out = j;
    } else {
        json_decref(j);
    }
    return rc;
}

int es__sf_call(struct es_conn *c, const char *method, const char *url, json_t *body,
                const char *const *headers, json_t **out, long *status, struct es_err *err)
{
    return sf_call(c->ctx, method, url, body, headers, out, status, err);
}

static char *data_url(struct es_sf_ctx *ctx, const char *rest)
{
    return es_xasprintf("/services/data/v%s%s", ctx->ver, rest);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static const char *const sf_options[] = {
    "bulk_threshold", "query_batch_size", "overlap", "include_deleted",
    "bulk_timeout",   "bulk_poll",        NULL};

static int sf_init(struct es_conn *c, struct es_err *err)
{
    struct es_sf_ctx *ctx = c->ctx;
    ctx->c = c;
    const struct es_node *o = c->cfg->options;
    ctx->bulk_threshold = 2000;
    ctx->query_batch = 2000;
    ctx->overlap_ms = 5000;
    ctx->include_deleted = 1;
    ctx->bulk_timeout_ms = 600000;
    ctx->bulk_poll_ms = 1000;
    int rc = es_http_options_check(o, sf_options, "salesforce", err);
    if (rc == ES_OK) {
        rc = es_http_opt_int(o, "bulk_threshold", 0, 100000000, &ctx->bulk_threshold, err);
    }
    if (rc == ES_OK) {
        rc = es_http_opt_int(o, "query_batch_size", 200, 2000, &ctx->query_batch, err);
    }
    if (rc == ES_OK) {
        rc = es_http_opt_duration(o, "overlap", &ctx->overlap_ms, err);
    }
    if (rc == ES_OK) {
        rc = es_http_opt_bool(o, "include_deleted", &ctx->include_deleted, err);
    }
    if (rc == ES_OK) {
        rc = es_http_opt_duration(o, "bulk_timeout", &ctx->bulk_timeout_ms, err);
    }
    if (rc == ES_OK) {
        rc = es_http_opt_duration(o, "bulk_poll", &ctx->bulk_poll_ms, err);
    }
    if (rc != ES_OK) {
        return rc;
    }
    const char *v = c->cfg->api_version ? c->cfg->api_version : "60.0";
    if (v[0] == 'v') {
        v++;
    }
    if (strlen(v) >= sizeof ctx->ver || strtod(v, NULL) < 46.0) {
        return es_err_set(err, ES_ECONFIG,
                          "system '%s': api_version '%s' is not supported (46.0 or newer)",
                          c->cfg->name, v);
    }
    es_strlcpy(ctx->ver, v, sizeof ctx->ver);
    rc = es_http_new(c->cfg, &ctx->http, err);
    if (rc != ES_OK) {
        return rc;
    }
    es_http_set_error_hook(ctx->http, sf_error_hook, ctx);
    ctx->describes = json_object();
    return ES_OK;
}

static void sf_fini(struct es_conn *c)
{
    struct es_sf_ctx *ctx = c->ctx;
    if (!ctx) {
        return;
    }
    es_http_free(ctx->http);
    json_decref(ctx->describes);
}

static int sf_ping(struct es_conn *c, struct es_err *err)
{
    struct es_sf_ctx *ctx = c->ctx;
    char *url = data_url(ctx, "/limits");
    json_t *j = NULL;
    int rc = sf_call(ctx, "GET", url, NULL, NULL, &j, NULL, err);
    es_free(url);
    if (rc == ES_OK) {
        json_t *d = json_object_get(j, "DailyApiRequests");
        json_t *mx = json_object_get(d, "Max");
        json_t *rem = json_object_get(d, "Remaining");
        if (json_is_integer(mx) && json_is_integer(rem)) {
            c->api_max = (long)json_integer_value(mx);
            c->api_used = c->api_max - (long)json_integer_value(rem);
        }
    }
    json_decref(j);
    return rc;
}

/* ---- describe ----------------------------------------------------------------------- */

/* The raw describe answer of object (cached). Borrowed reference. */
static int raw_describe(struct es_sf_ctx *ctx, const char *object, json_t **out, struct es_err *err)
{
    *out = json_object_get(ctx->describes, object);
    if (*out) {
        return ES_OK;
    }
    if (!valid_name(object)) {
        return es_err_set(err, ES_EINVAL, "'%s' is not a Salesforce object name", object);
    }
    char *rest = es_xasprintf("/sobjects/%s/describe", object);
    char *url = data_url(ctx, rest);
    es_free(rest);
    json_t *j = NULL;
    int rc = sf_call(ctx, "GET", url, NULL, NULL, &j, NULL, err);
    es_free(url);
    if (rc != ES_OK) {
        json_decref(j);
        return rc;
    }
    if (!json_is_array(json_object_get(j, "fields"))) {
        json_decref(j);
        return es_err_set(err, ES_EPROTOCOL, "describe of %s has no fields list", object);
    }
    json_object_set_new(ctx->describes, object, j);
    *out = j;
    return ES_OK;
}

static int sf_describe(struct es_conn *c, const char *object, json_t **out, struct es_err *err)
{
    struct es_sf_ctx *ctx = c->ctx;
    if (!object) {
        char *url = data_url(ctx, "/sobjects");
        json_t *j = NULL;
        int rc = sf_call(ctx, "GET", url, NULL, NULL, &j, NULL, err);
        es_free(url);
        if (rc != ES_OK) {
            json_decref(j);
            return rc;
        }
        json_t *names = json_array();
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(j, "sobjects"), i, o)
        {
            const char *n = json_string_value(json_object_get(o, "name"));
            if (n) {
                json_array_append_new(names, json_string(n));
            }
        }
        json_decref(j);
        *out = json_pack("{s:o}", "objects", names);
        return ES_OK;
    }
    json_t *d = NULL;
    int rc = raw_describe(ctx, object, &d, err);
    if (rc != ES_OK) {
        return rc;
    }
    json_t *fields = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(d, "fields"), i, f)
    {
        int nillable = json_is_true(json_object_get(f, "nillable"));
        int createable = json_is_true(json_object_get(f, "createable"));
        int defaulted = json_is_true(json_object_get(f, "defaultedOnCreate"));
        json_t *pl = json_array();
        size_t k;
        json_t *pv;
        json_array_foreach(json_object_get(f, "picklistValues"), k, pv)
        {
            json_t *act = json_object_get(pv, "active");
            const char *val = json_string_value(json_object_get(pv, "value"));
            if (val && (!act || json_is_true(act))) {
                json_array_append_new(pl, json_string(val));
            }
        }
        json_t *len = json_object_get(f, "length");
        json_t *o = json_pack(
            "{s:O, s:O, s:I, s:b, s:b, s:b, s:b, s:b, s:o}", "name", json_object_get(f, "name"),
            "type", json_object_get(f, "type") ? json_object_get(f, "type") : json_null(), "length",
            (json_int_t)(json_is_integer(len) ? json_integer_value(len) : 0), "required",
            !nillable && createable && !defaulted, "nillable", nillable, "createable", createable,
            "updateable", json_is_true(json_object_get(f, "updateable")), "external_id",
            json_is_true(json_object_get(f, "externalId")), "picklist", pl);
        if (o) {
            json_array_append_new(fields, o);
        }
    }
    *out = json_pack("{s:s, s:o}", "name", object, "fields", fields);
    return ES_OK;
}

/* Builds the SELECT list of object: every field except compound ones. */
static int select_list(struct es_sf_ctx *ctx, const char *object, struct es_buf *b,
                       int *has_deleted, struct es_err *err)
{
    json_t *d = NULL;
    int rc = raw_describe(ctx, object, &d, err);
    if (rc != ES_OK) {
        return rc;
    }
    *has_deleted = 0;
    int has_modstamp = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(d, "fields"), i, f)
    {
        const char *n = json_string_value(json_object_get(f, "name"));
        const char *t = json_string_value(json_object_get(f, "type"));
        if (!n || !valid_name(n) ||
            (t && (strcmp(t, "address") == 0 || strcmp(t, "location") == 0 ||
                   strcmp(t, "base64") == 0))) {
            continue;
        }
        if (strcmp(n, "IsDeleted") == 0) {
            *has_deleted = 1;
        }
        if (strcmp(n, "SystemModstamp") == 0) {
            has_modstamp = 1;
        }
        (void)es_buf_printf(b, "%s%s", b->len ? "," : "", n);
    }
    if (!has_modstamp) {
        return es_err_set(err, ES_EVALIDATION,
                          "%s has no SystemModstamp field: changes cannot be polled", object);
    }
    return ES_OK;
}

/* ---- reading ------------------------------------------------------------------------ */

/* Runs a query (query or queryAll) and appends records to out, following nextRecordsUrl.
 * Records the last (modstamp, id) seen. */
static int run_query(struct es_sf_ctx *ctx, const char *resource, const char *soql,
                     struct es_batch *out, int64_t *last_ts, char *last_id, size_t id_cap,
                     struct es_err *err)
{
    struct es_buf q;
    es_buf_init(&q, 0);
    (void)es_buf_printf(&q, "/services/data/v%s/%s?q=", ctx->ver, resource);
    (void)es_http_escape(&q, soql);
    char *url = es_buf_detach(&q, NULL);
    char opt[64];
    snprintf(opt, sizeof opt, "Sforce-Query-Options: batchSize=%lld", ctx->query_batch);
    const char *const hdrs[] = {opt, NULL};
    int rc = ES_OK;
    int pages = 0;
    while (url) {
        json_t *j = NULL;
        rc = sf_call(ctx, "GET", url, NULL, hdrs, &j, NULL, err);
        es_free(url);
        url = NULL;
        if (rc != ES_OK) {
            json_decref(j);
            break;
        }
        json_t *recs = json_object_get(j, "records");
        if (!json_is_array(recs)) {
            json_decref(j);
            rc = es_err_set(err, ES_EPROTOCOL, "query answer has no records array (page %d)",
                            pages + 1);
            break;
        }
        size_t i;
        json_t *r;
        json_array_foreach(recs, i, r)
        {
            const char *id = json_string_value(json_object_get(r, "Id"));
            const char *ms = json_string_value(json_object_get(r, "SystemModstamp"));
            int64_t ts = -1;
            if (!id || (ms && es_sf_parse_ts(ms, &ts) != ES_OK)) {
                json_decref(j);
                return es_err_set(err, ES_EPROTOCOL,
                                  "query record without Id or with a bad SystemModstamp");
            }
            char ver[40] = "";
            if (ts >= 0) {
                es_clock_iso8601(ts, ver, sizeof ver);
                *last_ts = ts;
            }
            es_strlcpy(last_id, id, id_cap);
            int deleted = json_is_true(json_object_get(r, "IsDeleted"));
            /* the page is dropped after this loop: take the record, no copy */
            json_t *data = json_incref(r);
            json_object_del(data, "attributes");
            es_batch_add(out, id, ver, deleted, data);
        }
        pages++;
        json_t *done = json_object_get(j, "done");
        const char *next = json_string_value(json_object_get(j, "nextRecordsUrl"));
        if (json_is_false(done)) {
            if (!next) {
                json_decref(j);
                rc = es_err_set(err, ES_EPROTOCOL,
                                "query answer says done:false without nextRecordsUrl");
                break;
            }
            url = es_xstrdup(next);
        }
        json_decref(j);
    }
    return rc;
}

static int sf_read_changes(struct es_conn *c, const char *object, const char *watermark,
                           size_t limit, struct es_batch *out, struct es_err *err)
{
    struct es_sf_ctx *ctx = c->ctx;
    int64_t ts;
    char id[24];
    if (es_sf_watermark_parse(watermark, &ts, id, sizeof id) != ES_OK) {
        return es_err_set(err, ES_EINVAL, "watermark '%.60s' is not 'modstamp|id'", watermark);
    }
    struct es_buf fields, soql;
    es_buf_init(&fields, 0);
    es_buf_init(&soql, 0);
    int has_deleted = 0;
    int rc = select_list(ctx, object, &fields, &has_deleted, err);
    if (rc == ES_OK) {
        rc = es_sf_soql_changes(&soql, fields.data, object, ts, id, limit ? limit : 2000, err);
    }
    int64_t last_ts = ts;
    char last_id[24];
    es_strlcpy(last_id, id, sizeof last_id);
    size_t before = out->count;
    if (rc == ES_OK) {
        rc = run_query(ctx, ctx->include_deleted && has_deleted ? "queryAll" : "query", soql.data,
                       out, &last_ts, last_id, sizeof last_id, err);
    }
    es_buf_release(&fields);
    es_buf_release(&soql);
    if (rc != ES_OK) {
        return rc;
    }
    size_t got = out->count - before;
    char iso[40];
    es_free(out->watermark);
    if (got == 0) {
        out->watermark = es_xstrdup(watermark ? watermark : "");
    } else if (got < (limit ? limit : 2000) && ctx->overlap_ms > 0) {
        /* Caught up: step back by the overlap so a record committed late with an earlier
         * SystemModstamp is read on the next poll (its version dedups the re-reads). */
        es_clock_iso8601(last_ts - ctx->overlap_ms, iso, sizeof iso);
        out->watermark = es_xasprintf("%s|", iso);
    } else {
        es_clock_iso8601(last_ts, iso, sizeof iso);
        out->watermark = es_xasprintf("%s|%s", iso, last_id);
    }
    return ES_OK;
}

static int sf_read_page(struct es_conn *c, const char *object, const char *page, size_t limit,
                        struct es_batch *out, struct es_err *err)
{
    struct es_sf_ctx *ctx = c->ctx;
    if (page && *page && !valid_id(page)) {
        return es_err_set(err, ES_EINVAL, "page token is not a Salesforce id");
    }
    if (!limit) {
        limit = 2000;
    }
    struct es_buf fields, soql;
    es_buf_init(&fields, 0);
    es_buf_init(&soql, 0);
    int has_deleted = 0;
    int rc = select_list(ctx, object, &fields, &has_deleted, err);
    if (rc == ES_OK) {
        (void)es_buf_printf(&soql, "SELECT %s FROM %s", fields.data, object);
        if (page && *page) {
            (void)es_buf_printf(&soql, " WHERE Id > '%s'", page);
        }
        (void)es_buf_printf(&soql, " ORDER BY Id LIMIT %zu", limit);
    }
    int64_t ts = -1;
    char last_id[24] = "";
    size_t before = out->count;
    if (rc == ES_OK) {
        rc = run_query(ctx, "query", soql.data, out, &ts, last_id, sizeof last_id, err);
    }
    es_buf_release(&fields);
    es_buf_release(&soql);
    if (rc != ES_OK) {
        return rc;
    }
    es_free(out->next_page);
    out->next_page = (out->count - before) >= limit ? es_xstrdup(last_id) : NULL;
    return ES_OK;
}

static int sf_get(struct es_conn *c, const char *object, const char *id, json_t **out,
                  struct es_err *err)
{
    struct es_sf_ctx *ctx = c->ctx;
    if (!valid_name(object) || !id || !valid_id(id)) {
        return es_err_set(err, ES_EINVAL, "bad object or id");
    }
    char *rest = es_xasprintf("/sobjects/%s/%s", object, id);
    char *url = data_url(ctx, rest);
    es_free(rest);
    json_t *j = NULL;
    int rc = sf_call(ctx, "GET", url, NULL, NULL, &j, NULL, err);
    es_free(url);
    if (rc != ES_OK) {
        json_decref(j);
        return rc;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return es_err_set(err, ES_EPROTOCOL, "record answer is not an object");
    }
    json_object_del(j, "attributes");
    *out = j;
    return ES_OK;
}

/* ---- writing ------------------------------------------------------------------------ */

static void fail_all(struct es_write_result *res, const size_t *idx, size_t n,
                     const struct es_err *err)
{
    for (size_t i = 0; i < n; i++) {
        struct es_write_result *r = &res[idx ? idx[i] : i];
        if (r->code == ES_OK && !r->target_id) {
            r->code = err->code;
            r->err = *err;
        }
    }
}

/* Fills one result from a collection result element. */
static void take_result(struct es_write_result *r, json_t *e, const char *object, const char *op,
                        int created_default)
{
    if (json_is_true(json_object_get(e, "success"))) {
        const char *id = json_string_value(json_object_get(e, "id"));
        r->code = ES_OK;
        es_free(r->target_id);
        r->target_id = id ? es_xstrdup(id) : NULL;
        json_t *cr = json_object_get(e, "created");
        r->created = cr ? json_is_true(cr) : created_default;
        return;
    }
    json_t *e0 = json_array_get(json_object_get(e, "errors"), 0);
    const char *code = json_string_value(json_object_get(e0, "statusCode"));
    if (!code) {
        code = json_string_value(json_object_get(e0, "errorCode"));
    }
    const char *msg = json_string_value(json_object_get(e0, "message"));
    struct es_buf fl;
    es_buf_init(&fl, 512);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(e0, "fields"), i, f)
    {
        if (json_is_string(f)) {
            (void)es_buf_printf(&fl, "%s%s", fl.len ? "," : "", json_string_value(f));
        }
    }
    r->code = es_sf_classify(code);
    es_err_set(&r->err, r->code, "salesforce %s of %s refused: %s%s%s%s", op, object,
               code ? code : "unknown error", fl.len ? " (fields " : "", fl.len ? fl.data : "",
               fl.len ? ")" : "");
    es_err_remote(&r->err, 200, code, msg ? msg : "");
    if (r->code == ES_EDUPLICATE) {
        es_err_hint(&r->err, "a Salesforce duplicate rule matched; link or merge the records");
    }
    es_buf_release(&fl);
}

/* Copies the failure e into err (the caller's, may be NULL). */
static void pass_err(struct es_err *err, const struct es_err *e)
{
    es_err_set(err, e->code, "%s", e->msg);
    if (err) {
        es_err_remote(err, e->http_status, e->remote_code, e->remote_msg);
        err->retry_after = e->retry_after;
    }
}

/* The fields of object that Salesforce takes on create only (describe: createable true,
 * updateable false, e.g. PricebookEntry.Product2Id), as a JSON array kept with the cached
 * describe. Borrowed reference. */
static int create_only_fields(struct es_sf_ctx *ctx, const char *object, json_t **out,
                              struct es_err *err)
{
    json_t *d = NULL;
    int rc = raw_describe(ctx, object, &d, err);
    if (rc != ES_OK) {
        return rc;
    }
    json_t *co = json_object_get(d, "_es_create_only");
    if (!co) {
        co = json_array();
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(d, "fields"), i, f)
        {
            json_t *n = json_object_get(f, "name");
            if (json_is_string(n) && json_is_true(json_object_get(f, "createable")) &&
                json_is_false(json_object_get(f, "updateable"))) {
                json_array_append(co, n);
            }
        }
        json_object_set_new(d, "_es_create_only", co);
    }
    *out = co;
    return ES_OK;
}

static int has_any(json_t *rec, json_t *names)
{
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        if (json_object_get(rec, json_string_value(n))) {
            return 1;
        }
    }
    return 0;
}

static void drop_fields(json_t *rec, json_t *names)
{
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        json_object_del(rec, json_string_value(n));
    }
}

/* The external-id value a record is upserted with (match, else its data), or NULL. */
static const char *ext_value(const struct es_write *w, const char *ext)
{
    return w->match ? w->match : json_string_value(json_object_get(w->data, ext));
}

/* Upsert by external id of records carrying create-only fields and no known target id: one
 * SOQL query finds which of them exist already (those take Salesforce's update branch),
 * flagging them in exists[]. A failed lookup fails the records (the call's failure). */
static int find_existing(struct es_sf_ctx *ctx, const char *object, const char *ext,
                         const struct es_write *in, const size_t *idx, size_t n,
                         const unsigned char *ask, unsigned char *exists, struct es_err *err)
{
    struct es_buf q;
    es_buf_init(&q, 0);
    (void)es_buf_printf(&q, "SELECT Id, %s FROM %s WHERE %s IN (", ext, object, ext);
    size_t nq = 0;
    for (size_t k = 0; k < n; k++) {
        const char *v = ask[k] ? ext_value(&in[idx[k]], ext) : NULL;
        if (!v) {
            continue;
        }
        (void)es_buf_printf(&q, "%s'", nq++ ? "," : "");
        for (const char *p = v; *p; p++) {
            if (*p == '\\' || *p == '\'') {
                (void)es_buf_append(&q, "\\", 1);
            }
            (void)es_buf_append(&q, p, 1);
        }
        (void)es_buf_append(&q, "'", 1);
    }
    (void)es_buf_printf(&q, ")");
    int rc = ES_OK;
    if (nq) {
        struct es_buf u;
        es_buf_init(&u, 0);
        (void)es_buf_printf(&u, "/services/data/v%s/query?q=", ctx->ver);
        (void)es_http_escape(&u, q.data);
        json_t *j = NULL;
        rc = sf_call(ctx, "GET", u.data, NULL, NULL, &j, NULL, err);
        es_buf_release(&u);
        json_t *recs = json_object_get(j, "records");
        if (rc == ES_OK && (!json_is_array(recs) || json_is_false(json_object_get(j, "done")))) {
            rc = es_err_set(err, ES_EPROTOCOL, "lookup of %s by %s: unexpected query answer",
                            object, ext);
        }
        for (size_t k = 0; k < n && rc == ES_OK; k++) {
            const char *v = ask[k] ? ext_value(&in[idx[k]], ext) : NULL;
            size_t i;
            json_t *r;
            json_array_foreach(recs, i, r)
            {
                const char *have = json_string_value(json_object_get(r, ext));
                if (v && have && strcmp(v, have) == 0) {
                    exists[k] = 1;
                }
            }
        }
        json_decref(j);
    }
    es_buf_release(&q);
    return rc;
}

/* Sends one collection request for the records idx[0..n) and fills their results. */
static int send_collection(struct es_sf_ctx *ctx, const char *object, const char *method,
                           const char *ext, const char *op, const struct es_write *in,
                           const size_t *idx, size_t n, struct es_write_result *res,
                           struct es_err *err)
{
    /* Update path (by id, or an upsert of a record known to exist): create-only fields
     * are left out, Salesforce refuses them there (INVALID_FIELD_FOR_INSERT_UPDATE). */
    json_t *co = NULL;
    unsigned char *known = NULL;
    if (strcmp(op, "create") != 0) {
        struct es_err le;
        es_err_clear(&le);
        int rc = create_only_fields(ctx, object, &co, &le);
        if (rc == ES_OK && json_array_size(co) && ext) {
            known = es_xmalloc(n ? n : 1);
            unsigned char *ask = es_xmalloc(n ? n : 1);
            size_t nask = 0;
            for (size_t k = 0; k < n; k++) {
                const struct es_write *w = &in[idx[k]];
                known[k] = w->target_id != NULL;
                ask[k] = !w->target_id && json_is_object(w->data) && has_any(w->data, co);
                nask += ask[k];
            }
            if (nask) {
                rc = find_existing(ctx, object, ext, in, idx, n, ask, known, &le);
            }
            es_free(ask);
        }
        if (rc != ES_OK) {
            fail_all(res, idx, n, &le);
            pass_err(err, &le);
            es_free(known);
            return rc;
        }
    }
    json_t *records = json_array();
    size_t *sent = es_xmalloc((n ? n : 1) * sizeof *sent);
    size_t ns = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = idx[k];
        struct es_write_result *r = &res[i];
        if (!json_is_object(in[i].data)) {
            r->code = es_err_set(&r->err, ES_EPOISON, "record to write is not a JSON object");
            continue;
        }
        json_t *rec = json_copy(in[i].data);
        if (co && (!ext || (known && known[k]))) {
            drop_fields(rec, co);
        }
        json_object_set_new(rec, "attributes", json_pack("{s:s}", "type", object));
        if (strcmp(op, "update") == 0) {
            const char *tid = in[i].target_id
                                  ? in[i].target_id
                                  : json_string_value(json_object_get(in[i].data, "Id"));
            if (!tid) {
                json_decref(rec);
                r->code = es_err_set(&r->err, ES_ENOTFOUND, "update of %s without a Salesforce id",
                                     object);
                continue;
            }
            json_object_set_new(rec, "Id", json_string(tid));
        } else {
            json_object_del(rec, "Id");
        }
        if (ext) {
            json_t *v = json_object_get(in[i].data, ext);
            if (in[i].match) {
                json_object_set_new(rec, ext, json_string(in[i].match));
            } else if (!v || json_is_null(v)) {
                json_decref(rec);
                r->code =
                    es_err_set(&r->err, ES_EVALIDATION,
                               "upsert of %s without a value for external id %s", object, ext);
                continue;
            }
        }
        json_array_append_new(records, rec);
        sent[ns++] = i;
    }
    int rc = ES_OK;
    if (ns) {
        json_t *body = json_pack("{s:b, s:o}", "allOrNone", 0, "records", records);
        records = NULL;
        char *rest = ext ? es_xasprintf("/composite/sobjects/%s/%s", object, ext)
                         : es_xstrdup("/composite/sobjects");
        char *url = data_url(ctx, rest);
        es_free(rest);
        json_t *j = NULL;
        struct es_err cerr;
        es_err_clear(&cerr);
        rc = sf_call(ctx, method, url, body, NULL, &j, NULL, &cerr);
        es_free(url);
        json_decref(body);
        if (rc == ES_OK && (!json_is_array(j) || json_array_size(j) != ns)) {
            rc =
                es_err_set(&cerr, ES_EPROTOCOL, "collection answer has %zu results for %zu records",
                           json_is_array(j) ? json_array_size(j) : 0, ns);
        }
        if (rc != ES_OK) {
            fail_all(res, sent, ns, &cerr);
            es_err_set(err, cerr.code, "%s", cerr.msg);
            if (err) {
                es_err_remote(err, cerr.http_status, cerr.remote_code, cerr.remote_msg);
                err->retry_after = cerr.retry_after;
            }
        } else {
            for (size_t k = 0; k < ns; k++) {
                take_result(&res[sent[k]], json_array_get(j, k), object, op,
                            strcmp(op, "create") == 0);
            }
        }
        json_decref(j);
    }
    json_decref(records);
    es_free(sent);
    es_free(known);
    return rc;
}

static int sf_delete(struct es_sf_ctx *ctx, const char *object, const struct es_write *in,
                     const size_t *idx, size_t n, struct es_write_result *res, struct es_err *err)
{
    struct es_buf q;
    es_buf_init(&q, 0);
    size_t *sent = es_xmalloc((n ? n : 1) * sizeof *sent);
    size_t ns = 0;
    for (size_t k = 0; k < n; k++) {
        const char *tid = in[idx[k]].target_id;
        if (!tid || !valid_id(tid)) {
            res[idx[k]].code = es_err_set(&res[idx[k]].err, ES_ENOTFOUND,
                                          "delete of %s without a Salesforce id", object);
            continue;
        }
        (void)es_buf_printf(&q, "%s%s", ns ? "," : "", tid);
        sent[ns++] = idx[k];
    }
    int rc = ES_OK;
    if (ns) {
        char *rest = es_xasprintf("/composite/sobjects?ids=%s&allOrNone=false", q.data);
        char *url = data_url(ctx, rest);
        es_free(rest);
        json_t *j = NULL;
        struct es_err cerr;
        es_err_clear(&cerr);
        rc = sf_call(ctx, "DELETE", url, NULL, NULL, &j, NULL, &cerr);
        es_free(url);
        if (rc == ES_OK && (!json_is_array(j) || json_array_size(j) != ns)) {
            rc = es_err_set(&cerr, ES_EPROTOCOL, "delete answer does not match the request");
        }
        if (rc != ES_OK) {
            fail_all(res, sent, ns, &cerr);
            es_err_set(err, cerr.code, "%s", cerr.msg);
        } else {
            for (size_t k = 0; k < ns; k++) {
                take_result(&res[sent[k]], json_array_get(j, k), object, "delete", 0);
                if (res[sent[k]].code == ES_ENOTFOUND) {
                    es_err_clear(&res[sent[k]].err); /* already gone: the goal is reached */
                    res[sent[k]].code = ES_OK;
                }
            }
        }
        json_decref(j);
    }
    es_free(sent);
    es_buf_release(&q);
    return rc;
}

/* Bulk jobs take the same rule as collections: rows of records known to exist (update, a
 * known target id, or found by external id in chunks of 200) lose their create-only fields
 * (an empty CSV cell leaves the field as it is). *out is NULL when nothing changes, else a
 * copy of in[] whose changed rows hold new data (json_decref those that differ). */
static int bulk_strip(struct es_sf_ctx *ctx, const char *object, enum es_write_op op,
                      const char *ext, const struct es_write *in, size_t n, struct es_write **out,
                      struct es_write_result *res, struct es_err *err)
{
    *out = NULL;
    if (op == ES_WRITE_CREATE || op == ES_WRITE_DELETE) {
        return ES_OK;
    }
    json_t *co = NULL;
    struct es_err le;
    es_err_clear(&le);
    int rc = create_only_fields(ctx, object, &co, &le);
    if (rc == ES_OK && !json_array_size(co)) {
        return ES_OK;
    }
    unsigned char *known = es_xmalloc(n ? n : 1);
    unsigned char *ask = es_xmalloc(n ? n : 1);
    size_t *idx = es_xmalloc(SF_COLLECTION_MAX * sizeof *idx);
    for (size_t i = 0; i < n; i++) {
        known[i] = op == ES_WRITE_UPDATE || in[i].target_id != NULL;
        ask[i] = !known[i] && ext && json_is_object(in[i].data) && has_any(in[i].data, co);
    }
    for (size_t start = 0; rc == ES_OK && ext && start < n; start += SF_COLLECTION_MAX) {
        size_t end = start + SF_COLLECTION_MAX < n ? start + SF_COLLECTION_MAX : n;
        size_t m = 0;
        for (size_t i = start; i < end; i++) {
            idx[m++] = i;
        }
        rc = find_existing(ctx, object, ext, in, idx, m, ask + start, known + start, &le);
    }
    if (rc == ES_OK) {
        struct es_write *cp = es_xmalloc((n ? n : 1) * sizeof *cp);
        for (size_t i = 0; i < n; i++) {
            cp[i] = in[i];
            if (known[i] && json_is_object(in[i].data) && has_any(in[i].data, co)) {
                cp[i].data = json_copy(in[i].data);
                drop_fields(cp[i].data, co);
            }
        }
        *out = cp;
    } else {
        fail_all(res, NULL, n, &le);
        pass_err(err, &le);
    }
    es_free(known);
    es_free(ask);
    es_free(idx);
    return rc;
}

static int sf_write_batch(struct es_conn *c, const char *object, enum es_write_op op,
                          const char *external_id, const struct es_write *in, size_t n,
                          struct es_write_result *results, struct es_err *err)
{
    struct es_sf_ctx *ctx = c->ctx;
    if (!valid_name(object) || (external_id && !valid_name(external_id))) {
        struct es_err e;
        es_err_clear(&e);
        es_err_set(&e, ES_EINVAL, "bad object or external id field name");
        fail_all(results, NULL, n, &e);
        return es_err_set(err, ES_EINVAL, "bad object or external id field name");
    }
    if (ctx->bulk_threshold > 0 && n > (size_t)ctx->bulk_threshold) {
        struct es_write *cp = NULL;
        int brc = bulk_strip(ctx, object, op, external_id, in, n, &cp, results, err);
        if (brc == ES_OK) {
            brc = es__sf_bulk_write(c, object, op, external_id, cp ? cp : in, n, results, err);
        }
        for (size_t i = 0; cp && i < n; i++) {
            if (cp[i].data != in[i].data) {
                json_decref(cp[i].data);
            }
        }
        es_free(cp);
        return brc;
    }
    int rc = ES_OK;
    size_t *a = es_xmalloc(SF_COLLECTION_MAX * sizeof *a);
    size_t *b = es_xmalloc(SF_COLLECTION_MAX * sizeof *b);
    for (size_t start = 0; start < n && rc == ES_OK; start += SF_COLLECTION_MAX) {
        size_t end = start + SF_COLLECTION_MAX < n ? start + SF_COLLECTION_MAX : n;
        size_t na = 0, nb = 0;
        for (size_t i = start; i < end; i++) {
            int is_update =
                op == ES_WRITE_UPDATE || (op == ES_WRITE_UPSERT && !external_id && in[i].target_id);
            if (is_update) {
                b[nb++] = i;
            } else {
                a[na++] = i;
            }
        }
        if (op == ES_WRITE_DELETE) {
            rc = sf_delete(ctx, object, in, a, na, results, err);
        } else if (op == ES_WRITE_UPSERT && external_id) {
            rc = send_collection(ctx, object, "PATCH", external_id, "upsert", in, a, na, results,
                                 err);
        } else {
            if (na) {
                rc = send_collection(ctx, object, "POST", NULL, "create", in, a, na, results, err);
            }
            if (nb && rc == ES_OK) {
                rc = send_collection(ctx, object, "PATCH", NULL, "update", in, b, nb, results, err);
            }
        }
    }
    if (rc != ES_OK && err) {
        fail_all(results, NULL, n, err); /* the rest was never sent: same failure */
    }
    es_free(a);
    es_free(b);
    return rc;
}

/* ---- webhooks ----------------------------------------------------------------------- */

static const char sf_ack[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
    "<soapenv:Body><notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">"
    "<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>";

static int parse_outbound(const char *body, size_t len, struct es_batch *out, struct es_err *err)
{
    const char *end = body + len;
    struct es_xml_elem notes;
    if (!es_xml_find(body, end, "notifications", &notes)) {
        return es_err_set(err, ES_EPOISON, "SOAP body has no <notifications> element");
    }
    struct es_buf txt;
    es_buf_init(&txt, 1024 * 1024);
    int rc = ES_OK;
    const char *p = notes.inner;
    const char *pend = notes.inner + notes.inner_len;
    struct es_xml_elem n;
    int got;
    while ((got = es_xml_next(p, pend, &n)) == 1) {
        p = n.next;
        if (!es_xml_is(&n, "Notification")) {
            continue;
        }
        struct es_xml_elem so;
        if (!es_xml_find(n.inner, n.inner + n.inner_len, "sObject", &so)) {
            rc = es_err_set(err, ES_EPOISON, "Notification without sObject");
            break;
        }
        json_t *data = json_object();
        const char *q = so.inner;
        const char *qend = so.inner + so.inner_len;
        struct es_xml_elem f;
        int fr;
        while ((fr = es_xml_next(q, qend, &f)) == 1) {
            q = f.next;
            const char *colon = memchr(f.name, ':', f.name_len);
            const char *ln = colon ? colon + 1 : f.name;
            size_t ll = f.name_len - (size_t)(ln - f.name);
            char key[128];
            if (ll == 0 || ll >= sizeof key) {
                continue;
            }
            memcpy(key, ln, ll);
            key[ll] = '\0';
            es_buf_reset(&txt);
            if (es_xml_attr(&f, "nil", &txt) && strcmp(txt.data ? txt.data : "", "true") == 0) {
                json_object_set_new(data, key, json_null());
                continue;
            }
            es_buf_reset(&txt);
            if (es_xml_text(f.inner, f.inner_len, &txt) != ES_OK) {
                rc = es_err_set(err, ES_EPOISON, "bad character reference in field %s", key);
                break;
            }
            json_object_set_new(data, key, json_stringn(txt.data ? txt.data : "", txt.len));
        }
        if (rc == ES_OK && fr < 0) {
            rc = es_err_set(err, ES_EPOISON, "malformed XML inside sObject");
        }
        const char *id = json_string_value(json_object_get(data, "Id"));
        if (rc == ES_OK && !id) {
            rc = es_err_set(err, ES_EPOISON, "Notification sObject has no Id");
        }
        if (rc != ES_OK) {
            json_decref(data);
            break;
        }
        const char *ms = json_string_value(json_object_get(data, "SystemModstamp"));
        if (!ms) {
            ms = json_string_value(json_object_get(data, "LastModifiedDate"));
        }
        int64_t ts;
        char ver[40] = "";
        if (ms && es_sf_parse_ts(ms, &ts) == ES_OK) {
            es_clock_iso8601(ts, ver, sizeof ver);
        } else {
            struct es_xml_elem nid;
            es_buf_reset(&txt);
            if (es_xml_find(n.inner, n.inner + n.inner_len, "Id", &nid)) {
                (void)es_xml_text(nid.inner, nid.inner_len, &txt);
                es_strlcpy(ver, txt.data ? txt.data : "", sizeof ver);
            }
        }
        char *key = es_xstrdup(id);
        es_batch_add(out, key, ver, 0, data);
        es_free(key);
    }
    if (rc == ES_OK && got < 0) {
        rc = es_err_set(err, ES_EPOISON, "malformed XML in the Outbound Message");
    }
    es_buf_release(&txt);
    return rc;
}

/* One CDC event: {"data":{"payload":{...}}}, {"payload":{...}} or the payload itself. */
static int parse_cdc_event(json_t *ev, struct es_batch *out, struct es_err *err)
{
    json_t *payload = json_object_get(json_object_get(ev, "data"), "payload");
    if (!payload) {
        payload = json_object_get(ev, "payload");
    }
    if (!payload) {
        payload = ev;
    }
    json_t *h = json_object_get(payload, "ChangeEventHeader");
    if (!json_is_object(h)) {
        return es_err_set(err, ES_EPOISON, "event has no ChangeEventHeader");
    }
    const char *type = json_string_value(json_object_get(h, "changeType"));
    json_t *ids = json_object_get(h, "recordIds");
    if (!type || !json_is_array(ids) || json_array_size(ids) == 0) {
        return es_err_set(err, ES_EPOISON, "ChangeEventHeader lacks changeType or recordIds");
    }
    if (strncmp(type, "GAP_", 4) == 0) {
        return ES_OK; /* a gap event carries no data: the next poll reads the records */
    }
    json_t *cts = json_object_get(h, "commitTimestamp");
    json_t *seq = json_object_get(h, "sequenceNumber");
    const char *tk = json_string_value(json_object_get(h, "transactionKey"));
    char ver[96];
    snprintf(ver, sizeof ver, "%lld-%s-%lld",
             (long long)(json_is_integer(cts) ? json_integer_value(cts) : 0), tk ? tk : "",
             (long long)(json_is_integer(seq) ? json_integer_value(seq) : 0));
    int deleted = strcmp(type, "DELETE") == 0;
    size_t i;
    json_t *idv;
    json_array_foreach(ids, i, idv)
    {
        const char *id = json_string_value(idv);
        if (!id || strchr(id, '*')) {
            continue; /* a wildcard id names no record: polling covers it */
        }
        json_t *data = NULL;
        if (!deleted) {
            data = json_copy(payload);
            json_object_del(data, "ChangeEventHeader");
            json_object_set_new(data, "Id", json_string(id));
            if (strcmp(type, "UPDATE") == 0) {
                /* An UPDATE event holds only the changed fields (nulls for cleared ones). */
                json_object_set_new(data, ES_RECORD_PARTIAL, json_true());
            }
        }
        es_batch_add(out, id, ver, deleted, data);
    }
    return ES_OK;
}

static int sf_parse_webhook(struct es_conn *c, const struct es_http_req *req, struct es_batch *out,
                            struct es_http_reply *reply, struct es_err *err)
{
    (void)c;
    const char *b = req->body ? req->body : "";
    size_t i = 0;
    while (i < req->body_len && isspace((unsigned char)b[i])) {
        i++;
    }
    if (i < req->body_len && b[i] == '<') {
        int rc = parse_outbound(b, req->body_len, out, err);
        if (rc == ES_OK) {
            reply->status = 200;
            es_strlcpy(reply->content_type, "text/xml; charset=utf-8", sizeof reply->content_type);
            reply->body = es_xstrdup(sf_ack);
        }
        return rc;
    }
    json_error_t je;
    json_t *j = json_loadb(b, req->body_len, 0, &je);
    if (!j) {
        return es_err_set(err, ES_EPOISON, "webhook body is neither SOAP nor JSON: %s (line %d)",
                          je.text, je.line);
    }
    int rc = ES_OK;
    if (json_is_array(j)) {
        size_t k;
        json_t *ev;
        json_array_foreach(j, k, ev)
        {
            rc = parse_cdc_event(ev, out, err);
            if (rc != ES_OK) {
                break;
            }
        }
    } else {
        rc = parse_cdc_event(j, out, err);
    }
    json_decref(j);
    return rc;
}

static const struct es_connector_ops sf_ops = {
    .init = sf_init,
    .fini = sf_fini,
    .ping = sf_ping,
    .describe = sf_describe,
    .read_changes = sf_read_changes,
    .read_page = sf_read_page,
    .get = sf_get,
    .write_batch = sf_write_batch,
    .parse_webhook = sf_parse_webhook,
};

const struct es_connector es_connector_salesforce = {
    .abi = ES_CONNECTOR_ABI,
    .name = "salesforce",
    .flags = ES_CONN_SOURCE | ES_CONN_SINK | ES_CONN_WEBHOOK,
    .ctx_size = sizeof(struct es_sf_ctx),
    .doc = "Salesforce REST: SOQL changes, composite upserts, Bulk 2.0, Outbound Messages, CDC",
    .ops = &sf_ops,
};
