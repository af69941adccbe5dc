//! `xen2kvm inspect`: read-only inspection of a stopped Xen guest, with a
//! readiness verdict. Exit 0 ready or needs, 3 blocked, 1 error.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;
use xen2kvm_editor::{self as editor, Ctx};
use xen2kvm_inspector::facts::{self, Avail, Facts, Verdict};
use xen2kvm_inspector::{Guest, OpenOptions, Opened, RootInfo};

use crate::convert::JsonRelaid;
use crate::Exit;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The guest's disk images (all of them, in the Xen config's order).
    #[arg(required = true)]
    disks: Vec<PathBuf>,
    /// Which root filesystem to inspect when the disks hold several.
    #[arg(long, value_name = "DEV")]
    root: Option<String>,
    /// Disk format of every disk (raw, qcow2, …); detected from the first disk when omitted.
    #[arg(long)]
    format: Option<String>,
    /// The Xen name of a disk, as the domain config gives it (repeatable,
    /// for every disk or none; as `convert --target`): the plan then maps
    /// the guest's names by the domain's disk order.
    #[arg(long, value_name = "XEN=DISK", value_parser = crate::convert::target_arg)]
    target: Vec<(String, PathBuf)>,
    #[command(flatten)]
    windows: crate::windows::WinArgs,
    /// Print a JSON document (schema in docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> Result<Exit> {
    args.windows.check()?;
    let mut disk_map = crate::convert::disk_map(&args.disks, &args.target)?;
    let mut locks = crate::lock::Locks::default();
    for d in &args.disks {
        locks.take(d, crate::lock::Access::Read, "inspect")?;
    }
    let format = match &args.format {
        Some(f) => f.clone(),
        None => crate::image::info(&args.disks[0])?.format,
    };
    let guest = match Guest::open_any(
        &args.disks,
        &OpenOptions {
            readonly: true,
            format: Some(format),
            root: args.root.clone(),
        },
    )? {
        Opened::Linux(g) => g,
        Opened::Windows(w) => {
            return crate::windows::inspect(w, &args.disks, args.json, &args.windows)
        }
    };
    let f = guest.facts()?;
    let info = guest.root().clone();
    // The disks as the conversion sees them: named by UUID when renamed, a
    // bare filesystem holding /boot re-laid (or why it cannot be).
    disk_map.add_uuids(&guest.filesystem_uuids()?);
    let mut relaid = None;
    let mut layout_blocked = None;
    if let Some((i, _)) = guest.bare_boot_disk()? {
        match crate::convert::bare_disk(&mut disk_map, i, &args.disks[i], false) {
            Ok(r) => relaid = Some(r),
            Err((reason, remedy)) => layout_blocked = Some(Verdict::Blocked { reason, remedy }),
        }
    }
    // The verdict is the conversion's own plan, on the read-only guest.
    let ctx = Ctx {
        facts: &f,
        boot_disk: Some(guest.boot_disk()?),
        skip: &[],
        macs: &[],
        disks: &disk_map,
    };
    let mut verdict = editor::verdict(&guest, &ctx).context("planning the conversion")?;
    if let (Some(v), false) = (layout_blocked, matches!(verdict, Verdict::Blocked { .. })) {
        verdict = v;
    }
    // A guest left between Xen and KVM by a cut-short in-place conversion.
    if let Some(dir) =
        xen2kvm_journal::unfinished(&guest).context("reading the guest's journals")?
    {
        verdict = Verdict::Blocked {
            reason: format!("an in-place conversion of this guest was cut short (its journal {dir} is unfinished)"),
            remedy: crate::convert::unfinished_message(&args.disks, dir.as_str()),
        };
    }
    guest.close()?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&JsonInspect {
                relaid,
                ..JsonInspect::new(&args.disks, &info, &f, &verdict)
            })?
        );
    } else {
        print_human(&info, &f, &verdict, relaid.as_ref());
    }
    Ok(match verdict {
        Verdict::Blocked { .. } => Exit::Blocked,
        _ => Exit::Ok,
    })
}

