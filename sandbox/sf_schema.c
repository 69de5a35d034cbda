/* SPDX-License-Identifier: MIT */
/*
 * Salesforce emulator: the sObject schema. Standard objects (the ERP-relevant subset of
 * Account, Contact, Product2, Pricebook2, PricebookEntry, Opportunity, OpportunityLineItem,
 * Order, OrderItem, Quote, QuoteLineItem, User) are tables here; custom fields and custom
 * objects come from a JSON schema file (sandbox/sf_schema.json by default). Describe
 * results are built from the same tables, so validation and describe never disagree.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "sf_int.h"

/* One standard field. flags: R required, r read-only, c create-only, P restricted picklist,
 * E external id, U unique, D defaulted on create, N name field, n not nillable.
 * extra: picklist "A;*B;C" (* = default), reference "Object:Relationship", address prefix. */
struct fdef {
    const char *obj;
    const char *name;
    const char *type;
    int len;
    const char *flags;
    const char *extra;
    const char *label;
};

#define ADDR(o, p)                                                                                 \
    {o, p "Street", "textarea", 255, "", NULL, p " Street"},                                       \
        {o, p "City", "string", 40, "", NULL, p " City"},                                          \
        {o, p "State", "string", 80, "", NULL, p " State/Province"},                               \
        {o, p "PostalCode", "string", 20, "", NULL, p " Zip/Postal Code"},                         \
        {o, p "Country", "string", 80, "", NULL, p " Country"},                                    \
        {o, p "Latitude", "double", 0, "", NULL, p " Latitude"},                                   \
        {o, p "Longitude", "double", 0, "", NULL, p " Longitude"},                                 \
        {o,                                                                                        \
         p "GeocodeAccuracy",                                                                      \
         "picklist",                                                                               \
         40,                                                                                       \
         "P",                                                                                      \
         "Address;NearAddress;Block;Street;ExtendedZip;Zip;Neighborhood;City;County;State;"        \
         "Unknown",                                                                                \
         p " Geocode Accuracy"},                                                                   \
    {                                                                                              \
        o, p "Address", "address", 0, "r", p, p " Address"                                         \
    }

