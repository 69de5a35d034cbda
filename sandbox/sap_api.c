/* SPDX-License-Identifier: MIT */
/*
 * The OData v2 protocol of the SAP emulator: basic authentication (or the session cookie),
 * the CSRF token handshake, service documents and $metadata, feeds with $filter $select
 * $expand $orderby $top $skip $skiptoken $inlinecount and server-driven paging (__next),
 * single entities and navigation, creates with deep insert (business partner with addresses,
 * roles and customer; sales order with items, priced from the PPR0 conditions and credit
 * checked against the customer's credit limit), updates and deletes with ETag / If-Match,
 * $batch with change sets (atomic), SAP's error body, and the sandbox admin callbacks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "sap_int.h"

#define ROOT         "/sap/opu/odata/sap/"
#define COOKIE       "SAP_SESSIONID_SBX_100"
#define SANDBOX_USER "SANDBOX"

/* A request after transport: the same shape for HTTP requests and $batch parts. */
struct rq {
    const char *method;
    const char *service;
    const char *res;   /* resource path after the service root, raw */
    const char *query; /* raw query string */
    const char *body;
    size_t body_len;
    const char *if_match;
    int in_batch;
};

struct qopts {
    char *filter, *select, *expand, *orderby, *skiptoken, *inlinecount, *format;
    long long top, skip; /* -1 = absent */
};

/* ---- errors ---- */

static void sap_error(struct sb_resp *resp, int status, const char *service, const char *code,
                      json_t *details, const char *fmt, ...) ES_PRINTF(6, 7);

static void sap_error(struct sb_resp *resp, int status, const char *service, const char *code,
                      json_t *details, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char txid[40], ts[40];
    int64_t now = sb_now_ms();
    snprintf(txid, sizeof txid, "%032llX", (unsigned long long)now);
    sap_iso(now, ts, sizeof ts, 0);
    char stamp[32];
    snprintf(stamp, sizeof stamp, "%.4s%.2s%.2s%.2s%.2s%.2s.%07d", ts, ts + 5, ts + 8, ts + 11,
             ts + 14, ts + 17, (int)(now % 1000) * 10000);
    if (!details) {
        details = json_array();
    }
    if (json_array_size(details) == 0) {
        json_array_append_new(details,
                              json_pack("{s:s,s:s,s:s,s:s,s:s}", "code", code, "message", msg,
                                        "propertyref", "", "severity", "error", "target", ""));
    }
    json_t *j = json_pack(
        "{s:{s:s,s:{s:s,s:s},s:{s:{s:s,s:s,s:s,s:s},s:s,s:s,s:{s:s,s:s},s:o}}}", "error", "code",
        code, "message", "lang", "en", "value", msg, "innererror", "application", "component_id",
        "", "service_namespace", "/SAP/", "service_id", service ? service : "", "service_version",
        "0001", "transactionid", txid, "timestamp", stamp, "Error_Resolution", "SAP_Transaction",
        "For backend administrators: use ADT feed reader \"SAP Gateway Error Log\" or run "
        "transaction /IWFND/ERROR_LOG on SAP Gateway hub system and search for entries with the "
        "timestamp above for more details",
        "SAP_Note",
        "See SAP Note 1797736 for error analysis "
        "(https://service.sap.com/sap/support/notes/1797736)",
        "errordetails", details);
    sb_resp_json(resp, status, j);
    sb_resp_header(resp, "dataserviceversion", "1.0");
}

static json_t *detail(const char *code, const char *msg, const char *target)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "code", code, "message", msg, "propertyref", "",
                     "severity", "error", "target", target ? target : "");
}

void sap_fault_reply(void *ctx, int status, struct sb_resp *resp)
{
    (void)ctx;
    if (status == 429) {
        sap_error(resp, status, "", "/IWFND/CM_BEC/026", NULL,
                  "Too many requests: the sandbox injected a rate limit fault");
    } else if (status == 503) {
        sap_error(resp, status, "", "/IWFND/CM_BEC/026", NULL,
                  "Service unavailable: the sandbox injected a fault");
    } else {
        sap_error(resp, status, "", "/IWBEP/CM_MGW_RT/000", NULL,
                  "Runtime error: the sandbox injected a fault (HTTP %d)", status);
    }
}

/* ---- small helpers ---- */

static void random_b64(char *out, size_t cap, size_t nbytes)
{
    unsigned char raw[32];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(raw, 1, nbytes, f) : 0;
    if (f) {
        fclose(f);
    }
    for (size_t i = got; i < nbytes; i++) {
        raw[i] = (unsigned char)(sb_now_ms() >> (i % 8));
    }
    struct es_buf b;
    es_buf_init(&b, 0);
    sb_base64(&b, raw, nbytes);
    snprintf(out, cap, "%s", b.data ? b.data : "");
    es_buf_release(&b);
}

static const char *cookie_value(const char *cookies, const char *name, char *out, size_t cap)
{
    if (!cookies) {
        return NULL;
    }
    size_t nl = strlen(name);
    for (const char *p = cookies; (p = strstr(p, name)) != NULL; p += nl) {
        if ((p == cookies || p[-1] == ' ' || p[-1] == ';') && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t n = strcspn(v, ";");
            if (n >= cap) {
                return NULL;
            }
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

static char *dec(const char *s, size_t n)
{
    char *o = es_xmalloc(n + 1);
    size_t l = sb_decode(s, n, o, n + 1, 1);
    o[l] = '\0';
    return o;
}

static int parse_qopts(const char *query, struct qopts *q, char *why, size_t cap)
{
    memset(q, 0, sizeof *q);
    q->top = q->skip = -1;
    const char *p = query ? query : "";
    while (*p) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t kl = eq ? (size_t)(eq - p) : n;
        char *k = dec(p, kl);
        char *v = eq ? dec(eq + 1, n - kl - 1) : es_xstrdup("");
        char **slot = NULL;
        if (strcmp(k, "$filter") == 0) {
            slot = &q->filter;
        } else if (strcmp(k, "$select") == 0) {
            slot = &q->select;
        } else if (strcmp(k, "$expand") == 0) {
            slot = &q->expand;
        } else if (strcmp(k, "$orderby") == 0) {
            slot = &q->orderby;
        } else if (strcmp(k, "$skiptoken") == 0) {
            slot = &q->skiptoken;
        } else if (strcmp(k, "$inlinecount") == 0) {
            slot = &q->inlinecount;
        } else if (strcmp(k, "$format") == 0) {
            slot = &q->format;
        } else if (strcmp(k, "$top") == 0 || strcmp(k, "$skip") == 0) {
            char *end = NULL;
            long long x = strtoll(v, &end, 10);
            if (!*v || *end || x < 0) {
                snprintf(why, cap, "Invalid value '%.40s' for system query option %s", v, k);
                es_free(k);
                es_free(v);
                return -1;
            }
            if (strcmp(k, "$top") == 0) {
                q->top = x;
            } else {
                q->skip = x;
            }
        } else if (k[0] == '$') {
            snprintf(why, cap, "System query option '%.40s' is not supported", k);
            es_free(k);
            es_free(v);
            return -1;
        }
        if (slot) {
            es_free(*slot);
            *slot = v;
            v = NULL;
        }
        es_free(k);
        es_free(v);
        p += n;
        if (*p == '&') {
            p++;
        }
    }
    return 0;
}

static void free_qopts(struct qopts *q)
{
    es_free(q->filter);
    es_free(q->select);
    es_free(q->expand);
    es_free(q->orderby);
    es_free(q->skiptoken);
    es_free(q->inlinecount);
    es_free(q->format);
}

/* Comma-separated list -> JSON array of trimmed strings. */
static json_t *split_list(const char *s)
{
    json_t *a = json_array();
    if (!s) {
        return a;
    }
    while (*s) {
        while (*s == ' ') {
            s++;
        }
        size_t n = strcspn(s, ",");
        size_t m = n;
        while (m && s[m - 1] == ' ') {
            m--;
        }
        if (m) {
            char *t = es_xstrndup(s, m);
            json_array_append_new(a, json_string(t));
            es_free(t);
        }
        s += n;
        if (*s == ',') {
            s++;
        }
    }
    return a;
}

/* Items of list that start with "prefix/" with the prefix removed. */
static json_t *sub_list(json_t *list, const char *prefix)
{
    json_t *a = json_array();
    size_t pl = strlen(prefix);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *s = json_string_value(v);
        if (strncmp(s, prefix, pl) == 0 && s[pl] == '/') {
            json_array_append_new(a, json_string(s + pl + 1));
        }
    }
    return a;
}

static int list_has(json_t *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *s = json_string_value(v);
        size_t n = strcspn(s, "/");
        if (strlen(name) == n && strncmp(s, name, n) == 0) {
            return 1;
        }
        if (strcmp(s, "*") == 0 && !strchr(name, '_')) {
            return 1;
        }
    }
    return 0;
}

static void etag_of(const struct sap_set *s, json_t *e, char *out, size_t cap)
{
    out[0] = '\0';
    if (!s->etag_prop) {
        return;
    }
    const struct sap_prop *p = sap_prop_find(s, s->etag_prop);
    json_t *v = json_object_get(e, p->name);
    if (p->type == T_DTO) {
        char iso[48];
        sap_iso(json_integer_value(v), iso, sizeof iso, 1);
        struct es_buf b;
        es_buf_init(&b, 0);
        sb_encode(&b, iso);
        snprintf(out, cap, "W/\"datetimeoffset'%s'\"", b.data);
        es_buf_release(&b);
    } else {
        snprintf(out, cap, "W/\"'%s'\"", json_string_value(v) ? json_string_value(v) : "");
    }
}

static void entity_uri(struct sap_ctx *c, struct es_buf *b, const struct sap_set *s, json_t *e)
{
    es_buf_printf(b, "%s" ROOT "%s/%s", c->host_url, s->service, s->name);
    sap_key_pred(b, s, e);
}

