/* SPDX-License-Identifier: MIT */
/*
 * State of the SAP emulator in one SQLite file: entities as JSON rows keyed by entity set
 * and key (with the first key value indexed for navigation), number ranges, CSRF sessions;
 * and the deterministic demo data (business partners with addresses in 14 countries,
 * customers with credit limits, products with descriptions, price conditions, stock per
 * plant and storage location, sales orders, billing documents with clearing status).
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "sap_int.h"

static sqlite3_stmt *st_get, *st_list, *st_listp, *st_put, *st_del, *st_nr_get, *st_nr_set;
static sqlite3_stmt *st_page, *st_pagep, *st_count, *st_countp;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS sap_ent(eset TEXT NOT NULL, k TEXT NOT NULL, p TEXT NOT NULL,"
    " data TEXT NOT NULL, PRIMARY KEY(eset, k));"
    "CREATE INDEX IF NOT EXISTS sap_ent_p ON sap_ent(eset, p);"
    "CREATE TABLE IF NOT EXISTS sap_nr(name TEXT PRIMARY KEY, next INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sap_csrf(sid TEXT PRIMARY KEY, token TEXT NOT NULL,"
    " created INTEGER NOT NULL);";

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK ? 0
                                                                                             : -1;
}

int sap_store_open(struct sap_ctx *c, const char *path, struct es_err *err)
{
    int rc = sb_db_open(path, &c->db, err);
    if (rc != ES_OK) {
        return rc;
    }
    rc = sb_db_exec(c->db, schema, err);
    if (rc != ES_OK) {
        return rc;
    }
    if (prep(c->db, "SELECT data FROM sap_ent WHERE eset=?1 AND k=?2", &st_get) ||
        prep(c->db, "SELECT data FROM sap_ent WHERE eset=?1", &st_list) ||
        prep(c->db, "SELECT data FROM sap_ent WHERE eset=?1 AND p=?2", &st_listp) ||
        prep(c->db, "INSERT OR REPLACE INTO sap_ent(eset,k,p,data) VALUES(?1,?2,?3,?4)", &st_put) ||
        prep(c->db, "DELETE FROM sap_ent WHERE eset=?1 AND k=?2", &st_del) ||
        prep(c->db, "SELECT data FROM sap_ent WHERE eset=?1 ORDER BY k LIMIT ?3 OFFSET ?2",
             &st_page) ||
        prep(c->db, "SELECT data FROM sap_ent WHERE eset=?1 AND p=?4 ORDER BY k LIMIT ?3 OFFSET ?2",
             &st_pagep) ||
        prep(c->db, "SELECT count(*) FROM sap_ent WHERE eset=?1", &st_count) ||
        prep(c->db, "SELECT count(*) FROM sap_ent WHERE eset=?1 AND p=?2", &st_countp) ||
        prep(c->db, "SELECT next FROM sap_nr WHERE name=?1", &st_nr_get) ||
        prep(c->db, "INSERT OR REPLACE INTO sap_nr(name,next) VALUES(?1,?2)", &st_nr_set)) {
        return es_err_set(err, ES_ESTORE, "sqlite: %s", sqlite3_errmsg(c->db));
    }
    return ES_OK;
}

int sap_store_clear(struct sap_ctx *c)
{
    return sb_db_exec(c->db, "DELETE FROM sap_ent; DELETE FROM sap_nr; DELETE FROM sap_csrf;",
                      NULL);
}

static json_t *row_json(sqlite3_stmt *st)
{
    const char *t = (const char *)sqlite3_column_text(st, 0);
    return t ? json_loads(t, 0, NULL) : NULL;
}

json_t *sap_get(struct sap_ctx *c, const struct sap_set *s, const char *key)
{
    (void)c;
    sqlite3_bind_text(st_get, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st_get, 2, key, -1, SQLITE_STATIC);
    json_t *e = sqlite3_step(st_get) == SQLITE_ROW ? row_json(st_get) : NULL;
    sqlite3_reset(st_get);
    return e;
}

json_t *sap_list(struct sap_ctx *c, const struct sap_set *s, const char *parent)
{
    (void)c;
    sqlite3_stmt *st = parent ? st_listp : st_list;
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    if (parent) {
        sqlite3_bind_text(st, 2, parent, -1, SQLITE_STATIC);
    }
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *e = row_json(st);
        if (e) {
            json_array_append_new(arr, e);
        }
    }
    sqlite3_reset(st);
    return arr;
}

json_t *sap_list_page(struct sap_ctx *c, const struct sap_set *s, const char *parent,
                      long long offset, long long limit)
{
    (void)c;
    sqlite3_stmt *st = parent ? st_pagep : st_page;
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, offset);
    sqlite3_bind_int64(st, 3, limit);
    if (parent) {
        sqlite3_bind_text(st, 4, parent, -1, SQLITE_STATIC);
    }
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *e = row_json(st);
        if (e) {
            json_array_append_new(arr, e);
        }
    }
    sqlite3_reset(st);
    return arr;
}

long long sap_count(struct sap_ctx *c, const struct sap_set *s, const char *parent)
{
    (void)c;
    sqlite3_stmt *st = parent ? st_countp : st_count;
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    if (parent) {
        sqlite3_bind_text(st, 2, parent, -1, SQLITE_STATIC);
    }
    long long n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return n;
}

int sap_put(struct sap_ctx *c, const struct sap_set *s, json_t *e)
{
    char *k = sap_key_str(s, e);
    json_t *first = json_object_get(e, sap_key(s, 0)->name);
    char pbuf[64];
    const char *p = json_string_value(first);
    if (!p) {
        snprintf(pbuf, sizeof pbuf, "%lld", (long long)json_integer_value(first));
        p = pbuf;
    }
    char *data = json_dumps(e, JSON_COMPACT);
    sqlite3_bind_text(st_put, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st_put, 2, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(st_put, 3, p, -1, SQLITE_STATIC);
    sqlite3_bind_text(st_put, 4, data, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st_put) == SQLITE_DONE ? 0 : -1;
    sqlite3_reset(st_put);
    (void)c;
    es_free(k);
    free(data); /* checksrc: ok */
    return rc;
}