static const struct fdef std_fields[] = {
    {"User", "Username", "string", 80, "RU", NULL, "Username"},
    {"User", "LastName", "string", 80, "R", NULL, "Last Name"},
    {"User", "FirstName", "string", 40, "", NULL, "First Name"},
    {"User", "Name", "string", 121, "rN", NULL, "Full Name"},
    {"User", "Email", "email", 128, "R", NULL, "Email"},
    {"User", "IsActive", "boolean", 0, "D", NULL, "Active"},

    {"Account", "Name", "string", 255, "RN", NULL, "Account Name"},
    {"Account", "AccountNumber", "string", 40, "", NULL, "Account Number"},
    {"Account", "Type", "picklist", 255, "",
     "Prospect;Customer - Direct;Customer - Channel;Channel Partner / Reseller;Installation "
     "Partner;Technology Partner;Other",
     "Account Type"},
    {"Account", "Industry", "picklist", 255, "",
     "Agriculture;Apparel;Banking;Biotechnology;Chemicals;Communications;Construction;"
     "Consulting;Education;Electronics;Energy;Engineering;Entertainment;Environmental;Finance;"
     "Food & Beverage;Government;Healthcare;Hospitality;Insurance;Machinery;Manufacturing;"
     "Media;Not For Profit;Recreation;Retail;Shipping;Technology;Telecommunications;"
     "Transportation;Utilities;Other",
     "Industry"},
    {"Account", "AccountSource", "picklist", 255, "",
     "Web;Phone Inquiry;Partner Referral;Purchased List;Other", "Account Source"},
    {"Account", "Rating", "picklist", 255, "", "Hot;Warm;Cold", "Account Rating"},
    {"Account", "Phone", "phone", 40, "", NULL, "Account Phone"},
    {"Account", "Fax", "phone", 40, "", NULL, "Account Fax"},
    {"Account", "Website", "url", 255, "", NULL, "Website"},
    {"Account", "Description", "textarea", 32000, "", NULL, "Account Description"},
    {"Account", "NumberOfEmployees", "int", 0, "", NULL, "Employees"},
    {"Account", "AnnualRevenue", "currency", 0, "", NULL, "Annual Revenue"},
    {"Account", "Sic", "string", 20, "", NULL, "SIC Code"},
    {"Account", "ParentId", "reference", 18, "", "Account:Parent", "Parent Account ID"},
    {"Account", "OwnerId", "reference", 18, "D", "User:Owner", "Owner ID"},
    ADDR("Account", "Billing"),
    ADDR("Account", "Shipping"),

    {"Contact", "LastName", "string", 80, "R", NULL, "Last Name"},
    {"Contact", "FirstName", "string", 40, "", NULL, "First Name"},
    {"Contact", "Salutation", "picklist", 40, "", "Mr.;Ms.;Mrs.;Dr.;Prof.", "Salutation"},
    {"Contact", "Name", "string", 121, "rN", NULL, "Full Name"},
    {"Contact", "AccountId", "reference", 18, "", "Account:Account", "Account ID"},
    {"Contact", "Title", "string", 128, "", NULL, "Title"},
    {"Contact", "Department", "string", 80, "", NULL, "Department"},
    {"Contact", "Email", "email", 80, "", NULL, "Email"},
    {"Contact", "Phone", "phone", 40, "", NULL, "Business Phone"},
    {"Contact", "MobilePhone", "phone", 40, "", NULL, "Mobile Phone"},
    {"Contact", "HasOptedOutOfEmail", "boolean", 0, "D", NULL, "Email Opt Out"},
    {"Contact", "OwnerId", "reference", 18, "D", "User:Owner", "Owner ID"},
    ADDR("Contact", "Mailing"),

    {"Product2", "Name", "string", 255, "RN", NULL, "Product Name"},
    {"Product2", "ProductCode", "string", 255, "", NULL, "Product Code"},
    {"Product2", "Description", "textarea", 4000, "", NULL, "Product Description"},
    {"Product2", "Family", "picklist", 255, "", "Hardware;Software;Services;Spare Parts",
     "Product Family"},
    {"Product2", "IsActive", "boolean", 0, "D", NULL, "Active"},
    {"Product2", "QuantityUnitOfMeasure", "picklist", 255, "", "Each;Piece;Box;Kilogram;Hour",
     "Quantity Unit Of Measure"},
    {"Product2", "StockKeepingUnit", "string", 180, "", NULL, "Product SKU"},
    {"Product2", "ExternalId", "string", 255, "", NULL, "External ID"},

    {"Pricebook2", "Name", "string", 255, "RN", NULL, "Price Book Name"},
    {"Pricebook2", "Description", "string", 255, "", NULL, "Description"},
    {"Pricebook2", "IsActive", "boolean", 0, "D", NULL, "Active"},
    {"Pricebook2", "IsStandard", "boolean", 0, "rD", NULL, "Is Standard Price Book"},

    {"PricebookEntry", "Name", "string", 255, "rN", NULL, "Product Name"},
    {"PricebookEntry", "Pricebook2Id", "reference", 18, "Rc", "Pricebook2:Pricebook2",
     "Price Book ID"},
    {"PricebookEntry", "Product2Id", "reference", 18, "Rc", "Product2:Product2", "Product ID"},
    {"PricebookEntry", "UnitPrice", "currency", 0, "R", NULL, "List Price"},
    {"PricebookEntry", "IsActive", "boolean", 0, "D", NULL, "Active"},
    {"PricebookEntry", "UseStandardPrice", "boolean", 0, "D", NULL, "Use Standard Price"},
    {"PricebookEntry", "ProductCode", "string", 255, "r", NULL, "Product Code"},
    {"PricebookEntry", "CurrencyIsoCode", "picklist", 3, "PD", "*USD;EUR;GBP;JPY;CHF;BRL;INR",
     "Currency ISO Code"},

    {"Opportunity", "Name", "string", 120, "RN", NULL, "Name"},
    {"Opportunity", "AccountId", "reference", 18, "", "Account:Account", "Account ID"},
    {"Opportunity", "StageName", "picklist", 255, "R",
     "Prospecting;Qualification;Needs Analysis;Value Proposition;Id. Decision Makers;"
     "Perception Analysis;Proposal/Price Quote;Negotiation/Review;Closed Won;Closed Lost",
     "Stage"},
    {"Opportunity", "CloseDate", "date", 0, "R", NULL, "Close Date"},
    {"Opportunity", "Amount", "currency", 0, "", NULL, "Amount"},
    {"Opportunity", "Probability", "percent", 0, "", NULL, "Probability (%)"},
    {"Opportunity", "Description", "textarea", 32000, "", NULL, "Description"},
    {"Opportunity", "Pricebook2Id", "reference", 18, "", "Pricebook2:Pricebook2", "Price Book ID"},
    {"Opportunity", "IsClosed", "boolean", 0, "rD", NULL, "Closed"},
    {"Opportunity", "IsWon", "boolean", 0, "rD", NULL, "Won"},
    {"Opportunity", "OwnerId", "reference", 18, "D", "User:Owner", "Owner ID"},

    {"OpportunityLineItem", "OpportunityId", "reference", 18, "Rc", "Opportunity:Opportunity",
     "Opportunity ID"},
    {"OpportunityLineItem", "PricebookEntryId", "reference", 18, "c",
     "PricebookEntry:PricebookEntry", "Price Book Entry ID"},
    {"OpportunityLineItem", "Product2Id", "reference", 18, "c", "Product2:Product2", "Product ID"},
    {"OpportunityLineItem", "Quantity", "double", 0, "R", NULL, "Quantity"},
    {"OpportunityLineItem", "UnitPrice", "currency", 0, "", NULL, "Sales Price"},
    {"OpportunityLineItem", "TotalPrice", "currency", 0, "", NULL, "Total Price"},
    {"OpportunityLineItem", "ListPrice", "currency", 0, "r", NULL, "List Price"},
    {"OpportunityLineItem", "Discount", "percent", 0, "", NULL, "Discount"},
    {"OpportunityLineItem", "ServiceDate", "date", 0, "", NULL, "Date"},
    {"OpportunityLineItem", "Description", "string", 255, "", NULL, "Line Description"},

    {"Order", "AccountId", "reference", 18, "R", "Account:Account", "Account ID"},
    {"Order", "EffectiveDate", "date", 0, "R", NULL, "Order Start Date"},
    {"Order", "EndDate", "date", 0, "", NULL, "Order End Date"},
    {"Order", "Status", "picklist", 40, "RP", "*Draft;Activated", "Status"},
    {"Order", "OrderNumber", "string", 30, "rD", NULL, "Order Number"},
    {"Order", "Name", "string", 80, "", NULL, "Order Name"},
    {"Order", "Pricebook2Id", "reference", 18, "", "Pricebook2:Pricebook2", "Price Book ID"},
    {"Order", "OpportunityId", "reference", 18, "", "Opportunity:Opportunity", "Opportunity ID"},
    {"Order", "PoNumber", "string", 80, "", NULL, "PO Number"},
    {"Order", "Description", "textarea", 32000, "", NULL, "Description"},
    {"Order", "TotalAmount", "currency", 0, "rD", NULL, "Order Amount"},
    {"Order", "OwnerId", "reference", 18, "D", "User:Owner", "Owner ID"},
    ADDR("Order", "Billing"),
    ADDR("Order", "Shipping"),

    {"OrderItem", "OrderId", "reference", 18, "Rc", "Order:Order", "Order ID"},
    {"OrderItem", "PricebookEntryId", "reference", 18, "Rc", "PricebookEntry:PricebookEntry",
     "Price Book Entry ID"},
    {"OrderItem", "Product2Id", "reference", 18, "c", "Product2:Product2", "Product ID"},
    {"OrderItem", "Quantity", "double", 0, "R", NULL, "Quantity"},
    {"OrderItem", "UnitPrice", "currency", 0, "R", NULL, "Unit Price"},
    {"OrderItem", "ListPrice", "currency", 0, "r", NULL, "List Price"},
    {"OrderItem", "TotalPrice", "currency", 0, "rD", NULL, "Total Price"},
    {"OrderItem", "Description", "string", 255, "", NULL, "Line Description"},
    {"OrderItem", "OrderItemNumber", "string", 30, "rD", NULL, "Order Product Number"},

    {"Quote", "Name", "string", 255, "RN", NULL, "Quote Name"},
    {"Quote", "OpportunityId", "reference", 18, "Rc", "Opportunity:Opportunity", "Opportunity ID"},
    {"Quote", "Pricebook2Id", "reference", 18, "", "Pricebook2:Pricebook2", "Price Book ID"},
    {"Quote", "Status", "picklist", 40, "D",
     "*Draft;Needs Review;In Review;Approved;Rejected;Presented;Accepted;Denied", "Status"},
    {"Quote", "ExpirationDate", "date", 0, "", NULL, "Expiration Date"},
    {"Quote", "Description", "textarea", 32000, "", NULL, "Description"},
    {"Quote", "QuoteNumber", "string", 30, "rD", NULL, "Quote Number"},
    {"Quote", "OwnerId", "reference", 18, "D", "User:Owner", "Owner ID"},

    {"QuoteLineItem", "QuoteId", "reference", 18, "Rc", "Quote:Quote", "Quote ID"},
    {"QuoteLineItem", "PricebookEntryId", "reference", 18, "Rc", "PricebookEntry:PricebookEntry",
     "Price Book Entry ID"},
    {"QuoteLineItem", "Product2Id", "reference", 18, "c", "Product2:Product2", "Product ID"},
    {"QuoteLineItem", "Quantity", "double", 0, "R", NULL, "Quantity"},
    {"QuoteLineItem", "UnitPrice", "currency", 0, "R", NULL, "Sales Price"},
    {"QuoteLineItem", "Discount", "percent", 0, "", NULL, "Discount"},
    {"QuoteLineItem", "Description", "string", 255, "", NULL, "Line Item Description"},
};

