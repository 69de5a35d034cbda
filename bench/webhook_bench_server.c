/* SPDX-License-Identifier: MIT */
/*
 * The daemon side of bench/webhook_bench.sh: loads a config, starts the engine and the HTTP
 * server exactly as `erpsync run` does, prints "listening PORT" and serves until SIGINT or
 * SIGTERM, then prints the engine's per-flow figures (enqueued, duplicates, done) so the
 * script can check that every accepted event is in the journal.
 *   webhook_bench_server CONFIG [--no-workers]
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/diag.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "server/server.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: webhook_bench_server CONFIG [--no-triggers]\n");
        return 64;
    }
    es_log_set_level(ES_LOG_WARN);
    struct es_diags d;
    es_diags_init(&d);
    struct es_config *cfg = NULL;
    if (es_config_load(argv[1], &cfg, &d) != ES_OK) {
        es_diags_print(&d, stderr);
        es_diags_release(&d);
        return 1;
    }
    es_diags_release(&d);
    struct es_engine_opts opts = {0};
    opts.no_triggers = argc > 2 && strcmp(argv[2], "--no-triggers") == 0;
    struct es_engine *eng = NULL;
    struct es_server *srv = NULL;
    struct es_err e;
    es_err_clear(&e);
    int rc = es_engine_new(cfg, &opts, &eng, &e);
    if (rc == ES_OK) {
        rc = es_engine_start(eng, &e);
    }
    if (rc == ES_OK) {
        rc = es_server_start(cfg, eng, &srv, &e);
    }
    if (rc != ES_OK) {
        fprintf(stderr, "webhook_bench_server: %s\n", e.msg);
        es_engine_free(eng);
        es_config_free(cfg);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("listening %u\n", (unsigned)es_server_port(srv));
    fflush(stdout);
    while (!g_stop) {
        pause();
    }
    es_server_stop(srv);
    struct es_flow_stats *st = NULL;
    size_t n = 0;
    if (es_engine_stats(eng, &st, &n, &e) == ES_OK) {
        for (size_t i = 0; i < n; i++) {
            printf("flow %s enqueued %lld duplicates %lld done %lld pending %lld\n", st[i].flow,
                   (long long)st[i].enqueued, (long long)st[i].duplicates,
                   (long long)st[i].outcomes[ES_CHANGE_DONE],
                   (long long)st[i].count[ES_CHANGE_PENDING]);
        }
    }
    es_free(st);
    es_engine_free(eng);
    es_config_free(cfg);
    return 0;
}
