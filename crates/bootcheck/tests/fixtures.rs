//! The console classifier on real recorded serial consoles, one per reason
//! (`test_data/README.md` says how each was recorded).

use std::path::Path;

use xen2kvm_bootcheck::console::{self, End, Failure, Verdict};
use xen2kvm_bootcheck::{Booted, DEFAULT_MARKER};

fn judge(name: &str) -> Verdict {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8_lossy(&bytes);
    console::scan(&text, DEFAULT_MARKER)
        .unwrap_or_else(|| Verdict::Failed(console::at_end(&text, End::Silence(120))))
}

fn failure(name: &str) -> Failure {
    match judge(name) {
        Verdict::Failed(f) => f,
        v => panic!("{name}: expected a failure, got {v:?}"),
    }
}

#[test]
fn root_device_missing() {
    match failure("root-device-missing.log") {
        Failure::RootDeviceMissing { device, line } => {
            assert_eq!(device, "/dev/xvda1");
            assert!(line.contains("xvda1"), "{line}");
        }
        f => panic!("{f:?}"),
    }
}

#[test]
fn emergency_shell() {
    assert!(matches!(
        failure("emergency-shell.log"),
        Failure::EmergencyShell { .. }
    ));
}

#[test]
fn kernel_panic_quotes_the_panic_line() {
    match failure("kernel-panic.log") {
        Failure::KernelPanic { line } => {
            assert_eq!(
                line,
                "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
            )
        }
        f => panic!("{f:?}"),
    }
}

#[test]
fn grub_rescue() {
    assert!(matches!(
        failure("grub-rescue.log"),
        Failure::GrubRescue { .. }
    ));
}

#[test]
fn no_bootable_device() {
    assert!(matches!(
        failure("no-bootable-device.log"),
        Failure::NoBootableDevice { .. }
    ));
}

#[test]
fn no_console_output() {
    assert_eq!(
        failure("no-console-output.log"),
        Failure::NoConsoleOutput { secs: 120 }
    );
}

#[test]
fn stalled_after_grub() {
    match failure("stalled.log") {
        Failure::Stalled { last_line, .. } => assert_eq!(last_line, "Welcome to GRUB!"),
        f => panic!("{f:?}"),
    }
}

#[test]
fn timeout_while_still_printing() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/timeout.log");
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    assert_eq!(console::scan(&text, DEFAULT_MARKER), None);
    assert!(matches!(
        console::at_end(&text, End::Timeout(25)),
        Failure::Timeout { secs: 25, .. }
    ));
}

#[test]
fn booted_by_marker() {
    assert_eq!(
        judge("booted-marker.log"),
        Verdict::Booted(Booted::Marker(DEFAULT_MARKER.to_owned()))
    );
}

#[test]
fn booted_by_login_prompt() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/booted-login.log");
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    match console::scan(&text, "NO-SUCH-MARKER") {
        Some(Verdict::Booted(Booted::LoginPrompt(l))) => assert!(l.ends_with("login:"), "{l}"),
        v => panic!("{v:?}"),
    }
}
