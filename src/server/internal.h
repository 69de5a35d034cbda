/* SPDX-License-Identifier: MIT */
/*
 * What the files of src/server share: the server instance, one request's state, routes and
 * the reply helpers that also count every answer by route and status (for /metrics).
 * Not a public header: only the files of src/server include it.
 */
#ifndef ES_SERVER_INTERNAL_H
#define ES_SERVER_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

#include "connectors/connector.h"
#include "core/buf.h"
#include "core/config.h"
#include "server/server.h"
#include "server/webhook.h"
#include "store/store.h"

/* Fixed routes; webhook routes follow them, one per hook (ES__ROUTE_HOOKS + hook index). */
enum {
    ES__ROUTE_OTHER = 0, /* unknown path (404) */
    ES__ROUTE_HEALTHZ,
    ES__ROUTE_METRICS,
    ES__ROUTE_API,
    ES__ROUTE_HOOKS
};

/* Statuses the request counters know; anything else is counted under the last slot. */
#define ES__NSTATUS 18
extern const unsigned es__status_codes[ES__NSTATUS];

/* Upper bounds (seconds) of the webhook latency histogram buckets. */
#define ES__NBUCKETS 12
extern const double es__buckets[ES__NBUCKETS];

/* Receipts kept ready per hook: {"accepted":1,"flows":N} for N < ES__RECEIPTS. */
#define ES__RECEIPTS 8

/* One system's webhook endpoint. */
struct es__hook {
    const struct es_system_cfg *sys;
    const char *secret; /* HMAC key (env value), NULL for outbound_message without one */
    size_t secret_len;
    struct es_webhook_key *key; /* secret prepared for HMAC-SHA256 */
    struct es_conn *conn;       /* for parse_webhook; one thread at a time (lock) */
    pthread_mutex_t lock;
    int has_parse; /* the connector has parse_webhook */
    size_t nflows;
    size_t *flows;    /* indexes into cfg->flows: enabled realtime flows from sys */
    uint64_t records; /* records accepted (committed), atomic */
    uint64_t dur_le[ES__NBUCKETS + 1]; /* accepted request durations, atomic, +Inf last */
    uint64_t dur_sum_us;
    /* Ready answers, shared by every connection (MHD counts references): the receipt of one
     * record for each number of flows, and the Outbound Message acknowledgement. */
    struct MHD_Response *receipt1[ES__RECEIPTS];
    struct MHD_Response *ack;
};

struct es_server {
    const struct es_config *cfg;
    struct es_engine *engine;
    struct es_store *store; /* the engine's (lists, show) */
    struct MHD_Daemon *mhd;
    uint16_t port;
    const char *admin_token; /* NULL: admin API refuses everything (401) */
    size_t nhooks;
    struct es__hook *hooks;
    size_t nroutes;
    uint64_t *counts; /* [nroutes][ES__NSTATUS], updated with atomic adds */
    int64_t started_ms;
    struct es__outcome_tail *tail; /* metrics.c: outcome counters read from the audit */
    /* webhooks.c: the queue of parsed webhooks waiting for one shared engine enqueue. */
    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;
    struct es__req *q_head, *q_tail;
    int q_stop;    /* es_server_stop asked the batcher to finish */
    int q_stopped; /* the batcher has finished: webhooks answer 503 */
    int q_started;
    pthread_t batcher;
    uint64_t commits; /* engine enqueue rounds of the batcher (atomic) */
};

/* One request in flight (MHD's per-connection request context). */
struct es__req {
    int route;
    struct es__hook *hook; /* webhook route */
    struct es_buf body;    /* max = the route's body limit */
    int too_big;
    int64_t t0_us; /* es__mono_us() at the first call */
    /* webhooks.c: a parsed webhook waiting for (state 1) or past (state 2) its commit. */
    int state;
    char object[64]; /* the source object the body is about, "" = unknown (every flow) */
    size_t nflows;   /* flows of the hook that take it */
    struct MHD_Connection *conn;
    struct es_batch batch;
    /* What the batcher enqueues, in arrival order (flow set by the engine): spans into body
     * on the fast path of the generic JSON shape (keys and versions NUL-terminated in place),
     * else views of batch with the payloads and computed versions below (owned). */
    struct es_change_in *chg;
    size_t nchg;
    char **payloads; /* [nchg] jansson text (free), or NULL on the fast path */
    char **versions; /* [nchg] es_free, or NULL */
    struct es_http_reply reply;
    int rc;
    struct es_err err;
    struct es__req *next;
};

/* Queues status with body (owned, freed with es_free; may be NULL) and counts it. */
enum MHD_Result es__reply(struct es_server *srv, struct MHD_Connection *conn, struct es__req *req,
                          unsigned status, const char *content_type, char *body, size_t len);
/* Queues a ready response (not consumed: the caller keeps its reference) and counts it. */
enum MHD_Result es__reply_ready(struct es_server *srv, struct MHD_Connection *conn,
                                struct es__req *req, unsigned status, struct MHD_Response *resp);
/* Serialises obj (reference stolen) and queues it as application/json. */
enum MHD_Result es__reply_json(struct es_server *srv, struct MHD_Connection *conn,
                               struct es__req *req, unsigned status, json_t *obj);
/* {"error": "<msg>"} with status. */
enum MHD_Result es__reply_error(struct es_server *srv, struct MHD_Connection *conn,
                                struct es__req *req, unsigned status, const char *fmt, ...)
    ES_PRINTF(5, 6);

/* Monotonic microseconds. */
int64_t es__mono_us(void);

/* Constant-time equality of two byte strings of possibly different lengths. */
int es__secret_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Route handlers, called once the whole body is in req->body. */
enum MHD_Result es__webhook_handle(struct es_server *srv, struct MHD_Connection *conn,
                                   struct es__req *req, const char *method, const char *url);
enum MHD_Result es__metrics_handle(struct es_server *srv, struct MHD_Connection *conn,
                                   struct es__req *req);
enum MHD_Result es__healthz_handle(struct es_server *srv, struct MHD_Connection *conn,
                                   struct es__req *req);
enum MHD_Result es__admin_handle(struct es_server *srv, struct MHD_Connection *conn,
                                 struct es__req *req, const char *method, const char *url);

struct es__outcome_tail;
/* webhooks.c: starts / drains and stops the thread that commits queued webhooks. */
int es__webhooks_start(struct es_server *srv, struct es_err *err);
void es__webhooks_stop(struct es_server *srv);
/* webhooks.c: releases what a webhook request holds (called when the request ends). */
void es__webhook_release(struct es__req *req);

/* metrics.c: sets up / frees the outcome counters (reads the newest audit id). */
void es__metrics_init(struct es_server *srv);
void es__metrics_free(struct es_server *srv);

/* admin.c: splits "{entity}/{system}/{id}" (what follows /api/xref/; the id keeps any further
 * slashes) into entity[ecap], system[scap] and *id (pointing into rest). Returns 1, or 0 when
 * a part is missing, empty or too long. */
int es__xref_path(const char *rest, char *entity, size_t ecap, char *system, size_t scap,
                  const char **id);

/* The label of a route for metrics ("/healthz", "/hooks/crm", "other"). */
const char *es__route_name(const struct es_server *srv, int route);

#endif
