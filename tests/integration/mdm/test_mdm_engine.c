/* SPDX-License-Identifier: MIT */
/*
 * Master-data rules through the real engine in one process: `memory` systems on both sides
 * (no sandbox serves both directions of one entity), a real SQLite journal, the real
 * mapping engine and worker.
 *  - two-way pair: a record crosses once, erpsync's own write comes back from the target
 *    and is skipped as an echo (no ping-pong), a real edit on either side still crosses;
 *  - system of record + conflict policies: review names the contested fields,
 *    source_of_record writes only the source's own fields, fields owned by the target are
 *    never overwritten.
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

#include "connectors/memory.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "engine_test.h"
#include "store/store.h"

static char g_dir[64];

static int group_setup(void **state)
{
    (void)state;
    et_tmpdir(g_dir, sizeof g_dir, "es_mdm");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return et_rmdir(g_dir);
}

static struct es_config *parse(const char *text)
{
    return et_parse("mdm.yaml", text);
}

static void run_once(const struct es_config *cfg)
{
    et_run_once(cfg);
}

static struct es_flow_stats stats(const struct es_config *cfg, const char *flow)
{
    return et_stats(cfg, flow);
}

/* The id of (entity, system, id) in other, or NULL. OUT: es_free. */
static char *xref(const struct es_config *cfg, const char *system, const char *id,
                  const char *other)
{
    struct es_store *s = NULL;
    assert_int_equal(es_store_open(cfg->store, &s, NULL), ES_OK);
    char *out = NULL;
    if (es_store_xref_lookup(s, "person", system, id, other, &out, NULL) != ES_OK) {
        out = NULL;
    }
    es_store_close(s);
    return out;
}

static const char *str(json_t *rec, const char *field)
{
    return json_string_value(json_object_get(rec, field));
}

