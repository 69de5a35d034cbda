/* SPDX-License-Identifier: MIT */
/*
 * Salesforce emulator: records. Ids (15-char base plus the 3-char case checksum), the
 * SQLite table of records, validation on write the way an org answers (required fields,
 * lengths, restricted picklists, types, references, unique fields, the Account duplicate
 * rule, price book rules), system fields and timestamps, and the change notifications
 * (CDC-shaped signed JSON webhook, SOAP Outbound Messages) queued on every write.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/hmac.h"
#include "core/mem.h"
#include "sf_int.h"

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int sf_db_init(struct sf_ctx *c, struct es_err *err)
{
    return sb_db_exec(c->db,
                      "CREATE TABLE IF NOT EXISTS rec(id TEXT PRIMARY KEY, obj TEXT NOT NULL, "
                      "data TEXT NOT NULL, created INTEGER NOT NULL, modstamp INTEGER NOT NULL, "
                      "deleted INTEGER NOT NULL DEFAULT 0, deleted_at INTEGER);"
                      "CREATE INDEX IF NOT EXISTS rec_obj ON rec(obj, modstamp);"
                      "CREATE TABLE IF NOT EXISTS seq(name TEXT PRIMARY KEY, n INTEGER NOT "
                      "NULL);"
                      "CREATE TABLE IF NOT EXISTS token(access TEXT PRIMARY KEY, refresh TEXT, "
                      "issued INTEGER NOT NULL, expires INTEGER NOT NULL);"
                      "CREATE TABLE IF NOT EXISTS job(id TEXT PRIMARY KEY, info TEXT NOT NULL, "
                      "data BLOB, ok BLOB, failed BLOB, unprocessed BLOB);",
                      err);
}

int sf_db_clear(struct sf_ctx *c, struct es_err *err)
{
    return sb_db_exec(c->db, "DELETE FROM rec; DELETE FROM seq; DELETE FROM job;", err);
}

static int64_t next_seq(struct sf_ctx *c, const char *name)
{
    int64_t n = 1;
    if (!c->seq_st) {
        sqlite3_prepare_v3(c->db,
                           "INSERT INTO seq(name,n) VALUES(?1,1) ON CONFLICT(name) DO UPDATE SET "
                           "n=n+1 RETURNING n",
                           -1, SQLITE_PREPARE_PERSISTENT, &c->seq_st, NULL);
    }
    sqlite3_stmt *st = c->seq_st;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return n;
}

static void checksum(const char *id15, char out[19])
{
    static const char map[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    memcpy(out, id15, 15);
    for (int chunk = 0; chunk < 3; chunk++) {
        int v = 0;
        for (int i = 0; i < 5; i++) {
            char ch = id15[chunk * 5 + i];
            if (ch >= 'A' && ch <= 'Z') {
                v |= 1 << i;
            }
        }
        out[15 + chunk] = map[v];
    }
    out[18] = '\0';
}

void sf_new_id(struct sf_ctx *c, const char *prefix, char out[19])
{
    int64_t n = next_seq(c, prefix);
    char id[16];
    memcpy(id, prefix, 3);
    id[3] = 'S';
    id[4] = 'b';
    id[5] = '0';
    for (int i = 14; i >= 6; i--) {
        id[i] = b62[n % 62];
        n /= 62;
    }
    id[15] = '\0';
    checksum(id, out);
}

int sf_id18(const char *id, char out[19])
{
    size_t n = strlen(id);
    if (n != 15 && n != 18) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)id[i])) {
            return 0;
        }
    }
    char fixed[19];
    checksum(id, fixed);
    if (n == 18 && strcasecmp(fixed + 15, id + 15) != 0) {
        return 0;
    }
    memcpy(out, fixed, 19);
    return 1;
}

void sf_fmt_dt(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+0000", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return 0;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int parse_date(const char *s, int *y, int *m, int *d)
{
    if (strlen(s) < 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, y) || !digits(s + 5, 2, m) ||
        !digits(s + 8, 2, d) || *m < 1 || *m > 12 || *d < 1 || *d > 31) {
        return 0;
    }
    return 1;
}

int sf_parse_dt(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, se = 0, frac = 0;
    if (!parse_date(s, &y, &mo, &d)) {
        return 0;
    }
    const char *p = s + 10;
    if (*p == 'T' || *p == ' ') {
        if (!digits(p + 1, 2, &h) || p[3] != ':' || !digits(p + 4, 2, &mi)) {
            return 0;
        }
        p += 6;
        if (*p == ':') {
            if (!digits(p + 1, 2, &se)) {
                return 0;
            }
            p += 3;
        }
        if (*p == '.') {
            p++;
            int nd = 0;
            while (isdigit((unsigned char)*p)) {
                if (nd < 3) {
                    frac = frac * 10 + (*p - '0');
                }
                nd++;
                p++;
            }
            for (; nd < 3; nd++) {
                frac *= 10;
            }
        }
    } else if (*p) {
        return 0;
    }
    int off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        if (!digits(p + 1, 2, &oh)) {
            return 0;
        }
        const char *q = p + 3;
        if (*q == ':') {
            q++;
        }
        if (!digits(q, 2, &om)) {
            return 0;
        }
        off = sign * (oh * 60 + om);
        p = q + 2;
    }
    if (*p || h > 23 || mi > 59 || se > 60) {
        return 0;
    }
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - off * 60) * 1000 + frac;
    return 1;
}

void sf_err_add(json_t *errs, const char *code, const char *msg, const char *field)
{
    json_t *f = json_array();
    if (field) {
        json_array_append_new(f, json_string(field));
    }
    json_array_append_new(
        errs, json_pack("{s:s,s:s,s:o}", "message", msg, "errorCode", code, "fields", f));
}

json_t *sf_rec_get(struct sf_ctx *c, const char *id, int with_deleted, int *is_deleted)
{
    char id18[19];
    if (!sf_id18(id, id18)) {
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    json_t *out = NULL;
    sqlite3_prepare_v2(c->db, "SELECT data, deleted FROM rec WHERE id=?1", -1, &st, NULL);
    sqlite3_bind_text(st, 1, id18, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        int del = sqlite3_column_int(st, 1);
        if (is_deleted) {
            *is_deleted = del;
        }
        if (!del || with_deleted) {
            out = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        }
    }
    sqlite3_finalize(st);
    return out;
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

static void errf(json_t *errs, const char *code, const char *field, const char *fmt, ...)
    ES_PRINTF(4, 5);

static void errf(json_t *errs, const char *code, const char *field, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sf_err_add(errs, code, msg, field);
}

static int parse_number(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 1;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        *out = strtod(s, &end);
        return end != s && *end == '\0' && isfinite(*out);
    }
    return 0;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return "VALUE_STRING";
    case JSON_INTEGER:
        return "VALUE_NUMBER_INT";
    case JSON_REAL:
        return "VALUE_NUMBER_FLOAT";
    case JSON_TRUE:
        return "VALUE_TRUE";
    case JSON_FALSE:
        return "VALUE_FALSE";
    case JSON_OBJECT:
        return "START_OBJECT";
    case JSON_ARRAY:
        return "START_ARRAY";
    default:
        return "VALUE_NULL";
    }
}

static void parser_error(json_t *errs, const char *type, const json_t *v)
{
    char shown[200] = "";
    if (json_is_string(v)) {
        es_strlcpy(shown, json_string_value(v), sizeof shown);
    } else if (json_is_number(v)) {
        snprintf(shown, sizeof shown, "%g", json_number_value(v));
    }
    errf(errs, "JSON_PARSER_ERROR", NULL,
         "Cannot deserialize instance of %s from %s value %s or request may be missing a "
         "required field at [line:1, column:1]",
         type, json_kind(v), shown);
}

/* Checks and normalizes one value for field f; returns the value to store (new ref), or
 * NULL after adding an error. A JSON null is returned as json_null(). */
