/* SPDX-License-Identifier: MIT */
/*
 * Webhook payload checks without a server: HMAC-SHA256 signatures (RFC 4231 vector, prefix,
 * case, tampering), the generic JSON record shape (accepted forms, every refusal leaves the
 * batch untouched, content versions), and Salesforce Outbound Messages (shape, fields, nil,
 * entities, refusals).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/mem.h"
#include "server/webhook.h"

static const char rfc_key[] = "Jefe";
static const char rfc_data[] = "what do ya want for nothing?";
static const char rfc_mac[] = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

static void test_sign_rfc4231(void **state)
{
    (void)state;
    char out[65];
    es_webhook_sign(rfc_key, 4, rfc_data, strlen(rfc_data), out);
    assert_string_equal(out, rfc_mac);
}

static void test_verify(void **state)
{
    (void)state;
    struct es_err e;
    size_t n = strlen(rfc_data);
    es_err_clear(&e);
    assert_int_equal(es_webhook_verify(rfc_key, 4, rfc_data, n, rfc_mac, &e), ES_OK);
    char prefixed[80] = "sha256=";
    strcat(prefixed, rfc_mac); /* checksrc: ok */
    assert_int_equal(es_webhook_verify(rfc_key, 4, rfc_data, n, prefixed, &e), ES_OK);
    char upper[65];
    for (int i = 0; i < 65; i++) {
        upper[i] = (rfc_mac[i] >= 'a' && rfc_mac[i] <= 'f') ? (char)(rfc_mac[i] - 32) : rfc_mac[i];
    }
    assert_int_equal(es_webhook_verify(rfc_key, 4, rfc_data, n, upper, &e), ES_OK);

    es_err_clear(&e);
    assert_int_equal(es_webhook_verify(rfc_key, 4, rfc_data, n, NULL, &e), ES_EAUTH);
    assert_non_null(strstr(e.msg, "missing"));
    es_err_clear(&e);
    assert_int_equal(es_webhook_verify(rfc_key, 4, rfc_data, n, "abc", &e), ES_EAUTH);
    assert_non_null(strstr(e.msg, "hex"));
    char bad[65];
    memcpy(bad, rfc_mac, 65);
    bad[10] = bad[10] == '0' ? '1' : '0';
    es_err_clear(&e);
    assert_int_equal(es_webhook_verify(rfc_key, 4, rfc_data, n, bad, &e), ES_EAUTH);
    assert_non_null(strstr(e.msg, "does not match"));
    /* Same signature, one byte of body changed. */
    es_err_clear(&e);
    assert_int_equal(es_webhook_verify(rfc_key, 4, "what do ya want for nothing!", n, rfc_mac, &e),
                     ES_EAUTH);
    /* Wrong key. */
    es_err_clear(&e);
    assert_int_equal(es_webhook_verify("jefe", 4, rfc_data, n, rfc_mac, &e), ES_EAUTH);
}

