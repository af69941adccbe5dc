#!/usr/bin/env bash
# Imitates: a real Debian 12 guest installed as a Xen PV domU — fstab and
# root= on /dev/xvda1, console=hvc0, device.map (hd0) /dev/xvda, a host-only
# dracut initrd with only Xen block/net drivers (no virtio), hvc0/xvc0 in
# securetty and a getty@hvc0 link. GRUB is on the disk (pygrub-readable too).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common/debian12.sh"

base="$(base_tree)"
kver="$(kernel_version "$base")"
ov="$WORK/overlay"
rm -rf "$ov" && mkdir -p "$ov/etc/default" "$ov/boot/grub" "$ov/etc/systemd/system/getty.target.wants"
common_overlay "$ov"
cat > "$ov/etc/fstab" <<'FSTAB'
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/xvda1      /               ext4    errors=remount-ro 0     1
FSTAB
default_grub "root=/dev/xvda1 console=hvc0" "" > "$ov/etc/default/grub"
printf '(hd0)\t/dev/xvda\n' > "$ov/boot/grub/device.map"
printf 'console\ntty1\ntty2\ntty3\ntty4\ntty5\ntty6\nhvc0\nxvc0\n' > "$ov/etc/securetty"
ln -s /lib/systemd/system/getty@.service \
    "$ov/etc/systemd/system/getty.target.wants/getty@hvc0.service"

# Host-only dracut under QEMU adds virtio_blk; omit the virtio modules so the
# initrd looks like one built on a real Xen host.
mapfile -t cmds < <(boot_commands "$kver" \
    "--add-drivers 'xen-blkfront xen-netfront' --omit-drivers 'virtio.*'")
make_disk "$base" "$ov" "${cmds[@]}"
check_initrd "xen-blkfront xen-netfront" "virtio_blk virtio_pci virtio_net virtio_scsi"
