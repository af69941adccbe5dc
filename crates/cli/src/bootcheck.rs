//! `xen2kvm boot-check`: boot an image in QEMU and report the verdict.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use serde::Serialize;
use xen2kvm_bootcheck::{self as bc, AccelChoice, Booted, Failure, Report, Verdict};
use xen2kvm_inspector::{Guest, OpenOptions};
use xen2kvm_vfs::GuestFs;

use crate::Exit;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The disk image to boot (never written: QEMU runs on a snapshot).
    image: PathBuf,
    /// Image format (raw, qcow2, …); detected from the image when omitted.
    #[arg(long)]
    format: Option<String>,
    /// The guest's other disks, attached after IMAGE in this order (its
    /// vdb, vdc, …); never written. Repeatable.
    #[arg(long = "disk", value_name = "PATH")]
    disks: Vec<PathBuf>,
    /// Give up after this many seconds per boot.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    timeout: u64,
    /// Stop a boot whose serial console stays silent this many seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    silence: u64,
    /// Accelerator: auto probes /dev/kvm with a real guest and falls back to TCG.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    accel: AccelArg,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    memory: u32,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// Console text that means the guest booted (a login prompt also counts).
    #[arg(long, default_value = bc::DEFAULT_MARKER, value_name = "TEXT")]
    marker: String,
    /// Directory for the console logs (default: the system temp directory).
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// Do not run the diagnostic boot when the console says too little.
    #[arg(long)]
    no_diagnose: bool,
    /// The QEMU system emulator.
    #[arg(
        long,
        default_value = "qemu-system-x86_64",
        env = "XEN2KVM_QEMU",
        value_name = "PATH"
    )]
    qemu: PathBuf,
    /// The NIC's MAC address: the one the guest's configuration (or a udev
    /// rule, a `.link` file) may expect. Default: the first interface's of
    /// --domain, else QEMU's 52:54:00:12:34:56.
    #[arg(long, value_name = "MAC")]
    mac: Option<String>,
    /// The guest's libvirt domain XML (or xl.cfg): its first NIC's MAC is
    /// the default --mac.
    #[arg(long, value_name = "FILE")]
    domain: Option<PathBuf>,
    /// After the guest booted, watch this long for frames from its NIC (a
    /// DHCP request ends the watch at once).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    network_wait: u64,
    /// A guest that booted but never brought its NIC up fails the check.
    #[arg(long)]
    require_network: bool,
    /// Also write the verdict as a JUnit XML test case to FILE (for CI test
    /// reporters).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Print a JSON document (schema in docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
}

