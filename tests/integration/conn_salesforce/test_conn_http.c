/* SPDX-License-Identifier: MIT */
/*
 * The shared HTTP client against a real HTTP server on loopback (libmicrohttpd, in this
 * process) that answers what real systems answer on bad days: HTML maintenance pages, JSON
 * cut short, bodies past max_response, 429 with Retry-After, 503, slow answers, dropped
 * bodies, and OAuth2 tokens that expire or stop working. Every case must end in a clear,
 * classified error, never a crash; an expired token costs exactly one re-authentication.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <microhttpd.h>

#include "connectors/http.h"
#include "core/config.h"
#include "core/mem.h"

static struct MHD_Daemon *g_d;
static int g_port;
static int g_token_gen;  /* the valid token is "tok-<g_token_gen>" */
static int g_refuse_all; /* every API call answers 401 */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             const char *body, const char *h, const char *hv)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (ctype) {
        MHD_add_response_header(r, "Content-Type", ctype);
    }
    if (h) {
        MHD_add_response_header(r, h, hv);
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static ssize_t short_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= 10 || max < 10) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    memcpy(buf, "{\"records\"", 10);
    return 10;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload;
    if (!*con_cls) {
        *con_cls = c; /* first call: headers only */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/html") == 0) {
        return reply(c, 200, "text/html; charset=utf-8",
                     "<!DOCTYPE html><html><head><title>Scheduled Maintenance</title></head>"
                     "<body>Back soon</body></html>",
                     NULL, NULL);
    }
    if (strcmp(url, "/html502") == 0) {
        return reply(c, 502, "text/html",
                     "<html><head><title>502 Bad Gateway</title></head></html>", NULL, NULL);
    }
    if (strcmp(url, "/trunc") == 0) {
        return reply(c, 200, "application/json", "{\"records\":[{\"Id\":\"001\",\"Na", NULL, NULL);
    }
    if (strcmp(url, "/short") == 0) {
        struct MHD_Response *r =
            MHD_create_response_from_callback(1000, 64, short_reader, NULL, NULL);
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/big") == 0) {
        static char big[200001];
        if (!big[0]) {
            memset(big, ' ', sizeof big - 1);
            big[0] = '[';
            big[sizeof big - 2] = ']';
        }
        return reply(c, 200, "application/json", big, NULL, NULL);
    }
    if (strcmp(url, "/429") == 0) {
        return reply(c, 429, "application/json",
                     "[{\"errorCode\":\"REQUEST_LIMIT_EXCEEDED\",\"message\":\"slow down\"}]",
                     "Retry-After", "7");
    }
    if (strcmp(url, "/503") == 0) {
        return reply(c, 503, "text/plain", "busy", NULL, NULL);
    }
    if (strcmp(url, "/slow") == 0) {
        struct timespec ts = {1, 500000000L};
        nanosleep(&ts, NULL);
        return reply(c, 200, "application/json", "{}", NULL, NULL);
    }
    if (strcmp(url, "/ok") == 0) {
        return reply(c, 200, "application/json", "{\"ok\":true}", "X-Custom", "yes");
    }
    if (strcmp(url, "/token") == 0 && strcmp(method, "POST") == 0) {
        char body[128];
        g_token_gen++;
        snprintf(body, sizeof body, "{\"access_token\":\"tok-%d\",\"token_type\":\"Bearer\"}",
                 g_token_gen);
        return reply(c, 200, "application/json", body, NULL, NULL);
    }
    if (strcmp(url, "/api") == 0) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        char want[64];
        snprintf(want, sizeof want, "Bearer tok-%d", g_token_gen);
        if (g_refuse_all || !auth || strcmp(auth, want) != 0) {
            return reply(c, 401, "application/json",
                         "[{\"message\":\"Session expired or invalid\",\"errorCode\":"
                         "\"INVALID_SESSION_ID\"}]",
                         "WWW-Authenticate", "Token");
        }
        return reply(c, 200, "application/json", "{\"done\":true}", NULL, NULL);
    }
    return reply(c, 404, "application/json", "[]", NULL, NULL);
}

static int setup(void **state)
{
    (void)state;
    g_d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                           NULL, handler, NULL, MHD_OPTION_END);
    if (!g_d) {
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(g_d, MHD_DAEMON_INFO_BIND_PORT);
    g_port = di->port;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(g_d);
    es_http_token_cache_clear();
    return 0;
}

static struct es_http *client(size_t max_response, long timeout_ms)
{
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", g_port);
    struct es_http *h = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_http_new_plain(base, timeout_ms, 2000, max_response, &h, &err), ES_OK);
    return h;
}

static int get_json(struct es_http *h, const char *path, struct es_err *err)
{
    struct es_http_req_opts rq = {.method = "GET", .url = path};
    json_t *j = NULL;
    es_err_clear(err);
    int rc = es_http_json(h, &rq, NULL, &j, err);
    json_decref(j);
    return rc;
}

