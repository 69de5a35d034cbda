/* SPDX-License-Identifier: MIT */
/*
 * Salesforce emulator: the HTTP face. OAuth 2.0 token endpoint (client_credentials,
 * password, refresh_token) and bearer checks, the daily API request limit and its
 * Sforce-Limit-Info header, and the REST resources under /services/data/vNN.N: versions,
 * limits, describe, sObject rows and upserts, getUpdated/getDeleted, query/queryAll with
 * cursors, sObject collections, composite and composite batch. Bulk API 2.0 is in sf_bulk.c.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/hmac.h"
#include "core/mem.h"
#include "sf_int.h"

#define MAX_CURSORS 16

struct sf_cursor {
    char id[19];
    json_t *records;
    long total;
    int batch;
    struct sf_cursor *next;
};

void sf_cursors_free(struct sf_ctx *c)
{
    struct sf_cursor *k = c->cursors;
    while (k) {
        struct sf_cursor *n = k->next;
        json_decref(k->records);
        es_free(k);
        k = n;
    }
    c->cursors = NULL;
}

void sf_errors_reply(struct sb_resp *resp, int status, json_t *errs)
{
    sb_resp_json(resp, status, errs);
}

void sf_error_reply(struct sb_resp *resp, int status, const char *code, const char *msg)
{
    json_t *e = json_array();
    json_array_append_new(e, json_pack("{s:s,s:s}", "message", msg, "errorCode", code));
    sb_resp_json(resp, status, e);
}

int sf_query_arg(const char *query, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = query;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t kl = eq ? (size_t)(eq - p) : len;
        if (kl == nl && strncmp(p, name, nl) == 0) {
            if (eq) {
                sb_decode(eq + 1, len - kl - 1, out, cap, 1);
            } else if (cap) {
                out[0] = '\0';
            }
            return 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* ---- OAuth ---- */

static void random_token(char *out, size_t n)
{
    static const char al[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char raw[128];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, raw, sizeof raw) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (got != (ssize_t)sizeof raw) {
        uint64_t x = (uint64_t)sb_now_ms() * 6364136223846793005ULL + 1;
        for (size_t i = 0; i < sizeof raw; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            raw[i] = (unsigned char)(x >> 56);
        }
    }
    for (size_t i = 0; i + 1 < n && i < sizeof raw; i++) {
        out[i] = al[raw[i] % 62];
    }
    out[n - 1 < sizeof raw ? n - 1 : sizeof raw] = '\0';
}

static void oauth_error(struct sb_resp *resp, int status, const char *err, const char *desc)
{
    sb_resp_json(resp, status, json_pack("{s:s,s:s}", "error", err, "error_description", desc));
}

/* base64url (no padding) into out; returns the length or -1. */
static long b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    unsigned v = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int d;
        char ch = s[i];
        if (ch >= 'A' && ch <= 'Z') {
            d = ch - 'A';
        } else if (ch >= 'a' && ch <= 'z') {
            d = ch - 'a' + 26;
        } else if (ch >= '0' && ch <= '9') {
            d = ch - '0' + 52;
        } else if (ch == '-') {
            d = 62;
        } else if (ch == '_') {
            d = 63;
        } else {
            return -1;
        }
        v = (v << 6) | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) {
                return -1;
            }
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    return (long)o;
}

/* Checks a JWT bearer assertion like an org with a connected app holding the certificate:
 * RS256 signature by --jwt-public-key, iss = consumer key, sub = username, aud, exp in the
 * future. Returns NULL when good, else the OAuth error code; *desc gets the description. */
static const char *check_assertion(struct sf_ctx *c, const char *jwt, const char **desc)
{
    *desc = "invalid assertion";
    const char *d1 = strchr(jwt, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.')) {
        return "invalid_grant";
    }
    unsigned char hdr[512], claims[4096], sig[1024];
    long hl = b64url_decode(jwt, (size_t)(d1 - jwt), hdr, sizeof hdr - 1);
    long cl = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), claims, sizeof claims - 1);
    long sl = b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig);
    if (hl <= 0 || cl <= 0 || sl <= 0) {
        return "invalid_grant";
    }
    json_t *h = json_loadb((const char *)hdr, (size_t)hl, 0, NULL);
    const char *alg = json_string_value(json_object_get(h, "alg"));
    int rs256 = alg && strcmp(alg, "RS256") == 0;
    json_decref(h);
    if (!rs256) {
        *desc = "invalid assertion: alg must be RS256";
        return "invalid_grant";
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok =
        md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, c->jwt_key) == 1 &&
        EVP_DigestVerify(md, sig, (size_t)sl, (const unsigned char *)jwt, (size_t)(d2 - jwt)) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) {
        *desc = "invalid assertion: signature does not verify";
        return "invalid_grant";
    }
    json_t *cj = json_loadb((const char *)claims, (size_t)cl, 0, NULL);
    const char *iss = json_string_value(json_object_get(cj, "iss"));
    const char *sub = json_string_value(json_object_get(cj, "sub"));
    const char *aud = json_string_value(json_object_get(cj, "aud"));
    json_t *exp = json_object_get(cj, "exp");
    const char *code = NULL;
    if (!iss || strcmp(iss, c->client_id) != 0) {
        code = "invalid_client_id";
        *desc = "client identifier invalid";
    } else if (!sub || strcmp(sub, c->username) != 0) {
        code = "invalid_grant";
        *desc = "user hasn't approved this consumer";
    } else if (!aud || strcmp(aud, c->jwt_audience) != 0) {
        code = "invalid_grant";
        *desc = "audience is invalid";
    } else if (!json_is_integer(exp) || json_integer_value(exp) * 1000 <= sb_now_ms()) {
        code = "invalid_grant";
        *desc = "expired assertion";
    }
    json_decref(cj);
    return code;
}

