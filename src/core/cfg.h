/* SPDX-License-Identifier: MIT */
/*
 * Schema tables: a section of the configuration is described by an array of es_cfg_field
 * (name, type, default, required, offset into the struct it fills, doc). One walker applies a
 * table to a YAML mapping node: it checks types, fills the struct, rejects unknown keys with
 * a "did you mean" suggestion, and reports at the node's FILE:LINE:COL. The same tables
 * generate `erpsync config-docs`, so the reference can never drift from the loader.
 */
#ifndef ES_CORE_CFG_H
#define ES_CORE_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/diag.h"
#include "core/node.h"

enum es_cfg_type {
    ES_CFG_STR,      /* const char * (points into the document) */
    ES_CFG_INT,      /* long long */
    ES_CFG_NUM,      /* double (ratios, thresholds; never money) */
    ES_CFG_BOOL,     /* int: true/false/yes/no/on/off */
    ES_CFG_DURATION, /* int64_t milliseconds, written "15m" */
    ES_CFG_SIZE,     /* long long bytes, written "1MiB", "512KiB", "200" */
    ES_CFG_ENUM,     /* int: index into choices */
    ES_CFG_ENV,      /* const char *: NAME of an environment variable holding a secret */
    ES_CFG_STRLIST,  /* struct es_cfg_strlist */
    ES_CFG_SECTION,  /* nested struct filled by `sub` */
    ES_CFG_NODE,     /* const struct es_node *: kept raw for a later stage (map, options) */
    ES_CFG_CRON      /* const char * validated as a 5-field cron expression */
};

#define ES_CFG_REQUIRED  0x1u
/* Accept a scalar in place of the section: it sets the section's first field
 * (`trigger: {realtime: true}` or a map rule `Name: Source` written short). */
#define ES_CFG_SHORTHAND 0x2u

struct es_cfg_strlist {
    size_t count;
    const char **items;
    const struct es_node *node;
};

struct es_cfg_schema;

struct es_cfg_field {
    const char *name;
    enum es_cfg_type type;
    const char *def; /* default as it would be written in YAML, or NULL */
    size_t offset;   /* offsetof(struct X, member) */
    unsigned flags;
    const char *doc;                 /* one sentence for config-docs */
    const struct es_cfg_schema *sub; /* ES_CFG_SECTION */
    const char *const *choices;      /* ES_CFG_ENUM, NULL-terminated */
    long long min, max;              /* INT/SIZE bounds when min < max */
};

struct es_cfg_schema {
    const char *name; /* section path for docs, e.g. "systems.<name>.auth" */
    const char *doc;
    const struct es_cfg_field *fields; /* terminated by {NULL} */
    int shorthand_field;               /* with ES_CFG_SHORTHAND: index of the field a scalar sets */
};

/* The load context: where diagnostics go and the source text they quote. */
struct es_cfg_ctx {
    struct es_diags *diags;
    const struct es_doc *doc;
    struct es_arena *arena; /* for the few values the loader must build (lists) */
    const char *label;      /* "flow 'x'" for messages; NULL = the schema's name */
};

/* Applies schema to node (a mapping), filling the struct at base: defaults first, then the
 * keys present. Errors go to ctx->diags; returns the number of errors added. */
int es_cfg_apply(const struct es_cfg_ctx *ctx, const struct es_cfg_schema *schema,
                 const struct es_node *node, void *base);
/* Adds an error at node's position. */
void es_cfg_error(const struct es_cfg_ctx *ctx, const struct es_node *at, const char *fmt, ...)
    ES_PRINTF(3, 4);
void es_cfg_warning(const struct es_cfg_ctx *ctx, const struct es_node *at, const char *fmt, ...)
    ES_PRINTF(3, 4);
/* The known key closest to `key` in schema (NULL when none is close enough). */
const char *es_cfg_suggest(const struct es_cfg_schema *schema, const char *key);
const char *es_cfg_type_name(enum es_cfg_type type);
/* Parses "1MiB", "64KiB", "2GB", "1000" into bytes. */
ES_NODISCARD int es_size_parse(const char *s, long long *out);
/* Checks that every key of map (a mapping node, or NULL/null: nothing to check) is one of
 * allowed (NULL-terminated), for connector `options:` that have no schema table. Returns
 * ES_OK or ES_ECONFIG as "FILE:LINE:COL: unknown key 'k' in WHERE (did you mean 'x'?)". */
ES_NODISCARD int es_cfg_check_keys(const struct es_node *map, const char *const *allowed,
                                   const char *where, struct es_err *err);
/* Writes the reference of schema (and its sub-sections) as Markdown. */
void es_cfg_docs(const struct es_cfg_schema *schema, FILE *out, int depth);

#endif
