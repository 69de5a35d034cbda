/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server: one libmicrohttpd daemon with a pool of epoll threads, the routing of erpsync's
 * endpoints, bounded request bodies, and the per-route request counters that /metrics shows. The
 * handlers of each route live in webhooks.c, metrics.c and admin.c.
 *
 * A request body is collected into a bounded es_buf (the route's limit); when the declared
 * Content-Length is already too large the answer is 413 at once, and a chunked body that grows
 * past the limit is discarded and answered 413 at its end. Handlers run only with the whole
 * body in hand.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "server/internal.h"

const double es__buckets[ES__NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

const unsigned es__status_codes[ES__NSTATUS] = {200, 201, 202, 204, 400, 401, 403, 404, 405,
                                                409, 413, 415, 422, 429, 500, 501, 503, 0};

/* Connections served at once. */
#define ES__MAX_CONNECTIONS 1024U

static const struct es_log_ctx log_ctx = {NULL, "server"};

static size_t status_slot(unsigned status)
{
    for (size_t i = 0; i + 1 < ES__NSTATUS; i++) {
        if (es__status_codes[i] == status) {
            return i;
        }
    }
    return ES__NSTATUS - 1;
}

const char *es__route_name(const struct es_server *srv, int route)
{
    switch (route) {
    case ES__ROUTE_HEALTHZ:
        return "/healthz";
    case ES__ROUTE_METRICS:
        return "/metrics";
    case ES__ROUTE_API:
        return "/api";
    case ES__ROUTE_OTHER:
        return "other";
    default:
        if (route >= ES__ROUTE_HOOKS && (size_t)(route - ES__ROUTE_HOOKS) < srv->nhooks) {
            return srv->hooks[route - ES__ROUTE_HOOKS].sys->webhook.path;
        }
        return "other";
    }
}

int64_t es__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int es__secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Hash both sides so the comparison takes the same time whatever the lengths. */
    unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)a, alen, da);
    SHA256((const unsigned char *)b, blen, db);
    return CRYPTO_memcmp(da, db, sizeof da) == 0 && alen == blen;
}

static void count_reply(struct es_server *srv, const struct es__req *req, unsigned status)
{
    int route = req ? req->route : ES__ROUTE_OTHER;
    if (route < 0 || (size_t)route >= srv->nroutes) {
        route = ES__ROUTE_OTHER;
    }
    __atomic_fetch_add(&srv->counts[(size_t)route * ES__NSTATUS + status_slot(status)], 1,
                       __ATOMIC_RELAXED);
}

enum MHD_Result es__reply_ready(struct es_server *srv, struct MHD_Connection *conn,
                                struct es__req *req, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    count_reply(srv, req, status);
    return rc;
}

enum MHD_Result es__reply(struct es_server *srv, struct MHD_Connection *conn, struct es__req *req,
                          unsigned status, const char *content_type, char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(
        len, body ? body : (char *)"", body ? es_free : NULL);
    if (!resp) {
        es_free(body);
        return MHD_NO;
    }
    if (content_type) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    }
    if (status == 503 && req && req->route >= ES__ROUTE_HOOKS) {
        /* Nothing of the request was kept: tell the sender when to try again. */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
    }
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    count_reply(srv, req, status);
    return rc;
}

enum MHD_Result es__reply_json(struct es_server *srv, struct MHD_Connection *conn,
                               struct es__req *req, unsigned status, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text) {
        return es__reply(srv, conn, req, 500, "application/json",
                         es_xstrdup("{\"error\":\"cannot encode the answer\"}"), 35);
    }
    /* jansson allocates with malloc: hand the bytes over as they are (es_free is free). */
    size_t len = strlen(text);
    return es__reply(srv, conn, req, status, "application/json", text, len);
}

enum MHD_Result es__reply_error(struct es_server *srv, struct MHD_Connection *conn,
                                struct es__req *req, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    es_log_redact(msg, sizeof msg);
    return es__reply_json(srv, conn, req, status, json_pack("{s:s}", "error", msg));
}

