/* SPDX-License-Identifier: MIT */
/*
 * /metrics in the Prometheus text exposition format (version 0.0.4) and /healthz.
 *
 * Sources of the figures:
 *  - the journal, through es_engine_stats(): changes per flow and state (queue depth), oldest
 *    open change, last success, enqueued/duplicate/outcome counters (monotonic, kept in the
 *    store, so they survive restarts);
 *  - the audit trail, read incrementally at each scrape: records failed per failure class
 *    and the processing-time histogram, counted from the outcomes committed since this server
 *    started (process-lifetime counters, as Prometheus expects; at most TAIL_MAX outcomes are
 *    read per scrape, anything beyond is counted in erpsync_metrics_outcomes_missed_total);
 *  - the engine: the remote API budget per system as its connectors last reported it;
 *  - the server itself: requests by route and status, webhook records and latency.
 *
 * /healthz answers 200 only when the engine runs, the store answers, and every enabled flow
 * is neither paused nor lagging (oldest open change younger than ES_HEALTH_MAX_LAG_MS);
 * otherwise 503 with the reasons.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "server/internal.h"

/* A flow whose oldest open change is older than this is unhealthy (15 minutes). */
#define ES_HEALTH_MAX_LAG_MS (15 * 60 * 1000)
/* Outcomes read from the audit per scrape. */
#define TAIL_MAX             50000
/* Processing-time buckets (seconds). */
#define NPROC                12
static const double proc_buckets[NPROC] = {0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                           0.5,   1.0,  2.5,   5.0,  10.0, 30.0};

struct flow_tail {
    uint64_t failed[ES_CLASS_LAST];
    uint64_t le[NPROC + 1];
    uint64_t count;
    double sum_s;
};

struct es__outcome_tail {
    pthread_mutex_t lock;
    int64_t last_id; /* newest audit id already counted */
    int primed;      /* last_id was read at start */
    uint64_t missed;
    size_t nflows;
    struct flow_tail *flows; /* parallel to cfg->flows */
};

static int64_t newest_audit_id(struct es_server *srv, int *ok)
{
    struct es_audit *rows = NULL;
    size_t n = 0;
    struct es_err e;
    es_err_clear(&e);
    *ok = es_store_audit(srv->store, 0, 1, &rows, &n, &e) == ES_OK;
    int64_t id = (*ok && n > 0) ? rows[0].id : 0;
    es_free(rows);
    return id;
}

void es__metrics_init(struct es_server *srv)
{
    struct es__outcome_tail *t = es_xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    t->nflows = srv->cfg->nflows;
    t->flows = es_xcalloc(t->nflows ? t->nflows : 1, sizeof *t->flows);
    t->last_id = newest_audit_id(srv, &t->primed);
    srv->tail = t;
}

void es__metrics_free(struct es_server *srv)
{
    struct es__outcome_tail *t = srv->tail;
    if (!t) {
        return;
    }
    pthread_mutex_destroy(&t->lock);
    es_free(t->flows);
    es_free(t);
    srv->tail = NULL;
}

