/* SPDX-License-Identifier: MIT */
/*
 * The salesforce connector against the real Salesforce emulator (erpsync-sandbox
 * salesforce, started here on a free loopback port with a 3-second token lifetime):
 * describe, upserts by external id (and a timed-out upsert retried without a duplicate),
 * duplicate-rule and validation refusals with Salesforce's codes, Bulk 2.0 ingest of 5,200
 * records, change reads past 5,000 rows that miss nothing, token expiry mid-run (exactly one
 * re-login), 429 storms, deletes seen through queryAll, and the API budget header.
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

static struct sbproc g_sb;
static struct es_config *g_cfg;
static struct es_conn *g_c;

static int setup(void **state)
{
    (void)state;
    static const char *const extra[] = {"--token-ttl", "3s", "--seed", "none", NULL};
    if (sbproc_start(&g_sb, "salesforce", extra) != 0) {
        fprintf(stderr, "cannot start the salesforce sandbox\n");
        return -1;
    }
    setenv("CONN_SF_ID", "demo", 1);
    setenv("CONN_SF_SECRET", "demo", 1);
    char yaml[8192];
    snprintf(
        yaml, sizeof yaml,
        "store: sqlite:/tmp/unused.db\n"
        "systems:\n"
        "  crm:\n"
        "    connector: salesforce\n"
        "    url: %s\n"
        "    api_version: \"60.0\"\n"
        "    timeout: 120s\n"
        "    auth:\n"
        "      oauth2_client_credentials: {id_env: CONN_SF_ID, secret_env: CONN_SF_SECRET}\n"
        "    options: {bulk_threshold: 1000, bulk_poll: 200ms, overlap: 0s, query_batch_size: "
        "200}\n"
        "  crm_fast:\n"
        "    connector: salesforce\n"
        "    url: %s\n"
        "    timeout: 2s\n"
        "    auth:\n"
        "      oauth2_client_credentials: {id_env: CONN_SF_ID, secret_env: CONN_SF_SECRET}\n"
        "  crm_bulk:\n"
        "    connector: salesforce\n"
        "    url: %s\n"
        "    timeout: 60s\n"
        "    auth:\n"
        "      oauth2_client_credentials: {id_env: CONN_SF_ID, secret_env: CONN_SF_SECRET}\n"
        "    options: {bulk_threshold: 1, bulk_poll: 100ms}\n"
        "  mem: {connector: memory}\n"
        "entities:\n"
        "  customer: {objects: {crm: Account, mem: Account}}\n"
        "flows:\n"
        "  f: {entity: customer, from: crm, to: mem, trigger: {poll: 1m}, map: {Name: Name}}\n",
        g_sb.url, g_sb.url, g_sb.url);
    return sbproc_open_system("test.yaml", yaml, "crm", &g_cfg, &g_c);
}

static int teardown(void **state)
{
    (void)state;
    es_conn_close(g_c);
    es_config_free(g_cfg);
    sbproc_stop(&g_sb);
    es_http_token_cache_clear();
    return 0;
}

static int has_field(json_t *d, const char *name, int *required)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(d, "fields"), i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0) {
            *required = json_is_true(json_object_get(f, "required"));
            return 1;
        }
    }
    return 0;
}

static void test_describe_and_ping(void **state)
{
    (void)state;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_conn_ping(g_c, &err), ES_OK);
    assert_true(g_c->api_max > 0);
    json_t *d = NULL;
    assert_int_equal(es_conn_describe(g_c, NULL, &d, &err), ES_OK);
    int found = 0;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(d, "objects"), i, o)
    {
        found |= strcmp(json_string_value(o), "Account") == 0;
    }
    assert_true(found);
    json_decref(d);
    assert_int_equal(es_conn_describe(g_c, "Account", &d, &err), ES_OK);
    int req = 0;
    assert_true(has_field(d, "Name", &req));
    assert_true(req);
    assert_true(has_field(d, "BillingCity", &req));
    assert_false(req);
    json_decref(d);
    es_err_clear(&err);
    assert_int_equal(es_conn_describe(g_c, "NoSuchObject", &d, &err), ES_ENOTFOUND);
    assert_string_equal(err.remote_code, "NOT_FOUND");
}

/* Counts Accounts whose field equals value, with SOQL through a plain authenticated call. */
static long count_where_obj(const char *object, const char *field, const char *value)
{
    struct es_http *h = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_http_new(es_config_system(g_cfg, "crm"), &h, &err), ES_OK);
    struct es_buf q;
    es_buf_init(&q, 0);
    char soql[256];
    snprintf(soql, sizeof soql, "SELECT Id FROM %s WHERE %s = '%s'", object, field, value);
    assert_int_equal(es_buf_puts(&q, "/services/data/v60.0/query?q="), ES_OK);
    assert_int_equal(es_http_escape(&q, soql), ES_OK);
    struct es_http_req_opts rq = {.method = "GET", .url = q.data};
    json_t *j = NULL;
    int rc = es_http_json(h, &rq, NULL, &j, &err);
    if (rc != ES_OK) {
        fprintf(stderr, "count_where: %s\n", err.msg);
    }
    assert_int_equal(rc, ES_OK);
    long n = (long)json_integer_value(json_object_get(j, "totalSize"));
    json_decref(j);
    es_buf_release(&q);
    es_http_free(h);
    return n;
}

