/* SPDX-License-Identifier: MIT */
/*
 * The sap_odata connector against the real SAP OData emulator (erpsync-sandbox sap, started
 * here on a free loopback port with 6,000 seeded business partners, pages capped at 1,000
 * rows and CSRF tokens that expire after 8 seconds): $metadata describe, a snapshot read past
 * 5,000 rows following every __next, sales orders created as deep inserts, a create retried
 * without a duplicate, the credit block reported as a business refusal with SAP's words,
 * SAP's own error codes, CSRF expiry mid-run, ETag updates (a record changed during our write:
 * one re-read on 412, a second 412 is a conflict), and a 429 storm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/mem.h"
#include "sandbox_proc.h"

static struct sbproc g_sb;
static struct es_config *g_cfg;
static struct es_conn *g_c;

static int setup(void **state)
{
    (void)state;
    static const char *const extra[] = {"--seed",     "demo", "--page-max", "1000",
                                        "--csrf-ttl", "8",    NULL};
    static const struct sap_test_opts o = {
        .name = "test.yaml",
        .sandbox_args = extra,
        .env_prefix = "CONN_SAP",
        .timeout = "120s",
        .page_size = 1000,
        .more_options = "expand: {A_SlsPrcgConditionRecord: to_SlsPrcgCndnRecdValidity}",
        .object = "A_BusinessPartner",
    };
    return sap_test_open(&g_sb, &o, &g_cfg, &g_c);
}

static int teardown(void **state)
{
    (void)state;
    sap_test_close(&g_sb, g_cfg, g_c);
    return 0;
}

static void test_describe(void **state)
{
    (void)state;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_conn_ping(g_c, &err), ES_OK);
    json_t *d = NULL;
    assert_int_equal(es_conn_describe(g_c, "A_SalesOrder", &d, &err), ES_OK);
    assert_string_equal(json_string_value(json_array_get(json_object_get(d, "keys"), 0)),
                        "SalesOrder");
    int lc = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(d, "fields"), i, f)
    {
        const char *n = json_string_value(json_object_get(f, "name"));
        if (strcmp(n, "LastChangeDateTime") == 0) {
            lc = 1;
        }
        if (strcmp(n, "PurchaseOrderByCustomer") == 0) {
            assert_int_equal(json_integer_value(json_object_get(f, "length")), 35);
        }
    }
    assert_true(lc);
    json_decref(d);
    es_err_clear(&err);
    assert_int_equal(es_conn_describe(g_c, "A_Nope", &d, &err), ES_ECONFIG);
}

/* options.expand: a price condition comes with its validity (the material) in one read, on
 * change reads and page reads; a set without the option comes with navigation stubs only. */
static void test_expand(void **state)
{
    (void)state;
    for (int page = 0; page < 2; page++) {
        struct es_batch b;
        es_batch_init(&b);
        struct es_err err;
        es_err_clear(&err);
        int rc = page ? es_conn_read_page(g_c, "A_SlsPrcgConditionRecord", NULL, 50, &b, &err)
                      : es_conn_read_changes(g_c, "A_SlsPrcgConditionRecord", NULL, 50, &b, &err);
        if (rc != ES_OK) {
            fprintf(stderr, "read: %s\n", err.msg);
        }
        assert_int_equal(rc, ES_OK);
        assert_true(b.count > 0);
        for (size_t i = 0; i < b.count; i++) {
            json_t *v = json_object_get(b.items[i].data, "to_SlsPrcgCndnRecdValidity");
            json_t *rows = json_object_get(v, "results");
            assert_true(json_is_array(rows));
            assert_true(json_array_size(rows) >= 1);
            const char *mat =
                json_string_value(json_object_get(json_array_get(rows, 0), "Material"));
            assert_non_null(mat);
            assert_true(*mat != '\0');
            assert_non_null(json_object_get(b.items[i].data, "ConditionRateValue"));
        }
        es_batch_release(&b);
    }
    /* A set that is not named keeps its navigation properties deferred. */
    struct es_batch b;
    es_batch_init(&b);
    assert_int_equal(es_conn_read_page(g_c, "A_BusinessPartner", NULL, 5, &b, NULL), ES_OK);
    assert_true(b.count > 0);
    json_t *nav = json_object_get(b.items[0].data, "to_BusinessPartnerAddress");
    assert_true(nav == NULL || json_object_get(nav, "results") == NULL);
    es_batch_release(&b);
}

