/* SPDX-License-Identifier: MIT */
/*
 * The engine: the threads that move changes through the journal.
 *
 *  - committer: the realtime trigger's group commit. es_engine_enqueue() queues a request
 *    and waits; the committer takes every queued request, writes them in ONE transaction
 *    (one fsync) and wakes all their callers with the result.
 *  - scheduler: runs poll triggers at their interval and batch triggers on their cron
 *    schedule (in the configured time zone). A poll enqueues each page of changes together
 *    with the new watermark; a batch enqueues each page together with the next page token,
 *    so a restart resumes at the page after the last committed one.
 *  - workers: lease a batch of one flow, map each change, write the whole batch to the
 *    target with one call, and commit every outcome with its xref and fingerprint.
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

struct flow_rt {
    const struct es_flow_cfg *cfg;
    const char *source_object, *target_object;
    struct es__mapping *map;
    int64_t next_poll_ms; /* 0 = at once */
    time_t next_batch;    /* 0 = not scheduled yet */
};

struct enq_req {
    struct es_change_in *items;
    char **payloads;
    char **versions;
    size_t n;
    int done, rc;
    struct es_err err;
    struct enq_req *next;
};

/* Connector instances of one thread, one per configured system (opened lazily). */
struct conns {
    struct es_conn **c;
    size_t n;
};

struct worker {
    struct es_engine *e;
    pthread_t th;
    size_t idx;
    struct conns conns;
    unsigned seed;
    int started;
};

struct es_engine {
    const struct es_config *cfg;
    struct es_engine_opts opts;
    struct es_store *store;
    pthread_rwlock_t cfg_lock;
    struct flow_rt *flows;
    size_t nflows;

    pthread_mutex_t q_lock;
    pthread_cond_t q_cond, q_done;
    struct enq_req *q_head, *q_tail;
    int committer_stop, committer_running;
    pthread_t committer;

    pthread_t scheduler;
    int scheduler_running;
    struct conns sched_conns;
    struct worker *workers;
    size_t nworkers;

    pthread_mutex_t ctl_lock;
    pthread_cond_t ctl_cond;
    atomic_int stopping, triggers_done, started, stopped;
    int64_t started_ms;

    pthread_mutex_t health_lock;
    int store_ok;
    char last_error[256];
};

static void note_error(struct es_engine *e, const struct es_err *err)
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
static void wake(struct es_engine *e)
{
    pthread_mutex_lock(&e->ctl_lock);
    pthread_cond_broadcast(&e->ctl_cond);
    pthread_mutex_unlock(&e->ctl_lock);
}

static void nap(struct es_engine *e, int64_t ms)
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

static void conns_close(struct conns *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        es_conn_close(cs->c[i]);
    }
    es_free(cs->c);
    cs->c = NULL;
    cs->n = 0;
}

/* The instance of system idx for this thread. Called under the config read lock. */
static struct es_conn *conn_get(struct es_engine *e, struct conns *cs, int idx, struct es_err *err)
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
    if (!cs->c[idx]) {
        if (es_conn_open(&e->cfg->systems[idx], &cs->c[idx], err) != ES_OK) {
            cs->c[idx] = NULL;
            return NULL;
        }
    }
    return cs->c[idx];
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

static struct flow_rt *flow_find(struct es_engine *e, const char *name)
{
    for (size_t i = 0; i < e->nflows; i++) {
        if (strcmp(e->flows[i].cfg->name, name) == 0) {
            return &e->flows[i];
        }
    }
    return NULL;
}

/* ---- enqueue (triggers) ---- */

/* Turns records into changes; payload and computed version strings are owned by req. */
static void req_fill(struct enq_req *req, const char *flow, const struct es_batch *b)
{
    req->n = b->count;
    req->items = es_xcalloc(b->count ? b->count : 1, sizeof *req->items);
    req->payloads = es_xcalloc(b->count ? b->count : 1, sizeof *req->payloads);
    req->versions = es_xcalloc(b->count ? b->count : 1, sizeof *req->versions);
    for (size_t i = 0; i < b->count; i++) {
        const struct es_record *r = &b->items[i];
        struct es_change_in *c = &req->items[i];
        c->flow = flow;
        c->key = r->key;
        c->deleted = r->deleted;
        if (r->data) {
            req->payloads[i] = json_dumps(r->data, JSON_COMPACT | JSON_ENCODE_ANY);
            c->payload = req->payloads[i];
            c->payload_len = c->payload ? strlen(c->payload) : 0;
        }
        if (r->version && *r->version) {
            c->version = r->version;
        } else {
            char h[17];
            es_engine_json_hash(r->data, h);
            req->versions[i] = es_xasprintf("%s%s", r->deleted ? "deleted-" : "", h);
            c->version = req->versions[i];
        }
    }
}

