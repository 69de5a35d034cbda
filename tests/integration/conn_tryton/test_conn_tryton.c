/* SPDX-License-Identifier: MIT */
/*
 * The tryton connector against a real Tryton 6.0 (run.sh starts it; each test gets a fresh
 * copy of the template database): login and auth failures, idempotent party creation when
 * the first attempt timed out after Tryton had created the record, paging past 5,000 rows
 * that share one create_date, the write_date watermark, sale confirmation refused by the
 * credit limit (ES_EREJECTED with Tryton's words) and the state read back, invoice state and
 * amounts, stock quantities per warehouse, and malformed answers from a tiny in-test HTTP
 * server (HTML page, cut JSON, JSON that is not JSON-RPC).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "connectors/connector.h"
#include "connectors/http.h"
#include "core/mem.h"
#include "core/node.h"

static long env_long(const char *name)
{
    const char *v = getenv(name);
    if (!v) {
        fail_msg("%s is not set: run through run.sh", name);
    }
    return strtol(v, NULL, 10);
}

/* A fresh database copied from the template. */
static void newdb(const char *name)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "\"%s\" newdb %s", getenv("TRYTON_SANDBOX"), name);
    assert_int_equal(system(cmd), 0);
}

/* ---- a connector instance ------------------------------------------------------------ */

struct fixture {
    struct es_doc *doc;
    struct es_system_cfg cfg;
    struct es_conn *conn;
};

static int open_as(struct fixture *f, const char *url, const char *db, const char *login_env,
                   const char *password_env, const char *options, long timeout_ms,
                   struct es_err *err)
{
    memset(f, 0, sizeof *f);
    int line = 0, col = 0;
    assert_int_equal(es_doc_parse("erp.yaml", options, strlen(options), &f->doc, &line, &col, err),
                     ES_OK);
    f->cfg.name = "erp";
    f->cfg.connector = "tryton";
    f->cfg.url = url;
    f->cfg.database = db;
    f->cfg.timeout_ms = timeout_ms;
    f->cfg.connect_timeout_ms = 5000;
    f->cfg.max_response = 64LL << 20;
    f->cfg.verify_tls = 1;
    f->cfg.auth.login_env = login_env;
    f->cfg.auth.password_env = password_env;
    f->cfg.options = f->doc->root;
    return es_conn_open(&f->cfg, &f->conn, err);
}

static const char *opts =
    "company: 1\n"
    "overlap: 0s\n"
    "objects:\n"
    "  party.party: {match: code, fields: [name, code, credit_limit_amount]}\n"
    "  sale.sale:\n"
    "    match: reference\n"
    "    confirm: true\n"
    "    readback: [state, number, total_amount, invoices]\n";

static void open_api(struct fixture *f, const char *db)
{
    struct es_err err = {0};
    int rc = open_as(f, getenv("TRYTON_URL"), db, "TRYTON_API_LOGIN", "TRYTON_API_PASSWORD", opts,
                     30000, &err);
    if (rc != ES_OK) {
        fail_msg("open: %s", err.msg);
    }
}

static void open_admin(struct fixture *f, const char *db)
{
    struct es_err err = {0};
    int rc = open_as(f, getenv("TRYTON_URL"), db, "TRYTON_ADMIN_LOGIN", "TRYTON_ADMIN_PASSWORD",
                     opts, 30000, &err);
    if (rc != ES_OK) {
        fail_msg("open: %s", err.msg);
    }
}

static void close_conn(struct fixture *f)
{
    es_conn_close(f->conn);
    es_doc_free(f->doc);
}

/* Writes one record and returns its result (asserting the call itself worked). */
static struct es_write_result write1(struct fixture *f, const char *model, enum es_write_op op,
                                     const char *target, const char *match, json_t *data)
{
    struct es_write w = {.key = "k", .target_id = target, .match = match, .data = data};
    struct es_write_result r;
    memset(&r, 0, sizeof r);
    struct es_err err = {0};
    int rc = es_conn_write_batch(f->conn, model, op, NULL, &w, 1, &r, &err);
    if (rc != ES_OK) {
        fail_msg("write %s: %s", model, err.msg);
    }
    json_decref(data);
    return r;
}

static long long create1(struct fixture *f, const char *model, json_t *data)
{
    struct es_write_result r = write1(f, model, ES_WRITE_CREATE, NULL, NULL, data);
    if (r.code != ES_OK) {
        fail_msg("create %s: %s", model, r.err.msg);
    }
    long long id = strtoll(r.target_id, NULL, 10);
    es_write_results_release(&r, 1);
    return id;
}

/* ---- raw JSON-RPC for what the connector does not do (buttons, counts) --------------- */

struct raw {
    struct es_http *http;
    char path[64];
    char auth[256];
};

