/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store: one database file in WAL mode with synchronous=FULL, so a commit that
 * returned survives a crash of the process and of the machine. One connection per es_store,
 * serialised by a mutex; other processes (the CLI while the daemon runs) open their own and
 * wait on the busy timeout.
 *
 * Schema versions live in PRAGMA user_version and are applied in order by migrate(); a file
 * from a newer erpsync is refused rather than guessed at. The payload of a change sits in its
 * own table so that the frequent state updates rewrite a small row, not the record.
 *
 * Gauges (changes per state per flow) are kept in `counts` and moved in the same transaction
 * as the state changes, so `status` and /metrics never scan the journal.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/mem.h"
#include "store/store.h"

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
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

#define CHANGE_COLS                                                                                \
    "c.id, c.flow, c.key, c.version, c.deleted, c.state, c.attempts, c.created, c.updated,"        \
    " c.next_at, c.lease_until, c.lease, c.last_code, c.last_msg, c.last_remote_code,"             \
    " c.last_remote_msg, c.last_hint, c.note, p.body"

enum {
    Q_INSERT,
    Q_PAYLOAD,
    Q_CURSOR_SET,
    Q_CURSOR_DEL,
    Q_CURSOR_GET,
    Q_COUNT_ADD,
    Q_EXPIRED,
    Q_EXPIRE,
    Q_LEASE_PUT,
    Q_LEASE_DONE,
    Q_LEASE_DEL,
    Q_LEASE_RENEW,
    Q_LEASE_ROWS,
    Q_LEASE_HELD,
    Q_PAUSED,
    Q_CANDIDATES,
    Q_TAKE,
    Q_HOLDER,
    Q_COMPLETE,
    Q_AUDIT,
    Q_SUCCESS,
    Q_XREF_FIND,
    Q_XREF_PUT,
    Q_FP_PUT,
    Q_FP_GET,
    Q_XREF_LOOKUP,
    Q_LAST
};

