/* SPDX-License-Identifier: MIT */
/*
 * Mapping commands: `erpsync map CONFIG FLOW` streams NDJSON records from stdin through a
 * flow's compiled mapping to stdout (failures as JSON lines on stderr), and `erpsync test
 * CONFIG [FILE.test...]` runs mapping fixtures offline, jq-style, printing
 * "N passed, M failed" with a diff for each failure.
 *
 * A fixture file holds cases separated by blank lines; '#' starts a comment line. A case is:
 *   flow: NAME                 (optional when the file belongs to one flow)
 *   xref: {"customer": {"001A": "17100001"}}   (optional: answers of xref())
 *   now: 2026-01-01T00:00:00Z  (optional: the time now() returns)
 *   expr: EXPRESSION           (instead of a flow: test one expression)
 *   {"input": "record"}        (one line of JSON)
 *   {"expected": "output"}     (one line of JSON, or: error: CODE [FIELD [RULE]])
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/mem.h"
#include "map/internal.h"
#include "map/map.h"

/* ---- xref answers from a JSON file {"entity": {"source id": "target id"}} ---- */

static int xref_json(void *ud, const char *entity, const char *source_value, char *out, size_t cap)
{
    json_t *root = ud;
    json_t *v = json_object_get(json_object_get(root, entity), source_value);
    if (json_is_string(v)) {
        es_strlcpy(out, json_string_value(v), cap);
        return ES_OK;
    }
    if (json_is_integer(v)) {
        snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return ES_OK;
    }
    return ES_ENOTFOUND;
}

static int parse_now(const char *s, int64_t *ms)
{
    struct es_date d;
    if (es_date_parse(s, strlen(s), NULL, &d) != ES_OK) {
        return ES_EINVAL;
    }
    *ms = d.ms;
    return ES_OK;
}

static void print_failure(FILE *f, size_t record, size_t line, const struct es_map_failure *fail)
{
    struct es_buf b;
    es_buf_init(&b, 0);
    (void)es_buf_printf(&b, "{\"record\":%zu,\"line\":%zu,\"field\":", record, line);
    (void)es_buf_json_str(&b, fail->field, strlen(fail->field));
    (void)es_buf_puts(&b, ",\"rule\":");
    (void)es_buf_json_str(&b, fail->rule, strlen(fail->rule));
    (void)es_buf_printf(&b, ",\"code\":\"%s\",\"message\":", es_code_name(fail->code));
    (void)es_buf_json_str(&b, fail->message, strlen(fail->message));
    (void)es_buf_puts(&b, "}\n");
    fwrite(b.data, 1, b.len, f);
    es_buf_release(&b);
}

static int compile_flow(const struct es_config *cfg, const char *name, struct es_map_plan **plan)
{
    const struct es_flow_cfg *flow = es_config_flow(cfg, name);
    if (!flow) {
        fprintf(stderr, "erpsync: no flow '%s' in %s (flows:", name, cfg->path);
        for (size_t i = 0; i < cfg->nflows; i++) {
            fprintf(stderr, " %s", cfg->flows[i].name);
        }
        fprintf(stderr, ")\n");
        return ES_EINVAL;
    }
    struct es_diags diags;
    es_diags_init(&diags);
    int rc = es_map_compile(cfg, flow, plan, &diags);
    es_diags_print(&diags, stderr);
    es_diags_release(&diags);
    return rc;
}

