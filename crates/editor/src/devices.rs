//! Block device names: Xen's `/dev/xvdX[N]` (and udev's
//! `/dev/disk/by-path/xen-vbd-<id>[-partN]`) become virtio's `/dev/vdX[N]`.
//!
//! Xen's other names for its disks (`/dev/sdX`, `/dev/hdX`: xenlinux
//! kernels, HVM guests) are Xen names too. Which virtio disk each becomes
//! is the [`DiskMap`]'s: by the domain's disk order when the Xen targets
//! are known (`xvda`, `xvdc` are `vda`, `vdb` under KVM; the partition
//! image `xvda2` is the whole disk), else the letter and partition number
//! are kept. `UUID=`, `LABEL=`, `PARTUUID=`, `/dev/mapper/…`, LVM and MD
//! paths are never touched. A `/dev/xvd…` spelling this module does not
//! understand is left as it is, with a warning.

use crate::text::{edit_lines, is_comment};
use crate::Edit;

/// Where a Xen device path stands in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Only a device path is understood here (GRUB's `device.map`, LVM's
    /// and blkid's caches, debconf's answers).
    Path,
    /// A device spec (fstab's and crypttab's fields, `root=`, `resume=`,
    /// `RESUME=`): a path standing alone there may become `UUID=…` when
    /// the domain's disks are named differently under KVM
    /// ([`DiskMap::stable_name`]).
    Spec,
}

/// The KVM name of one Xen device path (`/dev/xvda2` → `/dev/vda2`; with
/// the domain's disks known, by their order: [`DiskMap`]), and a note when
/// the domain's disks do not explain it (a stale line for a disk the domain
/// no longer has): it then keeps its letter, as without the domain. `Err`:
/// not a Xen disk name this module understands; left as it is.
pub fn remap_path(path: &str, disks: &DiskMap) -> Result<(String, Option<String>), String> {
    let disk =
        XenDisk::parse_path(path).ok_or_else(|| "not a Xen disk name xen2kvm knows".to_owned())?;
    match disks.kvm_path(disk) {
        Ok(new) => Ok((new, None)),
        Err(why) => {
            let new = DiskMap::BY_LETTER.kvm_path(disk)?;
            Ok((new, Some(why)))
        }
    }
}

/// Whether the path at `text[at..end]` stands alone as a device spec: the
/// whole whitespace-separated word, or the whole value of `root=`,
/// `resume=` or `RESUME=` (a kernel argument, initramfs-tools' setting).
fn stands_alone(text: &str, at: usize, end: usize) -> bool {
    let before = &text[..at];
    let word_start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let key = &before[word_start..];
    let after_ok = text[end..].chars().next().is_none_or(char::is_whitespace);
    after_ok && matches!(key, "" | "root=" | "resume=" | "RESUME=")
}

/// Rewrites every Xen device path inside `text` (a line, a word, a kernel
/// argument) as it may be spelled at `place`. Returns the new text, the
/// `(old, new)` pairs, and warnings (paths left alone, paths the domain's
/// disks do not explain).
pub fn remap_in(
    text: &str,
    disks: &DiskMap,
    place: Place,
) -> (String, Vec<(String, String)>, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut pairs = Vec::new();
    let mut warnings = Vec::new();
    let mut done = 0;
    while let Some(found) = find_xen_path(&text[done..]) {
        let at = done + found;
        out.push_str(&text[done..at]);
        let tail = &text[at..];
        let end = at
            + tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || "/-_.:".contains(c)))
                .unwrap_or(tail.len());
        let path = &text[at..end];
        let stable = XenDisk::parse_path(path)
            .filter(|_| place == Place::Spec && stands_alone(text, at, end))
            .and_then(|d| disks.stable_name(d));
        match (stable, remap_path(path, disks)) {
            (Some(name), _) => {
                out.push_str(name);
                pairs.push((path.to_owned(), name.to_owned()));
            }
            (None, Ok((new, note))) => {
                if let Some(why) = note {
                    warnings.push(format!("{path} -> {new} by its letter: {why}"));
                }
                out.push_str(&new);
                pairs.push((path.to_owned(), new));
            }
            (None, Err(why)) => {
                out.push_str(path);
                warnings.push(format!("left {path} as it is ({why})"));
            }
        }
        done = end;
    }
    out.push_str(&text[done..]);
    (out, pairs, warnings)
}

