#!/usr/bin/env bash
# Starts a real Tryton (scripts/tryton-sandbox on a free loopback port, its own state
# directory), runs the Tryton scenario of e2e.py against it, and stops Tryton whatever happens.
# Usage: run_tryton.sh STATE_DIR e2e.py-arguments...
set -euo pipefail
state=$1
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
mkdir -p "$state"
export ERPSYNC_TRYTON_DIR=$state
"$root/scripts/tryton-sandbox" stop || true
ERPSYNC_TRYTON_PORT=$(free_port)
export ERPSYNC_TRYTON_PORT
trap '"$root/scripts/tryton-sandbox" stop || true' EXIT
trap 'exit 1' INT TERM
"$root/scripts/tryton-sandbox" start
"$root/scripts/tryton-sandbox" newdb e2e >/dev/null
set -a
# shellcheck disable=SC1091
. "$state/env"
set +a
export TRYTON_DB=e2e
python3 "$root/tests/e2e/e2e.py" tryton "$@"
