/* SPDX-License-Identifier: MIT */
/*
 * Integration test of erpsync-sandbox sap over loopback with raw HTTP (libcurl): starts the
 * emulator on a free port with a temporary SQLite file and checks each documented behaviour
 * by status code, headers and body: basic auth, $metadata, the CSRF handshake, __next paging
 * past 5,000 entities, $filter/$select/$expand/$orderby/$top/$skip/$inlinecount/$count, deep
 * inserts, the credit check, ETag/If-Match (412/428), changes behind the client's back,
 * $batch with atomic change sets, SAP's error body, fault injection and reset.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"

extern char **environ;

static int failures, checks;
static char base[128]; /* http://127.0.0.1:PORT */
static CURL *session;  /* keeps cookies (the SAP session) */

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

struct resp {
    long status;
    struct es_buf body;
    struct es_buf head;
    json_t *json;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    return es_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

static void resp_free(struct resp *r)
{
    es_buf_release(&r->body);
    es_buf_release(&r->head);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* One request. path is relative to base; extra headers NULL-terminated; auth 0 = none. */
static void req(CURL *h, const char *method, const char *path, const char *body,
                const char *const *extra, int auth, struct resp *r)
{
    memset(r, 0, sizeof *r);
    es_buf_init(&r->body, 0);
    es_buf_init(&r->head, 0);
    char url[8192];
    snprintf(url, sizeof url, "%s%s", strncmp(path, "http", 4) == 0 ? "" : base, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->head);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    if (auth) {
        curl_easy_setopt(h, CURLOPT_USERPWD, "demo:demo");
    } else {
        curl_easy_setopt(h, CURLOPT_USERPWD, NULL);
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_NONE);
    }
    if (auth) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    }
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    int has_ct = 0;
    for (int i = 0; extra && extra[i]; i++) {
        hl = curl_slist_append(hl, extra[i]);
        has_ct |= strncasecmp(extra[i], "Content-Type:", 13) == 0;
    }
    if (body && !has_ct) {
        hl = curl_slist_append(hl, "Content-Type: application/json");
    }
    hl = curl_slist_append(hl, "Accept: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "curl %s %s: %s\n", method, url, curl_easy_strerror(rc));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hl);
    if (r->body.len) {
        r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
    }
}

/* Value of a response header (last occurrence), copied into out; NULL when absent. */
static const char *header(const struct resp *r, const char *name, char *out, size_t cap)
{
    const char *found = NULL;
    size_t nl = strlen(name);
    for (const char *p = r->head.data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            found = p + nl + 1;
        }
    }
    if (!found) {
        return NULL;
    }
    while (*found == ' ') {
        found++;
    }
    size_t n = strcspn(found, "\r\n");
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(out, found, n);
    out[n] = '\0';
    return out;
}

static json_t *d_of(const struct resp *r)
{
    return json_object_get(r->json, "d");
}

