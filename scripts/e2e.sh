#!/usr/bin/env bash
# The end-to-end suite (tests/e2e, .mocharc.e2e.json): the real program with the real Pulumi engine against a
# loopback Kubernetes control plane the suite starts and stops itself (docs/e2e.md).
#
#   scripts/e2e.sh        build the toolchain if missing (scripts/toolchain.sh, ~45 min the first time), run the suite
#   scripts/e2e.sh ci     run the suite only if the cached toolchain is complete; otherwise print one line
#                         "e2e skipped: <reason>" and exit 0
#
# The suite's exit status is this script's. Extra arguments after the mode are passed to mocha.
set -uo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
[[ $# -gt 0 ]] && shift

if [[ "$mode" == ci ]]; then
  if ! scripts/toolchain.sh bin >/dev/null 2>&1; then
    missing=()
    for c in pulumi kubernetes policy-nodejs etcd kube kwok; do
      scripts/toolchain.sh bin "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    echo "e2e skipped: toolchain incomplete, missing ${missing[*]:-a required component} in ${TOOLCHAIN_CACHE:-$HOME/.cache/stateful-flask-toolchain} (build it with: bash scripts/toolchain.sh build ${missing[*]:-}; about 45 min on 2 cores for everything)"
    exit 0
  fi
  if [[ ! -d policy/node_modules/@pulumi/policy ]]; then
    echo "e2e skipped: policy/node_modules missing (run: npm --prefix policy ci)"
    exit 0
  fi
elif [[ -n "$mode" ]]; then
  echo "usage: $0 [ci]" >&2
  exit 2
else
  if ! scripts/toolchain.sh bin >/dev/null 2>&1; then
    echo "[e2e] toolchain missing: building it with scripts/toolchain.sh (about 45 minutes on 2 cores the first time)" >&2
    scripts/toolchain.sh build >/dev/null || { echo "[e2e] toolchain build failed" >&2; exit 1; }
  fi
fi

start=$SECONDS
npx mocha --config .mocharc.e2e.json "$@"
status=$?
echo "[e2e] wall time $((SECONDS - start))s" >&2
exit "$status"
