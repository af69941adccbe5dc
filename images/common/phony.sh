#!/usr/bin/env bash
# Shared steps for the phony test guests (sourced by their build.sh), in the
# manner of libguestfs' phony guests: a small disk whose files are faithful
# to the distribution (the files and tools each distribution really has,
# as described in each recipe's header), with a static busybox
# as /bin/sh and recording stubs for the tools xen2kvm runs in a guest
# (grub2-mkconfig, dracut, mkinitrd, update-initramfs, grub2-set-default…):
# each appends its name and arguments to /var/log/xen2kvm-stub-calls.log.
# Kernels are phony too: an image file, a config with the flags that matter,
# empty module files, and a real initrd (a compressed newc cpio listing the
# modules it holds).
#
# Inputs (environment): OUT (raw image to create), WORK (scratch directory).
set -euo pipefail
: "${OUT:?}" "${WORK:?}"
export LIBGUESTFS_BACKEND="${LIBGUESTFS_BACKEND:-direct}"
export LIBGUESTFS_BACKEND_SETTINGS="${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}"

T="$WORK/tree"
rm -rf "$T" && mkdir -p "$T"
mkdir -p "$T"/{bin,sbin,usr/bin,usr/sbin,etc,boot,lib/modules,var/log,tmp,root,dev,proc,sys}

log() { echo "[image] $*" >&2; }

# put PATH < content: writes a guest file.
put() {
    mkdir -p "$(dirname "$T$1")"
    cat > "$T$1"
}

# busybox as /bin/sh (static: no libc in the guest).
install_busybox() {
    cp /bin/busybox "$T/bin/busybox"
    ln -sf busybox "$T/bin/sh"
    for t in cat echo ls mv cp rm ln mkdir grep sed true false; do ln -sf busybox "$T/bin/$t"; done
}

# stub PATH...: a recording stub at each guest path. Every stub appends its
# path and arguments to /var/log/xen2kvm-stub-calls.log, and exits 1 when
# its path is a line of /etc/xen2kvm-stub-fail (for failure tests). Stubs of
# the tools that write files write them the way the real tool would, as far
# as xen2kvm looks:
#   initrd tools (dracut, mkinitrd, update-initramfs) copy the kernel's
#     prepared "rebuilt" initrd (its modules plus virtio's, see kernel()) to
#     the path the real tool would write;
#   grub-mkconfig/grub2-mkconfig write a menu from /etc/default/grub and the
#     kernels in /boot;
#   grub-install/grub2-install write "GRUB" into the MBR code area of the
#     disk they are given (what the boot-code check looks for), nothing else.
stub() {
    local s
    for s in "$@"; do
        mkdir -p "$(dirname "$T$s")"
        {
            echo '#!/bin/sh'
            echo '# xen2kvm test stub: records its call (see images/common/phony.sh).'
            echo "me='$s'"
            cat <<'BODY'
echo "$me $*" >> /var/log/xen2kvm-stub-calls.log
if [ -f /etc/xen2kvm-stub-fail ] && grep -qx "$me" /etc/xen2kvm-stub-fail; then
    echo "$me: failing as /etc/xen2kvm-stub-fail asks" >&2
    exit 1
fi
stubs=/usr/lib/xen2kvm-stub
last() { for a in "$@"; do :; done; echo "$a"; }
case "${me##*/}" in
grub-install|grub2-install)
    disk="$(last "$@")"
    printf 'GRUB' | busybox dd of="$disk" bs=1 seek=384 conv=notrunc 2>/dev/null ;;
dracut)
    out=""; kver=""
    for a in "$@"; do out="$kver"; kver="$a"; done
    cp "$stubs/initrd-$kver" "$out" ;;
mkinitrd)
    k=""; i=""; prev=""; out=""; kver=""
    for a in "$@"; do
        case "$prev" in -k) k="$a" ;; -i) i="$a" ;; esac
        prev="$a"; out="$kver"; kver="$a"
    done
    if [ -n "$k" ]; then cp "$stubs/initrd-${k#vmlinuz-}" "/boot/$i"; else cp "$stubs/initrd-$kver" "$out"; fi ;;
