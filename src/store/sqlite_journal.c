/* SPDX-License-Identifier: MIT */
/*
 * The SQLite journal's write path: enqueue, lease, complete, renew, recover (layout in
 * sqlite_int.h).
 *
 * Why it looks like this: a clean change costs one row insert at enqueue (the row and its
 * UNIQUE(flow, key, version) entry) and nothing per change after that. A lease reads the next
 * changes of the flow's id range in order and writes one `leases` row with a bitmap; a
 * complete clears bits, writes one audit row for a run of DONE outcomes and deletes the
 * `leases` row. Only a change that leaves that path (a retry, a park, a change deferred
 * behind an older one of its key, a lease that ran out) gets a `states` row of its own.
 *
 * Ordering per record key: a change is not leased while an older change of its key is open,
 * i.e. has an open `states` row, or is held by a live lease, or sits earlier in the same
 * batch. A fresh change found blocked is deferred: it gets a pending `states` row and is
 * leased from there once the older one is closed.
 */
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "store/sqlite_int.h"

int es__sq_set_cursor(struct es__sq_store *s, const struct es_cursor_in *c, struct es_err *err)
{
    sqlite3_stmt *st = es__sq_q(s, c->value ? Q_CURSOR_SET : Q_CURSOR_DEL);
    es__sq_bind_text(st, 1, c->flow);
    es__sq_bind_text(st, 2, c->name);
    if (c->value) {
        es__sq_bind_text(st, 3, c->value);
        sqlite3_bind_int64(st, 4, es_clock_wall_ms());
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        return es__sq_fail(s, err, "cursor");
    }
    return ES_OK;
}

/* The id for the flow's next change (read once per transaction, then counted). */
static int64_t next_id(struct es__sq_store *s, int64_t no)
{
    struct es__sq_flow *f = es__sq_flow_by_no(s, no);
    if (f && f->next_id > 0) {
        return f->next_id;
    }
    sqlite3_stmt *st = es__sq_q(s, Q_TOP_ID);
    sqlite3_bind_int64(st, 1, ES__SQ_LAST(no));
    int64_t top = ES__SQ_FIRST(no);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > top) {
        top = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    int64_t frontier = es__sq_frontier(s, no);
    int64_t next = (top > frontier ? top : frontier) + 1;
    if (f) {
        f->next_id = next;
    }
    return next;
}

int es__sq_enqueue(struct es_store *base, const struct es_change_in *in, size_t n,
                   const struct es_cursor_in *cursors, size_t ncursors, unsigned char *added,
                   struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    int64_t now = es_clock_wall_ms();
    int rc = es__sq_begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    const char *last_flow = NULL;
    int64_t no = 0;
    for (size_t i = 0; i < n && rc == ES_OK; i++) {
        if (!in[i].flow || !in[i].key || !in[i].version) {
            rc = es_err_set(err, ES_EINVAL, "change %zu: flow, key and version are required", i);
            break;
        }
        if (!last_flow || strcmp(last_flow, in[i].flow) != 0) {
            no = es__sq_flow_no(s, in[i].flow, 1, err);
            if (no <= 0) {
                rc = no < 0 ? ES_ESTORE : es_err_set(err, ES_ESTORE, "flow number");
                break;
            }
            last_flow = in[i].flow;
        }
        int64_t id = next_id(s, no);
        if (id > ES__SQ_LAST(no)) {
            rc = es_err_set(err, ES_ESTORE, "flow %s: change ids exhausted", in[i].flow);
            break;
        }
        sqlite3_stmt *st = es__sq_q(s, Q_INSERT);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, no);
        es__sq_bind_text(st, 3, in[i].key);
        es__sq_bind_text(st, 4, in[i].version);
        sqlite3_bind_int(st, 5, in[i].deleted ? 1 : 0);
        sqlite3_bind_int64(st, 6, now);
        if (in[i].payload) {
            sqlite3_bind_text(st, 7, in[i].payload, (int)in[i].payload_len, SQLITE_STATIC);
        }
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = es__sq_fail(s, err, "enqueue");
            break;
        }
        int fresh = sqlite3_changes(s->db) == 1;
        if (added) {
            added[i] = (unsigned char)fresh;
        }
        if (!fresh) {
            es__sq_delta_add(s, in[i].flow, "duplicates", 1);
            continue;
        }
        es__sq_flow_by_no(s, no)->next_id = id + 1;
        es__sq_delta_add(s, in[i].flow, "enqueued", 1);
        es__sq_move_state(s, in[i].flow, -1, ES_CHANGE_PENDING);
    }
    for (size_t i = 0; i < ncursors && rc == ES_OK; i++) {
        rc = es__sq_set_cursor(s, &cursors[i], err);
    }
    return es__sq_finish(s, rc, err);
}

