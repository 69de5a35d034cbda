/* SPDX-License-Identifier: MIT */
/*
 * The `postgres` connector: a PostgreSQL database as a system, one table per object (libpq).
 *
 * Reading: read_changes walks a table in (updated_at, key) order from a watermark
 * "ts|key" (a keyset in the columns' own types, so rows sharing a timestamp are never
 * skipped and an index on (updated_at, key) serves it); read_page walks it by key.
 * Writing: one transaction per batch, one savepoint per record, so a bad row fails alone
 * with its SQLSTATE classified while the others commit; upserts are
 * INSERT ... ON CONFLICT (key) DO UPDATE. Values cross as text parameters (the server casts
 * them to the column types); numeric columns are read back as strings so money stays exact.
 *
 * Options (systems.<name>.options):
 *   schema: public           schema of the tables
 *   overlap: 0s              when a poll reaches the end, the next one re-reads this window
 *                            (rows whose transaction committed after a later one was polled)
 *   objects:
 *     <object>: {table: <name>, key: id, updated_at: updated_at, deleted_column: <col>}
 *
 * Deletes: with deleted_column (a soft-delete flag: boolean true, a non-NULL timestamp or a
 * non-zero number), rows so marked are read as deleted records, and a delete write marks the
 * row (and sets updated_at) instead of removing it. Rows removed with DELETE leave no trace a
 * poll could see: hard deletes are not visible.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/clock.h"
#include "core/diag.h"
#include "core/mem.h"

/* Type OIDs of pg_type.h (stable across versions). */
#define OID_BOOL    16
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_JSON    114
#define OID_FLOAT4  700
#define OID_FLOAT8  701
#define OID_NUMERIC 1700
#define OID_JSONB   3802

struct pg_object {
    const char *name; /* object name as the flows use it (points into the config) */
    const char *table;
    const char *key;
    const char *updated_at;
    const char *deleted; /* soft-delete column, or NULL */
};

struct pg_ctx {
    PGconn *conn;
    const char *schema;
    int64_t overlap_ms;
    size_t nobjects;
    struct pg_object *objects;
};

static const char *const top_keys[] = {"schema", "overlap", "objects", NULL};
static const char *const object_keys[] = {"table", "key", "updated_at", "deleted_column", NULL};

/* Checks the keys of map against allowed; reports FILE:LINE:COL with a suggestion. */
static const char *opt_str(const struct es_node *map, const char *key, const char *def,
                           struct es_err *err)
{
    const struct es_node *n = es_node_get(map, key);
    if (!n || n->is_null) {
        return def;
    }
    if (n->kind != ES_NODE_SCALAR || !n->len) {
        es_err_set(err, ES_ECONFIG, "%s:%d:%d: '%s' must be a non-empty string", n->file, n->line,
                   n->col, key);
        return def;
    }
    return n->str;
}

static int parse_options(struct pg_ctx *x, const struct es_node *opts, struct es_err *err)
{
    x->schema = "public";
    if (es_cfg_check_keys(opts, top_keys, "postgres options", err) != ES_OK) {
        return ES_ECONFIG;
    }
    x->schema = opt_str(opts, "schema", "public", err);
    const struct es_node *ov = es_node_get(opts, "overlap");
    if (ov && !ov->is_null) {
        int bad = 0;
        if (ov->kind != ES_NODE_SCALAR || es_duration_parse(ov->str, &x->overlap_ms, &bad)) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: overlap must be a duration like 5s",
                              ov->file, ov->line, ov->col);
        }
    }
    const struct es_node *objs = es_node_get(opts, "objects");
    if (objs && objs->kind == ES_NODE_MAP) {
        x->objects = es_xcalloc(objs->count ? objs->count : 1, sizeof *x->objects);
        for (size_t i = 0; i < objs->count; i++) {
            const struct es_node *o = objs->pairs[i].value;
            struct pg_object *po = &x->objects[x->nobjects++];
            po->name = objs->pairs[i].key->str;
            if (es_cfg_check_keys(o, object_keys, "a postgres object", err) != ES_OK) {
                return ES_ECONFIG;
            }
            po->table = opt_str(o, "table", po->name, err);
            po->key = opt_str(o, "key", "id", err);
            po->updated_at = opt_str(o, "updated_at", "updated_at", err);
            po->deleted = opt_str(o, "deleted_column", NULL, err);
        }
    } else if (objs && !objs->is_null && objs->kind != ES_NODE_MAP) {
        return es_err_set(err, ES_ECONFIG, "%s:%d:%d: objects must be a mapping", objs->file,
                          objs->line, objs->col);
    }
    return err && err->code ? err->code : ES_OK;
}

