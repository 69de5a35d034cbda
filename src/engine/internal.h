/* SPDX-License-Identifier: MIT */
/*
 * What the files of src/engine share. Not a public header.
 *
 * The mapping call sits behind es__mapping_*: the one place that changes when the mapping
 * engine (src/map) is linked in.
 */
#ifndef ES_ENGINE_INTERNAL_H
#define ES_ENGINE_INTERNAL_H

#include <jansson.h>

#include "core/config.h"
#include "core/diag.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "connectors/connector.h"
#include "core/err.h"
#include "engine/engine.h"
#include "store/store.h"

struct es__mapping;

/* Lookup of another entity's id in the flow's target (xref('customer', id) in a mapping). */
typedef int (*es__xref_fn)(void *ud, const char *entity, const char *source_value, char *out,
                           size_t cap);

/* Compiles flow->map. Errors go to diags; returns ES_OK or ES_ECONFIG.
 * OUT: *out, es__mapping_free(). */
int es__mapping_new(const struct es_config *cfg, const struct es_flow_cfg *flow,
                    struct es__mapping **out, struct es_diags *diags);
void es__mapping_free(struct es__mapping *m);
/* Maps one record. OUT: *out (json_decref) on ES_OK; on failure err names the field and the
 * code is classified (ES_EVALIDATION for a bad record, ES_ENOTFOUND for a missing xref). */
int es__mapping_apply(const struct es__mapping *m, const json_t *in, json_t **out, es__xref_fn xref,
                      void *ud, struct es_err *err);

/* ---- the engine's shared state (engine.c owns its lifecycle) ---- */

struct flow_rt {
    const struct es_flow_cfg *cfg;
    const char *source_object, *target_object;
    struct es__mapping *map;
    int64_t next_poll_ms; /* 0 = at once */
    time_t next_batch;    /* 0 = not scheduled yet */
};

struct enq_req {
    struct es_change_in *items;
    char **payloads; /* per item: owned text, or NULL when borrowed from an earlier item */
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

/* The remote API budget of one system as last seen by any of its connector instances
 * (written by the thread that owns the instance, read by /metrics without locks). */
struct es__budget {
    char system[64];
    atomic_long used, max; /* -1 = unknown */
};

/* The lease keeper (keeper.c): tokens of the batches workers hold now. */
struct es__keeper {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t *tokens;
    size_t n, cap;
    pthread_t th;
    int running, stop;
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
    int64_t next_prune_ms; /* retention: when the scheduler prunes the journal next (0 = now) */
    struct conns sched_conns;
    struct worker *workers;
    size_t nworkers;

    pthread_mutex_t ctl_lock;
    pthread_cond_t ctl_cond;
    atomic_int stopping, triggers_done, started, stopped;
    int64_t started_ms;

    /* Per configured system (config order); replaced under the cfg writer lock on reload. */
    struct es__budget *budgets;
    size_t nbudgets;

    struct es__keeper keeper;

    pthread_mutex_t health_lock;
    int store_ok;
    char last_error[256];
};

/* engine.c: shared helpers. */
/* Records the last store/engine error for /healthz (NULL = the last call succeeded). */
void es__note_error(struct es_engine *e, const struct es_err *err);
/* Wakes sleeping workers and the scheduler (new work, stop, resume). */
void es__wake(struct es_engine *e);
/* Sleeps up to ms, or until es__wake / stop. */
void es__nap(struct es_engine *e, int64_t ms);
void es__conns_close(struct conns *cs);
/* The instance of system idx for this thread. Called under the config read lock. */
struct es_conn *es__conn_get(struct es_engine *e, struct conns *cs, int idx, struct es_err *err);
/* Publishes the API budget instance c (of system idx) last reported, for es_engine_budget().
 * Call from the thread that owns c, after its calls, under the config read lock. */
void es__budget_note(struct es_engine *e, int idx, const struct es_conn *c);
/* The running flow named name, or NULL. Called under the config read lock. */
struct flow_rt *es__flow_find(struct es_engine *e, const char *name);

/* enqueue.c */
void *es__committer_main(void *arg);
/* Enqueues one page read by a trigger with its cursors, in one transaction. */
int es__enqueue_page(struct es_engine *e, const char *flow, const struct es_batch *b,
                     const struct es_cursor_in *cur, size_t ncur, struct es_err *err);
/* triggers.c */
void *es__scheduler_main(void *arg);
/* keeper.c: a worker holds (after its lease) and releases (after completing) its batch's
 * lease token; the keeper thread renews held leases every lease_ms / 3. */
void es__keeper_hold(struct es_engine *e, uint64_t token);
void es__keeper_release(struct es_engine *e, uint64_t token);
int es__keeper_start(struct es_engine *e, struct es_err *err);
/* Stops and joins the keeper (idempotent). */
void es__keeper_stop(struct es_engine *e);
/* worker.c */
void *es__worker_main(void *arg);

#endif
