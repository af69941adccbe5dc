//! `xen2kvm migrate`: the whole job, in virt-v2v's spelling — a stopped
//! Xen domain in (its libvirt XML, its xl.cfg, or the domain through
//! libvirt), a KVM domain out (`-o local`: the disks and `NAME.xml` in a
//! directory; `-o libvirt`: the disks in a directory storage pool and the
//! domain defined, `--start`ed on request).
//!
//! Phases, each timed in the report: `check` (the domain is shut off, its
//! disks readable, no output exists, the output filesystems have room, the
//! tools are there), `copy` (each disk read once: the output, the backup
//! copy and the SHA-256 of the source from that one read when source and
//! output are raw; otherwise the backup from one read and the output by
//! `qemu-img convert`), `backup` (`--backup DIR`: the domain config copied,
//! `SHA256SUMS` written, and every copy re-read from the disk against it),
//! `convert` (the conversion of `xen2kvm convert`, on the copies, one
//! appliance launch), `domain` (the `domxml` translation, pointing at the
//! new disks), `boot-check` (`--boot-check`: the converted boot disk boots
//! in QEMU before anything is defined) and `output` (outputs renamed into
//! place, `NAME.xml` written or the domain defined).
//!
//! A failure or a signal in any phase leaves nothing defined and no output
//! (partial copies, backup copies of this run, the XML are removed); the
//! source is only read, and a write to it during the copy is detected
//! (its ctime) and fails the run. Running the same command again after
//! fixing the cause starts afresh. Exit 0 migrated (or, with --dry-run,
//! would migrate), 1 failed, 3 blocked (the guest needs something first),
//! 128+N stopped by signal N.

pub(crate) mod events;
pub(crate) mod input;
pub(crate) mod libvirt;
mod remote;
mod state;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xen2kvm_bootcheck::{self as bc, AccelChoice};
use xen2kvm_diskcopy::{self as diskcopy, sums, Allocation, Sink};
use xen2kvm_domxml as dx;
use xen2kvm_inspector::xen::DiskMap;

use crate::convert;
use crate::interrupt::{self, Policy};
use crate::lock::{Access, Locks};
use crate::Exit;
use events::{Events, PhaseTime, Style};
use input::{Disk, InputMode, Skipped};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where the domain comes from (-i): libvirtxml (a `virsh dumpxml`
    /// file), libvirt (a domain of -ic URI), xl (an xl.cfg).
    #[arg(short = 'i', long = "input-mode", value_enum, value_name = "MODE")]
    input_mode: InputMode,
    /// -ic: the libvirt connection of -i libvirt (default xen:///system;
    /// xen+ssh://root@host/system reaches a remote Xen host).
    #[arg(long = "input-conn", value_name = "URI")]
    input_conn: Option<String>,
    /// The domain XML file, the xl.cfg, or the domain's name (-i libvirt).
    input: String,
    /// The disks are on this host ([USER@]HOST or ssh://[USER@]HOST[:PORT],
    /// e.g. the Xen host): read over ssh, checksummed on arrival.
    #[arg(long, value_name = "DEST")]
    input_host: Option<String>,
    /// An ssh option for --input-host (`-o OPT`, e.g. IdentityFile=KEY).
    /// Repeatable.
    #[arg(long, value_name = "OPT", requires = "input_host")]
    input_ssh_option: Vec<String>,
    /// Where the result goes (-o): local (-os DIR: disks and NAME.xml) or
    /// libvirt (-os POOL: disks in the directory pool, domain defined).
    #[arg(short = 'o', long = "output-mode", value_enum, default_value_t = OutputMode::Libvirt, value_name = "MODE")]
    output_mode: OutputMode,
    /// -oc: the libvirt connection of -o libvirt.
    #[arg(
        long = "output-conn",
        value_name = "URI",
        default_value = "qemu:///system"
    )]
    output_conn: String,
    /// -os: the output directory (-o local) or storage pool (-o libvirt,
    /// default "default").
    #[arg(long = "output-storage", value_name = "DIR|POOL")]
    output_storage: Option<String>,
    /// -on: the migrated domain's name (default: the Xen domain's).
    #[arg(long = "output-name", value_name = "NAME")]
    output_name: Option<String>,
    /// -of: the output disks' format (default: raw when every source disk
    /// is raw, else qcow2).
    #[arg(long = "output-format", value_parser = ["raw", "qcow2"], value_name = "FORMAT")]
    output_format: Option<String>,
    /// -oa: sparse (holes kept) or preallocated (every byte allocated).
    #[arg(long = "output-allocation", value_enum, default_value_t = Alloc::Sparse, value_name = "ALLOC")]
    output_allocation: Alloc,
    /// Put interfaces on bridge OUT (all), or those on IN on OUT (IN:OUT). Repeatable.
    #[arg(short = 'b', long = "bridge", value_name = "[IN:]OUT")]
    bridge: Vec<String>,
    /// Put interfaces on libvirt network OUT (all), or those on IN on OUT (IN:OUT). Repeatable.
    #[arg(short = 'n', long = "network", value_name = "[IN:]OUT")]
    network: Vec<String>,
    /// Do not give a domain without a display a video adapter.
    #[arg(long)]
    no_video: bool,
    /// With --boot-check: a guest that boots but never brings its NIC up
    /// (no frame from its MAC) fails the migration (otherwise a warning).
    #[arg(long, requires = "boot_check")]
    require_network: bool,
    /// Back up the domain config and every disk into DIR first, with a
    /// SHA256SUMS (`sha256sum -c` reads it), verified by re-reading.
    #[arg(long, value_name = "DIR")]
    backup: Option<PathBuf>,
    /// Boot the converted disks in QEMU before anything is defined; a
    /// guest that does not boot fails the migration.
    #[arg(long)]
    boot_check: bool,
    /// Start the domain once defined (-o libvirt).
    #[arg(long)]
    start: bool,
    /// Boot the guest's own kernel from the host instead of installing
    /// boot code: its kernel and initrd (after conversion) are written
    /// beside the disks as NAME-vmlinuz and NAME-initrd.img, and the
    /// domain boots them (<kernel>, <initrd>, <cmdline>). For a bare
    /// filesystem (xen-tools' partition images) this replaces re-laying
    /// it into a partitioned disk; a kernel update in the guest then needs
    /// the files copied out again.
    #[arg(long)]
    direct_boot: bool,
    /// Check everything and show what would be done (the conversion's
    /// changes, the domain XML); write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Which root filesystem to convert when the disks hold several.
    #[arg(long, value_name = "DEV")]
    root: Option<String>,
    /// Directory for boot-check's console logs (default: a directory
    /// under the system temp directory).
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// The QEMU system emulator of --boot-check.
    #[arg(
        long,
        default_value = "qemu-system-x86_64",
        env = "XEN2KVM_QEMU",
        value_name = "PATH"
    )]
    qemu: PathBuf,
    /// Where the per-guest state files are (NAME.json; default
    /// $XEN2KVM_STATE_DIR, else /var/lib/xen2kvm/migrate).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Migrate again even when the state file says this exact migration
    /// finished (its outputs must have been removed).
    #[arg(long)]
    again: bool,
    #[command(flatten)]
    windows: crate::windows::WinArgs,
    /// Print the report as one JSON document (docs/json.md).
    #[arg(long, conflicts_with = "machine_readable")]
    json: bool,
    /// One JSON object per line on stdout for every event (phases,
    /// progress, warnings) and the report last (docs/json.md).
    #[arg(long)]
    machine_readable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputMode {
    Local,
    Libvirt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Alloc {
    Sparse,
    Preallocated,
}

impl Alloc {
    fn name(self) -> &'static str {
        match self {
            Alloc::Sparse => "sparse",
            Alloc::Preallocated => "preallocated",
        }
    }
}

