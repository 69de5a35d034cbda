/* SPDX-License-Identifier: MIT */
/*
 * The data model of the SAP emulator: entity sets of the A2X OData v2 services with their
 * properties (names, Edm types, MaxLength/Precision/Scale, read-only and key flags) and
 * navigation properties, after the published EDMX of each API (a subset of the properties),
 * and the $metadata (EDMX 1.0 / OData 2.0) document generated from these tables.
 */
#include <string.h>

#include "core/mem.h"

#include "sap_int.h"

#define END                                                                                        \
    {                                                                                              \
        NULL, T_STR, 0, 0, 0, NULL                                                                 \
    }
#define NAVEND                                                                                     \
    {                                                                                              \
        NULL, NULL, 0, NULL                                                                        \
    }

const char *const sap_services[] = {"API_BUSINESS_PARTNER",
                                    "API_SALES_ORDER_SRV",
                                    "API_PRODUCT_SRV",
                                    "API_MATERIAL_STOCK_SRV",
                                    "API_BILLING_DOCUMENT_SRV",
                                    "API_SLSPRICINGCONDITIONRECORD_SRV",
                                    NULL};

/* ---- API_BUSINESS_PARTNER ---- */
static const struct sap_prop bp_props[] = {
    {"BusinessPartner", T_STR, 10, 0, P_KEY | P_RO, "Business Partner"},
    {"Customer", T_STR, 10, 0, P_RO, "Customer"},
    {"Supplier", T_STR, 10, 0, P_RO, "Supplier"},
    {"BusinessPartnerCategory", T_STR, 1, 0, 0, "BP Category"},
    {"BusinessPartnerFullName", T_STR, 81, 0, P_RO, "Name"},
    {"BusinessPartnerGrouping", T_STR, 4, 0, 0, "Grouping"},
    {"BusinessPartnerName", T_STR, 81, 0, P_RO, "Name"},
    {"BusinessPartnerUUID", T_GUID, 0, 0, P_RO, "BP GUID"},
    {"CorrespondenceLanguage", T_STR, 2, 0, 0, "Language"},
    {"CreatedByUser", T_STR, 12, 0, P_RO, "Created By"},
    {"CreationDate", T_DATE, 0, 0, P_RO | P_DAY, "Created On"},
    {"CreationTime", T_TIME, 0, 0, P_RO, "Created At"},
    {"FirstName", T_STR, 40, 0, 0, "First Name"},
    {"Industry", T_STR, 10, 0, 0, "Industry"},
    {"IsMarkedForArchiving", T_BOOL, 0, 0, 0, "Archiving Flag"},
    {"Language", T_STR, 2, 0, 0, "Language Key"},
    {"LastChangeDate", T_DATE, 0, 0, P_RO | P_DAY, "Changed On"},
    {"LastChangeTime", T_TIME, 0, 0, P_RO, "Changed At"},
    {"LastChangedByUser", T_STR, 12, 0, P_RO, "Changed By"},
    {"LastName", T_STR, 40, 0, 0, "Last Name"},
    {"LegalForm", T_STR, 2, 0, 0, "Legal form"},
    {"OrganizationBPName1", T_STR, 40, 0, 0, "Name 1"},
    {"OrganizationBPName2", T_STR, 40, 0, 0, "Name 2"},
    {"OrganizationBPName3", T_STR, 40, 0, 0, "Name 3"},
    {"OrganizationBPName4", T_STR, 40, 0, 0, "Name 4"},
    {"SearchTerm1", T_STR, 20, 0, 0, "Search Term 1"},
    {"SearchTerm2", T_STR, 20, 0, 0, "Search Term 2"},
    {"BusinessPartnerIsBlocked", T_BOOL, 0, 0, 0, "Central Block"},
    {"BusinessPartnerIDByExtSystem", T_STR, 20, 0, 0, "BP ID by External System"},
    {"ETag", T_STR, 26, 0, P_RO, "Time Stamp"},
    END,
};
static const struct sap_nav bp_navs[] = {
    {"to_BusinessPartnerAddress", "A_BusinessPartnerAddress", 1, "BusinessPartner"},
    {"to_BusinessPartnerRole", "A_BusinessPartnerRole", 1, "BusinessPartner"},
    {"to_Customer", "A_Customer", 0, "BusinessPartner"},
    NAVEND,
};
static const struct sap_prop addr_props[] = {
    {"BusinessPartner", T_STR, 10, 0, P_KEY | P_RO, "Business Partner"},
    {"AddressID", T_STR, 10, 0, P_KEY | P_RO, "Address Number"},
    {"ValidityStartDate", T_DTO, 0, 0, 0, "Valid From"},
    {"ValidityEndDate", T_DTO, 0, 0, 0, "Valid To"},
    {"AdditionalStreetPrefixName", T_STR, 40, 0, 0, "Street 3"},
    {"AdditionalStreetSuffixName", T_STR, 40, 0, 0, "Street 5"},
    {"AddressTimeZone", T_STR, 6, 0, 0, "Time zone"},
    {"CareOfName", T_STR, 40, 0, 0, "c/o"},
    {"CityName", T_STR, 40, 0, 0, "City"},
    {"Country", T_STR, 3, 0, 0, "Country/Region Key"},
    {"County", T_STR, 40, 0, 0, "County"},
    {"District", T_STR, 40, 0, 0, "District"},
    {"HouseNumber", T_STR, 10, 0, 0, "House Number"},
    {"HouseNumberSupplementText", T_STR, 10, 0, 0, "Supplement"},
    {"Language", T_STR, 2, 0, 0, "Language Key"},
    {"POBox", T_STR, 10, 0, 0, "PO Box"},
    {"POBoxPostalCode", T_STR, 10, 0, 0, "PO Box Postal Code"},
    {"PostalCode", T_STR, 10, 0, 0, "Postal Code"},
    {"Region", T_STR, 3, 0, 0, "Region"},
    {"StreetName", T_STR, 60, 0, 0, "Street"},
    {"StreetPrefixName", T_STR, 40, 0, 0, "Street 2"},
    {"StreetSuffixName", T_STR, 40, 0, 0, "Street 4"},
    {"TaxJurisdiction", T_STR, 15, 0, 0, "Tax Jurisdiction"},
    {"AddressIDByExternalSystem", T_STR, 20, 0, 0, "Address ID by External System"},
    END,
};
static const struct sap_prop role_props[] = {
    {"BusinessPartner", T_STR, 10, 0, P_KEY | P_RO, "Business Partner"},
    {"BusinessPartnerRole", T_STR, 6, 0, P_KEY, "BP Role"},
    {"ValidFrom", T_DTO, 0, 0, 0, "Validity Start"},
    {"ValidTo", T_DTO, 0, 0, 0, "Validity End"},
    END,
};
static const struct sap_prop cust_props[] = {
    {"Customer", T_STR, 10, 0, P_KEY | P_RO, "Customer"},
    {"CustomerAccountGroup", T_STR, 4, 0, 0, "Account Group"},
    {"CustomerName", T_STR, 80, 0, P_RO, "Name of Customer"},
    {"CustomerFullName", T_STR, 220, 0, P_RO, "Customer Name"},
    {"CreatedByUser", T_STR, 12, 0, P_RO, "Created By"},
    {"CreationDate", T_DATE, 0, 0, P_RO | P_DAY, "Created On"},
    {"OrderIsBlockedForCustomer", T_STR, 2, 0, 0, "Order Block"},
    {"DeliveryIsBlocked", T_STR, 2, 0, 0, "Delivery Block"},
    {"BillingIsBlockedForCustomer", T_STR, 2, 0, 0, "Billing Block"},
    {"PostingIsBlocked", T_BOOL, 0, 0, 0, "Posting Block"},
    {"DeletionIndicator", T_BOOL, 0, 0, 0, "Deletion Flag"},
    {"Industry", T_STR, 4, 0, 0, "Industry"},
    {"VATRegistration", T_STR, 20, 0, 0, "VAT Registration No."},
    {"PaymentTerms", T_STR, 4, 0, 0, "Terms of Payment (sandbox extension)"},
    {"CreditLimit", T_DEC, 15, 2, 0, "Credit Limit (sandbox extension)"},
    {"CreditLimitCurrency", T_STR, 5, 0, 0, "Credit Limit Currency (sandbox extension)"},
    END,
};

