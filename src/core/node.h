/* SPDX-License-Identifier: MIT */
/*
 * The configuration tree: YAML parsed into our own nodes, each carrying its position
 * (file, line, column; 1-based) so that every later error can point into the file.
 *
 * Invariants:
 *  - All nodes, strings and the source text live in the document's arena; they are freed
 *    together by es_doc_free(). Pointers into a document are valid until then.
 *  - A map keeps its keys in file order; duplicate keys are rejected by the loader.
 *  - Scalars keep their text exactly (no type coercion) plus whether they were quoted, so
 *    "0012" stays a string and a plain `yes` can still be read as a boolean by the schema.
 *  - An alias (written *name) yields the anchored node itself (shared, not copied).
 */
#ifndef ES_CORE_NODE_H
#define ES_CORE_NODE_H

#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"

enum es_node_kind { ES_NODE_SCALAR, ES_NODE_SEQ, ES_NODE_MAP };

struct es_node;

struct es_node_pair {
    struct es_node *key; /* always a scalar */
    struct es_node *value;
};

struct es_node {
    enum es_node_kind kind;
    const char *file;
    int line;                   /* 1-based */
    int col;                    /* 1-based, in bytes */
    int quoted;                 /* scalar was written in quotes or as a block */
    int is_null;                /* plain ~, null, or empty */
    const char *str;            /* scalar text (NUL-terminated), else NULL */
    size_t len;                 /* scalar length */
    size_t count;               /* children (seq items or map pairs) */
    struct es_node **items;     /* seq */
    struct es_node_pair *pairs; /* map */
};

struct es_doc {
    struct es_arena arena;
    const char *file; /* path as given */
    const char *text; /* the whole source, NUL-terminated */
    size_t text_len;
    struct es_node *root; /* NULL for an empty document */
};

/* Parses YAML text. On a syntax error returns ES_ECONFIG with err->msg as
 * "FILE:LINE:COL: what" and the line and column stored (if non-NULL) for a caret.
 * OUT: *doc, free with es_doc_free(). */
ES_NODISCARD int es_doc_parse(const char *file, const char *text, size_t len, struct es_doc **doc,
                              int *line, int *col, struct es_err *err);
/* Reads and parses a file (same contract). */
ES_NODISCARD int es_doc_load(const char *path, struct es_doc **doc, int *line, int *col,
                             struct es_err *err);
void es_doc_free(struct es_doc *doc);

/* Map lookup by key (NULL when absent or when m is not a map). */
struct es_node *es_node_get(const struct es_node *m, const char *key);
const char *es_node_kind_name(enum es_node_kind kind);
/* Copies line number `line` (1-based) of the document text into out (no newline). */
void es_doc_line(const struct es_doc *doc, int line, char *out, size_t cap);

#endif
