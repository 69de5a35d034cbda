/* SPDX-License-Identifier: MIT */
/*
 * The connector interface: how erpsync speaks to one kind of system.
 *
 * A connector is a `static const struct es_connector` descriptor (name, flags, context size,
 * ops table) listed in registry.c. Adding a system is adding a file and one line there.
 *
 * Invariants and contracts (every connector keeps them):
 *  - Records cross this interface as jansson `json_t *` objects, in the remote system's own
 *    field names (the mapping turns them into the other side's names).
 *  - Ownership: parameters are borrowed; everything a connector puts into an es_batch or an
 *    es_write_result is owned by that struct and freed by es_batch_release() /
 *    es_write_results_release().
 *  - A connector never touches the store, never sleeps and never retries on its own except
 *    the one re-authentication on 401 and the protocol handshakes (CSRF refetch, ETag
 *    re-read) that a call needs to complete. Retries, backoff and dead letters belong to the
 *    engine, which reads the classified code of each result (core/err.h).
 *  - write_batch returns one result per input record, in input order, each with its own
 *    code: ES_OK, or a classified failure carrying the remote system's code and message.
 *    The call's own return code is non-OK only when the batch as a whole failed (auth,
 *    network); then every result carries that failure too.
 *  - Watermarks and page tokens are opaque strings owned by the connector's format; the
 *    engine stores them as given and hands them back unchanged.
 *  - Instances are used by one thread at a time; the engine opens one instance per worker.
 */
#ifndef ES_CONNECTORS_CONNECTOR_H
#define ES_CONNECTORS_CONNECTOR_H

#include <jansson.h>
#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

#define ES_CONNECTOR_ABI 1

#define ES_CONN_SOURCE  0x1u /* read_changes / read_page */
#define ES_CONN_SINK    0x2u /* write_batch */
#define ES_CONN_WEBHOOK 0x4u /* parse_webhook */

enum es_write_op { ES_WRITE_UPSERT = 0, ES_WRITE_CREATE, ES_WRITE_UPDATE, ES_WRITE_DELETE };

/* A record whose data holds only the fields that changed (a Salesforce CDC UPDATE event)
 * carries this key set to true at the top level of its data. The engine then reads the whole
 * record with get() before mapping it, so fields the event lacks are neither cleared nor
 * reported missing. The key never reaches a mapping. */
#define ES_RECORD_PARTIAL "$partial"

/* One record read from a system. */
struct es_record {
    char *key;     /* the record's id in that system (never NULL) */
    char *version; /* modstamp or content hash: (flow, key, version) makes a change unique */
    int deleted;   /* the record was deleted at the source */
    json_t *data;  /* the record (NULL for a delete without data) */
};

/* A page of records plus where to continue. */
struct es_batch {
    size_t count, cap;
    struct es_record *items;
    char *watermark; /* read_changes: the new watermark after these records */
    char *next_page; /* read_page: token of the next page, NULL when this was the last */
};

/* One record to write. */
struct es_write {
    const char *key;       /* the source key (for logs and idempotency checks) */
    const char *target_id; /* the record's id in the target when known (xref), else NULL */
    const char *match;     /* value of the external-id field, when the flow has one */
    json_t *data;          /* the mapped record */
};

/* What happened to one written record. */
struct es_write_result {
    enum es_code code; /* ES_OK or a classified failure */
    char *target_id;   /* the id in the target (created or matched) */
    int created;       /* 1 when the record was created, 0 when updated */
    json_t *readback;  /* optional fields read back after the write (SAP credit status) */
    struct es_err err; /* detail when code != ES_OK */
};

/* An HTTP request as the server received it (for parse_webhook). */
struct es_http_header {
    const char *name;
    const char *value;
};
struct es_http_req {
    const char *method;
    const char *path;
    const char *content_type;
    size_t nheaders;
    const struct es_http_header *headers;
    const char *body;
    size_t body_len;
};
/* The answer a webhook needs (Outbound Messages want a SOAP ack). */
struct es_http_reply {
    int status; /* 0 = default (200) */
    char content_type[64];
    char *body; /* owned; NULL = empty */
};

struct es_conn;

