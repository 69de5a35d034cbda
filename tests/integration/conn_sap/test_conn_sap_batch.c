/* SPDX-License-Identifier: MIT */
/*
 * The sap_odata connector's $batch writes and deep updates against the SAP emulator
 * (erpsync-sandbox sap): several sales orders created in one $batch with one change set per
 * record (a refused order fails alone, a credit-blocked one is a business refusal, results
 * come back in input order), the same batch retried without duplicates, updates with If-Match
 * in one $batch (an unknown key fails alone; one changed meanwhile answers 412 and is read
 * again and written alone), a $batch answer cut after SAP saved (the retry
 * finds every order), a service without $batch (one by one), and a business partner updated
 * with its addresses through A_BusinessPartnerAddress (update with If-Match, create of a new
 * one, a refused address failing the record with SAP's words).
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

#define SVC_ROOT "/sap/opu/odata/sap/"

static struct sbproc g_sb;
static struct es_config *g_cfg;
static struct es_conn *g_c;

static int setup(void **state)
{
    (void)state;
    static const char *const extra[] = {"--seed", "demo", "--partners", "40", NULL};
    static const struct sap_test_opts o = {
        .name = "batch.yaml",
        .sandbox_args = extra,
        .env_prefix = "CONN_SAPB",
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

/* Hits of the pass-through rules on $batch (they only add 1 ms, so they count every call). */
static long batch_calls(void)
{
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "GET", "/__sandbox/faults", NULL, &j), 200);
    long hits = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(j, "faults"), i, f)
    {
        if (strstr(json_string_value(json_object_get(f, "route")), "$batch")) {
            hits += (long)json_integer_value(json_object_get(f, "hits"));
        }
    }
    json_decref(j);
    return hits;
}

/* Replaces every fault rule with rules (a JSON array). */
static void set_faults(const char *rules)
{
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "PUT", "/__sandbox/faults", rules, &j), 200);
    json_decref(j);
}

/* Adds one fault rule (a JSON object). */
static void add_fault(const char *rule)
{
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "POST", "/__sandbox/faults", rule, &j), 200);
    json_decref(j);
}

static void count_batches(void)
{
    set_faults("[{\"route\":\"" SVC_ROOT "API_SALES_ORDER_SRV/$batch\",\"latency_ms\":1},"
               "{\"route\":\"" SVC_ROOT "API_BUSINESS_PARTNER/$batch\",\"latency_ms\":1}]");
}

static void no_faults(void)
{
    json_t *j = NULL;
    long st = sbproc_admin(&g_sb, "DELETE", "/__sandbox/faults", NULL, &j);
    assert_true(st == 200 || st == 204);
    json_decref(j);
}

static json_t *order(const char *customer, const char *po, const char *qty)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s}]}", "SalesOrderType", "OR",
                     "SalesOrganization", "1010", "DistributionChannel", "10",
                     "OrganizationDivision", "00", "SoldToParty", customer,
                     "PurchaseOrderByCustomer", po, "to_Item", "SalesOrderItem", "10", "Material",
                     "TG1000", "RequestedQuantity", qty);
}

/* Writes n sales orders through c into res (zeroed here): creates matched by
 * PurchaseOrderByCustomer, updates by target id. The call itself must succeed; each record's
 * result is the caller's to check (release res with es_write_results_release()). */
