/* SPDX-License-Identifier: MIT */
/*
 * The sync engine: triggers (realtime enqueue, poll, batch), the scheduler, worker threads
 * that lease changes from the journal, map them, write them to the target connector and
 * commit each outcome (done / retry / review / dead) with its xref and fingerprint.
 *
 * Invariants and contracts:
 *  - es_engine_enqueue() returns ES_OK only after the changes are durably committed; many
 *    concurrent callers share one transaction and one fsync (group commit). On error nothing
 *    of that call is guaranteed stored: the caller answers 5xx and the sender retries
 *    (idempotent: (flow, key, version) is unique).
 *  - Outcomes by failure class (core/err.h es_code_class): transient and rate_limited ->
 *    retry with exponential backoff and jitter (honouring err.retry_after) up to the flow's
 *    retry.max_attempts, then dead; validation, business, conflict, not_found -> review;
 *    auth -> the change goes back to pending and the flow is paused (alert log line);
 *    poison, internal -> dead. Nothing leaves the journal without a final state.
 *  - The engine borrows the config: it must outlive the engine (es_engine_reload swaps it).
 *  - Every function here is thread-safe unless marked otherwise.
 */
#ifndef ES_ENGINE_ENGINE_H
#define ES_ENGINE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/err.h"
#include "store/store.h"

struct es_engine;

struct es_engine_opts {
    int once;         /* run every trigger once, drain the queue, then stop by itself */
    int no_triggers;  /* do not run poll/batch triggers (tests; realtime only) */
    int64_t lease_ms; /* lease length; 0 = 60 s */
    int64_t tick_ms;  /* scheduler/worker idle sleep; 0 = 200 ms */
    size_t workers;   /* 0 = cfg->workers */
};

/* What /healthz needs. */
struct es_engine_health {
    int running; /* threads started and not stopping */
    int stopping;
    int64_t started_ms;
    size_t workers;
    size_t paused_flows;
    int64_t oldest_open_ms; /* oldest pending/leased/retry change over all flows, 0 = none */
    int store_ok;           /* the last store call succeeded */
    char last_error[256];   /* last store/engine error message, "" when none */
};

/**
 * Creates an engine over cfg: opens the store (cfg->store), compiles every enabled flow's
 * mapping, checks connectors exist. Does not start threads.
 * Errors: ES_ECONFIG (mapping or connector problem, detail in err), ES_ESTORE.
 * OUT: *out, free with es_engine_free().
 */
ES_NODISCARD int es_engine_new(const struct es_config *cfg, const struct es_engine_opts *opts,
                               struct es_engine **out, struct es_err *err);
/** Recovers leases left by a crash, then starts the committer, scheduler and worker threads. */
ES_NODISCARD int es_engine_start(struct es_engine *e, struct es_err *err);
/** Asks the threads to stop: triggers stop at once, workers finish the batch in hand. */
void es_engine_request_stop(struct es_engine *e);
/** Waits until the engine has stopped (after request_stop, or by itself with opts.once). */
void es_engine_wait(struct es_engine *e);
/** True once a stop was requested or the engine stopped by itself (--once drained). */
int es_engine_stopping(struct es_engine *e);
/** Stops (drains in-flight batches) and frees. NULL-tolerant. */
void es_engine_free(struct es_engine *e);
/** Swaps in a new config (SIGHUP): flows are looked up by name; the store URL must not
 *  change. The old config must stay alive until this returns; free it afterwards. */
ES_NODISCARD int es_engine_reload(struct es_engine *e, const struct es_config *cfg,
                                  struct es_err *err);

/**
 * The realtime trigger (webhooks). Enqueues every record of `records` as a change of flow
 * (payload = the record's JSON, key, version, deleted) and returns after the durable commit
 * shared with concurrent callers. A record without version gets es_engine_json_hash() of
 * its data.
 * Errors: ES_EINVAL (unknown or disabled flow), ES_ESTORE (commit failed), ES_EINTERNAL
 * (engine stopping). Thread context: any thread, blocks for the commit (~ one fsync).
 */
ES_NODISCARD int es_engine_enqueue(struct es_engine *e, const char *flow,
                                   const struct es_batch *records, struct es_err *err);

