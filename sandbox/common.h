/* SPDX-License-Identifier: MIT */
/*
 * Shared plumbing of the sandbox emulators (erpsync-sandbox salesforce|sap).
 *
 * One emulator = one `struct sb_app` (a request handler plus optional admin callbacks) served
 * by `sb_server_start()`. The server gives every emulator, for free:
 *  - an HTTP server on libmicrohttpd, one thread per connection (so injected latency and
 *    timeouts never block other clients), keep-alive, request bodies collected up to
 *    `--max-body` (413 past it);
 *  - fault injection per route (flags `--fault` and the admin endpoint /__sandbox/faults):
 *    added latency, a fraction of 429 (with Retry-After), 500, 503, dropped connections
 *    and timeouts (the connection is held, then closed without an answer);
 *  - admin endpoints: POST /__sandbox/reset (app->reset), GET/PATCH/DELETE
 *    /__sandbox/records/{entity}/{key} (app->record: change data "behind the client's back"),
 *    GET/POST/DELETE /__sandbox/faults, GET /__sandbox/outbox, GET /__sandbox/health;
 *  - a durable outbox of HTTP notifications (webhooks, SOAP messages) delivered by a
 *    background thread with libcurl and retried with exponential back-off until acknowledged;
 *  - SQLite helpers (WAL, busy timeout) and Base64 (HMAC-SHA256 is core/hmac.h).
 *
 * Invariants and thread context:
 *  - Handlers run on MHD's connection threads. Unless app->concurrent is set, the server
 *    holds the state lock (sb_lock()) around every app callback, so an emulator may use its
 *    one sqlite3 handle without further locking. Any other thread touching emulator state
 *    (the outbox worker does) takes sb_lock() first.
 *  - Every request is counted; fault rules are checked before the handler runs.
 *  - Paths given to handlers are raw (still percent-encoded) so that an encoded '/' in an
 *    external id does not split a segment; sb_match() decodes each captured segment and
 *    sb_req_arg() decodes query values ('+' is a space).
 *  - Admin endpoints are unauthenticated: the sandbox is meant for loopback only.
 */
#ifndef ES_SANDBOX_COMMON_H
#define ES_SANDBOX_COMMON_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define SB_MAX_FAULTS  32
#define SB_MAX_HEADERS 16
#define SB_MAX_CAPS    8
#define SB_CAP_LEN     512

/* One fault rule. A request matches when its path starts with `route` and its method equals
 * `method` ("*" = any). The first matching rule applies. Rates are fractions 0..1 drawn in
 * this order: drop, timeout, 429, 500, 503. `count` > 0 limits how many requests the rule
 * may hit (then it is removed); 0 = unlimited. */
struct sb_fault {
    char route[256];
    char method[8];
    int latency_ms;      /* added before the handler (or the fault) answers */
    double rate_429;     /* answered 429 with Retry-After: retry_after */
    int retry_after;     /* seconds */
    double rate_500;     /* answered 500 */
    double rate_503;     /* answered 503 */
    double rate_drop;    /* connection closed without an answer */
    double rate_timeout; /* held for timeout_ms, then closed without an answer */
    int timeout_ms;
    double rate_body;    /* answered body_status with body (Content-Type body_ctype) instead */
    int body_status;     /* default 200 */
    char body_ctype[96]; /* default text/html */
    char body[512];      /* default a small HTML error page */
    double rate_cut;     /* the real answer (state changed!) cut to half its length */
    long count;
    long hits; /* requests this rule changed (read-only, shown by GET /__sandbox/faults) */
};

/* Command-line options shared by every emulator. */
struct sb_opts {
    char host[64];
    int port; /* 0 = pick a free port (printed on stdout) */
    char db[1024];
    char seed[32];     /* "" = empty state, "demo" = demo data */
    size_t max_body;   /* bytes, default 64 MiB */
    unsigned rng_seed; /* fault draws; 0 = from the clock */
    int quiet;         /* no request log */
    int nfaults;
    struct sb_fault faults[SB_MAX_FAULTS];
};

/* A request as a handler sees it. All strings are borrowed for the request's lifetime. */
struct sb_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* raw (percent-encoded) path, no query string */
    const char *body;   /* NUL-terminated, may contain NULs in binary uploads; "" if none */
    size_t body_len;
    void *priv; /* the server's connection (use the sb_req_* functions) */
};

