/* SPDX-License-Identifier: MIT */
/*
 * Exact decimals for money and quantities: an int64 mantissa and a decimal scale 0..18.
 * No binary floating point ever touches a value: 0.1 + 0.2 is 0.3. Every operation checks
 * overflow and reports it instead of wrapping; intermediate products use 128-bit integers.
 */
#include <stdio.h>
#include <string.h>

#include "map/internal.h"

__extension__ typedef __int128 i128;

static const int64_t pow10_tab[19] = {1LL,
                                      10LL,
                                      100LL,
                                      1000LL,
                                      10000LL,
                                      100000LL,
                                      1000000LL,
                                      10000000LL,
                                      100000000LL,
                                      1000000000LL,
                                      10000000000LL,
                                      100000000000LL,
                                      1000000000000LL,
                                      10000000000000LL,
                                      100000000000000LL,
                                      1000000000000000LL,
                                      10000000000000000LL,
                                      100000000000000000LL,
                                      1000000000000000000LL};

int es_dec_parse(const char *s, size_t n, struct es_dec *out)
{
    size_t i = 0;
    int neg = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    i128 m = 0;
    int scale = 0, digits = 0, frac = 0;
    long exp = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (m == 0 && c == '0' && !frac) {
                digits = digits ? digits : 1;
                continue;
            }
            m = m * 10 + (c - '0');
            if (m > INT64_MAX) {
                return ES_EVALIDATION;
            }
            digits++;
            if (frac) {
                scale++;
            }
        } else if (c == '.' && !frac) {
            frac = 1;
        } else if ((c == 'e' || c == 'E') && digits) {
            i++;
            int eneg = 0;
            if (i < n && (s[i] == '-' || s[i] == '+')) {
                eneg = s[i] == '-';
                i++;
            }
            if (i >= n) {
                return ES_EVALIDATION;
            }
            for (; i < n; i++) {
                if (s[i] < '0' || s[i] > '9' || exp > 100) {
                    return ES_EVALIDATION;
                }
                exp = exp * 10 + (s[i] - '0');
            }
            if (eneg) {
                exp = -exp;
            }
            break;
        } else {
            return ES_EVALIDATION;
        }
    }
    if (!digits) {
        return ES_EVALIDATION;
    }
    long sc = (long)scale - exp;
    while (sc < 0) {
        m *= 10;
        if (m > INT64_MAX) {
            return ES_EVALIDATION;
        }
        sc++;
    }
    while (sc > ES_DEC_MAX_SCALE) {
        if (m % 10 != 0) {
            return ES_EVALIDATION;
        }
        m /= 10;
        sc--;
    }
    out->m = neg ? -(int64_t)m : (int64_t)m;
    out->scale = (int)sc;
    return ES_OK;
}

/* Brings a to scale s (s >= a.scale). */
static int rescale(struct es_dec a, int s, struct es_dec *out)
{
    i128 m = (i128)a.m * pow10_tab[s - a.scale];
    if (m > INT64_MAX || m < INT64_MIN) {
        return ES_EVALIDATION;
    }
    out->m = (int64_t)m;
    out->scale = s;
    return ES_OK;
}

/* Fits a 128-bit mantissa at scale into the type, rounding away fractional digits that do
 * not fit (half away from zero). */
static int fit(i128 m, int scale, struct es_dec *out)
{
    while (scale > ES_DEC_MAX_SCALE || (scale > 0 && (m > INT64_MAX || m < INT64_MIN))) {
        i128 q = m / 10, r = m % 10;
        if (r >= 5) {
            q++;
        } else if (r <= -5) {
            q--;
        }
        m = q;
        scale--;
    }
    if (m > INT64_MAX || m < INT64_MIN) {
        return ES_EVALIDATION;
    }
    out->m = (int64_t)m;
    out->scale = scale;
    return ES_OK;
}

