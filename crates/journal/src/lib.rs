//! The in-place conversion journal: before the first write, everything an
//! in-place conversion will change is saved *in the guest* with a manifest;
//! [`revert`] puts the guest back exactly as it was.
//!
//! A journal is a directory `/var/lib/xen2kvm/journal/<N>/` holding
//! `manifest.json` (every path's state before: absent, a file with its hash,
//! mode and owner, a link with its target, a directory), `files/<i>` (the
//! saved copies), `boot-area` (the first bytes of the boot disk, when GRUB's
//! boot code is to be installed) and, once the conversion finished, `done`.
//! The manifest is written last and synced before the conversion writes
//! anything: a journal without one was interrupted before any change and is
//! simply discarded; a journal without `done` is an *unfinished* conversion,
//! which `convert` refuses to touch until it is reverted.
//!
//! What is saved is the plan's [`Scope`]: the exact files and links the
//! plan writes or removes, trees saved whole (GRUB's directory, which
//! `grub-install` rewrites), trees only *watched* (`/boot`: every entry is
//! recorded with its hash, so what a tool creates there is removed on
//! revert and a change to a file that was not saved is an error, never
//! silently kept). Like the editor, this crate only speaks to the guest
//! through `&dyn GuestFs` and to the disk through [`BootArea`].

use std::collections::BTreeMap;
use std::io;

use serde::{Deserialize, Serialize};
use xen2kvm_vfs::{Entry, FileKind, GuestFs, GuestPath};

/// Where journals live in the guest.
pub const ROOT: &str = "/var/lib/xen2kvm/journal";

/// What a conversion may change, for the journal to save.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Files and links written, created or removed: each is saved (or
    /// recorded as absent, or as a link with its target).
    pub paths: Vec<GuestPath>,
    /// Directories whose every file is saved.
    pub saved_trees: Vec<GuestPath>,
    /// Directories whose every entry is recorded (files hashed, not saved).
    pub watched_trees: Vec<GuestPath>,
    /// How many bytes at the start of the boot disk to save (0: none).
    pub boot_area: usize,
}

/// The start of the guest's boot disk (MBR and the gap after it).
pub trait BootArea {
    /// The first `len` bytes.
    fn read(&self, len: usize) -> io::Result<Vec<u8>>;
    /// Writes `bytes` at offset 0.
    fn write(&self, bytes: &[u8]) -> io::Result<()>;
}

/// A path's state before the conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum State {
    Absent,
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        sha256: String,
        /// The saved copy, under the journal's `files/`.
        saved: Option<String>,
    },
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        target: String,
    },
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    /// The xen2kvm that wrote it.
    tool: String,
    /// Seconds since the epoch when it was written.
    started: u64,
    /// Every path, sorted (parents before children).
    entries: BTreeMap<String, State>,
    /// Trees whose new entries are removed on revert.
    trees: Vec<String>,
    /// Bytes of the boot disk saved in `boot-area` (0: none).
    boot_area: usize,
    /// Directories `begin` created for the journal, removed with the last one.
    created: Vec<String>,
}

/// A journal begun by [`begin`].
#[derive(Debug, Clone)]
pub struct Journal {
    dir: GuestPath,
    saved: usize,
}

impl Journal {
    /// Its directory in the guest.
    pub fn dir(&self) -> &GuestPath {
        &self.dir
    }

    /// How many files it saved.
    pub fn saved_files(&self) -> usize {
        self.saved
    }

    /// Marks the conversion finished (the journal stays, so that `revert`
    /// can still undo it).
    pub fn finish(&self, fs: &dyn GuestFs) -> io::Result<()> {
        fs.write(&join(&self.dir, "done")?, b"")?;
        fs.sync()
    }
}

/// One journal found in a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its directory.
    pub dir: GuestPath,
    /// Whether its conversion finished (`done`).
    pub finished: bool,
    /// Whether it has a manifest (else it was cut before any change).
    pub complete: bool,
}

/// What [`revert`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reverted {
    /// The journals undone, newest first.
    pub journals: Vec<String>,
    /// What was restored, removed or recreated, one line each.
    pub restored: Vec<String>,
}

