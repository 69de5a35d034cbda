/* SPDX-License-Identifier: MIT */
/*
 * Time: wall clock and monotonic milliseconds, durations as written in config ("15m").
 */
#ifndef ES_CORE_CLOCK_H
#define ES_CORE_CLOCK_H

#include <stdint.h>

#include "core/err.h"

/* Milliseconds since the Unix epoch (wall clock). */
int64_t es_clock_wall_ms(void);
/* Milliseconds from an arbitrary origin that never goes backwards. */
int64_t es_clock_mono_ms(void);
/* Parses "500ms", "30s", "15m", "2h", "1d", "1h30m" into milliseconds. A bare number is
 * refused (units are not guessed). Returns ES_OK or ES_EINVAL; *bad_at is the byte offset of
 * the first wrong character (for the caret). */
ES_NODISCARD int es_duration_parse(const char *s, int64_t *ms, int *bad_at);
/* Formats ms as the shortest duration text ("15m", "1h30m", "250ms") into out. */
void es_duration_format(int64_t ms, char *out, int cap);
/* Formats epoch ms as ISO 8601 UTC with milliseconds ("2026-11-27T18:00:00.123Z"). */
void es_clock_iso8601(int64_t epoch_ms, char *out, int cap);

#endif