/* The settings of object: configured, or the defaults (table = object, key id). */
static struct pg_object object_of(const struct pg_ctx *x, const char *object)
{
    for (size_t i = 0; i < x->nobjects; i++) {
        if (strcmp(x->objects[i].name, object) == 0) {
            return x->objects[i];
        }
    }
    struct pg_object o = {object, object, "id", "updated_at", NULL};
    return o;
}

/* Classifies a failed result by SQLSTATE into err. Returns the code. */
static int pg_fail(PGconn *conn, const PGresult *res, const char *what, struct es_err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg) {
        msg = PQerrorMessage(conn);
    }
    enum es_code code = ES_EREMOTE;
    if (PQstatus(conn) != CONNECTION_OK) {
        code = ES_EIO;
    } else if (state) {
        if (strncmp(state, "23505", 5) == 0) {
            code = ES_EDUPLICATE;
        } else if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0 ||
                   strncmp(state, "42703", 5) == 0) {
            code = ES_EVALIDATION; /* constraint, bad data, unknown column */
        } else if (strncmp(state, "42P01", 5) == 0 || strncmp(state, "3F000", 5) == 0) {
            code = ES_ENOTFOUND; /* table or schema */
        } else if (strncmp(state, "28", 2) == 0) {
            code = ES_EAUTH;
        } else if (strncmp(state, "40", 2) == 0) {
            code = ES_ECONFLICT; /* serialization failure, deadlock */
        } else if (strncmp(state, "57014", 5) == 0) {
            code = ES_ETIMEOUT; /* statement_timeout */
        } else if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
                   strncmp(state, "57", 2) == 0) {
            code = ES_EIO;
        }
    }
    char m[256];
    es_strlcpy(m, msg ? msg : "unknown error", sizeof m);
    m[strcspn(m, "\n")] = '\0';
    int rc = es_err_set(err, code, "postgres: %s: %s", what, m);
    es_err_remote(err, 0, state, m);
    return rc;
}

