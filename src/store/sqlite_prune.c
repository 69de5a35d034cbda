/* SPDX-License-Identifier: MIT */
/*
 * Retention for the SQLite journal: removes DONE changes and audit rows older than a time, so
 * the file stops growing with the history (config `retention`, `erpsync prune`).
 *
 * Ids grow with the time they were written (per flow for changes, globally for audit rows),
 * so the cut is found by bisection over the id range (a few point reads), and the rows before
 * it are deleted in id ranges of PRUNE_CHUNK, one transaction each: the workers keep leasing
 * in between. Only done changes go: a change with an open or parked `states` row stays, and
 * so does everything a live lease may still hold (ids from its first one on) and everything
 * after the frontier.
 */
#include <string.h>

#include "core/mem.h"
#include "store/sqlite_int.h"

#define PRUNE_CHUNK 20000

/* The first id in [lo, hi] written at or after `before` (hi + 1 when none), given
 * probe = "SELECT id, time FROM T WHERE id >= ?1 ORDER BY id LIMIT 1". Every existing id
 * before the result was written before `before`. */
static int64_t time_cut(sqlite3_stmt *probe, int64_t lo, int64_t hi, int64_t before)
{
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        sqlite3_reset(probe);
        sqlite3_bind_int64(probe, 1, mid);
        if (sqlite3_step(probe) != SQLITE_ROW || sqlite3_column_int64(probe, 0) > hi) {
            hi = mid - 1; /* nothing in [mid, hi] */
        } else if (sqlite3_column_int64(probe, 1) < before) {
            lo = sqlite3_column_int64(probe, 0) + 1;
        } else {
            hi = mid - 1;
        }
    }
    sqlite3_reset(probe);
    return lo;
}

/* Runs a statement with (lo, hi[, before]) and returns the rows it changed. */
static int run_range(struct es__sq_store *s, const char *sql, int64_t lo, int64_t hi,
                     int64_t before, int64_t *changed, struct es_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return es__sq_fail(s, err, "prune");
    }
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    if (sqlite3_bind_parameter_count(st) >= 3) {
        sqlite3_bind_int64(st, 3, before);
    }
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        return es__sq_fail(s, err, "prune");
    }
    *changed = sqlite3_changes(s->db);
    return ES_OK;
}