static const struct {
    const char *name, *prefix, *label, *plural;
} std_objects[] = {
    {"User", "005", "User", "Users"},
    {"Account", "001", "Account", "Accounts"},
    {"Contact", "003", "Contact", "Contacts"},
    {"Product2", "01t", "Product", "Products"},
    {"Pricebook2", "01s", "Price Book", "Price Books"},
    {"PricebookEntry", "01u", "Price Book Entry", "Price Book Entries"},
    {"Opportunity", "006", "Opportunity", "Opportunities"},
    {"OpportunityLineItem", "00k", "Opportunity Product", "Opportunity Product"},
    {"Order", "801", "Order", "Orders"},
    {"OrderItem", "802", "Order Product", "Order Products"},
    {"Quote", "0Q0", "Quote", "Quotes"},
    {"QuoteLineItem", "0QL", "Quote Line Item", "Quote Line Items"},
};

static const char *type_names[] = {
    "id",       "string",   "textarea", "picklist", "multipicklist", "reference",
    "boolean",  "currency", "double",   "percent",  "int",           "date",
    "datetime", "email",    "phone",    "url",      "address",
};

const char *sf_type_name(enum sf_type t)
{
    return type_names[t];
}

static int type_from_name(const char *n, enum sf_type *t)
{
    for (size_t i = 0; i < ES_ARRAY_LEN(type_names); i++) {
        if (strcasecmp(n, type_names[i]) == 0) {
            *t = (enum sf_type)i;
            return 0;
        }
    }
    if (strcasecmp(n, "text") == 0) {
        *t = SF_STRING;
        return 0;
    }
    if (strcasecmp(n, "number") == 0 || strcasecmp(n, "decimal") == 0) {
        *t = SF_DOUBLE;
        return 0;
    }
    if (strcasecmp(n, "checkbox") == 0) {
        *t = SF_BOOLEAN;
        return 0;
    }
    return -1;
}

