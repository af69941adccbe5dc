#!/usr/bin/env bash
# Imitates: the same Debian 12 Xen PV domU as debian12-xenpv, booted by
# pygrub on its Xen host: GRUB's files and grub.cfg are in /boot, but the
# disk holds no boot code (MBR code area and the gap before the first
# partition are zero), so under KVM the BIOS finds nothing to boot.
# Derived (see `from`): made from the cached debian12-xenpv image ($PARENT)
# rather than built again, so it is the very same guest.
set -euo pipefail
: "${OUT:?}" "${WORK:?}" "${PARENT:?}"
log() { echo "[image] $*" >&2; }

qemu-img convert -O raw "$PARENT" "$OUT"
cp "${PARENT%.qcow2}.manifest.txt" "$WORK/manifest.txt" 2>/dev/null || true
# Wipe the boot code: bytes 0-439 of the MBR (the partition table and the
# 0x55AA signature stay) and sectors 1-2047 (GRUB's core.img).
dd if=/dev/zero of="$OUT" bs=440 count=1 conv=notrunc status=none
dd if=/dev/zero of="$OUT" bs=512 seek=1 count=2047 conv=notrunc status=none
log "boot code wiped"
