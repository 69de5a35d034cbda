/* SPDX-License-Identifier: MIT */
/*
 * Webhook endpoints: one per system with webhook.path. A request is checked (HMAC-SHA256
 * signature, or the Outbound Message shape), parsed into records (the connector's
 * parse_webhook, or the generic JSON shape of webhook.h), enqueued as changes of every enabled
 * realtime flow reading from that system, and answered only after the engine reports the
 * journal commit: 202 with a JSON receipt, or the connector's own reply (the SOAP ack).
 * Every refusal is one log line and a 4xx, with nothing enqueued.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "server/internal.h"
#include "server/webhook.h"

/* One refusal: a log line (never the body or the secret) and a JSON error answer. */
static enum MHD_Result refuse(struct es_server *srv, struct MHD_Connection *conn,
                              struct es__req *req, unsigned status, const struct es_err *e)
{
    struct es_log_ctx lc = {NULL, req->hook->sys->name};
    es_log(&lc, status >= 500 ? ES_LOG_ERROR : ES_LOG_WARN,
           "webhook %s refused (%u %s, %zu bytes): %s", req->hook->sys->webhook.path, status,
           es_code_name(e->code), req->body.len, e->msg);
    return es__reply_error(srv, conn, req, status, "%s", e->msg);
}

/* Adds the duration of an accepted request to the hook's latency histogram. */
static void observe(struct es__hook *hook, const struct es__req *req)
{
    int64_t us = es__mono_us() - req->t0_us;
    if (us < 0) {
        us = 0;
    }
    size_t b = 0;
    while (b < ES__NBUCKETS && (double)us > es__buckets[b] * 1e6) {
        b++;
    }
    __atomic_fetch_add(&hook->dur_le[b], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hook->dur_sum_us, (uint64_t)us, __ATOMIC_RELAXED);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct es_buf *hdrs = cls;
    struct es_http_header h = {key, value ? value : ""};
    if (hdrs->len / sizeof h >= 128) {
        return MHD_NO;
    }
    es_buf_append(hdrs, &h, sizeof h);
    return MHD_YES;
}

/* The connector's parse_webhook, with the request as the connector interface sees it. */
static int parse_with_connector(struct es__hook *hook, struct MHD_Connection *conn,
                                struct es__req *req, const char *method, const char *url,
                                struct es_batch *out, struct es_http_reply *reply,
                                struct es_err *err)
{
    struct es_buf hdrs;
    es_buf_init(&hdrs, 0);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &hdrs);
    struct es_http_req hr = {
        .method = method,
        .path = url,
        .content_type =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .nheaders = hdrs.len / sizeof(struct es_http_header),
        .headers = (const struct es_http_header *)hdrs.data,
        .body = req->body.data ? req->body.data : "",
        .body_len = req->body.len,
    };
    pthread_mutex_lock(&hook->lock);
    int rc = es_conn_parse_webhook(hook->conn, &hr, out, reply, err);
    pthread_mutex_unlock(&hook->lock);
    es_buf_release(&hdrs);
    return rc;
}

static unsigned status_of(enum es_code code)
{
    switch (code) {
    case ES_EAUTH:
        return 401;
    case ES_EPOISON:
    case ES_EVALIDATION:
    case ES_EINVAL:
    case ES_EPROTOCOL:
        return 400;
    case ES_ENOMEM:
        return 413;
    case ES_ERATELIMIT:
        return 429;
    case ES_ESTORE:
    case ES_EIO:
    case ES_ETIMEOUT:
        return 503;
    default:
        return 500;
    }
}

enum MHD_Result es__webhook_handle(struct es_server *srv, struct MHD_Connection *conn,
                                   struct es__req *req, const char *method, const char *url)
{
    struct es__hook *hook = req->hook;
    const struct es_webhook_cfg *wh = &hook->sys->webhook;
    struct es_err e;
    es_err_clear(&e);
    if (strcmp(method, "POST") != 0) {
        es_err_set(&e, ES_EINVAL, "webhooks accept POST only");
        return refuse(srv, conn, req, 405, &e);
    }
    if (req->body.len == 0) {
        es_err_set(&e, ES_EPOISON, "empty body");
        return refuse(srv, conn, req, 400, &e);
    }
    if (hook->secret) {
        const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, wh->signature_header);
        if (es_webhook_verify(hook->secret, hook->secret_len, req->body.data, req->body.len, sig,
                              &e) != ES_OK) {
            return refuse(srv, conn, req, 401, &e);
        }
    }
    if (wh->format == ES_WEBHOOK_OUTBOUND_MESSAGE &&
        es_webhook_check_outbound(req->body.data, req->body.len, &e) != ES_OK) {
        return refuse(srv, conn, req, 400, &e);
    }
    if (hook->nflows == 0) {
        es_err_set(&e, ES_ECONFIG, "no enabled realtime flow reads from system %s",
                   hook->sys->name);
        return refuse(srv, conn, req, 404, &e);
    }

    struct es_batch batch;
    es_batch_init(&batch);
    struct es_http_reply reply = {0};
    int rc;
    if (hook->has_parse) {
        rc = parse_with_connector(hook, conn, req, method, url, &batch, &reply, &e);
    } else if (wh->format == ES_WEBHOOK_OUTBOUND_MESSAGE) {
        rc = es_webhook_parse_outbound(req->body.data, req->body.len, &batch, &e);
    } else {
        rc = es_webhook_parse_json(req->body.data, req->body.len, &batch, &e);
    }
    enum MHD_Result mr;
    if (rc != ES_OK) {
        mr = refuse(srv, conn, req, status_of(e.code), &e);
        goto done;
    }

    /* Durable before the answer: the engine returns after the journal commit. One call per
     * flow; when a later one fails the sender retries the whole request and the changes
     * already committed are recognised as known (flow, key, version). */
    for (size_t i = 0; i < hook->nflows && batch.count > 0; i++) {
        rc = es_engine_enqueue(srv->engine, srv->cfg->flows[hook->flows[i]].name, &batch, &e);
        if (rc != ES_OK) {
            mr = refuse(srv, conn, req, status_of(e.code), &e);
            goto done;
        }
    }
    __atomic_fetch_add(&hook->records, (uint64_t)batch.count, __ATOMIC_RELAXED);
    if (reply.body || reply.status) {
        unsigned st = reply.status ? (unsigned)reply.status : 200;
        size_t len = reply.body ? strlen(reply.body) : 0;
        mr = es__reply(srv, conn, req, st, reply.content_type[0] ? reply.content_type : NULL,
                       reply.body, len);
        reply.body = NULL;
    } else if (wh->format == ES_WEBHOOK_OUTBOUND_MESSAGE) {
        mr = es__reply(srv, conn, req, 200, "text/xml; charset=utf-8",
                       es_xstrdup(es_webhook_outbound_ack), strlen(es_webhook_outbound_ack));
    } else {
        char *body = es_xasprintf("{\"accepted\":%zu,\"flows\":%zu}", batch.count, hook->nflows);
        mr = es__reply(srv, conn, req, 202, "application/json", body, strlen(body));
    }
    observe(hook, req);
done:
    es_http_reply_release(&reply);
    es_batch_release(&batch);
    return mr;
}
