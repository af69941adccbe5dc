//! [`WindowsGuest`]: a Windows guest in the appliance. Its system volume
//! is mounted at `/`; its SYSTEM and SOFTWARE hives are read and written
//! through the appliance's hivex (one hive open at a time: [`Hives`]
//! switches, committing first when writing). The pure model, facts and
//! plan are `xen2kvm_windows`'; this module only reaches the guest.

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};

use guestfs::{Handle, HivexOpenOptArgs, IsDirOptArgs};
use xen2kvm_windows::facts::{self, Base, WinFacts};
use xen2kvm_windows::plan::{self, Options, Plan, Source};
use xen2kvm_windows::reg::{components, Hive, HiveKind, Value};

use crate::error::{gerr, Error, Result};

/// A Windows guest in a running appliance.
pub struct WindowsGuest {
    g: Handle,
    device: String,
    base: Base,
    hives: [String; 2],
    disks: Vec<PathBuf>,
    may_write: bool,
}

impl WindowsGuest {
    /// Mounts the root `device` inspection found, read-only (writing is
    /// asked for with [`WindowsGuest::make_writable`]: even mounting NTFS
    /// for writing changes the volume), and reads what inspection knows.
    pub(crate) fn new(
        g: Handle,
        device: &str,
        disks: &[PathBuf],
        readonly: bool,
    ) -> Result<WindowsGuest> {
        g.mount_ro(device, "/").map_err(gerr("mount_ro", device))?;
        let s = |r: std::result::Result<String, guestfs::Error>| r.unwrap_or_default();
        let systemroot = g
            .inspect_get_windows_systemroot(device)
            .map_err(gerr("inspect_get_windows_systemroot", device))?;
        let hives = [
            g.inspect_get_windows_system_hive(device)
                .map_err(gerr("inspect_get_windows_system_hive", device))?,
            g.inspect_get_windows_software_hive(device)
                .map_err(gerr("inspect_get_windows_software_hive", device))?,
        ];
        let version = (
            u32::try_from(g.inspect_get_major_version(device).unwrap_or(0)).unwrap_or(0),
            u32::try_from(g.inspect_get_minor_version(device).unwrap_or(0)).unwrap_or(0),
        );
        let base = Base {
            product: s(g.inspect_get_product_name(device)),
            version,
            arch: s(g.inspect_get_arch(device)),
            staged: Vec::new(),
            systemroot,
        };
        Ok(WindowsGuest {
            g,
            device: device.to_owned(),
            base,
            hives,
            disks: disks.to_vec(),
            may_write: !readonly,
        })
    }

    /// Mounts the system volume for writing (the disks must have been
    /// added for writing).
    pub fn make_writable(&self) -> Result<()> {
        if !self.may_write {
            return Err(Error::Disk(
                "the Windows guest was opened read-only".to_owned(),
            ));
        }
        let d = &self.device;
        self.g.umount_all().map_err(gerr("umount_all", ""))?;
        self.g.mount(d, "/").map_err(|e| match gerr("mount", d)(e) {
            Error::Guestfs { message, .. } => Error::Disk(format!(
                "cannot mount the Windows system volume {d} for writing ({message}): if Windows was hibernated or not shut down cleanly, boot it on Xen and shut it down fully first"
            )),
            other => other,
        })
    }

    /// What inspection says (product, version, architecture, system root;
    /// `staged` is filled by [`WindowsGuest::facts`]).
    pub fn base(&self) -> &Base {
        &self.base
    }

    /// The root filesystem's device in the appliance.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The host paths of the disks.
    pub fn disks(&self) -> &[PathBuf] {
        &self.disks
    }

    /// The appliance's process id.
    pub fn pid(&self) -> Option<u32> {
        self.g.get_pid().ok().and_then(|p| u32::try_from(p).ok())
    }

