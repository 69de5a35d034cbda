#!/usr/bin/env bash
# Starts a real Tryton (scripts/tryton-sandbox: installs the packages when missing, builds the
# template database once, starts trytond on a free loopback port), runs the test binary (it
# copies the template into a fresh database per test), and stops trytond whatever happens.
# Fails loudly when Tryton cannot be installed or started: nothing is skipped.
set -euo pipefail
bin=$1
state=$2
root=${ES_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 20000))
        (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null || {
            echo "$p"
            return
        }
    done
    echo "no free port" >&2
    exit 1
}
export ERPSYNC_TRYTON_DIR=$state ERPSYNC_TRYTON_PORT
"$root/scripts/tryton-sandbox" stop
ERPSYNC_TRYTON_PORT=$(free_port)
trap '"$root/scripts/tryton-sandbox" stop || true' EXIT
trap 'exit 1' INT TERM
"$root/scripts/tryton-sandbox" start
set -a
# shellcheck disable=SC1091
. "$state/env"
set +a
export TRYTON_SANDBOX="$root/scripts/tryton-sandbox"
"$bin"
