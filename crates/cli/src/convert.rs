//! `xen2kvm convert`: makes a stopped Xen guest boot under KVM, editing its
//! disk inside the libguestfs appliance (one launch per conversion).
//!
//! Modes: copy (`-o OUT`: the output is made from the source with
//! `qemu-img convert`, then converted; the source is only read), in place
//! (`--in-place`), and `--dry-run` (read-only; prints the diffs, the links
//! it would remove and the commands it would run). Exit 0 converted (or
//! nothing to do), 1 error, 3 blocked.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xen2kvm_editor::{self as editor, Change, Ctx, Plan, Runner, RULES};
use xen2kvm_inspector::facts::{self, Facts, Verdict};
use xen2kvm_inspector::xen::DiskMap;
use xen2kvm_inspector::{Guest, OpenOptions, Opened, RootInfo};
use xen2kvm_journal as journal;

use crate::interrupt::{self, Policy};
use crate::lock::{Access, Locks};
use crate::Exit;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The guest's disk images (all of them, in the Xen config's order).
    #[arg(required_unless_present = "list")]
    disks: Vec<PathBuf>,
    /// Write the converted guest here (the source is only read): an image
    /// file for one disk, a directory for several.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "OUT",
        conflicts_with = "in_place"
    )]
    output: Option<PathBuf>,
    /// Format of the output image(s).
    #[arg(long, value_parser = ["qcow2", "raw"], default_value = "qcow2", requires = "output")]
    format: String,
    /// Convert the given disk(s) themselves.
    #[arg(long)]
    in_place: bool,
    /// Change nothing: show the diff of every file, every link to remove
    /// and every command that would run.
    #[arg(long, conflicts_with_all = ["in_place", "output"])]
    dry_run: bool,
    /// In place, on a guest left with an unfinished conversion (its journal
    /// in /var/lib/xen2kvm): restore it from the journal first, then
    /// convert it again.
    #[arg(long, requires = "in_place")]
    resume: bool,
    /// Which root filesystem to convert when the disks hold several.
    #[arg(long, value_name = "DEV")]
    root: Option<String>,
    /// List the rules and exit.
    #[arg(long)]
    list: bool,
    /// Do not run this rule (repeatable; names from --list).
    #[arg(long, value_name = "RULE", value_parser = rule_name)]
    skip: Vec<String>,
    /// The MAC address of the KVM domain's NIC (repeatable, in the domain's
    /// interface order): a NIC the guest configures by its Xen name (eth0,
    /// enX0) is pinned to it. Without it, the n-th virtio NIC is.
    #[arg(long, value_name = "MAC", value_parser = mac_address)]
    mac: Vec<String>,
    /// The Xen name of a disk, as the domain config gives it (repeatable,
    /// for every disk or none): `--target xvda=root.img --target
    /// xvdc=data.img`, `--target xvda2=disk.img` for one image per
    /// partition (xen-tools). Under KVM the guest names its disks in order
    /// (`vda`, `vdb`, …), so its Xen names are mapped by that order
    /// (`xvdc1` is then `vdb1`); without it, letters are kept.
    #[arg(long, value_name = "XEN=DISK", value_parser = target_arg)]
    target: Vec<(String, PathBuf)>,
    #[command(flatten)]
    windows: crate::windows::WinArgs,
    /// Print a JSON document (schema in docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) enum Mode {
    Copy { outputs: Vec<PathBuf> },
    InPlace,
    DryRun,
}

impl Mode {
    fn name(&self) -> &'static str {
        match self {
            Mode::Copy { .. } => "copy",
            Mode::InPlace => "in-place",
            Mode::DryRun => "dry-run",
        }
    }
}

/// Runs commands in the guest through the appliance.
struct GuestRunner<'a>(&'a Guest);

impl Runner for GuestRunner<'_> {
    fn run(&self, argv: &[String]) -> io::Result<String> {
        interrupt::fault(&format!("run:{}", argv.first().map_or("", String::as_str)));
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.0
            .run(&args)
            .map_err(|e| io::Error::other(e.to_string()))
    }

    fn prepare_grub_mkconfig(&self) -> io::Result<()> {
        self.0
            .ensure_uuid_links()
            .map_err(|e| io::Error::other(e.to_string()))
    }

    fn interrupted(&self) -> bool {
        interrupt::requested()
    }
}

/// The start of the guest's boot disk, for the journal.
pub(crate) struct GuestDisk<'a>(pub(crate) &'a Guest);

impl journal::BootArea for GuestDisk<'_> {
    fn read(&self, len: usize) -> io::Result<Vec<u8>> {
        self.0.read_boot_area(len).map_err(io::Error::from)
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_boot_area(bytes).map_err(io::Error::from)
    }
}

/// The refusal for a guest left between Xen and KVM.
pub(crate) fn unfinished_message(disks: &[PathBuf], dir: &str) -> String {
    let names: Vec<String> = disks.iter().map(|d| d.display().to_string()).collect();
    format!(
        "{} holds an unfinished in-place conversion (its journal {dir} is in the guest): the guest may boot neither on Xen nor on KVM. Run `xen2kvm revert {}` to put it back as it was, or `xen2kvm convert --in-place --resume` to put it back and convert it again",
        names.join(" "),
        names.join(" ")
    )
}

