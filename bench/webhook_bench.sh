#!/usr/bin/env bash
# Webhook throughput with durability: wrk drives signed webhooks at `erpsync run` on loopback and
# the script prints accepted events/s and p50/p99 latency. Every 2xx is answered only after
# the change is committed to the SQLite journal (synchronous=FULL, group commit); at the end
# the script checks that the journal holds every accepted event.
#
#   make bench && bench/webhook_bench.sh
# Environment (defaults): DURATION=10 CONNS=32 WRK_THREADS=1 EVENTS=400000 WORKERS=2 THREADS=2
#   MODE=process   the flow's workers map and write every change while webhooks arrive
#   MODE=ingest    the flow is paused (admin API) first: webhook -> journal commit only
#   BIN=build/bench/erpsync  DIR=(temp dir)  KEEP=0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
WRK_THREADS=${WRK_THREADS:-1}
EVENTS=${EVENTS:-400000}
WORKERS=${WORKERS:-2}
MODE=${MODE:-process}
THREADS=${THREADS:-2}
BIN=${BIN:-$root/build/bench/erpsync}
command -v wrk >/dev/null || { echo "webhook_bench: wrk is not installed (apt install wrk)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "webhook_bench: $BIN missing: run 'make bench' first" >&2; exit 1; }

dir=${DIR:-$(mktemp -d /tmp/erpsync-webhook-bench.XXXXXX)}
mkdir -p "$dir"
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT

export ES_BENCH_HOOK_SECRET=bench-hook-secret-0123456789
export ES_BENCH_ADMIN_TOKEN=bench-admin-token-0123456789
cat > "$dir/bench.yaml" <<YAML
store: sqlite:$dir/state.db
workers: $WORKERS
server: {listen: 127.0.0.1:0, admin_token_env: ES_BENCH_ADMIN_TOKEN, threads: $THREADS}
systems:
  crm:
    connector: memory
    webhook: {path: /hooks/crm, hmac_secret_env: ES_BENCH_HOOK_SECRET}
  erp: {connector: memory}
entities:
  customer: {objects: {crm: Account, erp: Customer}}
flows:
  customer-to-erp:
    entity: customer
    from: crm
    to: erp
    trigger: {realtime: true}
    map:
      name: Name
      street: BillingStreet
      city: BillingCity
      postal_code: BillingPostalCode
      country: BillingCountry
YAML

# Pre-signed bodies: one Account change per line, "hex-hmac<TAB>json".
python3 - "$dir/bodies.tsv" "$EVENTS" <<'PY'
import hashlib, hmac, json, os, sys
key = os.environ["ES_BENCH_HOOK_SECRET"].encode()
with open(sys.argv[1], "w") as out:
    for i in range(int(sys.argv[2])):
        body = json.dumps({"id": "001B%011d" % i, "version": "2026-11-27T10:00:00.000Z",
                           "data": {"Id": "001B%011d" % i, "Name": "Account %d GmbH" % i,
                                    "BillingStreet": "Hauptstrasse %d" % (i % 200 + 1),
                                    "BillingCity": "Berlin", "BillingPostalCode": "10115",
                                    "BillingCountry": "Germany", "Phone": "+49 30 %07d" % i}},
                          separators=(",", ":"))
        sig = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
        out.write("sha256=%s\t%s\n" % (sig, body))
PY

"$BIN" --log-level info run "$dir/bench.yaml" > "$dir/server.out" 2> "$dir/server.err" &
pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on port \([0-9][0-9]*\).*/\1/p' "$dir/server.err" | head -n 1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "webhook_bench: server did not start:" >&2; cat "$dir/server.err" >&2; exit 1; }
url="http://127.0.0.1:$port/hooks/crm"
if [ "$MODE" = ingest ]; then
    curl -fsS -X POST -H "Authorization: Bearer $ES_BENCH_ADMIN_TOKEN" \
        "http://127.0.0.1:$port/api/flows/customer-to-erp/pause" >/dev/null
fi

# The disk's fdatasync rate right now, for context (group commit makes many events per sync).
fsyncs=$(python3 - "$dir" <<'PY'
import os, sys, time
fd = os.open(os.path.join(sys.argv[1], "fsync.probe"), os.O_WRONLY | os.O_CREAT, 0o644)
n, t0 = 0, time.time()
while time.time() - t0 < 1.0:
    os.write(fd, b"x" * 100); os.fdatasync(fd); n += 1
print(n)
PY
)
echo "webhook_bench: $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg), disk ${fsyncs} fdatasync/s"
echo "webhook_bench: mode $MODE, $CONNS connections, wrk threads $WRK_THREADS, ${DURATION}s, server threads $THREADS, engine workers $WORKERS"
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
cpu0=$(cpu)
BODIES="$dir/bodies.tsv" WRK_THREADS=$WRK_THREADS \
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$here/webhook_bench.lua" "$url" \
    > "$dir/wrk.out"
cpu1=$(cpu)
rss=$(awk '/^VmHWM/{print $2}' /proc/$pid/status)
curl -fsS "http://127.0.0.1:$port/metrics" > "$dir/metrics.txt"
kill -TERM "$pid"
wait "$pid" || true
pid=""
grep -E '^(requests|accepted_per_s)' "$dir/wrk.out"
accepted=$(awk '/^requests/{print $4}' "$dir/wrk.out")
m() { awk -v s="$1" '$1 == s {print $2}' "$dir/metrics.txt"; }
commits=$(m erpsync_webhook_commits_total)
enq=$(m 'erpsync_flow_enqueued_total{flow="customer-to-erp"}')
dup=$(m 'erpsync_flow_duplicates_total{flow="customer-to-erp"}')
done_=$(m 'erpsync_flow_records_done_total{flow="customer-to-erp"}')
pend=$(m 'erpsync_flow_changes{flow="customer-to-erp",state="pending"}')
echo "journal: enqueued $enq duplicates $dup done $done_ pending $pend; $commits webhook commits" \
     "($(( (enq + dup) / (commits > 0 ? commits : 1) )) events per commit); server peak RSS $((rss / 1024)) MiB"
tck=$(getconf CLK_TCK)
echo "erpsync CPU: $(( (cpu1 - cpu0) * 1000000 / tck / (accepted > 0 ? accepted : 1) )) us per accepted event" \
     "($(( (cpu1 - cpu0) * 100 / tck / DURATION ))% of one core on average)"
if [ "$((enq + dup))" -lt "$accepted" ]; then
    echo "webhook_bench: FAIL: $accepted accepted but only $((enq + dup)) in the journal" >&2
    exit 1
fi
echo "webhook_bench: every accepted event is in the journal"