static void test_prepared_key(void **state)
{
    (void)state;
    struct es_err e;
    size_t n = strlen(rfc_data);
    struct es_webhook_key *k = es_webhook_key_new(rfc_key, 4);
    assert_non_null(k);
    es_err_clear(&e);
    /* The same key serves many requests. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(es_webhook_key_verify(k, rfc_data, n, rfc_mac, &e), ES_OK);
    }
    assert_int_equal(es_webhook_key_verify(k, rfc_data, n - 1, rfc_mac, &e), ES_EAUTH);
    assert_non_null(strstr(e.msg, "does not match"));
    es_err_clear(&e);
    assert_int_equal(es_webhook_key_verify(k, rfc_data, n, NULL, &e), ES_EAUTH);
    assert_non_null(strstr(e.msg, "missing"));
    es_webhook_key_free(k);
    es_webhook_key_free(NULL);
}

static void test_json_records(void **state)
{
    (void)state;
    struct es_batch b;
    struct es_err e;
    es_batch_init(&b);
    es_err_clear(&e);
    const char *body =
        "{\"records\":[{\"id\":\"A1\",\"version\":\"7\",\"data\":{\"Name\":\"Acme\"}},"
        "{\"id\":42,\"version\":3,\"deleted\":true},"
        "{\"id\":\"A3\",\"data\":{\"Name\":\"NoVersion\"}}]}";
    assert_int_equal(es_webhook_parse_json(body, strlen(body), &b, &e), ES_OK);
    assert_int_equal(b.count, 3);
    assert_string_equal(b.items[0].key, "A1");
    assert_string_equal(b.items[0].version, "7");
    assert_int_equal(b.items[0].deleted, 0);
    assert_string_equal(json_string_value(json_object_get(b.items[0].data, "Name")), "Acme");
    assert_string_equal(b.items[1].key, "42");
    assert_string_equal(b.items[1].version, "3");
    assert_int_equal(b.items[1].deleted, 1);
    assert_null(b.items[1].data);
    assert_int_equal(strlen(b.items[2].version), 32);

    /* A single object; same content gives the same content version, other content another. */
    const char *one = "{\"id\":\"A3\",\"data\":{\"Name\":\"NoVersion\"}}";
    assert_int_equal(es_webhook_parse_json(one, strlen(one), &b, &e), ES_OK);
    assert_int_equal(b.count, 4);
    assert_string_equal(b.items[3].version, b.items[2].version);
    const char *other = "{\"id\":\"A3\",\"data\":{\"Name\":\"Changed\"}}";
    assert_int_equal(es_webhook_parse_json(other, strlen(other), &b, &e), ES_OK);
    assert_string_not_equal(b.items[4].version, b.items[2].version);
    es_batch_release(&b);
}

static void test_json_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *msg;
    } cases[] = {
        {"{\"records\":[{\"id\":\"A1\",\"data\":{}}", "not JSON"},
        {"[1,2]", "must be a JSON object"},
        {"{\"records\":[]}", "non-empty array"},
        {"{\"records\":{}}", "non-empty array"},
        {"{\"records\":[{\"id\":\"A1\",\"data\":{}},{\"data\":{}}]}", "records[1]: \"id\""},
        {"{\"records\":[{\"id\":\"\",\"data\":{}}]}", "\"id\""},
        {"{\"records\":[{\"id\":\"A1\",\"data\":[1]}]}", "\"data\" must be an object"},
        {"{\"records\":[{\"id\":\"A1\"}]}", "\"data\" must be an object"},
        {"{\"records\":[{\"id\":\"A1\",\"deleted\":1,\"data\":{}}]}", "\"deleted\""},
        {"{\"records\":[{\"id\":\"A1\",\"version\":1.5,\"data\":{}}]}", "\"version\""},
        {"{\"records\":[7]}", "records[0] is not an object"},
        {"{\"id\":\"A\",\"id\":\"B\",\"data\":{}}", "not JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct es_batch b;
        struct es_err e;
        es_batch_init(&b);
        es_err_clear(&e);
        assert_int_equal(es_webhook_parse_json(cases[i].body, strlen(cases[i].body), &b, &e),
                         ES_EPOISON);
        assert_int_equal(b.count, 0);
        if (!strstr(e.msg, cases[i].msg)) {
            fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].msg);
        }
        es_batch_release(&b);
    }
}

#define OM_HEAD                                                                                    \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                                 \
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "               \
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"                                   \
    " <soapenv:Body>\n"                                                                            \
    "  <notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\n"                        \
    "   <OrganizationId>00D000000000001</OrganizationId>\n"                                        \
    "   <ActionId>04k000000000001</ActionId>\n"                                                    \
    "   <SessionId xsi:nil=\"true\"/>\n"
#define OM_TAIL "  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n"

static void test_outbound(void **state)
{
    (void)state;
    const char *om =
        OM_HEAD "   <Notification>\n"
                "    <Id>04l000000000001</Id>\n"
                "    <sObject xsi:type=\"sf:Account\" "
                "xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\n"
                "     <sf:Id>001000000000001</sf:Id>\n"
                "     <sf:Name>M&amp;M &lt;GmbH&gt; &#x263A;</sf:Name>\n"
                "     <sf:Fax xsi:nil=\"true\"/>\n"
                "    </sObject>\n"
                "   </Notification>\n"
                "   <Notification><Id>04l000000000002</Id><sObject><sf:Id>001B</sf:Id></sObject>"
                "</Notification>\n" OM_TAIL;
    struct es_err e;
    es_err_clear(&e);
    assert_int_equal(es_webhook_check_outbound(om, strlen(om), &e), ES_OK);
    struct es_batch b;
    es_batch_init(&b);
    assert_int_equal(es_webhook_parse_outbound(om, strlen(om), &b, &e), ES_OK);
    assert_int_equal(b.count, 2);
    assert_string_equal(b.items[0].key, "001000000000001");
    assert_string_equal(b.items[0].version, "04l000000000001");
    assert_string_equal(json_string_value(json_object_get(b.items[0].data, "Name")),
                        "M&M <GmbH> \xE2\x98\xBA");
    assert_true(json_is_null(json_object_get(b.items[0].data, "Fax")));
    assert_string_equal(b.items[1].key, "001B");
    es_batch_release(&b);
}

