#!/usr/bin/env bash
# Bootstrap a minimal Debian root filesystem with python3 and write it as a tar for `docker import`.
# Used when no container registry answers (the usual case here). Needs root and `debootstrap`
# (apt-get install debootstrap). Usage: bootstrap.sh OUT.tar [SUITE] [PACKAGES] [MIRROR]
set -euo pipefail
OUT=${1:?usage: bootstrap.sh OUT.tar [SUITE] [PACKAGES] [MIRROR]}
SUITE=${2:-bookworm}
PACKAGES=${3:-python3,ca-certificates}
MIRROR=${4:-http://deb.debian.org/debian}

ROOTFS=$(mktemp -d /var/tmp/evoforge-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT

debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >&2

# Slim: package lists, caches, docs, man pages, logs. Nothing here is needed at run time.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* \
       "$ROOTFS"/usr/share/python3/runtime.d 2>/dev/null || true
# Byte-compile the standard library: the sandbox root is read-only, so without .pyc files every
# interpreter start would compile the stdlib again (~0.3 s per evaluation).
chroot "$ROOTFS" python3 -m compileall -q -j 0 /usr/lib/python3.11 >/dev/null 2>&1 || true
# The dist-packages folder the cpu image fills; on sys.path by default in Debian's python3.
mkdir -p "$ROOTFS"/usr/local/lib/python3.11/dist-packages "$ROOTFS"/scratch
chmod 1777 "$ROOTFS"/scratch

tar -C "$ROOTFS" --numeric-owner -cf "$OUT" .
