/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store: one database file in WAL mode with synchronous=FULL, so a commit that
 * returned survives a crash of the process and of the machine. One connection per es_store,
 * serialised by a mutex; other processes (the CLI while the daemon runs) open their own and
 * wait on the busy timeout.
 *
 * This file opens the file, applies the schema migrations (PRAGMA user_version, in order; a
 * file from a newer erpsync is refused rather than guessed at), and holds what the other two
 * files share: statements, transactions, counters, flow numbers, cursors, xref and
 * fingerprint lookups. The journal's layout is described in sqlite_int.h.
 *
 * Gauges (changes per state per flow) are kept in `counts` and moved in the same transaction
 * as the state changes, so `status` and /metrics never scan the journal.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "store/sqlite_int.h"

static const char *const migrations[] = {
    /* v1 */
    "CREATE TABLE changes("
    " id INTEGER PRIMARY KEY,"
    " flow TEXT NOT NULL, key TEXT NOT NULL, version TEXT NOT NULL,"
    " deleted INTEGER NOT NULL DEFAULT 0,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL DEFAULT 0,"
    " lease INTEGER NOT NULL DEFAULT 0,"
    " lease_until INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL,"
    " last_code INTEGER NOT NULL DEFAULT 0,"
    " last_msg TEXT, last_remote_code TEXT, last_remote_msg TEXT, last_hint TEXT, note TEXT,"
    " UNIQUE(flow, key, version));"
    "CREATE INDEX changes_open ON changes(flow, id) WHERE state <> 2 AND state < 4;"
    "CREATE INDEX changes_key ON changes(flow, key, id) WHERE state <> 2 AND state < 4;"
    "CREATE INDEX changes_leased ON changes(lease_until) WHERE state = 1;"
    "CREATE INDEX changes_parked ON changes(state, id) WHERE state >= 4;"
    "CREATE TABLE payloads(id INTEGER PRIMARY KEY, body TEXT);"
    "CREATE TABLE cursors(flow TEXT NOT NULL, name TEXT NOT NULL, value TEXT,"
    " updated INTEGER NOT NULL, PRIMARY KEY(flow, name)) WITHOUT ROWID;"
    "CREATE TABLE flows(flow TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0, reason TEXT,"
    " last_success INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE counts(flow TEXT NOT NULL, name TEXT NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY(flow, name)) WITHOUT ROWID;"
    "CREATE TABLE xref(entity TEXT NOT NULL, system TEXT NOT NULL, system_id TEXT NOT NULL,"
    " global_id TEXT NOT NULL, updated INTEGER NOT NULL,"
    " PRIMARY KEY(entity, system, system_id)) WITHOUT ROWID;"
    "CREATE INDEX xref_global ON xref(entity, global_id, system);"
    "CREATE TABLE fingerprints(entity TEXT NOT NULL, system TEXT NOT NULL,"
    " system_id TEXT NOT NULL, fp TEXT NOT NULL, updated INTEGER NOT NULL,"
    " PRIMARY KEY(entity, system, system_id)) WITHOUT ROWID;"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, change_id INTEGER NOT NULL, flow TEXT NOT NULL,"
    " key TEXT NOT NULL, ts INTEGER NOT NULL, state INTEGER NOT NULL, code INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL, duration_ms INTEGER NOT NULL, msg TEXT);"
    "CREATE INDEX audit_change ON audit(change_id);",
    /* v2: lease and retry no longer touch an index. The partial indexes test `closed`
     * (0 open, 1 done, 2 parked), which only a final outcome, replay or resolve changes, instead
     * of `state`, which every lease rewrites; the per-row lease index is replaced by one row per
     * leased batch in `leases` (token, id range, expiry), which expiry and recovery walk. */
    "ALTER TABLE changes ADD COLUMN closed INTEGER NOT NULL DEFAULT 0;"
    "UPDATE changes SET closed = CASE WHEN state = 2 THEN 1 WHEN state >= 4 THEN 2 ELSE 0 END"
    " WHERE state = 2 OR state >= 4;"
    "DROP INDEX changes_open;"
    "DROP INDEX changes_key;"
    "DROP INDEX changes_leased;"
    "DROP INDEX changes_parked;"
    "CREATE INDEX changes_open ON changes(flow, id) WHERE closed = 0;"
    "CREATE INDEX changes_key ON changes(flow, key, id) WHERE closed = 0;"
    "CREATE INDEX changes_parked ON changes(id) WHERE closed = 2;"
    "CREATE TABLE leases(token INTEGER PRIMARY KEY AUTOINCREMENT, flow TEXT NOT NULL, lo INTEGER "
    "NOT NULL,"
    " hi INTEGER NOT NULL, until INTEGER NOT NULL, n INTEGER NOT NULL);"
    "INSERT INTO leases(token, flow, lo, hi, until, n) SELECT lease, flow, min(id), max(id),"
    " max(lease_until), count(*) FROM changes WHERE state = 1 GROUP BY lease, flow;",
    /* v3: the append-only journal (sqlite_int.h). Changes are renumbered per flow (flow
     * number << 44 | sequence) with their payload inline and never rewritten; state lives in
     * `states` only for changes off the fast path (every v2 change not simply done keeps one
     * here); leases hold a bitmap of fresh ids; audit rows may stand for a run of outcomes. */
    "ALTER TABLE flows ADD COLUMN no INTEGER;"
    "ALTER TABLE flows ADD COLUMN frontier INTEGER NOT NULL DEFAULT 0;"
    "INSERT INTO flows(flow) SELECT DISTINCT flow FROM changes"
    " WHERE flow NOT IN (SELECT flow FROM flows);"
    "UPDATE flows SET no = (SELECT count(*) FROM flows f WHERE f.flow <= flows.flow);"
    "CREATE TEMP TABLE idmap(old INTEGER PRIMARY KEY, new INTEGER NOT NULL, fno INTEGER NOT NULL);"
    "INSERT INTO idmap SELECT c.id, (f.no << 44) + row_number() OVER (PARTITION BY c.flow"
    " ORDER BY c.id), f.no FROM changes c JOIN flows f ON f.flow = c.flow;"
    "CREATE TABLE changes3(id INTEGER PRIMARY KEY, flow INTEGER NOT NULL, key TEXT NOT NULL,"
    " version TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
    " payload TEXT, UNIQUE(flow, key, version));"
    "INSERT INTO changes3 SELECT m.new, m.fno, c.key, c.version, c.deleted, c.created, p.body"
    " FROM changes c JOIN idmap m ON m.old = c.id LEFT JOIN payloads p ON p.id = c.id"
    " ORDER BY m.new;"
    "CREATE TABLE states(id INTEGER PRIMARY KEY, flow INTEGER NOT NULL, key TEXT NOT NULL,"
    " state INTEGER NOT NULL, closed INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL DEFAULT 0, lease INTEGER NOT NULL DEFAULT 0,"
    " updated INTEGER NOT NULL, last_code INTEGER NOT NULL DEFAULT 0, last_msg TEXT,"
    " last_remote_code TEXT, last_remote_msg TEXT, last_hint TEXT, note TEXT);"
    "INSERT INTO states SELECT m.new, m.fno, c.key, c.state, c.closed, c.attempts, c.next_at,"
    " CASE WHEN c.state = 1 THEN c.lease ELSE 0 END, c.updated, c.last_code, c.last_msg,"
    " c.last_remote_code, c.last_remote_msg, c.last_hint, c.note"
    " FROM changes c JOIN idmap m ON m.old = c.id"
    " WHERE c.state <> 2 OR c.attempts <> 1 OR c.last_code <> 0 OR c.note IS NOT NULL"
    " ORDER BY m.new;"
    "CREATE INDEX states_open ON states(flow, key, id) WHERE closed = 0;"
    "CREATE INDEX states_open_id ON states(flow, id) WHERE closed = 0;"
    "CREATE INDEX states_parked ON states(id) WHERE closed = 2;"
    "CREATE INDEX states_leased ON states(lease) WHERE state = 1;"
    "CREATE TABLE leases3(token INTEGER PRIMARY KEY AUTOINCREMENT, flow INTEGER NOT NULL,"
    " lo INTEGER NOT NULL, hi INTEGER NOT NULL, until INTEGER NOT NULL, held INTEGER NOT NULL,"
    " xheld INTEGER NOT NULL, bits BLOB);"
    "INSERT INTO leases3 SELECT l.token, f.no, 0, -1, l.until, 0,"
    " (SELECT count(*) FROM changes c WHERE c.lease = l.token AND c.state = 1), NULL"
    " FROM leases l JOIN flows f ON f.flow = l.flow;"
    /* Tokens are never handed out twice: carry the old sequence over. */
    "INSERT INTO sqlite_sequence(name, seq) SELECT 'leases3', seq FROM sqlite_sequence"
    " WHERE name = 'leases' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence"
    " WHERE name = 'leases3');"
    "UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence"
    " WHERE name = 'leases'), 0)) WHERE name = 'leases3';"
    "UPDATE audit SET change_id = coalesce((SELECT new FROM idmap"
    " WHERE old = audit.change_id), change_id);"
    "ALTER TABLE audit ADD COLUMN n INTEGER NOT NULL DEFAULT 1;"
    "UPDATE flows SET frontier = coalesce((SELECT max(new) FROM idmap WHERE fno = flows.no),"
    " no << 44);"
    "DROP TABLE leases;"
    "DROP TABLE payloads;"
    "DROP TABLE changes;"
    "ALTER TABLE changes3 RENAME TO changes;"
    "ALTER TABLE leases3 RENAME TO leases;"
    "DROP TABLE temp.idmap;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static const char *const sql_text[Q_LAST] = {
    [Q_INSERT] = "INSERT INTO changes(id, flow, key, version, deleted, created, payload)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    /* The flow's newest change (one seek down the rowid b-tree). */
    [Q_TOP_ID] = "SELECT id FROM changes WHERE id <= ?1 ORDER BY id DESC LIMIT 1",
    [Q_FLOW_NO] = "SELECT no FROM flows WHERE flow = ?1",
    [Q_FLOW_NEW] = "INSERT INTO flows(flow, no) VALUES(?1, (SELECT coalesce(max(no), 0) + 1"
                   " FROM flows)) ON CONFLICT(flow) DO UPDATE SET no = excluded.no"
                   " WHERE flows.no IS NULL",
    [Q_FLOW_NAME] = "SELECT flow FROM flows WHERE no = ?1",
    [Q_FRONTIER_GET] = "SELECT frontier FROM flows WHERE no = ?1",
    [Q_FRONTIER_SET] = "UPDATE flows SET frontier = ?2 WHERE flow = ?1",
    [Q_CURSOR_SET] = "INSERT INTO cursors(flow, name, value, updated) VALUES(?1, ?2, ?3, ?4)"
                     " ON CONFLICT(flow, name) DO UPDATE SET value = excluded.value,"
                     " updated = excluded.updated",
    [Q_CURSOR_DEL] = "DELETE FROM cursors WHERE flow = ?1 AND name = ?2",
    [Q_CURSOR_GET] = "SELECT value FROM cursors WHERE flow = ?1 AND name = ?2",
    [Q_COUNT_ADD] = "INSERT INTO counts(flow, name, n) VALUES(?1, ?2, ?3)"
                    " ON CONFLICT(flow, name) DO UPDATE SET n = n + excluded.n",
    [Q_EXPIRED] = "SELECT token, flow, lo, hi, until, held, xheld, bits FROM leases"
                  " WHERE until < ?1",
    [Q_EXPIRE_STATES] = "UPDATE states SET state = 0, lease = 0, updated = ?2"
                        " WHERE lease = ?1 AND state = 1",
    /* A fresh change whose lease ran out: it is pending again, with its attempt counted. */
    [Q_EXPIRE_FRESH] = "INSERT INTO states(id, flow, key, state, closed, attempts, updated)"
                       " SELECT id, flow, key, 0, 0, 1, ?2 FROM changes WHERE id = ?1",
    [Q_LEASE_NEW] = "INSERT INTO leases(flow, lo, hi, until, held, xheld, bits)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_LEASE_SET] = "UPDATE leases SET lo = ?2, hi = ?3, held = ?4, xheld = ?5, bits = ?6"
                    " WHERE token = ?1",
    [Q_LEASE_GET] = "SELECT token, flow, lo, hi, until, held, xheld, bits FROM leases"
                    " WHERE token = ?1",
    [Q_LEASE_DEL] = "DELETE FROM leases WHERE token = ?1",
    [Q_LEASE_RENEW] = "UPDATE leases SET until = max(until, ?2) WHERE token = ?1",
    [Q_LEASES_OF] = "SELECT token, flow, lo, hi, until, held, xheld, bits FROM leases"
                    " WHERE flow = ?1 AND (held > 0 OR xheld > 0) ORDER BY token",
    [Q_PAUSED] = "SELECT paused FROM flows WHERE flow = ?1",
    [Q_STATES_ANY] = "SELECT 1 FROM states WHERE flow = ?1 AND closed = 0 LIMIT 1",
    /* Off-path changes that are due, oldest first; only the oldest open one of a key. */
    [Q_STATE_CANDIDATES] =
        "SELECT " ES__SQ_CHANGE_COLS " FROM states s JOIN changes c ON c.id = s.id"
        " WHERE s.flow = ?1 AND s.closed = 0 AND s.state <> 1 AND s.next_at <= ?2"
        " AND NOT EXISTS (SELECT 1 FROM states o WHERE o.flow = ?1 AND o.key = s.key"
        " AND o.closed = 0 AND o.id < s.id) ORDER BY s.id LIMIT ?3",
    [Q_STATE_TAKE] = "UPDATE states SET state = 1, lease = ?2, attempts = attempts + 1,"
                     " updated = ?3 WHERE id = ?1",
    [Q_STATE_OPEN_KEY] = "SELECT 1 FROM states WHERE flow = ?1 AND key = ?2 AND closed = 0"
                         " LIMIT 1",
    /* Older changes of a key (the UNIQUE(flow, key, version) index covers it). */
    [Q_KEY_IDS] = "SELECT id FROM changes WHERE flow = ?1 AND key = ?2 AND id BETWEEN ?3 AND ?4",
    [Q_FRESH] = "SELECT id, key, version, deleted, created, payload FROM changes"
                " WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
    [Q_DEFER] = "INSERT INTO states(id, flow, key, state, closed, attempts, updated)"
                " VALUES(?1, ?2, ?3, 0, 0, 0, ?4)",
    [Q_STATE_NEW] = "INSERT INTO states(id, flow, key, state, closed, attempts, next_at, lease,"
                    " updated, last_code, last_msg, last_remote_code, last_remote_msg,"
                    " last_hint, note) VALUES(?1, ?13, ?14, ?3, ?12, ?15, ?4, 0, ?5, ?6, ?7,"
                    " ?8, ?9, ?10, ?11)",
    [Q_STATE_DONE] =
        "UPDATE states SET state = ?3, closed = ?12, next_at = ?4, lease = 0, updated = ?5,"
        " last_code = ?6, last_msg = ?7, last_remote_code = ?8, last_remote_msg = ?9,"
        " last_hint = ?10, note = ?11 WHERE id = ?1 AND state = 1 AND lease = ?2",
    [Q_STATE_HOLDER] = "SELECT key, attempts FROM states WHERE id = ?1",
    [Q_KEY_OF] = "SELECT key FROM changes WHERE id = ?1",
    [Q_AUDIT] = "INSERT INTO audit(change_id, n, flow, key, ts, state, code, attempt,"
                " duration_ms, msg) VALUES(?1, ?10, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [Q_SUCCESS] = "INSERT INTO flows(flow, last_success) VALUES(?1, ?2)"
                  " ON CONFLICT(flow) DO UPDATE SET last_success = excluded.last_success",
    [Q_XREF_FIND] = "SELECT global_id FROM xref WHERE entity = ?1 AND system = ?2"
                    " AND system_id = ?3",
    [Q_XREF_PUT] = "INSERT INTO xref(entity, system, system_id, global_id, updated)"
                   " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(entity, system, system_id)"
                   " DO UPDATE SET global_id = excluded.global_id, updated = excluded.updated",
    [Q_FP_PUT] = "INSERT INTO fingerprints(entity, system, system_id, fp, updated)"
                 " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(entity, system, system_id)"
                 " DO UPDATE SET fp = excluded.fp, updated = excluded.updated",
    [Q_FP_GET] = "SELECT fp FROM fingerprints WHERE entity = ?1 AND system = ?2"
                 " AND system_id = ?3",
    [Q_XREF_LOOKUP] = "SELECT b.system_id FROM xref a JOIN xref b ON b.entity = a.entity"
                      " AND b.global_id = a.global_id AND b.system = ?4"
                      " WHERE a.entity = ?1 AND a.system = ?2 AND a.system_id = ?3",
};

