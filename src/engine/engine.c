/* SPDX-License-Identifier: MIT */
/*
 * The engine's lifecycle, outcome policy and accessors. Its threads live in their own files:
 *
 *  - enqueue.c: the committer, the realtime trigger's group commit;
 *  - triggers.c: the scheduler, poll and batch triggers;
 *  - worker.c: the workers that lease, map, write and commit outcomes.
 *
 * The config is read under a reader lock for the length of a batch; a reload (SIGHUP)
 * takes the writer lock, so it swaps flows between batches and closes every connector
 * instance while no thread uses one.
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

void es__note_error(struct es_engine *e, const struct es_err *err)
{
    pthread_mutex_lock(&e->health_lock);
    if (err) {
        e->store_ok = err->code != ES_ESTORE;
        es_strlcpy(e->last_error, err->msg, sizeof e->last_error);
    } else {
        e->store_ok = 1;
    }
    pthread_mutex_unlock(&e->health_lock);
}

/* Wakes sleeping workers and the scheduler (new work, stop, resume). */
void es__wake(struct es_engine *e)
{
    pthread_mutex_lock(&e->ctl_lock);
    pthread_cond_broadcast(&e->ctl_cond);
    pthread_mutex_unlock(&e->ctl_lock);
}

void es__nap(struct es_engine *e, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->ctl_lock);
    if (!atomic_load(&e->stopping)) {
        pthread_cond_timedwait(&e->ctl_cond, &e->ctl_lock, &ts);
    }
    pthread_mutex_unlock(&e->ctl_lock);
}

void es__conns_close(struct conns *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        es_conn_close(cs->c[i]);
    }
    es_free(cs->c);
    cs->c = NULL;
    cs->n = 0;
}

/* The instance of system idx for this thread. Called under the config read lock. */
struct es_conn *es__conn_get(struct es_engine *e, struct conns *cs, int idx, struct es_err *err)
{
    if (idx < 0 || (size_t)idx >= e->cfg->nsystems) {
        es_err_set(err, ES_EINTERNAL, "system index %d out of range", idx);
        return NULL;
    }
    if (cs->n < e->cfg->nsystems) {
        cs->c = es_xrealloc(cs->c, e->cfg->nsystems * sizeof *cs->c);
        memset(cs->c + cs->n, 0, (e->cfg->nsystems - cs->n) * sizeof *cs->c);
        cs->n = e->cfg->nsystems;
    }
    /* What this thread's instances learned during its last batch (they are used only by
     * this thread, so reading them here is race-free). */
    for (size_t i = 0; i < cs->n; i++) {
        if (cs->c[i]) {
            es__budget_note(e, (int)i, cs->c[i]);
        }
    }
    if (!cs->c[idx]) {
        if (es_conn_open(&e->cfg->systems[idx], &cs->c[idx], err) != ES_OK) {
            cs->c[idx] = NULL;
            return NULL;
        }
    }
    return cs->c[idx];
}

void es__budget_note(struct es_engine *e, int idx, const struct es_conn *c)
{
    if (!c || idx < 0 || (size_t)idx >= e->nbudgets || c->api_max <= 0) {
        return;
    }
    struct es__budget *b = &e->budgets[idx];
    atomic_store_explicit(&b->used, c->api_used, memory_order_relaxed);
    atomic_store_explicit(&b->max, c->api_max, memory_order_relaxed);
}

/* Budgets for cfg's systems, carrying over what old knew of systems of the same name. */
static struct es__budget *budgets_build(const struct es_config *cfg, const struct es__budget *old,
                                        size_t nold)
{
    struct es__budget *b = es_xcalloc(cfg->nsystems ? cfg->nsystems : 1, sizeof *b);
    for (size_t i = 0; i < cfg->nsystems; i++) {
        es_strlcpy(b[i].system, cfg->systems[i].name, sizeof b[i].system);
        long used = -1, max = -1;
        for (size_t k = 0; k < nold; k++) {
            if (strcmp(old[k].system, b[i].system) == 0) {
                used = atomic_load(&old[k].used);
                max = atomic_load(&old[k].max);
                break;
            }
        }
        atomic_init(&b[i].used, used);
        atomic_init(&b[i].max, max);
    }
    return b;
}

