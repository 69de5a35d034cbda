/* SPDX-License-Identifier: MIT */
/*
 * The worker threads: lease a batch of one flow, map each change, write the whole batch to
 * the target with one call, and commit every outcome with its xref and fingerprint.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "engine/internal.h"

/* ---- workers ---- */

struct item {
    struct es_change *ch;
    json_t *mapped;
    char fp[17];
    char *target_id;
    const char *match;
    int written; /* index into writes, or -1 */
    struct es_err err;
    struct es_xref_in xref;
};

struct xref_ud {
    struct es_engine *e;
    const struct es_flow_cfg *f;
};

static int map_xref(void *ud, const char *entity, const char *source_value, char *out, size_t cap)
{
    struct xref_ud *x = ud;
    char *id = NULL;
    int rc =
        es_store_xref_lookup(x->e->store, entity, x->f->from, source_value, x->f->to, &id, NULL);
    if (rc == ES_OK) {
        es_strlcpy(out, id, cap);
    }
    es_free(id);
    return rc;
}

static enum es_write_op write_op(const struct es_flow_cfg *f, int deleted)
{
    if (deleted) {
        return ES_WRITE_DELETE;
    }
    switch (f->operation) {
    case ES_OP_CREATE:
        return ES_WRITE_CREATE;
    case ES_OP_UPDATE:
        return ES_WRITE_UPDATE;
    default:
        return ES_WRITE_UPSERT;
    }
}

/* Decides the outcome of a failed item and logs it once. */
static void fail_item(struct worker *w, struct flow_rt *rt, struct item *it, struct es_outcome *o,
                      int64_t now, int *pause)
{
    const struct es_flow_cfg *f = rt->cfg;
    double rnd = (double)rand_r(&w->seed) / ((double)RAND_MAX + 1.0);
    o->state = es_engine_classify(&it->err, it->ch->attempts, &f->retry, now, rnd, &o->next_at_ms);
    o->err = &it->err;
    if (o->state == ES_CHANGE_PENDING) {
        *pause = 1;
    }
    es_err_context(&it->err, f->to, f->name, it->ch->key);
    struct es_log_ctx lc = {f->name, f->to};
    enum es_log_level lvl = o->state == ES_CHANGE_RETRY ? ES_LOG_DEBUG : ES_LOG_WARN;
    es_log(&lc, lvl, "change %" PRId64 " key=%s attempt=%d -> %s: %s: %s", it->ch->id, it->ch->key,
           it->ch->attempts, es_change_state_name(o->state), es_code_name(it->err.code),
           it->err.msg);
}

