/* SPDX-License-Identifier: MIT */
/*
 * The error table: one row per code with its name, failure class and CLI exit status. All
 * other places (CLI, admin JSON, metrics labels) read names from here, so they never drift.
 */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

struct code_row {
    const char *name;
    enum es_class cls;
    int exit_status;
};

static const struct code_row code_table[ES_CODE_LAST] = {
    [ES_OK] = {"ok", ES_CLASS_NONE, 0},
    [ES_ENOMEM] = {"nomem", ES_CLASS_INTERNAL, 70},
    [ES_EINVAL] = {"invalid_argument", ES_CLASS_INTERNAL, 64},
    [ES_ECONFIG] = {"config", ES_CLASS_INTERNAL, 78},
    [ES_EIO] = {"io", ES_CLASS_TRANSIENT, 74},
    [ES_ETIMEOUT] = {"timeout", ES_CLASS_TRANSIENT, 75},
    [ES_EAUTH] = {"auth", ES_CLASS_AUTH, 77},
    [ES_ERATELIMIT] = {"rate_limited", ES_CLASS_RATE_LIMITED, 75},
    [ES_EREMOTE] = {"remote", ES_CLASS_TRANSIENT, 69},
    [ES_EREJECTED] = {"business", ES_CLASS_BUSINESS, 65},
    [ES_ECONFLICT] = {"conflict", ES_CLASS_CONFLICT, 65},
    [ES_ESTORE] = {"store", ES_CLASS_TRANSIENT, 74},
    [ES_EVALIDATION] = {"validation", ES_CLASS_VALIDATION, 65},
    [ES_ENOTFOUND] = {"not_found", ES_CLASS_NOT_FOUND, 66},
    [ES_EPOISON] = {"poison", ES_CLASS_POISON, 65},
    [ES_EINTERNAL] = {"internal", ES_CLASS_INTERNAL, 70},
    [ES_EPROTOCOL] = {"protocol", ES_CLASS_TRANSIENT, 76},
    [ES_EDUPLICATE] = {"duplicate", ES_CLASS_CONFLICT, 65},
};

_Static_assert(sizeof code_table / sizeof code_table[0] == ES_CODE_LAST,
               "every es_code needs a row in code_table");

static const char *const class_names[ES_CLASS_LAST] = {
    [ES_CLASS_NONE] = "none",
    [ES_CLASS_TRANSIENT] = "transient",
    [ES_CLASS_RATE_LIMITED] = "rate_limited",
    [ES_CLASS_AUTH] = "auth",
    [ES_CLASS_VALIDATION] = "validation",
    [ES_CLASS_BUSINESS] = "business",
    [ES_CLASS_CONFLICT] = "conflict",
    [ES_CLASS_NOT_FOUND] = "not_found",
    [ES_CLASS_POISON] = "poison",
    [ES_CLASS_INTERNAL] = "internal",
};

const char *es_code_name(enum es_code code)
{
    if ((unsigned)code >= ES_CODE_LAST) {
        return "unknown";
    }
    return code_table[code].name;
}

enum es_code es_code_from_name(const char *name)
{
    for (int i = 0; name && i < ES_CODE_LAST; i++) {
        if (strcmp(code_table[i].name, name) == 0) {
            return (enum es_code)i;
        }
    }
    return ES_CODE_LAST;
}

enum es_class es_code_class(enum es_code code)
{
    if ((unsigned)code >= ES_CODE_LAST) {
        return ES_CLASS_INTERNAL;
    }
    return code_table[code].cls;
}

const char *es_class_name(enum es_class cls)
{
    if ((unsigned)cls >= ES_CLASS_LAST) {
        return "unknown";
    }
    return class_names[cls];
}

int es_code_retryable(enum es_code code)
{
    enum es_class cls = es_code_class(code);
    return cls == ES_CLASS_TRANSIENT || cls == ES_CLASS_RATE_LIMITED;
}

int es_code_exit_status(enum es_code code)
{
    if ((unsigned)code >= ES_CODE_LAST) {
        return 70;
    }
    return code_table[code].exit_status;
}

char *es_strlcpy(char *dst, const char *src, size_t cap)
{
    if (cap == 0) {
        return dst;
    }
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
    return dst;
}

void es_err_clear(struct es_err *err)
{
    if (err) {
        memset(err, 0, sizeof *err);
    }
}

/* Messages are one line: a newline from a remote text would break logfmt and tables. */
static void flatten(char *s)
{
    for (; *s; s++) {
        if (*s == '\n' || *s == '\r' || *s == '\t') {
            *s = ' ';
        }
    }
}

int es_err_setv(struct es_err *err, enum es_code code, const char *fmt, va_list ap)
{
    if (!err || err->code != ES_OK) {
        return code;
    }
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    flatten(err->msg);
    return code;
}

int es_err_set(struct es_err *err, enum es_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    es_err_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void es_err_prefix(struct es_err *err, const char *fmt, ...)
{
    if (!err) {
        return;
    }
    char head[128];
    char joined[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    snprintf(joined, sizeof joined, "%s: %s", head, err->msg);
    memcpy(err->msg, joined, sizeof joined);
    flatten(err->msg);
}

void es_err_remote(struct es_err *err, long http_status, const char *remote_code,
                   const char *remote_msg)
{
    if (!err) {
        return;
    }
    if (http_status) {
        err->http_status = http_status;
    }
    if (remote_code) {
        es_strlcpy(err->remote_code, remote_code, sizeof err->remote_code);
    }
    if (remote_msg) {
        es_strlcpy(err->remote_msg, remote_msg, sizeof err->remote_msg);
        flatten(err->remote_msg);
    }
}

void es_err_hint(struct es_err *err, const char *fmt, ...)
{
    if (!err) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof err->hint, fmt, ap);
    va_end(ap);
    flatten(err->hint);
}

void es_err_context(struct es_err *err, const char *system, const char *flow, const char *key)
{
    if (!err) {
        return;
    }
    if (system) {
        es_strlcpy(err->system, system, sizeof err->system);
    }
    if (flow) {
        es_strlcpy(err->flow, flow, sizeof err->flow);
    }
    if (key) {
        es_strlcpy(err->key, key, sizeof err->key);
    }
}
