#!/usr/bin/env bash
# Installs the Debian packages the real local cluster (scripts/local-cluster.sh) and the image builder
# (scripts/images.sh) run: containerd and runc, the CNI plugins, iptables and conntrack (kube-proxy), jq (the
# provisioner), socat (local:up's forwarder to the API), buildah (builds the Dockerfiles; without recommends: chroot
# isolation and the kernel's overlay need neither crun nor fuse-overlayfs), debootstrap (the images' Debian base),
# gcc with static libc (the pause binary). Idempotent; quiet when everything is present; needs root.
set -euo pipefail
packages=(containerd runc containernetworking-plugins iptables conntrack jq buildah debootstrap gcc libc6-dev openssl curl socat)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
[ "$(id -u)" -eq 0 ] || { echo "missing Debian packages: ${missing[*]}; as root: apt-get update && apt-get install -y ${missing[*]}" >&2; exit 1; }
echo "installing ${missing[*]}" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "apt-get failed to install: ${missing[*]}" >&2
  exit 1
fi