static json_t *first_key_of(const struct sap_set *s, json_t *e, const char *prop, char *buf,
                            size_t cap)
{
    (void)s;
    json_t *v = json_object_get(e, prop);
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    } else {
        snprintf(buf, cap, "%s", json_string_value(v) ? json_string_value(v) : "");
    }
    return v;
}

/* The wire form of entity e with $select/$expand applied (lists may be empty = all/none). */
static json_t *entity_out(struct sap_ctx *c, const struct sap_set *s, json_t *e, json_t *select,
                          json_t *expand)
{
    json_t *o = json_object();
    struct es_buf uri;
    es_buf_init(&uri, 0);
    entity_uri(c, &uri, s, e);
    char etag[160];
    etag_of(s, e, etag, sizeof etag);
    char type[160];
    snprintf(type, sizeof type, "%s.%sType", s->service, s->name);
    json_t *md = json_pack("{s:s,s:s,s:s}", "id", uri.data, "uri", uri.data, "type", type);
    if (etag[0]) {
        json_object_set_new(md, "etag", json_string(etag));
    }
    json_object_set_new(o, "__metadata", md);
    int all = json_array_size(select) == 0;
    for (const struct sap_prop *p = s->props; p->name; p++) {
        if (all || list_has(select, p->name)) {
            json_object_set_new(o, p->name, sap_value_out(p, json_object_get(e, p->name)));
        }
    }
    for (const struct sap_nav *n = s->navs; n->name; n++) {
        int expanded = list_has(expand, n->name);
        if (!expanded && !all && !list_has(select, n->name)) {
            continue;
        }
        if (!expanded) {
            struct es_buf d;
            es_buf_init(&d, 0);
            es_buf_printf(&d, "%s/%s", uri.data, n->name);
            json_object_set_new(o, n->name, json_pack("{s:{s:s}}", "__deferred", "uri", d.data));
            es_buf_release(&d);
            continue;
        }
        const struct sap_set *t = sap_set_any(n->target);
        char pk[128];
        first_key_of(s, e, n->from, pk, sizeof pk);
        json_t *kids = sap_list(c, t, pk);
        char why[8];
        (void)sap_orderby(t, kids, NULL, why, sizeof why);
        json_t *subsel = sub_list(select, n->name);
        json_t *subexp = sub_list(expand, n->name);
        if (n->many) {
            json_t *res = json_array();
            size_t i;
            json_t *k;
            json_array_foreach(kids, i, k)
            {
                json_array_append_new(res, entity_out(c, t, k, subsel, subexp));
            }
            json_object_set_new(o, n->name, json_pack("{s:o}", "results", res));
        } else {
            json_t *k = json_array_get(kids, 0);
            json_object_set_new(o, n->name, k ? entity_out(c, t, k, subsel, subexp) : json_null());
        }
        json_decref(subsel);
        json_decref(subexp);
        json_decref(kids);
    }
    es_buf_release(&uri);
    return o;
}

void sap_touch(const struct sap_set *s, json_t *e, int created)
{
    int64_t now = sb_now_ms();
    int64_t day = now / 86400000LL * 86400000LL;
    char tb[32];
    long long secs = (now / 1000) % 86400;
    snprintf(tb, sizeof tb, "PT%02lldH%02lldM%02lldS", secs / 3600, secs / 60 % 60, secs % 60);
    if (s->lastchange) {
        json_object_set_new(e, s->lastchange, json_integer(now));
    }
    if (sap_prop_find(s, "LastChangeDate")) {
        json_object_set_new(e, "LastChangeDate", json_integer(day));
    }
    if (sap_prop_find(s, "LastChangeTime")) {
        json_object_set_new(e, "LastChangeTime", json_string(tb));
    }
    if (sap_prop_find(s, "LastChangedByUser")) {
        json_object_set_new(e, "LastChangedByUser", json_string(SANDBOX_USER));
    }
    if (s->etag_prop && strcmp(s->etag_prop, "ETag") == 0) {
        char et[32];
        snprintf(et, sizeof et, "SBX%lld", (long long)now);
        json_object_set_new(e, "ETag", json_string(et));
    }
    if (created) {
        if (sap_prop_find(s, "CreationDate")) {
            json_object_set_new(e, "CreationDate", json_integer(day));
        }
        if (sap_prop_find(s, "CreationTime")) {
            json_object_set_new(e, "CreationTime", json_string(tb));
        }
        if (sap_prop_find(s, "CreatedByUser")) {
            json_object_set_new(e, "CreatedByUser", json_string(SANDBOX_USER));
        }
    }
}

/* ---- resource paths ---- */

struct target {
    const struct sap_set *set; /* the addressed set (after navigation) */
    json_t *keys;              /* key values when one entity is addressed */
    json_t *parent;            /* parent entity when addressed through navigation */
    const struct sap_set *pset;
    const struct sap_nav *nav;
    int count; /* /$count */
};

static void target_release(struct target *t)
{
    json_decref(t->keys);
    json_decref(t->parent);
}

static json_t *get_by_keys(struct sap_ctx *c, const struct sap_set *s, json_t *keys)
{
    char *k = sap_key_str(s, keys);
    json_t *e = sap_get(c, s, k);
    es_free(k);
    return e;
}

/* Resolves "Set", "Set(keys)", "Set(keys)/nav", with optional "/$count". 0 or HTTP status. */
static int resolve(struct sap_ctx *c, const struct rq *r, struct target *t, struct sb_resp *resp)
{
    memset(t, 0, sizeof *t);
    size_t rl = strlen(r->res);
    char *path = dec(r->res, rl);
    int rc = 0;
    char why[256];
    size_t plen = strlen(path);
    if (plen >= 7 && strcmp(path + plen - 7, "/$count") == 0) {
        t->count = 1;
        path[plen - 7] = '\0';
    }
    char *slash = NULL;
    char *paren = strchr(path, '(');
    char *navname = NULL;
    if (paren) {
        char *close = strrchr(path, ')');
        slash = close ? strchr(close, '/') : NULL;
        if (!close) {
            sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/020", NULL,
                      "Invalid URI segment '%.80s'", path);
            rc = 400;
            goto done;
        }
        *paren = '\0';
        *close = '\0';
        if (slash) {
            navname = slash + 1;
        }
    }
    const struct sap_set *s = sap_set_find(r->service, path);
    if (!s) {
        sap_error(resp, 404, r->service, "/IWBEP/CM_MGW_RT/021", NULL,
                  "Resource not found for segment '%.80s'", path);
        rc = 404;
        goto done;
    }
    t->set = s;
    if (!paren) {
        goto done;
    }
    if (sap_key_parse(s, paren + 1, &t->keys, why, sizeof why) != 0) {
        sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/022", NULL, "%s", why);
        rc = 400;
        goto done;
    }
    if (navname && *navname) {
        const struct sap_nav *n = sap_nav_find(s, navname);
        if (!n) {
            sap_error(resp, 404, r->service, "/IWBEP/CM_MGW_RT/021", NULL,
                      "Resource not found for segment '%.80s'", navname);
            rc = 404;
            goto done;
        }
        t->parent = get_by_keys(c, s, t->keys);
        if (!t->parent) {
            sap_error(resp, 404, r->service, "/IWBEP/CM_MGW_RT/020", NULL,
                      "Resource not found for segment '%s'", s->name);
            rc = 404;
            goto done;
        }
        json_decref(t->keys);
        t->keys = NULL;
        t->pset = s;
        t->nav = n;
        t->set = sap_set_any(n->target);
    }
done:
    es_free(path);
    return rc;
}

/* Checks every $expand path (navigations only) or $select path (properties, navigations,
 * '*') against the model. Returns 0, or -1 with why filled. */
static int check_paths(const struct sap_set *s, json_t *list, int expand, char *why, size_t cap)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *p = json_string_value(v);
        const struct sap_set *cur = s;
        while (*p) {
            size_t n = strcspn(p, "/");
            char seg[96];
            if (n == 0 || n >= sizeof seg) {
                snprintf(why, cap, "Invalid path '%.80s'", json_string_value(v));
                return -1;
            }
            memcpy(seg, p, n);
            seg[n] = '\0';
            const struct sap_nav *nav = sap_nav_find(cur, seg);
            if (nav) {
                cur = sap_set_any(nav->target);
            } else if (expand || p[n] == '/' ||
                       (strcmp(seg, "*") != 0 && !sap_prop_find(cur, seg))) {
                snprintf(why, cap, "Property '%s' not found in type '%sType' (%s)", seg, cur->name,
                         expand ? "$expand" : "$select");
                return -1;
            }
            p += n;
            if (*p == '/') {
                p++;
            }
        }
    }
    return 0;
}

/* ---- reads ---- */

static void reply_json(struct sb_resp *resp, int status, json_t *d)
{
    sb_resp_json(resp, status, json_pack("{s:o}", "d", d));
    sb_resp_header(resp, "dataserviceversion", "2.0");
}

/* 1 when orderby is empty or names exactly the key properties, ascending, in key order. */
static int key_order(const struct sap_set *s, const char *orderby)
{
    if (!orderby || !*orderby) {
        return 1;
    }
    char want[512] = "";
    size_t n = 0;
    for (int k = 0; k < sap_nkeys(s) && n < sizeof want; k++) {
        n += (size_t)snprintf(want + n, sizeof want - n, "%s%s", k ? "," : "", sap_key(s, k)->name);
    }
    if (sap_nkeys(s) == 1 && sap_key(s, 0)->type != T_STR) {
        return 0;
    }
    for (int k = 0; k < sap_nkeys(s); k++) {
        if (sap_key(s, k)->type != T_STR) {
            return 0;
        }
    }
    char got[512];
    size_t g = 0;
    for (const char *p = orderby; *p && g + 1 < sizeof got; p++) {
        if (*p != ' ') {
            got[g++] = *p;
        }
    }
    got[g] = '\0';
    size_t gl = strlen(got);
    if (gl > 3 && strcmp(got + gl - 3, "asc") == 0) {
        got[gl - 3] = '\0';
    }
    return strcmp(got, want) == 0;
}