static void oauth_token(struct sf_ctx *c, const struct sb_req *req, struct sb_resp *resp)
{
    char grant[64] = "", cid[256] = "", csec[256] = "", user[256] = "", pass[256] = "",
         refresh[256] = "";
    const char *src = req->body;
    if (!sf_query_arg(src, "grant_type", grant, sizeof grant)) {
        src = sb_req_query(req);
        sf_query_arg(src, "grant_type", grant, sizeof grant);
    }
    sf_query_arg(src, "client_id", cid, sizeof cid);
    sf_query_arg(src, "client_secret", csec, sizeof csec);
    sf_query_arg(src, "username", user, sizeof user);
    sf_query_arg(src, "password", pass, sizeof pass);
    sf_query_arg(src, "refresh_token", refresh, sizeof refresh);
    if (strcmp(req->method, "POST") != 0) {
        oauth_error(resp, 400, "invalid_request", "must use HTTP POST");
        return;
    }
    if (!grant[0]) {
        oauth_error(resp, 400, "invalid_request", "grant type is missing");
        return;
    }
    int password = strcmp(grant, "password") == 0;
    int cc = strcmp(grant, "client_credentials") == 0;
    int rt = strcmp(grant, "refresh_token") == 0;
    int jwt = strcmp(grant, "urn:ietf:params:oauth:grant-type:jwt-bearer") == 0 && c->jwt_key;
    if (!password && !cc && !rt && !jwt) {
        oauth_error(resp, 400, "unsupported_grant_type", "grant type not supported");
        return;
    }
    if (jwt) {
        char assertion[16384];
        const char *desc = NULL;
        const char *bad = sf_query_arg(src, "assertion", assertion, sizeof assertion)
                              ? check_assertion(c, assertion, &desc)
                              : "invalid_request";
        if (bad) {
            oauth_error(resp, 400, bad, desc ? desc : "assertion is missing");
            return;
        }
    } else if (strcmp(cid, c->client_id) != 0) {
        oauth_error(resp, 400, "invalid_client_id", "client identifier invalid");
        return;
    }
    if (!jwt && (cc || password || csec[0]) && strcmp(csec, c->client_secret) != 0) {
        oauth_error(resp, 400, "invalid_client", "invalid client credentials");
        return;
    }
    if (password && (strcmp(user, c->username) != 0 || strcmp(pass, c->password) != 0)) {
        oauth_error(resp, 400, "invalid_grant", "authentication failure");
        return;
    }
    if (rt) {
        sqlite3_stmt *st = NULL;
        int found = 0;
        sqlite3_prepare_v2(c->db, "SELECT 1 FROM token WHERE refresh=?1 LIMIT 1", -1, &st, NULL);
        sqlite3_bind_text(st, 1, refresh, -1, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (!found) {
            oauth_error(resp, 400, "invalid_grant", "expired access/refresh token");
            return;
        }
    }
    char rnd[97], access[128], newrefresh[100] = "";
    random_token(rnd, sizeof rnd);
    snprintf(access, sizeof access, "%.15s!%s", c->org_id, rnd);
    if (password) {
        random_token(newrefresh, 88);
        memcpy(newrefresh, "5Aep8", 5);
    } else if (rt && c->rotate_refresh) {
        /* rotation: the token used is spent, a new one is answered */
        random_token(newrefresh, 88);
        memcpy(newrefresh, "5Aep8", 5);
        sqlite3_stmt *up = NULL;
        sqlite3_prepare_v2(c->db, "UPDATE token SET refresh=NULL WHERE refresh=?1", -1, &up, NULL);
        sqlite3_bind_text(up, 1, refresh, -1, SQLITE_STATIC);
        sqlite3_step(up);
        sqlite3_finalize(up);
    } else if (rt) {
        es_strlcpy(newrefresh, refresh, sizeof newrefresh);
    }
    int64_t now = sb_now_ms();
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(c->db,
                       "INSERT INTO token(access,refresh,issued,expires) VALUES(?1,?2,?3,?4)", -1,
                       &st, NULL);
    sqlite3_bind_text(st, 1, access, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, newrefresh[0] ? newrefresh : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now + c->token_ttl_ms);
    sqlite3_step(st);
    sqlite3_finalize(st);
    const char *host = sb_req_header(req, "Host");
    char inst[300], idurl[400], issued[32];
    snprintf(inst, sizeof inst, "http://%s", host ? host : "127.0.0.1");
    snprintf(idurl, sizeof idurl, "%s/id/%s/%s", inst, c->org_id, c->user_id);
    snprintf(issued, sizeof issued, "%lld", (long long)now);
    struct es_buf sigsrc, sig;
    es_buf_init(&sigsrc, 0);
    es_buf_init(&sig, 0);
    es_buf_printf(&sigsrc, "%s%s", idurl, issued);
    unsigned char mac[ES_HMAC_SHA256_LEN];
    int rc = es_hmac_sha256(c->client_secret, strlen(c->client_secret), sigsrc.data, sigsrc.len,
                            mac, NULL);
    ES_ASSERT(rc == ES_OK); /* libcrypto fails only out of memory: abort like es_xmalloc */
    sb_base64(&sig, mac, sizeof mac);
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "access_token", access, "signature", sig.data,
                  "scope", newrefresh[0] ? "refresh_token api" : "api", "instance_url", inst, "id",
                  idurl, "token_type", "Bearer", "issued_at", issued);
    if (password || (rt && c->rotate_refresh)) {
        json_object_set_new(j, "refresh_token", json_string(newrefresh));
    }
    es_buf_release(&sigsrc);
    es_buf_release(&sig);
    sb_resp_json(resp, 200, j);
}

static void oauth_revoke(struct sf_ctx *c, const struct sb_req *req, struct sb_resp *resp)
{
    char tok[256] = "";
    if (!sf_query_arg(req->body, "token", tok, sizeof tok)) {
        sf_query_arg(sb_req_query(req), "token", tok, sizeof tok);
    }
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(c->db, "DELETE FROM token WHERE access=?1 OR refresh=?1", -1, &st, NULL);
    sqlite3_bind_text(st, 1, tok, -1, SQLITE_STATIC);
    sqlite3_step(st);
    int n = sqlite3_changes(c->db);
    sqlite3_finalize(st);
    memset(c->tcache, 0, sizeof c->tcache);
    if (!n) {
        oauth_error(resp, 400, "unsupported_token_type", "this token type is not supported");
        return;
    }
    sb_resp_status(resp, 200);
}

static int authorized(struct sf_ctx *c, const struct sb_req *req)
{
    const char *h = sb_req_header(req, "Authorization");
    if (!h) {
        return 0;
    }
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        h += 7;
    } else if (strncasecmp(h, "OAuth ", 6) == 0) {
        h += 6;
    } else {
        return 0;
    }
    while (*h == ' ') {
        h++;
    }
    int64_t now = sb_now_ms();
    for (size_t i = 0; i < ES_ARRAY_LEN(c->tcache); i++) {
        if (c->tcache[i].token[0] && strcmp(c->tcache[i].token, h) == 0) {
            return c->tcache[i].expires > now;
        }
    }
    sqlite3_stmt *st = NULL;
    int ok = 0;
    int64_t expires = 0;
    sqlite3_prepare_v2(c->db, "SELECT expires FROM token WHERE access=?1", -1, &st, NULL);
    sqlite3_bind_text(st, 1, h, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        expires = sqlite3_column_int64(st, 0);
        ok = expires > now;
    }
    sqlite3_finalize(st);
    if (ok && strlen(h) < sizeof c->tcache[0].token) {
        unsigned k = c->tcache_next++ % ES_ARRAY_LEN(c->tcache);
        es_strlcpy(c->tcache[k].token, h, sizeof c->tcache[k].token);
        c->tcache[k].expires = expires;
    }
    return ok;
}

static void unauthorized(struct sb_resp *resp)
{
    sf_error_reply(resp, 401, "INVALID_SESSION_ID", "Session expired or invalid");
    sb_resp_header(resp, "WWW-Authenticate", "Token");
}

/* ---- helpers ---- */