static void write_orders(struct es_conn *c, enum es_write_op op, const struct es_write *in,
                         size_t n, struct es_write_result *res)
{
    struct es_err err;
    es_err_clear(&err);
    memset(res, 0, n * sizeof *res);
    int rc = es_conn_write_batch(c, "A_SalesOrder", op,
                                 op == ES_WRITE_CREATE ? "PurchaseOrderByCustomer" : NULL, in, n,
                                 res, &err);
    if (rc != ES_OK) {
        fprintf(stderr, "write_orders: %s\n", err.msg);
    }
    assert_int_equal(rc, ES_OK);
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

static void test_batch_creates(void **state)
{
    (void)state;
    count_batches();
    struct es_write in[4] = {
        {"b1", NULL, "PO-BATCH-1", order("10100011", "PO-BATCH-1", "1")},
        {"b2", NULL, "PO-BATCH-2", order("99999999", "PO-BATCH-2", "1")},
        {"b3", NULL, "PO-BATCH-3", order("10100010", "PO-BATCH-3", "500")},
        {"b4", NULL, "PO-BATCH-4", order("10100011", "PO-BATCH-4", "2")},
    };
    struct es_write_result res[4];
    write_orders(g_c, ES_WRITE_CREATE, in, 4, res);
    assert_int_equal(batch_calls(), 1); /* the four creates went as one $batch */
    char ids[4][32];
    for (int i = 0; i < 4; i++) {
        if (i != 1) {
            if (res[i].code != ES_OK && res[i].code != ES_EREJECTED) {
                fprintf(stderr, "record %d: %s\n", i, res[i].err.msg);
            }
            assert_non_null(res[i].target_id);
            assert_int_equal(res[i].created, 1);
            es_strlcpy(ids[i], res[i].target_id, sizeof ids[i]);
        }
    }
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[3].code, ES_OK);
    /* refused by SAP in its own change set: only this record fails, with SAP's code */
    assert_int_equal(res[1].code, ES_EVALIDATION);
    assert_string_equal(res[1].err.remote_code, "V1/302");
    assert_null(res[1].target_id);
    /* saved and credit-blocked: read back, a business refusal with the order number */
    assert_int_equal(res[2].code, ES_EREJECTED);
    assert_string_equal(
        json_string_value(json_object_get(res[2].readback, "TotalCreditCheckStatus")), "B");
    assert_true(strcmp(ids[0], ids[3]) != 0);
    es_write_results_release(res, 4);
    assert_int_equal(orders_with_po("PO-BATCH-1"), 1);
    assert_int_equal(orders_with_po("PO-BATCH-2"), 0);
    assert_int_equal(orders_with_po("PO-BATCH-4"), 1);

    /* the same batch again (a retry): found by the external id, nothing created twice */
    write_orders(g_c, ES_WRITE_CREATE, in, 4, res);
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[0].created, 0);
    assert_string_equal(res[0].target_id, ids[0]);
    assert_int_equal(res[3].created, 0);
    assert_string_equal(res[3].target_id, ids[3]);
    assert_int_equal(res[1].code, ES_EVALIDATION);
    es_write_results_release(res, 4);
    assert_int_equal(orders_with_po("PO-BATCH-1"), 1);
    assert_int_equal(orders_with_po("PO-BATCH-4"), 1);

    /* updates with If-Match in one $batch; an unknown order fails alone */
    long before = batch_calls();
    struct es_write up[3] = {
        {"u1", ids[0], NULL, json_pack("{s:s}", "PurchaseOrderByCustomer", "PO-BATCH-1-U")},
        {"u2", "987654", NULL, json_pack("{s:s}", "PurchaseOrderByCustomer", "PO-NOPE")},
        {"u3", ids[3], NULL, json_pack("{s:s}", "PurchaseOrderByCustomer", "PO-BATCH-4-U")},
    };
    write_orders(g_c, ES_WRITE_UPDATE, up, 3, res);
    assert_int_equal(batch_calls(), before + 1);
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[1].code, ES_ENOTFOUND);
    assert_int_equal(res[2].code, ES_OK);
    assert_string_equal(res[2].target_id, ids[3]);
    es_write_results_release(res, 3);
    assert_int_equal(orders_with_po("PO-BATCH-1-U"), 1);
    assert_int_equal(orders_with_po("PO-BATCH-4-U"), 1);
    for (int i = 0; i < 3; i++) {
        json_decref(up[i].data);
    }
    for (int i = 0; i < 4; i++) {
        json_decref(in[i].data);
    }
    no_faults();
}

