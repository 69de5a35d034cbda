/* SPDX-License-Identifier: MIT */
/*
 * erpsync-sandbox: the entry point of each emulator. Shared emulator plumbing (HTTP
 * server wrapper, fault injection, admin endpoints, SQLite state) lives in sandbox/common.h.
 */
#ifndef ES_SANDBOX_SANDBOX_H
#define ES_SANDBOX_SANDBOX_H

int sb_salesforce_main(int argc, char **argv);
int sb_sap_main(int argc, char **argv);

#endif