/// virt-v2v's multi-letter options (`-ic`, `-os`, …) as clap's long ones;
/// only the arguments of `migrate` and `backup` are rewritten.
pub(crate) fn virt_v2v_spelling(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let sub = args
        .iter()
        .skip(1)
        .position(|a| a == "migrate" || a == "backup");
    let Some(sub) = sub else {
        return args;
    };
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            if i <= sub + 1 {
                return a;
            }
            let long = match a.to_str() {
                Some("-ic") => "--input-conn",
                Some("-oc") => "--output-conn",
                Some("-os") => "--output-storage",
                Some("-of") => "--output-format",
                Some("-oa") => "--output-allocation",
                Some("-on") => "--output-name",
                _ => return a,
            };
            long.into()
        })
        .collect()
}

/// One disk in the report.
#[derive(Debug, Serialize)]
struct DiskReport {
    /// The Xen target.
    target: String,
    source: String,
    kind: &'static str,
    source_format: String,
    virtual_size: u64,
    source_allocated: u64,
    output: String,
    output_allocated: Option<u64>,
    /// SHA-256 of the source as read (the guest's data for a raw disk,
    /// the image file's bytes for a qcow2 one).
    sha256: Option<String>,
    sha256_of: Option<&'static str>,
    /// How many times the source was read.
    reads: u32,
    backup: Option<String>,
    /// The source's size, mtime and ctime are the same after the copy
    /// (not known for a block device).
    source_unchanged: Option<bool>,
}

#[derive(Debug, Serialize)]
pub(crate) struct BackupReport {
    pub(crate) dir: String,
    pub(crate) manifest: String,
    pub(crate) files: Vec<String>,
    pub(crate) verified: bool,
}

#[derive(Debug, Serialize)]
struct BootReport {
    verdict: String,
    reason: Option<String>,
    log: String,
    seconds: f64,
    /// The NIC's MAC in the boot (the domain's first).
    mac: String,
    /// `up`, `down`, or `not-judged` (the guest did not boot).
    network: &'static str,
    /// What the capture showed.
    #[serde(skip_serializing_if = "Option::is_none")]
    network_evidence: Option<String>,
}

#[derive(Debug, Serialize)]
struct DomainChange {
    rule: &'static str,
    what: String,
}

#[derive(Debug, Serialize)]
struct Report {
    version: u32,
    name: String,
    input: serde_json::Value,
    output: serde_json::Value,
    /// migrated, would-migrate, blocked, failed, interrupted.
    result: &'static str,
    /// The phase that failed or was interrupted.
    phase: Option<&'static str>,
    error: Option<String>,
    signal: Option<&'static str>,
    disks: Vec<DiskReport>,
    skipped: Vec<Skipped>,
    backup: Option<BackupReport>,
    conversion: Option<convert::Report>,
    domain_changes: Vec<DomainChange>,
    /// The domain XML (dry run only; else it is in NAME.xml or libvirt).
    domain_xml: Option<String>,
    /// Where the XML went (-o local) or the domain defined (-o libvirt).
    xml: Option<String>,
    defined: Option<String>,
    started: bool,
    boot_check: Option<BootReport>,
    warnings: Vec<String>,
    phases: Vec<PhaseTime>,
    seconds: f64,
    /// The state file (docs/json.md) of this guest.
    state: Option<String>,
    /// A finished migration's report, when this run found it done.
    #[serde(skip)]
    done: Option<serde_json::Value>,
}

/// What this run made, removed (and undefined) unless it succeeds.
#[derive(Default)]
pub(crate) struct Cleanup {
    pub(crate) files: Vec<PathBuf>,
    defined: Option<(String, String)>,
    refresh: Option<(String, String)>,
}

impl Cleanup {
    pub(crate) fn disarm(&mut self) {
        self.files.clear();
        self.defined = None;
        self.refresh = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some((conn, name)) = self.defined.take() {
            let _ = libvirt::virsh(&conn, &["undefine", &name]);
        }
        for f in self.files.drain(..) {
            let _ = std::fs::remove_file(f);
        }
        if let Some((conn, pool)) = self.refresh.take() {
            let _ = libvirt::virsh(&conn, &["pool-refresh", &pool]);
        }
    }
}

