/* SPDX-License-Identifier: MIT */
/*
 * Bump allocator over a chain of blocks. Large requests get a block of their own so that a
 * single big value does not waste a mostly empty ordinary block.
 */
#include "core/arena.h"

#include <string.h>

#include "core/mem.h"

struct es_arena_block {
    struct es_arena_block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

void es_arena_init(struct es_arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 16384;
}

void es_arena_release(struct es_arena *a)
{
    struct es_arena_block *b = a->head;
    while (b) {
        struct es_arena_block *next = b->next;
        es_free(b);
        b = next;
    }
    a->head = NULL;
}

void es_arena_reset(struct es_arena *a)
{
    if (!a->head) {
        return;
    }
    /* Keep the oldest block (the ordinary one allocated first); free the rest. */
    struct es_arena_block *b = a->head;
    while (b->next) {
        struct es_arena_block *next = b->next;
        es_free(b);
        b = next;
    }
    b->used = 0;
    a->head = b;
}

static struct es_arena_block *new_block(size_t size)
{
    struct es_arena_block *b = es_xmalloc(sizeof *b + size);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

void *es_arena_alloc(struct es_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct es_arena_block *b = a->head;
    if (b && b->size - b->used >= n) {
        void *p = b->data + b->used;
        b->used += n;
        return p;
    }
    if (n > a->block_size / 4) {
        /* Big request: own block, chained behind the current one so the current keeps
         * serving small requests. */
        struct es_arena_block *big = new_block(n);
        big->used = n;
        if (b) {
            big->next = b->next;
            b->next = big;
        } else {
            a->head = big;
        }
        return big->data;
    }
    struct es_arena_block *nb = new_block(a->block_size);
    nb->next = b;
    a->head = nb;
    nb->used = n;
    return nb->data;
}

char *es_arena_strndup(struct es_arena *a, const char *s, size_t n)
{
    char *p = es_arena_alloc(a, n + 1);
    if (n) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    return p;
}

char *es_arena_strdup(struct es_arena *a, const char *s)
{
    return es_arena_strndup(a, s, strlen(s));
}