static const char *str_at(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static size_t results_len(const struct resp *r)
{
    return json_array_size(json_object_get(d_of(r), "results"));
}

static const char *body_text(const struct resp *r)
{
    return r->body.data ? r->body.data : "";
}

#define SO  "/sap/opu/odata/sap/API_SALES_ORDER_SRV/"
#define BP  "/sap/opu/odata/sap/API_BUSINESS_PARTNER/"
#define PR  "/sap/opu/odata/sap/API_PRODUCT_SRV/"
#define STK "/sap/opu/odata/sap/API_MATERIAL_STOCK_SRV/"
#define BIL "/sap/opu/odata/sap/API_BILLING_DOCUMENT_SRV/"
#define CND "/sap/opu/odata/sap/API_SLSPRICINGCONDITIONRECORD_SRV/"

static char token[128];

static void fetch_token(const char *service_root)
{
    struct resp r;
    static const char *const h[] = {"X-CSRF-Token: Fetch", NULL};
    req(session, "GET", service_root, NULL, h, 1, &r);
    CHECK(r.status == 200, "status %ld", r.status);
    CHECK(header(&r, "x-csrf-token", token, sizeof token) != NULL, "no token");
    resp_free(&r);
}

/* A modifying request with the session's token. */
static void write_req(const char *method, const char *path, const char *body, const char *if_match,
                      struct resp *r)
{
    char th[200], ih[300];
    snprintf(th, sizeof th, "X-CSRF-Token: %s", token);
    snprintf(ih, sizeof ih, "If-Match: %s", if_match ? if_match : "");
    const char *h[] = {th, if_match ? ih : NULL, NULL};
    req(session, method, path, body, h, 1, r);
}

static void test_auth_and_metadata(void)
{
    CURL *h = curl_easy_init();
    struct resp r;
    char v[512];
    req(h, "GET", PR "A_Product", NULL, NULL, 0, &r);
    CHECK(r.status == 401, "no auth: %ld", r.status);
    CHECK(header(&r, "WWW-Authenticate", v, sizeof v) && strstr(v, "Basic"), "challenge");
    resp_free(&r);
    req(h, "GET", "/sap/opu/odata/sap/API_NOPE_SRV/", NULL, NULL, 1, &r);
    CHECK(r.status == 404, "unknown service %ld", r.status);
    CHECK(strstr(body_text(&r), "/IWFND/MED/170") != NULL, "%s", body_text(&r));
    resp_free(&r);
    req(h, "GET", BP "$metadata", NULL, NULL, 1, &r);
    CHECK(r.status == 200, "metadata %ld", r.status);
    CHECK(header(&r, "Content-Type", v, sizeof v) && strstr(v, "application/xml"), "ctype %s", v);
    const char *x = body_text(&r);
    CHECK(strstr(x, "<edmx:Edmx Version=\"1.0\"") != NULL, "edmx");
    CHECK(strstr(x, "m:DataServiceVersion=\"2.0\"") != NULL, "dsv");
    CHECK(strstr(x, "<EntityType Name=\"A_BusinessPartnerAddressType\"") != NULL, "addr type");
    CHECK(strstr(x, "<Property Name=\"StreetName\" Type=\"Edm.String\" MaxLength=\"60\"") != NULL,
          "StreetName 60");
    CHECK(strstr(x, "<Property Name=\"BusinessPartner\" Type=\"Edm.String\" Nullable=\"false\" "
                    "MaxLength=\"10\"") != NULL,
          "key facets");
    CHECK(strstr(x,
                 "<EntitySet Name=\"A_BusinessPartner\" "
                 "EntityType=\"API_BUSINESS_PARTNER.A_BusinessPartnerType\" "
                 "sap:creatable=\"true\" sap:updatable=\"true\" sap:deletable=\"false\"") != NULL,
          "set flags");
    CHECK(strstr(x, "<NavigationProperty Name=\"to_BusinessPartnerAddress\"") != NULL, "nav");
    resp_free(&r);
    req(h, "GET", SO "$metadata", NULL, NULL, 1, &r);
    CHECK(strstr(body_text(&r), "Name=\"LastChangeDateTime\" Type=\"Edm.DateTimeOffset\" "
                                "Precision=\"7\" ConcurrencyMode=\"Fixed\"") != NULL,
          "etag property");
    CHECK(strstr(body_text(&r), "Name=\"TotalNetAmount\" Type=\"Edm.Decimal\" Precision=\"16\" "
                                "Scale=\"3\"") != NULL,
          "decimal facets");
    resp_free(&r);
    curl_easy_cleanup(h);
}

static void test_csrf(void)
{
    struct resp r;
    char v[256];
    CURL *fresh = curl_easy_init();
    curl_easy_setopt(fresh, CURLOPT_COOKIEFILE, "");
    const char *body = "{\"Product\":\"CSRF-1\",\"ProductType\":\"FERT\"}";
    req(fresh, "POST", PR "A_Product", body, NULL, 1, &r);
    CHECK(r.status == 403, "no token: %ld", r.status);
    CHECK(header(&r, "x-csrf-token", v, sizeof v) && strcmp(v, "Required") == 0, "Required");
    CHECK(strcmp(body_text(&r), "CSRF token validation failed") == 0, "%s", body_text(&r));
    resp_free(&r);
    static const char *const fh[] = {"x-csrf-token: fetch", NULL};
    req(fresh, "GET", PR, NULL, fh, 1, &r);
    char tok[128];
    CHECK(r.status == 200, "fetch %ld", r.status);
    CHECK(header(&r, "x-csrf-token", tok, sizeof tok) && strlen(tok) >= 16, "token");
    CHECK(header(&r, "Set-Cookie", v, sizeof v) && strstr(v, "SAP_SESSIONID_") == v, "cookie %s",
          v);
    resp_free(&r);
    char th[200];
    snprintf(th, sizeof th, "X-CSRF-Token: %s", tok);
    const char *h[] = {th, NULL};
    /* the token without the session cookie is refused */
    CURL *nocookie = curl_easy_init();
    req(nocookie, "POST", PR "A_Product", body, h, 1, &r);
    CHECK(r.status == 403, "token without cookie: %ld", r.status);
    resp_free(&r);
    curl_easy_cleanup(nocookie);
    static const char *const wrong[] = {"X-CSRF-Token: bm90LWEtdG9rZW4=", NULL};
    req(fresh, "POST", PR "A_Product", body, wrong, 1, &r);
    CHECK(r.status == 403, "wrong token: %ld", r.status);
    resp_free(&r);
    req(fresh, "POST", PR "A_Product", body, h, 1, &r);
    CHECK(r.status == 201, "with token: %ld %s", r.status, body_text(&r));
    CHECK(header(&r, "Location", v, sizeof v) && strstr(v, "A_Product('CSRF-1')"), "location");
    resp_free(&r);
    curl_easy_cleanup(fresh);
}

static void test_paging(void)
{
    struct resp r;
    req(session, "GET", BP "A_BusinessPartner?$select=BusinessPartner&$inlinecount=allpages", NULL,
        NULL, 1, &r);
    CHECK(r.status == 200, "%ld", r.status);
    CHECK(results_len(&r) == 5000, "first page %zu", results_len(&r));
    CHECK(strcmp(str_at(d_of(&r), "__count"), "5100") == 0, "count %s",
          str_at(d_of(&r), "__count"));
    const char *next = str_at(d_of(&r), "__next");
    CHECK(strstr(next, "$skiptoken=5000") != NULL, "next %s", next);
    json_t *first = json_array_get(json_object_get(d_of(&r), "results"), 0);
    CHECK(strcmp(str_at(first, "BusinessPartner"), "10100001") == 0, "key order");
    CHECK(json_object_get(first, "OrganizationBPName1") == NULL, "$select dropped others");
    CHECK(json_object_get(json_object_get(first, "__metadata"), "uri") != NULL, "metadata uri");
    json_t *seen = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(d_of(&r), "results"), i, e)
    {
        json_object_set_new(seen, str_at(e, "BusinessPartner"), json_true());
    }
    char nexturl[1024];
    snprintf(nexturl, sizeof nexturl, "%s", next);
    resp_free(&r);
    int pages = 1;
    while (nexturl[0] && pages < 5) {
        req(session, "GET", nexturl, NULL, NULL, 1, &r);
        CHECK(r.status == 200, "%ld", r.status);
        json_array_foreach(json_object_get(d_of(&r), "results"), i, e)
        {
            json_object_set_new(seen, str_at(e, "BusinessPartner"), json_true());
        }
        snprintf(nexturl, sizeof nexturl, "%s", str_at(d_of(&r), "__next"));
        resp_free(&r);
        pages++;
    }
    CHECK(pages == 2, "pages %d", pages);
    CHECK(json_object_size(seen) == 5100, "distinct partners %zu", json_object_size(seen));
    json_decref(seen);
    /* the key-ordered page (read with SQL LIMIT/OFFSET) equals the filtered, sorted one */
    struct resp r2;
    req(session, "GET",
        BP "A_BusinessPartnerAddress?$orderby=BusinessPartner,AddressID&$skip=1234&$top=3", NULL,
        NULL, 1, &r);
    req(session, "GET", BP "A_BusinessPartnerAddress?$filter=Country%20ne%20'XX'&$skip=1234&$top=3",
        NULL, NULL, 1, &r2);
    json_t *ra = json_object_get(d_of(&r), "results");
    json_t *rb = json_object_get(d_of(&r2), "results");
    CHECK(json_array_size(ra) == 3 && json_array_size(rb) == 3, "pages");
    for (size_t k = 0; k < 3; k++) {
        CHECK(strcmp(str_at(json_array_get(ra, k), "AddressID"),
                     str_at(json_array_get(rb, k), "AddressID")) == 0,
              "same order at %zu", k);
    }
    resp_free(&r);
    resp_free(&r2);
    /* $top below the cap: no __next */
    req(session, "GET", BP "A_BusinessPartnerAddress?$top=10&$skip=5090", NULL, NULL, 1, &r);
    CHECK(results_len(&r) == 10 && !json_object_get(d_of(&r), "__next"), "top/skip %zu",
          results_len(&r));
    resp_free(&r);
}

