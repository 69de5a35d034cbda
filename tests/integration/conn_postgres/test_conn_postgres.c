/* SPDX-License-Identifier: MIT */
/*
 * The postgres connector against a real PostgreSQL (run.sh starts it and sets
 * ERPSYNC_PG_URL): changes by updated_at when many rows share a timestamp, the overlap
 * window for late commits, upsert idempotency, one failing row in a batch, paging,
 * get/describe, option validation with file:line:col, and soft deletes (deleted_column:
 * a timestamp or a boolean flag read as deleted records; a delete write marks the row).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "connectors/connector.h"
#include "core/mem.h"
#include "core/node.h"

static PGconn *g_db;

static void sql(const char *q)
{
    PGresult *r = PQexec(g_db, q);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail_msg("%s: %s", q, PQerrorMessage(g_db));
    }
    PQclear(r);
}

static long sql_long(const char *q)
{
    PGresult *r = PQexec(g_db, q);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

struct fixture {
    struct es_doc *doc;
    struct es_system_cfg cfg;
    struct es_conn *conn;
};

/* Opens a connector with the options written as YAML. */
static int open_conn(struct fixture *f, const char *options_yaml, struct es_err *err)
{
    memset(f, 0, sizeof *f);
    int line = 0, col = 0;
    assert_int_equal(
        es_doc_parse("pg.yaml", options_yaml, strlen(options_yaml), &f->doc, &line, &col, err),
        ES_OK);
    f->cfg.name = "db";
    f->cfg.connector = "postgres";
    f->cfg.url = getenv("ERPSYNC_PG_URL");
    f->cfg.timeout_ms = 10000;
    f->cfg.connect_timeout_ms = 5000;
    f->cfg.options = f->doc->root;
    return es_conn_open(&f->cfg, &f->conn, err);
}

static void close_conn(struct fixture *f)
{
    es_conn_close(f->conn);
    es_doc_free(f->doc);
}

static const char *opts = "overlap: 0s\n"
                          "objects:\n"
                          "  item: {table: items, key: id, updated_at: changed}\n"
                          "  customer: {table: customers, key: code}\n";

static void test_changes_with_equal_timestamps(void **state)
{
    (void)state;
    sql("DROP TABLE IF EXISTS items");
    sql("CREATE TABLE items (id int PRIMARY KEY, name text, changed timestamptz NOT NULL)");
    /* 7 rows at one instant, 3 at a later one, inserted out of order */
    sql("INSERT INTO items SELECT g, 'n' || g, '2026-01-01 10:00:00+00' FROM "
        "generate_series(3, 9) g");
    sql("INSERT INTO items VALUES (1, 'late', '2026-01-01 11:00:00+00'), "
        "(2, 'late', '2026-01-01 11:00:00+00'), (10, 'late', '2026-01-01 11:00:00+00')");
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(open_conn(&f, opts, &err), ES_OK);
    int seen[11] = {0};
    char *mark = NULL;
    int pages = 0;
    for (;;) {
        struct es_batch b;
        assert_int_equal(es_conn_read_changes(f.conn, "item", mark, 3, &b, &err), ES_OK);
        pages++;
        for (size_t i = 0; i < b.count; i++) {
            int id = (int)strtol(b.items[i].key, NULL, 10);
            assert_true(id >= 1 && id <= 10);
            seen[id]++;
            char want[16];
            snprintf(want, sizeof want, "n%d", id);
            assert_string_equal(json_string_value(json_object_get(b.items[i].data, "name")),
                                id == 1 || id == 2 || id == 10 ? "late" : want);
            assert_non_null(strstr(b.items[i].version, "2026-01-01T1"));
        }
        size_t n = b.count;
        es_free(mark);
        mark = b.watermark ? es_xstrdup(b.watermark) : NULL;
        es_batch_release(&b);
        if (n == 0) {
            break;
        }
        assert_true(pages < 10);
    }
    for (int id = 1; id <= 10; id++) {
        assert_int_equal(seen[id], 1);
    }
    assert_non_null(mark);
    assert_string_equal(mark, "2026-01-01T11:00:00.000000|10"); /* keys in integer order */
    /* an edit moves a row past the watermark: exactly it comes back */
    sql("UPDATE items SET name = 'edited', changed = '2026-01-01 12:00:00+00' WHERE id = 5");
    struct es_batch b;
    assert_int_equal(es_conn_read_changes(f.conn, "item", mark, 100, &b, &err), ES_OK);
    assert_int_equal(b.count, 1);
    assert_string_equal(b.items[0].key, "5");
    assert_string_equal(json_string_value(json_object_get(b.items[0].data, "name")), "edited");
    es_batch_release(&b);
    es_free(mark);
    close_conn(&f);
}