int es_engine_budget(struct es_engine *e, const char *system, long *used, long *max,
                     struct es_err *err)
{
    *used = *max = -1;
    int rc = ES_EINVAL;
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; system && i < e->nbudgets; i++) {
        if (strcmp(e->budgets[i].system, system) == 0) {
            *used = atomic_load_explicit(&e->budgets[i].used, memory_order_relaxed);
            *max = atomic_load_explicit(&e->budgets[i].max, memory_order_relaxed);
            rc = ES_OK;
            break;
        }
    }
    pthread_rwlock_unlock(&e->cfg_lock);
    if (rc != ES_OK) {
        es_err_set(err, ES_EINVAL, "no system named '%s'", system ? system : "");
    }
    return rc;
}

/* ---- outcome policy ---- */

enum es_change_state es_engine_classify(const struct es_err *err, int attempts,
                                        const struct es_retry_cfg *retry, int64_t now_ms,
                                        double rnd, int64_t *next_at_ms)
{
    *next_at_ms = 0;
    switch (es_code_class(err->code)) {
    case ES_CLASS_TRANSIENT:
    case ES_CLASS_RATE_LIMITED: {
        if (attempts >= retry->max_attempts) {
            return ES_CHANGE_DEAD;
        }
        double d = (double)(retry->base_ms > 0 ? retry->base_ms : 1000);
        for (int i = 1; i < attempts && d < (double)retry->max_ms; i++) {
            d *= 2;
        }
        if (retry->max_ms > 0 && d > (double)retry->max_ms) {
            d = (double)retry->max_ms;
        }
        d *= 0.8 + 0.4 * rnd; /* jitter: spread retries of a failed batch */
        if (err->retry_after * 1000.0 > d) {
            d = err->retry_after * 1000.0;
        }
        *next_at_ms = now_ms + (int64_t)d;
        return ES_CHANGE_RETRY;
    }
    case ES_CLASS_AUTH:
        return ES_CHANGE_PENDING;
    case ES_CLASS_VALIDATION:
    case ES_CLASS_BUSINESS:
    case ES_CLASS_CONFLICT:
    case ES_CLASS_NOT_FOUND:
        return ES_CHANGE_REVIEW;
    case ES_CLASS_NONE:
        return ES_CHANGE_DONE;
    case ES_CLASS_POISON:
    case ES_CLASS_INTERNAL:
    default:
        return ES_CHANGE_DEAD;
    }
}

void es_engine_json_hash(const json_t *v, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ULL;
    char *text = v ? json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    free(text); /* checksrc: ok (jansson allocates with malloc) */
    snprintf(out, 17, "%016" PRIx64, h);
}

/* ---- flows ---- */

static void flows_free(struct flow_rt *flows, size_t n)
{
    for (size_t i = 0; flows && i < n; i++) {
        es__mapping_free(flows[i].map);
    }
    es_free(flows);
}

