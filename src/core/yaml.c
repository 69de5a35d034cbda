/* SPDX-License-Identifier: MIT */
/*
 * YAML -> es_node tree with positions, on libyaml's event parser. libyaml gives precise
 * marks for every event and for its own syntax errors; we add what YAML leaves to the
 * application: duplicate-key detection and alias resolution.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "core/file.h"
#include "core/mem.h"
#include "core/node.h"

#define MAX_DEPTH   64
#define MAX_ANCHORS 256

struct anchor {
    const char *name;
    struct es_node *node;
};

struct builder {
    struct es_doc *doc;
    yaml_parser_t parser;
    struct anchor anchors[MAX_ANCHORS];
    int nanchors;
    struct es_err *err;
    int err_line, err_col;
};

static int fail_at(struct builder *b, int line, int col, const char *what)
{
    b->err_line = line;
    b->err_col = col;
    return es_err_set(b->err, ES_ECONFIG, "%s:%d:%d: %s", b->doc->file, line, col, what);
}

static struct es_node *new_node(struct builder *b, enum es_node_kind kind, yaml_mark_t mark)
{
    struct es_node *n = es_arena_alloc(&b->doc->arena, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->file = b->doc->file;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    return n;
}

static void remember_anchor(struct builder *b, const yaml_char_t *anchor, struct es_node *n)
{
    if (anchor && b->nanchors < MAX_ANCHORS) {
        b->anchors[b->nanchors].name = es_arena_strdup(&b->doc->arena, (const char *)anchor);
        b->anchors[b->nanchors].node = n;
        b->nanchors++;
    }
}

static int next_event(struct builder *b, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&b->parser, ev)) {
        char what[320];
        int n = snprintf(what, sizeof what, "YAML syntax error: %s%s%s",
                         b->parser.problem ? b->parser.problem : "unknown",
                         b->parser.context ? " " : "", b->parser.context ? b->parser.context : "");
        if (b->parser.context && n > 0 && (size_t)n < sizeof what) {
            /* Where the construct began is often where the mistake is (an unclosed '{'). */
            snprintf(what + n, sizeof what - (size_t)n, " (which started at line %d, column %d)",
                     (int)b->parser.context_mark.line + 1, (int)b->parser.context_mark.column + 1);
        }
        return fail_at(b, (int)b->parser.problem_mark.line + 1,
                       (int)b->parser.problem_mark.column + 1, what);
    }
    return ES_OK;
}

static int build_node(struct builder *b, yaml_event_t *ev, int depth, struct es_node **out);

static int build_children(struct builder *b, struct es_node *n, int depth)
{
    size_t cap = 0;
    for (;;) {
        yaml_event_t ev;
        int rc = next_event(b, &ev);
        if (rc) {
            return rc;
        }
        if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return ES_OK;
        }
        struct es_node *child = NULL;
        rc = build_node(b, &ev, depth + 1, &child);
        if (rc) {
            return rc;
        }
        if (n->kind == ES_NODE_SEQ) {
            if (n->count == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                struct es_node **items = es_arena_alloc(&b->doc->arena, ncap * sizeof *items);
                if (n->count) {
                    memcpy(items, n->items, n->count * sizeof *items);
                }
                n->items = items;
                cap = ncap;
            }
            n->items[n->count++] = child;
            continue;
        }
        /* Map: child is a key; the value follows. */
        if (child->kind != ES_NODE_SCALAR) {
            return fail_at(b, child->line, child->col, "a mapping key must be a plain scalar");
        }
        for (size_t i = 0; i < n->count; i++) {
            if (strcmp(n->pairs[i].key->str, child->str) == 0) {
                char what[200];
                snprintf(what, sizeof what, "duplicate key '%.80s' (first defined at line %d)",
                         child->str, n->pairs[i].key->line);
                return fail_at(b, child->line, child->col, what);
            }
        }
        yaml_event_t vev;
        rc = next_event(b, &vev);
        if (rc) {
            return rc;
        }
        struct es_node *value = NULL;
        rc = build_node(b, &vev, depth + 1, &value);
        if (rc) {
            return rc;
        }
        if (n->count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct es_node_pair *pairs = es_arena_alloc(&b->doc->arena, ncap * sizeof *pairs);
            if (n->count) {
                memcpy(pairs, n->pairs, n->count * sizeof *pairs);
            }
            n->pairs = pairs;
            cap = ncap;
        }
        n->pairs[n->count].key = child;
        n->pairs[n->count].value = value;
        n->count++;
    }
}

