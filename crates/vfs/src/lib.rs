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

/// A guest filesystem, seen from outside the guest.
///
/// Absent files are `Ok(None)` / `Ok(false)`, not errors: the callers ask
/// "is there an `/etc/sysconfig/kernel`?" far more often than they expect one.
/// Reads follow symlinks the way the guest would (inside the guest root);
/// [`GuestFs::read_link`] and [`GuestFs::remove`] act on the link itself.
pub trait GuestFs {
    /// The whole content of a regular file, or `None` when it does not exist.
    fn read(&self, path: &GuestPath) -> io::Result<Option<Vec<u8>>>;

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

    /// A text file, or `None` when absent; not UTF-8 is an `InvalidData` error
    /// naming the file (guest files are untrusted input, never lossily edited).
    fn read_text(&self, path: &GuestPath) -> io::Result<Option<String>> {
        match self.read(path)? {
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
