//! One xen2kvm at a time per disk: an advisory lock per image, held for the
//! whole run.
//!
//! QEMU's own image locks only guard what QEMU opens, and a conversion also
//! copies, renames and re-opens; so every command takes a lock of its own:
//! shared to read a disk (inspect, dry run, the source of a copy),
//! exclusive to write one (in place, revert, the output of a copy). The
//! lock file is `/run/lock/xen2kvm/<key>.lock`, the key being the disk's
//! device and inode (the same disk by any path, link or hard link) or, for
//! an output that does not exist yet, its canonical path. It holds the
//! owner's pid and command, which the refusal quotes. The kernel drops the
//! lock when the process dies, however it dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where the lock files live.
fn dir() -> PathBuf {
    std::env::var_os("XEN2KVM_LOCK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/lock/xen2kvm"))
}

/// How a disk is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read only: other readers may run too.
    Read,
    /// Written: nobody else.
    Write,
}

/// Held locks; released when dropped (or when the process ends).
#[derive(Debug, Default)]
pub(crate) struct Locks(Vec<File>);

impl Locks {
    /// Takes the lock of `disk` (or of an output path that does not exist
    /// yet), or fails saying who holds it.
    pub(crate) fn take(&mut self, disk: &Path, access: Access, what: &str) -> Result<()> {
        let key = key(disk)?;
        self.take_key(&key, disk, access, what)
    }

    /// Takes the lock of a name that is not a disk (a guest's migration:
    /// its state file's path, whether or not the file exists yet).
    pub(crate) fn take_name(&mut self, name: &Path, what: &str) -> Result<()> {
        let key = format!("name-{:016x}", fnv(name.as_os_str().as_encoded_bytes()));
        self.take_key(&key, name, Access::Write, what)
    }

    fn take_key(&mut self, key: &str, disk: &Path, access: Access, what: &str) -> Result<()> {
        let d = dir();
        std::fs::create_dir_all(&d)
            .with_context(|| format!("creating the lock directory {}", d.display()))?;
        let path = d.join(format!("{key}.lock"));
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        let r = match access {
            Access::Read => f.try_lock_shared(),
            Access::Write => f.try_lock(),
        };
        match r {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = f.read_to_string(&mut owner);
                let owner = owner.trim();
                bail!(
                    "{} is in use by another xen2kvm run ({}); wait for it to finish, or stop it (lock {})",
                    disk.display(),
                    if owner.is_empty() { "pid unknown" } else { owner },
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        if access == Access::Write {
            let _ = f.set_len(0);
            let _ = f.rewind();
            let _ = write!(f, "pid {}: xen2kvm {what}", std::process::id());
        }
        self.0.push(f);
        Ok(())
    }
}

/// The lock key of a disk: its device and inode (a block device: its
/// device number), else the canonical path of an output to be.
fn key(disk: &Path) -> Result<String> {
    match std::fs::metadata(disk) {
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            if m.file_type().is_block_device() {
                Ok(format!("blk-{:x}", m.rdev()))
            } else {
                Ok(format!("ino-{:x}-{:x}", m.dev(), m.ino()))
            }
        }
        Err(_) => {
            let parent = disk
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let parent = parent
                .canonicalize()
                .with_context(|| format!("{}: no such directory", parent.display()))?;
            let full = parent.join(disk.file_name().unwrap_or_default());
            Ok(format!(
                "path-{:016x}",
                fnv(full.as_os_str().as_encoded_bytes())
            ))
        }
    }
}

/// FNV-1a: a short stable name for a path.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests set XEN2KVM_LOCK_DIR: one at a time.
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn a_named_lock_holds_whether_or_not_its_file_exists() {
        let _env = ENV
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = tempfile::tempdir().unwrap();
        std::env::set_var("XEN2KVM_LOCK_DIR", t.path().join("locks"));
        let state = t.path().join("guest.json");
        let mut a = Locks::default();
        a.take_name(&state, "migrate guest").unwrap();
        std::fs::write(&state, b"{}").unwrap();
        let e = Locks::default()
            .take_name(&state, "migrate guest")
            .unwrap_err()
            .to_string();
        assert!(e.contains("in use by another xen2kvm run"), "{e}");
        drop(a);
        Locks::default().take_name(&state, "migrate guest").unwrap();
    }

    #[test]
    fn a_writer_excludes_everyone_and_readers_share() {
        let _env = ENV
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = tempfile::tempdir().unwrap();
        std::env::set_var("XEN2KVM_LOCK_DIR", t.path().join("locks"));
        let disk = t.path().join("disk.img");
        std::fs::write(&disk, b"x").unwrap();
        let link = t.path().join("link.img");
        std::os::unix::fs::symlink(&disk, &link).unwrap();

        let mut a = Locks::default();
        a.take(&disk, Access::Write, "convert --in-place").unwrap();
        // The same disk by another name: refused, naming the owner.
        let e = Locks::default()
            .take(&link, Access::Read, "inspect")
            .unwrap_err()
            .to_string();
        assert!(e.contains("in use by another xen2kvm run"), "{e}");
        assert!(
            e.contains(&format!(
                "pid {}: xen2kvm convert --in-place",
                std::process::id()
            )),
            "{e}"
        );
        drop(a);
        let mut r1 = Locks::default();
        r1.take(&disk, Access::Read, "inspect").unwrap();
        let mut r2 = Locks::default();
        r2.take(&link, Access::Read, "inspect").unwrap();
        assert!(Locks::default()
            .take(&disk, Access::Write, "revert")
            .is_err());
        // An output that does not exist yet is locked by its path.
        let out = t.path().join("out.qcow2");
        let mut o = Locks::default();
        o.take(&out, Access::Write, "convert -o").unwrap();
        assert!(Locks::default()
            .take(&t.path().join("./out.qcow2"), Access::Write, "convert -o")
            .is_err());
    }
}