static json_t *body_json(const struct sf_call *call, struct sb_resp *resp)
{
    json_error_t je;
    if (!call->body_len) {
        sf_error_reply(resp, 400, "JSON_PARSER_ERROR", "The request body is empty");
        return NULL;
    }
    json_t *j = json_loadb(call->body, call->body_len, 0, &je);
    if (!j) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s at [line:%d, column:%d]", je.text, je.line, je.column);
        sf_error_reply(resp, 400, "JSON_PARSER_ERROR", msg);
    }
    return j;
}

static int allow_dup(const struct sf_call *call)
{
    const char *h = call->req ? sb_req_header(call->req, "Sforce-Duplicate-Rule-Header") : NULL;
    return h && strcasestr(h, "allowSave=true") != NULL;
}

static const char *origin(const struct sf_call *call, char *buf, size_t cap)
{
    const char *h = call->req ? sb_req_header(call->req, "Sforce-Call-Options") : NULL;
    const char *client = h ? strcasestr(h, "client=") : NULL;
    if (client) {
        snprintf(buf, cap, "com/salesforce/api/rest/%s;client=%.*s", call->version,
                 (int)strcspn(client + 7, ",; "), client + 7);
    } else {
        snprintf(buf, cap, "com/salesforce/api/rest/%s", call->version);
    }
    return buf;
}

static int err_status(json_t *errs)
{
    const char *code = json_string_value(json_object_get(json_array_get(errs, 0), "errorCode"));
    if (code && (strcmp(code, "NOT_FOUND") == 0 || strcmp(code, "ENTITY_IS_DELETED") == 0)) {
        return 404;
    }
    return 400;
}

static void location(struct sb_resp *resp, const char *ver, const char *obj, const char *id)
{
    char loc[200];
    snprintf(loc, sizeof loc, "/services/data/v%s/sobjects/%s/%s", ver, obj, id);
    sb_resp_header(resp, "Location", loc);
}

/* ---- sObject resources ---- */

static void sobject_rows(struct sf_ctx *c, const struct sf_call *call, struct sf_object *o,
                         const char *id, struct sb_resp *resp)
{
    char ob[200];
    json_t *errs = json_array();
    if (strcmp(call->method, "GET") == 0 || strcmp(call->method, "HEAD") == 0) {
        json_t *rec = sf_rec_get(c, id, 0, NULL);
        if (!rec || strncmp(json_string_value(json_object_get(rec, "Id")), o->prefix, 3) != 0) {
            json_decref(rec);
            json_decref(errs);
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
            return;
        }
        char fields[2000] = "";
        sf_query_arg(call->query, "fields", fields, sizeof fields);
        json_t *out = sf_rec_render(c, o, rec, fields, call->version);
        json_decref(rec);
        json_decref(errs);
        sb_resp_json(resp, 200, out);
        return;
    }
    if (strcmp(call->method, "PATCH") == 0) {
        json_t *in = body_json(call, resp);
        if (!in) {
            json_decref(errs);
            return;
        }
        if (sf_rec_update(c, o, id, in, allow_dup(call), origin(call, ob, sizeof ob), errs) != 0) {
            json_decref(in);
            sf_errors_reply(resp, err_status(errs), errs);
            return;
        }
        json_decref(in);
        json_decref(errs);
        sb_resp_status(resp, 204);
        return;
    }
    if (strcmp(call->method, "DELETE") == 0) {
        char id18[19];
        if (!sf_id18(id, id18) || strncmp(id18, o->prefix, 3) != 0) {
            json_decref(errs);
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
            return;
        }
        if (sf_rec_delete(c, id18, origin(call, ob, sizeof ob), errs) != 0) {
            sf_errors_reply(resp, err_status(errs), errs);
            return;
        }
        json_decref(errs);
        sb_resp_status(resp, 204);
        return;
    }
    json_decref(errs);
    sf_error_reply(resp, 405, "METHOD_NOT_ALLOWED",
                   "HTTP Method 'POST' not allowed. Allowed are HEAD,GET,PATCH,DELETE");
}

static void sobject_create(struct sf_ctx *c, const struct sf_call *call, struct sf_object *o,
                           struct sb_resp *resp)
{
    char ob[200];
    json_t *in = body_json(call, resp);
    if (!in) {
        return;
    }
    json_t *errs = json_array();
    char id[19];
    if (sf_rec_create(c, o, in, allow_dup(call), origin(call, ob, sizeof ob), id, errs) != 0) {
        json_decref(in);
        sf_errors_reply(resp, 400, errs);
        return;
    }
    json_decref(in);
    json_decref(errs);
    location(resp, call->version, o->name, id);
    sb_resp_json(resp, 201, json_pack("{s:s,s:b,s:[]}", "id", id, "success", 1, "errors"));
}

static void sobject_upsert(struct sf_ctx *c, const struct sf_call *call, struct sf_object *o,
                           const char *field, const char *value, struct sb_resp *resp)
{
    char ob[200];
    if (strcmp(call->method, "GET") == 0) {
        json_t *ids = json_array();
        struct sf_field *f = sf_fld(o, field);
        if (!f || !(f->external_id || f->id_lookup)) {
            json_decref(ids);
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
            return;
        }
        /* GET by external id: reuse the upsert matcher through a query */
        char q[1200];
        snprintf(q, sizeof q, "SELECT Id FROM %s WHERE %s = '%s'", o->name, f->name, value);
        int st = 0;
        json_t *errs = json_array();
        json_t *res = strchr(value, '\'') ? NULL : sf_soql_run(c, q, 0, call->version, &st, errs);
        json_decref(errs);
        size_t n = res ? json_array_size(json_object_get(res, "records")) : 0;
        if (n == 1) {
            const char *id = json_string_value(
                json_object_get(json_array_get(json_object_get(res, "records"), 0), "Id"));
            json_t *rec = sf_rec_get(c, id, 0, NULL);
            char fields[2000] = "";
            sf_query_arg(call->query, "fields", fields, sizeof fields);
            sb_resp_json(resp, 200, sf_rec_render(c, o, rec, fields, call->version));
            json_decref(rec);
        } else if (n > 1) {
            size_t i;
            json_t *r;
            json_array_foreach(json_object_get(res, "records"), i, r)
            {
                json_array_append(ids, json_object_get(json_object_get(r, "attributes"), "url"));
            }
            sb_resp_json(resp, 300, json_incref(ids));
        } else {
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        }
        json_decref(res);
        json_decref(ids);
        return;
    }
    if (strcmp(call->method, "PATCH") != 0 &&
        !(strcmp(call->method, "POST") == 0 && strcasecmp(field, "Id") == 0)) {
        sf_error_reply(resp, 405, "METHOD_NOT_ALLOWED",
                       "HTTP Method not allowed. Allowed are GET,PATCH,DELETE");
        return;
    }
    json_t *in = body_json(call, resp);
    if (!in) {
        return;
    }
    char upd[16] = "";
    sf_query_arg(call->query, "updateOnly", upd, sizeof upd);
    json_t *errs = json_array(), *matches = json_array();
    char id[19] = "";
    int created = 0, status = 0;
    if (strcasecmp(upd, "true") == 0 && strcasecmp(field, "Id") != 0) {
        json_t *probe = json_array();
        int st = 0;
        char q[1200];
        snprintf(q, sizeof q, "SELECT Id FROM %s WHERE %s = '%s'", o->name, field, value);
        json_t *res = strchr(value, '\'') ? NULL : sf_soql_run(c, q, 0, call->version, &st, probe);
        size_t n = res ? json_array_size(json_object_get(res, "records")) : 0;
        json_decref(res);
        json_decref(probe);
        if (n == 0) {
            json_decref(in);
            json_decref(errs);
            json_decref(matches);
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
            return;
        }
    }
    int rc = sf_rec_upsert(c, o, field, value, in, allow_dup(call), origin(call, ob, sizeof ob), id,
                           &created, &status, errs, matches);
    json_decref(in);
    if (rc != 0 && status == 300) {
        json_t *urls = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(matches, i, m)
        {
            char u[200];
            snprintf(u, sizeof u, "/services/data/v%s/sobjects/%s/%s", call->version, o->name,
                     json_string_value(m));
            json_array_append_new(urls, json_string(u));
        }
        json_decref(errs);
        json_decref(matches);
        sb_resp_json(resp, 300, urls);
        return;
    }
    json_decref(matches);
    if (rc != 0) {
        sf_errors_reply(resp, status, errs);
        return;
    }
    json_decref(errs);
    if (created) {
        location(resp, call->version, o->name, id);
    }
    sb_resp_json(
        resp, created ? 201 : 200,
        json_pack("{s:s,s:b,s:[],s:b}", "id", id, "success", 1, "errors", "created", created));
}

