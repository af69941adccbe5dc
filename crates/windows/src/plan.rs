//! The conversion of a Windows guest, planned from its facts and hives
//! (pure), and the registry half of applying it.
//!
//! Rules, in order (each edit and file names its rule):
//! - `xen-drivers`: every Xen PV service that is not disabled gets
//!   `Start=4` (the driver files stay; the services can be enabled again).
//! - `xen-filters`: Xen drivers leave every class `UpperFilters` /
//!   `LowerFilters` list (the other entries stay, in order).
//! - `virtio-storage`: `viostor.sys` for the guest's release and
//!   architecture into `system32\drivers`, `Services\viostor` as a boot-start
//!   SCSI miniport, and (Windows before 8/2012) the CriticalDeviceDatabase
//!   entries that bind the virtio block PCI IDs to it at boot. Not done with
//!   `--ide` (the domain keeps an emulated IDE disk). Blocked without a
//!   virtio-win tree, when the tree lacks the driver, and for Windows 8/2012
//!   and later (their boot drivers come from the driver store, which this
//!   tool does not write offline).
//! - `virtio-stage`: the NetKVM, Balloon (and viostor) driver packages into
//!   `%SystemRoot%\Drivers\VirtIO`, and that folder on `DevicePath`, so
//!   Plug and Play finds them for the new devices.
//! - `firstboot`: `rhsrvany.exe` and `pnp_wait.exe` (the host's `rhsrvany`
//!   package) and a `firstboot.bat` into `\Program Files\Guestfs\Firstboot`,
//!   registered as the `rhsrvany` service: at first boot it waits for Plug
//!   and Play, installs the staged drivers (`pnputil`, Windows 2008 and
//!   later) and disables itself.
//!
//! Edits are only planned where the hive differs, so a second plan on the
//! converted guest is empty.

use std::io;
use std::path::PathBuf;

use crate::facts::{WinFacts, SCSI_ADAPTER_CLASS, VIRTIO_BLOCK_IDS};
use crate::reg::{Hive, HiveKind, Value};
use crate::virtio_win::{self, Driver};
use crate::xen;

/// A rule of the Windows conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Disable the Xen PV services.
    XenDrivers,
    /// Remove Xen drivers from class filter lists.
    XenFilters,
    /// Install the virtio block driver as a boot driver.
    VirtioStorage,
    /// Stage the other virtio drivers for Plug and Play.
    VirtioStage,
    /// The first-boot service that installs the staged drivers.
    Firstboot,
}

/// Every rule, in the order the plan applies them.
pub const RULES: &[Rule] = &[
    Rule::XenDrivers,
    Rule::XenFilters,
    Rule::VirtioStorage,
    Rule::VirtioStage,
    Rule::Firstboot,
];

impl Rule {
    /// The rule's name (reports, `--skip`).
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::XenDrivers => "xen-drivers",
            Rule::XenFilters => "xen-filters",
            Rule::VirtioStorage => "virtio-storage",
            Rule::VirtioStage => "virtio-stage",
            Rule::Firstboot => "firstboot",
        }
    }
}

/// Where an added file's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file of the virtio-win tree (relative to it).
    Tree(String),
    /// A file on the host.
    Host(PathBuf),
    /// Text written by xen2kvm.
    Text(String),
}

/// A file the conversion adds to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAdd {
    /// The rule that adds it.
    pub rule: Rule,
    /// Its path on the system volume (`/Windows/System32/drivers/viostor.sys`;
    /// the case of existing folders is the guest's business).
    pub dest: String,
    /// Its content.
    pub source: Source,
}

/// A registry value the conversion sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegEdit {
    /// The rule that sets it.
    pub rule: Rule,
    /// Which hive.
    pub hive: HiveKind,
    /// The key, from the hive's root.
    pub key: String,
    /// The value's name.
    pub name: String,
    /// The new value.
    pub value: Value,
    /// The value before, if there was one.
    pub old: Option<Value>,
}

impl RegEdit {
    /// `HKLM\SYSTEM\…\key`.
    pub fn full_key(&self) -> String {
        format!("HKLM\\{}\\{}", self.hive.as_str(), self.key)
    }
}

/// The disk bus the converted domain must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    /// virtio-blk (the driver is installed or injected).
    Virtio,
    /// Emulated IDE (`--ide`).
    Ide,
}

impl DiskBus {
    /// libvirt's `target/@bus`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskBus::Virtio => "virtio",
            DiskBus::Ide => "ide",
        }
    }
}

/// The NIC model the converted domain should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicModel {
    /// virtio-net (NetKVM installed or staged).
    Virtio,
    /// Intel e1000 (a driver ships with Windows 2008 and later).
    E1000,
    /// Realtek 8139 (a driver ships with Windows 2003/XP).
    Rtl8139,
}

