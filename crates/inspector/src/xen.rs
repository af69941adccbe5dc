//! What Xen looks like inside a guest: the one model of it.
//!
//! [`facts`](crate::facts) scans a guest with these predicates and file
//! lists, and the editor's rules rewrite with the same ones, so that what
//! `inspect` reports as a Xen-ism is exactly what `convert` fixes (and a
//! test proves that after `convert` nothing is left). A new Xen-ism is added
//! here, once: a predicate, a file list, a [`XenismKind`].
//!
//! Pure: names and words in, answers out.

/// The kinds of Xen-specific settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum XenismKind {
    /// A Xen disk name (`/dev/xvda1`, `xen-vbd-…`) in a config file.
    BlockDevice,
    /// A Xen console (`hvc0`, `xvc0`, `xencons=`) in a config or command line.
    Console,
    /// A Xen front-end driver in the initrd configuration.
    InitrdDriver,
    /// A kernel that only runs on Xen.
    XenOnlyKernel,
    /// A systemd getty unit enabled on a Xen console.
    GettyLink,
    /// A modprobe alias that names a Xen driver.
    ModprobeAlias,
    /// A setting that makes the next kernel update boot a Xen kernel again
    /// (RHEL's `DEFAULTKERNEL=kernel-xen`).
    KernelPolicy,
    /// A network configuration that names a NIC by its Xen name (`enX0`,
    /// or `eth0` where udev names a virtio NIC `ens3`), which nothing pins:
    /// under KVM the configuration no longer applies
    /// ([`network`](crate::network)).
    NetworkName,
    /// A Xen guest agent enabled at boot (XenServer's
    /// `xe-linux-distribution`, XCP-ng's `xen-guest-agent`): under KVM there
    /// is no xenstore for it to talk to.
    GuestTools,
}

impl XenismKind {
    /// The name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            XenismKind::BlockDevice => "block-device",
            XenismKind::Console => "console",
            XenismKind::InitrdDriver => "initrd-driver",
            XenismKind::XenOnlyKernel => "xen-only-kernel",
            XenismKind::GettyLink => "getty-link",
            XenismKind::ModprobeAlias => "modprobe-alias",
            XenismKind::KernelPolicy => "kernel-policy",
            XenismKind::NetworkName => "network-name",
            XenismKind::GuestTools => "guest-tools",
        }
    }
}

/// Xen front-end drivers of every era: xenlinux (`xenblk`, `xennet`), SUSE's
/// PV-on-HVM KMP (`xen-vbd`, `xen-vnif`), pvops (`xen-blkfront`,
/// `xen-netfront`, and modinfo's underscore spelling), and SUSE mkinitrd's
/// modaliases.
pub const DRIVERS: &[&str] = &[
    "xenblk",
    "xennet",
    "xen-vbd",
    "xen-vnif",
    "xen-blkfront",
    "xen-netfront",
    "xen_blkfront",
    "xen_netfront",
    "xen:vbd",
    "xen:vif",
];

/// Whether `name` is a Xen front-end driver.
pub fn is_driver(name: &str) -> bool {
    DRIVERS.contains(&name)
}

/// Whether a shell-ish value (`"ext3 xenblk"`, `xenblk,virtio`) names a
/// Xen driver.
pub fn names_driver(value: &str) -> bool {
    value
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
        .any(is_driver)
}

