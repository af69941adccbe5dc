//! [`plan`] reads a guest and decides every change (files to write, links to
//! remove, commands to run); [`apply`] carries a plan out. Planning only
//! reads, so `--dry-run` is a plan shown, and the diff it shows is exactly
//! what `apply` writes.

use std::io;
use std::time::{Duration, Instant};

use xen2kvm_inspector::facts::{Avail, Facts, Kernel};
use xen2kvm_inspector::{bootconf, initrd};
use xen2kvm_vfs::{GuestFs, GuestPath};

use crate::rules::RULES;
use crate::{default_kernel, Edit};

/// What the rules know about the guest besides its files.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// The inspection facts.
    pub facts: &'a Facts,
    /// The appliance's name of the disk holding the root (`/dev/sda`), where
    /// GRUB's boot code is installed when the disk has none.
    pub boot_disk: Option<String>,
    /// Rules not to run (names from [`RULES`]).
    pub skip: &'a [String],
}

impl Ctx<'_> {
    /// The kernel the guest will boot on KVM.
    pub fn kernel(&self) -> Option<&Kernel> {
        xen2kvm_inspector::facts::chosen_kernel(self.facts)
    }
}

/// One change, and the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The rule's name.
    pub rule: &'static str,
    /// The file, link or command it is about.
    pub target: String,
    /// What changed.
    pub what: String,
}

/// A file's content before and after the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    /// The file.
    pub path: GuestPath,
    /// Its content now (`None`: the plan creates it).
    pub before: Option<String>,
    /// Its content after the plan.
    pub after: String,
}

/// A command, or a command-driven job, run after the files are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Rebuild the initrd of the chosen kernel with the guest's tool, keeping
    /// the old one as `<initrd>.xen2kvm-orig`, then check it has `require`.
    RebuildInitrd {
        /// The kernel release.
        kernel: String,
        /// The initrd file the command writes.
        initrd: GuestPath,
        /// The command.
        argv: Vec<String>,
        /// Modules the new initrd must contain.
        require: Vec<String>,
    },
    /// Install GRUB's BIOS boot code on the disk. While it runs, each file
    /// of `pin` holds the given content (GRUB's device.map says `(hd0)` is
    /// the appliance's disk: the guest's names Xen or KVM disks, and without
    /// one grub-install may take the appliance's own disk for BIOS disk 0
    /// and refuse a "cross-disk install"); the files are restored after.
    GrubInstall {
        /// The command.
        argv: Vec<String>,
        /// Files and their content during the command.
        pin: Vec<(GuestPath, String)>,
    },
    /// Regenerate `grub.cfg`, then check it names no Xen device.
    GrubMkconfig {
        /// The command.
        argv: Vec<String>,
        /// The file it writes.
        output: GuestPath,
    },
    /// Make the GRUB 2 menu's entry for `image` the default (after
    /// `grub-mkconfig`): with `set_default` (`grub-set-default`) or the
    /// grubenv when `GRUB_DEFAULT=saved`, else in `/etc/default/grub`
    /// followed by `mkconfig` again.
    Grub2Default {
        /// The kernel image's file name.
        image: String,
        /// `grub.cfg`.
        config: GuestPath,
        /// The guest's `grub-set-default`/`grub2-set-default`, if any.
        set_default: Option<String>,
        /// The `grub-mkconfig` command, to run again after editing
        /// `/etc/default/grub`.
        mkconfig: Vec<String>,
    },
}

impl Step {
    /// The rule that planned it.
    pub fn rule(&self) -> &'static str {
        match self {
            Step::RebuildInitrd { .. } => "rebuild-initrd",
            Step::GrubInstall { .. } => "grub-install",
            Step::GrubMkconfig { .. } => "grub-config",
            Step::Grub2Default { .. } => "default-kernel",
        }
    }

    /// What it runs, as shell-like text for people (`--dry-run`).
    pub fn describe(&self) -> String {
        match self {
            Step::RebuildInitrd {
                argv,
                initrd,
                require,
                ..
            } => format!(
                "{} (old initrd kept as {initrd}.xen2kvm-orig; the new one must hold {})",
                shell_words(argv),
                require.join(", ")
            ),
            Step::GrubInstall { argv, pin } => {
                let pinned: Vec<String> = pin
                    .iter()
                    .map(|(p, c)| format!("{p} saying {}", c.trim().replace('\t', " ")))
                    .collect();
                if pinned.is_empty() {
                    shell_words(argv)
                } else {
                    format!(
                        "{} (with {} while it runs)",
                        shell_words(argv),
                        pinned.join(", ")
                    )
                }
            }
            Step::GrubMkconfig { argv, .. } => {
                format!("{} (the result must name no Xen device)", shell_words(argv))
            }
            Step::Grub2Default {
                image, set_default, ..
            } => format!(
                "make the menu entry booting {image} the default{}",
                match set_default {
                    Some(t) => format!(" ({t} when GRUB_DEFAULT=saved)"),
                    None => String::new(),
                }
            ),
        }
    }
}

