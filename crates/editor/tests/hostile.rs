//! Hostile and broken guests (guest files are untrusted input): each case
//! mutates the `debian12-xenpv` tree, then runs what `convert` runs (facts,
//! plan, apply with the fake tools). The outcome is a correct edit or an
//! error naming the file; never a panic, a hang, unbounded memory, or a
//! write outside the guest. `docs/reliability.md` lists them.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::{fake, tree};
use xen2kvm_editor::{apply, plan, Ctx};
use xen2kvm_inspector::facts;
use xen2kvm_vfs::DirFs;

/// facts → plan → apply on the tree; the first error, as text.
fn convert(root: &Path) -> Result<(), String> {
    let fs_ = DirFs::new(root);
    let mut f = facts::read(&fs_).map_err(|e| e.to_string())?;
    f.bootloader.boot_code = Some(true);
    let ctx = Ctx {
        facts: &f,
        boot_disk: Some("/dev/sdX".to_owned()),
        skip: &[],
        macs: &[],
        disks: &xen2kvm_inspector::xen::DiskMap::BY_LETTER,
    };
    let p = plan(&fs_, &ctx).map_err(|e| e.to_string())?;
    apply(&fs_, &fake(root, &[]), &p).map_err(|e| e.error.to_string())?;
    Ok(())
}

fn guest() -> tempfile::TempDir {
    tree("debian12-xenpv")
}

fn err_of(root: &Path) -> String {
    convert(root).expect_err("a hostile guest must be refused")
}

#[test]
fn a_config_link_out_of_the_guest_stays_in_the_guest() {
    let outer = tempfile::tempdir().unwrap();
    let secret = outer.path().join("secret");
    fs::write(&secret, "/dev/xvda1 / ext4 defaults 0 1\n").unwrap();
    let t = guest();
    let fstab = t.path().join("etc/fstab");
    fs::remove_file(&fstab).unwrap();
    // Absolute to the host's file, and a ../ chain: both resolve inside.
    symlink(&secret, &fstab).unwrap();
    symlink(
        "../../../../../../../../secret",
        t.path().join("etc/crypttab"),
    )
    .unwrap();
    convert(t.path()).unwrap();
    assert_eq!(
        fs::read_to_string(&secret).unwrap(),
        "/dev/xvda1 / ext4 defaults 0 1\n",
        "the host's file was edited through a guest link"
    );
}

#[test]
fn a_config_link_to_a_device_node_is_refused_by_name() {
    let t = guest();
    fs::create_dir_all(t.path().join("dev")).unwrap();
    // A FIFO stands for any non-regular file (mknod of a device needs
    // privileges the tests may not have); reading it would block forever.
    let fifo = t.path().join("dev/zero");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let grub = t.path().join("etc/default/grub");
    fs::remove_file(&grub).unwrap();
    symlink("/dev/zero", &grub).unwrap();
    let e = err_of(t.path());
    assert!(
        e.contains("/etc/default/grub") && e.contains("not a regular file"),
        "{e}"
    );
}

#[test]
fn a_fstab_of_a_gib_is_refused_by_name_without_reading_it() {
    let t = guest();
    let f = fs::OpenOptions::new()
        .append(true)
        .open(t.path().join("etc/fstab"))
        .unwrap();
    f.set_len(1 << 30).unwrap();
    let e = err_of(t.path());
    assert!(e.contains("/etc/fstab") && e.contains("larger than"), "{e}");
}

#[test]
fn a_grub_cfg_the_size_of_a_disk_is_refused_by_name() {
    let t = guest();
    let f = fs::OpenOptions::new()
        .append(true)
        .open(t.path().join("boot/grub/grub.cfg"))
        .unwrap();
    f.set_len(8 << 30).unwrap();
    let e = err_of(t.path());
    assert!(
        e.contains("/boot/grub/grub.cfg") && e.contains("larger than"),
        "{e}"
    );
}

