/* SPDX-License-Identifier: MIT */
/*
 * Internals of the SAP S/4HANA OData v2 emulator (erpsync-sandbox sap), shared by the
 * sandbox/sap_*.c files only.
 *
 * Invariants:
 *  - The data model is static tables (sap_model.c): every entity set names its service, its
 *    properties (with Edm type and facets) and its navigation properties. A navigation always
 *    joins the parent's `from` property to the target's first key property.
 *  - Entities are stored as JSON objects in one SQLite table (sap_store.c): strings and
 *    decimals as JSON strings, Edm.DateTime / Edm.DateTimeOffset as integer milliseconds
 *    since the epoch (UTC), booleans as JSON booleans, Edm.Time as "PT..H..M..S" strings.
 *    A null or absent property reads as its empty value.
 *  - All callbacks run under the server's state lock (sb_lock), so one sqlite3 handle is used.
 */
#ifndef ES_SANDBOX_SAP_INT_H
#define ES_SANDBOX_SAP_INT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#include "common.h"
#include "core/buf.h"

enum sap_type { T_STR, T_DEC, T_BOOL, T_DATE, T_DTO, T_TIME, T_GUID, T_INT };

#define P_KEY  1u  /* part of the key (Nullable="false") */
#define P_RO   2u  /* sap:creatable="false" sap:updatable="false" */
#define P_NN   4u  /* Nullable="false" */
#define P_DAY  8u  /* sap:display-format="Date" */
#define P_NOFL 16u /* sap:filterable="false" */

#define S_CREATE 1u
#define S_UPDATE 2u
#define S_DELETE 4u

struct sap_prop {
    const char *name;
    enum sap_type type;
    int len; /* MaxLength (strings) or Precision (decimals) */
    int scale;
    unsigned flags;
    const char *label;
};

struct sap_nav {
    const char *name;
    const char *target; /* entity set */
    int many;           /* 1 = to-many (Multiplicity "*") */
    const char *from;   /* parent property equal to the target's first key */
};

struct sap_set {
    const char *service;
    const char *name; /* entity set, e.g. A_SalesOrder; type is name + "Type" */
    const char *label;
    const struct sap_prop *props;
    const struct sap_nav *navs;
    unsigned flags;         /* S_* */
    const char *etag_prop;  /* ConcurrencyMode="Fixed" property or NULL */
    const char *lastchange; /* LastChangeDateTime property maintained on writes, or NULL */
    const char *numrange;   /* number range of a generated single key, or NULL */
};

extern const char *const sap_services[];

/* ---- model (sap_model.c) ---- */
const struct sap_set *sap_set_find(const char *service, const char *name);
const struct sap_set *sap_set_any(const char *name); /* by name in any service */
const struct sap_set *sap_set_at(int i);             /* i-th set, NULL past the end */
const struct sap_prop *sap_prop_find(const struct sap_set *s, const char *name);
const struct sap_nav *sap_nav_find(const struct sap_set *s, const char *name);
int sap_nkeys(const struct sap_set *s);
const struct sap_prop *sap_key(const struct sap_set *s, int i);
int sap_service_known(const char *service);
/* EDMX document of a service appended to b. */
void sap_metadata(struct es_buf *b, const char *service);

/* ---- values (sap_query.c) ---- */
/* ISO 8601 (2024-05-01T10:00:00[.fff][Z|+hh:mm]) -> ms. Returns 0 on success. */
int sap_parse_iso(const char *s, int64_t *ms);
void sap_iso(int64_t ms, char *out, size_t cap, int frac7);
/* Converts a JSON payload value for property p into the stored form; NULL on a type error
 * (why filled). OUT: new reference. */
json_t *sap_value_in(const struct sap_prop *p, json_t *v, char *why, size_t whycap);
/* The wire (verbose JSON) form of a stored value. OUT: new reference. */
json_t *sap_value_out(const struct sap_prop *p, json_t *v);
/* The key predicate "('1')" / "(A='1',B='2')" of entity e appended to b (URL-encoded). */
void sap_key_pred(struct es_buf *b, const struct sap_set *s, json_t *e);
/* Parses a key predicate body (between the parentheses) into key values. Returns 0 or -1. */
int sap_key_parse(const struct sap_set *s, const char *pred, json_t **keys, char *why, size_t cap);
/* The storage key string of entity e ('\t' between key values). OUT: es_free(). */
char *sap_key_str(const struct sap_set *s, json_t *e);

/* A compiled $filter. */
struct sap_filter;
struct sap_filter *sap_filter_parse(const struct sap_set *s, const char *text, char *why,
                                    size_t cap);
int sap_filter_match(const struct sap_filter *f, json_t *e);
void sap_filter_free(struct sap_filter *f);
/* Sorts a JSON array of stored entities by $orderby (NULL = by key). Returns 0 or -1. */
int sap_orderby(const struct sap_set *s, json_t *arr, const char *orderby, char *why, size_t cap);

/* ---- store (sap_store.c) ---- */
struct sap_ctx {
    sqlite3 *db;
    char user[64];
    char password[128];
    char basic[256]; /* expected Authorization header */
    int page_max;
    int csrf_ttl_s;
    int partners;       /* demo business partners */
    int products;       /* demo products (the first 200 have prices and stock) */
    char seed[32];      /* startup seed: "demo" or "" */
    char host_url[128]; /* "http://127.0.0.1:8702", for __metadata.uri / __next */
};

int sap_store_open(struct sap_ctx *c, const char *path, struct es_err *err);
int sap_store_clear(struct sap_ctx *c);
/* OUT: new reference or NULL when absent. */
json_t *sap_get(struct sap_ctx *c, const struct sap_set *s, const char *key);
/* All entities of a set, optionally those whose first key equals parent. OUT: array. */
json_t *sap_list(struct sap_ctx *c, const struct sap_set *s, const char *parent);
/* Entities [offset, offset+limit) in key order (the storage key, see sap_key_str). */
json_t *sap_list_page(struct sap_ctx *c, const struct sap_set *s, const char *parent,
                      long long offset, long long limit);
long long sap_count(struct sap_ctx *c, const struct sap_set *s, const char *parent);
int sap_put(struct sap_ctx *c, const struct sap_set *s, json_t *e);
int sap_del(struct sap_ctx *c, const struct sap_set *s, const char *key);
/* Next number of a number range, as a decimal string zero-padded to width 0 (none). */
long long sap_next_number(struct sap_ctx *c, const char *range, long long first);
int sap_seed_demo(struct sap_ctx *c);
int sap_db_begin(struct sap_ctx *c, const char *savepoint);
int sap_db_end(struct sap_ctx *c, const char *savepoint, int commit);

/* ---- api (sap_api.c) ---- */
int sap_handle(void *ctx, const struct sb_req *req, struct sb_resp *resp);
int sap_reset(void *ctx, const struct sb_req *req, struct sb_resp *resp);
int sap_record(void *ctx, const struct sb_req *req, const struct sb_caps *caps,
               struct sb_resp *resp);
void sap_fault_reply(void *ctx, int status, struct sb_resp *resp);
/* Stamps LastChangeDateTime/ETag/LastChangeDate on a written entity. */
void sap_touch(const struct sap_set *s, json_t *e, int created);

#endif
