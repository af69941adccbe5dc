//! A boot-check verdict as a JUnit XML test case, the format GitLab,
//! Jenkins and GitHub test reporters display: one suite, one case per
//! image, a `<failure>` when the guest did not boot (or booted without
//! network when the network is required), the console's end in
//! `<system-out>`.
//!
//! Pure: the report and the console text in, XML out. The console text is
//! the guest's and untrusted: it is escaped, and characters XML 1.0 cannot
//! hold are dropped.

use std::fmt::Write as _;

use crate::{Report, Verdict};

/// How many console lines go into `<system-out>`.
pub const CONSOLE_LINES: usize = 40;

/// Escapes text for XML content and attributes; drops what XML 1.0 cannot
/// hold (control characters but tab, newline, carriage return).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The failure of a check, if it failed: (type, message).
pub fn failure(r: &Report, require_network: bool) -> Option<(String, String)> {
    if let Verdict::Failed(f) = &r.verdict {
        return Some((
            f.kind().to_owned(),
            r.reason().unwrap_or_else(|| f.to_string()),
        ));
    }
    match &r.network {
        Some(n) if require_network && !n.is_up() => Some((
            "network-down".to_owned(),
            format!("booted, but the network is {n}"),
        )),
        None if require_network => Some((
            "network-not-checked".to_owned(),
            "booted, but the NIC's frames could not be judged".to_owned(),
        )),
        _ => None,
    }
}

/// The JUnit XML document of one check; `console` is the console log's text.
pub fn render(r: &Report, require_network: bool, console: &str) -> String {
    let fail = failure(r, require_network);
    let failures = usize::from(fail.is_some());
    let name = escape(&r.image.display().to_string());
    let secs = format!("{:.3}", r.seconds);
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites tests=\"1\" failures=\"{failures}\" time=\"{secs}\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"xen2kvm boot-check\" tests=\"1\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{secs}\">"
    );
    let _ = writeln!(
        x,
        "    <testcase classname=\"xen2kvm.boot-check\" name=\"{name}\" time=\"{secs}\">"
    );
    if let Some((kind, msg)) = &fail {
        let _ = writeln!(
            x,
            "      <failure type=\"{}\" message=\"{}\">{}</failure>",
            escape(kind),
            escape(msg),
            escape(msg)
        );
    }
    let verdict = match &r.verdict {
        Verdict::Booted(_) => "booted".to_owned(),
        Verdict::Failed(f) => format!("failed ({})", f.kind()),
    };
    let network = r
        .network
        .as_ref()
        .map_or_else(|| "not judged".to_owned(), ToString::to_string);
    let out = format!(
        "verdict: {verdict}\naccelerator: {}\nMAC: {}\nnetwork: {network}\nconsole log: {}\n--- the console's last {CONSOLE_LINES} lines ---\n{}",
        r.accel.name(),
        r.mac,
        r.log.display(),
        tail(console, CONSOLE_LINES)
    );
    let _ = writeln!(x, "      <system-out>{}</system-out>", escape(&out));
    x.push_str("    </testcase>\n  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Accel, Booted, Failure, Network};
    use std::path::PathBuf;

    fn report(verdict: Verdict, network: Option<Network>) -> Report {
        Report {
            image: PathBuf::from("/img/a<b>.qcow2"),
            format: "qcow2".into(),
            accel: Accel::Tcg,
            verdict,
            log: PathBuf::from("/tmp/a.console.log"),
            seconds: 41.5,
            diagnosis: None,
            mac: "00:16:3e:0a:0b:0c".into(),
            network,
            capture: PathBuf::from("/tmp/a.net.pcap"),
        }
    }

    #[test]
    fn a_guest_that_booted_with_its_network_passes() {
        let up = Network::Up {
            dhcp: true,
            frames: 3,
            evidence: "first: a DHCP request (UDP 68 -> 67)".into(),
        };
        let x = render(
            &report(
                Verdict::Booted(Booted::LoginPrompt("login:".into())),
                Some(up),
            ),
            true,
            "a\u{1b}[0mb & c\nlogin: ",
        );
        assert!(
            x.contains("failures=\"0\"") && !x.contains("<failure"),
            "{x}"
        );
        assert!(x.contains("name=\"/img/a&lt;b&gt;.qcow2\""), "{x}");
        assert!(
            x.contains("a[0mb &amp; c"),
            "control characters dropped: {x}"
        );
        assert!(x.contains("network: up: 3 frame(s)"), "{x}");
    }

    #[test]
    fn no_network_fails_only_when_required() {
        let down = Some(Network::Down { waited: 30 });
        let booted = || Verdict::Booted(Booted::Marker("OK".into()));
        let x = render(&report(booted(), down.clone()), true, "");
        assert!(x.contains("<failure type=\"network-down\""), "{x}");
        assert!(x.contains("failures=\"1\""), "{x}");
        let x = render(&report(booted(), down), false, "");
        assert!(!x.contains("<failure"), "{x}");
        let failed = Verdict::Failed(Failure::KernelPanic {
            line: "Kernel panic - not syncing: VFS".into(),
        });
        let x = render(&report(failed, None), false, "");
        assert!(x.contains("<failure type=\"kernel-panic\""), "{x}");
    }
}
