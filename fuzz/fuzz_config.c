/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the configuration loader (YAML parser, schema walker, cross-checks and
 * diagnostics rendering) on arbitrary bytes. It must never crash, leak or read out of bounds,
 * whatever the input; every input either loads or yields diagnostics.
 */
#include <stdint.h>
#include <stdio.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct es_diags diags;
    es_diags_init(&diags);
    struct es_config *cfg = NULL;
    int rc = es_config_parse("fuzz.yaml", (const char *)data, size, &cfg, &diags);
    FILE *sink = fopen("/dev/null", "w");
    if (sink) {
        es_diags_print(&diags, sink);
        fclose(sink);
    }
    if (rc == ES_OK) {
        struct es_diags env;
        es_diags_init(&env);
        es_config_check_env(cfg, &env, ES_DIAG_WARNING);
        es_diags_release(&env);
    }
    es_config_free(cfg);
    es_diags_release(&diags);
    return 0;
}
