/* SPDX-License-Identifier: MIT */
/*
 * Integration test of the Salesforce emulator through raw HTTP (libcurl): starts
 * `erpsync-sandbox salesforce` on a free loopback port with a temporary state file and a
 * webhook receiver of its own (libmicrohttpd), then checks the wire behaviour: OAuth, 401,
 * CRUD, upserts, collections, composite, SOQL with pagination, describe, validation, the
 * duplicate rule, limits, Bulk API 2.0, signed change events, Outbound Messages with retry,
 * fault injection, admin endpoints and a burst of requests from several threads.
 * Usage: test_sandbox_sf PATH/TO/erpsync-sandbox PATH/TO/sf_schema.json
 */
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "server/webhook.h"

static int failures, checks;

/* Prints how long each part took (information only, never asserted). */
static void lap(const char *what)
{
    static struct timespec last;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (last.tv_sec) {
        fprintf(stderr, "  %-14s %.2fs\n", what,
                (double)(now.tv_sec - last.tv_sec) + (double)(now.tv_nsec - last.tv_nsec) / 1e9);
    }
    last = now;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static const char *g_bin, *g_schema;
static char g_tmp[256];

/* ---- HTTP client ---- */

struct resp {
    long status;
    int curl_rc;
    struct es_buf body, headers;
    json_t *json;
};

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
    es_buf_append(data, p, size * n);
    return size * n;
}

static void resp_free(struct resp *r)
{
    es_buf_release(&r->body);
    es_buf_release(&r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* Header value (case-insensitive) into out; 0 when absent. */
static int resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
    const char *p = r->headers.data;
    size_t nl = strlen(name);
    while (p && *p) {
        const char *e = strstr(p, "\r\n");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') {
                v++;
            }
            size_t vl = len - (size_t)(v - p);
            vl = vl < cap - 1 ? vl : cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
        p = e ? e + 2 : NULL;
    }
    return 0;
}

/* One request. headers: NULL-terminated list of "Name: value". */
static void http(CURL *h, const char *method, const char *url, const char *const *headers,
                 const char *body, size_t len, struct resp *r)
{
    memset(r, 0, sizeof *r);
    es_buf_init(&r->body, 0);
    es_buf_init(&r->headers, 0);
    struct curl_slist *hl = NULL;
    for (const char *const *p = headers; p && *p; p++) {
        hl = curl_slist_append(hl, *p);
    }
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    r->curl_rc = (int)curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    if (r->body.len) {
        r->json = json_loadb(r->body.data, r->body.len, JSON_DECODE_ANY, NULL);
    }
}

/* ---- the sandbox process ---- */

struct sandbox {
    pid_t pid;
    int port;
    char base[64];  /* http://127.0.0.1:PORT */
    char data[128]; /* base + /services/data/v60.0 */
    char token[256];
    char auth[300];
};

