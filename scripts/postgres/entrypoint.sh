#!/bin/bash
# Entrypoint of every postgres pod (replaces the official image's docker-entrypoint.sh).
#
# The pod whose ordinal is PRIMARY_ORDINAL (default 0) bootstraps an empty PGDATA with initdb; every other
# ordinal bootstraps an empty PGDATA by cloning the primary with pg_basebackup and then streams from it as a
# hot standby. Once PGDATA holds a cluster, the data directory decides the role (standby.signal present or
# not) and nothing is ever re-initialised or re-cloned. pg_hba.conf and pg_ident.conf are rewritten from the
# environment on every start. Ends by exec'ing postgres, so the stop signal reaches the postmaster.
#
# Environment: see README.md next to this file.
set -eu
umask 0077

log() { printf '%s entrypoint %s: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "${POD_NAME:-?}" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

SCRIPTS_DIR=$(cd "$(dirname "$0")" && pwd)

# ------------------------------------------------------------------------------------------- environment
[ "$(id -u)" != 0 ] || die "refusing to run as root; run as the postgres user (uid 999 in the image)"

POD_NAME=${POD_NAME:-$(hostname)}
case $POD_NAME in
  *-*) ORDINAL=${POD_NAME##*-} ;;
  *) ORDINAL= ;;
esac
case $ORDINAL in
  '' | *[!0-9]*) die "cannot parse an ordinal from POD_NAME='$POD_NAME'; expected <statefulset>-<ordinal>, e.g. postgres-0" ;;
esac
ORDINAL=$((10#$ORDINAL))

PRIMARY_ORDINAL=${PRIMARY_ORDINAL:-0}
case $PRIMARY_ORDINAL in
  '' | *[!0-9]*) die "PRIMARY_ORDINAL='$PRIMARY_ORDINAL' is not valid; expected a non-negative integer" ;;
esac
PRIMARY_ORDINAL=$((10#$PRIMARY_ORDINAL))

[ -n "${PGDATA:-}" ] || die "PGDATA is required; expected a subdirectory of the volume, e.g. /var/lib/postgresql/data/pgdata"
case $PGDATA in
  /*/*) PGDATA=${PGDATA%/} ;;
  *) die "PGDATA='$PGDATA' is not valid; expected an absolute path to a subdirectory of the volume" ;;
esac
PARENT=${PGDATA%/*}
STAGING="$PGDATA.bootstrap"

require_port() {
  case $2 in
    '' | *[!0-9]*) die "$1='$2' is not valid; expected a TCP port from 1 to 65535" ;;
  esac
  if [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]; then die "$1='$2' is not valid; expected a TCP port from 1 to 65535"; fi
}
# Role names end up double-quoted in pg_hba.conf and pg_ident.conf, and %I-quoted in SQL.
require_role_name() {
  case $2 in
    '' | *'"'* | *$'\n'*) die "$1='$2' is not valid; expected a non-empty role name without double quotes" ;;
  esac
  [ "${#2}" -le 63 ] || die "$1 is longer than 63 characters"
}
# A CIDR list separated by commas or spaces; each entry is one pg_hba.conf address.
require_cidrs() {
  local cidr
  [ -n "$2" ] || die "$1 is empty; expected one or more CIDRs, e.g. 10.244.0.0/16"
  for cidr in $(printf '%s' "$2" | tr ',' ' '); do
    case $cidr in
      */*) ;;
      *) die "$1 contains '$cidr'; expected CIDRs such as 10.244.0.0/16 or 127.0.0.1/32" ;;
    esac
    case $cidr in
      *[!0-9a-fA-F.:/]*) die "$1 contains '$cidr'; expected CIDRs such as 10.244.0.0/16 or 127.0.0.1/32" ;;
    esac
  done
}

