#!/usr/bin/env bash
# Usage: ops_cli.sh ERPSYNC
# The operator commands over a real journal: `run --once` parks changes (review: a record
# without a required field; dead: transient failures past max_attempts), then status, dlq,
# review and flow move them between states, checked through `status --json`.
set -euo pipefail
E=$1
DIR=$(mktemp -d /tmp/es_ops_XXXXXX)
trap 'rm -rf "$DIR"' EXIT
python3 - "$DIR/src.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(20):
        d = {"key": "k%d" % i, "v": 1, "name": "n%d" % i}
        if i == 7:
            del d["name"]
        f.write(json.dumps({"o": "Src", "id": d["key"], "data": d}) + "\n")
PY
cat >"$DIR/ops.yaml" <<YAML
store: sqlite:$DIR/state.db
server: {listen: "127.0.0.1:0"}
systems:
  src: {connector: memory, options: {file: "$DIR/src.jsonl"}}
  dst: {connector: memory, options: {file: "$DIR/dst.jsonl", fail_every: "4"}}
entities:
  item: {objects: {src: Src, dst: Dst}}
flows:
  items:
    entity: item
    from: src
    to: dst
    trigger: {poll: 1h}
    external_id: src_key
    retry: {max_attempts: 1, base: 1ms, max: 1ms}
    map:
      src_key: {from: key, required: true}
      name: {from: name, required: true}
YAML
state() { # state NAME -> count from status --json
    "$E" status --json "$DIR/ops.yaml" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['states']['$1'])"
}
expect() { # expect WHAT GOT WANT
    if [ "$2" != "$3" ]; then echo "FAIL: $1: got '$2', want '$3'"; exit 1; fi
    echo "ok: $1 = $3"
}
"$E" --log-level error run --once "$DIR/ops.yaml"
expect "review after first run" "$(state review)" 1
dead=$(state dead)
[ "$dead" -ge 1 ] || { echo "FAIL: no dead letters"; exit 1; }
expect "done + review + dead" "$(( $(state done) + 1 + dead ))" 20
"$E" status "$DIR/ops.yaml" | grep -q '^items '

rid=$("$E" review list --json "$DIR/ops.yaml" | python3 -c "import json,sys; r=json.load(sys.stdin); print(r[0]['id'])")
"$E" review show --json "$DIR/ops.yaml" "$rid" | python3 -c "
import json,sys
c=json.load(sys.stdin)
assert c['key']=='k7' and c['code']=='validation' and 'name' in c['message'], c
assert c['history'][0]['state']=='review', c"
echo "ok: review show names the key and the field"
if "$E" review resolve "$DIR/ops.yaml" "$rid" 2>/dev/null; then echo "FAIL: resolve without --note"; exit 1; fi
"$E" review resolve --note "fixed by hand" "$DIR/ops.yaml" "$rid" >/dev/null
expect "review after resolve" "$(state review)" 0

did=$("$E" dlq list --json "$DIR/ops.yaml" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['id'])")
"$E" dlq show "$DIR/ops.yaml" "$did" | grep -q '"state": "dead"'
"$E" dlq replay "$DIR/ops.yaml" "$did" >/dev/null
expect "dead after one replay" "$(state dead)" "$((dead - 1))"
expect "pending after replay" "$(state pending)" 1
if "$E" dlq replay "$DIR/ops.yaml" "$did" 2>/dev/null; then echo "FAIL: replay of a pending change"; exit 1; fi

"$E" flow pause --reason maintenance "$DIR/ops.yaml" items >/dev/null
"$E" --log-level error run --once "$DIR/ops.yaml"
expect "pending while paused" "$(state pending)" 1
"$E" flow resume "$DIR/ops.yaml" items >/dev/null
# fail_every 4 counts per process: the first write of this run succeeds.
"$E" --log-level error run --once "$DIR/ops.yaml"
expect "pending after resume" "$(state pending)" 0
if "$E" flow pause "$DIR/ops.yaml" nope 2>/dev/null; then echo "FAIL: unknown flow accepted"; exit 1; fi

# The daemon: SIGHUP reloads, SIGTERM drains and exits 0 with nothing left leased.
"$E" run "$DIR/ops.yaml" 2>"$DIR/daemon.log" &
pid=$!
sleep 2
kill -HUP "$pid"
sleep 1
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
expect "daemon exit status after SIGTERM" "$rc" 0
grep -q 'msg=stopped' "$DIR/daemon.log" || { echo "FAIL: no clean stop"; cat "$DIR/daemon.log"; exit 1; }
grep -q 'reload' "$DIR/daemon.log" || { echo "FAIL: SIGHUP not handled"; exit 1; }
expect "leased after SIGTERM" "$(state leased)" 0

# Retention: the default (30d) keeps today's changes; a daemon with `retention: 1ms` prunes the
# done ones at its first scheduler pass, and keeps the dead letters; `prune --older-than`
# does the same by hand.
"$E" prune "$DIR/ops.yaml" | grep -q '^pruned 0 done changes' || { echo "FAIL: default retention pruned"; exit 1; }
done_before=$(state done)
dead_now=$(state dead)
[ "$done_before" -ge 1 ] || { echo "FAIL: nothing done to prune"; exit 1; }
sed 's/^flows:/retention: 1ms\nflows:/' "$DIR/ops.yaml" >"$DIR/retain.yaml"
sleep 0.1
"$E" --log-level info run --once "$DIR/retain.yaml" 2>"$DIR/retain.log"
grep -q "pruned $done_before done changes" "$DIR/retain.log" || { echo "FAIL: no prune"; cat "$DIR/retain.log"; exit 1; }
expect "done after a run with retention 1ms" "$(state done)" 0
expect "dead letters kept by retention" "$(state dead)" "$dead_now"
pruned=$("$E" prune --json --older-than 1ms "$DIR/ops.yaml" | python3 -c "import json,sys; print(json.load(sys.stdin)['changes'])")
expect "pruned by hand after that" "$pruned" 0
if "$E" prune --older-than soon "$DIR/ops.yaml" 2>/dev/null; then echo "FAIL: bad duration accepted"; exit 1; fi

# A secret named in the config but missing from the environment stops `run` at startup.
sed 's/  dst: {connector: memory,/  dst: {connector: memory, auth: {bearer_token_env: ES_OPS_TEST_UNSET_TOKEN},/' \
    "$DIR/ops.yaml" >"$DIR/secret.yaml"
unset ES_OPS_TEST_UNSET_TOKEN
if "$E" run --once "$DIR/secret.yaml" 2>"$DIR/secret.log"; then
    echo "FAIL: run started without its secret"; exit 1
fi
grep -q ES_OPS_TEST_UNSET_TOKEN "$DIR/secret.log" || { cat "$DIR/secret.log"; exit 1; }
echo "ok: missing secret refused at startup"
echo "ok: operator commands"
