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

/// How a Xen guest names its disks: `xvd` (pvops kernels), and `sd`/`hd`
/// (xenlinux kernels such as SLES 10/11's `kernel-xen` use the names of
/// the domain config, `disk = ['…,sda1,w']`; an HVM guest's emulated
/// disks). Under KVM every disk is a virtio disk, `vd`.
pub const DISK_PREFIXES: &[&str] = &["xvd", "sd", "hd"];

/// Where a device path starts in `s`: `/dev/xvd…`, `/dev/sd<letter>…`,
/// `/dev/hd<letter>…`, or udev's by-path link of a Xen disk.
pub fn find_block_path(s: &str) -> Option<usize> {
    let lettered = |prefix: &'static str| {
        s.match_indices(prefix).map(|(at, _)| at).find(|&at| {
            s.as_bytes()
                .get(at + prefix.len())
                .is_some_and(u8::is_ascii_lowercase)
        })
    };
    [
        s.find("/dev/xvd"),
        lettered("/dev/sd"),
        lettered("/dev/hd"),
        s.find("/dev/disk/by-path/xen-vbd-"),
    ]
    .into_iter()
    .flatten()
    .min()
}

/// One disk as a Xen guest names it: the disk's number (`a` = 0, `z` = 25,
/// `aa` = 26), whatever the prefix, and a partition number, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct XenDisk {
    /// The disk's number: its letters read as a bijective base-26 number.
    pub disk: u32,
    /// The partition, `None` for the whole disk.
    pub part: Option<u32>,
}

impl XenDisk {
    /// Parses a name without `/dev/` (`xvda`, `xvdb12`, `sda1`, `hdc`).
    pub fn parse_name(name: &str) -> Option<XenDisk> {
        let rest = DISK_PREFIXES.iter().find_map(|p| name.strip_prefix(p))?;
        let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        let (l, digits) = rest.split_at(letters);
        if letters == 0 || letters > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let disk = l
            .bytes()
            .fold(0u32, |n, b| n * 26 + u32::from(b - b'a') + 1)
            - 1;
        let part = match digits {
            "" => None,
            d => Some(d.parse().ok().filter(|&p| p > 0)?),
        };
        Some(XenDisk { disk, part })
    }

    /// Parses a device path: `/dev/xvda2`, `/dev/sdb`, or udev's
    /// `/dev/disk/by-path/xen-vbd-<id>[-partN]` (Xen's virtual device
    /// number: `202<<8 | disk<<4 | partition`, or the extended form
    /// `1<<28 | disk<<8 | partition` for disks beyond the 16th).
    pub fn parse_path(path: &str) -> Option<XenDisk> {
        if let Some(name) = path.strip_prefix("/dev/") {
            if !name.contains('/') {
                return XenDisk::parse_name(name);
            }
        }
        let id = path.strip_prefix("/dev/disk/by-path/xen-vbd-")?;
        let (devid, part) = match id.split_once("-part") {
            Some((d, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                (d, p.parse::<u32>().ok().filter(|&p| p > 0))
            }
            Some(_) => return None,
            None => (id, None),
        };
        let devid: u32 = devid.parse().ok()?;
        let (disk, dev_part) = if devid & (1 << 28) != 0 {
            ((devid >> 8) & 0xfffff, devid & 0xff)
        } else if devid >> 8 == 202 {
            ((devid & 0xff) >> 4, devid & 0xf)
        } else {
            return None;
        };
        let part = match (part, dev_part) {
            (None, 0) => None,
            (None, n) => Some(n),
            (Some(p), 0) => Some(p),
            _ => return None,
        };
        Some(XenDisk { disk, part })
    }
}

/// A disk's letters (`0` → `a`, `26` → `aa`).
pub fn disk_letters(mut n: u32) -> String {
    let mut name = String::new();
    loop {
        name.insert(0, char::from(b'a' + (n % 26) as u8));
        if n < 26 {
            break name;
        }
        n = n / 26 - 1;
    }
}

/// Which virtio disk each Xen disk becomes.
///
/// Under KVM the guest names its virtio disks in the domain's order
/// (`vda`, `vdb`, … — PCI order, which is the order of the domain's
/// `<disk>` elements), whatever the Xen names were: a guest whose disks
/// were `xvda` and `xvdc` sees `vda` and `vdb`, and a filesystem given to
/// Xen as the partition `xvda2` (xen-tools' one image per partition) is the
/// whole disk `vdX`. With the Xen name of each disk, in the domain's order
/// ([`DiskMap::from_targets`]), every Xen name is mapped by that order;
/// without it ([`DiskMap::default`]) the letter is kept (`xvdc1` →
/// `vdc1`), which is right for a guest whose disks are `xvda`, `xvdb`, ….
///
/// Two things only the appliance learns complete it: which partition
/// image was re-laid into a new partitioned disk ([`DiskMap::set_relaid`]:
/// `xvda2` is then `vda1`), and the filesystems' UUIDs
/// ([`DiskMap::add_uuids`]): when the names change under KVM, a filesystem
/// with a UUID is named by it ([`DiskMap::stable_name`]), wherever virtio
/// puts its disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskMap {
    targets: Vec<XenDisk>,
    /// The targets as the domain spells them.
    names: Vec<String>,
    /// Targets (by index) re-laid as partition 1 of a new disk.
    relaid: Vec<usize>,
    /// `UUID=…` of the filesystems (and swap areas) on the Xen devices.
    uuids: std::collections::BTreeMap<XenDisk, String>,
}

