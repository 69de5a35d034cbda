/* SPDX-License-Identifier: MIT */
/*
 * journal_bench: how fast the change journal moves changes, beside what SQLite itself does
 * on the same machine with the same durability (WAL, synchronous=FULL, ~500-byte rows).
 *
 *   journal_bench [CHANGES] [DIR]      (default 1000000 changes in /tmp)
 *
 * Prints rows/s for raw inserts at 1 row per transaction and 1000 rows per transaction (and
 * the latter with the UNIQUE(flow, key, version) index idempotent enqueue needs: a floor),
 * then changes/s for the journal: enqueue (durable commit, 1000 changes per transaction as
 * the group commit forms them under load), lease+complete (batches of 1000), and the
 * combined enqueue+lease+complete rate, with its ratio to the batched raw insert rate.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mem.h"
#include "store/store.h"

#define BATCH       1000
#define PAYLOAD_LEN 500

static char g_payload[PAYLOAD_LEN + 1];

static double secs(int64_t t0)
{
    return (double)(es_clock_mono_ms() - t0) / 1000.0;
}

/* CPU seconds (user + system) this process used so far: on a machine shared with other
 * work the wall-clock rates move with the load, the CPU cost per row much less. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Bytes this process wrote with write()/pwrite() so far (WAL frames and checkpoints), from
 * /proc/self/io; 0 where it cannot be read. */
static double wchar_now(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    double v = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "wchar:", 6) == 0) {
            v = strtod(line + 6, NULL);
        }
    }
    if (f) {
        fclose(f);
    }
    return v;
}

static double g_raw_cpu, g_raw_wb; /* CPU seconds and bytes written by the last raw_rate() */

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s\n", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Raw inserts of rows shaped like changes: returns rows/s. */
static double raw_rate(const char *path, long rows, int per_txn, int unique)
{
    sqlite3 *db = NULL;
    unlink(path);
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                 "CREATE TABLE raw(id INTEGER PRIMARY KEY, flow TEXT, key TEXT, version TEXT,"
                 " payload TEXT)") != 0 ||
        (unique && exec(db, "CREATE UNIQUE INDEX raw_u ON raw(flow, key, version)") != 0)) {
        sqlite3_close(db);
        return 0;
    }
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "INSERT INTO raw(flow, key, version, payload) VALUES(?1, ?2, ?3, ?4)",
                       -1, &st, NULL);
    int64_t t0 = es_clock_mono_ms();
    double c0 = cpu_now(), w0 = wchar_now();
    char key[32];
    for (long i = 0; i < rows; i += per_txn) {
        exec(db, "BEGIN");
        for (long j = i; j < i + per_txn && j < rows; j++) {
            snprintf(key, sizeof key, "K%09ld", j);
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, "bench", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 3, "1", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, g_payload, PAYLOAD_LEN, SQLITE_STATIC);
            sqlite3_step(st);
        }
        exec(db, "COMMIT");
    }
    double t = secs(t0);
    g_raw_cpu = cpu_now() - c0;
    g_raw_wb = wchar_now() - w0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return t > 0 ? (double)rows / t : 0;
}

