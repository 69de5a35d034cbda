/* SPDX-License-Identifier: MIT */
/*
 * The sap_odata connector: SAP S/4HANA OData v2 (A2X APIs) through the shared HTTP client.
 *
 *  - describe: $metadata (EDMX) of the entity's service, scanned with http_xml.
 *  - CSRF: a token is fetched (X-CSRF-Token: Fetch) before the first write and fetched again
 *    once when a write answers 403 "x-csrf-token: Required"; session cookies stay in the
 *    client's cookie engine.
 *  - updates send If-Match with the entity's ETag (read first); a 412 re-reads the entity
 *    and tries once more, a second 412 is a conflict.
 *  - paging follows __next ($skiptoken) and falls back to $top/$skip.
 *  - delta by LastChangeDateTime (watermark "ts|key") where the entity has it, else a
 *    fingerprinted snapshot (see sap_odata.h).
 *  - creates are idempotent when the flow has an external id: the entity is searched by that
 *    field first, so a create retried after a timeout finds the first one.
 *  - deep inserts pass nested to_* arrays through unchanged.
 *  - after a sales order create, the order is read back (TotalCreditCheckStatus,
 *    DeliveryBlockReason); a blocked order is reported ES_EREJECTED with SAP's words.
 *
 * Options (systems.<name>.options): services, service_root, page_size, sap_client,
 * credit_check, overlap (see docs/connectors.md).
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
#include "connectors/sap_odata.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

struct sap_ctx {
    struct es_conn *c;
    struct es_http *http;
    const struct es_node *services; /* options.services: entity set -> service name */
    const char *root;               /* service root, default /sap/opu/odata/sap/ */
    const char *sap_client;
    long long page_size;
    int credit_check;
    int64_t overlap_ms;
    char *csrf;                   /* current token, NULL before the first fetch */
    char *csrf_service;           /* service the token was fetched for */
    json_t *meta;                 /* service -> parsed EDMX */
    int batch;                    /* option batch: several records go as one $batch */
    int no_batch;                 /* the service answered $batch with 404/405/501 */
    const struct es_node *expand; /* options.expand: entity set -> "nav[,nav...]" */
};

/* Default services of the A_* entity sets used in examples/salesforce-sap.yaml. */
static const struct {
    const char *set;
    const char *service;
} default_services[] = {
    {"A_BusinessPartner", "API_BUSINESS_PARTNER"},
    {"A_BusinessPartnerAddress", "API_BUSINESS_PARTNER"},
    {"A_BusinessPartnerRole", "API_BUSINESS_PARTNER"},
    {"A_Customer", "API_BUSINESS_PARTNER"},
    {"A_CustomerSalesArea", "API_BUSINESS_PARTNER"},
    {"A_CustomerCompany", "API_BUSINESS_PARTNER"},
    {"A_AddressEmailAddress", "API_BUSINESS_PARTNER"},
    {"A_AddressPhoneNumber", "API_BUSINESS_PARTNER"},
    {"A_SalesOrder", "API_SALES_ORDER_SRV"},
    {"A_SalesOrderItem", "API_SALES_ORDER_SRV"},
    {"A_SalesOrderHeaderPartner", "API_SALES_ORDER_SRV"},
    {"A_SalesOrderScheduleLine", "API_SALES_ORDER_SRV"},
    {"A_Product", "API_PRODUCT_SRV"},
    {"A_ProductDescription", "API_PRODUCT_SRV"},
    {"A_ProductSalesDelivery", "API_PRODUCT_SRV"},
    {"A_MaterialStock", "API_MATERIAL_STOCK_SRV"},
    {"A_MatlStkInAcctMod", "API_MATERIAL_STOCK_SRV"},
    {"A_BillingDocument", "API_BILLING_DOCUMENT_SRV"},
    {"A_BillingDocumentItem", "API_BILLING_DOCUMENT_SRV"},
    {"A_SlsPrcgConditionRecord", "API_SLSPRICINGCONDITIONRECORD_SRV"},
    {"A_SlsPrcgCndnRecdValidity", "API_SLSPRICINGCONDITIONRECORD_SRV"},
};

/* ---- pure parts (sap_odata.h) ------------------------------------------------------- */

static int attr_bool(const struct es_xml_elem *e, const char *name, int def, struct es_buf *tmp)
{
    if (!es_xml_attr(e, name, tmp)) {
        return def;
    }
    return strcmp(tmp->data ? tmp->data : "", "false") != 0;
}

static const char *edm_short(const char *t)
{
    return strncmp(t, "Edm.", 4) == 0 ? t + 4 : t;
}

/* Parses one EntityType into {name: {...}} of types. */
static int parse_entity_type(const struct es_xml_elem *et, json_t *types, struct es_buf *tmp)
{
    if (!es_xml_attr(et, "Name", tmp)) {
        return ES_EPROTOCOL;
    }
    json_t *t = json_object();
    json_t *keys = json_array();
    json_t *fields = json_array();
    json_t *navs = json_array();
    json_t *etag = json_null();
    int has_lc = 0;
    json_object_set_new(types, tmp->data, t);
    const char *p = et->inner;
    const char *end = et->inner + et->inner_len;
    struct es_xml_elem e;
    int rc;
    while ((rc = es_xml_next(p, end, &e)) == 1) {
        p = e.next;
        if (es_xml_is(&e, "Key")) {
            const char *q = e.inner;
            const char *qe = e.inner + e.inner_len;
            struct es_xml_elem r;
            while (es_xml_next(q, qe, &r) == 1) {
                q = r.next;
                if (es_xml_is(&r, "PropertyRef") && es_xml_attr(&r, "Name", tmp)) {
                    json_array_append_new(keys, json_string(tmp->data));
                }
            }
        } else if (es_xml_is(&e, "Property")) {
            if (!es_xml_attr(&e, "Name", tmp)) {
                continue;
            }
            json_t *f = json_object();
            json_object_set_new(f, "name", json_string(tmp->data));
            if (strcmp(tmp->data, "LastChangeDateTime") == 0) {
                has_lc = 1;
            }
            char name[128];
            es_strlcpy(name, tmp->data, sizeof name);
            json_object_set_new(
                f, "type",
                json_string(es_xml_attr(&e, "Type", tmp) ? edm_short(tmp->data) : "String"));
            long long len = 0;
            if (es_xml_attr(&e, "MaxLength", tmp)) {
                len = strtoll(tmp->data, NULL, 10);
            }
            json_object_set_new(f, "length", json_integer(len));
            int nullable = attr_bool(&e, "Nullable", 1, tmp);
            int creatable = attr_bool(&e, "sap:creatable", 1, tmp);
            int updatable = attr_bool(&e, "sap:updatable", 1, tmp);
            json_object_set_new(f, "required", json_boolean(!nullable && creatable));
            json_object_set_new(f, "nillable", json_boolean(nullable));
            json_object_set_new(f, "createable", json_boolean(creatable));
            json_object_set_new(f, "updateable", json_boolean(updatable));
            json_object_set_new(f, "external_id", json_false());
            json_object_set_new(f, "picklist", json_array());
            if (es_xml_attr(&e, "ConcurrencyMode", tmp) && strcmp(tmp->data, "Fixed") == 0) {
                json_decref(etag);
                etag = json_string(name);
            }
            json_array_append_new(fields, f);
        } else if (es_xml_is(&e, "NavigationProperty") && es_xml_attr(&e, "Name", tmp)) {
            json_array_append_new(navs, json_string(tmp->data));
        }
    }
    /* Keys are required whatever their Nullable says. */
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        size_t k;
        json_t *kv;
        json_array_foreach(keys, k, kv)
        {
            if (json_equal(kv, json_object_get(f, "name"))) {
                json_object_set_new(f, "nillable", json_false());
            }
        }
    }
    json_object_set_new(t, "keys", keys);
    json_object_set_new(t, "fields", fields);
    json_object_set_new(t, "navs", navs);
    json_object_set_new(t, "etag", etag);
    json_object_set_new(t, "has_lastchange", json_boolean(has_lc));
    return rc < 0 ? ES_EPROTOCOL : ES_OK;
}

int es_sap_edmx_parse(const char *xml, size_t len, json_t **out, struct es_err *err)
{
    *out = NULL;
    const char *end = xml + len;
    struct es_xml_elem root, ds;
    if (!es_xml_find(xml, end, "Edmx", &root)) {
        return es_err_set(err, ES_EPROTOCOL, "$metadata is not an EDMX document (%zu bytes)", len);
    }
    if (!es_xml_find(root.inner, root.inner + root.inner_len, "DataServices", &ds)) {
        return es_err_set(err, ES_EPROTOCOL, "$metadata has no DataServices");
    }
    json_t *types = json_object();
    json_t *sets = json_object();
    struct es_buf tmp;
    es_buf_init(&tmp, 64 * 1024);
    int rc = ES_OK;
    const char *p = ds.inner;
    const char *pend = ds.inner + ds.inner_len;
    struct es_xml_elem schema;
    int got;
    while (rc == ES_OK && (got = es_xml_next(p, pend, &schema)) == 1) {
        p = schema.next;
        if (!es_xml_is(&schema, "Schema")) {
            continue;
        }
        const char *q = schema.inner;
        const char *qe = schema.inner + schema.inner_len;
        struct es_xml_elem e;
        int g2;
        while (rc == ES_OK && (g2 = es_xml_next(q, qe, &e)) == 1) {
            q = e.next;
            if (es_xml_is(&e, "EntityType")) {
                rc = parse_entity_type(&e, types, &tmp);
            } else if (es_xml_is(&e, "EntityContainer")) {
                const char *r = e.inner;
                const char *re = e.inner + e.inner_len;
                struct es_xml_elem s;
                while (es_xml_next(r, re, &s) == 1) {
                    r = s.next;
                    if (!es_xml_is(&s, "EntitySet") || !es_xml_attr(&s, "Name", &tmp)) {
                        continue;
                    }
                    char name[128];
                    es_strlcpy(name, tmp.data, sizeof name);
                    if (!es_xml_attr(&s, "EntityType", &tmp)) {
                        continue;
                    }
                    const char *dot = strrchr(tmp.data, '.');
                    json_t *set = json_pack("{s:s}", "type", dot ? dot + 1 : tmp.data);
                    json_object_set_new(set, "creatable",
                                        json_boolean(attr_bool(&s, "sap:creatable", 1, &tmp)));
                    json_object_set_new(set, "updatable",
                                        json_boolean(attr_bool(&s, "sap:updatable", 1, &tmp)));
                    json_object_set_new(set, "deletable",
                                        json_boolean(attr_bool(&s, "sap:deletable", 1, &tmp)));
                    json_object_set_new(sets, name, set);
                }
            }
        }
        if (rc == ES_OK && g2 < 0) {
            rc = ES_EPROTOCOL;
        }
    }
    if (rc == ES_OK && got < 0) {
        rc = ES_EPROTOCOL;
    }
    es_buf_release(&tmp);
    if (rc != ES_OK) {
        json_decref(types);
        json_decref(sets);
        return es_err_set(err, ES_EPROTOCOL, "$metadata is malformed or cut short");
    }
    /* Join each set with its type. */
    const char *name;
    json_t *set;
    json_object_foreach(sets, name, set)
    {
        json_t *t = json_object_get(types, json_string_value(json_object_get(set, "type")));
        if (t) {
            json_object_update_missing(set, t);
        } else {
            json_object_set_new(set, "keys", json_array());
            json_object_set_new(set, "fields", json_array());
            json_object_set_new(set, "navs", json_array());
            json_object_set_new(set, "etag", json_null());
            json_object_set_new(set, "has_lastchange", json_false());
        }
    }
    json_decref(types);
    *out = sets;
    return ES_OK;
}

