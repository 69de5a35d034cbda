/* SPDX-License-Identifier: MIT */
/*
 * Address conversion: street blocks as CRM users type them (one or more lines) split into
 * street, house number and supplement by country convention, and joined back. The cases are
 * shaped after real addresses in each country (public landmarks, typical forms).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "map/internal.h"

struct acase {
    const char *block;
    const char *country;
    const char *street;
    const char *number;
    const char *supplement;
};

static const struct acase cases[] = {
    /* Germany */
    {"Hauptstraße 12a", "DE", "Hauptstraße", "12a", ""},
    {"Unter den Linden 77", "DE", "Unter den Linden", "77", ""},
    {"Straße des 17. Juni 135", "DE", "Straße des 17. Juni", "135", ""},
    {"Friedrichstr. 123-125", "DE", "Friedrichstr.", "123-125", ""},
    {"Am Markt 1\nHinterhaus", "DE", "Am Markt", "1", "Hinterhaus"},
    {"c/o Müller GmbH\nBahnhofstraße 5", "DE", "Bahnhofstraße", "5", "c/o Müller GmbH"},
    {"Kurfürstendamm 21\n3. OG", "DE", "Kurfürstendamm", "21", "3. OG"},
    {"Musterweg 5 b", "DE", "Musterweg", "5 b", ""},
    {"Postfach 10 01 23", "DE", "", "", "Postfach 10 01 23"},
    {"Gebäude C\nIndustriestraße 40", "DE", "Industriestraße", "40", "Gebäude C"},
    {"Platz der Republik 1", "DE", "Platz der Republik", "1", ""},
    {"  Lindenallee 3  \r\n", "DE", "Lindenallee", "3", ""},
    /* Austria */
    {"Mariahilfer Straße 12/3/5", "AT", "Mariahilfer Straße", "12/3/5", ""},
    {"Stephansplatz 1\nTop 4", "AT", "Stephansplatz", "1", "Top 4"},
    {"Ringstraße 8 Stiege 2", "AT", "Ringstraße", "8", "Stiege 2"},
    /* Switzerland */
    {"Bahnhofstrasse 1", "CH", "Bahnhofstrasse", "1", ""},
    {"Rue du Rhône 48", "CH", "Rue du Rhône", "48", ""},
    {"Via Nassa 5\nc/o Studio Rossi", "CH", "Via Nassa", "5", "c/o Studio Rossi"},
    /* Netherlands */
    {"Keizersgracht 123-A", "NL", "Keizersgracht", "123-A", ""},
    {"Damrak 1", "NL", "Damrak", "1", ""},
    {"Prinsengracht 263 hs", "NL", "Prinsengracht", "263", "hs"},
    {"Coolsingel 40\nKamer 12", "NL", "Coolsingel", "40", "Kamer 12"},
    /* Belgium */
    {"Rue de la Loi 16", "BE", "Rue de la Loi", "16", ""},
    {"Rue Neuve 12 bte 3", "BE", "Rue Neuve", "12", "bte 3"},
    {"Meir 50 bus 2", "BE", "Meir", "50", "bus 2"},
    /* Italy */
    {"Via Roma, 10", "IT", "Via Roma", "10", ""},
    {"Via del Corso 123\nScala B", "IT", "Via del Corso", "123", "Scala B"},
    {"Piazza San Marco 1/B", "IT", "Piazza San Marco", "1/B", ""},
    {"Corso Vittorio Emanuele II 5 int 7", "IT", "Corso Vittorio Emanuele II", "5", "int 7"},
    /* Spain */
    {"Calle Mayor 15, 3º B", "ES", "Calle Mayor", "15", "3º B"},
    {"Paseo de la Castellana 259", "ES", "Paseo de la Castellana", "259", ""},
    {"Gran Via 28\nPlanta 4", "ES", "Gran Via", "28", "Planta 4"},
    {"Avenida Diagonal 640, piso 6", "ES", "Avenida Diagonal", "640", "piso 6"},
    /* Poland */
    {"ul. Marszałkowska 10/12", "PL", "ul. Marszałkowska", "10/12", ""},
    {"ul. Długa 5 m. 3", "PL", "ul. Długa", "5", "m. 3"},
    {"Aleje Jerozolimskie 65/79", "PL", "Aleje Jerozolimskie", "65/79", ""},
    /* Nordics, Portugal, Czechia */
    {"Drottninggatan 53", "SE", "Drottninggatan", "53", ""},
    {"Strøget 4, 2. sal", "DK", "Strøget", "4", "2. sal"},
    {"Avenida da Liberdade 110", "PT", "Avenida da Liberdade", "110", ""},
    {"Václavské náměstí 56", "CZ", "Václavské náměstí", "56", ""},
    /* United States */
    {"1600 Amphitheatre Parkway", "US", "Amphitheatre Parkway", "1600", ""},
    {"350 Fifth Avenue\nSuite 3300", "US", "Fifth Avenue", "350", "Suite 3300"},
    {"123 Main St Apt 4B", "US", "Main St", "123", "Apt 4B"},
    {"1 Infinite Loop, Suite 100", "US", "Infinite Loop", "1", "Suite 100"},
    {"Attn: Accounts Payable\n500 Oracle Pkwy", "US", "Oracle Pkwy", "500",
     "Attn: Accounts Payable"},
    {"P.O. Box 1234", "US", "", "", "P.O. Box 1234"},
    {"742 Evergreen Terrace #2", "US", "Evergreen Terrace", "742", "#2"},
    {"1200-B Market Street", "US", "Market Street", "1200-B", ""},
    {"Building 40\n1 Microsoft Way", "US", "Microsoft Way", "1", "Building 40"},
    /* United Kingdom */
    {"221B Baker Street", "GB", "Baker Street", "221B", ""},
    {"10 Downing Street", "GB", "Downing Street", "10", ""},
    {"Flat 3\n14 High Street", "GB", "High Street", "14", "Flat 3"},
    {"Flat 2, 45 Queen's Road", "GB", "Queen's Road", "45", "Flat 2"},
    {"Unit 7, 12 Canal Side", "UK", "Canal Side", "12", "Unit 7"},
    /* France */
    {"12 bis rue de la Paix", "FR", "rue de la Paix", "12 bis", ""},
    {"55, rue du Faubourg Saint-Honoré", "FR", "rue du Faubourg Saint-Honoré", "55", ""},
    {"8 avenue des Champs-Élysées\nBâtiment A", "FR", "avenue des Champs-Élysées", "8",
     "Bâtiment A"},
    {"3 ter boulevard Haussmann", "FR", "boulevard Haussmann", "3 ter", ""},
    /* Canada, Australia, Ireland */
    {"290 Bremner Blvd", "CA", "Bremner Blvd", "290", ""},
    {"1000 Rue De La Gauchetière O, Suite 2500", "CA", "Rue De La Gauchetière O", "1000",
     "Suite 2500"},
    {"Unit 5, 12 George St", "AU", "George St", "12", "Unit 5"},
    {"Bennelong Point\n2 Macquarie St", "AU", "Macquarie St", "2", "Bennelong Point"},
    {"1 Grand Canal Square\nDocklands", "IE", "Grand Canal Square", "1", "Docklands"},
    /* Data in the other convention than the country, and no country */
    {"Hauptstraße 5", "US", "Hauptstraße", "5", ""},
    {"350 Fifth Avenue", "DE", "Fifth Avenue", "350", ""},
    {"Hauptstraße 5", "", "Hauptstraße", "5", ""},
    {"221B Baker Street", NULL, "Baker Street", "221B", ""},
    {"Marktplatz", "DE", "Marktplatz", "", ""},
    {"", "DE", "", "", ""},
    /* The street line is the one with a number where the country puts it, not the first one */
    {"Level 5\n107 Queen Street", "AU", "Queen Street", "107", "Level 5"},
    {"Level 12, 1 Martin Place", "AU", "Martin Place", "1", "Level 12"},
    {"Lvl 3\n80 Collins Street", "AU", "Collins Street", "80", "Lvl 3"},
    {"Floor 3\n12 Market Street", "US", "Market Street", "12", "Floor 3"},
    {"Block 7 Room\n350 Fifth Avenue", "US", "Fifth Avenue", "350", "Block 7 Room"},
    {"Tower 2\n100 King Street West", "CA", "King Street West", "100", "Tower 2"},
    {"3e verdieping\nKeizersgracht 12", "NL", "Keizersgracht", "12", "3e verdieping"},
    {"Haus 4\nHauptstraße 5", "DE", "Hauptstraße", "5", "Haus 4"},
    {"Apt 2B\n55 Water Street", "US", "Water Street", "55", "Apt 2B"},
    /* Labelled numbers; India: "Plot No. 11" is the number part of the street line */
    {"Plot No. 11, Anna Salai\nFloor 2, Tower B", "IN", "Anna Salai", "11", "Floor 2, Tower B"},
    {"Plot No. 11, Anna Salai\nTeynampet", "IN", "Anna Salai", "11", "Teynampet"},
    {"Door No. 4, MG Road", "IN", "MG Road", "4", ""},
    {"No. 7 Brigade Road", "IN", "Brigade Road", "7", ""},
    {"H.No. 8-2-293, Road No. 82", "IN", "Road No. 82", "8-2-293", ""},
    {"12 MG Road\nFloor 3, Tower B", "IN", "MG Road", "12", "Floor 3, Tower B"},
    {"Floor 3, Tower B\nPlot No. 12, Connaught Place", "IN", "Connaught Place", "12",
     "Floor 3, Tower B"},
    {"Plot No. 11, Anna Salai", "", "Anna Salai", "11", ""},
    {"Plot No. 11, Anna Salai", "DE", "Anna Salai", "11", ""},
    {"Plot No. 11, Anna Salai, Teynampet", "IN", "Anna Salai", "11", "Teynampet"},
    {"8181 No. 3 Road", "CA", "No. 3 Road", "8181", ""},
    {"12 Level Street", "AU", "Level Street", "12", ""},
    {"Hauptstraße Nr. 5", "DE", "Hauptstraße", "5", ""},
    {"Calle Mayor Nº 5", "ES", "Calle Mayor", "5", ""},
    /* The Salesforce sandbox's demo seed (sandbox/sf_seed.c), one per country */
    {"Hauptstraße 17\n3. OG", "DE", "Hauptstraße", "17", "3. OG"},
    {"12 rue de la Paix\nBâtiment C", "FR", "rue de la Paix", "12", "Bâtiment C"},
    {"101 Market Street\nSuite 400", "US", "Market Street", "101", "Suite 400"},
    {"Flat 2\n45 King's Road", "GB", "King's Road", "45", "Flat 2"},
    {"1-3-17 Marunouchi\n5F", "JP", "Marunouchi", "1-3-17", "5F"},
    {"Via Garibaldi 88\nScala D", "IT", "Via Garibaldi", "88", "Scala D"},
    {"Avenida de la Constitución, 20\n2º Izq.", "ES", "Avenida de la Constitución", "20",
     "2º Izq."},
    {"Lange Voorhout 9\n4e verdieping", "NL", "Lange Voorhout", "9", "4e verdieping"},
    {"Rua XV de Novembro, 150\nConj. 701", "BR", "Rua XV de Novembro", "150", "Conj. 701"},
    {"Plot No. 180, Connaught Place\nFloor 9, Tower B", "IN", "Connaught Place", "180",
     "Floor 9, Tower B"},
    {"Level 8\n33 Hay Street", "AU", "Hay Street", "33", "Level 8"},
    {"Freie Strasse 3\n1. Stock", "CH", "Freie Strasse", "3", "1. Stock"},
};

