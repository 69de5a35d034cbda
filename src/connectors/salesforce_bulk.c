/* SPDX-License-Identifier: MIT */
/*
 * Salesforce Bulk API 2.0 ingest for large batches (write_batch above bulk_threshold):
 * create the job, upload one CSV, close it, wait for JobComplete, then read the successful
 * and failed results and match them back to the input records, one result per record.
 * Also the RFC 4180 CSV helpers the job needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/http.h"
#include "connectors/salesforce.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

/* ---- CSV ---------------------------------------------------------------------------- */

int es_sf_csv_field(struct es_buf *b, const char *s, size_t n)
{
    int quote = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r') {
            quote = 1;
            break;
        }
    }
    if (!quote) {
        return es_buf_append(b, s, n);
    }
    int rc = es_buf_putc(b, '"');
    for (size_t i = 0; i < n && rc == ES_OK; i++) {
        rc = s[i] == '"' ? es_buf_append(b, "\"\"", 2) : es_buf_putc(b, s[i]);
    }
    return rc == ES_OK ? es_buf_putc(b, '"') : rc;
}

void es_sf_csv_free(char **fields, int n)
{
    for (int i = 0; fields && i < n; i++) {
        es_free(fields[i]);
    }
    es_free(fields);
}

int es_sf_csv_record(const char **pp, const char *end, char ***fields)
{
    const char *p = *pp;
    *fields = NULL;
    if (p >= end) {
        return 0;
    }
    size_t cap = 0;
    int n = 0;
    char **f = NULL;
    struct es_buf cur;
    es_buf_init(&cur, 0);
    for (;;) {
        es_buf_reset(&cur);
        if (p < end && *p == '"') {
            p++;
            for (;;) {
                if (p >= end) {
                    es_buf_release(&cur);
                    es_sf_csv_free(f, n);
                    return -1; /* unterminated quote */
                }
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        (void)es_buf_putc(&cur, '"');
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                (void)es_buf_putc(&cur, *p++);
            }
            if (p < end && *p != ',' && *p != '\n' && *p != '\r') {
                es_buf_release(&cur);
                es_sf_csv_free(f, n);
                return -1;
            }
        } else {
            while (p < end && *p != ',' && *p != '\n' && *p != '\r') {
                (void)es_buf_putc(&cur, *p++);
            }
        }
        ES_GROW(f, cap, (size_t)n + 1);
        f[n++] = es_xstrndup(cur.data ? cur.data : "", cur.len);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '\r') {
            p++;
        }
        if (p < end && *p == '\n') {
            p++;
        }
        break;
    }
    es_buf_release(&cur);
    *pp = p;
    *fields = f;
    return n;
}

/* ---- the job ------------------------------------------------------------------------ */

