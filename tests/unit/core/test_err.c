/* SPDX-License-Identifier: MIT */
/*
 * The error table is API: names, classes and retryability must stay as documented.
 * Also the first-failure-wins rule and the detail fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"

static void test_every_code_has_a_unique_name(void **state)
{
    (void)state;
    for (int i = 0; i < ES_CODE_LAST; i++) {
        const char *name = es_code_name((enum es_code)i);
        assert_non_null(name);
        assert_string_not_equal(name, "unknown");
        assert_int_equal(es_code_from_name(name), i);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(name, es_code_name((enum es_code)j));
        }
    }
    assert_string_equal(es_code_name(ES_CODE_LAST), "unknown");
    assert_int_equal(es_code_from_name("nonsense"), ES_CODE_LAST);
}

static void test_taxonomy(void **state)
{
    (void)state;
    /* The failure taxonomy of DESIGN.md: what the engine does with each class. */
    assert_int_equal(es_code_class(ES_ETIMEOUT), ES_CLASS_TRANSIENT);
    assert_int_equal(es_code_class(ES_EREMOTE), ES_CLASS_TRANSIENT);
    assert_int_equal(es_code_class(ES_ERATELIMIT), ES_CLASS_RATE_LIMITED);
    assert_int_equal(es_code_class(ES_EAUTH), ES_CLASS_AUTH);
    assert_int_equal(es_code_class(ES_EVALIDATION), ES_CLASS_VALIDATION);
    assert_int_equal(es_code_class(ES_EREJECTED), ES_CLASS_BUSINESS);
    assert_int_equal(es_code_class(ES_ECONFLICT), ES_CLASS_CONFLICT);
    assert_int_equal(es_code_class(ES_ENOTFOUND), ES_CLASS_NOT_FOUND);
    assert_int_equal(es_code_class(ES_EPOISON), ES_CLASS_POISON);
    assert_int_equal(es_code_class(ES_EINTERNAL), ES_CLASS_INTERNAL);
    assert_true(es_code_retryable(ES_ETIMEOUT));
    assert_true(es_code_retryable(ES_ERATELIMIT));
    assert_true(es_code_retryable(ES_EPROTOCOL));
    assert_false(es_code_retryable(ES_EREJECTED));
    assert_false(es_code_retryable(ES_EVALIDATION));
    assert_false(es_code_retryable(ES_EPOISON));
    assert_false(es_code_retryable(ES_OK));
    assert_string_equal(es_class_name(ES_CLASS_RATE_LIMITED), "rate_limited");
    assert_string_equal(es_code_name(ES_EREJECTED), "business");
    assert_int_equal(es_code_exit_status(ES_OK), 0);
    for (int i = 1; i < ES_CODE_LAST; i++) {
        int st = es_code_exit_status((enum es_code)i);
        assert_true(st > 0 && st < 100);
    }
}

static void test_first_failure_wins(void **state)
{
    (void)state;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_err_set(&err, ES_ETIMEOUT, "call to %s timed out", "erp"), ES_ETIMEOUT);
    assert_int_equal(es_err_set(&err, ES_EIO, "later failure"), ES_EIO);
    assert_int_equal(err.code, ES_ETIMEOUT);
    assert_string_equal(err.msg, "call to erp timed out");
    es_err_prefix(&err, "flow %s", "f1");
    assert_string_equal(err.msg, "flow f1: call to erp timed out");
    es_err_remote(&err, 503, "SERVER_UNAVAILABLE", "try\nlater");
    es_err_hint(&err, "check %s", "the VPN");
    es_err_context(&err, "erp", "f1", "001ABC");
    assert_int_equal(err.http_status, 503);
    assert_string_equal(err.remote_code, "SERVER_UNAVAILABLE");
    assert_string_equal(err.remote_msg, "try later");
    assert_string_equal(err.hint, "check the VPN");
    assert_string_equal(err.system, "erp");
    assert_string_equal(err.key, "001ABC");
    /* NULL err is allowed everywhere. */
    assert_int_equal(es_err_set(NULL, ES_EAUTH, "x"), ES_EAUTH);
    es_err_prefix(NULL, "x");
}

static void test_messages_are_one_line_and_bounded(void **state)
{
    (void)state;
    struct es_err err;
    es_err_clear(&err);
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[10] = '\n';
    es_err_set(&err, ES_EREMOTE, "%s", big);
    assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
    assert_null(strchr(err.msg, '\n'));
    char small[4];
    es_strlcpy(small, "abcdef", sizeof small);
    assert_string_equal(small, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_a_unique_name),
        cmocka_unit_test(test_taxonomy),
        cmocka_unit_test(test_first_failure_wins),
        cmocka_unit_test(test_messages_are_one_line_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