static void raw_open(struct raw *r, const char *db, const char *login, const char *password)
{
    struct es_err err = {0};
    assert_int_equal(
        es_http_new_plain(getenv("TRYTON_URL"), 120000, 5000, 64u << 20, &r->http, &err), ES_OK);
    snprintf(r->path, sizeof r->path, "/%s/", db);
    r->auth[0] = '\0';
    char body[256];
    snprintf(body, sizeof body,
             "{\"id\":1,\"method\":\"common.db.login\",\"params\":[\"%s\",{\"password\":\"%s\"},"
             "\"en\"]}",
             login, password);
    struct es_http_req_opts rq = {
        .method = "POST", .url = r->path, .body = body, .body_len = strlen(body)};
    json_t *res = NULL;
    assert_int_equal(es_http_json(r->http, &rq, NULL, &res, &err), ES_OK);
    json_t *ok = json_object_get(res, "result");
    assert_true(json_is_array(ok));
    char raw[256];
    snprintf(raw, sizeof raw, "%s:%lld:%s", login,
             (long long)json_integer_value(json_array_get(ok, 0)),
             json_string_value(json_array_get(ok, 1)));
    json_decref(res);
    /* base64 */
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(raw), o = 0;
    o = (size_t)snprintf(r->auth, sizeof r->auth, "Authorization: Session ");
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)(unsigned char)raw[i] << 16;
        v |= i + 1 < n ? (unsigned)(unsigned char)raw[i + 1] << 8 : 0;
        v |= i + 2 < n ? (unsigned)(unsigned char)raw[i + 2] : 0;
        r->auth[o++] = t[(v >> 18) & 63];
        r->auth[o++] = t[(v >> 12) & 63];
        r->auth[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        r->auth[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    r->auth[o] = '\0';
}

/* Calls method with params (stolen); fails the test on an RPC error. OUT: result. */
static json_t *raw_call(struct raw *r, const char *method, json_t *params)
{
    json_t *req = json_pack("{s:i, s:s, s:o}", "id", 1, "method", method, "params", params);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    const char *hdrs[2] = {r->auth, NULL};
    struct es_http_req_opts rq = {
        .method = "POST", .url = r->path, .headers = hdrs, .body = body, .body_len = strlen(body)};
    json_t *res = NULL;
    struct es_err err = {0};
    int rc = es_http_json(r->http, &rq, NULL, &res, &err);
    free(body); /* checksrc: ok (jansson) */
    if (rc != ES_OK) {
        fail_msg("%s: %s", method, err.msg);
    }
    json_t *e = json_object_get(res, "error");
    if (e && !json_is_null(e)) {
        char *s = json_dumps(e, JSON_COMPACT);
        fail_msg("%s: %s", method, s);
    }
    json_t *out = json_incref(json_object_get(res, "result"));
    json_decref(res);
    return out;
}

static void raw_close(struct raw *r)
{
    es_http_free(r->http);
}

static json_t *ctx_company(void)
{
    return json_pack("{s:i}", "company", (int)env_long("TRYTON_COMPANY_ID"));
}

static long long raw_count(struct raw *r, const char *model, json_t *domain)
{
    char m[128];
    snprintf(m, sizeof m, "model.%s.search_count", model);
    json_t *res = raw_call(r, m, json_pack("[o, o]", domain, ctx_company()));
    long long n = json_integer_value(res);
    json_decref(res);
    return n;
}

/* ---- a tiny HTTP server: canned answers, or a proxy that swallows one reply ---------- */

enum srv_mode { SRV_HTML, SRV_CUT_JSON, SRV_NOT_RPC, SRV_PROXY };

struct srv {
    int fd;
    int port;
    enum srv_mode mode;
    const char *swallow; /* proxy: a request containing this gets no answer */
    int upstream_port;
    int swallowed;
    pthread_t thread;
    volatile int stop;
};

static int read_request(int c, char *buf, size_t cap, size_t *len)
{
    *len = 0;
    size_t need = 0;
    while (*len < cap - 1) {
        ssize_t n = read(c, buf + *len, cap - 1 - *len);
        if (n <= 0) {
            return -1;
        }
        *len += (size_t)n;
        buf[*len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end && !need) {
            char *cl = strcasestr(buf, "content-length:");
            need = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
        }
        if (need && *len >= need) {
            return 0;
        }
    }
    return -1;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void answer(int c, const char *type, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     type, strlen(body));
    write_all(c, head, (size_t)n);
    write_all(c, body, strlen(body));
}

static void proxy(struct srv *s, int c, const char *req, size_t len)
{
    int u = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->upstream_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(u, (struct sockaddr *)&a, sizeof a) != 0) {
        close(u);
        return;
    }
    write_all(u, req, len);
    struct es_buf resp;
    es_buf_init(&resp, 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(u, buf, sizeof buf)) > 0) {
        (void)es_buf_append(&resp, buf, (size_t)n);
    }
    close(u);
    if (s->swallow && strstr(req, s->swallow) && !s->swallowed) {
        /* Tryton did the work; the client never hears of it and times out */
        s->swallowed = 1;
        struct pollfd p = {.fd = c, .events = POLLIN};
        (void)poll(&p, 1, 20000);
        es_buf_release(&resp);
        return;
    }
    write_all(c, resp.data ? resp.data : "", resp.len);
    es_buf_release(&resp);
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    while (!s->stop) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) {
            continue;
        }
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) {
            continue;
        }
        char *req = es_xmalloc(1 << 20);
        size_t len = 0;
        if (read_request(c, req, 1 << 20, &len) == 0) {
            switch (s->mode) {
            case SRV_HTML:
                answer(c, "text/html",
                       "<html><head><title>Maintenance</title></head><body>Back soon</body>"
                       "</html>");
                break;
            case SRV_CUT_JSON:
                answer(c, "application/json", "{\"id\": 1, \"result\": [2, \"abc");
                break;
            case SRV_NOT_RPC:
                answer(c, "application/json", "{\"hello\": \"world\"}");
                break;
            case SRV_PROXY:
                proxy(s, c, req, len);
                break;
            }
        }
        es_free(req);
        close(c);
    }
    return NULL;
}