static struct sf_object *add_obj(struct sf_schema *s, const char *name, const char *prefix,
                                 const char *label, const char *plural, int custom)
{
    ES_GROW(s->objs, s->capobjs, s->nobjs + 1);
    struct sf_object *o = &s->objs[s->nobjs++];
    memset(o, 0, sizeof *o);
    o->name = es_xstrdup(name);
    o->label = es_xstrdup(label ? label : name);
    o->plural = es_xstrdup(plural ? plural : label ? label : name);
    es_strlcpy(o->prefix, prefix, sizeof o->prefix);
    o->custom = custom;
    return o;
}

static struct sf_field *add_field(struct sf_object *o, const char *name, enum sf_type t,
                                  const char *label)
{
    ES_GROW(o->fields, o->capfields, o->nfields + 1);
    struct sf_field *f = &o->fields[o->nfields++];
    memset(f, 0, sizeof *f);
    f->name = es_xstrdup(name);
    f->label = es_xstrdup(label ? label : name);
    f->type = t;
    f->nillable = 1;
    f->createable = 1;
    f->updateable = 1;
    if (t == SF_REFERENCE || t == SF_ID) {
        f->length = 18;
    }
    if (t == SF_CURRENCY) {
        f->precision = 18;
        f->scale = 2;
    } else if (t == SF_DOUBLE || t == SF_PERCENT) {
        f->precision = 18;
        f->scale = 2;
    } else if (t == SF_INT) {
        f->precision = 9;
    } else if (t == SF_BOOLEAN) {
        f->nillable = 0;
        f->defaulted = 1;
    }
    return f;
}

static void set_picklist(struct sf_field *f, const char *spec)
{
    const char *p = spec;
    while (*p) {
        const char *e = strchr(p, ';');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int def = 0;
        if (*p == '*') {
            def = 1;
            p++;
            n--;
        }
        ES_GROW(f->picklist, f->cappick, f->npick + 1);
        f->picklist[f->npick] = es_xstrndup(p, n);
        if (def) {
            f->default_value = es_xstrdup(f->picklist[f->npick]);
            f->defaulted = 1;
        }
        f->npick++;
        p += n;
        if (*p == ';') {
            p++;
        }
    }
}

