/* SPDX-License-Identifier: MIT */
/*
 * The worker threads: lease a batch of one flow, map each change, apply the master-data
 * rules (src/mdm: system of record, owned fields, no-op and echo skips), write the whole
 * batch to the target with one call, write the target ids back to the source with one more
 * call, and commit every outcome with its xref and fingerprints (docs/architecture.md
 * "Master data").
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "mdm/mdm.h"

/* ---- workers ---- */

struct item {
    struct es_change *ch;
    json_t *src; /* the source record as received */
    json_t *mapped;
    char fp[17];
    char *target_id;
    const char *match;
    int written;      /* index into writes, or -1 */
    const char *wbid; /* target id to write back into the source, or NULL */
    json_t *wbdata;   /* {field: id} while the write-back is in flight */
    int followup;     /* the write-back failed after a target write: re-enqueue */
    const char *sys;  /* the system a failure came from (NULL = the flow's target) */
    struct es_err err;
    struct es_xref_in xref;
    char rfp[17]; /* echo priming: the fingerprint the reverse flow will compute */
    struct es_fp_in fps[4];
    size_t nfps;
    char note[256];
};

/* What one batch knows about the master-data rules of its flow. */
struct mdm_ctx {
    struct es_mdm_flow mf;
    struct flow_rt *rev; /* the reverse flow of a two-way pair, or NULL */
    struct es_mdm_flow rmf;
    char echo_from[80], echo_to[80]; /* "<system>#echo" fingerprint slots */
    int trims;                       /* an update may write less than a create */
};

struct xref_ud {
    struct es_engine *e;
    const struct es_flow_cfg *f;
};

static int map_xref(void *ud, const char *entity, const char *source_value, char *out, size_t cap)
{
    struct xref_ud *x = ud;
    char *id = NULL;
    int rc =
        es_store_xref_lookup(x->e->store, entity, x->f->from, source_value, x->f->to, &id, NULL);
    if (rc == ES_OK) {
        es_strlcpy(out, id, cap);
    }
    es_free(id);
    return rc;
}

static enum es_write_op write_op(const struct es_flow_cfg *f, int deleted)
{
    if (deleted) {
        return ES_WRITE_DELETE;
    }
    switch (f->operation) {
    case ES_OP_CREATE:
        return ES_WRITE_CREATE;
    case ES_OP_UPDATE:
        return ES_WRITE_UPDATE;
    default:
        return ES_WRITE_UPSERT;
    }
}

/* Decides the outcome of a failed item and logs it once. */
static void fail_item(struct worker *w, struct flow_rt *rt, struct item *it, struct es_outcome *o,
                      int64_t now, int *pause)
{
    const struct es_flow_cfg *f = rt->cfg;
    double rnd = (double)rand_r(&w->seed) / ((double)RAND_MAX + 1.0);
    o->state = es_engine_classify(&it->err, it->ch->attempts, &f->retry, now, rnd, &o->next_at_ms);
    o->err = &it->err;
    if (o->state == ES_CHANGE_PENDING) {
        *pause = 1;
    }
    es_err_context(&it->err, it->sys ? it->sys : f->to, f->name, it->ch->key);
    struct es_log_ctx lc = {f->name, f->to};
    enum es_log_level lvl = o->state == ES_CHANGE_RETRY ? ES_LOG_DEBUG : ES_LOG_WARN;
    es_log(&lc, lvl, "change %" PRId64 " key=%s attempt=%d -> %s: %s: %s", it->ch->id, it->ch->key,
           it->ch->attempts, es_change_state_name(o->state), es_code_name(it->err.code),
           it->err.msg);
}

/* The version mark of a change that only repeats a failed write-back. */
#define WB_MARK "+wb"

static int is_followup(const struct es_change *ch)
{
    const char *m = ch->version ? strstr(ch->version, WB_MARK) : NULL;
    return m && m[strlen(WB_MARK)] >= '0' && m[strlen(WB_MARK)] <= '9';
}

static void fp_add(struct item *it, const char *entity, const char *system, const char *id,
                   const char *fp)
{
    if (it->nfps < sizeof it->fps / sizeof it->fps[0]) {
        it->fps[it->nfps++] = (struct es_fp_in){entity, system, id, fp};
    }
}

