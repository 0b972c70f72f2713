# shellcheck shell=bash
# `stop` (drain the node, stop everything, remove every trace, keep the volumes) and `check-clean`.
# Sourced by scripts/local-cluster.sh, whose settings (STATE, VOLUMES, NODE_IP, ...) and log/die it uses.

stop() {
  resolve_bin
  if running kube-apiserver && running kubelet; then
    # Pods stop the way they would on a real node: preStop hooks (Postgres's fast shutdown), grace periods, and
    # the runtime tears down their network namespaces.
    log "draining $NODE_NAME (pods stop gracefully)"
    kubectl cordon "$NODE_NAME" >/dev/null 2>&1 || true
    kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force --disable-eviction \
      --grace-period=60 --timeout=180s >>"$STATE/logs/drain.log" 2>&1 || log "drain did not finish; stopping the rest by force"
    # The kubelet stops the sandboxes (and CNI removes their networks) shortly after their pods are gone.
    local i
    for ((i = 0; i < 60; i++)); do
      [[ -z "$(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null)" ]] && break
      sleep 1
    done
  fi
  stop_component provisioner 5
  stop_component kubelet 30
  # Whatever the drain left (the kubelet is gone, so nothing restarts it): kill the tasks, let containerd's CRI
  # plugin tear down the sandboxes' networks when the shims report them gone.
  if running containerd; then
    local id
    for id in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 2
    for id in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_component containerd 30
  local shim
  for shim in $(pgrep -f "containerd-shim-runc-v2.*$STATE" || true); do kill -KILL "$shim" 2>/dev/null || true; done
  local pids
  pids="$(container_pids)"
  if [[ -n "$pids" ]]; then
    log "killing $(wc -w <<<"$pids") container processes that outlived their runtime"
    # shellcheck disable=SC2086 # one PID per word
    kill -KILL $pids 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do [[ -z "$(container_pids)" ]] && break; sleep 0.2; done
  fi
  stop_component kube-proxy 10
  if [[ -x "$BIN/kube-proxy" && -f "$STATE/kube-proxy.yaml" ]]; then
    "$BIN/kube-proxy" --cleanup --config="$STATE/kube-proxy.yaml" >>"$STATE/logs/kube-proxy-cleanup.log" 2>&1 || true
  fi
  stop_component kube-scheduler 10
  stop_component kube-controller-manager 10
  stop_component kube-apiserver 20
  stop_component etcd 20

  host_teardown
  rm -rf "$STATE"
  if [[ -f "$MARKER" ]] && [[ "$(marker_value STATE)" == "$STATE" ]]; then rm -f "$MARKER"; fi
  # shellcheck disable=SC2154 # t0: set by scripts/local-cluster.sh
  log "stopped in $((SECONDS - t0))s; removed $STATE"
  if [[ -d "$VOLUMES" ]] && [[ -n "$(ls -A "$VOLUMES" 2>/dev/null)" ]]; then
    log "kept the volumes in $VOLUMES ($(du -sh "$VOLUMES" 2>/dev/null | cut -f1)): claims of the same name get them back in the next cluster; delete them with: rm -rf $VOLUMES"
  fi
  check_clean
}

check_clean() {
  local left=()
  local line
  while read -r line; do [[ -n "$line" ]] && left+=("process: $line"); done < <(our_processes)
  while read -r line; do [[ -n "$line" ]] && left+=("container process: $line $(tr '\0' ' ' <"/proc/$line/cmdline" 2>/dev/null)"); done < <(container_pids)
  while read -r line; do [[ -n "$line" ]] && left+=("mount: $line"); done < <(our_mounts)
  while read -r line; do [[ -n "$line" ]] && left+=("netns: $line"); done < <(our_netns)
  while read -r line; do [[ -n "$line" ]] && left+=("iptables chain: $line"); done < <(our_chains)
  ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("link: $BRIDGE")
  ip -4 addr show dev lo | grep -q " $NODE_IP/32" && left+=("address: $NODE_IP/32 on lo")
  [[ -e "$STATE" ]] && left+=("directory: $STATE")
  if ((${#left[@]})); then
    log "left behind:"
    printf '  %s\n' "${left[@]}" >&2
    return 1
  fi
  log "nothing left behind (processes, mounts, network namespaces, iptables chains, $BRIDGE, $NODE_IP)"
}
