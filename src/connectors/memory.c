/* SPDX-License-Identifier: MIT */
/*
 * The `memory` connector: a process-wide in-memory system for tests and dry runs. Records
 * live in one table per object name, shared by every instance in the process, each with a
 * sequence number that serves as modstamp, so read_changes and watermarks behave like a real
 * source. Upserts match on the external-id field when one is given.
 *
 * Options (systems.<name>.options):
 *   fail_every: N   every Nth written record fails with a transient error (fault injection)
 *   fail_rate: R    each written record fails transiently with probability R (0..1)
 *   fail_code: NAME the code of injected failures (default "remote"; e.g. auth, business)
 *   write_delay_ms: N  every write_batch call takes N ms more (a slow remote system)
 *   file: PATH      make the system survive restarts: PATH (JSON lines) is replayed into the
 *                   tables when the first instance opens, and every write appends one line
 *                   {"o": object, "id": id, "key": source key, "data": ..., "deleted": bool}
 *                   before write_batch returns. A torn last line (killed mid-write) is
 *                   skipped. Tests seed sources by writing such lines and count the target's
 *                   writes from them (crash tests).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "connectors/connector.h"
#include "connectors/memory.h"
#include "core/buf.h"
#include "core/mem.h"

struct memory_ctx {
    long long fail_every;
    long long write_delay_ms;
    long long writes;
    double fail_rate;
    enum es_code fail_code;
    unsigned seed;
    int fd; /* the system's file (O_APPEND), or -1 */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *g_objects; /* {object: {id: {"seq": n, "data": {...}, "deleted": bool}}} */
/* Modstamps: one sequence per object, so an object's versions depend only on its own
 * history (replaying a source file gives the same versions whichever file loads first). */
static json_t *g_seqs; /* {object: last seq} */
static long long g_next_id;
static json_t *g_loaded; /* {path: true}: files already replayed in this process */
static json_t *g_index;  /* {"object\x1ffield": {value: id}}: see field_index() */

static void index_note(const char *object, const char *id, json_t *data);

static json_t *object_table(const char *object)
{
    if (!g_objects) {
        g_objects = json_object();
    }
    json_t *t = json_object_get(g_objects, object);
    if (!t) {
        t = json_object();
        json_object_set_new(g_objects, object, t);
    }
    return t;
}

static json_int_t next_seq(const char *object)
{
    if (!g_seqs) {
        g_seqs = json_object();
    }
    json_int_t v = json_integer_value(json_object_get(g_seqs, object)) + 1;
    json_object_set_new(g_seqs, object, json_integer(v));
    return v;
}

/* Empties every object (tests call it between cases). */
void es_memory_reset(void)
{
    pthread_mutex_lock(&g_lock);
    json_decref(g_objects);
    g_objects = NULL;
    json_decref(g_loaded);
    g_loaded = NULL;
    json_decref(g_index);
    g_index = NULL;
    json_decref(g_seqs);
    g_seqs = NULL;
    g_next_id = 0;
    pthread_mutex_unlock(&g_lock);
}

/* Stores a record as if it had been changed in the system itself. OUT: new reference. */
void es_memory_put(const char *object, const char *id, json_t *data)
{
    pthread_mutex_lock(&g_lock);
    json_t *entry =
        json_pack("{s:I, s:O, s:b}", "seq", next_seq(object), "data", data, "deleted", 0);
    json_object_set_new(object_table(object), id, entry);
    index_note(object, id, data);
    pthread_mutex_unlock(&g_lock);
}

/* A copy of a stored record, or NULL. OUT: caller decrefs. */
json_t *es_memory_get(const char *object, const char *id)
{
    pthread_mutex_lock(&g_lock);
    json_t *entry = json_object_get(object_table(object), id);
    json_t *copy = entry ? json_deep_copy(json_object_get(entry, "data")) : NULL;
    pthread_mutex_unlock(&g_lock);
    return copy;
}

size_t es_memory_count(const char *object)
{
    pthread_mutex_lock(&g_lock);
    size_t n = json_object_size(object_table(object));
    pthread_mutex_unlock(&g_lock);
    return n;
}

