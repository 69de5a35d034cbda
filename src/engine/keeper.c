/* SPDX-License-Identifier: MIT */
/*
 * The lease keeper: a thread that renews the leases of batches still in a worker's hands.
 *
 * A lease is what lets another worker (or the next process after a crash) take over a batch
 * whose worker died. But a live worker can hold a batch longer than the lease: a slow ERP
 * answering 200 creates, a connector timeout of several minutes. Without renewal its lease
 * expires, a second worker takes the same changes and writes them again while the first is
 * still writing (idempotent by external id, but twice the load on a struggling system, and
 * each round counts an attempt). So every worker registers the token of the batch it holds,
 * and this thread extends each registered lease every lease_ms / 3 to now + lease_ms. A
 * crashed process renews nothing, so its leases still expire after at most lease_ms.
 */
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/internal.h"

void es__keeper_hold(struct es_engine *e, uint64_t token)
{
    struct es__keeper *k = &e->keeper;
    pthread_mutex_lock(&k->lock);
    ES_GROW(k->tokens, k->cap, k->n + 1);
    k->tokens[k->n++] = token;
    pthread_mutex_unlock(&k->lock);
}

void es__keeper_release(struct es_engine *e, uint64_t token)
{
    struct es__keeper *k = &e->keeper;
    pthread_mutex_lock(&k->lock);
    for (size_t i = 0; i < k->n; i++) {
        if (k->tokens[i] == token) {
            k->tokens[i] = k->tokens[--k->n];
            break;
        }
    }
    pthread_mutex_unlock(&k->lock);
}

/* Waits up to ms or until stop; returns 1 when asked to stop. Caller holds k->lock. */
static int keeper_wait(struct es__keeper *k, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!k->stop) {
        if (pthread_cond_timedwait(&k->cond, &k->lock, &ts) != 0) {
            break;
        }
    }
    return k->stop;
}

static void *keeper_main(void *arg)
{
    struct es_engine *e = arg;
    struct es__keeper *k = &e->keeper;
    int64_t period = e->opts.lease_ms / 3 > 10 ? e->opts.lease_ms / 3 : 10;
    uint64_t *held = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&k->lock);
    while (!keeper_wait(k, period)) {
        size_t n = k->n;
        ES_GROW(held, cap, n ? n : 1);
        if (n) {
            memcpy(held, k->tokens, n * sizeof *held);
        }
        pthread_mutex_unlock(&k->lock);
        for (size_t i = 0; i < n; i++) {
            struct es_err err;
            es_err_clear(&err);
            int rc = es_store_renew(e->store, held[i], es_clock_wall_ms() + e->opts.lease_ms, &err);
            if (rc == ES_ENOTFOUND) {
                /* Completed meanwhile, or expired before we came: the store's stale-lease rule
                 * decides the outcome; nothing to do here. */
                es_log(NULL, ES_LOG_DEBUG, "lease %" PRIu64 ": %s", held[i], err.msg);
            } else if (rc != ES_OK) {
                es_log_err(NULL, ES_LOG_WARN, &err);
                es__note_error(e, &err);
            }
        }
        pthread_mutex_lock(&k->lock);
    }
    pthread_mutex_unlock(&k->lock);
    es_free(held);
    return NULL;
}

int es__keeper_start(struct es_engine *e, struct es_err *err)
{
    struct es__keeper *k = &e->keeper;
    k->stop = 0;
    if (pthread_create(&k->th, NULL, keeper_main, e) != 0) {
        return es_err_set(err, ES_EINTERNAL, "cannot start the lease keeper thread");
    }
    k->running = 1;
    return ES_OK;
}

void es__keeper_stop(struct es_engine *e)
{
    struct es__keeper *k = &e->keeper;
    if (!k->running) {
        return;
    }
    pthread_mutex_lock(&k->lock);
    k->stop = 1;
    pthread_cond_broadcast(&k->cond);
    pthread_mutex_unlock(&k->lock);
    pthread_join(k->th, NULL);
    k->running = 0;
}