static void test_query_options(void)
{
    struct resp r;
    req(session, "GET",
        SO "A_SalesOrder?$filter=LastChangeDateTime%20gt%20datetimeoffset'2026-02-19T00:00:00Z'"
           "&$orderby=LastChangeDateTime%20desc&$top=2&$select=SalesOrder,LastChangeDateTime"
           "&$inlinecount=allpages&$format=json",
        NULL, NULL, 1, &r);
    CHECK(r.status == 200, "%ld %s", r.status, body_text(&r));
    json_t *res = json_object_get(d_of(&r), "results");
    CHECK(json_array_size(res) == 2, "%zu", json_array_size(res));
    CHECK(strcmp(str_at(json_array_get(res, 0), "SalesOrder"), "300") == 0, "desc order");
    CHECK(strcmp(str_at(json_array_get(res, 1), "SalesOrder"), "299") == 0, "desc order 2");
    CHECK(strcmp(str_at(d_of(&r), "__count"), "6") == 0, "count %s", str_at(d_of(&r), "__count"));
    const char *ts = str_at(json_array_get(res, 0), "LastChangeDateTime");
    CHECK(strncmp(ts, "/Date(", 6) == 0 && strstr(ts, "+0000)/"), "dto %s", ts);
    CHECK(!json_object_get(json_array_get(res, 0), "TotalNetAmount"), "select");
    resp_free(&r);
    req(session, "GET",
        PR "A_Product?$filter=startswith(Product,'TG')&$orderby=Product&$skip=5&$top=3", NULL, NULL,
        1, &r);
    res = json_object_get(d_of(&r), "results");
    CHECK(json_array_size(res) == 3 &&
              strcmp(str_at(json_array_get(res, 0), "Product"), "TG1005") == 0,
          "skip %s", str_at(json_array_get(res, 0), "Product"));
    CHECK(json_is_string(json_object_get(json_array_get(res, 0), "GrossWeight")),
          "decimal as string");
    resp_free(&r);
    req(session, "GET",
        BP "A_BusinessPartnerAddress?$filter=Country%20eq%20'DE'%20and%20"
           "(startswith(CityName,'M')%20or%20substringof('amb',CityName))&$inlinecount=allpages"
           "&$top=1",
        NULL, NULL, 1, &r);
    CHECK(r.status == 200, "%ld %s", r.status, body_text(&r));
    json_t *a = json_array_get(json_object_get(d_of(&r), "results"), 0);
    CHECK(strcmp(str_at(a, "Country"), "DE") == 0, "country");
    CHECK(strtol(str_at(d_of(&r), "__count"), NULL, 10) > 100, "count %s",
          str_at(d_of(&r), "__count"));
    CHECK(strlen(str_at(a, "StreetName")) > 0 && strlen(str_at(a, "HouseNumber")) > 0, "street");
    resp_free(&r);
    /* at least 10 countries */
    int countries = 0;
    static const char *const cc[] = {"DE", "AT", "CH", "FR", "NL", "BE", "IT",
                                     "ES", "PL", "US", "GB", "CA", "AU", "IE"};
    for (size_t k = 0; k < sizeof cc / sizeof cc[0]; k++) {
        char p[256];
        snprintf(p, sizeof p, BP "A_BusinessPartnerAddress/$count?$filter=Country%%20eq%%20'%s'",
                 cc[k]);
        req(session, "GET", p, NULL, NULL, 1, &r);
        countries += r.status == 200 && strtol(body_text(&r), NULL, 10) > 0;
        resp_free(&r);
    }
    CHECK(countries >= 10, "countries %d", countries);
    req(session, "GET", PR "A_Product/$count", NULL, NULL, 1, &r);
    CHECK(r.status == 200 && strtol(body_text(&r), NULL, 10) >= 200, "$count %s", body_text(&r));
    resp_free(&r);
    req(session, "GET", SO "A_SalesOrder('1')?$expand=to_Item", NULL, NULL, 1, &r);
    json_t *items = json_object_get(json_object_get(d_of(&r), "to_Item"), "results");
    CHECK(json_array_size(items) >= 1, "expand");
    CHECK(strcmp(str_at(json_array_get(items, 0), "SalesOrder"), "1") == 0, "item key");
    resp_free(&r);
    req(session, "GET", PR "A_Product('TG1003')", NULL, NULL, 1, &r);
    json_t *def = json_object_get(json_object_get(d_of(&r), "to_Description"), "__deferred");
    CHECK(strstr(str_at(def, "uri"), "A_Product('TG1003')/to_Description") != NULL, "deferred");
    resp_free(&r);
    req(session, "GET", PR "A_Product('TG1003')/to_Description", NULL, NULL, 1, &r);
    CHECK(results_len(&r) == 2, "descriptions %zu", results_len(&r));
    resp_free(&r);
    req(session, "GET",
        STK "A_MaterialStock('TG1001')/to_MatlStkInAcctMod?$filter=InventoryStockType%20eq%20'01'",
        NULL, NULL, 1, &r);
    CHECK(results_len(&r) == 3, "stock rows %zu", results_len(&r));
    resp_free(&r);
    req(session, "GET", BIL "A_BillingDocument?$filter=InvoiceClearingStatus%20eq%20'C'&$top=1",
        NULL, NULL, 1, &r);
    CHECK(results_len(&r) == 1, "cleared invoices");
    resp_free(&r);
    req(session, "GET",
        CND "A_SlsPrcgCndnRecdValidity?$filter=Material%20eq%20'TG1001'"
            "&$expand=to_SlsPrcgConditionRecord",
        NULL, NULL, 1, &r);
    json_t *rec = json_object_get(json_array_get(json_object_get(d_of(&r), "results"), 0),
                                  "to_SlsPrcgConditionRecord");
    CHECK(strcmp(str_at(rec, "ConditionType"), "PPR0") == 0, "price condition");
    resp_free(&r);
    req(session, "GET", SO "A_SalesOrder('2')?$expand=to_Item&$select=SalesOrder,to_Item/Material",
        NULL, NULL, 1, &r);
    json_t *it0 =
        json_array_get(json_object_get(json_object_get(d_of(&r), "to_Item"), "results"), 0);
    CHECK(r.status == 200 && strlen(str_at(it0, "Material")) > 0 &&
              !json_object_get(it0, "NetAmount") && !json_object_get(d_of(&r), "SoldToParty"),
          "nested $select %s", body_text(&r));
    resp_free(&r);
    req(session, "GET", SO "A_SalesOrder?$expand=to_Nope", NULL, NULL, 1, &r);
    CHECK(r.status == 400, "unknown $expand %ld", r.status);
    resp_free(&r);
    req(session, "GET", SO "A_SalesOrder('2')?$select=Nope", NULL, NULL, 1, &r);
    CHECK(r.status == 400, "unknown $select %ld", r.status);
    resp_free(&r);
    req(session, "GET", SO "A_SalesOrder?$filter=Nope%20eq%201", NULL, NULL, 1, &r);
    CHECK(r.status == 400, "bad filter %ld", r.status);
    resp_free(&r);
}

