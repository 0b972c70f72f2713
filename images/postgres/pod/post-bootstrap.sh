#!/bin/bash
# Patroni's bootstrap.post_bootstrap: runs once, on the member that initialised a new cluster, with a superuser
# connection string as $1. Creates the application role and database (app-database.sql).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"${PG_BIN:-/usr/lib/postgresql/15/bin}/psql" -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$HERE/app-database.sql"
echo "post-bootstrap: created role ${APP_USER:-?} and database ${APP_DATABASE:-?}" >&2