static int flows_build(const struct es_config *cfg, struct flow_rt **out, size_t *n,
                       struct es_err *err)
{
    struct flow_rt *flows = es_xcalloc(cfg->nflows ? cfg->nflows : 1, sizeof *flows);
    struct es_diags diags;
    es_diags_init(&diags);
    int rc = ES_OK;
    for (size_t i = 0; i < cfg->nflows; i++) {
        const struct es_flow_cfg *f = &cfg->flows[i];
        const struct es_entity_cfg *ent = &cfg->entities[f->entity_idx];
        flows[i].cfg = f;
        flows[i].source_object =
            f->source_object ? f->source_object : es_entity_object(ent, f->from);
        flows[i].target_object = f->target_object ? f->target_object : es_entity_object(ent, f->to);
        if (!f->enabled) {
            continue;
        }
        if (es_connector_find(cfg->systems[f->to_idx].connector) == NULL) {
            rc = es_err_set(err, ES_ECONFIG, "flow '%s': connector '%s' is not built in", f->name,
                            cfg->systems[f->to_idx].connector);
            break;
        }
        if (es__mapping_new(cfg, f, &flows[i].map, &diags) != ES_OK) {
            rc = ES_ECONFIG;
            if (diags.count > 0) {
                const struct es_diag *d = &diags.items[0];
                es_err_set(err, ES_ECONFIG, "%s:%d:%d: %s", d->file ? d->file : "?", d->line,
                           d->col, d->msg);
            } else {
                es_err_set(err, ES_ECONFIG, "flow '%s': mapping does not compile", f->name);
            }
            break;
        }
    }
    es_diags_release(&diags);
    if (rc != ES_OK) {
        flows_free(flows, cfg->nflows);
        return rc;
    }
    *out = flows;
    *n = cfg->nflows;
    return ES_OK;
}

struct flow_rt *es__flow_find(struct es_engine *e, const char *name)
{
    for (size_t i = 0; i < e->nflows; i++) {
        if (strcmp(e->flows[i].cfg->name, name) == 0) {
            return &e->flows[i];
        }
    }
    return NULL;
}

/* ---- lifecycle ---- */

int es_engine_new(const struct es_config *cfg, const struct es_engine_opts *opts,
                  struct es_engine **out, struct es_err *err)
{
    *out = NULL;
    struct es_engine *e = es_xcalloc(1, sizeof *e);
    e->cfg = cfg;
    if (opts) {
        e->opts = *opts;
    }
    if (e->opts.lease_ms <= 0) {
        e->opts.lease_ms = 60000;
    }
    if (e->opts.tick_ms <= 0) {
        e->opts.tick_ms = 200;
    }
    if (e->opts.workers == 0) {
        e->opts.workers = cfg->workers > 0 ? (size_t)cfg->workers : 2;
    }
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&e->cfg_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&e->q_lock, NULL);
    pthread_cond_init(&e->q_cond, NULL);
    pthread_cond_init(&e->q_done, NULL);
    pthread_mutex_init(&e->ctl_lock, NULL);
    pthread_cond_init(&e->ctl_cond, NULL);
    pthread_mutex_init(&e->health_lock, NULL);
    pthread_mutex_init(&e->keeper.lock, NULL);
    pthread_cond_init(&e->keeper.cond, NULL);
    e->store_ok = 1;
    e->budgets = budgets_build(cfg, NULL, 0);
    e->nbudgets = cfg->nsystems;
    int rc = es_store_open(cfg->store, &e->store, err);
    if (rc == ES_OK) {
        rc = flows_build(cfg, &e->flows, &e->nflows, err);
    }
    if (rc != ES_OK) {
        es_engine_free(e);
        return rc;
    }
    *out = e;
    return ES_OK;
}

