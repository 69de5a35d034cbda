/* SPDX-License-Identifier: MIT */
/*
 * The integration file (DESIGN.md "Configuration sketch") as typed structs.
 *
 * Invariants:
 *  - A loaded es_config owns its YAML document; every const char * and node in it points
 *    into that document and lives until es_config_free().
 *  - After a successful load, every cross-reference is valid: a flow's entity, from and to
 *    exist; an entity has an object for each system its flows use; tables named by map rules
 *    exist. Later stages (mapping compiler, connectors) index these arrays directly.
 *  - Secrets are never in the struct: only the NAMES of environment variables (*_env).
 *    es_config_secret() reads a value and registers it with the log redactor.
 */
#ifndef ES_CORE_CONFIG_H
#define ES_CORE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "core/cfg.h"
#include "core/cron.h"

enum es_conflict_policy {
    ES_CONFLICT_SOURCE_OF_RECORD = 0,
    ES_CONFLICT_LAST_WRITE_WINS,
    ES_CONFLICT_REVIEW
};
enum es_dup_action { ES_DUP_REVIEW = 0, ES_DUP_LINK, ES_DUP_CREATE };
enum es_operation { ES_OP_UPSERT = 0, ES_OP_CREATE, ES_OP_UPDATE, ES_OP_DELETE };
enum es_webhook_format { ES_WEBHOOK_JSON = 0, ES_WEBHOOK_CDC, ES_WEBHOOK_OUTBOUND_MESSAGE };

struct es_oauth2_cfg {
    const char *id_env;            /* client id */
    const char *secret_env;        /* client secret */
    const char *user_env;          /* password grant */
    const char *password_env;      /* password grant */
    const char *refresh_token_env; /* refresh_token grant */
    const char *token_path;        /* default /services/oauth2/token */
    const char *store_file;        /* refresh_token grant: where a rotated token is kept */
    const char *private_key_env;   /* jwt_bearer grant: PEM private key (RS256) */
    const char *audience;          /* jwt_bearer grant: the assertion's aud */
};

struct es_basic_cfg {
    const char *user_env;
    const char *password_env;
};

struct es_auth_cfg {
    struct es_oauth2_cfg oauth2_client_credentials;
    struct es_oauth2_cfg oauth2_password;
    struct es_oauth2_cfg oauth2_refresh_token;
    struct es_oauth2_cfg oauth2_jwt_bearer;
    struct es_basic_cfg basic;
    const char *bearer_token_env;
    const char *login_env;    /* session login (Tryton) */
    const char *password_env; /* session login (Tryton) */
    /* Derived by the loader: which one of the above is used ("none" if no auth). */
    const char *method;
};

struct es_webhook_cfg {
    const char *path;            /* e.g. /hooks/crm; NULL = no webhook */
    const char *hmac_secret_env; /* HMAC-SHA256 over the body */
    const char *signature_header;
    int format;         /* enum es_webhook_format */
    long long max_body; /* bytes */
};

struct es_system_cfg {
    const char *name;
    const struct es_node *node;
    const char *connector; /* derived from connector_id: "salesforce", ... */
    int connector_id;      /* index into the connector names */
    const char *url;
    const char *database;
    const char *api_version;
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    long long max_response; /* bytes */
    int verify_tls;
    struct es_auth_cfg auth;
    struct es_webhook_cfg webhook;
    const struct es_node *options; /* connector-specific keys, checked by the connector */
};

struct es_table_cfg {
    const char *name;
    const struct es_node *node;
    size_t count;
    const char **keys;
    const char **values;
};

struct es_object_ref {
    const char *system;
    const char *object;
    const struct es_node *node;
};

struct es_owned_fields {
    const char *system;
    struct es_cfg_strlist fields;
};

struct es_duplicates_cfg {
    struct es_cfg_strlist match;
    double threshold;
    int action; /* enum es_dup_action */
};

struct es_entity_cfg {
    const char *name;
    const struct es_node *node;
    size_t nobjects;
    struct es_object_ref *objects;
    const char *system_of_record;
    int conflict; /* enum es_conflict_policy */
    size_t nowned;
    struct es_owned_fields *owned;
    struct es_duplicates_cfg duplicates;
    const struct es_node *objects_node;
    const struct es_node *owned_node;
};