static void add_system_fields(struct sf_object *o)
{
    struct sf_field *f = add_field(o, "Id", SF_ID, "Record ID");
    f->nillable = 0;
    f->createable = f->updateable = 0;
    f->defaulted = 1;
    f->id_lookup = 1;
    f = add_field(o, "IsDeleted", SF_BOOLEAN, "Deleted");
    f->createable = f->updateable = 0;
    static const char *dts[][2] = {{"CreatedDate", "Created Date"},
                                   {"CreatedById", "Created By ID"},
                                   {"LastModifiedDate", "Last Modified Date"},
                                   {"LastModifiedById", "Last Modified By ID"},
                                   {"SystemModstamp", "System Modstamp"}};
    for (size_t i = 0; i < ES_ARRAY_LEN(dts); i++) {
        int ref = strstr(dts[i][0], "ById") != NULL;
        f = add_field(o, dts[i][0], ref ? SF_REFERENCE : SF_DATETIME, dts[i][1]);
        f->createable = f->updateable = 0;
        f->nillable = 0;
        f->defaulted = 1;
        if (ref) {
            f->reference_to = es_xstrdup("User");
            f->relationship = es_xstrndup(dts[i][0], strlen(dts[i][0]) - 2);
        }
    }
}

static void apply_flags(struct sf_field *f, const char *flags)
{
    for (const char *p = flags; *p; p++) {
        switch (*p) {
        case 'R':
            f->nillable = 0;
            break;
        case 'r':
            f->createable = f->updateable = 0;
            break;
        case 'c':
            f->updateable = 0;
            break;
        case 'P':
            f->restricted = 1;
            break;
        case 'E':
            f->external_id = f->id_lookup = 1;
            break;
        case 'U':
            f->unique = 1;
            f->id_lookup = 1;
            break;
        case 'D':
            f->defaulted = 1;
            break;
        case 'N':
            f->name_field = 1;
            f->id_lookup = 1;
            break;
        case 'n':
            f->nillable = 0;
            break;
        default:
            break;
        }
    }
}

int sf_schema_load_std(struct sf_schema *s)
{
    for (size_t i = 0; i < ES_ARRAY_LEN(std_objects); i++) {
        struct sf_object *o = add_obj(s, std_objects[i].name, std_objects[i].prefix,
                                      std_objects[i].label, std_objects[i].plural, 0);
        add_system_fields(o);
        for (size_t k = 0; k < ES_ARRAY_LEN(std_fields); k++) {
            const struct fdef *d = &std_fields[k];
            if (strcmp(d->obj, o->name) != 0) {
                continue;
            }
            enum sf_type t = SF_STRING;
            if (type_from_name(d->type, &t) != 0) {
                continue;
            }
            struct sf_field *f = add_field(o, d->name, t, d->label);
            if (d->len) {
                f->length = d->len;
            }
            if (t == SF_DOUBLE && strstr(d->name, "itude")) {
                f->scale = 15;
            }
            apply_flags(f, d->flags);
            if (d->extra && (t == SF_PICKLIST || t == SF_MULTIPICKLIST)) {
                set_picklist(f, d->extra);
            } else if (d->extra && t == SF_REFERENCE) {
                const char *colon = strchr(d->extra, ':');
                f->reference_to = es_xstrndup(d->extra, (size_t)(colon - d->extra));
                f->relationship = es_xstrdup(colon + 1);
            } else if (d->extra && t == SF_ADDRESS) {
                f->addr_prefix = es_xstrdup(d->extra);
            }
        }
    }
    return 0;
}

