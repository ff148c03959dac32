#!/usr/bin/env bash
# The whole suite: lint and type-check, then every test on SQLite, then again on a real PostgreSQL server.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export MADOGUCHI_DATA_DIR="${MADOGUCHI_DATA_DIR:-$(mktemp -d)}"

# The browser tests drive Debian's Chromium (Playwright never downloads a browser of its own).
if [ ! -x /usr/bin/chromium ]; then
    echo "== installing chromium and Japanese fonts for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q chromium fonts-ipafont-gothic >/dev/null
fi

# The email tests run Debian's dovecot-imapd themselves, unprivileged, on a loopback port.
if [ ! -x /usr/sbin/dovecot ]; then
    echo "== installing dovecot-imapd for the email tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q dovecot-imapd >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q dovecot-imapd >/dev/null; }
fi

echo "== ruff"
$BIN/ruff check src tests bench

echo "== mypy"
$BIN/mypy src

echo "== tests on SQLite"
$BIN/pytest -p no:cacheprovider

echo "== tests on PostgreSQL"
# A throw-away cluster on a loopback port, owned by the `postgres` system user (initdb refuses
# root), fsync off: it only lives for this run. Removed on exit, whatever happens.
PG_VERSION=15
PGBIN=/usr/lib/postgresql/$PG_VERSION/bin
if [ ! -x "$PGBIN/pg_ctl" ]; then
    echo "PostgreSQL $PG_VERSION not found: installing it"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "postgresql-$PG_VERSION" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
PGDIR=$(mktemp -d /tmp/madoguchi-pg.XXXXXX)
chmod 755 "$PGDIR"
[ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
PGPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop_pg() {
    as_postgres "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
}
trap stop_pg EXIT
as_postgres "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >"$PGDIR/initdb.log" 2>&1 \
    || { cat "$PGDIR/initdb.log"; exit 1; }
as_postgres "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w start -o \
    "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$PGDIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null || { cat "$PGDIR/server.log"; exit 1; }
as_postgres "$PGBIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
    -c "CREATE ROLE madoguchi LOGIN PASSWORD 'madoguchi' CREATEDB" \
    -c "CREATE DATABASE madoguchi OWNER madoguchi"
# The browser tests drop DATABASE_URL (their server runs on its own SQLite data dir), so on this
# pass they would only repeat the SQLite pass: skip them to keep CI short.
DATABASE_URL="postgres://madoguchi:madoguchi@127.0.0.1:$PGPORT/madoguchi" \
    $BIN/pytest -p no:cacheprovider -m "not browser"
