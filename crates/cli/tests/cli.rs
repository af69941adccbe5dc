//! Tier 1 tests of the `xen2kvm` binary: usage, bad input, exit codes.
//! Nothing here boots a guest or launches the appliance.

use std::process::Command;

fn xen2kvm(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xen2kvm"))
        .args(args)
        .output()
        .expect("running xen2kvm");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn boot_check_of_a_missing_image_is_an_error_with_exit_2() {
    let (code, out, err) = xen2kvm(&["boot-check", "/nonexistent/disk.qcow2", "--accel", "tcg"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    assert!(
        err.contains("/nonexistent/disk.qcow2") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn boot_check_of_a_directory_is_an_error() {
    let dir = std::env::temp_dir();
    let (code, _, err) = xen2kvm(&["boot-check", dir.to_str().unwrap(), "--accel", "tcg"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a disk image file"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = xen2kvm(&["boot-check", "x.img", "--accel", "warp"]);
    assert_eq!(code, 2);
    assert!(err.contains("--accel"), "{err}");
    let (code, _, _) = xen2kvm(&["no-such-command"]);
    assert_eq!(code, 2);
}