const char *const es__sq_count_state[ES_CHANGE_STATE_LAST] = {
    "state.pending", "state.leased", "state.done", "state.retry", "state.review", "state.dead",
};
const char *const es__sq_count_outcome[ES_CHANGE_STATE_LAST] = {
    "outcome.pending", "outcome.leased", "outcome.done",
    "outcome.retry",   "outcome.review", "outcome.dead",
};
const char *const es__sq_count_skip[3] = {"skipped.none", "skipped.noop", "skipped.echo"};

int es__sq_closed_of(int state)
{
    return state == ES_CHANGE_DONE ? 1 : state >= ES_CHANGE_REVIEW ? 2 : 0;
}

int es__sq_fail(struct es__sq_store *s, struct es_err *err, const char *what)
{
    return es_err_set(err, ES_ESTORE, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
}

int es__sq_exec(struct es__sq_store *s, const char *sql, struct es_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        es_err_set(err, ES_ESTORE, "sqlite: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return ES_ESTORE;
    }
    return ES_OK;
}

sqlite3_stmt *es__sq_q(struct es__sq_store *s, int which)
{
    sqlite3_stmt *st = s->q[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

void es__sq_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v) {
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, i);
    }
}

void es__sq_bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    es__sq_bind_text(st, i, (v && *v) ? v : NULL);
}

