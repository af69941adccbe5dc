//! The Xen domain to migrate: read from a libvirt XML file, an xl.cfg, or
//! through libvirt (`-i libvirt`, refused unless the domain is shut off),
//! and its disks: what is copied, what is left (CD-ROMs, floppies).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xen2kvm_domxml::disks::{self as xd, Device, Source};
use xen2kvm_domxml::dom::Document;
use xen2kvm_domxml::{self as dx};

use crate::image;

/// Where the domain config comes from (virt-v2v's `-i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum InputMode {
    /// A libvirt domain XML file (`virsh dumpxml` of the Xen domain).
    Libvirtxml,
    /// A domain of a libvirt connection (`-ic URI`, e.g. xen+ssh://host).
    Libvirt,
    /// An xl domain config (`/etc/xen/NAME.cfg`).
    Xl,
}

impl InputMode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            InputMode::Libvirtxml => "libvirtxml",
            InputMode::Libvirt => "libvirt",
            InputMode::Xl => "xl",
        }
    }
}

/// The domain, read.
#[derive(Debug)]
pub(crate) struct Domain {
    /// `<name>`.
    pub(crate) name: String,
    /// The config as read (kept verbatim in a backup).
    pub(crate) text: String,
    /// `xml` or `cfg`: the backup copy's extension.
    pub(crate) ext: &'static str,
    /// The Xen libvirt document (an xl.cfg translated).
    pub(crate) doc: Document,
    /// What the xl.cfg translation did not carry over.
    pub(crate) warnings: Vec<String>,
}

/// Reads the domain config.
pub(crate) fn read(mode: InputMode, input: &str, conn: Option<&str>) -> Result<Domain> {
    let (text, ext) = match mode {
        InputMode::Libvirtxml | InputMode::Xl => {
            let text = read_config(Path::new(input))?;
            (text, if mode == InputMode::Xl { "cfg" } else { "xml" })
        }
        InputMode::Libvirt => {
            let conn = conn.unwrap_or("xen:///system");
            let state = super::libvirt::virsh(conn, &["domstate", input])
                .with_context(|| format!("domain {input} on {conn}"))?;
            if state.trim() != "shut off" {
                bail!(
                    "domain {input} on {conn} is {}: shut it down first (virsh -c {conn} shutdown {input}); a running guest's disks change under the copy",
                    state.trim()
                );
            }
            let xml = super::libvirt::virsh(conn, &["dumpxml", "--inactive", input])
                .with_context(|| format!("reading domain {input} from {conn}"))?;
            (xml, "xml")
        }
    };
    let (doc, warnings) = match mode {
        InputMode::Xl => dx::xl::to_xen_domain(&text).with_context(|| input.to_owned())?,
        _ => (
            dx::dom::parse(&text)
                .map_err(|e| dx::Error::Xml(e.message))
                .with_context(|| input.to_owned())?,
            Vec::new(),
        ),
    };
    let name =
        xd::domain_name(&doc).with_context(|| format!("{input}: the domain has no <name>"))?;
    if doc.root.attr("type").is_some_and(|t| t != "xen") {
        bail!(
            "{input}: {}",
            dx::Error::NotXen(doc.root.attr("type").unwrap_or("").to_owned())
        );
    }
    Ok(Domain {
        name,
        text,
        ext,
        doc,
        warnings,
    })
}

pub(crate) fn read_config(path: &Path) -> Result<String> {
    let what = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("reading {what}"))?;
    if !meta.is_file() {
        bail!("{what}: not a file");
    }
    if meta.len() > dx::MAX_INPUT as u64 {
        bail!("{what}: {}", dx::Error::TooLarge(meta.len() as usize));
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {what}"))?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{what}: not UTF-8 text"))
}

/// One disk to copy.
#[derive(Debug, Clone)]
pub(crate) struct Disk {
    /// The Xen target (`xvda`, `xvda2`, …).
    pub(crate) target: String,
    /// The image file or block device.
    pub(crate) path: PathBuf,
    /// `true`: a block device.
    pub(crate) block: bool,
    /// The format it is read as.
    pub(crate) format: String,
    /// What the guest sees, in bytes (for a qcow2 disk on another host:
    /// its file's size, the best known before the copy).
    pub(crate) virtual_size: u64,
    /// The file's or device's length: what a stream of it carries.
    pub(crate) bytes: u64,
    /// What it allocates on the host.
    pub(crate) allocated: u64,
}

