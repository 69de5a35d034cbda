/* SPDX-License-Identifier: MIT */
/*
 * The engine end to end in one process: memory connectors as source and target, a real
 * SQLite journal in a temporary directory, the real mapping engine. Covers the outcome
 * policy (retry/review/dead/pause), poll and batch triggers, the echo/unchanged check, and
 * the realtime enqueue with concurrent callers sharing group commits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "connectors/memory.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "engine_test.h"

static char g_dir[64];

static int group_setup(void **state)
{
    (void)state;
    et_tmpdir(g_dir, sizeof g_dir, "es_engine");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return et_rmdir(g_dir);
}

/* A config with one flow src -> dst. extra_dst: options of the target system. */
static struct es_config *config(const char *db, const char *trigger, const char *dst_options)
{
    char *text = es_xasprintf("store: sqlite:%s/%s\n"
                              "workers: 2\n"
                              "systems:\n"
                              "  src: {connector: memory}\n"
                              "  dst: {connector: memory, options: {%s}}\n"
                              "entities:\n"
                              "  item: {objects: {src: Src, dst: Dst}}\n"
                              "flows:\n"
                              "  items:\n"
                              "    entity: item\n"
                              "    from: src\n"
                              "    to: dst\n"
                              "    trigger: %s\n"
                              "    batch_size: 7\n"
                              "    external_id: src_key\n"
                              "    retry: {max_attempts: 20, base: 1ms, max: 5ms}\n"
                              "    map:\n"
                              "      src_key: {from: key, required: true}\n"
                              "      name: {from: name, required: true}\n"
                              "      v: {from: v}\n",
                              g_dir, db, dst_options, trigger);
    struct es_config *cfg = et_parse("test.yaml", text);
    es_free(text);
    return cfg;
}

static void seed(int n, int v, int missing_name_every)
{
    for (int i = 0; i < n; i++) {
        char key[16], name[16];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(name, sizeof name, "n%d", i);
        json_t *d = json_pack("{s:s, s:i}", "key", key, "v", v);
        if (!(missing_name_every && i % missing_name_every == missing_name_every - 1)) {
            json_object_set_new(d, "name", json_string(name));
        }
        es_memory_put("Src", key, d);
        json_decref(d);
    }
}

static void run_once(const struct es_config *cfg)
{
    et_run_once(cfg);
}

static struct es_flow_stats flow_stats(const struct es_config *cfg)
{
    return et_stats(cfg, "items");
}

static void test_classify(void **state)
{
    (void)state;
    struct es_retry_cfg r = {.max_attempts = 5, .base_ms = 1000, .max_ms = 60000};
    struct es_err e;
    int64_t next = 0;
    es_err_clear(&e);
    e.code = ES_ETIMEOUT;
    assert_int_equal(es_engine_classify(&e, 1, &r, 0, 0.5, &next), ES_CHANGE_RETRY);
    assert_int_equal(next, 1000); /* base, jitter factor 1.0 at rnd 0.5 */
    assert_int_equal(es_engine_classify(&e, 3, &r, 0, 0.0, &next), ES_CHANGE_RETRY);
    assert_int_equal(next, 3200); /* 4 s - 20 % */
    assert_int_equal(es_engine_classify(&e, 5, &r, 0, 0.5, &next), ES_CHANGE_DEAD);
    r.max_attempts = 100;
    assert_int_equal(es_engine_classify(&e, 30, &r, 0, 0.5, &next), ES_CHANGE_RETRY);
    assert_int_equal(next, 60000); /* capped at max */
    e.code = ES_ERATELIMIT;
    e.retry_after = 90;
    assert_int_equal(es_engine_classify(&e, 1, &r, 10, 0.5, &next), ES_CHANGE_RETRY);
    assert_int_equal(next, 90010); /* the server's hint wins */
    const enum es_code review[] = {ES_EVALIDATION, ES_EREJECTED, ES_ECONFLICT, ES_ENOTFOUND,
                                   ES_EDUPLICATE};
    for (size_t i = 0; i < sizeof review / sizeof review[0]; i++) {
        e.code = review[i];
        assert_int_equal(es_engine_classify(&e, 1, &r, 0, 0.5, &next), ES_CHANGE_REVIEW);
    }
    e.code = ES_EAUTH;
    assert_int_equal(es_engine_classify(&e, 1, &r, 0, 0.5, &next), ES_CHANGE_PENDING);
    e.code = ES_EPOISON;
    assert_int_equal(es_engine_classify(&e, 1, &r, 0, 0.5, &next), ES_CHANGE_DEAD);
    e.code = ES_EINTERNAL;
    assert_int_equal(es_engine_classify(&e, 1, &r, 0, 0.5, &next), ES_CHANGE_DEAD);
}