/* Replays one JSON line of a system file into the tables (caller holds g_lock). */
static void replay_line(const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    const char *object = json_string_value(json_object_get(j, "o"));
    const char *id = json_string_value(json_object_get(j, "id"));
    if (object && id) {
        json_t *data = json_object_get(j, "data");
        json_t *entry =
            json_pack("{s:I, s:O, s:b}", "seq", next_seq(object), "data", data ? data : json_null(),
                      "deleted", json_is_true(json_object_get(j, "deleted")));
        json_object_set_new(object_table(object), id, entry);
        index_note(object, id, data);
        /* Ids this connector created ("M000042") must not be handed out again. */
        long long n = 0;
        if (sscanf(id, "M%lld", &n) == 1 && n > g_next_id) {
            g_next_id = n;
        }
    }
    json_decref(j);
}

static int load_file(const char *path, struct es_err *err)
{
    if (!g_loaded) {
        g_loaded = json_object();
    }
    if (json_object_get(g_loaded, path)) {
        return ES_OK;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            json_object_set_new(g_loaded, path, json_true());
            return ES_OK;
        }
        return es_err_set(err, ES_EIO, "memory: cannot read %s: %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        replay_line(line, (size_t)len);
    }
    free(line); /* checksrc: ok (getline allocates with malloc) */
    fclose(f);
    json_object_set_new(g_loaded, path, json_true());
    return ES_OK;
}

/* A process killed in the middle of an append leaves a torn last line. Ends it, so the next
 * append starts a line of its own instead of being glued to (and lost with) the torn one.
 * The torn line is skipped at replay (not JSON); the engine rewrites that record, because its
 * outcome was never committed. Caller holds g_lock. */
static int end_torn_line(int fd, const char *path, struct es_err *err)
{
    struct stat st;
    char last = '\n';
    if (fstat(fd, &st) != 0) {
        return es_err_set(err, ES_EIO, "memory: cannot stat %s: %s", path, strerror(errno));
    }
    if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1) {
        return es_err_set(err, ES_EIO, "memory: cannot read %s: %s", path, strerror(errno));
    }
    if (last != '\n' && write(fd, "\n", 1) != 1) {
        return es_err_set(err, ES_EIO, "memory: cannot write %s: %s", path, strerror(errno));
    }
    return ES_OK;
}

static int memory_init(struct es_conn *c, struct es_err *err)
{
    struct memory_ctx *ctx = c->ctx;
    ctx->fd = -1;
    ctx->fail_code = ES_EREMOTE;
    const struct es_node *fc = es_node_get(c->cfg->options, "fail_code");
    if (fc && fc->kind == ES_NODE_SCALAR) {
        ctx->fail_code = es_code_from_name(fc->str);
        if (ctx->fail_code == ES_CODE_LAST || ctx->fail_code == ES_OK) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: fail_code: unknown code '%s'", fc->file,
                              fc->line, fc->col, fc->str);
        }
    }
    ctx->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)ctx;
    const struct es_node *fr = es_node_get(c->cfg->options, "fail_rate");
    if (fr && fr->kind == ES_NODE_SCALAR) {
        char *end = NULL;
        ctx->fail_rate = strtod(fr->str, &end);
        if (!end || *end || ctx->fail_rate < 0 || ctx->fail_rate > 1) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: fail_rate must be a number in 0..1",
                              fr->file, fr->line, fr->col);
        }
    }
    const struct es_node *file = es_node_get(c->cfg->options, "file");
    if (file && file->kind == ES_NODE_SCALAR && file->str && *file->str) {
        pthread_mutex_lock(&g_lock);
        int rc = load_file(file->str, err);
        if (rc == ES_OK) {
            ctx->fd = open(file->str, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (ctx->fd < 0) {
                rc = es_err_set(err, ES_EIO, "memory: cannot open %s: %s", file->str,
                                strerror(errno));
            } else {
                rc = end_torn_line(ctx->fd, file->str, err);
            }
        }
        pthread_mutex_unlock(&g_lock);
        if (rc != ES_OK) {
            return rc;
        }
    }
    const struct es_node *wd = es_node_get(c->cfg->options, "write_delay_ms");
    if (wd && wd->kind == ES_NODE_SCALAR) {
        char *end = NULL;
        ctx->write_delay_ms = strtoll(wd->str, &end, 10);
        if (!end || *end || ctx->write_delay_ms < 0) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: write_delay_ms must be a whole number",
                              wd->file, wd->line, wd->col);
        }
    }
    const struct es_node *fe = es_node_get(c->cfg->options, "fail_every");
    if (fe && fe->kind == ES_NODE_SCALAR) {
        char *end = NULL;
        ctx->fail_every = strtoll(fe->str, &end, 10);
        if (!end || *end || ctx->fail_every < 0) {
            return es_err_set(err, ES_ECONFIG, "%s:%d:%d: fail_every must be a whole number",
                              fe->file, fe->line, fe->col);
        }
    }
    return ES_OK;
}

