//! Windows guests in the CLI: the virtio-win tree (`--virtio-win DIR|ISO`;
//! an ISO is unpacked with `bsdtar`, only the driver folders used), and the
//! Windows halves of `inspect` and `convert` over the pure plan of
//! `xen2kvm_windows` and the appliance's [`WindowsGuest`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xen2kvm_inspector::facts::Verdict;
use xen2kvm_inspector::windows::WindowsGuest;
use xen2kvm_windows::facts::WinFacts;
use xen2kvm_windows::plan::{DiskBus, Options, Plan, Source};

use crate::convert::{Job, Mode, Report, Times};
use crate::{interrupt, Exit};

/// Where Debian's `rhsrvany` package puts the first-boot service wrapper.
const VIRT_TOOLS: &str = "/usr/share/virt-tools";

/// The Windows options of `inspect`, `convert` and `migrate`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct WinArgs {
    /// Windows guests: the virtio-win drivers (a directory in the ISO's
    /// layout, or the ISO): the virtio block driver is installed as a boot
    /// driver, the network and balloon drivers staged for first boot.
    #[arg(long, value_name = "DIR|ISO")]
    pub(crate) virtio_win: Option<PathBuf>,
    /// Windows guests: install no virtio block driver; the domain keeps an
    /// emulated IDE disk (slower, but needs no drivers).
    #[arg(long)]
    pub(crate) ide: bool,
}

impl WinArgs {
    /// Refuses a `--virtio-win` that does not exist, before the appliance
    /// is launched (the tree itself is read once the guest is known to be
    /// Windows).
    pub(crate) fn check(&self) -> Result<()> {
        if let Some(p) = &self.virtio_win {
            std::fs::metadata(p).with_context(|| format!("--virtio-win {}", p.display()))?;
        }
        Ok(())
    }
}

/// A virtio-win tree: its root on the host and its files.
pub(crate) struct VirtioWin {
    root: PathBuf,
    files: Vec<String>,
    name: String,
    _unpacked: Option<tempfile::TempDir>,
}

/// The driver folders read from an ISO.
const ISO_FOLDERS: &[&str] = &["viostor", "NetKVM", "Balloon"];

impl VirtioWin {
    /// Opens a tree or unpacks the driver folders of an ISO.
    pub(crate) fn open(path: &Path) -> Result<VirtioWin> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("--virtio-win {}", path.display()))?;
        let name = path.display().to_string();
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, "", &mut files)?;
            files.sort();
            return Ok(VirtioWin {
                root: path.to_owned(),
                files,
                name,
                _unpacked: None,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("xen2kvm-virtio-win.")
            .tempdir()
            .context("creating a directory to unpack the virtio-win ISO")?;
        // Only the driver folders (the whole ISO is hundreds of MiB),
        // whatever their case on this ISO.
        let bsdtar = |args: &[&std::ffi::OsStr]| -> Result<String> {
            let out = Command::new("bsdtar").args(args).output().map_err(|e| {
                anyhow::anyhow!(
                    "reading {name} needs bsdtar (Debian: libarchive-tools), which could not run: {e}"
                )
            })?;
            if !out.status.success() {
                bail!(
                    "{name} could not be read as a virtio-win ISO: bsdtar: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let listing = bsdtar(&["-t".as_ref(), "-f".as_ref(), path.as_os_str()])?;
        let wanted: Vec<&str> = listing
            .lines()
            .filter(|l| !l.ends_with('/'))
            .filter(|l| {
                let first = l.trim_start_matches("./").split('/').next().unwrap_or("");
                ISO_FOLDERS.iter().any(|f| f.eq_ignore_ascii_case(first))
            })
            .collect();
        if wanted.is_empty() {
            bail!(
                "{name} holds none of the virtio-win driver folders ({})",
                ISO_FOLDERS.join(", ")
            );
        }
        let list = dir.path().join(".xen2kvm-files");
        std::fs::write(&list, wanted.join("\n") + "\n")
            .with_context(|| format!("writing {}", list.display()))?;
        bsdtar(&[
            "-x".as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
            "-C".as_ref(),
            dir.path().as_os_str(),
            "-T".as_ref(),
            list.as_os_str(),
        ])?;
        std::fs::remove_file(&list).with_context(|| format!("removing {}", list.display()))?;
        let mut files = Vec::new();
        walk(dir.path(), "", &mut files)?;
        files.sort();
        if files.is_empty() {
            bail!(
                "{name} holds none of the virtio-win driver folders ({})",
                ISO_FOLDERS.join(", ")
            );
        }
        Ok(VirtioWin {
            root: dir.path().to_owned(),
            files,
            name,
            _unpacked: Some(dir),
        })
    }
}

fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
    let dir = root.join(rel);
    for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let t = e.file_type()?;
        if t.is_dir() {
            walk(root, &r, out)?;
        } else if t.is_file() {
            out.push(r);
        }
    }
    Ok(())
}

/// The tree and options of one run.
pub(crate) struct Win {
    tree: Option<VirtioWin>,
    ide: bool,
    tools: Option<(PathBuf, PathBuf)>,
}

impl Win {
    /// Opens `--virtio-win` (when given).
    pub(crate) fn new(args: &WinArgs) -> Result<Win> {
        let tools = {
            let a = Path::new(VIRT_TOOLS).join("rhsrvany.exe");
            let b = Path::new(VIRT_TOOLS).join("pnp_wait.exe");
            (a.is_file() && b.is_file()).then_some((a, b))
        };
        Ok(Win {
            tree: args
                .virtio_win
                .as_deref()
                .map(VirtioWin::open)
                .transpose()?,
            ide: args.ide,
            tools,
        })
    }

    fn options(&self) -> Options<'_> {
        Options {
            tree: self.tree.as_ref().map(|t| t.files.as_slice()),
            tree_name: self
                .tree
                .as_ref()
                .map_or_else(|| "virtio-win".to_owned(), |t| t.name.clone()),
            ide: self.ide,
            firstboot_tools: self.tools.clone(),
        }
    }
}