static void test_object_routing(void **state)
{
    (void)state;
    char obj[64];
    const char *cdc = "[{\"data\":{\"payload\":{\"ChangeEventHeader\":{\"entityName\": \"Account\","
                      "\"changeType\":\"UPDATE\"}}}},{\"data\":{\"payload\":{\"ChangeEventHeader\":"
                      "{\"entityName\":\"Account\"}}}}]";
    assert_int_equal(es_webhook_object(ES_WEBHOOK_CDC, cdc, strlen(cdc), obj, sizeof obj), 1);
    assert_string_equal(obj, "Account");
    const char *mixed = "[{\"entityName\":\"Account\"},{\"entityName\":\"Order\"}]";
    assert_int_equal(es_webhook_object(ES_WEBHOOK_CDC, mixed, strlen(mixed), obj, sizeof obj), 0);
    assert_string_equal(obj, "");
    const char *none = "{\"id\":\"1\"}";
    assert_int_equal(es_webhook_object(ES_WEBHOOK_CDC, none, strlen(none), obj, sizeof obj), 0);
    const char *om = OM_HEAD "<Notification><Id>N1</Id><sObject xsi:type=\"sf:Account\">"
                             "<sf:Id>1</sf:Id></sObject></Notification>" OM_TAIL;
    assert_int_equal(
        es_webhook_object(ES_WEBHOOK_OUTBOUND_MESSAGE, om, strlen(om), obj, sizeof obj), 1);
    assert_string_equal(obj, "Account");
    assert_int_equal(es_webhook_object(ES_WEBHOOK_JSON, cdc, strlen(cdc), obj, sizeof obj), 0);

    struct es_batch b;
    struct es_err e;
    es_batch_init(&b);
    es_err_clear(&e);
    const char *gen = "{\"object\":\"Order\",\"records\":[{\"id\":\"O1\",\"data\":{}}]}";
    assert_int_equal(es_webhook_parse_json_object(gen, strlen(gen), &b, obj, sizeof obj, &e),
                     ES_OK);
    assert_string_equal(obj, "Order");
    const char *plain = "{\"id\":\"O2\",\"data\":{}}";
    assert_int_equal(es_webhook_parse_json_object(plain, strlen(plain), &b, obj, sizeof obj, &e),
                     ES_OK);
    assert_string_equal(obj, "");
    const char *bad = "{\"object\":\"\",\"records\":[{\"id\":\"O1\",\"data\":{}}]}";
    assert_int_equal(es_webhook_parse_json_object(bad, strlen(bad), &b, obj, sizeof obj, &e),
                     ES_EPOISON);
    assert_int_equal(b.count, 2);
    es_batch_release(&b);
}

