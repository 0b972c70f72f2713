# shellcheck shell=bash
# `reclaim`: one cluster per machine; frees the node from a cluster whose processes are gone without a stop.
# Sourced by scripts/local-cluster.sh, whose settings (STATE, VOLUMES, NODE_IP, ...) and log/die it uses.

marker_value() { # marker_value KEY: the value the running (or last) cluster recorded
  [[ -f "$MARKER" ]] || return 0
  # shellcheck source=/dev/null # the marker host_setup writes
  (set +u; source "$MARKER" && eval "printf '%s' \"\${$1:-}\"")
}

# The state dirs a cluster left on this machine: the marker's, and any that mounts or shims still name.
stale_states() {
  {
    marker_value STATE && echo
    findmnt -rn -o TARGET | sed -nE 's#^(/.+)/(kubelet/root|containerd/(state|root))(/.*)?$#\1#p'
    pgrep -af containerd-shim-runc-v2 2>/dev/null | sed -nE 's#.* -address (/.+)/containerd/containerd\.sock.*#\1#p'
  } | grep -v '^$' | sort -u
}

machine_taken() {
  ip -4 addr show dev lo | grep -q " $NODE_IP/32" || ip link show "$BRIDGE" >/dev/null 2>&1 || [[ -f "$MARKER" ]] ||
    [[ -n "$(stale_states)" ]]
}

reclaim() {
  if ! machine_taken; then
    log "the node is free (no $NODE_IP on lo, no $BRIDGE, no cluster state mounted)"
    return 0
  fi
  local states s c
  mapfile -t states < <(stale_states)
  for s in "${states[@]}"; do
    for c in "${COMPONENTS[@]}"; do
      if STATE="$s" running "$c"; then
        log "a local cluster runs on this machine: $c (pid $(STATE="$s" pid_of "$c")) of $s"
        echo "$s"
        return 3
      fi
    done
  done
  # Nothing runs: stop each stale cluster (its mounts, shims, networks, chains, the bridge and the address go).
  local volumes
  volumes="$(marker_value VOLUMES)"
  ((${#states[@]})) || states=("$(mktemp -d /tmp/stateful-flask-reclaim-XXXXXX)")
  for s in "${states[@]}"; do
    log "reclaiming the node from a cluster that is gone without a stop (state $s)"
    LOCAL_CLUSTER_STATE="$s" LOCAL_CLUSTER_VOLUMES="${volumes:-$s/.no-volumes}" bash "$0" stop || true
  done
  rm -f "$MARKER"
  if machine_taken || [[ -n "$(our_chains)$(our_netns)" ]]; then
    log "the node is still taken after reclaiming; see the list above"
    return 1
  fi
  log "the node is free"
}
