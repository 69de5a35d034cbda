/* SPDX-License-Identifier: MIT */
/*
 * Webhook payload checks that need no server (webhook.h): the HMAC-SHA256 signature (the MAC
 * itself and the hex text from core/hmac.h), the
 * generic JSON record shape and the SOAP shape of Salesforce Outbound Messages, with a small
 * reader for Outbound Messages used when the system's connector has no parse_webhook.
 *
 * The Outbound Message reader is deliberately narrow: it looks for elements by local name
 * (any namespace prefix), reads the sObject's direct children as text, and refuses anything
 * it does not understand rather than guessing.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/hmac.h"
#include "core/mem.h"
#include "server/webhook.h"

const char es_webhook_outbound_ack[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
    "<soapenv:Body><notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">"
    "<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>";

void es_webhook_sign(const char *key, size_t keylen, const char *body, size_t len, char out[65])
{
    if (es_hmac_sha256_hex(key, keylen, body, len, out, NULL) != ES_OK) {
        out[0] = '\0'; /* libcrypto out of memory: a signature that matches nothing */
    }
}

/* Parses the header value into 32 bytes. */
static int parse_sig(const char *sig, unsigned char given[SHA256_DIGEST_LENGTH], struct es_err *err)
{
    if (!sig || !*sig) {
        return es_err_set(err, ES_EAUTH, "missing signature header");
    }
    if (strncmp(sig, "sha256=", 7) == 0) {
        sig += 7;
    }
    if (strlen(sig) != 2 * SHA256_DIGEST_LENGTH) {
        return es_err_set(err, ES_EAUTH, "signature is not 64 hex digits");
    }
    if (es_hex_decode(sig, SHA256_DIGEST_LENGTH, given) != ES_OK) {
        return es_err_set(err, ES_EAUTH, "signature is not 64 hex digits");
    }
    return ES_OK;
}

static int compare(const unsigned char *mac, size_t maclen,
                   const unsigned char given[SHA256_DIGEST_LENGTH], struct es_err *err)
{
    if (maclen != SHA256_DIGEST_LENGTH) {
        return es_err_set(err, ES_EINTERNAL, "HMAC-SHA256 failed");
    }
    if (CRYPTO_memcmp(mac, given, SHA256_DIGEST_LENGTH) != 0) {
        return es_err_set(err, ES_EAUTH, "signature does not match the body");
    }
    return ES_OK;
}

int es_webhook_verify(const char *key, size_t keylen, const char *body, size_t len, const char *sig,
                      struct es_err *err)
{
    unsigned char given[SHA256_DIGEST_LENGTH];
    int rc = parse_sig(sig, given, err);
    if (rc != ES_OK) {
        return rc;
    }
    unsigned char mac[ES_HMAC_SHA256_LEN];
    rc = es_hmac_sha256(key, keylen, body, len, mac, err);
    if (rc != ES_OK) {
        return rc;
    }
    return compare(mac, sizeof mac, given, err);
}

/* A keyed HMAC-SHA256 context, set up once; each request works on a copy of it. */
struct es_webhook_key {
    EVP_MAC *mac;
    EVP_MAC_CTX *tpl;
};

struct es_webhook_key *es_webhook_key_new(const char *key, size_t keylen)
{
    struct es_webhook_key *k = es_xcalloc(1, sizeof *k);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    k->tpl = k->mac ? EVP_MAC_CTX_new(k->mac) : NULL;
    if (!k->tpl || !EVP_MAC_init(k->tpl, (const unsigned char *)key, keylen, params)) {
        es_webhook_key_free(k);
        return NULL;
    }
    return k;
}

void es_webhook_key_free(struct es_webhook_key *k)
{
    if (k) {
        EVP_MAC_CTX_free(k->tpl);
        EVP_MAC_free(k->mac);
        es_free(k);
    }
}

