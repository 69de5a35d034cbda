#!/usr/bin/env bash
# Mapping benchmark, side by side: erpsync's mapping engine (yajl streaming path and jansson
# json_t path) and the same mapping in Node.js, Python and jq (bench/peers/), on N
# Salesforce-like Account records (bench/gen_accounts.py), NDJSON file -> /dev/null, one
# process each, input from the page cache. Prints records/s, peak RSS and CPU per peer.
#   bench/map_bench.sh [N] [RUNS]       N=1000000 RUNS=1 by default
#   MAP_BENCH=path/to/map_bench         default: build/release/bench/map_bench, then others
#   PEERS="erpsync-yajl erpsync-jansson node python jq"   to choose
# Build map_bench in Release: cmake -B build/release -DCMAKE_BUILD_TYPE=Release -DES_BENCH=ON
#   && cmake --build build/release --target map_bench
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=${1:-1000000}
RUNS=${2:-1}
PEERS=${PEERS:-"erpsync-yajl erpsync-jansson node python jq"}
if [ -z "${MAP_BENCH:-}" ]; then
    for c in "$HERE/../build/release/bench/map_bench" "$HERE/../build/bench/map_bench" \
             "$HERE"/../build/*/bench/map_bench; do
        if [ -x "$c" ]; then MAP_BENCH=$c; break; fi
    done
fi
[ -x "${MAP_BENCH:-}" ] || { echo "map_bench not found: set MAP_BENCH (see the header)" >&2; exit 1; }
DATA=${DATA:-${TMPDIR:-/tmp}/erpsync-accounts-$N.ndjson}
if [ ! -s "$DATA" ]; then
    echo "generating $N records into $DATA ..." >&2
    python3 "$HERE/gen_accounts.py" "$N" >"$DATA.tmp" && mv "$DATA.tmp" "$DATA"
fi
cat "$DATA" >/dev/null # page cache
CFG="$HERE/map_bench.yaml"
TIMES=$(mktemp)
trap 'rm -f "$TIMES" "$TIMES.err"' EXIT

cmd_for() {
    case $1 in
    erpsync-yajl) echo "$MAP_BENCH --parser yajl $CFG accounts" ;;
    erpsync-jansson) echo "$MAP_BENCH --parser jansson $CFG accounts" ;;
    node) command -v node >/dev/null && echo "node $HERE/peers/map.js" ;;
    python) command -v python3 >/dev/null && echo "python3 $HERE/peers/map.py" ;;
    jq) command -v jq >/dev/null && echo "jq -c -f $HERE/peers/map.jq" ;;
    esac
}

echo "records: $N ($(du -m "$DATA" | cut -f1) MiB), runs: $RUNS, $(nproc) CPUs, $(date -u +%FT%TZ)"
printf '%-16s %9s %12s %12s %10s\n' peer wall_s records/s peak_MiB cpu_s
for peer in $PEERS; do
    cmd=$(cmd_for "$peer") || true
    if [ -z "$cmd" ]; then
        printf '%-16s %s\n' "$peer" "(not installed)"
        continue
    fi
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -o "$TIMES" -f '%e %M %U %S' $cmd <"$DATA" >/dev/null 2>"$TIMES.err" ||
            { echo "$peer failed:" >&2; tail -3 "$TIMES.err" >&2; continue; }
        read -r wall rss user sys <"$TIMES"
        awk -v p="$peer" -v w="$wall" -v r="$rss" -v u="$user" -v s="$sys" -v n="$N" \
            'BEGIN { printf "%-16s %9.2f %12.0f %12.1f %10.2f\n", p, w, n / w, r / 1024, u + s }'
    done
done
