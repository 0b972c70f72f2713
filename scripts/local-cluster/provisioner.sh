#!/usr/bin/env bash
# The local cluster's dynamic provisioner (started and stopped by scripts/local-cluster.sh), for StorageClasses
# whose provisioner is PROVISIONER. Every 2 seconds:
#   - a Pending claim that the scheduler placed on this node (WaitForFirstConsumer) gets a `local`
#     PersistentVolume, pre-bound to it, on the directory VOLUMES/<namespace>/<claim>. A directory that no volume
#     of this cluster refers to is used again: that is how a re-created cluster (local:down, local:up) finds its
#     data. A directory that a Released volume still holds (Retain) is left to it and the claim gets a new one,
#     as DigitalOcean gives a new claim a new disk;
#   - a Released volume of a class with reclaimPolicy Delete is deleted, directory included; Retain keeps both;
#   - a claim whose request grew past its volume's capacity is "expanded" (directories have no size: the PV's
#     capacity and the claim's status are updated, as a CSI resizer would after growing a disk).
# `local` volumes, not hostPath: the kubelet applies fsGroup to them (hostPath ignores it).
#
#   provisioner.sh STATE VOLUMES PROVISIONER NODE     (KUBECONFIG and PATH with kubectl set by the caller; STATE,
#                                                    the caller's state dir, is not used here)
set -uo pipefail
VOLUMES=$2 PROVISIONER=$3 NODE=$4

log() { printf '%s provisioner: %s\n' "$(date -u +%FT%TZ)" "$*"; }
# Bytes of a Kubernetes quantity (the forms claims use: plain, k/M/G/T, Ki/Mi/Gi/Ti).
# shellcheck disable=SC2016 # a jq program: $q is jq's
JQ_BYTES='def bytes: capture("^(?<n>[0-9.]+)(?<u>[A-Za-z]*)$") as $q
  | ($q.n | tonumber) * ({"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1048576, "Gi": 1073741824, "Ti": 1099511627776}[$q.u] // error("unknown unit " + $q.u));'

provision() { # provision NAMESPACE CLAIM UID SIZE MODES CLASS RECLAIM
  local ns=$1 claim=$2 uid=$3 size=$4 modes=$5 class=$6 reclaim=$7
  local dir="$VOLUMES/$ns/$claim" holder
  holder=$(kubectl get pv -o json | jq -r --arg d "$dir" '[.items[] | select(.spec.local.path == $d) | .metadata.name] | first // ""')
  if [[ -n "$holder" ]]; then
    dir="$VOLUMES/$ns/$claim-${uid:0:8}"
    mkdir -p "$dir" && log "claim $ns/$claim: $VOLUMES/$ns/$claim belongs to $holder; created $dir"
  elif [[ -d "$dir" ]]; then
    log "claim $ns/$claim: reusing $dir, which no volume of this cluster holds"
  else
    mkdir -p "$dir" && log "claim $ns/$claim: created $dir"
  fi
  kubectl create -f - >/dev/null <<PV && log "claim $ns/$claim: bound to pvc-$uid ($size, $class, $reclaim)"
{
  "apiVersion": "v1", "kind": "PersistentVolume",
  "metadata": {"name": "pvc-$uid", "annotations": {"pv.kubernetes.io/provisioned-by": "$PROVISIONER"}},
  "spec": {
    "capacity": {"storage": "$size"},
    "accessModes": $modes,
    "persistentVolumeReclaimPolicy": "$reclaim",
    "storageClassName": "$class",
    "volumeMode": "Filesystem",
    "local": {"path": "$dir"},
    "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "$ns", "name": "$claim", "uid": "$uid"},
    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["$NODE"]}]}]}}
  }
}
PV
}

cycle() {
  local classes pvcs pvs
  classes=$(kubectl get storageclass -o json | jq -c --arg p "$PROVISIONER" '[.items[] | select(.provisioner == $p) | {key: .metadata.name, value: (.reclaimPolicy // "Delete")}] | from_entries') || return
  [[ "$classes" == "{}" ]] && return
  pvcs=$(kubectl get pvc -A -o json) || return
  pvs=$(kubectl get pv -o json) || return

  jq -r --argjson c "$classes" --arg node "$NODE" '.items[]
    | select(.status.phase == "Pending" and ($c[.spec.storageClassName // ""] != null))
    | select((.metadata.annotations["volume.kubernetes.io/selected-node"] // "") == $node)
    | select((.spec.volumeName // "") == "")
    | [.metadata.namespace, .metadata.name, .metadata.uid, .spec.resources.requests.storage, (.spec.accessModes | tojson), .spec.storageClassName, $c[.spec.storageClassName]] | @tsv' <<<"$pvcs" |
    while IFS=$'\t' read -r ns claim uid size modes class reclaim; do
      [[ -n "$ns" ]] && provision "$ns" "$claim" "$uid" "$size" "$modes" "$class" "$reclaim"
    done

  jq -r --arg p "$PROVISIONER" '.items[] | select(.metadata.annotations["pv.kubernetes.io/provisioned-by"] == $p)
    | select(.status.phase == "Released" and .spec.persistentVolumeReclaimPolicy == "Delete")
    | [.metadata.name, .spec.local.path] | @tsv' <<<"$pvs" |
    while IFS=$'\t' read -r pv dir; do
      [[ -n "$pv" ]] || continue
      case $dir in "$VOLUMES"/*/*) rm -rf -- "$dir" ;; *) log "volume $pv: $dir is outside $VOLUMES; not deleting it" ;; esac
      kubectl delete pv "$pv" --wait=false >/dev/null && log "volume $pv: released with reclaim policy Delete; deleted it and $dir"
    done

  jq -r --argjson c "$classes" "$JQ_BYTES"' .items[]
    | select(.status.phase == "Bound" and ($c[.spec.storageClassName // ""] != null))
    | select((.spec.resources.requests.storage | bytes) > (.status.capacity.storage | bytes))
    | [.metadata.namespace, .metadata.name, .spec.volumeName, .spec.resources.requests.storage] | @tsv' <<<"$pvcs" |
    while IFS=$'\t' read -r ns claim pv size; do
      [[ -n "$ns" ]] || continue
      kubectl patch pv "$pv" --type merge -p "{\"spec\":{\"capacity\":{\"storage\":\"$size\"}}}" >/dev/null &&
        kubectl -n "$ns" patch pvc "$claim" --subresource=status --type merge -p "{\"status\":{\"capacity\":{\"storage\":\"$size\"}}}" >/dev/null &&
        log "claim $ns/$claim: expanded to $size"
    done
}

log "started (provisioner $PROVISIONER, node $NODE, volumes in $VOLUMES)"
trap 'log "stopped"; exit 0' TERM INT
while true; do
  cycle
  sleep 2 &
  wait $!
done