static int route_of(const struct es_server *srv, const char *url)
{
    if (strcmp(url, "/healthz") == 0) {
        return ES__ROUTE_HEALTHZ;
    }
    if (strcmp(url, "/metrics") == 0) {
        return ES__ROUTE_METRICS;
    }
    if (strcmp(url, "/api") == 0 || strncmp(url, "/api/", 5) == 0) {
        return ES__ROUTE_API;
    }
    for (size_t i = 0; i < srv->nhooks; i++) {
        if (strcmp(url, srv->hooks[i].sys->webhook.path) == 0) {
            return ES__ROUTE_HOOKS + (int)i;
        }
    }
    return ES__ROUTE_OTHER;
}

static size_t route_limit(const struct es_server *srv, int route)
{
    if (route >= ES__ROUTE_HOOKS) {
        return (size_t)srv->hooks[route - ES__ROUTE_HOOKS].sys->webhook.max_body;
    }
    return (size_t)srv->cfg->server.max_body;
}

static enum MHD_Result too_big(struct es_server *srv, struct MHD_Connection *conn,
                               struct es__req *req)
{
    es_log(&log_ctx, ES_LOG_WARN, "request to %s refused (413): body over %zu bytes",
           es__route_name(srv, req->route), req->body.max);
    return es__reply_error(srv, conn, req, 413, "request body is larger than %zu bytes",
                           req->body.max);
}

