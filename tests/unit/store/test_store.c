/* SPDX-License-Identifier: MIT */
/*
 * Store semantics on real SQLite files in a temporary directory: idempotent enqueue, lease
 * expiry and lost leases, ordering per record key, cursors committed with their changes,
 * state transitions (retry, review, dead, replay, resolve), xref and fingerprints, recovery
 * and reopening the file, and the migration of a schema v1 file (written here with the v1 DDL)
 * to the current schema with its changes, leases and counters intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/mem.h"
#include "store/store.h"

struct fixture {
    char dir[64];
    char url[128];
    struct es_store *s;
};

static int setup(void **state)
{
    struct fixture *f = es_xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/es_store_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->url, sizeof f->url, "sqlite:%s/state.db", f->dir);
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_store_open(f->url, &f->s, &err), ES_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    es_store_close(f->s);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    es_free(f);
    return 0;
}

static struct es_change_in change(const char *flow, const char *key, const char *version)
{
    static char payload[64];
    snprintf(payload, sizeof payload, "{\"key\":\"%s\",\"v\":\"%s\"}", key, version);
    struct es_change_in c = {flow, key, version, 0, payload, strlen(payload)};
    return c;
}

static void enqueue1(struct es_store *s, const char *flow, const char *key, const char *version)
{
    struct es_change_in c = change(flow, key, version);
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_store_enqueue(s, &c, 1, NULL, 0, NULL, &err), ES_OK);
}

static struct es_flow_stats stats(struct es_store *s, const char *flow)
{
    struct es_flow_stats st;
    assert_int_equal(es_store_stats(s, flow, 0, &st, NULL), ES_OK);
    return st;
}

static void complete1(struct es_store *s, const struct es_change *c, enum es_change_state to,
                      int64_t next_at, int64_t now)
{
    struct es_outcome o = {.id = c->id, .lease = c->lease, .state = to, .next_at_ms = next_at};
    struct es_err e;
    es_err_clear(&e);
    if (to != ES_CHANGE_DONE) {
        es_err_set(&e, to == ES_CHANGE_RETRY ? ES_ETIMEOUT : ES_EVALIDATION, "failed %s", c->key);
        o.err = &e;
    }
    assert_int_equal(es_store_complete(s, &o, 1, now, NULL), ES_OK);
    assert_int_equal(o.stale, 0);
}

static void test_idempotent_enqueue(void **state)
{
    struct fixture *f = *state;
    struct es_change_in in[3] = {change("a", "k1", "1"), change("a", "k1", "1"),
                                 change("a", "k1", "2")};
    unsigned char added[3];
    assert_int_equal(es_store_enqueue(f->s, in, 3, NULL, 0, added, NULL), ES_OK);
    assert_int_equal(added[0], 1);
    assert_int_equal(added[1], 0);
    assert_int_equal(added[2], 1);
    assert_int_equal(es_store_enqueue(f->s, in, 1, NULL, 0, added, NULL), ES_OK);
    assert_int_equal(added[0], 0);
    struct es_flow_stats st = stats(f->s, "a");
    assert_int_equal(st.count[ES_CHANGE_PENDING], 2);
    assert_int_equal(st.enqueued, 2);
    assert_int_equal(st.duplicates, 2);
    assert_true(st.oldest_open_ms > 0);
}

static void test_lease_expiry_and_lost_lease(void **state)
{
    struct fixture *f = *state;
    enqueue1(f->s, "a", "k1", "1");
    struct es_change *c = NULL, *c2 = NULL;
    size_t n = 0;
    assert_int_equal(es_store_lease(f->s, "a", 10, 1000, 100, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].attempts, 1);
    assert_string_equal(c[0].payload, "{\"key\":\"k1\",\"v\":\"1\"}");
    assert_int_equal(stats(f->s, "a").count[ES_CHANGE_LEASED], 1);
    /* Still leased: nobody else gets it. */
    assert_int_equal(es_store_lease(f->s, "a", 10, 1050, 100, &c2, &n, NULL), ES_OK);
    assert_int_equal(n, 0);
    /* Expired: it comes back, with a new lease token. */
    assert_int_equal(es_store_lease(f->s, "a", 10, 2000, 100, &c2, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c2[0].id, c[0].id);
    assert_int_equal(c2[0].attempts, 2);
    assert_true(c2[0].lease != c[0].lease);
    /* The first holder's outcome is ignored: it lost the lease. */
    struct es_outcome o = {.id = c[0].id, .lease = c[0].lease, .state = ES_CHANGE_DONE};
    assert_int_equal(es_store_complete(f->s, &o, 1, 2001, NULL), ES_OK);
    assert_int_equal(o.stale, 1);
    assert_int_equal(stats(f->s, "a").count[ES_CHANGE_LEASED], 1);
    complete1(f->s, &c2[0], ES_CHANGE_DONE, 0, 2002);
    struct es_flow_stats st = stats(f->s, "a");
    assert_int_equal(st.count[ES_CHANGE_DONE], 1);
    assert_int_equal(st.count[ES_CHANGE_LEASED], 0);
    assert_int_equal(st.last_success_ms, 2002);
    assert_int_equal(st.oldest_open_ms, 0);
    es_changes_free(c, 1);
    es_changes_free(c2, 1);
}