int es_webhook_key_verify(const struct es_webhook_key *k, const char *body, size_t len,
                          const char *sig, struct es_err *err)
{
    unsigned char given[SHA256_DIGEST_LENGTH];
    int rc = parse_sig(sig, given, err);
    if (rc != ES_OK) {
        return rc;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(k->tpl);
    if (!c || !EVP_MAC_update(c, (const unsigned char *)(body ? body : ""), len) ||
        !EVP_MAC_final(c, mac, &maclen, sizeof mac)) {
        maclen = 0;
    }
    EVP_MAC_CTX_free(c);
    return compare(mac, maclen, given, err);
}

/* An id or version as text: strings as they are, integers in decimal. */
static int scalar_text(json_t *v, char *buf, size_t cap, const char **out)
{
    if (json_is_string(v) && json_string_length(v) > 0) {
        *out = json_string_value(v);
        return 1;
    }
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = buf;
        return 1;
    }
    return 0;
}

/* Version by content when the sender gives none: SHA-256 of the canonical JSON, 32 hex. */
static void content_version(json_t *data, int deleted, char out[33])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char *text = data ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    /* Fails only when OpenSSL runs out of memory: abort like es_xmalloc (a crash replays). */
    int ok = mc && EVP_DigestInit_ex(mc, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(mc, deleted ? "D" : "U", 1) &&
             (!text || EVP_DigestUpdate(mc, text, strlen(text))) &&
             EVP_DigestFinal_ex(mc, md, NULL);
    EVP_MD_CTX_free(mc);
    ES_ASSERT(ok);
    es_free(text);
    es_hex_encode(md, 16, out);
}

static int one_record(json_t *r, size_t i, struct es_batch *out, struct es_err *err)
{
    if (!json_is_object(r)) {
        return es_err_set(err, ES_EPOISON, "records[%zu] is not an object", i);
    }
    char idbuf[32], verbuf[33];
    const char *id = NULL, *version = NULL;
    if (!scalar_text(json_object_get(r, "id"), idbuf, sizeof idbuf, &id)) {
        return es_err_set(err, ES_EPOISON,
                          "records[%zu]: \"id\" must be a non-empty string or "
                          "an integer",
                          i);
    }
    json_t *del = json_object_get(r, "deleted");
    if (del && !json_is_boolean(del)) {
        return es_err_set(err, ES_EPOISON, "records[%zu]: \"deleted\" must be true or false", i);
    }
    int deleted = json_is_true(del);
    json_t *data = json_object_get(r, "data");
    if (json_is_null(data)) {
        data = NULL;
    }
    if (data ? !json_is_object(data) : !deleted) {
        return es_err_set(err, ES_EPOISON, "records[%zu]: \"data\" must be an object", i);
    }
    json_t *ver = json_object_get(r, "version");
    if (ver && !scalar_text(ver, verbuf, sizeof verbuf, &version)) {
        return es_err_set(err, ES_EPOISON,
                          "records[%zu]: \"version\" must be a non-empty string or an integer", i);
    }
    if (!version) {
        content_version(data, deleted, verbuf);
        version = verbuf;
    }
    es_batch_add(out, id, version, deleted, data ? json_incref(data) : NULL);
    return ES_OK;
}

int es_webhook_parse_json(const char *body, size_t len, struct es_batch *out, struct es_err *err)
{
    return es_webhook_parse_json_object(body, len, out, NULL, 0, err);
}