static void test_outbound_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *msg;
    } cases[] = {
        {"{\"records\":[]}", "no Envelope"},
        {"<soapenv:Envelope><soapenv:Header/></soapenv:Envelope>", "no Body"},
        {"<Envelope><Body><other/></Body></Envelope>", "no notifications"},
        {"<Envelope><Body><notifications><Notification/></notifications></Body></Envelope>",
         "OrganizationId"},
        {OM_HEAD OM_TAIL, "no Notification"},
        {OM_HEAD "<Notification><sObject><sf:Id>1</sf:Id></sObject></Notification>" OM_TAIL,
         "has no Id"},
        {OM_HEAD "<Notification><Id>N1</Id></Notification>" OM_TAIL, "no sObject"},
        {OM_HEAD
         "<Notification><Id>N1</Id><sObject><sf:Name>x</sf:Name></sObject></Notification>" OM_TAIL,
         "sObject has no Id"},
        {OM_HEAD "<Notification><Id>N1</Id><sObject><sf:Id>1&bogus;</sf:Id></sObject>"
                 "</Notification>" OM_TAIL,
         "not plain text"},
        {OM_HEAD "<Notification><Id>N1</Id><sObject><sf:Id>1</sf:Id>", "no Envelope"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct es_batch b;
        struct es_err e;
        es_batch_init(&b);
        es_err_clear(&e);
        assert_int_equal(es_webhook_parse_outbound(cases[i].body, strlen(cases[i].body), &b, &e),
                         ES_EPOISON);
        assert_int_equal(b.count, 0);
        if (!strstr(e.msg, cases[i].msg)) {
            fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].msg);
        }
        es_batch_release(&b);
    }
}

/* Whatever the fast scan accepts, the full parser accepts with the same records and object.
 * Returns the scan's record count. */
static size_t scan_agrees(const char *body, size_t len)
{
    struct es_webhook_rec recs[64];
    char obj1[64], obj2[64];
    size_t n = es_webhook_scan_json(body, len, recs, 64, obj1, sizeof obj1);
    struct es_batch b;
    es_batch_init(&b);
    struct es_err e;
    es_err_clear(&e);
    int rc = es_webhook_parse_json_object(body, len, &b, obj2, sizeof obj2, &e);
    if (n > 0) {
        if (rc != ES_OK) {
            fail_msg("scan took %zu records of a body the parser refuses (%s): %.*s", n, e.msg,
                     (int)len, body);
        }
        assert_int_equal(b.count, n);
        assert_string_equal(obj1, obj2);
        for (size_t i = 0; i < n && i < 64; i++) {
            const struct es_webhook_rec *r = &recs[i];
            assert_int_equal(strlen(b.items[i].key), r->key_len);
            assert_memory_equal(b.items[i].key, r->key, r->key_len);
            assert_int_equal(strlen(b.items[i].version), r->version_len);
            assert_memory_equal(b.items[i].version, r->version, r->version_len);
            assert_int_equal(b.items[i].deleted, r->deleted);
            if (!r->data) {
                assert_null(b.items[i].data);
                continue;
            }
            json_t *d = json_loadb(r->data, r->data_len, 0, NULL);
            assert_non_null(d);
            assert_true(json_equal(d, b.items[i].data));
            json_decref(d);
        }
    }
    es_batch_release(&b);
    return n;
}

static size_t agrees(const char *body)
{
    return scan_agrees(body, strlen(body));
}

