#!/usr/bin/env bash
# Starts a private PostgreSQL (scripts/pg-sandbox) on a free loopback port, runs the test
# binary against a fresh database, and stops the cluster whatever happens.
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
# The cluster lives under /tmp: as root it runs as user postgres, which may not reach the
# build tree (a clone under /root). $state only records where it is.
mkdir -p "$state"
export ERPSYNC_PG_DIR ERPSYNC_PG_PORT
ERPSYNC_PG_DIR=$(mktemp -d /tmp/erpsync-pg-test.XXXXXX)
ERPSYNC_PG_PORT=$(free_port)
echo "$ERPSYNC_PG_DIR" > "$state/last-cluster"
trap '"$root/scripts/pg-sandbox" destroy || true' EXIT
trap 'exit 1' INT TERM
"$root/scripts/pg-sandbox" start
"$root/scripts/pg-sandbox" createdb conn_test
export ERPSYNC_PG_URL="postgres://postgres@127.0.0.1:$ERPSYNC_PG_PORT/conn_test"
"$bin"