static void fail(const struct es_err *err)
{
    fprintf(stderr, "journal_bench: %s\n", err->msg);
    exit(1);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    if (n < BATCH) {
        n = BATCH;
    }
    memset(g_payload, 'p', PAYLOAD_LEN);
    /* The store turns SQLite's allocation statistics off at its first open (a global mutex
     * per allocation); do it here, before the raw runs, so both sides run the same SQLite. */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    es_mem_keep_freed(); /* as the store does at its first open */
    char raw_path[512], db_path[512], url[600];
    snprintf(raw_path, sizeof raw_path, "%s/journal_bench_raw.db", dir);
    snprintf(db_path, sizeof db_path, "%s/journal_bench.db", dir);
    snprintf(url, sizeof url, "sqlite:%s", db_path);

    long single = n < 5000 ? n : 5000;
    double raw1 = raw_rate(raw_path, single, 1, 0);
    double rawb = raw_rate(raw_path, n, BATCH, 0);
    double rawb_cpu = g_raw_cpu, rawb_wb = g_raw_wb;
    /* The least any idempotent journal does: the same rows with UNIQUE(flow, key, version). */
    double rawu = raw_rate(raw_path, n, BATCH, 1);
    printf("raw sqlite insert, 1 row/txn:      %10.0f rows/s  (%ld rows)\n", raw1, single);
    printf("raw sqlite insert, %d rows/txn:  %10.0f rows/s  (%ld rows)\n", BATCH, rawb, n);
    printf("  same + UNIQUE(flow, key, version): %8.0f rows/s  = %.0f %% of batched raw\n", rawu,
           rawb > 0 ? 100.0 * rawu / rawb : 0);

    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s%s", db_path, suffixes[i]);
        unlink(p);
        snprintf(p, sizeof p, "%s%s", raw_path, suffixes[i]);
        unlink(p);
    }
    struct es_store *s = NULL;
    struct es_err err;
    es_err_clear(&err);
    if (es_store_open(url, &s, &err) != ES_OK) {
        fail(&err);
    }
    /* One change per transaction: a lone webhook with nobody to share its commit. */
    struct es_change_in *in = es_xcalloc(BATCH, sizeof *in);
    char(*keys)[32] = es_xcalloc(BATCH, sizeof *keys);
    long lone = n < 20000 ? n / 10 : 2000;
    int64_t t0 = es_clock_mono_ms();
    for (long i = 0; i < lone; i++) {
        snprintf(keys[0], sizeof keys[0], "L%09ld", i);
        in[0] = (struct es_change_in){"lone", keys[0], "1", 0, g_payload, PAYLOAD_LEN};
        if (es_store_enqueue(s, in, 1, NULL, 0, NULL, &err) != ES_OK) {
            fail(&err);
        }
    }
    double enq1 = (double)lone / secs(t0);

    t0 = es_clock_mono_ms();
    double c0 = cpu_now(), w0 = wchar_now();
    for (long i = 0; i < n; i += BATCH) {
        size_t k = 0;
        for (long j = i; j < i + BATCH && j < n; j++, k++) {
            snprintf(keys[k], sizeof keys[k], "K%09ld", j);
            in[k] = (struct es_change_in){"bench", keys[k], "1", 0, g_payload, PAYLOAD_LEN};
        }
        if (es_store_enqueue(s, in, k, NULL, 0, NULL, &err) != ES_OK) {
            fail(&err);
        }
    }
    double t_enq = secs(t0);
    double c_enq = cpu_now() - c0, w_enq = wchar_now() - w0;

    struct es_outcome *outs = es_xcalloc(BATCH, sizeof *outs);
    long moved = 0;
    int64_t t_lease = 0, t_complete = 0;
    t0 = es_clock_mono_ms();
    c0 = cpu_now();
    w0 = wchar_now();
    for (;;) {
        struct es_change *ch = NULL;
        size_t got = 0;
        int64_t now = es_clock_wall_ms();
        int64_t t1 = es_clock_mono_ms();
        if (es_store_lease(s, "bench", BATCH, now, 60000, &ch, &got, &err) != ES_OK) {
            fail(&err);
        }
        int64_t t2 = es_clock_mono_ms();
        t_lease += t2 - t1;
        if (got == 0) {
            break;
        }
        for (size_t i = 0; i < got; i++) {
            outs[i] = (struct es_outcome){.id = ch[i].id,
                                          .lease = ch[i].lease,
                                          .state = ES_CHANGE_DONE,
                                          .duration_ms = 1,
                                          .leased = &ch[i]};
        }
        t2 = es_clock_mono_ms();
        if (es_store_complete(s, outs, got, now, &err) != ES_OK) {
            fail(&err);
        }
        t_complete += es_clock_mono_ms() - t2;
        moved += (long)got;
        es_changes_free(ch, got);
    }
    double t_lc = secs(t0);
    double c_lc = cpu_now() - c0, w_lc = wchar_now() - w0;
    struct es_flow_stats st;
    if (es_store_stats(s, "bench", 0, &st, &err) != ES_OK) {
        fail(&err);
    }
    if (moved != n || st.count[ES_CHANGE_DONE] != n) {
        fprintf(stderr, "journal_bench: moved %ld, done %" PRId64 ", expected %ld\n", moved,
                st.count[ES_CHANGE_DONE], n);
        return 1;
    }
    double all = (double)n / (t_enq + t_lc);
    printf("journal enqueue, 1 change/txn:     %10.0f changes/s  (%ld changes)\n", enq1, lone);
    printf("journal enqueue, %d changes/txn: %10.0f changes/s\n", BATCH, (double)n / t_enq);
    printf("journal lease+complete, %d/txn:  %10.0f changes/s\n", BATCH, (double)n / t_lc);
    printf("  of which lease %.1f s, complete %.1f s, changes/s each: %.0f, %.0f\n",
           (double)t_lease / 1000.0, (double)t_complete / 1000.0,
           t_lease > 0 ? (double)n * 1000.0 / (double)t_lease : 0,
           t_complete > 0 ? (double)n * 1000.0 / (double)t_complete : 0);
    printf("journal enqueue+lease+complete:    %10.0f changes/s  = %.0f %% of batched raw\n", all,
           rawb > 0 ? 100.0 * all / rawb : 0);
    printf("CPU us/row: raw batched %.1f, enqueue %.1f, lease+complete %.1f; combined CPU cost"
           " = %.0f %% of raw's rate\n",
           1e6 * rawb_cpu / (double)n, 1e6 * c_enq / (double)n, 1e6 * c_lc / (double)n,
           c_enq + c_lc > 0 ? 100.0 * rawb_cpu / (c_enq + c_lc) : 0);
    printf("bytes written/row: raw batched %.0f, enqueue %.0f, lease+complete %.0f\n",
           rawb_wb / (double)n, w_enq / (double)n, w_lc / (double)n);
    es_free(outs);
    es_free(keys);
    es_free(in);
    es_store_close(s);
    return 0;
}
