//! What a guest is and every Xen-specific setting in it, read from its files
//! through `&dyn GuestFs`, and the readiness verdict.
//!
//! Pure over the trait: the same code reads a disk in the appliance and a
//! directory tree in tests. Each Xen-ism carries its file and line, so that
//! the report can point at it. What counts as a Xen-ism, and where it is
//! looked for, is [`crate::xen`]'s model, shared with the editor.
//!
//! Whether a guest is blocked (no kernel that can boot on KVM) is decided
//! here; what a guest *needs* is the editor's plan, computed on the
//! read-only guest (`xen2kvm_editor::verdict`), so that `inspect` says
//! exactly what `convert` would do.

use std::io;

use xen2kvm_vfs::{GuestFs, GuestPath};

use crate::bootconf::{self, BootEntry};
use crate::initrd;
use crate::xen::{self, XenismKind};

/// Everything `inspect` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Distribution, version, product name.
    pub os: Os,
    /// The init system.
    pub init: InitSystem,
    /// Kernels in `/boot`, newest first.
    pub kernels: Vec<Kernel>,
    /// The bootloader and its default entry.
    pub bootloader: Bootloader,
    /// The initrd builder the guest uses.
    pub initrd_tool: InitrdTool,
    /// Every Xen-specific setting found.
    pub xenisms: Vec<Xenism>,
}

/// Declares a kind enum whose variants have fixed report names.
macro_rules! kind_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            /// The name used in reports and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
        }
    };
}

kind_enum! {
    /// The guest's init system.
    InitSystem {
        /// systemd.
        Systemd => "systemd",
        /// SysV init (`/etc/inittab`).
        Sysvinit => "sysvinit",
        /// Upstart.
        Upstart => "upstart",
        /// Not recognized.
        Unknown => "unknown",
    }
}

kind_enum! {
    /// The tool that builds the guest's initrds.
    InitrdTool {
        /// SUSE's bash `mkinitrd` (SLES 10/11).
        SuseMkinitrd => "suse-mkinitrd",
        /// dracut (SLES 12+, RHEL 6+, Fedora; Debian when installed).
        Dracut => "dracut",
        /// Debian's initramfs-tools.
        UpdateInitramfs => "update-initramfs",
        /// RHEL 5's nash `mkinitrd`.
        NashMkinitrd => "mkinitrd",
        /// Not recognized.
        Unknown => "unknown",
    }
}

kind_enum! {
    /// The guest's bootloader.
    BootloaderKind {
        /// GRUB 2 for BIOS.
        Grub2 => "grub2",
        /// GRUB 2 for UEFI.
        Grub2Efi => "grub2-efi",
        /// GRUB legacy (`menu.lst`, `grub.conf`).
        GrubLegacy => "grub-legacy",
        /// None found.
        None => "none",
    }
}

impl BootloaderKind {
    /// GRUB 2, for either firmware.
    pub fn is_grub2(self) -> bool {
        matches!(self, BootloaderKind::Grub2 | BootloaderKind::Grub2Efi)
    }
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
    /// Which bootloader.
    pub kind: BootloaderKind,
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
    /// What kind of setting.
    pub kind: XenismKind,
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

/// A guest path built from names read in the guest; a name that makes no
/// valid path is an error naming it (never silently another path).
pub fn path(s: &str) -> io::Result<GuestPath> {
    GuestPath::new(s).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{s:?} is not a usable guest path: {e}"),
        )
    })
}