static void req_release(struct enq_req *req)
{
    for (size_t i = 0; i < req->n; i++) {
        free(req->payloads[i]); /* checksrc: ok (jansson allocates with malloc) */
        es_free(req->versions[i]);
    }
    es_free(req->payloads);
    es_free(req->versions);
    es_free(req->items);
}

static void *committer_main(void *arg)
{
    struct es_engine *e = arg;
    pthread_mutex_lock(&e->q_lock);
    for (;;) {
        while (!e->q_head && !e->committer_stop) {
            pthread_cond_wait(&e->q_cond, &e->q_lock);
        }
        if (!e->q_head) {
            break;
        }
        struct enq_req *list = e->q_head;
        e->q_head = e->q_tail = NULL;
        pthread_mutex_unlock(&e->q_lock);

        size_t total = 0;
        for (struct enq_req *r = list; r; r = r->next) {
            total += r->n;
        }
        struct es_change_in *all = es_xcalloc(total ? total : 1, sizeof *all);
        size_t k = 0;
        for (struct enq_req *r = list; r; r = r->next) {
            memcpy(all + k, r->items, r->n * sizeof *all);
            k += r->n;
        }
        struct es_err err;
        es_err_clear(&err);
        int rc = es_store_enqueue(e->store, all, total, NULL, 0, NULL, &err);
        es_free(all);
        note_error(e, rc == ES_OK ? NULL : &err);

        pthread_mutex_lock(&e->q_lock);
        for (struct enq_req *r = list; r; r = r->next) {
            r->rc = rc;
            r->err = err;
            r->done = 1;
        }
        pthread_cond_broadcast(&e->q_done);
        if (rc == ES_OK) {
            wake(e);
        }
    }
    pthread_mutex_unlock(&e->q_lock);
    return NULL;
}

int es_engine_enqueue(struct es_engine *e, const char *flow, const struct es_batch *records,
                      struct es_err *err)
{
    pthread_rwlock_rdlock(&e->cfg_lock);
    struct flow_rt *rt = flow ? flow_find(e, flow) : NULL;
    if (!rt || !rt->cfg->enabled) {
        pthread_rwlock_unlock(&e->cfg_lock);
        return es_err_set(err, ES_EINVAL, "no enabled flow named '%s'", flow ? flow : "");
    }
    const char *name = rt->cfg->name;
    struct enq_req req;
    memset(&req, 0, sizeof req);
    req_fill(&req, name, records);
    int rc;
    if (req.n == 0) {
        rc = ES_OK;
    } else {
        pthread_mutex_lock(&e->q_lock);
        if (!e->committer_running) {
            pthread_mutex_unlock(&e->q_lock);
            /* Not started (tools, tests): commit directly. */
            rc = es_store_enqueue(e->store, req.items, req.n, NULL, 0, NULL, err);
        } else {
            if (e->q_tail) {
                e->q_tail->next = &req;
            } else {
                e->q_head = &req;
            }
            e->q_tail = &req;
            pthread_cond_signal(&e->q_cond);
            while (!req.done) {
                pthread_cond_wait(&e->q_done, &e->q_lock);
            }
            pthread_mutex_unlock(&e->q_lock);
            rc = req.rc;
            if (rc != ES_OK && err) {
                es_err_set(err, req.err.code, "%s", req.err.msg);
            }
        }
    }
    req_release(&req);
    pthread_rwlock_unlock(&e->cfg_lock);
    return rc;
}

/* Enqueues one page read by a trigger with its cursors, in one transaction. */
static int enqueue_page(struct es_engine *e, const char *flow, const struct es_batch *b,
                        const struct es_cursor_in *cur, size_t ncur, struct es_err *err)
{
    struct enq_req req;
    memset(&req, 0, sizeof req);
    req_fill(&req, flow, b);
    int rc = es_store_enqueue(e->store, req.items, req.n, cur, ncur, NULL, err);
    req_release(&req);
    if (rc == ES_OK && b->count) {
        wake(e);
    }
    return rc;
}

/* ---- triggers ---- */