/* Returns what every lease that ended before `now` still holds to PENDING and drops the
 * leases' rows (INT64_MAX: every lease, as recovery at startup does). Counts the changes
 * moved in *moved (may be NULL). */
static int expire(struct es__sq_store *s, int64_t now, size_t *moved, struct es_err *err)
{
    struct es__sq_lease *ex = NULL;
    size_t nex = 0, cap = 0;
    sqlite3_stmt *st = es__sq_q(s, Q_EXPIRED);
    sqlite3_bind_int64(st, 1, now);
    int r, rc = ES_OK;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        ES_GROW(ex, cap, nex + 1);
        es__sq_lease_read(st, &ex[nex++]);
    }
    if (r != SQLITE_DONE) {
        rc = es__sq_fail(s, err, "lease expiry");
    }
    sqlite3_reset(st);
    int64_t wall = now == INT64_MAX ? es_clock_wall_ms() : now;
    for (size_t i = 0; i < nex && rc == ES_OK; i++) {
        struct es__sq_lease *l = &ex[i];
        struct es__sq_flow *f = es__sq_flow_by_no(s, l->flow);
        const char *flow = f ? f->name : "?";
        int64_t k = 0;
        if (l->xheld > 0) {
            st = es__sq_q(s, Q_EXPIRE_STATES);
            sqlite3_bind_int64(st, 1, l->token);
            sqlite3_bind_int64(st, 2, wall);
            if (sqlite3_step(st) != SQLITE_DONE) {
                rc = es__sq_fail(s, err, "lease expiry");
                break;
            }
            k += sqlite3_changes(s->db);
        }
        for (int64_t id = l->lo; l->held > 0 && id <= l->hi && rc == ES_OK; id++) {
            if (!es__sq_lease_holds(l, id)) {
                continue;
            }
            st = es__sq_q(s, Q_EXPIRE_FRESH);
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int64(st, 2, wall);
            if (sqlite3_step(st) != SQLITE_DONE) {
                rc = es__sq_fail(s, err, "lease expiry");
            }
            k++;
        }
        es__sq_delta_add(s, flow, es__sq_count_state[ES_CHANGE_LEASED], -k);
        es__sq_delta_add(s, flow, es__sq_count_state[ES_CHANGE_PENDING], k);
        if (moved) {
            *moved += (size_t)k;
        }
        st = es__sq_q(s, Q_LEASE_DEL);
        sqlite3_bind_int64(st, 1, l->token);
        if (rc == ES_OK && sqlite3_step(st) != SQLITE_DONE) {
            rc = es__sq_fail(s, err, "lease expiry");
        }
    }
    es__sq_leases_free(ex, nex);
    return rc;
}

/* A set of key strings (borrowed), open addressing; for the keys taken into one batch. */
struct keyset {
    const char **slot;
    size_t mask;
};

static uint64_t key_hash(const char *k)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *k; k++) {
        h = (h ^ (unsigned char)*k) * 1099511628211ull;
    }
    return h;
}

/* The slot of k: where it is, or the empty slot where it would go. */
static const char **keyset_slot(struct keyset *ks, const char *k)
{
    for (size_t i = key_hash(k) & ks->mask;; i = (i + 1) & ks->mask) {
        if (!ks->slot[i] || strcmp(ks->slot[i], k) == 0) {
            return &ks->slot[i];
        }
    }
}

/* State of one lease call. */
struct taking {
    struct es__sq_store *s;
    const char *flow;
    int64_t no, now;
    struct es__sq_lease *live; /* the flow's other live leases */
    size_t nlive;
    int64_t live_lo, live_hi; /* the id span they cover */
    int open_states;          /* the flow has open `states` rows */
};

