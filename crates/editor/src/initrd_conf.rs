//! Which drivers go into the initrd: Xen's out, virtio's in, in the place
//! each initrd tool reads them from (SUSE `/etc/sysconfig/kernel`, dracut
//! `dracut.conf.d`, initramfs-tools `modules`, RHEL 5/6 modprobe aliases).

use xen2kvm_inspector::xen;

use crate::text::{append_line, edit_lines, filter_lines, is_comment, Assign};
use crate::Edit;

/// The virtio drivers a converted guest needs in its initrd (disk, the PCI
/// transport, network, balloon), in probing order.
pub const VIRTIO_DRIVERS: &[&str] = &["virtio_blk", "virtio_pci", "virtio_net", "virtio_balloon"];

/// The dracut configuration file xen2kvm owns.
pub const DRACUT_CONF: &str = "/etc/dracut.conf.d/90-xen2kvm.conf";

/// The content of [`DRACUT_CONF`].
pub fn dracut_conf() -> String {
    format!(
        "# Added by xen2kvm: the KVM paravirtual drivers for the root disk and the\n\
         # network, always in the initrd (dracut's host-only mode would add them\n\
         # only when it runs on a KVM guest).\n\
         add_drivers+=\" {} \"\n",
        VIRTIO_DRIVERS.join(" ")
    )
}

fn is_xen_driver(name: &str) -> bool {
    xen::is_driver(name)
}

/// SUSE `/etc/sysconfig/kernel`: Xen drivers out of `INITRD_MODULES` and
/// `DOMU_INITRD_MODULES`, the virtio drivers into `INITRD_MODULES`.
pub fn sysconfig_kernel(text: &str) -> Edit {
    let mut edit = Edit::default();
    let new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let a = Assign::parse(line)?;
        if a.key != "INITRD_MODULES" && a.key != "DOMU_INITRD_MODULES" {
            return None;
        }
        let mut words: Vec<&str> = a.value.split_whitespace().collect();
        let removed: Vec<&str> = words.iter().copied().filter(|w| is_xen_driver(w)).collect();
        words.retain(|w| !is_xen_driver(w));
        let mut added = Vec::new();
        if a.key == "INITRD_MODULES" {
            for d in VIRTIO_DRIVERS {
                if !words.contains(d) {
                    words.push(d);
                    added.push(*d);
                }
            }
        }
        if removed.is_empty() && added.is_empty() {
            return None;
        }
        let mut what = Vec::new();
        if !removed.is_empty() {
            what.push(format!("removed {}", removed.join(" ")));
        }
        if !added.is_empty() {
            what.push(format!("added {}", added.join(" ")));
        }
        edit.changes
            .push(format!("line {n}: {}: {}", a.key, what.join(", ")));
        Some(a.with_value(&words.join(" ")))
    });
    edit.text = new;
    edit
}

/// A dracut config file: Xen drivers out of `add_drivers`, `force_drivers`
/// and `drivers`; a setting left empty is dropped.
pub fn dracut_file(text: &str) -> Edit {
    let mut edit = Edit::default();
    let new = filter_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let a = Assign::parse(line)?;
        if !matches!(a.key, "add_drivers" | "force_drivers" | "drivers") {
            return None;
        }
        let removed: Vec<&str> = a
            .value
            .split_whitespace()
            .filter(|w| is_xen_driver(w))
            .collect();
        if removed.is_empty() {
            return None;
        }
        let kept: Vec<&str> = a
            .value
            .split_whitespace()
            .filter(|w| !is_xen_driver(w))
            .collect();
        if kept.is_empty() {
            edit.changes.push(format!(
                "line {n}: {}: removed {} (the line, now empty)",
                a.key,
                removed.join(" ")
            ));
            return Some(None);
        }
        edit.changes.push(format!(
            "line {n}: {}: removed {}",
            a.key,
            removed.join(" ")
        ));
        Some(Some(a.with_value(&format!(" {} ", kept.join(" ")))))
    });
    edit.text = new;
    edit
}