/* Makes sure the connection is up (reconnects once after a failure). */
static int ensure_conn(struct pg_ctx *x, struct es_err *err)
{
    if (PQstatus(x->conn) == CONNECTION_OK) {
        return ES_OK;
    }
    PQreset(x->conn);
    if (PQstatus(x->conn) != CONNECTION_OK) {
        return pg_fail(x->conn, NULL, "connect", err);
    }
    PGresult *r = PQexec(x->conn, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'");
    PQclear(r);
    return ES_OK;
}

static int pg_init(struct es_conn *c, struct es_err *err)
{
    struct pg_ctx *x = c->ctx;
    const struct es_system_cfg *cfg = c->cfg;
    if (parse_options(x, cfg->options, err) != ES_OK) {
        return ES_ECONFIG;
    }
    if (!cfg->url) {
        return es_err_set(err, ES_ECONFIG, "postgres: 'url' (postgres://...) is required");
    }
    char tmo[32];
    snprintf(tmo, sizeof tmo, "%" PRId64,
             cfg->connect_timeout_ms > 0 ? (cfg->connect_timeout_ms + 999) / 1000 : 5);
    const char *password = es_config_secret(cfg->auth.password_env);
    const char *keys[6], *vals[6];
    int n = 0;
    keys[n] = "dbname", vals[n++] = cfg->url;
    keys[n] = "connect_timeout", vals[n++] = tmo;
    keys[n] = "application_name", vals[n++] = "erpsync";
    if (password) {
        keys[n] = "password", vals[n++] = password;
    }
    if (cfg->database) {
        keys[n] = "dbname", vals[n++] = cfg->database;
    }
    keys[n] = NULL, vals[n] = NULL;
    x->conn = PQconnectdbParams(keys, vals, 1);
    if (!x->conn) {
        return es_err_set(err, ES_ENOMEM, "postgres: out of memory");
    }
    if (PQstatus(x->conn) != CONNECTION_OK) {
        char m[256];
        es_strlcpy(m, PQerrorMessage(x->conn), sizeof m);
        m[strcspn(m, "\n")] = '\0';
        int code = strstr(m, "password") || strstr(m, "authentication") ? ES_EAUTH : ES_EIO;
        return es_err_set(err, code, "postgres: cannot connect: %s", m);
    }
    char set[128];
    snprintf(set, sizeof set,
             "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET statement_timeout = %" PRId64,
             cfg->timeout_ms > 0 ? cfg->timeout_ms : 0);
    PGresult *r = PQexec(x->conn, set);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? ES_OK : pg_fail(x->conn, r, "setup", err);
    PQclear(r);
    return rc;
}

static void pg_fini(struct es_conn *c)
{
    struct pg_ctx *x = c->ctx;
    if (x->conn) {
        PQfinish(x->conn);
    }
    es_free(x->objects);
}

/* Appends a quoted identifier ("schema"."table" when qualified). */
static void put_ident(struct es_buf *b, PGconn *conn, const char *name)
{
    char *q = PQescapeIdentifier(conn, name, strlen(name));
    (void)es_buf_puts(b, q ? q : "\"\"");
    PQfreemem(q);
}

static void put_table(struct es_buf *b, const struct pg_ctx *x, const struct pg_object *o)
{
    put_ident(b, x->conn, x->schema);
    (void)es_buf_putc(b, '.');
    put_ident(b, x->conn, o->table);
}

/* Appends the soft-delete test of column col of alias t: true for a boolean true, a non-NULL
 * timestamp or text, a non-zero number; "false" when the object has no such column. */
static void put_deleted(struct es_buf *b, PGconn *conn, const char *col)
{
    if (!col) {
        (void)es_buf_puts(b, "false");
        return;
    }
    (void)es_buf_puts(b, "(coalesce(t.");
    put_ident(b, conn, col);
    (void)es_buf_puts(b, "::text, 'false') NOT IN ('false', '0', '')");
    (void)es_buf_puts(b, ")");
}

/* The SQL value that marks a row deleted in the soft-delete column, by its type: true,
 * now() or 1. NULL with err set when the column is missing or of another type. */
static const char *delete_mark(struct pg_ctx *x, const struct pg_object *o, struct es_err *err)
{
    struct es_buf t;
    es_buf_init(&t, 0);
    put_table(&t, x, o);
    const char *p[2] = {t.data, o->deleted};
    PGresult *r = PQexecParams(x->conn,
                               "SELECT format_type(a.atttypid, NULL) FROM pg_attribute a "
                               "WHERE a.attrelid = $1::regclass AND a.attname = $2 "
                               "AND NOT a.attisdropped",
                               2, NULL, p, NULL, NULL, 0);
    es_buf_release(&t);
    const char *mark = NULL;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_fail(x->conn, r, o->table, err);
    } else if (PQntuples(r) == 0) {
        es_err_set(err, ES_ECONFIG, "postgres: %s has no column '%s' (deleted_column)", o->table,
                   o->deleted);
    } else {
        const char *ty = PQgetvalue(r, 0, 0);
        if (strcmp(ty, "boolean") == 0) {
            mark = "true";
        } else if (strncmp(ty, "timestamp", 9) == 0 || strcmp(ty, "date") == 0) {
            mark = "now()";
        } else if (strcmp(ty, "integer") == 0 || strcmp(ty, "smallint") == 0 ||
                   strcmp(ty, "bigint") == 0 || strcmp(ty, "numeric") == 0) {
            mark = "1";
        } else {
            es_err_set(err, ES_ECONFIG,
                       "postgres: deleted_column '%s' of %s is %s (want boolean, timestamp, "
                       "date or an integer)",
                       o->deleted, o->table, ty);
        }
    }
    PQclear(r);
    return mark;
}

/* Turns column j of row i into JSON (numeric stays a string: exact). OUT: new reference. */
static json_t *cell_json(const PGresult *r, int i, int j)
{
    if (PQgetisnull(r, i, j)) {
        return json_null();
    }
    const char *v = PQgetvalue(r, i, j);
    switch (PQftype(r, j)) {
    case OID_BOOL:
        return json_boolean(v[0] == 't');
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
        return json_integer(strtoll(v, NULL, 10));
    case OID_FLOAT4:
    case OID_FLOAT8:
        return json_real(strtod(v, NULL));
    case OID_JSON:
    case OID_JSONB: {
        json_t *j2 = json_loads(v, JSON_DECODE_ANY, NULL);
        return j2 ? j2 : json_string(v);
    }
    default:
        return json_string(v);
    }
}

