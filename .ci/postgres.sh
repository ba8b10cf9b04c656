#!/usr/bin/env bash
# A local PostgreSQL server for the store's tests, started when it is not running.
# Idempotent: installs Debian's postgresql when missing, creates a cluster in $PGDATA once,
# starts it on loopback, creates the role and database, and prints the test URL as the last
# line of stdout (everything else goes to stderr):
#   export RAZZLE_TEST_POSTGRES_URL="$(.ci/postgres.sh)"
# The role may create databases: the tests make one fresh database per test beside it.
set -euo pipefail

PGDATA="${RAZZLE_PG_DATA:-/tmp/razzle-postgres}"
PORT="${RAZZLE_PG_PORT:-54329}"
ROLE=razzle
DATABASE=razzle_test

if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
    echo "installing PostgreSQL from Debian's packages" >&2
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
fi
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

# PostgreSQL refuses to run as root; run it as the postgres user the package creates.
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
    as_owner "$BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 >&2
fi
if ! as_owner "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_owner "$BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGDATA -c fsync=on" >&2
fi

psql_admin() {
    as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
    psql_admin -c "CREATE ROLE $ROLE LOGIN CREATEDB" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE $DATABASE OWNER $ROLE" >&2
fi
echo "postgresql://$ROLE@127.0.0.1:$PORT/$DATABASE"
