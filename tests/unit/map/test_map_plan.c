/* SPDX-License-Identifier: MIT */
/*
 * Compiled mappings: every rule kind, lists with [*], failures naming field and rule, compile
 * errors at their YAML position, pre-flight validation against declared and described
 * schemas, the NDJSON fast path, and Lua custom functions in their sandbox.
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

#include "core/diag.h"
#include "map/internal.h"
#include "map/map.h"

static const char head[] = "systems:\n"
                           "  crm: {connector: memory}\n"
                           "  erp: {connector: memory}\n"
                           "tables:\n"
                           "  countries: {Germany: DE, France: FR}\n"
                           "  terms: {\"Net 30\": NT30}\n"
                           "entities:\n"
                           "  customer: {objects: {crm: Account, erp: Customer}}\n"
                           "flows:\n"
                           "  f:\n"
                           "    entity: customer\n"
                           "    from: crm\n"
                           "    to: erp\n"
                           "    trigger: {poll: 1m}\n";

struct fixture {
    struct es_config *cfg;
    struct es_map_plan *plan;
    struct es_diags diags;
};

/* Loads head + extra (flow keys, indented 4) + optional top-level text; compiles flow f. */
static int load(struct fixture *fx, const char *top, const char *extra)
{
    char text[8192];
    snprintf(text, sizeof text, "%s%s%s", top ? top : "", head, extra);
    es_diags_init(&fx->diags);
    fx->cfg = NULL;
    fx->plan = NULL;
    int rc = es_config_parse("m.yaml", text, strlen(text), &fx->cfg, &fx->diags);
    if (rc) {
        return rc;
    }
    return es_map_compile(fx->cfg, es_config_flow(fx->cfg, "f"), &fx->plan, &fx->diags);
}

static void unload(struct fixture *fx)
{
    es_map_plan_free(fx->plan);
    es_config_free(fx->cfg);
    es_diags_release(&fx->diags);
}

/* Maps one JSON record through the fast path; returns output or "FAIL code field rule". */
static const char *map1(struct fixture *fx, const char *in)
{
    static char out[2048];
    struct es_buf b;
    es_buf_init(&b, 0);
    struct es_map_failure fail;
    struct es_map_env env = {NULL, NULL, 0};
    int rc = es_map_eval_json(fx->plan, in, strlen(in), &b, &env, &fail);
    if (rc) {
        snprintf(out, sizeof out, "FAIL %s %s %s: %s", es_code_name((enum es_code)rc), fail.field,
                 fail.rule, fail.message);
    } else {
        snprintf(out, sizeof out, "%s", b.data);
    }
    es_buf_release(&b);
    return out;
}

