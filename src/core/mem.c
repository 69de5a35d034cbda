/* SPDX-License-Identifier: MIT */
/*
 * Allocation wrappers. Aborting on OOM removes thousands of untestable error paths; the
 * durable journal makes a crash a restart with nothing lost.
 */
#include "core/mem.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "erpsync: out of memory allocating %zu bytes\n", n);
    abort();
}

void *es_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        oom(n);
    }
    return p;
}

void *es_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) {
        oom(count * n);
    }
    return p;
}

void *es_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        oom(n);
    }
    return q;
}

char *es_xstrdup(const char *s)
{
    return es_xstrndup(s, s ? strlen(s) : 0);
}

char *es_xstrndup(const char *s, size_t n)
{
    char *p = es_xmalloc(n + 1);
    if (n) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    return p;
}

char *es_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return es_xstrdup("");
    }
    char *p = es_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void *es_try_alloc(size_t n)
{
    return malloc(n ? n : 1);
}

void es_free(void *p)
{
    free(p);
}

void es__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "erpsync: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

void es_mem_keep_freed(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
}