static enum MHD_Result dispatch(struct es_server *srv, struct MHD_Connection *conn,
                                struct es__req *req, const char *url, const char *method)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    switch (req->route) {
    case ES__ROUTE_HEALTHZ:
        if (!get) {
            return es__reply_error(srv, conn, req, 405, "use GET");
        }
        return es__healthz_handle(srv, conn, req);
    case ES__ROUTE_METRICS:
        if (!get) {
            return es__reply_error(srv, conn, req, 405, "use GET");
        }
        return es__metrics_handle(srv, conn, req);
    case ES__ROUTE_API:
        return es__admin_handle(srv, conn, req, method, url);
    case ES__ROUTE_OTHER:
        return es__reply_error(srv, conn, req, 404, "no such endpoint: %s", url);
    default:
        return es__webhook_handle(srv, conn, req, method, url);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct es_server *srv = cls;
    struct es__req *req = *con_cls;
    if (!req) {
        req = es_xcalloc(1, sizeof *req);
        req->route = route_of(srv, url);
        if (req->route >= ES__ROUTE_HOOKS) {
            req->hook = &srv->hooks[req->route - ES__ROUTE_HOOKS];
        }
        es_buf_init(&req->body, route_limit(srv, req->route));
        req->t0_us = es__mono_us();
        *con_cls = req;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == 0 && end != cl && n > req->body.max) {
                req->too_big = 1;
                return too_big(srv, conn, req);
            }
            if (errno == 0 && end != cl && n > 0 && n <= 65536) {
                /* One allocation for a small body; large ones grow as the bytes arrive, so
                 * a declared length alone cannot make us allocate much. */
                (void)es_buf_reserve(&req->body, (size_t)n);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->too_big && es_buf_append(&req->body, upload_data, *upload_data_size) != ES_OK) {
            req->too_big = 1;
            es_buf_release(&req->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->too_big) {
        return too_big(srv, conn, req);
    }
    return dispatch(srv, conn, req, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct es__req *req = *con_cls;
    if (req) {
        es__webhook_release(req);
        es_buf_release(&req->body);
        es_free(req);
        *con_cls = NULL;
    }
}

/* "host:port", "[v6]:port" or ":port" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, int *v6,
                        struct es_err *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1]) {
        return es_err_set(err, ES_ECONFIG, "server.listen '%s' is not host:port", listen);
    }
    size_t hlen = (size_t)(colon - listen);
    if (hlen >= sizeof host) {
        return es_err_set(err, ES_ECONFIG, "server.listen '%s': host too long", listen);
    }
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        return es_err_set(err, ES_ECONFIG, "server.listen '%s': bad port", listen);
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host[0] ? host : NULL, NULL, &hints, &res);
    if (gai != 0 || !res) {
        return es_err_set(err, ES_ECONFIG, "server.listen '%s': %s", listen, gai_strerror(gai));
    }
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res); /* checksrc: ok */
    if (*v6) {
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    } else {
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    }
    return ES_OK;
}

/* The hook's ready answers (a response MHD cannot create is simply built per request). */
static void rc_ready(struct es__hook *h)
{
    for (size_t n = 0; n < ES__RECEIPTS; n++) {
        char body[64];
        int len = snprintf(body, sizeof body, "{\"accepted\":1,\"flows\":%zu}", n);
        h->receipt1[n] = MHD_create_response_from_buffer((size_t)len, body, MHD_RESPMEM_MUST_COPY);
        if (h->receipt1[n]) {
            MHD_add_response_header(h->receipt1[n], MHD_HTTP_HEADER_CONTENT_TYPE,
                                    "application/json");
        }
    }
    h->ack = MHD_create_response_from_buffer(
        strlen(es_webhook_outbound_ack), (void *)es_webhook_outbound_ack, MHD_RESPMEM_PERSISTENT);
    if (h->ack) {
        MHD_add_response_header(h->ack, MHD_HTTP_HEADER_CONTENT_TYPE, "text/xml; charset=utf-8");
    }
}

static int hooks_open(struct es_server *srv, struct es_err *err)
{
    const struct es_config *cfg = srv->cfg;
    srv->hooks = es_xcalloc(cfg->nsystems ? cfg->nsystems : 1, sizeof *srv->hooks);
    for (size_t i = 0; i < cfg->nsystems; i++) {
        const struct es_system_cfg *sys = &cfg->systems[i];
        if (!sys->webhook.path) {
            continue;
        }
        struct es__hook *h = &srv->hooks[srv->nhooks];
        h->sys = sys;
        pthread_mutex_init(&h->lock, NULL);
        srv->nhooks++;
        if (sys->webhook.hmac_secret_env) {
            h->secret = es_config_secret(sys->webhook.hmac_secret_env);
            if (!h->secret) {
                return es_err_set(err, ES_ECONFIG,
                                  "systems.%s.webhook: environment variable %s (HMAC key) is "
                                  "not set",
                                  sys->name, sys->webhook.hmac_secret_env);
            }
            h->secret_len = strlen(h->secret);
            h->key = es_webhook_key_new(h->secret, h->secret_len);
            if (!h->key) {
                return es_err_set(err, ES_EINTERNAL, "systems.%s.webhook: cannot set up HMAC",
                                  sys->name);
            }
        } else if (sys->webhook.format != ES_WEBHOOK_OUTBOUND_MESSAGE) {
            return es_err_set(err, ES_ECONFIG,
                              "systems.%s.webhook: hmac_secret_env is required (unsigned "
                              "webhooks are refused; only format outbound_message goes without)",
                              sys->name);
        }
        h->flows = es_xcalloc(cfg->nflows ? cfg->nflows : 1, sizeof *h->flows);
        for (size_t f = 0; f < cfg->nflows; f++) {
            const struct es_flow_cfg *fl = &cfg->flows[f];
            if (fl->enabled && fl->trigger.realtime && fl->from &&
                strcmp(fl->from, sys->name) == 0) {
                h->flows[h->nflows++] = f;
            }
        }
        rc_ready(h);
        const struct es_connector *type = es_connector_find(sys->connector);
        if (type && type->ops && type->ops->parse_webhook &&
            sys->webhook.format != ES_WEBHOOK_JSON) {
            int rc = es_conn_open(sys, &h->conn, err);
            if (rc != ES_OK) {
                es_err_prefix(err, "webhook of system %s", sys->name);
                return rc;
            }
            h->has_parse = 1;
        }
    }
    return ES_OK;
}

int es_server_start(const struct es_config *cfg, struct es_engine *engine, struct es_server **out,
                    struct es_err *err)
{
    *out = NULL;
    if (!engine) {
        return es_err_set(err, ES_EINVAL, "es_server_start: no engine");
    }
    es_mem_keep_freed(); /* request buffers and the journal's batches: see core/mem.h */
    struct es_server *srv = es_xcalloc(1, sizeof *srv);
    srv->cfg = cfg;
    srv->engine = engine;
    srv->store = es_engine_store(engine);
    srv->started_ms = es_clock_wall_ms();
    struct sockaddr_storage ss;
    int v6 = 0;
    int rc =
        parse_listen(cfg->server.listen ? cfg->server.listen : "127.0.0.1:8089", &ss, &v6, err);
    if (rc != ES_OK) {
        goto fail;
    }
    if (cfg->server.admin_token_env) {
        srv->admin_token = es_config_secret(cfg->server.admin_token_env);
        if (!srv->admin_token) {
            es_log(&log_ctx, ES_LOG_WARN,
                   "%s is not set: the admin API answers 401 to every request",
                   cfg->server.admin_token_env);
        }
    }
    rc = hooks_open(srv, err);
    if (rc != ES_OK) {
        goto fail;
    }
    srv->nroutes = ES__ROUTE_HOOKS + srv->nhooks;
    srv->counts = es_xcalloc(srv->nroutes * ES__NSTATUS, sizeof *srv->counts);

    es__metrics_init(srv);
    rc = es__webhooks_start(srv, err);
    if (rc != ES_OK) {
        goto fail;
    }

    /* A pool of server.threads epoll threads. A webhook never blocks one: it is suspended
     * while the batcher thread commits it together with every other webhook that arrived
     * meanwhile (one engine enqueue, one fsync), then resumed to be answered. */
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME;
    if (v6) {
        flags |= MHD_USE_IPv6;
    }
    unsigned threads = cfg->server.threads > 0 ? (unsigned)cfg->server.threads : 2;
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_TIMEOUT, 60U, MHD_OPTION_CONNECTION_LIMIT, ES__MAX_CONNECTIONS,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U, MHD_OPTION_END);
    if (!srv->mhd) {
        rc = es_err_set(err, ES_EIO, "cannot listen on %s (address in use or not local?)",
                        cfg->server.listen);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    es_log(&log_ctx, ES_LOG_INFO, "listening on %s (port %u), %zu webhook endpoint(s)",
           cfg->server.listen, (unsigned)srv->port, srv->nhooks);
    *out = srv;
    return ES_OK;
fail:
    es_server_stop(srv);
    return rc;
}

void es_server_stop(struct es_server *srv)
{
    if (!srv) {
        return;
    }
    /* First the batcher: it commits and answers what is queued, then refuses (503), so no
     * connection stays suspended when the daemon stops. */
    es__webhooks_stop(srv);
    if (srv->mhd) {
        MHD_stop_daemon(srv->mhd);
    }
    for (size_t i = 0; i < srv->nhooks; i++) {
        es_conn_close(srv->hooks[i].conn);
        es_webhook_key_free(srv->hooks[i].key);
        for (size_t n = 0; n < ES__RECEIPTS; n++) {
            if (srv->hooks[i].receipt1[n]) {
                MHD_destroy_response(srv->hooks[i].receipt1[n]);
            }
        }
        if (srv->hooks[i].ack) {
            MHD_destroy_response(srv->hooks[i].ack);
        }
        es_free(srv->hooks[i].flows);
        pthread_mutex_destroy(&srv->hooks[i].lock);
    }
    es_free(srv->hooks);
    es_free(srv->counts);
    es__metrics_free(srv);
    es_free(srv);
}

uint16_t es_server_port(const struct es_server *srv)
{
    return srv ? srv->port : 0;
}
