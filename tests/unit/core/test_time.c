/* SPDX-License-Identifier: MIT */
/*
 * Durations and cron schedules: parsing, error positions, and next-fire times across
 * month ends, weekdays and a daylight-saving change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/cron.h"

static void test_durations(void **state)
{
    (void)state;
    int64_t ms;
    int bad;
    assert_int_equal(es_duration_parse("15m", &ms, &bad), ES_OK);
    assert_int_equal(ms, 900000);
    assert_int_equal(es_duration_parse("1h30m", &ms, &bad), ES_OK);
    assert_int_equal(ms, 5400000);
    assert_int_equal(es_duration_parse("250ms", &ms, &bad), ES_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(es_duration_parse("2d", &ms, &bad), ES_OK);
    assert_int_equal(ms, 172800000);
    assert_int_equal(es_duration_parse("15", &ms, &bad), ES_EINVAL);
    assert_int_equal(bad, 2);
    assert_int_equal(es_duration_parse("5x", &ms, &bad), ES_EINVAL);
    assert_int_equal(bad, 1);
    assert_int_equal(es_duration_parse("", &ms, &bad), ES_EINVAL);
    assert_int_equal(es_duration_parse("-5s", &ms, &bad), ES_EINVAL);
    char out[32];
    es_duration_format(5400000, out, sizeof out);
    assert_string_equal(out, "1h30m");
    es_duration_format(250, out, sizeof out);
    assert_string_equal(out, "250ms");
    es_clock_iso8601(1714569619123LL, out, sizeof out);
    assert_string_equal(out, "2024-05-01T13:20:19.123Z");
}

static time_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return timegm(&tm);
}

static void test_cron_parse_errors(void **state)
{
    (void)state;
    struct es_cron c;
    struct es_err err;
    int bad;
    es_err_clear(&err);
    assert_int_equal(es_cron_parse("0 2 * *", &c, &bad, &err), ES_EINVAL);
    assert_non_null(strstr(err.msg, "5 fields"));
    es_err_clear(&err);
    assert_int_equal(es_cron_parse("0 24 * * *", &c, &bad, &err), ES_EINVAL);
    assert_int_equal(bad, 2);
    assert_non_null(strstr(err.msg, "hour"));
    es_err_clear(&err);
    assert_int_equal(es_cron_parse("0 2 * FOO *", &c, &bad, &err), ES_EINVAL);
    assert_int_equal(bad, 6);
    es_err_clear(&err);
    assert_int_equal(es_cron_parse("*/0 * * * *", &c, &bad, &err), ES_EINVAL);
    assert_int_equal(es_cron_parse("0 2 * * 7", &c, &bad, NULL), ES_OK);
    assert_int_equal(c.dow, 1); /* 7 is Sunday */
}

static void test_cron_next(void **state)
{
    (void)state;
    struct es_cron c;
    assert_int_equal(es_cron_parse("0 2 * * *", &c, NULL, NULL), ES_OK);
    /* Daily at 02:00 UTC. */
    assert_int_equal(es_cron_next(&c, utc(2026, 11, 27, 18, 0), "UTC"), utc(2026, 11, 28, 2, 0));
    assert_int_equal(es_cron_next(&c, utc(2026, 11, 28, 2, 0), "UTC"), utc(2026, 11, 29, 2, 0));
    /* Month end and year end. */
    assert_int_equal(es_cron_parse("30 23 31 12 *", &c, NULL, NULL), ES_OK);
    assert_int_equal(es_cron_next(&c, utc(2026, 1, 1, 0, 0), NULL), utc(2026, 12, 31, 23, 30));
    /* Weekdays every 15 minutes from 8 to 18. */
    assert_int_equal(es_cron_parse("*/15 8-18 * * MON-FRI", &c, NULL, NULL), ES_OK);
    /* 2026-11-28 is a Saturday: next is Monday 30th 08:00. */
    assert_int_equal(es_cron_next(&c, utc(2026, 11, 27, 18, 50), "UTC"), utc(2026, 11, 30, 8, 0));
    assert_int_equal(es_cron_next(&c, utc(2026, 11, 30, 8, 0), "UTC"), utc(2026, 11, 30, 8, 15));
    /* In Europe/Berlin 02:00 local is 01:00 UTC in winter, 00:00 UTC in summer. */
    assert_int_equal(es_cron_parse("0 2 * * *", &c, NULL, NULL), ES_OK);
    assert_int_equal(es_cron_next(&c, utc(2026, 11, 27, 12, 0), "Europe/Berlin"),
                     utc(2026, 11, 28, 1, 0));
    assert_int_equal(es_cron_next(&c, utc(2026, 7, 1, 12, 0), "Europe/Berlin"),
                     utc(2026, 7, 2, 0, 0));
    /* Day-of-month OR day-of-week when both are restricted (Vixie cron). */
    assert_int_equal(es_cron_parse("0 0 1 * SUN", &c, NULL, NULL), ES_OK);
    assert_int_equal(es_cron_next(&c, utc(2026, 11, 27, 0, 0), "UTC"), utc(2026, 11, 29, 0, 0));
    assert_int_equal(es_cron_next(&c, utc(2026, 11, 29, 0, 0), "UTC"), utc(2026, 12, 1, 0, 0));
}

static void test_buf_bounds_and_json(void **state)
{
    (void)state;
    struct es_buf b;
    es_buf_init(&b, 8);
    assert_int_equal(es_buf_puts(&b, "12345678"), ES_OK);
    assert_int_equal(es_buf_puts(&b, "9"), ES_ENOMEM);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    es_buf_release(&b);
    es_buf_init(&b, 0);
    assert_int_equal(es_buf_json_str(&b, "a\"b\\c\n\x01\xc3\xa4", 9), ES_OK);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa4\"");
    es_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_cron_parse_errors),
        cmocka_unit_test(test_cron_next),
        cmocka_unit_test(test_buf_bounds_and_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