static json_t *coerce(struct sf_ctx *c, const struct sf_field *f, const json_t *v, json_t *errs)
{
    if (json_is_null(v)) {
        if (f->type == SF_BOOLEAN) {
            return json_false();
        }
        return json_null();
    }
    switch (f->type) {
    case SF_BOOLEAN:
        if (json_is_boolean(v)) {
            return json_incref((json_t *)v);
        }
        if (json_is_string(v) && (strcasecmp(json_string_value(v), "true") == 0 ||
                                  strcasecmp(json_string_value(v), "false") == 0)) {
            return json_boolean(strcasecmp(json_string_value(v), "true") == 0);
        }
        parser_error(errs, "boolean", v);
        return NULL;
    case SF_CURRENCY:
    case SF_DOUBLE:
    case SF_PERCENT:
    case SF_INT: {
        double d;
        if (!parse_number(v, &d)) {
            parser_error(errs, f->type == SF_INT ? "int" : "double", v);
            return NULL;
        }
        if (f->type == SF_INT) {
            if (d != floor(d) || fabs(d) > 2147483647.0) {
                errf(errs, "NUMBER_OUTSIDE_VALID_RANGE", f->name,
                     "%s: value outside of valid range on numeric field: %g", f->label, d);
                return NULL;
            }
            return json_integer((json_int_t)d);
        }
        double lim = pow(10, f->precision - f->scale);
        if (fabs(d) >= lim) {
            errf(errs, "NUMBER_OUTSIDE_VALID_RANGE", f->name,
                 "%s: value outside of valid range on numeric field: %g", f->label, d);
            return NULL;
        }
        double scale = pow(10, f->scale);
        return json_real(round(d * scale) / scale);
    }
    case SF_DATE: {
        int y, m, d;
        if (!json_is_string(v) || strlen(json_string_value(v)) != 10 ||
            !parse_date(json_string_value(v), &y, &m, &d)) {
            parser_error(errs, "date", v);
            return NULL;
        }
        return json_incref((json_t *)v);
    }
    case SF_DATETIME: {
        int64_t ms;
        if (!json_is_string(v) || !sf_parse_dt(json_string_value(v), &ms)) {
            parser_error(errs, "datetime", v);
            return NULL;
        }
        char out[32];
        sf_fmt_dt(ms, out);
        return json_string(out);
    }
    case SF_REFERENCE:
    case SF_ID: {
        char id18[19];
        if (!json_is_string(v)) {
            parser_error(errs, "id", v);
            return NULL;
        }
        const char *s = json_string_value(v);
        if (!*s) {
            return json_null();
        }
        if (!sf_id18(s, id18)) {
            errf(errs, "MALFORMED_ID", f->name, "%s: id value of incorrect type: %s", f->label, s);
            return NULL;
        }
        struct sf_object *target = f->reference_to ? sf_obj(c, f->reference_to) : NULL;
        if (target && strncmp(id18, target->prefix, 3) != 0) {
            errf(errs, "FIELD_INTEGRITY_EXCEPTION", f->name, "%s: id value of incorrect type: %s",
                 f->label, s);
            return NULL;
        }
        json_t *r = sf_rec_get(c, id18, 0, NULL);
        if (!r) {
            errf(errs, "INVALID_CROSS_REFERENCE_KEY", f->name, "invalid cross reference id");
            return NULL;
        }
        json_decref(r);
        return json_string(id18);
    }
    default:
        break;
    }
    /* text kinds */
    char num[64];
    const char *s;
    if (json_is_string(v)) {
        s = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        s = num;
    } else if (json_is_real(v)) {
        snprintf(num, sizeof num, "%.15g", json_real_value(v));
        s = num;
    } else if (json_is_boolean(v)) {
        s = json_is_true(v) ? "true" : "false";
    } else {
        parser_error(errs, "String", v);
        return NULL;
    }
    if (!*s) {
        return json_null();
    }
    if (f->length && utf8_len(s) > (size_t)f->length) {
        errf(errs, "STRING_TOO_LONG", f->name, "%s: data value too large: %.80s (max length=%d)",
             f->label, s, f->length);
        return NULL;
    }
    if (f->type == SF_EMAIL) {
        const char *at = strchr(s, '@');
        if (!at || at == s || !strchr(at, '.') || strchr(s, ' ')) {
            errf(errs, "INVALID_EMAIL_ADDRESS", f->name, "%s: invalid email address: %s", f->label,
                 s);
            return NULL;
        }
    }
    if ((f->type == SF_PICKLIST || f->type == SF_MULTIPICKLIST) && f->restricted) {
        int ok = 0;
        for (int i = 0; i < f->npick && !ok; i++) {
            ok = strcmp(f->picklist[i], s) == 0;
        }
        if (!ok) {
            errf(errs, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f->name,
                 "%s: bad value for restricted picklist field: %s", f->label, s);
            return NULL;
        }
    }
    return json_string(s);
}