static void read_feed(struct sap_ctx *c, const struct rq *r, struct target *t, struct qopts *q,
                      struct sb_resp *resp)
{
    const struct sap_set *s = t->set;
    char why[256];
    char pk[128] = "";
    if (t->parent) {
        first_key_of(t->pset, t->parent, t->nav->from, pk, sizeof pk);
    }
    /* Without $filter and ordered by the key, only the page is loaded (SQL LIMIT/OFFSET). */
    int fast = !q->filter && key_order(s, q->orderby);
    long long base = 0;
    json_t *all = fast ? json_array() : sap_list(c, s, t->parent ? pk : NULL);
    struct sap_filter *f = NULL;
    if (q->filter) {
        f = sap_filter_parse(s, q->filter, why, sizeof why);
        if (!f) {
            json_decref(all);
            sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/004", NULL, "%s", why);
            return;
        }
        json_t *kept = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(all, i, e)
        {
            if (sap_filter_match(f, e)) {
                json_array_append(kept, e);
            }
        }
        json_decref(all);
        all = kept;
        sap_filter_free(f);
    }
    if (sap_orderby(s, all, q->orderby, why, sizeof why) != 0) {
        json_decref(all);
        sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/004", NULL, "%s", why);
        return;
    }
    long long total =
        fast ? sap_count(c, s, t->parent ? pk : NULL) : (long long)json_array_size(all);
    if (t->count) {
        char n[32];
        snprintf(n, sizeof n, "%lld", total);
        json_decref(all);
        sb_resp_body(resp, 200, "text/plain;charset=utf-8", n, strlen(n));
        return;
    }
    long long tok = 0;
    if (q->skiptoken) {
        char *end = NULL;
        tok = strtoll(q->skiptoken, &end, 10);
        if (!*q->skiptoken || *end || tok < 0) {
            json_decref(all);
            sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/004", NULL,
                      "Invalid $skiptoken '%.40s'", q->skiptoken);
            return;
        }
    }
    long long start = (q->skip > 0 ? q->skip : 0) + tok;
    long long end = q->top >= 0 ? (q->skip > 0 ? q->skip : 0) + q->top : total;
    if (end > total) {
        end = total;
    }
    long long stop = end;
    int more = 0;
    if (c->page_max > 0 && stop - start > c->page_max) {
        stop = start + c->page_max;
        more = 1;
    }
    if (fast && stop > start) {
        json_decref(all);
        all = sap_list_page(c, s, t->parent ? pk : NULL, start, stop - start);
        base = start;
    }
    json_t *select = split_list(q->select);
    json_t *expand = split_list(q->expand);
    if (check_paths(s, expand, 1, why, sizeof why) || check_paths(s, select, 0, why, sizeof why)) {
        json_decref(select);
        json_decref(expand);
        json_decref(all);
        sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/004", NULL, "%s", why);
        return;
    }
    json_t *res = json_array();
    for (long long i = start; i < stop; i++) {
        json_array_append_new(
            res, entity_out(c, s, json_array_get(all, (size_t)(i - base)), select, expand));
    }
    json_t *d = json_pack("{s:o}", "results", res);
    if (q->inlinecount && strcmp(q->inlinecount, "allpages") == 0) {
        char n[32];
        snprintf(n, sizeof n, "%lld", total);
        json_object_set_new(d, "__count", json_string(n));
    }
    if (more) {
        /* __next repeats the request with $skiptoken = entities already delivered. */
        struct es_buf nx;
        es_buf_init(&nx, 0);
        es_buf_printf(&nx, "%s" ROOT "%s/%s?", c->host_url, r->service, r->res);
        const char *p = r->query ? r->query : "";
        int first = 1;
        while (*p) {
            size_t n = strcspn(p, "&");
            if (!(n >= 11 && strncmp(p, "$skiptoken=", 11) == 0) &&
                !(n >= 13 && strncmp(p, "%24skiptoken=", 13) == 0)) {
                es_buf_printf(&nx, "%s%.*s", first ? "" : "&", (int)n, p);
                first = 0;
            }
            p += n;
            if (*p == '&') {
                p++;
            }
        }
        es_buf_printf(&nx, "%s$skiptoken=%lld", first ? "" : "&", stop - (start - tok));
        json_object_set_new(d, "__next", json_string(nx.data));
        es_buf_release(&nx);
    }
    json_decref(select);
    json_decref(expand);
    json_decref(all);
    reply_json(resp, 200, d);
}

static void read_entity(struct sap_ctx *c, const struct rq *r, struct target *t, struct qopts *q,
                        struct sb_resp *resp)
{
    json_t *e = NULL;
    if (t->parent) { /* to-one navigation */
        char pk[128];
        first_key_of(t->pset, t->parent, t->nav->from, pk, sizeof pk);
        json_t *kids = sap_list(c, t->set, pk);
        e = json_incref(json_array_get(kids, 0));
        json_decref(kids);
        if (!e) {
            reply_json(resp, 200, json_null());
            return;
        }
    } else {
        e = get_by_keys(c, t->set, t->keys);
    }
    if (!e) {
        sap_error(resp, 404, r->service, "/IWBEP/CM_MGW_RT/020", NULL,
                  "Resource not found for segment '%sType'", t->set->name);
        return;
    }
    json_t *select = split_list(q->select);
    json_t *expand = split_list(q->expand);
    char why[256];
    if (check_paths(t->set, expand, 1, why, sizeof why) ||
        check_paths(t->set, select, 0, why, sizeof why)) {
        json_decref(select);
        json_decref(expand);
        json_decref(e);
        sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/004", NULL, "%s", why);
        return;
    }
    char etag[160];
    etag_of(t->set, e, etag, sizeof etag);
    reply_json(resp, 200, entity_out(c, t->set, e, select, expand));
    if (etag[0]) {
        sb_resp_header(resp, "ETag", etag);
    }
    json_decref(select);
    json_decref(expand);
    json_decref(e);
}

/* ---- writes ---- */

struct wctx {
    struct sap_ctx *c;
    const char *service;
    json_t *details; /* errordetails collected */
    int status;      /* first error status */
    char code[64];
    char msg[300];
    json_t *expand; /* deep-inserted navigation names (for the reply) */
    char warning[300];
};

static void wfail(struct wctx *w, int status, const char *code, const char *target, const char *fmt,
                  ...) ES_PRINTF(5, 6);

static void wfail(struct wctx *w, int status, const char *code, const char *target, const char *fmt,
                  ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!w->status) {
        w->status = status;
        snprintf(w->code, sizeof w->code, "%s", code);
        snprintf(w->msg, sizeof w->msg, "%s", msg);
    }
    json_array_append_new(w->details, detail(code, msg, target));
}

static const char *sget(json_t *e, const char *k)
{
    const char *s = json_string_value(json_object_get(e, k));
    return s ? s : "";
}

/* Applies payload properties to e; navigation members are returned in *navs. */
static void apply_props(struct wctx *w, const struct sap_set *s, json_t *e, json_t *in,
                        int creating, json_t *navs)
{
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        if (strcmp(k, "__metadata") == 0) {
            continue;
        }
        const struct sap_nav *n = sap_nav_find(s, k);
        if (n) {
            if (navs) {
                json_object_set(navs, k, v);
            }
            continue;
        }
        const struct sap_prop *p = sap_prop_find(s, k);
        if (!p) {
            wfail(w, 400, "/IWBEP/CM_MGW_RT/010", k,
                  "Property '%s' is invalid for entity type '%sType'", k, s->name);
            continue;
        }
        if ((p->flags & P_RO) || (!creating && (p->flags & P_KEY))) {
            continue; /* read-only input is ignored, as Gateway does */
        }
        char why[256];
        json_t *sv = sap_value_in(p, v, why, sizeof why);
        if (!sv) {
            wfail(w, 400, "/IWBEP/CM_MGW_RT/011", k, "%s", why);
            continue;
        }
        json_object_set_new(e, k, sv);
    }
}

static json_t *nav_items(json_t *v)
{
    if (json_is_array(v)) {
        return json_incref(v);
    }
    json_t *r = json_object_get(v, "results");
    if (json_is_array(r)) {
        return json_incref(r);
    }
    json_t *a = json_array();
    if (json_is_object(v)) {
        json_array_append(a, v);
    }
    return a;
}

static void fill_defaults(const struct sap_set *s, json_t *e)
{
    for (const struct sap_prop *p = s->props; p->name; p++) {
        if (!json_object_get(e, p->name)) {
            json_t *v = NULL;
            if (p->type == T_STR) {
                v = json_string("");
            } else if (p->type == T_BOOL) {
                v = json_false();
            } else if (p->type == T_DEC) {
                char why[8];
                json_t *z = json_string("0");
                v = sap_value_in(p, z, why, sizeof why);
                json_decref(z);
            }
            if (v) {
                json_object_set_new(e, p->name, v);
            }
        }
    }
}

/* Price of one unit of material from the PPR0 condition records (0 when none). */
static double unit_price(struct sap_ctx *c, const char *material, const char **currency)
{
    const struct sap_set *vs = sap_set_any("A_SlsPrcgCndnRecdValidity");
    const struct sap_set *rs = sap_set_any("A_SlsPrcgConditionRecord");
    json_t *all = sap_list(c, vs, NULL);
    double price = 0;
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v)
    {
        if (strcmp(sget(v, "Material"), material) == 0 &&
            strcmp(sget(v, "ConditionType"), "PPR0") == 0) {
            json_t *rec = sap_get(c, rs, sget(v, "ConditionRecord"));
            if (rec && !json_is_true(json_object_get(rec, "ConditionIsDeleted"))) {
                double per = strtod(sget(rec, "ConditionQuantity"), NULL);
                price = strtod(sget(rec, "ConditionRateValue"), NULL) / (per > 0 ? per : 1);
                static char cur[8];
                snprintf(cur, sizeof cur, "%s", sget(rec, "ConditionRateValueUnit"));
                *currency = cur;
            }
            json_decref(rec);
            break;
        }
    }
    json_decref(all);
    return price;
}

