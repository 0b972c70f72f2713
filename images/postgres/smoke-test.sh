#!/usr/bin/env bash
# Smoke test of a built Postgres image, run by .github/workflows/images.yml before the push; by hand it needs a
# Docker engine and the image in it:
#
#   images/postgres/smoke-test.sh registry.digitalocean.com/drexii/stateful-flask-postgres:15.20-1
#
# The entrypoint needs a Kubernetes API (Patroni's consensus store), so the cluster itself cannot start here.
# What can be checked outside Kubernetes: PostgreSQL, Patroni and pgBackRest are the versions packages.txt (next
# to this file) pins, the image runs as uid 999, and the entrypoint, given no pod environment, exits non-zero
# naming the first missing variable instead of starting anything.
set -euo pipefail

IMAGE="${1:?usage: $0 IMAGE}"
PACKAGES="$(dirname "$0")/packages.txt"

log() { printf '[smoke postgres] %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "$IMAGE is not in the local Docker image store"

# The upstream version of a pinned package: postgresql-15=15.20-0+deb12u1 -> 15.20.
pinned() {
  local v
  v="$(sed -n "s/^$1=//p" "$PACKAGES")"
  [[ -n "$v" ]] || fail "$PACKAGES pins no $1"
  v="${v#*:}"
  echo "${v%-*}"
}

# --pull never: test the image that was just built, never a registry copy under the same tag.
run() { docker run --rm --pull never "$@"; }

# expect_version WHAT EXPECTED COMMAND...: the first line COMMAND prints must carry EXPECTED as a whole word.
expect_version() {
  local what="$1" expected="$2" out
  shift 2
  out="$(run --entrypoint "$1" "$IMAGE" "${@:2}" 2>&1)" || fail "$* failed in the image: $out"
  out="$(head -n1 <<<"$out")"
  grep -qE "(^|[^0-9.])${expected//./\\.}([^0-9.]|$)" <<<"$out" ||
    fail "$what: '$*' printed '$out', expected version $expected (packages.txt)"
  log "$what: $out"
}

postgresql_version="$(pinned postgresql-15)"
patroni_version="$(pinned patroni)"
pgbackrest_version="$(pinned pgbackrest)"
expect_version PostgreSQL "$postgresql_version" postgres --version
expect_version Patroni "$patroni_version" patroni --version
expect_version pgBackRest "$pgbackrest_version" pgbackrest version

uid="$(run --entrypoint id "$IMAGE" -u)"
[[ "$uid" == 999 ]] || fail "the image runs as uid $uid, expected 999 (the owner of volumes the official image initialised)"
log "runs as uid $uid"

# No pod environment (POD_NAME, PGDATA, passwords, ...): the entrypoint must refuse before touching anything.
# Named, so that a container left running when timeout kills the client is removed too.
name="smoke-postgres-$$"
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
status=0
out="$(timeout 120 docker run --rm --pull never --name "$name" "$IMAGE" 2>&1)" || status=$?
[[ "$status" != 0 ]] || fail "the entrypoint exited 0 with an empty environment; output: $out"
((status != 124)) || fail "the entrypoint was still running after 120s with an empty environment; output: $out"
line="$(grep -E 'FATAL: [A-Z_]+ is required' <<<"$out" | head -n1)" ||
  fail "the entrypoint exited $status with an empty environment but named no missing variable; output: $out"
log "entrypoint with an empty environment exited $status: $line"
log "PASS $IMAGE"
