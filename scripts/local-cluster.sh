#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, without Docker: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd + runc (Debian packages), a kubelet, bridge CNI (Debian's plugins), kube-proxy in
# iptables mode, CoreDNS, Traefik (the ingress controller, class `traefik`) and versitygw (an S3 store for the
# local stack's backups) as pods, and a small dynamic provisioner for the `standard` StorageClass. Containers really run: pods get container IDs, IPs, DNS names and
# volumes on disk.
#
#   scripts/local-cluster.sh start          start everything (idempotent); prints `export KUBECONFIG=...`
#   scripts/local-cluster.sh stop           drain the node, stop everything, remove every trace (processes,
#                                           mounts, network namespaces, iptables chains, the bridge, the node
#                                           address); keeps the volumes (see below) and says so
#   scripts/local-cluster.sh status         each process, the node, the system pods
#   scripts/local-cluster.sh check-clean    exit 1 and list what a stopped cluster left behind
#   scripts/local-cluster.sh reclaim        clean up after a cluster whose processes are gone without a stop (a
#                                           killed run, a restored machine): exit 0 when the node is free after
#                                           it, 3 (naming the state dir) when a cluster still runs
#   scripts/local-cluster.sh restart-node   restart containerd and the kubelet (pods keep running)
#   scripts/local-cluster.sh env            print `export KUBECONFIG=...`
#
# Volumes: PVCs of the `standard` (reclaim Delete) and `standard-retain` (Retain) classes are directories
# $LOCAL_CLUSTER_VOLUMES/<namespace>/<claim> (default ~/.cache/stateful-flask-volumes). They outlive `stop`, and
# a claim of the same name in a new cluster gets the same directory back (as a re-attached disk would). The backup
# store's data, CA and key are kept beside them, in $LOCAL_CLUSTER_VOLUMES/.backup-store.
#
# Binaries: scripts/toolchain.sh (kube, node, etcd, coredns, traefik, versitygw); images: scripts/images.sh (pause,
# coredns, traefik, versitygw).
# Host settings it changes and restores on stop: net.ipv4.ip_forward, net.bridge.bridge-nf-call-iptables.
# Versions and why: docs/local-cluster.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
STATE="${LOCAL_CLUSTER_STATE:-$HOME/.cache/stateful-flask-cluster}"
VOLUMES="${LOCAL_CLUSTER_VOLUMES:-$HOME/.cache/stateful-flask-volumes}"
NODE_NAME=stateful-flask-node
# The node's address: an alias on lo (this VM has no dummy interfaces). Pods reach it through the bridge's
# gateway, the host reaches it locally, and it does not depend on the machine's own network.
NODE_IP="${LOCAL_CLUSTER_NODE_IP:-10.250.0.1}"
APISERVER_PORT="${LOCAL_CLUSTER_APISERVER_PORT:-6443}"
ETCD_PORT=22379
ETCD_PEER_PORT=22380
POD_CIDR=10.244.0.0/16
NODE_POD_SUBNET=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
DNS_IP=10.96.0.10
# The ingress controller's Service, fixed so that Traefik can publish it on Ingress status (no load balancer here).
INGRESS_IP=10.96.0.80
# The S3 store of the local stack's backups (scripts/local-cluster/backup-store.yaml): its data, CA and key.
BACKUP_STORE="$VOLUMES/.backup-store"
BACKUP_BUCKET=local-backups
BRIDGE=sfcni0
PROVISIONER=stateful-flask.local/hostpath
COMPONENTS=(etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet kube-proxy provisioner)

# One cluster per machine (the node address, the ports, the bridge): the running one's dirs, for `reclaim`.
MARKER="${LOCAL_CLUSTER_MARKER:-/run/stateful-flask-cluster}"

KUBECONFIG_PATH="$STATE/kubeconfig"
PKI="$STATE/pki"
CONTAINERD_SOCK="$STATE/containerd/containerd.sock"

t0=$SECONDS
log() { printf '[local-cluster %4ds] %s\n' "$((SECONDS - t0))" "$*" >&2; }
# shellcheck source=lib/daemons.sh
source "$HERE/lib/daemons.sh"
DIE_LOG_LINES=4

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

# ------------------------------------------------------------------------------------------------ PKI
# One CA; serving certificates for the API server and the kubelet; client certificates for the admin (also used
# by the controllers, as kwokctl and kind's single-node setups do) and for the node (system:node:<name>, so the
# Node authorizer applies); a service-account signing key.
cert() { # cert NAME SUBJECT EXTENSIONS
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%b\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
gen_pki() {
  [[ -f "$PKI/.complete" ]] && return 0
  mkdir -p "$PKI" && chmod 700 "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=stateful-flask-local-ca" -keyout ca.key -out ca.crt 2>/dev/null
    local server='extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment'
    local client='extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment'
    cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:$NODE_IP,IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n$server"
    cert kubelet-server "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME\n$server"
    cert admin "/O=system:masters/CN=local-cluster-admin" "$client"
    cert node "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ca.srl
  )
  touch "$PKI/.complete"
}

