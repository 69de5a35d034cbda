/* SPDX-License-Identifier: MIT */
/*
 * Webhook endpoints: one per system with webhook.path. A request is checked (HMAC-SHA256
 * signature, or the Outbound Message shape), parsed into records (the connector's
 * parse_webhook, or the generic JSON shape of webhook.h), enqueued as changes of every enabled
 * realtime flow reading from that system, and answered only after the engine reports the
 * journal commit: 202 with a JSON receipt, or the connector's own reply (the SOAP ack).
 * Every refusal is one log line and a 4xx, with nothing enqueued.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
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
    char peer[INET6_ADDRSTRLEN] = "?";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        const void *a = sa->sa_family == AF_INET6
                            ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                            : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
        if (!inet_ntop(sa->sa_family, a, peer, sizeof peer)) {
            es_strlcpy(peer, "?", sizeof peer);
        }
    }
    es_log(&lc, status >= 500 ? ES_LOG_ERROR : ES_LOG_WARN,
           "webhook %s from %s refused (%u %s, %zu bytes): %s", req->hook->sys->webhook.path, peer,
           status, es_code_name(e->code), req->body.len, e->msg);
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

/* ---- The batcher: one engine enqueue for every webhook that arrived meanwhile ---------- */

/* Whether flow i of the config takes records of object ("" = unknown: every flow does). */
static int takes(const struct es_server *srv, size_t i, const char *object)
{
    const char *so = srv->cfg->flows[i].source_object;
    return !object[0] || !so || strcmp(so, object) == 0;
}

/* Commits the queued requests of one hook and object (list linked by next) for every flow
 * that takes them, in one engine enqueue. */
static void commit_hook(struct es_server *srv, struct es__hook *hook, struct es__req *list)
{
    size_t total = 0;
    for (struct es__req *r = list; r; r = r->next) {
        total += r->nchg;
    }
    /* Every change of these requests, in arrival order: shallow copies (the strings stay
     * owned by each request). */
    struct es_change_in *allc = es_xmalloc((total ? total : 1) * sizeof *allc);
    size_t kc = 0;
    for (struct es__req *r = list; r; r = r->next) {
        if (r->nchg) {
            memcpy(allc + kc, r->chg, r->nchg * sizeof *allc);
            kc += r->nchg;
        }
    }
    struct es_engine_part stack[8];
    struct es_engine_part *parts =
        hook->nflows <= 8 ? stack : es_xmalloc(hook->nflows * sizeof *parts);
    size_t nparts = 0;
    for (size_t i = 0; i < hook->nflows; i++) {
        if (takes(srv, hook->flows[i], list->object)) {
            parts[nparts].flow = srv->cfg->flows[hook->flows[i]].name;
            parts[nparts].records = NULL;
            parts[nparts].changes = allc;
            parts[nparts].nchanges = total;
            nparts++;
        }
    }
    struct es_err e;
    es_err_clear(&e);
    int rc = total > 0 ? es_engine_enqueue_multi(srv->engine, parts, nparts, &e) : ES_OK;
    if (parts != stack) {
        es_free(parts);
    }
    es_free(allc);
    __atomic_fetch_add(&srv->commits, 1, __ATOMIC_RELAXED);
    if (rc == ES_OK) {
        __atomic_fetch_add(&hook->records, (uint64_t)total, __ATOMIC_RELAXED);
    }
    for (struct es__req *r = list, *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        r->rc = rc;
        r->err = e;
        r->state = 2;
        MHD_resume_connection(r->conn);
    }
}

static void *batcher_main(void *arg)
{
    struct es_server *srv = arg;
    pthread_mutex_lock(&srv->q_lock);
    for (;;) {
        while (!srv->q_head && !srv->q_stop) {
            pthread_cond_wait(&srv->q_cond, &srv->q_lock);
        }
        if (!srv->q_head) {
            break;
        }
        struct es__req *list = srv->q_head;
        srv->q_head = srv->q_tail = NULL;
        pthread_mutex_unlock(&srv->q_lock);
        /* Split by hook and object (keeping arrival order inside each), then commit each. */
        while (list) {
            struct es__hook *hook = list->hook;
            const char *object = list->object;
            struct es__req *mine = NULL, **mine_tail = &mine, *rest = NULL, **rest_tail = &rest;
            for (struct es__req *r = list, *next; r; r = next) {
                next = r->next;
                r->next = NULL;
                if (r->hook == hook && strcmp(r->object, object) == 0) {
                    *mine_tail = r;
                    mine_tail = &r->next;
                } else {
                    *rest_tail = r;
                    rest_tail = &r->next;
                }
            }
            commit_hook(srv, hook, mine);
            list = rest;
        }
        pthread_mutex_lock(&srv->q_lock);
    }
    srv->q_stopped = 1;
    pthread_mutex_unlock(&srv->q_lock);
    return NULL;
}

