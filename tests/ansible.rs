//! Tier 2: the `xen2kvm.migration` Ansible collection, run for real by
//! `ansible-playbook` against hosts made on this machine: one KVM host
//! (`ansible_connection=local`) migrating three guests of one "Xen host"
//! (libvirt's test driver serves their shut-off Xen domains; their disks
//! are raw files here, as on shared storage) at a concurrency of two. One
//! guest is blocked (only a Xen-only kernel): the two others are migrated
//! and defined in libvirtd (community.libvirt), the blocked one is reported
//! with its remedy, the play fails at the end and the summary (table and
//! JSON) says why. Run again: the migrated ones are `done` at once and not
//! touched, only the blocked one is tried again.

#![allow(clippy::print_stderr)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use xen2kvm_tests::{ensure_libvirtd, repo_root, require_image, virsh, xen2kvm_bin};

/// (inventory name, image, KVM domain name)
const GUESTS: [(&str, &str, &str); 3] = [
    ("xenonly", "sles11-xenonly", "x2k-ans-xenonly"),
    ("sles11", "sles11sp4-xenpv", "x2k-ans-sles11"),
    ("rhel6", "rhel6-xenpv", "x2k-ans-rhel6"),
];

struct Undefine;

impl Drop for Undefine {
    fn drop(&mut self) {
        for (_, _, name) in GUESTS {
            let _ = virsh(&["undefine", name]);
        }
    }
}

fn playbook(dir: &Path, inventory: &Path, extra: &[String]) -> (i32, String) {
    let coll = dir.join("collections/ansible_collections/xen2kvm");
    if !coll.exists() {
        std::fs::create_dir_all(&coll).unwrap();
        std::os::unix::fs::symlink(repo_root().join("ansible"), coll.join("migration")).unwrap();
    }
    let t = Instant::now();
    let mut cmd = Command::new("ansible-playbook");
    cmd.arg("-i")
        .arg(inventory)
        .arg(repo_root().join("ansible/playbooks/migrate.yml"))
        .env("ANSIBLE_COLLECTIONS_PATH", dir.join("collections"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_LOCAL_TEMP", dir.join("ansible-tmp"))
        .env("ANSIBLE_REMOTE_TEMP", dir.join("ansible-tmp"));
    for e in extra {
        cmd.arg("-e").arg(e);
    }
    let out = cmd
        .output()
        .expect("ansible-playbook (cargo xtask deps installs ansible)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "ansible-playbook: exit {:?} in {:.0}s",
        out.status.code(),
        t.elapsed().as_secs_f64()
    );
    (out.status.code().unwrap_or(-1), text)
}

fn summary(path: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_array().unwrap().clone()
}

fn result_of<'a>(s: &'a [Value], guest: &str) -> &'a Value {
    s.iter()
        .find(|r| r["guest"] == guest)
        .unwrap_or_else(|| panic!("no result for {guest}: {s:?}"))
}

fn state(dir: &Path, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
        .unwrap()
}