fn avail(a: &Avail) -> String {
    match a {
        Avail::Module(p) => format!("module {p}"),
        Avail::Builtin => "built in".to_owned(),
        Avail::Missing => "missing".to_owned(),
    }
}

/// A btrfs root: the subvolume that boots, and the snapshots left alone.
pub(crate) fn print_snapshots(info: &RootInfo) {
    if let Some(sv) = &info.subvolume {
        println!("btrfs: the root is the default subvolume {sv} (what the guest boots; every edit goes there)");
    }
    if !info.snapshots_ignored.is_empty() {
        println!("snapshots not converted (older states of the guest):");
        for s in &info.snapshots_ignored {
            println!("  {s}");
        }
    }
}

fn print_human(info: &RootInfo, f: &Facts, v: &Verdict, relaid: Option<&JsonRelaid>) {
    println!(
        "guest: {} {} ({}), root {}, {}, init {}",
        f.os.distro,
        f.os.version,
        f.os.product,
        info.device,
        info.arch,
        f.init.as_str()
    );
    print_snapshots(info);
    if let Some(r) = relaid {
        println!(
            "layout: {} ({}) is a bare filesystem holding /boot: convert re-lays it as partition 1 (at 1 MiB) of a new disk with a DOS partition table ({} under KVM; copy mode only)",
            r.disk, r.xen, r.kvm
        );
    }
    println!("kernels:");
    for k in &f.kernels {
        let xen = k
            .xen_only
            .as_deref()
            .map(|w| format!(" XEN-ONLY ({w})"))
            .unwrap_or_default();
        let virtio: Vec<String> = k
            .virtio
            .iter()
            .map(|(d, a)| {
                format!(
                    "{d}: {}",
                    if *a == Avail::Missing {
                        "missing"
                    } else {
                        "yes"
                    }
                )
            })
            .collect();
        println!("  {}{xen}", k.version);
        println!("    virtio: {}", virtio.join(", "));
        match (&k.initrd, k.initrd_virtio_blk, &k.initrd_error) {
            (Some(i), Some(has), _) => println!(
                "    initrd: {i} ({} virtio_blk)",
                if has { "has" } else { "no" }
            ),
            (Some(i), None, Some(e)) => println!("    initrd: {i} (unreadable: {e})"),
            (Some(i), None, None) => println!("    initrd: {i}"),
            (None, ..) => println!("    initrd: none"),
        }
    }
    let b = &f.bootloader;
    println!(
        "bootloader: {}{}; boot code on disk: {}",
        b.kind.as_str(),
        b.config
            .as_ref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default(),
        match b.boot_code {
            Some(true) => "yes",
            Some(false) => "no (pygrub-only)",
            None => "not checked",
        }
    );
    if let Some(e) = &b.default_entry {
        println!("  default entry: {:?}: {} {}", e.title, e.kernel, e.cmdline);
    }
    println!("initrd tool: {}", f.initrd_tool.as_str());
    println!("xen-isms ({}):", f.xenisms.len());
    for x in &f.xenisms {
        let at = if x.line > 0 {
            format!("{}:{}", x.file, x.line)
        } else {
            x.file.to_string()
        };
        println!("  [{}] {at}: {}", x.kind.as_str(), x.text.trim());
    }
    print_verdict(v);
}

/// The verdict's lines (Linux and Windows guests).
pub(crate) fn print_verdict(v: &Verdict) {
    match v {
        Verdict::Ready => println!("verdict: ready (boots under KVM as it is)"),
        Verdict::Needs(n) => {
            println!("verdict: needs conversion (xen2kvm convert will):");
            for item in n {
                println!("  - {item}");
            }
        }
        Verdict::Blocked { reason, remedy } => {
            println!("verdict: blocked: {reason}");
            println!("  remedy: {remedy}");
        }
    }
}

