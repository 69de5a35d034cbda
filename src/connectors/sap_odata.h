/* SPDX-License-Identifier: MIT */
/*
 * The sap_odata connector's pure parts, exposed for unit tests: EDMX ($metadata) parsing,
 * OData v2 JSON dates, key literals and SAP Gateway error bodies.
 *
 * Watermarks:
 *   "<LastChangeDateTime as 2024-05-01T10:00:00.000Z>|<key>"  for entities with that field;
 *   "fp:<offset>"  for entities without: a full snapshot read in pages, each record's version
 *                  is a fingerprint (hash) of its content, so unchanged records repeat their
 *                  version and the engine skips them; after the last page the offset wraps to 0.
 */
#ifndef ES_CONNECTORS_SAP_ODATA_H
#define ES_CONNECTORS_SAP_ODATA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "connectors/http.h"
#include "core/buf.h"
#include "core/err.h"

/* Parses an EDMX document into
 *   {"Set": {"type": "A_SalesOrderType", "keys": ["SalesOrder"], "creatable": bool,
 *            "updatable": bool, "deletable": bool, "etag": "LastChangeDateTime" | null,
 *            "has_lastchange": bool, "navs": ["to_Item"],
 *            "fields": [{"name","type","length","required","nillable","createable",
 *                        "updateable","external_id","picklist":[]}]}}
 * keyed by entity set name. A document that is not EDMX, or a truncated one, is ES_EPROTOCOL.
 * OUT: *out, json_decref(). */
ES_NODISCARD int es_sap_edmx_parse(const char *xml, size_t len, json_t **out, struct es_err *err);
/* Parses "/Date(1714608000000)/" or "/Date(1714608000000+0060)/" (and ISO 8601 text) into
 * epoch milliseconds (UTC). */
ES_NODISCARD int es_sap_parse_date(const char *s, int64_t *ms);
/* Appends the key predicate for key: "'1000042'" (quotes doubled) or, when key already reads
 * like "A='1',B='2'", that text as given. */
int es_sap_key_literal(struct es_buf *b, const char *key);
/* Reads an SAP Gateway error body (JSON or XML) into code / message (the message joined with
 * the first distinct errordetails message). Returns 1 when one was found. */
int es_sap_error_parse(const char *body, size_t len, char *code, size_t code_cap, char *msg,
                       size_t msg_cap);
/* One part of a multipart body (borrowed pointers into it). */
struct es_sap_part {
    const char *head, *body;
    size_t head_len, body_len;
};
/* Splits a multipart body by "--boundary" lines into at most max parts. Returns the number
 * of parts, or -1 when the closing delimiter is missing (cut short) or there are more. */
int es_sap_multipart_split(const char *p, size_t len, const char *boundary,
                           struct es_sap_part *parts, size_t max);
/* Parses an embedded HTTP response ("HTTP/1.1 201 Created", headers, body; a $batch part)
 * into r (status, content_type, hdrs, body; r initialised by the caller). ES_EPROTOCOL when
 * it is not one or shorter than its Content-Length. */
ES_NODISCARD int es_sap_http_message(const char *p, size_t len, struct es_http_resp *r);

/* FNV-1a 64-bit fingerprint of a record (object keys sorted, __metadata and __deferred
 * navigation stubs ignored) as 16 hex digits into out[17]. */
void es_sap_fingerprint(json_t *record, char out[17]);

#endif