export PGPORT=${PGPORT:-5432}
require_port PGPORT "$PGPORT"
# Exported for the SQL files, which read them with \getenv.
export POSTGRES_USER=${POSTGRES_USER:-stateful-flask-user}
export POSTGRES_DB=${POSTGRES_DB:-stateful-flask-db}
export REPLICATION_USER=${REPLICATION_USER:-replicator}
REPLICATION_CIDR=${REPLICATION_CIDR:-10.244.0.0/16}
CLIENT_CIDR=${CLIENT_CIDR:-0.0.0.0/0}
MAX_SLOT_WAL_KEEP_SIZE=${MAX_SLOT_WAL_KEEP_SIZE:-2GB}
LISTEN_ADDRESSES=${LISTEN_ADDRESSES:-*}
PRIMARY_PORT=${PRIMARY_PORT:-5432}
require_port PRIMARY_PORT "$PRIMARY_PORT"
require_role_name POSTGRES_USER "$POSTGRES_USER"
require_role_name REPLICATION_USER "$REPLICATION_USER"
[ -n "$POSTGRES_DB" ] || die "POSTGRES_DB is empty; expected a database name"
require_cidrs REPLICATION_CIDR "$REPLICATION_CIDR"
require_cidrs CLIENT_CIDR "$CLIENT_CIDR"
case $MAX_SLOT_WAL_KEEP_SIZE in
  -1) ;;
  *MB | *GB | *TB)
    case ${MAX_SLOT_WAL_KEEP_SIZE%??} in
      '' | 0* | *[!0-9]*) die "MAX_SLOT_WAL_KEEP_SIZE='$MAX_SLOT_WAL_KEEP_SIZE' is not valid; expected a size such as 512MB or 2GB (-1 = unlimited)" ;;
    esac
    ;;
  *) die "MAX_SLOT_WAL_KEEP_SIZE='$MAX_SLOT_WAL_KEEP_SIZE' is not valid; expected a size such as 512MB or 2GB (-1 = unlimited)" ;;
esac
[ "$REPLICATION_USER" != "$POSTGRES_USER" ] || die "REPLICATION_USER and POSTGRES_USER are both '$POSTGRES_USER'; the replication role must be a separate role"

if [ "$ORDINAL" -ne "$PRIMARY_ORDINAL" ]; then
  [ -n "${REPLICATION_PASSWORD:-}" ] || die "REPLICATION_PASSWORD is required on a standby ($POD_NAME, ordinal $ORDINAL; the primary is ordinal $PRIMARY_ORDINAL)"
  [ -n "${PRIMARY_HOST:-}" ] || die "PRIMARY_HOST is required on a standby ($POD_NAME); expected the primary's DNS name, e.g. postgres-0.postgres-headless.postgres.svc.cluster.local"
fi

command -v postgres >/dev/null 2>&1 || die "postgres is not on PATH (in tests prepend /usr/lib/postgresql/15/bin)"
SERVER_MAJOR=$(postgres --version | sed -n 's/^postgres (PostgreSQL) \([0-9]*\).*/\1/p')