char *es__sq_col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? es_xstrndup((const char *)t, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

void es__sq_delta_add(struct es__sq_store *s, const char *flow, const char *name, int64_t n)
{
    for (size_t i = 0; i < s->ndeltas; i++) {
        if (s->deltas[i].name == name && strcmp(s->deltas[i].flow, flow) == 0) {
            s->deltas[i].n += n;
            return;
        }
    }
    ES_GROW(s->deltas, s->cap_deltas, s->ndeltas + 1);
    s->deltas[s->ndeltas++] = (struct es__sq_delta){es_xstrdup(flow), name, n};
}

static void deltas_clear(struct es__sq_store *s)
{
    for (size_t i = 0; i < s->ndeltas; i++) {
        es_free(s->deltas[i].flow);
    }
    s->ndeltas = 0;
}

void es__sq_move_state(struct es__sq_store *s, const char *flow, int from, int to)
{
    if (from >= 0) {
        es__sq_delta_add(s, flow, es__sq_count_state[from], -1);
    }
    if (to >= 0) {
        es__sq_delta_add(s, flow, es__sq_count_state[to], 1);
    }
}

static int deltas_apply(struct es__sq_store *s, struct es_err *err)
{
    for (size_t i = 0; i < s->ndeltas; i++) {
        if (s->deltas[i].n == 0) {
            continue;
        }
        sqlite3_stmt *st = es__sq_q(s, Q_COUNT_ADD);
        es__sq_bind_text(st, 1, s->deltas[i].flow);
        es__sq_bind_text(st, 2, s->deltas[i].name);
        sqlite3_bind_int64(st, 3, s->deltas[i].n);
        if (sqlite3_step(st) != SQLITE_DONE) {
            return es__sq_fail(s, err, "counts");
        }
    }
    deltas_clear(s);
    return ES_OK;
}

int es__sq_begin(struct es__sq_store *s, struct es_err *err)
{
    pthread_mutex_lock(&s->lock);
    deltas_clear(s);
    for (size_t i = 0; i < s->nflows; i++) {
        s->flows[i].next_id = 0; /* another process may have appended since */
    }
    if (es__sq_exec(s, "BEGIN IMMEDIATE", err) != ES_OK) {
        pthread_mutex_unlock(&s->lock);
        return ES_ESTORE;
    }
    return ES_OK;
}

int es__sq_finish(struct es__sq_store *s, int rc, struct es_err *err)
{
    if (rc == ES_OK) {
        rc = deltas_apply(s, err);
    }
    if (rc == ES_OK) {
        rc = es__sq_exec(s, "COMMIT", err);
    }
    if (rc != ES_OK) {
        deltas_clear(s);
        (void)es__sq_exec(s, "ROLLBACK", NULL);
        /* Flow numbers assigned in this transaction are gone with it. */
        for (size_t i = s->nflows_committed; i < s->nflows; i++) {
            es_free(s->flows[i].name);
        }
        s->nflows = s->nflows_committed;
    }
    s->nflows_committed = s->nflows;
    for (int i = 0; i < Q_LAST; i++) {
        sqlite3_reset(s->q[i]);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static struct es__sq_flow *flow_cache_add(struct es__sq_store *s, const char *name, int64_t no)
{
    ES_GROW(s->flows, s->cap_flows, s->nflows + 1);
    struct es__sq_flow *f = &s->flows[s->nflows++];
    *f = (struct es__sq_flow){es_xstrdup(name), no, 0};
    return f;
}

int64_t es__sq_flow_no(struct es__sq_store *s, const char *name, int create, struct es_err *err)
{
    for (size_t i = 0; i < s->nflows; i++) {
        if (strcmp(s->flows[i].name, name) == 0) {
            return s->flows[i].no;
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        sqlite3_stmt *st = es__sq_q(s, Q_FLOW_NO);
        es__sq_bind_text(st, 1, name);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            int64_t no = sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
            flow_cache_add(s, name, no);
            return no;
        }
        sqlite3_reset(st);
        if (r != SQLITE_ROW && r != SQLITE_DONE) {
            es__sq_fail(s, err, "flow number");
            return -1;
        }
        if (!create || pass == 1) {
            return 0;
        }
        st = es__sq_q(s, Q_FLOW_NEW);
        es__sq_bind_text(st, 1, name);
        if (sqlite3_step(st) != SQLITE_DONE) {
            es__sq_fail(s, err, "flow number");
            return -1;
        }
    }
    return 0;
}

struct es__sq_flow *es__sq_flow_by_no(struct es__sq_store *s, int64_t no)
{
    for (size_t i = 0; i < s->nflows; i++) {
        if (s->flows[i].no == no) {
            return &s->flows[i];
        }
    }
    sqlite3_stmt *st = es__sq_q(s, Q_FLOW_NAME);
    sqlite3_bind_int64(st, 1, no);
    struct es__sq_flow *f = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        f = flow_cache_add(s, (const char *)sqlite3_column_text(st, 0), no);
    }
    sqlite3_reset(st);
    return f;
}

int64_t es__sq_frontier(struct es__sq_store *s, int64_t no)
{
    sqlite3_stmt *st = es__sq_q(s, Q_FRONTIER_GET);
    sqlite3_bind_int64(st, 1, no);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return v < ES__SQ_FIRST(no) ? ES__SQ_FIRST(no) : v;
}

void es__sq_lease_read(sqlite3_stmt *st, struct es__sq_lease *l)
{
    memset(l, 0, sizeof *l);
    l->token = sqlite3_column_int64(st, 0);
    l->flow = sqlite3_column_int64(st, 1);
    l->lo = sqlite3_column_int64(st, 2);
    l->hi = sqlite3_column_int64(st, 3);
    l->until = sqlite3_column_int64(st, 4);
    l->held = sqlite3_column_int64(st, 5);
    l->xheld = sqlite3_column_int64(st, 6);
    int nb = sqlite3_column_bytes(st, 7);
    size_t want = l->hi >= l->lo ? (size_t)((l->hi - l->lo) / 8 + 1) : 0;
    l->nbytes = want;
    if (want > 0) {
        l->bits = es_xcalloc(want, 1);
        if (nb > 0) {
            memcpy(l->bits, sqlite3_column_blob(st, 7), (size_t)nb < want ? (size_t)nb : want);
        }
    }
}

int es__sq_lease_holds(const struct es__sq_lease *l, int64_t id)
{
    if (!l->bits || id < l->lo || id > l->hi) {
        return 0;
    }
    uint64_t off = (uint64_t)(id - l->lo);
    return (l->bits[off / 8] >> (off % 8)) & 1;
}

void es__sq_leases_free(struct es__sq_lease *l, size_t n)
{
    for (size_t i = 0; l && i < n; i++) {
        es_free(l[i].bits);
    }
    es_free(l);
}

int es__sq_leases_of(struct es__sq_store *s, int64_t no, struct es__sq_lease **out, size_t *n,
                     struct es_err *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    sqlite3_stmt *st = es__sq_q(s, Q_LEASES_OF);
    sqlite3_bind_int64(st, 1, no);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        ES_GROW(*out, cap, *n + 1);
        es__sq_lease_read(st, &(*out)[(*n)++]);
    }
    sqlite3_reset(st);
    if (r != SQLITE_DONE) {
        es__sq_leases_free(*out, *n);
        *out = NULL;
        *n = 0;
        return es__sq_fail(s, err, "leases");
    }
    return ES_OK;
}

int es__sq_audit_put(struct es__sq_store *s, int64_t change_id, int64_t n, const char *flow,
                     const char *key, int64_t now, int state, enum es_code code, int attempt,
                     int64_t duration, const char *msg, struct es_err *err)
{
    sqlite3_stmt *st = es__sq_q(s, Q_AUDIT);
    sqlite3_bind_int64(st, 1, change_id);
    es__sq_bind_text(st, 2, flow);
    es__sq_bind_text(st, 3, key);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int(st, 5, state);
    sqlite3_bind_int(st, 6, (int)code);
    sqlite3_bind_int(st, 7, attempt);
    sqlite3_bind_int64(st, 8, duration);
    es__sq_bind_opt(st, 9, msg);
    sqlite3_bind_int64(st, 10, n);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return es__sq_fail(s, err, "audit");
    }
    return ES_OK;
}

