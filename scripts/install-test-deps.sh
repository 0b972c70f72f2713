#!/usr/bin/env bash
# Installs what the tests run real processes from: the exact Debian package versions the images pin (PostgreSQL
# 15, Patroni, pgBackRest, croniter, the Flask stack; scripts/ensure-packages.sh), the linters' for npm run lint
# (scripts/lint-packages.txt) and what the local cluster and the image builder need
# (scripts/install-cluster-deps.sh). Idempotent; quiet when everything is present.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/ensure-packages.sh" "$here/images/api/packages.txt" "$here/images/postgres/packages.txt" \
  "$here/scripts/lint-packages.txt"
bash "$here/scripts/install-cluster-deps.sh"