static void test_scan_json(void **state)
{
    (void)state;
    /* The plain forms: taken by the scan. */
    assert_int_equal(agrees("{\"id\":\"A1\",\"version\":\"7\",\"data\":{\"Name\":\"Acme\"}}"), 1);
    assert_int_equal(agrees(" {\"data\" : {\"a\":[1,-2.5,0,true,false,null,{\"b\":\"\\u00e9\\n\"}],"
                            "\"c\":\"Stra\xc3\x9f"
                            "e \xf0\x9f\x98\x80\"}, \"version\":\"v\","
                            "\"id\":\"A2\", \"extra\": [] }\n"),
                     1);
    assert_int_equal(
        agrees("{\"object\":\"Account\",\"records\":[{\"id\":\"1\",\"version\":\"1\","
               "\"data\":{}},{\"id\":\"2\",\"version\":\"1\",\"deleted\":true},"
               "{\"id\":\"3\",\"version\":\"2\",\"deleted\":true,\"data\":null},"
               "{\"id\":\"4\",\"version\":\"1\",\"deleted\":false,\"data\":{\"x\":1}}]}"),
        4);
    char obj[64];
    struct es_webhook_rec r[1];
    const char *many = "{\"records\":[{\"id\":\"1\",\"version\":\"1\",\"data\":{}},"
                       "{\"id\":\"2\",\"version\":\"1\",\"data\":{}}]}";
    /* More records than room: the count, and only cap written. */
    assert_int_equal(es_webhook_scan_json(many, strlen(many), r, 1, obj, sizeof obj), 2);
    assert_int_equal(r[0].key_len, 1);
    assert_int_equal(r[0].key[0], '1');

    /* Everything else goes to the full parser (0), valid or not. */
    static const char *const slow[] = {
        "{\"id\":\"A\",\"data\":{}}",                                  /* no version */
        "{\"id\":7,\"version\":\"1\",\"data\":{}}",                    /* integer id */
        "{\"id\":\"A\\u0041\",\"version\":\"1\",\"data\":{}}",         /* escaped id */
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\\n\":1}}",      /* escaped member name */
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":1,\"k\":2}}", /* duplicate in data */
        "{\"id\":\"A\",\"id\":\"B\",\"version\":\"1\",\"data\":{}}",   /* duplicate on top */
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":\"\\u0000\"}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":\"\\ud800\"}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":\"\\ud83d\\ude00\"}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":\"\xff\"}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":\"\xc0\x80\"}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":\"\xed\xa0\x80\"}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":1e5}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":123456789012345678901}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":01}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{\"k\":\"a\tb\"}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{}} x",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":{},}",
        "{\"id\":\"\",\"version\":\"1\",\"data\":{}}",
        "{\"id\":\"A\",\"version\":\"1\",\"data\":\"text\"}",
        "{\"id\":\"A\",\"version\":\"1\"}",
        "{\"id\":\"A\",\"version\":\"1\",\"deleted\":1}",
        "{\"records\":[]}",
        "{\"records\":{}}",
        "{\"records\":[7]}",
        "{\"object\":\"\",\"records\":[{\"id\":\"A\",\"version\":\"1\",\"data\":{}}]}",
        "[{\"id\":\"A\",\"version\":\"1\",\"data\":{}}]",
        "",
        "{",
    };
    for (size_t i = 0; i < sizeof slow / sizeof slow[0]; i++) {
        if (agrees(slow[i]) != 0) {
            fail_msg("case %zu taken by the scan: %s", i, slow[i]);
        }
    }
    /* Deep nesting past the scan's limit (the parser reads it). */
    char deep[512] = "{\"id\":\"A\",\"version\":\"1\",\"data\":";
    for (int i = 0; i < 40; i++) {
        es_strlcpy(deep + strlen(deep), "{\"a\":", sizeof deep - strlen(deep));
    }
    es_strlcpy(deep + strlen(deep), "1", sizeof deep - strlen(deep));
    for (int i = 0; i < 41; i++) {
        es_strlcpy(deep + strlen(deep), "}", sizeof deep - strlen(deep));
    }
    assert_int_equal(agrees(deep), 0);

    /* Mutations of a valid body (deterministic): the scan never takes a body the parser
     * refuses or reads differently. */
    const char *base = "{\"object\":\"Account\",\"records\":[{\"id\":\"001A\",\"version\":\"2\","
                       "\"deleted\":false,\"data\":{\"Name\":\"M\xc3\xbcller\",\"n\":[1,2.5,-3],"
                       "\"o\":{\"p\":null,\"q\":true}}},{\"id\":\"001B\",\"version\":\"3\","
                       "\"deleted\":true}]}";
    size_t blen = strlen(base);
    static const char alphabet[] = "{}[]\":,\\ 0123456789-.eEtrufalsn\xc3\xbc\x80\xff";
    unsigned seed = 12345;
    size_t taken = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char buf[512];
        memcpy(buf, base, blen);
        size_t len = blen;
        int edits = 1 + iter % 3;
        for (int k = 0; k < edits; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            char c = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
            seed = seed * 1103515245u + 12345u;
            switch ((seed >> 8) % 3) {
            case 0:
                buf[pos] = c;
                break;
            case 1:
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = c;
                len++;
                break;
            default:
                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                len--;
                break;
            }
        }
        taken += scan_agrees(buf, len) > 0;
    }
    assert_true(taken > 100); /* the property was exercised on accepted bodies too */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_rfc4231),   cmocka_unit_test(test_prepared_key),
        cmocka_unit_test(test_verify),         cmocka_unit_test(test_json_records),
        cmocka_unit_test(test_json_refusals),  cmocka_unit_test(test_outbound),
        cmocka_unit_test(test_object_routing), cmocka_unit_test(test_outbound_refusals),
        cmocka_unit_test(test_scan_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