fn p(s: &str) -> io::Result<GuestPath> {
    GuestPath::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

fn join(dir: &GuestPath, name: &str) -> io::Result<GuestPath> {
    dir.join(name)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

fn ctx(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The journals in the guest, oldest first.
pub fn list(fs: &dyn GuestFs) -> io::Result<Vec<Found>> {
    let root = p(ROOT)?;
    let mut numbered: Vec<(u64, GuestPath)> = Vec::new();
    for name in fs.list(&root)?.unwrap_or_default() {
        if let Ok(n) = name.parse::<u64>() {
            numbered.push((n, join(&root, &name)?));
        }
    }
    numbered.sort();
    let mut out = Vec::new();
    for (_, dir) in numbered {
        out.push(Found {
            finished: fs.exists(&join(&dir, "done")?)?,
            complete: fs.exists(&join(&dir, "manifest.json")?)?,
            dir,
        });
    }
    Ok(out)
}

/// The unfinished conversion's journal, if there is one: `convert` must
/// not start on such a guest (it is between Xen and KVM).
pub fn unfinished(fs: &dyn GuestFs) -> io::Result<Option<GuestPath>> {
    Ok(list(fs)?
        .into_iter()
        .find(|j| j.complete && !j.finished)
        .map(|j| j.dir))
}

/// The state of `path` now (links not followed; files hashed).
fn state_of(fs: &dyn GuestFs, path: &GuestPath) -> io::Result<State> {
    let Some(meta) = fs.metadata(path)? else {
        return Ok(State::Absent);
    };
    Ok(state_of_entry(&Entry {
        path: path.clone(),
        meta,
        sha256: match meta.kind {
            FileKind::File => fs.sha256(path)?,
            _ => None,
        },
        target: match meta.kind {
            FileKind::Symlink => fs.read_link(path)?,
            _ => None,
        },
    }))
}

fn state_of_entry(e: &Entry) -> State {
    let m = e.meta;
    match m.kind {
        FileKind::File => State::File {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            sha256: e.sha256.clone().unwrap_or_default(),
            saved: None,
        },
        FileKind::Dir => State::Dir {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
        },
        FileKind::Symlink => State::Symlink {
            target: e.target.clone().unwrap_or_default(),
        },
        FileKind::Other => State::Other,
    }
}

/// The state now of every entry under `trees` (each tree scanned once)
/// and of the other `paths` (one by one).
fn current<'a>(
    fs: &dyn GuestFs,
    trees: &[String],
    paths: impl Iterator<Item = &'a String>,
) -> io::Result<BTreeMap<String, State>> {
    let mut now = BTreeMap::new();
    for t in trees {
        let tp = p(t)?;
        now.insert(t.clone(), state_of(fs, &tp)?);
        for e in fs.scan(&tp)? {
            now.insert(e.path.to_string(), state_of_entry(&e));
        }
    }
    for path in paths {
        if !now.contains_key(path) && !trees.iter().any(|t| is_under(path, t)) {
            now.insert(path.clone(), state_of(fs, &p(path)?)?);
        }
    }
    Ok(now)
}

/// Saves everything `scope` names into a new journal and syncs it, before
/// the conversion writes anything. On failure the partial journal is
/// removed and nothing else was touched.
pub fn begin(fs: &dyn GuestFs, boot: Option<&dyn BootArea>, scope: &Scope) -> io::Result<Journal> {
    if let Some(dir) = unfinished(fs)? {
        return Err(io::Error::other(format!(
            "the guest has an unfinished conversion (journal {dir}); run xen2kvm revert first"
        )));
    }
    let root = p(ROOT)?;
    // The directories this creates, outermost first, to remove with the
    // last journal.
    let mut created = Vec::new();
    let mut d = Some(root.clone());
    while let Some(dir) = d {
        if fs.exists(&dir)? {
            break;
        }
        created.push(dir.to_string());
        d = dir.parent();
    }
    created.reverse();
    let next = list(fs)?
        .iter()
        .filter_map(|j| j.dir.file_name().and_then(|n| n.parse::<u64>().ok()))
        .max()
        .unwrap_or(0)
        + 1;
    let dir = join(&root, &next.to_string())?;
    let result = write_journal(fs, boot, scope, &dir, created);
    match result {
        Ok(saved) => Ok(Journal { dir, saved }),
        Err(e) => {
            let _ = fs.remove_all(&dir);
            Err(ctx(format!(
                "writing the journal {dir} (nothing was changed)"
            ))(e))
        }
    }
}

fn write_journal(
    fs: &dyn GuestFs,
    boot: Option<&dyn BootArea>,
    scope: &Scope,
    dir: &GuestPath,
    created: Vec<String>,
) -> io::Result<usize> {
    let files = join(dir, "files")?;
    fs.mkdir_all(&files)?;
    let mut entries: BTreeMap<String, State> = BTreeMap::new();
    let mut to_save: Vec<GuestPath> = Vec::new();
    let record = |path: &GuestPath,
                  save: bool,
                  entries: &mut BTreeMap<String, State>,
                  to_save: &mut Vec<GuestPath>|
     -> io::Result<()> {
        let state = state_of(fs, path)?;
        if save && matches!(state, State::File { .. }) {
            to_save.push(path.clone());
        }
        entries.insert(path.to_string(), state);
        Ok(())
    };
    for (trees, save) in [(&scope.watched_trees, false), (&scope.saved_trees, true)] {
        for t in trees {
            record(t, false, &mut entries, &mut to_save)?;
            for e in fs.scan(t)? {
                let state = state_of_entry(&e);
                if save && matches!(state, State::File { .. }) {
                    to_save.push(e.path.clone());
                }
                entries.insert(e.path.to_string(), state);
            }
        }
    }
    for path in &scope.paths {
        // A file created in a directory that does not exist yet: the
        // directories are new too.
        let mut up = path.parent();
        while let Some(d) = up {
            if fs.exists(&d)? {
                break;
            }
            record(&d, false, &mut entries, &mut to_save)?;
            up = d.parent();
        }
        record(path, true, &mut entries, &mut to_save)?;
    }
    let mut saved = 0;
    to_save.sort();
    to_save.dedup();
    for path in &to_save {
        let name = saved.to_string();
        let copy = join(&files, &name)?;
        fs.copy(path, &copy)
            .map_err(ctx(format!("saving {path}")))?;
        if let Some(State::File {
            saved: s, sha256, ..
        }) = entries.get_mut(path.as_str())
        {
            let got = fs.sha256(&copy)?.unwrap_or_default();
            if &got != sha256 {
                return Err(io::Error::other(format!(
                    "the saved copy of {path} does not match it (sha256 {got}, expected {sha256})"
                )));
            }
            *s = Some(name);
        }
        saved += 1;
    }
    if scope.boot_area > 0 {
        if let Some(b) = boot {
            let bytes = b.read(scope.boot_area)?;
            fs.write(&join(dir, "boot-area")?, &bytes)?;
        }
    }
    let mut trees: Vec<String> = scope
        .watched_trees
        .iter()
        .chain(&scope.saved_trees)
        .map(ToString::to_string)
        .collect();
    trees.sort();
    trees.dedup();
    let manifest = Manifest {
        version: 1,
        tool: format!("xen2kvm {}", env!("CARGO_PKG_VERSION")),
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        entries,
        trees,
        boot_area: if boot.is_some() { scope.boot_area } else { 0 },
        created,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    fs.write(&join(dir, "manifest.json")?, &json)?;
    fs.sync()?;
    Ok(saved)
}

/// Undoes every journal of the guest, newest first, restoring the guest as
/// it was before the first conversion; then removes the journals. A journal
/// cut before its manifest (nothing was changed) is only removed.
pub fn revert(fs: &dyn GuestFs, boot: Option<&dyn BootArea>) -> io::Result<Reverted> {
    let mut out = Reverted::default();
    for j in list(fs)?.into_iter().rev() {
        revert_one(fs, boot, &j.dir, &mut out)?;
    }
    Ok(out)
}

/// Undoes one journal (the one just begun, when a conversion fails or is
/// interrupted) and removes it.
pub fn rollback(
    fs: &dyn GuestFs,
    boot: Option<&dyn BootArea>,
    j: &Journal,
) -> io::Result<Reverted> {
    let mut out = Reverted::default();
    revert_one(fs, boot, &j.dir, &mut out)?;
    Ok(out)
}

fn revert_one(
    fs: &dyn GuestFs,
    boot: Option<&dyn BootArea>,
    dir: &GuestPath,
    out: &mut Reverted,
) -> io::Result<()> {
    let manifest_path = join(dir, "manifest.json")?;
    let Some(text) = fs.read(&manifest_path)? else {
        fs.remove_all(dir)?;
        out.restored
            .push(format!("removed {dir} (cut before any change)"));
        fs.sync()?;
        return Ok(());
    };
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{manifest_path}: not a journal manifest: {e}"),
        )
    })?;
    let files = join(dir, "files")?;

    // What the conversion created in the trees: removed, deepest first.
    let now = current(fs, &m.trees, m.entries.keys())?;
    let absent_paths: Vec<&String> = m
        .entries
        .iter()
        .filter(|(_, s)| matches!(s, State::Absent))
        .map(|(k, _)| k)
        .collect();
    let new_entries: Vec<&String> = now
        .iter()
        .filter(|(k, s)| {
            !matches!(s, State::Absent)
                && !m.entries.contains_key(*k)
                && !absent_paths.iter().any(|a| is_under(k, a))
        })
        .map(|(k, _)| k)
        .collect();
    let mut removed: Vec<&String> = Vec::new();
    for e in new_entries {
        // Parents come first: a removed directory takes its children.
        if removed.iter().any(|r| is_under(e, r)) {
            continue;
        }
        if fs.remove_all(&p(e)?)? {
            out.restored.push(format!("removed {e}"));
        }
        removed.push(e);
    }

    let mut unsaved = Vec::new();
    for (path_s, before) in &m.entries {
        let path = p(path_s)?;
        let now = now.get(path_s).cloned().unwrap_or(State::Absent);
        if same(&now, before) {
            continue;
        }
        match before {
            State::Absent => {
                fs.remove_all(&path)?;
                out.restored.push(format!("removed {path}"));
            }
            State::Dir { mode, uid, gid } => {
                if !matches!(now, State::Dir { .. }) {
                    fs.remove_all(&path)?;
                    fs.mkdir_all(&path)?;
                }
                fs.set_metadata(&path, *mode, *uid, *gid)?;
                out.restored.push(format!("restored directory {path}"));
            }
            State::Symlink { target } => {
                fs.remove_all(&path)?;
                fs.symlink(target, &path)?;
                out.restored
                    .push(format!("recreated link {path} -> {target}"));
            }
            State::File {
                mode,
                uid,
                gid,
                sha256,
                saved,
            } => {
                let content_differs = match &now {
                    State::File { sha256: s, .. } => s != sha256,
                    _ => true,
                };
                if content_differs {
                    let Some(saved) = saved else {
                        unsaved.push(path.to_string());
                        continue;
                    };
                    if !matches!(now, State::File { .. }) {
                        fs.remove_all(&path)?;
                    }
                    fs.copy(&join(&files, saved)?, &path)
                        .map_err(ctx(format!("restoring {path}")))?;
                    out.restored.push(format!("restored {path}"));
                } else {
                    out.restored
                        .push(format!("restored the mode and owner of {path}"));
                }
                fs.set_metadata(&path, *mode, *uid, *gid)?;
            }
            State::Other => unsaved.push(path.to_string()),
        }
    }
    if !unsaved.is_empty() {
        return Err(io::Error::other(format!(
            "cannot restore {} (changed, and not saved by the journal {dir}); the journal is kept",
            unsaved.join(", ")
        )));
    }

    if m.boot_area > 0 {
        let saved = fs
            .read(&join(dir, "boot-area")?)?
            .ok_or_else(|| io::Error::other(format!("{dir}/boot-area is missing")))?;
        let b = boot.ok_or_else(|| {
            io::Error::other(
                "the journal saved the disk's boot area, but no disk is open to restore it",
            )
        })?;
        if b.read(saved.len())? != saved {
            b.write(&saved)?;
            out.restored.push(format!(
                "restored the first {} KiB of the disk (boot code)",
                saved.len() / 1024
            ));
        }
    }

    // Check, then forget.
    let after = current(fs, &m.trees, m.entries.keys())?;
    let mut wrong = Vec::new();
    for (path, before) in &m.entries {
        let now = after.get(path).cloned().unwrap_or(State::Absent);
        if !same(&now, before) {
            wrong.push(path.clone());
        }
    }
    for (path, now) in &after {
        if !matches!(now, State::Absent) && !m.entries.contains_key(path) {
            wrong.push(format!("{path} (new)"));
        }
    }
    if !wrong.is_empty() {
        return Err(io::Error::other(format!(
            "after restoring, {} still differ(s) from the journal {dir}; the journal is kept",
            wrong.join(", ")
        )));
    }
    fs.remove_all(dir)?;
    if list(fs)?.is_empty() {
        for c in m.created.iter().rev() {
            let c = p(c)?;
            if fs.list(&c)?.is_some_and(|names| names.is_empty()) {
                fs.remove_all(&c)?;
            }
        }
    }
    fs.sync()?;
    out.journals.push(dir.to_string());
    Ok(())
}

fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether `now` is what `before` recorded (a saved copy's name aside).
fn same(now: &State, before: &State) -> bool {
    match (now, before) {
        (
            State::File {
                mode: m1,
                uid: u1,
                gid: g1,
                sha256: s1,
                ..
            },
            State::File {
                mode: m2,
                uid: u2,
                gid: g2,
                sha256: s2,
                ..
            },
        ) => (m1, u1, g1, s1) == (m2, u2, g2, s2),
        _ => now == before,
    }
}

#[cfg(test)]
mod tests;