impl NicModel {
    /// libvirt's `model/@type`.
    pub fn as_str(self) -> &'static str {
        match self {
            NicModel::Virtio => "virtio",
            NicModel::E1000 => "e1000",
            NicModel::Rtl8139 => "rtl8139",
        }
    }
}

/// How to convert.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// The virtio-win tree's files (relative paths), when one was given.
    pub tree: Option<&'a [String]>,
    /// What to call the tree in messages (`--virtio-win` as given).
    pub tree_name: String,
    /// Keep the guest on emulated IDE (`--ide`): no virtio block driver.
    pub ide: bool,
    /// The host's `rhsrvany.exe` and `pnp_wait.exe`, when installed.
    pub firstboot_tools: Option<(PathBuf, PathBuf)>,
}

/// Why a conversion cannot be done, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// What is wrong.
    pub reason: String,
    /// What the user can do.
    pub remedy: String,
}

impl Blocker {
    fn new(reason: impl Into<String>, remedy: impl Into<String>) -> Blocker {
        Blocker {
            reason: reason.into(),
            remedy: remedy.into(),
        }
    }
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.remedy)
    }
}

/// The planned conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Files to add, in order.
    pub files: Vec<FileAdd>,
    /// Registry values to set, in order.
    pub edits: Vec<RegEdit>,
    /// What the user should know (the conversion still goes ahead).
    pub warnings: Vec<String>,
    /// Why the conversion cannot be done (nothing is written).
    pub blockers: Vec<Blocker>,
    /// The disk bus of the converted domain.
    pub disk_bus: DiskBus,
    /// The NIC model of the converted domain.
    pub nic: NicModel,
}

impl Plan {
    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.edits.is_empty()
    }

    /// One line per file and edit, `[rule] …`, in order: what `--dry-run`
    /// prints and the report lists.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.files {
            let from = match &f.source {
                Source::Tree(p) => format!("virtio-win {p}"),
                Source::Host(p) => format!("host {}", p.display()),
                Source::Text(t) => format!("{} lines written by xen2kvm", t.lines().count()),
            };
            out.push(format!(
                "[{}] add {} (from {from})",
                f.rule.as_str(),
                f.dest
            ));
        }
        for e in &self.edits {
            let name = if e.name.is_empty() { "@" } else { &e.name };
            let old = match &e.old {
                Some(v) => format!("was {v}"),
                None => "new".to_owned(),
            };
            out.push(format!(
                "[{}] {} {name} = {} ({old})",
                e.rule.as_str(),
                e.full_key(),
                e.value
            ));
        }
        out
    }
}

/// Where the first-boot files go, on the system volume.
pub const FIRSTBOOT_DIR: &str = "/Program Files/Guestfs/Firstboot";
/// Where the virtio drivers are staged, under the system root.
pub const STAGE_DIR: &str = "Drivers/VirtIO";

struct Planner<'a> {
    system: &'a dyn Hive,
    software: &'a dyn Hive,
    plan: Plan,
}

impl Planner<'_> {
    fn set(
        &mut self,
        rule: Rule,
        hive: HiveKind,
        key: &str,
        name: &str,
        value: Value,
    ) -> io::Result<()> {
        let h = match hive {
            HiveKind::System => self.system,
            HiveKind::Software => self.software,
        };
        let old = h.value(key, name)?;
        if old.as_ref() != Some(&value) {
            self.plan.edits.push(RegEdit {
                rule,
                hive,
                key: key.to_owned(),
                name: name.to_owned(),
                value,
                old,
            });
        }
        Ok(())
    }

    fn add(&mut self, rule: Rule, dest: String, source: Source) {
        self.plan.files.push(FileAdd { rule, dest, source });
    }
}

/// The drive letter of the system root (`SystemRoot` in the SOFTWARE hive,
/// `C:\Windows`), `C` when it says nothing usable.
fn system_drive(software: &dyn Hive) -> io::Result<char> {
    let root = software.value("Microsoft\\Windows NT\\CurrentVersion", "SystemRoot")?;
    Ok(root
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|s| s.chars().next())
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or('C'))
}

