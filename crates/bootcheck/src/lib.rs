//! Boots a disk image in QEMU with virtio devices and judges its serial
//! console: `booted`, or `failed` with the reason.
//!
//! The flow of [`check`]: choose the accelerator ([`accel`]: `/dev/kvm` is
//! probed, never trusted), boot the disk through its own firmware path with
//! the image under a throw-away snapshot ([`qemu`]), classify the console as
//! it grows ([`console`]). When the console says too little (nothing at all,
//! or silence after GRUB, as with a Xen guest whose console is `hvc0`),
//! [`diagnose`] reads the guest's default boot entry read-only and boots the
//! same kernel, initrd and command line again with the console on `ttyS0`.
//!
//! This crate never opens a disk itself: the caller hands it a way to open
//! the guest read-only as a [`GuestFs`], and it never prints: progress goes
//! to a callback.

#![warn(missing_docs)]

pub mod accel;
pub mod console;
pub mod diagnose;
pub mod junit;
pub mod network;
pub mod qemu;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use xen2kvm_vfs::GuestFs;

pub use accel::{Accel, AccelChoice};
pub use console::{Booted, Failure, Verdict};
pub use network::Network;
pub use xen2kvm_inspector::bootconf::{self, BootEntry};

/// What `check` needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    /// The QEMU system emulator.
    pub qemu: PathBuf,
    /// The image format; `None` detects it from the image's magic.
    pub format: Option<String>,
    /// The guest's other disks (path, format), attached after the image in
    /// this order, on snapshots too.
    pub extra_disks: Vec<(PathBuf, String)>,
    /// Which accelerator to use.
    pub accel: AccelChoice,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Console text that means the guest booted.
    pub marker: String,
    /// Overall time limit of each boot.
    pub timeout: Duration,
    /// A boot whose console stays silent this long is stopped.
    pub silence: Duration,
    /// Where console logs are written.
    pub log_dir: PathBuf,
    /// Whether to run the diagnostic boot when the console says too little.
    pub diagnose: bool,
    /// The NIC's MAC address (the guest's configuration may match it);
    /// `None`: [`DEFAULT_MAC`].
    pub mac: Option<String>,
    /// How long to watch, after the guest booted, for frames from its NIC
    /// (a DHCP request ends the watch early).
    pub network_wait: Duration,
    /// Boot this kernel instead of the disk's boot code (a domain with
    /// direct kernel boot: `<kernel>`, `<initrd>`, `<cmdline>`).
    pub kernel: Option<KernelBoot>,
}

/// A kernel on the host that boots the guest's disks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelBoot {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initrd, if any.
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: String,
}

/// QEMU's own default MAC, used when none is given.
pub const DEFAULT_MAC: &str = "52:54:00:12:34:56";

/// The marker the test guests print when `multi-user.target` is reached.
pub const DEFAULT_MARKER: &str = "XEN2KVM-BOOT-OK";

/// The full result of a check.
#[derive(Debug, Clone)]
pub struct Report {
    /// The image checked.
    pub image: PathBuf,
    /// Its format.
    pub format: String,
    /// The accelerator used.
    pub accel: Accel,
    /// The verdict of booting the disk as it is.
    pub verdict: Verdict,
    /// The serial console log of that boot.
    pub log: PathBuf,
    /// Seconds that boot took.
    pub seconds: f64,
    /// The diagnostic boot, when one ran or was attempted.
    pub diagnosis: Option<Diagnosis>,
    /// The NIC's MAC address.
    pub mac: String,
    /// What the capture showed of the NIC (judged when the guest booted).
    pub network: Option<Network>,
    /// The capture of the NIC's frames (pcap).
    pub capture: PathBuf,
}