static int64_t arg_dt(const struct sf_call *call, const char *name, int *ok)
{
    char v[80];
    int64_t ms = 0;
    *ok = sf_query_arg(call->query, name, v, sizeof v) && sf_parse_dt(v, &ms);
    return ms;
}

static void updated_deleted(struct sf_ctx *c, const struct sf_call *call, struct sf_object *o,
                            int deleted, struct sb_resp *resp)
{
    int ok1, ok2;
    int64_t start = arg_dt(call, "start", &ok1), end = arg_dt(call, "end", &ok2);
    if (!ok1 || !ok2) {
        sf_error_reply(resp, 400, "MALFORMED_QUERY",
                       "start and end are required ISO-8601 datetimes (URL-encoded)");
        return;
    }
    int64_t now = sb_now_ms();
    int64_t max_back = (int64_t)(deleted ? 15 : 30) * 86400000;
    if (end < start || start < now - max_back) {
        sf_error_reply(resp, 400, "INVALID_REPLICATION_DATE",
                       deleted ? "startDate cannot be more than 15 days ago"
                               : "startDate cannot be more than 30 days ago");
        return;
    }
    start -= start % 1000;
    end -= end % 60000; /* seconds of the arguments are truncated */
    if (end > now) {
        end = now - now % 1000 + 1000; /* covered up to the current second */
    }
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(c->db,
                       deleted ? "SELECT id, deleted_at FROM rec WHERE obj=?1 AND deleted=1 AND "
                                 "deleted_at>=?2 AND deleted_at<?3 ORDER BY deleted_at"
                               : "SELECT id, modstamp FROM rec WHERE obj=?1 AND deleted=0 AND "
                                 "modstamp>=?2 AND modstamp<?3 ORDER BY modstamp",
                       -1, &st, NULL);
    sqlite3_bind_text(st, 1, o->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, start);
    sqlite3_bind_int64(st, 3, end);
    json_t *arr = json_array();
    long n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (++n > 600000) {
            break;
        }
        if (deleted) {
            char dt[32];
            sf_fmt_dt(sqlite3_column_int64(st, 1), dt);
            json_array_append_new(arr, json_pack("{s:s,s:s}", "id", id, "deletedDate", dt));
        } else {
            json_array_append_new(arr, json_string(id));
        }
    }
    sqlite3_finalize(st);
    if (n > 600000) {
        json_decref(arr);
        sf_error_reply(resp, 400, "EXCEEDED_ID_LIMIT",
                       "record limit reached. narrow the date range");
        return;
    }
    char latest[32], earliest[32];
    sf_fmt_dt(end, latest);
    if (deleted) {
        int64_t first = now - max_back;
        sf_fmt_dt(first - first % 60000, earliest);
        sb_resp_json(resp, 200,
                     json_pack("{s:o,s:s,s:s}", "deletedRecords", arr, "earliestDateAvailable",
                               earliest, "latestDateCovered", latest));
    } else {
        sb_resp_json(resp, 200, json_pack("{s:o,s:s}", "ids", arr, "latestDateCovered", latest));
    }
}

/* ---- query ---- */

static void query_page(struct sf_ctx *c, const struct sf_call *call, struct sf_cursor *k,
                       long offset, struct sb_resp *resp)
{
    long total = (long)json_array_size(k->records);
    long end = offset + k->batch < total ? offset + k->batch : total;
    json_t *page = json_array();
    for (long i = offset; i < end; i++) {
        json_array_append(page, json_array_get(k->records, (size_t)i));
    }
    json_t *out = json_pack("{s:I,s:b}", "totalSize", (json_int_t)k->total, "done", end >= total);
    if (end < total) {
        char next[160];
        snprintf(next, sizeof next, "/services/data/v%s/query/%s-%ld", call->version, k->id, end);
        json_object_set_new(out, "nextRecordsUrl", json_string(next));
    }
    json_object_set_new(out, "records", page);
    (void)c;
    sb_resp_json(resp, 200, out);
}