static void test_success_and_headers(void **state)
{
    (void)state;
    struct es_http *h = client(1 << 20, 5000);
    struct es_http_req_opts rq = {.method = "GET", .url = "/ok"};
    struct es_http_resp resp;
    es_http_resp_init(&resp, h);
    json_t *j = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_http_json(h, &rq, &resp, &j, &err), ES_OK);
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_string_equal(es_http_resp_header(&resp, "x-custom"), "yes");
    assert_string_equal(es_http_resp_header(&resp, "X-CUSTOM"), "yes");
    assert_null(es_http_resp_header(&resp, "x-missing"));
    assert_int_equal(resp.status, 200);
    json_decref(j);
    es_http_resp_release(&resp);
    es_http_free(h);
}

static void test_malformed_answers(void **state)
{
    (void)state;
    struct es_http *h = client(64 * 1024, 5000);
    struct es_err err;
    assert_int_equal(get_json(h, "/html", &err), ES_EPROTOCOL);
    assert_non_null(strstr(err.msg, "HTML page where JSON was expected"));
    assert_non_null(strstr(err.msg, "Scheduled Maintenance"));
    assert_int_equal(get_json(h, "/html502", &err), ES_EREMOTE);
    assert_int_equal(err.http_status, 502);
    assert_non_null(strstr(err.msg, "502 Bad Gateway"));
    assert_int_equal(get_json(h, "/trunc", &err), ES_EPROTOCOL);
    assert_non_null(strstr(err.msg, "invalid JSON"));
    int rc = get_json(h, "/short", &err);
    assert_true(rc == ES_EPROTOCOL || rc == ES_EIO);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(get_json(h, "/big", &err), ES_EPROTOCOL);
    assert_non_null(strstr(err.msg, "max_response"));
    /* the client still works after all that */
    assert_int_equal(get_json(h, "/ok", &err), ES_OK);
    es_http_free(h);
}

static void test_classification(void **state)
{
    (void)state;
    struct es_http *h = client(1 << 20, 500);
    struct es_err err;
    assert_int_equal(get_json(h, "/429", &err), ES_ERATELIMIT);
    assert_true(err.retry_after == 7.0);
    assert_int_equal(err.http_status, 429);
    assert_int_equal(get_json(h, "/503", &err), ES_EREMOTE);
    assert_int_equal(get_json(h, "/nope", &err), ES_ENOTFOUND);
    assert_int_equal(get_json(h, "/slow", &err), ES_ETIMEOUT);
    es_http_free(h);
    /* nothing listens on port 9 of loopback */
    struct es_http *dead = NULL;
    es_err_clear(&err);
    assert_int_equal(es_http_new_plain("http://127.0.0.1:9", 1000, 500, 1024, &dead, &err), ES_OK);
    assert_int_equal(get_json(dead, "/x", &err), ES_EIO);
    es_http_free(dead);
}

static struct es_http *oauth_client(void)
{
    static struct es_system_cfg cfg;
    static char url[64];
    memset(&cfg, 0, sizeof cfg);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", g_port);
    setenv("CONN_HTTP_ID", "client-id-1", 1);
    setenv("CONN_HTTP_SECRET", "s3cret-value", 1);
    cfg.name = "crm";
    cfg.url = url;
    cfg.timeout_ms = 5000;
    cfg.connect_timeout_ms = 1000;
    cfg.max_response = 1 << 20;
    cfg.verify_tls = 1;
    cfg.auth.method = "oauth2_client_credentials";
    cfg.auth.oauth2_client_credentials.id_env = "CONN_HTTP_ID";
    cfg.auth.oauth2_client_credentials.secret_env = "CONN_HTTP_SECRET";
    cfg.auth.oauth2_client_credentials.token_path = "/token";
    struct es_http *h = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_http_new(&cfg, &h, &err), ES_OK);
    return h;
}

static void test_oauth_reauth_once(void **state)
{
    (void)state;
    es_http_token_cache_clear();
    struct es_http *h = oauth_client();
    struct es_err err;
    long f0 = es_http_token_fetches();
    assert_int_equal(get_json(h, "/api", &err), ES_OK);
    assert_int_equal(get_json(h, "/api", &err), ES_OK);
    assert_int_equal(es_http_token_fetches(), f0 + 1); /* cached */
    /* a second instance of the same system shares the token */
    struct es_http *h2 = oauth_client();
    assert_int_equal(get_json(h2, "/api", &err), ES_OK);
    assert_int_equal(es_http_token_fetches(), f0 + 1);
    /* the server forgets the token: one 401, one new token, the call succeeds */
    g_token_gen += 10;
    assert_int_equal(get_json(h, "/api", &err), ES_OK);
    assert_int_equal(es_http_token_fetches(), f0 + 2);
    assert_int_equal(get_json(h2, "/api", &err), ES_OK); /* picks up the new one */
    assert_int_equal(es_http_token_fetches(), f0 + 2);
    /* credentials that never work: exactly one re-authentication, then auth */
    g_refuse_all = 1;
    assert_int_equal(get_json(h, "/api", &err), ES_EAUTH);
    assert_int_equal(es_http_token_fetches(), f0 + 3);
    assert_int_equal(err.http_status, 401);
    assert_null(strstr(err.msg, "s3cret-value"));
    assert_null(strstr(err.msg, "tok-"));
    g_refuse_all = 0;
    es_http_free(h);
    es_http_free(h2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_and_headers),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_classification),
        cmocka_unit_test(test_oauth_reauth_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
