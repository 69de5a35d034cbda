/* SPDX-License-Identifier: MIT */
/*
 * The connector registry and the call-site wrappers. Connectors are listed here, one line
 * each; the rest of erpsync finds them by the `connector:` name of a system.
 */
#include <string.h>

#include "connectors/connector.h"
#include "core/mem.h"

/* One extern per connector file (alphabetical). */
extern const struct es_connector es_connector_csv;
extern const struct es_connector es_connector_memory;
extern const struct es_connector es_connector_postgres;
extern const struct es_connector es_connector_salesforce;
extern const struct es_connector es_connector_sap_odata;
extern const struct es_connector es_connector_tryton;

static const struct es_connector *const registry[] = {
    &es_connector_csv,        &es_connector_memory,    &es_connector_postgres,
    &es_connector_salesforce, &es_connector_sap_odata, &es_connector_tryton,
};

const struct es_connector *es_connector_find(const char *name)
{
    for (size_t i = 0; name && i < ES_ARRAY_LEN(registry); i++) {
        if (strcmp(registry[i]->name, name) == 0) {
            return registry[i];
        }
    }
    return NULL;
}

const struct es_connector *es_connector_at(size_t i)
{
    return i < ES_ARRAY_LEN(registry) ? registry[i] : NULL;
}

int es_conn_open(const struct es_system_cfg *cfg, struct es_conn **out, struct es_err *err)
{
    *out = NULL;
    const struct es_connector *type = es_connector_find(cfg->connector);
    if (!type) {
        es_err_context(err, cfg->name, NULL, NULL);
        return es_err_set(err, ES_ECONFIG, "connector '%s' is not available in this build",
                          cfg->connector ? cfg->connector : "(none)");
    }
    ES_ASSERT(type->abi == ES_CONNECTOR_ABI);
    struct es_conn *c = es_xcalloc(1, sizeof *c);
    c->type = type;
    c->cfg = cfg;
    c->api_used = c->api_max = -1;
    c->ctx = type->ctx_size ? es_xcalloc(1, type->ctx_size) : NULL;
    int rc = type->ops->init(c, err);
    if (rc != ES_OK) {
        es_err_context(err, cfg->name, NULL, NULL);
        es_conn_close(c);
        return rc;
    }
    *out = c;
    return ES_OK;
}

void es_conn_close(struct es_conn *c)
{
    if (!c) {
        return;
    }
    c->type->ops->fini(c);
    es_free(c->ctx);
    es_free(c);
}

static int unsupported(struct es_conn *c, const char *what, struct es_err *err)
{
    es_err_context(err, c->cfg->name, NULL, NULL);
    return es_err_set(err, ES_EINVAL, "%s is not supported by the %s connector", what,
                      c->type->name);
}

/* Adds the system name to err after a failed call. */
static int done(struct es_conn *c, int rc, struct es_err *err)
{
    if (rc != ES_OK && err && !err->system[0]) {
        es_err_context(err, c->cfg->name, NULL, NULL);
    }
    return rc;
}

int es_conn_ping(struct es_conn *c, struct es_err *err)
{
    if (!c->type->ops->ping) {
        return unsupported(c, "ping", err);
    }
    return done(c, c->type->ops->ping(c, err), err);
}

int es_conn_describe(struct es_conn *c, const char *object, json_t **out, struct es_err *err)
{
    *out = NULL;
    if (!c->type->ops->describe) {
        return unsupported(c, "describe", err);
    }
    return done(c, c->type->ops->describe(c, object, out, err), err);
}

int es_conn_read_changes(struct es_conn *c, const char *object, const char *watermark, size_t limit,
                         struct es_batch *out, struct es_err *err)
{
    if (!c->type->ops->read_changes) {
        return unsupported(c, "reading changes", err);
    }
    return done(c, c->type->ops->read_changes(c, object, watermark, limit, out, err), err);
}

int es_conn_read_page(struct es_conn *c, const char *object, const char *page, size_t limit,
                      struct es_batch *out, struct es_err *err)
{
    if (!c->type->ops->read_page) {
        return unsupported(c, "reading pages", err);
    }
    return done(c, c->type->ops->read_page(c, object, page, limit, out, err), err);
}

int es_conn_get(struct es_conn *c, const char *object, const char *id, json_t **out,
                struct es_err *err)
{
    *out = NULL;
    if (!c->type->ops->get) {
        return unsupported(c, "get", err);
    }
    return done(c, c->type->ops->get(c, object, id, out, err), err);
}

int es_conn_write_batch(struct es_conn *c, const char *object, enum es_write_op op,
                        const char *external_id, const struct es_write *in, size_t n,
                        struct es_write_result *results, struct es_err *err)
{
    if (!c->type->ops->write_batch) {
        return unsupported(c, "writing", err);
    }
    int rc = c->type->ops->write_batch(c, object, op, external_id, in, n, results, err);
    for (size_t i = 0; i < n; i++) {
        if (results[i].code != ES_OK && !results[i].err.system[0]) {
            es_err_context(&results[i].err, c->cfg->name, NULL, in[i].key);
        }
    }
    return done(c, rc, err);
}

int es_conn_parse_webhook(struct es_conn *c, const struct es_http_req *req, struct es_batch *out,
                          struct es_http_reply *reply, struct es_err *err)
{
    if (!c->type->ops->parse_webhook) {
        return unsupported(c, "webhooks", err);
    }
    return done(c, c->type->ops->parse_webhook(c, req, out, reply, err), err);
}

void es_batch_init(struct es_batch *b)
{
    memset(b, 0, sizeof *b);
}

void es_batch_add(struct es_batch *b, const char *key, const char *version, int deleted,
                  json_t *data)
{
    ES_GROW(b->items, b->cap, b->count + 1);
    struct es_record *r = &b->items[b->count++];
    r->key = es_xstrdup(key ? key : "");
    r->version = es_xstrdup(version ? version : "");
    r->deleted = deleted;
    r->data = data;
}

void es_batch_release(struct es_batch *b)
{
    if (!b) {
        return;
    }
    for (size_t i = 0; i < b->count; i++) {
        es_free(b->items[i].key);
        es_free(b->items[i].version);
        json_decref(b->items[i].data);
    }
    es_free(b->items);
    es_free(b->watermark);
    es_free(b->next_page);
    memset(b, 0, sizeof *b);
}

void es_write_results_release(struct es_write_result *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        es_free(r[i].target_id);
        r[i].target_id = NULL;
        json_decref(r[i].readback);
        r[i].readback = NULL;
    }
}

void es_http_reply_release(struct es_http_reply *r)
{
    if (r) {
        es_free(r->body);
        r->body = NULL;
    }
}