struct es_connector_ops {
    /* MUST. Called once after ctx is zeroed; reads c->cfg and connects/logs in lazily or now. */
    int (*init)(struct es_conn *c, struct es_err *err);
    /* MUST. Releases ctx; tolerates a partly initialised ctx. */
    void (*fini)(struct es_conn *c);
    /* MAY. Cheap authenticated call that proves the system answers. */
    int (*ping)(struct es_conn *c, struct es_err *err);
    /* MAY. Describes object (or, when object is NULL, lists objects) as JSON:
     *   {"name": "Account", "fields": [{"name", "type", "length", "required", "nillable",
     *    "createable", "updateable", "external_id", "picklist": [..]}]}
     * or {"objects": ["Account", ...]}. OUT: *out, caller frees with json_decref(). */
    int (*describe)(struct es_conn *c, const char *object, json_t **out, struct es_err *err);
    /* MAY (sources). Records of object changed since watermark (NULL = from the start), at
     * most limit; sets out->watermark. Never skips a record committed late or sharing a
     * timestamp with the last one read (overlap and (modstamp, id) ordering). */
    int (*read_changes)(struct es_conn *c, const char *object, const char *watermark, size_t limit,
                        struct es_batch *out, struct es_err *err);
    /* MAY (sources). One page of every record of object for batch flows; page NULL = first.
     * Sets out->next_page (NULL after the last page). */
    int (*read_page)(struct es_conn *c, const char *object, const char *page, size_t limit,
                     struct es_batch *out, struct es_err *err);
    /* MAY. One record by id. OUT: *out (NULL with ES_ENOTFOUND when absent). */
    int (*get)(struct es_conn *c, const char *object, const char *id, json_t **out,
               struct es_err *err);
    /* MAY (sinks). Writes n records; results has n entries (zeroed by the caller).
     * external_id names the target field used for idempotent upserts (may be NULL). */
    int (*write_batch)(struct es_conn *c, const char *object, enum es_write_op op,
                       const char *external_id, const struct es_write *in, size_t n,
                       struct es_write_result *results, struct es_err *err);
    /* MAY (webhooks). Turns a received request into records. The server has checked the
     * HMAC signature already when the system has hmac_secret_env. A malformed body is
     * ES_EPOISON (answered 400). */
    int (*parse_webhook)(struct es_conn *c, const struct es_http_req *req, struct es_batch *out,
                         struct es_http_reply *reply, struct es_err *err);
};

struct es_connector {
    unsigned abi;     /* ES_CONNECTOR_ABI; fields are only ever appended */
    const char *name; /* `connector:` in the config */
    unsigned flags;   /* ES_CONN_* */
    size_t ctx_size;  /* bytes of private state, zeroed before init */
    const char *doc;  /* one line for erpsync help / docs */
    const struct es_connector_ops *ops;
};

/* A connector instance bound to one configured system. */
struct es_conn {
    const struct es_connector *type;
    const struct es_system_cfg *cfg;
    void *ctx;
    /* Remote API budget as last reported (Sforce-Limit-Info); -1 when unknown. */
    long api_used, api_max;
};

/* The registry (registry.c). */
const struct es_connector *es_connector_find(const char *name);
/* Lists registered connectors: returns the i-th or NULL past the end. */
const struct es_connector *es_connector_at(size_t i);

/* Opens an instance for a configured system. OUT: *out, free with es_conn_close(). */
ES_NODISCARD int es_conn_open(const struct es_system_cfg *cfg, struct es_conn **out,
                              struct es_err *err);
void es_conn_close(struct es_conn *c);

/* Call-site wrappers: check the op exists (ES_EINVAL "not supported by <connector>") and add
 * the system name to err. */
ES_NODISCARD int es_conn_ping(struct es_conn *c, struct es_err *err);
ES_NODISCARD int es_conn_describe(struct es_conn *c, const char *object, json_t **out,
                                  struct es_err *err);
ES_NODISCARD int es_conn_read_changes(struct es_conn *c, const char *object, const char *watermark,
                                      size_t limit, struct es_batch *out, struct es_err *err);
ES_NODISCARD int es_conn_read_page(struct es_conn *c, const char *object, const char *page,
                                   size_t limit, struct es_batch *out, struct es_err *err);
ES_NODISCARD int es_conn_get(struct es_conn *c, const char *object, const char *id, json_t **out,
                             struct es_err *err);
ES_NODISCARD int es_conn_write_batch(struct es_conn *c, const char *object, enum es_write_op op,
                                     const char *external_id, const struct es_write *in, size_t n,
                                     struct es_write_result *results, struct es_err *err);
ES_NODISCARD int es_conn_parse_webhook(struct es_conn *c, const struct es_http_req *req,
                                       struct es_batch *out, struct es_http_reply *reply,
                                       struct es_err *err);

/* Batch helpers. */
void es_batch_init(struct es_batch *b);
/* Appends a record; takes ownership of data (steals the reference). Strings are copied. */
void es_batch_add(struct es_batch *b, const char *key, const char *version, int deleted,
                  json_t *data);
void es_batch_release(struct es_batch *b);
void es_write_results_release(struct es_write_result *r, size_t n);
void es_http_reply_release(struct es_http_reply *r);

#endif
