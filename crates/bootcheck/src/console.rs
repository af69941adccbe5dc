//! The console classifier: serial console text in, verdict out.
//!
//! Pure: it never waits or reads files. [`scan`] is called on the log as it
//! grows and returns a verdict as soon as one is certain; [`at_end`] judges a
//! log that ended without one (timeout, silence). The patterns come from real
//! recorded consoles (`test_data/*.log`), one fixture per reason.

use std::fmt;

/// How a boot went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The guest reached user space.
    Booted(Booted),
    /// It did not, and this is why.
    Failed(Failure),
}

/// What showed that the guest booted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Booted {
    /// The marker text appeared.
    Marker(String),
    /// A login prompt appeared (the line is quoted).
    LoginPrompt(String),
}

/// Why a guest did not boot, as read from its console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The root device never appeared (the initrd waited for it).
    RootDeviceMissing {
        /// The device waited for, e.g. `/dev/xvda1`.
        device: String,
        /// The console line that shows it.
        line: String,
    },
    /// The initrd (dracut or initramfs-tools) or systemd dropped to a shell.
    EmergencyShell {
        /// The console line that shows it.
        line: String,
    },
    /// The kernel panicked.
    KernelPanic {
        /// The panic line.
        line: String,
    },
    /// GRUB could not load its configuration and stopped at `grub rescue>`.
    GrubRescue {
        /// The console line that shows it.
        line: String,
    },
    /// The firmware found nothing to boot on the disk.
    NoBootableDevice {
        /// The console line that shows it.
        line: String,
    },
    /// Nothing at all appeared on the serial console.
    NoConsoleOutput {
        /// How long it waited, in seconds.
        secs: u64,
    },
    /// Output stopped before the guest booted, and nothing came for a while.
    Stalled {
        /// The last line printed.
        last_line: String,
        /// How long the console stayed silent, in seconds.
        secs: u64,
    },
    /// The guest stopped (powered off, rebooted or crashed QEMU) first.
    GuestStopped {
        /// The last line printed.
        last_line: String,
    },
    /// The time limit passed while output was still coming.
    Timeout {
        /// The last line printed.
        last_line: String,
        /// The time limit, in seconds.
        secs: u64,
    },
}

impl Failure {
    /// A short stable name for the reason (`root-device-missing`, …), for
    /// JSON and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::RootDeviceMissing { .. } => "root-device-missing",
            Failure::EmergencyShell { .. } => "emergency-shell",
            Failure::KernelPanic { .. } => "kernel-panic",
            Failure::GrubRescue { .. } => "grub-rescue",
            Failure::NoBootableDevice { .. } => "no-bootable-device",
            Failure::NoConsoleOutput { .. } => "no-console-output",
            Failure::Stalled { .. } => "stalled",
            Failure::GuestStopped { .. } => "guest-stopped",
            Failure::Timeout { .. } => "timeout",
        }
    }

    /// Whether the console says too little to explain the failure, so that a
    /// diagnostic boot with the console on the serial port can tell more.
    pub fn is_unexplained(&self) -> bool {
        matches!(
            self,
            Failure::NoConsoleOutput { .. }
                | Failure::Stalled { .. }
                | Failure::Timeout { .. }
                | Failure::GuestStopped { .. }
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::RootDeviceMissing { device, line } => {
                write!(
                    f,
                    "the root device {device} never appeared (console: {line:?})"
                )
            }
            Failure::EmergencyShell { line } => {
                write!(f, "dropped to an emergency shell (console: {line:?})")
            }
            Failure::KernelPanic { line } => write!(f, "kernel panic: {line:?}"),
            Failure::GrubRescue { line } => {
                write!(f, "GRUB stopped in rescue mode (console: {line:?})")
            }
            Failure::NoBootableDevice { line } => write!(
                f,
                "no bootable device: the disk has no boot code (console: {line:?})"
            ),
            Failure::NoConsoleOutput { secs } => {
                write!(f, "no output at all on the serial console in {secs}s")
            }
            Failure::Stalled { last_line, secs } => {
                write!(
                    f,
                    "the serial console went silent for {secs}s after {last_line:?}"
                )
            }
            Failure::GuestStopped { last_line } => {
                write!(
                    f,
                    "the guest stopped before booting; last console line {last_line:?}"
                )
            }
            Failure::Timeout { last_line, secs } => {
                write!(
                    f,
                    "not booted within {secs}s; last console line {last_line:?}"
                )
            }
        }
    }
}