int es_webhook_parse_json_object(const char *body, size_t len, struct es_batch *out, char *object,
                                 size_t cap, struct es_err *err)
{
    if (object && cap) {
        object[0] = '\0';
    }
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        return es_err_set(err, ES_EPOISON, "body is not JSON: %s at line %d column %d", jerr.text,
                          jerr.line, jerr.column);
    }
    int rc = ES_OK;
    size_t before = out->count;
    json_t *records = json_is_object(root) ? json_object_get(root, "records") : NULL;
    json_t *obj = records ? json_object_get(root, "object") : NULL;
    if (obj &&
        (!json_is_string(obj) || json_string_length(obj) == 0 || json_string_length(obj) >= 64)) {
        rc = es_err_set(err, ES_EPOISON, "\"object\" must be an object name (1..63 characters)");
        goto done;
    }
    if (obj && object && cap) {
        es_strlcpy(object, json_string_value(obj), cap);
    }
    if (records) {
        if (!json_is_array(records) || json_array_size(records) == 0) {
            rc = es_err_set(err, ES_EPOISON, "\"records\" must be a non-empty array");
            goto done;
        }
        size_t i;
        json_t *r;
        json_array_foreach(records, i, r)
        {
            rc = one_record(r, i, out, err);
            if (rc != ES_OK) {
                goto done;
            }
        }
    } else if (json_is_object(root)) {
        rc = one_record(root, 0, out, err);
    } else {
        rc = es_err_set(err, ES_EPOISON, "body must be a JSON object");
    }
done:
    if (rc != ES_OK) {
        /* Leave out as it was: drop what this body added. */
        while (out->count > before) {
            struct es_record *rec = &out->items[--out->count];
            es_free(rec->key);
            es_free(rec->version);
            json_decref(rec->data);
        }
    }
    json_decref(root);
    return rc;
}

/* ---- The fast path: a strict scan of the generic JSON shape, without a JSON tree ---------- */

/* Limits of the fast path (beyond them jansson decides). */
#define SCAN_DEPTH 32
#define SCAN_KEYS  256

struct scan {
    const unsigned char *p, *end;
    const unsigned char *key[SCAN_KEYS]; /* member names of the open objects, for duplicates */
    size_t keylen[SCAN_KEYS];
    size_t nkeys;
};

static void scan_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) {
        s->p++;
    }
}

/* One UTF-8 sequence starting at s->p (a byte >= 0x80): well-formed, shortest form, no
 * surrogates, at most U+10FFFF. */
static int scan_utf8(struct scan *s)
{
    const unsigned char *p = s->p;
    size_t left = (size_t)(s->end - p);
    unsigned c = p[0];
    if (c >= 0xC2 && c <= 0xDF) {
        if (left < 2 || (p[1] & 0xC0) != 0x80) {
            return 0;
        }
        s->p += 2;
        return 1;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)) {
            return 0;
        }
        s->p += 3;
        return 1;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80 ||
            (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)) {
            return 0;
        }
        s->p += 4;
        return 1;
    }
    return 0;
}

/* A string at s->p ('"'); *plain = no escapes. Escapes jansson might refuse or turn into a
 * NUL (\u0000, surrogates) end the fast path. */
static int scan_string(struct scan *s, int *plain)
{
    s->p++;
    *plain = 1;
    while (s->p < s->end) {
        unsigned c = *s->p;
        if (c == '"') {
            s->p++;
            return 1;
        }
        if (c < 0x20) {
            return 0;
        }
        if (c >= 0x80) {
            if (!scan_utf8(s)) {
                return 0;
            }
            continue;
        }
        if (c == '\\') {
            *plain = 0;
            if (s->end - s->p < 2) {
                return 0;
            }
            c = s->p[1];
            if (c == 'u') {
                if (s->end - s->p < 6) {
                    return 0;
                }
                unsigned v = 0;
                for (int i = 2; i < 6; i++) {
                    int h = es_hex_digit(s->p[i]);
                    if (h < 0) {
                        return 0;
                    }
                    v = v << 4 | (unsigned)h;
                }
                if (v == 0 || (v >= 0xD800 && v <= 0xDFFF)) {
                    return 0;
                }
                s->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", (int)c) || c == '\0') {
                return 0;
            }
            s->p += 2;
            continue;
        }
        s->p++;
    }
    return 0;
}

/* A number: the JSON grammar, and only forms jansson reads without overflow (no exponent, at
 * most 15 digits). */