int es_sap_parse_date(const char *s, int64_t *ms)
{
    if (!s) {
        return ES_EINVAL;
    }
    if (strncmp(s, "/Date(", 6) == 0) {
        char *end = NULL;
        long long v = strtoll(s + 6, &end, 10);
        if (!end || end == s + 6) {
            return ES_EINVAL;
        }
        long long off = 0;
        if (*end == '+' || *end == '-') {
            int sign = *end == '-' ? -1 : 1;
            char *e2 = NULL;
            off = strtoll(end + 1, &e2, 10) * sign;
            end = e2;
        }
        if (strcmp(end, ")/") != 0) {
            return ES_EINVAL;
        }
        (void)off; /* the ms value is UTC already; the offset only says how to display it */
        *ms = v;
        return ES_OK;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6) {
        return ES_EINVAL;
    }
    const char *p = s + n;
    int frac = 0, digits = 0;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, digits++) {
            if (digits < 3) {
                frac = frac * 10 + (*p - '0');
            }
        }
        for (int k = digits; k < 3; k++) {
            frac *= 10;
        }
    }
    if (*p == 'Z') {
        p++;
    }
    if (*p) {
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
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return ES_OK;
}

int es_sap_key_literal(struct es_buf *b, const char *key)
{
    if (strchr(key, '=') && strchr(key, '\'')) {
        return es_buf_puts(b, key);
    }
    int rc = es_buf_putc(b, '\'');
    for (const char *p = key; *p && rc == ES_OK; p++) {
        rc = *p == '\'' ? es_buf_append(b, "''", 2) : es_buf_putc(b, *p);
    }
    return rc == ES_OK ? es_buf_putc(b, '\'') : rc;
}

int es_sap_error_parse(const char *body, size_t len, char *code, size_t code_cap, char *msg,
                       size_t msg_cap)
{
    code[0] = msg[0] = '\0';
    if (!body || !len) {
        return 0;
    }
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (j) {
        json_t *e = json_object_get(j, "error");
        const char *c = json_string_value(json_object_get(e, "code"));
        json_t *m = json_object_get(e, "message");
        const char *mv = json_is_string(m) ? json_string_value(m)
                                           : json_string_value(json_object_get(m, "value"));
        if (c) {
            es_strlcpy(code, c, code_cap);
        }
        if (mv) {
            es_strlcpy(msg, mv, msg_cap);
        }
        json_t *det = json_object_get(json_object_get(e, "innererror"), "errordetails");
        size_t i;
        json_t *d;
        json_array_foreach(det, i, d)
        {
            const char *dm = json_string_value(json_object_get(d, "message"));
            const char *sev = json_string_value(json_object_get(d, "severity"));
            if (dm && (!sev || strcmp(sev, "error") == 0) && strcmp(dm, msg) != 0) {
                size_t n = strlen(msg);
                if (n + 3 < msg_cap) {
                    snprintf(msg + n, msg_cap - n, "%s%s", n ? "; " : "", dm);
                }
                break;
            }
        }
        json_decref(j);
        return code[0] || msg[0];
    }
    struct es_xml_elem e, c, m;
    if (!es_xml_find(body, body + len, "error", &e)) {
        return 0;
    }
    struct es_buf t;
    es_buf_init(&t, 4096);
    if (es_xml_find(e.inner, e.inner + e.inner_len, "code", &c) &&
        es_xml_text(c.inner, c.inner_len, &t) == ES_OK && t.data) {
        es_strlcpy(code, t.data, code_cap);
    }
    es_buf_reset(&t);
    if (es_xml_find(e.inner, e.inner + e.inner_len, "message", &m) &&
        es_xml_text(m.inner, m.inner_len, &t) == ES_OK && t.data) {
        es_strlcpy(msg, t.data, msg_cap);
    }
    es_buf_release(&t);
    return code[0] || msg[0];
}

static void fnv(uint64_t *h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *h ^= (unsigned char)s[i];
        *h *= 1099511628211ull;
    }
}

static void fp_value(uint64_t *h, json_t *v)
{
    if (json_is_object(v)) {
        if (json_object_get(v, "__deferred")) {
            return;
        }
        size_t n = json_object_size(v);
        const char **keys = es_xmalloc((n ? n : 1) * sizeof *keys);
        size_t k = 0;
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val)
        {
            keys[k++] = key;
        }
        /* insertion sort: records have few fields, and this keeps the hash order-free */
        for (size_t i = 1; i < k; i++) {
            const char *x = keys[i];
            size_t j = i;
            while (j > 0 && strcmp(keys[j - 1], x) > 0) {
                keys[j] = keys[j - 1];
                j--;
            }
            keys[j] = x;
        }
        fnv(h, "{", 1);
        for (size_t i = 0; i < k; i++) {
            json_t *child = json_object_get(v, keys[i]);
            if (strcmp(keys[i], "__metadata") == 0 || json_object_get(child, "__deferred")) {
                continue; /* metadata and unexpanded navigation stubs are not content */
            }
            fnv(h, keys[i], strlen(keys[i]) + 1);
            fp_value(h, json_object_get(v, keys[i]));
        }
        fnv(h, "}", 1);
        es_free(keys);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        fnv(h, "[", 1);
        json_array_foreach(v, i, x)
        {
            fp_value(h, x);
        }
        fnv(h, "]", 1);
    } else {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (s) {
            fnv(h, s, strlen(s) + 1);
        }
        free(s); /* checksrc: ok (jansson allocates with malloc) */
    }
}

void es_sap_fingerprint(json_t *record, char out[17])
{
    uint64_t h = 14695981039346656037ull;
    fp_value(&h, record);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* ---- plumbing ----------------------------------------------------------------------- */

static void sap_error_hook(void *ud, const struct es_http_resp *resp, struct es_http_remote *out)
{
    (void)ud;
    (void)es_sap_error_parse(resp->body.data, resp->body.len, out->code_text, sizeof out->code_text,
                             out->msg, sizeof out->msg);
}

static int valid_set(const char *s)
{
    if (!s || !*s || strlen(s) > 100) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_') {
            return 0;
        }
    }
    return 1;
}

static int service_of(struct sap_ctx *ctx, const char *set, const char **out, struct es_err *err)
{
    const struct es_node *s = ctx->services ? es_node_get(ctx->services, set) : NULL;
    if (s && s->kind == ES_NODE_SCALAR && s->str && *s->str) {
        *out = s->str;
        return ES_OK;
    }
    for (size_t i = 0; i < ES_ARRAY_LEN(default_services); i++) {
        if (strcmp(default_services[i].set, set) == 0) {
            *out = default_services[i].service;
            return ES_OK;
        }
    }
    es_err_set(err, ES_ECONFIG, "no SAP service known for entity set '%s'", set);
    es_err_hint(err, "add it under options.services of the system, e.g. %s: API_..._SRV", set);
    return ES_ECONFIG;
}

/* "<root><SERVICE>/<rest>" with sap-client and $format=json when asked. */
static char *svc_url(struct sap_ctx *ctx, const char *service, const char *rest, int json_fmt)
{
    const char *q = strchr(rest, '?');
    struct es_buf b;
    es_buf_init(&b, 0);
    (void)es_buf_printf(&b, "%s%s/%s", ctx->root, service, rest);
    char sep = q ? '&' : '?';
    if (json_fmt) {
        (void)es_buf_printf(&b, "%c$format=json", sep);
        sep = '&';
    }
    if (ctx->sap_client) {
        (void)es_buf_printf(&b, "%csap-client=", sep);
        (void)es_http_escape(&b, ctx->sap_client);
    }
    return es_buf_detach(&b, NULL);
}

/* Unwraps {"d": ...}: returns the borrowed inner value. */
static json_t *unwrap_d(json_t *j)
{
    json_t *d = json_object_get(j, "d");
    return d ? d : j;
}

static int get_json(struct sap_ctx *ctx, const char *url, json_t **out, struct es_http_resp *resp,
                    struct es_err *err)
{
    struct es_http_req_opts rq = {.method = "GET", .url = url};
    return es_http_json(ctx->http, &rq, resp, out, err);
}