static void mdm_init(struct mdm_ctx *m, struct es_engine *e, const struct es_flow_cfg *f)
{
    memset(m, 0, sizeof *m);
    es_mdm_flow_init(&m->mf, e->cfg, f);
    es_mdm_echo_system(f->from, m->echo_from, sizeof m->echo_from);
    es_mdm_echo_system(f->to, m->echo_to, sizeof m->echo_to);
    m->trims = m->mf.trims;
    for (size_t i = 0; m->mf.reverse && i < e->nflows; i++) {
        if (e->flows[i].cfg == m->mf.reverse && e->flows[i].map) {
            m->rev = &e->flows[i];
            es_mdm_flow_init(&m->rmf, e->cfg, m->rev->cfg);
        }
    }
}

static void mdm_release(struct mdm_ctx *m)
{
    es_mdm_flow_release(&m->mf);
    if (m->rev) {
        es_mdm_flow_release(&m->rmf);
    }
}

/* The fingerprint of what an update of mapped would write (creates write more: the fields
 * owned by the target, which an update never touches). The no-op check compares updates. */
static void update_fp(const struct mdm_ctx *m, const json_t *mapped, int exists, char out[17])
{
    if (exists || !m->trims) {
        es_engine_json_hash(mapped, out);
        return;
    }
    json_t *copy = json_deep_copy(mapped);
    struct es_mdm_plan plan;
    es_mdm_plan_write(&m->mf, 1, copy, NULL, &plan);
    es_engine_json_hash(copy, out);
    json_decref(copy);
}

/* Echo priming of a two-way pair: the target will report the record erpsync just wrote as a
 * change; the reverse flow maps it back. Run the reverse mapping on what was written (plus
 * what the target read back) and record that fingerprint as the source record's content, so
 * the echo is skipped at once while a real edit on the target still differs. */
static void prime_reverse(struct es_engine *e, struct mdm_ctx *m, struct item *it,
                          const struct es_write_result *r, const char *entity, const char *tid)
{
    if (!m->rev || !it->mapped || !tid) {
        return;
    }
    json_t *in = json_deep_copy(it->mapped);
    if (json_is_object(r->readback)) {
        json_object_update(in, r->readback);
    }
    json_t *back = NULL;
    struct es_err perr;
    es_err_clear(&perr);
    struct xref_ud rud = {e, m->rev->cfg};
    if (es__mapping_apply(m->rev->map, in, &back, map_xref, &rud, &perr) == ES_OK) {
        struct es_mdm_plan plan;
        es_mdm_plan_write(&m->rmf, 1, back, NULL, &plan);
        es_engine_json_hash(back, it->rfp);
        fp_add(it, entity, m->mf.flow->from, it->ch->key, it->rfp);
        fp_add(it, entity, m->echo_to, tid, it->rfp);
    }
    json_decref(back);
    json_decref(in);
}

/* A conflict is only a conflict when the update would change a value: read the system of
 * record's current record and decide again on the fields that differ. A failed read leaves
 * it->err set (classified like a failed write). */
static void recheck_conflict(struct es_conn *conn, struct flow_rt *rt, const struct mdm_ctx *m,
                             struct item *it, struct es_mdm_plan *plan)
{
    json_t *cur = NULL;
    struct es_err gerr;
    es_err_clear(&gerr);
    int rc = es_conn_get(conn, rt->target_object, it->target_id, &cur, &gerr);
    if (rc == ES_OK) {
        es_mdm_plan_write(&m->mf, 1, it->mapped, cur, plan);
    } else if (rc != ES_EINVAL && rc != ES_ENOTFOUND) {
        it->err = gerr; /* transient: retry later; EINVAL = the connector has no get */
    }
    json_decref(cur);
}

/* The mapped record equals what erpsync last wrote to the target: DONE without a write,
 * counted as an echo of erpsync's own write or as a plain no-op. Returns 1 when skipped. */