/* PRAGMA user_version, or -1 when it cannot be read. */
static int user_version(struct es__sq_store *s)
{
    sqlite3_stmt *st = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        version = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return version;
}

static int migrate(struct es__sq_store *s, struct es_err *err)
{
    int version = user_version(s);
    if (version < 0) {
        return es__sq_fail(s, err, "schema version");
    }
    if (version > SCHEMA_VERSION) {
        es_err_set(err, ES_ESTORE, "store schema v%d is newer than this erpsync (v%d)", version,
                   SCHEMA_VERSION);
        es_err_hint(err, "run the erpsync version that wrote this file, or a newer one");
        return ES_ESTORE;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        if (es__sq_exec(s, "BEGIN IMMEDIATE", err) != ES_OK) {
            return ES_ESTORE;
        }
        /* Another process may have migrated while we waited for the write lock (two
         * processes opening a new store at once): read the version again under the lock. */
        int now = user_version(s);
        if (now > v) {
            (void)es__sq_exec(s, "COMMIT", NULL);
            v = now - 1;
            continue;
        }
        char pragma[40];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if (es__sq_exec(s, migrations[v], err) != ES_OK || es__sq_exec(s, pragma, err) != ES_OK ||
            es__sq_exec(s, "COMMIT", err) != ES_OK) {
            (void)es__sq_exec(s, "ROLLBACK", NULL);
            es_err_prefix(err, "migrating store to v%d", v + 1);
            return ES_ESTORE;
        }
    }
    return ES_OK;
}

