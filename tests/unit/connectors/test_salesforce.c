/* SPDX-License-Identifier: MIT */
/*
 * The salesforce connector's pure parts and its webhook parsing: error classification,
 * timestamps, the (SystemModstamp, Id) watermark, the change query text, Sforce-Limit-Info,
 * CSV for Bulk 2.0, Outbound Messages (SOAP, with the Ack) and CDC events, with bodies in the
 * shapes Salesforce sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/connector.h"
#include "connectors/salesforce.h"
#include "core/mem.h"

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(es_sf_classify("DUPLICATES_DETECTED"), ES_EDUPLICATE);
    assert_int_equal(es_sf_classify("DUPLICATE_VALUE"), ES_EDUPLICATE);
    assert_int_equal(es_sf_classify("REQUIRED_FIELD_MISSING"), ES_EVALIDATION);
    assert_int_equal(es_sf_classify("STRING_TOO_LONG"), ES_EVALIDATION);
    assert_int_equal(es_sf_classify("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"), ES_EVALIDATION);
    assert_int_equal(es_sf_classify("INVALID_FIELD"), ES_EVALIDATION);
    assert_int_equal(es_sf_classify("INVALID_SESSION_ID"), ES_EAUTH);
    assert_int_equal(es_sf_classify("UNABLE_TO_LOCK_ROW"), ES_EREMOTE);
    assert_int_equal(es_sf_classify("REQUEST_LIMIT_EXCEEDED"), ES_ERATELIMIT);
    assert_int_equal(es_sf_classify("ENTITY_IS_DELETED"), ES_ENOTFOUND);
    assert_int_equal(es_sf_classify("FIELD_CUSTOM_VALIDATION_EXCEPTION"), ES_EVALIDATION);
    assert_int_equal(es_sf_classify("SOMETHING_NEW"), ES_EREJECTED);
    assert_int_equal(es_sf_classify(NULL), ES_EREJECTED);
}

static void test_timestamps(void **state)
{
    (void)state;
    int64_t a, b, c;
    assert_int_equal(es_sf_parse_ts("2013-05-20T20:49:32.000+0000", &a), ES_OK);
    assert_int_equal(es_sf_parse_ts("2013-05-20T20:49:32Z", &b), ES_OK);
    assert_int_equal(es_sf_parse_ts("2013-05-20T22:49:32.000+02:00", &c), ES_OK);
    assert_true(a == b && b == c);
    assert_true(a == 1369082972000LL);
    assert_int_equal(es_sf_parse_ts("2013-05-20T20:49:32.123Z", &a), ES_OK);
    assert_true(a == 1369082972123LL);
    assert_int_equal(es_sf_parse_ts("2013-05-20 20:49:32", &a), ES_EINVAL);
    assert_int_equal(es_sf_parse_ts("2013-13-20T20:49:32Z", &a), ES_EINVAL);
    assert_int_equal(es_sf_parse_ts("2013-05-20T20:49:32.Z", &a), ES_EINVAL);
    assert_int_equal(es_sf_parse_ts("", &a), ES_EINVAL);
}

static void test_watermark_and_soql(void **state)
{
    (void)state;
    int64_t ts;
    char id[24];
    assert_int_equal(es_sf_watermark_parse(NULL, &ts, id, sizeof id), ES_OK);
    assert_true(ts == -1);
    assert_int_equal(
        es_sf_watermark_parse("2024-05-01T10:00:00.000Z|001000000000001AAA", &ts, id, sizeof id),
        ES_OK);
    assert_string_equal(id, "001000000000001AAA");
    assert_true(ts == 1714557600000LL);
    /* an id that would break out of the SOQL literal is refused */
    assert_int_equal(
        es_sf_watermark_parse("2024-05-01T10:00:00.000Z|x' OR Id != '", &ts, id, sizeof id),
        ES_EINVAL);
    assert_int_equal(es_sf_watermark_parse("yesterday|001", &ts, id, sizeof id), ES_EINVAL);

    struct es_buf b;
    es_buf_init(&b, 0);
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_sf_soql_changes(&b, "Id,Name,SystemModstamp", "Account", 1714557600000LL,
                                        "001000000000001AAA", 500, &err),
                     ES_OK);
    assert_string_equal(b.data, "SELECT Id,Name,SystemModstamp FROM Account WHERE SystemModstamp > "
                                "2024-05-01T10:00:00.000Z OR (SystemModstamp = "
                                "2024-05-01T10:00:00.000Z AND Id > '001000000000001AAA') ORDER BY "
                                "SystemModstamp, Id LIMIT 500");
    es_buf_reset(&b);
    assert_int_equal(es_sf_soql_changes(&b, "Id", "Account", 1714557600000LL, "", 10, &err), ES_OK);
    assert_string_equal(b.data, "SELECT Id FROM Account WHERE SystemModstamp >= "
                                "2024-05-01T10:00:00.000Z ORDER BY SystemModstamp, Id LIMIT 10");
    es_buf_reset(&b);
    assert_int_equal(es_sf_soql_changes(&b, "Id", "Account", -1, NULL, 10, &err), ES_OK);
    assert_string_equal(b.data, "SELECT Id FROM Account ORDER BY SystemModstamp, Id LIMIT 10");
    es_buf_reset(&b);
    assert_int_equal(es_sf_soql_changes(&b, "Id", "Account; DROP", -1, NULL, 10, &err), ES_EINVAL);
    es_buf_release(&b);
}

