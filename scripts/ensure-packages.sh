#!/usr/bin/env bash
# Installs, on the test machine, exactly the Debian package versions the images pin (images/*/packages.txt), so
# that the tests run what the images ship. Quiet when every pin is installed; otherwise apt-get installs the
# pinned versions (upgrading or downgrading) and fails naming the pin it could not get. Needs root.
#
#   scripts/ensure-packages.sh images/postgres/packages.txt [more lists...]
set -euo pipefail
pins=()
for list in "$@"; do
  while read -r pin; do [[ -n "$pin" ]] && pins+=("$pin"); done < <(sed 's/#.*//; s/[[:space:]]//g' "$list")
done
missing=()
for pin in "${pins[@]}"; do
  name=${pin%%=*} want=${pin#*=}
  have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null | sed -n 's/^install ok installed //p' || true)
  [[ "$have" == "$want" ]] || missing+=("$pin")
done
if ((${#missing[@]} == 0)); then exit 0; fi
[[ "$(id -u)" == 0 ]] || { echo "ensure-packages: need root to install ${missing[*]}" >&2; exit 1; }
# No "main" cluster from the postgresql packages: the tests run their own data directories.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/no-main-cluster.conf
echo "ensure-packages: installing ${missing[*]}" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends --allow-downgrades "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-packages: apt-get could not install ${missing[*]}; the mirror may have dropped a pinned version (see docs/images.md, \"Bumping a pinned package\")" >&2
  exit 1
fi
# The server's default socket directory, created by the package only when a cluster is.
install -d -o postgres -g postgres -m 2775 /var/run/postgresql 2>/dev/null || true