/// The diagnostic boot of an unexplained failure.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// The guest's default boot entry, as its bootloader config says.
    pub entry: Option<BootEntry>,
    /// Where that entry sends the kernel console, when that explains the
    /// empty serial log.
    pub console_note: Option<String>,
    /// The command line used for the diagnostic boot.
    pub cmdline: Option<String>,
    /// The diagnostic boot's verdict.
    pub verdict: Option<Verdict>,
    /// Its console log.
    pub log: Option<PathBuf>,
    /// Its seconds.
    pub seconds: f64,
    /// Why no diagnostic boot could run.
    pub unavailable: Option<String>,
}

impl Report {
    /// Whether the image booted.
    pub fn booted(&self) -> bool {
        matches!(self.verdict, Verdict::Booted(_))
    }

    /// The failure that explains best why the image did not boot: the
    /// diagnostic boot's, when it found a definite one.
    pub fn failure(&self) -> Option<&Failure> {
        let Verdict::Failed(first) = &self.verdict else {
            return None;
        };
        match self.diagnosis.as_ref().and_then(|d| d.verdict.as_ref()) {
            Some(Verdict::Failed(f)) if !f.is_unexplained() => Some(f),
            _ => Some(first),
        }
    }

    /// One paragraph: the failure, and what the diagnosis adds.
    pub fn reason(&self) -> Option<String> {
        let Verdict::Failed(first) = &self.verdict else {
            return None;
        };
        let mut parts = Vec::new();
        match &self.diagnosis {
            Some(d) => {
                match &d.verdict {
                    Some(Verdict::Failed(f)) if !f.is_unexplained() => {
                        parts.push(format!("{f}"));
                        parts.push(format!("seen in a diagnostic boot of the guest's default entry with the console on ttyS0, after the disk's own boot gave: {first}"));
                    }
                    Some(Verdict::Booted(_)) => {
                        parts.push(format!("{first}"));
                        parts.push("yet the same kernel and initrd boot when the console is moved to ttyS0: only the console is wrong".to_owned());
                    }
                    Some(Verdict::Failed(f)) => {
                        parts.push(format!("{first}"));
                        parts.push(format!(
                            "a diagnostic boot with the console on ttyS0 also failed: {f}"
                        ));
                    }
                    None => parts.push(format!("{first}")),
                }
                if let Some(n) = &d.console_note {
                    parts.push(n.clone());
                }
                if let Some(u) = &d.unavailable {
                    parts.push(format!("no diagnostic boot: {u}"));
                }
            }
            None => parts.push(format!("{first}")),
        }
        Some(parts.join("; "))
    }
}

/// Opens the image's guest read-only, for the diagnosis.
pub type OpenGuest<'a> = &'a dyn Fn(&Path, &str) -> io::Result<Box<dyn GuestFs>>;

