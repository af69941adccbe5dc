//! `SHA256SUMS`: one line per file, `<64 hex>  <name>`, as `sha256sum`
//! writes it and `sha256sum -c` checks it. Names are plain file names in
//! the manifest's directory: a manifest is read from a backup directory
//! that may have been tampered with, so a name with a `/`, a `..` or a
//! line break is refused, never followed.

use std::io;
use std::path::Path;

use crate::Progress;

/// The manifest's file name.
pub const FILE: &str = "SHA256SUMS";

/// One line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lower-case hex.
    pub sha256: String,
    /// A file name in the manifest's directory.
    pub name: String,
}

/// Whether `name` can be a manifest entry.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\n', '\r', '\\', '\0'])
}

/// The manifest's text.
pub fn render(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| format!("{}  {}\n", e.sha256, e.name))
        .collect()
}

/// Parses a manifest; a bad line is an error naming it.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("{FILE} line {}: not `<sha256>  <file name>`", i + 1);
        let (sum, rest) = line.split_once(' ').ok_or_else(bad)?;
        // "  name" (text mode) or " *name" (binary mode).
        let name = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('*'))
            .ok_or_else(bad)?;
        if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        if !valid_name(name) {
            return Err(format!(
                "{FILE} line {}: {name:?} is not a plain file name in the backup directory",
                i + 1
            ));
        }
        out.push(Entry {
            sha256: sum.to_ascii_lowercase(),
            name: name.to_owned(),
        });
    }
    Ok(out)
}

/// What is wrong with one file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file is not there.
    Missing(String),
    /// Its content differs.
    Mismatch {
        /// The file.
        name: String,
        /// The manifest's sum.
        expected: String,
        /// The file's sum now.
        actual: String,
    },
    /// It could not be read.
    Unreadable(String, String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing(n) => write!(f, "{n}: missing"),
            Problem::Mismatch {
                name,
                expected,
                actual,
            } => write!(
                f,
                "{name}: content differs (sha256 {actual}, expected {expected})"
            ),
            Problem::Unreadable(n, e) => write!(f, "{n}: unreadable: {e}"),
        }
    }
}

/// Checks every file of `dir/SHA256SUMS` against the disk; returns the
/// entries and what is wrong. A manifest that cannot be read or parsed is
/// an error.
pub fn verify(dir: &Path, progress: &mut dyn Progress) -> io::Result<(Vec<Entry>, Vec<Problem>)> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))?;
    let entries = parse(&text).map_err(io::Error::other)?;
    let mut problems = Vec::new();
    for e in &entries {
        let p = dir.join(&e.name);
        match std::fs::symlink_metadata(&p) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                problems.push(Problem::Missing(e.name.clone()));
                continue;
            }
            Ok(m) if !m.file_type().is_file() => {
                problems.push(Problem::Unreadable(
                    e.name.clone(),
                    "not a regular file".to_owned(),
                ));
                continue;
            }
            _ => {}
        }
        match crate::sha256_file(&p, progress) {
            Ok(actual) if actual == e.sha256 => {}
            Ok(actual) => problems.push(Problem::Mismatch {
                name: e.name.clone(),
                expected: e.sha256.clone(),
                actual,
            }),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return Err(err),
            Err(err) => problems.push(Problem::Unreadable(e.name.clone(), err.to_string())),
        }
    }
    Ok((entries, problems))
}
