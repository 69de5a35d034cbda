/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the SQLite store's files (sqlite.c: open, schema, helpers, lookups;
 * sqlite_journal.c: enqueue, lease, complete, renew, recover; sqlite_read.c: what the
 * journal holds, for status, list, get, audit, replay and resolve).
 *
 * Layout v3 (see docs/architecture.md, "The journal on disk"):
 *  - `changes` is append-only: a row is written once, at enqueue, and never updated. Its id
 *    is the flow's number in the top bits and the flow's own sequence below
 *    (ES__SQ_FLOW_SHIFT), so one flow's changes are one range of the table's b-tree: leasing
 *    reads that range in order, with no index of its own.
 *  - `flows.frontier` is the last change of the flow handed to a lease. Every change after it
 *    is pending. A change at or before it is, in this order: what its `states` row says; or
 *    leased, while its bit is set in a live `leases` row's bitmap; or done.
 *  - `states` holds a row only for the changes that left that fast path: deferred behind an
 *    older change of their key, retried, parked (review, dead), given back, replayed, or done
 *    after one of those. A clean run of a batch writes no row per change.
 *  - `leases`: one row per leased batch (token, the first and last id it holds from the
 *    fresh range, a bitmap of the ones still held, how many `states` rows it holds).
 */
#ifndef ES_STORE_SQLITE_INT_H
#define ES_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "store/store.h"

/* A change id is (flow number << ES__SQ_FLOW_SHIFT) | sequence in the flow. 44 bits give a
 * flow 1.7e13 changes (55 years at 10,000/s); 19 bits give 500,000 flows. The ids of the
 * first 511 flows stay below 2^53, so JSON readers that use doubles (JavaScript) keep them
 * exact. */
#define ES__SQ_FLOW_SHIFT  44
#define ES__SQ_FLOW_OF(id) ((int64_t)(id) >> ES__SQ_FLOW_SHIFT)
#define ES__SQ_FIRST(no)   ((int64_t)(no) << ES__SQ_FLOW_SHIFT)
#define ES__SQ_LAST(no)    ((((int64_t)(no) + 1) << ES__SQ_FLOW_SHIFT) - 1)
/* Longest run of DONE outcomes folded into one audit row (bounds the audit lookup). */
#define ES__SQ_RUN_MAX     65536

enum {
    Q_INSERT,
    Q_TOP_ID,
    Q_FLOW_NO,
    Q_FLOW_NEW,
    Q_FLOW_NAME,
    Q_FRONTIER_GET,
    Q_FRONTIER_SET,
    Q_CURSOR_SET,
    Q_CURSOR_DEL,
    Q_CURSOR_GET,
    Q_COUNT_ADD,
    Q_EXPIRED,
    Q_EXPIRE_STATES,
    Q_EXPIRE_FRESH,
    Q_LEASE_NEW,
    Q_LEASE_SET,
    Q_LEASE_GET,
    Q_LEASE_DEL,
    Q_LEASE_RENEW,
    Q_LEASES_OF,
    Q_PAUSED,
    Q_STATES_ANY,
    Q_STATE_CANDIDATES,
    Q_STATE_TAKE,
    Q_STATE_OPEN_KEY,
    Q_KEY_IDS,
    Q_FRESH,
    Q_DEFER,
    Q_STATE_NEW,
    Q_STATE_DONE,
    Q_STATE_HOLDER,
    Q_KEY_OF,
    Q_AUDIT,
    Q_SUCCESS,
    Q_XREF_FIND,
    Q_XREF_PUT,
    Q_FP_PUT,
    Q_FP_GET,
    Q_XREF_LOOKUP,
    Q_LAST
};

/* A gauge/counter move, applied at the end of a transaction. */
struct es__sq_delta {
    char *flow;
    const char *name;
    int64_t n;
};

/* A flow's name and number (numbers are never reused or changed once committed). */
struct es__sq_flow {
    char *name;
    int64_t no;
    int64_t next_id; /* the next change id in the current write transaction, 0 = not read */
};

/* A `leases` row in memory. */
struct es__sq_lease {
    int64_t token, flow, lo, hi, until, held, xheld;
    unsigned char *bits; /* (hi - lo + 1) bits: 1 = that id is held by this lease */
    size_t nbytes;
    int dirty;
};

struct es__sq_store {
    struct es_store base;
    sqlite3 *db;
    pthread_mutex_t lock;
    sqlite3_stmt *q[Q_LAST];
    struct es__sq_delta *deltas;
    size_t ndeltas, cap_deltas;
    struct es__sq_flow *flows;
    size_t nflows, cap_flows;
    size_t nflows_committed; /* flows[0..this) are committed; the rest die with a rollback */
};

extern const char *const es__sq_count_state[ES_CHANGE_STATE_LAST];
extern const char *const es__sq_count_outcome[ES_CHANGE_STATE_LAST];
extern const char *const es__sq_count_skip[3];

