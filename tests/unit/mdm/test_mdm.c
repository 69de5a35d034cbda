/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the master-data rules (src/mdm): field ownership from fields_owned_by and
 * the map, the system-of-record / conflict plan of updates, the write-back decision, and
 * the echo/no-op classification. Configs are parsed from text with the real loader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/diag.h"
#include "core/mem.h"
#include "mdm/mdm.h"
#include "store/store.h"

/* A two-system config: entity customer with policy text, flows crm->erp and erp->crm. */
static struct es_config *load(const char *entity_extra, const char *flow_extra)
{
    char *text = es_xasprintf("store: sqlite:/tmp/unused.db\n"
                              "systems:\n"
                              "  crm: {connector: memory}\n"
                              "  erp: {connector: memory}\n"
                              "entities:\n"
                              "  customer:\n"
                              "    objects: {crm: Account, erp: Partner}\n"
                              "%s"
                              "flows:\n"
                              "  to-erp:\n"
                              "    entity: customer\n"
                              "    from: crm\n"
                              "    to: erp\n"
                              "    trigger: {realtime: true}\n"
                              "%s"
                              "    map:\n"
                              "      PartnerName: {from: Name, required: true}\n"
                              "      Phone: Phone\n"
                              "      Addr[0].Street: {from: BillingStreet}\n"
                              "      Addr[0].City: {from: BillingCity}\n"
                              "      CreditLimit: {from: Credit__c}\n"
                              "      Ref: {from: Id}\n"
                              "  to-crm:\n"
                              "    entity: customer\n"
                              "    from: erp\n"
                              "    to: crm\n"
                              "    trigger: {realtime: true}\n"
                              "    map:\n"
                              "      Name: PartnerName\n"
                              "      SAP_No__c: {from: Partner}\n",
                              entity_extra, flow_extra);
    struct es_diags d;
    es_diags_init(&d);
    struct es_config *cfg = NULL;
    int rc = es_config_parse("mdm.yaml", text, strlen(text), &cfg, &d);
    if (rc != ES_OK) {
        es_diags_print(&d, stderr);
    }
    es_diags_release(&d);
    es_free(text);
    assert_int_equal(rc, ES_OK);
    return cfg;
}

static json_t *record(void)
{
    return json_pack("{s:s, s:s, s:[{s:s, s:s}], s:s, s:s}", "PartnerName", "ACME", "Phone",
                     "+49 1", "Addr", "Street", "Main 1", "City", "Bonn", "CreditLimit", "100",
                     "Ref", "001A");
}

static void test_ownership(void **state)
{
    (void)state;
    struct es_config *cfg = load("    system_of_record: crm\n"
                                 "    fields_owned_by: {erp: [CreditLimit, SAP_No__c],"
                                 " crm: [BillingCity, Phone]}\n",
                                 "");
    struct es_mdm_flow mf;
    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-erp"));
    assert_string_equal(es_mdm_owner(&mf, "CreditLimit"), "erp"); /* target name */
    assert_string_equal(es_mdm_owner(&mf, "Phone"), "crm");       /* shorthand from */
    assert_string_equal(es_mdm_owner(&mf, "Addr"), "crm");        /* from of a rule under it */
    assert_null(es_mdm_owner(&mf, "PartnerName"));
    assert_null(es_mdm_owner(&mf, "Ref"));
    assert_false(mf.target_is_sor);
    assert_true(es_mdm_update_trims(&mf)); /* CreditLimit is the ERP's own */
    assert_ptr_equal(mf.reverse, es_config_flow(cfg, "to-crm"));
    es_mdm_flow_release(&mf);

    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-crm"));
    assert_true(mf.target_is_sor);
    assert_string_equal(es_mdm_owner(&mf, "SAP_No__c"), "erp");
    assert_ptr_equal(mf.reverse, es_config_flow(cfg, "to-erp"));
    es_mdm_flow_release(&mf);
    es_config_free(cfg);
}

/* Creates write everything; updates drop what the target (another system) owns. */
/* No owners, not into the system of record: updates are written as mapped; a disabled
 * flow is no reverse flow. */
static void test_plain_flow(void **state)
{
    (void)state;
    struct es_config *cfg = load("", "");
    struct es_mdm_flow mf;
    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-erp"));
    assert_false(es_mdm_update_trims(&mf));
    struct es_mdm_plan p;
    json_t *r = record();
    es_mdm_plan_write(&mf, 1, r, NULL, &p);
    assert_int_equal(p.action, ES_MDM_WRITE);
    assert_int_equal(json_object_size(r), 5);
    json_decref(r);
    es_mdm_flow_release(&mf);
    es_config_free(cfg);

    cfg = load("", "");
    ((struct es_flow_cfg *)es_config_flow(cfg, "to-crm"))->enabled = 0;
    assert_null(es_mdm_reverse_flow(cfg, es_config_flow(cfg, "to-erp")));
    es_config_free(cfg);
}