static int sandbox_start(struct sandbox *sb, const char *dbname, const char *const *extra)
{
    char db[400];
    snprintf(db, sizeof db, "%s/%s", g_tmp, dbname);
    const char *argv[40];
    int n = 0;
    argv[n++] = g_bin;
    argv[n++] = "salesforce";
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--db";
    argv[n++] = db;
    argv[n++] = "--schema";
    argv[n++] = g_schema;
    for (const char *const *p = extra; p && *p && n < 38; p++) {
        argv[n++] = *p;
    }
    argv[n] = NULL;
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(g_bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[300] = "";
    if (!f || !fgets(line, sizeof line, f)) {
        fprintf(stderr, "sandbox did not start\n");
        if (f) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    const char *colon = strrchr(line, ':');
    memset(sb, 0, sizeof *sb);
    sb->pid = pid;
    sb->port = colon ? (int)strtol(colon + 1, NULL, 10) : 0;
    snprintf(sb->base, sizeof sb->base, "http://127.0.0.1:%d", sb->port);
    snprintf(sb->data, sizeof sb->data, "%s/services/data/v60.0", sb->base);
    return sb->port > 0 ? 0 : -1;
}

static void sandbox_stop(struct sandbox *sb)
{
    if (sb->pid > 0) {
        kill(sb->pid, SIGTERM);
        int st = 0;
        waitpid(sb->pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sandbox exit status %d", st);
        sb->pid = 0;
    }
}

static void login(CURL *h, struct sandbox *sb)
{
    struct resp r;
    char url[200];
    snprintf(url, sizeof url, "%s/services/oauth2/token", sb->base);
    const char *form = "grant_type=client_credentials&client_id=demo&client_secret=demo";
    http(h, "POST", url, NULL, form, strlen(form), &r);
    const char *tok = json_string_value(json_object_get(r.json, "access_token"));
    CHECK(r.status == 200 && tok, "token: %ld %s", r.status, r.body.data);
    snprintf(sb->token, sizeof sb->token, "%s", tok ? tok : "");
    snprintf(sb->auth, sizeof sb->auth, "Authorization: Bearer %s", sb->token);
    resp_free(&r);
}

/* API call with the bearer token and JSON content type; path is below /services/data/v60.0. */
static void api(CURL *h, struct sandbox *sb, const char *method, const char *path, const char *body,
                struct resp *r)
{
    char url[8192];
    snprintf(url, sizeof url, "%s%s", sb->data, path);
    const char *hdrs[] = {sb->auth, "Content-Type: application/json", NULL};
    http(h, method, url, hdrs, body, body ? strlen(body) : 0, r);
}

static const char *jstr(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

static const char *err_code(json_t *arr)
{
    return jstr(json_array_get(arr, 0), "errorCode");
}

static int is_sf_id(const char *id, const char *prefix)
{
    static const char map[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    if (strlen(id) != 18 || strncmp(id, prefix, 3) != 0) {
        return 0;
    }
    for (int chunk = 0; chunk < 3; chunk++) {
        int v = 0;
        for (int i = 0; i < 5; i++) {
            char ch = id[chunk * 5 + i];
            if (ch >= 'A' && ch <= 'Z') {
                v |= 1 << i;
            }
        }
        if (id[15 + chunk] != map[v]) {
            return 0;
        }
    }
    return 1;
}

/* "2026-11-27T19:00:00.123+0000" */
static int is_sf_datetime(const char *s)
{
    return strlen(s) == 28 && s[10] == 'T' && s[19] == '.' && strcmp(s + 23, "+0000") == 0;
}

/* ---- webhook receiver ---- */

struct received {
    char path[64];
    char *body;
    size_t len;
    char sig[100];
};

static pthread_mutex_t g_rmu = PTHREAD_MUTEX_INITIALIZER;
static struct received g_recv[4096];
static int g_nrecv;
static int g_om_fail_first = 1; /* the first OM about "Event Source Ltd" gets a 500 */

struct upload {
    struct es_buf b;
};

static enum MHD_Result on_hook(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **ctx)
{
    (void)cls;
    (void)method;
    (void)version;
    struct upload *u = *ctx;
    if (!u) {
        u = es_xcalloc(1, sizeof *u);
        es_buf_init(&u->b, 0);
        *ctx = u;
        return MHD_YES;
    }
    if (*size) {
        es_buf_append(&u->b, data, *size);
        *size = 0;
        return MHD_YES;
    }
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Erpsync-Signature");
    int fail = 0;
    pthread_mutex_lock(&g_rmu);
    if (g_nrecv < (int)(sizeof g_recv / sizeof g_recv[0])) {
        struct received *r = &g_recv[g_nrecv++];
        snprintf(r->path, sizeof r->path, "%s", url);
        r->len = u->b.len;
        r->body = es_xstrndup(u->b.data ? u->b.data : "", u->b.len);
        snprintf(r->sig, sizeof r->sig, "%s", sig ? sig : "");
    }
    if (strcmp(url, "/om") == 0 && g_om_fail_first && u->b.data &&
        strstr(u->b.data, "Event Source Ltd")) {
        g_om_fail_first = 0;
        fail = 1;
    }
    pthread_mutex_unlock(&g_rmu);
    const char *ack = strcmp(url, "/om") == 0 ? es_webhook_outbound_ack : "{}";
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        fail ? 5 : strlen(ack), (void *)(fail ? "oops!" : ack), MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, fail ? 500 : 200, mr);
    MHD_destroy_response(mr);
    return ret;
}

static void on_hook_done(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    struct upload *u = *ctx;
    if (u) {
        es_buf_release(&u->b);
        es_free(u);
    }
}

/* Waits up to 30 s for a received request on path whose body contains needle; returns its
 * index or -1. */
static int wait_for(const char *path, const char *needle, int min_count)
{
    for (int tries = 0; tries < 600; tries++) {
        int found = -1, count = 0;
        pthread_mutex_lock(&g_rmu);
        for (int i = 0; i < g_nrecv; i++) {
            if (strcmp(g_recv[i].path, path) == 0 && strstr(g_recv[i].body, needle)) {
                count++;
                found = i;
            }
        }
        pthread_mutex_unlock(&g_rmu);
        if (found >= 0 && count >= min_count) {
            return found;
        }
        usleep(50000);
    }
    return -1;
}

/* ---- the checks ---- */

static void test_oauth(CURL *h, struct sandbox *sb)
{
    struct resp r;
    char url[200];
    snprintf(url, sizeof url, "%s/services/oauth2/token", sb->base);
    const char *cc = "grant_type=client_credentials&client_id=demo&client_secret=demo";
    http(h, "POST", url, NULL, cc, strlen(cc), &r);
    CHECK(r.status == 200, "status %ld", r.status);
    const char *issued = jstr(r.json, "issued_at");
    CHECK(strlen(issued) == 13 && strspn(issued, "0123456789") == 13, "issued_at '%s'", issued);
    CHECK(strcmp(jstr(r.json, "token_type"), "Bearer") == 0, "token_type");
    CHECK(strncmp(jstr(r.json, "instance_url"), sb->base, strlen(sb->base)) == 0, "instance_url %s",
          jstr(r.json, "instance_url"));
    CHECK(strstr(jstr(r.json, "id"), "/id/00D") != NULL, "id %s", jstr(r.json, "id"));
    CHECK(strlen(jstr(r.json, "signature")) == 44, "signature");
    CHECK(!json_object_get(r.json, "refresh_token"), "client_credentials gives no refresh token");
    CHECK(!json_object_get(r.json, "expires_in"), "no expires_in");
    resp_free(&r);

    const char *bad = "grant_type=client_credentials&client_id=demo&client_secret=nope";
    http(h, "POST", url, NULL, bad, strlen(bad), &r);
    CHECK(r.status == 400 && strcmp(jstr(r.json, "error"), "invalid_client") == 0, "%s",
          r.body.data);
    resp_free(&r);
    const char *badid = "grant_type=client_credentials&client_id=x&client_secret=demo";
    http(h, "POST", url, NULL, badid, strlen(badid), &r);
    CHECK(r.status == 400 && strcmp(jstr(r.json, "error"), "invalid_client_id") == 0, "%s",
          r.body.data);
    resp_free(&r);
    const char *ug = "grant_type=magic&client_id=demo";
    http(h, "POST", url, NULL, ug, strlen(ug), &r);
    CHECK(r.status == 400 && strcmp(jstr(r.json, "error"), "unsupported_grant_type") == 0, "%s",
          r.body.data);
    resp_free(&r);
    const char *badpw =
        "grant_type=password&client_id=demo&client_secret=demo&username=demo&password=x";
    http(h, "POST", url, NULL, badpw, strlen(badpw), &r);
    CHECK(r.status == 400 && strcmp(jstr(r.json, "error"), "invalid_grant") == 0, "%s",
          r.body.data);
    resp_free(&r);

    const char *pw =
        "grant_type=password&client_id=demo&client_secret=demo&username=demo&password=demo";
    http(h, "POST", url, NULL, pw, strlen(pw), &r);
    char refresh[200];
    snprintf(refresh, sizeof refresh, "%s", jstr(r.json, "refresh_token"));
    CHECK(r.status == 200 && refresh[0], "password grant: %s", r.body.data);
    resp_free(&r);
    char form[400];
    snprintf(form, sizeof form,
             "grant_type=refresh_token&client_id=demo&client_secret=demo&"
             "refresh_token=%s",
             refresh);
    http(h, "POST", url, NULL, form, strlen(form), &r);
    CHECK(r.status == 200 && jstr(r.json, "access_token")[0], "refresh grant: %s", r.body.data);
    char tok[256], auth[300], durl[200];
    snprintf(tok, sizeof tok, "%s", jstr(r.json, "access_token"));
    resp_free(&r);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
    snprintf(durl, sizeof durl, "%s/limits", sb->data);
    const char *hd[] = {auth, NULL};
    http(h, "GET", durl, hd, NULL, 0, &r);
    CHECK(r.status == 200, "refreshed token works: %ld", r.status);
    resp_free(&r);
    snprintf(form, sizeof form, "grant_type=refresh_token&client_id=demo&refresh_token=nope");
    http(h, "POST", url, NULL, form, strlen(form), &r);
    CHECK(r.status == 400 && strcmp(jstr(r.json, "error"), "invalid_grant") == 0, "%s",
          r.body.data);
    resp_free(&r);
    /* revoke, then the token is refused */
    snprintf(url, sizeof url, "%s/services/oauth2/revoke", sb->base);
    snprintf(form, sizeof form, "token=%s", tok);
    http(h, "POST", url, NULL, form, strlen(form), &r);
    CHECK(r.status == 200, "revoke %ld", r.status);
    resp_free(&r);
    http(h, "GET", durl, hd, NULL, 0, &r);
    CHECK(r.status == 401, "revoked token refused: %ld", r.status);
    resp_free(&r);

    /* 401 shape */
    const char *badauth[] = {"Authorization: Bearer 00Dxx!bogus", NULL};
    http(h, "GET", durl, badauth, NULL, 0, &r);
    char www[64] = "";
    resp_header(&r, "WWW-Authenticate", www, sizeof www);
    CHECK(r.status == 401 && strcmp(err_code(r.json), "INVALID_SESSION_ID") == 0 &&
              strcmp(jstr(json_array_get(r.json, 0), "message"), "Session expired or invalid") == 0,
          "%s", r.body.data);
    CHECK(strcmp(www, "Token") == 0, "WWW-Authenticate '%s'", www);
    resp_free(&r);
    http(h, "GET", durl, NULL, NULL, 0, &r);
    CHECK(r.status == 401, "no token: %ld", r.status);
    resp_free(&r);
    snprintf(url, sizeof url, "%s/services/data", sb->base);
    http(h, "GET", url, NULL, NULL, 0, &r);
    CHECK(r.status == 200 && json_array_size(r.json) >= 10 && strstr(r.body.data, "\"60.0\""),
          "versions: %s", r.body.data);
    resp_free(&r);
}

static void test_crud(CURL *h, struct sandbox *sb)
{
    struct resp r;
    api(h, sb, "POST", "/sobjects/Account",
        "{\"Name\":\"Crud Test GmbH\",\"BillingStreet\":\"Hauptstraße 1\\n2. OG\","
        "\"BillingCity\":\"Berlin\",\"BillingPostalCode\":\"10115\",\"BillingCountry\":"
        "\"Germany\",\"Credit_Limit__c\":15000.5}",
        &r);
    char id[32], loc[200] = "", lim[80] = "";
    snprintf(id, sizeof id, "%s", jstr(r.json, "id"));
    resp_header(&r, "Location", loc, sizeof loc);
    resp_header(&r, "Sforce-Limit-Info", lim, sizeof lim);
    CHECK(r.status == 201 && json_is_true(json_object_get(r.json, "success")) &&
              json_array_size(json_object_get(r.json, "errors")) == 0,
          "create: %ld %s", r.status, r.body.data);
    CHECK(is_sf_id(id, "001"), "id '%s' is an 18-char Account id with a valid checksum", id);
    CHECK(strstr(loc, id) != NULL, "Location '%s'", loc);
    CHECK(strncmp(lim, "api-usage=", 10) == 0 && strchr(lim, '/'), "Sforce-Limit-Info '%s'", lim);
    resp_free(&r);

    char path[300];
    snprintf(path, sizeof path, "/sobjects/Account/%s", id);
    api(h, sb, "GET", path, NULL, &r);
    CHECK(r.status == 200 && strcmp(jstr(r.json, "Name"), "Crud Test GmbH") == 0 &&
              strcmp(jstr(json_object_get(r.json, "attributes"), "type"), "Account") == 0,
          "get: %s", r.body.data);
    CHECK(json_is_null(json_object_get(r.json, "Phone")), "unset fields are explicit null");
    CHECK(strcmp(jstr(json_object_get(r.json, "BillingAddress"), "street"),
                 "Hauptstraße 1\n2. OG") == 0,
          "compound address");
    char created[40];
    snprintf(created, sizeof created, "%s", jstr(r.json, "SystemModstamp"));
    CHECK(is_sf_datetime(created), "SystemModstamp format '%s'", created);
    CHECK(json_real_value(json_object_get(r.json, "Credit_Limit__c")) == 15000.5, "currency");
    resp_free(&r);

    snprintf(path, sizeof path, "/sobjects/Account/%s?fields=Name,BillingCity", id);
    api(h, sb, "GET", path, NULL, &r);
    CHECK(r.status == 200 && json_object_size(r.json) == 3, "fields param: %s", r.body.data);
    resp_free(&r);

    snprintf(path, sizeof path, "/sobjects/Account/%s", id);
    api(h, sb, "PATCH", path, "{\"phone\":\"+49 30 123\",\"Name\":\"Crud Test AG\"}", &r);
    CHECK(r.status == 204 && r.body.len == 0, "update: %ld %s", r.status, r.body.data);
    resp_free(&r);
    api(h, sb, "GET", path, NULL, &r);
    CHECK(strcmp(jstr(r.json, "Phone"), "+49 30 123") == 0, "field names are case-insensitive");
    CHECK(strcmp(jstr(r.json, "SystemModstamp"), created) > 0 &&
              strcmp(jstr(r.json, "LastModifiedDate"), jstr(r.json, "SystemModstamp")) == 0,
          "modstamp moved: %s -> %s", created, jstr(r.json, "SystemModstamp"));
    resp_free(&r);

    api(h, sb, "POST", "/sobjects/Account", "{\"Name\":\"X\",\"Id\":\"001000000000000AAA\"}", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "INVALID_FIELD") == 0, "Id in body: %s",
          r.body.data);
    resp_free(&r);
    api(h, sb, "PATCH", path, "{\"CreatedDate\":\"2020-01-01T00:00:00Z\"}", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "INVALID_FIELD_FOR_INSERT_UPDATE") == 0,
          "read-only: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "PATCH", path, "{\"NumberOfEmployees\":\"many\"}", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "JSON_PARSER_ERROR") == 0, "type: %s",
          r.body.data);
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Account", "{\"Name\":", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "JSON_PARSER_ERROR") == 0, "bad json");
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Nope__c", "{\"Name\":\"x\"}", &r);
    CHECK(r.status == 404 && strcmp(err_code(r.json), "NOT_FOUND") == 0, "unknown object");
    resp_free(&r);

    api(h, sb, "DELETE", path, NULL, &r);
    CHECK(r.status == 204, "delete %ld", r.status);
    resp_free(&r);
    api(h, sb, "GET", path, NULL, &r);
    CHECK(r.status == 404 && strcmp(err_code(r.json), "NOT_FOUND") == 0, "get deleted: %s",
          r.body.data);
    resp_free(&r);
    api(h, sb, "PATCH", path, "{\"Name\":\"again\"}", &r);
    CHECK(r.status == 404 && strcmp(err_code(r.json), "ENTITY_IS_DELETED") == 0,
          "update deleted: %s", r.body.data);
    resp_free(&r);

    /* queryAll sees the deleted row, query does not */
    char q[400];
    snprintf(q, sizeof q, "/queryAll?q=SELECT+Id,IsDeleted+FROM+Account+WHERE+Id='%s'", id);
    api(h, sb, "GET", q, NULL, &r);
    CHECK(r.status == 200 && json_integer_value(json_object_get(r.json, "totalSize")) == 1 &&
              json_is_true(json_object_get(json_array_get(json_object_get(r.json, "records"), 0),
                                           "IsDeleted")),
          "queryAll: %s", r.body.data);
    resp_free(&r);
    snprintf(q, sizeof q, "/query?q=SELECT+Id+FROM+Account+WHERE+Id='%s'", id);
    api(h, sb, "GET", q, NULL, &r);
    CHECK(json_integer_value(json_object_get(r.json, "totalSize")) == 0, "query: %s", r.body.data);
    resp_free(&r);

    /* getDeleted / getUpdated */
    time_t now = time(NULL);
    char s1[40], s2[40];
    strftime(s1, sizeof s1, "%Y-%m-%dT%H:%M:%S%%2B00:00", gmtime(&(time_t){now - 600}));
    strftime(s2, sizeof s2, "%Y-%m-%dT%H:%M:%SZ", gmtime(&(time_t){now + 120}));
    snprintf(q, sizeof q, "/sobjects/Account/deleted/?start=%s&end=%s", s1, s2);
    api(h, sb, "GET", q, NULL, &r);
    CHECK(r.status == 200 && strstr(r.body.data, id) &&
              json_object_get(r.json, "latestDateCovered") &&
              json_object_get(r.json, "earliestDateAvailable"),
          "deleted: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Product2", "{\"Name\":\"Updated probe\"}", &r);
    char pid[32];
    snprintf(pid, sizeof pid, "%s", jstr(r.json, "id"));
    CHECK(is_sf_id(pid, "01t"), "product id %s", pid);
    resp_free(&r);
    snprintf(q, sizeof q, "/sobjects/Product2/updated/?start=%s&end=%s", s1, s2);
    api(h, sb, "GET", q, NULL, &r);
    CHECK(r.status == 200 && strstr(r.body.data, pid), "updated: %s", r.body.data);
    resp_free(&r);
}

static void test_upsert(CURL *h, struct sandbox *sb)
{
    struct resp r;
    api(h, sb, "PATCH", "/sobjects/Product2/SAP_Product_Id__c/MAT-4711",
        "{\"Name\":\"Upsert Pump\",\"ProductCode\":\"P-4711\"}", &r);
    char id[32];
    snprintf(id, sizeof id, "%s", jstr(r.json, "id"));
    CHECK(r.status == 201 && json_is_true(json_object_get(r.json, "created")), "upsert create: %s",
          r.body.data);
    resp_free(&r);
    api(h, sb, "PATCH", "/sobjects/Product2/SAP_Product_Id__c/MAT-4711",
        "{\"Name\":\"Upsert Pump II\"}", &r);
    CHECK(r.status == 200 && json_is_false(json_object_get(r.json, "created")) &&
              strcmp(jstr(r.json, "id"), id) == 0,
          "upsert update: %ld %s", r.status, r.body.data);
    resp_free(&r);
    api(h, sb, "GET", "/sobjects/Product2/SAP_Product_Id__c/MAT-4711", NULL, &r);
    CHECK(r.status == 200 && strcmp(jstr(r.json, "Name"), "Upsert Pump II") == 0,
          "get by external id: %s", r.body.data);
    resp_free(&r);
    /* two contacts share a non-unique external id -> 300 */
    api(h, sb, "POST", "/sobjects/Contact", "{\"LastName\":\"Twin A\",\"Legacy_Id__c\":\"LEG-1\"}",
        &r);
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Contact", "{\"LastName\":\"Twin B\",\"Legacy_Id__c\":\"LEG-1\"}",
        &r);
    resp_free(&r);
    api(h, sb, "PATCH", "/sobjects/Contact/Legacy_Id__c/LEG-1", "{\"LastName\":\"Which\"}", &r);
    CHECK(r.status == 300 && json_array_size(r.json) == 2 &&
              strstr(json_string_value(json_array_get(r.json, 0)), "/sobjects/Contact/003"),
          "upsert 300: %ld %s", r.status, r.body.data);
    resp_free(&r);
    api(h, sb, "PATCH", "/sobjects/Product2/NoSuch__c/1", "{\"Name\":\"x\"}", &r);
    CHECK(r.status == 404 && strcmp(err_code(r.json), "NOT_FOUND") == 0, "bad ext field: %s",
          r.body.data);
    resp_free(&r);
    /* unique external id: a create with a taken value is DUPLICATE_VALUE */
    api(h, sb, "POST", "/sobjects/Product2",
        "{\"Name\":\"Dup\",\"SAP_Product_Id__c\":\"MAT-4711\"}", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "DUPLICATE_VALUE") == 0, "unique: %s",
          r.body.data);
    resp_free(&r);
    /* an encoded '/' stays inside the external id */
    api(h, sb, "PATCH", "/sobjects/Product2/SAP_Product_Id__c/A%2FB", "{\"Name\":\"Slash\"}", &r);
    CHECK(r.status == 201, "encoded slash: %ld %s", r.status, r.body.data);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+Name+FROM+Product2+WHERE+SAP_Product_Id__c='A/B'", NULL, &r);
    CHECK(json_integer_value(json_object_get(r.json, "totalSize")) == 1, "A/B: %s", r.body.data);
    resp_free(&r);
}