pub(crate) fn run(args: Args) -> Result<Exit> {
    interrupt::set_policy(Policy::Abort)?;
    let style = ev_style(&args);
    let total = Instant::now();
    let mut ev = Events::new(style);
    let mut report = Report {
        version: 1,
        name: String::new(),
        input: serde_json::json!({
            "mode": args.input_mode.name(),
            "from": args.input,
            "conn": args.input_conn,
        }),
        output: serde_json::json!({
            "mode": match args.output_mode { OutputMode::Local => "local", OutputMode::Libvirt => "libvirt" },
            "storage": args.output_storage,
            "conn": (args.output_mode == OutputMode::Libvirt).then_some(&args.output_conn),
            "allocation": args.output_allocation.name(),
        }),
        result: "",
        phase: None,
        error: None,
        signal: None,
        disks: Vec::new(),
        skipped: Vec::new(),
        backup: None,
        conversion: None,
        domain_changes: Vec::new(),
        domain_xml: None,
        xml: None,
        defined: None,
        started: false,
        boot_check: None,
        warnings: Vec::new(),
        phases: Vec::new(),
        seconds: 0.0,
        state: None,
        done: None,
    };
    let outcome = job(&args, &mut ev, &mut report);
    let exit = match outcome {
        Ok(exit) => exit,
        Err(e) => {
            report.phase = ev.phase();
            let phase = ev.phase().unwrap_or("start");
            if interrupt::requested() {
                let sig = interrupt::signal().unwrap_or(15);
                report.result = "interrupted";
                report.signal = Some(interrupt::signal_name(sig));
                report.error = Some(format!(
                    "interrupted by {} in the {phase} phase ({e:#}): nothing was defined, what this run made was removed, the source was not changed",
                    interrupt::signal_name(sig)
                ));
                Exit::Interrupted
            } else {
                report.result = "failed";
                report.error = Some(format!(
                    "{phase}: {e:#} (nothing was defined, what this run made was removed, the source was not changed)"
                ));
                Exit::Failed
            }
        }
    };
    ev.end();
    if let Some(done) = report.done.take() {
        // Found finished: the earlier report, marked done.
        match style {
            Style::Machine => ev.result(&done),
            Style::Json => println_json(&done)?,
            Style::Human => print_done(&done),
        }
        return Ok(exit);
    }
    report.phases = ev.phases.clone();
    report.seconds = (total.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    let value = serde_json::to_value(&report)?;
    if let Some(st) = &mut ev.state {
        if let Err(e) = st.finish(report.result, report.error.clone(), value.clone()) {
            ev.warn(&format!("the state file: {e:#}"));
        }
    }
    match style {
        Style::Machine => ev.result(&value),
        Style::Json => print_json(&report)?,
        Style::Human => print_human(&report),
    }
    Ok(exit)
}

#[allow(clippy::print_stdout)]
fn println_json(v: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_done(v: &serde_json::Value) {
    println!(
        "{}: already migrated ({}); nothing to do (--again migrates it anew once its outputs are removed)",
        v["name"].as_str().unwrap_or(""),
        v["state"].as_str().unwrap_or("")
    );
    println!("result: done");
}

/// Whether what a finished migration made is still there.
fn outputs_exist(report: &serde_json::Value) -> bool {
    let files = report["disks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["output"].as_str())
        .chain(report["xml"].as_str());
    let mut any = false;
    for f in files {
        any = true;
        if !Path::new(f).exists() {
            return false;
        }
    }
    if let (Some(conn), Some(name)) = (report["output"]["conn"].as_str(), report["name"].as_str()) {
        if report["defined"].is_string() && !libvirt::domain_exists(conn, name).unwrap_or(false) {
            return false;
        }
    }
    any
}

#[allow(clippy::print_stdout)]
fn print_json(report: &Report) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(report)?);
    Ok(())
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

#[allow(clippy::print_stdout)]
fn print_human(r: &Report) {
    if !r.name.is_empty() {
        println!("domain: {}", r.name);
    }
    for d in &r.disks {
        println!(
            "disk {}: {} ({}, {}, {} allocated) -> {}{}",
            d.target,
            d.source,
            d.source_format,
            gib(d.virtual_size),
            gib(d.source_allocated),
            d.output,
            d.output_allocated
                .map(|a| format!(" ({} allocated)", gib(a)))
                .unwrap_or_default()
        );
        if let (Some(s), Some(of)) = (&d.sha256, d.sha256_of) {
            println!("  sha256 ({of}): {s}");
        }
        if let Some(b) = &d.backup {
            println!("  backup: {b}");
        }
    }
    for s in &r.skipped {
        println!("not copied: {}", s.note);
    }
    if let Some(b) = &r.backup {
        println!(
            "backup: {} ({} files, {} {})",
            b.dir,
            b.files.len(),
            b.manifest,
            if b.verified {
                "verified"
            } else {
                "NOT verified"
            }
        );
    }
    if let Some(c) = &r.conversion {
        c.print_summary();
    }
    for c in &r.domain_changes {
        println!("domain: [{}] {}", c.rule, c.what);
    }
    if let Some(x) = &r.domain_xml {
        print!("{x}");
    }
    if let Some(b) = &r.boot_check {
        println!(
            "boot-check: {}{} (console log {})",
            b.verdict,
            b.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            b.log
        );
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
    if let Some(x) = &r.xml {
        println!("domain XML: {x}");
    }
    if let Some(d) = &r.defined {
        println!("defined: {d}{}", if r.started { " (started)" } else { "" });
    }
    let phases: Vec<String> = r
        .phases
        .iter()
        .map(|p| format!("{} {}s", p.phase, p.seconds))
        .collect();
    println!("seconds: {} (total {})", phases.join(", "), r.seconds);
    match &r.error {
        Some(e) => println!("result: {}: {e}", r.result),
        None => println!("result: {}", r.result),
    }
}

/// Fails unless `dir`'s filesystem has `need` bytes free.
fn check_room(dir: &Path, need: u64, what: &str) -> Result<()> {
    let st = rustix::fs::statvfs(dir).with_context(|| format!("statvfs {}", dir.display()))?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    if free < need {
        bail!(
            "not enough room in {} for {what}: {} needed, {} free",
            dir.display(),
            gib(need),
            gib(free)
        );
    }
    Ok(())
}

fn same_fs(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

fn on_path(prog: &Path) -> bool {
    if prog.components().count() > 1 {
        return prog.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

/// A domain name libvirt and file names both take.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.starts_with('.')
        || name.starts_with('-')
        || name.len() > 200
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    {
        bail!("{name:?} cannot be a domain and file name here: use letters, digits, '.', '_', '-', '+' (-on NAME)");
    }
    Ok(())
}

/// Progress of a copy, forwarded to the events; stops on a signal.
pub(crate) struct CopyProgress<'a> {
    pub(crate) ev: &'a mut Events,
    pub(crate) n: usize,
    pub(crate) m: usize,
}

impl diskcopy::Progress for CopyProgress<'_> {
    fn update(&mut self, done: u64, total: u64) {
        self.ev.progress(self.n, self.m, done, total);
    }
    fn stop(&self) -> bool {
        interrupt::requested()
    }
}

/// The backup plan: where each file goes.
pub(crate) struct Backup {
    pub(crate) dir: PathBuf,
    config: String,
    pub(crate) disks: Vec<String>,
    pub(crate) sums: Vec<sums::Entry>,
}

pub(crate) fn backup_plan(dir: &Path, config: String, disks: &[Disk]) -> Result<Backup> {
    let mut names: Vec<String> = Vec::new();
    for d in disks {
        let base = if d.block {
            format!(
                "{}-{}.img",
                d.target,
                d.path.file_name().unwrap_or_default().to_string_lossy()
            )
        } else {
            d.path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        };
        let mut name = base.clone();
        if names.contains(&name) || name == config || name == sums::FILE {
            name = format!("{}-{base}", d.target);
        }
        if !sums::valid_name(&name) {
            bail!("disk {}: {name:?} cannot be a backup file name", d.target);
        }
        names.push(name);
    }
    for n in names.iter().chain([&config, &sums::FILE.to_owned()]) {
        let p = dir.join(n);
        if p.exists() {
            bail!(
                "{} exists: back up into an empty directory (--backup DIR)",
                p.display()
            );
        }
    }
    Ok(Backup {
        dir: dir.to_owned(),
        config,
        disks: names,
        sums: Vec::new(),
    })
}

fn job(args: &Args, ev: &mut Events, report: &mut Report) -> Result<Exit> {
    ev.start("check");
    if args.start && args.output_mode != OutputMode::Libvirt {
        bail!("--start needs -o libvirt");
    }
    if args.input_conn.is_some() && args.input_mode != InputMode::Libvirt {
        bail!("-ic is the connection of -i libvirt");
    }
    args.windows.check()?;
    let storage = match (args.output_mode, &args.output_storage) {
        (_, Some(s)) => s.clone(),
        (OutputMode::Libvirt, None) => "default".to_owned(),
        (OutputMode::Local, None) => {
            bail!("-o local needs -os DIR (where the disks and NAME.xml go)")
        }
    };
    let domain = input::read(args.input_mode, &args.input, args.input_conn.as_deref())?;
    for w in &domain.warnings {
        ev.warn(w);
        report.warnings.push(w.clone());
    }
    let name = args
        .output_name
        .clone()
        .unwrap_or_else(|| domain.name.clone());
    check_name(&name)?;
    report.name.clone_from(&name);
    // One migration per guest at a time; a finished one is done.
    let mut locks = Locks::default();
    let sdir = state::dir(args.state_dir.as_deref());
    std::fs::create_dir_all(&sdir)
        .with_context(|| format!("creating the state directory {}", sdir.display()))?;
    let spath = state::path(&sdir, &name);
    let spath = std::fs::canonicalize(&sdir)
        .map(|d| state::path(&d, &name))
        .unwrap_or(spath);
    locks.take_name(&spath, &format!("migrate {name}"))?;
    let request = state::Request {
        input_mode: args.input_mode.name().to_owned(),
        input: match args.input_mode {
            InputMode::Libvirt => args.input.clone(),
            _ => std::fs::canonicalize(&args.input)
                .map_or_else(|_| args.input.clone(), |p| p.display().to_string()),
        },
        output_mode: match args.output_mode {
            OutputMode::Local => "local",
            OutputMode::Libvirt => "libvirt",
        }
        .to_owned(),
        storage: storage.clone(),
        conn: (args.output_mode == OutputMode::Libvirt).then(|| args.output_conn.clone()),
    };
    if !args.dry_run {
        if let Some(prev) = state::read(&spath) {
            let finished = prev.status == "migrated" && prev.request == request;
            if let (true, false, Some(mut r)) = (finished, args.again, prev.report) {
                if outputs_exist(&r) {
                    r["result"] = serde_json::json!("done");
                    r["state"] = serde_json::json!(spath.display().to_string());
                    report.done = Some(r);
                    return Ok(Exit::Ok);
                }
            }
        }
        let mut st = state::State::begin(&sdir, &name, request)?;
        st.doc.phase = Some("check".to_owned());
        st.write()?;
        report.state = Some(st.path().display().to_string());
        ev.state = Some(st);
    }
    let remote = args
        .input_host
        .as_deref()
        .map(|h| remote::Remote::new(h, &args.input_ssh_option))
        .transpose()?;
    let (disks, skipped) = input::disks(&domain, remote.as_ref())?;
    for s in &skipped {
        ev.warn(&s.note);
        report.warnings.push(s.note.clone());
    }
    report.skipped = skipped;
    if remote.is_none() {
        for d in &disks {
            locks.take(&d.path, Access::Read, "migrate (source)")?;
        }
    }
    let out_format = args.output_format.clone().unwrap_or_else(|| {
        if disks.iter().all(|d| d.format == "raw") {
            "raw".to_owned()
        } else {
            "qcow2".to_owned()
        }
    });
    report.output["format"] = serde_json::json!(out_format);
    let conn = args.output_conn.as_str();
    let (out_dir, xml_path) = match args.output_mode {
        OutputMode::Local => {
            // Absolute: the domain XML names the disks by these paths.
            let dir = std::fs::canonicalize(&storage)
                .ok()
                .filter(|d| d.is_dir())
                .with_context(|| format!("-os {storage}: not a directory"))?;
            let xml = dir.join(format!("{name}.xml"));
            (dir, Some(xml))
        }
        OutputMode::Libvirt => {
            let dir = libvirt::pool_dir(conn, &storage)?;
            if libvirt::domain_exists(conn, &name)? {
                bail!("a domain named {name} is already defined on {conn}: choose another name (-on NAME), or undefine it");
            }
            (dir, None)
        }
    };
    let ext = if out_format == "qcow2" {
        "qcow2"
    } else {
        "img"
    };
    let outputs: Vec<PathBuf> = (0..disks.len())
        .map(|i| out_dir.join(format!("{name}-vd{}.{ext}", dx::letters(i))))
        .collect();
    let partials: Vec<PathBuf> = outputs.iter().map(|o| convert::partial_path(o)).collect();
    // --direct-boot: the kernel and initrd go beside the disks.
    let kernel_prefix = args.direct_boot.then(|| out_dir.join(&name));
    let kernel_files: Vec<PathBuf> = kernel_prefix
        .iter()
        .flat_map(|p| {
            ["-vmlinuz", "-initrd.img"].map(|s| {
                let mut f = p.as_os_str().to_owned();
                f.push(s);
                PathBuf::from(f)
            })
        })
        .collect();
    for p in outputs
        .iter()
        .chain(&partials)
        .chain(&xml_path)
        .chain(&kernel_files)
    {
        if p.exists() {
            bail!(
                "{} exists: remove it, or choose another name (-on) or place (-os)",
                p.display()
            );
        }
    }
    for p in outputs.iter().chain(&xml_path) {
        locks.take(p, Access::Write, &format!("migrate {name} (output)"))?;
    }
    let backup = match &args.backup {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the backup directory {}", dir.display()))?;
            let dir = &std::fs::canonicalize(dir)?;
            Some(backup_plan(
                dir,
                format!("{}.{}", domain.name, domain.ext),
                &disks,
            )?)
        }
        None => None,
    };
    // Room: the outputs (all of it when preallocated), the backups.
    let margin = 64 << 20;
    let need_out: u64 = disks
        .iter()
        .map(|d| match args.output_allocation {
            Alloc::Sparse => d.allocated,
            Alloc::Preallocated => d.virtual_size,
        })
        .sum::<u64>()
        + margin;
    let need_backup: u64 = disks.iter().map(|d| d.allocated).sum::<u64>() + margin;
    match &backup {
        Some(b) if same_fs(&b.dir, &out_dir) => {
            check_room(
                &out_dir,
                need_out + need_backup,
                "the output and the backup",
            )?;
        }
        Some(b) => {
            check_room(&out_dir, need_out, "the output")?;
            check_room(&b.dir, need_backup, "the backup")?;
        }
        None => check_room(&out_dir, need_out, "the output")?,
    }
    if args.boot_check && !on_path(&args.qemu) {
        bail!(
            "--boot-check needs {} (install qemu-system-x86)",
            args.qemu.display()
        );
    }
    for (d, o) in disks.iter().zip(&outputs) {
        report.disks.push(DiskReport {
            target: d.target.clone(),
            source: match &remote {
                Some(rm) => format!("{}:{}", rm.dest, d.path.display()),
                None => d.path.display().to_string(),
            },
            kind: if d.block { "block" } else { "file" },
            source_format: d.format.clone(),
            virtual_size: d.virtual_size,
            source_allocated: d.allocated,
            output: o.display().to_string(),
            output_allocated: None,
            sha256: None,
            sha256_of: None,
            reads: 0,
            backup: None,
            source_unchanged: None,
        });
    }
    let source_paths: Vec<PathBuf> = disks.iter().map(|d| d.path.clone()).collect();
    let quiet = !matches!(ev_style(args), Style::Human);

    if args.dry_run {
        return dry_run(
            args,
            ev,
            report,
            &domain,
            &disks,
            &outputs,
            &out_format,
            quiet,
        );
    }

    // copy
    ev.start("copy");
    let mut made = Cleanup::default();
    let n = disks.len();
    let mut backup = backup;
    let alloc = match args.output_allocation {
        Alloc::Sparse => Allocation::Sparse,
        Alloc::Preallocated => Allocation::Preallocated,
    };
    for (i, d) in disks.iter().enumerate() {
        interrupt::fault("copy");
        if interrupt::requested() {
            bail!("stopped before copying disk {}", d.target);
        }
        let backup_file = backup.as_ref().map(|b| b.dir.join(&b.disks[i]));
        let target = CopyTarget {
            partial: &partials[i],
            format: &out_format,
            allocation: alloc,
            backup: backup_file.as_deref(),
            item: (i + 1, n),
        };
        let sha = copy_disk(
            d,
            remote.as_ref(),
            &target,
            ev,
            &mut made,
            &mut report.disks[i],
        )?;
        if let (Some(b), Some(f), Some(sha)) = (backup.as_mut(), &backup_file, sha) {
            b.sums.push(sums::Entry {
                sha256: sha,
                name: b.disks[i].clone(),
            });
            report.disks[i].backup = Some(f.display().to_string());
        }
    }

    // backup: the config, the manifest, every copy re-read.
    if let Some(b) = &mut backup {
        ev.start("backup");
        let total: u64 = disks.iter().map(|d| d.allocated).sum();
        report.backup = Some(finish_backup(b, &domain.text, ev, &mut made, total)?);
    }

    // convert
    ev.start("convert");
    let conv_mode = convert::Mode::Copy {
        outputs: outputs.clone(),
    };
    made.files.extend(kernel_files.iter().cloned());
    let (cexit, creport) = conversion(
        args,
        &disk_map(&disks, ev),
        &partials,
        &out_format,
        &conv_mode,
        &source_paths,
        &dx::disks::interface_macs(&domain.doc),
        quiet,
        kernel_prefix.clone(),
    )?;
    let cerror = creport.error.clone().unwrap_or_default();
    report.conversion = Some(creport);
    match cexit {
        Exit::Ok => {}
        Exit::Blocked => {
            report.result = "blocked";
            report.phase = Some("convert");
            report.error = Some(format!("{cerror} (nothing was defined, what this run made was removed, the source was not changed)"));
            return Ok(Exit::Blocked);
        }
        Exit::Interrupted => bail!("the conversion was interrupted"),
        _ => bail!("the conversion failed: {cerror}"),
    }

    // domain
    ev.start("domain");
    let windows = report
        .conversion
        .as_ref()
        .and_then(convert::Report::windows_domain);
    let direct = report
        .conversion
        .as_ref()
        .and_then(|c| c.direct_boot.clone());
    let conv = translate(
        args,
        &domain,
        &disks,
        &outputs,
        &out_format,
        &name,
        windows,
        direct.as_ref().map(|d| dx::DirectBoot {
            kernel: d.kernel.clone(),
            initrd: d.initrd.clone(),
            cmdline: d.cmdline.clone(),
        }),
    )?;
    for w in &conv.warnings {
        ev.warn(w);
        report.warnings.push(w.clone());
    }
    report.domain_changes = conv
        .changes
        .iter()
        .map(|c| DomainChange {
            rule: c.rule,
            what: c.what.clone(),
        })
        .collect();

    // boot-check
    let windows_guest = report
        .conversion
        .as_ref()
        .and_then(convert::Report::windows_domain)
        .is_some();
    if args.boot_check && windows_guest {
        // boot-check reads a Linux serial console; Windows writes nothing
        // there, so its verdict would be a false "failed".
        let w = "--boot-check is skipped for a Windows guest: it judges a Linux guest's serial console, and Windows writes nothing there (start the domain and check its display)".to_owned();
        ev.warn(&w);
        report.warnings.push(w);
    } else if args.boot_check {
        ev.start("boot-check");
        let log_dir = args
            .log_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("xen2kvm-migrate-{name}")));
        let mac = dx::disks::interface_macs(&domain.doc)
            .into_iter()
            .next()
            .flatten();
        let kernel = direct.as_ref().map(|d| bc::KernelBoot {
            kernel: PathBuf::from(&d.kernel),
            initrd: d.initrd.as_ref().map(PathBuf::from),
            cmdline: d.cmdline.clone(),
        });
        let r = boot_check(args, ev, &partials, &out_format, &log_dir, mac, kernel)?;
        let booted = r.verdict == "booted";
        let reason = r.reason.clone().unwrap_or_default();
        let log = r.log.clone();
        let network = r.network;
        let evidence = r.network_evidence.clone().unwrap_or_default();
        report.boot_check = Some(r);
        if !booted {
            bail!("the migrated guest did not boot: {reason} (console log {log})");
        }
        if network == "down" {
            let msg = format!("the migrated guest booted but never brought its NIC up: {evidence} (console log {log})");
            if args.require_network {
                bail!("{msg}; --require-network");
            }
            ev.warn(&msg);
        }
    }

    // output
    ev.start("output");
    if interrupt::requested() {
        bail!("stopped before the output");
    }
    for (p, o) in partials.iter().zip(&outputs) {
        std::fs::rename(p, o)
            .with_context(|| format!("renaming {} to {}", p.display(), o.display()))?;
        made.files.retain(|f| f != p);
        made.files.push(o.clone());
    }
    // What the outputs allocate, converted.
    for (r, o) in report.disks.iter_mut().zip(&outputs) {
        r.output_allocated = diskcopy::allocated(o).ok();
    }
    match (&xml_path, args.output_mode) {
        (Some(x), _) => {
            write_new(x, conv.xml.as_bytes())?;
            made.files.push(x.clone());
            report.xml = Some(x.display().to_string());
        }
        (None, _) => {
            made.refresh = Some((conn.to_owned(), storage.clone()));
            let mut tmp =
                tempfile::NamedTempFile::new().context("a temporary file for the domain XML")?;
            std::io::Write::write_all(&mut tmp, conv.xml.as_bytes())?;
            let path = tmp.path().display().to_string();
            libvirt::virsh(conn, &["define", &path])
                .with_context(|| format!("defining {name} on {conn}"))?;
            made.defined = Some((conn.to_owned(), name.clone()));
            libvirt::virsh(conn, &["pool-refresh", &storage])?;
            report.defined = Some(format!("{name} on {conn}"));
            if args.start {
                libvirt::virsh(conn, &["start", &name])
                    .with_context(|| format!("starting {name} (the domain is undefined again)"))?;
                report.started = true;
            }
        }
    }
    made.disarm();
    report.result = "migrated";
    Ok(Exit::Ok)
}

