/* SPDX-License-Identifier: MIT */
/*
 * The pieces of webhook handling that do not need a running server: signature check, the
 * generic JSON record shape and the Salesforce Outbound Message shape. Exposed for unit tests
 * and fuzzing; the server (webhooks.c) uses them per request.
 *
 * The generic JSON shape (format `json`, or any format whose connector has no parse_webhook):
 *   {"records": [{"id": "A1", "version": "7", "deleted": false, "data": {...}}, ...]}
 * or one such record object on its own. The records form may name the source object,
 * {"object": "Account", "records": [...]}, to reach only the flows reading that object. `id`
 * (string or integer) is required; `version` (string or integer) defaults to a SHA-256 of the
 * canonical data, so the same content sent twice is the same change; `deleted` defaults to false;
 * `data` must be an object unless deleted is true.
 */
#ifndef ES_SERVER_WEBHOOK_H
#define ES_SERVER_WEBHOOK_H

#include <stddef.h>

#include "connectors/connector.h"
#include "core/err.h"

/**
 * Checks that sig (the header value: hex HMAC-SHA256 of body, optionally prefixed "sha256=",
 * either case) matches key. Constant time in the signature bytes.
 * Returns ES_OK, or ES_EAUTH when sig is NULL, malformed or wrong (err says which).
 */
ES_NODISCARD int es_webhook_verify(const char *key, size_t keylen, const char *body, size_t len,
                                   const char *sig, struct es_err *err);
/** A key prepared once for many es_webhook_key_verify() calls (the server keeps one per
 *  webhook). Returns NULL when OpenSSL cannot set it up. Free with es_webhook_key_free(). */
struct es_webhook_key *es_webhook_key_new(const char *key, size_t keylen);
void es_webhook_key_free(struct es_webhook_key *k);
/** es_webhook_verify() with a prepared key; thread-safe (each call works on a copy). */
ES_NODISCARD int es_webhook_key_verify(const struct es_webhook_key *k, const char *body, size_t len,
                                       const char *sig, struct es_err *err);
/** Writes the lowercase hex HMAC-SHA256 of body into out (65 bytes with the NUL). */
void es_webhook_sign(const char *key, size_t keylen, const char *body, size_t len, char out[65]);

/**
 * Parses the generic JSON shape above and appends its records to out (initialised by the
 * caller). Returns ES_OK or ES_EPOISON (out unchanged) with err naming the first problem.
 */
ES_NODISCARD int es_webhook_parse_json(const char *body, size_t len, struct es_batch *out,
                                       struct es_err *err);

/** es_webhook_parse_json(), and the optional top-level "object" of the {"records": [...]}
 *  form copied into object[cap] ("" when absent). */
ES_NODISCARD int es_webhook_parse_json_object(const char *body, size_t len, struct es_batch *out,
                                              char *object, size_t cap, struct es_err *err);
/* One record of the generic JSON shape as spans into the body (es_webhook_scan_json). */
struct es_webhook_rec {
    const char *key, *version; /* the string values of "id" and "version", without quotes */
    size_t key_len, version_len;
    int deleted;
    const char *data; /* the "data" object's JSON text, or NULL (deleted without data) */
    size_t data_len;
};

/**
 * The fast reading of the generic JSON shape, for the webhook hot path: checks the body
 * strictly without building a JSON tree, fills out[0..cap) with its records (spans into body)
 * and object[ocap] with the records form's "object" ("" when absent).
 * Handles only the plain form: ids and versions as strings without escapes, a version on
 * every record, member names without escapes, plain numbers, moderate nesting. Returns the
 * number of records (> 0; when it is more than cap, only cap were written: call again with
 * room for all), or 0 for anything else, valid or not: then es_webhook_parse_json_object()
 * decides and words any refusal. Whatever this accepts, es_webhook_parse_json_object()
 * accepts with the same records (data as equal JSON).
 */
size_t es_webhook_scan_json(const char *body, size_t len, struct es_webhook_rec *out, size_t cap,
                            char *object, size_t ocap);

/**
 * The source object a webhook body is about, for routing it to the flows that read that
 * object: the CDC ChangeEventHeader entityName (format ES_WEBHOOK_CDC) or the sObject
 * xsi:type (ES_WEBHOOK_OUTBOUND_MESSAGE), without namespace prefix. Returns 1 and fills
 * out when the body names exactly one object, else 0 (out = ""): then every flow gets it.
 */
int es_webhook_object(int format, const char *body, size_t len, char *out, size_t cap);

/**
 * Checks the SOAP shape of a Salesforce Outbound Message (Envelope/Body/notifications with an
 * OrganizationId and at least one Notification carrying an sObject with an Id).
 * Returns ES_OK or ES_EPOISON.
 */
ES_NODISCARD int es_webhook_check_outbound(const char *body, size_t len, struct es_err *err);
/**
 * Turns an Outbound Message into records when the connector has no parse_webhook: one record
 * per Notification, key = the sObject's Id, version = its SystemModstamp (else LastModifiedDate,
 * else the notification Id), data = the sObject's fields as strings (xsi:nil fields as null).
 * Returns ES_OK or ES_EPOISON (out unchanged).
 */
ES_NODISCARD int es_webhook_parse_outbound(const char *body, size_t len, struct es_batch *out,
                                           struct es_err *err);
/** The SOAP acknowledgement Salesforce expects after an Outbound Message. */
extern const char es_webhook_outbound_ack[];

#endif