static void test_validation(CURL *h, struct sandbox *sb)
{
    struct resp r;
    api(h, sb, "POST", "/sobjects/Opportunity", "{\"Amount\":5}", &r);
    json_t *f = json_object_get(json_array_get(r.json, 0), "fields");
    CHECK(r.status == 400 && strcmp(err_code(r.json), "REQUIRED_FIELD_MISSING") == 0 &&
              json_array_size(f) == 3 &&
              strstr(jstr(json_array_get(r.json, 0), "message"), "Required fields are missing: ["),
          "required: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Account",
        "{\"Name\":\"Long\",\"BillingCity\":\"12345678901234567890123456789012345678901\"}", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "STRING_TOO_LONG") == 0 &&
              strstr(jstr(json_array_get(r.json, 0), "message"), "max length=40") &&
              strcmp(json_string_value(
                         json_array_get(json_object_get(json_array_get(r.json, 0), "fields"), 0)),
                     "BillingCity") == 0,
          "length: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Account", "{\"Name\":\"Pick\",\"Payment_Terms__c\":\"Net 99\"}",
        &r);
    CHECK(r.status == 400 &&
              strcmp(err_code(r.json), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST") == 0,
          "picklist: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Contact", "{\"LastName\":\"M\",\"Email\":\"not-an-email\"}", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "INVALID_EMAIL_ADDRESS") == 0, "email: %s",
          r.body.data);
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Contact",
        "{\"LastName\":\"M\",\"AccountId\":\"001Sb0000009999\"}", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "INVALID_CROSS_REFERENCE_KEY") == 0,
          "reference: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Account", "{\"Name\":\"Nope\",\"Bogus__c\":1}", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "INVALID_FIELD") == 0, "unknown: %s",
          r.body.data);
    resp_free(&r);
    /* duplicate rule: Name + BillingPostalCode */
    const char *acc = "{\"Name\":\"Twin Brothers Ltd\",\"BillingPostalCode\":\"SW1A 1AA\"}";
    api(h, sb, "POST", "/sobjects/Account", acc, &r);
    CHECK(r.status == 201, "first: %s", r.body.data);
    char first[32];
    snprintf(first, sizeof first, "%s", jstr(r.json, "id"));
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Account",
        "{\"Name\":\"twin brothers ltd\",\"BillingPostalCode\":\"SW1A 1AA\"}", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "DUPLICATES_DETECTED") == 0, "dup: %s",
          r.body.data);
    json_t *mr = json_array_get(
        json_object_get(json_object_get(json_array_get(r.json, 0), "duplicateResult"),
                        "matchResults"),
        0);
    CHECK(strcmp(jstr(json_object_get(json_array_get(json_object_get(mr, "matchRecords"), 0),
                                      "record"),
                      "Id"),
                 first) == 0,
          "duplicateResult names the existing record: %s", r.body.data);
    resp_free(&r);
    char url[300];
    snprintf(url, sizeof url, "%s/sobjects/Account", sb->data);
    const char *hd[] = {sb->auth, "Content-Type: application/json",
                        "Sforce-Duplicate-Rule-Header: allowSave=true", NULL};
    http(h, "POST", url, hd, acc, strlen(acc), &r);
    CHECK(r.status == 201, "allowSave: %s", r.body.data);
    resp_free(&r);
    /* price books: a custom-book entry needs the standard price first */
    api(h, sb, "GET", "/query?q=SELECT+Id+FROM+Pricebook2+WHERE+IsStandard=false+LIMIT+1", NULL,
        &r);
    char pb[32];
    snprintf(pb, sizeof pb, "%s",
             jstr(json_array_get(json_object_get(r.json, "records"), 0), "Id"));
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Product2", "{\"Name\":\"No price yet\"}", &r);
    char prod[32], body[300];
    snprintf(prod, sizeof prod, "%s", jstr(r.json, "id"));
    resp_free(&r);
    snprintf(body, sizeof body, "{\"Pricebook2Id\":\"%s\",\"Product2Id\":\"%s\",\"UnitPrice\":9}",
             pb, prod);
    api(h, sb, "POST", "/sobjects/PricebookEntry", body, &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "STANDARD_PRICE_NOT_DEFINED") == 0,
          "standard price: %s", r.body.data);
    resp_free(&r);
    /* orders: items need the order's price book; TotalAmount rolls up */
    api(h, sb, "GET",
        "/query?q=SELECT+Id,Pricebook2Id,UnitPrice+FROM+PricebookEntry+WHERE+"
        "Pricebook2.IsStandard=true+LIMIT+1",
        NULL, &r);
    json_t *pbe = json_array_get(json_object_get(r.json, "records"), 0);
    char pbe_id[32], std_pb[32];
    double price = json_number_value(json_object_get(pbe, "UnitPrice"));
    snprintf(pbe_id, sizeof pbe_id, "%s", jstr(pbe, "Id"));
    snprintf(std_pb, sizeof std_pb, "%s", jstr(pbe, "Pricebook2Id"));
    CHECK(r.status == 200 && pbe_id[0] && price > 0, "standard entry: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Account", "{\"Name\":\"Order Customer\"}", &r);
    char acc_id[32];
    snprintf(acc_id, sizeof acc_id, "%s", jstr(r.json, "id"));
    resp_free(&r);
    snprintf(body, sizeof body,
             "{\"AccountId\":\"%s\",\"EffectiveDate\":\"2026-11-27\",\"Status\":\"Draft\"}",
             acc_id);
    api(h, sb, "POST", "/sobjects/Order", body, &r);
    char no_pb[32];
    snprintf(no_pb, sizeof no_pb, "%s", jstr(r.json, "id"));
    CHECK(r.status == 201 && is_sf_id(no_pb, "801"), "order: %s", r.body.data);
    resp_free(&r);
    snprintf(body, sizeof body,
             "{\"OrderId\":\"%s\",\"PricebookEntryId\":\"%s\",\"Quantity\":2,\"UnitPrice\":5}",
             no_pb, pbe_id);
    api(h, sb, "POST", "/sobjects/OrderItem", body, &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "FIELD_INTEGRITY_EXCEPTION") == 0,
          "item on an order without price book: %s", r.body.data);
    resp_free(&r);
    char order_path[100];
    snprintf(order_path, sizeof order_path, "/sobjects/Order/%s", no_pb);
    snprintf(body, sizeof body, "{\"Pricebook2Id\":\"%s\"}", std_pb);
    api(h, sb, "PATCH", order_path, body, &r);
    CHECK(r.status == 204, "set price book: %s", r.body.data);
    resp_free(&r);
    snprintf(body, sizeof body,
             "{\"OrderId\":\"%s\",\"PricebookEntryId\":\"%s\",\"Quantity\":3,\"UnitPrice\":12.5}",
             no_pb, pbe_id);
    api(h, sb, "POST", "/sobjects/OrderItem", body, &r);
    CHECK(r.status == 201 && is_sf_id(jstr(r.json, "id"), "802"), "order item: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "GET", order_path, NULL, &r);
    CHECK(json_number_value(json_object_get(r.json, "TotalAmount")) == 37.5 &&
              strlen(jstr(r.json, "OrderNumber")) == 8,
          "TotalAmount rolls up: %s", r.body.data);
    resp_free(&r);
}