static void test_rules(void **state)
{
    (void)state;
    struct fixture fx;
    int rc = load(&fx, NULL,
                  "    map:\n"
                  "      Name: {from: Name, max_length: 5, on_overflow: truncate, required: true}\n"
                  "      Kind: {const: \"2\"}\n"
                  "      Active: {const: true}\n"
                  "      Addr[0].Country: {from: Country, table: countries}\n"
                  "      Addr[0].City: City\n"
                  "      Terms: {from: Terms, table: terms, unmapped: default, default: NT00}\n"
                  "      Limit: {from: Limit, type: decimal}\n"
                  "      Count: {from: Count, type: integer}\n"
                  "      Flag: {from: Flag, type: boolean}\n"
                  "      Since: {from: Since, type: date}\n"
                  "      Seen: {from: Seen, type: datetime}\n"
                  "      Label: {from: Num, type: string}\n"
                  "      Note: {from: Note, default: none}\n"
                  "      VIP: {const: yes, when: \"Limit > 1000\"}\n"
                  "      Amount: {from: Limit, format: \"0.00\"}\n"
                  "      Lines[*].Qty: {from: \"Items[*].Q\", type: decimal}\n"
                  "      Lines[*].Pos: {expr: \"concat('P', Items[*].N)\"}\n");
    es_diags_print(&fx.diags, stderr);
    assert_int_equal(rc, ES_OK);
    assert_string_equal(
        map1(&fx, "{\"Name\":\"Müllerei AG\",\"Country\":\"France\",\"City\":\"Paris\","
                  "\"Terms\":\"Net 90\",\"Limit\":\"1500.5\",\"Count\":\"12\",\"Flag\":\"X\","
                  "\"Since\":\"2024-05-01T23:30:00-05:00\",\"Seen\":\"/Date(1714569619000)/\","
                  "\"Num\":42,\"Items\":[{\"Q\":1.50,\"N\":\"a\"},{\"Q\":\"2\",\"N\":\"b\"}]}"),
        "{\"Name\":\"Mülle\",\"Kind\":\"2\",\"Active\":true,\"Addr\":[{\"Country\":\"FR\","
        "\"City\":\"Paris\"}],\"Terms\":\"NT00\",\"Limit\":1500.5,\"Count\":12,\"Flag\":true,"
        "\"Since\":\"2024-05-01\",\"Seen\":\"2024-05-01T13:20:19Z\",\"Label\":\"42\","
        "\"Note\":\"none\",\"VIP\":\"yes\",\"Amount\":1500.50,\"Lines\":[{\"Qty\":1.50,"
        "\"Pos\":\"Pa\"},{\"Qty\":2,\"Pos\":\"Pb\"}]}");
    /* Missing optional fields are left out; a table value passes. */
    assert_string_equal(map1(&fx, "{\"Name\":\"Bo\",\"Terms\":\"Net 30\",\"Limit\":5}"),
                        "{\"Name\":\"Bo\",\"Kind\":\"2\",\"Active\":true,\"Terms\":\"NT30\","
                        "\"Limit\":5,\"Note\":\"none\",\"Amount\":5.00}");
    /* Failures name the field and the rule. */
    assert_string_equal(map1(&fx, "{\"Limit\":5}"),
                        "FAIL validation Name required: required field is missing: source "
                        "'Name' is empty");
    assert_string_equal(map1(&fx, "{\"Name\":\"x\",\"Country\":\"Mars\"}"),
                        "FAIL validation Addr[0].Country table: value 'Mars' is not in table "
                        "'countries'");
    assert_string_equal(map1(&fx, "{\"Name\":\"x\",\"Count\":\"1.5\"}"),
                        "FAIL validation Count type: 1.5 is not a whole number");
    assert_string_equal(map1(&fx, "{\"Name\":\"x\",\"Flag\":\"maybe\"}"),
                        "FAIL validation Flag type: 'maybe' is not a boolean");
    assert_string_equal(map1(&fx, "{\"Name\":\"x\",\"Since\":\"yesterday\"}"),
                        "FAIL validation Since type: 'yesterday' is not a date");
    assert_string_equal(map1(&fx, "{\"Name\":\"x\",\"Items\":[{\"Q\":1},{\"Q\":\"z\"}]}"),
                        "FAIL validation Lines[1].Qty type: 'z' is not a number");
    assert_string_equal(map1(&fx, "[1,2]"), "FAIL poison  : the record is not a JSON object");
    assert_non_null(strstr(map1(&fx, "{\"Name\":"), "FAIL poison  : invalid JSON"));
    unload(&fx);
}

static void test_reject_overflow_and_json_api(void **state)
{
    (void)state;
    struct fixture fx;
    assert_int_equal(load(&fx, NULL,
                          "    map:\n"
                          "      Name: {from: Name, max_length: 3, on_overflow: reject}\n"
                          "      Amount: {expr: \"Price * Qty\"}\n"),
                     ES_OK);
    assert_string_equal(map1(&fx, "{\"Name\":\"Grüße\"}"),
                        "FAIL validation Name max_length: 5 characters, at most 3 allowed");
    json_t *in = json_pack("{s:s, s:s, s:i}", "Name", "Abc", "Price", "19.99", "Qty", 3);
    json_t *out = NULL;
    struct es_map_failure fail;
    assert_int_equal(es_map_eval(fx.plan, in, &out, NULL, &fail), ES_OK);
    assert_string_equal(json_string_value(json_object_get(out, "Name")), "Abc");
    assert_true(json_is_real(json_object_get(out, "Amount")));
    char *s = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(15));
    assert_string_equal(s, "{\"Name\":\"Abc\",\"Amount\":59.97}");
    free(s); /* checksrc: ok (jansson) */
    json_decref(out);
    json_decref(in);
    in = json_string("not an object");
    assert_int_equal(es_map_eval(fx.plan, in, &out, NULL, &fail), ES_EPOISON);
    assert_null(out);
    json_decref(in);
    unload(&fx);
}

static void test_compile_errors(void **state)
{
    (void)state;
    struct fixture fx;
    int rc = load(&fx, NULL,
                  "    map:\n"
                  "      Name: {expr: \"concat(Name, uper(Id))\"}\n"
                  "      City: {expr: \"lookup('nope', City)\"}\n"
                  "      Lines[*].X: {from: Qty}\n");
    assert_int_equal(rc, ES_ECONFIG);
    assert_null(fx.plan);
    assert_true(fx.diags.errors >= 3);
    /* line 17, the expr string starts at column 21 after the quote; 'uper' at offset 13 */
    int found = 0;
    for (size_t i = 0; i < fx.diags.count; i++) {
        const struct es_diag *d = &fx.diags.items[i];
        if (strstr(d->msg, "unknown function 'uper'")) {
            assert_int_equal(d->line, 16);
            assert_int_equal(d->col, 34);
            found++;
        }
        if (strstr(d->msg, "unknown table 'nope'")) {
            assert_int_equal(d->line, 17);
            found++;
        }
        if (strstr(d->msg, "has [*] but its source reads no list")) {
            assert_int_equal(d->line, 18);
            found++;
        }
    }
    assert_int_equal(found, 3);
    unload(&fx);
}

