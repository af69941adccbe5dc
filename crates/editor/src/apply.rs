//! [`apply`] carries a [`Plan`] out: writes the files, removes the links,
//! then runs the steps through a [`Runner`], checking each result. It
//! decides nothing the plan did not say; on failure it returns what it had
//! done.

use std::io;
use std::time::{Duration, Instant};

use xen2kvm_inspector::{bootconf, initrd};
use xen2kvm_vfs::{GuestFs, GuestPath};

use crate::default_kernel;
use crate::model::{shell_words, Change, Grub2DefaultMethod, Plan, Step};

/// Runs commands inside the guest.
pub trait Runner {
    /// Runs `argv` in the guest (its root as `/`), returning its output; a
    /// non-zero exit is an error carrying the command's messages.
    fn run(&self, argv: &[String]) -> io::Result<String>;

    /// Called once before the first `grub-mkconfig`: the appliance makes the
    /// guest's `/dev/disk/by-uuid` links there (without them grub-mkconfig
    /// writes the appliance's device name as `root=`).
    fn prepare_grub_mkconfig(&self) -> io::Result<()> {
        Ok(())
    }

    /// Whether the run was asked to stop (a signal): checked at every safe
    /// point (before each file, link and step), where [`apply`] stops with
    /// an error of kind `Interrupted`.
    fn interrupted(&self) -> bool {
        false
    }
}

/// The error at a safe point when the runner was interrupted.
fn check(runner: &dyn Runner, next: &str) -> io::Result<()> {
    if runner.interrupted() {
        return Err(io::Error::new(
            io::ErrorKind::Interrupted,
            format!("interrupted before {next}"),
        ));
    }
    Ok(())
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
    if let Some(b) = plan.blockers.first() {
        return Err(io::Error::other(format!(
            "the plan is blocked ({}: {}); nothing was written",
            b.target, b.reason
        )));
    }
    let t = Instant::now();
    for f in &plan.files {
        check(runner, &format!("writing {}", f.path))?;
        // A file the plan creates may be the first of its directory (a
        // `.link` file in a guest with no /etc/systemd/network yet): the
        // missing directories are made below the nearest one that exists,
        // unless that is the root (a guest with no /etc is refused, not
        // furnished).
        if f.before.is_none() {
            if let Some(dir) = f.path.parent() {
                let mut have = Some(dir.clone());
                while let Some(d) = have.clone().filter(|d| d.parent().is_some()) {
                    if fs.exists(&d)? {
                        break;
                    }
                    have = d.parent();
                }
                if have.is_some_and(|d| d.parent().is_some() && d != dir) {
                    fs.mkdir_all(&dir)?;
                }
            }
        }
        // The GuestFs's errors name the path already.
        fs.write(&f.path, f.after.as_bytes())?;
        out.done.push(format!("wrote {}", f.path));
    }
    for (link, _) in &plan.remove_links {
        check(runner, &format!("removing {link}"))?;
        fs.remove(link)?;
        out.done.push(format!("removed {link}"));
    }
    for f in &plan.remove_files {
        check(runner, &format!("removing {f}"))?;
        fs.remove(f)?;
        out.done.push(format!("removed {f}"));
    }
    out.edits = t.elapsed();
    if plan.runs_grub_mkconfig() {
        runner.prepare_grub_mkconfig()?;
    }
    for s in &plan.steps {
        check(runner, &format!("[{}] {}", s.rule, s.step.describe()))?;
        let t = Instant::now();
        run_step(fs, runner, s.rule, &s.step, out)?;
        match s.step {
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
    rule: &'static str,
    step: &Step,
    out: &mut Applied,
) -> io::Result<()> {
    match step {
        Step::RebuildInitrd {
            kernel,
            initrd: path,
            argv,
            require,
            backup,
        } => {
            if let Some(backup) = backup {
                if fs
                    .copy(path, backup)
                    .map_err(|e| ctx_err(e, &format!("copying {path} to {backup}")))?
                {
                    out.done.push(format!("copied {path} to {backup}"));
                }
            }
            let backup_note = match backup {
                Some(b) => format!("the previous initrd is kept as {b}"),
                None => "the previous initrd was not kept".to_owned(),
            };
            run(runner, argv, out)?;
            let bytes = fs
                .read_limited(path, xen2kvm_vfs::MAX_INITRD)?
                .ok_or_else(|| {
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
                    "the rebuilt initrd {path} lacks {} (the guest would not find its disk on KVM); {backup_note}",
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
            method,
        } => {
            let cfg = fs.read_text(config)?.unwrap_or_default();
            let env_path = grubenv_of(config);
            let env = fs.read_text(&env_path)?.unwrap_or_default();
            if let Some(e) = bootconf::grub2_default(&cfg, &env, config) {
                if e.kernel.rsplit('/').next() == Some(image.as_str()) {
                    return Ok(());
                }
            }
            let entry = bootconf::grub2_entry_path(&cfg, image).ok_or_else(|| {
                io::Error::other(format!("{config} has no menu entry that boots {image}"))
            })?;
            match method {
                Grub2DefaultMethod::SetDefault { tool } => {
                    run(runner, &[tool.clone(), entry.clone()], out)?;
                    out.changes.push(Change {
                        rule,
                        target: env_path.to_string(),
                        what: format!("saved_entry={entry}"),
                    });
                }
                Grub2DefaultMethod::Grubenv { env } => {
                    let block = fs.read_text(env)?.unwrap_or_else(empty_grubenv);
                    let new = default_kernel::grubenv_set(&block, "saved_entry", &entry)
                        .ok_or_else(|| {
                            io::Error::other(format!("{env} is not a GRUB environment block"))
                        })?;
                    fs.write(env, new.as_bytes())?;
                    out.done.push(format!("wrote {env}"));
                    out.changes.push(Change {
                        rule,
                        target: env.to_string(),
                        what: format!("saved_entry={entry}"),
                    });
                }
                Grub2DefaultMethod::DefaultGrub { mkconfig: mk } => {
                    let dg = GuestPath::lit("/etc/default/grub");
                    let default_grub = fs.read_text(&dg)?.unwrap_or_default();
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
    }
    Ok(())
}

/// The GRUB environment block beside a `grub.cfg`.
pub(crate) fn grubenv_of(config: &GuestPath) -> GuestPath {
    config
        .parent()
        .and_then(|d| d.join("grubenv").ok())
        .unwrap_or_else(|| GuestPath::lit("/boot/grub/grubenv"))
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