static void sqlite_close(struct es_store *base)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    if (!s) {
        return;
    }
    for (int i = 0; i < Q_LAST; i++) {
        sqlite3_finalize(s->q[i]);
    }
    sqlite3_close(s->db);
    deltas_clear(s);
    es_free(s->deltas);
    for (size_t i = 0; i < s->nflows; i++) {
        es_free(s->flows[i].name);
    }
    es_free(s->flows);
    pthread_mutex_destroy(&s->lock);
    es_free(s);
}

/* SQLite's memory statistics take a global mutex on every allocation (several per statement);
 * nothing here reads them. Only possible before SQLite initialises: if another part of the
 * process used SQLite first, the call fails and the default stays. */
static void configure_once(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    es_mem_keep_freed(); /* a leased batch is 100 KiB+ allocated and freed per call */
}

static int sqlite_open(const char *path, struct es_store **out, struct es_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_once);
    *out = NULL;
    struct es__sq_store *s = es_xcalloc(1, sizeof *s);
    s->base.abi = ES_STORE_ABI;
    s->base.ops = &es_store_sqlite_ops;
    pthread_mutex_init(&s->lock, NULL);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        es_err_set(err, ES_ESTORE, "sqlite: cannot open '%s': %s", path,
                   s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 10000);
    if (es__sq_exec(s, "PRAGMA journal_mode = WAL", err) != ES_OK ||
        es__sq_exec(s, "PRAGMA synchronous = FULL", err) != ES_OK ||
        es__sq_exec(s, "PRAGMA cache_size = -16384", err) != ES_OK ||
        es__sq_exec(s, "PRAGMA foreign_keys = OFF", err) != ES_OK || migrate(s, err) != ES_OK) {
        es_err_prefix(err, "store '%s'", path);
        goto fail;
    }
    for (int i = 0; i < Q_LAST; i++) {
        if (sqlite3_prepare_v3(s->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL) !=
            SQLITE_OK) {
            es__sq_fail(s, err, "prepare");
            es_err_prefix(err, "statement %d", i);
            goto fail;
        }
    }
    *out = &s->base;
    return ES_OK;
