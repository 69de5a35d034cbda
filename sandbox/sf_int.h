/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the sf_*.c files of the Salesforce emulator.
 *
 * State: one SQLite file. Table `rec` holds every record of every sObject as a JSON object in
 * API-name casing (system fields included); columns duplicate what the getUpdated/getDeleted
 * resources and the external-id lookups need. All functions run under the server's state
 * lock (common.h), so they share one sqlite3 handle without more locking.
 */
#ifndef ES_SANDBOX_SF_INT_H
#define ES_SANDBOX_SF_INT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#include "common.h"

enum sf_type {
    SF_ID = 0,
    SF_STRING,
    SF_TEXTAREA,
    SF_PICKLIST,
    SF_MULTIPICKLIST,
    SF_REFERENCE,
    SF_BOOLEAN,
    SF_CURRENCY,
    SF_DOUBLE,
    SF_PERCENT,
    SF_INT,
    SF_DATE,
    SF_DATETIME,
    SF_EMAIL,
    SF_PHONE,
    SF_URL,
    SF_ADDRESS,
};

struct sf_field {
    char *name;
    char *label;
    enum sf_type type;
    int length;
    int precision, scale;
    int nillable, createable, updateable, defaulted, unique, external_id, id_lookup;
    int restricted, name_field, calculated;
    char **picklist; /* values */
    int npick, cappick;
    char *default_value; /* picklist default, or "true"/"false" for booleans */
    char *reference_to;  /* object name */
    char *relationship;  /* "Account", "Account__r" */
    char *addr_prefix;   /* address compound: "Billing" */
};

struct sf_object {
    char *name;
    char *label, *plural;
    char prefix[4];
    int custom;
    struct sf_field *fields;
    int nfields, capfields;
};

struct sf_schema {
    struct sf_object *objs;
    int nobjs, capobjs;
};

/* The emulator's state. */
struct sf_ctx {
    sqlite3 *db;
    sqlite3_stmt *seq_st; /* next_seq(), prepared once (handlers run under the server lock) */
    struct sf_schema schema;
    struct sb_server *srv;
    char org_id[19], user_id[19];
    /* options */
    char client_id[128], client_secret[128], username[128], password[128];
    int64_t token_ttl_ms;
    void *jwt_key;          /* EVP_PKEY of --jwt-public-key: enables the JWT bearer grant */
    char jwt_audience[256]; /* --jwt-audience (default https://login.salesforce.com) */
    int rotate_refresh;     /* --rotate-refresh-tokens: a refresh grant spends its token */
    long api_limit;
    int dup_rule; /* Account Name + BillingPostalCode blocking rule */
    char seed[32];
    int seed_accounts; /* Accounts in the demo seed (--accounts) */
    char notify_url[512], notify_secret[256], notify_header[64];
    char om_url[512];
    /* API usage (rolling per UTC day, in memory) */
    long api_used;
    int64_t api_day;
    /* recently validated access tokens (saves a SQLite lookup per request) */
    struct {
        char token[128];
        int64_t expires;
    } tcache[8];
    unsigned tcache_next;
    /* query cursors */
    struct sf_cursor *cursors;
    int seeding; /* no notifications while seeding */
    int64_t commit_number;
    long replay_id;
};

/* One REST call (top level or a composite subrequest). */
struct sf_call {
    const char *method;
    const char *path;  /* raw path below /services/data/vNN.N, e.g. "/sobjects/Account" */
    char version[8];   /* "60.0" */
    const char *query; /* raw query string */
    const char *body;
    size_t body_len;
    const struct sb_req *req; /* headers of the top-level request */
    const char *host;         /* Host header, for instance_url */
};

/* ---- schema (sf_schema.c) ---- */
int sf_schema_load_std(struct sf_schema *s);
/* Adds objects/fields from a JSON schema file. */
int sf_schema_load_file(struct sf_schema *s, const char *path, struct es_err *err);
void sf_schema_free(struct sf_schema *s);
struct sf_object *sf_obj(struct sf_ctx *c, const char *name); /* case-insensitive */
struct sf_object *sf_obj_by_prefix(struct sf_ctx *c, const char *id);
struct sf_field *sf_fld(const struct sf_object *o, const char *name); /* case-insensitive */
/* The reference field whose relationshipName is rel (case-insensitive). */
struct sf_field *sf_fld_rel(const struct sf_object *o, const char *rel);
const char *sf_type_name(enum sf_type t);
json_t *sf_describe(struct sf_ctx *c, const struct sf_object *o, const char *ver);
json_t *sf_describe_global(struct sf_ctx *c, const char *ver);

