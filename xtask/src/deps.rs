//! `cargo xtask deps`: installs what the project needs on Debian 12.
//!
//! Idempotent: it checks each package with `dpkg-query` and only runs apt
//! when something is missing. QEMU comes from `bookworm-backports` so that
//! `qemu-system-x86` matches a backports `qemu-utils` (the plain bookworm
//! one conflicts with it); the suite is added to apt's sources when absent.
//! When not root it prints the exact commands to run and fails.

use std::fs;
use std::process::Command;

use anyhow::{bail, Result};

use crate::run;

/// Installed from bookworm-backports.
const BACKPORTS: &[&str] = &["qemu-system-x86", "qemu-utils", "rhsrvany"];

/// Installed from the main suite. `linux-image-amd64`: the libguestfs
/// appliance boots the host's kernel. `debootstrap`: the Debian test guests.
/// libvirt: `virt-xml-validate` and a libvirtd for the domxml tests.
/// busybox-static, cpio, xz-utils, zstd: the phony test guests.
/// fdisk (sfdisk) and e2fsprogs (mke2fs -d): disks made by the tests.
const MAIN: &[&str] = &[
    "libguestfs-dev",
    "libguestfs-tools",
    "linux-image-amd64",
    "debootstrap",
    "libvirt-clients",
    "libvirt-daemon-system",
    "libvirt-daemon-driver-qemu",
    // `ip`: the migrate test puts its domain on a bridge of its own.
    "iproute2",
    // sshd: the migrate test reads disks over ssh from a server of its own
    // on 127.0.0.1 (installed with no service started: see `ensure`).
    "openssh-server",
    // The Ansible collection's test: ansible (with community.libvirt), and
    // what community.libvirt needs on the KVM host.
    "ansible",
    "python3-libvirt",
    "python3-lxml",
    "busybox-static",
    "cpio",
    "xz-utils",
    "zstd",
    "fdisk",
    "e2fsprogs",
    // Windows guests: NTFS in the appliance (ntfs-3g), the phony guests'
    // hives compiled and the converted ones exported (hivexregedit), the
    // fake virtio-win ISO (genisoimage) and its unpacking (bsdtar).
    "ntfs-3g",
    "libwin-hivex-perl",
    "libhivex-bin",
    "genisoimage",
    "libarchive-tools",
];

const BACKPORTS_FILE: &str = "/etc/apt/sources.list.d/xen2kvm-backports.sources";
const BACKPORTS_SOURCE: &str = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn have_backports() -> bool {
    let mut texts = vec![fs::read_to_string("/etc/apt/sources.list").unwrap_or_default()];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".list") || name.ends_with(".sources") {
                texts.push(fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    texts.iter().any(|t| {
        t.lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("bookworm-backports"))
    })
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub(crate) fn ensure() -> Result<()> {
    let missing_bp: Vec<&str> = BACKPORTS
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .collect();
    let missing: Vec<&str> = MAIN.iter().copied().filter(|p| !installed(p)).collect();
    let need_source = !have_backports();
    if missing_bp.is_empty() && missing.is_empty() {
        eprintln!(
            "deps: all present ({})",
            [BACKPORTS, MAIN].concat().join(" ")
        );
        return Ok(());
    }
    eprintln!(
        "deps: missing: {}",
        [missing_bp.as_slice(), missing.as_slice()]
            .concat()
            .join(" ")
    );
    if !is_root() {
        eprintln!("deps: not root; run as root:");
        if need_source {
            eprintln!(
                "  printf '{}' > {BACKPORTS_FILE}",
                BACKPORTS_SOURCE.replace('\n', "\\n")
            );
        }
        eprintln!("  apt-get update");
        if !missing_bp.is_empty() {
            eprintln!(
                "  apt-get install -y -t bookworm-backports {}",
                missing_bp.join(" ")
            );
        }
        if !missing.is_empty() {
            eprintln!("  apt-get install -y {}", missing.join(" "));
        }
        bail!("missing packages and not root");
    }
    if need_source {
        eprintln!("deps: adding bookworm-backports to apt sources ({BACKPORTS_FILE})");
        fs::write(BACKPORTS_FILE, BACKPORTS_SOURCE)?;
    }
    run(Command::new("apt-get").arg("update"))?;
    if !missing_bp.is_empty() {
        run(Command::new("apt-get")
            .args(["install", "-y", "-t", "bookworm-backports"])
            .args(&missing_bp)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    if !missing.is_empty() {
        // Packages with daemons (sshd, libvirtd) must not start them on
        // every interface: the tests start what they need, on loopback.
        let _guard = NoServiceStarts::new()?;
        run(Command::new("apt-get")
            .args(["install", "-y"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    Ok(())
}

const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// While it lives, Debian's maintainer scripts start no service
/// (`policy-rc.d` exiting 101); an existing policy is left alone.
struct NoServiceStarts(bool);

impl NoServiceStarts {
    fn new() -> Result<NoServiceStarts> {
        if std::path::Path::new(POLICY_RC_D).exists() {
            return Ok(NoServiceStarts(false));
        }
        fs::write(
            POLICY_RC_D,
            "#!/bin/sh\n# xen2kvm deps: no service starts while installing\nexit 101\n",
        )?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(POLICY_RC_D, fs::Permissions::from_mode(0o755))?;
        Ok(NoServiceStarts(true))
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if self.0 {
            let _ = fs::remove_file(POLICY_RC_D);
        }
    }
}

/// What `cargo xtask bench convert` compares against: virt-v2v, with the
/// nbdkit and libnbd tools it needs. Only the benchmark installs them.
const BENCH: &[&str] = &["virt-v2v", "nbdkit", "libnbd-bin"];

/// Installs [`BENCH`] (idempotent).
pub(crate) fn ensure_bench() -> Result<()> {
    let missing: Vec<&str> = BENCH.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing {} and not root: apt-get install -y {}",
            missing.join(" "),
            missing.join(" ")
        );
    }
    run(Command::new("apt-get")
        .args(["install", "-y"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
