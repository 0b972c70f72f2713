#!/bin/bash
# Adds the roles Patroni needs (patroni-roles.sql) to a primary's data directory that Patroni has not managed
# yet, on a private server: no TCP listener, a socket in a 0700 directory, trust only on that socket. The
# server is stopped again (fast, with a checkpoint) before Patroni starts.
#
#   prepare-primary.sh PGDATA
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGDATA=$1
WORK=$(mktemp -d "${RUN_DIR:-/tmp}/prepare.XXXXXX")
trap '"$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
printf 'local all all trust\n' >"$WORK/pg_hba.conf"
: >"$WORK/pg_ident.conf"
PORT=${PGPORT:-5432}
"$PG_BIN/pg_ctl" -D "$PGDATA" -w -t 3600 -l "$WORK/server.log" -o "-c listen_addresses='' -c unix_socket_directories='$WORK' \
  -c port=$PORT -c hba_file='$WORK/pg_hba.conf' -c ident_file='$WORK/pg_ident.conf' -c archive_mode=off" start >/dev/null ||
  { cat "$WORK/server.log" >&2; echo "prepare-primary: the private server did not start (log above)" >&2; exit 1; }
# Any role that can log in will do to reach the bootstrap superuser's catalog; the official image's is
# POSTGRES_USER (APP_USER here), a cluster Patroni would have made has postgres.
connected=
for role in postgres "${APP_USER:-stateful-flask-user}"; do
  if "$PG_BIN/psql" -X -q -h "$WORK" -p "$PORT" -U "$role" -d postgres -tAc "SELECT rolsuper FROM pg_roles WHERE rolname = current_user" 2>/dev/null | grep -qx t; then
    connected=$role
    break
  fi
done
[ -n "$connected" ] || { echo "prepare-primary: neither postgres nor ${APP_USER:-stateful-flask-user} is a superuser in $PGDATA" >&2; exit 1; }
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U "$connected" -d postgres -f "$HERE/patroni-roles.sql"
"$PG_BIN/pg_ctl" -D "$PGDATA" -w -t 3600 -m fast stop >/dev/null
trap 'rm -rf "$WORK"' EXIT
echo "prepare-primary: roles postgres and ${REPLICATION_USER:-replicator} ready (connected as $connected)" >&2