impl DiskMap {
    /// The letter-keeping map (no Xen names known).
    pub const BY_LETTER: DiskMap = DiskMap {
        targets: Vec::new(),
        names: Vec::new(),
        relaid: Vec::new(),
        uuids: std::collections::BTreeMap::new(),
    };

    /// The map of a domain whose disks, in order, have these Xen targets
    /// (`xvda`, `xvdc`; `xvda2`, `xvda1`). An empty list keeps letters.
    pub fn from_targets<S: AsRef<str>>(targets: &[S]) -> Result<DiskMap, String> {
        let mut out: Vec<XenDisk> = Vec::new();
        let mut names = Vec::new();
        for t in targets {
            let t = t.as_ref();
            names.push(t.strip_prefix("/dev/").unwrap_or(t).to_owned());
            let d = XenDisk::parse_name(t.strip_prefix("/dev/").unwrap_or(t))
                .ok_or_else(|| format!("{t:?} is not a Xen disk name (xvdX, xvdXN, sdX, hdX)"))?;
            if out.contains(&d) {
                return Err(format!("two disks have the Xen name {t}"));
            }
            out.push(d);
        }
        Ok(DiskMap {
            targets: out,
            names,
            ..DiskMap::default()
        })
    }

    /// Each disk's Xen name and the virtio name the guest sees it by
    /// (`("xvdc", "vdb")`, a re-laid `("xvda2", "vda1")`), in the domain's
    /// order; empty when not known.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let one = if self.relaid.contains(&i) { "1" } else { "" };
                (n.clone(), format!("vd{}{one}", disk_letters(i as u32)))
            })
            .collect()
    }

    /// The Xen target of the domain's `index`-th disk, when known.
    pub fn target(&self, index: usize) -> Option<(XenDisk, &str)> {
        Some((*self.targets.get(index)?, self.names.get(index)?.as_str()))
    }

    /// Says that the `index`-th disk, a bare filesystem, now is partition 1
    /// of a new disk: its Xen name maps to `vdX1`.
    pub fn set_relaid(&mut self, index: usize) {
        if !self.relaid.contains(&index) {
            self.relaid.push(index);
        }
    }

    /// Whether some disk was re-laid.
    pub fn any_relaid(&self) -> bool {
        !self.relaid.is_empty()
    }

    /// The Xen device an appliance (libguestfs API) device stands for:
    /// disks are `/dev/sda`, `/dev/sdb`, … in the domain's order, so
    /// `/dev/sdb1` is partition 1 of the second disk, and a whole-disk
    /// filesystem (or a re-laid one's partition 1) is the partition image
    /// the domain names. `None` when the names are not known.
    pub fn xen_of_api(&self, api: &str) -> Option<XenDisk> {
        let probe = XenDisk::parse_name(&format!("xvd{}", api.strip_prefix("/dev/sd")?))?;
        let index = probe.disk as usize;
        let target = *self.targets.get(index)?;
        if self.relaid.contains(&index) {
            return (probe.part == Some(1)).then_some(target);
        }
        match (target.part, probe.part) {
            (None, part) => Some(XenDisk {
                disk: target.disk,
                part,
            }),
            (Some(_), None) => Some(target),
            (Some(_), Some(_)) => None,
        }
    }

    /// Records the UUIDs of the guest's filesystems and swap areas, by
    /// appliance device (see [`DiskMap::xen_of_api`]); a UUID that is not
    /// plain (hex digits and dashes) is ignored.
    pub fn add_uuids(&mut self, found: &[(String, String)]) {
        for (api, uuid) in found {
            let plain =
                !uuid.is_empty() && uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if let (Some(d), true) = (self.xen_of_api(api), plain) {
                self.uuids.insert(d, format!("UUID={uuid}"));
            }
        }
    }

    /// The name that finds a Xen device's filesystem whatever virtio calls
    /// its disk (`UUID=…`), where a device spec may be one (fstab's first
    /// field, `root=`, `resume=`): only for a device whose name changes
    /// more than its prefix under KVM (`xvdc1` → `vdb1`, `xvda2` → `vda1`);
    /// else the virtio path is as good, and the smaller change.
    pub fn stable_name(&self, d: XenDisk) -> Option<&str> {
        let renamed = self.kvm_path(d).ok()? != DiskMap::BY_LETTER.kvm_path(d).ok()?;
        if !renamed {
            return None;
        }
        self.uuids.get(&d).map(String::as_str)
    }

    /// Whether the Xen names are known (else letters are kept).
    pub fn is_known(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Whether some Xen names change letters or lose their partition
    /// number under KVM (the mapping is not the letter-keeping one).
    pub fn reorders(&self) -> bool {
        self.any_relaid()
            || self
                .targets
                .iter()
                .enumerate()
                .any(|(i, t)| t.disk != i as u32 || t.part.is_some())
    }

    /// The KVM path of a Xen disk (`/dev/vdb1`), or why the domain's disks
    /// do not give one (the editor then keeps the letter, and warns).
    pub fn kvm_path(&self, d: XenDisk) -> Result<String, String> {
        let part = |p: Option<u32>| p.map(|p| p.to_string()).unwrap_or_default();
        if self.targets.is_empty() {
            return Ok(format!("/dev/vd{}{}", disk_letters(d.disk), part(d.part)));
        }
        if let Some(i) = self
            .targets
            .iter()
            .position(|t| t.disk == d.disk && t.part.is_none())
        {
            // A whole-disk filesystem re-laid: it is partition 1 now.
            let part = match (self.relaid.contains(&i), d.part) {
                (true, None) => "1".to_owned(),
                (_, p) => part(p),
            };
            return Ok(format!("/dev/vd{}{part}", disk_letters(i as u32)));
        }
        if let Some(i) = self.targets.iter().position(|t| *t == d) {
            let one = if self.relaid.contains(&i) { "1" } else { "" };
            return Ok(format!("/dev/vd{}{one}", disk_letters(i as u32)));
        }
        let xen = format!("xvd{}", disk_letters(d.disk));
        Err(
            if d.part.is_none() && self.targets.iter().any(|t| t.disk == d.disk) {
                format!("the domain has partitions of {xen} as disks, not the whole disk")
            } else {
                format!("the domain has no disk {xen}{}", part(d.part))
            },
        )
    }
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

/// Those of [`DEVICE_FILES`] that are caches their tools rebuild on the
/// next scan (LVM's persistent filter cache, blkid's cache): one naming Xen
/// disks is removed, not rewritten — a rewritten cache is still stale (a
/// `by-path` name of a Xen disk has no virtio spelling).
pub const CACHE_FILES: &[&str] = &[
    "/etc/lvm/cache/.cache",
    "/etc/blkid.tab",
    "/etc/blkid/blkid.tab",
];

/// Those of [`DEVICE_FILES`] whose fields are device specs, where `UUID=…`
/// may stand for a path.
pub const SPEC_FILES: &[&str] = &[
    "/etc/fstab",
    "/etc/crypttab",
    "/etc/initramfs-tools/conf.d/resume",
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
        assert!(is_block_word("root=/dev/sda1") && is_block_word("/dev/hdc"));
        assert!(!is_block_word("/dev/shm") && !is_block_word("/dev/sd*"));
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
    fn disk_names() {
        let d = |disk, part| Some(XenDisk { disk, part });
        assert_eq!(XenDisk::parse_name("xvda"), d(0, None));
        assert_eq!(XenDisk::parse_name("sdb12"), d(1, Some(12)));
        assert_eq!(XenDisk::parse_name("hdc1"), d(2, Some(1)));
        assert_eq!(XenDisk::parse_name("xvdaa1"), d(26, Some(1)));
        assert_eq!(XenDisk::parse_name("xvdz"), d(25, None));
        for bad in ["xvd", "vda", "xvda0", "xvdA", "sda1x", "hd", "xvdaaaaa"] {
            assert_eq!(XenDisk::parse_name(bad), None, "{bad}");
        }
        assert_eq!(XenDisk::parse_path("/dev/xvda2"), d(0, Some(2)));
        assert_eq!(
            XenDisk::parse_path("/dev/disk/by-path/xen-vbd-51712-part2"),
            d(0, Some(2))
        );
        assert_eq!(
            XenDisk::parse_path("/dev/disk/by-path/xen-vbd-51728"),
            d(1, None)
        );
        assert_eq!(
            XenDisk::parse_path("/dev/disk/by-path/xen-vbd-51713"),
            d(0, Some(1))
        );
        assert_eq!(
            XenDisk::parse_path("/dev/disk/by-path/xen-vbd-268439552-part1"),
            d(16, Some(1))
        );
        assert_eq!(XenDisk::parse_path("/dev/disk/by-path/xen-vbd-oops"), None);
        for n in [0, 25, 26, 27, 701, 702] {
            let name = format!("xvd{}", disk_letters(n));
            assert_eq!(XenDisk::parse_name(&name), d(n, None), "{name}");
        }
        assert_eq!(find_block_path("root=/dev/sda1"), Some(5));
        assert_eq!(find_block_path("/dev/shm /dev/hdb"), Some(9));
        assert_eq!(find_block_path("/dev/sd* /dev/vda"), None);
    }

    #[test]
    fn disk_maps() {
        let p = |m: &DiskMap, s: &str| m.kvm_path(XenDisk::parse_path(s).unwrap());
        let letters = DiskMap::default();
        assert_eq!(p(&letters, "/dev/xvdc1").unwrap(), "/dev/vdc1");
        assert_eq!(p(&letters, "/dev/sda1").unwrap(), "/dev/vda1");
        assert!(!letters.reorders() && !letters.is_known());
        // Skipped letters: xvda, xvdc are vda, vdb under KVM.
        let skipped = DiskMap::from_targets(&["xvda", "xvdc"]).unwrap();
        assert!(skipped.reorders());
        assert_eq!(
            skipped.pairs(),
            [
                ("xvda".to_owned(), "vda".to_owned()),
                ("xvdc".to_owned(), "vdb".to_owned())
            ]
        );
        assert_eq!(p(&skipped, "/dev/xvdc1").unwrap(), "/dev/vdb1");
        assert_eq!(p(&skipped, "/dev/sda").unwrap(), "/dev/vda");
        assert_eq!(p(&skipped, "/dev/hdc").unwrap(), "/dev/vdb");
        assert_eq!(
            p(&skipped, "/dev/xvdb1").unwrap_err(),
            "the domain has no disk xvdb1"
        );
        // xen-tools: one image per partition.
        let parts = DiskMap::from_targets(&["xvda2", "/dev/xvda1"]).unwrap();
        assert_eq!(p(&parts, "/dev/xvda2").unwrap(), "/dev/vda");
        assert_eq!(p(&parts, "/dev/xvda1").unwrap(), "/dev/vdb");
        assert!(p(&parts, "/dev/xvda")
            .unwrap_err()
            .contains("partitions of xvda"));
        assert!(p(&parts, "/dev/xvda3").is_err());
        assert_eq!(
            parts.stable_name(XenDisk::parse_name("xvda2").unwrap()),
            None
        );
        // Re-laid into a new disk (partition 1), and named by UUID.
        let mut relaid = parts.clone();
        relaid.set_relaid(0);
        assert_eq!(p(&relaid, "/dev/xvda2").unwrap(), "/dev/vda1");
        assert_eq!(p(&relaid, "/dev/xvda1").unwrap(), "/dev/vdb");
        assert_eq!(relaid.pairs()[0], ("xvda2".to_owned(), "vda1".to_owned()));
        assert_eq!(relaid.xen_of_api("/dev/sda"), None);
        assert_eq!(relaid.xen_of_api("/dev/sda1"), XenDisk::parse_name("xvda2"));
        assert_eq!(relaid.xen_of_api("/dev/sdb"), XenDisk::parse_name("xvda1"));
        assert_eq!(relaid.xen_of_api("/dev/sdc"), None);
        relaid.add_uuids(&[
            ("/dev/sda1".to_owned(), "5e1f2d3c-4b5a".to_owned()),
            ("/dev/sdb".to_owned(), "0a0b".to_owned()),
            ("/dev/sdb1".to_owned(), "ffff".to_owned()),
            ("/dev/sdc".to_owned(), "eeee".to_owned()),
        ]);
        let stable = |m: &DiskMap, n: &str| {
            m.stable_name(XenDisk::parse_name(n).unwrap())
                .map(str::to_owned)
        };
        assert_eq!(
            stable(&relaid, "xvda2").as_deref(),
            Some("UUID=5e1f2d3c-4b5a")
        );
        assert_eq!(stable(&relaid, "xvda1").as_deref(), Some("UUID=0a0b"));
        assert_eq!(stable(&relaid, "xvda3"), None);
        // Whole disks: appliance partitions are the Xen disk's; a name that
        // does not change is not replaced by its UUID.
        let mut skipped2 = skipped.clone();
        skipped2.add_uuids(&[
            ("/dev/sdb1".to_owned(), "abcd".to_owned()),
            ("/dev/sda1".to_owned(), "x y".to_owned()),
        ]);
        assert_eq!(stable(&skipped2, "xvdc1").as_deref(), Some("UUID=abcd"));
        assert_eq!(stable(&skipped2, "xvda1"), None);
        let mut ident = DiskMap::from_targets(&["xvda"]).unwrap();
        ident.add_uuids(&[("/dev/sda1".to_owned(), "abcd".to_owned())]);
        assert_eq!(stable(&ident, "xvda1"), None);
        ident.set_relaid(0);
        assert_eq!(p(&ident, "/dev/xvda").unwrap(), "/dev/vda1");
        assert_eq!(ident.xen_of_api("/dev/sda1"), XenDisk::parse_name("xvda"));
        let same = DiskMap::from_targets(&["xvda", "sdb"]).unwrap();
        assert!(same.is_known() && !same.reorders());
        assert!(DiskMap::from_targets(&["xvda", "sda"])
            .unwrap_err()
            .contains("two disks"));
        assert!(DiskMap::from_targets(&["vda"]).is_err());
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
