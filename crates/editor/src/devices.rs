//! Block device names: Xen's `/dev/xvdX[N]` (and udev's
//! `/dev/disk/by-path/xen-vbd-<id>[-partN]`) become virtio's `/dev/vdX[N]`.
//!
//! The mapping keeps the disk letter and the partition number: the KVM
//! domain made by `xen2kvm domxml` gives each Xen disk `xvdX` the virtio
//! target `vdX`. `UUID=`, `LABEL=`, `PARTUUID=`, `/dev/mapper/…`, LVM and MD
//! paths are never touched. A `/dev/xvd…` spelling this module does not
//! understand is left as it is, with a warning.

use crate::text::{edit_lines, is_comment};
use crate::Edit;

/// The KVM name of one Xen device path, or `None` when `path` is not a Xen
/// block device this module knows (`/dev/xvda2` → `/dev/vda2`).
pub fn remap_path(path: &str) -> Option<String> {
    if let Some(rest) = path.strip_prefix("/dev/xvd") {
        let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        let digits = rest[letters..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if letters == 0 || letters + digits != rest.len() {
            return None;
        }
        return Some(format!("/dev/vd{rest}"));
    }
    let id = path.strip_prefix("/dev/disk/by-path/xen-vbd-")?;
    let (devid, part) = match id.split_once("-part") {
        Some((d, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (d, p),
        Some(_) => return None,
        None => (id, ""),
    };
    let devid: u32 = devid.parse().ok()?;
    // Xen's virtual device numbers: 202<<8 | disk<<4 | partition, or the
    // extended form 1<<28 | disk<<8 | partition for disks beyond 16.
    let (disk, dev_part) = if devid & (1 << 28) != 0 {
        ((devid >> 8) & 0xfffff, devid & 0xff)
    } else if devid >> 8 == 202 {
        ((devid & 0xff) >> 4, devid & 0xf)
    } else {
        return None;
    };
    let part = match (part, dev_part) {
        ("", 0) => String::new(),
        ("", n) => n.to_string(),
        (p, 0) => p.to_owned(),
        _ => return None,
    };
    let mut name = String::new();
    let mut n = disk;
    loop {
        name.insert(0, char::from(b'a' + (n % 26) as u8));
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    Some(format!("/dev/vd{name}{part}"))
}

/// Rewrites every Xen device path inside `text` (a line, a word, a kernel
/// argument). Returns the new text, the `(old, new)` pairs, and the Xen-looking
/// paths it left alone.
pub fn remap_in(text: &str) -> (String, Vec<(String, String)>, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut pairs = Vec::new();
    let mut unknown = Vec::new();
    let mut rest = text;
    while let Some(at) = find_xen_path(rest) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "/-_.:".contains(c)))
            .unwrap_or(tail.len());
        let path = &tail[..end];
        match remap_path(path) {
            Some(new) => {
                out.push_str(&new);
                pairs.push((path.to_owned(), new));
            }
            None => {
                out.push_str(path);
                unknown.push(path.to_owned());
            }
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    (out, pairs, unknown)
}

use xen2kvm_inspector::xen::{find_block_path as find_xen_path, is_lvm_device_key};

/// Files whose non-comment lines name devices: `/etc/fstab`, `/etc/crypttab`,
/// GRUB's `device.map`, SUSE's `grub_installdevice`.
pub fn remap_file(text: &str) -> Edit {
    let mut edit = Edit::default();
    let new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let (new, pairs, unknown) = remap_in(line);
        for u in unknown {
            edit.warnings.push(format!(
                "line {n}: left {u} as it is (not a Xen disk name xen2kvm knows)"
            ));
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
pub fn remap_mdadm_conf(text: &str) -> Edit {
    let mut edit = Edit::default();
    let new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let (mut new, pairs, mut unknown) = remap_in(line);
        if line.trim_start().starts_with("DEVICE") && new.contains("/dev/xvd") {
            // Globs (`/dev/xvd*`) name the Xen disks as a family.
            new = new.replace("/dev/xvd", "/dev/vd");
            unknown.clear();
            edit.changes
                .push(format!("line {n}: DEVICE names xvd devices; now vd"));
        }
        for u in unknown {
            edit.warnings.push(format!(
                "line {n}: left {u} as it is (not a Xen disk name xen2kvm knows)"
            ));
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
        assert_eq!(remap_path("/dev/xvda").as_deref(), Some("/dev/vda"));
        assert_eq!(remap_path("/dev/xvdb12").as_deref(), Some("/dev/vdb12"));
        assert_eq!(remap_path("/dev/xvdaa1").as_deref(), Some("/dev/vdaa1"));
        assert_eq!(
            remap_path("/dev/disk/by-path/xen-vbd-51712-part2").as_deref(),
            Some("/dev/vda2")
        );
        assert_eq!(
            remap_path("/dev/disk/by-path/xen-vbd-51728").as_deref(),
            Some("/dev/vdb")
        );
        assert_eq!(
            remap_path("/dev/disk/by-path/xen-vbd-268439552-part1").as_deref(),
            Some("/dev/vdq1")
        );
        assert_eq!(
            remap_path("/dev/disk/by-path/xen-vbd-51713").as_deref(),
            Some("/dev/vda1")
        );
        assert_eq!(remap_path("/dev/xvd*"), None);
        assert_eq!(remap_path("/dev/xvda1x"), None);
        assert_eq!(remap_path("/dev/sda1"), None);
        assert_eq!(remap_path("/dev/disk/by-path/xen-vbd-oops"), None);
    }

    #[test]
    fn fstab() {
        check(
            remap_file,
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
            remap_file,
            "UUID=5e1f / ext4 defaults 0 1\n/dev/vda2 swap swap defaults 0 0\n",
        );
    }

    #[test]
    fn unknown_names_are_kept_and_reported() {
        let e = remap_file("/dev/xvd* /mnt auto noauto 0 0\n");
        assert_eq!(e.text, "/dev/xvd* /mnt auto noauto 0 0\n");
        assert!(e.changes.is_empty());
        assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
    }

    #[test]
    fn device_map_keeps_tabs_and_crlf() {
        check(
            remap_file,
            "(fd0)\t/dev/fd0\r\n(hd0)\t/dev/xvda\r\n",
            "(fd0)\t/dev/fd0\r\n(hd0)\t/dev/vda\r\n",
            &["line 2: /dev/xvda -> /dev/vda"],
        );
    }

    #[test]
    fn mdadm_conf() {
        check(
            remap_mdadm_conf,
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
            remap_mdadm_conf,
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
