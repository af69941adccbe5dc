//! Xen domain configs → KVM libvirt domain XML.
//!
//! The SUSE procedure edits the domain XML by hand with 13 rules; this crate
//! applies them to the parsed document and keeps everything else (name,
//! UUID, memory, vcpu cpuset, clock, `on_*`, MACs, graphics, comments,
//! unknown elements) in place and in order. An xl.cfg is first translated
//! into the equivalent Xen libvirt XML ([`xl`]), then converted the same way.
//!
//! Pure: text in, text out plus the list of changes. Probing disk images for
//! their format is the caller's, through [`Options::probe_format`].

#![warn(missing_docs)]

pub mod disks;
pub mod dom;
mod rules;
pub mod xl;

use std::fmt;

pub use rules::{convert, convert_document, letters, RULES};

/// What to do beyond the fixed rules.
pub struct Options<'a> {
    /// `-on NAME`: the converted domain's name.
    pub name: Option<String>,
    /// Guest architecture for `os/type/@arch` (else the source's, else x86_64).
    pub arch: Option<String>,
    /// The host's QEMU, for `devices/emulator`.
    pub emulator: String,
    /// Network mappings, applied in order (first match wins).
    pub nets: Vec<NetMap>,
    /// `--disk TARGET=PATH`: new source for the disk with that source target.
    pub disks: Vec<(String, String)>,
    /// Keep PV direct kernel boot (`kernel`/`initrd`/`cmdline`).
    pub keep_direct_boot: bool,
    /// Boot this kernel, extracted from the converted guest (`migrate
    /// --direct-boot`): `<kernel>`, `<initrd>`, `<cmdline>` in place of
    /// Xen's, and no `<boot dev>`.
    pub direct_boot: Option<DirectBoot>,
    /// Do not give a domain without a video device one (`--no-video`).
    pub no_video: bool,
    /// Convert a domain whose type is not `xen`.
    pub force: bool,
    /// The format of a disk image, read from the image (`None`: unreadable).
    pub probe_format: &'a dyn Fn(&str) -> Option<String>,
    /// A Windows guest (what its conversion decided): the `windows` rule.
    pub windows: Option<Windows>,
}

/// A kernel and initrd on the host that boot the converted guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectBoot {
    /// The kernel's path on the host.
    pub kernel: String,
    /// The initrd's path on the host.
    pub initrd: Option<String>,
    /// The kernel command line.
    pub cmdline: String,
}

/// What the domain of a Windows guest needs (from its conversion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows {
    /// Major and minor version (`5.2`: Server 2003, `6.1`: 2008 R2).
    pub version: (u32, u32),
    /// The disk bus the guest can boot from (`virtio` or `ide`).
    pub disk_bus: String,
    /// The NIC model it has a driver for (`virtio`, `e1000`, `rtl8139`).
    pub nic: String,
}

impl<'a> Options<'a> {
    /// The options of a plain conversion: the host's QEMU and an image
    /// format probe, nothing renamed, mapped or forced.
    pub fn new(
        emulator: impl Into<String>,
        probe_format: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Options {
            name: None,
            arch: None,
            emulator: emulator.into(),
            nets: Vec::new(),
            disks: Vec::new(),
            keep_direct_boot: false,
            direct_boot: None,
            no_video: false,
            force: false,
            probe_format,
            windows: None,
        }
    }
}

/// One `--bridge`/`--network` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetMap {
    /// The source bridge or network name it applies to; `None`: all.
    pub from: Option<String>,
    /// What it becomes.
    pub to: NetTarget,
}

/// A mapping's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetTarget {
    /// A host bridge.
    Bridge(String),
    /// A libvirt network.
    Network(String),
}

/// One change made, with the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The rule's name (see [`RULES`]).
    pub rule: &'static str,
    /// What changed, for humans.
    pub what: String,
}

/// The result of a conversion.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The KVM domain XML.
    pub xml: String,
    /// Every change, in order.
    pub changes: Vec<Change>,
    /// Things the user should know (e.g. direct kernel boot dropped).
    pub warnings: Vec<String>,
}

/// Why a config cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not well-formed XML, or a DOCTYPE.
    Xml(String),
    /// Not a `<domain>` document.
    NotADomain(String),
    /// A domain of another hypervisor (without `force`).
    NotXen(String),
    /// A disk on a bus this tool does not know.
    UnknownDiskBus(String),
    /// A bad xl.cfg line.
    Xl {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The input is larger than [`MAX_INPUT`].
    TooLarge(usize),
}

/// The largest config accepted, in bytes (real ones are a few KiB).
pub const MAX_INPUT: usize = 1024 * 1024;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Xml(m) => write!(f, "not a valid domain XML: {m}"),
            Error::NotADomain(root) => write!(f, "the root element is <{root}>, not <domain>"),
            Error::NotXen(t) => write!(
                f,
                "this is a {t:?} domain, not a Xen one (use --force to convert it anyway)"
            ),
            Error::UnknownDiskBus(b) => write!(
                f,
                "a disk is on bus {b:?}, which xen2kvm does not know how to map"
            ),
            Error::Xl { line, message } => write!(f, "xl.cfg line {line}: {message}"),
            Error::TooLarge(n) => write!(
                f,
                "the config is {n} bytes; more than {MAX_INPUT} is not a domain config"
            ),
        }
    }
}

impl std::error::Error for Error {}
