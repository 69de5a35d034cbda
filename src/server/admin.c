/* SPDX-License-Identifier: MIT */
/*
 * The admin JSON API under /api/, behind `Authorization: Bearer <token>` (the value of the
 * environment variable named by server.admin_token_env, compared in constant time; 401
 * without it). Reads go to the journal (es_store_list/get/audit on the engine's store);
 * changes of state go through the engine (replay, resolve, pause), which wakes the workers.
 *
 *   GET  /api/flows                      flows with their figures
 *   GET  /api/changes?flow=&state=&after=&limit=   changes, oldest first, paged by id
 *   GET  /api/review[?flow=]             review items        GET /api/review/{id}  one, + audit
 *   POST /api/review/{id}/resolve        done with a note    POST /api/review/{id}/replay
 *   GET  /api/dead[?flow=]               dead letters        GET /api/dead/{id}
 *   POST /api/dead/{id}/replay           back to pending
 *   POST /api/flows/{name}/pause         {"reason": "..."}   POST /api/flows/{name}/resume
 *   GET  /api/xref/{entity}/{system}/{id}  the record's global id and its id in every system
 * POST bodies are optional JSON objects ({"note": ...} / {"reason": ...}). Errors are
 * {"error": "..."} with 400, 401, 404, 405 or 409 (a change in another state).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "server/internal.h"

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0) {
        return json_null();
    }
    char iso[40];
    es_clock_iso8601(ms, iso, sizeof iso);
    return json_string(iso);
}

static json_t *str_or_null(const char *s)
{
    return (s && *s) ? json_string(s) : json_null();
}

/* A change as JSON; full adds the payload. */
static json_t *change_json(const struct es_change *c, int full)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:i}", "id", (json_int_t)c->id, "flow",
                          c->flow ? c->flow : "", "key", c->key ? c->key : "", "version",
                          c->version ? c->version : "", "state", es_change_state_name(c->state),
                          "deleted", c->deleted, "attempts", c->attempts);
    json_object_set_new(o, "created", time_or_null(c->created_ms));
    json_object_set_new(o, "updated", time_or_null(c->updated_ms));
    if (c->state == ES_CHANGE_RETRY) {
        json_object_set_new(o, "next_at", time_or_null(c->next_at_ms));
    }
    if (c->last_code != ES_OK) {
        json_t *e = json_pack("{s:s, s:s}", "code", es_code_name(c->last_code), "class",
                              es_class_name(es_code_class(c->last_code)));
        json_object_set_new(e, "message", str_or_null(c->last_msg));
        json_object_set_new(e, "remote_code", str_or_null(c->last_remote_code));
        json_object_set_new(e, "remote_message", str_or_null(c->last_remote_msg));
        json_object_set_new(e, "hint", str_or_null(c->last_hint));
        json_object_set_new(o, "error", e);
    }
    json_object_set_new(o, "note", str_or_null(c->note));
    if (full) {
        json_t *p = NULL;
        if (c->payload) {
            p = json_loadb(c->payload, c->payload_len, JSON_DECODE_ANY, NULL);
            if (!p) {
                p = json_stringn(c->payload, c->payload_len);
            }
        }
        json_object_set_new(o, "payload", p ? p : json_null());
    }
    return o;
}

static enum MHD_Result store_error(struct es_server *srv, struct MHD_Connection *conn,
                                   struct es__req *req, const struct es_err *e)
{
    unsigned status = e->code == ES_ENOTFOUND ? 404 : e->code == ES_EINVAL ? 409 : 503;
    if (status == 503) {
        struct es_log_ctx lc = {NULL, "server"};
        es_log(&lc, ES_LOG_ERROR, "admin API: %s: %s", es_code_name(e->code), e->msg);
    }
    return es__reply_error(srv, conn, req, status, "%s", e->msg);
}

static const char *query(struct MHD_Connection *conn, const char *name)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    return (v && *v) ? v : NULL;
}

/* Parses a positive decimal id from [s, s+n). */
static int parse_id(const char *s, size_t n, int64_t *id)
{
    if (n == 0 || n > 18) {
        return 0;
    }
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        v = v * 10 + (s[i] - '0');
    }
    *id = v;
    return v > 0;
}

