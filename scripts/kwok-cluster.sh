#!/usr/bin/env bash
# A Kubernetes control plane on 127.0.0.1 for the e2e suite: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (fake nodes whose pods become Ready, and whose Job pods Succeed). No kubelet, no
# container runtime, no Docker: pods never run, but every controller and the scheduler are the real ones.
#
#   scripts/kwok-cluster.sh start    start everything (idempotent), print `export KUBECONFIG=...`
#   scripts/kwok-cluster.sh stop     stop what start started and remove the state dir
#   scripts/kwok-cluster.sh status   print the state of each process and of the API server
#   scripts/kwok-cluster.sh env      print `export KUBECONFIG=...` (for `eval "$(... env)"`)
#   scripts/kwok-cluster.sh recycle  make Released PersistentVolumes Available again (drop their claimRef)
#   scripts/kwok-cluster.sh smoke    check a StatefulSet binds its PVCs and a Job completes, then clean up
#
# LOCAL_CLUSTER_API_ONLY=1 starts etcd and kube-apiserver only: the consensus store Patroni's tests run against
# (images/postgres/tests), with no controllers, nodes or volumes.
#
# Binaries come from scripts/toolchain.sh (LOCAL_CLUSTER_BIN overrides the bin dir). Ports, node and volume
# counts can be overridden from the environment; see the defaults below.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${LOCAL_CLUSTER_STATE:-$HOME/.cache/stateful-flask-local}"
ETCD_PORT="${LOCAL_CLUSTER_ETCD_PORT:-32379}"
ETCD_PEER_PORT="${LOCAL_CLUSTER_ETCD_PEER_PORT:-32380}"
APISERVER_PORT="${LOCAL_CLUSTER_APISERVER_PORT:-36443}"
CONTROLLER_MANAGER_PORT="${LOCAL_CLUSTER_CONTROLLER_MANAGER_PORT:-40257}"
SCHEDULER_PORT="${LOCAL_CLUSTER_SCHEDULER_PORT:-40259}"
KWOK_PORT="${LOCAL_CLUSTER_KWOK_PORT:-40247}"
NODES="${LOCAL_CLUSTER_NODES:-3}"
VOLUMES="${LOCAL_CLUSTER_VOLUMES:-12}"
VOLUME_SIZE="${LOCAL_CLUSTER_VOLUME_SIZE:-10Gi}"
STORAGE_CLASS="${LOCAL_CLUSTER_STORAGE_CLASS:-local-storage}"
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
# Start order; stop goes in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
API_ONLY="${LOCAL_CLUSTER_API_ONLY:-}"
[[ -z "$API_ONLY" ]] || COMPONENTS=(etcd kube-apiserver)

KUBECONFIG_PATH="$STATE/kubeconfig"
PKI="$STATE/pki"

