/* SPDX-License-Identifier: MIT */
/*
 * The shared HTTP client of the connectors (libcurl).
 *
 * One struct es_http per connector instance: it owns one CURL easy handle, so connections,
 * TLS sessions and cookies (SAP's CSRF session) are reused between calls. HTTP/2 is used
 * over TLS when the server offers it, HTTP/1.1 otherwise. Proxies come from the environment
 * (http_proxy, https_proxy, no_proxy: libcurl reads them).
 *
 * Invariants and contracts:
 *  - Settings come from the system config: url (base for relative paths), timeout (total),
 *    connect_timeout, max_response (a response body larger than that fails, nothing is
 *    kept past it), verify_tls (on by default), auth (oauth2 grants, basic, bearer).
 *  - es_http_send() fails only when no HTTP answer arrived (timeout -> ES_ETIMEOUT, refused /
 *    reset / DNS -> ES_EIO, body too large or cut short -> ES_EPROTOCOL). Any status code is
 *    a successful send; es_http_check() turns a status into a classified failure:
 *      401 -> ES_EAUTH, 403 -> ES_EAUTH, 404 -> ES_ENOTFOUND, 409/412 -> ES_ECONFLICT,
 *      429 and 503 with Retry-After -> ES_ERATELIMIT (err->retry_after in seconds),
 *      other 5xx -> ES_EREMOTE, other 4xx -> ES_EVALIDATION,
 *    and, when JSON was expected, an HTML page or a body that is not JSON -> ES_EPROTOCOL
 *    with the content type and the first printable bytes (redacted) in the message.
 *    The connector's error hook (es_http_set_error_hook) reads the remote system's own
 *    code and message from the body and may choose a more precise code.
 *  - OAuth2 grants: client_credentials, password, refresh_token (a rotated refresh token in
 *    the answer is used from then on and, with store_file, saved 0600 and preferred at the
 *    next start) and JWT bearer (an RS256 assertion signed with the PEM key of
 *    private_key_env, OpenSSL libcrypto).
 *  - OAuth2: the token is fetched on the first call that needs it and cached per process
 *    (keyed by token URL, client id and user), shared by the instances of one system.
 *    A 401 on an authenticated call drops the cached token, fetches a new one and repeats
 *    the call exactly once; a second 401 is ES_EAUTH.
 *  - Secrets are read with es_config_secret() (so the logger redacts them) and are never
 *    formatted into err messages. Debug lines log method, URL path, status and time only.
 *  - Not thread-safe per instance (connector instances are used by one thread at a time);
 *    the token cache is locked.
 */
#ifndef ES_CONNECTORS_HTTP_H
#define ES_CONNECTORS_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/node.h"

struct es_http;

/* One response. Headers are those of the final answer (after 100-continue). */
struct es_http_resp {
    long status;        /* HTTP status, 0 when no answer */
    struct es_buf body; /* bounded by the system's max_response */
    struct es_buf hdrs; /* "name\0value\0" pairs (names lower-cased) */
    char content_type[96];
    double elapsed_s; /* total time of the last attempt */
};

/* One request. Only method and url are required. */
struct es_http_req_opts {
    const char *method;         /* "GET", "POST", "PATCH", "MERGE", ... */
    const char *url;            /* absolute, or a path appended to the base URL */
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const char *body;           /* request body or NULL */
    size_t body_len;
    const char *content_type; /* of body; default application/json when body set */
    int no_auth;              /* 1: do not add credentials (token endpoints) */
    int no_reauth;            /* 1: a 401 is final (the caller handles it) */
};

/* What the connector's error hook reports about an error body. */
struct es_http_remote {
    enum es_code code;  /* ES_OK = keep the code derived from the status */
    char code_text[64]; /* the remote system's own error code */
    char msg[256];      /* the remote system's own message */
};
typedef void (*es_http_error_fn)(void *ud, const struct es_http_resp *resp,
                                 struct es_http_remote *out);

/* Opens a client for a configured system (reads url, timeouts, TLS, max_response, auth).
 * Credentials are checked lazily (first call). ES_ECONFIG when the url is missing or an
 * auth variable is unset. OUT: *out, free with es_http_free(). */
