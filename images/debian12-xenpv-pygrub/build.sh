#!/usr/bin/env bash
# Imitates: the same Debian 12 Xen PV domU as debian12-xenpv, booted by
# pygrub on its Xen host: GRUB's files and grub.cfg are in /boot, but the
# disk holds no boot code (MBR code area and the gap before the first
# partition are zero), so under KVM the BIOS finds nothing to boot.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common/debian12.sh"
source "$COMMON_DIR/debian12-xenpv.sh"

base="$(base_tree)"
kver="$(kernel_version "$base")"
xenpv_overlay "$WORK/overlay"
mapfile -t cmds < <(xenpv_commands "$kver")
make_disk "$base" "$WORK/overlay" "${cmds[@]}"
check_initrd "$XENPV_INITRD_HAS" "$XENPV_INITRD_LACKS"
# Wipe the boot code: bytes 0-439 of the MBR (the partition table and the
# 0x55AA signature stay) and sectors 1-2047 (GRUB's core.img).
dd if=/dev/zero of="$OUT" bs=440 count=1 conv=notrunc status=none
dd if=/dev/zero of="$OUT" bs=512 seek=1 count=2047 conv=notrunc status=none
log "boot code wiped"