static long count_where(const char *field, const char *value)
{
    return count_where_obj("Account", field, value);
}

/* Adds one fault rule (a JSON object) to the emulator. */
static void add_fault(const char *rule)
{
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "POST", "/__sandbox/faults", rule, &j), 200);
    json_decref(j);
}

/* Writes n Accounts through c into res (zeroed here); upserts match Erpsync_Global_Id__c.
 * Returns the call's rc; each record's result is the caller's to check (release res with
 * es_write_results_release()). */
static int write_accounts(struct es_conn *c, enum es_write_op op, const struct es_write *in,
                          size_t n, struct es_write_result *res)
{
    struct es_err err;
    es_err_clear(&err);
    memset(res, 0, n * sizeof *res);
    return es_conn_write_batch(
        c, "Account", op, op == ES_WRITE_UPSERT ? "Erpsync_Global_Id__c" : NULL, in, n, res, &err);
}

static void test_upsert_idempotent(void **state)
{
    (void)state;
    struct es_write in[3];
    struct es_write_result res[3];
    const char *ids[3] = {"GX-1", "GX-2", "GX-3"};
    for (int i = 0; i < 3; i++) {
        in[i].key = ids[i];
        in[i].target_id = NULL;
        in[i].match = ids[i];
        in[i].data = json_pack("{s:s, s:s, s:s}", "Name", ids[i], "BillingCity", "Berlin",
                               "BillingPostalCode", "1011");
        (void)json_object_set_new(in[i].data, "BillingPostalCode", json_sprintf("10%d1", i));
    }
    assert_int_equal(write_accounts(g_c, ES_WRITE_UPSERT, in, 3, res), ES_OK);
    char first[3][24];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(res[i].code, ES_OK);
        assert_int_equal(res[i].created, 1);
        assert_non_null(res[i].target_id);
        es_strlcpy(first[i], res[i].target_id, sizeof first[i]);
    }
    es_write_results_release(res, 3);

    /* The next upsert times out (the emulator holds the connection past our 2 s timeout):
     * every record gets the transient failure, and the retry creates nothing twice. */
    add_fault("{\"route\":\"/services/data/v60.0/composite/sobjects\",\"method\":\"PATCH\","
              "\"rate_timeout\":1,\"timeout_ms\":3000,\"count\":1}");
    struct es_conn *fast = NULL;
    struct es_err err;
    es_err_clear(&err);
    const struct es_system_cfg *fcfg = es_config_system(g_cfg, "crm_fast");
    assert_non_null(fcfg);
    assert_int_equal(es_conn_open(fcfg, &fast, &err), ES_OK);
    int rc = write_accounts(fast, ES_WRITE_UPSERT, in, 3, res);
    assert_true(rc == ES_ETIMEOUT || rc == ES_EIO);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(res[i].code, rc);
        assert_true(es_code_retryable(res[i].code));
    }
    es_write_results_release(res, 3);
    assert_int_equal(write_accounts(fast, ES_WRITE_UPSERT, in, 3, res), ES_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(res[i].code, ES_OK);
        assert_int_equal(res[i].created, 0);
        assert_string_equal(res[i].target_id, first[i]);
        assert_int_equal(count_where("Erpsync_Global_Id__c", ids[i]), 1);
    }
    es_write_results_release(res, 3);
    es_conn_close(fast);
    for (int i = 0; i < 3; i++) {
        json_decref(in[i].data);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    struct es_write in[4];
    struct es_write_result res[4];
    memset(in, 0, sizeof in);
    memset(res, 0, sizeof res);
    in[0].key = "dup-a";
    in[0].data = json_pack("{s:s, s:s}", "Name", "Dupe Corp", "BillingPostalCode", "55555");
    in[1].key = "dup-b";
    in[1].data = json_pack("{s:s, s:s}", "Name", "Dupe Corp", "BillingPostalCode", "55555");
    in[2].key = "no-name";
    in[2].data = json_pack("{s:s}", "BillingCity", "Paris");
    in[3].key = "too-long";
    in[3].data = json_pack("{s:s, s:s}", "Name", "Long City Ltd", "BillingCity",
                           "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch-Extra");
    assert_int_equal(write_accounts(g_c, ES_WRITE_CREATE, in, 4, res), ES_OK);
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[1].code, ES_EDUPLICATE);
    assert_string_equal(res[1].err.remote_code, "DUPLICATES_DETECTED");
    assert_string_equal(res[1].err.system, "crm");
    assert_string_equal(res[1].err.key, "dup-b");
    assert_int_equal(res[2].code, ES_EVALIDATION);
    assert_string_equal(res[2].err.remote_code, "REQUIRED_FIELD_MISSING");
    assert_int_equal(res[3].code, ES_EVALIDATION);
    assert_string_equal(res[3].err.remote_code, "STRING_TOO_LONG");
    es_write_results_release(res, 4);
    for (int i = 0; i < 4; i++) {
        json_decref(in[i].data);
    }
}