static void test_snapshot_past_5000(void **state)
{
    (void)state;
    struct es_batch b;
    es_batch_init(&b);
    struct es_err err;
    es_err_clear(&err);
    /* Pages are capped at 1,000 by the server: the read follows __next six times. */
    assert_int_equal(es_conn_read_changes(g_c, "A_BusinessPartner", NULL, 7000, &b, &err), ES_OK);
    assert_true(b.count >= 6000);
    json_t *keys = json_object();
    for (size_t i = 0; i < b.count; i++) {
        assert_int_equal(strlen(b.items[i].version), 16);
        json_object_set_new(keys, b.items[i].key, json_string(b.items[i].version));
    }
    assert_int_equal(json_object_size(keys), b.count);
    assert_string_equal(b.watermark, "fp:0"); /* the snapshot was complete */
    size_t total = b.count;
    es_batch_release(&b);
    /* In pages of 2,500 chained by watermark: the same records with the same fingerprints. */
    char *wm = NULL;
    size_t seen = 0;
    for (int guard = 0; guard < 10; guard++) {
        es_batch_init(&b);
        es_err_clear(&err);
        assert_int_equal(es_conn_read_changes(g_c, "A_BusinessPartner", wm, 2500, &b, &err), ES_OK);
        for (size_t i = 0; i < b.count; i++) {
            json_t *v = json_object_get(keys, b.items[i].key);
            assert_non_null(v);
            assert_string_equal(json_string_value(v), b.items[i].version);
        }
        seen += b.count;
        es_free(wm);
        wm = es_xstrdup(b.watermark);
        size_t got = b.count;
        es_batch_release(&b);
        if (got < 2500) {
            break;
        }
    }
    assert_int_equal(seen, total);
    assert_string_equal(wm, "fp:0");
    es_free(wm);
    json_decref(keys);
}

static json_t *order(const char *customer, const char *po, const char *qty)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s}]}", "SalesOrderType", "OR",
                     "SalesOrganization", "1010", "DistributionChannel", "10",
                     "OrganizationDivision", "00", "SoldToParty", customer,
                     "PurchaseOrderByCustomer", po, "to_Item", "SalesOrderItem", "10", "Material",
                     "TG1000", "RequestedQuantity", qty);
}

