/* SPDX-License-Identifier: MIT */
/*
 * Salesforce emulator: the demo data set, generated deterministically (a fixed linear
 * congruential sequence, no clock): 3,000 Accounts in 12 countries whose multi-line
 * BillingStreet follows each country's convention, a Contact for every third Account,
 * 120 Products, the Standard Price Book and a EUR price book with entries, and some
 * Opportunities. Records go through the normal create path, so they pass validation.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "sf_int.h"

#define SEED_PRODUCTS 120

struct country {
    const char *name, *code;
    const char *cities[4];
    const char *states[4];
    const char *streets[4];
    const char *fmt;   /* street line: %1 number, %2 street */
    const char *line2; /* second line, %d */
    const char *postal;
    const char *phone;
};

/* fmt uses the order (number, street) or (street, number) through a flag in postal[0]. */
static const struct country countries[] = {
    {"Germany",
     "DE",
     {"Berlin", "Hamburg", "München", "Köln"},
     {"BE", "HH", "BY", "NW"},
     {"Hauptstraße", "Bahnhofstraße", "Friedrichstraße", "Lindenallee"},
     "S N",
     "%d. OG",
     "#####",
     "+49 30 %07d"},
    {"France",
     "FR",
     {"Paris", "Lyon", "Marseille", "Toulouse"},
     {"", "", "", ""},
     {"rue de la Paix", "avenue Victor Hugo", "boulevard Haussmann", "rue du Faubourg"},
     "N S",
     "Bâtiment %c",
     "#####",
     "+33 1 %08d"},
    {"United States",
     "US",
     {"San Francisco", "New York", "Chicago", "Austin"},
     {"CA", "NY", "IL", "TX"},
     {"Market Street", "Broadway", "Michigan Avenue", "Congress Ave"},
     "N S",
     "Suite %d00",
     "#####",
     "+1 415 %07d"},
    {"United Kingdom",
     "GB",
     {"London", "Manchester", "Edinburgh", "Bristol"},
     {"", "", "", ""},
     {"Baker Street", "King's Road", "Princes Street", "Park Row"},
     "N S",
     "Flat %d",
     "AA# #AA",
     "+44 20 %08d"},
    {"Japan",
     "JP",
     {"Tokyo", "Osaka", "Yokohama", "Nagoya"},
     {"Tokyo", "Osaka", "Kanagawa", "Aichi"},
     {"Marunouchi", "Umeda", "Minatomirai", "Sakae"},
     "J S",
     "%dF",
     "###-####",
     "+81 3 %08d"},
    {"Italy",
     "IT",
     {"Milano", "Roma", "Torino", "Bologna"},
     {"MI", "RM", "TO", "BO"},
     {"Via Roma", "Corso Italia", "Via Garibaldi", "Viale Europa"},
     "S N",
     "Scala %c",
     "#####",
     "+39 02 %08d"},
    {"Spain",
     "ES",
     {"Madrid", "Barcelona", "Valencia", "Sevilla"},
     {"M", "B", "V", "SE"},
     {"Calle Mayor", "Gran Via", "Calle de Alcalá", "Avenida de la Constitución"},
     "S, N",
     "%dº Izq.",
     "#####",
     "+34 91 %07d"},
    {"Netherlands",
     "NL",
     {"Amsterdam", "Rotterdam", "Utrecht", "Den Haag"},
     {"", "", "", ""},
     {"Keizersgracht", "Coolsingel", "Oudegracht", "Lange Voorhout"},
     "S N",
     "%de verdieping",
     "#### AA",
     "+31 20 %07d"},
    {"Brazil",
     "BR",
     {"São Paulo", "Rio de Janeiro", "Curitiba", "Recife"},
     {"SP", "RJ", "PR", "PE"},
     {"Av. Paulista", "Rua das Laranjeiras", "Rua XV de Novembro", "Av. Boa Viagem"},
     "S, N",
     "Conj. %d01",
     "#####-###",
     "+55 11 %08d"},
    {"India",
     "IN",
     {"Mumbai", "Bengaluru", "New Delhi", "Chennai"},
     {"MH", "KA", "DL", "TN"},
     {"MG Road", "Brigade Road", "Connaught Place", "Anna Salai"},
     "Plot No. N, S",
     "Floor %d, Tower B",
     "######",
     "+91 22 %08d"},
    {"Australia",
     "AU",
     {"Sydney", "Melbourne", "Brisbane", "Perth"},
     {"NSW", "VIC", "QLD", "WA"},
     {"George Street", "Collins Street", "Queen Street", "Hay Street"},
     "N S",
     "Level %d",
     "####",
     "+61 2 %08d"},
    {"Switzerland",
     "CH",
     {"Zürich", "Genève", "Basel", "Bern"},
     {"ZH", "GE", "BS", "BE"},
     {"Bahnhofstrasse", "Rue du Rhône", "Freie Strasse", "Marktgasse"},
     "S N",
     "%d. Stock",
     "####",
     "+41 44 %07d"},
};

