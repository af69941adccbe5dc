//! Tier 2: `xen2kvm inspect` on every test guest, in the real appliance:
//! the exact list of Xen-isms, the kernels and the verdict match
//! `expected/inspect/<guest>.txt` (through `xen2kvm-golden`: `UPDATE_GOLDEN=1`
//! rewrites them and still fails); the JSON matches `docs/inspect.schema.json`; bad inputs give one
//! clear error line and a non-zero exit.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use xen2kvm_tests::{
    e2e_enabled, overlay, repo_root, require_image, schema_errors, sha256_file, xen2kvm_bin,
};

fn inspect(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(xen2kvm_bin())
        .arg("inspect")
        .args(args)
        .output()
        .expect("running xen2kvm");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The parts of the report a test pins down, one per line.
fn render(j: &Value) -> String {
    let mut s = String::new();
    let os = &j["os"];
    s.push_str(&format!(
        "os: {} {} ({}), init {}\n",
        os["distro"], os["version"], os["product"], os["init"]
    ));
    if let Some(sv) = j["root_subvolume"].as_str() {
        s.push_str(&format!("root subvolume: {sv}\n"));
    }
    for snap in j["snapshots_ignored"].as_array().into_iter().flatten() {
        let snap = snap.as_str().unwrap_or("");
        s.push_str(&format!("snapshot not converted: {snap}\n"));
    }
    for k in j["kernels"].as_array().unwrap() {
        s.push_str(&format!(
            "kernel: {} xen_only={} virtio_blk={} initrd={} initrd_virtio_blk={}\n",
            k["version"],
            !k["xen_only"].is_null(),
            k["virtio"]["virtio_blk"],
            k["initrd"],
            k["initrd_virtio_blk"]
        ));
    }
    s.push_str(&format!("chosen kernel: {}\n", j["chosen_kernel"]));
    let b = &j["bootloader"];
    s.push_str(&format!(
        "bootloader: {} {} boot_code={}\n",
        b["kind"], b["config"], b["boot_code"]
    ));
    s.push_str(&format!(
        "default entry: {} {}\n",
        b["default_entry"]["title"], b["default_entry"]["kernel"]
    ));
    s.push_str(&format!("initrd tool: {}\n", j["initrd_tool"]));
    for x in j["xenisms"].as_array().unwrap() {
        s.push_str(&format!(
            "xenism: {} {}:{}\n",
            x["kind"].as_str().unwrap(),
            x["file"].as_str().unwrap(),
            x["line"]
        ));
    }
    let v = &j["verdict"];
    s.push_str(&format!("verdict: {}\n", v["status"].as_str().unwrap()));
    for n in v["needs"].as_array().into_iter().flatten() {
        s.push_str(&format!("  needs: {}\n", n.as_str().unwrap()));
    }
    for k in ["reason", "remedy"] {
        if let Some(t) = v[k].as_str() {
            s.push_str(&format!("  {k}: {t}\n"));
        }
    }
    s
}

const GUESTS: &[&str] = &[
    "sles11sp4-xenpv",
    "sles11-xenonly",
    "sles12sp5-xenpv",
    "sles15sp5-xenpv",
    "rhel6-xenpv",
    "debian12-xenpv",
];

#[test]
fn every_test_guest_matches_its_expected_report() {
    if !e2e_enabled() {
        eprintln!(
            "skipping: end-to-end tests are off (set XEN2KVM_E2E=1, or run `cargo xtask test`)"
        );
        return;
    }
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("docs/inspect.schema.json")).unwrap(),
    )
    .unwrap();
    let mut goldens = xen2kvm_golden::Goldens::new();
    let dir = tempfile::tempdir().unwrap();
    for name in GUESTS {
        let base = require_image(name).expect("e2e is on");
        let image = overlay(&base, dir.path());
        let before = sha256_file(&image);
        let t = std::time::Instant::now();
        let (code, out, err) = inspect(&[image.to_str().unwrap(), "--json"]);
        eprintln!(
            "inspect {name}: exit {code} in {:.0}s",
            t.elapsed().as_secs_f64()
        );
        let json: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{name}: no JSON ({e}); stderr: {err}"));
        let errs = schema_errors(&schema, &json, "$");
        assert!(
            errs.is_empty(),
            "{name}: JSON does not match docs/inspect.schema.json:\n{}",
            errs.join("\n")
        );
        let blocked = json["verdict"]["status"] == "blocked";
        assert_eq!(
            code,
            if blocked { 3 } else { 0 },
            "{name}: exit code; stderr: {err}"
        );
        assert_eq!(
            sha256_file(&image),
            before,
            "{name}: inspect wrote to the image"
        );
        let file = repo_root()
            .join("tests/expected/inspect")
            .join(format!("{name}.txt"));
        goldens.check(&file, &render(&json));
    }
    goldens.finish();
}