static void set_amount(json_t *e, const char *k, double v)
{
    char b[48];
    snprintf(b, sizeof b, "%.3f", v);
    json_object_set_new(e, k, json_string(b));
}

/* Open credit exposure of a customer: net value of its orders not completed. */
static double exposure(struct sap_ctx *c, const char *customer, const char *except)
{
    json_t *all = sap_list(c, sap_set_any("A_SalesOrder"), NULL);
    double sum = 0;
    size_t i;
    json_t *o;
    json_array_foreach(all, i, o)
    {
        if (strcmp(sget(o, "SoldToParty"), customer) == 0 &&
            strcmp(sget(o, "OverallSDProcessStatus"), "C") != 0 &&
            strcmp(sget(o, "SalesOrder"), except) != 0) {
            sum += strtod(sget(o, "TotalNetAmount"), NULL);
        }
    }
    json_decref(all);
    return sum;
}

/* Sales order: items priced, totals, statuses, credit check. */
static void so_complete(struct wctx *w, json_t *o, json_t *items)
{
    struct sap_ctx *c = w->c;
    const char *sold = sget(o, "SoldToParty");
    json_t *cust = NULL;
    if (!*sold) {
        wfail(w, 400, "V1/303", "SoldToParty", "Enter a sold-to party");
    } else if (!(cust = sap_get(c, sap_set_any("A_Customer"), sold))) {
        wfail(w, 400, "V1/302", "SoldToParty", "Sold-to party %s does not exist", sold);
    }
    if (!*sget(o, "SalesOrderType")) {
        wfail(w, 400, "V1/311", "SalesOrderType", "Enter a sales document type");
    }
    if (!*sget(o, "SalesOrganization")) {
        wfail(w, 400, "V1/312", "SalesOrganization", "Enter a sales organization");
    }
    double total = 0;
    const char *currency = NULL;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *mat = sget(it, "Material");
        json_t *prod = *mat ? sap_get(c, sap_set_any("A_Product"), mat) : NULL;
        if (!prod) {
            wfail(w, 400, "V1/392", "Material", "Material %s does not exist", *mat ? mat : "''");
            continue;
        }
        json_decref(prod);
        double qty = strtod(sget(it, "RequestedQuantity"), NULL);
        if (qty <= 0) {
            wfail(w, 400, "V1/380", "RequestedQuantity", "Enter an order quantity for item %s",
                  sget(it, "SalesOrderItem"));
        }
        const char *cur = NULL;
        double net = unit_price(c, mat, &cur) * qty;
        if (cur && !currency) {
            currency = cur;
        }
        set_amount(it, "NetAmount", net);
        total += net;
        if (!*sget(it, "RequestedQuantityUnit")) {
            json_object_set_new(it, "RequestedQuantityUnit", json_string("PC"));
        }
        if (!*sget(it, "SalesOrderItemCategory")) {
            json_object_set_new(it, "SalesOrderItemCategory", json_string("TAN"));
        }
        json_object_set_new(it, "SDProcessStatus", json_string("A"));
        json_object_set_new(it, "DeliveryStatus", json_string("A"));
    }
    if (!*sget(o, "TransactionCurrency")) {
        json_object_set_new(o, "TransactionCurrency", json_string(currency ? currency : "EUR"));
    }
    json_array_foreach(items, i, it)
    {
        json_object_set_new(it, "TransactionCurrency", json_string(sget(o, "TransactionCurrency")));
    }
    set_amount(o, "TotalNetAmount", total);
    json_object_set_new(o, "OverallSDProcessStatus", json_string("A"));
    json_object_set_new(o, "OverallTotalDeliveryStatus", json_string("A"));
    json_object_set_new(o, "OverallSDDocumentRejectionSts", json_string("A"));
    json_object_set_new(o, "OverallOrdReltdBillgStatus", json_string(""));
    const char *limit = cust ? json_string_value(json_object_get(cust, "CreditLimit")) : NULL;
    if (cust && limit && *limit) {
        double lim = strtod(limit, NULL);
        double exp = exposure(c, sold, sget(o, "SalesOrder")) + total;
        if (exp > lim) {
            /* SAP saves the order and blocks it: credit status B, delivery block. */
            json_object_set_new(o, "TotalCreditCheckStatus", json_string("B"));
            json_object_set_new(o, "TotalBlockStatus", json_string("B"));
            json_object_set_new(o, "DeliveryBlockReason", json_string("01"));
            snprintf(w->warning, sizeof w->warning,
                     "Static credit check: credit limit exceeded (customer %s, exposure %.2f, "
                     "limit %.2f); document blocked for delivery",
                     sold, exp, lim);
        } else {
            json_object_set_new(o, "TotalCreditCheckStatus", json_string("A"));
            json_object_set_new(o, "TotalBlockStatus", json_string(""));
        }
    } else {
        json_object_set_new(o, "TotalCreditCheckStatus", json_string(""));
    }
    if (!json_object_get(o, "SalesOrderDate") ||
        json_is_null(json_object_get(o, "SalesOrderDate"))) {
        json_object_set_new(o, "SalesOrderDate",
                            json_integer(sb_now_ms() / 86400000LL * 86400000LL));
    }
    json_decref(cust);
}

static void bp_names(json_t *e)
{
    char full[200];
    if (strcmp(sget(e, "BusinessPartnerCategory"), "1") == 0) {
        snprintf(full, sizeof full, "%s%s%s", sget(e, "FirstName"),
                 *sget(e, "FirstName") ? " " : "", sget(e, "LastName"));
    } else {
        snprintf(full, sizeof full, "%s%s%s", sget(e, "OrganizationBPName1"),
                 *sget(e, "OrganizationBPName2") ? " " : "", sget(e, "OrganizationBPName2"));
    }
    full[81] = '\0';
    json_object_set_new(e, "BusinessPartnerFullName", json_string(full));
    json_object_set_new(e, "BusinessPartnerName", json_string(full));
}

/* Remembers prefix+nav for the $expand of the create reply (once). */
static void add_expand(struct wctx *w, const char *prefix, const char *nav)
{
    char p[300];
    snprintf(p, sizeof p, "%s%s", prefix, nav);
    size_t i;
    json_t *v;
    json_array_foreach(w->expand, i, v)
    {
        if (strcmp(json_string_value(v), p) == 0) {
            return;
        }
    }
    json_array_append_new(w->expand, json_string(p));
}

/* Creates entity `in` in set s (child of parent through nav when given); stores it and its
 * deep-inserted children. OUT: the stored entity (new reference) or NULL after wfail. */