int es_engine_start(struct es_engine *e, struct es_err *err)
{
    size_t recovered = 0;
    int rc = es_store_recover(e->store, &recovered, err);
    if (rc != ES_OK) {
        return rc;
    }
    if (recovered) {
        es_log(NULL, ES_LOG_INFO, "recovered %zu leased changes left by a previous run", recovered);
    }
    e->started_ms = es_clock_wall_ms();
    if (es__keeper_start(e, err) != ES_OK) {
        return ES_EINTERNAL;
    }
    if (pthread_create(&e->committer, NULL, es__committer_main, e) != 0) {
        return es_err_set(err, ES_EINTERNAL, "cannot start the committer thread");
    }
    pthread_mutex_lock(&e->q_lock);
    e->committer_running = 1;
    pthread_mutex_unlock(&e->q_lock);
    if (!e->opts.no_triggers) {
        if (pthread_create(&e->scheduler, NULL, es__scheduler_main, e) != 0) {
            return es_err_set(err, ES_EINTERNAL, "cannot start the scheduler thread");
        }
        e->scheduler_running = 1;
    } else {
        atomic_store(&e->triggers_done, 1);
    }
    e->workers = es_xcalloc(e->opts.workers, sizeof *e->workers);
    e->nworkers = e->opts.workers;
    for (size_t i = 0; i < e->nworkers; i++) {
        struct worker *w = &e->workers[i];
        w->e = e;
        w->idx = i;
        w->seed = (unsigned)(e->started_ms ^ (int64_t)(i * 7919));
        if (pthread_create(&w->th, NULL, es__worker_main, w) != 0) {
            return es_err_set(err, ES_EINTERNAL, "cannot start worker %zu", i);
        }
        w->started = 1;
    }
    atomic_store(&e->started, 1);
    es_log(NULL, ES_LOG_INFO, "engine started: %zu flows, %zu workers, store %s", e->nflows,
           e->nworkers, e->cfg->store);
    return ES_OK;
}

void es_engine_request_stop(struct es_engine *e)
{
    atomic_store(&e->stopping, 1);
    es__wake(e);
}

int es_engine_stopping(struct es_engine *e)
{
    return atomic_load(&e->stopping);
}

void es_engine_wait(struct es_engine *e)
{
    if (atomic_load(&e->stopped)) {
        return;
    }
    for (size_t i = 0; i < e->nworkers; i++) {
        if (e->workers[i].started) {
            pthread_join(e->workers[i].th, NULL);
            e->workers[i].started = 0;
        }
    }
    /* Workers end by themselves only in --once mode or on a stop request. */
    atomic_store(&e->stopping, 1);
    es__wake(e);
    if (e->scheduler_running) {
        pthread_join(e->scheduler, NULL);
        e->scheduler_running = 0;
    }
    atomic_store(&e->stopped, 1);
}

void es_engine_free(struct es_engine *e)
{
    if (!e) {
        return;
    }
    es_engine_request_stop(e);
    es_engine_wait(e);
    es__keeper_stop(e);
    pthread_mutex_lock(&e->q_lock);
    int had = e->committer_running;
    e->committer_stop = 1;
    pthread_cond_signal(&e->q_cond);
    pthread_mutex_unlock(&e->q_lock);
    if (had) {
        pthread_join(e->committer, NULL);
    }
    for (size_t i = 0; i < e->nworkers; i++) {
        es__conns_close(&e->workers[i].conns);
    }
    es__conns_close(&e->sched_conns);
    es_free(e->workers);
    flows_free(e->flows, e->nflows);
    es_free(e->budgets);
    es_free(e->keeper.tokens);
    pthread_mutex_destroy(&e->keeper.lock);
    pthread_cond_destroy(&e->keeper.cond);
    es_store_close(e->store);
    pthread_rwlock_destroy(&e->cfg_lock);
    pthread_mutex_destroy(&e->q_lock);
    pthread_cond_destroy(&e->q_cond);
    pthread_cond_destroy(&e->q_done);
    pthread_mutex_destroy(&e->ctl_lock);
    pthread_cond_destroy(&e->ctl_cond);
    pthread_mutex_destroy(&e->health_lock);
    es_free(e);
}

int es_engine_reload(struct es_engine *e, const struct es_config *cfg, struct es_err *err)
{
    if (strcmp(cfg->store, e->cfg->store) != 0) {
        return es_err_set(err, ES_ECONFIG, "store changed from '%s' to '%s': restart to change it",
                          e->cfg->store, cfg->store);
    }
    struct flow_rt *flows = NULL;
    size_t n = 0;
    int rc = flows_build(cfg, &flows, &n, err);
    if (rc != ES_OK) {
        return rc;
    }
    pthread_rwlock_wrlock(&e->cfg_lock);
    /* Keep the schedule of flows that stay. */
    for (size_t i = 0; i < n; i++) {
        struct flow_rt *old = es__flow_find(e, flows[i].cfg->name);
        if (old) {
            flows[i].next_poll_ms = old->next_poll_ms;
        }
    }
    for (size_t i = 0; i < e->nworkers; i++) {
        es__conns_close(&e->workers[i].conns);
    }
    es__conns_close(&e->sched_conns);
    flows_free(e->flows, e->nflows);
    e->flows = flows;
    e->nflows = n;
    struct es__budget *budgets = budgets_build(cfg, e->budgets, e->nbudgets);
    es_free(e->budgets);
    e->budgets = budgets;
    e->nbudgets = cfg->nsystems;
    e->cfg = cfg;
    pthread_rwlock_unlock(&e->cfg_lock);
    es__wake(e);
    return ES_OK;
}