/* [*from, *to): the ids of one flow that may be pruned (done, written before `before`). */
static int flow_span(struct es__sq_store *s, int64_t no, int64_t before, int64_t *from, int64_t *to,
                     struct es_err *err)
{
    *from = *to = 0;
    int64_t bound = es__sq_frontier(s, no);
    struct es__sq_lease *live = NULL;
    size_t nlive = 0;
    int rc = es__sq_leases_of(s, no, &live, &nlive, err);
    for (size_t i = 0; rc == ES_OK && i < nlive; i++) {
        if (live[i].held > 0 && live[i].lo - 1 < bound) {
            bound = live[i].lo - 1;
        }
    }
    es__sq_leases_free(live, nlive);
    sqlite3_stmt *st = NULL;
    if (rc == ES_OK && sqlite3_prepare_v2(s->db,
                                          "SELECT id, created FROM changes WHERE id >= ?1"
                                          " ORDER BY id LIMIT 1",
                                          -1, &st, NULL) != SQLITE_OK) {
        rc = es__sq_fail(s, err, "prune");
    }
    if (rc == ES_OK) {
        sqlite3_bind_int64(st, 1, ES__SQ_FIRST(no));
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) <= bound) {
            *from = sqlite3_column_int64(st, 0);
            *to = time_cut(st, *from, bound, before);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int prune_changes(struct es__sq_store *s, int64_t no, int64_t before, size_t *removed,
                         struct es_err *err)
{
    pthread_mutex_lock(&s->lock);
    (void)es__sq_exec(s, "BEGIN", NULL);
    int64_t from = 0, to = 0;
    int rc = flow_span(s, no, before, &from, &to, err);
    struct es__sq_flow *f = es__sq_flow_by_no(s, no);
    char *flow = es_xstrdup(f ? f->name : "?");
    (void)es__sq_exec(s, "COMMIT", NULL);
    pthread_mutex_unlock(&s->lock);
    /* Nothing in [from, to) can become open again: later leases take ids after the frontier,
     * and parked changes (the only ones a replay reopens) keep their `states` row and stay. */
    for (int64_t lo = from; rc == ES_OK && lo < to; lo += PRUNE_CHUNK) {
        int64_t hi = lo + PRUNE_CHUNK - 1 < to - 1 ? lo + PRUNE_CHUNK - 1 : to - 1;
        int64_t k = 0, gone = 0;
        if ((rc = es__sq_begin(s, err)) != ES_OK) {
            break;
        }
        rc = run_range(s,
                       "DELETE FROM changes WHERE id BETWEEN ?1 AND ?2 AND created < ?3"
                       " AND id NOT IN (SELECT id FROM states WHERE id BETWEEN ?1 AND ?2"
                       " AND closed <> 1)",
                       lo, hi, before, &k, err);
        if (rc == ES_OK) {
            rc = run_range(s,
                           "DELETE FROM states WHERE id BETWEEN ?1 AND ?2 AND closed = 1"
                           " AND id NOT IN (SELECT id FROM changes WHERE id BETWEEN ?1 AND ?2)",
                           lo, hi, before, &gone, err);
        }
        if (rc == ES_OK && k > 0) {
            es__sq_delta_add(s, flow, es__sq_count_state[ES_CHANGE_DONE], -k);
            es__sq_delta_add(s, flow, "pruned", k);
            *removed += (size_t)k;
        }
        rc = es__sq_finish(s, rc, err);
    }
    es_free(flow);
    return rc;
}

static int prune_audit(struct es__sq_store *s, int64_t before, size_t *removed, struct es_err *err)
{
    pthread_mutex_lock(&s->lock);
    int64_t from = 0, to = 0, last = 0;
    sqlite3_stmt *st = NULL;
    int rc = ES_OK;
    if (sqlite3_prepare_v2(s->db, "SELECT max(id) FROM audit", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        last = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT id, ts FROM audit WHERE id >= ?1 ORDER BY id LIMIT 1", -1,
                           &st, NULL) != SQLITE_OK) {
        rc = es__sq_fail(s, err, "prune");
    } else {
        sqlite3_bind_int64(st, 1, 0);
        if (sqlite3_step(st) == SQLITE_ROW) {
            from = sqlite3_column_int64(st, 0);
            to = time_cut(st, from, last, before);
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    for (int64_t lo = from; rc == ES_OK && lo < to; lo += PRUNE_CHUNK) {
        int64_t hi = lo + PRUNE_CHUNK - 1 < to - 1 ? lo + PRUNE_CHUNK - 1 : to - 1;
        int64_t k = 0;
        if ((rc = es__sq_begin(s, err)) != ES_OK) {
            break;
        }
        rc = run_range(s, "DELETE FROM audit WHERE id BETWEEN ?1 AND ?2 AND ts < ?3", lo, hi,
                       before, &k, err);
        *removed += (size_t)k;
        rc = es__sq_finish(s, rc, err);
    }
    return rc;
}

int es__sq_prune(struct es_store *base, int64_t before_ms, size_t *changes, size_t *audits,
                 struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    *changes = *audits = 0;
    int64_t *nos = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    int rc = ES_OK;
    if (sqlite3_prepare_v2(s->db, "SELECT no FROM flows WHERE no IS NOT NULL ORDER BY no", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = es__sq_fail(s, err, "prune");
    }
    while (rc == ES_OK && sqlite3_step(st) == SQLITE_ROW) {
        ES_GROW(nos, cap, n + 1);
        nos[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n && rc == ES_OK; i++) {
        rc = prune_changes(s, nos[i], before_ms, changes, err);
    }
    es_free(nos);
    if (rc == ES_OK) {
        rc = prune_audit(s, before_ms, audits, err);
    }
    return rc;
}
