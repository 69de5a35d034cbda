/* SPDX-License-Identifier: MIT */
/*
 * The SQLite journal's read side and the operator's moves: status figures, list, get, audit,
 * replay and resolve (layout in sqlite_int.h).
 *
 * A change without a `states` row has no stored state: it is derived from where it sits. After
 * the flow's frontier it is pending; at or before it, leased while a live lease's bitmap holds
 * it, else done. So a view of a flow (frontier + live leases) is read once per call and every
 * row is placed with it.
 */
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "store/sqlite_int.h"

/* What a flow's rows are placed with. */
struct view {
    int64_t no, frontier;
    const char *flow; /* the cache's copy */
    struct es__sq_lease *live;
    size_t nlive;
};

static int view_load(struct es__sq_store *s, int64_t no, struct view *v, struct es_err *err)
{
    memset(v, 0, sizeof *v);
    v->no = no;
    struct es__sq_flow *f = es__sq_flow_by_no(s, no);
    v->flow = f ? f->name : "?";
    v->frontier = es__sq_frontier(s, no);
    return es__sq_leases_of(s, no, &v->live, &v->nlive, err);
}

static void view_free(struct view *v)
{
    es__sq_leases_free(v->live, v->nlive);
    v->live = NULL;
    v->nlive = 0;
}

static const struct es__sq_lease *view_lease(const struct view *v, int64_t token)
{
    for (size_t i = 0; i < v->nlive; i++) {
        if (v->live[i].token == token) {
            return &v->live[i];
        }
    }
    return NULL;
}

int es__sq_change_read(sqlite3_stmt *st, const char *flow, struct es_change *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(st, 0);
    c->flow = es_xstrdup(flow);
    c->key = es__sq_col_dup(st, 1);
    c->version = es__sq_col_dup(st, 2);
    c->deleted = sqlite3_column_int(st, 3);
    c->created_ms = sqlite3_column_int64(st, 4);
    if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
        c->payload_len = (size_t)sqlite3_column_bytes(st, 5);
        c->payload = es_xstrndup((const char *)sqlite3_column_text(st, 5), c->payload_len);
    }
    if (sqlite3_column_type(st, 6) == SQLITE_NULL) {
        c->updated_ms = c->created_ms;
        return 0;
    }
    c->state = (enum es_change_state)sqlite3_column_int(st, 6);
    c->attempts = sqlite3_column_int(st, 7);
    c->updated_ms = sqlite3_column_int64(st, 8);
    c->next_at_ms = sqlite3_column_int64(st, 9);
    c->lease = (uint64_t)sqlite3_column_int64(st, 10);
    c->last_code = (enum es_code)sqlite3_column_int(st, 11);
    c->last_msg = es__sq_col_dup(st, 12);
    c->last_remote_code = es__sq_col_dup(st, 13);
    c->last_remote_msg = es__sq_col_dup(st, 14);
    c->last_hint = es__sq_col_dup(st, 15);
    c->note = es__sq_col_dup(st, 16);
    return 1;
}

/* Reads one ES__SQ_CHANGE_COLS row and places it with the flow's view. */
static void read_change(sqlite3_stmt *st, const struct view *v, struct es_change *c)
{
    if (es__sq_change_read(st, v->flow, c)) {
        const struct es__sq_lease *l =
            c->state == ES_CHANGE_LEASED ? view_lease(v, (int64_t)c->lease) : NULL;
        c->lease_until_ms = l ? l->until : 0;
        return;
    }
    if (c->id > v->frontier) {
        c->state = ES_CHANGE_PENDING;
        return;
    }
    c->attempts = 1;
    c->state = ES_CHANGE_DONE;
    for (size_t i = 0; i < v->nlive; i++) {
        if (es__sq_lease_holds(&v->live[i], c->id)) {
            c->state = ES_CHANGE_LEASED;
            c->lease = (uint64_t)v->live[i].token;
            c->lease_until_ms = v->live[i].until;
        }
    }
}