ES_NODISCARD int es_http_new(const struct es_system_cfg *cfg, struct es_http **out,
                             struct es_err *err);
void es_http_free(struct es_http *h);

/* Lower-level constructor for tests and tools: no auth, given base url and limits. */
ES_NODISCARD int es_http_new_plain(const char *base_url, long timeout_ms, long connect_timeout_ms,
                                   size_t max_response, struct es_http **out, struct es_err *err);

/* Installs the hook that parses the remote system's error bodies (called by es_http_check). */
void es_http_set_error_hook(struct es_http *h, es_http_error_fn fn, void *ud);
/* Sets the system name used in err->system and in log lines. */
void es_http_set_name(struct es_http *h, const char *name);
/* Base URL (without trailing slash). After an OAuth2 login that returned instance_url,
 * relative paths go there. */
const char *es_http_base(const struct es_http *h);

void es_http_resp_init(struct es_http_resp *r, const struct es_http *h);
void es_http_resp_release(struct es_http_resp *r);
/* Value of a response header (case-insensitive name), NULL when absent. */
const char *es_http_resp_header(const struct es_http_resp *r, const char *name);

/* Sends one request (with auth, one re-authentication on 401). ES_OK whenever an answer
 * arrived, whatever its status; resp is reset first. */
ES_NODISCARD int es_http_send(struct es_http *h, const struct es_http_req_opts *rq,
                              struct es_http_resp *resp, struct es_err *err);
/* Classifies a received answer (see the header comment); ES_OK for 1xx-3xx and, when
 * expect_json, a body that parses. what names the call for messages ("GET /query"). */
ES_NODISCARD int es_http_check(struct es_http *h, const struct es_http_resp *resp, int expect_json,
                               const char *what, struct es_err *err);
/* send + check + parse: the usual JSON call. *out is NULL for an empty body (204).
 * resp may be NULL when the caller needs no headers. OUT: *out, json_decref(). */
ES_NODISCARD int es_http_json(struct es_http *h, const struct es_http_req_opts *rq,
                              struct es_http_resp *resp, json_t **out, struct es_err *err);

/* Classification of a status alone (exposed for tests): the code es_http_check uses. */
enum es_code es_http_status_code(long status, int has_retry_after);
/* Parses Retry-After (delta seconds or HTTP date); returns seconds >= 0, or -1. */
double es_http_parse_retry_after(const char *value, long long now_epoch);
/* Appends s percent-encoded (RFC 3986 unreserved kept) to b. */
int es_http_escape(struct es_buf *b, const char *s);

/* Connector options (systems.<name>.options). Checks that opts is a mapping whose keys are all
 * in known (NULL-terminated); an unknown key is ES_ECONFIG "FILE:LINE:COL: <connector> option
 * 'x' is unknown (did you mean 'y'?)". NULL opts is fine. */
ES_NODISCARD int es_http_options_check(const struct es_node *opts, const char *const *known,
                                       const char *connector, struct es_err *err);
/* Reads one scalar option into *out when present (else leaves the default). Bad values are
 * ES_ECONFIG at the value's position. */
ES_NODISCARD int es_http_opt_int(const struct es_node *opts, const char *key, long long min,
                                 long long max, long long *out, struct es_err *err);
ES_NODISCARD int es_http_opt_bool(const struct es_node *opts, const char *key, int *out,
                                  struct es_err *err);
ES_NODISCARD int es_http_opt_duration(const struct es_node *opts, const char *key, int64_t *out,
                                      struct es_err *err);
ES_NODISCARD int es_http_opt_str(const struct es_node *opts, const char *key, const char **out,
                                 struct es_err *err);

/* OAuth2 token cache, exposed for tests and for `erpsync ping`: drops every cached access
 * token and every rotated refresh token held in memory (as a restart would). */
void es_http_token_cache_clear(void);
/* Number of token requests this process made (tests: expiry causes exactly one refetch). */
long es_http_token_fetches(void);

#endif
