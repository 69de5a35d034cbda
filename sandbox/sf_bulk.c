/* SPDX-License-Identifier: MIT */
/*
 * Salesforce emulator: Bulk API 2.0 ingest jobs. Create a job (Open), PUT one CSV upload
 * to its contentUrl, PATCH state UploadComplete (or Aborted); at the next look at the job
 * (which answers InProgress) the rows are processed through the same record code as REST (so
 * validation is identical) and the job reaches JobComplete with successfulResults / failedResults /
 * unprocessedrecords as CSV (sf__Id, sf__Created / sf__Error + the original columns).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "sf_int.h"

static void bulk_error(struct sb_resp *resp, int status, const char *code, const char *msg)
{
    sb_resp_json(resp, status, json_pack("[{s:s,s:s}]", "errorCode", code, "message", msg));
}

static json_t *job_load(struct sf_ctx *c, const char *id, json_t **data_csv)
{
    sqlite3_stmt *st = NULL;
    json_t *info = NULL;
    sqlite3_prepare_v2(c->db, "SELECT info, data FROM job WHERE id=?1", -1, &st, NULL);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        info = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        if (data_csv) {
            *data_csv = sqlite3_column_type(st, 1) == SQLITE_NULL
                            ? NULL
                            : json_stringn((const char *)sqlite3_column_blob(st, 1),
                                           (size_t)sqlite3_column_bytes(st, 1));
        }
    }
    sqlite3_finalize(st);
    return info;
}

static void job_save(struct sf_ctx *c, const char *id, json_t *info)
{
    char dt[32];
    sf_fmt_dt(sb_now_ms(), dt);
    json_object_set_new(info, "systemModstamp", json_string(dt));
    struct es_buf b;
    es_buf_init(&b, 0);
    sb_json_dump(&b, info);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(c->db,
                       "INSERT INTO job(id,info) VALUES(?1,?2) ON CONFLICT(id) DO UPDATE SET "
                       "info=excluded.info",
                       -1, &st, NULL);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b.data, (int)b.len, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_finalize(st);
    es_buf_release(&b);
}

static void job_set_blob(struct sf_ctx *c, const char *id, const char *col, const char *data,
                         size_t len)
{
    char sql[80];
    snprintf(sql, sizeof sql, "UPDATE job SET %s=?2 WHERE id=?1", col);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, data, (int)len, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

static char delim_of(const char *name)
{
    static const struct {
        const char *n;
        char ch;
    } t[] = {{"COMMA", ','},     {"TAB", '\t'},  {"PIPE", '|'},
             {"SEMICOLON", ';'}, {"CARET", '^'}, {"BACKQUOTE", '`'}};
    for (size_t i = 0; i < ES_ARRAY_LEN(t); i++) {
        if (name && strcmp(name, t[i].n) == 0) {
            return t[i].ch;
        }
    }
    return 0;
}

/* Splits CSV into rows of fields (RFC 4180 quoting, LF or CRLF). */
static json_t *csv_parse(const char *s, size_t n, char d)
{
    json_t *rows = json_array(), *row = json_array();
    struct es_buf f;
    es_buf_init(&f, 0);
    size_t i = n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* a UTF-8 BOM */
    int any = 0;
    while (i < n) {
        char ch = s[i];
        if (ch == '"' && f.len == 0) {
            i++;
            while (i < n) {
                if (s[i] == '"' && i + 1 < n && s[i + 1] == '"') {
                    es_buf_putc(&f, '"');
                    i += 2;
                } else if (s[i] == '"') {
                    i++;
                    break;
                } else {
                    es_buf_putc(&f, s[i++]);
                }
            }
            any = 1;
            continue;
        }
        if (ch == d) {
            json_array_append_new(row, json_stringn(f.data ? f.data : "", f.len));
            es_buf_reset(&f);
            any = 1;
            i++;
            continue;
        }
        if (ch == '\r' || ch == '\n') {
            if (any || f.len) {
                json_array_append_new(row, json_stringn(f.data ? f.data : "", f.len));
                json_array_append_new(rows, row);
                row = json_array();
            }
            es_buf_reset(&f);
            any = 0;
            i += (ch == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        es_buf_putc(&f, ch);
        any = 1;
        i++;
    }
    if (any || f.len) {
        json_array_append_new(row, json_stringn(f.data ? f.data : "", f.len));
        json_array_append_new(rows, row);
    } else {
        json_decref(row);
    }
    es_buf_release(&f);
    return rows;
}

static void csv_field(struct es_buf *b, const char *s)
{
    es_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"') {
            es_buf_putc(b, '"');
        }
        es_buf_putc(b, *s);
    }
    es_buf_putc(b, '"');
}