static json_t *create(struct wctx *w, const struct sap_set *s, json_t *in, const struct sap_set *ps,
                      json_t *parent, const struct sap_nav *pnav, int sibling, const char *prefix)
{
    struct sap_ctx *c = w->c;
    if (!json_is_object(in)) {
        wfail(w, 400, "/IWBEP/CM_MGW_RT/006", "", "The request body is not a JSON object");
        return NULL;
    }
    json_t *d = json_object_get(in, "d");
    if (json_is_object(d) && json_object_size(in) == 1) {
        in = d;
    }
    json_t *e = json_object();
    json_t *navs = json_object();
    unsigned before = (unsigned)json_array_size(w->details);
    apply_props(w, s, e, in, 1, navs);
    const struct sap_prop *k0 = sap_key(s, 0);
    if (parent) {
        char pk[128];
        first_key_of(ps, parent, pnav->from, pk, sizeof pk);
        json_object_set_new(e, k0->name, json_string(pk));
    }
    /* Single generated keys: given value (external numbering) or the number range. */
    if (s->numrange && sap_nkeys(s) == 1) {
        const char *given = json_string_value(json_object_get(in, k0->name));
        if (given && *given) {
            json_object_set_new(e, k0->name, json_string(given));
        } else {
            long long first = strcmp(s->numrange, "bp") == 0   ? 10200000LL
                              : strcmp(s->numrange, "so") == 0 ? 1
                                                               : 1;
            long long n = sap_next_number(c, s->numrange, first);
            char b[24];
            snprintf(b, sizeof b, strcmp(s->numrange, "cnd") == 0 ? "%010lld" : "%lld", n);
            json_object_set_new(e, k0->name, json_string(b));
        }
    }
    if (strcmp(s->name, "A_BusinessPartnerAddress") == 0) {
        char b[24];
        snprintf(b, sizeof b, "%lld", sap_next_number(c, "addr", 40000));
        json_object_set_new(e, "AddressID", json_string(b));
    }
    if (strcmp(s->name, "A_SalesOrderItem") == 0 && !*sget(e, "SalesOrderItem")) {
        char b[16];
        snprintf(b, sizeof b, "%d", 10 * (sibling + 1));
        json_object_set_new(e, "SalesOrderItem", json_string(b));
    }
    if (strcmp(s->name, "A_Customer") == 0 && parent) {
        json_object_set_new(e, "CustomerName",
                            json_string(sget(parent, "BusinessPartnerFullName")));
        json_object_set_new(e, "CustomerFullName",
                            json_string(sget(parent, "BusinessPartnerFullName")));
        if (!*sget(e, "CustomerAccountGroup")) {
            json_object_set_new(e, "CustomerAccountGroup", json_string("CUST"));
        }
    }
    for (int i = 0; i < sap_nkeys(s); i++) {
        const struct sap_prop *kp = sap_key(s, i);
        json_t *kv = json_object_get(e, kp->name);
        if (!kv || (json_is_string(kv) && !*json_string_value(kv))) {
            wfail(w, 400, "/IWBEP/CM_MGW_RT/012", kp->name, "Key property '%s' must be filled",
                  kp->name);
        }
    }
    if (strcmp(s->name, "A_BusinessPartner") == 0) {
        const char *cat = sget(e, "BusinessPartnerCategory");
        if (strcmp(cat, "1") && strcmp(cat, "2") && strcmp(cat, "3")) {
            wfail(w, 400, "R11/401", "BusinessPartnerCategory",
                  "Business partner category '%s' is not valid (1, 2 or 3)", cat);
        } else if (strcmp(cat, "1") == 0 && !*sget(e, "LastName")) {
            wfail(w, 400, "R11/402", "LastName", "Enter a last name for a person");
        } else if (strcmp(cat, "1") != 0 && !*sget(e, "OrganizationBPName1")) {
            wfail(w, 400, "R11/403", "OrganizationBPName1",
                  "Enter a name for an organization (OrganizationBPName1)");
        }
        bp_names(e);
        if (json_object_get(navs, "to_Customer")) {
            json_object_set_new(e, "Customer", json_string(sget(e, "BusinessPartner")));
        }
    }
    if (strcmp(s->name, "A_Product") == 0 && !*sget(e, "ProductType")) {
        wfail(w, 400, "M3/305", "ProductType", "Enter a product type");
    }
    if (strcmp(s->name, "A_BusinessPartnerAddress") == 0) {
        if (!*sget(e, "Country")) {
            wfail(w, 400, "AM/215", "Country", "Enter a country/region for the address");
        }
        if (!json_is_integer(json_object_get(e, "ValidityEndDate"))) {
            json_object_set_new(e, "ValidityEndDate", json_integer(253402214400000LL));
        }
    }
    fill_defaults(s, e);
    if (strcmp(s->name, "A_SalesOrderItem") == 0) {
        /* An item added to an existing order is priced like a deep-inserted one. */
        json_t *prod = sap_get(c, sap_set_any("A_Product"), sget(e, "Material"));
        if (!prod) {
            wfail(w, 400, "V1/392", "Material", "Material %s does not exist",
                  *sget(e, "Material") ? sget(e, "Material") : "''");
        }
        json_decref(prod);
        const char *cur = NULL;
        set_amount(e, "NetAmount",
                   unit_price(c, sget(e, "Material"), &cur) *
                       strtod(sget(e, "RequestedQuantity"), NULL));
        json_object_set_new(e, "TransactionCurrency", json_string(cur ? cur : "EUR"));
    }
    if (json_array_size(w->details) > before) {
        goto fail;
    }
    char *ks = sap_key_str(s, e);
    json_t *dup = sap_get(c, s, ks);
    es_free(ks);
    if (dup) {
        json_decref(dup);
        wfail(w, 400, "/IWBEP/CM_MGW_RT/015", k0->name, "%s with key '%s' already exists", s->name,
              sget(e, k0->name));
        goto fail;
    }
    sap_touch(s, e, 1);
    /* Children first need the parent's key; sales orders need items priced first. */
    json_t *items = NULL;
    if (strcmp(s->name, "A_SalesOrder") == 0) {
        items = json_array();
        json_t *raw = json_object_get(navs, "to_Item");
        json_t *list = raw ? nav_items(raw) : json_array();
        const struct sap_set *is = sap_set_any("A_SalesOrderItem");
        size_t i;
        json_t *ri;
        json_array_foreach(list, i, ri)
        {
            json_t *it = json_object();
            json_t *riv = json_is_object(json_object_get(ri, "d")) ? json_object_get(ri, "d") : ri;
            apply_props(w, is, it, riv, 1, NULL);
            json_object_set_new(it, "SalesOrder", json_string(sget(e, "SalesOrder")));
            if (!*sget(it, "SalesOrderItem")) {
                char b[16];
                snprintf(b, sizeof b, "%d", (int)(10 * (i + 1)));
                json_object_set_new(it, "SalesOrderItem", json_string(b));
            }
            fill_defaults(is, it);
            json_array_append_new(items, it);
        }
        json_decref(list);
        so_complete(w, e, items);
        if (json_array_size(w->details) > before) {
            json_decref(items);
            goto fail;
        }
        json_array_foreach(items, i, ri)
        {
            (void)sap_put(c, is, ri);
        }
        json_decref(items);
        json_object_del(navs, "to_Item");
        add_expand(w, prefix, "to_Item");
    }
    if (sap_put(c, s, e) != 0) {
        wfail(w, 500, "/IWBEP/CM_MGW_RT/000", "", "The sandbox could not store the entity");
        goto fail;
    }
    const char *nk;
    json_t *nv;
    json_object_foreach(navs, nk, nv)
    {
        const struct sap_nav *n = sap_nav_find(s, nk);
        const struct sap_set *t = sap_set_any(n->target);
        if (!(t->flags & S_CREATE) && strcmp(t->name, "A_Customer") != 0) {
            wfail(w, 400, "/IWBEP/CM_MGW_RT/016", nk, "Deep insert into %s is not supported",
                  t->name);
            goto fail;
        }
        json_t *list = nav_items(nv);
        size_t i;
        json_t *ci;
        json_array_foreach(list, i, ci)
        {
            char sub[256];
            snprintf(sub, sizeof sub, "%s%s/", prefix, nk);
            json_t *child = create(w, t, ci, s, e, n, (int)i, sub);
            if (!child) {
                json_decref(list);
                goto fail;
            }
            json_decref(child);
        }
        json_decref(list);
        add_expand(w, prefix, nk);
    }
    json_decref(navs);
    return e;
fail:
    json_decref(navs);
    json_decref(e);
    return NULL;
}

/* If-Match against the entity's current ETag: 0 = fine, else the HTTP status written. */
static int check_if_match(const struct rq *r, const struct sap_set *s, json_t *e,
                          struct sb_resp *resp)
{
    if (!s->etag_prop) {
        return 0;
    }
    char etag[160];
    etag_of(s, e, etag, sizeof etag);
    if (!r->if_match || !*r->if_match) {
        sap_error(resp, 428, r->service, "/IWBEP/CM_MGW_RT/007", NULL,
                  "Precondition required: send If-Match with the ETag of %s", s->name);
        return 428;
    }
    if (strcmp(r->if_match, "*") == 0 || strcmp(r->if_match, etag) == 0) {
        return 0;
    }
    sap_error(resp, 412, r->service, "/IWBEP/CM_MGW_RT/008", NULL,
              "Precondition failed: the entity was changed by another user (current ETag %s)",
              etag);
    return 412;
}

static void recompute_order(struct sap_ctx *c, const char *so)
{
    const struct sap_set *os = sap_set_any("A_SalesOrder");
    json_t *o = sap_get(c, os, so);
    if (!o) {
        return;
    }
    json_t *items = sap_list(c, sap_set_any("A_SalesOrderItem"), so);
    double total = 0;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        total += strtod(sget(it, "NetAmount"), NULL);
    }
    set_amount(o, "TotalNetAmount", total);
    sap_touch(os, o, 0);
    (void)sap_put(c, os, o);
    json_decref(items);
    json_decref(o);
}

static void do_create(struct sap_ctx *c, const struct rq *r, struct target *t, struct sb_resp *resp)
{
    const struct sap_set *s = t->set;
    if (t->keys || t->count) {
        sap_error(resp, 405, r->service, "/IWBEP/CM_MGW_RT/025", NULL,
                  "POST is not allowed on a single entity");
        return;
    }
    if (!(s->flags & S_CREATE)) {
        sap_error(resp, 405, r->service, "/IWBEP/CM_MGW_RT/025", NULL,
                  "Method '%s_CREATE_ENTITY' not implemented in data provider class", s->name);
        return;
    }
    json_error_t je;
    json_t *in = json_loadb(r->body, r->body_len, 0, &je);
    if (!in) {
        sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/006", NULL,
                  "Malformed JSON payload: %s (line %d)", je.text, je.line);
        return;
    }
    struct wctx w = {
        .c = c, .service = r->service, .details = json_array(), .expand = json_array()};
    sap_db_begin(c, "sap_create");
    json_t *e = create(&w, s, in, t->pset, t->parent, t->nav, 0, "");
    if (!e) {
        sap_db_end(c, "sap_create", 0);
        sap_error(resp, w.status, r->service, w.code, json_incref(w.details), "%s", w.msg);
    } else {
        sap_db_end(c, "sap_create", 1);
        if (strcmp(s->name, "A_SalesOrderItem") == 0) {
            recompute_order(c, sget(e, "SalesOrder"));
        }
        json_t *none = json_array();
        json_t *o = entity_out(c, s, e, none, w.expand);
        json_decref(none);
        struct es_buf loc;
        es_buf_init(&loc, 0);
        entity_uri(c, &loc, s, e);
        char etag[160];
        etag_of(s, e, etag, sizeof etag);
        reply_json(resp, 201, o);
        sb_resp_header(resp, "Location", loc.data);
        if (etag[0]) {
            sb_resp_header(resp, "ETag", etag);
        }
        if (w.warning[0]) {
            json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:[]}", "code", "V1/150", "message", w.warning,
                                  "severity", "warning", "target", "", "details");
            char *ms = json_dumps(m, JSON_COMPACT);
            sb_resp_header(resp, "sap-message", ms);
            free(ms); /* checksrc: ok */
            json_decref(m);
        }
        es_buf_release(&loc);
        json_decref(e);
    }
    json_decref(w.details);
    json_decref(w.expand);
    json_decref(in);
}