static const char *const sql_text[Q_LAST] = {
    [Q_INSERT] = "INSERT INTO changes(flow, key, version, deleted, created, updated)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT DO NOTHING",
    [Q_PAYLOAD] = "INSERT INTO payloads(id, body) VALUES(?1, ?2)",
    [Q_CURSOR_SET] = "INSERT INTO cursors(flow, name, value, updated) VALUES(?1, ?2, ?3, ?4)"
                     " ON CONFLICT(flow, name) DO UPDATE SET value = excluded.value,"
                     " updated = excluded.updated",
    [Q_CURSOR_DEL] = "DELETE FROM cursors WHERE flow = ?1 AND name = ?2",
    [Q_CURSOR_GET] = "SELECT value FROM cursors WHERE flow = ?1 AND name = ?2",
    [Q_COUNT_ADD] = "INSERT INTO counts(flow, name, n) VALUES(?1, ?2, ?3)"
                    " ON CONFLICT(flow, name) DO UPDATE SET n = n + excluded.n",
    [Q_EXPIRED] = "SELECT token, flow, lo, hi FROM leases WHERE until < ?1",
    /* The changes of one leased batch still held by it (the others completed or expired). */
    [Q_EXPIRE] = "UPDATE changes SET state = 0, lease = 0, lease_until = 0, updated = ?5"
                 " WHERE closed = 0 AND flow = ?1 AND id BETWEEN ?2 AND ?3 AND state = 1"
                 " AND lease = ?4",
    [Q_LEASE_PUT] = "INSERT INTO leases(flow, lo, hi, until, n) VALUES(?2, ?3, ?4, ?5, ?6)",
    [Q_LEASE_DONE] = "UPDATE leases SET n = n - ?2 WHERE token = ?1",
    [Q_LEASE_RENEW] = "UPDATE leases SET until = ?2 WHERE token = ?1 AND until < ?2",
    [Q_LEASE_ROWS] = "UPDATE changes SET lease_until = max(lease_until, ?2) WHERE id BETWEEN"
                     " (SELECT lo FROM leases WHERE token = ?1) AND"
                     " (SELECT hi FROM leases WHERE token = ?1) AND state = 1 AND lease = ?1",
    [Q_LEASE_HELD] = "SELECT 1 FROM leases WHERE token = ?1",
    [Q_LEASE_DEL] = "DELETE FROM leases WHERE token = ?1 AND n <= ?2",
    [Q_PAUSED] = "SELECT paused FROM flows WHERE flow = ?1",
    /* Only the oldest open change of a key may be leased (ordering per record key). The
     * closed terms repeat the partial indexes' WHERE so the planner can use them. */
    [Q_CANDIDATES] = "SELECT " CHANGE_COLS " FROM changes c LEFT JOIN payloads p ON p.id = c.id"
                     " WHERE c.flow = ?1 AND c.closed = 0 AND c.state <> 1"
                     " AND c.next_at <= ?2 AND NOT EXISTS (SELECT 1 FROM changes o"
                     "  WHERE o.flow = ?1 AND o.key = c.key AND o.closed = 0 AND o.id < c.id)"
                     " ORDER BY c.id LIMIT ?3",
    [Q_TAKE] = "UPDATE changes SET state = 1, lease = ?2, lease_until = ?3, updated = ?4,"
               " attempts = attempts + 1 WHERE id = ?1",
    /* No RETURNING on hot paths: SQLite builds a temporary table for it per statement. */
    [Q_HOLDER] = "SELECT flow, key, attempts FROM changes WHERE id = ?1 AND state = 1"
                 " AND lease = ?2",
    [Q_COMPLETE] =
        "UPDATE changes SET state = ?3, closed = ?12, next_at = ?4, lease = 0,"
        " lease_until = 0, updated = ?5, last_code = ?6, last_msg = ?7, last_remote_code = ?8,"
        " last_remote_msg = ?9, last_hint = ?10, note = ?11"
        " WHERE id = ?1 AND state = 1 AND lease = ?2",
    [Q_AUDIT] = "INSERT INTO audit(change_id, flow, key, ts, state, code, attempt, duration_ms, "
                "msg) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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

/* A gauge/counter move, applied at the end of a transaction. */
struct delta {
    char *flow;
    const char *name;
    int64_t n;
};

/* Outcomes committed for one leased batch (its `leases` row counts down to 0, then goes). */
struct tally {
    uint64_t token;
    int64_t n;
};

struct sqlite_store {
    struct es_store base;
    sqlite3 *db;
    pthread_mutex_t lock;
    sqlite3_stmt *q[Q_LAST];
    struct delta *deltas;
    size_t ndeltas, cap_deltas;
    struct tally *tallies; /* outcomes per lease token in the current complete() */
    size_t ntallies, cap_tallies;
};

static const char *const count_state[ES_CHANGE_STATE_LAST] = {
    "state.pending", "state.leased", "state.done", "state.retry", "state.review", "state.dead",
};
static const char *const count_outcome[ES_CHANGE_STATE_LAST] = {
    "outcome.pending", "outcome.leased", "outcome.done",
    "outcome.retry",   "outcome.review", "outcome.dead",
};

static const char *const count_skip[3] = {"skipped.none", "skipped.noop", "skipped.echo"};

/* The `closed` column for a state: 0 open (pending, leased, retry), 1 done, 2 parked. */
static int closed_of(int state)
{
    return state == ES_CHANGE_DONE ? 1 : state >= ES_CHANGE_REVIEW ? 2 : 0;
}

static int db_fail(struct sqlite_store *s, struct es_err *err, const char *what)
{
    return es_err_set(err, ES_ESTORE, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(struct sqlite_store *s, const char *sql, struct es_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        es_err_set(err, ES_ESTORE, "sqlite: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return ES_ESTORE;
    }
    return ES_OK;
}

static sqlite3_stmt *q(struct sqlite_store *s, int which)
{
    sqlite3_stmt *st = s->q[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v) {
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, i);
    }
}

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    bind_text(st, i, (v && *v) ? v : NULL);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? es_xstrdup((const char *)t) : NULL;
}

static void delta_add(struct sqlite_store *s, const char *flow, const char *name, int64_t n)
{
    for (size_t i = 0; i < s->ndeltas; i++) {
        if (s->deltas[i].name == name && strcmp(s->deltas[i].flow, flow) == 0) {
            s->deltas[i].n += n;
            return;
        }
    }
    ES_GROW(s->deltas, s->cap_deltas, s->ndeltas + 1);
    s->deltas[s->ndeltas++] = (struct delta){es_xstrdup(flow), name, n};
}

static void deltas_clear(struct sqlite_store *s)
{
    for (size_t i = 0; i < s->ndeltas; i++) {
        es_free(s->deltas[i].flow);
    }
    s->ndeltas = 0;
}

static void move_state(struct sqlite_store *s, const char *flow, int from, int to)
{
    if (from >= 0) {
        delta_add(s, flow, count_state[from], -1);
    }
    if (to >= 0) {
        delta_add(s, flow, count_state[to], 1);
    }
}

static int deltas_apply(struct sqlite_store *s, struct es_err *err)
{
    for (size_t i = 0; i < s->ndeltas; i++) {
        if (s->deltas[i].n == 0) {
            continue;
        }
        sqlite3_stmt *st = q(s, Q_COUNT_ADD);
        bind_text(st, 1, s->deltas[i].flow);
        bind_text(st, 2, s->deltas[i].name);
        sqlite3_bind_int64(st, 3, s->deltas[i].n);
        if (sqlite3_step(st) != SQLITE_DONE) {
            return db_fail(s, err, "counts");
        }
    }
    deltas_clear(s);
    return ES_OK;
}

static int begin(struct sqlite_store *s, struct es_err *err)
{
    pthread_mutex_lock(&s->lock);
    deltas_clear(s);
    if (exec(s, "BEGIN IMMEDIATE", err) != ES_OK) {
        pthread_mutex_unlock(&s->lock);
        return ES_ESTORE;
    }
    return ES_OK;
}

/* Commits (rc == ES_OK, after applying the deltas) or rolls back, then unlocks. */
static int finish(struct sqlite_store *s, int rc, struct es_err *err)
{
    if (rc == ES_OK) {
        rc = deltas_apply(s, err);
    }
    if (rc == ES_OK) {
        rc = exec(s, "COMMIT", err);
    }
    if (rc != ES_OK) {
        deltas_clear(s);
        (void)exec(s, "ROLLBACK", NULL);
    }
    for (int i = 0; i < Q_LAST; i++) {
        sqlite3_reset(s->q[i]);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* PRAGMA user_version, or -1 when it cannot be read. */
static int user_version(struct sqlite_store *s)
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

static int migrate(struct sqlite_store *s, struct es_err *err)
{
    int version = user_version(s);
    if (version < 0) {
        return db_fail(s, err, "schema version");
    }
    if (version > SCHEMA_VERSION) {
        es_err_set(err, ES_ESTORE, "store schema v%d is newer than this erpsync (v%d)", version,
                   SCHEMA_VERSION);
        es_err_hint(err, "run the erpsync version that wrote this file, or a newer one");
        return ES_ESTORE;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        if (exec(s, "BEGIN IMMEDIATE", err) != ES_OK) {
            return ES_ESTORE;
        }
        /* Another process may have migrated while we waited for the write lock (two
         * processes opening a new store at once): read the version again under the lock. */
        int now = user_version(s);
        if (now > v) {
            (void)exec(s, "COMMIT", NULL);
            v = now - 1;
            continue;
        }
        char pragma[40];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if (exec(s, migrations[v], err) != ES_OK || exec(s, pragma, err) != ES_OK ||
            exec(s, "COMMIT", err) != ES_OK) {
            (void)exec(s, "ROLLBACK", NULL);
            es_err_prefix(err, "migrating store to v%d", v + 1);
            return ES_ESTORE;
        }
    }
    return ES_OK;
}

static void sqlite_close(struct es_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (!s) {
        return;
    }
    for (int i = 0; i < Q_LAST; i++) {
        sqlite3_finalize(s->q[i]);
    }
    sqlite3_close(s->db);
    deltas_clear(s);
    es_free(s->deltas);
    es_free(s->tallies);
    pthread_mutex_destroy(&s->lock);
    es_free(s);
}

/* SQLite's memory statistics take a global mutex on every allocation (several per statement);
 * nothing here reads them. Only possible before SQLite initialises: if another part of the
 * process used SQLite first, the call fails and the default stays. */
static void configure_once(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sqlite_open(const char *path, struct es_store **out, struct es_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_once);
    *out = NULL;
    struct sqlite_store *s = es_xcalloc(1, sizeof *s);
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
    if (exec(s, "PRAGMA journal_mode = WAL", err) != ES_OK ||
        exec(s, "PRAGMA synchronous = FULL", err) != ES_OK ||
        /* The journal's indexes are updated on every state change: keep their pages hot. */
        exec(s, "PRAGMA cache_size = -16384", err) != ES_OK ||
        exec(s, "PRAGMA foreign_keys = OFF", err) != ES_OK || migrate(s, err) != ES_OK) {
        es_err_prefix(err, "store '%s'", path);
        goto fail;
    }
    for (int i = 0; i < Q_LAST; i++) {
        if (sqlite3_prepare_v3(s->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL) !=
            SQLITE_OK) {
            db_fail(s, err, "prepare");
            goto fail;
        }
    }
    *out = &s->base;
    return ES_OK;
fail:
    sqlite_close(&s->base);
    return ES_ESTORE;
}

static int set_cursor(struct sqlite_store *s, const struct es_cursor_in *c, struct es_err *err)
{
    sqlite3_stmt *st = q(s, c->value ? Q_CURSOR_SET : Q_CURSOR_DEL);
    bind_text(st, 1, c->flow);
    bind_text(st, 2, c->name);
    if (c->value) {
        bind_text(st, 3, c->value);
        sqlite3_bind_int64(st, 4, es_clock_wall_ms());
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        return db_fail(s, err, "cursor");
    }
    return ES_OK;
}

static int sqlite_enqueue(struct es_store *base, const struct es_change_in *in, size_t n,
                          const struct es_cursor_in *cursors, size_t ncursors, unsigned char *added,
                          struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int64_t now = es_clock_wall_ms();
    int rc = begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    for (size_t i = 0; i < n && rc == ES_OK; i++) {
        if (!in[i].flow || !in[i].key || !in[i].version) {
            rc = es_err_set(err, ES_EINVAL, "change %zu: flow, key and version are required", i);
            break;
        }
        sqlite3_stmt *st = q(s, Q_INSERT);
        bind_text(st, 1, in[i].flow);
        bind_text(st, 2, in[i].key);
        bind_text(st, 3, in[i].version);
        sqlite3_bind_int(st, 4, in[i].deleted ? 1 : 0);
        sqlite3_bind_int64(st, 5, now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(s, err, "enqueue");
            break;
        }
        int fresh = sqlite3_changes(s->db) == 1;
        if (added) {
            added[i] = (unsigned char)fresh;
        }
        if (!fresh) {
            delta_add(s, in[i].flow, "duplicates", 1);
            continue;
        }
        int64_t id = sqlite3_last_insert_rowid(s->db);
        delta_add(s, in[i].flow, "enqueued", 1);
        move_state(s, in[i].flow, -1, ES_CHANGE_PENDING);
        if (in[i].payload) {
            st = q(s, Q_PAYLOAD);
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, in[i].payload, (int)in[i].payload_len, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE) {
                rc = db_fail(s, err, "enqueue payload");
            }
        }
    }
    for (size_t i = 0; i < ncursors && rc == ES_OK; i++) {
        rc = set_cursor(s, &cursors[i], err);
    }
    return finish(s, rc, err);
}

static void read_change(sqlite3_stmt *st, struct es_change *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(st, 0);
    c->flow = col_dup(st, 1);
    c->key = col_dup(st, 2);
    c->version = col_dup(st, 3);
    c->deleted = sqlite3_column_int(st, 4);
    c->state = (enum es_change_state)sqlite3_column_int(st, 5);
    c->attempts = sqlite3_column_int(st, 6);
    c->created_ms = sqlite3_column_int64(st, 7);
    c->updated_ms = sqlite3_column_int64(st, 8);
    c->next_at_ms = sqlite3_column_int64(st, 9);
    c->lease_until_ms = sqlite3_column_int64(st, 10);
    c->lease = (uint64_t)sqlite3_column_int64(st, 11);
    c->last_code = (enum es_code)sqlite3_column_int(st, 12);
    c->last_msg = col_dup(st, 13);
    c->last_remote_code = col_dup(st, 14);
    c->last_remote_msg = col_dup(st, 15);
    c->last_hint = col_dup(st, 16);
    c->note = col_dup(st, 17);
    if (sqlite3_column_type(st, 18) != SQLITE_NULL) {
        c->payload_len = (size_t)sqlite3_column_bytes(st, 18);
        c->payload = es_xstrndup((const char *)sqlite3_column_text(st, 18), c->payload_len);
    }
}

/* Returns the changes of every batch whose lease ended before `now` to PENDING and drops
 * the batches' lease rows (INT64_MAX: every batch, as recovery at startup does). Counts the
 * changes moved in *moved (may be NULL). */
static int expire(struct sqlite_store *s, int64_t now, size_t *moved, struct es_err *err)
{
    struct expired {
        int64_t token, lo, hi;
        char *flow;
    } *ex = NULL;
    size_t nex = 0, cap = 0;
    sqlite3_stmt *st = q(s, Q_EXPIRED);
    sqlite3_bind_int64(st, 1, now);
    int r, rc = ES_OK;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        ES_GROW(ex, cap, nex + 1);
        ex[nex++] = (struct expired){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 2),
                                     sqlite3_column_int64(st, 3), col_dup(st, 1)};
    }
    if (r != SQLITE_DONE) {
        rc = db_fail(s, err, "lease expiry");
    }
    sqlite3_reset(st);
    int64_t wall = es_clock_wall_ms();
    for (size_t i = 0; i < nex && rc == ES_OK; i++) {
        st = q(s, Q_EXPIRE);
        bind_text(st, 1, ex[i].flow);
        sqlite3_bind_int64(st, 2, ex[i].lo);
        sqlite3_bind_int64(st, 3, ex[i].hi);
        sqlite3_bind_int64(st, 4, ex[i].token);
        sqlite3_bind_int64(st, 5, now == INT64_MAX ? wall : now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(s, err, "lease expiry");
            break;
        }
        int k = sqlite3_changes(s->db);
        delta_add(s, ex[i].flow, count_state[ES_CHANGE_LEASED], -k);
        delta_add(s, ex[i].flow, count_state[ES_CHANGE_PENDING], k);
        if (moved) {
            *moved += (size_t)k;
        }
        st = q(s, Q_LEASE_DEL);
        sqlite3_bind_int64(st, 1, ex[i].token);
        sqlite3_bind_int64(st, 2, INT64_MAX);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(s, err, "lease expiry");
        }
    }
    for (size_t i = 0; i < nex; i++) {
        es_free(ex[i].flow);
    }
    es_free(ex);
    return rc;
}

