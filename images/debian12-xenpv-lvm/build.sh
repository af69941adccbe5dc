#!/usr/bin/env bash
# Imitates: the same Debian 12 Xen PV domU as debian12-xenpv, installed with
# Debian's LVM layout and booted by pygrub on its Xen host:
# - /boot on xvda1 (ext4, by UUID), the volume group debian-vg on xvda2
#   with the root (ext4) and swap_1 LVs; lvm2 installed; an lvm.conf filter
#   that accepts only Xen disks (a|^/dev/xvd.*|, then r|.*|), which the
#   initrd carries: under KVM, unchanged, the root VG is never found;
# - Debian's default initrd tool: initramfs-tools (dracut removed), from a
#   module list naming what MODULES=dep finds on a Xen host (MODULES=list:
#   xen-blkfront, xen-netfront, ext4 — Debian builds ext4 as a module), no
#   resume device;
# - GRUB's files and grub.cfg in /boot, but no boot code on the disk (MBR
#   code area and the gap before the first partition are zero): under KVM
#   the BIOS finds nothing to boot.
# Derived (see `from`): made from the cached debian12-xenpv image ($PARENT)
# rather than built again — its root filesystem copied block for block into
# the root LV — so it is the very same guest otherwise.
set -euo pipefail
: "${OUT:?}" "${WORK:?}" "${PARENT:?}"
log() { echo "[image] $*" >&2; }
export LIBGUESTFS_BACKEND="${LIBGUESTFS_BACKEND:-direct}"
export LIBGUESTFS_BACKEND_SETTINGS="${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}"

qemu-img convert -O raw "$PARENT" "$WORK/parent.raw"
rm -f "$OUT"
truncate -s 4G "$OUT"
ROOT_UUID="5e1f2d3c-4b5a-4968-8776-a5b4c3d2e1f0"   # debian12-xenpv's root
BOOT_UUID="3b8e1c5a-7d2f-4e6a-9c41-0f5d2a8b6e19"

# initramfs-tools and lvm2 from the host's bookworm archive (the host runs
# the same release; the guest has no network). Their other dependencies
# (cpio, kmod, udev, logsave, linux-base, dmsetup, libdevmapper) are in the
# guest already.
debs="$WORK/debs"
rm -rf "$debs" && mkdir -p "$debs"
(cd "$debs" && apt-get download initramfs-tools initramfs-tools-core klibc-utils libklibc \
    lvm2 liblvm2cmd2.03 dmeventd libdevmapper-event1.02.1 libaio1 libedit2 libbsd0 >&2) || {
    log "apt-get download of initramfs-tools and lvm2 failed (run cargo xtask deps: it updates the host's package lists)"
    exit 1
}
# The guest's configuration goes in before the package (dpkg keeps it:
# --force-confold), so the initrd the package's trigger builds is the
# small MODULES=list one, not a MODULES=most one (minutes under TCG).
core="$(ls "$debs"/initramfs-tools-core_*.deb)"
dpkg-deb --fsys-tarfile "$core" | tar -xO ./etc/initramfs-tools/initramfs.conf \
    | sed -e 's/^MODULES=.*/MODULES=list/' -e 's/^COMPRESS=.*/COMPRESS=gzip/' > "$WORK/initramfs.conf"
