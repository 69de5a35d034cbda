/* SPDX-License-Identifier: MIT */
/*
 * `erpsync xref CONFIG ENTITY SYSTEM ID [--json]`: the global id of one record and its id in
 * every system (the master-data cross-reference the workers record with each synced
 * record). Opens the config's store read-mostly, like the other operator commands, so it
 * works while the daemon runs.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

static int usage_fail(void)
{
    fprintf(stderr, "usage: erpsync xref [--json] CONFIG ENTITY SYSTEM ID\n");
    return 64;
}

int es_cli_xref(int argc, char **argv)
{
    int json = 0;
    const char *pos[4];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "erpsync: unknown option '%s'\n", argv[i]);
            return usage_fail();
        } else if (npos < 4) {
            pos[npos++] = argv[i];
        } else {
            return usage_fail();
        }
    }
    if (npos != 4) {
        return usage_fail();
    }
    const char *entity = pos[1], *system = pos[2], *id = pos[3];
    struct es_config *cfg = es_cli_load_config(pos[0]);
    if (!cfg) {
        return es_code_exit_status(ES_ECONFIG);
    }
    struct es_err err;
    es_err_clear(&err);
    const struct es_entity_cfg *ent = es_config_entity(cfg, entity);
    struct es_store *s = NULL;
    char *global = NULL;
    struct es_xref_link *links = NULL;
    size_t n = 0;
    int rc;
    if (!ent) {
        rc = es_err_set(&err, ES_EINVAL, "no entity '%s' in %s", entity, pos[0]);
    } else if (!es_config_system(cfg, system)) {
        rc = es_err_set(&err, ES_EINVAL, "no system '%s' in %s", system, pos[0]);
    } else {
        rc = es_store_open(cfg->store, &s, &err);
    }
    if (rc == ES_OK) {
        rc = es_store_xref_links(s, entity, system, id, &global, &links, &n, &err);
        if (rc == ES_ENOTFOUND) {
            es_err_clear(&err);
            es_err_set(&err, ES_ENOTFOUND, "%s %s in %s has no global id (never synced)", entity,
                       id, system);
        }
    }
    if (rc == ES_OK && json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            const char *obj = es_entity_object(ent, links[i].system);
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s?, s:I}", "system", links[i].system,
                                                 "id", links[i].id, "object", obj, "updated_ms",
                                                 (json_int_t)links[i].updated_ms));
        }
        json_t *j =
            json_pack("{s:s, s:s, s:o}", "entity", entity, "global_id", global, "links", arr);
        char *text = json_dumps(j, JSON_INDENT(2));
        puts(text);
        free(text); /* checksrc: ok (jansson allocates with malloc) */
        json_decref(j);
    } else if (rc == ES_OK) {
        printf("%s %s\n", entity, global);
        for (size_t i = 0; i < n; i++) {
            char when[40];
            es_clock_iso8601(links[i].updated_ms, when, (int)sizeof when);
            const char *obj = es_entity_object(ent, links[i].system);
            printf("  %-12s %-24s %-20s %s\n", links[i].system, links[i].id, obj ? obj : "-", when);
        }
    }
    es_free(global);
    es_free(links);
    es_store_close(s);
    es_config_free(cfg);
    if (rc != ES_OK) {
        fprintf(stderr, "erpsync: %s: %s\n", es_code_name(err.code), err.msg);
        return es_code_exit_status(err.code);
    }
    return 0;
}
