/* SPDX-License-Identifier: MIT */
/*
 * The `csv` connector: CSV files as a system, for batch flows (RFC 4180).
 *
 * One object is a set of files: a glob pattern in a directory ("orders-*.csv"), read in
 * name order. The first row is the header; fields are separated by the delimiter and may be
 * quoted ("..." with "" for a quote), and a quoted field may hold delimiters and line breaks.
 * Lines end with CRLF or LF. A UTF-8 byte order mark at the start is skipped; bytes that are
 * not UTF-8 are an error. Malformed input (an unterminated quote, text after a closing quote,
 * a row with more or fewer fields than the header) fails with FILE:LINE, nothing is guessed.
 *
 * read_page walks the files in pages; the page token is "<byte offset>@<file name>", so a
 * page never re-reads a row. write_batch appends rows to the object's file (the pattern's
 * {date} becomes YYYYMMDD), writing the header when the file is new and keeping the column
 * order of an existing header; the rows of one batch are written with one write and fsync.
 *
 * Options (systems.<name>.options):
 *   directory: /srv/exchange    base directory (default: the system's url, else ".")
 *   delimiter: ","              one character (";" and "\t" are common)
 *   objects:
 *     <object>: {file: "customers*.csv", key: id, columns: [id, name, ...]}
 *       file     glob pattern for reading, file name for writing (default <object>.csv)
 *       key      column whose value is the record's key (default: file:row)
 *       columns  header of new files (default: the fields of the first record written)
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "connectors/connector.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/diag.h"
#include "core/mem.h"

#define CSV_MAX_FIELD (16u << 20) /* one field larger than this is an error */

struct csv_object {
    const char *name;
    const char *file;
    const char *key;
    const struct es_node *columns;
};

struct csv_ctx {
    const char *dir;
    char delim;
    size_t nobjects;
    struct csv_object *objects;
};

static const char *const top_keys[] = {"directory", "delimiter", "objects", NULL};
static const char *const object_keys[] = {"file", "key", "columns", NULL};

static int opt_str(const struct es_node *map, const char *key, const char **out, struct es_err *err)
{
    const struct es_node *n = es_node_get(map, key);
    if (!n || n->is_null) {
        return ES_OK;
    }
    if (n->kind != ES_NODE_SCALAR || !n->len) {
        return es_err_set(err, ES_ECONFIG, "%s:%d:%d: '%s' must be a non-empty string", n->file,
                          n->line, n->col, key);
    }
    *out = n->str;
    return ES_OK;
}

static int csv_init(struct es_conn *c, struct es_err *err)
{
    struct csv_ctx *x = c->ctx;
    const struct es_node *o = c->cfg->options;
    x->dir = c->cfg->url ? c->cfg->url : ".";
    if (!strncmp(x->dir, "file://", 7)) {
        x->dir += 7;
    }
    x->delim = ',';
    int rc = es_cfg_check_keys(o, top_keys, "csv options", err);
    if (rc != ES_OK || !o || o->is_null) {
        return rc;
    }
    if ((rc = opt_str(o, "directory", &x->dir, err)) != ES_OK) {
        return rc;
    }
    const struct es_node *d = es_node_get(o, "delimiter");
    if (d && !d->is_null) {
        if (d->kind == ES_NODE_SCALAR && d->len == 1 && d->str[0] != '"' && d->str[0] != '\n' &&
            d->str[0] != '\r') {
            x->delim = d->str[0];
        } else if (d->kind == ES_NODE_SCALAR && !strcmp(d->str, "\\t")) {
            x->delim = '\t';
        } else {
            return es_err_set(err, ES_ECONFIG,
                              "%s:%d:%d: delimiter must be one character other than a quote or a "
                              "line break",
                              d->file, d->line, d->col);
        }
    }
    const struct es_node *objs = es_node_get(o, "objects");
    if (objs && !objs->is_null) {
        if (objs->kind != ES_NODE_MAP) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: objects must be a mapping", objs->file,
                              objs->line, objs->col);
        }
        x->objects = es_xcalloc(objs->count + 1, sizeof *x->objects);
        for (size_t i = 0; i < objs->count; i++) {
            const struct es_node *ob = objs->pairs[i].value;
            struct csv_object *co = &x->objects[x->nobjects++];
            co->name = objs->pairs[i].key->str;
            if ((rc = es_cfg_check_keys(ob, object_keys, "a csv object", err)) != ES_OK ||
                (rc = opt_str(ob, "file", &co->file, err)) != ES_OK ||
                (rc = opt_str(ob, "key", &co->key, err)) != ES_OK) {
                return rc;
            }
            co->columns = es_node_get(ob, "columns");
            if (co->columns && !co->columns->is_null && co->columns->kind != ES_NODE_SEQ) {
                return es_err_set(err, ES_ECONFIG, "%s:%d:%d: columns must be a list",
                                  co->columns->file, co->columns->line, co->columns->col);
            }
        }
    }
    return ES_OK;
}

