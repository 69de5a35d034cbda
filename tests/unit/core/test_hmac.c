/* SPDX-License-Identifier: MIT */
/*
 * core/hmac: HMAC-SHA256 against the RFC 4231 test vectors (cases 1-7: short and empty-ish
 * keys, binary keys and data, a truncated MAC, keys longer than the SHA-256 block), the hex
 * form, the empty key and message, and hex encoding/decoding of every byte value with their
 * refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/hmac.h"

struct vector {
    unsigned char key[131];
    size_t keylen;
    unsigned char data[160];
    size_t datalen;
    const char *mac; /* hex; case 5 gives only the first 128 bits */
};

/* Fills n bytes of b with c. */
static size_t fill(unsigned char *b, unsigned char c, size_t n)
{
    memset(b, c, n);
    return n;
}

static size_t text(unsigned char *b, const char *s)
{
    memcpy(b, s, strlen(s));
    return strlen(s);
}

static void rfc4231(int id, struct vector *v)
{
    memset(v, 0, sizeof *v);
    switch (id) {
    case 1:
        v->keylen = fill(v->key, 0x0b, 20);
        v->datalen = text(v->data, "Hi There");
        v->mac = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
        break;
    case 2:
        v->keylen = text(v->key, "Jefe");
        v->datalen = text(v->data, "what do ya want for nothing?");
        v->mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        break;
    case 3:
        v->keylen = fill(v->key, 0xaa, 20);
        v->datalen = fill(v->data, 0xdd, 50);
        v->mac = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";
        break;
    case 4:
        for (int i = 0; i < 25; i++) {
            v->key[i] = (unsigned char)(i + 1);
        }
        v->keylen = 25;
        v->datalen = fill(v->data, 0xcd, 50);
        v->mac = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";
        break;
    case 5:
        v->keylen = fill(v->key, 0x0c, 20);
        v->datalen = text(v->data, "Test With Truncation");
        v->mac = "a3b6167473100ee06e0c796c2955552b";
        break;
    case 6:
        v->keylen = fill(v->key, 0xaa, 131);
        v->datalen = text(v->data, "Test Using Larger Than Block-Size Key - Hash Key First");
        v->mac = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
        break;
    default:
        v->keylen = fill(v->key, 0xaa, 131);
        v->datalen = text(v->data, "This is a test using a larger than block-size key and a "
                                   "larger than block-size data. The key needs to be hashed "
                                   "before being used by the HMAC algorithm.");
        v->mac = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
        break;
    }
}

static void test_rfc4231_vectors(void **state)
{
    (void)state;
    for (int id = 1; id <= 7; id++) {
        struct vector v;
        rfc4231(id, &v);
        struct es_err err;
        es_err_clear(&err);
        char hex[ES_HMAC_SHA256_HEX_LEN];
        assert_int_equal(es_hmac_sha256_hex(v.key, v.keylen, v.data, v.datalen, hex, &err), ES_OK);
        assert_int_equal(strlen(hex), 64);
        size_t n = strlen(v.mac);
        if (strncmp(hex, v.mac, n) != 0) {
            print_error("RFC 4231 case %d: got %s, want %s\n", id, hex, v.mac);
        }
        assert_memory_equal(hex, v.mac, n);

        /* The raw MAC is the same bytes as the hex form. */
        unsigned char mac[ES_HMAC_SHA256_LEN], want[ES_HMAC_SHA256_LEN];
        assert_int_equal(es_hmac_sha256(v.key, v.keylen, v.data, v.datalen, mac, &err), ES_OK);
        assert_int_equal(es_hex_decode(v.mac, n / 2, want), ES_OK);
        assert_memory_equal(mac, want, n / 2);
        assert_int_equal(err.code, ES_OK);
    }
}

static void test_empty_key_and_message(void **state)
{
    (void)state;
    char a[ES_HMAC_SHA256_HEX_LEN], b[ES_HMAC_SHA256_HEX_LEN];
    /* NULL with length 0 is the empty key / message, the same as "" */
    assert_int_equal(es_hmac_sha256_hex(NULL, 0, NULL, 0, a, NULL), ES_OK);
    assert_int_equal(es_hmac_sha256_hex("", 0, "", 0, b, NULL), ES_OK);
    assert_string_equal(a, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    assert_string_equal(a, b);
    /* One changed byte of key or message changes the MAC. */
    assert_int_equal(es_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing!", 28, a, NULL),
                     ES_OK);
    assert_string_not_equal(a, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_int_equal(es_hmac_sha256_hex("Jefd", 4, "what do ya want for nothing?", 28, b, NULL),
                     ES_OK);
    assert_string_not_equal(b, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_hex_round_trip(void **state)
{
    (void)state;
    unsigned char all[256], back[256];
    char hex[2 * 256 + 1];
    for (int i = 0; i < 256; i++) {
        all[i] = (unsigned char)i;
    }
    es_hex_encode(all, sizeof all, hex);
    assert_int_equal(strlen(hex), 512);
    assert_memory_equal(hex, "000102", 6);
    assert_string_equal(hex + 500, "fafbfcfdfeff");
    assert_int_equal(es_hex_decode(hex, sizeof back, back), ES_OK);
    assert_memory_equal(all, back, sizeof all);

    /* Upper case reads the same; an empty input writes nothing. */
    unsigned char two[2];
    assert_int_equal(es_hex_decode("aBCd", 2, two), ES_OK);
    assert_int_equal(two[0], 0xab);
    assert_int_equal(two[1], 0xcd);
    es_hex_encode(two, 0, hex);
    assert_string_equal(hex, "");
    assert_int_equal(es_hex_decode("", 0, two), ES_OK);
}

static void test_hex_refusals(void **state)
{
    (void)state;
    unsigned char out[4];
    assert_int_equal(es_hex_decode("0g", 1, out), ES_EINVAL);
    assert_int_equal(es_hex_decode("g0", 1, out), ES_EINVAL);
    assert_int_equal(es_hex_decode("00 1", 2, out), ES_EINVAL);
    assert_int_equal(es_hex_decode("0", 1, out), ES_EINVAL); /* the NUL is not a digit */
    assert_int_equal(es_hex_decode("\xc3\xa4", 1, out), ES_EINVAL);
    assert_int_equal(es_hex_digit('f'), 15);
    assert_int_equal(es_hex_digit('F'), 15);
    assert_int_equal(es_hex_digit('9'), 9);
    assert_int_equal(es_hex_digit('G'), -1);
    assert_int_equal(es_hex_digit('/'), -1);
    assert_int_equal(es_hex_digit(0xc3), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231_vectors),
        cmocka_unit_test(test_empty_key_and_message),
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_hex_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
