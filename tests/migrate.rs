//! `xen2kvm migrate` end to end (tiers 2 and 3).
//!
//! - The Debian Xen PV guest, given the domain XML a Xen host's `virsh
//!   dumpxml` shows for it (type xen, pygrub, `xvda`, a `vif` on `xenbr0`
//!   with its script, a Xen console, a CD-ROM), on a raw disk file as Xen
//!   hosts keep them: migrated into a real libvirtd with a directory pool,
//!   backed up (`sha256sum -c` accepts the manifest; a flipped byte is
//!   found by `backup --verify`), boot-checked, defined; then libvirt
//!   itself starts that definition (as `type='qemu'`: KVM does not run
//!   guests on these machines) and its serial console shows the login.
//!   This is the copy-mode conversion proof of the Debian guest too.
//! - A phony SLES guest (quick to convert): `-i libvirt` through libvirt's
//!   test driver (a shut-off Xen domain on a block device), `-o local
//!   -oa sparse`, and `-i xl` with its qcow2 disk read over ssh from an
//!   sshd on 127.0.0.1, backed up, `-oa preallocated`; allocated sizes
//!   checked.
//! - Bad inputs: one clear line, exit 1, nothing left behind.

#![allow(clippy::print_stderr)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use xen2kvm_tests::{
    ensure_libvirtd, require_image, sha256_file, virsh, xen2kvm_bin, xen_domain_xml,
};

/// Runs `xen2kvm migrate ARGS… --machine-readable`: exit code, the event
/// lines, the final report.
fn migrate(args: &[&str], env: &[(&str, &str)]) -> (i32, Vec<Value>, Value) {
    let t = Instant::now();
    let out = migrate_command(args)
        .envs(env.iter().copied())
        .output()
        .expect("running xen2kvm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        eprintln!("{stderr}");
    }
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a --machine-readable line is not JSON ({e}): {l}"))
        })
        .collect();
    let report = events
        .last()
        .filter(|e| e["event"] == "result")
        .map(|e| e["report"].clone())
        .unwrap_or_else(|| panic!("no result event: {events:?}\n{stderr}"));
    eprintln!(
        "migrate {}: {} in {:.0}s (phases: {})",
        args.join(" "),
        report["result"],
        t.elapsed().as_secs_f64(),
        report["phases"]
    );
    (out.status.code().unwrap_or(-1), events, report)
}

/// The state files of this test process (never the system's).
fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("xen2kvm-test-state-{}", std::process::id()))
}

fn migrate_command(args: &[&str]) -> Command {
    let mut c = Command::new(xen2kvm_bin());
    c.arg("migrate")
        .args(args)
        .arg("--machine-readable")
        .env("XEN2KVM_STATE_DIR", state_dir());
    c
}

fn qemu_img_raw(src: &Path, dst: &Path) {
    let st = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(src)
        .arg(dst)
        .status()
        .expect("qemu-img");
    assert!(st.success());
}

fn allocated(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().blocks() * 512
}

/// A transient directory pool and a bridge, removed when dropped.
struct LibvirtPlace {
    pool: String,
    bridge: String,
    domains: Vec<String>,
}

impl LibvirtPlace {
    fn new(pool: &str, dir: &Path, bridge: &str) -> LibvirtPlace {
        ensure_libvirtd();
        let _ = virsh(&["pool-destroy", pool]);
        let (ok, out) = virsh(&[
            "pool-create-as",
            pool,
            "dir",
            "--target",
            dir.to_str().unwrap(),
        ]);
        assert!(ok, "pool-create-as: {out}");
        let _ = Command::new("ip")
            .args(["link", "add", bridge, "type", "bridge"])
            .status();
        let st = Command::new("ip")
            .args(["link", "set", bridge, "up"])
            .status()
            .expect("ip (iproute2)");
        assert!(st.success(), "cannot bring up bridge {bridge}");
        LibvirtPlace {
            pool: pool.to_owned(),
            bridge: bridge.to_owned(),
            domains: Vec::new(),
        }
    }
}