static enum MHD_Result list_changes(struct es_server *srv, struct MHD_Connection *conn,
                                    struct es__req *req, enum es_change_state fixed,
                                    const char *member)
{
    struct es_change_filter f = {0};
    f.flow = query(conn, "flow");
    f.state = fixed;
    const char *st = query(conn, "state");
    if (fixed == ES_CHANGE_STATE_LAST && st) {
        f.state = es_change_state_from_name(st);
        if (f.state == ES_CHANGE_STATE_LAST) {
            return es__reply_error(srv, conn, req, 400,
                                   "unknown state '%s' (pending, leased, done, retry, review, "
                                   "dead)",
                                   st);
        }
    }
    if (f.flow && !es_config_flow(srv->cfg, f.flow)) {
        return es__reply_error(srv, conn, req, 404, "no flow named '%s'", f.flow);
    }
    const char *after = query(conn, "after");
    const char *limit = query(conn, "limit");
    if (after && !parse_id(after, strlen(after), &f.after_id)) {
        return es__reply_error(srv, conn, req, 400, "after must be a change id");
    }
    int64_t lim = 100;
    if (limit && (!parse_id(limit, strlen(limit), &lim) || lim > 1000)) {
        return es__reply_error(srv, conn, req, 400, "limit must be 1..1000");
    }
    f.limit = (size_t)lim;
    struct es_change *rows = NULL;
    size_t n = 0;
    struct es_err e;
    es_err_clear(&e);
    if (es_store_list(srv->store, &f, &rows, &n, &e) != ES_OK) {
        return store_error(srv, conn, req, &e);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, change_json(&rows[i], 0));
    }
    json_t *body = json_pack("{s:o}", member, arr);
    json_object_set_new(body, "next_after",
                        n == f.limit ? json_integer((json_int_t)rows[n - 1].id) : json_null());
    es_changes_free(rows, n);
    return es__reply_json(srv, conn, req, 200, body);
}

static enum MHD_Result show_change(struct es_server *srv, struct MHD_Connection *conn,
                                   struct es__req *req, int64_t id, enum es_change_state want)
{
    struct es_change c;
    memset(&c, 0, sizeof c);
    struct es_err e;
    es_err_clear(&e);
    if (es_store_get(srv->store, id, &c, &e) != ES_OK) {
        return store_error(srv, conn, req, &e);
    }
    if (want != ES_CHANGE_STATE_LAST && c.state != want) {
        enum es_change_state got = c.state;
        es_change_release(&c);
        return es__reply_error(srv, conn, req, 404, "change %" PRId64 " is %s, not %s", id,
                               es_change_state_name(got), es_change_state_name(want));
    }
    json_t *o = change_json(&c, 1);
    es_change_release(&c);
    struct es_audit *rows = NULL;
    size_t n = 0;
    json_t *audit = json_array();
    if (es_store_audit(srv->store, id, 50, &rows, &n, &e) == ES_OK) {
        for (size_t i = 0; i < n; i++) {
            const struct es_audit *a = &rows[i];
            json_t *r = json_pack("{s:I, s:i, s:s, s:s, s:s, s:I}", "id", (json_int_t)a->id,
                                  "attempt", a->attempt, "state", es_change_state_name(a->state),
                                  "code", es_code_name(a->code), "message", a->msg, "duration_ms",
                                  (json_int_t)a->duration_ms);
            json_object_set_new(r, "at", time_or_null(a->ts_ms));
            json_array_append_new(audit, r);
        }
    }
    es_free(rows);
    json_object_set_new(o, "audit", audit);
    return es__reply_json(srv, conn, req, 200, o);
}

