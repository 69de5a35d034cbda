/* SPDX-License-Identifier: MIT */
/*
 * Shared plumbing of the sandbox emulators: the libmicrohttpd server wrapper (bodies,
 * replies, routing), fault injection, admin endpoints, the notification outbox, SQLite
 * helpers, and Base64 written from RFC 4648 (HMAC-SHA256 is core/hmac.h). The contract is in
 * common.h.
 */
#include "common.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/hmac.h"
#include "core/mem.h"

struct sb_server {
    struct sb_opts opts;
    struct sb_app app;
    struct MHD_Daemon *mhd;
    int port;
    pthread_mutex_t state; /* recursive: the state lock */
    pthread_mutex_t fmu;   /* faults and rng */
    int nfaults;
    struct sb_fault faults[SB_MAX_FAULTS];
    uint64_t rng;
    volatile int stopping;
    long requests;
    /* outbox */
    sqlite3 *odb;
    int obase_ms, omax_ms;
    int orunning;
    pthread_t othread;
    pthread_mutex_t omu;
    pthread_cond_t ocond;
};

/* Per-request state, behind sb_req.priv. */
struct conn {
    struct sb_server *srv;
    struct MHD_Connection *mc;
    struct es_buf body;
    int too_large;
    char **strs; /* decoded strings handed out by sb_req_arg */
    size_t nstrs, capstrs;
    char *query;
};

static struct sb_server *g_server;

/* ---- options ---------------------------------------------------------------------- */

void sb_opts_init(struct sb_opts *o, int default_port, const char *default_db)
{
    memset(o, 0, sizeof *o);
    es_strlcpy(o->host, "127.0.0.1", sizeof o->host);
    o->port = default_port;
    es_strlcpy(o->db, default_db ? default_db : "", sizeof o->db);
    o->max_body = (size_t)64 << 20;
    o->quiet = 1;
}

const char *sb_opts_help(void)
{
    return "common options:\n"
           "  --listen HOST:PORT   address to serve (port 0 = any free port, printed)\n"
           "  --db FILE            SQLite file holding the emulator's state\n"
           "  --seed demo|none     load the demo data set when the state is empty\n"
           "  --max-body BYTES     largest request body accepted (default 64 MiB)\n"
           "  --fault SPEC         inject faults, repeatable; SPEC is comma-separated key=value:\n"
           "                       route=/prefix method=GET latency_ms=N rate_429=0.1 "
           "retry_after=S\n"
           "                       rate_500=F rate_503=F rate_drop=F rate_timeout=F "
           "timeout_ms=N count=N\n"
           "                       rate_body=F body_status=N body_ctype=T body=TEXT rate_cut=F\n"
           "  --rng-seed N         seed of the fault dice (reproducible runs)\n"
           "  --verbose            log one line per request on stderr\n";
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) {
        return ES_EINVAL;
    }
    *out = v;
    return ES_OK;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        return ES_EINVAL;
    }
    *out = v;
    return ES_OK;
}

static void fault_defaults(struct sb_fault *f)
{
    memset(f, 0, sizeof *f);
    es_strlcpy(f->route, "/", sizeof f->route);
    es_strlcpy(f->method, "*", sizeof f->method);
    f->retry_after = 1;
    f->timeout_ms = 30000;
    f->body_status = 200;
    es_strlcpy(f->body_ctype, "text/html", sizeof f->body_ctype);
    es_strlcpy(f->body,
               "<html><head><title>Service cannot be reached</title></head>"
               "<body><h1>Service cannot be reached</h1><p>What has happened?</p></body></html>",
               sizeof f->body);
}

static int fault_set_key(struct sb_fault *f, const char *k, const char *v, struct es_err *err)
{
    long l = 0;
    double d = 0;
    int rc = ES_OK;
    if (strcmp(k, "route") == 0) {
        es_strlcpy(f->route, v, sizeof f->route);
    } else if (strcmp(k, "method") == 0) {
        es_strlcpy(f->method, v, sizeof f->method);
    } else if (strcmp(k, "body") == 0) {
        es_strlcpy(f->body, v, sizeof f->body);
    } else if (strcmp(k, "body_ctype") == 0) {
        es_strlcpy(f->body_ctype, v, sizeof f->body_ctype);
    } else if (strcmp(k, "body_status") == 0) {
        rc = parse_long(v, &l);
        if (rc == ES_OK && (l < 100 || l > 599)) {
            rc = ES_EINVAL;
        }
        if (rc == ES_OK) {
            f->body_status = (int)l;
        }
    } else if (strcmp(k, "latency_ms") == 0 || strcmp(k, "retry_after") == 0 ||
               strcmp(k, "timeout_ms") == 0 || strcmp(k, "count") == 0) {
        rc = parse_long(v, &l);
        if (rc == ES_OK && l < 0) {
            rc = ES_EINVAL;
        }
        if (rc == ES_OK) {
            if (k[0] == 'l') {
                f->latency_ms = (int)l;
            } else if (k[0] == 'r') {
                f->retry_after = (int)l;
            } else if (k[0] == 't') {
                f->timeout_ms = (int)l;
            } else {
                f->count = l;
            }
        }
    } else if (strncmp(k, "rate_", 5) == 0) {
        rc = parse_double(v, &d);
        if (rc == ES_OK && (d < 0 || d > 1)) {
            rc = ES_EINVAL;
        }
        if (rc == ES_OK) {
            if (strcmp(k, "rate_429") == 0) {
                f->rate_429 = d;
            } else if (strcmp(k, "rate_500") == 0) {
                f->rate_500 = d;
            } else if (strcmp(k, "rate_503") == 0) {
                f->rate_503 = d;
            } else if (strcmp(k, "rate_drop") == 0) {
                f->rate_drop = d;
            } else if (strcmp(k, "rate_timeout") == 0) {
                f->rate_timeout = d;
            } else if (strcmp(k, "rate_body") == 0) {
                f->rate_body = d;
            } else if (strcmp(k, "rate_cut") == 0) {
                f->rate_cut = d;
            } else {
                return es_err_set(err, ES_EINVAL, "fault: unknown key '%s'", k);
            }
        }
    } else {
        return es_err_set(err, ES_EINVAL, "fault: unknown key '%s'", k);
    }
    if (rc) {
        return es_err_set(err, ES_EINVAL, "fault: bad value '%s' for %s", v, k);
    }
    return ES_OK;
}