/* True when an older change of key (id < below) is held by another live lease. */
static int held_elsewhere(struct taking *t, const char *key, int64_t below, struct es_err *err,
                          int *rc)
{
    if (t->nlive == 0 || t->live_lo >= below) {
        return 0;
    }
    sqlite3_stmt *st = es__sq_q(t->s, Q_KEY_IDS);
    sqlite3_bind_int64(st, 1, t->no);
    es__sq_bind_text(st, 2, key);
    sqlite3_bind_int64(st, 3, t->live_lo);
    sqlite3_bind_int64(st, 4, below - 1 < t->live_hi ? below - 1 : t->live_hi);
    int r, held = 0;
    while (!held && (r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        for (size_t i = 0; i < t->nlive && !held; i++) {
            held = es__sq_lease_holds(&t->live[i], id);
        }
    }
    if (!held && r != SQLITE_DONE) {
        *rc = es__sq_fail(t->s, err, "lease key order");
    }
    sqlite3_reset(st);
    return held;
}

/* True when key has an open `states` row (every such row is older than a fresh change). */
static int open_state_of(struct taking *t, const char *key, struct es_err *err, int *rc)
{
    if (!t->open_states) {
        return 0;
    }
    sqlite3_stmt *st = es__sq_q(t->s, Q_STATE_OPEN_KEY);
    sqlite3_bind_int64(st, 1, t->no);
    es__sq_bind_text(st, 2, key);
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        *rc = es__sq_fail(t->s, err, "lease key order");
    }
    sqlite3_reset(st);
    return r == SQLITE_ROW;
}

static char *payload_dup(sqlite3_stmt *st, int i, size_t *len)
{
    *len = 0;
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        return NULL;
    }
    *len = (size_t)sqlite3_column_bytes(st, i);
    return es_xstrndup((const char *)sqlite3_column_text(st, i), *len);
}

/* Leases due off-path changes (retries, deferred, given back, replayed) into items. */
static int take_states(struct taking *t, size_t max, struct es_change *items, size_t *count,
                       struct es_err *err)
{
    int rc = ES_OK;
    sqlite3_stmt *st = es__sq_q(t->s, Q_STATE_CANDIDATES);
    sqlite3_bind_int64(st, 1, t->no);
    sqlite3_bind_int64(st, 2, t->now);
    sqlite3_bind_int64(st, 3, (int64_t)max);
    size_t first = *count;
    int r;
    while (*count < max && (r = sqlite3_step(st)) == SQLITE_ROW) {
        (void)es__sq_change_read(st, t->flow, &items[*count]);
        (*count)++;
    }
    if (*count < max && r != SQLITE_DONE) {
        rc = es__sq_fail(t->s, err, "lease");
    }
    sqlite3_reset(st);
    /* Drop the ones whose older change of the key another worker still holds. */
    size_t kept = first;
    for (size_t i = first; i < *count; i++) {
        if (rc == ES_OK && !held_elsewhere(t, items[i].key, items[i].id, err, &rc)) {
            items[kept++] = items[i];
        } else {
            es_change_release(&items[i]);
        }
    }
    *count = kept;
    return rc;
}

/* Marks the off-path changes taken (items[0..n)) as held by token. */
static int hold_states(struct taking *t, uint64_t token, struct es_change *items, size_t n,
                       struct es_err *err)
{
    for (size_t i = 0; i < n; i++) {
        struct es_change *c = &items[i];
        sqlite3_stmt *st = es__sq_q(t->s, Q_STATE_TAKE);
        sqlite3_bind_int64(st, 1, c->id);
        sqlite3_bind_int64(st, 2, (int64_t)token);
        sqlite3_bind_int64(st, 3, t->now);
        if (sqlite3_step(st) != SQLITE_DONE) {
            return es__sq_fail(t->s, err, "lease update");
        }
        es__sq_move_state(t->s, t->flow, (int)c->state, ES_CHANGE_LEASED);
        c->state = ES_CHANGE_LEASED;
        c->attempts++;
    }
    return ES_OK;
}

/* Leases fresh changes (after the frontier) into items; defers the blocked ones. Sets
 * the lease row l (lo, hi, bits, held) to the held ids and advances the frontier past what it read.
 */
