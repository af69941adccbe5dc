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

/// Re-lays the bare filesystem image `path` (in `format`) as partition 1
/// of a new disk: a DOS partition table, the partition at 1 MiB (see
/// `xen2kvm_diskcopy::mbr`), the filesystem copied in unchanged (holes
/// stay holes, unless `preallocate`). The new image is written beside
/// the old one and renamed over it.
pub(crate) fn relay(path: &Path, format: &str, preallocate: bool) -> Result<()> {
    use xen2kvm_diskcopy::mbr;
    let size = info(path)?.virtual_size;
    anyhow::ensure!(
        mbr::fits(size),
        "{}: {size} bytes do not fit in one DOS partition (2 TiB at most)",
        path.display()
    );
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".relay");
    let tmp = std::path::PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let made = Removed(&tmp);
    let mut create = Command::new("qemu-img");
    create.args(["create", "-q", "-f", format]);
    if preallocate {
        create.args(["-o", "preallocation=falloc"]);
    }
    qemu_img(create.arg(&tmp).arg(mbr::disk_len(size).to_string()))?;
    // The table, from a one-sector file.
    let signature = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().rotate_left(16);
    let mut table =
        tempfile::NamedTempFile::new().context("a temporary file for the partition table")?;
    std::io::Write::write_all(&mut table, &mbr::single_partition(size, signature))
        .context("writing the partition table")?;
    let at = |offset: u64, len: u64| {
        let file = tmp.to_string_lossy().replace(',', ",,");
        let file = match format {
            "raw" => format!("file.driver=file,file.filename={file}"),
            f => format!("file.driver={f},file.file.driver=file,file.file.filename={file}"),
        };
        format!("driver=raw,offset={offset},size={len},{file}")
    };
    qemu_img(
        Command::new("qemu-img")
            .args(["convert", "-n", "-f", "raw"])
            .arg(table.path())
            .args(["--target-image-opts", &at(0, 512)]),
    )?;
    // The filesystem, at 1 MiB.
    qemu_img(
        Command::new("qemu-img")
            .args(["convert", "-n", "--target-is-zero", "-f", format])
            .arg(path)
            .args(["--target-image-opts", &at(mbr::OFFSET, size)]),
    )?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    std::mem::forget(made);
    Ok(())
}

/// Removes a file when dropped (a half-written image).
struct Removed<'a>(&'a Path);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// Runs one `qemu-img` command (in its own process group, stopped by a
/// signal to xen2kvm); its error output is the error.
fn qemu_img(cmd: &mut Command) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .context("running qemu-img (install qemu-utils)")?;
    let _guard = crate::interrupt::child(child.id());
    let out = child.wait_with_output().context("waiting for qemu-img")?;
    if !out.status.success() {
        bail!("qemu-img: {}", String::from_utf8_lossy(&out.stderr).trim());
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

    /// A bare ext4 filesystem (with a comma in its path, which QEMU's
    /// option syntax escapes) re-laid in raw and in qcow2: the table says
    /// one active Linux partition at 1 MiB as long as the filesystem, and
    /// the filesystem's bytes are there, unchanged.
    #[test]
    fn relays_a_bare_filesystem_in_raw_and_qcow2() {
        use std::process::Command;
        let dir = tempfile::tempdir().unwrap();
        let fs = dir.path().join("root,fs.raw");
        std::fs::File::create(&fs)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let ok = Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4"])
            .arg(&fs)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mke2fs");
        let original = std::fs::read(&fs).unwrap();
        for format in ["raw", "qcow2"] {
            let img = dir.path().join(format!("disk,{format}"));
            super::copy(&fs, "raw", &img, format).unwrap();
            super::relay(&img, format, false).unwrap();
            assert_eq!(super::info(&img).unwrap().virtual_size, (9 << 20) as u64);
            let back = dir.path().join(format!("back-{format}.raw"));
            super::copy(&img, format, &back, "raw").unwrap();
            let disk = std::fs::read(&back).unwrap();
            assert_eq!(&disk[510..512], &[0x55, 0xAA], "{format}");
            assert_eq!(disk[446], 0x80);
            assert_eq!(disk[450], 0x83);
            assert_eq!(u32::from_le_bytes(disk[454..458].try_into().unwrap()), 2048);
            assert_eq!(
                u32::from_le_bytes(disk[458..462].try_into().unwrap()),
                (8 << 20) / 512
            );
            assert!(
                disk[1 << 20..] == original[..],
                "{format}: the filesystem moved intact"
            );
            let mut leftover = img.as_os_str().to_owned();
            leftover.push(".relay");
            assert!(!std::path::Path::new(&leftover).exists());
        }
    }
}