static void run_poll(struct es_engine *e, struct flow_rt *rt)
{
    const struct es_flow_cfg *f = rt->cfg;
    struct es_log_ctx lc = {f->name, f->from};
    struct es_err err;
    es_err_clear(&err);
    struct es_conn *c = conn_get(e, &e->sched_conns, f->from_idx, &err);
    if (!c) {
        es_log_err(&lc, ES_LOG_ERROR, &err);
        return;
    }
    size_t limit = (size_t)f->batch_size;
    for (int page = 0; page < 1000 && !atomic_load(&e->stopping); page++) {
        char *wm = NULL;
        es_err_clear(&err);
        if (es_store_cursor_get(e->store, f->name, "watermark", &wm, &err) != ES_OK) {
            es_log_err(&lc, ES_LOG_ERROR, &err);
            note_error(e, &err);
            return;
        }
        struct es_batch b;
        es_batch_init(&b);
        int rc = es_conn_read_changes(c, rt->source_object, wm, limit, &b, &err);
        if (rc == ES_OK) {
            struct es_cursor_in cur = {f->name, "watermark", b.watermark ? b.watermark : wm};
            rc = enqueue_page(e, f->name, &b, &cur, 1, &err);
            if (rc != ES_OK) {
                note_error(e, &err);
            } else if (b.count) {
                es_log(&lc, ES_LOG_DEBUG, "poll: %zu changes, watermark %s", b.count,
                       cur.value ? cur.value : "-");
            }
        }
        size_t got = b.count;
        int same = (b.watermark && wm && strcmp(b.watermark, wm) == 0);
        es_batch_release(&b);
        es_free(wm);
        if (rc != ES_OK) {
            es_log_err(&lc, ES_LOG_WARN, &err);
            return;
        }
        if (got < limit || same) {
            return;
        }
    }
}

static void run_batch(struct es_engine *e, struct flow_rt *rt, int64_t now_ms)
{
    const struct es_flow_cfg *f = rt->cfg;
    struct es_log_ctx lc = {f->name, f->from};
    struct es_err err;
    es_err_clear(&err);
    struct es_conn *c = conn_get(e, &e->sched_conns, f->from_idx, &err);
    if (!c) {
        es_log_err(&lc, ES_LOG_ERROR, &err);
        return;
    }
    size_t limit = (size_t)f->batch_size;
    char *page = NULL;
    if (es_store_cursor_get(e->store, f->name, "page", &page, &err) != ES_OK) {
        es_log_err(&lc, ES_LOG_ERROR, &err);
        return;
    }
    if (!page) {
        es_log(&lc, ES_LOG_INFO, "batch: starting a full read");
    } else {
        es_log(&lc, ES_LOG_INFO, "batch: resuming at page '%s'", page);
    }
    size_t total = 0;
    while (!atomic_load(&e->stopping)) {
        struct es_batch b;
        es_batch_init(&b);
        es_err_clear(&err);
        int rc =
            es_conn_read_page(c, rt->source_object, page && *page ? page : NULL, limit, &b, &err);
        if (rc == ES_OK) {
            char when[24];
            snprintf(when, sizeof when, "%" PRId64, now_ms);
            /* The page after this one, committed with this page's changes: a restart
             * resumes there. An empty token marks "first page" of a started run. */
            struct es_cursor_in cur[2] = {{f->name, "page", b.next_page ? b.next_page : NULL},
                                          {f->name, "batch_last", when}};
            rc = enqueue_page(e, f->name, &b, cur, b.next_page ? 1 : 2, &err);
        }
        total += b.count;
        int last = rc == ES_OK && !b.next_page;
        es_free(page);
        page = (rc == ES_OK && b.next_page) ? es_xstrdup(b.next_page) : NULL;
        es_batch_release(&b);
        if (rc != ES_OK) {
            es_log_err(&lc, ES_LOG_WARN, &err);
            note_error(e, &err);
            break;
        }
        if (last) {
            es_log(&lc, ES_LOG_INFO, "batch: done, %zu records read", total);
            break;
        }
    }
    es_free(page);
}