static int sqlite_lease(struct es_store *base, const char *flow, size_t max, int64_t now_ms,
                        int64_t lease_ms, struct es_change **out, size_t *n, struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *out = NULL;
    *n = 0;
    int rc = begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    struct es_change *items = NULL;
    size_t count = 0;
    rc = expire(s, now_ms, NULL, err);
    if (rc == ES_OK) {
        sqlite3_stmt *st = q(s, Q_PAUSED);
        bind_text(st, 1, flow);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW && sqlite3_column_int(st, 0)) {
            return finish(s, ES_OK, err);
        }
        if (r != SQLITE_ROW && r != SQLITE_DONE) {
            rc = db_fail(s, err, "flow state");
        }
    }
    if (rc == ES_OK && max > 0) {
        items = es_xcalloc(max, sizeof *items);
        sqlite3_stmt *st = q(s, Q_CANDIDATES);
        bind_text(st, 1, flow);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_int64(st, 3, (int64_t)max);
        int r;
        while (count < max && (r = sqlite3_step(st)) == SQLITE_ROW) {
            read_change(st, &items[count++]);
        }
        if (count < max && r != SQLITE_DONE) {
            rc = db_fail(s, err, "lease");
        }
        sqlite3_reset(st);
    }
    /* One token for the batch: the id of its row in `leases` (with its id range and expiry),
     * AUTOINCREMENT so that no token is ever handed out twice, by any process. */
    uint64_t token = 0;
    if (rc == ES_OK && count > 0) {
        sqlite3_stmt *st = q(s, Q_LEASE_PUT);
        bind_text(st, 2, flow);
        sqlite3_bind_int64(st, 3, items[0].id);
        sqlite3_bind_int64(st, 4, items[count - 1].id);
        sqlite3_bind_int64(st, 5, now_ms + lease_ms);
        sqlite3_bind_int64(st, 6, (int64_t)count);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(s, err, "lease");
        }
        token = (uint64_t)sqlite3_last_insert_rowid(s->db);
    }
    for (size_t i = 0; i < count && rc == ES_OK; i++) {
        struct es_change *c = &items[i];
        sqlite3_stmt *st = q(s, Q_TAKE);
        c->lease = token;
        c->lease_until_ms = now_ms + lease_ms;
        sqlite3_bind_int64(st, 1, c->id);
        sqlite3_bind_int64(st, 2, (int64_t)c->lease);
        sqlite3_bind_int64(st, 3, c->lease_until_ms);
        sqlite3_bind_int64(st, 4, now_ms);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(s, err, "lease update");
            break;
        }
        move_state(s, c->flow, (int)c->state, ES_CHANGE_LEASED);
        c->state = ES_CHANGE_LEASED;
        c->attempts++;
    }
    rc = finish(s, rc, err);
    if (rc != ES_OK) {
        es_changes_free(items, count);
        return rc;
    }
    if (count == 0) {
        es_free(items);
        items = NULL;
    }
    *out = items;
    *n = count;
    return ES_OK;
}

