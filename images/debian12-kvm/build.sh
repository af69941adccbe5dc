#!/usr/bin/env bash
# Imitates: the same Debian 12 guest configured correctly for KVM (the
# control): /dev/vda1, console=ttyS0 for the kernel, device.map (hd0)
# /dev/vda, an initrd with virtio_blk/virtio_pci/virtio_net, ttyS0 in
# securetty, no Xen console getty. GRUB keeps Debian's default settings (no
# GRUB_TERMINAL: its graphical terminal, silent on the serial port), as most
# KVM guests have: boot-check must judge it by the kernel's console.
# Its network is what a conversion that does not pin NIC names leaves (the
# Xen guest's networkd config for enX0, while the virtio NIC is ens3): it
# boots with no network, and boot-check --require-network says so.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common/debian12.sh"

base="$(base_tree)"
kver="$(kernel_version "$base")"
ov="$WORK/overlay"
rm -rf "$ov" && mkdir -p "$ov/etc/default" "$ov/boot/grub"
common_overlay "$ov"
network_overlay "$ov" enX0
cat > "$ov/etc/fstab" <<'FSTAB'
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/vda1       /               ext4    errors=remount-ro 0     1
FSTAB
default_grub "root=/dev/vda1 console=tty0 console=ttyS0,115200" "" > "$ov/etc/default/grub"
printf '(hd0)\t/dev/vda\n' > "$ov/boot/grub/device.map"
printf 'console\ntty1\ntty2\ntty3\ntty4\ntty5\ntty6\nttyS0\n' > "$ov/etc/securetty"

mapfile -t cmds < <(boot_commands "$kver" "--add-drivers 'virtio_blk virtio_pci virtio_net'")
make_disk "$base" "$ov" "${cmds[@]}"
check_initrd "virtio_blk virtio_pci virtio_net" ""