/// `argv` as one line a shell would read back.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_.=,:+@".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything `convert` will do to one guest.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The kernel made the default (release).
    pub kernel: Option<String>,
    /// Files to write, in the order the rules first touched them.
    pub files: Vec<FileEdit>,
    /// Symlinks to remove, with their targets.
    pub remove_links: Vec<(GuestPath, String)>,
    /// Commands to run, in order.
    pub steps: Vec<Step>,
    /// Every change to a file or link, with its rule.
    pub changes: Vec<Change>,
    /// Warnings, with their rules.
    pub warnings: Vec<Change>,
}

impl Plan {
    /// Whether the plan does nothing at all.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.remove_links.is_empty() && self.steps.is_empty()
    }

    /// Unified diffs of every file, then one line per link removal.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            out.push_str(&crate::unified_diff(
                f.path.as_str(),
                f.before.as_deref(),
                &f.after,
            ));
        }
        for (link, target) in &self.remove_links {
            out.push_str(&format!("remove symlink {link} -> {target}\n"));
        }
        out
    }
}

/// Collects the rules' edits, keeping one working copy per file so several
/// rules can edit one file.
pub(crate) struct Planner<'a> {
    pub(crate) fs: &'a dyn GuestFs,
    pub(crate) plan: Plan,
}

impl Planner<'_> {
    /// Applies `rule` (a pure edit) to `path`'s current text, if it exists.
    pub(crate) fn edit(
        &mut self,
        rule: &'static str,
        path: &GuestPath,
        f: impl FnOnce(&str) -> Edit,
    ) -> io::Result<()> {
        let current = match self.plan.files.iter().find(|e| &e.path == path) {
            Some(e) => Some(e.after.clone()),
            None => self.fs.read_text(path)?,
        };
        let Some(current) = current else {
            return Ok(());
        };
        let e = f(&current);
        for w in e.warnings {
            self.plan.warnings.push(Change {
                rule,
                target: path.to_string(),
                what: w,
            });
        }
        if e.changes.is_empty() {
            return Ok(());
        }
        for c in e.changes {
            self.plan.changes.push(Change {
                rule,
                target: path.to_string(),
                what: c,
            });
        }
        self.set(path, Some(current), e.text);
        Ok(())
    }

    /// Creates (or replaces) a file with `content`, unless it has it already.
    pub(crate) fn create(
        &mut self,
        rule: &'static str,
        path: &GuestPath,
        content: String,
        what: &str,
    ) -> io::Result<()> {
        let current = self.fs.read_text(path)?;
        if current.as_deref() == Some(content.as_str()) {
            return Ok(());
        }
        self.plan.changes.push(Change {
            rule,
            target: path.to_string(),
            what: what.to_owned(),
        });
        self.set(path, current, content);
        Ok(())
    }

    fn set(&mut self, path: &GuestPath, original: Option<String>, after: String) {
        match self.plan.files.iter_mut().find(|e| &e.path == path) {
            Some(e) => e.after = after,
            None => self.plan.files.push(FileEdit {
                path: path.clone(),
                before: original,
                after,
            }),
        }
    }

    /// Whether a rule named in `rules` changed any file.
    pub(crate) fn changed_by(&self, rules: &[&str]) -> bool {
        self.plan.changes.iter().any(|c| rules.contains(&c.rule))
    }

    /// Whether the plan changes `path`.
    pub(crate) fn changes_file(&self, path: &str) -> bool {
        self.plan.files.iter().any(|f| f.path.as_str() == path)
    }

    pub(crate) fn warn(&mut self, rule: &'static str, target: &str, what: String) {
        self.plan.warnings.push(Change {
            rule,
            target: target.to_owned(),
            what,
        });
    }
}

/// Plans the conversion of the guest `fs` (only reads).
pub fn plan(fs: &dyn GuestFs, ctx: &Ctx<'_>) -> io::Result<Plan> {
    for s in ctx.skip {
        if !RULES.iter().any(|r| r.name == s) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown rule '{s}' (see --list)"),
            ));
        }
    }
    let mut p = Planner {
        fs,
        plan: Plan {
            kernel: ctx.kernel().map(|k| k.version.clone()),
            ..Plan::default()
        },
    };
    for rule in RULES {
        if ctx.skip.iter().any(|s| s == rule.name) {
            continue;
        }
        (rule.plan)(ctx, &mut p)?;
    }
    Ok(p.plan)
}