static void test_overlap_reads_late_commit(void **state)
{
    (void)state;
    sql("DROP TABLE IF EXISTS items");
    sql("CREATE TABLE items (id int PRIMARY KEY, name text, changed timestamptz NOT NULL)");
    sql("INSERT INTO items VALUES (1, 'a', '2026-01-01 10:00:00+00'), "
        "(2, 'b', '2026-01-01 10:00:05+00')");
    struct fixture f;
    struct es_err err = {0};
    const char *o = "overlap: 10s\nobjects: {item: {table: items, updated_at: changed}}\n";
    assert_int_equal(open_conn(&f, o, &err), ES_OK);
    struct es_batch b;
    assert_int_equal(es_conn_read_changes(f.conn, "item", NULL, 100, &b, &err), ES_OK);
    assert_int_equal(b.count, 2);
    /* caught up: the watermark steps back by the overlap */
    assert_string_equal(b.watermark, "2026-01-01T09:59:55.000000|");
    char *mark = es_xstrdup(b.watermark);
    es_batch_release(&b);
    /* a transaction that started earlier commits now, stamped before the last row read */
    sql("INSERT INTO items VALUES (3, 'late', '2026-01-01 10:00:02+00')");
    assert_int_equal(es_conn_read_changes(f.conn, "item", mark, 100, &b, &err), ES_OK);
    int late = 0;
    for (size_t i = 0; i < b.count; i++) {
        late += strcmp(b.items[i].key, "3") == 0;
    }
    assert_int_equal(late, 1);
    es_batch_release(&b);
    es_free(mark);
    close_conn(&f);
}

static void test_upsert_idempotent(void **state)
{
    (void)state;
    sql("DROP TABLE IF EXISTS customers");
    sql("CREATE TABLE customers (code text PRIMARY KEY, name text NOT NULL, "
        "credit numeric(12,2), active boolean, updated_at timestamptz NOT NULL DEFAULT now())");
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(open_conn(&f, opts, &err), ES_OK);
    struct es_write in[3] = {0};
    const char *codes[3] = {"C1", "C2", "C3"};
    for (int i = 0; i < 3; i++) {
        in[i].key = codes[i];
        in[i].data = json_pack("{s:s, s:s, s:s, s:b}", "code", codes[i], "name", "Acme", "credit",
                               "1234.56", "active", 1);
    }
    for (int round = 0; round < 2; round++) {
        struct es_write_result res[3] = {0};
        assert_int_equal(
            es_conn_write_batch(f.conn, "customer", ES_WRITE_UPSERT, NULL, in, 3, res, &err),
            ES_OK);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(res[i].code, ES_OK);
            assert_string_equal(res[i].target_id, codes[i]);
            assert_int_equal(res[i].created, round == 0);
        }
        es_write_results_release(res, 3);
    }
    assert_int_equal(sql_long("SELECT count(*) FROM customers"), 3);
    json_t *got = NULL;
    assert_int_equal(es_conn_get(f.conn, "customer", "C2", &got, &err), ES_OK);
    /* numeric comes back as an exact string, boolean as a boolean */
    assert_string_equal(json_string_value(json_object_get(got, "credit")), "1234.56");
    assert_true(json_is_true(json_object_get(got, "active")));
    json_decref(got);
    struct es_err nf = {0};
    assert_int_equal(es_conn_get(f.conn, "customer", "nope", &got, &nf), ES_ENOTFOUND);
    for (int i = 0; i < 3; i++) {
        json_decref(in[i].data);
    }
    close_conn(&f);
}

