//! The one golden-file helper: every golden test compares through
//! [`Goldens`], so they all behave alike.
//!
//! A mismatch fails the test with a diff. With `UPDATE_GOLDEN=1` (or
//! `UPDATE_EXPECT=1`) the expected file or tree is rewritten *and the test
//! still fails*, saying what it rewrote: an update is never silent, and the
//! next run (after a review of `git diff`) passes.
//!
//! Trees are compared file by file (walkdir): relative paths, file contents,
//! symlink targets; directories only through what they hold.

#![warn(missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};

/// Collects golden comparisons; [`Goldens::finish`] fails the test when any
/// differed.
#[derive(Debug)]
pub struct Goldens {
    update: bool,
    failures: Vec<String>,
    rewritten: Vec<PathBuf>,
}

impl Default for Goldens {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether the environment asks for expected files to be rewritten.
pub fn updating() -> bool {
    ["UPDATE_GOLDEN", "UPDATE_EXPECT"]
        .iter()
        .any(|v| std::env::var(v).as_deref() == Ok("1"))
}

impl Goldens {
    /// A new set of comparisons (updating when the environment says so).
    pub fn new() -> Goldens {
        Goldens {
            update: updating(),
            failures: Vec::new(),
            rewritten: Vec::new(),
        }
    }

    /// Compares `actual` with the file `expected` (a missing file is
    /// empty).
    pub fn check(&mut self, expected: &Path, actual: &str) {
        let want = fs::read_to_string(expected).unwrap_or_default();
        if want == actual {
            return;
        }
        let diff = similar::TextDiff::from_lines(want.as_str(), actual)
            .unified_diff()
            .context_radius(2)
            .header(&expected.display().to_string(), "actual")
            .to_string();
        self.failures
            .push(format!("{} differs:\n{diff}", expected.display()));
        if self.update {
            if let Some(dir) = expected.parent() {
                let _ = fs::create_dir_all(dir);
            }
            match fs::write(expected, actual) {
                Ok(()) => self.rewritten.push(expected.to_owned()),
                Err(e) => self
                    .failures
                    .push(format!("rewriting {}: {e}", expected.display())),
            }
        }
    }

    /// Compares the tree `actual` with the tree `expected`.
    pub fn check_tree(&mut self, expected: &Path, actual: &Path) {
        let want = tree(expected);
        let got = tree(actual);
        if want == got {
            return;
        }
        let mut lines = Vec::new();
        for (p, c) in &got {
            match want.iter().find(|(q, _)| q == p) {
                None => lines.push(format!("  + {p} (not expected)")),
                Some((_, d)) if d != c => lines.push(format!(
                    "  ~ {p}:\n{}",
                    similar::TextDiff::from_lines(d.to_string().as_str(), c.to_string().as_str())
                        .unified_diff()
                        .context_radius(1)
                        .header("expected", "actual")
                )),
                Some(_) => {}
            }
        }
        for (p, _) in &want {
            if !got.iter().any(|(q, _)| q == p) {
                lines.push(format!("  - {p} (expected, missing)"));
            }
        }
        self.failures.push(format!(
            "tree {} differs:\n{}",
            expected.display(),
            lines.join("\n")
        ));
        if self.update {
            let _ = fs::remove_dir_all(expected);
            match copy_tree(actual, expected) {
                Ok(()) => self.rewritten.push(expected.to_owned()),
                Err(e) => self
                    .failures
                    .push(format!("rewriting {}: {e}", expected.display())),
            }
        }
    }

    /// Fails (panics) when any comparison differed.
    #[track_caller]
    pub fn finish(self) {
        if self.failures.is_empty() {
            return;
        }
        let how = if self.rewritten.is_empty() {
            "run with UPDATE_GOLDEN=1 to rewrite them, then review the diff".to_owned()
        } else {
            format!(
                "rewritten (review with git diff and commit; the next run passes): {}",
                self.rewritten
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        panic!("golden files differ; {how}\n{}", self.failures.join("\n"));
    }
}

/// A file's content as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    Link(PathBuf),
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::File(b) => match std::str::from_utf8(b) {
                Ok(t) => f.write_str(t),
                Err(_) => writeln!(f, "<{} bytes of binary data>", b.len()),
            },
            Entry::Link(t) => writeln!(f, "-> {}", t.display()),
        }
    }
}

/// Every file and link under `root`, by relative path, sorted.
fn tree(root: &Path) -> Vec<(String, Entry)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap_or(e.path())
            .to_string_lossy()
            .into_owned();
        let ft = e.file_type();
        if ft.is_symlink() {
            let t = fs::read_link(e.path()).unwrap_or_default();
            out.push((rel, Entry::Link(t)));
        } else if ft.is_file() {
            out.push((rel, Entry::File(fs::read(e.path()).unwrap_or_default())));
        }
    }
    out
}

/// Copies a tree (files, links, directories).
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for e in walkdir::WalkDir::new(from).min_depth(1) {
        let e = e.map_err(std::io::Error::other)?;
        let dst = to.join(e.path().strip_prefix(from).unwrap_or(e.path()));
        let ft = e.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path())?, &dst)?;
        } else if ft.is_dir() {
            fs::create_dir_all(&dst)?;
        } else {
            fs::copy(e.path(), &dst)?;
        }
    }
    Ok(())
}