static void test_batch_cut_and_unsupported(void **state)
{
    (void)state;
    struct es_write in[2] = {
        {"c1", NULL, "PO-CUT-1", order("10100011", "PO-CUT-1", "1")},
        {"c2", NULL, "PO-CUT-2", order("10100011", "PO-CUT-2", "1")},
    };
    struct es_write_result res[2];
    struct es_err err;
    no_faults();
    /* SAP saved both, the answer was cut: both fail (retryable); the retry finds both */
    add_fault("{\"route\":\"" SVC_ROOT "API_SALES_ORDER_SRV/$batch\",\"rate_cut\":1,\"count\":1}");
    write_orders(g_c, ES_WRITE_CREATE, in, 2, res);
    assert_int_equal(res[0].code, ES_EPROTOCOL);
    assert_int_equal(res[1].code, ES_EPROTOCOL);
    assert_true(es_code_retryable(res[0].code));
    es_write_results_release(res, 2);
    assert_int_equal(orders_with_po("PO-CUT-1"), 1);
    assert_int_equal(orders_with_po("PO-CUT-2"), 1);
    write_orders(g_c, ES_WRITE_CREATE, in, 2, res);
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[0].created, 0);
    assert_int_equal(res[1].created, 0);
    es_write_results_release(res, 2);
    assert_int_equal(orders_with_po("PO-CUT-1"), 1);

    /* a gateway without $batch (405): the records go one by one, all written */
    struct es_conn *c = NULL;
    es_err_clear(&err);
    assert_int_equal(es_conn_open(es_config_system(g_cfg, "erp"), &c, &err), ES_OK);
    add_fault("{\"route\":\"" SVC_ROOT "API_SALES_ORDER_SRV/$batch\","
              "\"rate_body\":1,\"body_status\":405,\"count\":1}");
    struct es_write in2[2] = {
        {"d1", NULL, "PO-NOBATCH-1", order("10100011", "PO-NOBATCH-1", "1")},
        {"d2", NULL, "PO-NOBATCH-2", order("10100011", "PO-NOBATCH-2", "1")},
    };
    write_orders(c, ES_WRITE_CREATE, in2, 2, res);
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[1].code, ES_OK);
    assert_int_equal(res[0].created, 1);
    es_write_results_release(res, 2);
    assert_int_equal(orders_with_po("PO-NOBATCH-1"), 1);
    assert_int_equal(orders_with_po("PO-NOBATCH-2"), 1);
    es_conn_close(c);
    no_faults();
    for (int i = 0; i < 2; i++) {
        json_decref(in[i].data);
        json_decref(in2[i].data);
    }
}

static json_t *read_set(const char *set, const char *key)
{
    json_t *o = NULL;
    struct es_err err;
    es_err_clear(&err);
    int rc = es_conn_get(g_c, set, key, &o, &err);
    if (rc != ES_OK) {
        fprintf(stderr, "get %s %s: %s\n", set, key, err.msg);
    }
    assert_int_equal(rc, ES_OK);
    return o;
}

