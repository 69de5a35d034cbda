#!/usr/bin/env bash
# Usage: sf_sap.sh ERPSYNC ERPSYNC-SANDBOX
# Master data end to end with `erpsync run --once` against the Salesforce and SAP sandboxes
# (started here on free loopback ports, stopped at the end):
#   1. an Account created in Salesforce becomes an SAP business partner, and the partner
#      number is written back to Account.SAP_Customer_No__c; `erpsync xref` shows both ids;
#   2. the next run reads the write-back as a change: counted as an echo, and SAP is not
#      written (the partner's ETag stays);
#   3. an edit of the account crosses again (new ETag, new name), and nothing loops after;
#   4. a write-back that fails (503 injected on Salesforce PATCH) after the SAP write is
#      retried as a new change that repeats only the write-back (SAP written once);
#   5. realtime: the daemon receives signed CDC events from a second Salesforce sandbox; the
#      write-back's echo event (only the changed field) is skipped as an echo, not reviewed.
# Journal figures are read from the state file with sqlite3 (counts/changes tables).
set -euo pipefail
E=$1
SB=$2
DIR=$(mktemp -d /tmp/es_mdm_sfsap_XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$DIR"
}
trap cleanup EXIT

# start NAME [TAG [ARGS...]]: runs the emulator on a free port; sets URL.
start() {
    local name=$1 tag=${2:-$1}
    shift $(($# < 2 ? $# : 2))
    "$SB" "$name" --listen 127.0.0.1:0 --db "$DIR/$tag.db" --seed none "$@" >"$DIR/$tag.out" \
        2>"$DIR/$tag.log" &
    PIDS+=($!)
    for _ in $(seq 1 200); do
        URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$DIR/$tag.out" | head -1)
        [ -n "$URL" ] && return 0
        sleep 0.05
    done
    echo "FAIL: sandbox $tag did not start"; cat "$DIR/$tag.log"; exit 1
}
start salesforce
SF=$URL
start sap
SAP=$URL

export SF_CLIENT_ID=demo SF_CLIENT_SECRET=demo SAP_USER=demo SAP_PASSWORD=demo
cat >"$DIR/mdm.yaml" <<YAML
store: sqlite:$DIR/state.db
server: {listen: "127.0.0.1:0"}
systems:
  crm:
    connector: salesforce
    url: $SF
    auth: {oauth2_client_credentials: {id_env: SF_CLIENT_ID, secret_env: SF_CLIENT_SECRET}}
  erp:
    connector: sap_odata
    url: $SAP
    auth: {basic: {user_env: SAP_USER, password_env: SAP_PASSWORD}}
tables:
  countries: {Germany: DE, France: FR}
entities:
  customer:
    objects: {crm: Account, erp: A_BusinessPartner}
    system_of_record: crm
    conflict: source_of_record
    fields_owned_by: {erp: [SAP_Customer_No__c]}
flows:
  customer-to-erp:
    entity: customer
    from: crm
    to: erp
    trigger: {poll: 15m}
    external_id: SearchTerm2
    writeback: {field: SAP_Customer_No__c}
    retry: {max_attempts: 5, base: 1ms, max: 10ms}
    map:
      BusinessPartnerCategory: {const: "2"}
      OrganizationBPName1: {from: Name, max_length: 40, required: true}
      SearchTerm2: {from: Id, required: true}
      to_BusinessPartnerAddress[0].StreetName:
        expr: "address_street(BillingStreet, lookup('countries', BillingCountry))"
      to_BusinessPartnerAddress[0].CityName: {from: BillingCity, max_length: 40, required: true}
      to_BusinessPartnerAddress[0].PostalCode: {from: BillingPostalCode, max_length: 10}
      to_BusinessPartnerAddress[0].Country: {from: BillingCountry, table: countries, required: true}
YAML

fail() { echo "FAIL: $*"; exit 1; }
expect() { # expect WHAT GOT WANT
    [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
    echo "ok: $1 = $3"
}
run() { "$E" --log-level error run --once "$DIR/mdm.yaml"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
account() { curl -sf "$SF/__sandbox/records/Account/$1" | json "d['record'].get('$2') or ''"; }
bp_of() { # the partner whose SearchTerm2 is the account id
    curl -sf -u demo:demo -G "$SAP/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner" \
        --data-urlencode "\$filter=SearchTerm2 eq '$1'" --data-urlencode '$format=json' |
        json "' '.join(r['BusinessPartner'] for r in d['d']['results'])"
}
bp() { curl -sf "$SAP/__sandbox/records/A_BusinessPartner/$1" | json "d$2"; }
count() { sqlite3 "$DIR/state.db" "SELECT coalesce(sum(n), 0) FROM counts WHERE name = '$1'"; }
new_account() {
    curl -sf -X POST "$SF/__sandbox/records/Account/new" -d "$1" | json "d['record']['Id']"
}

# 1. create -> business partner, number written back, xref.
ID=$(new_account '{"Name":"Muster GmbH","BillingStreet":"Hauptstrasse 12","BillingCity":"Bonn","BillingPostalCode":"53111","BillingCountry":"Germany"}')
run
BP=$(bp_of "$ID")
[ -n "$BP" ] && [ "$BP" = "${BP% *}" ] || fail "expected one business partner for $ID, got '$BP'"
expect "partner name" "$(bp "$BP" "['OrganizationBPName1']")" "Muster GmbH"
expect "written back" "$(account "$ID" SAP_Customer_No__c)" "$BP"
"$E" xref --json "$DIR/mdm.yaml" customer crm "$ID" | python3 -c "
import json, sys
x = json.load(sys.stdin)
ids = {l['system']: l['id'] for l in x['links']}
assert ids == {'crm': '$ID', 'erp': '$BP'}, ids
assert x['global_id'], x"
"$E" xref "$DIR/mdm.yaml" customer erp "$BP" | grep -q "$ID" || fail "xref by the SAP id"
echo "ok: xref shows the global id with both ids"
ETAG=$(bp "$BP" "['__metadata']['etag']")

# 2. the write-back comes back as a change: an echo, no SAP write.
run
expect "echo skips" "$(count skipped.echo)" 1
expect "SAP partner ETag after the echo" "$(bp "$BP" "['__metadata']['etag']")" "$ETAG"
run
expect "SAP partner ETag after a quiet run" "$(bp "$BP" "['__metadata']['etag']")" "$ETAG"
expect "changes after a quiet run" "$(count enqueued)" 2

# 3. a user edits the account: it crosses again; nothing loops afterwards.
curl -sf -X PATCH "$SF/__sandbox/records/Account/$ID" -d '{"Name":"Muster AG"}' >/dev/null
run
expect "partner name after the edit" "$(bp "$BP" "['OrganizationBPName1']")" "Muster AG"
ETAG2=$(bp "$BP" "['__metadata']['etag']")
[ "$ETAG2" != "$ETAG" ] || fail "the edit did not reach SAP"
expect "still one partner" "$(bp_of "$ID")" "$BP"
run
expect "SAP partner ETag after the edit's run" "$(bp "$BP" "['__metadata']['etag']")" "$ETAG2"
expect "changes after the edit" "$(count enqueued)" 3

# 4. the write-back fails once after the SAP write: a follow-up change repeats only the
#    write-back (the SAP partner is written once).
ID2=$(new_account '{"Name":"Dupont SARL","BillingStreet":"12 Rue de Rivoli","BillingCity":"Paris","BillingPostalCode":"75001","BillingCountry":"France"}')
curl -sf -X POST "$SF/__sandbox/faults" \
    -d '{"route":"/services/data","method":"PATCH","rate_503":1,"count":1}' >/dev/null
run
BP2=$(bp_of "$ID2")
[ -n "$BP2" ] && [ "$BP2" = "${BP2% *}" ] || fail "expected one business partner for $ID2, got '$BP2'"
expect "written back after the failed attempt" "$(account "$ID2" SAP_Customer_No__c)" "$BP2"
# The note of each change of the account: its newest audit message (journal layout v3).
notes=$(sqlite3 "$DIR/state.db" "SELECT (SELECT a.msg FROM audit a WHERE a.change_id = c.id AND a.msg IS NOT NULL ORDER BY a.id DESC LIMIT 1) FROM changes c WHERE c.key = '$ID2' ORDER BY c.id")
echo "$notes"
echo "$notes" | head -1 | grep -q "retried as a new change" || fail "first change: $notes"
echo "$notes" | sed -n 2p | grep -q "^write-back repeated; $BP2 written back to SAP_Customer_No__c" ||
    fail "follow-up change did more than the write-back: $notes"
gauge() { sqlite3 "$1" "SELECT coalesce(sum(n), 0) FROM counts WHERE name IN ($2)"; }
expect "changes not done" "$(gauge "$DIR/state.db" "'state.pending','state.leased','state.retry','state.review','state.dead'")" 0

# 5. realtime: CDC events signed with a shared secret, sent by a second Salesforce sandbox
#    to the daemon's webhook. An update event carries only the changed fields.
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
export SF_HOOK_SECRET=mdm-hook-secret
start salesforce sf2 --notify-url "http://127.0.0.1:$PORT/hooks/crm" --notify-secret-env SF_HOOK_SECRET
SF2=$URL
start sap sap2 # its own ERP too: the second org numbers its accounts from 1 again
SAP2=$URL
sed -e "s#sqlite:$DIR/state.db#sqlite:$DIR/rt.db#" -e "s#listen: \"127.0.0.1:0\"#listen: \"127.0.0.1:$PORT\"#" \
    -e "s#url: $SAP#url: $SAP2#" \
    -e "s#url: $SF#url: $SF2\n    webhook: {path: /hooks/crm, hmac_secret_env: SF_HOOK_SECRET, format: cdc}#" \
    -e "s#trigger: {poll: 15m}#trigger: {realtime: true, poll: 15m}#" "$DIR/mdm.yaml" >"$DIR/rt.yaml"
"$E" --log-level warn run "$DIR/rt.yaml" 2>"$DIR/rt.log" &
DAEMON=$!
PIDS+=($DAEMON)
for _ in $(seq 1 100); do # the webhook answers (401: unsigned) once the daemon is up
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/hooks/crm" -d '{}')" != 000 ] && break
    sleep 0.1
done
ID3=$(curl -sf -X POST "$SF2/__sandbox/records/Account/new" \
    -d '{"Name":"Rossi SpA","BillingStreet":"Via Roma 1","BillingCity":"Paris","BillingPostalCode":"75002","BillingCountry":"France"}' |
    json "d['record']['Id']")
rtq() { sqlite3 "$DIR/rt.db" "$1"; }
for _ in $(seq 1 300); do # until the create and its write-back's echo are both done
    [ "$(gauge "$DIR/rt.db" "'state.done'")" -ge 2 ] && break
    sleep 0.1
done
kill -TERM "$DAEMON"
wait "$DAEMON" || fail "daemon exit status $?: $(tail -5 "$DIR/rt.log")"
rtq "SELECT id, version FROM changes WHERE key = '$ID3'"
SAP=$SAP2
BP3=$(bp_of "$ID3")
[ -n "$BP3" ] || fail "realtime: no business partner for $ID3"
expect "realtime: written back" "$(curl -sf "$SF2/__sandbox/records/Account/$ID3" | json "d['record'].get('SAP_Customer_No__c')")" "$BP3"
expect "realtime: echo events skipped" "$(rtq "SELECT n FROM counts WHERE name = 'skipped.echo'")" 1
expect "realtime: review items" "$(gauge "$DIR/rt.db" "'state.review'")" 0
echo "ok: master data with the Salesforce and SAP sandboxes"