log() { printf '[kwok-cluster] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  local f
  for f in "$STATE"/logs/*.log; do
    [[ -f "$f" ]] || continue
    log "last lines of $f:"
    tail -n 5 "$f" >&2
  done
  exit 1
}

resolve_bin() {
  if [[ -n "${LOCAL_CLUSTER_BIN:-}" ]]; then
    BIN="$LOCAL_CLUSTER_BIN"
  else
    if [[ -n "$API_ONLY" ]]; then
      BIN="$("$HERE/toolchain.sh" bin etcd kube)" || die "toolchain missing; run scripts/toolchain.sh build etcd kube"
    else
      BIN="$("$HERE/toolchain.sh" bin etcd kube kwok)" || die "toolchain missing; run scripts/toolchain.sh build etcd kube kwok"
    fi
  fi
  KWOK_STAGES="${LOCAL_CLUSTER_KWOK_STAGES:-$(dirname "$BIN")/kwok-stages}"
  local b needed=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
  [[ -z "$API_ONLY" ]] || needed=(etcd kube-apiserver kubectl)
  for b in "${needed[@]}"; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b not found"
  done
}

kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

pid_of() { cat "$STATE/pids/$1.pid" 2>/dev/null || true; }
running() { local pid; pid="$(pid_of "$1")"; [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ------------------------------------------------------------------------------------------------ PKI
# One CA; a serving certificate for the API server; one system:masters client certificate shared by the
# admin kubeconfig and the components (a loopback-only test cluster, as kwokctl does); a service-account
# signing key pair.
gen_pki() {
  [[ -f "$PKI/.complete" ]] && return 0
  mkdir -p "$PKI" && chmod 700 "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=local-cluster-ca" \
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
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=local-cluster-admin" \
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

# ---------------------------------------------------------------------------------------------- processes
# The API server advertises 127.0.0.1, which the `kubernetes` Service's Endpoints may not contain, so its
# endpoint reconciler is off (nothing runs in a pod to call it anyway). etcd skips fsync: the data is
# throwaway and the e2e suite is write-heavy.
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
      --service-cluster-ip-range=$SERVICE_CIDR --authorization-mode=Node,RBAC --allow-privileged=true \
      --enable-priority-and-fairness=false --profiling=false --cert-dir=$STATE/apiserver-certs \
      --endpoint-reconciler-type=none" ;;
    kube-controller-manager) echo "--kubeconfig=$KUBECONFIG_PATH \
      --authentication-kubeconfig=$KUBECONFIG_PATH --authorization-kubeconfig=$KUBECONFIG_PATH \
      --bind-address=127.0.0.1 --secure-port=$CONTROLLER_MANAGER_PORT --leader-elect=false \
      --root-ca-file=$PKI/ca.crt --service-account-private-key-file=$PKI/sa.key \
      --service-cluster-ip-range=$SERVICE_CIDR --kube-api-qps=500 --kube-api-burst=1000 --profiling=false \
      --cert-dir=$STATE/controller-manager-certs" ;;
    kube-scheduler) echo "--kubeconfig=$KUBECONFIG_PATH \
      --authentication-kubeconfig=$KUBECONFIG_PATH --authorization-kubeconfig=$KUBECONFIG_PATH \
      --bind-address=127.0.0.1 --secure-port=$SCHEDULER_PORT --leader-elect=false --profiling=false \
      --kube-api-qps=500 --kube-api-burst=1000 --cert-dir=$STATE/scheduler-certs" ;;
    kwok) echo "--kubeconfig=$KUBECONFIG_PATH --config=$STATE/kwok.yaml --manage-all-nodes=true \
      --server-address=127.0.0.1:$KWOK_PORT --node-port=$KWOK_PORT --node-ip=127.0.0.1 \
      --node-lease-duration-seconds=40 --tls-cert-file=$PKI/apiserver.crt --tls-private-key-file=$PKI/apiserver.key" ;;
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
component_healthy() { curl -skf "https://127.0.0.1:$1/healthz"; }

# ------------------------------------------------------------------------------------------------ objects
bootstrap_objects() {
  local i nodes="" volumes=""
  for ((i = 0; i < NODES; i++)); do
    nodes+="---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: local-$((i % 3))
status:
  allocatable: {cpu: \"32\", memory: 128Gi, pods: \"110\", ephemeral-storage: 500Gi}
  capacity: {cpu: \"32\", memory: 128Gi, pods: \"110\", ephemeral-storage: 500Gi}
"
  done
  # No nodeAffinity: a pod that claims one of these volumes can be scheduled on any fake node.
  for ((i = 0; i < VOLUMES; i++)); do
    volumes+="---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-pv-$i
  labels:
    local-cluster/volume: \"true\"
spec:
  capacity: {storage: $VOLUME_SIZE}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: $STORAGE_CLASS
  volumeMode: Filesystem
  hostPath: {path: /var/lib/local-cluster/pv-$i}
"
  done
  kubectl apply --server-side --field-manager=local-cluster -f - >/dev/null <<EOF
$nodes---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $STORAGE_CLASS
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
# Lets the API accept a larger PVC request (the program grows PVCs in place); the 10Gi PVs already cover it.
allowVolumeExpansion: true
$volumes
EOF
}

nodes_ready() {
  [[ "$(kubectl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c '^True$')" -ge "$NODES" ]]
}

# ------------------------------------------------------------------------------------------------ commands
cmd_start() {
  resolve_bin
  command -v openssl >/dev/null || die "openssl not found"
  mkdir -p "$STATE"
  local c port
  if ! running kube-apiserver; then
    local ports=("$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$CONTROLLER_MANAGER_PORT" "$SCHEDULER_PORT" "$KWOK_PORT")
    [[ -z "$API_ONLY" ]] || ports=("$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT")
    for port in "${ports[@]}"; do
      port_free "$port" || die "port 127.0.0.1:$port is in use (override with LOCAL_CLUSTER_*_PORT)"
    done
  fi
  gen_pki
  write_kubeconfig
  if [[ -n "$API_ONLY" ]]; then
    local t0=$SECONDS
    start_component etcd
    wait_for etcd 60 etcd_healthy
    start_component kube-apiserver
    wait_for kube-apiserver 120 apiserver_ready
    log "API server ready in $((SECONDS - t0))s (etcd and kube-apiserver only)"
    cmd_env
    return 0
  fi
  [[ -d "$KWOK_STAGES" ]] || die "kwok stage configs not found in $KWOK_STAGES"
  cat "$KWOK_STAGES"/node-initialize.yaml <(echo ---) "$KWOK_STAGES"/node-heartbeat-with-lease.yaml <(echo ---) \
    "$KWOK_STAGES"/pod-ready.yaml <(echo ---) "$KWOK_STAGES"/pod-complete.yaml <(echo ---) \
    "$KWOK_STAGES"/pod-delete.yaml >"$STATE/kwok.yaml"

  local t0=$SECONDS
  start_component etcd
  wait_for etcd 60 etcd_healthy
  start_component kube-apiserver
  wait_for kube-apiserver 120 apiserver_ready
  start_component kube-controller-manager
  start_component kube-scheduler
  start_component kwok
  wait_for kube-controller-manager 60 component_healthy "$CONTROLLER_MANAGER_PORT"
  wait_for kube-scheduler 60 component_healthy "$SCHEDULER_PORT"
  bootstrap_objects
  wait_for "$NODES Ready nodes" 60 nodes_ready
  wait_for "the default ServiceAccount" 60 kubectl get serviceaccount default -n default
  log "ready in $((SECONDS - t0))s: $NODES nodes, StorageClass $STORAGE_CLASS, $VOLUMES PersistentVolumes of $VOLUME_SIZE"
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
    kubectl get nodes 2>/dev/null || true
  fi
  ((up == ${#COMPONENTS[@]}))
}

cmd_env() {
  [[ -f "$KUBECONFIG_PATH" ]] || die "not started (no $KUBECONFIG_PATH)"
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
}

# With reclaimPolicy Retain a PV whose PVC was deleted stays Released and never binds again. The volumes
# here hold no data, so a test that deletes its PVCs can hand them back to the pool.
cmd_recycle() {
  resolve_bin
  local pv n=0
  for pv in $(kubectl get pv -l local-cluster/volume=true \
    -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\n"}{end}'); do
    kubectl patch pv "$pv" --type json -p '[{"op":"remove","path":"/spec/claimRef"}]' >/dev/null
    n=$((n + 1))
  done
  log "recycled $n Released PersistentVolume(s)"
}

smoke_ready() {
  local ns=local-cluster-smoke
  [[ "$(kubectl get statefulset smoke -n "$ns" -o jsonpath='{.status.readyReplicas}')" == 2 ]] &&
    [[ "$(kubectl get pvc -n "$ns" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Bound$')" == 2 ]] &&
    [[ "$(kubectl get job smoke -n "$ns" -o jsonpath='{.status.succeeded}')" == 1 ]]
}

cmd_smoke() {
  resolve_bin
  local ns=local-cluster-smoke t0=$SECONDS
  kubectl create namespace "$ns" >/dev/null
  kubectl apply -f "$HERE/kwok-cluster/smoke.yaml" >/dev/null
  if ! (wait_for "StatefulSet Ready with 2 Bound PVCs and Job complete" 120 smoke_ready); then
    kubectl get statefulset,pod,pvc,job -n "$ns" -o wide >&2 || true
    kubectl get pv >&2 || true
    exit 1
  fi
  kubectl get statefulset,pod,pvc,job -n "$ns" >&2
  log "smoke passed in $((SECONDS - t0))s; cleaning up"
  kubectl delete namespace "$ns" --wait=true --timeout=120s >/dev/null
  cmd_recycle
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  recycle) cmd_recycle ;;
  smoke) cmd_smoke ;;
  *) echo "usage: $0 start|stop|status|env|recycle|smoke" >&2; exit 2 ;;
esac
