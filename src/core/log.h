/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event on stderr, logfmt by default
 *   ts=2026-11-27T18:00:00.123Z lvl=warn flow=customer-to-erp system=erp code=timeout msg="..."
 * or one JSON object per line with es_log_set_format(ES_LOG_JSON).
 *
 * Invariants:
 *  - Every line passes through the redactor: Authorization headers, bearer tokens,
 *    password/secret/token fields, and every value registered with es_log_add_secret() are
 *    replaced by "[REDACTED]" before anything is written.
 *  - Leaf modules (core, store, map) never log; they fill an es_err and the deciding caller
 *    logs once.
 *  - Thread-safe: one write(2) per line.
 */
#ifndef ES_CORE_LOG_H
#define ES_CORE_LOG_H

#include <stddef.h>

#include "core/err.h"

enum es_log_level { ES_LOG_DEBUG = 0, ES_LOG_INFO, ES_LOG_WARN, ES_LOG_ERROR, ES_LOG_OFF };
enum es_log_format { ES_LOG_LOGFMT = 0, ES_LOG_JSON };

/* Who logs: the prefix fields of a line. Any member may be NULL. */
struct es_log_ctx {
    const char *flow;
    const char *system;
};

void es_log_set_level(enum es_log_level level);
void es_log_set_format(enum es_log_format format);
/* Parses "debug|info|warn|error|off" / "logfmt|json"; returns 0 or ES_EINVAL. */
ES_NODISCARD int es_log_parse_level(const char *s, enum es_log_level *out);
ES_NODISCARD int es_log_parse_format(const char *s, enum es_log_format *out);
/* Sends lines to fd instead of stderr (tests). */
void es_log_set_fd(int fd);
/* Registers a secret value (copied) that must never appear in a log line. Values shorter
 * than 4 bytes are ignored (they would redact ordinary words). */
void es_log_add_secret(const char *value);
void es_log_clear_secrets(void);

void es_log(const struct es_log_ctx *ctx, enum es_log_level level, const char *fmt, ...)
    ES_PRINTF(3, 4);
/* Logs an error with all its detail fields (code, http, remote code/message, hint). */
void es_log_err(const struct es_log_ctx *ctx, enum es_log_level level, const struct es_err *err);

/* Redacts secrets in s (in place, never growing it beyond cap); exposed for tests and for
 * other outputs that show remote text (admin API, CLI). Returns the new length. */
size_t es_log_redact(char *s, size_t cap);

#endif