/// Boots `image` and judges it; runs the diagnostic boot when needed.
/// `note` receives progress and decisions (e.g. the KVM fallback).
pub fn check(
    image: &Path,
    opts: &Options,
    open_guest: OpenGuest<'_>,
    note: &mut dyn FnMut(&str),
) -> io::Result<Report> {
    let meta = fs::metadata(image)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", image.display())))?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a disk image file", image.display()),
        ));
    }
    let format = match &opts.format {
        Some(f) => f.clone(),
        None => qemu::detect_format(image)?.to_owned(),
    };
    fs::create_dir_all(&opts.log_dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("creating {}: {e}", opts.log_dir.display()),
        )
    })?;
    let accel = accel::resolve(opts.accel, &opts.qemu, &opts.log_dir, note)?;
    let stem = log_stem(image);
    let log = opts.log_dir.join(format!("{stem}.console.log"));
    let capture = opts.log_dir.join(format!("{stem}.net.pcap"));
    let mac = opts.mac.clone().unwrap_or_else(|| DEFAULT_MAC.to_owned());
    if network::parse_mac(&mac).is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{mac:?} is not a MAC address (like 52:54:00:12:34:56)"),
        ));
    }
    let _ = fs::remove_file(&capture);
    note(&format!(
        "booting {} ({format}, {}), console log: {}",
        image.display(),
        accel.name(),
        log.display()
    ));
    let boot = qemu::Boot {
        qemu: &opts.qemu,
        image,
        format: &format,
        extra_disks: &opts.extra_disks,
        source: match &opts.kernel {
            None => qemu::Source::Disk,
            Some(k) => qemu::Source::Kernel {
                kernel: k.kernel.clone(),
                initrd: k.initrd.clone(),
                cmdline: k.cmdline.clone(),
            },
        },
        accel,
        memory_mib: opts.memory_mib,
        cpus: opts.cpus,
        marker: &opts.marker,
        timeout: opts.timeout,
        silence: opts.silence,
        log: &log,
        mac: &mac,
        dump: Some(&capture),
        network_wait: opts.network_wait,
    };
    let outcome = boot.run()?;
    let mut report = Report {
        image: image.to_owned(),
        format: format.clone(),
        accel,
        verdict: outcome.verdict,
        log: log.clone(),
        seconds: outcome.seconds,
        diagnosis: None,
        mac: mac.clone(),
        network: outcome.network,
        capture: capture.clone(),
    };
    if let Verdict::Failed(f) = &report.verdict {
        if f.is_unexplained() && opts.diagnose {
            note(&format!(
                "{f}; reading the guest's boot entry for a diagnostic boot"
            ));
            report.diagnosis = Some(diagnose_boot(&boot, &stem, opts, open_guest, note)?);
        }
    }
    Ok(report)
}

fn diagnose_boot(
    boot: &qemu::Boot<'_>,
    stem: &str,
    opts: &Options,
    open_guest: OpenGuest<'_>,
    note: &mut dyn FnMut(&str),
) -> io::Result<Diagnosis> {
    let mut d = Diagnosis {
        entry: None,
        console_note: None,
        cmdline: None,
        verdict: None,
        log: None,
        seconds: 0.0,
        unavailable: None,
    };
    let input = {
        let fs = open_guest(boot.image, boot.format)?;
        diagnose::read_input(fs.as_ref())?
    };
    let input = match input {
        Ok(i) => i,
        Err(why) => {
            d.unavailable = Some(why);
            return Ok(d);
        }
    };
    d.console_note = diagnose::console_note(&input.entry);
    let kernel = opts.log_dir.join(format!("{stem}.diag-kernel"));
    let initrd = opts.log_dir.join(format!("{stem}.diag-initrd"));
    fs::write(&kernel, &input.kernel)?;
    if let Some(bytes) = &input.initrd {
        fs::write(&initrd, bytes)?;
    }
    let cmdline = diagnose::diagnostic_cmdline(&input.entry.cmdline);
    let log = opts.log_dir.join(format!("{stem}.diag-console.log"));
    note(&format!(
        "diagnostic boot of {:?} ({}) with: {cmdline}; console log: {}",
        input.entry.title,
        input.entry.kernel,
        log.display()
    ));
    let diag = qemu::Boot {
        source: qemu::Source::Kernel {
            kernel: kernel.clone(),
            initrd: input.initrd.as_ref().map(|_| initrd.clone()),
            cmdline: cmdline.clone(),
        },
        log: &log,
        // The network is judged on the disk's own boot only.
        dump: None,
        ..boot.clone()
    };
    let result = diag.run();
    let _ = fs::remove_file(&kernel);
    let _ = fs::remove_file(&initrd);
    let outcome = result?;
    d.entry = Some(input.entry);
    d.cmdline = Some(cmdline);
    d.verdict = Some(outcome.verdict);
    d.log = Some(log);
    d.seconds = outcome.seconds;
    Ok(d)
}

/// A file-name-safe stem for the logs of one image, unique per process.
fn log_stem(image: &Path) -> String {
    let name: String = image
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .unwrap_or_else(|| "image".to_owned());
    format!("{name}-{}", std::process::id())
}