static long flow_index(const struct es_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nflows; i++) {
        if (strcmp(cfg->flows[i].name, name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

/* Counts the outcomes committed since the last scrape. Caller holds t->lock. */
static int tail_read(struct es_server *srv, struct es_err *err)
{
    struct es__outcome_tail *t = srv->tail;
    if (!t->primed) {
        t->last_id = newest_audit_id(srv, &t->primed);
        return ES_OK;
    }
    /* Read the newest rows, growing the window until it reaches what was already counted
     * (or TAIL_MAX): a quiet scrape reads a few rows, a busy one as many as it needs. */
    struct es_audit *rows = NULL;
    size_t n = 0, limit = 256;
    for (;;) {
        int rc = es_store_audit(srv->store, 0, limit, &rows, &n, err);
        if (rc != ES_OK) {
            return rc;
        }
        int64_t low = INT64_MAX;
        for (size_t i = 0; i < n; i++) {
            low = rows[i].id < low ? rows[i].id : low;
        }
        if (n < limit || low <= t->last_id + 1 || limit >= TAIL_MAX) {
            break;
        }
        es_free(rows);
        rows = NULL;
        limit = limit * 4 > TAIL_MAX ? TAIL_MAX : limit * 4;
    }
    int64_t newest = t->last_id, oldest = INT64_MAX;
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++) {
        const struct es_audit *a = &rows[i];
        if (a->id <= t->last_id) {
            continue;
        }
        fresh++;
        newest = a->id > newest ? a->id : newest;
        oldest = a->id < oldest ? a->id : oldest;
        long fi = flow_index(srv->cfg, a->flow);
        if (fi < 0) {
            continue;
        }
        struct flow_tail *ft = &t->flows[fi];
        /* One row may record a run of DONE outcomes of one duration (count > 1). */
        uint64_t k = a->count > 1 ? (uint64_t)a->count : 1;
        if (a->code != ES_OK && a->state != ES_CHANGE_DONE) {
            enum es_class cls = es_code_class(a->code);
            if (cls > ES_CLASS_NONE && cls < ES_CLASS_LAST) {
                ft->failed[cls] += k;
            }
        }
        double s = (double)a->duration_ms / 1000.0;
        size_t b = 0;
        while (b < NPROC && s > proc_buckets[b]) {
            b++;
        }
        ft->le[b] += k;
        ft->count += k;
        ft->sum_s += s * (double)k;
    }
    if (n == TAIL_MAX && fresh == n && oldest > t->last_id + 1) { /* the window was too small */
        t->missed += (uint64_t)(oldest - t->last_id - 1);
    }
    t->last_id = newest;
    es_free(rows);
    return ES_OK;
}

/* Appends a label value with the escapes of the text format. */
static void label(struct es_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') {
            es_buf_putc(b, '\\');
            es_buf_putc(b, *v);
        } else if (*v == '\n') {
            es_buf_puts(b, "\\n");
        } else {
            es_buf_putc(b, *v);
        }
    }
}

