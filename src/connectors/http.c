/* SPDX-License-Identifier: MIT */
/*
 * The connectors' HTTP client on libcurl (contract in http.h): one easy handle per instance
 * for connection and cookie reuse, bounded response bodies, failure classification into
 * core/err.h codes, and OAuth2 grants with a process-wide token cache and exactly one
 * re-authentication on 401.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "connectors/http.h"
#include "core/clock.h"
#include "core/diag.h"
#include "core/log.h"
#include "core/mem.h"

#define JWT_GRANT "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define HDRS_MAX  (256u * 1024u)
#define TOKEN_MAX (1024u * 1024u)

enum auth_kind { AUTH_NONE = 0, AUTH_OAUTH2, AUTH_BASIC, AUTH_BEARER };

struct es_http {
    CURL *curl;
    char *base;     /* configured url, no trailing slash */
    char *api_base; /* instance_url from the token answer, else NULL */
    char name[32];
    long timeout_ms, connect_timeout_ms;
    size_t max_response;
    int verify_tls;
    enum auth_kind auth;
    const char *grant;              /* OAuth2 grant_type */
    const struct es_oauth2_cfg *oa; /* OAuth2 settings (borrowed from the config) */
    const char *basic_user_env, *basic_pw_env, *bearer_env;
    char *token_url;
    char *cache_key;
    es_http_error_fn hook;
    void *hook_ud;
    struct es_http_resp *cur; /* response being received */
    int too_big;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- token cache -------------------------------------------------------------------- */

struct token_entry {
    char *key;
    char *token;
    char *instance_url;
    long long expires_at; /* epoch seconds, 0 = until refused */
    struct token_entry *next;
};

static pthread_mutex_t g_tok_lock = PTHREAD_MUTEX_INITIALIZER;
static struct token_entry *g_tokens;
static struct token_entry *g_refresh; /* rotated refresh tokens (token field), by cache key */
static long g_fetches;
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void entries_free(struct token_entry **list)
{
    while (*list) {
        struct token_entry *t = *list;
        *list = t->next;
        es_free(t->key);
        if (t->token) {
            memset(t->token, 0, strlen(t->token));
        }
        es_free(t->token);
        es_free(t->instance_url);
        es_free(t);
    }
}

void es_http_token_cache_clear(void)
{
    pthread_mutex_lock(&g_tok_lock);
    entries_free(&g_tokens);
    entries_free(&g_refresh); /* as after a restart: the store file or the env var again */
    pthread_mutex_unlock(&g_tok_lock);
}

/* The rotated refresh token of key (copy, caller frees) or NULL. */
static char *refresh_get(const char *key)
{
    char *out = NULL;
    pthread_mutex_lock(&g_tok_lock);
    for (struct token_entry *t = g_refresh; t; t = t->next) {
        if (strcmp(t->key, key) == 0) {
            out = es_xstrdup(t->token);
            break;
        }
    }
    pthread_mutex_unlock(&g_tok_lock);
    return out;
}

static void refresh_put(const char *key, const char *token)
{
    pthread_mutex_lock(&g_tok_lock);
    struct token_entry *t = g_refresh;
    while (t && strcmp(t->key, key) != 0) {
        t = t->next;
    }
    if (!t) {
        t = es_xcalloc(1, sizeof *t);
        t->key = es_xstrdup(key);
        t->next = g_refresh;
        g_refresh = t;
    }
    es_free(t->token);
    t->token = es_xstrdup(token);
    pthread_mutex_unlock(&g_tok_lock);
}

/* The refresh token kept in path (first line), or NULL when there is none. */
static char *store_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return NULL;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    char *out = buf[0] ? es_xstrdup(buf) : NULL;
    memset(buf, 0, sizeof buf);
    return out;
}

/* Writes token to path atomically (a 0600 temporary file in the same directory, fsync,
 * rename), so a crash leaves the old or the new token, never half of one. */
static int store_write(const char *path, const char *token)
{
    char *tmp = es_xasprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0;
    if (ok) {
        size_t len = strlen(token);
        ok = fchmod(fd, 0600) == 0 && write(fd, token, len) == (ssize_t)len &&
             write(fd, "\n", 1) == 1 && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        ok = ok && rename(tmp, path) == 0;
        if (!ok) {
            unlink(tmp);
        }
    }
    int e = errno;
    es_free(tmp);
    return ok ? 0 : (e ? e : EIO);
}

/* ---- JWT bearer assertion (RS256) ---------------------------------------------------- */

static void b64url(struct es_buf *b, const unsigned char *s, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        v |= i + 1 < n ? (unsigned)s[i + 1] << 8 : 0;
        v |= i + 2 < n ? (unsigned)s[i + 2] : 0;
        (void)es_buf_putc(b, al[(v >> 18) & 63]);
        (void)es_buf_putc(b, al[(v >> 12) & 63]);
        if (i + 1 < n) {
            (void)es_buf_putc(b, al[(v >> 6) & 63]);
        }
        if (i + 2 < n) {
            (void)es_buf_putc(b, al[v & 63]);
        }
    }
}