/// `--skip`'s parser: a rule of the table.
fn mac_address(s: &str) -> std::result::Result<String, String> {
    let m = s.trim().to_ascii_lowercase();
    if xen2kvm_domxml::disks::is_mac(&m) {
        Ok(m)
    } else {
        Err(format!(
            "{s:?} is not a MAC address (like 00:16:3e:0a:0b:0c)"
        ))
    }
}

fn rule_name(s: &str) -> Result<String, String> {
    if editor::is_rule(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "unknown rule (xen2kvm convert --list shows them: {})",
            RULES.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
        ))
    }
}

/// `--target XEN=DISK`.
pub(crate) fn target_arg(s: &str) -> Result<(String, PathBuf), String> {
    let (name, disk) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: say XEN=DISK (xvda2=disk.img)"))?;
    DiskMap::from_targets(&[name])?;
    Ok((name.to_owned(), PathBuf::from(disk)))
}

/// The disk map of `--target`: every disk named once, in the disks' order.
pub(crate) fn disk_map(disks: &[PathBuf], targets: &[(String, PathBuf)]) -> Result<DiskMap> {
    if targets.is_empty() {
        return Ok(DiskMap::default());
    }
    let same = |a: &Path, b: &Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    for (name, disk) in targets {
        if !disks.iter().any(|d| same(d, disk)) {
            bail!(
                "--target {name}={}: not one of the disks given",
                disk.display()
            );
        }
    }
    let mut names = Vec::new();
    for d in disks {
        let mine: Vec<&String> = targets
            .iter()
            .filter(|(_, t)| same(d, t))
            .map(|(n, _)| n)
            .collect();
        match mine[..] {
            [name] => names.push(name.clone()),
            [] => bail!(
                "disk {} has no --target: give every disk its Xen name, or none",
                d.display()
            ),
            _ => bail!("disk {} has several --target names", d.display()),
        }
    }
    DiskMap::from_targets(&names).map_err(anyhow::Error::msg)
}

/// Partial outputs of copy mode, removed unless the conversion succeeds.
struct Partials(Vec<PathBuf>);

impl Drop for Partials {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub(crate) fn run(args: Args) -> Result<Exit> {
    match run_inner(&args) {
        // Stopped by a signal while the appliance or qemu-img was being
        // stopped: the partial outputs are gone (their guard), say so.
        Err(e) if interrupt::requested() => {
            let mode = match (&args.output, args.in_place) {
                (Some(_), _) => Mode::Copy {
                    outputs: Vec::new(),
                },
                (None, true) => Mode::InPlace,
                _ => Mode::DryRun,
            };
            Ok(interrupted_early(&args, &mode, &format!("{e:#}")))
        }
        r => r,
    }
}

fn run_inner(args: &Args) -> Result<Exit> {
    interrupt::set_policy(Policy::Abort)?;
    if args.list {
        for r in RULES {
            println!("{:<16} {}", r.name, r.summary);
        }
        return Ok(Exit::Ok);
    }
    let mode = match (&args.output, args.in_place, args.dry_run) {
        (Some(out), false, false) => Mode::Copy {
            outputs: output_paths(&args.disks, out, &args.format)?,
        },
        (None, true, false) => Mode::InPlace,
        (None, false, true) => Mode::DryRun,
        _ => bail!("say where the result goes: -o OUT (a converted copy), --in-place, or --dry-run (change nothing)"),
    };
    args.windows.check()?;
    let disk_map = disk_map(&args.disks, &args.target)?;
    let mut locks = Locks::default();
    let access = match mode {
        Mode::InPlace => Access::Write,
        _ => Access::Read,
    };
    for d in &args.disks {
        locks.take(d, access, &format!("convert ({})", mode.name()))?;
    }
    if let Mode::Copy { outputs } = &mode {
        for o in outputs {
            locks.take(o, Access::Write, "convert -o")?;
        }
    }
    let input_format = crate::image::common_format(&args.disks)?;
    let total = Instant::now();
    let mut times = Times::default();

    // Copy mode: the output is made first, then converted.
    let mut partials = Partials(Vec::new());
    let (disks, format) = match &mode {
        Mode::Copy { outputs } => {
            let t = Instant::now();
            for (src, out) in args.disks.iter().zip(outputs) {
                let partial = partial_path(out);
                partials.0.push(partial.clone());
                progress(
                    args,
                    &format!("copying {} to {}", src.display(), out.display()),
                );
                interrupt::fault("copy");
                let copied = crate::image::copy(src, &input_format, &partial, &args.format);
                if interrupt::requested() {
                    return Ok(interrupted_early(args, &mode, "copying the disk"));
                }
                copied?;
            }
            times.copy = t.elapsed();
            (partials.0.clone(), args.format.clone())
        }
        _ => (args.disks.clone(), input_format.clone()),
    };

    let mut report = Report::new(&args.disks, &mode);
    let macs: Vec<Option<String>> = args.mac.iter().cloned().map(Some).collect();
    let job = Job {
        disks: &disks,
        format,
        mode: &mode,
        root: args.root.clone(),
        skip: &args.skip,
        macs: &macs,
        disk_map: &disk_map,
        resume: args.resume,
        source_disks: &args.disks,
        quiet: args.json,
        windows: &args.windows,
        preallocate: false,
        direct_boot: None,
    };
    let exit = convert_disks(&job, &mut report, &mut times)?;
    if exit == Exit::Ok {
        if let Mode::Copy { outputs } = &mode {
            for (partial, out) in partials.0.iter().zip(outputs) {
                std::fs::rename(partial, out).with_context(|| {
                    format!("renaming {} to {}", partial.display(), out.display())
                })?;
            }
            partials.0.clear();
            report.outputs = outputs.iter().map(|p| p.display().to_string()).collect();
        }
    }
    report.finish(args.json, &times, total.elapsed());
    Ok(exit)
}

/// One conversion, from the appliance's launch to its close.
pub(crate) struct Job<'a> {
    /// The disks opened in the appliance (in copy mode, the copies).
    pub(crate) disks: &'a [PathBuf],
    /// Their one format.
    pub(crate) format: String,
    pub(crate) mode: &'a Mode,
    pub(crate) root: Option<String>,
    pub(crate) skip: &'a [String],
    /// The KVM domain's NIC MACs, in order (see `Ctx::macs`).
    pub(crate) macs: &'a [Option<String>],
    /// Which virtio disk each Xen disk becomes (see `Ctx::disks`).
    pub(crate) disk_map: &'a DiskMap,
    pub(crate) resume: bool,
    /// The source disks, as the user named them (for messages).
    pub(crate) source_disks: &'a [PathBuf],
    /// No progress lines on stderr.
    pub(crate) quiet: bool,
    /// `--virtio-win`, `--ide` (Windows guests).
    pub(crate) windows: &'a crate::windows::WinArgs,
    /// Copies are fully allocated (`migrate -oa preallocated`): so is a
    /// disk re-laid.
    pub(crate) preallocate: bool,
    /// `migrate --direct-boot`: no boot code is installed (and a bare
    /// filesystem is not re-laid); the converted guest's kernel and initrd
    /// are written to `<prefix>-vmlinuz` and `<prefix>-initrd.img`.
    pub(crate) direct_boot: Option<PathBuf>,
}

