//! What a guest is and every Xen-specific setting in it, read from its files
//! through `&dyn GuestFs`, and the readiness verdict.
//!
//! Pure over the trait: the same code reads a disk in the appliance and a
//! directory tree in tests. Each Xen-ism carries its file and line, so that
//! the report (and later the converter) can point at it.

use std::io;

use xen2kvm_vfs::{GuestFs, GuestPath};

use crate::bootconf::{self, BootEntry};
use crate::initrd;

/// Everything `inspect` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Distribution, version, product name.
    pub os: Os,
    /// The init system (`systemd`, `sysvinit`, `upstart`, `unknown`).
    pub init: &'static str,
    /// Kernels in `/boot`, newest first.
    pub kernels: Vec<Kernel>,
    /// The bootloader and its default entry.
    pub bootloader: Bootloader,
    /// The initrd builder the guest uses.
    pub initrd_tool: &'static str,
    /// Every Xen-specific setting found.
    pub xenisms: Vec<Xenism>,
}

/// The operating system, from `/etc/os-release` or the older release files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Os {
    /// `sles`, `rhel`, `centos`, `debian`, `ubuntu`, `opensuse-leap`, …
    pub distro: String,
    /// `12.5`, `11.4`, `6.10`, …
    pub version: String,
    /// The product name.
    pub product: String,
}

/// Whether a driver is available for a kernel, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Avail {
    /// As a module file.
    Module(String),
    /// Built in (`modules.builtin` or `=y` in the config).
    Builtin,
    /// Not found.
    Missing,
}

/// One kernel in `/boot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The release, e.g. `3.0.101-63-xen`.
    pub version: String,
    /// The kernel image.
    pub image: GuestPath,
    /// Why it runs only on Xen, when it does.
    pub xen_only: Option<String>,
    /// `virtio_blk`, `virtio_net`, `virtio_pci`, `virtio_scsi`, in that order.
    pub virtio: Vec<(&'static str, Avail)>,
    /// Its initrd, if there is one.
    pub initrd: Option<GuestPath>,
    /// Whether the initrd holds `virtio_blk` (`None`: no initrd, or unreadable).
    pub initrd_virtio_blk: Option<bool>,
    /// Whether dracut built the initrd in host-only mode (it leaves
    /// `lib/dracut/hostonly-files` in the image); `None` when unknown.
    pub initrd_hostonly: Option<bool>,
    /// Why the initrd could not be read.
    pub initrd_error: Option<String>,
}

impl Kernel {
    /// Whether this kernel can drive a virtio disk.
    pub fn has_virtio_blk(&self) -> bool {
        self.virtio
            .iter()
            .any(|(d, a)| *d == "virtio_blk" && *a != Avail::Missing)
    }
}

/// The guest's bootloader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootloader {
    /// `grub2`, `grub2-efi`, `grub-legacy` or `none`.
    pub kind: &'static str,
    /// Its config file.
    pub config: Option<GuestPath>,
    /// The entry it boots by default.
    pub default_entry: Option<BootEntry>,
    /// Whether the disk's MBR has boot code (`None`: not checked, e.g. on a
    /// directory tree). Filled in by the appliance layer.
    pub boot_code: Option<bool>,
}

/// A Xen-specific setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xenism {
    /// `block-device`, `console`, `initrd-driver`, `xen-only-kernel`,
    /// `getty-link`, `net-rule`, `modprobe-alias`.
    pub kind: &'static str,
    /// The file (or link) it is in.
    pub file: GuestPath,
    /// 1-based line, 0 for a whole file or link.
    pub line: usize,
    /// The line or link as found.
    pub text: String,
}

/// The readiness verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Boots under KVM as it is.
    Ready,
    /// `convert` will make it boot, doing these things.
    Needs(Vec<String>),
    /// `convert` cannot work.
    Blocked {
        /// What is wrong.
        reason: String,
        /// What to do about it.
        remedy: String,
    },
}

const VIRTIO: &[(&str, &str, &str)] = &[
    ("virtio_blk", "kernel/drivers/block", "CONFIG_VIRTIO_BLK"),
    ("virtio_net", "kernel/drivers/net", "CONFIG_VIRTIO_NET"),
    ("virtio_pci", "kernel/drivers/virtio", "CONFIG_VIRTIO_PCI"),
    ("virtio_scsi", "kernel/drivers/scsi", "CONFIG_SCSI_VIRTIO"),
];