static void test_lease_renew(void **state)
{
    struct fixture *f = *state;
    enqueue1(f->s, "a", "k1", "1");
    enqueue1(f->s, "a", "k2", "1");
    struct es_change *c = NULL, *c2 = NULL;
    size_t n = 0;
    assert_int_equal(es_store_lease(f->s, "a", 10, 1000, 100, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].lease, c[1].lease);
    /* Renewed before it expires: at 2000 (past the first expiry at 1100) nobody takes it. */
    assert_int_equal(es_store_renew(f->s, c[0].lease, 5000, NULL), ES_OK);
    /* A renewal never shortens a lease. */
    assert_int_equal(es_store_renew(f->s, c[0].lease, 1500, NULL), ES_OK);
    assert_int_equal(es_store_lease(f->s, "a", 10, 2000, 100, &c2, &n, NULL), ES_OK);
    assert_int_equal(n, 0);
    struct es_change one;
    assert_int_equal(es_store_get(f->s, c[1].id, &one, NULL), ES_OK);
    assert_int_equal(one.lease_until_ms, 5000);
    es_change_release(&one);
    /* The holder completes normally (not stale). */
    complete1(f->s, &c[0], ES_CHANGE_DONE, 0, 2001);
    /* Past the renewed expiry the rest of the batch comes back; the old token is gone. */
    assert_int_equal(es_store_lease(f->s, "a", 10, 6000, 100, &c2, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c2[0].id, c[1].id);
    assert_int_equal(es_store_renew(f->s, c[0].lease, 9000, NULL), ES_ENOTFOUND);
    es_changes_free(c, 2);
    es_changes_free(c2, 1);
}

static void test_order_per_key(void **state)
{
    struct fixture *f = *state;
    enqueue1(f->s, "a", "k1", "1");
    enqueue1(f->s, "a", "k1", "2");
    enqueue1(f->s, "a", "k2", "1");
    enqueue1(f->s, "b", "k1", "1"); /* another flow: independent */
    struct es_change *c = NULL;
    size_t n = 0;
    assert_int_equal(es_store_lease(f->s, "a", 10, 1000, 60000, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].key, "k1");
    assert_string_equal(c[0].version, "1");
    assert_string_equal(c[1].key, "k2");
    /* While k1 v1 is leased, k1 v2 waits. */
    struct es_change *d = NULL;
    size_t nd = 0;
    assert_int_equal(es_store_lease(f->s, "a", 10, 1000, 60000, &d, &nd, NULL), ES_OK);
    assert_int_equal(nd, 0);
    /* A retry in the future keeps blocking the newer version of the same key. */
    complete1(f->s, &c[0], ES_CHANGE_RETRY, 5000, 1001);
    assert_int_equal(es_store_lease(f->s, "a", 10, 2000, 60000, &d, &nd, NULL), ES_OK);
    assert_int_equal(nd, 0);
    assert_int_equal(stats(f->s, "a").count[ES_CHANGE_RETRY], 1);
    /* Due: v1 again, not v2. */
    assert_int_equal(es_store_lease(f->s, "a", 10, 6000, 60000, &d, &nd, NULL), ES_OK);
    assert_int_equal(nd, 1);
    assert_string_equal(d[0].version, "1");
    assert_int_equal(d[0].attempts, 2);
    complete1(f->s, &d[0], ES_CHANGE_DONE, 0, 6001);
    es_changes_free(d, nd);
    assert_int_equal(es_store_lease(f->s, "a", 10, 6002, 60000, &d, &nd, NULL), ES_OK);
    assert_int_equal(nd, 1);
    assert_string_equal(d[0].version, "2");
    es_changes_free(d, nd);
    es_changes_free(c, n);
    assert_int_equal(stats(f->s, "b").count[ES_CHANGE_PENDING], 1);
}

static void test_cursor_atomic(void **state)
{
    struct fixture *f = *state;
    struct es_change_in in[2] = {change("p", "k1", "1"), change("p", "k2", "1")};
    struct es_cursor_in cur = {"p", "watermark", "42"};
    assert_int_equal(es_store_enqueue(f->s, in, 2, &cur, 1, NULL, NULL), ES_OK);
    char *wm = NULL;
    assert_int_equal(es_store_cursor_get(f->s, "p", "watermark", &wm, NULL), ES_OK);
    assert_string_equal(wm, "42");
    es_free(wm);
    /* A page that fails half-way stores neither its changes nor its watermark. */
    struct es_change_in bad[2] = {change("p", "k3", "1"), {"p", NULL, "1", 0, NULL, 0}};
    struct es_cursor_in cur2 = {"p", "watermark", "99"};
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_store_enqueue(f->s, bad, 2, &cur2, 1, NULL, &err), ES_EINVAL);
    assert_int_equal(es_store_cursor_get(f->s, "p", "watermark", &wm, NULL), ES_OK);
    assert_string_equal(wm, "42");
    es_free(wm);
    struct es_flow_stats st = stats(f->s, "p");
    assert_int_equal(st.count[ES_CHANGE_PENDING], 2);
    assert_int_equal(st.enqueued, 2);
    /* NULL deletes a cursor. */
    assert_int_equal(es_store_cursor_set(f->s, "p", "watermark", NULL, NULL), ES_OK);
    assert_int_equal(es_store_cursor_get(f->s, "p", "watermark", &wm, NULL), ES_OK);
    assert_null(wm);
}

