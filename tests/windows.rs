//! Tier 2: Windows guests in the real appliance. The phony Windows Server
//! 2003 (SUSE VMDP) and 2008 R2 (Xen Project/XenServer drivers) disks of
//! `images/win*` have real NTFS volumes and real registry hives; a fake
//! virtio-win tree (placeholder files in the ISO's layout) stands for the
//! drivers. No Windows boots here: these tests prove what is read and what
//! is written (the registry exported with `hivexregedit`, the files added),
//! never that Windows starts on KVM.
//!
//! - `inspect`: product, version, control set, the Xen PV drivers and class
//!   filters, the virtio driver, the verdict (blocked without
//!   `--virtio-win`, naming it) match `expected/inspect/<guest>.txt`, and the
//!   JSON matches the schema;
//! - `convert` without drivers is blocked before anything is written;
//!   `--dry-run` lists every key and file and changes nothing; a copy
//!   conversion's registry and files match `expected/convert/<guest>.*`,
//!   nothing Xen is left (`inspect` of the result: ready) and the source is
//!   unchanged; `--ide` installs no driver; in place is refused;
//! - `migrate` of the 2003 guest's xl.cfg with the drivers as an ISO gives
//!   a domain with the i440fx machine, local time and virtio devices, and
//!   `inspect` of the migrated disk says ready with no Xen-ism; its
//!   `--boot-check` is skipped with a warning (it reads a Linux console).

#![allow(clippy::print_stderr)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use xen2kvm_tests::{
    e2e_enabled, fake_virtio_win, fake_virtio_win_iso, guestfish, overlay, repo_root,
    require_image, rule_lines, schema_errors, sha256_file, xen2kvm_bin,
};

/// Runs xen2kvm; returns the exit code, stdout and stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let t = std::time::Instant::now();
    let out = Command::new(xen2kvm_bin())
        .args(args)
        .output()
        .expect("running xen2kvm");
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!(
        "xen2kvm {}: exit {:?} in {:.0}s",
        args.join(" "),
        out.status.code(),
        t.elapsed().as_secs_f64()
    );
    (out.status.code().unwrap_or(-1), o, e)
}

fn json(out: &str, err: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("no JSON ({e}): {out}{err}"))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// inspect's report, one fact per line.
fn render_inspect(j: &Value) -> String {
    let os = &j["os"];
    let w = &j["windows"];
    let mut t = format!(
        "os: {} {} ({}) {}\nrelease: {} build {} server {}\nsystem root: {}, control set {}\n",
        s(&os["distro"]),
        s(&os["version"]),
        s(&os["product"]),
        s(&os["arch"]),
        s(&w["release"]),
        w["build"],
        w["server"],
        s(&w["systemroot"]),
        s(&w["control_set"])
    );
    for d in w["pv_drivers"].as_array().unwrap() {
        t.push_str(&format!(
            "pv driver: {} [{}] start {} ({})\n",
            s(&d["name"]),
            s(&d["set"]),
            d["start"],
            s(&d["display"])
        ));
    }
    for c in w["class_filters"].as_array().unwrap() {
        t.push_str(&format!(
            "class filter: {} {} {}: {}\n",
            s(&c["class"]),
            s(&c["guid"]),
            s(&c["kind"]),
            c["drivers"]
        ));
    }
    t.push_str(&format!(
        "virtio storage: {}\nnetkvm: {}, firstboot: {}\ndomain: disk bus {}, nic {}\n",
        w["virtio_storage"],
        w["netkvm"],
        w["firstboot"],
        s(&w["disk_bus"]),
        s(&w["nic"])
    ));
    for x in j["xenisms"].as_array().unwrap() {
        t.push_str(&format!("xenism: {} {}\n", s(&x["kind"]), s(&x["file"])));
    }
    let v = &j["verdict"];
    t.push_str(&format!("verdict: {}\n", s(&v["status"])));
    for n in v["needs"].as_array().into_iter().flatten() {
        t.push_str(&format!("  needs: {}\n", s(n)));
    }
    for k in ["reason", "remedy"] {
        if let Some(r) = v[k].as_str() {
            t.push_str(&format!("  {k}: {r}\n"));
        }
    }
    t
}

fn inspect(
    image: &Path,
    extra: &[&str],
    goldens: Option<(&mut xen2kvm_golden::Goldens, &str)>,
) -> Value {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("docs/inspect.schema.json")).unwrap(),
    )
    .unwrap();
    let mut args = vec!["inspect", image.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    let j = json(&out, &err);
    let errs = schema_errors(&schema, &j, "$");
    assert!(
        errs.is_empty(),
        "inspect JSON vs schema:\n{}",
        errs.join("\n")
    );
    let blocked = j["verdict"]["status"] == "blocked";
    assert_eq!(code, if blocked { 3 } else { 0 }, "{err}");
    if let Some((g, name)) = goldens {
        g.check(
            &repo_root().join(format!("tests/expected/inspect/{name}.txt")),
            &render_inspect(&j),
        );
    }
    j
}