/* Reads every change from wm on, limit per call, into seen (key -> version). */
static size_t read_all(const char *wm0, size_t limit, json_t *seen, char **wm_out)
{
    char *wm = wm0 ? es_xstrdup(wm0) : NULL;
    size_t calls = 0;
    for (;;) {
        struct es_batch b;
        es_batch_init(&b);
        struct es_err err;
        es_err_clear(&err);
        int rc = es_conn_read_changes(g_c, "Account", wm, limit, &b, &err);
        if (rc != ES_OK) {
            fprintf(stderr, "read_changes: %s\n", err.msg);
        }
        assert_int_equal(rc, ES_OK);
        assert_non_null(b.watermark);
        for (size_t i = 0; i < b.count; i++) {
            if (i > 0) {
                /* ordered by (SystemModstamp, Id) */
                int c = strcmp(b.items[i - 1].version, b.items[i].version);
                assert_true(c < 0 || (c == 0 && strcmp(b.items[i - 1].key, b.items[i].key) < 0));
            }
            json_object_set_new(seen, b.items[i].key, json_string(b.items[i].version));
        }
        es_free(wm);
        wm = es_xstrdup(b.watermark);
        size_t got = b.count;
        es_batch_release(&b);
        calls++;
        if (got < limit) {
            break;
        }
        assert_true(calls < 100);
    }
    *wm_out = wm;
    return calls;
}

