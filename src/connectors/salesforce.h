/* SPDX-License-Identifier: MIT */
/*
 * The salesforce connector's pure parts, exposed for unit tests: error-code classification,
 * timestamps, the (SystemModstamp, Id) watermark and the SOQL text of a change query.
 *
 * Watermark format: "<SystemModstamp as 2024-05-01T10:00:00.000Z>|<Id>" ("" Id = every record
 * at that instant). A watermark never skips: the next query asks for
 *   SystemModstamp > ts OR (SystemModstamp = ts AND Id > id)  ORDER BY SystemModstamp, Id.
 */
#ifndef ES_CONNECTORS_SALESFORCE_H
#define ES_CONNECTORS_SALESFORCE_H

#include <stddef.h>
#include <stdint.h>

#include "connectors/connector.h"
#include "core/buf.h"
#include "core/err.h"

/* The erpsync code for a Salesforce errorCode/statusCode ("DUPLICATES_DETECTED", ...). */
enum es_code es_sf_classify(const char *sf_code);
/* Parses a Salesforce datetime ("2024-05-01T10:00:00.000+0000", "...Z", "...+02:00") into
 * epoch milliseconds. Returns ES_OK or ES_EINVAL. */
ES_NODISCARD int es_sf_parse_ts(const char *s, int64_t *ms);
/* Splits a watermark into ts (epoch ms) and id (copied into id[cap]). NULL/"" = start. */
ES_NODISCARD int es_sf_watermark_parse(const char *wm, int64_t *ts, char *id, size_t cap);
/* Appends the change query: SELECT fields FROM object WHERE <after ts,id> ORDER BY
 * SystemModstamp, Id LIMIT limit. ts < 0 means from the start. id must be a Salesforce id
 * (checked: [A-Za-z0-9], at most 18). */
ES_NODISCARD int es_sf_soql_changes(struct es_buf *b, const char *fields, const char *object,
                                    int64_t ts, const char *id, size_t limit, struct es_err *err);
/* Parses "api-usage=18/5000[; ...]" into used/max; returns 0 when the header has none. */
int es_sf_limit_info(const char *hdr, long *used, long *max);

/* Internal: the instance state shared by salesforce.c and salesforce_bulk.c. */
struct es_http;
struct es_sf_ctx {
    struct es_conn *c;
    struct es_http *http;
    char ver[16]; /* "60.0" */
    long long bulk_threshold;
    long long query_batch;
    int64_t overlap_ms;
    int include_deleted;
    int64_t bulk_timeout_ms;
    int64_t bulk_poll_ms;
    json_t *describes; /* object -> describe answer (cached per instance) */
};

/* Internal (salesforce_bulk.c): write_batch through a Bulk API 2.0 ingest job; same contract
 * as write_batch. Waits for the job (polling every options.bulk_poll, at most
 * options.bulk_timeout): the job is the protocol handshake this call needs to complete. */
int es__sf_bulk_write(struct es_conn *c, const char *object, enum es_write_op op,
                      const char *external_id, const struct es_write *in, size_t n,
                      struct es_write_result *results, struct es_err *err);
/* Internal: one JSON call on the salesforce instance (Sforce-Limit-Info noted). */
int es__sf_call(struct es_conn *c, const char *method, const char *url, json_t *body,
                const char *const *headers, json_t **out, long *status, struct es_err *err);

/* Appends one CSV field (RFC 4180: quoted when it holds a comma, quote or line break). */
int es_sf_csv_field(struct es_buf *b, const char *s, size_t n);
/* Parses one CSV record starting at *p (before end) into fields (each es_free()d by the
 * caller through es_sf_csv_free). Returns the field count, 0 at the end, -1 when malformed. */
int es_sf_csv_record(const char **p, const char *end, char ***fields);
void es_sf_csv_free(char **fields, int n);
#endif
