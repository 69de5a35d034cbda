/* SPDX-License-Identifier: MIT */
/*
 * Five-field cron expressions: "minute hour day-of-month month day-of-week", with `*`,
 * lists (1,15), ranges (1-5), steps (a star or range, a slash, a step: every 15 minutes) and names
 * (JAN..DEC, SUN..SAT). As in Vixie cron, when both day fields are restricted a day matches if
 * either matches.
 */
#ifndef ES_CORE_CRON_H
#define ES_CORE_CRON_H

#include <stdint.h>
#include <time.h>

#include "core/err.h"

struct es_cron {
    uint64_t minute; /* bit n = minute n */
    uint32_t hour;
    uint32_t dom;   /* bit 1..31 */
    uint16_t month; /* bit 1..12 */
    uint8_t dow;    /* bit 0..6, Sunday = 0 (7 accepted as Sunday) */
    int dom_star, dow_star;
};

/* Parses expr. On error returns ES_EINVAL with a message in err and *bad_at set to the byte
 * offset of the offending field. */
ES_NODISCARD int es_cron_parse(const char *expr, struct es_cron *out, int *bad_at,
                               struct es_err *err);
/* The first matching minute strictly after `after` (epoch seconds), in time zone tz (an
 * IANA name such as "Europe/Berlin"; NULL or "" = UTC). Returns -1 if none within 5 years. */
time_t es_cron_next(const struct es_cron *c, time_t after, const char *tz);

#endif
