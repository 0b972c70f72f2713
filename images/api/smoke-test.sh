#!/usr/bin/env bash
# Smoke test of a built API image, run by .github/workflows/images.yml before the push; by hand it needs a
# Docker engine and the image in it:
#
#   images/api/smoke-test.sh registry.digitalocean.com/drexii/stateful-flask:v1.0.0
#
# Checks that the image runs as uid 10001, starts on a read-only root filesystem as the Deployment runs it,
# answers GET /healthz with 200 {"status":"ok"} within HEALTH_TIMEOUT seconds (default 30), and stops cleanly on
# SIGTERM. No database: the API connects on the first request that needs one, not at startup.
set -euo pipefail

IMAGE="${1:?usage: $0 IMAGE}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-30}"

log() { printf '[smoke api] %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# --pull never: test the image that was just built, never a registry copy under the same tag.
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "$IMAGE is not in the local Docker image store"

user="$(docker image inspect -f '{{.Config.User}}' "$IMAGE")"
[[ "$user" == "10001:10001" ]] || fail "the image's USER is '$user', expected 10001:10001 (the Deployment's runAsUser)"
log "USER is $user"

container=""
cleanup() { [[ -z "$container" ]] || docker rm -f "$container" >/dev/null 2>&1 || true; }
trap cleanup EXIT
show_logs() { log "container logs:"; docker logs "$container" >&2 2>&1 || true; }

# A random host port, so a by-hand run does not collide with whatever already listens on 5000.
container="$(docker run -d --pull never --read-only --user 10001:10001 \
  -e DATABASE_URL=postgresql://smoke:smoke@127.0.0.1:5432/smoke \
  -p 127.0.0.1::5000 "$IMAGE")"
log "started container ${container:0:12}"
port="$(docker port "$container" 5000/tcp | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -n1)"
[[ -n "$port" ]] || { show_logs; fail "port 5000 of the container is not published on 127.0.0.1"; }

url="http://127.0.0.1:$port/healthz"
log "polling $url for up to ${HEALTH_TIMEOUT}s"
deadline=$((SECONDS + HEALTH_TIMEOUT))
body=""
until body="$(curl -fsS --max-time 2 "$url" 2>/dev/null)"; do
  if [[ "$(docker inspect -f '{{.State.Running}}' "$container")" != true ]]; then
    show_logs
    fail "the container exited with status $(docker inspect -f '{{.State.ExitCode}}' "$container") before answering $url"
  fi
  if ((SECONDS >= deadline)); then
    show_logs
    fail "$url did not answer 200 within ${HEALTH_TIMEOUT}s"
  fi
  sleep 1
done
[[ "$(tr -d '[:space:]' <<<"$body")" == '{"status":"ok"}' ]] || { show_logs; fail "$url answered 200 with '$body', expected {\"status\":\"ok\"}"; }
log "$url answered 200 $body"

# gunicorn must be PID 1 to get the kubelet's SIGTERM and drain; a shell in front of it would be killed after
# the grace period instead, with a non-zero status.
docker stop -t 25 "$container" >/dev/null
status="$(docker inspect -f '{{.State.ExitCode}}' "$container")"
[[ "$status" == 0 ]] || { show_logs; fail "the container exited with status $status on SIGTERM, expected 0"; }
log "stopped cleanly on SIGTERM"
log "PASS $IMAGE"