static void test_orders(void **state)
{
    (void)state;
    struct es_write in[3] = {
        {"o1", NULL, "PO-CONN-1", order("10100011", "PO-CONN-1", "1")},
        {"o2", NULL, "PO-CONN-2", order("10100010", "PO-CONN-2", "500")},
        {"o3", NULL, "PO-CONN-3", order("99999999", "PO-CONN-3", "1")},
    };
    struct es_write_result res[3];
    memset(res, 0, sizeof res);
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_conn_write_batch(g_c, "A_SalesOrder", ES_WRITE_CREATE,
                                         "PurchaseOrderByCustomer", in, 3, res, &err),
                     ES_OK);
    /* a normal order */
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[0].created, 1);
    assert_non_null(res[0].target_id);
    assert_string_equal(
        json_string_value(json_object_get(res[0].readback, "TotalCreditCheckStatus")), "A");
    char first[32];
    es_strlcpy(first, res[0].target_id, sizeof first);
    if (res[1].code != ES_EREJECTED) {
        fprintf(stderr, "order 2: %s / %s %s\n", res[1].err.msg, res[1].err.remote_code,
                res[1].err.remote_msg);
    }
    /* saved but credit-blocked: a business refusal with SAP's words and the order number */
    assert_int_equal(res[1].code, ES_EREJECTED);
    assert_non_null(res[1].target_id);
    assert_int_equal(es_code_class(res[1].code), ES_CLASS_BUSINESS);
    assert_non_null(strstr(res[1].err.remote_msg, "credit limit exceeded"));
    assert_string_equal(
        json_string_value(json_object_get(res[1].readback, "TotalCreditCheckStatus")), "B");
    /* refused by SAP with its own message code */
    assert_int_equal(res[2].code, ES_EVALIDATION);
    assert_string_equal(res[2].err.remote_code, "V1/302");
    assert_non_null(strstr(res[2].err.remote_msg, "99999999"));
    assert_null(res[2].target_id);
    es_write_results_release(res, 3);

    /* The same create again (a retry after a timeout): found, not created twice. */
    sbproc_sleep_ms(8500); /* and the CSRF token of the first writes has expired meanwhile */
    memset(res, 0, sizeof res);
    es_err_clear(&err);
    assert_int_equal(es_conn_write_batch(g_c, "A_SalesOrder", ES_WRITE_CREATE,
                                         "PurchaseOrderByCustomer", in, 1, res, &err),
                     ES_OK);
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[0].created, 0);
    assert_string_equal(res[0].target_id, first);
    es_write_results_release(res, 1);

    /* An update with If-Match after the CSRF token expired again. */
    sbproc_sleep_ms(8500);
    struct es_write up = {"o1", first, NULL,
                          json_pack("{s:s}", "PurchaseOrderByCustomer", "PO-CONN-1-B")};
    memset(res, 0, sizeof res);
    es_err_clear(&err);
    int rc = es_conn_write_batch(g_c, "A_SalesOrder", ES_WRITE_UPDATE, NULL, &up, 1, res, &err);
    if (rc != ES_OK || res[0].code != ES_OK) {
        fprintf(stderr, "update: %s / %s %s\n", err.msg, res[0].err.msg, res[0].err.remote_msg);
    }
    assert_int_equal(rc, ES_OK);
    assert_int_equal(res[0].code, ES_OK);
    es_write_results_release(res, 1);
    json_t *o = NULL;
    es_err_clear(&err);
    assert_int_equal(es_conn_get(g_c, "A_SalesOrder", first, &o, &err), ES_OK);
    assert_string_equal(json_string_value(json_object_get(o, "PurchaseOrderByCustomer")),
                        "PO-CONN-1-B");
    json_decref(o);
    json_decref(up.data);

    /* Changes by LastChangeDateTime include our order. */
    struct es_batch b;
    es_batch_init(&b);
    es_err_clear(&err);
    assert_int_equal(es_conn_read_changes(g_c, "A_SalesOrder", NULL, 100000, &b, &err), ES_OK);
    int found = 0;
    for (size_t i = 0; i < b.count; i++) {
        found |= strcmp(b.items[i].key, first) == 0;
        if (i > 0) {
            assert_true(strcmp(b.items[i - 1].version, b.items[i].version) <= 0);
        }
    }
    assert_true(found);
    assert_non_null(strchr(b.watermark, '|'));
    es_batch_release(&b);
    for (int i = 0; i < 3; i++) {
        json_decref(in[i].data);
    }
}

/* Changes the order "in SAP" while our PATCH is held by the emulator's latency fault. */
static char g_order[32];
static void *change_behind(void *arg)
{
    sbproc_sleep_ms((int)(intptr_t)arg);
    char path[128];
    snprintf(path, sizeof path, "/__sandbox/records/A_SalesOrder/%s", g_order);
    json_t *j = NULL;
    long st = sbproc_admin(&g_sb, "PATCH", path, "{\"CustomerPaymentTerms\":\"NT60\"}", &j);
    json_decref(j);
    return (void *)(intptr_t)st;
}