static void csv_fini(struct es_conn *c)
{
    struct csv_ctx *x = c->ctx;
    es_free(x->objects);
}

static struct csv_object object_of(const struct csv_ctx *x, const char *object)
{
    for (size_t i = 0; i < x->nobjects; i++) {
        if (!strcmp(x->objects[i].name, object)) {
            return x->objects[i];
        }
    }
    struct csv_object o = {object, NULL, NULL, NULL};
    return o;
}

/* ---- reading ------------------------------------------------------------------------- */

struct reader {
    FILE *f;
    const char *path;
    char delim;
    long line;      /* line of the next character (1-based) */
    int fields_cap; /* allocated slots in fields */
    int nfields;    /* fields of the last row */
    struct es_buf *fields;
    struct es_buf tmp;
};

/* Checks that b holds UTF-8 (RFC 3629). Returns the offset of the first bad byte or -1. */
static long bad_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n || (len == 2 && c < 0xC2) || (len == 4 && c > 0xF4)) {
            return (long)i;
        }
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return (long)i;
            }
        }
        if ((len == 3 && c == 0xE0 && s[i + 1] < 0xA0) ||
            (len == 3 && c == 0xED && s[i + 1] >= 0xA0) ||
            (len == 4 && c == 0xF0 && s[i + 1] < 0x90) ||
            (len == 4 && c == 0xF4 && s[i + 1] >= 0x90)) {
            return (long)i;
        }
        i += len;
    }
    return -1;
}

static struct es_buf *next_field(struct reader *r)
{
    if (r->nfields == r->fields_cap) {
        int ncap = r->fields_cap ? r->fields_cap * 2 : 16;
        r->fields = es_xrealloc(r->fields, (size_t)ncap * sizeof *r->fields);
        for (int i = r->fields_cap; i < ncap; i++) {
            es_buf_init(&r->fields[i], CSV_MAX_FIELD);
        }
        r->fields_cap = ncap;
    }
    struct es_buf *b = &r->fields[r->nfields++];
    es_buf_reset(b);
    (void)es_buf_reserve(b, 1);
    b->data[0] = '\0';
    return b;
}

/* Reads one row into r->fields. Returns 1 for a row, 0 at end of file, or an error code
 * (negated: -ES_EPOISON...) with err filled. */