# Physical slot names allow [a-z0-9_] only: postgres-1 -> postgres_1.
SLOT_NAME=$(printf '%s' "$POD_NAME" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9_' '_')
# The replication password lives in a passfile (never on a command line or in postgresql.auto.conf); it is
# rewritten on every start, so a rotated Secret takes effect at the next restart.
PASSFILE="$PARENT/.pgpass-replication"

# ------------------------------------------------------------------------------------------------ helpers
pgpass_escape() { printf '%s' "$1" | sed 's/[\\:]/\\&/g'; }
conninfo_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/[\\\\']/\\\\&/g")"; }

write_passfile() {
  printf '%s:%s:*:%s:%s\n' "$(pgpass_escape "$PRIMARY_HOST")" "$PRIMARY_PORT" \
    "$(pgpass_escape "$REPLICATION_USER")" "$(pgpass_escape "$REPLICATION_PASSWORD")" >"$PASSFILE.tmp"
  mv -f "$PASSFILE.tmp" "$PASSFILE"
}

primary_conninfo() {
  printf 'host=%s port=%s user=%s passfile=%s application_name=%s connect_timeout=10' \
    "$(conninfo_quote "$PRIMARY_HOST")" "$PRIMARY_PORT" "$(conninfo_quote "$REPLICATION_USER")" \
    "$(conninfo_quote "$PASSFILE")" "$(conninfo_quote "$POD_NAME")"
}

# psql over a physical replication connection: accepts replication commands only, not SQL.
replication_command() {
  psql -X -q -A -t -d "$(primary_conninfo) replication=true" -c "$1"
}

write_access_files() {
  local dir=$1 cidr os_user
  os_user=$(id -un 2>/dev/null || echo postgres)
  {
    echo "# Written by entrypoint.sh on every start from the environment; edits are lost at the next restart."
    echo "# TYPE  DATABASE     USER  ADDRESS  METHOD"
    echo "local   all          all            peer map=pod"
    for cidr in $(printf '%s' "$REPLICATION_CIDR" | tr ',' ' '); do
      echo "host    replication  \"$REPLICATION_USER\"  $cidr  scram-sha-256"
    done
    echo "host    all          \"$REPLICATION_USER\"  all  reject"
    for cidr in $(printf '%s' "$CLIENT_CIDR" | tr ',' ' '); do
      echo "host    all          all  $cidr  scram-sha-256"
    done
  } >"$dir/pg_hba.conf"
  # The local socket admits only the OS user the server runs as, as the owner role or as postgres.
  {
    echo "# Written by entrypoint.sh on every start. MAP  SYSTEM-USER  DATABASE-ROLE"
    echo "pod  \"$os_user\"  \"$POSTGRES_USER\""
    echo "pod  \"$os_user\"  postgres"
  } >"$dir/pg_ident.conf"
}

# A server on a private socket and no TCP listener, for the one-off SQL steps before the real start.
BOOT_SOCKET="$PARENT/.bootstrap-socket"
start_private_server() {
  rm -rf "$BOOT_SOCKET" && mkdir -m 0700 "$BOOT_SOCKET"
  # shellcheck disable=SC2064 # expand now: stop this server if a later step dies
  trap "pg_ctl -D '$1' -m immediate stop >/dev/null 2>&1 || true" EXIT
  pg_ctl -D "$1" -w -t 3600 -l "$PARENT/.bootstrap.log" \
    -o "-c listen_addresses='' -c unix_socket_directories='$BOOT_SOCKET' -c port=$PGPORT" start >/dev/null \
    || { cat "$PARENT/.bootstrap.log" >&2 || true; die "the private bootstrap server did not start (log above)"; }
}
stop_private_server() {
  pg_ctl -D "$1" -w -t 3600 -m fast stop >/dev/null || die "the private bootstrap server did not stop"
  trap - EXIT
  cat "$PARENT/.bootstrap.log" >&2 2>/dev/null || true
  rm -rf "$BOOT_SOCKET" "$PARENT/.bootstrap.log"
}
run_sql_file() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$BOOT_SOCKET" -p "$PGPORT" -U "$POSTGRES_USER" -d postgres -f "$SCRIPTS_DIR/$1" \
    || die "$1 failed (connected as '$POSTGRES_USER', which must be a superuser as in the official image)"
}

# Moves a completed bootstrap into place; PGDATA never holds a half-initialised or half-cloned cluster.
publish_staging() {
  if [ -d "$PGDATA" ]; then rmdir "$PGDATA" || die "cannot replace the empty directory $PGDATA"; fi
  mv -T "$STAGING" "$PGDATA" || die "cannot move $STAGING to $PGDATA; PGDATA must be a subdirectory of the volume"
}

initialise_primary() {
  [ -n "${POSTGRES_PASSWORD:-}" ] || die "POSTGRES_PASSWORD is required to initialise a new database in $PGDATA"
  log "PGDATA is empty and this is the primary (ordinal $ORDINAL): running initdb"
  mkdir -m 0700 "$STAGING"
  local pwfile="$PARENT/.bootstrap-pwfile"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  # Like the official image: the owner role is the bootstrap superuser, so its existing data dirs fit.
  if ! initdb -D "$STAGING" --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 \
    --auth-local=peer --auth-host=scram-sha-256 >"$PARENT/.initdb.log" 2>&1; then
    rm -f "$pwfile"
    cat "$PARENT/.initdb.log" >&2
    die "initdb failed (output above)"
  fi
  rm -f "$pwfile" "$PARENT/.initdb.log"
  write_access_files "$STAGING"
  start_private_server "$STAGING"
  log "creating database '$POSTGRES_DB' owned by '$POSTGRES_USER'"
  run_sql_file app-database.sql
  if [ -n "${REPLICATION_PASSWORD:-}" ]; then
    log "creating replication role '$REPLICATION_USER'"
    run_sql_file replication-role.sql
  fi
  stop_private_server "$STAGING"
  publish_staging
  log "initialised a new cluster in $PGDATA"
}

wait_for_primary() {
  local waited=0
  until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -t 5; do
    [ $((waited % 30)) -ne 0 ] || log "waiting for the primary at $PRIMARY_HOST:$PRIMARY_PORT (${waited}s)"
    sleep 2
    waited=$((waited + 2))
  done
}

# The slot named after this pod belongs to this pod only; before a fresh clone any such slot is stale
# (e.g. the PVC was deleted), possibly invalidated, so it is dropped and pg_basebackup creates it anew.
clone_standby() {
  log "PGDATA is empty and this is a standby (ordinal $ORDINAL): cloning $PRIMARY_HOST:$PRIMARY_PORT"
  wait_for_primary
  local existing
  existing=$(replication_command "READ_REPLICATION_SLOT $SLOT_NAME") || die "cannot connect to the primary as '$REPLICATION_USER' over the replication protocol"
  case $existing in
    physical*)
      log "dropping the stale replication slot '$SLOT_NAME' on the primary"
      replication_command "DROP_REPLICATION_SLOT $SLOT_NAME" >/dev/null || die "cannot drop the stale slot '$SLOT_NAME'"
      ;;
  esac
  mkdir -m 0700 "$STAGING"
  # -R is not used: it would freeze the connection settings into postgresql.auto.conf; they are passed
  # from the environment on every start instead (see exec below).
  PGAPPNAME=$POD_NAME pg_basebackup -d "$(primary_conninfo)" -D "$STAGING" \
    -X stream -C -S "$SLOT_NAME" --checkpoint=fast -w \
    || die "pg_basebackup from $PRIMARY_HOST:$PRIMARY_PORT failed"
  touch "$STAGING/standby.signal"
  publish_staging
  log "cloned the primary into $PGDATA with replication slot '$SLOT_NAME'"
}