static void test_bulk_and_paging(void **state)
{
    (void)state;
    enum { N = 2400 };
    struct es_write *in = es_xcalloc(N, sizeof *in);
    struct es_write_result *res = es_xcalloc(N, sizeof *res);
    char(*keys)[16] = es_xcalloc(N, sizeof *keys);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "BULK-%05d", i);
        in[i].key = keys[i];
        in[i].match = keys[i];
        in[i].data = json_pack("{s:s, s:s, s:s}", "Name", keys[i], "BillingCity",
                               i % 2 ? "Hamburg, \"Altona\"" : "M\xc3\xbcnchen",
                               "BillingPostalCode", keys[i] + 5);
    }
    /* The first 1,100 go through one Bulk API 2.0 job (above bulk_threshold 1000), the rest
     * through sObject Collections in batches of 1,000. */
    struct es_err err;
    int rc = ES_OK;
    static const size_t chunks[][2] = {{0, 1100}, {1100, 1000}, {2100, 300}};
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0] && rc == ES_OK; k++) {
        es_err_clear(&err);
        rc = es_conn_write_batch(g_c, "Account", ES_WRITE_UPSERT, "Erpsync_Global_Id__c",
                                 in + chunks[k][0], chunks[k][1], res + chunks[k][0], &err);
    }
    if (rc != ES_OK) {
        fprintf(stderr, "write: %s (%s)\n", err.msg, err.remote_msg);
    }
    assert_int_equal(rc, ES_OK);
    json_t *targets = json_object();
    for (int i = 0; i < N; i++) {
        if (res[i].code != ES_OK) {
            fprintf(stderr, "record %d: %s %s\n", i, res[i].err.msg, res[i].err.remote_msg);
        }
        assert_int_equal(res[i].code, ES_OK);
        assert_non_null(res[i].target_id);
        json_object_set_new(targets, res[i].target_id, json_true());
    }
    assert_int_equal(json_object_size(targets), N);
    es_write_results_release(res, N);

    /* One big read follows every nextRecordsUrl (pages of at most 2,000). */
    json_t *big = json_object();
    char *wm = NULL;
    assert_int_equal(read_all(NULL, 10000, big, &wm), 1);
    es_free(wm);
    /* Small reads chained by watermark see exactly the same records. */
    json_t *small = json_object();
    size_t calls = read_all(NULL, 700, small, &wm);
    assert_true(calls >= 4);
    assert_int_equal(json_object_size(small), json_object_size(big));
    const char *k;
    json_t *v;
    json_object_foreach(targets, k, v)
    {
        assert_non_null(json_object_get(big, k));
        assert_non_null(json_object_get(small, k));
    }
    /* A read from the last watermark finds nothing new: at most the overlap window's
     * records, all of them already seen, with the same versions. */
    json_t *again = json_object();
    char *wm2 = NULL;
    read_all(wm, 700, again, &wm2);
    json_object_foreach(again, k, v)
    {
        assert_non_null(json_object_get(small, k));
        assert_string_equal(json_string_value(v), json_string_value(json_object_get(small, k)));
    }
    json_decref(again);
    es_free(wm2);
    /* A delete shows up as a deleted record after the watermark (queryAll). */
    struct es_write del = {.key = keys[7], .target_id = NULL};
    json_object_foreach(targets, k, v)
    {
        del.target_id = k;
        break;
    }
    struct es_write_result dres;
    memset(&dres, 0, sizeof dres);
    es_err_clear(&err);
    assert_int_equal(
        es_conn_write_batch(g_c, "Account", ES_WRITE_DELETE, NULL, &del, 1, &dres, &err), ES_OK);
    assert_int_equal(dres.code, ES_OK);
    es_write_results_release(&dres, 1);
    struct es_batch b;
    es_batch_init(&b);
    es_err_clear(&err);
    assert_int_equal(es_conn_read_changes(g_c, "Account", wm, 100, &b, &err), ES_OK);
    int seen_delete = 0;
    for (size_t i = 0; i < b.count; i++) {
        if (strcmp(b.items[i].key, del.target_id) == 0) {
            seen_delete = b.items[i].deleted;
        }
    }
    assert_true(seen_delete);
    es_batch_release(&b);
    es_free(wm);

    /* read_page walks every record once. */
    size_t total = 0;
    char *page = NULL;
    for (int guard = 0; guard < 100; guard++) {
        es_batch_init(&b);
        es_err_clear(&err);
        assert_int_equal(es_conn_read_page(g_c, "Account", page, 2000, &b, &err), ES_OK);
        total += b.count;
        es_free(page);
        page = b.next_page ? es_xstrdup(b.next_page) : NULL;
        es_batch_release(&b);
        if (!page) {
            break;
        }
    }
    assert_true(total >= N - 1);
    assert_true(g_c->api_used > 0);

    json_decref(big);
    json_decref(small);
    json_decref(targets);
    for (int i = 0; i < N; i++) {
        json_decref(in[i].data);
    }
    es_free(in);
    es_free(res);
    es_free(keys);
}

static void test_token_expiry(void **state)
{
    (void)state;
    struct es_batch b;
    struct es_err err;
    es_batch_init(&b);
    es_err_clear(&err);
    assert_int_equal(es_conn_read_changes(g_c, "Account", NULL, 5, &b, &err), ES_OK);
    es_batch_release(&b);
    long before = es_http_token_fetches();
    sbproc_sleep_ms(4000); /* past the emulator's 3 s token lifetime */
    es_batch_init(&b);
    es_err_clear(&err);
    assert_int_equal(es_conn_read_changes(g_c, "Account", NULL, 5, &b, &err), ES_OK);
    assert_int_equal(b.count, 5);
    es_batch_release(&b);
    assert_int_equal(es_http_token_fetches(), before + 1);
}