static void test_collections(CURL *h, struct sandbox *sb)
{
    struct resp r;
    api(h, sb, "POST", "/composite/sobjects",
        "{\"allOrNone\":false,\"records\":[{\"attributes\":{\"type\":\"Account\"},\"Name\":"
        "\"Coll One\"},{\"attributes\":{\"type\":\"Account\"},\"Phone\":\"1\"},{\"attributes\":"
        "{\"type\":\"Contact\"},\"LastName\":\"Coll Two\"}]}",
        &r);
    json_t *a = r.json;
    CHECK(r.status == 200 && json_array_size(a) == 3, "collection: %s", r.body.data);
    CHECK(json_is_true(json_object_get(json_array_get(a, 0), "success")) &&
              is_sf_id(jstr(json_array_get(a, 0), "id"), "001"),
          "first ok");
    json_t *e = json_array_get(json_object_get(json_array_get(a, 1), "errors"), 0);
    CHECK(json_is_false(json_object_get(json_array_get(a, 1), "success")) &&
              strcmp(jstr(e, "statusCode"), "REQUIRED_FIELD_MISSING") == 0,
          "second fails with statusCode");
    CHECK(is_sf_id(jstr(json_array_get(a, 2), "id"), "003"), "mixed types");
    char id0[32];
    snprintf(id0, sizeof id0, "%s", jstr(json_array_get(a, 0), "id"));
    resp_free(&r);

    api(h, sb, "POST", "/composite/sobjects",
        "{\"allOrNone\":true,\"records\":[{\"attributes\":{\"type\":\"Account\"},\"Name\":"
        "\"Rolled Back Co\"},{\"attributes\":{\"type\":\"Account\"}}]}",
        &r);
    e = json_array_get(json_object_get(json_array_get(r.json, 0), "errors"), 0);
    CHECK(r.status == 200 &&
              strcmp(jstr(e, "statusCode"), "ALL_OR_NONE_OPERATION_ROLLED_BACK") == 0,
          "allOrNone: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+Id+FROM+Account+WHERE+Name='Rolled+Back+Co'", NULL, &r);
    CHECK(json_integer_value(json_object_get(r.json, "totalSize")) == 0, "really rolled back");
    resp_free(&r);

    struct es_buf big;
    es_buf_init(&big, 0);
    es_buf_puts(&big, "{\"records\":[");
    for (int i = 0; i < 201; i++) {
        es_buf_printf(&big, "%s{\"attributes\":{\"type\":\"Account\"},\"Name\":\"B%d\"}",
                      i ? "," : "", i);
    }
    es_buf_puts(&big, "]}");
    api(h, sb, "POST", "/composite/sobjects", big.data, &r);
    CHECK(r.status == 400, "201 records refused: %ld", r.status);
    resp_free(&r);
    es_buf_release(&big);

    char body[600];
    snprintf(body, sizeof body,
             "{\"records\":[{\"attributes\":{\"type\":\"Account\"},\"Id\":\"%s\",\"Name\":"
             "\"Coll One Renamed\"}]}",
             id0);
    api(h, sb, "PATCH", "/composite/sobjects", body, &r);
    CHECK(r.status == 200 && json_is_true(json_object_get(json_array_get(r.json, 0), "success")),
          "collection update: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "PATCH", "/composite/sobjects/Product2/SAP_Product_Id__c",
        "{\"records\":[{\"attributes\":{\"type\":\"Product2\"},\"SAP_Product_Id__c\":\"C-1\","
        "\"Name\":\"Coll Upsert\"},{\"attributes\":{\"type\":\"Product2\"},\"SAP_Product_Id__c\":"
        "\"MAT-4711\",\"Name\":\"Upsert Pump III\"}]}",
        &r);
    CHECK(r.status == 200 && json_is_true(json_object_get(json_array_get(r.json, 0), "created")) &&
              json_is_false(json_object_get(json_array_get(r.json, 1), "created")),
          "collection upsert: %s", r.body.data);
    resp_free(&r);
    char q[300];
    snprintf(q, sizeof q, "/composite/sobjects/Account?ids=%s&fields=Name", id0);
    api(h, sb, "GET", q, NULL, &r);
    CHECK(r.status == 200 &&
              strcmp(jstr(json_array_get(r.json, 0), "Name"), "Coll One Renamed") == 0,
          "collection get: %s", r.body.data);
    resp_free(&r);
    snprintf(q, sizeof q, "/composite/sobjects?ids=%s,001Sb000000ZZZZ&allOrNone=false", id0);
    api(h, sb, "DELETE", q, NULL, &r);
    CHECK(r.status == 200 && json_is_true(json_object_get(json_array_get(r.json, 0), "success")) &&
              json_is_false(json_object_get(json_array_get(r.json, 1), "success")),
          "collection delete: %s", r.body.data);
    resp_free(&r);

    /* composite with references */
    api(h, sb, "POST", "/composite",
        "{\"allOrNone\":true,\"compositeRequest\":[{\"method\":\"POST\",\"url\":\"/services/data/"
        "v60.0/sobjects/Account\",\"referenceId\":\"acc\",\"body\":{\"Name\":\"Composite "
        "Parent\"}},{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/Contact\","
        "\"referenceId\":\"con\",\"body\":{\"LastName\":\"Kid\",\"AccountId\":\"@{acc.id}\"}},"
        "{\"method\":\"GET\",\"url\":\"/services/data/v60.0/query?q=SELECT+Account.Name+FROM+"
        "Contact+WHERE+Id='@{con.id}'\",\"referenceId\":\"q\"}]}",
        &r);
    json_t *cr = json_object_get(r.json, "compositeResponse");
    json_t *qb = json_object_get(json_array_get(cr, 2), "body");
    CHECK(r.status == 200 && json_array_size(cr) == 3 &&
              json_integer_value(json_object_get(json_array_get(cr, 0), "httpStatusCode")) == 201 &&
              strcmp(jstr(json_object_get(json_array_get(json_object_get(qb, "records"), 0),
                                          "Account"),
                          "Name"),
                     "Composite Parent") == 0,
          "composite: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "POST", "/composite",
        "{\"allOrNone\":true,\"compositeRequest\":[{\"method\":\"POST\",\"url\":\"/services/data/"
        "v60.0/sobjects/Account\",\"referenceId\":\"ok\",\"body\":{\"Name\":\"Composite "
        "Rollback\"}},{\"method\":\"POST\",\"url\":\"/services/data/v60.0/sobjects/Account\","
        "\"referenceId\":\"bad\",\"body\":{}}]}",
        &r);
    cr = json_object_get(r.json, "compositeResponse");
    CHECK(strcmp(err_code(json_object_get(json_array_get(cr, 0), "body")), "PROCESSING_HALTED") ==
              0,
          "composite rollback: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+Id+FROM+Account+WHERE+Name='Composite+Rollback'", NULL, &r);
    CHECK(json_integer_value(json_object_get(r.json, "totalSize")) == 0, "composite rolled back");
    resp_free(&r);
}

