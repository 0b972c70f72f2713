# shellcheck shell=bash
# `start` (everything, idempotent) and `restart-node` (containerd and the kubelet only).
# Sourced by scripts/local-cluster.sh, whose settings (STATE, VOLUMES, NODE_IP, ...) and log/die it uses.

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
  # shellcheck disable=SC2154 # t0: set by scripts/local-cluster.sh
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