/* The lowest id of the flow that may be open (pending, leased or retry). */
static int64_t open_floor(struct es__sq_store *s, const struct view *v)
{
    int64_t low = v->frontier + 1;
    for (size_t i = 0; i < v->nlive; i++) {
        if (v->live[i].held > 0 && v->live[i].lo < low) {
            low = v->live[i].lo;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id FROM states WHERE flow = ?1 AND closed = 0 ORDER BY id"
                           " LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, v->no);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) < low) {
            low = sqlite3_column_int64(st, 0);
        }
    }
    sqlite3_finalize(st);
    return low;
}

int es__sq_stats(struct es_store *base, const char *flow, int64_t now_ms, struct es_flow_stats *out,
                 struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    (void)now_ms;
    memset(out, 0, sizeof *out);
    es_strlcpy(out->flow, flow, sizeof out->flow);
    int rc = ES_OK;
    pthread_mutex_lock(&s->lock);
    /* One read transaction so the figures agree with each other. */
    (void)es__sq_exec(s, "BEGIN", NULL);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT name, n FROM counts WHERE flow = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = es__sq_fail(s, err, "stats");
        goto out;
    }
    es__sq_bind_text(st, 1, flow);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int64_t v = sqlite3_column_int64(st, 1);
        for (int i = 0; i < ES_CHANGE_STATE_LAST; i++) {
            if (strcmp(name, es__sq_count_state[i]) == 0) {
                out->count[i] = v;
            } else if (strcmp(name, es__sq_count_outcome[i]) == 0) {
                out->outcomes[i] = v;
            }
        }
        for (int i = 1; i < 3; i++) {
            if (strcmp(name, es__sq_count_skip[i]) == 0) {
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
    int64_t no = es__sq_flow_no(s, flow, 0, err);
    if (no < 0) {
        rc = ES_ESTORE;
        goto out;
    }
    if (no > 0) {
        struct view v;
        rc = view_load(s, no, &v, err);
        int64_t low = rc == ES_OK ? open_floor(s, &v) : 0;
        view_free(&v);
        if (rc != ES_OK) {
            goto out;
        }
        if (sqlite3_prepare_v2(s->db,
                               "SELECT created FROM changes WHERE id >= ?1 AND id <= ?2"
                               " ORDER BY id LIMIT 1",
                               -1, &st, NULL) != SQLITE_OK) {
            rc = es__sq_fail(s, err, "stats");
            goto out;
        }
        sqlite3_bind_int64(st, 1, low);
        sqlite3_bind_int64(st, 2, ES__SQ_LAST(no));
        if (sqlite3_step(st) == SQLITE_ROW) {
            out->oldest_open_ms = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (sqlite3_prepare_v2(s->db, "SELECT paused, reason, last_success FROM flows WHERE flow = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = es__sq_fail(s, err, "stats");
        goto out;
    }
    es__sq_bind_text(st, 1, flow);
    if (sqlite3_step(st) == SQLITE_ROW) {
        out->paused = sqlite3_column_int(st, 0);
        const unsigned char *r = sqlite3_column_text(st, 1);
        es_strlcpy(out->pause_reason, r ? (const char *)r : "", sizeof out->pause_reason);
        out->last_success_ms = sqlite3_column_int64(st, 2);
    }
out:
    sqlite3_finalize(st);
    (void)es__sq_exec(s, "COMMIT", NULL);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* The newest audit message of a change (a DONE with a note keeps it there only). */
static char *audit_note(struct es__sq_store *s, int64_t id)
{
    sqlite3_stmt *st = NULL;
    char *note = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT msg FROM audit WHERE change_id = ?1 AND msg IS NOT NULL"
                           " ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            note = es__sq_col_dup(st, 0);
        }
    }
    sqlite3_finalize(st);
    return note;
}

/* Appends up to limit rows of one flow, ids > after, in the wanted state (-1: any), scanning
 * the change table in id order from `from`. */
static int list_scan(struct es__sq_store *s, const struct view *v, int state, int64_t from,
                     size_t limit, struct es_change **items, size_t *count, size_t *cap,
                     struct es_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " ES__SQ_CHANGE_COLS " FROM changes c LEFT JOIN states s"
                           " ON s.id = c.id WHERE c.id > ?1 AND c.id <= ?2 ORDER BY c.id",
                           -1, &st, NULL) != SQLITE_OK) {
        return es__sq_fail(s, err, "list");
    }
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, ES__SQ_LAST(v->no));
    int r;
    struct es_change c;
    while (*count < limit && (r = sqlite3_step(st)) == SQLITE_ROW) {
        int derived = sqlite3_column_type(st, 6) == SQLITE_NULL;
        read_change(st, v, &c);
        if (state >= 0 && (int)c.state != state) {
            es_change_release(&c);
            continue;
        }
        if (derived && c.state == ES_CHANGE_DONE) {
            c.note = audit_note(s, c.id);
        }
        ES_GROW(*items, *cap, *count + 1);
        (*items)[(*count)++] = c;
    }
    int rc = (*count < limit && r != SQLITE_DONE) ? es__sq_fail(s, err, "list") : ES_OK;
    sqlite3_finalize(st);
    return rc;
}

