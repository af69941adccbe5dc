//! `xen2kvm revert`: puts a guest converted in place back as it was, from
//! the journal(s) `convert --in-place` left in it (`/var/lib/xen2kvm`),
//! newest first, then removes them. It also finishes the job after a crash
//! or a SIGKILL in the middle of a conversion (an unfinished journal).
//! Once the guest is open, signals are held off until it is done: a revert
//! is the way back, and is never left half-way by xen2kvm itself.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use xen2kvm_inspector::{Guest, OpenOptions};
use xen2kvm_journal as journal;

use crate::convert::GuestDisk;
use crate::interrupt::{self, Policy};
use crate::lock::{Access, Locks};
use crate::Exit;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The guest's disk images (all of them, as for convert).
    #[arg(required = true)]
    disks: Vec<PathBuf>,
    /// Which root filesystem, when the disks hold several.
    #[arg(long, value_name = "DEV")]
    root: Option<String>,
    /// Print a JSON document (docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
}

/// The report (docs/json.md).
#[derive(Debug, Serialize)]
struct Report {
    version: u32,
    disks: Vec<String>,
    root: String,
    /// `reverted` or `nothing-to-revert`.
    result: &'static str,
    /// The journals undone, newest first.
    journals: Vec<String>,
    /// What was restored, one line each.
    restored: Vec<String>,
    seconds: f64,
}

pub(crate) fn run(args: Args) -> Result<Exit> {
    // Nothing is written before the appliance is up: until then a signal
    // exits; from then on the revert finishes.
    let t = Instant::now();
    let mut locks = Locks::default();
    for d in &args.disks {
        locks.take(d, Access::Write, "revert")?;
    }
    let format = crate::image::common_format(&args.disks)?;
    if !args.json {
        eprintln!("xen2kvm: launching the appliance");
    }
    let guest = Guest::open(
        &args.disks,
        &OpenOptions {
            readonly: false,
            format: Some(format),
            root: args.root.clone(),
        },
    )?;
    interrupt::set_policy(Policy::SafePoint)?;
    let r = journal::revert(&guest, Some(&GuestDisk(&guest)));
    let root = guest.root().device.clone();
    let closed = guest.close();
    let r = r.context("restoring the guest from its journal")?;
    closed.context("closing the disk")?;
    let report = Report {
        version: 1,
        disks: args.disks.iter().map(|d| d.display().to_string()).collect(),
        root,
        result: if r.journals.is_empty() {
            "nothing-to-revert"
        } else {
            "reverted"
        },
        journals: r.journals,
        restored: r.restored,
        seconds: (t.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for j in &report.journals {
            println!("journal: {j}");
        }
        for l in &report.restored {
            println!("  {l}");
        }
        match report.result {
            "reverted" => println!(
                "result: reverted ({} item(s) restored; the guest is as it was before xen2kvm converted it)",
                report.restored.len()
            ),
            _ => println!("result: nothing-to-revert (no xen2kvm journal in the guest)"),
        }
    }
    Ok(Exit::Ok)
}