/* Global id of a record, or NULL. OUT: es_free. */
static char *xref_find(struct sqlite_store *s, const char *entity, const char *system,
                       const char *id)
{
    sqlite3_stmt *st = q(s, Q_XREF_FIND);
    bind_text(st, 1, entity);
    bind_text(st, 2, system);
    bind_text(st, 3, id);
    char *g = sqlite3_step(st) == SQLITE_ROW ? col_dup(st, 0) : NULL;
    sqlite3_reset(st);
    return g;
}

static int xref_put(struct sqlite_store *s, const char *entity, const char *system, const char *id,
                    const char *global, int64_t now, struct es_err *err)
{
    sqlite3_stmt *st = q(s, Q_XREF_PUT);
    bind_text(st, 1, entity);
    bind_text(st, 2, system);
    bind_text(st, 3, id);
    bind_text(st, 4, global);
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return db_fail(s, err, "xref");
    }
    return ES_OK;
}

static int fp_put(struct sqlite_store *s, const char *entity, const char *system, const char *id,
                  const char *fp, int64_t now, struct es_err *err)
{
    sqlite3_stmt *st = q(s, Q_FP_PUT);
    bind_text(st, 1, entity);
    bind_text(st, 2, system);
    bind_text(st, 3, id);
    bind_text(st, 4, fp);
    sqlite3_bind_int64(st, 5, now);
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    return r == SQLITE_DONE ? ES_OK : db_fail(s, err, "fingerprint");
}