int es_cli_map(int argc, char **argv)
{
    const char *cfgpath = NULL, *flowname = NULL, *xref_file = NULL, *now = NULL;
    const char *schema_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--schema") == 0 && i + 1 < argc) {
            schema_file = argv[++i];
        } else if (strcmp(argv[i], "--xref") == 0 && i + 1 < argc) {
            xref_file = argv[++i];
        } else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
            now = argv[++i];
        } else if (!cfgpath) {
            cfgpath = argv[i];
        } else if (!flowname) {
            flowname = argv[i];
        } else {
            cfgpath = NULL;
            break;
        }
    }
    if (!cfgpath || !flowname) {
        fprintf(stderr, "usage: erpsync map [--xref FILE.json] [--schema DESCRIBE.json] "
                        "[--now ISO-TIME] CONFIG FLOW < records.ndjson\n");
        return 64;
    }
    struct es_map_env env = {NULL, NULL, 0};
    json_t *xref = NULL;
    if (xref_file) {
        json_error_t jerr;
        xref = json_load_file(xref_file, 0, &jerr);
        if (!json_is_object(xref)) {
            fprintf(stderr, "erpsync: %s:%d: %s\n", xref_file, jerr.line,
                    xref ? "must be {\"entity\": {\"source id\": \"target id\"}}" : jerr.text);
            json_decref(xref);
            return 64;
        }
        env.xref = xref_json;
        env.ud = xref;
    }
    if (now && parse_now(now, &env.now_ms) != ES_OK) {
        fprintf(stderr, "erpsync: --now: '%s' is not a date-time\n", now);
        json_decref(xref);
        return 64;
    }
    struct es_config *cfg = es_cli_load_config(cfgpath);
    if (!cfg) {
        json_decref(xref);
        return es_code_exit_status(ES_ECONFIG);
    }
    struct es_map_plan *plan = NULL;
    int rc = compile_flow(cfg, flowname, &plan);
    if (rc) {
        es_config_free(cfg);
        json_decref(xref);
        return es_code_exit_status(rc == ES_EINVAL ? ES_EINVAL : ES_ECONFIG);
    }
    if (schema_file) {
        json_error_t jerr;
        json_t *dj = json_load_file(schema_file, 0, &jerr);
        struct es_map_schema *schema = NULL;
        struct es_err err;
        es_err_clear(&err);
        if (!dj || es_map_schema_from_json(dj, &schema, &err) != ES_OK) {
            fprintf(stderr, "erpsync: %s: %s\n", schema_file, dj ? err.msg : jerr.text);
            json_decref(dj);
            es_map_plan_free(plan);
            es_config_free(cfg);
            json_decref(xref);
            return 64;
        }
        json_decref(dj);
        es_map_plan_use_schema(plan, schema);
    }
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    struct es_arena arena;
    es_arena_init(&arena, 1 << 16);
    struct es_buf out;
    es_buf_init(&out, 0);
    char *line = NULL;
    size_t cap = 0, lineno = 0, record = 0, failed = 0;
    ssize_t n;
    int first_code = ES_OK;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            len--;
        }
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t')) {
            k++;
        }
        if (k == len) {
            continue;
        }
        record++;
        struct es_map_failure fail;
        es_buf_reset(&out);
        es_arena_reset(&arena);
        rc = es_map_eval_json_arena(plan, &arena, line, len, &out, &env, &fail);
        if (rc == ES_OK) {
            (void)es_buf_putc(&out, '\n');
            fwrite(out.data, 1, out.len, stdout);
        } else {
            failed++;
            if (first_code == ES_OK) {
                first_code = rc;
            }
            fflush(stdout);
            print_failure(stderr, record, lineno, &fail);
        }
    }
    free(line); /* checksrc: ok (getline) */
    fflush(stdout);
    es_buf_release(&out);
    es_arena_release(&arena);
    es_map_plan_free(plan);
    es_config_free(cfg);
    json_decref(xref);
    if (failed) {
        fprintf(stderr, "erpsync map: %zu of %zu records failed\n", failed, record);
        return es_code_exit_status((enum es_code)first_code);
    }
    return 0;
}

/* ---- erpsync test ---- */

struct tstate {
    const struct es_config *cfg;
    size_t passed, failed;
    int verbose;
    /* compiled plans by flow index, created on first use */
    struct es_map_plan **plans;
    int *plan_failed;
};

/* json_equal, except that 2, 2.0 and 2.00 are the same number. */
static int same_json(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        return json_number_value(a) == json_number_value(b);
    }
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b)) {
            return 0;
        }
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !same_json(v, w)) {
                return 0;
            }
        }
        return 1;
    }
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b)) {
            return 0;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!same_json(json_array_get(a, i), json_array_get(b, i))) {
                return 0;
            }
        }
        return 1;
    }
    return json_equal(a, b);
}