fn ev_style(args: &Args) -> Style {
    if args.machine_readable {
        Style::Machine
    } else if args.json {
        Style::Json
    } else {
        Style::Human
    }
}

/// Writes the config copy and `SHA256SUMS` of a backup whose disks are
/// copied, then re-reads every file from the disk against the manifest.
pub(crate) fn finish_backup(
    b: &mut Backup,
    config_text: &str,
    ev: &mut Events,
    made: &mut Cleanup,
    total: u64,
) -> Result<BackupReport> {
    let config = b.dir.join(&b.config);
    write_new(&config, config_text.as_bytes())?;
    made.files.push(config.clone());
    b.sums.push(sums::Entry {
        sha256: diskcopy::sha256_file(&config, &mut diskcopy::Quiet)?,
        name: b.config.clone(),
    });
    let manifest = b.dir.join(sums::FILE);
    write_new(&manifest, sums::render(&b.sums).as_bytes())?;
    made.files.push(manifest.clone());
    ev.note(&format!("verifying the backup in {}", b.dir.display()));
    let total = total.max(1);
    ev.bar("re-reading the backup", 1, 1, total);
    let (_, problems) = sums::verify(
        &b.dir,
        &mut VerifyProgress {
            ev,
            done: 0,
            last: 0,
            total,
        },
    )?;
    if !problems.is_empty() {
        let p: Vec<String> = problems.iter().map(ToString::to_string).collect();
        bail!("the backup does not verify: {}", p.join("; "));
    }
    Ok(BackupReport {
        dir: b.dir.display().to_string(),
        manifest: manifest.display().to_string(),
        files: b.sums.iter().map(|e| e.name.clone()).collect(),
        verified: true,
    })
}

