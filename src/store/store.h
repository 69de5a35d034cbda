/* SPDX-License-Identifier: MIT */
/*
 * The durable state of erpsync behind one table of functions: the change journal, per-flow
 * cursors (poll watermarks, batch page tokens), flow controls (pause), xref, fingerprints,
 * audit and counters. SQLite (`store: sqlite:PATH`) is the embedded default; a PostgreSQL
 * implementation fills the same es_store_ops later. This is the only module with SQL text.
 *
 * Invariants (every implementation keeps them):
 *  - A change is unique by (flow, key, version): enqueueing it again is a no-op that reports
 *    "already known" (idempotent enqueue).
 *  - Every state change of a change is one committed transaction; a caller learns of success
 *    only after the commit is durable (SQLite: WAL with synchronous=FULL).
 *  - States: PENDING -> LEASED -> DONE | RETRY | REVIEW | DEAD; RETRY -> LEASED when due;
 *    REVIEW/DEAD -> PENDING by replay; REVIEW -> DONE by resolve. A lease past its expiry
 *    returns to PENDING at the next lease call (or at es_store_recover()).
 *  - Ordering per record key: of the open changes (PENDING, LEASED, RETRY) of one (flow, key),
 *    only the oldest (lowest id) can be leased, so two changes of one record never run at
 *    once or out of order. REVIEW and DEAD changes do not block newer versions.
 *  - A cursor passed with an enqueue is written in the same transaction as the changes.
 *  - Completing a change whose lease was lost (expired and taken by someone else) is ignored
 *    and counted in es_outcome.stale; the newer lease owner decides.
 *  - Leaf module: never logs; fills err. Thread-safe: one es_store may be shared by threads
 *    (calls are serialised inside).
 */
#ifndef ES_STORE_STORE_H
#define ES_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define ES_STORE_ABI 1

enum es_change_state {
    ES_CHANGE_PENDING = 0,
    ES_CHANGE_LEASED = 1,
    ES_CHANGE_DONE = 2,
    ES_CHANGE_RETRY = 3,
    ES_CHANGE_REVIEW = 4,
    ES_CHANGE_DEAD = 5,
    ES_CHANGE_STATE_LAST
};
/* "pending", "leased", ... (names are API: CLI, JSON, metrics). Never NULL. */
const char *es_change_state_name(enum es_change_state s);
/* Returns ES_CHANGE_STATE_LAST when unknown. */
enum es_change_state es_change_state_from_name(const char *name);

/* One change to enqueue (all borrowed). payload is JSON text of the source record. */
struct es_change_in {
    const char *flow;
    const char *key;
    const char *version;
    int deleted;
    const char *payload; /* may be NULL (delete without data) */
    size_t payload_len;
};

/* A cursor to advance atomically with an enqueue (poll watermark, batch page token). */
struct es_cursor_in {
    const char *flow;
    const char *name;  /* "watermark", "page", "batch_run" ... */
    const char *value; /* NULL deletes the cursor */
};

/* A change as stored. Strings are owned; release with es_change_release(). */
struct es_change {
    int64_t id;
    char *flow, *key, *version;
    char *payload; /* NUL-terminated JSON text, or NULL */
    size_t payload_len;
    int deleted;
    enum es_change_state state;
    int attempts; /* number of leases so far (a crash mid-attempt counts) */
    int64_t created_ms, updated_ms, next_at_ms, lease_until_ms;
    uint64_t lease; /* lease token while LEASED */
    enum es_code last_code;
    char *last_msg, *last_remote_code, *last_remote_msg, *last_hint, *note;
};
void es_change_release(struct es_change *c);
/* Releases n changes and frees the array. NULL-tolerant. */
void es_changes_free(struct es_change *c, size_t n);

/* An xref/fingerprint update committed together with an outcome. */
struct es_xref_in {
    const char *entity;
    const char *source_system, *source_id; /* the record in the flow's source */
    const char *target_system, *target_id; /* the record in the flow's target */
    const char *fingerprint;               /* what erpsync wrote to the target, or NULL */
};