/// Converts `job.disks`, filling `report` (printed by the caller): the
/// exit code says how it ended; an `Err` is an error before the guest was
/// read (the appliance did not start, …).
pub(crate) fn convert_disks(job: &Job<'_>, report: &mut Report, times: &mut Times) -> Result<Exit> {
    let mode = job.mode;
    let progress = |msg: &str| {
        if !job.quiet {
            eprintln!("xen2kvm: {msg}");
        }
    };
    progress("launching the appliance");
    let t = Instant::now();
    let opened = Guest::open_any(
        job.disks,
        &OpenOptions {
            readonly: matches!(mode, Mode::DryRun),
            format: Some(job.format.clone()),
            root: job.root.clone(),
        },
    );
    if interrupt::requested() {
        return Ok(report.interrupted(
            "while launching the appliance; partial outputs were removed, the source was not changed",
        ));
    }
    let mut guest = match opened? {
        Opened::Linux(g) => g,
        Opened::Windows(w) => {
            let _appliance = w.pid().map(interrupt::child);
            times.appliance = t.elapsed();
            return crate::windows::convert(job, w, report, times);
        }
    };
    let mut _appliance = guest.pid().map(interrupt::child);
    times.appliance = t.elapsed();

    // A guest left half-converted is put back first, or not touched.
    let mut resumed = Vec::new();
    if let Some(dir) = journal::unfinished(&guest).context("reading the guest's journals")? {
        if !job.resume {
            guest.close()?;
            bail!("{}", unfinished_message(job.source_disks, dir.as_str()));
        }
        interrupt::set_policy(Policy::SafePoint)?;
        progress(&format!(
            "restoring the guest from the unfinished journal {dir}"
        ));
        let r = journal::revert(&guest, Some(&GuestDisk(&guest)))
            .context("restoring the guest from its unfinished journal (--resume)")?;
        resumed = r.restored;
        interrupt::set_policy(Policy::Abort)?;
    }

    // The filesystems' UUIDs name them when the disks are renamed; a bare
    // filesystem holding /boot is re-laid into a partitioned disk first.
    // The guest's files are read before (what is wrong in them is said
    // first), and again after a re-lay.
    let t = Instant::now();
    let mut f = guest.facts()?;
    times.inspect = t.elapsed();
    let mut disk_map = job.disk_map.clone();
    disk_map.add_uuids(&guest.filesystem_uuids()?);
    let bare = match guest.bare_boot_disk()? {
        // Booted by a kernel on the host: the disk needs no boot code.
        Some(_) if job.direct_boot.is_some() => None,
        b => b,
    };
    if let Some((i, api)) = bare {
        match relay(job, &mut disk_map, i, report) {
            Err(error) => {
                guest.close()?;
                report.result = "blocked";
                report.error = Some(error);
                return Ok(Exit::Blocked);
            }
            Ok(false) => {}
            Ok(true) => {
                guest.close()?;
                progress(&format!(
                    "re-laying {} as partition 1 of a new disk",
                    job.source_disks[i].display()
                ));
                let t = Instant::now();
                interrupt::fault("relay");
                crate::image::relay(&job.disks[i], &job.format, job.preallocate)
                    .context("re-laying the bare filesystem into a partitioned disk")?;
                times.copy += t.elapsed();
                progress("launching the appliance again");
                let t = Instant::now();
                let root = job
                    .root
                    .clone()
                    .map(|r| if r == api { format!("{r}1") } else { r });
                guest = Guest::open(
                    job.disks,
                    &OpenOptions {
                        readonly: false,
                        format: Some(job.format.clone()),
                        root,
                    },
                )?;
                _appliance = guest.pid().map(interrupt::child);
                times.appliance += t.elapsed();
                let t = Instant::now();
                f = guest.facts()?;
                times.inspect += t.elapsed();
            }
        }
    }

    let t = Instant::now();
    let boot_disk = guest.boot_disk()?;
    times.inspect += t.elapsed();

    report.set_facts(&f, guest.root());
    report.resumed = resumed;
    if let Some(Verdict::Blocked { reason, remedy }) = facts::blocked(&f) {
        guest.close()?;
        report.result = "blocked";
        report.error = Some(format!("{reason}; {remedy}"));
        return Ok(Exit::Blocked);
    }

    let mut skip = job.skip.to_vec();
    if job.direct_boot.is_some() {
        skip.push("grub-install".to_owned());
    }
    let ctx = Ctx {
        facts: &f,
        boot_disk: Some(boot_disk),
        skip: &skip,
        macs: job.macs,
        disks: &disk_map,
    };
    let plan = editor::plan(&guest, &ctx).context("planning the conversion")?;
    report.set_plan(&plan);
    report.disk_names = disk_map
        .pairs()
        .into_iter()
        .map(|(xen, kvm)| JsonDiskName { xen, kvm })
        .collect();

    // A result that could not boot is never written, let alone reported as
    // converted: the guest needs something first.
    if let Some(Verdict::Blocked { reason, remedy }) = editor::blocked(&plan) {
        guest.close()?;
        report.result = "blocked";
        report.error = Some(format!("{reason}; {remedy}"));
        return Ok(Exit::Blocked);
    }

    if matches!(mode, Mode::DryRun) {
        guest.close()?;
        report.result = if plan.is_empty() {
            "unchanged"
        } else {
            "would-change"
        };
        return Ok(Exit::Ok);
    }

    // In place: everything the plan may change is saved in the guest
    // first; from here on a signal stops at the next safe point and the
    // guest is rolled back.
    let journal = if matches!(mode, Mode::InPlace) && !plan.is_empty() {
        interrupt::set_policy(Policy::SafePoint)?;
        if interrupt::requested() {
            guest.close()?;
            return Ok(report.interrupted("before any change"));
        }
        progress("saving what the conversion will change (journal in the guest)");
        let j = journal::begin(&guest, Some(&GuestDisk(&guest)), &plan.journal_scope())
            .context("starting the conversion")?;
        report.journal = Some(j.dir().to_string());
        interrupt::fault("journal");
        Some(j)
    } else {
        None
    };

    progress(&format!(
        "applying {} change(s), {} command(s)",
        plan.changes.len(),
        plan.steps.len()
    ));
    let result = editor::apply(&guest, &GuestRunner(&guest), &plan);
    let failure = match result {
        Ok(a) => {
            report.add_applied(&a, times);
            if interrupt::requested() {
                Some("after the last step".to_owned())
            } else {
                // The promise, checked in the same appliance: what inspect
                // would report as a Xen-ism is gone, and converting again
                // would do nothing.
                let t = Instant::now();
                let residue = residue(&guest, &ctx).context("inspecting the converted guest")?;
                times.inspect += t.elapsed();
                if residue.is_empty() {
                    None
                } else {
                    report.residue = residue;
                    Some("after the conversion the guest still has Xen settings or work left (listed under \"residue\")".to_owned())
                }
            }
        }
        Err(e) => {
            report.add_applied(&e.applied, times);
            Some(e.error.to_string())
        }
    };
    if let Some(error) = failure {
        // Undo what was done, from the journal, in the same appliance.
        let rolled = journal.as_ref().map(|j| {
            progress("rolling back from the journal");
            journal::rollback(&guest, Some(&GuestDisk(&guest)), j)
        });
        let closed = guest.close();
        let what = match (&mode, rolled, closed) {
            (Mode::Copy { .. }, _, _) => {
                "the partial output was deleted; the source was not changed".to_owned()
            }
            (_, Some(Ok(r)), Ok(())) => {
                let n = r.restored.len();
                report.rolled_back = r.restored;
                report.journal = None;
                format!("the guest was rolled back from the journal as it was before ({n} item(s) restored)")
            }
            (_, Some(Err(e)), _) => format!(
                "rolling back failed too: {e}; the journal {} stays in the guest: run xen2kvm revert",
                report.journal.as_deref().unwrap_or("")
            ),
            (_, _, Err(c)) => format!("closing the disk failed: {c}; run xen2kvm revert"),
            (_, None, Ok(())) => "nothing had been written".to_owned(),
        };
        if interrupt::requested() {
            return Ok(report.interrupted(&what));
        }
        report.result = "failed";
        report.error = Some(format!("{error} ({what})"));
        return Ok(Exit::Failed);
    }
    if let Some(j) = &journal {
        j.finish(&guest).context("marking the journal finished")?;
    }
    if let Some(prefix) = &job.direct_boot {
        match extract_kernel(&guest, prefix) {
            Ok(db) => report.direct_boot = Some(db),
            Err(e) => {
                let _ = guest.close();
                report.result = "failed";
                report.error = Some(format!(
                    "extracting the kernel for --direct-boot: {e:#} (the partial output was deleted; the source was not changed)"
                ));
                return Ok(Exit::Failed);
            }
        }
    }
    guest.close()?;
    report.result = if plan.is_empty() {
        "unchanged"
    } else {
        "converted"
    };
    Ok(Exit::Ok)
}