/// Where one disk's copy goes.
struct CopyTarget<'a> {
    partial: &'a Path,
    format: &'a str,
    allocation: Allocation,
    backup: Option<&'a Path>,
    /// This disk of all (`N/M`).
    item: (usize, usize),
}

/// Copies one disk: its output (and backup copy) from one read of a raw
/// source; otherwise the backup (or, for a remote disk, a local staging
/// copy) first and the output by `qemu-img convert` from it or the source.
/// Fails when the source changed meanwhile. Returns the SHA-256 of what was
/// read, when it was read by xen2kvm.
fn copy_disk(
    d: &Disk,
    remote: Option<&remote::Remote>,
    t: &CopyTarget<'_>,
    ev: &mut Events,
    made: &mut Cleanup,
    r: &mut DiskReport,
) -> Result<Option<String>> {
    let (n, m) = t.item;
    let before = source_stamp(d, remote)?;
    let one_read = d.format == "raw" && t.format == "raw";
    let mut sinks = Vec::new();
    if one_read {
        sinks.push(Sink {
            path: t.partial.to_owned(),
            allocation: t.allocation,
        });
    }
    if let Some(b) = t.backup {
        sinks.push(Sink {
            path: b.to_owned(),
            allocation: Allocation::Sparse,
        });
    }
    // A remote disk that qemu-img must read is staged here first.
    let stage = (remote.is_some() && !one_read && t.backup.is_none()).then(|| {
        let mut name = t.partial.file_name().unwrap_or_default().to_owned();
        name.push(".source");
        t.partial.with_file_name(name)
    });
    if let Some(st) = &stage {
        sinks.push(Sink {
            path: st.clone(),
            allocation: Allocation::Sparse,
        });
    }
    let mut sha = None;
    if !sinks.is_empty() {
        made.files.extend(sinks.iter().map(|s| s.path.clone()));
        let from = match remote {
            Some(rm) => format!("{}:{}", rm.dest, d.path.display()),
            None => d.path.display().to_string(),
        };
        let what = format!(
            "{from} -> {}",
            sinks
                .iter()
                .map(|s| s.path.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        );
        ev.note(&format!("copying {what}"));
        let size = if remote.is_some() {
            d.bytes
        } else {
            d.allocated
        };
        ev.bar(&what, n, m, size.max(1));
        let mut progress = CopyProgress { ev, n, m };
        let copied = match remote {
            Some(rm) => stream(rm, d, &from, &sinks, &mut progress)?,
            None => diskcopy::copy(&d.path, &sinks, &mut progress)?,
        };
        r.sha256 = Some(copied.sha256.clone());
        r.sha256_of = Some(if d.format == "raw" {
            "guest data"
        } else {
            "image file"
        });
        r.reads += 1;
        sha = Some(copied.sha256);
    }
    if !one_read {
        // qemu-img reads the local source, the backup copy or the stage.
        let local = match (remote, t.backup, &stage) {
            (None, _, _) => d.path.clone(),
            (Some(_), Some(b), _) => b.to_owned(),
            (Some(_), None, Some(st)) => st.clone(),
            (Some(_), None, None) => bail!("no local copy of a remote disk"),
        };
        made.files.push(t.partial.to_owned());
        let what = format!("{} -> {} (qemu-img)", local.display(), t.partial.display());
        ev.note(&format!("copying {what}"));
        ev.bar(&what, n, m, d.virtual_size.max(1));
        image_convert(
            ev,
            &local,
            &d.format,
            d.virtual_size,
            t.partial,
            t.format,
            t.allocation == Allocation::Preallocated,
            t.item,
        )?;
        if remote.is_none() {
            r.reads += 1;
        }
        if let Some(st) = &stage {
            let _ = std::fs::remove_file(st);
            made.files.retain(|f| f != st);
        }
    }
    let after = source_stamp(d, remote)?;
    if let (Some(a), Some(b)) = (before, after) {
        if a != b {
            bail!(
                "{} changed while it was copied: is the domain running somewhere? Shut it down and run again",
                d.path.display()
            );
        }
        r.source_unchanged = Some(true);
    }
    Ok(sha)
}

/// What proves a source unchanged (None: a block device, nothing does).
fn source_stamp(d: &Disk, remote: Option<&remote::Remote>) -> Result<Option<String>> {
    if d.block {
        return Ok(None);
    }
    Ok(Some(match remote {
        Some(rm) => format!("{:?}", rm.stat(&d.path.to_string_lossy())?),
        None => format!(
            "{:?}",
            diskcopy::stamp(&d.path).with_context(|| d.path.display().to_string())?
        ),
    }))
}

/// Streams a remote disk through ssh into the sinks.
fn stream(
    rm: &remote::Remote,
    d: &Disk,
    what: &str,
    sinks: &[Sink],
    progress: &mut CopyProgress<'_>,
) -> Result<diskcopy::Copied> {
    let mut child = rm.read(&d.path.to_string_lossy())?;
    let _guard = interrupt::child(child.id());
    let mut out = child.stdout.take().context("ssh's output")?;
    let copied = diskcopy::copy_stream(&mut out, d.bytes, what, sinks, progress);
    drop(out);
    if copied.is_err() {
        let _ = child.kill();
    }
    let res = child.wait_with_output().context("waiting for ssh")?;
    let copied = copied?;
    if !res.status.success() {
        bail!(
            "reading {what} through ssh: {}",
            String::from_utf8_lossy(&res.stderr).trim()
        );
    }
    Ok(copied)
}

/// Progress of re-reading a backup (several files, one bar).
struct VerifyProgress<'a> {
    ev: &'a mut Events,
    done: u64,
    last: u64,
    total: u64,
}