/// Runs commands inside the guest.
pub trait Runner {
    /// Runs `argv` in the guest (its root as `/`), returning its output; a
    /// non-zero exit is an error carrying the command's messages.
    fn run(&self, argv: &[String]) -> io::Result<String>;
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// What was written and run, in order, one line each.
    pub done: Vec<String>,
    /// Changes made by the commands (initrd rebuilt, default entry set).
    pub changes: Vec<Change>,
    /// Time spent writing files.
    pub edits: Duration,
    /// Time spent rebuilding the initrd.
    pub initrd: Duration,
    /// Time spent on GRUB (install, mkconfig, default).
    pub grub: Duration,
}

/// A failure part-way through [`apply`], with what was already done.
#[derive(Debug)]
pub struct ApplyError {
    /// What was written and run before the failure.
    pub applied: Applied,
    /// The failure.
    pub error: io::Error,
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for ApplyError {}

/// Carries out `plan`: writes the files, removes the links, then runs the
/// steps. Stops at the first failure, saying what was done before it.
pub fn apply(fs: &dyn GuestFs, runner: &dyn Runner, plan: &Plan) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    match apply_inner(fs, runner, plan, &mut applied) {
        Ok(()) => Ok(applied),
        Err(error) => Err(ApplyError { applied, error }),
    }
}

fn apply_inner(
    fs: &dyn GuestFs,
    runner: &dyn Runner,
    plan: &Plan,
    out: &mut Applied,
) -> io::Result<()> {
    let t = Instant::now();
    for f in &plan.files {
        fs.write(&f.path, f.after.as_bytes())
            .map_err(|e| ctx_err(e, &format!("writing {}", f.path)))?;
        out.done.push(format!("wrote {}", f.path));
    }
    for (link, _) in &plan.remove_links {
        fs.remove(link)
            .map_err(|e| ctx_err(e, &format!("removing {link}")))?;
        out.done.push(format!("removed {link}"));
    }
    out.edits = t.elapsed();
    for step in &plan.steps {
        let t = Instant::now();
        run_step(fs, runner, step, out)?;
        match step {
            Step::RebuildInitrd { .. } => out.initrd += t.elapsed(),
            _ => out.grub += t.elapsed(),
        }
    }
    Ok(())
}