/// Whether a tty name (`hvc0`, `/dev/xvc0`) is a Xen console: `hvc` or
/// `xvc` followed by digits.
pub fn is_console_tty(name: &str) -> bool {
    let name = name.strip_prefix("/dev/").unwrap_or(name);
    ["xvc", "hvc"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Whether a kernel argument sends the console to Xen: `xencons=…`, or
/// `console=` naming a Xen console (`console=hvc0`, `console=xvc0,9600`).
pub fn is_console_arg(arg: &str) -> bool {
    let arg = arg.trim_matches(|c| c == '"' || c == '\'');
    arg.starts_with("xencons=")
        || arg
            .strip_prefix("console=")
            .is_some_and(|c| is_console_tty(c.split(',').next().unwrap_or(c)))
}

/// Whether a systemd unit name is a getty on a Xen console
/// (`getty@hvc0.service`, `serial-getty@xvc0.service`).
pub fn is_getty_unit(unit: &str) -> bool {
    let Some(stem) = unit.strip_suffix(".service") else {
        return false;
    };
    let Some((kind, tty)) = stem.split_once('@') else {
        return false;
    };
    matches!(kind, "getty" | "serial-getty" | "console-getty") && is_console_tty(tty)
}

/// Where a device path starts in `s`: `/dev/xvd…` or udev's by-path link of
/// a Xen disk.
pub fn find_block_path(s: &str) -> Option<usize> {
    [s.find("/dev/xvd"), s.find("/dev/disk/by-path/xen-vbd-")]
        .into_iter()
        .flatten()
        .min()
}

/// Whether a word (`root=/dev/xvda1`, `(hd0) /dev/xvda`, a by-path link)
/// names a Xen disk.
pub fn is_block_word(word: &str) -> bool {
    find_block_path(word).is_some()
}

/// Whether an lvm.conf or mdadm.conf line names Xen disks (in a filter or a
/// `DEVICE` line: `a|/dev/xvd.*|`, `/dev/xvd*`).
pub fn names_block_pattern(line: &str) -> bool {
    line.contains("xvd")
}

/// Files that name disks one per field or line (fstab, crypttab, GRUB's
/// device.map, SUSE's grub_installdevice, initramfs-tools' `RESUME=`,
/// debconf's answers — `grub-pc/install_devices`, where the next `grub-pc`
/// upgrade installs GRUB —, and the LVM and blkid caches): Xen names in
/// them are [`XenismKind::BlockDevice`].
pub const DEVICE_FILES: &[&str] = &[
    "/etc/fstab",
    "/etc/crypttab",
    "/boot/grub/device.map",
    "/boot/grub2/device.map",
    "/boot/grub2-efi/device.map",
    "/etc/default/grub_installdevice",
    "/etc/initramfs-tools/conf.d/resume",
    "/var/cache/debconf/config.dat",
    // Caches that remember the Xen names: LVM's persistent filter cache
    // (`valid_devices`, RHEL 5/6 era), LVM's devices file (newer LVM:
    // `IDNAME=`/`DEVNAME=` of the PVs), and blkid's cache (RHEL 5 and 6).
    "/etc/lvm/cache/.cache",
    "/etc/lvm/devices/system.devices",
    "/etc/blkid.tab",
    "/etc/blkid/blkid.tab",
];

/// mdadm's configuration (its `DEVICE` lines).
pub const MDADM_FILES: &[&str] = &["/etc/mdadm.conf", "/etc/mdadm/mdadm.conf"];

/// LVM's configuration (its `filter` and `global_filter`).
pub const LVM_CONF: &str = "/etc/lvm/lvm.conf";

/// Whether an lvm.conf key selects devices by name (and so may name Xen's).
pub fn is_lvm_device_key(key: &str) -> bool {
    matches!(
        key,
        "filter" | "global_filter" | "types" | "preferred_names"
    )
}

/// GRUB 2's defaults (`GRUB_CMDLINE_*`).
pub const DEFAULT_GRUB: &str = "/etc/default/grub";

/// Snippets `grub-mkconfig` sources after [`DEFAULT_GRUB`] (`*.cfg`).
pub const DEFAULT_GRUB_D: &str = "/etc/default/grub.d";

/// SUSE's bootloader settings (`*_APPEND`).
pub const SYSCONFIG_BOOTLOADER: &str = "/etc/sysconfig/bootloader";

/// Generated GRUB 2 menus (regenerated by `grub-mkconfig`, not edited).
pub const GRUB2_CONFIGS: &[&str] = &["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"];

/// GRUB legacy menus (edited in place): `/boot/...`, and `/grub/...` for a
/// separate `/boot` mounted elsewhere. `menu.lst` is often a symlink to
/// `grub.conf` and is then read once, through its target.
pub const LEGACY_MENUS: &[&str] = &[
    "/boot/grub/menu.lst",
    "/boot/grub/grub.conf",
    "/grub/menu.lst",
    "/grub/grub.conf",
];

/// Login consoles: `securetty` (a tty per line).
pub const SECURETTY: &str = "/etc/securetty";

/// sysvinit's getty lines.
pub const INITTAB: &str = "/etc/inittab";

/// Upstart's tty1 job (Ubuntu, RHEL 6; `/etc/event.d` on older upstart),
/// which xen-tools points at the Xen console.
pub const UPSTART_TTY1: &[&str] = &["/etc/init/tty1.conf", "/etc/event.d/tty1"];

/// Where systemd getty units are enabled.
pub const GETTY_DIRS: &[&str] = &[
    "/etc/systemd/system/getty.target.wants",
    "/etc/systemd/system/multi-user.target.wants",
];

/// Xen guest agents, by service name: XenServer/XCP-ng's
/// `xe-guest-utilities` (`xe-linux-distribution`, which starts `xe-daemon`)
/// and XCP-ng's `xen-guest-agent`.
pub const GUEST_TOOLS: &[&str] = &["xe-linux-distribution", "xen-guest-agent"];

/// Where systemd units are enabled (every `*.wants` directory of it).
pub const SYSTEMD_SYSTEM: &str = "/etc/systemd/system";

/// SysV init's runlevel directories (Debian's, and RHEL's under `rc.d`).
pub const RC_DIRS: &[&str] = &[
    "/etc/rc0.d",
    "/etc/rc1.d",
    "/etc/rc2.d",
    "/etc/rc3.d",
    "/etc/rc4.d",
    "/etc/rc5.d",
    "/etc/rc6.d",
    "/etc/rc.d/rc0.d",
    "/etc/rc.d/rc1.d",
    "/etc/rc.d/rc2.d",
    "/etc/rc.d/rc3.d",
    "/etc/rc.d/rc4.d",
    "/etc/rc.d/rc5.d",
    "/etc/rc.d/rc6.d",
];

/// Whether a systemd unit name (`xe-linux-distribution.service`) or a
/// SysV start link (`S99xe-linux-distribution`) starts a Xen guest agent.
pub fn is_guest_tool_link(name: &str) -> bool {
    let service = match name.strip_suffix(".service") {
        Some(unit) => unit,
        None => match name.strip_prefix('S') {
            Some(rest) if rest.len() > 2 && rest.as_bytes()[..2].iter().all(u8::is_ascii_digit) => {
                &rest[2..]
            }
            _ => return false,
        },
    };
    GUEST_TOOLS.contains(&service)
}

/// SUSE's `INITRD_MODULES` and `DOMU_INITRD_MODULES`; RHEL's
/// `DEFAULTKERNEL` (the package whose updates become the default entry).
pub const SYSCONFIG_KERNEL: &str = "/etc/sysconfig/kernel";

/// Whether a kernel package name is a Xen-only flavor (`kernel-xen`,
/// `kernel-xenU`): as RHEL's `DEFAULTKERNEL`, the next kernel update makes
/// it the default boot entry again.
pub fn is_xen_kernel_package(name: &str) -> bool {
    matches!(name, "kernel-xen" | "kernel-xenU")
}

/// dracut's main configuration; `*.conf` files of [`DRACUT_CONF_D`] too.
pub const DRACUT_CONF: &str = "/etc/dracut.conf";

/// dracut's configuration directory.
pub const DRACUT_CONF_D: &str = "/etc/dracut.conf.d";

/// initramfs-tools' module list.
pub const INITRAMFS_MODULES: &str = "/etc/initramfs-tools/modules";

/// modprobe's old single file; `*.conf` files of [`MODPROBE_D`] too.
pub const MODPROBE_CONF: &str = "/etc/modprobe.conf";

/// modprobe's configuration directory.
pub const MODPROBE_D: &str = "/etc/modprobe.d";

/// Whether a `/etc/default/grub` key is a Linux command line the guest
/// boots with (`GRUB_CMDLINE_LINUX`, `…_DEFAULT`, `…_RECOVERY`), not a Xen
/// hypervisor's (`GRUB_CMDLINE_XEN…`, for a dom0: left as it is).
pub fn is_guest_cmdline_key(key: &str) -> bool {
    key.starts_with("GRUB_CMDLINE_LINUX") && !key.contains("XEN")
}

/// Whether a SUSE `/etc/sysconfig/bootloader` key is a guest kernel's
/// command line (every `*_APPEND` but the hypervisor's `XEN_APPEND`).
pub fn is_guest_append_key(key: &str) -> bool {
    key.ends_with("_APPEND") && key != "XEN_APPEND"
}

/// Whether a GRUB legacy `kernel` image is the Xen hypervisor
/// (`/boot/xen.gz`, `/boot/xen-4.4.gz`): that entry is the Xen host's, and
/// it and its `module` lines are left as they are.
pub fn is_hypervisor_image(image: &str) -> bool {
    image.contains("xen.gz") || image.contains("xen-") && image.ends_with(".gz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consoles() {
        assert!(is_console_tty("hvc0") && is_console_tty("/dev/xvc1"));
        assert!(!is_console_tty("hvc") && !is_console_tty("ttyS0") && !is_console_tty("hvcx"));
        assert!(is_console_arg("console=hvc0") && is_console_arg("console=xvc0,9600"));
        assert!(is_console_arg("xencons=xvc0") && is_console_arg("\"console=hvc0\""));
        assert!(!is_console_arg("console=ttyS0,115200") && !is_console_arg("console=tty0"));
        assert!(is_getty_unit("getty@hvc0.service"));
        assert!(is_getty_unit("serial-getty@xvc0.service"));
        assert!(!is_getty_unit("getty@tty1.service"));
        assert!(!is_getty_unit("serial-getty@ttyS0.service"));
        assert!(!is_getty_unit("getty@hvc.service"));
        assert!(is_guest_tool_link("xe-linux-distribution.service"));
        assert!(is_guest_tool_link("S99xe-linux-distribution"));
        assert!(is_guest_tool_link("xen-guest-agent.service"));
        assert!(!is_guest_tool_link("K01xe-linux-distribution"));
        assert!(!is_guest_tool_link("Sxe-linux-distribution"));
        assert!(!is_guest_tool_link("sshd.service"));
    }

    #[test]
    fn disks_and_drivers() {
        assert!(is_block_word("root=/dev/xvda1"));
        assert!(is_block_word("/dev/disk/by-path/xen-vbd-51712-part2"));
        assert!(!is_block_word("UUID=abc") && !is_block_word("/dev/vda1"));
        assert!(names_driver("INITRD_MODULES=\"ext3 xenblk\""));
        assert!(names_driver("xen-blkfront,virtio_blk"));
        assert!(!names_driver("INITRD_MODULES=\"virtio_blk\""));
        assert!(is_hypervisor_image("/boot/xen.gz") && is_hypervisor_image("/xen-4.4.gz"));
        assert!(!is_hypervisor_image("/boot/vmlinuz-xen"));
        assert!(is_guest_cmdline_key("GRUB_CMDLINE_LINUX_DEFAULT"));
        assert!(!is_guest_cmdline_key("GRUB_CMDLINE_XEN_DEFAULT"));
        assert!(is_guest_append_key("XEN_KERNEL_APPEND") && !is_guest_append_key("XEN_APPEND"));
    }

    #[test]
    fn kinds_have_distinct_names() {
        let all = [
            XenismKind::BlockDevice,
            XenismKind::Console,
            XenismKind::InitrdDriver,
            XenismKind::XenOnlyKernel,
            XenismKind::GettyLink,
            XenismKind::ModprobeAlias,
            XenismKind::KernelPolicy,
            XenismKind::NetworkName,
            XenismKind::GuestTools,
        ];
        let mut names: Vec<&str> = all.iter().map(|k| k.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }
}