/// `--direct-boot`: the converted guest's default kernel and initrd (what
/// its regenerated GRUB menu boots first), written to the host beside the
/// disks, with that entry's command line.
fn extract_kernel(guest: &Guest, prefix: &Path) -> Result<JsonDirectBoot> {
    let f = guest.facts()?;
    let entry = f.bootloader.default_entry.clone().context(
        "the converted guest's GRUB menu has no default entry to take the command line from",
    )?;
    let k = facts::chosen_kernel(&f).context("no kernel of the guest boots under KVM")?;
    let with = |suffix: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    let kernel = with("-vmlinuz");
    guest
        .download(&k.image, &kernel)
        .with_context(|| format!("copying {} to {}", k.image, kernel.display()))?;
    let initrd = match &k.initrd {
        Some(i) => {
            let host = with("-initrd.img");
            guest
                .download(i, &host)
                .with_context(|| format!("copying {i} to {}", host.display()))?;
            Some(host.display().to_string())
        }
        None => None,
    };
    Ok(JsonDirectBoot {
        kernel: kernel.display().to_string(),
        initrd,
        cmdline: entry.cmdline,
        guest_kernel: k.image.to_string(),
    })
}

/// Whether the `i`-th disk, a bare filesystem holding `/boot`, is to be
/// re-laid now (copy mode), would be (a dry run: the plan names it as
/// re-laid), or why it cannot be (in place; the Xen names unknown).
fn relay(
    job: &Job<'_>,
    disk_map: &mut DiskMap,
    i: usize,
    report: &mut Report,
) -> std::result::Result<bool, String> {
    let in_place = matches!(job.mode, Mode::InPlace);
    let r = bare_disk(disk_map, i, &job.source_disks[i], in_place)
        .map_err(|(reason, remedy)| format!("{reason}; {remedy}"))?;
    report.relaid.push(r);
    Ok(matches!(job.mode, Mode::Copy { .. }))
}

