/* SPDX-License-Identifier: MIT */
/*
 * Dates and times as the systems write them: ISO 8601, Salesforce's
 * 2024-05-01T13:20:19.000+0000, SAP OData v2's /Date(1714569619000)/ and
 * /Date(1714569619000+0060)/, and SAP's Edm.Time PT13H20M19S. Calendar arithmetic is done on
 * day numbers (proleptic Gregorian), never through the C library's time zone machinery, so
 * results do not depend on TZ. A date without a time stays that calendar day in every
 * conversion: it is never turned into an instant and shifted across a zone.
 */
#include <stdio.h>
#include <string.h>

#include "map/internal.h"

#define DAY_MS 86400000LL

/* Howard Hinnant's public-domain civil calendar algorithms, written out here. */
int64_t es_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void es_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int days_in_month(int64_t y, unsigned m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        return 29;
    }
    return dim[m - 1];
}

/* Reads exactly `w` digits at *i. */
static int digits(const char *s, size_t n, size_t *i, int w, long *out)
{
    long v = 0;
    for (int k = 0; k < w; k++) {
        if (*i >= n || s[*i] < '0' || s[*i] > '9') {
            return 0;
        }
        v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    *out = v;
    return 1;
}

/* Reads 1..w digits at *i. */
static int digits_upto(const char *s, size_t n, size_t *i, int w, long *out)
{
    long v = 0;
    int k = 0;
    while (k < w && *i < n && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (s[*i] - '0');
        (*i)++;
        k++;
    }
    *out = v;
    return k > 0;
}

static int make(long y, long mo, long d, long h, long mi, long sec, long ms, int has_time, int off,
                struct es_date *out)
{
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, (unsigned)mo) || h > 23 || mi > 59 ||
        sec > 60) {
        return ES_EVALIDATION;
    }
    int64_t days = es_days_from_civil(y, (unsigned)mo, (unsigned)d);
    out->offset_min = off;
    if (!has_time) {
        out->kind = ES_DATE_DATE;
        out->ms = days * DAY_MS;
        out->offset_min = 0;
        return ES_OK;
    }
    out->kind = ES_DATE_DATETIME;
    out->ms = days * DAY_MS + ((h * 60 + mi) * 60 + (sec > 59 ? 59 : sec)) * 1000LL + ms -
              (int64_t)off * 60000LL;
    return ES_OK;
}

/* Zone suffix at *i: Z, +hh, +hhmm, +hh:mm. Returns 0 on junk. */
static int parse_zone(const char *s, size_t n, size_t *i, int *off, int *has)
{
    *off = 0;
    *has = 0;
    if (*i >= n) {
        return 1;
    }
    if (s[*i] == 'Z' || s[*i] == 'z') {
        (*i)++;
        *has = 1;
        return 1;
    }
    if (s[*i] != '+' && s[*i] != '-') {
        return 0;
    }
    int neg = s[*i] == '-';
    (*i)++;
    long hh = 0, mm = 0;
    if (!digits(s, n, i, 2, &hh)) {
        return 0;
    }
    if (*i < n && s[*i] == ':') {
        (*i)++;
    }
    if (*i < n && !digits(s, n, i, 2, &mm)) {
        return 0;
    }
    if (hh > 23 || mm > 59) {
        return 0;
    }
    *off = (int)(neg ? -(hh * 60 + mm) : hh * 60 + mm);
    *has = 1;
    return 1;
}

static int parse_sap(const char *s, size_t n, struct es_date *out)
{
    /* /Date(1714569619000)/ or /Date(1714569619000+0060)/ (offset in minutes, SAP style) */
    size_t i = 6;
    int neg = 0;
    if (i < n && s[i] == '-') {
        neg = 1;
        i++;
    }
    int64_t ms = 0;
    size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 16) {
        ms = ms * 10 + (s[i] - '0');
        i++;
    }
    if (i == start) {
        return ES_EVALIDATION;
    }
    int off = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oneg = s[i] == '-';
        i++;
        long v = 0;
        if (!digits(s, n, &i, 4, &v)) {
            return ES_EVALIDATION;
        }
        off = (int)(oneg ? -v : v);
    }
    if (n - i != 2 || s[i] != ')' || s[i + 1] != '/') {
        return ES_EVALIDATION;
    }
    out->kind = ES_DATE_DATETIME;
    out->ms = neg ? -ms : ms;
    out->offset_min = off;
    return ES_OK;
}

