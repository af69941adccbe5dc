//! Tier 2: never half-converted, on the real Debian Xen PV guest.
//!
//! Each test starts from an overlay of `debian12-xenpv` and interrupts a
//! real conversion in one phase (the `XEN2KVM_TEST_FAULT` hook sends a real
//! signal to the real process at that moment):
//! - edits (SIGTERM once the files are written, as grub-mkconfig starts):
//!   the command finishes, `convert` rolls the guest back itself, reports
//!   `interrupted` with what it restored, exits 143; then GRUB (SIGKILL
//!   while grub-mkconfig runs) on the same guest, and `revert`;
//! - initrd rebuild (SIGKILL while dracut runs): the guest is left with an
//!   unfinished journal; a second conversion meanwhile is refused by the
//!   lock, one afterwards by the journal; `xen2kvm revert` restores it;
//! - copy mode (SIGTERM while dracut runs, and SIGINT as the copy starts):
//!   no output, no partial file, the source byte-identical, the report says
//!   `interrupted`.
//!
//! "Restored" means every path under `/etc` and `/boot` (kind, mode, owner,
//! content or link target) and the disk's first MiB are what they were
//! (`fingerprint`). A complete in-place conversion that boots, then its
//! revert (with the boot area) is in `tests/convert.rs`.

#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use xen2kvm_tests::{
    base_fingerprint, fingerprint, fingerprint_diff, overlay, require_image, sha256_file,
    xen2kvm_bin,
};

const IMAGE: &str = "debian12-xenpv";

/// The fingerprint of the unconverted guest, taken once per run.
fn original(src: &Path) -> &'static BTreeMap<String, String> {
    static FP: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    FP.get_or_init(|| base_fingerprint(src))
}

fn xen2kvm(args: &[&str], fault: Option<&str>) -> Output {
    let mut c = Command::new(xen2kvm_bin());
    c.args(args);
    if let Some(f) = fault {
        c.env("XEN2KVM_TEST_FAULT", f);
    }
    let out = c.output().expect("running xen2kvm");
    eprintln!(
        "xen2kvm {} ({}): {}",
        args.join(" "),
        fault.unwrap_or("no fault"),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Waits until no process (the appliance of a killed run, which libguestfs
/// stops once its parent is gone) has `image` on its command line.
fn wait_released(image: &Path) {
    let name = image.to_string_lossy().into_owned();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        let busy = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&name))
                .unwrap_or(false)
        });
        if !busy {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{name} is still open by a process a minute after its run was killed");
}

/// `revert` restores `disk`; the guest then has exactly its original state.
fn revert_restores(src: &Path, disk: &Path) {
    wait_released(disk);
    let d = disk.to_str().unwrap();
    let out = xen2kvm(&["revert", d, "--json"], None);
    let r = json(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["result"], "reverted", "{r:#}");
    let diff = fingerprint_diff(original(src), &fingerprint(disk));
    assert!(diff.is_empty(), "not restored by revert: {diff:#?}");
    // Nothing left to revert, and nothing refuses a conversion now.
    let out = xen2kvm(&["revert", d, "--json"], None);
    assert_eq!(json(&out)["result"], "nothing-to-revert");
}

