//! The Windows part of the one model of "what is Xen" (the Linux part is
//! `xen2kvm_inspector::xen`): the services of the Xen PV driver sets and
//! how to tell the sets apart. [`crate::facts`] reports what it finds with
//! these names, [`crate::plan`] disables exactly what it reports.
//!
//! The sets, and the services each registers (from their `.inf` files):
//! - SUSE's Virtual Machine Driver Pack for Xen (VMDP): `XenBus` (boot bus
//!   driver for the Xen platform PCI device), `xenblk`, `xenscsi`, `xennet`.
//! - GPLPV (James Harper's drivers): `xenpci`, `xenhide`, `xenvbd`,
//!   `xenscsi`, `xennet`, `xenusb`.
//! - Xen Project / XenServer (Citrix) drivers: `xenbus`, `xenfilt` (an upper
//!   or lower filter of device classes), `xenvbd`, `xendisk`, `xenvif`,
//!   `xennet`, `xeniface`, the `xenagent`/`xensvc` guest agents, and the
//!   older `xenevtchn`.
//!
//! Left enabled on KVM, the bus drivers and filters bind to devices that are
//! not there or hide the emulated ones (the disks vanish: a
//! `STOP 0x7B INACCESSIBLE_BOOT_DEVICE`), and the agents fail at every boot.

/// A set of Xen PV drivers for Windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DriverSet {
    /// SUSE's Virtual Machine Driver Pack (the guide's drivers).
    SuseVmdp,
    /// GPLPV.
    Gplpv,
    /// The Xen Project / XenServer (Citrix) drivers and agent.
    XenProject,
    /// A Xen driver name whose set cannot be told.
    Unknown,
}

impl DriverSet {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverSet::SuseVmdp => "SUSE VMDP",
            DriverSet::Gplpv => "GPLPV",
            DriverSet::XenProject => "Xen Project/XenServer",
            DriverSet::Unknown => "Xen PV",
        }
    }
}

/// Every service name a Xen PV driver set registers (lowercase).
pub const PV_SERVICES: &[&str] = &[
    "xenbus",
    "xenfilt",
    "xenvbd",
    "xendisk",
    "xenvif",
    "xennet",
    "xeniface",
    "xenagent",
    "xensvc",
    "xenevtchn",
    "xenblk",
    "xenscsi",
    "xenpci",
    "xenhide",
    "xenusb",
];

/// Whether a service (or a class filter entry) is a Xen PV driver.
pub fn is_pv_service(name: &str) -> bool {
    PV_SERVICES.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Which set a Xen service belongs to, from its name and its `DisplayName`.
pub fn driver_set(name: &str, display: &str) -> DriverSet {
    let d = display.to_ascii_lowercase();
    let n = name.to_ascii_lowercase();
    if d.contains("suse") || d.contains("novell") || n == "xenblk" {
        DriverSet::SuseVmdp
    } else if d.contains("gplpv")
        || d.contains("james harper")
        || matches!(n.as_str(), "xenpci" | "xenhide" | "xenusb")
    {
        DriverSet::Gplpv
    } else if d.contains("xenserver")
        || d.contains("citrix")
        || d.contains("xen project")
        || matches!(
            n.as_str(),
            "xenfilt" | "xenvif" | "xeniface" | "xenagent" | "xensvc" | "xendisk" | "xenevtchn"
        )
    {
        DriverSet::XenProject
    } else {
        DriverSet::Unknown
    }
}

/// `Start` of a disabled service.
pub const SERVICE_DISABLED: u32 = 4;

/// A service's `Start` value, in words.
pub fn start_name(start: Option<u32>) -> &'static str {
    match start {
        Some(0) => "boot",
        Some(1) => "system",
        Some(2) => "automatic",
        Some(3) => "on demand",
        Some(4) => "disabled",
        Some(_) => "unknown start type",
        None => "no start type",
    }
}
