/* SPDX-License-Identifier: MIT */
/*
 * Salesforce change reads and page reads past 5,000 rows, against erpsync-sandbox
 * salesforce seeded with 5,200 Accounts (--seed demo --accounts 5200). Checks that
 * read_changes follows every nextRecordsUrl inside one call (pages of 2,000 and of 1,000),
 * that reads chained by watermark return each of the 5,200 ids exactly once, that a record
 * edited during the walk is read again at its new position (never skipped), and that
 * read_page walks every id exactly once. The expected ids come from the emulator itself
 * (a COUNT() and a plain SOQL walk), not from the connector under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/connector.h"
#include "connectors/http.h"
#include "core/config.h"
#include "core/mem.h"
#include "sandbox_proc.h"

#define N_ACCOUNTS 5200

static struct sbproc g_sb;
static struct es_config *g_cfg;
static struct es_conn *g_big;   /* query_batch_size 2000 (the default) */
static struct es_conn *g_small; /* query_batch_size 1000 */
static json_t *g_expected;      /* id -> true, as the emulator lists them */

static json_t *expected_ids(void);

static int setup(void **state)
{
    (void)state;
    static const char *const extra[] = {"--seed", "demo", "--accounts", "5200", NULL};
    if (sbproc_start(&g_sb, "salesforce", extra) != 0) {
        fprintf(stderr, "cannot start the salesforce sandbox\n");
        return -1;
    }
    setenv("CONN_SFP_ID", "demo", 1);
    setenv("CONN_SFP_SECRET", "demo", 1);
    char yaml[2048];
    snprintf(
        yaml, sizeof yaml,
        "store: sqlite:/tmp/unused.db\n"
        "systems:\n"
        "  big:\n"
        "    connector: salesforce\n"
        "    url: %s\n"
        "    timeout: 120s\n"
        "    auth:\n"
        "      oauth2_client_credentials: {id_env: CONN_SFP_ID, secret_env: CONN_SFP_SECRET}\n"
        "    options: {overlap: 0s, include_deleted: false}\n"
        "  small:\n"
        "    connector: salesforce\n"
        "    url: %s\n"
        "    timeout: 120s\n"
        "    auth:\n"
        "      oauth2_client_credentials: {id_env: CONN_SFP_ID, secret_env: CONN_SFP_SECRET}\n"
        "    options: {overlap: 0s, query_batch_size: 1000}\n"
        "  mem: {connector: memory}\n"
        "entities:\n"
        "  customer: {objects: {big: Account, mem: Account}}\n"
        "flows:\n"
        "  f: {entity: customer, from: big, to: mem, trigger: {poll: 1m}, map: {Name: Name}}\n",
        g_sb.url, g_sb.url);
    struct es_diags d;
    es_diags_init(&d);
    int rc = es_config_parse("paging.yaml", yaml, strlen(yaml), &g_cfg, &d);
    es_diags_print(&d, stderr);
    es_diags_release(&d);
    if (rc != ES_OK) {
        return -1;
    }
    struct es_err err;
    es_err_clear(&err);
    if (es_conn_open(es_config_system(g_cfg, "big"), &g_big, &err) != ES_OK ||
        es_conn_open(es_config_system(g_cfg, "small"), &g_small, &err) != ES_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    g_expected = expected_ids();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(g_expected);
    es_conn_close(g_big);
    es_conn_close(g_small);
    es_config_free(g_cfg);
    sbproc_stop(&g_sb);
    es_http_token_cache_clear();
    return 0;
}

/* Requests the emulator has served so far (its own counter). */
static long sandbox_requests(void)
{
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "GET", "/__sandbox/health", NULL, &j), 200);
    long n = (long)json_integer_value(json_object_get(j, "requests"));
    json_decref(j);
    return n;
}

/* Changes Account id "in Salesforce" (admin endpoint, behind erpsync's back). */
static void edit_account(const char *id, const char *patch)
{
    char path[128];
    snprintf(path, sizeof path, "/__sandbox/records/Account/%s", id);
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "PATCH", path, patch, &j), 200);
    json_decref(j);
}

/* The Account ids as the emulator lists them (plain SOQL walk, independent of the
 * connector's change-read code): id -> true. */
static json_t *expected_ids(void)
{
    struct es_http *h = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_http_new(es_config_system(g_cfg, "big"), &h, &err), ES_OK);
    json_t *ids = json_object();
    char *url = es_xstrdup("/services/data/v60.0/query?q=SELECT+Id+FROM+Account");
    long total = -1;
    while (url) {
        struct es_http_req_opts rq = {.method = "GET", .url = url};
        json_t *j = NULL;
        int rc = es_http_json(h, &rq, NULL, &j, &err);
        if (rc != ES_OK) {
            fprintf(stderr, "expected_ids: %s\n", err.msg);
        }
        assert_int_equal(rc, ES_OK);
        es_free(url);
        url = NULL;
        total = (long)json_integer_value(json_object_get(j, "totalSize"));
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(j, "records"), i, r)
        {
            json_object_set_new(ids, json_string_value(json_object_get(r, "Id")), json_true());
        }
        const char *next = json_string_value(json_object_get(j, "nextRecordsUrl"));
        if (next) {
            url = es_xstrdup(next);
        }
        json_decref(j);
    }
    es_http_free(h);
    assert_int_equal(total, N_ACCOUNTS);
    assert_int_equal(json_object_size(ids), N_ACCOUNTS);
    return ids;
}

