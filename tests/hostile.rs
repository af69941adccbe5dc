//! Tier 2: hostile guests in the real appliance. The disks are made here
//! in milliseconds (`mke2fs -d` from the `debian12-xenpv` editor case, no
//! loop device, no image build), each with one hostile file; the rest of
//! the hostile inputs are the tier-1 suites (`crates/editor/tests/hostile.rs`,
//! `crates/domxml/tests/hostile.rs`).
//!
//! Each run is watched for its peak memory (`VmHWM` of the xen2kvm process,
//! sampled while it runs) and must end with an error naming the file, the
//! source untouched, no output left.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use xen2kvm_tests::{e2e_enabled, repo_root, sha256_file, xen2kvm_bin};

/// A raw disk holding one ext4 filesystem made from the editor's
/// `debian12-xenpv` case, after `mutate` changed the tree.
fn disk(dir: &Path, mutate: impl FnOnce(&Path)) -> PathBuf {
    let tree = dir.join("tree");
    let st = Command::new("cp")
        .arg("-a")
        .arg(repo_root().join("crates/editor/test_data/debian12-xenpv/before"))
        .arg(&tree)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::create_dir_all(tree.join("dev")).unwrap();
    mutate(&tree);
    let img = dir.join("hostile.img");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("64M")
        .output()
        .expect("running mke2fs (e2fsprogs)");
    assert!(
        out.status.success(),
        "mke2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    img
}

/// Runs xen2kvm; returns its exit code, stderr and peak resident memory
/// in KiB.
fn run(args: &[&str]) -> (Option<i32>, String, u64) {
    let mut child = Command::new(xen2kvm_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "xen2kvm {}: exit {:?}, peak {peak} KiB: {err}",
        args.join(" "),
        out.status.code()
    );
    (out.status.code(), err, peak)
}

/// The most memory a run on a hostile guest may take (the host's side; the
/// appliance is a separate process with its own fixed memory).
const MAX_KIB: u64 = 200 * 1024;

#[test]
fn a_fstab_of_a_gib_is_refused_by_name_in_bounded_memory() {
    if !e2e_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = disk(dir.path(), |t| {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(t.join("etc/fstab"))
            .unwrap();
        f.set_len(1 << 30).unwrap();
    });
    let sha = sha256_file(&img);
    let (code, err, peak) = run(&["inspect", img.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("/etc/fstab") && err.contains("larger than"),
        "{err}"
    );
    assert!(peak < MAX_KIB, "inspect took {peak} KiB on a 1 GiB fstab");
    assert_eq!(sha256_file(&img), sha);
}

#[test]
fn a_config_link_to_a_device_node_is_refused_by_name_and_nothing_is_written() {
    if !e2e_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = disk(dir.path(), |t| {
        // /dev/zero in the guest: a real character device node.
        let st = Command::new("mknod")
            .arg(t.join("dev/zero"))
            .args(["c", "1", "5"])
            .status()
            .unwrap();
        assert!(st.success(), "mknod (the tests run as root)");
        let grub = t.join("etc/default/grub");
        std::fs::remove_file(&grub).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &grub).unwrap();
    });
    let sha = sha256_file(&img);
    let out = dir.path().join("out.qcow2");
    let (code, err, peak) = run(&[
        "convert",
        img.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("/etc/default/grub") && err.contains("not a regular file"),
        "{err}"
    );
    assert!(peak < MAX_KIB, "convert took {peak} KiB");
    assert!(!out.exists() && !dir.path().join("out.qcow2.partial").exists());
    assert_eq!(sha256_file(&img), sha, "the source was written");
}