static int record_xref(struct sqlite_store *s, const struct es_xref_in *x, int64_t id, int64_t now,
                       struct es_err *err)
{
    int rc = ES_OK;
    if (x->target_id && x->source_id) {
        char *g = xref_find(s, x->entity, x->source_system, x->source_id);
        if (!g) {
            g = xref_find(s, x->entity, x->target_system, x->target_id);
        }
        if (!g) {
            /* A new global id: unique per store, readable in logs. */
            g = es_xasprintf("g%llx-%llx", (unsigned long long)now, (unsigned long long)id);
        }
        rc = xref_put(s, x->entity, x->source_system, x->source_id, g, now, err);
        if (rc == ES_OK) {
            rc = xref_put(s, x->entity, x->target_system, x->target_id, g, now, err);
        }
        es_free(g);
    }
    if (rc == ES_OK && x->fingerprint && x->target_id) {
        rc = fp_put(s, x->entity, x->target_system, x->target_id, x->fingerprint, now, err);
    }
    return rc;
}

static int audit_put(struct sqlite_store *s, int64_t change_id, const char *flow, const char *key,
                     int64_t now, int state, enum es_code code, int attempt, int64_t duration,
                     const char *msg, struct es_err *err)
{
    sqlite3_stmt *st = q(s, Q_AUDIT);
    sqlite3_bind_int64(st, 1, change_id);
    bind_text(st, 2, flow);
    bind_text(st, 3, key);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int(st, 5, state);
    sqlite3_bind_int(st, 6, (int)code);
    sqlite3_bind_int(st, 7, attempt);
    sqlite3_bind_int64(st, 8, duration);
    bind_opt(st, 9, msg);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return db_fail(s, err, "audit");
    }
    return ES_OK;
}

static void tally_add(struct sqlite_store *s, uint64_t token)
{
    for (size_t i = s->ntallies; i > 0; i--) {
        if (s->tallies[i - 1].token == token) {
            s->tallies[i - 1].n++;
            return;
        }
    }
    ES_GROW(s->tallies, s->cap_tallies, s->ntallies + 1);
    s->tallies[s->ntallies++] = (struct tally){token, 1};
}

/* Counts the committed outcomes down on their batches' lease rows; a batch with every
 * outcome in loses its row. */
static int tallies_apply(struct sqlite_store *s, struct es_err *err)
{
    for (size_t i = 0; i < s->ntallies; i++) {
        sqlite3_stmt *st = q(s, Q_LEASE_DONE);
        sqlite3_bind_int64(st, 1, (int64_t)s->tallies[i].token);
        sqlite3_bind_int64(st, 2, s->tallies[i].n);
        if (sqlite3_step(st) != SQLITE_DONE) {
            return db_fail(s, err, "lease count");
        }
        st = q(s, Q_LEASE_DEL);
        sqlite3_bind_int64(st, 1, (int64_t)s->tallies[i].token);
        sqlite3_bind_int64(st, 2, 0);
        if (sqlite3_step(st) != SQLITE_DONE) {
            return db_fail(s, err, "lease count");
        }
    }
    return ES_OK;
}

/* flows.last_success, written once per flow per transaction. */
static int success_put(struct sqlite_store *s, const char *flow, int64_t now_ms, struct es_err *err)
{
    sqlite3_stmt *st = q(s, Q_SUCCESS);
    bind_text(st, 1, flow);
    sqlite3_bind_int64(st, 2, now_ms);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return db_fail(s, err, "last success");
    }
    return ES_OK;
}