static void test_limit_info(void **state)
{
    (void)state;
    long u = -1, m = -1;
    assert_int_equal(es_sf_limit_info("api-usage=18/5000", &u, &m), 1);
    assert_true(u == 18 && m == 5000);
    assert_int_equal(
        es_sf_limit_info("api-usage=25/15000; per-app-api-usage=17/250(appName=x)", &u, &m), 1);
    assert_true(u == 25 && m == 15000);
    assert_int_equal(es_sf_limit_info("per-app-api-usage=17/250(appName=x)", &u, &m), 0);
    assert_int_equal(es_sf_limit_info(NULL, &u, &m), 0);
}

static void test_csv(void **state)
{
    (void)state;
    struct es_buf b;
    es_buf_init(&b, 0);
    assert_int_equal(es_sf_csv_field(&b, "plain", 5), ES_OK);
    assert_int_equal(es_buf_putc(&b, ','), ES_OK);
    const char *tricky = "Main St 1, \"Annex\"\nFloor 2";
    assert_int_equal(es_sf_csv_field(&b, tricky, strlen(tricky)), ES_OK);
    assert_int_equal(es_buf_putc(&b, '\n'), ES_OK);
    assert_string_equal(b.data, "plain,\"Main St 1, \"\"Annex\"\"\nFloor 2\"\n");
    const char *p = b.data;
    char **f = NULL;
    int n = es_sf_csv_record(&p, b.data + b.len, &f);
    assert_int_equal(n, 2);
    assert_string_equal(f[0], "plain");
    assert_string_equal(f[1], tricky);
    es_sf_csv_free(f, n);
    assert_int_equal(es_sf_csv_record(&p, b.data + b.len, &f), 0);
    const char *bad = "\"unterminated,x\n";
    p = bad;
    assert_int_equal(es_sf_csv_record(&p, bad + strlen(bad), &f), -1);
    es_buf_release(&b);
}

/* An instance without network use: parse_webhook needs no login. */
static struct es_conn *open_sf(struct es_system_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->name = "crm";
    cfg->connector = "salesforce";
    cfg->url = "http://127.0.0.1:9";
    cfg->api_version = "60.0";
    cfg->timeout_ms = 1000;
    cfg->connect_timeout_ms = 1000;
    cfg->max_response = 1 << 20;
    cfg->verify_tls = 1;
    cfg->auth.method = "none";
    struct es_conn *c = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_conn_open(cfg, &c, &err), ES_OK);
    return c;
}

static const char outbound[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" "
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
    " <soapenv:Body>\n"
    "  <notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\n"
    "   <OrganizationId>00Dxx0000000123AAA</OrganizationId>\n"
    "   <ActionId>04kxx0000000001AAA</ActionId>\n"
    "   <SessionId xsi:nil=\"true\"/>\n"
    "   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/60.0/00D</EnterpriseUrl>\n"
    "   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/60.0/00D</PartnerUrl>\n"
    "   <Notification>\n"
    "    <Id>04lxx0000000001AAA</Id>\n"
    "    <sObject xsi:type=\"sf:Account\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\n"
    "     <sf:Id>001xx000003DGb2AAG</sf:Id>\n"
    "     <sf:Name>M&#252;ller &amp; S&#xF6;hne GmbH</sf:Name>\n"
    "     <sf:BillingCity>K&#246;ln</sf:BillingCity>\n"
    "     <sf:Phone xsi:nil=\"true\"/>\n"
    "     <sf:SystemModstamp>2024-05-01T10:00:00.000Z</sf:SystemModstamp>\n"
    "    </sObject>\n"
    "   </Notification>\n"
    "   <Notification>\n"
    "    <Id>04lxx0000000002AAA</Id>\n"
    "    <sObject xsi:type=\"sf:Account\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\n"
    "     <sf:Id>001xx000003DGb3AAG</sf:Id>\n"
    "     <sf:Name><![CDATA[A <b> & C]]></sf:Name>\n"
    "    </sObject>\n"
    "   </Notification>\n"
    "  </notifications>\n"
    " </soapenv:Body>\n"
    "</soapenv:Envelope>\n";

static void test_outbound_message(void **state)
{
    (void)state;
    struct es_system_cfg cfg;
    struct es_conn *c = open_sf(&cfg);
    struct es_http_req req = {"POST", "/hooks/crm", "text/xml",         0,
                              NULL,   outbound,     sizeof outbound - 1};
    struct es_batch b;
    es_batch_init(&b);
    struct es_http_reply reply;
    memset(&reply, 0, sizeof reply);
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_conn_parse_webhook(c, &req, &b, &reply, &err), ES_OK);
    assert_int_equal(b.count, 2);
    assert_string_equal(b.items[0].key, "001xx000003DGb2AAG");
    assert_string_equal(b.items[0].version, "2024-05-01T10:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(b.items[0].data, "Name")),
                        "M\xc3\xbcller & S\xc3\xb6hne GmbH");
    assert_string_equal(json_string_value(json_object_get(b.items[0].data, "BillingCity")),
                        "K\xc3\xb6ln");
    assert_true(json_is_null(json_object_get(b.items[0].data, "Phone")));
    assert_string_equal(json_string_value(json_object_get(b.items[1].data, "Name")), "A <b> & C");
    /* without a modstamp the notification id makes the version */
    assert_string_equal(b.items[1].version, "04lxx0000000002AAA");
    assert_non_null(reply.body);
    assert_non_null(strstr(reply.body, "<Ack>true</Ack>"));
    assert_non_null(strstr(reply.content_type, "xml"));
    es_http_reply_release(&reply);
    es_batch_release(&b);

    /* a cut-off message is poison, never a crash, and gets no Ack */
    for (size_t cut = 10; cut < sizeof outbound - 1; cut += 37) {
        struct es_http_req r2 = req;
        r2.body_len = cut;
        es_batch_init(&b);
        memset(&reply, 0, sizeof reply);
        es_err_clear(&err);
        int rc = es_conn_parse_webhook(c, &r2, &b, &reply, &err);
        assert_int_equal(rc, ES_EPOISON);
        assert_null(reply.body);
        es_batch_release(&b);
    }
    es_conn_close(c);
}

