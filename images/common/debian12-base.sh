# The shared base tree of the Debian 12 test guests (sourced by debian12.sh).
# Only this file keys the cached base tarball: editing the guests'
# configuration does not re-run debootstrap.
MIRROR="${XEN2KVM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
MACHINE_ID="0123456789abcdef0123456789abcdef"

# Builds (or reuses) the shared base tree; prints the tarball's path.
base_tree() {
    local key tar tree
    key="$(sha256sum "$COMMON_DIR/debian12-base.sh" | cut -c1-16)"
    tar="$BASE_CACHE/debian12-base-$key.tar"
    if [[ -f "$tar" ]]; then
        log "reusing base tree $tar"
        echo "$tar"
        return
    fi
    mkdir -p "$BASE_CACHE"
    tree="$WORK/tree"
    rm -rf "$tree"
    log "debootstrap bookworm (minbase) into $tree"
    debootstrap --variant=minbase --include=systemd-sysv,udev,kmod,e2fsprogs \
        bookworm "$tree" "$MIRROR" >&2
    # No daemons may start in the chroot.
    printf '#!/bin/sh\nexit 101\n' > "$tree/usr/sbin/policy-rc.d"
    chmod 755 "$tree/usr/sbin/policy-rc.d"
    # The kernel's postinst would run dracut in the chroot, where it cannot be
    # host-only; the real initrd is built later in the appliance.
    mkdir -p "$tree/etc/kernel/postinst.d"
    log "apt-get install linux-image-amd64 dracut grub-pc (separate step: debootstrap pulls initramfs-tools)"
    mount -t proc proc "$tree/proc"
    trap 'umount "$tree/proc" 2>/dev/null || true' RETURN
    chroot "$tree" env DEBIAN_FRONTEND=noninteractive INITRD=No \
        apt-get install -y --no-install-recommends linux-image-amd64 dracut grub-pc >&2
    umount "$tree/proc"
    chroot "$tree" dpkg-query -W -f '${Package} ${Version}\n' > "$tree/var/lib/xen2kvm-manifest.txt"
    rm -f "$tree/usr/sbin/policy-rc.d"
    chroot "$tree" apt-get clean
    rm -rf "$tree"/var/lib/apt/lists/* "$tree"/boot/initrd.img-* "$tree"/var/log/*.log
    echo "$MACHINE_ID" > "$tree/etc/machine-id"
    echo "debian12" > "$tree/etc/hostname"
    # Empty root password on the serial console only: these are throw-away test guests.
    chroot "$tree" passwd -d root >&2
    log "packing base tree"
    tar --numeric-owner --xattrs -C "$tree" -cf "$tar.part" .
    mv "$tar.part" "$tar"
    rm -rf "$tree"
    echo "$tar"
}

