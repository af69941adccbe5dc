//! plan and apply on the `debian12-xenpv` case tree (`DirFs`) beyond what
//! the golden cases show: `--skip`, an unknown rule, what a failure
//! part-way leaves behind, and the checks apply makes of the tools' output.

#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;

use common::{facts_of, fake, plan_of, read, tree};
use xen2kvm_editor::{apply, plan, Ctx, Step};
use xen2kvm_vfs::DirFs;

const KVER: &str = "6.1.0-50-amd64";

#[test]
fn skip_leaves_a_rule_out() {
    let t = tree("debian12-xenpv");
    let fs_ = DirFs::new(t.path());
    let p = plan_of(
        &fs_,
        true,
        &["consoles".to_owned(), "rebuild-initrd".to_owned()],
    );
    assert!(p.changes.iter().all(|c| c.rule != "consoles"));
    assert!(p.remove_links.is_empty());
    assert!(p
        .steps
        .iter()
        .all(|s| !matches!(s.step, Step::RebuildInitrd { .. })));
    let f = facts_of(&fs_, true);
    let skip = ["no-such-rule".to_owned()];
    let err = plan(
        &fs_,
        &Ctx {
            facts: &f,
            boot_disk: None,
            skip: &skip,
            macs: &[],
            disks: &xen2kvm_inspector::xen::DiskMap::BY_LETTER,
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown rule 'no-such-rule'"),
        "{err}"
    );
}

#[test]
fn a_failing_command_says_what_was_done() {
    let t = tree("debian12-xenpv");
    let fs_ = DirFs::new(t.path());
    let p = plan_of(&fs_, true, &[]);
    let runner = fake(t.path(), &["grub-mkconfig"]);
    let err = apply(&fs_, &runner, &p).unwrap_err();
    assert!(
        err.error
            .to_string()
            .contains("running /usr/sbin/grub-mkconfig -o /boot/grub/grub.cfg in the guest"),
        "{}",
        err.error
    );
    let done = &err.applied.done;
    assert!(done.contains(&"wrote /etc/fstab".to_owned()), "{done:?}");
    assert!(
        done.iter().any(|d| d.starts_with("ran /usr/bin/dracut")),
        "{done:?}"
    );
    assert!(
        !done.iter().any(|d| d.contains("grub-mkconfig")),
        "{done:?}"
    );
}

#[test]
fn an_initrd_without_virtio_is_an_error_and_the_backup_is_kept() {
    let t = tree("debian12-xenpv");
    let fs_ = DirFs::new(t.path());
    let original = fs::read(t.path().join(format!("boot/initrd.img-{KVER}"))).unwrap();
    let p = plan_of(&fs_, true, &[]);
    let mut runner = fake(t.path(), &[]);
    runner.bad_initrd = true;
    let err = apply(&fs_, &runner, &p).unwrap_err();
    let msg = err.error.to_string();
    assert!(msg.contains("lacks virtio_blk, virtio_pci"), "{msg}");
    assert!(msg.contains(".xen2kvm-orig"), "{msg}");
    let orig = fs::read(
        t.path()
            .join(format!("boot/initrd.img-{KVER}.xen2kvm-orig")),
    )
    .unwrap();
    assert_eq!(orig, original);
}

#[test]
fn mkconfig_output_naming_xen_devices_is_an_error() {
    let t = tree("debian12-xenpv");
    let fs_ = DirFs::new(t.path());
    // Skipping the command line rule leaves root=/dev/xvda1 for mkconfig.
    let p = plan_of(&fs_, true, &["kernel-cmdline".to_owned()]);
    let runner = fake(t.path(), &[]);
    let err = apply(&fs_, &runner, &p).unwrap_err();
    assert!(
        err.error.to_string().contains("still names a Xen device"),
        "{}",
        err.error
    );
}

#[test]
fn a_second_backup_keeps_the_xen_original() {
    let t = tree("debian12-xenpv");
    let fs_ = DirFs::new(t.path());
    let backup = t
        .path()
        .join(format!("boot/initrd.img-{KVER}.xen2kvm-orig"));
    fs::write(&backup, b"the Xen original").unwrap();
    let p = plan_of(&fs_, true, &[]);
    let step = p
        .steps
        .iter()
        .find_map(|s| match &s.step {
            Step::RebuildInitrd { backup, .. } => Some(backup.clone()),
            _ => None,
        })
        .expect("an initrd rebuild is planned");
    assert_eq!(step, None, "an existing backup is not planned again");
    apply(&fs_, &fake(t.path(), &[]), &p).unwrap();
    assert_eq!(
        read(
            t.path(),
            backup
                .to_str()
                .unwrap()
                .trim_start_matches(t.path().to_str().unwrap())
        ),
        "the Xen original"
    );
}
