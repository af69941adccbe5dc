//! SIGINT, SIGTERM and SIGHUP: never die half-way.
//!
//! A thread waits for the signals (signal-hook) and acts by [`Policy`]:
//! - [`Policy::Exit`] (the default; inspect, boot-check, domxml): no
//!   handler is installed at all, so the kernel ends the process at once
//!   (a handler thread that re-raised the signal would race with the main
//!   thread, which may already be failing on the consequences of the
//!   signal — a closed pipe — and exit 1 instead).
//! - [`Policy::Abort`] (nothing written to a source yet: copy mode, dry
//!   run, inspection): the child processes registered with [`child`] (the
//!   appliance, `qemu-img`) are stopped at once, so the main thread's call
//!   returns an error, sees [`requested`] and cleans up (partial outputs
//!   removed, the report printed with `result: interrupted`).
//! - [`Policy::SafePoint`] (in place, once the journal exists; revert):
//!   only the flag is set; the editor checks it before each file, link and
//!   command, stops there, and the conversion is rolled back from the
//!   journal. The command running in the guest (an initrd rebuild) is
//!   allowed to finish: killing the appliance in the middle of a write is
//!   what the journal is for, not what xen2kvm does on purpose.
//!
//! Further signals while stopping only say so: the cleanup is never cut
//! short by this process (a SIGKILL still can: then the journal in the
//! guest remains, and `xen2kvm revert` finishes the job).
//!
//! `XEN2KVM_TEST_FAULT` (see [`fault`]) lets the tests send a signal at a
//! named moment.

use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use rustix::process::{kill_process, Pid, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What a signal does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Exit at once, 128 + the signal, as with no handler at all: the
    /// commands that write nothing (inspect, boot-check, domxml), and
    /// every command until it says otherwise.
    Exit = 2,
    /// Stop the registered child processes at once.
    Abort = 0,
    /// Only set the flag; the work stops at the next safe point.
    SafePoint = 1,
}

static POLICY: AtomicU8 = AtomicU8::new(Policy::Exit as u8);
/// The first signal received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Starts the signal thread, once: the first time a command leaves
/// [`Policy::Exit`].
fn install() -> Result<()> {
    static INSTALLED: std::sync::OnceLock<std::result::Result<(), String>> =
        std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| start_thread().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn start_thread() -> Result<()> {
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing the signal handlers")?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            for sig in signals.forever() {
                on_signal(sig);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

#[allow(clippy::print_stderr)]
fn on_signal(sig: i32) {
    let first = SIGNAL
        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    let name = signal_name(sig);
    let policy = POLICY.load(Ordering::SeqCst);
    if !first {
        eprintln!(
            "xen2kvm: {name}: already stopping; let it finish (a SIGKILL now may leave an unfinished journal in the guest: `xen2kvm revert` restores it)"
        );
        return;
    }
    if policy == Policy::Exit as u8 {
        // Not reached today (nothing goes back to Exit once a handler is
        // installed), kept so that the policy means what it says: die of
        // the signal, as with no handler (`exit` would run libguestfs'
        // exit handlers under the main thread's feet).
        let _ = signal_hook::low_level::emulate_default_handler(sig);
        return;
    }
    if policy == Policy::Abort as u8 {
        eprintln!("xen2kvm: {name}: stopping now and removing what was made");
        let pids = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
        for pid in pids {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = kill_process(pid, Signal::TERM);
            }
        }
    } else {
        eprintln!(
            "xen2kvm: {name}: stopping at the next safe point (the command running in the guest finishes first), then rolling back"
        );
    }
}

/// `SIGTERM`, `SIGINT`, …
pub(crate) fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Sets what the next signal does; leaving [`Policy::Exit`] installs the
/// handlers.
pub(crate) fn set_policy(p: Policy) -> Result<()> {
    if p != Policy::Exit {
        install()?;
    }
    POLICY.store(p as u8, Ordering::SeqCst);
    Ok(())
}

/// Whether a signal asked the run to stop.
pub(crate) fn requested() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// The first signal received, if any.
pub(crate) fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// A child process stopped by a signal under [`Policy::Abort`], for as long
/// as the guard lives.
pub(crate) struct ChildGuard(i32);

/// Registers a child process (the appliance, `qemu-img`).
pub(crate) fn child(pid: u32) -> ChildGuard {
    let pid = i32::try_from(pid).unwrap_or(0);
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(pid);
    }
    // A signal that came before the registration still stops it.
    if requested() && POLICY.load(Ordering::SeqCst) == Policy::Abort as u8 {
        if let Some(p) = Pid::from_raw(pid) {
            let _ = kill_process(p, Signal::TERM);
        }
    }
    ChildGuard(pid)
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = CHILDREN.lock() {
            c.retain(|p| *p != self.0);
        }
    }
}

/// Fault injection for the tests: `XEN2KVM_TEST_FAULT=EVENT[+SECONDS]:SIGNAL[,…]`
/// sends SIGNAL (`TERM`, `INT`, `HUP` or `KILL`) to this process when EVENT
/// happens (after SECONDS): `copy` (the copy of a disk starts), `journal`
/// (the in-place journal was written), `run:NAME` (a command whose program
/// name ends with NAME starts in the guest). It exists so that the tests can
/// interrupt each phase of a real conversion; `docs/reliability.md` lists
/// the tests.
pub(crate) fn fault(event: &str) {
    let Ok(specs) = std::env::var("XEN2KVM_TEST_FAULT") else {
        return;
    };
    // Several, comma-separated: a second signal while stopping.
    for spec in specs.split(',') {
        fault_one(spec.trim(), event);
    }
}

fn fault_one(spec: &str, event: &str) {
    let Some((when, sig)) = spec.rsplit_once(':') else {
        return;
    };
    let (what, delay) = match when.split_once('+') {
        Some((w, d)) => (w, d.parse::<u64>().unwrap_or(0)),
        None => (when, 0),
    };
    let matches = match (what.strip_prefix("run:"), event.strip_prefix("run:")) {
        (Some(want), Some(prog)) => prog.ends_with(want),
        _ => what == event,
    };
    if !matches {
        return;
    }
    let sig = match sig {
        "KILL" => Signal::KILL,
        "INT" => Signal::INT,
        "HUP" => Signal::HUP,
        _ => Signal::TERM,
    };
    let me = rustix::process::getpid();
    let send = move || {
        std::thread::sleep(Duration::from_secs(delay));
        let _ = kill_process(me, sig);
    };
    if delay == 0 {
        send();
        // Give the signal thread the moment it needs to see it.
        std::thread::sleep(Duration::from_millis(200));
    } else {
        std::thread::spawn(send);
    }
}