static void do_update(struct sap_ctx *c, const struct rq *r, struct target *t, struct sb_resp *resp,
                      int put)
{
    const struct sap_set *s = t->set;
    if (!t->keys) {
        sap_error(resp, 405, r->service, "/IWBEP/CM_MGW_RT/025", NULL,
                  "%s needs a single entity (key predicate)", r->method);
        return;
    }
    if (!(s->flags & S_UPDATE)) {
        sap_error(resp, 405, r->service, "/IWBEP/CM_MGW_RT/025", NULL,
                  "Method '%s_UPDATE_ENTITY' not implemented in data provider class", s->name);
        return;
    }
    json_t *e = get_by_keys(c, s, t->keys);
    if (!e) {
        sap_error(resp, 404, r->service, "/IWBEP/CM_MGW_RT/020", NULL,
                  "Resource not found for segment '%sType'", s->name);
        return;
    }
    if (check_if_match(r, s, e, resp)) {
        json_decref(e);
        return;
    }
    json_error_t je;
    json_t *in = json_loadb(r->body, r->body_len, 0, &je);
    if (!json_is_object(in)) {
        json_decref(in);
        json_decref(e);
        sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/006", NULL, "Malformed JSON payload: %s",
                  je.text);
        return;
    }
    json_t *d = json_object_get(in, "d");
    json_t *body = json_is_object(d) && json_object_size(in) == 1 ? d : in;
    struct wctx w = {
        .c = c, .service = r->service, .details = json_array(), .expand = json_array()};
    if (put) {
        /* PUT replaces: updatable properties missing from the body are cleared. */
        for (const struct sap_prop *p = s->props; p->name; p++) {
            if (!(p->flags & (P_RO | P_KEY)) && !json_object_get(body, p->name)) {
                json_object_del(e, p->name);
            }
        }
        fill_defaults(s, e);
    }
    json_t *navs = json_object();
    apply_props(&w, s, e, body, 0, navs);
    if (json_object_size(navs)) {
        wfail(&w, 400, "/IWBEP/CM_MGW_RT/016", "",
              "Navigation properties cannot be changed with %s", r->method);
    }
    json_decref(navs);
    if (strcmp(s->name, "A_BusinessPartner") == 0) {
        bp_names(e);
    }
    if (strcmp(s->name, "A_SalesOrderItem") == 0 && !w.status) {
        const char *cur = NULL;
        double net =
            unit_price(c, sget(e, "Material"), &cur) * strtod(sget(e, "RequestedQuantity"), NULL);
        set_amount(e, "NetAmount", net);
    }
    if (w.status) {
        sap_error(resp, w.status, r->service, w.code, json_incref(w.details), "%s", w.msg);
    } else {
        sap_touch(s, e, 0);
        (void)sap_put(c, s, e);
        if (strcmp(s->name, "A_SalesOrderItem") == 0) {
            recompute_order(c, sget(e, "SalesOrder"));
        }
        char etag[160];
        etag_of(s, e, etag, sizeof etag);
        sb_resp_body(resp, 204, "", "", 0);
        sb_resp_header(resp, "dataserviceversion", "1.0");
        if (etag[0]) {
            sb_resp_header(resp, "ETag", etag);
        }
    }
    json_decref(w.details);
    json_decref(w.expand);
    json_decref(in);
    json_decref(e);
}

static void delete_children(struct sap_ctx *c, const struct sap_set *s, json_t *e)
{
    for (const struct sap_nav *n = s->navs; n->name; n++) {
        const struct sap_set *t = sap_set_any(n->target);
        if (!strcmp(t->name, "A_SlsPrcgConditionRecord")) {
            continue;
        }
        char pk[128];
        first_key_of(s, e, n->from, pk, sizeof pk);
        json_t *kids = sap_list(c, t, pk);
        size_t i;
        json_t *k;
        json_array_foreach(kids, i, k)
        {
            char *ks = sap_key_str(t, k);
            (void)sap_del(c, t, ks);
            es_free(ks);
        }
        json_decref(kids);
    }
}

static void do_delete(struct sap_ctx *c, const struct rq *r, struct target *t, struct sb_resp *resp)
{
    const struct sap_set *s = t->set;
    if (!t->keys) {
        sap_error(resp, 405, r->service, "/IWBEP/CM_MGW_RT/025", NULL,
                  "DELETE needs a single entity (key predicate)");
        return;
    }
    if (!(s->flags & S_DELETE)) {
        sap_error(resp, 405, r->service, "/IWBEP/CM_MGW_RT/025", NULL,
                  "Method '%s_DELETE_ENTITY' not implemented in data provider class", s->name);
        return;
    }
    json_t *e = get_by_keys(c, s, t->keys);
    if (!e) {
        sap_error(resp, 404, r->service, "/IWBEP/CM_MGW_RT/020", NULL,
                  "Resource not found for segment '%sType'", s->name);
        return;
    }
    if (check_if_match(r, s, e, resp) == 0) {
        delete_children(c, s, e);
        char *ks = sap_key_str(s, e);
        (void)sap_del(c, s, ks);
        es_free(ks);
        if (strcmp(s->name, "A_SalesOrderItem") == 0) {
            recompute_order(c, sget(e, "SalesOrder"));
        }
        sb_resp_body(resp, 204, "", "", 0);
    }
    json_decref(e);
}

static void service_doc(const struct rq *r, struct sb_resp *resp)
{
    json_t *sets = json_array();
    for (int i = 0; sap_set_at(i); i++) {
        if (strcmp(sap_set_at(i)->service, r->service) == 0) {
            json_array_append_new(sets, json_string(sap_set_at(i)->name));
        }
    }
    reply_json(resp, 200, json_pack("{s:o}", "EntitySets", sets));
}

static void exec_batch(struct sap_ctx *c, const struct rq *r, const char *ctype,
                       struct sb_resp *resp);

/* Executes one request against a service (after authentication and CSRF). */
static void exec_rq(struct sap_ctx *c, const struct rq *r, const char *ctype, struct sb_resp *resp)
{
    const char *m = r->method;
    if (strcmp(r->res, "") == 0) {
        if (strcmp(m, "GET") && strcmp(m, "HEAD")) {
            sap_error(resp, 405, r->service, "/IWBEP/CM_MGW_RT/025", NULL,
                      "Method %s is not allowed on the service document", m);
            return;
        }
        service_doc(r, resp);
        return;
    }
    if (strcmp(r->res, "$metadata") == 0) {
        struct es_buf b;
        es_buf_init(&b, 0);
        sap_metadata(&b, r->service);
        sb_resp_body(resp, 200, "application/xml", b.data, b.len);
        sb_resp_header(resp, "dataserviceversion", "2.0");
        es_buf_release(&b);
        return;
    }
    if (strcmp(r->res, "$batch") == 0) {
        if (strcmp(m, "POST") != 0 || r->in_batch) {
            sap_error(resp, 405, r->service, "/IWBEP/CM_MGW_RT/025", NULL,
                      "$batch requires POST (and cannot be nested)");
            return;
        }
        exec_batch(c, r, ctype, resp);
        return;
    }
    struct qopts q;
    char why[256];
    if (parse_qopts(r->query, &q, why, sizeof why) != 0) {
        sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/004", NULL, "%s", why);
        return;
    }
    if (q.format && strcmp(q.format, "json") != 0) {
        sap_error(resp, 415, r->service, "/IWBEP/CM_MGW_RT/005", NULL,
                  "The sandbox serves JSON only ($format=json); '%s' is not supported", q.format);
        free_qopts(&q);
        return;
    }
    struct target t;
    if (resolve(c, r, &t, resp) == 0) {
        if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
            if (t.keys || (t.nav && !t.nav->many)) {
                read_entity(c, r, &t, &q, resp);
            } else {
                read_feed(c, r, &t, &q, resp);
            }
        } else if (strcmp(m, "POST") == 0) {
            do_create(c, r, &t, resp);
        } else if (strcmp(m, "PATCH") == 0 || strcmp(m, "MERGE") == 0) {
            do_update(c, r, &t, resp, 0);
        } else if (strcmp(m, "PUT") == 0) {
            do_update(c, r, &t, resp, 1);
        } else if (strcmp(m, "DELETE") == 0) {
            do_delete(c, r, &t, resp);
        } else {
            sap_error(resp, 405, r->service, "/IWBEP/CM_MGW_RT/025", NULL,
                      "Method %s is not supported", m);
        }
    }
    target_release(&t);
    free_qopts(&q);
}

/* ---- $batch ---- */

static const char *reason(int st)
{
    switch (st) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 412:
        return "Precondition Failed";
    case 415:
        return "Unsupported Media Type";
    case 428:
        return "Precondition Required";
    default:
        return st >= 500 ? "Internal Server Error" : "Unknown";
    }
}

static void resp_free(struct sb_resp *r)
{
    for (int i = 0; i < r->nheaders; i++) {
        es_free(r->hname[i]);
        es_free(r->hvalue[i]);
    }
    r->nheaders = 0;
    es_buf_release(&r->body);
}

static void resp_init(struct sb_resp *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
    es_buf_init(&r->body, 0);
}

/* Boundary parameter of a multipart content type into out. */
static int boundary_of(const char *ctype, char *out, size_t cap)
{
    const char *b = ctype ? strcasestr(ctype, "boundary=") : NULL;
    if (!b) {
        return -1;
    }
    b += 9;
    size_t n;
    if (*b == '"') {
        b++;
        n = strcspn(b, "\"");
    } else {
        n = strcspn(b, "; \r\n");
    }
    if (!n || n >= cap) {
        return -1;
    }
    memcpy(out, b, n);
    out[n] = '\0';
    return 0;
}

struct part {
    const char *head; /* headers, up to the blank line */
    size_t head_len;
    const char *body;
    size_t body_len;
};

/* Finds the blank line ending a header block in [p, end): *hl = header length, *sl = length
 * of the separator (0 when there is no blank line: all headers, no body). */
static void blank_split(const char *p, const char *end, size_t *hl, size_t *sl)
{
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
        *hl = 0;
        *sl = 2;
        return;
    }
    if (end - p >= 1 && p[0] == '\n') {
        *hl = 0;
        *sl = 1;
        return;
    }
    for (const char *q = p; q < end; q++) {
        if (end - q >= 4 && !memcmp(q, "\r\n\r\n", 4)) {
            *hl = (size_t)(q - p);
            *sl = 4;
            return;
        }
        if (end - q >= 2 && !memcmp(q, "\n\n", 2)) {
            *hl = (size_t)(q - p);
            *sl = 2;
            return;
        }
    }
    *hl = (size_t)(end - p);
    *sl = 0;
}