static void test_declared_schema(void **state)
{
    (void)state;
    struct fixture fx;
    int rc = load(&fx, NULL,
                  "    map:\n"
                  "      Name: Name\n"
                  "      Industry: Industry\n"
                  "      Employees: Employees\n"
                  "    schema:\n"
                  "      Name: {type: string, required: true, max_length: 10}\n"
                  "      Industry: {picklist: [Retail, Technology]}\n"
                  "      Employees: {type: integer}\n");
    es_diags_print(&fx.diags, stderr);
    assert_int_equal(rc, ES_OK);
    assert_non_null(es_map_plan_schema(fx.plan));
    assert_string_equal(map1(&fx, "{\"Name\":\"Acme\",\"Industry\":\"Retail\",\"Employees\":5}"),
                        "{\"Name\":\"Acme\",\"Industry\":\"Retail\",\"Employees\":5}");
    assert_string_equal(map1(&fx, "{\"Industry\":\"Retail\"}"),
                        "FAIL validation Name required: required by the target and missing");
    assert_string_equal(map1(&fx, "{\"Name\":\"Acme\",\"Industry\":\"Mining\"}"),
                        "FAIL validation Industry picklist: 'Mining' is not an allowed value");
    assert_string_equal(map1(&fx, "{\"Name\":\"Acme Corporation\"}"),
                        "FAIL validation Name max_length: 16 characters, the target allows 10");
    assert_string_equal(map1(&fx, "{\"Name\":\"A\",\"Employees\":\"many\"}"),
                        "FAIL validation Employees type: expected integer, got 'many'");
    unload(&fx);

    rc = load(&fx, NULL,
              "    map: {Name: Name}\n"
              "    schema:\n"
              "      Name: {type: text-ish, maxlen: 3}\n");
    assert_int_equal(rc, ES_ECONFIG);
    assert_int_equal(fx.diags.errors, 2);
    unload(&fx);
}

static void test_describe_schema(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *d =
        json_loads("{\"name\":\"Account\",\"fields\":["
                   "{\"name\":\"Name\",\"type\":\"string\",\"length\":5,\"nillable\":false,"
                   "\"createable\":true},"
                   "{\"name\":\"Rating\",\"type\":\"picklist\",\"nillable\":true,"
                   "\"picklistValues\":[{\"value\":\"Hot\",\"active\":true},{\"value\":\"Old\","
                   "\"active\":false}]},"
                   "{\"name\":\"AnnualRevenue\",\"type\":\"currency\",\"nillable\":true},"
                   "{\"name\":\"Id\",\"type\":\"id\",\"nillable\":false,\"createable\":false}]}",
                   0, &jerr);
    assert_non_null(d);
    struct es_map_schema *s = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_map_schema_from_json(d, &s, &err), ES_OK);
    struct es_map_failure fail;
    json_t *rec =
        json_pack("{s:s, s:s, s:f}", "Name", "Acme", "Rating", "Hot", "AnnualRevenue", 12.5);
    assert_int_equal(es_map_validate(s, rec, &fail), ES_OK);
    json_object_set_new(rec, "Rating", json_string("Old"));
    assert_int_equal(es_map_validate(s, rec, &fail), ES_EVALIDATION);
    assert_string_equal(fail.field, "Rating");
    assert_string_equal(fail.rule, "picklist");
    json_object_set_new(rec, "Rating", json_string("Hot"));
    json_object_set_new(rec, "AnnualRevenue", json_string("lots"));
    assert_int_equal(es_map_validate(s, rec, &fail), ES_EVALIDATION);
    assert_string_equal(fail.rule, "type");
    json_object_del(rec, "AnnualRevenue");
    json_object_del(rec, "Name");
    assert_int_equal(es_map_validate(s, rec, &fail), ES_EVALIDATION);
    assert_string_equal(fail.field, "Name");
    assert_string_equal(fail.rule, "required");
    json_decref(rec);
    es_map_schema_free(s);
    json_decref(d);
    /* the declared form as JSON */
    d = json_pack("{s:{s:s, s:b}}", "Qty", "type", "decimal", "required", 1);
    assert_int_equal(es_map_schema_from_json(d, &s, &err), ES_OK);
    rec = json_pack("{s:s}", "Qty", "1.5");
    assert_int_equal(es_map_validate(s, rec, &fail), ES_OK);
    json_decref(rec);
    es_map_schema_free(s);
    json_decref(d);
    d = json_pack("{s:{s:s}}", "Qty", "type", "nonsense");
    assert_int_equal(es_map_schema_from_json(d, &s, &err), ES_EINVAL);
    json_decref(d);
}