/* "header.claims.signature" for iss/sub/aud, valid three minutes. OUT: *jwt, es_free(). */
static int jwt_assertion(const struct es_oauth2_cfg *oa, char **jwt, struct es_err *err)
{
    const char *pem = es_config_secret(oa->private_key_env);
    if (!pem || !*pem) {
        return es_err_set(err, ES_ECONFIG, "JWT bearer: %s is empty", oa->private_key_env);
    }
    /* a key pasted with literal \n (one-line env files) becomes PEM again */
    char *key = es_xstrdup(pem);
    if (!strchr(key, '\n')) {
        char *w = key;
        for (const char *r = key; *r; r++) {
            if (r[0] == '\\' && r[1] == 'n') {
                *w++ = '\n';
                r++;
            } else {
                *w++ = *r;
            }
        }
        *w = '\0';
    }
    BIO *bio = BIO_new_mem_buf(key, -1);
    EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    memset(key, 0, strlen(key));
    es_free(key);
    if (!pk) {
        return es_err_set(err, ES_ECONFIG,
                          "JWT bearer: %s does not hold a PEM private key (RSA, unencrypted)",
                          oa->private_key_env);
    }
    const char *iss = es_config_secret(oa->id_env);
    const char *sub = es_config_secret(oa->user_env);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I}", "iss", iss ? iss : "", "sub", sub ? sub : "",
                               "aud", oa->audience ? oa->audience : "https://login.salesforce.com",
                               "exp", (json_int_t)time(NULL) + 180);
    char *cj = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    struct es_buf b;
    es_buf_init(&b, 0);
    static const char hdr[] = "{\"alg\":\"RS256\"}";
    b64url(&b, (const unsigned char *)hdr, sizeof hdr - 1);
    (void)es_buf_putc(&b, '.');
    b64url(&b, (const unsigned char *)cj, strlen(cj));
    free(cj); /* checksrc: ok (jansson allocates with malloc) */
    size_t slen = 0;
    unsigned char *sig = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
             EVP_DigestSign(md, NULL, &slen, (const unsigned char *)b.data, b.len) == 1;
    if (ok) {
        sig = es_xmalloc(slen);
        ok = EVP_DigestSign(md, sig, &slen, (const unsigned char *)b.data, b.len) == 1;
    }
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    if (!ok) {
        es_free(sig);
        es_buf_release(&b);
        return es_err_set(err, ES_ECONFIG,
                          "JWT bearer: signing with the key in %s failed (RS256 "
                          "needs an RSA key)",
                          oa->private_key_env);
    }
    (void)es_buf_putc(&b, '.');
    b64url(&b, sig, slen);
    es_free(sig);
    *jwt = es_buf_detach(&b, NULL);
    return ES_OK;
}

long es_http_token_fetches(void)
{
    pthread_mutex_lock(&g_tok_lock);
    long n = g_fetches;
    pthread_mutex_unlock(&g_tok_lock);
    return n;
}

/* Copies the cached token for key into *token / *inst (caller frees); 0 when none. */
static int cache_get(const char *key, char **token, char **inst)
{
    int found = 0;
    long long now = (long long)time(NULL);
    pthread_mutex_lock(&g_tok_lock);
    for (struct token_entry *t = g_tokens; t; t = t->next) {
        if (strcmp(t->key, key) == 0 && (!t->expires_at || t->expires_at > now + 30)) {
            *token = es_xstrdup(t->token);
            *inst = t->instance_url ? es_xstrdup(t->instance_url) : NULL;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&g_tok_lock);
    return found;
}

static void cache_put(const char *key, const char *token, const char *inst, long long expires_at)
{
    pthread_mutex_lock(&g_tok_lock);
    struct token_entry *t = g_tokens;
    while (t && strcmp(t->key, key) != 0) {
        t = t->next;
    }
    if (!t) {
        t = es_xcalloc(1, sizeof *t);
        t->key = es_xstrdup(key);
        t->next = g_tokens;
        g_tokens = t;
    }
    es_free(t->token);
    es_free(t->instance_url);
    t->token = es_xstrdup(token);
    t->instance_url = inst ? es_xstrdup(inst) : NULL;
    t->expires_at = expires_at;
    pthread_mutex_unlock(&g_tok_lock);
}

/* Drops the cached token for key when it is still the refused one. */
static void cache_drop(const char *key, const char *refused)
{
    pthread_mutex_lock(&g_tok_lock);
    for (struct token_entry **pp = &g_tokens; *pp; pp = &(*pp)->next) {
        struct token_entry *t = *pp;
        if (strcmp(t->key, key) == 0) {
            if (!refused || strcmp(t->token, refused) == 0) {
                *pp = t->next;
                es_free(t->key);
                es_free(t->token);
                es_free(t->instance_url);
                es_free(t);
            }
            break;
        }
    }
    pthread_mutex_unlock(&g_tok_lock);
}

/* ---- small helpers ------------------------------------------------------------------ */

int es_http_escape(struct es_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        int rc;
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            rc = es_buf_putc(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = es_buf_append(b, e, 3);
        }
        if (rc != ES_OK) {
            return rc;
        }
    }
    return ES_OK;
}

enum es_code es_http_status_code(long status, int has_retry_after)
{
    if (status < 400) {
        return ES_OK;
    }
    switch (status) {
    case 401:
    case 403:
    case 407:
        return ES_EAUTH;
    case 404:
    case 410:
        return ES_ENOTFOUND;
    case 408:
    case 504:
        return ES_ETIMEOUT;
    case 409:
    case 412:
    case 428:
        return ES_ECONFLICT;
    case 429:
        return ES_ERATELIMIT;
    case 503:
        return has_retry_after ? ES_ERATELIMIT : ES_EREMOTE;
    default:
        return status >= 500 ? ES_EREMOTE : ES_EVALIDATION;
    }
}

