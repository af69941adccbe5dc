#!/usr/bin/env bash
# Imitates: Windows Server 2008 R2 SP1 (x64) on Xen HVM with the Xen
# Project / XenServer PV drivers: XenBus and XenFilt (an upper filter of
# the System and IDE controller classes) at boot, xenvbd for the disks,
# xenvif/xennet for the NIC, xeniface and the XenAgent service. No virtio
# driver. Two partitions as Setup makes them: "System Reserved" (bootmgr,
# \Boot\BCD) and the system volume (\Windows\System32); the registry from
# system.reg and software.reg.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/../common/windows.sh"

mkdir -p "$WORK/reserved/Boot"
printf 'xen2kvm phony Windows file: bootmgr\n' > "$WORK/reserved/bootmgr"
printf 'xen2kvm phony Windows file: BCD\n' > "$WORK/reserved/Boot/BCD"
pe_stub Windows/System32/cmd.exe x86_64
placeholder Windows/System32/ntoskrnl.exe Windows/System32/winload.exe \
    Windows/System32/drivers/atapi.sys Windows/System32/drivers/intelide.sys \
    Windows/System32/drivers/xenbus.sys Windows/System32/drivers/xenfilt.sys \
    Windows/System32/drivers/xenvbd.sys Windows/System32/drivers/xenvif.sys \
    Windows/System32/drivers/xennet.sys Windows/System32/drivers/xeniface.sys \
    Windows/System32/pnputil.exe "Program Files/Citrix/XenTools/xenagent.exe"
mkdir -p "$T/Windows/System32/config" "$T/Users/Administrator"
hive Windows/System32/config/SYSTEM SYSTEM "$here/system.reg" 'HKEY_LOCAL_MACHINE\SYSTEM'
hive Windows/System32/config/SOFTWARE SOFTWARE "$here/software.reg" 'HKEY_LOCAL_MACHINE\SOFTWARE'
make_windows_disk reserved