/// Xen front-end drivers of every era (xenlinux, SUSE KMP, pvops).
pub const XEN_DRIVERS: &[&str] = &[
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

fn p(s: &str) -> GuestPath {
    GuestPath::new(s).unwrap_or_else(|_| GuestPath::root())
}

/// Reads every fact.
pub fn read(fs: &dyn GuestFs) -> io::Result<Facts> {
    let os = read_os(fs)?;
    let init = init_system(fs)?;
    let kernels = kernels(fs)?;
    let bootloader = bootloader(fs)?;
    let initrd_tool = initrd_tool(fs)?;
    let mut xenisms = Vec::new();
    for k in &kernels {
        if let Some(why) = &k.xen_only {
            xenisms.push(Xenism {
                kind: "xen-only-kernel",
                file: k.image.clone(),
                line: 0,
                text: format!("{} ({why})", k.version),
            });
        }
    }
    scan_files(fs, &mut xenisms)?;
    Ok(Facts {
        os,
        init,
        kernels,
        bootloader,
        initrd_tool,
        xenisms,
    })
}

fn shell_value(line: &str, key: &str) -> Option<String> {
    let v = line.trim().strip_prefix(key)?.strip_prefix('=')?;
    Some(v.trim().trim_matches('"').trim_matches('\'').to_owned())
}

fn read_os(fs: &dyn GuestFs) -> io::Result<Os> {
    let mut os = Os::default();
    for f in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Some(text) = fs.read_text(&p(f))? {
            for l in text.lines() {
                if let Some(v) = shell_value(l, "ID") {
                    os.distro = v;
                } else if let Some(v) = shell_value(l, "VERSION_ID") {
                    os.version = v;
                } else if let Some(v) = shell_value(l, "PRETTY_NAME") {
                    os.product = v;
                }
            }
            return Ok(os);
        }
    }
    if let Some(text) = fs.read_text(&p("/etc/SuSE-release"))? {
        os.product = text.lines().next().unwrap_or("").trim().to_owned();
        os.distro = if os.product.contains("Enterprise") {
            "sles"
        } else {
            "opensuse"
        }
        .to_owned();
        let field = |k: &str| {
            text.lines().find_map(|l| {
                l.split_once('=')
                    .filter(|(a, _)| a.trim() == k)
                    .map(|(_, b)| b.trim().to_owned())
            })
        };
        os.version = match (field("VERSION"), field("PATCHLEVEL")) {
            (Some(v), Some(pl)) => format!("{v}.{pl}"),
            (Some(v), None) => v,
            _ => String::new(),
        };
        return Ok(os);
    }
    if let Some(text) = fs.read_text(&p("/etc/redhat-release"))? {
        os.product = text.lines().next().unwrap_or("").trim().to_owned();
        os.distro = if os.product.starts_with("CentOS") {
            "centos"
        } else {
            "rhel"
        }
        .to_owned();
        os.version = os
            .product
            .split_whitespace()
            .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .unwrap_or("")
            .to_owned();
        return Ok(os);
    }
    if let Some(v) = fs.read_text(&p("/etc/debian_version"))? {
        os.distro = "debian".to_owned();
        os.version = v.trim().to_owned();
        os.product = format!("Debian {}", os.version);
    }
    Ok(os)
}

fn init_system(fs: &dyn GuestFs) -> io::Result<&'static str> {
    if let Some(t) = fs.read_link(&p("/sbin/init"))? {
        if t.contains("systemd") {
            return Ok("systemd");
        }
    }
    for f in ["/usr/lib/systemd/systemd", "/lib/systemd/systemd"] {
        if fs.exists(&p(f))? && !fs.exists(&p("/etc/inittab"))? {
            return Ok("systemd");
        }
    }
    if fs.exists(&p("/sbin/initctl"))? && fs.exists(&p("/etc/init"))? {
        return Ok("upstart");
    }
    if fs.exists(&p("/etc/inittab"))? {
        return Ok("sysvinit");
    }
    Ok("unknown")
}

/// Orders kernel versions: numeric parts numerically, newest first.
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '-', '_'])
        .map(|part| {
            let digits: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
            (digits.parse().unwrap_or(0), part[digits.len()..].to_owned())
        })
        .collect()
}