fail:
    sqlite_close(&s->base);
    return ES_ESTORE;
}

static int sqlite_cursor_get(struct es_store *base, const char *flow, const char *name,
                             char **value, struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    *value = NULL;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = es__sq_q(s, Q_CURSOR_GET);
    es__sq_bind_text(st, 1, flow);
    es__sq_bind_text(st, 2, name);
    int r = sqlite3_step(st);
    int rc = ES_OK;
    if (r == SQLITE_ROW) {
        *value = es__sq_col_dup(st, 0);
    } else if (r != SQLITE_DONE) {
        rc = es__sq_fail(s, err, "cursor");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sqlite_cursor_set(struct es_store *base, const char *flow, const char *name,
                             const char *value, struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    int rc = es__sq_begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    struct es_cursor_in c = {flow, name, value};
    rc = es__sq_set_cursor(s, &c, err);
    return es__sq_finish(s, rc, err);
}

static int sqlite_flow_pause(struct es_store *base, const char *flow, const char *reason,
                             struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    int rc = es__sq_begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    sqlite3_stmt *st = NULL;
    const char *sql = reason ? "INSERT INTO flows(flow, paused, reason) VALUES(?1, 1, ?2)"
                               " ON CONFLICT(flow) DO UPDATE SET paused = 1, reason = ?2"
                             : "INSERT INTO flows(flow, paused, reason) VALUES(?1, 0, NULL)"
                               " ON CONFLICT(flow) DO UPDATE SET paused = 0, reason = NULL";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = es__sq_fail(s, err, "prepare");
    } else {
        es__sq_bind_text(st, 1, flow);
        es__sq_bind_text(st, 2, reason);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = es__sq_fail(s, err, "pause");
        }
    }
    sqlite3_finalize(st);
    return es__sq_finish(s, rc, err);
}