# After a failover the new primary has no slot for this standby; recreate it if missing. Best effort: a
# standby must start (and serve reads) while the primary is down.
ensure_slot() {
  local existing
  if ! existing=$(replication_command "READ_REPLICATION_SLOT $SLOT_NAME" 2>/dev/null); then
    log "primary $PRIMARY_HOST:$PRIMARY_PORT unreachable; starting without checking slot '$SLOT_NAME'"
    return 0
  fi
  case $existing in
    physical*) ;;
    *)
      log "replication slot '$SLOT_NAME' missing on the primary; creating it"
      replication_command "CREATE_REPLICATION_SLOT $SLOT_NAME PHYSICAL RESERVE_WAL" >/dev/null ||
        log "could not create slot '$SLOT_NAME'; streaming will fail until it exists"
      ;;
  esac
}

# --------------------------------------------------------------------------------------------- bootstrap
if [ ! -d "$PARENT" ] || [ ! -w "$PARENT" ]; then
  die "the parent of PGDATA ($PARENT) must exist and be writable by uid $(id -u); is the volume mounted with fsGroup 999?"
fi
if [ -e "$STAGING" ]; then
  log "removing $STAGING left by an interrupted bootstrap"
  rm -rf "$STAGING"
fi
rm -f "$PARENT/.bootstrap-pwfile"
[ -n "${REPLICATION_PASSWORD:-}" ] && [ -n "${PRIMARY_HOST:-}" ] && write_passfile