static void test_failing_row_fails_alone(void **state)
{
    (void)state;
    sql("DROP TABLE IF EXISTS customers");
    sql("CREATE TABLE customers (code text PRIMARY KEY, name text NOT NULL, "
        "credit numeric(12,2), updated_at timestamptz NOT NULL DEFAULT now())");
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(open_conn(&f, opts, &err), ES_OK);
    struct es_write in[4] = {0};
    in[0].key = "a", in[0].data = json_pack("{s:s, s:s}", "code", "A", "name", "ok");
    in[1].key = "b", in[1].data = json_pack("{s:s, s:n}", "code", "B", "name"); /* NOT NULL */
    in[2].key = "c",
    in[2].data = json_pack("{s:s, s:s, s:s}", "code", "C", "name", "x", "credit", "not a number");
    in[3].key = "d", in[3].data = json_pack("{s:s, s:s}", "code", "D", "name", "ok");
    struct es_write_result res[4] = {0};
    assert_int_equal(
        es_conn_write_batch(f.conn, "customer", ES_WRITE_UPSERT, NULL, in, 4, res, &err), ES_OK);
    assert_int_equal(res[0].code, ES_OK);
    assert_int_equal(res[1].code, ES_EVALIDATION);
    assert_string_equal(res[1].err.remote_code, "23502");
    assert_non_null(strstr(res[1].err.msg, "name"));
    assert_string_equal(res[1].err.system, "db");
    assert_int_equal(res[2].code, ES_EVALIDATION);
    assert_string_equal(res[2].err.remote_code, "22P02");
    assert_int_equal(res[3].code, ES_OK);
    es_write_results_release(res, 4);
    assert_int_equal(sql_long("SELECT count(*) FROM customers"), 2);
    assert_int_equal(sql_long("SELECT count(*) FROM customers WHERE code IN ('A', 'D')"), 2);
    /* create of an existing key is a duplicate, update of a missing one not found */
    struct es_write_result r2[1] = {0};
    assert_int_equal(
        es_conn_write_batch(f.conn, "customer", ES_WRITE_CREATE, NULL, in, 1, r2, &err), ES_OK);
    assert_int_equal(r2[0].code, ES_EDUPLICATE);
    es_write_results_release(r2, 1);
    struct es_write up = {.key = "z", .target_id = "Z", .data = in[0].data};
    assert_int_equal(
        es_conn_write_batch(f.conn, "customer", ES_WRITE_UPDATE, NULL, &up, 1, r2, &err), ES_OK);
    assert_int_equal(r2[0].code, ES_ENOTFOUND);
    es_write_results_release(r2, 1);
    struct es_write del = {.key = "d", .target_id = "D"};
    assert_int_equal(
        es_conn_write_batch(f.conn, "customer", ES_WRITE_DELETE, NULL, &del, 1, r2, &err), ES_OK);
    assert_int_equal(r2[0].code, ES_OK);
    es_write_results_release(r2, 1);
    assert_int_equal(sql_long("SELECT count(*) FROM customers"), 1);
    for (int i = 0; i < 4; i++) {
        json_decref(in[i].data);
    }
    close_conn(&f);
}