double es_http_parse_retry_after(const char *value, long long now_epoch)
{
    if (!value) {
        return -1;
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    if (isdigit((unsigned char)*value)) {
        char *end = NULL;
        double v = strtod(value, &end);
        while (end && (*end == ' ' || *end == '\t')) {
            end++;
        }
        return (end && *end == '\0' && v >= 0) ? v : -1;
    }
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1) {
        return -1;
    }
    double d = (double)((long long)t - now_epoch);
    return d < 0 ? 0 : d;
}

/* The path of url without scheme, host and query (for messages and logs). */
static void url_path(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : url;
    if (!p) {
        p = "/";
    }
    size_t n = strcspn(p, "?#");
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

/* A short printable excerpt of a body for messages, redacted. */
static void excerpt(const char *s, size_t len, char *out, size_t cap)
{
    size_t j = 0;
    int space = 0;
    for (size_t i = 0; i < len && j + 1 < cap && j < 80; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isspace(ch)) {
            if (!space && j > 0) {
                out[j++] = ' ';
            }
            space = 1;
            continue;
        }
        space = 0;
        out[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    out[j] = '\0';
    es_log_redact(out, cap);
}

/* The <title> of an HTML page, if any. */
static int html_title(const char *s, size_t len, char *out, size_t cap)
{
    const char *end = s + len;
    for (const char *p = s; p + 7 <= end; p++) {
        if (strncasecmp(p, "<title>", 7) == 0) {
            const char *q = p + 7;
            const char *e = q;
            while (e < end && *e != '<') {
                e++;
            }
            excerpt(q, (size_t)(e - q), out, cap);
            return out[0] != '\0';
        }
    }
    return 0;
}

static int looks_html(const struct es_http_resp *r)
{
    if (strstr(r->content_type, "html")) {
        return 1;
    }
    const char *p = r->body.data;
    size_t i = 0;
    while (p && i < r->body.len && isspace((unsigned char)p[i])) {
        i++;
    }
    return p && i < r->body.len && p[i] == '<' && r->body.len - i >= 5 &&
           (strncasecmp(p + i, "<html", 5) == 0 || strncasecmp(p + i, "<!doc", 5) == 0);
}

/* ---- responses ---------------------------------------------------------------------- */

void es_http_resp_init(struct es_http_resp *r, const struct es_http *h)
{
    memset(r, 0, sizeof *r);
    es_buf_init(&r->body, h ? h->max_response : 64u * 1024u * 1024u);
    es_buf_init(&r->hdrs, HDRS_MAX);
}

void es_http_resp_release(struct es_http_resp *r)
{
    if (r) {
        es_buf_release(&r->body);
        es_buf_release(&r->hdrs);
    }
}

const char *es_http_resp_header(const struct es_http_resp *r, const char *name)
{
    const char *p = r->hdrs.data;
    const char *end = p ? p + r->hdrs.len : NULL;
    while (p && p < end) {
        const char *v = p + strlen(p) + 1;
        if (v >= end) {
            break;
        }
        if (strcasecmp(p, name) == 0) {
            return v;
        }
        p = v + strlen(v) + 1;
    }
    return NULL;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct es_http *h = ud;
    size_t n = size * nmemb;
    if (es_buf_append(&h->cur->body, ptr, n) != ES_OK) {
        h->too_big = 1;
        return 0;
    }
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct es_http *h = ud;
    size_t n = size * nmemb;
    struct es_http_resp *r = h->cur;
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        es_buf_reset(&r->hdrs); /* a new answer (after 100-continue or a redirect) */
        r->content_type[0] = '\0';
        return n;
    }
    const char *colon = memchr(ptr, ':', n);
    if (!colon) {
        return n;
    }
    size_t nlen = (size_t)(colon - ptr);
    const char *v = colon + 1;
    const char *e = ptr + n;
    while (v < e && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ')) {
        e--;
    }
    size_t start = r->hdrs.len;
    if (es_buf_reserve(&r->hdrs, nlen + (size_t)(e - v) + 2) != ES_OK) {
        return n; /* absurd header volume: keep what we have */
    }
    for (size_t i = 0; i < nlen; i++) {
        (void)es_buf_putc(&r->hdrs, (char)tolower((unsigned char)ptr[i]));
    }
    (void)es_buf_putc(&r->hdrs, '\0');
    (void)es_buf_append(&r->hdrs, v, (size_t)(e - v));
    (void)es_buf_putc(&r->hdrs, '\0');
    if (strcmp(r->hdrs.data + start, "content-type") == 0) {
        size_t m = (size_t)(e - v);
        if (m >= sizeof r->content_type) {
            m = sizeof r->content_type - 1;
        }
        for (size_t i = 0; i < m; i++) {
            r->content_type[i] = (char)tolower((unsigned char)v[i]);
        }
        r->content_type[m] = '\0';
    }
    return n;
}

/* ---- construction ------------------------------------------------------------------- */

/* Options that follow the settings (set again when es_http_new changes verify_tls). */
static void apply_limits(struct es_http *h)
{
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->verify_tls ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->verify_tls ? 2L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_response);
}

static struct es_http *alloc_client(const char *base, long timeout_ms, long connect_timeout_ms,
                                    size_t max_response, struct es_err *err)
{
    pthread_once(&g_curl_once, curl_init_once);
    struct es_http *h = es_xcalloc(1, sizeof *h);
    h->curl = curl_easy_init();
    if (!h->curl) {
        es_free(h);
        es_err_set(err, ES_EINTERNAL, "libcurl could not create a handle");
        return NULL;
    }
    size_t n = base ? strlen(base) : 0;
    while (n > 0 && base[n - 1] == '/') {
        n--;
    }
    h->base = es_xstrndup(base ? base : "", n);
    h->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    h->connect_timeout_ms = connect_timeout_ms > 0 ? connect_timeout_ms : 5000;
    h->max_response = max_response ? max_response : 64u * 1024u * 1024u;
    h->verify_tls = 1;
    es_strlcpy(h->name, "http", sizeof h->name);
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, ""); /* cookie engine on (SAP sessions) */
    curl_easy_setopt(c, CURLOPT_USERAGENT, "erpsync/" ES_VERSION);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    apply_limits(h);
    return h;
}

