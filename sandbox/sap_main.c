/* SPDX-License-Identifier: MIT */
/*
 * erpsync-sandbox sap: entry point, options and wiring of the SAP S/4HANA OData v2 emulator
 * (docs/sandbox.md, "SAP S/4HANA OData"). Opens the state file, seeds the demo data when
 * asked and the state is empty, then serves the A2X services under /sap/opu/odata/sap/
 * through sandbox/common.h (fault injection, reset, records behind the client's back).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "sandbox.h"
#include "sap_int.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: erpsync-sandbox sap [options]\n"
            "SAP S/4HANA OData v2 emulator: API_BUSINESS_PARTNER, API_SALES_ORDER_SRV,\n"
            "API_PRODUCT_SRV, API_MATERIAL_STOCK_SRV, API_BILLING_DOCUMENT_SRV,\n"
            "API_SLSPRICINGCONDITIONRECORD_SRV under /sap/opu/odata/sap/.\n"
            "  --user NAME          basic auth user (default demo)\n"
            "  --password PW        basic auth password (default demo)\n"
            "  --page-max N         server-side page size cap; longer feeds get __next\n"
            "                       (default 5000, 0 = no cap)\n"
            "  --csrf-ttl SECONDS   lifetime of CSRF tokens and sessions (default 1800)\n"
            "  --partners N         demo business partners to seed (default 6000)\n"
            "  --products N         demo products to seed, at least 200 (default 200)\n"
            "%s",
            sb_opts_help());
}

static int int_flag(const char *v, int *out)
{
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : -1;
    if (!v || !*v || *end || x < 0 || x > 100000000) {
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int own_flag(struct sap_ctx *c, int argc, char **argv, int *i)
{
    const char *f = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    int r = -1;
    if (strcmp(f, "--user") == 0 && v) {
        snprintf(c->user, sizeof c->user, "%s", v);
        r = 0;
    } else if (strcmp(f, "--password") == 0 && v) {
        snprintf(c->password, sizeof c->password, "%s", v);
        r = 0;
    } else if (strcmp(f, "--page-max") == 0) {
        r = int_flag(v, &c->page_max);
    } else if (strcmp(f, "--csrf-ttl") == 0) {
        r = int_flag(v, &c->csrf_ttl_s);
    } else if (strcmp(f, "--partners") == 0) {
        r = int_flag(v, &c->partners);
    } else if (strcmp(f, "--products") == 0) {
        r = int_flag(v, &c->products);
        r = (r == 0 && c->products < 200) ? -1 : r;
    } else {
        return 0;
    }
    if (r != 0) {
        fprintf(stderr, "erpsync-sandbox sap: bad or missing value for %s\n", f);
        return -1;
    }
    (*i)++;
    return 1;
}

static int count_entities(struct sap_ctx *c)
{
    sqlite3_stmt *st = NULL;
    int n = 0;
    if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM sap_ent", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

int sb_sap_main(int argc, char **argv)
{
    struct sb_opts o;
    struct es_err err = {0};
    struct sap_ctx *c = es_xcalloc(1, sizeof *c);
    int rc = 0;
    sb_opts_init(&o, 8702, "sap.db");
    snprintf(c->user, sizeof c->user, "demo");
    snprintf(c->password, sizeof c->password, "demo");
    c->page_max = 5000;
    c->csrf_ttl_s = 1800;
    c->partners = 6000;
    c->products = 200;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            es_free(c);
            return 0;
        }
        int r = sb_opts_flag(&o, argc, argv, &i, &err);
        if (r < 0) {
            fprintf(stderr, "erpsync-sandbox sap: %s\n", err.msg);
            es_free(c);
            return 64;
        }
        if (r == 0) {
            r = own_flag(c, argc, argv, &i);
        }
        if (r <= 0) {
            if (r == 0) {
                fprintf(stderr, "erpsync-sandbox sap: unknown option '%s'\n", argv[i]);
                usage(stderr);
            }
            es_free(c);
            return 64;
        }
    }
    snprintf(c->seed, sizeof c->seed, "%s", o.seed);
    /* Expected Authorization header: "Basic " + base64(user:password). */
    {
        struct es_buf up, b64;
        es_buf_init(&up, 0);
        es_buf_init(&b64, 0);
        es_buf_printf(&up, "%s:%s", c->user, c->password);
        sb_base64(&b64, (const unsigned char *)up.data, up.len);
        snprintf(c->basic, sizeof c->basic, "Basic %s", b64.data);
        es_buf_release(&up);
        es_buf_release(&b64);
    }
    if (sap_store_open(c, o.db, &err) != ES_OK) {
        fprintf(stderr, "erpsync-sandbox sap: %s\n", err.msg);
        rc = 74;
        goto out;
    }
    if (strcmp(c->seed, "demo") == 0 && count_entities(c) == 0 && sap_seed_demo(c) != 0) {
        fprintf(stderr, "erpsync-sandbox sap: seeding failed: %s\n", sqlite3_errmsg(c->db));
        rc = 70;
        goto out;
    }
    snprintf(c->host_url, sizeof c->host_url, "http://%s:%d", o.host, o.port);
    struct sb_app app = {.name = "sap",
                         .ctx = c,
                         .handle = sap_handle,
                         .reset = sap_reset,
                         .record = sap_record,
                         .fault_reply = sap_fault_reply};
    struct sb_server *s = sb_server_start(&o, &app, &err);
    if (!s) {
        fprintf(stderr, "erpsync-sandbox sap: %s\n", err.msg);
        rc = 69;
        goto out;
    }
    sb_lock(s);
    snprintf(c->host_url, sizeof c->host_url, "http://%s:%d", o.host, sb_server_port(s));
    sb_unlock(s);
    sb_server_wait_signal();
    sb_server_stop(s);
out:
    if (c->db) {
        sqlite3_close(c->db);
    }
    es_free(c);
    return rc;
}