/// A device that is not copied.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Skipped {
    pub(crate) target: String,
    pub(crate) device: &'static str,
    pub(crate) source: Option<String>,
    pub(crate) note: String,
}

/// The disks to copy, in the domain's order, and the devices left alone.
/// A disk that cannot be read, a network disk, a directory are errors
/// naming the disk.
pub(crate) fn disks(
    domain: &Domain,
    remote: Option<&super::remote::Remote>,
) -> Result<(Vec<Disk>, Vec<Skipped>)> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for d in xd::source_disks(&domain.doc).map_err(anyhow::Error::msg)? {
        let t = &d.target;
        if d.device != Device::Disk {
            let device = if d.device == Device::Cdrom {
                "cdrom"
            } else {
                "floppy"
            };
            skipped.push(Skipped {
                target: t.clone(),
                device,
                source: d.source.path().map(str::to_owned),
                note: format!(
                    "{device} {t} is not copied: it stays in the domain{}",
                    d.source
                        .path()
                        .map(|p| format!(
                            " pointing at {p}, which must exist on the KVM host (or eject it)"
                        ))
                        .unwrap_or_default()
                ),
            });
            continue;
        }
        let path = match &d.source {
            Source::File(p) | Source::Block(p) => PathBuf::from(p),
            Source::Empty => bail!("disk {t} has no source"),
            Source::Other(kind) => bail!(
                "disk {t} is a {kind} disk: xen2kvm copies image files and block devices; copy it to a file first"
            ),
        };
        if let Some(rm) = remote {
            out.push(remote_disk(rm, t, path, d.format.as_deref())?);
            continue;
        }
        let meta =
            std::fs::metadata(&path).with_context(|| format!("disk {t}: {}", path.display()))?;
        use std::os::unix::fs::FileTypeExt;
        let block = meta.file_type().is_block_device();
        if !block && !meta.is_file() {
            bail!(
                "disk {t}: {} is not an image file or a block device",
                path.display()
            );
        }
        let info = image::info(&path).with_context(|| format!("disk {t}"))?;
        // A format the config states is trusted over QEMU's probe: a raw
        // disk whose guest wrote a qcow2 header must not be opened as
        // qcow2 (its "backing file" would be a host file).
        let format = match &d.format {
            Some(f) => f.clone(),
            None => info.format.clone(),
        };
        if format != "raw" && format != "qcow2" {
            bail!(
                "disk {t}: {} is {format}: xen2kvm migrates raw and qcow2 images",
                path.display()
            );
        }
        if format == "qcow2" && info.format == "qcow2" {
            if let Some(b) = &info.backing {
                bail!(
                    "disk {t}: {} has a backing file ({b}): flatten it first (qemu-img convert), so that the copy does not read host files the config does not name",
                    path.display()
                );
            }
        }
        let allocated = if block {
            info.virtual_size
        } else {
            info.actual_size
        };
        let bytes = if block || format == "raw" {
            info.virtual_size
        } else {
            meta.len()
        };
        out.push(Disk {
            target: t.clone(),
            path,
            block,
            format,
            virtual_size: info.virtual_size,
            bytes,
            allocated,
        });
    }
    if out.is_empty() {
        bail!("the domain has no disk to migrate");
    }
    Ok((out, skipped))
}

/// A disk on another host, seen through ssh.
fn remote_disk(
    rm: &super::remote::Remote,
    t: &str,
    path: PathBuf,
    format: Option<&str>,
) -> Result<Disk> {
    let p = path.to_string_lossy().into_owned();
    let st = rm.stat(&p).with_context(|| format!("disk {t}"))?;
    let format = match format {
        Some(f) => f.to_owned(),
        None => rm.probe(&p)?.to_owned(),
    };
    if format != "raw" && format != "qcow2" {
        bail!(
            "disk {t}: {}:{p} is {format}: xen2kvm migrates raw and qcow2 images",
            rm.dest
        );
    }
    Ok(Disk {
        target: t.to_owned(),
        path,
        block: st.block,
        format,
        virtual_size: st.size,
        bytes: st.size,
        allocated: st.allocated,
    })
}
