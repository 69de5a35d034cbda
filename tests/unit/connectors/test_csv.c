/* SPDX-License-Identifier: MIT */
/*
 * The csv connector on real files in a temporary directory: RFC 4180 edge cases (quotes,
 * doubled quotes, delimiters and line breaks inside quoted fields, CRLF and LF, a UTF-8 byte
 * order mark, no final line break), malformed files reported with FILE:LINE, paging across
 * files, writing rows that read back identically, appends that keep the header, a bad record
 * failing alone, other delimiters, and option errors with FILE:LINE:COL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "connectors/connector.h"
#include "core/buf.h"
#include "core/mem.h"
#include "core/node.h"

static char g_dir[64];

static void put_file(const char *name, const char *bytes, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static char *slurp(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = es_xcalloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

struct fixture {
    struct es_doc *doc;
    struct es_system_cfg cfg;
    struct es_conn *conn;
};

static int open_csv(struct fixture *f, const char *options, struct es_err *err)
{
    memset(f, 0, sizeof *f);
    char *yaml = es_xasprintf("directory: %s\n%s", g_dir, options);
    int line = 0, col = 0;
    assert_int_equal(es_doc_parse("csv.yaml", yaml, strlen(yaml), &f->doc, &line, &col, err),
                     ES_OK);
    es_free(yaml);
    f->cfg.name = "files";
    f->cfg.connector = "csv";
    f->cfg.options = f->doc->root;
    return es_conn_open(&f->cfg, &f->conn, err);
}

static void close_csv(struct fixture *f)
{
    es_conn_close(f->conn);
    es_doc_free(f->doc);
}

static const char *field(const struct es_batch *b, size_t i, const char *name)
{
    return json_string_value(json_object_get(b->items[i].data, name));
}

static void test_rfc4180_edge_cases(void **state)
{
    (void)state;
    static const char data[] = "\xEF\xBB\xBF"
                               "id,name,note\r\n"
                               "1,\"Smith, John\",\"He said \"\"hi\"\"\"\r\n"
                               "2,M\xC3\xBCller,\"line one\r\nline two\nline three\"\n"
                               "3,,\"\"\r\n"
                               "4,\" padded \",last row without a line break";
    put_file("people.csv", data, sizeof data - 1);
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(open_csv(&f, "objects: {people: {file: people.csv, key: id}}\n", &err), ES_OK);
    struct es_batch b;
    assert_int_equal(es_conn_read_page(f.conn, "people", NULL, 100, &b, &err), ES_OK);
    assert_int_equal(b.count, 4);
    assert_null(b.next_page);
    assert_string_equal(b.items[0].key, "1"); /* the BOM is not part of the first column */
    assert_string_equal(field(&b, 0, "name"), "Smith, John");
    assert_string_equal(field(&b, 0, "note"), "He said \"hi\"");
    assert_string_equal(field(&b, 1, "name"), "M\xC3\xBCller");
    assert_string_equal(field(&b, 1, "note"), "line one\r\nline two\nline three");
    assert_string_equal(field(&b, 2, "name"), "");
    assert_string_equal(field(&b, 2, "note"), "");
    assert_string_equal(field(&b, 3, "name"), " padded ");
    assert_string_equal(field(&b, 3, "note"), "last row without a line break");
    es_batch_release(&b);
    json_t *one = NULL;
    assert_int_equal(es_conn_get(f.conn, "people", "2", &one, &err), ES_OK);
    assert_string_equal(json_string_value(json_object_get(one, "name")), "M\xC3\xBCller");
    json_decref(one);
    struct es_err nf = {0};
    assert_int_equal(es_conn_get(f.conn, "people", "9", &one, &nf), ES_ENOTFOUND);
    json_t *d = NULL;
    assert_int_equal(es_conn_describe(f.conn, "people", &d, &err), ES_OK);
    assert_int_equal(json_array_size(json_object_get(d, "fields")), 3);
    assert_true(json_is_true(
        json_object_get(json_array_get(json_object_get(d, "fields"), 0), "external_id")));
    json_decref(d);
    close_csv(&f);
}

