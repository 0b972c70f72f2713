#!/usr/bin/env bash
# Builds the toolchain (Pulumi CLI, provider plugins, control plane, node, CoreDNS, versitygw) from Go modules only,
# into a cache outside the work tree keyed by version. Components already present are reused.
#
#   scripts/toolchain.sh [build] [COMPONENT...]   build the missing components (default: all), print the bin dir;
#                                                 fails only if a required component fails
#   scripts/toolchain.sh status                   list what is cached, print the bin dir
#   scripts/toolchain.sh bin [COMPONENT...]       print only the bin dir; exit 1 if a named component (default:
#                                                 any required one) is missing
#
# Build logs: <cache>/<component>-<version>/build.log. Builds are slow on 2 cores: 24 minutes for everything from
# empty Go module and build caches (measured 2026-12-01, about 7 GB of modules downloaded, 13 GB of build cache);
# they run under `nice` with -p 2 and print a line a minute.
#
# Components (all required): etcd kube (the API the Patroni tests and the cluster run on), versitygw (the backup
# tests' S3 server), node coredns traefik (the real single-node cluster), pulumi kubernetes policy-nodejs (the real
# engine).
# Blocked, tried and reported: random language-nodejs.
# Every pinned version below can be overridden from the environment (e.g. K8S_VERSION=v1.36.1).
# shellcheck disable=SC2317 # the build_* functions are called indirectly, by name
set -euo pipefail

CACHE="${TOOLCHAIN_CACHE:-$HOME/.cache/stateful-flask-toolchain}"
BIN="$CACHE/bin"

PULUMI_VERSION="${PULUMI_VERSION:-v3.259.0}"
# github.com/pulumi/pulumi tag pkg/v3.259.0 (commit a05d88f24d05, 2026-08-20T08:44:10Z); the language host
# module is untagged, so it is addressed by this commit's pseudo-version.
PULUMI_LANGUAGE_NODEJS_VERSION="${PULUMI_LANGUAGE_NODEJS_VERSION:-v3.0.0-20260820084410-a05d88f24d05}"
# The provider modules are untagged, so they are addressed by pseudo-versions. package.json has
# @pulumi/kubernetes 4.34.2, but the proxy here refuses every later pseudo-version tried (v4.31, v4.32, master
# of 2026-07-01; the 4.34.2 commit could not even be resolved); the newest it serves that we found is the commit
# tagged v4.25.0 (f47bc2d6f199; pinned by crd2pulumi v1.6.1), so that
# is what gets built, and it reports itself as 4.25.0. See docs/e2e.md.
KUBERNETES_PROVIDER_VERSION="${KUBERNETES_PROVIDER_VERSION:-4.25.0}"
KUBERNETES_PROVIDER_MODULE_VERSION="${KUBERNETES_PROVIDER_MODULE_VERSION:-v4.0.0-20260115033456-f47bc2d6f199}"
RANDOM_PROVIDER_VERSION="${RANDOM_PROVIDER_VERSION:-4.21.2}"
# Commit b62f810278b9 (2026-09-17T11:22:58Z) carries the tags v4.21.2 and sdk/v4.21.2. The proxy refuses it.
RANDOM_PROVIDER_MODULE_VERSION="${RANDOM_PROVIDER_MODULE_VERSION:-v4.0.0-20260917112258-b62f810278b9}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
K8S_VERSION="${K8S_VERSION:-v1.36.3}"
# CoreDNS and versitygw are tagged modules that build with plain `go build` (no replace directives).
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"
VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
# Traefik, the local cluster's ingress controller. 3.6.12, not 3.7.x (what the dev stack's chart runs): every 3.7
# release replaces github.com/traefik/traefik/dynamic/ext with ./pkg/config/dynamic/ext, a nested module that is
# neither in the module zip nor served by the proxy (403 "This module version is not available"). The Ingress API
# the program uses is the same in both.
TRAEFIK_VERSION="${TRAEFIK_VERSION:-v3.6.12}"