/* A reply being built. Default status 200, no body. */
struct sb_resp {
    int status;
    int drop; /* set to close the connection without an answer */
    int nheaders;
    char *hname[SB_MAX_HEADERS];
    char *hvalue[SB_MAX_HEADERS];
    char ctype[96];
    struct es_buf body;
};

/* Segments captured by sb_match(), percent-decoded. */
struct sb_caps {
    int n;
    char v[SB_MAX_CAPS][SB_CAP_LEN];
};

/* An emulator. Only `name` and `handle` are required. Callbacks return an HTTP status they
 * set in resp (the return value is ignored today; return 0). */
struct sb_app {
    const char *name; /* "salesforce" */
    void *ctx;
    /* Every request that is not an admin endpoint. */
    int (*handle)(void *ctx, const struct sb_req *req, struct sb_resp *resp);
    /* POST /__sandbox/reset: drop all state and seed again (body: optional JSON options,
     * e.g. {"seed":"demo"} or {"seed":""}). */
    int (*reset)(void *ctx, const struct sb_req *req, struct sb_resp *resp);
    /* /__sandbox/records/{entity}/{key}: GET reads the stored record raw, PATCH changes
     * fields with JSON body {"Field":value} as if a user edited it in the system (timestamps
     * move, notifications fire), DELETE deletes it. caps->v[0] = entity, v[1] = key. */
    int (*record)(void *ctx, const struct sb_req *req, const struct sb_caps *caps,
                  struct sb_resp *resp);
    /* Shapes the body of an injected 429/500/503 like the real system would (optional;
     * default {"error":{"code":"SANDBOX_FAULT","status":N}}). */
    void (*fault_reply)(void *ctx, int status, struct sb_resp *resp);
    /* Set when the app does its own locking (then callbacks run concurrently). */
    int concurrent;
};

struct sb_server;

/* ---- options ---------------------------------------------------------------------- */

/* Fills defaults: host 127.0.0.1, the given port and db file, no seed, 64 MiB bodies. */
void sb_opts_init(struct sb_opts *o, int default_port, const char *default_db);
/* Looks at argv[*i]; when it is a common flag, consumes it (and its value, advancing *i)
 * and returns 1; returns 0 when the flag is not a common one and -1 on a bad value (err
 * filled). Common flags:
 *   --listen HOST:PORT  --db FILE  --seed demo|none  --max-body BYTES  --rng-seed N
 *   --fault SPEC (repeatable; SPEC = route=/x,method=GET,latency_ms=,rate_429=,
 *   retry_after=,rate_500=,rate_503=,rate_drop=,rate_timeout=,timeout_ms=,count=)  --quiet */
int sb_opts_flag(struct sb_opts *o, int argc, char **argv, int *i, struct es_err *err);
/* Help text for the common flags (static string). */
const char *sb_opts_help(void);
/* Parses one fault SPEC (see sb_opts_flag) into f. Returns ES_OK or ES_EINVAL. */
int sb_fault_parse(const char *spec, struct sb_fault *f, struct es_err *err);
/* Parses a JSON fault object (same keys as SPEC) into f. Returns ES_OK or ES_EINVAL. */
int sb_fault_from_json(const json_t *j, struct sb_fault *f, struct es_err *err);

/* ---- server ----------------------------------------------------------------------- */

/* Starts serving app on o->host:o->port (threads run in the background) and prints
 * "erpsync-sandbox NAME listening on http://HOST:PORT" on stdout (flushed).
 * OUT: caller stops it with sb_server_stop(). NULL on failure (err filled). */
struct sb_server *sb_server_start(const struct sb_opts *o, const struct sb_app *app,
                                  struct es_err *err);
/* The port actually bound. */
int sb_server_port(const struct sb_server *s);
/* Blocks until SIGINT or SIGTERM. */
void sb_server_wait_signal(void);
/* Stops serving, stops the outbox worker, frees s. NULL-tolerant. Does not close app state. */
void sb_server_stop(struct sb_server *s);
/* The state lock (recursive) that serializes app callbacks and background work. */
void sb_lock(struct sb_server *s);
void sb_unlock(struct sb_server *s);
/* Replaces the fault rules (thread-safe). */
void sb_faults_set(struct sb_server *s, const struct sb_fault *f, int n);