# The backup store's CA, its certificate (for the Service's names; pgBackRest 2.45 matches no IP addresses) and its
# root key, kept beside the volumes with the store's data, so backups and the means to read them outlive the
# cluster as the volumes do.
gen_backup_store() {
  mkdir -p "$BACKUP_STORE/data/$BACKUP_BUCKET"
  chown -R 65532:65532 "$BACKUP_STORE/data"
  [[ -f "$BACKUP_STORE/.complete" ]] && return 0
  (
    cd "$BACKUP_STORE"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=stateful-flask-local-backup-store-ca" -keyout ca.key -out ca.crt 2>/dev/null
    cert tls "/CN=s3.backup-store.svc.cluster.local" \
      'subjectAltName=DNS:s3.backup-store.svc.cluster.local,DNS:s3.backup-store.svc\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment'
    rm -f ca.srl
    # No trailing newline: the Secret made from these files gives versitygw its root key verbatim (and the stack
    # reads them as its backup key, scripts/local/driver.ts).
    openssl rand -hex 10 | tr a-f A-F | tr -d '\n' >access-key
    openssl rand -hex 20 | tr -d '\n' >secret-key
    chmod 644 ca.crt
  )
  touch "$BACKUP_STORE/.complete"
}

kubeconfig_for() { # kubeconfig_for FILE CERT
  local kc="$1"
  rm -f "$kc"
  "$BIN/kubectl" config --kubeconfig "$kc" set-cluster local --server "https://$NODE_IP:$APISERVER_PORT" \
    --certificate-authority "$PKI/ca.crt" --embed-certs >/dev/null
  "$BIN/kubectl" config --kubeconfig "$kc" set-credentials "$2" --client-certificate "$PKI/$2.crt" \
    --client-key "$PKI/$2.key" --embed-certs >/dev/null
  "$BIN/kubectl" config --kubeconfig "$kc" set-context local --cluster local --user "$2" >/dev/null
  "$BIN/kubectl" config --kubeconfig "$kc" use-context local >/dev/null
  chmod 600 "$kc"
}

# ------------------------------------------------------------------------------------------------ config
write_configs() {
  mkdir -p "$STATE"/{cni/net.d,cni/ipam,containerd,kubelet,pod-logs,volume-plugins,pids,logs}
  # containerd 1.6 (Debian). restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, so runc cannot raise the
  # pause container's oom_score_adj and every sandbox fails without it. Everything it writes stays in $STATE.
  cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$STATE/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "stateful-flask.local/pause:3.10"
  restrict_oom_score_adj = true
  enable_unprivileged_ports = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF
  cat >"$STATE/cni/net.d/10-stateful-flask.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "stateful-flask",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NODE_POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$STATE/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # Pods resolve through CoreDNS; CoreDNS forwards what is not cluster.local to the host's resolvers.
  grep -E '^(nameserver|search|options)' /etc/resolv.conf >"$STATE/resolv.conf" || echo "nameserver 127.0.0.1" >"$STATE/resolv.conf"
  # cgroup v1 with cgroupfs: what this VM has (docs/local-cluster.md). Image GC is off: images are imported,
  # never pulled, so a collected one could not come back. Eviction thresholds are low: a disk at 85% must not
  # evict the database.
  cat >"$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $STATE/resolv.conf
podLogsDir: $STATE/pod-logs
volumePluginDir: $STATE/volume-plugins
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
maxPods: 110
rotateCertificates: false
serverTLSBootstrap: false
shutdownGracePeriod: 0s
EOF
  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KUBECONFIG_PATH}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the host's conntrack settings alone (kube-proxy would otherwise write them).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

