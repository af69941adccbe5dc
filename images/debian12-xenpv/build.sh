#!/usr/bin/env bash
# Imitates: a real Debian 12 guest installed as a Xen PV domU — fstab and
# root= on /dev/xvda1, console=hvc0, device.map (hd0) /dev/xvda, a host-only
# dracut initrd with only Xen block/net drivers (no virtio), hvc0/xvc0 in
# securetty and a getty@hvc0 link. GRUB is on the disk (pygrub-readable too).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common/debian12.sh"
source "$COMMON_DIR/debian12-xenpv.sh"

base="$(base_tree)"
kver="$(kernel_version "$base")"
xenpv_overlay "$WORK/overlay"
mapfile -t cmds < <(xenpv_commands "$kver")
make_disk "$base" "$WORK/overlay" "${cmds[@]}"
check_initrd "$XENPV_INITRD_HAS" "$XENPV_INITRD_LACKS"
