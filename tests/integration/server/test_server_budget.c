/* SPDX-License-Identifier: MIT */
/*
 * The remote API budget in /metrics against erpsync-sandbox salesforce (started by the test on
 * a free loopback port with a small daily API limit; it answers every REST call with
 * Sforce-Limit-Info). A poll flow reads the seeded Accounts into a `memory` ERP; after the run
 * erpsync_api_budget_max is the sandbox's limit and erpsync_api_budget_remaining is what the
 * sandbox reported on the engine's last call (checked against a /limits call made afterwards,
 * which counts itself).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "connectors/memory.h"
#include "core/config.h"
#include "core/diag.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "sandbox_proc.h"
#include "server/server.h"

#define API_LIMIT 5000
#define ACCOUNTS  12

static struct sbproc g_sb;
static struct es_config *g_cfg;
static char g_db[128];

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct es_buf *b = ud;
    es_buf_append(b, p, size * n);
    return size * n;
}

/* GET /metrics; the body NUL-terminated in b. */
static long scrape(uint16_t port, struct es_buf *b)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", (unsigned)port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_easy_cleanup(c);
    es_buf_putc(b, '\0');
    return status;
}

/* The value of one exact series line ("name{labels}"), or -1. */
static double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

static int setup(void **state)
{
    (void)state;
    es_log_set_level(getenv("BUDGET_DEBUG") ? ES_LOG_DEBUG : ES_LOG_WARN);
    char limit[16], accounts[16];
    snprintf(limit, sizeof limit, "%d", API_LIMIT);
    snprintf(accounts, sizeof accounts, "%d", ACCOUNTS);
    const char *const extra[] = {"--api-limit", limit,    "--seed", "demo",
                                 "--accounts",  accounts, NULL};
    if (sbproc_start(&g_sb, "salesforce", extra) != 0) {
        fprintf(stderr, "cannot start the salesforce sandbox\n");
        return -1;
    }
    if (sbproc_admin(&g_sb, "GET", "/__sandbox/health", NULL, NULL) != 200) {
        fprintf(stderr, "the salesforce sandbox does not answer\n");
        return -1;
    }
    setenv("BUDGET_SF_ID", "demo", 1);
    setenv("BUDGET_SF_SECRET", "demo", 1);
    snprintf(g_db, sizeof g_db, "/tmp/es-server-budget-%d.db", (int)getpid());
    char *yaml = es_xasprintf(
        "store: sqlite:%s\n"
        "server: {listen: 127.0.0.1:0}\n"
        "systems:\n"
        "  crm:\n"
        "    connector: salesforce\n"
        "    url: %s\n"
        "    timeout: 60s\n"
        "    auth:\n"
        "      oauth2_client_credentials: {id_env: BUDGET_SF_ID, secret_env: BUDGET_SF_SECRET}\n"
        "  erp: {connector: memory}\n"
        "entities:\n"
        "  customer: {objects: {crm: Account, erp: Customer}}\n"
        "flows:\n"
        "  accounts: {entity: customer, from: crm, to: erp, trigger: {poll: 1h},"
        " map: {name: Name}}\n",
        g_db, g_sb.url);
    struct es_diags d;
    es_diags_init(&d);
    int rc = es_config_parse("budget.yaml", yaml, strlen(yaml), &g_cfg, &d);
    es_diags_print(&d, stderr);
    es_diags_release(&d);
    es_free(yaml);
    es_memory_reset();
    return rc == ES_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    es_config_free(g_cfg);
    sbproc_stop(&g_sb);
    es_http_token_cache_clear();
    char p[160];
    unlink(g_db);
    snprintf(p, sizeof p, "%s-wal", g_db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", g_db);
    unlink(p);
    return 0;
}

static void test_budget_after_poll(void **state)
{
    (void)state;
    struct es_err e;
    es_err_clear(&e);
    struct es_engine_opts opts = {.tick_ms = 20, .workers = 1};
    struct es_engine *eng = NULL;
    struct es_server *srv = NULL;
    if (es_engine_new(g_cfg, &opts, &eng, &e) != ES_OK || es_engine_start(eng, &e) != ES_OK) {
        fail_msg("engine: %s", e.msg);
    }
    if (es_server_start(g_cfg, eng, &srv, &e) != ES_OK) {
        fail_msg("server: %s", e.msg);
    }
    long used = 0, max = 0;
    /* The poll reads every seeded Account; the worker writes them to the memory ERP. */
    for (int i = 0; i < 1500 && es_memory_count("Customer") < ACCOUNTS; i++) {
        sbproc_sleep_ms(20);
    }
    assert_int_equal(es_memory_count("Customer"), ACCOUNTS);
    es_engine_request_stop(eng);
    es_engine_wait(eng);

    assert_int_equal(es_engine_budget(eng, "crm", &used, &max, &e), ES_OK);
    assert_int_equal(max, API_LIMIT);
    assert_true(used > 0);
    assert_int_equal(es_engine_budget(eng, "erp", &used, &max, &e), ES_OK);
    assert_int_equal(max, -1); /* memory reports none */
    assert_int_equal(es_engine_budget(eng, "nope", &used, &max, &e), ES_EINVAL);

    struct es_buf b;
    es_buf_init(&b, 0);
    assert_int_equal(scrape(es_server_port(srv), &b), 200);
    double left = metric(b.data, "erpsync_api_budget_remaining{system=\"crm\"}");
    assert_true(metric(b.data, "erpsync_api_budget_max{system=\"crm\"}") == API_LIMIT);
    assert_true(metric(b.data, "erpsync_api_budget_max{system=\"erp\"}") == -1);
    es_buf_release(&b);

    /* The sandbox's own count now: one /limits call more than the engine's last call. */
    struct es_conn *c = NULL;
    assert_int_equal(es_conn_open(es_config_system(g_cfg, "crm"), &c, &e), ES_OK);
    assert_int_equal(es_conn_ping(c, &e), ES_OK);
    assert_int_equal(c->api_max, API_LIMIT);
    assert_true(left == (double)(API_LIMIT - (c->api_used - 1)));
    es_conn_close(c);

    es_server_stop(srv);
    es_engine_free(eng);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_budget_after_poll)};
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