/* The parsed $metadata of a service (cached). Borrowed. */
static int service_meta(struct sap_ctx *ctx, const char *service, json_t **out, struct es_err *err)
{
    *out = json_object_get(ctx->meta, service);
    if (*out) {
        return ES_OK;
    }
    char *url = svc_url(ctx, service, "$metadata", 0);
    static const char *const hdrs[] = {"Accept: application/xml", NULL};
    struct es_http_req_opts rq = {.method = "GET", .url = url, .headers = hdrs};
    struct es_http_resp resp;
    es_http_resp_init(&resp, ctx->http);
    int rc = es_http_send(ctx->http, &rq, &resp, err);
    if (rc == ES_OK) {
        rc = es_http_check(ctx->http, &resp, 0, "GET $metadata", err);
    }
    if (rc == ES_OK) {
        json_t *m = NULL;
        rc = es_sap_edmx_parse(resp.body.data ? resp.body.data : "", resp.body.len, &m, err);
        if (rc == ES_OK) {
            json_object_set_new(ctx->meta, service, m);
            *out = m;
        } else {
            es_err_prefix(err, "service %s", service);
        }
    }
    es_http_resp_release(&resp);
    es_free(url);
    return rc;
}

static int entity_meta(struct sap_ctx *ctx, const char *set, const char **service, json_t **out,
                       struct es_err *err)
{
    if (!valid_set(set)) {
        return es_err_set(err, ES_EINVAL, "'%s' is not an OData entity set name", set);
    }
    int rc = service_of(ctx, set, service, err);
    json_t *m = NULL;
    if (rc == ES_OK) {
        rc = service_meta(ctx, *service, &m, err);
    }
    if (rc != ES_OK) {
        return rc;
    }
    *out = json_object_get(m, set);
    if (!*out) {
        return es_err_set(err, ES_ENOTFOUND, "entity set %s is not in service %s", set, *service);
    }
    return ES_OK;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

/* options.expand: {EntitySet: "to_Nav[,to_Other/to_Deeper]"}: navigation properties read
 * inline with every record of that set ($expand) on change and page reads, e.g. a price
 * condition record with its validity (material). Names only: letters, digits, _ , and /. */
static int check_expand(const struct es_node *x, struct es_err *err)
{
    if (x->kind != ES_NODE_MAP) {
        return es_err_set(err, ES_ECONFIG,
                          "%s:%d:%d: option 'expand' maps entity sets to navigation properties",
                          x->file, x->line, x->col);
    }
    for (size_t i = 0; i < x->count; i++) {
        const struct es_node *v = x->pairs[i].value;
        int ok = v->kind == ES_NODE_SCALAR && v->str && *v->str && valid_set(x->pairs[i].key->str);
        for (const char *p = ok ? v->str : ""; ok && *p; p++) {
            ok = isalnum((unsigned char)*p) || *p == '_' || *p == ',' || *p == '/';
        }
        if (!ok) {
            return es_err_set(err, ES_ECONFIG,
                              "%s:%d:%d: expand: '%s' must name navigation properties like "
                              "to_SlsPrcgCndnRecdValidity",
                              v->file, v->line, v->col, x->pairs[i].key->str);
        }
    }
    return ES_OK;
}

/* Appends &$expand=... for object when options.expand names it. */
static void add_expand(const struct sap_ctx *ctx, const char *object, struct es_buf *q)
{
    const struct es_node *v = ctx->expand ? es_node_get(ctx->expand, object) : NULL;
    if (v && v->kind == ES_NODE_SCALAR) {
        (void)es_buf_printf(q, "&$expand=%s", v->str);
    }
}

static const char *const sap_options[] = {"services",   "service_root", "page_size",
                                          "sap_client", "credit_check", "overlap",
                                          "batch",      "expand",       NULL};

static int sap_init(struct es_conn *c, struct es_err *err)
{
    struct sap_ctx *ctx = c->ctx;
    ctx->c = c;
    ctx->root = "/sap/opu/odata/sap/";
    ctx->page_size = 1000;
    ctx->credit_check = 1;
    ctx->overlap_ms = 5000;
    ctx->batch = 1;
    const struct es_node *o = c->cfg->options;
    int rc = es_http_options_check(o, sap_options, "sap_odata", err);
    if (rc == ES_OK) {
        rc = es_http_opt_str(o, "service_root", &ctx->root, err);
    }
    if (rc == ES_OK) {
        rc = es_http_opt_str(o, "sap_client", &ctx->sap_client, err);
    }
    if (rc == ES_OK) {
        rc = es_http_opt_int(o, "page_size", 1, 5000, &ctx->page_size, err);
    }
    if (rc == ES_OK) {
        rc = es_http_opt_bool(o, "credit_check", &ctx->credit_check, err);
    }
    if (rc == ES_OK) {
        rc = es_http_opt_duration(o, "overlap", &ctx->overlap_ms, err);
    }
    if (rc == ES_OK) {
        rc = es_http_opt_bool(o, "batch", &ctx->batch, err);
    }
    if (rc == ES_OK && o && (ctx->services = es_node_get(o, "services")) != NULL) {
        const struct es_node *s = ctx->services;
        if (s->kind != ES_NODE_MAP) {
            rc = es_err_set(err, ES_ECONFIG,
                            "%s:%d:%d: option 'services' maps entity sets to service names",
                            s->file, s->line, s->col);
        }
        for (size_t i = 0; rc == ES_OK && i < s->count; i++) {
            const struct es_node *v = s->pairs[i].value;
            if (v->kind != ES_NODE_SCALAR || !valid_set(v->str) ||
                !valid_set(s->pairs[i].key->str)) {
                rc = es_err_set(err, ES_ECONFIG,
                                "%s:%d:%d: services: '%s' must map to a service name like "
                                "API_SALES_ORDER_SRV",
                                v->file, v->line, v->col, s->pairs[i].key->str);
            }
        }
    }
    if (rc == ES_OK && o && (ctx->expand = es_node_get(o, "expand")) != NULL) {
        rc = check_expand(ctx->expand, err);
    }
    if (rc == ES_OK && (ctx->root[0] != '/' || ctx->root[strlen(ctx->root) - 1] != '/')) {
        rc = es_err_set(err, ES_ECONFIG, "system '%s': service_root must start and end with '/'",
                        c->cfg->name);
    }
    if (rc != ES_OK) {
        return rc;
    }
    rc = es_http_new(c->cfg, &ctx->http, err);
    if (rc != ES_OK) {
        return rc;
    }
    es_http_set_error_hook(ctx->http, sap_error_hook, ctx);
    ctx->meta = json_object();
    return ES_OK;
}

static void sap_fini(struct es_conn *c)
{
    struct sap_ctx *ctx = c->ctx;
    if (!ctx) {
        return;
    }
    es_http_free(ctx->http);
    es_free(ctx->csrf);
    es_free(ctx->csrf_service);
    json_decref(ctx->meta);
}

static int sap_ping(struct es_conn *c, struct es_err *err)
{
    struct sap_ctx *ctx = c->ctx;
    const char *svc = NULL;
    int rc = service_of(ctx, "A_BusinessPartner", &svc, err);
    json_t *m = NULL;
    return rc == ES_OK ? service_meta(ctx, svc, &m, err) : rc;
}

static int sap_describe(struct es_conn *c, const char *object, json_t **out, struct es_err *err)
{
    struct sap_ctx *ctx = c->ctx;
    if (!object) {
        /* Every set of every service we know of (default table and options.services). */
        json_t *names = json_array();
        json_t *seen = json_object();
        const char *svcs[64];
        size_t ns = 0;
        for (size_t i = 0; i < ES_ARRAY_LEN(default_services) && ns < 64; i++) {
            svcs[ns++] = default_services[i].service;
        }
        for (size_t i = 0; ctx->services && i < ctx->services->count && ns < 64; i++) {
            svcs[ns++] = ctx->services->pairs[i].value->str;
        }
        int rc = ES_OK;
        for (size_t i = 0; i < ns && rc == ES_OK; i++) {
            if (json_object_get(seen, svcs[i])) {
                continue;
            }
            json_object_set_new(seen, svcs[i], json_true());
            json_t *m = NULL;
            struct es_err e2;
            es_err_clear(&e2);
            int r2 = service_meta(ctx, svcs[i], &m, &e2);
            if (r2 == ES_ENOTFOUND) {
                continue; /* this system does not expose that service */
            }
            if (r2 != ES_OK) {
                rc = r2;
                if (err) {
                    *err = e2;
                }
                break;
            }
            const char *k;
            json_t *v;
            json_object_foreach(m, k, v)
            {
                json_array_append_new(names, json_string(k));
            }
        }
        json_decref(seen);
        if (rc != ES_OK) {
            json_decref(names);
            return rc;
        }
        *out = json_pack("{s:o}", "objects", names);
        return ES_OK;
    }
    const char *svc;
    json_t *set = NULL;
    int rc = entity_meta(ctx, object, &svc, &set, err);
    if (rc != ES_OK) {
        return rc;
    }
    *out = json_pack("{s:s, s:s, s:O, s:O}", "name", object, "service", svc, "keys",
                     json_object_get(set, "keys"), "fields", json_object_get(set, "fields"));
    return ES_OK;
}

/* ---- reading ------------------------------------------------------------------------ */

static const char *single_key(json_t *set)
{
    json_t *keys = json_object_get(set, "keys");
    return json_array_size(keys) == 1 ? json_string_value(json_array_get(keys, 0)) : NULL;
}

/* The record's key text: the value of a single key, or "A='x',B='y'" for composite keys. */
static char *record_key(json_t *set, json_t *r)
{
    json_t *keys = json_object_get(set, "keys");
    struct es_buf b;
    es_buf_init(&b, 0);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        json_t *v = json_object_get(r, json_string_value(k));
        const char *s = json_string_value(v);
        char num[32];
        if (!s && json_is_integer(v)) {
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
            s = num;
        }
        if (!s) {
            es_buf_release(&b);
            return NULL;
        }
        if (json_array_size(keys) == 1) {
            (void)es_buf_puts(&b, s);
        } else {
            (void)es_buf_printf(&b, "%s%s=", i ? "," : "", json_string_value(k));
            (void)es_sap_key_literal(&b, s);
        }
    }
    return es_buf_detach(&b, NULL);
}

