//! What a Windows guest is, read from its SYSTEM and SOFTWARE hives (and
//! what inspection and the guest's files add in [`Base`]): the control set
//! in use, the Xen PV services and class filters (the Windows Xen-isms),
//! whether a virtio storage driver is installed to start at boot, and what
//! an earlier conversion left (staged drivers, the first-boot service).

use std::io;

use crate::reg::{Hive, Value};
use crate::xen::{self, DriverSet};

/// What inspection and the guest's files say, beside the hives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Base {
    /// The product name (`Windows Server 2008 R2 Standard`).
    pub product: String,
    /// Major and minor version (`5.2` is Server 2003, `6.1` 2008 R2).
    pub version: (u32, u32),
    /// `i386` or `x86_64`.
    pub arch: String,
    /// The system root as a path on its volume (`/Windows`, `/WINDOWS`).
    pub systemroot: String,
    /// The files under `%SystemRoot%\Drivers\VirtIO` (names, lowercase).
    pub staged: Vec<String>,
}

/// A Xen PV driver's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvService {
    /// The service's key name, as the registry spells it.
    pub name: String,
    /// Which driver set it belongs to.
    pub set: DriverSet,
    /// Its `Start` value.
    pub start: Option<u32>,
    /// Its `DisplayName`.
    pub display: String,
}

/// Upper or lower filters of a device class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FilterKind {
    /// `UpperFilters`.
    Upper,
    /// `LowerFilters`.
    Lower,
}

impl FilterKind {
    /// The registry value's name.
    pub fn value_name(self) -> &'static str {
        match self {
            FilterKind::Upper => "UpperFilters",
            FilterKind::Lower => "LowerFilters",
        }
    }
}

/// A device class whose filter list names a Xen driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassFilter {
    /// The class key (`{4D36E97D-E325-11CE-BFC1-08002BE10318}`).
    pub guid: String,
    /// The class name (`System`, `hdc`).
    pub class: String,
    /// Upper or lower.
    pub kind: FilterKind,
    /// The whole list.
    pub drivers: Vec<String>,
}

impl ClassFilter {
    /// The list without its Xen drivers.
    pub fn without_xen(&self) -> Vec<String> {
        self.drivers
            .iter()
            .filter(|d| !xen::is_pv_service(d))
            .cloned()
            .collect()
    }

    /// The Xen drivers in the list.
    pub fn xen(&self) -> Vec<&str> {
        self.drivers
            .iter()
            .filter(|d| xen::is_pv_service(d))
            .map(String::as_str)
            .collect()
    }
}

/// The virtio block driver's registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VirtioStorage {
    /// `Services\viostor` exists.
    pub service: bool,
    /// … and starts at boot (`Start` = 0).
    pub boot_start: bool,
    /// The CriticalDeviceDatabase maps the virtio block PCI ID to it.
    pub critical_device: bool,
}

impl VirtioStorage {
    /// Whether a virtio disk can be the boot disk as things are: for
    /// Windows before 8/2012 the critical device entry is needed too.
    pub fn ready(&self, version: (u32, u32)) -> bool {
        self.service && self.boot_start && (self.critical_device || version >= (6, 2))
    }
}

/// Everything known about a Windows guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinFacts {
    /// From inspection and the files.
    pub base: Base,
    /// The control set in use (`ControlSet001`), from `Select\Current`.
    pub control_set: String,
    /// A server edition (`ProductOptions\ProductType` is not `WinNT`).
    pub server: bool,
    /// `CurrentBuildNumber` (`3790`, `7601`).
    pub build: u32,
    /// The Xen PV services.
    pub pv_services: Vec<PvService>,
    /// Class filter lists that name a Xen driver.
    pub filters: Vec<ClassFilter>,
    /// The virtio block driver.
    pub virtio: VirtioStorage,
    /// `Services\netkvm` exists (the virtio NIC driver is installed).
    pub netkvm: bool,
    /// `Services\rhsrvany` exists (a first-boot service is set up).
    pub firstboot: bool,
    /// `SOFTWARE\Microsoft\Windows\CurrentVersion\DevicePath`.
    pub device_path: Option<String>,
}