static int read_row(struct reader *r, struct es_err *err)
{
    r->nfields = 0;
    int c = getc(r->f);
    if (c == EOF) {
        return 0;
    }
    long row_line = r->line;
    struct es_buf *b = next_field(r);
    int quoted = 0, after_quote = 0;
    for (;; c = getc(r->f)) {
        if (quoted) {
            if (c == EOF) {
                es_err_set(err, ES_EPOISON, "%s:%ld: a quoted field is not closed", r->path,
                           row_line);
                return -ES_EPOISON;
            }
            if (c == '"') {
                int n = getc(r->f);
                if (n == '"') {
                    (void)es_buf_putc(b, '"');
                    continue;
                }
                ungetc(n, r->f);
                quoted = 0;
                after_quote = 1;
                continue;
            }
            if (c == '\n') {
                r->line++;
            }
            if (es_buf_putc(b, (char)c) != ES_OK) {
                goto too_big;
            }
            continue;
        }
        if (c == r->delim) {
            b = next_field(r);
            after_quote = 0;
            continue;
        }
        if (c == '\r') {
            int n = getc(r->f);
            if (n != '\n') {
                ungetc(n, r->f);
            }
            c = '\n';
        }
        if (c == '\n' || c == EOF) {
            if (c == '\n') {
                r->line++;
            }
            break;
        }
        if (after_quote) {
            es_err_set(err, ES_EPOISON, "%s:%ld: text after the closing quote of field %d", r->path,
                       r->line, r->nfields);
            return -ES_EPOISON;
        }
        if (c == '"' && b->len == 0) {
            quoted = 1;
            continue;
        }
        if (c == '"') {
            es_err_set(err, ES_EPOISON, "%s:%ld: a quote inside an unquoted field %d", r->path,
                       r->line, r->nfields);
            return -ES_EPOISON;
        }
        if (es_buf_putc(b, (char)c) != ES_OK) {
            goto too_big;
        }
    }
    for (int i = 0; i < r->nfields; i++) {
        long at = bad_utf8((const unsigned char *)r->fields[i].data, r->fields[i].len);
        if (at >= 0) {
            es_err_set(err, ES_EPOISON, "%s:%ld: field %d is not UTF-8 (byte %ld)", r->path,
                       row_line, i + 1, at + 1);
            return -ES_EPOISON;
        }
    }
    return 1;
too_big:
    es_err_set(err, ES_EPOISON, "%s:%ld: a field is larger than %u bytes", r->path, row_line,
               CSV_MAX_FIELD);
    return -ES_EPOISON;
}

static void reader_release(struct reader *r)
{
    if (r->f) {
        fclose(r->f);
    }
    for (int i = 0; i < r->fields_cap; i++) {
        es_buf_release(&r->fields[i]);
    }
    es_free(r->fields);
    memset(r, 0, sizeof *r);
}

/* Opens path and reads the header into *header (array of names). */
static int reader_open(struct reader *r, const char *path, char delim, json_t **header,
                       struct es_err *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->delim = delim;
    r->line = 1;
    *header = NULL;
    r->f = fopen(path, "rb");
    if (!r->f) {
        int e = errno;
        int rc = es_err_set(err, e == ENOENT ? ES_ENOTFOUND : ES_EIO, "%s: %s", path, strerror(e));
        if (err) {
            err->sys_errno = e;
        }
        return rc;
    }
    unsigned char bom[3];
    size_t n = fread(bom, 1, 3, r->f);
    if (!(n == 3 && bom[0] == 0xEF && bom[1] == 0xBB && bom[2] == 0xBF)) {
        rewind(r->f);
    }
    int got = read_row(r, err);
    if (got < 0) {
        return -got;
    }
    if (got == 0) {
        *header = json_array(); /* empty file: no header, no rows */
        return ES_OK;
    }
    *header = json_array();
    for (int i = 0; i < r->nfields; i++) {
        if (!r->fields[i].len) {
            json_decref(*header);
            *header = NULL;
            return es_err_set(err, ES_EPOISON, "%s:1: column %d of the header has no name", path,
                              i + 1);
        }
        json_array_append_new(*header, json_stringn(r->fields[i].data, r->fields[i].len));
    }
    return ES_OK;
}

/* The files of an object, sorted. OUT: glob result, globfree(). */
static int object_files(const struct csv_ctx *x, const struct csv_object *o, glob_t *g,
                        struct es_err *err)
{
    char *pat =
        o->file ? (o->file[0] == '/' ? es_xstrdup(o->file) : es_xasprintf("%s/%s", x->dir, o->file))
                : es_xasprintf("%s/%s.csv", x->dir, o->name);
    /* {date} in a file name matches any date when reading */
    char *p;
    while ((p = strstr(pat, "{date}")) != NULL) {
        memmove(p + 1, p + 6, strlen(p + 6) + 1);
        p[0] = '*';
    }
    memset(g, 0, sizeof *g);
    int rc = glob(pat, 0, NULL, g);
    es_free(pat);
    if (rc == GLOB_NOMATCH) {
        return ES_OK;
    }
    if (rc != 0) {
        return es_err_set(err, ES_EIO, "csv: cannot list the files of %s", o->name);
    }
    return ES_OK;
}