/* One flow's share of a multi-flow enqueue: the records and/or ready changes (all borrowed
 * for the call) go to flow. */
struct es_engine_part {
    const char *flow;
    const struct es_batch *records; /* may be NULL */
    /* Changes given as text (the webhook fast path, no JSON tree): key, version (required)
     * and payload are used, flow is ignored (the part's). May be NULL. */
    const struct es_change_in *changes;
    size_t nchanges;
};

/**
 * es_engine_enqueue() for several flows at once: the changes of every part are committed in
 * ONE transaction (with those of concurrent callers), so a webhook whose records several flows
 * take is durable for all of them, or for none. Parts that share one es_batch share its
 * payload text (serialised once). A change without a version in `changes` is ES_EINVAL.
 * Errors: ES_EINVAL (a part names an unknown or disabled flow: nothing is enqueued),
 * ES_ESTORE (commit failed: nothing of this call is stored), ES_EINTERNAL.
 * Thread context: any thread, blocks for the commit.
 */
ES_NODISCARD int es_engine_enqueue_multi(struct es_engine *e, const struct es_engine_part *parts,
                                         size_t nparts, struct es_err *err);

/* Accessors for the server, CLI and tests. */
const struct es_config *es_engine_config(const struct es_engine *e);
struct es_store *es_engine_store(struct es_engine *e);
void es_engine_health(struct es_engine *e, struct es_engine_health *out);
/** The remote API budget of system `system` as its connector last reported it (Salesforce:
 *  Sforce-Limit-Info), published by the threads that own the connector instances after
 *  their calls. *used and *max are -1 while unknown (no call yet, or the connector does not
 *  report one). Returns ES_OK, or ES_EINVAL for an unknown system. Lock-free read. */
ES_NODISCARD int es_engine_budget(struct es_engine *e, const char *system, long *used, long *max,
                                  struct es_err *err);
/** Figures per configured flow, in config order. OUT: *out (es_free), *n. */
ES_NODISCARD int es_engine_stats(struct es_engine *e, struct es_flow_stats **out, size_t *n,
                                 struct es_err *err);
/** Pause (reason non-NULL) or resume (reason NULL) a flow; ES_EINVAL for an unknown flow. */
ES_NODISCARD int es_engine_pause(struct es_engine *e, const char *flow, const char *reason,
                                 struct es_err *err);
/** Dead letters / review items: list/show via es_store_list/es_store_get on
 *  es_engine_store(); replay and resolve here (they wake the workers). */
ES_NODISCARD int es_engine_replay(struct es_engine *e, int64_t id, const char *note,
                                  struct es_err *err);
ES_NODISCARD int es_engine_resolve(struct es_engine *e, int64_t id, const char *note,
                                   struct es_err *err);

/* ---- Outcome policy (pure; exported for tests) ---- */

/** What to do with a change that failed with err after `attempts` leases:
 *  returns the next state (RETRY, REVIEW, DEAD, or PENDING for auth = pause the flow) and
 *  for RETRY sets *next_at_ms = now + backoff (base * 2^(attempts-1), capped, +- 20 % jitter,
 *  at least err->retry_after). rnd in [0,1) picks the jitter. */
enum es_change_state es_engine_classify(const struct es_err *err, int attempts,
                                        const struct es_retry_cfg *retry, int64_t now_ms,
                                        double rnd, int64_t *next_at_ms);

/** 64-bit FNV-1a of a JSON value in canonical form (sorted keys, compact) as 16 hex digits:
 *  fingerprints and versions of records without one (not cryptographic). */
void es_engine_json_hash(const json_t *v, char out[17]);
/* Fills c (flow, key, deleted, payload, version) from a received record: the payload is the
 * record's data as compact JSON, the version the record's or, without one, a hash of the data
 * ("deleted-" first for a delete). OUT: *payload and *version own what c points to (either
 * may be NULL), kept until the enqueue returned: *payload comes from jansson (C library free),
 * *version from es_xasprintf (es_free). */
void es_engine_change_from_record(const struct es_record *r, const char *flow,
                                  struct es_change_in *c, char **payload, char **version);

#endif
