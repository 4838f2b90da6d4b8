#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes debian:bookworm-slim locally without any image registry (air-gapped hosts, CI):
# debootstrap a minimal bookworm from the configured Debian mirror, import it into docker.
#   scripts/make-base-image.sh [TAG]   (default debian:bookworm-slim; needs root, debootstrap)
set -euo pipefail
tag=${1:-debian:bookworm-slim}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag already present"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap missing: apt-get install debootstrap" >&2; exit 1; }
dir=$(mktemp -d /tmp/lbd-rootfs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "debootstrap --variant=minbase bookworm $dir $mirror"
debootstrap --variant=minbase bookworm "$dir" "$mirror" >/tmp/lbd-debootstrap.log 2>&1 || {
  tail -20 /tmp/lbd-debootstrap.log >&2; exit 1; }
# Like the official slim image: no downloaded .debs, docs, man pages or translations, and a dpkg
# filter so later installs skip them too.
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin \
  "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/*
cat > "$dir/etc/dpkg/dpkg.cfg.d/slim" <<CFG
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat > "$dir/etc/apt/apt.conf.d/docker-clean" <<CFG
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
CFG
cat > "$dir/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SRC
tar -C "$dir" -c . | docker import -c 'CMD ["bash"]' - "$tag" >/dev/null
echo "imported $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