static int update_during_change(int changes, struct es_write_result *res)
{
    json_t *j = NULL;
    char fault[256];
    snprintf(fault, sizeof fault,
             "{\"route\":\"/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder(\","
             "\"method\":\"PATCH\",\"latency_ms\":2000,\"count\":%d}",
             changes);
    assert_int_equal(sbproc_admin(&g_sb, "POST", "/__sandbox/faults", fault, &j), 200);
    json_decref(j);
    pthread_t t[2];
    /* Each PATCH is held 2 s by the emulator; the changes land 1 s into the first and
     * (for two) 1 s into the second. */
    for (int i = 0; i < changes; i++) {
        assert_int_equal(
            pthread_create(&t[i], NULL, change_behind, (void *)(intptr_t)(1000 + 2000 * i)), 0);
    }
    struct es_write up = {"o1", g_order, NULL,
                          json_pack("{s:s}", "PurchaseOrderByCustomer", "PO-ETAG")};
    memset(res, 0, sizeof *res);
    struct es_err err;
    es_err_clear(&err);
    int rc = es_conn_write_batch(g_c, "A_SalesOrder", ES_WRITE_UPDATE, NULL, &up, 1, res, &err);
    for (int i = 0; i < changes; i++) {
        void *st = NULL;
        pthread_join(t[i], &st);
        assert_int_equal((intptr_t)st, 200);
    }
    json_decref(up.data);
    return rc;
}

static void test_stale_etag(void **state)
{
    (void)state;
    /* an order of our own */
    struct es_write in = {"oe", NULL, "PO-ETAG-0", order("10100011", "PO-ETAG-0", "1")};
    struct es_write_result res;
    memset(&res, 0, sizeof res);
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(
        es_conn_write_batch(g_c, "A_SalesOrder", ES_WRITE_CREATE, NULL, &in, 1, &res, &err), ES_OK);
    assert_int_equal(res.code, ES_OK);
    es_strlcpy(g_order, res.target_id, sizeof g_order);
    es_write_results_release(&res, 1);
    json_decref(in.data);

    /* One change between our read and our write: 412, one re-read, success; both edits kept. */
    assert_int_equal(update_during_change(1, &res), ES_OK);
    assert_int_equal(res.code, ES_OK);
    es_write_results_release(&res, 1);
    json_t *o = NULL;
    es_err_clear(&err);
    assert_int_equal(es_conn_get(g_c, "A_SalesOrder", g_order, &o, &err), ES_OK);
    assert_string_equal(json_string_value(json_object_get(o, "PurchaseOrderByCustomer")),
                        "PO-ETAG");
    assert_string_equal(json_string_value(json_object_get(o, "CustomerPaymentTerms")), "NT60");
    json_decref(o);

    /* A fresh CSRF token first, so that no token expiry mixes into the timing below. */
    in.data = order("10100011", "PO-ETAG-1", "1");
    in.match = "PO-ETAG-1";
    memset(&res, 0, sizeof res);
    es_err_clear(&err);
    assert_int_equal(
        es_conn_write_batch(g_c, "A_SalesOrder", ES_WRITE_CREATE, NULL, &in, 1, &res, &err), ES_OK);
    es_write_results_release(&res, 1);
    json_decref(in.data);
    /* Changed again during the retry too: exactly one re-read, then a conflict for review. */
    assert_int_equal(update_during_change(2, &res), ES_OK);
    assert_int_equal(res.code, ES_ECONFLICT);
    assert_int_equal(res.err.http_status, 412);
    es_write_results_release(&res, 1);
}

static void test_rate_limit_storm(void **state)
{
    (void)state;
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "POST", "/__sandbox/faults",
                                  "{\"route\":\"/sap/opu/odata/sap/\",\"rate_429\":1,"
                                  "\"retry_after\":5,\"count\":3}",
                                  &j),
                     200);
    json_decref(j);
    int limited = 0;
    for (int i = 0; i < 6; i++) {
        json_t *o = NULL;
        struct es_err err;
        es_err_clear(&err);
        int rc = es_conn_get(g_c, "A_BusinessPartner", "10100001", &o, &err);
        json_decref(o);
        if (rc == ES_OK) {
            break;
        }
        assert_int_equal(rc, ES_ERATELIMIT);
        assert_true(err.retry_after == 5.0);
        limited++;
    }
    assert_int_equal(limited, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe),           cmocka_unit_test(test_expand),
        cmocka_unit_test(test_snapshot_past_5000), cmocka_unit_test(test_orders),
        cmocka_unit_test(test_stale_etag),         cmocka_unit_test(test_rate_limit_storm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