static void memory_fini(struct es_conn *c)
{
    struct memory_ctx *ctx = c->ctx;
    if (ctx && ctx->fd >= 0) {
        close(ctx->fd);
        ctx->fd = -1;
    }
}

static int memory_ping(struct es_conn *c, struct es_err *err)
{
    (void)c;
    (void)err;
    return ES_OK;
}

struct pick {
    long long seq;
    const char *id;
    json_t *entry;
};

static int pick_cmp(const void *a, const void *b)
{
    long long x = ((const struct pick *)a)->seq, y = ((const struct pick *)b)->seq;
    return (x > y) - (x < y);
}

/* Watermark: the last sequence number read, as decimal text. */
static int memory_read_changes(struct es_conn *c, const char *object, const char *watermark,
                               size_t limit, struct es_batch *out, struct es_err *err)
{
    (void)c;
    long long from = watermark ? strtoll(watermark, NULL, 10) : 0;
    if (from < 0) {
        return es_err_set(err, ES_EINVAL, "bad watermark '%s'", watermark);
    }
    pthread_mutex_lock(&g_lock);
    json_t *t = object_table(object);
    /* Collect entries past the watermark in sequence order. */
    size_t n = json_object_size(t);
    struct pick *picks = es_xcalloc(n ? n : 1, sizeof *picks);
    size_t np = 0;
    const char *id;
    json_t *entry;
    json_object_foreach(t, id, entry)
    {
        long long seq = json_integer_value(json_object_get(entry, "seq"));
        if (seq > from) {
            picks[np].seq = seq;
            picks[np].id = id;
            picks[np].entry = entry;
            np++;
        }
    }
    qsort(picks, np, sizeof *picks, pick_cmp);
    long long last = from;
    for (size_t i = 0; i < np && (limit == 0 || out->count < limit); i++) {
        char version[32];
        snprintf(version, sizeof version, "%lld", picks[i].seq);
        es_batch_add(out, picks[i].id, version,
                     json_is_true(json_object_get(picks[i].entry, "deleted")),
                     json_deep_copy(json_object_get(picks[i].entry, "data")));
        last = picks[i].seq;
    }
    pthread_mutex_unlock(&g_lock);
    es_free(picks);
    char wm[32];
    snprintf(wm, sizeof wm, "%lld", last);
    out->watermark = es_xstrdup(wm);
    return ES_OK;
}

static int memory_read_page(struct es_conn *c, const char *object, const char *page, size_t limit,
                            struct es_batch *out, struct es_err *err)
{
    /* A page token is a watermark: paging through everything is reading changes from 0. */
    int rc = memory_read_changes(c, object, page, limit, out, err);
    if (rc == ES_OK) {
        out->next_page = (limit && out->count == limit) ? es_xstrdup(out->watermark) : NULL;
    }
    return rc;
}

static int memory_get(struct es_conn *c, const char *object, const char *id, json_t **out,
                      struct es_err *err)
{
    (void)c;
    *out = es_memory_get(object, id);
    if (!*out) {
        return es_err_set(err, ES_ENOTFOUND, "%s %s not found", object, id);
    }
    return ES_OK;
}

/* The index of object's records by one field: {value: id}, built on first use and kept up
 * to date by writes (caller holds g_lock). Upserts by external id stay O(1) on big tables. */
static json_t *field_index(const char *object, const char *field)
{
    if (!g_index) {
        g_index = json_object();
    }
    char *name = es_xasprintf("%s\x1f%s", object, field);
    json_t *ix = json_object_get(g_index, name);
    if (!ix) {
        ix = json_object();
        const char *id;
        json_t *entry;
        json_object_foreach(object_table(object), id, entry)
        {
            json_t *v = json_object_get(json_object_get(entry, "data"), field);
            if (json_is_string(v)) {
                json_object_set_new(ix, json_string_value(v), json_string(id));
            }
        }
        json_object_set_new(g_index, name, ix);
    }
    es_free(name);
    return ix;
}

/* Keeps every index of object current after record id got data (caller holds g_lock). */
static void index_note(const char *object, const char *id, json_t *data)
{
    size_t olen = strlen(object);
    const char *name;
    json_t *ix;
    json_object_foreach(g_index, name, ix)
    {
        if (strncmp(name, object, olen) == 0 && name[olen] == '\x1f') {
            json_t *v = json_object_get(data, name + olen + 1);
            if (json_is_string(v)) {
                json_object_set_new(ix, json_string_value(v), json_string(id));
            }
        }
    }
}

