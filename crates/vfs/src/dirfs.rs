//! [`DirFs`]: a [`GuestFs`] over a plain host directory holding a guest tree.
//!
//! Every path is resolved one component at a time with `symlink_metadata`,
//! so the host never follows a guest symlink: links are read and their
//! targets re-rooted at the guest root (absolute targets) or at the link's
//! directory (relative targets), and `..` stops at the guest root.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::{FileKind, GuestFs, GuestPath, Metadata};

/// How many symlinks one lookup may traverse, as Linux's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// A guest tree unpacked in a host directory.
#[derive(Debug, Clone)]
pub struct DirFs {
    root: PathBuf,
}

impl DirFs {
    /// A filesystem whose `/` is the host directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> DirFs {
        DirFs { root: root.into() }
    }

    /// The host directory that is the guest's `/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of `path`, following the guest's symlinks inside the
    /// root (the last component too when `follow_last`).
    pub fn resolve(&self, path: &GuestPath, follow_last: bool) -> io::Result<PathBuf> {
        let mut pending: Vec<OsString> = path.components().rev().map(OsString::from).collect();
        let mut resolved: Vec<OsString> = Vec::new();
        let mut links = 0;
        while let Some(name) = pending.pop() {
            match name.as_bytes() {
                b"" | b"." => continue,
                b".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            if pending.is_empty() && !follow_last {
                resolved.push(name);
                break;
            }
            let host = self.host_path(&resolved).join(&name);
            match fs::symlink_metadata(&host) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{path}: too many levels of symbolic links in the guest"),
                        ));
                    }
                    let target = fs::read_link(&host)?;
                    let bytes = target.as_os_str().as_bytes();
                    if bytes.starts_with(b"/") {
                        resolved.clear();
                    }
                    for part in bytes.split(|&b| b == b'/').rev() {
                        pending.push(OsStr::from_bytes(part).to_owned());
                    }
                }
                _ => resolved.push(name),
            }
        }
        Ok(self.host_path(&resolved))
    }

    fn host_path(&self, parts: &[OsString]) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(parts);
        p
    }
}

fn absent_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn with_path<'a>(path: &'a GuestPath, op: &str) -> impl FnOnce(io::Error) -> io::Error + 'a {
    let op = op.to_owned();
    move |e| io::Error::new(e.kind(), format!("{op} {path}: {e}"))
}

/// The metadata of the regular file `host` (the guest's `path`), `None`
/// when absent; anything else is an error naming the guest path.
fn regular(host: &Path, path: &GuestPath) -> io::Result<Option<fs::Metadata>> {
    match absent_is_none(fs::metadata(host)).map_err(with_path(path, "reading"))? {
        None => Ok(None),
        Some(m) if m.is_file() => Ok(Some(m)),
        Some(m) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "reading {path}: is {}, not a regular file",
                if m.is_dir() {
                    "a directory"
                } else {
                    "a device node, FIFO or socket"
                }
            ),
        )),
    }
}

impl GuestFs for DirFs {
    fn read(&self, path: &GuestPath) -> io::Result<Option<Vec<u8>>> {
        let host = self.resolve(path, true)?;
        if regular(&host, path)?.is_none() {
            return Ok(None);
        }
        absent_is_none(fs::read(host)).map_err(with_path(path, "reading"))
    }

    fn file_size(&self, path: &GuestPath) -> io::Result<Option<u64>> {
        let host = self.resolve(path, true)?;
        Ok(regular(&host, path)?.map(|m| m.len()))
    }

    fn metadata(&self, path: &GuestPath) -> io::Result<Option<Metadata>> {
        use std::os::unix::fs::MetadataExt;
        let host = self.resolve(path, false)?;
        let Some(m) =
            absent_is_none(fs::symlink_metadata(host)).map_err(with_path(path, "stat"))?
        else {
            return Ok(None);
        };
        let t = m.file_type();
        let kind = if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_dir() {
            FileKind::Dir
        } else if t.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        Ok(Some(Metadata {
            kind,
            size: m.len(),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        }))
    }