/* Applies the input fields onto rec (create or update); collects errors. changed gets the
 * names of fields whose value changed. */
static void apply_input(struct sf_ctx *c, const struct sf_object *o, json_t *rec, json_t *in,
                        int create, json_t *changed, json_t *errs)
{
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        if (strcmp(k, "attributes") == 0) {
            continue;
        }
        struct sf_field *f = sf_fld(o, k);
        if (!f) {
            errf(errs, "INVALID_FIELD", NULL, "No such column '%s' on sobject of type %s", k,
                 o->name);
            continue;
        }
        if (f->type == SF_ID) {
            if (create) {
                sf_err_add(errs, "INVALID_FIELD",
                           "The Id field should not be specified in the sobject data.", NULL);
            }
            continue;
        }
        if (create ? !f->createable : !f->updateable) {
            errf(errs, "INVALID_FIELD_FOR_INSERT_UPDATE", f->name,
                 "Unable to create/update fields: %s. Please check the security settings of "
                 "this field and verify that it is read/write for your profile or permission "
                 "set.",
                 f->name);
            continue;
        }
        json_t *val = coerce(c, f, v, errs);
        if (!val) {
            continue;
        }
        json_t *old = json_object_get(rec, f->name);
        int same = (old && json_equal(old, val)) || (!old && json_is_null(val));
        if (!same && changed) {
            json_array_append_new(changed, json_string(f->name));
        }
        if (json_is_null(val)) {
            json_object_del(rec, f->name);
            json_decref(val);
        } else {
            json_object_set_new(rec, f->name, val);
        }
    }
}

static void fill_defaults(const struct sf_object *o, json_t *rec)
{
    for (int i = 0; i < o->nfields; i++) {
        const struct sf_field *f = &o->fields[i];
        if (json_object_get(rec, f->name)) {
            continue;
        }
        if (f->type == SF_BOOLEAN) {
            json_object_set_new(
                rec, f->name,
                json_boolean(f->default_value && strcmp(f->default_value, "true") == 0));
        } else if (f->default_value && f->createable) {
            json_object_set_new(rec, f->name, json_string(f->default_value));
        }
    }
}

static void check_required(const struct sf_object *o, const json_t *rec, json_t *errs)
{
    char list[600] = "";
    json_t *fields = json_array();
    for (int i = 0; i < o->nfields; i++) {
        const struct sf_field *f = &o->fields[i];
        if (f->nillable || !f->createable || f->type == SF_BOOLEAN) {
            continue;
        }
        json_t *v = json_object_get(rec, f->name);
        if (v && !json_is_null(v)) {
            continue;
        }
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", f->name);
        json_array_append_new(fields, json_string(f->name));
    }
    if (json_array_size(fields)) {
        char msg[700];
        snprintf(msg, sizeof msg, "Required fields are missing: [%s]", list);
        json_array_append_new(errs, json_pack("{s:s,s:s,s:o}", "message", msg, "errorCode",
                                              "REQUIRED_FIELD_MISSING", "fields", fields));
    } else {
        json_decref(fields);
    }
}

/* Live records of obj whose field equals value (case-insensitive); ids appended to out. */
static void find_by_field(struct sf_ctx *c, const char *obj, const char *field, const char *value,
                          const char *except, json_t *out)
{
    sqlite3_stmt *st = NULL;
    char path[300];
    snprintf(path, sizeof path, "$.\"%s\"", field);
    /* A field name (from the schema: letters, digits, _) goes into the SQL text, so that an
     * index on the expression serves the lookup: upserts and unique checks by external id
     * stay O(log n) instead of scanning every record (a 50,000-row bulk upsert). */
    int plain = strlen(field) < 100;
    for (const char *p = field; *p && plain; p++) {
        plain = isalnum((unsigned char)*p) || *p == '_';
    }
    if (plain) {
        char sql[600];
        snprintf(sql, sizeof sql,
                 "CREATE INDEX IF NOT EXISTS rec_f_%s ON rec(obj, "
                 "lower(CAST(json_extract(data,'%s') AS TEXT)))",
                 field, path);
        (void)sqlite3_exec(c->db, sql, NULL, NULL, NULL);
        snprintf(sql, sizeof sql,
                 "SELECT id FROM rec WHERE obj=?1 AND deleted=0 AND "
                 "lower(CAST(json_extract(data,'%s') AS TEXT))=lower(?3) ORDER BY id",
                 path);
        sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    } else {
        sqlite3_prepare_v2(c->db,
                           "SELECT id FROM rec WHERE obj=?1 AND deleted=0 AND "
                           "lower(CAST(json_extract(data,?2) AS TEXT))=lower(?3) ORDER BY id",
                           -1, &st, NULL);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    }
    sqlite3_bind_text(st, 1, obj, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (!except || strcmp(id, except) != 0) {
            json_array_append_new(out, json_string(id));
        }
    }
    sqlite3_finalize(st);
}

