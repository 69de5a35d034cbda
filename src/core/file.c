/* SPDX-License-Identifier: MIT */
/*
 * Whole-file reads with a size cap, so a wrong path to a huge file fails cleanly instead of
 * filling memory.
 */
#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"

int es_file_read(const char *path, size_t max, char **data, size_t *len, struct es_err *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        int rc = es_err_set(err, ES_EIO, "%s: cannot open: %s", path, strerror(e));
        if (err) {
            err->sys_errno = e;
        }
        return rc;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 16384;
            buf = es_xrealloc(buf, cap + 1);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) {
            break;
        }
        n += got;
        if (n > max) {
            fclose(f);
            es_free(buf);
            return es_err_set(err, ES_ENOMEM, "%s: larger than %zu bytes", path, max);
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        es_free(buf);
        return es_err_set(err, ES_EIO, "%s: read error", path);
    }
    if (!buf) {
        buf = es_xmalloc(1);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return ES_OK;
}