static void test_deep_insert_and_credit(void)
{
    struct resp r;
    char v[512];
    fetch_token(BP);
    write_req("POST", BP "A_BusinessPartner",
              "{\"BusinessPartnerCategory\":\"2\",\"OrganizationBPName1\":\"Test Käse GmbH\","
              "\"SearchTerm2\":\"001XX000003DHP0\","
              "\"to_BusinessPartnerAddress\":{\"results\":[{\"StreetName\":\"Leopoldstraße\","
              "\"HouseNumber\":\"12a\",\"PostalCode\":\"80802\",\"CityName\":\"München\","
              "\"Country\":\"DE\"}]},"
              "\"to_Customer\":{\"CreditLimit\":\"500.00\",\"to_CustomerSalesArea\":[{"
              "\"SalesOrganization\":\"1010\",\"DistributionChannel\":\"10\",\"Division\":"
              "\"00\",\"CustomerPaymentTerms\":\"NT30\"}]}}",
              NULL, &r);
    CHECK(r.status == 201, "deep insert %ld %s", r.status, body_text(&r));
    char bp[32];
    snprintf(bp, sizeof bp, "%s", str_at(d_of(&r), "BusinessPartner"));
    CHECK(bp[0] && strcmp(str_at(d_of(&r), "Customer"), bp) == 0, "customer number");
    json_t *addr = json_array_get(
        json_object_get(json_object_get(d_of(&r), "to_BusinessPartnerAddress"), "results"), 0);
    CHECK(strcmp(str_at(addr, "HouseNumber"), "12a") == 0, "address echoed");
    CHECK(strlen(str_at(addr, "AddressID")) > 0, "address id");
    json_t *csa = json_object_get(
        json_object_get(json_object_get(d_of(&r), "to_Customer"), "to_CustomerSalesArea"),
        "results");
    CHECK(json_array_size(csa) == 1, "nested children echoed");
    CHECK(header(&r, "Location", v, sizeof v) != NULL, "location");
    resp_free(&r);
    char p[256];
    snprintf(p, sizeof p, BP "A_BusinessPartner('%s')/to_BusinessPartnerAddress", bp);
    req(session, "GET", p, NULL, NULL, 1, &r);
    CHECK(results_len(&r) == 1, "address by nav");
    resp_free(&r);
    snprintf(p, sizeof p, BP "A_Customer('%s')/to_CustomerSalesArea", bp);
    req(session, "GET", p, NULL, NULL, 1, &r);
    CHECK(results_len(&r) == 1 &&
              strcmp(str_at(json_array_get(json_object_get(d_of(&r), "results"), 0),
                            "CustomerPaymentTerms"),
                     "NT30") == 0,
          "nested deep insert %s", body_text(&r));
    resp_free(&r);
    /* validation: 61 characters of StreetName */
    write_req("POST", BP "A_BusinessPartner",
              "{\"BusinessPartnerCategory\":\"2\",\"OrganizationBPName1\":\"Too Long\","
              "\"to_BusinessPartnerAddress\":[{\"Country\":\"DE\",\"StreetName\":"
              "\"1234567890123456789012345678901234567890123456789012345678901\"}]}",
              NULL, &r);
    CHECK(r.status == 400, "too long %ld", r.status);
    json_t *err = json_object_get(r.json, "error");
    CHECK(json_is_string(json_object_get(err, "code")), "code");
    CHECK(strcmp(str_at(json_object_get(err, "message"), "lang"), "en") == 0, "lang");
    CHECK(strstr(str_at(json_object_get(err, "message"), "value"), "StreetName") != NULL, "msg");
    json_t *det = json_object_get(json_object_get(err, "innererror"), "errordetails");
    CHECK(json_array_size(det) >= 1 &&
              strcmp(str_at(json_array_get(det, 0), "severity"), "error") == 0,
          "errordetails");
    resp_free(&r);

    fetch_token(SO);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"SalesOrderType\":\"OR\",\"SalesOrganization\":\"1010\",\"DistributionChannel\":"
             "\"10\",\"OrganizationDivision\":\"00\",\"SoldToParty\":\"%s\","
             "\"PurchaseOrderByCustomer\":\"PO-4711\",\"to_Item\":[{\"Material\":\"TG1001\","
             "\"RequestedQuantity\":\"100\",\"RequestedQuantityUnit\":\"PC\"}],"
             "\"to_Partner\":{\"results\":[{\"PartnerFunction\":\"WE\",\"Customer\":\"%s\"}]}}",
             bp, bp);
    write_req("POST", SO "A_SalesOrder", body, NULL, &r);
    CHECK(r.status == 201, "blocked order is still created: %ld %s", r.status, body_text(&r));
    char so[32];
    snprintf(so, sizeof so, "%s", str_at(d_of(&r), "SalesOrder"));
    CHECK(header(&r, "sap-message", v, sizeof v) && strstr(v, "\"severity\":\"warning\""),
          "sap-message");
    resp_free(&r);
    snprintf(p, sizeof p, SO "A_SalesOrder('%s')?$expand=to_Item", so);
    req(session, "GET", p, NULL, NULL, 1, &r);
    CHECK(strcmp(str_at(d_of(&r), "TotalCreditCheckStatus"), "B") == 0, "credit status %s",
          str_at(d_of(&r), "TotalCreditCheckStatus"));
    CHECK(strcmp(str_at(d_of(&r), "DeliveryBlockReason"), "01") == 0, "delivery block");
    CHECK(strtod(str_at(d_of(&r), "TotalNetAmount"), NULL) > 500, "priced %s",
          str_at(d_of(&r), "TotalNetAmount"));
    CHECK(json_array_size(json_object_get(json_object_get(d_of(&r), "to_Item"), "results")) == 1,
          "item stored");
    resp_free(&r);
    snprintf(p, sizeof p, SO "A_SalesOrder('%s')/to_Partner", so);
    req(session, "GET", p, NULL, NULL, 1, &r);
    CHECK(results_len(&r) == 1, "partner stored %s", body_text(&r));
    resp_free(&r);
    /* a customer with room: credit status A, no block */
    write_req("POST", SO "A_SalesOrder",
              "{\"SalesOrderType\":\"OR\",\"SalesOrganization\":\"1010\",\"SoldToParty\":"
              "\"10100001\",\"to_Item\":{\"results\":[{\"Material\":\"TG1002\","
              "\"RequestedQuantity\":\"1\"}]}}",
              NULL, &r);
    CHECK(r.status == 201, "%ld", r.status);
    CHECK(strcmp(str_at(d_of(&r), "TotalCreditCheckStatus"), "A") == 0, "credit ok");
    CHECK(strcmp(str_at(d_of(&r), "DeliveryBlockReason"), "") == 0, "no block");
    resp_free(&r);
    /* business error: unknown customer and material -> 400 with every reason */
    write_req("POST", SO "A_SalesOrder",
              "{\"SalesOrderType\":\"OR\",\"SalesOrganization\":\"1010\",\"SoldToParty\":\"999\","
              "\"to_Item\":[{\"Material\":\"NOPE\",\"RequestedQuantity\":\"1\"}]}",
              NULL, &r);
    CHECK(r.status == 400, "%ld", r.status);
    det = json_object_get(json_object_get(json_object_get(r.json, "error"), "innererror"),
                          "errordetails");
    CHECK(json_array_size(det) == 2, "two reasons %zu", json_array_size(det));
    resp_free(&r);
}