/// A partitioned raw disk made of ext4 filesystems populated from `trees`
/// (no loop devices: mke2fs -d on files, sfdisk on the image).
fn disk_of(dir: &Path, name: &str, trees: &[PathBuf]) -> PathBuf {
    let mut parts = Vec::new();
    for (i, t) in trees.iter().enumerate() {
        let fs = dir.join(format!("{name}-{i}.ext4"));
        let st = Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-d"])
            .arg(t)
            .arg(&fs)
            .arg("16M")
            .status()
            .unwrap();
        assert!(st.success());
        parts.push(fs);
    }
    let disk = dir.join(format!("{name}.raw"));
    let mib = 1 + 16 * parts.len() as u64 + 1;
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    let layout: String = (0..parts.len())
        .map(|i| format!("start={}, size=32768, type=83\n", 2048 + i * 32768))
        .collect();
    let mut child = Command::new("sfdisk")
        .args(["-q", "--label", "dos"])
        .arg(&disk)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(layout.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    for (i, p) in parts.iter().enumerate() {
        let st = Command::new("dd")
            .arg(format!("if={}", p.display()))
            .arg(format!("of={}", disk.display()))
            .args(["bs=1M", "conv=notrunc", "status=none"])
            .arg(format!("seek={}", 1 + 16 * i))
            .status()
            .unwrap();
        assert!(st.success());
    }
    disk
}

fn linux_tree(dir: &Path, name: &str) -> PathBuf {
    let t = dir.join(name);
    for d in ["etc", "bin", "usr/bin", "boot"] {
        std::fs::create_dir_all(t.join(d)).unwrap();
    }
    std::fs::write(t.join("etc/fstab"), "/dev/xvda1 / ext4 defaults 0 1\n").unwrap();
    std::fs::write(
        t.join("etc/os-release"),
        format!("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"{name}\"\n"),
    )
    .unwrap();
    t
}

#[test]
fn bad_inputs_give_one_clear_error() {
    if !e2e_enabled() {
        eprintln!(
            "skipping: end-to-end tests are off (set XEN2KVM_E2E=1, or run `cargo xtask test`)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = d.join("notes.txt");
    std::fs::write(&text, "this is not a disk image\n".repeat(100)).unwrap();
    let empty = d.join("empty.raw");
    std::fs::File::create(&empty)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let no_os_tree = d.join("data");
    std::fs::create_dir_all(no_os_tree.join("music")).unwrap();
    std::fs::write(no_os_tree.join("music/list.txt"), "x").unwrap();
    let no_os = disk_of(d, "no-os", &[no_os_tree]);
    let two = disk_of(
        d,
        "two-roots",
        &[linux_tree(d, "alpha"), linux_tree(d, "beta")],
    );
    let truncated = d.join("truncated.qcow2");
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&truncated)
        .arg("1G")
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len().min(300)]).unwrap();
    // NTFS with \Windows\System32 (registry hives empty: inspection finds
    // no OS, the tool still names it).
    let windows = d.join("windows.raw");
    std::fs::File::create(&windows)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let script = "run\npart-disk /dev/sda mbr\nmkfs ntfs /dev/sda1\nmount /dev/sda1 /\nmkdir-p /Windows/System32/config\ntouch /Windows/System32/config/SOFTWARE\ntouch /Windows/System32/config/SYSTEM\n";
    let mut gf = Command::new("guestfish")
        .arg("-a")
        .arg(&windows)
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("guestfish (cargo xtask deps installs libguestfs-tools)");
    {
        use std::io::Write;
        gf.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
    }
    assert!(gf.wait().unwrap().success(), "making the Windows-like disk");
    let cases: Vec<(PathBuf, &str)> = vec![
        (windows, "Windows-like (\\Windows\\System32 on /dev/sda1, no Linux root): xen2kvm converts Linux guests only"),
        (d.join("does-not-exist.img"), "No such file"),
        (text, "no operating system"),
        (empty, "no operating system"),
        (no_os, "no operating system"),
        (truncated, "truncated.qcow2"),
        (two.clone(), "several operating systems found (/dev/sda1, /dev/sda2): choose one with --root"),
    ];
    for (input, needle) in cases {
        let t = std::time::Instant::now();
        let (code, out, err) = inspect(&[input.to_str().unwrap()]);
        eprintln!(
            "inspect {}: exit {code} in {:.0}s: {}",
            input.display(),
            t.elapsed().as_secs_f64(),
            err.trim()
        );
        assert_eq!(code, 1, "{}: {err}", input.display());
        assert!(out.is_empty(), "{}: printed {out}", input.display());
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{}: one error line, got: {err}",
            input.display()
        );
        assert!(
            err.contains(needle),
            "{}: expected {needle:?} in {err}",
            input.display()
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // --root picks one of the two.
    let (code, out, err) = inspect(&[two.to_str().unwrap(), "--root", "/dev/sda2", "--json"]);
    assert_eq!(code, 3, "{err}");
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["root"], "/dev/sda2");
    assert_eq!(j["os"]["product"], "beta");
}
