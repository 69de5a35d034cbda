/* SPDX-License-Identifier: MIT */
/*
 * One error type for all of erpsync.
 *
 * Invariants:
 *  - enum es_code is append-only: its names are API (CLI exit codes, admin JSON, metric
 *    labels). Never renumber, never remove.
 *  - Each code belongs to one failure class of the taxonomy in docs/architecture.md; the class
 *    decides what the engine does with a change (retry, review, dead letter, pause).
 *  - es_err_set() keeps the FIRST failure: later calls on a filled err do not overwrite it, so
 *    the root cause survives while callers add context with es_err_prefix().
 */
#ifndef ES_CORE_ERR_H
#define ES_CORE_ERR_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define ES_NODISCARD      __attribute__((warn_unused_result))
#define ES_PRINTF(fmt, a) __attribute__((format(printf, fmt, a)))
#else
#define ES_NODISCARD
#define ES_PRINTF(fmt, a)
#endif

enum es_code {
    ES_OK = 0,
    ES_ENOMEM,      /* allocation of a size taken from input failed */
    ES_EINVAL,      /* a caller passed something invalid (bug or bad CLI input) */
    ES_ECONFIG,     /* the configuration is wrong */
    ES_EIO,         /* network or file I/O failed: transient */
    ES_ETIMEOUT,    /* a remote call timed out: transient */
    ES_EAUTH,       /* credentials refused: pause the flow */
    ES_ERATELIMIT,  /* the remote system asks us to slow down (429, limits) */
    ES_EREMOTE,     /* the remote system failed (5xx, lock): transient */
    ES_EREJECTED,   /* the remote system said no for a business reason (credit hold) */
    ES_ECONFLICT,   /* concurrent edit, stale ETag, policy conflict */
    ES_ESTORE,      /* the state store failed (busy, disk) */
    ES_EVALIDATION, /* the record is wrong: required field, length, picklist, type */
    ES_ENOTFOUND,   /* the record or object does not exist */
    ES_EPOISON,     /* the input can never be processed (unparseable payload) */
    ES_EINTERNAL,   /* a bug in erpsync */
    ES_EPROTOCOL,   /* the remote answered something we cannot understand (HTML, cut JSON) */
    ES_EDUPLICATE,  /* a duplicate was detected (by us or by the remote's duplicate rule) */
    /* append only */
    ES_CODE_LAST
};

/* The failure classes of DESIGN.md: what the engine does with a failed change. */
enum es_class {
    ES_CLASS_NONE = 0,     /* success */
    ES_CLASS_TRANSIENT,    /* retry with backoff */
    ES_CLASS_RATE_LIMITED, /* retry after the server's hint */
    ES_CLASS_AUTH,         /* pause the flow, alert */
    ES_CLASS_VALIDATION,   /* review: the record is wrong */
    ES_CLASS_BUSINESS,     /* review: the system said no */
    ES_CLASS_CONFLICT,     /* review or policy */
    ES_CLASS_NOT_FOUND,    /* review */
    ES_CLASS_POISON,       /* dead letter */
    ES_CLASS_INTERNAL,     /* dead letter + alert */
    ES_CLASS_LAST
};

/* Error detail. Every text field is NUL-terminated and may be empty. */
struct es_err {
    enum es_code code;
    int sys_errno;        /* errno when a syscall failed, else 0 */
    long http_status;     /* HTTP status of the remote answer, else 0 */
    double retry_after;   /* seconds the remote asked us to wait, 0 if none */
    char system[32];      /* system name from the config */
    char flow[48];        /* flow name */
    char key[96];         /* record key (source id) */
    char where[48];       /* module/function that failed */
    char remote_code[64]; /* the remote system's own error code */
    char msg[256];        /* what happened, one line, no newline */
    char remote_msg[256]; /* the remote system's own message */
    char hint[160];       /* what a person can do about it */
};

/* Code name as used in the CLI, JSON and metrics ("rate_limited"). Never NULL. */
const char *es_code_name(enum es_code code);
/* Looks a name up; returns ES_CODE_LAST when unknown. */
enum es_code es_code_from_name(const char *name);
enum es_class es_code_class(enum es_code code);
const char *es_class_name(enum es_class cls);
/* True when the engine should retry a change that failed with this code. */
int es_code_retryable(enum es_code code);
/* Process exit status for a CLI command that failed with this code (1..99). */
int es_code_exit_status(enum es_code code);

/* Clears err (all fields). NULL-tolerant. */
void es_err_clear(struct es_err *err);
/* Fills err (if non-NULL and still empty) and returns code. Messages have no newline. */
int es_err_set(struct es_err *err, enum es_code code, const char *fmt, ...) ES_PRINTF(3, 4);
int es_err_setv(struct es_err *err, enum es_code code, const char *fmt, va_list ap);
/* Prepends "ctx: " to err->msg (context added by callers on the way up). */
void es_err_prefix(struct es_err *err, const char *fmt, ...) ES_PRINTF(2, 3);
/* Sets the optional detail fields; each is NULL-tolerant and leaves others unchanged. */
void es_err_remote(struct es_err *err, long http_status, const char *remote_code,
                   const char *remote_msg);
void es_err_hint(struct es_err *err, const char *fmt, ...) ES_PRINTF(2, 3);
void es_err_context(struct es_err *err, const char *system, const char *flow, const char *key);

/* Copies the bounded string src into dst[cap], always NUL-terminating; returns dst. */
char *es_strlcpy(char *dst, const char *src, size_t cap);

#endif