static const struct sap_nav cust_navs[] = {
    {"to_CustomerSalesArea", "A_CustomerSalesArea", 1, "Customer"},
    {"to_CustomerCompany", "A_CustomerCompany", 1, "Customer"},
    NAVEND,
};
static const struct sap_prop csa_props[] = {
    {"Customer", T_STR, 10, 0, P_KEY | P_RO, "Customer"},
    {"SalesOrganization", T_STR, 4, 0, P_KEY, "Sales Organization"},
    {"DistributionChannel", T_STR, 2, 0, P_KEY, "Distribution Channel"},
    {"Division", T_STR, 2, 0, P_KEY, "Division"},
    {"Currency", T_STR, 5, 0, 0, "Currency"},
    {"CustomerPaymentTerms", T_STR, 4, 0, 0, "Terms of Payment"},
    {"CustomerPricingProcedure", T_STR, 2, 0, 0, "Cust.Pric.Procedure"},
    {"IncotermsClassification", T_STR, 3, 0, 0, "Incoterms"},
    {"IncotermsLocation1", T_STR, 70, 0, 0, "Incoterms Location 1"},
    {"ShippingCondition", T_STR, 2, 0, 0, "Shipping Conditions"},
    {"SupplyingPlant", T_STR, 4, 0, 0, "Delivering Plant"},
    {"OrderIsBlockedForCustomer", T_STR, 2, 0, 0, "Order Block for Sales Area"},
    {"DeliveryIsBlockedForCustomer", T_STR, 2, 0, 0, "Delivery Block for Sales Area"},
    {"BillingIsBlockedForCustomer", T_STR, 2, 0, 0, "Billing Block for Sales Area"},
    END,
};
static const struct sap_prop ccomp_props[] = {
    {"Customer", T_STR, 10, 0, P_KEY | P_RO, "Customer"},
    {"CompanyCode", T_STR, 4, 0, P_KEY, "Company Code"},
    {"ReconciliationAccount", T_STR, 10, 0, 0, "Reconciliation acct"},
    {"PaymentTerms", T_STR, 4, 0, 0, "Terms of Payment"},
    {"PaymentBlockingReason", T_STR, 1, 0, 0, "Payment Block"},
    {"CustomerAccountGroup", T_STR, 4, 0, P_RO, "Account Group"},
    {"DeletionIndicator", T_BOOL, 0, 0, 0, "Deletion Flag"},
    END,
};

