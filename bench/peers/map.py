#!/usr/bin/env python3
"""Peer of bench/map_bench.yaml in Python (stdlib json): NDJSON stdin -> NDJSON stdout."""
import json
import re
import sys

COUNTRY = {"Germany": "DE", "Austria": "AT", "Switzerland": "CH", "France": "FR", "Italy": "IT",
           "Spain": "ES", "Netherlands": "NL", "United Kingdom": "GB", "United States": "US",
           "Poland": "PL"}
NUMBER_LAST = re.compile(r"^(.*\S)\s+([0-9]+[A-Za-z]?)$")


def two_places(x):
    if x is None:
        return None
    cents = int(x * 100 + 0.5) if x >= 0 else -int(-x * 100 + 0.5)
    return "%d.%02d" % (cents // 100, cents % 100)


def convert(a):
    lines = (a.get("BillingStreet") or "").split("\n")
    m = NUMBER_LAST.match(lines[0])
    g = a.get
    return {
        "CustomerNumber": g("SAP_Customer_No__c"), "ExternalId": g("Id"),
        "Name1": (g("Name") or "")[:40], "SearchTerm": g("AccountNumber"),
        "StreetName": m.group(1) if m else lines[0], "HouseNumber": m.group(2) if m else "",
        "AddressLine2": "\n".join(lines[1:]) if len(lines) > 1 else None,
        "PostalCode": g("BillingPostalCode"), "City": g("BillingCity"),
        "Region": g("BillingState"), "CountryCode": COUNTRY.get(g("BillingCountry") or ""),
        "Telephone": g("Phone"), "Fax": g("Fax"), "Homepage": g("Website"),
        "IndustryKey": g("Industry"), "AnnualSales": two_places(g("AnnualRevenue")),
        "Employees": g("NumberOfEmployees"), "AccountManager": g("OwnerId"),
        "ChangedOn": (g("LastModifiedDate") or "")[:10], "CreatedOn": (g("CreatedDate") or "")[:10],
        "CustomerType": g("Type"), "Rating": g("Rating"), "CreditLimit": g("Credit_Limit__c"),
        "PaymentTerms": g("Payment_Terms__c"), "SalesRegion": g("Region__c"),
        "SalesOrg": g("Sales_Org__c"), "DistributionChannel": g("Distribution_Channel__c"),
        "Division": g("Division__c"), "VatId": g("VAT_Id__c"), "Currency": g("Currency__c"),
        "CustomerGroup": g("Customer_Group__c"), "Blocked": g("Is_Blocked__c"),
        "SourceSystem": "SFDC", "CompanyCode": "1000",
    }


def main():
    out = sys.stdout
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    batch = []
    for line in sys.stdin:
        if line.strip():
            batch.append(dumps(convert(json.loads(line))))
            if len(batch) >= 2000:
                out.write("\n".join(batch) + "\n")
                batch = []
    if batch:
        out.write("\n".join(batch) + "\n")


main()