static int load_field(struct sf_object *o, const json_t *jf, struct es_err *err)
{
    const char *name = json_string_value(json_object_get(jf, "name"));
    const char *type = json_string_value(json_object_get(jf, "type"));
    enum sf_type t;
    if (!name || !type) {
        return es_err_set(err, ES_ECONFIG, "%s: a field needs name and type", o->name);
    }
    if (type_from_name(type, &t) != 0) {
        return es_err_set(err, ES_ECONFIG, "%s.%s: unknown type '%s'", o->name, name, type);
    }
    if (sf_fld(o, name)) {
        return es_err_set(err, ES_ECONFIG, "%s.%s: declared twice", o->name, name);
    }
    struct sf_field *f = add_field(o, name, t, json_string_value(json_object_get(jf, "label")));
    json_t *v;
    if ((v = json_object_get(jf, "length"))) {
        f->length = (int)json_integer_value(v);
    } else if (t == SF_STRING || t == SF_PICKLIST || t == SF_EMAIL || t == SF_PHONE ||
               t == SF_URL) {
        f->length = 255;
    } else if (t == SF_TEXTAREA) {
        f->length = 32768;
    }
    if ((v = json_object_get(jf, "precision"))) {
        f->precision = (int)json_integer_value(v);
    }
    if ((v = json_object_get(jf, "scale"))) {
        f->scale = (int)json_integer_value(v);
    }
    if (json_is_true(json_object_get(jf, "required"))) {
        f->nillable = 0;
    }
    if (json_is_true(json_object_get(jf, "externalId"))) {
        f->external_id = f->id_lookup = 1;
    }
    if (json_is_true(json_object_get(jf, "unique"))) {
        f->unique = f->id_lookup = 1;
    }
    if (json_is_true(json_object_get(jf, "restrictedPicklist"))) {
        f->restricted = 1;
    }
    if (json_is_false(json_object_get(jf, "updateable"))) {
        f->updateable = 0;
    }
    if ((v = json_object_get(jf, "picklistValues")) && json_is_array(v)) {
        size_t i;
        json_t *pv;
        json_array_foreach(v, i, pv)
        {
            if (json_is_string(pv)) {
                ES_GROW(f->picklist, f->cappick, f->npick + 1);
                f->picklist[f->npick++] = es_xstrdup(json_string_value(pv));
            }
        }
    }
    if ((v = json_object_get(jf, "defaultValue")) && json_is_string(v)) {
        f->default_value = es_xstrdup(json_string_value(v));
        f->defaulted = 1;
    } else if (t == SF_BOOLEAN && (v = json_object_get(jf, "defaultValue"))) {
        f->default_value = es_xstrdup(json_is_true(v) ? "true" : "false");
    }
    if (t == SF_REFERENCE) {
        const char *to = json_string_value(json_object_get(jf, "referenceTo"));
        const char *rel = json_string_value(json_object_get(jf, "relationshipName"));
        if (!to) {
            return es_err_set(err, ES_ECONFIG, "%s.%s: a reference needs referenceTo", o->name,
                              name);
        }
        f->reference_to = es_xstrdup(to);
        if (rel) {
            f->relationship = es_xstrdup(rel);
        } else if (strlen(name) > 3 && strcmp(name + strlen(name) - 3, "__c") == 0) {
            f->relationship = es_xasprintf("%.*s__r", (int)strlen(name) - 3, name);
        }
    }
    return ES_OK;
}

int sf_schema_load_file(struct sf_schema *s, const char *path, struct es_err *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        return es_err_set(err, ES_ECONFIG, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    }
    int rc = ES_OK;
    json_t *objs = json_object_get(root, "objects");
    const char *oname;
    json_t *jo;
    int next_custom = 0;
    if (!json_is_object(objs)) {
        rc = es_err_set(err, ES_ECONFIG, "%s: missing \"objects\"", path);
        goto done;
    }
    json_object_foreach(objs, oname, jo)
    {
        struct sf_object *o = NULL;
        for (int i = 0; i < s->nobjs; i++) {
            if (strcasecmp(s->objs[i].name, oname) == 0) {
                o = &s->objs[i];
            }
        }
        if (!o) {
            if (strlen(oname) < 4 || strcmp(oname + strlen(oname) - 3, "__c") != 0) {
                rc =
                    es_err_set(err, ES_ECONFIG, "%s: new object '%s' must end in __c", path, oname);
                goto done;
            }
            const char *pfx = json_string_value(json_object_get(jo, "keyPrefix"));
            char gen[4];
            if (!pfx || strlen(pfx) != 3) {
                snprintf(gen, sizeof gen, "a%02d", next_custom);
                pfx = gen;
            }
            next_custom++;
            o = add_obj(s, oname, pfx, json_string_value(json_object_get(jo, "label")),
                        json_string_value(json_object_get(jo, "labelPlural")), 1);
            add_system_fields(o);
            struct sf_field *f = add_field(o, "Name", SF_STRING, "Name");
            f->length = 80;
            f->name_field = 1;
            f = add_field(o, "OwnerId", SF_REFERENCE, "Owner ID");
            f->reference_to = es_xstrdup("User");
            f->relationship = es_xstrdup("Owner");
            f->defaulted = 1;
        }
        size_t i;
        json_t *jf;
        json_array_foreach(json_object_get(jo, "fields"), i, jf)
        {
            rc = load_field(o, jf, err);
            if (rc) {
                es_err_prefix(err, "%s", path);
                goto done;
            }
        }
    }
done:
    json_decref(root);
    return rc;
}