    fn set_metadata(&self, path: &GuestPath, mode: u32, uid: u32, gid: u32) -> io::Result<()> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let host = self.resolve(path, false)?;
        let m = fs::symlink_metadata(&host).map_err(with_path(path, "stat"))?;
        if m.file_type().is_symlink() {
            return Ok(());
        }
        if (m.uid(), m.gid()) != (uid, gid) {
            std::os::unix::fs::chown(&host, Some(uid), Some(gid))
                .map_err(with_path(path, "chown"))?;
        }
        fs::set_permissions(&host, fs::Permissions::from_mode(mode))
            .map_err(with_path(path, "chmod"))
    }

    fn sha256(&self, path: &GuestPath) -> io::Result<Option<String>> {
        use sha2::{Digest, Sha256};
        let host = self.resolve(path, true)?;
        if regular(&host, path)?.is_none() {
            return Ok(None);
        }
        let mut file = fs::File::open(&host).map_err(with_path(path, "reading"))?;
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher).map_err(with_path(path, "reading"))?;
        Ok(Some(
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        ))
    }

    fn mkdir_all(&self, dir: &GuestPath) -> io::Result<()> {
        let host = self.resolve(dir, true)?;
        fs::create_dir_all(host).map_err(with_path(dir, "creating directory"))
    }

    fn remove_all(&self, path: &GuestPath) -> io::Result<bool> {
        let host = self.resolve(path, false)?;
        match fs::symlink_metadata(&host) {
            Err(_) => Ok(false),
            Ok(m) if m.is_dir() => fs::remove_dir_all(&host)
                .map(|()| true)
                .map_err(with_path(path, "removing")),
            Ok(_) => fs::remove_file(&host)
                .map(|()| true)
                .map_err(with_path(path, "removing")),
        }
    }

    fn write(&self, path: &GuestPath, content: &[u8]) -> io::Result<()> {
        let host = self.resolve(path, true)?;
        fs::write(host, content).map_err(with_path(path, "writing"))
    }

    fn list(&self, dir: &GuestPath) -> io::Result<Option<Vec<String>>> {
        let host = self.resolve(dir, true)?;
        if !fs::metadata(&host).map(|m| m.is_dir()).unwrap_or(false) {
            return Ok(None);
        }
        let mut names = Vec::new();
        for entry in fs::read_dir(&host).map_err(with_path(dir, "listing"))? {
            let entry = entry.map_err(with_path(dir, "listing"))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(Some(names))
    }

    fn read_link(&self, path: &GuestPath) -> io::Result<Option<String>> {
        let host = self.resolve(path, false)?;
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = fs::read_link(&host).map_err(with_path(path, "reading link"))?;
                Ok(Some(t.to_string_lossy().into_owned()))
            }
            _ => Ok(None),
        }
    }

    fn symlink(&self, target: &str, link: &GuestPath) -> io::Result<()> {
        let host = self.resolve(link, false)?;
        std::os::unix::fs::symlink(target, host).map_err(with_path(link, "creating link"))
    }

    fn remove(&self, path: &GuestPath) -> io::Result<bool> {
        let host = self.resolve(path, false)?;
        Ok(absent_is_none(fs::remove_file(host))
            .map_err(with_path(path, "removing"))?
            .is_some())
    }

    fn copy(&self, from: &GuestPath, to: &GuestPath) -> io::Result<bool> {
        let src = self.resolve(from, true)?;
        if regular(&src, from)?.is_none() {
            return Ok(false);
        }
        let dst = self.resolve(to, true)?;
        fs::copy(src, dst).map_err(with_path(to, "copying to"))?;
        Ok(true)
    }

    fn exists(&self, path: &GuestPath) -> io::Result<bool> {
        let host = self.resolve(path, false)?;
        Ok(fs::symlink_metadata(host).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A host directory with a secret file, and a guest root beside it.
    fn setup() -> (tempfile::TempDir, DirFs) {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("host-secret"), "HOST").unwrap();
        let root = tmp.path().join("guest");
        fs::create_dir_all(root.join("etc/default")).unwrap();
        fs::write(root.join("etc/fstab"), "/dev/xvda1 / ext4 defaults 0 1\n").unwrap();
        (tmp, DirFs::new(root))
    }

    fn p(s: &str) -> GuestPath {
        GuestPath::new(s).unwrap()
    }

    #[test]
    fn reads_and_absent_is_none() {
        let (_t, fs) = setup();
        assert!(fs
            .read_text(&p("/etc/fstab"))
            .unwrap()
            .unwrap()
            .contains("xvda1"));
        assert_eq!(fs.read(&p("/etc/nothing")).unwrap(), None);
        assert_eq!(fs.read(&p("/no/such/dir/file")).unwrap(), None);
        assert_eq!(fs.list(&p("/nope")).unwrap(), None);
        assert_eq!(fs.list(&p("/etc")).unwrap().unwrap(), ["default", "fstab"]);
        assert!(fs.read(&p("/etc")).is_err());
    }

    #[test]
    fn absolute_link_stays_inside_root() {
        let (tmp, fs) = setup();
        let host_secret = tmp.path().join("host-secret");
        // An absolute link naming the host file's real path.
        symlink(&host_secret, fs.root().join("etc/abs")).unwrap();
        assert_eq!(fs.read(&p("/etc/abs")).unwrap(), None);
        // Absolute link into the guest is followed inside the guest.
        symlink("/etc/fstab", fs.root().join("etc/mtab")).unwrap();
        assert!(fs
            .read_text(&p("/etc/mtab"))
            .unwrap()
            .unwrap()
            .contains("xvda1"));
        assert_eq!(
            fs.read_link(&p("/etc/mtab")).unwrap().as_deref(),
            Some("/etc/fstab")
        );
    }

    #[test]
    fn dotdot_chains_stop_at_root() {
        let (_t, fs) = setup();
        symlink("../../../../host-secret", fs.root().join("etc/up")).unwrap();
        assert_eq!(fs.read(&p("/etc/up")).unwrap(), None);
        symlink("../../../../etc/fstab", fs.root().join("etc/up2")).unwrap();
        assert!(fs.read(&p("/etc/up2")).unwrap().is_some());
        // A directory link that climbs out is also re-rooted.
        symlink("../../..", fs.root().join("etc/default/top")).unwrap();
        assert_eq!(fs.read(&p("/etc/default/top/host-secret")).unwrap(), None);
        assert!(fs.read(&p("/etc/default/top/etc/fstab")).unwrap().is_some());
    }

    #[test]
    fn writes_through_links_stay_inside_root() {
        let (tmp, fs) = setup();
        symlink("../../../host-secret", fs.root().join("etc/w")).unwrap();
        fs.write(&p("/etc/w"), b"GUEST").unwrap();
        assert_eq!(
            fs::read_to_string(tmp.path().join("host-secret")).unwrap(),
            "HOST"
        );
        assert_eq!(
            fs::read_to_string(fs.root().join("host-secret")).unwrap(),
            "GUEST"
        );
    }

    #[test]
    fn link_loops_are_errors_not_hangs() {
        let (_t, fs) = setup();
        symlink("b", fs.root().join("etc/a")).unwrap();
        symlink("a", fs.root().join("etc/b")).unwrap();
        symlink("/etc/self", fs.root().join("etc/self")).unwrap();
        let e = fs.read(&p("/etc/a")).unwrap_err();
        assert!(e.to_string().contains("too many levels"), "{e}");
        assert!(fs.read(&p("/etc/self/x")).is_err());
    }

    #[test]
    fn remove_and_symlink_act_on_the_link() {
        let (_t, fs) = setup();
        let link = p("/etc/default/getty@hvc0.service");
        fs.symlink("/lib/systemd/system/getty@.service", &link)
            .unwrap();
        assert!(fs.exists(&link).unwrap());
        assert_eq!(fs.read(&link).unwrap(), None); // dangling inside the guest
        assert!(fs.remove(&link).unwrap());
        assert!(!fs.remove(&link).unwrap());
        assert!(!fs.exists(&link).unwrap());
        assert!(fs.exists(&p("/etc/fstab")).unwrap());
    }
}
