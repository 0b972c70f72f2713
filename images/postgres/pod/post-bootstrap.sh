#!/bin/bash
# Patroni's bootstrap.post_bootstrap: runs once, on the member that initialised a new cluster (initdb, or a restore
# from a backup), with a superuser connection string as $1. Creates the application role and database
# (app-database.sql, idempotent: a restored cluster has them and gets this stack's password), and, with backups
# configured, the pgBackRest stanza of this cluster, before it archives its first segment (the backup agent
# retries when the store is unreachable now).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"${PG_BIN:-/usr/lib/postgresql/15/bin}/psql" -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$HERE/app-database.sql"
echo "post-bootstrap: role ${APP_USER:-?} and database ${APP_DATABASE:-?} ready" >&2
if [ -n "${BACKUP_S3_BUCKET:-}" ]; then
  if "${PYTHON:-/usr/bin/python3}" "$HERE/pod.py" stanza-create; then
    echo "post-bootstrap: pgBackRest stanza created" >&2
  else
    echo "post-bootstrap: WARNING: the pgBackRest stanza could not be created now; the backup agent retries" >&2
  fi
fi