/* Consumes ev (deletes it) and builds the node it starts. */
static int build_node(struct builder *b, yaml_event_t *ev, int depth, struct es_node **out)
{
    int rc = ES_OK;
    yaml_mark_t mark = ev->start_mark;
    if (depth > MAX_DEPTH) {
        yaml_event_delete(ev);
        return fail_at(b, (int)mark.line + 1, (int)mark.column + 1,
                       "nesting deeper than 64 levels");
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        struct es_node *n = new_node(b, ES_NODE_SCALAR, mark);
        n->str = es_arena_strndup(&b->doc->arena, (const char *)ev->data.scalar.value,
                                  ev->data.scalar.length);
        n->len = ev->data.scalar.length;
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        n->is_null =
            !n->quoted && (n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
                           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0);
        remember_anchor(b, ev->data.scalar.anchor, n);
        *out = n;
        break;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_seq = ev->type == YAML_SEQUENCE_START_EVENT;
        struct es_node *n = new_node(b, is_seq ? ES_NODE_SEQ : ES_NODE_MAP, mark);
        remember_anchor(b, is_seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor,
                        n);
        yaml_event_delete(ev);
        *out = n;
        return build_children(b, n, depth);
    }
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        for (int i = b->nanchors - 1; i >= 0; i--) {
            if (strcmp(b->anchors[i].name, name) == 0) {
                *out = b->anchors[i].node;
                yaml_event_delete(ev);
                return ES_OK;
            }
        }
        char what[160];
        snprintf(what, sizeof what, "unknown alias '*%.80s'", name);
        rc = fail_at(b, (int)mark.line + 1, (int)mark.column + 1, what);
        break;
    }
    default:
        rc = fail_at(b, (int)mark.line + 1, (int)mark.column + 1, "unexpected YAML event");
    }
    yaml_event_delete(ev);
    return rc;
}

int es_doc_parse(const char *file, const char *text, size_t len, struct es_doc **out, int *line,
                 int *col, struct es_err *err)
{
    struct es_doc *doc = es_xcalloc(1, sizeof *doc);
    es_arena_init(&doc->arena, 32768);
    doc->file = es_arena_strdup(&doc->arena, file ? file : "<input>");
    doc->text = es_arena_strndup(&doc->arena, text, len);
    doc->text_len = len;
    *out = NULL;

    struct builder b;
    memset(&b, 0, sizeof b);
    b.doc = doc;
    b.err = err;
    yaml_parser_initialize(&b.parser);
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)doc->text, len);

    int rc = ES_OK;
    int done = 0;
    while (!done && rc == ES_OK) {
        yaml_event_t ev;
        rc = next_event(&b, &ev);
        if (rc) {
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            yaml_event_delete(&ev);
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (doc->root) {
                rc = fail_at(&b, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                             "only one YAML document per file is allowed");
            }
            yaml_event_delete(&ev);
            break;
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            done = 1;
            break;
        default:
            if (doc->root) {
                rc = fail_at(&b, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                             "only one YAML document per file is allowed");
                yaml_event_delete(&ev);
                break;
            }
            rc = build_node(&b, &ev, 0, &doc->root);
        }
    }
    yaml_parser_delete(&b.parser);
    if (line) {
        *line = b.err_line;
    }
    if (col) {
        *col = b.err_col;
    }
    if (rc) {
        es_doc_free(doc);
        return rc;
    }
    *out = doc;
    return ES_OK;
}

int es_doc_load(const char *path, struct es_doc **doc, int *line, int *col, struct es_err *err)
{
    *doc = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = es_file_read(path, 16u << 20, &text, &len, err);
    if (rc != ES_OK) {
        return rc == ES_ENOMEM ? ES_ECONFIG : rc;
    }
    rc = es_doc_parse(path, text, len, doc, line, col, err);
    es_free(text);
    return rc;
}

void es_doc_free(struct es_doc *doc)
{
    if (!doc) {
        return;
    }
    es_arena_release(&doc->arena);
    es_free(doc);
}

struct es_node *es_node_get(const struct es_node *m, const char *key)
{
    if (!m || m->kind != ES_NODE_MAP) {
        return NULL;
    }
    for (size_t i = 0; i < m->count; i++) {
        if (strcmp(m->pairs[i].key->str, key) == 0) {
            return m->pairs[i].value;
        }
    }
    return NULL;
}

const char *es_node_kind_name(enum es_node_kind kind)
{
    switch (kind) {
    case ES_NODE_SCALAR:
        return "a scalar";
    case ES_NODE_SEQ:
        return "a list";
    case ES_NODE_MAP:
        return "a mapping";
    }
    return "?";
}

void es_doc_line(const struct es_doc *doc, int line, char *out, size_t cap)
{
    out[0] = '\0';
    if (!doc || !doc->text || line < 1) {
        return;
    }
    const char *p = doc->text;
    for (int l = 1; l < line && p; l++) {
        p = strchr(p, '\n');
        if (p) {
            p++;
        }
    }
    if (!p) {
        return;
    }
    size_t n = strcspn(p, "\r\n");
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}