/// The verdict of a plan: blocked, needs (the plan's lines), or ready.
fn verdict(f: &WinFacts, p: &Plan) -> Verdict {
    if let Some(b) = p.blockers.first() {
        return Verdict::Blocked {
            reason: b.reason.clone(),
            remedy: b.remedy.clone(),
        };
    }
    if p.is_empty() && f.xenisms().is_empty() {
        Verdict::Ready
    } else {
        Verdict::Needs(p.lines())
    }
}

/// The facts in a few lines (inspect's text report).
fn describe(f: &WinFacts, root: &str) -> Vec<String> {
    let b = &f.base;
    let mut out = vec![format!(
        "guest: {} ({}), {}.{} build {}, {}, {}; root {root}, system root {}, control set {}",
        f.release(),
        b.product,
        b.version.0,
        b.version.1,
        f.build,
        b.arch,
        if f.server { "server" } else { "client" },
        b.systemroot,
        f.control_set
    )];
    out.push(format!("xen pv drivers ({}):", f.pv_services.len()));
    for s in &f.pv_services {
        out.push(format!(
            "  {} [{}] starts {}{}",
            s.name,
            s.set.as_str(),
            xen2kvm_windows::xen::start_name(s.start),
            if s.display.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.display)
            }
        ));
    }
    out.push(format!(
        "class filters naming xen drivers ({}):",
        f.filters.len()
    ));
    for c in &f.filters {
        out.push(format!(
            "  {} {} {}: {}",
            c.class,
            c.guid,
            c.kind.value_name(),
            c.drivers.join(", ")
        ));
    }
    let v = &f.virtio;
    out.push(format!(
        "virtio storage driver: {}",
        if !v.service {
            "not installed".to_owned()
        } else {
            format!(
                "viostor installed ({}, critical device entry: {})",
                if v.boot_start {
                    "boot start"
                } else {
                    "not boot start"
                },
                if v.critical_device { "yes" } else { "no" }
            )
        }
    ));
    out.push(format!(
        "virtio network driver: {}",
        if f.netkvm {
            "installed"
        } else {
            "not installed"
        }
    ));
    if f.firstboot {
        out.push("first-boot service: set up (rhsrvany)".to_owned());
    }
    out
}

/// `inspect` of a Windows guest.
#[allow(clippy::print_stdout)]
pub(crate) fn inspect(
    guest: WindowsGuest,
    disks: &[PathBuf],
    json: bool,
    args: &WinArgs,
) -> Result<Exit> {
    let win = Win::new(args)?;
    let f = guest.facts()?;
    let p = guest.plan(&f, &win.options())?;
    let root = guest.device().to_owned();
    guest.close()?;
    let v = verdict(&f, &p);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&JsonInspect::new(disks, &root, &f, &p, &v))?
        );
    } else {
        for l in describe(&f, &root) {
            println!("{l}");
        }
        let x = f.xenisms();
        println!("xen-isms ({}):", x.len());
        for i in &x {
            println!("  [{}] {}", i.kind(), i.describe(&f.control_set));
        }
        println!(
            "domain: disk bus {}, NIC {}",
            p.disk_bus.as_str(),
            p.nic.as_str()
        );
        for w in &p.warnings {
            println!("warning: {w}");
        }
        crate::inspect::print_verdict(&v);
    }
    Ok(match v {
        Verdict::Blocked { .. } => Exit::Blocked,
        _ => Exit::Ok,
    })
}

