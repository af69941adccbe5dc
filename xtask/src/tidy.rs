//! `cargo xtask tidy`: the checks that keep ARCHITECTURE.md's invariants
//! true. Most of them are also a `#[test]` (so `cargo test` runs them); the
//! two that run cargo itself (the dependency tree and the build without the
//! `appliance` feature) run from `cargo xtask tidy` and `cargo xtask test`.
//!
//! - only inspector's appliance half names the `guestfs` crate, and the pure
//!   crates do not depend on it (`cargo tree -i guestfs`);
//! - the pure crates build and pass their tests without libguestfs;
//! - every Rust source file starts with a `//!` comment;
//! - the editor's sources never name `std::fs` or `std::process`;
//! - every conversion rule appears in at least one golden file;
//! - every crate and every module is named in ARCHITECTURE.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cargo, run};

/// The crates that must build without libguestfs (package names).
const PURE: &[&str] = &[
    "xen2kvm-vfs",
    "xen2kvm-inspector",
    "xen2kvm-editor",
    "xen2kvm-journal",
    "xen2kvm-bootcheck",
    "xen2kvm-domxml",
    "xen2kvm-diskcopy",
    "xen2kvm-windows",
];

/// The files allowed to name the `guestfs` crate.
const GUESTFS_FILES: &[&str] = &[
    "crates/inspector/src/guest.rs",
    "crates/inspector/src/error.rs",
    "crates/inspector/src/windows.rs",
];

/// Every check: the source checks, then the ones that run cargo.
pub(crate) fn check() -> Result<()> {
    let root = xen2kvm_tests::repo_root();
    let problems = source_problems(&root)?;
    if !problems.is_empty() {
        bail!("tidy:\n  {}", problems.join("\n  "));
    }
    eprintln!("tidy: sources, goldens and ARCHITECTURE.md agree");
    for p in PURE {
        let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "tree",
                "--no-default-features",
                "-e",
                "normal",
                "-p",
                p,
                "-i",
                "guestfs",
            ])
            .current_dir(&root)
            .output()
            .context("running cargo tree")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        // cargo tree exits non-zero when guestfs is not in the tree at all.
        let absent = err.contains("did not match any packages") || text.trim().is_empty();
        if !absent {
            bail!("tidy: {p} depends on guestfs:\n{text}{err}");
        }
    }
    eprintln!("tidy: no pure crate depends on guestfs");
    Ok(())
}

/// `cargo <verb> --no-default-features -p <each pure crate>`: builds (and
/// with `test`, tests) them as a host without libguestfs would.
pub(crate) fn pure_crates(verb: &str) -> Result<()> {
    let mut cmd = cargo();
    cmd.args([verb, "--no-default-features"]);
    for p in PURE {
        cmd.args(["-p", p]);
    }
    run(&mut cmd).context("the pure crates without the appliance feature")
}

/// Everything the source checks find wrong, one line each.
fn source_problems(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(&root.join(dir), &mut files)?;
    }
    files.sort();
    for f in &files {
        let rel = f
            .strip_prefix(root)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(f).with_context(|| format!("reading {rel}"))?;
        if !text.trim_start().starts_with("//!") {
            problems.push(format!("{rel}: does not start with a //! comment"));
        }
        let names_guestfs = text.lines().any(|l| {
            let code = l.split("//").next().unwrap_or("");
            code.contains(concat!("guestfs", "::")) || code.contains(concat!("use ", "guestfs"))
        });
        let host_io = text.lines().any(|l| {
            let code = l.split("//").next().unwrap_or("");
            code.contains(concat!("std::", "fs")) || code.contains(concat!("std::", "process"))
        });
        if host_io && rel.starts_with("crates/editor/src/") {
            problems.push(format!(
                "{rel}: the editor names the host's std::fs or std::process (guest files go through GuestFs, commands through Runner)"
            ));
        }
        if names_guestfs && !GUESTFS_FILES.contains(&rel.as_str()) {
            problems.push(format!(
                "{rel}: names the guestfs crate (only {} may)",
                GUESTFS_FILES.join(" and ")
            ));
        }
    }
    let goldens = golden_text(root)?;
    for rule in xen2kvm_editor::RULES {
        if !goldens.contains(&format!("[{}]", rule.name)) {
            problems.push(format!(
                "rule {}: no golden file shows it (tests/expected/convert, crates/editor/test_data)",
                rule.name
            ));
        }
    }
    for rule in xen2kvm_windows::plan::RULES {
        if !goldens.contains(&format!("[{}]", rule.as_str())) {
            problems.push(format!(
                "Windows rule {}: no golden file shows it (tests/expected/convert, crates/windows/tests/golden)",
                rule.as_str()
            ));
        }
    }
    let arch =
        fs::read_to_string(root.join("ARCHITECTURE.md")).context("reading ARCHITECTURE.md")?;
    for e in fs::read_dir(root.join("crates"))? {
        let dir = e?.path();
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !arch.contains(&format!("`crates/{name}`")) {
            problems.push(format!("ARCHITECTURE.md does not name crates/{name}"));
        }
        let mut modules = Vec::new();
        rust_files(&dir.join("src"), &mut modules)?;
        for m in modules {
            let stem = m
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if matches!(stem.as_str(), "lib" | "main" | "mod") {
                continue;
            }
            if !arch.contains(&format!("`{stem}`")) {
                problems.push(format!(
                    "ARCHITECTURE.md does not name module `{stem}` of crates/{name}"
                ));
            }
        }
    }
    Ok(problems)
}

/// All golden files' text, concatenated.
fn golden_text(root: &Path) -> Result<String> {
    let mut files = Vec::new();
    for dir in [
        "tests/expected/convert",
        "crates/editor/test_data",
        "crates/windows/tests/golden",
    ] {
        all_files(&root.join(dir), &mut files)?;
    }
    let mut text = String::new();
    for f in files {
        text.push_str(&String::from_utf8_lossy(&fs::read(&f)?));
        text.push('\n');
    }
    Ok(text)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut all = Vec::new();
    all_files(dir, &mut all)?;
    out.extend(
        all.into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs")),
    );
    Ok(())
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        let ft = e.file_type()?;
        if ft.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            all_files(&p, out)?;
        } else if ft.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The source checks, as part of `cargo test`.
    #[test]
    fn tidy() {
        let problems = super::source_problems(&xen2kvm_tests::repo_root()).unwrap();
        assert!(problems.is_empty(), "tidy:\n  {}", problems.join("\n  "));
    }
}
