/* SPDX-License-Identifier: MIT */
/*
 * The sap_odata connector against malformed answers, produced by the SAP emulator's fault
 * injection (erpsync-sandbox sap, `rate_body` = a canned answer instead of the service's,
 * `rate_cut` = the service's real answer cut in half): an HTML page with 200 (a login or
 * proxy page) and with 500 (an ICM error page), a feed cut in the middle, Atom XML where JSON
 * was asked for, JSON that is not an OData feed, an empty 200, a cut or HTML $metadata, and
 * writes whose answer is an HTML page (nothing saved) or is cut after SAP saved (the retry
 * finds the first record, no duplicate). Every case is a classified error with a clear
 * message, no crash (the test runs under ASan), and the next call works again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/mem.h"
#include "sandbox_proc.h"

#define SVC_ROOT "/sap/opu/odata/sap/"

static struct sbproc g_sb;
static struct es_config *g_cfg;
static struct es_conn *g_c;

static int setup(void **state)
{
    (void)state;
    static const char *const extra[] = {"--seed", "demo", "--partners", "40", NULL};
    static const struct sap_test_opts o = {
        .name = "malformed.yaml",
        .sandbox_args = extra,
        .env_prefix = "CONN_SAPM",
        .timeout = "60s",
        .page_size = 100,
        .object = "A_SalesOrder",
    };
    return sap_test_open(&g_sb, &o, &g_cfg, &g_c);
}

static int teardown(void **state)
{
    (void)state;
    sap_test_close(&g_sb, g_cfg, g_c);
    return 0;
}

/* Adds one fault rule that hits the next matching request only. */
static void fault_once(const char *route, const char *method, const char *extra_json)
{
    char body[1200];
    snprintf(body, sizeof body, "{\"route\":\"%s\",\"method\":\"%s\",\"count\":1,%s}", route,
             method, extra_json);
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "POST", "/__sandbox/faults", body, &j), 200);
    json_decref(j);
}

/* The fault rules left (all of ours have count 1, so 0 means every one was hit). */
static size_t faults_left(void)
{
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "GET", "/__sandbox/faults", NULL, &j), 200);
    size_t n = json_array_size(json_object_get(j, "faults"));
    json_decref(j);
    return n;
}

/* A change read of sales orders; returns rc, err filled. */
static int read_orders(struct es_err *err, size_t *count)
{
    struct es_batch b;
    es_batch_init(&b);
    es_err_clear(err);
    int rc = es_conn_read_changes(g_c, "A_SalesOrder", NULL, 50, &b, err);
    if (count) {
        *count = b.count;
    }
    es_batch_release(&b);
    return rc;
}

static void expect_read_ok(void)
{
    struct es_err err;
    size_t n = 0;
    int rc = read_orders(&err, &n);
    if (rc != ES_OK) {
        fprintf(stderr, "read after the fault: %s\n", err.msg);
    }
    assert_int_equal(rc, ES_OK);
    assert_int_equal(n, 50);
}

static void has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        fprintf(stderr, "'%s' not in '%s'\n", needle, hay);
    }
    assert_non_null(strstr(hay, needle));
}

static void test_feed_html_pages(void **state)
{
    (void)state;
    struct es_err err;
    expect_read_ok(); /* $metadata is cached from here on */

    /* a login or proxy page answering 200 */
    fault_once(SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder", "GET",
               "\"rate_body\":1,\"body_status\":200,\"body\":\"<!DOCTYPE html><html><head>"
               "<title>Logon</title></head><body><form>user</form></body></html>\"");
    assert_int_equal(read_orders(&err, NULL), ES_EPROTOCOL);
    has(err.msg, "HTML page where JSON was expected");
    has(err.msg, "Logon");
    assert_int_equal(err.http_status, 200);
    assert_true(es_code_retryable(err.code));
    assert_int_equal(faults_left(), 0);
    expect_read_ok();

    /* an ICM error page with 500 */
    fault_once(SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder", "GET",
               "\"rate_body\":1,\"body_status\":500");
    assert_int_equal(read_orders(&err, NULL), ES_EREMOTE);
    has(err.msg, "HTTP 500");
    has(err.msg, "Service cannot be reached");
    assert_int_equal(err.http_status, 500);
    assert_int_equal(faults_left(), 0);
    expect_read_ok();
}