struct es_trigger_cfg {
    int realtime;
    int64_t poll_ms;     /* 0 = no polling */
    const char *batch;   /* cron expression, NULL = no batch */
    struct es_cron cron; /* parsed batch */
    int64_t overlap_ms;  /* poll watermark overlap window */
};

struct es_retry_cfg {
    long long max_attempts;
    int64_t base_ms;
    int64_t max_ms;
};

struct es_writeback_cfg {
    const char *field; /* source field that receives the target's id */
};

struct es_map_rule_cfg; /* compiled by src/map; the loader only checks shape */

struct es_flow_cfg {
    const char *name;
    const struct es_node *node;
    const char *entity;
    const char *from;
    const char *to;
    const char *source_object; /* derived from the entity unless given */
    const char *target_object;
    struct es_trigger_cfg trigger;
    const struct es_node *map;    /* target path -> rule; compiled by the mapping engine */
    const struct es_node *schema; /* declared target schema for pre-flight checks */
    const char *fixtures;         /* mapping test cases file, relative to the config */
    long long batch_size;
    int operation;           /* enum es_operation */
    const char *external_id; /* target field used for idempotent upserts */
    struct es_writeback_cfg writeback;
    struct es_retry_cfg retry;
    int enabled;
    /* Derived: indexes into es_config arrays. */
    int entity_idx, from_idx, to_idx;
};

struct es_server_cfg {
    const char *listen;
    const char *admin_token_env;
    long long max_body;
    long long threads;
};

struct es_config {
    struct es_doc *doc;
    const char *path;
    const char *store;
    int64_t retention_ms; /* done changes and audit rows older than this are pruned; 0 = never */
    const char *timezone;
    const char *lua;
    long long workers;
    struct es_server_cfg server;
    size_t nsystems;
    struct es_system_cfg *systems;
    size_t ntables;
    struct es_table_cfg *tables;
    size_t nentities;
    struct es_entity_cfg *entities;
    size_t nflows;
    struct es_flow_cfg *flows;
};

/* Loads and checks path. Diagnostics (errors and warnings) go to diags.
 * Returns ES_OK or ES_ECONFIG (then *out is NULL). OUT: *out, free with es_config_free(). */
ES_NODISCARD int es_config_load(const char *path, struct es_config **out, struct es_diags *diags);
/* Same from text in memory (tests, fuzzing). */
ES_NODISCARD int es_config_parse(const char *name, const char *text, size_t len,
                                 struct es_config **out, struct es_diags *diags);
void es_config_free(struct es_config *cfg);

/* Adds one diagnostic per referenced *_env variable that is unset or empty (never the value).
 * sev is ES_DIAG_ERROR at startup of `run`, ES_DIAG_WARNING for `validate`. Returns how many. */
int es_config_check_env(const struct es_config *cfg, struct es_diags *diags,
                        enum es_diag_severity sev);
/* The value of the secret named by env_name, registered with the log redactor; NULL if unset. */
const char *es_config_secret(const char *env_name);

const struct es_system_cfg *es_config_system(const struct es_config *cfg, const char *name);
const struct es_entity_cfg *es_config_entity(const struct es_config *cfg, const char *name);
const struct es_flow_cfg *es_config_flow(const struct es_config *cfg, const char *name);
const struct es_table_cfg *es_config_table(const struct es_config *cfg, const char *name);
/* The object an entity uses in a system (NULL when none). */
const char *es_entity_object(const struct es_entity_cfg *e, const char *system);

/* Writes the Markdown reference of every key (erpsync config-docs). */
void es_config_docs(FILE *out);
/* The schema of one map rule (shared with the mapping compiler). */
extern const struct es_cfg_schema es_map_rule_schema;

/* One map rule as the loader sees it (the mapping compiler reads the same node). */
struct es_map_rule_shape {
    const char *from;
    const struct es_node *const_value;
    const struct es_node *default_value;
    int required;
    long long max_length;
    int on_overflow; /* 0 truncate, 1 reject */
    const char *table;
    int unmapped; /* 0 reject, 1 keep, 2 default */
    int type;     /* index into es_map_type_names */
    const char *expr;
    const char *format;
    const char *when;
};
extern const char *const es_map_type_names[];

#endif
