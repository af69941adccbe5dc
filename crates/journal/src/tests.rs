//! Journal round trips on a `DirFs` guest: begin, change everything a
//! conversion changes, revert, and the tree (content, kinds, link targets,
//! modes) and the boot area are exactly as before.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use xen2kvm_vfs::DirFs;

use super::*;

struct Disk(RefCell<Vec<u8>>);

impl BootArea for Disk {
    fn read(&self, len: usize) -> io::Result<Vec<u8>> {
        let d = self.0.borrow();
        Ok(d[..len.min(d.len())].to_vec())
    }
    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        self.0.borrow_mut()[..bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

fn gp(s: &str) -> GuestPath {
    GuestPath::new(s).unwrap()
}

fn guest() -> (tempfile::TempDir, DirFs) {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for d in [
        "etc/default",
        "etc/systemd/system/getty.target.wants",
        "boot/grub/i386-pc",
        "var/lib",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::write(r.join("etc/fstab"), "/dev/xvda1 / ext4 defaults 0 1\n").unwrap();
    fs::write(
        r.join("etc/default/grub"),
        "GRUB_CMDLINE_LINUX=\"console=hvc0\"\n",
    )
    .unwrap();
    fs::write(r.join("boot/initrd.img-6.1"), vec![7u8; 4096]).unwrap();
    fs::set_permissions(
        r.join("boot/initrd.img-6.1"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    fs::write(r.join("boot/vmlinuz-6.1"), "kernel").unwrap();
    fs::write(
        r.join("boot/grub/grub.cfg"),
        "linux /vmlinuz root=/dev/xvda1\n",
    )
    .unwrap();
    fs::write(r.join("boot/grub/i386-pc/normal.mod"), "old module").unwrap();
    std::os::unix::fs::symlink(
        "/lib/systemd/system/serial-getty@.service",
        r.join("etc/systemd/system/getty.target.wants/serial-getty@hvc0.service"),
    )
    .unwrap();
    let root = r.to_owned();
    (t, DirFs::new(root))
}

/// Every path under the root: kind, content or target, permission bits.
fn snapshot(fs_: &DirFs) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for path in fs_.walk(&gp("/")).unwrap() {
        let m = fs_.metadata(&path).unwrap().unwrap();
        let what = match m.kind {
            FileKind::File => format!("file {:o} {}", m.mode, fs_.sha256(&path).unwrap().unwrap()),
            FileKind::Dir => format!("dir {:o}", m.mode),
            FileKind::Symlink => format!("link {}", fs_.read_link(&path).unwrap().unwrap()),
            FileKind::Other => "other".to_owned(),
        };
        out.insert(path.to_string(), what);
    }
    out
}

fn scope() -> Scope {
    Scope {
        paths: vec![
            gp("/etc/fstab"),
            gp("/etc/default/grub"),
            gp("/etc/modprobe.d/xen2kvm.conf"),
            gp("/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service"),
            gp("/boot/initrd.img-6.1"),
            gp("/boot/grub/grub.cfg"),
        ],
        saved_trees: vec![gp("/boot/grub")],
        watched_trees: vec![gp("/boot")],
        boot_area: 1024,
    }
}

/// What a conversion does to the guest and its disk.
fn convert(g: &DirFs, disk: &Disk) {
    g.write(&gp("/etc/fstab"), b"/dev/vda1 / ext4 defaults 0 1\n")
        .unwrap();
    g.write(
        &gp("/etc/default/grub"),
        b"GRUB_CMDLINE_LINUX=\"console=ttyS0\"\n",
    )
    .unwrap();
    g.mkdir_all(&gp("/etc/modprobe.d")).unwrap();
    g.write(&gp("/etc/modprobe.d/xen2kvm.conf"), b"# new\n")
        .unwrap();
    g.remove(&gp(
        "/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service",
    ))
    .unwrap();
    g.copy(
        &gp("/boot/initrd.img-6.1"),
        &gp("/boot/initrd.img-6.1.xen2kvm-orig"),
    )
    .unwrap();
    // dracut writes a new file, with its own mode.
    g.remove(&gp("/boot/initrd.img-6.1")).unwrap();
    g.write(&gp("/boot/initrd.img-6.1"), &[9u8; 8192]).unwrap();
    g.set_metadata(&gp("/boot/initrd.img-6.1"), 0o600, 0, 0)
        .ok();
    g.write(&gp("/boot/grub/grub.cfg"), b"linux /vmlinuz root=UUID=x\n")
        .unwrap();
    g.write(&gp("/boot/grub/i386-pc/normal.mod"), b"new module")
        .unwrap();
    g.write(&gp("/boot/grub/i386-pc/core.img"), b"core")
        .unwrap();
    g.write(&gp("/boot/grub/grubenv"), b"# GRUB Environment Block\n")
        .unwrap();
    disk.write(b"GRUB boot code").unwrap();
}

#[test]
fn revert_restores_everything_and_removes_the_journal() {
    let (_t, g) = guest();
    let disk = Disk(RefCell::new(vec![0u8; 4096]));
    let before = snapshot(&g);
    let j = begin(&g, Some(&disk), &scope()).unwrap();
    assert_eq!(j.dir().as_str(), "/var/lib/xen2kvm/journal/1");
    assert_eq!(unfinished(&g).unwrap(), Some(j.dir().clone()));
    convert(&g, &disk);
    assert_ne!(snapshot(&g), before);
    let r = revert(&g, Some(&disk)).unwrap();
    assert_eq!(r.journals, ["/var/lib/xen2kvm/journal/1"]);
    assert!(
        r.restored.iter().any(|l| l == "restored /etc/fstab"),
        "{r:?}"
    );
    assert!(
        r.restored.iter().any(|l| l.starts_with("recreated link")),
        "{r:?}"
    );
    assert!(r.restored.iter().any(|l| l.contains("boot code")), "{r:?}");
    assert_eq!(snapshot(&g), before);
    assert_eq!(disk.0.borrow().as_slice(), &[0u8; 4096][..]);
    assert!(!g.exists(&gp("/var/lib/xen2kvm")).unwrap());
    // Nothing left to revert.
    assert_eq!(revert(&g, Some(&disk)).unwrap(), Reverted::default());
}

#[test]
fn a_finished_journal_is_not_unfinished_and_stacks() {
    let (_t, g) = guest();
    let disk = Disk(RefCell::new(vec![0u8; 4096]));
    let before = snapshot(&g);
    let j1 = begin(&g, Some(&disk), &scope()).unwrap();
    convert(&g, &disk);
    j1.finish(&g).unwrap();
    assert_eq!(unfinished(&g).unwrap(), None);
    // A second conversion (another rule) on top of the first.
    let j2 = begin(
        &g,
        None,
        &Scope {
            paths: vec![gp("/etc/fstab")],
            ..Scope::default()
        },
    )
    .unwrap();
    assert_eq!(j2.dir().as_str(), "/var/lib/xen2kvm/journal/2");
    g.write(&gp("/etc/fstab"), b"again\n").unwrap();
    // An unfinished journal stops a third.
    assert!(begin(&g, None, &Scope::default())
        .unwrap_err()
        .to_string()
        .contains("unfinished conversion"));
    let r = revert(&g, Some(&disk)).unwrap();
    assert_eq!(r.journals.len(), 2);
    assert_eq!(snapshot(&g), before);
}

#[test]
fn rollback_undoes_only_the_journal_just_begun() {
    let (_t, g) = guest();
    let disk = Disk(RefCell::new(vec![0u8; 4096]));
    let j = begin(&g, Some(&disk), &scope()).unwrap();
    let before = snapshot(&g);
    // Half a conversion: the edits, then an interruption.
    g.write(&gp("/etc/fstab"), b"/dev/vda1 / ext4 defaults 0 1\n")
        .unwrap();
    rollback(&g, Some(&disk), &j).unwrap();
    let mut after = snapshot(&g);
    // The journal itself is gone too.
    let mut before = before;
    before.retain(|k, _| !k.starts_with("/var/lib/xen2kvm"));
    after.retain(|k, _| !k.starts_with("/var/lib/xen2kvm"));
    assert_eq!(after, before);
    assert!(list(&g).unwrap().is_empty());
}

#[test]
fn an_unsaved_change_is_an_error_and_the_journal_is_kept() {
    let (_t, g) = guest();
    let j = begin(
        &g,
        None,
        &Scope {
            watched_trees: vec![gp("/boot")],
            ..Scope::default()
        },
    )
    .unwrap();
    g.write(&gp("/boot/vmlinuz-6.1"), b"changed by a tool")
        .unwrap();
    g.write(&gp("/boot/new-file"), b"created by a tool")
        .unwrap();
    let e = revert(&g, None).unwrap_err().to_string();
    assert!(e.contains("cannot restore /boot/vmlinuz-6.1"), "{e}");
    // What could be undone was; the journal stays for another try.
    assert!(!g.exists(&gp("/boot/new-file")).unwrap());
    assert_eq!(unfinished(&g).unwrap(), Some(j.dir().clone()));
}

#[test]
fn a_journal_cut_before_its_manifest_is_only_removed() {
    let (_t, g) = guest();
    g.mkdir_all(&gp("/var/lib/xen2kvm/journal/1/files"))
        .unwrap();
    assert_eq!(unfinished(&g).unwrap(), None);
    let r = revert(&g, None).unwrap();
    assert!(r.restored[0].contains("cut before any change"), "{r:?}");
    assert!(list(&g).unwrap().is_empty());
}

#[test]
fn a_damaged_manifest_is_an_error_naming_it() {
    let (_t, g) = guest();
    g.mkdir_all(&gp("/var/lib/xen2kvm/journal/1")).unwrap();
    g.write(&gp("/var/lib/xen2kvm/journal/1/manifest.json"), b"{garbage")
        .unwrap();
    let e = revert(&g, None).unwrap_err().to_string();
    assert!(
        e.contains("/var/lib/xen2kvm/journal/1/manifest.json"),
        "{e}"
    );
}