static const char *find_by_field(const char *object, const char *field, const char *value)
{
    return json_string_value(json_object_get(field_index(object, field), value));
}

static int memory_write_batch(struct es_conn *c, const char *object, enum es_write_op op,
                              const char *external_id, const struct es_write *in, size_t n,
                              struct es_write_result *results, struct es_err *err)
{
    struct memory_ctx *ctx = c->ctx;
    if (ctx->write_delay_ms > 0) {
        struct timespec ts = {(time_t)(ctx->write_delay_ms / 1000),
                              (long)(ctx->write_delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    struct es_buf lines;
    es_buf_init(&lines, 0);
    pthread_mutex_lock(&g_lock);
    json_t *t = object_table(object);
    for (size_t i = 0; i < n; i++) {
        struct es_write_result *r = &results[i];
        ctx->writes++;
        if (ctx->fail_every && ctx->writes % ctx->fail_every == 0) {
            r->code = es_err_set(&r->err, ctx->fail_code, "injected failure");
            continue;
        }
        if (ctx->fail_rate > 0 &&
            (double)rand_r(&ctx->seed) / ((double)RAND_MAX + 1.0) < ctx->fail_rate) {
            r->code = es_err_set(&r->err, ctx->fail_code, "injected failure (fail_rate)");
            continue;
        }
        const char *id = in[i].target_id;
        if (!id && external_id && in[i].match) {
            id = find_by_field(object, external_id, in[i].match);
        }
        char fresh[32];
        if (!id && (op == ES_WRITE_UPDATE || op == ES_WRITE_DELETE)) {
            r->code = es_err_set(&r->err, ES_ENOTFOUND, "%s with key %s does not exist", object,
                                 in[i].key ? in[i].key : "?");
            continue;
        }
        r->created = !id || !json_object_get(t, id);
        if (!id) {
            snprintf(fresh, sizeof fresh, "M%06lld", ++g_next_id);
            id = fresh;
        }
        json_t *entry =
            json_pack("{s:I, s:O, s:b}", "seq", next_seq(object), "data",
                      in[i].data ? in[i].data : json_null(), "deleted", op == ES_WRITE_DELETE);
        r->target_id = es_xstrdup(id);
        id = r->target_id; /* id may point into the index, which the next lines update */
        json_object_set_new(t, id, entry);
        index_note(object, id, in[i].data);
        r->code = ES_OK;
        if (ctx->fd >= 0) {
            json_t *line = json_pack("{s:s, s:s, s:s?, s:O, s:b}", "o", object, "id", id, "key",
                                     in[i].key, "data", in[i].data ? in[i].data : json_null(),
                                     "deleted", op == ES_WRITE_DELETE);
            char *text = json_dumps(line, JSON_COMPACT);
            es_buf_puts(&lines, text);
            es_buf_putc(&lines, '\n');
            free(text); /* checksrc: ok (jansson allocates with malloc) */
            json_decref(line);
        }
    }
    pthread_mutex_unlock(&g_lock);
    int rc = ES_OK;
    /* One append per batch; the results are only returned once the lines are written. */
    for (size_t off = 0; ctx->fd >= 0 && off < lines.len;) {
        ssize_t w = write(ctx->fd, lines.data + off, lines.len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = es_err_set(err, ES_EIO, "memory: write to file failed: %s", strerror(errno));
            for (size_t i = 0; i < n; i++) {
                es_free(results[i].target_id);
                results[i].target_id = NULL;
                results[i].code = es_err_set(&results[i].err, ES_EIO, "%s", err ? err->msg : "");
            }
            break;
        }
        off += (size_t)w;
    }
    es_buf_release(&lines);
    return rc;
}

static const struct es_connector_ops memory_ops = {
    .init = memory_init,
    .fini = memory_fini,
    .ping = memory_ping,
    .read_changes = memory_read_changes,
    .read_page = memory_read_page,
    .get = memory_get,
    .write_batch = memory_write_batch,
};

const struct es_connector es_connector_memory = {
    .abi = ES_CONNECTOR_ABI,
    .name = "memory",
    .flags = ES_CONN_SOURCE | ES_CONN_SINK,
    .ctx_size = sizeof(struct memory_ctx),
    .doc = "in-process records for tests and dry runs",
    .ops = &memory_ops,
};
