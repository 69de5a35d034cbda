/* SPDX-License-Identifier: MIT */
/*
 * The sap_odata connector's pure parts: EDMX parsing (a $metadata excerpt in SAP's own shape
 * with sap: annotations, documentation, comments and composite keys; every truncation of it
 * is refused cleanly), OData v2 dates, key literals, Gateway error bodies (JSON and XML) and
 * record fingerprints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/sap_odata.h"
#include "core/mem.h"

static char *read_data(const char *name, size_t *len)
{
    const char *src = getenv("ES_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/connectors/%s", src ? src : "..", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = es_xmalloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static json_t *field(json_t *set, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(set, "fields"), i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0) {
            return f;
        }
    }
    return NULL;
}

static void test_edmx(void **state)
{
    (void)state;
    size_t len;
    char *xml = read_data("sap_sales_order_metadata.xml", &len);
    json_t *m = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_sap_edmx_parse(xml, len, &m, &err), ES_OK);
    json_t *so = json_object_get(m, "A_SalesOrder");
    assert_non_null(so);
    assert_string_equal(json_string_value(json_object_get(so, "type")), "A_SalesOrderType");
    assert_true(json_is_false(json_object_get(so, "deletable")));
    assert_true(json_is_true(json_object_get(so, "creatable")));
    assert_true(json_is_true(json_object_get(so, "has_lastchange")));
    assert_string_equal(json_string_value(json_object_get(so, "etag")), "LastChangeDateTime");
    assert_int_equal(json_array_size(json_object_get(so, "keys")), 1);
    assert_int_equal(json_array_size(json_object_get(so, "fields")), 7);
    json_t *f = field(so, "SalesOrder");
    assert_true(json_is_false(json_object_get(f, "createable")));
    assert_true(json_is_false(json_object_get(f, "nillable")));
    assert_int_equal(json_integer_value(json_object_get(f, "length")), 10);
    f = field(so, "PurchaseOrderByCustomer");
    assert_int_equal(json_integer_value(json_object_get(f, "length")), 35);
    assert_string_equal(json_string_value(json_object_get(f, "type")), "String");
    assert_true(json_is_true(json_object_get(f, "updateable")));
    f = field(so, "TotalNetAmount");
    assert_string_equal(json_string_value(json_object_get(f, "type")), "Decimal");
    assert_string_equal(json_string_value(json_array_get(json_object_get(so, "navs"), 0)),
                        "to_Item");
    json_t *it = json_object_get(m, "A_SalesOrderItem");
    assert_int_equal(json_array_size(json_object_get(it, "keys")), 2);
    assert_true(json_is_false(json_object_get(it, "has_lastchange")));
    json_decref(m);

    /* Every cut of the document is an error, never a crash or a half result. */
    size_t start = (size_t)(strstr(xml, "<edmx:Edmx") - xml);
    for (size_t cut = 0; cut < len - 2; cut += 13) {
        es_err_clear(&err);
        m = NULL;
        int rc = es_sap_edmx_parse(xml, cut, &m, &err);
        if (cut <= start + 10 || rc != ES_OK) {
            assert_int_equal(rc, ES_EPROTOCOL);
            assert_null(m);
        } else {
            fail_msg("a document cut at %zu of %zu parsed", cut, len);
        }
    }
    es_err_clear(&err);
    assert_int_equal(es_sap_edmx_parse("<html><body>Logon</body></html>", 31, &m, &err),
                     ES_EPROTOCOL);
    assert_non_null(strstr(err.msg, "not an EDMX"));
    es_free(xml);
}

static void test_dates(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(es_sap_parse_date("/Date(1714521600000)/", &ms), ES_OK);
    assert_true(ms == 1714521600000LL);
    assert_int_equal(es_sap_parse_date("/Date(1714608000000+0000)/", &ms), ES_OK);
    assert_true(ms == 1714608000000LL);
    assert_int_equal(es_sap_parse_date("/Date(-1000)/", &ms), ES_OK);
    assert_true(ms == -1000);
    assert_int_equal(es_sap_parse_date("2024-05-01T00:00:00.000Z", &ms), ES_OK);
    assert_true(ms == 1714521600000LL);
    assert_int_equal(es_sap_parse_date("/Date(abc)/", &ms), ES_EINVAL);
    assert_int_equal(es_sap_parse_date("/Date(1714521600000", &ms), ES_EINVAL);
}

static void test_key_literal(void **state)
{
    (void)state;
    struct es_buf b;
    es_buf_init(&b, 0);
    assert_int_equal(es_sap_key_literal(&b, "1000042"), ES_OK);
    assert_string_equal(b.data, "'1000042'");
    es_buf_reset(&b);
    assert_int_equal(es_sap_key_literal(&b, "O'Brien"), ES_OK);
    assert_string_equal(b.data, "'O''Brien'");
    es_buf_reset(&b);
    assert_int_equal(es_sap_key_literal(&b, "BusinessPartner='1',AddressID='2'"), ES_OK);
    assert_string_equal(b.data, "BusinessPartner='1',AddressID='2'");
    es_buf_release(&b);
}

