/* SPDX-License-Identifier: MIT */
/*
 * OAuth2 grants of the HTTP client against the Salesforce emulator: the JWT bearer grant
 * (an RS256 assertion signed with a private key from an environment variable; the emulator
 * verifies it with the public key given by --jwt-public-key) accepted, and refused for a key
 * the org does not know, a wrong user or a wrong audience; and refresh-token rotation
 * (--rotate-refresh-tokens: each refresh grant spends its token): the new token is used from
 * then on, saved 0600 to store_file, and preferred over the (now spent) environment variable
 * after a restart. The RSA keys are made here with OpenSSL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "connectors/connector.h"
#include "connectors/http.h"
#include "core/config.h"
#include "core/mem.h"
#include "sandbox_proc.h"

static struct sbproc g_sb;
static char g_pub[128], g_store[128];

/* A new RSA key: the private PEM into env var name, the public PEM into pub_path if given. */
static void make_key(const char *env, const char *pub_path)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    assert_non_null(k);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *pem = NULL;
    long n = BIO_get_mem_data(b, &pem);
    char *copy = es_xstrndup(pem, (size_t)n);
    setenv(env, copy, 1);
    es_free(copy);
    BIO_free(b);
    if (pub_path) {
        FILE *f = fopen(pub_path, "w");
        assert_non_null(f);
        assert_int_equal(PEM_write_PUBKEY(f, k), 1);
        fclose(f);
    }
    EVP_PKEY_free(k);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_pub, sizeof g_pub, "/tmp/es-conn-jwt-%d.pem", (int)getpid());
    snprintf(g_store, sizeof g_store, "/tmp/es-conn-rt-%d/refresh.token", (int)getpid());
    make_key("CONN_JWT_KEY", g_pub);
    make_key("CONN_JWT_OTHER_KEY", NULL);
    const char *extra[] = {"--seed",
                           "none",
                           "--jwt-public-key",
                           g_pub,
                           "--jwt-audience",
                           "https://test.salesforce.com",
                           "--rotate-refresh-tokens",
                           NULL};
    if (sbproc_start(&g_sb, "salesforce", extra) != 0) {
        fprintf(stderr, "cannot start the salesforce sandbox\n");
        return -1;
    }
    setenv("CONN_JWT_CLIENT", "demo", 1);
    setenv("CONN_JWT_USER", "demo", 1);
    setenv("CONN_JWT_NOBODY", "nobody", 1);
    setenv("CONN_RT_ID", "demo", 1);
    setenv("CONN_RT_SECRET", "demo", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sbproc_stop(&g_sb);
    unlink(g_pub);
    unlink(g_store);
    char dir[128];
    es_strlcpy(dir, g_store, sizeof dir);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
    es_http_token_cache_clear();
    return 0;
}

/* Opens system `name` of a config whose auth section is auth_yaml and pings it. */
static int ping_with(const char *auth_yaml, struct es_err *err)
{
    char yaml[2048];
    snprintf(
        yaml, sizeof yaml,
        "store: sqlite:/tmp/unused.db\n"
        "systems:\n"
        "  crm:\n"
        "    connector: salesforce\n"
        "    url: %s\n"
        "    timeout: 30s\n"
        "    auth:\n"
        "      %s\n"
        "  mem: {connector: memory}\n"
        "entities:\n"
        "  customer: {objects: {crm: Account, mem: Account}}\n"
        "flows:\n"
        "  f: {entity: customer, from: crm, to: mem, trigger: {poll: 1m}, map: {Name: Name}}\n",
        g_sb.url, auth_yaml);
    struct es_config *cfg = NULL;
    struct es_diags d;
    es_diags_init(&d);
    int rc = es_config_parse("auth.yaml", yaml, strlen(yaml), &cfg, &d);
    es_diags_print(&d, stderr);
    es_diags_release(&d);
    assert_int_equal(rc, ES_OK);
    struct es_conn *c = NULL;
    es_err_clear(err);
    rc = es_conn_open(es_config_system(cfg, "crm"), &c, err);
    if (rc == ES_OK) {
        rc = es_conn_ping(c, err);
    }
    es_conn_close(c);
    es_config_free(cfg);
    return rc;
}