static int scan_number(struct scan *s)
{
    const unsigned char *p = s->p;
    size_t digits = 0;
    if (p < s->end && *p == '-') {
        p++;
    }
    if (p >= s->end || *p < '0' || *p > '9') {
        return 0;
    }
    if (*p == '0') {
        p++;
        digits++;
    } else {
        while (p < s->end && *p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    }
    if (p < s->end && *p == '.') {
        p++;
        const unsigned char *f = p;
        while (p < s->end && *p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
        if (p == f) {
            return 0;
        }
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        return 0;
    }
    if (digits > 15) {
        return 0;
    }
    s->p = p;
    return 1;
}

static int scan_value(struct scan *s, int depth);

static int scan_object(struct scan *s, int depth)
{
    size_t first = s->nkeys;
    s->p++;
    scan_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 1;
    }
    for (;;) {
        if (s->p >= s->end || *s->p != '"') {
            return 0;
        }
        const unsigned char *k = s->p + 1;
        int plain;
        if (!scan_string(s, &plain) || !plain || s->nkeys == SCAN_KEYS) {
            return 0;
        }
        size_t klen = (size_t)(s->p - 1 - k);
        for (size_t i = first; i < s->nkeys; i++) {
            if (s->keylen[i] == klen && memcmp(s->key[i], k, klen) == 0) {
                return 0; /* duplicate member: jansson refuses it */
            }
        }
        s->key[s->nkeys] = k;
        s->keylen[s->nkeys++] = klen;
        scan_ws(s);
        if (s->p >= s->end || *s->p != ':') {
            return 0;
        }
        s->p++;
        scan_ws(s);
        if (!scan_value(s, depth + 1)) {
            return 0;
        }
        scan_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            scan_ws(s);
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            s->nkeys = first;
            return 1;
        }
        return 0;
    }
}

static int scan_array(struct scan *s, int depth)
{
    s->p++;
    scan_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 1;
    }
    for (;;) {
        if (!scan_value(s, depth + 1)) {
            return 0;
        }
        scan_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            scan_ws(s);
            continue;
        }
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return 1;
        }
        return 0;
    }
}

static int scan_literal(struct scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) {
        return 0;
    }
    s->p += n;
    return 1;
}

static int scan_value(struct scan *s, int depth)
{
    if (s->p >= s->end || depth > SCAN_DEPTH) {
        return 0;
    }
    int plain;
    switch (*s->p) {
    case '{':
        return scan_object(s, depth);
    case '[':
        return scan_array(s, depth);
    case '"':
        return scan_string(s, &plain);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        return scan_number(s);
    }
}

/* A value span in an already checked text. */
struct span {
    const unsigned char *v;
    size_t n;
};

/* The spans of the members named names[i] of the checked object at p ({v = NULL} when absent). */
static void members(const unsigned char *p, const unsigned char *end, const char *const *names,
                    size_t nn, struct span *out)
{
    memset(out, 0, nn * sizeof *out);
    struct scan s;
    s.p = p + 1;
    s.end = end;
    s.nkeys = 0;
    scan_ws(&s);
    while (s.p < s.end && *s.p == '"') {
        const unsigned char *k = s.p + 1;
        const unsigned char *q = memchr(k, '"', (size_t)(s.end - k)); /* names are plain */
        size_t klen = (size_t)(q - k);
        s.p = q + 1;
        scan_ws(&s);
        s.p++; /* ':' */
        scan_ws(&s);
        const unsigned char *v = s.p;
        (void)scan_value(&s, 0);
        for (size_t i = 0; i < nn; i++) {
            if (strlen(names[i]) == klen && memcmp(names[i], k, klen) == 0) {
                out[i].v = v;
                out[i].n = (size_t)(s.p - v);
            }
        }
        scan_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            scan_ws(&s);
        }
    }
}

/* A checked string value without escapes, non-empty: its bytes between the quotes. */
static int plain_string(const struct span *sp, const char **out, size_t *n)
{
    if (!sp->v || sp->n < 3 || sp->v[0] != '"' || memchr(sp->v, '\\', sp->n)) {
        return 0;
    }
    *out = (const char *)sp->v + 1;
    *n = sp->n - 2;
    return 1;
}

