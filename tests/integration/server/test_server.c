/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server in-process, driven over loopback with libcurl: a real engine with a
 * temporary SQLite journal and `memory` systems, the server on a free port.
 *
 * Flows: customer-to-erp (crm -> erp, writes work; Name required so a record without it goes
 * to review) and customer-to-bad (crm -> bad, every write fails transiently: two attempts,
 * then a dead letter). Each test continues from the state the previous one left, in order:
 * webhooks accepted and refused, metrics figures, admin API, pause/resume, health.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>

#include "connectors/memory.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/diag.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "server/server.h"
#include "server/webhook.h"
#include "store/store.h"

#define SECRET "test-hook-secret-123"
#define TOKEN  "test-admin-token-456"
#define FLOW   "customer-to-erp"
#define BAD    "customer-to-bad"
#define OMFLOW "om-to-erp"
#define PROBE  "skip-probe"

static char g_dir[64];
static char g_base[64];
static struct es_config *g_cfg;
static struct es_engine *g_eng;
static struct es_server *g_srv;

struct resp {
    long status;
    char *body;
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    r->body = es_xrealloc(r->body, r->len + size * n + 1);
    memcpy(r->body + r->len, p, size * n);
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

/* One request; headers is a NULL-terminated list of "Name: value". */
static struct resp http(const char *method, const char *path, const char *body, size_t len,
                        const char *const *headers)
{
    struct resp r = {0, es_xstrdup(""), 0};
    char url[256];
    snprintf(url, sizeof url, "%s%s", g_base, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    for (size_t i = 0; headers && headers[i]; i++) {
        h = curl_slist_append(h, headers[i]);
    }
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

/* A signed webhook to /hooks/crm. */
static struct resp hook(const char *body)
{
    char sig[65], hdr[128];
    es_webhook_sign(SECRET, strlen(SECRET), body, strlen(body), sig);
    snprintf(hdr, sizeof hdr, "X-Erpsync-Signature: sha256=%s", sig);
    const char *hs[] = {hdr, "Content-Type: application/json", NULL};
    return http("POST", "/hooks/crm", body, strlen(body), hs);
}

static struct resp admin(const char *method, const char *path, const char *body)
{
    const char *hs[] = {"Authorization: Bearer " TOKEN, NULL};
    return http(method, path, body, body ? strlen(body) : 0, hs);
}

static json_t *json_of(const struct resp *r)
{
    json_error_t je;
    json_t *j = json_loads(r->body, 0, &je);
    if (!j) {
        fail_msg("not JSON (%s): %s", je.text, r->body);
    }
    return j;
}

static void expect_status(struct resp r, long status)
{
    if (r.status != status) {
        fail_msg("expected %ld, got %ld: %s", status, r.status, r.body);
    }
    es_free(r.body);
}

/* Changes in the journal (every flow, every state). */
static size_t journal_count(const char *flow, enum es_change_state state)
{
    struct es_change_filter f = {flow, state, 0, 1000};
    struct es_change *rows = NULL;
    size_t n = 0;
    struct es_err e;
    es_err_clear(&e);
    assert_int_equal(es_store_list(es_engine_store(g_eng), &f, &rows, &n, &e), ES_OK);
    es_changes_free(rows, n);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to 10 s for the count of flow's changes in state to reach want. */
static void wait_count(const char *flow, enum es_change_state state, size_t want)
{
    for (int i = 0; i < 500; i++) {
        if (journal_count(flow, state) == want) {
            return;
        }
        sleep_ms(20);
    }
    fail_msg("flow %s: %zu changes %s, expected %zu", flow, journal_count(flow, state),
             es_change_state_name(state), want);
}

/* Waits up to 10 s until flow has no open change (pending, leased, retry). */
static void wait_idle(const char *flow)
{
    for (int i = 0; i < 500; i++) {
        if (journal_count(flow, ES_CHANGE_PENDING) + journal_count(flow, ES_CHANGE_LEASED) +
                journal_count(flow, ES_CHANGE_RETRY) ==
            0) {
            return;
        }
        sleep_ms(20);
    }
    fail_msg("flow %s still has open changes", flow);
}

/* The value of one exact series line in /metrics ("name{labels}"), or -1. */
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
    es_log_set_level(ES_LOG_WARN);
    snprintf(g_dir, sizeof g_dir, "/tmp/es-server-test-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    setenv("ES_TEST_HOOK_SECRET", SECRET, 1);
    setenv("ES_TEST_ADMIN_TOKEN", TOKEN, 1);
    char *text = es_xasprintf(
        "store: sqlite:%s/state.db\n"
        "server: {listen: 127.0.0.1:0, admin_token_env: ES_TEST_ADMIN_TOKEN, max_body: 64KiB}\n"
        "systems:\n"
        "  crm:\n"
        "    connector: memory\n"
        "    webhook: {path: /hooks/crm, hmac_secret_env: ES_TEST_HOOK_SECRET, max_body: 4KiB}\n"
        "  om:\n"
        "    connector: memory\n"
        "    webhook: {path: /hooks/om, format: outbound_message}\n"
        "  erp: {connector: memory}\n"
        "  bad: {connector: memory, options: {fail_every: 1}}\n"
        "entities:\n"
        "  customer: {objects: {crm: Account, om: Account, erp: Customer, bad: BadCustomer}}\n"
        "flows:\n"
        "  " FLOW ":\n"
        "    entity: customer\n"
        "    from: crm\n"
        "    to: erp\n"
        "    trigger: {realtime: true}\n"
        "    map: {name: {from: Name, required: true}}\n"
        "  " BAD ":\n"
        "    entity: customer\n"
        "    from: crm\n"
        "    to: bad\n"
        "    trigger: {realtime: true}\n"
        "    retry: {max_attempts: 2, base: 10ms, max: 20ms}\n"
        "    map: {name: Name}\n"
        "  " OMFLOW ": {entity: customer, from: om, to: erp, trigger: {realtime: true},"
        " map: {name: Name}}\n"
        "  " PROBE ": {entity: customer, from: crm, to: erp, enabled: false,"
        " trigger: {realtime: true},"
        " map: {name: Name}}\n",
        g_dir);
    struct es_diags d;
    es_diags_init(&d);
    int rc = es_config_parse("server-test.yaml", text, strlen(text), &g_cfg, &d);
    if (rc != ES_OK) {
        es_diags_print(&d, stderr);
    }
    es_free(text);
    es_diags_release(&d);
    assert_int_equal(rc, ES_OK);
    es_memory_reset();

    struct es_err e;
    es_err_clear(&e);
    struct es_engine_opts opts = {0};
    opts.no_triggers = 1;
    opts.tick_ms = 10;
    opts.workers = 2;
    if (es_engine_new(g_cfg, &opts, &g_eng, &e) != ES_OK || es_engine_start(g_eng, &e) != ES_OK) {
        fail_msg("engine: %s", e.msg);
    }
    if (es_server_start(g_cfg, g_eng, &g_srv, &e) != ES_OK) {
        fail_msg("server: %s", e.msg);
    }
    assert_true(es_server_port(g_srv) > 0);
    snprintf(g_base, sizeof g_base, "http://127.0.0.1:%u", (unsigned)es_server_port(g_srv));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    es_server_stop(g_srv);
    es_engine_free(g_eng);
    es_config_free(g_cfg);
    char *cmd = es_xasprintf("rm -rf '%s'", g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", g_dir);
    }
    es_free(cmd);
    return 0;
}

static void test_webhook_accepted(void **state)
{
    (void)state;
    struct resp r = hook("{\"records\":[{\"id\":\"A1\",\"version\":\"1\","
                         "\"data\":{\"Name\":\"Acme\"}},"
                         "{\"id\":\"A2\",\"version\":\"1\",\"data\":{\"Name\":\"Beta\"}}]}");
    assert_int_equal(r.status, 202);
    json_t *j = json_of(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "flows")), 2);
    json_decref(j);
    es_free(r.body);
    /* In the journal at the moment of the answer: both flows, both records. */
    assert_int_equal(journal_count(FLOW, ES_CHANGE_STATE_LAST), 2);
    assert_int_equal(journal_count(BAD, ES_CHANGE_STATE_LAST), 2);

    /* A single record object; then the same change again (a duplicate, still 202). */
    expect_status(hook("{\"id\":\"A3\",\"version\":\"5\",\"data\":{\"Name\":\"Gamma\"}}"), 202);
    expect_status(hook("{\"id\":\"A3\",\"version\":\"5\",\"data\":{\"Name\":\"Gamma\"}}"), 202);
    assert_int_equal(journal_count(FLOW, ES_CHANGE_STATE_LAST), 3);
    /* The engine delivers them to the erp system. */
    wait_count(FLOW, ES_CHANGE_DONE, 3);
    assert_int_equal(es_memory_count("Customer"), 3);
}

static void test_webhook_refused(void **state)
{
    (void)state;
    size_t before = journal_count(NULL, ES_CHANGE_STATE_LAST);
    const char *body = "{\"id\":\"X1\",\"version\":\"1\",\"data\":{\"Name\":\"Evil\"}}";
    const char *wrong[] = {"X-Erpsync-Signature: "
                           "0000000000000000000000000000000000000000000000000000000000000000",
                           NULL};
    expect_status(http("POST", "/hooks/crm", body, strlen(body), wrong), 401);
    expect_status(http("POST", "/hooks/crm", body, strlen(body), NULL), 401);
    /* Signed with another key. */
    char sig[65], hdr[128];
    es_webhook_sign("other", 5, body, strlen(body), sig);
    snprintf(hdr, sizeof hdr, "X-Erpsync-Signature: %s", sig);
    const char *other[] = {hdr, NULL};
    expect_status(http("POST", "/hooks/crm", body, strlen(body), other), 401);
    /* Correctly signed but malformed. */
    expect_status(hook("{\"records\":[{\"id\":\"X2\",\"data\":"), 400);
    expect_status(hook("{\"records\":[{\"version\":\"1\",\"data\":{}}]}"), 400);
    expect_status(hook("[]"), 400);
    /* Over the webhook's 4 KiB (signed, so only the size is wrong). */
    size_t big = 5000;
    char *huge = es_xmalloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, "{\"id\":\"X3\",\"data\":{}}", 21);
    huge[big] = '\0';
    expect_status(hook(huge), 413);
    es_free(huge);
    /* GET is not a webhook; an unknown path is 404. */
    expect_status(http("GET", "/hooks/crm", NULL, 0, NULL), 405);
    expect_status(http("POST", "/hooks/nope", body, strlen(body), NULL), 404);
    assert_int_equal(journal_count(NULL, ES_CHANGE_STATE_LAST), before);
}

#define OM_MESSAGE(n1, n2)                                                                         \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                                 \
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "               \
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>"                       \
    "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">"                            \
    "<OrganizationId>00D000000000001</OrganizationId><ActionId>04k000000000001</ActionId>"         \
    "<SessionId xsi:nil=\"true\"/>"                                                                \
    "<Notification><Id>" n1 "</Id><sObject xsi:type=\"sf:Account\" "                               \
    "xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\"><sf:Id>001OM1</sf:Id>"                    \
    "<sf:Name>Om One</sf:Name></sObject></Notification>"                                           \
    "<Notification><Id>" n2 "</Id><sObject xsi:type=\"sf:Account\" "                               \
    "xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\"><sf:Id>001OM2</sf:Id>"                    \
    "<sf:Name>Om Two</sf:Name></sObject></Notification>"                                           \
    "</notifications></soapenv:Body></soapenv:Envelope>"

static void test_outbound_message(void **state)
{
    (void)state;
    const char *om = OM_MESSAGE("04l0000000000A1", "04l0000000000A2");
    const char *hs[] = {"Content-Type: text/xml; charset=utf-8", "SOAPAction: \"\"", NULL};
    struct resp r = http("POST", "/hooks/om", om, strlen(om), hs);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<Ack>true</Ack>"));
    es_free(r.body);
    assert_int_equal(journal_count(OMFLOW, ES_CHANGE_STATE_LAST), 2);
    /* Salesforce redelivers the same notifications: acknowledged, recognised as known. */
    expect_status(http("POST", "/hooks/om", om, strlen(om), hs), 200);
    assert_int_equal(journal_count(OMFLOW, ES_CHANGE_STATE_LAST), 2);
    /* Not an Outbound Message: 400, nothing kept. */
    const char *soap = "<soapenv:Envelope><soapenv:Body><other/></soapenv:Body></soapenv:Envelope>";
    expect_status(http("POST", "/hooks/om", soap, strlen(soap), hs), 400);
    const char *json = "{\"id\":\"001OM3\",\"data\":{}}";
    expect_status(http("POST", "/hooks/om", json, strlen(json), hs), 400);
    assert_int_equal(journal_count(OMFLOW, ES_CHANGE_STATE_LAST), 2);
    wait_count(OMFLOW, ES_CHANGE_DONE, 2);
    assert_int_equal(es_memory_count("Customer"), 5); /* A1, A2, A3 and the two accounts */
}

static void test_metrics(void **state)
{
    (void)state;
    /* customer-to-bad: two attempts each, then dead. */
    wait_count(BAD, ES_CHANGE_DEAD, 3);
    struct resp r = http("GET", "/metrics", NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    const char *m = r.body;
    assert_true(metric(m, "erpsync_flow_enqueued_total{flow=\"" FLOW "\"}") == 3);
    assert_true(metric(m, "erpsync_flow_duplicates_total{flow=\"" FLOW "\"}") == 1);
    assert_true(metric(m, "erpsync_flow_records_done_total{flow=\"" FLOW "\"}") == 3);
    assert_true(metric(m, "erpsync_flow_changes{flow=\"" FLOW "\",state=\"done\"}") == 3);
    assert_true(metric(m, "erpsync_flow_changes{flow=\"" FLOW "\",state=\"pending\"}") == 0);
    assert_true(metric(m, "erpsync_flow_changes{flow=\"" BAD "\",state=\"dead\"}") == 3);
    assert_true(metric(m, "erpsync_flow_retries_total{flow=\"" BAD "\"}") == 3);
    assert_true(metric(m, "erpsync_flow_oldest_open_age_seconds{flow=\"" FLOW "\"}") == 0);
    assert_true(metric(m, "erpsync_flow_last_success_timestamp_seconds{flow=\"" FLOW "\"}") >
                1.7e9);
    assert_true(metric(m, "erpsync_flow_paused{flow=\"" FLOW "\"}") == 0);
    /* From the audit: 3 retries + 3 dead, all transient; processing histogram of 6. */
    assert_true(
        metric(m, "erpsync_flow_records_failed_total{flow=\"" BAD "\",class=\"transient\"}") == 6);
    assert_true(
        metric(m, "erpsync_flow_records_failed_total{flow=\"" FLOW "\",class=\"transient\"}") == 0);
    assert_true(metric(m, "erpsync_flow_processing_seconds_count{flow=\"" BAD "\"}") == 6);
    assert_true(metric(m, "erpsync_flow_processing_seconds_count{flow=\"" FLOW "\"}") == 3);
    assert_true(
        metric(m, "erpsync_flow_processing_seconds_bucket{flow=\"" FLOW "\",le=\"+Inf\"}") == 3);
    /* The server's own counters. */
    assert_true(metric(m, "erpsync_http_requests_total{route=\"/hooks/crm\",status=\"202\"}") == 3);
    assert_true(metric(m, "erpsync_http_requests_total{route=\"/hooks/crm\",status=\"401\"}") == 3);
    assert_true(metric(m, "erpsync_http_requests_total{route=\"/hooks/crm\",status=\"400\"}") == 3);
    assert_true(metric(m, "erpsync_http_requests_total{route=\"/hooks/crm\",status=\"413\"}") == 1);
    assert_true(metric(m, "erpsync_http_requests_total{route=\"other\",status=\"404\"}") == 1);
    assert_true(metric(m, "erpsync_webhook_records_total{system=\"crm\"}") == 4);
    assert_true(metric(m, "erpsync_webhook_duration_seconds_count{system=\"crm\"}") == 3);
    assert_true(metric(m, "erpsync_store_up") == 1);
    assert_non_null(strstr(m, "# TYPE erpsync_flow_processing_seconds histogram\n"));
    es_free(r.body);
}

static void test_admin_auth(void **state)
{
    (void)state;
    expect_status(http("GET", "/api/flows", NULL, 0, NULL), 401);
    const char *wrong[] = {"Authorization: Bearer " TOKEN "x", NULL};
    expect_status(http("GET", "/api/flows", NULL, 0, wrong), 401);
    const char *basic[] = {"Authorization: Basic " TOKEN, NULL};
    expect_status(http("GET", "/api/flows", NULL, 0, basic), 401);
    expect_status(http("POST", "/api/flows/" FLOW "/pause", NULL, 0, NULL), 401);

    struct resp r = admin("GET", "/api/flows", NULL);
    assert_int_equal(r.status, 200);
    json_t *j = json_of(&r);
    json_t *flows = json_object_get(j, "flows");
    assert_int_equal(json_array_size(flows), 4);
    json_t *f0 = json_array_get(flows, 0);
    assert_string_equal(json_string_value(json_object_get(f0, "name")), FLOW);
    assert_string_equal(json_string_value(json_object_get(f0, "from")), "crm");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(f0, "counts"), "done")), 3);
    assert_false(json_is_true(json_object_get(f0, "paused")));
    json_decref(j);
    es_free(r.body);

    r = admin("GET", "/api/changes?flow=" FLOW "&state=done", NULL);
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    json_t *ch = json_object_get(j, "changes");
    assert_int_equal(json_array_size(ch), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 0), "key")), "A1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 0), "state")), "done");
    json_decref(j);
    es_free(r.body);
    expect_status(admin("GET", "/api/changes?state=bogus", NULL), 400);
    expect_status(admin("GET", "/api/changes?flow=nope", NULL), 404);
    expect_status(admin("GET", "/api/nothing", NULL), 404);
    expect_status(admin("DELETE", "/api/flows", NULL), 405);
}

