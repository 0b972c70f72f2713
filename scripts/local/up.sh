#!/usr/bin/env bash
# npm run local:up: the main job on this machine. Builds what is missing (the toolchain from Go modules, about
# 24 minutes the first time; the images from Debian packages, one to four minutes), starts the real single-node
# cluster (scripts/local-cluster.sh), deploys the `local` stack with the real Pulumi engine
# (scripts/local/up.ts) and ends with a URL on 127.0.0.1 that serves the API.
# State: ${LOCAL_UP_STATE:-~/.cache/stateful-flask-local-up}; `npm run local:down` removes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ "$(id -u)" == 0 ]] || { echo "[local-up] the local cluster needs root (containerd, mounts, iptables)" >&2; exit 1; }
start=$SECONDS
if ! scripts/toolchain.sh bin >/dev/null 2>&1; then
  echo "[local-up] toolchain missing: building it with scripts/toolchain.sh (about 24 minutes on 2 cores the first time; progress below)" >&2
  scripts/toolchain.sh build >/dev/null
fi
[[ -d node_modules/@pulumi/pulumi ]] || { echo "[local-up] node_modules missing: run npm run setup first" >&2; exit 1; }
bash scripts/install-cluster-deps.sh
bash scripts/node.sh npx --no-install ts-node scripts/local/up.ts
echo "[local-up] done in $((SECONDS - start))s; stop with npm run local:down" >&2