static void test_review_dead_replay_resolve(void **state)
{
    struct fixture *f = *state;
    enqueue1(f->s, "a", "k1", "1");
    enqueue1(f->s, "a", "k2", "1");
    struct es_change *c = NULL;
    size_t n = 0;
    assert_int_equal(es_store_lease(f->s, "a", 10, 1000, 60000, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 2);
    complete1(f->s, &c[0], ES_CHANGE_REVIEW, 0, 1001);
    complete1(f->s, &c[1], ES_CHANGE_DEAD, 0, 1001);
    struct es_flow_stats st = stats(f->s, "a");
    assert_int_equal(st.count[ES_CHANGE_REVIEW], 1);
    assert_int_equal(st.count[ES_CHANGE_DEAD], 1);
    assert_int_equal(st.outcomes[ES_CHANGE_REVIEW], 1);

    struct es_change_filter flt = {"a", ES_CHANGE_REVIEW, 0, 0};
    struct es_change *l = NULL;
    size_t nl = 0;
    assert_int_equal(es_store_list(f->s, &flt, &l, &nl, NULL), ES_OK);
    assert_int_equal(nl, 1);
    assert_string_equal(l[0].key, "k1");
    assert_int_equal(l[0].last_code, ES_EVALIDATION);
    assert_string_equal(l[0].last_msg, "failed k1");
    es_changes_free(l, nl);

    struct es_err err;
    es_err_clear(&err);
    /* Resolve only applies to review items. */
    assert_int_equal(es_store_resolve(f->s, c[1].id, "x", &err), ES_EINVAL);
    assert_int_equal(es_store_resolve(f->s, c[0].id, "fixed by hand", NULL), ES_OK);
    assert_int_equal(es_store_replay(f->s, c[1].id, "after fix", NULL), ES_OK);
    es_err_clear(&err);
    assert_int_equal(es_store_replay(f->s, c[0].id, NULL, &err), ES_EINVAL); /* done now */
    st = stats(f->s, "a");
    assert_int_equal(st.count[ES_CHANGE_REVIEW], 0);
    assert_int_equal(st.count[ES_CHANGE_DEAD], 0);
    assert_int_equal(st.count[ES_CHANGE_DONE], 1);
    assert_int_equal(st.count[ES_CHANGE_PENDING], 1);
    struct es_change g;
    assert_int_equal(es_store_get(f->s, c[1].id, &g, NULL), ES_OK);
    assert_int_equal(g.state, ES_CHANGE_PENDING);
    assert_int_equal(g.attempts, 0);
    assert_string_equal(g.note, "after fix");
    es_change_release(&g);
    struct es_audit *a = NULL;
    size_t na = 0;
    assert_int_equal(es_store_audit(f->s, c[1].id, 10, &a, &na, NULL), ES_OK);
    assert_int_equal(na, 2);
    assert_int_equal(a[0].state, ES_CHANGE_DEAD);
    assert_int_equal(a[1].state, ES_CHANGE_PENDING);
    es_free(a);
    es_err_clear(&err);
    assert_int_equal(es_store_get(f->s, 999, &g, &err), ES_ENOTFOUND);
    es_changes_free(c, n);
}

static void test_xref_fingerprint(void **state)
{
    struct fixture *f = *state;
    enqueue1(f->s, "a", "S1", "1");
    struct es_change *c = NULL;
    size_t n = 0;
    assert_int_equal(es_store_lease(f->s, "a", 10, 1000, 60000, &c, &n, NULL), ES_OK);
    struct es_xref_in x = {"customer", "crm", "S1", "erp", "T9", "abc123"};
    struct es_outcome o = {.id = c[0].id, .lease = c[0].lease, .state = ES_CHANGE_DONE, .xref = &x};
    assert_int_equal(es_store_complete(f->s, &o, 1, 1001, NULL), ES_OK);
    char *id = NULL;
    assert_int_equal(es_store_xref_lookup(f->s, "customer", "crm", "S1", "erp", &id, NULL), ES_OK);
    assert_string_equal(id, "T9");
    es_free(id);
    assert_int_equal(es_store_xref_lookup(f->s, "customer", "erp", "T9", "crm", &id, NULL), ES_OK);
    assert_string_equal(id, "S1");
    es_free(id);
    assert_int_equal(es_store_xref_lookup(f->s, "customer", "crm", "S2", "erp", &id, NULL),
                     ES_ENOTFOUND);
    char *fp = NULL;
    assert_int_equal(es_store_fingerprint_get(f->s, "customer", "erp", "T9", &fp, NULL), ES_OK);
    assert_string_equal(fp, "abc123");
    es_free(fp);
    es_changes_free(c, n);

    /* A second change of the same record: skipped as an echo, with a write-back
     * fingerprint for the source; the global id lists both systems. */
    enqueue1(f->s, "a", "S1", "2");
    assert_int_equal(es_store_lease(f->s, "a", 10, 2000, 60000, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    struct es_fp_in wb = {"customer", "crm", "S1", "wb77"};
    struct es_outcome o2 = {.id = c[0].id,
                            .lease = c[0].lease,
                            .state = ES_CHANGE_DONE,
                            .skip = ES_SKIP_ECHO,
                            .fps = &wb,
                            .nfps = 1};
    assert_int_equal(es_store_complete(f->s, &o2, 1, 2001, NULL), ES_OK);
    es_changes_free(c, n);
    assert_int_equal(es_store_fingerprint_get(f->s, "customer", "crm", "S1", &fp, NULL), ES_OK);
    assert_string_equal(fp, "wb77");
    es_free(fp);
    struct es_flow_stats st = stats(f->s, "a");
    assert_int_equal(st.skipped[ES_SKIP_ECHO], 1);
    assert_int_equal(st.skipped[ES_SKIP_NOOP], 0);
    assert_int_equal(st.outcomes[ES_CHANGE_DONE], 2);

    char *g = NULL;
    struct es_xref_link *links = NULL;
    size_t nl = 0;
    assert_int_equal(es_store_xref_links(f->s, "customer", "erp", "T9", &g, &links, &nl, NULL),
                     ES_OK);
    assert_non_null(g);
    assert_int_equal(nl, 2);
    assert_string_equal(links[0].system, "crm");
    assert_string_equal(links[0].id, "S1");
    assert_string_equal(links[1].system, "erp");
    assert_string_equal(links[1].id, "T9");
    es_free(g);
    es_free(links);
    assert_int_equal(es_store_xref_links(f->s, "customer", "erp", "T0", &g, &links, &nl, NULL),
                     ES_ENOTFOUND);
}

static void test_recover_and_reopen(void **state)
{
    struct fixture *f = *state;
    enqueue1(f->s, "a", "k1", "1");
    enqueue1(f->s, "a", "k2", "1");
    struct es_change *c = NULL;
    size_t n = 0;
    assert_int_equal(es_store_lease(f->s, "a", 1, 1000, 600000, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    es_changes_free(c, n);
    es_store_close(f->s); /* as if the process died holding the lease */
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_store_open(f->url, &f->s, &err), ES_OK);
    assert_int_equal(stats(f->s, "a").count[ES_CHANGE_LEASED], 1);
    size_t rec = 0;
    assert_int_equal(es_store_recover(f->s, &rec, NULL), ES_OK);
    assert_int_equal(rec, 1);
    struct es_flow_stats st = stats(f->s, "a");
    assert_int_equal(st.count[ES_CHANGE_LEASED], 0);
    assert_int_equal(st.count[ES_CHANGE_PENDING], 2);
}

static struct es_change *lease_n(struct es_store *s, const char *flow, size_t max, int64_t now,
                                 int64_t ms, size_t *n)
{
    struct es_change *c = NULL;
    assert_int_equal(es_store_lease(s, flow, max, now, ms, &c, n, NULL), ES_OK);
    return c;
}

/* Two live leases of one flow (two workers): a newer version of a key held by the first is
 * deferred by the second and leased once the first completes it; a partly completed lease
 * that runs out gives back only what it still held. */
static void test_two_leases_key_order(void **state)
{
    struct fixture *f = *state;
    enqueue1(f->s, "a", "k1", "1");
    enqueue1(f->s, "a", "k2", "1");
    enqueue1(f->s, "a", "k3", "1");
    size_t n1 = 0, n2 = 0, n = 0;
    struct es_change *l1 = lease_n(f->s, "a", 2, 1000, 100, &n1);
    assert_int_equal(n1, 2);
    enqueue1(f->s, "a", "k1", "2");
    enqueue1(f->s, "a", "k4", "1");
    struct es_change *l2 = lease_n(f->s, "a", 10, 1050, 60000, &n2);
    assert_int_equal(n2, 2);
    assert_string_equal(l2[0].key, "k3");
    assert_string_equal(l2[1].key, "k4");
    assert_true(l2[0].lease != l1[0].lease);
    struct es_flow_stats st = stats(f->s, "a");
    assert_int_equal(st.count[ES_CHANGE_LEASED], 4);
    assert_int_equal(st.count[ES_CHANGE_PENDING], 1);
    struct es_change_filter flt = {"a", ES_CHANGE_PENDING, 0, 0};
    struct es_change *l = NULL;
    size_t nl = 0;
    assert_int_equal(es_store_list(f->s, &flt, &l, &nl, NULL), ES_OK);
    assert_int_equal(nl, 1);
    assert_string_equal(l[0].key, "k1");
    assert_string_equal(l[0].version, "2");
    es_changes_free(l, nl);
    flt.state = ES_CHANGE_LEASED;
    assert_int_equal(es_store_list(f->s, &flt, &l, &nl, NULL), ES_OK);
    assert_int_equal(nl, 4);
    assert_int_equal(l[3].lease_until_ms, 1050 + 60000);
    es_changes_free(l, nl);
    /* k1 v2 waits while the first lease holds k1 v1. */
    struct es_change *c = lease_n(f->s, "a", 10, 1060, 60000, &n);
    assert_int_equal(n, 0);
    complete1(f->s, &l1[0], ES_CHANGE_DONE, 0, 1061);
    c = lease_n(f->s, "a", 10, 1070, 60000, &n);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].key, "k1");
    assert_string_equal(c[0].version, "2");
    assert_int_equal(c[0].attempts, 1);
    complete1(f->s, &c[0], ES_CHANGE_DONE, 0, 1071);
    es_changes_free(c, n);
    /* The first lease ran out holding k2 only: k2 comes back, k1 v1 stays done. */
    c = lease_n(f->s, "a", 10, 2000, 60000, &n);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].key, "k2");
    assert_int_equal(c[0].attempts, 2);
    struct es_outcome o = {.id = l1[1].id, .lease = l1[1].lease, .state = ES_CHANGE_DONE};
    assert_int_equal(es_store_complete(f->s, &o, 1, 2001, NULL), ES_OK);
    assert_int_equal(o.stale, 1);
    complete1(f->s, &c[0], ES_CHANGE_DONE, 0, 2002);
    es_changes_free(c, n);
    struct es_change g;
    assert_int_equal(es_store_get(f->s, l1[0].id, &g, NULL), ES_OK);
    assert_int_equal(g.state, ES_CHANGE_DONE);
    es_change_release(&g);
    assert_int_equal(es_store_get(f->s, l2[1].id, &g, NULL), ES_OK);
    assert_int_equal(g.state, ES_CHANGE_LEASED);
    assert_int_equal(g.lease, l2[1].lease);
    es_change_release(&g);
    complete1(f->s, &l2[0], ES_CHANGE_DONE, 0, 2003);
    complete1(f->s, &l2[1], ES_CHANGE_RETRY, 9000, 2003);
    st = stats(f->s, "a");
    assert_int_equal(st.count[ES_CHANGE_DONE], 4);
    assert_int_equal(st.count[ES_CHANGE_RETRY], 1);
    assert_int_equal(st.count[ES_CHANGE_LEASED] + st.count[ES_CHANGE_PENDING], 0);
    assert_int_equal(st.oldest_open_ms > 0, 1);
    /* Retried changes are listed by flow and across flows. */
    struct es_change_filter rf = {"a", ES_CHANGE_RETRY, 0, 0};
    for (int pass = 0; pass < 2; pass++, rf.flow = NULL) {
        assert_int_equal(es_store_list(f->s, &rf, &l, &nl, NULL), ES_OK);
        assert_int_equal(nl, 1);
        assert_string_equal(l[0].key, "k4");
        assert_int_equal(l[0].next_at_ms, 9000);
        es_changes_free(l, nl);
    }
    es_changes_free(l1, n1);
    es_changes_free(l2, n2);
}