static int sqlite_complete(struct es_store *base, struct es_outcome *outs, size_t n, int64_t now_ms,
                           struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int rc = begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    s->ntallies = 0;
    char *succeeded = NULL; /* the flow whose last_success is pending to write */
    for (size_t i = 0; i < n && rc == ES_OK; i++) {
        struct es_outcome *o = &outs[i];
        const struct es_err *e = o->err;
        if (o->state == ES_CHANGE_LEASED || (unsigned)o->state >= ES_CHANGE_STATE_LAST) {
            rc = es_err_set(err, ES_EINVAL, "outcome of change %lld: bad state", (long long)o->id);
            break;
        }
        char *flow = NULL, *key = NULL;
        int attempts = 0;
        sqlite3_stmt *st;
        if (!o->leased) {
            st = q(s, Q_HOLDER);
            sqlite3_bind_int64(st, 1, o->id);
            sqlite3_bind_int64(st, 2, (int64_t)o->lease);
            int r = sqlite3_step(st);
            if (r == SQLITE_DONE) {
                o->stale = 1; /* the lease was lost: someone else owns the change now */
                continue;
            }
            if (r != SQLITE_ROW) {
                rc = db_fail(s, err, "complete");
                break;
            }
            flow = col_dup(st, 0);
            key = col_dup(st, 1);
            attempts = sqlite3_column_int(st, 2);
            sqlite3_reset(st);
        }
        o->stale = 0;
        st = q(s, Q_COMPLETE);
        sqlite3_bind_int64(st, 1, o->id);
        sqlite3_bind_int(st, 3, (int)o->state);
        sqlite3_bind_int64(st, 4, o->state == ES_CHANGE_RETRY ? o->next_at_ms : 0);
        sqlite3_bind_int64(st, 5, now_ms);
        sqlite3_bind_int(st, 6, e ? (int)e->code : 0);
        bind_opt(st, 7, e ? e->msg : NULL);
        bind_opt(st, 8, e ? e->remote_code : NULL);
        bind_opt(st, 9, e ? e->remote_msg : NULL);
        bind_opt(st, 10, e ? e->hint : NULL);
        bind_opt(st, 11, o->note);
        sqlite3_bind_int(st, 12, closed_of((int)o->state));
        sqlite3_bind_int64(st, 2, (int64_t)o->lease);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(s, err, "complete");
            es_free(flow);
            es_free(key);
            break;
        }
        if (sqlite3_changes(s->db) == 0) {
            o->stale = 1; /* the lease was lost: someone else owns the change now */
            es_free(flow);
            es_free(key);
            continue;
        }
        if (o->leased) {
            flow = es_xstrdup(o->leased->flow);
            key = es_xstrdup(o->leased->key);
            attempts = o->leased->attempts;
        }
        tally_add(s, o->lease);
        move_state(s, flow, ES_CHANGE_LEASED, (int)o->state);
        delta_add(s, flow, count_outcome[o->state], 1);
        rc = audit_put(s, o->id, flow, key, now_ms, (int)o->state, e ? e->code : ES_OK, attempts,
                       o->duration_ms, e && e->msg[0] ? e->msg : o->note, err);
        if (rc == ES_OK && o->state == ES_CHANGE_DONE) {
            if (succeeded && strcmp(succeeded, flow) != 0) {
                rc = success_put(s, succeeded, now_ms, err);
                es_free(succeeded);
                succeeded = NULL;
            }
            if (!succeeded) {
                succeeded = es_xstrdup(flow);
            }
            if (rc == ES_OK && o->xref) {
                rc = record_xref(s, o->xref, o->id, now_ms, err);
            }
            for (size_t k = 0; rc == ES_OK && k < o->nfps; k++) {
                const struct es_fp_in *fp = &o->fps[k];
                if (fp->entity && fp->system && fp->id && fp->fingerprint) {
                    rc = fp_put(s, fp->entity, fp->system, fp->id, fp->fingerprint, now_ms, err);
                }
            }
            if (o->skip > ES_SKIP_NONE && o->skip <= ES_SKIP_ECHO) {
                delta_add(s, flow, count_skip[o->skip], 1);
            }
        }
        es_free(flow);
        es_free(key);
    }
    if (rc == ES_OK && succeeded) {
        rc = success_put(s, succeeded, now_ms, err);
    }
    es_free(succeeded);
    if (rc == ES_OK) {
        rc = tallies_apply(s, err);
    }
    return finish(s, rc, err);
}

static int sqlite_renew(struct es_store *base, uint64_t lease, int64_t until_ms, struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int rc = begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    sqlite3_stmt *st = q(s, Q_LEASE_HELD);
    sqlite3_bind_int64(st, 1, (int64_t)lease);
    int r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        rc = es_err_set(err, ES_ENOTFOUND, "lease %llu: no longer held", (unsigned long long)lease);
    } else if (r != SQLITE_ROW) {
        rc = db_fail(s, err, "renew");
    }
    for (int which = Q_LEASE_RENEW; rc == ES_OK && which <= Q_LEASE_ROWS; which++) {
        st = q(s, which);
        sqlite3_bind_int64(st, 1, (int64_t)lease);
        sqlite3_bind_int64(st, 2, until_ms);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(s, err, "renew");
        }
    }
    return finish(s, rc, err);
}

static int sqlite_recover(struct es_store *base, size_t *n, struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    size_t count = 0;
    int rc = begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    rc = expire(s, INT64_MAX, &count, err);
    rc = finish(s, rc, err);
    if (n) {
        *n = rc == ES_OK ? count : 0;
    }
    return rc;
}

static int sqlite_cursor_get(struct es_store *base, const char *flow, const char *name,
                             char **value, struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *value = NULL;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = q(s, Q_CURSOR_GET);
    bind_text(st, 1, flow);
    bind_text(st, 2, name);
    int r = sqlite3_step(st);
    int rc = ES_OK;
    if (r == SQLITE_ROW) {
        *value = col_dup(st, 0);
    } else if (r != SQLITE_DONE) {
        rc = db_fail(s, err, "cursor");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sqlite_cursor_set(struct es_store *base, const char *flow, const char *name,
                             const char *value, struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int rc = begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    struct es_cursor_in c = {flow, name, value};
    rc = set_cursor(s, &c, err);
    return finish(s, rc, err);
}

/* Runs one statement with text/int parameters inside the lock (no result rows). */
static int run_simple(struct sqlite_store *s, const char *sql, const char *a, const char *b,
                      struct es_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return db_fail(s, err, "prepare");
    }
    bind_text(st, 1, a);
    bind_text(st, 2, b);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        return db_fail(s, err, "update");
    }
    return ES_OK;
}

static int sqlite_flow_pause(struct es_store *base, const char *flow, const char *reason,
                             struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int rc = begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    rc = run_simple(s,
                    reason ? "INSERT INTO flows(flow, paused, reason) VALUES(?1, 1, ?2)"
                             " ON CONFLICT(flow) DO UPDATE SET paused = 1, reason = ?2"
                           : "INSERT INTO flows(flow, paused, reason) VALUES(?1, 0, NULL)"
                             " ON CONFLICT(flow) DO UPDATE SET paused = 0, reason = NULL",
                    flow, reason, err);
    return finish(s, rc, err);
}