static const char *str_of(const json_t *rec, const char *k)
{
    const char *s = json_string_value(json_object_get(rec, k));
    return s ? s : "";
}

/* Rules beyond single fields: unique values, duplicate rule, price books, derived fields. */
static void check_rules(struct sf_ctx *c, const struct sf_object *o, json_t *rec, const char *self,
                        int allow_dup, json_t *errs)
{
    /* The demo seed is unique by construction (numbered names, account numbers and
     * e-mails): skipping the scans for unique values and duplicates while seeding turns an
     * O(n^2) seed into O(n) (5,200 Accounts: seconds instead of tens of seconds under ASan). */
    for (int i = 0; i < o->nfields && !c->seeding; i++) {
        const struct sf_field *f = &o->fields[i];
        json_t *v = json_object_get(rec, f->name);
        if (!f->unique || !json_is_string(v)) {
            continue;
        }
        json_t *ids = json_array();
        find_by_field(c, o->name, f->name, json_string_value(v), self, ids);
        if (json_array_size(ids)) {
            errf(errs, "DUPLICATE_VALUE", NULL,
                 "duplicate value found: %s duplicates value on record with id: %s", f->name,
                 json_string_value(json_array_get(ids, 0)));
        }
        json_decref(ids);
    }
    if (strcmp(o->name, "Account") == 0 && c->dup_rule && !allow_dup && !c->seeding &&
        *str_of(rec, "BillingPostalCode") && *str_of(rec, "Name")) {
        json_t *a = json_array(), *b = json_array();
        find_by_field(c, "Account", "Name", str_of(rec, "Name"), self, a);
        find_by_field(c, "Account", "BillingPostalCode", str_of(rec, "BillingPostalCode"), self, b);
        size_t i, k;
        json_t *x, *y;
        json_t *matches = json_array();
        json_array_foreach(a, i, x)
        {
            json_array_foreach(b, k, y)
            {
                if (json_equal(x, y)) {
                    char url[120];
                    snprintf(url, sizeof url, "/services/data/v60.0/sobjects/Account/%s",
                             json_string_value(x));
                    json_array_append_new(matches, json_pack("{s:[],s:[],s:f,s:{s:{s:s,s:s},s:O}}",
                                                             "additionalInformation", "fieldDiffs",
                                                             "matchConfidence", 100.0, "record",
                                                             "attributes", "type", "Account", "url",
                                                             url, "Id", x));
                }
            }
        }
        if (json_array_size(matches)) {
            /* the org's answer names the existing records, so a client can link to them */
            json_t *dr = json_pack(
                "{s:b,s:s,s:s,s:s,s:[{s:s,s:[],s:s,s:O,s:s,s:I,s:b}]}", "allowSave", 0,
                "duplicateRule", "Standard_Account_Duplicate_Rule", "duplicateRuleEntityType",
                "Account", "errorMessage",
                "You're creating a duplicate record. We recommend you use an existing record "
                "instead.",
                "matchResults", "entityType", "Account", "errors", "matchEngine",
                "ExactMatchEngine", "matchRecords", matches, "rule",
                "Sandbox_Account_Name_PostalCode", "size", (json_int_t)json_array_size(matches),
                "success", 1);
            json_array_append_new(errs, json_pack("{s:o,s:s,s:s,s:[]}", "duplicateResult", dr,
                                                  "errorCode", "DUPLICATES_DETECTED", "message",
                                                  "Use one of these records?", "fields"));
        }
        json_decref(matches);
        json_decref(a);
        json_decref(b);
    }
    if (strcmp(o->name, "OrderItem") == 0 && !self && !json_array_size(errs)) {
        json_t *ord = sf_rec_get(c, str_of(rec, "OrderId"), 0, NULL);
        json_t *pbe = sf_rec_get(c, str_of(rec, "PricebookEntryId"), 0, NULL);
        const char *opb = ord ? str_of(ord, "Pricebook2Id") : "";
        if (!*opb) {
            sf_err_add(errs, "FIELD_INTEGRITY_EXCEPTION", "Price Book Not Set on Order", NULL);
        } else if (pbe && strcmp(opb, str_of(pbe, "Pricebook2Id")) != 0) {
            sf_err_add(errs, "FIELD_INTEGRITY_EXCEPTION",
                       "field integrity exception: PricebookEntryId (pricebook entry is in a "
                       "different pricebook than the one assigned to the order, or order has "
                       "no pricebook assigned)",
                       "PricebookEntryId");
        }
        json_decref(ord);
        json_decref(pbe);
    }
    if (strcmp(o->name, "PricebookEntry") == 0 && !self && !json_array_size(errs)) {
        json_t *pb = sf_rec_get(c, str_of(rec, "Pricebook2Id"), 0, NULL);
        int standard = pb && json_is_true(json_object_get(pb, "IsStandard"));
        json_decref(pb);
        json_t *same = json_array();
        find_by_field(c, "PricebookEntry", "Product2Id", str_of(rec, "Product2Id"), NULL, same);
        int has_std = 0, dup = 0;
        size_t i;
        json_t *id;
        json_array_foreach(same, i, id)
        {
            json_t *e = sf_rec_get(c, json_string_value(id), 0, NULL);
            json_t *epb = e ? sf_rec_get(c, str_of(e, "Pricebook2Id"), 0, NULL) : NULL;
            if (epb && json_is_true(json_object_get(epb, "IsStandard"))) {
                has_std = 1;
            }
            if (e && strcmp(str_of(e, "Pricebook2Id"), str_of(rec, "Pricebook2Id")) == 0 &&
                strcmp(str_of(e, "CurrencyIsoCode"), str_of(rec, "CurrencyIsoCode")) == 0) {
                dup = 1;
            }
            json_decref(epb);
            json_decref(e);
        }
        json_decref(same);
        if (dup) {
            sf_err_add(errs, "DUPLICATE_VALUE",
                       "This price definition already exists in this price book", NULL);
        } else if (!standard && !has_std) {
            sf_err_add(errs, "STANDARD_PRICE_NOT_DEFINED",
                       "No standard price defined for this product", NULL);
        }
    }
}