int sap_del(struct sap_ctx *c, const struct sap_set *s, const char *key)
{
    sqlite3_bind_text(st_del, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st_del, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st_del) == SQLITE_DONE ? 0 : -1;
    sqlite3_reset(st_del);
    return rc == 0 && sqlite3_changes(c->db) > 0 ? 0 : -1;
}

long long sap_next_number(struct sap_ctx *c, const char *range, long long first)
{
    (void)c;
    long long n = first;
    sqlite3_bind_text(st_nr_get, 1, range, -1, SQLITE_STATIC);
    if (sqlite3_step(st_nr_get) == SQLITE_ROW) {
        n = sqlite3_column_int64(st_nr_get, 0);
    }
    sqlite3_reset(st_nr_get);
    sqlite3_bind_text(st_nr_set, 1, range, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st_nr_set, 2, n + 1);
    (void)sqlite3_step(st_nr_set);
    sqlite3_reset(st_nr_set);
    return n;
}

int sap_db_begin(struct sap_ctx *c, const char *savepoint)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SAVEPOINT %s", savepoint);
    return sb_db_exec(c->db, sql, NULL);
}

int sap_db_end(struct sap_ctx *c, const char *savepoint, int commit)
{
    char sql[160];
    if (commit) {
        snprintf(sql, sizeof sql, "RELEASE %s", savepoint);
    } else {
        snprintf(sql, sizeof sql, "ROLLBACK TO %s; RELEASE %s", savepoint, savepoint);
    }
    return sb_db_exec(c->db, sql, NULL);
}

/* ---- demo data ---- */

struct country {
    const char *code, *lang, *region, *tz, *currency;
    const char *cities[3];
    const char *postal[3];
    const char *streets[4];
};