static void test_plan_not_sor(void **state)
{
    (void)state;
    struct es_config *cfg =
        load("    system_of_record: crm\n    fields_owned_by: {erp: [CreditLimit]}\n", "");
    struct es_mdm_flow mf;
    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-erp"));
    struct es_mdm_plan p;
    json_t *r = record();
    es_mdm_plan_write(&mf, 0, r, NULL, &p);
    assert_int_equal(p.action, ES_MDM_WRITE);
    assert_non_null(json_object_get(r, "CreditLimit")); /* create: nothing to overwrite */
    es_mdm_plan_write(&mf, 1, r, NULL, &p);
    assert_int_equal(p.action, ES_MDM_WRITE_SUBSET);
    assert_int_equal(p.dropped, 1);
    assert_null(json_object_get(r, "CreditLimit"));
    assert_non_null(json_object_get(r, "PartnerName"));
    assert_non_null(strstr(p.reason, "CreditLimit"));
    json_decref(r);
    es_mdm_flow_release(&mf);
    es_config_free(cfg);
}

/* The flow writes INTO the system of record: the three conflict policies. */
static void test_plan_into_sor(void **state)
{
    (void)state;
    struct es_mdm_plan p;
    struct es_mdm_flow mf;
    json_t *r;

    /* source_of_record: only the source's own fields are written on update. */
    struct es_config *cfg = load("    system_of_record: erp\n    conflict: source_of_record\n"
                                 "    fields_owned_by: {crm: [Phone, Name]}\n",
                                 "");
    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-erp"));
    assert_true(mf.target_is_sor);
    r = record();
    es_mdm_plan_write(&mf, 0, r, NULL, &p);
    assert_int_equal(p.action, ES_MDM_WRITE); /* the SoR may still receive new records */
    es_mdm_plan_write(&mf, 1, r, NULL, &p);
    assert_int_equal(p.action, ES_MDM_WRITE_SUBSET);
    assert_int_equal(json_object_size(r), 2); /* PartnerName (from Name) and Phone */
    assert_non_null(json_object_get(r, "Phone"));
    assert_non_null(json_object_get(r, "PartnerName"));
    json_decref(r);
    es_mdm_flow_release(&mf);
    es_config_free(cfg);

    /* source_of_record without any field owned by the source: the update is skipped. */
    cfg = load("    system_of_record: erp\n", "");
    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-erp"));
    r = record();
    es_mdm_plan_write(&mf, 1, r, NULL, &p);
    assert_int_equal(p.action, ES_MDM_SKIP);
    assert_non_null(strstr(p.reason, "system of record"));
    assert_int_equal(json_object_size(r), 0);
    json_decref(r);
    es_mdm_flow_release(&mf);
    es_config_free(cfg);

    /* review: fields the source does not own make the update a review item naming them;
     * an update that only touches the source's own fields is written. */
    cfg = load("    system_of_record: erp\n    conflict: review\n"
               "    fields_owned_by: {crm: [Phone], erp: [CreditLimit]}\n",
               "");
    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-erp"));
    r = record();
    es_mdm_plan_write(&mf, 1, r, NULL, &p);
    assert_int_equal(p.action, ES_MDM_REVIEW);
    assert_non_null(strstr(p.reason, "PartnerName"));
    assert_non_null(strstr(p.reason, "Addr"));
    assert_null(strstr(p.reason, "Phone"));
    assert_null(json_object_get(r, "CreditLimit")); /* owned by the target: dropped anyway */
    /* With the system of record's current record, only values that would change count. */
    json_t *cur = record();
    json_object_set_new(cur, "Ref", json_string("001B"));
    es_mdm_plan_write(&mf, 1, r, cur, &p);
    assert_int_equal(p.action, ES_MDM_REVIEW);
    assert_non_null(strstr(p.reason, "Ref"));
    assert_null(strstr(p.reason, "PartnerName"));
    assert_null(strstr(p.reason, "Addr"));
    json_object_set_new(cur, "Ref", json_string("001A"));
    es_mdm_plan_write(&mf, 1, r, cur, &p);
    assert_int_equal(p.action, ES_MDM_WRITE);
    json_decref(cur);
    json_decref(r);
    r = json_pack("{s:s}", "Phone", "+1");
    es_mdm_plan_write(&mf, 1, r, NULL, &p);
    assert_int_equal(p.action, ES_MDM_WRITE);
    json_decref(r);
    es_mdm_flow_release(&mf);
    es_config_free(cfg);

    /* last_write_wins: written, minus the target's own fields. */
    cfg = load("    system_of_record: erp\n    conflict: last_write_wins\n"
               "    fields_owned_by: {erp: [CreditLimit]}\n",
               "");
    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-erp"));
    r = record();
    es_mdm_plan_write(&mf, 1, r, NULL, &p);
    assert_int_equal(p.action, ES_MDM_WRITE_SUBSET);
    assert_int_equal(json_object_size(r), 4);
    json_decref(r);
    r = json_pack("{s:s}", "PartnerName", "x");
    es_mdm_plan_write(&mf, 1, r, NULL, &p);
    assert_int_equal(p.action, ES_MDM_WRITE);
    json_decref(r);
    es_mdm_flow_release(&mf);
    es_config_free(cfg);
}