static void csv_row(struct es_buf *b, const char *a, const char *bcol, json_t *row)
{
    csv_field(b, a);
    es_buf_putc(b, ',');
    csv_field(b, bcol);
    size_t i;
    json_t *v;
    json_array_foreach(row, i, v)
    {
        es_buf_putc(b, ',');
        csv_field(b, json_string_value(v));
    }
    es_buf_putc(b, '\n');
}

static void process(struct sf_ctx *c, const char *id, json_t *info, json_t *data)
{
    const char *op = json_string_value(json_object_get(info, "operation"));
    const char *objn = json_string_value(json_object_get(info, "object"));
    const char *ext = json_string_value(json_object_get(info, "externalIdFieldName"));
    struct sf_object *o = sf_obj(c, objn);
    char d = delim_of(json_string_value(json_object_get(info, "columnDelimiter")));
    json_t *rows =
        data ? csv_parse(json_string_value(data), json_string_length(data), d) : json_array();
    struct es_buf ok, bad;
    es_buf_init(&ok, 0);
    es_buf_init(&bad, 0);
    json_t *header = json_array_get(rows, 0);
    long processed = 0, failed = 0;
    if (header) {
        csv_row(&ok, "sf__Id", "sf__Created", header);
        csv_row(&bad, "sf__Id", "sf__Error", header);
    }
    char origin[80];
    snprintf(origin, sizeof origin, "com/salesforce/api/bulk/%s",
             json_string_value(json_object_get(info, "apiVersion")));
    for (size_t r = 1; r < json_array_size(rows); r++) {
        json_t *row = json_array_get(rows, r);
        json_t *rec = json_object();
        const char *rid = "";
        char ev[600] = "";
        for (size_t k = 0; k < json_array_size(header); k++) {
            const char *h = json_string_value(json_array_get(header, k));
            const char *v = json_string_value(json_array_get(row, k));
            if (!v) {
                continue;
            }
            if (strcasecmp(h, "Id") == 0) {
                rid = v;
                continue;
            }
            if (ext && strcasecmp(h, ext) == 0) {
                es_strlcpy(ev, v, sizeof ev);
                continue;
            }
            if (!*v) {
                continue;
            }
            json_object_set_new(rec, h, strcmp(v, "#N/A") == 0 ? json_null() : json_string(v));
        }
        json_t *errs = json_array();
        char newid[19] = "";
        int created = 0, rc = -1;
        if (json_array_size(row) != json_array_size(header)) {
            sf_err_add(errs, "INVALID_FIELD", "row has a different number of columns", NULL);
        } else if (strcmp(op, "insert") == 0) {
            rc = sf_rec_create(c, o, rec, 0, origin, newid, errs);
            created = rc == 0;
        } else if (strcmp(op, "update") == 0) {
            if (!*rid) {
                sf_err_add(errs, "MISSING_ARGUMENT", "Id not specified in an update call", NULL);
            } else if ((rc = sf_rec_update(c, o, rid, rec, 0, origin, errs)) == 0) {
                sf_id18(rid, newid);
            }
        } else if (strcmp(op, "upsert") == 0) {
            int status = 0;
            json_t *matches = json_array();
            if (!ev[0]) {
                sf_err_add(errs, "MISSING_ARGUMENT", "external id value is missing", ext);
            } else {
                rc = sf_rec_upsert(c, o, ext, ev, rec, 0, origin, newid, &created, &status, errs,
                                   matches);
                if (rc != 0 && status == 300) {
                    sf_err_add(errs, "DUPLICATE_EXTERNAL_ID",
                               "more than one record found for external id field", ext);
                }
            }
            json_decref(matches);
        } else {
            if (!*rid) {
                sf_err_add(errs, "MISSING_ARGUMENT", "Id not specified in a delete call", NULL);
            } else if ((rc = sf_rec_delete(c, rid, origin, errs)) == 0) {
                sf_id18(rid, newid);
            }
        }
        processed++;
        if (rc == 0) {
            csv_row(&ok, newid, created ? "true" : "false", row);
        } else {
            failed++;
            json_t *e = json_array_get(errs, 0);
            struct es_buf msg;
            es_buf_init(&msg, 0);
            es_buf_printf(&msg, "%s:%s:", json_string_value(json_object_get(e, "errorCode")),
                          json_string_value(json_object_get(e, "message")));
            size_t fi;
            json_t *fv;
            json_array_foreach(json_object_get(e, "fields"), fi, fv)
            {
                es_buf_printf(&msg, "%s%s", fi ? "," : "", json_string_value(fv));
            }
            es_buf_puts(&msg, " --");
            csv_row(&bad, newid[0] ? newid : rid, msg.data, row);
            es_buf_release(&msg);
        }
        json_decref(errs);
        json_decref(rec);
    }
    json_object_set_new(info, "numberRecordsProcessed", json_integer(processed));
    json_object_set_new(info, "numberRecordsFailed", json_integer(failed));
    json_object_set_new(info, "state", json_string("JobComplete"));
    json_object_set_new(info, "totalProcessingTime", json_integer(processed / 10 + 1));
    job_save(c, id, info);
    job_set_blob(c, id, "ok", ok.data ? ok.data : "", ok.len);
    job_set_blob(c, id, "failed", bad.data ? bad.data : "", bad.len);
    if (header) {
        struct es_buf un;
        es_buf_init(&un, 0);
        size_t i;
        json_t *h;
        json_array_foreach(header, i, h)
        {
            es_buf_printf(&un, "%s", i ? "," : "");
            csv_field(&un, json_string_value(h));
        }
        es_buf_putc(&un, '\n');
        job_set_blob(c, id, "unprocessed", un.data, un.len);
        es_buf_release(&un);
    }
    es_buf_release(&ok);
    es_buf_release(&bad);
    json_decref(rows);
}

