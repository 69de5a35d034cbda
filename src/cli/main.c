/* SPDX-License-Identifier: MIT */
/*
 * erpsync: the main binary. Parses the global options, then hands the rest of the
 * command line to one command of the table below. Adding a command is one row here and one
 * file in src/cli/.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"

const struct es_cli_command es_cli_commands[] = {
    {"validate", "CONFIG", "check an integration file and show every error with its position",
     es_cli_validate},
    {"config-docs", "", "print the reference of every configuration key (Markdown)",
     es_cli_config_docs},
    {"map", "CONFIG FLOW", "map NDJSON records on stdin through a flow's mapping", es_cli_map},
    {"test", "CONFIG [FILE.test...]", "run mapping fixtures offline", es_cli_test},
    {"run", "[--once] CONFIG", "run the daemon (SIGTERM drains and exits, SIGHUP reloads)",
     es_cli_run},
    {"status", "[--json] CONFIG",
     "per flow: pending, leased, retry, review, dead, oldest, last success", es_cli_status},
    {"dlq", "list|show|replay CONFIG [ID]", "dead letters: list, show, replay", es_cli_dlq},
    {"review", "list|show|resolve|replay CONFIG [ID]", "review items: list, show, resolve, replay",
     es_cli_review},
    {"flow", "pause|resume CONFIG FLOW", "pause or resume a flow", es_cli_flow},
    {"prune", "[--older-than DURATION] CONFIG",
     "remove done changes and audit rows older than the retention", es_cli_prune},
    {"describe", "[--json] CONFIG SYSTEM [OBJECT]",
     "list a system's objects, or one object's fields", es_cli_describe},
    {"ping", "[--json] CONFIG SYSTEM", "check that a system answers and accepts the credentials",
     es_cli_ping},
    {"xref", "[--json] CONFIG ENTITY SYSTEM ID", "a record's global id and its id in every system",
     es_cli_xref},
    {"version", "", "print the version", es_cli_version},
    {"help", "[COMMAND]", "show this help, or one command's", es_cli_help},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fputs("usage: erpsync [--log-format logfmt|json] [--log-level debug|info|warn|error] "
          "COMMAND [ARGS]\n\ncommands:\n",
          out);
    for (const struct es_cli_command *c = es_cli_commands; c->name; c++) {
        char head[64];
        snprintf(head, sizeof head, "%s %s", c->name, c->usage);
        fprintf(out, "  %-28s %s\n", head, c->summary);
    }
    fputs("\nSecrets come from environment variables named in the config (*_env keys).\n", out);
}

int es_cli_help(int argc, char **argv)
{
    if (argc > 1) {
        for (const struct es_cli_command *c = es_cli_commands; c->name; c++) {
            if (strcmp(c->name, argv[1]) == 0) {
                printf("usage: erpsync %s %s\n  %s\n", c->name, c->usage, c->summary);
                return 0;
            }
        }
        fprintf(stderr, "erpsync: unknown command '%s'\n", argv[1]);
        return 64;
    }
    usage(stdout);
    return 0;
}

int es_cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("erpsync %s\n", ES_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *opt = argv[i];
        const char *val = NULL;
        const char *eq = strchr(opt, '=');
        char name[32];
        if (eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - opt), opt);
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", opt);
        }
        if (strcmp(name, "--version") == 0) {
            return es_cli_version(0, NULL);
        }
        if (strcmp(name, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(name, "--log-format") == 0 || strcmp(name, "--log-level") == 0) {
            if (!val && i + 1 < argc) {
                val = argv[++i];
            }
            enum es_log_format fmt;
            enum es_log_level lvl;
            if (strcmp(name, "--log-format") == 0 && es_log_parse_format(val, &fmt) == ES_OK) {
                es_log_set_format(fmt);
                continue;
            }
            if (strcmp(name, "--log-level") == 0 && es_log_parse_level(val, &lvl) == ES_OK) {
                es_log_set_level(lvl);
                continue;
            }
            fprintf(stderr, "erpsync: bad value '%s' for %s\n", val ? val : "", name);
            return 64;
        }
        fprintf(stderr, "erpsync: unknown option '%s'\n", opt);
        usage(stderr);
        return 64;
    }
    if (i >= argc) {
        usage(stderr);
        return 64;
    }
    for (const struct es_cli_command *c = es_cli_commands; c->name; c++) {
        if (strcmp(c->name, argv[i]) == 0) {
            return c->run(argc - i, argv + i);
        }
    }
    fprintf(stderr, "erpsync: unknown command '%s' (see 'erpsync help')\n", argv[i]);
    return 64;
}
