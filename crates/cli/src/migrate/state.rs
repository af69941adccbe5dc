//! The per-guest state file of `migrate` (`STATE_DIR/NAME.json`, default
//! `/var/lib/xen2kvm/migrate`): what an orchestrator polls while a
//! migration runs (pid, phase, per-disk progress, phase times) and reads
//! when it ends (result, error, the report). Rewritten atomically (a
//! temporary file renamed over it) at every phase and at most once a
//! second while copying. A finished migration's file is what makes
//! `migrate` idempotent: run again with the same request, it answers
//! `done` and changes nothing. The shape is in docs/json.md.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// What was asked: a finished state answers only the same request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) input_mode: String,
    pub(crate) input: String,
    pub(crate) output_mode: String,
    pub(crate) storage: String,
    pub(crate) conn: Option<String>,
}

/// Per-disk progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DiskProgress {
    pub(crate) item: usize,
    pub(crate) items: usize,
    pub(crate) done: u64,
    pub(crate) total: u64,
}

/// The file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Doc {
    pub(crate) version: u32,
    pub(crate) name: String,
    pub(crate) request: Request,
    pub(crate) pid: u32,
    /// `running`, then `migrated`, `failed`, `blocked` or `interrupted`.
    pub(crate) status: String,
    pub(crate) phase: Option<String>,
    pub(crate) progress: Option<DiskProgress>,
    pub(crate) phases: Vec<serde_json::Value>,
    pub(crate) error: Option<String>,
    /// Seconds since the epoch.
    pub(crate) started: u64,
    pub(crate) updated: u64,
    pub(crate) finished: Option<u64>,
    /// The final report (docs/json.md), once finished.
    pub(crate) report: Option<serde_json::Value>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The state directory: `--state-dir`, `$XEN2KVM_STATE_DIR`, or
/// `/var/lib/xen2kvm/migrate`.
pub(crate) fn dir(arg: Option<&Path>) -> PathBuf {
    arg.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("XEN2KVM_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/lib/xen2kvm/migrate"))
}

/// Reads a state file; a missing or unreadable one is `None`.
pub(crate) fn read(path: &Path) -> Option<Doc> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The state file of a running migration.
pub(crate) struct State {
    path: PathBuf,
    pub(crate) doc: Doc,
    last: Option<Instant>,
}

impl State {
    /// Starts a new state (`running`) for `name`, replacing an old one.
    pub(crate) fn begin(dir: &Path, name: &str, request: Request) -> Result<State> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the state directory {}", dir.display()))?;
        let t = now();
        let mut s = State {
            path: path(dir, name),
            doc: Doc {
                version: 1,
                name: name.to_owned(),
                request,
                pid: std::process::id(),
                status: "running".to_owned(),
                phase: None,
                progress: None,
                phases: Vec::new(),
                error: None,
                started: t,
                updated: t,
                finished: None,
                report: None,
            },
            last: None,
        };
        s.write()?;
        Ok(s)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the file atomically.
    pub(crate) fn write(&mut self) -> Result<()> {
        self.doc.updated = now();
        self.last = Some(Instant::now());
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("writing the state in {}", dir.display()))?;
        serde_json::to_writer_pretty(&mut tmp, &self.doc)?;
        tmp.persist(&self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }

    /// The end: the result, the error, the report.
    pub(crate) fn finish(
        &mut self,
        status: &str,
        error: Option<String>,
        report: serde_json::Value,
    ) -> Result<()> {
        status.clone_into(&mut self.doc.status);
        self.doc.error = error;
        self.doc.finished = Some(now());
        self.doc.progress = None;
        self.doc.report = Some(report);
        self.write()
    }

    /// Progress: written at most once a second (and at the end of a disk).
    pub(crate) fn progress(&mut self, p: DiskProgress) {
        let due = p.done == p.total
            || self
                .last
                .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1));
        self.doc.progress = Some(p);
        if due {
            let _ = self.write();
        }
    }
}

/// `DIR/NAME.json`.
pub(crate) fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}
