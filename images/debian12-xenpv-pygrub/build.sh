#!/usr/bin/env bash
# Imitates: the same Debian 12 Xen PV domU as debian12-xenpv, booted by
# pygrub on its Xen host, with Debian's default initrd tool: GRUB's files
# and grub.cfg are in /boot, but the disk holds no boot code (MBR code area
# and the gap before the first partition are zero), so under KVM the BIOS
# finds nothing to boot; its initrd is built by initramfs-tools (dracut
# removed) from a module list that names what MODULES=dep finds on a Xen
# host (MODULES=list: xen-blkfront, xen-netfront, ext4: Debian builds ext4
# as a module), with no resume device.
# Derived (see `from`): made from the cached debian12-xenpv image ($PARENT)
# rather than built again, so it is the very same guest otherwise.
set -euo pipefail
: "${OUT:?}" "${WORK:?}" "${PARENT:?}"
log() { echo "[image] $*" >&2; }
export LIBGUESTFS_BACKEND="${LIBGUESTFS_BACKEND:-direct}"
export LIBGUESTFS_BACKEND_SETTINGS="${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}"

qemu-img convert -O raw "$PARENT" "$OUT"

# initramfs-tools from the host's bookworm archive (the host runs the same
# release; the guest has no network). Its other dependencies (cpio, kmod,
# udev, logsave, linux-base) are in the guest already.
debs="$WORK/debs"
rm -rf "$debs" && mkdir -p "$debs"
(cd "$debs" && apt-get download initramfs-tools initramfs-tools-core klibc-utils libklibc >&2) || {
    log "apt-get download of initramfs-tools failed (run cargo xtask deps: it updates the host's package lists)"
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
lsinitramfs /boot/initrd.img-\$kver > /var/lib/xen2kvm-initrd.txt
dpkg-query -W -f '\${Package} \${Version}\n' > /var/lib/xen2kvm-manifest.txt
rm -rf /tmp/xen2kvm-debs
SH
{
    echo "run"
    echo "mount /dev/sda1 /"
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
log "dracut -> initramfs-tools (MODULES=list: the Xen drivers and ext4), update-initramfs in the appliance"
guestfish --rw -a "$OUT" -f "$WORK/session.gf" >&2
grep -q '/xen-blkfront.ko' "$WORK/initrd.txt" || { log "initrd lacks xen-blkfront"; exit 1; }
if grep -q '/virtio_blk.ko' "$WORK/initrd.txt"; then log "initrd has virtio_blk but must not"; exit 1; fi
log "initrd checked: initramfs-tools, has xen-blkfront, lacks virtio_blk"

# Wipe the boot code: bytes 0-439 of the MBR (the partition table and the
# 0x55AA signature stay) and sectors 1-2047 (GRUB's core.img).
dd if=/dev/zero of="$OUT" bs=440 count=1 conv=notrunc status=none
dd if=/dev/zero of="$OUT" bs=512 seek=1 count=2047 conv=notrunc status=none
log "boot code wiped"