/* ---- API_SALES_ORDER_SRV ---- */
static const struct sap_prop so_props[] = {
    {"SalesOrder", T_STR, 10, 0, P_KEY | P_RO, "Sales Order"},
    {"SalesOrderType", T_STR, 4, 0, 0, "Sales Document Type"},
    {"SalesOrganization", T_STR, 4, 0, 0, "Sales Organization"},
    {"DistributionChannel", T_STR, 2, 0, 0, "Distribution Channel"},
    {"OrganizationDivision", T_STR, 2, 0, 0, "Division"},
    {"SoldToParty", T_STR, 10, 0, 0, "Sold-To Party"},
    {"CreationDate", T_DATE, 0, 0, P_RO | P_DAY, "Created On"},
    {"CreatedByUser", T_STR, 12, 0, P_RO, "Created By"},
    {"LastChangeDate", T_DATE, 0, 0, P_RO | P_DAY, "Changed On"},
    {"LastChangeDateTime", T_DTO, 7, 0, P_RO, "Time Stamp"},
    {"PurchaseOrderByCustomer", T_STR, 35, 0, 0, "Customer Reference"},
    {"CustomerPurchaseOrderDate", T_DATE, 0, 0, P_DAY, "Customer Reference Date"},
    {"SalesOrderDate", T_DATE, 0, 0, P_DAY, "Document Date"},
    {"TotalNetAmount", T_DEC, 16, 3, P_RO, "Net Value"},
    {"TransactionCurrency", T_STR, 5, 0, 0, "Document Currency"},
    {"RequestedDeliveryDate", T_DATE, 0, 0, P_DAY, "Requested Delivery Date"},
    {"PricingDate", T_DATE, 0, 0, P_DAY, "Pricing Date"},
    {"CustomerPaymentTerms", T_STR, 4, 0, 0, "Terms of Payment"},
    {"IncotermsClassification", T_STR, 3, 0, 0, "Incoterms"},
    {"IncotermsLocation1", T_STR, 70, 0, 0, "Incoterms Location 1"},
    {"ShippingCondition", T_STR, 2, 0, 0, "Shipping Conditions"},
    {"HeaderBillingBlockReason", T_STR, 2, 0, 0, "Billing Block"},
    {"DeliveryBlockReason", T_STR, 2, 0, 0, "Delivery Block"},
    {"SDDocumentReason", T_STR, 3, 0, 0, "Order Reason"},
    {"OverallSDProcessStatus", T_STR, 1, 0, P_RO, "Overall Status"},
    {"TotalCreditCheckStatus", T_STR, 1, 0, P_RO, "Overall Credit Status"},
    {"OverallTotalDeliveryStatus", T_STR, 1, 0, P_RO, "Delivery Status"},
    {"OverallSDDocumentRejectionSts", T_STR, 1, 0, P_RO, "Rejection Status"},
    {"TotalBlockStatus", T_STR, 1, 0, P_RO, "Block Status"},
    {"OverallOrdReltdBillgStatus", T_STR, 1, 0, P_RO, "Order-Related Billing Status"},
    END,
};
static const struct sap_nav so_navs[] = {
    {"to_Item", "A_SalesOrderItem", 1, "SalesOrder"},
    {"to_Partner", "A_SalesOrderHeaderPartner", 1, "SalesOrder"},
    NAVEND,
};
static const struct sap_prop sop_props[] = {
    {"SalesOrder", T_STR, 10, 0, P_KEY | P_RO, "Sales Order"},
    {"PartnerFunction", T_STR, 2, 0, P_KEY, "Partner Function"},
    {"Customer", T_STR, 10, 0, 0, "Customer"},
    {"Supplier", T_STR, 10, 0, 0, "Supplier"},
    {"Personnel", T_STR, 8, 0, 0, "Personnel Number"},
    {"ContactPerson", T_STR, 10, 0, 0, "Contact Person"},
    {"AddressID", T_STR, 10, 0, P_RO, "Address"},
    END,
};
static const struct sap_prop soi_props[] = {
    {"SalesOrder", T_STR, 10, 0, P_KEY | P_RO, "Sales Order"},
    {"SalesOrderItem", T_STR, 6, 0, P_KEY, "Sales Order Item"},
    {"SalesOrderItemCategory", T_STR, 4, 0, 0, "Item Category"},
    {"SalesOrderItemText", T_STR, 40, 0, 0, "Item Description"},
    {"PurchaseOrderByCustomer", T_STR, 35, 0, 0, "Customer Reference"},
    {"Material", T_STR, 40, 0, 0, "Material"},
    {"MaterialByCustomer", T_STR, 35, 0, 0, "Customer Material"},
    {"RequestedQuantity", T_DEC, 15, 3, 0, "Order Quantity"},
    {"RequestedQuantityUnit", T_STR, 3, 0, 0, "Sales Unit"},
    {"NetAmount", T_DEC, 16, 3, P_RO, "Net Value"},
    {"TransactionCurrency", T_STR, 5, 0, P_RO, "Document Currency"},
    {"ProductionPlant", T_STR, 4, 0, 0, "Plant"},
    {"StorageLocation", T_STR, 4, 0, 0, "Storage Location"},
    {"ShippingPoint", T_STR, 4, 0, 0, "Shipping Point"},
    {"SalesDocumentRjcnReason", T_STR, 2, 0, 0, "Reason for Rejection"},
    {"ItemBillingBlockReason", T_STR, 2, 0, 0, "Billing Block for Item"},
    {"SDProcessStatus", T_STR, 1, 0, P_RO, "Overall Status"},
    {"DeliveryStatus", T_STR, 1, 0, P_RO, "Delivery Status"},
    END,
};