static long total(struct resp *r)
{
    return (long)json_integer_value(json_object_get(r->json, "totalSize"));
}

static void test_soql(CURL *h, struct sandbox *sb)
{
    struct resp r;
    api(h, sb, "GET", "/query?q=SELECT+COUNT()+FROM+Account+WHERE+BillingCountry='Japan'", NULL,
        &r);
    long japan = total(&r);
    CHECK(r.status == 200 && japan >= 200, "japan %ld: %s", japan, r.body.data);
    resp_free(&r);
    api(h, sb, "GET",
        "/query?q=SELECT+COUNT()+FROM+Account+WHERE+BillingCountry+!=+'Japan'+AND+"
        "BillingCountry+!=+null",
        NULL, &r);
    long others = total(&r);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+COUNT()+FROM+Account+WHERE+BillingCountry+!=+null", NULL,
        &r);
    CHECK(total(&r) == japan + others, "= and != partition: %ld + %ld vs %ld", japan, others,
          total(&r));
    resp_free(&r);
    api(h, sb, "GET",
        "/query?q=SELECT+Id,BillingCountry+FROM+Account+WHERE+BillingCountry+IN+('Japan','Brazil')"
        "+AND+NOT+Name+LIKE+'%25Motors%25'+ORDER+BY+BillingCountry+DESC,Name+LIMIT+5+OFFSET+2",
        NULL, &r);
    json_t *recs = json_object_get(r.json, "records");
    CHECK(r.status == 200 && json_array_size(recs) == 5 &&
              strcmp(jstr(json_array_get(recs, 0), "BillingCountry"), "Japan") == 0,
          "IN/NOT LIKE/ORDER/LIMIT/OFFSET: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "GET",
        "/query?q=SELECT+Id+FROM+Account+WHERE+(NumberOfEmployees+>+4000+OR+NumberOfEmployees+<"
        "+10)+AND+NumberOfEmployees+>=+0",
        NULL, &r);
    long n1 = total(&r);
    resp_free(&r);
    api(h, sb, "GET",
        "/query?q=SELECT+Id+FROM+Account+WHERE+NumberOfEmployees+<=+4000+AND+"
        "NumberOfEmployees+>=+10",
        NULL, &r);
    long n2 = total(&r);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+COUNT()+FROM+Account+WHERE+NumberOfEmployees+!=+null", NULL,
        &r);
    CHECK(n1 > 0 && n2 > 0 && n1 + n2 == total(&r), "OR/AND ranges %ld+%ld vs %ld", n1, n2,
          total(&r));
    resp_free(&r);
    /* datetime literals: everything seeded is older than now+1h, nothing is newer */
    time_t now = time(NULL);
    char q[400], ts[40];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&(time_t){now + 3600}));
    snprintf(q, sizeof q, "/query?q=SELECT+COUNT()+FROM+Account+WHERE+SystemModstamp+>+%s", ts);
    api(h, sb, "GET", q, NULL, &r);
    CHECK(r.status == 200 && total(&r) == 0, "future modstamp: %s", r.body.data);
    resp_free(&r);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S%%2B01:00", gmtime(&(time_t){now - 86400}));
    snprintf(q, sizeof q, "/query?q=SELECT+COUNT()+FROM+Account+WHERE+LastModifiedDate+>=+%s", ts);
    api(h, sb, "GET", q, NULL, &r);
    CHECK(r.status == 200 && total(&r) > 3000, "recent modstamp: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+COUNT()+FROM+Account+WHERE+CreatedDate+=+LAST_N_DAYS:1",
        NULL, &r);
    CHECK(r.status == 200 && total(&r) > 3000, "LAST_N_DAYS: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+COUNT()+FROM+Account+WHERE+CreatedDate+<+YESTERDAY", NULL,
        &r);
    CHECK(r.status == 200 && total(&r) == 0, "YESTERDAY: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "GET",
        "/query?q=SELECT+Name,Account.Name,Account.BillingCountry+FROM+Contact+WHERE+"
        "Account.BillingCountry='Germany'+LIMIT+1",
        NULL, &r);
    json_t *rec0 = json_array_get(json_object_get(r.json, "records"), 0);
    CHECK(r.status == 200 &&
              strcmp(jstr(json_object_get(rec0, "Account"), "BillingCountry"), "Germany") == 0 &&
              json_object_get(json_object_get(rec0, "Account"), "attributes"),
          "relationship: %s", r.body.data);
    resp_free(&r);
    /* the demo data: international, two-line street addresses */
    api(h, sb, "GET",
        "/query?q=SELECT+BillingCountry,BillingStreet,BillingPostalCode+FROM+Account+ORDER+BY+"
        "CreatedDate,Id+LIMIT+48",
        NULL, &r);
    json_t *countries = json_object();
    int two_lines = 0;
    size_t ri;
    json_t *rv;
    json_array_foreach(json_object_get(r.json, "records"), ri, rv)
    {
        json_object_set_new(countries, jstr(rv, "BillingCountry"), json_true());
        two_lines += strchr(jstr(rv, "BillingStreet"), '\n') != NULL &&
                     jstr(rv, "BillingPostalCode")[0] != '\0';
    }
    CHECK(json_object_size(countries) >= 10 && two_lines == 48,
          "seed: %zu countries, %d of 48 with two-line streets", json_object_size(countries),
          two_lines);
    json_decref(countries);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+FIELDS(ALL)+FROM+Account+LIMIT+2", NULL, &r);
    rec0 = json_array_get(json_object_get(r.json, "records"), 0);
    CHECK(r.status == 200 && json_object_get(rec0, "SAP_Customer_No__c") &&
              json_object_get(rec0, "BillingAddress") && json_object_get(rec0, "Name"),
          "FIELDS(ALL): %.300s", r.body.data);
    char id15[16];
    snprintf(id15, sizeof id15, "%.15s", jstr(rec0, "Id"));
    resp_free(&r);
    char q15[200];
    snprintf(q15, sizeof q15, "/query?q=SELECT+Id+FROM+Account+WHERE+Id+IN+('%s')", id15);
    api(h, sb, "GET", q15, NULL, &r);
    CHECK(total(&r) == 1, "a 15-char id literal matches: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+FIELDS(ALL)+FROM+Account", NULL, &r);
    CHECK(r.status == 400, "FIELDS(ALL) needs LIMIT <= 200: %ld", r.status);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELEC+Id+FROM+Account", NULL, &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "MALFORMED_QUERY") == 0, "malformed: %s",
          r.body.data);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+Nope+FROM+Account", NULL, &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "INVALID_FIELD") == 0, "bad field: %s",
          r.body.data);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+Id+FROM+Nope", NULL, &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "INVALID_TYPE") == 0, "bad type: %s",
          r.body.data);
    resp_free(&r);
    api(h, sb, "GET",
        "/query?q=SELECT+Id+FROM+Account+WHERE+SystemModstamp+>+2024-01-01T00:00:00+01:00", NULL,
        &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "MALFORMED_QUERY") == 0,
          "unencoded + is a parse error: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "GET", "/query?q=SELECT+Id,Name,Type,Phone+FROM+Invoice__c", NULL, &r);
    CHECK(r.status == 400, "custom object checks its own fields: %s", r.body.data);
    resp_free(&r);
}