static void test_hash(void **state)
{
    (void)state;
    json_t *a = json_pack("{s:i, s:s}", "a", 1, "b", "x");
    json_t *b = json_pack("{s:s, s:i}", "b", "x", "a", 1);
    json_t *c = json_pack("{s:s, s:i}", "b", "x", "a", 2);
    char ha[17], hb[17], hc[17];
    es_engine_json_hash(a, ha);
    es_engine_json_hash(b, hb);
    es_engine_json_hash(c, hc);
    assert_string_equal(ha, hb);
    assert_string_not_equal(ha, hc);
    assert_int_equal(strlen(ha), 16);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_poll_retry_review(void **state)
{
    (void)state;
    es_memory_reset();
    struct es_config *cfg = config("poll.db", "{poll: 1h}", "fail_every: 3");
    seed(30, 1, 10); /* k9, k19, k29 lack a required field */
    run_once(cfg);
    struct es_flow_stats st = flow_stats(cfg);
    assert_int_equal(st.enqueued, 30);
    assert_int_equal(st.count[ES_CHANGE_DONE], 27);
    assert_int_equal(st.count[ES_CHANGE_REVIEW], 3);
    assert_int_equal(
        st.count[ES_CHANGE_PENDING] + st.count[ES_CHANGE_LEASED] + st.count[ES_CHANGE_RETRY], 0);
    assert_true(st.outcomes[ES_CHANGE_RETRY] > 0); /* every third write failed once */
    assert_int_equal(es_memory_count("Dst"), 27);

    /* The review item names the field; after fixing the source the new version goes. */
    struct es_store *s = NULL;
    assert_int_equal(es_store_open(cfg->store, &s, NULL), ES_OK);
    struct es_change_filter f = {"items", ES_CHANGE_REVIEW, 0, 0};
    struct es_change *items = NULL;
    size_t n = 0;
    assert_int_equal(es_store_list(s, &f, &items, &n, NULL), ES_OK);
    assert_int_equal(n, 3);
    assert_int_equal(items[0].last_code, ES_EVALIDATION);
    assert_non_null(strstr(items[0].last_msg, "name"));
    char *tid = NULL;
    assert_int_equal(es_store_xref_lookup(s, "item", "src", "k0", "dst", &tid, NULL), ES_OK);
    json_t *rec = es_memory_get("Dst", tid);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "src_key")), "k0");
    json_decref(rec);
    es_free(tid);
    es_changes_free(items, n);
    es_store_close(s);

    /* Unchanged data under a new version: done without a write (fingerprint). */
    json_t *same = json_pack("{s:s, s:s, s:i}", "key", "k0", "name", "n0", "v", 1);
    es_memory_put("Src", "k0", same);
    json_decref(same);
    run_once(cfg);
    st = flow_stats(cfg);
    assert_int_equal(st.enqueued, 31);
    assert_int_equal(st.count[ES_CHANGE_DONE], 28);
    assert_int_equal(es_memory_count("Dst"), 27);
    assert_int_equal(es_store_open(cfg->store, &s, NULL), ES_OK);
    struct es_change_filter all = {"items", ES_CHANGE_DONE, 0, 1000};
    assert_int_equal(es_store_list(s, &all, &items, &n, NULL), ES_OK);
    int unchanged = 0;
    for (size_t i = 0; i < n; i++) {
        unchanged += items[i].note && strstr(items[i].note, "unchanged") != NULL;
    }
    assert_int_equal(unchanged, 1);
    es_changes_free(items, n);
    es_store_close(s);
    es_config_free(cfg);
}

/* A target slower than the lease: the keeper renews the batch's lease while the worker waits
 * for the write, so the other worker never takes the same changes (each written once, on the
 * first attempt). */
