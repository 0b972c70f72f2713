#!/usr/bin/env bash
# Lints .github/workflows/*.yml with actionlint: workflow syntax, expressions and their types, action inputs,
# runner labels, and shellcheck on every `run:` block. Exits with actionlint's status (0: no findings).
#
#   scripts/lint-workflows.sh
#
# actionlint is built from its Go module once, into the toolchain cache next to scripts/toolchain.sh's builds,
# keyed by version (ACTIONLINT_VERSION overrides the pin). Needs Go the first time only.
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION="${ACTIONLINT_VERSION:-v1.7.12}"
CACHE="${TOOLCHAIN_CACHE:-$HOME/.cache/stateful-flask-toolchain}"
DIR="$CACHE/actionlint-$ACTIONLINT_VERSION"
ACTIONLINT="$DIR/bin/actionlint"

log() { printf '[lint-workflows] %s\n' "$*" >&2; }

if [[ ! -x "$ACTIONLINT" ]]; then
  command -v go >/dev/null 2>&1 ||
    { log "actionlint $ACTIONLINT_VERSION is not in $DIR and there is no go on PATH to build it"; exit 1; }
  log "building actionlint $ACTIONLINT_VERSION into $DIR (once)"
  start=$SECONDS
  mkdir -p "$DIR"
  # Built beside the final path and renamed into place, so an interrupted build never leaves a binary that
  # looks finished.
  tmp="$(mktemp -d "$DIR/bin.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # -mod=mod: resolve actionlint's own go.mod, whatever GOFLAGS the machine sets.
  if ! GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 10 \
    go install -p 2 -trimpath -ldflags "-s -w" "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" \
    >"$DIR/build.log" 2>&1; then
    cat "$DIR/build.log" >&2
    log "building actionlint $ACTIONLINT_VERSION failed (log: $DIR/build.log)"
    exit 1
  fi
  rm -rf "${DIR:?}/bin"
  mv "$tmp" "$DIR/bin"
  log "actionlint $ACTIONLINT_VERSION built in $((SECONDS - start))s"
fi

# Without shellcheck on PATH actionlint silently skips the `run:` blocks, and a clean result would say nothing
# about the shell in them; so install Debian's shellcheck when we can, and say so loudly when we cannot.
if ! command -v shellcheck >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing shellcheck (Debian package) so that run: blocks are checked"
    installlog="$(mktemp)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck; } >"$installlog" 2>&1; then
      cat "$installlog" >&2
      rm -f "$installlog"
      log "apt-get could not install shellcheck"
      exit 1
    fi
    rm -f "$installlog"
  else
    log "WARNING: shellcheck is not on PATH (and this is not a root Debian machine to install it on): run: blocks are NOT checked"
  fi
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
((${#workflows[@]} > 0)) || { log "no workflows under .github/workflows"; exit 1; }
log "actionlint $ACTIONLINT_VERSION, shellcheck $(shellcheck --version 2>/dev/null | sed -n 's/^version: //p' || echo absent): ${workflows[*]}"
exec "$ACTIONLINT" "${workflows[@]}"