static void srv_start(struct srv *s, enum srv_mode mode)
{
    s->mode = mode;
    s->stop = 0;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t al = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_login_ping_describe(void **state)
{
    (void)state;
    newdb("t_login");
    struct fixture f;
    open_api(&f, "t_login");
    struct es_err err = {0};
    assert_int_equal(es_conn_ping(f.conn, &err), ES_OK);
    json_t *d = NULL;
    assert_int_equal(es_conn_describe(f.conn, "party.party", &d, &err), ES_OK);
    int found = 0;
    size_t i;
    json_t *fl;
    json_array_foreach(json_object_get(d, "fields"), i, fl)
    {
        if (!strcmp(json_string_value(json_object_get(fl, "name")), "addresses")) {
            found = 1;
            assert_string_equal(json_string_value(json_object_get(fl, "type")), "one2many");
            assert_string_equal(json_string_value(json_object_get(fl, "relation")),
                                "party.address");
        }
    }
    assert_true(found);
    json_decref(d);
    close_conn(&f);

    /* a login Tryton does not know: ES_EAUTH (a login used nowhere else: failures are
     * counted per login and slow later attempts down) */
    setenv("ES_TEST_BAD_LOGIN", "erpsync-nobody", 1);
    struct es_err e2 = {0};
    assert_int_equal(open_as(&f, getenv("TRYTON_URL"), "t_login", "ES_TEST_BAD_LOGIN",
                             "TRYTON_API_PASSWORD", opts, 30000, &e2),
                     ES_OK);
    assert_int_equal(es_conn_ping(f.conn, &e2), ES_EAUTH);
    assert_int_equal(e2.http_status, 401);
    close_conn(&f);

    /* an unknown database is a configuration error, said in Tryton's words */
    struct es_err e3 = {0};
    open_api(&f, "no_such_db");
    assert_int_not_equal(es_conn_ping(f.conn, &e3), ES_OK);
    assert_non_null(strstr(e3.msg, "no_such_db"));
    close_conn(&f);
}

static void test_party_idempotent_after_timeout(void **state)
{
    (void)state;
    newdb("t_idem");
    struct fixture f;
    struct es_err err = {0};
    /* warm the database up (its first call loads the pool), so only the create is slow */
    open_api(&f, "t_idem");
    assert_int_equal(es_conn_ping(f.conn, &err), ES_OK);
    close_conn(&f);
    static struct srv s; /* static: the server thread must never see a dead stack frame */
    memset(&s, 0, sizeof s);
    s.upstream_port = (int)env_long("TRYTON_PORT");
    s.swallow = "model.party.party.create";
    srv_start(&s, SRV_PROXY);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
    assert_int_equal(
        open_as(&f, url, "t_idem", "TRYTON_API_LOGIN", "TRYTON_API_PASSWORD", opts, 8000, &err),
        ES_OK);
    struct es_write w = {.key = "crm-1",
                         .match = "CRM-0001",
                         .data = json_pack("{s:s}", "name", "Timeout Industries")};
    struct es_write_result r = {0};
    int rc = es_conn_write_batch(f.conn, "party.party", ES_WRITE_UPSERT, NULL, &w, 1, &r, &err);
    if (rc != ES_ETIMEOUT) {
        srv_stop(&s);
        fail_msg("expected a timeout, got %s: %s", es_code_name(rc), err.msg);
    }
    assert_int_equal(r.code, ES_ETIMEOUT);
    assert_int_equal(s.swallowed, 1);
    es_write_results_release(&r, 1);
    close_conn(&f);
    srv_stop(&s);

    /* Tryton did create it */
    struct raw raw;
    raw_open(&raw, "t_idem", getenv("TRYTON_API_LOGIN"), getenv("TRYTON_API_PASSWORD"));
    assert_int_equal(
        raw_count(&raw, "party.party", json_pack("[[s, s, s]]", "code", "=", "CRM-0001")), 1);
    /* the engine's retry finds it instead of creating a second one */
    open_api(&f, "t_idem");
    memset(&r, 0, sizeof r);
    assert_int_equal(
        es_conn_write_batch(f.conn, "party.party", ES_WRITE_UPSERT, NULL, &w, 1, &r, &err), ES_OK);
    assert_int_equal(r.code, ES_OK);
    assert_int_equal(r.created, 0);
    assert_non_null(r.target_id);
    es_write_results_release(&r, 1);
    /* a plain create retried is idempotent too */
    memset(&r, 0, sizeof r);
    assert_int_equal(
        es_conn_write_batch(f.conn, "party.party", ES_WRITE_CREATE, NULL, &w, 1, &r, &err), ES_OK);
    assert_int_equal(r.code, ES_OK);
    assert_int_equal(r.created, 0);
    es_write_results_release(&r, 1);
    assert_int_equal(
        raw_count(&raw, "party.party", json_pack("[[s, s, s]]", "code", "=", "CRM-0001")), 1);
    json_t *got = NULL;
    assert_int_equal(es_conn_get(f.conn, "party.party", "999999", &got, &err), ES_ENOTFOUND);
    json_decref(w.data);
    raw_close(&raw);
    close_conn(&f);
}

/* The addresses of party id (search by party, in party.address's order: sequence, id), read
 * as [{id, street, city, postal_code}]. OUT: json_decref(). */
static json_t *party_addresses(struct raw *raw, long long party)
{
    return raw_call(raw, "model.party.address.search_read",
                    json_pack("[[[s, s, I]], i, n, [[s, s], [s, s]], [s, s, s], o]", "party", "=",
                              (json_int_t)party, 0, "sequence", "ASC", "id", "ASC", "street",
                              "city", "postal_code", ctx_company()));
}

static json_t *moved(const char *street, const char *city, const char *zip)
{
    return json_pack("{s:s, s:[{s:s, s:s, s:s}]}", "name", "Moving Party", "addresses", "street",
                     street, "city", city, "postal_code", zip);
}

static void assert_address(json_t *list, size_t i, const char *street, const char *city)
{
    json_t *a = json_array_get(list, i);
    assert_string_equal(json_string_value(json_object_get(a, "street")), street);
    assert_string_equal(json_string_value(json_object_get(a, "city")), city);
}

/* A party that moved: its mapped address updates the party's first address (position rule)
 * instead of being ignored; a party without an address gets one; a retried create found by
 * its code adds nothing. */
static void test_party_moved_address(void **state)
{
    (void)state;
    newdb("t_move");
    struct fixture f;
    open_api(&f, "t_move");
    struct raw raw;
    raw_open(&raw, "t_move", getenv("TRYTON_API_LOGIN"), getenv("TRYTON_API_PASSWORD"));

    struct es_write_result r = write1(&f, "party.party", ES_WRITE_UPSERT, NULL, "MV-1",
                                      moved("Alte Gasse 1", "Bonn", "53111"));
    assert_int_equal(r.code, ES_OK);
    assert_int_equal(r.created, 1);
    char pid[32];
    es_strlcpy(pid, r.target_id, sizeof pid);
    long long party = strtoll(pid, NULL, 10);
    es_write_results_release(&r, 1);
    json_t *a = party_addresses(&raw, party);
    assert_int_equal(json_array_size(a), 1);
    long long addr = json_integer_value(json_object_get(json_array_get(a, 0), "id"));
    json_decref(a);

    /* update by id: moved */
    r = write1(&f, "party.party", ES_WRITE_UPDATE, pid, "MV-1",
               moved("Jungfernstieg 7", "Hamburg", "20354"));
    if (r.code != ES_OK) {
        fail_msg("update: %s", r.err.msg);
    }
    es_write_results_release(&r, 1);
    a = party_addresses(&raw, party);
    assert_int_equal(json_array_size(a), 1);
    assert_address(a, 0, "Jungfernstieg 7", "Hamburg");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "id")), addr);
    json_decref(a);

    /* upsert without the link: found by code, its address updated, none added */
    r = write1(&f, "party.party", ES_WRITE_UPSERT, NULL, "MV-1",
               moved("Schlachte 3", "Bremen", "28195"));
    assert_int_equal(r.code, ES_OK);
    assert_int_equal(r.created, 0);
    es_write_results_release(&r, 1);
    /* a create retried: found, nothing written, nothing added */
    r = write1(&f, "party.party", ES_WRITE_CREATE, NULL, "MV-1",
               moved("Schlachte 3", "Bremen", "28195"));
    assert_int_equal(r.code, ES_OK);
    assert_int_equal(r.created, 0);
    es_write_results_release(&r, 1);
    a = party_addresses(&raw, party);
    assert_int_equal(json_array_size(a), 1);
    assert_address(a, 0, "Schlachte 3", "Bremen");
    json_decref(a);
    assert_int_equal(raw_count(&raw, "party.party", json_pack("[[s, s, s]]", "code", "=", "MV-1")),
                     1);

    /* a party whose addresses were all deleted gets one */
    json_decref(raw_call(&raw, "model.party.address.delete",
                         json_pack("[[I], o]", (json_int_t)addr, ctx_company())));
    a = party_addresses(&raw, party);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    r = write1(&f, "party.party", ES_WRITE_UPDATE, pid, "MV-1",
               moved("Domkloster 4", "Koeln", "50667"));
    if (r.code != ES_OK) {
        fail_msg("update without address: %s", r.err.msg);
    }
    es_write_results_release(&r, 1);
    a = party_addresses(&raw, party);
    assert_int_equal(json_array_size(a), 1);
    assert_address(a, 0, "Domkloster 4", "Koeln");
    json_decref(a);
    raw_close(&raw);
    close_conn(&f);
}