args_for() {
  case "$1" in
    etcd) echo "--name=local --data-dir=$STATE/etcd \
      --listen-client-urls=http://127.0.0.1:$ETCD_PORT --advertise-client-urls=http://127.0.0.1:$ETCD_PORT \
      --listen-peer-urls=http://127.0.0.1:$ETCD_PEER_PORT --initial-advertise-peer-urls=http://127.0.0.1:$ETCD_PEER_PORT \
      --initial-cluster=local=http://127.0.0.1:$ETCD_PEER_PORT --listen-metrics-urls= \
      --auto-compaction-retention=1 --quota-backend-bytes=2147483648 --log-level=warn" ;;
    # Bound to the node address, which pods reach through the `kubernetes` Service (the endpoint reconciler
    # publishes it).
    kube-apiserver) echo "--etcd-servers=http://127.0.0.1:$ETCD_PORT \
      --bind-address=$NODE_IP --advertise-address=$NODE_IP --secure-port=$APISERVER_PORT \
      --tls-cert-file=$PKI/apiserver.crt --tls-private-key-file=$PKI/apiserver.key --client-ca-file=$PKI/ca.crt \
      --kubelet-client-certificate=$PKI/admin.crt --kubelet-client-key=$PKI/admin.key \
      --kubelet-certificate-authority=$PKI/ca.crt --kubelet-preferred-address-types=InternalIP,Hostname \
      --service-account-key-file=$PKI/sa.pub --service-account-signing-key-file=$PKI/sa.key \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-cluster-ip-range=$SERVICE_CIDR --authorization-mode=Node,RBAC --allow-privileged=true \
      --profiling=false --cert-dir=$STATE/apiserver-certs" ;;
    containerd) echo "--config $STATE/containerd/config.toml --log-level warn" ;;
    kube-controller-manager) echo "--kubeconfig=$KUBECONFIG_PATH \
      --authentication-kubeconfig=$KUBECONFIG_PATH --authorization-kubeconfig=$KUBECONFIG_PATH \
      --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
      --root-ca-file=$PKI/ca.crt --service-account-private-key-file=$PKI/sa.key --use-service-account-credentials=true \
      --service-cluster-ip-range=$SERVICE_CIDR --cluster-cidr=$POD_CIDR --profiling=false \
      --cert-dir=$STATE/controller-manager-certs" ;;
    kube-scheduler) echo "--kubeconfig=$KUBECONFIG_PATH \
      --authentication-kubeconfig=$KUBECONFIG_PATH --authorization-kubeconfig=$KUBECONFIG_PATH \
      --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false" ;;
    kubelet) echo "--config=$STATE/kubelet/config.yaml --kubeconfig=$STATE/node.kubeconfig \
      --root-dir=$STATE/kubelet/root --cert-dir=$STATE/kubelet/pki \
      --hostname-override=$NODE_NAME --node-ip=$NODE_IP" ;;
    kube-proxy) echo "--config=$STATE/kube-proxy.yaml" ;;
    provisioner) echo "$STATE $VOLUMES $PROVISIONER $NODE_NAME" ;;
  esac
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

# ------------------------------------------------------------------------------------------------ host
host_setup() {
  printf 'STATE=%q\nVOLUMES=%q\n' "$STATE" "$VOLUMES" >"$MARKER"
  if ! ip -4 addr show dev lo | grep -q " $NODE_IP/32"; then
    ip addr add "$NODE_IP/32" dev lo
  fi
  if [[ ! -f "$STATE/sysctl.saved" ]]; then
    printf 'net.ipv4.ip_forward=%s\nnet.bridge.bridge-nf-call-iptables=%s\n' \
      "$(sysctl -n net.ipv4.ip_forward)" "$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || echo 0)" >"$STATE/sysctl.saved"
  fi
  sysctl -qw net.ipv4.ip_forward=1
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] ||
    die "br_netfilter is not loaded (no /proc/sys/net/bridge); Services cannot reach pods on the bridge without it"
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
}