void sf_schema_free(struct sf_schema *s)
{
    for (int i = 0; i < s->nobjs; i++) {
        struct sf_object *o = &s->objs[i];
        for (int k = 0; k < o->nfields; k++) {
            struct sf_field *f = &o->fields[k];
            es_free(f->name);
            es_free(f->label);
            for (int p = 0; p < f->npick; p++) {
                es_free(f->picklist[p]);
            }
            es_free(f->picklist);
            es_free(f->default_value);
            es_free(f->reference_to);
            es_free(f->relationship);
            es_free(f->addr_prefix);
        }
        es_free(o->fields);
        es_free(o->name);
        es_free(o->label);
        es_free(o->plural);
    }
    es_free(s->objs);
    memset(s, 0, sizeof *s);
}

struct sf_object *sf_obj(struct sf_ctx *c, const char *name)
{
    for (int i = 0; i < c->schema.nobjs; i++) {
        if (strcasecmp(c->schema.objs[i].name, name) == 0) {
            return &c->schema.objs[i];
        }
    }
    return NULL;
}

struct sf_object *sf_obj_by_prefix(struct sf_ctx *c, const char *id)
{
    for (int i = 0; i < c->schema.nobjs; i++) {
        if (strncmp(c->schema.objs[i].prefix, id, 3) == 0) {
            return &c->schema.objs[i];
        }
    }
    return NULL;
}

struct sf_field *sf_fld(const struct sf_object *o, const char *name)
{
    for (int i = 0; i < o->nfields; i++) {
        if (strcasecmp(o->fields[i].name, name) == 0) {
            return &o->fields[i];
        }
    }
    return NULL;
}

struct sf_field *sf_fld_rel(const struct sf_object *o, const char *rel)
{
    for (int i = 0; i < o->nfields; i++) {
        if (o->fields[i].relationship && strcasecmp(o->fields[i].relationship, rel) == 0) {
            return &o->fields[i];
        }
    }
    return NULL;
}

static const char *soap_type(enum sf_type t)
{
    switch (t) {
    case SF_ID:
    case SF_REFERENCE:
        return "tns:ID";
    case SF_BOOLEAN:
        return "xsd:boolean";
    case SF_CURRENCY:
    case SF_DOUBLE:
    case SF_PERCENT:
        return "xsd:double";
    case SF_INT:
        return "xsd:int";
    case SF_DATE:
        return "xsd:date";
    case SF_DATETIME:
        return "xsd:dateTime";
    case SF_ADDRESS:
        return "urn:address";
    default:
        return "xsd:string";
    }
}

static json_t *describe_field(const struct sf_field *f)
{
    int text = f->type == SF_STRING || f->type == SF_TEXTAREA || f->type == SF_PICKLIST ||
               f->type == SF_MULTIPICKLIST || f->type == SF_EMAIL || f->type == SF_PHONE ||
               f->type == SF_URL || f->type == SF_ID || f->type == SF_REFERENCE;
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(f->name));
    json_object_set_new(j, "label", json_string(f->label));
    json_object_set_new(j, "type", json_string(sf_type_name(f->type)));
    json_object_set_new(j, "soapType", json_string(soap_type(f->type)));
    json_object_set_new(j, "length", json_integer(text ? f->length : 0));
    json_object_set_new(j, "byteLength", json_integer(text ? f->length * 3 : 0));
    int numeric = f->type == SF_CURRENCY || f->type == SF_DOUBLE || f->type == SF_PERCENT;
    json_object_set_new(j, "precision", json_integer(numeric ? f->precision : 0));
    json_object_set_new(j, "scale", json_integer(numeric ? f->scale : 0));
    json_object_set_new(j, "digits", json_integer(f->type == SF_INT ? 9 : 0));
    json_object_set_new(j, "nillable", json_boolean(f->nillable));
    json_object_set_new(j, "createable", json_boolean(f->createable));
    json_object_set_new(j, "updateable", json_boolean(f->updateable));
    json_object_set_new(j, "defaultedOnCreate", json_boolean(f->defaulted));
    json_object_set_new(j, "unique", json_boolean(f->unique));
    json_object_set_new(j, "externalId", json_boolean(f->external_id));
    json_object_set_new(j, "idLookup", json_boolean(f->id_lookup));
    json_object_set_new(j, "nameField", json_boolean(f->name_field));
    json_object_set_new(j, "calculated", json_boolean(0));
    json_object_set_new(
        j, "custom",
        json_boolean(strlen(f->name) > 3 && strcmp(f->name + strlen(f->name) - 3, "__c") == 0));
    json_object_set_new(j, "filterable", json_boolean(f->type != SF_TEXTAREA));
    json_object_set_new(j, "sortable", json_boolean(f->type != SF_TEXTAREA));
    json_object_set_new(j, "restrictedPicklist", json_boolean(f->restricted));
    json_object_set_new(j, "dependentPicklist", json_boolean(0));
    json_object_set_new(j, "controllerName", json_null());
    json_object_set_new(j, "defaultValue",
                        f->type == SF_BOOLEAN ? json_boolean(f->default_value &&
                                                             strcmp(f->default_value, "true") == 0)
                                              : json_null());
    json_t *refs = json_array();
    if (f->reference_to) {
        json_array_append_new(refs, json_string(f->reference_to));
    }
    json_object_set_new(j, "referenceTo", refs);
    json_object_set_new(j, "relationshipName",
                        f->relationship ? json_string(f->relationship) : json_null());
    json_t *pl = json_array();
    for (int i = 0; i < f->npick; i++) {
        json_array_append_new(
            pl, json_pack("{s:b,s:b,s:s,s:n,s:s}", "active", 1, "defaultValue",
                          f->default_value && strcmp(f->default_value, f->picklist[i]) == 0,
                          "label", f->picklist[i], "validFor", "value", f->picklist[i]));
    }
    json_object_set_new(j, "picklistValues", pl);
    return j;
}