static void test_batch_with_bad_record(void **state)
{
    (void)state;
    newdb("t_batch");
    struct fixture f;
    open_api(&f, "t_batch");
    struct es_write w[3] = {
        {.key = "1", .match = "B-1", .data = json_pack("{s:s}", "name", "Good One")},
        {.key = "2", .match = "B-2", .data = json_pack("{s:s, s:s}", "name", "Bad", "lang", "x")},
        {.key = "3", .match = "B-3", .data = json_pack("{s:s}", "name", "Good Two")},
    };
    struct es_write_result r[3];
    memset(r, 0, sizeof r);
    struct es_err err = {0};
    assert_int_equal(
        es_conn_write_batch(f.conn, "party.party", ES_WRITE_UPSERT, NULL, w, 3, r, &err), ES_OK);
    assert_int_equal(r[0].code, ES_OK);
    assert_int_equal(r[0].created, 1);
    assert_int_not_equal(r[1].code, ES_OK);
    assert_string_equal(r[1].err.system, "erp");
    assert_true(r[1].err.msg[0] != '\0');
    assert_int_equal(r[2].code, ES_OK);
    es_write_results_release(r, 3);
    for (int i = 0; i < 3; i++) {
        json_decref(w[i].data);
    }
    close_conn(&f);
}

static void test_paging_past_5000_rows(void **state)
{
    (void)state;
    newdb("t_paging");
    enum { N = 5100 };
    struct raw raw;
    raw_open(&raw, "t_paging", "admin", getenv("TRYTON_ADMIN_PASSWORD"));
    json_t *list = json_array();
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "Bulk %05d", i);
        json_array_append_new(list, json_pack("{s:s}", "name", name));
    }
    /* one create call: one transaction, so all share one create_date */
    json_t *ids = raw_call(&raw, "model.party.category.create", json_pack("[o, {}]", list));
    assert_int_equal(json_array_size(ids), N);
    json_decref(ids);
    raw_close(&raw);

    struct fixture f;
    open_api(&f, "t_paging");
    struct es_err err = {0};
    char *seen = es_xcalloc(N * 4 + 1, 1);
    size_t total = 0;
    char *page = NULL;
    int pages = 0;
    do {
        struct es_batch b;
        assert_int_equal(es_conn_read_page(f.conn, "party.category", page, 1000, &b, &err), ES_OK);
        pages++;
        for (size_t i = 0; i < b.count; i++) {
            long id = strtol(b.items[i].key, NULL, 10);
            assert_true(id > 0 && id <= N * 4);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
            total++;
        }
        es_free(page);
        page = b.next_page ? es_xstrdup(b.next_page) : NULL;
        es_batch_release(&b);
    } while (page && pages < 20);
    assert_int_equal(total, N);
    assert_int_equal(pages, 6);

    /* the same rows as changes: 5,100 records with one timestamp, read 1,000 at a time */
    memset(seen, 0, N * 4 + 1);
    total = 0;
    char *mark = NULL;
    for (int round = 0; round < 20; round++) {
        struct es_batch b;
        assert_int_equal(es_conn_read_changes(f.conn, "party.category", mark, 1000, &b, &err),
                         ES_OK);
        for (size_t i = 0; i < b.count; i++) {
            long id = strtol(b.items[i].key, NULL, 10);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
            total++;
        }
        size_t n = b.count;
        es_free(mark);
        mark = b.watermark ? es_xstrdup(b.watermark) : NULL;
        es_batch_release(&b);
        if (n == 0) {
            break;
        }
    }
    assert_int_equal(total, N);
    es_free(mark);
    es_free(seen);
    close_conn(&f);
}