static int take_fresh(struct taking *t, size_t max, struct es_change *items, size_t *count,
                      struct es__sq_lease *l, struct es_err *err)
{
    int rc = ES_OK;
    size_t first = *count;
    int64_t frontier = es__sq_frontier(t->s, t->no), scanned = frontier;
    size_t want = max - *count;
    /* A batch of one key's versions would defer all but one: read at most 4x the room. */
    size_t budget = want * 4 + 16;
    size_t cap = 1;
    while (cap < (want + 1) * 2) {
        cap <<= 1;
    }
    struct keyset ks = {es_xcalloc(cap, sizeof(const char *)), cap - 1};
    while (rc == ES_OK && *count < max && budget > 0) {
        sqlite3_stmt *st = es__sq_q(t->s, Q_FRESH);
        sqlite3_bind_int64(st, 1, scanned);
        sqlite3_bind_int64(st, 2, ES__SQ_LAST(t->no));
        sqlite3_bind_int64(st, 3, (int64_t)budget);
        size_t rows = 0;
        int r;
        while (*count < max && (r = sqlite3_step(st)) == SQLITE_ROW) {
            rows++;
            budget--;
            int64_t id = sqlite3_column_int64(st, 0);
            const char *key = (const char *)sqlite3_column_text(st, 1);
            scanned = id;
            struct es_change *c = &items[*count];
            const char **slot = keyset_slot(&ks, key);
            int blocked = *slot != NULL || open_state_of(t, key, err, &rc) ||
                          held_elsewhere(t, key, id, err, &rc);
            if (rc != ES_OK) {
                break;
            }
            if (blocked) {
                sqlite3_stmt *d = es__sq_q(t->s, Q_DEFER);
                sqlite3_bind_int64(d, 1, id);
                sqlite3_bind_int64(d, 2, t->no);
                es__sq_bind_text(d, 3, key);
                sqlite3_bind_int64(d, 4, t->now);
                if (sqlite3_step(d) != SQLITE_DONE) {
                    rc = es__sq_fail(t->s, err, "lease defer");
                }
                sqlite3_reset(d);
                t->open_states = 1;
                continue;
            }
            memset(c, 0, sizeof *c);
            c->id = id;
            c->key = es_xstrndup(key, (size_t)sqlite3_column_bytes(st, 1));
            c->version = es__sq_col_dup(st, 2);
            c->deleted = sqlite3_column_int(st, 3);
            c->created_ms = sqlite3_column_int64(st, 4);
            c->updated_ms = c->created_ms;
            c->payload = payload_dup(st, 5, &c->payload_len);
            c->flow = es_xstrdup(t->flow);
            c->state = ES_CHANGE_LEASED;
            c->attempts = 1;
            *slot = c->key; /* a later version of this key in the batch waits for it */
            (*count)++;
        }
        if (rc == ES_OK && *count < max && r != SQLITE_DONE) {
            rc = es__sq_fail(t->s, err, "lease");
        }
        sqlite3_reset(st);
        if (rows == 0) {
            break;
        }
    }
    es_free(ks.slot);
    if (rc == ES_OK && *count > first) {
        l->lo = items[first].id;
        l->hi = items[*count - 1].id;
        l->nbytes = (size_t)((l->hi - l->lo) / 8 + 1);
        l->bits = es_xcalloc(l->nbytes, 1);
        for (size_t i = first; i < *count; i++) {
            uint64_t off = (uint64_t)(items[i].id - l->lo);
            l->bits[off / 8] |= (unsigned char)(1u << (off % 8));
            es__sq_move_state(t->s, t->flow, ES_CHANGE_PENDING, ES_CHANGE_LEASED);
        }
        l->held = (int64_t)(*count - first);
    }
    if (rc == ES_OK && scanned > frontier) {
        sqlite3_stmt *st = es__sq_q(t->s, Q_FRONTIER_SET);
        es__sq_bind_text(st, 1, t->flow);
        sqlite3_bind_int64(st, 2, scanned);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = es__sq_fail(t->s, err, "frontier");
        }
    }
    return rc;
}

