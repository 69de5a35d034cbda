#!/usr/bin/env bash
# erpsync's own command line: version, help, validate (exit codes, FILE:LINE:COL, suggestion,
# secrets never printed), config-docs (matches docs/config-reference.md).
set -u
BIN=$1
SRC=$2
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, condition result (0 = ok)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}

$BIN --version | grep -qE '^erpsync [0-9]+\.[0-9]+\.[0-9]+$'; check "--version" $?
$BIN help | grep -q 'validate CONFIG'; check "help lists validate" $?
$BIN help validate | grep -q 'usage: erpsync validate'; check "help COMMAND" $?
$BIN nonsense >/dev/null 2>&1; [ $? -eq 64 ]; check "unknown command exits 64" $?
$BIN >/dev/null 2>&1; [ $? -eq 64 ]; check "no command exits 64" $?
$BIN --log-format yaml help >/dev/null 2>&1; [ $? -eq 64 ]; check "bad --log-format" $?

for f in "$SRC"/examples/*.yaml; do
    $BIN validate -q "$f" 2>/dev/null; check "validate $f" $?
done

# A misspelled key at line 12 is reported as FILE:12:COL with a suggestion, exit 78 (config).
cat > "$tmp/typo.yaml" <<'YAML'
store: sqlite:x.db
systems:
  crm: {connector: memory}
  erp: {connector: memory}
entities:
  customer: {objects: {crm: Account, erp: party.party}}
flows:
  f:
    entity: customer
    from: crm
    to: erp
    batchsize: 100
    trigger: {poll: 1m}
    map: {name: Name}
YAML
out=$($BIN validate "$tmp/typo.yaml" 2>&1); rc=$?
[ $rc -eq 78 ]; check "typo exits 78 (got $rc)" $?
echo "$out" | grep -qF "$tmp/typo.yaml:12:5: error: flow 'f': unknown key 'batchsize' (did you mean 'batch_size'?)"
check "typo at 12:5 with suggestion" $?
echo "$out" | grep -qF "   12 |     batchsize: 100"; check "source line shown" $?
echo "$out" | grep -qxF "      |     ^"; check "caret under the column" $?

# Missing secrets: names are warned about, values never printed.
export SF_CLIENT_ID=visible-if-leaked-1234
out=$(env -u SF_CLIENT_SECRET $BIN validate "$SRC/examples/salesforce-sap.yaml" 2>&1)
echo "$out" | grep -q "environment variable SF_CLIENT_SECRET (OAuth2 client secret) is not set"
check "missing secret named" $?
echo "$out" | grep -q "visible-if-leaked"; [ $? -ne 0 ]; check "secret value never printed" $?

# An error inside an expression is found by validate, at its position in the YAML file.
sed 's/    map: {name: Name}/    map: {name: {expr: "upper(Name, 2)"}}/; s/    batchsize: 100/    batch_size: 100/' \
    "$tmp/typo.yaml" > "$tmp/expr.yaml"
out=$($BIN validate "$tmp/expr.yaml" 2>&1); rc=$?
[ $rc -eq 78 ]; check "expression error exits 78 (got $rc)" $?
echo "$out" | grep -qF "$tmp/expr.yaml:14:25: error: map rule 'name': expr: upper takes 1 argument, not 2"; check "expression error at 14:25: $out" $?

$BIN validate /nonexistent.yaml >/dev/null 2>&1; [ $? -eq 78 ]; check "missing file exits 78" $?

# The generated reference is committed and current.
$BIN config-docs > "$tmp/ref.md"
diff -u "$SRC/docs/config-reference.md" "$tmp/ref.md" >/dev/null
check "docs/config-reference.md is current (run: make docs)" $?
grep -q '| `batch_size` | integer | `200` |' "$tmp/ref.md"; check "config-docs has batch_size" $?

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
