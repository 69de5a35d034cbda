/* SPDX-License-Identifier: MIT */
/*
 * Config loader tests: valid files load into the typed structs; each invalid file yields
 * an error at the exact FILE:LINE:COL with the expected message; several errors are
 * collected at once; secrets are only env names; the examples validate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"

static const char *const valid_yaml =
    "store: sqlite:state.db\n"                                                  /* 1 */
    "server: {listen: 127.0.0.1:8089, admin_token_env: ADMIN_TOKEN}\n"          /* 2 */
    "systems:\n"                                                                /* 3 */
    "  crm:\n"                                                                  /* 4 */
    "    connector: salesforce\n"                                               /* 5 */
    "    url: http://127.0.0.1:8701\n"                                          /* 6 */
    "    auth:\n"                                                               /* 7 */
    "      oauth2_client_credentials: {id_env: SF_ID, secret_env: SF_SECRET}\n" /* 8 */
    "    webhook: {path: /hooks/crm, hmac_secret_env: SF_HOOK}\n"               /* 9 */
    "  erp:\n"                                                                  /* 10 */
    "    connector: tryton\n"                                                   /* 11 */
    "    url: http://127.0.0.1:8000\n"                                          /* 12 */
    "    database: erp\n"                                                       /* 13 */
    "    auth: {login_env: T_USER, password_env: T_PASS}\n"                     /* 14 */
    "tables:\n"                                                                 /* 15 */
    "  countries: {Germany: DE, France: FR}\n"                                  /* 16 */
    "entities:\n"                                                               /* 17 */
    "  customer:\n"                                                             /* 18 */
    "    objects: {crm: Account, erp: party.party}\n"                           /* 19 */
    "    system_of_record: erp\n"                                               /* 20 */
    "    conflict: review\n"                                                    /* 21 */
    "    fields_owned_by: {crm: [Phone, Website]}\n"                            /* 22 */
    "    duplicates: {match: [name, postal_code], threshold: 0.8}\n"            /* 23 */
    "flows:\n"                                                                  /* 24 */
    "  customer-to-erp:\n"                                                      /* 25 */
    "    entity: customer\n"                                                    /* 26 */
    "    from: crm\n"                                                           /* 27 */
    "    to: erp\n"                                                             /* 28 */
    "    batch_size: 50\n"                                                      /* 29 */
    "    trigger: {realtime: true, poll: 15m}\n"                                /* 30 */
    "    map:\n"                                                                /* 31 */
    "      name: {from: Name, max_length: 80, required: true}\n"                /* 32 */
    "      addresses[0].country: {from: BillingCountry, table: countries}\n"    /* 33 */
    "      code: Id\n";                                                         /* 34 */

static struct es_config *load_ok(const char *text)
{
    struct es_diags d;
    es_diags_init(&d);
    struct es_config *cfg = NULL;
    int rc = es_config_parse("t.yaml", text, strlen(text), &cfg, &d);
    if (rc != ES_OK) {
        es_diags_print(&d, stderr);
    }
    assert_int_equal(rc, ES_OK);
    assert_int_equal(d.errors, 0);
    es_diags_release(&d);
    return cfg;
}

static void test_valid_file_fills_structs(void **state)
{
    (void)state;
    struct es_config *cfg = load_ok(valid_yaml);
    assert_string_equal(cfg->store, "sqlite:state.db");
    assert_string_equal(cfg->server.listen, "127.0.0.1:8089");
    assert_string_equal(cfg->server.admin_token_env, "ADMIN_TOKEN");
    assert_int_equal(cfg->server.max_body, 1 << 20);
    assert_int_equal(cfg->nsystems, 2);
    const struct es_system_cfg *crm = es_config_system(cfg, "crm");
    assert_non_null(crm);
    assert_string_equal(crm->connector, "salesforce");
    assert_string_equal(crm->auth.method, "oauth2_client_credentials");
    assert_string_equal(crm->auth.oauth2_client_credentials.id_env, "SF_ID");
    assert_string_equal(crm->webhook.path, "/hooks/crm");
    assert_string_equal(crm->webhook.signature_header, "X-Erpsync-Signature");
    assert_int_equal(crm->timeout_ms, 30000);
    assert_true(crm->verify_tls);
    const struct es_system_cfg *erp = es_config_system(cfg, "erp");
    assert_string_equal(erp->auth.method, "login");
    assert_string_equal(erp->database, "erp");
    const struct es_table_cfg *t = es_config_table(cfg, "countries");
    assert_non_null(t);
    assert_int_equal(t->count, 2);
    assert_string_equal(t->keys[1], "France");
    assert_string_equal(t->values[1], "FR");
    const struct es_entity_cfg *e = es_config_entity(cfg, "customer");
    assert_non_null(e);
    assert_string_equal(es_entity_object(e, "erp"), "party.party");
    assert_int_equal(e->conflict, ES_CONFLICT_REVIEW);
    assert_int_equal(e->nowned, 1);
    assert_int_equal(e->owned[0].fields.count, 2);
    assert_string_equal(e->owned[0].fields.items[1], "Website");
    assert_int_equal(e->duplicates.match.count, 2);
    assert_true(e->duplicates.threshold > 0.79 && e->duplicates.threshold < 0.81);
    const struct es_flow_cfg *f = es_config_flow(cfg, "customer-to-erp");
    assert_non_null(f);
    assert_int_equal(f->batch_size, 50);
    assert_true(f->trigger.realtime);
    assert_int_equal(f->trigger.poll_ms, 15 * 60 * 1000);
    assert_null(f->trigger.batch);
    assert_string_equal(f->source_object, "Account");
    assert_string_equal(f->target_object, "party.party");
    assert_int_equal(f->from_idx, 0);
    assert_int_equal(f->to_idx, 1);
    assert_int_equal(f->map->count, 3);
    assert_int_equal(f->retry.max_attempts, 8);
    assert_true(f->enabled);
    es_config_free(cfg);
}