static void test_admin_dead_and_review(void **state)
{
    (void)state;
    struct resp r = admin("GET", "/api/dead?flow=" BAD, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = json_of(&r);
    json_t *dead = json_object_get(j, "dead");
    assert_int_equal(json_array_size(dead), 3);
    json_t *d0 = json_array_get(dead, 0);
    json_int_t id = json_integer_value(json_object_get(d0, "id"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(d0, "error"), "class")),
                        "transient");
    json_decref(j);
    es_free(r.body);

    char path[96];
    snprintf(path, sizeof path, "/api/dead/%lld", (long long)id);
    r = admin("GET", path, NULL);
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "dead");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "payload"), "Name")),
                        "Acme");
    assert_true(json_array_size(json_object_get(j, "audit")) >= 2);
    json_decref(j);
    es_free(r.body);
    /* The same id is not a review item. */
    snprintf(path, sizeof path, "/api/review/%lld", (long long)id);
    expect_status(admin("GET", path, NULL), 404);
    expect_status(admin("GET", "/api/dead/999999", NULL), 404);

    snprintf(path, sizeof path, "/api/dead/%lld/replay", (long long)id);
    r = admin("POST", path, "{\"note\":\"target fixed\"}");
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "pending");
    json_decref(j);
    es_free(r.body);
    expect_status(admin("POST", path, "not json"), 400);
    /* It fails again (every write to bad fails) and comes back as dead. */
    wait_count(BAD, ES_CHANGE_DEAD, 3);

    /* A record without the required Name: review for customer-to-erp. */
    expect_status(hook("{\"id\":\"R1\",\"version\":\"1\",\"data\":{\"Phone\":\"1\"}}"), 202);
    wait_count(FLOW, ES_CHANGE_REVIEW, 1);
    r = admin("GET", "/api/review", NULL);
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    json_t *rev = json_object_get(j, "review");
    assert_int_equal(json_array_size(rev), 1);
    id = json_integer_value(json_object_get(json_array_get(rev, 0), "id"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(rev, 0), "key")), "R1");
    json_decref(j);
    es_free(r.body);
    snprintf(path, sizeof path, "/api/review/%lld", (long long)id);
    expect_status(admin("GET", path, NULL), 200);
    snprintf(path, sizeof path, "/api/review/%lld/resolve", (long long)id);
    expect_status(admin("POST", path, "{\"note\":\"fixed by hand\"}"), 200);
    expect_status(admin("POST", path, NULL), 409);
    assert_int_equal(journal_count(FLOW, ES_CHANGE_REVIEW), 0);
}

