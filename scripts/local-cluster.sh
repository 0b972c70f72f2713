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
#
# This file holds the settings and the commands; the work is in scripts/local-cluster/, one concern per file:
#   certs.sh      the CA, certificates, kubeconfigs, the backup store's CA and key
#   config.sh     the processes' config files and command lines
#   processes.sh  binaries, starting and stopping a component, `status`
#   host.sh       what the cluster changes on the host (address, sysctls, marker) and its removal
#   start.sh      `start`, `restart-node`
#   stop.sh       `stop`, `check-clean`
#   reclaim.sh    `reclaim`
# beside the add-ons it applies (storage.yaml, coredns.yaml, traefik.yaml, backup-store.yaml), the provisioner
# (provisioner.sh) and the add-ons' images (images/).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
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
# shellcheck source=local-cluster/certs.sh
source "$HERE/local-cluster/certs.sh"
# shellcheck source=local-cluster/config.sh
source "$HERE/local-cluster/config.sh"
# shellcheck source=local-cluster/processes.sh
source "$HERE/local-cluster/processes.sh"
# shellcheck source=local-cluster/host.sh
source "$HERE/local-cluster/host.sh"
# shellcheck source=local-cluster/start.sh
source "$HERE/local-cluster/start.sh"
# shellcheck source=local-cluster/stop.sh
source "$HERE/local-cluster/stop.sh"
# shellcheck source=local-cluster/reclaim.sh
source "$HERE/local-cluster/reclaim.sh"

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