int es_http_new_plain(const char *base_url, long timeout_ms, long connect_timeout_ms,
                      size_t max_response, struct es_http **out, struct es_err *err)
{
    *out = alloc_client(base_url, timeout_ms, connect_timeout_ms, max_response, err);
    return *out ? ES_OK : ES_EINTERNAL;
}

static int need_env(const char *system, const char *env, const char *what, struct es_err *err)
{
    if (!env) {
        return es_err_set(err, ES_ECONFIG, "system '%s': auth needs %s", system, what);
    }
    if (!es_config_secret(env)) {
        es_err_set(err, ES_ECONFIG, "system '%s': environment variable %s (%s) is not set", system,
                   env, what);
        es_err_hint(err, "export %s before starting erpsync", env);
        return ES_ECONFIG;
    }
    return ES_OK;
}

int es_http_new(const struct es_system_cfg *cfg, struct es_http **out, struct es_err *err)
{
    *out = NULL;
    if (!cfg->url || !*cfg->url) {
        return es_err_set(err, ES_ECONFIG, "system '%s' has no url", cfg->name);
    }
    if (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0) {
        return es_err_set(err, ES_ECONFIG, "system '%s': url must start with http:// or https://",
                          cfg->name);
    }
    struct es_http *h = alloc_client(cfg->url, (long)cfg->timeout_ms, (long)cfg->connect_timeout_ms,
                                     cfg->max_response > 0 ? (size_t)cfg->max_response : 0, err);
    if (!h) {
        return ES_EINTERNAL;
    }
    h->verify_tls = cfg->verify_tls;
    apply_limits(h);
    es_strlcpy(h->name, cfg->name, sizeof h->name);
    const struct es_auth_cfg *a = &cfg->auth;
    const char *m = a->method ? a->method : "none";
    int rc = ES_OK;
    if (strncmp(m, "oauth2_", 7) == 0) {
        h->auth = AUTH_OAUTH2;
        if (strcmp(m, "oauth2_client_credentials") == 0) {
            h->oa = &a->oauth2_client_credentials;
            h->grant = "client_credentials";
            rc = need_env(cfg->name, h->oa->id_env, "id_env", err);
            if (rc == ES_OK) {
                rc = need_env(cfg->name, h->oa->secret_env, "secret_env", err);
            }
        } else if (strcmp(m, "oauth2_password") == 0) {
            h->oa = &a->oauth2_password;
            h->grant = "password";
            rc = need_env(cfg->name, h->oa->user_env, "user_env", err);
            if (rc == ES_OK) {
                rc = need_env(cfg->name, h->oa->password_env, "password_env", err);
            }
        } else if (strcmp(m, "oauth2_jwt_bearer") == 0) {
            h->oa = &a->oauth2_jwt_bearer;
            h->grant = JWT_GRANT;
            rc = need_env(cfg->name, h->oa->id_env, "client_id_env", err);
            if (rc == ES_OK) {
                rc = need_env(cfg->name, h->oa->user_env, "user_env", err);
            }
            if (rc == ES_OK) {
                rc = need_env(cfg->name, h->oa->private_key_env, "private_key_env", err);
            }
        } else {
            h->oa = &a->oauth2_refresh_token;
            h->grant = "refresh_token";
            rc = need_env(cfg->name, h->oa->refresh_token_env, "refresh_token_env", err);
        }
        const char *tp = h->oa->token_path ? h->oa->token_path : "/services/oauth2/token";
        h->token_url = strncmp(tp, "http", 4) == 0
                           ? es_xstrdup(tp)
                           : es_xasprintf("%s%s%s", h->base, tp[0] == '/' ? "" : "/", tp);
        const char *id = h->oa->id_env ? es_config_secret(h->oa->id_env) : NULL;
        const char *user = h->oa->user_env ? es_config_secret(h->oa->user_env) : NULL;
        h->cache_key =
            es_xasprintf("%s|%s|%s|%s|%s", h->token_url, h->grant, id ? id : "", user ? user : "",
                         h->oa->refresh_token_env ? h->oa->refresh_token_env : "");
    } else if (strcmp(m, "basic") == 0) {
        h->auth = AUTH_BASIC;
        h->basic_user_env = a->basic.user_env;
        h->basic_pw_env = a->basic.password_env;
        rc = need_env(cfg->name, h->basic_user_env, "user_env", err);
        if (rc == ES_OK) {
            rc = need_env(cfg->name, h->basic_pw_env, "password_env", err);
        }
    } else if (strcmp(m, "bearer") == 0) {
        h->auth = AUTH_BEARER;
        h->bearer_env = a->bearer_token_env;
        rc = need_env(cfg->name, h->bearer_env, "bearer_token_env", err);
    }
    if (rc != ES_OK) {
        es_http_free(h);
        return rc;
    }
    *out = h;
    return ES_OK;
}

void es_http_free(struct es_http *h)
{
    if (!h) {
        return;
    }
    if (h->curl) {
        curl_easy_cleanup(h->curl);
    }
    es_free(h->base);
    es_free(h->api_base);
    es_free(h->token_url);
    es_free(h->cache_key);
    es_free(h);
}

