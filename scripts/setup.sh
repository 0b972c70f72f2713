#!/usr/bin/env bash
# npm run setup: a supported Node (scripts/node.sh), the npm dependencies of the program and of the policy pack
# (npm ci, exactly the lock files), and the Debian packages the tests run real servers from.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/node.sh npm ci --no-audit --no-fund
bash scripts/node.sh npm --prefix policy ci --no-audit --no-fund
bash scripts/install-test-deps.sh
