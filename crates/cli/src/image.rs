//! Disk images on the host: their format and sizes (`qemu-img info
//! --output=json`, QEMU's own probe) and copies (`qemu-img convert`). One
//! module, used by `inspect`, `convert` and `domxml`, so every command sees
//! an image the same way.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// What `qemu-img info` says of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Info {
    /// `raw`, `qcow2`, `vmdk`, …
    pub(crate) format: String,
    /// The size the guest sees, in bytes.
    pub(crate) virtual_size: u64,
    /// The bytes allocated on the host.
    pub(crate) actual_size: u64,
    /// The backing file, if any.
    pub(crate) backing: Option<String>,
}

/// Reads an image's format and sizes. A directory, a missing file or
/// something QEMU cannot open is an error naming the path.
pub(crate) fn info(path: &Path) -> Result<Info> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    anyhow::ensure!(!meta.is_dir(), "{}: not a disk image file", path.display());
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(path)
        .output()
        .context("running qemu-img (install qemu-utils)")?;
    if !out.status.success() {
        bail!(
            "{}: qemu-img info: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_info(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("{}: reading qemu-img info's answer", path.display()))
}

fn parse_info(json: &str) -> Result<Info> {
    let v: serde_json::Value = serde_json::from_str(json)?;
    let format = v["format"].as_str().context("no \"format\"")?.to_owned();
    Ok(Info {
        format,
        virtual_size: v["virtual-size"].as_u64().unwrap_or(0),
        actual_size: v["actual-size"].as_u64().unwrap_or(0),
        backing: v["backing-filename"].as_str().map(str::to_owned),
    })
}

/// The one format of all `disks` (the appliance takes one); mixed formats
/// are an error that says so.
pub(crate) fn common_format(disks: &[impl AsRef<Path>]) -> Result<String> {
    let mut found: Option<String> = None;
    for d in disks {
        let d = d.as_ref();
        let fmt = info(d)?.format;
        match &found {
            Some(f) if *f != fmt => bail!(
                "the disks have different formats ({f} and {fmt} for {}); convert them to one format first",
                d.display()
            ),
            _ => found = Some(fmt),
        }
    }
    Ok(found.unwrap_or_else(|| "raw".to_owned()))
}

/// Copies `src` (in `src_format`) to a new image `dst` in `format`.
pub(crate) fn copy(src: &Path, src_format: &str, dst: &Path, format: &str) -> Result<()> {
    convert(src, src_format, dst, format, false, &mut |_| {})
}

/// `qemu-img convert`, fully allocated when `preallocate`, reporting its
/// progress (0–100) as it goes.
pub(crate) fn convert(
    src: &Path,
    src_format: &str,
    dst: &Path,
    format: &str,
    preallocate: bool,
    progress: &mut dyn FnMut(f64),
) -> Result<()> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-p", "-f", src_format, "-O", format]);
    if preallocate {
        // Every byte allocated; -S 0 writes the zeros too.
        cmd.args(["-o", "preallocation=falloc", "-S", "0"]);
    }
    // In its own process group (a Ctrl-C is xen2kvm's to handle), and
    // registered so that a signal stops it.
    let mut child = cmd
        .arg(src)
        .arg(dst)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .context("running qemu-img (install qemu-utils)")?;
    let _guard = crate::interrupt::child(child.id());
    if let Some(mut out) = child.stdout.take() {
        // "    (12.34/100%)\r", over and over.
        let mut buf = [0u8; 256];
        let mut pending = String::new();
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            pending.push_str(&String::from_utf8_lossy(&buf[..n]));
            while let Some(end) = pending.find(['\r', '\n']) {
                let piece: String = pending.drain(..=end).collect();
                if let Some(p) = piece
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.split('/').next())
                    .and_then(|v| v.parse::<f64>().ok())
                {
                    progress(p);
                }
            }
        }
    }
    let out = child.wait_with_output().context("waiting for qemu-img")?;
    if !out.status.success() {
        bail!(
            "qemu-img convert {} -> {}: {}",
            src.display(),
            dst.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_qemu_img_info() {
        let i = super::parse_info(
            r#"{"virtual-size": 3221225472, "filename": "a.qcow2", "format": "qcow2",
                "actual-size": 462221312, "backing-filename": "base.qcow2", "dirty-flag": false}"#,
        )
        .unwrap();
        assert_eq!(i.format, "qcow2");
        assert_eq!(i.virtual_size, 3221225472);
        assert_eq!(i.actual_size, 462221312);
        assert_eq!(i.backing.as_deref(), Some("base.qcow2"));
        assert!(super::parse_info("{}").is_err());
    }
}