/* Reads pages starting at url into out until limit records or the end. Sets *more when the
 * server had more (limit reached before the end). */
static int read_feed(struct sap_ctx *ctx, json_t *set, char *url, size_t limit, int fingerprint,
                     struct es_batch *out, int64_t *last_ts, char **last_key, int *more,
                     struct es_err *err)
{
    int rc = ES_OK;
    size_t got = 0;
    *more = 0;
    while (url) {
        json_t *j = NULL;
        rc = get_json(ctx, url, &j, NULL, err);
        es_free(url);
        url = NULL;
        if (rc != ES_OK) {
            json_decref(j);
            break;
        }
        json_t *d = unwrap_d(j);
        json_t *res = json_is_array(d) ? d : json_object_get(d, "results");
        if (!json_is_array(res)) {
            json_decref(j);
            rc = es_err_set(err, ES_EPROTOCOL, "OData feed has no results array");
            break;
        }
        size_t i;
        json_t *r;
        json_array_foreach(res, i, r)
        {
            char *key = record_key(set, r);
            if (!key) {
                json_decref(j);
                return es_err_set(err, ES_EPROTOCOL, "OData record without its key fields");
            }
            char ver[40] = "";
            if (fingerprint) {
                es_sap_fingerprint(r, ver);
            } else {
                int64_t ts;
                const char *lc = json_string_value(json_object_get(r, "LastChangeDateTime"));
                if (lc && es_sap_parse_date(lc, &ts) == ES_OK) {
                    es_clock_iso8601(ts, ver, sizeof ver);
                    *last_ts = ts;
                } else {
                    es_sap_fingerprint(r, ver); /* never changed: no stamp yet */
                }
            }
            /* the page is dropped after this loop: take the record, no copy */
            json_t *data = json_incref(r);
            json_object_del(data, "__metadata");
            es_batch_add(out, key, ver, 0, data);
            es_free(*last_key);
            *last_key = key;
            got++;
        }
        const char *next = json_string_value(json_object_get(d, "__next"));
        if (next && got < limit) {
            url = es_xstrdup(next);
        } else if (next) {
            *more = 1;
        }
        json_decref(j);
    }
    es_free(url);
    return rc;
}

static int sap_read_changes(struct es_conn *c, const char *object, const char *watermark,
                            size_t limit, struct es_batch *out, struct es_err *err)
{
    struct sap_ctx *ctx = c->ctx;
    const char *svc;
    json_t *set = NULL;
    int rc = entity_meta(ctx, object, &svc, &set, err);
    if (rc != ES_OK) {
        return rc;
    }
    if (!limit) {
        limit = (size_t)ctx->page_size;
    }
    const char *key = single_key(set);
    int by_time = json_is_true(json_object_get(set, "has_lastchange"));
    struct es_buf q;
    es_buf_init(&q, 0);
    int64_t ts = -1;
    char kbuf[128] = "";
    long long offset = 0;
    if (by_time) {
        if (watermark && *watermark) {
            const char *bar = strchr(watermark, '|');
            char tsb[40];
            if (!bar || (size_t)(bar - watermark) >= sizeof tsb) {
                es_buf_release(&q);
                return es_err_set(err, ES_EINVAL, "watermark '%.60s' is not 'ts|key'", watermark);
            }
            memcpy(tsb, watermark, (size_t)(bar - watermark));
            tsb[bar - watermark] = '\0';
            if (es_sap_parse_date(tsb, &ts) != ES_OK || strlen(bar + 1) >= sizeof kbuf) {
                es_buf_release(&q);
                return es_err_set(err, ES_EINVAL, "watermark '%.60s' is not 'ts|key'", watermark);
            }
            es_strlcpy(kbuf, bar + 1, sizeof kbuf);
        }
        (void)es_buf_printf(&q, "%s?$orderby=LastChangeDateTime%s%s&$top=%zu", object,
                            key ? "," : "", key ? key : "", limit);
        if (ts >= 0) {
            char iso[40];
            es_clock_iso8601(ts, iso, sizeof iso);
            struct es_buf f;
            es_buf_init(&f, 0);
            if (key && kbuf[0]) {
                (void)es_buf_printf(&f,
                                    "LastChangeDateTime gt datetimeoffset'%s' or "
                                    "(LastChangeDateTime eq datetimeoffset'%s' and %s gt ",
                                    iso, iso, key);
                (void)es_sap_key_literal(&f, kbuf);
                (void)es_buf_putc(&f, ')');
            } else {
                (void)es_buf_printf(&f, "LastChangeDateTime ge datetimeoffset'%s'", iso);
            }
            (void)es_buf_puts(&q, "&$filter=");
            (void)es_http_escape(&q, f.data);
            es_buf_release(&f);
        }
    } else {
        if (watermark && *watermark) {
            char *end = NULL;
            if (strncmp(watermark, "fp:", 3) != 0 ||
                (offset = strtoll(watermark + 3, &end, 10)) < 0 || !end || *end) {
                es_buf_release(&q);
                return es_err_set(err, ES_EINVAL, "watermark '%.60s' is not 'fp:<offset>'",
                                  watermark);
            }
        }
        json_t *keys = json_object_get(set, "keys");
        (void)es_buf_printf(&q, "%s?$top=%zu&$skip=%lld&$orderby=", object, limit, offset);
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k)
        {
            (void)es_buf_printf(&q, "%s%s", i ? "," : "", json_string_value(k));
        }
    }
    add_expand(ctx, object, &q);
    char *url = svc_url(ctx, svc, q.data, 1);
    es_buf_release(&q);
    int64_t last_ts = ts;
    char *last_key = NULL;
    int more = 0;
    size_t before = out->count;
    rc = read_feed(ctx, set, url, limit, !by_time, out, &last_ts, &last_key, &more, err);
    size_t got = out->count - before;
    es_free(out->watermark);
    out->watermark = NULL;
    if (rc == ES_OK) {
        char iso[40];
        if (!by_time) {
            out->watermark = (got < limit && !more)
                                 ? es_xstrdup("fp:0")
                                 : es_xasprintf("fp:%lld", offset + (long long)got);
        } else if (got == 0) {
            out->watermark = es_xstrdup(watermark ? watermark : "");
        } else if (got < limit && !more && ctx->overlap_ms > 0 && last_ts >= 0) {
            es_clock_iso8601(last_ts - ctx->overlap_ms, iso, sizeof iso);
            out->watermark = es_xasprintf("%s|", iso);
        } else if (last_ts >= 0) {
            es_clock_iso8601(last_ts, iso, sizeof iso);
            out->watermark = es_xasprintf("%s|%s", iso, key && last_key ? last_key : "");
        } else {
            out->watermark = es_xstrdup(watermark ? watermark : "");
        }
    }
    es_free(last_key);
    return rc;
}

static int sap_read_page(struct es_conn *c, const char *object, const char *page, size_t limit,
                         struct es_batch *out, struct es_err *err)
{
    struct sap_ctx *ctx = c->ctx;
    const char *svc;
    json_t *set = NULL;
    int rc = entity_meta(ctx, object, &svc, &set, err);
    if (rc != ES_OK) {
        return rc;
    }
    if (!limit) {
        limit = (size_t)ctx->page_size;
    }
    long long skip = 0;
    if (page && *page) {
        char *end = NULL;
        skip = strtoll(page, &end, 10);
        if (skip < 0 || !end || *end) {
            return es_err_set(err, ES_EINVAL, "page token '%.40s' is not an offset", page);
        }
    }
    struct es_buf q;
    es_buf_init(&q, 0);
    (void)es_buf_printf(&q, "%s?$top=%zu&$skip=%lld&$orderby=", object, limit, skip);
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(set, "keys"), i, k)
    {
        (void)es_buf_printf(&q, "%s%s", i ? "," : "", json_string_value(k));
    }
    add_expand(ctx, object, &q);
    char *url = svc_url(ctx, svc, q.data, 1);
    es_buf_release(&q);
    int64_t ts = -1;
    char *last_key = NULL;
    int more = 0;
    size_t before = out->count;
    rc = read_feed(ctx, set, url, limit, 1, out, &ts, &last_key, &more, err);
    es_free(last_key);
    size_t got = out->count - before;
    es_free(out->next_page);
    out->next_page = (rc == ES_OK && (got >= limit || more))
                         ? es_xasprintf("%lld", skip + (long long)got)
                         : NULL;
    return rc;
}

/* GET Set(key): the entity and its ETag (header or __metadata.etag). */
static int read_entity(struct sap_ctx *ctx, const char *svc, const char *object, const char *id,
                       json_t **out, char **etag, struct es_err *err)
{
    struct es_buf p;
    es_buf_init(&p, 0);
    (void)es_buf_printf(&p, "%s(", object);
    (void)es_sap_key_literal(&p, id);
    (void)es_buf_putc(&p, ')');
    char *url = svc_url(ctx, svc, p.data, 1);
    es_buf_release(&p);
    struct es_http_resp resp;
    es_http_resp_init(&resp, ctx->http);
    json_t *j = NULL;
    int rc = get_json(ctx, url, &j, &resp, err);
    es_free(url);
    if (rc == ES_OK && !json_is_object(unwrap_d(j))) {
        rc = es_err_set(err, ES_EPROTOCOL, "entity answer is not an object");
    }
    if (rc == ES_OK) {
        json_t *d = json_incref(unwrap_d(j));
        if (etag) {
            const char *h = es_http_resp_header(&resp, "etag");
            const char *m =
                json_string_value(json_object_get(json_object_get(d, "__metadata"), "etag"));
            *etag = h ? es_xstrdup(h) : m ? es_xstrdup(m) : NULL;
        }
        json_object_del(d, "__metadata");
        *out = d;
    }
    json_decref(j);
    es_http_resp_release(&resp);
    return rc;
}

static int sap_get(struct es_conn *c, const char *object, const char *id, json_t **out,
                   struct es_err *err)
{
    struct sap_ctx *ctx = c->ctx;
    const char *svc;
    int rc = service_of(ctx, object, &svc, err);
    if (rc == ES_OK && !valid_set(object)) {
        rc = es_err_set(err, ES_EINVAL, "'%s' is not an entity set name", object);
    }
    return rc == ES_OK ? read_entity(ctx, svc, object, id, out, NULL, err) : rc;
}

