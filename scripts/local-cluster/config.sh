# shellcheck shell=bash
# The files the cluster's processes read (containerd, CNI, kubelet, kube-proxy) and each process's command line.
# Sourced by scripts/local-cluster.sh, whose settings (STATE, VOLUMES, NODE_IP, ...) and log/die it uses.

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