static const struct country countries[] = {
    {"DE",
     "DE",
     "BY",
     "CET",
     "EUR",
     {"München", "Berlin", "Hamburg"},
     {"80331", "10115", "20095"},
     {"Leopoldstraße", "Hauptstraße", "Schillerstraße", "Am Sandtorkai"}},
    {"AT",
     "DE",
     "9",
     "CET",
     "EUR",
     {"Wien", "Graz", "Linz"},
     {"1010", "8010", "4020"},
     {"Mariahilfer Straße", "Herrengasse", "Landstraße", "Ringstraße"}},
    {"CH",
     "DE",
     "ZH",
     "CET",
     "CHF",
     {"Zürich", "Basel", "Bern"},
     {"8001", "4051", "3011"},
     {"Bahnhofstrasse", "Freie Strasse", "Marktgasse", "Seestrasse"}},
    {"FR",
     "FR",
     "75",
     "CET",
     "EUR",
     {"Paris", "Lyon", "Marseille"},
     {"75008", "69002", "13001"},
     {"Rue de Rivoli", "Avenue Jean Jaurès", "Boulevard Haussmann", "Rue de la République"}},
    {"NL",
     "NL",
     "NH",
     "CET",
     "EUR",
     {"Amsterdam", "Rotterdam", "Utrecht"},
     {"1012 AB", "3011 AA", "3511 LX"},
     {"Damrak", "Coolsingel", "Oudegracht", "Keizersgracht"}},
    {"BE",
     "NL",
     "BRU",
     "CET",
     "EUR",
     {"Bruxelles", "Antwerpen", "Gent"},
     {"1000", "2000", "9000"},
     {"Rue Neuve", "Meir", "Veldstraat", "Avenue Louise"}},
    {"IT",
     "IT",
     "MI",
     "CET",
     "EUR",
     {"Milano", "Roma", "Torino"},
     {"20121", "00184", "10121"},
     {"Via Dante", "Via del Corso", "Corso Vittorio Emanuele II", "Via Roma"}},
    {"ES",
     "ES",
     "28",
     "CET",
     "EUR",
     {"Madrid", "Barcelona", "Valencia"},
     {"28013", "08002", "46002"},
     {"Calle Mayor", "Gran Via", "Passeig de Gràcia", "Calle Colón"}},
    {"PL",
     "PL",
     "14",
     "CET",
     "PLN",
     {"Warszawa", "Kraków", "Gdańsk"},
     {"00-001", "31-001", "80-001"},
     {"ul. Marszałkowska", "ul. Floriańska", "ul. Długa", "Aleje Jerozolimskie"}},
    {"US",
     "EN",
     "CA",
     "PST",
     "USD",
     {"San Francisco", "New York", "Chicago"},
     {"94105", "10001", "60601"},
     {"Market Street", "Broadway", "Michigan Avenue", "Main Street"}},
    {"GB",
     "EN",
     "LND",
     "UTC",
     "GBP",
     {"London", "Manchester", "Edinburgh"},
     {"EC1A 1BB", "M1 1AE", "EH1 1YZ"},
     {"High Street", "Baker Street", "Deansgate", "Princes Street"}},
    {"CA",
     "EN",
     "ON",
     "EST",
     "CAD",
     {"Toronto", "Montréal", "Vancouver"},
     {"M5H 2N2", "H2Y 1C6", "V6B 1A1"},
     {"Bay Street", "Rue Sainte-Catherine", "Granville Street", "Yonge Street"}},
    {"AU",
     "EN",
     "NSW",
     "AUSNSW",
     "AUD",
     {"Sydney", "Melbourne", "Brisbane"},
     {"2000", "3000", "4000"},
     {"George Street", "Collins Street", "Queen Street", "Pitt Street"}},
    {"IE",
     "EN",
     "D",
     "UTC",
     "EUR",
     {"Dublin", "Cork", "Galway"},
     {"D02 X285", "T12 RR80", "H91 E2K3"},
     {"Grafton Street", "Patrick Street", "Shop Street", "O'Connell Street"}},
};

static const char *const name_a[] = {"Nord",  "Alpen", "Rhein", "Atlas", "Delta", "Vertex",
                                     "Orion", "Lumen", "Falke", "Cedar", "Polar", "Astra",
                                     "Kappa", "Merid", "Sigma", "Terra"};
