//! The disks of a Xen domain, as `migrate` and `backup` need them: what to
//! copy (file or block device, its format when the config says it), what to
//! leave (CD-ROMs, floppies, network disks) and the Xen target each had.

use crate::dom::{Document, Element};
use crate::Error;

/// What the guest sees the disk as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// A disk (or a LUN): copied and converted.
    Disk,
    /// A CD-ROM: not copied.
    Cdrom,
    /// A floppy: not copied.
    Floppy,
}

/// Where the disk's data is on the Xen host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An image file (`<source file=…>`, `file:`/`tap:` in xl.cfg).
    File(String),
    /// A block device (`<source dev=…>`, `phy:` in xl.cfg).
    Block(String),
    /// Nothing (an empty CD-ROM drive).
    Empty,
    /// Something this tool does not copy (network, volume, …): its type.
    Other(String),
}

impl Source {
    /// The host path, for files and block devices.
    pub fn path(&self) -> Option<&str> {
        match self {
            Source::File(p) | Source::Block(p) => Some(p),
            Source::Empty | Source::Other(_) => None,
        }
    }
}

/// One `<disk>` of the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDisk {
    /// Disk, CD-ROM or floppy.
    pub device: Device,
    /// Where its data is.
    pub source: Source,
    /// The Xen target (`xvda`, `xvda2`, `hda`, `sda1`, …).
    pub target: String,
    /// The format the config gives (`raw`, `qcow2`, …), if any.
    pub format: Option<String>,
    /// `<readonly/>`.
    pub readonly: bool,
}

/// The domain's name (`<name>`).
pub fn domain_name(doc: &Document) -> Option<String> {
    doc.root
        .child("name")
        .map(Element::text)
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
}

/// The MAC address of each `<interface>` of the domain, in the document's
/// order (`None` for one that has none: libvirt makes one up at define).
/// Xen's `vif` handles follow this order, so the n-th is the guest's
/// `eth<n>` (or `enX<n>`), and the KVM domain keeps it.
pub fn interface_macs(doc: &Document) -> Vec<Option<String>> {
    let Some(devices) = doc.root.child("devices") else {
        return Vec::new();
    };
    devices
        .elements()
        .filter(|e| e.name == "interface")
        .map(|i| {
            i.child("mac")
                .and_then(|m| m.attr("address"))
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| is_mac(a))
        })
        .collect()
}

/// Whether `s` is a MAC address (`00:16:3e:0a:0b:0c`).
pub fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Every `<disk>` of the domain, in the document's order.
pub fn source_disks(doc: &Document) -> Result<Vec<SourceDisk>, Error> {
    if doc.root.name != "domain" {
        return Err(Error::NotADomain(doc.root.name.clone()));
    }
    let Some(devices) = doc.root.child("devices") else {
        return Ok(Vec::new());
    };
    Ok(devices
        .elements()
        .filter(|e| e.name == "disk")
        .map(|d| {
            let device = match d.attr("device").unwrap_or("disk") {
                "cdrom" => Device::Cdrom,
                "floppy" => Device::Floppy,
                _ => Device::Disk,
            };
            let src = d.child("source");
            let source = match (d.attr("type").unwrap_or("file"), src) {
                (_, None) => Source::Empty,
                ("file", Some(s)) => s
                    .attr("file")
                    .map_or(Source::Empty, |f| Source::File(f.to_owned())),
                ("block", Some(s)) => s
                    .attr("dev")
                    .map_or(Source::Empty, |f| Source::Block(f.to_owned())),
                (t, Some(_)) => Source::Other(t.to_owned()),
            };
            SourceDisk {
                device,
                source,
                target: d
                    .child("target")
                    .and_then(|t| t.attr("dev"))
                    .unwrap_or("")
                    .to_owned(),
                format: d
                    .child("driver")
                    .and_then(|t| t.attr("type"))
                    .and_then(crate::rules::format_of_driver_type)
                    .map(str::to_owned),
                readonly: d.child("readonly").is_some(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_disks_of_xml_and_xl() {
        let doc = crate::dom::parse(
            "<domain type='xen'><name> web </name><devices>\
             <disk type='file' device='disk'><driver name='tap' type='qcow2'/><source file='/a.qcow2'/><target dev='xvda'/></disk>\
             <disk type='block' device='disk'><driver name='phy'/><source dev='/dev/vg/b'/><target dev='xvdb2'/></disk>\
             <disk type='block' device='cdrom'><target dev='hdc'/><readonly/></disk>\
             <disk type='network' device='disk'><source protocol='rbd' name='p/i'/><target dev='xvdc'/></disk>\
             </devices></domain>",
        )
        .unwrap();
        assert_eq!(domain_name(&doc).as_deref(), Some("web"));
        let d = source_disks(&doc).unwrap();
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].source, Source::File("/a.qcow2".into()));
        assert_eq!(d[0].format.as_deref(), Some("qcow2"));
        assert_eq!(d[1].source, Source::Block("/dev/vg/b".into()));
        assert_eq!(d[1].target, "xvdb2");
        assert_eq!(
            (d[2].device, &d[2].source, d[2].readonly),
            (Device::Cdrom, &Source::Empty, true)
        );
        assert_eq!(d[3].source, Source::Other("network".into()));
        let nics = crate::dom::parse(
            "<domain><devices><interface type='bridge'><mac address='00:16:3E:0A:0B:0C'/></interface>\
             <interface type='bridge'/><interface type='network'><mac address='bad;mac'/></interface></devices></domain>",
        )
        .unwrap();
        assert_eq!(
            interface_macs(&nics),
            vec![Some("00:16:3e:0a:0b:0c".to_owned()), None, None]
        );

        let (doc, _) = crate::xl::to_xen_domain(
            "name = 'x'\ndisk = [ 'phy:/dev/vg/x,xvda2,w', 'file:/srv/x-swap.img,xvda1,w', '/iso/d.iso,raw,hdc:cdrom,r' ]\n",
        )
        .unwrap();
        let d = source_disks(&doc).unwrap();
        assert_eq!(d[0].source, Source::Block("/dev/vg/x".into()));
        assert_eq!(d[0].target, "xvda2");
        assert_eq!(d[1].source, Source::File("/srv/x-swap.img".into()));
        assert_eq!(d[2].device, Device::Cdrom);
    }
}