int sb_fault_parse(const char *spec, struct sb_fault *f, struct es_err *err)
{
    fault_defaults(f);
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char item[300];
        if (n >= sizeof item) {
            return es_err_set(err, ES_EINVAL, "fault: item too long");
        }
        memcpy(item, p, n);
        item[n] = '\0';
        char *eq = strchr(item, '=');
        if (!eq) {
            return es_err_set(err, ES_EINVAL, "fault: '%s' is not key=value", item);
        }
        *eq = '\0';
        int rc = fault_set_key(f, item, eq + 1, err);
        if (rc) {
            return rc;
        }
        p += n;
        if (*p == ',') {
            p++;
        }
    }
    return ES_OK;
}

int sb_fault_from_json(const json_t *j, struct sb_fault *f, struct es_err *err)
{
    fault_defaults(f);
    if (!json_is_object(j)) {
        return es_err_set(err, ES_EINVAL, "fault: expected a JSON object");
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v)
    {
        char tmp[600];
        if (json_is_string(v)) {
            es_strlcpy(tmp, json_string_value(v), sizeof tmp);
        } else if (json_is_integer(v)) {
            snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(v));
        } else if (json_is_real(v)) {
            snprintf(tmp, sizeof tmp, "%.17g", json_real_value(v));
        } else if (strcmp(k, "hits") == 0) {
            continue;
        } else {
            return es_err_set(err, ES_EINVAL, "fault: bad value for %s", k);
        }
        if (strcmp(k, "hits") == 0) {
            continue;
        }
        int rc = fault_set_key(f, k, tmp, err);
        if (rc) {
            return rc;
        }
    }
    return ES_OK;
}

int sb_opts_flag(struct sb_opts *o, int argc, char **argv, int *i, struct es_err *err)
{
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long l;
    if (strcmp(a, "--verbose") == 0) {
        o->quiet = 0;
        return 1;
    }
    if (strcmp(a, "--quiet") == 0) {
        o->quiet = 1;
        return 1;
    }
    if (strcmp(a, "--listen") && strcmp(a, "--db") && strcmp(a, "--seed") &&
        strcmp(a, "--max-body") && strcmp(a, "--fault") && strcmp(a, "--rng-seed")) {
        return 0;
    }
    if (!v) {
        es_err_set(err, ES_EINVAL, "%s needs a value", a);
        return -1;
    }
    (*i)++;
    if (strcmp(a, "--listen") == 0) {
        const char *colon = strrchr(v, ':');
        if (!colon || colon == v || (size_t)(colon - v) >= sizeof o->host ||
            parse_long(colon + 1, &l) || l < 0 || l > 65535) {
            es_err_set(err, ES_EINVAL, "--listen wants HOST:PORT, got '%s'", v);
            return -1;
        }
        memcpy(o->host, v, (size_t)(colon - v));
        o->host[colon - v] = '\0';
        o->port = (int)l;
    } else if (strcmp(a, "--db") == 0) {
        es_strlcpy(o->db, v, sizeof o->db);
    } else if (strcmp(a, "--seed") == 0) {
        if (strcmp(v, "demo") && strcmp(v, "none")) {
            es_err_set(err, ES_EINVAL, "--seed wants demo or none, got '%s'", v);
            return -1;
        }
        es_strlcpy(o->seed, strcmp(v, "none") == 0 ? "" : v, sizeof o->seed);
    } else if (strcmp(a, "--max-body") == 0) {
        if (parse_long(v, &l) || l < 1024) {
            es_err_set(err, ES_EINVAL, "--max-body wants a byte count >= 1024, got '%s'", v);
            return -1;
        }
        o->max_body = (size_t)l;
    } else if (strcmp(a, "--rng-seed") == 0) {
        if (parse_long(v, &l)) {
            es_err_set(err, ES_EINVAL, "--rng-seed wants a number, got '%s'", v);
            return -1;
        }
        o->rng_seed = (unsigned)l;
    } else {
        if (o->nfaults >= SB_MAX_FAULTS) {
            es_err_set(err, ES_EINVAL, "at most %d --fault rules", SB_MAX_FAULTS);
            return -1;
        }
        if (sb_fault_parse(v, &o->faults[o->nfaults], err)) {
            return -1;
        }
        o->nfaults++;
    }
    return 1;
}