static void test_rate_limit_storm(void **state)
{
    (void)state;
    add_fault("{\"route\":\"/services/data/\",\"rate_429\":1,\"retry_after\":7,\"count\":4}");
    int limited = 0;
    for (int i = 0; i < 10; i++) {
        struct es_batch b;
        struct es_err err;
        es_batch_init(&b);
        es_err_clear(&err);
        int rc = es_conn_read_changes(g_c, "Account", NULL, 5, &b, &err);
        es_batch_release(&b);
        if (rc == ES_OK) {
            break;
        }
        assert_int_equal(rc, ES_ERATELIMIT);
        assert_true(err.retry_after == 7.0);
        assert_int_equal(err.http_status, 429);
        assert_string_equal(err.system, "crm");
        limited++;
    }
    assert_true(limited >= 1 && limited <= 4);
    /* A write in a storm: every record carries the rate limit, nothing is lost silently. */
    add_fault("{\"route\":\"/services/data/\",\"rate_429\":1,\"retry_after\":3,\"count\":1}");
    struct es_write in[2] = {
        {"s1", NULL, "STORM-1", json_pack("{s:s}", "Name", "Storm One")},
        {"s2", NULL, "STORM-2", json_pack("{s:s}", "Name", "Storm Two")},
    };
    struct es_write_result res[2];
    assert_int_equal(write_accounts(g_c, ES_WRITE_UPSERT, in, 2, res), ES_ERATELIMIT);
    assert_int_equal(res[0].code, ES_ERATELIMIT);
    assert_int_equal(res[1].code, ES_ERATELIMIT);
    es_write_results_release(res, 2);
    json_decref(in[0].data);
    json_decref(in[1].data);
}

/* One PricebookEntry write; returns the result code, *id gets the target id (if any). */
static int write_pbe(enum es_write_op op, const char *ext, const char *tid, const char *match,
                     const char *pb, const char *prod, double price, char *id, size_t cap)
{
    struct es_write in = {"pbe", tid, match,
                          json_pack("{s:s, s:s, s:f, s:b, s:s}", "Pricebook2Id", pb, "Product2Id",
                                    prod, "UnitPrice", price, "IsActive", 1, "Tryton_Product_Id__c",
                                    match ? match : "PX-1")};
    struct es_write_result res;
    memset(&res, 0, sizeof res);
    struct es_err err;
    es_err_clear(&err);
    int rc = es_conn_write_batch(g_c, "PricebookEntry", op, ext, &in, 1, &res, &err);
    int code = rc != ES_OK ? rc : (int)res.code;
    if (code != ES_OK) {
        fprintf(stderr, "pbe write: %s\n", res.err.msg);
    }
    if (id && res.target_id) {
        es_strlcpy(id, res.target_id, cap);
    }
    es_write_results_release(&res, 1);
    json_decref(in.data);
    return code;
}

/* Creates a Product2 named name; its id goes to id[cap]. */
static void create_product(const char *name, char *id, size_t cap)
{
    struct es_write in = {"p", NULL, NULL, json_pack("{s:s}", "Name", name)};
    struct es_write_result res;
    memset(&res, 0, sizeof res);
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(
        es_conn_write_batch(g_c, "Product2", ES_WRITE_CREATE, NULL, &in, 1, &res, &err), ES_OK);
    assert_int_equal(res.code, ES_OK);
    es_strlcpy(id, res.target_id, cap);
    es_write_results_release(&res, 1);
    json_decref(in.data);
}

static double pbe_price(const char *id)
{
    json_t *r = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_conn_get(g_c, "PricebookEntry", id, &r, &err), ES_OK);
    double p = json_number_value(json_object_get(r, "UnitPrice"));
    json_decref(r);
    return p;
}

/* Updates resend the same payload shape as creates: PricebookEntry's Product2Id and
 * Pricebook2Id are create-only (the emulator refuses them on update like Salesforce), so the
 * connector leaves them out on every update path it can know: update by id, upsert of a
 * record with a known target id, upsert by external id of a record that exists already. */