static void test_writeback(void **state)
{
    (void)state;
    struct es_config *cfg =
        load("    fields_owned_by: {erp: [SAP_No__c]}\n", "    writeback: {field: SAP_No__c}\n");
    struct es_mdm_flow mf;
    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-erp"));
    assert_string_equal(mf.writeback, "SAP_No__c");
    json_t *src = json_pack("{s:s, s:n}", "Name", "ACME", "SAP_No__c");
    assert_true(es_mdm_writeback_needed(&mf, src, "1000001"));
    assert_false(es_mdm_writeback_needed(&mf, src, NULL)); /* no target id yet */
    json_object_set_new(src, "SAP_No__c", json_string("1000001"));
    assert_false(es_mdm_writeback_needed(&mf, src, "1000001")); /* already there */
    assert_true(es_mdm_writeback_needed(&mf, src, "1000002"));  /* another id */
    json_t *wb = es_mdm_writeback_record(&mf, "1000002");
    assert_int_equal(json_object_size(wb), 1);
    assert_string_equal(json_string_value(json_object_get(wb, "SAP_No__c")), "1000002");
    json_decref(wb);

    /* Echo: the source carries exactly erpsync's last write (field + echo fingerprint). */
    json_object_set_new(src, "SAP_No__c", json_string("1000001"));
    assert_int_equal(es_mdm_skip_kind(&mf, src, "1000001", "aa", "aa"), ES_SKIP_ECHO);
    assert_int_equal(es_mdm_skip_kind(&mf, src, "1000001", "aa", "bb"), ES_SKIP_NOOP);
    assert_int_equal(es_mdm_skip_kind(&mf, src, "1000001", "aa", NULL), ES_SKIP_NOOP);
    assert_int_equal(es_mdm_skip_kind(&mf, src, "1000001", "aa", ""), ES_SKIP_NOOP);
    assert_int_equal(es_mdm_skip_kind(&mf, src, "1000009", "aa", "aa"), ES_SKIP_NOOP);
    json_decref(src);
    es_mdm_flow_release(&mf);

    /* A flow without write-back: the echo fingerprint alone decides. */
    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-crm"));
    assert_null(mf.writeback);
    src = json_object();
    assert_false(es_mdm_writeback_needed(&mf, src, "x"));
    json_decref(src);
    assert_int_equal(es_mdm_skip_kind(&mf, NULL, "x", "f1", "f1"), ES_SKIP_ECHO);
    es_mdm_flow_release(&mf);
    es_config_free(cfg);

    /* fields_owned_by gives the write-back field to the source: no write-back. */
    cfg = load("    fields_owned_by: {crm: [SAP_No__c]}\n", "    writeback: {field: SAP_No__c}\n");
    es_mdm_flow_init(&mf, cfg, es_config_flow(cfg, "to-erp"));
    assert_null(mf.writeback);
    assert_non_null(strstr(mf.writeback_refused, "owned by crm"));
    src = json_object();
    assert_false(es_mdm_writeback_needed(&mf, src, "1000001"));
    json_decref(src);
    es_mdm_flow_release(&mf);
    es_config_free(cfg);

    char sys[64];
    es_mdm_echo_system("crm", sys, sizeof sys);
    assert_string_equal(sys, "crm#echo");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ownership),    cmocka_unit_test(test_plain_flow),
        cmocka_unit_test(test_plan_not_sor), cmocka_unit_test(test_plan_into_sor),
        cmocka_unit_test(test_writeback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
