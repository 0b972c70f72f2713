#!/usr/bin/env bash
# Builds the project's images without Docker (scripts/images/build.ts); see that file for the commands.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/node.sh npx --no-install ts-node --transpile-only scripts/images/build.ts "$@"
