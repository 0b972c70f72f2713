#!/usr/bin/env bash
# The local stand-in for debian:<suite>-slim, which cannot be pulled here: `debootstrap --variant=minbase SUITE`
# from MIRROR, plus the configuration Debian's official images add (debuerreotype's minimizing-config, slimify and
# fixup: no service starts during a build, apt keeps no caches, no docs, man pages or locales), written as a tar
# (numeric owners, sorted) that scripts/images/build.ts commits into buildah's store as
# docker.io/library/debian:SUITE-slim.
#
#   scripts/images/debian-base.sh SUITE MIRROR OUT.tar [DEB_CACHE_DIR]
#
# DEB_CACHE_DIR keeps the downloaded .debs between runs (a warm base takes about 25 s instead of minutes).
# Needs root.
set -euo pipefail
suite="${1:?usage: $0 SUITE MIRROR OUT.tar [DEB_CACHE_DIR]}"
mirror="${2:?usage: $0 SUITE MIRROR OUT.tar [DEB_CACHE_DIR]}"
out="${3:?usage: $0 SUITE MIRROR OUT.tar [DEB_CACHE_DIR]}"
debs="${4:-}"

dir="$(mktemp -d "$out.rootfs.XXXXXX")"
trap 'rm -rf "$dir" "$out.tmp"' EXIT
if [[ -n "$debs" ]]; then mkdir -p "$debs"; fi
debootstrap --variant=minbase ${debs:+--cache-dir="$debs"} "$suite" "$dir" "$mirror"

# No service starts during a build (invoke-rc.d asks this first).
printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
chmod 0755 "$dir/usr/sbin/policy-rc.d"
echo force-unsafe-io >"$dir/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
# apt keeps no .deb and no *.bin caches (which differ on every run), fetches no translations.
clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<EOF
DPkg::Post-Invoke { $clean };
APT::Update::Post-Invoke { $clean };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"

# -slim: dpkg does not install docs, man pages or locales (copyright files stay), and those present go.
excludes=(/usr/share/doc/\* /usr/share/groff/\* /usr/share/info/\* /usr/share/linda/\* /usr/share/lintian/overrides/\*
  /usr/share/locale/\* /usr/share/man/\*)
includes=(/usr/share/doc/\*/copyright /usr/share/locale/all_languages /usr/share/locale/currency/\*
  /usr/share/locale/l10n/\* /usr/share/locale/languages /usr/share/locale/locale.alias)
{
  for p in "${excludes[@]}"; do echo "path-exclude $p"; done
  for p in "${includes[@]}"; do echo "path-include $p"; done
} >"$dir/etc/dpkg/dpkg.cfg.d/docker"
keep=()
for p in "${includes[@]}"; do keep+=(${keep[0]+-o} -path "$dir$p"); done
for p in "${excludes[@]}"; do
  top="$dir${p%/\*}"
  [[ -d "$top" ]] || continue
  find "$top" -depth -mindepth 1 -not \( "${keep[@]}" \) -not -type d -delete
  find "$top" -depth -mindepth 1 -type d -empty -delete
done

# What differs between two runs or comes from this host: logs, the ld.so and dpkg/debconf backups, the host's
# name and resolver (the runtime provides both).
rm -rf "${dir:?}"/var/cache/apt/archives/*.deb "${dir:?}"/var/cache/apt/*.bin "${dir:?}"/var/lib/apt/lists/* "${dir:?}"/dev/* \
  "${dir:?}"/run/* "${dir:?}"/tmp/* "${dir:?}"/var/cache/ldconfig/aux-cache "${dir:?}"/var/lib/dpkg/*-old \
  "${dir:?}"/var/cache/debconf/*-old "${dir:?}"/etc/hostname "${dir:?}"/etc/resolv.conf
find "$dir/var/log" -type f -delete

tar --numeric-owner --sort=name --mtime=@0 -C "$dir" -cf "$out.tmp" .
mv "$out.tmp" "$out"