static void query(struct sf_ctx *c, const struct sf_call *call, int all, const char *locator,
                  struct sb_resp *resp)
{
    if (strcmp(call->method, "GET") != 0) {
        sf_error_reply(resp, 405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed. Allowed are GET");
        return;
    }
    if (locator && *locator) {
        const char *dash = strrchr(locator, '-');
        struct sf_cursor *k = c->cursors;
        for (; k; k = k->next) {
            if (strncmp(k->id, locator, 18) == 0) {
                break;
            }
        }
        long off = dash ? strtol(dash + 1, NULL, 10) : 0;
        if (!k || !dash || off < 0) {
            sf_error_reply(resp, 400, "INVALID_QUERY_LOCATOR", "invalid query locator");
            return;
        }
        query_page(c, call, k, off, resp);
        return;
    }
    char *q = es_xmalloc(call->query ? strlen(call->query) + 1 : 1);
    q[0] = '\0';
    if (!call->query || !sf_query_arg(call->query, "q", q, strlen(call->query) + 1)) {
        es_free(q);
        sf_error_reply(resp, 400, "MALFORMED_QUERY", "A query string has to be specified");
        return;
    }
    int status = 0;
    json_t *errs = json_array();
    json_t *res = sf_soql_run(c, q, all, call->version, &status, errs);
    es_free(q);
    if (!res) {
        sf_errors_reply(resp, status, errs);
        return;
    }
    json_decref(errs);
    int batch = 2000;
    const char *opt = call->req ? sb_req_header(call->req, "Sforce-Query-Options") : NULL;
    const char *bs = opt ? strcasestr(opt, "batchSize=") : NULL;
    if (bs) {
        long v = strtol(bs + 10, NULL, 10);
        batch = v < 200 ? 200 : v > 2000 ? 2000 : (int)v;
    }
    struct sf_cursor *k = es_xcalloc(1, sizeof *k);
    sf_new_id(c, "01g", k->id);
    k->records = json_incref(json_object_get(res, "records"));
    k->total = (long)json_integer_value(json_object_get(res, "totalSize"));
    k->batch = batch;
    json_decref(res);
    if ((long)json_array_size(k->records) <= batch) {
        query_page(c, call, k, 0, resp);
        json_decref(k->records);
        es_free(k);
        return;
    }
    k->next = c->cursors;
    c->cursors = k;
    int n = 0;
    for (struct sf_cursor *p = c->cursors; p; p = p->next) {
        if (++n == MAX_CURSORS && p->next) {
            struct sf_cursor *rest = p->next;
            p->next = NULL;
            while (rest) {
                struct sf_cursor *nx = rest->next;
                json_decref(rest->records);
                es_free(rest);
                rest = nx;
            }
            break;
        }
    }
    query_page(c, call, k, 0, resp);
}

/* ---- collections ---- */

static json_t *coll_errors(json_t *errs)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(errs, i, e)
    {
        json_t *f = json_object_get(e, "fields");
        json_array_append_new(out, json_pack("{s:O,s:O,s:O}", "statusCode",
                                             json_object_get(e, "errorCode"), "message",
                                             json_object_get(e, "message"), "fields",
                                             f ? f : json_array()));
    }
    return out;
}

static json_t *rolled_back(void)
{
    return json_pack("{s:b,s:[{s:s,s:s,s:[]}]}", "success", 0, "errors", "statusCode",
                     "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message",
                     "Record rolled back because not all records were valid and the request was "
                     "using AllOrNone header",
                     "fields");
}

static void finish_aon(struct sf_ctx *c, json_t *results, int aon, int failed)
{
    if (!aon) {
        return;
    }
    sf_tx_end(c, "coll", !failed);
    if (!failed) {
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r)
    {
        if (json_is_true(json_object_get(r, "success"))) {
            json_array_set_new(results, i, rolled_back());
        }
    }
}

