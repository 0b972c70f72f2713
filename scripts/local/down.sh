#!/usr/bin/env bash
# npm run local:down: stops the API's forwarders and the local cluster (the node is drained first, so PostgreSQL
# shuts down cleanly), and removes the cluster's and the `local` stack's state. Keeps the volumes and the
# passwords that open them, so the next `npm run local:up` finds the data again; says how to remove them.
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE="${LOCAL_UP_STATE:-$HOME/.cache/stateful-flask-local-up}"
VOLUMES="${LOCAL_CLUSTER_VOLUMES:-$HOME/.cache/stateful-flask-volumes}"
for name in forwarder ingress-forwarder; do
  if [[ -f "$STATE/$name.pid" ]]; then
    read -r pid _ <"$STATE/$name.pid"
    if kill "$pid" 2>/dev/null; then echo "[local-down] stopped the $name (pid $pid)" >&2; fi
  fi
done
if [[ -d "$STATE/cluster" ]]; then
  LOCAL_CLUSTER_STATE="$STATE/cluster" LOCAL_CLUSTER_VOLUMES="$VOLUMES" scripts/local-cluster.sh stop
fi
rm -rf "$STATE"
echo "[local-down] removed $STATE (the cluster and the local stack's Pulumi state)" >&2
if [[ -d "$VOLUMES" ]]; then
  echo "[local-down] kept $VOLUMES: the Postgres volumes, the backups (.backup-store) and local-stack-passwords.json; the next npm run local:up finds them again. Remove them with: rm -rf $VOLUMES" >&2
fi
