/* SPDX-License-Identifier: MIT */
/*
 * erpsync's own HTTP server (libmicrohttpd): webhook endpoints per system, /healthz,
 * /metrics (Prometheus text) and the admin JSON API under /api/.
 *
 * Invariants:
 *  - A webhook is answered 2xx only after every change it carried is committed to the
 *    journal (the engine's enqueue returns after the durable group commit). Anything else is
 *    a 4xx/5xx answer with one log line, and nothing of that request was enqueued.
 *  - Request bodies are bounded: server.max_body, or the system's webhook.max_body for its
 *    webhook path; beyond it the answer is 413 and the bytes are discarded.
 *  - Secrets (webhook HMAC keys, the admin token) are read with es_config_secret() at start
 *    and compared in constant time; they are never logged.
 *  - The server borrows cfg and engine: both must outlive it (stop the server first).
 */
#ifndef ES_SERVER_SERVER_H
#define ES_SERVER_SERVER_H

#include <stdint.h>

#include "core/config.h"
#include "core/err.h"

struct es_engine;
struct es_server;

/**
 * Starts the server on cfg->server.listen ("host:port"; port 0 picks a free port, see
 * es_server_port()) with a pool of cfg->server.threads epoll threads, plus one batcher thread
 * that commits the webhooks queued meanwhile with one engine enqueue for all their flows (webhook
 * connections are suspended until their commit, so no thread waits for an fsync).
 * Opens one connector instance per webhook system whose connector has parse_webhook.
 * Errors: ES_ECONFIG (bad listen address, webhook without hmac_secret_env, secret env unset),
 * ES_EIO (cannot bind). OUT: *out, stop with es_server_stop().
 * Thread context: any thread; the server runs on its own threads until stopped.
 */
ES_NODISCARD int es_server_start(const struct es_config *cfg, struct es_engine *engine,
                                 struct es_server **out, struct es_err *err);
/** Stops accepting, waits for requests in flight, frees everything. NULL-tolerant. */
void es_server_stop(struct es_server *srv);
/** The TCP port the server listens on (useful after listening on port 0). */
uint16_t es_server_port(const struct es_server *srv);

#endif