static void head(struct es_buf *b, const char *name, const char *type, const char *help)
{
    es_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{flow="..."[,extra]} value */
static void flow_sample(struct es_buf *b, const char *name, const char *flow, const char *k,
                        const char *v, double value)
{
    es_buf_printf(b, "%s{flow=\"", name);
    label(b, flow);
    if (k) {
        es_buf_printf(b, "\",%s=\"", k);
        label(b, v);
    }
    es_buf_printf(b, "\"} %.17g\n", value);
}

static void server_metrics(struct es_server *srv, struct es_buf *b)
{
    head(b, "erpsync_info", "gauge", "Version of the running erpsync.");
    es_buf_printf(b, "erpsync_info{version=\"%s\"} 1\n", ES_VERSION);
    head(b, "erpsync_start_time_seconds", "gauge", "When the server started (Unix time).");
    es_buf_printf(b, "erpsync_start_time_seconds %.3f\n", (double)srv->started_ms / 1000.0);

    head(b, "erpsync_http_requests_total", "counter",
         "HTTP requests answered, by route and status.");
    for (size_t r = 0; r < srv->nroutes; r++) {
        for (size_t s = 0; s < ES__NSTATUS; s++) {
            uint64_t c = __atomic_load_n(&srv->counts[r * ES__NSTATUS + s], __ATOMIC_RELAXED);
            if (c == 0) {
                continue;
            }
            es_buf_puts(b, "erpsync_http_requests_total{route=\"");
            label(b, es__route_name(srv, (int)r));
            if (es__status_codes[s]) {
                es_buf_printf(b, "\",status=\"%u\"} %" PRIu64 "\n", es__status_codes[s], c);
            } else {
                es_buf_printf(b, "\",status=\"other\"} %" PRIu64 "\n", c);
            }
        }
    }

    head(b, "erpsync_webhook_records_total", "counter",
         "Records accepted by a webhook and committed to the journal, by system.");
    for (size_t i = 0; i < srv->nhooks; i++) {
        es_buf_puts(b, "erpsync_webhook_records_total{system=\"");
        label(b, srv->hooks[i].sys->name);
        es_buf_printf(b, "\"} %" PRIu64 "\n",
                      __atomic_load_n(&srv->hooks[i].records, __ATOMIC_RELAXED));
    }
    head(b, "erpsync_webhook_commits_total", "counter",
         "Journal commits of webhook records (records / commits = group commit size).");
    es_buf_printf(b, "erpsync_webhook_commits_total %" PRIu64 "\n",
                  __atomic_load_n(&srv->commits, __ATOMIC_RELAXED));
    head(b, "erpsync_webhook_duration_seconds", "histogram",
         "Time from request to answer of accepted webhooks (includes the journal commit).");
    for (size_t i = 0; i < srv->nhooks; i++) {
        const struct es__hook *h = &srv->hooks[i];
        uint64_t cum = 0;
        for (size_t k = 0; k <= ES__NBUCKETS; k++) {
            cum += __atomic_load_n(&h->dur_le[k], __ATOMIC_RELAXED);
            es_buf_puts(b, "erpsync_webhook_duration_seconds_bucket{system=\"");
            label(b, h->sys->name);
            if (k < ES__NBUCKETS) {
                es_buf_printf(b, "\",le=\"%g\"} %" PRIu64 "\n", es__buckets[k], cum);
            } else {
                es_buf_printf(b, "\",le=\"+Inf\"} %" PRIu64 "\n", cum);
            }
        }
        es_buf_puts(b, "erpsync_webhook_duration_seconds_sum{system=\"");
        label(b, h->sys->name);
        es_buf_printf(b, "\"} %.6f\n",
                      (double)__atomic_load_n(&h->dur_sum_us, __ATOMIC_RELAXED) / 1e6);
        es_buf_puts(b, "erpsync_webhook_duration_seconds_count{system=\"");
        label(b, h->sys->name);
        es_buf_printf(b, "\"} %" PRIu64 "\n", cum);
    }
}

static void flow_metrics(struct es_server *srv, struct es_buf *b, const struct es_flow_stats *st,
                         size_t n, int64_t now)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"erpsync_flow_changes", "gauge", "Changes in the journal now, by flow and state."},
        {"erpsync_flow_oldest_open_age_seconds", "gauge",
         "Age of the oldest pending, leased or retrying change (0 when none)."},
        {"erpsync_flow_last_success_timestamp_seconds", "gauge",
         "Unix time of the last change done (0 = never)."},
        {"erpsync_flow_enqueued_total", "counter", "Changes accepted into the journal."},
        {"erpsync_flow_duplicates_total", "counter",
         "Changes received again with a known (flow, key, version) and ignored."},
        {"erpsync_flow_records_done_total", "counter", "Changes written to the target (done)."},
        {"erpsync_flow_retries_total", "counter", "Outcomes that scheduled a retry."},
        {"erpsync_flow_outcomes_total", "counter", "Outcomes committed, by resulting state."},
        {"erpsync_flow_paused", "gauge", "1 when the flow is paused."},
        {"erpsync_skipped_total", "counter",
         "Changes done without a write: the mapped record equals what erpsync last wrote "
         "(noop), or erpsync's own write came back (echo)."},
    };
    for (size_t f = 0; f < ES_ARRAY_LEN(fam); f++) {
        head(b, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < n; i++) {
            const struct es_flow_stats *s = &st[i];
            switch (f) {
            case 0:
                for (int k = 0; k < ES_CHANGE_STATE_LAST; k++) {
                    flow_sample(b, fam[f].name, s->flow, "state", es_change_state_name(k),
                                (double)s->count[k]);
                }
                break;
            case 1:
                flow_sample(b, fam[f].name, s->flow, NULL, NULL,
                            s->oldest_open_ms ? (double)(now - s->oldest_open_ms) / 1000.0 : 0);
                break;
            case 2:
                flow_sample(b, fam[f].name, s->flow, NULL, NULL,
                            (double)s->last_success_ms / 1000.0);
                break;
            case 3:
                flow_sample(b, fam[f].name, s->flow, NULL, NULL, (double)s->enqueued);
                break;
            case 4:
                flow_sample(b, fam[f].name, s->flow, NULL, NULL, (double)s->duplicates);
                break;
            case 5:
                flow_sample(b, fam[f].name, s->flow, NULL, NULL,
                            (double)s->outcomes[ES_CHANGE_DONE]);
                break;
            case 6:
                flow_sample(b, fam[f].name, s->flow, NULL, NULL,
                            (double)s->outcomes[ES_CHANGE_RETRY]);
                break;
            case 7:
                for (int k = 0; k < ES_CHANGE_STATE_LAST; k++) {
                    if (k != ES_CHANGE_LEASED) {
                        flow_sample(b, fam[f].name, s->flow, "state", es_change_state_name(k),
                                    (double)s->outcomes[k]);
                    }
                }
                break;
            case 8:
                flow_sample(b, fam[f].name, s->flow, NULL, NULL, s->paused ? 1 : 0);
                break;
            default:
                flow_sample(b, fam[f].name, s->flow, "reason", "noop",
                            (double)s->skipped[ES_SKIP_NOOP]);
                flow_sample(b, fam[f].name, s->flow, "reason", "echo",
                            (double)s->skipped[ES_SKIP_ECHO]);
                break;
            }
        }
    }
    (void)srv;
}