static int scan_record(const struct span *r, struct es_webhook_rec *rec)
{
    static const char *const names[] = {"id", "version", "deleted", "data"};
    struct span m[4];
    if (!r->v || r->v[0] != '{') {
        return 0;
    }
    members(r->v, r->v + r->n, names, 4, m);
    memset(rec, 0, sizeof *rec);
    if (!plain_string(&m[0], &rec->key, &rec->key_len) ||
        !plain_string(&m[1], &rec->version, &rec->version_len)) {
        return 0;
    }
    if (m[2].v) {
        if (m[2].n == 4 && memcmp(m[2].v, "true", 4) == 0) {
            rec->deleted = 1;
        } else if (!(m[2].n == 5 && memcmp(m[2].v, "false", 5) == 0)) {
            return 0;
        }
    }
    if (m[3].v && m[3].v[0] == '{') {
        rec->data = (const char *)m[3].v;
        rec->data_len = m[3].n;
    } else if (!rec->deleted || (m[3].v && !(m[3].n == 4 && memcmp(m[3].v, "null", 4) == 0))) {
        return 0;
    }
    return 1;
}

size_t es_webhook_scan_json(const char *body, size_t len, struct es_webhook_rec *out, size_t cap,
                            char *object, size_t ocap)
{
    if (object && ocap) {
        object[0] = '\0';
    }
    if (!body) {
        return 0;
    }
    /* 1. The whole body is JSON that jansson reads to the same values. */
    struct scan s;
    s.p = (const unsigned char *)body;
    s.end = s.p + len;
    s.nkeys = 0;
    scan_ws(&s);
    const unsigned char *root = s.p;
    if (root >= s.end || *root != '{' || !scan_value(&s, 0)) {
        return 0;
    }
    scan_ws(&s);
    if (s.p != s.end) {
        return 0;
    }
    /* 2. Its shape. */
    const unsigned char *end = (const unsigned char *)body + len;
    static const char *const top[] = {"records", "object"};
    struct span m[2];
    members(root, end, top, 2, m);
    struct es_webhook_rec rec;
    if (!m[0].v) {
        struct span all = {root, (size_t)(end - root)};
        if (!scan_record(&all, &rec)) {
            return 0;
        }
        if (cap) {
            out[0] = rec;
        }
        return 1;
    }
    const char *obj = NULL;
    size_t olen = 0;
    if ((m[1].v && (!plain_string(&m[1], &obj, &olen) || olen >= 64)) || m[0].v[0] != '[') {
        return 0;
    }
    size_t n = 0;
    struct scan a;
    a.p = m[0].v + 1;
    a.end = m[0].v + m[0].n;
    a.nkeys = 0;
    scan_ws(&a);
    while (a.p < a.end && *a.p != ']') {
        struct span r = {a.p, 0};
        (void)scan_value(&a, 0);
        r.n = (size_t)(a.p - r.v);
        if (!scan_record(&r, &rec)) {
            return 0;
        }
        if (n < cap) {
            out[n] = rec;
        }
        n++;
        scan_ws(&a);
        if (a.p < a.end && *a.p == ',') {
            a.p++;
            scan_ws(&a);
        }
    }
    if (n && obj && object && ocap) {
        size_t k = olen < ocap ? olen : ocap - 1;
        memcpy(object, obj, k);
        object[k] = '\0';
    }
    return n;
}

/* The string value after each occurrence of key (a JSON member name with its quotes, or an
 * XML attribute prefix) in body; 1 when every occurrence has the same value (copied into out
 * without any "prefix:" part), 0 when there is none or they differ. */