fn kernels(fs: &dyn GuestFs) -> io::Result<Vec<Kernel>> {
    let mut out = Vec::new();
    let names = fs.list(&p("/boot"))?.unwrap_or_default();
    for name in &names {
        let Some(version) = name.strip_prefix("vmlinuz-").or_else(|| {
            name.strip_prefix("vmlinux-")
                .filter(|v| !v.ends_with(".gz"))
        }) else {
            continue;
        };
        let image = p(&format!("/boot/{name}"));
        // Flavor symlinks (/boot/vmlinuz-xen -> vmlinuz-3.0.101-63-xen).
        if fs.read_link(&image)?.is_some() {
            continue;
        }
        let config = fs
            .read_text(&p(&format!("/boot/config-{version}")))?
            .unwrap_or_default();
        let xen_only = [
            "CONFIG_X86_64_XEN=y",
            "CONFIG_X86_64_XEN=m",
            "CONFIG_X86_XEN=y",
            "CONFIG_X86_XEN=m",
        ]
        .iter()
        .find(|c| config.lines().any(|l| l.trim() == **c))
        .map(|c| format!("{c} in /boot/config-{version}"))
        .or_else(|| {
            (config.is_empty()
                && (version.ends_with("-xen")
                    || version.ends_with("xen")
                    || version.ends_with("xenU")))
            .then(|| format!("a Xen kernel flavor ({version})"))
        });
        let moddir = format!("/lib/modules/{version}");
        let builtin = fs
            .read_text(&p(&format!("{moddir}/modules.builtin")))?
            .unwrap_or_default();
        let mut virtio = Vec::new();
        for (drv, dir, cfg) in VIRTIO {
            let mut found = Avail::Missing;
            for ext in [".ko", ".ko.xz", ".ko.zst", ".ko.gz"] {
                let f = format!("{moddir}/{dir}/{drv}{ext}");
                if fs.exists(&p(&f))? {
                    found = Avail::Module(f);
                    break;
                }
            }
            if found == Avail::Missing
                && (builtin.lines().any(|l| l.ends_with(&format!("/{drv}.ko")))
                    || config.lines().any(|l| l.trim() == format!("{cfg}=y")))
            {
                found = Avail::Builtin;
            }
            if found == Avail::Missing && config.lines().any(|l| l.trim() == format!("{cfg}=m")) {
                // The config says module but the file is not there.
                found = Avail::Missing;
            }
            virtio.push((*drv, found));
        }
        let candidates = [
            format!("/boot/initrd.img-{version}"),
            format!("/boot/initrd-{version}"),
            format!("/boot/initramfs-{version}.img"),
            format!("/boot/initrd-{version}.img"),
        ];
        let mut initrd = None;
        for c in candidates {
            if fs.exists(&p(&c))? {
                initrd = Some(p(&c));
                break;
            }
        }
        let (mut initrd_virtio_blk, mut initrd_error, mut initrd_hostonly) = (None, None, None);
        if let Some(i) = &initrd {
            match fs.read(i)? {
                Some(bytes) => match initrd::list(&bytes) {
                    Ok(names) => {
                        initrd_virtio_blk = Some(initrd::has_module(&names, "virtio_blk"));
                        initrd_hostonly = Some(
                            names
                                .iter()
                                .any(|n| n.ends_with("lib/dracut/hostonly-files")),
                        );
                    }
                    Err(e) => initrd_error = Some(e),
                },
                None => initrd_error = Some("unreadable".to_owned()),
            }
        }
        out.push(Kernel {
            version: version.to_owned(),
            image,
            xen_only,
            virtio,
            initrd,
            initrd_virtio_blk,
            initrd_hostonly,
            initrd_error,
        });
    }
    out.sort_by_key(|k| std::cmp::Reverse(version_key(&k.version)));
    Ok(out)
}

fn bootloader(fs: &dyn GuestFs) -> io::Result<Bootloader> {
    let entry = bootconf::default_entry(fs)?;
    let mut efi = false;
    if let Some(dirs) = fs.list(&p("/boot/efi/EFI"))? {
        for d in dirs {
            if fs.exists(&p(&format!("/boot/efi/EFI/{d}/grub.cfg")))? {
                efi = true;
            }
        }
    }
    let (kind, config) = match &entry {
        Some(e) if e.config.as_str().ends_with("grub.cfg") => (
            if efi { "grub2-efi" } else { "grub2" },
            Some(e.config.clone()),
        ),
        Some(e) => ("grub-legacy", Some(e.config.clone())),
        None => ("none", None),
    };
    Ok(Bootloader {
        kind,
        config,
        default_entry: entry,
        boot_code: None,
    })
}

