#!/usr/bin/env bash
# Imitates: a SLES 11 SP4 Xen PV guest with kernel-xen and kernel-default,
# GRUB legacy menu.lst defaulting to the xen kernel, INITRD_MODULES and
# DOMU_INITRD_MODULES with Xen drivers, inittab x0 on xvc0, securetty xvc0.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/../common/phony.sh"
source "$here/../common/sles11.sh"
sles11_tree with-default
make_disk mbr-swap-ext3 "1c5e4f70-6b1a-4d9e-9a11-5e11e11e0001"