static void test_write_date_watermark(void **state)
{
    (void)state;
    newdb("t_mark");
    struct fixture f;
    open_api(&f, "t_mark");
    long long a = create1(&f, "party.party", json_pack("{s:s, s:s}", "name", "A", "code", "W-A"));
    long long b = create1(&f, "party.party", json_pack("{s:s, s:s}", "name", "B", "code", "W-B"));
    long long c = create1(&f, "party.party", json_pack("{s:s, s:s}", "name", "C", "code", "W-C"));
    struct es_err err = {0};
    char *mark = NULL;
    int seen = 0;
    for (int round = 0; round < 10; round++) {
        struct es_batch bt;
        assert_int_equal(es_conn_read_changes(f.conn, "party.party", mark, 2, &bt, &err), ES_OK);
        for (size_t i = 0; i < bt.count; i++) {
            long long id = strtoll(bt.items[i].key, NULL, 10);
            seen += id == a || id == b || id == c;
            /* never edited: write_date is null, the version is the create_date */
            assert_true(json_is_null(json_object_get(bt.items[i].data, "write_date")));
            assert_string_equal(bt.items[i].version, json_string_value(json_object_get(
                                                         bt.items[i].data, "create_date")));
        }
        size_t n = bt.count;
        es_free(mark);
        mark = bt.watermark ? es_xstrdup(bt.watermark) : NULL;
        es_batch_release(&bt);
        if (n == 0) {
            break;
        }
    }
    assert_int_equal(seen, 3);
    assert_non_null(mark);
    assert_non_null(strchr(mark, '|'));
    /* nothing new: nothing read, watermark unchanged */
    struct es_batch bt;
    assert_int_equal(es_conn_read_changes(f.conn, "party.party", mark, 100, &bt, &err), ES_OK);
    assert_int_equal(bt.count, 0);
    assert_string_equal(bt.watermark, mark);
    es_batch_release(&bt);
    /* an edit of B: exactly B comes back, with its write_date as version */
    char bid[32];
    snprintf(bid, sizeof bid, "%lld", b);
    struct es_write_result r = write1(&f, "party.party", ES_WRITE_UPDATE, bid, NULL,
                                      json_pack("{s:s}", "name", "B edited"));
    assert_int_equal(r.code, ES_OK);
    assert_int_equal(r.created, 0);
    es_write_results_release(&r, 1);
    assert_int_equal(es_conn_read_changes(f.conn, "party.party", mark, 100, &bt, &err), ES_OK);
    assert_int_equal(bt.count, 1);
    assert_string_equal(bt.items[0].key, bid);
    assert_string_equal(json_string_value(json_object_get(bt.items[0].data, "name")), "B edited");
    assert_string_equal(bt.items[0].version,
                        json_string_value(json_object_get(bt.items[0].data, "write_date")));
    assert_true(strcmp(bt.items[0].version, mark) > 0);
    es_batch_release(&bt);
    es_free(mark);
    json_t *got = NULL;
    assert_int_equal(es_conn_get(f.conn, "party.party", bid, &got, &err), ES_OK);
    assert_string_equal(json_string_value(json_object_get(got, "code")), "W-B");
    json_decref(got);
    close_conn(&f);

    /* with an overlap, a poll that caught up steps back so late commits are read again */
    struct es_err e2 = {0};
    assert_int_equal(open_as(&f, getenv("TRYTON_URL"), "t_mark", "TRYTON_API_LOGIN",
                             "TRYTON_API_PASSWORD", "company: 1\noverlap: 1h\n", 30000, &e2),
                     ES_OK);
    assert_int_equal(es_conn_read_changes(f.conn, "party.party", NULL, 1000, &bt, &e2), ES_OK);
    assert_true(bt.count >= 3);
    const char *newest = bt.items[bt.count - 1].version;
    assert_non_null(bt.watermark);
    assert_true(strcmp(bt.watermark, newest) < 0);
    assert_non_null(strstr(bt.watermark, "|0"));
    char *back = es_xstrdup(bt.watermark);
    /* the records of the window: changed at or after the stepped-back time (the template's
     * own records may be older than the hour when the template was built earlier) */
    size_t tl = (size_t)(strchr(back, '|') - back);
    size_t first = 0;
    for (size_t i = 0; i < bt.count; i++) {
        first += strncmp(bt.items[i].version, back, tl) >= 0;
    }
    assert_true(first >= 3);
    es_batch_release(&bt);
    assert_int_equal(es_conn_read_changes(f.conn, "party.party", back, 1000, &bt, &e2), ES_OK);
    assert_int_equal(bt.count, first); /* the whole window again */
    es_batch_release(&bt);
    es_free(back);
    close_conn(&f);
}