#[test]
fn binary_garbage_is_refused_by_name() {
    let t = guest();
    let mut junk: Vec<u8> = b"/dev/xvda1 / ext4 defaults 0 1\n".to_vec();
    junk.extend((0u32..4096).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    fs::write(t.path().join("etc/fstab"), junk).unwrap();
    let e = err_of(t.path());
    assert!(e.contains("/etc/fstab") && e.contains("UTF-8"), "{e}");
}

#[test]
fn crlf_line_ends_are_edited_and_kept() {
    let t = guest();
    let p = t.path().join("etc/fstab");
    let crlf = fs::read_to_string(&p).unwrap().replace('\n', "\r\n");
    fs::write(&p, crlf).unwrap();
    convert(t.path()).unwrap();
    let after = fs::read_to_string(&p).unwrap();
    assert!(!after.contains("xvd"), "{after}");
    assert!(after.contains("/dev/vda1"), "{after}");
    assert_eq!(
        after.matches("\r\n").count(),
        after.matches('\n').count(),
        "line ends changed: {after:?}"
    );
}

#[test]
fn duplicated_and_conflicting_grub_keys_are_all_edited() {
    let t = guest();
    let p = t.path().join("etc/default/grub");
    let mut text = fs::read_to_string(&p).unwrap();
    text.push_str("GRUB_CMDLINE_LINUX=\"console=hvc0 root=/dev/xvda1\"\n");
    text.push_str("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet console=hvc0\"\n");
    text.push_str("GRUB_DEFAULT=0\nGRUB_DEFAULT=saved\n");
    fs::write(&p, text).unwrap();
    convert(t.path()).unwrap();
    let after = fs::read_to_string(&p).unwrap();
    assert!(
        !after.contains("hvc0") && !after.contains("xvda"),
        "a duplicate key kept a Xen setting: {after}"
    );
    // And a second conversion has nothing to do.
    let again = common::plan_of(&DirFs::new(t.path()), true, &[]);
    assert!(again.files.is_empty(), "{:#?}", again.files);
}

#[test]
fn a_guest_without_etc_is_refused() {
    let t = guest();
    fs::remove_dir_all(t.path().join("etc")).unwrap();
    // (In the appliance, inspection finds no operating system at all.)
    let e = err_of(t.path());
    assert!(
        e.starts_with("writing /etc/") && e.contains("No such file"),
        "{e}"
    );
    assert_eq!(e.matches("writing").count(), 1, "said twice: {e}");
}

#[test]
fn a_directory_or_a_link_loop_where_a_file_should_be_is_refused_by_name() {
    let t = guest();
    let p = t.path().join("etc/fstab");
    fs::remove_file(&p).unwrap();
    fs::create_dir(&p).unwrap();
    let e = err_of(t.path());
    assert!(e.contains("/etc/fstab"), "{e}");

    let t = guest();
    let p = t.path().join("etc/fstab");
    fs::remove_file(&p).unwrap();
    symlink("/etc/fstab", &p).unwrap();
    let e = err_of(t.path());
    assert!(
        e.contains("/etc/fstab") && e.contains("symbolic links"),
        "{e}"
    );
}

#[test]
fn an_initrd_bomb_is_not_unpacked() {
    use std::io::Write;
    let t = guest();
    // 1.1 GiB of zeros, gzip-compressed to about a MiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1100 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let fs_ = DirFs::new(t.path());
    let f = facts::read(&fs_).unwrap();
    let k = &f.kernels[0];
    let initrd = k.initrd.as_ref().unwrap();
    fs::write(
        t.path().join(initrd.as_str().trim_start_matches('/')),
        &bomb,
    )
    .unwrap();
    let f = facts::read(&fs_).unwrap();
    let err = f.kernels[0].initrd_error.clone().unwrap_or_default();
    assert!(err.contains("decompresses to more than"), "{err:?}");
}
