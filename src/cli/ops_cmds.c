/* SPDX-License-Identifier: MIT */
/*
 * Operator commands over the journal: status, dlq, review, flow pause|resume. They open the
 * store named by the config directly (SQLite allows this while the daemon runs: WAL readers
 * and a busy timeout for the few writes), print a table for people or JSON with --json.
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

struct opts {
    int json;
    const char *flow, *note, *reason, *older_than;
    size_t limit;
    int npos;
    const char *pos[4];
};

static int parse(int argc, char **argv, int first, struct opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--flow") == 0 && i + 1 < argc) {
            o->flow = argv[++i];
        } else if (strcmp(a, "--note") == 0 && i + 1 < argc) {
            o->note = argv[++i];
        } else if (strcmp(a, "--reason") == 0 && i + 1 < argc) {
            o->reason = argv[++i];
        } else if (strcmp(a, "--older-than") == 0 && i + 1 < argc) {
            o->older_than = argv[++i];
        } else if (strcmp(a, "--limit") == 0 && i + 1 < argc) {
            o->limit = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "erpsync: unknown option '%s'\n", a);
            return -1;
        } else if (o->npos < 4) {
            o->pos[o->npos++] = a;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Loads the config and opens its store; prints the error and returns NULL on failure. */
static struct es_store *open_store(const char *path, struct es_config **cfg)
{
    *cfg = es_cli_load_config(path);
    if (!*cfg) {
        return NULL;
    }
    struct es_store *s = NULL;
    struct es_err err;
    es_err_clear(&err);
    if (es_store_open((*cfg)->store, &s, &err) != ES_OK) {
        es_log_err(NULL, ES_LOG_ERROR, &err);
        es_config_free(*cfg);
        *cfg = NULL;
        return NULL;
    }
    return s;
}

static void age_text(int64_t since_ms, int64_t now, char *out, int cap)
{
    if (!since_ms) {
        snprintf(out, (size_t)cap, "-");
        return;
    }
    es_duration_format(now - since_ms > 0 ? (now - since_ms) / 1000 * 1000 : 0, out, cap);
}

static int fail(const struct es_err *err)
{
    fprintf(stderr, "erpsync: %s: %s\n", es_code_name(err->code), err->msg);
    return es_code_exit_status(err->code);
}

int es_cli_status(int argc, char **argv)
{
    struct opts o;
    if (parse(argc, argv, 1, &o) != 0 || o.npos != 1) {
        fprintf(stderr, "usage: erpsync status [--json] CONFIG\n");
        return 64;
    }
    struct es_config *cfg;
    struct es_store *s = open_store(o.pos[0], &cfg);
    if (!s) {
        return es_code_exit_status(ES_ESTORE);
    }
    int64_t now = es_clock_wall_ms();
    struct es_err err;
    es_err_clear(&err);
    json_t *arr = json_array();
    int rc = ES_OK;
    if (!o.json) {
        printf("%-24s %8s %7s %7s %7s %7s %9s %8s %s\n", "FLOW", "PENDING", "LEASED", "RETRY",
               "REVIEW", "DEAD", "DONE", "OLDEST", "LAST SUCCESS");
    }
    for (size_t i = 0; i < cfg->nflows && rc == ES_OK; i++) {
        struct es_flow_stats st;
        rc = es_store_stats(s, cfg->flows[i].name, now, &st, &err);
        if (rc != ES_OK) {
            break;
        }
        char oldest[32], last[40];
        age_text(st.oldest_open_ms, now, oldest, sizeof oldest);
        if (st.last_success_ms) {
            es_clock_iso8601(st.last_success_ms, last, sizeof last);
        } else {
            snprintf(last, sizeof last, "never");
        }
        if (o.json) {
            json_t *states = json_object();
            for (int k = 0; k < ES_CHANGE_STATE_LAST; k++) {
                json_object_set_new(states, es_change_state_name((enum es_change_state)k),
                                    json_integer(st.count[k]));
            }
            json_array_append_new(
                arr,
                json_pack("{s:s, s:o, s:I, s:I, s:b, s:s?, s:I, s:I, s:b}", "flow",
                          cfg->flows[i].name, "states", states, "oldest_open_age_ms",
                          (json_int_t)(st.oldest_open_ms ? now - st.oldest_open_ms : 0),
                          "last_success_ms", (json_int_t)st.last_success_ms, "paused", st.paused,
                          "pause_reason", st.paused ? st.pause_reason : NULL, "enqueued",
                          (json_int_t)st.enqueued, "duplicates", (json_int_t)st.duplicates,
                          "enabled", cfg->flows[i].enabled ? 1 : 0));
        } else {
            printf("%-24s %8" PRId64 " %7" PRId64 " %7" PRId64 " %7" PRId64 " %7" PRId64
                   " %9" PRId64 " %8s %s%s%s\n",
                   cfg->flows[i].name, st.count[ES_CHANGE_PENDING], st.count[ES_CHANGE_LEASED],
                   st.count[ES_CHANGE_RETRY], st.count[ES_CHANGE_REVIEW], st.count[ES_CHANGE_DEAD],
                   st.count[ES_CHANGE_DONE], oldest, last, st.paused ? "  PAUSED: " : "",
                   st.paused ? st.pause_reason : "");
        }
    }
    if (rc == ES_OK && o.json) {
        char *text = json_dumps(arr, JSON_INDENT(2));
        puts(text);
        free(text); /* checksrc: ok (jansson allocates with malloc) */
    }
    json_decref(arr);
    es_store_close(s);
    es_config_free(cfg);
    return rc == ES_OK ? 0 : fail(&err);
}