/* The remote API budget of every system whose connector reports one (Sforce-Limit-Info). */
static void budget_metrics(struct es_server *srv, struct es_buf *b)
{
    static const char *const names[2] = {"erpsync_api_budget_remaining", "erpsync_api_budget_max"};
    static const char *const helps[2] = {
        "Remote API calls left in the system's current limit window, as last reported by it.",
        "The system's API call limit for the window, as last reported by it."};
    const struct es_config *cfg = srv->cfg;
    for (int k = 0; k < 2; k++) {
        head(b, names[k], "gauge", helps[k]);
        for (size_t i = 0; i < cfg->nsystems; i++) {
            long used = -1, max = -1;
            if (es_engine_budget(srv->engine, cfg->systems[i].name, &used, &max, NULL) != ES_OK ||
                max <= 0) {
                continue;
            }
            es_buf_printf(b, "%s{system=\"", names[k]);
            label(b, cfg->systems[i].name);
            es_buf_printf(b, "\"} %ld\n", k == 0 ? (used > max ? 0 : max - used) : max);
        }
    }
}

static void tail_metrics(struct es_server *srv, struct es_buf *b)
{
    const struct es__outcome_tail *t = srv->tail;
    const struct es_config *cfg = srv->cfg;
    head(b, "erpsync_flow_records_failed_total", "counter",
         "Failed attempts since start, by flow and failure class (retry, review, dead or pause).");
    for (size_t i = 0; i < t->nflows; i++) {
        for (int c = ES_CLASS_NONE + 1; c < ES_CLASS_LAST; c++) {
            flow_sample(b, "erpsync_flow_records_failed_total", cfg->flows[i].name, "class",
                        es_class_name(c), (double)t->flows[i].failed[c]);
        }
    }
    head(b, "erpsync_flow_processing_seconds", "histogram",
         "Time spent on one change (map, rules, write), per outcome since start.");
    for (size_t i = 0; i < t->nflows; i++) {
        const struct flow_tail *ft = &t->flows[i];
        uint64_t cum = 0;
        for (size_t k = 0; k <= NPROC; k++) {
            char le[32];
            cum += ft->le[k];
            if (k < NPROC) {
                snprintf(le, sizeof le, "%g", proc_buckets[k]);
            } else {
                snprintf(le, sizeof le, "+Inf");
            }
            flow_sample(b, "erpsync_flow_processing_seconds_bucket", cfg->flows[i].name, "le", le,
                        (double)cum);
        }
        flow_sample(b, "erpsync_flow_processing_seconds_sum", cfg->flows[i].name, NULL, NULL,
                    ft->sum_s);
        flow_sample(b, "erpsync_flow_processing_seconds_count", cfg->flows[i].name, NULL, NULL,
                    (double)ft->count);
    }
    head(b, "erpsync_metrics_outcomes_missed_total", "counter",
         "Outcomes committed between two scrapes beyond what one scrape reads (not counted).");
    es_buf_printf(b, "erpsync_metrics_outcomes_missed_total %" PRIu64 "\n", t->missed);
}

