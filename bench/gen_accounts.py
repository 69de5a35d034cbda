#!/usr/bin/env python3
"""Writes N Salesforce-like Account records as NDJSON, always the same bytes for the same N.

    python3 bench/gen_accounts.py 1000000 > accounts.ndjson

Each record has 32 fields (20 standard Account fields, 12 custom __c fields), about 1 KB:
a multi-line BillingStreet (house number present or not, optional second line), a country
name (one in a hundred is not in the country table), revenue with three decimals (or null),
ISO timestamps, picklist values, and some non-ASCII text. A fixed-seed PRNG and no clock,
locale or hash-order input make the output reproducible.
"""
import json
import random
import sys

COUNTRY_WEIGHTS = {"Germany": 30, "Austria": 8, "Switzerland": 8, "France": 10, "Italy": 8,
                   "Spain": 6, "Netherlands": 6, "United Kingdom": 10, "United States": 12,
                   "Poland": 1, "Atlantis": 1}
CITY = ["Berlin", "München", "Hamburg", "Köln", "Wien", "Zürich", "Paris", "Lyon", "Milano",
        "Madrid", "Amsterdam", "London", "New York", "Chicago", "Warszawa", "Düsseldorf",
        "Frankfurt am Main", "Saint-Rémy-de-Provence-sur-la-Côte-Méditerranéenne"]
STREET = ["Hauptstrasse", "Bahnhofstraße", "Am Markt", "Rue de la Paix", "Via Roma",
          "Calle Mayor", "Keizersgracht", "High Street", "Main St", "ulica Długa",
          "Industriepark Nord", "Broadway"]
SECOND_LINE = ["Gebaeude B", "3. OG", "c/o Einkauf", "Suite 400", "Postfach 1234", "Halle 7"]
COMPANY = ["Müller", "Schmidt", "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne",
           "Dupont", "Rossi", "García", "van Dijk", "Kowalski", "Smith"]
LEGAL_FORM = ["GmbH", "AG", "SE", "S.A.", "S.p.A.", "Ltd", "Inc.", "B.V.", "Sp. z o.o.",
              "GmbH & Co. KG", "Maschinenbau und Anlagentechnik GmbH & Co. KG Niederlassung Süd"]
INDUSTRY = ["Manufacturing", "Retail", "Banking", "Energy", "Healthcare", "Technology",
            "Chemicals", "Transportation", "Food & Beverage", "Construction"]
ACCOUNT_TYPE = ["Customer - Direct", "Customer - Channel", "Prospect", "Partner", "Other"]
TERMS = ["NT30", "NT45", "NT60", "2/10 NT30", "PREPAID"]
REGION = ["EMEA-North", "EMEA-South", "EMEA-Central", "NA-East", "NA-West"]
CURRENCY = ["EUR", "CHF", "GBP", "USD", "PLN"]
FILLER = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
          "incididunt ut labore et dolore magna aliqua key account strategic renewal").split()
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def record_id(prefix, n):
    """An 18-character id in Salesforce's shape, a pure function of n."""
    x = (n * 2654435761) % 62 ** 12
    tail = []
    for _ in range(12):
        x, d = divmod(x, 62)
        tail.append(BASE62[d])
    return prefix + "000" + "".join(tail)


def timestamp(rnd, first_year):
    return "%04d-%02d-%02dT%02d:%02d:%02d.000Z" % (
        first_year + rnd.randrange(5), rnd.randrange(1, 13), rnd.randrange(1, 29),
        rnd.randrange(24), rnd.randrange(60), rnd.randrange(60))


def account(rnd, n, countries, weights):
    street = rnd.choice(STREET)
    shape = rnd.randrange(10)
    if shape < 6:
        first = "%s %d" % (street, rnd.randrange(1, 300))
    elif shape < 8:
        first = "%s %d%s" % (street, rnd.randrange(1, 300), rnd.choice("abc"))
    else:
        first = street
    block = first + ("\n" + rnd.choice(SECOND_LINE) if rnd.randrange(3) else "")
    revenue = None if rnd.randrange(20) == 0 else round(rnd.uniform(1e4, 5e9), 3)
    phone = "+49 %d %d" % (rnd.randrange(30, 999), rnd.randrange(100000, 9999999))
    fax = None if rnd.randrange(2) else "+49 %d %d" % (rnd.randrange(30, 999),
                                                       rnd.randrange(100000, 9999999))
    return {
        "Id": record_id("001", n),
        "Name": "%s %s %d" % (rnd.choice(COMPANY), rnd.choice(LEGAL_FORM), n),
        "AccountNumber": "CRM-%08d" % n,
        "BillingStreet": block,
        "BillingCity": rnd.choice(CITY),
        "BillingPostalCode": "%05d" % rnd.randrange(1000, 99999),
        "BillingState": rnd.choice(["BY", "NRW", "HE", "ZH", "IDF", "CA", "NY", ""]),
        "BillingCountry": rnd.choices(countries, weights)[0],
        "Phone": phone,
        "Fax": fax,
        "Website": "https://www.example-%d.com" % (n % 5000),
        "Industry": rnd.choice(INDUSTRY),
        "AnnualRevenue": revenue,
        "NumberOfEmployees": rnd.randrange(1, 250000),
        "OwnerId": record_id("005", n % 997),
        "LastModifiedDate": timestamp(rnd, 2021),
        "CreatedDate": timestamp(rnd, 2015),
        "Type": rnd.choice(ACCOUNT_TYPE),
        "Rating": rnd.choice(["Hot", "Warm", "Cold"]),
        "Description": " ".join(rnd.choice(FILLER) for _ in range(rnd.randrange(8, 30))),
        "SAP_Customer_No__c": "%010d" % (1000000 + n),
        "Credit_Limit__c": rnd.randrange(2000) * 500,
        "Payment_Terms__c": rnd.choice(TERMS),
        "Region__c": rnd.choice(REGION),
        "Sales_Org__c": "%04d" % (1000 + 100 * rnd.randrange(5)),
        "Distribution_Channel__c": rnd.choice(["10", "20", "30"]),
        "Division__c": rnd.choice(["00", "01", "02"]),
        "VAT_Id__c": "DE%09d" % rnd.randrange(999999999),
        "Currency__c": rnd.choice(CURRENCY),
        "Customer_Group__c": rnd.choice(["01", "02", "03", "KA"]),
        "Is_Blocked__c": rnd.randrange(50) == 0,
        "Last_Sync__c": None if rnd.randrange(4) else timestamp(rnd, 2023),
    }


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rnd = random.Random(7340033)
    countries = list(COUNTRY_WEIGHTS)
    weights = [COUNTRY_WEIGHTS[c] for c in countries]
    chunk = []
    for n in range(total):
        chunk.append(json.dumps(account(rnd, n, countries, weights), ensure_ascii=False,
                                separators=(",", ":")))
        if len(chunk) == 5000:
            sys.stdout.write("\n".join(chunk) + "\n")
            chunk = []
    if chunk:
        sys.stdout.write("\n".join(chunk) + "\n")


if __name__ == "__main__":
    main()