fn initrd_tool(fs: &dyn GuestFs) -> io::Result<&'static str> {
    if fs.exists(&p("/lib/mkinitrd/setup"))? || fs.exists(&p("/lib/mkinitrd/scripts"))? {
        return Ok("suse-mkinitrd");
    }
    for f in ["/usr/bin/dracut", "/sbin/dracut", "/usr/sbin/dracut"] {
        if fs.exists(&p(f))? {
            return Ok("dracut");
        }
    }
    for f in ["/usr/sbin/update-initramfs", "/sbin/update-initramfs"] {
        if fs.exists(&p(f))? {
            return Ok("update-initramfs");
        }
    }
    if fs.exists(&p("/sbin/mkinitrd"))? {
        return Ok("mkinitrd");
    }
    Ok("unknown")
}

/// Whether a word names a Xen block device or its by-path link.
fn xen_block(word: &str) -> bool {
    let w = word.trim_matches(|c| c == '"' || c == '\'' || c == '(' || c == ')' || c == ',');
    let dev = w.split_once('=').map(|x| x.1).unwrap_or(w);
    dev.starts_with("/dev/xvd")
        || dev.contains("xen-vbd-")
        || dev.contains("|/dev/xvd")
        || dev.contains("/dev/xvd")
}

fn xen_console(word: &str) -> bool {
    let w = word.trim_matches(|c| c == '"' || c == '\'');
    w.starts_with("xencons=")
        || w.strip_prefix("console=")
            .is_some_and(|c| c.starts_with("hvc") || c.starts_with("xvc"))
}

/// Reports each non-comment line of `file` once per kind `judge` finds in it.
fn scan_lines(
    fs: &dyn GuestFs,
    file: &str,
    out: &mut Vec<Xenism>,
    judge: impl Fn(&str) -> Vec<&'static str>,
) -> io::Result<()> {
    let path = p(file);
    let Some(text) = fs.read(&path)? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&text);
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        for kind in judge(line) {
            out.push(Xenism {
                kind,
                file: path.clone(),
                line: i + 1,
                text: line.trim_end().to_owned(),
            });
        }
    }
    Ok(())
}

/// Kernel-command-line words: Xen block devices and Xen consoles.
fn words_judge(line: &str) -> Vec<&'static str> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .collect();
    let mut kinds = Vec::new();
    if words.iter().any(|w| xen_block(w)) {
        kinds.push("block-device");
    }
    if words.iter().any(|w| xen_console(w)) {
        kinds.push("console");
    }
    kinds
}