/// The `i`-th disk (`disk`) is a bare filesystem holding `/boot`: with its
/// Xen name known, it is re-laid as partition 1 of a new disk (marked so
/// in `disk_map`: the plan names it `vdX1`); else, or `in_place`, the
/// reason it cannot be and the remedy. `inspect` and `convert` say the
/// same.
pub(crate) fn bare_disk(
    disk_map: &mut DiskMap,
    i: usize,
    disk: &Path,
    in_place: bool,
) -> std::result::Result<JsonRelaid, (String, String)> {
    let disk = disk.display().to_string();
    let reason = "is a bare filesystem holding /boot (no partition table, so no place for boot code): it is re-laid as partition 1 of a new disk";
    let Some((_, name)) = disk_map.target(i) else {
        return Err((
            format!("{disk} {reason}, and the guest's names for its disks follow their Xen names, which are not known"),
            format!("give every disk its Xen name from the domain config (--target xvda2={disk}), or run xen2kvm migrate on the domain"),
        ));
    };
    let name = name.to_owned();
    if in_place {
        return Err((
            format!("{disk} ({name}) {reason}, which cannot be done in place"),
            "convert to a copy (-o OUT)".to_owned(),
        ));
    }
    disk_map.set_relaid(i);
    let kvm = disk_map
        .pairs()
        .get(i)
        .map(|(_, k)| k.clone())
        .unwrap_or_default();
    Ok(JsonRelaid {
        disk,
        xen: name,
        kvm,
    })
}

/// The report of a run interrupted before the guest was inspected (while
/// copying or launching): partial outputs are removed by their guard.
fn interrupted_early(args: &Args, mode: &Mode, during: &str) -> Exit {
    let mut report = Report::new(&args.disks, mode);
    let exit = report.interrupted(&format!(
        "while {during}; partial outputs were removed, the source was not changed"
    ));
    report.finish(args.json, &Times::default(), Duration::ZERO);
    exit
}

/// What is left after a conversion, read from the converted guest: every
/// Xen-ism `inspect` would report, and everything a second conversion would
/// still do. Empty when the conversion is complete.
fn residue(guest: &Guest, ctx: &Ctx<'_>) -> Result<Vec<String>> {
    let after = guest.facts()?;
    let mut left: Vec<String> = after
        .xenisms
        .iter()
        .map(|x| {
            let at = if x.line > 0 {
                format!("{}:{}", x.file, x.line)
            } else {
                x.file.to_string()
            };
            format!("xen-ism [{}] {at}: {}", x.kind.as_str(), x.text.trim())
        })
        .collect();
    let again = editor::plan(
        guest,
        &Ctx {
            facts: &after,
            boot_disk: ctx.boot_disk.clone(),
            skip: ctx.skip,
            macs: ctx.macs,
            disks: ctx.disks,
        },
    )?;
    left.extend(
        editor::needs(&again)
            .into_iter()
            .map(|n| format!("still to do: {n}")),
    );
    Ok(left)
}