/* More outcomes between two scrapes than the first audit window (256) holds. */
static void test_metrics_many(void **state)
{
    (void)state;
    wait_idle(FLOW);
    wait_idle(BAD);
    struct resp r = http("GET", "/metrics", NULL, 0, NULL);
    double ok0 = metric(r.body, "erpsync_flow_processing_seconds_count{flow=\"" FLOW "\"}");
    double bad0 = metric(r.body, "erpsync_flow_processing_seconds_count{flow=\"" BAD "\"}");
    double tr0 =
        metric(r.body, "erpsync_flow_records_failed_total{flow=\"" BAD "\",class=\"transient\"}");
    es_free(r.body);
    size_t done0 = journal_count(FLOW, ES_CHANGE_DONE);
    size_t dead0 = journal_count(BAD, ES_CHANGE_DEAD);
    for (int k = 0; k < 10; k++) {
        struct es_buf b;
        es_buf_init(&b, 0);
        es_buf_puts(&b, "{\"records\":[");
        for (int i = 0; i < 30; i++) {
            es_buf_printf(&b, "%s{\"id\":\"M%d\",\"version\":\"1\",\"data\":{\"Name\":\"N%d\"}}",
                          i ? "," : "", k * 30 + i, k * 30 + i);
        }
        es_buf_puts(&b, "]}");
        expect_status(hook(b.data), 202);
        es_buf_release(&b);
    }
    wait_count(FLOW, ES_CHANGE_DONE, done0 + 300);
    wait_count(BAD, ES_CHANGE_DEAD, dead0 + 300);
    r = http("GET", "/metrics", NULL, 0, NULL);
    assert_true(metric(r.body, "erpsync_flow_processing_seconds_count{flow=\"" FLOW "\"}") ==
                ok0 + 300);
    assert_true(metric(r.body, "erpsync_flow_processing_seconds_count{flow=\"" BAD "\"}") ==
                bad0 + 600);
    assert_true(metric(r.body, "erpsync_flow_records_failed_total{flow=\"" BAD
                               "\",class=\"transient\"}") == tr0 + 600);
    assert_true(metric(r.body, "erpsync_metrics_outcomes_missed_total") == 0);
    es_free(r.body);

    /* Routing by source object: the flows read Account; an Order is acknowledged, not kept. */
    size_t all0 = journal_count(NULL, ES_CHANGE_STATE_LAST);
    r = hook("{\"object\":\"Order\",\"records\":[{\"id\":\"O1\",\"data\":{\"Name\":\"x\"}}]}");
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body, "\"flows\":0"));
    es_free(r.body);
    assert_int_equal(journal_count(NULL, ES_CHANGE_STATE_LAST), all0);
    r = hook("{\"object\":\"Account\",\"records\":[{\"id\":\"O2\",\"data\":{\"Name\":\"y\"}}]}");
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body, "\"flows\":2"));
    es_free(r.body);
    assert_int_equal(journal_count(NULL, ES_CHANGE_STATE_LAST), all0 + 2);
    wait_count(FLOW, ES_CHANGE_DONE, done0 + 301);
    expect_status(hook("{\"object\":7,\"records\":[{\"id\":\"O3\",\"data\":{}}]}"), 400);
}

