/* SPDX-License-Identifier: MIT */
/*
 * json-c's parse cost on the mapping benchmark's records, for the JSON library choice in
 * docs/benchmarks.md (json-c and jansson export clashing symbols, so this is its own
 * program). Parses each NDJSON line of stdin and frees it; prints records/s and peak RSS.
 * Build: cc -O2 bench/map_bench_jsonc.c $(pkg-config --cflags --libs json-c) -o map_bench_jsonc
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 22];

int main(void)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t len = 0, records = 0, failed = 0;
    struct json_tokener *tok = json_tokener_new();
    for (;;) {
        ssize_t n = read(0, buf + len, sizeof buf - len);
        if (n < 0) {
            return 1;
        }
        len += (size_t)n;
        size_t start = 0;
        char *nl;
        while ((nl = memchr(buf + start, '\n', len - start)) != NULL) {
            size_t end = (size_t)(nl - buf);
            if (end > start) {
                json_tokener_reset(tok);
                struct json_object *o = json_tokener_parse_ex(tok, buf + start, (int)(end - start));
                records++;
                failed += o == NULL;
                json_object_put(o);
            }
            start = end + 1;
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        if (n == 0) {
            break;
        }
    }
    json_tokener_free(tok);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr,
            "map_bench_jsonc parse-only records=%zu failed=%zu seconds=%.3f records_per_s=%.0f "
            "peak_rss_kib=%ld cpu_s=%.3f\n",
            records, failed, secs, (double)records / secs, ru.ru_maxrss,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    return failed ? 2 : 0;
}