/* Derived and read-only fields the org computes. */
static void derive(struct sf_ctx *c, const struct sf_object *o, json_t *rec, int create)
{
    if (strcmp(o->name, "Contact") == 0 || strcmp(o->name, "User") == 0) {
        const char *fn = str_of(rec, "FirstName"), *ln = str_of(rec, "LastName");
        char *name = es_xasprintf("%s%s%s", fn, *fn ? " " : "", ln);
        json_object_set_new(rec, "Name", json_string(name));
        es_free(name);
    } else if (strcmp(o->name, "Opportunity") == 0) {
        const char *st = str_of(rec, "StageName");
        json_object_set_new(rec, "IsClosed", json_boolean(strncmp(st, "Closed", 6) == 0));
        json_object_set_new(rec, "IsWon", json_boolean(strcmp(st, "Closed Won") == 0));
    } else if (strcmp(o->name, "PricebookEntry") == 0) {
        json_t *p = sf_rec_get(c, str_of(rec, "Product2Id"), 0, NULL);
        if (p) {
            json_object_set(rec, "Name", json_object_get(p, "Name"));
            if (json_object_get(p, "ProductCode")) {
                json_object_set(rec, "ProductCode", json_object_get(p, "ProductCode"));
            }
            json_decref(p);
        }
    } else if (create && (strcmp(o->name, "Order") == 0 || strcmp(o->name, "Quote") == 0 ||
                          strcmp(o->name, "OrderItem") == 0)) {
        const char *f = o->name[0] == 'Q'   ? "QuoteNumber"
                        : o->name[5] == 'I' ? "OrderItemNumber"
                                            : "OrderNumber";
        char num[16];
        snprintf(num, sizeof num, "%08lld", (long long)(next_seq(c, f) + 99));
        json_object_set_new(rec, f, json_string(num));
    }
    if (strcmp(o->name, "OrderItem") == 0 || strcmp(o->name, "QuoteLineItem") == 0 ||
        strcmp(o->name, "OpportunityLineItem") == 0) {
        json_t *pbe = sf_rec_get(c, str_of(rec, "PricebookEntryId"), 0, NULL);
        if (pbe) {
            json_object_set(rec, "Product2Id", json_object_get(pbe, "Product2Id"));
            if (sf_fld(o, "ListPrice")) {
                json_object_set(rec, "ListPrice", json_object_get(pbe, "UnitPrice"));
            }
            if (!json_object_get(rec, "UnitPrice") && !json_object_get(rec, "TotalPrice")) {
                json_object_set(rec, "UnitPrice", json_object_get(pbe, "UnitPrice"));
            }
            json_decref(pbe);
        }
        double q = json_number_value(json_object_get(rec, "Quantity"));
        double up = json_number_value(json_object_get(rec, "UnitPrice"));
        if (sf_fld(o, "TotalPrice") && json_object_get(rec, "UnitPrice")) {
            json_object_set_new(rec, "TotalPrice", json_real(round(q * up * 100) / 100));
        }
    }
}

static void stamp(struct sf_ctx *c, json_t *rec, int64_t now, int create)
{
    char dt[32];
    sf_fmt_dt(now, dt);
    if (create) {
        json_object_set_new(rec, "CreatedDate", json_string(dt));
        json_object_set_new(rec, "CreatedById", json_string(c->user_id));
        json_object_set_new(rec, "IsDeleted", json_false());
    }
    json_object_set_new(rec, "LastModifiedDate", json_string(dt));
    json_object_set_new(rec, "LastModifiedById", json_string(c->user_id));
    json_object_set_new(rec, "SystemModstamp", json_string(dt));
}

static int store(struct sf_ctx *c, const struct sf_object *o, const char *id, const json_t *rec,
                 int64_t now, int create, int deleted)
{
    struct es_buf b;
    es_buf_init(&b, 0);
    sb_json_dump(&b, rec);
    sqlite3_stmt *st = NULL;
    const char *sql = create ? "INSERT INTO rec(id,obj,data,created,modstamp,deleted) "
                               "VALUES(?1,?2,?3,?4,?4,0)"
                             : "UPDATE rec SET data=?3, modstamp=?4, deleted=?5, "
                               "deleted_at=CASE WHEN ?5 THEN ?4 END WHERE id=?1 AND obj=?2";
    int rc = 0;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = -1;
    } else {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, o->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, b.data, (int)b.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_int(st, 5, deleted);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    }
    sqlite3_finalize(st);
    es_buf_release(&b);
    return rc;
}

/* Order.TotalAmount is the sum of its live items' TotalPrice; like a roll-up summary it moves
 * the order's SystemModstamp (not its LastModifiedDate). */