static json_t *row_json(const struct reader *r, const json_t *header)
{
    json_t *o = json_object();
    for (int i = 0; i < r->nfields; i++) {
        json_object_set_new(o, json_string_value(json_array_get(header, (size_t)i)),
                            json_stringn(r->fields[i].data, r->fields[i].len));
    }
    return o;
}

/* Reads rows of one file from offset (0 = after the header) into out, at most *room. */
static int read_file(const struct csv_ctx *x, const struct csv_object *o, const char *path,
                     long offset, long line, size_t *room, struct es_batch *out, long *next,
                     long *next_line, struct es_err *err)
{
    struct reader r;
    json_t *header = NULL;
    int rc = reader_open(&r, path, x->delim, &header, err);
    *next = -1;
    if (rc != ES_OK) {
        reader_release(&r);
        return rc;
    }
    if (offset > 0) {
        if (fseek(r.f, offset, SEEK_SET) != 0) {
            rc = es_err_set(err, ES_EIO, "%s: cannot seek to %ld", path, offset);
            json_decref(header);
            reader_release(&r);
            return rc;
        }
        r.line = line;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    while (*room > 0) {
        long row_line = r.line;
        int got = read_row(&r, err);
        if (got < 0) {
            rc = -got;
            break;
        }
        if (got == 0) {
            break;
        }
        if (r.nfields == 1 && r.fields[0].len == 0 && json_array_size(header) != 1) {
            continue; /* an empty line */
        }
        if ((size_t)r.nfields != json_array_size(header)) {
            rc = es_err_set(err, ES_EPOISON, "%s:%ld: %d fields where the header has %zu", path,
                            row_line, r.nfields, json_array_size(header));
            break;
        }
        json_t *rec = row_json(&r, header);
        char keybuf[300];
        const char *key = o->key ? json_string_value(json_object_get(rec, o->key)) : NULL;
        if (o->key && !key) {
            json_decref(rec);
            rc = es_err_set(err, ES_ECONFIG, "%s: no column '%s' (the object's key)", path, o->key);
            break;
        }
        if (!key) {
            snprintf(keybuf, sizeof keybuf, "%s:%ld", base, row_line);
            key = keybuf;
        }
        es_batch_add(out, key, NULL, 0, rec);
        (*room)--;
    }
    if (rc == ES_OK && *room == 0) {
        int ch = getc(r.f);
        if (ch != EOF) {
            ungetc(ch, r.f);
            *next = ftell(r.f);
            *next_line = r.line;
        }
    }
    json_decref(header);
    reader_release(&r);
    return rc;
}

static int csv_read_page(struct es_conn *c, const char *object, const char *page, size_t limit,
                         struct es_batch *out, struct es_err *err)
{
    struct csv_ctx *x = c->ctx;
    es_batch_init(out);
    struct csv_object o = object_of(x, object);
    if (!limit) {
        limit = 1000;
    }
    long offset = 0, line = 1;
    const char *start_file = NULL;
    if (page) {
        char *at = NULL;
        offset = strtol(page, &at, 10);
        if (at && *at == ':') {
            line = strtol(at + 1, &at, 10);
        }
        if (!at || *at != '@' || offset < 0 || line < 1) {
            return es_err_set(err, ES_EINVAL, "csv: bad page token '%s'", page);
        }
        start_file = at + 1;
    }
    glob_t g;
    int rc = object_files(x, &o, &g, err);
    if (rc != ES_OK) {
        return rc;
    }
    size_t room = limit;
    size_t i = 0;
    if (start_file) {
        while (i < g.gl_pathc && strcmp(g.gl_pathv[i], start_file) < 0) {
            i++;
        }
        if (i < g.gl_pathc && strcmp(g.gl_pathv[i], start_file) != 0) {
            offset = 0; /* that file is gone: continue with the next one */
            line = 1;
        }
    }
    for (; rc == ES_OK && i < g.gl_pathc && room > 0; i++) {
        long next = -1, next_line = 1;
        rc = read_file(x, &o, g.gl_pathv[i], offset, line, &room, out, &next, &next_line, err);
        offset = 0;
        line = 1;
        if (rc == ES_OK && next >= 0) {
            out->next_page = es_xasprintf("%ld:%ld@%s", next, next_line, g.gl_pathv[i]);
            break;
        }
        if (rc == ES_OK && room == 0 && i + 1 < g.gl_pathc) {
            out->next_page = es_xasprintf("0:1@%s", g.gl_pathv[i + 1]);
        }
    }
    globfree(&g);
    if (rc != ES_OK) {
        es_batch_release(out);
    }
    return rc;
}

static int csv_get(struct es_conn *c, const char *object, const char *id, json_t **out,
                   struct es_err *err)
{
    char *page = NULL;
    for (;;) {
        struct es_batch b;
        int rc = csv_read_page(c, object, page, 1000, &b, err);
        es_free(page);
        page = NULL;
        if (rc != ES_OK) {
            return rc;
        }
        for (size_t i = 0; i < b.count; i++) {
            if (!strcmp(b.items[i].key, id)) {
                *out = json_incref(b.items[i].data);
                es_batch_release(&b);
                return ES_OK;
            }
        }
        page = b.next_page ? es_xstrdup(b.next_page) : NULL;
        es_batch_release(&b);
        if (!page) {
            return es_err_set(err, ES_ENOTFOUND, "csv: %s '%s' not found", object, id);
        }
    }
}

static int csv_describe(struct es_conn *c, const char *object, json_t **out, struct es_err *err)
{
    struct csv_ctx *x = c->ctx;
    if (!object) {
        json_t *names = json_array();
        for (size_t i = 0; i < x->nobjects; i++) {
            json_array_append_new(names, json_string(x->objects[i].name));
        }
        *out = json_pack("{s:o}", "objects", names);
        return ES_OK;
    }
    struct csv_object o = object_of(x, object);
    glob_t g;
    int rc = object_files(x, &o, &g, err);
    if (rc != ES_OK) {
        return rc;
    }
    json_t *header = NULL;
    if (g.gl_pathc > 0) {
        struct reader r;
        rc = reader_open(&r, g.gl_pathv[0], x->delim, &header, err);
        reader_release(&r);
    } else if (o.columns && !o.columns->is_null) {
        header = json_array();
        for (size_t i = 0; i < o.columns->count; i++) {
            json_array_append_new(header, json_string(o.columns->items[i]->str));
        }
    } else {
        rc = es_err_set(err, ES_ENOTFOUND, "csv: no file for %s and no columns configured", object);
    }
    globfree(&g);
    if (rc != ES_OK) {
        json_decref(header);
        return rc;
    }
    json_t *fields = json_array();
    size_t i;
    json_t *h;
    json_array_foreach(header, i, h)
    {
        const char *name = json_string_value(h);
        json_array_append_new(fields, json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b}", "name", name,
                                                "type", "string", "required", 0, "nillable", 1,
                                                "createable", 1, "updateable", 0, "external_id",
                                                o.key && !strcmp(o.key, name)));
    }
    json_decref(header);
    *out = json_pack("{s:s, s:o}", "name", object, "fields", fields);
    return ES_OK;
}

