//! Support for the end-to-end tests, and the image cache shared with xtask.
//!
//! Images are built from `images/<name>/` recipes and cached outside the
//! checkout as `<cache>/<name>-<hash>.qcow2`, where the hash covers every
//! file of the recipe folder and the `images/common/` scripts it uses: a
//! recipe change gives a new path (a rebuild), nothing else does. The cache is
//! `$XEN2KVM_IMAGE_CACHE`, else `$XDG_CACHE_HOME/xen2kvm/images`, else
//! `~/.cache/xen2kvm/images`.
//!
//! End-to-end tests run when `XEN2KVM_E2E=1` or `CI` is set (and not when
//! `XEN2KVM_SKIP_E2E=1`). When they run, a missing image, appliance or QEMU
//! is a failure, never a skip.

#![allow(clippy::print_stderr)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}

/// The image cache directory (not created).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XEN2KVM_IMAGE_CACHE") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("xen2kvm").join("images")
}

/// The names of all recipes (folders of `images/` with a `build.sh`).
pub fn recipes() -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for e in fs::read_dir(repo_root().join("images"))? {
        let e = e?;
        if e.path().join("build.sh").is_file() {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The recipe a recipe is derived from: `images/<name>/from` names it (the
/// parent's cached image is the child's starting point, `$PARENT` in its
/// `build.sh`), or `None`.
pub fn recipe_parent(name: &str) -> io::Result<Option<String>> {
    let f = repo_root().join("images").join(name).join("from");
    match fs::read_to_string(&f) {
        Ok(t) => Ok(Some(t.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", f.display()))),
    }
}

/// The first 16 hex digits of the sha256 over the recipe's folder, the
/// files of `images/common/` it uses (named in it, transitively), relative
/// paths and contents, in sorted order, and its parent's hash (a parent's
/// change rebuilds its children).
pub fn recipe_hash(name: &str) -> io::Result<String> {
    let images = repo_root().join("images");
    let mut files = Vec::new();
    collect(&images.join(name), &mut files)?;
    let mut i = 0;
    while i < files.len() {
        let text = fs::read_to_string(&files[i]).unwrap_or_default();
        for word in
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'))
        {
            let common = images.join("common").join(word);
            if word.ends_with(".sh") && common.is_file() && !files.contains(&common) {
                files.push(common);
            }
        }
        i += 1;
    }
    files.sort();
    let mut h = Sha256::new();
    if let Some(parent) = recipe_parent(name)? {
        h.update(recipe_hash(&parent)?.as_bytes());
        h.update([0]);
    }
    for f in files {
        let rel = f.strip_prefix(&images).unwrap_or(&f);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(fs::read(&f)?);
        h.update([0]);
    }
    Ok(h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no recipe folder {}", dir.display()),
        ));
    }
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Where the cached image of recipe `name` is (or will be).
pub fn image_path(name: &str) -> io::Result<PathBuf> {
    Ok(cache_dir().join(format!("{name}-{}.qcow2", recipe_hash(name)?)))
}

/// Another disk of a guest with several (`cargo xtask images` caches it
/// beside the image, e.g. debian12-xentools' `swap`).
pub fn image_extra(name: &str, label: &str) -> io::Result<PathBuf> {
    Ok(cache_dir().join(format!("{name}-{}.{label}.qcow2", recipe_hash(name)?)))
}

/// Whether end-to-end tests should run.
pub fn e2e_enabled() -> bool {
    if std::env::var("XEN2KVM_SKIP_E2E").as_deref() == Ok("1") {
        return false;
    }
    std::env::var("XEN2KVM_E2E").as_deref() == Ok("1") || std::env::var_os("CI").is_some()
}

/// The cached image for an end-to-end test, or `None` (with a message) when
/// end-to-end tests are off. Panics when they are on and the image is missing.
pub fn require_image(name: &str) -> Option<PathBuf> {
    if !e2e_enabled() {
        eprintln!(
            "skipping: end-to-end tests are off (set XEN2KVM_E2E=1, or run `cargo xtask test`)"
        );
        return None;
    }
    let p = image_path(name).unwrap_or_else(|e| panic!("image recipe {name}: {e}"));
    assert!(
        p.is_file(),
        "image {name} is not built ({} missing): run `cargo xtask images {name}`",
        p.display()
    );
    Some(p)
}

/// A qcow2 overlay of `base` in `dir`: tests write there, never to the cache.
pub fn overlay(base: &Path, dir: &Path) -> PathBuf {
    let out = dir.join(format!(
        "{}-overlay.qcow2",
        base.file_stem().unwrap_or_default().to_string_lossy()
    ));
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(base)
        .arg(&out)
        .status()
        .expect("running qemu-img (install qemu-utils: cargo xtask deps)");
    assert!(
        st.success(),
        "qemu-img create overlay of {} failed",
        base.display()
    );
    out
}

/// The `xen2kvm` binary under test: `$XEN2KVM_BIN`, else the one cargo built
/// next to this test executable (`cargo xtask test` builds it first).
pub fn xen2kvm_bin() -> PathBuf {
    if let Some(b) = std::env::var_os("XEN2KVM_BIN") {
        return PathBuf::from(b);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/xen2kvm
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("xen2kvm"))
        .unwrap_or_default();
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p xen2kvm` (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    io::copy(&mut f, &mut h).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `value` against a JSON Schema subset (type, properties, required,
/// items, enum, additionalProperties: false); returns every violation.
pub fn schema_errors(
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
) -> Vec<String> {
    use serde_json::Value;
    let mut errs = Vec::new();
    let type_ok = |t: &str| match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    };
    match schema.get("type") {
        Some(Value::String(t)) if !type_ok(t) => {
            errs.push(format!("{at}: expected {t}, got {value}"))
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| t.as_str().is_some_and(type_ok)) => {
            errs.push(format!("{at}: expected one of {ts:?}, got {value}"))
        }
        _ => {}
    }
    if value.is_null() {
        return errs;
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(value) {
            errs.push(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    if let (Some(obj), Some(Value::Object(props))) = (value.as_object(), schema.get("properties")) {
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap_or_default();
            if !obj.contains_key(r) {
                errs.push(format!("{at}: missing {r}"));
            }
        }
        for (k, v) in obj {
            match props.get(k) {
                Some(sub) => errs.extend(schema_errors(sub, v, &format!("{at}.{k}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errs.push(format!("{at}: undocumented field {k}"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(schema_items)) = (value.as_array(), schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            errs.extend(schema_errors(schema_items, v, &format!("{at}[{i}]")));
        }
    }
    errs
}

/// Runs `xen2kvm boot-check --json` on `image` with its logs in `logs`;
/// returns the exit code and the report (stderr is passed through).
pub fn boot_check(image: &Path, logs: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = std::process::Command::new(xen2kvm_bin())
        .arg("boot-check")
        .arg(image)
        .arg("--json")
        .arg("--log-dir")
        .arg(logs)
        .args(extra)
        .output()
        .expect("running xen2kvm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "boot-check printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// Every path under `/etc` and `/boot` of a guest image (kind, mode,
/// owner, content hash or link target) and the hash of its disk's first
/// MiB: what "the guest is exactly as before" means in the revert tests.
/// Read independently of xen2kvm's own code: `guestfish tar-out` of the two
/// trees (GNU tar in the appliance) and `download-offset` of the disk, in
/// one read-only launch.
pub fn fingerprint(image: &Path) -> std::collections::BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!(
        "tar-out /etc {d}/etc.tar numericowner:true\n\
         tar-out /boot {d}/boot.tar numericowner:true\n\
         download-offset /dev/sda {d}/head.bin 0 1048576\n"
    );
    let mut child = Command::new("guestfish")
        .args(["--ro", "-i", "-a"])
        .arg(image)
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running guestfish");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "guestfish on {}: {}",
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut fp = std::collections::BTreeMap::new();
    for top in ["etc", "boot"] {
        let f = fs::File::open(dir.path().join(format!("{top}.tar"))).unwrap();
        let mut ar = tar::Archive::new(f);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let rel = e.path().unwrap().to_string_lossy().into_owned();
            let rel = rel
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_owned();
            let path = if rel.is_empty() || rel == "." {
                format!("/{top}")
            } else {
                format!("/{top}/{rel}")
            };
            let mode = h.mode().unwrap_or(0) & 0o7777;
            let owner = format!("{}:{}", h.uid().unwrap_or(0), h.gid().unwrap_or(0));
            let what = match h.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut hasher = Sha256::new();
                    io::copy(&mut e, &mut hasher).unwrap();
                    let sum: String = hasher
                        .finalize()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    format!("file {mode:o} {owner} {sum}")
                }
                tar::EntryType::Symlink => format!(
                    "link {}",
                    e.link_name().unwrap().unwrap_or_default().to_string_lossy()
                ),
                tar::EntryType::Link => format!(
                    "hardlink {}",
                    e.link_name().unwrap().unwrap_or_default().to_string_lossy()
                ),
                tar::EntryType::Directory => format!("dir {mode:o} {owner}"),
                t => format!("{t:?} {mode:o} {owner}"),
            };
            fp.insert(path, what);
        }
    }
    fp.insert(
        "<first MiB of the disk>".to_owned(),
        sha256_file(&dir.path().join("head.bin")),
    );
    fp
}

/// The [`fingerprint`] of a cached test image (never written: tests work on
/// overlays), computed once and kept beside the image.
pub fn base_fingerprint(image: &Path) -> std::collections::BTreeMap<String, String> {
    let file = image.with_extension("fingerprint.json");
    if let Ok(text) = fs::read_to_string(&file) {
        if let Ok(fp) = serde_json::from_str(&text) {
            return fp;
        }
    }
    let fp = fingerprint(image);
    let tmp = file.with_extension("json.tmp");
    if fs::write(&tmp, serde_json::to_string_pretty(&fp).unwrap_or_default()).is_ok() {
        let _ = fs::rename(&tmp, &file);
    }
    fp
}

/// The paths whose state differs between two fingerprints, for messages.
pub fn fingerprint_diff(
    a: &std::collections::BTreeMap<String, String>,
    b: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {:?} -> {:?}", a.get(k), b.get(k)))
        .collect()
}

/// The libvirt connection of the tests (libvirtd's QEMU driver).
pub const LIBVIRT_URI: &str = "qemu:///system";

/// Runs `virsh -c qemu:///system ARGS…`: (success, stdout + stderr).
pub fn virsh(args: &[&str]) -> (bool, String) {
    let out = Command::new("virsh")
        .arg("-c")
        .arg(LIBVIRT_URI)
        .args(args)
        .output()
        .expect("running virsh (cargo xtask deps installs libvirt-clients)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Starts libvirtd (and virtlogd, which starting a domain needs) when they
/// are not running. Needs root.
pub fn ensure_libvirtd() {
    use std::time::{Duration, Instant};
    std::fs::create_dir_all("/var/log/libvirt").expect("creating /var/log/libvirt (needs root)");
    // The socket file outlives a virtlogd that was killed (a reboot of
    // the container, an earlier session): only a connection says it runs.
    let virtlogd = Path::new("/run/libvirt/virtlogd-sock");
    let answers = || std::os::unix::net::UnixStream::connect(virtlogd).is_ok();
    if !answers() {
        let st = Command::new("virtlogd")
            .arg("-d")
            .status()
            .expect("starting virtlogd (cargo xtask deps installs libvirt-daemon-system)");
        assert!(st.success(), "virtlogd -d failed");
        let t = Instant::now();
        while !answers() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "virtlogd did not answer on {} within 30s",
                virtlogd.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    if virsh(&["version"]).0 {
        return;
    }
    let st = Command::new("libvirtd")
        .arg("-d")
        .status()
        .expect("starting libvirtd (cargo xtask deps installs libvirt-daemon-system)");
    assert!(st.success(), "libvirtd -d failed");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if virsh(&["version"]).0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("libvirtd did not answer on {LIBVIRT_URI} within 30s");
}

/// The domain XML a Xen host shows (`virsh dumpxml`) for a Debian PV
/// guest on the raw disk `disk`: type xen, pygrub, `xvda`, an empty CD-ROM
/// drive, a `vif` on `xenbr0` with its script, a Xen console. The migrate
/// tests, the demo and the bench use it.
pub fn xen_domain_xml(name: &str, disk: &Path) -> String {
    format!(
        "<domain type='xen' id='12'>
  <name>{name}</name>
  <uuid>8a3c6f10-2b4d-4e5f-9a1b-3c5d7e9f1a2b</uuid>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <bootloader>/usr/lib/xen-4.17/bin/pygrub</bootloader>
  <os>
    <type arch='x86_64' machine='xenpv'>linux</type>
  </os>
  <clock offset='utc' adjustment='reset'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>restart</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{}'/>
      <target dev='xvda' bus='xen'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='xvdc' bus='xen'/>
      <readonly/>
    </disk>
    <controller type='xenbus' index='0'/>
    <interface type='bridge'>
      <mac address='00:16:3e:5a:6b:7c'/>
      <source bridge='xenbr0'/>
      <script path='vif-bridge'/>
      <target dev='vif12.0'/>
    </interface>
    <console type='pty' tty='/dev/pts/3'>
      <source path='/dev/pts/3'/>
      <target type='xen' port='0'/>
    </console>
    <input type='mouse' bus='xen'/>
    <input type='keyboard' bus='xen'/>
    <memballoon model='xen'/>
  </devices>
</domain>
",
        disk.display()
    )
}

/// A virtio-win driver tree in the ISO's layout, of placeholder files (the
/// drivers are not ours to ship): `viostor`, `NetKVM` and `Balloon` for
/// Windows Server 2003 x86 (`2k3/x86`) and 2008 R2 (`2k8R2/amd64`), each
/// with its `.sys`, `.inf` and `.cat`. Returns the tree's root.
pub fn fake_virtio_win(dir: &Path) -> PathBuf {
    let root = dir.join("virtio-win");
    for (release, arch) in [("2k3", "x86"), ("2k8R2", "amd64"), ("2k12R2", "amd64")] {
        for (folder, base) in [
            ("viostor", "viostor"),
            ("NetKVM", "netkvm"),
            ("Balloon", "balloon"),
        ] {
            let d = root.join(folder).join(release).join(arch);
            fs::create_dir_all(&d).expect("creating the fake virtio-win tree");
            for ext in ["sys", "inf", "cat"] {
                fs::write(
                    d.join(format!("{base}.{ext}")),
                    format!("xen2kvm test placeholder: {folder}/{release}/{arch}/{base}.{ext}\n"),
                )
                .expect("writing the fake virtio-win tree");
            }
        }
    }
    fs::write(root.join("virtio-win_license.txt"), "placeholder\n").expect("license");
    root
}

/// The fake virtio-win tree as an ISO (`genisoimage`, Joliet and Rock
/// Ridge, as the real ISO), for `--virtio-win ISO`.
pub fn fake_virtio_win_iso(dir: &Path) -> PathBuf {
    let tree = fake_virtio_win(dir);
    let iso = dir.join("virtio-win.iso");
    let st = Command::new("genisoimage")
        .args(["-quiet", "-J", "-R", "-V", "virtio-win", "-o"])
        .arg(&iso)
        .arg(&tree)
        .status()
        .expect("running genisoimage (cargo xtask deps installs it)");
    assert!(st.success(), "genisoimage failed");
    iso
}

/// Runs guestfish on `image` (read-only unless `rw`, the guest's
/// filesystems mounted, TCG) with `script` on its stdin; returns its output.
pub fn guestfish(image: &Path, rw: bool, script: &str) -> String {
    run_guestfish(image, rw, true, script)
}

/// `guestfish --ro|--rw -a IMAGE` without `-i` (which refuses a disk where
/// inspection finds several systems, e.g. snapper's snapshots): `script`
/// mounts what it reads.
pub fn guestfish_script_on(image: &Path, rw: bool, script: &str) -> String {
    run_guestfish(image, rw, false, &format!("run\n{script}"))
}

fn run_guestfish(image: &Path, rw: bool, inspect: bool, script: &str) -> String {
    let out = Command::new("guestfish")
        .arg(if rw { "--rw" } else { "--ro" })
        .arg("-a")
        .arg(image)
        .args(inspect.then_some("-i"))
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait_with_output()
        })
        .expect("running guestfish");
    assert!(
        out.status.success(),
        "guestfish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A convert report's `changes` (or `warnings`) as lines
/// `[RULE] TARGET: WHAT` (the goldens' form).
pub fn rule_lines(items: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "[{}] {}: {}\n",
                s(&c["rule"]),
                s(&c["target"]),
                s(&c["what"])
            )
        })
        .collect()
}
