#!/usr/bin/env bash
# Imitates: a SLES 11 SP4 Xen PV guest with only kernel-xen (no
# kernel-default): inspect must say blocked, and name the package to install.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/../common/phony.sh"
source "$here/../common/sles11.sh"
sles11_tree xen-only
make_disk mbr-swap-ext3 "1c5e4f70-6b1a-4d9e-9a11-5e11e11e0002"