/* Why a DONE change wrote nothing (counted per flow; /metrics, status). */
enum es_skip {
    ES_SKIP_NONE = 0,
    ES_SKIP_NOOP = 1, /* the mapped record equals what erpsync last wrote there */
    ES_SKIP_ECHO = 2  /* erpsync's own write came back from the target as a change */
};

/* A fingerprint to record with an outcome (besides the xref's target fingerprint): what
 * erpsync knows a record in `system` holds after this outcome (write-back, echo priming). */
struct es_fp_in {
    const char *entity, *system, *id;
    const char *fingerprint;
};

/* One member of a global id: the record's id in one system. */
struct es_xref_link {
    char system[64];
    char id[160];
    int64_t updated_ms;
};

/* The result of working on one leased change. */
struct es_outcome {
    int64_t id;
    uint64_t lease;                /* the token from the lease */
    enum es_change_state state;    /* DONE, RETRY, REVIEW, DEAD or PENDING (lease given back) */
    int64_t next_at_ms;            /* RETRY: when it is due again */
    int64_t duration_ms;           /* time spent (audit) */
    const struct es_err *err;      /* failure detail, or NULL */
    const struct es_xref_in *xref; /* DONE: xref/fingerprint to record, or NULL */
    const char *note;              /* free text for the audit ("unchanged", "resolved: ...") */
    int stale;                     /* OUT: 1 when the lease was lost and nothing was written */
    /* Optional: the change as leased (saves a read of its flow, key and attempts). */
    const struct es_change *leased;
    int skip;                   /* enum es_skip, for DONE outcomes that wrote nothing */
    const struct es_fp_in *fps; /* DONE: more fingerprints to record (may be NULL) */
    size_t nfps;
};

/* Per-flow figures for status, /metrics and /healthz. */
struct es_flow_stats {
    char flow[64];
    int64_t count[ES_CHANGE_STATE_LAST]; /* changes per state now */
    int64_t oldest_open_ms;  /* created_ms of the oldest pending/leased/retry change, 0 = none */
    int64_t last_success_ms; /* last DONE outcome, 0 = never */
    int64_t enqueued;        /* changes accepted (monotonic) */
    int64_t duplicates;      /* enqueues of a known (flow, key, version) (monotonic) */
    int64_t outcomes[ES_CHANGE_STATE_LAST]; /* outcomes committed per state (monotonic) */
    int paused;
    char pause_reason[160];
    int64_t skipped[3]; /* DONE outcomes that wrote nothing, by enum es_skip (monotonic) */
};

/* One audit row. A row may stand for a run of `count` DONE outcomes of consecutive changes of
 * one flow (change_id .. change_id + count - 1), each taking duration_ms; asked for one
 * change, the store reports that change's share (change_id, key of that change, count 1). */
struct es_audit {
    int64_t id, change_id, ts_ms, duration_ms;
    int64_t count; /* outcomes this row records (>= 1) */
    int attempt;
    enum es_change_state state;
    enum es_code code;
    char flow[64], key[96];
    char msg[256];
};

/* Filter for listing changes. */
struct es_change_filter {
    const char *flow;           /* NULL = every flow */
    enum es_change_state state; /* ES_CHANGE_STATE_LAST = every state */
    int64_t after_id;           /* paging: ids greater than this */
    size_t limit;               /* 0 = 100 */
};

struct es_store;