/* ---- requests and replies ----------------------------------------------------------- */

static const char *keep_str(struct conn *c, char *s)
{
    ES_GROW(c->strs, c->capstrs, c->nstrs + 1);
    c->strs[c->nstrs++] = s;
    return s;
}

const char *sb_req_header(const struct sb_req *r, const char *name)
{
    struct conn *c = r->priv;
    return MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, name);
}

const char *sb_req_arg(const struct sb_req *r, const char *name)
{
    struct conn *c = r->priv;
    const char *raw = MHD_lookup_connection_value(c->mc, MHD_GET_ARGUMENT_KIND, name);
    if (!raw) {
        return NULL;
    }
    size_t n = strlen(raw);
    char *out = es_xmalloc(n + 1);
    sb_decode(raw, n, out, n + 1, 1);
    return keep_str(c, out);
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    struct es_buf *b = cls;
    if (b->len) {
        es_buf_putc(b, '&');
    }
    es_buf_puts(b, key);
    if (value) {
        es_buf_putc(b, '=');
        es_buf_puts(b, value);
    }
    return MHD_YES;
}

const char *sb_req_query(const struct sb_req *r)
{
    struct conn *c = r->priv;
    if (!c->query) {
        struct es_buf b;
        es_buf_init(&b, 0);
        MHD_get_connection_values(c->mc, MHD_GET_ARGUMENT_KIND, add_arg, &b);
        c->query = b.data ? es_buf_detach(&b, NULL) : es_xstrdup("");
    }
    return c->query;
}

json_t *sb_req_json(const struct sb_req *r, char why[200])
{
    json_error_t je;
    why[0] = '\0';
    if (!r->body_len) {
        es_strlcpy(why, "empty body", 200);
        return NULL;
    }
    json_t *j = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &je);
    if (!j) {
        snprintf(why, 200, "%s at line %d column %d", je.text, je.line, je.column);
    }
    return j;
}

void sb_resp_status(struct sb_resp *resp, int status)
{
    resp->status = status;
}

void sb_resp_header(struct sb_resp *resp, const char *name, const char *value)
{
    for (int i = 0; i < resp->nheaders; i++) {
        if (strcasecmp(resp->hname[i], name) == 0) {
            es_free(resp->hvalue[i]);
            resp->hvalue[i] = es_xstrdup(value);
            return;
        }
    }
    if (resp->nheaders >= SB_MAX_HEADERS) {
        return;
    }
    resp->hname[resp->nheaders] = es_xstrdup(name);
    resp->hvalue[resp->nheaders] = es_xstrdup(value);
    resp->nheaders++;
}

void sb_resp_body(struct sb_resp *resp, int status, const char *ctype, const char *data, size_t n)
{
    resp->status = status;
    es_strlcpy(resp->ctype, ctype ? ctype : "", sizeof resp->ctype);
    es_buf_reset(&resp->body);
    es_buf_append(&resp->body, data, n);
}

static int dump_cb(const char *p, size_t n, void *data)
{
    return es_buf_append(data, p, n) == ES_OK ? 0 : -1;
}

int sb_json_dump(struct es_buf *b, const json_t *j)
{
    return json_dump_callback(j, dump_cb, b,
                              JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))
               ? ES_ENOMEM
               : ES_OK;
}

void sb_resp_json(struct sb_resp *resp, int status, json_t *j)
{
    resp->status = status;
    es_strlcpy(resp->ctype, "application/json;charset=UTF-8", sizeof resp->ctype);
    es_buf_reset(&resp->body);
    if (j) {
        sb_json_dump(&resp->body, j);
        json_decref(j);
    }
}