use xen2kvm_inspector::xen::{
    find_block_path as find_xen_path, is_lvm_device_key, DiskMap, XenDisk,
};

/// Files whose non-comment lines name devices: `/etc/fstab`, `/etc/crypttab`,
/// GRUB's `device.map`, SUSE's `grub_installdevice`, …; `place` says
/// whether their fields are device specs ([`Place`]).
pub fn remap_file(text: &str, disks: &DiskMap, place: Place) -> Edit {
    let mut edit = Edit::default();
    let new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let (new, pairs, notes) = remap_in(line, disks, place);
        for w in notes {
            edit.warnings.push(format!("line {n}: {w}"));
        }
        if pairs.is_empty() {
            return None;
        }
        for (old, to) in pairs {
            edit.changes.push(format!("line {n}: {old} -> {to}"));
        }
        Some(new)
    });
    edit.text = new;
    edit
}

/// `mdadm.conf`: `DEVICE` lines may hold globs (`/dev/xvd*`), which become
/// `/dev/vd*`; device names elsewhere (`devices=/dev/xvda1,…`) are remapped
/// as in [`remap_file`].
pub fn remap_mdadm_conf(text: &str, disks: &DiskMap) -> Edit {
    let mut edit = Edit::default();
    let new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let (mut new, pairs, mut notes) = remap_in(line, disks, Place::Path);
        if line.trim_start().starts_with("DEVICE") && new.contains("/dev/xvd") {
            // Globs (`/dev/xvd*`) name the Xen disks as a family.
            new = new.replace("/dev/xvd", "/dev/vd");
            notes.clear();
            edit.changes
                .push(format!("line {n}: DEVICE names xvd devices; now vd"));
        }
        for w in notes {
            edit.warnings.push(format!("line {n}: {w}"));
        }
        for (old, to) in &pairs {
            edit.changes.push(format!("line {n}: {old} -> {to}"));
        }
        (new != line).then_some(new)
    });
    edit.text = new;
    edit
}