impl diskcopy::Progress for VerifyProgress<'_> {
    fn update(&mut self, done: u64, _: u64) {
        // A new file starts from 0.
        if done < self.last {
            self.done += self.last;
        }
        self.last = done;
        self.ev
            .progress(1, 1, (self.done + done).min(self.total), self.total);
    }
    fn stop(&self) -> bool {
        interrupt::requested()
    }
}

#[allow(clippy::too_many_arguments)]
fn image_convert(
    ev: &mut Events,
    src: &Path,
    src_format: &str,
    size: u64,
    out: &Path,
    format: &str,
    preallocate: bool,
    (n, m): (usize, usize),
) -> Result<()> {
    let size = size.max(1);
    let r = crate::image::convert(src, src_format, out, format, preallocate, &mut |p| {
        ev.progress(n, m, ((p / 100.0) * size as f64) as u64, size);
    });
    if interrupt::requested() {
        bail!("stopped while copying {}", src.display());
    }
    r
}

/// Creates `path` with `bytes`; never replaces a file.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The domain XML of the migrated guest.
#[allow(clippy::too_many_arguments)]
fn translate(
    args: &Args,
    domain: &input::Domain,
    disks: &[Disk],
    outputs: &[PathBuf],
    out_format: &str,
    name: &str,
    windows: Option<dx::Windows>,
    direct_boot: Option<dx::DirectBoot>,
) -> Result<dx::Conversion> {
    let mut nets = crate::domxml::parse_maps(&args.bridge, true);
    nets.extend(crate::domxml::parse_maps(&args.network, false));
    let finals: Vec<String> = outputs.iter().map(|o| o.display().to_string()).collect();
    let probe = |p: &str| -> Option<String> {
        if finals.iter().any(|f| f == p) {
            Some(out_format.to_owned())
        } else {
            crate::image::info(Path::new(p)).ok().map(|i| i.format)
        }
    };
    let opts = dx::Options {
        name: Some(name.to_owned()),
        arch: None,
        emulator: crate::domxml::host_emulator(),
        nets,
        disks: disks
            .iter()
            .zip(&finals)
            .map(|(d, o)| (d.target.clone(), o.clone()))
            .collect(),
        keep_direct_boot: false,
        direct_boot,
        no_video: args.no_video,
        force: false,
        probe_format: &probe,
        windows,
    };
    dx::convert_document(domain.doc.clone(), &opts).context("translating the domain")
}

