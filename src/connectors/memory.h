/* SPDX-License-Identifier: MIT */
/*
 * Test hooks of the `memory` connector: reach into the in-process system to seed records as
 * if changed there, read what erpsync wrote, and start over.
 */
#ifndef ES_CONNECTORS_MEMORY_H
#define ES_CONNECTORS_MEMORY_H

#include <jansson.h>
#include <stddef.h>

/* Empties every object. */
void es_memory_reset(void);
/* Stores data (borrowed, referenced) as record id of object, as if changed in the system. */
void es_memory_put(const char *object, const char *id, json_t *data);
/* A copy of a stored record, or NULL. OUT: caller frees with json_decref(). */
json_t *es_memory_get(const char *object, const char *id);
/* Number of records of object. */
size_t es_memory_count(const char *object);

#endif