static int skip_unchanged(struct es_engine *e, struct mdm_ctx *m, struct item *it,
                          struct es_outcome *o, const char *entity)
{
    const struct es_flow_cfg *f = m->mf.flow;
    char *last = NULL;
    int same =
        es_store_fingerprint_get(e->store, entity, f->to, it->target_id, &last, NULL) == ES_OK &&
        strcmp(last, it->fp) == 0;
    es_free(last);
    if (!same) {
        return 0;
    }
    char *echo = NULL;
    if (es_store_fingerprint_get(e->store, entity, m->echo_from, it->ch->key, &echo, NULL) !=
        ES_OK) {
        echo = NULL;
    }
    o->state = ES_CHANGE_DONE;
    o->skip = es_mdm_skip_kind(&m->mf, it->src, it->target_id, it->fp, echo);
    es_free(echo);
    if (o->skip == ES_SKIP_ECHO) {
        /* Each write echoes once: the next identical change is a plain no-op. */
        fp_add(it, entity, m->echo_from, it->ch->key, "");
        o->note = "echo: erpsync's own write came back from the source; not synced back";
    } else {
        o->note = "unchanged: the target already has this record";
    }
    return 1;
}

/* A follow-up change: write the target id back again, nothing else. The echo of that
 * write maps to what the target holds now (its fingerprint slot). */
static void followup_item(struct es_engine *e, struct mdm_ctx *m, struct item *it,
                          struct es_outcome *o, const char *entity)
{
    o->state = ES_CHANGE_DONE;
    if (!it->target_id || !m->mf.writeback) {
        o->note = "write-back: nothing to write back (no target id or no write-back field)";
        return;
    }
    char *fp = NULL;
    if (es_store_fingerprint_get(e->store, entity, m->mf.flow->to, it->target_id, &fp, NULL) ==
        ES_OK) {
        es_strlcpy(it->fp, fp, sizeof it->fp);
    }
    es_free(fp);
    o->note = "write-back repeated";
    o->skip = ES_SKIP_NOOP; /* done without a target write */
    it->wbid = it->target_id;
}

/* Writes the target ids back into the source records (one call for the batch). A failure
 * after this batch's target write keeps the change done and re-enqueues it as a follow-up
 * change that only repeats the write-back (enqueue_followups); a failure of a write-back
 * without a target write (no-op path, follow-up) fails the change like any write. */
static void write_back(struct worker *w, struct flow_rt *rt, struct mdm_ctx *m, struct item *items,
                       struct es_outcome *outs, size_t n, const char *entity)
{
    const struct es_flow_cfg *f = rt->cfg;
    struct es_engine *e = w->e;
    size_t nwb = 0;
    for (size_t i = 0; i < n; i++) {
        nwb += items[i].wbid != NULL;
    }
    if (nwb == 0) {
        return;
    }
    struct es_write *wbw = es_xcalloc(nwb, sizeof *wbw);
    struct es_write_result *wbr = es_xcalloc(nwb, sizeof *wbr);
    size_t *at = es_xcalloc(nwb, sizeof *at);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct item *it = &items[i];
        if (!it->wbid) {
            continue;
        }
        it->wbdata = es_mdm_writeback_record(&m->mf, it->wbid);
        wbw[k] = (struct es_write){it->ch->key, it->ch->key, NULL, it->wbdata};
        at[k++] = i;
    }
    struct es_err werr;
    es_err_clear(&werr);
    struct es_conn *sc = es__conn_get(e, &w->conns, f->from_idx, &werr);
    int rc = (int)werr.code;
    if (sc) {
        rc =
            es_conn_write_batch(sc, rt->source_object, ES_WRITE_UPDATE, NULL, wbw, nwb, wbr, &werr);
        es__budget_note(e, f->from_idx, sc);
    }
    for (k = 0; k < nwb; k++) {
        struct item *it = &items[at[k]];
        struct es_outcome *o = &outs[at[k]];
        struct es_write_result *r = &wbr[k];
        if (rc == ES_OK && r->code == ES_OK) {
            /* The source will report this write: it maps to what the target has. */
            fp_add(it, entity, m->echo_from, it->ch->key, it->fp);
            char note[sizeof it->note];
            snprintf(note, sizeof note, "%s%s%s written back to %s", o->note ? o->note : "",
                     o->note ? "; " : "", it->wbid, m->mf.writeback);
            memcpy(it->note, note, sizeof note);
            o->note = it->note;
            continue;
        }
        struct es_err fe = r->code != ES_OK ? r->err : werr;
        if (fe.code == ES_OK) {
            fe.code = r->code != ES_OK ? r->code : (rc != ES_OK ? (enum es_code)rc : ES_EINTERNAL);
        }
        es_err_prefix(&fe, "write-back of %s to %s", m->mf.writeback, f->from);
        if (it->written >= 0) {
            it->followup = 1;
            snprintf(it->note, sizeof it->note, "written to %s; %s: retried as a new change", f->to,
                     fe.msg);
            o->note = it->note;
        } else {
            it->err = fe;
            it->sys = f->from;
        }
    }
    es_write_results_release(wbr, nwb);
    es_free(at);
    es_free(wbr);
    es_free(wbw);
}

