# Helpers shared by the scripts that run daemons in a state dir (scripts/local-cluster.sh, scripts/control-plane.sh).
# The sourcing script defines STATE (the state dir, with pids/ and logs/) and log().

# Logs the error, the last lines of every daemon's log, and exits 1.
die() {
  log "error: $*"
  local f
  for f in "$STATE"/logs/*.log; do
    [[ -f "$f" ]] || continue
    log "last lines of $f:"
    tail -n "${DIE_LOG_LINES:-5}" "$f" >&2
  done
  exit 1
}

pid_of() { cat "$STATE/pids/$1.pid" 2>/dev/null || true; }
running() { local pid; pid="$(pid_of "$1")"; [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }
