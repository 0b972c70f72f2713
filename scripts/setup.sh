#!/usr/bin/env bash
# npm run setup: a supported Node (scripts/node.sh), the npm dependencies of the program and of the policy pack
# (npm ci, exactly the lock files), the Debian packages the tests run real servers from, and the parts of the
# Go-built toolchain that npm test runs (etcd and kube-apiserver as Patroni's consensus store, versitygw as the
# backups' S3 server; seconds when cached, a few minutes cold; the rest is built by local:up and the e2e suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/node.sh npm ci --no-audit --no-fund
bash scripts/node.sh npm --prefix policy ci --no-audit --no-fund
bash scripts/install-test-deps.sh
bash scripts/toolchain.sh build etcd kube versitygw >/dev/null
