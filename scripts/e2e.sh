#!/usr/bin/env bash
# The end-to-end suite (tests/e2e, .mocharc.e2e.json): the real program with the real Pulumi engine on the real
# single-node cluster (scripts/local-cluster.sh) the suite starts and stops itself, with the project's images built
# here; every lifecycle step is checked on the rows (docs/e2e.md). Needs root and the node to itself.
#
#   scripts/e2e.sh [SPEC...]  build the toolchain if missing (scripts/toolchain.sh, ~24 min the first time), run the
#                             suite (or the named spec files)
#   scripts/e2e.sh ci     run the suite only if the cached toolchain is complete; otherwise print one line
#                         "e2e skipped: <reason>" and exit 0
#
# The suite's exit status is this script's. Extra arguments after the mode are passed to mocha.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

mode=
if [[ "${1:-}" == ci ]]; then
  mode=ci
  shift
fi

if [[ "$mode" == ci ]]; then
  if ! scripts/toolchain.sh bin >/dev/null 2>&1; then
    missing=()
    for c in etcd kube versitygw node coredns pulumi kubernetes policy-nodejs traefik; do
      scripts/toolchain.sh bin "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    echo "e2e skipped: toolchain incomplete, missing ${missing[*]:-a required component} in ${TOOLCHAIN_CACHE:-$HOME/.cache/stateful-flask-toolchain} (build it with: bash scripts/toolchain.sh build ${missing[*]:-}; about 24 min on 2 cores for everything)"
    exit 0
  fi
  if [[ ! -d policy/node_modules/@pulumi/policy ]]; then
    echo "e2e skipped: policy/node_modules missing (run: npm --prefix policy ci)"
    exit 0
  fi
else
  if ! scripts/toolchain.sh bin >/dev/null 2>&1; then
    echo "[e2e] toolchain missing: building it with scripts/toolchain.sh (about 24 minutes on 2 cores the first time)" >&2
    scripts/toolchain.sh build >/dev/null || { echo "[e2e] toolchain build failed" >&2; exit 1; }
  fi
fi

start=$SECONDS
bash scripts/install-cluster-deps.sh
# The spec files in order (01-deploy first: it makes the stack the others change), or the ones named.
specs=("$@")
((${#specs[@]})) || specs=(tests/e2e/*.spec.ts)
bash scripts/node.sh npx --no-install mocha --config .mocharc.e2e.json "${specs[@]}"
status=$?
echo "[e2e] wall time $((SECONDS - start))s" >&2
exit "$status"