void es_http_set_error_hook(struct es_http *h, es_http_error_fn fn, void *ud)
{
    h->hook = fn;
    h->hook_ud = ud;
}

void es_http_set_name(struct es_http *h, const char *name)
{
    es_strlcpy(h->name, name ? name : "http", sizeof h->name);
}

const char *es_http_base(const struct es_http *h)
{
    return h->api_base ? h->api_base : h->base;
}

/* ---- one exchange ------------------------------------------------------------------- */

static int has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; headers && headers[i]; i++) {
        if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':') {
            return 1;
        }
    }
    return 0;
}

static int classify_curl(struct es_http *h, CURLcode cc, const char *method, const char *path,
                         struct es_err *err)
{
    const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        es_err_set(err, ES_ETIMEOUT, "%s %s timed out: %s", method, path, detail);
        es_err_hint(err,
                    "the remote system is slow; erpsync retries; raise timeout if it persists");
        return ES_ETIMEOUT;
    case CURLE_WRITE_ERROR:
        if (h->too_big) {
            es_err_set(err, ES_EPROTOCOL, "%s %s: response larger than max_response (%zu bytes)",
                       method, path, h->max_response);
            es_err_hint(err, "raise max_response of the system or fetch smaller pages");
            return ES_EPROTOCOL;
        }
        break;
    case CURLE_PARTIAL_FILE:
        return es_err_set(err, ES_EPROTOCOL, "%s %s: response cut short: %s", method, path, detail);
    case CURLE_BAD_CONTENT_ENCODING:
        return es_err_set(err, ES_EPROTOCOL, "%s %s: undecodable body: %s", method, path, detail);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        es_err_set(err, ES_EIO, "%s %s: TLS certificate not trusted: %s", method, path, detail);
        es_err_hint(err, "install the CA certificate; verify_tls: false only for tests");
        return ES_EIO;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return es_err_set(err, ES_ECONFIG, "%s %s: bad URL: %s", method, path, detail);
    default:
        break;
    }
    return es_err_set(err, ES_EIO, "%s %s failed: %s", method, path, detail);
}

/* Performs one HTTP exchange with the given extra header lines. */
static int perform(struct es_http *h, const struct es_http_req_opts *rq, const char *url,
                   const char *auth_header, struct es_http_resp *resp, struct es_err *err)
{
    CURL *c = h->curl;
    const char *method = rq->method ? rq->method : "GET";
    char path[160];
    url_path(url, path, sizeof path);
    es_buf_reset(&resp->body);
    es_buf_reset(&resp->hdrs);
    resp->status = 0;
    resp->content_type[0] = '\0';
    h->too_big = 0;
    h->errbuf[0] = '\0';
    h->cur = resp;

    struct curl_slist *hl = NULL;
    for (size_t i = 0; rq->headers && rq->headers[i]; i++) {
        hl = curl_slist_append(hl, rq->headers[i]);
    }
    if (!has_header(rq->headers, "Accept")) {
        hl = curl_slist_append(hl, "Accept: application/json");
    }
    char ct[128];
    if (rq->body && !has_header(rq->headers, "Content-Type")) {
        snprintf(ct, sizeof ct, "Content-Type: %s",
                 rq->content_type ? rq->content_type : "application/json");
        hl = curl_slist_append(hl, ct);
    }
    if (auth_header) {
        hl = curl_slist_append(hl, auth_header);
    }
    hl = curl_slist_append(hl, "Expect:");

    /* No curl_easy_reset(): it would drop the cookie engine's state we rely on (SAP
     * sessions). Options that differ per request are all set (or cleared) here. */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    if (h->auth == AUTH_BASIC && !rq->no_auth) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, es_config_secret(h->basic_user_env));
        curl_easy_setopt(c, CURLOPT_PASSWORD, es_config_secret(h->basic_pw_env));
    } else {
        curl_easy_setopt(c, CURLOPT_USERNAME, NULL);
        curl_easy_setopt(c, CURLOPT_PASSWORD, NULL);
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 || rq->body) {
        if (strcmp(method, "POST") != 0) {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        }
        if (rq->body || strcmp(method, "DELETE") != 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        }
    }

    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(hl);
    h->cur = NULL;
    double t = 0;
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &t);
    resp->elapsed_s = t;
    struct es_log_ctx lctx = {NULL, h->name};
    if (cc == CURLE_FILESIZE_EXCEEDED) {
        h->too_big = 1;
        cc = CURLE_WRITE_ERROR;
    }
    if (cc != CURLE_OK) {
        es_log(&lctx, ES_LOG_DEBUG, "http %s %s failed after %.3fs: %s", method, path, t,
               curl_easy_strerror(cc));
        int rc = classify_curl(h, cc, method, path, err);
        es_err_remote(err, 0, NULL, NULL);
        return rc;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    es_log(&lctx, ES_LOG_DEBUG, "http %s %s -> %ld (%zu bytes, %.3fs)", method, path, resp->status,
           resp->body.len, t);
    return ES_OK;
}

/* ---- OAuth2 ------------------------------------------------------------------------- */

static void form_param(struct es_buf *b, const char *name, const char *value)
{
    if (!value) {
        return;
    }
    if (b->len) {
        (void)es_buf_putc(b, '&');
    }
    (void)es_buf_puts(b, name);
    (void)es_buf_putc(b, '=');
    (void)es_http_escape(b, value);
}

