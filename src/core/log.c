/* SPDX-License-Identifier: MIT */
/*
 * Structured logging with built-in redaction. The redactor runs on the final message text,
 * so no call site can forget it: a token that reaches a log line through an error message,
 * a remote body or a header dump is cut out all the same.
 */
#include "core/log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"

#define REDACTED    "[REDACTED]"
#define MAX_SECRETS 64

static enum es_log_level g_level = ES_LOG_INFO;
static enum es_log_format g_format = ES_LOG_LOGFMT;
static int g_fd = 2;
static pthread_mutex_t g_secret_lock = PTHREAD_MUTEX_INITIALIZER;
static char *g_secrets[MAX_SECRETS];
static int g_nsecrets;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void es_log_set_level(enum es_log_level level)
{
    g_level = level;
}

void es_log_set_format(enum es_log_format format)
{
    g_format = format;
}

void es_log_set_fd(int fd)
{
    g_fd = fd;
}

int es_log_parse_level(const char *s, enum es_log_level *out)
{
    for (int i = 0; i <= ES_LOG_OFF; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (enum es_log_level)i;
            return ES_OK;
        }
    }
    return ES_EINVAL;
}

int es_log_parse_format(const char *s, enum es_log_format *out)
{
    if (s && strcmp(s, "logfmt") == 0) {
        *out = ES_LOG_LOGFMT;
        return ES_OK;
    }
    if (s && strcmp(s, "json") == 0) {
        *out = ES_LOG_JSON;
        return ES_OK;
    }
    return ES_EINVAL;
}

void es_log_add_secret(const char *value)
{
    if (!value || strlen(value) < 4) {
        return;
    }
    pthread_mutex_lock(&g_secret_lock);
    for (int i = 0; i < g_nsecrets; i++) {
        if (strcmp(g_secrets[i], value) == 0) {
            pthread_mutex_unlock(&g_secret_lock);
            return;
        }
    }
    if (g_nsecrets < MAX_SECRETS) {
        g_secrets[g_nsecrets++] = es_xstrdup(value);
    }
    pthread_mutex_unlock(&g_secret_lock);
}

void es_log_clear_secrets(void)
{
    pthread_mutex_lock(&g_secret_lock);
    for (int i = 0; i < g_nsecrets; i++) {
        es_free(g_secrets[i]);
        g_secrets[i] = NULL;
    }
    g_nsecrets = 0;
    pthread_mutex_unlock(&g_secret_lock);
}

/* Replaces s[start, end) by REDACTED, shifting the tail; returns the new length. */
static size_t splice(char *s, size_t len, size_t cap, size_t start, size_t end)
{
    size_t rlen = sizeof REDACTED - 1;
    size_t tail = len - end;
    if (start + rlen + tail + 1 > cap) {
        /* No room to grow: cut the line at the secret rather than show it. */
        size_t keep = cap - 1 - start < rlen ? cap - 1 - start : rlen;
        memcpy(s + start, REDACTED, keep);
        s[start + keep] = '\0';
        return start + keep;
    }
    memmove(s + start + rlen, s + end, tail + 1);
    memcpy(s + start, REDACTED, rlen);
    return start + rlen + tail;
}

/* Key names whose value is secret, in headers, JSON, form bodies and logfmt. */
static const char *const secret_keys[] = {
    "authorization", "proxy-authorization",
    "access_token",  "refresh_token",
    "client_secret", "password",
    "passwd",        "secret",
    "api_key",       "apikey",
    "x-csrf-token",  "session",
    "cookie",        "set-cookie",
    "token",
};

static int is_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* After a secret key: skip separators (": ", "=", "\":\""), then redact the value up to
 * the next delimiter. For "Authorization: Bearer x" the whole "Bearer x" goes. */
static size_t redact_after_key(char *s, size_t len, size_t cap, size_t pos, size_t *next)
{
    size_t i = pos;
    while (i < len && (s[i] == '"' || s[i] == '\'' || s[i] == '\\' || s[i] == ' ')) {
        i++;
    }
    if (i >= len || (s[i] != ':' && s[i] != '=')) {
        *next = pos;
        return len;
    }
    i++;
    while (i < len && (s[i] == ' ' || s[i] == '"' || s[i] == '\'' || s[i] == '\\')) {
        i++;
    }
    size_t start = i;
    int scheme = 0;
    if (len - i > 7 && (strncasecmp(s + i, "Bearer ", 7) == 0)) {
        i += 7;
        scheme = 1;
    } else if (len - i > 6 && strncasecmp(s + i, "Basic ", 6) == 0) {
        i += 6;
        scheme = 1;
    }
    while (i < len && s[i] != '"' && s[i] != '\'' && s[i] != ',' && s[i] != '&' && s[i] != '\\' &&
           s[i] != '}' && s[i] != '\n' && s[i] != ';' && (scheme || s[i] != ' ')) {
        if (scheme && s[i] == ' ') {
            break;
        }
        i++;
    }
    if (i == start) {
        *next = i;
        return len;
    }
    size_t nlen = splice(s, len, cap, start, i);
    *next = start + sizeof REDACTED - 1;
    return nlen;
}