static void test_etag(void)
{
    struct resp r;
    char e1[256], e2[256];
    fetch_token(SO);
    req(session, "GET", SO "A_SalesOrder('7')", NULL, NULL, 1, &r);
    CHECK(header(&r, "ETag", e1, sizeof e1) && strncmp(e1, "W/\"", 3) == 0, "etag");
    CHECK(strcmp(str_at(json_object_get(d_of(&r), "__metadata"), "etag"), e1) == 0, "md etag");
    const char *before = str_at(d_of(&r), "LastChangeDateTime");
    long long t0 = strtoll(before + 6, NULL, 10);
    resp_free(&r);
    write_req("PATCH", SO "A_SalesOrder('7')", "{\"PurchaseOrderByCustomer\":\"PO-NEW\"}", NULL,
              &r);
    CHECK(r.status == 428, "no If-Match: %ld", r.status);
    resp_free(&r);
    write_req("PATCH", SO "A_SalesOrder('7')", "{\"PurchaseOrderByCustomer\":\"PO-NEW\"}", e1, &r);
    CHECK(r.status == 204, "patch: %ld %s", r.status, body_text(&r));
    CHECK(header(&r, "ETag", e2, sizeof e2) && strcmp(e1, e2) != 0, "new etag");
    resp_free(&r);
    write_req("MERGE", SO "A_SalesOrder('7')", "{\"PurchaseOrderByCustomer\":\"PO-OLD\"}", e1, &r);
    CHECK(r.status == 412, "stale: %ld", r.status);
    CHECK(strstr(body_text(&r), "\"error\"") != NULL, "error body");
    resp_free(&r);
    req(session, "GET", SO "A_SalesOrder('7')", NULL, NULL, 1, &r);
    CHECK(strcmp(str_at(d_of(&r), "PurchaseOrderByCustomer"), "PO-NEW") == 0, "kept");
    CHECK(strtoll(str_at(d_of(&r), "LastChangeDateTime") + 6, NULL, 10) > t0,
          "LastChangeDateTime moved");
    resp_free(&r);
    /* a change behind the client's back makes its ETag stale */
    CURL *admin = curl_easy_init();
    req(admin, "PATCH", "/__sandbox/records/A_SalesOrder/7", "{\"PurchaseOrderByCustomer\":\"X\"}",
        NULL, 0, &r);
    CHECK(r.status == 200, "behind back %ld %s", r.status, body_text(&r));
    resp_free(&r);
    write_req("PATCH", SO "A_SalesOrder('7')", "{\"PurchaseOrderByCustomer\":\"PO-3\"}", e2, &r);
    CHECK(r.status == 412, "stale after admin change: %ld", r.status);
    resp_free(&r);
    write_req("PATCH", SO "A_SalesOrder('7')", "{\"PurchaseOrderByCustomer\":\"PO-3\"}", "*", &r);
    CHECK(r.status == 204, "If-Match *: %ld", r.status);
    resp_free(&r);
    write_req("DELETE", BP "A_BusinessPartner('10100001')", NULL, "*", &r);
    CHECK(r.status == 405, "not deletable: %ld", r.status);
    resp_free(&r);
    curl_easy_cleanup(admin);
}