/* Re-enqueues the changes whose write-back failed after their target write (same key, a
 * version marked WB_MARK). Such a follow-up change only repeats the write-back: its payload
 * is never written to the target again (a newer change of the record may have been written
 * meanwhile). If the enqueue fails the changes fail as a whole instead: the retry writes the
 * target again, idempotently. */
static void enqueue_followups(struct es_engine *e, const struct es_flow_cfg *f, struct item *items,
                              size_t n, int64_t now)
{
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        nf += (size_t)items[i].followup;
    }
    if (nf == 0) {
        return;
    }
    struct es_change_in *in = es_xcalloc(nf, sizeof *in);
    char **versions = es_xcalloc(nf, sizeof *versions);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct es_change *ch = items[i].ch;
        if (!items[i].followup) {
            continue;
        }
        versions[k] = es_xasprintf("%s" WB_MARK "%" PRId64, ch->version ? ch->version : "", now);
        in[k] =
            (struct es_change_in){f->name, ch->key, versions[k], 0, ch->payload, ch->payload_len};
        k++;
    }
    struct es_err err;
    es_err_clear(&err);
    if (es_store_enqueue(e->store, in, nf, NULL, 0, NULL, &err) != ES_OK) {
        for (size_t i = 0; i < n; i++) {
            if (items[i].followup) {
                items[i].followup = 0;
                items[i].err = err;
            }
        }
    }
    for (k = 0; k < nf; k++) {
        es_free(versions[k]);
    }
    es_free(versions);
    es_free(in);
}

/* A change event may carry only the fields that changed (Salesforce CDC updates, e.g. the
 * echo of a write-back: {Id, SAP_Customer_No__c}). Such a record is marked by its connector
 * (ES_RECORD_PARTIAL); it, and any record that fails to map, is replaced by the whole record
 * read from the source (the current state is what the target should get). Returns 1 when it->src
 * was replaced. A transient read failure makes the change retry instead of going to review. */
static int hydrate(struct worker *w, struct flow_rt *rt, struct item *it)
{
    const struct es_flow_cfg *f = rt->cfg;
    struct es_err gerr;
    es_err_clear(&gerr);
    struct es_conn *sc = es__conn_get(w->e, &w->conns, f->from_idx, &gerr);
    json_t *full = NULL;
    int rc = sc ? es_conn_get(sc, rt->source_object, it->ch->key, &full, &gerr) : (int)gerr.code;
    if (rc == ES_OK && json_is_object(full)) {
        json_decref(it->src);
        it->src = full;
        return 1;
    }
    json_decref(full);
    enum es_class cls = es_code_class((enum es_code)rc);
    if (rc != ES_EINVAL &&
        (cls == ES_CLASS_TRANSIENT || cls == ES_CLASS_RATE_LIMITED || cls == ES_CLASS_AUTH)) {
        es_err_clear(&it->err);
        it->err = gerr;
        it->sys = f->from;
    }
    return 0;
}

