# shellcheck shell=bash
# What the cluster changes on the host (the node address on lo, sysctls, the marker) and how it is undone, with
# the traces its runtime leaves there (mounts, network namespaces, iptables chains, the bridge).
# Sourced by scripts/local-cluster.sh, whose settings (STATE, VOLUMES, NODE_IP, ...) and log/die it uses.

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

# Undoes host_setup and removes what the runtime left on the host: mounts, network namespaces, iptables chains,
# the bridge, the node address, the sysctls, the log links.
host_teardown() {
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
}

our_mounts() { findmnt -rn -o TARGET | grep -E "^($STATE|$VOLUMES)(/|$)" | sort -r || true; }
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