static json_t *change_json(const struct es_change *c, int with_payload)
{
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:I}", "id", (json_int_t)c->id,
                          "flow", c->flow, "key", c->key, "version", c->version, "state",
                          es_change_state_name(c->state), "attempts", c->attempts, "code",
                          es_code_name(c->last_code), "created_ms", (json_int_t)c->created_ms,
                          "updated_ms", (json_int_t)c->updated_ms);
    const struct {
        const char *name, *v;
    } opt[] = {{"message", c->last_msg},
               {"remote_code", c->last_remote_code},
               {"remote_message", c->last_remote_msg},
               {"hint", c->last_hint},
               {"note", c->note}};
    for (size_t i = 0; i < ES_ARRAY_LEN(opt); i++) {
        if (opt[i].v) {
            json_object_set_new(j, opt[i].name, json_string(opt[i].v));
        }
    }
    if (c->deleted) {
        json_object_set_new(j, "deleted", json_true());
    }
    if (with_payload && c->payload) {
        json_t *p = json_loadb(c->payload, c->payload_len, 0, NULL);
        json_object_set_new(j, "payload", p ? p : json_string(c->payload));
    }
    return j;
}

static void print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2));
    puts(text);
    free(text); /* checksrc: ok (jansson allocates with malloc) */
    json_decref(j);
}

