/* SPDX-License-Identifier: MIT */
/*
 * The integration file: schema tables for each section, the loader that applies them, and the
 * cross-checks between sections (a flow's entity and systems exist, an entity names an object
 * for each system its flows use, map rules name existing tables). All diagnostics point into
 * the file with FILE:LINE:COL.
 */
#include "core/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/log.h"
#include "core/mem.h"

#define F(type, name, member) offsetof(type, member)

/* ---- schema tables ------------------------------------------------------------------- */

static const char *const connector_names[] = {"salesforce", "sap_odata", "tryton", "postgres",
                                              "csv",        "memory",    NULL};
static const char *const conflict_names[] = {"source_of_record", "last_write_wins", "review", NULL};
static const char *const dup_action_names[] = {"review", "link", "create", NULL};
static const char *const operation_names[] = {"upsert", "create", "update", "delete", NULL};
static const char *const webhook_format_names[] = {"json", "cdc", "outbound_message", NULL};
static const char *const overflow_names[] = {"truncate", "reject", NULL};
static const char *const unmapped_names[] = {"reject", "keep", "default", NULL};
const char *const es_map_type_names[] = {"string", "integer",  "decimal", "boolean",
                                         "date",   "datetime", "any",     NULL};

static const struct es_cfg_field oauth2_fields[] = {
    {"id_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, id_env), 0,
     "environment variable holding the OAuth2 client id", NULL, NULL, 0, 0},
    {"secret_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, secret_env), 0,
     "environment variable holding the OAuth2 client secret", NULL, NULL, 0, 0},
    {"user_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, user_env), 0,
     "environment variable holding the user name (password grant)", NULL, NULL, 0, 0},
    {"password_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, password_env), 0,
     "environment variable holding the password (password grant)", NULL, NULL, 0, 0},
    {"refresh_token_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, refresh_token_env), 0,
     "environment variable holding the refresh token (refresh_token grant)", NULL, NULL, 0, 0},
    {"token_path", ES_CFG_STR, "/services/oauth2/token", offsetof(struct es_oauth2_cfg, token_path),
     0, "token endpoint path below the system url", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};

static const struct es_cfg_field oauth2_rt_fields[] = {
    {"id_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, id_env), 0,
     "environment variable holding the OAuth2 client id", NULL, NULL, 0, 0},
    {"secret_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, secret_env), 0,
     "environment variable holding the OAuth2 client secret", NULL, NULL, 0, 0},
    {"refresh_token_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, refresh_token_env),
     ES_CFG_REQUIRED, "environment variable holding the refresh token", NULL, NULL, 0, 0},
    {"store_file", ES_CFG_STR, NULL, offsetof(struct es_oauth2_cfg, store_file), 0,
     "absolute path (outside the repository) where a rotated refresh token is kept (written "
     "0600, atomically) and preferred at the next start; without it a rotated token lives in "
     "memory only",
     NULL, NULL, 0, 0},
    {"token_path", ES_CFG_STR, "/services/oauth2/token", offsetof(struct es_oauth2_cfg, token_path),
     0, "token endpoint path below the system url", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};

static const struct es_cfg_field oauth2_jwt_fields[] = {
    {"client_id_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, id_env), ES_CFG_REQUIRED,
     "environment variable holding the OAuth2 client id (the assertion's iss)", NULL, NULL, 0, 0},
    {"user_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, user_env), ES_CFG_REQUIRED,
     "environment variable holding the user name (the assertion's sub)", NULL, NULL, 0, 0},
    {"private_key_env", ES_CFG_ENV, NULL, offsetof(struct es_oauth2_cfg, private_key_env),
     ES_CFG_REQUIRED,
     "environment variable holding the PEM private key (RSA) that signs the assertion (RS256)",
     NULL, NULL, 0, 0},
    {"audience", ES_CFG_STR, "https://login.salesforce.com",
     offsetof(struct es_oauth2_cfg, audience), 0,
     "the assertion's aud (https://test.salesforce.com for a Salesforce sandbox org)", NULL, NULL,
     0, 0},
    {"token_path", ES_CFG_STR, "/services/oauth2/token", offsetof(struct es_oauth2_cfg, token_path),
     0, "token endpoint path below the system url", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};

static const struct es_cfg_schema oauth2_cc_schema = {
    "systems.<name>.auth.oauth2_client_credentials",
    "OAuth2 client-credentials grant (Salesforce connected app).", oauth2_fields, 0};
static const struct es_cfg_schema oauth2_pw_schema = {"systems.<name>.auth.oauth2_password",
                                                      "OAuth2 username-password grant (legacy).",
                                                      oauth2_fields, 0};
static const struct es_cfg_schema oauth2_rt_schema = {
    "systems.<name>.auth.oauth2_refresh_token",
    "OAuth2 refresh-token grant. When the token endpoint answers a new refresh token "
    "(rotation), it is used from then on.",
    oauth2_rt_fields, 0};
static const struct es_cfg_schema oauth2_jwt_schema = {
    "systems.<name>.auth.oauth2_jwt_bearer",
    "OAuth2 JWT bearer grant (urn:ietf:params:oauth:grant-type:jwt-bearer): an RS256-signed "
    "assertion per token request, no secret on the wire (Salesforce connected app with a "
    "certificate).",
    oauth2_jwt_fields, 0};

static const struct es_cfg_field basic_fields[] = {
    {"user_env", ES_CFG_ENV, NULL, offsetof(struct es_basic_cfg, user_env), ES_CFG_REQUIRED,
     "environment variable holding the user", NULL, NULL, 0, 0},
    {"password_env", ES_CFG_ENV, NULL, offsetof(struct es_basic_cfg, password_env), ES_CFG_REQUIRED,
     "environment variable holding the password", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema basic_schema = {
    "systems.<name>.auth.basic", "HTTP basic authentication (SAP).", basic_fields, 0};

static const struct es_cfg_field auth_fields[] = {
    {"oauth2_client_credentials", ES_CFG_SECTION, NULL,
     offsetof(struct es_auth_cfg, oauth2_client_credentials), 0, "OAuth2 client-credentials grant",
     &oauth2_cc_schema, NULL, 0, 0},
    {"oauth2_password", ES_CFG_SECTION, NULL, offsetof(struct es_auth_cfg, oauth2_password), 0,
     "OAuth2 password grant", &oauth2_pw_schema, NULL, 0, 0},
    {"oauth2_refresh_token", ES_CFG_SECTION, NULL,
     offsetof(struct es_auth_cfg, oauth2_refresh_token), 0, "OAuth2 refresh-token grant",
     &oauth2_rt_schema, NULL, 0, 0},
    {"oauth2_jwt_bearer", ES_CFG_SECTION, NULL, offsetof(struct es_auth_cfg, oauth2_jwt_bearer), 0,
     "OAuth2 JWT bearer grant", &oauth2_jwt_schema, NULL, 0, 0},
    {"basic", ES_CFG_SECTION, NULL, offsetof(struct es_auth_cfg, basic), 0,
     "HTTP basic authentication", &basic_schema, NULL, 0, 0},
    {"bearer_token_env", ES_CFG_ENV, NULL, offsetof(struct es_auth_cfg, bearer_token_env), 0,
     "environment variable holding a static bearer token", NULL, NULL, 0, 0},
    {"login_env", ES_CFG_ENV, NULL, offsetof(struct es_auth_cfg, login_env), 0,
     "environment variable holding the login of a session-based API (Tryton)", NULL, NULL, 0, 0},
    {"password_env", ES_CFG_ENV, NULL, offsetof(struct es_auth_cfg, password_env), 0,
     "environment variable holding the password of a session-based API (Tryton)", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema auth_schema = {
    "systems.<name>.auth",
    "How erpsync authenticates. Exactly one method. Secrets are never written here: each "
    "`*_env` key names an environment variable.",
    auth_fields, 0};

static const struct es_cfg_field webhook_fields[] = {
    {"path", ES_CFG_STR, NULL, offsetof(struct es_webhook_cfg, path), ES_CFG_REQUIRED,
     "URL path on erpsync's server that receives this system's events", NULL, NULL, 0, 0},
    {"hmac_secret_env", ES_CFG_ENV, NULL, offsetof(struct es_webhook_cfg, hmac_secret_env), 0,
     "environment variable holding the HMAC-SHA256 key that signs each body", NULL, NULL, 0, 0},
    {"signature_header", ES_CFG_STR, "X-Erpsync-Signature",
     offsetof(struct es_webhook_cfg, signature_header), 0,
     "header carrying the hex HMAC-SHA256 of the body", NULL, NULL, 0, 0},
    {"format", ES_CFG_ENUM, "json", offsetof(struct es_webhook_cfg, format), 0,
     "payload shape: plain JSON records, Change Data Capture events, or SOAP Outbound Messages",
     NULL, webhook_format_names, 0, 0},
    {"max_body", ES_CFG_SIZE, "1MiB", offsetof(struct es_webhook_cfg, max_body), 0,
     "largest accepted request body", NULL, NULL, 1, 1LL << 30},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema webhook_schema = {
    "systems.<name>.webhook", "Real-time events pushed by the system to erpsync.", webhook_fields,
    0};

static const struct es_cfg_field system_fields[] = {
    {"connector", ES_CFG_ENUM, NULL, offsetof(struct es_system_cfg, connector_id), ES_CFG_REQUIRED,
     "which connector speaks to this system", NULL, connector_names, 0, 0},
    {"url", ES_CFG_STR, NULL, offsetof(struct es_system_cfg, url), 0,
     "base URL (http/https) or connection string of the system", NULL, NULL, 0, 0},
    {"database", ES_CFG_STR, NULL, offsetof(struct es_system_cfg, database), 0,
     "database name (Tryton, PostgreSQL)", NULL, NULL, 0, 0},
    {"api_version", ES_CFG_STR, NULL, offsetof(struct es_system_cfg, api_version), 0,
     "remote API version, e.g. 60.0 for Salesforce", NULL, NULL, 0, 0},
    {"timeout", ES_CFG_DURATION, "30s", offsetof(struct es_system_cfg, timeout_ms), 0,
     "total time allowed for one remote call", NULL, NULL, 0, 0},
    {"connect_timeout", ES_CFG_DURATION, "5s", offsetof(struct es_system_cfg, connect_timeout_ms),
     0, "time allowed to open a connection", NULL, NULL, 0, 0},
    {"max_response", ES_CFG_SIZE, "64MiB", offsetof(struct es_system_cfg, max_response), 0,
     "largest response body accepted", NULL, NULL, 1024, 1LL << 34},
    {"verify_tls", ES_CFG_BOOL, "true", offsetof(struct es_system_cfg, verify_tls), 0,
     "verify the server's TLS certificate (never turn off in production)", NULL, NULL, 0, 0},
    {"auth", ES_CFG_SECTION, NULL, offsetof(struct es_system_cfg, auth), 0,
     "credentials, see below", &auth_schema, NULL, 0, 0},
    {"webhook", ES_CFG_SECTION, NULL, offsetof(struct es_system_cfg, webhook), 0,
     "real-time events from this system, see below", &webhook_schema, NULL, 0, 0},
    {"options", ES_CFG_NODE, NULL, offsetof(struct es_system_cfg, options), 0,
     "connector-specific settings, documented in docs/connectors.md", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema system_schema = {
    "systems.<name>", "One external application (ERP or CRM) reached through a connector.",
    system_fields, 0};

static const struct es_cfg_field duplicates_fields[] = {
    {"match", ES_CFG_STRLIST, NULL, offsetof(struct es_duplicates_cfg, match), ES_CFG_REQUIRED,
     "fields compared to find an existing record that is the same", NULL, NULL, 0, 0},
    {"threshold", ES_CFG_NUM, "0.9", offsetof(struct es_duplicates_cfg, threshold), 0,
     "similarity (0..1) above which two records are the same", NULL, NULL, 0, 1},
    {"action", ES_CFG_ENUM, "review", offsetof(struct es_duplicates_cfg, action), 0,
     "what to do with a suspected duplicate", NULL, dup_action_names, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema duplicates_schema = {
    "entities.<name>.duplicates", "Duplicate detection for new records.", duplicates_fields, 0};

static const struct es_cfg_field entity_fields[] = {
    {"objects", ES_CFG_NODE, NULL, offsetof(struct es_entity_cfg, objects_node), ES_CFG_REQUIRED,
     "the object (table, sObject, model) that holds this entity in each system: "
     "{system: object}",
     NULL, NULL, 0, 0},
    {"system_of_record", ES_CFG_STR, NULL, offsetof(struct es_entity_cfg, system_of_record), 0,
     "the system whose values win", NULL, NULL, 0, 0},
    {"conflict", ES_CFG_ENUM, "source_of_record", offsetof(struct es_entity_cfg, conflict), 0,
     "what happens when both sides changed the same record", NULL, conflict_names, 0, 0},
    {"fields_owned_by", ES_CFG_NODE, NULL, offsetof(struct es_entity_cfg, owned_node), 0,
     "per-field system of record: {system: [field, ...]}", NULL, NULL, 0, 0},
    {"duplicates", ES_CFG_SECTION, NULL, offsetof(struct es_entity_cfg, duplicates), 0,
     "duplicate detection, see below", &duplicates_schema, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema entity_schema = {
    "entities.<name>", "A business object shared by systems (customer, product, order, ...).",
    entity_fields, 0};

static const struct es_cfg_field trigger_fields[] = {
    {"realtime", ES_CFG_BOOL, "false", offsetof(struct es_trigger_cfg, realtime), 0,
     "accept changes pushed by the source system's webhook", NULL, NULL, 0, 0},
    {"poll", ES_CFG_DURATION, NULL, offsetof(struct es_trigger_cfg, poll_ms), 0,
     "read changes since the watermark at this interval", NULL, NULL, 0, 0},
    {"batch", ES_CFG_CRON, NULL, offsetof(struct es_trigger_cfg, batch), 0,
     "read everything on this 5-field cron schedule (bulk path)", NULL, NULL, 0, 0},
    {"overlap", ES_CFG_DURATION, "2s", offsetof(struct es_trigger_cfg, overlap_ms), 0,
     "how far a poll re-reads behind its watermark, for late commits", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema trigger_schema = {
    "flows.<name>.trigger",
    "When the flow reads its source. At least one of realtime, poll, batch.", trigger_fields, 0};

static const struct es_cfg_field retry_fields[] = {
    {"max_attempts", ES_CFG_INT, "8", offsetof(struct es_retry_cfg, max_attempts), 0,
     "attempts before a transient failure becomes a dead letter", NULL, NULL, 1, 1000},
    {"base", ES_CFG_DURATION, "1s", offsetof(struct es_retry_cfg, base_ms), 0,
     "first backoff delay; doubles each attempt, with jitter", NULL, NULL, 0, 0},
    {"max", ES_CFG_DURATION, "15m", offsetof(struct es_retry_cfg, max_ms), 0,
     "longest backoff delay", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema retry_schema = {
    "flows.<name>.retry", "Retries of transient failures.", retry_fields, 0};

static const struct es_cfg_field writeback_fields[] = {
    {"field", ES_CFG_STR, NULL, offsetof(struct es_writeback_cfg, field), ES_CFG_REQUIRED,
     "source field that receives the target's id (e.g. SAP_Customer_No__c)", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema writeback_schema = {
    "flows.<name>.writeback", "Write the target's id back into the source record.",
    writeback_fields, 0};

static const struct es_cfg_field flow_fields[] = {
    {"entity", ES_CFG_STR, NULL, offsetof(struct es_flow_cfg, entity), ES_CFG_REQUIRED,
     "the entity this flow moves", NULL, NULL, 0, 0},
    {"from", ES_CFG_STR, NULL, offsetof(struct es_flow_cfg, from), ES_CFG_REQUIRED, "source system",
     NULL, NULL, 0, 0},
    {"to", ES_CFG_STR, NULL, offsetof(struct es_flow_cfg, to), ES_CFG_REQUIRED, "target system",
     NULL, NULL, 0, 0},
    {"source_object", ES_CFG_STR, NULL, offsetof(struct es_flow_cfg, source_object), 0,
     "override of the entity's object in the source system", NULL, NULL, 0, 0},
    {"target_object", ES_CFG_STR, NULL, offsetof(struct es_flow_cfg, target_object), 0,
     "override of the entity's object in the target system", NULL, NULL, 0, 0},
    {"trigger", ES_CFG_SECTION, NULL, offsetof(struct es_flow_cfg, trigger), ES_CFG_REQUIRED,
     "when the flow runs, see below", &trigger_schema, NULL, 0, 0},
    {"map", ES_CFG_NODE, NULL, offsetof(struct es_flow_cfg, map), ES_CFG_REQUIRED,
     "field mapping: {target.path: rule}, see docs/mapping.md", NULL, NULL, 0, 0},
    {"schema", ES_CFG_NODE, NULL, offsetof(struct es_flow_cfg, schema), 0,
     "declared target schema for pre-flight validation: {field: {type, required, max_length, "
     "picklist}}",
     NULL, NULL, 0, 0},
    {"fixtures", ES_CFG_STR, NULL, offsetof(struct es_flow_cfg, fixtures), 0,
     "file of mapping test cases, relative to this file (erpsync test)", NULL, NULL, 0, 0},
    {"batch_size", ES_CFG_INT, "200", offsetof(struct es_flow_cfg, batch_size), 0,
     "changes written to the target per call", NULL, NULL, 1, 100000},
    {"operation", ES_CFG_ENUM, "upsert", offsetof(struct es_flow_cfg, operation), 0,
     "how records are written to the target", NULL, operation_names, 0, 0},
    {"external_id", ES_CFG_STR, NULL, offsetof(struct es_flow_cfg, external_id), 0,
     "target field used as the idempotency key of upserts", NULL, NULL, 0, 0},
    {"writeback", ES_CFG_SECTION, NULL, offsetof(struct es_flow_cfg, writeback), 0,
     "write the target id back to the source, see below", &writeback_schema, NULL, 0, 0},
    {"retry", ES_CFG_SECTION, NULL, offsetof(struct es_flow_cfg, retry), 0,
     "retry policy, see below", &retry_schema, NULL, 0, 0},
    {"enabled", ES_CFG_BOOL, "true", offsetof(struct es_flow_cfg, enabled), 0,
     "a disabled flow is loaded and checked but never runs", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema flow_schema = {
    "flows.<name>", "One direction of one entity: source -> mapping -> target, with a trigger.",
    flow_fields, 0};

static const struct es_cfg_field map_rule_fields[] = {
    {"from", ES_CFG_STR, NULL, offsetof(struct es_map_rule_shape, from), 0,
     "source path: Name, Billing.City, Lines[0].Qty, Lines[*].Qty", NULL, NULL, 0, 0},
    {"const", ES_CFG_NODE, NULL, offsetof(struct es_map_rule_shape, const_value), 0,
     "a constant value", NULL, NULL, 0, 0},
    {"default", ES_CFG_NODE, NULL, offsetof(struct es_map_rule_shape, default_value), 0,
     "value used when the source is missing or null", NULL, NULL, 0, 0},
    {"required", ES_CFG_BOOL, "false", offsetof(struct es_map_rule_shape, required), 0,
     "a missing or empty value is a validation error", NULL, NULL, 0, 0},
    {"max_length", ES_CFG_INT, NULL, offsetof(struct es_map_rule_shape, max_length), 0,
     "longest value in characters", NULL, NULL, 1, 1000000},
    {"on_overflow", ES_CFG_ENUM, "reject", offsetof(struct es_map_rule_shape, on_overflow), 0,
     "what max_length does with a longer value", NULL, overflow_names, 0, 0},
    {"table", ES_CFG_STR, NULL, offsetof(struct es_map_rule_shape, table), 0,
     "translate the value through a lookup table from `tables:`", NULL, NULL, 0, 0},
    {"unmapped", ES_CFG_ENUM, "reject", offsetof(struct es_map_rule_shape, unmapped), 0,
     "what a table lookup does with a value not in the table", NULL, unmapped_names, 0, 0},
    {"type", ES_CFG_ENUM, "any", offsetof(struct es_map_rule_shape, type), 0,
     "convert the value to this type", NULL, es_map_type_names, 0, 0},
    {"expr", ES_CFG_STR, NULL, offsetof(struct es_map_rule_shape, expr), 0,
     "an expression, see docs/mapping.md", NULL, NULL, 0, 0},
    {"format", ES_CFG_STR, NULL, offsetof(struct es_map_rule_shape, format), 0,
     "output format for dates and decimals", NULL, NULL, 0, 0},
    {"when", ES_CFG_STR, NULL, offsetof(struct es_map_rule_shape, when), 0,
     "an expression; the field is set only when it is true", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
const struct es_cfg_schema es_map_rule_schema = {
    "flows.<name>.map.<target>",
    "One target field. Written short as `Target: Source.Path`, or as a mapping with exactly one "
    "of from, const, expr.",
    map_rule_fields, 0};

static const struct es_cfg_field server_fields[] = {
    {"listen", ES_CFG_STR, "127.0.0.1:8089", offsetof(struct es_server_cfg, listen), 0,
     "address:port of the HTTP server (webhooks, admin API, metrics, web page)", NULL, NULL, 0, 0},
    {"admin_token_env", ES_CFG_ENV, NULL, offsetof(struct es_server_cfg, admin_token_env), 0,
     "environment variable holding the bearer token of the admin API", NULL, NULL, 0, 0},
    {"max_body", ES_CFG_SIZE, "1MiB", offsetof(struct es_server_cfg, max_body), 0,
     "largest request body accepted", NULL, NULL, 1, 1LL << 30},
    {"threads", ES_CFG_INT, "2", offsetof(struct es_server_cfg, threads), 0, "HTTP server threads",
     NULL, NULL, 1, 256},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema server_schema = {"server", "erpsync's own HTTP server.",
                                                   server_fields, 0};

/* Collections (systems, tables, entities, flows) are maps of name -> section; the loader
 * handles them by name, the table documents them. */
struct top {
    const char *store;
    int64_t retention_ms;
    const char *timezone;
    const char *lua;
    long long workers;
    struct es_server_cfg server;
    const struct es_node *systems, *tables, *entities, *flows;
};

static const struct es_cfg_field top_fields[] = {
    {"store", ES_CFG_STR, "sqlite:erpsync.db", offsetof(struct top, store), 0,
     "durable state: sqlite:PATH (one node) or postgres://user@host/db (cluster)", NULL, NULL, 0,
     0},
    {"retention", ES_CFG_DURATION, "30d", offsetof(struct top, retention_ms), 0,
     "how long done changes and audit rows stay in the journal (0s = forever); also how long "
     "a re-sent (flow, key, version) is recognised as a duplicate",
     NULL, NULL, 0, 0},
    {"timezone", ES_CFG_STR, "UTC", offsetof(struct top, timezone), 0,
     "IANA time zone of batch cron schedules", NULL, NULL, 0, 0},
    {"lua", ES_CFG_STR, NULL, offsetof(struct top, lua), 0,
     "Lua file with custom mapping functions (lua.NAME(...) in expressions)", NULL, NULL, 0, 0},
    {"workers", ES_CFG_INT, "2", offsetof(struct top, workers), 0, "worker threads", NULL, NULL, 1,
     256},
    {"server", ES_CFG_SECTION, NULL, offsetof(struct top, server), 0, "see below", &server_schema,
     NULL, 0, 0},
    {"systems", ES_CFG_NODE, NULL, offsetof(struct top, systems), ES_CFG_REQUIRED,
     "the systems by name, see systems.<name>", NULL, NULL, 0, 0},
    {"tables", ES_CFG_NODE, NULL, offsetof(struct top, tables), 0,
     "lookup tables by name: {name: {from: to}}", NULL, NULL, 0, 0},
    {"entities", ES_CFG_NODE, NULL, offsetof(struct top, entities), ES_CFG_REQUIRED,
     "the entities by name, see entities.<name>", NULL, NULL, 0, 0},
    {"flows", ES_CFG_NODE, NULL, offsetof(struct top, flows), ES_CFG_REQUIRED,
     "the flows by name, see flows.<name>", NULL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0},
};
static const struct es_cfg_schema top_schema = {"(top level)", "The integration file.", top_fields,
                                                0};

/* ---- loading ------------------------------------------------------------------------- */

static int valid_name(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            return 0;
        }
    }
    return 1;
}

/* Checks a collection node is a map of name -> mapping; returns its count or -1. */
static long collection(const struct es_cfg_ctx *ctx, const struct es_node *n, const char *what,
                       int values_are_maps)
{
    if (!n || n->is_null) {
        return 0;
    }
    if (n->kind != ES_NODE_MAP) {
        es_cfg_error(ctx, n, "'%s' must be a mapping of name -> %s, not %s", what,
                     values_are_maps ? "settings" : "value", es_node_kind_name(n->kind));
        return -1;
    }
    for (size_t i = 0; i < n->count; i++) {
        if (!valid_name(n->pairs[i].key->str)) {
            es_cfg_error(ctx, n->pairs[i].key,
                         "%s name '%s' may only use letters, digits, '_', '-' and '.'", what,
                         n->pairs[i].key->str);
        }
    }
    return (long)n->count;
}

static const char *auth_method(const struct es_auth_cfg *a, int *count)
{
    const char *m = "none";
    *count = 0;
    if (a->oauth2_client_credentials.id_env || a->oauth2_client_credentials.secret_env) {
        m = "oauth2_client_credentials";
        (*count)++;
    }
    if (a->oauth2_password.id_env || a->oauth2_password.user_env) {
        m = "oauth2_password";
        (*count)++;
    }
    if (a->oauth2_refresh_token.refresh_token_env) {
        m = "oauth2_refresh_token";
        (*count)++;
    }
    if (a->oauth2_jwt_bearer.private_key_env) {
        m = "oauth2_jwt_bearer";
        (*count)++;
    }
    if (a->basic.user_env) {
        m = "basic";
        (*count)++;
    }
    if (a->bearer_token_env) {
        m = "bearer";
        (*count)++;
    }
    if (a->login_env) {
        m = "login";
        (*count)++;
    }
    return m;
}

static void load_systems(const struct es_cfg_ctx *ctx, struct es_config *cfg,
                         const struct es_node *n)
{
    long count = collection(ctx, n, "systems", 1);
    if (count <= 0) {
        if (count == 0 && n) {
            es_cfg_error(ctx, n, "'systems' needs at least one system");
        }
        return;
    }
    cfg->systems = es_arena_alloc(ctx->arena, (size_t)count * sizeof *cfg->systems);
    memset(cfg->systems, 0, (size_t)count * sizeof *cfg->systems);
    cfg->nsystems = (size_t)count;
    for (size_t i = 0; i < n->count; i++) {
        struct es_system_cfg *s = &cfg->systems[i];
        s->name = n->pairs[i].key->str;
        s->node = n->pairs[i].value;
        s->connector_id = -1;
        char label[96];
        snprintf(label, sizeof label, "system '%s'", s->name);
        struct es_cfg_ctx sctx = *ctx;
        sctx.label = label;
        es_cfg_apply(&sctx, &system_schema, s->node, s);
        s->connector = s->connector_id >= 0 ? connector_names[s->connector_id] : NULL;
        int methods = 0;
        s->auth.method = auth_method(&s->auth, &methods);
        const struct es_node *auth = es_node_get(s->node, "auth");
        if (methods > 1) {
            es_cfg_error(ctx, auth, "system '%s': choose one authentication method, found %d",
                         s->name, methods);
        }
        const char *sf = s->auth.oauth2_refresh_token.store_file;
        if (sf && sf[0] != '/') {
            const struct es_node *rt = es_node_get(auth, "oauth2_refresh_token");
            es_cfg_error(ctx, es_node_get(rt, "store_file") ? es_node_get(rt, "store_file") : auth,
                         "system '%s': store_file must be an absolute path (outside the "
                         "repository: it holds a secret)",
                         s->name);
        }
        if (auth && auth->kind == ES_NODE_MAP && s->auth.login_env && !s->auth.password_env) {
            es_cfg_error(ctx, auth, "system '%s': login_env needs password_env", s->name);
        }
        if (s->connector && strcmp(s->connector, "memory") != 0 &&
            strcmp(s->connector, "csv") != 0 && !s->url) {
            es_cfg_error(ctx, s->node, "system '%s': missing required key 'url'", s->name);
        }
        if (s->url && strcmp(s->connector ? s->connector : "", "postgres") != 0 &&
            strcmp(s->connector ? s->connector : "", "csv") != 0 &&
            strncmp(s->url, "http://", 7) != 0 && strncmp(s->url, "https://", 8) != 0) {
            es_cfg_error(ctx, es_node_get(s->node, "url"),
                         "system '%s': url must start with http:// or https://, got '%s'", s->name,
                         s->url);
        }
        if (s->options && s->options->kind != ES_NODE_MAP && !s->options->is_null) {
            es_cfg_error(ctx, s->options, "'options' must be a mapping");
        }
    }
}

static void load_tables(const struct es_cfg_ctx *ctx, struct es_config *cfg,
                        const struct es_node *n)
{
    long count = collection(ctx, n, "tables", 1);
    if (count <= 0) {
        return;
    }
    cfg->tables = es_arena_alloc(ctx->arena, (size_t)count * sizeof *cfg->tables);
    cfg->ntables = (size_t)count;
    for (size_t i = 0; i < n->count; i++) {
        struct es_table_cfg *t = &cfg->tables[i];
        memset(t, 0, sizeof *t);
        t->name = n->pairs[i].key->str;
        t->node = n->pairs[i].value;
        if (t->node->kind != ES_NODE_MAP) {
            es_cfg_error(ctx, t->node, "table '%s' must be a mapping of value -> value", t->name);
            continue;
        }
        t->count = t->node->count;
        t->keys = es_arena_alloc(ctx->arena, (t->count + 1) * sizeof *t->keys);
        t->values = es_arena_alloc(ctx->arena, (t->count + 1) * sizeof *t->values);
        for (size_t j = 0; j < t->count; j++) {
            const struct es_node *v = t->node->pairs[j].value;
            t->keys[j] = t->node->pairs[j].key->str;
            if (v->kind != ES_NODE_SCALAR) {
                es_cfg_error(ctx, v, "table '%s': value of '%s' must be a scalar", t->name,
                             t->keys[j]);
                t->values[j] = "";
                continue;
            }
            t->values[j] = v->is_null ? NULL : v->str;
        }
    }
}

static void load_entities(const struct es_cfg_ctx *ctx, struct es_config *cfg,
                          const struct es_node *n)
{
    long count = collection(ctx, n, "entities", 1);
    if (count <= 0) {
        if (count == 0 && n) {
            es_cfg_error(ctx, n, "'entities' needs at least one entity");
        }
        return;
    }
    cfg->entities = es_arena_alloc(ctx->arena, (size_t)count * sizeof *cfg->entities);
    memset(cfg->entities, 0, (size_t)count * sizeof *cfg->entities);
    cfg->nentities = (size_t)count;
    for (size_t i = 0; i < n->count; i++) {
        struct es_entity_cfg *e = &cfg->entities[i];
        e->name = n->pairs[i].key->str;
        e->node = n->pairs[i].value;
        char label[96];
        snprintf(label, sizeof label, "entity '%s'", e->name);
        struct es_cfg_ctx ectx = *ctx;
        ectx.label = label;
        es_cfg_apply(&ectx, &entity_schema, e->node, e);
        const struct es_node *objs = e->objects_node;
        if (objs && objs->kind == ES_NODE_MAP) {
            e->nobjects = objs->count;
            e->objects = es_arena_alloc(ctx->arena, (objs->count + 1) * sizeof *e->objects);
            for (size_t j = 0; j < objs->count; j++) {
                struct es_object_ref *o = &e->objects[j];
                o->system = objs->pairs[j].key->str;
                o->node = objs->pairs[j].value;
                o->object = o->node->kind == ES_NODE_SCALAR ? o->node->str : NULL;
                if (!o->object || o->node->is_null) {
                    es_cfg_error(ctx, o->node,
                                 "entity '%s': object for system '%s' must be a "
                                 "name such as Account or party.party",
                                 e->name, o->system);
                }
                if (!es_config_system(cfg, o->system)) {
                    es_cfg_error(ctx, objs->pairs[j].key,
                                 "entity '%s': unknown system '%s' in objects", e->name, o->system);
                }
            }
        } else if (objs) {
            es_cfg_error(ctx, objs, "entity '%s': objects must be a mapping {system: object}",
                         e->name);
        }
        if (e->system_of_record && !es_config_system(cfg, e->system_of_record)) {
            es_cfg_error(ctx, es_node_get(e->node, "system_of_record"),
                         "entity '%s': system_of_record '%s' is not a system", e->name,
                         e->system_of_record);
        }
        const struct es_node *owned = e->owned_node;
        if (owned && owned->kind == ES_NODE_MAP) {
            e->nowned = owned->count;
            e->owned = es_arena_alloc(ctx->arena, (owned->count + 1) * sizeof *e->owned);
            for (size_t j = 0; j < owned->count; j++) {
                struct es_owned_fields *of = &e->owned[j];
                memset(of, 0, sizeof *of);
                of->system = owned->pairs[j].key->str;
                if (!es_config_system(cfg, of->system)) {
                    es_cfg_error(ctx, owned->pairs[j].key,
                                 "entity '%s': unknown system '%s' in fields_owned_by", e->name,
                                 of->system);
                }
                const struct es_node *v = owned->pairs[j].value;
                if (v->kind == ES_NODE_SEQ) {
                    of->fields.count = v->count;
                    of->fields.node = v;
                    of->fields.items =
                        es_arena_alloc(ctx->arena, (v->count + 1) * sizeof *of->fields.items);
                    for (size_t k = 0; k < v->count; k++) {
                        of->fields.items[k] =
                            v->items[k]->kind == ES_NODE_SCALAR ? v->items[k]->str : "";
                    }
                } else {
                    es_cfg_error(ctx, v,
                                 "entity '%s': fields_owned_by of '%s' must be a list of fields",
                                 e->name, of->system);
                }
            }
        } else if (owned && !owned->is_null) {
            es_cfg_error(ctx, owned, "entity '%s': fields_owned_by must be {system: [fields]}",
                         e->name);
        }
    }
}

static void scan_map_rules(const struct es_cfg_ctx *ctx, const struct es_config *cfg,
                           const struct es_flow_cfg *f)
{
    const struct es_node *m = f->map;
    if (!m || m->is_null) {
        return;
    }
    if (m->kind != ES_NODE_MAP) {
        es_cfg_error(ctx, m, "flow '%s': map must be a mapping {target.path: rule}", f->name);
        return;
    }
    if (m->count == 0) {
        es_cfg_error(ctx, m, "flow '%s': map is empty", f->name);
        return;
    }
    for (size_t i = 0; i < m->count; i++) {
        const struct es_node *rule = m->pairs[i].value;
        if (rule->kind == ES_NODE_SCALAR) {
            if (rule->is_null) {
                es_cfg_error(ctx, rule, "flow '%s': rule for '%s' is empty", f->name,
                             m->pairs[i].key->str);
            }
            continue;
        }
        if (rule->kind != ES_NODE_MAP) {
            es_cfg_error(ctx, rule,
                         "flow '%s': rule for '%s' must be a source path or a mapping, not %s",
                         f->name, m->pairs[i].key->str, es_node_kind_name(rule->kind));
            continue;
        }
        struct es_map_rule_shape shape;
        memset(&shape, 0, sizeof shape);
        char label[160];
        snprintf(label, sizeof label, "flow '%s': map rule '%s'", f->name, m->pairs[i].key->str);
        struct es_cfg_ctx rctx = *ctx;
        rctx.label = label;
        es_cfg_apply(&rctx, &es_map_rule_schema, rule, &shape);
        int sources =
            (shape.from != NULL) + (es_node_get(rule, "const") != NULL) + (shape.expr != NULL);
        if (sources > 1) {
            es_cfg_error(ctx, rule, "flow '%s': rule for '%s' takes one of from, const, expr",
                         f->name, m->pairs[i].key->str);
        } else if (sources == 0 && !es_node_get(rule, "default")) {
            es_cfg_error(ctx, rule,
                         "flow '%s': rule for '%s' needs a source: from, const, expr or default",
                         f->name, m->pairs[i].key->str);
        }
        if (shape.table && !es_config_table(cfg, shape.table)) {
            char known[256] = "";
            size_t off = 0;
            for (size_t t = 0; t < cfg->ntables && off < sizeof known; t++) {
                off += (size_t)snprintf(known + off, sizeof known - off, "%s%s", t ? ", " : "",
                                        cfg->tables[t].name);
            }
            es_cfg_error(ctx, es_node_get(rule, "table"),
                         "flow '%s': unknown table '%s' (tables: %s)", f->name, shape.table,
                         cfg->ntables ? known : "none defined");
        }
    }
}

static int system_index(const struct es_config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->nsystems; i++) {
        if (strcmp(cfg->systems[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void load_flows(const struct es_cfg_ctx *ctx, struct es_config *cfg, const struct es_node *n)
{
    long count = collection(ctx, n, "flows", 1);
    if (count <= 0) {
        if (count == 0 && n) {
            es_cfg_error(ctx, n, "'flows' needs at least one flow");
        }
        return;
    }
    cfg->flows = es_arena_alloc(ctx->arena, (size_t)count * sizeof *cfg->flows);
    memset(cfg->flows, 0, (size_t)count * sizeof *cfg->flows);
    cfg->nflows = (size_t)count;
    for (size_t i = 0; i < n->count; i++) {
        struct es_flow_cfg *f = &cfg->flows[i];
        f->name = n->pairs[i].key->str;
        f->node = n->pairs[i].value;
        f->entity_idx = f->from_idx = f->to_idx = -1;
        char label[96];
        snprintf(label, sizeof label, "flow '%s'", f->name);
        struct es_cfg_ctx fctx = *ctx;
        fctx.label = label;
        es_cfg_apply(&fctx, &flow_schema, f->node, f);
        if (f->node->kind != ES_NODE_MAP) {
            continue;
        }
        const struct es_entity_cfg *e = NULL;
        if (f->entity) {
            e = es_config_entity(cfg, f->entity);
            if (!e) {
                es_cfg_error(ctx, es_node_get(f->node, "entity"), "flow '%s': unknown entity '%s'",
                             f->name, f->entity);
            } else {
                f->entity_idx = (int)(e - cfg->entities);
            }
        }
        const char *ends[2] = {f->from, f->to};
        const char *keys[2] = {"from", "to"};
        int *idx[2] = {&f->from_idx, &f->to_idx};
        const char **objs[2] = {&f->source_object, &f->target_object};
        for (int k = 0; k < 2; k++) {
            if (!ends[k]) {
                continue;
            }
            *idx[k] = system_index(cfg, ends[k]);
            if (*idx[k] < 0) {
                es_cfg_error(ctx, es_node_get(f->node, keys[k]),
                             "flow '%s': unknown system '%s' in '%s'", f->name, ends[k], keys[k]);
                continue;
            }
            if (e && !*objs[k]) {
                *objs[k] = es_entity_object(e, ends[k]);
                if (!*objs[k]) {
                    es_cfg_error(ctx, es_node_get(f->node, keys[k]),
                                 "flow '%s': entity '%s' names no object for system '%s' "
                                 "(add it to entities.%s.objects)",
                                 f->name, e->name, ends[k], e->name);
                }
            }
        }
        if (f->from && f->to && strcmp(f->from, f->to) == 0) {
            es_cfg_error(ctx, es_node_get(f->node, "to"),
                         "flow '%s': source and target are the same system", f->name);
        }
        const struct es_node *trig = es_node_get(f->node, "trigger");
        if (trig && trig->kind == ES_NODE_MAP && !f->trigger.realtime &&
            !es_node_get(trig, "poll") && !es_node_get(trig, "batch")) {
            es_cfg_error(ctx, trig,
                         "flow '%s': trigger needs realtime: true, poll: DURATION or batch: CRON",
                         f->name);
        }
        if (f->trigger.batch) {
            int bad_at = 0;
            if (es_cron_parse(f->trigger.batch, &f->trigger.cron, &bad_at, NULL) != ES_OK) {
                f->trigger.batch = NULL; /* already reported by the schema walker */
            }
        }
        if (f->trigger.poll_ms && f->trigger.poll_ms < 1000) {
            es_cfg_error(ctx, es_node_get(trig, "poll"),
                         "flow '%s': poll interval must be at least 1s", f->name);
        }
        if (f->trigger.realtime && f->from_idx >= 0 && !cfg->systems[f->from_idx].webhook.path) {
            es_cfg_warning(ctx, es_node_get(trig, "realtime"),
                           "flow '%s': realtime trigger but system '%s' has no webhook; "
                           "changes arrive only through the enqueue API",
                           f->name, f->from);
        }
        scan_map_rules(ctx, cfg, f);
    }
}

static void check_webhook_paths(const struct es_cfg_ctx *ctx, const struct es_config *cfg)
{
    for (size_t i = 0; i < cfg->nsystems; i++) {
        const char *p = cfg->systems[i].webhook.path;
        if (!p) {
            continue;
        }
        const struct es_node *wh = es_node_get(cfg->systems[i].node, "webhook");
        if (p[0] != '/') {
            es_cfg_error(ctx, es_node_get(wh, "path"), "webhook path must start with '/'");
        }
        if (strncmp(p, "/api/", 5) == 0 || strcmp(p, "/metrics") == 0 ||
            strcmp(p, "/healthz") == 0) {
            es_cfg_error(ctx, es_node_get(wh, "path"),
                         "webhook path '%s' collides with erpsync's own endpoints", p);
        }
        for (size_t j = 0; j < i; j++) {
            const char *q = cfg->systems[j].webhook.path;
            if (q && strcmp(p, q) == 0) {
                es_cfg_error(ctx, es_node_get(wh, "path"),
                             "webhook path '%s' is already used by system '%s'", p,
                             cfg->systems[j].name);
            }
        }
    }
}

int es_config_parse(const char *name, const char *text, size_t len, struct es_config **out,
                    struct es_diags *diags)
{
    *out = NULL;
    struct es_err err;
    es_err_clear(&err);
    int line = 0, col = 0;
    struct es_doc *doc = NULL;
    if (es_doc_parse(name, text, len, &doc, &line, &col, &err) != ES_OK) {
        /* err.msg is "FILE:L:C: what"; show only "what" next to our own position. */
        const char *what = err.msg;
        char prefix[64];
        snprintf(prefix, sizeof prefix, ":%d:%d: ", line, col);
        const char *cut = strstr(err.msg, prefix);
        if (cut) {
            what = cut + strlen(prefix);
        }
        char *copy = es_xstrndup(text, len);
        es_diags_add(diags, ES_DIAG_ERROR, copy, name, line, col, "%s", what);
        es_free(copy);
        return ES_ECONFIG;
    }
    struct es_config *cfg = es_xcalloc(1, sizeof *cfg);
    cfg->doc = doc;
    cfg->path = doc->file;
    struct es_cfg_ctx ctx = {diags, doc, &doc->arena, NULL};
    int errors_before = diags->errors;
    if (!doc->root || doc->root->kind != ES_NODE_MAP) {
        es_diags_add(diags, ES_DIAG_ERROR, doc->text, name, doc->root ? doc->root->line : 1,
                     doc->root ? doc->root->col : 1,
                     "the file must be a mapping with systems, entities and flows");
        es_config_free(cfg);
        return ES_ECONFIG;
    }
    struct top top;
    memset(&top, 0, sizeof top);
    es_cfg_apply(&ctx, &top_schema, doc->root, &top);
    cfg->store = top.store;
    cfg->retention_ms = top.retention_ms;
    cfg->timezone = top.timezone;
    cfg->lua = top.lua;
    cfg->workers = top.workers;
    cfg->server = top.server;
    if (cfg->store && strncmp(cfg->store, "sqlite:", 7) != 0 &&
        strncmp(cfg->store, "postgres://", 11) != 0 &&
        strncmp(cfg->store, "postgresql://", 13) != 0) {
        es_cfg_error(&ctx, es_node_get(doc->root, "store"),
                     "store must be sqlite:PATH or postgres://user@host/db, got '%s'", cfg->store);
    }
    load_systems(&ctx, cfg, top.systems);
    load_tables(&ctx, cfg, top.tables);
    load_entities(&ctx, cfg, top.entities);
    load_flows(&ctx, cfg, top.flows);
    check_webhook_paths(&ctx, cfg);
    if (diags->errors > errors_before) {
        es_config_free(cfg);
        return ES_ECONFIG;
    }
    *out = cfg;
    return ES_OK;
}

int es_config_load(const char *path, struct es_config **out, struct es_diags *diags)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    struct es_err err;
    es_err_clear(&err);
    if (es_file_read(path, 16u << 20, &text, &len, &err) != ES_OK) {
        es_diags_add(diags, ES_DIAG_ERROR, NULL, path, 0, 0, "%s",
                     err.sys_errno ? strerror(err.sys_errno) : "larger than 16 MiB");
        return ES_ECONFIG;
    }
    int rc = es_config_parse(path, text, len, out, diags);
    es_free(text);
    return rc;
}

void es_config_free(struct es_config *cfg)
{
    if (!cfg) {
        return;
    }
    es_doc_free(cfg->doc);
    es_free(cfg);
}

/* ---- lookups --------------------------------------------------------------------------- */

const struct es_system_cfg *es_config_system(const struct es_config *cfg, const char *name)
{
    int i = system_index(cfg, name);
    return i < 0 ? NULL : &cfg->systems[i];
}

const struct es_entity_cfg *es_config_entity(const struct es_config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->nentities; i++) {
        if (strcmp(cfg->entities[i].name, name) == 0) {
            return &cfg->entities[i];
        }
    }
    return NULL;
}

const struct es_flow_cfg *es_config_flow(const struct es_config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->nflows; i++) {
        if (strcmp(cfg->flows[i].name, name) == 0) {
            return &cfg->flows[i];
        }
    }
    return NULL;
}

const struct es_table_cfg *es_config_table(const struct es_config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->ntables; i++) {
        if (strcmp(cfg->tables[i].name, name) == 0) {
            return &cfg->tables[i];
        }
    }
    return NULL;
}

const char *es_entity_object(const struct es_entity_cfg *e, const char *system)
{
    for (size_t i = 0; system && i < e->nobjects; i++) {
        if (strcmp(e->objects[i].system, system) == 0) {
            return e->objects[i].object;
        }
    }
    return NULL;
}

/* ---- secrets ------------------------------------------------------------------------- */

const char *es_config_secret(const char *env_name)
{
    if (!env_name) {
        return NULL;
    }
    const char *v = getenv(env_name);
    if (!v || !*v) {
        return NULL;
    }
    es_log_add_secret(v);
    return v;
}

static int check_one_env(const struct es_config *cfg, struct es_diags *diags,
                         enum es_diag_severity sev, const char *name, const struct es_node *near,
                         const char *what)
{
    if (!name) {
        return 0;
    }
    const char *v = getenv(name);
    if (v && *v) {
        return 0;
    }
    es_diags_add(diags, sev, cfg->doc->text, cfg->path, near ? near->line : 0, near ? near->col : 0,
                 "environment variable %s (%s) is not set", name, what);
    return 1;
}

int es_config_check_env(const struct es_config *cfg, struct es_diags *diags,
                        enum es_diag_severity sev)
{
    int n = 0;
    for (size_t i = 0; i < cfg->nsystems; i++) {
        const struct es_system_cfg *s = &cfg->systems[i];
        const struct es_node *auth = es_node_get(s->node, "auth");
        const struct es_oauth2_cfg *o[4] = {&s->auth.oauth2_client_credentials,
                                            &s->auth.oauth2_password, &s->auth.oauth2_refresh_token,
                                            &s->auth.oauth2_jwt_bearer};
        for (int k = 0; k < 4; k++) {
            n += check_one_env(cfg, diags, sev, o[k]->id_env, auth, "OAuth2 client id");
            n += check_one_env(cfg, diags, sev, o[k]->secret_env, auth, "OAuth2 client secret");
            n += check_one_env(cfg, diags, sev, o[k]->user_env, auth, "OAuth2 user");
            n += check_one_env(cfg, diags, sev, o[k]->password_env, auth, "OAuth2 password");
            n += check_one_env(cfg, diags, sev, o[k]->refresh_token_env, auth, "refresh token");
            n += check_one_env(cfg, diags, sev, o[k]->private_key_env, auth, "JWT private key");
        }
        n += check_one_env(cfg, diags, sev, s->auth.basic.user_env, auth, "basic auth user");
        n +=
            check_one_env(cfg, diags, sev, s->auth.basic.password_env, auth, "basic auth password");
        n += check_one_env(cfg, diags, sev, s->auth.bearer_token_env, auth, "bearer token");
        n += check_one_env(cfg, diags, sev, s->auth.login_env, auth, "login");
        n += check_one_env(cfg, diags, sev, s->auth.password_env, auth, "password");
        n += check_one_env(cfg, diags, sev, s->webhook.hmac_secret_env,
                           es_node_get(s->node, "webhook"), "webhook HMAC key");
    }
    n += check_one_env(cfg, diags, sev, cfg->server.admin_token_env,
                       es_node_get(cfg->doc->root, "server"), "admin API token");
    return n;
}

/* ---- docs ------------------------------------------------------------------------------ */

void es_config_docs(FILE *out)
{
    fputs("# erpsync configuration reference\n\n"
          "Generated by `erpsync config-docs` from the loader's own schema tables, so it always\n"
          "matches what `erpsync validate` accepts. Durations are written `500ms`, `30s`, `15m`,\n"
          "`2h`, `1d` or combined (`1h30m`); sizes `65536`, `512KiB`, `1MiB`. Secrets are never\n"
          "written in the file: every `*_env` key names an environment variable.\n\n",
          out);
    es_cfg_docs(&top_schema, out, 1);
    es_cfg_docs(&system_schema, out, 1);
    es_cfg_docs(&entity_schema, out, 1);
    fputs("### `tables.<name>`\n\nA lookup table: a mapping of source value -> target value, "
          "used by map rules with `table:` and by `lookup(table, key)` in expressions.\n\n",
          out);
    es_cfg_docs(&flow_schema, out, 1);
    es_cfg_docs(&es_map_rule_schema, out, 1);
}