/// Boots the converted disks, in the domain's order (the first is the boot
/// disk), on snapshots.
fn boot_check(
    args: &Args,
    ev: &mut Events,
    disks: &[PathBuf],
    format: &str,
    log_dir: &Path,
    mac: Option<String>,
    kernel: Option<bc::KernelBoot>,
) -> Result<BootReport> {
    let disk = &disks[0];
    let opts = bc::Options {
        qemu: args.qemu.clone(),
        format: Some(format.to_owned()),
        extra_disks: disks[1..]
            .iter()
            .map(|d| (d.clone(), format.to_owned()))
            .collect(),
        accel: AccelChoice::Auto,
        memory_mib: 1024,
        cpus: 2,
        marker: bc::DEFAULT_MARKER.to_owned(),
        timeout: std::time::Duration::from_secs(600),
        silence: std::time::Duration::from_secs(120),
        log_dir: log_dir.to_owned(),
        diagnose: true,
        mac,
        network_wait: std::time::Duration::from_secs(30),
        kernel,
    };
    let open = |image: &Path, format: &str| -> std::io::Result<Box<dyn xen2kvm_vfs::GuestFs>> {
        let guest = xen2kvm_inspector::Guest::open(
            &[image.to_owned()],
            &xen2kvm_inspector::OpenOptions {
                readonly: true,
                format: Some(format.to_owned()),
                root: None,
            },
        )?;
        Ok(Box::new(guest))
    };
    let r = bc::check(disk, &opts, &open, &mut |m| ev.note(m))
        .with_context(|| format!("boot-check {}", disk.display()))?;
    Ok(BootReport {
        verdict: if r.booted() { "booted" } else { "failed" }.to_owned(),
        reason: r.reason(),
        log: r.log.display().to_string(),
        seconds: (r.seconds * 10.0).round() / 10.0,
        mac: r.mac.clone(),
        network: match &r.network {
            Some(n) if n.is_up() => "up",
            Some(_) => "down",
            None => "not-judged",
        },
        network_evidence: r.network.as_ref().map(ToString::to_string),
    })
}