/* ---- accessors ---- */

const struct es_config *es_engine_config(const struct es_engine *e)
{
    return e->cfg;
}

struct es_store *es_engine_store(struct es_engine *e)
{
    return e->store;
}

void es_engine_health(struct es_engine *e, struct es_engine_health *out)
{
    memset(out, 0, sizeof *out);
    out->stopping = atomic_load(&e->stopping);
    out->running = atomic_load(&e->started) && !out->stopping;
    out->started_ms = e->started_ms;
    out->workers = e->nworkers;
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; i < e->nflows; i++) {
        struct es_flow_stats st;
        if (es_store_stats(e->store, e->flows[i].cfg->name, 0, &st, NULL) == ES_OK) {
            out->paused_flows += (size_t)st.paused;
            if (st.oldest_open_ms &&
                (!out->oldest_open_ms || st.oldest_open_ms < out->oldest_open_ms)) {
                out->oldest_open_ms = st.oldest_open_ms;
            }
        }
    }
    pthread_rwlock_unlock(&e->cfg_lock);
    pthread_mutex_lock(&e->health_lock);
    out->store_ok = e->store_ok;
    es_strlcpy(out->last_error, e->last_error, sizeof out->last_error);
    pthread_mutex_unlock(&e->health_lock);
}

int es_engine_stats(struct es_engine *e, struct es_flow_stats **out, size_t *n, struct es_err *err)
{
    *out = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&e->cfg_lock);
    struct es_flow_stats *st = es_xcalloc(e->nflows ? e->nflows : 1, sizeof *st);
    int rc = ES_OK;
    int64_t now = es_clock_wall_ms();
    for (size_t i = 0; i < e->nflows && rc == ES_OK; i++) {
        rc = es_store_stats(e->store, e->flows[i].cfg->name, now, &st[i], err);
    }
    size_t count = e->nflows;
    pthread_rwlock_unlock(&e->cfg_lock);
    if (rc != ES_OK) {
        es_free(st);
        return rc;
    }
    *out = st;
    *n = count;
    return ES_OK;
}

int es_engine_pause(struct es_engine *e, const char *flow, const char *reason, struct es_err *err)
{
    pthread_rwlock_rdlock(&e->cfg_lock);
    int known = flow && es__flow_find(e, flow) != NULL;
    pthread_rwlock_unlock(&e->cfg_lock);
    if (!known) {
        return es_err_set(err, ES_EINVAL, "no flow named '%s'", flow ? flow : "");
    }
    int rc = es_store_flow_pause(e->store, flow, reason, err);
    if (rc == ES_OK) {
        es_log(&(struct es_log_ctx){flow, NULL}, ES_LOG_INFO, "flow %s%s%s",
               reason ? "paused: " : "resumed", reason ? reason : "", "");
        es__wake(e);
    }
    return rc;
}

int es_engine_replay(struct es_engine *e, int64_t id, const char *note, struct es_err *err)
{
    int rc = es_store_replay(e->store, id, note, err);
    if (rc == ES_OK) {
        es__wake(e);
    }
    return rc;
}

int es_engine_resolve(struct es_engine *e, int64_t id, const char *note, struct es_err *err)
{
    return es_store_resolve(e->store, id, note, err);
}