fn progress(args: &Args, msg: &str) {
    if !args.json {
        eprintln!("xen2kvm: {msg}");
    }
}

/// The output image of each disk: `out` itself for one disk (unless it is a
/// directory), else `out/<disk name>.<format>`.
fn output_paths(disks: &[PathBuf], out: &Path, format: &str) -> Result<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = if disks.len() == 1 && !out.is_dir() {
        vec![out.to_owned()]
    } else {
        anyhow::ensure!(
            out.is_dir(),
            "{}: with several disks, -o names an existing directory",
            out.display()
        );
        disks
            .iter()
            .map(|d| {
                let stem = d.file_stem().unwrap_or_default().to_string_lossy();
                out.join(format!("{stem}.{format}"))
            })
            .collect()
    };
    for (d, p) in disks.iter().zip(&paths) {
        anyhow::ensure!(
            !p.exists(),
            "{} exists; remove it or choose another output",
            p.display()
        );
        if let (Ok(a), Ok(b)) = (
            d.canonicalize(),
            p.parent().map_or(Ok(PathBuf::new()), Path::canonicalize),
        ) {
            anyhow::ensure!(
                a.parent() != Some(b.as_path()) || d.file_name() != p.file_name(),
                "the output would overwrite {}",
                d.display()
            );
        }
    }
    Ok(paths)
}

/// `OUT.partial`: where an output is made before it is renamed into place.
pub(crate) fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    out.with_file_name(name)
}

#[derive(Debug, Default)]
pub(crate) struct Times {
    copy: Duration,
    appliance: Duration,
    pub(crate) inspect: Duration,
    pub(crate) edits: Duration,
    initrd: Duration,
    grub: Duration,
}

#[derive(Debug, Serialize)]
struct JsonChange {
    rule: &'static str,
    target: String,
    what: String,
}

impl From<&Change> for JsonChange {
    fn from(c: &Change) -> Self {
        JsonChange {
            rule: c.rule,
            target: c.target.clone(),
            what: c.what.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct JsonStep {
    rule: &'static str,
    command: String,
}

#[derive(Debug, Serialize)]
struct JsonFile {
    path: String,
    created: bool,
    diff: String,
}

#[derive(Debug, Serialize)]
struct Seconds {
    copy: f64,
    appliance: f64,
    inspect: f64,
    edits: f64,
    initrd: f64,
    grub: f64,
    total: f64,
}

/// `--direct-boot`: the kernel the domain boots from the host.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JsonDirectBoot {
    /// The kernel, on the host.
    pub(crate) kernel: String,
    /// The initrd, on the host.
    pub(crate) initrd: Option<String>,
    /// The command line of the guest's default GRUB entry.
    pub(crate) cmdline: String,
    /// Where the kernel is in the guest (a kernel update there does not
    /// reach the host's copy).
    pub(crate) guest_kernel: String,
}

/// A bare filesystem re-laid as partition 1 of a new disk.
#[derive(Debug, Serialize)]
pub(crate) struct JsonRelaid {
    /// The source disk.
    pub(crate) disk: String,
    /// Its Xen name (`xvda2`).
    pub(crate) xen: String,
    /// The partition it now is under KVM (`vda1`).
    pub(crate) kvm: String,
}

/// One disk's Xen name and its virtio name.
#[derive(Debug, Serialize)]
struct JsonDiskName {
    xen: String,
    kvm: String,
}

/// The report, printed as text or as JSON (docs/json.md).
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    version: u32,
    mode: &'static str,
    disks: Vec<String>,
    outputs: Vec<String>,
    root: String,
    /// A btrfs root's subvolume (the default one), where the edits went.
    #[serde(skip_serializing_if = "Option::is_none")]
    root_subvolume: Option<String>,
    /// Snapshots inspection also found, not converted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    snapshots_ignored: Vec<String>,
    os: String,
    kernel: Option<String>,
    /// Each disk's Xen name and the virtio name the guest sees it by, when
    /// the Xen names are known (`--target`, or the domain's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    disk_names: Vec<JsonDiskName>,
    /// Bare filesystems re-laid into partitioned disks (copy mode; a dry
    /// run says which would be).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relaid: Vec<JsonRelaid>,
    /// `migrate --direct-boot`: the kernel and initrd extracted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) direct_boot: Option<JsonDirectBoot>,
    pub(crate) result: &'static str,
    pub(crate) error: Option<String>,
    changes: Vec<JsonChange>,
    files: Vec<JsonFile>,
    links_removed: Vec<String>,
    /// Files removed (caches that named the Xen disks).
    files_removed: Vec<String>,
    steps: Vec<JsonStep>,
    warnings: Vec<JsonChange>,
    done: Vec<String>,
    pub(crate) residue: Vec<String>,
    /// The in-place journal (guest path) of this conversion, kept after
    /// success so that `xen2kvm revert` can undo it.
    journal: Option<String>,
    /// What the rollback restored, when the conversion failed or was
    /// interrupted in place.
    rolled_back: Vec<String>,
    /// What `--resume` restored from an unfinished journal first.
    resumed: Vec<String>,
    /// The signal that interrupted the run.
    signal: Option<&'static str>,
    seconds: Option<Seconds>,
    /// A Windows guest's plan: registry values and files, the domain's
    /// disk bus and NIC model.
    #[serde(skip_serializing_if = "Option::is_none")]
    windows: Option<crate::windows::JsonWindowsPlan>,
}

impl Report {
    pub(crate) fn new(disks: &[PathBuf], mode: &Mode) -> Report {
        Report {
            version: 1,
            mode: mode.name(),
            disks: disks.iter().map(|d| d.display().to_string()).collect(),
            outputs: Vec::new(),
            root: String::new(),
            root_subvolume: None,
            snapshots_ignored: Vec::new(),
            os: String::new(),
            kernel: None,
            disk_names: Vec::new(),
            relaid: Vec::new(),
            direct_boot: None,
            result: "",
            error: None,
            changes: Vec::new(),
            files: Vec::new(),
            links_removed: Vec::new(),
            files_removed: Vec::new(),
            steps: Vec::new(),
            warnings: Vec::new(),
            done: Vec::new(),
            residue: Vec::new(),
            journal: None,
            rolled_back: Vec::new(),
            resumed: Vec::new(),
            signal: None,
            seconds: None,
            windows: None,
        }
    }