int es_dec_add(struct es_dec a, struct es_dec b, struct es_dec *out)
{
    int s = a.scale > b.scale ? a.scale : b.scale;
    i128 am = (i128)a.m * pow10_tab[s - a.scale];
    i128 bm = (i128)b.m * pow10_tab[s - b.scale];
    return fit(am + bm, s, out);
}

int es_dec_sub(struct es_dec a, struct es_dec b, struct es_dec *out)
{
    b.m = -b.m;
    return es_dec_add(a, b, out);
}

int es_dec_mul(struct es_dec a, struct es_dec b, struct es_dec *out)
{
    /* Trailing zeros are dropped down to the larger operand scale: 12.50 * 3 = 37.50. */
    i128 m = (i128)a.m * b.m;
    int scale = a.scale + b.scale;
    int keep = a.scale > b.scale ? a.scale : b.scale;
    while (scale > keep && m % 10 == 0) {
        m /= 10;
        scale--;
    }
    return fit(m, scale, out);
}

int es_dec_div(struct es_dec a, struct es_dec b, struct es_dec *out)
{
    if (b.m == 0) {
        return ES_EVALIDATION;
    }
    /* Quotient with 18 fractional digits where it fits, then trimmed. */
    int want = ES_DEC_MAX_SCALE;
    i128 num = a.m;
    int nscale = a.scale;
    while (nscale - b.scale < want) {
        i128 next = num * 10;
        if (next / 10 != num || next > ((i128)1 << 120) || next < -((i128)1 << 120)) {
            break;
        }
        num = next;
        nscale++;
    }
    i128 q = num / b.m, r = num % b.m;
    if (r != 0) {
        i128 twice = r * 2;
        if (twice < 0) {
            twice = -twice;
        }
        i128 bm = b.m < 0 ? -(i128)b.m : (i128)b.m;
        if (twice >= bm) {
            q += ((num < 0) != (b.m < 0)) ? -1 : 1;
        }
    }
    int rc = fit(q, nscale - b.scale, out);
    if (rc == ES_OK) {
        *out = es_dec_normalize(*out);
    }
    return rc;
}

int es_dec_cmp(struct es_dec a, struct es_dec b)
{
    int s = a.scale > b.scale ? a.scale : b.scale;
    i128 am = (i128)a.m * pow10_tab[s - a.scale];
    i128 bm = (i128)b.m * pow10_tab[s - b.scale];
    return am < bm ? -1 : am > bm;
}

int es_dec_round(struct es_dec a, int places, struct es_dec *out)
{
    if (places > ES_DEC_MAX_SCALE) {
        places = ES_DEC_MAX_SCALE;
    }
    if (places < -18) {
        places = -18;
    }
    if (a.scale <= places) {
        return rescale(a, places < 0 ? 0 : places, out);
    }
    int drop = a.scale - places;
    i128 m = a.m;
    i128 p = 1;
    for (int i = 0; i < drop; i++) {
        p *= 10;
    }
    i128 q = m / p, r = m % p;
    if (r * 2 >= p) {
        q++;
    } else if (r * 2 <= -p) {
        q--;
    }
    if (places < 0) {
        for (int i = 0; i < -places; i++) {
            q *= 10;
        }
        return fit(q, 0, out);
    }
    return fit(q, places, out);
}

struct es_dec es_dec_normalize(struct es_dec a)
{
    while (a.scale > 0 && a.m % 10 == 0) {
        a.m /= 10;
        a.scale--;
    }
    return a;
}

size_t es_dec_format(struct es_dec a, char *out, size_t cap)
{
    char digits[32];
    uint64_t u = a.m < 0 ? (uint64_t)0 - (uint64_t)a.m : (uint64_t)a.m;
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    while (nd <= a.scale) {
        digits[nd++] = '0';
    }
    char tmp[48];
    size_t n = 0;
    if (a.m < 0) {
        tmp[n++] = '-';
    }
    for (int i = nd - 1; i >= 0; i--) {
        tmp[n++] = digits[i];
        if (i == a.scale && a.scale > 0) {
            tmp[n++] = '.';
        }
    }
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(out, tmp, n);
    out[n] = '\0';
    return n;
}