/* ---- requests and replies ----------------------------------------------------------- */

/* Header value (case-insensitive name) or NULL. */
const char *sb_req_header(const struct sb_req *r, const char *name);
/* Query argument, percent- and '+'-decoded, in a buffer owned by the request; NULL when
 * absent. */
const char *sb_req_arg(const struct sb_req *r, const char *name);
/* The raw query string ("a=1&b=2", no '?'), "" when none. */
const char *sb_req_query(const struct sb_req *r);
/* Parses the body as JSON. NULL when empty or invalid (then *why is set, static text or a
 * jansson message copied into why[200]). OUT: json_decref(). */
json_t *sb_req_json(const struct sb_req *r, char why[200]);

void sb_resp_status(struct sb_resp *resp, int status);
/* Adds a header (copied). Silently ignores more than SB_MAX_HEADERS. */
void sb_resp_header(struct sb_resp *resp, const char *name, const char *value);
/* Replaces the body with n bytes of ctype. */
void sb_resp_body(struct sb_resp *resp, int status, const char *ctype, const char *data, size_t n);
/* Replaces the body with the compact JSON of j and STEALS j (json_decref'd). */
void sb_resp_json(struct sb_resp *resp, int status, json_t *j);
/* Appends the compact JSON of j to b (j borrowed). */
int sb_json_dump(struct es_buf *b, const json_t *j);

/* Matches a raw path against pattern: literal segments compare exactly, "*" matches one
 * segment and captures it (decoded), a trailing "**" captures the rest (decoded, may be
 * empty). Returns 1 on match. A trailing '/' on the path is ignored. Example: the pattern
 * "/services/data/STAR/sobjects/STAR" (STAR = '*') captures the version and the object. */
int sb_match(const char *path, const char *pattern, struct sb_caps *caps);
/* Percent-decodes s[0..n) into out[cap]; plus_space turns '+' into ' '. Returns length. */
size_t sb_decode(const char *s, size_t n, char *out, size_t cap, int plus_space);
/* Appends s percent-encoded for a URL path segment or query value. */
int sb_encode(struct es_buf *b, const char *s);

/* ---- SQLite ------------------------------------------------------------------------- */

/* Opens (creating) path with WAL, synchronous=NORMAL, foreign keys on, busy timeout 5 s.
 * OUT: sqlite3_close(). Returns ES_OK or ES_ESTORE. */
int sb_db_open(const char *path, sqlite3 **db, struct es_err *err);
/* Runs SQL text (several statements allowed). Returns ES_OK or ES_ESTORE. */
int sb_db_exec(sqlite3 *db, const char *sql, struct es_err *err);

/* ---- time, ids, crypto ------------------------------------------------------------- */

/* Wall-clock milliseconds, strictly increasing across calls in this process (so two
 * writes never share a modstamp). Thread-safe. */
int64_t sb_now_ms(void);
/* HMAC-SHA256 and hex: es_hmac_sha256(), es_hmac_sha256_hex() in core/hmac.h. */
/* Base64 (standard alphabet, padded) of n bytes appended to b. */
int sb_base64(struct es_buf *b, const unsigned char *p, size_t n);

/* ---- outbox (notifications) -------------------------------------------------------- */

/* Creates the outbox table in db (the emulator's state db) and starts the delivery thread.
 * base_ms/max_ms bound the exponential back-off between tries (e.g. 500 / 60000). */
int sb_outbox_start(struct sb_server *s, sqlite3 *db, int base_ms, int max_ms, struct es_err *err);
/* Queues one POST. headers: extra header lines "Name: value" separated by '\n' (or NULL).
 * ack: a substring the answer body must contain to count as acknowledged (NULL = any 2xx).
 * Call with the state lock held (inside app callbacks it already is). */
int sb_outbox_add(struct sb_server *s, const char *url, const char *ctype, const char *headers,
                  const char *body, size_t len, const char *ack, struct es_err *err);
/* The server of this process (one per process), NULL before sb_server_start(). */
struct sb_server *sb_server_current(void);

#endif
