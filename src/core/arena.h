/* SPDX-License-Identifier: MIT */
/*
 * Region allocator for one unit of work (a webhook request, a fetched batch, a mapping
 * evaluation): many small allocations, one release. Anything that must outlive the unit of
 * work is copied out explicitly. Not thread-safe: one arena belongs to one thread at a time.
 */
#ifndef ES_CORE_ARENA_H
#define ES_CORE_ARENA_H

#include <stddef.h>

struct es_arena_block;

struct es_arena {
    struct es_arena_block *head; /* current block; older blocks chained behind */
    size_t block_size;           /* size of ordinary blocks */
};

void es_arena_init(struct es_arena *a, size_t block_size);
/* Frees every block. The arena can be used again after. */
void es_arena_release(struct es_arena *a);
/* Forgets all allocations but keeps the first block for reuse (per-record loops). */
void es_arena_reset(struct es_arena *a);
/* 16-byte aligned memory valid until reset/release. Aborts on OOM. */
void *es_arena_alloc(struct es_arena *a, size_t n);
char *es_arena_strndup(struct es_arena *a, const char *s, size_t n);
char *es_arena_strdup(struct es_arena *a, const char *s);

#endif