static void collections(struct sf_ctx *c, const struct sf_call *call, const char *rest,
                        struct sb_resp *resp)
{
    char ob[200];
    const char *org = origin(call, ob, sizeof ob);
    struct sb_caps caps;
    if (strcmp(call->method, "DELETE") == 0 && !*rest) {
        char ids[20000] = "", aonv[16] = "";
        sf_query_arg(call->query, "ids", ids, sizeof ids);
        sf_query_arg(call->query, "allOrNone", aonv, sizeof aonv);
        int aon = strcasecmp(aonv, "true") == 0, failed = 0;
        json_t *results = json_array();
        if (aon) {
            sf_tx_begin(c, "coll");
        }
        char *save = NULL;
        int count = 0;
        for (char *id = strtok_r(ids, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
            if (++count > 200) {
                break;
            }
            json_t *errs = json_array();
            if (sf_rec_delete(c, id, org, errs) == 0) {
                char id18[19];
                sf_id18(id, id18);
                json_array_append_new(
                    results, json_pack("{s:s,s:b,s:[]}", "id", id18, "success", 1, "errors"));
            } else {
                failed = 1;
                json_array_append_new(results, json_pack("{s:s,s:b,s:o}", "id", id, "success", 0,
                                                         "errors", coll_errors(errs)));
            }
            json_decref(errs);
        }
        if (count > 200) {
            if (aon) {
                sf_tx_end(c, "coll", 0);
            }
            json_decref(results);
            sf_error_reply(resp, 400, "EXCEEDED_ID_LIMIT", "Record limit exceeded: 200");
            return;
        }
        finish_aon(c, results, aon, failed);
        sb_resp_json(resp, 200, results);
        return;
    }
    if (strcmp(call->method, "GET") == 0 && sb_match(rest, "/*", &caps)) {
        struct sf_object *o = sf_obj(c, caps.v[0]);
        if (!o) {
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
            return;
        }
        char ids[20000] = "", fields[4000] = "";
        sf_query_arg(call->query, "ids", ids, sizeof ids);
        sf_query_arg(call->query, "fields", fields, sizeof fields);
        json_t *out = json_array();
        char *save = NULL;
        for (char *id = strtok_r(ids, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
            json_t *rec = sf_rec_get(c, id, 0, NULL);
            if (rec && strncmp(json_string_value(json_object_get(rec, "Id")), o->prefix, 3) == 0) {
                json_array_append_new(out, sf_rec_render(c, o, rec, fields, call->version));
            } else {
                json_array_append_new(out, json_null());
            }
            json_decref(rec);
        }
        sb_resp_json(resp, 200, out);
        return;
    }
    int is_upsert = sb_match(rest, "/*/*", &caps);
    if (!((strcmp(call->method, "POST") == 0 && !*rest) ||
          (strcmp(call->method, "PATCH") == 0 && (!*rest || is_upsert)))) {
        sf_error_reply(resp, 405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed");
        return;
    }
    json_t *in = body_json(call, resp);
    if (!in) {
        return;
    }
    json_t *recs = json_object_get(in, "records");
    if (!json_is_array(recs)) {
        json_decref(in);
        sf_error_reply(resp, 400, "JSON_PARSER_ERROR", "records is required and must be a list");
        return;
    }
    if (json_array_size(recs) > 200) {
        json_decref(in);
        sf_error_reply(resp, 400, "EXCEEDED_ID_LIMIT", "Record limit exceeded: 200");
        return;
    }
    struct sf_object *uo = is_upsert ? sf_obj(c, caps.v[0]) : NULL;
    if (is_upsert && !uo) {
        json_decref(in);
        sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    int aon = json_is_true(json_object_get(in, "allOrNone")), failed = 0;
    if (aon) {
        sf_tx_begin(c, "coll");
    }
    json_t *results = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        json_t *errs = json_array();
        const char *type =
            json_string_value(json_object_get(json_object_get(r, "attributes"), "type"));
        struct sf_object *o = uo ? uo : type ? sf_obj(c, type) : NULL;
        char id[19] = "";
        int ok = 0, created = 0;
        if (!o || (uo && type && strcasecmp(type, uo->name) != 0)) {
            sf_err_add(errs, "INVALID_TYPE",
                       type ? "sObject type is not supported or not the one in the URI"
                            : "Must specify a type in attributes",
                       NULL);
        } else if (uo) {
            json_t *ev = NULL;
            const char *k;
            json_t *v;
            json_object_foreach(r, k, v)
            {
                if (strcasecmp(k, caps.v[1]) == 0) {
                    ev = v;
                }
            }
            char val[600] = "";
            if (json_is_string(ev)) {
                es_strlcpy(val, json_string_value(ev), sizeof val);
            } else if (json_is_integer(ev)) {
                snprintf(val, sizeof val, "%lld", (long long)json_integer_value(ev));
            }
            if (!val[0]) {
                sf_err_add(errs, "MISSING_ARGUMENT", "external id value is missing", caps.v[1]);
            } else {
                json_t *body = json_deep_copy(r);
                json_object_del(body, "attributes");
                const char *kk;
                void *tmp;
                json_object_foreach_safe(body, tmp, kk, v)
                {
                    if (strcasecmp(kk, caps.v[1]) == 0) {
                        json_object_del(body, kk);
                    }
                }
                json_t *matches = json_array();
                int status = 0;
                ok = sf_rec_upsert(c, o, caps.v[1], val, body, allow_dup(call), org, id, &created,
                                   &status, errs, matches) == 0;
                if (!ok && status == 300) {
                    char msg[300];
                    snprintf(msg, sizeof msg,
                             "%s: more than one record found for external id field: %s", caps.v[1],
                             val);
                    sf_err_add(errs, "DUPLICATE_EXTERNAL_ID", msg, NULL);
                }
                json_decref(matches);
                json_decref(body);
            }
        } else if (strcmp(call->method, "POST") == 0) {
            if (json_object_get(r, "Id") || json_object_get(r, "id")) {
                sf_err_add(errs, "INVALID_FIELD", "cannot specify Id in an insert call", "Id");
            } else {
                ok = sf_rec_create(c, o, r, allow_dup(call), org, id, errs) == 0;
            }
        } else {
            const char *rid = json_string_value(json_object_get(r, "Id"));
            if (!rid) {
                sf_err_add(errs, "MISSING_ARGUMENT", "Id not specified in an update call", NULL);
            } else {
                json_t *body = json_deep_copy(r);
                json_object_del(body, "Id");
                ok = sf_rec_update(c, o, rid, body, allow_dup(call), org, errs) == 0;
                if (ok) {
                    sf_id18(rid, id);
                }
                json_decref(body);
            }
        }
        json_t *res;
        if (ok) {
            res = json_pack("{s:s,s:b,s:[]}", "id", id, "success", 1, "errors");
            if (uo) {
                json_object_set_new(res, "created", json_boolean(created));
            }
        } else {
            failed = 1;
            res = json_pack("{s:b,s:o}", "success", 0, "errors", coll_errors(errs));
        }
        json_decref(errs);
        json_array_append_new(results, res);
    }
    finish_aon(c, results, aon, failed);
    json_decref(in);
    sb_resp_json(resp, 200, results);
}

/* ---- composite ---- */

/* Resolves "@{ref.path}" in s against the results so far; returns a new string or NULL
 * (then *bad names the reference). */
static char *resolve_refs(const char *s, json_t *refs, char *bad, size_t badcap)
{
    struct es_buf b;
    es_buf_init(&b, 0);
    es_buf_puts(&b, "");
    const char *p = s;
    while (*p) {
        const char *at = strstr(p, "@{");
        if (!at) {
            es_buf_puts(&b, p);
            break;
        }
        es_buf_append(&b, p, (size_t)(at - p));
        const char *end = strchr(at, '}');
        if (!end) {
            es_buf_puts(&b, at);
            break;
        }
        char expr[256];
        size_t n = (size_t)(end - at - 2) < sizeof expr ? (size_t)(end - at - 2) : sizeof expr - 1;
        memcpy(expr, at + 2, n);
        expr[n] = '\0';
        char *dot = strchr(expr, '.');
        if (dot) {
            *dot = '\0';
        }
        json_t *cur = json_object_get(refs, expr);
        char *path = dot ? dot + 1 : NULL;
        while (cur && path && *path) {
            char *next = strpbrk(path, ".[");
            char key[128];
            size_t kl = next ? (size_t)(next - path) : strlen(path);
            kl = kl < sizeof key ? kl : sizeof key - 1;
            memcpy(key, path, kl);
            key[kl] = '\0';
            if (kl) {
                cur = json_object_get(cur, key);
            }
            if (next && *next == '[') {
                cur = json_array_get(cur, (size_t)strtol(next + 1, &next, 10));
                if (next && *next == ']') {
                    next++;
                }
            }
            path = next && *next == '.' ? next + 1 : next;
        }
        char num[64];
        const char *val = json_string_value(cur);
        if (!val && json_is_integer(cur)) {
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(cur));
            val = num;
        } else if (!val && json_is_boolean(cur)) {
            val = json_is_true(cur) ? "true" : "false";
        }
        if (!val) {
            es_strlcpy(bad, at + 2, badcap);
            bad[(size_t)(end - at - 2) < badcap ? (size_t)(end - at - 2) : badcap - 1] = '\0';
            es_buf_release(&b);
            return NULL;
        }
        es_buf_puts(&b, val);
        p = end + 1;
    }
    return es_buf_detach(&b, NULL);
}

/* Runs one subrequest URL ("/services/data/v60.0/..." or "v60.0/...") into resp. */
static void subrequest(struct sf_ctx *c, const struct sf_call *parent, const char *method,
                       const char *url, const char *body, struct sb_resp *resp)
{
    const char *u = url;
    if (strncmp(u, "/services/data/", 15) == 0) {
        u += 15;
    } else if (*u == '/') {
        u++;
    }
    struct sf_call sub = *parent;
    sub.method = method;
    if (u[0] != 'v' || !isdigit((unsigned char)u[1])) {
        sf_error_reply(resp, 400, "INVALID_URL",
                       "subrequest URL must start with /services/data/vNN.N");
        return;
    }
    const char *slash = strchr(u, '/');
    size_t vl = slash ? (size_t)(slash - u - 1) : strlen(u) - 1;
    if (vl >= sizeof sub.version) {
        vl = sizeof sub.version - 1;
    }
    memcpy(sub.version, u + 1, vl);
    sub.version[vl] = '\0';
    char *path = es_xstrdup(slash ? slash : "/");
    char *qm = strchr(path, '?');
    sub.query = "";
    if (qm) {
        *qm = '\0';
        sub.query = qm + 1;
    }
    sub.path = path;
    sub.body = body ? body : "";
    sub.body_len = body ? strlen(body) : 0;
    sf_api_handle(c, &sub, resp);
    es_free(path);
}

static json_t *resp_body_json(struct sb_resp *r)
{
    if (!r->body.len) {
        return json_null();
    }
    json_t *j = json_loadb(r->body.data, r->body.len, JSON_DECODE_ANY, NULL);
    return j ? j : json_stringn(r->body.data, r->body.len);
}

static void resp_clear(struct sb_resp *r)
{
    for (int i = 0; i < r->nheaders; i++) {
        es_free(r->hname[i]);
        es_free(r->hvalue[i]);
    }
    es_buf_release(&r->body);
    memset(r, 0, sizeof *r);
    r->status = 200;
}

static void composite(struct sf_ctx *c, const struct sf_call *call, struct sb_resp *resp)
{
    json_t *in = body_json(call, resp);
    if (!in) {
        return;
    }
    json_t *reqs = json_object_get(in, "compositeRequest");
    if (!json_is_array(reqs) || json_array_size(reqs) == 0 || json_array_size(reqs) > 25) {
        json_decref(in);
        sf_error_reply(resp, 400, "INVALID_BATCH_REQUEST",
                       "compositeRequest must be a list of 1 to 25 subrequests");
        return;
    }
    int aon = json_is_true(json_object_get(in, "allOrNone"));
    sf_tx_begin(c, "comp");
    json_t *refs = json_object(), *out = json_array();
    int failed = 0;
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        const char *method = json_string_value(json_object_get(r, "method"));
        const char *url = json_string_value(json_object_get(r, "url"));
        const char *ref = json_string_value(json_object_get(r, "referenceId"));
        json_t *item = json_object();
        json_object_set_new(item, "referenceId", json_string(ref ? ref : ""));
        if (!method || !url || !ref) {
            json_object_set_new(item, "httpStatusCode", json_integer(400));
            json_object_set_new(item, "httpHeaders", json_object());
            json_object_set_new(item, "body",
                                json_pack("[{s:s,s:s}]", "errorCode", "INVALID_BATCH_REQUEST",
                                          "message", "method, url and referenceId are required"));
            json_array_append_new(out, item);
            failed = 1;
            continue;
        }
        if (failed && aon) {
            json_object_set_new(item, "httpStatusCode", json_integer(400));
            json_object_set_new(item, "httpHeaders", json_object());
            json_object_set_new(
                item, "body",
                json_pack("[{s:s,s:s}]", "errorCode", "PROCESSING_HALTED", "message",
                          "The transaction was rolled back since another operation in the same "
                          "transaction failed."));
            json_array_append_new(out, item);
            continue;
        }
        char bad[256] = "";
        char *rurl = resolve_refs(url, refs, bad, sizeof bad);
        char *rbody = NULL;
        json_t *jb = json_object_get(r, "body");
        if (rurl && jb) {
            struct es_buf b;
            es_buf_init(&b, 0);
            sb_json_dump(&b, jb);
            rbody = resolve_refs(b.data, refs, bad, sizeof bad);
            es_buf_release(&b);
        }
        struct sb_resp sr;
        memset(&sr, 0, sizeof sr);
        sr.status = 200;
        if (!rurl || (jb && !rbody)) {
            char msg[400];
            snprintf(msg, sizeof msg,
                     "Invalid reference specified. No value for %s found. Provided referenceId "
                     "must be a previous, successful subrequest",
                     bad);
            sf_error_reply(&sr, 400, "PROCESSING_HALTED", msg);
        } else {
            subrequest(c, call, method, rurl, rbody, &sr);
        }
        es_free(rurl);
        es_free(rbody);
        json_t *hb = json_object();
        for (int h = 0; h < sr.nheaders; h++) {
            if (strcasecmp(sr.hname[h], "Location") == 0) {
                json_object_set_new(hb, "Location", json_string(sr.hvalue[h]));
            }
        }
        json_t *body = resp_body_json(&sr);
        json_object_set_new(item, "body", json_incref(body));
        json_object_set_new(item, "httpHeaders", hb);
        json_object_set_new(item, "httpStatusCode", json_integer(sr.status));
        if (sr.status < 400) {
            json_object_set(refs, ref, body);
        } else {
            failed = 1;
        }
        json_decref(body);
        resp_clear(&sr);
        es_buf_release(&sr.body);
        json_array_append_new(out, item);
    }
    if (aon && failed) {
        sf_tx_end(c, "comp", 0);
        json_array_foreach(out, i, r)
        {
            if (json_integer_value(json_object_get(r, "httpStatusCode")) < 400) {
                json_object_set_new(r, "httpStatusCode", json_integer(400));
                json_object_set_new(r, "httpHeaders", json_object());
                json_object_set_new(
                    r, "body",
                    json_pack("[{s:s,s:s}]", "errorCode", "PROCESSING_HALTED", "message",
                              "The transaction was rolled back since another operation in the "
                              "same transaction failed."));
            }
        }
    } else {
        sf_tx_end(c, "comp", 1);
    }
    json_decref(refs);
    json_decref(in);
    sb_resp_json(resp, 200, json_pack("{s:o}", "compositeResponse", out));
}

static void composite_batch(struct sf_ctx *c, const struct sf_call *call, struct sb_resp *resp)
{
    json_t *in = body_json(call, resp);
    if (!in) {
        return;
    }
    json_t *reqs = json_object_get(in, "batchRequests");
    if (!json_is_array(reqs) || json_array_size(reqs) == 0 || json_array_size(reqs) > 25) {
        json_decref(in);
        sf_error_reply(resp, 400, "INVALID_BATCH_REQUEST",
                       "batchRequests must be a list of 1 to 25 subrequests");
        return;
    }
    int halt = json_is_true(json_object_get(in, "haltOnError")), has_errors = 0;
    json_t *results = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        if (halt && has_errors) {
            json_array_append_new(results,
                                  json_pack("{s:i,s:[{s:s,s:s}]}", "statusCode", 412, "result",
                                            "errorCode", "BATCH_PROCESSING_HALTED", "message",
                                            "Batch processing halted per request"));
            continue;
        }
        const char *method = json_string_value(json_object_get(r, "method"));
        const char *url = json_string_value(json_object_get(r, "url"));
        struct sb_resp sr;
        memset(&sr, 0, sizeof sr);
        sr.status = 200;
        char *body = NULL;
        if (json_object_get(r, "richInput")) {
            struct es_buf b;
            es_buf_init(&b, 0);
            sb_json_dump(&b, json_object_get(r, "richInput"));
            body = es_buf_detach(&b, NULL);
        }
        if (!method || !url) {
            sf_error_reply(&sr, 400, "INVALID_BATCH_REQUEST", "method and url are required");
        } else {
            subrequest(c, call, method, url, body, &sr);
            c->api_used++;
        }
        es_free(body);
        has_errors |= sr.status >= 400;
        json_array_append_new(results, json_pack("{s:i,s:o}", "statusCode", sr.status, "result",
                                                 resp_body_json(&sr)));
        resp_clear(&sr);
    }
    json_decref(in);
    sb_resp_json(resp, 200, json_pack("{s:b,s:o}", "hasErrors", has_errors, "results", results));
}