/// The `firstboot.bat` the `rhsrvany` service runs (CRLF line ends).
pub fn firstboot_script(f: &WinFacts) -> String {
    let mut lines = vec![
        "@echo off".to_owned(),
        "rem xen2kvm first boot: waits for Plug and Play to settle, installs the".to_owned(),
        "rem virtio drivers staged in %SystemRoot%\\Drivers\\VirtIO, then disables itself."
            .to_owned(),
        "cd /d \"%~dp0\"".to_owned(),
        "echo %date% %time% xen2kvm first boot >> log.txt".to_owned(),
        "pnp_wait.exe >> log.txt 2>&1".to_owned(),
    ];
    if f.base.version >= (6, 0) {
        lines.push(
            "for %%i in (\"%SystemRoot%\\Drivers\\VirtIO\\*.inf\") do pnputil -i -a \"%%i\" >> log.txt 2>&1"
                .to_owned(),
        );
    }
    lines.push("sc config rhsrvany start= disabled >> log.txt 2>&1".to_owned());
    lines.push("echo %date% %time% done >> log.txt".to_owned());
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

/// Plans the conversion of a Windows guest.
pub fn plan(
    f: &WinFacts,
    system: &dyn Hive,
    software: &dyn Hive,
    opts: &Options<'_>,
) -> io::Result<Plan> {
    let mut p = Planner {
        system,
        software,
        plan: Plan {
            files: Vec::new(),
            edits: Vec::new(),
            warnings: Vec::new(),
            blockers: Vec::new(),
            disk_bus: if opts.ide {
                DiskBus::Ide
            } else {
                DiskBus::Virtio
            },
            nic: if f.netkvm {
                NicModel::Virtio
            } else if f.base.version >= (6, 0) {
                NicModel::E1000
            } else {
                NicModel::Rtl8139
            },
        },
    };
    let cs = &f.control_set;
    let sr = f.base.systemroot.trim_end_matches('/');

    for s in &f.pv_services {
        if s.start != Some(xen::SERVICE_DISABLED) {
            p.set(
                Rule::XenDrivers,
                HiveKind::System,
                &format!("{cs}\\Services\\{}", s.name),
                "Start",
                Value::Dword(xen::SERVICE_DISABLED),
            )?;
        }
    }
    for c in &f.filters {
        p.set(
            Rule::XenFilters,
            HiveKind::System,
            &format!("{cs}\\Control\\Class\\{}", c.guid),
            c.kind.value_name(),
            Value::MultiSz(c.without_xen()),
        )?;
    }

    let release = f.release();
    let arch = &f.base.arch;
    let needs_storage = !opts.ide && !f.virtio.ready(f.base.version);
    if needs_storage {
        if f.base.version >= (6, 2) {
            p.plan.blockers.push(Blocker::new(
                format!("{release} finds its boot drivers in the driver store, which xen2kvm does not write offline"),
                "install the virtio-win drivers in the guest while it still runs on Xen and convert again, or convert with --ide to keep an emulated IDE disk",
            ));
        } else if let Some(tree) = opts.tree {
            match virtio_win::find(tree, f, Driver::Viostor) {
                Some(found) => {
                    let sys = found.sys().unwrap_or_default().to_owned();
                    p.add(
                        Rule::VirtioStorage,
                        format!("{sr}/System32/drivers/viostor.sys"),
                        Source::Tree(sys),
                    );
                    let svc = format!("{cs}\\Services\\viostor");
                    let sys_kind = HiveKind::System;
                    p.set(Rule::VirtioStorage, sys_kind, &svc, "Type", Value::Dword(1))?;
                    p.set(Rule::VirtioStorage, sys_kind, &svc, "Start", Value::Dword(0))?;
                    p.set(
                        Rule::VirtioStorage,
                        sys_kind,
                        &svc,
                        "ErrorControl",
                        Value::Dword(1),
                    )?;
                    p.set(
                        Rule::VirtioStorage,
                        sys_kind,
                        &svc,
                        "Group",
                        Value::Sz("SCSI miniport".into()),
                    )?;
                    p.set(
                        Rule::VirtioStorage,
                        sys_kind,
                        &svc,
                        "ImagePath",
                        Value::ExpandSz("system32\\drivers\\viostor.sys".into()),
                    )?;
                    for id in VIRTIO_BLOCK_IDS {
                        let key = format!("{cs}\\Control\\CriticalDeviceDatabase\\{id}");
                        p.set(
                            Rule::VirtioStorage,
                            sys_kind,
                            &key,
                            "Service",
                            Value::Sz("viostor".into()),
                        )?;
                        p.set(
                            Rule::VirtioStorage,
                            sys_kind,
                            &key,
                            "ClassGUID",
                            Value::Sz(SCSI_ADAPTER_CLASS.into()),
                        )?;
                    }
                }
                None => p.plan.blockers.push(Blocker::new(
                    format!(
                        "{} has no virtio block driver for {release} {arch} (looked for {})",
                        opts.tree_name,
                        virtio_win::wanted(f, Driver::Viostor)
                    ),
                    "give the virtio-win release that still supports it (Windows Server 2003: 0.1.173 or earlier), or convert with --ide",
                )),
            }
        } else {
            p.plan.blockers.push(Blocker::new(
                format!("no virtio-win drivers given, and {release} has no virtio block driver to boot from"),
                format!(
                    "pass --virtio-win DIR|ISO (the virtio-win drivers, with {} for this {arch} guest), or --ide to keep the guest on an emulated IDE disk",
                    virtio_win::wanted(f, Driver::Viostor)
                ),
            ));
        }
    }

    let mut staged_any = false;
    if let Some(tree) = opts.tree {
        let mut drivers = vec![Driver::NetKvm, Driver::Balloon];
        if !opts.ide {
            drivers.insert(0, Driver::Viostor);
        }
        for d in drivers {
            match virtio_win::find(tree, f, d) {
                Some(found) => {
                    for file in &found.files {
                        let name = file.rsplit('/').next().unwrap_or(file);
                        if f.base.staged.contains(&name.to_ascii_lowercase()) {
                            continue;
                        }
                        p.add(
                            Rule::VirtioStage,
                            format!("{sr}/{STAGE_DIR}/{name}"),
                            Source::Tree(file.clone()),
                        );
                        staged_any = true;
                    }
                    if d == Driver::NetKvm {
                        p.plan.nic = NicModel::Virtio;
                    }
                }
                None if d == Driver::NetKvm && !f.netkvm => p.plan.warnings.push(format!(
                    "{} has no NetKVM driver for {release} {arch} (looked for {}): the domain gets an emulated {} NIC",
                    opts.tree_name,
                    virtio_win::wanted(f, d),
                    p.plan.nic.as_str()
                )),
                None => {}
            }
        }
        let stage_path = "%SystemRoot%\\Drivers\\VirtIO";
        if staged_any || !f.base.staged.is_empty() {
            let current = f.device_path.clone().unwrap_or_default();
            let has = current
                .split(';')
                .any(|d| d.trim().eq_ignore_ascii_case(stage_path));
            if !has {
                let new = if current.trim().is_empty() {
                    format!("%SystemRoot%\\inf;{stage_path}")
                } else {
                    format!("{current};{stage_path}")
                };
                p.set(
                    Rule::VirtioStage,
                    HiveKind::Software,
                    "Microsoft\\Windows\\CurrentVersion",
                    "DevicePath",
                    Value::ExpandSz(new),
                )?;
            }
        }
    }

    if staged_any && !f.firstboot {
        match &opts.firstboot_tools {
            Some((rhsrvany, pnp_wait)) => {
                p.add(
                    Rule::Firstboot,
                    format!("{FIRSTBOOT_DIR}/rhsrvany.exe"),
                    Source::Host(rhsrvany.clone()),
                );
                p.add(
                    Rule::Firstboot,
                    format!("{FIRSTBOOT_DIR}/pnp_wait.exe"),
                    Source::Host(pnp_wait.clone()),
                );
                p.add(
                    Rule::Firstboot,
                    format!("{FIRSTBOOT_DIR}/firstboot.bat"),
                    Source::Text(firstboot_script(f)),
                );
                let drive = system_drive(software)?;
                let dir = format!("{drive}:{}", FIRSTBOOT_DIR.replace('/', "\\"));
                let svc = format!("{cs}\\Services\\rhsrvany");
                let k = HiveKind::System;
                let r = Rule::Firstboot;
                p.set(r, k, &svc, "Type", Value::Dword(0x10))?;
                p.set(r, k, &svc, "Start", Value::Dword(2))?;
                p.set(r, k, &svc, "ErrorControl", Value::Dword(1))?;
                p.set(
                    r,
                    k,
                    &svc,
                    "ImagePath",
                    Value::ExpandSz(format!("\"{dir}\\rhsrvany.exe\"")),
                )?;
                p.set(
                    r,
                    k,
                    &svc,
                    "DisplayName",
                    Value::Sz("xen2kvm first boot (installs the virtio drivers)".into()),
                )?;
                p.set(r, k, &svc, "ObjectName", Value::Sz("LocalSystem".into()))?;
                let params = format!("{svc}\\Parameters");
                p.set(
                    r,
                    k,
                    &params,
                    "CommandLine",
                    Value::Sz(format!("cmd /c \"{dir}\\firstboot.bat\"")),
                )?;
                p.set(r, k, &params, "PWD", Value::Sz(dir.clone()))?;
            }
            None => p.plan.blockers.push(Blocker::new(
                "the first-boot service that installs the staged virtio drivers needs rhsrvany.exe and pnp_wait.exe, which this host does not have",
                "install the rhsrvany package on this host (Debian: bookworm-backports; /usr/share/virt-tools)",
            )),
        }
    }
    Ok(p.plan)
}

/// Sets the plan's values of one hive; returns how many.
pub fn apply_edits(plan: &Plan, kind: HiveKind, hive: &mut dyn Hive) -> io::Result<usize> {
    let mut n = 0;
    for e in plan.edits.iter().filter(|e| e.hive == kind) {
        hive.set_value(&e.key, &e.name, &e.value).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("setting {} {}: {err}", e.full_key(), e.name),
            )
        })?;
        n += 1;
    }
    Ok(n)
}