static void test_split_cases(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct acase *c = &cases[i];
        const char *parts[3] = {c->street, c->number, c->supplement};
        for (int p = 0; p < 3; p++) {
            struct es_buf b;
            es_buf_init(&b, 0);
            es_addr_split(c->block, strlen(c->block), c->country,
                          c->country ? strlen(c->country) : 0, (enum es_addr_part)p, &b);
            const char *got = b.data ? b.data : "";
            if (strcmp(got, parts[p]) != 0) {
                print_message("case %zu [%s] %s part %d: got '%s', want '%s'\n", i, c->block,
                              c->country ? c->country : "-", p, got, parts[p]);
                bad++;
            }
            es_buf_release(&b);
        }
    }
    assert_int_equal(bad, 0);
    assert_true(sizeof cases / sizeof cases[0] >= 60);
}

struct jcase {
    const char *street, *number, *supplement, *country, *want;
};

static const struct jcase joins[] = {
    {"Hauptstraße", "12a", NULL, "DE", "Hauptstraße 12a"},
    {"Baker Street", "221B", NULL, "GB", "221B Baker Street"},
    {"Fifth Avenue", "350", "Suite 3300", "US", "350 Fifth Avenue\nSuite 3300"},
    {"rue de la Paix", "12 bis", NULL, "FR", "12 bis rue de la Paix"},
    {"Keizersgracht", "123-A", "2 hoog", "NL", "Keizersgracht 123-A\n2 hoog"},
    {"Marktplatz", NULL, NULL, "DE", "Marktplatz"},
    {"George St", "12", "Unit 5", "AU", "12 George St\nUnit 5"},
    {NULL, NULL, "c/o Acme", "DE", "c/o Acme"},
    {"Anna Salai", "11", "Floor 2, Tower B", "IN", "11 Anna Salai\nFloor 2, Tower B"},
};