/// How long a systemd job may wait for the root device before the wait
/// counts as "never appeared" (a slow but present disk appears well before).
pub const ROOT_WAIT_SECS: u64 = 30;

/// Looks for a decisive verdict in the console text so far; the first
/// decisive line, in console order, wins.
pub fn scan(text: &str, marker: &str) -> Option<Verdict> {
    let clean = clean(text);
    let lines: Vec<&str> = clean
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    for line in &lines {
        if !marker.is_empty() && line.contains(marker) {
            return Some(Verdict::Booted(Booted::Marker(marker.to_owned())));
        }
        if let Some(v) = classify_line(line) {
            return Some(v);
        }
    }
    // A prompt has no newline after it: check the last line as printed too.
    lines
        .last()
        .filter(|l| is_login_prompt(l))
        .map(|l| Verdict::Booted(Booted::LoginPrompt(l.to_string())))
}

/// Judges a console that ended with no decisive verdict.
pub fn at_end(text: &str, ended: End) -> Failure {
    match (last_line(text), ended) {
        (None, End::Silence(secs) | End::Timeout(secs)) => Failure::NoConsoleOutput { secs },
        (Some(l), End::Silence(secs)) => Failure::Stalled { last_line: l, secs },
        (Some(l), End::Timeout(secs)) => Failure::Timeout { last_line: l, secs },
    }
}

/// The last non-blank console line, escapes removed.
pub fn last_line(text: &str) -> Option<String> {
    clean(text)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Why a boot ended without a decisive verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Nothing new on the console for this many seconds.
    Silence(u64),
    /// The overall time limit, in seconds.
    Timeout(u64),
}

fn classify_line(line: &str) -> Option<Verdict> {
    let fail = |f| Some(Verdict::Failed(f));
    let quote = || line.to_owned();
    if let Some(i) = line.find("Kernel panic - not syncing") {
        return fail(Failure::KernelPanic {
            line: line[i..].to_owned(),
        });
    }
    if let Some(device) = root_wait(line) {
        return fail(Failure::RootDeviceMissing {
            device,
            line: quote(),
        });
    }
    const SHELL: &[&str] = &[
        "Entering emergency mode",
        "You are in emergency mode",
        "Give root password for maintenance",
        "Dropping to debug shell",
        "dracut:/#",
        "(initramfs)",
        "Cannot open access to console, the root account is locked",
    ];
    if SHELL.iter().any(|p| line.contains(p)) {
        return fail(Failure::EmergencyShell { line: quote() });
    }
    if line.contains("grub rescue>") || line.contains("Entering rescue mode") {
        return fail(Failure::GrubRescue { line: quote() });
    }
    const NOBOOT: &[&str] = &[
        "No bootable device",
        "Boot failed: not a bootable disk",
        "Boot failed: could not read the boot disk",
    ];
    if NOBOOT.iter().any(|p| line.contains(p)) {
        return fail(Failure::NoBootableDevice { line: quote() });
    }
    if is_login_prompt(line) {
        return Some(Verdict::Booted(Booted::LoginPrompt(quote())));
    }
    None
}

fn is_login_prompt(line: &str) -> bool {
    line.ends_with(" login:") && line.split_whitespace().count() == 2
}

/// The root device named by a line showing the initrd waiting for it, or
/// giving up on it.
fn root_wait(line: &str) -> Option<String> {
    // dracut: "Warning: /dev/xvda1 does not exist"
    // initramfs-tools: "ALERT!  /dev/xvda1 does not exist.  Dropping to a shell!"
    if let Some(i) = line.find(" does not exist") {
        let before = &line[..i];
        let dev = before.rsplit(' ').next().unwrap_or("");
        if dev.starts_with("/dev/") || dev.starts_with("UUID=") || dev.starts_with("LABEL=") {
            return Some(dev.to_owned());
        }
    }
    // systemd: "Timed out waiting for device /dev/xvda1." or
    // "Timed out waiting for device dev-xvda1.device - /dev/xvda1."
    if let Some(i) = line.find("Timed out waiting for device ") {
        let rest = &line[i + "Timed out waiting for device ".len()..];
        return Some(device_name(
            rest.rsplit(' ')
                .next()
                .unwrap_or(rest)
                .trim_end_matches('.'),
        ));
    }
    // systemd: "A start job is running for /dev/xvda1 (1min 2s / no limit)"
    // or, when it shows the job by unit: "Job dev-xvda1.device/start running (7s / no limit)"
    let rest = if let Some(i) = line.find("A start job is running for ") {
        line[i + "A start job is running for ".len()..].to_owned()
    } else if let Some(i) = line.find("Job dev-") {
        line[i + "Job ".len()..].replacen("/start running", "", 1)
    } else {
        return None;
    };
    let (what, timing) = rest.rsplit_once(" (")?;
    let waited = parse_duration(timing.split(" / ").next()?)?;
    let dev = device_name(what.rsplit(' ').next().unwrap_or(what));
    (waited >= ROOT_WAIT_SECS && dev.starts_with("/dev/")).then_some(dev)
}