static void test_batch(void)
{
    struct resp r;
    char ct[256];
    fetch_token(PR);
    const char *ok = "--batch_1\r\n"
                     "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                     "GET A_Product('TG1001')?$select=Product HTTP/1.1\r\n"
                     "Accept: application/json\r\n\r\n\r\n"
                     "--batch_1\r\n"
                     "Content-Type: multipart/mixed; boundary=changeset_a\r\n\r\n"
                     "--changeset_a\r\n"
                     "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
                     "Content-ID: 1\r\n\r\n"
                     "POST A_Product HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                     "{\"Product\":\"BATCH-1\",\"ProductType\":\"FERT\",\"to_Description\":"
                     "[{\"Language\":\"EN\",\"ProductDescription\":\"From batch\"}]}\r\n"
                     "--changeset_a--\r\n\r\n"
                     "--batch_1--\r\n";
    char th[200];
    snprintf(th, sizeof th, "X-CSRF-Token: %s", token);
    const char *h[] = {th, "Content-Type: multipart/mixed; boundary=batch_1", NULL};
    req(session, "POST", PR "$batch", ok, h, 1, &r);
    CHECK(r.status == 202, "batch %ld %s", r.status, body_text(&r));
    CHECK(header(&r, "Content-Type", ct, sizeof ct) && strstr(ct, "multipart/mixed; boundary="),
          "ctype");
    CHECK(strstr(body_text(&r), "HTTP/1.1 200 OK") != NULL, "read part");
    CHECK(strstr(body_text(&r), "HTTP/1.1 201 Created") != NULL, "create part");
    CHECK(strstr(body_text(&r), "\"Product\":\"TG1001\"") != NULL, "read body");
    resp_free(&r);
    req(session, "GET", PR "A_Product('BATCH-1')/to_Description", NULL, NULL, 1, &r);
    CHECK(results_len(&r) == 1, "created through batch");
    resp_free(&r);
    /* the second write fails: the whole change set is rolled back */
    const char *bad = "--b2\r\n"
                      "Content-Type: multipart/mixed; boundary=cs2\r\n\r\n"
                      "--cs2\r\n"
                      "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                      "POST A_Product HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                      "{\"Product\":\"BATCH-2\",\"ProductType\":\"FERT\"}\r\n"
                      "--cs2\r\n"
                      "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                      "POST A_Product HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                      "{\"Product\":\"BATCH-3\",\"Bogus\":1}\r\n"
                      "--cs2--\r\n"
                      "--b2--\r\n";
    const char *h2[] = {th, "Content-Type: multipart/mixed; boundary=b2", NULL};
    req(session, "POST", PR "$batch", bad, h2, 1, &r);
    CHECK(r.status == 202, "batch %ld", r.status);
    CHECK(strstr(body_text(&r), "HTTP/1.1 400 Bad Request") != NULL, "changeset error %s",
          body_text(&r));
    CHECK(strstr(body_text(&r), "HTTP/1.1 201") == NULL, "no partial success");
    resp_free(&r);
    req(session, "GET", PR "A_Product('BATCH-2')", NULL, NULL, 1, &r);
    CHECK(r.status == 404, "rolled back: %ld", r.status);
    CHECK(strcmp(str_at(json_object_get(json_object_get(r.json, "error"), "message"), "lang"),
                 "en") == 0,
          "404 error body");
    resp_free(&r);
    /* Content-ID reference: an item for the order created in the same change set */
    const char *ref = "--b3\r\n"
                      "Content-Type: multipart/mixed; boundary=cs3\r\n\r\n"
                      "--cs3\r\n"
                      "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
                      "Content-ID: 1\r\n\r\n"
                      "POST A_SalesOrder HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                      "{\"SalesOrderType\":\"OR\",\"SalesOrganization\":\"1010\","
                      "\"SoldToParty\":\"10100002\",\"PurchaseOrderByCustomer\":\"PO-CID\","
                      "\"to_Item\":[{\"Material\":\"TG1001\",\"RequestedQuantity\":\"1\"}]}\r\n"
                      "--cs3\r\n"
                      "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
                      "Content-ID: 2\r\n\r\n"
                      "POST $1/to_Item HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                      "{\"SalesOrderItem\":\"20\",\"Material\":\"TG1002\","
                      "\"RequestedQuantity\":\"2\"}\r\n"
                      "--cs3--\r\n"
                      "--b3--\r\n";
    const char *h4[] = {th, "Content-Type: multipart/mixed; boundary=b3", NULL};
    req(session, "POST", SO "$batch", ref, h4, 1, &r);
    CHECK(r.status == 202, "batch %ld", r.status);
    const char *first201 = strstr(body_text(&r), "HTTP/1.1 201 Created");
    CHECK(first201 && strstr(first201 + 10, "HTTP/1.1 201 Created"), "two creates: %s",
          body_text(&r));
    resp_free(&r);
    req(session, "GET",
        SO "A_SalesOrder?$filter=PurchaseOrderByCustomer%20eq%20'PO-CID'&$expand=to_Item", NULL,
        NULL, 1, &r);
    json_t *o = json_array_get(json_object_get(d_of(&r), "results"), 0);
    json_t *its = json_object_get(json_object_get(o, "to_Item"), "results");
    CHECK(json_array_size(its) == 2, "item added through $1: %zu", json_array_size(its));
    double net = 0;
    size_t k;
    json_t *it;
    json_array_foreach(its, k, it)
    {
        net += strtod(str_at(it, "NetAmount"), NULL);
    }
    CHECK(net > 0 && strtod(str_at(o, "TotalNetAmount"), NULL) > net - 0.01 &&
              strtod(str_at(o, "TotalNetAmount"), NULL) < net + 0.01,
          "total %s vs items %.3f", str_at(o, "TotalNetAmount"), net);
    resp_free(&r);
    /* $batch needs the token too */
    const char *h3[] = {"Content-Type: multipart/mixed; boundary=batch_1", NULL};
    req(session, "POST", PR "$batch", ok, h3, 1, &r);
    CHECK(r.status == 403, "batch without token %ld", r.status);
    resp_free(&r);
}

static void test_faults_and_reset(void)
{
    struct resp r;
    char v[64];
    CURL *admin = curl_easy_init();
    req(admin, "POST", "/__sandbox/faults",
        "{\"route\":\"/sap/opu/odata/sap/API_PRODUCT_SRV/\",\"method\":\"GET\",\"rate_503\":1,"
        "\"retry_after\":7,\"count\":1}",
        NULL, 0, &r);
    CHECK(r.status == 200, "fault set %ld %s", r.status, body_text(&r));
    resp_free(&r);
    req(session, "GET", PR "A_Product('TG1001')", NULL, NULL, 1, &r);
    CHECK(r.status == 503, "injected %ld", r.status);
    CHECK(header(&r, "Retry-After", v, sizeof v) && strcmp(v, "7") == 0, "retry-after");
    CHECK(json_object_get(json_object_get(r.json, "error"), "innererror") != NULL, "SAP body");
    resp_free(&r);
    req(session, "GET", PR "A_Product('TG1001')", NULL, NULL, 1, &r);
    CHECK(r.status == 200, "after the counted fault %ld", r.status);
    resp_free(&r);
    req(admin, "POST", "/__sandbox/reset", "{\"seed\":\"none\"}", NULL, 0, &r);
    CHECK(r.status == 200, "reset %ld", r.status);
    resp_free(&r);
    req(session, "GET", PR "A_Product/$count", NULL, NULL, 1, &r);
    CHECK(r.status == 200 && strcmp(body_text(&r), "0") == 0, "empty after reset: %s",
          body_text(&r));
    resp_free(&r);
    curl_easy_cleanup(admin);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_sandbox_sap PATH/TO/erpsync-sandbox\n");
        return 2;
    }
    char dir[] = "/tmp/es_sbsap_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char db[256];
    snprintf(db, sizeof db, "%s/sap.db", dir);
    int out[2];
    if (pipe(out) != 0) {
        return 1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *args[] = {argv[1],  "sap",  "--listen", "127.0.0.1:0", "--db", db,
                    "--seed", "demo", "--quiet",  "--partners",  "5100", NULL};
    pid_t pid;
    if (posix_spawn(&pid, argv[1], &fa, NULL, args, environ) != 0) {
        perror("spawn");
        return 1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    if (!f || !fgets(line, sizeof line, f)) {
        fprintf(stderr, "sandbox did not start\n");
        kill(pid, SIGTERM);
        return 1;
    }
    const char *u = strstr(line, "http://");
    snprintf(base, sizeof base, "%.*s", u ? (int)strcspn(u, "\r\n") : 0, u ? u : "");
    fprintf(stderr, "sandbox at %s\n", base);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    session = curl_easy_init();
    curl_easy_setopt(session, CURLOPT_COOKIEFILE, "");

    test_auth_and_metadata();
    test_csrf();
    test_paging();
    test_query_options();
    test_deep_insert_and_credit();
    test_etag();
    test_batch();
    test_faults_and_reset();

    curl_easy_cleanup(session);
    curl_global_cleanup();
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    fclose(f);
    unlink(db);
    char p[300];
    snprintf(p, sizeof p, "%s-wal", db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", db);
    unlink(p);
    rmdir(dir);
    fprintf(stderr, "%d checks, %d failures; sandbox exit status %d\n", checks, failures,
            WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sandbox exit");
    return failures ? 1 : 0;
}