/* A batch of DONE outcomes with one duration is one audit row that counts them all; asked for
 * one change, the audit gives that change's share. */
static void test_audit_runs(void **state)
{
    struct fixture *f = *state;
    char key[8];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "x%d", i);
        enqueue1(f->s, "b", key, "1");
    }
    size_t n = 0;
    struct es_change *c = lease_n(f->s, "b", 10, 1000, 60000, &n);
    assert_int_equal(n, 5);
    struct es_outcome o[5];
    for (size_t i = 0; i < n; i++) {
        o[i] = (struct es_outcome){.id = c[i].id,
                                   .lease = c[i].lease,
                                   .state = ES_CHANGE_DONE,
                                   .duration_ms = 7,
                                   .leased = &c[i]};
    }
    o[4].note = "unchanged: the target already has this record";
    assert_int_equal(es_store_complete(f->s, o, n, 1001, NULL), ES_OK);
    struct es_audit *a = NULL;
    size_t na = 0;
    assert_int_equal(es_store_audit(f->s, 0, 10, &a, &na, NULL), ES_OK);
    assert_int_equal(na, 2); /* newest first: the noted one, then the run of four */
    assert_int_equal(a[0].count, 1);
    assert_string_equal(a[0].key, "x4");
    assert_int_equal(a[1].count, 4);
    assert_int_equal(a[1].change_id, c[0].id);
    assert_int_equal(a[1].duration_ms, 7);
    es_free(a);
    assert_int_equal(es_store_audit(f->s, c[2].id, 10, &a, &na, NULL), ES_OK);
    assert_int_equal(na, 1);
    assert_int_equal(a[0].change_id, c[2].id);
    assert_string_equal(a[0].key, "x2");
    assert_int_equal(a[0].count, 1);
    assert_int_equal(a[0].state, ES_CHANGE_DONE);
    es_free(a);
    struct es_change_filter flt = {"b", ES_CHANGE_DONE, c[1].id, 0};
    struct es_change *l = NULL;
    size_t nl = 0;
    assert_int_equal(es_store_list(f->s, &flt, &l, &nl, NULL), ES_OK);
    assert_int_equal(nl, 3); /* paging: after the second */
    assert_int_equal(l[0].id, c[2].id);
    assert_null(l[0].note);
    assert_non_null(l[2].note);
    assert_non_null(strstr(l[2].note, "unchanged"));
    es_changes_free(l, nl);
    struct es_flow_stats st = stats(f->s, "b");
    assert_int_equal(st.count[ES_CHANGE_DONE], 5);
    assert_int_equal(st.outcomes[ES_CHANGE_DONE], 5);
    es_changes_free(c, n);
}

