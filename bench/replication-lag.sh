#!/bin/bash
# Replication lag of a primary + hot standby started by scripts/postgres/entrypoint.sh (the pods' script)
# on loopback, under a bounded pgbench TPC-B load. Samples pg_stat_replication on the primary every
# SAMPLE_INTERVAL seconds and prints p50/p99/max of replay_lag (time) and of the replay LSN distance
# (bytes). Everything it starts is stopped and its temp directory removed on exit.
#
#   bench/replication-lag.sh
#   DURATION=30 CLIENTS=4 SCALE=10 SAMPLE_INTERVAL=0.2 bench/replication-lag.sh
#
# Needs Debian's postgresql + postgresql-contrib (tests/postgres/ensure-postgres.sh). Run as root (servers
# run as the postgres user) or as a non-root user that owns the temp directory.
set -eu

DURATION=${DURATION:-30}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-2}
SCALE=${SCALE:-10}
SAMPLE_INTERVAL=${SAMPLE_INTERVAL:-0.2}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
ENTRYPOINT="$HERE/../scripts/postgres/entrypoint.sh"
export PATH="$PG_BIN:$PATH"

for bin in postgres pgbench psql pg_isready; do
  [ -x "$PG_BIN/$bin" ] || { echo "missing $PG_BIN/$bin: run tests/postgres/ensure-postgres.sh" >&2; exit 1; }
done

log() { printf '[bench] %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

AS_SERVER=()
if [ "$(id -u)" = 0 ]; then AS_SERVER=(runuser -u postgres --); fi

ROOT=$(mktemp -d /tmp/replication-lag.XXXXXX)
chmod 0755 "$ROOT"
PIDS=()
SAMPLER=
cleanup() {
  [ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true
  for pod in postgres-1 postgres-0; do
    if [ -f "$ROOT/$pod/pgdata/postmaster.pid" ]; then
      "${AS_SERVER[@]}" pg_ctl -D "$ROOT/$pod/pgdata" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
  done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export PGPASSWORD=bench-app-password
P0=$(free_port)
P1=$(free_port)
start_pod() { # name port
  mkdir -p "$ROOT/$1"
  [ ${#AS_SERVER[@]} -eq 0 ] || chown postgres: "$ROOT/$1"
  "${AS_SERVER[@]}" env -i PATH="$PATH" LANG=C.UTF-8 PGDATA="$ROOT/$1/pgdata" PGPORT="$2" POD_NAME="$1" \
    POSTGRES_PASSWORD="$PGPASSWORD" REPLICATION_PASSWORD=bench-replication-password \
    PRIMARY_HOST=127.0.0.1 PRIMARY_PORT="$P0" LISTEN_ADDRESSES=127.0.0.1 \
    REPLICATION_CIDR=127.0.0.1/32 CLIENT_CIDR=127.0.0.1/32 "$ENTRYPOINT" >"$ROOT/$1.log" 2>&1 &
  PIDS+=($!)
  local waited=0
  until pg_isready -q -h 127.0.0.1 -p "$2"; do
    kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$ROOT/$1.log" >&2; log "$1 exited"; exit 1; }
    [ "$waited" -lt 300 ] || { cat "$ROOT/$1.log" >&2; log "$1 not ready after 60 s"; exit 1; }
    sleep 0.2; waited=$((waited + 1))
  done
  log "$1 ready on 127.0.0.1:$2"
}
q() { psql -X -A -t -q -h 127.0.0.1 -p "$1" -U stateful-flask-user -d stateful-flask-db -c "$2"; }

start_pod postgres-0 "$P0"
start_pod postgres-1 "$P1"

log "pgbench -i -s $SCALE"
pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$P0" -U stateful-flask-user stateful-flask-db >/dev/null 2>&1
until [ "$(q "$P0" "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication WHERE application_name = 'postgres-1'")" = 0 ]; do sleep 0.2; done

# One psql session re-running the query: no process start per sample.
psql -X -A -t -q -F ' ' -h 127.0.0.1 -p "$P0" -U stateful-flask-user -d stateful-flask-db >"$ROOT/samples" 2>/dev/null <<SQL &
SELECT coalesce((extract(epoch FROM replay_lag) * 1000)::numeric(12,3)::text, 'null'),
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint
  FROM pg_stat_replication WHERE application_name = 'postgres-1' \watch $SAMPLE_INTERVAL
SQL
SAMPLER=$!

log "pgbench -c $CLIENTS -j $THREADS -T $DURATION (TPC-B)"
pgbench -c "$CLIENTS" -j "$THREADS" -T "$DURATION" -h 127.0.0.1 -p "$P0" -U stateful-flask-user stateful-flask-db >"$ROOT/pgbench.out" 2>&1
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=

rows_primary=$(q "$P0" "SELECT count(*) FROM pgbench_history")
until [ "$(q "$P1" "SELECT count(*) FROM pgbench_history")" = "$rows_primary" ]; do sleep 0.2; done

percentiles() { # column label unit
  awk -v c="$1" 'NF == 2 && $c != "null" { print $c }' "$ROOT/samples" | sort -n | awk -v label="$2" -v unit="$3" '
    { v[NR] = $1 }
    END {
      if (NR == 0) { printf "%-22s no samples\n", label; exit }
      p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
      printf "%-22s p50 %10s %s   p99 %10s %s   max %10s %s   (%d samples)\n", label, p50, unit, p99, unit, v[NR], unit, NR
    }'
}

echo "PostgreSQL $(postgres --version | awk '{print $3}'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "pgbench TPC-B scale $SCALE, $CLIENTS clients, $THREADS threads, ${DURATION}s: $(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$ROOT/pgbench.out") tps, $(sed -n 's/^latency average = //p' "$ROOT/pgbench.out") average latency"
percentiles 1 "replay_lag (time)" ms
percentiles 2 "replay distance (WAL)" bytes
echo "standby caught up: pgbench_history has $rows_primary rows on both"
