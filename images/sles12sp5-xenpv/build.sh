#!/usr/bin/env bash
# Imitates: a SLES 12 SP5 Xen PV guest (pvops kernel-default 4.12.14), GRUB 2
# in /boot/grub2 with GRUB_DEFAULT=saved, console=hvc0, a dracut.conf.d file
# adding the Xen drivers, stale DOMU_INITRD_MODULES, a getty@xvc0 link, and a
# data disk on /dev/xvdc1 in fstab (the domain's second disk is xvdc: a
# skipped letter, so under KVM it is vdb); ext4 root on xvda2.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/../common/phony.sh"
source "$here/../common/sles-grub2.sh"
root=5a3d6f1e-2c9b-4d7a-8e10-7f2b9c4e6d33
kver=4.12.14-122.37-default
sles_grub2 "$kver" "$root" "SLES 12-SP5"
put /etc/os-release <<'X'
NAME="SLES"
VERSION="12-SP5"
VERSION_ID="12.5"
PRETTY_NAME="SUSE Linux Enterprise Server 12 SP5"
ID="sles"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:suse:sles:12:sp5"
X
put /etc/fstab <<X
UUID=0b7e2d5c-6a41-4f0e-9b6a-3c1f0e8d2a11  swap  swap  defaults  0  0
UUID=$root  /     ext4  acl,user_xattr  1  1
/dev/xvdc1  /srv/data  xfs  defaults,nofail  1  2
X
kernel "$kver" pvops .ko xz "/boot/initrd-$kver" xen-blkfront xen-netfront
put /etc/dracut.conf.d/10-xen.conf <<'X'
# Xen paravirtual drivers for the root disk and NIC
add_drivers+=" xen-blkfront xen-netfront "
X
mkdir -p "$T/etc/systemd/system/getty.target.wants"
ln -s /usr/lib/systemd/system/getty@.service "$T/etc/systemd/system/getty.target.wants/getty@xvc0.service"
ln -s /usr/lib/systemd/system/getty@.service "$T/etc/systemd/system/getty.target.wants/getty@tty1.service"
printf 'console\ntty1\ntty2\ntty3\ntty4\ntty5\ntty6\nhvc0\n' | put /etc/securetty
make_disk mbr-swap-ext4 "$root"