/* Both directions poll; the reverse mapping is the inverse of the forward one. */
static void test_two_way_no_ping_pong(void **state)
{
    (void)state;
    es_memory_reset();
    char *text = es_xasprintf("store: sqlite:%s/two.db\n"
                              "systems:\n"
                              "  crm: {connector: memory}\n"
                              "  erp: {connector: memory}\n"
                              "entities:\n"
                              "  person: {objects: {crm: Contact, erp: Party}}\n"
                              "flows:\n"
                              "  to-erp:\n"
                              "    entity: person\n"
                              "    from: crm\n"
                              "    to: erp\n"
                              "    trigger: {poll: 1h}\n"
                              "    external_id: crm_id\n"
                              "    map:\n"
                              "      crm_id: {from: Id, required: true}\n"
                              "      party_name: {from: Name, required: true}\n"
                              "      city: {from: City}\n"
                              "  to-crm:\n"
                              "    entity: person\n"
                              "    from: erp\n"
                              "    to: crm\n"
                              "    trigger: {poll: 1h}\n"
                              "    external_id: Id\n"
                              "    map:\n"
                              "      Id: {from: crm_id}\n"
                              "      Name: {from: party_name, required: true}\n"
                              "      City: {from: city}\n",
                              g_dir);
    struct es_config *cfg = parse(text);
    es_free(text);

    /* A user creates a contact in the CRM. `Note` is not mapped: any write by erpsync
     * (a full replace in the memory system) would lose it. */
    json_t *c = json_pack("{s:s, s:s, s:s, s:s}", "Id", "C1", "Name", "Ann", "City", "Bonn", "Note",
                          "typed by a user");
    es_memory_put("Contact", "C1", c);
    json_decref(c);
    /* Two rounds: the reverse poll may run before or after the forward write. */
    run_once(cfg);
    run_once(cfg);
    assert_int_equal(es_memory_count("Party"), 1);
    char *pid = xref(cfg, "crm", "C1", "erp");
    assert_non_null(pid);
    json_t *p = es_memory_get("Party", pid);
    assert_string_equal(str(p, "party_name"), "Ann");
    json_decref(p);
    struct es_flow_stats fwd = stats(cfg, "to-erp"), rev = stats(cfg, "to-crm");
    assert_int_equal(fwd.outcomes[ES_CHANGE_DONE], 1);
    /* The ERP reported erpsync's own write: recognised as an echo, nothing written back. */
    assert_int_equal(rev.enqueued, 1);
    assert_int_equal(rev.outcomes[ES_CHANGE_DONE], 1);
    assert_int_equal(rev.skipped[ES_SKIP_ECHO], 1);
    c = es_memory_get("Contact", "C1");
    assert_string_equal(str(c, "Note"), "typed by a user");
    json_decref(c);

    /* Quiet: nothing new in either direction. */
    run_once(cfg);
    assert_int_equal(stats(cfg, "to-erp").enqueued, 1);
    assert_int_equal(stats(cfg, "to-crm").enqueued, 1);

    /* A user edits the party in the ERP: it crosses to the CRM; the CRM's report of that
     * write is an echo for the forward flow, so the ERP is not written again. */
    p = json_pack("{s:s, s:s, s:s}", "crm_id", "C1", "party_name", "Ann Smith", "city", "Bonn");
    es_memory_put("Party", pid, p);
    json_decref(p);
    run_once(cfg);
    run_once(cfg);
    c = es_memory_get("Contact", "C1");
    assert_string_equal(str(c, "Name"), "Ann Smith");
    json_decref(c);
    fwd = stats(cfg, "to-erp");
    rev = stats(cfg, "to-crm");
    assert_int_equal(rev.skipped[ES_SKIP_ECHO], 1);
    assert_int_equal(rev.outcomes[ES_CHANGE_DONE], 2);
    assert_int_equal(fwd.enqueued, 2);
    assert_int_equal(fwd.skipped[ES_SKIP_ECHO], 1);
    assert_int_equal(fwd.outcomes[ES_CHANGE_DONE], 2);
    run_once(cfg);
    assert_int_equal(stats(cfg, "to-erp").enqueued, 2);
    assert_int_equal(stats(cfg, "to-crm").enqueued, 2);

    /* A real edit in the CRM still crosses (and its echo is skipped in turn). */
    c = json_pack("{s:s, s:s, s:s}", "Id", "C1", "Name", "Ann Smith", "City", "Köln");
    es_memory_put("Contact", "C1", c);
    json_decref(c);
    run_once(cfg);
    run_once(cfg);
    p = es_memory_get("Party", pid);
    assert_string_equal(str(p, "city"), "Köln");
    json_decref(p);
    assert_int_equal(es_memory_count("Party"), 1);
    assert_int_equal(es_memory_count("Contact"), 1);
    rev = stats(cfg, "to-crm");
    assert_int_equal(rev.skipped[ES_SKIP_ECHO], 2);
    assert_int_equal(rev.enqueued, 3);
    run_once(cfg);
    assert_int_equal(stats(cfg, "to-erp").enqueued, 3);
    assert_int_equal(stats(cfg, "to-crm").enqueued, 3);
    es_free(pid);
    es_config_free(cfg);
}

/* One flow crm -> erp into the system of record erp, with a policy. */
static struct es_config *sor_config(const char *db, const char *policy)
{
    char *text = es_xasprintf("store: sqlite:%s/%s\n"
                              "systems:\n"
                              "  crm: {connector: memory}\n"
                              "  erp: {connector: memory}\n"
                              "entities:\n"
                              "  person:\n"
                              "    objects: {crm: Contact, erp: Party}\n"
                              "    system_of_record: erp\n"
                              "    conflict: %s\n"
                              "    fields_owned_by: {crm: [Phone], erp: [credit]}\n"
                              "flows:\n"
                              "  to-erp:\n"
                              "    entity: person\n"
                              "    from: crm\n"
                              "    to: erp\n"
                              "    trigger: {poll: 1h}\n"
                              "    external_id: crm_id\n"
                              "    map:\n"
                              "      crm_id: {from: Id, required: true}\n"
                              "      party_name: {from: Name, required: true}\n"
                              "      phone: {from: Phone}\n"
                              "      credit: {from: Credit}\n",
                              g_dir, db, policy);
    struct es_config *cfg = parse(text);
    es_free(text);
    return cfg;
}

