/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the tests that drive the whole engine in one process (tests/unit/engine,
 * tests/integration/mdm): a temporary directory, a config parsed from text, one `--once` run
 * of the engine, and a flow's figures read from the journal. Include after <cmocka.h>.
 */
#ifndef ES_TESTS_ENGINE_TEST_H
#define ES_TESTS_ENGINE_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/diag.h"
#include "core/log.h"
#include "engine/engine.h"
#include "store/store.h"

/* Makes /tmp/<prefix>_XXXXXX in dir and quiets the log to errors. */
static inline void et_tmpdir(char *dir, size_t cap, const char *prefix)
{
    snprintf(dir, cap, "/tmp/%s_XXXXXX", prefix);
    assert_non_null(mkdtemp(dir));
    es_log_set_level(ES_LOG_ERROR);
}

static inline int et_rmdir(const char *dir)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

/* Parses a config text; prints the diagnostics and fails the test when it does not load. */
static inline struct es_config *et_parse(const char *name, const char *text)
{
    struct es_diags d;
    es_diags_init(&d);
    struct es_config *cfg = NULL;
    int rc = es_config_parse(name, text, strlen(text), &cfg, &d);
    if (rc != ES_OK) {
        es_diags_print(&d, stderr);
    }
    es_diags_release(&d);
    assert_int_equal(rc, ES_OK);
    return cfg;
}

/* One engine run with opts (once = 1: every trigger once, then drain). */
static inline void et_run(const struct es_config *cfg, const struct es_engine_opts *o)
{
    struct es_engine *e = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_engine_new(cfg, o, &e, &err), ES_OK);
    assert_int_equal(es_engine_start(e, &err), ES_OK);
    es_engine_wait(e);
    es_engine_free(e);
}

/* One engine run as `erpsync run --once` does it. */
static inline void et_run_once(const struct es_config *cfg)
{
    struct es_engine_opts o = {.once = 1, .tick_ms = 5};
    et_run(cfg, &o);
}

/* A flow's figures, read through a store of its own. */
static inline struct es_flow_stats et_stats(const struct es_config *cfg, const char *flow)
{
    struct es_store *s = NULL;
    assert_int_equal(es_store_open(cfg->store, &s, NULL), ES_OK);
    struct es_flow_stats st;
    assert_int_equal(es_store_stats(s, flow, 0, &st, NULL), ES_OK);
    es_store_close(s);
    return st;
}

#endif