/// `lvm.conf`: `filter`, `global_filter` and `types` settings that accept or
/// reject `xvd` devices are made to say `vd` (a filter that accepts only
/// `/dev/xvd.*` hides every disk on KVM).
pub fn remap_lvm_conf(text: &str) -> Edit {
    let mut edit = Edit::default();
    let new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let key = line
            .trim_start()
            .split(['=', ' ', '\t'])
            .next()
            .unwrap_or("");
        if !is_lvm_device_key(key) {
            return None;
        }
        if !line.contains("xvd") {
            return None;
        }
        let new = line.replace("xvd", "vd");
        edit.changes
            .push(format!("line {n}: {key} names xvd devices; now vd"));
        Some(new)
    });
    edit.text = new;
    edit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{check, check_noop};

    #[test]
    fn paths() {
        let letter = |p: &str| remap_path(p, &DiskMap::BY_LETTER).ok().map(|(new, _)| new);
        assert_eq!(letter("/dev/xvda").as_deref(), Some("/dev/vda"));
        assert_eq!(letter("/dev/xvdb12").as_deref(), Some("/dev/vdb12"));
        assert_eq!(letter("/dev/xvdaa1").as_deref(), Some("/dev/vdaa1"));
        assert_eq!(
            letter("/dev/disk/by-path/xen-vbd-51712-part2").as_deref(),
            Some("/dev/vda2")
        );
        assert_eq!(
            letter("/dev/disk/by-path/xen-vbd-51728").as_deref(),
            Some("/dev/vdb")
        );
        assert_eq!(
            letter("/dev/disk/by-path/xen-vbd-268439552-part1").as_deref(),
            Some("/dev/vdq1")
        );
        assert_eq!(
            letter("/dev/disk/by-path/xen-vbd-51713").as_deref(),
            Some("/dev/vda1")
        );
        assert_eq!(letter("/dev/xvd*"), None);
        assert_eq!(letter("/dev/xvda1x"), None);
        assert_eq!(letter("/dev/sda1").as_deref(), Some("/dev/vda1"));
        assert_eq!(letter("/dev/hdc").as_deref(), Some("/dev/vdc"));
        assert_eq!(letter("/dev/disk/by-path/xen-vbd-oops"), None);
        // A disk the domain does not have keeps its letter, with a note.
        let skipped = DiskMap::from_targets(&["xvda", "xvdc"]).unwrap();
        assert_eq!(
            remap_path("/dev/xvdb1", &skipped).unwrap(),
            (
                "/dev/vdb1".to_owned(),
                Some("the domain has no disk xvdb1".to_owned())
            )
        );
    }

    #[test]
    fn fstab() {
        check(
            |t| remap_file(t, &DiskMap::BY_LETTER, Place::Spec),
            "# / was on /dev/xvda1 during installation\n\
             /dev/xvda1 / ext4 errors=remount-ro 0 1\n\
             UUID=5e1f /home ext4 defaults 0 2\n\
             LABEL=swap none swap sw 0 0\n\
             /dev/mapper/vg-data /data xfs defaults 0 0\n\
             /dev/disk/by-path/xen-vbd-51712-part3 /srv ext4 defaults 0 0\n",
            "# / was on /dev/xvda1 during installation\n\
             /dev/vda1 / ext4 errors=remount-ro 0 1\n\
             UUID=5e1f /home ext4 defaults 0 2\n\
             LABEL=swap none swap sw 0 0\n\
             /dev/mapper/vg-data /data xfs defaults 0 0\n\
             /dev/vda3 /srv ext4 defaults 0 0\n",
            &[
                "line 2: /dev/xvda1 -> /dev/vda1",
                "line 6: /dev/disk/by-path/xen-vbd-51712-part3 -> /dev/vda3",
            ],
        );
        check_noop(
            |t| remap_file(t, &DiskMap::BY_LETTER, Place::Spec),
            "UUID=5e1f / ext4 defaults 0 1\n/dev/vda2 swap swap defaults 0 0\n",
        );
    }

    /// xenlinux names (SLES 10/11 `kernel-xen`: the domain config's `sda1`)
    /// and a domain whose disks skip a letter (`xvda`, `xvdc`: under KVM
    /// the second disk is `vdb`); a name no disk of the domain has keeps
    /// its letter, with a warning naming the line.
    #[test]
    fn domain_order_and_xenlinux_names() {
        let skipped = DiskMap::from_targets(&["sda", "sdc"]).unwrap();
        check(
            |t| remap_file(t, &skipped, Place::Spec),
            "/dev/sda2 / ext3 acl,user_xattr 1 1\n\
             /dev/sda1 swap swap defaults 0 0\n\
             /dev/sdc1 /srv ext3 defaults 1 2\n",
            "/dev/vda2 / ext3 acl,user_xattr 1 1\n\
             /dev/vda1 swap swap defaults 0 0\n\
             /dev/vdb1 /srv ext3 defaults 1 2\n",
            &[
                "line 1: /dev/sda2 -> /dev/vda2",
                "line 2: /dev/sda1 -> /dev/vda1",
                "line 3: /dev/sdc1 -> /dev/vdb1",
            ],
        );
        // A stale line for a disk the domain no longer has keeps its letter
        // (as without the domain), with a warning naming the line.
        let e = remap_file(
            "/dev/hdb /media/cdrom auto noauto 0 0\n",
            &skipped,
            Place::Spec,
        );
        assert_eq!(e.text, "/dev/vdb /media/cdrom auto noauto 0 0\n");
        assert_eq!(
            e.warnings,
            ["line 1: /dev/hdb -> /dev/vdb by its letter: the domain has no disk xvdb"]
        );
        // xen-tools: the root filesystem image is xvda2, swap is xvda1.
        let parts = DiskMap::from_targets(&["xvda2", "xvda1"]).unwrap();
        check(
            |t| remap_file(t, &parts, Place::Spec),
            "/dev/xvda2 / ext4 errors=remount-ro 0 1\n/dev/xvda1 none swap sw 0 0\n",
            "/dev/vda / ext4 errors=remount-ro 0 1\n/dev/vdb none swap sw 0 0\n",
            &[
                "line 1: /dev/xvda2 -> /dev/vda",
                "line 2: /dev/xvda1 -> /dev/vdb",
            ],
        );
        // Re-laid into a new disk, with the UUIDs the appliance found:
        // device specs name the filesystems by UUID (wherever virtio puts
        // them); a path where only a path is understood follows the order.
        let mut relaid = parts.clone();
        relaid.set_relaid(0);
        relaid.add_uuids(&[
            (
                "/dev/sda1".to_owned(),
                "5e1f2d3c-4b5a-4968-8776-a5b4c3d2e1f0".to_owned(),
            ),
            (
                "/dev/sdb".to_owned(),
                "0f0e0d0c-0b0a-4009-8807-060504030201".to_owned(),
            ),
        ]);
        check(
            |t| remap_file(t, &relaid, Place::Spec),
            "/dev/xvda2 / ext4 errors=remount-ro 0 1\n/dev/xvda1 none swap sw 0 0\n",
            "UUID=5e1f2d3c-4b5a-4968-8776-a5b4c3d2e1f0 / ext4 errors=remount-ro 0 1\n\
             UUID=0f0e0d0c-0b0a-4009-8807-060504030201 none swap sw 0 0\n",
            &[
                "line 1: /dev/xvda2 -> UUID=5e1f2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
                "line 2: /dev/xvda1 -> UUID=0f0e0d0c-0b0a-4009-8807-060504030201",
            ],
        );
        let e = remap_file("<device>/dev/xvda2</device>\n", &relaid, Place::Spec);
        assert_eq!(e.text, "<device>/dev/vda1</device>\n");
        let e = remap_file("/dev/xvda2 /\n", &relaid, Place::Path);
        assert_eq!(e.text, "/dev/vda1 /\n");
        let e = remap_file("RESUME=/dev/xvda1\n", &relaid, Place::Spec);
        assert_eq!(e.text, "RESUME=UUID=0f0e0d0c-0b0a-4009-8807-060504030201\n");
        let (line, _, _) = remap_in("root=/dev/xvda2 ro", &relaid, Place::Spec);
        assert_eq!(line, "root=UUID=5e1f2d3c-4b5a-4968-8776-a5b4c3d2e1f0 ro");
        let (line, _, _) = remap_in("foo=/dev/xvda2", &relaid, Place::Spec);
        assert_eq!(line, "foo=/dev/vda1");
    }

    #[test]
    fn unknown_names_are_kept_and_reported() {
        let e = remap_file(
            "/dev/xvd* /mnt auto noauto 0 0\n",
            &DiskMap::BY_LETTER,
            Place::Spec,
        );
        assert_eq!(e.text, "/dev/xvd* /mnt auto noauto 0 0\n");
        assert!(e.changes.is_empty());
        assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
    }

    #[test]
    fn device_map_keeps_tabs_and_crlf() {
        check(
            |t| remap_file(t, &DiskMap::BY_LETTER, Place::Spec),
            "(fd0)\t/dev/fd0\r\n(hd0)\t/dev/xvda\r\n",
            "(fd0)\t/dev/fd0\r\n(hd0)\t/dev/vda\r\n",
            &["line 2: /dev/xvda -> /dev/vda"],
        );
    }

    #[test]
    fn mdadm_conf() {
        check(
            |t| remap_mdadm_conf(t, &DiskMap::BY_LETTER),
            "DEVICE /dev/xvd*\nARRAY /dev/md0 devices=/dev/xvda1,/dev/xvdb1\n",
            "DEVICE /dev/vd*\nARRAY /dev/md0 devices=/dev/vda1,/dev/vdb1\n",
            &[
                "line 1: DEVICE names xvd devices; now vd",
                "line 2: /dev/xvda1 -> /dev/vda1",
                "line 2: /dev/xvdb1 -> /dev/vdb1",
            ],
        );
    }

    /// Found by the property tests: a DEVICE line with a glob and a by-path
    /// name took two runs to convert.
    #[test]
    fn mdadm_device_line_with_a_glob_and_a_path() {
        check(
            |t| remap_mdadm_conf(t, &DiskMap::BY_LETTER),
            "DEVICE /dev/xvd* /dev/disk/by-path/xen-vbd-51712-part2\n",
            "DEVICE /dev/vd* /dev/vda2\n",
            &[
                "line 1: DEVICE names xvd devices; now vd",
                "line 1: /dev/disk/by-path/xen-vbd-51712-part2 -> /dev/vda2",
            ],
        );
    }

    #[test]
    fn lvm_filters() {
        check(
            remap_lvm_conf,
            "devices {\n    # filter = [ \"a|/dev/xvd.*|\" ]\n    filter = [ \"a|/dev/xvd.*|\", \"r|.*|\" ]\n    dir = \"/dev\"\n}\n",
            "devices {\n    # filter = [ \"a|/dev/xvd.*|\" ]\n    filter = [ \"a|/dev/vd.*|\", \"r|.*|\" ]\n    dir = \"/dev\"\n}\n",
            &["line 3: filter names xvd devices; now vd"],
        );
    }
}