/// The MAC to boot with: `--mac`, else the first NIC's of `--domain`.
fn nic_mac(args: &Args) -> Result<Option<String>> {
    if let Some(m) = &args.mac {
        let m = m.trim().to_ascii_lowercase();
        if !xen2kvm_domxml::disks::is_mac(&m) {
            bail!("--mac {m:?} is not a MAC address (like 52:54:00:12:34:56)");
        }
        return Ok(Some(m));
    }
    let Some(path) = &args.domain else {
        return Ok(None);
    };
    let text = crate::migrate::input::read_config(path)?;
    // An XML document starts with '<'; anything else is read as xl.cfg.
    let doc = if text.trim_start().starts_with('<') {
        xen2kvm_domxml::dom::parse(&text).map_err(|e| anyhow::anyhow!("{}", e.message))
    } else {
        xen2kvm_domxml::xl::to_xen_domain(&text)
            .map(|(d, _)| d)
            .map_err(anyhow::Error::from)
    }
    .with_context(|| format!("--domain {}", path.display()))?;
    Ok(xen2kvm_domxml::disks::interface_macs(&doc)
        .into_iter()
        .next()
        .flatten())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AccelArg {
    Auto,
    Kvm,
    Tcg,
}

pub(crate) fn run(args: Args) -> Result<Exit> {
    let mut extra_disks = Vec::new();
    for d in &args.disks {
        let info = crate::image::info(d).with_context(|| format!("--disk {}", d.display()))?;
        extra_disks.push((d.clone(), info.format));
    }
    let opts = bc::Options {
        qemu: args.qemu.clone(),
        format: args.format.clone(),
        extra_disks,
        accel: match args.accel {
            AccelArg::Auto => AccelChoice::Auto,
            AccelArg::Kvm => AccelChoice::Kvm,
            AccelArg::Tcg => AccelChoice::Tcg,
        },
        memory_mib: args.memory,
        cpus: args.cpus,
        marker: args.marker.clone(),
        timeout: Duration::from_secs(args.timeout),
        silence: Duration::from_secs(args.silence),
        log_dir: args.log_dir.clone().unwrap_or_else(std::env::temp_dir),
        diagnose: !args.no_diagnose,
        mac: nic_mac(&args)?,
        network_wait: Duration::from_secs(args.network_wait),
        kernel: None,
    };
    let open = |image: &Path, format: &str| -> std::io::Result<Box<dyn GuestFs>> {
        let guest = Guest::open(
            &[image.to_owned()],
            &OpenOptions {
                readonly: true,
                format: Some(format.to_owned()),
                root: None,
            },
        )?;
        Ok(Box::new(guest))
    };
    let report = bc::check(&args.image, &opts, &open, &mut |msg| {
        eprintln!("xen2kvm: {msg}")
    })
    .with_context(|| format!("boot-check {}", args.image.display()))?;
    let failure = bc::junit::failure(&report, args.require_network);
    if let Some(path) = &args.junit {
        let console = std::fs::read(&report.log).unwrap_or_default();
        let xml = bc::junit::render(
            &report,
            args.require_network,
            &String::from_utf8_lossy(&console),
        );
        write_atomic(path, xml.as_bytes())
            .with_context(|| format!("--junit {}", path.display()))?;
    }
    if args.json {
        let mut j = JsonReport::from(&report);
        j.network_required = args.require_network;
        if let (Verdict::Booted(_), Some((_, msg))) = (&report.verdict, &failure) {
            j.verdict = "failed";
            j.reason = Some(JsonReason {
                kind: "network-down",
                device: None,
                line: None,
                text: msg.clone(),
            });
        }
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        print_human(&report);
        if let (Verdict::Booted(_), Some((_, msg))) = (&report.verdict, &failure) {
            println!("failed: --require-network: {msg}");
        }
    }
    Ok(if failure.is_none() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Writes `path` whole or not at all (a temporary file beside it, renamed).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut t = tempfile::NamedTempFile::new_in(dir)?;
    t.write_all(bytes)?;
    t.persist(path)?;
    Ok(())
}

fn print_human(r: &Report) {
    match &r.verdict {
        Verdict::Booted(by) => {
            let how = match by {
                Booted::Marker(m) => format!("marker {m:?} on the console"),
                Booted::LoginPrompt(l) => format!("login prompt {l:?}"),
            };
            println!(
                "booted: {} ({how}) in {:.0}s [{}]",
                r.image.display(),
                r.seconds,
                r.accel.name()
            );
        }
        Verdict::Failed(_) => {
            println!("failed: {} [{}]", r.image.display(), r.accel.name());
            if let Some(reason) = r.reason() {
                println!("  reason: {reason}");
            }
        }
    }
    if let Some(n) = &r.network {
        println!("  network ({}): {n}", r.mac);
    }
    println!("  console log: {}", r.log.display());
    if let Some(d) = &r.diagnosis {
        if let Some(l) = &d.log {
            println!("  diagnostic console log: {}", l.display());
        }
    }
}

/// `boot-check --json`, version 1 (docs/json.md).
#[derive(Serialize)]
struct JsonReport {
    version: u32,
    image: String,
    format: String,
    accel: &'static str,
    verdict: &'static str,
    seconds: f64,
    console_log: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    booted_by: Option<JsonBooted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<JsonReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis: Option<JsonDiagnosis>,
    network: JsonNetwork,
    /// `--require-network` was given (a booted guest without network failed).
    network_required: bool,
}

/// What the capture showed of the NIC.
#[derive(Serialize)]
struct JsonNetwork {
    mac: String,
    /// `up`, `down`, or `not-judged` (the guest did not boot).
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dhcp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frames: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<String>,
    capture: String,
}

impl From<&Report> for JsonNetwork {
    fn from(r: &Report) -> JsonNetwork {
        let (state, dhcp, frames, evidence) = match &r.network {
            Some(bc::Network::Up {
                dhcp,
                frames,
                evidence,
            }) => ("up", Some(*dhcp), Some(*frames), Some(evidence.clone())),
            Some(n @ bc::Network::Down { .. }) => ("down", None, Some(0), Some(n.to_string())),
            None => ("not-judged", None, None, None),
        };
        JsonNetwork {
            mac: r.mac.clone(),
            state,
            dhcp,
            frames,
            evidence,
            capture: r.capture.display().to_string(),
        }
    }
}

#[derive(Serialize)]
struct JsonBooted {
    kind: &'static str,
    text: String,
}

#[derive(Serialize)]
struct JsonReason {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<String>,
    text: String,
}

#[derive(Serialize)]
struct JsonDiagnosis {
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmdline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    console_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    console_log: Option<String>,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<String>,
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Booted(_) => "booted",
        Verdict::Failed(_) => "failed",
    }
}

fn failure_fields(f: &Failure) -> (Option<String>, Option<String>) {
    match f {
        Failure::RootDeviceMissing { device, line } => (Some(device.clone()), Some(line.clone())),
        Failure::EmergencyShell { line }
        | Failure::KernelPanic { line }
        | Failure::GrubRescue { line }
        | Failure::NoBootableDevice { line } => (None, Some(line.clone())),
        Failure::Stalled { last_line, .. }
        | Failure::Timeout { last_line, .. }
        | Failure::GuestStopped { last_line } => (None, Some(last_line.clone())),
        Failure::NoConsoleOutput { .. } => (None, None),
    }
}

impl From<&Report> for JsonReport {
    fn from(r: &Report) -> JsonReport {
        let booted_by = match &r.verdict {
            Verdict::Booted(Booted::Marker(m)) => Some(JsonBooted {
                kind: "marker",
                text: m.clone(),
            }),
            Verdict::Booted(Booted::LoginPrompt(l)) => Some(JsonBooted {
                kind: "login-prompt",
                text: l.clone(),
            }),
            Verdict::Failed(_) => None,
        };
        let reason = r.failure().map(|f| {
            let (device, line) = failure_fields(f);
            JsonReason {
                kind: f.kind(),
                device,
                line,
                text: r.reason().unwrap_or_default(),
            }
        });
        let diagnosis = r.diagnosis.as_ref().map(|d| JsonDiagnosis {
            entry_title: d.entry.as_ref().map(|e| e.title.clone()),
            kernel: d.entry.as_ref().map(|e| e.kernel.clone()),
            config: d.entry.as_ref().map(|e| e.config.to_string()),
            cmdline: d.cmdline.clone(),
            console_note: d.console_note.clone(),
            verdict: d.verdict.as_ref().map(verdict_name),
            console_log: d.log.as_ref().map(|l| l.display().to_string()),
            seconds: d.seconds,
            unavailable: d.unavailable.clone(),
        });
        JsonReport {
            version: 1,
            image: r.image.display().to_string(),
            format: r.format.clone(),
            accel: r.accel.name(),
            verdict: verdict_name(&r.verdict),
            seconds: r.seconds,
            console_log: r.log.display().to_string(),
            booted_by,
            reason,
            diagnosis,
            network: JsonNetwork::from(r),
            network_required: false,
        }
    }
}