/* ---- dispatch ---- */

static json_t *versions(void)
{
    static const char *labels[] = {"Winter '21", "Spring '21", "Summer '21", "Winter '22",
                                   "Spring '22", "Summer '22", "Winter '23", "Spring '23",
                                   "Summer '23", "Winter '24", "Spring '24", "Summer '24",
                                   "Winter '25"};
    json_t *a = json_array();
    for (int v = 50; v <= 62; v++) {
        char ver[8], url[40];
        snprintf(ver, sizeof ver, "%d.0", v);
        snprintf(url, sizeof url, "/services/data/v%d.0", v);
        json_array_append_new(
            a, json_pack("{s:s,s:s,s:s}", "label", labels[v - 50], "url", url, "version", ver));
    }
    return a;
}

void sf_api_handle(struct sf_ctx *c, const struct sf_call *call, struct sb_resp *resp)
{
    struct sb_caps caps;
    const char *p = call->path;
    const char *m = call->method;
    if (sb_match(p, "", NULL)) {
        char b[80];
        json_t *j = json_object();
        const char *res[] = {"sobjects", "query", "queryAll", "limits", "composite", "jobs"};
        for (size_t i = 0; i < ES_ARRAY_LEN(res); i++) {
            snprintf(b, sizeof b, "/services/data/v%s/%s", call->version,
                     i == 5 ? "jobs/ingest" : res[i]);
            json_object_set_new(j, res[i], json_string(b));
        }
        sb_resp_json(resp, 200, j);
    } else if (sb_match(p, "/limits", NULL)) {
        sb_resp_json(resp, 200,
                     json_pack("{s:{s:I,s:I},s:{s:i,s:i},s:{s:i,s:i}}", "DailyApiRequests", "Max",
                               (json_int_t)c->api_limit, "Remaining",
                               (json_int_t)(c->api_limit - c->api_used), "DailyBulkV2QueryJobs",
                               "Max", 10000, "Remaining", 10000, "DataStorageMB", "Max", 5120,
                               "Remaining", 5000));
    } else if (sb_match(p, "/sobjects", NULL)) {
        sb_resp_json(resp, 200, sf_describe_global(c, call->version));
    } else if (sb_match(p, "/sobjects/*", &caps)) {
        struct sf_object *o = sf_obj(c, caps.v[0]);
        if (!o) {
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        } else if (strcmp(m, "POST") == 0) {
            sobject_create(c, call, o, resp);
        } else {
            json_t *d = sf_describe(c, o, call->version);
            json_t *info = json_object();
            json_object_update(info, d);
            json_object_del(info, "fields");
            json_object_del(info, "childRelationships");
            json_object_del(info, "recordTypeInfos");
            json_decref(d);
            sb_resp_json(resp, 200, json_pack("{s:o,s:[]}", "objectDescribe", info, "recentItems"));
        }
    } else if (sb_match(p, "/sobjects/*/describe", &caps)) {
        struct sf_object *o = sf_obj(c, caps.v[0]);
        if (!o) {
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        } else {
            sb_resp_json(resp, 200, sf_describe(c, o, call->version));
        }
    } else if (sb_match(p, "/sobjects/*/updated", &caps) ||
               sb_match(p, "/sobjects/*/deleted", &caps)) {
        struct sf_object *o = sf_obj(c, caps.v[0]);
        int del = strstr(p, "/deleted") != NULL;
        if (!o) {
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        } else {
            updated_deleted(c, call, o, del, resp);
        }
    } else if (sb_match(p, "/sobjects/*/*", &caps)) {
        struct sf_object *o = sf_obj(c, caps.v[0]);
        char id18[19];
        if (!o) {
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        } else if (strcasecmp(caps.v[1], "Id") == 0 && strcmp(m, "POST") == 0) {
            sobject_upsert(c, call, o, "Id", "", resp);
        } else if (sf_id18(caps.v[1], id18) && strncmp(id18, o->prefix, 3) == 0) {
            sobject_rows(c, call, o, caps.v[1], resp);
        } else {
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        }
    } else if (sb_match(p, "/sobjects/*/*/*", &caps)) {
        struct sf_object *o = sf_obj(c, caps.v[0]);
        if (!o) {
            sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        } else {
            sobject_upsert(c, call, o, caps.v[1], caps.v[2], resp);
        }
    } else if (sb_match(p, "/query", NULL) || sb_match(p, "/queryAll", NULL)) {
        query(c, call, strstr(p, "queryAll") != NULL, NULL, resp);
    } else if (sb_match(p, "/query/*", &caps) || sb_match(p, "/queryAll/*", &caps)) {
        query(c, call, 0, caps.v[0], resp);
    } else if (sb_match(p, "/composite/sobjects/**", &caps)) {
        char rest[SB_CAP_LEN + 2];
        snprintf(rest, sizeof rest, "%s%s", caps.v[0][0] ? "/" : "", caps.v[0]);
        collections(c, call, rest, resp);
    } else if (sb_match(p, "/composite/batch", NULL) && strcmp(m, "POST") == 0) {
        composite_batch(c, call, resp);
    } else if (sb_match(p, "/composite", NULL) && strcmp(m, "POST") == 0) {
        composite(c, call, resp);
    } else if (sb_match(p, "/jobs/ingest/**", &caps)) {
        sf_bulk_handle(c, call, caps.v[0], resp);
    } else {
        sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
    }
}

