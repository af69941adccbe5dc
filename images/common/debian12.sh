#!/usr/bin/env bash
# Shared steps for the real Debian 12 test guests (sourced by their build.sh).
#
# The image is built without loop devices or host mounts of the image:
#   1. debootstrap a minbase bookworm tree (debian12-base.sh: cached as a
#      tarball keyed by that file's hash, shared by both guests);
#   2. one guestfish session partitions the disk (MBR, one ext4 root with a
#      fixed UUID), copies the tree in, writes the guest's configuration and,
#      inside the appliance, runs grub-install, grub-mkconfig and dracut.
# The initrd is built in the appliance, not in the chroot: the build host has
# no /proc/modules, so host-only dracut silently turns itself off there.
#
# Inputs (environment): OUT (raw image to create), WORK (scratch directory),
# BASE_CACHE (directory for the cached base tree), RECIPE_DIR (this recipe).
set -euo pipefail

: "${OUT:?}" "${WORK:?}" "${BASE_CACHE:?}" "${RECIPE_DIR:?}"
export LIBGUESTFS_BACKEND="${LIBGUESTFS_BACKEND:-direct}"
export LIBGUESTFS_BACKEND_SETTINGS="${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}"

COMMON_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$COMMON_DIR/debian12-base.sh"
ROOT_UUID="5e1f2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

log() { echo "[image] $*" >&2; }

# The debian12 /etc/default/grub, with the guest's kernel options in $1 and
# extra lines in $2.
default_grub() {
    cat <<GRUB
# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
# For full documentation of the options in this file, see:
#   info -f grub -n 'Simple configuration'

GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT="$1"
GRUB_CMDLINE_LINUX=""
$2
GRUB
}

# The guestfish commands that build the initrd of kernel $1 with dracut
# options $2 and install GRUB, then list the initrd for the caller to check.
boot_commands() {
    local kver="$1" dracut_opts="$2"
    # dracut first: grub-mkconfig only writes an initrd line for an initrd
    # that exists.
    echo "sh \"dracut --force --hostonly --no-hostonly-cmdline $dracut_opts /boot/initrd.img-$kver $kver\""
    # GRUB goes on the disk holding the root filesystem, by the kernel's
    # name for it: the appliance's own disk and the guest's are probed in
    # either order (libguestfs' API names hide that; a command run in the
    # guest sees the kernel's), so /dev/sda may be the appliance's disk and
    # grub-install would refuse a "cross-disk install". The helper finds the
    # disk with blkid, pins it as (hd0) in device.map while grub-install runs
    # (the guest's own names /dev/xvda), and makes the by-uuid link that
    # grub-mkconfig needs to write root=UUID=.
    cat > "$WORK/grub-install.sh" <<SH
set -e
part="\$(blkid -U $ROOT_UUID)"
disk="\${part%%[0-9]*}"
mkdir -p /dev/disk/by-uuid
[ -e /dev/disk/by-uuid/$ROOT_UUID ] || ln -s "\$part" /dev/disk/by-uuid/$ROOT_UUID
if [ -e /boot/grub/device.map ]; then mv /boot/grub/device.map /boot/grub/device.map.xen2kvm-build; fi
printf '(hd0) %s\\n' "\$disk" > /boot/grub/device.map
grub-install --target=i386-pc "\$disk"
rm /boot/grub/device.map
if [ -e /boot/grub/device.map.xen2kvm-build ]; then mv /boot/grub/device.map.xen2kvm-build /boot/grub/device.map; fi
SH
    echo "upload $WORK/grub-install.sh /tmp/xen2kvm-grub-install.sh"
    echo "command '/bin/sh /tmp/xen2kvm-grub-install.sh'"
    echo "rm /tmp/xen2kvm-grub-install.sh"
    echo "command 'grub-mkconfig -o /boot/grub/grub.cfg'"
    echo "sh \"lsinitrd /boot/initrd.img-$kver > /var/lib/xen2kvm-initrd.txt\""
    echo "download /var/lib/xen2kvm-initrd.txt $WORK/initrd.txt"
}

