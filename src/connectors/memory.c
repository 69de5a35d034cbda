/* SPDX-License-Identifier: MIT */
/*
 * The `memory` connector: a process-wide in-memory system for tests and dry runs. Records
 * live in one table per object name, shared by every instance in the process, each with a
 * sequence number that serves as modstamp, so read_changes and watermarks behave like a real
 * source. Upserts match on the external-id field when one is given.
 *
 * Options (systems.<name>.options):
 *   fail_every: N   every Nth written record fails with a transient error (fault injection)
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "connectors/memory.h"
#include "core/mem.h"

struct memory_ctx {
    long long fail_every;
    long long writes;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *g_objects; /* {object: {id: {"seq": n, "data": {...}, "deleted": bool}}} */
static long long g_seq;
static long long g_next_id;

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

/* Empties every object (tests call it between cases). */
void es_memory_reset(void)
{
    pthread_mutex_lock(&g_lock);
    json_decref(g_objects);
    g_objects = NULL;
    g_seq = 0;
    g_next_id = 0;
    pthread_mutex_unlock(&g_lock);
}

/* Stores a record as if it had been changed in the system itself. OUT: new reference. */
void es_memory_put(const char *object, const char *id, json_t *data)
{
    pthread_mutex_lock(&g_lock);
    json_t *entry =
        json_pack("{s:I, s:O, s:b}", "seq", (json_int_t)++g_seq, "data", data, "deleted", 0);
    json_object_set_new(object_table(object), id, entry);
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

static int memory_init(struct es_conn *c, struct es_err *err)
{
    struct memory_ctx *ctx = c->ctx;
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
    (void)c;
}

static int memory_ping(struct es_conn *c, struct es_err *err)
{
    (void)c;
    (void)err;
    return ES_OK;
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
    struct pick {
        long long seq;
        const char *id;
        json_t *entry;
    } *picks = es_xcalloc(n ? n : 1, sizeof *picks);
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
    for (size_t i = 1; i < np; i++) { /* insertion sort: test data is small */
        struct pick p = picks[i];
        size_t j = i;
        while (j > 0 && picks[j - 1].seq > p.seq) {
            picks[j] = picks[j - 1];
            j--;
        }
        picks[j] = p;
    }
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

static const char *find_by_field(json_t *t, const char *field, const char *value)
{
    const char *id;
    json_t *entry;
    json_object_foreach(t, id, entry)
    {
        json_t *v = json_object_get(json_object_get(entry, "data"), field);
        if (json_is_string(v) && strcmp(json_string_value(v), value) == 0) {
            return id;
        }
    }
    return NULL;
}

static int memory_write_batch(struct es_conn *c, const char *object, enum es_write_op op,
                              const char *external_id, const struct es_write *in, size_t n,
                              struct es_write_result *results, struct es_err *err)
{
    (void)err;
    struct memory_ctx *ctx = c->ctx;
    pthread_mutex_lock(&g_lock);
    json_t *t = object_table(object);
    for (size_t i = 0; i < n; i++) {
        struct es_write_result *r = &results[i];
        ctx->writes++;
        if (ctx->fail_every && ctx->writes % ctx->fail_every == 0) {
            r->code = es_err_set(&r->err, ES_EREMOTE, "injected transient failure");
            continue;
        }
        const char *id = in[i].target_id;
        if (!id && external_id && in[i].match) {
            id = find_by_field(t, external_id, in[i].match);
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
            json_pack("{s:I, s:O, s:b}", "seq", (json_int_t)++g_seq, "data",
                      in[i].data ? in[i].data : json_null(), "deleted", op == ES_WRITE_DELETE);
        r->target_id = es_xstrdup(id);
        json_object_set_new(t, id, entry);
        r->code = ES_OK;
    }
    pthread_mutex_unlock(&g_lock);
    return ES_OK;
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