/* Leases and works one batch of flow rt. Returns the number of changes leased. */
static size_t work_flow(struct worker *w, struct flow_rt *rt)
{
    struct es_engine *e = w->e;
    const struct es_flow_cfg *f = rt->cfg;
    const struct es_entity_cfg *ent = &e->cfg->entities[f->entity_idx];
    struct es_log_ctx lc = {f->name, f->to};
    struct es_change *ch = NULL;
    size_t n = 0;
    struct es_err err;
    es_err_clear(&err);
    int64_t t0 = es_clock_mono_ms();
    if (es_store_lease(e->store, f->name, (size_t)f->batch_size, es_clock_wall_ms(),
                       e->opts.lease_ms, &ch, &n, &err) != ES_OK) {
        es_log_err(&lc, ES_LOG_ERROR, &err);
        es__note_error(e, &err);
        return 0;
    }
    if (n == 0) {
        return 0;
    }
    struct item *items = es_xcalloc(n, sizeof *items);
    struct es_write *writes = es_xcalloc(n, sizeof *writes);
    struct es_write_result *results = es_xcalloc(n, sizeof *results);
    struct es_outcome *outs = es_xcalloc(n, sizeof *outs);
    size_t nw = 0;
    int pause = 0;
    struct xref_ud xud = {e, f};
    es_err_clear(&err);
    struct es_conn *conn = es__conn_get(e, &w->conns, f->to_idx, &err);
    enum es_write_op op = ES_WRITE_UPSERT;
    int mixed = 0;

    for (size_t i = 0; i < n; i++) {
        struct item *it = &items[i];
        it->ch = &ch[i];
        it->written = -1;
        outs[i].id = ch[i].id;
        outs[i].lease = ch[i].lease;
        outs[i].leased = &ch[i];
        if (!conn) {
            it->err = err;
            continue;
        }
        char *tid = NULL;
        if (es_store_xref_lookup(e->store, ent->name, f->from, ch[i].key, f->to, &tid, NULL) ==
            ES_OK) {
            it->target_id = tid;
        }
        if (!ch[i].deleted) {
            json_error_t jerr;
            json_t *src =
                ch[i].payload ? json_loadb(ch[i].payload, ch[i].payload_len, 0, &jerr) : NULL;
            if (!src) {
                es_err_set(&it->err, ES_EPOISON, "payload is not JSON: %s",
                           ch[i].payload ? jerr.text : "no payload");
                continue;
            }
            int rc = es__mapping_apply(rt->map, src, &it->mapped, map_xref, &xud, &it->err);
            json_decref(src);
            if (rc != ES_OK) {
                continue;
            }
            es_engine_json_hash(it->mapped, it->fp);
            if (it->target_id) {
                char *last = NULL;
                if (es_store_fingerprint_get(e->store, ent->name, f->to, it->target_id, &last,
                                             NULL) == ES_OK &&
                    strcmp(last, it->fp) == 0) {
                    es_free(last);
                    outs[i].state = ES_CHANGE_DONE;
                    outs[i].note = "unchanged: the target already has this record";
                    continue;
                }
                es_free(last);
            }
            if (f->external_id) {
                json_t *m = json_object_get(it->mapped, f->external_id);
                it->match = json_is_string(m) ? json_string_value(m) : NULL;
            }
        } else if (!it->target_id && !f->external_id) {
            outs[i].state = ES_CHANGE_DONE;
            outs[i].note = "deleted at the source; never written to the target";
            continue;
        }
        enum es_write_op this_op = write_op(f, ch[i].deleted);
        if (nw == 0) {
            op = this_op;
        } else if (this_op != op) {
            /* One call has one operation: the rest waits for the next batch. */
            mixed = 1;
            outs[i].state = ES_CHANGE_PENDING;
            outs[i].note = "deferred: different operation in the same batch";
            continue;
        }
        it->written = (int)nw;
        writes[nw].key = ch[i].key;
        writes[nw].target_id = it->target_id;
        writes[nw].match = it->match;
        writes[nw].data = it->mapped;
        nw++;
    }
    (void)mixed;

    if (nw > 0) {
        struct es_err werr;
        es_err_clear(&werr);
        int rc = es_conn_write_batch(conn, rt->target_object, op, f->external_id, writes, nw,
                                     results, &werr);
        for (size_t i = 0; i < n; i++) {
            struct item *it = &items[i];
            if (it->written < 0) {
                continue;
            }
            struct es_write_result *r = &results[it->written];
            if (rc != ES_OK && r->code == ES_OK) {
                it->err = werr; /* the batch as a whole failed */
            } else if (r->code != ES_OK) {
                it->err = r->err;
                it->err.code = r->code;
            } else {
                outs[i].state = ES_CHANGE_DONE;
                const char *tid = r->target_id ? r->target_id : it->target_id;
                it->xref = (struct es_xref_in){ent->name, f->from, it->ch->key,
                                               f->to,     tid,     it->fp[0] ? it->fp : NULL};
                if (tid && !it->ch->deleted) {
                    outs[i].xref = &it->xref;
                }
            }
        }
    }

    int64_t now = es_clock_wall_ms();
    int64_t dur = es_clock_mono_ms() - t0;
    size_t ndone = 0, nfail = 0;
    for (size_t i = 0; i < n; i++) {
        struct item *it = &items[i];
        outs[i].duration_ms = dur;
        if (it->err.code != ES_OK) {
            fail_item(w, rt, it, &outs[i], now, &pause);
            if (!conn && (outs[i].state == ES_CHANGE_DEAD || outs[i].state == ES_CHANGE_REVIEW)) {
                /* The target cannot be opened: not the record's fault. Give it back and
                 * pause the flow instead of parking every change. */
                outs[i].state = ES_CHANGE_PENDING;
                pause = 1;
            }
            nfail++;
        } else if (outs[i].state == ES_CHANGE_DONE) {
            ndone++;
        }
    }
    if (pause) {
        char reason[160];
        const struct es_err *ae = NULL;
        for (size_t i = 0; i < n && !ae; i++) {
            if (es_code_class(items[i].err.code) == ES_CLASS_AUTH) {
                ae = &items[i].err;
            }
        }
        if (ae || conn) {
            snprintf(reason, sizeof reason, "auth: %s", ae ? ae->msg : "credentials refused");
        } else {
            snprintf(reason, sizeof reason, "cannot open system %s: %s", f->to, err.msg);
        }
        struct es_err perr;
        es_err_clear(&perr);
        if (es_store_flow_pause(e->store, f->name, reason, &perr) != ES_OK) {
            es_log_err(&lc, ES_LOG_ERROR, &perr);
        }
        es_log(&lc, ES_LOG_ERROR,
               "alert: flow paused: %s; fix the cause, then run 'erpsync flow resume %s'", reason,
               f->name);
    }
    es_err_clear(&err);
    if (es_store_complete(e->store, outs, n, now, &err) != ES_OK) {
        /* The leases expire and the changes are worked again: at-least-once. */
        es_log_err(&lc, ES_LOG_ERROR, &err);
        es__note_error(e, &err);
    } else {
        es__note_error(e, NULL);
        size_t stale = 0;
        for (size_t i = 0; i < n; i++) {
            stale += (size_t)outs[i].stale;
        }
        es_log(&lc, ES_LOG_DEBUG, "batch of %zu: %zu done, %zu failed, %zu stale leases", n, ndone,
               nfail, stale);
    }

    for (size_t i = 0; i < n; i++) {
        json_decref(items[i].mapped);
        es_free(items[i].target_id);
    }
    es_write_results_release(results, nw);
    es_free(results);
    es_free(writes);
    es_free(outs);
    es_free(items);
    es_changes_free(ch, n);
    return n;
}