int es__sq_lease(struct es_store *base, const char *flow, size_t max, int64_t now_ms,
                 int64_t lease_ms, struct es_change **out, size_t *n, struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    *out = NULL;
    *n = 0;
    int rc = es__sq_begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    struct es_change *items = NULL;
    size_t count = 0;
    struct taking t = {.s = s, .flow = flow, .now = now_ms};
    rc = expire(s, now_ms, NULL, err);
    if (rc == ES_OK) {
        sqlite3_stmt *st = es__sq_q(s, Q_PAUSED);
        es__sq_bind_text(st, 1, flow);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW && sqlite3_column_int(st, 0)) {
            return es__sq_finish(s, ES_OK, err);
        }
        if (r != SQLITE_ROW && r != SQLITE_DONE) {
            rc = es__sq_fail(s, err, "flow state");
        }
    }
    if (rc == ES_OK) {
        t.no = es__sq_flow_no(s, flow, 0, err);
        rc = t.no < 0 ? ES_ESTORE : ES_OK;
    }
    if (rc != ES_OK || t.no == 0 || max == 0) {
        return es__sq_finish(s, rc, err);
    }
    rc = es__sq_leases_of(s, t.no, &t.live, &t.nlive, err);
    t.live_lo = INT64_MAX;
    t.live_hi = INT64_MIN;
    for (size_t i = 0; i < t.nlive; i++) {
        if (t.live[i].held > 0) {
            t.live_lo = t.live[i].lo < t.live_lo ? t.live[i].lo : t.live_lo;
            t.live_hi = t.live[i].hi > t.live_hi ? t.live[i].hi : t.live_hi;
        }
    }
    size_t nloaded = t.nlive;
    if (t.live_lo == INT64_MAX) {
        t.nlive = 0; /* none holds fresh changes: nothing to check against */
    }
    if (rc == ES_OK) {
        sqlite3_stmt *st = es__sq_q(s, Q_STATES_ANY);
        sqlite3_bind_int64(st, 1, t.no);
        int r = sqlite3_step(st);
        t.open_states = r == SQLITE_ROW;
        if (r != SQLITE_ROW && r != SQLITE_DONE) {
            rc = es__sq_fail(s, err, "lease");
        }
        sqlite3_reset(st);
    }
    struct es__sq_lease l = {.lo = 0, .hi = -1};
    items = es_xcalloc(max, sizeof *items);
    size_t nstates = 0;
    if (rc == ES_OK && t.open_states) {
        rc = take_states(&t, max, items, &count, err);
        nstates = count;
    }
    if (rc == ES_OK && count < max) {
        rc = take_fresh(&t, max, items, &count, &l, err);
    }
    /* One token for the batch: the id of its `leases` row, AUTOINCREMENT so that no token is
     * ever handed out twice, by any process. An idle poll writes nothing. */
    uint64_t token = 0;
    if (rc == ES_OK && count > 0) {
        sqlite3_stmt *st = es__sq_q(s, Q_LEASE_NEW);
        sqlite3_bind_int64(st, 1, t.no);
        sqlite3_bind_int64(st, 2, l.lo);
        sqlite3_bind_int64(st, 3, l.hi);
        sqlite3_bind_int64(st, 4, now_ms + lease_ms);
        sqlite3_bind_int64(st, 5, l.held);
        sqlite3_bind_int64(st, 6, (int64_t)nstates);
        if (l.bits) {
            sqlite3_bind_blob(st, 7, l.bits, (int)l.nbytes, SQLITE_STATIC);
        }
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = es__sq_fail(s, err, "lease");
        }
        token = (uint64_t)sqlite3_last_insert_rowid(s->db);
    }
    if (rc == ES_OK) {
        rc = hold_states(&t, token, items, nstates, err);
    }
    for (size_t i = 0; i < count; i++) {
        items[i].lease = token;
        items[i].lease_until_ms = now_ms + lease_ms;
    }
    es_free(l.bits);
    es__sq_leases_free(t.live, nloaded);
    rc = es__sq_finish(s, rc, err);
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
static char *xref_find(struct es__sq_store *s, const char *entity, const char *system,
                       const char *id)
{
    sqlite3_stmt *st = es__sq_q(s, Q_XREF_FIND);
    es__sq_bind_text(st, 1, entity);
    es__sq_bind_text(st, 2, system);
    es__sq_bind_text(st, 3, id);
    char *g = sqlite3_step(st) == SQLITE_ROW ? es__sq_col_dup(st, 0) : NULL;
    sqlite3_reset(st);
    return g;
}

/* Writes one (entity, system, id) -> value row of xref or fingerprints (which). */
static int entity_put(struct es__sq_store *s, int which, const char *entity, const char *system,
                      const char *id, const char *value, int64_t now, struct es_err *err)
{
    sqlite3_stmt *st = es__sq_q(s, which);
    es__sq_bind_text(st, 1, entity);
    es__sq_bind_text(st, 2, system);
    es__sq_bind_text(st, 3, id);
    es__sq_bind_text(st, 4, value);
    sqlite3_bind_int64(st, 5, now);
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    return r == SQLITE_DONE ? ES_OK
                            : es__sq_fail(s, err, which == Q_XREF_PUT ? "xref" : "fingerprint");
}

