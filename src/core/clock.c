/* SPDX-License-Identifier: MIT */
/*
 * Clock and duration helpers.
 */
#include "core/clock.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t es_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t es_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int es_duration_parse(const char *s, int64_t *ms, int *bad_at)
{
    const char *p = s;
    int64_t total = 0;
    int parts = 0;
    if (bad_at) {
        *bad_at = 0;
    }
    while (*p) {
        if (!isdigit((unsigned char)*p)) {
            if (bad_at) {
                *bad_at = (int)(p - s);
            }
            return ES_EINVAL;
        }
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            n = n * 10 + (*p - '0');
            if (n > 1000000000LL) {
                if (bad_at) {
                    *bad_at = (int)(p - s);
                }
                return ES_EINVAL;
            }
            p++;
        }
        int64_t unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else if (*p == 'd') {
            unit = 86400000;
            p++;
        } else {
            if (bad_at) {
                *bad_at = (int)(p - s);
            }
            return ES_EINVAL;
        }
        total += n * unit;
        parts++;
    }
    if (parts == 0) {
        return ES_EINVAL;
    }
    *ms = total;
    return ES_OK;
}

void es_duration_format(int64_t ms, char *out, int cap)
{
    static const struct {
        int64_t unit;
        const char *name;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    int off = 0;
    out[0] = '\0';
    if (ms == 0) {
        snprintf(out, (size_t)cap, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0] && off < cap; i++) {
        if (ms >= units[i].unit) {
            off += snprintf(out + off, (size_t)(cap - off), "%lld%s",
                            (long long)(ms / units[i].unit), units[i].name);
            ms %= units[i].unit;
        }
    }
}

void es_clock_iso8601(int64_t epoch_ms, char *out, int cap)
{
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, (size_t)cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(epoch_ms % 1000));
}