/// `/dev/xvda1` from `/dev/xvda1` or from its unit name `dev-xvda1.device`.
fn device_name(s: &str) -> String {
    if let Some(unit) = s.strip_suffix(".device") {
        let path: String = unit.replace('-', "/").replace("\\x2d", "-");
        return format!("/{path}");
    }
    s.to_owned()
}

/// Seconds in systemd's "1min 2s" / "35s" / "2min" form.
fn parse_duration(s: &str) -> Option<u64> {
    let mut total = 0;
    for part in s.split_whitespace() {
        if let Some(n) = part.strip_suffix("min") {
            total += n.parse::<u64>().ok()? * 60;
        } else if let Some(n) = part.strip_suffix("ms") {
            n.parse::<u64>().ok()?;
        } else if let Some(n) = part.strip_suffix('s') {
            total += n.parse::<f64>().ok()? as u64;
        } else if let Some(n) = part.strip_suffix('h') {
            total += n.parse::<u64>().ok()? * 3600;
        } else {
            return None;
        }
    }
    Some(total)
}

/// The console text without ANSI/VT100 escape sequences and carriage returns
/// (GRUB menus and systemd's status spinner are full of them).
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    // CSI: parameters then one final byte in @..~
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\r' => out.push('\n'),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_job_needs_a_long_wait() {
        let short = "[  *** ] A start job is running for /dev/xvda1 (12s / no limit)\n";
        assert_eq!(scan(short, "MARK"), None);
        let long = "[ ***  ] A start job is running for /dev/xvda1 (1min 3s / no limit)\n";
        let unit = "[  *** ] Job dev-xvda1.device/start running (31s / no limit)\n";
        assert!(matches!(
            scan(unit, "MARK"),
            Some(Verdict::Failed(Failure::RootDeviceMissing { .. }))
        ));
        match scan(long, "MARK") {
            Some(Verdict::Failed(Failure::RootDeviceMissing { device, .. })) => {
                assert_eq!(device, "/dev/xvda1")
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn unit_names_become_devices() {
        assert_eq!(device_name("dev-xvda1.device"), "/dev/xvda1");
        assert_eq!(
            device_name("dev-disk-by\\x2duuid-abc.device"),
            "/dev/disk/by-uuid/abc"
        );
        assert_eq!(
            root_wait("Timed out waiting for device /dev/xvda1.").as_deref(),
            Some("/dev/xvda1")
        );
        assert_eq!(
            root_wait("[FAILED] Timed out waiting for device dev-xvda1.device - /dev/xvda1.")
                .as_deref(),
            Some("/dev/xvda1")
        );
        assert_eq!(
            root_wait("ALERT!  /dev/xvda1 does not exist.  Dropping to a shell!").as_deref(),
            Some("/dev/xvda1")
        );
    }

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(
            clean("\u{1b}[0;32m  OK  \u{1b}[0m] Reached\r\nx"),
            "  OK  ] Reached\n\nx"
        );
    }

    #[test]
    fn login_prompt_without_newline() {
        assert!(matches!(
            scan(
                "Debian GNU/Linux 12 debian12 ttyS0\n\ndebian12 login: ",
                "M"
            ),
            Some(Verdict::Booted(Booted::LoginPrompt(_)))
        ));
        assert_eq!(scan("please login: now\n", "M"), None);
    }

    #[test]
    fn end_of_log() {
        assert_eq!(
            at_end(" \r\n", End::Silence(60)),
            Failure::NoConsoleOutput { secs: 60 }
        );
        assert_eq!(
            at_end("Loading Linux\n", End::Silence(60)),
            Failure::Stalled {
                last_line: "Loading Linux".into(),
                secs: 60
            }
        );
        assert!(matches!(
            at_end("x\n", End::Timeout(9)),
            Failure::Timeout { secs: 9, .. }
        ));
    }
}