/* Fetches a token from the token endpoint and caches it. */
static int fetch_token(struct es_http *h, struct es_err *err)
{
    const struct es_oauth2_cfg *oa = h->oa;
    struct es_buf form;
    es_buf_init(&form, 0);
    form_param(&form, "grant_type", h->grant);
    int is_jwt = strcmp(h->grant, JWT_GRANT) == 0;
    int is_rt = strcmp(h->grant, "refresh_token") == 0;
    char *used_rt = NULL; /* the refresh token sent (rotation: memory, store file, env) */
    if (is_jwt) {
        char *jwt = NULL;
        int jrc = jwt_assertion(oa, &jwt, err);
        if (jrc != ES_OK) {
            es_buf_release(&form);
            return jrc;
        }
        form_param(&form, "assertion", jwt);
        es_free(jwt);
    } else {
        form_param(&form, "client_id", oa->id_env ? es_config_secret(oa->id_env) : NULL);
        form_param(&form, "client_secret",
                   oa->secret_env ? es_config_secret(oa->secret_env) : NULL);
    }
    if (strcmp(h->grant, "password") == 0) {
        form_param(&form, "username", es_config_secret(oa->user_env));
        form_param(&form, "password", es_config_secret(oa->password_env));
    } else if (is_rt) {
        used_rt = refresh_get(h->cache_key);
        if (!used_rt && oa->store_file) {
            used_rt = store_read(oa->store_file);
            if (used_rt) {
                es_log_add_secret(used_rt);
            }
        }
        if (!used_rt) {
            const char *env = es_config_secret(oa->refresh_token_env);
            used_rt = es_xstrdup(env ? env : "");
        }
        form_param(&form, "refresh_token", used_rt);
    }
    static const char *const hdrs[] = {"Accept: application/json", NULL};
    struct es_http_req_opts rq = {
        .method = "POST",
        .headers = hdrs,
        .body = form.data ? form.data : "",
        .body_len = form.len,
        .content_type = "application/x-www-form-urlencoded",
        .no_auth = 1,
    };
    struct es_http_resp resp;
    es_http_resp_init(&resp, h);
    resp.body.max = TOKEN_MAX;
    pthread_mutex_lock(&g_tok_lock);
    g_fetches++;
    pthread_mutex_unlock(&g_tok_lock);
    int rc = perform(h, &rq, h->token_url, NULL, &resp, err);
    es_buf_release(&form); /* the form held secrets: gone before anything else happens */
    json_t *j = NULL;
    if (rc != ES_OK) {
        es_err_prefix(err, "OAuth2 token request");
        goto done;
    }
    json_error_t je;
    j = resp.body.len ? json_loadb(resp.body.data, resp.body.len, 0, &je) : NULL;
    if (resp.status >= 400 || !j) {
        const char *code = j ? json_string_value(json_object_get(j, "error")) : NULL;
        const char *desc = j ? json_string_value(json_object_get(j, "error_description")) : NULL;
        if (resp.status >= 400 && resp.status != 429 && resp.status < 500) {
            rc = es_err_set(err, ES_EAUTH, "OAuth2 token request refused (HTTP %ld%s%s)",
                            resp.status, code ? ": " : "", code ? code : "");
            es_err_hint(err, "check the client id/secret (or user/password) environment variables "
                             "and the connected app");
        } else if (resp.status >= 400) {
            rc = es_err_set(err, es_http_status_code(resp.status, 0),
                            "OAuth2 token endpoint answered HTTP %ld", resp.status);
        } else {
            char ex[96];
            excerpt(resp.body.data ? resp.body.data : "", resp.body.len, ex, sizeof ex);
            rc = es_err_set(err, ES_EPROTOCOL,
                            "OAuth2 token endpoint answered no JSON (HTTP %ld, %s): '%s'",
                            resp.status, resp.content_type[0] ? resp.content_type : "no type", ex);
        }
        es_err_remote(err, resp.status, code, desc);
        goto done;
    }
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    if (!tok || !*tok) {
        rc = es_err_set(err, ES_EPROTOCOL, "OAuth2 token answer has no access_token");
        goto done;
    }
    es_log_add_secret(tok);
    const char *inst = json_string_value(json_object_get(j, "instance_url"));
    json_t *exp = json_object_get(j, "expires_in");
    long long expires_at = 0;
    if (json_is_integer(exp) && json_integer_value(exp) > 0) {
        expires_at = (long long)time(NULL) + json_integer_value(exp);
    } else if (json_is_string(exp)) {
        long long v = strtoll(json_string_value(exp), NULL, 10);
        expires_at = v > 0 ? (long long)time(NULL) + v : 0;
    }
    const char *rt = json_string_value(json_object_get(j, "refresh_token"));
    if (rt && *rt) {
        es_log_add_secret(rt);
    }
    if (rt && *rt && is_rt && used_rt && strcmp(rt, used_rt) != 0) {
        /* rotated: the old one is spent; the new one from now on (and after a restart) */
        refresh_put(h->cache_key, rt);
        struct es_log_ctx lctx = {NULL, h->name};
        if (oa->store_file) {
            int e = store_write(oa->store_file, rt);
            if (e) {
                es_log(&lctx, ES_LOG_WARN,
                       "refresh token rotated but not saved to %s: %s (kept in memory)",
                       oa->store_file, strerror(e));
            } else {
                es_log(&lctx, ES_LOG_INFO, "refresh token rotated; saved to %s", oa->store_file);
            }
        } else {
            es_log(&lctx, ES_LOG_INFO,
                   "refresh token rotated; kept in memory (set store_file to keep it across "
                   "restarts)");
        }
    }
    cache_put(h->cache_key, tok, inst && *inst ? inst : NULL, expires_at);
done:
    if (used_rt) {
        memset(used_rt, 0, strlen(used_rt));
        es_free(used_rt);
    }
    json_decref(j);
    es_http_resp_release(&resp);
    return rc;
}