static void test_paging_and_describe(void **state)
{
    (void)state;
    sql("DROP TABLE IF EXISTS items");
    sql("CREATE TABLE items (id int PRIMARY KEY, name varchar(40) NOT NULL, "
        "changed timestamptz NOT NULL DEFAULT now())");
    sql("INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 25) g");
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(open_conn(&f, opts, &err), ES_OK);
    int seen[26] = {0};
    char *page = NULL;
    int pages = 0;
    do {
        struct es_batch b;
        assert_int_equal(es_conn_read_page(f.conn, "item", page, 10, &b, &err), ES_OK);
        pages++;
        for (size_t i = 0; i < b.count; i++) {
            seen[strtol(b.items[i].key, NULL, 10)]++;
        }
        es_free(page);
        page = b.next_page ? es_xstrdup(b.next_page) : NULL;
        es_batch_release(&b);
    } while (page && pages < 10);
    assert_int_equal(pages, 3);
    for (int i = 1; i <= 25; i++) {
        assert_int_equal(seen[i], 1);
    }
    json_t *d = NULL;
    assert_int_equal(es_conn_describe(f.conn, "item", &d, &err), ES_OK);
    json_t *fields = json_object_get(d, "fields");
    assert_int_equal(json_array_size(fields), 3);
    json_t *name = json_array_get(fields, 1);
    assert_string_equal(json_string_value(json_object_get(name, "name")), "name");
    assert_int_equal(json_integer_value(json_object_get(name, "length")), 40);
    assert_true(json_is_true(json_object_get(name, "required")));
    assert_true(json_is_true(json_object_get(json_array_get(fields, 0), "external_id")));
    json_decref(d);
    assert_int_equal(es_conn_describe(f.conn, NULL, &d, &err), ES_OK);
    assert_true(json_array_size(json_object_get(d, "objects")) >= 1);
    json_decref(d);
    struct es_err e2 = {0};
    assert_int_equal(es_conn_describe(f.conn, "missing_table", &d, &e2), ES_ENOTFOUND);
    close_conn(&f);
}

static void test_bad_options(void **state)
{
    (void)state;
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(
        open_conn(&f, "overlap: 0s\nobjects:\n  item: {table: items, kye: id}\n", &err),
        ES_ECONFIG);
    fprintf(stderr, "%s\n", err.msg);
    assert_non_null(strstr(err.msg, "pg.yaml:3:24: unknown key 'kye'"));
    assert_non_null(strstr(err.msg, "did you mean 'key'"));
    close_conn(&f);
    struct es_err e2 = {0};
    assert_int_equal(open_conn(&f, "overlaps: 1s\n", &e2), ES_ECONFIG);
    assert_non_null(strstr(e2.msg, "pg.yaml:1:1: unknown key 'overlaps'"));
    close_conn(&f);
}

/* Reads every change from mark on; fills deleted[id] (-1 = not seen). */
static void read_soft(struct fixture *f, const char *object, char **mark, int *deleted, int n)
{
    for (int i = 0; i < n; i++) {
        deleted[i] = -1;
    }
    struct es_batch b;
    struct es_err err = {0};
    assert_int_equal(es_conn_read_changes(f->conn, object, *mark, 100, &b, &err), ES_OK);
    for (size_t i = 0; i < b.count; i++) {
        int id = (int)strtol(b.items[i].key, NULL, 10);
        assert_true(id >= 0 && id < n);
        deleted[id] = b.items[i].deleted;
    }
    if (b.watermark) {
        es_free(*mark);
        *mark = es_xstrdup(b.watermark);
    }
    es_batch_release(&b);
}