/* Parked and retried changes always have a `states` row: list them through it. */
static int list_states(struct es__sq_store *s, int64_t no, int state, int64_t after, size_t limit,
                       struct es_change **items, size_t *count, size_t *cap, struct es_err *err)
{
    sqlite3_stmt *st = NULL;
    /* One text per case, so that each can use its index: open rows by (flow, id) for retry
     * with a flow, parked rows by id. */
    const char *sql =
        state != ES_CHANGE_RETRY
            ? "SELECT " ES__SQ_CHANGE_COLS " FROM states s JOIN changes c ON c.id = s.id"
              " WHERE s.closed = 2 AND s.state = ?2 AND (?1 = 0 OR s.flow = ?1)"
              " AND s.id > ?3 ORDER BY s.id LIMIT ?4"
        : no > 0 ? "SELECT " ES__SQ_CHANGE_COLS " FROM states s JOIN changes c ON c.id = s.id"
                   " WHERE s.flow = ?1 AND s.closed = 0 AND s.state = ?2 AND s.id > ?3"
                   " ORDER BY s.id LIMIT ?4"
                 : "SELECT " ES__SQ_CHANGE_COLS " FROM states s JOIN changes c ON c.id = s.id"
                   " WHERE ?1 = 0 AND s.closed = 0 AND s.state = ?2 AND s.id > ?3"
                   " ORDER BY s.id LIMIT ?4";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return es__sq_fail(s, err, "list");
    }
    sqlite3_bind_int64(st, 1, no);
    sqlite3_bind_int(st, 2, state);
    sqlite3_bind_int64(st, 3, after);
    sqlite3_bind_int64(st, 4, (int64_t)limit);
    int r, rc = ES_OK;
    struct view v = {0};
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (v.no != ES__SQ_FLOW_OF(id)) {
            view_free(&v);
            if ((rc = view_load(s, ES__SQ_FLOW_OF(id), &v, err)) != ES_OK) {
                break;
            }
        }
        ES_GROW(*items, *cap, *count + 1);
        read_change(st, &v, &(*items)[(*count)++]);
    }
    view_free(&v);
    if (rc == ES_OK && r != SQLITE_DONE) {
        rc = es__sq_fail(s, err, "list");
    }
    sqlite3_finalize(st);
    return rc;
}