/* ---- API_PRODUCT_SRV ---- */
static const struct sap_prop prod_props[] = {
    {"Product", T_STR, 40, 0, P_KEY, "Product"},
    {"ProductType", T_STR, 4, 0, 0, "Product Type"},
    {"CrossPlantStatus", T_STR, 2, 0, 0, "Cross-Plant Status"},
    {"CreationDate", T_DATE, 0, 0, P_RO | P_DAY, "Created On"},
    {"CreatedByUser", T_STR, 12, 0, P_RO, "Created By"},
    {"LastChangeDate", T_DATE, 0, 0, P_RO | P_DAY, "Last Change"},
    {"LastChangeDateTime", T_DTO, 0, 0, P_RO, "Last Changed"},
    {"IsMarkedForDeletion", T_BOOL, 0, 0, 0, "Deletion Flag"},
    {"ProductOldID", T_STR, 40, 0, 0, "Old Product Number"},
    {"GrossWeight", T_DEC, 13, 3, 0, "Gross Weight"},
    {"WeightUnit", T_STR, 3, 0, 0, "Weight Unit"},
    {"NetWeight", T_DEC, 13, 3, 0, "Net Weight"},
    {"ProductGroup", T_STR, 9, 0, 0, "Product Group"},
    {"BaseUnit", T_STR, 3, 0, 0, "Base Unit of Measure"},
    {"Division", T_STR, 2, 0, 0, "Division"},
    {"ProductHierarchy", T_STR, 18, 0, 0, "Product Hierarchy"},
    {"ItemCategoryGroup", T_STR, 4, 0, 0, "Item Category Group"},
    {"ProductStandardID", T_STR, 18, 0, 0, "GTIN"},
    END,
};
static const struct sap_nav prod_navs[] = {
    {"to_Description", "A_ProductDescription", 1, "Product"},
    NAVEND,
};
static const struct sap_prop pdesc_props[] = {
    {"Product", T_STR, 40, 0, P_KEY | P_RO, "Product"},
    {"Language", T_STR, 2, 0, P_KEY, "Language Key"},
    {"ProductDescription", T_STR, 40, 0, 0, "Product Description"},
    END,
};

/* ---- API_MATERIAL_STOCK_SRV ---- */
static const struct sap_prop mstk_props[] = {
    {"Material", T_STR, 40, 0, P_KEY, "Material"},
    {"MaterialBaseUnit", T_STR, 3, 0, 0, "Base Unit of Measure"},
    END,
};
static const struct sap_nav mstk_navs[] = {
    {"to_MatlStkInAcctMod", "A_MatlStkInAcctMod", 1, "Material"},
    NAVEND,
};
static const struct sap_prop stk_props[] = {
    {"Material", T_STR, 40, 0, P_KEY, "Material"},
    {"Plant", T_STR, 4, 0, P_KEY, "Plant"},
    {"StorageLocation", T_STR, 4, 0, P_KEY, "Storage Location"},
    {"Batch", T_STR, 10, 0, P_KEY, "Batch"},
    {"Supplier", T_STR, 10, 0, P_KEY, "Supplier"},
    {"Customer", T_STR, 10, 0, P_KEY, "Customer"},
    {"WBSElementInternalID", T_STR, 8, 0, P_KEY, "WBS Element"},
    {"SDDocument", T_STR, 10, 0, P_KEY, "Sales Order"},
    {"SDDocumentItem", T_STR, 6, 0, P_KEY, "Sales Order Item"},
    {"InventorySpecialStockType", T_STR, 1, 0, P_KEY, "Special Stock Type"},
    {"InventoryStockType", T_STR, 2, 0, P_KEY, "Stock Type"},
    {"MaterialBaseUnit", T_STR, 3, 0, 0, "Base Unit of Measure"},
    {"MatlWrhsStkQtyInMatlBaseUnit", T_DEC, 31, 14, 0, "Stock Quantity"},
    END,
};