static int same_value(const char *body, size_t len, const char *key, char quote, char *out,
                      size_t cap)
{
    const char *p = body, *end = body + len;
    size_t klen = strlen(key);
    int found = 0;
    while (p < end) {
        const char *k = memmem(p, (size_t)(end - p), key, klen);
        if (!k) {
            break;
        }
        const char *v = k + klen;
        while (v < end && (*v == ' ' || *v == ':' || *v == '\t' || *v == '\n' || *v == '\r')) {
            v++;
        }
        if (v >= end || *v != quote) {
            p = k + klen;
            continue;
        }
        v++;
        const char *q = memchr(v, quote, (size_t)(end - v));
        if (!q || q == v || (size_t)(q - v) >= cap) {
            return 0;
        }
        const char *colon = memchr(v, ':', (size_t)(q - v));
        const char *name = colon ? colon + 1 : v;
        size_t n = (size_t)(q - name);
        if (n == 0 || n >= cap) {
            return 0;
        }
        if (found && (strlen(out) != n || memcmp(out, name, n) != 0)) {
            return 0;
        }
        memcpy(out, name, n);
        out[n] = '\0';
        found = 1;
        p = q + 1;
    }
    return found;
}

int es_webhook_object(int format, const char *body, size_t len, char *out, size_t cap)
{
    if (!body || cap == 0) {
        return 0;
    }
    out[0] = '\0';
    int ok = 0;
    if (format == ES_WEBHOOK_CDC) {
        ok = same_value(body, len, "\"entityName\"", '"', out, cap);
    } else if (format == ES_WEBHOOK_OUTBOUND_MESSAGE) {
        ok = same_value(body, len, "xsi:type=", '"', out, cap);
    }
    if (!ok) {
        out[0] = '\0';
    }
    return ok;
}

/* ---- Outbound Messages ------------------------------------------------------------------ */

struct elem {
    const char *start;   /* '<' of the start tag */
    const char *attrs;   /* after the name in the start tag */
    const char *content; /* after '>' of the start tag */
    const char *cend;    /* '<' of the end tag (== content for <x/>) */
    const char *end;     /* after the end tag */
    const char *lname;   /* local name (no prefix) */
    size_t lname_len;
    int empty; /* <x/> */
};

static int is_name_end(char c)
{
    return c == ' ' || c == '>' || c == '/' || c == '\t' || c == '\r' || c == '\n';
}

/* The local name of the tag starting at p (p points after '<' or '</'). */
static void tag_name(const char *p, const char *end, const char **lname, size_t *llen,
                     const char **after)
{
    const char *q = p;
    const char *local = p;
    while (q < end && !is_name_end(*q)) {
        if (*q == ':') {
            local = q + 1;
        }
        q++;
    }
    *lname = local;
    *llen = (size_t)(q - local);
    *after = q;
}

/* The next element (any name) starting in [p, end), skipping text, comments, PIs. */
static int next_elem(const char *p, const char *end, struct elem *e)
{
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || lt + 1 >= end) {
            return 0;
        }
        if (lt[1] == '?' || lt[1] == '!') { /* declaration, comment */
            const char *gt = memchr(lt, '>', (size_t)(end - lt));
            if (!gt) {
                return 0;
            }
            p = gt + 1;
            continue;
        }
        if (lt[1] == '/') { /* an end tag of the enclosing element: no more children */
            return 0;
        }
        e->start = lt;
        tag_name(lt + 1, end, &e->lname, &e->lname_len, &e->attrs);
        const char *gt = memchr(e->attrs, '>', (size_t)(end - e->attrs));
        if (!gt || e->lname_len == 0) {
            return 0;
        }
        e->empty = gt[-1] == '/';
        e->content = gt + 1;
        if (e->empty) {
            e->cend = e->content;
            e->end = e->content;
            return 1;
        }
        /* Find the matching end tag, counting nested elements of the same local name. */
        int depth = 1;
        const char *q = e->content;
        while (q < end) {
            const char *l = memchr(q, '<', (size_t)(end - q));
            if (!l || l + 1 >= end) {
                return 0;
            }
            const char *nm, *aft;
            size_t nl;
            if (l[1] == '/') {
                tag_name(l + 2, end, &nm, &nl, &aft);
                if (nl == e->lname_len && memcmp(nm, e->lname, nl) == 0 && --depth == 0) {
                    const char *g = memchr(aft, '>', (size_t)(end - aft));
                    if (!g) {
                        return 0;
                    }
                    e->cend = l;
                    e->end = g + 1;
                    return 1;
                }
                q = l + 2;
                continue;
            }
            if (l[1] != '?' && l[1] != '!') {
                tag_name(l + 1, end, &nm, &nl, &aft);
                const char *g = memchr(aft, '>', (size_t)(end - aft));
                if (!g) {
                    return 0;
                }
                if (nl == e->lname_len && memcmp(nm, e->lname, nl) == 0 && g[-1] != '/') {
                    depth++;
                }
                q = g + 1;
                continue;
            }
            q = l + 1;
        }
        return 0;
    }
    return 0;
}