#[test]
fn a_fleet_of_three_with_one_blocked_is_migrated_and_a_rerun_retries_only_it() {
    let mut images = Vec::new();
    for (_, image, _) in GUESTS {
        let Some(p) = require_image(image) else {
            return;
        };
        images.push(p);
    }
    ensure_libvirtd();
    let _undefine = Undefine;
    for (_, _, name) in GUESTS {
        let _ = virsh(&["undefine", name]);
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The "Xen host": raw disks, and their domains as libvirt serves them.
    let mut domains = String::new();
    for ((guest, _, _), image) in GUESTS.iter().zip(&images) {
        let disk = d.join(format!("{guest}.img"));
        let st = Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(image)
            .arg(&disk)
            .status()
            .unwrap();
        assert!(st.success());
        domains.push_str(&format!(
            "  <domain type='xen' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>{guest}</name>
    <memory>524288</memory>
    <bootloader>/usr/bin/pygrub</bootloader>
    <os><type>linux</type></os>
    <devices>
      <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/><target dev='xvda' bus='xen'/></disk>
      <interface type='bridge'><mac address='00:16:3e:0a:0b:{:02x}'/><source bridge='xenbr0'/></interface>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
",
            disk.display(),
            domains.len() % 256
        ));
    }
    let node = d.join("xen-node.xml");
    std::fs::write(&node, format!("<node>\n{domains}</node>\n")).unwrap();
    let mut guests = String::new();
    for (guest, _, name) in GUESTS {
        guests.push_str(&format!(
            "        {guest}: {{xen_host: xen-a, kvm_host: kvm-a, kvm_name: {name}}}\n"
        ));
    }
    let inventory = d.join("inventory.yml");
    std::fs::write(
        &inventory,
        format!(
            "all:
  children:
    xen_hosts:
      hosts:
        xen-a: {{xen_uri: 'test://{}'}}
    kvm_hosts:
      hosts:
        kvm-a: {{ansible_connection: local, ansible_python_interpreter: /usr/bin/python3, xen2kvm_concurrency: 2}}
    guests:
      hosts:
{guests}",
            node.display()
        ),
    )
    .unwrap();
    let out = d.join("out");
    let states = d.join("state");
    let summary_file = d.join("summary.json");
    let extra = vec![
        format!("xen2kvm_bin={}", xen2kvm_bin().display()),
        format!("xen2kvm_output_dir={}", out.display()),
        format!("xen2kvm_state_dir={}", states.display()),
        format!("xen2kvm_summary_file={}", summary_file.display()),
        "xen2kvm_poll_seconds=2".to_owned(),
    ];

    // First run.
    let (code, text) = playbook(d, &inventory, &extra);
    eprintln!("{text}");
    assert_eq!(code, 2, "the play fails at the end (one guest blocked)");
    assert!(text.contains("xenonly not migrated"), "{text}");
    for g in ["xenonly", "sles11", "rhel6"] {
        assert!(
            text.lines()
                .any(|l| l.contains(g) && l.contains("xen-a") && l.contains("kvm-a")),
            "the table lacks {g}"
        );
    }
    let s = summary(&summary_file);
    assert_eq!(s.len(), 3, "{s:#?}");
    for g in ["sles11", "rhel6"] {
        let r = result_of(&s, g);
        assert_eq!(r["result"], "migrated", "{r:#}");
        assert_eq!(r["defined"], true, "{r:#}");
        assert_eq!(r["source_host"], "xen-a");
        assert_eq!(r["target_host"], "kvm-a");
        assert!(!r["phases"].as_array().unwrap().is_empty());
    }
    let blocked = result_of(&s, "xenonly");
    assert_eq!(blocked["result"], "blocked", "{blocked:#}");
    assert_eq!(blocked["exit"], 3, "{blocked:#}");
    assert_eq!(blocked["defined"], false);
    let why = blocked["error"].as_str().unwrap();
    assert!(why.contains("Xen"), "the remedy is named: {why}");
    for (_, _, name) in &GUESTS[1..] {
        let (ok, info) = virsh(&["dominfo", name]);
        assert!(ok, "{name} is not defined: {info}");
    }
    assert!(!virsh(&["dominfo", "x2k-ans-xenonly"]).0);
    // Two at a time: the first batch's migrations overlapped.
    let (a, b) = (
        state(&states, "x2k-ans-xenonly"),
        state(&states, "x2k-ans-sles11"),
    );
    let span = |v: &Value| {
        (
            v["started"].as_u64().unwrap(),
            v["finished"].as_u64().unwrap(),
        )
    };
    let ((a0, a1), (b0, b1)) = (span(&a), span(&b));
    assert!(
        a0 <= b1 && b0 <= a1,
        "not concurrent: {a0}-{a1} and {b0}-{b1}"
    );
    let disk = out.join("x2k-ans-sles11-vda.img");
    let mtime = std::fs::metadata(&disk).unwrap().modified().unwrap();

    // Second run: the migrated ones are done, only the blocked one runs.
    let (code, text) = playbook(d, &inventory, &extra);
    eprintln!("{text}");
    assert_eq!(code, 2);
    let s = summary(&summary_file);
    for g in ["sles11", "rhel6"] {
        let r = result_of(&s, g);
        assert_eq!(r["result"], "done", "{r:#}");
        assert_eq!(r["defined"], true, "{r:#}");
    }
    assert_eq!(result_of(&s, "xenonly")["result"], "blocked");
    assert_eq!(std::fs::metadata(&disk).unwrap().modified().unwrap(), mtime);
    let again = state(&states, "x2k-ans-xenonly");
    assert!(
        again["started"].as_u64() >= a["finished"].as_u64(),
        "the blocked guest was tried again"
    );
}