/* Gets the current token (cache or fetch). OUT: *token, es_free(). */
static int current_token(struct es_http *h, char **token, struct es_err *err)
{
    char *inst = NULL;
    if (!cache_get(h->cache_key, token, &inst)) {
        int rc = fetch_token(h, err);
        if (rc != ES_OK) {
            return rc;
        }
        if (!cache_get(h->cache_key, token, &inst)) {
            return es_err_set(err, ES_EINTERNAL, "OAuth2 token vanished from the cache");
        }
    }
    if (inst) {
        size_t n = strlen(inst);
        while (n > 0 && inst[n - 1] == '/') {
            inst[--n] = '\0';
        }
        es_free(h->api_base);
        h->api_base = inst;
    }
    return ES_OK;
}

/* ---- public calls ------------------------------------------------------------------- */

int es_http_send(struct es_http *h, const struct es_http_req_opts *rq, struct es_http_resp *resp,
                 struct es_err *err)
{
    int rc = ES_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *token = NULL;
        char *auth = NULL;
        if (!rq->no_auth && h->auth == AUTH_OAUTH2) {
            rc = current_token(h, &token, err);
            if (rc != ES_OK) {
                return rc;
            }
            auth = es_xasprintf("Authorization: Bearer %s", token);
        } else if (!rq->no_auth && h->auth == AUTH_BEARER) {
            auth = es_xasprintf("Authorization: Bearer %s", es_config_secret(h->bearer_env));
        }
        char *url = NULL;
        if (strncmp(rq->url, "http://", 7) == 0 || strncmp(rq->url, "https://", 8) == 0) {
            url = es_xstrdup(rq->url);
        } else {
            url = es_xasprintf("%s%s%s", es_http_base(h), rq->url[0] == '/' ? "" : "/", rq->url);
        }
        rc = perform(h, rq, url, auth, resp, err);
        es_free(url);
        if (auth) {
            memset(auth, 0, strlen(auth));
            es_free(auth);
        }
        int again = rc == ES_OK && resp->status == 401 && h->auth == AUTH_OAUTH2 && !rq->no_auth &&
                    !rq->no_reauth && attempt == 0;
        if (again) {
            struct es_log_ctx lctx = {NULL, h->name};
            es_log(&lctx, ES_LOG_INFO, "access token refused (HTTP 401); re-authenticating once");
            cache_drop(h->cache_key, token);
        }
        es_free(token);
        if (!again) {
            break;
        }
    }
    return rc;
}

static int check_parse(struct es_http *h, const struct es_http_resp *resp, int expect_json,
                       const char *what, json_t **out, struct es_err *err)
{
    if (out) {
        *out = NULL;
    }
    const char *body = resp->body.data ? resp->body.data : "";
    if (resp->status == 0) {
        return es_err_set(err, ES_EIO, "%s: no HTTP answer", what);
    }
    if (resp->status >= 400) {
        const char *ra = es_http_resp_header(resp, "retry-after");
        double secs = es_http_parse_retry_after(ra, (long long)time(NULL));
        enum es_code code = es_http_status_code(resp->status, secs >= 0);
        struct es_http_remote rem;
        memset(&rem, 0, sizeof rem);
        if (h && h->hook) {
            h->hook(h->hook_ud, resp, &rem);
        }
        if (rem.code != ES_OK) {
            code = rem.code;
        }
        char title[96] = "";
        if (!rem.msg[0] && looks_html(resp) &&
            !html_title(body, resp->body.len, title, sizeof title)) {
            es_strlcpy(title, "HTML error page", sizeof title);
        }
        es_err_set(err, code, "%s answered HTTP %ld%s%s", what, resp->status,
                   rem.msg[0] || title[0] ? ": " : "", rem.msg[0] ? rem.msg : title);
        es_err_remote(err, resp->status, rem.code_text[0] ? rem.code_text : NULL,
                      rem.msg[0] ? rem.msg : (title[0] ? title : NULL));
        if (err && code == ES_ERATELIMIT && secs > 0 && err->retry_after == 0) {
            err->retry_after = secs;
        }
        if (code == ES_EAUTH && resp->status == 401) {
            es_err_hint(err, "credentials refused after one re-authentication; check the "
                             "system's auth settings");
        }
        return code;
    }
    if (!expect_json || resp->body.len == 0) {
        return ES_OK;
    }
    if (looks_html(resp)) {
        char title[96];
        if (!html_title(body, resp->body.len, title, sizeof title)) {
            excerpt(body, resp->body.len, title, sizeof title);
        }
        es_err_set(err, ES_EPROTOCOL,
                   "%s answered an HTML page where JSON was expected (HTTP %ld): %s", what,
                   resp->status, title);
        es_err_remote(err, resp->status, NULL, NULL);
        es_err_hint(err, "a proxy, login page or maintenance page answered instead of the API; "
                         "check the system url");
        return ES_EPROTOCOL;
    }
    json_error_t je;
    json_t *j = json_loadb(body, resp->body.len, JSON_DECODE_ANY, &je);
    if (!j && resp->content_type[0] && !strstr(resp->content_type, "json")) {
        /* e.g. Atom XML from an OData service that ignored $format=json */
        char ex[96];
        excerpt(body, resp->body.len, ex, sizeof ex);
        es_err_set(err, ES_EPROTOCOL,
                   "%s answered '%s' where JSON was expected (HTTP %ld, %zu bytes): '%s'", what,
                   resp->content_type, resp->status, resp->body.len, ex);
        es_err_remote(err, resp->status, NULL, NULL);
        return ES_EPROTOCOL;
    }
    if (!j) {
        es_err_set(err, ES_EPROTOCOL,
                   "%s answered invalid JSON (HTTP %ld, %zu bytes): %s at line %d column %d", what,
                   resp->status, resp->body.len, je.text, je.line, je.column);
        es_err_remote(err, resp->status, NULL, NULL);
        return ES_EPROTOCOL;
    }
    if (out) {
        *out = j;
    } else {
        json_decref(j);
    }
    return ES_OK;
}

