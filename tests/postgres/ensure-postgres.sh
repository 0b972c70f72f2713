#!/bin/bash
# Installs Debian's PostgreSQL (server, client, contrib for pgbench) if its binaries are missing, without
# creating or starting the packaged "main" cluster: the tests and the benchmark run their own data
# directories on free loopback ports. Idempotent; needs root (or sudo) only when something is missing.
#
#   tests/postgres/ensure-postgres.sh        PG_BIN overrides /usr/lib/postgresql/15/bin
set -eu

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
missing=
for bin in postgres initdb pg_ctl pg_basebackup pg_isready pg_controldata psql pgbench; do
  [ -x "$PG_BIN/$bin" ] || missing="$missing $bin"
done

if [ -n "$missing" ]; then
  echo "ensure-postgres: missing in $PG_BIN:$missing; installing postgresql" >&2
  SUDO=
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "ensure-postgres: not root and no sudo; run: apt-get install -y postgresql postgresql-contrib" >&2; exit 1; }
    SUDO=sudo
  fi
  # Read by pg_createcluster when the package is configured: no main cluster, so nothing to auto-start or
  # conflict with on port 5432.
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/no-main-cluster.conf >/dev/null
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql postgresql-contrib
fi

# The server's default socket directory (compiled into Debian's build); normally created by the package,
# but not when no cluster was ever started in this container.
if [ ! -d /var/run/postgresql ]; then
  ${SUDO:-} install -d -o postgres -g postgres -m 2775 /var/run/postgresql
fi

"$PG_BIN/postgres" --version >&2