static void test_deep_update(void **state)
{
    (void)state;
    json_t *bp = NULL;
    struct es_err err;
    es_err_clear(&err);
    /* the partner's first address, as SAP has it */
    struct es_batch b;
    es_batch_init(&b);
    assert_int_equal(es_conn_read_page(g_c, "A_BusinessPartnerAddress", NULL, 1, &b, &err), ES_OK);
    assert_int_equal(b.count, 1);
    const char *bpid = json_string_value(json_object_get(b.items[0].data, "BusinessPartner"));
    const char *addr = json_string_value(json_object_get(b.items[0].data, "AddressID"));
    assert_non_null(bpid);
    assert_non_null(addr);
    char bpk[32], ak[32];
    es_strlcpy(bpk, bpid, sizeof bpk);
    es_strlcpy(ak, addr, sizeof ak);
    es_batch_release(&b);

    /* header + one existing address updated + one new address created */
    struct es_write w = {"bp", bpk, NULL,
                         json_pack("{s:s, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s}]}",
                                   "SearchTerm2", "DEEP", "to_BusinessPartnerAddress", "AddressID",
                                   ak, "CityName", "Bonn", "PostalCode", "53111", "Country", "DE",
                                   "CityName", "Köln", "PostalCode", "50667", "StreetName",
                                   "Domkloster", "HouseNumber", "4")};
    struct es_write_result r;
    memset(&r, 0, sizeof r);
    es_err_clear(&err);
    int rc = es_conn_write_batch(g_c, "A_BusinessPartner", ES_WRITE_UPDATE, NULL, &w, 1, &r, &err);
    if (rc != ES_OK || r.code != ES_OK) {
        fprintf(stderr, "deep update: %s / %s %s\n", err.msg, r.err.msg, r.err.remote_msg);
    }
    assert_int_equal(rc, ES_OK);
    assert_int_equal(r.code, ES_OK);
    es_write_results_release(&r, 1);
    bp = read_set("A_BusinessPartner", bpk);
    assert_string_equal(json_string_value(json_object_get(bp, "SearchTerm2")), "DEEP");
    json_decref(bp);
    char key[96];
    snprintf(key, sizeof key, "BusinessPartner='%s',AddressID='%s'", bpk, ak);
    json_t *a = read_set("A_BusinessPartnerAddress", key);
    assert_string_equal(json_string_value(json_object_get(a, "CityName")), "Bonn");
    assert_string_equal(json_string_value(json_object_get(a, "PostalCode")), "53111");
    json_decref(a);
    /* the new address exists now, under this partner */
    char path[256];
    snprintf(path, sizeof path,
             SVC_ROOT
             "API_BUSINESS_PARTNER/A_BusinessPartnerAddress?$format=json&$filter="
             "BusinessPartner%%20eq%%20%%27%s%%27%%20and%%20PostalCode%%20eq%%20%%2750667%%27",
             bpk);
    struct es_http *h = NULL;
    assert_int_equal(es_http_new(es_config_system(g_cfg, "erp"), &h, &err), ES_OK);
    struct es_http_req_opts rq = {.method = "GET", .url = path};
    json_t *j = NULL;
    assert_int_equal(es_http_json(h, &rq, NULL, &j, &err), ES_OK);
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "d"), "results")), 1);
    json_decref(j);
    es_http_free(h);
    json_decref(w.data);

    /* a refused address fails the record with SAP's words, naming the address */
    struct es_write w2 = {
        "bp", bpk, NULL,
        json_pack("{s:s, s:[{s:s, s:s}]}", "SearchTerm2", "DEEP2", "to_BusinessPartnerAddress",
                  "AddressID", ak, "CityName",
                  "A city name that is far longer than the forty characters SAP allows")};
    memset(&r, 0, sizeof r);
    es_err_clear(&err);
    assert_int_equal(
        es_conn_write_batch(g_c, "A_BusinessPartner", ES_WRITE_UPDATE, NULL, &w2, 1, &r, &err),
        ES_OK);
    if (r.code == ES_OK) {
        fprintf(stderr, "the long city name was accepted\n");
    }
    assert_true(r.code != ES_OK);
    assert_non_null(strstr(r.err.msg, "to_BusinessPartnerAddress[0] failed"));
    es_write_results_release(&r, 1);
    json_decref(w2.data);
}

/* The addresses of partner bp as SAP lists them (GET A_BusinessPartner('bp')/to_...).
 * OUT: an array, json_decref(). */
static json_t *addresses_of(const char *bp)
{
    char path[256];
    snprintf(path, sizeof path,
             SVC_ROOT "API_BUSINESS_PARTNER/A_BusinessPartner('%s')/to_BusinessPartnerAddress"
                      "?$format=json",
             bp);
    struct es_http *h = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_http_new(es_config_system(g_cfg, "erp"), &h, &err), ES_OK);
    struct es_http_req_opts rq = {.method = "GET", .url = path};
    json_t *j = NULL;
    assert_int_equal(es_http_json(h, &rq, NULL, &j, &err), ES_OK);
    json_t *res = json_incref(json_object_get(json_object_get(j, "d"), "results"));
    assert_true(json_is_array(res));
    json_decref(j);
    es_http_free(h);
    return res;
}

static json_t *partner(const char *term, const char *street, const char *city, const char *zip)
{
    return json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s}]}", "BusinessPartnerCategory", "2",
                     "OrganizationBPName1", "Moving Company", "SearchTerm2", term,
                     "to_BusinessPartnerAddress", "StreetName", street, "CityName", city,
                     "PostalCode", zip, "Country", "DE");
}

