/* SPDX-License-Identifier: MIT */
/*
 * The expression language: literals, paths, arithmetic on exact decimals, comparisons,
 * logic, if(), every built-in function, dates in the systems' formats, and compile errors
 * with their column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/diag.h"
#include "map/internal.h"
#include "map/map.h"

static const char config_text[] = "systems:\n"
                                  "  crm: {connector: memory}\n"
                                  "  erp: {connector: memory}\n"
                                  "tables:\n"
                                  "  countries: {Germany: DE, \"United States\": US}\n"
                                  "entities:\n"
                                  "  customer: {objects: {crm: Account, erp: Customer}}\n"
                                  "flows:\n"
                                  "  f:\n"
                                  "    entity: customer\n"
                                  "    from: crm\n"
                                  "    to: erp\n"
                                  "    trigger: {poll: 1m}\n"
                                  "    map: {Name: Name}\n";

static struct es_config *cfg;

static int setup(void **state)
{
    (void)state;
    struct es_diags d;
    es_diags_init(&d);
    int rc = es_config_parse("t.yaml", config_text, strlen(config_text), &cfg, &d);
    es_diags_print(&d, stderr);
    es_diags_release(&d);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    es_config_free(cfg);
    return 0;
}

static int xref_stub(void *ud, const char *entity, const char *v, char *out, size_t cap)
{
    (void)ud;
    if (strcmp(entity, "customer") == 0 && strcmp(v, "001A") == 0) {
        snprintf(out, cap, "17100001");
        return ES_OK;
    }
    return ES_ENOTFOUND;
}

static const char record[] =
    "{\"Name\":\"  Acme GmbH \",\"Id\":\"001A\",\"Amount\":1234.5,\"Qty\":3,\"Price\":\"19.99\","
    "\"Country\":\"Germany\",\"Flag\":true,\"Empty\":\"\",\"Nothing\":null,"
    "\"Street\":\"Hauptstraße "
    "12a\\nHinterhaus\",\"Items\":[{\"Q\":2,\"N\":\"a\"},{\"Q\":5,\"N\":\"b\"}],"
    "\"SfDate\":\"2024-05-01T13:20:19.000+0000\",\"SapDate\":\"/Date(1714521600000)/\","
    "\"SapTime\":\"PT13H20M19S\",\"Day\":\"2024-02-29\",\"Big\":123456789012345678}";

/* Evaluates expr against the record; returns the result as compact JSON (static buffer). */
static const char *ev(const char *expr)
{
    static char out[1024];
    json_error_t jerr;
    json_t *in = json_loads(record, 0, &jerr);
    assert_non_null(in);
    struct es_map_env env = {xref_stub, NULL, 1714569619000LL};
    struct es_map_failure fail;
    struct es_err err;
    es_err_clear(&err);
    json_t *res = NULL;
    int rc = es_map_eval_expr(cfg, expr, in, &env, &res, &fail, &err);
    json_decref(in);
    if (rc == ES_ECONFIG) {
        snprintf(out, sizeof out, "compile error: %s", err.msg);
        return out;
    }
    if (rc) {
        snprintf(out, sizeof out, "error %s: %s", es_code_name((enum es_code)rc), fail.message);
        return out;
    }
    char *s = json_dumps(res, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
    snprintf(out, sizeof out, "%s", s);
    free(s); /* checksrc: ok (jansson) */
    json_decref(res);
    return out;
}

#define EQ(expr, want) assert_string_equal(ev(expr), want)

static void test_literals_paths(void **state)
{
    (void)state;
    EQ("'text'", "\"text\"");
    EQ("\"dq\"", "\"dq\"");
    EQ("42", "42");
    EQ("true", "true");
    EQ("null", "null");
    EQ("Id", "\"001A\"");
    EQ("Items[1].N", "\"b\"");
    EQ("Items[*].Q", "[2,5]");
    EQ("Missing.Deep.Path", "null");
    EQ("Items[7].N", "null");
}

static void test_decimals(void **state)
{
    (void)state;
    EQ("0.1 + 0.2", "0.3");
    EQ("Price * Qty", "59.97");
    EQ("Amount - 0.5", "1234.0");
    EQ("10 / 4", "2.5");
    EQ("1 / 3", "0.333333333333333");
    EQ("-Qty", "-3");
    EQ("Qty * 2 + 1", "7");
    EQ("(Qty + 1) * 2", "8");
    EQ("Nothing + 1", "null");
    EQ("round(2.345, 2)", "2.35");
    EQ("round(-2.345, 2)", "-2.35");
    EQ("round(1234.5)", "1235");
    EQ("format_decimal(Amount, 2)", "\"1234.50\"");
    EQ("format_decimal(Amount, 2, ',', '.')", "\"1.234,50\"");
    EQ("format_decimal(1234567.891, 1, '.', ',')", "\"1,234,567.9\"");
    EQ("format_decimal(Big, 0)", "\"123456789012345678\"");
    assert_string_equal(ev("1 / 0"), "error validation: division by zero");
    assert_string_equal(ev("Name * 2"),
                        "error validation: arithmetic: expected a number, got '  Acme GmbH '");
}

static void test_compare_logic(void **state)
{
    (void)state;
    EQ("Qty == 3", "true");
    EQ("Qty == '3'", "true");
    EQ("Price > 19.5", "true");
    EQ("Id != '001A'", "false");
    EQ("Country == 'Germany' and Flag", "true");
    EQ("Empty or Nothing", "false");
    EQ("not Flag", "false");
    EQ("not(Nothing)", "true");
    EQ("if(Qty >= 3, 'many', 'few')", "\"many\"");
    EQ("if(Nothing, 1, 2)", "2");
    EQ("'a' < 'b'", "true");
    EQ("Day < '2024-03-01'", "true");
}

static void test_strings(void **state)
{
    (void)state;
    EQ("trim(Name)", "\"Acme GmbH\"");
    EQ("upper('straße')", "\"STRAẞE\"");
    EQ("upper('ärger')", "\"ÄRGER\"");
    EQ("lower('ÖL')", "\"öl\"");
    EQ("concat(Id, '-', Qty, Nothing)", "\"001A-3\"");
    EQ("'a' + 'b' + 1", "\"ab1\"");
    EQ("substr('Müller', 1, 3)", "\"üll\"");
    EQ("substr('Müller', -2)", "\"er\"");
    EQ("replace('a-b-c', '-', '/')", "\"a/b/c\"");
    EQ("split('a;b;c', ';')", "[\"a\",\"b\",\"c\"]");
    EQ("split('a;b;c', ';', 1)", "\"b\"");
    EQ("split('a;b;c', ';', -1)", "\"c\"");
    EQ("join(Items[*].N, ',')", "\"a,b\"");
    EQ("pad_left(Qty, 5, '0')", "\"00003\"");
    EQ("pad_left('abc', 2)", "\"abc\"");
    EQ("coalesce(Nothing, Empty, Id)", "\"001A\"");
    EQ("coalesce(Nothing)", "null");
    EQ("length('Grüße')", "5");
    EQ("lookup('countries', Country)", "\"DE\"");
    EQ("lookup('countries', 'Mars')", "null");
    EQ("lookup('countries', 'Mars', 'XX')", "\"XX\"");
    EQ("upper(Nothing)", "null");
}

static void test_dates(void **state)
{
    (void)state;
    EQ("parse_date(SfDate)", "\"2024-05-01T13:20:19Z\"");
    EQ("parse_date('2024-05-01T15:20:19+02:00')", "\"2024-05-01T15:20:19+02:00\"");
    EQ("to_utc(parse_date('2024-05-01T15:20:19+02:00'))", "\"2024-05-01T13:20:19Z\"");
    EQ("format_date(SapDate, '%Y-%m-%d')", "\"2024-05-01\"");
    EQ("format_date(SfDate, 'sap')", "\"/Date(1714569619000)/\"");
    EQ("format_date('/Date(1714569619000+0120)/', 'iso')", "\"2024-05-01T15:20:19+02:00\"");
    EQ("format_date(SapTime, '%H:%M:%S')", "\"13:20:19\"");
    EQ("format_date(Day, '%d.%m.%Y')", "\"29.02.2024\"");
    EQ("format_date(parse_date('2024-05-01T23:30:00-05:00'), '%Y-%m-%d')", "\"2024-05-01\"");
    EQ("format_date(to_utc('2024-05-01T23:30:00-05:00'), '%Y-%m-%d')", "\"2024-05-02\"");
    EQ("format_date(Day, 'salesforce')", "\"2024-02-29\"");
    EQ("format_date('2024-05-01T13:20:19Z', 'salesforce')", "\"2024-05-01T13:20:19.000+0000\"");
    EQ("format_date(parse_date('01.05.2024', '%d.%m.%Y'), 'iso')", "\"2024-05-01\"");
    EQ("format_date(parse_date('May 1 2024', '%b %d %Y'), '%Y%m%d')", "\"20240501\"");
    EQ("format_date(now(), 'iso')", "\"2024-05-01T13:20:19Z\"");
    EQ("format_date('/Date(-86400000)/', '%Y-%m-%d')", "\"1969-12-31\"");
    assert_string_equal(ev("parse_date('2024-02-30')"),
                        "error validation: parse_date: '2024-02-30' is not a date");
    assert_string_equal(ev("parse_date('31/12/2024', '%d.%m.%Y')"),
                        "error validation: parse_date: '31/12/2024' is not a date of form "
                        "%d.%m.%Y");
}

static void test_xref_address(void **state)
{
    (void)state;
    EQ("xref('customer', Id)", "\"17100001\"");
    EQ("xref('customer', Nothing)", "null");
    assert_string_equal(ev("xref('customer', 'zzz')"),
                        "error not_found: xref('customer', 'zzz'): not synced yet");
    EQ("address_street(Street, lookup('countries', Country))", "\"Hauptstraße\"");
    EQ("address_house_number(Street, 'DE')", "\"12a\"");
    EQ("address_supplement(Street, 'DE')", "\"Hinterhaus\"");
    EQ("address_join('Baker Street', '221B', null, 'GB')", "\"221B Baker Street\"");
}

static void compile_error(const char *expr, const char *want)
{
    const char *got = ev(expr);
    if (!strstr(got, want)) {
        print_message("%s -> %s (want %s)\n", expr, got, want);
    }
    assert_non_null(strstr(got, want));
}

static void test_compile_errors(void **state)
{
    (void)state;
    compile_error("concat(Name", "at column 12: expected ',' or ')' in call of concat");
    compile_error("uper(Name)", "at column 1: unknown function 'uper' (did you mean 'upper'?)");
    compile_error("Name = 'x'", "at column 6: '=' is not an operator: compare with '=='");
    compile_error("substr(Name)", "substr takes 2 to 3 arguments, not 1");
    compile_error("lookup('nope', Name)", "at column 8: lookup: unknown table 'nope'");
    compile_error("lookup(Name, Name)", "lookup: the first argument must be a quoted name");
    compile_error("'open", "at column 1: unterminated string");
    compile_error("1 +", "expression ends too early");
    compile_error("Name Name", "at column 6: unexpected 'Name' after the expression");
    compile_error("lua.f(1)", "no Lua file is configured");
    compile_error("if(1, 2)", "if takes 3 arguments");
    compile_error("a ? b", "unexpected character '?'");
}

static void test_decimal_unit(void **state)
{
    (void)state;
    struct es_dec a, b, r;
    char buf[48];
    assert_int_equal(es_dec_parse("12.50", 5, &a), ES_OK);
    assert_int_equal(a.m, 1250);
    assert_int_equal(a.scale, 2);
    assert_int_equal(es_dec_parse("1e3", 3, &b), ES_OK);
    assert_int_equal(b.m, 1000);
    assert_int_equal(es_dec_parse("abc", 3, &b), ES_EVALIDATION);
    assert_int_equal(es_dec_parse(".", 1, &b), ES_EVALIDATION);
    assert_int_equal(es_dec_parse("99999999999999999999", 20, &b), ES_EVALIDATION);
    assert_int_equal(es_dec_parse("-0.005", 6, &b), ES_OK);
    assert_int_equal(es_dec_round(b, 2, &r), ES_OK);
    es_dec_format(r, buf, sizeof buf);
    assert_string_equal(buf, "-0.01");
    assert_int_equal(es_dec_parse("9223372036854775807", 19, &a), ES_OK);
    assert_int_equal(es_dec_parse("1", 1, &b), ES_OK);
    assert_int_equal(es_dec_add(a, b, &r), ES_EVALIDATION);
    assert_int_equal(es_dec_parse("2.50", 4, &a), ES_OK);
    assert_int_equal(es_dec_parse("3", 1, &b), ES_OK);
    assert_int_equal(es_dec_mul(a, b, &r), ES_OK);
    es_dec_format(r, buf, sizeof buf);
    assert_string_equal(buf, "7.50");
    assert_int_equal(es_dec_cmp(a, b), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals_paths), cmocka_unit_test(test_decimals),
        cmocka_unit_test(test_compare_logic),  cmocka_unit_test(test_strings),
        cmocka_unit_test(test_dates),          cmocka_unit_test(test_xref_address),
        cmocka_unit_test(test_compile_errors), cmocka_unit_test(test_decimal_unit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
