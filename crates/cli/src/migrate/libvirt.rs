//! libvirt through `virsh`: read a domain and its state, find a storage
//! pool's directory, define and start a domain. `virsh` is the interface
//! operators know and every libvirt installation has; its errors are
//! passed on as they are.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Runs `virsh -c CONN ARGS…`; its standard output, or an error with what
/// it said.
pub(crate) fn virsh(conn: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("virsh")
        .arg("-q")
        .arg("-c")
        .arg(conn)
        .args(args)
        .output()
        .context("running virsh (install libvirt-clients)")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err
            .lines()
            .map(|l| l.trim_start_matches("error: ").trim())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        bail!("virsh {}: {err}", args.first().unwrap_or(&""));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The directory of a `dir` storage pool; other pool types are refused
/// (their volumes are not files xen2kvm can write).
pub(crate) fn pool_dir(conn: &str, pool: &str) -> Result<PathBuf> {
    let xml = virsh(conn, &["pool-dumpxml", pool]).with_context(|| {
        format!("storage pool {pool} on {conn} (virsh pool-list --all lists them)")
    })?;
    let doc = xen2kvm_domxml::dom::parse(&xml)
        .map_err(|e| anyhow::anyhow!("pool {pool}: unreadable pool XML: {}", e.message))?;
    let kind = doc.root.attr("type").unwrap_or("");
    if kind != "dir" {
        bail!("storage pool {pool} is of type {kind:?}: -o libvirt writes into directory pools (type dir)");
    }
    let path = doc
        .root
        .child("target")
        .and_then(|t| t.child("path"))
        .map(|p| p.text().trim().to_owned())
        .filter(|p| !p.is_empty())
        .with_context(|| format!("storage pool {pool} has no target path"))?;
    let state = virsh(conn, &["pool-info", pool])?;
    if !state
        .lines()
        .any(|l| l.starts_with("State:") && l.contains("running"))
    {
        bail!("storage pool {pool} is not active: virsh -c {conn} pool-start {pool}");
    }
    Ok(PathBuf::from(path))
}

/// Whether a domain of that name is defined.
pub(crate) fn domain_exists(conn: &str, name: &str) -> Result<bool> {
    let list = virsh(conn, &["list", "--all", "--name"])?;
    Ok(list.lines().any(|l| l.trim() == name))
}