static void test_feed_cut_and_wrong_type(void **state)
{
    (void)state;
    struct es_err err;
    /* the real feed, cut in the middle */
    fault_once(SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder", "GET", "\"rate_cut\":1");
    assert_int_equal(read_orders(&err, NULL), ES_EPROTOCOL);
    has(err.msg, "invalid JSON");
    assert_int_equal(faults_left(), 0);
    expect_read_ok();

    /* Atom XML where JSON was asked for */
    fault_once(SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder", "GET",
               "\"rate_body\":1,\"body_ctype\":\"application/atom+xml;type=feed\",\"body\":"
               "\"<?xml version=\\\"1.0\\\" encoding=\\\"utf-8\\\"?><feed "
               "xmlns=\\\"http://www.w3.org/2005/Atom\\\"><entry/></feed>\"");
    assert_int_equal(read_orders(&err, NULL), ES_EPROTOCOL);
    has(err.msg, "'application/atom+xml;type=feed' where JSON was expected");
    assert_int_equal(faults_left(), 0);

    /* JSON, but not an OData feed */
    fault_once(
        SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder", "GET",
        "\"rate_body\":1,\"body_ctype\":\"application/json\",\"body\":\"{\\\"value\\\":[]}\"");
    assert_int_equal(read_orders(&err, NULL), ES_EPROTOCOL);
    has(err.msg, "no results array");

    /* an empty 200 */
    fault_once(SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder", "GET",
               "\"rate_body\":1,\"body_ctype\":\"application/json\",\"body\":\"\"");
    assert_int_equal(read_orders(&err, NULL), ES_EPROTOCOL);

    /* records without their key */
    fault_once(SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder", "GET",
               "\"rate_body\":1,\"body_ctype\":\"application/json\",\"body\":"
               "\"{\\\"d\\\":{\\\"results\\\":[{\\\"SoldToParty\\\":\\\"1\\\"}]}}\"");
    assert_int_equal(read_orders(&err, NULL), ES_EPROTOCOL);
    has(err.msg, "key");
    assert_int_equal(faults_left(), 0);
    expect_read_ok();

    /* get of one entity, cut */
    fault_once(SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder('1')", "GET", "\"rate_cut\":1");
    json_t *o = NULL;
    es_err_clear(&err);
    assert_int_equal(es_conn_get(g_c, "A_SalesOrder", "1", &o, &err), ES_EPROTOCOL);
    assert_null(o);
    es_err_clear(&err);
    assert_int_equal(es_conn_get(g_c, "A_SalesOrder", "1", &o, &err), ES_OK);
    assert_string_equal(json_string_value(json_object_get(o, "SalesOrder")), "1");
    json_decref(o);
}

/* $metadata cut or replaced by a page: a protocol error, never a half schema (a fresh
 * connector each time, since the schema is cached per instance). */
static void test_metadata(void **state)
{
    (void)state;
    static const char *const faults[] = {
        "\"rate_cut\":1",
        "\"rate_body\":1,\"body_status\":200",
        "\"rate_body\":1,\"body_ctype\":\"application/xml\",\"body\":\"<edmx:Edmx\"",
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        struct es_conn *c = NULL;
        struct es_err err;
        es_err_clear(&err);
        assert_int_equal(es_conn_open(es_config_system(g_cfg, "erp"), &c, &err), ES_OK);
        fault_once(SVC_ROOT "API_PRODUCT_SRV/$metadata", "GET", faults[i]);
        json_t *d = NULL;
        es_err_clear(&err);
        int rc = es_conn_describe(c, "A_Product", &d, &err);
        if (rc != ES_EPROTOCOL) {
            fprintf(stderr, "describe with fault %zu: %d %s\n", i, rc, err.msg);
        }
        assert_int_equal(rc, ES_EPROTOCOL);
        assert_null(d);
        assert_true(err.msg[0] != '\0');
        assert_int_equal(faults_left(), 0);
        /* the same instance loads it fine afterwards (nothing half-parsed was cached) */
        es_err_clear(&err);
        assert_int_equal(es_conn_describe(c, "A_Product", &d, &err), ES_OK);
        assert_non_null(json_object_get(d, "fields"));
        json_decref(d);
        es_conn_close(c);
    }
}

static json_t *order(const char *po)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s}]}", "SalesOrderType", "OR",
                     "SalesOrganization", "1010", "DistributionChannel", "10",
                     "OrganizationDivision", "00", "SoldToParty", "10100011",
                     "PurchaseOrderByCustomer", po, "to_Item", "SalesOrderItem", "10", "Material",
                     "TG1000", "RequestedQuantity", "1");
}

/* Sales orders with a given PurchaseOrderByCustomer, counted by the emulator. */
static size_t orders_with_po(const char *po)
{
    char path[256];
    snprintf(path, sizeof path,
             SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder?$format=json&$filter="
                      "PurchaseOrderByCustomer%%20eq%%20%%27%s%%27",
             po);
    struct es_http *h = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_http_new(es_config_system(g_cfg, "erp"), &h, &err), ES_OK);
    struct es_http_req_opts rq = {.method = "GET", .url = path};
    json_t *j = NULL;
    assert_int_equal(es_http_json(h, &rq, NULL, &j, &err), ES_OK);
    size_t n = json_array_size(json_object_get(json_object_get(j, "d"), "results"));
    json_decref(j);
    es_http_free(h);
    return n;
}