grep -qx 'MODULES=list' "$WORK/initramfs.conf" || { log "initramfs.conf of $core has no MODULES="; exit 1; }
{
    # What the package's postinst writes when the file is missing.
    dpkg-deb --fsys-tarfile "$core" | tar -xO ./usr/share/initramfs-tools/modules | sed '/^###/d'
    printf '# What MODULES=dep finds on the Xen host: its disk and NIC drivers, the root filesystem\nxen-blkfront\nxen-netfront\next4\n'
} > "$WORK/modules"
cat > "$WORK/initramfs-tools.sh" <<SH
set -e
kver="\$(ls /boot | sed -n 's/^vmlinuz-//p' | head -n1)"
[ -n "\$kver" ] || { echo "no kernel in /boot" >&2; exit 1; }
# dracut's place is taken by initramfs-tools (the kernel package needs one
# of them: dracut goes first, initramfs-tools satisfies it again).
dpkg --force-depends --purge dracut dracut-core >/dev/null
dpkg -i --force-confold /tmp/xen2kvm-debs/*.deb >/dev/null
rm -f /boot/initrd.img-\$kver
update-initramfs -c -k \$kver >/dev/null
grub-mkconfig -o /boot/grub/grub.cfg 2>/dev/null
grep -q 'root=/dev/mapper/debian--vg-root' /boot/grub/grub.cfg || { echo "grub.cfg does not boot the root LV" >&2; exit 1; }
lsinitramfs /boot/initrd.img-\$kver > /var/lib/xen2kvm-initrd.txt
dpkg-query -W -f '\${Package} \${Version}\n' > /var/lib/xen2kvm-manifest.txt
rm -rf /tmp/xen2kvm-debs
SH
cat > "$WORK/fstab" <<FSTAB
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/mapper/debian--vg-root /               ext4    errors=remount-ro 0       1
# /boot was on /dev/xvda1 during installation
UUID=$BOOT_UUID /boot           ext4    defaults        0       2
/dev/mapper/debian--vg-swap_1 none            swap    sw              0       0
FSTAB
cat > "$WORK/lvm.conf" <<'LVM'
# Set up on the Xen host: LVM looks only at the Xen disks.
devices {
	dir = "/dev"
	scan = [ "/dev" ]
	filter = [ "a|^/dev/xvd.*|", "r|.*|" ]
}
global {
	use_lvmetad = 0
}
LVM
{
    echo "run"
    # The layout: /boot (256 MiB), then the PV of debian-vg.
    echo "part-init /dev/sdb mbr"
    echo "part-add /dev/sdb p 2048 526335"
    echo "part-add /dev/sdb p 526336 -1"
    echo "mke2fs /dev/sdb1 fstype:ext4 uuid:$BOOT_UUID"
    echo "pvcreate /dev/sdb2"
    echo "vgcreate debian-vg /dev/sdb2"
    echo "lvcreate root debian-vg 3072"
    echo "lvcreate swap_1 debian-vg 128"
    echo "mkswap /dev/debian-vg/swap_1"
    # The Xen guest's root filesystem, block for block (same UUID).
    echo "copy-device-to-device /dev/sda1 /dev/debian-vg/root sparse:true"
    # Its /boot moves to the /boot partition.
    echo "mount /dev/debian-vg/root /"
    echo "mkdir /newboot"
    echo "mount /dev/sdb1 /newboot"
    echo "sh \"cp -a /boot/. /newboot/ && find /boot -mindepth 1 -delete\""
    echo "umount /newboot"
    echo "rmdir /newboot"
    echo "mount /dev/sdb1 /boot"
    echo "upload $WORK/fstab /etc/fstab"
    echo "mkdir-p /etc/lvm"
    echo "upload $WORK/lvm.conf /etc/lvm/lvm.conf"
    # root= now comes from grub-mkconfig (the root LV); the Xen console stays.
    echo "sh \"sed -i 's|root=/dev/xvda1 ||' /etc/default/grub\""
    echo "mkdir-p /tmp/xen2kvm-debs"
    echo "mkdir-p /etc/initramfs-tools/conf.d"
    echo "upload $WORK/initramfs.conf /etc/initramfs-tools/initramfs.conf"
    echo "upload $WORK/modules /etc/initramfs-tools/modules"
    echo "write /etc/initramfs-tools/conf.d/resume \"RESUME=none\\n\""
    for d in "$debs"/*.deb; do echo "upload $d /tmp/xen2kvm-debs/$(basename "$d")"; done
    echo "upload $WORK/initramfs-tools.sh /tmp/xen2kvm-initramfs-tools.sh"
    echo "command '/bin/sh /tmp/xen2kvm-initramfs-tools.sh'"
    echo "rm /tmp/xen2kvm-initramfs-tools.sh"
    echo "download /var/lib/xen2kvm-initrd.txt $WORK/initrd.txt"
    echo "download /var/lib/xen2kvm-manifest.txt $WORK/manifest.txt"
    echo "umount-all"
} > "$WORK/session.gf"
log "debian12-xenpv re-laid as /boot + LVM; dracut -> initramfs-tools (MODULES=list: the Xen drivers and ext4) and lvm2, update-initramfs in the appliance"
guestfish --rw -a "$WORK/parent.raw" -a "$OUT" -f "$WORK/session.gf" >&2
rm -f "$WORK/parent.raw"
grep -q '/xen-blkfront.ko' "$WORK/initrd.txt" || { log "initrd lacks xen-blkfront"; exit 1; }
grep -q 'etc/lvm/lvm.conf' "$WORK/initrd.txt" || { log "initrd lacks lvm.conf"; exit 1; }
grep -q 'sbin/lvm' "$WORK/initrd.txt" || { log "initrd lacks lvm"; exit 1; }
if grep -q '/virtio_blk.ko' "$WORK/initrd.txt"; then log "initrd has virtio_blk but must not"; exit 1; fi
log "initrd checked: initramfs-tools, has xen-blkfront, lacks virtio_blk"

# Wipe the boot code: bytes 0-439 of the MBR (the partition table and the
# 0x55AA signature stay) and sectors 1-2047 (GRUB's core.img).
dd if=/dev/zero of="$OUT" bs=440 count=1 conv=notrunc status=none
dd if=/dev/zero of="$OUT" bs=512 seek=1 count=2047 conv=notrunc status=none
log "boot code wiped"
