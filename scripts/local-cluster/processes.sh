# shellcheck shell=bash
# Process control: the binaries, starting and stopping one component (pid files in $STATE/pids, logs in
# $STATE/logs), finding the processes a cluster left, and `status`.
# Sourced by scripts/local-cluster.sh, whose settings (STATE, VOLUMES, NODE_IP, ...) and log/die it uses.

resolve_bin() {
  BIN="${LOCAL_CLUSTER_BIN:-}"
  if [[ -z "$BIN" ]]; then
    BIN="$("$HERE/toolchain.sh" bin etcd kube node coredns traefik versitygw)" ||
      die "toolchain missing; run: scripts/toolchain.sh build etcd kube node coredns traefik versitygw"
  fi
  local b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b not found"
  done
  for b in containerd containerd-shim-runc-v2 runc ctr iptables conntrack jq; do
    command -v "$b" >/dev/null || die "$b not found; run: bash scripts/install-cluster-deps.sh"
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/portmap && -x /usr/lib/cni/loopback ]] ||
    die "CNI plugins missing in /usr/lib/cni; run: bash scripts/install-cluster-deps.sh"
}

kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

wait_for() {
  local what="$1" seconds="$2"; shift 2
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    ((SECONDS - start < seconds)) || die "timed out after ${seconds}s waiting for $what"
    sleep 1
  done
  log "$what after $((SECONDS - start))s"
}

binary_for() {
  case "$1" in
    containerd) command -v containerd ;;
    provisioner) echo "$HERE/local-cluster/provisioner.sh" ;;
    *) echo "$BIN/$1" ;;
  esac
}

start_component() {
  local c="$1"
  if running "$c"; then return 0; fi
  # shellcheck disable=SC2046 # flags without spaces inside
  KUBECONFIG="$KUBECONFIG_PATH" PATH="$BIN:$PATH" setsid "$(binary_for "$c")" $(args_for "$c") \
    >>"$STATE/logs/$c.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$c.pid"
  log "started $c (pid $!, log $STATE/logs/$c.log)"
}

stop_component() { # stop_component NAME [SECONDS]
  local c="$1" wait="${2:-30}" pid i
  pid="$(pid_of "$c")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$c did not stop in ${wait}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$STATE/pids/$c.pid"
}

our_processes() { pgrep -af -- "$STATE" 2>/dev/null | grep -v -e "pgrep" -e "local-cluster.sh" || true; }
# Processes of our containers (a shim killed with -9, or containerd gone with the machine's other processes, leaves
# them running; a postmaster among them would still hold its volume): in their own mount namespace, their root "/"
# is an overlay whose layers are under the state dir. (/proc/PID/root reads "/" from outside that namespace.)
container_pids() {
  local p
  for p in /proc/[0-9]*; do
    awk -v state="=$STATE/" '$5 == "/" && index($0, state) { found = 1 } END { exit !found }' "$p/mountinfo" 2>/dev/null &&
      echo "${p#/proc/}"
  done
  return 0
}

status() {
  local c
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then echo "$c: running (pid $(pid_of "$c"))"; else echo "$c: stopped"; fi
  done
  if [[ -f "$KUBECONFIG_PATH" ]] && running kube-apiserver; then
    resolve_bin
    kubectl get node -o wide 2>/dev/null || true
    kubectl get pods -A -o wide 2>/dev/null || true
  fi
}