/// initramfs-tools `/etc/initramfs-tools/modules`: Xen drivers commented
/// out, missing virtio drivers appended (one per line, after a comment).
pub fn initramfs_modules(text: &str) -> Edit {
    let mut edit = Edit::default();
    let mut present = Vec::new();
    let mut out = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let name = line.split_whitespace().next()?;
        if is_xen_driver(name) {
            edit.changes.push(format!("line {n}: {name} commented out"));
            return Some(format!("# {line}  # Xen driver, disabled by xen2kvm"));
        }
        present.push(name.to_owned());
        None
    });
    let missing: Vec<&str> = VIRTIO_DRIVERS
        .iter()
        .copied()
        .filter(|d| !present.iter().any(|p| p == d))
        .collect();
    if !missing.is_empty() {
        append_line(&mut out, "# Added by xen2kvm: KVM paravirtual drivers");
        for d in &missing {
            append_line(&mut out, d);
        }
        edit.changes.push(format!("added {}", missing.join(" ")));
    }
    edit.text = out;
    edit
}

/// modprobe configuration (`/etc/modprobe.conf`, `/etc/modprobe.d/*.conf`):
/// `alias ethN xennet`-style aliases point at the virtio drivers.
pub fn modprobe_aliases(text: &str) -> Edit {
    let mut edit = Edit::default();
    let new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let [kw @ "alias", name, module] = words.as_slice() else {
            return None;
        };
        let to = match *module {
            "xennet" | "xen-vnif" | "xen-netfront" | "xen_netfront" => "virtio_net",
            "xenblk" | "xen-vbd" | "xen-blkfront" | "xen_blkfront" => "virtio_blk",
            _ => return None,
        };
        edit.changes
            .push(format!("line {n}: alias {name}: {module} -> {to}"));
        Some(format!("{kw} {name} {to}"))
    });
    edit.text = new;
    edit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{check, check_noop};

    #[test]
    fn sles11_sysconfig_kernel() {
        check(
            sysconfig_kernel,
            "## Type:\tstring\nINITRD_MODULES=\"xenblk\"\n\nDOMU_INITRD_MODULES=\"xennet xenblk\"\nMODULES_LOADED_ON_BOOT=\"\"\n",
            "## Type:\tstring\nINITRD_MODULES=\"virtio_blk virtio_pci virtio_net virtio_balloon\"\n\nDOMU_INITRD_MODULES=\"\"\nMODULES_LOADED_ON_BOOT=\"\"\n",
            &[
                "line 2: INITRD_MODULES: removed xenblk, added virtio_blk virtio_pci virtio_net virtio_balloon",
                "line 4: DOMU_INITRD_MODULES: removed xennet xenblk",
            ],
        );
        check_noop(
            sysconfig_kernel,
            "INITRD_MODULES=\"ext3 virtio_blk virtio_pci virtio_net virtio_balloon\"\n",
        );
    }

    #[test]
    fn dracut_files() {
        check(
            dracut_file,
            "# Xen PV drivers\nadd_drivers+=\" xen-blkfront xen-netfront \"\nforce_drivers+=\" xenblk dm_mod \"\nhostonly=\"yes\"\n",
            "# Xen PV drivers\nforce_drivers+=\" dm_mod \"\nhostonly=\"yes\"\n",
            &[
                "line 2: add_drivers: removed xen-blkfront xen-netfront (the line, now empty)",
                "line 3: force_drivers: removed xenblk",
            ],
        );
        assert!(dracut_conf()
            .contains("add_drivers+=\" virtio_blk virtio_pci virtio_net virtio_balloon \""));
    }

    #[test]
    fn initramfs_tools_modules() {
        check(
            initramfs_modules,
            "# List of modules\n# raid1\nxen-blkfront\nvirtio_net\n",
            "# List of modules\n# raid1\n# xen-blkfront  # Xen driver, disabled by xen2kvm\nvirtio_net\n# Added by xen2kvm: KVM paravirtual drivers\nvirtio_blk\nvirtio_pci\nvirtio_balloon\n",
            &["line 3: xen-blkfront commented out", "added virtio_blk virtio_pci virtio_balloon"],
        );
    }

    #[test]
    fn rhel_aliases() {
        check(
            modprobe_aliases,
            "alias eth0 xennet\nalias scsi_hostadapter xenblk\nalias snd-card-0 snd-hda\n",
            "alias eth0 virtio_net\nalias scsi_hostadapter virtio_blk\nalias snd-card-0 snd-hda\n",
            &[
                "line 1: alias eth0: xennet -> virtio_net",
                "line 2: alias scsi_hostadapter: xenblk -> virtio_blk",
            ],
        );
    }
}