/* Row i (columns from first_col on) as a JSON object. OUT: new reference. */
static json_t *row_json(const PGresult *r, int i, int first_col)
{
    json_t *o = json_object();
    int nf = PQnfields(r);
    for (int j = first_col; j < nf; j++) {
        json_object_set_new(o, PQfname(r, j), cell_json(r, i, j));
    }
    return o;
}

/* Parses "ts|key" (key may contain '|': the first bar splits). */
static int split_mark(const char *mark, char *ts, size_t tscap, const char **key)
{
    const char *bar = strchr(mark, '|');
    if (!bar || (size_t)(bar - mark) >= tscap || bar == mark) {
        return -1;
    }
    memcpy(ts, mark, (size_t)(bar - mark));
    ts[bar - mark] = '\0';
    *key = bar + 1;
    return 0;
}

static int pg_read_changes(struct es_conn *c, const char *object, const char *watermark,
                           size_t limit, struct es_batch *out, struct es_err *err)
{
    struct pg_ctx *x = c->ctx;
    es_batch_init(out);
    int crc = ensure_conn(x, err);
    if (crc != ES_OK) {
        return crc;
    }
    struct pg_object o = object_of(x, object);
    char ts[64];
    const char *key = NULL;
    if (watermark && *watermark && split_mark(watermark, ts, sizeof ts, &key) != 0) {
        return es_err_set(err, ES_EINVAL, "postgres: bad watermark '%s' (want 'ts|key')",
                          watermark);
    }
    if (!limit) {
        limit = 1000;
    }
    struct es_buf q;
    es_buf_init(&q, 0);
    (void)es_buf_puts(&q, "SELECT to_char(t.");
    put_ident(&q, x->conn, o.updated_at);
    (void)es_buf_puts(&q, ", 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), t.");
    put_ident(&q, x->conn, o.key);
    (void)es_buf_puts(&q, "::text, ");
    put_deleted(&q, x->conn, o.deleted);
    (void)es_buf_puts(&q, ", t.* FROM ");
    put_table(&q, x, &o);
    (void)es_buf_puts(&q, " t WHERE t.");
    put_ident(&q, x->conn, o.updated_at);
    (void)es_buf_puts(&q, " IS NOT NULL");
    int nparams = 0;
    if (key && *key) {
        /* keyset in the columns' own types, so an index on (updated_at, key) serves it */
        (void)es_buf_puts(&q, " AND (t.");
        put_ident(&q, x->conn, o.updated_at);
        (void)es_buf_puts(&q, ", t.");
        put_ident(&q, x->conn, o.key);
        (void)es_buf_puts(&q, ") > ($1, $2)");
        nparams = 2;
    } else if (key) {
        /* "ts|": every row of that instant and later (an overlap step-back) */
        (void)es_buf_puts(&q, " AND t.");
        put_ident(&q, x->conn, o.updated_at);
        (void)es_buf_puts(&q, " >= $1");
        nparams = 1;
    }
    (void)es_buf_puts(&q, " ORDER BY t.");
    put_ident(&q, x->conn, o.updated_at);
    (void)es_buf_puts(&q, ", t.");
    put_ident(&q, x->conn, o.key);
    (void)es_buf_printf(&q, " LIMIT %zu", limit);
    const char *params[2] = {ts, key};
    PGresult *r = PQexecParams(x->conn, q.data, nparams, NULL, params, NULL, NULL, 0);
    es_buf_release(&q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        int rc = pg_fail(x->conn, r, object, err);
        PQclear(r);
        return rc;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        es_batch_add(out, PQgetvalue(r, i, 1), PQgetvalue(r, i, 0), PQgetvalue(r, i, 2)[0] == 't',
                     row_json(r, i, 3));
    }
    if (n > 0 && (size_t)n == limit) {
        /* more to come: continue right after the last row */
        out->watermark = es_xasprintf("%s|%s", PQgetvalue(r, n - 1, 0), PQgetvalue(r, n - 1, 1));
    } else if (x->overlap_ms > 0 && n > 0) {
        /* caught up: step back by the overlap so a late commit inside it is read next time */
        char last[64];
        es_strlcpy(last, PQgetvalue(r, n - 1, 0), sizeof last);
        PQclear(r);
        char secs[32];
        snprintf(secs, sizeof secs, "%.3f", (double)x->overlap_ms / 1000.0);
        const char *p2[2] = {last, secs};
        r = PQexecParams(x->conn,
                         "SELECT to_char($1::timestamp - make_interval(secs => $2::float8),"
                         " 'YYYY-MM-DD\"T\"HH24:MI:SS.US')",
                         2, NULL, p2, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            int rc = pg_fail(x->conn, r, "watermark", err);
            PQclear(r);
            es_batch_release(out);
            return rc;
        }
        /* an empty key: every row of that instant is read again */
        out->watermark = es_xasprintf("%s|", PQgetvalue(r, 0, 0));
    } else if (n > 0) {
        out->watermark = es_xasprintf("%s|%s", PQgetvalue(r, n - 1, 0), PQgetvalue(r, n - 1, 1));
    } else {
        out->watermark = watermark ? es_xstrdup(watermark) : NULL;
    }
    PQclear(r);
    return ES_OK;
}