/* Runs one SQL statement on the journal through a second connection (the store is SQLite). */
static void journal_sql(const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/state.db", g_dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail_msg("%s: %s", sql, msg ? msg : "?");
    }
    sqlite3_close(db);
}

/* A webhook for two flows is committed in one transaction: when the store refuses the
 * second flow's insert (a trigger on the journal table makes that real store error), the
 * answer is 503 and neither flow holds the changes; once the store accepts again, both do. */
static void test_multi_flow_atomic(void **state)
{
    (void)state;
    wait_idle(FLOW);
    wait_idle(BAD);
    size_t ok0 = journal_count(FLOW, ES_CHANGE_STATE_LAST);
    size_t bad0 = journal_count(BAD, ES_CHANGE_STATE_LAST);
    journal_sql("CREATE TRIGGER refuse_bad BEFORE INSERT ON changes WHEN NEW.flow = (SELECT no "
                "FROM flows WHERE flow = '" BAD
                "') BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    const char *body = "{\"records\":[{\"id\":\"T1\",\"version\":\"1\",\"data\":{\"Name\":\"T\"}},"
                       "{\"id\":\"T2\",\"version\":\"1\",\"data\":{\"Name\":\"U\"}}]}";
    struct resp r = hook(body);
    assert_int_equal(r.status, 503);
    es_free(r.body);
    assert_int_equal(journal_count(FLOW, ES_CHANGE_STATE_LAST), ok0);
    assert_int_equal(journal_count(BAD, ES_CHANGE_STATE_LAST), bad0);
    /* The store error shows in /healthz until a commit works again. */
    r = http("GET", "/healthz", NULL, 0, NULL);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "store"));
    es_free(r.body);

    journal_sql("DROP TRIGGER refuse_bad");
    r = hook(body);
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body, "\"flows\":2"));
    es_free(r.body);
    assert_int_equal(journal_count(FLOW, ES_CHANGE_STATE_LAST), ok0 + 2);
    assert_int_equal(journal_count(BAD, ES_CHANGE_STATE_LAST), bad0 + 2);
    /* A body the fast scan leaves to the full parser (integer id, no version, escaped id):
     * the same one commit for both flows, the version computed from the content. */
    r = hook("{\"records\":[{\"id\":17,\"data\":{\"Name\":\"Slow\"}},"
             "{\"id\":\"T\\u00e9\",\"version\":\"1\",\"data\":{\"Name\":\"E\"}}]}");
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body, "\"accepted\":2,\"flows\":2"));
    es_free(r.body);
    assert_int_equal(journal_count(FLOW, ES_CHANGE_STATE_LAST), ok0 + 4);
    assert_int_equal(journal_count(BAD, ES_CHANGE_STATE_LAST), bad0 + 4);
    struct es_change_filter f = {BAD, ES_CHANGE_STATE_LAST, 0, 1000};
    struct es_change *rows = NULL;
    size_t n = 0;
    struct es_err e;
    es_err_clear(&e);
    assert_int_equal(es_store_list(es_engine_store(g_eng), &f, &rows, &n, &e), ES_OK);
    assert_true(n >= 2);
    assert_string_equal(rows[n - 2].key, "17");
    assert_true(strlen(rows[n - 2].version) >= 16); /* a content hash */
    assert_string_equal(rows[n - 1].key, "T\xc3\xa9");
    es_changes_free(rows, n);
    /* The refusal was counted as a 503 of the hook. */
    r = http("GET", "/metrics", NULL, 0, NULL);
    assert_true(
        metric(r.body, "erpsync_http_requests_total{route=\"/hooks/crm\",status=\"503\"}") == 1);
    es_free(r.body);
    wait_idle(FLOW);
    wait_idle(BAD);
    expect_status(http("GET", "/healthz", NULL, 0, NULL), 200);
}