/// Without the initrd rebuild (to keep it short) the GRUB phase comes right
/// after the edits. First SIGTERM as grub-mkconfig starts: it finishes,
/// then `convert` rolls the guest back itself. Then, on the rolled-back
/// guest, SIGKILL while grub-mkconfig runs, and `revert`. The end state
/// equals the original only if both the rollback and the revert were exact
/// (what the rollback left would be the second journal's "before").
#[test]
fn sigterm_after_the_edits_rolls_back_and_sigkill_in_grub_is_reverted() {
    let Some(src) = require_image(IMAGE) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let disk = overlay(&src, dir.path());
    let args = [
        "convert",
        "--in-place",
        "--skip",
        "rebuild-initrd",
        disk.to_str().unwrap(),
        "--json",
    ];
    // A second signal (SIGHUP) while it is stopping changes nothing.
    let out = xen2kvm(
        &args,
        Some("run:grub-mkconfig:TERM,run:grub-mkconfig+2:HUP"),
    );
    let r = json(&out);
    assert_eq!(out.status.code(), Some(128 + 15), "{r:#}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SIGHUP: already stopping"), "{err}");
    assert_eq!(r["result"], "interrupted", "{r:#}");
    assert_eq!(r["signal"], "SIGTERM");
    assert_eq!(r["journal"], Value::Null, "{r:#}");
    let rolled: Vec<&str> = r["rolled_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(rolled.contains(&"restored /etc/fstab"), "{r:#}");
    assert!(rolled.contains(&"restored /boot/grub/grub.cfg"), "{r:#}");

    let out = xen2kvm(&args, Some("run:grub-mkconfig+2:KILL"));
    assert_eq!(out.status.code(), None, "the run was to be killed");
    revert_restores(&src, &disk);
}

#[test]
fn sigkill_during_the_initrd_rebuild_is_locked_refused_and_reverted() {
    let Some(src) = require_image(IMAGE) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let disk = overlay(&src, dir.path());
    let d = disk.to_str().unwrap();
    let mut first = Command::new(xen2kvm_bin())
        .args(["convert", "--in-place", d, "--json"])
        .env("XEN2KVM_TEST_FAULT", "run:dracut+10:KILL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While it runs, a second conversion of the same disk is refused.
    std::thread::sleep(Duration::from_secs(2));
    let second = xen2kvm(&["convert", "--in-place", d, "--json"], None);
    assert_eq!(second.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(
        msg.contains("in use by another xen2kvm run") && msg.contains("pid "),
        "{msg}"
    );
    let killed = first.wait().unwrap();
    assert_eq!(killed.code(), None, "the first run was to be killed");
    wait_released(&disk);

    // The guest is between Xen and KVM: convert refuses to touch it.
    let again = xen2kvm(&["convert", "--in-place", d, "--json"], None);
    assert_eq!(again.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&again.stderr);
    assert!(
        msg.contains("unfinished in-place conversion") && msg.contains("xen2kvm revert"),
        "{msg}"
    );
    revert_restores(&src, &disk);
}

#[test]
fn copy_mode_sigterm_during_the_initrd_rebuild_leaves_nothing() {
    let Some(src) = require_image(IMAGE) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sha = sha256_file(&src);
    let out_img = dir.path().join("out.qcow2");
    let out = xen2kvm(
        &[
            "convert",
            src.to_str().unwrap(),
            "-o",
            out_img.to_str().unwrap(),
            "--json",
        ],
        Some("run:dracut+3:TERM"),
    );
    let r = json(&out);
    assert_eq!(out.status.code(), Some(128 + 15), "{r:#}");
    assert_eq!(r["result"], "interrupted", "{r:#}");
    assert!(!out_img.exists(), "an interrupted copy left its output");
    assert!(
        !dir.path().join("out.qcow2.partial").exists(),
        "an interrupted copy left its partial output"
    );
    assert_eq!(sha256_file(&src), sha, "the source was written");
}

#[test]
fn copy_mode_sigint_during_the_copy_leaves_nothing() {
    let Some(src) = require_image(IMAGE) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_img = dir.path().join("out.qcow2");
    let out = xen2kvm(
        &[
            "convert",
            src.to_str().unwrap(),
            "-o",
            out_img.to_str().unwrap(),
            "--json",
        ],
        Some("copy:INT"),
    );
    let r = json(&out);
    assert_eq!(out.status.code(), Some(128 + 2), "{r:#}");
    assert_eq!(r["result"], "interrupted", "{r:#}");
    assert_eq!(r["signal"], "SIGINT");
    assert!(!out_img.exists() && !dir.path().join("out.qcow2.partial").exists());
}