/* ---- writing ------------------------------------------------------------------------ */

static int fetch_csrf(struct sap_ctx *ctx, const char *svc, struct es_err *err)
{
    char *url = svc_url(ctx, svc, "", 1);
    static const char *const hdrs[] = {"X-CSRF-Token: Fetch", NULL};
    struct es_http_req_opts rq = {.method = "GET", .url = url, .headers = hdrs};
    struct es_http_resp resp;
    es_http_resp_init(&resp, ctx->http);
    int rc = es_http_send(ctx->http, &rq, &resp, err);
    if (rc == ES_OK) {
        rc = es_http_check(ctx->http, &resp, 0, "CSRF token fetch", err);
    }
    const char *tok = es_http_resp_header(&resp, "x-csrf-token");
    if (rc == ES_OK && (!tok || !*tok || strcasecmp(tok, "Required") == 0)) {
        rc = es_err_set(err, ES_EPROTOCOL, "service %s gave no CSRF token", svc);
    }
    if (rc == ES_OK) {
        es_log_add_secret(tok);
        es_free(ctx->csrf);
        es_free(ctx->csrf_service);
        ctx->csrf = es_xstrdup(tok);
        ctx->csrf_service = es_xstrdup(svc);
    }
    es_http_resp_release(&resp);
    es_free(url);
    return rc;
}

/* A modifying request with the CSRF handshake: fetches a token when none is held and once
 * more when the answer is 403 with x-csrf-token: Required. */
static int modify(struct sap_ctx *ctx, const char *svc, const char *method, const char *url,
                  const char *body, const char *if_match, const char *ctype,
                  struct es_http_resp *resp, struct es_err *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ctx->csrf || strcmp(ctx->csrf_service, svc) != 0) {
            int rc = fetch_csrf(ctx, svc, err);
            if (rc != ES_OK) {
                return rc;
            }
        }
        char *tokh = es_xasprintf("X-CSRF-Token: %s", ctx->csrf);
        char *imh = if_match ? es_xasprintf("If-Match: %s", if_match) : NULL;
        const char *hdrs[3] = {tokh, imh, NULL};
        struct es_http_req_opts rq = {
            .method = method,
            .url = url,
            .headers = hdrs,
            .body = body,
            .body_len = body ? strlen(body) : 0,
            .content_type = ctype,
        };
        int rc = es_http_send(ctx->http, &rq, resp, err);
        es_free(tokh);
        es_free(imh);
        if (rc != ES_OK) {
            return rc;
        }
        const char *need = es_http_resp_header(resp, "x-csrf-token");
        if (resp->status == 403 && need && strcasecmp(need, "Required") == 0 && attempt == 0) {
            struct es_log_ctx lctx = {NULL, ctx->c->cfg->name};
            es_log(&lctx, ES_LOG_INFO, "CSRF token expired; fetching a new one");
            es_free(ctx->csrf);
            ctx->csrf = NULL;
            continue;
        }
        break;
    }
    return ES_OK;
}

static void fail_result(struct es_write_result *r, const struct es_err *e)
{
    es_err_clear(&r->err);
    r->err = *e;
    r->code = e->code;
}

/* Looks the entity up by its external-id field; *id is NULL when absent. */
static int find_by_external(struct sap_ctx *ctx, const char *svc, json_t *set, const char *object,
                            const char *field, const char *value, char **id, struct es_err *err)
{
    *id = NULL;
    struct es_buf f, q;
    es_buf_init(&f, 0);
    es_buf_init(&q, 0);
    (void)es_buf_printf(&f, "%s eq ", field);
    (void)es_sap_key_literal(&f, value);
    (void)es_buf_printf(&q, "%s?$top=2&$filter=", object);
    (void)es_http_escape(&q, f.data);
    char *url = svc_url(ctx, svc, q.data, 1);
    es_buf_release(&f);
    es_buf_release(&q);
    json_t *j = NULL;
    int rc = get_json(ctx, url, &j, NULL, err);
    es_free(url);
    if (rc == ES_OK) {
        json_t *d = unwrap_d(j);
        json_t *res = json_is_array(d) ? d : json_object_get(d, "results");
        if (!json_is_array(res)) {
            rc = es_err_set(err, ES_EPROTOCOL, "OData feed has no results array");
        } else if (json_array_size(res) > 1) {
            rc = es_err_set(err, ES_EDUPLICATE, "%s: several records have %s = '%s'", object, field,
                            value);
        } else if (json_array_size(res) == 1) {
            *id = record_key(set, json_array_get(res, 0));
        }
    }
    json_decref(j);
    return rc;
}

/* After a sales order create: reads credit and delivery block back. */
static void check_order(struct sap_ctx *ctx, const char *svc, const char *id,
                        const struct es_http_resp *create_resp, struct es_write_result *r)
{
    json_t *o = NULL;
    struct es_err e;
    es_err_clear(&e);
    if (read_entity(ctx, svc, "A_SalesOrder", id, &o, NULL, &e) != ES_OK) {
        /* The order exists; the read-back failing is reported but does not undo it. */
        r->readback = json_pack("{s:s}", "readback_error", e.msg);
        return;
    }
    const char *credit = json_string_value(json_object_get(o, "TotalCreditCheckStatus"));
    const char *dblock = json_string_value(json_object_get(o, "DeliveryBlockReason"));
    const char *tblock = json_string_value(json_object_get(o, "TotalBlockStatus"));
    r->readback = json_pack("{s:s, s:s, s:s}", "TotalCreditCheckStatus", credit ? credit : "",
                            "DeliveryBlockReason", dblock ? dblock : "", "TotalBlockStatus",
                            tblock ? tblock : "");
    int blocked = (credit && strcmp(credit, "B") == 0) || (dblock && *dblock);
    if (blocked) {
        char code[64] = "", msg[256] = "";
        const char *sm = es_http_resp_header(create_resp, "sap-message");
        if (sm) {
            json_error_t je;
            json_t *m = json_loads(sm, 0, &je);
            const char *c = json_string_value(json_object_get(m, "code"));
            const char *t = json_string_value(json_object_get(m, "message"));
            es_strlcpy(code, c ? c : "", sizeof code);
            es_strlcpy(msg, t ? t : sm, sizeof msg);
            json_decref(m);
        }
        if (!msg[0]) {
            snprintf(msg, sizeof msg, "Sales order %s is blocked (credit status %s%s%s)", id,
                     credit ? credit : "-", dblock && *dblock ? ", delivery block " : "",
                     dblock && *dblock ? dblock : "");
        }
        r->code = ES_EREJECTED;
        es_err_set(&r->err, ES_EREJECTED, "SAP saved sales order %s but blocked it", id);
        es_err_remote(&r->err, create_resp->status, code[0] ? code : "CREDIT_BLOCK", msg);
        es_err_hint(&r->err, "a credit controller must release the order in SAP (credit "
                             "management), or the customer's credit limit must be raised");
    }
    json_decref(o);
}

static void finish_create(struct sap_ctx *ctx, const char *svc, json_t *set, const char *object,
                          const struct es_http_resp *resp, struct es_write_result *r);

/* POST to path (the entity set, or a parent's navigation property "Set('k')/to_Nav"). */
static int create_at(struct sap_ctx *ctx, const char *svc, json_t *set, const char *object,
                     const char *path, const struct es_write *w, struct es_write_result *r,
                     struct es_err *err)
{
    char *body = json_dumps(w->data, JSON_COMPACT);
    char *url = svc_url(ctx, svc, path, 1);
    struct es_http_resp resp;
    es_http_resp_init(&resp, ctx->http);
    int rc = modify(ctx, svc, "POST", url, body, NULL, NULL, &resp, err);
    free(body); /* checksrc: ok (jansson allocates with malloc) */
    es_free(url);
    if (rc != ES_OK) {
        es_http_resp_release(&resp);
        return rc;
    }
    finish_create(ctx, svc, set, object, &resp, r);
    es_http_resp_release(&resp);
    return ES_OK;
}

static int do_create(struct sap_ctx *ctx, const char *svc, json_t *set, const char *object,
                     const struct es_write *w, struct es_write_result *r, struct es_err *err)
{
    return create_at(ctx, svc, set, object, object, w, r, err);
}

/* The result of a create from its answer (a plain one, or a $batch part's). */
static void finish_create(struct sap_ctx *ctx, const char *svc, json_t *set, const char *object,
                          const struct es_http_resp *resp, struct es_write_result *r)
{
    struct es_err e;
    es_err_clear(&e);
    json_t *j = NULL;
    if (es_http_check(ctx->http, resp, 1, "POST create", &e) != ES_OK) {
        fail_result(r, &e);
    } else {
        json_error_t je;
        j = resp->body.len ? json_loadb(resp->body.data, resp->body.len, 0, &je) : NULL;
        char *id = j ? record_key(set, unwrap_d(j)) : NULL;
        if (!id) {
            es_err_set(&e, ES_EPROTOCOL, "create answered %ld without the new key", resp->status);
            fail_result(r, &e);
        } else {
            r->code = ES_OK;
            r->created = 1;
            r->target_id = id;
            if (ctx->credit_check && strcmp(object, "A_SalesOrder") == 0) {
                check_order(ctx, svc, id, resp, r);
            }
        }
    }
    json_decref(j);
}

/* Scalars only: OData v2 has no deep update, navigation properties stay untouched. */
static json_t *update_body(json_t *data, json_t *set)
{
    json_t *b = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(data, k, v)
    {
        if (json_is_object(v) || json_is_array(v) || strcmp(k, "__metadata") == 0) {
            continue;
        }
        int is_key = 0;
        size_t i;
        json_t *kv;
        json_array_foreach(json_object_get(set, "keys"), i, kv)
        {
            is_key |= strcmp(json_string_value(kv), k) == 0;
        }
        if (!is_key) {
            json_object_set(b, k, v);
        }
    }
    return b;
}