static void rollup_order(struct sf_ctx *c, const char *order_id)
{
    if (!order_id || !*order_id) {
        return;
    }
    char dt[32];
    int64_t now = sb_now_ms();
    sf_fmt_dt(now, dt);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(
        c->db,
        "UPDATE rec SET modstamp=?2, data=json_set(data,'$.TotalAmount',"
        "(SELECT coalesce(round(sum(json_extract(i.data,'$.TotalPrice')),2),0) FROM rec i "
        "WHERE i.obj='OrderItem' AND i.deleted=0 AND json_extract(i.data,'$.OrderId')=?1),"
        "'$.SystemModstamp',?3) WHERE id=?1 AND obj='Order'",
        -1, &st, NULL);
    sqlite3_bind_text(st, 1, order_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, dt, -1, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

int sf_rec_create(struct sf_ctx *c, const struct sf_object *o, json_t *in, int allow_dup,
                  const char *origin, char id_out[19], json_t *errs)
{
    if (!json_is_object(in)) {
        sf_err_add(errs, "JSON_PARSER_ERROR", "The request body must be a JSON object", NULL);
        return -1;
    }
    json_t *rec = json_object();
    apply_input(c, o, rec, in, 1, NULL, errs);
    if (json_array_size(errs)) {
        json_decref(rec);
        return -1;
    }
    fill_defaults(o, rec);
    if (sf_fld(o, "OwnerId") && !json_object_get(rec, "OwnerId")) {
        json_object_set_new(rec, "OwnerId", json_string(c->user_id));
    }
    check_required(o, rec, errs);
    if (!json_array_size(errs)) {
        check_rules(c, o, rec, NULL, allow_dup, errs);
    }
    if (json_array_size(errs)) {
        json_decref(rec);
        return -1;
    }
    char id[19];
    sf_new_id(c, o->prefix, id);
    json_object_set_new(rec, "Id", json_string(id));
    derive(c, o, rec, 1);
    int64_t now = sb_now_ms();
    stamp(c, rec, now, 1);
    if (store(c, o, id, rec, now, 1, 0) != 0) {
        sf_err_add(errs, "UNKNOWN_EXCEPTION", sqlite3_errmsg(c->db), NULL);
        json_decref(rec);
        return -1;
    }
    memcpy(id_out, id, 19);
    if (strcmp(o->name, "OrderItem") == 0) {
        rollup_order(c, str_of(rec, "OrderId"));
    }
    sf_notify(c, o, id, "CREATE", NULL, rec, origin);
    json_decref(rec);
    return 0;
}

int sf_rec_update(struct sf_ctx *c, const struct sf_object *o, const char *id, json_t *in,
                  int allow_dup, const char *origin, json_t *errs)
{
    char id18[19];
    int deleted = 0;
    if (!json_is_object(in)) {
        sf_err_add(errs, "JSON_PARSER_ERROR", "The request body must be a JSON object", NULL);
        return -1;
    }
    if (!sf_id18(id, id18) || strncmp(id18, o->prefix, 3) != 0) {
        sf_err_add(errs, "NOT_FOUND", "The requested resource does not exist", NULL);
        return -1;
    }
    json_t *rec = sf_rec_get(c, id18, 1, &deleted);
    if (!rec) {
        sf_err_add(errs, "NOT_FOUND", "The requested resource does not exist", NULL);
        return -1;
    }
    if (deleted) {
        json_decref(rec);
        sf_err_add(errs, "ENTITY_IS_DELETED", "entity is deleted", NULL);
        return -1;
    }
    json_t *body_id = json_object_get(in, "Id");
    if (json_is_string(body_id)) {
        char bid[19];
        if (!sf_id18(json_string_value(body_id), bid) || strcmp(bid, id18) != 0) {
            json_decref(rec);
            sf_err_add(errs, "INVALID_ID_FIELD",
                       "The Id in the request body does not match the record in the URL", NULL);
            return -1;
        }
    }
    if (strcmp(o->name, "Order") == 0 && json_object_get(in, "AccountId") &&
        strcmp(str_of(rec, "Status"), "Draft") != 0) {
        json_decref(rec);
        sf_err_add(errs, "FIELD_INTEGRITY_EXCEPTION",
                   "You can't change the account of an activated order.", "AccountId");
        return -1;
    }
    json_t *changed = json_array();
    apply_input(c, o, rec, in, 0, changed, errs);
    if (!json_array_size(errs)) {
        check_required(o, rec, errs);
    }
    if (!json_array_size(errs)) {
        check_rules(c, o, rec, id18, allow_dup, errs);
    }
    if (json_array_size(errs)) {
        json_decref(rec);
        json_decref(changed);
        return -1;
    }
    derive(c, o, rec, 0);
    int64_t now = sb_now_ms();
    stamp(c, rec, now, 0);
    store(c, o, id18, rec, now, 0, 0);
    json_array_append_new(changed, json_string("LastModifiedDate"));
    if (strcmp(o->name, "OrderItem") == 0) {
        rollup_order(c, str_of(rec, "OrderId"));
    }
    sf_notify(c, o, id18, "UPDATE", changed, rec, origin);
    json_decref(changed);
    json_decref(rec);
    return 0;
}

int sf_rec_delete(struct sf_ctx *c, const char *id, const char *origin, json_t *errs)
{
    char id18[19];
    int deleted = 0;
    struct sf_object *o = sf_id18(id, id18) ? sf_obj_by_prefix(c, id18) : NULL;
    json_t *rec = o ? sf_rec_get(c, id18, 1, &deleted) : NULL;
    if (!rec) {
        sf_err_add(errs, o ? "NOT_FOUND" : "MALFORMED_ID",
                   o ? "The requested resource does not exist" : "malformed id", NULL);
        return -1;
    }
    if (deleted) {
        json_decref(rec);
        sf_err_add(errs, "ENTITY_IS_DELETED", "entity is deleted", NULL);
        return -1;
    }
    int64_t now = sb_now_ms();
    json_object_set_new(rec, "IsDeleted", json_true());
    char dt[32];
    sf_fmt_dt(now, dt);
    json_object_set_new(rec, "SystemModstamp", json_string(dt));
    store(c, o, id18, rec, now, 0, 1);
    if (strcmp(o->name, "OrderItem") == 0) {
        rollup_order(c, str_of(rec, "OrderId"));
    }
    sf_notify(c, o, id18, "DELETE", NULL, NULL, origin);
    json_decref(rec);
    return 0;
}

int sf_rec_upsert(struct sf_ctx *c, const struct sf_object *o, const char *ext_field,
                  const char *value, json_t *in, int allow_dup, const char *origin, char id_out[19],
                  int *created, int *status, json_t *errs, json_t *matches)
{
    struct sf_field *f = sf_fld(o, ext_field);
    *created = 0;
    if (!f || !(f->external_id || f->id_lookup)) {
        *status = 404;
        errf(errs, "NOT_FOUND", NULL,
             "Provided external ID field does not exist or is not accessible: %s", ext_field);
        return -1;
    }
    if (!json_is_object(in)) {
        *status = 400;
        sf_err_add(errs, "JSON_PARSER_ERROR", "The request body must be a JSON object", NULL);
        return -1;
    }
    if (f->type == SF_ID) {
        if (value && *value) {
            char id18[19];
            if (!sf_id18(value, id18)) {
                *status = 404;
                sf_err_add(errs, "NOT_FOUND", "The requested resource does not exist", NULL);
                return -1;
            }
            if (sf_rec_update(c, o, id18, in, allow_dup, origin, errs) != 0) {
                *status =
                    strcmp(json_string_value(json_object_get(json_array_get(errs, 0), "errorCode")),
                           "NOT_FOUND") == 0
                        ? 404
                        : 400;
                return -1;
            }
            memcpy(id_out, id18, 19);
            *status = 200;
            return 0;
        }
        if (sf_rec_create(c, o, in, allow_dup, origin, id_out, errs) != 0) {
            *status = 400;
            return -1;
        }
        *created = 1;
        *status = 201;
        return 0;
    }
    json_t *in_val = NULL;
    const char *k, *in_key = NULL;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        if (strcasecmp(k, f->name) == 0) {
            in_val = v;
            in_key = k;
        }
    }
    if (in_val && !(json_is_string(in_val) && strcmp(json_string_value(in_val), value) == 0)) {
        *status = 400;
        errf(errs, "INVALID_FIELD", f->name,
             "Unable to create/update fields: %s. The external ID field value in the request "
             "body does not match the URL",
             f->name);
        return -1;
    }
    json_t *ids = json_array();
    find_by_field(c, o->name, f->name, value, NULL, ids);
    int rc;
    if (json_array_size(ids) > 1) {
        *status = 300;
        json_array_extend(matches, ids);
        rc = -1;
    } else if (json_array_size(ids) == 1) {
        const char *id = json_string_value(json_array_get(ids, 0));
        json_t *body = json_deep_copy(in);
        if (in_key) {
            json_object_del(body, in_key);
        }
        rc = sf_rec_update(c, o, id, body, allow_dup, origin, errs);
        json_decref(body);
        if (rc == 0) {
            memcpy(id_out, id, 19);
            *status = 200;
        } else {
            *status = 400;
        }
    } else {
        json_t *body = json_deep_copy(in);
        json_object_set_new(body, f->name, json_string(value));
        rc = sf_rec_create(c, o, body, allow_dup, origin, id_out, errs);
        json_decref(body);
        *status = rc == 0 ? 201 : 400;
        *created = rc == 0;
    }
    json_decref(ids);
    return rc;
}

static json_t *address_of(const struct sf_field *f, const json_t *rec)
{
    static const char *parts[][2] = {
        {"Street", "street"},       {"City", "city"},
        {"State", "state"},         {"PostalCode", "postalCode"},
        {"Country", "country"},     {"Latitude", "latitude"},
        {"Longitude", "longitude"}, {"GeocodeAccuracy", "geocodeAccuracy"}};
    json_t *a = json_object();
    int any = 0;
    for (size_t i = 0; i < ES_ARRAY_LEN(parts); i++) {
        char key[64];
        snprintf(key, sizeof key, "%s%s", f->addr_prefix, parts[i][0]);
        json_t *v = json_object_get(rec, key);
        any |= v != NULL;
        json_object_set(a, parts[i][1], v ? v : json_null());
    }
    if (!any) {
        json_decref(a);
        return json_null();
    }
    return a;
}

json_t *sf_rec_render(struct sf_ctx *c, const struct sf_object *o, const json_t *rec,
                      const char *fields, const char *ver)
{
    (void)c;
    json_t *out = json_object();
    char url[200];
    snprintf(url, sizeof url, "/services/data/v%s/sobjects/%s/%s", ver, o->name, str_of(rec, "Id"));
    json_object_set_new(out, "attributes", json_pack("{s:s,s:s}", "type", o->name, "url", url));
    for (int i = 0; i < o->nfields; i++) {
        const struct sf_field *f = &o->fields[i];
        if (fields && *fields) {
            size_t n = strlen(f->name);
            const char *p = fields;
            int want = 0;
            while (*p && !want) {
                while (*p == ' ' || *p == ',') {
                    p++;
                }
                const char *e = p;
                while (*e && *e != ',' && *e != ' ') {
                    e++;
                }
                want = (size_t)(e - p) == n && strncasecmp(p, f->name, n) == 0;
                p = e;
            }
            if (!want) {
                continue;
            }
        }
        if (f->type == SF_ADDRESS) {
            json_object_set_new(out, f->name, address_of(f, rec));
            continue;
        }
        json_t *v = json_object_get(rec, f->name);
        json_object_set(out, f->name, v ? v : json_null());
    }
    return out;
}

void sf_tx_begin(struct sf_ctx *c, const char *name)
{
    char sql[80];
    snprintf(sql, sizeof sql, "SAVEPOINT %s", name);
    sb_db_exec(c->db, sql, NULL);
}

void sf_tx_end(struct sf_ctx *c, const char *name, int commit)
{
    char sql[120];
    if (commit) {
        snprintf(sql, sizeof sql, "RELEASE %s", name);
    } else {
        snprintf(sql, sizeof sql, "ROLLBACK TO %s; RELEASE %s", name, name);
    }
    sb_db_exec(c->db, sql, NULL);
}

/* ---- notifications ---- */

static void xml_escape(struct es_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            es_buf_puts(b, "&lt;");
            break;
        case '>':
            es_buf_puts(b, "&gt;");
            break;
        case '&':
            es_buf_puts(b, "&amp;");
            break;
        case '"':
            es_buf_puts(b, "&quot;");
            break;
        default:
            es_buf_putc(b, *s);
        }
    }
}