static int sqlite_stats(struct es_store *base, const char *flow, int64_t now_ms,
                        struct es_flow_stats *out, struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    (void)now_ms;
    memset(out, 0, sizeof *out);
    es_strlcpy(out->flow, flow, sizeof out->flow);
    int rc = ES_OK;
    pthread_mutex_lock(&s->lock);
    /* One read transaction so the figures agree with each other. */
    (void)exec(s, "BEGIN", NULL);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT name, n FROM counts WHERE flow = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(s, err, "stats");
        goto out;
    }
    bind_text(st, 1, flow);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int64_t v = sqlite3_column_int64(st, 1);
        for (int i = 0; i < ES_CHANGE_STATE_LAST; i++) {
            if (strcmp(name, count_state[i]) == 0) {
                out->count[i] = v;
            } else if (strcmp(name, count_outcome[i]) == 0) {
                out->outcomes[i] = v;
            }
        }
        for (int i = 1; i < 3; i++) {
            if (strcmp(name, count_skip[i]) == 0) {
                out->skipped[i] = v;
            }
        }
        if (strcmp(name, "enqueued") == 0) {
            out->enqueued = v;
        } else if (strcmp(name, "duplicates") == 0) {
            out->duplicates = v;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT created FROM changes WHERE flow = ?1 AND closed = 0"
                           " ORDER BY id LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(s, err, "stats");
        goto out;
    }
    bind_text(st, 1, flow);
    if (sqlite3_step(st) == SQLITE_ROW) {
        out->oldest_open_ms = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT paused, reason, last_success FROM flows WHERE flow = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(s, err, "stats");
        goto out;
    }
    bind_text(st, 1, flow);
    if (sqlite3_step(st) == SQLITE_ROW) {
        out->paused = sqlite3_column_int(st, 0);
        const unsigned char *r = sqlite3_column_text(st, 1);
        es_strlcpy(out->pause_reason, r ? (const char *)r : "", sizeof out->pause_reason);
        out->last_success_ms = sqlite3_column_int64(st, 2);
    }
out:
    sqlite3_finalize(st);
    (void)exec(s, "COMMIT", NULL);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sqlite_list(struct es_store *base, const struct es_change_filter *f,
                       struct es_change **out, size_t *n, struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *out = NULL;
    *n = 0;
    size_t limit = f->limit ? f->limit : 100;
    int state = f->state < ES_CHANGE_STATE_LAST ? (int)f->state : -1;
    /* Parked states use their partial index; the state term repeats its WHERE. */
    const char *sql =
        state == ES_CHANGE_REVIEW || state == ES_CHANGE_DEAD
            ? "SELECT " CHANGE_COLS " FROM changes c LEFT JOIN payloads p ON p.id = c.id"
              " WHERE c.closed = 2 AND c.state = ?2 AND (?1 IS NULL OR c.flow = ?1)"
              " AND c.id > ?3 ORDER BY c.id LIMIT ?4"
            : "SELECT " CHANGE_COLS " FROM changes c LEFT JOIN payloads p ON p.id = c.id"
              " WHERE (?1 IS NULL OR c.flow = ?1) AND (?2 < 0 OR c.state = ?2)"
              " AND c.id > ?3 ORDER BY c.id LIMIT ?4";
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    int rc = ES_OK;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(s, err, "list");
    } else {
        bind_text(st, 1, f->flow);
        sqlite3_bind_int(st, 2, state);
        sqlite3_bind_int64(st, 3, f->after_id);
        sqlite3_bind_int64(st, 4, (int64_t)limit);
        struct es_change *items = NULL;
        size_t count = 0, cap = 0;
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            ES_GROW(items, cap, count + 1);
            read_change(st, &items[count++]);
        }
        if (r != SQLITE_DONE) {
            rc = db_fail(s, err, "list");
            es_changes_free(items, count);
        } else {
            *out = items;
            *n = count;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int get_locked(struct sqlite_store *s, int64_t id, struct es_change *out, struct es_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ES_OK;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " CHANGE_COLS " FROM changes c LEFT JOIN payloads p"
                           " ON p.id = c.id WHERE c.id = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        return db_fail(s, err, "get");
    }
    sqlite3_bind_int64(st, 1, id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        read_change(st, out);
    } else if (r == SQLITE_DONE) {
        rc = es_err_set(err, ES_ENOTFOUND, "no change with id %lld", (long long)id);
    } else {
        rc = db_fail(s, err, "get");
    }
    sqlite3_finalize(st);
    return rc;
}

static int sqlite_get(struct es_store *base, int64_t id, struct es_change *out, struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->lock);
    int rc = get_locked(s, id, out, err);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Moves a parked change (allowed states bitmask) to `to` with a note and an audit row. */
static int move_parked(struct sqlite_store *s, int64_t id, unsigned allowed, int to,
                       const char *note, struct es_err *err)
{
    int rc = begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    struct es_change c;
    memset(&c, 0, sizeof c);
    rc = get_locked(s, id, &c, err);
    if (rc == ES_OK && !(allowed & (1u << c.state))) {
        rc = es_err_set(err, ES_EINVAL, "change %lld is %s", (long long)id,
                        es_change_state_name(c.state));
    }
    if (rc == ES_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db,
                               "UPDATE changes SET state = ?2, closed = ?5,"
                               " attempts = CASE WHEN ?2 = 0 THEN 0"
                               " ELSE attempts END, next_at = 0, updated = ?3, note = ?4"
                               " WHERE id = ?1",
                               -1, &st, NULL) != SQLITE_OK) {
            rc = db_fail(s, err, "update");
        } else {
            int64_t now = es_clock_wall_ms();
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int(st, 2, to);
            sqlite3_bind_int64(st, 3, now);
            bind_opt(st, 4, note);
            sqlite3_bind_int(st, 5, closed_of(to));
            if (sqlite3_step(st) != SQLITE_DONE) {
                rc = db_fail(s, err, "update");
            } else {
                move_state(s, c.flow, (int)c.state, to);
                delta_add(s, c.flow, to == ES_CHANGE_PENDING ? "replayed" : "resolved", 1);
                rc =
                    audit_put(s, id, c.flow, c.key, now, to, ES_OK, c.attempts, 0,
                              note ? note : (to == ES_CHANGE_PENDING ? "replay" : "resolved"), err);
            }
        }
        sqlite3_finalize(st);
    }
    es_change_release(&c);
    return finish(s, rc, err);
}

