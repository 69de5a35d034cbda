/* SPDX-License-Identifier: MIT */
/*
 * HMAC-SHA256 and hex text (hmac.h). The MAC is libcrypto's one-shot HMAC(); nothing here is
 * hand-written cryptography. One implementation for the server's webhook signatures and the
 * sandbox emulators, so both sides of a signed request always agree.
 */
#include "core/hmac.h"

#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

int es_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                   unsigned char out[ES_HMAC_SHA256_LEN], struct es_err *err)
{
    /* libcrypto wants a non-NULL data pointer even for an empty message. */
    static const unsigned char empty[1] = {0};
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (keylen > INT_MAX ||
        !HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen,
              len ? (const unsigned char *)msg : empty, len, mac, &maclen) ||
        maclen != ES_HMAC_SHA256_LEN) {
        memset(out, 0, ES_HMAC_SHA256_LEN);
        return es_err_set(err, ES_EINTERNAL, "HMAC-SHA256 failed");
    }
    memcpy(out, mac, ES_HMAC_SHA256_LEN);
    return ES_OK;
}

int es_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t len,
                       char out[ES_HMAC_SHA256_HEX_LEN], struct es_err *err)
{
    unsigned char mac[ES_HMAC_SHA256_LEN];
    int rc = es_hmac_sha256(key, keylen, msg, len, mac, err);
    if (rc != ES_OK) {
        out[0] = '\0';
        return rc;
    }
    es_hex_encode(mac, sizeof mac, out);
    return ES_OK;
}

void es_hex_encode(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int es_hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int es_hex_decode(const char *s, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = es_hex_digit((unsigned char)s[2 * i]);
        int lo = hi < 0 ? -1 : es_hex_digit((unsigned char)s[2 * i + 1]);
        if (lo < 0) {
            return ES_EINVAL;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return ES_OK;
}