static int pg_read_page(struct es_conn *c, const char *object, const char *page, size_t limit,
                        struct es_batch *out, struct es_err *err)
{
    struct pg_ctx *x = c->ctx;
    es_batch_init(out);
    int crc = ensure_conn(x, err);
    if (crc != ES_OK) {
        return crc;
    }
    struct pg_object o = object_of(x, object);
    if (!limit) {
        limit = 1000;
    }
    struct es_buf q;
    es_buf_init(&q, 0);
    (void)es_buf_puts(&q, "SELECT t.");
    put_ident(&q, x->conn, o.key);
    (void)es_buf_puts(&q, "::text, ");
    put_deleted(&q, x->conn, o.deleted);
    (void)es_buf_puts(&q, ", t.* FROM ");
    put_table(&q, x, &o);
    (void)es_buf_puts(&q, " t");
    if (page) {
        (void)es_buf_puts(&q, " WHERE t.");
        put_ident(&q, x->conn, o.key);
        (void)es_buf_puts(&q, " > $1");
    }
    (void)es_buf_puts(&q, " ORDER BY t.");
    put_ident(&q, x->conn, o.key);
    (void)es_buf_printf(&q, " LIMIT %zu", limit + 1);
    const char *params[1] = {page};
    PGresult *r = PQexecParams(x->conn, q.data, page ? 1 : 0, NULL, params, NULL, NULL, 0);
    es_buf_release(&q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        int rc = pg_fail(x->conn, r, object, err);
        PQclear(r);
        return rc;
    }
    int n = PQntuples(r);
    int take = (size_t)n > limit ? (int)limit : n;
    for (int i = 0; i < take; i++) {
        es_batch_add(out, PQgetvalue(r, i, 0), NULL, PQgetvalue(r, i, 1)[0] == 't',
                     row_json(r, i, 2));
    }
    if ((size_t)n > limit) {
        out->next_page = es_xstrdup(PQgetvalue(r, take - 1, 0));
    }
    PQclear(r);
    return ES_OK;
}

static int pg_get(struct es_conn *c, const char *object, const char *id, json_t **out,
                  struct es_err *err)
{
    struct pg_ctx *x = c->ctx;
    int crc = ensure_conn(x, err);
    if (crc != ES_OK) {
        return crc;
    }
    struct pg_object o = object_of(x, object);
    struct es_buf q;
    es_buf_init(&q, 0);
    (void)es_buf_puts(&q, "SELECT t.* FROM ");
    put_table(&q, x, &o);
    (void)es_buf_puts(&q, " t WHERE t.");
    put_ident(&q, x->conn, o.key);
    (void)es_buf_puts(&q, " = $1");
    const char *params[1] = {id};
    PGresult *r = PQexecParams(x->conn, q.data, 1, NULL, params, NULL, NULL, 0);
    es_buf_release(&q);
    int rc = ES_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = pg_fail(x->conn, r, object, err);
    } else if (PQntuples(r) == 0) {
        rc = es_err_set(err, ES_ENOTFOUND, "postgres: %s '%s' not found", object, id);
    } else {
        *out = row_json(r, 0, 0);
    }
    PQclear(r);
    return rc;
}