struct es_store_ops {
    /* MUST. Opens/creates the store at the location after "scheme:", migrates the schema. */
    int (*open)(const char *location, struct es_store **out, struct es_err *err);
    /* MUST. NULL-tolerant. */
    void (*close)(struct es_store *s);
    /* MUST. Enqueues n changes and the optional cursors in one durable transaction.
     * added (may be NULL) receives per change 1 = new, 0 = already known. */
    int (*enqueue)(struct es_store *s, const struct es_change_in *in, size_t n,
                   const struct es_cursor_in *cursors, size_t ncursors, unsigned char *added,
                   struct es_err *err);
    /* MUST. Leases up to max due changes of flow (ordering per key kept) until
     * now_ms + lease_ms. OUT: *out (es_changes_free), *n. Skips paused flows (n = 0). */
    int (*lease)(struct es_store *s, const char *flow, size_t max, int64_t now_ms, int64_t lease_ms,
                 struct es_change **out, size_t *n, struct es_err *err);
    /* MUST. Commits n outcomes (+ xref, fingerprints, audit, counters) in one transaction. */
    int (*complete)(struct es_store *s, struct es_outcome *out, size_t n, int64_t now_ms,
                    struct es_err *err);
    /* MUST. Extends the lease `lease` (every change of that leased batch not completed yet) to
     * until_ms, never shortening it: a worker still busy with a batch keeps it. ES_ENOTFOUND
     * when the lease is gone (expired and taken, or fully completed). */
    int (*renew)(struct es_store *s, uint64_t lease, int64_t until_ms, struct es_err *err);
    /* MUST. Returns every LEASED change to PENDING (single node at startup). Count in *n. */
    int (*recover)(struct es_store *s, size_t *n, struct es_err *err);
    /* MUST. Cursor value (OUT: *value, es_free; NULL when unset). */
    int (*cursor_get)(struct es_store *s, const char *flow, const char *name, char **value,
                      struct es_err *err);
    int (*cursor_set)(struct es_store *s, const char *flow, const char *name, const char *value,
                      struct es_err *err);
    /* MUST. Pause (reason non-NULL) or resume (reason NULL) a flow. */
    int (*flow_pause)(struct es_store *s, const char *flow, const char *reason, struct es_err *err);
    /* MUST. Figures for one flow (zeros for an unknown flow). */
    int (*stats)(struct es_store *s, const char *flow, int64_t now_ms, struct es_flow_stats *out,
                 struct es_err *err);
    /* MUST. Lists changes by filter, ordered by id. OUT: *out (es_changes_free), *n. */
    int (*list)(struct es_store *s, const struct es_change_filter *f, struct es_change **out,
                size_t *n, struct es_err *err);
    /* MUST. One change by id (ES_ENOTFOUND when absent). OUT: *out, es_change_release. */
    int (*get)(struct es_store *s, int64_t id, struct es_change *out, struct es_err *err);
    /* MUST. REVIEW/DEAD -> PENDING, attempts reset (ES_EINVAL for other states). */
    int (*replay)(struct es_store *s, int64_t id, const char *note, struct es_err *err);
    /* MUST. REVIEW -> DONE with a note (ES_EINVAL for other states). */
    int (*resolve)(struct es_store *s, int64_t id, const char *note, struct es_err *err);
    /* MUST. The id of a record in another system: (entity, system, id) -> other system's id.
     * OUT: *out (es_free) or ES_ENOTFOUND. */
    int (*xref_lookup)(struct es_store *s, const char *entity, const char *system, const char *id,
                       const char *other_system, char **out, struct es_err *err);
    /* MUST. Last fingerprint written to (system, id) for entity. OUT: *out or ES_ENOTFOUND. */
    int (*fingerprint_get)(struct es_store *s, const char *entity, const char *system,
                           const char *id, char **out, struct es_err *err);
    /* MUST. Every id of the record (entity, system, id) under its global id.
     * OUT: *global (es_free), *links (es_free), *n; ES_ENOTFOUND when the record has none. */
    int (*xref_links)(struct es_store *s, const char *entity, const char *system, const char *id,
                      char **global, struct es_xref_link **links, size_t *n, struct es_err *err);
    /* MUST. Audit rows of one change (change_id > 0) or the newest of all (0). */
    int (*audit)(struct es_store *s, int64_t change_id, size_t limit, struct es_audit **out,
                 size_t *n, struct es_err *err);
    /* MUST. Retention: removes DONE changes enqueued before before_ms, and audit rows written
     * before it, in transactions of bounded size. Pending, leased, retry, review and dead
     * changes are never removed. A pruned (flow, key, version) enqueued again is a new
     * change (the idempotency window is the retention). OUT: *changes, *audits removed. */
    int (*prune)(struct es_store *s, int64_t before_ms, size_t *changes, size_t *audits,
                 struct es_err *err);
};