static int record_xref(struct es__sq_store *s, const struct es_xref_in *x, int64_t id, int64_t now,
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
        rc = entity_put(s, Q_XREF_PUT, x->entity, x->source_system, x->source_id, g, now, err);
        if (rc == ES_OK) {
            rc = entity_put(s, Q_XREF_PUT, x->entity, x->target_system, x->target_id, g, now, err);
        }
        es_free(g);
    }
    if (rc == ES_OK && x->fingerprint && x->target_id) {
        rc = entity_put(s, Q_FP_PUT, x->entity, x->target_system, x->target_id, x->fingerprint, now,
                        err);
    }
    return rc;
}

/* flows.last_success, written once per flow per transaction. */
static int success_put(struct es__sq_store *s, const char *flow, int64_t now_ms, struct es_err *err)
{
    sqlite3_stmt *st = es__sq_q(s, Q_SUCCESS);
    es__sq_bind_text(st, 1, flow);
    sqlite3_bind_int64(st, 2, now_ms);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return es__sq_fail(s, err, "last success");
    }
    return ES_OK;
}

/* A run of DONE outcomes of consecutive changes with one duration: one audit row. */
struct run {
    const char *flow;
    int64_t first, n, duration;
};

static int run_flush(struct es__sq_store *s, struct run *r, int64_t now, struct es_err *err)
{
    int rc = ES_OK;
    if (r->n > 0) {
        rc = es__sq_audit_put(s, r->first, r->n, r->flow, "", now, ES_CHANGE_DONE, ES_OK, 1,
                              r->duration, NULL, err);
    }
    r->n = 0;
    return rc;
}

/* The complete() call's view of the leases its outcomes name. */
struct held {
    struct es__sq_lease *l;
    size_t n, cap;
};

/* The lease row of token (read once per call), or NULL when it is gone. */
static struct es__sq_lease *held_get(struct es__sq_store *s, struct held *h, uint64_t token,
                                     struct es_err *err, int *rc)
{
    for (size_t i = h->n; i > 0; i--) {
        if (h->l[i - 1].token == (int64_t)token) {
            return h->l[i - 1].token > 0 && h->l[i - 1].flow > 0 ? &h->l[i - 1] : NULL;
        }
    }
    ES_GROW(h->l, h->cap, h->n + 1);
    struct es__sq_lease *l = &h->l[h->n++];
    memset(l, 0, sizeof *l);
    l->token = (int64_t)token;
    sqlite3_stmt *st = es__sq_q(s, Q_LEASE_GET);
    sqlite3_bind_int64(st, 1, (int64_t)token);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        es__sq_lease_read(st, l);
    } else if (r != SQLITE_DONE) {
        *rc = es__sq_fail(s, err, "complete");
    }
    sqlite3_reset(st);
    return l->flow > 0 ? l : NULL; /* flow 0: a remembered miss */
}

/* Writes back (or deletes) every lease row this call changed. */
static int held_apply(struct es__sq_store *s, struct held *h, struct es_err *err)
{
    for (size_t i = 0; i < h->n; i++) {
        struct es__sq_lease *l = &h->l[i];
        if (!l->dirty) {
            continue;
        }
        int gone = l->held <= 0 && l->xheld <= 0;
        sqlite3_stmt *st = es__sq_q(s, gone ? Q_LEASE_DEL : Q_LEASE_SET);
        sqlite3_bind_int64(st, 1, l->token);
        if (!gone) {
            sqlite3_bind_int64(st, 2, l->lo);
            sqlite3_bind_int64(st, 3, l->hi);
            sqlite3_bind_int64(st, 4, l->held);
            sqlite3_bind_int64(st, 5, l->xheld);
            if (l->bits) {
                sqlite3_bind_blob(st, 6, l->bits, (int)l->nbytes, SQLITE_STATIC);
            }
        }
        if (sqlite3_step(st) != SQLITE_DONE) {
            return es__sq_fail(s, err, "lease count");
        }
    }
    return ES_OK;
}

