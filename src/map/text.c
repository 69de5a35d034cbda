/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 text helpers for the string functions: lengths and offsets count characters (code
 * points), not bytes, because max_length and substr are about what a person sees in the
 * target system. Case mapping uses utf8proc, so "straße" and "Ørsted" behave. Invalid UTF-8
 * bytes count as one character each and are copied unchanged.
 */
#include <utf8proc.h>

#include "map/internal.h"

size_t es_utf8_len(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            count++;
        }
    }
    return count;
}

size_t es_utf8_offset(const char *s, size_t n, size_t ci)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (count == ci) {
                return i;
            }
            count++;
        }
    }
    return n;
}

void es_utf8_case(const char *s, size_t n, int upper, struct es_buf *out)
{
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) {
            (void)es_buf_putc(out, s[i]);
            i++;
            continue;
        }
        utf8proc_int32_t m = upper ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t el = utf8proc_encode_char(m, enc);
        (void)es_buf_append(out, enc, (size_t)el);
        i += (size_t)k;
    }
}