static int pg_describe(struct es_conn *c, const char *object, json_t **out, struct es_err *err)
{
    struct pg_ctx *x = c->ctx;
    int crc = ensure_conn(x, err);
    if (crc != ES_OK) {
        return crc;
    }
    PGresult *r;
    if (!object) {
        const char *p[1] = {x->schema};
        r = PQexecParams(x->conn,
                         "SELECT table_name FROM information_schema.tables WHERE table_schema = $1"
                         " ORDER BY table_name",
                         1, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            int rc = pg_fail(x->conn, r, "describe", err);
            PQclear(r);
            return rc;
        }
        json_t *list = json_array();
        for (int i = 0; i < PQntuples(r); i++) {
            json_array_append_new(list, json_string(PQgetvalue(r, i, 0)));
        }
        PQclear(r);
        *out = json_pack("{s:o}", "objects", list);
        return ES_OK;
    }
    struct pg_object o = object_of(x, object);
    const char *p[2] = {x->schema, o.table};
    r = PQexecParams(x->conn,
                     "SELECT column_name, data_type, character_maximum_length, is_nullable,"
                     " column_default IS NOT NULL OR is_identity = 'YES', is_updatable"
                     " FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2"
                     " ORDER BY ordinal_position",
                     2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        int rc = pg_fail(x->conn, r, "describe", err);
        PQclear(r);
        return rc;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return es_err_set(err, ES_ENOTFOUND, "postgres: no table %s.%s", x->schema, o.table);
    }
    json_t *fields = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        int nullable = strcmp(PQgetvalue(r, i, 3), "YES") == 0;
        int has_default = PQgetvalue(r, i, 4)[0] == 't';
        json_t *f = json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b}", "name", PQgetvalue(r, i, 0),
                              "type", PQgetvalue(r, i, 1), "required", !nullable && !has_default,
                              "nillable", nullable, "createable", 1, "updateable",
                              strcmp(PQgetvalue(r, i, 5), "YES") == 0, "external_id",
                              strcmp(PQgetvalue(r, i, 0), o.key) == 0);
        if (!PQgetisnull(r, i, 2)) {
            json_object_set_new(f, "length", json_integer(strtoll(PQgetvalue(r, i, 2), NULL, 10)));
        }
        json_array_append_new(fields, f);
    }
    PQclear(r);
    *out = json_pack("{s:s, s:o}", "name", object, "fields", fields);
    return ES_OK;
}

/* A JSON value as a text parameter (NULL for JSON null). OUT: es_free(). */
static char *param_text(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return NULL;
    case JSON_STRING:
        return es_xstrndup(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return es_xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return es_xasprintf("%.17g", json_real_value(v));
    case JSON_TRUE:
        return es_xstrdup("true");
    case JSON_FALSE:
        return es_xstrdup("false");
    default: {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        char *copy = es_xstrdup(s ? s : "null");
        free(s); /* checksrc: ok (jansson allocates with malloc) */
        return copy;
    }
    }
}

static PGresult *exec_simple(PGconn *conn, const char *sql)
{
    return PQexec(conn, sql);
}

/* Runs one record's statement inside a savepoint; fills res. */
static void write_one(struct pg_ctx *x, const struct pg_object *o, enum es_write_op op,
                      const char *keycol, const char *mark, const struct es_write *w,
                      struct es_write_result *res)
{
    struct es_buf q;
    es_buf_init(&q, 0);
    size_t cap = json_object_size(w->data) + 2, np = 0;
    char **params = es_xcalloc(cap, sizeof *params);
    const char *key_value = w->target_id ? w->target_id : w->match;
    json_t *keyv = w->data ? json_object_get(w->data, keycol) : NULL;
    const char *k;
    json_t *v;