/// A Windows Xen-ism: what `convert` changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Xenism {
    /// A Xen PV driver's service that is not disabled.
    PvService(PvService),
    /// A Xen driver in a class filter list.
    Filter(ClassFilter),
}

impl Xenism {
    /// The registry key where it lives (`HKLM\SYSTEM\ControlSet001\…`).
    pub fn key(&self, control_set: &str) -> String {
        match self {
            Xenism::PvService(s) => {
                format!("HKLM\\SYSTEM\\{control_set}\\Services\\{}", s.name)
            }
            Xenism::Filter(f) => {
                format!("HKLM\\SYSTEM\\{control_set}\\Control\\Class\\{}", f.guid)
            }
        }
    }

    /// One line for reports.
    pub fn describe(&self, control_set: &str) -> String {
        match self {
            Xenism::PvService(s) => format!(
                "{} driver {} ({}) starts {}: {}",
                s.set.as_str(),
                s.name,
                if s.display.is_empty() {
                    "no display name"
                } else {
                    &s.display
                },
                xen::start_name(s.start),
                self.key(control_set)
            ),
            Xenism::Filter(f) => format!(
                "{} of device class {} name {}: {}",
                f.kind.value_name(),
                f.class,
                f.xen().join(", "),
                self.key(control_set)
            ),
        }
    }

    /// The kind's name in JSON (`windows-pv-driver`, `windows-class-filter`).
    pub fn kind(&self) -> &'static str {
        match self {
            Xenism::PvService(_) => "windows-pv-driver",
            Xenism::Filter(_) => "windows-class-filter",
        }
    }
}

/// The class GUID of SCSI adapters (virtio block is one).
pub const SCSI_ADAPTER_CLASS: &str = "{4D36E97B-E325-11CE-BFC1-08002BE10318}";

/// The CriticalDeviceDatabase keys of the virtio block PCI device (legacy
/// `DEV_1001` and modern `DEV_1042`), most specific first.
pub const VIRTIO_BLOCK_IDS: &[&str] = &[
    "pci#ven_1af4&dev_1001&subsys_00021af4&rev_00",
    "pci#ven_1af4&dev_1001&subsys_00021af4",
    "pci#ven_1af4&dev_1001",
    "pci#ven_1af4&dev_1042&subsys_11001af4&rev_01",
    "pci#ven_1af4&dev_1042&subsys_11001af4",
    "pci#ven_1af4&dev_1042",
];

fn text(h: &dyn Hive, key: &str, name: &str) -> io::Result<Option<String>> {
    Ok(h.value(key, name)?.and_then(|v| match v {
        Value::Sz(s) | Value::ExpandSz(s) => Some(s),
        _ => None,
    }))
}

fn dword(h: &dyn Hive, key: &str, name: &str) -> io::Result<Option<u32>> {
    Ok(h.value(key, name)?.and_then(|v| v.as_dword()))
}

/// The control set `Select\Current` names.
pub fn control_set(system: &dyn Hive) -> io::Result<String> {
    let current = dword(system, "Select", "Current")?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the SYSTEM hive has no Select\\Current: not a Windows SYSTEM hive",
        )
    })?;
    Ok(format!("ControlSet{current:03}"))
}