static int write_partner(enum es_write_op op, const char *tid, json_t *data, char *id, size_t cap,
                         int *created)
{
    struct es_write w = {"mv", tid, json_string_value(json_object_get(data, "SearchTerm2")), data};
    struct es_write_result r;
    memset(&r, 0, sizeof r);
    struct es_err err;
    es_err_clear(&err);
    int rc = es_conn_write_batch(g_c, "A_BusinessPartner", op, "SearchTerm2", &w, 1, &r, &err);
    int code = rc != ES_OK ? rc : (int)r.code;
    if (code != ES_OK) {
        fprintf(stderr, "partner write: %s / %s %s\n", err.msg, r.err.msg, r.err.remote_msg);
    }
    if (id && r.target_id) {
        es_strlcpy(id, r.target_id, cap);
    }
    if (created) {
        *created = r.created;
    }
    es_write_results_release(&r, 1);
    json_decref(data);
    return code;
}

static void assert_one_address(const char *bp, const char *street, const char *city)
{
    json_t *a = addresses_of(bp);
    if (json_array_size(a) != 1) {
        fprintf(stderr, "partner %s has %zu addresses\n", bp, json_array_size(a));
    }
    assert_int_equal(json_array_size(a), 1);
    json_t *a0 = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(a0, "StreetName")), street);
    assert_string_equal(json_string_value(json_object_get(a0, "CityName")), city);
    json_decref(a);
}

/* A partner moved: the mapped address carries no AddressID, so it is matched to the
 * partner's existing address by position and PATCHed, never added as a second address; the
 * same when a create retried finds the partner by external id and upserts it. */
static void test_moved_address(void **state)
{
    (void)state;
    char id[32] = "", id2[32] = "";
    int created = -1;
    assert_int_equal(write_partner(ES_WRITE_UPSERT, NULL,
                                   partner("MOVE-1", "Alte Gasse", "Bonn", "53111"), id, sizeof id,
                                   &created),
                     ES_OK);
    assert_int_equal(created, 1);
    assert_one_address(id, "Alte Gasse", "Bonn");
    json_t *a = addresses_of(id);
    char addr[32];
    es_strlcpy(addr, json_string_value(json_object_get(json_array_get(a, 0), "AddressID")),
               sizeof addr);
    json_decref(a);

    /* update by id: moved to Hamburg */
    assert_int_equal(write_partner(ES_WRITE_UPDATE, id,
                                   partner("MOVE-1", "Jungfernstieg", "Hamburg", "20354"), id2,
                                   sizeof id2, &created),
                     ES_OK);
    assert_string_equal(id2, id);
    assert_one_address(id, "Jungfernstieg", "Hamburg");
    a = addresses_of(id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "AddressID")),
                        addr);
    json_decref(a);

    /* upsert without the link (a retried create finds the partner by SearchTerm2) */
    assert_int_equal(write_partner(ES_WRITE_UPSERT, NULL,
                                   partner("MOVE-1", "Schlachte", "Bremen", "28195"), id2,
                                   sizeof id2, &created),
                     ES_OK);
    assert_string_equal(id2, id);
    assert_int_equal(created, 0);
    assert_one_address(id, "Schlachte", "Bremen");

    /* a create retried: found, reported, nothing added */
    assert_int_equal(write_partner(ES_WRITE_CREATE, NULL,
                                   partner("MOVE-1", "Schlachte", "Bremen", "28195"), id2,
                                   sizeof id2, &created),
                     ES_OK);
    assert_string_equal(id2, id);
    assert_int_equal(created, 0);
    assert_one_address(id, "Schlachte", "Bremen");

    /* two mapped addresses for one existing: the first updates it, the second is created */
    json_t *two = partner("MOVE-1", "Schlachte", "Bremen", "28195");
    json_array_append_new(json_object_get(two, "to_BusinessPartnerAddress"),
                          json_pack("{s:s, s:s, s:s, s:s}", "StreetName", "Lager", "CityName",
                                    "Verden", "PostalCode", "27283", "Country", "DE"));
    assert_int_equal(write_partner(ES_WRITE_UPDATE, id, two, NULL, 0, NULL), ES_OK);
    a = addresses_of(id);
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);
    assert_int_equal(write_partner(ES_WRITE_UPDATE, id,
                                   partner("MOVE-1", "Lange Str", "Verden", "27283"), NULL, 0,
                                   NULL),
                     ES_OK);
    a = addresses_of(id);
    assert_int_equal(json_array_size(a), 2); /* children are never deleted */
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "CityName")),
                        "Verden");
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "AddressID")),
                        addr);
    json_decref(a);
}