/* Binds an outcome's columns for Q_STATE_NEW / Q_STATE_DONE (same parameter numbers). */
static void bind_outcome(sqlite3_stmt *st, const struct es_outcome *o, int64_t now)
{
    const struct es_err *e = o->err;
    sqlite3_bind_int64(st, 1, o->id);
    sqlite3_bind_int(st, 3, (int)o->state);
    sqlite3_bind_int64(st, 4, o->state == ES_CHANGE_RETRY ? o->next_at_ms : 0);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int(st, 6, e ? (int)e->code : 0);
    es__sq_bind_opt(st, 7, e ? e->msg : NULL);
    es__sq_bind_opt(st, 8, e ? e->remote_code : NULL);
    es__sq_bind_opt(st, 9, e ? e->remote_msg : NULL);
    es__sq_bind_opt(st, 10, e ? e->hint : NULL);
    es__sq_bind_opt(st, 11, o->note);
    sqlite3_bind_int(st, 12, es__sq_closed_of((int)o->state));
}

/* One outcome of a change held through a `states` row. OUT: *key (es_free), *attempts;
 * o->stale. */
static int complete_state_row(struct es__sq_store *s, struct es__sq_lease *l, struct es_outcome *o,
                              int64_t now, char **key, int *attempts, struct es_err *err)
{
    sqlite3_stmt *st = es__sq_q(s, Q_STATE_DONE);
    bind_outcome(st, o, now);
    sqlite3_bind_int64(st, 2, (int64_t)o->lease);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return es__sq_fail(s, err, "complete");
    }
    if (sqlite3_changes(s->db) == 0) {
        o->stale = 1; /* the lease was lost: someone else owns the change now */
        return ES_OK;
    }
    l->xheld--;
    l->dirty = 1;
    if (o->leased) {
        *key = es_xstrdup(o->leased->key);
        *attempts = o->leased->attempts;
        return ES_OK;
    }
    st = es__sq_q(s, Q_STATE_HOLDER);
    sqlite3_bind_int64(st, 1, o->id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *key = es__sq_col_dup(st, 0);
        *attempts = sqlite3_column_int(st, 1);
    }
    sqlite3_reset(st);
    return ES_OK;
}

/* The key of a fresh change (from the leased copy when the caller passed it). */
static char *fresh_key(struct es__sq_store *s, const struct es_outcome *o)
{
    if (o->leased) {
        return es_xstrdup(o->leased->key);
    }
    sqlite3_stmt *st = es__sq_q(s, Q_KEY_OF);
    sqlite3_bind_int64(st, 1, o->id);
    char *k = sqlite3_step(st) == SQLITE_ROW ? es__sq_col_dup(st, 0) : es_xstrdup("?");
    sqlite3_reset(st);
    return k;
}

/* What a DONE outcome records besides its state: xref, fingerprints, skip counters. */
static int done_extras(struct es__sq_store *s, const struct es_outcome *o, const char *flow,
                       int64_t now, struct es_err *err)
{
    int rc = ES_OK;
    if (o->xref) {
        rc = record_xref(s, o->xref, o->id, now, err);
    }
    for (size_t k = 0; rc == ES_OK && k < o->nfps; k++) {
        const struct es_fp_in *fp = &o->fps[k];
        if (fp->entity && fp->system && fp->id && fp->fingerprint) {
            rc = entity_put(s, Q_FP_PUT, fp->entity, fp->system, fp->id, fp->fingerprint, now, err);
        }
    }
    if (o->skip > ES_SKIP_NONE && o->skip <= ES_SKIP_ECHO) {
        es__sq_delta_add(s, flow, es__sq_count_skip[o->skip], 1);
    }
    return rc;
}

