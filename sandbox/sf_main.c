/* SPDX-License-Identifier: MIT */
/*
 * erpsync-sandbox salesforce: entry point, options and wiring of the Salesforce REST API
 * emulator (see docs/sandbox.md). The handlers live in the other sf_*.c files.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "sandbox.h"

static int handle(void *ctx, const struct sb_req *req, struct sb_resp *resp)
{
    (void)ctx;
    (void)req;
    sb_resp_json(resp, 404,
                 json_pack("[{s:s,s:s}]", "errorCode", "NOT_FOUND", "message",
                           "The requested resource does not exist"));
    return 0;
}

int sb_salesforce_main(int argc, char **argv)
{
    struct sb_opts o;
    struct es_err err = {0};
    sb_opts_init(&o, 8701, "sf.db");
    for (int i = 1; i < argc; i++) {
        int r = sb_opts_flag(&o, argc, argv, &i, &err);
        if (r < 0) {
            fprintf(stderr, "erpsync-sandbox salesforce: %s\n", err.msg);
            return 64;
        }
        if (r == 0) {
            fprintf(stderr, "erpsync-sandbox salesforce: unknown option '%s'\n%s", argv[i],
                    sb_opts_help());
            return 64;
        }
    }
    struct sb_app app = {.name = "salesforce", .handle = handle};
    struct sb_server *s = sb_server_start(&o, &app, &err);
    if (!s) {
        fprintf(stderr, "erpsync-sandbox salesforce: %s\n", err.msg);
        return 69;
    }
    sb_server_wait_signal();
    sb_server_stop(s);
    return 0;
}
