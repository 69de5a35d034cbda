/* SPDX-License-Identifier: MIT */
/*
 * The scheduler thread: poll triggers at their interval, batch triggers on their cron
 * schedule (in the configured time zone). A poll enqueues each page with the new watermark;
 * a batch enqueues each page with the next page token, so a restart resumes after the last
 * committed page. Once an hour it also prunes the journal to the configured retention.
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

/* ---- triggers ---- */

static void run_poll(struct es_engine *e, struct flow_rt *rt)
{
    const struct es_flow_cfg *f = rt->cfg;
    struct es_log_ctx lc = {f->name, f->from};
    struct es_err err;
    es_err_clear(&err);
    struct es_conn *c = es__conn_get(e, &e->sched_conns, f->from_idx, &err);
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
            es__note_error(e, &err);
            return;
        }
        struct es_batch b;
        es_batch_init(&b);
        int rc = es_conn_read_changes(c, rt->source_object, wm, limit, &b, &err);
        es__budget_note(e, f->from_idx, c);
        if (rc == ES_OK) {
            struct es_cursor_in cur = {f->name, "watermark", b.watermark ? b.watermark : wm};
            rc = es__enqueue_page(e, f->name, &b, &cur, 1, &err);
            if (rc != ES_OK) {
                es__note_error(e, &err);
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
    struct es_conn *c = es__conn_get(e, &e->sched_conns, f->from_idx, &err);
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
        es__budget_note(e, f->from_idx, c);
        if (rc == ES_OK) {
            char when[24];
            snprintf(when, sizeof when, "%" PRId64, now_ms);
            /* The page after this one, committed with this page's changes: a restart
             * resumes there. An empty token marks "first page" of a started run. */
            struct es_cursor_in cur[2] = {{f->name, "page", b.next_page ? b.next_page : NULL},
                                          {f->name, "batch_last", when}};
            rc = es__enqueue_page(e, f->name, &b, cur, b.next_page ? 1 : 2, &err);
        }
        total += b.count;
        int last = rc == ES_OK && !b.next_page;
        es_free(page);
        page = (rc == ES_OK && b.next_page) ? es_xstrdup(b.next_page) : NULL;
        es_batch_release(&b);
        if (rc != ES_OK) {
            es_log_err(&lc, ES_LOG_WARN, &err);
            es__note_error(e, &err);
            break;
        }
        if (last) {
            es_log(&lc, ES_LOG_INFO, "batch: done, %zu records read", total);
            break;
        }
    }
    es_free(page);
}

#define PRUNE_EVERY_MS 3600000

/* Retention: done changes and audit rows older than cfg->retention go, at most hourly. */
static void run_prune(struct es_engine *e, int64_t now, int64_t retention_ms)
{
    if (retention_ms <= 0 || now < e->next_prune_ms) {
        return;
    }
    e->next_prune_ms = now + PRUNE_EVERY_MS;
    struct es_log_ctx lc = {NULL, NULL};
    struct es_err err;
    es_err_clear(&err);
    size_t changes = 0, audits = 0;
    if (es_store_prune(e->store, now - retention_ms, &changes, &audits, &err) != ES_OK) {
        es_log_err(&lc, ES_LOG_ERROR, &err);
        es__note_error(e, &err);
    } else if (changes + audits > 0) {
        es_log(&lc, ES_LOG_INFO, "pruned %zu done changes and %zu audit rows (retention)", changes,
               audits);
    }
}

void *es__scheduler_main(void *arg)
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
                    es__note_error(e, &err);
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
                            es__note_error(e, &err);
                            continue;
                        }
                    }
                    run_batch(e, rt, now);
                    rt->next_batch = es_cron_next(&t->cron, (time_t)(es_clock_wall_ms() / 1000),
                                                  e->cfg->timezone);
                }
            }
        }
        int64_t retention_ms = e->cfg->retention_ms;
        pthread_rwlock_unlock(&e->cfg_lock);
        run_prune(e, now, retention_ms); /* outside the config lock: a reload need not wait */
        if (first || e->opts.once) {
            first = 0;
            atomic_store(&e->triggers_done, 1);
            es__wake(e);
        }
        if (e->opts.once) {
            break;
        }
        es__nap(e, e->opts.tick_ms);
    }
    atomic_store(&e->triggers_done, 1);
    return NULL;
}
