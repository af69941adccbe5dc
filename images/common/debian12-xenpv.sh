#!/usr/bin/env bash
# The Xen PV guest configuration shared by debian12-xenpv and
# debian12-xenpv-pygrub (sourced after debian12.sh): fstab and root= on
# /dev/xvda1, console=hvc0, device.map (hd0) /dev/xvda, hvc0/xvc0 in
# securetty, a getty@hvc0 link, its NIC enX0 (netfront's name) configured by
# systemd-networkd with DHCP, and the boot commands of a host-only dracut
# initrd with only Xen block/net drivers (no virtio).

# xenpv_overlay DIR: writes the guest's Xen configuration into DIR.
xenpv_overlay() {
    local ov="$1"
    rm -rf "$ov" && mkdir -p "$ov/etc/default" "$ov/boot/grub" "$ov/etc/systemd/system/getty.target.wants"
    common_overlay "$ov"
    network_overlay "$ov" enX0
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
}

# xenpv_commands KVER: the guestfish boot commands. Host-only dracut under
# QEMU adds virtio_blk; the virtio modules are omitted so the initrd looks
# like one built on a real Xen host.
xenpv_commands() {
    boot_commands "$1" "--add-drivers 'xen-blkfront xen-netfront' --omit-drivers 'virtio.*'"
}

XENPV_INITRD_HAS="xen-blkfront xen-netfront"
XENPV_INITRD_LACKS="virtio_blk virtio_pci virtio_net virtio_scsi"