impl Drop for LibvirtPlace {
    fn drop(&mut self) {
        for d in &self.domains {
            let _ = virsh(&["destroy", d]);
            let _ = virsh(&["undefine", d]);
        }
        let _ = virsh(&["pool-destroy", &self.pool]);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// Waits for `needle` in `file` (a console log), up to `limit`.
fn wait_for(file: &Path, needles: &[&str], limit: Duration) -> Option<String> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Ok(text) = std::fs::read(file) {
            let text = String::from_utf8_lossy(&text).into_owned();
            if needles.iter().any(|n| text.contains(n)) {
                return Some(text);
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    None
}

#[test]
fn debian_xen_domain_migrates_into_libvirt_is_backed_up_and_boots_there() {
    let Some(image) = require_image("debian12-xenpv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let xen = dir.path().join("xen");
    let pool_dir = dir.path().join("pool");
    let backup = dir.path().join("backup");
    std::fs::create_dir_all(&xen).unwrap();
    std::fs::create_dir_all(&pool_dir).unwrap();
    // A Xen host's raw disk file.
    let disk = xen.join("disk.img");
    qemu_img_raw(&image, &disk);
    let source_sha = sha256_file(&disk);
    let xml = xen.join("deb12.xml");
    std::fs::write(&xml, xen_domain_xml("deb12", &disk)).unwrap();

    let name = "x2k-test-migrated";
    let mut place = LibvirtPlace::new("x2k-test-pool", &pool_dir, "x2kbr0");
    place.domains.push(name.to_owned());
    let _ = virsh(&["undefine", name]);
    let (code, events, report) = migrate(
        &[
            "-i",
            "libvirtxml",
            xml.to_str().unwrap(),
            "-o",
            "libvirt",
            "-os",
            "x2k-test-pool",
            "-on",
            name,
            "-b",
            "xenbr0:x2kbr0",
            "--backup",
            backup.to_str().unwrap(),
            "--boot-check",
            "--require-network",
            "--log-dir",
            dir.path().join("logs").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["result"], "migrated", "{report:#}");

    // Events: every phase started and ended, in order, with progress.
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "phase-start")
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        started,
        [
            "check",
            "copy",
            "backup",
            "convert",
            "domain",
            "boot-check",
            "output"
        ]
    );
    assert_eq!(
        events.iter().filter(|e| e["event"] == "phase-end").count(),
        started.len()
    );
    let copy_progress: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "progress" && e["phase"] == "copy")
        .collect();
    assert!(!copy_progress.is_empty(), "no copy progress: {events:?}");
    let last = copy_progress.last().unwrap();
    assert_eq!(last["done"], last["total"], "{last}");
    assert!(events
        .iter()
        .any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("cdrom xvdc")));

    // The conversion: complete, nothing left.
    let conv = &report["conversion"];
    assert_eq!(conv["result"], "converted", "{conv:#}");
    assert_eq!(conv["residue"], serde_json::json!([]), "{conv:#}");
    let steps: Vec<&str> = conv["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["rebuild-initrd", "grub-config"]);
    assert_eq!(conv["journal"], Value::Null, "a copy keeps no journal");
    assert_eq!(report["boot_check"]["verdict"], "booted", "{report:#}");
    // Its networkd config names enX0: the conversion pinned that name to the
    // domain's MAC, and the booted guest asked for an address from it.
    assert!(
        conv["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["rule"] == "network-names"
                && c["what"]
                    .as_str()
                    .unwrap()
                    .contains("MAC 00:16:3e:5a:6b:7c")),
        "{conv:#}"
    );
    assert_eq!(
        report["boot_check"]["mac"], "00:16:3e:5a:6b:7c",
        "{report:#}"
    );
    assert_eq!(report["boot_check"]["network"], "up", "{report:#}");
    assert!(
        report["boot_check"]["network_evidence"]
            .as_str()
            .unwrap()
            .contains("DHCP request"),
        "{report:#}"
    );

    // One read of the raw source fed the output, the backup and the hash.
    let d = &report["disks"][0];
    assert_eq!(d["reads"], 1, "{d}");
    assert_eq!(d["sha256"], source_sha.as_str());
    assert_eq!(d["sha256_of"], "guest data");
    assert_eq!(d["source_unchanged"], true);
    assert_eq!(sha256_file(&disk), source_sha, "the source must not change");

    // The backup: sha256sum -c accepts it; a flipped byte is found.
    let st = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&backup)
        .status()
        .unwrap();
    assert!(st.success(), "sha256sum -c rejects the backup");
    let copy = backup.join("disk.img");
    assert_eq!(sha256_file(&copy), source_sha);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
        let mut b = [0u8; 1];
        f.read_at(&mut b, 1 << 20).ok();
        f.write_all_at(&[b[0] ^ 0xff], 1 << 20).unwrap();
    }
    let out = Command::new(xen2kvm_bin())
        .args(["backup", "--verify"])
        .arg(&backup)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("disk.img: content differs") && !text.contains("deb12.xml: content"),
        "{text}"
    );

    // Defined in libvirt; its disk is a pool volume.
    let (ok, vols) = virsh(&["vol-list", "x2k-test-pool"]);
    assert!(ok && vols.contains(&format!("{name}-vda.img")), "{vols}");
    let (ok, defined) = virsh(&["dumpxml", "--inactive", name]);
    assert!(ok, "{defined}");
    let vol = pool_dir.join(format!("{name}-vda.img"));
    assert!(
        defined.contains(&format!("<source file='{}'/>", vol.display())),
        "{defined}"
    );
    assert!(defined.contains("<source bridge='x2kbr0'/>"), "{defined}");
    assert!(defined.contains("00:16:3e:5a:6b:7c"), "{defined}");
    assert!(
        !defined.contains("xenbr0") && !defined.contains("pygrub"),
        "{defined}"
    );

    // libvirt starts it (TCG here) and the guest logs in on its serial port.
    let log = dir.path().join("serial.log");
    let tcg = defined
        .replacen("<domain type='kvm'", "<domain type='qemu'", 1)
        .replacen(
            "<target type='isa-serial' port='0'>",
            &format!(
                "<log file='{}' append='off'/>\n      <target type='isa-serial' port='0'>",
                log.display()
            ),
            1,
        );
    assert!(
        tcg.contains("<log file="),
        "no serial to log in:\n{defined}"
    );
    let tcg_xml = dir.path().join("tcg.xml");
    std::fs::write(&tcg_xml, &tcg).unwrap();
    let (ok, out) = virsh(&["define", tcg_xml.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) = virsh(&["start", name]);
    assert!(ok, "libvirt cannot start the migrated domain: {out}");
    let console = wait_for(
        &log,
        &["login:", "XEN2KVM-BOOT-OK"],
        Duration::from_secs(300),
    );
    let _ = virsh(&["destroy", name]);
    let console = console.unwrap_or_else(|| {
        panic!(
            "no login on the serial console of the domain libvirt started: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    assert!(console.contains("Linux version"), "{console}");
    drop(place);
}

/// A shut-off Xen domain with `disk` (a `<disk>` element) and a running
/// one, as libvirt's test driver serves them (`-ic test:///FILE`).
fn test_driver_node(dir: &Path, disk: &str) -> PathBuf {
    let node = dir.join("node.xml");
    std::fs::write(
        &node,
        format!(
            "<node>
  <domain type='xen' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>sles-off</name>
    <memory>524288</memory>
    <os><type>linux</type></os>
    <devices>
      {disk}
      <interface type='bridge'><mac address='00:16:3e:01:02:03'/><source bridge='xenbr0'/></interface>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
  <domain type='xen'>
    <name>sles-on</name>
    <memory>524288</memory>
    <os><type>linux</type></os>
    <devices>
      {disk}
    </devices>
  </domain>
</node>
"
        ),
    )
    .unwrap();
    node
}

fn file_disk(path: &Path) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/><target dev='xvda' bus='xen'/></disk>",
        path.display()
    )
}

/// A loop device over an image file, detached when dropped.
struct Loop(String);

impl Loop {
    fn new(file: &Path) -> Loop {
        let out = Command::new("losetup")
            .args(["--find", "--show", "--read-only"])
            .arg(file)
            .output()
            .expect("losetup (mount)");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// An sshd of the test's own on 127.0.0.1 (a free port, its own host and
/// client keys), killed when dropped: the "Xen host" disks are read from.
struct Sshd {
    child: std::process::Child,
    port: u16,
    key: PathBuf,
}

impl Sshd {
    fn start(dir: &Path) -> Sshd {
        for k in ["hostkey", "client"] {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(k))
                .status()
                .expect("ssh-keygen (openssh-client)");
            assert!(st.success());
        }
        std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", "/dev/null", "-p", &port.to_string()])
            .args(["-o", "ListenAddress=127.0.0.1", "-h"])
            .arg(dir.join("hostkey"))
            .arg("-o")
            .arg(format!(
                "AuthorizedKeysFile={}",
                dir.join("authorized_keys").display()
            ))
            .args([
                "-o",
                "StrictModes=no",
                "-o",
                "PermitRootLogin=prohibit-password",
                "-o",
                "PidFile=none",
                "-o",
                "UsePAM=no",
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sshd (cargo xtask deps installs openssh-server)");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(10), "sshd did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Sshd {
            child,
            port,
            key: dir.join("client"),
        }
    }

    /// migrate's options to read disks through this server.
    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--input-host".to_owned(),
            format!("ssh://root@127.0.0.1:{}", self.port),
        ];
        for o in [
            format!("IdentityFile={}", self.key.display()),
            "StrictHostKeyChecking=no".to_owned(),
            "UserKnownHostsFile=/dev/null".to_owned(),
            "LogLevel=ERROR".to_owned(),
        ] {
            a.push("--input-ssh-option".to_owned());
            a.push(o);
        }
        a
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A block device (`phy:` on a Xen host) read through libvirt, to a sparse
/// raw output: every block read, the zero ones not written. A qcow2 disk
/// on another host (an sshd on 127.0.0.1), from an xl.cfg: streamed over
/// ssh into the backup, checksummed on arrival, and from there to a
/// preallocated raw output by qemu-img.
#[test]
fn local_outputs_sparse_and_preallocated_from_libvirt_and_xl() {
    let Some(image) = require_image("sles11sp4-xenpv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("sles.img");
    qemu_img_raw(&image, &raw);
    let raw_sha = sha256_file(&raw);
    let size = std::fs::metadata(&raw).unwrap().len();

    // -i libvirt (test driver), a block device, -o local, sparse.
    let dev = Loop::new(&raw);
    let node = test_driver_node(
        dir.path(),
        &format!(
            "<disk type='block' device='disk'><driver name='phy'/><source dev='{}'/><target dev='xvda' bus='xen'/></disk>",
            dev.0
        ),
    );
    let sparse = dir.path().join("sparse");
    std::fs::create_dir(&sparse).unwrap();
    let uri = format!("test://{}", node.display());
    let sparse_args = [
        "-i",
        "libvirt",
        "-ic",
        &uri,
        "sles-off",
        "-o",
        "local",
        "-os",
        sparse.to_str().unwrap(),
        "-oa",
        "sparse",
    ];
    // While it runs: the state file says so (pid, phase), and a second
    // migration of the same guest is refused.
    let first = migrate_command(&sparse_args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state_file = state_dir().join("sles-off.json");
    let t = Instant::now();
    let running: Value = loop {
        let s: Option<Value> = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(s) = s.filter(|s| s["phase"] == "convert") {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no state file");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(running["status"], "running", "{running:#}");
    assert_eq!(running["pid"], first.id(), "{running:#}");
    assert!(
        running["phases"].as_array().unwrap().len() >= 2,
        "{running:#}"
    );
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let mut second = sparse_args;
    second[8] = other.to_str().unwrap();
    let (code, _, refused) = migrate(&second, &[]);
    assert_eq!(code, 1, "{refused:#}");
    let err = refused["error"].as_str().unwrap();
    assert!(
        err.contains("in use by another xen2kvm run")
            && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    let out = first.wait_with_output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let report = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| e["report"].clone())
        .unwrap_or_default();
    drop(dev);
    let finished: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(finished["status"], "migrated", "{finished:#}");
    assert_eq!(finished["report"]["result"], "migrated");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["result"], "migrated", "{report:#}");
    let d = &report["disks"][0];
    assert_eq!(d["kind"], "block", "{d}");
    assert_eq!(d["reads"], 1, "{d}");
    assert_eq!(
        d["sha256"],
        raw_sha.as_str(),
        "the device's data is the image's"
    );
    assert_eq!(
        report["output"]["format"], "raw",
        "raw in, raw out by default"
    );
    let out = sparse.join("sles-off-vda.img");
    let xml = std::fs::read_to_string(sparse.join("sles-off.xml")).unwrap();
    assert!(
        xml.contains("<disk type='file' device='disk'>")
            && xml.contains(&format!("<source file='{}'/>", out.display())),
        "{xml}"
    );
    assert!(xml.contains("<driver name='qemu' type='raw'/>"), "{xml}");
    let a = allocated(&out);
    eprintln!("sparse from a block device: output allocates {a} of {size}");
    // The conversion writes a little (config files, a new initrd stub).
    assert!(a < 16 << 20, "sparse output allocates {a}");
    assert_eq!(d["output_allocated"], a);

    // -i xl, a qcow2 disk, backed up, to a preallocated raw output.
    let qcow2 = dir.path().join("sles.qcow2");
    let st = Command::new("qemu-img")
        .args(["convert", "-O", "qcow2"])
        .arg(&image)
        .arg(&qcow2)
        .status()
        .unwrap();
    assert!(st.success());
    let qcow2_sha = sha256_file(&qcow2);
    let cfg = dir.path().join("sles.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = 'sles-xl'\nmemory = 512\nbootloader = 'pygrub'\ndisk = [ '{},qcow2,xvda,w' ]\nvif = [ 'mac=00:16:3e:01:02:04,bridge=xenbr0' ]\n",
            qcow2.display()
        ),
    )
    .unwrap();
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    let bk = dir.path().join("bk");
    let ssh_dir = dir.path().join("ssh");
    std::fs::create_dir(&ssh_dir).unwrap();
    let sshd = Sshd::start(&ssh_dir);
    let ssh_args = sshd.args();
    let mut args: Vec<&str> = vec![
        "-i",
        "xl",
        cfg.to_str().unwrap(),
        "-o",
        "local",
        "-os",
        full.to_str().unwrap(),
        "-of",
        "raw",
        "-oa",
        "preallocated",
        "--backup",
        bk.to_str().unwrap(),
    ];
    args.extend(ssh_args.iter().map(String::as_str));
    let (code, _, report) = migrate(&args, &[]);
    assert_eq!(code, 0, "{report:#}");
    let d = &report["disks"][0];
    assert!(
        d["source"]
            .as_str()
            .unwrap()
            .starts_with("ssh://root@127.0.0.1:"),
        "{d}"
    );
    assert_eq!(d["reads"], 1, "streamed once into the backup: {d}");
    assert_eq!(d["source_unchanged"], true, "{d}");
    assert_eq!(d["sha256_of"], "image file");
    assert_eq!(d["sha256"], qcow2_sha.as_str());
    assert_eq!(report["backup"]["verified"], true);
    assert_eq!(sha256_file(&bk.join("sles.qcow2")), qcow2_sha);
    assert!(bk.join("sles-xl.cfg").is_file());
    let out = full.join("sles-xl-vda.img");
    let a = allocated(&out);
    eprintln!("preallocated: output allocates {a} of {size}");
    assert!(a >= size, "preallocated output allocates {a} of {size}");
    assert!(full.join("sles-xl.xml").is_file());

    // Run again: done, at once, nothing touched.
    let mtime = std::fs::metadata(&out).unwrap().modified().unwrap();
    let t = Instant::now();
    let (code, _, again) = migrate(&args, &[]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(again["result"], "done", "{again:#}");
    assert!(t.elapsed() < Duration::from_secs(20));
    assert_eq!(std::fs::metadata(&out).unwrap().modified().unwrap(), mtime);

    // With the "Xen host" gone, the run fails at once, saying so, and
    // leaves nothing.
    drop(sshd);
    let again = dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let mut args: Vec<&str> = vec![
        "-i",
        "xl",
        cfg.to_str().unwrap(),
        "-o",
        "local",
        "-os",
        again.to_str().unwrap(),
    ];
    args.extend(ssh_args.iter().map(String::as_str));
    let (code, _, report) = migrate(&args, &[]);
    assert_eq!(code, 1, "{report:#}");
    let err = report["error"].as_str().unwrap();
    assert!(err.contains("ssh ssh://root@127.0.0.1"), "{err}");
    assert_eq!(std::fs::read_dir(&again).unwrap().count(), 0);
}

/// Each bad input: exit 1, one clear error naming the cause, and nothing
/// left in the output (or backup) directory.
#[test]
fn bad_inputs_fail_with_one_clear_line_and_leave_nothing() {
    let Some(image) = require_image("sles11sp4-xenpv") else {
        return;
    };
    ensure_libvirtd();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("sles.img");
    qemu_img_raw(&image, &disk);
    let node = test_driver_node(dir.path(), &file_disk(&disk));
    let uri = format!("test://{}", node.display());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let xml = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let good = xml(
        "good.xml",
        &format!("<domain type='xen'><name>g</name><memory>65536</memory><os><type>linux</type></os><devices><disk type='file' device='disk'><source file='{}'/><target dev='xvda'/></disk></devices></domain>", disk.display()),
    );
    let missing = xml("missing.xml", "<domain type='xen'><name>g</name><devices><disk type='file' device='disk'><source file='/nonexistent/disk.img'/><target dev='xvda'/></disk></devices></domain>");
    let directory = xml(
        "dir.xml",
        &format!("<domain type='xen'><name>g</name><devices><disk type='file' device='disk'><source file='{}'/><target dev='xvda'/></disk></devices></domain>", dir.path().display()),
    );
    let doctype = xml("doctype.xml", "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'x'>]><domain type='xen'><name>g</name></domain>");
    let existing = dir.path().join("exists");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("g-vda.img"), b"someone's disk").unwrap();
    let tiny = dir.path().join("tiny");
    std::fs::create_dir(&tiny).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&tiny)
        .status()
        .unwrap();
    assert!(st.success(), "mounting a small tmpfs (needs root)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(tiny.clone());
    let o = out.to_str().unwrap();
    let bk = dir.path().join("bk");
    type Case<'a> = (Vec<&'a str>, &'a str, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![
                "-i", "libvirt", "-ic", &uri, "sles-on", "-o", "local", "-os", o,
            ],
            "shut it down first",
            vec![],
        ),
        (
            vec!["-i", "libvirtxml", &missing, "-o", "local", "-os", o],
            "/nonexistent/disk.img",
            vec![],
        ),
        (
            vec!["-i", "libvirtxml", &directory, "-o", "local", "-os", o],
            "not an image file",
            vec![],
        ),
        (
            vec!["-i", "libvirtxml", &doctype, "-o", "local", "-os", o],
            "DOCTYPE",
            vec![],
        ),
        (
            vec![
                "-i",
                "libvirtxml",
                &good,
                "-o",
                "local",
                "-os",
                existing.to_str().unwrap(),
            ],
            "g-vda.img exists",
            vec![],
        ),
        (
            vec![
                "-i",
                "libvirtxml",
                &good,
                "-o",
                "local",
                "-os",
                tiny.to_str().unwrap(),
                "-oa",
                "preallocated",
            ],
            "not enough room",
            vec![],
        ),
        (
            vec![
                "-i",
                "libvirtxml",
                &good,
                "-o",
                "libvirt",
                "-os",
                "x2k-no-such-pool",
            ],
            "x2k-no-such-pool",
            vec![],
        ),
        // Stopped by SIGTERM while copying: interrupted, nothing left.
        (
            vec![
                "-i",
                "libvirtxml",
                &good,
                "-o",
                "local",
                "-os",
                o,
                "--backup",
                bk.to_str().unwrap(),
            ],
            "interrupted by SIGTERM",
            vec![("XEN2KVM_TEST_FAULT", "copy:TERM")],
        ),
    ];
    for (args, needle, env) in cases {
        let (code, _, report) = migrate(&args, &env);
        let err = report["error"].as_str().unwrap_or("");
        let interrupted = needle.starts_with("interrupted");
        assert_eq!(
            code,
            if interrupted { 128 + 15 } else { 1 },
            "{args:?}: {report:#}"
        );
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains('\n'), "{args:?}: more than one line: {err}");
        let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
        let left: Vec<_> = std::fs::read_dir(&tiny).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
        if let Ok(bk) = std::fs::read_dir(&bk) {
            let left: Vec<_> = bk.collect();
            assert!(left.is_empty(), "{args:?} left a backup {left:?}");
        }
    }
    assert_eq!(
        std::fs::read(existing.join("g-vda.img")).unwrap(),
        b"someone's disk"
    );
}

/// A guest made by Debian's xen-tools: one bare image per partition
/// (`disk.img` as `xvda2`, its root; `swap.img` as `xvda1`), booted by
/// pygrub, no boot code anywhere. As built it cannot boot under KVM, and
/// `convert` without the disks' Xen names refuses it, saying which to give;
/// migrated from its xl.cfg, the root image is re-laid as partition 1 of
/// a new disk (DOS table at 1 MiB, GRUB installed), every device spec names
/// its filesystem by UUID, and the result boots with both disks; migrated
/// from its libvirt XML with `--direct-boot`, it stays a bare filesystem
/// and the domain boots the guest's kernel copied out beside the disks.
#[test]
fn xentools_partition_images_are_relaid_migrated_and_boot() {
    let Some(image) = require_image("debian12-xentools") else {
        return;
    };
    let swap_image = xen2kvm_tests::image_extra("debian12-xentools", "swap").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    let swap = dir.path().join("swap.img");
    qemu_img_raw(&image, &disk);
    qemu_img_raw(&swap_image, &swap);
    let disk_sha = sha256_file(&disk);
    let recipe = xen2kvm_tests::repo_root().join("images/debian12-xentools");
    let fill = |file: &str| {
        std::fs::read_to_string(recipe.join(file))
            .unwrap()
            .replace("@DISK@", disk.to_str().unwrap())
            .replace("@SWAP@", swap.to_str().unwrap())
    };

    // As built: nothing to boot from.
    let (code, verdict) = xen2kvm_tests::boot_check(&disk, &dir.path().join("logs-before"), &[]);
    assert_ne!(code, 0, "{verdict:#}");
    assert_eq!(
        verdict["reason"]["kind"], "no-bootable-device",
        "{verdict:#}"
    );

    // Without the Xen names, convert cannot know what the guest calls
    // these disks: blocked, naming what to give.
    let out = Command::new(xen2kvm_bin())
        .args(["convert", "--dry-run", "--json"])
        .arg(&disk)
        .arg(&swap)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(3), "{report:#}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("bare filesystem") && error.contains("--target xvda2="),
        "{error}"
    );

    // The libvirt XML translates to a KVM domain with the two disks in
    // order (vda, vdb): what the guest's device specs are mapped by.
    let xml = dir.path().join("guest.xml");
    std::fs::write(&xml, fill("guest.xml")).unwrap();
    let out = Command::new(xen2kvm_bin())
        .arg("domxml")
        .arg(&xml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kvm = String::from_utf8_lossy(&out.stdout);
    let at = |needle: &str| {
        kvm.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {kvm}"))
    };
    assert!(at("<target dev='vda' bus='virtio'/>") < at("<target dev='vdb' bus='virtio'/>"));
    assert!(at(&disk.display().to_string()) < at(&swap.display().to_string()));

    // migrate -i xl: copied, re-laid, converted, boot-checked.
    let cfg = dir.path().join("guest.cfg");
    std::fs::write(&cfg, fill("guest.cfg")).unwrap();
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let (code, _, report) = migrate(
        &[
            "-i",
            "xl",
            cfg.to_str().unwrap(),
            "-o",
            "local",
            "-os",
            outdir.to_str().unwrap(),
            "--boot-check",
            "--log-dir",
            dir.path().join("logs").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["result"], "migrated", "{report:#}");
    let conv = &report["conversion"];
    assert_eq!(conv["relaid"][0]["xen"], "xvda2", "{conv:#}");
    assert_eq!(conv["relaid"][0]["kvm"], "vda1", "{conv:#}");
    assert_eq!(conv["disk_names"][1]["kvm"], "vdb", "{conv:#}");
    let changes = xen2kvm_tests::rule_lines(&conv["changes"]);
    for needle in [
        "/etc/fstab: line 3: /dev/xvda2 -> UUID=5e1f2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        "/etc/fstab: line 4: /dev/xvda1 -> UUID=7c0ffee0-1d2e-4f3a-8b4c-5d6e7f809a1b",
        "root=/dev/xvda2 -> root=UUID=5e1f2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
    ] {
        assert!(changes.contains(needle), "{needle}:\n{changes}");
    }
    assert!(
        conv["residue"].as_array().is_some_and(Vec::is_empty),
        "{conv:#}"
    );
    assert_eq!(report["boot_check"]["verdict"], "booted", "{report:#}");
    assert_eq!(report["boot_check"]["network"], "up", "{report:#}");
    let log = std::fs::read_to_string(report["boot_check"]["log"].as_str().unwrap()).unwrap();
    assert!(
        log.contains("Activated swap"),
        "the swap disk was not used:\n{log}"
    );
    for d in &report["disks"].as_array().unwrap()[..] {
        assert_eq!(d["source_unchanged"], true, "{d}");
    }
    assert_eq!(sha256_file(&disk), disk_sha, "the source changed");

    // The new disk: a DOS table with one active Linux partition at 1 MiB
    // holding the whole filesystem, and GRUB's boot code before it.
    let out = outdir.join("debian12-xentools-vda.img");
    let bytes = std::fs::read(&out).map(|b| b[..512].to_vec()).unwrap();
    assert_eq!(&bytes[510..], &[0x55, 0xAA]);
    assert!(bytes[..440].iter().any(|&b| b != 0), "no boot code");
    assert_eq!(bytes[446], 0x80);
    assert_eq!(bytes[450], 0x83);
    let lba = u32::from_le_bytes(bytes[454..458].try_into().unwrap());
    let sectors = u32::from_le_bytes(bytes[458..462].try_into().unwrap());
    assert_eq!(lba, 2048);
    assert_eq!(
        u64::from(sectors) * 512,
        std::fs::metadata(&disk).unwrap().len()
    );

    // The alternative, from the libvirt XML: --direct-boot. No re-lay and
    // no boot code; the converted guest's kernel and initrd are copied out
    // beside the disks and the domain boots them, as does boot-check.
    let direct = dir.path().join("direct");
    std::fs::create_dir(&direct).unwrap();
    let (code, _, report) = migrate(
        &[
            "-i",
            "libvirtxml",
            xml.to_str().unwrap(),
            "-o",
            "local",
            "-os",
            direct.to_str().unwrap(),
            "-on",
            "xentools-direct",
            "--direct-boot",
            "--boot-check",
            "--log-dir",
            dir.path().join("logs-direct").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{report:#}");
    let conv = &report["conversion"];
    assert!(conv.get("relaid").is_none(), "{conv:#}");
    let db = &conv["direct_boot"];
    let kernel = direct.join("xentools-direct-vmlinuz");
    let initrd = direct.join("xentools-direct-initrd.img");
    assert_eq!(db["kernel"], kernel.to_str().unwrap(), "{db}");
    assert_eq!(db["initrd"], initrd.to_str().unwrap(), "{db}");
    assert!(
        db["cmdline"]
            .as_str()
            .unwrap()
            .contains("root=UUID=5e1f2d3c-4b5a-4968-8776-a5b4c3d2e1f0"),
        "{db}"
    );
    assert!(std::fs::metadata(&kernel).unwrap().len() > 1 << 20);
    let steps: Vec<&str> = conv["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule"].as_str().unwrap())
        .collect();
    assert!(!steps.contains(&"grub-install"), "{steps:?}");
    assert_eq!(report["boot_check"]["verdict"], "booted", "{report:#}");
    let kvm_xml = std::fs::read_to_string(direct.join("xentools-direct.xml")).unwrap();
    assert!(
        kvm_xml.contains(&format!("<kernel>{}</kernel>", kernel.display()))
            && kvm_xml.contains(&format!("<initrd>{}</initrd>", initrd.display()))
            && !kvm_xml.contains("<boot dev="),
        "{kvm_xml}"
    );
    // Still a bare filesystem: ext4's magic at byte 1080.
    let vda = std::fs::read(direct.join("xentools-direct-vda.img")).unwrap();
    assert_eq!(&vda[1080..1082], &[0x53, 0xEF]);
}