/* Follows nextRecordsUrl to the end; returns rows seen, checks ids are unique. */
static long follow_pages(CURL *h, struct sandbox *sb, const char *first, int batch, long *tot,
                         int *pages)
{
    char url[600];
    snprintf(url, sizeof url, "%s%s", sb->data, first);
    char bs[64];
    snprintf(bs, sizeof bs, "Sforce-Query-Options: batchSize=%d", batch);
    const char *hd[] = {sb->auth, bs, NULL};
    json_t *seen = json_object();
    long rows = 0;
    *pages = 0;
    for (;;) {
        struct resp r;
        http(h, "GET", url, hd, NULL, 0, &r);
        if (r.status != 200) {
            CHECK(0, "page %d: %ld %s", *pages, r.status, r.body.data);
            resp_free(&r);
            break;
        }
        (*pages)++;
        *tot = total(&r);
        json_t *recs = json_object_get(r.json, "records");
        CHECK((long)json_array_size(recs) <= batch, "page size %zu", json_array_size(recs));
        size_t i;
        json_t *rec;
        json_array_foreach(recs, i, rec)
        {
            json_object_set_new(seen, jstr(rec, "Id"), json_true());
            rows++;
        }
        int done = json_is_true(json_object_get(r.json, "done"));
        const char *next = jstr(r.json, "nextRecordsUrl");
        CHECK(done == (next[0] == '\0'), "nextRecordsUrl only when not done");
        if (done) {
            resp_free(&r);
            break;
        }
        CHECK(strstr(next, "/services/data/v60.0/query/01g") == next, "locator %s", next);
        snprintf(url, sizeof url, "%s%s", sb->base, next);
        resp_free(&r);
    }
    CHECK((long)json_object_size(seen) == rows, "unique ids %zu of %ld", json_object_size(seen),
          rows);
    json_decref(seen);
    return rows;
}

static void test_bulk_and_pages(CURL *h, struct sandbox *sb)
{
    struct resp r;
    api(h, sb, "POST", "/jobs/ingest",
        "{\"object\":\"Account\",\"operation\":\"insert\",\"contentType\":\"CSV\",\"lineEnding\":"
        "\"LF\"}",
        &r);
    char id[32], content[200];
    snprintf(id, sizeof id, "%s", jstr(r.json, "id"));
    snprintf(content, sizeof content, "%s", jstr(r.json, "contentUrl"));
    CHECK(r.status == 200 && is_sf_id(id, "750") && strcmp(jstr(r.json, "state"), "Open") == 0 &&
              strstr(content, "/batches"),
          "job create: %s", r.body.data);
    resp_free(&r);
    struct es_buf csv;
    es_buf_init(&csv, 0);
    es_buf_puts(&csv, "Name,BillingCity,BillingCountry,BillingStreet\n");
    for (int i = 0; i < 2500; i++) {
        es_buf_printf(&csv, "Bulk Account %04d,Lyon,France,\"%d rue de la République\nBât. A\"\n",
                      i, i + 1);
    }
    es_buf_puts(&csv, ",Nowhere,France,\n");
    char url[400];
    snprintf(url, sizeof url, "%s/%s", sb->base, content);
    const char *hd[] = {sb->auth, "Content-Type: text/csv", NULL};
    http(h, "PUT", url, hd, csv.data, csv.len, &r);
    CHECK(r.status == 201 && r.body.len == 0, "upload: %ld %s", r.status, r.body.data);
    resp_free(&r);
    es_buf_release(&csv);
    char path[200];
    snprintf(path, sizeof path, "/jobs/ingest/%s", id);
    api(h, sb, "PATCH", path, "{\"state\":\"UploadComplete\"}", &r);
    CHECK(r.status == 200 && strcmp(jstr(r.json, "state"), "UploadComplete") == 0, "close: %s",
          r.body.data);
    resp_free(&r);
    const char *state = "";
    int in_progress = 0;
    for (int i = 0; i < 100; i++) {
        api(h, sb, "GET", path, NULL, &r);
        state = jstr(r.json, "state");
        in_progress |= strcmp(state, "InProgress") == 0;
        if (strcmp(state, "JobComplete") == 0 || strcmp(state, "Failed") == 0) {
            break;
        }
        resp_free(&r);
        usleep(100000);
    }
    CHECK(strcmp(jstr(r.json, "state"), "JobComplete") == 0 &&
              json_integer_value(json_object_get(r.json, "numberRecordsProcessed")) == 2501 &&
              json_integer_value(json_object_get(r.json, "numberRecordsFailed")) == 1,
          "job complete: %s", r.body.data);
    CHECK(in_progress, "the job was seen InProgress before JobComplete");
    resp_free(&r);
    snprintf(path, sizeof path, "/jobs/ingest/%s/successfulResults/", id);
    api(h, sb, "GET", path, NULL, &r);
    CHECK(r.status == 200 && strncmp(r.body.data, "\"sf__Id\",\"sf__Created\",\"Name\"", 29) == 0 &&
              strstr(r.body.data, "\"true\",\"Bulk Account 0000\""),
          "successfulResults: %.200s", r.body.data);
    resp_free(&r);
    snprintf(path, sizeof path, "/jobs/ingest/%s/failedResults/", id);
    api(h, sb, "GET", path, NULL, &r);
    CHECK(r.status == 200 && strncmp(r.body.data, "\"sf__Id\",\"sf__Error\"", 20) == 0 &&
              strstr(r.body.data, "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]"),
          "failedResults: %.300s", r.body.data);
    resp_free(&r);
    snprintf(path, sizeof path, "/jobs/ingest/%s/batches", id);
    api(h, sb, "PUT", path, "a\n", &r);
    CHECK(r.status >= 400, "upload to a closed job refused: %ld", r.status);
    resp_free(&r);
    api(h, sb, "POST", "/jobs/ingest", "{\"object\":\"Nope\",\"operation\":\"insert\"}", &r);
    CHECK(r.status == 400, "bad object: %ld", r.status);
    resp_free(&r);

    /* more than 5,000 rows, pages of 1,000 and of the default 2,000 */
    long tot = 0;
    int pages = 0;
    long rows = follow_pages(h, sb, "/query?q=SELECT+Id,Name+FROM+Account", 1000, &tot, &pages);
    CHECK(tot > 5000 && rows == tot && pages == (int)((tot + 999) / 1000),
          "pages of 1000: rows %ld total %ld pages %d", rows, tot, pages);
    rows = follow_pages(h, sb, "/query?q=SELECT+Id+FROM+Account", 5000, &tot, &pages);
    CHECK(rows == tot && pages == (int)((tot + 1999) / 2000), "default 2000: %ld/%ld in %d", rows,
          tot, pages);
}