enum MHD_Result es__metrics_handle(struct es_server *srv, struct MHD_Connection *conn,
                                   struct es__req *req)
{
    struct es_buf b;
    es_buf_init(&b, 0);
    struct es_err e;
    es_err_clear(&e);
    int64_t now = es_clock_wall_ms();
    server_metrics(srv, &b);

    struct es_flow_stats *st = NULL;
    size_t n = 0;
    int store_ok = es_engine_stats(srv->engine, &st, &n, &e) == ES_OK;
    if (store_ok) {
        flow_metrics(srv, &b, st, n, now);
    }
    es_free(st);
    budget_metrics(srv, &b);
    pthread_mutex_lock(&srv->tail->lock);
    if (store_ok && tail_read(srv, &e) != ES_OK) {
        store_ok = 0;
    }
    tail_metrics(srv, &b);
    pthread_mutex_unlock(&srv->tail->lock);

    head(&b, "erpsync_store_up", "gauge", "1 when the last store read for this scrape worked.");
    es_buf_printf(&b, "erpsync_store_up %d\n", store_ok);
    if (!store_ok) {
        struct es_log_ctx lc = {NULL, "server"};
        es_log(&lc, ES_LOG_WARN, "metrics: store: %s: %s", es_code_name(e.code), e.msg);
    }
    size_t len = b.len;
    char *text = es_buf_detach(&b, &len);
    return es__reply(srv, conn, req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

enum MHD_Result es__healthz_handle(struct es_server *srv, struct MHD_Connection *conn,
                                   struct es__req *req)
{
    json_t *reasons = json_array();
    struct es_engine_health h;
    memset(&h, 0, sizeof h);
    es_engine_health(srv->engine, &h);
    if (!h.running || h.stopping) {
        json_array_append_new(reasons,
                              json_string(h.stopping ? "engine: stopping" : "engine: not running"));
    }
    if (!h.store_ok) {
        json_array_append_new(
            reasons, json_sprintf("store: %s", h.last_error[0] ? h.last_error : "failing"));
    }
    struct es_flow_stats *st = NULL;
    size_t n = 0;
    struct es_err e;
    es_err_clear(&e);
    int64_t now = es_clock_wall_ms();
    json_t *flows = json_object();
    if (es_engine_stats(srv->engine, &st, &n, &e) != ES_OK) {
        if (h.store_ok) {
            json_array_append_new(reasons, json_sprintf("store: %s", e.msg));
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            const struct es_flow_stats *s = &st[i];
            const struct es_flow_cfg *fc = es_config_flow(srv->cfg, s->flow);
            if (fc && !fc->enabled) {
                continue;
            }
            int64_t lag = s->oldest_open_ms ? now - s->oldest_open_ms : 0;
            const char *state = "ok";
            if (s->paused) {
                state = "paused";
                json_array_append_new(reasons,
                                      json_sprintf("flow %s: paused (%s)", s->flow,
                                                   s->pause_reason[0] ? s->pause_reason : "?"));
            } else if (lag > ES_HEALTH_MAX_LAG_MS) {
                state = "lagging";
                json_array_append_new(
                    reasons, json_sprintf("flow %s: oldest open change is %" PRId64 " s old",
                                          s->flow, lag / 1000));
            }
            json_object_set_new(flows, s->flow,
                                json_pack("{s:s, s:I, s:I}", "state", state, "pending",
                                          (json_int_t)s->count[ES_CHANGE_PENDING],
                                          "oldest_open_age_s", (json_int_t)(lag / 1000)));
        }
    }
    es_free(st);
    int ok = json_array_size(reasons) == 0;
    json_t *body = json_pack("{s:s, s:o, s:o}", "status", ok ? "ok" : "unhealthy", "reasons",
                             reasons, "flows", flows);
    if (!ok) {
        struct es_log_ctx lc = {NULL, "server"};
        es_log(&lc, ES_LOG_DEBUG, "healthz: unhealthy (%zu reasons)", json_array_size(reasons));
    }
    return es__reply_json(srv, conn, req, ok ? 200 : 503, body);
}