    /// The path with the guest's own case for the parts that exist (NTFS
    /// is case-preserving; the appliance's mount is case-sensitive); the
    /// parts from the first missing one on stay as given.
    fn real_path(&self, path: &str) -> Result<String> {
        let mut out = String::new();
        let mut parts = path.split('/').filter(|p| !p.is_empty()).peekable();
        while let Some(part) = parts.next() {
            let dir = if out.is_empty() {
                "/".to_owned()
            } else {
                out.clone()
            };
            let entries = self.g.ls(&dir).map_err(gerr("ls", &dir))?;
            match entries.iter().find(|e| e.eq_ignore_ascii_case(part)) {
                Some(e) => {
                    out.push('/');
                    out.push_str(e);
                }
                None => {
                    out.push('/');
                    out.push_str(part);
                    for rest in parts.by_ref() {
                        out.push('/');
                        out.push_str(rest);
                    }
                }
            }
            if parts.peek().is_some() && !self.is_dir(&out)? {
                for rest in parts.by_ref() {
                    out.push('/');
                    out.push_str(rest);
                }
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        Ok(out)
    }

    /// Whether `path` is a directory (not following a link).
    fn is_dir(&self, path: &str) -> Result<bool> {
        self.g
            .is_dir(
                path,
                IsDirOptArgs {
                    followsymlinks: Some(false),
                },
            )
            .map_err(gerr("is_dir", path))
    }

    /// The files already staged in `%SystemRoot%\Drivers\VirtIO`.
    fn staged(&self) -> Result<Vec<String>> {
        let dir = self.real_path(&format!(
            "{}/{}",
            self.base.systemroot.trim_end_matches('/'),
            plan::STAGE_DIR
        ))?;
        if !self.is_dir(&dir)? {
            return Ok(Vec::new());
        }
        let mut names: Vec<String> = self
            .g
            .ls(&dir)
            .map_err(gerr("ls", &dir))?
            .into_iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        names.sort();
        Ok(names)
    }

    fn hives(&self, write: bool) -> Hives<'_> {
        Hives {
            g: &self.g,
            paths: &self.hives,
            write,
            open: Cell::new(None),
        }
    }

    /// The guest's facts (its hives read, nothing written).
    pub fn facts(&self) -> Result<WinFacts> {
        let mut base = self.base.clone();
        base.staged = self.staged()?;
        let hives = self.hives(false);
        let f = facts::read(
            base,
            &hives.view(HiveKind::System),
            &hives.view(HiveKind::Software),
        );
        hives.finish()?;
        f.map_err(Error::Files)
    }

    /// The conversion's plan for these facts.
    pub fn plan(&self, f: &WinFacts, opts: &Options<'_>) -> Result<Plan> {
        let hives = self.hives(false);
        let p = plan::plan(
            f,
            &hives.view(HiveKind::System),
            &hives.view(HiveKind::Software),
            opts,
        );
        hives.finish()?;
        p.map_err(Error::Files)
    }

    /// Adds the plan's files (`Source::Tree` paths under `tree`) and sets
    /// its registry values, each hive committed once.
    pub fn apply(&self, p: &Plan, tree: Option<&Path>) -> Result<()> {
        for f in &p.files {
            let dest = self.real_path(&f.dest)?;
            if let Some((parent, _)) = dest.rsplit_once('/') {
                if !parent.is_empty() {
                    self.g.mkdir_p(parent).map_err(gerr("mkdir_p", parent))?;
                }
            }
            match &f.source {
                Source::Tree(rel) => {
                    let tree = tree.ok_or_else(|| {
                        Error::Disk(format!("{}: no virtio-win tree to copy {rel} from", f.dest))
                    })?;
                    let host = tree.join(rel);
                    self.upload(&host, &dest)?;
                }
                Source::Host(host) => self.upload(host, &dest)?,
                Source::Text(text) => self
                    .g
                    .write(&dest, text.as_bytes())
                    .map_err(gerr("write", &dest))?,
            }
        }
        let hives = self.hives(true);
        for kind in [HiveKind::System, HiveKind::Software] {
            let mut view = hives.view(kind);
            plan::apply_edits(p, kind, &mut view).map_err(Error::Files)?;
        }
        hives.finish()
    }

    fn upload(&self, host: &Path, dest: &str) -> Result<()> {
        let name = host.to_string_lossy();
        std::fs::File::open(host)
            .map_err(|e| Error::Disk(format!("cannot read {}: {e}", host.display())))?;
        self.g.upload(&name, dest).map_err(gerr("upload", dest))
    }

    /// Unmounts and shuts the appliance down (every write on the disk).
    pub fn close(self) -> Result<()> {
        self.g.umount_all().map_err(gerr("umount_all", ""))?;
        self.g.shutdown().map_err(gerr("shutdown", ""))
    }
}

/// The guest's two hives over one appliance, which opens one at a time.
struct Hives<'g> {
    g: &'g Handle,
    paths: &'g [String; 2],
    write: bool,
    open: Cell<Option<HiveKind>>,
}