static void put_contact(const char *name, const char *phone, const char *credit)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:s}", "Id", "C1", "Name", name, "Phone", phone,
                          "Credit", credit);
    es_memory_put("Contact", "C1", c);
    json_decref(c);
}

static void test_system_of_record(void **state)
{
    (void)state;
    /* review: an update of a field the source does not own parks the change. */
    es_memory_reset();
    struct es_config *cfg = sor_config("review.db", "review");
    put_contact("Ann", "+49 1", "100");
    run_once(cfg);
    char *pid = xref(cfg, "crm", "C1", "erp");
    assert_non_null(pid);
    json_t *p = es_memory_get("Party", pid);
    assert_string_equal(str(p, "credit"), "100"); /* a create writes everything */
    json_decref(p);
    /* The ERP (system of record) changes the credit limit it owns. */
    p = json_pack("{s:s, s:s, s:s, s:s}", "crm_id", "C1", "party_name", "Ann", "phone", "+49 1",
                  "credit", "500");
    es_memory_put("Party", pid, p);
    json_decref(p);
    put_contact("Ann", "+49 2", "100"); /* only the CRM's own field: written */
    run_once(cfg);
    p = es_memory_get("Party", pid);
    assert_string_equal(str(p, "phone"), "+49 2");
    assert_null(json_object_get(p, "credit")); /* never sent: the memory write replaces */
    json_decref(p);
    put_contact("Ann B.", "+49 2", "100"); /* a field the CRM does not own */
    run_once(cfg);
    struct es_flow_stats st = stats(cfg, "to-erp");
    assert_int_equal(st.count[ES_CHANGE_REVIEW], 1);
    struct es_store *s = NULL;
    assert_int_equal(es_store_open(cfg->store, &s, NULL), ES_OK);
    struct es_change_filter f = {"to-erp", ES_CHANGE_REVIEW, 0, 10};
    struct es_change *items = NULL;
    size_t n = 0;
    assert_int_equal(es_store_list(s, &f, &items, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].last_code, ES_ECONFLICT);
    assert_non_null(strstr(items[0].last_msg, "party_name"));
    assert_null(strstr(items[0].last_msg, "phone"));
    es_changes_free(items, n);
    es_store_close(s);
    p = es_memory_get("Party", pid);
    assert_string_equal(str(p, "party_name"), "Ann");
    json_decref(p);
    es_free(pid);
    es_config_free(cfg);

    /* source_of_record: only the source's own fields are written on update. */
    es_memory_reset();
    cfg = sor_config("sor.db", "source_of_record");
    put_contact("Ann", "+49 1", "100");
    run_once(cfg);
    pid = xref(cfg, "crm", "C1", "erp");
    assert_non_null(pid);
    put_contact("Ann B.", "+49 3", "900");
    run_once(cfg);
    p = es_memory_get("Party", pid);
    assert_string_equal(str(p, "phone"), "+49 3");
    assert_null(json_object_get(p, "party_name"));
    assert_null(json_object_get(p, "credit"));
    json_decref(p);
    st = stats(cfg, "to-erp");
    assert_int_equal(st.count[ES_CHANGE_DONE], 2);
    assert_int_equal(st.count[ES_CHANGE_REVIEW], 0);
    es_free(pid);
    es_config_free(cfg);

    /* last_write_wins: written, except the field the ERP owns. */
    es_memory_reset();
    cfg = sor_config("lww.db", "last_write_wins");
    put_contact("Ann", "+49 1", "100");
    run_once(cfg);
    pid = xref(cfg, "crm", "C1", "erp");
    put_contact("Ann B.", "+49 1", "900");
    run_once(cfg);
    p = es_memory_get("Party", pid);
    assert_string_equal(str(p, "party_name"), "Ann B.");
    assert_null(json_object_get(p, "credit"));
    json_decref(p);
    es_free(pid);
    es_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_way_no_ping_pong),
        cmocka_unit_test(test_system_of_record),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
