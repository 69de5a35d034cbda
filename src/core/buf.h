/* SPDX-License-Identifier: MIT */
/*
 * Growable byte buffer with an optional hard maximum (curl dynbuf). A buffer fed from the
 * network always has a max: appends past it fail with ES_ENOMEM and leave the buffer intact.
 * Invariant: data is NUL-terminated whenever len > 0 or data != NULL.
 */
#ifndef ES_CORE_BUF_H
#define ES_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/err.h"

struct es_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0 = unbounded (only for data we produce ourselves) */
};

void es_buf_init(struct es_buf *b, size_t max);
void es_buf_release(struct es_buf *b);
void es_buf_reset(struct es_buf *b); /* len = 0, keeps the memory */
int es_buf_append(struct es_buf *b, const void *p, size_t n);
int es_buf_puts(struct es_buf *b, const char *s);
int es_buf_putc(struct es_buf *b, char c);
int es_buf_printf(struct es_buf *b, const char *fmt, ...) ES_PRINTF(2, 3);
int es_buf_vprintf(struct es_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal with quotes (UTF-8 kept, controls escaped). */
int es_buf_json_str(struct es_buf *b, const char *s, size_t n);
/* Appends fail (ES_ENOMEM) only when max is set and would be passed. */
/* Takes the bytes out; the buffer is empty after. OUT: caller frees with es_free(). */
char *es_buf_detach(struct es_buf *b, size_t *len);
/* Ensures room for n more bytes (for writers that fill data directly). */
int es_buf_reserve(struct es_buf *b, size_t n);

#endif