static void test_cdc_events(void **state)
{
    (void)state;
    struct es_system_cfg cfg;
    struct es_conn *c = open_sf(&cfg);
    static const char body[] =
        "[{\"data\":{\"schema\":\"abc\",\"payload\":{\"ChangeEventHeader\":{\"entityName\":"
        "\"Account\",\"recordIds\":[\"001A\",\"001B\"],\"changeType\":\"UPDATE\","
        "\"changedFields\":[\"Name\"],\"transactionKey\":\"tk1\",\"sequenceNumber\":1,"
        "\"commitTimestamp\":1569443783000,\"commitNumber\":10585193272713},\"Name\":\"New\"},"
        "\"event\":{\"replayId\":42}},\"channel\":\"/data/AccountChangeEvent\"},"
        "{\"data\":{\"payload\":{\"ChangeEventHeader\":{\"entityName\":\"Account\","
        "\"recordIds\":[\"001C\"],\"changeType\":\"DELETE\",\"transactionKey\":\"tk2\","
        "\"sequenceNumber\":1,\"commitTimestamp\":1569443784000}}}},"
        "{\"data\":{\"payload\":{\"ChangeEventHeader\":{\"entityName\":\"Account\","
        "\"recordIds\":[\"001*\"],\"changeType\":\"GAP_UPDATE\"}}}}]";
    struct es_http_req req = {"POST", "/hooks/crm", "application/json", 0,
                              NULL,   body,         sizeof body - 1};
    struct es_batch b;
    es_batch_init(&b);
    struct es_http_reply reply;
    memset(&reply, 0, sizeof reply);
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_conn_parse_webhook(c, &req, &b, &reply, &err), ES_OK);
    assert_int_equal(b.count, 3);
    assert_string_equal(b.items[0].key, "001A");
    assert_string_equal(b.items[1].key, "001B");
    assert_string_equal(json_string_value(json_object_get(b.items[1].data, "Name")), "New");
    assert_null(json_object_get(b.items[1].data, "ChangeEventHeader"));
    /* An UPDATE event holds only the changed fields: marked for the engine to read it whole. */
    assert_true(json_is_true(json_object_get(b.items[1].data, ES_RECORD_PARTIAL)));
    assert_string_equal(b.items[0].version, "1569443783000-tk1-1");
    assert_int_equal(b.items[2].deleted, 1);
    assert_null(b.items[2].data);
    es_batch_release(&b);

    static const char bad[] = "{\"data\":{\"payload\":{\"Name\":\"x\"}}}";
    req.body = bad;
    req.body_len = sizeof bad - 1;
    es_batch_init(&b);
    es_err_clear(&err);
    assert_int_equal(es_conn_parse_webhook(c, &req, &b, &reply, &err), ES_EPOISON);
    es_batch_release(&b);
    req.body = "{\"trunc";
    req.body_len = 7;
    es_batch_init(&b);
    es_err_clear(&err);
    assert_int_equal(es_conn_parse_webhook(c, &req, &b, &reply, &err), ES_EPOISON);
    es_batch_release(&b);
    es_conn_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_watermark_and_soql),
        cmocka_unit_test(test_limit_info),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_outbound_message),
        cmocka_unit_test(test_cdc_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
