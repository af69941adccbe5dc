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
use xen2kvm_inspector::{Guest, OpenOptions};

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
    /// Which root filesystem to convert when the disks hold several.
    #[arg(long, value_name = "DEV")]
    root: Option<String>,
    /// List the rules and exit.
    #[arg(long)]
    list: bool,
    /// Do not run this rule (repeatable; names from --list).
    #[arg(long, value_name = "RULE", value_parser = rule_name)]
    skip: Vec<String>,
    /// Print a JSON document (schema in docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
}

enum Mode {
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
}

/// `--skip`'s parser: a rule of the table.
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
                    &args,
                    &format!("copying {} to {}", src.display(), out.display()),
                );
                crate::image::copy(src, &input_format, &partial, &args.format)?;
            }
            times.copy = t.elapsed();
            (partials.0.clone(), args.format.clone())
        }
        _ => (args.disks.clone(), input_format.clone()),
    };

    progress(&args, "launching the appliance");
    let t = Instant::now();
    let guest = Guest::open(
        &disks,
        &OpenOptions {
            readonly: matches!(mode, Mode::DryRun),
            format: Some(format),
            root: args.root.clone(),
        },
    )?;
    times.appliance = t.elapsed();

    let t = Instant::now();
    let f = guest.facts()?;
    let boot_disk = guest.boot_disk()?;
    times.inspect = t.elapsed();

    let mut report = Report::new(&args, &mode, &f, &guest.root().device);
    if let Some(Verdict::Blocked { reason, remedy }) = facts::blocked(&f) {
        guest.close()?;
        report.result = "blocked";
        report.error = Some(format!("{reason}; {remedy}"));
        report.finish(&args, &times, total.elapsed());
        return Ok(Exit::Blocked);
    }

    let ctx = Ctx {
        facts: &f,
        boot_disk: Some(boot_disk),
        skip: &args.skip,
    };
    let plan = editor::plan(&guest, &ctx).context("planning the conversion")?;
    report.set_plan(&plan);

    // A result that could not boot is never written, let alone reported as
    // converted: the guest needs something first.
    if let Some(Verdict::Blocked { reason, remedy }) = editor::blocked(&plan) {
        guest.close()?;
        report.result = "blocked";
        report.error = Some(format!("{reason}; {remedy}"));
        report.finish(&args, &times, total.elapsed());
        return Ok(Exit::Blocked);
    }

    if matches!(mode, Mode::DryRun) {
        guest.close()?;
        report.result = if plan.is_empty() {
            "unchanged"
        } else {
            "would-change"
        };
        report.finish(&args, &times, total.elapsed());
        return Ok(Exit::Ok);
    }

    progress(
        &args,
        &format!(
            "applying {} change(s), {} command(s)",
            plan.changes.len(),
            plan.steps.len()
        ),
    );
    let result = editor::apply(&guest, &GuestRunner(&guest), &plan);
    let applied = match result {
        Ok(a) => a,
        Err(e) => {
            report.add_applied(&e.applied, &mut times);
            let closed = guest.close();
            report.result = "failed";
            report.error = Some(match (&mode, closed) {
                (Mode::Copy { .. }, _) => format!(
                    "{} (the partial output was deleted; the source was not changed)",
                    e.error
                ),
                (_, Err(c)) => format!("{}; closing the disk also failed: {c}", e.error),
                _ => format!(
                    "{} (in place: the steps listed under \"done\" were written to the disk)",
                    e.error
                ),
            });
            report.finish(&args, &times, total.elapsed());
            return Ok(Exit::Failed);
        }
    };
    report.add_applied(&applied, &mut times);

    // The promise, checked in the same appliance: what inspect would report
    // as a Xen-ism is gone, and converting again would do nothing.
    let t = Instant::now();
    let residue = residue(&guest, &ctx).context("inspecting the converted guest")?;
    times.inspect += t.elapsed();
    if !residue.is_empty() {
        let closed = guest.close();
        report.residue = residue;
        report.result = "failed";
        report.error = Some(match (&mode, closed) {
            (Mode::Copy { .. }, _) => "after the conversion the guest still has Xen settings or work left (listed under \"residue\"); the partial output was deleted, the source was not changed".to_owned(),
            (_, Err(c)) => format!("after the conversion the guest still has Xen settings or work left (listed under \"residue\"); closing the disk also failed: {c}"),
            _ => "after the conversion the guest still has Xen settings or work left (listed under \"residue\"); in place: the steps listed under \"done\" were written to the disk".to_owned(),
        });
        report.finish(&args, &times, total.elapsed());
        return Ok(Exit::Failed);
    }
    guest.close()?;
    if let Mode::Copy { outputs } = &mode {
        for (partial, out) in partials.0.iter().zip(outputs) {
            std::fs::rename(partial, out)
                .with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
        }
        partials.0.clear();
        report.outputs = outputs.iter().map(|p| p.display().to_string()).collect();
    }
    report.result = if plan.is_empty() {
        "unchanged"
    } else {
        "converted"
    };
    report.finish(&args, &times, total.elapsed());
    Ok(Exit::Ok)
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

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    out.with_file_name(name)
}

#[derive(Debug, Default)]
struct Times {
    copy: Duration,
    appliance: Duration,
    inspect: Duration,
    edits: Duration,
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

/// The report, printed as text or as JSON (docs/json.md).
#[derive(Debug, Serialize)]
struct Report {
    version: u32,
    mode: &'static str,
    disks: Vec<String>,
    outputs: Vec<String>,
    root: String,
    os: String,
    kernel: Option<String>,
    result: &'static str,
    error: Option<String>,
    changes: Vec<JsonChange>,
    files: Vec<JsonFile>,
    links_removed: Vec<String>,
    steps: Vec<JsonStep>,
    warnings: Vec<JsonChange>,
    done: Vec<String>,
    residue: Vec<String>,
    seconds: Option<Seconds>,
}

impl Report {
    fn new(args: &Args, mode: &Mode, f: &Facts, root: &str) -> Report {
        Report {
            version: 1,
            mode: mode.name(),
            disks: args.disks.iter().map(|d| d.display().to_string()).collect(),
            outputs: Vec::new(),
            root: root.to_owned(),
            os: f.os.product.clone(),
            kernel: facts::chosen_kernel(f).map(|k| k.version.clone()),
            result: "",
            error: None,
            changes: Vec::new(),
            files: Vec::new(),
            links_removed: Vec::new(),
            steps: Vec::new(),
            warnings: Vec::new(),
            done: Vec::new(),
            residue: Vec::new(),
            seconds: None,
        }
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

    fn finish(&mut self, args: &Args, t: &Times, total: Duration) {
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
        if args.json {
            match serde_json::to_string_pretty(self) {
                Ok(j) => println!("{j}"),
                Err(e) => eprintln!("xen2kvm: error: {e}"),
            }
        } else {
            self.print_human();
        }
    }

    fn print_human(&self) {
        println!("guest: {} (root {})", self.os, self.root);
        if let Some(k) = &self.kernel {
            println!("kernel: {k}");
        }
        if self.mode == "dry-run" {
            for f in &self.files {
                print!("{}", f.diff);
            }
            for l in &self.links_removed {
                println!("remove symlink {l}");
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
        match (self.result, &self.error) {
            ("blocked", Some(e)) => println!("result: blocked: {e}"),
            ("failed", Some(e)) => println!("result: failed: {e}"),
            (r, _) => println!(
                "result: {r} ({} change(s), {} command(s))",
                self.changes.len(),
                self.steps.len()
            ),
        }
    }
}