/// `convert` of a Windows guest (copy mode and `--dry-run`; never in
/// place): plan, apply in the same appliance, then the promise checked:
/// no Xen-ism left and a second plan empty.
pub(crate) fn convert(
    job: &Job<'_>,
    guest: WindowsGuest,
    report: &mut Report,
    times: &mut Times,
) -> Result<Exit> {
    let win = Win::new(job.windows)?;
    let t = Instant::now();
    let f = guest.facts()?;
    times.inspect = t.elapsed();
    report.set_windows_facts(&f, guest.device());
    if matches!(job.mode, Mode::InPlace) {
        guest.close()?;
        report.result = "failed";
        report.error = Some(
            "Windows guests are converted to a copy only (-o OUT, or migrate): their registry hives cannot be journaled and rolled back like a Linux guest's files; --dry-run shows the plan"
                .to_owned(),
        );
        return Ok(Exit::Failed);
    }
    let opts = win.options();
    let p = guest.plan(&f, &opts)?;
    report.set_windows_plan(&p);
    report.set_windows_json(JsonWindowsPlan::new(&f, &p));
    if let Some(b) = p.blockers.first() {
        guest.close()?;
        report.result = "blocked";
        report.error = Some(format!("{}; {}", b.reason, b.remedy));
        return Ok(Exit::Blocked);
    }
    if matches!(job.mode, Mode::DryRun) {
        guest.close()?;
        report.result = if p.is_empty() {
            "unchanged"
        } else {
            "would-change"
        };
        return Ok(Exit::Ok);
    }
    if !job.quiet {
        eprintln!(
            "xen2kvm: adding {} file(s), setting {} registry value(s)",
            p.files.len(),
            p.edits.len()
        );
    }
    let t = Instant::now();
    interrupt::fault("windows-apply");
    guest.make_writable()?;
    let applied = guest.apply(&p, win.tree.as_ref().map(|t| t.root.as_path()));
    times.edits = t.elapsed();
    let failure = match applied {
        Err(e) => Some(e.to_string()),
        Ok(()) if interrupt::requested() => Some("interrupted after the edits".to_owned()),
        Ok(()) => {
            let t = Instant::now();
            let after = guest.facts()?;
            let again = guest.plan(&after, &opts)?;
            times.inspect += t.elapsed();
            let mut left: Vec<String> = after
                .xenisms()
                .iter()
                .map(|x| format!("xen-ism [{}] {}", x.kind(), x.describe(&after.control_set)))
                .collect();
            left.extend(
                again
                    .lines()
                    .into_iter()
                    .map(|l| format!("still to do: {l}")),
            );
            if !p.is_empty()
                && p.disk_bus == DiskBus::Virtio
                && !after.virtio.ready(after.base.version)
            {
                left.push("the virtio block driver is not registered to start at boot".to_owned());
            }
            if left.is_empty() {
                None
            } else {
                report.residue = left;
                Some("after the conversion the guest still has Xen settings or work left (listed under \"residue\")".to_owned())
            }
        }
    };
    let closed = guest.close();
    if let Some(error) = failure {
        if interrupt::requested() {
            return Ok(
                report.interrupted("the partial output was deleted; the source was not changed")
            );
        }
        report.result = "failed";
        report.error = Some(format!(
            "{error} (the partial output was deleted; the source was not changed)"
        ));
        return Ok(Exit::Failed);
    }
    closed?;
    report.result = if p.is_empty() {
        "unchanged"
    } else {
        "converted"
    };
    Ok(Exit::Ok)
}

/// One registry value of the plan (JSON).
#[derive(Debug, Serialize)]
pub(crate) struct JsonRegEdit {
    rule: &'static str,
    key: String,
    name: String,
    value: String,
    old: Option<String>,
}

/// One file of the plan (JSON).
#[derive(Debug, Serialize)]
pub(crate) struct JsonAdded {
    rule: &'static str,
    path: String,
    from: String,
}

/// The Windows part of convert's report.
#[derive(Debug, Serialize)]
pub(crate) struct JsonWindowsPlan {
    #[serde(skip)]
    version: (u32, u32),
    release: String,
    control_set: String,
    disk_bus: &'static str,
    nic: &'static str,
    registry: Vec<JsonRegEdit>,
    added: Vec<JsonAdded>,
}

