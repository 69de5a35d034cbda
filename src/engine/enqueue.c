/* SPDX-License-Identifier: MIT */
/*
 * The realtime trigger's group commit: es_engine_enqueue() queues a request and waits; the
 * committer thread writes every queued request in ONE transaction (one fsync) and wakes all
 * their callers with the result. Triggers enqueue their pages with cursors directly.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "engine/internal.h"

/* ---- enqueue (triggers) ---- */

static size_t part_count(const struct es_engine_part *p)
{
    return (p->records ? p->records->count : 0) + (p->changes ? p->nchanges : 0);
}

/* Turns the records of every part into changes; payload and computed version strings are
 * owned by req. Parts that share one batch (and changes) share its serialised payloads. */
static void req_fill(struct enq_req *req, const struct es_engine_part *parts, size_t nparts)
{
    size_t n = 0;
    for (size_t p = 0; p < nparts; p++) {
        n += part_count(&parts[p]);
    }
    req->n = n;
    req->items = es_xcalloc(n ? n : 1, sizeof *req->items);
    req->payloads = es_xcalloc(n ? n : 1, sizeof *req->payloads);
    req->versions = es_xcalloc(n ? n : 1, sizeof *req->versions);
    size_t k = 0;
    for (size_t p = 0; p < nparts; p++) {
        const struct es_batch *b = parts[p].records;
        size_t count = part_count(&parts[p]);
        if (count == 0) {
            continue;
        }
        /* An earlier part with the same records and changes: copy its changes, renamed. */
        size_t same = 0, first = SIZE_MAX;
        for (size_t q = 0; q < p && first == SIZE_MAX; q++) {
            if (parts[q].records == b && parts[q].changes == parts[p].changes &&
                part_count(&parts[q]) == count) {
                first = same;
            }
            same += part_count(&parts[q]);
        }
        if (first != SIZE_MAX) {
            memcpy(req->items + k, req->items + first, count * sizeof *req->items);
            for (size_t i = 0; i < count; i++) {
                req->items[k + i].flow = parts[p].flow;
            }
            k += count;
            continue;
        }
        for (size_t i = 0; b && i < b->count; i++, k++) {
            const struct es_record *r = &b->items[i];
            es_engine_change_from_record(r, parts[p].flow, &req->items[k], &req->payloads[k],
                                         &req->versions[k]);
        }
        for (size_t i = 0; parts[p].changes && i < parts[p].nchanges; i++, k++) {
            req->items[k] = parts[p].changes[i];
            req->items[k].flow = parts[p].flow;
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

void *es__committer_main(void *arg)
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
        es__note_error(e, rc == ES_OK ? NULL : &err);

        pthread_mutex_lock(&e->q_lock);
        for (struct enq_req *r = list; r; r = r->next) {
            r->rc = rc;
            r->err = err;
            r->done = 1;
        }
        pthread_cond_broadcast(&e->q_done);
        if (rc == ES_OK) {
            es__wake(e);
        }
    }
    pthread_mutex_unlock(&e->q_lock);
    return NULL;
}

int es_engine_enqueue_multi(struct es_engine *e, const struct es_engine_part *parts, size_t nparts,
                            struct es_err *err)
{
    pthread_rwlock_rdlock(&e->cfg_lock);
    /* The flow names of the running config (they outlive the call: a reload waits for the
     * read lock), checked before anything is queued. */
    struct es_engine_part pstack[8];
    struct es_engine_part *mine = nparts <= 8 ? pstack : es_xmalloc(nparts * sizeof *mine);
    for (size_t p = 0; p < nparts; p++) {
        const char *flow = parts[p].flow;
        struct flow_rt *rt = flow ? es__flow_find(e, flow) : NULL;
        if (!rt || !rt->cfg->enabled) {
            pthread_rwlock_unlock(&e->cfg_lock);
            if (mine != pstack) {
                es_free(mine);
            }
            return es_err_set(err, ES_EINVAL, "no enabled flow named '%s'", flow ? flow : "");
        }
        for (size_t i = 0; parts[p].changes && i < parts[p].nchanges; i++) {
            if (!parts[p].changes[i].key || !parts[p].changes[i].version) {
                pthread_rwlock_unlock(&e->cfg_lock);
                if (mine != pstack) {
                    es_free(mine);
                }
                return es_err_set(err, ES_EINVAL,
                                  "change %zu of flow %s: key and version are "
                                  "required",
                                  i, flow);
            }
        }
        mine[p] = parts[p];
        mine[p].flow = rt->cfg->name;
    }
    struct enq_req req;
    memset(&req, 0, sizeof req);
    req_fill(&req, mine, nparts);
    if (mine != pstack) {
        es_free(mine);
    }
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

int es_engine_enqueue(struct es_engine *e, const char *flow, const struct es_batch *records,
                      struct es_err *err)
{
    struct es_engine_part part = {flow, records, NULL, 0};
    return es_engine_enqueue_multi(e, &part, 1, err);
}

/* Enqueues one page read by a trigger with its cursors, in one transaction. */
int es__enqueue_page(struct es_engine *e, const char *flow, const struct es_batch *b,
                     const struct es_cursor_in *cur, size_t ncur, struct es_err *err)
{
    struct enq_req req;
    memset(&req, 0, sizeof req);
    struct es_engine_part part = {flow, b, NULL, 0};
    req_fill(&req, &part, 1);
    int rc = es_store_enqueue(e->store, req.items, req.n, cur, ncur, NULL, err);
    req_release(&req);
    if (rc == ES_OK && b->count) {
        es__wake(e);
    }
    return rc;
}

void es_engine_change_from_record(const struct es_record *r, const char *flow,
                                  struct es_change_in *c, char **payload, char **version)
{
    c->flow = flow;
    c->key = r->key;
    c->deleted = r->deleted;
    *payload = NULL;
    *version = NULL;
    if (r->data) {
        *payload = json_dumps(r->data, JSON_COMPACT | JSON_ENCODE_ANY);
        c->payload = *payload;
        c->payload_len = c->payload ? strlen(c->payload) : 0;
    }
    if (r->version && *r->version) {
        c->version = r->version;
    } else {
        char h[17];
        es_engine_json_hash(r->data, h);
        *version = es_xasprintf("%s%s", r->deleted ? "deleted-" : "", h);
        c->version = *version;
    }
}