fn ctx_err(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn run(runner: &dyn Runner, argv: &[String], out: &mut Applied) -> io::Result<String> {
    let line = shell_words(argv);
    let r = runner
        .run(argv)
        .map_err(|e| ctx_err(e, &format!("running {line} in the guest")))?;
    out.done.push(format!("ran {line}"));
    Ok(r)
}

fn run_step(
    fs: &dyn GuestFs,
    runner: &dyn Runner,
    step: &Step,
    out: &mut Applied,
) -> io::Result<()> {
    let rule = step.rule();
    match step {
        Step::RebuildInitrd {
            kernel,
            initrd: path,
            argv,
            require,
        } => {
            let backup = GuestPath::new(&format!("{path}.xen2kvm-orig"))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            // The first backup is the Xen original: a second run keeps it.
            if !fs.exists(&backup)?
                && fs
                    .copy(path, &backup)
                    .map_err(|e| ctx_err(e, &format!("copying {path} to {backup}")))?
            {
                out.done.push(format!("copied {path} to {backup}"));
            }
            run(runner, argv, out)?;
            let bytes = fs.read(path)?.ok_or_else(|| {
                io::Error::other(format!(
                    "{} did not write {path}",
                    argv.first().map_or("", String::as_str)
                ))
            })?;
            let names = initrd::list(&bytes)
                .map_err(|e| io::Error::other(format!("cannot read the new initrd {path}: {e}")))?;
            let missing: Vec<&str> = require
                .iter()
                .map(String::as_str)
                .filter(|m| !initrd::has_module(&names, m))
                .collect();
            if !missing.is_empty() {
                return Err(io::Error::other(format!(
                    "the rebuilt initrd {path} lacks {} (the guest would not find its disk on KVM); the previous initrd is kept as {backup}",
                    missing.join(", ")
                )));
            }
            out.changes.push(Change {
                rule,
                target: path.to_string(),
                what: format!("rebuilt for {kernel}; holds {}", require.join(", ")),
            });
        }
        Step::GrubInstall { argv, pin } => {
            let mut saved = Vec::new();
            for (path, content) in pin {
                saved.push((path, fs.read(path)?));
                fs.write(path, content.as_bytes())
                    .map_err(|e| ctx_err(e, &format!("writing {path}")))?;
            }
            let result = run(runner, argv, out);
            for (path, old) in saved {
                match old {
                    Some(bytes) => fs.write(path, &bytes)?,
                    None => {
                        fs.remove(path)?;
                    }
                }
            }
            result?;
            out.changes.push(Change {
                rule,
                target: argv.last().cloned().unwrap_or_default(),
                what: "installed GRUB's BIOS boot code".to_owned(),
            });
        }
        Step::GrubMkconfig { argv, output } => {
            mkconfig(fs, runner, argv, output, out)?;
            out.changes.push(Change {
                rule,
                target: output.to_string(),
                what: "regenerated".to_owned(),
            });
        }
        Step::Grub2Default {
            image,
            config,
            set_default,
            mkconfig: mk,
        } => {
            let cfg = fs.read_text(config)?.unwrap_or_default();
            let env_path = config
                .parent()
                .and_then(|d| d.join("grubenv").ok())
                .unwrap_or_else(|| GuestPath::lit("/boot/grub/grubenv"));
            let env = fs.read_text(&env_path)?.unwrap_or_default();
            if let Some(e) = bootconf::grub2_default(&cfg, &env, config) {
                if e.kernel.rsplit('/').next() == Some(image.as_str()) {
                    return Ok(());
                }
            }
            let entry = bootconf::grub2_entry_path(&cfg, image).ok_or_else(|| {
                io::Error::other(format!("{config} has no menu entry that boots {image}"))
            })?;
            let dg = GuestPath::lit("/etc/default/grub");
            let default_grub = fs.read_text(&dg)?.unwrap_or_default();
            let saved = default_grub.lines().any(|l| {
                let l = l.trim();
                l == "GRUB_DEFAULT=saved" || l == "GRUB_DEFAULT=\"saved\""
            });
            if saved {
                match set_default {
                    Some(tool) => {
                        run(runner, &[tool.clone(), entry.clone()], out)?;
                    }
                    None => {
                        let block = fs.read_text(&env_path)?.unwrap_or_else(empty_grubenv);
                        let new = default_kernel::grubenv_set(&block, "saved_entry", &entry)
                            .ok_or_else(|| {
                                io::Error::other(format!(
                                    "{env_path} is not a GRUB environment block"
                                ))
                            })?;
                        fs.write(&env_path, new.as_bytes())?;
                        out.done.push(format!("wrote {env_path}"));
                    }
                }
                out.changes.push(Change {
                    rule,
                    target: env_path.to_string(),
                    what: format!("saved_entry={entry}"),
                });
            } else {
                let e = default_kernel::default_grub_default(&default_grub, &entry);
                fs.write(&dg, e.text.as_bytes())?;
                out.done.push(format!("wrote {dg}"));
                for c in e.changes {
                    out.changes.push(Change {
                        rule,
                        target: dg.to_string(),
                        what: c,
                    });
                }
                mkconfig(fs, runner, mk, config, out)?;
            }
        }
    }
    Ok(())
}

fn empty_grubenv() -> String {
    let mut s = "# GRUB Environment Block\n".to_owned();
    s.push_str(&"#".repeat(1024 - s.len()));
    s
}

fn mkconfig(
    fs: &dyn GuestFs,
    runner: &dyn Runner,
    argv: &[String],
    output: &GuestPath,
    out: &mut Applied,
) -> io::Result<()> {
    run(runner, argv, out)?;
    let cfg = fs
        .read_text(output)?
        .ok_or_else(|| io::Error::other(format!("{} did not write {output}", shell_words(argv))))?;
    for (n, line) in cfg.lines().enumerate() {
        let t = line.trim_start();
        if !(t.starts_with("linux") || t.starts_with("search") || t.starts_with("set root")) {
            continue;
        }
        if line.contains("/dev/xvd") || line.contains("console=hvc") || line.contains("console=xvc")
        {
            return Err(io::Error::other(format!(
                "{output} line {}: still names a Xen device: {}",
                n + 1,
                t
            )));
        }
        if t.starts_with("linux") && line.contains("root=/dev/sd") {
            return Err(io::Error::other(format!(
                "{output} line {}: grub-mkconfig wrote the conversion appliance's device name: {t}",
                n + 1
            )));
        }
    }
    Ok(())
}

/// The drivers of [`crate::initrd_conf::VIRTIO_DRIVERS`] that `kernel` has
/// as modules (built-in ones need no initrd), and those the new initrd must
/// be checked for.
pub(crate) fn initrd_drivers(kernel: &Kernel) -> (Vec<String>, Vec<String>) {
    let avail = |name: &str| {
        kernel
            .virtio
            .iter()
            .find(|(d, _)| *d == name)
            .map(|(_, a)| a.clone())
    };
    let mut add = Vec::new();
    let mut require = Vec::new();
    for d in crate::initrd_conf::VIRTIO_DRIVERS {
        match avail(d) {
            Some(Avail::Module(_)) => {
                add.push((*d).to_owned());
                if *d == "virtio_blk" || *d == "virtio_pci" {
                    require.push((*d).to_owned());
                }
            }
            Some(Avail::Builtin) | Some(Avail::Missing) => {}
            // Not among the drivers inspection looks for (virtio_balloon):
            // asked for, not required.
            None => add.push((*d).to_owned()),
        }
    }
    (add, require)
}
