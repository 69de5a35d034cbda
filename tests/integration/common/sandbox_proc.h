/* SPDX-License-Identifier: MIT */
/*
 * Test helper shared by the connector integration tests: starts `erpsync-sandbox EMULATOR`
 * on a free loopback port (the port is read from its first stdout line), talks to its admin
 * endpoints, and stops it. Header-only so each test stays one executable. Users add
 * tests/integration/common to their include directories and include "sandbox_proc.h".
 */
#ifndef ES_TEST_SANDBOX_PROC_H
#define ES_TEST_SANDBOX_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connectors/connector.h"
#include "connectors/http.h"
#include "core/config.h"
#include "core/diag.h"

struct sbproc {
    pid_t pid;
    int port;
    char url[64];
    char db[256];
};

/* Starts the sandbox with extra arguments (NULL-terminated). Returns 0 or -1. */
static inline int sbproc_start(struct sbproc *p, const char *emulator, const char *const *extra)
{
    const char *bin = getenv("ES_SANDBOX_BIN");
    if (!bin) {
        fprintf(stderr, "ES_SANDBOX_BIN is not set\n");
        return -1;
    }
    snprintf(p->db, sizeof p->db, "/tmp/es-conn-test-%s-%d.db", emulator, (int)getpid());
    unlink(p->db);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", p->db);
    unlink(wal);
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = emulator;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--db";
    argv[n++] = p->db;
    argv[n++] = "--rng-seed";
    argv[n++] = "7";
    for (size_t i = 0; extra && extra[i] && n < 30; i++) {
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    p->pid = fork();
    if (p->pid < 0) {
        return -1;
    }
    if (p->pid == 0) {
        /* Dies with the test, and never holds ctest's output pipe open after a crash. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int logfd = open("/dev/null", O_WRONLY);
        if (getenv("ES_SANDBOX_LOG")) {
            logfd = open(getenv("ES_SANDBOX_LOG"), O_WRONLY | O_CREAT | O_APPEND, 0644);
        }
        if (logfd >= 0) {
            dup2(logfd, 2);
            close(logfd);
        }
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char line[512];
    size_t len = 0;
    p->port = 0;
    for (int waited = 0; waited < 120000 && !p->port;) {
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int r = poll(&pfd, 1, 200);
        waited += 200;
        if (r > 0) {
            ssize_t k = read(fds[0], line + len, sizeof line - 1 - len);
            if (k <= 0) {
                break;
            }
            len += (size_t)k;
            line[len] = '\0';
            const char *at = strstr(line, "http://127.0.0.1:");
            if (at && strchr(at, '\n')) {
                p->port = (int)strtol(at + 17, NULL, 10);
            }
        }
    }
    close(fds[0]);
    if (!p->port) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        return -1;
    }
    snprintf(p->url, sizeof p->url, "http://127.0.0.1:%d", p->port);
    return 0;
}

static inline void sbproc_stop(struct sbproc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        int st;
        for (int i = 0; i < 100; i++) {
            if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
                p->pid = 0;
                break;
            }
            struct timespec ts = {0, 50000000L};
            nanosleep(&ts, NULL);
        }
        if (p->pid > 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
        }
        p->pid = 0;
    }
    unlink(p->db);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", p->db);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", p->db);
    unlink(wal);
}

/* An admin call (no auth). Returns the HTTP status, or -1. OUT: *out (may be NULL). */
static inline long sbproc_admin(struct sbproc *p, const char *method, const char *path,
                                const char *body, json_t **out)
{
    struct es_http *h = NULL;
    struct es_err err;
    es_err_clear(&err);
    if (out) {
        *out = NULL;
    }
    if (es_http_new_plain(p->url, 10000, 2000, 16u << 20, &h, &err) != ES_OK) {
        return -1;
    }
    struct es_http_req_opts rq = {
        .method = method, .url = path, .body = body, .body_len = body ? strlen(body) : 0};
    struct es_http_resp resp;
    es_http_resp_init(&resp, h);
    long st = -1;
    if (es_http_send(h, &rq, &resp, &err) == ES_OK) {
        st = resp.status;
        if (out && resp.body.len) {
            *out = json_loadb(resp.body.data, resp.body.len, 0, NULL);
        }
    }
    es_http_resp_release(&resp);
    es_http_free(h);
    return st;
}

static inline void sbproc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Parses a test configuration from text (diagnostics to stderr) and opens its system named
 * `system`. Returns 0, or -1 after printing why. OUT: *cfg (es_config_free), *conn
 * (es_conn_close). */
static inline int sbproc_open_system(const char *name, const char *yaml, const char *system,
                                     struct es_config **cfg, struct es_conn **conn)
{
    struct es_diags d;
    es_diags_init(&d);
    int rc = es_config_parse(name, yaml, strlen(yaml), cfg, &d);
    es_diags_print(&d, stderr);
    es_diags_release(&d);
    if (rc != ES_OK) {
        return -1;
    }
    struct es_err err;
    es_err_clear(&err);
    if (es_conn_open(es_config_system(*cfg, system), conn, &err) != ES_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* What the SAP connector tests' configurations differ in (see sap_test_open). */
struct sap_test_opts {
    const char *name;                /* the configuration's file name in diagnostics */
    const char *const *sandbox_args; /* extra `erpsync-sandbox sap` flags, NULL-terminated */
    const char *env_prefix;          /* credentials in <prefix>_USER, <prefix>_PASSWORD */
    const char *timeout;             /* the system's timeout ("60s") */
    int page_size;                   /* options.page_size */
    const char *more_options;        /* appended to the options map ("expand: {...}") or NULL */
    const char *object;              /* the entity set read by entity `customer` */
};

/* Starts `erpsync-sandbox sap` (seeded as o->sandbox_args say) into *sb, sets the demo
 * credentials in the environment and opens system `erp` of a configuration with that
 * sap_odata system (basic auth, overlap 0s), a memory system `mem`, entity `customer`
 * (o->object on erp) and one poll flow erp -> mem. Returns 0, or -1 after printing why.
 * OUT: *sb, *cfg, *conn: release them with sap_test_close(). */
static inline int sap_test_open(struct sbproc *sb, const struct sap_test_opts *o,
                                struct es_config **cfg, struct es_conn **conn)
{
    if (sbproc_start(sb, "sap", o->sandbox_args) != 0) {
        fprintf(stderr, "cannot start the sap sandbox\n");
        return -1;
    }
    char user_env[64], password_env[64];
    snprintf(user_env, sizeof user_env, "%s_USER", o->env_prefix);
    snprintf(password_env, sizeof password_env, "%s_PASSWORD", o->env_prefix);
    setenv(user_env, "demo", 1);
    setenv(password_env, "demo", 1);
    char yaml[4096];
    int n = snprintf(
        yaml, sizeof yaml,
        "store: sqlite:/tmp/unused.db\n"
        "systems:\n"
        "  erp:\n"
        "    connector: sap_odata\n"
        "    url: %s\n"
        "    timeout: %s\n"
        "    auth: {basic: {user_env: %s, password_env: %s}}\n"
        "    options: {page_size: %d, overlap: 0s%s%s}\n"
        "  mem: {connector: memory}\n"
        "entities:\n"
        "  customer: {objects: {erp: %s, mem: Account}}\n"
        "flows:\n"
        "  f: {entity: customer, from: erp, to: mem, trigger: {poll: 1m}, map: {Name: Name}}\n",
        sb->url, o->timeout, user_env, password_env, o->page_size, o->more_options ? ", " : "",
        o->more_options ? o->more_options : "", o->object);
    if (n < 0 || (size_t)n >= sizeof yaml) {
        fprintf(stderr, "sap_test_open: configuration too long\n");
        return -1;
    }
    return sbproc_open_system(o->name, yaml, "erp", cfg, conn);
}

/* Closes what sap_test_open() opened and stops the sandbox. NULL-tolerant. */
static inline void sap_test_close(struct sbproc *sb, struct es_config *cfg, struct es_conn *conn)
{
    es_conn_close(conn);
    es_config_free(cfg);
    sbproc_stop(sb);
}

#endif