int es__sq_complete(struct es_store *base, struct es_outcome *outs, size_t n, int64_t now_ms,
                    struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    int rc = es__sq_begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    struct held h = {0};
    struct run run = {0};
    const char *succeeded = NULL; /* the flow whose last_success is pending to write */
    for (size_t i = 0; i < n && rc == ES_OK; i++) {
        struct es_outcome *o = &outs[i];
        const struct es_err *e = o->err;
        if (o->state == ES_CHANGE_LEASED || (unsigned)o->state >= ES_CHANGE_STATE_LAST) {
            rc = es_err_set(err, ES_EINVAL, "outcome of change %lld: bad state", (long long)o->id);
            break;
        }
        o->stale = 0;
        struct es__sq_lease *l = held_get(s, &h, o->lease, err, &rc);
        if (rc != ES_OK) {
            break;
        }
        if (!l || ES__SQ_FLOW_OF(o->id) != l->flow) {
            o->stale = 1; /* the lease ran out and is gone: someone else decides */
            continue;
        }
        struct es__sq_flow *f = es__sq_flow_by_no(s, l->flow);
        const char *flow = f ? f->name : "?";
        char *key = NULL;
        int attempts = 1;
        int fresh = es__sq_lease_holds(l, o->id);
        if (fresh) {
            uint64_t off = (uint64_t)(o->id - l->lo);
            l->bits[off / 8] &= (unsigned char)~(1u << (off % 8));
            l->held--;
            l->dirty = 1;
        } else {
            rc = complete_state_row(s, l, o, now_ms, &key, &attempts, err);
            if (rc != ES_OK || o->stale) {
                es_free(key);
                continue;
            }
        }
        es__sq_move_state(s, flow, ES_CHANGE_LEASED, (int)o->state);
        es__sq_delta_add(s, flow, es__sq_count_outcome[o->state], 1);
        int plain = fresh && o->state == ES_CHANGE_DONE && !e && !(o->note && *o->note);
        if (plain) {
            /* The fast path: nothing per change but a place in a run's audit row. */
            if (run.n > 0 && (run.flow != flow || run.first + run.n != o->id ||
                              run.duration != o->duration_ms || run.n >= ES__SQ_RUN_MAX)) {
                rc = run_flush(s, &run, now_ms, err);
            }
            if (run.n == 0) {
                run = (struct run){flow, o->id, 0, o->duration_ms};
            }
            run.n++;
        } else {
            rc = run_flush(s, &run, now_ms, err);
            if (rc == ES_OK && fresh) {
                key = fresh_key(s, o);
                /* A DONE with a note (echo, unchanged) keeps it in its audit row only. */
                if (o->state != ES_CHANGE_DONE) {
                    /* Off the fast path from now on: its state and error get a row. */
                    sqlite3_stmt *st = es__sq_q(s, Q_STATE_NEW);
                    bind_outcome(st, o, now_ms);
                    sqlite3_bind_int64(st, 13, l->flow);
                    es__sq_bind_text(st, 14, key);
                    sqlite3_bind_int(st, 15, attempts);
                    if (sqlite3_step(st) != SQLITE_DONE) {
                        rc = es__sq_fail(s, err, "complete");
                    }
                }
            }
            if (rc == ES_OK) {
                rc = es__sq_audit_put(s, o->id, 1, flow, key ? key : "", now_ms, (int)o->state,
                                      e ? e->code : ES_OK, attempts, o->duration_ms,
                                      e && e->msg[0] ? e->msg : o->note, err);
            }
        }
        es_free(key);
        if (rc == ES_OK && o->state == ES_CHANGE_DONE) {
            if (succeeded && succeeded != flow) {
                rc = success_put(s, succeeded, now_ms, err);
            }
            succeeded = flow;
            if (rc == ES_OK) {
                rc = done_extras(s, o, flow, now_ms, err);
            }
        }
    }
    if (rc == ES_OK) {
        rc = run_flush(s, &run, now_ms, err);
    }
    if (rc == ES_OK && succeeded) {
        rc = success_put(s, succeeded, now_ms, err);
    }
    if (rc == ES_OK) {
        rc = held_apply(s, &h, err);
    }
    for (size_t i = 0; i < h.n; i++) {
        es_free(h.l[i].bits);
    }
    es_free(h.l);
    return es__sq_finish(s, rc, err);
}

int es__sq_renew(struct es_store *base, uint64_t lease, int64_t until_ms, struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    int rc = es__sq_begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    sqlite3_stmt *st = es__sq_q(s, Q_LEASE_RENEW);
    sqlite3_bind_int64(st, 1, (int64_t)lease);
    sqlite3_bind_int64(st, 2, until_ms);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = es__sq_fail(s, err, "renew");
    } else if (sqlite3_changes(s->db) == 0) {
        rc = es_err_set(err, ES_ENOTFOUND, "lease %llu: no longer held", (unsigned long long)lease);
    }
    return es__sq_finish(s, rc, err);
}

int es__sq_recover(struct es_store *base, size_t *n, struct es_err *err)
{
    struct es__sq_store *s = (struct es__sq_store *)base;
    size_t count = 0;
    int rc = es__sq_begin(s, err);
    if (rc != ES_OK) {
        return rc;
    }
    rc = expire(s, INT64_MAX, &count, err);
    rc = es__sq_finish(s, rc, err);
    if (n) {
        *n = rc == ES_OK ? count : 0;
    }
    return rc;
}