static int name_is(const struct elem *e, const char *name)
{
    return e->lname_len == strlen(name) && memcmp(e->lname, name, e->lname_len) == 0;
}

/* The first child of [p, end) named name. */
static int child(const char *p, const char *end, const char *name, struct elem *out)
{
    struct elem e;
    while (next_elem(p, end, &e)) {
        if (name_is(&e, name)) {
            *out = e;
            return 1;
        }
        p = e.end;
    }
    return 0;
}

/* Decodes XML text (the five entities and numeric references) into buf. */
static int xml_text(const char *p, const char *end, struct es_buf *buf)
{
    es_buf_reset(buf);
    while (p < end) {
        if (*p == '<') {
            return ES_EPOISON; /* mixed content: not a simple field */
        }
        if (*p != '&') {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *stop = amp ? amp : end;
            if (memchr(p, '<', (size_t)(stop - p))) {
                return ES_EPOISON;
            }
            es_buf_append(buf, p, (size_t)(stop - p));
            p = stop;
            continue;
        }
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi || semi - p > 10) {
            return ES_EPOISON;
        }
        size_t n = (size_t)(semi - p - 1);
        const char *ent = p + 1;
        unsigned long cp = 0;
        if (n == 3 && memcmp(ent, "amp", 3) == 0) {
            cp = '&';
        } else if (n == 2 && memcmp(ent, "lt", 2) == 0) {
            cp = '<';
        } else if (n == 2 && memcmp(ent, "gt", 2) == 0) {
            cp = '>';
        } else if (n == 4 && memcmp(ent, "quot", 4) == 0) {
            cp = '"';
        } else if (n == 4 && memcmp(ent, "apos", 4) == 0) {
            cp = '\'';
        } else if (n >= 2 && ent[0] == '#') {
            int hex = ent[1] == 'x' || ent[1] == 'X';
            for (size_t i = hex ? 2 : 1; i < n; i++) {
                int d = hex ? es_hex_digit(ent[i])
                            : (ent[i] >= '0' && ent[i] <= '9' ? ent[i] - '0' : -1);
                if (d < 0) {
                    return ES_EPOISON;
                }
                cp = cp * (hex ? 16 : 10) + (unsigned long)d;
            }
            if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                return ES_EPOISON;
            }
        } else {
            return ES_EPOISON;
        }
        char u[4];
        size_t ul;
        if (cp < 0x80) {
            u[0] = (char)cp;
            ul = 1;
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            ul = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | (cp >> 12));
            u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            ul = 3;
        } else {
            u[0] = (char)(0xF0 | (cp >> 18));
            u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            ul = 4;
        }
        es_buf_append(buf, u, ul);
        p = semi + 1;
    }
    return ES_OK;
}

/* Finds Envelope/Body/notifications and checks OrganizationId; sets [*np, *nend). */
static int notifications(const char *body, size_t len, const char **np, const char **nend,
                         struct es_err *err)
{
    const char *end = body + len;
    struct elem env, bod, nots, org;
    if (!body || !child(body, end, "Envelope", &env)) {
        return es_err_set(err, ES_EPOISON, "not a SOAP message: no Envelope element");
    }
    if (!child(env.content, env.cend, "Body", &bod)) {
        return es_err_set(err, ES_EPOISON, "SOAP Envelope has no Body");
    }
    if (!child(bod.content, bod.cend, "notifications", &nots)) {
        return es_err_set(err, ES_EPOISON, "SOAP Body has no notifications element");
    }
    if (!child(nots.content, nots.cend, "OrganizationId", &org) || org.cend == org.content) {
        return es_err_set(err, ES_EPOISON, "notifications has no OrganizationId");
    }
    *np = nots.content;
    *nend = nots.cend;
    return ES_OK;
}

