/* SPDX-License-Identifier: MIT */
/*
 * erpsync-sandbox: local, stateful emulators of the systems erpsync talks to, so that
 * mappings can be rehearsed and tests run without the internet. Each emulator is one
 * function with its own options; this file only dispatches.
 */
#include <stdio.h>
#include <string.h>

#include "sandbox.h"

static const struct sb_emulator {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv);
} emulators[] = {
    /* One line per emulator: {"salesforce", "...", sb_salesforce_main}, */
    {"salesforce", "Salesforce REST API: OAuth, sObjects, SOQL, Bulk 2.0", sb_salesforce_main},
    {"sap", "SAP S/4HANA OData v2: A2X services, CSRF, ETags, $batch, credit check", sb_sap_main},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fputs("usage: erpsync-sandbox EMULATOR [--listen HOST:PORT] [--db FILE] [--seed demo] ...\n"
          "emulators:\n",
          out);
    for (const struct sb_emulator *e = emulators; e->name; e++) {
        fprintf(out, "  %-12s %s\n", e->name, e->summary);
    }
    fputs("Run 'erpsync-sandbox EMULATOR --help' for its options; docs/sandbox.md explains "
          "how to point a connector or a client library at it.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 64 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("erpsync-sandbox %s\n", ES_VERSION);
        return 0;
    }
    for (const struct sb_emulator *e = emulators; e->name; e++) {
        if (strcmp(e->name, argv[1]) == 0) {
            return e->main(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "erpsync-sandbox: unknown emulator '%s'\n", argv[1]);
    usage(stderr);
    return 64;
}