/* A lease call that finds nothing writes nothing (workers poll idle flows often): the
 * write-ahead log does not grow. */
static void test_idle_lease_writes_nothing(void **state)
{
    struct fixture *f = *state;
    enqueue1(f->s, "a", "k1", "1");
    size_t n = 0;
    struct es_change *c = lease_n(f->s, "a", 10, 1000, 60000, &n);
    assert_int_equal(n, 1);
    complete1(f->s, &c[0], ES_CHANGE_DONE, 0, 1001);
    es_changes_free(c, n);
    char wal[160];
    snprintf(wal, sizeof wal, "%s/state.db-wal", f->dir);
    struct stat before, after;
    assert_int_equal(stat(wal, &before), 0);
    for (int i = 0; i < 50; i++) {
        c = lease_n(f->s, "a", 10, 2000 + i, 60000, &n);
        assert_int_equal(n, 0);
        c = lease_n(f->s, "never-used", 10, 2000 + i, 60000, &n);
        assert_int_equal(n, 0);
    }
    assert_int_equal(stat(wal, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
}

/* Retention: done changes and old audit rows go; open, parked and leased ones stay; a pruned
 * version enqueued again is a new change with a new id. */
static void test_prune(void **state)
{
    struct fixture *f = *state;
    for (int i = 1; i <= 5; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        enqueue1(f->s, "a", key, "1");
    }
    enqueue1(f->s, "b", "x", "1");
    size_t n = 0, nb = 0, n4 = 0;
    struct es_change *c = lease_n(f->s, "a", 3, 1000, 60000, &n);
    assert_int_equal(n, 3);
    complete1(f->s, &c[0], ES_CHANGE_DONE, 0, 1001);
    complete1(f->s, &c[1], ES_CHANGE_REVIEW, 0, 1001);
    complete1(f->s, &c[2], ES_CHANGE_DONE, 0, 1001);
    struct es_change *d = lease_n(f->s, "a", 1, 1002, 60000, &n4);
    assert_string_equal(d[0].key, "k4");
    complete1(f->s, &d[0], ES_CHANGE_RETRY, 9000000, 1003);
    struct es_change *b = lease_n(f->s, "b", 5, 1004, 60000, &nb);
    complete1(f->s, &b[0], ES_CHANGE_DONE, 0, 1005);
    size_t n5 = 0;
    struct es_change *k5 = lease_n(f->s, "a", 1, 1006, 60000, &n5); /* held while pruning */
    assert_string_equal(k5[0].key, "k5");

    size_t gone = 0, audits = 0;
    assert_int_equal(es_store_prune(f->s, 0, &gone, &audits, NULL), ES_OK);
    assert_int_equal(gone + audits, 0);
    assert_int_equal(es_store_prune(f->s, INT64_MAX, &gone, &audits, NULL), ES_OK);
    assert_int_equal(gone, 3);   /* k1, k3 and b's x */
    assert_int_equal(audits, 5); /* k1, k2, k3, k4 and x: one outcome each */
    struct es_flow_stats st = stats(f->s, "a");
    assert_int_equal(st.count[ES_CHANGE_DONE], 0);
    assert_int_equal(st.count[ES_CHANGE_REVIEW], 1);
    assert_int_equal(st.count[ES_CHANGE_RETRY], 1);
    assert_int_equal(st.count[ES_CHANGE_LEASED], 1);
    assert_int_equal(stats(f->s, "b").count[ES_CHANGE_DONE], 0);
    struct es_change g;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_store_get(f->s, c[0].id, &g, &err), ES_ENOTFOUND);
    assert_int_equal(es_store_get(f->s, c[1].id, &g, NULL), ES_OK);
    assert_int_equal(g.state, ES_CHANGE_REVIEW);
    es_change_release(&g);
    /* The held change is still the lease's: its outcome counts. */
    complete1(f->s, &k5[0], ES_CHANGE_DONE, 0, 1007);
    assert_int_equal(es_store_replay(f->s, c[1].id, NULL, NULL), ES_OK);
    /* Pruned: the same version is a new change now, after every id handed out before. */
    struct es_change_in again = change("a", "k1", "1");
    unsigned char added = 0;
    assert_int_equal(es_store_enqueue(f->s, &again, 1, NULL, 0, &added, NULL), ES_OK);
    assert_int_equal(added, 1);
    struct es_change *e = lease_n(f->s, "a", 10, 2000, 60000, &n);
    assert_int_equal(n, 2); /* the replayed k2, then the new k1 */
    assert_int_equal(e[0].id, c[1].id);
    assert_string_equal(e[1].key, "k1");
    assert_true(e[1].id > k5[0].id);
    es_changes_free(e, n);
    es_changes_free(c, 3);
    es_changes_free(d, n4);
    es_changes_free(b, nb);
    es_changes_free(k5, n5);
}

/* The v1 schema as erpsync 0.x wrote it (kept here verbatim: the store migrates such files). */
static const char v1_ddl[] =
    "CREATE TABLE changes("
    " id INTEGER PRIMARY KEY,"
    " flow TEXT NOT NULL, key TEXT NOT NULL, version TEXT NOT NULL,"
    " deleted INTEGER NOT NULL DEFAULT 0,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL DEFAULT 0,"
    " lease INTEGER NOT NULL DEFAULT 0,"
    " lease_until INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL,"
    " last_code INTEGER NOT NULL DEFAULT 0,"
    " last_msg TEXT, last_remote_code TEXT, last_remote_msg TEXT, last_hint TEXT, note TEXT,"
    " UNIQUE(flow, key, version));"
    "CREATE INDEX changes_open ON changes(flow, id) WHERE state <> 2 AND state < 4;"
    "CREATE INDEX changes_key ON changes(flow, key, id) WHERE state <> 2 AND state < 4;"
    "CREATE INDEX changes_leased ON changes(lease_until) WHERE state = 1;"
    "CREATE INDEX changes_parked ON changes(state, id) WHERE state >= 4;"
    "CREATE TABLE payloads(id INTEGER PRIMARY KEY, body TEXT);"
    "CREATE TABLE cursors(flow TEXT NOT NULL, name TEXT NOT NULL, value TEXT,"
    " updated INTEGER NOT NULL, PRIMARY KEY(flow, name)) WITHOUT ROWID;"
    "CREATE TABLE flows(flow TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0, reason TEXT,"
    " last_success INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE counts(flow TEXT NOT NULL, name TEXT NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY(flow, name)) WITHOUT ROWID;"
    "CREATE TABLE xref(entity TEXT NOT NULL, system TEXT NOT NULL, system_id TEXT NOT NULL,"
    " global_id TEXT NOT NULL, updated INTEGER NOT NULL,"
    " PRIMARY KEY(entity, system, system_id)) WITHOUT ROWID;"
    "CREATE INDEX xref_global ON xref(entity, global_id, system);"
    "CREATE TABLE fingerprints(entity TEXT NOT NULL, system TEXT NOT NULL,"
    " system_id TEXT NOT NULL, fp TEXT NOT NULL, updated INTEGER NOT NULL,"
    " PRIMARY KEY(entity, system, system_id)) WITHOUT ROWID;"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, change_id INTEGER NOT NULL, flow TEXT NOT NULL,"
    " key TEXT NOT NULL, ts INTEGER NOT NULL, state INTEGER NOT NULL, code INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL, duration_ms INTEGER NOT NULL, msg TEXT);"
    "CREATE INDEX audit_change ON audit(change_id);"
    /* 1 pending k1; 2 leased k2 (until 5000); 3 done k3; 4 review k4; 5 pending k2 v2 (waits
     * for 2); 6 dead k6 */
    "INSERT INTO changes(id, flow, key, version, state, attempts, lease, lease_until, created,"
    " updated, last_code, last_msg) VALUES"
    " (1, 'a', 'k1', '1', 0, 0, 0, 0, 100, 100, 0, NULL),"
    " (2, 'a', 'k2', '1', 1, 1, 77, 5000, 100, 100, 0, NULL),"
    " (3, 'a', 'k3', '1', 2, 1, 0, 0, 100, 100, 0, NULL),"
    " (4, 'a', 'k4', '1', 4, 1, 0, 0, 100, 100, 7, 'bad email'),"
    " (5, 'a', 'k2', '2', 0, 0, 0, 0, 100, 100, 0, NULL),"
    " (6, 'a', 'k6', '1', 5, 3, 0, 0, 100, 100, 4, 'gone');"
    "INSERT INTO payloads(id, body) VALUES (1, '{\"v\":1}'), (2, '{\"v\":2}'), (5, '{\"v\":5}');"
    "INSERT INTO counts(flow, name, n) VALUES ('a', 'state.pending', 2), ('a', 'state.leased', 1),"
    " ('a', 'state.done', 1), ('a', 'state.review', 1), ('a', 'state.dead', 1),"
    " ('a', 'enqueued', 6);"
    "INSERT INTO audit(change_id, flow, key, ts, state, code, attempt, duration_ms, msg) VALUES"
    " (3, 'a', 'k3', 100, 2, 0, 1, 5, NULL);"
    "PRAGMA user_version = 1;";

/* Since layout v3 a change id is its flow's number << 44 | its place in the flow; flow "a" is
 * number 1 and keeps its changes' order. */
#define V1ID(n) (((int64_t)1 << 44) + (n))

static void test_migrate_v1(void **state)
{
    struct fixture *f = *state;
    es_store_close(f->s);
    f->s = NULL;
    char path[160];
    snprintf(path, sizeof path, "%s/state.db", f->dir);
    assert_int_equal(unlink(path), 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v1_ddl, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_store_open(f->url, &f->s, &err), ES_OK);
    struct es_flow_stats st = stats(f->s, "a");
    assert_int_equal(st.count[ES_CHANGE_PENDING], 2);
    assert_int_equal(st.count[ES_CHANGE_LEASED], 1);
    assert_int_equal(st.count[ES_CHANGE_REVIEW], 1);
    assert_int_equal(st.oldest_open_ms, 100);
    /* Change 2 is still leased (until 5000): only 1 goes; 5 waits behind 2 (same key). */
    struct es_change *c = NULL;
    size_t n = 0;
    assert_int_equal(es_store_lease(f->s, "a", 10, 1000, 60000, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, V1ID(1));
    assert_string_equal(c[0].payload, "{\"v\":1}");
    complete1(f->s, &c[0], ES_CHANGE_DONE, 0, 1001);
    es_changes_free(c, n);
    /* The v1 lease of change 2 expires like a v2 one. */
    assert_int_equal(es_store_lease(f->s, "a", 10, 6000, 60000, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, V1ID(2));
    assert_int_equal(c[0].attempts, 2);
    complete1(f->s, &c[0], ES_CHANGE_DONE, 0, 6001);
    es_changes_free(c, n);
    assert_int_equal(es_store_lease(f->s, "a", 10, 6002, 60000, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, V1ID(5));
    es_changes_free(c, n);
    /* Parked changes are still listed and can be replayed. */
    struct es_change_filter flt = {"a", ES_CHANGE_DEAD, 0, 0};
    assert_int_equal(es_store_list(f->s, &flt, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, V1ID(6));
    assert_string_equal(c[0].last_msg, "gone");
    es_changes_free(c, n);
    assert_int_equal(es_store_replay(f->s, V1ID(4), NULL, NULL), ES_OK);
    st = stats(f->s, "a");
    assert_int_equal(st.count[ES_CHANGE_DONE], 3);
    assert_int_equal(st.count[ES_CHANGE_LEASED], 1);
    assert_int_equal(st.count[ES_CHANGE_PENDING], 1);
    assert_int_equal(st.count[ES_CHANGE_REVIEW], 0);
    struct es_audit *a = NULL;
    size_t na = 0;
    assert_int_equal(es_store_audit(f->s, V1ID(3), 10, &a, &na, NULL), ES_OK);
    assert_int_equal(na, 1);
    assert_int_equal(a[0].duration_ms, 5);
    es_free(a);
    /* A file from a newer erpsync is refused. */
    es_store_close(f->s);
    f->s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    es_err_clear(&err);
    assert_int_equal(es_store_open(f->url, &f->s, &err), ES_ESTORE);
    assert_non_null(strstr(err.msg, "newer"));
}

static void test_pause(void **state)
{
    struct fixture *f = *state;
    enqueue1(f->s, "a", "k1", "1");
    assert_int_equal(es_store_flow_pause(f->s, "a", "auth: refused", NULL), ES_OK);
    struct es_change *c = NULL;
    size_t n = 0;
    assert_int_equal(es_store_lease(f->s, "a", 10, 1000, 60000, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 0);
    struct es_flow_stats st = stats(f->s, "a");
    assert_int_equal(st.paused, 1);
    assert_string_equal(st.pause_reason, "auth: refused");
    assert_int_equal(es_store_flow_pause(f->s, "a", NULL, NULL), ES_OK);
    assert_int_equal(es_store_lease(f->s, "a", 10, 1000, 60000, &c, &n, NULL), ES_OK);
    assert_int_equal(n, 1);
    es_changes_free(c, n);
}

/* Several processes opening one new store at once (a daemon and a CLI command started
 * together): each creates or finds the schema, none fails with "table already exists". */
static void test_concurrent_first_open(void **state)
{
    struct fixture *f = *state;
    for (int round = 0; round < 5; round++) {
        char url[160];
        snprintf(url, sizeof url, "sqlite:%s/fresh%d.db", f->dir, round);
        pid_t kids[6];
        for (int i = 0; i < 6; i++) {
            kids[i] = fork();
            assert_true(kids[i] >= 0);
            if (kids[i] == 0) {
                struct es_store *s = NULL;
                struct es_err err;
                es_err_clear(&err);
                int rc = es_store_open(url, &s, &err);
                if (rc != ES_OK) {
                    fprintf(stderr, "open: %s\n", err.msg);
                }
                es_store_close(s);
                _exit(rc == ES_OK ? 0 : 1);
            }
        }
        for (int i = 0; i < 6; i++) {
            int status = 0;
            assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
    }
}

static void test_bad_urls(void **state)
{
    (void)state;
    struct es_store *s = NULL;
    struct es_err err;
    es_err_clear(&err);
    assert_int_equal(es_store_open("mysql:x", &s, &err), ES_ECONFIG);
    es_err_clear(&err);
    assert_int_equal(es_store_open("sqlite:/nonexistent-dir/x/y.db", &s, &err), ES_ESTORE);
    assert_null(s);
    assert_int_equal(es_change_state_from_name("review"), ES_CHANGE_REVIEW);
    assert_string_equal(es_change_state_name(ES_CHANGE_DEAD), "dead");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idempotent_enqueue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry_and_lost_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_per_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_dead_replay_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xref_fingerprint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_leases_key_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_lease_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_first_open, setup, teardown),
        cmocka_unit_test(test_bad_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
