#!/usr/bin/env bash
# Imitates: a Debian 12 Xen PV domU installed on btrfs the way SLES 12 SP1+
# and 15 lay it out (snapper), booted by pygrub on its Xen host:
# - xvda1: swap (named /dev/xvda1 in fstab); xvda2: btrfs with the
#   subvolumes @ and @/.snapshots; the root is snapshot 1
#   (@/.snapshots/1/snapshot), the filesystem's default subvolume, so fstab's
#   root line has no subvol=; @/.snapshots is mounted at /.snapshots;
# - snapshot 2 (@/.snapshots/2/snapshot, read-only): an older state of the
#   root, taken before the root's fstab and GRUB defaults were written (it
#   still has debian12-xenpv-lvm's): libguestfs reports it as another
#   system, and it must be left alone;
# - fstab and root= name /dev/xvda2, /dev/xvda1; a hand-written
#   /boot/grub/grub.cfg for pygrub; no boot code on the disk;
# - initramfs-tools with MODULES=list (the Xen drivers, ext4, and btrfs
#   added to the list); the initrd is debian12-xenpv-lvm's, not rebuilt
#   here (it is never booted as built: there is no boot code; converting
#   rebuilds it from the list).
# Derived (see `from`): debian12-xenpv-lvm's root LV and /boot partition,
# their files copied into the snapshot (about a minute instead of seven).
set -euo pipefail
: "${OUT:?}" "${WORK:?}" "${PARENT:?}"
log() { echo "[image] $*" >&2; }
export LIBGUESTFS_BACKEND="${LIBGUESTFS_BACKEND:-direct}"
export LIBGUESTFS_BACKEND_SETTINGS="${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}"

ROOT_UUID="b7f3c2a1-9e8d-4c6b-a5f4-e3d2c1b0a998"
SWAP_UUID="4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d"
rm -f "$OUT"
truncate -s 4G "$OUT"

cat > "$WORK/fstab" <<'FSTAB'
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/xvda2      /               btrfs   defaults        0       0
/dev/xvda2      /.snapshots     btrfs   subvol=@/.snapshots 0   0
/dev/xvda1      none            swap    sw              0       0
FSTAB
cat > "$WORK/pygrub.sh" <<'SH'
set -e
kver="$(ls /boot | sed -n 's/^vmlinuz-//p' | head -n1)"
[ -n "$kver" ] || { echo "no kernel in /boot" >&2; exit 1; }
[ -f "/boot/initrd.img-$kver" ] || { echo "no initrd for $kver" >&2; exit 1; }
cat > /boot/grub/grub.cfg <<CFG
# For pygrub on the Xen host (it reads the default subvolume).
set default=0
set timeout=1
menuentry 'Debian GNU/Linux 12, kernel $kver' {
	linux /boot/vmlinuz-$kver root=/dev/xvda2 ro console=hvc0
	initrd /boot/initrd.img-$kver
}
CFG
sed -i 's|^GRUB_CMDLINE_LINUX_DEFAULT="|GRUB_CMDLINE_LINUX_DEFAULT="root=/dev/xvda2 |' /etc/default/grub
grep -q 'root=/dev/xvda2 console=hvc0' /etc/default/grub || { echo "/etc/default/grub has no root=/dev/xvda2" >&2; exit 1; }
printf 'btrfs\n' >> /etc/initramfs-tools/modules
rm -f /boot/grub/device.map
SH
{
    echo "add $PARENT readonly:true format:qcow2"
    echo "add $OUT format:raw"
    echo "run"
    echo "part-init /dev/sdb mbr"
    echo "part-add /dev/sdb p 2048 264191"
    echo "part-add /dev/sdb p 264192 -1"
    echo "mkswap /dev/sdb1 uuid:$SWAP_UUID"
    echo "mkfs-btrfs /dev/sdb2"
    echo "set-uuid /dev/sdb2 $ROOT_UUID"
    echo "mount /dev/sdb2 /"
    echo "btrfs-subvolume-create /@"
    echo "btrfs-subvolume-create /@/.snapshots"
    echo "mkdir /@/.snapshots/1"
    echo "btrfs-subvolume-create /@/.snapshots/1/snapshot"
    echo "umount /"
    # Subvolume ids count from 256: @, @/.snapshots, then the snapshot.
    echo "mount-options subvol=@/.snapshots/1/snapshot /dev/sdb2 /"
    echo "btrfs-subvolume-set-default 258 /"
    # The guest's files: the root LV's, then its /boot partition's.
    echo "mkdir /xen2kvm-src"
    echo "mount-ro /dev/debian-vg/root /xen2kvm-src"
    echo "glob cp-a /xen2kvm-src/* /"
    echo "umount /xen2kvm-src"
    echo "mount-ro /dev/sda1 /xen2kvm-src"
    echo "glob cp-a /xen2kvm-src/* /boot/"
    echo "umount /xen2kvm-src"
    echo "rmdir /xen2kvm-src"
    echo "mkdir-p /.snapshots"
    echo "mount-options subvol=@/.snapshots /dev/sdb2 /.snapshots"
    # The older state: before this guest's own fstab and GRUB defaults.
    echo "mkdir /.snapshots/2"
    echo "btrfs-subvolume-snapshot / /.snapshots/2/snapshot ro:true"
    echo "upload $WORK/fstab /etc/fstab"
    echo "upload $WORK/pygrub.sh /tmp/xen2kvm-pygrub.sh"
    echo "command '/bin/sh /tmp/xen2kvm-pygrub.sh'"
    echo "rm /tmp/xen2kvm-pygrub.sh"
    echo "cat /boot/grub/grub.cfg"
    echo "btrfs-subvolume-list /"
    echo "umount-all"
} > "$WORK/session.gf"
log "debian12-xenpv-lvm's files into btrfs snapshot 1 (the default subvolume), snapshot 2 beside it"
guestfish -f "$WORK/session.gf" >"$WORK/out.txt"
grep -q 'root=/dev/xvda2' "$WORK/out.txt" || { log "grub.cfg lacks root=/dev/xvda2"; cat "$WORK/out.txt" >&2; exit 1; }
grep -q '@/.snapshots/2/snapshot' "$WORK/out.txt" || { log "no snapshot 2"; cat "$WORK/out.txt" >&2; exit 1; }
log "built: $(grep -c snapshot "$WORK/out.txt") subvolume lines; root btrfs UUID $ROOT_UUID"