/* ---- writing ------------------------------------------------------------------------- */

static void put_field(struct es_buf *b, const char *s, size_t n, char delim)
{
    int quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
    for (size_t i = 0; !quote && i < n; i++) {
        quote = s[i] == delim || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    }
    if (!quote) {
        (void)es_buf_append(b, s, n);
        return;
    }
    (void)es_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            (void)es_buf_putc(b, '"');
        }
        (void)es_buf_putc(b, s[i]);
    }
    (void)es_buf_putc(b, '"');
}

/* A JSON value as CSV text (null -> empty). Appends to b; returns 0, or -1 for a value that
 * is not UTF-8. */
static int put_value(struct es_buf *b, const json_t *v, char delim)
{
    char tmp[64];
    switch (json_typeof(v)) {
    case JSON_NULL:
        return 0;
    case JSON_STRING:
        if (bad_utf8((const unsigned char *)json_string_value(v), json_string_length(v)) >= 0) {
            return -1;
        }
        put_field(b, json_string_value(v), json_string_length(v), delim);
        return 0;
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(tmp, sizeof tmp, "%.17g", json_real_value(v));
        break;
    case JSON_TRUE:
        es_strlcpy(tmp, "true", sizeof tmp);
        break;
    case JSON_FALSE:
        es_strlcpy(tmp, "false", sizeof tmp);
        break;
    default: {
        char *s = json_dumps(v, JSON_COMPACT);
        put_field(b, s ? s : "", s ? strlen(s) : 0, delim);
        free(s); /* checksrc: ok (jansson allocates with malloc) */
        return 0;
    }
    }
    put_field(b, tmp, strlen(tmp), delim);
    return 0;
}