static int parse_duration(const char *s, size_t n, struct es_date *out)
{
    /* PT13H20M19S, PT0H0M0S, PT13H20M19.5S */
    size_t i = 2;
    long h = 0, m = 0, sec = 0, ms = 0;
    int any = 0;
    while (i < n) {
        long v = 0;
        if (!digits_upto(s, n, &i, 9, &v) || i >= n) {
            return ES_EVALIDATION;
        }
        if (s[i] == 'H') {
            h = v;
        } else if (s[i] == 'M') {
            m = v;
        } else if (s[i] == 'S') {
            sec = v;
        } else if (s[i] == '.') {
            sec = v;
            i++;
            size_t st = i;
            long frac = 0;
            if (!digits_upto(s, n, &i, 3, &frac) || i >= n || s[i] != 'S') {
                return ES_EVALIDATION;
            }
            for (size_t k = i - st; k < 3; k++) {
                frac *= 10;
            }
            ms = frac;
        } else {
            return ES_EVALIDATION;
        }
        i++;
        any = 1;
    }
    if (!any || h > 24 || m > 59 || sec > 59) {
        return ES_EVALIDATION;
    }
    out->kind = ES_DATE_TIME;
    out->ms = ((h * 60 + m) * 60 + sec) * 1000LL + ms;
    out->offset_min = 0;
    return ES_OK;
}

static int parse_auto(const char *s, size_t n, struct es_date *out)
{
    while (n && (s[n - 1] == ' ')) {
        n--;
    }
    while (n && *s == ' ') {
        s++;
        n--;
    }
    if (n > 8 && memcmp(s, "/Date(", 6) == 0) {
        return parse_sap(s, n, out);
    }
    if (n > 2 && s[0] == 'P' && s[1] == 'T') {
        return parse_duration(s, n, out);
    }
    size_t i = 0;
    long y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!digits(s, n, &i, 4, &y) || i >= n || s[i++] != '-' || !digits(s, n, &i, 2, &mo) ||
        i >= n || s[i++] != '-' || !digits(s, n, &i, 2, &d)) {
        return ES_EVALIDATION;
    }
    if (i == n) {
        return make(y, mo, d, 0, 0, 0, 0, 0, 0, out);
    }
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') {
        return ES_EVALIDATION;
    }
    i++;
    if (!digits(s, n, &i, 2, &h) || i >= n || s[i++] != ':' || !digits(s, n, &i, 2, &mi)) {
        return ES_EVALIDATION;
    }
    if (i < n && s[i] == ':') {
        i++;
        if (!digits(s, n, &i, 2, &sec)) {
            return ES_EVALIDATION;
        }
        if (i < n && (s[i] == '.' || s[i] == ',')) {
            i++;
            size_t st = i;
            long frac = 0;
            if (!digits_upto(s, n, &i, 3, &frac)) {
                return ES_EVALIDATION;
            }
            for (size_t k = i - st; k < 3; k++) {
                frac *= 10;
            }
            while (i < n && s[i] >= '0' && s[i] <= '9') {
                i++; /* digits past milliseconds are dropped */
            }
            ms = frac;
        }
    }
    int off = 0, has = 0;
    if (!parse_zone(s, n, &i, &off, &has) || i != n) {
        return ES_EVALIDATION;
    }
    return make(y, mo, d, h, mi, sec, ms, 1, off, out);
}