fn ioe(e: Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl Hives<'_> {
    fn view(&self, kind: HiveKind) -> View<'_, '_> {
        View { hives: self, kind }
    }

    fn path(&self, kind: HiveKind) -> &str {
        match kind {
            HiveKind::System => &self.paths[0],
            HiveKind::Software => &self.paths[1],
        }
    }

    /// Opens `kind`, committing and closing the other one first.
    fn select(&self, kind: HiveKind) -> io::Result<()> {
        if self.open.get() == Some(kind) {
            return Ok(());
        }
        self.finish().map_err(ioe)?;
        let path = self.path(kind);
        self.g
            .hivex_open(
                path,
                HivexOpenOptArgs {
                    write: Some(self.write),
                    ..Default::default()
                },
            )
            .map_err(|e| ioe(gerr("hivex_open", path)(e)))?;
        self.open.set(Some(kind));
        Ok(())
    }

    /// Commits (when writing) and closes the open hive.
    fn finish(&self) -> Result<()> {
        if let Some(kind) = self.open.take() {
            let path = self.path(kind);
            if self.write {
                self.g
                    .hivex_commit(None)
                    .map_err(gerr("hivex_commit", path))?;
            }
            self.g.hivex_close().map_err(gerr("hivex_close", path))?;
        }
        Ok(())
    }

    /// The node of `key`, `None` when a component is missing (`create`:
    /// missing components are added).
    fn node(&self, key: &str, create: bool) -> io::Result<Option<i64>> {
        let g = self.g;
        let mut node = g
            .hivex_root()
            .map_err(|e| ioe(gerr("hivex_root", key)(e)))?;
        for c in components(key) {
            let child = g
                .hivex_node_get_child(node, c)
                .map_err(|e| ioe(gerr("hivex_node_get_child", key)(e)))?;
            node = if child != 0 {
                child
            } else if create {
                g.hivex_node_add_child(node, c)
                    .map_err(|e| ioe(gerr("hivex_node_add_child", key)(e)))?
            } else {
                return Ok(None);
            };
        }
        Ok(Some(node))
    }
}

/// One of the two hives.
struct View<'h, 'g> {
    hives: &'h Hives<'g>,
    kind: HiveKind,
}

impl Hive for View<'_, '_> {
    fn subkeys(&self, key: &str) -> io::Result<Option<Vec<String>>> {
        self.hives.select(self.kind)?;
        let g = self.hives.g;
        let Some(node) = self.hives.node(key, false)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for c in g
            .hivex_node_children(node)
            .map_err(|e| ioe(gerr("hivex_node_children", key)(e)))?
        {
            out.push(
                g.hivex_node_name(c.hivex_node_h)
                    .map_err(|e| ioe(gerr("hivex_node_name", key)(e)))?,
            );
        }
        Ok(Some(out))
    }

    fn value(&self, key: &str, name: &str) -> io::Result<Option<Value>> {
        self.hives.select(self.kind)?;
        let g = self.hives.g;
        let Some(node) = self.hives.node(key, false)? else {
            return Ok(None);
        };
        let v = g
            .hivex_node_get_value(node, name)
            .map_err(|e| ioe(gerr("hivex_node_get_value", key)(e)))?;
        if v == 0 {
            return Ok(None);
        }
        let kind = g
            .hivex_value_type(v)
            .map_err(|e| ioe(gerr("hivex_value_type", key)(e)))?;
        let data = g
            .hivex_value_value(v)
            .map_err(|e| ioe(gerr("hivex_value_value", key)(e)))?;
        Ok(Some(Value::decode(
            u32::try_from(kind).unwrap_or(u32::MAX),
            &data,
        )))
    }

    fn set_value(&mut self, key: &str, name: &str, value: &Value) -> io::Result<()> {
        self.hives.select(self.kind)?;
        let node = self
            .hives
            .node(key, true)?
            .ok_or_else(|| io::Error::other(format!("{key}: cannot create the key")))?;
        self.hives
            .g
            .hivex_node_set_value(node, name, i64::from(value.kind()), &value.encode())
            .map_err(|e| ioe(gerr("hivex_node_set_value", key)(e)))
    }
}