/* Leases and works one batch of flow rt. Returns the number of changes leased. */
static size_t work_flow(struct worker *w, struct flow_rt *rt)
{
    struct es_engine *e = w->e;
    const struct es_flow_cfg *f = rt->cfg;
    const struct es_entity_cfg *ent = &e->cfg->entities[f->entity_idx];
    struct es_log_ctx lc = {f->name, f->to};
    struct es_change *ch = NULL;
    size_t n = 0;
    struct es_err err;
    es_err_clear(&err);
    int64_t t0 = es_clock_mono_ms();
    if (es_store_lease(e->store, f->name, (size_t)f->batch_size, es_clock_wall_ms(),
                       e->opts.lease_ms, &ch, &n, &err) != ES_OK) {
        es_log_err(&lc, ES_LOG_ERROR, &err);
        es__note_error(e, &err);
        return 0;
    }
    if (n == 0) {
        return 0;
    }
    /* One token per leased batch; the keeper renews it while this batch is in our hands. */
    uint64_t token = ch[0].lease;
    es__keeper_hold(e, token);
    struct item *items = es_xcalloc(n, sizeof *items);
    struct es_write *writes = es_xcalloc(n, sizeof *writes);
    struct es_write_result *results = es_xcalloc(n, sizeof *results);
    struct es_outcome *outs = es_xcalloc(n, sizeof *outs);
    size_t nw = 0;
    int pause = 0;
    struct xref_ud xud = {e, f};
    struct mdm_ctx m;
    mdm_init(&m, e, f);
    if (m.mf.writeback_refused[0]) {
        es_log(&lc, ES_LOG_DEBUG, "no write-back: %s", m.mf.writeback_refused);
    }
    es_err_clear(&err);
    struct es_conn *conn = es__conn_get(e, &w->conns, f->to_idx, &err);
    enum es_write_op op = ES_WRITE_UPSERT;
    int mixed = 0;

    for (size_t i = 0; i < n; i++) {
        struct item *it = &items[i];
        it->ch = &ch[i];
        it->written = -1;
        outs[i].id = ch[i].id;
        outs[i].lease = ch[i].lease;
        outs[i].leased = &ch[i];
        if (!conn) {
            it->err = err;
            continue;
        }
        char *tid = NULL;
        if (es_store_xref_lookup(e->store, ent->name, f->from, ch[i].key, f->to, &tid, NULL) ==
            ES_OK) {
            it->target_id = tid;
        }
        if (!ch[i].deleted && is_followup(&ch[i])) {
            followup_item(e, &m, it, &outs[i], ent->name);
            continue;
        }
        if (!ch[i].deleted) {
            json_error_t jerr;
            it->src = ch[i].payload ? json_loadb(ch[i].payload, ch[i].payload_len, 0, &jerr) : NULL;
            if (!it->src) {
                es_err_set(&it->err, ES_EPOISON, "payload is not JSON: %s",
                           ch[i].payload ? jerr.text : "no payload");
                continue;
            }
            int hydrated = 0;
            if (json_is_true(json_object_get(it->src, ES_RECORD_PARTIAL))) {
                /* Only the changed fields: map the whole current record instead. */
                json_object_del(it->src, ES_RECORD_PARTIAL);
                hydrated = hydrate(w, rt, it);
                if (!hydrated && it->err.code != ES_OK) {
                    continue; /* the source did not answer: retry later */
                }
            }
            int rc = es__mapping_apply(rt->map, it->src, &it->mapped, map_xref, &xud, &it->err);
            if (rc == ES_EVALIDATION && !hydrated && hydrate(w, rt, it)) {
                es_err_clear(&it->err);
                rc = es__mapping_apply(rt->map, it->src, &it->mapped, map_xref, &xud, &it->err);
            }
            if (rc != ES_OK) {
                continue;
            }
            /* Master-data rules: what this flow may write into an existing record. */
            struct es_mdm_plan plan;
            es_mdm_plan_write(&m.mf, it->target_id != NULL, it->mapped, NULL, &plan);
            update_fp(&m, it->mapped, it->target_id != NULL, it->fp);
            if (plan.action == ES_MDM_SKIP) {
                es_strlcpy(it->note, plan.reason, sizeof it->note);
                outs[i].state = ES_CHANGE_DONE;
                outs[i].note = it->note;
                outs[i].skip = ES_SKIP_NOOP; /* done without a target write */
                if (es_mdm_writeback_needed(&m.mf, it->src, it->target_id)) {
                    it->wbid = it->target_id;
                }
                continue;
            }
            if (it->target_id && skip_unchanged(e, &m, it, &outs[i], ent->name)) {
                if (es_mdm_writeback_needed(&m.mf, it->src, it->target_id)) {
                    it->wbid = it->target_id; /* e.g. a write-back that failed before */
                }
                continue;
            }
            if (plan.action == ES_MDM_REVIEW) {
                recheck_conflict(conn, rt, &m, it, &plan);
            }
            if (it->err.code != ES_OK) {
                continue;
            }
            if (plan.action == ES_MDM_REVIEW) {
                es_err_set(&it->err, ES_ECONFLICT, "%s", plan.reason);
                es_err_hint(&it->err,
                            "decide which value wins, fix it in %s, then resolve the "
                            "review item",
                            ent->system_of_record ? ent->system_of_record : f->to);
                continue;
            }
            if (plan.action == ES_MDM_WRITE_SUBSET) {
                es_strlcpy(it->note, plan.reason, sizeof it->note);
            }
            if (f->external_id) {
                json_t *mv = json_object_get(it->mapped, f->external_id);
                it->match = json_is_string(mv) ? json_string_value(mv) : NULL;
            }
        } else if (!it->target_id && !f->external_id) {
            outs[i].state = ES_CHANGE_DONE;
            outs[i].note = "deleted at the source; never written to the target";
            outs[i].skip = ES_SKIP_NOOP;
            continue;
        }
        enum es_write_op this_op = write_op(f, ch[i].deleted);
        if (nw == 0) {
            op = this_op;
        } else if (this_op != op) {
            /* One call has one operation: the rest waits for the next batch. */
            mixed = 1;
            outs[i].state = ES_CHANGE_PENDING;
            outs[i].note = "deferred: different operation in the same batch";
            continue;
        }
        it->written = (int)nw;
        writes[nw].key = ch[i].key;
        writes[nw].target_id = it->target_id;
        writes[nw].match = it->match;
        writes[nw].data = it->mapped;
        nw++;
    }
    (void)mixed;

    if (nw > 0) {
        struct es_err werr;
        es_err_clear(&werr);
        int rc = es_conn_write_batch(conn, rt->target_object, op, f->external_id, writes, nw,
                                     results, &werr);
        es__budget_note(e, f->to_idx, conn);
        for (size_t i = 0; i < n; i++) {
            struct item *it = &items[i];
            if (it->written < 0) {
                continue;
            }
            struct es_write_result *r = &results[it->written];
            if (rc != ES_OK && r->code == ES_OK) {
                it->err = werr; /* the batch as a whole failed */
            } else if (r->code != ES_OK) {
                it->err = r->err;
                it->err.code = r->code;
            } else {
                outs[i].state = ES_CHANGE_DONE;
                if (it->note[0]) {
                    outs[i].note = it->note;
                }
                const char *tid = r->target_id ? r->target_id : it->target_id;
                it->xref = (struct es_xref_in){ent->name, f->from, it->ch->key,
                                               f->to,     tid,     it->fp[0] ? it->fp : NULL};
                if (tid && !it->ch->deleted) {
                    outs[i].xref = &it->xref;
                    prime_reverse(e, &m, it, r, ent->name, tid);
                    if (es_mdm_writeback_needed(&m.mf, it->src, tid)) {
                        it->wbid = tid;
                    }
                }
            }
        }
    }
    write_back(w, rt, &m, items, outs, n, ent->name);

    int64_t now = es_clock_wall_ms();
    enqueue_followups(e, f, items, n, now);
    int64_t dur = es_clock_mono_ms() - t0;
    size_t ndone = 0, nfail = 0;
    for (size_t i = 0; i < n; i++) {
        struct item *it = &items[i];
        outs[i].duration_ms = dur;
        if (it->err.code != ES_OK) {
            outs[i].xref = NULL;
            outs[i].skip = ES_SKIP_NONE;
            fail_item(w, rt, it, &outs[i], now, &pause);
            if (!conn && (outs[i].state == ES_CHANGE_DEAD || outs[i].state == ES_CHANGE_REVIEW)) {
                /* The target cannot be opened: not the record's fault. Give it back and
                 * pause the flow instead of parking every change. */
                outs[i].state = ES_CHANGE_PENDING;
                pause = 1;
            }
            nfail++;
        } else if (outs[i].state == ES_CHANGE_DONE) {
            outs[i].fps = it->fps;
            outs[i].nfps = it->nfps;
            ndone++;
        }
    }
    if (pause) {
        char reason[160];
        const struct es_err *ae = NULL;
        for (size_t i = 0; i < n && !ae; i++) {
            if (es_code_class(items[i].err.code) == ES_CLASS_AUTH) {
                ae = &items[i].err;
            }
        }
        if (ae || conn) {
            snprintf(reason, sizeof reason, "auth: %s", ae ? ae->msg : "credentials refused");
        } else {
            snprintf(reason, sizeof reason, "cannot open system %s: %s", f->to, err.msg);
        }
        struct es_err perr;
        es_err_clear(&perr);
        if (es_store_flow_pause(e->store, f->name, reason, &perr) != ES_OK) {
            es_log_err(&lc, ES_LOG_ERROR, &perr);
        }
        es_log(&lc, ES_LOG_ERROR,
               "alert: flow paused: %s; fix the cause, then run 'erpsync flow resume %s'", reason,
               f->name);
    }
    es_err_clear(&err);
    int crc = es_store_complete(e->store, outs, n, now, &err);
    es__keeper_release(e, token);
    if (crc != ES_OK) {
        /* The leases expire and the changes are worked again: at-least-once. */
        es_log_err(&lc, ES_LOG_ERROR, &err);
        es__note_error(e, &err);
    } else {
        es__note_error(e, NULL);
        size_t stale = 0;
        for (size_t i = 0; i < n; i++) {
            stale += (size_t)outs[i].stale;
        }
        es_log(&lc, ES_LOG_DEBUG, "batch of %zu: %zu done, %zu failed, %zu stale leases", n, ndone,
               nfail, stale);
    }

    for (size_t i = 0; i < n; i++) {
        json_decref(items[i].src);
        json_decref(items[i].mapped);
        json_decref(items[i].wbdata);
        es_free(items[i].target_id);
    }
    mdm_release(&m);
    es_write_results_release(results, nw);
    es_free(results);
    es_free(writes);
    es_free(outs);
    es_free(items);
    es_changes_free(ch, n);
    return n;
}

