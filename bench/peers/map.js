'use strict';
// Peer of bench/map_bench.yaml in plain Node.js: NDJSON on stdin -> NDJSON on stdout.
const fs = require('fs');
const { StringDecoder } = require('string_decoder');

const COUNTRY = { Germany: 'DE', Austria: 'AT', Switzerland: 'CH', France: 'FR', Italy: 'IT',
  Spain: 'ES', Netherlands: 'NL', 'United Kingdom': 'GB', 'United States': 'US', Poland: 'PL' };
const NUMBER_LAST = /^(.*\S)\s+([0-9]+[A-Za-z]?)$/;

function twoPlaces(x) {
  if (x === null || x === undefined) return null;
  const cents = Math.round(x * 100);
  return Math.floor(cents / 100) + '.' + String(cents % 100).padStart(2, '0');
}

function convert(a) {
  const lines = (a.BillingStreet || '').split('\n');
  const m = NUMBER_LAST.exec(lines[0]);
  const cc = COUNTRY[a.BillingCountry || ''];
  return {
    CustomerNumber: a.SAP_Customer_No__c ?? null, ExternalId: a.Id ?? null,
    Name1: (a.Name || '').slice(0, 40), SearchTerm: a.AccountNumber ?? null,
    StreetName: m ? m[1] : lines[0], HouseNumber: m ? m[2] : '',
    AddressLine2: lines.length > 1 ? lines.slice(1).join('\n') : null,
    PostalCode: a.BillingPostalCode ?? null, City: a.BillingCity ?? null,
    Region: a.BillingState ?? null, CountryCode: cc === undefined ? null : cc,
    Telephone: a.Phone ?? null, Fax: a.Fax ?? null, Homepage: a.Website ?? null,
    IndustryKey: a.Industry ?? null, AnnualSales: twoPlaces(a.AnnualRevenue),
    Employees: a.NumberOfEmployees ?? null, AccountManager: a.OwnerId ?? null,
    ChangedOn: (a.LastModifiedDate || '').slice(0, 10), CreatedOn: (a.CreatedDate || '').slice(0, 10),
    CustomerType: a.Type ?? null, Rating: a.Rating ?? null, CreditLimit: a.Credit_Limit__c ?? null,
    PaymentTerms: a.Payment_Terms__c ?? null, SalesRegion: a.Region__c ?? null,
    SalesOrg: a.Sales_Org__c ?? null, DistributionChannel: a.Distribution_Channel__c ?? null,
    Division: a.Division__c ?? null, VatId: a.VAT_Id__c ?? null, Currency: a.Currency__c ?? null,
    CustomerGroup: a.Customer_Group__c ?? null, Blocked: a.Is_Blocked__c ?? null,
    SourceSystem: 'SFDC', CompanyCode: '1000',
  };
}

const chunk = Buffer.allocUnsafe(1 << 22);
const decoder = new StringDecoder('utf8');
let carry = '';
for (;;) {
  const n = fs.readSync(0, chunk, 0, chunk.length, null);
  if (n === 0) break;
  const text = carry + decoder.write(chunk.subarray(0, n));
  const parts = text.split('\n');
  carry = parts.pop();
  let out = '';
  for (const line of parts) if (line) out += JSON.stringify(convert(JSON.parse(line))) + '\n';
  fs.writeSync(1, out);
}
if (carry) fs.writeSync(1, JSON.stringify(convert(JSON.parse(carry))) + '\n');
