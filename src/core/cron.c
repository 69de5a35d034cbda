/* SPDX-License-Identifier: MIT */
/*
 * Cron parsing into bit sets and next-fire computation. The time-zone conversion uses the C
 * library's zone database through TZ; glibc has no per-call zone, so the switch of TZ is
 * serialised by a mutex (the scheduler asks rarely: once per fire).
 */
#include "core/cron.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct field_spec {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[i] is value lo + i */
    int nnames;
};

static const struct field_spec specs[5] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0},    {"month", 1, 12, month_names, 12},
    {"day of week", 0, 7, dow_names, 7},
};

static int parse_value(const char **pp, const struct field_spec *f, int *out)
{
    const char *p = *pp;
    if (isdigit((unsigned char)*p)) {
        int v = 0;
        while (isdigit((unsigned char)*p)) {
            v = v * 10 + (*p++ - '0');
            if (v > 1000) {
                return -1;
            }
        }
        *pp = p;
        *out = v;
        return 0;
    }
    for (int i = 0; i < f->nnames; i++) {
        if (strncasecmp(p, f->names[i], 3) == 0) {
            *pp = p + 3;
            *out = (f == &specs[3] ? 1 : 0) + i;
            return 0;
        }
    }
    return -1;
}

static int parse_field(const char *s, size_t len, const struct field_spec *f, uint64_t *bits,
                       int *star, struct es_err *err)
{
    char buf[64];
    if (len >= sizeof buf) {
        return es_err_set(err, ES_EINVAL, "%s field is too long", f->name);
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    *bits = 0;
    *star = strcmp(buf, "*") == 0 || strcmp(buf, "?") == 0;
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        const char *p = item;
        int lo, hi, step = 1;
        if (*p == '*') {
            lo = f->lo;
            hi = f == &specs[4] ? 6 : f->hi;
            p++;
        } else {
            if (parse_value(&p, f, &lo) != 0) {
                return es_err_set(err, ES_EINVAL, "%s: '%s' is not a number or name", f->name,
                                  item);
            }
            hi = lo;
            if (*p == '-') {
                p++;
                if (parse_value(&p, f, &hi) != 0) {
                    return es_err_set(err, ES_EINVAL, "%s: bad range '%s'", f->name, item);
                }
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p)) {
                return es_err_set(err, ES_EINVAL, "%s: bad step in '%s'", f->name, item);
            }
            step = (int)strtol(p, NULL, 10);
            while (isdigit((unsigned char)*p)) {
                p++;
            }
            if (step < 1) {
                return es_err_set(err, ES_EINVAL, "%s: step must be at least 1", f->name);
            }
            if (hi == lo && item[0] != '*') {
                hi = f == &specs[4] ? 6 : f->hi;
            }
        }
        if (*p != '\0') {
            return es_err_set(err, ES_EINVAL, "%s: unexpected '%s'", f->name, p);
        }
        if (lo < f->lo || hi > f->hi || lo > hi) {
            return es_err_set(err, ES_EINVAL, "%s: '%s' is outside %d-%d", f->name, item, f->lo,
                              f->hi);
        }
        for (int v = lo; v <= hi; v += step) {
            *bits |= 1ULL << (f == &specs[4] && v == 7 ? 0 : v);
        }
    }
    if (*bits == 0) {
        return es_err_set(err, ES_EINVAL, "%s field is empty", f->name);
    }
    return ES_OK;
}

int es_cron_parse(const char *expr, struct es_cron *out, int *bad_at, struct es_err *err)
{
    memset(out, 0, sizeof *out);
    if (bad_at) {
        *bad_at = 0;
    }
    const char *p = expr;
    uint64_t bits[5];
    int stars[5];
    int n = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (!*p) {
            break;
        }
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t') {
            p++;
        }
        if (n == 5) {
            if (bad_at) {
                *bad_at = (int)(start - expr);
            }
            return es_err_set(err, ES_EINVAL,
                              "a cron expression has 5 fields (minute hour day month weekday)");
        }
        if (parse_field(start, (size_t)(p - start), &specs[n], &bits[n], &stars[n], err) != 0) {
            if (bad_at) {
                *bad_at = (int)(start - expr);
            }
            return ES_EINVAL;
        }
        n++;
    }
    if (n != 5) {
        if (bad_at) {
            *bad_at = (int)strlen(expr);
        }
        return es_err_set(err, ES_EINVAL,
                          "a cron expression has 5 fields (minute hour day month weekday), got %d",
                          n);
    }
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->dow = (uint8_t)bits[4];
    out->dom_star = stars[2];
    out->dow_star = stars[4];
    return ES_OK;
}

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

static int day_matches(const struct es_cron *c, const struct tm *tm)
{
    int dom = (c->dom >> tm->tm_mday) & 1;
    int dow = (c->dow >> tm->tm_wday) & 1;
    if (c->dom_star || c->dow_star) {
        return dom && dow;
    }
    return dom || dow;
}

time_t es_cron_next(const struct es_cron *c, time_t after, const char *tz)
{
    pthread_mutex_lock(&tz_lock);
    char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    setenv("TZ", tz && *tz ? tz : "UTC", 1);
    tzset();
    time_t t = after - (after % 60) + 60;
    time_t limit = after + 5LL * 366 * 86400;
    time_t found = -1;
    while (t < limit) {
        struct tm tm;
        localtime_r(&t, &tm);
        if (!((c->month >> (tm.tm_mon + 1)) & 1)) {
            /* Jump to the first minute of the next month. */
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = 0;
            tm.tm_min = 0;
            tm.tm_sec = 0;
            tm.tm_isdst = -1;
            time_t nt = mktime(&tm);
            t = nt > t ? nt : t + 60;
            continue;
        }
        if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = 0;
            tm.tm_min = 0;
            tm.tm_sec = 0;
            tm.tm_isdst = -1;
            time_t nt = mktime(&tm);
            t = nt > t ? nt : t + 60;
            continue;
        }
        if (!((c->hour >> tm.tm_hour) & 1)) {
            t += 60 * (60 - tm.tm_min);
            continue;
        }
        if (!((c->minute >> tm.tm_min) & 1)) {
            t += 60;
            continue;
        }
        found = t;
        break;
    }
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved); /* checksrc: ok (strdup above) */
    } else {
        unsetenv("TZ");
    }
    tzset();
    pthread_mutex_unlock(&tz_lock);
    return found;
}