static char *write_path(const struct csv_ctx *x, const struct csv_object *o)
{
    char *name = o->file ? es_xstrdup(o->file) : es_xasprintf("%s.csv", o->name);
    char *p = strstr(name, "{date}");
    if (p) {
        char day[16];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(day, sizeof day, "%Y%m%d", &tm);
        *p = '\0';
        char *full = es_xasprintf("%s%s%s", name, day, p + 6);
        es_free(name);
        name = full;
    }
    char *path = name[0] == '/' ? es_xstrdup(name) : es_xasprintf("%s/%s", x->dir, name);
    es_free(name);
    return path;
}

static int csv_write_batch(struct es_conn *c, const char *object, enum es_write_op op,
                           const char *external_id, const struct es_write *in, size_t n,
                           struct es_write_result *res, struct es_err *err)
{
    (void)external_id;
    struct csv_ctx *x = c->ctx;
    struct csv_object o = object_of(x, object);
    if (op == ES_WRITE_UPDATE || op == ES_WRITE_DELETE) {
        int rc = es_err_set(err, ES_EINVAL, "csv: files are only appended to (no %s)",
                            op == ES_WRITE_UPDATE ? "update" : "delete");
        for (size_t i = 0; i < n; i++) {
            res[i].code = rc;
            if (err) {
                res[i].err = *err;
            }
        }
        return rc;
    }
    char *path = write_path(x, &o);
    if (strpbrk(path, "*?[")) {
        int rc = es_err_set(err, ES_ECONFIG,
                            "csv: the file of %s is a pattern (%s): set a file "
                            "name to write to",
                            object, path);
        es_free(path);
        for (size_t i = 0; i < n; i++) {
            res[i].code = rc;
            if (err) {
                res[i].err = *err;
            }
        }
        return rc;
    }
    /* the header: the file's own, else the configured columns, else the first record's keys */
    json_t *header = NULL;
    struct stat st;
    memset(&st, 0, sizeof st);
    int fresh = stat(path, &st) != 0 || st.st_size == 0;
    int rc = ES_OK;
    if (!fresh) {
        struct reader r;
        rc = reader_open(&r, path, x->delim, &header, err);
        reader_release(&r);
    } else if (o.columns && !o.columns->is_null) {
        header = json_array();
        for (size_t i = 0; i < o.columns->count; i++) {
            json_array_append_new(header, json_string(o.columns->items[i]->str));
        }
    } else {
        header = json_array();
        for (size_t i = 0; i < n && !json_array_size(header); i++) {
            const char *k;
            json_t *v;
            json_object_foreach(in[i].data, k, v)
            {
                json_array_append_new(header, json_string(k));
            }
        }
    }
    struct es_buf out;
    es_buf_init(&out, 0);
    if (rc == ES_OK && fresh) {
        for (size_t j = 0; j < json_array_size(header); j++) {
            if (j) {
                (void)es_buf_putc(&out, x->delim);
            }
            const char *h = json_string_value(json_array_get(header, j));
            put_field(&out, h, strlen(h), x->delim);
        }
        (void)es_buf_puts(&out, "\r\n");
    }
    if (rc == ES_OK && !fresh) {
        /* a last row without a line break gets one, else the first new row would join it */
        FILE *f = fopen(path, "rb");
        if (f && fseek(f, -1, SEEK_END) == 0 && getc(f) != '\n') {
            (void)es_buf_puts(&out, "\r\n");
        }
        if (f) {
            fclose(f);
        }
    }
    /* keys without a key column are "file:line": count the existing lines once */
    long line = 2;
    if (rc == ES_OK && !o.key && !fresh) {
        FILE *f = fopen(path, "rb");
        int ch = '\n', last = '\n';
        line = 1;
        while (f && (ch = getc(f)) != EOF) {
            line += ch == '\n';
            last = ch;
        }
        line += last != '\n'; /* the line break added above */
        if (f) {
            fclose(f);
        }
    }
    for (size_t i = 0; rc == ES_OK && i < n; i++) {
        if (!json_is_object(in[i].data)) {
            res[i].code = es_err_set(&res[i].err, ES_EVALIDATION, "csv: no record to write");
            continue;
        }
        const char *k;
        json_t *v;
        json_object_foreach(in[i].data, k, v)
        {
            int known = 0;
            for (size_t j = 0; !known && j < json_array_size(header); j++) {
                known = !strcmp(k, json_string_value(json_array_get(header, j)));
            }
            if (!known) {
                res[i].code = es_err_set(&res[i].err, ES_EVALIDATION,
                                         "csv: field '%s' is not a column of %s", k, path);
                break;
            }
        }
        if (res[i].code != ES_OK) {
            continue;
        }
        size_t mark = out.len;
        for (size_t j = 0; j < json_array_size(header); j++) {
            if (j) {
                (void)es_buf_putc(&out, x->delim);
            }
            json_t *val = json_object_get(in[i].data, json_string_value(json_array_get(header, j)));
            if (val && put_value(&out, val, x->delim) != 0) {
                res[i].code =
                    es_err_set(&res[i].err, ES_EVALIDATION, "csv: field '%s' is not UTF-8",
                               json_string_value(json_array_get(header, j)));
                break;
            }
        }
        if (res[i].code != ES_OK) {
            out.len = mark; /* drop the half-written row */
            if (out.data) {
                out.data[mark] = '\0';
            }
            continue;
        }
        (void)es_buf_puts(&out, "\r\n");
        const char *key = o.key ? json_string_value(json_object_get(in[i].data, o.key)) : NULL;
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        res[i].target_id = key ? es_xstrdup(key) : es_xasprintf("%s:%ld", base, line);
        for (size_t j = mark; j < out.len; j++) {
            line += out.data[j] == '\n';
        }
        res[i].created = 1;
    }
    if (rc == ES_OK && out.len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        size_t done = 0;
        while (fd >= 0 && done < out.len) {
            ssize_t w = write(fd, out.data + done, out.len - done);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                break;
            }
            done += (size_t)w;
        }
        int e = errno;
        if (fd < 0 || done < out.len || fsync(fd) != 0) {
            rc = es_err_set(err, ES_EIO, "csv: cannot write %s: %s", path, strerror(e));
            if (fd >= 0 && done > 0 && ftruncate(fd, st.st_size * !fresh) != 0) {
                es_err_hint(err, "the file may end with a partial row");
            }
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    if (rc != ES_OK) {
        for (size_t i = 0; i < n; i++) {
            es_free(res[i].target_id);
            res[i].target_id = NULL;
            res[i].created = 0;
            res[i].code = rc;
            if (err) {
                res[i].err = *err;
            }
        }
    }
    es_buf_release(&out);
    json_decref(header);
    es_free(path);
    return rc;
}

static const struct es_connector_ops csv_ops = {
    .init = csv_init,
    .fini = csv_fini,
    .describe = csv_describe,
    .read_page = csv_read_page,
    .get = csv_get,
    .write_batch = csv_write_batch,
};

const struct es_connector es_connector_csv = {
    .abi = ES_CONNECTOR_ABI,
    .name = "csv",
    .flags = ES_CONN_SOURCE | ES_CONN_SINK,
    .ctx_size = sizeof(struct csv_ctx),
    .doc = "CSV files (RFC 4180) for batch flows: read in pages, append rows",
    .ops = &csv_ops,
};
