//! Property tests of every pure rule, on generated text (a guest's files
//! are untrusted input): whatever the text, a rule never panics, reports
//! changes exactly when it changed the text, changes nothing on a second
//! application, and leaves the lines it does not own byte-identical.
//!
//! The generator mixes what real config files hold (comments, assignments,
//! GRUB and fstab lines, CRLF line ends, tabs, non-ASCII) with the Xen
//! words the rules act on, so that both sides of every rule are exercised.

use proptest::prelude::*;
use xen2kvm_editor::{cmdline, consoles, default_kernel, devices, initrd_conf, Edit};
use xen2kvm_inspector::xen::DiskMap;

/// Words the rules look at; lines holding none of them are not any rule's.
const OWNED: &[&str] = &[
    "xvd",
    "/dev/sd",
    "/dev/hd",
    "/dev/vd",
    // What a device spec becomes when the disks are renamed (DiskMap::stable_name).
    "UUID=",
    "xen",
    "hvc",
    "xvc",
    "console",
    "GRUB_",
    "_APPEND",
    "INITRD_MODULES",
    "drivers",
    "alias",
    "filter",
    "types",
    "preferred_names",
    "DEVICE",
    "kernel",
    "default",
    "title",
    "initrd",
    "virtio",
    "ttyS0",
    "module",
    "xennet",
    "xenblk",
    "saved_entry",
    "serial",
    "root",
    "resume",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/dev/xvda1".to_owned()),
        Just("/dev/xvdb".to_owned()),
        Just("/dev/xvd*".to_owned()),
        Just("/dev/xvdc3".to_owned()),
        Just("/dev/xvde2".to_owned()),
        Just("/dev/sda1".to_owned()),
        Just("/dev/hdb".to_owned()),
        Just("/dev/disk/by-path/xen-vbd-51712-part2".to_owned()),
        Just("root=/dev/xvda2".to_owned()),
        Just("resume=/dev/xvda1".to_owned()),
        Just("console=hvc0".to_owned()),
        Just("console=xvc0,9600".to_owned()),
        Just("xencons=tty".to_owned()),
        Just("console=ttyS0,115200".to_owned()),
        Just("hvc0".to_owned()),
        Just("xvc0".to_owned()),
        Just("xenblk".to_owned()),
        Just("xen-blkfront".to_owned()),
        Just("virtio_blk".to_owned()),
        Just("UUID=5e1f".to_owned()),
        Just("quiet".to_owned()),
        Just("=".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("#".to_owned()),
        Just("ü".to_owned()),
        "[a-z0-9_./=-]{0,8}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    let words = prop::collection::vec(word(), 0..6)
        .prop_map(|w| w.join(" "))
        .boxed();
    prop_oneof![
        words.clone(),
        words.clone().prop_map(|w| format!("# {w}")),
        words
            .clone()
            .prop_map(|w| format!("GRUB_CMDLINE_LINUX_DEFAULT=\"{w}\"")),
        words
            .clone()
            .prop_map(|w| format!("GRUB_CMDLINE_XEN=\"{w}\"")),
        Just("GRUB_DEFAULT=saved".to_owned()),
        Just("GRUB_TERMINAL=console".to_owned()),
        words
            .clone()
            .prop_map(|w| format!("INITRD_MODULES=\"{w}\"")),
        words
            .clone()
            .prop_map(|w| format!("DOMU_INITRD_MODULES=\"{w}\"")),
        Just("DEFAULTKERNEL=kernel-xen".to_owned()),
        words
            .clone()
            .prop_map(|w| format!("DEFAULT_APPEND=\"{w}\"")),
        words
            .clone()
            .prop_map(|w| format!("add_drivers+=\" {w} \"")),
        words.clone().prop_map(|w| format!("alias eth0 {w}")),
        words
            .clone()
            .prop_map(|w| format!("    filter = [ \"a|{w}|\" ]")),
        words.clone().prop_map(|w| format!("DEVICE {w}")),
        words
            .clone()
            .prop_map(|w| format!("\tkernel /boot/vmlinuz-xen {w}")),
        words.clone().prop_map(|w| format!("title {w}")),
        Just("default 0".to_owned()),
        Just("default 7".to_owned()),
        words
            .clone()
            .prop_map(|w| format!("x0:12345:respawn:/sbin/agetty {w}")),
        words.prop_map(|w| format!("(hd0)\t{w}")),
        "[ -~\t]{0,30}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(line(), 0..12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, last_newline)| {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut t = lines.join(nl);
            if last_newline && !t.is_empty() {
                t.push_str(nl);
            }
            t
        })
}

/// The lines of `t` that no rule owns, in order (blank lines aside: a rule
/// that adds a section separates it with one).
fn unowned(t: &str) -> Vec<&str> {
    t.lines()
        .filter(|l| !l.trim().is_empty() && !OWNED.iter().any(|w| l.contains(w)))
        .collect()
}

/// How a rule may add lines it does not own: never, or a copied section at
/// the end (GRUB legacy's new menu entry copies the default one).
#[derive(Clone, Copy, PartialEq)]
enum Adds {
    Nothing,
    SectionAtEnd,
}