static void test_describe(CURL *h, struct sandbox *sb)
{
    struct resp r;
    api(h, sb, "GET", "/sobjects/Account/describe", NULL, &r);
    CHECK(r.status == 200 && strcmp(jstr(r.json, "keyPrefix"), "001") == 0, "describe: %ld",
          r.status);
    json_t *fields = json_object_get(r.json, "fields");
    size_t i;
    json_t *f;
    int seen = 0;
    json_array_foreach(fields, i, f)
    {
        const char *n = jstr(f, "name");
        if (strcmp(n, "Name") == 0) {
            CHECK(strcmp(jstr(f, "type"), "string") == 0 &&
                      json_integer_value(json_object_get(f, "length")) == 255 &&
                      json_is_false(json_object_get(f, "nillable")) &&
                      json_is_true(json_object_get(f, "createable")),
                  "Name field");
            seen++;
        } else if (strcmp(n, "Payment_Terms__c") == 0) {
            CHECK(json_is_true(json_object_get(f, "restrictedPicklist")) &&
                      json_array_size(json_object_get(f, "picklistValues")) == 6 &&
                      json_is_true(json_object_get(f, "custom")),
                  "picklist field");
            seen++;
        } else if (strcmp(n, "SAP_Customer_No__c") == 0) {
            CHECK(json_is_true(json_object_get(f, "externalId")), "externalId");
            seen++;
        } else if (strcmp(n, "SystemModstamp") == 0) {
            CHECK(json_is_false(json_object_get(f, "updateable")) &&
                      strcmp(jstr(f, "type"), "datetime") == 0,
                  "SystemModstamp");
            seen++;
        } else if (strcmp(n, "BillingStreet") == 0) {
            CHECK(strcmp(jstr(f, "type"), "textarea") == 0, "BillingStreet is textarea");
            seen++;
        }
    }
    CHECK(seen == 5, "described fields seen %d", seen);
    resp_free(&r);
    api(h, sb, "GET", "/sobjects", NULL, &r);
    int inv = 0;
    json_array_foreach(json_object_get(r.json, "sobjects"), i, f)
    {
        if (strcmp(jstr(f, "name"), "Invoice__c") == 0) {
            inv = strcmp(jstr(f, "keyPrefix"), "a01") == 0 &&
                  json_is_true(json_object_get(f, "custom"));
        }
    }
    CHECK(r.status == 200 && inv && json_array_size(json_object_get(r.json, "sobjects")) >= 12,
          "describe global");
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Invoice__c",
        "{\"Name\":\"INV-1\",\"SAP_Billing_Document__c\":\"90000001\",\"Amount__c\":99.5,"
        "\"Billing_Date__c\":\"2026-11-27\",\"Paid__c\":true}",
        &r);
    CHECK(r.status == 201 && is_sf_id(jstr(r.json, "id"), "a01"), "custom object: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "POST", "/sobjects/Invoice__c",
        "{\"Name\":\"INV-2\",\"Billing_Date__c\":\"27.11.2026\"}", &r);
    CHECK(r.status == 400 && strcmp(err_code(r.json), "JSON_PARSER_ERROR") == 0, "date: %s",
          r.body.data);
    resp_free(&r);
}

static void test_notifications(CURL *h, struct sandbox *sb, const char *secret)
{
    struct resp r;
    api(h, sb, "POST", "/sobjects/Account", "{\"Name\":\"Event Source Ltd\"}", &r);
    char id[32];
    snprintf(id, sizeof id, "%s", jstr(r.json, "id"));
    resp_free(&r);
    char path[100];
    snprintf(path, sizeof path, "/sobjects/Account/%s", id);
    char url[300];
    snprintf(url, sizeof url, "%s%s", sb->data, path);
    const char *hd[] = {sb->auth, "Content-Type: application/json",
                        "Sforce-Call-Options: client=erpsync", NULL};
    const char *upd = "{\"Name\":\"Event Source Plc\"}";
    http(h, "PATCH", url, hd, upd, strlen(upd), &r);
    CHECK(r.status == 204, "update %ld", r.status);
    resp_free(&r);

    int k = wait_for("/cdc", id, 2);
    CHECK(k >= 0, "two change events for %s arrived", id);
    if (k < 0) {
        char ou[200];
        snprintf(ou, sizeof ou, "%s/__sandbox/outbox", sb->base);
        http(h, "GET", ou, NULL, NULL, 0, &r);
        fprintf(stderr, "outbox: %.2000s\n", r.body.data);
        resp_free(&r);
    }
    if (k >= 0) {
        pthread_mutex_lock(&g_rmu);
        int creates = 0, updates = 0;
        for (int i = 0; i < g_nrecv; i++) {
            struct received *rv = &g_recv[i];
            if (strcmp(rv->path, "/cdc") || !strstr(rv->body, id)) {
                continue;
            }
            struct es_err err = {0};
            CHECK(es_webhook_verify(secret, strlen(secret), rv->body, rv->len, rv->sig, &err) ==
                      ES_OK,
                  "signature: %s (%s)", err.msg, rv->sig);
            json_t *ev = json_loads(rv->body, 0, NULL);
            json_t *hdr = json_object_get(json_object_get(json_object_get(ev, "data"), "payload"),
                                          "ChangeEventHeader");
            CHECK(
                strcmp(jstr(hdr, "entityName"), "Account") == 0 &&
                    strcmp(json_string_value(json_array_get(json_object_get(hdr, "recordIds"), 0)),
                           id) == 0 &&
                    json_integer_value(json_object_get(hdr, "commitTimestamp")) > 1700000000000LL,
                "header: %s", rv->body);
            CHECK(strcmp(jstr(ev, "channel"), "/data/AccountChangeEvent") == 0, "channel");
            if (strcmp(jstr(hdr, "changeType"), "CREATE") == 0) {
                creates++;
            } else if (strcmp(jstr(hdr, "changeType"), "UPDATE") == 0) {
                updates++;
                json_t *cf = json_object_get(hdr, "changedFields");
                CHECK(json_array_size(cf) >= 1 &&
                          strcmp(json_string_value(json_array_get(cf, 0)), "Name") == 0,
                      "changedFields: %s", rv->body);
                CHECK(strstr(jstr(hdr, "changeOrigin"), "client=erpsync") != NULL,
                      "changeOrigin: %s", jstr(hdr, "changeOrigin"));
            }
            json_decref(ev);
        }
        pthread_mutex_unlock(&g_rmu);
        CHECK(creates == 1 && updates == 1, "creates %d updates %d", creates, updates);
    }
    /* Outbound Messages: the receiver fails the first delivery, the sandbox retries */
    k = wait_for("/om", "Event Source Plc", 1);
    CHECK(k >= 0, "outbound message for the update arrived");
    if (k >= 0) {
        struct es_err err = {0};
        pthread_mutex_lock(&g_rmu);
        CHECK(es_webhook_check_outbound(g_recv[k].body, g_recv[k].len, &err) == ES_OK,
              "SOAP shape: %s", err.msg);
        pthread_mutex_unlock(&g_rmu);
    }
    CHECK(wait_for("/om", "Event Source Ltd", 2) >= 0, "first message retried after a 500");
    char ourl[200];
    snprintf(ourl, sizeof ourl, "%s/__sandbox/outbox", sb->base);
    int delivered_all = 0;
    for (int i = 0; i < 300 && !delivered_all; i++) {
        http(h, "GET", ourl, NULL, NULL, 0, &r);
        delivered_all = json_integer_value(json_object_get(r.json, "pending")) == 0;
        resp_free(&r);
        if (!delivered_all) {
            usleep(100000);
        }
    }
    CHECK(delivered_all, "outbox drained");

    /* change behind the client's back */
    char aurl[300];
    snprintf(aurl, sizeof aurl, "%s/__sandbox/records/Account/%s", sb->base, id);
    const char *b = "{\"Phone\":\"+44 20 0000\"}";
    http(h, "PATCH", aurl, NULL, b, strlen(b), &r);
    CHECK(r.status == 200, "admin patch: %s", r.body.data);
    resp_free(&r);
    api(h, sb, "GET", path, NULL, &r);
    CHECK(strcmp(jstr(r.json, "Phone"), "+44 20 0000") == 0, "change visible: %s", r.body.data);
    resp_free(&r);
    CHECK(wait_for("/cdc", "+44 20 0000", 1) >= 0, "the admin change raised an event too");
}

struct burst {
    struct sandbox *sb;
    int n, failed;
};