static void test_slow_target_keeps_lease(void **state)
{
    (void)state;
    es_memory_reset();
    struct es_config *cfg = config("slow.db", "{poll: 1h}", "write_delay_ms: 400");
    seed(14, 1, 0);
    struct es_engine_opts o = {.once = 1, .tick_ms = 5, .lease_ms = 150, .workers = 2};
    et_run(cfg, &o);
    struct es_flow_stats st = flow_stats(cfg);
    assert_int_equal(st.count[ES_CHANGE_DONE], 14);
    assert_int_equal(st.outcomes[ES_CHANGE_DONE], 14);
    assert_int_equal(es_memory_count("Dst"), 14);
    struct es_store *s = NULL;
    assert_int_equal(es_store_open(cfg->store, &s, NULL), ES_OK);
    struct es_change_filter f = {"items", ES_CHANGE_DONE, 0, 0};
    struct es_change *items = NULL;
    size_t n = 0;
    assert_int_equal(es_store_list(s, &f, &items, &n, NULL), ES_OK);
    assert_int_equal(n, 14);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(items[i].attempts, 1);
    }
    es_changes_free(items, n);
    es_store_close(s);
    es_config_free(cfg);
}

static void test_auth_pauses(void **state)
{
    (void)state;
    es_memory_reset();
    struct es_config *cfg = config("auth.db", "{poll: 1h}", "fail_every: 1, fail_code: auth");
    seed(5, 1, 0);
    run_once(cfg);
    struct es_flow_stats st = flow_stats(cfg);
    assert_int_equal(st.paused, 1);
    assert_non_null(strstr(st.pause_reason, "auth"));
    assert_int_equal(st.count[ES_CHANGE_PENDING], 5); /* given back, not lost */
    assert_int_equal(st.count[ES_CHANGE_DEAD] + st.count[ES_CHANGE_REVIEW], 0);
    assert_int_equal(es_memory_count("Dst"), 0);
    es_config_free(cfg);
}

static void test_target_unavailable_pauses(void **state)
{
    (void)state;
    es_memory_reset();
    /* The target cannot be opened (bad option): the changes are not the culprit, so they
     * stay pending and the flow is paused with the reason. */
    struct es_config *cfg = config("open.db", "{poll: 1h}", "fail_code: no_such_code");
    seed(4, 1, 0);
    run_once(cfg);
    struct es_flow_stats st = flow_stats(cfg);
    assert_int_equal(st.paused, 1);
    assert_non_null(strstr(st.pause_reason, "cannot open system dst"));
    assert_int_equal(st.count[ES_CHANGE_PENDING], 4);
    assert_int_equal(st.count[ES_CHANGE_DEAD] + st.count[ES_CHANGE_REVIEW], 0);
    es_config_free(cfg);
}

static void test_dead_after_retries(void **state)
{
    (void)state;
    es_memory_reset();
    struct es_config *cfg = config("dead.db", "{poll: 1h}", "fail_every: 1");
    seed(3, 1, 0);
    run_once(cfg);
    struct es_flow_stats st = flow_stats(cfg);
    assert_int_equal(st.count[ES_CHANGE_DEAD], 3);
    assert_int_equal(st.outcomes[ES_CHANGE_RETRY], 3 * 19);
    es_config_free(cfg);
}

static void test_batch_trigger(void **state)
{
    (void)state;
    es_memory_reset();
    struct es_config *cfg = config("batch.db", "{batch: \"0 2 * * *\"}", "");
    seed(25, 1, 0);
    run_once(cfg); /* --once runs the batch now */
    struct es_flow_stats st = flow_stats(cfg);
    assert_int_equal(st.enqueued, 25);
    assert_int_equal(st.count[ES_CHANGE_DONE], 25);
    struct es_store *s = NULL;
    assert_int_equal(es_store_open(cfg->store, &s, NULL), ES_OK);
    char *page = NULL, *last = NULL;
    assert_int_equal(es_store_cursor_get(s, "items", "page", &page, NULL), ES_OK);
    assert_null(page); /* finished: nothing to resume */
    assert_int_equal(es_store_cursor_get(s, "items", "batch_last", &last, NULL), ES_OK);
    assert_non_null(last);
    es_free(last);
    /* A run interrupted after page "14" resumes there (the memory connector's page token is
     * its sequence number): only the 11 records after it are read again, and they are known
     * changes (same versions), so they count as duplicates, not as new changes. */
    assert_int_equal(es_store_cursor_set(s, "items", "page", "14", NULL), ES_OK);
    es_store_close(s);
    run_once(cfg);
    st = flow_stats(cfg);
    assert_int_equal(st.enqueued, 25);
    assert_int_equal(st.duplicates, 11);
    es_config_free(cfg);
}

struct enq_arg {
    struct es_engine *e;
    int base;
};