/* Splits [p, end) by "--boundary" delimiters. Returns the number of parts or -1. */
static int split_parts(const char *p, const char *end, const char *boundary, struct part *parts,
                       int max)
{
    char delim[256];
    snprintf(delim, sizeof delim, "--%s", boundary);
    size_t dl = strlen(delim);
    const char *cur = memmem(p, (size_t)(end - p), delim, dl);
    int n = 0;
    while (cur) {
        cur += dl;
        if (cur + 2 <= end && cur[0] == '-' && cur[1] == '-') {
            return n;
        }
        while (cur < end && (*cur == ' ' || *cur == '\t')) {
            cur++;
        }
        if (cur < end && *cur == '\r') {
            cur++;
        }
        if (cur < end && *cur == '\n') {
            cur++;
        }
        const char *next = memmem(cur, (size_t)(end - cur), delim, dl);
        if (!next || n >= max) {
            return -1;
        }
        const char *pe = next;
        if (pe > cur && pe[-1] == '\n') {
            pe--;
        }
        if (pe > cur && pe[-1] == '\r') {
            pe--;
        }
        size_t hl = 0, sl = 0;
        blank_split(cur, pe, &hl, &sl);
        parts[n].head = cur;
        parts[n].head_len = hl;
        parts[n].body = cur + hl + sl;
        parts[n].body_len = (size_t)(pe - parts[n].body);
        n++;
        cur = next;
    }
    return -1;
}

/* Value of header name in a header block, copied into out. */
static const char *hdr(const char *h, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *end = h + len;
    const char *line = h;
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) {
            eol = end;
        }
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < eol && *v == ' ') {
                v++;
            }
            size_t n = (size_t)(eol - v);
            while (n && (v[n - 1] == '\r' || v[n - 1] == ' ')) {
                n--;
            }
            if (n >= cap) {
                n = cap - 1;
            }
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
        line = eol + 1;
    }
    return NULL;
}

/* Content-ID of a part: in the MIME part headers or, as some clients send it, among the
 * headers of the embedded request. */
static int cid_in_part(const struct part *pt, const char *h, size_t hlen, char *out, size_t cap)
{
    return hdr(pt->head, pt->head_len, "Content-ID", out, cap) != NULL ||
           hdr(h, hlen, "Content-ID", out, cap) != NULL;
}

/* Runs one application/http part; the response is appended as an HTTP message. */
static int run_part(struct sap_ctx *c, const struct rq *outer, const struct part *pt,
                    int in_changeset, struct es_buf *out, json_t *cids)
{
    /* pt->body = "METHOD URL HTTP/1.1\r\nheaders\r\n\r\nbody" */
    const char *p = pt->body;
    const char *end = pt->body + pt->body_len;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    struct sb_resp r;
    resp_init(&r);
    char method[16] = "", url[4096] = "";
    char cid[128] = "";
    int status;
    if (!eol || sscanf(p, "%15s %4095s", method, url) != 2) {
        sap_error(&r, 400, outer->service, "/IWBEP/CM_MGW_RT/030", NULL,
                  "Malformed request line in $batch part");
    } else {
        const char *h = eol + 1;
        size_t hlen = 0, sl = 0;
        blank_split(h, end, &hlen, &sl);
        const char *body = h + hlen + sl;
        char ifm[200], ct[200];
        const char *im = hdr(h, hlen, "If-Match", ifm, sizeof ifm);
        const char *cty = hdr(h, hlen, "Content-Type", ct, sizeof ct);
        (void)cty;
        /* URL relative to the service root, or an absolute path into it */
        char *u = url;
        char prefix[256];
        snprintf(prefix, sizeof prefix, ROOT "%s/", outer->service);
        char *abs = strstr(u, prefix);
        if (abs) {
            u = abs + strlen(prefix);
        }
        char *qm = strchr(u, '?');
        if (qm) {
            *qm = '\0';
        }
        /* "$<Content-ID>/rest" refers to an entity created earlier in the change set. */
        char resolved[4096];
        int bad_ref = 0;
        if (u[0] == '$' && cids && strcmp(u, "$batch") != 0) {
            size_t n = strcspn(u + 1, "/");
            char id[128];
            snprintf(id, sizeof id, "%.*s", (int)(n < sizeof id ? n : sizeof id - 1), u + 1);
            const char *target = json_string_value(json_object_get(cids, id));
            if (target) {
                snprintf(resolved, sizeof resolved, "%s%s", target, u + 1 + n);
                u = resolved;
            } else {
                bad_ref = 1;
            }
        }
        if (!cid_in_part(pt, h, hlen, cid, sizeof cid)) {
            cid[0] = '\0';
        }
        struct rq sub = {.method = method,
                         .service = outer->service,
                         .res = u,
                         .query = qm ? qm + 1 : "",
                         .body = body,
                         .body_len = (size_t)(end - body),
                         .if_match = im,
                         .in_batch = 1};
        if (bad_ref) {
            sap_error(&r, 404, outer->service, "/IWBEP/CM_MGW_RT/033", NULL,
                      "Content-ID reference '%.60s' is unknown in this change set", u);
        } else if (in_changeset && strcmp(method, "GET") == 0) {
            sap_error(&r, 400, outer->service, "/IWBEP/CM_MGW_RT/031", NULL,
                      "A change set must not contain GET requests");
        } else if (!in_changeset && strcmp(method, "GET") != 0) {
            sap_error(&r, 400, outer->service, "/IWBEP/CM_MGW_RT/032", NULL,
                      "Modifying requests must be inside a change set");
        } else {
            char *bodycopy = es_xstrndup(body, sub.body_len);
            sub.body = bodycopy;
            exec_rq(c, &sub, NULL, &r);
            es_free(bodycopy);
        }
    }
    status = r.status;
    if (cids && cid[0] && status == 201) {
        for (int i = 0; i < r.nheaders; i++) {
            char prefix[256];
            snprintf(prefix, sizeof prefix, ROOT "%s/", outer->service);
            const char *at =
                strcasecmp(r.hname[i], "Location") == 0 ? strstr(r.hvalue[i], prefix) : NULL;
            if (at) {
                json_object_set_new(cids, cid, json_string(at + strlen(prefix)));
            }
        }
    }
    es_buf_puts(out, "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    if (cid[0]) {
        es_buf_printf(out, "Content-ID: %s\r\n", cid);
    }
    es_buf_printf(out, "\r\nHTTP/1.1 %d %s\r\n", r.status, reason(r.status));
    if (r.ctype[0]) {
        es_buf_printf(out, "Content-Type: %s\r\n", r.ctype);
    }
    es_buf_printf(out, "Content-Length: %zu\r\n", r.body.len);
    for (int i = 0; i < r.nheaders; i++) {
        es_buf_printf(out, "%s: %s\r\n", r.hname[i], r.hvalue[i]);
    }
    es_buf_puts(out, "\r\n");
    if (r.body.len) {
        es_buf_append(out, r.body.data, r.body.len);
    }
    es_buf_puts(out, "\r\n");
    resp_free(&r);
    return status;
}

#define MAXPARTS 1000

static void exec_batch(struct sap_ctx *c, const struct rq *r, const char *ctype,
                       struct sb_resp *resp)
{
    char bnd[200];
    if (boundary_of(ctype, bnd, sizeof bnd) != 0) {
        sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/030", NULL,
                  "$batch needs Content-Type multipart/mixed with a boundary");
        return;
    }
    struct part *parts = es_xcalloc(MAXPARTS, sizeof *parts);
    struct part *inner = es_xcalloc(MAXPARTS, sizeof *inner);
    int n = split_parts(r->body, r->body + r->body_len, bnd, parts, MAXPARTS);
    if (n < 0) {
        sap_error(resp, 400, r->service, "/IWBEP/CM_MGW_RT/030", NULL,
                  "Malformed $batch body: parts are not delimited by --%s ... --%s--", bnd, bnd);
        goto out;
    }
    char rb[64];
    snprintf(rb, sizeof rb, "%llX", (unsigned long long)sb_now_ms());
    struct es_buf out;
    es_buf_init(&out, 0);
    for (int i = 0; i < n; i++) {
        char ct[300], cs[200];
        if (!hdr(parts[i].head, parts[i].head_len, "Content-Type", ct, sizeof ct)) {
            ct[0] = '\0';
        }
        es_buf_printf(&out, "--batch_%s\r\n", rb);
        if (strncasecmp(ct, "multipart/mixed", 15) == 0 && boundary_of(ct, cs, sizeof cs) == 0) {
            int m =
                split_parts(parts[i].body, parts[i].body + parts[i].body_len, cs, inner, MAXPARTS);
            struct es_buf cso;
            es_buf_init(&cso, 0);
            struct sb_resp failed;
            resp_init(&failed);
            int bad = 0;
            json_t *cids = json_object();
            sap_db_begin(c, "sap_changeset");
            for (int k = 0; k < m && !bad; k++) {
                es_buf_printf(&cso, "--changeset_%s\r\n", rb);
                int st = run_part(c, r, &inner[k], 1, &cso, cids);
                if (st >= 400) {
                    bad = 1;
                    /* Re-run is not possible: keep the failing answer from the buffer. */
                }
            }
            if (m < 0) {
                bad = 1;
            }
            if (bad) {
                sap_db_end(c, "sap_changeset", 0);
                /* One error response stands for the whole change set. */
                const char *last = NULL;
                char key[64];
                snprintf(key, sizeof key, "--changeset_%s\r\n", rb);
                for (const char *q = cso.data; q && (q = strstr(q, key)) != NULL;
                     q += strlen(key)) {
                    last = q + strlen(key);
                }
                if (m < 0 || !last) {
                    sap_error(&failed, 400, r->service, "/IWBEP/CM_MGW_RT/030", NULL,
                              "Malformed change set");
                    es_buf_puts(&out, "Content-Type: application/http\r\n"
                                      "Content-Transfer-Encoding: binary\r\n\r\n");
                    es_buf_printf(&out,
                                  "HTTP/1.1 400 Bad Request\r\nContent-Type: %s\r\n"
                                  "Content-Length: %zu\r\n\r\n",
                                  failed.ctype, failed.body.len);
                    es_buf_append(&out, failed.body.data, failed.body.len);
                    es_buf_puts(&out, "\r\n");
                } else {
                    es_buf_puts(&out, last);
                }
            } else {
                sap_db_end(c, "sap_changeset", 1);
                es_buf_printf(&out, "Content-Type: multipart/mixed; boundary=changeset_%s\r\n\r\n",
                              rb);
                if (cso.len) {
                    es_buf_append(&out, cso.data, cso.len);
                }
                es_buf_printf(&out, "--changeset_%s--\r\n", rb);
            }
            resp_free(&failed);
            json_decref(cids);
            es_buf_release(&cso);
        } else {
            run_part(c, r, &parts[i], 0, &out, NULL);
        }
    }
    es_buf_printf(&out, "--batch_%s--\r\n", rb);
    char rct[120];
    snprintf(rct, sizeof rct, "multipart/mixed; boundary=batch_%s", rb);
    sb_resp_body(resp, 202, rct, out.data, out.len);
    sb_resp_header(resp, "dataserviceversion", "2.0");
    es_buf_release(&out);