# Fails unless the initrd listing has every module named in $1 and none in $2.
check_initrd() {
    local m
    for m in $1; do
        grep -q "/$m.ko" "$WORK/initrd.txt" || { log "initrd lacks $m"; exit 1; }
    done
    for m in $2; do
        if grep -q "/$m.ko" "$WORK/initrd.txt"; then log "initrd has $m but must not"; exit 1; fi
    done
    log "initrd checked: has [$1], lacks [$2]"
}

# network_overlay DIR NAME: the guest's NIC NAME configured by
# systemd-networkd (DHCP), and networkd enabled. Debian 12 under Xen names
# its netfront NIC enX0 (systemd v250+), which is what an installer there
# writes; a virtio NIC under KVM gets ens3/enp0s3 instead.
network_overlay() {
    local d="$1" name="$2"
    mkdir -p "$d/etc/systemd/network" "$d/etc/systemd/system/multi-user.target.wants" \
        "$d/etc/systemd/system/sockets.target.wants"
    cat > "$d/etc/systemd/network/20-wired.network" <<NET
[Match]
Name=$name

[Network]
DHCP=ipv4
NET
    ln -s /lib/systemd/system/systemd-networkd.service \
        "$d/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
    ln -s /lib/systemd/system/systemd-networkd.socket \
        "$d/etc/systemd/system/sockets.target.wants/systemd-networkd.socket"
}

# Writes the guest configuration overlay shared by both guests into $1.
common_overlay() {
    local d="$1"
    mkdir -p "$d/etc/systemd/system/multi-user.target.wants" "$d/usr/local/sbin"
    cat > "$d/usr/local/sbin/xen2kvm-boot-ok" <<'SH'
#!/bin/sh
# Tells the boot checker that multi-user.target was reached.
for t in /dev/ttyS0 /dev/console; do echo "XEN2KVM-BOOT-OK" > "$t" 2>/dev/null; done
exit 0
SH
    chmod 755 "$d/usr/local/sbin/xen2kvm-boot-ok"
    cat > "$d/etc/systemd/system/xen2kvm-boot-ok.service" <<'UNIT'
[Unit]
Description=Print the xen2kvm boot marker on the serial console
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/xen2kvm-boot-ok

[Install]
WantedBy=multi-user.target
UNIT
    ln -s /etc/systemd/system/xen2kvm-boot-ok.service \
        "$d/etc/systemd/system/multi-user.target.wants/xen2kvm-boot-ok.service"
}

# Runs the guestfish session that makes the disk from the base tarball $1 and
# the overlay directory $2, then runs the "$@" extra guestfish commands.
make_disk() {
    local base="$1" overlay="$2"
    shift 2
    log "creating $OUT"
    rm -f "$OUT"
    truncate -s 3G "$OUT"
    tar --numeric-owner -C "$overlay" -cf "$WORK/overlay.tar" .
    {
        echo "run"
        echo "part-init /dev/sda mbr"
        echo "part-add /dev/sda p 2048 -1"
        echo "part-set-bootable /dev/sda 1 true"
        echo "mke2fs /dev/sda1 fstype:ext4 uuid:$ROOT_UUID label:root"
        echo "mount /dev/sda1 /"
        echo "tar-in $base / xattrs:true"
        echo "tar-in $WORK/overlay.tar /"
        for cmd in "$@"; do echo "$cmd"; done
        echo "download /var/lib/xen2kvm-manifest.txt $WORK/manifest.txt"
        echo "umount-all"
    } > "$WORK/session.gf"
    guestfish --rw -a "$OUT" -f "$WORK/session.gf" >&2
}

# The running kernel version of the base tree (there is exactly one).
kernel_version() {
    tar -tf "$1" | sed -n 's|^\./boot/vmlinuz-||p' | head -n1
}