static void job_create(struct sf_ctx *c, const struct sf_call *call, struct sb_resp *resp)
{
    json_t *in = call->body_len ? json_loadb(call->body, call->body_len, 0, NULL) : NULL;
    if (!json_is_object(in)) {
        json_decref(in);
        bulk_error(resp, 400, "JSON_PARSER_ERROR", "The request body must be a JSON job");
        return;
    }
    const char *objn = json_string_value(json_object_get(in, "object"));
    const char *op = json_string_value(json_object_get(in, "operation"));
    const char *ext = json_string_value(json_object_get(in, "externalIdFieldName"));
    const char *delim = json_string_value(json_object_get(in, "columnDelimiter"));
    const char *le = json_string_value(json_object_get(in, "lineEnding"));
    const char *ct = json_string_value(json_object_get(in, "contentType"));
    struct sf_object *o = objn ? sf_obj(c, objn) : NULL;
    if (!o) {
        char msg[200];
        snprintf(msg, sizeof msg, "Entity '%s' is not supported by the Bulk API.",
                 objn ? objn : "");
        bulk_error(resp, 400, "INVALIDENTITY", msg);
    } else if (!op || (strcmp(op, "insert") && strcmp(op, "update") && strcmp(op, "upsert") &&
                       strcmp(op, "delete") && strcmp(op, "hardDelete"))) {
        bulk_error(resp, 400, "INVALIDJOB", "InvalidJob : Invalid operation");
    } else if (strcmp(op, "upsert") == 0 && (!ext || !sf_fld(o, ext))) {
        bulk_error(resp, 400, "INVALIDJOB",
                   "InvalidJob : External ID was blank or not a field of the object");
    } else if (delim && !delim_of(delim)) {
        bulk_error(resp, 400, "INVALIDJOB", "InvalidJob : Invalid columnDelimiter");
    } else if (ct && strcmp(ct, "CSV") != 0) {
        bulk_error(resp, 400, "INVALIDJOB", "InvalidJob : contentType must be CSV");
    } else {
        char id[19], dt[32], url[120];
        sf_new_id(c, "750", id);
        sf_fmt_dt(sb_now_ms(), dt);
        snprintf(url, sizeof url, "services/data/v%s/jobs/ingest/%s/batches", call->version, id);
        json_t *info = json_pack(
            "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i}",
            "id", id, "operation", op, "object", o->name, "createdById", c->user_id, "createdDate",
            dt, "systemModstamp", dt, "state", "Open", "concurrencyMode", "Parallel", "contentType",
            "CSV", "apiVersion", call->version, "jobType", "V2Ingest", "contentUrl", url,
            "lineEnding", le ? le : "LF", "columnDelimiter", delim ? delim : "COMMA",
            "numberRecordsProcessed", 0, "numberRecordsFailed", 0, "retries", 0,
            "totalProcessingTime", 0, "apiActiveProcessingTime", 0, "apexProcessingTime", 0);
        if (ext) {
            json_object_set_new(info, "externalIdFieldName", json_string(ext));
        }
        job_save(c, id, info);
        sb_resp_json(resp, 200, info);
    }
    json_decref(in);
}

