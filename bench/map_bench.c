/* SPDX-License-Identifier: MIT */
/*
 * Mapping benchmark: maps NDJSON records from stdin through a flow of a config and writes
 * NDJSON to stdout, then prints records/s and peak RSS on stderr. Two JSON paths:
 *   --parser yajl     the streaming path (yajl events into an arena per record, our writer)
 *   --parser jansson  the json_t API path (json_loadb -> es_map_eval -> json_dumpb)
 *   --parse-only      parse (and free) each record without mapping: the libraries' own cost
 *                     (json-c cannot share a binary with jansson: bench/map_bench_jsonc.c)
 * Usage: map_bench [--parser yajl|jansson] [--parse-only] CONFIG FLOW < in > out
 * bench/map_bench.sh runs it against jq, Python and Node.js peers (docs/benchmarks.md).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"
#include "map/internal.h"
#include "map/map.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(1, p, n);
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int use_jansson = 0, parse_only = 0;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--parser") == 0 && i + 1 < argc) {
            use_jansson = strcmp(argv[i + 1], "jansson") == 0;
            i++;
        } else if (strcmp(argv[i], "--parse-only") == 0) {
            parse_only = 1;
        }
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: map_bench [--parser yajl|jansson] CONFIG FLOW < in > out\n");
        return 64;
    }
    struct es_diags diags;
    es_diags_init(&diags);
    struct es_config *cfg = NULL;
    struct es_map_plan *plan = NULL;
    if (es_config_load(argv[i], &cfg, &diags) != ES_OK ||
        es_map_compile(cfg, es_config_flow(cfg, argv[i + 1]), &plan, &diags) != ES_OK) {
        es_diags_print(&diags, stderr);
        return 1;
    }
    es_diags_release(&diags);

    size_t cap = 1 << 22, len = 0, records = 0, failed = 0;
    char *in = es_xmalloc(cap);
    struct es_buf out;
    es_buf_init(&out, 0);
    struct es_arena arena;
    es_arena_init(&arena, 1 << 16);
    struct es_map_env env = {NULL, NULL, 0};
    struct es_map_failure fail;
    double t0 = now_s();
    for (;;) {
        ssize_t n = read(0, in + len, cap - len);
        if (n < 0) {
            perror("read");
            return 1;
        }
        len += (size_t)n;
        size_t start = 0;
        for (;;) {
            char *nl = memchr(in + start, '\n', len - start);
            if (!nl && !(n == 0 && start < len)) {
                break;
            }
            size_t end = nl ? (size_t)(nl - in) : len;
            if (end > start) {
                records++;
                int rc = ES_OK;
                if (parse_only) {
                    if (use_jansson) {
                        json_t *rec = json_loadb(in + start, end - start, 0, NULL);
                        rc = rec ? ES_OK : ES_EPOISON;
                        json_decref(rec);
                    } else {
                        struct es_mv *v = NULL;
                        es_arena_reset(&arena);
                        rc = es_mv_parse(&arena, in + start, end - start, &v, NULL);
                    }
                } else if (use_jansson) {
                    json_t *rec = json_loadb(in + start, end - start, 0, NULL);
                    json_t *res = NULL;
                    rc = rec ? es_map_eval(plan, rec, &res, &env, &fail) : ES_EPOISON;
                    if (rc == ES_OK) {
                        size_t need = json_dumpb(res, NULL, 0, JSON_COMPACT);
                        (void)es_buf_reserve(&out, need + 1);
                        out.len += json_dumpb(res, out.data + out.len, need, JSON_COMPACT);
                        (void)es_buf_putc(&out, '\n');
                    }
                    json_decref(rec);
                    json_decref(res);
                } else {
                    es_arena_reset(&arena);
                    rc = es_map_eval_json_arena(plan, &arena, in + start, end - start, &out, &env,
                                                &fail);
                    if (rc == ES_OK) {
                        (void)es_buf_putc(&out, '\n');
                    }
                }
                failed += rc != ES_OK;
            }
            start = end + 1;
            if (out.len > (1 << 20)) {
                if (write_all(out.data, out.len) != 0) {
                    return 1;
                }
                es_buf_reset(&out);
            }
            if (!nl) {
                break;
            }
        }
        if (start < len) {
            memmove(in, in + start, len - start);
        }
        len = start < len ? len - start : 0;
        if (len == cap) {
            cap *= 2;
            in = es_xrealloc(in, cap);
        }
        if (n == 0) {
            break;
        }
    }
    if (write_all(out.data ? out.data : "", out.len) != 0) {
        return 1;
    }
    double secs = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr,
            "map_bench parser=%s%s records=%zu failed=%zu seconds=%.3f records_per_s=%.0f "
            "peak_rss_kib=%ld cpu_s=%.3f\n",
            use_jansson ? "jansson" : "yajl", parse_only ? " (parse only)" : "", records, failed,
            secs, (double)records / secs, ru.ru_maxrss,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    es_arena_release(&arena);
    es_buf_release(&out);
    es_free(in);
    es_map_plan_free(plan);
    es_config_free(cfg);
    return failed ? 2 : 0;
}