static int update_entity(struct sap_ctx *ctx, const char *svc, json_t *set, const char *object,
                         const char *id, json_t *data, struct es_write_result *r,
                         struct es_err *err)
{
    struct es_buf p;
    es_buf_init(&p, 0);
    (void)es_buf_printf(&p, "%s(", object);
    (void)es_sap_key_literal(&p, id);
    (void)es_buf_putc(&p, ')');
    char *url = svc_url(ctx, svc, p.data, 0);
    es_buf_release(&p);
    json_t *ub = update_body(data, set);
    char *body = json_dumps(ub, JSON_COMPACT);
    json_decref(ub);
    struct es_http_resp resp;
    es_http_resp_init(&resp, ctx->http);
    int rc = ES_OK;
    struct es_err e;
    es_err_clear(&e);
    for (int attempt = 0; attempt < 2; attempt++) {
        json_t *cur = NULL;
        char *etag = NULL;
        es_err_clear(&e);
        rc = read_entity(ctx, svc, object, id, &cur, &etag, &e);
        json_decref(cur);
        if (rc != ES_OK) {
            es_free(etag);
            if (rc == ES_ENOTFOUND || rc == ES_EPROTOCOL) {
                fail_result(r, &e);
                rc = ES_OK;
            } else {
                es_err_set(err, e.code, "%s", e.msg);
            }
            break;
        }
        rc = modify(ctx, svc, "PATCH", url, body, etag ? etag : "*", NULL, &resp, err);
        es_free(etag);
        if (rc != ES_OK) {
            break;
        }
        if (resp.status == 412 && attempt == 0) {
            continue; /* someone changed it since our read: read again, once */
        }
        es_err_clear(&e);
        if (es_http_check(ctx->http, &resp, 0, "PATCH update", &e) != ES_OK) {
            if (resp.status == 412) {
                es_err_hint(&e, "the record changed twice while erpsync wrote it");
            }
            fail_result(r, &e);
        } else {
            r->code = ES_OK;
            r->created = 0;
            r->target_id = es_xstrdup(id);
        }
        break;
    }
    free(body); /* checksrc: ok (jansson allocates with malloc) */
    es_free(url);
    es_http_resp_release(&resp);
    return rc;
}

/* Navigation properties updated through their own entity set (OData v2 has no deep update):
 * the child entity set of each. */
static const struct {
    const char *parent, *nav, *child;
} deep_navs[] = {
    {"A_BusinessPartner", "to_BusinessPartnerAddress", "A_BusinessPartnerAddress"},
    {"A_BusinessPartner", "to_BusinessPartnerRole", "A_BusinessPartnerRole"},
    {"A_SalesOrder", "to_Item", "A_SalesOrderItem"},
    {"A_Product", "to_Description", "A_ProductDescription"},
};

static json_t *nav_list(json_t *v)
{
    if (json_is_object(v) && json_is_array(json_object_get(v, "results"))) {
        return json_object_get(v, "results"); /* the OData v2 shape {"results": [...]} */
    }
    return json_is_array(v) ? v : NULL;
}

/* The children the parent has now under nav, in key order (GET Parent('k')/to_Nav?$orderby=
 * <child keys>). OUT: *out (an array), json_decref(). */
static int read_children(struct sap_ctx *ctx, const char *svc, const char *object, const char *id,
                         const char *nav, json_t *cset, json_t **out, struct es_err *err)
{
    *out = NULL;
    struct es_buf p, o;
    es_buf_init(&p, 0);
    es_buf_init(&o, 0);
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(cset, "keys"), i, k)
    {
        (void)es_buf_printf(&o, "%s%s", i ? "," : "", json_string_value(k));
    }
    (void)es_buf_printf(&p, "%s(", object);
    (void)es_sap_key_literal(&p, id);
    (void)es_buf_printf(&p, ")/%s", nav);
    if (o.len) {
        (void)es_buf_puts(&p, "?$orderby=");
        (void)es_http_escape(&p, o.data);
    }
    char *url = svc_url(ctx, svc, p.data, 1);
    es_buf_release(&p);
    es_buf_release(&o);
    json_t *j = NULL;
    int rc = get_json(ctx, url, &j, NULL, err);
    es_free(url);
    if (rc == ES_OK) {
        json_t *d = unwrap_d(j);
        json_t *res = json_is_array(d) ? d : json_object_get(d, "results");
        if (!json_is_array(res)) {
            rc = es_err_set(err, ES_EPROTOCOL, "%s('%s')/%s: OData feed has no results array",
                            object, id, nav);
        } else if (json_object_get(d, "__next")) {
            rc = es_err_set(err, ES_EPROTOCOL,
                            "%s('%s')/%s: more children than one page, not matched", object, id,
                            nav);
        } else {
            *out = json_incref(res);
        }
    }
    json_decref(j);
    return rc;
}

/* Deep update: after the header, each child of a known navigation property is updated in its
 * own entity set with If-Match (read first; one re-read on 412). Children are matched to the
 * parent's existing ones (read once per navigation property, in key order): a child with its
 * key updates that one; a child without its key takes the next existing child that no mapped
 * child claimed by key, by position (the first keyless address updates the first existing
 * address), and only keyless children beyond the existing count are created (through the
 * parent's navigation property). The parent's key fields are filled in. The first failing
 * child fails the record (the header and earlier children stay written: SAP has no
 * transaction across calls; the retry writes the same values again). */
static int update_children(struct sap_ctx *ctx, const char *svc, json_t *set, const char *object,
                           const char *id, json_t *data, struct es_write_result *r,
                           struct es_err *err)
{
    json_t *pkeys = json_object_get(set, "keys");
    for (size_t i = 0; i < ES_ARRAY_LEN(deep_navs) && r->code == ES_OK; i++) {
        json_t *kids = strcmp(deep_navs[i].parent, object) == 0
                           ? nav_list(json_object_get(data, deep_navs[i].nav))
                           : NULL;
        if (!json_array_size(kids)) {
            continue;
        }
        const char *csvc = NULL;
        json_t *cset = NULL;
        struct es_err e;
        es_err_clear(&e);
        int rc = entity_meta(ctx, deep_navs[i].child, &csvc, &cset, &e);
        json_t *have = NULL;
        if (rc == ES_OK) {
            rc = read_children(ctx, svc, object, id, deep_navs[i].nav, cset, &have, &e);
        }
        if (rc != ES_OK) {
            if (rc == ES_ECONFIG || rc == ES_ENOTFOUND || rc == ES_EPROTOCOL) {
                fail_result(r, &e);
                return ES_OK;
            }
            es_err_set(err, e.code, "%s", e.msg);
            if (err) {
                es_err_remote(err, e.http_status, e.remote_code, e.remote_msg);
                err->retry_after = e.retry_after;
            }
            return rc;
        }
        size_t nh = json_array_size(have);
        char **hkeys = es_xmalloc((nh ? nh : 1) * sizeof *hkeys);
        unsigned char *claimed = es_xmalloc(nh ? nh : 1);
        for (size_t h = 0; h < nh; h++) {
            hkeys[h] = record_key(cset, json_array_get(have, h));
            claimed[h] = 0;
        }
        /* the mapped children: the parent's key filled in, keyed ones claim theirs */
        size_t nk = json_array_size(kids);
        json_t **cds = es_xmalloc(nk * sizeof *cds);
        char **cids = es_xmalloc(nk * sizeof *cids);
        for (size_t k = 0; k < nk; k++) {
            json_t *kid = json_array_get(kids, k);
            cds[k] = json_is_object(kid) ? json_deep_copy(kid) : NULL;
            cids[k] = NULL;
            if (!cds[k]) {
                continue;
            }
            if (json_array_size(pkeys) == 1) {
                const char *pk = json_string_value(json_array_get(pkeys, 0));
                if (!json_object_get(cds[k], pk)) {
                    json_object_set_new(cds[k], pk, json_string(id));
                }
            }
            cids[k] = record_key(cset, cds[k]);
            for (size_t h = 0; cids[k] && h < nh; h++) {
                if (hkeys[h] && strcmp(hkeys[h], cids[k]) == 0) {
                    claimed[h] = 1;
                }
            }
        }
        size_t next = 0;
        for (size_t k = 0; k < nk && rc == ES_OK && r->code == ES_OK; k++) {
            json_t *cd = cds[k];
            if (!cd) {
                continue;
            }
            if (!cids[k]) {
                while (next < nh && (claimed[next] || !hkeys[next])) {
                    next++;
                }
                if (next < nh) {
                    claimed[next] = 1;
                    cids[k] = es_xstrdup(hkeys[next]);
                }
            }
            struct es_write_result cr;
            memset(&cr, 0, sizeof cr);
            es_err_clear(&e);
            if (cids[k]) {
                rc = update_entity(ctx, csvc, cset, deep_navs[i].child, cids[k], cd, &cr, &e);
            } else {
                /* a new child: created through the parent's navigation property */
                struct es_write cw = {.key = "child", .data = cd};
                struct es_buf np;
                es_buf_init(&np, 0);
                (void)es_buf_printf(&np, "%s(", object);
                (void)es_sap_key_literal(&np, id);
                (void)es_buf_printf(&np, ")/%s", deep_navs[i].nav);
                rc = create_at(ctx, csvc, cset, deep_navs[i].child, np.data, &cw, &cr, &e);
                es_buf_release(&np);
            }
            if (rc != ES_OK) {
                es_err_set(err, e.code, "%s", e.msg);
                if (err) {
                    es_err_remote(err, e.http_status, e.remote_code, e.remote_msg);
                }
            } else if (cr.code != ES_OK) {
                struct es_err ce = cr.err;
                es_err_prefix(&ce, "%s %s updated, %s[%zu] failed", object, id, deep_navs[i].nav,
                              k);
                fail_result(r, &ce);
                es_free(r->target_id);
                r->target_id = NULL;
            }
            es_write_results_release(&cr, 1);
        }
        for (size_t k = 0; k < nk; k++) {
            json_decref(cds[k]);
            es_free(cids[k]);
        }
        for (size_t h = 0; h < nh; h++) {
            es_free(hkeys[h]);
        }
        es_free(cds);
        es_free(cids);
        es_free(hkeys);
        es_free(claimed);
        json_decref(have);
        if (rc != ES_OK) {
            return rc;
        }
    }
    return ES_OK;
}