    /// A Windows guest's identity.
    pub(crate) fn set_windows_facts(&mut self, f: &xen2kvm_windows::facts::WinFacts, root: &str) {
        root.clone_into(&mut self.root);
        self.os = format!("{} ({})", f.release(), f.base.product);
    }

    /// A Windows guest's plan: each file and value is a change.
    pub(crate) fn set_windows_plan(&mut self, p: &xen2kvm_windows::plan::Plan) {
        for a in &p.files {
            let from = match &a.source {
                xen2kvm_windows::plan::Source::Tree(t) => format!("from virtio-win {t}"),
                xen2kvm_windows::plan::Source::Host(h) => format!("from {}", h.display()),
                xen2kvm_windows::plan::Source::Text(_) => "written by xen2kvm".to_owned(),
            };
            self.changes.push(JsonChange {
                rule: a.rule.as_str(),
                target: a.dest.clone(),
                what: format!("added ({from})"),
            });
        }
        for e in &p.edits {
            self.changes.push(JsonChange {
                rule: e.rule.as_str(),
                target: e.full_key(),
                what: format!(
                    "{} = {} ({})",
                    if e.name.is_empty() { "@" } else { &e.name },
                    e.value,
                    e.old
                        .as_ref()
                        .map_or_else(|| "new".to_owned(), |o| format!("was {o}"))
                ),
            });
        }
        self.warnings = p
            .warnings
            .iter()
            .map(|w| JsonChange {
                rule: "windows",
                target: String::new(),
                what: w.clone(),
            })
            .collect();
    }

    /// What the domain of a converted Windows guest needs.
    pub(crate) fn windows_domain(&self) -> Option<xen2kvm_domxml::Windows> {
        self.windows
            .as_ref()
            .map(crate::windows::JsonWindowsPlan::domain)
    }

    /// The Windows facts and plan for the JSON report.
    pub(crate) fn set_windows_json(&mut self, j: crate::windows::JsonWindowsPlan) {
        self.windows = Some(j);
    }

    fn set_facts(&mut self, f: &Facts, root: &RootInfo) {
        root.device.clone_into(&mut self.root);
        self.root_subvolume.clone_from(&root.subvolume);
        self.snapshots_ignored.clone_from(&root.snapshots_ignored);
        self.os.clone_from(&f.os.product);
        self.kernel = facts::chosen_kernel(f).map(|k| k.version.clone());
    }

    /// Marks the report of an interrupted run; the exit code is
    /// 128 + the signal, as a shell reports a process a signal stopped.
    pub(crate) fn interrupted(&mut self, what: &str) -> Exit {
        let sig = interrupt::signal().unwrap_or(15);
        self.result = "interrupted";
        self.signal = Some(interrupt::signal_name(sig));
        self.error = Some(format!(
            "interrupted by {}: {what}",
            interrupt::signal_name(sig)
        ));
        Exit::Interrupted
    }

    fn set_plan(&mut self, plan: &Plan) {
        self.changes = plan.changes.iter().map(JsonChange::from).collect();
        self.files = plan
            .files
            .iter()
            .map(|f| JsonFile {
                path: f.path.to_string(),
                created: f.before.is_none(),
                diff: editor::unified_diff(f.path.as_str(), f.before.as_deref(), &f.after),
            })
            .collect();
        self.links_removed = plan
            .remove_links
            .iter()
            .map(|(l, t)| format!("{l} -> {t}"))
            .collect();
        self.files_removed = plan.remove_files.iter().map(ToString::to_string).collect();
        self.steps = plan
            .steps
            .iter()
            .map(|s| JsonStep {
                rule: s.rule,
                command: s.step.describe(),
            })
            .collect();
        self.warnings = plan.warnings.iter().map(JsonChange::from).collect();
    }

    fn add_applied(&mut self, a: &editor::Applied, times: &mut Times) {
        self.done = a.done.clone();
        self.changes.extend(a.changes.iter().map(JsonChange::from));
        times.edits = a.edits;
        times.initrd = a.initrd;
        times.grub = a.grub;
    }

    /// Records the times and prints the report (JSON or text).
    pub(crate) fn finish(&mut self, json: bool, t: &Times, total: Duration) {
        self.set_times(t, total);
        if json {
            match serde_json::to_string_pretty(self) {
                Ok(j) => println!("{j}"),
                Err(e) => eprintln!("xen2kvm: error: {e}"),
            }
        } else {
            self.print_human();
        }
    }