impl JsonWindowsPlan {
    pub(crate) fn disk_bus(&self) -> &'static str {
        self.disk_bus
    }

    pub(crate) fn nic(&self) -> &'static str {
        self.nic
    }

    pub(crate) fn release(&self) -> &str {
        &self.release
    }

    /// What the domain needs (the domxml `windows` rule's input).
    pub(crate) fn domain(&self) -> xen2kvm_domxml::Windows {
        xen2kvm_domxml::Windows {
            version: self.version,
            disk_bus: self.disk_bus.to_owned(),
            nic: self.nic.to_owned(),
        }
    }

    pub(crate) fn new(f: &WinFacts, p: &Plan) -> JsonWindowsPlan {
        JsonWindowsPlan {
            version: f.base.version,
            release: f.release(),
            control_set: f.control_set.clone(),
            disk_bus: p.disk_bus.as_str(),
            nic: p.nic.as_str(),
            registry: p
                .edits
                .iter()
                .map(|e| JsonRegEdit {
                    rule: e.rule.as_str(),
                    key: e.full_key(),
                    name: e.name.clone(),
                    value: e.value.to_string(),
                    old: e.old.as_ref().map(ToString::to_string),
                })
                .collect(),
            added: p
                .files
                .iter()
                .map(|a| JsonAdded {
                    rule: a.rule.as_str(),
                    path: a.dest.clone(),
                    from: match &a.source {
                        Source::Tree(t) => format!("virtio-win:{t}"),
                        Source::Host(h) => h.display().to_string(),
                        Source::Text(_) => "xen2kvm".to_owned(),
                    },
                })
                .collect(),
        }
    }
}

/// `inspect --json` of a Windows guest: the Linux document's shape (no
/// kernels, bootloader `windows`) plus a `windows` object (docs/json.md).
#[derive(Serialize)]
struct JsonInspect {
    version: u32,
    disks: Vec<String>,
    root: String,
    os: serde_json::Value,
    kernels: Vec<()>,
    chosen_kernel: Option<String>,
    bootloader: serde_json::Value,
    initrd_tool: &'static str,
    xenisms: Vec<serde_json::Value>,
    verdict: serde_json::Value,
    windows: serde_json::Value,
}

impl JsonInspect {
    fn new(disks: &[PathBuf], root: &str, f: &WinFacts, p: &Plan, v: &Verdict) -> JsonInspect {
        use serde_json::json;
        let b = &f.base;
        JsonInspect {
            version: 1,
            disks: disks.iter().map(|d| d.display().to_string()).collect(),
            root: root.to_owned(),
            os: json!({
                "distro": "windows",
                "version": format!("{}.{}", b.version.0, b.version.1),
                "product": b.product,
                "arch": b.arch,
                "init": "windows",
            }),
            kernels: Vec::new(),
            chosen_kernel: None,
            bootloader: json!({"kind": "windows", "config": null, "default_entry": null, "boot_code": null}),
            initrd_tool: "none",
            xenisms: f
                .xenisms()
                .iter()
                .map(|x| {
                    let key = x.key(&f.control_set);
                    json!({"kind": x.kind(), "file": key, "line": 0, "text": x.describe(&f.control_set)})
                })
                .collect(),
            verdict: match v {
                Verdict::Ready => json!({"status": "ready"}),
                Verdict::Needs(n) => json!({"status": "needs", "needs": n}),
                Verdict::Blocked { reason, remedy } => {
                    json!({"status": "blocked", "reason": reason, "remedy": remedy})
                }
            },
            windows: json!({
                "release": f.release(),
                "build": f.build,
                "server": f.server,
                "systemroot": b.systemroot,
                "control_set": f.control_set,
                "pv_drivers": f.pv_services.iter().map(|s| json!({
                    "name": s.name,
                    "set": s.set.as_str(),
                    "start": s.start,
                    "display": s.display,
                })).collect::<Vec<_>>(),
                "class_filters": f.filters.iter().map(|c| json!({
                    "guid": c.guid,
                    "class": c.class,
                    "kind": c.kind.value_name(),
                    "drivers": c.drivers,
                })).collect::<Vec<_>>(),
                "virtio_storage": {
                    "installed": f.virtio.service,
                    "boot_start": f.virtio.boot_start,
                    "critical_device": f.virtio.critical_device,
                },
                "netkvm": f.netkvm,
                "firstboot": f.firstboot,
                "disk_bus": p.disk_bus.as_str(),
                "nic": p.nic.as_str(),
                "warnings": p.warnings,
            }),
        }
    }
}