size_t sb_decode(const char *s, size_t n, char *out, size_t cap, int plus_space)
{
    size_t o = 0;
    if (!cap) {
        return 0;
    }
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = es_hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (l = es_hex_digit((unsigned char)s[i + 2])) >= 0) {
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else if (plus_space && s[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return o;
}

int sb_encode(struct es_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = ES_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == ES_OK; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc = es_buf_putc(b, (char)*p);
        } else {
            char t[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = es_buf_append(b, t, 3);
        }
    }
    return rc;
}

int sb_match(const char *path, const char *pattern, struct sb_caps *caps)
{
    const char *p = path, *q = pattern;
    if (caps) {
        caps->n = 0;
    }
    for (;;) {
        if (*q == '/') {
            q++;
        }
        if (*p == '/') {
            p++;
        }
        if (!*q) {
            return *p == '\0'; /* a trailing slash on the path is tolerated */
        }
        const char *qe = strchr(q, '/');
        size_t ql = qe ? (size_t)(qe - q) : strlen(q);
        if (ql == 2 && q[0] == '*' && q[1] == '*') {
            if (caps && caps->n < SB_MAX_CAPS) {
                size_t rest = strlen(p);
                if (rest && p[rest - 1] == '/') {
                    rest--;
                }
                sb_decode(p, rest, caps->v[caps->n++], SB_CAP_LEN, 0);
            }
            return 1;
        }
        if (!*p) {
            return 0;
        }
        const char *pe = strchr(p, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        if (ql == 1 && q[0] == '*') {
            if (pl == 0) {
                return 0;
            }
            if (caps && caps->n < SB_MAX_CAPS) {
                sb_decode(p, pl, caps->v[caps->n++], SB_CAP_LEN, 0);
            }
        } else if (ql != pl || strncmp(p, q, pl) != 0) {
            return 0;
        }
        p += pl;
        q += ql;
    }
}

/* ---- SQLite ------------------------------------------------------------------------- */

int sb_db_exec(sqlite3 *db, const char *sql, struct es_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        es_err_set(err, ES_ESTORE, "sqlite: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return ES_ESTORE;
    }
    return ES_OK;
}

int sb_db_open(const char *path, sqlite3 **db, struct es_err *err)
{
    *db = NULL;
    if (sqlite3_open_v2(path, db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        es_err_set(err, ES_ESTORE, "sqlite: cannot open %s: %s", path,
                   *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return ES_ESTORE;
    }
    sqlite3_busy_timeout(*db, 5000);
    int rc = sb_db_exec(*db,
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                        "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
                        err);
    if (rc) {
        es_err_prefix(err, "%s", path);
        sqlite3_close(*db);
        *db = NULL;
    }
    return rc;
}

/* ---- time --------------------------------------------------------------------------- */

int64_t sb_now_ms(void)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static int64_t last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    pthread_mutex_lock(&mu);
    if (now <= last) {
        now = last + 1;
    }
    last = now;
    pthread_mutex_unlock(&mu);
    return now;
}

/* ---- Base64 (RFC 4648) ------------------------------------------------------------------ */

int sb_base64(struct es_buf *b, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int rc = ES_OK;
    for (size_t i = 0; i < n && rc == ES_OK; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        char t[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        rc = es_buf_append(b, t, 4);
    }
    return rc;
}

/* ---- server ------------------------------------------------------------------------- */

struct sb_server *sb_server_current(void)
{
    return g_server;
}

void sb_lock(struct sb_server *s)
{
    pthread_mutex_lock(&s->state);
}

void sb_unlock(struct sb_server *s)
{
    pthread_mutex_unlock(&s->state);
}

void sb_faults_set(struct sb_server *s, const struct sb_fault *f, int n)
{
    pthread_mutex_lock(&s->fmu);
    s->nfaults = n > SB_MAX_FAULTS ? SB_MAX_FAULTS : n;
    if (s->nfaults) {
        memcpy(s->faults, f, (size_t)s->nfaults * sizeof *f);
    }
    pthread_mutex_unlock(&s->fmu);
}

/* xorshift64*, under fmu. */
static double rng_next(struct sb_server *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return (double)((x * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

enum fault_action { FA_NONE = 0, FA_429, FA_500, FA_503, FA_DROP, FA_TIMEOUT, FA_BODY, FA_CUT };

/* Decides what the fault rules do to this request; for FA_BODY, *canned is a copy of the
 * rule (its body may outlive the rule). */
static enum fault_action fault_pick(struct sb_server *s, const char *method, const char *path,
                                    int *latency_ms, int *retry_after, int *timeout_ms,
                                    struct sb_fault *canned)
{
    enum fault_action act = FA_NONE;
    *latency_ms = 0;
    pthread_mutex_lock(&s->fmu);
    for (int i = 0; i < s->nfaults; i++) {
        struct sb_fault *f = &s->faults[i];
        if (strncmp(path, f->route, strlen(f->route)) != 0) {
            continue;
        }
        if (strcmp(f->method, "*") != 0 && strcasecmp(f->method, method) != 0) {
            continue;
        }
        *latency_ms = f->latency_ms;
        *retry_after = f->retry_after;
        *timeout_ms = f->timeout_ms;
        double r;
        if (f->rate_drop > 0 && (r = rng_next(s)) < f->rate_drop) {
            act = FA_DROP;
        } else if (f->rate_timeout > 0 && (r = rng_next(s)) < f->rate_timeout) {
            act = FA_TIMEOUT;
        } else if (f->rate_429 > 0 && (r = rng_next(s)) < f->rate_429) {
            act = FA_429;
        } else if (f->rate_500 > 0 && (r = rng_next(s)) < f->rate_500) {
            act = FA_500;
        } else if (f->rate_503 > 0 && (r = rng_next(s)) < f->rate_503) {
            act = FA_503;
        } else if (f->rate_body > 0 && (r = rng_next(s)) < f->rate_body) {
            act = FA_BODY;
            *canned = *f;
        } else if (f->rate_cut > 0 && (r = rng_next(s)) < f->rate_cut) {
            act = FA_CUT;
        }
        if (act != FA_NONE || f->latency_ms) {
            f->hits++;
            if (f->count > 0 && f->hits >= f->count) {
                memmove(f, f + 1, (size_t)(s->nfaults - i - 1) * sizeof *f);
                s->nfaults--;
            }
        }
        break;
    }
    pthread_mutex_unlock(&s->fmu);
    return act;
}

static void sleep_ms(struct sb_server *s, int ms)
{
    while (ms > 0 && !s->stopping) {
        int step = ms > 50 ? 50 : ms;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static json_t *fault_json(const struct sb_fault *f)
{
    json_t *j =
        json_pack("{s:s,s:s,s:i,s:f,s:i,s:f,s:f,s:f,s:f,s:i,s:I,s:I}", "route", f->route, "method",
                  f->method, "latency_ms", f->latency_ms, "rate_429", f->rate_429, "retry_after",
                  f->retry_after, "rate_500", f->rate_500, "rate_503", f->rate_503, "rate_drop",
                  f->rate_drop, "rate_timeout", f->rate_timeout, "timeout_ms", f->timeout_ms,
                  "count", (json_int_t)f->count, "hits", (json_int_t)f->hits);
    if (f->rate_body > 0) {
        json_object_set_new(j, "rate_body", json_real(f->rate_body));
        json_object_set_new(j, "body_status", json_integer(f->body_status));
        json_object_set_new(j, "body_ctype", json_string(f->body_ctype));
        json_object_set_new(j, "body", json_string(f->body));
    }
    if (f->rate_cut > 0) {
        json_object_set_new(j, "rate_cut", json_real(f->rate_cut));
    }
    return j;
}

static void admin_error(struct sb_resp *resp, int status, const char *msg)
{
    sb_resp_json(resp, status, json_pack("{s:s}", "error", msg));
}

static void admin_faults(struct sb_server *s, const struct sb_req *req, struct sb_resp *resp)
{
    struct es_err err = {0};
    if (strcmp(req->method, "DELETE") == 0) {
        sb_faults_set(s, NULL, 0);
        sb_resp_status(resp, 204);
        return;
    }
    if (strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
        char why[200];
        json_t *j = sb_req_json(req, why);
        if (!j) {
            admin_error(resp, 400, why);
            return;
        }
        struct sb_fault nf[SB_MAX_FAULTS];
        int n = 0;
        if (strcmp(req->method, "POST") == 0) {
            pthread_mutex_lock(&s->fmu);
            n = s->nfaults;
            memcpy(nf, s->faults, (size_t)n * sizeof *nf);
            pthread_mutex_unlock(&s->fmu);
        }
        size_t idx;
        json_t *v;
        json_t *arr = json_is_array(j) ? j : NULL;
        size_t total = arr ? json_array_size(arr) : 1;
        for (idx = 0; idx < total; idx++) {
            v = arr ? json_array_get(arr, idx) : j;
            if (n >= SB_MAX_FAULTS) {
                json_decref(j);
                admin_error(resp, 400, "too many fault rules");
                return;
            }
            if (sb_fault_from_json(v, &nf[n], &err)) {
                json_decref(j);
                admin_error(resp, 400, err.msg);
                return;
            }
            n++;
        }
        json_decref(j);
        sb_faults_set(s, nf, n);
    } else if (strcmp(req->method, "GET") != 0) {
        admin_error(resp, 405, "GET, POST, PUT or DELETE");
        return;
    }
    json_t *out = json_array();
    pthread_mutex_lock(&s->fmu);
    for (int i = 0; i < s->nfaults; i++) {
        json_array_append_new(out, fault_json(&s->faults[i]));
    }
    pthread_mutex_unlock(&s->fmu);
    sb_resp_json(resp, 200, json_pack("{s:o}", "faults", out));
}

static void admin_outbox(struct sb_server *s, struct sb_resp *resp)
{
    if (!s->odb) {
        sb_resp_json(resp, 200, json_pack("{s:i,s:i,s:[]}", "pending", 0, "delivered", 0, "items"));
        return;
    }
    sb_lock(s);
    sqlite3_stmt *st = NULL;
    json_t *items = json_array();
    long pending = 0, delivered = 0;
    if (sqlite3_prepare_v2(s->odb,
                           "SELECT id,url,attempts,delivered_at,last_status,last_error,"
                           "length(body) FROM sb_outbox ORDER BY id DESC LIMIT 100",
                           -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_array_insert_new(
                items, 0,
                json_pack(
                    "{s:I,s:s,s:i,s:b,s:i,s:s,s:i}", "id", (json_int_t)sqlite3_column_int64(st, 0),
                    "url", (const char *)sqlite3_column_text(st, 1), "attempts",
                    sqlite3_column_int(st, 2), "delivered",
                    sqlite3_column_type(st, 3) != SQLITE_NULL, "last_status",
                    sqlite3_column_int(st, 4), "last_error",
                    sqlite3_column_text(st, 5) ? (const char *)sqlite3_column_text(st, 5) : "",
                    "bytes", sqlite3_column_int(st, 6)));
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->odb,
                           "SELECT count(*) FILTER (WHERE delivered_at IS NULL),"
                           "count(*) FILTER (WHERE delivered_at IS NOT NULL) FROM sb_outbox",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        pending = sqlite3_column_int(st, 0);
        delivered = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    sb_unlock(s);
    sb_resp_json(resp, 200,
                 json_pack("{s:i,s:i,s:o}", "pending", (int)pending, "delivered", (int)delivered,
                           "items", items));
}

static void handle_admin(struct sb_server *s, const struct sb_req *req, struct sb_resp *resp)
{
    struct sb_caps caps;
    if (sb_match(req->path, "/__sandbox/health", NULL)) {
        sb_resp_json(resp, 200,
                     json_pack("{s:b,s:s,s:I}", "ok", 1, "emulator", s->app.name, "requests",
                               (json_int_t)__atomic_load_n(&s->requests, __ATOMIC_RELAXED)));
    } else if (sb_match(req->path, "/__sandbox/faults", NULL)) {
        admin_faults(s, req, resp);
    } else if (sb_match(req->path, "/__sandbox/outbox", NULL)) {
        admin_outbox(s, resp);
    } else if (sb_match(req->path, "/__sandbox/reset", NULL)) {
        if (strcmp(req->method, "POST") != 0) {
            admin_error(resp, 405, "POST");
        } else if (!s->app.reset) {
            admin_error(resp, 404, "this emulator has no reset");
        } else {
            sb_lock(s);
            if (s->odb) {
                sb_db_exec(s->odb, "DELETE FROM sb_outbox", NULL);
            }
            s->app.reset(s->app.ctx, req, resp);
            sb_unlock(s);
        }
    } else if (sb_match(req->path, "/__sandbox/records/*/*", &caps)) {
        if (!s->app.record) {
            admin_error(resp, 404, "this emulator has no record endpoint");
        } else {
            sb_lock(s);
            s->app.record(s->app.ctx, req, &caps, resp);
            sb_unlock(s);
        }
    } else {
        admin_error(resp, 404,
                    "admin endpoints: /__sandbox/health, /__sandbox/faults, /__sandbox/reset, "
                    "/__sandbox/records/{entity}/{key}, /__sandbox/outbox");
    }
}

static void default_fault_reply(int status, struct sb_resp *resp)
{
    sb_resp_json(resp, status,
                 json_pack("{s:{s:s,s:i}}", "error", "code", "SANDBOX_FAULT", "status", status));
}

static void free_release(void *p)
{
    es_free(p);
}

static void resp_release(struct sb_resp *r)
{
    for (int i = 0; i < r->nheaders; i++) {
        es_free(r->hname[i]);
        es_free(r->hvalue[i]);
    }
    r->nheaders = 0;
    es_buf_release(&r->body);
}

static enum MHD_Result send_resp(struct MHD_Connection *mc, struct sb_resp *r)
{
    size_t len = r->body.len;
    char *data = r->body.data ? es_buf_detach(&r->body, &len) : NULL;
    struct MHD_Response *mr;
    if (data) {
        mr = MHD_create_response_from_buffer_with_free_callback(len, data, free_release);
    } else {
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!mr) {
        es_free(data);
        return MHD_NO;
    }
    if (r->ctype[0]) {
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    }
    for (int i = 0; i < r->nheaders; i++) {
        MHD_add_response_header(mr, r->hname[i], r->hvalue[i]);
    }
    enum MHD_Result ret = MHD_queue_response(mc, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct sb_server *s = cls;
    struct conn *c = *con_cls;
    if (!c) {
        c = es_xcalloc(1, sizeof *c);
        c->srv = s;
        c->mc = mc;
        es_buf_init(&c->body, s->opts.max_body);
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!c->too_large && es_buf_append(&c->body, upload_data, *upload_data_size) != ES_OK) {
            c->too_large = 1;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    __atomic_add_fetch(&s->requests, 1, __ATOMIC_RELAXED);
    struct sb_req req = {method, url, c->body.data ? c->body.data : "", c->body.len, c};
    struct sb_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    es_buf_init(&resp.body, 0);
    if (!s->opts.quiet) {
        fprintf(stderr, "%s %s %s\n", s->app.name, method, url);
    }
    if (c->too_large) {
        sb_resp_json(&resp, 413,
                     json_pack("{s:s}", "error", "request body larger than --max-body"));
    } else if (strncmp(url, "/__sandbox/", 11) == 0) {
        handle_admin(s, &req, &resp);
    } else {
        int latency = 0, retry_after = 1, timeout_ms = 0;
        struct sb_fault canned;
        enum fault_action act =
            fault_pick(s, method, url, &latency, &retry_after, &timeout_ms, &canned);
        if (latency) {
            sleep_ms(s, latency);
        }
        if (act == FA_DROP) {
            resp_release(&resp);
            return MHD_NO;
        }
        if (act == FA_TIMEOUT) {
            sleep_ms(s, timeout_ms);
            resp_release(&resp);
            return MHD_NO;
        }
        if (act == FA_BODY) {
            resp.status = canned.body_status;
            es_strlcpy(resp.ctype, canned.body_ctype, sizeof resp.ctype);
            (void)es_buf_puts(&resp.body, canned.body);
        } else if (act != FA_NONE && act != FA_CUT) {
            int status = act == FA_429 ? 429 : act == FA_500 ? 500 : 503;
            if (s->app.fault_reply) {
                s->app.fault_reply(s->app.ctx, status, &resp);
            } else {
                default_fault_reply(status, &resp);
            }
            resp.status = status;
            if (act == FA_429 || act == FA_503) {
                char ra[24];
                snprintf(ra, sizeof ra, "%d", retry_after);
                sb_resp_header(&resp, "Retry-After", ra);
            }
        } else {
            if (!s->app.concurrent) {
                sb_lock(s);
            }
            s->app.handle(s->app.ctx, &req, &resp);
            if (!s->app.concurrent) {
                sb_unlock(s);
            }
            if (act == FA_CUT) {
                /* as a proxy that lost the rest: status and headers kept, body cut */
                resp.body.len /= 2;
            }
        }
    }
    if (resp.drop) {
        resp_release(&resp);
        return MHD_NO;
    }
    enum MHD_Result ret = send_resp(mc, &resp);
    resp_release(&resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)mc;
    (void)toe;
    struct conn *c = *con_cls;
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->nstrs; i++) {
        es_free(c->strs[i]);
    }
    es_free(c->strs);
    es_free(c->query);
    es_buf_release(&c->body);
    es_free(c);
    *con_cls = NULL;
}

/* Keeps the URL raw: handlers and sb_match() decode segment by segment. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void install_signals(void);

struct sb_server *sb_server_start(const struct sb_opts *o, const struct sb_app *app,
                                  struct es_err *err)
{
    install_signals(); /* a SIGTERM right after the "listening" line stops cleanly */
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, strcmp(o->host, "localhost") == 0 ? "127.0.0.1" : o->host,
                  &sa.sin_addr) != 1) {
        es_err_set(err, ES_EINVAL, "--listen: '%s' is not an IPv4 address", o->host);
        return NULL;
    }
    struct sb_server *s = es_xcalloc(1, sizeof *s);
    s->opts = *o;
    s->app = *app;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s->state, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_mutex_init(&s->fmu, NULL);
    pthread_mutex_init(&s->omu, NULL);
    pthread_cond_init(&s->ocond, NULL);
    s->rng = o->rng_seed ? o->rng_seed : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    s->rng |= 1;
    sb_faults_set(s, o->faults, o->nfaults);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_server = s;
    s->mhd = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            (o->quiet ? 0 : MHD_USE_ERROR_LOG),
        (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape,
        NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)300, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (!s->mhd) {
        es_err_set(err, ES_EIO, "cannot listen on %s:%d (port in use?)", o->host, o->port);
        g_server = NULL;
        es_free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    printf("erpsync-sandbox %s listening on http://%s:%d\n", app->name, o->host, s->port);
    fflush(stdout);
    return s;
}

int sb_server_port(const struct sb_server *s)
{
    return s->port;
}

static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
    g_signal = sig;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void sb_server_wait_signal(void)
{
    install_signals();
    while (!g_signal) {
        struct timespec ts = {0, 100 * 1000000L}; /* no pause(): it could miss a signal */
        nanosleep(&ts, NULL);
    }
}

void sb_server_stop(struct sb_server *s)
{
    if (!s) {
        return;
    }
    s->stopping = 1;
    if (s->orunning) {
        pthread_mutex_lock(&s->omu);
        pthread_cond_signal(&s->ocond);
        pthread_mutex_unlock(&s->omu);
        pthread_join(s->othread, NULL);
    }
    if (s->mhd) {
        MHD_stop_daemon(s->mhd);
    }
    if (g_server == s) {
        g_server = NULL;
    }
    pthread_mutex_destroy(&s->state);
    pthread_mutex_destroy(&s->fmu);
    pthread_mutex_destroy(&s->omu);
    pthread_cond_destroy(&s->ocond);
    curl_global_cleanup();
    es_free(s);
}

/* ---- outbox ----------------------------------------------------------------------- */

struct odelivery {
    int64_t id;
    char *url, *ctype, *headers, *ack;
    void *body;
    size_t len;
    int attempts;
};

static size_t collect_cb(char *p, size_t size, size_t n, void *data)
{
    struct es_buf *b = data;
    if (es_buf_append(b, p, size * n) != ES_OK) {
        return 0;
    }
    return size * n;
}

/* POSTs one notification; returns 1 when acknowledged. */
static int deliver(CURL *h, const struct odelivery *d, long *status, char *why, size_t whycap)
{
    curl_easy_reset(h);
    struct curl_slist *hl = NULL;
    char line[512];
    snprintf(line, sizeof line, "Content-Type: %s", d->ctype);
    hl = curl_slist_append(hl, line);
    hl = curl_slist_append(hl, "Expect:");
    if (d->headers) {
        const char *p = d->headers;
        while (*p) {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n && n < sizeof line) {
                memcpy(line, p, n);
                line[n] = '\0';
                hl = curl_slist_append(hl, line);
            }
            p += n;
            if (*p == '\n') {
                p++;
            }
        }
    }
    struct es_buf rb;
    es_buf_init(&rb, 1 << 20);
    curl_easy_setopt(h, CURLOPT_URL, d->url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)d->len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rb);
    CURLcode cc = curl_easy_perform(h);
    int ok = 0;
    *status = 0;
    if (cc != CURLE_OK) {
        es_strlcpy(why, curl_easy_strerror(cc), whycap);
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        if (*status < 200 || *status > 299) {
            snprintf(why, whycap, "HTTP %ld", *status);
        } else if (d->ack && (!rb.data || !strstr(rb.data, d->ack))) {
            snprintf(why, whycap, "answer does not contain %s", d->ack);
        } else {
            ok = 1;
            why[0] = '\0';
        }
    }
    es_buf_release(&rb);
    curl_slist_free_all(hl);
    return ok;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? es_xstrdup((const char *)t) : NULL;
}

static void *outbox_main(void *arg)
{
    struct sb_server *s = arg;
    CURL *h = curl_easy_init(); /* one handle: connections are reused */
    while (!s->stopping && h) {
        struct odelivery batch[16];
        int n = 0;
        sb_lock(s);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->odb,
                               "SELECT id,url,ctype,headers,body,ack,attempts FROM sb_outbox "
                               "WHERE delivered_at IS NULL AND next_at <= ?1 ORDER BY id "
                               "LIMIT 16",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, sb_now_ms());
            while (n < 16 && sqlite3_step(st) == SQLITE_ROW) {
                struct odelivery *d = &batch[n++];
                d->id = sqlite3_column_int64(st, 0);
                d->url = col_dup(st, 1);
                d->ctype = col_dup(st, 2);
                d->headers = col_dup(st, 3);
                d->len = (size_t)sqlite3_column_bytes(st, 4);
                d->body = es_xmalloc(d->len + 1);
                if (d->len) {
                    memcpy(d->body, sqlite3_column_blob(st, 4), d->len);
                }
                d->ack = col_dup(st, 5);
                d->attempts = sqlite3_column_int(st, 6);
            }
        }
        sqlite3_finalize(st);
        sb_unlock(s);
        for (int i = 0; i < n; i++) {
            struct odelivery *d = &batch[i];
            long status = 0;
            char why[256];
            int ok = !s->stopping && deliver(h, d, &status, why, sizeof why);
            int64_t wait = s->obase_ms;
            for (int a = 0; a < d->attempts && wait < s->omax_ms; a++) {
                wait *= 2;
            }
            if (wait > s->omax_ms) {
                wait = s->omax_ms;
            }
            sb_lock(s);
            st = NULL;
            if (sqlite3_prepare_v2(s->odb,
                                   "UPDATE sb_outbox SET attempts=attempts+1, last_status=?2, "
                                   "last_error=?3, delivered_at=CASE WHEN ?4 THEN ?5 END, "
                                   "next_at=?5+?6 WHERE id=?1",
                                   -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, d->id);
                sqlite3_bind_int(st, 2, (int)status);
                sqlite3_bind_text(st, 3, ok ? "" : why, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int(st, 4, ok);
                sqlite3_bind_int64(st, 5, sb_now_ms());
                sqlite3_bind_int64(st, 6, wait);
                sqlite3_step(st);
            }
            sqlite3_finalize(st);
            sb_unlock(s);
            es_free(d->url);
            es_free(d->ctype);
            es_free(d->headers);
            es_free(d->ack);
            es_free(d->body);
        }
        if (n == 16) {
            continue;
        }
        pthread_mutex_lock(&s->omu);
        if (!s->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->ocond, &s->omu, &ts);
        }
        pthread_mutex_unlock(&s->omu);
    }
    curl_easy_cleanup(h);
    return NULL;
}

int sb_outbox_start(struct sb_server *s, sqlite3 *db, int base_ms, int max_ms, struct es_err *err)
{
    int rc = sb_db_exec(db,
                        "CREATE TABLE IF NOT EXISTS sb_outbox(id INTEGER PRIMARY KEY, url TEXT "
                        "NOT NULL, ctype TEXT NOT NULL, headers TEXT, body BLOB, ack TEXT, "
                        "attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, "
                        "delivered_at INTEGER, last_status INTEGER, last_error TEXT, "
                        "created_at INTEGER NOT NULL)",
                        err);
    if (rc) {
        return rc;
    }
    s->odb = db;
    s->obase_ms = base_ms > 0 ? base_ms : 500;
    s->omax_ms = max_ms >= s->obase_ms ? max_ms : s->obase_ms;
    if (pthread_create(&s->othread, NULL, outbox_main, s) != 0) {
        s->odb = NULL;
        return es_err_set(err, ES_EIO, "cannot start the outbox thread");
    }
    s->orunning = 1;
    return ES_OK;
}

int sb_outbox_add(struct sb_server *s, const char *url, const char *ctype, const char *headers,
                  const char *body, size_t len, const char *ack, struct es_err *err)
{
    if (!s->odb) {
        return es_err_set(err, ES_EINVAL, "outbox not started");
    }
    sqlite3_stmt *st = NULL;
    int rc = ES_OK;
    if (sqlite3_prepare_v2(s->odb,
                           "INSERT INTO sb_outbox(url,ctype,headers,body,ack,next_at,created_at)"
                           " VALUES(?1,?2,?3,?4,?5,?6,?6)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = es_err_set(err, ES_ESTORE, "outbox: %s", sqlite3_errmsg(s->odb));
    } else {
        sqlite3_bind_text(st, 1, url, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, ctype, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, headers, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 4, body, (int)len, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, ack, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 6, sb_now_ms());
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = es_err_set(err, ES_ESTORE, "outbox: %s", sqlite3_errmsg(s->odb));
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_lock(&s->omu);
    pthread_cond_signal(&s->ocond);
    pthread_mutex_unlock(&s->omu);
    return rc;
}