/* The optional JSON body's string member (NULL when absent); *bad on a malformed body. */
static const char *body_member(struct es__req *req, const char *name, json_t **root, int *bad)
{
    *root = NULL;
    *bad = 0;
    if (req->body.len == 0) {
        return NULL;
    }
    *root = json_loadb(req->body.data, req->body.len, 0, NULL);
    json_t *v = json_is_object(*root) ? json_object_get(*root, name) : NULL;
    if (!json_is_object(*root) || (v && !json_is_string(v))) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

static enum MHD_Result change_action(struct es_server *srv, struct MHD_Connection *conn,
                                     struct es__req *req, int64_t id, enum es_change_state want,
                                     int resolve)
{
    json_t *root;
    int bad;
    const char *note = body_member(req, "note", &root, &bad);
    if (bad) {
        json_decref(root);
        return es__reply_error(srv, conn, req, 400, "body must be {\"note\": \"...\"}");
    }
    struct es_change c;
    memset(&c, 0, sizeof c);
    struct es_err e;
    es_err_clear(&e);
    if (es_store_get(srv->store, id, &c, &e) != ES_OK) {
        json_decref(root);
        return store_error(srv, conn, req, &e);
    }
    enum es_change_state got = c.state;
    es_change_release(&c);
    if (got != want) {
        json_decref(root);
        return es__reply_error(srv, conn, req, 409, "change %" PRId64 " is %s, not %s", id,
                               es_change_state_name(got), es_change_state_name(want));
    }
    char def[64];
    snprintf(def, sizeof def, "%s through the admin API", resolve ? "resolved" : "replayed");
    int rc = resolve ? es_engine_resolve(srv->engine, id, note ? note : def, &e)
                     : es_engine_replay(srv->engine, id, note ? note : def, &e);
    json_decref(root);
    if (rc != ES_OK) {
        return store_error(srv, conn, req, &e);
    }
    struct es_log_ctx lc = {NULL, "server"};
    es_log(&lc, ES_LOG_INFO, "change %" PRId64 " %s through the admin API", id,
           resolve ? "resolved" : "replayed");
    return es__reply_json(
        srv, conn, req, 200,
        json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", resolve ? "done" : "pending"));
}

static enum MHD_Result list_flows(struct es_server *srv, struct MHD_Connection *conn,
                                  struct es__req *req)
{
    struct es_flow_stats *st = NULL;
    size_t n = 0;
    struct es_err e;
    es_err_clear(&e);
    if (es_engine_stats(srv->engine, &st, &n, &e) != ES_OK) {
        return store_error(srv, conn, req, &e);
    }
    int64_t now = es_clock_wall_ms();
    json_t *arr = json_array();
    for (size_t i = 0; i < srv->cfg->nflows; i++) {
        const struct es_flow_cfg *fc = &srv->cfg->flows[i];
        const struct es_flow_stats *s = NULL;
        for (size_t k = 0; k < n; k++) {
            if (strcmp(st[k].flow, fc->name) == 0) {
                s = &st[k];
                break;
            }
        }
        json_t *trig = json_pack("{s:b, s:I}", "realtime", fc->trigger.realtime, "poll_ms",
                                 (json_int_t)fc->trigger.poll_ms);
        json_object_set_new(trig, "batch", str_or_null(fc->trigger.batch));
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:b, s:o}", "name", fc->name, "entity", fc->entity,
                      "from", fc->from, "to", fc->to, "enabled", fc->enabled, "trigger", trig);
        if (s) {
            json_t *counts = json_object();
            for (int k = 0; k < ES_CHANGE_STATE_LAST; k++) {
                json_object_set_new(counts, es_change_state_name(k), json_integer(s->count[k]));
            }
            json_object_set_new(o, "paused", json_boolean(s->paused));
            json_object_set_new(o, "pause_reason", str_or_null(s->pause_reason));
            json_object_set_new(o, "counts", counts);
            json_object_set_new(
                o, "oldest_open_age_s",
                json_integer(s->oldest_open_ms ? (now - s->oldest_open_ms) / 1000 : 0));
            json_object_set_new(o, "last_success", time_or_null(s->last_success_ms));
            json_object_set_new(o, "enqueued", json_integer(s->enqueued));
            json_object_set_new(o, "duplicates", json_integer(s->duplicates));
            json_object_set_new(o, "done", json_integer(s->outcomes[ES_CHANGE_DONE]));
            json_object_set_new(o, "retries", json_integer(s->outcomes[ES_CHANGE_RETRY]));
        }
        json_array_append_new(arr, o);
    }
    es_free(st);
    return es__reply_json(srv, conn, req, 200, json_pack("{s:o}", "flows", arr));
}