static const char *const month_abbr[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int parse_fmt(const char *s, size_t n, const char *fmt, struct es_date *out)
{
    size_t i = 0;
    long y = 1970, mo = 1, d = 1, h = 0, mi = 0, sec = 0, ms = 0;
    int has_time = 0, off = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (i >= n || s[i] != *f) {
                return ES_EVALIDATION;
            }
            i++;
            continue;
        }
        f++;
        int ok = 1;
        switch (*f) {
        case 'Y':
            ok = digits(s, n, &i, 4, &y);
            break;
        case 'y':
            ok = digits(s, n, &i, 2, &y);
            y += y < 70 ? 2000 : 1900;
            break;
        case 'm':
            ok = digits_upto(s, n, &i, 2, &mo);
            break;
        case 'd':
            ok = digits_upto(s, n, &i, 2, &d);
            break;
        case 'H':
            ok = digits_upto(s, n, &i, 2, &h);
            has_time = 1;
            break;
        case 'M':
            ok = digits_upto(s, n, &i, 2, &mi);
            has_time = 1;
            break;
        case 'S':
            ok = digits_upto(s, n, &i, 2, &sec);
            has_time = 1;
            break;
        case 'f': {
            size_t st = i;
            ok = digits_upto(s, n, &i, 3, &ms);
            for (size_t k = i - st; k < 3; k++) {
                ms *= 10;
            }
            break;
        }
        case 'b':
            ok = 0;
            for (int k = 0; k < 12; k++) {
                if (n - i >= 3 && strncasecmp(s + i, month_abbr[k], 3) == 0) {
                    mo = k + 1;
                    i += 3;
                    ok = 1;
                    break;
                }
            }
            break;
        case 'z': {
            int has = 0;
            ok = parse_zone(s, n, &i, &off, &has);
            break;
        }
        case '%':
            ok = i < n && s[i++] == '%';
            break;
        default:
            return ES_EVALIDATION;
        }
        if (!ok) {
            return ES_EVALIDATION;
        }
    }
    if (i != n) {
        return ES_EVALIDATION;
    }
    return make(y, mo, d, h, mi, sec, ms, has_time, off, out);
}

int es_date_parse(const char *s, size_t n, const char *fmt, struct es_date *out)
{
    if (fmt && *fmt && strcmp(fmt, "iso") != 0 && strcmp(fmt, "auto") != 0) {
        return parse_fmt(s, n, fmt, out);
    }
    return parse_auto(s, n, out);
}

struct parts {
    int64_t y;
    unsigned mo, d;
    int h, mi, s, ms;
};

static void split_local(const struct es_date *d, struct parts *p)
{
    int64_t ms = d->ms;
    if (d->kind == ES_DATE_DATETIME) {
        ms += (int64_t)d->offset_min * 60000LL;
    }
    int64_t days = ms >= 0 ? ms / DAY_MS : -((-ms + DAY_MS - 1) / DAY_MS);
    int64_t rem = ms - days * DAY_MS;
    if (d->kind == ES_DATE_TIME) {
        p->y = 1970;
        p->mo = 1;
        p->d = 1;
    } else {
        es_civil_from_days(days, &p->y, &p->mo, &p->d);
    }
    p->h = (int)(rem / 3600000);
    p->mi = (int)(rem / 60000 % 60);
    p->s = (int)(rem / 1000 % 60);
    p->ms = (int)(rem % 1000);
}

static size_t put_zone(char *out, size_t cap, int off, int colon)
{
    if (off == 0 && colon == 2) {
        return (size_t)snprintf(out, cap, "Z");
    }
    int a = off < 0 ? -off : off;
    return (size_t)snprintf(out, cap, colon ? "%c%02d:%02d" : "%c%02d%02d", off < 0 ? '-' : '+',
                            a / 60, a % 60);
}