static void print_json_diff(const json_t *want, const json_t *got)
{
    if (json_is_object(want) && json_is_object(got)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            json_t *g = json_object_get(got, k);
            if (!g || !same_json(v, g)) {
                char *ws = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                fprintf(stderr, "    - %s: %s\n", k, ws ? ws : "?");
                free(ws); /* checksrc: ok (jansson) */
                if (g) {
                    char *gs = json_dumps(g, JSON_ENCODE_ANY | JSON_COMPACT);
                    fprintf(stderr, "    + %s: %s\n", k, gs ? gs : "?");
                    free(gs); /* checksrc: ok (jansson) */
                } else {
                    fprintf(stderr, "    + %s: (missing)\n", k);
                }
            }
        }
        json_object_foreach((json_t *)got, k, v)
        {
            if (!json_object_get(want, k)) {
                char *gs = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                fprintf(stderr, "    + %s: %s (unexpected)\n", k, gs ? gs : "?");
                free(gs); /* checksrc: ok (jansson) */
            }
        }
        return;
    }
    char *ws = json_dumps(want, JSON_ENCODE_ANY | JSON_COMPACT);
    char *gs = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    fprintf(stderr, "    - %s\n    + %s\n", ws ? ws : "?", gs ? gs : "(no output)");
    free(ws); /* checksrc: ok (jansson) */
    free(gs); /* checksrc: ok (jansson) */
}

struct tcase {
    const char *file;
    int line; /* first line of the case */
    char flow[128];
    char *expr;
    char *xref;
    char *now;
    char *input;
    char *expected;
};

static void tcase_reset(struct tcase *c)
{
    es_free(c->expr);
    es_free(c->xref);
    es_free(c->now);
    es_free(c->input);
    es_free(c->expected);
    c->expr = c->xref = c->now = c->input = c->expected = NULL;
}

/* Compares the result of one case; prints the diff. */
static void run_case(struct tstate *ts, struct tcase *c, const char *default_flow)
{
    const char *where = c->file;
    int ok = 0;
    char why[512] = "";
    json_t *in = NULL, *got = NULL, *want = NULL, *xref = NULL;
    json_error_t jerr;
    struct es_map_env env = {NULL, NULL, 0};
    struct es_map_failure fail;
    memset(&fail, 0, sizeof fail);
    int rc = ES_OK;
    if (!c->input || !c->expected) {
        snprintf(why, sizeof why, "a case needs an input line and an expected line");
        goto done;
    }
    in = json_loads(c->input, JSON_DECODE_ANY, &jerr);
    if (!in) {
        snprintf(why, sizeof why, "input is not JSON: %s", jerr.text);
        goto done;
    }
    if (c->xref) {
        xref = json_loads(c->xref, 0, &jerr);
        if (!json_is_object(xref)) {
            snprintf(why, sizeof why, "xref: is not a JSON object");
            goto done;
        }
        env.xref = xref_json;
        env.ud = xref;
    }
    if (c->now && parse_now(c->now, &env.now_ms) != ES_OK) {
        snprintf(why, sizeof why, "now: '%s' is not a date-time", c->now);
        goto done;
    }
    if (c->expr) {
        struct es_err err;
        es_err_clear(&err);
        rc = es_map_eval_expr(ts->cfg, c->expr, in, &env, &got, &fail, &err);
        if (rc == ES_ECONFIG) {
            snprintf(why, sizeof why, "expression does not compile: %s", err.msg);
            goto done;
        }
    } else {
        const char *fname = c->flow[0] ? c->flow : default_flow;
        if (!fname) {
            snprintf(why, sizeof why, "no flow: add a 'flow: NAME' line");
            goto done;
        }
        const struct es_flow_cfg *flow = es_config_flow(ts->cfg, fname);
        if (!flow) {
            snprintf(why, sizeof why, "no flow '%s' in the config", fname);
            goto done;
        }
        size_t idx = (size_t)(flow - ts->cfg->flows);
        if (!ts->plans[idx] && !ts->plan_failed[idx]) {
            struct es_diags diags;
            es_diags_init(&diags);
            if (es_map_compile(ts->cfg, flow, &ts->plans[idx], &diags) != ES_OK) {
                ts->plan_failed[idx] = 1;
            }
            es_diags_print(&diags, stderr);
            es_diags_release(&diags);
        }
        if (!ts->plans[idx]) {
            snprintf(why, sizeof why, "flow '%s' does not compile", fname);
            goto done;
        }
        /* The streaming path, as `erpsync map` runs it: numbers keep their digits. */
        struct es_buf ob;
        es_buf_init(&ob, 0);
        rc = es_map_eval_json(ts->plans[idx], c->input, strlen(c->input), &ob, &env, &fail);
        if (rc == ES_OK) {
            got = json_loadb(ob.data, ob.len, JSON_DECODE_ANY, &jerr);
        }
        es_buf_release(&ob);
    }
    if (strncmp(c->expected, "error:", 6) == 0) {
        char code[32] = "", field[128] = "", rule[32] = "";
        if (sscanf(c->expected + 6, "%31s %127s %31s", code, field, rule) < 1) {
            snprintf(why, sizeof why, "write 'error: CODE [FIELD [RULE]]'");
            goto done;
        }
        if (rc == ES_OK) {
            char *gs = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
            snprintf(why, sizeof why, "expected %s, got a result: %s", c->expected, gs ? gs : "?");
            free(gs); /* checksrc: ok (jansson) */
            goto done;
        }
        if (strcmp(code, es_code_name((enum es_code)rc)) != 0 ||
            (field[0] && strcmp(field, fail.field) != 0) ||
            (rule[0] && strcmp(rule, fail.rule) != 0)) {
            snprintf(why, sizeof why, "expected %s\n    got error: %s %s %s (%s)", c->expected,
                     es_code_name((enum es_code)rc), fail.field, fail.rule, fail.message);
            goto done;
        }
        ok = 1;
        goto done;
    }
    want = json_loads(c->expected, JSON_DECODE_ANY, &jerr);
    if (!want) {
        snprintf(why, sizeof why, "expected line is not JSON: %s", jerr.text);
        goto done;
    }
    if (rc != ES_OK) {
        snprintf(why, sizeof why, "failed: %s %s %s: %s", es_code_name((enum es_code)rc),
                 fail.field, fail.rule, fail.message);
        goto done;
    }
    if (!same_json(want, got)) {
        fprintf(stderr, "FAIL %s:%d: output differs\n", where, c->line);
        print_json_diff(want, got);
        ts->failed++;
        goto out;
    }
    ok = 1;
done:
    if (ok) {
        ts->passed++;
        if (ts->verbose) {
            fprintf(stderr, "ok   %s:%d\n", where, c->line);
        }
    } else {
        ts->failed++;
        fprintf(stderr, "FAIL %s:%d: %s\n", where, c->line, why);
    }
out:
    json_decref(in);
    json_decref(got);
    json_decref(want);
    json_decref(xref);
}