/* Replaces line `line` (1-based) of valid_yaml by `with` (may hold several lines). */
static char *patch(int line, const char *with)
{
    size_t cap = strlen(valid_yaml) + strlen(with) + 2;
    char *out = malloc(cap); /* checksrc: ok (test) */
    const char *p = valid_yaml;
    size_t off = 0;
    for (int l = 1; *p; l++) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (l == line) {
            off += (size_t)snprintf(out + off, cap - off, "%s\n", with);
        } else {
            memcpy(out + off, p, n);
            off += n;
        }
        p += n;
    }
    out[off] = '\0';
    return out;
}

struct bad_case {
    int line;         /* line to replace (0 = use text as the whole file) */
    const char *with; /* replacement */
    int err_line, err_col;
    const char *msg; /* expected substring of the first error */
};

static const struct bad_case bad_cases[] = {
    /* 1 unknown key with suggestion */
    {29, "    batchsize: 50", 29, 5,
     "flow 'customer-to-erp': unknown key 'batchsize' (did you mean 'batch_size'?)"},
    /* 2 unknown top-level key */
    {1, "stor: sqlite:x.db", 1, 1, "unknown key 'stor' (did you mean 'store'?)"},
    /* 3 bad connector with suggestion */
    {5, "    connector: salesforse", 5, 16, "got 'salesforse' (did you mean 'salesforce'?)"},
    /* 4 flow names unknown entity */
    {26, "    entity: client", 26, 13, "flow 'customer-to-erp': unknown entity 'client'"},
    /* 5 flow names unknown system */
    {27, "    from: hubspot", 27, 11, "unknown system 'hubspot' in 'from'"},
    /* 6 entity has no object for a system the flow uses */
    {19, "    objects: {crm: Account}", 28, 9,
     "entity 'customer' names no object for system 'erp'"},
    /* 7 bad duration */
    {30, "    trigger: {poll: 15 minutes}", 30, 21, "'poll' must be a duration like 30s, 15m"},
    /* 8 bad cron: 6 fields */
    {30, "    trigger: {batch: \"0 2 * * * *\"}", 30, 33, "a cron expression has 5 fields"},
    /* 9 bad cron field value */
    {30, "    trigger: {batch: \"61 2 * * *\"}", 30, 23, "minute: '61' is outside 0-59"},
    /* 10 empty trigger */
    {30, "    trigger: {}", 30, 14, "trigger needs realtime: true, poll: DURATION or batch: CRON"},
    /* 11 secret in the file */
    {14, "    auth: {login_env: T_USER, password: hunter2}", 14, 31,
     "'password' cannot hold a secret in the file"},
    /* 12 env name with invalid characters */
    {14, "    auth: {login_env: T_USER, password_env: \"my pass\"}", 14, 45,
     "'password_env' names an environment variable"},
    /* 13 missing required key */
    {26, "    entit: customer", 26, 5, "unknown key 'entit' (did you mean 'entity'?)"},
    /* 14 map rule unknown key */
    {32, "      name: {from: Name, max_lenght: 80}", 32, 26,
     "map rule 'name': unknown key 'max_lenght' (did you mean 'max_length'?)"},
    /* 15 map rule with two sources */
    {32, "      name: {from: Name, const: x}", 32, 13, "takes one of from, const, expr"},
    /* 16 unknown table */
    {33, "      addresses[0].country: {from: BillingCountry, table: pays}", 33, 59,
     "unknown table 'pays' (tables: countries)"},
    /* 17 integer out of range */
    {29, "    batch_size: 0", 29, 17, "'batch_size' must be between 1 and 100000, got 0"},
    /* 18 wrong type: boolean */
    {30, "    trigger: {realtime: maybe}", 30, 25, "'realtime' must be true or false, got 'maybe'"},
    /* 19 bad conflict policy */
    {21, "    conflict: newest", 21, 15,
     "'conflict' must be one of: source_of_record, last_write_wins, review"},
    /* 20 bad url scheme */
    {6, "    url: ftp://127.0.0.1", 6, 10, "url must start with http:// or https://"},
    /* 21 YAML syntax error */
    {32, "      name: {from: Name", 33, 16,
     "YAML syntax error: did not find expected ',' or '}' while parsing a flow mapping (which "
     "started at line 32, column 13)"},
    /* 22 duplicate key */
    {29, "    from: crm", 29, 5, "duplicate key 'from' (first defined at line 27)"},
    /* 23 section of the wrong kind */
    {2, "server: 8089", 2, 9, "'server' must be a mapping, not a scalar"},
    /* 24 two auth methods */
    {14, "    auth: {login_env: T_USER, password_env: T_PASS, bearer_token_env: TOK}", 14, 11,
     "choose one authentication method, found 2"},
    /* 25 store kind */
    {1, "store: mysql://x", 1, 8, "store must be sqlite:PATH or postgres://"},
    /* 26 flow to itself */
    {28, "    to: crm", 28, 9, "source and target are the same system"},
    /* 27 webhook path collides */
    {9, "    webhook: {path: /metrics}", 9, 21, "collides with erpsync's own endpoints"},
    /* 28 entity unknown system of record */
    {20, "    system_of_record: sap", 20, 23, "system_of_record 'sap' is not a system"},
    /* 29 threshold out of range */
    {23, "    duplicates: {match: [name], threshold: 1.5}", 23, 44,
     "'threshold' must be between 0 and 1"},
    /* 30 map not a mapping */
    {22, "    fields_owned_by: {crm: Phone}", 22, 28,
     "entity 'customer': fields_owned_by of 'crm' must be a list of fields"},
};

