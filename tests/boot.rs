//! Tier 3: boot tests in QEMU on real images (`xen2kvm boot-check`).
//!
//! Run by `cargo xtask test` (one at a time: parallel TCG guests on two
//! cores only slow each other). Each prints its verdict and time, which the
//! CI log keeps.

#![allow(clippy::print_stderr)]

use std::path::Path;

use xen2kvm_tests::{boot_check, overlay, require_image, sha256_file};

#[test]
fn xen_pv_guest_fails_and_names_its_root_device() {
    let Some(base) = require_image("debian12-xenpv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let image = overlay(&base, dir.path());
    let before = sha256_file(&image);
    // Its kernel writes to hvc0 only: the serial console goes silent after
    // GRUB and the diagnostic boot (console on ttyS0) says why. 60 s of
    // silence is plenty under TCG (the default, 120 s, is for slow hosts).
    let (code, json) = boot_check(&image, dir.path(), &["--silence", "60"]);
    eprintln!("debian12-xenpv verdict: {json:#}");
    assert_eq!(code, 1, "boot-check exit code: failed is 1");
    assert_eq!(json["version"], 1);
    assert_eq!(json["verdict"], "failed");
    assert_eq!(json["reason"]["kind"], "root-device-missing", "{json:#}");
    assert_eq!(json["reason"]["device"], "/dev/xvda1");
    let text = json["reason"]["text"].as_str().unwrap();
    assert!(
        text.contains("/dev/xvda1") && text.contains("hvc0"),
        "{text}"
    );
    assert_eq!(json["diagnosis"]["config"], "/boot/grub/grub.cfg");
    assert!(Path::new(json["console_log"].as_str().unwrap()).is_file());
    assert_eq!(
        sha256_file(&image),
        before,
        "boot-check must never write to the image"
    );
}

#[test]
fn kvm_control_guest_boots() {
    let Some(base) = require_image("debian12-kvm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let image = overlay(&base, dir.path());
    let before = sha256_file(&image);
    // Its networkd config names enX0 (Xen's name), as a conversion that
    // does not pin NIC names leaves it: it boots, with no network, and
    // --require-network fails it, in the JSON and in the JUnit file.
    let junit = dir.path().join("boot.junit.xml");
    let mac = "00:16:3e:5a:6b:7c";
    let (code, json) = boot_check(
        &image,
        dir.path(),
        &[
            "--mac",
            mac,
            "--network-wait",
            "20",
            "--require-network",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    eprintln!("debian12-kvm verdict: {json:#}");
    assert_eq!(
        code, 1,
        "booted without network is a failure with --require-network: {json:#}"
    );
    assert_eq!(json["verdict"], "failed", "{json:#}");
    assert_eq!(json["reason"]["kind"], "network-down", "{json:#}");
    assert_eq!(json["booted_by"]["kind"], "marker", "it did boot: {json:#}");
    assert!(json.get("diagnosis").is_none());
    assert_eq!(json["network"]["mac"], mac);
    assert_eq!(json["network"]["state"], "down", "{json:#}");
    assert!(Path::new(json["network"]["capture"].as_str().unwrap()).is_file());
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert!(
        xml.contains("<failure type=\"network-down\"")
            && xml.contains("tests=\"1\" failures=\"1\"")
            && xml.contains("XEN2KVM-BOOT-OK"),
        "{xml}"
    );
    // The console excerpt holds what udev named the NIC.
    eprintln!("{xml}");
    assert_eq!(
        sha256_file(&image),
        before,
        "boot-check must never write to the image"
    );
}