/* The admin API's xref view, the skip counters and the budget families in /metrics. */
static void test_xref_skipped_budget(void **state)
{
    (void)state;
    /* A1 was delivered to erp by customer-to-erp: its global id links both ids. */
    struct resp r = admin("GET", "/api/xref/customer/crm/A1", NULL);
    assert_int_equal(r.status, 200);
    json_t *j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "A1");
    assert_true(strlen(json_string_value(json_object_get(j, "global_id"))) > 0);
    json_t *links = json_object_get(j, "links");
    int crm = 0, erp = 0;
    for (size_t i = 0; i < json_array_size(links); i++) {
        json_t *l = json_array_get(links, i);
        const char *sys = json_string_value(json_object_get(l, "system"));
        const char *id = json_string_value(json_object_get(l, "id"));
        crm += strcmp(sys, "crm") == 0 && strcmp(id, "A1") == 0;
        erp += strcmp(sys, "erp") == 0 && id[0] != '\0';
        assert_true(json_is_string(json_object_get(l, "updated")));
    }
    assert_int_equal(crm, 1);
    assert_int_equal(erp, 1);
    /* The erp id leads back to the same global id. */
    const char *erp_id = NULL;
    for (size_t i = 0; i < json_array_size(links); i++) {
        json_t *l = json_array_get(links, i);
        if (strcmp(json_string_value(json_object_get(l, "system")), "erp") == 0) {
            erp_id = json_string_value(json_object_get(l, "id"));
        }
    }
    char path[256];
    snprintf(path, sizeof path, "/api/xref/customer/erp/%s", erp_id);
    struct resp r2 = admin("GET", path, NULL);
    assert_int_equal(r2.status, 200);
    json_t *j2 = json_of(&r2);
    assert_string_equal(json_string_value(json_object_get(j2, "global_id")),
                        json_string_value(json_object_get(j, "global_id")));
    json_decref(j2);
    es_free(r2.body);
    json_decref(j);
    es_free(r.body);
    expect_status(admin("GET", "/api/xref/customer/crm/never-synced", NULL), 404);
    expect_status(admin("GET", "/api/xref/nothing/crm/A1", NULL), 404);
    expect_status(admin("GET", "/api/xref/customer/nosys/A1", NULL), 404);
    expect_status(admin("GET", "/api/xref/customer/crm", NULL), 400);
    expect_status(admin("POST", "/api/xref/customer/crm/A1", NULL), 405);
    expect_status(http("GET", "/api/xref/customer/crm/A1", NULL, 0, NULL), 401);

    /* Skips: outcomes committed on the disabled probe flow (no worker touches it). */
    struct es_store *st = es_engine_store(g_eng);
    struct es_change_in in[3] = {{PROBE, "S1", "1", 0, "{}", 2},
                                 {PROBE, "S2", "1", 0, "{}", 2},
                                 {PROBE, "S3", "1", 0, "{}", 2}};
    struct es_err e;
    es_err_clear(&e);
    assert_int_equal(es_store_enqueue(st, in, 3, NULL, 0, NULL, &e), ES_OK);
    struct es_change *ch = NULL;
    size_t n = 0;
    assert_int_equal(es_store_lease(st, PROBE, 10, es_clock_wall_ms(), 60000, &ch, &n, &e), ES_OK);
    assert_int_equal(n, 3);
    struct es_outcome out[3];
    memset(out, 0, sizeof out);
    for (size_t i = 0; i < 3; i++) {
        out[i].id = ch[i].id;
        out[i].lease = ch[i].lease;
        out[i].state = ES_CHANGE_DONE;
        out[i].skip = i == 2 ? ES_SKIP_ECHO : ES_SKIP_NOOP;
    }
    /* Leases of other flows reclaim only expired leases: these hold for a minute. */
    assert_int_equal(es_store_complete(st, out, 3, es_clock_wall_ms(), &e), ES_OK);
    es_changes_free(ch, n);
    r = http("GET", "/metrics", NULL, 0, NULL);
    assert_true(metric(r.body, "erpsync_skipped_total{flow=\"" PROBE "\",reason=\"noop\"}") == 2);
    assert_true(metric(r.body, "erpsync_skipped_total{flow=\"" PROBE "\",reason=\"echo\"}") == 1);
    assert_true(metric(r.body, "erpsync_skipped_total{flow=\"" FLOW "\",reason=\"noop\"}") == 0);
    assert_non_null(strstr(r.body, "# TYPE erpsync_skipped_total counter\n"));
    /* Memory systems report no API budget: the families are there, without samples. */
    assert_non_null(strstr(r.body, "# TYPE erpsync_api_budget_remaining gauge\n"));
    assert_null(strstr(r.body, "erpsync_api_budget_remaining{"));
    es_free(r.body);
}