static void test_jwt_bearer(void **state)
{
    (void)state;
    struct es_err err;
    long before = es_http_token_fetches();
    int rc = ping_with("oauth2_jwt_bearer: {client_id_env: CONN_JWT_CLIENT, user_env: "
                       "CONN_JWT_USER, private_key_env: CONN_JWT_KEY, audience: "
                       "\"https://test.salesforce.com\"}",
                       &err);
    if (rc != ES_OK) {
        fprintf(stderr, "jwt: %s\n", err.msg);
    }
    assert_int_equal(rc, ES_OK);
    assert_int_equal(es_http_token_fetches(), before + 1);
    es_http_token_cache_clear();

    /* a key the org does not hold */
    rc = ping_with("oauth2_jwt_bearer: {client_id_env: CONN_JWT_CLIENT, user_env: CONN_JWT_USER, "
                   "private_key_env: CONN_JWT_OTHER_KEY, audience: "
                   "\"https://test.salesforce.com\"}",
                   &err);
    assert_int_equal(rc, ES_EAUTH);
    assert_string_equal(err.remote_code, "invalid_grant");
    assert_non_null(strstr(err.remote_msg, "signature"));
    es_http_token_cache_clear();
    /* the default audience (production) is not this org's */
    rc = ping_with("oauth2_jwt_bearer: {client_id_env: CONN_JWT_CLIENT, user_env: CONN_JWT_USER, "
                   "private_key_env: CONN_JWT_KEY}",
                   &err);
    assert_int_equal(rc, ES_EAUTH);
    assert_non_null(strstr(err.remote_msg, "audience"));
    es_http_token_cache_clear();
    /* a user that has not approved the app */
    rc = ping_with("oauth2_jwt_bearer: {client_id_env: CONN_JWT_CLIENT, user_env: "
                   "CONN_JWT_NOBODY, private_key_env: CONN_JWT_KEY, audience: "
                   "\"https://test.salesforce.com\"}",
                   &err);
    assert_int_equal(rc, ES_EAUTH);
    es_http_token_cache_clear();
    /* not a key at all: a config error naming the variable, never its content */
    setenv("CONN_JWT_GARBAGE", "-----BEGIN PRIVATE KEY-----\nnot base64\n", 1);
    rc = ping_with("oauth2_jwt_bearer: {client_id_env: CONN_JWT_CLIENT, user_env: CONN_JWT_USER, "
                   "private_key_env: CONN_JWT_GARBAGE}",
                   &err);
    assert_int_equal(rc, ES_ECONFIG);
    assert_non_null(strstr(err.msg, "CONN_JWT_GARBAGE"));
    assert_null(strstr(err.msg, "not base64"));
    es_http_token_cache_clear();
}

/* A refresh token from the emulator's password grant. OUT: es_free(). */
static char *password_grant_refresh_token(void)
{
    struct es_http *h = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_http_new_plain(g_sb.url, 10000, 2000, 1u << 20, &h, &err), ES_OK);
    static const char form[] =
        "grant_type=password&client_id=demo&client_secret=demo&username=demo&password=demo";
    struct es_http_req_opts rq = {.method = "POST",
                                  .url = "/services/oauth2/token",
                                  .body = form,
                                  .body_len = sizeof form - 1,
                                  .content_type = "application/x-www-form-urlencoded"};
    json_t *j = NULL;
    assert_int_equal(es_http_json(h, &rq, NULL, &j, &err), ES_OK);
    char *rt = es_xstrdup(json_string_value(json_object_get(j, "refresh_token")));
    json_decref(j);
    es_http_free(h);
    return rt;
}

static char *read_store(void)
{
    FILE *f = fopen(g_store, "r");
    if (!f) {
        return NULL;
    }
    char buf[512] = "";
    char *ok = fgets(buf, sizeof buf, f);
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return ok ? es_xstrdup(buf) : NULL;
}

static void test_refresh_rotation(void **state)
{
    (void)state;
    char dir[128];
    es_strlcpy(dir, g_store, sizeof dir);
    *strrchr(dir, '/') = '\0';
    mkdir(dir, 0700);
    char *rt0 = password_grant_refresh_token();
    assert_non_null(rt0);
    setenv("CONN_RT_TOKEN", rt0, 1);
    char auth[512];
    snprintf(auth, sizeof auth,
             "oauth2_refresh_token: {id_env: CONN_RT_ID, secret_env: CONN_RT_SECRET, "
             "refresh_token_env: CONN_RT_TOKEN, store_file: \"%s\"}",
             g_store);
    struct es_err err;
    /* first start: the env token is used, the emulator rotates it, the new one is saved */
    assert_int_equal(ping_with(auth, &err), ES_OK);
    char *rt1 = read_store();
    assert_non_null(rt1);
    assert_true(strcmp(rt1, rt0) != 0);
    struct stat st;
    assert_int_equal(stat(g_store, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* the env token is spent now: without the store it would fail */
    es_http_token_cache_clear();
    assert_int_equal(ping_with("oauth2_refresh_token: {id_env: CONN_RT_ID, secret_env: "
                               "CONN_RT_SECRET, refresh_token_env: CONN_RT_TOKEN}",
                               &err),
                     ES_EAUTH);

    /* a restart (cache cleared): the stored token is preferred, and rotates again */
    es_http_token_cache_clear();
    assert_int_equal(ping_with(auth, &err), ES_OK);
    char *rt2 = read_store();
    assert_non_null(rt2);
    assert_true(strcmp(rt2, rt1) != 0);

    /* a relative store_file is refused by the config loader */
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "store: sqlite:/tmp/unused.db\n"
             "systems:\n"
             "  crm:\n"
             "    connector: salesforce\n"
             "    url: %s\n"
             "    auth:\n"
             "      oauth2_refresh_token: {refresh_token_env: CONN_RT_TOKEN, store_file: "
             "rt.txt}\n",
             g_sb.url);
    struct es_config *cfg = NULL;
    struct es_diags d;
    es_diags_init(&d);
    assert_int_equal(es_config_parse("rel.yaml", yaml, strlen(yaml), &cfg, &d), ES_ECONFIG);
    es_diags_release(&d);
    es_config_free(cfg);
    es_free(rt0);
    es_free(rt1);
    es_free(rt2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_bearer),
        cmocka_unit_test(test_refresh_rotation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