/// Reads every fact.
pub fn read(fs: &dyn GuestFs) -> io::Result<Facts> {
    let os = read_os(fs)?;
    let init = init_system(fs)?;
    let kernels = kernels(fs)?;
    let bootloader = bootloader(fs)?;
    let initrd_tool = initrd_tool(fs)?;
    let mut xenisms = Vec::new();
    // A Xen-only kernel is a Xen-ism when the guest boots it (its default
    // entry, or no known default): one installed beside the kernel the
    // guest boots is only listed with the kernels.
    let default_image = bootloader
        .default_entry
        .as_ref()
        .map(|e| e.kernel.rsplit('/').next().unwrap_or("").to_owned());
    for k in &kernels {
        let booted = match &default_image {
            Some(img) => k.image.file_name() == Some(img.as_str()),
            None => true,
        };
        if let (Some(why), true) = (&k.xen_only, booted) {
            xenisms.push(Xenism {
                kind: XenismKind::XenOnlyKernel,
                file: k.image.clone(),
                line: 0,
                text: format!("{} ({why}), the default boot entry", k.version),
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
        if let Some(text) = fs.read_text(&path(f)?)? {
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
    if let Some(text) = fs.read_text(&GuestPath::lit("/etc/SuSE-release"))? {
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
    if let Some(text) = fs.read_text(&GuestPath::lit("/etc/redhat-release"))? {
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
    if let Some(v) = fs.read_text(&GuestPath::lit("/etc/debian_version"))? {
        os.distro = "debian".to_owned();
        os.version = v.trim().to_owned();
        os.product = format!("Debian {}", os.version);
    }
    Ok(os)
}

fn init_system(fs: &dyn GuestFs) -> io::Result<InitSystem> {
    if let Some(t) = fs.read_link(&GuestPath::lit("/sbin/init"))? {
        if t.contains("systemd") {
            return Ok(InitSystem::Systemd);
        }
    }
    for f in ["/usr/lib/systemd/systemd", "/lib/systemd/systemd"] {
        if fs.exists(&path(f)?)? && !fs.exists(&GuestPath::lit("/etc/inittab"))? {
            return Ok(InitSystem::Systemd);
        }
    }
    if fs.exists(&GuestPath::lit("/sbin/initctl"))? && fs.exists(&GuestPath::lit("/etc/init"))? {
        return Ok(InitSystem::Upstart);
    }
    if fs.exists(&GuestPath::lit("/etc/inittab"))? {
        return Ok(InitSystem::Sysvinit);
    }
    Ok(InitSystem::Unknown)
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
    let names = fs.list(&GuestPath::lit("/boot"))?.unwrap_or_default();
    for name in &names {
        let Some(version) = name.strip_prefix("vmlinuz-").or_else(|| {
            name.strip_prefix("vmlinux-")
                .filter(|v| !v.ends_with(".gz"))
        }) else {
            continue;
        };
        let image = path(&format!("/boot/{name}"))?;
        // Flavor symlinks (/boot/vmlinuz-xen -> vmlinuz-3.0.101-63-xen).
        if fs.read_link(&image)?.is_some() {
            continue;
        }
        let config = fs
            .read_text(&path(&format!("/boot/config-{version}"))?)?
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
            .read_text(&path(&format!("{moddir}/modules.builtin"))?)?
            .unwrap_or_default();
        let mut virtio = Vec::new();
        for (drv, dir, cfg) in VIRTIO {
            let mut found = Avail::Missing;
            for ext in [".ko", ".ko.xz", ".ko.zst", ".ko.gz"] {
                let f = format!("{moddir}/{dir}/{drv}{ext}");
                if fs.exists(&path(&f)?)? {
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
            if fs.exists(&path(&c)?)? {
                initrd = Some(path(&c)?);
                break;
            }
        }
        let (mut initrd_virtio_blk, mut initrd_error, mut initrd_hostonly) = (None, None, None);
        if let Some(i) = &initrd {
            match fs.read_limited(i, xen2kvm_vfs::MAX_INITRD) {
                Err(e) => initrd_error = Some(e.to_string()),
                Ok(None) => initrd_error = Some("unreadable".to_owned()),
                Ok(Some(bytes)) => match initrd::list(&bytes) {
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
    if let Some(dirs) = fs.list(&GuestPath::lit("/boot/efi/EFI"))? {
        for d in dirs {
            if fs.exists(&path(&format!("/boot/efi/EFI/{d}/grub.cfg"))?)? {
                efi = true;
            }
        }
    }
    let (kind, config) = match &entry {
        Some(e) if e.config.as_str().ends_with("grub.cfg") => (
            if efi {
                BootloaderKind::Grub2Efi
            } else {
                BootloaderKind::Grub2
            },
            Some(e.config.clone()),
        ),
        Some(e) => (BootloaderKind::GrubLegacy, Some(e.config.clone())),
        None => (BootloaderKind::None, None),
    };
    Ok(Bootloader {
        kind,
        config,
        default_entry: entry,
        boot_code: None,
    })
}

fn initrd_tool(fs: &dyn GuestFs) -> io::Result<InitrdTool> {
    if fs.exists(&GuestPath::lit("/lib/mkinitrd/setup"))?
        || fs.exists(&GuestPath::lit("/lib/mkinitrd/scripts"))?
    {
        return Ok(InitrdTool::SuseMkinitrd);
    }
    for f in ["/usr/bin/dracut", "/sbin/dracut", "/usr/sbin/dracut"] {
        if fs.exists(&path(f)?)? {
            return Ok(InitrdTool::Dracut);
        }
    }
    for f in ["/usr/sbin/update-initramfs", "/sbin/update-initramfs"] {
        if fs.exists(&path(f)?)? {
            return Ok(InitrdTool::UpdateInitramfs);
        }
    }
    if fs.exists(&GuestPath::lit("/sbin/mkinitrd"))? {
        return Ok(InitrdTool::NashMkinitrd);
    }
    Ok(InitrdTool::Unknown)
}

/// Reports each non-comment line of `file` once per kind `judge` finds in it.
fn scan_lines(
    fs: &dyn GuestFs,
    file: &GuestPath,
    out: &mut Vec<Xenism>,
    judge: impl Fn(&str) -> Vec<XenismKind>,
) -> io::Result<()> {
    let Some(text) = fs.read_limited(file, xen2kvm_vfs::MAX_TEXT)? else {
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
                file: file.clone(),
                line: i + 1,
                text: line.trim_end().to_owned(),
            });
        }
    }
    Ok(())
}

fn scan(
    fs: &dyn GuestFs,
    file: &str,
    out: &mut Vec<Xenism>,
    judge: impl Fn(&str) -> Vec<XenismKind>,
) -> io::Result<()> {
    scan_lines(fs, &path(file)?, out, judge)
}

/// Kernel-command-line arguments: Xen block devices and Xen consoles.
fn cmdline_judge(args: &str) -> Vec<XenismKind> {
    let words: Vec<&str> = args
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .collect();
    let mut kinds = Vec::new();
    if words.iter().any(|w| xen::is_block_word(w)) {
        kinds.push(XenismKind::BlockDevice);
    }
    if words.iter().any(|w| xen::is_console_arg(w)) {
        kinds.push(XenismKind::Console);
    }
    kinds
}

fn one(kind: XenismKind, hit: bool) -> Vec<XenismKind> {
    if hit {
        vec![kind]
    } else {
        Vec::new()
    }
}

/// A shell assignment's key (`KEY=value`, `export KEY=value`).
fn assign_key(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("export ").unwrap_or(t);
    t.split_once('=').map(|(k, _)| k.trim())
}

/// The `*.conf` files of a directory (sorted), as guest paths.
pub fn conf_files(fs: &dyn GuestFs, dir: &str) -> io::Result<Vec<GuestPath>> {
    files_ending(fs, dir, ".conf")
}

/// The files of a directory whose names end in `suffix` (sorted), as guest
/// paths.
pub fn files_ending(fs: &dyn GuestFs, dir: &str, suffix: &str) -> io::Result<Vec<GuestPath>> {
    let mut names = fs.list(&path(dir)?)?.unwrap_or_default();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        if name.ends_with(suffix) {
            out.push(path(&format!("{dir}/{name}"))?);
        }
    }
    Ok(out)
}

/// The GRUB legacy menus to read: existing, not symlinks (RHEL's
/// `menu.lst -> grub.conf` is read once, through its target).
pub fn legacy_menus(fs: &dyn GuestFs) -> io::Result<Vec<GuestPath>> {
    let mut out = Vec::new();
    for f in xen::LEGACY_MENUS {
        let p = path(f)?;
        if fs.read_link(&p)?.is_none() && fs.exists(&p)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// Xen guest agents started at boot: links in every `*.wants` directory
/// of [`xen::SYSTEMD_SYSTEM`] and SysV start links in [`xen::RC_DIRS`]:
/// (link, target).
pub fn guest_tool_links(fs: &dyn GuestFs) -> io::Result<Vec<(GuestPath, Option<String>)>> {
    let mut dirs: Vec<String> = fs
        .list(&path(xen::SYSTEMD_SYSTEM)?)?
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.ends_with(".wants"))
        .map(|n| format!("{}/{n}", xen::SYSTEMD_SYSTEM))
        .collect();
    dirs.sort();
    dirs.extend(xen::RC_DIRS.iter().map(|d| (*d).to_owned()));
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(dir_path) = path(&dir) else { continue };
        let mut names = fs.list(&dir_path)?.unwrap_or_default();
        names.sort();
        for name in names {
            if xen::is_guest_tool_link(&name) {
                let link = path(&format!("{dir}/{name}"))?;
                let target = fs.read_link(&link)?;
                out.push((link, target));
            }
        }
    }
    Ok(out)
}

/// Xen getty units enabled in any of [`xen::GETTY_DIRS`]: (link, target).
pub fn getty_links(fs: &dyn GuestFs) -> io::Result<Vec<(GuestPath, Option<String>)>> {
    let mut out = Vec::new();
    for dir in xen::GETTY_DIRS {
        for name in fs.list(&path(dir)?)?.unwrap_or_default() {
            if xen::is_getty_unit(&name) {
                let link = path(&format!("{dir}/{name}"))?;
                let target = fs.read_link(&link)?;
                out.push((link, target));
            }
        }
    }
    Ok(out)
}

fn scan_files(fs: &dyn GuestFs, out: &mut Vec<Xenism>) -> io::Result<()> {
    use XenismKind::*;
    let block_words = |l: &str| one(BlockDevice, l.split_whitespace().any(xen::is_block_word));
    for f in xen::DEVICE_FILES {
        scan(fs, f, out, block_words)?;
    }
    for f in xen::MDADM_FILES {
        scan(fs, f, out, |l| {
            one(
                BlockDevice,
                xen::is_block_word(l)
                    || l.trim_start().starts_with("DEVICE") && xen::names_block_pattern(l),
            )
        })?;
    }
    scan(fs, xen::LVM_CONF, out, |l| {
        let key = l.trim_start().split(['=', ' ', '\t']).next().unwrap_or("");
        one(
            BlockDevice,
            xen::is_lvm_device_key(key) && xen::names_block_pattern(l),
        )
    })?;
    let grub_judge = |l: &str| match assign_key(l) {
        Some(k) if xen::is_guest_cmdline_key(k) => cmdline_judge(l),
        _ => Vec::new(),
    };
    scan(fs, xen::DEFAULT_GRUB, out, grub_judge)?;
    for f in files_ending(fs, xen::DEFAULT_GRUB_D, ".cfg")? {
        scan_lines(fs, &f, out, grub_judge)?;
    }
    for cfg in xen::GRUB2_CONFIGS {
        scan(fs, cfg, out, |l| {
            if l.trim_start().starts_with("linux") {
                cmdline_judge(l)
            } else {
                Vec::new()
            }
        })?;
    }
    for menu in legacy_menus(fs)? {
        scan_lines(fs, &menu, out, |l| {
            let t = l.trim_start();
            let Some(rest) = t.strip_prefix("kernel") else {
                return Vec::new();
            };
            let image = rest
                .trim_start_matches([' ', '\t', '='])
                .split_whitespace()
                .next()
                .unwrap_or("");
            if xen::is_hypervisor_image(image) {
                Vec::new()
            } else {
                cmdline_judge(rest)
            }
        })?;
    }
    scan(fs, xen::SYSCONFIG_BOOTLOADER, out, |l| {
        match assign_key(l) {
            Some(k) if xen::is_guest_append_key(k) => cmdline_judge(l),
            _ => Vec::new(),
        }
    })?;
    scan(fs, xen::SECURETTY, out, |l| {
        one(Console, xen::is_console_tty(l.trim()))
    })?;
    scan(fs, xen::INITTAB, out, |l| {
        // id:runlevels:action:process; the tty is a word of the process.
        let process = l.splitn(4, ':').nth(3).unwrap_or("");
        one(Console, process.split_whitespace().any(xen::is_console_tty))
    })?;
    for f in xen::UPSTART_TTY1 {
        scan(fs, f, out, |l| {
            one(
                Console,
                l.trim_start().starts_with("exec") && l.split_whitespace().any(xen::is_console_tty),
            )
        })?;
    }
    for (link, target) in getty_links(fs)? {
        let name = link.file_name().unwrap_or_default().to_owned();
        out.push(Xenism {
            kind: GettyLink,
            file: link,
            line: 0,
            text: format!("{name} -> {}", target.unwrap_or_default()),
        });
    }
    for (link, target) in guest_tool_links(fs)? {
        let name = link.file_name().unwrap_or_default().to_owned();
        out.push(Xenism {
            kind: GuestTools,
            file: link,
            line: 0,
            text: format!("{name} -> {}", target.unwrap_or_default()),
        });
    }
    scan(fs, xen::SYSCONFIG_KERNEL, out, |l| match assign_key(l) {
        Some("INITRD_MODULES" | "DOMU_INITRD_MODULES") => one(InitrdDriver, xen::names_driver(l)),
        Some("DEFAULTKERNEL") => one(
            KernelPolicy,
            l.split_once('=').is_some_and(|(_, v)| {
                xen::is_xen_kernel_package(v.trim().trim_matches(['"', '\'']))
            }),
        ),
        _ => Vec::new(),
    })?;
    let mut dracut = vec![path(xen::DRACUT_CONF)?];
    dracut.extend(conf_files(fs, xen::DRACUT_CONF_D)?);
    for f in dracut {
        scan_lines(fs, &f, out, |l| {
            one(InitrdDriver, l.contains("drivers") && xen::names_driver(l))
        })?;
    }
    scan(fs, xen::INITRAMFS_MODULES, out, |l| {
        one(InitrdDriver, xen::names_driver(l))
    })?;
    for c in crate::network::unpinned(fs)? {
        out.push(Xenism {
            kind: NetworkName,
            file: c.file,
            line: c.line,
            text: c.text,
        });
    }
    let mut modprobe = vec![path(xen::MODPROBE_CONF)?];
    modprobe.extend(conf_files(fs, xen::MODPROBE_D)?);
    for f in modprobe {
        scan_lines(fs, &f, out, |l| {
            one(
                ModprobeAlias,
                l.trim_start().starts_with("alias") && xen::names_driver(l),
            )
        })?;
    }
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

/// Why `convert` cannot work on this guest, and the remedy; `None` when a
/// kernel that boots on KVM is installed.
pub fn blocked(f: &Facts) -> Option<Verdict> {
    if chosen_kernel(f).is_some() {
        return None;
    }
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
    Some(Verdict::Blocked {
        reason,
        remedy: format!("install {pkg} in the guest first (on the Xen host, while it still boots there), then inspect again"),
    })
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
        assert_eq!(f.init, InitSystem::Sysvinit);
        assert_eq!(f.initrd_tool, InitrdTool::SuseMkinitrd);
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
        assert_eq!(f.bootloader.kind, BootloaderKind::GrubLegacy);
        let found: Vec<(&str, String, usize)> = f
            .xenisms
            .iter()
            .map(|x| (x.kind.as_str(), x.file.to_string(), x.line))
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
        assert_eq!(blocked(&f), None);
    }

    #[test]
    fn xen_only_guest_is_blocked_with_the_package_to_install() {
        let t = tempfile::tempdir().unwrap();
        sles11(t.path(), false);
        let f = read(&DirFs::new(t.path())).unwrap();
        assert_eq!(
            blocked(&f),
            Some(Verdict::Blocked {
                reason: "only Xen kernels are installed (3.0.101-63-xen)".into(),
                remedy: "install kernel-default in the guest first (on the Xen host, while it still boots there), then inspect again".into(),
            })
        );
    }
}