static void outbound_message(struct sf_ctx *c, const struct sf_object *o, const char *id,
                             const json_t *rec)
{
    struct es_buf b;
    es_buf_init(&b, 0);
    char nid[19];
    sf_new_id(c, "04l", nid);
    es_buf_printf(
        &b,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" "
        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
        " <soapenv:Body>\n"
        "  <notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\n"
        "   <OrganizationId>%s</OrganizationId>\n"
        "   <ActionId>04k%.3s0000000000001AAA</ActionId>\n"
        "   <SessionId xsi:nil=\"true\"/>\n"
        "   <EnterpriseUrl>http://sandbox.invalid/services/Soap/c/60.0/%s</EnterpriseUrl>\n"
        "   <PartnerUrl>http://sandbox.invalid/services/Soap/u/60.0/%s</PartnerUrl>\n"
        "   <Notification>\n"
        "    <Id>%s</Id>\n"
        "    <sObject xsi:type=\"sf:%s\" "
        "xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\n"
        "     <sf:Id>%s</sf:Id>\n",
        c->org_id, o->prefix, c->org_id, c->org_id, nid, o->name, id);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)rec, k, v)
    {
        if (strcmp(k, "Id") == 0 || json_is_null(v) || json_is_object(v)) {
            continue;
        }
        char num[64];
        const char *s = json_string_value(v);
        if (!s) {
            if (json_is_boolean(v)) {
                s = json_is_true(v) ? "true" : "false";
            } else {
                snprintf(num, sizeof num, "%.15g", json_number_value(v));
                s = num;
            }
        }
        es_buf_printf(&b, "     <sf:%s>", k);
        xml_escape(&b, s);
        es_buf_printf(&b, "</sf:%s>\n", k);
    }
    es_buf_puts(&b, "    </sObject>\n   </Notification>\n  </notifications>\n </soapenv:Body>\n"
                    "</soapenv:Envelope>\n");
    sb_outbox_add(c->srv, c->om_url, "text/xml; charset=utf-8", "SOAPAction: \"\"", b.data, b.len,
                  "<Ack>true</Ack>", NULL);
    es_buf_release(&b);
}