static enum MHD_Result pause_flow(struct es_server *srv, struct MHD_Connection *conn,
                                  struct es__req *req, const char *name, size_t nlen, int pause)
{
    char flow[128];
    if (nlen == 0 || nlen >= sizeof flow) {
        return es__reply_error(srv, conn, req, 404, "no such flow");
    }
    memcpy(flow, name, nlen);
    flow[nlen] = '\0';
    if (!es_config_flow(srv->cfg, flow)) {
        return es__reply_error(srv, conn, req, 404, "no flow named '%s'", flow);
    }
    json_t *root;
    int bad;
    const char *reason = body_member(req, "reason", &root, &bad);
    if (bad) {
        json_decref(root);
        return es__reply_error(srv, conn, req, 400, "body must be {\"reason\": \"...\"}");
    }
    struct es_err e;
    es_err_clear(&e);
    int rc = es_engine_pause(srv->engine, flow,
                             pause ? (reason ? reason : "paused through the admin API") : NULL, &e);
    json_decref(root);
    if (rc != ES_OK) {
        return store_error(srv, conn, req, &e);
    }
    struct es_log_ctx lc = {flow, NULL};
    es_log(&lc, ES_LOG_INFO, "flow %s through the admin API", pause ? "paused" : "resumed");
    return es__reply_json(srv, conn, req, 200,
                          json_pack("{s:s, s:b}", "flow", flow, "paused", pause));
}

int es__xref_path(const char *rest, char *entity, size_t ecap, char *system, size_t scap,
                  const char **id)
{
    const char *s1 = strchr(rest, '/');
    const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    size_t elen = s1 ? (size_t)(s1 - rest) : 0;
    size_t slen = s2 ? (size_t)(s2 - s1 - 1) : 0;
    if (!s2 || elen == 0 || slen == 0 || !s2[1] || elen >= ecap || slen >= scap) {
        return 0;
    }
    memcpy(entity, rest, elen);
    entity[elen] = '\0';
    memcpy(system, s1 + 1, slen);
    system[slen] = '\0';
    *id = s2 + 1;
    return 1;
}

/* GET /api/xref/{entity}/{system}/{id}: rest is what follows "/api/xref/". */
static enum MHD_Result show_xref(struct es_server *srv, struct MHD_Connection *conn,
                                 struct es__req *req, const char *rest)
{
    char entity[128], system[128];
    const char *id = NULL;
    if (!es__xref_path(rest, entity, sizeof entity, system, sizeof system, &id)) {
        return es__reply_error(srv, conn, req, 400, "use /api/xref/{entity}/{system}/{id}");
    }
    if (!es_config_entity(srv->cfg, entity)) {
        return es__reply_error(srv, conn, req, 404, "no entity named '%s'", entity);
    }
    if (!es_config_system(srv->cfg, system)) {
        return es__reply_error(srv, conn, req, 404, "no system named '%s'", system);
    }
    char *global = NULL;
    struct es_xref_link *links = NULL;
    size_t n = 0;
    struct es_err e;
    es_err_clear(&e);
    if (es_store_xref_links(srv->store, entity, system, id, &global, &links, &n, &e) != ES_OK) {
        return store_error(srv, conn, req, &e);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_pack("{s:s, s:s}", "system", links[i].system, "id", links[i].id);
        json_object_set_new(l, "updated", time_or_null(links[i].updated_ms));
        json_array_append_new(arr, l);
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:o}", "entity", entity, "system", system, "id",
                             id, "global_id", global ? global : "", "links", arr);
    es_free(global);
    es_free(links);
    return es__reply_json(srv, conn, req, 200, body);
}

/* Authorization: Bearer <token>, compared in constant time. */
static int authorized(struct es_server *srv, struct MHD_Connection *conn)
{
    if (!srv->admin_token) {
        return 0;
    }
    const char *h =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        return 0;
    }
    h += 7;
    while (*h == ' ') {
        h++;
    }
    return es__secret_equal(h, strlen(h), srv->admin_token, strlen(srv->admin_token));
}

