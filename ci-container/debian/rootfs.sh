#!/usr/bin/env bash
# debian/rootfs.sh ROOTFS MIRROR: a minimal Debian 12 (bookworm) root file
# system, the stand-in for docker.io/library/debian:bookworm-slim: debootstrap's
# minbase variant, the same apt and dpkg settings as Docker's official slim
# images (no docs, man pages or translations; apt cleans its caches), and
# bookworm, bookworm-updates and bookworm-security as sources.
set -euo pipefail
rootfs=$1
mirror=${2:-http://deb.debian.org/debian}
security=${mirror%/debian}/debian-security

debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -n 30 "$rootfs.log" >&2
  exit 1
}

{
  echo "deb $mirror bookworm main"
  echo "deb $mirror bookworm-updates main"
  # A mirror without the security archive beside it gets bookworm alone.
  if curl -fsS -o /dev/null --max-time 20 "$security/dists/bookworm-security/Release"; then
    echo "deb $security bookworm-security main"
  fi
} >"$rootfs/etc/apt/sources.list"

cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
DPKG
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
printf 'Acquire::Languages "none";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"

# What the settings above would have kept out, had they been there from the start.
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/* \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/* \
  "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf
# The hostname and resolv.conf come from the container runtime.
: >"$rootfs/etc/hostname"
: >"$rootfs/etc/resolv.conf"