/// `inspect --json`, version 1 (docs/json.md).
#[derive(Serialize)]
struct JsonInspect {
    version: u32,
    disks: Vec<String>,
    root: String,
    /// A btrfs root's subvolume (the default one).
    #[serde(skip_serializing_if = "Option::is_none")]
    root_subvolume: Option<String>,
    /// Snapshots inspection also found, not converted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    snapshots_ignored: Vec<String>,
    /// A bare filesystem holding /boot that convert re-lays (its Xen name
    /// known).
    #[serde(skip_serializing_if = "Option::is_none")]
    relaid: Option<JsonRelaid>,
    os: JsonOs,
    kernels: Vec<JsonKernel>,
    chosen_kernel: Option<String>,
    bootloader: JsonBootloader,
    initrd_tool: &'static str,
    xenisms: Vec<JsonXenism>,
    verdict: JsonVerdict,
}

#[derive(Serialize)]
struct JsonOs {
    distro: String,
    version: String,
    product: String,
    arch: String,
    init: &'static str,
}

#[derive(Serialize)]
struct JsonKernel {
    version: String,
    image: String,
    xen_only: Option<String>,
    virtio: std::collections::BTreeMap<&'static str, String>,
    initrd: Option<String>,
    initrd_virtio_blk: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initrd_error: Option<String>,
}

#[derive(Serialize)]
struct JsonBootloader {
    kind: &'static str,
    config: Option<String>,
    default_entry: Option<JsonEntry>,
    boot_code: Option<bool>,
}

#[derive(Serialize)]
struct JsonEntry {
    title: String,
    kernel: String,
    initrd: Option<String>,
    cmdline: String,
}

#[derive(Serialize)]
struct JsonXenism {
    kind: &'static str,
    file: String,
    line: usize,
    text: String,
}

#[derive(Serialize)]
struct JsonVerdict {
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    needs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remedy: Option<String>,
}

impl JsonInspect {
    fn new(disks: &[PathBuf], info: &RootInfo, f: &Facts, v: &Verdict) -> JsonInspect {
        let (root, arch) = (info.device.as_str(), info.arch.as_str());
        JsonInspect {
            version: 1,
            disks: disks.iter().map(|d| d.display().to_string()).collect(),
            root: root.to_owned(),
            root_subvolume: info.subvolume.clone(),
            snapshots_ignored: info.snapshots_ignored.clone(),
            relaid: None,
            os: JsonOs {
                distro: f.os.distro.clone(),
                version: f.os.version.clone(),
                product: f.os.product.clone(),
                arch: arch.to_owned(),
                init: f.init.as_str(),
            },
            kernels: f
                .kernels
                .iter()
                .map(|k| JsonKernel {
                    version: k.version.clone(),
                    image: k.image.to_string(),
                    xen_only: k.xen_only.clone(),
                    virtio: k.virtio.iter().map(|(d, a)| (*d, avail(a))).collect(),
                    initrd: k.initrd.as_ref().map(ToString::to_string),
                    initrd_virtio_blk: k.initrd_virtio_blk,
                    initrd_error: k.initrd_error.clone(),
                })
                .collect(),
            chosen_kernel: facts::chosen_kernel(f).map(|k| k.version.clone()),
            bootloader: JsonBootloader {
                kind: f.bootloader.kind.as_str(),
                config: f.bootloader.config.as_ref().map(ToString::to_string),
                default_entry: f.bootloader.default_entry.as_ref().map(|e| JsonEntry {
                    title: e.title.clone(),
                    kernel: e.kernel.clone(),
                    initrd: e.initrd.clone(),
                    cmdline: e.cmdline.clone(),
                }),
                boot_code: f.bootloader.boot_code,
            },
            initrd_tool: f.initrd_tool.as_str(),
            xenisms: f
                .xenisms
                .iter()
                .map(|x| JsonXenism {
                    kind: x.kind.as_str(),
                    file: x.file.to_string(),
                    line: x.line,
                    text: x.text.clone(),
                })
                .collect(),
            verdict: match v {
                Verdict::Ready => JsonVerdict {
                    status: "ready",
                    needs: vec![],
                    reason: None,
                    remedy: None,
                },
                Verdict::Needs(n) => JsonVerdict {
                    status: "needs",
                    needs: n.clone(),
                    reason: None,
                    remedy: None,
                },
                Verdict::Blocked { reason, remedy } => JsonVerdict {
                    status: "blocked",
                    needs: vec![],
                    reason: Some(reason.clone()),
                    remedy: Some(remedy.clone()),
                },
            },
        }
    }
}