static void test_invalid_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        char *text = patch(c->line, c->with);
        struct es_diags d;
        es_diags_init(&d);
        struct es_config *cfg = NULL;
        int rc = es_config_parse("bad.yaml", text, strlen(text), &cfg, &d);
        if (rc != ES_ECONFIG || d.count == 0 || d.items[0].line != c->err_line ||
            d.items[0].col != c->err_col || !strstr(d.items[0].msg, c->msg)) {
            fprintf(stderr, "case %zu: expected %d:%d '%s', got:\n", i + 1, c->err_line, c->err_col,
                    c->msg);
            es_diags_print(&d, stderr);
        }
        if (getenv("ES_TEST_LIST")) {
            es_diags_release(&d);
            free(text); /* checksrc: ok (test) */
            continue;
        }
        assert_int_equal(rc, ES_ECONFIG);
        assert_null(cfg);
        assert_true(d.count > 0);
        assert_string_equal(d.items[0].file, "bad.yaml");
        assert_int_equal(d.items[0].line, c->err_line);
        assert_int_equal(d.items[0].col, c->err_col);
        assert_non_null(strstr(d.items[0].msg, c->msg));
        es_diags_release(&d);
        free(text); /* checksrc: ok (test) */
    }
}

static void test_collects_several_errors(void **state)
{
    (void)state;
    const char *text = "systems:\n"
                       "  a: {connector: csv, timeout: soon}\n"
                       "  b: {connector: memory, verify_tls: perhaps}\n"
                       "entities:\n"
                       "  e: {objects: {a: X, b: Y}, conflict: newest}\n"
                       "flows:\n"
                       "  f: {entity: e, from: a, to: b, trigger: {poll: 1x}, map: {x: y}}\n";
    struct es_diags d;
    es_diags_init(&d);
    struct es_config *cfg = NULL;
    assert_int_equal(es_config_parse("m.yaml", text, strlen(text), &cfg, &d), ES_ECONFIG);
    assert_int_equal(d.errors, 4);
    assert_int_equal(d.items[0].line, 2);
    assert_int_equal(d.items[1].line, 3);
    assert_int_equal(d.items[2].line, 5);
    assert_int_equal(d.items[3].line, 7);
    es_diags_release(&d);
}