int es__sq_fail(struct es__sq_store *s, struct es_err *err, const char *what);
int es__sq_exec(struct es__sq_store *s, const char *sql, struct es_err *err);
/* The cached statement `which`, reset and unbound. */
sqlite3_stmt *es__sq_q(struct es__sq_store *s, int which);
void es__sq_bind_text(sqlite3_stmt *st, int i, const char *v);
/* Binds NULL for NULL or "". */
void es__sq_bind_opt(sqlite3_stmt *st, int i, const char *v);
char *es__sq_col_dup(sqlite3_stmt *st, int i);
void es__sq_delta_add(struct es__sq_store *s, const char *flow, const char *name, int64_t n);
/* Moves one change between gauges (-1: none). */
void es__sq_move_state(struct es__sq_store *s, const char *flow, int from, int to);
/* Locks and starts a write transaction. */
int es__sq_begin(struct es__sq_store *s, struct es_err *err);
/* Commits (rc == ES_OK, after applying the deltas) or rolls back, then unlocks. */
int es__sq_finish(struct es__sq_store *s, int rc, struct es_err *err);
/* The `closed` column for a state: 0 open (pending, leased, retry), 1 done, 2 parked. */
int es__sq_closed_of(int state);

/* The number of a flow: > 0; 0 when the flow is unknown and !create; < 0 on error (err set).
 * create: assigns the next number (inside a write transaction only). */
int64_t es__sq_flow_no(struct es__sq_store *s, const char *name, int create, struct es_err *err);
/* The cache entry of a flow number (NULL when unknown; reads the table on a miss). */
struct es__sq_flow *es__sq_flow_by_no(struct es__sq_store *s, int64_t no);
/* Every change id <= this was handed to a lease once. */
int64_t es__sq_frontier(struct es__sq_store *s, int64_t no);

/* Live leases of a flow (held > 0 or xheld > 0). OUT: *out (es__sq_leases_free), *n. */
int es__sq_leases_of(struct es__sq_store *s, int64_t no, struct es__sq_lease **out, size_t *n,
                     struct es_err *err);
void es__sq_leases_free(struct es__sq_lease *l, size_t n);
/* True when id's bit is set in l. */
int es__sq_lease_holds(const struct es__sq_lease *l, int64_t id);
/* Reads a `leases` row's columns (token, flow, lo, hi, until, held, xheld, bits). */
void es__sq_lease_read(sqlite3_stmt *st, struct es__sq_lease *l);

int es__sq_audit_put(struct es__sq_store *s, int64_t change_id, int64_t n, const char *flow,
                     const char *key, int64_t now, int state, enum es_code code, int attempt,
                     int64_t duration, const char *msg, struct es_err *err);

/* sqlite_journal.c */
int es__sq_enqueue(struct es_store *base, const struct es_change_in *in, size_t n,
                   const struct es_cursor_in *cursors, size_t ncursors, unsigned char *added,
                   struct es_err *err);
int es__sq_lease(struct es_store *base, const char *flow, size_t max, int64_t now_ms,
                 int64_t lease_ms, struct es_change **out, size_t *n, struct es_err *err);
int es__sq_complete(struct es_store *base, struct es_outcome *outs, size_t n, int64_t now_ms,
                    struct es_err *err);
int es__sq_renew(struct es_store *base, uint64_t lease, int64_t until_ms, struct es_err *err);
int es__sq_recover(struct es_store *base, size_t *n, struct es_err *err);
int es__sq_set_cursor(struct es__sq_store *s, const struct es_cursor_in *c, struct es_err *err);

/* sqlite_prune.c */
int es__sq_prune(struct es_store *base, int64_t before_ms, size_t *changes, size_t *audits,
                 struct es_err *err);

/* sqlite_read.c */
/* The columns of a change with its `states` row (c = changes, s = states, LEFT JOIN). */
#define ES__SQ_CHANGE_COLS                                                                         \
    "c.id, c.key, c.version, c.deleted, c.created, c.payload, s.state, s.attempts, s.updated,"     \
    " s.next_at, s.lease, s.last_code, s.last_msg, s.last_remote_code, s.last_remote_msg,"         \
    " s.last_hint, s.note"
/* Reads an ES__SQ_CHANGE_COLS row into c (flow copied). Returns 1 when the row had a `states`
 * row (state columns filled), 0 when the change's state is to be derived (left 0). */
int es__sq_change_read(sqlite3_stmt *st, const char *flow, struct es_change *c);
int es__sq_stats(struct es_store *base, const char *flow, int64_t now_ms, struct es_flow_stats *out,
                 struct es_err *err);
int es__sq_list(struct es_store *base, const struct es_change_filter *f, struct es_change **out,
                size_t *n, struct es_err *err);
int es__sq_get(struct es_store *base, int64_t id, struct es_change *out, struct es_err *err);
int es__sq_replay(struct es_store *base, int64_t id, const char *note, struct es_err *err);
int es__sq_resolve(struct es_store *base, int64_t id, const char *note, struct es_err *err);
int es__sq_audit(struct es_store *base, int64_t change_id, size_t limit, struct es_audit **out,
                 size_t *n, struct es_err *err);

#endif