static const char *name_a[] = {"Nordic", "Alpine",  "Pacific", "Atlas",  "Vertex", "Summit",
                               "Harbor", "Quantum", "Golden",  "Silver", "Iron",   "Blue",
                               "Green",  "Royal",   "United",  "Global", "Prime",  "Delta"};
static const char *name_b[] = {"Industries", "Trading",  "Logistics", "Systems", "Foods",
                               "Machinery",  "Textiles", "Pharma",    "Energy",  "Retail",
                               "Components", "Tools",    "Chemicals", "Media",   "Motors"};
static const char *forms[] = {"GmbH", "SAS",  "Inc.",  "Ltd",       "K.K.",    "S.p.A.",
                              "S.L.", "B.V.", "Ltda.", "Pvt. Ltd.", "Pty Ltd", "AG"};
static const char *first_names[] = {"Anna", "Luca",  "Sofia", "Jonas", "Maria",  "Kenji",
                                    "Emma", "Rahul", "Chloé", "Pedro", "Olivia", "Lars"};
static const char *last_names[] = {"Müller",   "Rossi", "García", "Martin", "Smith",  "Tanaka",
                                   "de Vries", "Silva", "Sharma", "Brown",  "Keller", "Dubois"};

static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void postal(const char *pat, uint32_t *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; *pat && i + 1 < cap; pat++, i++) {
        /* no postal code starts with 0 here (the Dutch and Swiss ones never do) */
        out[i] = *pat == '#'   ? (char)('0' + (i == 0 ? 1 + rnd(s) % 9 : rnd(s) % 10))
                 : *pat == 'A' ? (char)('A' + rnd(s) % 26)
                               : *pat;
    }
    out[i] = '\0';
}

static void street(const struct country *k, int city, uint32_t *s, char *out, size_t cap)
{
    const char *st = k->streets[city]; /* the streets are listed city by city */
    int num = (int)(rnd(s) % 180) + 1;
    char l1[160], l2[80];
    char num_s[16];
    snprintf(num_s, sizeof num_s, "%d", num);
    if (strcmp(k->fmt, "J S") == 0) {
        snprintf(l1, sizeof l1, "%d-%d-%d %s", (int)(rnd(s) % 5) + 1, (int)(rnd(s) % 9) + 1,
                 num % 20 + 1, st);
    } else if (strcmp(k->fmt, "S N") == 0) {
        snprintf(l1, sizeof l1, "%s %s", st, num_s);
    } else if (strcmp(k->fmt, "S, N") == 0) {
        snprintf(l1, sizeof l1, "%s, %s", st, num_s);
    } else if (strcmp(k->fmt, "Plot No. N, S") == 0) {
        snprintf(l1, sizeof l1, "Plot No. %s, %s", num_s, st);
    } else {
        snprintf(l1, sizeof l1, "%s %s", num_s, st);
    }
    if (strstr(k->line2, "%c")) {
        snprintf(l2, sizeof l2, k->line2, 'A' + (int)(rnd(s) % 4));
    } else {
        snprintf(l2, sizeof l2, k->line2, (int)(rnd(s) % 9) + 1);
    }
    /* the UK and Australia put the flat/level first */
    if (strcmp(k->code, "GB") == 0 || strcmp(k->code, "AU") == 0) {
        snprintf(out, cap, "%s\n%s", l2, l1);
    } else {
        snprintf(out, cap, "%s\n%s", l1, l2);
    }
}

static int create(struct sf_ctx *c, const char *obj, json_t *rec, char id[19], struct es_err *err)
{
    json_t *errs = json_array();
    int rc = sf_rec_create(c, sf_obj(c, obj), rec, 1, "sandbox/seed", id, errs);
    if (rc != 0) {
        es_err_set(err, ES_EINTERNAL, "seed %s: %s", obj,
                   json_string_value(json_object_get(json_array_get(errs, 0), "message")));
    }
    json_decref(errs);
    json_decref(rec);
    return rc ? ES_EINTERNAL : ES_OK;
}

