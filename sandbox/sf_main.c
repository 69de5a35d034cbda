/* SPDX-License-Identifier: MIT */
/*
 * erpsync-sandbox salesforce: entry point, options and wiring of the Salesforce REST API
 * emulator (docs/sandbox.md). Opens the state file, loads the schema (standard objects plus
 * the JSON schema file), seeds the demo data when asked and the state is empty, then serves
 * through sandbox/common.h. The admin callbacks (reset, records behind the client's back,
 * fault bodies) live here too.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/clock.h"
#include "core/mem.h"
#include "sandbox.h"
#include "sf_int.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: erpsync-sandbox salesforce [options]\n"
        "Salesforce REST API emulator: /services/oauth2/token, /services/data/vNN.N/...\n"
        "salesforce options:\n"
        "  --client-id ID            OAuth consumer key (default demo)\n"
        "  --client-secret S         OAuth consumer secret (default demo)\n"
        "  --client-secret-env VAR   read the consumer secret from VAR instead\n"
        "  --username U --password P user for the password grant (default demo / demo)\n"
        "  --token-ttl DURATION      access token lifetime, e.g. 2h, 30s (default 2h)\n"
        "  --api-limit N             daily API requests (default 100000)\n"
        "  --accounts N              Accounts in the demo seed (default 3000)\n"
        "  --duplicate-rule on|off   Account Name+BillingPostalCode blocking rule (on)\n"
        "  --schema FILE             custom fields/objects JSON (default sandbox/sf_schema.json)\n"
        "  --notify-url URL          POST a CDC-shaped JSON change event per write\n"
        "  --notify-secret-env VAR   HMAC-SHA256 key for the change events, from VAR\n"
        "  --notify-signature-header H  header carrying the hex HMAC (X-Erpsync-Signature)\n"
        "  --om-url URL              POST SOAP Outbound Messages, retried until <Ack>true\n"
        "  --retry-base-ms N --retry-max-ms N  notification back-off (500 / 60000)\n"
        "  --jwt-public-key FILE     PEM public key: accept the JWT bearer grant signed with\n"
        "                            its private key (RS256; iss = client id, sub = username)\n"
        "  --jwt-audience AUD        the aud the assertion must carry\n"
        "                            (default https://login.salesforce.com)\n"
        "  --rotate-refresh-tokens   a refresh_token grant answers a new refresh token and\n"
        "                            revokes the one it used\n"
        "%s",
        sb_opts_help());
}

static const char *default_schema(void)
{
    static char path[1024];
    const char *env = getenv("ERPSYNC_SANDBOX_SF_SCHEMA");
    if (env && *env) {
        return env;
    }
    char src[1024];
    es_strlcpy(src, __FILE__, sizeof src);
    snprintf(path, sizeof path, "%s/sf_schema.json", dirname(src));
    if (access(path, R_OK) == 0) {
        return path;
    }
    return NULL;
}

static void ensure_user(struct sf_ctx *c)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(c->db,
                       "INSERT OR IGNORE INTO rec(id,obj,data,created,modstamp) "
                       "VALUES(?1,'User',?2,?3,?3)",
                       -1, &st, NULL);
    char dt[32];
    int64_t now = sb_now_ms();
    sf_fmt_dt(now, dt);
    char *data = es_xasprintf(
        "{\"Id\":\"%s\",\"Username\":\"%s@sandbox.invalid\",\"LastName\":\"Integration\","
        "\"FirstName\":\"Sandbox\",\"Name\":\"Sandbox Integration\",\"Email\":"
        "\"integration@sandbox.invalid\",\"IsActive\":true,\"IsDeleted\":false,"
        "\"CreatedDate\":\"%s\",\"CreatedById\":\"%s\",\"LastModifiedDate\":\"%s\","
        "\"LastModifiedById\":\"%s\",\"SystemModstamp\":\"%s\"}",
        c->user_id, c->username, dt, c->user_id, dt, c->user_id, dt);
    sqlite3_bind_text(st, 1, c->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, data, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_step(st);
    sqlite3_finalize(st);
    es_free(data);
}

static long count_records(struct sf_ctx *c)
{
    sqlite3_stmt *st = NULL;
    long n = 0;
    sqlite3_prepare_v2(c->db, "SELECT count(*) FROM rec WHERE obj <> 'User'", -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

static int seed(struct sf_ctx *c, const char *what, struct es_err *err)
{
    if (strcmp(what, "demo") != 0) {
        return ES_OK;
    }
    c->seeding = 1;
    int rc = sf_seed_demo(c, err);
    c->seeding = 0;
    return rc;
}

static int reset(void *ctx, const struct sb_req *req, struct sb_resp *resp)
{
    struct sf_ctx *c = ctx;
    struct es_err err = {0};
    char why[200];
    char what[32];
    es_strlcpy(what, c->seed, sizeof what);
    json_t *in = req->body_len ? sb_req_json(req, why) : NULL;
    const char *s = json_string_value(json_object_get(in, "seed"));
    if (s) {
        es_strlcpy(what, strcmp(s, "none") == 0 ? "" : s, sizeof what);
    }
    json_decref(in);
    sf_cursors_free(c);
    c->api_used = 0;
    int rc = sf_db_clear(c, &err);
    if (!rc) {
        ensure_user(c);
        rc = seed(c, what, &err);
    }
    if (rc) {
        sb_resp_json(resp, 500, json_pack("{s:s}", "error", err.msg));
    } else {
        sb_resp_json(resp, 200,
                     json_pack("{s:b,s:s,s:I}", "reset", 1, "seed", what[0] ? what : "none",
                               "records", (json_int_t)count_records(c)));
    }
    return 0;
}

static int record(void *ctx, const struct sb_req *req, const struct sb_caps *caps,
                  struct sb_resp *resp)
{
    struct sf_ctx *c = ctx;
    struct sf_object *o = sf_obj(c, caps->v[0]);
    if (!o) {
        sb_resp_json(resp, 404, json_pack("{s:s}", "error", "unknown sObject"));
        return 0;
    }
    json_t *errs = json_array();
    char why[200];
    if (strcmp(req->method, "GET") == 0) {
        int deleted = 0;
        json_t *rec = sf_rec_get(c, caps->v[1], 1, &deleted);
        if (!rec) {
            sb_resp_json(resp, 404, json_pack("{s:s}", "error", "no such record"));
        } else {
            sb_resp_json(resp, 200, json_pack("{s:o,s:b}", "record", rec, "deleted", deleted));
        }
    } else if (strcmp(req->method, "PATCH") == 0 || strcmp(req->method, "POST") == 0) {
        json_t *in = sb_req_json(req, why);
        char id[19];
        int rc;
        if (!in) {
            sb_resp_json(resp, 400, json_pack("{s:s}", "error", why));
            json_decref(errs);
            return 0;
        }
        if (strcmp(req->method, "POST") == 0) {
            rc = sf_rec_create(c, o, in, 1, "sandbox/admin", id, errs);
        } else {
            rc = sf_rec_update(c, o, caps->v[1], in, 1, "sandbox/admin", errs);
            sf_id18(caps->v[1], id);
        }
        json_decref(in);
        if (rc) {
            sb_resp_json(resp, 400, json_incref(errs));
        } else {
            sb_resp_json(resp, strcmp(req->method, "POST") == 0 ? 201 : 200,
                         json_pack("{s:o}", "record", sf_rec_get(c, id, 1, NULL)));
        }
    } else if (strcmp(req->method, "DELETE") == 0) {
        if (sf_rec_delete(c, caps->v[1], "sandbox/admin", errs) != 0) {
            sb_resp_json(resp, 404, json_incref(errs));
        } else {
            sb_resp_status(resp, 204);
        }
    } else {
        sb_resp_json(resp, 405, json_pack("{s:s}", "error", "GET, POST, PATCH or DELETE"));
    }
    json_decref(errs);
    return 0;
}

static void fault_reply(void *ctx, int status, struct sb_resp *resp)
{
    (void)ctx;
    if (status == 429) {
        sf_error_reply(resp, 429, "REQUEST_LIMIT_EXCEEDED",
                       "ConcurrentPerOrgLongTxn Limit exceeded. (sandbox fault)");
    } else if (status == 503) {
        sf_error_reply(resp, 503, "SERVER_UNAVAILABLE",
                       "Server temporarily unavailable. (sandbox fault)");
    } else {
        sf_error_reply(resp, status, "UNKNOWN_EXCEPTION",
                       "An unexpected error occurred. Please include this ErrorId if you "
                       "contact support: 0-0 (sandbox fault)");
    }
}

static int flag(struct sf_ctx *c, int argc, char **argv, int *i, const char **schema,
                int *retry_base, int *retry_max, struct es_err *err)
{
    const char *a = argv[*i];
    if (strcmp(a, "--rotate-refresh-tokens") == 0) {
        c->rotate_refresh = 1;
        return 1;
    }
    static const char *with_value[] = {
        "--client-id",      "--client-secret", "--client-secret-env", "--username",
        "--password",       "--token-ttl",     "--api-limit",         "--duplicate-rule",
        "--schema",         "--notify-url",    "--notify-secret-env", "--notify-signature-header",
        "--om-url",         "--retry-base-ms", "--retry-max-ms",      "--accounts",
        "--jwt-public-key", "--jwt-audience"};
    int known = 0;
    for (size_t k = 0; k < ES_ARRAY_LEN(with_value); k++) {
        known |= strcmp(a, with_value[k]) == 0;
    }
    if (!known) {
        return 0;
    }
    if (*i + 1 >= argc) {
        es_err_set(err, ES_EINVAL, "%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    char *end;
    if (strcmp(a, "--client-id") == 0) {
        es_strlcpy(c->client_id, v, sizeof c->client_id);
    } else if (strcmp(a, "--client-secret") == 0) {
        es_strlcpy(c->client_secret, v, sizeof c->client_secret);
    } else if (strcmp(a, "--client-secret-env") == 0 || strcmp(a, "--notify-secret-env") == 0) {
        const char *val = getenv(v);
        if (!val || !*val) {
            es_err_set(err, ES_EINVAL, "%s: environment variable %s is not set", a, v);
            return -1;
        }
        if (a[2] == 'c') {
            es_strlcpy(c->client_secret, val, sizeof c->client_secret);
        } else {
            es_strlcpy(c->notify_secret, val, sizeof c->notify_secret);
        }
    } else if (strcmp(a, "--username") == 0) {
        es_strlcpy(c->username, v, sizeof c->username);
    } else if (strcmp(a, "--password") == 0) {
        es_strlcpy(c->password, v, sizeof c->password);
    } else if (strcmp(a, "--token-ttl") == 0) {
        int bad = 0;
        if (es_duration_parse(v, &c->token_ttl_ms, &bad) != ES_OK || c->token_ttl_ms <= 0) {
            es_err_set(err, ES_EINVAL, "--token-ttl wants a duration like 2h or 30s, got '%s'", v);
            return -1;
        }
    } else if (strcmp(a, "--api-limit") == 0 || strcmp(a, "--retry-base-ms") == 0 ||
               strcmp(a, "--retry-max-ms") == 0 || strcmp(a, "--accounts") == 0) {
        long n = strtol(v, &end, 10);
        if (*end || end == v || n < 1) {
            es_err_set(err, ES_EINVAL, "%s wants a positive number, got '%s'", a, v);
            return -1;
        }
        if (strcmp(a, "--accounts") == 0) {
            if (n > 1000000) {
                es_err_set(err, ES_EINVAL, "--accounts wants at most 1000000, got %ld", n);
                return -1;
            }
            c->seed_accounts = (int)n;
        } else if (a[2] == 'a') {
            c->api_limit = n;
        } else if (strstr(a, "base")) {
            *retry_base = (int)n;
        } else {
            *retry_max = (int)n;
        }
    } else if (strcmp(a, "--duplicate-rule") == 0) {
        if (strcmp(v, "on") && strcmp(v, "off")) {
            es_err_set(err, ES_EINVAL, "--duplicate-rule wants on or off, got '%s'", v);
            return -1;
        }
        c->dup_rule = strcmp(v, "on") == 0;
    } else if (strcmp(a, "--schema") == 0) {
        *schema = v;
    } else if (strcmp(a, "--notify-url") == 0) {
        es_strlcpy(c->notify_url, v, sizeof c->notify_url);
    } else if (strcmp(a, "--notify-signature-header") == 0) {
        es_strlcpy(c->notify_header, v, sizeof c->notify_header);
    } else if (strcmp(a, "--jwt-audience") == 0) {
        es_strlcpy(c->jwt_audience, v, sizeof c->jwt_audience);
    } else if (strcmp(a, "--jwt-public-key") == 0) {
        FILE *f = fopen(v, "r");
        EVP_PKEY *k = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
        if (f) {
            fclose(f);
        }
        if (!k) {
            es_err_set(err, ES_EINVAL, "--jwt-public-key: %s is not a readable PEM public key", v);
            return -1;
        }
        EVP_PKEY_free(c->jwt_key);
        c->jwt_key = k;
    } else {
        es_strlcpy(c->om_url, v, sizeof c->om_url);
    }
    return 1;
}

int sb_salesforce_main(int argc, char **argv)
{
    struct sb_opts o;
    struct es_err err = {0};
    struct sf_ctx *c = es_xcalloc(1, sizeof *c);
    const char *schema = default_schema();
    int retry_base = 500, retry_max = 60000, rc = 0;
    sb_opts_init(&o, 8701, "sf.db");
    es_strlcpy(c->client_id, "demo", sizeof c->client_id);
    es_strlcpy(c->client_secret, "demo", sizeof c->client_secret);
    es_strlcpy(c->username, "demo", sizeof c->username);
    es_strlcpy(c->password, "demo", sizeof c->password);
    es_strlcpy(c->notify_header, "X-Erpsync-Signature", sizeof c->notify_header);
    c->token_ttl_ms = 2 * 3600 * 1000;
    es_strlcpy(c->jwt_audience, "https://login.salesforce.com", sizeof c->jwt_audience);
    c->api_limit = 100000;
    c->dup_rule = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            es_free(c);
            return 0;
        }
        int r = sb_opts_flag(&o, argc, argv, &i, &err);
        if (r == 0) {
            r = flag(c, argc, argv, &i, &schema, &retry_base, &retry_max, &err);
        }
        if (r < 0) {
            fprintf(stderr, "erpsync-sandbox salesforce: %s\n", err.msg);
            es_free(c);
            return 64;
        }
        if (r == 0) {
            fprintf(stderr, "erpsync-sandbox salesforce: unknown option '%s'\n", argv[i]);
            usage(stderr);
            es_free(c);
            return 64;
        }
    }
    es_strlcpy(c->seed, o.seed, sizeof c->seed);
    sf_id18("00DSb0000000001", c->org_id);
    sf_id18("005Sb0000000001", c->user_id);
    sf_schema_load_std(&c->schema);
    if (schema && sf_schema_load_file(&c->schema, schema, &err) != ES_OK) {
        fprintf(stderr, "erpsync-sandbox salesforce: schema: %s\n", err.msg);
        rc = 78;
        goto out;
    }
    if (!schema) {
        fprintf(stderr, "erpsync-sandbox salesforce: no schema file found (--schema); serving "
                        "standard objects only\n");
    }
    if (sb_db_open(o.db, &c->db, &err) != ES_OK || sf_db_init(c, &err) != ES_OK) {
        fprintf(stderr, "erpsync-sandbox salesforce: %s\n", err.msg);
        rc = 74;
        goto out;
    }
    /* the User sequence starts past the fixed integration user */
    sb_db_exec(c->db, "INSERT OR IGNORE INTO seq(name,n) VALUES('005',1)", NULL);
    ensure_user(c);
    if (count_records(c) == 0 && seed(c, c->seed, &err) != ES_OK) {
        fprintf(stderr, "erpsync-sandbox salesforce: %s\n", err.msg);
        rc = 70;
        goto out;
    }
    struct sb_app app = {.name = "salesforce",
                         .ctx = c,
                         .handle = sf_handle,
                         .reset = reset,
                         .record = record,
                         .fault_reply = fault_reply};
    struct sb_server *s = sb_server_start(&o, &app, &err);
    if (!s) {
        fprintf(stderr, "erpsync-sandbox salesforce: %s\n", err.msg);
        rc = 69;
        goto out;
    }
    c->srv = s;
    if ((c->notify_url[0] || c->om_url[0]) &&
        sb_outbox_start(s, c->db, retry_base, retry_max, &err) != ES_OK) {
        fprintf(stderr, "erpsync-sandbox salesforce: %s\n", err.msg);
        sb_server_stop(s);
        rc = 70;
        goto out;
    }
    sb_server_wait_signal();
    sb_server_stop(s);
out:
    sf_cursors_free(c);
    sqlite3_finalize(c->seq_st);
    EVP_PKEY_free(c->jwt_key);
    if (c->db) {
        sqlite3_close(c->db);
    }
    sf_schema_free(&c->schema);
    es_free(c);
    return rc;
}