int es__webhooks_start(struct es_server *srv, struct es_err *err)
{
    pthread_mutex_init(&srv->q_lock, NULL);
    pthread_cond_init(&srv->q_cond, NULL);
    if (pthread_create(&srv->batcher, NULL, batcher_main, srv) != 0) {
        pthread_cond_destroy(&srv->q_cond);
        pthread_mutex_destroy(&srv->q_lock);
        return es_err_set(err, ES_EINTERNAL, "cannot start the webhook batcher thread");
    }
    srv->q_started = 1;
    return ES_OK;
}

void es__webhooks_stop(struct es_server *srv)
{
    if (!srv->q_started) {
        return;
    }
    pthread_mutex_lock(&srv->q_lock);
    srv->q_stop = 1;
    pthread_cond_signal(&srv->q_cond);
    pthread_mutex_unlock(&srv->q_lock);
    pthread_join(srv->batcher, NULL);
    pthread_cond_destroy(&srv->q_cond);
    pthread_mutex_destroy(&srv->q_lock);
    srv->q_started = 0;
}

void es__webhook_release(struct es__req *req)
{
    for (size_t i = 0; i < req->nchg; i++) {
        if (req->payloads) {
            free(req->payloads[i]); /* checksrc: ok (jansson allocates with malloc) */
        }
        if (req->versions) {
            es_free(req->versions[i]);
        }
    }
    es_free(req->payloads);
    es_free(req->versions);
    req->payloads = req->versions = NULL;
    es_batch_release(&req->batch);
    es_free(req->chg);
    req->chg = NULL;
    req->nchg = 0;
    es_http_reply_release(&req->reply);
}

/* The generic JSON shape without a JSON tree (es_webhook_scan_json): the changes point into
 * the request's own body, whose closing quotes of ids and versions become NULs. Returns 0
 * when the body needs the full parser (which then decides and words any refusal). */
static int fast_json(struct es__req *req)
{
    struct es_webhook_rec one[4];
    struct es_webhook_rec *r = one;
    size_t n = es_webhook_scan_json(req->body.data, req->body.len, one, ES_ARRAY_LEN(one),
                                    req->object, sizeof req->object);
    if (n > ES_ARRAY_LEN(one)) {
        r = es_xmalloc(n * sizeof *r);
        n = es_webhook_scan_json(req->body.data, req->body.len, r, n, req->object,
                                 sizeof req->object);
    }
    if (n > 0) {
        req->chg = es_xmalloc(n * sizeof *req->chg);
        req->nchg = n;
        for (size_t i = 0; i < n; i++) {
            struct es_change_in *c = &req->chg[i];
            ((char *)r[i].key)[r[i].key_len] = '\0';
            ((char *)r[i].version)[r[i].version_len] = '\0';
            c->flow = NULL;
            c->key = r[i].key;
            c->version = r[i].version;
            c->deleted = r[i].deleted;
            c->payload = r[i].data;
            c->payload_len = r[i].data_len;
        }
    }
    if (r != one) {
        es_free(r);
    }
    return n > 0;
}

/* The records of req->batch as changes (payload text and, when a connector gave none, a
 * content version computed here, on the request's thread rather than the batcher's). */
static void batch_changes(struct es__req *req)
{
    size_t n = req->batch.count;
    if (n == 0) {
        return;
    }
    req->chg = es_xcalloc(n, sizeof *req->chg);
    req->payloads = es_xcalloc(n, sizeof *req->payloads);
    req->versions = es_xcalloc(n, sizeof *req->versions);
    req->nchg = n;
    for (size_t i = 0; i < n; i++) {
        es_engine_change_from_record(&req->batch.items[i], NULL, &req->chg[i], &req->payloads[i],
                                     &req->versions[i]);
    }
}