/* True when no enabled, running flow has an open change (pending, leased, retry). */
static int drained(struct es_engine *e)
{
    for (size_t i = 0; i < e->nflows; i++) {
        if (!e->flows[i].cfg->enabled) {
            continue;
        }
        struct es_flow_stats st;
        if (es_store_stats(e->store, e->flows[i].cfg->name, 0, &st, NULL) != ES_OK) {
            return 0;
        }
        if (st.paused) {
            continue;
        }
        if (st.count[ES_CHANGE_PENDING] + st.count[ES_CHANGE_LEASED] + st.count[ES_CHANGE_RETRY]) {
            return 0;
        }
    }
    return 1;
}

void *es__worker_main(void *arg)
{
    struct worker *w = arg;
    struct es_engine *e = w->e;
    size_t turn = w->idx;
    while (!atomic_load(&e->stopping)) {
        size_t did = 0;
        pthread_rwlock_rdlock(&e->cfg_lock);
        for (size_t k = 0; k < e->nflows && !atomic_load(&e->stopping); k++) {
            struct flow_rt *rt = &e->flows[(turn + k) % e->nflows];
            if (rt->cfg->enabled) {
                did += work_flow(w, rt);
            }
        }
        turn++;
        int done = 0;
        if (!did && e->opts.once && atomic_load(&e->triggers_done)) {
            done = drained(e);
        }
        pthread_rwlock_unlock(&e->cfg_lock);
        if (done) {
            atomic_store(&e->stopping, 1);
            es__wake(e);
            break;
        }
        if (!did) {
            es__nap(e, e->opts.tick_ms);
        }
    }
    return NULL;
}