/* ---- API_BILLING_DOCUMENT_SRV ---- */
static const struct sap_prop bill_props[] = {
    {"BillingDocument", T_STR, 10, 0, P_KEY, "Billing Document"},
    {"SDDocumentCategory", T_STR, 4, 0, 0, "Document Category"},
    {"BillingDocumentCategory", T_STR, 1, 0, 0, "Billing Category"},
    {"BillingDocumentType", T_STR, 4, 0, 0, "Billing Type"},
    {"CreationDate", T_DATE, 0, 0, P_DAY, "Created On"},
    {"LastChangeDate", T_DATE, 0, 0, P_DAY, "Changed On"},
    {"LastChangeDateTime", T_DTO, 0, 0, 0, "Last Changed"},
    {"BillingDocumentIsCancelled", T_BOOL, 0, 0, 0, "Cancelled"},
    {"CancelledBillingDocument", T_STR, 10, 0, 0, "Cancelled Bill.Doc."},
    {"SalesOrganization", T_STR, 4, 0, 0, "Sales Organization"},
    {"DistributionChannel", T_STR, 2, 0, 0, "Distribution Channel"},
    {"Division", T_STR, 2, 0, 0, "Division"},
    {"BillingDocumentDate", T_DATE, 0, 0, P_DAY, "Billing Date"},
    {"TotalNetAmount", T_DEC, 16, 3, 0, "Net Value"},
    {"TransactionCurrency", T_STR, 5, 0, 0, "Document Currency"},
    {"TaxAmount", T_DEC, 16, 3, 0, "Tax Amount"},
    {"TotalGrossAmount", T_DEC, 16, 3, 0, "Gross Amount"},
    {"CustomerPaymentTerms", T_STR, 4, 0, 0, "Terms of Payment"},
    {"PaymentReference", T_STR, 30, 0, 0, "Payment Reference"},
    {"CompanyCode", T_STR, 4, 0, 0, "Company Code"},
    {"FiscalYear", T_STR, 4, 0, 0, "Fiscal Year"},
    {"AccountingDocument", T_STR, 10, 0, 0, "Journal Entry"},
    {"SoldToParty", T_STR, 10, 0, 0, "Sold-To Party"},
    {"PayerParty", T_STR, 10, 0, 0, "Payer"},
    {"OverallBillingStatus", T_STR, 1, 0, 0, "Billing Status"},
    {"AccountingPostingStatus", T_STR, 1, 0, 0, "Posting Status"},
    {"AccountingTransferStatus", T_STR, 1, 0, 0, "Transfer Status"},
    {"InvoiceClearingStatus", T_STR, 1, 0, 0, "Clearing Status"},
    END,
};
static const struct sap_nav bill_navs[] = {
    {"to_Item", "A_BillingDocumentItem", 1, "BillingDocument"},
    NAVEND,
};
static const struct sap_prop billi_props[] = {
    {"BillingDocument", T_STR, 10, 0, P_KEY, "Billing Document"},
    {"BillingDocumentItem", T_STR, 6, 0, P_KEY, "Item"},
    {"Material", T_STR, 40, 0, 0, "Material"},
    {"BillingQuantity", T_DEC, 13, 3, 0, "Billed Quantity"},
    {"BillingQuantityUnit", T_STR, 3, 0, 0, "Sales Unit"},
    {"NetAmount", T_DEC, 16, 3, 0, "Net Value"},
    {"GrossAmount", T_DEC, 16, 3, 0, "Gross Value"},
    {"TaxAmount", T_DEC, 16, 3, 0, "Tax Amount"},
    {"TransactionCurrency", T_STR, 5, 0, 0, "Document Currency"},
    {"SalesDocument", T_STR, 10, 0, 0, "Sales Document"},
    {"SalesDocumentItem", T_STR, 6, 0, 0, "Sales Document Item"},
    {"ReferenceSDDocument", T_STR, 10, 0, 0, "Reference Document"},
    END,
};