/* Reads object and expects failure code with text in the message. */
static void expect_bad(const char *file, const char *bytes, enum es_code code, const char *text)
{
    put_file(file, bytes, strlen(bytes));
    struct fixture f;
    struct es_err err = {0};
    char *opts = es_xasprintf("objects: {bad: {file: %s}}\n", file);
    assert_int_equal(open_csv(&f, opts, &err), ES_OK);
    es_free(opts);
    struct es_batch b;
    assert_int_equal(es_conn_read_page(f.conn, "bad", NULL, 100, &b, &err), code);
    assert_int_equal(b.count, 0);
    if (!strstr(err.msg, text)) {
        fail_msg("'%s' lacks '%s'", err.msg, text);
    }
    close_csv(&f);
}

static void test_malformed_files(void **state)
{
    (void)state;
    expect_bad("q.csv", "a,b\n1,\"open\n2,3\n", ES_EPOISON,
               "q.csv:2: a quoted field is not closed");
    expect_bad("t.csv", "a,b\n1,\"x\"y\n", ES_EPOISON, "t.csv:2: text after the closing quote");
    expect_bad("u.csv", "a,b\n1,x\"y\n", ES_EPOISON, "u.csv:2: a quote inside an unquoted");
    /* the line number counts the line breaks inside quoted fields */
    expect_bad("n.csv", "a,b\n1,\"two\nlines\"\n2,x,extra\n", ES_EPOISON,
               "n.csv:4: 3 fields where the header has 2");
    expect_bad("e.csv", "a,b\n1,ok\n2,\xC3\x28\n", ES_EPOISON, "e.csv:3: field 2 is not UTF-8");
    expect_bad("h.csv", "a,,c\n1,2,3\n", ES_EPOISON, "h.csv:1: column 2 of the header has no name");
}

static void test_paging_across_files(void **state)
{
    (void)state;
    struct es_buf b1, b2;
    es_buf_init(&b1, 0);
    es_buf_init(&b2, 0);
    (void)es_buf_puts(&b1, "sku,qty\n");
    (void)es_buf_puts(&b2, "sku,qty\n");
    for (int i = 0; i < 17; i++) {
        (void)es_buf_printf(&b1, "A%02d,\"%d\nunits\"\n", i, i);
    }
    for (int i = 0; i < 8; i++) {
        (void)es_buf_printf(&b2, "B%02d,%d\r\n", i, i);
    }
    put_file("stock-20260101.csv", b1.data, b1.len);
    put_file("stock-20260102.csv", b2.data, b2.len);
    es_buf_release(&b1);
    es_buf_release(&b2);
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(
        open_csv(&f, "objects: {stock: {file: \"stock-{date}.csv\", key: sku}}\n", &err), ES_OK);
    char *page = NULL;
    int pages = 0, total = 0;
    char last[8] = "";
    do {
        struct es_batch b;
        assert_int_equal(es_conn_read_page(f.conn, "stock", page, 10, &b, &err), ES_OK);
        pages++;
        for (size_t i = 0; i < b.count; i++) {
            /* every row once, in file then row order */
            assert_true(strcmp(b.items[i].key, last) > 0);
            es_strlcpy(last, b.items[i].key, sizeof last);
            total++;
        }
        es_free(page);
        page = b.next_page ? es_xstrdup(b.next_page) : NULL;
        es_batch_release(&b);
    } while (page && pages < 10);
    assert_int_equal(total, 25);
    assert_int_equal(pages, 3);
    assert_string_equal(last, "B07");
    close_csv(&f);
}