/* Runs a one-row one-column lookup statement. */
static int lookup_one(struct es__sq_store *s, int which, const char *a, const char *b,
                      const char *c, const char *d, char **out, struct es_err *err)
{
    *out = NULL;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = es__sq_q(s, which);
    es__sq_bind_text(st, 1, a);
    es__sq_bind_text(st, 2, b);
    es__sq_bind_text(st, 3, c);
    if (d) {
        es__sq_bind_text(st, 4, d);
    }
    int r = sqlite3_step(st);
    int rc = ES_OK;
    if (r == SQLITE_ROW) {
        *out = es__sq_col_dup(st, 0);
    } else if (r == SQLITE_DONE) {
        rc = es_err_set(err, ES_ENOTFOUND, "%s %s in %s: not known", a, c, b);
    } else {
        rc = es__sq_fail(s, err, "lookup");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sqlite_xref_lookup(struct es_store *base, const char *entity, const char *system,
                              const char *id, const char *other_system, char **out,
                              struct es_err *err)
{
    return lookup_one((struct es__sq_store *)base, Q_XREF_LOOKUP, entity, system, id, other_system,
                      out, err);
}

static int sqlite_fingerprint_get(struct es_store *base, const char *entity, const char *system,
                                  const char *id, char **out, struct es_err *err)
{
    return lookup_one((struct es__sq_store *)base, Q_FP_GET, entity, system, id, NULL, out, err);
}

static int sqlite_xref_links(struct es_store *base, const char *entity, const char *system,
                             const char *id, char **global, struct es_xref_link **links, size_t *n,
                             struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    *global = NULL;
    *links = NULL;
    *n = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = es__sq_q(s, Q_XREF_FIND);
    es__sq_bind_text(st, 1, entity);
    es__sq_bind_text(st, 2, system);
    es__sq_bind_text(st, 3, id);
    char *g = sqlite3_step(st) == SQLITE_ROW ? es__sq_col_dup(st, 0) : NULL;
    sqlite3_reset(st);
    int rc = ES_OK;
    if (!g) {
        rc = es_err_set(err, ES_ENOTFOUND, "%s %s in %s: not known", entity, id, system);
        goto out;
    }
    st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT system, system_id, updated FROM xref WHERE entity = ?1"
                           " AND global_id = ?2 ORDER BY system, system_id",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = es__sq_fail(s, err, "xref");
        es_free(g);
        goto out;
    }
    es__sq_bind_text(st, 1, entity);
    es__sq_bind_text(st, 2, g);
    struct es_xref_link *items = NULL;
    size_t count = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        ES_GROW(items, cap, count + 1);
        struct es_xref_link *l = &items[count++];
        memset(l, 0, sizeof *l);
        const unsigned char *v = sqlite3_column_text(st, 0);
        es_strlcpy(l->system, v ? (const char *)v : "", sizeof l->system);
        v = sqlite3_column_text(st, 1);
        es_strlcpy(l->id, v ? (const char *)v : "", sizeof l->id);
        l->updated_ms = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    *global = g;
    *links = items;
    *n = count;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

const struct es_store_ops es_store_sqlite_ops = {
    .open = sqlite_open,
    .close = sqlite_close,
    .enqueue = es__sq_enqueue,
    .lease = es__sq_lease,
    .complete = es__sq_complete,
    .renew = es__sq_renew,
    .recover = es__sq_recover,
    .cursor_get = sqlite_cursor_get,
    .cursor_set = sqlite_cursor_set,
    .flow_pause = sqlite_flow_pause,
    .stats = es__sq_stats,
    .list = es__sq_list,
    .get = es__sq_get,
    .replay = es__sq_replay,
    .resolve = es__sq_resolve,
    .xref_lookup = sqlite_xref_lookup,
    .fingerprint_get = sqlite_fingerprint_get,
    .xref_links = sqlite_xref_links,
    .audit = es__sq_audit,
    .prune = es__sq_prune,
};