/* Creates one sales order through c (res and err reset first). Returns the call's code. */
static int create_order(struct es_conn *c, struct es_write *in, struct es_write_result *res,
                        struct es_err *err)
{
    memset(res, 0, sizeof *res);
    es_err_clear(err);
    return es_conn_write_batch(c, "A_SalesOrder", ES_WRITE_CREATE, "PurchaseOrderByCustomer", in, 1,
                               res, err);
}

static void test_writes(void **state)
{
    (void)state;
    struct es_write in = {"m1", NULL, "PO-MALFORMED-1", order("PO-MALFORMED-1")};
    struct es_write_result res;
    struct es_err err;

    /* The create is answered by an HTML page instead of SAP (nothing saved): the record
     * fails with a retryable protocol error, the batch call itself completes. */
    fault_once(SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder", "POST", "\"rate_body\":1");
    assert_int_equal(create_order(g_c, &in, &res, &err), ES_OK);
    assert_int_equal(res.code, ES_EPROTOCOL);
    assert_true(es_code_retryable(res.code));
    has(res.err.msg, "HTML");
    es_write_results_release(&res, 1);
    assert_int_equal(faults_left(), 0);
    assert_int_equal(orders_with_po("PO-MALFORMED-1"), 0);

    /* SAP saves, the answer is cut: a protocol error; the retry finds the saved order
     * by its external id and reports it, no second order. */
    fault_once(SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder", "POST", "\"rate_cut\":1");
    assert_int_equal(create_order(g_c, &in, &res, &err), ES_OK);
    assert_int_equal(res.code, ES_EPROTOCOL);
    es_write_results_release(&res, 1);
    assert_int_equal(faults_left(), 0);
    assert_int_equal(orders_with_po("PO-MALFORMED-1"), 1);
    assert_int_equal(create_order(g_c, &in, &res, &err), ES_OK);
    assert_int_equal(res.code, ES_OK);
    assert_int_equal(res.created, 0);
    assert_non_null(res.target_id);
    es_write_results_release(&res, 1);
    assert_int_equal(orders_with_po("PO-MALFORMED-1"), 1);

    /* The CSRF handshake answered by a login page (200, no token): a clear protocol error
     * for the batch, nothing written. Rules: the lookup by external id passes (a rule with
     * only latency matches first), the token fetch on the service root gets the page. */
    struct es_conn *c = NULL;
    es_err_clear(&err);
    assert_int_equal(es_conn_open(es_config_system(g_cfg, "erp"), &c, &err), ES_OK);
    json_t *d = NULL;
    assert_int_equal(es_conn_describe(c, "A_SalesOrder", &d, &err), ES_OK);
    json_decref(d);
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "PUT", "/__sandbox/faults",
                                  "[{\"route\":\"" SVC_ROOT "API_SALES_ORDER_SRV/A_\","
                                  "\"latency_ms\":1},"
                                  "{\"route\":\"" SVC_ROOT "API_SALES_ORDER_SRV/\","
                                  "\"method\":\"GET\",\"rate_body\":1,\"count\":1}]",
                                  &j),
                     200);
    json_decref(j);
    struct es_write in2 = {"m2", NULL, "PO-MALFORMED-2", order("PO-MALFORMED-2")};
    int rc = create_order(c, &in2, &res, &err);
    assert_int_equal(rc, ES_EPROTOCOL);
    has(err.msg, "CSRF");
    assert_int_equal(res.code, ES_EPROTOCOL);
    es_write_results_release(&res, 1);
    assert_int_equal(faults_left(), 1); /* the pass-through rule */
    long st = sbproc_admin(&g_sb, "DELETE", "/__sandbox/faults", NULL, &j);
    assert_true(st == 200 || st == 204);
    json_decref(j);
    assert_int_equal(orders_with_po("PO-MALFORMED-2"), 0);
    /* and the same instance writes once the page is gone */
    assert_int_equal(create_order(c, &in2, &res, &err), ES_OK);
    assert_int_equal(res.code, ES_OK);
    assert_int_equal(res.created, 1);
    es_write_results_release(&res, 1);
    assert_int_equal(orders_with_po("PO-MALFORMED-2"), 1);
    es_conn_close(c);
    json_decref(in.data);
    json_decref(in2.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feed_html_pages),
        cmocka_unit_test(test_feed_cut_and_wrong_type),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_writes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