int es__sq_list(struct es_store *base, const struct es_change_filter *f, struct es_change **out,
                size_t *n, struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    *out = NULL;
    *n = 0;
    size_t limit = f->limit ? f->limit : 100;
    int state = f->state < ES_CHANGE_STATE_LAST ? (int)f->state : -1;
    struct es_change *items = NULL;
    size_t count = 0, cap = 0;
    int rc = ES_OK;
    pthread_mutex_lock(&s->lock);
    (void)es__sq_exec(s, "BEGIN", NULL);
    int64_t only = f->flow ? es__sq_flow_no(s, f->flow, 0, err) : 0;
    if (only < 0) {
        rc = ES_ESTORE;
    } else if (f->flow && only == 0) {
        /* a flow that never had a change */
    } else if (state == ES_CHANGE_REVIEW || state == ES_CHANGE_DEAD || state == ES_CHANGE_RETRY) {
        rc = list_states(s, only, state, f->after_id, limit, &items, &count, &cap, err);
    } else {
        /* Flows in number order are ids in order. */
        int64_t *nos = NULL;
        size_t nnos = 0, capn = 0;
        sqlite3_stmt *st = NULL;
        if (only > 0) {
            ES_GROW(nos, capn, 1);
            nos[nnos++] = only;
        } else if (sqlite3_prepare_v2(s->db,
                                      "SELECT no FROM flows WHERE no IS NOT NULL ORDER BY no", -1,
                                      &st, NULL) == SQLITE_OK) {
            while (sqlite3_step(st) == SQLITE_ROW) {
                ES_GROW(nos, capn, nnos + 1);
                nos[nnos++] = sqlite3_column_int64(st, 0);
            }
        }
        sqlite3_finalize(st);
        for (size_t i = 0; i < nnos && rc == ES_OK && count < limit; i++) {
            if (f->after_id >= ES__SQ_LAST(nos[i])) {
                continue;
            }
            struct view v;
            rc = view_load(s, nos[i], &v, err);
            int64_t from = ES__SQ_FIRST(nos[i]);
            if (rc == ES_OK && (state == ES_CHANGE_PENDING || state == ES_CHANGE_LEASED)) {
                from = open_floor(s, &v) - 1; /* nothing before it is open */
            }
            from = f->after_id > from ? f->after_id : from;
            if (rc == ES_OK) {
                rc = list_scan(s, &v, state, from, limit, &items, &count, &cap, err);
            }
            view_free(&v);
        }
        es_free(nos);
    }
    (void)es__sq_exec(s, "COMMIT", NULL);
    pthread_mutex_unlock(&s->lock);
    if (rc != ES_OK) {
        es_changes_free(items, count);
        return rc;
    }
    *out = items;
    *n = count;
    return ES_OK;
}

static int get_locked(struct es__sq_store *s, int64_t id, struct es_change *out, struct es_err *err)
{
    memset(out, 0, sizeof *out);
    if (id <= 0 || !es__sq_flow_by_no(s, ES__SQ_FLOW_OF(id))) {
        return es_err_set(err, ES_ENOTFOUND, "no change with id %lld", (long long)id);
    }
    struct view v;
    int rc = view_load(s, ES__SQ_FLOW_OF(id), &v, err);
    sqlite3_stmt *st = NULL;
    if (rc == ES_OK && sqlite3_prepare_v2(s->db,
                                          "SELECT " ES__SQ_CHANGE_COLS " FROM changes c LEFT JOIN"
                                          " states s ON s.id = c.id WHERE c.id = ?1",
                                          -1, &st, NULL) != SQLITE_OK) {
        rc = es__sq_fail(s, err, "get");
    }
    if (rc == ES_OK) {
        sqlite3_bind_int64(st, 1, id);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            int derived = sqlite3_column_type(st, 6) == SQLITE_NULL;
            read_change(st, &v, out);
            if (derived && out->state == ES_CHANGE_DONE) {
                out->note = audit_note(s, id);
            }
        } else if (r == SQLITE_DONE) {
            rc = es_err_set(err, ES_ENOTFOUND, "no change with id %lld", (long long)id);
        } else {
            rc = es__sq_fail(s, err, "get");
        }
    }
    sqlite3_finalize(st);
    view_free(&v);
    return rc;
}