static json_t *object_urls(const struct sf_object *o, const char *ver)
{
    char base[160];
    snprintf(base, sizeof base, "/services/data/v%s/sobjects/%s", ver, o->name);
    json_t *u = json_object();
    json_object_set_new(u, "sobject", json_string(base));
    char t[240];
    snprintf(t, sizeof t, "%s/describe", base);
    json_object_set_new(u, "describe", json_string(t));
    snprintf(t, sizeof t, "%s/{ID}", base);
    json_object_set_new(u, "rowTemplate", json_string(t));
    return u;
}

static void object_flags(json_t *j, const struct sf_object *o, const char *ver)
{
    json_object_set_new(j, "name", json_string(o->name));
    json_object_set_new(j, "label", json_string(o->label));
    json_object_set_new(j, "labelPlural", json_string(o->plural));
    json_object_set_new(j, "keyPrefix", json_string(o->prefix));
    json_object_set_new(j, "custom", json_boolean(o->custom));
    int user = strcmp(o->name, "User") == 0;
    json_object_set_new(j, "createable", json_boolean(!user));
    json_object_set_new(j, "updateable", json_boolean(!user));
    json_object_set_new(j, "deletable", json_boolean(!user));
    json_object_set_new(j, "queryable", json_boolean(1));
    json_object_set_new(j, "retrieveable", json_boolean(1));
    json_object_set_new(j, "searchable", json_boolean(1));
    json_object_set_new(j, "layoutable", json_boolean(1));
    json_object_set_new(j, "replicateable", json_boolean(1));
    json_object_set_new(j, "triggerable", json_boolean(1));
    json_object_set_new(j, "undeletable", json_boolean(!user));
    json_object_set_new(j, "urls", object_urls(o, ver));
}

json_t *sf_describe(struct sf_ctx *c, const struct sf_object *o, const char *ver)
{
    json_t *j = json_object();
    object_flags(j, o, ver);
    json_t *fields = json_array();
    for (int i = 0; i < o->nfields; i++) {
        json_array_append_new(fields, describe_field(&o->fields[i]));
    }
    json_object_set_new(j, "fields", fields);
    json_t *children = json_array();
    for (int i = 0; i < c->schema.nobjs; i++) {
        const struct sf_object *other = &c->schema.objs[i];
        for (int k = 0; k < other->nfields; k++) {
            const struct sf_field *f = &other->fields[k];
            if (f->reference_to && strcmp(f->reference_to, o->name) == 0 &&
                strcmp(f->name, "CreatedById") && strcmp(f->name, "LastModifiedById")) {
                json_array_append_new(
                    children, json_pack("{s:s,s:s,s:b,s:b}", "childSObject", other->name, "field",
                                        f->name, "cascadeDelete", 0, "restrictedDelete", 0));
            }
        }
    }
    json_object_set_new(j, "childRelationships", children);
    json_object_set_new(j, "recordTypeInfos",
                        json_pack("[{s:b,s:b,s:b,s:s,s:s,s:s}]", "active", 1, "available", 1,
                                  "defaultRecordTypeMapping", 1, "name", "Master", "developerName",
                                  "Master", "recordTypeId", "012000000000000AAA"));
    return j;
}

json_t *sf_describe_global(struct sf_ctx *c, const char *ver)
{
    json_t *arr = json_array();
    for (int i = 0; i < c->schema.nobjs; i++) {
        json_t *j = json_object();
        object_flags(j, &c->schema.objs[i], ver);
        json_array_append_new(arr, j);
    }
    return json_pack("{s:s,s:i,s:o}", "encoding", "UTF-8", "maxBatchSize", 200, "sobjects", arr);
}