size_t es_log_redact(char *s, size_t cap)
{
    size_t len = strlen(s);
    /* 1. Values registered as secrets, wherever they appear. */
    pthread_mutex_lock(&g_secret_lock);
    for (int k = 0; k < g_nsecrets; k++) {
        size_t slen = strlen(g_secrets[k]);
        char *hit;
        size_t from = 0;
        while (from < len && (hit = strstr(s + from, g_secrets[k])) != NULL) {
            size_t start = (size_t)(hit - s);
            len = splice(s, len, cap, start, start + slen);
            from = start + sizeof REDACTED - 1;
        }
    }
    pthread_mutex_unlock(&g_secret_lock);
    /* 2. Values of secret-looking keys. */
    for (size_t i = 0; i < len; i++) {
        if (!is_key_char(s[i]) || (i > 0 && is_key_char(s[i - 1]))) {
            continue;
        }
        size_t j = i;
        while (j < len && is_key_char(s[j])) {
            j++;
        }
        size_t klen = j - i;
        for (size_t k = 0; k < ES_ARRAY_LEN(secret_keys); k++) {
            size_t sklen = strlen(secret_keys[k]);
            /* Match the key exactly, or as a suffix after '_' ("sf_password", "x_token"). */
            int match = (klen == sklen && strncasecmp(s + i, secret_keys[k], klen) == 0) ||
                        (klen > sklen && s[j - sklen - 1] == '_' &&
                         strncasecmp(s + j - sklen, secret_keys[k], sklen) == 0 &&
                         strcmp(secret_keys[k], "token") == 0);
            if (match) {
                size_t next;
                len = redact_after_key(s, len, cap, j, &next);
                j = next;
                break;
            }
        }
        /* A bare "Bearer <token>" without a header name. */
        if (klen == 6 && strncasecmp(s + i, "Bearer", 6) == 0 && j < len && s[j] == ' ') {
            size_t start = j + 1, e = start;
            while (e < len && s[e] != ' ' && s[e] != '"' && s[e] != ',' && s[e] != '\n') {
                e++;
            }
            if (e > start && strncmp(s + start, REDACTED, sizeof REDACTED - 1) != 0) {
                len = splice(s, len, cap, start, e);
                j = start + sizeof REDACTED - 1;
            }
        }
        i = j > i ? j - 1 : i;
    }
    return len;
}

static void put_logfmt_value(struct es_buf *b, const char *v)
{
    int quote = *v == '\0';
    for (const char *p = v; *p; p++) {
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20) {
            quote = 1;
            break;
        }
    }
    if (!quote) {
        (void)es_buf_puts(b, v);
        return;
    }
    (void)es_buf_putc(b, '"');
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') {
            (void)es_buf_putc(b, '\\');
        }
        (void)es_buf_putc(b, (unsigned char)*p < 0x20 ? ' ' : *p);
    }
    (void)es_buf_putc(b, '"');
}

static void put_field(struct es_buf *b, const char *key, const char *value)
{
    if (!value || !*value) {
        return;
    }
    if (g_format == ES_LOG_JSON) {
        (void)es_buf_printf(b, ",\"%s\":", key);
        (void)es_buf_json_str(b, value, strlen(value));
    } else {
        (void)es_buf_printf(b, " %s=", key);
        put_logfmt_value(b, value);
    }
}

struct line_fields {
    const char *code;
    const char *http;
    const char *remote_code;
    const char *remote_msg;
    const char *hint;
    const char *key;
};

static void emit(const struct es_log_ctx *ctx, enum es_log_level level, const char *msg,
                 const struct line_fields *f)
{
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    struct es_buf b;
    es_buf_init(&b, 0);
    if (g_format == ES_LOG_JSON) {
        (void)es_buf_printf(&b, "{\"ts\":\"%s\",\"lvl\":\"%s\"", ts, level_names[level]);
    } else {
        (void)es_buf_printf(&b, "ts=%s lvl=%s", ts, level_names[level]);
    }
    put_field(&b, "flow", ctx ? ctx->flow : NULL);
    put_field(&b, "system", ctx ? ctx->system : NULL);
    if (f) {
        put_field(&b, "code", f->code);
        put_field(&b, "key", f->key);
        put_field(&b, "http", f->http);
        put_field(&b, "remote_code", f->remote_code);
        put_field(&b, "remote_msg", f->remote_msg);
        put_field(&b, "hint", f->hint);
    }
    put_field(&b, "msg", msg);
    (void)es_buf_puts(&b, g_format == ES_LOG_JSON ? "}\n" : "\n");
    /* Redact the finished line: covers the message and every detail field at once. The
     * buffer gets head room because a redaction may be longer than a short secret. */
    if (es_buf_reserve(&b, b.len + 64) == ES_OK) {
        b.len = es_log_redact(b.data, b.cap);
    }
    ssize_t off = 0;
    while ((size_t)off < b.len) {
        ssize_t n = write(g_fd, b.data + off, b.len - (size_t)off);
        if (n <= 0) {
            break;
        }
        off += n;
    }
    es_buf_release(&b);
}

void es_log(const struct es_log_ctx *ctx, enum es_log_level level, const char *fmt, ...)
{
    if (level < g_level || level >= ES_LOG_OFF) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(ctx, level, msg, NULL);
}

void es_log_err(const struct es_log_ctx *ctx, enum es_log_level level, const struct es_err *err)
{
    if (!err || level < g_level || level >= ES_LOG_OFF) {
        return;
    }
    char http[16] = "";
    if (err->http_status) {
        snprintf(http, sizeof http, "%ld", err->http_status);
    }
    struct es_log_ctx merged = {ctx && ctx->flow ? ctx->flow : err->flow,
                                ctx && ctx->system ? ctx->system : err->system};
    struct line_fields f = {es_code_name(err->code), http,      err->remote_code,
                            err->remote_msg,         err->hint, err->key};
    emit(&merged, level, err->msg, &f);
}
