/* SPDX-License-Identifier: MIT */
/*
 * Commands about the configuration itself: validate and config-docs.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/mem.h"
#include "map/map.h"

struct es_config *es_cli_load_config(const char *path)
{
    struct es_diags diags;
    es_diags_init(&diags);
    struct es_config *cfg = NULL;
    int rc = es_config_load(path, &cfg, &diags);
    es_diags_print(&diags, stderr);
    if (rc != ES_OK) {
        fprintf(stderr, "%s: %d error%s\n", path, diags.errors + diags.dropped,
                diags.errors + diags.dropped == 1 ? "" : "s");
    }
    es_diags_release(&diags);
    return cfg;
}

int es_cli_validate(int argc, char **argv)
{
    int quiet = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
            quiet = 1;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "usage: erpsync validate [-q] CONFIG\n");
            return 64;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: erpsync validate [-q] CONFIG\n");
        return 64;
    }
    struct es_config *cfg = es_cli_load_config(path);
    if (!cfg) {
        return es_code_exit_status(ES_ECONFIG);
    }
    /* The mappings are compiled too, so an error inside an `expr:` (unknown function, wrong
     * arity, syntax) is reported at its YAML position by validate, not first by run. */
    struct es_diags mapd;
    es_diags_init(&mapd);
    for (size_t i = 0; i < cfg->nflows; i++) {
        struct es_map_plan *plan = NULL;
        if (es_map_compile(cfg, &cfg->flows[i], &plan, &mapd) == ES_OK) {
            es_map_plan_free(plan);
        }
    }
    es_diags_print(&mapd, stderr);
    int map_errors = mapd.errors + mapd.dropped;
    es_diags_release(&mapd);
    if (map_errors) {
        fprintf(stderr, "%s: %d error%s\n", path, map_errors, map_errors == 1 ? "" : "s");
        es_config_free(cfg);
        return es_code_exit_status(ES_ECONFIG);
    }
    /* Missing secrets are warnings here (validate runs in CI without them) and errors at
     * the start of `erpsync run`. Only names are printed, never values. */
    struct es_diags env;
    es_diags_init(&env);
    es_config_check_env(cfg, &env, ES_DIAG_WARNING);
    es_diags_print(&env, stderr);
    es_diags_release(&env);
    if (!quiet) {
        printf("%s: ok\n", path);
        printf("  store: %s\n", cfg->store);
        printf("  systems (%zu):\n", cfg->nsystems);
        for (size_t i = 0; i < cfg->nsystems; i++) {
            const struct es_system_cfg *s = &cfg->systems[i];
            printf("    %-12s %-10s %s  auth=%s%s%s\n", s->name, s->connector,
                   s->url ? s->url : "-", s->auth.method, s->webhook.path ? "  webhook=" : "",
                   s->webhook.path ? s->webhook.path : "");
        }
        printf("  entities (%zu):\n", cfg->nentities);
        for (size_t i = 0; i < cfg->nentities; i++) {
            const struct es_entity_cfg *e = &cfg->entities[i];
            printf("    %-12s", e->name);
            for (size_t j = 0; j < e->nobjects; j++) {
                printf(" %s=%s", e->objects[j].system, e->objects[j].object);
            }
            printf("%s%s\n", e->system_of_record ? "  system_of_record=" : "",
                   e->system_of_record ? e->system_of_record : "");
        }
        printf("  flows (%zu):\n", cfg->nflows);
        for (size_t i = 0; i < cfg->nflows; i++) {
            const struct es_flow_cfg *f = &cfg->flows[i];
            char trig[128] = "";
            size_t off = 0;
            if (f->trigger.realtime) {
                off += (size_t)snprintf(trig + off, sizeof trig - off, "realtime ");
            }
            if (f->trigger.poll_ms) {
                off += (size_t)snprintf(trig + off, sizeof trig - off, "poll=%llds ",
                                        (long long)(f->trigger.poll_ms / 1000));
            }
            if (f->trigger.batch) {
                snprintf(trig + off, sizeof trig - off, "batch='%s'", f->trigger.batch);
            }
            printf("    %-22s %s.%s -> %s.%s  %zu fields  %s\n", f->name, f->from,
                   f->source_object ? f->source_object : "?", f->to,
                   f->target_object ? f->target_object : "?", f->map ? f->map->count : 0, trig);
        }
    }
    es_config_free(cfg);
    return 0;
}

int es_cli_config_docs(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    es_config_docs(stdout);
    return 0;
}
