/* SPDX-License-Identifier: MIT */
/*
 * The mapping engine: a flow's `map:` (target path -> rule) compiled once into a plan, then
 * evaluated per record without re-parsing. See docs/mapping.md for the language.
 *
 * Invariants and contracts:
 *  - A plan is immutable after es_map_compile() and may be shared by threads: es_map_eval()
 *    keeps its per-call state on the stack/arena of the call. Plans that call Lua functions
 *    serialise those calls on a mutex inside the plan (the Lua state is not reentrant).
 *  - A plan borrows nothing from the config after compilation except the config's lifetime:
 *    keep the es_config alive while the plan is used (tables and positions point into it).
 *  - Records cross this interface as jansson json_t objects (as with the connectors).
 *    Inputs are borrowed; outputs are new references owned by the caller.
 *  - Mapping is pure: the only outside facts it reads are the xref callback and env->now_ms.
 *  - Decimals are exact (scaled integers, never binary floating point); a JSON number in the
 *    input keeps its written digits on the text paths (es_map_eval_json*). jansson holds
 *    non-integers as doubles: on the json_t path a decimal result becomes a json_real, and
 *    whoever serialises it must use JSON_REAL_PRECISION(15) (15 significant digits give the
 *    decimal text back, "19.99" and not "19.989999999999998").
 *  - Leaf module: never logs. Compile errors go to diags at the YAML file:line:column (for
 *    an `expr:` at the column inside the expression); evaluation failures fill es_map_failure.
 */
#ifndef ES_MAP_MAP_H
#define ES_MAP_MAP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/diag.h"
#include "core/err.h"

struct es_map_plan;
struct es_map_schema;

/* Answers xref('entity', value): the id of the record known as source_value in the flow's
 * source system, in the flow's target system. Writes a NUL-terminated id into out[cap].
 * Returns ES_OK, ES_ENOTFOUND (no such record yet: the rule fails with ES_EVALIDATION unless
 * the expression handles null) or another code (the evaluation fails with that code). */
typedef int (*es_map_xref_fn)(void *ud, const char *entity, const char *source_value, char *out,
                              size_t cap);

/* What the outside world provides to one evaluation. All members may be zero/NULL. */
struct es_map_env {
    es_map_xref_fn xref; /* NULL: xref() fails with ES_ENOTFOUND "no xref available" */
    void *ud;            /* passed to xref */
    int64_t now_ms;      /* epoch ms returned by now(); 0 = the wall clock at the call */
};

/* Why a record could not be mapped (or did not validate). */
struct es_map_failure {
    enum es_code code; /* ES_EVALIDATION for rule/validation failures; ES_ENOTFOUND for a
                        * missing xref; ES_ETIMEOUT for a Lua call over its time limit;
                        * ES_EINTERNAL for a bug */
    char field[128];   /* target path, e.g. "to_BusinessPartnerAddress[0].StreetName" */
    char rule[32];     /* "required", "max_length", "table", "type", "expr", "picklist", ... */
    char message[256]; /* one line, no newline */
};

/* Compiles flow->map (and flow->schema, when declared) of a loaded config. Every error
 * (unknown function, wrong arity, syntax error inside an `expr:`, unknown table, bad Lua
 * file) is added to diags at its YAML position. Returns ES_OK or ES_ECONFIG.
 * OUT: *out, free with es_map_plan_free(). The config must outlive the plan. */
ES_NODISCARD int es_map_compile(const struct es_config *cfg, const struct es_flow_cfg *flow,
                                struct es_map_plan **out, struct es_diags *diags);
void es_map_plan_free(struct es_map_plan *plan);

/* Maps one record. `in` must be a JSON object. On success *out is a new object (caller
 * json_decref()s it) and fail is untouched. On failure *out is NULL, fail (if non-NULL)
 * names the first failing target field, and the return value is fail->code.
 * When the plan has a declared schema, the result is also validated (es_map_validate). */
ES_NODISCARD int es_map_eval(const struct es_map_plan *plan, const json_t *in, json_t **out,
                             const struct es_map_env *env, struct es_map_failure *fail);

/* The fast path for streams: maps one JSON text (one NDJSON line, `len` bytes) and appends
 * the mapped record as one line of compact JSON (no newline) to out. Same failures as
 * es_map_eval(); on failure nothing is appended. Unparseable input is ES_EPOISON. */
ES_NODISCARD int es_map_eval_json(const struct es_map_plan *plan, const char *json, size_t len,
                                  struct es_buf *out, const struct es_map_env *env,
                                  struct es_map_failure *fail);

/* The same with a caller-owned arena, for loops over many records: the parsed record and
 * all intermediate values go into `a`; the caller calls es_arena_reset(a) between records
 * (one block reused: no allocation per record in the steady state). */
ES_NODISCARD int es_map_eval_json_arena(const struct es_map_plan *plan, struct es_arena *a,
                                        const char *json, size_t len, struct es_buf *out,
                                        const struct es_map_env *env, struct es_map_failure *fail);

/* ---- Pre-flight validation against the target's schema ---- */

/* Builds a schema from a connector's describe() JSON
 *   {"name": "Account", "fields": [{"name","type","length","required","nillable",
 *    "createable","updateable","external_id","picklist": [..]}]}
 * or from the declared form {"Field": {"type", "required", "max_length", "picklist": [..]}}.
 * type is one of string|integer|decimal|boolean|date|datetime (connector types such as
 * "double", "currency", "int", "picklist", "textarea", "Edm.String" are mapped onto these).
 * Returns ES_OK or ES_EINVAL. OUT: *out, free with es_map_schema_free(). */
ES_NODISCARD int es_map_schema_from_json(const json_t *describe, struct es_map_schema **out,
                                         struct es_err *err);
/* Builds a schema from a YAML node `flows.<name>.schema` (declared form above); errors go to
 * diags at their position (text is the document text for the quoted line, may be NULL).
 * Returns ES_OK or ES_ECONFIG. OUT: *out, free with es_map_schema_free(). */
ES_NODISCARD int es_map_schema_from_node(const struct es_node *node, const char *text,
                                         struct es_map_schema **out, struct es_diags *diags);
void es_map_schema_free(struct es_map_schema *schema);
/* Adds a schema (typically from the target connector's describe()) that every record mapped
 * by the plan is checked against, after the declared one. Takes ownership of schema (freed
 * with the plan; a previous one given here is freed). Call before the plan is shared by
 * threads. */
void es_map_plan_use_schema(struct es_map_plan *plan, struct es_map_schema *schema);
/* The schema declared in the flow's config (owned by the plan), or NULL. */
const struct es_map_schema *es_map_plan_schema(const struct es_map_plan *plan);
/* Checks a mapped record: required fields present and not null, max_length (in characters),
 * picklist membership, type. Returns ES_OK or ES_EVALIDATION with fail naming the field and
 * the rule ("required", "max_length", "picklist", "type"). */
ES_NODISCARD int es_map_validate(const struct es_map_schema *schema, const json_t *rec,
                                 struct es_map_failure *fail);

/* ---- Direct access for tests, docs and tools ---- */

/* Compiles and evaluates one expression against a record (no config: lookup() tables and
 * lua functions unavailable unless cfg is given). Used by the doc tests and fuzzers.
 * OUT: *out, a new JSON value (json_null() for null). Errors: ES_ECONFIG for a compile error
 * (message in err), or the evaluation's code with fail filled. */
ES_NODISCARD int es_map_eval_expr(const struct es_config *cfg, const char *expr, const json_t *in,
                                  const struct es_map_env *env, json_t **out,
                                  struct es_map_failure *fail, struct es_err *err);

#endif
