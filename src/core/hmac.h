/* SPDX-License-Identifier: MIT */
/*
 * HMAC-SHA256 (RFC 2104 with SHA-256, through libcrypto) and hex text, for every part that
 * signs or checks a body: the webhook endpoints of the server, the sandbox emulators'
 * notifications and token signatures.
 *
 * Invariants: a MAC is always ES_HMAC_SHA256_LEN bytes; its hex form is lowercase, exactly
 * 2 * ES_HMAC_SHA256_LEN digits plus a NUL. Keys and messages may be empty (NULL with length
 * 0 is accepted). Every function here is thread-safe and keeps no state.
 */
#ifndef ES_CORE_HMAC_H
#define ES_CORE_HMAC_H

#include <stddef.h>

#include "core/err.h"

#define ES_HMAC_SHA256_LEN     32
#define ES_HMAC_SHA256_HEX_LEN (2 * ES_HMAC_SHA256_LEN + 1)

/**
 * Computes the HMAC-SHA256 of msg[0..len) with key[0..keylen) into out.
 * Returns ES_OK, or ES_EINTERNAL when libcrypto fails (it does only when it runs out of
 * memory); then out is zeroed and err says so.
 */
ES_NODISCARD int es_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                                unsigned char out[ES_HMAC_SHA256_LEN], struct es_err *err);

/**
 * es_hmac_sha256() written as 64 lowercase hex digits and a NUL into out.
 * Returns ES_OK or ES_EINTERNAL (then out is "").
 */
ES_NODISCARD int es_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t len,
                                    char out[ES_HMAC_SHA256_HEX_LEN], struct es_err *err);

/** Writes p[0..n) as 2 * n lowercase hex digits and a NUL into out (room for 2 * n + 1). */
void es_hex_encode(const unsigned char *p, size_t n, char *out);

/**
 * Reads exactly 2 * n hex digits (either case) from s into out[0..n); s needs no NUL after
 * them. Returns ES_OK, or ES_EINVAL at the first character that is not a hex digit (out is
 * then partly written).
 */
ES_NODISCARD int es_hex_decode(const char *s, size_t n, unsigned char *out);

/** The value of one hex digit (either case), or -1. */
int es_hex_digit(int c);

#endif