/* True when no enabled, running flow has an open change (pending, leased, retry). */
static int drained(struct es_engine *e)
{
    for (size_t i = 0; i < e->nflows; i++) {
        if (!e->flows[i].cfg->enabled) {
            continue;
        }
        struct es_flow_stats st;
        if (es_store_stats(e->store, e->flows[i].cfg->name, 0, &st, NULL) != ES_OK) {
            return 0;
        }
        if (st.paused) {
            continue;
        }
        if (st.count[ES_CHANGE_PENDING] + st.count[ES_CHANGE_LEASED] + st.count[ES_CHANGE_RETRY]) {
            return 0;
        }
    }
    return 1;
}

void *es__worker_main(void *arg)
{
    struct worker *w = arg;
    struct es_engine *e = w->e;
    size_t turn = w->idx;
    while (!atomic_load(&e->stopping)) {
        size_t did = 0;
        pthread_rwlock_rdlock(&e->cfg_lock);
        for (size_t k = 0; k < e->nflows && !atomic_load(&e->stopping); k++) {
            struct flow_rt *rt = &e->flows[(turn + k) % e->nflows];
            if (rt->cfg->enabled) {
                did += work_flow(w, rt);
            }
        }
        turn++;
        int done = 0;
        if (!did && e->opts.once && atomic_load(&e->triggers_done)) {
            done = drained(e);
        }
        pthread_rwlock_unlock(&e->cfg_lock);
        if (done) {
            atomic_store(&e->stopping, 1);
            es__wake(e);
            break;
        }
        if (!did) {
            es__nap(e, e->opts.tick_ms);
        }
    }
    return NULL;
}