/// The converted guest as a golden: the report's changes, the files added
/// (listing, and the first-boot script), the registry keys the conversion
/// touched, exported from the disk by `hivexregedit`.
fn converted_golden(out: &Path, report: &Value, g: &mut xen2kvm_golden::Goldens, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("SYSTEM");
    let soft = dir.path().join("SOFTWARE");
    let w = &report["windows"];
    let root = if w["release"] == "Windows Server 2003" {
        "/WINDOWS/system32/config"
    } else {
        "/Windows/System32/config"
    };
    let (sys_name, soft_name) = if root.starts_with("/WINDOWS") {
        ("system", "software")
    } else {
        ("SYSTEM", "SOFTWARE")
    };
    let script = format!(
        "download {root}/{sys_name} {}\ndownload {root}/{soft_name} {}\necho == files\nfind \"/Program Files/Guestfs\"\necho == staged\nglob ls /*/Drivers/VirtIO\necho == firstboot.bat\ncat \"/Program Files/Guestfs/Firstboot/firstboot.bat\"\necho == viostor.sys\nglob cat /*/[Ss]ystem32/drivers/viostor.sys\n",
        sys.display(),
        soft.display()
    );
    let listing = guestfish(out, false, &script);
    let mut text = String::from("== changes\n");
    text.push_str(&rule_lines(&report["changes"]));
    text.push_str(&listing.replace('\r', "\\r"));
    let cs = s(&w["control_set"]);
    for (hive, prefix, keys) in [
        (
            &sys,
            "HKEY_LOCAL_MACHINE\\SYSTEM",
            vec![
                format!("\\{cs}\\Services"),
                format!("\\{cs}\\Control\\Class"),
                format!("\\{cs}\\Control\\CriticalDeviceDatabase"),
            ],
        ),
        (
            &soft,
            "HKEY_LOCAL_MACHINE\\SOFTWARE",
            vec!["\\Microsoft\\Windows\\CurrentVersion".to_owned()],
        ),
    ] {
        for key in keys {
            let o = Command::new("hivexregedit")
                .args(["--export", "--unsafe-printable-strings"])
                .arg(hive)
                .arg(&key)
                .args(["--prefix", prefix])
                .output()
                .expect("hivexregedit (cargo xtask deps installs libwin-hivex-perl)");
            assert!(
                o.status.success(),
                "hivexregedit {key}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            text.push_str(&String::from_utf8_lossy(&o.stdout));
        }
    }
    g.check(
        &repo_root().join(format!("tests/expected/convert/{name}.txt")),
        &text,
    );
}

#[test]
fn windows_guests_are_inspected_and_converted_offline() {
    if !e2e_enabled() {
        eprintln!(
            "skipping: end-to-end tests are off (set XEN2KVM_E2E=1, or run `cargo xtask test`)"
        );
        return;
    }
    let mut g = xen2kvm_golden::Goldens::new();
    let dir = tempfile::tempdir().unwrap();
    let tree = fake_virtio_win(&dir.path().join("tree"));
    let tree_arg = tree.to_str().unwrap();

    // Windows Server 2008 R2, Xen Project / XenServer drivers and filters.
    let name = "win2008r2-xenpv";
    let base = require_image(name).expect("e2e is on");
    let src = overlay(&base, dir.path());
    let before = sha256_file(&src);
    let j = inspect(&src, &[], Some((&mut g, name)));
    assert_eq!(j["verdict"]["status"], "blocked");
    assert!(s(&j["verdict"]["remedy"]).contains("--virtio-win"));

    let (code, out, err) = run(&[
        "convert",
        src.to_str().unwrap(),
        "--dry-run",
        "--virtio-win",
        tree_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "would change:",
        "[xen-filters] HKLM\\SYSTEM\\ControlSet002\\Control\\Class\\{4D36E97D-E325-11CE-BFC1-08002BE10318}: UpperFilters = multi: (was multi:\"XENFILT\")",
        "[virtio-storage] /Windows/System32/drivers/viostor.sys: added",
        "[xen-drivers] HKLM\\SYSTEM\\ControlSet002\\Services\\xenvbd: Start = dword:00000004 (was dword:00000000)",
        "result: would-change",
    ] {
        assert!(out.contains(want), "dry run lacks {want:?}:\n{out}");
    }
    assert_eq!(sha256_file(&src), before, "the dry run wrote to the disk");

    let conv = dir.path().join("w2k8r2.qcow2");
    let (code, out, err) = run(&[
        "convert",
        src.to_str().unwrap(),
        "-o",
        conv.to_str().unwrap(),
        "--virtio-win",
        tree_arg,
        "--json",
    ]);
    let report = json(&out, &err);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["result"], "converted");
    assert_eq!(report["residue"], serde_json::json!([]));
    assert_eq!(report["windows"]["disk_bus"], "virtio");
    assert_eq!(report["windows"]["nic"], "virtio");
    assert_eq!(
        sha256_file(&src),
        before,
        "the copy conversion wrote to the source"
    );
    converted_golden(&conv, &report, &mut g, name);
    let after = inspect(&conv, &["--virtio-win", tree_arg], None);
    assert_eq!(after["verdict"]["status"], "ready", "{after:#}");
    assert_eq!(after["xenisms"], serde_json::json!([]));
    assert_eq!(after["windows"]["virtio_storage"]["critical_device"], true);

    let ide = dir.path().join("w2k8r2-ide.qcow2");
    let (code, out, err) = run(&[
        "convert",
        src.to_str().unwrap(),
        "-o",
        ide.to_str().unwrap(),
        "--ide",
        "--json",
    ]);
    let r = json(&out, &err);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["windows"]["disk_bus"], "ide");
    assert_eq!(r["windows"]["nic"], "e1000");
    let rules: Vec<&str> = r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(&c["rule"]))
        .collect();
    assert!(
        rules
            .iter()
            .all(|r| *r == "xen-drivers" || *r == "xen-filters"),
        "{rules:?}"
    );

    let (code, out, err) = run(&[
        "convert",
        src.to_str().unwrap(),
        "--in-place",
        "--virtio-win",
        tree_arg,
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("copy only"), "{out}");
    assert_eq!(
        sha256_file(&src),
        before,
        "a refused in-place conversion wrote to the disk"
    );

    // Windows Server 2003, SUSE VMDP: blocked without drivers, then
    // migrated from its xl.cfg with the drivers as an ISO.
    let name = "win2003-xenpv";
    let base = require_image(name).expect("e2e is on");
    // A copy of its own: migrate refuses a disk with a backing file.
    let src = dir.path().join("w2k3-disk.qcow2");
    let st = Command::new("qemu-img")
        .args(["convert", "-O", "qcow2"])
        .arg(&base)
        .arg(&src)
        .status()
        .expect("qemu-img");
    assert!(st.success());
    let before = sha256_file(&src);
    let j = inspect(&src, &[], Some((&mut g, name)));
    assert_eq!(j["windows"]["pv_drivers"].as_array().unwrap().len(), 3);
    let blocked = dir.path().join("blocked.qcow2");
    let (code, out, err) = run(&[
        "convert",
        src.to_str().unwrap(),
        "-o",
        blocked.to_str().unwrap(),
        "--json",
    ]);
    let r = json(&out, &err);
    assert_eq!(code, 3, "{r:#}");
    assert!(s(&r["error"]).contains("--virtio-win"), "{r:#}");
    assert!(!blocked.exists() && !dir.path().join("blocked.qcow2.partial").exists());

    let iso = fake_virtio_win_iso(&dir.path().join("iso"));
    let cfg = dir.path().join("w2k3.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = \"w2k3-xen\"\nbuilder = \"hvm\"\nmemory = 1024\nvcpus = 1\ndisk = [ '{},qcow2,hda,w' ]\nvif = [ 'mac=00:16:3e:2a:03:01,bridge=xenbr0,model=rtl8139' ]\nlocaltime = 1\nvnc = 1\n",
            src.display()
        ),
    )
    .unwrap();
    let os = dir.path().join("out");
    std::fs::create_dir_all(&os).unwrap();
    let (code, out, err) = run(&[
        "migrate",
        "-i",
        "xl",
        cfg.to_str().unwrap(),
        "-o",
        "local",
        "-os",
        os.to_str().unwrap(),
        "-of",
        "qcow2",
        "--virtio-win",
        iso.to_str().unwrap(),
        "--boot-check",
        "--json",
    ]);
    let r = json(&out, &err);
    assert_eq!(code, 0, "{r:#}\n{err}");
    assert!(r["boot_check"].is_null(), "{r:#}");
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| s(w).contains("skipped for a Windows guest")),
        "{r:#}"
    );
    assert_eq!(r["conversion"]["result"], "converted", "{r:#}");
    let xml = std::fs::read_to_string(os.join("w2k3-xen.xml")).expect("the domain XML");
    for want in [
        "machine='pc'",
        "<clock offset='localtime'>",
        "<timer name='rtc' tickpolicy='catchup'/>",
        "bus='virtio'",
        "<model type='virtio'/>",
    ] {
        assert!(xml.contains(want), "migrated domain lacks {want}:\n{xml}");
    }
    assert!(
        !xml.contains("<hyperv"),
        "Windows 2003 gets no Hyper-V enlightenments:\n{xml}"
    );
    assert_eq!(sha256_file(&src), before, "migrate wrote to the source");
    let migrated = std::path::PathBuf::from(s(&r["disks"][0]["output"]));
    converted_golden(&migrated, &r["conversion"], &mut g, name);
    let after = inspect(&migrated, &["--virtio-win", iso.to_str().unwrap()], None);
    assert_eq!(after["verdict"]["status"], "ready", "{after:#}");
    assert_eq!(after["xenisms"], serde_json::json!([]));
    g.finish();
}