void sf_bulk_handle(struct sf_ctx *c, const struct sf_call *call, const char *rest,
                    struct sb_resp *resp)
{
    const char *m = call->method;
    if (!*rest) {
        if (strcmp(m, "POST") == 0) {
            job_create(c, call, resp);
            return;
        }
        json_t *recs = json_array();
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(c->db, "SELECT info FROM job ORDER BY id", -1, &st, NULL);
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_t *j = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
            if (j) {
                json_array_append_new(recs, j);
            }
        }
        sqlite3_finalize(st);
        sb_resp_json(resp, 200,
                     json_pack("{s:b,s:o,s:n}", "done", 1, "records", recs, "nextRecordsUrl"));
        return;
    }
    char id[40] = "", sub[64] = "";
    const char *slash = strchr(rest, '/');
    size_t idl = slash ? (size_t)(slash - rest) : strlen(rest);
    if (idl >= sizeof id) {
        bulk_error(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    memcpy(id, rest, idl);
    id[idl] = '\0';
    if (slash) {
        es_strlcpy(sub, slash + 1, sizeof sub);
        size_t sl = strlen(sub);
        if (sl && sub[sl - 1] == '/') {
            sub[sl - 1] = '\0';
        }
    }
    char id18[19];
    json_t *data = NULL;
    json_t *info = sf_id18(id, id18) ? job_load(c, id18, &data) : NULL;
    if (!info) {
        bulk_error(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    const char *state = json_string_value(json_object_get(info, "state"));
    if (strcmp(state, "UploadComplete") == 0 && strcmp(m, "GET") == 0) {
        /* processing starts at the first look after the close: that answer shows InProgress,
         * later ones JobComplete (pollers see every state of a real job) */
        json_t *shown = json_deep_copy(info);
        json_object_set_new(shown, "state", json_string("InProgress"));
        process(c, id18, info, data);
        state = json_string_value(json_object_get(info, "state"));
        if (!sub[0]) {
            sb_resp_json(resp, 200, shown);
            json_decref(info);
            json_decref(data);
            return;
        }
        json_decref(shown);
    }
    if (!sub[0]) {
        if (strcmp(m, "GET") == 0) {
            sb_resp_json(resp, 200, json_incref(info));
        } else if (strcmp(m, "PATCH") == 0) {
            json_t *in = call->body_len ? json_loadb(call->body, call->body_len, 0, NULL) : NULL;
            const char *ns = json_string_value(json_object_get(in, "state"));
            if (ns && strcmp(ns, "UploadComplete") == 0 && strcmp(state, "Open") == 0) {
                json_object_set_new(info, "state", json_string("UploadComplete"));
                job_save(c, id18, info);
                sb_resp_json(resp, 200, json_incref(info));
            } else if (ns && strcmp(ns, "Aborted") == 0 &&
                       (strcmp(state, "Open") == 0 || strcmp(state, "UploadComplete") == 0)) {
                json_object_set_new(info, "state", json_string("Aborted"));
                job_save(c, id18, info);
                sb_resp_json(resp, 200, json_incref(info));
            } else {
                bulk_error(resp, 400, "INVALIDJOBSTATE",
                           "Invalid job state transition for this job");
            }
            json_decref(in);
        } else if (strcmp(m, "DELETE") == 0) {
            if (strcmp(state, "JobComplete") && strcmp(state, "Aborted") &&
                strcmp(state, "Failed")) {
                bulk_error(resp, 400, "INVALIDJOBSTATE",
                           "Only jobs in a terminal state can be deleted");
            } else {
                sqlite3_stmt *st = NULL;
                sqlite3_prepare_v2(c->db, "DELETE FROM job WHERE id=?1", -1, &st, NULL);
                sqlite3_bind_text(st, 1, id18, -1, SQLITE_STATIC);
                sqlite3_step(st);
                sqlite3_finalize(st);
                sb_resp_status(resp, 204);
            }
        } else {
            bulk_error(resp, 405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed");
        }
    } else if (strcmp(sub, "batches") == 0 && strcmp(m, "PUT") == 0) {
        const char *ct = call->req ? sb_req_header(call->req, "Content-Type") : NULL;
        if (strcmp(state, "Open") != 0) {
            bulk_error(resp, 409, "INVALIDJOBSTATE", "Job is not in the Open state");
        } else if (data) {
            bulk_error(resp, 409, "INVALIDJOBSTATE",
                       "Found multiple uploads for the job: only one upload is allowed");
        } else if (ct && strncasecmp(ct, "text/csv", 8) != 0) {
            bulk_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be text/csv");
        } else {
            job_set_blob(c, id18, "data", call->body, call->body_len);
            sb_resp_status(resp, 201);
        }
    } else if (strcmp(m, "GET") == 0 &&
               (strcmp(sub, "successfulResults") == 0 || strcmp(sub, "failedResults") == 0 ||
                strcmp(sub, "unprocessedrecords") == 0)) {
        if (strcmp(state, "JobComplete") && strcmp(state, "Failed") && strcmp(state, "Aborted")) {
            bulk_error(resp, 409, "INVALIDJOBSTATE", "The job is not complete");
        } else {
            const char *col = sub[0] == 's' ? "ok" : sub[0] == 'f' ? "failed" : "unprocessed";
            char sql[80];
            snprintf(sql, sizeof sql, "SELECT %s FROM job WHERE id=?1", col);
            sqlite3_stmt *st = NULL;
            sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
            sqlite3_bind_text(st, 1, id18, -1, SQLITE_STATIC);
            const char *blob = "";
            int len = 0;
            if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
                blob = sqlite3_column_blob(st, 0);
                len = sqlite3_column_bytes(st, 0);
            }
            sb_resp_body(resp, 200, "text/csv", blob ? blob : "", (size_t)len);
            sqlite3_finalize(st);
        }
    } else {
        bulk_error(resp, 404, "NOT_FOUND", "The requested resource does not exist");
    }
    json_decref(info);
    json_decref(data);
}
