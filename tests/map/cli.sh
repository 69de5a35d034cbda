#!/usr/bin/env bash
# erpsync map / erpsync test as a user runs them: streaming NDJSON, failures as JSON lines on
# stderr with record index, field, code and message, exit codes, compile errors with their
# file:line:column, and fixture failures reported with a diff.
set -u
ERPSYNC=$1
SRC=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
checks=0
check() { # name, condition result
    checks=$((checks + 1))
    if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}

# 1. streaming map: 3 good records, 1 failing, 1 blank line, 1 garbage line
printf '%s\n' \
    '{"Name":"Acme","BillingCountry":"Germany","BillingStreet":"Hauptstraße 1"}' \
    '{"BillingCountry":"France"}' \
    '' \
    '{"Name":"Globex","BillingCountry":"United States","BillingStreet":"350 Fifth Avenue"}' \
    '{not json' \
    '{"Name":"Initech","BillingCountry":"France"}' >"$TMP/in.ndjson"
"$ERPSYNC" map "$SRC/tests/map/map.yaml" account <"$TMP/in.ndjson" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "map exits non-zero when a record failed" $([ $rc -ne 0 ]; echo $?)
check "map writes one line per good record" $([ "$(wc -l <"$TMP/out")" -eq 3 ]; echo $?)
check "map keeps input order" $(head -1 "$TMP/out" | grep -q '"Name1":"Acme"' && sed -n 3p "$TMP/out" | grep -q Initech; echo $?)
check "failure line names record, field, rule, code" \
    $(grep -q '^{"record":2,"line":2,"field":"Name1","rule":"required","code":"validation","message":' "$TMP/err"; echo $?)
check "garbage is poison with its record index" \
    $(grep -q '^{"record":4,"line":5,"field":"","rule":"","code":"poison"' "$TMP/err"; echo $?)
check "every stderr failure line is JSON" \
    $(grep '^{' "$TMP/err" | python3 -c 'import sys,json; [json.loads(l) for l in sys.stdin]' ; echo $?)

# 2. all good -> exit 0
head -1 "$TMP/in.ndjson" | "$ERPSYNC" map "$SRC/tests/map/map.yaml" account >"$TMP/out" 2>"$TMP/err"
check "map exits 0 when all records map" $?

# 3. xref from a file, and a clear failure without it
echo '{"customer": {"001": "17100001"}}' >"$TMP/xref.json"
cat >"$TMP/x.yaml" <<YAML
systems: {crm: {connector: memory}, erp: {connector: memory}}
entities: {customer: {objects: {crm: Account, erp: Customer}}}
flows:
  f:
    entity: customer
    from: crm
    to: erp
    trigger: {poll: 1m}
    map: {Party: {expr: "xref('customer', AccountId)"}}
YAML
echo '{"AccountId":"001"}' | "$ERPSYNC" map --xref "$TMP/xref.json" "$TMP/x.yaml" f >"$TMP/out" 2>"$TMP/err"
check "map --xref answers xref()" $(grep -q '^{"Party":"17100001"}$' "$TMP/out"; echo $?)
echo '{"AccountId":"001"}' | "$ERPSYNC" map "$TMP/x.yaml" f >"$TMP/out" 2>"$TMP/err"
check "xref without --xref is a clear not_found failure" \
    $(grep -q '"code":"not_found","message":"xref(.customer., .001.): no xref available"' "$TMP/err"; echo $?)

# 4. pre-flight validation against a connector's describe output (--schema)
cat >"$TMP/describe.json" <<'JSON'
{"name": "Customer", "fields": [
  {"name": "Name1", "type": "string", "length": 10, "nillable": false, "createable": true},
  {"name": "Country", "type": "picklist", "nillable": true, "picklistValues": [{"value": "DE"}, {"value": "FR"}]}]}
JSON
printf '%s\n' '{"Name":"Acme","BillingCountry":"Germany"}' \
    '{"Name":"Acme Corporation Worldwide","BillingCountry":"Germany"}' \
    '{"Name":"Globex","BillingCountry":"United States"}' |
    "$ERPSYNC" map --schema "$TMP/describe.json" "$SRC/tests/map/map.yaml" account >"$TMP/out" 2>"$TMP/err"
check "--schema: a valid record passes" $([ "$(wc -l <"$TMP/out")" -eq 1 ]; echo $?)
check "--schema: max_length from describe" \
    $(grep -q '"record":2,"line":2,"field":"Name1","rule":"max_length","code":"validation"' "$TMP/err"; echo $?)
check "--schema: picklist from describe" \
    $(grep -q '"record":3,"line":3,"field":"Country","rule":"picklist","code":"validation"' "$TMP/err"; echo $?)

# 5. compile error points into the YAML file
"$ERPSYNC" map "$SRC/tests/map/bad/config.yaml" f </dev/null >"$TMP/out" 2>"$TMP/err"
rc=$?
check "a mapping with an error does not run" $([ $rc -ne 0 ]; echo $?)
check "compile error at file:line:column" \
    $(grep -q "bad/config.yaml:14:34: error: .*unknown function 'uper' (did you mean 'upper'?)" "$TMP/err"; echo $?)

# 6. erpsync test reports wrong expectations with a diff and exits 1
"$ERPSYNC" test "$SRC/tests/map/map.yaml" "$SRC/tests/map/bad/wrong.test" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "test exits 1 on failures" $([ $rc -eq 1 ]; echo $?)
check "test prints N passed, M failed" $(grep -q '^0 passed, 2 failed$' "$TMP/out"; echo $?)
check "test shows the diff" $(grep -q '^    - "abc"$' "$TMP/err" && grep -q '^    + "ABC"$' "$TMP/err"; echo $?)

echo "$((checks - fails)) passed, $fails failed"
[ $fails -eq 0 ]