/* list|show|replay|resolve over one parked state (dlq = dead, review = review). */
static int parked(int argc, char **argv, enum es_change_state state, const char *cmd,
                  int allow_resolve)
{
    struct opts o;
    const char *sub = argc > 1 ? argv[1] : "";
    int bad = parse(argc, argv, 2, &o) != 0;
    int list = strcmp(sub, "list") == 0, show = strcmp(sub, "show") == 0;
    int replay = strcmp(sub, "replay") == 0, resolve = allow_resolve && strcmp(sub, "resolve") == 0;
    if (bad || !(list || show || replay || resolve) || o.npos < 1 || (list && o.npos != 1) ||
        (!list && o.npos != 2)) {
        fprintf(stderr,
                "usage: erpsync %s list [--flow F] [--limit N] [--json] CONFIG\n"
                "       erpsync %s show [--json] CONFIG ID\n"
                "       erpsync %s replay [--note TEXT] CONFIG ID%s\n",
                cmd, cmd, cmd,
                allow_resolve ? "\n       erpsync review resolve --note TEXT CONFIG ID" : "");
        return 64;
    }
    struct es_config *cfg;
    struct es_store *s = open_store(o.pos[0], &cfg);
    if (!s) {
        return es_code_exit_status(ES_ESTORE);
    }
    struct es_err err;
    es_err_clear(&err);
    int rc = ES_OK;
    int64_t id = 0;
    if (!list) {
        char *end = NULL;
        id = strtoll(o.pos[1], &end, 10);
        if (!end || *end || id <= 0) {
            rc = es_err_set(&err, ES_EINVAL, "'%s' is not a change id", o.pos[1]);
        }
    }
    if (rc == ES_OK && list) {
        struct es_change_filter f = {o.flow, state, 0, o.limit ? o.limit : 100};
        struct es_change *items = NULL;
        size_t n = 0;
        rc = es_store_list(s, &f, &items, &n, &err);
        if (rc == ES_OK && o.json) {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++) {
                json_array_append_new(arr, change_json(&items[i], 0));
            }
            print_json(arr);
        } else if (rc == ES_OK) {
            printf("%-17s %-22s %-20s %-4s %-12s %s\n", "ID", "FLOW", "KEY", "TRY", "CODE",
                   "MESSAGE");
            for (size_t i = 0; i < n; i++) {
                const struct es_change *c = &items[i];
                printf("%-17" PRId64 " %-22s %-20s %-4d %-12s %s\n", c->id, c->flow, c->key,
                       c->attempts, es_code_name(c->last_code), c->last_msg ? c->last_msg : "");
            }
            printf("(%zu %s)\n", n, n == 1 ? "change" : "changes");
        }
        es_changes_free(items, n);
    } else if (rc == ES_OK && show) {
        struct es_change c;
        rc = es_store_get(s, id, &c, &err);
        if (rc == ES_OK && c.state != state) {
            rc = es_err_set(&err, ES_EINVAL, "change %" PRId64 " is %s, not %s", id,
                            es_change_state_name(c.state), es_change_state_name(state));
        }
        if (rc == ES_OK) {
            struct es_audit *a = NULL;
            size_t na = 0;
            json_t *j = change_json(&c, 1);
            json_t *hist = json_array();
            if (es_store_audit(s, id, 50, &a, &na, NULL) == ES_OK) {
                for (size_t i = 0; i < na; i++) {
                    json_array_append_new(
                        hist,
                        json_pack("{s:I, s:s, s:s, s:i, s:I, s:s}", "ts_ms", (json_int_t)a[i].ts_ms,
                                  "state", es_change_state_name(a[i].state), "code",
                                  es_code_name(a[i].code), "attempt", a[i].attempt, "duration_ms",
                                  (json_int_t)a[i].duration_ms, "message", a[i].msg));
                }
            }
            es_free(a);
            json_object_set_new(j, "history", hist);
            if (o.json) {
                print_json(j);
            } else {
                char *text = json_dumps(j, JSON_INDENT(2));
                printf("change %" PRId64 " (%s)\n%s\n", id, es_change_state_name(c.state), text);
                free(text); /* checksrc: ok (jansson allocates with malloc) */
                json_decref(j);
            }
        }
        es_change_release(&c);
    } else if (rc == ES_OK) {
        struct es_change c;
        rc = es_store_get(s, id, &c, &err);
        if (rc == ES_OK && c.state != state) {
            rc = es_err_set(&err, ES_EINVAL, "change %" PRId64 " is %s, not %s", id,
                            es_change_state_name(c.state), es_change_state_name(state));
        }
        es_change_release(&c);
        if (rc == ES_OK && resolve && !o.note) {
            rc = es_err_set(&err, ES_EINVAL, "resolve needs --note TEXT (what was done)");
        }
        if (rc == ES_OK) {
            rc = replay ? es_store_replay(s, id, o.note, &err)
                        : es_store_resolve(s, id, o.note, &err);
        }
        if (rc == ES_OK) {
            if (o.json) {
                print_json(json_pack("{s:I, s:s}", "id", (json_int_t)id, "state",
                                     replay ? "pending" : "done"));
            } else {
                printf("change %" PRId64 ": %s\n", id,
                       replay ? "back to pending (the daemon picks it up)" : "resolved");
            }
        }
    }
    es_store_close(s);
    es_config_free(cfg);
    return rc == ES_OK ? 0 : fail(&err);
}