# REQUIRED: what the e2e suite needs. BLOCKED: refused by the proxy here; tried on every build (one request
# each) and reported, but their absence is not a failure.
# Build order: what `npm test` needs first (etcd, kube, versitygw), then the cluster's node, then the engine.
REQUIRED_COMPONENTS=(etcd kube versitygw node coredns pulumi kubernetes policy-nodejs traefik)
BLOCKED_COMPONENTS=(random language-nodejs)
ALL_COMPONENTS=("${REQUIRED_COMPONENTS[@]}" "${BLOCKED_COMPONENTS[@]}")

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}" GOMAXPROCS="${GOMAXPROCS:-2}"
GO_BUILD=(nice -n 10 go build -p "${GO_BUILD_PARALLELISM:-2}" -trimpath)

log() { printf '[toolchain] %s\n' "$*" >&2; }

# The cache directory of a component, keyed by its version.
component_dir() {
  case "$1" in
    pulumi) echo "$CACHE/pulumi-$PULUMI_VERSION" ;;
    language-nodejs) echo "$CACHE/pulumi-language-nodejs-$PULUMI_LANGUAGE_NODEJS_VERSION" ;;
    policy-nodejs) echo "$CACHE/pulumi-analyzer-policy-nodejs-1" ;;
    kubernetes) echo "$CACHE/pulumi-resource-kubernetes-v$KUBERNETES_PROVIDER_VERSION" ;;
    random) echo "$CACHE/pulumi-resource-random-v$RANDOM_PROVIDER_VERSION" ;;
    etcd) echo "$CACHE/etcd-$ETCD_VERSION" ;;
    kube) echo "$CACHE/kubernetes-$K8S_VERSION" ;;
    node) echo "$CACHE/kubernetes-node-$K8S_VERSION" ;;
    coredns) echo "$CACHE/coredns-$COREDNS_VERSION" ;;
    versitygw) echo "$CACHE/versitygw-$VERSITYGW_VERSION" ;;
    traefik) echo "$CACHE/traefik-$TRAEFIK_VERSION" ;;
    *) echo "unknown component: $1 (known: ${ALL_COMPONENTS[*]})" >&2; return 1 ;;
  esac
}