    /// Records the times.
    pub(crate) fn set_times(&mut self, t: &Times, total: Duration) {
        let s = |d: Duration| (d.as_secs_f64() * 10.0).round() / 10.0;
        self.seconds = Some(Seconds {
            copy: s(t.copy),
            appliance: s(t.appliance),
            inspect: s(t.inspect),
            edits: s(t.edits),
            initrd: s(t.initrd),
            grub: s(t.grub),
            total: s(total),
        });
    }

    /// The conversion in a few lines (for `migrate`'s report).
    #[allow(clippy::print_stdout)]
    pub(crate) fn print_summary(&self) {
        println!(
            "conversion: {} ({}; {} change(s), {} command(s))",
            self.result,
            self.os,
            self.changes.len(),
            self.steps.len()
        );
        for c in &self.changes {
            println!("  [{}] {}: {}", c.rule, c.target, c.what);
        }
        for w in &self.warnings {
            println!("  warning: [{}] {}: {}", w.rule, w.target, w.what);
        }
        for r in &self.residue {
            println!("  residue: {r}");
        }
        if let Some(e) = &self.error {
            println!("  error: {e}");
        }
    }

    fn print_human(&self) {
        println!("guest: {} (root {})", self.os, self.root);
        if let Some(sv) = &self.root_subvolume {
            println!("btrfs: edits go to the default subvolume {sv} (the one the guest boots)");
        }
        if !self.snapshots_ignored.is_empty() {
            println!(
                "snapshots not converted (older states of the guest): {}",
                self.snapshots_ignored.join(", ")
            );
        }
        if let Some(k) = &self.kernel {
            println!("kernel: {k}");
        }
        if !self.disk_names.is_empty() {
            let names: Vec<String> = self
                .disk_names
                .iter()
                .map(|d| format!("{} -> {}", d.xen, d.kvm))
                .collect();
            println!(
                "disks: {} (virtio names follow the domain's disk order)",
                names.join(", ")
            );
        }
        for r in &self.relaid {
            println!(
                "re-laid: {} ({}) is a bare filesystem: {} partition 1 (at 1 MiB) of a new disk with a DOS partition table and GRUB ({} under KVM)",
                r.disk,
                r.xen,
                if self.mode == "dry-run" { "would become" } else { "now" },
                r.kvm
            );
        }
        if let Some(d) = &self.direct_boot {
            println!(
                "direct boot: the domain boots {} (initrd {}) from the host, cmdline {:?}; a kernel update in the guest does not reach these copies",
                d.kernel,
                d.initrd.as_deref().unwrap_or("none"),
                d.cmdline
            );
        }
        if let Some(w) = &self.windows {
            println!(
                "domain: disk bus {}, NIC {} ({})",
                w.disk_bus(),
                w.nic(),
                w.release()
            );
        }
        if self.mode == "dry-run" && self.windows.is_some() && !self.changes.is_empty() {
            println!("would change:");
            for c in &self.changes {
                println!("  [{}] {}: {}", c.rule, c.target, c.what);
            }
        }
        if self.mode == "dry-run" {
            for f in &self.files {
                print!("{}", f.diff);
            }
            for l in &self.links_removed {
                println!("remove symlink {l}");
            }
            for f in &self.files_removed {
                println!("remove file {f}");
            }
            if !self.steps.is_empty() {
                println!("would run:");
                for s in &self.steps {
                    println!("  [{}] {}", s.rule, s.command);
                }
            }
        } else {
            if !self.changes.is_empty() {
                println!("changes:");
                for c in &self.changes {
                    println!("  [{}] {}: {}", c.rule, c.target, c.what);
                }
            }
            if !self.done.is_empty() {
                println!("done:");
                for d in &self.done {
                    println!("  {d}");
                }
            }
        }
        for w in &self.warnings {
            println!("warning: [{}] {}: {}", w.rule, w.target, w.what);
        }
        if !self.residue.is_empty() {
            println!("residue (after the conversion):");
            for r in &self.residue {
                println!("  {r}");
            }
        }
        if let Some(s) = &self.seconds {
            println!(
                "seconds: copy {}, appliance {}, inspection {}, edits {}, initrd {}, grub {}, total {}",
                s.copy, s.appliance, s.inspect, s.edits, s.initrd, s.grub, s.total
            );
        }
        for o in &self.outputs {
            println!("output: {o}");
        }
        if !self.resumed.is_empty() {
            println!("restored first (--resume):");
            for r in &self.resumed {
                println!("  {r}");
            }
        }
        if !self.rolled_back.is_empty() {
            println!("rolled back:");
            for r in &self.rolled_back {
                println!("  {r}");
            }
        }
        if let Some(j) = &self.journal {
            println!("journal: {j} (in the guest; `xen2kvm revert` undoes this conversion)");
        }
        match (self.result, &self.error) {
            ("blocked", Some(e)) => println!("result: blocked: {e}"),
            ("interrupted", Some(e)) => println!("result: interrupted: {e}"),
            ("failed", Some(e)) => println!("result: failed: {e}"),
            (r, _) => println!(
                "result: {r} ({} change(s), {} command(s))",
                self.changes.len(),
                self.steps.len()
            ),
        }
    }
}