static void *enqueue_thread(void *p)
{
    struct enq_arg *a = p;
    for (int i = 0; i < 40; i++) {
        struct es_batch b;
        es_batch_init(&b);
        char key[32];
        snprintf(key, sizeof key, "rt%d", a->base + i);
        es_batch_add(&b, key, "1", 0, json_pack("{s:s, s:s}", "key", key, "name", "x"));
        struct es_err err;
        es_err_clear(&err);
        assert_int_equal(es_engine_enqueue(a->e, "items", &b, &err), ES_OK);
        es_batch_release(&b);
    }
    return NULL;
}

static void test_realtime_group_commit(void **state)
{
    (void)state;
    es_memory_reset();
    struct es_config *cfg = config("rt.db", "{realtime: true}", "");
    struct es_engine_opts o = {.no_triggers = 1, .tick_ms = 5};
    struct es_engine *e = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_engine_new(cfg, &o, &e, &err), ES_OK);
    assert_int_equal(es_engine_start(e, &err), ES_OK);
    pthread_t th[6];
    struct enq_arg args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (struct enq_arg){e, i * 1000};
        assert_int_equal(pthread_create(&th[i], NULL, enqueue_thread, &args[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
    }
    /* Acknowledged means committed: every change is in the journal now. */
    struct es_flow_stats *st = NULL;
    size_t n = 0;
    assert_int_equal(es_engine_stats(e, &st, &n, &err), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(st[0].enqueued, 240);
    es_free(st);
    /* The same record again is one change (idempotent). */
    struct es_batch b;
    es_batch_init(&b);
    es_batch_add(&b, "rt0", "1", 0, json_pack("{s:s, s:s}", "key", "rt0", "name", "x"));
    assert_int_equal(es_engine_enqueue(e, "items", &b, &err), ES_OK);
    es_batch_release(&b);
    es_batch_init(&b);
    assert_int_equal(es_engine_enqueue(e, "nope", &b, &err), ES_EINVAL);
    /* Wait until the workers drained it (bounded). */
    for (int i = 0; i < 3000; i++) {
        assert_int_equal(es_engine_stats(e, &st, &n, &err), ES_OK);
        int64_t done = st[0].count[ES_CHANGE_DONE];
        es_free(st);
        if (done == 240) {
            break;
        }
        usleep(10000);
    }
    assert_int_equal(es_engine_stats(e, &st, &n, &err), ES_OK);
    assert_int_equal(st[0].count[ES_CHANGE_DONE], 240);
    assert_int_equal(st[0].duplicates, 1);
    es_free(st);
    struct es_engine_health h;
    es_engine_health(e, &h);
    assert_int_equal(h.running, 1);
    assert_int_equal(h.store_ok, 1);
    es_engine_request_stop(e);
    es_engine_wait(e);
    es_engine_free(e);
    assert_int_equal(es_memory_count("Dst"), 240);
    es_config_free(cfg);
}

/* Two flows read the same source object: one enqueue_multi commits both flows' changes in
 * one call, sharing the payload; a part naming an unknown or disabled flow enqueues nothing
 * at all. Not started: the engine commits directly. */
static void test_enqueue_multi(void **state)
{
    (void)state;
    char *text = es_xasprintf("store: sqlite:%s/multi.db\n"
                              "systems:\n"
                              "  src: {connector: memory}\n"
                              "  dst: {connector: memory}\n"
                              "entities:\n"
                              "  item: {objects: {src: Src, dst: Dst}}\n"
                              "flows:\n"
                              "  one: {entity: item, from: src, to: dst, trigger: {realtime: true},"
                              " map: {name: name}}\n"
                              "  two: {entity: item, from: src, to: dst, trigger: {realtime: true},"
                              " map: {name: name}}\n"
                              "  off: {entity: item, from: src, to: dst, enabled: false,"
                              " trigger: {realtime: true}, map: {name: name}}\n",
                              g_dir);
    struct es_diags d;
    es_diags_init(&d);
    struct es_config *cfg = NULL;
    assert_int_equal(es_config_parse("multi.yaml", text, strlen(text), &cfg, &d), ES_OK);
    es_diags_release(&d);
    es_free(text);
    struct es_engine *e = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_engine_new(cfg, NULL, &e, &err), ES_OK);
    struct es_batch b;
    es_batch_init(&b);
    es_batch_add(&b, "m1", "1", 0, json_pack("{s:s}", "name", "first"));
    es_batch_add(&b, "m2", NULL, 0, json_pack("{s:s}", "name", "second"));
    struct es_engine_part parts[3] = {
        {"one", &b, NULL, 0}, {"two", &b, NULL, 0}, {"off", &b, NULL, 0}};
    assert_int_equal(es_engine_enqueue_multi(e, parts, 3, &err), ES_EINVAL);
    assert_non_null(strstr(err.msg, "off"));
    parts[2].flow = "nope";
    es_err_clear(&err);
    assert_int_equal(es_engine_enqueue_multi(e, parts, 3, &err), ES_EINVAL);
    struct es_flow_stats *st = NULL;
    size_t n = 0;
    assert_int_equal(es_engine_stats(e, &st, &n, &err), ES_OK);
    assert_int_equal(n, 3);
    assert_int_equal(st[0].enqueued + st[1].enqueued + st[2].enqueued, 0);
    es_free(st);

    es_err_clear(&err);
    assert_int_equal(es_engine_enqueue_multi(e, parts, 2, &err), ES_OK);
    assert_int_equal(es_engine_stats(e, &st, &n, &err), ES_OK);
    assert_int_equal(st[0].enqueued, 2);
    assert_int_equal(st[1].enqueued, 2);
    assert_int_equal(st[2].enqueued, 0);
    es_free(st);
    /* Both flows hold the same payload and the same computed version for m2. */
    struct es_change_filter f = {"two", ES_CHANGE_STATE_LAST, 0, 10};
    struct es_change *rows = NULL;
    size_t nr = 0;
    assert_int_equal(es_store_list(es_engine_store(e), &f, &rows, &nr, &err), ES_OK);
    assert_int_equal(nr, 2);
    assert_string_equal(rows[1].key, "m2");
    char *v2 = es_xstrdup(rows[1].version);
    es_changes_free(rows, nr);
    f.flow = "one";
    assert_int_equal(es_store_list(es_engine_store(e), &f, &rows, &nr, &err), ES_OK);
    assert_int_equal(nr, 2);
    assert_string_equal(rows[1].version, v2);
    struct es_change one;
    assert_int_equal(es_store_get(es_engine_store(e), rows[0].id, &one, &err), ES_OK);
    assert_non_null(one.payload);
    assert_non_null(strstr(one.payload, "first"));
    es_change_release(&one);
    es_changes_free(rows, nr);
    es_free(v2);
    /* Again: known (flow, key, version) in both flows. */
    assert_int_equal(es_engine_enqueue_multi(e, parts, 2, &err), ES_OK);
    assert_int_equal(es_engine_stats(e, &st, &n, &err), ES_OK);
    assert_int_equal(st[0].duplicates, 2);
    assert_int_equal(st[1].duplicates, 2);
    es_free(st);
    /* Ready changes (the webhook fast path): payload text as given, both flows; a change
     * without a version refuses the whole call. */
    struct es_change_in ch[2] = {{NULL, "t1", "v1", 0, "{\"name\":\"text\"}", 15},
                                 {NULL, "t2", NULL, 0, NULL, 0}};
    struct es_engine_part tp[2] = {{"one", NULL, ch, 2}, {"two", NULL, ch, 2}};
    assert_int_equal(es_engine_enqueue_multi(e, tp, 2, &err), ES_EINVAL);
    ch[1].version = "v1";
    ch[1].deleted = 1;
    es_err_clear(&err);
    assert_int_equal(es_engine_enqueue_multi(e, tp, 2, &err), ES_OK);
    assert_int_equal(es_engine_stats(e, &st, &n, &err), ES_OK);
    assert_int_equal(st[0].enqueued, 4);
    assert_int_equal(st[1].enqueued, 4);
    es_free(st);
    f.flow = "two";
    f.after_id = 0;
    assert_int_equal(es_store_list(es_engine_store(e), &f, &rows, &nr, &err), ES_OK);
    assert_int_equal(nr, 4);
    assert_string_equal(rows[2].key, "t1");
    assert_int_equal(rows[3].deleted, 1);
    assert_int_equal(es_store_get(es_engine_store(e), rows[2].id, &one, &err), ES_OK);
    assert_string_equal(one.payload, "{\"name\":\"text\"}");
    es_change_release(&one);
    es_changes_free(rows, nr);
    es_batch_release(&b);
    es_engine_free(e);
    es_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_poll_retry_review),
        cmocka_unit_test(test_slow_target_keeps_lease),
        cmocka_unit_test(test_auth_pauses),
        cmocka_unit_test(test_target_unavailable_pauses),
        cmocka_unit_test(test_dead_after_retries),
        cmocka_unit_test(test_batch_trigger),
        cmocka_unit_test(test_realtime_group_commit),
        cmocka_unit_test(test_enqueue_multi),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
