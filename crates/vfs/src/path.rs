//! [`GuestPath`]: an absolute path inside a guest, normalized and checked.

use std::fmt;

/// An absolute, normalized path inside the guest (`/etc/fstab`).
///
/// It has no `.`/`..` components and no empty ones, and never contains NUL,
/// so joining it under a host root cannot climb out by itself (symlinks are
/// the resolver's business, see [`crate::DirFs`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestPath(String);

/// Why a string is not a valid [`GuestPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// The path does not start with `/`.
    NotAbsolute(String),
    /// The path has a `..` component or a NUL byte.
    Invalid(String),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NotAbsolute(p) => write!(f, "guest path {p:?} is not absolute"),
            PathError::Invalid(p) => write!(f, "guest path {p:?} has '..' or NUL in it"),
        }
    }
}

impl std::error::Error for PathError {}

impl GuestPath {
    /// The root directory `/`.
    pub fn root() -> GuestPath {
        GuestPath("/".to_owned())
    }

    /// Checks and normalizes `path` (`//etc/./fstab` becomes `/etc/fstab`).
    pub fn new(path: &str) -> Result<GuestPath, PathError> {
        if !path.starts_with('/') {
            return Err(PathError::NotAbsolute(path.to_owned()));
        }
        if path.contains('\0') {
            return Err(PathError::Invalid(path.to_owned()));
        }
        let mut out = String::with_capacity(path.len());
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(PathError::Invalid(path.to_owned())),
                _ => {
                    out.push('/');
                    out.push_str(part);
                }
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        Ok(GuestPath(out))
    }

    /// A path known to be valid at compile time; panics otherwise.
    ///
    /// For literals such as `GuestPath::lit("/etc/fstab")` only.
    #[track_caller]
    pub fn lit(path: &'static str) -> GuestPath {
        match GuestPath::new(path) {
            Ok(p) => p,
            Err(e) => panic!("invalid literal guest path: {e}"),
        }
    }

    /// This path with `rel` (a relative path of one or more names) appended.
    pub fn join(&self, rel: &str) -> Result<GuestPath, PathError> {
        if rel.starts_with('/') {
            return Err(PathError::Invalid(rel.to_owned()));
        }
        GuestPath::new(&format!("{}/{rel}", self.0))
    }

    /// The path as a string, always starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component, or `None` for `/`.
    pub fn file_name(&self) -> Option<&str> {
        self.0.rsplit('/').next().filter(|s| !s.is_empty())
    }

    /// The parent directory, or `None` for `/`.
    pub fn parent(&self) -> Option<GuestPath> {
        if self.0 == "/" {
            return None;
        }
        let cut = self.0.rfind('/').unwrap_or(0);
        Some(GuestPath(if cut == 0 {
            "/".to_owned()
        } else {
            self.0[..cut].to_owned()
        }))
    }

    /// The components, without the leading root.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }
}

impl fmt::Display for GuestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for GuestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(
            GuestPath::new("//etc/./default//grub").unwrap().as_str(),
            "/etc/default/grub"
        );
        assert_eq!(GuestPath::new("/").unwrap().as_str(), "/");
        assert_eq!(GuestPath::new("/boot/").unwrap().as_str(), "/boot");
    }

    #[test]
    fn rejects_relative_dotdot_and_nul() {
        assert_eq!(
            GuestPath::new("etc").unwrap_err(),
            PathError::NotAbsolute("etc".into())
        );
        assert!(matches!(
            GuestPath::new("/etc/../root"),
            Err(PathError::Invalid(_))
        ));
        assert!(matches!(
            GuestPath::new("/etc/\0"),
            Err(PathError::Invalid(_))
        ));
        assert!(GuestPath::root().join("../x").is_err());
        assert!(GuestPath::root().join("/x").is_err());
    }

    #[test]
    fn parent_and_name() {
        let p = GuestPath::lit("/boot/grub/grub.cfg");
        assert_eq!(p.file_name(), Some("grub.cfg"));
        assert_eq!(p.parent().unwrap().as_str(), "/boot/grub");
        assert_eq!(GuestPath::lit("/boot").parent().unwrap().as_str(), "/");
        assert_eq!(GuestPath::root().parent(), None);
        assert_eq!(GuestPath::root().file_name(), None);
        assert_eq!(
            p.components().collect::<Vec<_>>(),
            ["boot", "grub", "grub.cfg"]
        );
    }
}
