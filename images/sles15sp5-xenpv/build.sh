#!/usr/bin/env bash
# Imitates: a SLES 15 SP5 Xen PV guest as installed: btrfs root on xvda2
# with SUSE's subvolumes (@, @/var, @/home, …, @/.snapshots) and snapper:
# the root is the default subvolume @/.snapshots/1/snapshot, beside it the
# read-only snapshots 2 and 3 (a zypper pre/post pair); swap on xvda1,
# pvops kernel-default 5.14.21 with .ko.xz modules and a zstd initrd without
# virtio, GRUB 2 (saved entry), console=hvc0 and a serial-getty@hvc0 link.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/../common/phony.sh"
source "$here/../common/sles-grub2.sh"
root=7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d
kver=5.14.21-150500.55.19-default
sles_grub2 "$kver" "$root" "SLES 15-SP5"
put /etc/os-release <<'X'
NAME="SLES"
VERSION="15-SP5"
VERSION_ID="15.5"
PRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"
ID="sles"
ID_LIKE="suse"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:suse:sles:15:sp5"
X
put /etc/fstab <<X
UUID=0b7e2d5c-6a41-4f0e-9b6a-3c1f0e8d2a11  swap                     swap   defaults                        0  0
UUID=$root  /                        btrfs  defaults                        0  0
UUID=$root  /var                     btrfs  subvol=@/var                    0  0
UUID=$root  /home                    btrfs  subvol=@/home                   0  0
UUID=$root  /opt                     btrfs  subvol=@/opt                    0  0
UUID=$root  /srv                     btrfs  subvol=@/srv                    0  0
UUID=$root  /tmp                     btrfs  subvol=@/tmp                    0  0
UUID=$root  /usr/local               btrfs  subvol=@/usr/local              0  0
UUID=$root  /.snapshots              btrfs  subvol=/@/.snapshots            0  0
X
for n in 1 2 3; do
    case $n in
        1) what='<type>single</type><description>first root filesystem</description>' ;;
        2) what='<type>pre</type><description>zypp(zypper)</description><userdata><key>important</key><value>no</value></userdata>' ;;
        3) what='<type>post</type><pre_num>2</pre_num><description></description>' ;;
    esac
    put "/.snapshots/$n/info.xml" <<X
<?xml version="1.0"?>
<snapshot>
  <num>$n</num>
  <date>2024-03-0$n 10:00:00</date>
  $what
  <cleanup>number</cleanup>
</snapshot>
X
done
mkdir -p "$T/etc/snapper/configs"
put /etc/snapper/configs/root <<'X'
SUBVOLUME="/"
FSTYPE="btrfs"
NUMBER_CLEANUP="yes"
X
kernel "$kver" pvops .ko.xz zstd "/boot/initrd-$kver" xen-blkfront xen-netfront
mkdir -p "$T/etc/systemd/system/getty.target.wants"
ln -s /usr/lib/systemd/system/serial-getty@.service "$T/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service"
make_disk mbr-btrfs-snapper "$root"