static int do_update(struct sap_ctx *ctx, const char *svc, json_t *set, const char *object,
                     const char *id, const struct es_write *w, struct es_write_result *r,
                     struct es_err *err)
{
    int rc = update_entity(ctx, svc, set, object, id, w->data, r, err);
    if (rc == ES_OK && r->code == ES_OK) {
        rc = update_children(ctx, svc, set, object, id, w->data, r, err);
    }
    return rc;
}

static int do_delete(struct sap_ctx *ctx, const char *svc, const char *object, const char *id,
                     struct es_write_result *r, struct es_err *err)
{
    struct es_buf p;
    es_buf_init(&p, 0);
    (void)es_buf_printf(&p, "%s(", object);
    (void)es_sap_key_literal(&p, id);
    (void)es_buf_putc(&p, ')');
    char *url = svc_url(ctx, svc, p.data, 0);
    es_buf_release(&p);
    struct es_http_resp resp;
    es_http_resp_init(&resp, ctx->http);
    int rc = modify(ctx, svc, "DELETE", url, NULL, "*", NULL, &resp, err);
    if (rc == ES_OK) {
        struct es_err e;
        es_err_clear(&e);
        if (resp.status == 404 || es_http_check(ctx->http, &resp, 0, "DELETE", &e) == ES_OK) {
            r->code = ES_OK; /* already gone counts as done */
            r->target_id = es_xstrdup(id);
        } else {
            fail_result(r, &e);
        }
    }
    es_http_resp_release(&resp);
    es_free(url);
    return rc;
}

/* ---- $batch ------------------------------------------------------------------------- */

/* The boundary parameter of a multipart content type (case kept). */
static int boundary_of(const char *ctype, char *out, size_t cap)
{
    const char *b = ctype ? strstr(ctype, "boundary=") : NULL;
    if (!b) {
        return 0;
    }
    b += 9;
    int quoted = *b == '"';
    b += quoted;
    size_t n = 0;
    while (b[n] && b[n] != (quoted ? '"' : ';') && !(!quoted && (b[n] == ' ' || b[n] == '\r'))) {
        n++;
    }
    if (!n || n >= cap) {
        return 0;
    }
    memcpy(out, b, n);
    out[n] = '\0';
    return 1;
}

/* Finds the end of the header block at p: *hl = header length, *sl = separator length. */
static void head_split(const char *p, const char *end, size_t *hl, size_t *sl)
{
    for (const char *q = p; q < end; q++) {
        if (end - q >= 4 && !memcmp(q, "\r\n\r\n", 4)) {
            *hl = (size_t)(q - p), *sl = 4;
            return;
        }
        if (end - q >= 2 && !memcmp(q, "\n\n", 2)) {
            *hl = (size_t)(q - p), *sl = 2;
            return;
        }
    }
    *hl = (size_t)(end - p), *sl = 0;
}

int es_sap_multipart_split(const char *p, size_t len, const char *boundary,
                           struct es_sap_part *parts, size_t max)
{
    const char *end = p + len;
    char delim[160];
    int dn = snprintf(delim, sizeof delim, "--%s", boundary);
    if (dn <= 2 || (size_t)dn >= sizeof delim) {
        return -1;
    }
    size_t dl = (size_t)dn;
    const char *cur = memmem(p, len, delim, dl);
    size_t n = 0;
    while (cur) {
        cur += dl;
        if (end - cur >= 2 && cur[0] == '-' && cur[1] == '-') {
            return (int)n; /* closing delimiter */
        }
        while (cur < end && (*cur == ' ' || *cur == '\t' || *cur == '\r')) {
            cur++;
        }
        if (cur < end && *cur == '\n') {
            cur++;
        }
        const char *next = memmem(cur, (size_t)(end - cur), delim, dl);
        if (!next || n >= max) {
            return -1; /* cut short, or more parts than expected */
        }
        const char *pe = next;
        if (pe > cur && pe[-1] == '\n') {
            pe--;
        }
        if (pe > cur && pe[-1] == '\r') {
            pe--;
        }
        size_t hl, sl;
        head_split(cur, pe, &hl, &sl);
        parts[n].head = cur;
        parts[n].head_len = hl;
        parts[n].body = cur + hl + sl;
        parts[n].body_len = (size_t)(pe - parts[n].body);
        n++;
        cur = next;
    }
    return -1;
}

/* A header's value in a raw header block (copied, case kept). */
static int head_value(const char *h, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *end = h + len;
    for (const char *line = h; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        eol = eol ? eol : end;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < eol && *v == ' ') {
                v++;
            }
            size_t n = (size_t)(eol - v);
            while (n && (v[n - 1] == '\r' || v[n - 1] == ' ')) {
                n--;
            }
            n = n < cap ? n : cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
        line = eol + 1;
    }
    return 0;
}

int es_sap_http_message(const char *p, size_t len, struct es_http_resp *r)
{
    const char *end = p + len;
    int status = 0;
    if (len < 12 || strncmp(p, "HTTP/1.", 7) != 0 || sscanf(p + 8, " %3d", &status) != 1 ||
        status < 100 || status > 599) {
        return ES_EPROTOCOL;
    }
    const char *eol = memchr(p, '\n', len);
    if (!eol) {
        return ES_EPROTOCOL;
    }
    const char *h = eol + 1;
    size_t hl, sl;
    head_split(h, end, &hl, &sl);
    r->status = status;
    r->content_type[0] = '\0';
    es_buf_reset(&r->hdrs);
    es_buf_reset(&r->body);
    long long clen = -1;
    for (const char *line = h; line < h + hl;) {
        const char *le = memchr(line, '\n', (size_t)(h + hl - line));
        le = le ? le : h + hl;
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (colon) {
            const char *v = colon + 1;
            const char *ve = le;
            while (v < ve && *v == ' ') {
                v++;
            }
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) {
                ve--;
            }
            for (const char *c = line; c < colon; c++) {
                (void)es_buf_putc(&r->hdrs, (char)tolower((unsigned char)*c));
            }
            (void)es_buf_putc(&r->hdrs, '\0');
            (void)es_buf_append(&r->hdrs, v, (size_t)(ve - v));
            (void)es_buf_putc(&r->hdrs, '\0');
            if ((size_t)(colon - line) == 12 && strncasecmp(line, "content-type", 12) == 0) {
                size_t m = (size_t)(ve - v);
                m = m < sizeof r->content_type ? m : sizeof r->content_type - 1;
                for (size_t i = 0; i < m; i++) {
                    r->content_type[i] = (char)tolower((unsigned char)v[i]);
                }
                r->content_type[m] = '\0';
            } else if ((size_t)(colon - line) == 14 &&
                       strncasecmp(line, "content-length", 14) == 0) {
                clen = strtoll(v, NULL, 10);
            }
        }
        line = le + 1;
    }
    const char *body = h + hl + sl;
    size_t blen = sl ? (size_t)(end - body) : 0;
    if (clen >= 0 && (size_t)clen <= blen) {
        blen = (size_t)clen;
    } else if (clen >= 0) {
        return ES_EPROTOCOL; /* the part is shorter than it says */
    }
    return blen ? es_buf_append(&r->body, body, blen) : ES_OK;
}

/* One write waiting for the $batch: a create or an update (with the ETag read before). */
struct pend {
    size_t idx;
    int update;
    char *id;
    char *etag;
    char *body;
};

static void pend_free(struct pend *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        es_free(p[i].id);
        es_free(p[i].etag);
        free(p[i].body); /* checksrc: ok (jansson allocates with malloc) */
    }
    es_free(p);
}

/* Sends the pending writes as one $batch, one change set per record (so one failure rolls
 * back only its own record), and maps the answers back in order. A service without $batch
 * (404, 405, 501) gets the records one by one. */