static void test_write_and_read_back(void **state)
{
    (void)state;
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(open_csv(&f, "objects: {out: {file: out.csv, key: id}}\n", &err), ES_OK);
    struct es_write w[3] = {
        {.key = "1",
         .data = json_pack("{s:s, s:s, s:s}", "id", "1", "name", "Smith, \"JJ\"", "note",
                           "two\nlines")},
        {.key = "2", .data = json_pack("{s:s, s:n, s:i}", "id", "2", "name", "note", 42)},
        {.key = "3", .data = json_pack("{s:s, s:b, s:s}", "id", "3", "name", 1, "note", " sp ")},
    };
    struct es_write_result r[3];
    memset(r, 0, sizeof r);
    assert_int_equal(es_conn_write_batch(f.conn, "out", ES_WRITE_CREATE, NULL, w, 3, r, &err),
                     ES_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].code, ES_OK);
        assert_string_equal(r[i].target_id, w[i].key);
    }
    es_write_results_release(r, 3);
    char *text = slurp("out.csv");
    assert_string_equal(text, "id,name,note\r\n"
                              "1,\"Smith, \"\"JJ\"\"\",\"two\nlines\"\r\n"
                              "2,,42\r\n"
                              "3,true,\" sp \"\r\n");
    es_free(text);
    /* a second batch appends without a second header; an unknown column fails alone */
    struct es_write w2[2] = {
        {.key = "4", .data = json_pack("{s:s, s:s}", "id", "4", "colour", "red")},
        {.key = "5", .data = json_pack("{s:s, s:s}", "id", "5", "name", "Five")},
    };
    memset(r, 0, sizeof r);
    assert_int_equal(es_conn_write_batch(f.conn, "out", ES_WRITE_UPSERT, NULL, w2, 2, r, &err),
                     ES_OK);
    assert_int_equal(r[0].code, ES_EVALIDATION);
    assert_non_null(strstr(r[0].err.msg, "'colour' is not a column"));
    assert_string_equal(r[0].err.system, "files");
    assert_int_equal(r[1].code, ES_OK);
    es_write_results_release(r, 2);
    struct es_batch b;
    assert_int_equal(es_conn_read_page(f.conn, "out", NULL, 100, &b, &err), ES_OK);
    assert_int_equal(b.count, 4);
    assert_string_equal(field(&b, 0, "name"), "Smith, \"JJ\"");
    assert_string_equal(field(&b, 0, "note"), "two\nlines");
    assert_string_equal(field(&b, 1, "note"), "42");
    assert_string_equal(field(&b, 2, "note"), " sp ");
    assert_string_equal(field(&b, 3, "name"), "Five");
    assert_string_equal(field(&b, 3, "note"), "");
    es_batch_release(&b);
    /* updates and deletes do not exist for files */
    memset(r, 0, sizeof r);
    struct es_err e2 = {0};
    assert_int_equal(es_conn_write_batch(f.conn, "out", ES_WRITE_DELETE, NULL, w2, 1, r, &e2),
                     ES_EINVAL);
    assert_int_equal(r[0].code, ES_EINVAL);
    for (int i = 0; i < 3; i++) {
        json_decref(w[i].data);
    }
    for (int i = 0; i < 2; i++) {
        json_decref(w2[i].data);
    }
    close_csv(&f);
}

static void test_append_to_file_without_final_break(void **state)
{
    (void)state;
    put_file("tail.csv", "a;b\r\nx;1", 8);
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(open_csv(&f, "delimiter: \";\"\nobjects: {tail: {file: tail.csv}}\n", &err),
                     ES_OK);
    struct es_write w = {.key = "k", .data = json_pack("{s:s, s:s}", "a", "y;z", "b", "2")};
    struct es_write_result r = {0};
    assert_int_equal(es_conn_write_batch(f.conn, "tail", ES_WRITE_CREATE, NULL, &w, 1, &r, &err),
                     ES_OK);
    assert_int_equal(r.code, ES_OK);
    assert_string_equal(r.target_id, "tail.csv:3"); /* no key column: file:line */
    es_write_results_release(&r, 1);
    json_decref(w.data);
    char *text = slurp("tail.csv");
    assert_string_equal(text, "a;b\r\nx;1\r\n\"y;z\";2\r\n");
    es_free(text);
    struct es_batch b;
    assert_int_equal(es_conn_read_page(f.conn, "tail", NULL, 100, &b, &err), ES_OK);
    assert_int_equal(b.count, 2);
    assert_string_equal(b.items[1].key, "tail.csv:3");
    assert_string_equal(field(&b, 1, "a"), "y;z");
    es_batch_release(&b);
    close_csv(&f);
}

static void test_bad_options(void **state)
{
    (void)state;
    struct fixture f;
    struct es_err err = {0};
    assert_int_equal(open_csv(&f, "delimiter: \"ab\"\n", &err), ES_ECONFIG);
    assert_non_null(strstr(err.msg, "csv.yaml:2:12: delimiter must be one character"));
    close_csv(&f);
    struct es_err e2 = {0};
    assert_int_equal(open_csv(&f, "objects:\n  x: {fiel: a.csv}\n", &e2), ES_ECONFIG);
    assert_non_null(strstr(e2.msg, "csv.yaml:3:7: unknown key 'fiel'"));
    assert_non_null(strstr(e2.msg, "did you mean 'file'"));
    close_csv(&f);
}

static int setup(void **state)
{
    (void)state;
    es_strlcpy(g_dir, "/tmp/es-csv-XXXXXX", sizeof g_dir);
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4180_edge_cases),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_paging_across_files),
        cmocka_unit_test(test_write_and_read_back),
        cmocka_unit_test(test_append_to_file_without_final_break),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