BOOTSTRAPPED=no
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # A cluster at the volume's root (the official image's default PGDATA, as the tutorial's pods ran) must
  # never be shadowed by a new, empty one in the subdirectory.
  if [ -s "$PARENT/PG_VERSION" ]; then
    die "$PARENT holds a PostgreSQL cluster at the volume root, not in $PGDATA; refusing to initialise a new, empty one next to it. Move it into place once (see docs/replication.md, \"Existing data directories\")"
  fi
  if [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
    die "$PGDATA is not empty but holds no PostgreSQL cluster (no PG_VERSION); refusing to touch it"
  fi
  if [ "$ORDINAL" -eq "$PRIMARY_ORDINAL" ]; then initialise_primary; else clone_standby; fi
  BOOTSTRAPPED=yes
fi

# fsGroup may have made the directory group-writable; postgres requires 0700 (or 0750).
chmod 0700 "$PGDATA"
DATA_MAJOR=$(cat "$PGDATA/PG_VERSION")
[ "$DATA_MAJOR" = "$SERVER_MAJOR" ] || die "$PGDATA holds a PostgreSQL $DATA_MAJOR cluster but the server is $SERVER_MAJOR; upgrade it with pg_upgrade first"

if [ -f "$PGDATA/standby.signal" ]; then
  ROLE=standby
  [ "$ORDINAL" -ne "$PRIMARY_ORDINAL" ] || log "WARNING: $POD_NAME is the designated primary but its data directory is a standby; starting as a standby (promote it by hand, see docs/replication.md)"
  if [ -z "${REPLICATION_PASSWORD:-}" ] || [ -z "${PRIMARY_HOST:-}" ]; then
    die "REPLICATION_PASSWORD and PRIMARY_HOST are required to start the standby in $PGDATA"
  fi
elif [ "$ORDINAL" -eq "$PRIMARY_ORDINAL" ]; then
  ROLE=primary
else
  # A primary's data on a pod that is not the designated primary: a former primary after a failover, or a
  # promoted standby whose promotion has not been recorded in PRIMARY_ORDINAL. Starting it would run two
  # primaries with diverging data.
  die "$PGDATA holds a primary (no standby.signal) but $POD_NAME is not the designated primary (ordinal $PRIMARY_ORDINAL); refusing to start a second primary. Rebuild it as a standby or set PRIMARY_ORDINAL=$ORDINAL (see docs/replication.md)"
fi

write_access_files "$PGDATA"
set -- -D "$PGDATA" \
  -c listen_addresses="$LISTEN_ADDRESSES" -c port="$PGPORT" \
  -c wal_level=replica -c max_wal_senders=10 -c max_replication_slots=10 \
  -c max_slot_wal_keep_size="$MAX_SLOT_WAL_KEEP_SIZE" \
  -c hot_standby=on -c hot_standby_feedback=on -c wal_log_hints=on "$@"

if [ "$ROLE" = primary ]; then
  if [ "$BOOTSTRAPPED" = yes ]; then
    : # initialise_primary has just created the replication role
  elif [ -n "${REPLICATION_PASSWORD:-}" ]; then
    # Idempotent: creates the role on a data directory initialised by the official image, and applies a
    # rotated REPLICATION_PASSWORD. Runs on a private socket before the server accepts connections.
    log "ensuring replication role '$REPLICATION_USER'"
    start_private_server "$PGDATA"
    run_sql_file replication-role.sql
    stop_private_server "$PGDATA"
  else
    log "REPLICATION_PASSWORD is not set: no replication role, standbys cannot connect"
  fi
  log "starting the primary on port $PGPORT"
else
  ensure_slot
  set -- "$@" -c primary_conninfo="$(primary_conninfo)" -c primary_slot_name="$SLOT_NAME"
  log "starting a hot standby of $PRIMARY_HOST:$PRIMARY_PORT on port $PGPORT (slot '$SLOT_NAME')"
fi
exec postgres "$@"