update-initramfs)
    kver=""; prev=""
    for a in "$@"; do [ "$prev" = -k ] && kver="$a"; prev="$a"; done
    cp "$stubs/initrd-$kver" "/boot/initrd.img-$kver" ;;
grub-mkconfig|grub2-mkconfig)
    out=""; prev=""
    for a in "$@"; do [ "$prev" = -o ] && out="$a"; prev="$a"; done
    . /etc/default/grub
    {
        echo "# written by the xen2kvm test stub of grub-mkconfig"
        if [ "$GRUB_DEFAULT" = saved ]; then
            echo 'load_env'
            echo 'set default="${saved_entry}"'
        else
            echo "set default=\"${GRUB_DEFAULT:-0}\""
        fi
        for k in /boot/vmlinuz-*; do
            [ -L "$k" ] && continue
            v="${k#/boot/vmlinuz-}"
            echo "menuentry 'Phony Linux, with Linux $v' \$menuentry_id_option 'gnulinux-$v-advanced' {"
            echo "	linux	$k root=UUID=phony ${GRUB_CMDLINE_LINUX} ${GRUB_CMDLINE_LINUX_DEFAULT}"
            for i in "/boot/initrd-$v" "/boot/initrd.img-$v" "/boot/initramfs-$v.img"; do
                [ -f "$i" ] && echo "	initrd	$i"
            done
            echo "}"
        done
    } > "$out" ;;
esac
exit 0
BODY
        } > "$T$s"
        chmod 755 "$T$s"
    done
}

# kernel VERSION KIND MODEXT COMPRESS INITRD-PATH [MODULE-IN-INITRD...]
#   KIND: xen (xenlinux, Xen-only), pvops (Xen and KVM), native (no Xen)
#   MODEXT: .ko, .ko.xz or .ko.zst; COMPRESS: gzip, xz or zstd
kernel() {
    local v="$1" kind="$2" ext="$3" comp="$4" initrd="$5"
    shift 5
    local m="$T/lib/modules/$v/kernel/drivers"
    echo "phony kernel $v" > "$T/boot/vmlinuz-$v"
    echo "phony System.map $v" > "$T/boot/System.map-$v"
    {
        echo "# Linux/x86_64 $v Kernel Configuration (phony)"
        case "$kind" in
            xen)
                echo "CONFIG_X86_64_XEN=y"
                echo "CONFIG_XEN=y"
                echo "CONFIG_XEN_BLKDEV_FRONTEND=m"
                echo "CONFIG_XEN_NETDEV_FRONTEND=m"
                echo 'CONFIG_LOCALVERSION="-xen"'
                ;;
            pvops)
                echo "CONFIG_XEN=y"
                echo "CONFIG_XEN_PV=y"
                echo "CONFIG_XEN_BLKDEV_FRONTEND=m"
                echo "CONFIG_VIRTIO=m"
                echo "CONFIG_VIRTIO_PCI=m"
                echo "CONFIG_VIRTIO_BLK=m"
                echo "CONFIG_VIRTIO_NET=m"
                echo "CONFIG_SCSI_VIRTIO=m"
                ;;
            native)
                echo "# CONFIG_X86_64_XEN is not set"
                echo "CONFIG_VIRTIO=m"
                echo "CONFIG_VIRTIO_PCI=m"
                echo "CONFIG_VIRTIO_BLK=m"
                echo "CONFIG_VIRTIO_NET=m"
                echo "CONFIG_SCSI_VIRTIO=m"
                ;;
        esac
    } > "$T/boot/config-$v"
    mkdir -p "$m/block" "$m/net" "$m/virtio" "$m/scsi" "$m/xen/blkfront" "$m/xen/netfront"
    case "$kind" in
        xen)
            : > "$m/xen/blkfront/xenblk$ext"
            : > "$m/xen/netfront/xennet$ext"
            ;;
        *)
            : > "$m/block/virtio_blk$ext"
            : > "$m/net/virtio_net$ext"
            : > "$m/virtio/virtio_pci$ext"
            : > "$m/virtio/virtio$ext"
            : > "$m/virtio/virtio_ring$ext"
            : > "$m/scsi/virtio_scsi$ext"
            ;;
    esac
    if [[ "$kind" == pvops ]]; then
        : > "$m/block/xen-blkfront$ext"
        : > "$m/net/xen-netfront$ext"
    fi
    : > "$T/lib/modules/$v/modules.builtin"
    # The initrd: a newc cpio of the named modules (found under the module
    # tree), compressed.
    local ir="$WORK/initrd-root" mod f
    rm -rf "$ir" && mkdir -p "$ir"
    echo "#!/bin/sh" > "$ir/init"
    for mod in "$@"; do
        f="$(cd "$T" && find "lib/modules/$v" -name "$mod$ext" | head -n1)"
        [[ -n "$f" ]] || { log "kernel $v has no module $mod"; exit 1; }
        mkdir -p "$ir/$(dirname "$f")"
        : > "$ir/$f"
    done
    local cmd
    case "$comp" in
        gzip) cmd="gzip -9n" ;;
        xz) cmd="xz --check=crc32" ;;
        zstd) cmd="zstd -q -19" ;;
    esac
    (cd "$ir" && find . | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible | $cmd) > "$T$initrd"
    # What the stubbed initrd tools "rebuild": the same plus the kernel's
    # virtio modules (none for a Xen-only kernel).
    for f in $(cd "$T" && find "lib/modules/$v" -type f -name 'virtio*' | LC_ALL=C sort); do
        mkdir -p "$ir/$(dirname "$f")"
        : > "$ir/$f"
    done
    mkdir -p "$T/usr/lib/xen2kvm-stub"
    (cd "$ir" && find . | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible | $cmd) > "$T/usr/lib/xen2kvm-stub/initrd-$v"
}