fn one(kind: &'static str, hit: bool) -> Vec<&'static str> {
    if hit {
        vec![kind]
    } else {
        Vec::new()
    }
}

fn has_xen_driver(value: &str) -> bool {
    value
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
        .any(|w| XEN_DRIVERS.contains(&w))
}

fn scan_files(fs: &dyn GuestFs, out: &mut Vec<Xenism>) -> io::Result<()> {
    let block_only = |l: &str| one("block-device", l.split_whitespace().any(xen_block));
    scan_lines(fs, "/etc/fstab", out, block_only)?;
    scan_lines(fs, "/etc/crypttab", out, block_only)?;
    for dm in [
        "/boot/grub/device.map",
        "/boot/grub2/device.map",
        "/boot/grub2-efi/device.map",
    ] {
        scan_lines(fs, dm, out, block_only)?;
    }
    scan_lines(fs, "/etc/default/grub", out, |l| {
        if l.trim_start().starts_with("GRUB_CMDLINE") {
            words_judge(l)
        } else {
            Vec::new()
        }
    })?;
    for cfg in [
        "/boot/grub/grub.cfg",
        "/boot/grub2/grub.cfg",
        "/boot/grub/menu.lst",
        "/boot/grub/grub.conf",
    ] {
        // menu.lst is often a symlink to grub.conf: report the file once.
        if cfg == "/boot/grub/menu.lst" && fs.read_link(&p(cfg))?.is_some() {
            continue;
        }
        scan_lines(fs, cfg, out, |l| {
            let t = l.trim_start();
            if t.starts_with("linux") || t.starts_with("kernel") || t.starts_with("module") {
                words_judge(l)
            } else {
                Vec::new()
            }
        })?;
    }
    scan_lines(fs, "/etc/sysconfig/bootloader", out, |l| {
        if l.contains("APPEND") {
            words_judge(l)
        } else {
            Vec::new()
        }
    })?;
    scan_lines(fs, "/etc/lvm/lvm.conf", out, |l| {
        one("block-device", l.contains("filter") && l.contains("xvd"))
    })?;
    for m in ["/etc/mdadm.conf", "/etc/mdadm/mdadm.conf"] {
        scan_lines(fs, m, out, |l| {
            one(
                "block-device",
                l.trim_start().starts_with("DEVICE") && l.contains("xvd"),
            )
        })?;
    }
    scan_lines(fs, "/etc/securetty", out, |l| {
        one("console", matches!(l.trim(), "xvc0" | "hvc0"))
    })?;
    scan_lines(fs, "/etc/inittab", out, |l| {
        one(
            "console",
            l.split(|c: char| c.is_whitespace() || c == ':')
                .any(|w| w.starts_with("xvc") || w.starts_with("hvc")),
        )
    })?;
    for dir in [
        "/etc/systemd/system/getty.target.wants",
        "/etc/systemd/system/multi-user.target.wants",
    ] {
        for name in fs.list(&p(dir))?.unwrap_or_default() {
            let xen = [
                "getty@xvc",
                "getty@hvc",
                "serial-getty@hvc",
                "serial-getty@xvc",
            ]
            .iter()
            .any(|pre| name.starts_with(pre));
            if xen {
                let link = p(&format!("{dir}/{name}"));
                let target = fs.read_link(&link)?.unwrap_or_default();
                out.push(Xenism {
                    kind: "getty-link",
                    file: link,
                    line: 0,
                    text: format!("{name} -> {target}"),
                });
            }
        }
    }
    scan_lines(fs, "/etc/sysconfig/kernel", out, |l| {
        let t = l.trim_start();
        one(
            "initrd-driver",
            (t.starts_with("INITRD_MODULES=") || t.starts_with("DOMU_INITRD_MODULES="))
                && has_xen_driver(l),
        )
    })?;
    let mut dracut = vec!["/etc/dracut.conf".to_owned()];
    for n in fs.list(&p("/etc/dracut.conf.d"))?.unwrap_or_default() {
        if n.ends_with(".conf") {
            dracut.push(format!("/etc/dracut.conf.d/{n}"));
        }
    }
    for f in dracut {
        scan_lines(fs, &f, out, |l| {
            one("initrd-driver", l.contains("drivers") && has_xen_driver(l))
        })?;
    }
    scan_lines(fs, "/etc/initramfs-tools/modules", out, |l| {
        one("initrd-driver", has_xen_driver(l))
    })?;
    let mut modprobe = vec!["/etc/modprobe.conf".to_owned()];
    for n in fs.list(&p("/etc/modprobe.d"))?.unwrap_or_default() {
        if n.ends_with(".conf") {
            modprobe.push(format!("/etc/modprobe.d/{n}"));
        }
    }
    for f in modprobe {
        scan_lines(fs, &f, out, |l| {
            one(
                "modprobe-alias",
                l.trim_start().starts_with("alias") && has_xen_driver(l),
            )
        })?;
    }
    scan_lines(fs, "/etc/udev/rules.d/70-persistent-net.rules", out, |l| {
        one("net-rule", l.to_lowercase().contains("00:16:3e:"))
    })?;
    Ok(())
}

/// The kernel `convert` would boot: not Xen-only, with virtio_blk, newest.
pub fn chosen_kernel(facts: &Facts) -> Option<&Kernel> {
    facts
        .kernels
        .iter()
        .find(|k| k.xen_only.is_none() && k.has_virtio_blk())
}

/// The package that brings a KVM-capable kernel, per distribution.
fn kernel_package(distro: &str) -> &'static str {
    match distro {
        d if d.starts_with("sles") || d.starts_with("opensuse") || d == "suse" => "kernel-default",
        "debian" => "linux-image-amd64",
        "ubuntu" => "linux-image-generic",
        _ => "kernel",
    }
}