int es__sq_get(struct es_store *base, int64_t id, struct es_change *out, struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    pthread_mutex_lock(&s->lock);
    (void)es__sq_exec(s, "BEGIN", NULL);
    int rc = get_locked(s, id, out, err);
    (void)es__sq_exec(s, "COMMIT", NULL);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Moves a parked change (allowed states bitmask) to `to` with a note and an audit row. Parked
 * changes always have a `states` row. */
static int move_parked(struct es__sq_store *s, int64_t id, unsigned allowed, int to,
                       const char *note, struct es_err *err)
{
    int rc = es__sq_begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    struct es_change c;
    rc = get_locked(s, id, &c, err);
    if (rc == ES_OK && !(allowed & (1u << c.state))) {
        rc = es_err_set(err, ES_EINVAL, "change %lld is %s", (long long)id,
                        es_change_state_name(c.state));
    }
    if (rc == ES_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db,
                               "UPDATE states SET state = ?2, closed = ?5,"
                               " attempts = CASE WHEN ?2 = 0 THEN 0"
                               " ELSE attempts END, next_at = 0, updated = ?3, note = ?4"
                               " WHERE id = ?1",
                               -1, &st, NULL) != SQLITE_OK) {
            rc = es__sq_fail(s, err, "update");
        } else {
            int64_t now = es_clock_wall_ms();
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int(st, 2, to);
            sqlite3_bind_int64(st, 3, now);
            es__sq_bind_opt(st, 4, note);
            sqlite3_bind_int(st, 5, es__sq_closed_of(to));
            if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(s->db) != 1) {
                rc = es__sq_fail(s, err, "update");
            } else {
                es__sq_move_state(s, c.flow, (int)c.state, to);
                es__sq_delta_add(s, c.flow, to == ES_CHANGE_PENDING ? "replayed" : "resolved", 1);
                rc = es__sq_audit_put(
                    s, id, 1, c.flow, c.key, now, to, ES_OK, c.attempts, 0,
                    note ? note : (to == ES_CHANGE_PENDING ? "replay" : "resolved"), err);
            }
        }
        sqlite3_finalize(st);
    }
    es_change_release(&c);
    return es__sq_finish(s, rc, err);
}

int es__sq_replay(struct es_store *base, int64_t id, const char *note, struct es_err *err)
{
    return move_parked((struct es__sq_store *)base, id,
                       (1u << ES_CHANGE_REVIEW) | (1u << ES_CHANGE_DEAD), ES_CHANGE_PENDING, note,
                       err);
}

int es__sq_resolve(struct es_store *base, int64_t id, const char *note, struct es_err *err)
{
    return move_parked((struct es__sq_store *)base, id, 1u << ES_CHANGE_REVIEW, ES_CHANGE_DONE,
                       note, err);
}

int es__sq_audit(struct es_store *base, int64_t change_id, size_t limit, struct es_audit **out,
                 size_t *n, struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    int rc = ES_OK;
    /* A run row covers change_id .. change_id + n - 1 (n <= ES__SQ_RUN_MAX). */
    const char *sql = change_id > 0
                          ? "SELECT id, change_id, ts, duration_ms, attempt, state, code, flow,"
                            " key, msg, n FROM audit WHERE change_id BETWEEN ?1 - ?3 AND ?1"
                            " AND change_id + n > ?1 ORDER BY id LIMIT ?2"
                          : "SELECT id, change_id, ts, duration_ms, attempt, state, code, flow,"
                            " key, msg, n FROM audit ORDER BY id DESC LIMIT ?2";
    char *key = NULL; /* of change_id, read for run rows */
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = es__sq_fail(s, err, "audit");
    } else {
        sqlite3_bind_int64(st, 1, change_id);
        sqlite3_bind_int64(st, 2, limit ? (int64_t)limit : 100);
        sqlite3_bind_int64(st, 3, ES__SQ_RUN_MAX - 1);
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
            a->count = sqlite3_column_int64(st, 10);
            if (change_id > 0 && a->count > 1) {
                /* This change's share of a run. */
                if (!key) {
                    sqlite3_stmt *k = es__sq_q(s, Q_KEY_OF);
                    sqlite3_bind_int64(k, 1, change_id);
                    key = sqlite3_step(k) == SQLITE_ROW ? es__sq_col_dup(k, 0) : es_xstrdup("");
                    sqlite3_reset(k);
                }
                a->change_id = change_id;
                a->count = 1;
                es_strlcpy(a->key, key, sizeof a->key);
            }
            if (a->count < 1) {
                a->count = 1;
            }
        }
        *out = items;
        *n = count;
    }
    es_free(key);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}