static void test_sale_credit_limit_invoice_stock(void **state)
{
    (void)state;
    newdb("t_sale");
    long unit = env_long("TRYTON_UOM_UNIT_ID"), wh = env_long("TRYTON_WAREHOUSE_ID");
    struct fixture f, adm;
    open_api(&f, "t_sale");
    open_admin(&adm, "t_sale");
    struct raw raw;
    raw_open(&raw, "t_sale", getenv("TRYTON_API_LOGIN"), getenv("TRYTON_API_PASSWORD"));

    /* product: list price and cost are exact decimals given as strings */
    long long tmpl = create1(
        &f, "product.template",
        json_pack("{s:s, s:s, s:s, s:i, s:b, s:i, s:s, s:i, s:[{s:s}]}", "name", "Widget", "code",
                  "SKU-1", "type", "goods", "default_uom", (int)unit, "salable", 1, "sale_uom",
                  (int)unit, "list_price", "10.00", "account_category",
                  (int)env_long("TRYTON_ACCOUNT_CATEGORY_ID"), "products", "cost_price", "4.00"));
    json_t *pp = raw_call(&raw, "model.product.product.search",
                          json_pack("[[[s, s, I]], i, n, n, o]", "template", "=", (json_int_t)tmpl,
                                    0, ctx_company()));
    long long prod = json_integer_value(json_array_get(pp, 0));
    json_decref(pp);
    assert_true(prod > 0);
    /* 20 units in stock */
    long long move =
        create1(&f, "stock.move",
                json_pack("{s:I, s:i, s:i, s:i, s:i, s:s, s:i, s:i}", "product", (json_int_t)prod,
                          "uom", (int)unit, "quantity", 20, "from_location",
                          (int)env_long("TRYTON_SUPPLIER_LOCATION_ID"), "to_location",
                          (int)env_long("TRYTON_STORAGE_LOCATION_ID"), "unit_price", "4.00",
                          "currency", (int)env_long("TRYTON_CURRENCY_ID"), "company",
                          (int)env_long("TRYTON_COMPANY_ID")));
    json_decref(raw_call(&raw, "model.stock.move.do",
                         json_pack("[[I], o]", (json_int_t)move, ctx_company())));

    /* customer with an address (one2many given as a list of objects) */
    long long party = create1(&f, "party.party",
                              json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "name", "Credit Corp",
                                        "code", "CC-1", "addresses", "street", "Main Street 1",
                                        "postal_code", "10115", "city", "Berlin"));
    json_t *addr = raw_call(
        &raw, "model.party.address.search",
        json_pack("[[[s, s, I]], i, n, n, o]", "party", "=", (json_int_t)party, 0, ctx_company()));
    long long address = json_integer_value(json_array_get(addr, 0));
    json_decref(addr);
    /* the credit limit is set by admin (the API user may not) */
    char pid[32];
    snprintf(pid, sizeof pid, "%lld", party);
    struct es_write_result r = write1(&adm, "party.party", ES_WRITE_UPDATE, pid, NULL,
                                      json_pack("{s:s}", "credit_limit_amount", "50.00"));
    assert_int_equal(r.code, ES_OK);
    es_write_results_release(&r, 1);
    r = write1(&f, "party.party", ES_WRITE_UPDATE, pid, NULL,
               json_pack("{s:s}", "credit_limit_amount", "5000.00"));
    assert_int_equal(r.code, ES_EAUTH); /* Tryton: not allowed to access the field */
    es_write_results_release(&r, 1);

