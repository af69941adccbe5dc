//! The seam between xen2kvm's logic and a guest's filesystem.
//!
//! [`GuestFs`] is a small, object-safe trait: everything that reads or edits
//! a guest goes through `&dyn GuestFs`, so the same code runs on a disk image
//! opened in the libguestfs appliance (crate `xen2kvm-inspector`) and on a
//! plain directory ([`DirFs`]) in tests.
//!
//! This crate does no guest-specific logic and knows nothing of libguestfs.
//! Its one hard job is [`DirFs`]: a guest's symlinks are resolved *inside*
//! the guest root, so an absolute link such as `/etc/mtab -> /proc/mounts`
//! or a `../../..` chain can never reach a file of the host.

#![warn(missing_docs)]

mod dirfs;
mod path;

use std::io;

pub use dirfs::DirFs;
pub use path::{GuestPath, PathError};

/// The largest text file xen2kvm reads (configuration files, boot menus):
/// a guest file larger than this is refused with an error naming it, so a
/// hostile guest (a `/etc/fstab` of a GiB) cannot exhaust the host's memory.
pub const MAX_TEXT: u64 = 16 << 20;

/// The largest initramfs xen2kvm reads (to list its modules).
pub const MAX_INITRD: u64 = 512 << 20;

/// What kind of thing is at a path (the path itself, links not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device node, FIFO or socket.
    Other,
}

/// One entry of [`GuestFs::scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path.
    pub path: GuestPath,
    /// Its `lstat`.
    pub meta: Metadata,
    /// A regular file's SHA-256 (hex).
    pub sha256: Option<String>,
    /// A link's target.
    pub target: Option<String>,
}

/// A path's `lstat`: kind, size, permission bits and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// What it is.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// A guest filesystem, seen from outside the guest.
///
/// Absent files are `Ok(None)` / `Ok(false)`, not errors: the callers ask
/// "is there an `/etc/sysconfig/kernel`?" far more often than they expect one.
/// Reads follow symlinks the way the guest would (inside the guest root);
/// [`GuestFs::read_link`] and [`GuestFs::remove`] act on the link itself.
pub trait GuestFs {
    /// The whole content of a regular file, or `None` when it does not exist.
    /// Anything else (a directory, a device node, a FIFO, also reached
    /// through a link) is an error naming the path.
    fn read(&self, path: &GuestPath) -> io::Result<Option<Vec<u8>>>;

    /// The size of the regular file at `path` (links followed), `None` when
    /// absent; an error when it is not a regular file.
    fn file_size(&self, path: &GuestPath) -> io::Result<Option<u64>>;

    /// Creates or replaces a regular file (parent directories must exist).
    fn write(&self, path: &GuestPath, content: &[u8]) -> io::Result<()>;

    /// The names in a directory, sorted, or `None` when it does not exist.
    fn list(&self, dir: &GuestPath) -> io::Result<Option<Vec<String>>>;

    /// The target of a symlink, or `None` when `path` is absent or not a link.
    fn read_link(&self, path: &GuestPath) -> io::Result<Option<String>>;

    /// Creates a symlink at `link` pointing to `target` (kept verbatim).
    fn symlink(&self, target: &str, link: &GuestPath) -> io::Result<()>;

    /// Removes a file or symlink; `Ok(false)` when there was nothing to remove.
    fn remove(&self, path: &GuestPath) -> io::Result<bool>;

    /// Whether anything (file, directory or link) exists at `path`.
    fn exists(&self, path: &GuestPath) -> io::Result<bool>;

    /// Copies the regular file `from` to `to` (replacing it), keeping its
    /// mode where the backend can. `Ok(false)` when `from` does not exist.
    fn copy(&self, from: &GuestPath, to: &GuestPath) -> io::Result<bool> {
        match self.read(from)? {
            Some(bytes) => {
                self.write(to, &bytes)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The `lstat` of `path` (a link is described, not followed), or `None`
    /// when nothing is there.
    fn metadata(&self, path: &GuestPath) -> io::Result<Option<Metadata>>;

    /// Sets a file's or directory's permission bits and owner.
    fn set_metadata(&self, path: &GuestPath, mode: u32, uid: u32, gid: u32) -> io::Result<()>;

    /// The SHA-256 of a regular file (links followed), lowercase hex, or
    /// `None` when absent.
    fn sha256(&self, path: &GuestPath) -> io::Result<Option<String>>;

    /// Creates a directory and its parents (`mkdir -p`).
    fn mkdir_all(&self, dir: &GuestPath) -> io::Result<()>;

    /// Removes a file, link, or a directory with everything in it;
    /// `Ok(false)` when there was nothing.
    fn remove_all(&self, path: &GuestPath) -> io::Result<bool>;

    /// Makes every write so far durable (on the disk, not only in a cache).
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    /// Every path under `dir` (not `dir` itself), parents before children,
    /// sorted; links are listed, never followed. Empty when `dir` is absent.
    fn walk(&self, dir: &GuestPath) -> io::Result<Vec<GuestPath>> {
        let mut out = Vec::new();
        let mut pending = vec![dir.clone()];
        while let Some(d) = pending.pop() {
            if self.metadata(&d)?.map(|m| m.kind) != Some(FileKind::Dir) {
                continue;
            }
            let mut children = Vec::new();
            for name in self.list(&d)?.unwrap_or_default() {
                let Ok(child) = d.join(&name) else { continue };
                children.push(child);
            }
            for c in children.into_iter().rev() {
                out.push(c.clone());
                pending.push(c);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The content of a regular file of at most `max` bytes, `None` when
    /// absent; a larger one is an error naming it (read nothing of it).
    fn read_limited(&self, path: &GuestPath, max: u64) -> io::Result<Option<Vec<u8>>> {
        if let Some(size) = self.file_size(path)? {
            if size > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{path}: {size} bytes, larger than any such file xen2kvm reads (limit {} MiB); refusing to read it",
                        max >> 20
                    ),
                ));
            }
        }
        self.read(path)
    }

    /// Every entry under `dir` (not `dir` itself; links not followed) with
    /// its metadata, and a file's hash or a link's target, sorted by path;
    /// empty when `dir` is absent. The appliance does it in a few calls
    /// (one per entry would take minutes under TCG for `/boot`).
    fn scan(&self, dir: &GuestPath) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for path in self.walk(dir)? {
            let Some(meta) = self.metadata(&path)? else {
                continue;
            };
            let sha256 = match meta.kind {
                FileKind::File => self.sha256(&path)?,
                _ => None,
            };
            let target = match meta.kind {
                FileKind::Symlink => self.read_link(&path)?,
                _ => None,
            };
            out.push(Entry {
                path,
                meta,
                sha256,
                target,
            });
        }
        Ok(out)
    }

    /// A text file, or `None` when absent. Refused with an error naming the
    /// file: not UTF-8 (guest files are untrusted input, never lossily
    /// edited), not a regular file (a link to a device node), or larger than
    /// [`MAX_TEXT`].
    fn read_text(&self, path: &GuestPath) -> io::Result<Option<String>> {
        match self.read_limited(path, MAX_TEXT)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{path}: not a UTF-8 text file"),
                )
            }),
        }
    }
}
