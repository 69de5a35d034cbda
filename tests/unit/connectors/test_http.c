/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of the HTTP client: status classification (the engine's retry decisions
 * depend on it), Retry-After parsing in both forms, and percent-encoding for SOQL and forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/http.h"

static void test_status_classes(void **state)
{
    (void)state;
    assert_int_equal(es_http_status_code(200, 0), ES_OK);
    assert_int_equal(es_http_status_code(302, 0), ES_OK);
    assert_int_equal(es_http_status_code(401, 0), ES_EAUTH);
    assert_int_equal(es_http_status_code(404, 0), ES_ENOTFOUND);
    assert_int_equal(es_http_status_code(412, 0), ES_ECONFLICT);
    assert_int_equal(es_http_status_code(400, 0), ES_EVALIDATION);
    assert_int_equal(es_http_status_code(429, 0), ES_ERATELIMIT);
    assert_int_equal(es_http_status_code(503, 1), ES_ERATELIMIT);
    assert_int_equal(es_http_status_code(503, 0), ES_EREMOTE);
    assert_int_equal(es_http_status_code(500, 0), ES_EREMOTE);
    assert_int_equal(es_http_status_code(504, 0), ES_ETIMEOUT);
}

static void test_retry_after(void **state)
{
    (void)state;
    assert_true(es_http_parse_retry_after("120", 0) == 120.0);
    assert_true(es_http_parse_retry_after(" 7 ", 0) == 7.0);
    assert_true(es_http_parse_retry_after("soon", 0) < 0);
    assert_true(es_http_parse_retry_after(NULL, 0) < 0);
    assert_true(es_http_parse_retry_after("12abc", 0) < 0);
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
    assert_true(es_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111770) == 7.0);
    assert_true(es_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111800) == 0.0);
}

static void test_escape(void **state)
{
    (void)state;
    struct es_buf b;
    es_buf_init(&b, 0);
    assert_int_equal(es_http_escape(&b, "SELECT Id FROM A WHERE x > 2024-01-01T00:00:00+01:00"),
                     ES_OK);
    assert_string_equal(b.data,
                        "SELECT%20Id%20FROM%20A%20WHERE%20x%20%3E%202024-01-01T00%3A00%3A00%"
                        "2B01%3A00");
    es_buf_reset(&b);
    assert_int_equal(es_http_escape(&b, "a~b_c.d-e\xc3\xa4"), ES_OK);
    assert_string_equal(b.data, "a~b_c.d-e%C3%A4");
    es_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_classes),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