    if (op == ES_WRITE_DELETE || op == ES_WRITE_UPDATE) {
        if (!key_value && keyv) {
            params[np++] = param_text(keyv);
        } else {
            params[np++] = key_value ? es_xstrdup(key_value) : NULL;
        }
        if (!params[0]) {
            es_err_set(&res->err, ES_EVALIDATION, "postgres: no value for key column '%s'", keycol);
            res->code = ES_EVALIDATION;
            goto done;
        }
    }
    if (op == ES_WRITE_DELETE && mark) {
        /* soft delete: mark the row and move its change time, so pollers see it */
        (void)es_buf_puts(&q, "UPDATE ");
        put_table(&q, x, o);
        (void)es_buf_puts(&q, " SET ");
        put_ident(&q, x->conn, o->deleted);
        (void)es_buf_printf(&q, " = %s, ", mark);
        put_ident(&q, x->conn, o->updated_at);
        (void)es_buf_puts(&q, " = now() WHERE ");
        put_ident(&q, x->conn, keycol);
        (void)es_buf_puts(&q, " = $1 RETURNING ");
        put_ident(&q, x->conn, keycol);
        (void)es_buf_puts(&q, "::text, false");
    } else if (op == ES_WRITE_DELETE) {
        (void)es_buf_puts(&q, "DELETE FROM ");
        put_table(&q, x, o);
        (void)es_buf_puts(&q, " WHERE ");
        put_ident(&q, x->conn, keycol);
        (void)es_buf_puts(&q, " = $1 RETURNING ");
        put_ident(&q, x->conn, keycol);
        (void)es_buf_puts(&q, "::text, false");
    } else if (op == ES_WRITE_UPDATE) {
        (void)es_buf_puts(&q, "UPDATE ");
        put_table(&q, x, o);
        (void)es_buf_puts(&q, " SET ");
        int first = 1;
        json_object_foreach(w->data, k, v)
        {
            if (strcmp(k, keycol) == 0) {
                continue;
            }
            if (!first) {
                (void)es_buf_puts(&q, ", ");
            }
            first = 0;
            put_ident(&q, x->conn, k);
            params[np] = param_text(v);
            (void)es_buf_printf(&q, " = $%zu", ++np);
        }
        if (first) {
            es_err_set(&res->err, ES_EVALIDATION, "postgres: nothing to update");
            res->code = ES_EVALIDATION;
            goto done;
        }
        (void)es_buf_puts(&q, " WHERE ");
        put_ident(&q, x->conn, keycol);
        (void)es_buf_puts(&q, " = $1 RETURNING ");
        put_ident(&q, x->conn, keycol);
        (void)es_buf_puts(&q, "::text, false");
    } else {
        (void)es_buf_puts(&q, "INSERT INTO ");
        put_table(&q, x, o);
        (void)es_buf_puts(&q, " (");
        struct es_buf vals;
        es_buf_init(&vals, 0);
        int first = 1;
        json_object_foreach(w->data, k, v)
        {
            if (!first) {
                (void)es_buf_puts(&q, ", ");
                (void)es_buf_puts(&vals, ", ");
            }
            first = 0;
            put_ident(&q, x->conn, k);
            params[np] = param_text(v);
            (void)es_buf_printf(&vals, "$%zu", ++np);
        }
        if (!keyv && key_value) {
            if (!first) {
                (void)es_buf_puts(&q, ", ");
                (void)es_buf_puts(&vals, ", ");
            }
            put_ident(&q, x->conn, keycol);
            params[np] = es_xstrdup(key_value);
            (void)es_buf_printf(&vals, "$%zu", ++np);
        }
        (void)es_buf_puts(&q, ") VALUES (");
        (void)es_buf_puts(&q, vals.data ? vals.data : "");
        es_buf_release(&vals);
        (void)es_buf_puts(&q, ")");
        if (op == ES_WRITE_UPSERT) {
            (void)es_buf_puts(&q, " ON CONFLICT (");
            put_ident(&q, x->conn, keycol);
            (void)es_buf_puts(&q, ") DO UPDATE SET ");
            first = 1;
            json_object_foreach(w->data, k, v)
            {
                if (!first) {
                    (void)es_buf_puts(&q, ", ");
                }
                first = 0;
                put_ident(&q, x->conn, k);
                (void)es_buf_puts(&q, " = EXCLUDED.");
                put_ident(&q, x->conn, k);
            }
            if (first) { /* only the key: touch nothing, still return the row */
                put_ident(&q, x->conn, keycol);
                (void)es_buf_puts(&q, " = EXCLUDED.");
                put_ident(&q, x->conn, keycol);
            }
        }
        (void)es_buf_puts(&q, " RETURNING ");
        put_ident(&q, x->conn, o->key);
        (void)es_buf_puts(&q, "::text, xmax = 0");
    }