static void test_create_only_fields_on_update(void **state)
{
    (void)state;
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "POST", "/__sandbox/reset", "{\"seed\":\"demo\"}", &j),
                     200);
    json_decref(j);
    struct es_batch b;
    struct es_err err;
    es_batch_init(&b);
    es_err_clear(&err);
    assert_int_equal(es_conn_read_page(g_c, "Pricebook2", NULL, 50, &b, &err), ES_OK);
    char pb[24] = "";
    for (size_t i = 0; i < b.count; i++) {
        if (json_is_true(json_object_get(b.items[i].data, "IsStandard"))) {
            es_strlcpy(pb, b.items[i].key, sizeof pb);
        }
    }
    es_batch_release(&b);
    assert_true(pb[0] != '\0');
    char prod[24];
    create_product("Create-only probe", prod, sizeof prod);

    char id[24] = "", id2[24] = "";
    assert_int_equal(write_pbe(ES_WRITE_CREATE, NULL, NULL, NULL, pb, prod, 10.0, id, sizeof id),
                     ES_OK);
    assert_true(pbe_price(id) == 10.0);
    /* update by id, same payload shape */
    assert_int_equal(write_pbe(ES_WRITE_UPDATE, NULL, id, NULL, pb, prod, 12.5, NULL, 0), ES_OK);
    assert_true(pbe_price(id) == 12.5);
    /* upsert without external id, target known */
    assert_int_equal(write_pbe(ES_WRITE_UPSERT, NULL, id, NULL, pb, prod, 13.0, NULL, 0), ES_OK);
    assert_true(pbe_price(id) == 13.0);
    /* upsert by external id, target known */
    assert_int_equal(write_pbe(ES_WRITE_UPSERT, "Tryton_Product_Id__c", id, "PX-1", pb, prod, 14.0,
                               id2, sizeof id2),
                     ES_OK);
    assert_string_equal(id2, id);
    assert_true(pbe_price(id) == 14.0);
    /* upsert by external id, target unknown (a retry, a lost link): looked up first */
    assert_int_equal(write_pbe(ES_WRITE_UPSERT, "Tryton_Product_Id__c", NULL, "PX-1", pb, prod,
                               15.0, id2, sizeof id2),
                     ES_OK);
    assert_string_equal(id2, id);
    assert_true(pbe_price(id) == 15.0);
    assert_int_equal(count_where_obj("PricebookEntry", "Tryton_Product_Id__c", "PX-1"), 1);

    /* the same through Bulk API 2.0 jobs (bulk_threshold 1): a second entry, then both
     * updated by id and upserted by external id without links */
    char id3[24] = "";
    char prod2[24];
    create_product("Create-only probe 2", prod2, sizeof prod2);
    assert_int_equal(
        write_pbe(ES_WRITE_CREATE, NULL, NULL, "PX-2", pb, prod2, 20.0, id3, sizeof id3), ES_OK);
    struct es_conn *bulk = NULL;
    assert_int_equal(es_conn_open(es_config_system(g_cfg, "crm_bulk"), &bulk, &err), ES_OK);
    const char *ids[2] = {id, id3}, *ms[2] = {"PX-1", "PX-2"}, *prods[2] = {prod, prod2};
    for (int round = 0; round < 2; round++) {
        struct es_write in[2];
        struct es_write_result res[2];
        memset(res, 0, sizeof res);
        for (int i = 0; i < 2; i++) {
            in[i].key = ms[i];
            in[i].target_id = round == 0 ? ids[i] : NULL;
            in[i].match = ms[i];
            in[i].data =
                json_pack("{s:s, s:s, s:f, s:s}", "Pricebook2Id", pb, "Product2Id", prods[i],
                          "UnitPrice", 30.0 + round * 10 + i, "Tryton_Product_Id__c", ms[i]);
        }
        es_err_clear(&err);
        int rc = es_conn_write_batch(bulk, "PricebookEntry",
                                     round == 0 ? ES_WRITE_UPDATE : ES_WRITE_UPSERT,
                                     round == 0 ? NULL : "Tryton_Product_Id__c", in, 2, res, &err);
        if (rc != ES_OK || res[0].code != ES_OK || res[1].code != ES_OK) {
            fprintf(stderr, "bulk round %d: %s / %s / %s\n", round, err.msg, res[0].err.msg,
                    res[1].err.msg);
        }
        assert_int_equal(rc, ES_OK);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(res[i].code, ES_OK);
            assert_true(pbe_price(ids[i]) == 30.0 + round * 10 + i);
            json_decref(in[i].data);
        }
        es_write_results_release(res, 2);
    }
    es_conn_close(bulk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe_and_ping),
        cmocka_unit_test(test_upsert_idempotent),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bulk_and_paging),
        cmocka_unit_test(test_token_expiry),
        cmocka_unit_test(test_rate_limit_storm),
        cmocka_unit_test(test_create_only_fields_on_update),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
