#!/usr/bin/env bash
# A Kubernetes API on 127.0.0.1 and nothing else: etcd and kube-apiserver, no controllers, no nodes. It is the
# consensus store the Patroni and backup tests run real Patroni members against (images/postgres/tests), and what
# the failover and replication benchmarks use. The real single-node cluster (kubelet, containerd, CNI,
# kube-proxy, CoreDNS) is scripts/local-cluster.sh.
#
#   scripts/control-plane.sh start    start etcd and kube-apiserver (idempotent), print `export KUBECONFIG=...`
#   scripts/control-plane.sh stop     stop what start started and remove the state dir
#   scripts/control-plane.sh status   the state of each process and of the API server
#   scripts/control-plane.sh env      print `export KUBECONFIG=...` (for `eval "$(... env)"`)
#
# Binaries come from scripts/toolchain.sh (components etcd and kube; CONTROL_PLANE_BIN overrides the bin dir).
# State: CONTROL_PLANE_STATE (default ~/.cache/stateful-flask-control-plane). Ports: CONTROL_PLANE_ETCD_PORT,
# CONTROL_PLANE_ETCD_PEER_PORT, CONTROL_PLANE_APISERVER_PORT (the tests pick free ones).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${CONTROL_PLANE_STATE:-$HOME/.cache/stateful-flask-control-plane}"
ETCD_PORT="${CONTROL_PLANE_ETCD_PORT:-32379}"
ETCD_PEER_PORT="${CONTROL_PLANE_ETCD_PEER_PORT:-32380}"
APISERVER_PORT="${CONTROL_PLANE_APISERVER_PORT:-36443}"
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
# Start order; stop goes in reverse.
COMPONENTS=(etcd kube-apiserver)

KUBECONFIG_PATH="$STATE/kubeconfig"
PKI="$STATE/pki"

log() { printf '[control-plane] %s\n' "$*" >&2; }
# shellcheck source=lib/daemons.sh
source "$HERE/lib/daemons.sh"

resolve_bin() {
  if [[ -n "${CONTROL_PLANE_BIN:-}" ]]; then
    BIN="$CONTROL_PLANE_BIN"
  else
    BIN="$("$HERE/toolchain.sh" bin etcd kube)" || die "toolchain missing; run scripts/toolchain.sh build etcd kube"
  fi
  local b
  for b in etcd kube-apiserver kubectl; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b not found"
  done
}

kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }


port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# One CA, a serving certificate for the API server, one system:masters client certificate for the admin
# kubeconfig (a loopback-only test API), a service-account signing key pair.
gen_pki() {
  [[ -f "$PKI/.complete" ]] && return 0
  mkdir -p "$PKI" && chmod 700 "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=control-plane-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    cat >apiserver.ext <<EOF
subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment
EOF
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >admin.ext
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=control-plane-admin" \
      -keyout admin.key -out admin.csr 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext ca.srl
  )
  touch "$PKI/.complete"
}

write_kubeconfig() {
  local kc="$KUBECONFIG_PATH"
  rm -f "$kc"
  "$BIN/kubectl" config --kubeconfig "$kc" set-cluster local --server "https://127.0.0.1:$APISERVER_PORT" \
    --certificate-authority "$PKI/ca.crt" --embed-certs >/dev/null
  "$BIN/kubectl" config --kubeconfig "$kc" set-credentials local-admin --client-certificate "$PKI/admin.crt" \
    --client-key "$PKI/admin.key" --embed-certs >/dev/null
  "$BIN/kubectl" config --kubeconfig "$kc" set-context local --cluster local --user local-admin >/dev/null
  "$BIN/kubectl" config --kubeconfig "$kc" use-context local >/dev/null
  chmod 600 "$kc"
}

# The API server advertises 127.0.0.1, which the `kubernetes` Service's endpoints may not contain, so its endpoint
# reconciler is off (nothing runs in a pod to use it). etcd skips fsync: the data is throwaway.
args_for() {
  case "$1" in
    etcd) echo "--name=local --data-dir=$STATE/etcd \
      --listen-client-urls=http://127.0.0.1:$ETCD_PORT --advertise-client-urls=http://127.0.0.1:$ETCD_PORT \
      --listen-peer-urls=http://127.0.0.1:$ETCD_PEER_PORT --initial-advertise-peer-urls=http://127.0.0.1:$ETCD_PEER_PORT \
      --initial-cluster=local=http://127.0.0.1:$ETCD_PEER_PORT \
      --auto-compaction-retention=1 --quota-backend-bytes=2147483648 --unsafe-no-fsync --log-level=warn" ;;
    kube-apiserver) echo "--etcd-servers=http://127.0.0.1:$ETCD_PORT \
      --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=$APISERVER_PORT \
      --tls-cert-file=$PKI/apiserver.crt --tls-private-key-file=$PKI/apiserver.key --client-ca-file=$PKI/ca.crt \
      --service-account-key-file=$PKI/sa.pub --service-account-signing-key-file=$PKI/sa.key \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-cluster-ip-range=$SERVICE_CIDR --authorization-mode=RBAC \
      --enable-priority-and-fairness=false --profiling=false --cert-dir=$STATE/apiserver-certs \
      --endpoint-reconciler-type=none" ;;
  esac
}

start_component() {
  local c="$1"
  if running "$c"; then log "$c already running (pid $(pid_of "$c"))"; return 0; fi
  mkdir -p "$STATE/pids" "$STATE/logs"
  # shellcheck disable=SC2046 # the arguments are space-separated flags without spaces inside
  setsid "$BIN/$c" $(args_for "$c") >"$STATE/logs/$c.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$c.pid"
  log "started $c (pid $!, log $STATE/logs/$c.log)"
}

wait_for() {
  local what="$1" tries="$2"; shift 2
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "timed out waiting for $what"
}

etcd_healthy() { curl -sf "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() { kubectl get --raw /readyz; }

cmd_start() {
  resolve_bin
  command -v openssl >/dev/null || die "openssl not found"
  mkdir -p "$STATE"
  local port t0=$SECONDS
  if ! running kube-apiserver; then
    for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT"; do
      port_free "$port" || die "port 127.0.0.1:$port is in use (override with CONTROL_PLANE_*_PORT)"
    done
  fi
  gen_pki
  write_kubeconfig
  start_component etcd
  wait_for etcd 60 etcd_healthy
  start_component kube-apiserver
  wait_for kube-apiserver 120 apiserver_ready
  log "API server ready in $((SECONDS - t0))s at https://127.0.0.1:$APISERVER_PORT"
  cmd_env
}

cmd_stop() {
  local i c pid
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c="${COMPONENTS[$i]}"
    pid="$(pid_of "$c")"
    [[ -n "$pid" ]] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
      log "stopped $c (pid $pid)"
    fi
    rm -f "$STATE/pids/$c.pid"
  done
  if [[ -d "$STATE" ]]; then
    rm -rf "$STATE"
    log "removed $STATE"
  fi
}

cmd_status() {
  local c up=0
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then log "$c: running (pid $(pid_of "$c"))"; up=$((up + 1)); else log "$c: stopped"; fi
  done
  if ((up > 0)) && [[ -f "$KUBECONFIG_PATH" ]]; then
    resolve_bin
    if kubectl get --raw /readyz >/dev/null 2>&1; then
      log "API server ready at https://127.0.0.1:$APISERVER_PORT"
    else
      log "API server not ready"
    fi
  fi
  ((up == ${#COMPONENTS[@]}))
}

cmd_env() {
  [[ -f "$KUBECONFIG_PATH" ]] || die "not started (no $KUBECONFIG_PATH)"
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
