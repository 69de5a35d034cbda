/* SPDX-License-Identifier: MIT */
/*
 * The engine's single call into the mapping engine (src/map): compile a flow's plan once,
 * evaluate it per change with the xref lookup the engine provides, and turn a mapping
 * failure into a classified es_err (validation failures go to review).
 */
#include <string.h>

#include "core/mem.h"
#include "engine/internal.h"
#include "map/map.h"

struct es__mapping {
    struct es_map_plan *plan;
};

int es__mapping_new(const struct es_config *cfg, const struct es_flow_cfg *flow,
                    struct es__mapping **out, struct es_diags *diags)
{
    *out = NULL;
    struct es_map_plan *plan = NULL;
    int rc = es_map_compile(cfg, flow, &plan, diags);
    if (rc != ES_OK) {
        return rc;
    }
    struct es__mapping *m = es_xcalloc(1, sizeof *m);
    m->plan = plan;
    *out = m;
    return ES_OK;
}

void es__mapping_free(struct es__mapping *m)
{
    if (!m) {
        return;
    }
    es_map_plan_free(m->plan);
    es_free(m);
}

int es__mapping_apply(const struct es__mapping *m, const json_t *in, json_t **out, es__xref_fn xref,
                      void *ud, struct es_err *err)
{
    *out = NULL;
    if (!json_is_object(in)) {
        return es_err_set(err, ES_EPOISON, "source record is not a JSON object");
    }
    struct es_map_env env = {xref, ud, 0};
    struct es_map_failure fail;
    memset(&fail, 0, sizeof fail);
    int rc = es_map_eval(m->plan, in, out, &env, &fail);
    if (rc != ES_OK) {
        enum es_code code = fail.code != ES_OK ? fail.code : (enum es_code)rc;
        es_err_set(err, code, "mapping %s: %s%s%s", fail.field[0] ? fail.field : "record",
                   fail.rule[0] ? fail.rule : "", fail.rule[0] ? ": " : "", fail.message);
        es_err_hint(err, "fix the source record or the mapping, then replay the change");
        return code;
    }
    return ES_OK;
}
