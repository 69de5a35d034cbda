/* SPDX-License-Identifier: MIT */
/*
 * Memory: the OOM decision of docs/architecture.md. es_x* functions abort on failure (a crash
 * is a restart: the journal replays). Sizes taken from the network go through es_try_alloc,
 * which returns NULL so the caller can answer with an error instead.
 * Only this module calls malloc/free directly.
 */
#ifndef ES_CORE_MEM_H
#define ES_CORE_MEM_H

#include <stddef.h>

void *es_xmalloc(size_t n);
void *es_xcalloc(size_t count, size_t n);
void *es_xrealloc(void *p, size_t n);
char *es_xstrdup(const char *s);
char *es_xstrndup(const char *s, size_t n);
/* printf into a fresh string. OUT: caller frees with es_free(). */
char *es_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Returns NULL when the allocation fails (for sizes that come from input). */
void *es_try_alloc(size_t n);
void es_free(void *p);
/* Keeps freed memory in the process (glibc: no mmap below 32 MiB, no trim below 256 MiB).
 * SQLite and the journal allocate and free blocks of 100 KiB+ per statement or batch; giving
 * them back to the kernel each time (munmap, heap trim) costs page faults and a TLB shootdown
 * across CPUs: measured 10x more webhooks/s on a 2-vCPU VM. Called by the server and the
 * store at start; idempotent. */
void es_mem_keep_freed(void);

#define ES_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Grows *arr (element size sizeof **arr) so that index `need - 1` fits. */
#define ES_GROW(arr, cap, need)                                                                    \
    do {                                                                                           \
        if ((size_t)(need) > (size_t)(cap)) {                                                      \
            size_t es_newcap_ = (cap) ? (size_t)(cap)*2 : 8;                                       \
            while (es_newcap_ < (size_t)(need))                                                    \
                es_newcap_ *= 2;                                                                   \
            (arr) = es_xrealloc((arr), es_newcap_ * sizeof(*(arr)));                               \
            (cap) = es_newcap_;                                                                    \
        }                                                                                          \
    } while (0)

void es__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
/* Invariants of our own code (never on remote input). */
#define ES_ASSERT(x) ((x) ? (void)0 : es__assert_fail(#x, __FILE__, __LINE__))

#endif