static char *trimmed_dup(const char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) {
        n--;
    }
    return es_xstrndup(s, n);
}

static int run_file(struct tstate *ts, const char *path, const char *default_flow)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "FAIL %s: cannot open: %s\n", path, strerror(errno));
        ts->failed++;
        return ES_EIO;
    }
    struct tcase c;
    memset(&c, 0, sizeof c);
    c.file = path;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, in_case = 0;
    char file_flow[128] = "";
    for (;;) {
        ssize_t n = getline(&line, &cap, f);
        if (n >= 0) {
            lineno++;
        }
        char *t = n >= 0 ? trimmed_dup(line) : NULL;
        int blank = !t || !*t;
        if (t && t[0] == '#') {
            es_free(t);
            continue;
        }
        if (blank) {
            if (in_case) {
                run_case(ts, &c, file_flow[0] ? file_flow : default_flow);
                tcase_reset(&c);
                c.flow[0] = '\0';
                in_case = 0;
            }
            es_free(t);
            if (n < 0) {
                break;
            }
            continue;
        }
        if (!in_case) {
            in_case = 1;
            c.line = lineno;
        }
        if (strncmp(t, "flow:", 5) == 0) {
            char *v = trimmed_dup(t + 5);
            es_strlcpy(c.flow, v, sizeof c.flow);
            es_free(v);
        } else if (strncmp(t, "expr:", 5) == 0) {
            c.expr = trimmed_dup(t + 5);
        } else if (strncmp(t, "xref:", 5) == 0) {
            c.xref = trimmed_dup(t + 5);
        } else if (strncmp(t, "now:", 4) == 0) {
            c.now = trimmed_dup(t + 4);
        } else if (!c.input) {
            c.input = es_xstrdup(t);
        } else if (!c.expected) {
            c.expected = es_xstrdup(t);
        } else {
            fprintf(stderr,
                    "FAIL %s:%d: a case has one input and one expected line (separate "
                    "cases with a blank line)\n",
                    path, lineno);
            ts->failed++;
        }
        es_free(t);
    }
    tcase_reset(&c);
    free(line); /* checksrc: ok (getline) */
    fclose(f);
    return ES_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? es_xstrndup(path, (size_t)(slash - path)) : es_xstrdup(".");
}