/// The verdict, from the facts.
pub fn verdict(f: &Facts) -> Verdict {
    let Some(k) = chosen_kernel(f) else {
        let pkg = kernel_package(&f.os.distro);
        let xen: Vec<&str> = f
            .kernels
            .iter()
            .filter(|k| k.xen_only.is_some())
            .map(|k| k.version.as_str())
            .collect();
        let reason = if f.kernels.is_empty() {
            "no kernel is installed in /boot (the guest booted a kernel kept on the Xen host)"
                .to_owned()
        } else if xen.len() == f.kernels.len() {
            format!("only Xen kernels are installed ({})", xen.join(", "))
        } else {
            let list: Vec<&str> = f.kernels.iter().map(|k| k.version.as_str()).collect();
            format!(
                "no installed kernel has the virtio_blk driver ({})",
                list.join(", ")
            )
        };
        return Verdict::Blocked { reason, remedy: format!("install {pkg} in the guest first (on the Xen host, while it still boots there), then inspect again") };
    };
    let mut needs = Vec::new();
    let count = |kind: &str| f.xenisms.iter().filter(|x| x.kind == kind).count();
    let n = count("block-device");
    if n > 0 {
        needs.push(format!(
            "rename Xen disk devices (xvdX -> vdX) in {n} place(s)"
        ));
    }
    let n = count("console");
    if n > 0 {
        needs.push(format!(
            "move the console from hvc0/xvc0 to ttyS0 in {n} place(s)"
        ));
    }
    let n = count("getty-link");
    if n > 0 {
        needs.push(format!("remove {n} Xen console getty link(s)"));
    }
    let n = count("initrd-driver") + count("modprobe-alias");
    if n > 0 {
        needs.push(format!(
            "replace Xen drivers with virtio in {n} initrd/modprobe setting(s)"
        ));
    }
    if count("net-rule") > 0 {
        needs.push(
            "check persistent network rules that name Xen MACs (kept: the KVM NIC keeps its MAC)"
                .to_owned(),
        );
    }
    if k.initrd_virtio_blk != Some(true) {
        needs.push(format!(
            "rebuild the initrd of {} with virtio drivers",
            k.version
        ));
    }
    match &f.bootloader.default_entry {
        Some(e) if e.kernel.ends_with(&format!("vmlinuz-{}", k.version)) => {}
        Some(e) => needs.push(format!(
            "make {} the default boot entry (now: {:?}, {})",
            k.version, e.title, e.kernel
        )),
        None => needs.push(format!(
            "write a GRUB configuration that boots {}",
            k.version
        )),
    }
    if f.bootloader.boot_code == Some(false) {
        needs.push("install GRUB's boot code on the disk (it had none: the Xen host booted it with pygrub)".to_owned());
    }
    if needs.is_empty() {
        Verdict::Ready
    } else {
        Verdict::Needs(needs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_newest_first() {
        let mut v = vec![
            "3.0.101-63-default",
            "3.0.101-108.13-default",
            "3.0.76-0.11-default",
        ];
        v.sort_by_key(|k| std::cmp::Reverse(version_key(k)));
        assert_eq!(
            v,
            [
                "3.0.101-108.13-default",
                "3.0.101-63-default",
                "3.0.76-0.11-default"
            ]
        );
    }

    #[test]
    fn xen_words() {
        assert!(xen_block("root=/dev/xvda1"));
        assert!(xen_block("/dev/disk/by-path/xen-vbd-51712-part2"));
        assert!(!xen_block("UUID=abc"));
        assert!(xen_console("console=hvc0"));
        assert!(xen_console("xencons=xvc0"));
        assert!(!xen_console("console=ttyS0"));
        assert!(has_xen_driver("INITRD_MODULES=\"ext3 xenblk\""));
        assert!(!has_xen_driver("INITRD_MODULES=\"virtio_blk\""));
    }
}

#[cfg(test)]
mod dirfs_tests {
    use super::*;
    use std::fs;
    use xen2kvm_vfs::DirFs;

    fn write(root: &std::path::Path, path: &str, text: &str) {
        let p = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    /// A small SLES 11-like tree: a Xen-only kernel and a default one.
    fn sles11(root: &std::path::Path, with_default: bool) {
        write(
            root,
            "/etc/SuSE-release",
            "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n",
        );
        write(root, "/etc/fstab", "/dev/xvda1 swap swap defaults 0 0\n# /dev/xvdz1 /old ext3\nUUID=abc / ext3 defaults 1 1\n");
        write(
            root,
            "/etc/inittab",
            "id:3:initdefault:\nx0:12345:respawn:/sbin/agetty -L 9600 xvc0 xterm\n",
        );
        write(
            root,
            "/etc/sysconfig/kernel",
            "INITRD_MODULES=\"ext3 xenblk\"\nDOMU_INITRD_MODULES=\"xennet xenblk\"\n",
        );
        write(root, "/boot/vmlinuz-3.0.101-63-xen", "k");
        write(
            root,
            "/boot/config-3.0.101-63-xen",
            "CONFIG_X86_64_XEN=y\nCONFIG_XEN=y\n",
        );
        if with_default {
            write(root, "/boot/vmlinuz-3.0.101-63-default", "k");
            write(
                root,
                "/boot/config-3.0.101-63-default",
                "CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=y\n",
            );
            write(
                root,
                "/lib/modules/3.0.101-63-default/kernel/drivers/block/virtio_blk.ko",
                "",
            );
        }
        write(
            root,
            "/boot/grub/menu.lst",
            "default 0\ntitle Xen\n  root (hd0,1)\n  kernel /boot/vmlinuz-3.0.101-63-xen root=/dev/xvda2 console=xvc0\n",
        );
        write(root, "/lib/mkinitrd/setup/README", "");
    }

    #[test]
    fn sles11_facts_and_verdict() {
        let t = tempfile::tempdir().unwrap();
        sles11(t.path(), true);
        let f = read(&DirFs::new(t.path())).unwrap();
        assert_eq!(
            (f.os.distro.as_str(), f.os.version.as_str()),
            ("sles", "11.4")
        );
        assert_eq!(f.init, "sysvinit");
        assert_eq!(f.initrd_tool, "suse-mkinitrd");
        let versions: Vec<&str> = f.kernels.iter().map(|k| k.version.as_str()).collect();
        assert_eq!(versions, ["3.0.101-63-xen", "3.0.101-63-default"]);
        assert!(f.kernels[0].xen_only.is_some() && f.kernels[1].xen_only.is_none());
        assert_eq!(
            f.kernels[1].virtio[0],
            (
                "virtio_blk",
                Avail::Module(
                    "/lib/modules/3.0.101-63-default/kernel/drivers/block/virtio_blk.ko".into()
                )
            )
        );
        assert_eq!(f.kernels[1].virtio[2], ("virtio_pci", Avail::Builtin));
        assert_eq!(f.kernels[1].virtio[1], ("virtio_net", Avail::Missing));
        assert_eq!(f.bootloader.kind, "grub-legacy");
        let found: Vec<(&str, String, usize)> = f
            .xenisms
            .iter()
            .map(|x| (x.kind, x.file.to_string(), x.line))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "xen-only-kernel",
                    "/boot/vmlinuz-3.0.101-63-xen".to_owned(),
                    0
                ),
                ("block-device", "/etc/fstab".to_owned(), 1),
                ("block-device", "/boot/grub/menu.lst".to_owned(), 4),
                ("console", "/boot/grub/menu.lst".to_owned(), 4),
                ("console", "/etc/inittab".to_owned(), 2),
                ("initrd-driver", "/etc/sysconfig/kernel".to_owned(), 1),
                ("initrd-driver", "/etc/sysconfig/kernel".to_owned(), 2),
            ]
        );
        assert_eq!(chosen_kernel(&f).unwrap().version, "3.0.101-63-default");
        match verdict(&f) {
            Verdict::Needs(n) => assert!(
                n.iter()
                    .any(|s| s.starts_with("make 3.0.101-63-default the default")),
                "{n:?}"
            ),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn xen_only_guest_is_blocked_with_the_package_to_install() {
        let t = tempfile::tempdir().unwrap();
        sles11(t.path(), false);
        let f = read(&DirFs::new(t.path())).unwrap();
        assert_eq!(
            verdict(&f),
            Verdict::Blocked {
                reason: "only Xen kernels are installed (3.0.101-63-xen)".into(),
                remedy: "install kernel-default in the guest first (on the Xen host, while it still boots there), then inspect again".into(),
            }
        );
    }
}
