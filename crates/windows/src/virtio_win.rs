//! The virtio-win driver tree's layout (the ISO's, and the directory it is
//! unpacked to): `<driver>/<release>/<arch>/<files>`, e.g.
//! `viostor/2k8R2/amd64/viostor.sys`. Pure: the caller lists the tree's
//! files (relative paths with `/`); names compare case-insensitively.
//!
//! The drivers are not xen2kvm's to ship: the user gives the tree
//! (`--virtio-win DIR|ISO`). Windows Server 2003 and XP are in the
//! virtio-win releases up to 0.1.173 (`2k3`, `xp`).

use crate::facts::WinFacts;

/// A driver of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Driver {
    /// The virtio block driver (`viostor`).
    Viostor,
    /// The virtio network driver (`NetKVM`).
    NetKvm,
    /// The memory balloon driver (`Balloon`).
    Balloon,
}

impl Driver {
    /// The tree's directory for the driver.
    pub fn dir(self) -> &'static str {
        match self {
            Driver::Viostor => "viostor",
            Driver::NetKvm => "NetKVM",
            Driver::Balloon => "Balloon",
        }
    }

    /// The driver binary's file name.
    pub fn sys(self) -> &'static str {
        match self {
            Driver::Viostor => "viostor.sys",
            Driver::NetKvm => "netkvm.sys",
            Driver::Balloon => "balloon.sys",
        }
    }
}

/// The tree's release directories for a guest, best first.
pub fn release_dirs(f: &WinFacts) -> Vec<&'static str> {
    let (major, minor) = f.base.version;
    let build = f.build;
    match (major, minor, f.server) {
        (5, 1, _) => vec!["xp"],
        (5, 2, true) => vec!["2k3"],
        (5, 2, false) => vec!["xp"],
        (6, 0, true) => vec!["2k8"],
        (6, 0, false) => vec!["vista", "2k8"],
        (6, 1, true) => vec!["2k8R2"],
        (6, 1, false) => vec!["w7"],
        (6, 2, true) => vec!["2k12"],
        (6, 2, false) => vec!["w8"],
        (6, 3, true) => vec!["2k12R2"],
        (6, 3, false) => vec!["w8.1"],
        (10, _, true) if build >= 20348 => vec!["2k22"],
        (10, _, true) if build >= 17763 => vec!["2k19"],
        (10, _, true) => vec!["2k16"],
        (10, _, false) if build >= 22000 => vec!["w11"],
        (10, _, false) => vec!["w10"],
        _ => Vec::new(),
    }
}

/// The tree's architecture directory for a guest architecture.
pub fn arch_dir(arch: &str) -> &'static str {
    match arch {
        "x86_64" | "amd64" => "amd64",
        _ => "x86",
    }
}

/// One driver's files for one guest, found in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Which driver.
    pub driver: Driver,
    /// The directory, relative to the tree (as the tree spells it).
    pub dir: String,
    /// Its files (relative to the tree), sorted.
    pub files: Vec<String>,
}

impl Found {
    /// The driver binary, relative to the tree.
    pub fn sys(&self) -> Option<&str> {
        self.files
            .iter()
            .find(|p| {
                p.rsplit('/')
                    .next()
                    .is_some_and(|n| n.eq_ignore_ascii_case(self.driver.sys()))
            })
            .map(String::as_str)
    }
}

/// Where the driver would be for this guest (for messages).
pub fn wanted(f: &WinFacts, driver: Driver) -> String {
    let release = release_dirs(f).first().copied().unwrap_or("?");
    format!(
        "{}/{release}/{}/{}",
        driver.dir(),
        arch_dir(&f.base.arch),
        driver.sys()
    )
}

/// The driver's files for the guest's release and architecture, when the
/// tree has them with the driver binary among them.
pub fn find(files: &[String], f: &WinFacts, driver: Driver) -> Option<Found> {
    let arch = arch_dir(&f.base.arch);
    for release in release_dirs(f) {
        let prefix = format!("{}/{release}/{arch}/", driver.dir()).to_ascii_lowercase();
        let mut hits: Vec<String> = files
            .iter()
            .filter(|p| {
                let l = p.to_ascii_lowercase();
                l.starts_with(&prefix) && !l[prefix.len()..].contains('/')
            })
            .cloned()
            .collect();
        if hits.is_empty() {
            continue;
        }
        hits.sort();
        let dir = hits[0][..prefix.len() - 1].to_owned();
        let found = Found {
            driver,
            dir,
            files: hits,
        };
        if found.sys().is_some() {
            return Some(found);
        }
    }
    None
}