static const char *const name_b[] = {"Maschinenbau", "Logistics",    "Retail", "Systems",
                                     "Handel",       "Technologies", "Foods",  "Pharma",
                                     "Energie",      "Components",   "Textil", "Software"};
static const char *const name_c[] = {"GmbH",   "AG",         "Ltd",  "Inc.",    "S.A.", "B.V.",
                                     "S.p.A.", "Sp. z o.o.", "SARL", "Pty Ltd", "KG",   "LLC"};
static const char *const prod_a[] = {"Steel", "Compact", "Precision", "Heavy-Duty", "Mini",
                                     "Smart", "Eco",     "Pro",       "Titan",      "Hydraulic"};
static const char *const prod_b[] = {"Pump",       "Valve",     "Bearing", "Sensor", "Gearbox",
                                     "Controller", "Cable Set", "Motor",   "Filter", "Bracket"};
static const char *const prod_de[] = {"Pumpe",     "Ventil",    "Lager", "Sensor", "Getriebe",
                                      "Steuerung", "Kabelsatz", "Motor", "Filter", "Halterung"};

#define SEED_T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY_MS  86400000LL

static unsigned lcg(unsigned *st)
{
    *st = *st * 1103515245u + 12345u;
    return (*st >> 8) & 0xFFFFFF;
}

static json_t *str(const char *fmt, long long v)
{
    char b[64];
    snprintf(b, sizeof b, fmt, v);
    return json_string(b);
}

static void put(struct sap_ctx *c, const char *set, json_t *e)
{
    (void)sap_put(c, sap_set_any(set), e);
    json_decref(e);
}

static const char *time_of(long long ms, char *buf, size_t cap)
{
    long long s = (ms / 1000) % 86400;
    snprintf(buf, cap, "PT%02lldH%02lldM%02lldS", s / 3600, s / 60 % 60, s % 60);
    return buf;
}

