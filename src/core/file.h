/* SPDX-License-Identifier: MIT */
/*
 * Whole-file reads for configuration, fixtures and schema files.
 */
#ifndef ES_CORE_FILE_H
#define ES_CORE_FILE_H

#include <stddef.h>

#include "core/err.h"

/* Reads path into a NUL-terminated buffer of at most max bytes. Errors: ES_EIO (cannot
 * open or read, errno in err->sys_errno), ES_ENOMEM (larger than max).
 * OUT: *data, caller frees with es_free(); *len excludes the NUL. */
ES_NODISCARD int es_file_read(const char *path, size_t max, char **data, size_t *len,
                              struct es_err *err);

#endif