static char lua_file[64];

static void write_lua(const char *src)
{
    snprintf(lua_file, sizeof lua_file, "/tmp/es_map_test_XXXXXX");
    int fd = mkstemp(lua_file);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, src, strlen(src)), (ssize_t)strlen(src));
    close(fd);
}

static void test_lua(void **state)
{
    (void)state;
    write_lua("function vat(x) return x * 1.19 end\n"
              "function initials(s) return (s:gsub('(%w)%w*%s*', '%1')) end\n"
              "function spin() while true do end end\n"
              "function escape() return io.open('/etc/passwd') end\n"
              "function shell() return os.execute('true') end\n"
              "function req() return require('os') end\n"
              "function tbl(t) return {n = #t, first = t[1]} end\n");
    char top[128];
    snprintf(top, sizeof top, "lua: %s\n", lua_file);
    struct fixture fx;
    int rc = load(&fx, top,
                  "    map:\n"
                  "      Gross: {expr: \"lua.vat(Net)\"}\n"
                  "      Ini: {expr: \"lua.initials(Name)\"}\n"
                  "      T: {expr: \"lua.tbl(Items)\"}\n");
    es_diags_print(&fx.diags, stderr);
    assert_int_equal(rc, ES_OK);
    assert_string_equal(map1(&fx, "{\"Net\":100,\"Name\":\"John Ronald Tolkien\",\"Items\":[7,8]}"),
                        "{\"Gross\":119,\"Ini\":\"JRT\",\"T\":{\"first\":7,\"n\":2}}");
    unload(&fx);

    const char *bad[] = {"escape", "shell", "req"};
    for (int i = 0; i < 3; i++) {
        char m[128];
        snprintf(m, sizeof m, "    map:\n      X: {expr: \"lua.%s()\"}\n", bad[i]);
        assert_int_equal(load(&fx, top, m), ES_OK);
        const char *got = map1(&fx, "{}");
        assert_non_null(strstr(got, "FAIL validation X expr: lua."));
        assert_non_null(strstr(got, "nil value"));
        unload(&fx);
    }
    assert_int_equal(load(&fx, top, "    map:\n      X: {expr: \"lua.spin()\"}\n"), ES_OK);
    const char *got = map1(&fx, "{}");
    assert_non_null(strstr(got, "FAIL timeout X expr: lua.spin:"));
    assert_non_null(strstr(got, "time limit"));
    unload(&fx);

    assert_int_equal(load(&fx, top, "    map:\n      X: {expr: \"lua.nothere(1)\"}\n"), ES_ECONFIG);
    assert_non_null(strstr(fx.diags.items[0].msg, "defines no function 'nothere'"));
    unload(&fx);
    unlink(lua_file);

    write_lua("function broken( return end\n");
    snprintf(top, sizeof top, "lua: %s\n", lua_file);
    assert_int_equal(load(&fx, top, "    map:\n      X: Y\n"), ES_ECONFIG);
    assert_non_null(strstr(fx.diags.items[0].msg, "lua:"));
    unload(&fx);
    unlink(lua_file);
}

static int xref_fail(void *ud, const char *e, const char *v, char *out, size_t cap)
{
    (void)ud;
    (void)e;
    (void)v;
    (void)out;
    (void)cap;
    return ES_ESTORE;
}

static void test_xref_env(void **state)
{
    (void)state;
    struct fixture fx;
    assert_int_equal(load(&fx, NULL,
                          "    map:\n"
                          "      Party: {expr: \"xref('customer', AccountId)\", required: true}\n"),
                     ES_OK);
    struct es_buf b;
    es_buf_init(&b, 0);
    struct es_map_failure fail;
    struct es_map_env env = {xref_fail, NULL, 0};
    const char *in = "{\"AccountId\":\"001\"}";
    assert_int_equal(es_map_eval_json(fx.plan, in, strlen(in), &b, &env, &fail), ES_ESTORE);
    assert_string_equal(fail.field, "Party");
    assert_int_equal(es_map_eval_json(fx.plan, in, strlen(in), &b, NULL, &fail), ES_ENOTFOUND);
    assert_int_equal(b.len, 0);
    es_buf_release(&b);
    unload(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),           cmocka_unit_test(test_reject_overflow_and_json_api),
        cmocka_unit_test(test_compile_errors),  cmocka_unit_test(test_declared_schema),
        cmocka_unit_test(test_describe_schema), cmocka_unit_test(test_lua),
        cmocka_unit_test(test_xref_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