/* One read_changes call; adds key -> number of times seen to counts. Returns the count. */
static size_t read_once(struct es_conn *c, const char *wm, size_t limit, json_t *counts,
                        char **wm_out)
{
    struct es_batch b;
    es_batch_init(&b);
    struct es_err err;
    es_err_clear(&err);
    int rc = es_conn_read_changes(c, "Account", wm, limit, &b, &err);
    if (rc != ES_OK) {
        fprintf(stderr, "read_changes: %s\n", err.msg);
    }
    assert_int_equal(rc, ES_OK);
    assert_non_null(b.watermark);
    for (size_t i = 0; i < b.count; i++) {
        if (i > 0) {
            /* ordered by (SystemModstamp, Id) across page boundaries too */
            int o = strcmp(b.items[i - 1].version, b.items[i].version);
            assert_true(o < 0 || (o == 0 && strcmp(b.items[i - 1].key, b.items[i].key) < 0));
        }
        json_t *n = json_object_get(counts, b.items[i].key);
        json_object_set_new(counts, b.items[i].key,
                            json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    size_t got = b.count;
    *wm_out = es_xstrdup(b.watermark);
    es_batch_release(&b);
    return got;
}

static void assert_each_once(json_t *counts, json_t *expected)
{
    const char *k;
    json_t *v;
    json_object_foreach(counts, k, v)
    {
        if (json_integer_value(v) != 1) {
            fprintf(stderr, "%s read %lld times\n", k, (long long)json_integer_value(v));
        }
        assert_int_equal(json_integer_value(v), 1);
        assert_non_null(json_object_get(expected, k));
    }
    assert_int_equal(json_object_size(counts), json_object_size(expected));
}

/* One call with a limit above the row count follows every nextRecordsUrl (2000+2000+1200). */
static void test_one_call_follows_next(void **state)
{
    (void)state;
    json_t *expected = g_expected;
    json_t *counts = json_object();
    char *wm = NULL;
    long before = sandbox_requests();
    size_t got = read_once(g_big, NULL, 20000, counts, &wm);
    long calls = sandbox_requests() - before;
    assert_int_equal(got, N_ACCOUNTS);
    assert_each_once(counts, expected);
    /* the query plus at least two nextRecordsUrl pages (a describe may add one) */
    assert_true(calls >= 3);
    /* from that watermark nothing is new */
    json_t *again = json_object();
    char *wm2 = NULL;
    assert_int_equal(read_once(g_big, wm, 20000, again, &wm2), 0);
    assert_string_equal(wm2, wm);
    json_decref(again);
    es_free(wm2);
    es_free(wm);
    json_decref(counts);
}

/* Calls of 2,500 records on pages of 1,000 (three pages each), chained by watermark; an
 * Account already read and one not yet read are edited between the calls. */
static void test_chained_by_watermark(void **state)
{
    (void)state;
    json_t *expected = g_expected;
    json_t *counts = json_object();
    char *wm = NULL;
    size_t got = read_once(g_small, NULL, 2500, counts, &wm);
    assert_int_equal(got, 2500);

    /* Edit one Account that was read and one that was not (behind erpsync's back). */
    const char *read_id = NULL, *unread_id = NULL, *k;
    json_t *v;
    json_object_foreach(expected, k, v)
    {
        if (!read_id && json_object_get(counts, k)) {
            read_id = k;
        } else if (!unread_id && !json_object_get(counts, k)) {
            unread_id = k;
        }
    }
    assert_non_null(read_id);
    assert_non_null(unread_id);
    edit_account(read_id, "{\"Phone\":\"+49 30 1111111\"}");
    edit_account(unread_id, "{\"Phone\":\"+49 30 2222222\"}");

    size_t calls = 1;
    for (;;) {
        char *next = NULL;
        got = read_once(g_small, wm, 2500, counts, &next);
        es_free(wm);
        wm = next;
        calls++;
        assert_true(calls < 10);
        if (got < 2500) {
            break;
        }
    }
    /* 2500 + 2500 + 200 + the edited, already read record once more */
    assert_int_equal(calls, 3);
    assert_int_equal(json_integer_value(json_object_get(counts, read_id)), 2);
    json_object_set_new(counts, read_id, json_integer(1));
    assert_int_equal(json_integer_value(json_object_get(counts, unread_id)), 1);
    assert_each_once(counts, expected);
    es_free(wm);
    json_decref(counts);
}

/* read_page walks every id once: pages of 2,500 records, each of which is three query
 * pages of 1,000 joined by nextRecordsUrl. */
static void test_read_page(void **state)
{
    (void)state;
    const size_t limit = 2500;
    json_t *counts = json_object();
    char *page = NULL;
    size_t pages = 0;
    for (;;) {
        struct es_batch b;
        es_batch_init(&b);
        struct es_err err;
        es_err_clear(&err);
        int rc = es_conn_read_page(g_small, "Account", page, limit, &b, &err);
        if (rc != ES_OK) {
            fprintf(stderr, "read_page: %s\n", err.msg);
        }
        assert_int_equal(rc, ES_OK);
        assert_true(b.count <= limit);
        for (size_t i = 0; i < b.count; i++) {
            if (i > 0) {
                assert_true(strcmp(b.items[i - 1].key, b.items[i].key) < 0);
            }
            json_t *n = json_object_get(counts, b.items[i].key);
            json_object_set_new(counts, b.items[i].key,
                                json_integer(n ? json_integer_value(n) + 1 : 1));
        }
        es_free(page);
        page = b.next_page ? es_xstrdup(b.next_page) : NULL;
        es_batch_release(&b);
        pages++;
        assert_true(pages < 10);
        if (!page) {
            break;
        }
    }
    assert_int_equal(pages, 3); /* 2500 + 2500 + 200 */
    assert_each_once(counts, g_expected);
    json_decref(counts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_call_follows_next),
        cmocka_unit_test(test_chained_by_watermark),
        cmocka_unit_test(test_read_page),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
