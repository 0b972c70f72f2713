#!/usr/bin/env bash
# npm run local:down: stops the control plane started by local-up.sh and removes its state and the `local`
# stack's Pulumi state. Nothing is destroyed through Pulumi (the stack's data is protected, and the whole
# cluster goes away anyway).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="${LOCAL_UP_STATE:-$HOME/.cache/stateful-flask-local-up}"
if [[ -d "$STATE/cluster" ]]; then
  LOCAL_CLUSTER_STATE="$STATE/cluster" scripts/local-cluster.sh stop
fi
rm -rf "$STATE"
echo "[local-down] removed $STATE" >&2