static void test_soft_deletes(void **state)
{
    (void)state;
    sql("DROP TABLE IF EXISTS sd_items");
    sql("CREATE TABLE sd_items (id int PRIMARY KEY, name text, changed timestamptz NOT NULL "
        "DEFAULT now(), deleted_at timestamptz)");
    sql("DROP TABLE IF EXISTS sd_flags");
    sql("CREATE TABLE sd_flags (id int PRIMARY KEY, changed timestamptz NOT NULL DEFAULT now(), "
        "is_deleted boolean NOT NULL DEFAULT false)");
    sql("INSERT INTO sd_items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    sql("INSERT INTO sd_flags (id) VALUES (1), (2)");
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(
        open_conn(&f,
                  "overlap: 0s\n"
                  "objects:\n"
                  "  item: {table: sd_items, updated_at: changed, deleted_column: deleted_at}\n"
                  "  flag: {table: sd_flags, updated_at: changed, deleted_column: is_deleted}\n"
                  "  nocol: {table: sd_flags, updated_at: changed, deleted_column: gone}\n",
                  &err),
        ES_OK);
    int del[4];
    char *mark = NULL;
    read_soft(&f, "item", &mark, del, 4);
    assert_int_equal(del[1], 0);
    assert_int_equal(del[2], 0);
    assert_int_equal(del[3], 0);

    /* an application marks row 2 deleted; the connector deletes row 3 (a soft delete) */
    sql("UPDATE sd_items SET deleted_at = now(), changed = now() WHERE id = 2");
    struct es_write w = {.key = "3", .target_id = "3"};
    struct es_write_result res;
    memset(&res, 0, sizeof res);
    assert_int_equal(es_conn_write_batch(f.conn, "item", ES_WRITE_DELETE, NULL, &w, 1, &res, &err),
                     ES_OK);
    assert_int_equal(res.code, ES_OK);
    es_write_results_release(&res, 1);
    assert_int_equal(sql_long("SELECT count(*) FROM sd_items WHERE id = 3 AND deleted_at IS NOT "
                              "NULL"),
                     1);
    read_soft(&f, "item", &mark, del, 4);
    assert_int_equal(del[1], -1);
    assert_int_equal(del[2], 1);
    assert_int_equal(del[3], 1);

    /* a hard delete leaves nothing to poll (documented limit) */
    sql("DELETE FROM sd_items WHERE id = 1");
    read_soft(&f, "item", &mark, del, 4);
    assert_int_equal(del[1], -1);
    es_free(mark);
    mark = NULL;

    /* read_page carries the flag too */
    struct es_batch b;
    assert_int_equal(es_conn_read_page(f.conn, "item", NULL, 10, &b, &err), ES_OK);
    assert_int_equal(b.count, 2);
    assert_string_equal(b.items[0].key, "2");
    assert_int_equal(b.items[0].deleted, 1);
    assert_int_equal(b.items[1].deleted, 1);
    es_batch_release(&b);

    /* a boolean flag column */
    read_soft(&f, "flag", &mark, del, 4);
    assert_int_equal(del[1], 0);
    assert_int_equal(del[2], 0);
    struct es_write w2 = {.key = "2", .target_id = "2"};
    memset(&res, 0, sizeof res);
    assert_int_equal(es_conn_write_batch(f.conn, "flag", ES_WRITE_DELETE, NULL, &w2, 1, &res, &err),
                     ES_OK);
    assert_int_equal(res.code, ES_OK);
    es_write_results_release(&res, 1);
    assert_int_equal(sql_long("SELECT count(*) FROM sd_flags WHERE is_deleted"), 1);
    read_soft(&f, "flag", &mark, del, 4);
    assert_int_equal(del[1], -1);
    assert_int_equal(del[2], 1);
    es_free(mark);

    /* a deleted_column that does not exist: a config error for the delete, nothing written */
    memset(&res, 0, sizeof res);
    struct es_err e2 = {0};
    struct es_write w3 = {.key = "1", .target_id = "1"};
    assert_int_equal(es_conn_write_batch(f.conn, "nocol", ES_WRITE_DELETE, NULL, &w3, 1, &res, &e2),
                     ES_ECONFIG);
    assert_non_null(strstr(e2.msg, "'gone'"));
    assert_int_equal(res.code, ES_ECONFIG);
    es_write_results_release(&res, 1);
    assert_int_equal(sql_long("SELECT count(*) FROM sd_flags WHERE id = 1"), 1);
    close_conn(&f);
}

int main(void)
{
    const char *url = getenv("ERPSYNC_PG_URL");
    if (!url) {
        fprintf(stderr, "ERPSYNC_PG_URL is not set: run through run.sh\n");
        return 1;
    }
    g_db = PQconnectdb(url);
    if (PQstatus(g_db) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to %s: %s\n", url, PQerrorMessage(g_db));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changes_with_equal_timestamps),
        cmocka_unit_test(test_overlap_reads_late_commit),
        cmocka_unit_test(test_upsert_idempotent),
        cmocka_unit_test(test_failing_row_fails_alone),
        cmocka_unit_test(test_paging_and_describe),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_soft_deletes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(g_db);
    return rc;
}
