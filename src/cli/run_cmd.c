/* SPDX-License-Identifier: MIT */
/*
 * `erpsync run CONFIG`: the daemon. Starts the engine (and the HTTP server when
 * server.listen is set), then waits for signals on the main thread:
 *   SIGTERM / SIGINT  stop triggers, let the workers finish the batches in hand, exit 0;
 *   SIGHUP            reload the config file (a broken file is logged and ignored).
 * `--once` runs every trigger once, drains the queue and exits (tests, demo, cron jobs).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "server/server.h"

static int usage(void)
{
    fprintf(stderr, "usage: erpsync run [--once] [--workers N] [--tick MS] CONFIG\n");
    return 64;
}

/* Missing secrets are errors when the daemon starts. */
static int check_env(const struct es_config *cfg)
{
    struct es_diags d;
    es_diags_init(&d);
    int n = es_config_check_env(cfg, &d, ES_DIAG_ERROR);
    es_diags_print(&d, stderr);
    es_diags_release(&d);
    return n;
}

int es_cli_run(int argc, char **argv)
{
    struct es_engine_opts opts;
    memset(&opts, 0, sizeof opts);
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0) {
            opts.once = 1;
        } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
            opts.workers = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--tick") == 0 && i + 1 < argc) {
            opts.tick_ms = strtoll(argv[++i], NULL, 10);
        } else if (argv[i][0] == '-' || path) {
            return usage();
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        return usage();
    }
    struct es_config *cfg = es_cli_load_config(path);
    if (!cfg) {
        return es_code_exit_status(ES_ECONFIG);
    }
    if (check_env(cfg) > 0) {
        fprintf(stderr, "erpsync: set the environment variables above, then start again\n");
        es_config_free(cfg);
        return es_code_exit_status(ES_ECONFIG);
    }
    /* Signals go to this thread only: block them before any thread starts. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct es_err err;
    es_err_clear(&err);
    struct es_engine *eng = NULL;
    struct es_server *srv = NULL;
    int status = 0;
    if (es_engine_new(cfg, &opts, &eng, &err) != ES_OK || es_engine_start(eng, &err) != ES_OK) {
        es_log_err(NULL, ES_LOG_ERROR, &err);
        status = es_code_exit_status(err.code);
        goto out;
    }
    if (cfg->server.listen && *cfg->server.listen) {
        if (es_server_start(cfg, eng, &srv, &err) != ES_OK) {
            es_log_err(NULL, ES_LOG_ERROR, &err);
            status = es_code_exit_status(err.code);
            goto out;
        }
        es_log(NULL, ES_LOG_INFO, "listening on port %u", (unsigned)es_server_port(srv));
    }
    struct es_config *old = NULL;
    while (!es_engine_stopping(eng)) {
        struct timespec ts = {0, 200 * 1000000L};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            es_log(NULL, ES_LOG_INFO, "stopping: finishing the batches in hand");
            es_engine_request_stop(eng);
        } else if (sig == SIGHUP) {
            struct es_config *fresh = es_cli_load_config(path);
            es_err_clear(&err);
            if (!fresh || check_env(fresh) > 0) {
                es_log(NULL, ES_LOG_ERROR, "reload: %s has errors; keeping the running config",
                       path);
                es_config_free(fresh);
            } else if (srv) {
                /* The server borrows the config: it keeps the one it started with. */
                es_log(NULL, ES_LOG_WARN,
                       "reload: flows reloaded; server settings need a "
                       "restart");
                if (es_engine_reload(eng, fresh, &err) != ES_OK) {
                    es_log_err(NULL, ES_LOG_ERROR, &err);
                    es_config_free(fresh);
                } else {
                    es_config_free(old);
                    old = fresh; /* cfg stays alive for the server */
                }
            } else if (es_engine_reload(eng, fresh, &err) != ES_OK) {
                es_log_err(NULL, ES_LOG_ERROR, &err);
                es_config_free(fresh);
            } else {
                es_config_free(old);
                old = cfg;
                cfg = fresh;
                es_config_free(old);
                old = NULL;
                es_log(NULL, ES_LOG_INFO, "reload: %s loaded", path);
            }
        }
    }
    es_server_stop(srv);
    srv = NULL;
    es_engine_wait(eng);
    es_engine_free(eng);
    eng = NULL;
    es_config_free(old);
    es_log(NULL, ES_LOG_INFO, "stopped");
out:
    es_server_stop(srv);
    es_engine_free(eng);
    es_config_free(cfg);
    return status;
}