static void value_text(json_t *v, struct es_buf *b)
{
    if (!v || json_is_null(v)) {
        (void)es_buf_puts(b, "#N/A"); /* Bulk's way to set a field to null */
    } else if (json_is_string(v)) {
        (void)es_buf_puts(b, json_string_value(v));
    } else if (json_is_true(v)) {
        (void)es_buf_puts(b, "true");
    } else if (json_is_false(v)) {
        (void)es_buf_puts(b, "false");
    } else if (json_is_integer(v)) {
        (void)es_buf_printf(b, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        (void)es_buf_printf(b, "%.15g", json_real_value(v));
    }
}

struct bulk_job {
    char **cols;
    size_t ncols, cap;
    json_t *rowkey; /* row key -> array of input indexes waiting for a result */
};

static size_t col_index(const struct bulk_job *j, const char *name)
{
    for (size_t i = 0; i < j->ncols; i++) {
        if (strcmp(j->cols[i], name) == 0) {
            return i;
        }
    }
    return (size_t)-1;
}

static void add_col(struct bulk_job *j, const char *name)
{
    if (col_index(j, name) == (size_t)-1) {
        ES_GROW(j->cols, j->cap, j->ncols + 1);
        j->cols[j->ncols++] = es_xstrdup(name);
    }
}

/* Text of one input record's column as it goes into the CSV (unescaped). */
static void cell(const struct es_write *w, const char *col, const char *key_col,
                 enum es_write_op op, struct es_buf *b)
{
    es_buf_reset(b);
    if ((op == ES_WRITE_UPDATE || op == ES_WRITE_DELETE) && strcmp(col, "Id") == 0) {
        (void)es_buf_puts(b, w->target_id ? w->target_id : "");
        return;
    }
    if (key_col && strcmp(col, key_col) == 0 && w->match) {
        (void)es_buf_puts(b, w->match);
        return;
    }
    json_t *v = json_object_get(w->data, col);
    if (v || op != ES_WRITE_DELETE) {
        if (!v) {
            return; /* absent: leave the field unchanged */
        }
        value_text(v, b);
    }
}

static void record_key(const struct bulk_job *job, char **fields, int nf, const int *map,
                       struct es_buf *key)
{
    es_buf_reset(key);
    for (size_t c = 0; c < job->ncols; c++) {
        int k = map[c];
        const char *v = (k >= 0 && k < nf) ? fields[k] : "";
        (void)es_buf_puts(key, v);
        (void)es_buf_putc(key, '\x1f');
    }
}

static int job_url(struct es_sf_ctx *ctx, char *out, size_t cap, const char *id, const char *tail)
{
    return snprintf(out, cap, "/services/data/v%s/jobs/ingest%s%s%s", ctx->ver, id ? "/" : "",
                    id ? id : "", tail ? tail : "") < (int)cap
               ? ES_OK
               : ES_EINVAL;
}

/* GETs a results CSV and fills the matching results. */
static int read_results(struct es_sf_ctx *ctx, const char *id, const char *which, int ok,
                        struct bulk_job *job, const char *object, struct es_write_result *res,
                        struct es_err *err)
{
    char url[256];
    (void)job_url(ctx, url, sizeof url, id, which);
    static const char *const hdrs[] = {"Accept: text/csv", NULL};
    struct es_http_req_opts rq = {.method = "GET", .url = url, .headers = hdrs};
    struct es_http_resp resp;
    es_http_resp_init(&resp, ctx->http);
    int rc = es_http_send(ctx->http, &rq, &resp, err);
    if (rc == ES_OK) {
        rc = es_http_check(ctx->http, &resp, 0, "GET bulk results", err);
    }
    const char *p = resp.body.data ? resp.body.data : "";
    const char *end = p + resp.body.len;
    char **hdr = NULL;
    int nh = rc == ES_OK ? es_sf_csv_record(&p, end, &hdr) : 0;
    if (rc == ES_OK && nh < 0) {
        rc = es_err_set(err, ES_EPROTOCOL, "bulk %s: malformed CSV header", which);
    }
    int *map = es_xcalloc(job->ncols ? job->ncols : 1, sizeof *map);
    int c_id = -1, c_created = -1, c_error = -1;
    for (size_t c = 0; c < job->ncols; c++) {
        map[c] = -1;
    }
    for (int k = 0; k < nh; k++) {
        if (strcmp(hdr[k], "sf__Id") == 0) {
            c_id = k;
        } else if (strcmp(hdr[k], "sf__Created") == 0) {
            c_created = k;
        } else if (strcmp(hdr[k], "sf__Error") == 0) {
            c_error = k;
        } else {
            size_t ci = col_index(job, hdr[k]);
            if (ci != (size_t)-1) {
                map[ci] = k;
            }
        }
    }
    struct es_buf key;
    es_buf_init(&key, 0);
    while (rc == ES_OK && p < end) {
        char **f = NULL;
        int nf = es_sf_csv_record(&p, end, &f);
        if (nf < 0) {
            rc = es_err_set(err, ES_EPROTOCOL, "bulk %s: malformed CSV row", which);
            break;
        }
        if (nf == 0 || (nf == 1 && !f[0][0])) {
            es_sf_csv_free(f, nf);
            continue;
        }
        record_key(job, f, nf, map, &key);
        json_t *q = json_object_get(job->rowkey, key.data ? key.data : "");
        if (json_array_size(q) > 0) {
            size_t i = (size_t)json_integer_value(json_array_get(q, 0));
            json_array_remove(q, 0);
            struct es_write_result *r = &res[i];
            es_err_clear(&r->err);
            if (ok) {
                r->code = ES_OK;
                r->target_id = (c_id >= 0 && c_id < nf && f[c_id][0]) ? es_xstrdup(f[c_id]) : NULL;
                r->created = c_created >= 0 && c_created < nf && strcmp(f[c_created], "true") == 0;
            } else {
                const char *e = (c_error >= 0 && c_error < nf) ? f[c_error] : "";
                char code[64];
                size_t cl = strcspn(e, ":");
                es_strlcpy(code, e, cl + 1 < sizeof code ? cl + 1 : sizeof code);
                r->code = es_sf_classify(code);
                es_err_set(&r->err, r->code, "salesforce bulk write of %s refused: %s", object,
                           code);
                es_err_remote(&r->err, 200, code, e[cl] == ':' ? e + cl + 1 : e);
            }
        }
        es_sf_csv_free(f, nf);
    }
    es_buf_release(&key);
    es_free(map);
    es_sf_csv_free(hdr, nh > 0 ? nh : 0);
    es_http_resp_release(&resp);
    return rc;
}

int es__sf_bulk_write(struct es_conn *c, const char *object, enum es_write_op op,
                      const char *external_id, const struct es_write *in, size_t n,
                      struct es_write_result *res, struct es_err *err)
{
    struct es_sf_ctx *ctx = c->ctx;
    const char *operation = op == ES_WRITE_CREATE   ? "insert"
                            : op == ES_WRITE_UPDATE ? "update"
                            : op == ES_WRITE_DELETE ? "delete"
                                                    : "upsert";
    const char *key_col = NULL;
    if (op == ES_WRITE_UPSERT) {
        key_col = external_id ? external_id : "Id";
    }
    struct bulk_job job = {0};
    job.rowkey = json_object();
    if (op == ES_WRITE_UPDATE || op == ES_WRITE_DELETE) {
        add_col(&job, "Id");
    }
    if (key_col) {
        add_col(&job, key_col);
    }
    for (size_t i = 0; op != ES_WRITE_DELETE && i < n; i++) {
        const char *k;
        json_t *v;
        json_object_foreach(in[i].data, k, v)
        {
            if (strcmp(k, "attributes") != 0 && !json_is_object(v) && !json_is_array(v) &&
                (op == ES_WRITE_UPDATE || strcmp(k, "Id") != 0)) {
                add_col(&job, k);
            }
        }
    }
    /* The CSV and the key of every row, to match results back. */
    struct es_buf csv, val, key;
    es_buf_init(&csv, 0);
    es_buf_init(&val, 0);
    es_buf_init(&key, 0);
    for (size_t ci = 0; ci < job.ncols; ci++) {
        if (ci) {
            (void)es_buf_putc(&csv, ',');
        }
        (void)es_sf_csv_field(&csv, job.cols[ci], strlen(job.cols[ci]));
    }
    (void)es_buf_putc(&csv, '\n');
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        if (!json_is_object(in[i].data) && op != ES_WRITE_DELETE) {
            res[i].code = es_err_set(&res[i].err, ES_EPOISON, "record to write is not an object");
            continue;
        }
        es_buf_reset(&key);
        for (size_t ci = 0; ci < job.ncols; ci++) {
            cell(&in[i], job.cols[ci], key_col, op, &val);
            if (ci) {
                (void)es_buf_putc(&csv, ',');
            }
            (void)es_sf_csv_field(&csv, val.data ? val.data : "", val.len);
            (void)es_buf_append(&key, val.data ? val.data : "", val.len);
            (void)es_buf_putc(&key, '\x1f');
        }
        (void)es_buf_putc(&csv, '\n');
        json_t *q = json_object_get(job.rowkey, key.data);
        if (!q) {
            q = json_array();
            json_object_set_new(job.rowkey, key.data, q);
        }
        json_array_append_new(q, json_integer((json_int_t)i));
        res[i].code = ES_EREMOTE; /* until a result says otherwise */
        es_err_set(&res[i].err, ES_EREMOTE, "bulk job gave no result for this record");
        rows++;
    }
    char url[256];
    json_t *j = NULL;
    char jobid[64] = "";
    struct es_err jerr;
    es_err_clear(&jerr);
    int rc = ES_OK;
    if (rows == 0) {
        goto done;
    }
    (void)job_url(ctx, url, sizeof url, NULL, NULL);
    json_t *spec = json_pack("{s:s, s:s, s:s, s:s}", "object", object, "operation", operation,
                             "contentType", "CSV", "lineEnding", "LF");
    if (key_col) {
        json_object_set_new(spec, "externalIdFieldName", json_string(key_col));
    }
    rc = es__sf_call(c, "POST", url, spec, NULL, &j, NULL, &jerr);
    json_decref(spec);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (rc == ES_OK && (!id || strlen(id) >= sizeof jobid || strchr(id, '/'))) {
        rc = es_err_set(&jerr, ES_EPROTOCOL, "bulk job answer has no usable id");
    }
    if (rc == ES_OK) {
        es_strlcpy(jobid, id, sizeof jobid);
    }
    json_decref(j);
    j = NULL;
    if (rc == ES_OK) {
        (void)job_url(ctx, url, sizeof url, jobid, "/batches");
        static const char *const hdrs[] = {"Content-Type: text/csv", NULL};
        struct es_http_req_opts rq = {
            .method = "PUT", .url = url, .headers = hdrs, .body = csv.data, .body_len = csv.len};
        struct es_http_resp resp;
        es_http_resp_init(&resp, ctx->http);
        rc = es_http_send(ctx->http, &rq, &resp, &jerr);
        if (rc == ES_OK) {
            rc = es_http_check(ctx->http, &resp, 0, "PUT bulk job data", &jerr);
        }
        es_http_resp_release(&resp);
    }
    if (rc == ES_OK) {
        (void)job_url(ctx, url, sizeof url, jobid, NULL);
        json_t *st = json_pack("{s:s}", "state", "UploadComplete");
        rc = es__sf_call(c, "PATCH", url, st, NULL, NULL, NULL, &jerr);
        json_decref(st);
    }
    /* Wait for the job: the one handshake this call needs to complete. */
    int64_t deadline = es_clock_mono_ms() + ctx->bulk_timeout_ms;
    const char *state = NULL;
    while (rc == ES_OK) {
        json_decref(j);
        j = NULL;
        (void)job_url(ctx, url, sizeof url, jobid, NULL);
        rc = es__sf_call(c, "GET", url, NULL, NULL, &j, NULL, &jerr);
        if (rc != ES_OK) {
            break;
        }
        state = json_string_value(json_object_get(j, "state"));
        if (!state) {
            rc = es_err_set(&jerr, ES_EPROTOCOL, "bulk job status has no state");
            break;
        }
        if (strcmp(state, "JobComplete") == 0 || strcmp(state, "Failed") == 0 ||
            strcmp(state, "Aborted") == 0) {
            break;
        }
        if (es_clock_mono_ms() >= deadline) {
            rc = es_err_set(&jerr, ES_ETIMEOUT, "bulk job %s still %s after bulk_timeout", jobid,
                            state);
            break;
        }
        struct timespec ts = {(time_t)(ctx->bulk_poll_ms / 1000),
                              (long)(ctx->bulk_poll_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc == ES_OK && strcmp(state, "JobComplete") != 0) {
        const char *msg = json_string_value(json_object_get(j, "errorMessage"));
        rc = es_err_set(&jerr, ES_EREMOTE, "bulk job %s ended %s", jobid, state);
        es_err_remote(&jerr, 200, state, msg);
    }
    if (rc == ES_OK) {
        rc = read_results(ctx, jobid, "/successfulResults/", 1, &job, object, res, &jerr);
    }
    if (rc == ES_OK) {
        rc = read_results(ctx, jobid, "/failedResults/", 0, &job, object, res, &jerr);
    }
done:
    json_decref(j);
    if (rc != ES_OK) {
        for (size_t i = 0; i < n; i++) {
            if (res[i].code != ES_OK && res[i].code != ES_EPOISON) {
                es_err_clear(&res[i].err);
                res[i].err = jerr;
                res[i].code = jerr.code;
            }
        }
        es_err_set(err, jerr.code, "%s", jerr.msg);
        if (err) {
            es_err_remote(err, jerr.http_status, jerr.remote_code, jerr.remote_msg);
            err->retry_after = jerr.retry_after;
        }
    }
    for (size_t i = 0; i < job.ncols; i++) {
        es_free(job.cols[i]);
    }
    es_free(job.cols);
    json_decref(job.rowkey);
    es_buf_release(&csv);
    es_buf_release(&val);
    es_buf_release(&key);
    return rc;
}
