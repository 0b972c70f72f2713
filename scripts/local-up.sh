#!/usr/bin/env bash
# npm run local:up: builds the toolchain if missing (scripts/toolchain.sh, ~45 min the first time), starts the
# loopback control plane (scripts/local-cluster.sh, StorageClass `standard`) and deploys the `local` stack with
# the real Pulumi engine through the Automation API (tests/e2e/local-up.ts), then prints the outputs.
# State: ${LOCAL_UP_STATE:-~/.cache/stateful-flask-local-up}; `scripts/local-down.sh` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOCAL_UP_STATE="${LOCAL_UP_STATE:-$HOME/.cache/stateful-flask-local-up}"
if ! scripts/toolchain.sh bin >/dev/null 2>&1; then
  echo "[local-up] toolchain missing: building it with scripts/toolchain.sh (about 45 minutes on 2 cores the first time)" >&2
  scripts/toolchain.sh build >/dev/null
fi
[[ -d node_modules/@pulumi/pulumi ]] || { echo "[local-up] node_modules missing: run npm run setup (or npm ci) first" >&2; exit 1; }
start=$SECONDS
npx ts-node tests/e2e/local-up.ts
echo "[local-up] done in $((SECONDS - start))s; stop with scripts/local-down.sh (npm run local:down)" >&2
