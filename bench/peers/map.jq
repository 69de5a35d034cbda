# Peer of bench/map_bench.yaml in jq: jq -c -f bench/peers/map.jq accounts.ndjson
def two_places:
  if . == null then null
  else ((. * 100) | round) as $cents
    | (($cents / 100) | floor | tostring) + "." + ((($cents % 100) + 100) | tostring | .[1:])
  end;
{"Germany": "DE", "Austria": "AT", "Switzerland": "CH", "France": "FR", "Italy": "IT",
 "Spain": "ES", "Netherlands": "NL", "United Kingdom": "GB", "United States": "US",
 "Poland": "PL"} as $country
| ((.BillingStreet // "") | split("\n")) as $lines
| (($lines[0] // "") | capture("^(?<street>.*\\S)\\s+(?<number>[0-9]+[A-Za-z]?)$")
   // {street: ($lines[0] // ""), number: ""}) as $addr
| {
    CustomerNumber: .SAP_Customer_No__c, ExternalId: .Id, Name1: (.Name // "")[0:40],
    SearchTerm: .AccountNumber, StreetName: $addr.street, HouseNumber: $addr.number,
    AddressLine2: (if ($lines | length) > 1 then $lines[1:] | join("\n") else null end),
    PostalCode: .BillingPostalCode, City: .BillingCity, Region: .BillingState,
    CountryCode: $country[.BillingCountry // ""], Telephone: .Phone, Fax: .Fax,
    Homepage: .Website, IndustryKey: .Industry, AnnualSales: (.AnnualRevenue | two_places),
    Employees: .NumberOfEmployees, AccountManager: .OwnerId,
    ChangedOn: (.LastModifiedDate // "")[0:10], CreatedOn: (.CreatedDate // "")[0:10],
    CustomerType: .Type, Rating: .Rating, CreditLimit: .Credit_Limit__c,
    PaymentTerms: .Payment_Terms__c, SalesRegion: .Region__c, SalesOrg: .Sales_Org__c,
    DistributionChannel: .Distribution_Channel__c, Division: .Division__c, VatId: .VAT_Id__c,
    Currency: .Currency__c, CustomerGroup: .Customer_Group__c, Blocked: .Is_Blocked__c,
    SourceSystem: "SFDC", CompanyCode: "1000"
  }