/* The answer once the batcher has committed (or failed to commit) the request. */
static enum MHD_Result answer(struct es_server *srv, struct MHD_Connection *conn,
                              struct es__req *req)
{
    struct es__hook *hook = req->hook;
    if (req->rc != ES_OK) { /* not stored: the sender must retry later */
        return refuse(srv, conn, req, 503, &req->err);
    }
    enum MHD_Result mr;
    if (req->reply.body || req->reply.status) {
        unsigned st = req->reply.status ? (unsigned)req->reply.status : 200;
        size_t len = req->reply.body ? strlen(req->reply.body) : 0;
        mr = es__reply(srv, conn, req, st,
                       req->reply.content_type[0] ? req->reply.content_type : NULL, req->reply.body,
                       len);
        req->reply.body = NULL;
    } else if (hook->sys->webhook.format == ES_WEBHOOK_OUTBOUND_MESSAGE && hook->ack) {
        mr = es__reply_ready(srv, conn, req, 200, hook->ack);
    } else if (hook->sys->webhook.format == ES_WEBHOOK_OUTBOUND_MESSAGE) {
        mr = es__reply(srv, conn, req, 200, "text/xml; charset=utf-8",
                       es_xstrdup(es_webhook_outbound_ack), strlen(es_webhook_outbound_ack));
    } else if (req->nchg == 1 && req->nflows < ES__RECEIPTS && hook->receipt1[req->nflows]) {
        mr = es__reply_ready(srv, conn, req, 202, hook->receipt1[req->nflows]);
    } else {
        char *body = es_xasprintf("{\"accepted\":%zu,\"flows\":%zu}", req->nchg, req->nflows);
        mr = es__reply(srv, conn, req, 202, "application/json", body, strlen(body));
    }
    observe(hook, req);
    return mr;
}

enum MHD_Result es__webhook_handle(struct es_server *srv, struct MHD_Connection *conn,
                                   struct es__req *req, const char *method, const char *url)
{
    if (req->state == 2) {
        return answer(srv, conn, req);
    }
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
        if (es_webhook_key_verify(hook->key, req->body.data, req->body.len, sig, &e) != ES_OK) {
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
    es_batch_init(&req->batch);
    int rc;
    if (hook->has_parse) {
        rc = parse_with_connector(hook, conn, req, method, url, &req->batch, &req->reply, &e);
    } else if (wh->format == ES_WEBHOOK_OUTBOUND_MESSAGE) {
        rc = es_webhook_parse_outbound(req->body.data, req->body.len, &req->batch, &e);
    } else if (fast_json(req)) {
        rc = ES_OK;
    } else {
        rc = es_webhook_parse_json_object(req->body.data, req->body.len, &req->batch, req->object,
                                          sizeof req->object, &e);
    }
    if (rc != ES_OK) {
        return refuse(srv, conn, req, status_of(e.code), &e);
    }
    if (!req->chg) {
        batch_changes(req);
    }
    if (hook->has_parse || wh->format == ES_WEBHOOK_OUTBOUND_MESSAGE) {
        (void)es_webhook_object(wh->format, req->body.data, req->body.len, req->object,
                                sizeof req->object);
    }
    req->nflows = 0;
    for (size_t i = 0; i < hook->nflows; i++) {
        req->nflows += (size_t)takes(srv, hook->flows[i], req->object);
    }
    if (req->nchg == 0 || req->nflows == 0) {
        /* Nothing to keep (a CDC gap event), or no realtime flow reads this object. */
        if (req->nflows == 0) {
            struct es_log_ctx lc = {NULL, hook->sys->name};
            es_log(&lc, ES_LOG_DEBUG, "webhook %s: no realtime flow reads %s; %zu records ignored",
                   wh->path, req->object, req->nchg);
        }
        req->state = 2;
        req->rc = ES_OK;
        return answer(srv, conn, req);
    }
    /* Durable before the answer: park the connection until the batcher has committed. The
     * check of q_stopped and the suspension happen under q_lock, so a request is either
     * queued for a batcher that will answer it, or refused now. */
    pthread_mutex_lock(&srv->q_lock);
    if (srv->q_stop || srv->q_stopped) {
        pthread_mutex_unlock(&srv->q_lock);
        es_err_set(&e, ES_EINTERNAL, "erpsync is stopping");
        return refuse(srv, conn, req, 503, &e);
    }
    req->state = 1;
    req->conn = conn;
    MHD_suspend_connection(conn);
    if (srv->q_tail) {
        srv->q_tail->next = req;
    } else {
        srv->q_head = req;
    }
    srv->q_tail = req;
    pthread_cond_signal(&srv->q_cond);
    pthread_mutex_unlock(&srv->q_lock);
    return MHD_YES;
}
