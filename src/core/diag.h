/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics: errors and warnings about a file, each at FILE:LINE:COL, printed the way
 * compilers do, with the source line and a caret under the column:
 *
 *   pipes/sf.yaml:12:7: error: unknown key 'batchsize' (did you mean 'batch_size'?)
 *      12 |       batchsize: 200
 *         |       ^
 *
 * A diags collects up to ES_DIAG_MAX errors so a user fixes several at once.
 */
#ifndef ES_CORE_DIAG_H
#define ES_CORE_DIAG_H

#include <stdio.h>

#include "core/err.h"

#define ES_DIAG_MAX 20

enum es_diag_severity { ES_DIAG_ERROR, ES_DIAG_WARNING, ES_DIAG_NOTE };

struct es_diag {
    enum es_diag_severity severity;
    char *file;
    int line, col; /* 1-based; 0 when the message is about the whole file */
    char *msg;
    char *source; /* the source line, or NULL */
};

struct es_diags {
    struct es_diag *items;
    size_t count, cap;
    int errors, warnings;
    int dropped; /* errors past ES_DIAG_MAX */
};

void es_diags_init(struct es_diags *d);
void es_diags_release(struct es_diags *d);
/* Adds one message. text is the whole source (or NULL) from which the line is quoted. */
void es_diags_add(struct es_diags *d, enum es_diag_severity sev, const char *text, const char *file,
                  int line, int col, const char *fmt, ...) ES_PRINTF(7, 8);
/* True once ES_DIAG_MAX errors were collected: loaders stop early. */
int es_diags_full(const struct es_diags *d);
/* Prints all messages as above (color never; the output is for logs and CI too). */
void es_diags_print(const struct es_diags *d, FILE *out);
/* Levenshtein distance, capped at 100 (for "did you mean"). */
int es_edit_distance(const char *a, const char *b);

#endif