out:
    es_free(parts);
    es_free(inner);
}

/* ---- transport: auth, CSRF, routing ---- */

static int session_token(struct sap_ctx *c, const char *sid, char *tok, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int ok = 0;
    if (sqlite3_prepare_v2(c->db, "SELECT token, created FROM sap_csrf WHERE sid=?1", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            long long created = sqlite3_column_int64(st, 1);
            if (c->csrf_ttl_s <= 0 || sb_now_ms() - created < (long long)c->csrf_ttl_s * 1000) {
                snprintf(tok, cap, "%s", (const char *)sqlite3_column_text(st, 0));
                ok = 1;
            }
        }
    }
    sqlite3_finalize(st);
    return ok;
}

static void session_new(struct sap_ctx *c, char *sid, size_t sidcap, char *tok, size_t tokcap)
{
    char raw[64];
    random_b64(raw, sizeof raw, 24);
    /* cookie-safe session id */
    size_t j = 0;
    for (size_t i = 0; raw[i] && j + 1 < sidcap; i++) {
        if (raw[i] != '=' && raw[i] != '+' && raw[i] != '/') {
            sid[j++] = raw[i];
        }
    }
    sid[j] = '\0';
    random_b64(tok, tokcap, 16);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db,
                           "INSERT OR REPLACE INTO sap_csrf(sid,token,created) "
                           "VALUES(?1,?2,?3)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tok, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, sb_now_ms());
        (void)sqlite3_step(st);
    }
    sqlite3_finalize(st);
}

int sap_handle(void *ctx, const struct sb_req *req, struct sb_resp *resp)
{
    struct sap_ctx *c = ctx;
    const char *path = req->path;
    char sidbuf[80], tok[80];
    const char *sid = cookie_value(sb_req_header(req, "Cookie"), COOKIE, sidbuf, sizeof sidbuf);
    int session_ok = sid && session_token(c, sid, tok, sizeof tok);
    const char *auth = sb_req_header(req, "Authorization");
    if (!(auth && strcmp(auth, c->basic) == 0) && !session_ok) {
        sb_resp_body(resp, 401, "text/html; charset=utf-8",
                     "<html><head><title>Logon Error Message</title></head><body>"
                     "<p>Logon failed: user or password wrong</p></body></html>",
                     strlen("<html><head><title>Logon Error Message</title></head><body>"
                            "<p>Logon failed: user or password wrong</p></body></html>"));
        sb_resp_header(resp, "WWW-Authenticate",
                       "Basic realm=\"SAP NetWeaver Application Server [SBX/100]\"");
        return 0;
    }
    if (strncmp(path, ROOT, strlen(ROOT)) != 0) {
        sap_error(resp, 404, "", "/IWFND/MED/170", NULL,
                  "No service found for path '%.100s' (services live under " ROOT ")", path);
        return 0;
    }
    const char *svc = path + strlen(ROOT);
    size_t sl = strcspn(svc, "/;");
    char service[80];
    if (sl == 0 || sl >= sizeof service) {
        sap_error(resp, 404, "", "/IWFND/MED/170", NULL, "No service found in path '%.100s'", path);
        return 0;
    }
    memcpy(service, svc, sl);
    service[sl] = '\0';
    if (!sap_service_known(service)) {
        sap_error(resp, 404, service, "/IWFND/MED/170", NULL,
                  "No service found for namespace '/SAP/', name '%s', version '0001'", service);
        return 0;
    }
    const char *rest = svc + sl;
    while (*rest == ';') { /* matrix parameters like ;v=0001 */
        rest += strcspn(rest, "/");
    }
    if (*rest == '/') {
        rest++;
    }
    const char *method = req->method;
    const char *tunnel = sb_req_header(req, "X-HTTP-Method");
    if (strcmp(method, "POST") == 0 && tunnel && *tunnel) {
        method = tunnel;
    }
    const char *want = sb_req_header(req, "x-csrf-token");
    int modifying = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
    if (!modifying && want && strcasecmp(want, "fetch") == 0) {
        if (!session_ok) {
            session_new(c, sidbuf, sizeof sidbuf, tok, sizeof tok);
            char ck[200];
            snprintf(ck, sizeof ck, COOKIE "=%s; path=/; HttpOnly", sidbuf);
            sb_resp_header(resp, "Set-Cookie", ck);
        }
        sb_resp_header(resp, "x-csrf-token", tok);
    }
    if (modifying && (!session_ok || !want || strcmp(want, tok) != 0)) {
        sb_resp_body(resp, 403, "text/plain; charset=utf-8", "CSRF token validation failed",
                     strlen("CSRF token validation failed"));
        sb_resp_header(resp, "x-csrf-token", "Required");
        return 0;
    }
    struct rq r = {.method = method,
                   .service = service,
                   .res = rest,
                   .query = sb_req_query(req),
                   .body = req->body,
                   .body_len = req->body_len,
                   .if_match = sb_req_header(req, "If-Match")};
    exec_rq(c, &r, sb_req_header(req, "Content-Type"), resp);
    if (strcmp(method, "HEAD") == 0) {
        es_buf_reset(&resp->body);
    }
    return 0;
}

/* ---- admin ---- */

int sap_reset(void *ctx, const struct sb_req *req, struct sb_resp *resp)
{
    struct sap_ctx *c = ctx;
    char why[200];
    json_t *o = req->body_len ? sb_req_json(req, why) : NULL;
    const char *seed = json_string_value(json_object_get(o, "seed"));
    int demo = seed ? strcmp(seed, "demo") == 0 : strcmp(c->seed, "demo") == 0;
    (void)sap_store_clear(c);
    int rc = demo ? sap_seed_demo(c) : 0;
    json_decref(o);
    sb_resp_json(resp, rc ? 500 : 200,
                 json_pack("{s:b,s:s}", "reset", rc == 0, "seed", demo ? "demo" : "none"));
    return 0;
}

/* caps: entity set, key ("1000" or "BusinessPartner='1',AddressID='2'" or "('1')"). */
int sap_record(void *ctx, const struct sb_req *req, const struct sb_caps *caps,
               struct sb_resp *resp)
{
    struct sap_ctx *c = ctx;
    const struct sap_set *s = sap_set_any(caps->v[0]);
    if (!s) {
        sb_resp_json(resp, 404, json_pack("{s:s}", "error", "unknown entity set"));
        return 0;
    }
    json_t *keys = NULL;
    char why[256];
    const char *k = caps->v[1];
    char pred[SB_CAP_LEN + 4];
    if (k[0] == '(') {
        snprintf(pred, sizeof pred, "%s", k + 1);
        pred[strcspn(pred, ")")] = '\0';
    } else if (strchr(k, '=') || k[0] == '\'') {
        snprintf(pred, sizeof pred, "%s", k);
    } else {
        snprintf(pred, sizeof pred, "'%s'", k);
    }
    if (sap_key_parse(s, pred, &keys, why, sizeof why) != 0) {
        sb_resp_json(resp, 400, json_pack("{s:s}", "error", why));
        return 0;
    }
    json_t *e = get_by_keys(c, s, keys);
    json_decref(keys);
    if (!e) {
        sb_resp_json(resp, 404, json_pack("{s:s}", "error", "no such record"));
        return 0;
    }
    if (strcmp(req->method, "GET") == 0) {
        json_t *none = json_array();
        sb_resp_json(resp, 200, entity_out(c, s, e, none, none));
        json_decref(none);
    } else if (strcmp(req->method, "DELETE") == 0) {
        delete_children(c, s, e);
        char *ks = sap_key_str(s, e);
        (void)sap_del(c, s, ks);
        es_free(ks);
        sb_resp_json(resp, 200, json_pack("{s:b}", "deleted", 1));
    } else if (strcmp(req->method, "PATCH") == 0) {
        json_t *in = sb_req_json(req, why);
        struct wctx w = {
            .c = c, .service = s->service, .details = json_array(), .expand = json_array()};
        if (!json_is_object(in)) {
            sb_resp_json(resp, 400, json_pack("{s:s}", "error", "body must be a JSON object"));
        } else {
            /* Behind the client's back: read-only fields may change too (a user in SAP). */
            const char *pk;
            json_t *pv;
            json_object_foreach(in, pk, pv)
            {
                const struct sap_prop *p = sap_prop_find(s, pk);
                if (!p || (p->flags & P_KEY)) {
                    wfail(&w, 400, "SANDBOX/1", pk, "unknown or key property '%s'", pk);
                    continue;
                }
                json_t *sv = sap_value_in(p, pv, why, sizeof why);
                if (!sv) {
                    wfail(&w, 400, "SANDBOX/2", pk, "%s", why);
                    continue;
                }
                json_object_set_new(e, pk, sv);
            }
            if (w.status) {
                sb_resp_json(resp, 400, json_pack("{s:s}", "error", w.msg));
            } else {
                if (strcmp(s->name, "A_BusinessPartner") == 0) {
                    bp_names(e);
                }
                sap_touch(s, e, 0);
                (void)sap_put(c, s, e);
                json_t *none = json_array();
                sb_resp_json(resp, 200, entity_out(c, s, e, none, none));
                json_decref(none);
            }
        }
        json_decref(in);
        json_decref(w.details);
        json_decref(w.expand);
    } else {
        sb_resp_json(resp, 405, json_pack("{s:s}", "error", "use GET, PATCH or DELETE"));
    }
    json_decref(e);
    return 0;
}
