#!/usr/bin/env bash
# Imitates: a Debian 12 Xen PV domU made by Debian's xen-tools
# (xen-create-image --pygrub), one image file per partition:
# - disk.img: the root filesystem (ext4, no partition table), given to Xen
#   as the partition xvda2; /boot inside it; fstab and root= name
#   /dev/xvda2; a hand-written /boot/grub/grub.cfg that pygrub reads on the
#   Xen host (linux /boot/vmlinuz-… root=/dev/xvda2 ro console=hvc0); no
#   boot code anywhere (there is no place for it), no device.map;
# - swap.img (cached as the image's `swap` extra disk): a swap area given
#   as xvda1, named /dev/xvda1 in fstab;
# - the initrd of debian12-xenpv-lvm: initramfs-tools, MODULES=list with
#   the Xen drivers and ext4 only (no virtio).
# Derived (see `from`): the root LV of the cached debian12-xenpv-lvm image
# ($PARENT), block for block (same UUID), with its /boot partition's files
# copied in — the very same guest otherwise (lvm2 stays installed, unused).
# Its domain configs are beside this file: guest.cfg (xl), guest.xml
# (libvirt), with @DISK@ and @SWAP@ for the two images' paths.
set -euo pipefail
: "${OUT:?}" "${WORK:?}" "${PARENT:?}"
log() { echo "[image] $*" >&2; }
export LIBGUESTFS_BACKEND="${LIBGUESTFS_BACKEND:-direct}"
export LIBGUESTFS_BACKEND_SETTINGS="${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}"

SWAP_UUID="7c0ffee0-1d2e-4f3a-8b4c-5d6e7f809a1b"
mkdir -p "$WORK/extra"
SWAP="$WORK/extra/swap.raw"
rm -f "$OUT" "$SWAP"
truncate -s 3G "$OUT"          # the root LV's size (3072 MiB)
truncate -s 128M "$SWAP"

cat > "$WORK/fstab" <<'FSTAB'
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/xvda2      /               ext4    errors=remount-ro 0     1
/dev/xvda1      none            swap    sw              0       0
FSTAB
cat > "$WORK/pygrub.sh" <<'SH'
set -e
kver="$(ls /boot | sed -n 's/^vmlinuz-//p' | head -n1)"
[ -n "$kver" ] || { echo "no kernel in /boot" >&2; exit 1; }
[ -f "/boot/initrd.img-$kver" ] || { echo "no initrd for $kver" >&2; exit 1; }
cat > /boot/grub/grub.cfg <<CFG
# Written by xen-tools for pygrub.
set default=0
set timeout=1
menuentry 'Debian GNU/Linux 12, kernel $kver' {
	linux /boot/vmlinuz-$kver root=/dev/xvda2 ro console=hvc0
	initrd /boot/initrd.img-$kver
}
CFG
sed -i 's|^GRUB_CMDLINE_LINUX_DEFAULT="|GRUB_CMDLINE_LINUX_DEFAULT="root=/dev/xvda2 |' /etc/default/grub
grep -q 'root=/dev/xvda2 console=hvc0' /etc/default/grub || { echo "/etc/default/grub has no root=/dev/xvda2" >&2; exit 1; }
rm -f /boot/grub/device.map
SH
{
    echo "add $PARENT readonly:true format:qcow2"
    echo "add $OUT format:raw"
    echo "add $SWAP format:raw"
    echo "run"
    # The root filesystem, block for block, as a bare image.
    echo "copy-device-to-device /dev/debian-vg/root /dev/sdb sparse:true"
    echo "mkswap /dev/sdc uuid:$SWAP_UUID"
    echo "mount /dev/sdb /"
    echo "mkdir /xen2kvm-boot"
    echo "mount-ro /dev/sda1 /xen2kvm-boot"
    echo "sh \"cp -a /xen2kvm-boot/. /boot/\""
    echo "umount /xen2kvm-boot"
    echo "rmdir /xen2kvm-boot"
    echo "upload $WORK/fstab /etc/fstab"
    echo "upload $WORK/pygrub.sh /tmp/xen2kvm-pygrub.sh"
    echo "command '/bin/sh /tmp/xen2kvm-pygrub.sh'"
    echo "rm /tmp/xen2kvm-pygrub.sh"
    echo "cat /boot/grub/grub.cfg"
    echo "umount-all"
} > "$WORK/session.gf"
log "debian12-xenpv-lvm's root LV and /boot as xen-tools' partition images (disk.img as xvda2, swap.img as xvda1)"
guestfish -f "$WORK/session.gf" >"$WORK/grub.cfg.txt"
grep -q 'root=/dev/xvda2' "$WORK/grub.cfg.txt" || { log "grub.cfg lacks root=/dev/xvda2"; exit 1; }
# No partition table on either image: bare filesystems.
if [ "$(head -c 512 "$OUT" | tail -c 2 | od -An -tx1 | tr -d ' ')" = "55aa" ]; then
    log "disk.img has an MBR signature but must be a bare filesystem"; exit 1
fi
log "disk.img: bare ext4 (UUID $(blkid -s UUID -o value "$OUT")); swap.img: swap (UUID $(blkid -s UUID -o value "$SWAP"))"
