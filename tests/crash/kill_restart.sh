#!/usr/bin/env bash
# Usage: kill_restart.sh ERPSYNC clean|flaky [CHANGES] [KILLS]
# Runs `erpsync run` on CHANGES source records (memory connector backed by files, so both
# the source and the target survive the kills), SIGKILLs it KILLS times at random moments,
# restarts it each time, then drains with `run --once` and checks:
#   - the journal: every change done, nothing pending, leased, in retry, review or dead;
#   - the target (the file of every write it accepted): every (key, version) written at
#     least once, one target record per key (upserts by external id: redeliveries after a
#     kill land on the same record), and each record holds its key's data.
set -euo pipefail
ERPSYNC=$1
MODE=$2
N=${3:-10000}
KILLS=${4:-20}
DIR=$(mktemp -d /tmp/es_crash_XXXXXX)
trap 'rm -rf "$DIR"' EXIT
FAIL_RATE=0
[ "$MODE" = flaky ] && FAIL_RATE=0.3

python3 - "$DIR/src.jsonl" "$N" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        d = {"key": "k%05d" % i, "v": 1, "name": "record %d" % i, "pad": "x" * 200}
        f.write(json.dumps({"o": "Src", "id": d["key"], "data": d}) + "\n")
PY

cat > "$DIR/crash.yaml" <<YAML
store: sqlite:$DIR/state.db
workers: 2
server: {listen: "127.0.0.1:0"}
systems:
  src: {connector: memory, options: {file: "$DIR/src.jsonl"}}
  dst: {connector: memory, options: {file: "$DIR/dst.jsonl", fail_rate: "$FAIL_RATE"}}
entities:
  item: {objects: {src: Src, dst: Dst}}
flows:
  items:
    entity: item
    from: src
    to: dst
    trigger: {poll: 1s}
    batch_size: 100
    external_id: src_key
    retry: {max_attempts: 1000, base: 5ms, max: 50ms}
    map:
      src_key: {from: key, required: true}
      v: v
      name: {from: name, required: true}
YAML

for i in $(seq 1 "$KILLS"); do
    "$ERPSYNC" --log-level warn run --tick 20 "$DIR/crash.yaml" 2>>"$DIR/log" &
    pid=$!
    # A random moment: 0.1 .. 1.1 s after start (start-up, polling, mid-batch, mid-commit).
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.1, 1.1), 3))')"
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "daemon exited before kill $i:"
        grep -A60 -m1 'ERROR: AddressSanitizer\|runtime error' "$DIR/log" || tail -40 "$DIR/log"
        exit 1
    fi
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
done
echo "killed $KILLS times; draining"
if ! "$ERPSYNC" --log-level warn run --once --tick 20 "$DIR/crash.yaml" 2>>"$DIR/log"; then
    echo "drain failed:"; tail -60 "$DIR/log"; exit 1
fi
"$ERPSYNC" status --json "$DIR/crash.yaml" >"$DIR/status.json"

python3 - "$DIR" "$N" <<'PY'
import json, sys, collections
d, n = sys.argv[1], int(sys.argv[2])
st = json.load(open(d + "/status.json"))[0]
s = st["states"]
errors = []
if s["done"] != n:
    errors.append("done=%d, expected %d" % (s["done"], n))
for k in ("pending", "leased", "retry", "review", "dead"):
    if s[k] != 0:
        errors.append("%s=%d, expected 0" % (k, s[k]))
writes = collections.Counter()
ids = collections.defaultdict(set)
torn = 0
for line in open(d + "/dst.jsonl"):
    try:
        w = json.loads(line)
    except ValueError:
        torn += 1
        continue
    data = w["data"]
    if data["src_key"] != w["key"] or data["name"] != "record %d" % int(w["key"][1:]):
        errors.append("record %s holds data of another key" % w["id"])
    writes[(w["key"], data["v"])] += 1
    ids[w["key"]].add(w["id"])
missing = [k for k in ("k%05d" % i for i in range(n)) if writes[(k, 1)] == 0]
if missing:
    errors.append("%d changes never reached the target, e.g. %s" % (len(missing), missing[:3]))
dups = [k for k, v in ids.items() if len(v) != 1]
if dups:
    errors.append("%d keys have more than one target record, e.g. %s" % (len(dups), dups[:3]))
redelivered = sum(c - 1 for c in writes.values())
print("changes=%d done=%d target_records=%d writes=%d redelivered=%d torn_lines=%d" %
      (n, s["done"], len(ids), sum(writes.values()), redelivered, torn))
if errors:
    print("FAIL:\n  " + "\n  ".join(errors))
    sys.exit(1)
print("ok: every change reached the target exactly once in effect; nothing left leased")
PY
