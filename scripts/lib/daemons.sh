# shellcheck shell=bash
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
# Alive, and still the program that was started (a PID file that outlived its process, across a machine restore or
# a kill -9 of the script, may name an unrelated process by now).
running() {
  local pid
  pid="$(pid_of "$1")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$1"
}