/* ---- API_SLSPRICINGCONDITIONRECORD_SRV ---- */
static const struct sap_prop cnd_props[] = {
    {"ConditionRecord", T_STR, 10, 0, P_KEY | P_RO, "Condition Record"},
    {"ConditionTable", T_STR, 3, 0, 0, "Condition Table"},
    {"ConditionApplication", T_STR, 2, 0, 0, "Application"},
    {"ConditionType", T_STR, 4, 0, 0, "Condition Type"},
    {"ConditionValidityEndDate", T_DATE, 0, 0, P_DAY, "Valid To"},
    {"ConditionValidityStartDate", T_DATE, 0, 0, P_DAY, "Valid From"},
    {"CreatedByUser", T_STR, 12, 0, P_RO, "Created By"},
    {"CreationDate", T_DATE, 0, 0, P_RO | P_DAY, "Created On"},
    {"ConditionRateValue", T_DEC, 24, 9, 0, "Amount"},
    {"ConditionRateValueUnit", T_STR, 5, 0, 0, "Rate Unit"},
    {"ConditionQuantity", T_DEC, 5, 0, 0, "Pricing Unit"},
    {"ConditionQuantityUnit", T_STR, 3, 0, 0, "Unit of Measure"},
    {"ConditionIsDeleted", T_BOOL, 0, 0, 0, "Deletion Indicator"},
    {"LastChangeDateTime", T_DTO, 0, 0, P_RO, "Last Changed"},
    END,
};
static const struct sap_nav cnd_navs[] = {
    {"to_SlsPrcgCndnRecdValidity", "A_SlsPrcgCndnRecdValidity", 1, "ConditionRecord"},
    NAVEND,
};
static const struct sap_prop cndv_props[] = {
    {"ConditionRecord", T_STR, 10, 0, P_KEY | P_RO, "Condition Record"},
    {"ConditionValidityEndDate", T_DATE, 0, 0, P_KEY | P_DAY, "Valid To"},
    {"ConditionValidityStartDate", T_DATE, 0, 0, P_DAY, "Valid From"},
    {"ConditionApplication", T_STR, 2, 0, 0, "Application"},
    {"ConditionType", T_STR, 4, 0, 0, "Condition Type"},
    {"SalesOrganization", T_STR, 4, 0, 0, "Sales Organization"},
    {"DistributionChannel", T_STR, 2, 0, 0, "Distribution Channel"},
    {"Customer", T_STR, 10, 0, 0, "Customer"},
    {"CustomerPriceGroup", T_STR, 2, 0, 0, "Price Group"},
    {"Material", T_STR, 40, 0, 0, "Material"},
    {"Plant", T_STR, 4, 0, 0, "Plant"},
    END,
};
static const struct sap_nav cndv_navs[] = {
    {"to_SlsPrcgConditionRecord", "A_SlsPrcgConditionRecord", 0, "ConditionRecord"},
    NAVEND,
};

static const struct sap_nav no_navs[] = {NAVEND};

#define BP  "API_BUSINESS_PARTNER"
#define SO  "API_SALES_ORDER_SRV"
#define PR  "API_PRODUCT_SRV"
#define ST  "API_MATERIAL_STOCK_SRV"
#define BI  "API_BILLING_DOCUMENT_SRV"
#define CN  "API_SLSPRICINGCONDITIONRECORD_SRV"
#define CUD (S_CREATE | S_UPDATE | S_DELETE)

static const struct sap_set sets[] = {
    {BP, "A_BusinessPartner", "Business Partner", bp_props, bp_navs, S_CREATE | S_UPDATE, "ETag",
     NULL, "bp"},
    {BP, "A_BusinessPartnerAddress", "Address", addr_props, no_navs, CUD, NULL, NULL, "addr"},
    {BP, "A_BusinessPartnerRole", "Role", role_props, no_navs, CUD, NULL, NULL, NULL},
    {BP, "A_Customer", "Customer", cust_props, cust_navs, S_UPDATE, NULL, NULL, NULL},
    {BP, "A_CustomerSalesArea", "Customer Sales Area", csa_props, no_navs, S_CREATE | S_UPDATE,
     NULL, NULL, NULL},
    {BP, "A_CustomerCompany", "Customer Company", ccomp_props, no_navs, S_CREATE | S_UPDATE, NULL,
     NULL, NULL},
    {SO, "A_SalesOrder", "Sales Order", so_props, so_navs, CUD, "LastChangeDateTime",
     "LastChangeDateTime", "so"},
    {SO, "A_SalesOrderItem", "Sales Order Item", soi_props, no_navs, CUD, NULL, NULL, NULL},
    {SO, "A_SalesOrderHeaderPartner", "Header Partner", sop_props, no_navs, CUD, NULL, NULL, NULL},
    {PR, "A_Product", "Product", prod_props, prod_navs, S_CREATE | S_UPDATE, "LastChangeDateTime",
     "LastChangeDateTime", NULL},
    {PR, "A_ProductDescription", "Product Description", pdesc_props, no_navs, CUD, NULL, NULL,
     NULL},
    {ST, "A_MaterialStock", "Material Stock", mstk_props, mstk_navs, 0, NULL, NULL, NULL},
    {ST, "A_MatlStkInAcctMod", "Stock", stk_props, no_navs, 0, NULL, NULL, NULL},
    {BI, "A_BillingDocument", "Billing Document", bill_props, bill_navs, 0, NULL,
     "LastChangeDateTime", NULL},
    {BI, "A_BillingDocumentItem", "Billing Document Item", billi_props, no_navs, 0, NULL, NULL,
     NULL},
    {CN, "A_SlsPrcgConditionRecord", "Condition Record", cnd_props, cnd_navs, CUD,
     "LastChangeDateTime", "LastChangeDateTime", "cnd"},
    {CN, "A_SlsPrcgCndnRecdValidity", "Condition Validity", cndv_props, cndv_navs, CUD, NULL, NULL,
     NULL},
    {NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL},
};