fn check(name: &str, rule: impl Fn(&str) -> Edit, input: &str) -> Result<(), TestCaseError> {
    check_adding(name, rule, input, Adds::Nothing)
}

fn check_adding(
    name: &str,
    rule: impl Fn(&str) -> Edit,
    input: &str,
    adds: Adds,
) -> Result<(), TestCaseError> {
    let e = rule(input);
    prop_assert_eq!(
        e.changes.is_empty(),
        e.text == input,
        "{}: changes reported exactly when the text changed ({:?})",
        name,
        e.changes
    );
    let again = rule(&e.text);
    prop_assert_eq!(
        &again.text,
        &e.text,
        "{}: a second application changed the text",
        name
    );
    prop_assert!(
        again.changes.is_empty(),
        "{}: a second application reported {:?}",
        name,
        again.changes
    );
    let (before, after) = (unowned(input), unowned(&e.text));
    match adds {
        Adds::Nothing => prop_assert_eq!(
            before,
            after,
            "{}: a line the rule does not own changed",
            name
        ),
        Adds::SectionAtEnd => prop_assert!(
            after.starts_with(&before),
            "{}: a line the rule does not own changed: {:?} -> {:?}",
            name,
            before,
            after
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_pure_rule_is_safe_on_any_text(t in text()) {
        // By letter, by a domain order that skips a letter and has a
        // partition image (xen-tools), and with that image re-laid and the
        // filesystems' UUIDs known (device specs become UUID=).
        let mut relaid = DiskMap::from_targets(&["xvde2", "xvda", "xvdc"]).unwrap();
        relaid.set_relaid(0);
        relaid.add_uuids(&[("/dev/sda1".to_owned(), "1234-abcd".to_owned()), ("/dev/sdb2".to_owned(), "beef".to_owned())]);
        for disks in [DiskMap::BY_LETTER, DiskMap::from_targets(&["xvda", "xvdc", "xvde2"]).unwrap(), relaid] {
            let d = &disks;
            check("devices::remap_file", |s| devices::remap_file(s, d, devices::Place::Spec), &t)?;
            check("devices::remap_mdadm_conf", |s| devices::remap_mdadm_conf(s, d), &t)?;
            check("cmdline::default_grub", |s| cmdline::default_grub(s, d), &t)?;
            check("cmdline::legacy_menu", |s| cmdline::legacy_menu(s, d), &t)?;
            check("cmdline::sysconfig_bootloader", |s| cmdline::sysconfig_bootloader(s, d), &t)?;
        }
        check("devices::remap_lvm_conf", devices::remap_lvm_conf, &t)?;
        check("consoles::securetty", consoles::securetty, &t)?;
        check("consoles::inittab", consoles::inittab, &t)?;
        check("initrd_conf::sysconfig_kernel", initrd_conf::sysconfig_kernel, &t)?;
        check("initrd_conf::dracut_file", initrd_conf::dracut_file, &t)?;
        check("initrd_conf::initramfs_modules", initrd_conf::initramfs_modules, &t)?;
        check("initrd_conf::modprobe_aliases", initrd_conf::modprobe_aliases, &t)?;
        check_adding(
            "default_kernel::legacy_menu",
            |s| default_kernel::legacy_menu(s, "vmlinuz-3.0.101-63-default", Some("initrd-3.0.101-63-default"), "SLES 11 - 3.0.101-63-default"),
            &t,
            Adds::SectionAtEnd,
        )?;
        check(
            "default_kernel::sysconfig_defaultkernel",
            |s| default_kernel::sysconfig_defaultkernel(s, "kernel"),
            &t,
        )?;
        check(
            "default_kernel::default_grub_default",
            |s| default_kernel::default_grub_default(s, "gnulinux-advanced>gnulinux-6.1"),
            &t,
        )?;
    }

    #[test]
    fn grubenv_edits_keep_the_block_size(value in "[ -~]{0,40}", fill in 0usize..900) {
        let mut block = "# GRUB Environment Block\n".to_owned();
        block.push_str(&"x=y\n".repeat(fill / 4));
        block.push_str(&"#".repeat(1024 - block.len()));
        if let Some(new) = default_kernel::grubenv_set(&block, "saved_entry", &value) {
            prop_assert_eq!(new.len(), 1024);
            let again = default_kernel::grubenv_set(&new, "saved_entry", &value);
            prop_assert_eq!(again.as_deref(), Some(new.as_str()));
        }
    }

    #[test]
    fn device_paths_map_one_way(path in "/dev/(xvd|vd|sd|hd)[a-z]{0,3}[0-9]{0,3}[a-z*]{0,1}") {
        for disks in [DiskMap::BY_LETTER, DiskMap::from_targets(&["xvda", "xvdc", "xvde2"]).unwrap()] {
            if let Ok((new, _)) = devices::remap_path(&path, &disks) {
                prop_assert!(new.starts_with("/dev/vd"));
                prop_assert!(devices::remap_path(&new, &disks).is_err());
            }
        }
    }
}