int es_cli_dlq(int argc, char **argv)
{
    return parked(argc, argv, ES_CHANGE_DEAD, "dlq", 0);
}

int es_cli_review(int argc, char **argv)
{
    return parked(argc, argv, ES_CHANGE_REVIEW, "review", 1);
}

int es_cli_flow(int argc, char **argv)
{
    struct opts o;
    const char *sub = argc > 1 ? argv[1] : "";
    int pause = strcmp(sub, "pause") == 0, resume = strcmp(sub, "resume") == 0;
    if (parse(argc, argv, 2, &o) != 0 || !(pause || resume) || o.npos != 2) {
        fprintf(stderr, "usage: erpsync flow pause [--reason TEXT] CONFIG FLOW\n"
                        "       erpsync flow resume CONFIG FLOW\n");
        return 64;
    }
    struct es_config *cfg;
    struct es_store *s = open_store(o.pos[0], &cfg);
    if (!s) {
        return es_code_exit_status(ES_ESTORE);
    }
    struct es_err err;
    es_err_clear(&err);
    int rc = ES_OK;
    if (!es_config_flow(cfg, o.pos[1])) {
        rc = es_err_set(&err, ES_EINVAL, "no flow named '%s' in %s", o.pos[1], o.pos[0]);
    } else {
        rc = es_store_flow_pause(s, o.pos[1],
                                 pause ? (o.reason ? o.reason : "paused by operator") : NULL, &err);
    }
    if (rc == ES_OK) {
        if (o.json) {
            print_json(json_pack("{s:s, s:b}", "flow", o.pos[1], "paused", pause));
        } else {
            printf("flow %s %s\n", o.pos[1], pause ? "paused" : "resumed");
        }
    }
    es_store_close(s);
    es_config_free(cfg);
    return rc == ES_OK ? 0 : fail(&err);
}

int es_cli_prune(int argc, char **argv)
{
    struct opts o;
    if (parse(argc, argv, 1, &o) != 0 || o.npos != 1) {
        fprintf(stderr, "usage: erpsync prune [--older-than DURATION] [--json] CONFIG\n"
                        "  removes done changes and audit rows older than DURATION (default: the\n"
                        "  config's retention); pending, retry, review and dead changes stay\n");
        return 64;
    }
    struct es_config *cfg;
    struct es_store *s = open_store(o.pos[0], &cfg);
    if (!s) {
        return es_code_exit_status(ES_ESTORE);
    }
    struct es_err err;
    es_err_clear(&err);
    int64_t keep = cfg->retention_ms;
    int rc = ES_OK;
    if (o.older_than && es_duration_parse(o.older_than, &keep, NULL) != ES_OK) {
        rc = es_err_set(&err, ES_EINVAL, "--older-than: '%s' is not a duration like 30d or 12h",
                        o.older_than);
    } else if (keep <= 0) {
        rc = es_err_set(&err, ES_EINVAL, "retention is 0s (keep forever): nothing to prune");
        es_err_hint(&err, "pass --older-than DURATION");
    }
    size_t changes = 0, audits = 0;
    if (rc == ES_OK) {
        rc = es_store_prune(s, es_clock_wall_ms() - keep, &changes, &audits, &err);
    }
    if (rc == ES_OK) {
        if (o.json) {
            print_json(json_pack("{s:I, s:I}", "changes", (json_int_t)changes, "audit_rows",
                                 (json_int_t)audits));
        } else {
            printf("pruned %zu done changes and %zu audit rows\n", changes, audits);
        }
    }
    es_store_close(s);
    es_config_free(cfg);
    return rc == ES_OK ? 0 : fail(&err);
}