const struct sap_set *sap_set_find(const char *service, const char *name)
{
    for (const struct sap_set *s = sets; s->name; s++) {
        if (strcmp(s->name, name) == 0 && (!service || strcmp(s->service, service) == 0)) {
            return s;
        }
    }
    return NULL;
}

const struct sap_set *sap_set_at(int i)
{
    return i >= 0 && (size_t)i < ES_ARRAY_LEN(sets) ? (sets[i].name ? &sets[i] : NULL) : NULL;
}

const struct sap_set *sap_set_any(const char *name)
{
    return sap_set_find(NULL, name);
}

int sap_service_known(const char *service)
{
    for (int i = 0; sap_services[i]; i++) {
        if (strcmp(sap_services[i], service) == 0) {
            return 1;
        }
    }
    return 0;
}

const struct sap_prop *sap_prop_find(const struct sap_set *s, const char *name)
{
    for (const struct sap_prop *p = s->props; p->name; p++) {
        if (strcmp(p->name, name) == 0) {
            return p;
        }
    }
    return NULL;
}

const struct sap_nav *sap_nav_find(const struct sap_set *s, const char *name)
{
    for (const struct sap_nav *n = s->navs; n->name; n++) {
        if (strcmp(n->name, name) == 0) {
            return n;
        }
    }
    return NULL;
}

int sap_nkeys(const struct sap_set *s)
{
    int n = 0;
    for (const struct sap_prop *p = s->props; p->name; p++) {
        n += (p->flags & P_KEY) != 0;
    }
    return n;
}

const struct sap_prop *sap_key(const struct sap_set *s, int i)
{
    for (const struct sap_prop *p = s->props; p->name; p++) {
        if ((p->flags & P_KEY) && i-- == 0) {
            return p;
        }
    }
    return NULL;
}

static const char *edm_name(enum sap_type t)
{
    switch (t) {
    case T_DEC:
        return "Edm.Decimal";
    case T_BOOL:
        return "Edm.Boolean";
    case T_DATE:
        return "Edm.DateTime";
    case T_DTO:
        return "Edm.DateTimeOffset";
    case T_TIME:
        return "Edm.Time";
    case T_GUID:
        return "Edm.Guid";
    case T_INT:
        return "Edm.Int32";
    case T_STR:
        break;
    }
    return "Edm.String";
}

static void xml_attr(struct es_buf *b, const char *name, const char *v)
{
    es_buf_printf(b, " %s=\"", name);
    for (const char *p = v; *p; p++) {
        switch (*p) {
        case '&':
            es_buf_puts(b, "&amp;");
            break;
        case '<':
            es_buf_puts(b, "&lt;");
            break;
        case '"':
            es_buf_puts(b, "&quot;");
            break;
        default:
            es_buf_putc(b, *p);
        }
    }
    es_buf_putc(b, '"');
}

