#!/usr/bin/env bash
# Installs and starts a PostgreSQL server on loopback for the store tests; prints the URL to use.
# Idempotent: a second run finds the server up. Runs as root (CI and development machines).
set -euo pipefail
PGPORT=${PGPORT:-54329}
PGDATA=${PGDATA:-/var/tmp/harness-pg}
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if ! su postgres -c "$BIN/pg_isready -q -h 127.0.0.1 -p $PGPORT" 2>/dev/null; then
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA"
    su postgres -c "$BIN/initdb -D $PGDATA -A trust -U postgres" >/dev/null
  fi
  su postgres -c "$BIN/pg_ctl -D $PGDATA -o '-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' -l $PGDATA/server.log -w start" >/dev/null
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PGPORT/postgres"