size_t es_date_format(const struct es_date *d, const char *fmt, char *out, size_t cap)
{
    struct parts p;
    split_local(d, &p);
    size_t n = 0;
    if (cap == 0) {
        return 0;
    }
    out[0] = '\0';
    if (!fmt || strcmp(fmt, "iso") == 0) {
        if (d->kind == ES_DATE_DATE && p.y >= 0 && p.y <= 9999 && cap > 10) {
            /* the common case, without printf */
            unsigned y = (unsigned)p.y;
            out[0] = (char)('0' + y / 1000);
            out[1] = (char)('0' + y / 100 % 10);
            out[2] = (char)('0' + y / 10 % 10);
            out[3] = (char)('0' + y % 10);
            out[4] = '-';
            out[5] = (char)('0' + p.mo / 10);
            out[6] = (char)('0' + p.mo % 10);
            out[7] = '-';
            out[8] = (char)('0' + p.d / 10);
            out[9] = (char)('0' + p.d % 10);
            out[10] = '\0';
            return 10;
        }
        if (d->kind == ES_DATE_DATE) {
            n = (size_t)snprintf(out, cap, "%04lld-%02u-%02u", (long long)p.y, p.mo, p.d);
        } else if (d->kind == ES_DATE_TIME) {
            n = (size_t)snprintf(out, cap, "%02d:%02d:%02d", p.h, p.mi, p.s);
        } else {
            n = (size_t)snprintf(out, cap, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)p.y, p.mo,
                                 p.d, p.h, p.mi, p.s);
            if (p.ms && n < cap) {
                n += (size_t)snprintf(out + n, cap - n, ".%03d", p.ms);
            }
            if (n < cap) {
                n += put_zone(out + n, cap - n, d->offset_min, 2);
            }
        }
        return n < cap ? n : cap - 1;
    }
    if (strcmp(fmt, "sap") == 0) {
        if (d->kind == ES_DATE_TIME) {
            n = (size_t)snprintf(out, cap, "PT%02dH%02dM%02dS", p.h, p.mi, p.s);
        } else {
            n = (size_t)snprintf(out, cap, "/Date(%lld)/", (long long)d->ms);
        }
        return n < cap ? n : cap - 1;
    }
    if (strcmp(fmt, "salesforce") == 0) {
        if (d->kind == ES_DATE_DATE) {
            n = (size_t)snprintf(out, cap, "%04lld-%02u-%02u", (long long)p.y, p.mo, p.d);
        } else {
            n = (size_t)snprintf(out, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%03d", (long long)p.y,
                                 p.mo, p.d, p.h, p.mi, p.s, p.ms);
            if (n < cap) {
                n += put_zone(out + n, cap - n, d->kind == ES_DATE_DATETIME ? d->offset_min : 0, 0);
            }
        }
        return n < cap ? n : cap - 1;
    }
    for (const char *f = fmt; *f && n + 1 < cap; f++) {
        if (*f != '%' || !f[1]) {
            out[n++] = *f;
            continue;
        }
        f++;
        int w = 0;
        switch (*f) {
        case 'Y':
            w = snprintf(out + n, cap - n, "%04lld", (long long)p.y);
            break;
        case 'y':
            w = snprintf(out + n, cap - n, "%02lld", (long long)(p.y % 100));
            break;
        case 'm':
            w = snprintf(out + n, cap - n, "%02u", p.mo);
            break;
        case 'd':
            w = snprintf(out + n, cap - n, "%02u", p.d);
            break;
        case 'H':
            w = snprintf(out + n, cap - n, "%02d", p.h);
            break;
        case 'M':
            w = snprintf(out + n, cap - n, "%02d", p.mi);
            break;
        case 'S':
            w = snprintf(out + n, cap - n, "%02d", p.s);
            break;
        case 'f':
            w = snprintf(out + n, cap - n, "%03d", p.ms);
            break;
        case 'b':
            w = snprintf(out + n, cap - n, "%s", month_abbr[p.mo - 1]);
            break;
        case 'z':
            w = (int)put_zone(out + n, cap - n, d->kind == ES_DATE_DATETIME ? d->offset_min : 0, 0);
            break;
        case '%':
            w = snprintf(out + n, cap - n, "%%");
            break;
        default:
            w = snprintf(out + n, cap - n, "%%%c", *f);
            break;
        }
        if (w > 0) {
            n += (size_t)w;
        }
        if (n >= cap) {
            n = cap - 1;
        }
    }
    out[n] = '\0';
    return n;
}