static void *scheduler_main(void *arg)
{
    struct es_engine *e = arg;
    int first = 1;
    while (!atomic_load(&e->stopping)) {
        pthread_rwlock_rdlock(&e->cfg_lock);
        int64_t now = es_clock_wall_ms();
        for (size_t i = 0; i < e->nflows && !atomic_load(&e->stopping); i++) {
            struct flow_rt *rt = &e->flows[i];
            const struct es_trigger_cfg *t = &rt->cfg->trigger;
            if (!rt->cfg->enabled) {
                continue;
            }
            if (t->poll_ms > 0 && now >= rt->next_poll_ms) {
                run_poll(e, rt);
                rt->next_poll_ms = es_clock_wall_ms() + t->poll_ms;
            }
            if (t->batch) {
                char *page = NULL;
                struct es_err err;
                es_err_clear(&err);
                if (es_store_cursor_get(e->store, rt->cfg->name, "page", &page, &err) != ES_OK) {
                    note_error(e, &err);
                    continue;
                }
                int resume = page != NULL;
                es_free(page);
                if (!rt->next_batch) {
                    rt->next_batch = es_cron_next(&t->cron, (time_t)(now / 1000), e->cfg->timezone);
                }
                int due = rt->next_batch > 0 && (time_t)(now / 1000) >= rt->next_batch;
                if (resume || due || e->opts.once) {
                    if (!resume) {
                        /* Mark the run as started: a crash before the first page is
                         * committed still resumes it. */
                        if (es_store_cursor_set(e->store, rt->cfg->name, "page", "", &err) !=
                            ES_OK) {
                            note_error(e, &err);
                            continue;
                        }
                    }
                    run_batch(e, rt, now);
                    rt->next_batch = es_cron_next(&t->cron, (time_t)(es_clock_wall_ms() / 1000),
                                                  e->cfg->timezone);
                }
            }
        }
        pthread_rwlock_unlock(&e->cfg_lock);
        if (first || e->opts.once) {
            first = 0;
            atomic_store(&e->triggers_done, 1);
            wake(e);
        }
        if (e->opts.once) {
            break;
        }
        nap(e, e->opts.tick_ms);
    }
    atomic_store(&e->triggers_done, 1);
    return NULL;
}

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
        note_error(e, &err);
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
    struct es_conn *conn = conn_get(e, &w->conns, f->to_idx, &err);
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
        note_error(e, &err);
    } else {
        note_error(e, NULL);
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

static void *worker_main(void *arg)
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
            wake(e);
            break;
        }
        if (!did) {
            nap(e, e->opts.tick_ms);
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
    e->store_ok = 1;
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
    if (pthread_create(&e->committer, NULL, committer_main, e) != 0) {
        return es_err_set(err, ES_EINTERNAL, "cannot start the committer thread");
    }
    pthread_mutex_lock(&e->q_lock);
    e->committer_running = 1;
    pthread_mutex_unlock(&e->q_lock);
    if (!e->opts.no_triggers) {
        if (pthread_create(&e->scheduler, NULL, scheduler_main, e) != 0) {
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
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
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
    wake(e);
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
    wake(e);
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
    pthread_mutex_lock(&e->q_lock);
    int had = e->committer_running;
    e->committer_stop = 1;
    pthread_cond_signal(&e->q_cond);
    pthread_mutex_unlock(&e->q_lock);
    if (had) {
        pthread_join(e->committer, NULL);
    }
    for (size_t i = 0; i < e->nworkers; i++) {
        conns_close(&e->workers[i].conns);
    }
    conns_close(&e->sched_conns);
    es_free(e->workers);
    flows_free(e->flows, e->nflows);
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
        struct flow_rt *old = flow_find(e, flows[i].cfg->name);
        if (old) {
            flows[i].next_poll_ms = old->next_poll_ms;
        }
    }
    for (size_t i = 0; i < e->nworkers; i++) {
        conns_close(&e->workers[i].conns);
    }
    conns_close(&e->sched_conns);
    flows_free(e->flows, e->nflows);
    e->flows = flows;
    e->nflows = n;
    e->cfg = cfg;
    pthread_rwlock_unlock(&e->cfg_lock);
    wake(e);
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
    int known = flow && flow_find(e, flow) != NULL;
    pthread_rwlock_unlock(&e->cfg_lock);
    if (!known) {
        return es_err_set(err, ES_EINVAL, "no flow named '%s'", flow ? flow : "");
    }
    int rc = es_store_flow_pause(e->store, flow, reason, err);
    if (rc == ES_OK) {
        es_log(&(struct es_log_ctx){flow, NULL}, ES_LOG_INFO, "flow %s%s%s",
               reason ? "paused: " : "resumed", reason ? reason : "", "");
        wake(e);
    }
    return rc;
}

int es_engine_replay(struct es_engine *e, int64_t id, const char *note, struct es_err *err)
{
    int rc = es_store_replay(e->store, id, note, err);
    if (rc == ES_OK) {
        wake(e);
    }
    return rc;
}

int es_engine_resolve(struct es_engine *e, int64_t id, const char *note, struct es_err *err)
{
    return es_store_resolve(e->store, id, note, err);
}
