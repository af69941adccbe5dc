//! The inspector's error type, and the one place where `guestfs::Error`
//! (which has `Debug` but no `Display` in guestfs 0.1.0) becomes a message.

use std::fmt;

/// What went wrong opening or reading a guest.
#[derive(Debug)]
pub enum Error {
    /// A libguestfs call failed: the operation, what it was applied to, and
    /// libguestfs' own message.
    Guestfs {
        /// The libguestfs call, e.g. `mount_ro`.
        op: &'static str,
        /// What the call was applied to (a device, a guest path, a disk).
        target: String,
        /// libguestfs' message.
        message: String,
    },
    /// Inspection found no operating system on the disks.
    NoOs,
    /// Inspection found several roots and none was chosen.
    MultipleRoots(Vec<String>),
    /// The chosen root is not one inspection found.
    UnknownRoot {
        /// The root that was asked for.
        wanted: String,
        /// The roots inspection found.
        found: Vec<String>,
    },
    /// The disk is missing or unreadable on the host.
    Disk(String),
    /// The operating system is not Linux.
    NotLinux(String),
    /// Reading the guest's files failed (the message names the file).
    Files(std::io::Error),
}

/// The inspector's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Guestfs {
                op,
                target,
                message,
            } if target.is_empty() => {
                write!(f, "libguestfs {op}: {message}")
            }
            Error::Guestfs {
                op,
                target,
                message,
            } => write!(f, "libguestfs {op} {target}: {message}"),
            Error::NoOs => write!(f, "no operating system found on the disk(s)"),
            Error::MultipleRoots(roots) => write!(
                f,
                "several operating systems found ({}): choose one with --root",
                roots.join(", ")
            ),
            Error::UnknownRoot { wanted, found } => {
                write!(
                    f,
                    "root {wanted} not found; inspection found: {}",
                    found.join(", ")
                )
            }
            Error::Disk(m) => f.write_str(m),
            Error::Files(e) => write!(f, "reading the guest's files: {e}"),
            Error::NotLinux(what) => {
                write!(f, "the guest is {what}: xen2kvm converts Linux guests only")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}

/// Converts a libguestfs error, naming the call and its target.
pub(crate) fn gerr<'a>(
    op: &'static str,
    target: &'a str,
) -> impl FnOnce(guestfs::Error) -> Error + 'a {
    move |e| Error::Guestfs {
        op,
        target: target.to_owned(),
        message: message_of(&e),
    }
}

/// libguestfs' message out of the error's `Debug` form (its only accessor).
fn message_of(e: &guestfs::Error) -> String {
    let debug = format!("{e:?}");
    // API(APIError { operation: "mount_ro", message: "...", errno: 2 })
    if let Some(start) = debug.find("message: \"") {
        let rest = &debug[start + "message: \"".len()..];
        if let Some(end) = rest.find("\", errno:") {
            return rest[..end].replace("\\\"", "\"").replace("\\n", " ");
        }
    }
    debug
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_with_context() {
        let e = Error::Guestfs {
            op: "mount_ro",
            target: "/dev/sda1".into(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "libguestfs mount_ro /dev/sda1: bad");
        let e = Error::MultipleRoots(vec!["/dev/sda1".into(), "/dev/sdb1".into()]);
        assert!(e.to_string().contains("/dev/sda1, /dev/sdb1"));
    }
}
