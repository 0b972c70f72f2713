#!/usr/bin/env bash
# Installs the Debian packages tests/app/tasks-api.spec.ts runs: the Flask stack at the versions app/requirements.txt
# pins (Debian bookworm's) and the PostgreSQL 15 server it migrates. Idempotent: prints nothing when all are
# installed; apt's output is shown only if the install fails.
set -euo pipefail

packages=(python3-flask python3-flask-sqlalchemy python3-flask-migrate python3-psycopg2 gunicorn python3-setuptools postgresql-15)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]}; as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "installing ${missing[*]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "apt-get failed to install: ${missing[*]}" >&2
    exit 1
fi