int sf_handle(void *ctx, const struct sb_req *req, struct sb_resp *resp)
{
    struct sf_ctx *c = ctx;
    struct sb_caps caps;
    if (sb_match(req->path, "/services/oauth2/token", NULL)) {
        oauth_token(c, req, resp);
        return 0;
    }
    if (sb_match(req->path, "/services/oauth2/revoke", NULL)) {
        oauth_revoke(c, req, resp);
        return 0;
    }
    if (sb_match(req->path, "/services/data", NULL)) {
        sb_resp_json(resp, 200, versions());
        return 0;
    }
    if (!sb_match(req->path, "/services/data/*/**", &caps)) {
        sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return 0;
    }
    const char *v = caps.v[0];
    char *end = NULL;
    double ver = v[0] == 'v' ? strtod(v + 1, &end) : 0;
    if (v[0] != 'v' || !end || *end || ver < 50.0 || ver >= 100.0) {
        sf_error_reply(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return 0;
    }
    if (!authorized(c, req)) {
        unauthorized(resp);
        return 0;
    }
    int64_t day = sb_now_ms() / 86400000;
    if (day != c->api_day) {
        c->api_day = day;
        c->api_used = 0;
    }
    if (c->api_used >= c->api_limit) {
        sf_error_reply(resp, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
    } else {
        c->api_used++;
        struct sf_call call;
        memset(&call, 0, sizeof call);
        call.method = req->method;
        snprintf(call.version, sizeof call.version, "%s", v + 1);
        const char *rest = req->path + 15; /* "/services/data/" */
        rest = strchr(rest, '/');
        call.path = rest ? rest : "";
        call.query = sb_req_query(req);
        call.body = req->body;
        call.body_len = req->body_len;
        call.req = req;
        sf_api_handle(c, &call, resp);
    }
    char lim[64];
    snprintf(lim, sizeof lim, "api-usage=%ld/%ld", c->api_used, c->api_limit);
    sb_resp_header(resp, "Sforce-Limit-Info", lim);
    return 0;
}
