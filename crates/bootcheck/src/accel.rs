//! Chooses the accelerator: KVM only when a probe guest really runs on it.
//!
//! On some hosts `/dev/kvm` exists and opens, and the firmware even runs,
//! yet a Linux kernel hangs silently as soon as it leaves real mode. So
//! `auto` boots the host's own kernel (`/boot/vmlinuz-*`, which libguestfs
//! needs anyway) under KVM with `earlyprintk` on the serial port; unless its
//! `Linux version` banner arrives within [`PROBE_SECS`], KVM is unusable and
//! TCG is used instead. No probe kernel means no trust: TCG, said so.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The accelerator a boot uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualization through `/dev/kvm`.
    Kvm,
    /// QEMU's software emulation (slow, always works).
    Tcg,
}

impl Accel {
    /// QEMU's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM if the probe guest runs, else TCG.
    Auto,
    /// KVM, unchecked.
    Kvm,
    /// TCG.
    Tcg,
}

/// How long the probe guest gets to print its byte.
pub const PROBE_SECS: u64 = 5;

/// What the probe kernel prints first on the serial console.
const BANNER: &[u8] = b"Linux version";

/// The host kernel used as the probe guest: `$XEN2KVM_PROBE_KERNEL`, or the
/// newest readable `/boot/vmlinuz-*`.
pub fn probe_kernel() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("XEN2KVM_PROBE_KERNEL") {
        return Some(PathBuf::from(k));
    }
    let mut found: Vec<PathBuf> = fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .filter(|p| fs::File::open(p).is_ok())
        .collect();
    found.sort();
    found.pop()
}

/// Decides the accelerator; `note` receives what was decided and why when
/// it is not what was asked for.
pub fn resolve(
    choice: AccelChoice,
    qemu: &Path,
    scratch: &Path,
    note: &mut dyn FnMut(&str),
) -> io::Result<Accel> {
    match choice {
        AccelChoice::Tcg => Ok(Accel::Tcg),
        AccelChoice::Kvm => Ok(Accel::Kvm),
        AccelChoice::Auto => {
            if let Err(e) = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
            {
                note(&format!(
                    "/dev/kvm is not usable ({e}): using TCG (software emulation, slow)"
                ));
                return Ok(Accel::Tcg);
            }
            let Some(kernel) = probe_kernel() else {
                note("cannot check /dev/kvm (no host kernel in /boot to probe it with): using TCG (software emulation, slow); --accel kvm forces KVM");
                return Ok(Accel::Tcg);
            };
            if probe(
                qemu,
                Accel::Kvm,
                &kernel,
                scratch,
                Duration::from_secs(PROBE_SECS),
            )? {
                Ok(Accel::Kvm)
            } else {
                note(&format!(
                    "/dev/kvm is present but a probe guest did not run on it within {PROBE_SECS}s: using TCG (software emulation, slow)"
                ));
                Ok(Accel::Tcg)
            }
        }
    }
}

/// Boots `kernel` with `accel`; true when its banner arrived within `limit`.
pub fn probe(
    qemu: &Path,
    accel: Accel,
    kernel: &Path,
    scratch: &Path,
    limit: Duration,
) -> io::Result<bool> {
    let out = scratch.join(format!("xen2kvm-probe-{}.out", std::process::id()));
    let _ = fs::remove_file(&out);
    let mut child = Command::new(qemu)
        .args(["-nodefaults", "-display", "none", "-monitor", "none"])
        .args(["-accel", accel.name()])
        .args(["-m", "256", "-no-reboot"])
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1"])
        .arg("-serial")
        .arg(format!("file:{}", out.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", qemu.display())))?;
    let start = Instant::now();
    let mut ok = false;
    while start.elapsed() < limit {
        if fs::read(&out)
            .map(|b| b.windows(BANNER.len()).any(|w| w == BANNER))
            .unwrap_or(false)
        {
            ok = true;
            break;
        }
        if child.try_wait()?.is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = fs::remove_file(&out);
    Ok(ok)
}
