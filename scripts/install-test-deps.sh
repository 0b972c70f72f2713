#!/usr/bin/env bash
# Installs the Debian packages the tests run real servers from: PostgreSQL 15 (replication tests, benchmark)
# and the Flask stack (the app's migration and API tests). Idempotent; quiet when everything is present.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/tests/postgres/ensure-postgres.sh"
bash "$here/tests/app/ensure-python.sh"