/* Matches url against "/api/<a>/{id}/<b>" style patterns: returns 1 and the id. */
static int match_id(const char *url, const char *prefix, const char *suffix, int64_t *id)
{
    size_t pl = strlen(prefix);
    if (strncmp(url, prefix, pl) != 0) {
        return 0;
    }
    const char *p = url + pl;
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    const char *rest = p + n;
    if (!parse_id(p, n, id)) {
        return 0;
    }
    return suffix ? strcmp(rest, suffix) == 0 : *rest == '\0';
}

enum MHD_Result es__admin_handle(struct es_server *srv, struct MHD_Connection *conn,
                                 struct es__req *req, const char *method, const char *url)
{
    if (!authorized(srv, conn)) {
        struct es_log_ctx lc = {NULL, "server"};
        es_log(&lc, ES_LOG_WARN, "admin API %s %s refused (401): %s", method, url,
               srv->admin_token ? "no valid Authorization header" : "no admin token configured");
        return es__reply_error(srv, conn, req, 401,
                               srv->admin_token ? "missing or wrong admin token"
                                                : "the admin API has no token (set "
                                                  "server.admin_token_env and its variable)");
    }
    int get = strcmp(method, "GET") == 0;
    int post = strcmp(method, "POST") == 0;
    int64_t id = 0;
    if (strcmp(url, "/api/flows") == 0) {
        return get ? list_flows(srv, conn, req) : es__reply_error(srv, conn, req, 405, "use GET");
    }
    if (strcmp(url, "/api/changes") == 0) {
        return get ? list_changes(srv, conn, req, ES_CHANGE_STATE_LAST, "changes")
                   : es__reply_error(srv, conn, req, 405, "use GET");
    }
    if (match_id(url, "/api/changes/", NULL, &id)) {
        return get ? show_change(srv, conn, req, id, ES_CHANGE_STATE_LAST)
                   : es__reply_error(srv, conn, req, 405, "use GET");
    }
    if (strcmp(url, "/api/review") == 0 || strcmp(url, "/api/dead") == 0) {
        int review = url[5] == 'r';
        return get ? list_changes(srv, conn, req, review ? ES_CHANGE_REVIEW : ES_CHANGE_DEAD,
                                  review ? "review" : "dead")
                   : es__reply_error(srv, conn, req, 405, "use GET");
    }
    if (match_id(url, "/api/review/", NULL, &id) || match_id(url, "/api/dead/", NULL, &id)) {
        enum es_change_state want = url[5] == 'r' ? ES_CHANGE_REVIEW : ES_CHANGE_DEAD;
        return get ? show_change(srv, conn, req, id, want)
                   : es__reply_error(srv, conn, req, 405, "use GET");
    }
    if (match_id(url, "/api/review/", "/resolve", &id) ||
        match_id(url, "/api/review/", "/replay", &id) ||
        match_id(url, "/api/dead/", "/replay", &id)) {
        if (!post) {
            return es__reply_error(srv, conn, req, 405, "use POST");
        }
        enum es_change_state want = url[5] == 'r' ? ES_CHANGE_REVIEW : ES_CHANGE_DEAD;
        int resolve = strstr(url, "/resolve") != NULL;
        return change_action(srv, conn, req, id, want, resolve);
    }
    if (strncmp(url, "/api/flows/", 11) == 0) {
        const char *name = url + 11;
        const char *slash = strrchr(name, '/');
        if (slash && (strcmp(slash, "/pause") == 0 || strcmp(slash, "/resume") == 0)) {
            if (!post) {
                return es__reply_error(srv, conn, req, 405, "use POST");
            }
            return pause_flow(srv, conn, req, name, (size_t)(slash - name),
                              strcmp(slash, "/pause") == 0);
        }
    }
    if (strncmp(url, "/api/xref/", 10) == 0) {
        return get ? show_xref(srv, conn, req, url + 10)
                   : es__reply_error(srv, conn, req, 405, "use GET");
    }
    return es__reply_error(srv, conn, req, 404, "no such admin endpoint: %s %s", method, url);
}