#define SALE(ref, qty)                                                                             \
    json_pack("{s:I, s:I, s:I, s:i, s:s, s:[{s:s, s:I, s:i, s:i, s:s}]}", "party",                 \
              (json_int_t)party, "invoice_address", (json_int_t)address, "shipment_address",       \
              (json_int_t)address, "payment_term", (int)env_long("TRYTON_PAYMENT_TERM_ID"),        \
              "reference", ref, "lines", "type", "line", "product", (json_int_t)prod, "quantity",  \
              qty, "unit", (int)unit, "unit_price", "10.00")

    /* sale 1: 3 x 10.00 = 30.00, within the limit: confirmed and processed */
    r = write1(&f, "sale.sale", ES_WRITE_UPSERT, NULL, "CRM-ORDER-1", SALE("CRM-ORDER-1", 3));
    if (r.code != ES_OK) {
        fail_msg("sale 1: %s", r.err.msg);
    }
    assert_int_equal(r.created, 1);
    const char *st = json_string_value(json_object_get(r.readback, "state"));
    assert_true(!strcmp(st, "processing") || !strcmp(st, "confirmed"));
    assert_string_equal(json_string_value(json_object_get(r.readback, "total_amount")), "30.00");
    long long sale1 = strtoll(r.target_id, NULL, 10);
    es_write_results_release(&r, 1);

    /* its invoice: draft, 30.00; posted it is 30.00 to pay */
    struct es_err err = {0};
    struct es_batch inv;
    assert_int_equal(es_conn_read_changes(f.conn, "account.invoice", NULL, 100, &inv, &err), ES_OK);
    assert_int_equal(inv.count, 1);
    json_t *i0 = inv.items[0].data;
    assert_string_equal(json_string_value(json_object_get(i0, "state")), "draft");
    assert_string_equal(json_string_value(json_object_get(i0, "total_amount")), "30.00");
    assert_int_equal(json_integer_value(json_object_get(i0, "party")), party);
    long long invoice = strtoll(inv.items[0].key, NULL, 10);
    char *mark = es_xstrdup(inv.watermark);
    es_batch_release(&inv);
    json_decref(raw_call(&raw, "model.account.invoice.post",
                         json_pack("[[I], o]", (json_int_t)invoice, ctx_company())));
    assert_int_equal(es_conn_read_changes(f.conn, "account.invoice", mark, 100, &inv, &err), ES_OK);
    assert_int_equal(inv.count, 1);
    i0 = inv.items[0].data;
    assert_string_equal(json_string_value(json_object_get(i0, "state")), "posted");
    assert_string_equal(json_string_value(json_object_get(i0, "amount_to_pay")), "30.00");
    es_batch_release(&inv);
    es_free(mark);

    /* sale 2: 30.00 more over a limit of 50.00 with 30.00 receivable: refused */
    r = write1(&f, "sale.sale", ES_WRITE_UPSERT, NULL, "CRM-ORDER-2", SALE("CRM-ORDER-2", 3));
    assert_int_equal(r.code, ES_EREJECTED);
    assert_int_equal(es_code_class(r.code), ES_CLASS_BUSINESS);
    assert_non_null(strstr(r.err.remote_msg, "credit limit"));
    assert_non_null(strstr(r.err.msg, "Credit Corp"));
    assert_string_equal(r.err.remote_code, "UserError");
    assert_string_equal(json_string_value(json_object_get(r.readback, "state")), "quotation");
    assert_non_null(r.target_id);
    char sale2[32];
    es_strlcpy(sale2, r.target_id, sizeof sale2);
    es_write_results_release(&r, 1);
    /* a retry finds the same sale, and is refused again */
    r = write1(&f, "sale.sale", ES_WRITE_UPSERT, NULL, "CRM-ORDER-2", SALE("CRM-ORDER-2", 3));
    assert_int_equal(r.code, ES_EREJECTED);
    assert_string_equal(r.target_id, sale2);
    assert_int_equal(r.created, 0);
    es_write_results_release(&r, 1);
    assert_int_equal(raw_count(&raw, "sale.sale", json_pack("[]")), 2);

    /* stock per warehouse: 20 in, 3 sold (reserved by the shipment) */
    struct es_batch sq;
    assert_int_equal(es_conn_read_page(f.conn, "stock_quantity", NULL, 100, &sq, &err), ES_OK);
    char key[64];
    snprintf(key, sizeof key, "%lld@%ld", prod, wh);
    int found = 0;
    for (size_t i = 0; i < sq.count; i++) {
        if (!strcmp(sq.items[i].key, key)) {
            found = 1;
            json_t *d = sq.items[i].data;
            assert_true(json_number_value(json_object_get(d, "quantity")) == 20.0);
            assert_true(json_number_value(json_object_get(d, "forecast_quantity")) == 17.0);
            assert_string_equal(json_string_value(json_object_get(d, "code")), "SKU-1");
        }
    }
    assert_true(found);
    es_batch_release(&sq);
    json_t *q = NULL;
    assert_int_equal(es_conn_get(f.conn, "stock_quantity", key, &q, &err), ES_OK);
    assert_true(json_number_value(json_object_get(q, "quantity")) == 20.0);
    json_decref(q);

    /* sale read by id: plain values */
    char s1[32];
    snprintf(s1, sizeof s1, "%lld", sale1);
    json_t *sale = NULL;
    assert_int_equal(es_conn_get(f.conn, "sale.sale", s1, &sale, &err), ES_OK);
    assert_string_equal(json_string_value(json_object_get(sale, "reference")), "CRM-ORDER-1");
    assert_string_equal(json_string_value(json_object_get(sale, "untaxed_amount")), "30.00");
    assert_true(json_is_string(json_object_get(sale, "sale_date")));
    json_decref(sale);
    raw_close(&raw);
    close_conn(&adm);
    close_conn(&f);
}

static void test_malformed_answers(void **state)
{
    (void)state;
    const enum srv_mode modes[] = {SRV_HTML, SRV_CUT_JSON, SRV_NOT_RPC};
    const char *want[] = {"HTML", "invalid JSON", "not a JSON-RPC reply"};
    for (size_t i = 0; i < 3; i++) {
        static struct srv s;
        memset(&s, 0, sizeof s);
        srv_start(&s, modes[i]);
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
        struct fixture f;
        struct es_err err = {0};
        assert_int_equal(
            open_as(&f, url, "erp", "TRYTON_API_LOGIN", "TRYTON_API_PASSWORD", opts, 5000, &err),
            ES_OK);
        assert_int_equal(es_conn_ping(f.conn, &err), ES_EPROTOCOL);
        if (!strstr(err.msg, want[i])) {
            fail_msg("mode %zu: '%s' lacks '%s'", i, err.msg, want[i]);
        }
        assert_string_equal(err.system, "erp");
        close_conn(&f);
        srv_stop(&s);
    }
}

static void test_bad_options(void **state)
{
    (void)state;
    struct fixture f;
    struct es_err err = {0};
    const char *o = "company: 1\nobjects:\n  sale.sale:\n    confirm: true\n    macth: reference\n";
    assert_int_equal(open_as(&f, getenv("TRYTON_URL"), "erp", "TRYTON_API_LOGIN",
                             "TRYTON_API_PASSWORD", o, 5000, &err),
                     ES_ECONFIG);
    assert_non_null(strstr(err.msg, "erp.yaml:5:5: unknown key 'macth'"));
    assert_non_null(strstr(err.msg, "did you mean 'match'"));
    close_conn(&f);
    struct es_err e2 = {0};
    assert_int_equal(open_as(&f, getenv("TRYTON_URL"), "erp", "TRYTON_API_LOGIN",
                             "TRYTON_API_PASSWORD", "company: first\n", 5000, &e2),
                     ES_ECONFIG);
    assert_non_null(strstr(e2.msg, "erp.yaml:1:10:"));
    close_conn(&f);
}

/* Reads changes from *mark; fills state[k] for parties a, b, c: -1 unseen, 0 live, 1 deleted;
 * *vanished counts deleted records whose version says they vanished. */
