/* SPDX-License-Identifier: MIT */
/*
 * Collected diagnostics and their rendering with a caret (jq locfile / h2o configurator
 * style). Kept separate from the loader so the mapping compiler reports the same way.
 */
#include "core/diag.h"

#include <stdarg.h>
#include <string.h>

#include "core/mem.h"

void es_diags_init(struct es_diags *d)
{
    memset(d, 0, sizeof *d);
}

void es_diags_release(struct es_diags *d)
{
    for (size_t i = 0; i < d->count; i++) {
        es_free(d->items[i].file);
        es_free(d->items[i].msg);
        es_free(d->items[i].source);
    }
    es_free(d->items);
    memset(d, 0, sizeof *d);
}

int es_diags_full(const struct es_diags *d)
{
    return d->errors >= ES_DIAG_MAX;
}

static char *quote_line(const char *text, int line)
{
    if (!text || line < 1) {
        return NULL;
    }
    const char *p = text;
    for (int l = 1; l < line; l++) {
        p = strchr(p, '\n');
        if (!p) {
            return NULL;
        }
        p++;
    }
    return es_xstrndup(p, strcspn(p, "\r\n"));
}

void es_diags_add(struct es_diags *d, enum es_diag_severity sev, const char *text, const char *file,
                  int line, int col, const char *fmt, ...)
{
    if (sev == ES_DIAG_ERROR) {
        if (es_diags_full(d)) {
            d->dropped++;
            return;
        }
        d->errors++;
    } else if (sev == ES_DIAG_WARNING) {
        d->warnings++;
    }
    ES_GROW(d->items, d->cap, d->count + 1);
    struct es_diag *it = &d->items[d->count++];
    it->severity = sev;
    it->file = es_xstrdup(file ? file : "<input>");
    it->line = line;
    it->col = col;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    it->msg = es_xmalloc((size_t)(n > 0 ? n : 0) + 1);
    va_start(ap, fmt);
    vsnprintf(it->msg, (size_t)(n > 0 ? n : 0) + 1, fmt, ap);
    va_end(ap);
    it->source = quote_line(text, line);
}

static const char *sev_name(enum es_diag_severity s)
{
    switch (s) {
    case ES_DIAG_ERROR:
        return "error";
    case ES_DIAG_WARNING:
        return "warning";
    case ES_DIAG_NOTE:
        return "note";
    }
    return "error";
}

void es_diags_print(const struct es_diags *d, FILE *out)
{
    for (size_t i = 0; i < d->count; i++) {
        const struct es_diag *it = &d->items[i];
        if (it->line > 0) {
            fprintf(out, "%s:%d:%d: %s: %s\n", it->file, it->line, it->col, sev_name(it->severity),
                    it->msg);
        } else {
            fprintf(out, "%s: %s: %s\n", it->file, sev_name(it->severity), it->msg);
        }
        if (it->source) {
            fprintf(out, "%5d | %s\n      | ", it->line, it->source);
            /* Keep tabs so the caret lines up under tab-indented text. */
            for (int c = 1; c < it->col && it->source[c - 1]; c++) {
                fputc(it->source[c - 1] == '\t' ? '\t' : ' ', out);
            }
            fputs("^\n", out);
        }
    }
    if (d->dropped) {
        fprintf(out, "(%d more errors not shown)\n", d->dropped);
    }
}

int es_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) {
        return 100;
    }
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = (int)j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = prev[j - 1] + cost;
            if (prev[j] + 1 < best) {
                best = prev[j] + 1;
            }
            if (cur[j - 1] + 1 < best) {
                best = cur[j - 1] + 1;
            }
            cur[j] = best;
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}