    PGresult *r = exec_simple(x->conn, "SAVEPOINT es_rec");
    PQclear(r);
    r = PQexecParams(x->conn, q.data, (int)np, NULL, (const char *const *)params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        res->code = pg_fail(x->conn, r, o->table, &res->err);
        PQclear(r);
        r = exec_simple(x->conn, "ROLLBACK TO SAVEPOINT es_rec");
    } else if (PQntuples(r) == 0) {
        res->code = es_err_set(&res->err, ES_ENOTFOUND, "postgres: %s '%s' not found", o->table,
                               params[0] ? params[0] : "");
    } else {
        res->code = ES_OK;
        res->target_id = es_xstrdup(PQgetvalue(r, 0, 0));
        res->created = PQgetvalue(r, 0, 1)[0] == 't';
    }
    PQclear(r);
    r = exec_simple(x->conn, "RELEASE SAVEPOINT es_rec");
    PQclear(r);
done:
    for (size_t i = 0; i < np; i++) {
        es_free(params[i]);
    }
    es_free(params);
    es_buf_release(&q);
}

static int pg_write_batch(struct es_conn *c, const char *object, enum es_write_op op,
                          const char *external_id, const struct es_write *in, size_t n,
                          struct es_write_result *results, struct es_err *err)
{
    struct pg_ctx *x = c->ctx;
    int rc = ensure_conn(x, err);
    struct pg_object o = object_of(x, object);
    const char *keycol = external_id ? external_id : o.key;
    PGresult *r = NULL;
    const char *mark = NULL;
    if (rc == ES_OK && op == ES_WRITE_DELETE && o.deleted) {
        mark = delete_mark(x, &o, err);
        if (!mark) {
            rc = err && err->code ? err->code : ES_ECONFIG;
        }
    }
    if (rc == ES_OK) {
        r = exec_simple(x->conn, "BEGIN");
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = pg_fail(x->conn, r, "begin", err);
        }
        PQclear(r);
    }
    for (size_t i = 0; rc == ES_OK && i < n; i++) {
        if (!in[i].data && op != ES_WRITE_DELETE) {
            results[i].code = es_err_set(&results[i].err, ES_EVALIDATION, "postgres: no data");
            continue;
        }
        write_one(x, &o, op, keycol, mark, &in[i], &results[i]);
        if (PQstatus(x->conn) != CONNECTION_OK) {
            rc = pg_fail(x->conn, NULL, "write", err);
        }
    }
    if (rc == ES_OK) {
        r = exec_simple(x->conn, "COMMIT");
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = pg_fail(x->conn, r, "commit", err);
        }
        PQclear(r);
    } else if (PQstatus(x->conn) == CONNECTION_OK) {
        r = exec_simple(x->conn, "ROLLBACK");
        PQclear(r);
    }
    if (rc != ES_OK) {
        /* nothing of this batch is committed: every record carries the batch failure */
        for (size_t i = 0; i < n; i++) {
            es_free(results[i].target_id);
            results[i].target_id = NULL;
            results[i].created = 0;
            results[i].code = rc;
            if (err) {
                results[i].err = *err;
            }
        }
    }
    return rc;
}

static int pg_ping(struct es_conn *c, struct es_err *err)
{
    struct pg_ctx *x = c->ctx;
    int crc = ensure_conn(x, err);
    if (crc != ES_OK) {
        return crc;
    }
    PGresult *r = exec_simple(x->conn, "SELECT 1");
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? ES_OK : pg_fail(x->conn, r, "ping", err);
    PQclear(r);
    return rc;
}

static const struct es_connector_ops pg_ops = {
    .init = pg_init,
    .fini = pg_fini,
    .ping = pg_ping,
    .describe = pg_describe,
    .read_changes = pg_read_changes,
    .read_page = pg_read_page,
    .get = pg_get,
    .write_batch = pg_write_batch,
};

const struct es_connector es_connector_postgres = {
    .abi = ES_CONNECTOR_ABI,
    .name = "postgres",
    .flags = ES_CONN_SOURCE | ES_CONN_SINK,
    .ctx_size = sizeof(struct pg_ctx),
    .doc = "a PostgreSQL table per object (libpq): changes by updated_at, upserts by key",
    .ops = &pg_ops,
};