static void test_join_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof joins / sizeof joins[0]; i++) {
        const struct jcase *c = &joins[i];
        struct es_buf b;
        es_buf_init(&b, 0);
        es_addr_join(c->street, c->street ? strlen(c->street) : 0, c->number,
                     c->number ? strlen(c->number) : 0, c->supplement,
                     c->supplement ? strlen(c->supplement) : 0, c->country, strlen(c->country), &b);
        assert_string_equal(b.data ? b.data : "", c->want);
        es_buf_release(&b);
    }
}

/* Split then join gives back the block (for tidy single-line blocks). */
static void test_round_trip(void **state)
{
    (void)state;
    static const char *const blocks[][2] = {{"Hauptstraße 12a", "DE"},
                                            {"221B Baker Street", "GB"},
                                            {"Via Roma 10", "IT"},
                                            {"1600 Amphitheatre Parkway", "US"},
                                            {"Keizersgracht 123-A", "NL"}};
    for (size_t i = 0; i < 5; i++) {
        const char *blk = blocks[i][0], *cc = blocks[i][1];
        struct es_buf s, n, j;
        es_buf_init(&s, 0);
        es_buf_init(&n, 0);
        es_buf_init(&j, 0);
        es_addr_split(blk, strlen(blk), cc, 2, ES_ADDR_STREET, &s);
        es_addr_split(blk, strlen(blk), cc, 2, ES_ADDR_HOUSE_NUMBER, &n);
        es_addr_join(s.data, s.len, n.data, n.len, NULL, 0, cc, 2, &j);
        assert_string_equal(j.data, blk);
        es_buf_release(&s);
        es_buf_release(&n);
        es_buf_release(&j);
    }
    assert_true(es_addr_number_first("us", 2));
    assert_false(es_addr_number_first("DE", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_cases),
        cmocka_unit_test(test_join_cases),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