static void test_errors(void **state)
{
    (void)state;
    char code[64], msg[256];
    static const char json_err[] =
        "{\"error\":{\"code\":\"V1/384\",\"message\":{\"lang\":\"en\",\"value\":\"Sold-to party "
        "10100099 not maintained for sales area 1010/10/00\"},\"innererror\":{\"transactionid\":"
        "\"7E1F\",\"errordetails\":[{\"code\":\"V1/384\",\"message\":\"Sold-to party 10100099 not "
        "maintained for sales area 1010/10/00\",\"severity\":\"error\"},{\"code\":\"V4/219\","
        "\"message\":\"Sales document was not changed\",\"severity\":\"error\"}]}}}";
    assert_int_equal(
        es_sap_error_parse(json_err, sizeof json_err - 1, code, sizeof code, msg, sizeof msg), 1);
    assert_string_equal(code, "V1/384");
    assert_string_equal(msg, "Sold-to party 10100099 not maintained for sales area 1010/10/00; "
                             "Sales document was not changed");
    static const char xml_err[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><error "
        "xmlns=\"http://schemas.microsoft.com/ado/2007/08/dataservices/metadata\"><code>"
        "/IWFND/CM_CONSUMER/101</code><message xml:lang=\"en\">No authorization &amp; no "
        "luck</message></error>";
    assert_int_equal(
        es_sap_error_parse(xml_err, sizeof xml_err - 1, code, sizeof code, msg, sizeof msg), 1);
    assert_string_equal(code, "/IWFND/CM_CONSUMER/101");
    assert_string_equal(msg, "No authorization & no luck");
    assert_int_equal(es_sap_error_parse("<html>503</html>", 16, code, sizeof code, msg, sizeof msg),
                     0);
    assert_int_equal(es_sap_error_parse("{\"error\":", 9, code, sizeof code, msg, sizeof msg), 0);
}

static void test_fingerprint(void **state)
{
    (void)state;
    json_t *a =
        json_loads("{\"__metadata\":{\"uri\":\"x\"},\"Material\":\"TG11\",\"Qty\":\"5.000\","
                   "\"to_X\":{\"__deferred\":{\"uri\":\"y\"}}}",
                   0, NULL);
    json_t *b = json_loads(
        "{\"Qty\":\"5.000\",\"Material\":\"TG11\",\"__metadata\":{\"uri\":\"z\"}}", 0, NULL);
    json_t *c = json_loads("{\"Qty\":\"6.000\",\"Material\":\"TG11\"}", 0, NULL);
    char fa[17], fb[17], fc[17];
    es_sap_fingerprint(a, fa);
    es_sap_fingerprint(b, fb);
    es_sap_fingerprint(c, fc);
    assert_int_equal(strlen(fa), 16);
    assert_string_equal(fa, fb);
    assert_string_not_equal(fa, fc);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_batch_answer(void **state)
{
    (void)state;
    /* a $batch answer: change set 1 succeeded, change set 2 failed (one error part) */
    static const char body[] =
        "--batch_X\r\n"
        "Content-Type: multipart/mixed; boundary=changeset_Y\r\n\r\n"
        "--changeset_Y\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 24\r\n"
        "sap-message: {\"code\":\"V1/1\"}\r\n\r\n"
        "{\"d\":{\"SalesOrder\":\"7\"}}\r\n"
        "--changeset_Y--\r\n"
        "--batch_X\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n"
        "{\"error\":{\"code\":\"V1/302\"}}\r\n"
        "--batch_X--\r\n";
    struct es_sap_part parts[3];
    assert_int_equal(es_sap_multipart_split(body, sizeof body - 1, "batch_X", parts, 3), 2);
    struct es_sap_part inner;
    assert_int_equal(
        es_sap_multipart_split(parts[0].body, parts[0].body_len, "changeset_Y", &inner, 1), 1);
    struct es_http_resp r;
    es_http_resp_init(&r, NULL);
    assert_int_equal(es_sap_http_message(inner.body, inner.body_len, &r), ES_OK);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(r.body.len, 24);
    assert_memory_equal(r.body.data, "{\"d\":{\"SalesOrder\":\"7\"}}", 24);
    assert_string_equal(es_http_resp_header(&r, "sap-message"), "{\"code\":\"V1/1\"}");
    assert_int_equal(es_sap_http_message(parts[1].body, parts[1].body_len, &r), ES_OK);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "V1/302"));
    /* cut answers: no closing delimiter, a body shorter than its Content-Length, no status */
    assert_int_equal(es_sap_multipart_split(body, 200, "batch_X", parts, 3), -1);
    static const char shortp[] = "HTTP/1.1 201 Created\r\nContent-Length: 99\r\n\r\n{}";
    assert_int_equal(es_sap_http_message(shortp, sizeof shortp - 1, &r), ES_EPROTOCOL);
    assert_int_equal(es_sap_http_message("<html>", 6, &r), ES_EPROTOCOL);
    /* more parts than asked for is refused too */
    assert_int_equal(es_sap_multipart_split(body, sizeof body - 1, "batch_X", parts, 1), -1);
    es_http_resp_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edmx),        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_key_literal), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_fingerprint), cmocka_unit_test(test_batch_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