/* ---- records (sf_store.c) ---- */
int sf_db_init(struct sf_ctx *c, struct es_err *err);
/* Drops all records, jobs, tokens stay. */
int sf_db_clear(struct sf_ctx *c, struct es_err *err);
/* New 18-char id for an object. */
void sf_new_id(struct sf_ctx *c, const char *prefix, char out[19]);
/* 15 -> 18 chars; returns 0 when id is malformed. */
int sf_id18(const char *id, char out[19]);
/* Formats epoch ms as 2024-05-01T10:00:00.000+0000. */
void sf_fmt_dt(int64_t ms, char out[32]);
/* Parses an ISO datetime (Z, +hh:mm, +hhmm, optional fraction); returns 0 when invalid. */
int sf_parse_dt(const char *s, int64_t *ms);
/* The stored record (owned; NULL when absent). deleted: 0 only live, 1 also recycled. */
json_t *sf_rec_get(struct sf_ctx *c, const char *id, int with_deleted, int *is_deleted);
/* Appends one JSON error {message,errorCode,fields} to errs. */
void sf_err_add(json_t *errs, const char *code, const char *msg, const char *field);
/* Writes. Each returns 0 on success or fills errs (array) and returns -1.
 * origin: changeOrigin for change events (may be NULL). */
int sf_rec_create(struct sf_ctx *c, const struct sf_object *o, json_t *in, int allow_dup,
                  const char *origin, char id_out[19], json_t *errs);
int sf_rec_update(struct sf_ctx *c, const struct sf_object *o, const char *id, json_t *in,
                  int allow_dup, const char *origin, json_t *errs);
int sf_rec_delete(struct sf_ctx *c, const char *id, const char *origin, json_t *errs);
/* Upsert by external id: returns 0 (created set) or -1 (errs filled, *status = HTTP code;
 * 300 fills matches with the ids). */
int sf_rec_upsert(struct sf_ctx *c, const struct sf_object *o, const char *ext_field,
                  const char *value, json_t *in, int allow_dup, const char *origin, char id_out[19],
                  int *created, int *status, json_t *errs, json_t *matches);
/* The record as the API returns it: attributes + fields (all, or the comma list). */
json_t *sf_rec_render(struct sf_ctx *c, const struct sf_object *o, const json_t *rec,
                      const char *fields, const char *ver);
/* Savepoints for allOrNone. */
void sf_tx_begin(struct sf_ctx *c, const char *name);
void sf_tx_end(struct sf_ctx *c, const char *name, int commit);

/* ---- SOQL (sf_soql.c) ---- */
/* Runs q; on success returns the full result {totalSize, records[]} (records rendered),
 * else NULL with *status and errs filled. */
json_t *sf_soql_run(struct sf_ctx *c, const char *q, int all_rows, const char *ver, int *status,
                    json_t *errs);

/* ---- REST (sf_api.c) ---- */
void sf_api_handle(struct sf_ctx *c, const struct sf_call *call, struct sb_resp *resp);
int sf_handle(void *ctx, const struct sb_req *req, struct sb_resp *resp);
void sf_errors_reply(struct sb_resp *resp, int status, json_t *errs);
void sf_error_reply(struct sb_resp *resp, int status, const char *code, const char *msg);
/* Decoded query argument of a raw query string into out; returns 0 when absent. */
int sf_query_arg(const char *query, const char *name, char *out, size_t cap);
/* Frees the query cursors. */
void sf_cursors_free(struct sf_ctx *c);

/* ---- Bulk API 2.0 (sf_bulk.c) ---- */
void sf_bulk_handle(struct sf_ctx *c, const struct sf_call *call, const char *rest,
                    struct sb_resp *resp);

/* ---- seed (sf_seed.c) ---- */
int sf_seed_demo(struct sf_ctx *c, struct es_err *err);

/* ---- notifications (sf_store.c) ---- */
void sf_notify(struct sf_ctx *c, const struct sf_object *o, const char *id, const char *type,
               const json_t *changed, const json_t *rec, const char *origin);

#endif