# ------------------------------------------------------------------------------------------------ start
node_ready() { [[ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]; }
deployment_ready() { [[ "$(kubectl -n "$1" get deploy "$2" -o jsonpath='{.status.readyReplicas}')" == 1 ]]; } # NAMESPACE NAME

start() {
  resolve_bin
  [[ "$(id -u)" == 0 ]] || die "the local cluster needs root (containerd, mounts, iptables)"
  mkdir -p "$STATE/pids" "$STATE/logs" "$VOLUMES"
  if running kube-apiserver && running kubelet && node_ready 2>/dev/null; then
    log "already running"
    echo "export KUBECONFIG=$KUBECONFIG_PATH"
    return 0
  fi
  gen_pki
  write_configs
  kubeconfig_for "$KUBECONFIG_PATH" admin
  kubeconfig_for "$STATE/node.kubeconfig" node
  host_setup

  start_component etcd
  wait_for "etcd healthy" 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
  start_component kube-apiserver
  start_component containerd
  wait_for "kube-apiserver ready" 120 kubectl get --raw /readyz
  wait_for "containerd answering" 60 ctr --address "$CONTAINERD_SOCK" version
  # The sandbox image must be there before the kubelet creates the first pod; CoreDNS's and Traefik's too.
  bash "$HERE/images.sh" import --address "$CONTAINERD_SOCK" pause coredns traefik versitygw >&2 ||
    die "could not import the pause, coredns, traefik and versitygw images"
  start_component kube-controller-manager
  start_component kube-scheduler
  start_component kubelet
  start_component kube-proxy
  wait_for "node $NODE_NAME Ready" 180 node_ready
  kubectl apply --server-side --force-conflicts --field-manager=local-cluster -f "$HERE/local-cluster/storage.yaml" >/dev/null
  sed -e "s/__DNS_IP__/$DNS_IP/g" "$HERE/local-cluster/coredns.yaml" |
    kubectl apply --server-side --force-conflicts --field-manager=local-cluster -f - >/dev/null
  sed -e "s/__INGRESS_IP__/$INGRESS_IP/g" "$HERE/local-cluster/traefik.yaml" |
    kubectl apply --server-side --force-conflicts --field-manager=local-cluster -f - >/dev/null
  gen_backup_store
  sed -e "s|__DATA_DIR__|$BACKUP_STORE/data|g" "$HERE/local-cluster/backup-store.yaml" |
    kubectl apply --server-side --force-conflicts --field-manager=local-cluster -f - >/dev/null
  kubectl -n backup-store create secret generic versitygw --from-file=access-key="$BACKUP_STORE/access-key" \
    --from-file=secret-key="$BACKUP_STORE/secret-key" --from-file=tls.crt="$BACKUP_STORE/tls.crt" \
    --from-file=tls.key="$BACKUP_STORE/tls.key" --dry-run=client -o yaml |
    kubectl apply --server-side --force-conflicts --field-manager=local-cluster -f - >/dev/null
  start_component provisioner
  wait_for "CoreDNS Ready" 180 deployment_ready kube-system coredns
  wait_for "Traefik Ready (ingress class traefik at $INGRESS_IP)" 180 deployment_ready traefik traefik
  wait_for "the backup store Ready (https://s3.backup-store.svc.cluster.local, bucket $BACKUP_BUCKET)" 180 deployment_ready backup-store versitygw
  log "cluster ready in $((SECONDS - t0))s (node $NODE_NAME at $NODE_IP, API https://$NODE_IP:$APISERVER_PORT)"
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
}

# Restart the node's runtime processes only; running containers survive (their shims are not children).
restart_node() {
  resolve_bin
  stop_component kubelet 30
  stop_component containerd 30
  start_component containerd
  wait_for "containerd answering" 60 ctr --address "$CONTAINERD_SOCK" version
  start_component kubelet
  wait_for "node $NODE_NAME Ready" 180 node_ready
}

# ------------------------------------------------------------------------------------------------ stop
our_mounts() { findmnt -rn -o TARGET | grep -E "^($STATE|$VOLUMES)(/|$)" | sort -r || true; }
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
our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-' || true; }
our_chains() {
  local t
  for t in filter nat mangle; do
    iptables -t "$t" -S 2>/dev/null | awk -v t="$t" '$1 == "-N" && ($2 ~ /^(KUBE-|CNI-)/) {print t, $2}'
  done
}

remove_chains() {
  local t chain
  for t in filter nat mangle; do
    # Jumps into the chains first (from any chain), then the chains.
    # `iptables -S` quotes as a shell does (the bridge plugin's jumps carry a comment with quotes and spaces), so
    # the rule is re-read by the shell rather than split on spaces.
    { iptables -t "$t" -S 2>/dev/null | grep -E -- '^-A .*-j (KUBE-|CNI-)' || true; } | while IFS= read -r rule; do
      eval "iptables -t \"\$t\" -D ${rule#-A }" 2>/dev/null || log "could not delete the $t rule: $rule"
    done
    for chain in $(iptables -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ {print $2}'); do
      iptables -t "$t" -F "$chain" 2>/dev/null || true
    done
    for chain in $(iptables -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ {print $2}'); do
      iptables -t "$t" -X "$chain" 2>/dev/null || true
    done
  done
}

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

  local m ns
  for m in $(our_mounts); do umount -l "$m" 2>/dev/null || true; done
  for ns in $(our_netns); do ip netns delete "$ns" 2>/dev/null || true; done
  remove_chains
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
  ip addr del "$NODE_IP/32" dev lo 2>/dev/null || true
  if [[ -f "$STATE/sysctl.saved" ]]; then
    sysctl -q -p "$STATE/sysctl.saved" >/dev/null 2>&1 || true
  fi
  find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
  rm -rf "$STATE"
  if [[ -f "$MARKER" ]] && [[ "$(marker_value STATE)" == "$STATE" ]]; then rm -f "$MARKER"; fi
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

marker_value() { # marker_value KEY: the value the running (or last) cluster recorded
  [[ -f "$MARKER" ]] || return 0
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

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  check-clean) check_clean ;;
  reclaim) reclaim ;;
  restart-node) restart_node ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_PATH" ;;
  *) echo "usage: $0 start|stop|status|check-clean|reclaim|restart-node|env" >&2; exit 2 ;;
esac