static void test_pause_resume_and_health(void **state)
{
    (void)state;
    struct resp r = http("GET", "/healthz", NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    es_free(r.body);

    expect_status(admin("POST", "/api/flows/" FLOW "/pause", "{\"reason\":\"maintenance\"}"), 200);
    expect_status(admin("POST", "/api/flows/nope/pause", NULL), 404);
    r = http("GET", "/healthz", NULL, 0, NULL);
    assert_int_equal(r.status, 503);
    j = json_of(&r);
    json_t *reasons = json_object_get(j, "reasons");
    assert_int_equal(json_array_size(reasons), 1);
    assert_non_null(strstr(json_string_value(json_array_get(reasons, 0)), "maintenance"));
    json_decref(j);
    es_free(r.body);

    /* Accepted while paused, but not processed. */
    size_t done = journal_count(FLOW, ES_CHANGE_DONE);
    expect_status(hook("{\"id\":\"P1\",\"version\":\"1\",\"data\":{\"Name\":\"Paused\"}}"), 202);
    sleep_ms(300);
    assert_int_equal(journal_count(FLOW, ES_CHANGE_PENDING), 1);
    r = http("GET", "/metrics", NULL, 0, NULL);
    assert_true(metric(r.body, "erpsync_flow_paused{flow=\"" FLOW "\"}") == 1);
    assert_true(metric(r.body, "erpsync_flow_changes{flow=\"" FLOW "\",state=\"pending\"}") == 1);
    es_free(r.body);

    expect_status(admin("POST", "/api/flows/" FLOW "/resume", NULL), 200);
    wait_count(FLOW, ES_CHANGE_DONE, done + 1);
    expect_status(http("GET", "/healthz", NULL, 0, NULL), 200);

    /* A stopping engine is unhealthy. */
    es_engine_request_stop(g_eng);
    r = http("GET", "/healthz", NULL, 0, NULL);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "engine"));
    es_free(r.body);
    /* While the engine stops, a webhook is either committed (2xx) or not kept at all (503,
     * the sender retries): never answered 2xx without being in the journal. */
    size_t before = journal_count(NULL, ES_CHANGE_STATE_LAST);
    r = hook("{\"id\":\"S1\",\"version\":\"1\",\"data\":{\"Name\":\"Late\"}}");
    if (r.status == 202) {
        assert_int_equal(journal_count(NULL, ES_CHANGE_STATE_LAST), before + 2);
    } else {
        assert_int_equal(r.status, 503);
        assert_int_equal(journal_count(NULL, ES_CHANGE_STATE_LAST), before);
    }
    es_free(r.body);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webhook_accepted),    cmocka_unit_test(test_webhook_refused),
        cmocka_unit_test(test_outbound_message),    cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_admin_auth),          cmocka_unit_test(test_admin_dead_and_review),
        cmocka_unit_test(test_metrics_many),        cmocka_unit_test(test_multi_flow_atomic),
        cmocka_unit_test(test_xref_skipped_budget), cmocka_unit_test(test_pause_resume_and_health),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