int es_http_check(struct es_http *h, const struct es_http_resp *resp, int expect_json,
                  const char *what, struct es_err *err)
{
    return check_parse(h, resp, expect_json, what, NULL, err);
}

int es_http_json(struct es_http *h, const struct es_http_req_opts *rq, struct es_http_resp *resp,
                 json_t **out, struct es_err *err)
{
    *out = NULL;
    struct es_http_resp local;
    struct es_http_resp *r = resp;
    if (!r) {
        es_http_resp_init(&local, h);
        r = &local;
    }
    int rc = es_http_send(h, rq, r, err);
    if (rc == ES_OK) {
        char what[200];
        char path[160];
        url_path(rq->url, path, sizeof path);
        snprintf(what, sizeof what, "%s %s", rq->method ? rq->method : "GET", path);
        rc = check_parse(h, r, 1, what, out, err);
    }
    if (!resp) {
        es_http_resp_release(&local);
    }
    return rc;
}

/* ---- connector options -------------------------------------------------------------- */

int es_http_options_check(const struct es_node *opts, const char *const *known,
                          const char *connector, struct es_err *err)
{
    if (!opts || opts->is_null) {
        return ES_OK;
    }
    if (opts->kind != ES_NODE_MAP) {
        return es_err_set(err, ES_ECONFIG, "%s:%d:%d: %s options must be a mapping", opts->file,
                          opts->line, opts->col, connector);
    }
    for (size_t i = 0; i < opts->count; i++) {
        const struct es_node *k = opts->pairs[i].key;
        int ok = 0;
        const char *best = NULL;
        int best_d = 4;
        for (size_t j = 0; known[j]; j++) {
            if (strcmp(known[j], k->str) == 0) {
                ok = 1;
                break;
            }
            int d = es_edit_distance(known[j], k->str);
            if (d < best_d) {
                best_d = d;
                best = known[j];
            }
        }
        if (!ok) {
            es_err_set(err, ES_ECONFIG, "%s:%d:%d: %s option '%s' is unknown%s%s%s", k->file,
                       k->line, k->col, connector, k->str, best ? " (did you mean '" : "",
                       best ? best : "", best ? "'?)" : "");
            return ES_ECONFIG;
        }
    }
    return ES_OK;
}

static const struct es_node *opt_scalar(const struct es_node *opts, const char *key, int *rc,
                                        struct es_err *err)
{
    *rc = ES_OK;
    const struct es_node *v = opts ? es_node_get(opts, key) : NULL;
    if (!v || v->is_null) {
        return NULL;
    }
    if (v->kind != ES_NODE_SCALAR) {
        *rc = es_err_set(err, ES_ECONFIG, "%s:%d:%d: option '%s' must be a single value", v->file,
                         v->line, v->col, key);
        return NULL;
    }
    return v;
}

int es_http_opt_int(const struct es_node *opts, const char *key, long long min, long long max,
                    long long *out, struct es_err *err)
{
    int rc;
    const struct es_node *v = opt_scalar(opts, key, &rc, err);
    if (!v) {
        return rc;
    }
    char *end = NULL;
    long long n = strtoll(v->str, &end, 10);
    if (!end || end == v->str || *end || n < min || n > max) {
        return es_err_set(err, ES_ECONFIG,
                          "%s:%d:%d: option '%s' must be a whole number from %lld "
                          "to %lld",
                          v->file, v->line, v->col, key, min, max);
    }
    *out = n;
    return ES_OK;
}

int es_http_opt_bool(const struct es_node *opts, const char *key, int *out, struct es_err *err)
{
    int rc;
    const struct es_node *v = opt_scalar(opts, key, &rc, err);
    if (!v) {
        return rc;
    }
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    for (size_t i = 0; yes[i]; i++) {
        if (strcasecmp(v->str, yes[i]) == 0) {
            *out = 1;
            return ES_OK;
        }
        if (strcasecmp(v->str, no[i]) == 0) {
            *out = 0;
            return ES_OK;
        }
    }
    return es_err_set(err, ES_ECONFIG, "%s:%d:%d: option '%s' must be true or false", v->file,
                      v->line, v->col, key);
}

int es_http_opt_duration(const struct es_node *opts, const char *key, int64_t *out,
                         struct es_err *err)
{
    int rc;
    const struct es_node *v = opt_scalar(opts, key, &rc, err);
    if (!v) {
        return rc;
    }
    int bad = 0;
    if (es_duration_parse(v->str, out, &bad) != ES_OK) {
        return es_err_set(err, ES_ECONFIG, "%s:%d:%d: option '%s' must be a duration like 5s or 2m",
                          v->file, v->line, v->col + bad, key);
    }
    return ES_OK;
}

int es_http_opt_str(const struct es_node *opts, const char *key, const char **out,
                    struct es_err *err)
{
    int rc;
    const struct es_node *v = opt_scalar(opts, key, &rc, err);
    if (v) {
        *out = v->str;
    }
    return rc;
}