void sf_notify(struct sf_ctx *c, const struct sf_object *o, const char *id, const char *type,
               const json_t *changed, const json_t *rec, const char *origin)
{
    if (!c->srv || c->seeding) {
        return;
    }
    if (c->om_url[0] && rec) {
        outbound_message(c, o, id, rec);
    }
    if (!c->notify_url[0]) {
        return;
    }
    int64_t now = sb_now_ms();
    c->commit_number++;
    c->replay_id++;
    json_t *hdr = json_object();
    json_object_set_new(hdr, "entityName", json_string(o->name));
    json_object_set_new(hdr, "recordIds", json_pack("[s]", id));
    json_object_set_new(hdr, "changeType", json_string(type));
    json_object_set_new(hdr, "changeOrigin", json_string(origin ? origin : ""));
    char tk[40];
    snprintf(tk, sizeof tk, "%08llx-sbx-%lld", (unsigned long long)now,
             (long long)c->commit_number);
    json_object_set_new(hdr, "transactionKey", json_string(tk));
    json_object_set_new(hdr, "sequenceNumber", json_integer(1));
    json_object_set_new(hdr, "commitTimestamp", json_integer(now));
    json_object_set_new(hdr, "commitNumber", json_integer(c->commit_number));
    json_object_set_new(hdr, "commitUser", json_string(c->user_id));
    json_t *fields = json_array();
    json_t *payload = json_object();
    if (strcmp(type, "CREATE") == 0 && rec) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)rec, k, v)
        {
            if (strcmp(k, "Id") && strcmp(k, "IsDeleted") && strcmp(k, "SystemModstamp")) {
                json_array_append_new(fields, json_string(k));
                json_object_set(payload, k, v);
            }
        }
    } else if (changed && rec) {
        size_t i;
        json_t *v;
        json_array_foreach((json_t *)changed, i, v)
        {
            json_array_append(fields, v);
            json_t *fv = json_object_get(rec, json_string_value(v));
            json_object_set(payload, json_string_value(v), fv ? fv : json_null());
        }
    }
    json_object_set_new(hdr, "changedFields", fields);
    json_object_set_new(hdr, "diffFields", json_array());
    json_object_set_new(hdr, "nulledFields", json_array());
    json_object_set_new(payload, "ChangeEventHeader", hdr);
    char channel[160];
    if (o->custom) {
        snprintf(channel, sizeof channel, "/data/%.*s__ChangeEvent", (int)strlen(o->name) - 3,
                 o->name);
    } else {
        snprintf(channel, sizeof channel, "/data/%sChangeEvent", o->name);
    }
    json_t *ev =
        json_pack("{s:{s:s,s:o,s:{s:I}},s:s}", "data", "schema", "sandbox-cdc-v1", "payload",
                  payload, "event", "replayId", (json_int_t)c->replay_id, "channel", channel);
    struct es_buf b;
    es_buf_init(&b, 0);
    sb_json_dump(&b, ev);
    json_decref(ev);
    char hdrs[200] = "";
    if (c->notify_secret[0]) {
        char sig[ES_HMAC_SHA256_HEX_LEN];
        int rc = es_hmac_sha256_hex(c->notify_secret, strlen(c->notify_secret), b.data, b.len, sig,
                                    NULL);
        ES_ASSERT(rc == ES_OK); /* libcrypto fails only out of memory: abort like es_xmalloc */
        snprintf(hdrs, sizeof hdrs, "%s: %s", c->notify_header, sig);
    }
    sb_outbox_add(c->srv, c->notify_url, "application/json", hdrs[0] ? hdrs : NULL, b.data, b.len,
                  NULL, NULL);
    es_buf_release(&b);
}