int es_cli_test(int argc, char **argv)
{
    const char *cfgpath = NULL;
    int verbose = 0;
    char **files = NULL;
    size_t nfiles = 0, fcap = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
        } else if (!cfgpath) {
            cfgpath = argv[i];
        } else {
            ES_GROW(files, fcap, nfiles + 1);
            files[nfiles++] = es_xstrdup(argv[i]);
        }
    }
    if (!cfgpath) {
        fprintf(stderr, "usage: erpsync test [-v] CONFIG [FILE.test...]\n");
        return 64;
    }
    struct es_config *cfg = es_cli_load_config(cfgpath);
    if (!cfg) {
        return es_code_exit_status(ES_ECONFIG);
    }
    struct tstate ts;
    memset(&ts, 0, sizeof ts);
    ts.cfg = cfg;
    ts.verbose = verbose;
    ts.plans = es_xcalloc(cfg->nflows + 1, sizeof *ts.plans);
    ts.plan_failed = es_xcalloc(cfg->nflows + 1, sizeof *ts.plan_failed);
    char *dir = dir_of(cfgpath);
    if (nfiles == 0) {
        /* Files named by flows (fixtures:), then the .test files in tests/ next to the config. */
        for (size_t i = 0; i < cfg->nflows; i++) {
            const char *fx = cfg->flows[i].fixtures;
            if (!fx) {
                continue;
            }
            char *p = fx[0] == '/' ? es_xstrdup(fx) : es_xasprintf("%s/%s", dir, fx);
            run_file(&ts, p, cfg->flows[i].name);
            es_free(p);
        }
        /* tests/ holds the cases of every config in the folder; tests/<config name>/ those
         * of one config (examples/tests/salesforce-sap/ for examples/salesforce-sap.yaml). */
        const char *base = strrchr(cfgpath, '/');
        base = base ? base + 1 : cfgpath;
        const char *ext = strrchr(base, '.');
        char *tdirs[2] = {es_xasprintf("%s/tests", dir),
                          es_xasprintf("%s/tests/%.*s", dir,
                                       (int)(ext ? (size_t)(ext - base) : strlen(base)), base)};
        for (int t = 0; t < 2; t++) {
            DIR *d = opendir(tdirs[t]);
            struct dirent *de;
            while (d && (de = readdir(d)) != NULL) {
                size_t len = strlen(de->d_name);
                if (len > 5 && strcmp(de->d_name + len - 5, ".test") == 0) {
                    ES_GROW(files, fcap, nfiles + 1);
                    files[nfiles++] = es_xasprintf("%s/%s", tdirs[t], de->d_name);
                }
            }
            if (d) {
                closedir(d);
            }
            es_free(tdirs[t]);
        }
        if (nfiles > 1) {
            qsort(files, nfiles, sizeof *files, cmp_str);
        }
    }
    for (size_t i = 0; i < nfiles; i++) {
        /* A file named after a flow ("customer-to-erp.test") defaults to that flow. */
        const char *base = strrchr(files[i], '/');
        base = base ? base + 1 : files[i];
        char fname[128];
        es_strlcpy(fname, base, sizeof fname);
        char *dot = strrchr(fname, '.');
        if (dot) {
            *dot = '\0';
        }
        run_file(&ts, files[i], es_config_flow(cfg, fname) ? fname : NULL);
        es_free(files[i]);
    }
    es_free(files);
    es_free(dir);
    printf("%zu passed, %zu failed\n", ts.passed, ts.failed);
    for (size_t i = 0; i < cfg->nflows; i++) {
        es_map_plan_free(ts.plans[i]);
    }
    es_free(ts.plans);
    es_free(ts.plan_failed);
    es_config_free(cfg);
    if (ts.passed + ts.failed == 0) {
        fprintf(stderr, "erpsync test: no test cases found (flows' fixtures: or tests/*.test)\n");
        return 1;
    }
    return ts.failed ? 1 : 0;
}