static void test_caret_rendering(void **state)
{
    (void)state;
    char *text = patch(29, "    batchsize: 50");
    struct es_diags d;
    es_diags_init(&d);
    struct es_config *cfg = NULL;
    assert_int_equal(es_config_parse("r.yaml", text, strlen(text), &cfg, &d), ES_ECONFIG);
    char out[2048];
    FILE *f = fmemopen(out, sizeof out, "w");
    es_diags_print(&d, f);
    fclose(f);
    assert_non_null(strstr(out, "r.yaml:29:5: error: flow 'customer-to-erp': unknown key "
                                "'batchsize' (did you mean 'batch_size'?)\n"));
    assert_non_null(strstr(out, "   29 |     batchsize: 50\n      |     ^\n"));
    es_diags_release(&d);
    free(text); /* checksrc: ok (test) */
}

static void test_env_check_names_never_values(void **state)
{
    (void)state;
    struct es_config *cfg = load_ok(valid_yaml);
    unsetenv("SF_ID");
    setenv("SF_SECRET", "s3cr3t-value", 1);
    unsetenv("SF_HOOK");
    setenv("T_USER", "crm", 1);
    setenv("T_PASS", "tryton-pass", 1);
    setenv("ADMIN_TOKEN", "admin-token-123", 1);
    struct es_diags d;
    es_diags_init(&d);
    int missing = es_config_check_env(cfg, &d, ES_DIAG_ERROR);
    assert_int_equal(missing, 2);
    assert_int_equal(d.errors, 2);
    assert_non_null(strstr(d.items[0].msg, "SF_ID"));
    assert_non_null(strstr(d.items[1].msg, "SF_HOOK"));
    for (size_t i = 0; i < d.count; i++) {
        assert_null(strstr(d.items[i].msg, "s3cr3t"));
    }
    assert_string_equal(es_config_secret("SF_SECRET"), "s3cr3t-value");
    assert_null(es_config_secret("SF_ID"));
    es_diags_release(&d);
    es_config_free(cfg);
}

static void test_examples_validate(void **state)
{
    (void)state;
    const char *src = getenv("ES_SOURCE_DIR");
    assert_non_null(src);
    const char *files[] = {"examples/salesforce-sap.yaml", "examples/salesforce-tryton.yaml"};
    for (size_t i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", src, files[i]);
        struct es_diags d;
        es_diags_init(&d);
        struct es_config *cfg = NULL;
        int rc = es_config_load(path, &cfg, &d);
        es_diags_print(&d, stderr);
        assert_int_equal(rc, ES_OK);
        assert_int_equal(cfg->nflows, 6);
        es_config_free(cfg);
        es_diags_release(&d);
    }
}

static void test_shorthand_and_anchors(void **state)
{
    (void)state;
    const char *text =
        "systems:\n"
        "  a: &sys {connector: memory}\n"
        "  b: *sys\n"
        "entities:\n"
        "  e: {objects: {a: X, b: Y}}\n"
        "flows:\n"
        "  f: {entity: e, from: a, to: b, trigger: {batch: \"*/15 8-18 * * MON-FRI\"},"
        " map: {x: y, z: {const: 1}}}\n";
    struct es_config *cfg = load_ok(text);
    assert_string_equal(cfg->systems[1].connector, "memory");
    assert_int_equal(cfg->flows[0].trigger.cron.minute,
                     (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
    assert_int_equal(cfg->flows[0].trigger.cron.dow, 0x3e);
    es_config_free(cfg);
}

static void test_check_keys(void **state)
{
    (void)state;
    const char *text = "systems:\n  a: {connector: memory, options: {fail_evry: 3, file: x}}\n"
                       "entities: {e: {objects: {a: X}}}\nflows: {}\n";
    struct es_doc *doc = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_doc_parse("k.yaml", text, strlen(text), &doc, NULL, NULL, &err), ES_OK);
    const struct es_node *opts =
        es_node_get(es_node_get(es_node_get(doc->root, "systems"), "a"), "options");
    static const char *const allowed[] = {"fail_every", "file", NULL};
    assert_int_equal(es_cfg_check_keys(opts, allowed, "memory options", &err), ES_ECONFIG);
    assert_string_equal(err.msg, "k.yaml:2:36: unknown key 'fail_evry' in memory options (did "
                                 "you mean 'fail_every'?)");
    es_err_clear(&err);
    static const char *const all[] = {"fail_evry", "file", NULL};
    assert_int_equal(es_cfg_check_keys(opts, all, "memory options", &err), ES_OK);
    assert_int_equal(es_cfg_check_keys(NULL, all, "memory options", &err), ES_OK);
    es_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file_fills_structs),
        cmocka_unit_test(test_invalid_files),
        cmocka_unit_test(test_collects_several_errors),
        cmocka_unit_test(test_caret_rendering),
        cmocka_unit_test(test_env_check_names_never_values),
        cmocka_unit_test(test_examples_validate),
        cmocka_unit_test(test_shorthand_and_anchors),
        cmocka_unit_test(test_check_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
