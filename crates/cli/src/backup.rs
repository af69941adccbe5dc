//! `xen2kvm backup`: the guide's §2.2 on its own — a stopped Xen domain's
//! config and every disk copied into a directory (sparse), with a
//! `SHA256SUMS` that `sha256sum -c` accepts, verified by re-reading the
//! copies from the disk; and `--verify DIR`, which names every file that
//! does not match. A failure or a signal removes what the run made.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xen2kvm_diskcopy::{self as diskcopy, sums, Allocation, Sink};

use crate::interrupt::{self, Policy};
use crate::lock::{Access, Locks};
use crate::migrate::events::{Events, Style};
use crate::migrate::input::{self, InputMode};
use crate::migrate::{backup_plan, finish_backup, Cleanup, CopyProgress};
use crate::Exit;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where the domain comes from (-i): libvirtxml, libvirt or xl.
    #[arg(
        short = 'i',
        long = "input-mode",
        value_enum,
        value_name = "MODE",
        required_unless_present = "verify"
    )]
    input_mode: Option<InputMode>,
    /// -ic: the libvirt connection of -i libvirt.
    #[arg(long = "input-conn", value_name = "URI")]
    input_conn: Option<String>,
    /// The domain XML file, the xl.cfg, or the domain's name (-i libvirt).
    #[arg(required_unless_present = "verify")]
    input: Option<String>,
    /// The backup directory (created if missing; must not hold the files).
    #[arg(required_unless_present = "verify")]
    dir: Option<PathBuf>,
    /// Check a backup directory against its SHA256SUMS instead.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["input_mode", "input", "dir"])]
    verify: Option<PathBuf>,
    /// Print a JSON document (docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct VerifyReport {
    version: u32,
    dir: String,
    files: Vec<String>,
    problems: Vec<String>,
    result: &'static str,
}

#[allow(clippy::print_stdout)]
pub(crate) fn run(args: Args) -> Result<Exit> {
    interrupt::set_policy(Policy::Abort)?;
    let style = if args.json { Style::Json } else { Style::Human };
    let mut ev = Events::new(style);
    if let Some(dir) = &args.verify {
        let (entries, problems) = sums::verify(dir, &mut diskcopy::Quiet)?;
        let report = VerifyReport {
            version: 1,
            dir: dir.display().to_string(),
            files: entries.iter().map(|e| e.name.clone()).collect(),
            problems: problems.iter().map(ToString::to_string).collect(),
            result: if problems.is_empty() {
                "verified"
            } else {
                "mismatch"
            },
        };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            for p in &report.problems {
                println!("FAILED: {p}");
            }
            println!(
                "{}: {} file(s), {}",
                report.dir,
                report.files.len(),
                if problems.is_empty() {
                    "all match SHA256SUMS".to_owned()
                } else {
                    format!("{} do not match", problems.len())
                }
            );
        }
        return Ok(if problems.is_empty() {
            Exit::Ok
        } else {
            Exit::Failed
        });
    }
    let (Some(mode), Some(input), Some(dir)) = (args.input_mode, &args.input, &args.dir) else {
        bail!("usage: xen2kvm backup -i MODE INPUT DIR, or xen2kvm backup --verify DIR");
    };
    let domain = input::read(mode, input, args.input_conn.as_deref())?;
    let (disks, skipped) = input::disks(&domain, None)?;
    for s in &skipped {
        ev.warn(&s.note);
    }
    let mut locks = Locks::default();
    for d in &disks {
        locks.take(&d.path, Access::Read, "backup")?;
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the backup directory {}", dir.display()))?;
    let mut b = backup_plan(dir, format!("{}.{}", domain.name, domain.ext), &disks)?;
    let mut made = Cleanup::default();
    let n = disks.len();
    for (i, d) in disks.iter().enumerate() {
        let path = b.dir.join(&b.disks[i]);
        made.files.push(path.clone());
        ev.bar(
            &format!("{} -> {}", d.path.display(), path.display()),
            i + 1,
            n,
            d.allocated.max(1),
        );
        let copied = diskcopy::copy(
            &d.path,
            &[Sink {
                path,
                allocation: Allocation::Sparse,
            }],
            &mut CopyProgress {
                ev: &mut ev,
                n: i + 1,
                m: n,
            },
        )?;
        b.sums.push(sums::Entry {
            sha256: copied.sha256,
            name: b.disks[i].clone(),
        });
    }
    let total = disks.iter().map(|d| d.allocated).sum();
    let report = finish_backup(&mut b, &domain.text, &mut ev, &mut made, total)?;
    ev.end();
    made.disarm();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "backup: {} ({} files, {} verified)",
            report.dir,
            report.files.len(),
            report.manifest
        );
    }
    Ok(Exit::Ok)
}
