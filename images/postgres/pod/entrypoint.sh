#!/bin/bash
# Entrypoint of every Postgres pod: prepares the volume, then execs Patroni, which runs PostgreSQL, elects the
# leader through the Kubernetes API and labels the pods by role. Patroni becomes PID 1, so its death ends the
# container and the postmaster with it (there is no /dev/watchdog in a pod).
#
# What it does before Patroni starts, in this order, and never anything else to the data:
#   1. validates the environment (pod.py) and checks the data directory's major version;
#   2. checks that the Kubernetes API (Patroni's consensus store) answers; otherwise it exits with an error,
#      having touched nothing; on an empty volume of a cluster the DCS has never recorded, checks that the backup
#      repository holds no cluster yet (pod.py check-bootstrap); otherwise it exits with an error, touching nothing;
#   3. adopts a volume that Patroni has not managed yet (README.md next to this file, "Adopting volumes"):
#      - a cluster at the volume root (the official image's default PGDATA, the tutorial's pods) is moved into
#        PGDATA, crash-safely;
#      - a former primary of the previous entrypoint or of the official image gets the roles Patroni needs;
#      - a former standby starts with nofailover until a Patroni leader exists, so it cannot promote itself
#        while the old primary may still take writes.
#
# Environment: README.md next to this file.
set -euo pipefail
umask 0077

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
log() { printf '%s entrypoint %s: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "${POD_NAME:-?}" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

[ "$(id -u)" != 0 ] || die "refusing to run as root; run as the postgres user (uid 999 in the image)"
export RUN_DIR=${RUN_DIR:-/var/run/postgresql}
export PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
[[ -d "$RUN_DIR" && -w "$RUN_DIR" ]] || die "RUN_DIR=$RUN_DIR must be a writable directory (an emptyDir in the pod)"

# 1. The environment, validated in one place (pod.py prints the offending variable and exits 1).
CONFIG="$RUN_DIR/patroni-${POD_NAME:-member}.json"
"$PYTHON" "$HERE/pod.py" config >"$CONFIG.tmp" || die "invalid environment (see the line above)"
# The settings the SQL scripts read, defaults applied, for this script and what Patroni runs (post_bootstrap).
eval "$("$PYTHON" "$HERE/pod.py" env)"
PGDATA=${PGDATA%/}
PARENT=${PGDATA%/*}
MARKER="$PARENT/.patroni-managed"
ADOPTING="$PGDATA.adopting"
SERVER_MAJOR=$("$PG_BIN/postgres" --version | sed -n 's/^postgres (PostgreSQL) \([0-9]*\).*/\1/p')

[[ -d "$PARENT" && -w "$PARENT" ]] ||
  die "the parent of PGDATA ($PARENT) must exist and be writable by uid $(id -u); is the volume mounted with fsGroup 999?"

# Where the cluster is: PGDATA, or the volume root (official image), or half-way between (an interrupted move).
if [ -s "$PGDATA/PG_VERSION" ]; then
  FOUND=$PGDATA
elif [ -d "$ADOPTING" ] || [ -s "$PARENT/PG_VERSION" ]; then
  FOUND=$PARENT
elif [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
  die "$PGDATA is not empty but holds no PostgreSQL cluster (no PG_VERSION); refusing to touch it"
else
  FOUND=
fi
if [ -n "$FOUND" ]; then
  DATA_MAJOR=$(cat "$FOUND/PG_VERSION" 2>/dev/null || cat "$ADOPTING/PG_VERSION")
  [ "$DATA_MAJOR" = "$SERVER_MAJOR" ] ||
    die "$FOUND holds a PostgreSQL $DATA_MAJOR cluster but this image runs PostgreSQL $SERVER_MAJOR; nothing was changed. Upgrade the data with pg_upgrade or a dump and restore into a new stack (docs/failover.md, \"What Patroni does not do\") or use an image of major version $DATA_MAJOR"
fi

# 2. Patroni's consensus store answers; nothing has been written yet.
"$PYTHON" "$HERE/pod.py" check-dcs "${DCS_CHECK_TIMEOUT:-60}" || die "the Kubernetes API is not usable (see the line above)"

# Backups: pgBackRest's configuration (with the S3 key and the passphrase, mode 600, in the pod's memory-backed
# RUN_DIR), for the check below and the agent started further down.
if [ -n "${BACKUP_S3_BUCKET:-}" ]; then
  "$PYTHON" "$HERE/pod.py" pgbackrest-conf || die "invalid backup settings (see the line above)"
fi

# An empty volume in a cluster that Patroni's DCS has never recorded makes a new cluster (initdb or a restore). Not
# over a repository that already holds one (postgres_pod/bootstrap_check.py): after a total loss that would restore
# RESTORE_FROM_PATH's older state again, or initialise a database that can never archive there.
if [ -z "$FOUND" ] && [ -n "${BACKUP_S3_BUCKET:-}" ]; then
  "$PYTHON" "$HERE/pod.py" check-bootstrap || die "refusing to make a new cluster (see the line above); nothing was written"
fi

# A restore (RESTORE_FROM_PATH) makes a new cluster, so it only ever goes into an empty volume. The volume records
# which restore made it; a volume that holds any other cluster stops the pod here, untouched.
RESTORE_MARKER="$PARENT/.restored-from"
if [ -n "${RESTORE_FROM_PATH:-}" ]; then
  WANT="${RESTORE_FROM_PATH} ${RESTORE_TARGET_TIME:-latest}"
  if [ -z "$FOUND" ]; then
    printf '%s\n' "$WANT" >"$RESTORE_MARKER"
  elif [ "$(cat "$RESTORE_MARKER" 2>/dev/null)" != "$WANT" ]; then
    die "RESTORE_FROM_PATH is set ($WANT) but $PGDATA already holds a cluster$( [ -f "$RESTORE_MARKER" ] && echo " restored from $(cat "$RESTORE_MARKER")"); refusing to restore over it. A restore goes into a new stack (new volumes); remove restoreFrom to run this cluster as it is"
  fi
fi

# 3. Adoption of volumes Patroni has not managed yet.
# The official image's layout: move every entry of the volume root except lost+found into PGDATA, through
# PGDATA.adopting so that an interrupted move resumes instead of leaving a cluster split in two.
if [ "$FOUND" = "$PARENT" ]; then
  log "adopting the cluster at the volume root $PARENT: moving it into $PGDATA"
  [ ! -e "$PGDATA" ] || rmdir "$PGDATA" 2>/dev/null || die "both $PARENT and $PGDATA hold data; refusing to merge them"
  mkdir -p "$ADOPTING"
  chmod 0700 "$ADOPTING"
  for entry in "$PARENT"/* "$PARENT"/.[!.]* "$PARENT"/..?*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    case ${entry##*/} in
      lost+found | "${ADOPTING##*/}" | .patroni-managed) continue ;;
    esac
    mv -- "$entry" "$ADOPTING/"
  done
  mv -T "$ADOPTING" "$PGDATA"
  sync
  log "moved the cluster into $PGDATA"
fi

ADOPTING_STANDBY=false
if [ -s "$PGDATA/PG_VERSION" ] && [ ! -f "$MARKER" ]; then
  chmod 0700 "$PGDATA"
  if [ -f "$PGDATA/standby.signal" ] || [ -f "$PGDATA/recovery.signal" ]; then
    # A standby of the previous entrypoint: during the rolling update that brings Patroni, the old primary may
    # still run (the StatefulSet replaces the highest ordinal first). Without a leader in the DCS this member
    # would win the election and promote itself next to it. It waits as a non-promotable replica instead.
    log "adopting a standby that Patroni has not managed yet: nofailover until a Patroni leader exists"
    ADOPTING_STANDBY=true
  else
    log "adopting a primary that Patroni has not managed yet: adding the superuser and replication roles Patroni uses"
    bash "$HERE/prepare-primary.sh" "$PGDATA" || die "could not prepare the roles in $PGDATA (see above); nothing else was changed"
    date -u +%FT%TZ >"$MARKER"
  fi
elif [ ! -s "$PGDATA/PG_VERSION" ]; then
  # An empty volume: Patroni initialises it (the first member) or clones the leader into it.
  date -u +%FT%TZ >"$MARKER"
fi

if [ "$ADOPTING_STANDBY" = true ]; then
  ADOPTING_STANDBY=true "$PYTHON" "$HERE/pod.py" config >"$CONFIG.tmp"
  (
    # Once the cluster has a leader and this member replicates from it (the leader's `postgres` role
    # included), it may be promoted like any other, and Patroni connects as postgres.
    ADOPTING_STANDBY=true "$PYTHON" "$HERE/pod.py" wait-leader
    "$PYTHON" "$HERE/pod.py" config >"$CONFIG.next" && mv -f "$CONFIG.next" "$CONFIG"
    date -u +%FT%TZ >"$MARKER"
    kill -HUP $$ && log "adopted: nofailover lifted (configuration reloaded)"
  ) &
fi
mv -f "$CONFIG.tmp" "$CONFIG"

# Backups: the agent that takes them on the leader.
if [ -n "${BACKUP_S3_BUCKET:-}" ]; then
  "$PYTHON" "$HERE/pod.py" backup-agent &
else
  log "WARNING: no backups configured (BACKUP_S3_BUCKET is unset): this database has no backup"
fi

# The cluster-wide settings (ttl, synchronous mode, parameters) live in the DCS and are bootstrapped once;
# this applies the pod's desired values to an existing cluster as soon as Patroni answers.
"$PYTHON" "$HERE/pod.py" apply-dynamic-config 600 &

# Patroni 3.0.2 can leave the leader waiting for a synchronous standby that is gone (postgres_pod/sync_guard.py).
"$PYTHON" "$HERE/pod.py" sync-guard &

log "starting Patroni (scope ${SCOPE:-postgres}, member $POD_NAME, data $PGDATA)"
exec /usr/bin/patroni "$CONFIG"
