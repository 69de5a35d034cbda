#!/usr/bin/env bash
# House rules that a compiler does not check (after curl's checksrc):
# no strcpy/strcat/sprintf/atoi/gets/strtok, no bare malloc/free outside src/core/mem.c,
# no // comments, no TODO without an issue number, an SPDX line on top of every .c.
set -u
cd "$(dirname "$0")/.."
fail=0
files=$(git ls-files 'src/*.c' 'src/*.h' 'sandbox/*.c' 'sandbox/*.h' 2>/dev/null; \
        git ls-files --others --exclude-standard 'src/*.c' 'src/*.h' 'sandbox/*.c' 'sandbox/*.h' 2>/dev/null)
for f in $files; do
    [ -f "$f" ] || continue
    out=$(grep -nE '\b(strcpy|strcat|sprintf|vsprintf|atoi|atol|gets|strtok)\s*\(' "$f" | grep -v 'checksrc: ok')
    [ -n "$out" ] && { echo "$f: banned function:"; echo "$out"; fail=1; }
    if [ "$f" != "src/core/mem.c" ]; then
        out=$(grep -nE '(^|[^_a-zA-Z0-9.>])(malloc|calloc|realloc|free)\s*\(' "$f" | grep -v 'checksrc: ok')
        [ -n "$out" ] && { echo "$f: use es_xmalloc/es_free (src/core/mem.h):"; echo "$out"; fail=1; }
    fi
    out=$(grep -nE '^\s*//|[;{}]\s*//' "$f")
    [ -n "$out" ] && { echo "$f: use /* */ comments:"; echo "$out"; fail=1; }
    out=$(grep -nE '\b(TODO|FIXME)\b' "$f" | grep -vE '(TODO|FIXME)\(#[0-9]+\)')
    [ -n "$out" ] && { echo "$f: TODO needs an issue number, TODO(#N):"; echo "$out"; fail=1; }
    case "$f" in *.c) head -n 1 "$f" | grep -q 'SPDX-License-Identifier' || { echo "$f: first line must be the SPDX identifier"; fail=1; } ;; esac
done
[ $fail -eq 0 ] && echo "checksrc: ok"
exit $fail