static void *burst_main(void *arg)
{
    struct burst *b = arg;
    CURL *h = curl_easy_init();
    char url[200];
    snprintf(url, sizeof url, "%s/limits", b->sb->data);
    const char *hd[] = {b->sb->auth, NULL};
    for (int i = 0; i < b->n; i++) {
        struct resp r;
        http(h, "GET", url, hd, NULL, 0, &r);
        if (r.curl_rc != 0 || r.status != 200) {
            b->failed++;
        }
        resp_free(&r);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static void test_burst(struct sandbox *sb)
{
    enum { THREADS = 4, EACH = 5000 };
    pthread_t t[THREADS];
    struct burst b[THREADS];
    for (int i = 0; i < THREADS; i++) {
        b[i] = (struct burst){sb, EACH, 0};
        pthread_create(&t[i], NULL, burst_main, &b[i]);
    }
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        failed += b[i].failed;
    }
    CHECK(failed == 0, "%d of %d burst requests failed", failed, THREADS * EACH);
}

/* Token lifetime: a token of an instance started with --token-ttl 1s is refused once it is
 * older than that (no assumption on how fast requests are). */
static void test_token_expiry(CURL *h)
{
    struct sandbox sb;
    const char *extra[] = {"--token-ttl", "1s", NULL};
    if (sandbox_start(&sb, "ttl.db", extra) != 0) {
        CHECK(0, "ttl sandbox did not start");
        return;
    }
    login(h, &sb);
    usleep(1300000);
    struct resp r;
    api(h, &sb, "GET", "/limits", NULL, &r);
    char www[32] = "";
    resp_header(&r, "WWW-Authenticate", www, sizeof www);
    CHECK(r.status == 401 && strcmp(err_code(r.json), "INVALID_SESSION_ID") == 0 &&
              strcmp(www, "Token") == 0,
          "expired token: %ld %s", r.status, r.body.data);
    resp_free(&r);
    sandbox_stop(&sb);
}

/* A second, unseeded instance: the daily limit, faults, reset. */
static void test_small_instance(CURL *h)
{
    struct sandbox sb;
    const char *extra[] = {"--api-limit",
                           "6",
                           "--max-body",
                           "4096",
                           "--fault",
                           "route=/services/data/v60.0/sobjects/Product2,method=GET,rate_503=1,"
                           "count=1,retry_after=7",
                           NULL};
    if (sandbox_start(&sb, "small.db", extra) != 0) {
        CHECK(0, "second sandbox did not start");
        return;
    }
    struct resp r;
    login(h, &sb);
    api(h, &sb, "GET", "/sobjects/Product2", NULL, &r);
    char ra[16] = "";
    resp_header(&r, "Retry-After", ra, sizeof ra);
    CHECK(r.status == 503 && strcmp(ra, "7") == 0 &&
              strcmp(err_code(r.json), "SERVER_UNAVAILABLE") == 0,
          "flag fault: %ld %s", r.status, r.body.data);
    resp_free(&r);
    api(h, &sb, "GET", "/sobjects/Product2", NULL, &r);
    CHECK(r.status == 200, "fault used up: %ld", r.status);
    resp_free(&r);

    char furl[200];
    snprintf(furl, sizeof furl, "%s/__sandbox/faults", sb.base);
    const char *f429 =
        "{\"route\":\"/services/data\",\"rate_429\":1,\"count\":1,\"retry_after\":3}";
    http(h, "POST", furl, NULL, f429, strlen(f429), &r);
    CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "faults")) == 1,
          "fault set: %s", r.body.data);
    resp_free(&r);
    api(h, &sb, "GET", "/limits", NULL, &r);
    resp_header(&r, "Retry-After", ra, sizeof ra);
    CHECK(r.status == 429 && strcmp(ra, "3") == 0, "429: %ld retry-after %s", r.status, ra);
    resp_free(&r);
    const char *f500 = "{\"route\":\"/services/data\",\"rate_500\":1,\"count\":1}";
    http(h, "POST", furl, NULL, f500, strlen(f500), &r);
    resp_free(&r);
    api(h, &sb, "GET", "/limits", NULL, &r);
    CHECK(r.status == 500, "500: %ld", r.status);
    resp_free(&r);
    const char *fdrop = "{\"route\":\"/services/data\",\"rate_drop\":1,\"count\":1}";
    http(h, "POST", furl, NULL, fdrop, strlen(fdrop), &r);
    resp_free(&r);
    CURL *fresh = curl_easy_init(); /* a reused connection would be retried by libcurl */
    api(fresh, &sb, "GET", "/limits", NULL, &r);
    curl_easy_cleanup(fresh);
    CHECK(r.curl_rc == CURLE_GOT_NOTHING || r.curl_rc == CURLE_RECV_ERROR,
          "dropped connection: curl %d status %ld", r.curl_rc, r.status);
    resp_free(&r);
    const char *flat = "{\"route\":\"/services/data\",\"method\":\"GET\",\"latency_ms\":300,"
                       "\"count\":1}";
    http(h, "POST", furl, NULL, flat, strlen(flat), &r);
    resp_free(&r);
    api(h, &sb, "GET", "/limits", NULL, &r);
    CHECK(r.status == 200, "latency only delays: %ld", r.status);
    resp_free(&r);
    const char *fto = "{\"route\":\"/services/data\",\"rate_timeout\":1,\"timeout_ms\":300,"
                      "\"count\":1}";
    http(h, "POST", furl, NULL, fto, strlen(fto), &r);
    resp_free(&r);
    fresh = curl_easy_init();
    api(fresh, &sb, "GET", "/limits", NULL, &r);
    curl_easy_cleanup(fresh);
    CHECK(r.curl_rc == CURLE_GOT_NOTHING || r.curl_rc == CURLE_RECV_ERROR,
          "timeout fault closes without an answer: curl %d status %ld", r.curl_rc, r.status);
    resp_free(&r);
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    api(h, &sb, "POST", "/sobjects/Account", big, &r);
    CHECK(r.status == 413, "body over --max-body: %ld", r.status);
    resp_free(&r);
    const char *badf = "{\"rate_429\":2}";
    http(h, "POST", furl, NULL, badf, strlen(badf), &r);
    CHECK(r.status == 400, "bad fault refused: %ld", r.status);
    resp_free(&r);

    /* daily limit of 6 */
    int got403 = 0;
    char lim[64] = "";
    for (int i = 0; i < 10 && !got403; i++) {
        api(h, &sb, "GET", "/limits", NULL, &r);
        if (r.status == 403) {
            got403 = strcmp(err_code(r.json), "REQUEST_LIMIT_EXCEEDED") == 0;
            resp_header(&r, "Sforce-Limit-Info", lim, sizeof lim);
        }
        resp_free(&r);
    }
    CHECK(got403 && strcmp(lim, "api-usage=6/6") == 0, "REQUEST_LIMIT_EXCEEDED, header '%s'", lim);

    char rurl[200];
    snprintf(rurl, sizeof rurl, "%s/__sandbox/reset", sb.base);
    http(h, "POST", rurl, NULL, "{\"seed\":\"none\"}", 15, &r);
    CHECK(r.status == 200 && json_integer_value(json_object_get(r.json, "records")) == 0,
          "reset: %s", r.body.data);
    resp_free(&r);
    api(h, &sb, "GET", "/limits", NULL, &r);
    CHECK(r.status == 200, "reset clears the usage: %ld", r.status);
    resp_free(&r);
    sandbox_stop(&sb);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ERPSYNC_SANDBOX SF_SCHEMA_JSON\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    g_schema = argv[2];
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/es-sandbox-sf-XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct MHD_Daemon *hook = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, on_hook,
        NULL, MHD_OPTION_NOTIFY_COMPLETED, on_hook_done, NULL, MHD_OPTION_END);
    const union MHD_DaemonInfo *di =
        hook ? MHD_get_daemon_info(hook, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!di) {
        fprintf(stderr, "cannot start the webhook receiver\n");
        return 2;
    }
    char cdc[100], om[100];
    snprintf(cdc, sizeof cdc, "http://127.0.0.1:%u/cdc", di->port);
    snprintf(om, sizeof om, "http://127.0.0.1:%u/om", di->port);
    const char *secret = "sandbox-test-secret";
    setenv("SBSF_TEST_SECRET", secret, 1);
    const char *extra[] = {"--seed",
                           "demo",
                           "--notify-url",
                           cdc,
                           "--notify-secret-env",
                           "SBSF_TEST_SECRET",
                           "--om-url",
                           om,
                           "--retry-base-ms",
                           "100",
                           NULL};
    struct sandbox sb;
    lap("");
    if (sandbox_start(&sb, "sf.db", extra) != 0) {
        fprintf(stderr, "sandbox did not start\n");
        return 1;
    }
    CURL *h = curl_easy_init();
    lap("start");
    login(h, &sb);
    test_oauth(h, &sb);
    lap("oauth");
    test_crud(h, &sb);
    lap("crud");
    test_upsert(h, &sb);
    lap("upsert");
    test_validation(h, &sb);
    lap("validation");
    test_collections(h, &sb);
    lap("collections");
    test_soql(h, &sb);
    lap("soql");
    test_describe(h, &sb);
    lap("describe");
    test_notifications(h, &sb, secret);
    lap("notifications");
    test_bulk_and_pages(h, &sb);
    lap("bulk_and_pages");
    test_burst(&sb);
    lap("burst");
    sandbox_stop(&sb);
    test_small_instance(h);
    lap("small");
    test_token_expiry(h);
    lap("expiry");
    curl_easy_cleanup(h);
    MHD_stop_daemon(hook);
    pthread_mutex_lock(&g_rmu);
    for (int i = 0; i < g_nrecv; i++) {
        es_free(g_recv[i].body);
    }
    pthread_mutex_unlock(&g_rmu);
    curl_global_cleanup();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", g_tmp);
    }
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