static void metadata_type(struct es_buf *b, const struct sap_set *s)
{
    es_buf_printf(b, "<EntityType Name=\"%sType\"", s->name);
    xml_attr(b, "sap:label", s->label);
    es_buf_puts(b, " sap:content-version=\"1\"><Key>");
    for (int i = 0; i < sap_nkeys(s); i++) {
        es_buf_printf(b, "<PropertyRef Name=\"%s\"/>", sap_key(s, i)->name);
    }
    es_buf_puts(b, "</Key>");
    for (const struct sap_prop *p = s->props; p->name; p++) {
        es_buf_printf(b, "<Property Name=\"%s\" Type=\"%s\"", p->name, edm_name(p->type));
        if (p->flags & (P_KEY | P_NN)) {
            es_buf_puts(b, " Nullable=\"false\"");
        }
        if (p->type == T_STR && p->len) {
            es_buf_printf(b, " MaxLength=\"%d\"", p->len);
        }
        if (p->type == T_DEC) {
            es_buf_printf(b, " Precision=\"%d\" Scale=\"%d\"", p->len, p->scale);
        }
        if (p->type == T_DTO && p->len) {
            es_buf_printf(b, " Precision=\"%d\"", p->len);
        }
        if (s->etag_prop && strcmp(s->etag_prop, p->name) == 0) {
            es_buf_puts(b, " ConcurrencyMode=\"Fixed\"");
        }
        if (p->flags & P_DAY) {
            es_buf_puts(b, " sap:display-format=\"Date\"");
        }
        if (p->type == T_STR && (p->flags & P_KEY)) {
            es_buf_puts(b, " sap:display-format=\"UpperCase\"");
        }
        xml_attr(b, "sap:label", p->label);
        if ((p->flags & P_RO) || !(s->flags & (S_CREATE | S_UPDATE))) {
            es_buf_puts(b, " sap:creatable=\"false\" sap:updatable=\"false\"");
        } else if (p->flags & P_KEY) {
            es_buf_puts(b, " sap:updatable=\"false\"");
        }
        if (p->flags & P_NOFL) {
            es_buf_puts(b, " sap:filterable=\"false\"");
        }
        es_buf_puts(b, "/>");
    }
    for (const struct sap_nav *n = s->navs; n->name; n++) {
        es_buf_printf(b,
                      "<NavigationProperty Name=\"%s\" Relationship=\"%s.assoc_%s_%s\" "
                      "FromRole=\"FromRole_assoc_%s_%s\" ToRole=\"ToRole_assoc_%s_%s\"/>",
                      n->name, s->service, s->name, n->name, s->name, n->name, s->name, n->name);
    }
    es_buf_puts(b, "</EntityType>");
}

void sap_metadata(struct es_buf *b, const char *service)
{
    es_buf_puts(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                   "<edmx:Edmx Version=\"1.0\" "
                   "xmlns:edmx=\"http://schemas.microsoft.com/ado/2007/06/edmx\" "
                   "xmlns:m=\"http://schemas.microsoft.com/ado/2007/08/dataservices/metadata\" "
                   "xmlns:sap=\"http://www.sap.com/Protocols/SAPData\">"
                   "<edmx:DataServices m:DataServiceVersion=\"2.0\">");
    es_buf_printf(b,
                  "<Schema Namespace=\"%s\" xml:lang=\"en\" sap:schema-version=\"1\" "
                  "xmlns=\"http://schemas.microsoft.com/ado/2008/09/edm\">",
                  service);
    for (const struct sap_set *s = sets; s->name; s++) {
        if (strcmp(s->service, service) == 0) {
            metadata_type(b, s);
        }
    }
    for (const struct sap_set *s = sets; s->name; s++) {
        if (strcmp(s->service, service) != 0) {
            continue;
        }
        for (const struct sap_nav *n = s->navs; n->name; n++) {
            es_buf_printf(b,
                          "<Association Name=\"assoc_%s_%s\" sap:content-version=\"1\">"
                          "<End Type=\"%s.%sType\" Multiplicity=\"1\" "
                          "Role=\"FromRole_assoc_%s_%s\"/>"
                          "<End Type=\"%s.%sType\" Multiplicity=\"%s\" "
                          "Role=\"ToRole_assoc_%s_%s\"/></Association>",
                          s->name, n->name, service, s->name, s->name, n->name, service, n->target,
                          n->many ? "*" : "0..1", s->name, n->name);
        }
    }
    es_buf_printf(b,
                  "<EntityContainer Name=\"%s_Entities\" m:IsDefaultEntityContainer=\"true\" "
                  "sap:message-scope-supported=\"true\" sap:supported-formats=\"atom json xlsx\">",
                  service);
    for (const struct sap_set *s = sets; s->name; s++) {
        if (strcmp(s->service, service) != 0) {
            continue;
        }
        es_buf_printf(b, "<EntitySet Name=\"%s\" EntityType=\"%s.%sType\"", s->name, service,
                      s->name);
        es_buf_printf(b, " sap:creatable=\"%s\" sap:updatable=\"%s\" sap:deletable=\"%s\"",
                      s->flags & S_CREATE ? "true" : "false",
                      s->flags & S_UPDATE ? "true" : "false",
                      s->flags & S_DELETE ? "true" : "false");
        es_buf_puts(b, " sap:content-version=\"1\"/>");
    }
    for (const struct sap_set *s = sets; s->name; s++) {
        if (strcmp(s->service, service) != 0) {
            continue;
        }
        for (const struct sap_nav *n = s->navs; n->name; n++) {
            es_buf_printf(b,
                          "<AssociationSet Name=\"assoc_%s_%s_set\" Association=\"%s.assoc_%s_%s\" "
                          "sap:creatable=\"false\" sap:updatable=\"false\" "
                          "sap:deletable=\"false\" sap:content-version=\"1\">"
                          "<End EntitySet=\"%s\" Role=\"FromRole_assoc_%s_%s\"/>"
                          "<End EntitySet=\"%s\" Role=\"ToRole_assoc_%s_%s\"/></AssociationSet>",
                          s->name, n->name, service, s->name, n->name, s->name, s->name, n->name,
                          n->target, s->name, n->name);
        }
    }
    es_buf_puts(b, "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>");
}
