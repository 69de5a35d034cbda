/* SPDX-License-Identifier: MIT */
/*
 * Internal: target schema checks on mapping values (shared by plan.c and schema.c).
 */
#ifndef ES_MAP_SCHEMA_H
#define ES_MAP_SCHEMA_H

#include "map/internal.h"

/* Checks rec against schema; on failure fills fail (field, rule "required", "max_length",
 * "picklist", "type") and returns ES_EVALIDATION. */
int es_map_schema_check(const struct es_map_schema *schema, const struct es_mv *rec,
                        struct es_arena *a, struct es_map_failure *fail);

#endif
