#!/usr/bin/env bash
# Builds the project's images with buildah, without Docker or a registry (scripts/images/build.ts, docs/images.md);
# see that file for the commands.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/node.sh npx --no-install ts-node --transpile-only scripts/images/build.ts "$@"