int sap_seed_demo(struct sap_ctx *c)
{
    unsigned rng = 20260101u;
    char b1[128], b2[64], tb[32];
    if (sb_db_exec(c->db, "BEGIN", NULL) != ES_OK) {
        return -1;
    }
    int nbp = c->partners;
    for (int i = 1; i <= nbp; i++) {
        const struct country *co = &countries[i % (int)ES_ARRAY_LEN(countries)];
        long long bp = 10100000LL + i;
        long long created = SEED_T0 - (long long)(lcg(&rng) % 700) * DAY_MS + (i % 86400) * 1000;
        long long changed = created + (long long)(lcg(&rng) % 60) * DAY_MS;
        snprintf(b1, sizeof b1, "%s %s %s", name_a[i % 16], name_b[(i / 16) % 12],
                 name_c[(i / 3) % 12]);
        snprintf(b2, sizeof b2, "%.20s", name_a[i % 16]);
        for (char *p = b2; *p; p++) {
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        }
        json_t *e = json_pack("{s:o,s:o,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "BusinessPartner",
                              str("%lld", bp), "Customer", str("%lld", bp), "Supplier", "",
                              "BusinessPartnerCategory", "2", "BusinessPartnerGrouping", "BP02",
                              "BusinessPartnerFullName", b1, "BusinessPartnerName", b1,
                              "OrganizationBPName1", b1, "SearchTerm1", b2, "SearchTerm2", "");
        char uuid[40];
        snprintf(uuid, sizeof uuid, "fa163e8d-%04x-1eda-a1b2-%012llx", (unsigned)(i & 0xffff), bp);
        json_object_set_new(e, "BusinessPartnerUUID", json_string(uuid));
        json_object_set_new(e, "CorrespondenceLanguage", json_string(co->lang));
        json_object_set_new(e, "Language", json_string(co->lang));
        json_object_set_new(e, "CreatedByUser", json_string("CB9980000123"));
        json_object_set_new(e, "CreationDate", json_integer(created / DAY_MS * DAY_MS));
        json_object_set_new(e, "CreationTime", json_string(time_of(created, tb, sizeof tb)));
        json_object_set_new(e, "LastChangeDate", json_integer(changed / DAY_MS * DAY_MS));
        json_object_set_new(e, "LastChangeTime", json_string(time_of(changed, tb, sizeof tb)));
        json_object_set_new(e, "LastChangedByUser", json_string("CB9980000123"));
        json_object_set_new(e, "Industry", json_string(i % 4 == 0 ? "0001" : "0003"));
        json_object_set_new(e, "LegalForm", json_string("01"));
        json_object_set_new(e, "IsMarkedForArchiving", json_false());
        json_object_set_new(e, "BusinessPartnerIsBlocked", json_false());
        json_object_set_new(e, "ETag", str("SBX%lld", changed));
        put(c, "A_BusinessPartner", e);

        const char *city = co->cities[i % 3];
        json_t *a = json_pack("{s:o,s:o,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:s}", "BusinessPartner",
                              str("%lld", bp), "AddressID", str("%lld", 30000LL + i), "CityName",
                              city, "Country", co->code, "PostalCode", co->postal[i % 3],
                              "HouseNumber", str("%lld", 1 + (long long)(lcg(&rng) % 180)),
                              "StreetName", co->streets[(i / 3) % 4], "Region", co->region,
                              "AddressTimeZone", co->tz, "Language", co->lang);
        json_object_set_new(a, "HouseNumberSupplementText", json_string(i % 9 == 0 ? "b" : ""));
        json_object_set_new(a, "StreetSuffixName",
                            json_string(i % 11 == 0 ? "Building C, 3rd floor" : ""));
        json_object_set_new(a, "ValidityStartDate", json_integer(created));
        json_object_set_new(a, "ValidityEndDate", json_integer(253402214400000LL));
        put(c, "A_BusinessPartnerAddress", a);

        put(c, "A_BusinessPartnerRole",
            json_pack("{s:o,s:s,s:I,s:I}", "BusinessPartner", str("%lld", bp),
                      "BusinessPartnerRole", "FLCU01", "ValidFrom", (json_int_t)created, "ValidTo",
                      (json_int_t)253402214400000LL));

        /* Every 10th customer has a low credit limit (credit-block demos); every 7th none. */
        char limit[32] = "";
        if (i % 10 == 0) {
            snprintf(limit, sizeof limit, "1000.00");
        } else if (i % 7 != 3) {
            snprintf(limit, sizeof limit, "%u.00", 50000u + (lcg(&rng) % 20) * 25000u);
        }
        json_t *cu = json_pack("{s:o,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Customer", str("%lld", bp),
                               "CustomerAccountGroup", "CUST", "CustomerName", b1,
                               "CustomerFullName", b1, "OrderIsBlockedForCustomer", "",
                               "DeliveryIsBlocked", "", "BillingIsBlockedForCustomer", "",
                               "PaymentTerms", i % 5 == 0 ? "NT60" : "NT30");
        json_object_set_new(cu, "CreditLimit", limit[0] ? json_string(limit) : json_null());
        json_object_set_new(cu, "CreditLimitCurrency", json_string(co->currency));
        json_object_set_new(cu, "CreationDate", json_integer(created / DAY_MS * DAY_MS));
        json_object_set_new(cu, "CreatedByUser", json_string("CB9980000123"));
        json_object_set_new(cu, "PostingIsBlocked", json_false());
        json_object_set_new(cu, "DeletionIndicator", json_false());
        json_object_set_new(cu, "VATRegistration",
                            str(co->code[0] == 'D' ? "DE%09lld" : "%lld", 100000000LL + bp));
        put(c, "A_Customer", cu);
    }
    (void)sap_next_number(c, "bp", 10100001LL + nbp);
    (void)sap_next_number(c, "addr", 30001LL + nbp);

    enum { NPROD = 200 };
    /* --products N above 200: the extra products have a description, no price or stock. */
    int nprod = c->products > NPROD ? c->products : NPROD;
    for (int i = 0; i < nprod; i++) {
        long long changed = SEED_T0 - (long long)(NPROD - i) * 3600000LL;
        char prod[16];
        snprintf(prod, sizeof prod, "TG%04d", 1000 + i);
        json_t *p = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Product", prod, "ProductType",
                              i % 10 == 0 ? "SERV" : "FERT", "CrossPlantStatus", "", "BaseUnit",
                              "PC", "ProductGroup", i % 2 ? "L001" : "L002", "Division", "00",
                              "ItemCategoryGroup", "NORM", "WeightUnit", "KG");
        snprintf(b1, sizeof b1, "%d.%03d", 1 + i % 40, (i * 137) % 1000);
        json_object_set_new(p, "GrossWeight", json_string(b1));
        snprintf(b1, sizeof b1, "%d.%03d", 1 + i % 40, (i * 91) % 1000 / 2);
        json_object_set_new(p, "NetWeight", json_string(b1));
        snprintf(b1, sizeof b1, "40%011d", 12345 + i * 7);
        json_object_set_new(p, "ProductStandardID", json_string(b1));
        json_object_set_new(p, "ProductOldID", json_string(""));
        json_object_set_new(p, "ProductHierarchy", json_string(""));
        json_object_set_new(p, "IsMarkedForDeletion", json_boolean(i % 50 == 49));
        json_object_set_new(p, "CreationDate", json_integer((SEED_T0 - 400 * DAY_MS)));
        json_object_set_new(p, "CreatedByUser", json_string("CB9980000123"));
        json_object_set_new(p, "LastChangeDate", json_integer(changed / DAY_MS * DAY_MS));
        json_object_set_new(p, "LastChangeDateTime", json_integer(changed));
        put(c, "A_Product", p);
        snprintf(b1, sizeof b1, "%s %s %d", prod_a[i % 10], prod_b[(i / 10) % 10], 10 + i);
        put(c, "A_ProductDescription",
            json_pack("{s:s,s:s,s:s}", "Product", prod, "Language", "EN", "ProductDescription",
                      b1));
        if (i >= NPROD) {
            continue;
        }
        snprintf(b1, sizeof b1, "%s %s %d", prod_a[i % 10], prod_de[(i / 10) % 10], 10 + i);
        put(c, "A_ProductDescription",
            json_pack("{s:s,s:s,s:s}", "Product", prod, "Language", "DE", "ProductDescription",
                      b1));
        if (i % 10 != 0) {
            put(c, "A_MaterialStock",
                json_pack("{s:s,s:s}", "Material", prod, "MaterialBaseUnit", "PC"));
            static const char *const locs[][2] = {
                {"1010", "101A"}, {"1010", "101B"}, {"1020", "102A"}};
            for (int l = 0; l < 3; l++) {
                for (int t = 0; t < (l == 0 ? 2 : 1); t++) {
                    snprintf(b1, sizeof b1, "%u.00000000000000",
                             t ? lcg(&rng) % 20 : lcg(&rng) % 900);
                    json_t *s = json_pack(
                        "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Material", prod,
                        "Plant", locs[l][0], "StorageLocation", locs[l][1], "Batch", "", "Supplier",
                        "", "Customer", "", "WBSElementInternalID", "00000000", "SDDocument", "",
                        "SDDocumentItem", "000000", "InventorySpecialStockType", "",
                        "InventoryStockType", t ? "02" : "01", "MaterialBaseUnit", "PC",
                        "MatlWrhsStkQtyInMatlBaseUnit", b1);
                    put(c, "A_MatlStkInAcctMod", s);
                }
            }
        }
        /* One PPR0 price per product for sales org 1010 / channel 10. */
        char rec[16];
        snprintf(rec, sizeof rec, "%010d", 1 + i);
        snprintf(b1, sizeof b1, "%d.%02d0000000", 5 + (i * 37) % 995, (i * 13) % 100);
        json_t *cr = json_pack(
            "{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:b,s:I}", "ConditionRecord", rec,
            "ConditionTable", "304", "ConditionApplication", "V", "ConditionType", "PPR0",
            "ConditionValidityStartDate", (json_int_t)(SEED_T0 - 365 * DAY_MS),
            "ConditionValidityEndDate", (json_int_t)253402214400000LL, "ConditionRateValue", b1,
            "ConditionRateValueUnit", "EUR", "ConditionQuantity", "1", "ConditionQuantityUnit",
            "PC", "ConditionIsDeleted", 0, "LastChangeDateTime", (json_int_t)changed);
        json_object_set_new(cr, "CreatedByUser", json_string("CB9980000123"));
        json_object_set_new(cr, "CreationDate", json_integer(SEED_T0 - 365 * DAY_MS));
        put(c, "A_SlsPrcgConditionRecord", cr);
        put(c, "A_SlsPrcgCndnRecdValidity",
            json_pack("{s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "ConditionRecord", rec,
                      "ConditionValidityEndDate", (json_int_t)253402214400000LL,
                      "ConditionValidityStartDate", (json_int_t)(SEED_T0 - 365 * DAY_MS),
                      "ConditionApplication", "V", "ConditionType", "PPR0", "SalesOrganization",
                      "1010", "DistributionChannel", "10", "Customer", "", "CustomerPriceGroup", "",
                      "Material", prod, "Plant", ""));
    }
    (void)sap_next_number(c, "cnd", NPROD + 1);

    enum { NSO = 300 };
    for (int i = 1; i <= NSO; i++) {
        int cust = 1 + (int)(lcg(&rng) % (unsigned)(nbp < 500 ? nbp : 500));
        if (cust % 10 == 0) {
            cust++;
        }
        long long t = SEED_T0 + (long long)i * 4 * 3600000LL;
        char so[16];
        snprintf(so, sizeof so, "%d", i);
        int nitems = 1 + i % 3;
        long long total_milli = 0;
        for (int k = 1; k <= nitems; k++) {
            int prod = (i * 7 + k * 13) % NPROD;
            int qty = 1 + (int)(lcg(&rng) % 20);
            long long price_cents = (5 + (prod * 37) % 995) * 100LL + (prod * 13) % 100;
            long long net_milli = price_cents * 10 * qty;
            total_milli += net_milli;
            char mat[16], net[32];
            snprintf(mat, sizeof mat, "TG%04d", 1000 + prod);
            snprintf(net, sizeof net, "%lld.%03lld", net_milli / 1000, net_milli % 1000);
            json_t *it = json_pack(
                "{s:s,s:o,s:s,s:s,s:o,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "SalesOrder", so,
                "SalesOrderItem", str("%lld", k * 10LL), "SalesOrderItemCategory", "TAN",
                "Material", mat, "RequestedQuantity", str("%lld.000", qty), "RequestedQuantityUnit",
                "PC", "NetAmount", net, "TransactionCurrency", "EUR", "ProductionPlant", "1010",
                "SDProcessStatus", i % 4 == 0 ? "C" : "A", "DeliveryStatus", i % 4 == 0 ? "C" : "A",
                "SalesOrderItemText", "");
            put(c, "A_SalesOrderItem", it);
        }
        char total[32];
        snprintf(total, sizeof total, "%lld.%03lld", total_milli / 1000, total_milli % 1000);
        json_t *o = json_pack(
            "{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "SalesOrder", so,
            "SalesOrderType", "OR", "SalesOrganization", "1010", "DistributionChannel", "10",
            "OrganizationDivision", "00", "SoldToParty", str("%lld", 10100000LL + cust),
            "TotalNetAmount", total, "TransactionCurrency", "EUR", "OverallSDProcessStatus",
            i % 4 == 0 ? "C" : "A", "TotalCreditCheckStatus", "A", "OverallTotalDeliveryStatus",
            i % 4 == 0 ? "C" : "A", "OverallSDDocumentRejectionSts", "A", "TotalBlockStatus", "",
            "OverallOrdReltdBillgStatus", "");
        snprintf(b1, sizeof b1, "PO-%05d", 40000 + i);
        json_object_set_new(o, "PurchaseOrderByCustomer", json_string(b1));
        json_object_set_new(o, "CreationDate", json_integer(t / DAY_MS * DAY_MS));
        json_object_set_new(o, "SalesOrderDate", json_integer(t / DAY_MS * DAY_MS));
        json_object_set_new(o, "LastChangeDate", json_integer(t / DAY_MS * DAY_MS));
        json_object_set_new(o, "LastChangeDateTime", json_integer(t));
        json_object_set_new(o, "CreatedByUser", json_string("CB9980000123"));
        json_object_set_new(o, "CustomerPaymentTerms", json_string("NT30"));
        json_object_set_new(o, "DeliveryBlockReason", json_string(""));
        json_object_set_new(o, "HeaderBillingBlockReason", json_string(""));
        put(c, "A_SalesOrder", o);

        /* Completed orders are billed; two thirds of the invoices are cleared. */
        if (i % 4 == 0) {
            char bd[16];
            snprintf(bd, sizeof bd, "%d", 90000000 + i);
            long long tax_milli = total_milli * 19 / 100;
            char tax[32], gross[32];
            snprintf(tax, sizeof tax, "%lld.%03lld", tax_milli / 1000, tax_milli % 1000);
            snprintf(gross, sizeof gross, "%lld.%03lld", (total_milli + tax_milli) / 1000,
                     (total_milli + tax_milli) % 1000);
            const char *clr = (i / 4) % 3 == 0 ? "A" : (i / 4) % 3 == 1 ? "C" : "C";
            if (i % 40 == 0) {
                clr = "B";
            }
            json_t *bdoc = json_pack(
                "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
                "BillingDocument", bd, "SDDocumentCategory", "M", "BillingDocumentCategory", "L",
                "BillingDocumentType", "F2", "SalesOrganization", "1010", "DistributionChannel",
                "10", "Division", "00", "TotalNetAmount", total, "TransactionCurrency", "EUR",
                "TaxAmount", tax, "TotalGrossAmount", gross, "CustomerPaymentTerms", "NT30",
                "CompanyCode", "1010", "FiscalYear", "2026", "OverallBillingStatus", "A",
                "AccountingPostingStatus", "C", "AccountingTransferStatus", "C");
            json_object_set_new(bdoc, "InvoiceClearingStatus", json_string(clr));
            json_object_set_new(bdoc, "SoldToParty", str("%lld", 10100000LL + cust));
            json_object_set_new(bdoc, "PayerParty", str("%lld", 10100000LL + cust));
            json_object_set_new(bdoc, "AccountingDocument", str("%lld", 9400000000LL + i));
            json_object_set_new(bdoc, "PaymentReference", json_string(""));
            json_object_set_new(bdoc, "BillingDocumentIsCancelled", json_false());
            json_object_set_new(bdoc, "CancelledBillingDocument", json_string(""));
            json_object_set_new(bdoc, "BillingDocumentDate",
                                json_integer((t + DAY_MS) / DAY_MS * DAY_MS));
            json_object_set_new(bdoc, "CreationDate", json_integer((t + DAY_MS) / DAY_MS * DAY_MS));
            json_object_set_new(bdoc, "LastChangeDate",
                                json_integer((t + 3 * DAY_MS) / DAY_MS * DAY_MS));
            json_object_set_new(bdoc, "LastChangeDateTime", json_integer(t + 3 * DAY_MS));
            put(c, "A_BillingDocument", bdoc);
            put(c, "A_BillingDocumentItem",
                json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "BillingDocument",
                          bd, "BillingDocumentItem", "10", "Material", "TG1000", "BillingQuantity",
                          "1.000", "BillingQuantityUnit", "PC", "NetAmount", total, "GrossAmount",
                          gross, "TaxAmount", tax, "TransactionCurrency", "EUR", "SalesDocument",
                          so, "SalesDocumentItem", "10", "ReferenceSDDocument", so));
        }
    }
    (void)sap_next_number(c, "so", NSO + 1);
    return sb_db_exec(c->db, "COMMIT", NULL) == ES_OK ? 0 : -1;
}