struct es_store {
    unsigned abi;
    const struct es_store_ops *ops;
};

/* Opens a store from its config URL: "sqlite:PATH" (or a bare path), "postgres://..." later.
 * Errors: ES_ECONFIG (unknown scheme), ES_ESTORE (cannot open/migrate).
 * OUT: *out, es_store_close(). */
ES_NODISCARD int es_store_open(const char *url, struct es_store **out, struct es_err *err);
void es_store_close(struct es_store *s);

/* Call-site wrappers (same contracts as the ops above). */
ES_NODISCARD int es_store_enqueue(struct es_store *s, const struct es_change_in *in, size_t n,
                                  const struct es_cursor_in *cursors, size_t ncursors,
                                  unsigned char *added, struct es_err *err);
ES_NODISCARD int es_store_lease(struct es_store *s, const char *flow, size_t max, int64_t now_ms,
                                int64_t lease_ms, struct es_change **out, size_t *n,
                                struct es_err *err);
ES_NODISCARD int es_store_complete(struct es_store *s, struct es_outcome *out, size_t n,
                                   int64_t now_ms, struct es_err *err);
ES_NODISCARD int es_store_renew(struct es_store *s, uint64_t lease, int64_t until_ms,
                                struct es_err *err);
ES_NODISCARD int es_store_recover(struct es_store *s, size_t *n, struct es_err *err);
ES_NODISCARD int es_store_cursor_get(struct es_store *s, const char *flow, const char *name,
                                     char **value, struct es_err *err);
ES_NODISCARD int es_store_cursor_set(struct es_store *s, const char *flow, const char *name,
                                     const char *value, struct es_err *err);
ES_NODISCARD int es_store_flow_pause(struct es_store *s, const char *flow, const char *reason,
                                     struct es_err *err);
ES_NODISCARD int es_store_stats(struct es_store *s, const char *flow, int64_t now_ms,
                                struct es_flow_stats *out, struct es_err *err);
ES_NODISCARD int es_store_list(struct es_store *s, const struct es_change_filter *f,
                               struct es_change **out, size_t *n, struct es_err *err);
ES_NODISCARD int es_store_get(struct es_store *s, int64_t id, struct es_change *out,
                              struct es_err *err);
ES_NODISCARD int es_store_replay(struct es_store *s, int64_t id, const char *note,
                                 struct es_err *err);
ES_NODISCARD int es_store_resolve(struct es_store *s, int64_t id, const char *note,
                                  struct es_err *err);
ES_NODISCARD int es_store_xref_lookup(struct es_store *s, const char *entity, const char *system,
                                      const char *id, const char *other_system, char **out,
                                      struct es_err *err);
ES_NODISCARD int es_store_fingerprint_get(struct es_store *s, const char *entity,
                                          const char *system, const char *id, char **out,
                                          struct es_err *err);
ES_NODISCARD int es_store_xref_links(struct es_store *s, const char *entity, const char *system,
                                     const char *id, char **global, struct es_xref_link **links,
                                     size_t *n, struct es_err *err);
ES_NODISCARD int es_store_audit(struct es_store *s, int64_t change_id, size_t limit,
                                struct es_audit **out, size_t *n, struct es_err *err);
ES_NODISCARD int es_store_prune(struct es_store *s, int64_t before_ms, size_t *changes,
                                size_t *audits, struct es_err *err);

/* The SQLite implementation (sqlite.c). */
extern const struct es_store_ops es_store_sqlite_ops;

#endif