/// Which virtio disk each of the domain's disks becomes, by their Xen
/// targets; letters are kept (with a warning) when a target is not a Xen
/// disk name.
fn disk_map(disks: &[Disk], ev: &mut Events) -> DiskMap {
    let names: Vec<&str> = disks.iter().map(|d| d.target.as_str()).collect();
    DiskMap::from_targets(&names).unwrap_or_else(|e| {
        ev.warn(&format!(
            "the disks' targets do not all name Xen disks ({e}): the guest's disk names keep their letters"
        ));
        DiskMap::default()
    })
}

/// `xen2kvm convert`'s conversion of `disks` (copies, or the sources in a
/// dry run), in one appliance launch; its exit and report.
#[allow(clippy::too_many_arguments)]
fn conversion(
    args: &Args,
    disk_map: &DiskMap,
    disks: &[PathBuf],
    format: &str,
    mode: &convert::Mode,
    sources: &[PathBuf],
    domain_macs: &[Option<String>],
    quiet: bool,
    direct_boot: Option<PathBuf>,
) -> Result<(Exit, convert::Report)> {
    let job = convert::Job {
        disks,
        format: format.to_owned(),
        mode,
        root: args.root.clone(),
        skip: &[],
        macs: domain_macs,
        disk_map,
        resume: false,
        source_disks: sources,
        quiet,
        windows: &args.windows,
        preallocate: matches!(args.output_allocation, Alloc::Preallocated),
        direct_boot,
    };
    let mut report = convert::Report::new(sources, mode);
    let mut times = convert::Times::default();
    let t = Instant::now();
    let exit = convert::convert_disks(&job, &mut report, &mut times)?;
    report.set_times(&times, t.elapsed());
    Ok((exit, report))
}

/// `--dry-run`: the conversion's plan on the sources (read-only) and the
/// domain XML; nothing is written.
#[allow(clippy::too_many_arguments)]
fn dry_run(
    args: &Args,
    ev: &mut Events,
    report: &mut Report,
    domain: &input::Domain,
    disks: &[Disk],
    outputs: &[PathBuf],
    out_format: &str,
    quiet: bool,
) -> Result<Exit> {
    ev.start("convert");
    let sources: Vec<PathBuf> = disks.iter().map(|d| d.path.clone()).collect();
    let mut exit = Exit::Ok;
    if disks.iter().all(|d| d.format == disks[0].format) {
        let (e, creport) = conversion(
            args,
            &disk_map(disks, ev),
            &sources,
            &disks[0].format,
            &convert::Mode::DryRun,
            &sources,
            &dx::disks::interface_macs(&domain.doc),
            quiet,
            args.direct_boot.then(|| PathBuf::from("NAME")),
        )?;
        exit = e;
        if exit == Exit::Blocked {
            report.error.clone_from(&creport.error);
        }
        report.conversion = Some(creport);
    } else {
        let w = "the disks have different formats: the conversion is previewed only after they are copied into one (-of)".to_owned();
        ev.warn(&w);
        report.warnings.push(w);
    }
    ev.start("domain");
    let windows = report
        .conversion
        .as_ref()
        .and_then(convert::Report::windows_domain);
    // --direct-boot: where the kernel would go; its command line is the
    // converted guest's, known only after the conversion.
    let name = report.name.clone();
    let direct = match (args.direct_boot, outputs.first().and_then(|o| o.parent())) {
        (true, Some(dir)) => Some(dx::DirectBoot {
            kernel: dir.join(format!("{name}-vmlinuz")).display().to_string(),
            initrd: Some(dir.join(format!("{name}-initrd.img")).display().to_string()),
            cmdline: "(the converted guest's default GRUB entry)".to_owned(),
        }),
        _ => None,
    };
    let conv = translate(
        args, domain, disks, outputs, out_format, &name, windows, direct,
    )?;
    report.warnings.extend(conv.warnings.iter().cloned());
    report.domain_changes = conv
        .changes
        .iter()
        .map(|c| DomainChange {
            rule: c.rule,
            what: c.what.clone(),
        })
        .collect();
    report.domain_xml = Some(conv.xml);
    report.result = if exit == Exit::Blocked {
        "blocked"
    } else {
        "would-migrate"
    };
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<std::ffi::OsString> {
        v.iter().map(Into::into).collect()
    }

    #[test]
    fn virt_v2v_options_are_spelled_for_clap_only_after_migrate_or_backup() {
        let got = virt_v2v_spelling(os(&[
            "xen2kvm",
            "migrate",
            "-i",
            "libvirt",
            "-ic",
            "xen+ssh://h",
            "g",
            "-os",
            "pool",
            "-on",
            "-os",
            "-of",
            "raw",
            "-oa",
            "sparse",
            "-oc",
            "qemu:///system",
        ]));
        assert_eq!(
            got,
            os(&[
                "xen2kvm",
                "migrate",
                "-i",
                "libvirt",
                "--input-conn",
                "xen+ssh://h",
                "g",
                "--output-storage",
                "pool",
                "--output-name",
                // A value that looks like an option is rewritten too, as
                // virt-v2v's own parser would take it as one.
                "--output-storage",
                "--output-format",
                "raw",
                "--output-allocation",
                "sparse",
                "--output-conn",
                "qemu:///system",
            ])
        );
        let other = os(&["xen2kvm", "domxml", "-os", "x"]);
        assert_eq!(virt_v2v_spelling(other.clone()), other);
    }

    #[test]
    fn names_and_letters() {
        assert_eq!(dx::letters(0), "a");
        assert_eq!(dx::letters(27), "ab");
        assert!(check_name("web01.example-2").is_ok());
        for bad in ["", ".hidden", "-x", "a/b", "a b", "ä"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
