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

fn seed_or_fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../domxml/test_data")
        .join(name)
}

#[test]
fn domxml_converts_to_a_file_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kvm.xml");
    let input = seed_or_fixture("suse-example.xen.xml");
    let (code, stdout, err) = xen2kvm(&[
        "domxml",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
        "--emulator",
        "/usr/bin/qemu-kvm",
    ]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["version"], 1);
    assert!(json.get("xml").is_none());
    let rules: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rule"].as_str().unwrap())
        .collect();
    for r in [
        "domain-type",
        "bootloader",
        "os-type",
        "boot-dev",
        "emulator",
        "disk",
        "interface",
        "console",
        "input",
        "memballoon",
    ] {
        assert!(rules.contains(&r), "rule {r} missing from {rules:?}");
    }
    let xml = std::fs::read_to_string(&out).unwrap();
    assert!(xml.contains("<emulator>/usr/bin/qemu-kvm</emulator>"));
}

#[test]
fn domxml_bad_inputs_exit_1_with_one_line_and_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("converted.xml");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases = [
        (write("bad.xml", "<domain type='xen'><name>x</domain>"), "libvirt", "not a valid domain XML"),
        (write("kvm.xml", "<domain type='kvm'><name>x</name></domain>"), "libvirt", "--force"),
        (write("dtd.xml", "<!DOCTYPE domain [<!ENTITY e 'x'>]><domain type='xen'>&e;</domain>"), "libvirt", "DOCTYPE"),
        (write("bus.xml", "<domain type='xen'><devices><disk device='disk'><target dev='xvda' bus='nvram'/></disk></devices></domain>"), "libvirt", "bus \"nvram\""),
        (write("big.xml", &"x".repeat(2 * 1024 * 1024)), "libvirt", "not a domain config"),
        (write("bad.cfg", "name = 'a'\nmemory = 512\ndisk = [ 'file:/x,xvda,w'\n"), "xl", "xl.cfg line 3"),
        (write("nokey.cfg", "name = 'a'\nmemory 512\n"), "xl", "xl.cfg line 2"),
        (dir.path().join("missing.xml"), "libvirt", "No such file"),
    ];
    for (input, from, needle) in cases {
        let (code, stdout, err) = xen2kvm(&[
            "domxml",
            input.to_str().unwrap(),
            "--from",
            from,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{}: {err}", input.display());
        assert!(stdout.is_empty());
        assert_eq!(
            err.lines().count(),
            1,
            "one error line for {}: {err}",
            input.display()
        );
        assert!(
            err.contains(needle),
            "{}: expected {needle:?} in {err}",
            input.display()
        );
        assert!(!out.exists(), "no output file after an error");
        assert_eq!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("xen2kvm-tmp"))
                .count(),
            0
        );
    }
}

#[test]
fn domxml_lists_rules() {
    let (code, out, _) = xen2kvm(&["domxml", "--list"]);
    assert_eq!(code, 0);
    assert!(
        out.lines().count() >= 13 && out.contains("memballoon"),
        "{out}"
    );
}

#[test]
fn convert_lists_its_rules_in_order() {
    let (code, out, _) = xen2kvm(&["convert", "--list"]);
    assert_eq!(code, 0);
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            "initrd-drivers",
            "block-devices",
            "kernel-cmdline",
            "consoles",
            "guest-tools",
            "network-names",
            "rebuild-initrd",
            "grub-install",
            "grub-config",
            "default-kernel",
            "selinux-relabel"
        ]
    );
}

#[test]
fn convert_refuses_bad_requests_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 4096]).unwrap();
    let d = disk.to_str().unwrap();
    // No mode.
    let (code, _, err) = xen2kvm(&["convert", d]);
    assert_eq!(code, 1);
    assert!(
        err.contains("-o OUT") && err.contains("--in-place"),
        "{err}"
    );
    // An unknown rule is a usage error, before anything is opened.
    let (code, _, err) = xen2kvm(&["convert", d, "--dry-run", "--skip", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("'nope'") && err.contains("unknown rule") && err.contains("grub-install"),
        "{err}"
    );
    // An output that exists is never overwritten.
    let (code, _, err) = xen2kvm(&["convert", d, "-o", d]);
    assert_eq!(code, 1);
    assert!(err.contains("exists"), "{err}");
    // Copy and in place at once is a usage error.
    let (code, _, _) = xen2kvm(&["convert", d, "-o", "x.qcow2", "--in-place"]);
    assert_eq!(code, 2);
    // --target: not a Xen name (usage), a disk not given, a disk without one.
    let (code, _, err) = xen2kvm(&["convert", d, "--dry-run", "--target", &format!("vda={d}")]);
    assert_eq!(code, 2);
    assert!(err.contains("not a Xen disk name"), "{err}");
    let (code, _, err) = xen2kvm(&["convert", d, "--dry-run", "--target", "xvda=/other.img"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--target xvda=/other.img: not one of the disks given"),
        "{err}"
    );
    let other = dir.path().join("swap.img");
    std::fs::write(&other, vec![0u8; 4096]).unwrap();
    let o = other.to_str().unwrap();
    let (code, _, err) = xen2kvm(&[
        "convert",
        d,
        o,
        "--dry-run",
        "--target",
        &format!("xvda2={d}"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("swap.img has no --target"), "{err}");
    std::fs::remove_file(&other).unwrap();
    // A missing disk.
    let (code, _, err) = xen2kvm(&["convert", "/nonexistent.img", "--dry-run"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent.img"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "nothing but the disk: {left:?}");
}

/// A command that writes nothing dies of SIGTERM at once, as if it had no
/// handler (`timeout` and service managers rely on it): here `domxml -`,
/// blocked reading its standard input.
#[test]
fn a_read_only_command_dies_of_sigterm_at_once() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_xen2kvm"))
        .args(["domxml", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kept open until the child is gone: `wait` would close it, and the
    // child would then see the end of its input instead of the signal.
    let _stdin = child.stdin.take();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let t = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(15), "{status:?}");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}