int sf_seed_demo(struct sf_ctx *c, struct es_err *err)
{
    uint32_t s = 20261127u;
    char id[19], std_pb[19], eu_pb[19];
    int rc = sb_db_exec(c->db, "BEGIN", err);
    if (rc) {
        return rc;
    }
    const int SEED_ACCOUNTS = c->seed_accounts > 0 ? c->seed_accounts : 3000;
    char **acct = es_xcalloc((size_t)SEED_ACCOUNTS, sizeof *acct);
    for (int i = 0; i < SEED_ACCOUNTS && !rc; i++) {
        const struct country *k = &countries[i % ES_ARRAY_LEN(countries)];
        int city = (int)(rnd(&s) % 4);
        char name[200], str[200], pc[24], phone[40];
        snprintf(name, sizeof name, "%s %s %s %04d", name_a[rnd(&s) % ES_ARRAY_LEN(name_a)],
                 name_b[rnd(&s) % ES_ARRAY_LEN(name_b)], forms[i % ES_ARRAY_LEN(forms)], i + 1);
        street(k, city, &s, str, sizeof str);
        postal(k->postal, &s, pc, sizeof pc);
        snprintf(phone, sizeof phone, k->phone, (int)(rnd(&s) % 9000000) + 1000000);
        json_t *a = json_pack(
            "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:f}", "Name", name, "BillingStreet", str,
            "BillingCity", k->cities[city], "BillingPostalCode", pc, "BillingCountry", k->name,
            "Phone", phone, "Type", i % 5 ? "Customer - Direct" : "Prospect", "Industry",
            i % 3 ? "Manufacturing" : "Retail", "NumberOfEmployees", (int)(rnd(&s) % 5000) + 5,
            "AnnualRevenue", (double)(rnd(&s) % 90000 + 100) * 1000.0);
        if (k->states[city][0]) {
            json_object_set_new(a, "BillingState", json_string(k->states[city]));
        }
        char accno[16];
        snprintf(accno, sizeof accno, "CUST-%05d", i + 1);
        json_object_set_new(a, "AccountNumber", json_string(accno));
        rc = create(c, "Account", a, id, err);
        acct[i] = es_xstrdup(id);
        if (!rc && i % 3 == 0) {
            const char *fn = first_names[rnd(&s) % ES_ARRAY_LEN(first_names)];
            const char *ln = last_names[rnd(&s) % ES_ARRAY_LEN(last_names)];
            char email[120];
            snprintf(email, sizeof email, "contact%d@example.com", i + 1);
            rc = create(c, "Contact",
                        json_pack("{s:s,s:s,s:s,s:s,s:s}", "FirstName", fn, "LastName", ln, "Email",
                                  email, "AccountId", id, "MailingCountry", k->name),
                        id, err);
        }
    }
    if (!rc) {
        rc = create(c, "Pricebook2",
                    json_pack("{s:s,s:b}", "Name", "Standard Price Book", "IsActive", 1), std_pb,
                    err);
        /* the standard book is read-only through the API; the seed marks it directly */
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(c->db,
                           "UPDATE rec SET data=json_set(data,'$.IsStandard',json('true')) "
                           "WHERE id=?1",
                           -1, &st, NULL);
        sqlite3_bind_text(st, 1, std_pb, -1, SQLITE_STATIC);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (!rc) {
        rc = create(c, "Pricebook2",
                    json_pack("{s:s,s:b,s:s}", "Name", "EU Price Book 2026", "IsActive", 1,
                              "Description", "Euro list prices"),
                    eu_pb, err);
    }
    static const char *families[] = {"Hardware", "Software", "Services", "Spare Parts"};
    static const char *kinds[] = {"Pump", "Valve", "Sensor", "Controller", "Motor", "Gearbox"};
    for (int i = 0; i < SEED_PRODUCTS && !rc; i++) {
        char name[120], code[32], prod[19];
        snprintf(name, sizeof name, "%s %s-%03d", kinds[i % 6], i % 2 ? "Pro" : "Eco", i + 1);
        snprintf(code, sizeof code, "P-%05d", 10000 + i);
        rc = create(c, "Product2",
                    json_pack("{s:s,s:s,s:s,s:b,s:s}", "Name", name, "ProductCode", code, "Family",
                              families[i % 4], "IsActive", 1, "QuantityUnitOfMeasure", "Each"),
                    prod, err);
        double price = (double)(rnd(&s) % 200000 + 500) / 100.0;
        if (!rc) {
            rc = create(c, "PricebookEntry",
                        json_pack("{s:s,s:s,s:f,s:b}", "Pricebook2Id", std_pb, "Product2Id", prod,
                                  "UnitPrice", price, "IsActive", 1),
                        id, err);
        }
        if (!rc) {
            rc = create(c, "PricebookEntry",
                        json_pack("{s:s,s:s,s:f,s:b,s:s}", "Pricebook2Id", eu_pb, "Product2Id",
                                  prod, "UnitPrice", price * 0.92, "IsActive", 1, "CurrencyIsoCode",
                                  "EUR"),
                        id, err);
        }
    }
    static const char *stages[] = {"Prospecting",        "Qualification", "Proposal/Price Quote",
                                   "Negotiation/Review", "Closed Won",    "Closed Lost"};
    for (int i = 0; i < 300 && !rc; i++) {
        char name[120], date[16];
        snprintf(name, sizeof name, "Deal %04d", i + 1);
        snprintf(date, sizeof date, "2026-%02d-%02d", i % 12 + 1, i % 28 + 1);
        rc = create(c, "Opportunity",
                    json_pack("{s:s,s:s,s:s,s:s,s:f,s:s}", "Name", name, "AccountId",
                              acct[(i * 7) % SEED_ACCOUNTS], "StageName", stages[i % 6],
                              "CloseDate", date, "Amount", (double)(rnd(&s) % 100000) + 1000.0,
                              "Pricebook2Id", std_pb),
                    id, err);
    }
    for (int i = 0; i < SEED_ACCOUNTS; i++) {
        es_free(acct[i]);
    }
    es_free(acct);
    if (rc) {
        sb_db_exec(c->db, "ROLLBACK", NULL);
        return rc;
    }
    return sb_db_exec(c->db, "COMMIT", err);
}