static int run_batch(struct sap_ctx *ctx, const char *svc, json_t *set, const char *object,
                     const struct es_write *in, struct pend *pd, size_t np,
                     struct es_write_result *results, struct es_err *err)
{
    static unsigned long seq;
    char bnd[64];
    snprintf(bnd, sizeof bnd, "batch_%llx_%lu", (unsigned long long)es_clock_wall_ms(), ++seq);
    struct es_buf b;
    es_buf_init(&b, 0);
    for (size_t k = 0; k < np; k++) {
        const struct pend *p = &pd[k];
        (void)es_buf_printf(&b,
                            "--%s\r\nContent-Type: multipart/mixed; boundary=c_%s_%zu\r\n\r\n"
                            "--c_%s_%zu\r\nContent-Type: application/http\r\n"
                            "Content-Transfer-Encoding: binary\r\nContent-ID: %zu\r\n\r\n",
                            bnd, bnd, k, bnd, k, k + 1);
        if (p->update) {
            (void)es_buf_printf(&b, "PATCH %s(", object);
            (void)es_sap_key_literal(&b, p->id);
            (void)es_buf_printf(&b, ") HTTP/1.1\r\nIf-Match: %s\r\n", p->etag ? p->etag : "*");
        } else {
            (void)es_buf_printf(&b, "POST %s HTTP/1.1\r\n", object);
        }
        size_t bl = p->body ? strlen(p->body) : 0;
        (void)es_buf_printf(&b,
                            "Content-Type: application/json\r\nAccept: application/json\r\n"
                            "Content-Length: %zu\r\n\r\n%s\r\n--c_%s_%zu--\r\n",
                            bl, p->body ? p->body : "", bnd, k);
    }
    (void)es_buf_printf(&b, "--%s--\r\n", bnd);
    char ctype[100];
    snprintf(ctype, sizeof ctype, "multipart/mixed; boundary=%s", bnd);
    char *url = svc_url(ctx, svc, "$batch", 0);
    struct es_http_resp resp;
    es_http_resp_init(&resp, ctx->http);
    int rc = modify(ctx, svc, "POST", url, b.data, NULL, ctype, &resp, err);
    es_free(url);
    es_buf_release(&b);
    if (rc != ES_OK) {
        es_http_resp_release(&resp);
        return rc;
    }
    if (resp.status == 404 || resp.status == 405 || resp.status == 501) {
        struct es_log_ctx lctx = {NULL, ctx->c->cfg->name};
        es_log(&lctx, ES_LOG_INFO, "service %s has no $batch (HTTP %ld); writing one by one", svc,
               resp.status);
        ctx->no_batch = 1;
        es_http_resp_release(&resp);
        for (size_t k = 0; k < np && rc == ES_OK; k++) {
            struct es_write_result *r = &results[pd[k].idx];
            rc = pd[k].update ? do_update(ctx, svc, set, object, pd[k].id, &in[pd[k].idx], r, err)
                              : do_create(ctx, svc, set, object, &in[pd[k].idx], r, err);
        }
        return rc;
    }
    struct es_err e;
    es_err_clear(&e);
    char rb[128];
    struct es_sap_part *parts = es_xcalloc(np + 1, sizeof *parts);
    int nparts = -1;
    if (es_http_check(ctx->http, &resp, 0, "POST $batch", &e) == ES_OK) {
        if (!boundary_of(es_http_resp_header(&resp, "content-type"), rb, sizeof rb)) {
            es_err_set(&e, ES_EPROTOCOL, "$batch answered HTTP %ld without a multipart body",
                       resp.status);
        } else if ((nparts = es_sap_multipart_split(resp.body.data ? resp.body.data : "",
                                                    resp.body.len, rb, parts, np + 1)) < 0) {
            es_err_set(&e, ES_EPROTOCOL, "$batch answer is not a complete multipart body");
        }
    }
    for (size_t k = 0; k < np; k++) {
        struct es_write_result *r = &results[pd[k].idx];
        if (nparts < 0) {
            fail_result(r, &e); /* the batch as a whole was refused or unreadable */
            continue;
        }
        struct es_err pe;
        es_err_clear(&pe);
        struct es_http_resp sr;
        es_http_resp_init(&sr, ctx->http);
        int prc = ES_EPROTOCOL;
        if (k < (size_t)nparts) {
            const struct es_sap_part *pt = &parts[k];
            char pct[200], cb[128];
            struct es_sap_part inner;
            if (head_value(pt->head, pt->head_len, "Content-Type", pct, sizeof pct) &&
                strncasecmp(pct, "multipart/mixed", 15) == 0) {
                /* a change set that succeeded: its one operation */
                if (boundary_of(pct, cb, sizeof cb) &&
                    es_sap_multipart_split(pt->body, pt->body_len, cb, &inner, 1) == 1) {
                    prc = es_sap_http_message(inner.body, inner.body_len, &sr);
                }
            } else {
                prc = es_sap_http_message(pt->body, pt->body_len, &sr);
            }
        }
        if (prc != ES_OK) {
            es_err_set(&pe, ES_EPROTOCOL, "$batch answer has no readable response for record %zu",
                       pd[k].idx + 1);
            fail_result(r, &pe);
        } else if (!pd[k].update) {
            finish_create(ctx, svc, set, object, &sr, r);
        } else if (sr.status == 412) {
            /* changed since our read: the single path reads again and tries once more */
            es_http_resp_release(&sr);
            rc = do_update(ctx, svc, set, object, pd[k].id, &in[pd[k].idx], r, err);
            if (rc != ES_OK) {
                break;
            }
            continue;
        } else if (es_http_check(ctx->http, &sr, 0, "PATCH update", &pe) != ES_OK) {
            fail_result(r, &pe);
        } else {
            r->code = ES_OK;
            r->created = 0;
            r->target_id = es_xstrdup(pd[k].id);
        }
        es_http_resp_release(&sr);
    }
    es_free(parts);
    es_http_resp_release(&resp);
    return rc;
}

/* Whether data carries children of a navigation property we update through its own set. */
static int has_deep(const char *object, json_t *data)
{
    for (size_t i = 0; i < ES_ARRAY_LEN(deep_navs); i++) {
        if (strcmp(deep_navs[i].parent, object) == 0 &&
            json_array_size(nav_list(json_object_get(data, deep_navs[i].nav)))) {
            return 1;
        }
    }
    return 0;
}

static int sap_write_batch(struct es_conn *c, const char *object, enum es_write_op op,
                           const char *external_id, const struct es_write *in, size_t n,
                           struct es_write_result *results, struct es_err *err)
{
    struct sap_ctx *ctx = c->ctx;
    const char *svc = NULL;
    json_t *set = NULL;
    int rc = entity_meta(ctx, object, &svc, &set, err);
    if (rc == ES_OK && external_id && !valid_set(external_id)) {
        rc = es_err_set(err, ES_EINVAL, "'%s' is not a field name", external_id);
    }
    /* several creates/updates: collected, then sent as one $batch */
    int use_batch = n > 1 && ctx->batch && !ctx->no_batch && op != ES_WRITE_DELETE;
    struct pend *pd = use_batch ? es_xcalloc(n, sizeof *pd) : NULL;
    size_t np = 0;
    json_t *matches = json_object();
    size_t i = 0;
    for (; rc == ES_OK && i < n; i++) {
        struct es_write_result *r = &results[i];
        const struct es_write *w = &in[i];
        if (!json_is_object(w->data) && op != ES_WRITE_DELETE) {
            r->code = es_err_set(&r->err, ES_EPOISON, "record to write is not a JSON object");
            continue;
        }
        char *id = w->target_id ? es_xstrdup(w->target_id) : NULL;
        const char *match = w->match;
        if (!match && external_id) {
            match = json_string_value(json_object_get(w->data, external_id));
        }
        struct es_err e;
        es_err_clear(&e);
        if (use_batch && match && json_object_get(matches, match)) {
            /* the same external id twice: the first must exist before the second looks */
            rc = run_batch(ctx, svc, set, object, in, pd, np, results, err);
            pend_free(pd, np);
            pd = es_xcalloc(n, sizeof *pd);
            np = 0;
            json_object_clear(matches);
            if (rc != ES_OK) {
                es_free(id);
                break;
            }
        }
        if (use_batch && match) {
            json_object_set_new(matches, match, json_true());
        }
        if (!id && match && external_id && op != ES_WRITE_DELETE) {
            /* Idempotency: a create retried after a timeout finds the first one. */
            int frc = find_by_external(ctx, svc, set, object, external_id, match, &id, &e);
            if (frc == ES_EDUPLICATE || frc == ES_EPROTOCOL) {
                fail_result(r, &e);
                continue;
            }
            if (frc != ES_OK) {
                es_err_set(err, e.code, "%s", e.msg);
                if (err) {
                    es_err_remote(err, e.http_status, e.remote_code, e.remote_msg);
                    err->retry_after = e.retry_after;
                }
                rc = frc;
                break;
            }
            if (id && op == ES_WRITE_CREATE) {
                r->code = ES_OK;
                r->created = 0;
                r->target_id = id; /* created before (a retry): nothing to do */
                continue;
            }
        }
        if (op == ES_WRITE_DELETE) {
            if (!id) {
                r->code = ES_OK; /* nothing to delete */
            } else {
                rc = do_delete(ctx, svc, object, id, r, err);
            }
        } else if (id && op != ES_WRITE_CREATE && use_batch && !has_deep(object, w->data)) {
            /* the ETag now, the PATCH in the $batch */
            json_t *cur = NULL;
            char *etag = NULL;
            int grc = read_entity(ctx, svc, object, id, &cur, &etag, &e);
            json_decref(cur);
            if (grc == ES_ENOTFOUND || grc == ES_EPROTOCOL) {
                fail_result(r, &e);
                es_free(etag);
            } else if (grc != ES_OK) {
                es_err_set(err, e.code, "%s", e.msg);
                es_free(etag);
                rc = grc;
            } else {
                json_t *ub = update_body(w->data, set);
                pd[np++] = (struct pend){i, 1, id, etag, json_dumps(ub, JSON_COMPACT)};
                json_decref(ub);
                id = NULL;
            }
        } else if (id && op != ES_WRITE_CREATE) {
            rc = do_update(ctx, svc, set, object, id, w, r, err);
        } else if (op == ES_WRITE_UPDATE) {
            r->code = es_err_set(&r->err, ES_ENOTFOUND, "update of %s without a known key", object);
        } else if (use_batch) {
            pd[np++] = (struct pend){i, 0, NULL, NULL, json_dumps(w->data, JSON_COMPACT)};
        } else {
            rc = do_create(ctx, svc, set, object, w, r, err);
        }
        es_free(id);
    }
    if (rc == ES_OK && np) {
        rc = run_batch(ctx, svc, set, object, in, pd, np, results, err);
    }
    pend_free(pd, np);
    json_decref(matches);
    if (rc != ES_OK) {
        /* The batch as a whole failed (network, auth): every unfinished record carries it. */
        struct es_err whole;
        es_err_clear(&whole);
        if (err) {
            whole = *err;
        } else {
            es_err_set(&whole, (enum es_code)rc, "batch failed");
        }
        for (size_t k = 0; k < n; k++) {
            if (results[k].code == ES_OK && !results[k].target_id) {
                fail_result(&results[k], &whole);
            }
        }
    }
    return rc;
}

static const struct es_connector_ops sap_ops = {
    .init = sap_init,
    .fini = sap_fini,
    .ping = sap_ping,
    .describe = sap_describe,
    .read_changes = sap_read_changes,
    .read_page = sap_read_page,
    .get = sap_get,
    .write_batch = sap_write_batch,
};

const struct es_connector es_connector_sap_odata = {
    .abi = ES_CONNECTOR_ABI,
    .name = "sap_odata",
    .flags = ES_CONN_SOURCE | ES_CONN_SINK,
    .ctx_size = sizeof(struct sap_ctx),
    .doc = "SAP S/4HANA OData v2: $metadata, CSRF, ETags, deep inserts, credit-block read-back",
    .ops = &sap_ops,
};
