/* SPDX-License-Identifier: MIT */
/*
 * What the files of src/engine share. Not a public header.
 *
 * The mapping call sits behind es__mapping_*: the one place that changes when the mapping
 * engine (src/map) is linked in.
 */
#ifndef ES_ENGINE_INTERNAL_H
#define ES_ENGINE_INTERNAL_H

#include <jansson.h>

#include "core/config.h"
#include "core/diag.h"
#include "core/err.h"

struct es__mapping;

/* Lookup of another entity's id in the flow's target (xref('customer', id) in a mapping). */
typedef int (*es__xref_fn)(void *ud, const char *entity, const char *source_value, char *out,
                           size_t cap);

/* Compiles flow->map. Errors go to diags; returns ES_OK or ES_ECONFIG.
 * OUT: *out, es__mapping_free(). */
int es__mapping_new(const struct es_config *cfg, const struct es_flow_cfg *flow,
                    struct es__mapping **out, struct es_diags *diags);
void es__mapping_free(struct es__mapping *m);
/* Maps one record. OUT: *out (json_decref) on ES_OK; on failure err names the field and the
 * code is classified (ES_EVALIDATION for a bad record, ES_ENOTFOUND for a missing xref). */
int es__mapping_apply(const struct es__mapping *m, const json_t *in, json_t **out, es__xref_fn xref,
                      void *ud, struct es_err *err);

#endif