/* Changes order arg "in SAP" (admin endpoint) while our $batch is held by a latency fault. */
static void *change_behind(void *arg)
{
    sbproc_sleep_ms(800);
    char path[128];
    snprintf(path, sizeof path, "/__sandbox/records/A_SalesOrder/%s", (const char *)arg);
    json_t *j = NULL;
    long st = sbproc_admin(&g_sb, "PATCH", path, "{\"CustomerPaymentTerms\":\"NT60\"}", &j);
    json_decref(j);
    return (void *)(intptr_t)st;
}

/* An order changed between our ETag read and the $batch: that change set answers 412, the
 * record takes the single path (read again, PATCH once more) and succeeds; the other record
 * of the batch is written in the $batch. */
static void test_batch_update_412(void **state)
{
    (void)state;
    no_faults();
    struct es_write in[2] = {
        {"e1", NULL, "PO-412-1", order("10100011", "PO-412-1", "1")},
        {"e2", NULL, "PO-412-2", order("10100011", "PO-412-2", "1")},
    };
    struct es_write_result res[2];
    write_orders(g_c, ES_WRITE_CREATE, in, 2, res);
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[1].code, ES_OK);
    static char id0[32], id1[32];
    es_strlcpy(id0, res[0].target_id, sizeof id0);
    es_strlcpy(id1, res[1].target_id, sizeof id1);
    es_write_results_release(res, 2);
    /* reads of the first order are counted by a pass-through rule; the $batch is held 2 s */
    char rules[512];
    snprintf(rules, sizeof rules,
             "[{\"route\":\"" SVC_ROOT "API_SALES_ORDER_SRV/A_SalesOrder('%s')\","
             "\"method\":\"GET\",\"latency_ms\":1},"
             "{\"route\":\"" SVC_ROOT "API_SALES_ORDER_SRV/$batch\",\"latency_ms\":2000,"
             "\"count\":1}]",
             id0);
    set_faults(rules);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, change_behind, id0), 0);
    struct es_write up[2] = {
        {"e1", id0, NULL, json_pack("{s:s}", "PurchaseOrderByCustomer", "PO-412-1-U")},
        {"e2", id1, NULL, json_pack("{s:s}", "PurchaseOrderByCustomer", "PO-412-2-U")},
    };
    memset(res, 0, sizeof res);
    struct es_err err;
    es_err_clear(&err);
    int rc = es_conn_write_batch(g_c, "A_SalesOrder", ES_WRITE_UPDATE, NULL, up, 2, res, &err);
    void *st = NULL;
    pthread_join(t, &st);
    assert_int_equal((intptr_t)st, 200);
    assert_int_equal(rc, ES_OK);
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[1].code, ES_OK);
    es_write_results_release(res, 2);
    /* two reads of the first order: the one before the $batch and the re-read after 412 */
    json_t *j = NULL;
    assert_int_equal(sbproc_admin(&g_sb, "GET", "/__sandbox/faults", NULL, &j), 200);
    json_t *first = json_array_get(json_object_get(j, "faults"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(first, "route")), id0));
    assert_int_equal(json_integer_value(json_object_get(first, "hits")), 2);
    json_decref(j);
    no_faults();
    /* both writes landed, and SAP's own change was kept */
    assert_int_equal(orders_with_po("PO-412-1-U"), 1);
    assert_int_equal(orders_with_po("PO-412-2-U"), 1);
    json_t *o = read_set("A_SalesOrder", id0);
    assert_string_equal(json_string_value(json_object_get(o, "CustomerPaymentTerms")), "NT60");
    json_decref(o);
    for (int i = 0; i < 2; i++) {
        json_decref(in[i].data);
        json_decref(up[i].data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_creates),    cmocka_unit_test(test_batch_cut_and_unsupported),
        cmocka_unit_test(test_deep_update),      cmocka_unit_test(test_moved_address),
        cmocka_unit_test(test_batch_update_412),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