/* Reads one Notification into out (when out != NULL). */
static int one_notification(const struct elem *n, size_t i, struct es_batch *out, struct es_buf *t,
                            struct es_err *err)
{
    struct elem nid, sobj, e;
    if (!child(n->content, n->cend, "Id", &nid) || nid.cend == nid.content) {
        return es_err_set(err, ES_EPOISON, "Notification %zu has no Id", i + 1);
    }
    if (!child(n->content, n->cend, "sObject", &sobj)) {
        return es_err_set(err, ES_EPOISON, "Notification %zu has no sObject", i + 1);
    }
    json_t *data = json_object();
    char *key = NULL;
    const char *p = sobj.content;
    int rc = ES_OK;
    while (next_elem(p, sobj.cend, &e)) {
        char name[128];
        if (e.lname_len >= sizeof name) {
            rc = es_err_set(err, ES_EPOISON, "Notification %zu: field name too long", i + 1);
            break;
        }
        memcpy(name, e.lname, e.lname_len);
        name[e.lname_len] = '\0';
        int nil = e.empty && memmem(e.attrs, (size_t)(e.content - e.attrs), "nil=\"true\"", 10);
        if (nil) {
            json_object_set_new(data, name, json_null());
        } else if (xml_text(e.content, e.cend, t) != ES_OK) {
            rc = es_err_set(err, ES_EPOISON, "Notification %zu: field %s is not plain text", i + 1,
                            name);
            break;
        } else {
            json_object_set_new(data, name, json_stringn(t->data ? t->data : "", t->len));
            if (strcmp(name, "Id") == 0 && t->len) {
                es_free(key);
                key = es_xstrndup(t->data, t->len);
            }
        }
        p = e.end;
    }
    if (rc == ES_OK && !key) {
        rc = es_err_set(err, ES_EPOISON, "Notification %zu: sObject has no Id", i + 1);
    }
    if (rc == ES_OK && out) {
        char *version = es_xstrndup(nid.content, (size_t)(nid.cend - nid.content));
        es_batch_add(out, key, version, 0, data);
        data = NULL;
        es_free(version);
    }
    json_decref(data);
    es_free(key);
    return rc;
}

static int read_outbound(const char *body, size_t len, struct es_batch *out, struct es_err *err)
{
    const char *p = NULL, *end = NULL;
    int rc = notifications(body, len, &p, &end, err);
    if (rc != ES_OK) {
        return rc;
    }
    struct es_buf t;
    es_buf_init(&t, 0);
    size_t n = 0, before = out ? out->count : 0;
    struct elem e;
    while (next_elem(p, end, &e)) {
        if (name_is(&e, "Notification")) {
            rc = one_notification(&e, n, out, &t, err);
            if (rc != ES_OK) {
                break;
            }
            n++;
        }
        p = e.end;
    }
    es_buf_release(&t);
    if (rc == ES_OK && n == 0) {
        rc = es_err_set(err, ES_EPOISON, "notifications has no Notification");
    }
    if (rc != ES_OK && out) {
        while (out->count > before) {
            struct es_record *rec = &out->items[--out->count];
            es_free(rec->key);
            es_free(rec->version);
            json_decref(rec->data);
        }
    }
    return rc;
}

int es_webhook_check_outbound(const char *body, size_t len, struct es_err *err)
{
    return read_outbound(body, len, NULL, err);
}

int es_webhook_parse_outbound(const char *body, size_t len, struct es_batch *out,
                              struct es_err *err)
{
    return read_outbound(body, len, out, err);
}