/// Reads the facts from the two hives.
pub fn read(base: Base, system: &dyn Hive, software: &dyn Hive) -> io::Result<WinFacts> {
    let cs = control_set(system)?;
    if !system.exists(&cs)? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("Select\\Current names {cs}, which the SYSTEM hive does not have"),
        ));
    }
    let server = text(
        system,
        &format!("{cs}\\Control\\ProductOptions"),
        "ProductType",
    )?
    .is_some_and(|t| !t.eq_ignore_ascii_case("WinNT"));
    let build = text(
        software,
        "Microsoft\\Windows NT\\CurrentVersion",
        "CurrentBuildNumber",
    )?
    .and_then(|b| b.trim().parse().ok())
    .unwrap_or(0);
    let services = format!("{cs}\\Services");
    let mut pv_services = Vec::new();
    let names = system.subkeys(&services)?.unwrap_or_default();
    for name in &names {
        if !xen::is_pv_service(name) {
            continue;
        }
        let key = format!("{services}\\{name}");
        let display = text(system, &key, "DisplayName")?.unwrap_or_default();
        pv_services.push(PvService {
            set: xen::driver_set(name, &display),
            name: name.clone(),
            start: dword(system, &key, "Start")?,
            display,
        });
    }
    // Names several sets share (xenbus, xenvbd, xennet, xenscsi) without a
    // telling display name belong to the one set the others show.
    let mut known: Vec<DriverSet> = pv_services
        .iter()
        .map(|s| s.set)
        .filter(|s| *s != DriverSet::Unknown)
        .collect();
    known.sort();
    known.dedup();
    if let [only] = known[..] {
        for s in &mut pv_services {
            if s.set == DriverSet::Unknown {
                s.set = only;
            }
        }
    }
    let has = |n: &str| names.iter().any(|s| s.eq_ignore_ascii_case(n));
    let classes = format!("{cs}\\Control\\Class");
    let mut filters = Vec::new();
    for guid in system.subkeys(&classes)?.unwrap_or_default() {
        let key = format!("{classes}\\{guid}");
        for kind in [FilterKind::Upper, FilterKind::Lower] {
            if let Some(Value::MultiSz(drivers)) = system.value(&key, kind.value_name())? {
                if drivers.iter().any(|d| xen::is_pv_service(d)) {
                    filters.push(ClassFilter {
                        class: text(system, &key, "Class")?.unwrap_or_default(),
                        guid: guid.clone(),
                        kind,
                        drivers,
                    });
                }
            }
        }
    }
    let viostor = format!("{services}\\viostor");
    let cdd = format!("{cs}\\Control\\CriticalDeviceDatabase");
    let mut critical_device = false;
    for id in VIRTIO_BLOCK_IDS {
        if text(system, &format!("{cdd}\\{id}"), "Service")?
            .is_some_and(|s| s.eq_ignore_ascii_case("viostor"))
        {
            critical_device = true;
        }
    }
    let virtio = VirtioStorage {
        service: has("viostor"),
        boot_start: dword(system, &viostor, "Start")? == Some(0),
        critical_device,
    };
    Ok(WinFacts {
        control_set: cs,
        server,
        build,
        pv_services,
        filters,
        virtio,
        netkvm: has("netkvm"),
        firstboot: has("rhsrvany"),
        device_path: text(software, "Microsoft\\Windows\\CurrentVersion", "DevicePath")?,
        base,
    })
}

impl WinFacts {
    /// The Xen-isms: enabled Xen PV services, and Xen drivers in class
    /// filter lists.
    pub fn xenisms(&self) -> Vec<Xenism> {
        let mut out: Vec<Xenism> = self
            .pv_services
            .iter()
            .filter(|s| s.start != Some(xen::SERVICE_DISABLED))
            .cloned()
            .map(Xenism::PvService)
            .collect();
        out.extend(self.filters.iter().cloned().map(Xenism::Filter));
        out
    }

    /// `Windows Server 2003`-style name of the release, for messages.
    pub fn release(&self) -> String {
        let (major, minor) = self.base.version;
        let server = self.server;
        let name = match (major, minor, server) {
            (5, 1, _) => "Windows XP",
            (5, 2, true) => "Windows Server 2003",
            (5, 2, false) => "Windows XP x64",
            (6, 0, true) => "Windows Server 2008",
            (6, 0, false) => "Windows Vista",
            (6, 1, true) => "Windows Server 2008 R2",
            (6, 1, false) => "Windows 7",
            (6, 2, true) => "Windows Server 2012",
            (6, 2, false) => "Windows 8",
            (6, 3, true) => "Windows Server 2012 R2",
            (6, 3, false) => "Windows 8.1",
            (10, _, true) => "Windows Server 2016 or later",
            (10, _, false) => "Windows 10 or later",
            _ => return format!("Windows {major}.{minor}"),
        };
        name.to_owned()
    }
}
