/* SPDX-License-Identifier: MIT */
/*
 * Commands that talk to one configured system through its connector: `describe` (the
 * objects a system has, or one object's fields with type, length, required, picklist and
 * external id) and `ping` (a cheap authenticated call, with the API budget when the system
 * reports one). Failures print the classified error with the remote system's own words.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "connectors/connector.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"

static void print_err(const struct es_err *err)
{
    fprintf(stderr, "erpsync: %s: %s", es_code_name(err->code), err->msg);
    if (err->http_status) {
        fprintf(stderr, " [HTTP %ld]", err->http_status);
    }
    if (err->remote_code[0] || err->remote_msg[0]) {
        fprintf(stderr, " remote: %s%s%s", err->remote_code, err->remote_code[0] ? " " : "",
                err->remote_msg);
    }
    fputc('\n', stderr);
    if (err->hint[0]) {
        fprintf(stderr, "hint: %s\n", err->hint);
    }
}

/* Loads CONFIG and opens SYSTEM. Returns 0 or an exit status. */
static int open_system(const char *path, const char *name, struct es_config **cfg,
                       struct es_conn **conn)
{
    *conn = NULL;
    *cfg = es_cli_load_config(path);
    if (!*cfg) {
        return es_code_exit_status(ES_ECONFIG);
    }
    const struct es_system_cfg *s = es_config_system(*cfg, name);
    if (!s) {
        fprintf(stderr, "erpsync: %s has no system '%s'; systems:", path, name);
        for (size_t i = 0; i < (*cfg)->nsystems; i++) {
            fprintf(stderr, " %s", (*cfg)->systems[i].name);
        }
        fputc('\n', stderr);
        es_config_free(*cfg);
        *cfg = NULL;
        return es_code_exit_status(ES_EINVAL);
    }
    struct es_err err;
    es_err_clear(&err);
    if (es_conn_open(s, conn, &err) != ES_OK) {
        print_err(&err);
        es_config_free(*cfg);
        *cfg = NULL;
        return es_code_exit_status(err.code);
    }
    return 0;
}

static void parse_common(int *argc, char **argv, int *json_out)
{
    int j = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            *json_out = 1;
        } else if (strncmp(argv[i], "--log-level=", 12) == 0) {
            enum es_log_level lvl;
            if (es_log_parse_level(argv[i] + 12, &lvl) == ES_OK) {
                es_log_set_level(lvl);
            }
        } else {
            argv[j++] = argv[i];
        }
    }
    *argc = j;
}

int es_cli_describe(int argc, char **argv)
{
    int json_out = 0;
    parse_common(&argc, argv, &json_out);
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: erpsync describe [--json] CONFIG SYSTEM [OBJECT]\n");
        return 64;
    }
    struct es_config *cfg = NULL;
    struct es_conn *c = NULL;
    int st = open_system(argv[1], argv[2], &cfg, &c);
    if (st) {
        return st;
    }
    const char *object = argc == 4 ? argv[3] : NULL;
    json_t *d = NULL;
    struct es_err err;
    es_err_clear(&err);
    int rc = es_conn_describe(c, object, &d, &err);
    if (rc != ES_OK) {
        print_err(&err);
        st = es_code_exit_status(err.code);
    } else if (json_out) {
        json_dumpf(d, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else if (!object) {
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(d, "objects"), i, o)
        {
            printf("%s\n", json_string_value(o));
        }
    } else {
        printf("%-40s %-14s %6s  %-8s %-6s %s\n", "FIELD", "TYPE", "LENGTH", "REQUIRED", "EXTID",
               "PICKLIST");
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(d, "fields"), i, f)
        {
            json_t *pl = json_object_get(f, "picklist");
            printf("%-40s %-14s %6lld  %-8s %-6s", json_string_value(json_object_get(f, "name")),
                   json_string_value(json_object_get(f, "type"))
                       ? json_string_value(json_object_get(f, "type"))
                       : "-",
                   (long long)json_integer_value(json_object_get(f, "length")),
                   json_is_true(json_object_get(f, "required")) ? "yes" : "",
                   json_is_true(json_object_get(f, "external_id")) ? "yes" : "");
            size_t k;
            json_t *v;
            json_array_foreach(pl, k, v)
            {
                if (k == 8) {
                    printf(" ... (%zu)", json_array_size(pl));
                    break;
                }
                printf("%s%s", k ? "|" : " ", json_string_value(v));
            }
            fputc('\n', stdout);
        }
    }
    json_decref(d);
    es_conn_close(c);
    es_config_free(cfg);
    return st;
}

int es_cli_ping(int argc, char **argv)
{
    int json_out = 0;
    parse_common(&argc, argv, &json_out);
    if (argc != 3) {
        fprintf(stderr, "usage: erpsync ping [--json] CONFIG SYSTEM\n");
        return 64;
    }
    struct es_config *cfg = NULL;
    struct es_conn *c = NULL;
    int st = open_system(argv[1], argv[2], &cfg, &c);
    if (st) {
        return st;
    }
    struct es_err err;
    es_err_clear(&err);
    int rc = es_conn_ping(c, &err);
    if (rc != ES_OK) {
        print_err(&err);
        st = es_code_exit_status(err.code);
    } else if (json_out) {
        printf("{\"system\":\"%s\",\"connector\":\"%s\",\"ok\":true,\"api_used\":%ld,"
               "\"api_max\":%ld}\n",
               argv[2], c->type->name, c->api_used, c->api_max);
    } else {
        printf("%s (%s): ok", argv[2], c->type->name);
        if (c->api_max > 0) {
            printf("  api budget: %ld of %ld used today, %ld left", c->api_used, c->api_max,
                   c->api_max - c->api_used);
        }
        fputc('\n', stdout);
    }
    es_conn_close(c);
    es_config_free(cfg);
    return st;
}