static void read_del(struct fixture *f, char **mark, const long long ids[3], int state3[3],
                     int *vanished)
{
    struct es_batch bt;
    struct es_err err = {0};
    int rc = es_conn_read_changes(f->conn, "party.party", *mark, 100, &bt, &err);
    if (rc != ES_OK) {
        fail_msg("read_changes: %s", err.msg);
    }
    state3[0] = state3[1] = state3[2] = -1;
    *vanished = 0;
    for (size_t i = 0; i < bt.count; i++) {
        long long id = strtoll(bt.items[i].key, NULL, 10);
        for (int k = 0; k < 3; k++) {
            if (id == ids[k]) {
                state3[k] = bt.items[i].deleted;
            }
        }
        if (bt.items[i].deleted && strncmp(bt.items[i].version, "vanished@", 9) == 0) {
            (*vanished)++;
        }
    }
    if (bt.watermark) {
        es_free(*mark);
        *mark = es_xstrdup(bt.watermark);
    }
    es_batch_release(&bt);
}

static void test_deletes(void **state)
{
    (void)state;
    newdb("t_del");
    struct fixture f, plain;
    struct es_err err = {0};
    int rc = open_as(&f, getenv("TRYTON_URL"), "t_del", "TRYTON_API_LOGIN", "TRYTON_API_PASSWORD",
                     "company: 1\noverlap: 0s\nobjects:\n"
                     "  party.party: {match: code, fields: [name, code], "
                     "archived_as_deleted: true, detect_vanished: true}\n",
                     30000, &err);
    if (rc != ES_OK) {
        fail_msg("open: %s", err.msg);
    }
    open_api(&plain, "t_del");
    long long ids[3];
    ids[0] = create1(&f, "party.party", json_pack("{s:s, s:s}", "name", "A", "code", "D-A"));
    ids[1] = create1(&f, "party.party", json_pack("{s:s, s:s}", "name", "B", "code", "D-B"));
    ids[2] = create1(&f, "party.party", json_pack("{s:s, s:s}", "name", "C", "code", "D-C"));
    char *mark = NULL, *plain_mark = NULL;
    int st[3], vanished = 0;
    read_del(&f, &mark, ids, st, &vanished); /* also the first id scan: learns, reports none */
    assert_int_equal(st[0], 0);
    assert_int_equal(st[1], 0);
    assert_int_equal(st[2], 0);
    assert_int_equal(vanished, 0);
    read_del(&plain, &plain_mark, ids, st, &vanished);

    /* B is archived (active = false): a delete for the flow that asked for it */
    char bid[32], cid[32];
    snprintf(bid, sizeof bid, "%lld", ids[1]);
    snprintf(cid, sizeof cid, "%lld", ids[2]);
    struct es_write_result r =
        write1(&f, "party.party", ES_WRITE_UPDATE, bid, NULL, json_pack("{s:b}", "active", 0));
    assert_int_equal(r.code, ES_OK);
    es_write_results_release(&r, 1);
    read_del(&f, &mark, ids, st, &vanished);
    assert_int_equal(st[0], -1);
    assert_int_equal(st[1], 1);
    assert_int_equal(st[2], -1);
    assert_int_equal(vanished, 0); /* archived is not gone */
    /* without archived_as_deleted, Tryton hides the archived record (as before) */
    read_del(&plain, &plain_mark, ids, st, &vanished);
    assert_int_equal(st[1], -1);

    /* C is deleted for real: no tombstone in Tryton, found missing by the id scan */
    r = write1(&f, "party.party", ES_WRITE_DELETE, cid, NULL, NULL);
    assert_int_equal(r.code, ES_OK);
    es_write_results_release(&r, 1);
    read_del(&f, &mark, ids, st, &vanished);
    assert_int_equal(st[2], 1);
    assert_int_equal(vanished, 1);
    assert_int_equal(st[0], -1);
    /* reported once */
    read_del(&f, &mark, ids, st, &vanished);
    assert_int_equal(st[2], -1);
    assert_int_equal(vanished, 0);
    /* the plain instance never hears of it (documented: hard deletes need detect_vanished) */
    read_del(&plain, &plain_mark, ids, st, &vanished);
    assert_int_equal(st[2], -1);
    es_free(mark);
    es_free(plain_mark);
    close_conn(&plain);
    close_conn(&f);

    /* a new process learns the ids first: what vanished before it started is not seen */
    rc = open_as(&f, getenv("TRYTON_URL"), "t_del", "TRYTON_API_LOGIN", "TRYTON_API_PASSWORD",
                 "company: 1\nobjects: {party.party: {detect_vanished: yes}}\n", 30000, &err);
    assert_int_equal(rc, ES_OK);
    mark = NULL;
    read_del(&f, &mark, ids, st, &vanished);
    assert_int_equal(vanished, 0);
    es_free(mark);
    close_conn(&f);
    struct es_err e3 = {0};
    assert_int_equal(open_as(&f, getenv("TRYTON_URL"), "t_del", "TRYTON_API_LOGIN",
                             "TRYTON_API_PASSWORD",
                             "objects: {party.party: {detect_vanished: maybe}}\n", 30000, &e3),
                     ES_ECONFIG);
    assert_non_null(strstr(e3.msg, "detect_vanished must be true or false"));
    close_conn(&f);
}

int main(void)
{
    if (!getenv("TRYTON_URL") || !getenv("TRYTON_SANDBOX")) {
        fprintf(stderr, "TRYTON_URL is not set: run through run.sh\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_login_ping_describe),
        cmocka_unit_test(test_party_idempotent_after_timeout),
        cmocka_unit_test(test_batch_with_bad_record),
        cmocka_unit_test(test_party_moved_address),
        cmocka_unit_test(test_write_date_watermark),
        cmocka_unit_test(test_deletes),
        cmocka_unit_test(test_sale_credit_limit_invoice_stock),
        cmocka_unit_test(test_paging_past_5000_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
