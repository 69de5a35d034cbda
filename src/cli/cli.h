/* SPDX-License-Identifier: MIT */
/*
 * The command line: one function per command, listed in main.c's table. Each takes the
 * arguments after its own name and returns the process exit status (0 = success; failures
 * use es_code_exit_status()). Commands print results on stdout and diagnostics on stderr.
 */
#ifndef ES_CLI_CLI_H
#define ES_CLI_CLI_H

struct es_cli_command {
    const char *name;
    const char *usage;   /* arguments, e.g. "CONFIG" */
    const char *summary; /* one line for `erpsync help` */
    int (*run)(int argc, char **argv);
};

/* The table of commands (main.c), terminated by {NULL}. */
extern const struct es_cli_command es_cli_commands[];

int es_cli_validate(int argc, char **argv);
int es_cli_config_docs(int argc, char **argv);
int es_cli_help(int argc, char **argv);
int es_cli_version(int argc, char **argv);
int es_cli_describe(int argc, char **argv);
int es_cli_ping(int argc, char **argv);
int es_cli_run(int argc, char **argv);
int es_cli_status(int argc, char **argv);
int es_cli_dlq(int argc, char **argv);
int es_cli_review(int argc, char **argv);
int es_cli_flow(int argc, char **argv);
int es_cli_prune(int argc, char **argv);
int es_cli_map(int argc, char **argv);
int es_cli_test(int argc, char **argv);
int es_cli_xref(int argc, char **argv);

/* Loads a config file, printing diagnostics (errors and warnings) to stderr. Returns NULL
 * on error. Used by every command that takes CONFIG. */
struct es_config;
struct es_config *es_cli_load_config(const char *path);

#endif