static int sqlite_replay(struct es_store *base, int64_t id, const char *note, struct es_err *err)
{
    return move_parked((struct sqlite_store *)base, id,
                       (1u << ES_CHANGE_REVIEW) | (1u << ES_CHANGE_DEAD), ES_CHANGE_PENDING, note,
                       err);
}

static int sqlite_resolve(struct es_store *base, int64_t id, const char *note, struct es_err *err)
{
    return move_parked((struct sqlite_store *)base, id, 1u << ES_CHANGE_REVIEW, ES_CHANGE_DONE,
                       note, err);
}

/* Runs a one-row one-column lookup statement. */
static int lookup_one(struct sqlite_store *s, int which, const char *a, const char *b,
                      const char *c, const char *d, char **out, struct es_err *err)
{
    *out = NULL;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = q(s, which);
    bind_text(st, 1, a);
    bind_text(st, 2, b);
    bind_text(st, 3, c);
    if (d) {
        bind_text(st, 4, d);
    }
    int r = sqlite3_step(st);
    int rc = ES_OK;
    if (r == SQLITE_ROW) {
        *out = col_dup(st, 0);
    } else if (r == SQLITE_DONE) {
        rc = es_err_set(err, ES_ENOTFOUND, "%s %s in %s: not known", a, c, b);
    } else {
        rc = db_fail(s, err, "lookup");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sqlite_xref_lookup(struct es_store *base, const char *entity, const char *system,
                              const char *id, const char *other_system, char **out,
                              struct es_err *err)
{
    return lookup_one((struct sqlite_store *)base, Q_XREF_LOOKUP, entity, system, id, other_system,
                      out, err);
}

static int sqlite_fingerprint_get(struct es_store *base, const char *entity, const char *system,
                                  const char *id, char **out, struct es_err *err)
{
    return lookup_one((struct sqlite_store *)base, Q_FP_GET, entity, system, id, NULL, out, err);
}

static int sqlite_xref_links(struct es_store *base, const char *entity, const char *system,
                             const char *id, char **global, struct es_xref_link **links, size_t *n,
                             struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *global = NULL;
    *links = NULL;
    *n = 0;
    pthread_mutex_lock(&s->lock);
    char *g = xref_find(s, entity, system, id);
    int rc = ES_OK;
    if (!g) {
        rc = es_err_set(err, ES_ENOTFOUND, "%s %s in %s: not known", entity, id, system);
        goto out;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT system, system_id, updated FROM xref WHERE entity = ?1"
                           " AND global_id = ?2 ORDER BY system, system_id",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(s, err, "xref");
        es_free(g);
        goto out;
    }
    bind_text(st, 1, entity);
    bind_text(st, 2, g);
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

static int sqlite_audit(struct es_store *base, int64_t change_id, size_t limit,
                        struct es_audit **out, size_t *n, struct es_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    int rc = ES_OK;
    const char *sql = change_id > 0
                          ? "SELECT id, change_id, ts, duration_ms, attempt, state, code, flow,"
                            " key, msg FROM audit WHERE change_id = ?1 ORDER BY id LIMIT ?2"
                          : "SELECT id, change_id, ts, duration_ms, attempt, state, code, flow,"
                            " key, msg FROM audit ORDER BY id DESC LIMIT ?2";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(s, err, "audit");
    } else {
        sqlite3_bind_int64(st, 1, change_id);
        sqlite3_bind_int64(st, 2, limit ? (int64_t)limit : 100);
        struct es_audit *items = NULL;
        size_t count = 0, cap = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            ES_GROW(items, cap, count + 1);
            struct es_audit *a = &items[count++];
            memset(a, 0, sizeof *a);
            a->id = sqlite3_column_int64(st, 0);
            a->change_id = sqlite3_column_int64(st, 1);
            a->ts_ms = sqlite3_column_int64(st, 2);
            a->duration_ms = sqlite3_column_int64(st, 3);
            a->attempt = sqlite3_column_int(st, 4);
            a->state = (enum es_change_state)sqlite3_column_int(st, 5);
            a->code = (enum es_code)sqlite3_column_int(st, 6);
            const unsigned char *t = sqlite3_column_text(st, 7);
            es_strlcpy(a->flow, t ? (const char *)t : "", sizeof a->flow);
            t = sqlite3_column_text(st, 8);
            es_strlcpy(a->key, t ? (const char *)t : "", sizeof a->key);
            t = sqlite3_column_text(st, 9);
            es_strlcpy(a->msg, t ? (const char *)t : "", sizeof a->msg);
        }
        *out = items;
        *n = count;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

const struct es_store_ops es_store_sqlite_ops = {
    .open = sqlite_open,
    .close = sqlite_close,
    .enqueue = sqlite_enqueue,
    .lease = sqlite_lease,
    .complete = sqlite_complete,
    .renew = sqlite_renew,
    .recover = sqlite_recover,
    .cursor_get = sqlite_cursor_get,
    .cursor_set = sqlite_cursor_set,
    .flow_pause = sqlite_flow_pause,
    .stats = sqlite_stats,
    .list = sqlite_list,
    .get = sqlite_get,
    .replay = sqlite_replay,
    .resolve = sqlite_resolve,
    .xref_lookup = sqlite_xref_lookup,
    .fingerprint_get = sqlite_fingerprint_get,
    .xref_links = sqlite_xref_links,
    .audit = sqlite_audit,
};
