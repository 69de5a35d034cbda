/* SPDX-License-Identifier: MIT */
/*
 * Logging: logfmt and JSON shapes, and the redactor that keeps secrets out of every line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/log.h"

static void redacts(const char *in, const char *must_not_contain, const char *must_contain)
{
    char buf[512];
    es_strlcpy(buf, in, sizeof buf);
    es_log_redact(buf, sizeof buf);
    if (strstr(buf, must_not_contain) || !strstr(buf, must_contain)) {
        fprintf(stderr, "in:  %s\nout: %s\n", in, buf);
    }
    assert_null(strstr(buf, must_not_contain));
    assert_non_null(strstr(buf, must_contain));
}

static void test_redaction_patterns(void **state)
{
    (void)state;
    redacts("Authorization: Bearer 00Dxx0000000123!AR8AQ.abc", "00Dxx",
            "Authorization: [REDACTED]");
    redacts("authorization: Basic ZGVtbzpkZW1v", "ZGVtbzpkZW1v", "[REDACTED]");
    redacts("{\"access_token\":\"tok123456\",\"instance_url\":\"http://x\"}", "tok123456",
            "\"instance_url\":\"http://x\"");
    redacts("grant_type=password&username=u&password=hunter2&client_id=c", "hunter2",
            "client_id=c");
    redacts("client_secret=abc123&x=1", "abc123", "x=1");
    redacts("retrying with Bearer eyJhbGciOi.payload.sig now", "eyJhbGciOi", "now");
    redacts("x-csrf-token: 8Ajdkw91kdk==", "8Ajdkw91kdk", "[REDACTED]");
    redacts("refresh_token = 5Aep861tI", "5Aep861tI", "[REDACTED]");
    redacts("Cookie: SAP_SESSIONID=abcdef; path=/", "abcdef", "[REDACTED]");
    redacts("{\"session\": \"9f8e7d6c\"}", "9f8e7d6c", "[REDACTED]");
    redacts("sf_token=zzz999", "zzz999", "[REDACTED]");
    /* Ordinary words survive. */
    redacts("token expired, re-authenticating", "[REDACTED]", "token expired");
}

static void test_registered_secrets(void **state)
{
    (void)state;
    es_log_add_secret("Xq7-pLm2-Zr9w-Kt4v");
    es_log_add_secret("abc"); /* too short: ignored */
    redacts("login failed for crm with Xq7-pLm2-Zr9w-Kt4v twice Xq7-pLm2-Zr9w-Kt4v", "Xq7-pLm2",
            "with [REDACTED] twice [REDACTED]");
    redacts("abc is fine", "[REDACTED]", "abc is fine");
    es_log_clear_secrets();
    redacts("Xq7-pLm2-Zr9w-Kt4v", "[REDACTED]", "Xq7-pLm2-Zr9w-Kt4v");
}

static void test_redaction_never_overflows(void **state)
{
    (void)state;
    char buf[24];
    es_strlcpy(buf, "password=x access_token=", sizeof buf);
    size_t n = es_log_redact(buf, sizeof buf);
    assert_true(n < sizeof buf);
    assert_int_equal(strlen(buf), n);
}

static char *capture(void (*fn)(void))
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    es_log_set_fd(fds[1]);
    fn();
    es_log_set_fd(2);
    close(fds[1]);
    static char out[4096];
    ssize_t n = read(fds[0], out, sizeof out - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static void log_some(void)
{
    struct es_log_ctx ctx = {"customer-to-erp", "erp"};
    es_log(&ctx, ES_LOG_INFO, "synced %d records", 3);
    es_log(&ctx, ES_LOG_DEBUG, "hidden");
    struct es_err err;
    es_err_clear(&err);
    es_err_set(&err, ES_EREJECTED, "sale refused");
    es_err_remote(&err, 0, "UserError", "Credit limit \"exceeded\" for party");
    es_err_context(&err, NULL, NULL, "001X");
    es_log_err(&ctx, ES_LOG_WARN, &err);
    es_log(NULL, ES_LOG_ERROR, "sent Authorization: Bearer secret-token-value");
}

static void test_logfmt_lines(void **state)
{
    (void)state;
    es_log_set_format(ES_LOG_LOGFMT);
    es_log_set_level(ES_LOG_INFO);
    char *out = capture(log_some);
    assert_non_null(
        strstr(out, " lvl=info flow=customer-to-erp system=erp msg=\"synced 3 records\"\n"));
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "lvl=warn flow=customer-to-erp system=erp code=business key=001X "
                                "remote_code=UserError remote_msg=\"Credit limit \\\"exceeded\\\" "
                                "for party\" msg=\"sale refused\"\n"));
    assert_null(strstr(out, "secret-token-value"));
    assert_non_null(strstr(out, "ts="));
}

static void test_json_lines(void **state)
{
    (void)state;
    es_log_set_format(ES_LOG_JSON);
    char *out = capture(log_some);
    es_log_set_format(ES_LOG_LOGFMT);
    int lines = 0;
    for (char *line = out; *line; lines++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)(nl - line), 0, &jerr);
        assert_non_null(obj);
        assert_non_null(json_object_get(obj, "ts"));
        assert_non_null(json_object_get(obj, "msg"));
        if (lines == 1) {
            assert_string_equal(json_string_value(json_object_get(obj, "code")), "business");
            assert_string_equal(json_string_value(json_object_get(obj, "remote_msg")),
                                "Credit limit \"exceeded\" for party");
        }
        json_decref(obj);
        line = nl + 1;
    }
    assert_int_equal(lines, 3);
    assert_null(strstr(out, "secret-token-value"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redaction_patterns),
        cmocka_unit_test(test_registered_secrets),
        cmocka_unit_test(test_redaction_never_overflows),
        cmocka_unit_test(test_logfmt_lines),
        cmocka_unit_test(test_json_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
