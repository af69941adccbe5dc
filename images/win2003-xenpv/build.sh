#!/usr/bin/env bash
# Imitates: Windows Server 2003 R2 SP2 (x86) moved to Xen HVM with SUSE's
# Virtual Machine Driver Pack (VMDP) for Xen: the XenBus bus driver and the
# xenblk disk driver start at boot, xennet drives the NIC. No virtio driver.
# The file layout of the real thing (\WINDOWS\system32, boot.ini, NTLDR),
# the registry (system.reg, software.reg) with the keys inspection and
# conversion read: Select, ProductOptions, Services, the CriticalDeviceDatabase
# of the emulated IDE controller, class filters, CurrentVersion, DevicePath.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/../common/windows.sh"

placeholder NTLDR NTDETECT.COM
put boot.ini <<'INI'
[boot loader]
timeout=30
default=multi(0)disk(0)rdisk(0)partition(1)\WINDOWS
[operating systems]
multi(0)disk(0)rdisk(0)partition(1)\WINDOWS="Windows Server 2003 R2, Standard" /noexecute=optout /fastdetect
INI
pe_stub WINDOWS/system32/cmd.exe i386
placeholder WINDOWS/system32/ntoskrnl.exe WINDOWS/system32/hal.dll \
    WINDOWS/system32/drivers/atapi.sys WINDOWS/system32/drivers/intelide.sys \
    WINDOWS/system32/drivers/xenbus.sys WINDOWS/system32/drivers/xenblk.sys \
    WINDOWS/system32/drivers/xennet.sys WINDOWS/inf/xenbus.inf \
    "Program Files/Novell/XenDrv/uninstall.exe"
mkdir -p "$T/WINDOWS/system32/config" "$T/Documents and Settings/Administrator"
hive WINDOWS/system32/config/system SYSTEM "$here/system.reg" 'HKEY_LOCAL_MACHINE\SYSTEM'
hive WINDOWS/system32/config/software SOFTWARE "$here/software.reg" 'HKEY_LOCAL_MACHINE\SOFTWARE'
make_windows_disk xp-era