# Copies the replace directives of an upstream go.mod that point at other module versions (not at local
# paths, which only work inside that repository) into the wrapper's go.mod.
copy_remote_replaces() {
  local upstream_mod="$1" wrapper_mod="$2"
  awk '
    /^replace \($/ { inblock = 1; next }
    inblock && /^\)$/ { inblock = 0; next }
    inblock { line = $0 }
    !inblock && /^replace / { line = substr($0, 9) }
    line != "" {
      n = split(line, f, "=>"); rhs = f[2]; gsub(/^[ \t]+|[ \t]+$/, "", rhs)
      if (rhs !~ /^\.{1,2}\// && rhs ~ / /) print "replace " line
      line = ""
    }
  ' "$upstream_mod" >>"$wrapper_mod"
}

# Path of a module version's go.mod in the module cache (downloads it if needed).
module_gomod() { go mod download -json "$1" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p'; }
module_dir() { go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'; }
module_time() { (cd / && go list -m -json "$1") | sed -n 's/^\t"Time": "\(.*\)",$/\1/p'; }

# new_wrapper DIR MODULE_NAME GO_VERSION: an empty wrapper module in DIR/src.
new_wrapper() {
  local dir="$1"
  rm -rf "$dir/src" && mkdir -p "$dir/src" "$dir/bin"
  printf 'module %s\n\ngo %s\n' "$2" "$3" >"$dir/src/go.mod"
}

go_version_of() { sed -n 's/^go \([0-9.]*\)$/\1/p' "$1"; }

# ---------------------------------------------------------------------------------------------- builders
build_pulumi() {
  local dir="$1" mod="github.com/pulumi/pulumi/pkg/v3"
  local upstream; upstream="$(module_gomod "$mod@$PULUMI_VERSION")"
  new_wrapper "$dir" stateful-flask-toolchain/pulumi "$(go_version_of "$upstream")"
  copy_remote_replaces "$upstream" "$dir/src/go.mod"
  (cd "$dir/src" &&
    go mod edit -require="$mod@$PULUMI_VERSION" -require="github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
      -tool="$mod/cmd/pulumi" &&
    go mod tidy &&
    "${GO_BUILD[@]}" -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
      -o "$dir/bin/pulumi" "$mod/cmd/pulumi")
}

# pulumi-resource-kubernetes. Its main.go embeds schema-embed.json and terraform-mapping-embed.json,
# which are generated at release time and absent from the module zip, so the wrapper carries main.go plus
# those files made from the module's schema.json and terraform-mapping.json.
build_kubernetes() {
  local dir="$1" mod="github.com/pulumi/pulumi-kubernetes/provider/v4"
  # sum.golang.org as reached from here has no record of this pseudo-version (404); the module itself is
  # taken unverified, its dependencies are checked against the module's own go.sum.
  export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/pulumi/pulumi-kubernetes"
  local upstream src; upstream="$(module_gomod "$mod@$KUBERNETES_PROVIDER_MODULE_VERSION")"
  src="$(module_dir "$mod@$KUBERNETES_PROVIDER_MODULE_VERSION")"
  new_wrapper "$dir" stateful-flask-toolchain/pulumi-resource-kubernetes "$(go_version_of "$upstream")"
  copy_remote_replaces "$upstream" "$dir/src/go.mod"
  cp "$src/go.sum" "$dir/src/go.sum" && chmod u+w "$dir/src/go.sum"
  local cmd="$dir/src/cmd/pulumi-resource-kubernetes" f
  mkdir -p "$cmd"
  cp "$src/cmd/pulumi-resource-kubernetes/main.go" "$cmd/"
  cp "$src/cmd/pulumi-resource-kubernetes/schema.json" "$cmd/schema-embed.json"
  cp "$src/cmd/pulumi-resource-kubernetes/terraform-mapping.json" "$cmd/terraform-mapping-embed.json"
  # Newer provider versions also embed helm-mapping.json, which the module does ship.
  f="$src/cmd/pulumi-resource-kubernetes/helm-mapping.json"
  [[ ! -f "$f" ]] || cp "$f" "$cmd/"
  chmod -R u+w "$cmd"
  (cd "$dir/src" &&
    go mod edit -require="$mod@$KUBERNETES_PROVIDER_MODULE_VERSION" &&
    go mod tidy &&
    "${GO_BUILD[@]}" -ldflags "-s -w -X $mod/pkg/version.Version=$KUBERNETES_PROVIDER_VERSION" \
      -o "$dir/bin/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes)
}

# The Node.js language host is untagged and the proxy refuses its pseudo-versions (see docs/e2e.md). The CLI
# starts programs inline through the Automation API without it, but it also needs it to start a Node.js policy
# pack. Without a nodejs language plugin the CLI falls back to an analyzer plugin named
# pulumi-analyzer-policy-nodejs, run in the pack's directory as `<engine address> . [-option=value...]`;
# this is that plugin: it runs the pack with the run-policy-pack entry point of the pack's own @pulumi/pulumi.
build_policy_nodejs() {
  local dir="$1" plugin="$1/bin/pulumi-analyzer-policy-nodejs"
  mkdir -p "$dir/bin"
  cat >"$plugin" <<'SHIM'
#!/bin/sh
# Started by the Pulumi CLI in the policy pack directory: pulumi-analyzer-policy-nodejs ENGINE_ADDRESS PACK_DIR
entry=./node_modules/@pulumi/pulumi/cmd/run-policy-pack
if [ ! -d "$entry" ]; then
  echo "pulumi-analyzer-policy-nodejs: $PWD/$entry not found; run npm ci in the policy pack" >&2
  exit 1
fi
exec node "$entry" "$1" "$2"
SHIM
  chmod +x "$plugin"
}

# pulumi-resource-random is a bridged Terraform provider: besides embedded schema-embed.json and
# bridge-metadata.json, its go.mod replaces github.com/terraform-providers/terraform-provider-random/shim with
# ./shim, a separate module that no proxy serves, so a wrapper would also have to provide that shim. The proxy
# refuses the provider module itself, so this only reports that.
build_random() {
  local dir="$1" mod="github.com/pulumi/pulumi-random/provider/v4"
  go mod download -json "$mod@$RANDOM_PROVIDER_MODULE_VERSION" >"$dir/download.json" 2>&1 || {
    cat "$dir/download.json"
    return 1
  }
  echo "served; building it is not implemented (the proxy refused it when this script was written)"
  return 1
}

build_language_nodejs() {
  local dir="$1" mod="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
  go mod download -json "$mod@$PULUMI_LANGUAGE_NODEJS_VERSION" >"$dir/download.json" 2>&1 || {
    cat "$dir/download.json"
    return 1
  }
  echo "served; building it is not implemented (the proxy refused it when this script was written)"
  return 1
}

# A tool whose module is tagged and builds from a wrapper with the upstream's non-local replaces:
#   build_go_tool DIR NAME MODULE VERSION PACKAGE BINARY [LDFLAGS]
build_go_tool() {
  local dir="$1" name="$2" mod="$3" version="$4" pkg="$5" binary="$6" ldflags="${7:-}"
  local upstream; upstream="$(module_gomod "$mod@$version")"
  new_wrapper "$dir" "stateful-flask-toolchain/$name" "$(go_version_of "$upstream")"
  copy_remote_replaces "$upstream" "$dir/src/go.mod"
  (cd "$dir/src" &&
    go mod edit -require="$mod@$version" -tool="$pkg" &&
    go mod tidy &&
    "${GO_BUILD[@]}" -ldflags "-s -w $ldflags" -o "$dir/bin/$binary" "$pkg")
}

build_etcd() { build_go_tool "$1" etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3 etcd; }

# Commands of k8s.io/kubernetes. Its go.mod replaces the staging modules (k8s.io/api, k8s.io/client-go, ...)
# with ./staging/src/...; the wrapper points each of those that it requires at the published v0.N.M instead.
build_k8s_cmds() {
  local dir="$1" name="$2"; shift 2
  local mod="k8s.io/kubernetes" staging_version="v0.${K8S_VERSION#v1.}"
  local upstream; upstream="$(module_gomod "$mod@$K8S_VERSION")"
  new_wrapper "$dir" "stateful-flask-toolchain/$name" "$(go_version_of "$upstream")"
  copy_remote_replaces "$upstream" "$dir/src/go.mod"
  local required staged m
  required="$(awk '/^require \($/ {r = 1; next} r && /^\)$/ {r = 0} r {print $1}' "$upstream")"
  staged="$(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$upstream")"
  for m in $staged; do
    if grep -qxF "$m" <<<"$required"; then
      echo "replace $m => $m $staging_version" >>"$dir/src/go.mod"
    else
      echo "skipping $m: in upstream replace block but not required"
    fi
  done
  local cmds=("$@") tools=() c
  for c in "${cmds[@]}"; do tools+=(-tool="$mod/cmd/$c"); done
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w" key val
  # buildDate is the release's commit time, not now, so that rebuilds are byte-identical.
  for kv in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$minor" gitTreeState=clean \
    "buildDate=$(module_time "$mod@$K8S_VERSION")"; do
    key="${kv%%=*}" val="${kv#*=}"
    ldflags+=" -X k8s.io/client-go/pkg/version.$key=$val -X k8s.io/component-base/version.$key=$val"
  done
  (cd "$dir/src" &&
    go mod edit -require="$mod@$K8S_VERSION" "${tools[@]}" &&
    go mod tidy &&
    "${GO_BUILD[@]}" -ldflags "$ldflags" -o "$dir/bin/" "${cmds[@]/#/$mod/cmd/}")
}

# The control plane: kube-apiserver, kube-controller-manager, kube-scheduler and kubectl.
build_kube() { build_k8s_cmds "$1" kubernetes kube-apiserver kube-controller-manager kube-scheduler kubectl; }

# The node: kubelet and kube-proxy, at the control plane's version (same build cache, so cheap after kube).
# Pure Go like the rest: the kubelet's cgo parts (cadvisor's libpfm, SELinux) are optional.
build_node() { build_k8s_cmds "$1" kubernetes-node kubelet kube-proxy; }

# CoreDNS, the cluster DNS of the real single-node cluster (scripts/local-cluster.sh).
build_coredns() { build_go_tool "$1" coredns github.com/coredns/coredns "$COREDNS_VERSION" github.com/coredns/coredns coredns; }

# versitygw, the S3-compatible server the backup tests and the local stack's backups use (posix backend).
build_versitygw() {
  build_go_tool "$1" versitygw github.com/versity/versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw versitygw
}

# Traefik, the ingress controller of the real single-node cluster (scripts/local-cluster/traefik.yaml).
build_traefik() {
  build_go_tool "$1" traefik github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" github.com/traefik/traefik/v3/cmd/traefik traefik \
    "-X github.com/traefik/traefik/v3/pkg/version.Version=${TRAEFIK_VERSION#v}"
}

# ------------------------------------------------------------------------------------------------ driver
build_component() {
  local c="$1" dir; dir="$(component_dir "$c")"
  mkdir -p "$dir"
  # One builder per component: a second run (CI's background build beside a developer's, npm run setup beside
  # either) waits for the first to finish this component, then finds it built, instead of building it into the
  # same directory at the same time.
  local lock_fd
  exec {lock_fd}>"$dir/.build.lock"
  if ! flock -n "$lock_fd"; then
    log "waiting for another run of this script that is building $c"
    flock "$lock_fd"
  fi
  if [[ -f "$dir/bin/.complete" ]]; then
    log "found $c: $dir/bin ($(cat "$dir/bin/.complete"))"
    exec {lock_fd}>&-
    return 0
  fi
  log "building $c into $dir (log: $dir/build.log)"
  local start=$SECONDS heartbeat
  # A line a minute while it builds: some parts take several minutes on 2 cores.
  (while sleep 60; do log "still building $c ($((SECONDS - start))s; $(wc -l <"$dir/build.log" 2>/dev/null || echo 0) lines in build.log)"; done) &
  heartbeat=$!
  if "build_${c//-/_}" "$dir" >"$dir/build.log" 2>&1; then
    kill "$heartbeat" 2>/dev/null || true; wait "$heartbeat" 2>/dev/null || true
    local took=$((SECONDS - start))
    echo "built in ${took}s on $(date -u +%FT%TZ), $(nproc) cores" >"$dir/bin/.complete"
    log "built $c in ${took}s: $(find "$dir/bin" -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%f ')"
    exec {lock_fd}>&-
  else
    exec {lock_fd}>&-
    kill "$heartbeat" 2>/dev/null || true; wait "$heartbeat" 2>/dev/null || true
    log "could not build $c (after $((SECONDS - start))s); last lines of $dir/build.log:"
    tail -n 15 "$dir/build.log" >&2
    return 1
  fi
}

# Links every built component into $BIN; fails if one of the named components (default: the required ones)
# is missing.
link_bin() {
  mkdir -p "$BIN"
  local c dir f
  for c in "${ALL_COMPONENTS[@]}"; do
    dir="$(component_dir "$c")"
    [[ -f "$dir/bin/.complete" ]] || continue
    for f in "$dir"/bin/*; do ln -sfn "$f" "$BIN/$(basename "$f")"; done
  done
  for c in "${@:-${REQUIRED_COMPONENTS[@]}}"; do
    [[ -f "$(component_dir "$c")/bin/.complete" ]] || return 1
  done
}

status() {
  local c dir
  for c in "${ALL_COMPONENTS[@]}"; do
    dir="$(component_dir "$c")"
    if [[ -f "$dir/bin/.complete" ]]; then
      log "$c: $dir/bin ($(cat "$dir/bin/.complete"))"
    else
      log "$c: missing ($dir)"
    fi
  done
}

main() {
  local cmd="${1:-build}"
  case "$cmd" in
    bin)
      shift
      echo "$BIN"
      link_bin "$@" || { echo "toolchain incomplete (${*:-required components}); run scripts/toolchain.sh" >&2; exit 1; }
      ;;
    status) status; link_bin || true; echo "$BIN" ;;
    build | *)
      if [[ "$cmd" == build && $# -gt 0 ]]; then shift; fi
      local comps=("$@") failed=() blocked=() c
      ((${#comps[@]})) || comps=("${ALL_COMPONENTS[@]}")
      for c in "${comps[@]}"; do
        build_component "$c" && continue
        if [[ " ${BLOCKED_COMPONENTS[*]} " == *" $c "* ]]; then blocked+=("$c"); else failed+=("$c"); fi
      done
      link_bin || true
      ((${#blocked[@]} == 0)) || log "blocked (not served by the module proxy; see docs/e2e.md): ${blocked[*]}"
      ((${#failed[@]} == 0)) || log "FAILED: ${failed[*]}"
      echo "$BIN"
      ((${#failed[@]} == 0))
      ;;
  esac
}

# On one line so that a bash already running this file never reads past it if the file is edited.
main "$@"; exit