# make_disk LAYOUT: writes $OUT from the tree.
#   mbr-swap-ext3: xvda1 swap, xvda2 ext3 root (SLES 11 style)
#   mbr-swap-ext4: xvda1 swap, xvda2 ext4 root
#   mbr-ext4:      xvda1 ext4 root, xvda2 swap
#   mbr-btrfs:     xvda1 swap, xvda2 btrfs with SUSE subvolumes (@ default)
#   mbr-btrfs-snapper: xvda1 swap, xvda2 btrfs as SLES 12 SP1+/15 install
#                  it: @ and its subvolumes, the root is snapper's snapshot
#                  @/.snapshots/1/snapshot (the default subvolume), and the
#                  read-only snapshots 2 and 3 of it (a zypper pre/post pair)
#   mbr-boot-lvm:  xvda1 ext4 /boot (UUID $BOOT_UUID), xvda2 an LVM PV of
#                  VolGroup: lv_root ext4 (the given UUID), lv_swap (RHEL 6)
make_disk() {
    local layout="$1" fs_uuid="$2" tarred=""
    rm -f "$OUT"
    truncate -s 256M "$OUT"
    tar --numeric-owner -C "$T" -cf "$WORK/tree.tar" .
    {
        echo "run"
        echo "part-init /dev/sda mbr"
        case "$layout" in
            mbr-swap-ext3)
                echo "part-add /dev/sda p 2048 133119"
                echo "part-add /dev/sda p 133120 -1"
                echo "mkswap /dev/sda1"
                echo "mke2fs /dev/sda2 fstype:ext3 uuid:$fs_uuid"
                echo "mount /dev/sda2 /"
                ;;
            mbr-swap-ext4)
                echo "part-add /dev/sda p 2048 133119"
                echo "part-add /dev/sda p 133120 -1"
                echo "mkswap /dev/sda1 uuid:0b7e2d5c-6a41-4f0e-9b6a-3c1f0e8d2a11"
                echo "mke2fs /dev/sda2 fstype:ext4 uuid:$fs_uuid"
                echo "mount /dev/sda2 /"
                ;;
            mbr-ext4)
                echo "part-add /dev/sda p 2048 393215"
                echo "part-add /dev/sda p 393216 -1"
                echo "mke2fs /dev/sda1 fstype:ext4 uuid:$fs_uuid"
                echo "mkswap /dev/sda2"
                echo "mount /dev/sda1 /"
                ;;
            mbr-btrfs)
                echo "part-add /dev/sda p 2048 133119"
                echo "part-add /dev/sda p 133120 -1"
                echo "mkswap /dev/sda1"
                echo "mkfs-btrfs /dev/sda2"
                echo "set-uuid /dev/sda2 $fs_uuid"
                echo "mount /dev/sda2 /"
                echo "btrfs-subvolume-create /@"
                for sv in var home opt srv tmp usr/local .snapshots; do
                    echo "mkdir-p /@/$(dirname "$sv")"
                    echo "btrfs-subvolume-create /@/$sv"
                done
                echo "btrfs-subvolume-set-default 256 /"
                echo "umount /"
                echo "mount /dev/sda2 /"
                ;;
            mbr-btrfs-snapper)
                local subvols="var home opt srv tmp usr/local .snapshots"
                echo "part-add /dev/sda p 2048 133119"
                echo "part-add /dev/sda p 133120 -1"
                echo "mkswap /dev/sda1 uuid:0b7e2d5c-6a41-4f0e-9b6a-3c1f0e8d2a11"
                echo "mkfs-btrfs /dev/sda2"
                echo "set-uuid /dev/sda2 $fs_uuid"
                echo "mount /dev/sda2 /"
                echo "btrfs-subvolume-create /@"
                for sv in $subvols; do
                    echo "mkdir-p /@/$(dirname "$sv")"
                    echo "btrfs-subvolume-create /@/$sv"
                done
                echo "mkdir /@/.snapshots/1"
                echo "btrfs-subvolume-create /@/.snapshots/1/snapshot"
                echo "umount /"
                # The snapshot is the default subvolume: what a mount
                # without subvol= (the root's fstab line) gets.
                echo "mount-options subvol=@/.snapshots/1/snapshot /dev/sda2 /"
                # Subvolume ids count from 256 in creation order: @, the
                # subvolumes, then the snapshot.
                echo "btrfs-subvolume-set-default $((257 + $(wc -w <<< "$subvols"))) /"
                for sv in $subvols; do
                    echo "mkdir-p /$sv"
                    echo "mount-options subvol=@/$sv /dev/sda2 /$sv"
                done
                echo "tar-in $WORK/tree.tar /"
                for n in 2 3; do
                    echo "mkdir-p /.snapshots/$n"
                    echo "btrfs-subvolume-snapshot / /.snapshots/$n/snapshot ro:true"
                done
                tarred=1
                ;;
            mbr-boot-lvm)
                echo "part-add /dev/sda p 2048 206847"
                echo "part-add /dev/sda p 206848 -1"
                echo "mke2fs /dev/sda1 fstype:ext4 uuid:${BOOT_UUID:?}"
                echo "pvcreate /dev/sda2"
                echo "vgcreate VolGroup /dev/sda2"
                echo "lvcreate lv_root VolGroup 100"
                echo "lvcreate lv_swap VolGroup 16"
                echo "mke2fs /dev/VolGroup/lv_root fstype:ext4 uuid:$fs_uuid"
                echo "mkswap /dev/VolGroup/lv_swap"
                echo "mount /dev/VolGroup/lv_root /"
                echo "mkdir /boot"
                echo "mount /dev/sda1 /boot"
                ;;
        esac
        [ -n "${tarred:-}" ] || echo "tar-in $WORK/tree.tar /"
        echo "umount-all"
    } > "$WORK/session.gf"
    guestfish --rw -a "$OUT" -f "$WORK/session.gf" >&2
    echo "phony guest: no package manifest" > "$WORK/manifest.txt"
}
