//! Whole-guest tests of plan and apply on a directory tree (`DirFs`), with
//! a scripted `Runner` standing in for the guest's dracut and grub-mkconfig:
//! what is planned, what is written, idempotence, `--skip`, and what a
//! failure part-way leaves behind.

#![allow(clippy::disallowed_methods)]

use std::cell::RefCell;
use std::fs;
use std::io;
use std::path::Path;

use xen2kvm_editor::{apply, plan, Ctx, Runner, Step};
use xen2kvm_inspector::facts;
use xen2kvm_vfs::DirFs;

const KVER: &str = "6.1.0-50-amd64";

fn cpio(files: &[String]) -> Vec<u8> {
    xen2kvm_inspector::initrd::newc(files)
}

fn put(root: &Path, path: &str, content: &[u8]) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn module(m: &str) -> String {
    let dir = match m {
        "virtio_blk" | "xen-blkfront" => "block",
        "virtio_net" | "xen-netfront" => "net",
        _ => "virtio",
    };
    format!("usr/lib/modules/{KVER}/kernel/drivers/{dir}/{m}.ko")
}

/// A Debian 12 Xen PV guest like the `debian12-xenpv` image.
fn debian_xenpv() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    put(
        r,
        "/etc/os-release",
        b"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    );
    put(r, "/etc/debian_version", b"12.8\n");
    put(r, "/etc/fstab", b"# <file system> <mount point> <type> <options> <dump> <pass>\n/dev/xvda1 / ext4 errors=remount-ro 0 1\n");
    put(r, "/etc/default/grub", b"GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX_DEFAULT=\"root=/dev/xvda1 console=hvc0\"\nGRUB_CMDLINE_LINUX=\"\"\n");
    put(r, "/boot/grub/device.map", b"(hd0)\t/dev/xvda\n");
    put(r, "/etc/securetty", b"console\ntty1\nhvc0\nxvc0\n");
    put(r, "/boot/grub/grub.cfg", format!("set default=\"0\"\nmenuentry 'Debian GNU/Linux' {{\n\tlinux\t/boot/vmlinuz-{KVER} root=UUID=5e1f ro root=/dev/xvda1 console=hvc0\n\tinitrd\t/boot/initrd.img-{KVER}\n}}\n").as_bytes());
    put(r, &format!("/boot/vmlinuz-{KVER}"), b"kernel");
    put(
        r,
        &format!("/boot/config-{KVER}"),
        b"CONFIG_XEN=y\nCONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=m\n",
    );
    for m in ["virtio_blk", "virtio_pci", "virtio_net", "xen-blkfront"] {
        put(
            r,
            &format!("/{}", module(m).trim_start_matches("usr/")),
            b"",
        );
    }
    put(
        r,
        &format!("/boot/initrd.img-{KVER}"),
        &cpio(&[module("xen-blkfront"), "init".into()]),
    );
    put(r, "/usr/bin/dracut", b"#!/bin/sh\n");
    put(r, "/usr/sbin/grub-mkconfig", b"#!/bin/sh\n");
    fs::create_dir_all(r.join("etc/dracut.conf.d")).unwrap();
    fs::create_dir_all(r.join("etc/systemd/system/getty.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "/lib/systemd/system/getty@.service",
        r.join("etc/systemd/system/getty.target.wants/getty@hvc0.service"),
    )
    .unwrap();
    t
}

/// Plays dracut and grub-mkconfig on the tree; fails the commands whose
/// program is in `fail`; writes an initrd without virtio when `bad_initrd`.
struct Fake<'a> {
    root: &'a Path,
    calls: RefCell<Vec<String>>,
    fail: &'a [&'a str],
    bad_initrd: bool,
}

impl Runner for Fake<'_> {
    fn run(&self, argv: &[String]) -> io::Result<String> {
        self.calls.borrow_mut().push(argv.join(" "));
        let prog = argv[0].rsplit('/').next().unwrap();
        if self.fail.contains(&prog) {
            return Err(io::Error::other(format!("{prog}: exit status 1")));
        }
        match prog {
            "dracut" => {
                let out = &argv[argv.len() - 2];
                let mut files = vec![module("xen-blkfront"), "init".to_owned()];
                if !self.bad_initrd {
                    files.extend(["virtio_blk", "virtio_pci", "virtio_net"].map(module));
                }
                put(self.root, out, &cpio(&files));
            }
            "grub-mkconfig" => {
                let dg = fs::read_to_string(self.root.join("etc/default/grub")).unwrap();
                let arg = |k: &str| {
                    dg.lines()
                        .find_map(|l| l.strip_prefix(&format!("{k}=\"")))
                        .map(|v| v.trim_end_matches('"').to_owned())
                        .unwrap_or_default()
                };
                let cfg = format!(
                    "set default=\"0\"\nmenuentry 'Debian GNU/Linux' {{\n\tlinux\t/boot/vmlinuz-{KVER} root=UUID=5e1f ro {} {}\n\tinitrd\t/boot/initrd.img-{KVER}\n}}\n",
                    arg("GRUB_CMDLINE_LINUX"),
                    arg("GRUB_CMDLINE_LINUX_DEFAULT")
                );
                put(self.root, &argv[2], cfg.as_bytes());
            }
            _ => {}
        }
        Ok(String::new())
    }
}

fn fake<'a>(root: &'a Path, fail: &'a [&'a str]) -> Fake<'a> {
    Fake {
        root,
        calls: RefCell::new(Vec::new()),
        fail,
        bad_initrd: false,
    }
}

fn plan_of(fs: &DirFs, skip: &[String]) -> xen2kvm_editor::Plan {
    let mut f = facts::read(fs).unwrap();
    f.bootloader.boot_code = Some(true);
    let ctx = Ctx {
        facts: &f,
        boot_disk: Some("/dev/sda".to_owned()),
        skip,
    };
    plan(fs, &ctx).unwrap()
}

fn read(root: &Path, p: &str) -> String {
    fs::read_to_string(root.join(p.trim_start_matches('/'))).unwrap()
}

#[test]
fn converts_then_changes_nothing() {
    let t = debian_xenpv();
    let fs_ = DirFs::new(t.path());
    let p = plan_of(&fs_, &[]);
    let rules: Vec<&str> = p.changes.iter().map(|c| c.rule).collect();
    assert_eq!(
        rules,
        [
            "initrd-drivers",
            "block-devices",
            "block-devices",
            "kernel-cmdline",
            "kernel-cmdline",
            "kernel-cmdline",
            "kernel-cmdline",
            "consoles",
            "consoles",
            "consoles"
        ],
        "{:#?}",
        p.changes
    );
    assert!(
        matches!(
            &p.steps[..],
            [Step::RebuildInitrd { .. }, Step::GrubMkconfig { .. }]
        ),
        "{:#?}",
        p.steps
    );
    // What the dry run shows is what apply writes.
    let runner = fake(t.path(), &[]);
    let applied = apply(&fs_, &runner, &p).unwrap();
    for f in &p.files {
        assert_eq!(read(t.path(), f.path.as_str()), f.after, "{}", f.path);
    }
    assert!(!t
        .path()
        .join("etc/systemd/system/getty.target.wants/getty@hvc0.service")
        .exists());
    assert_eq!(
        read(t.path(), "/etc/fstab").lines().nth(1),
        Some("/dev/vda1 / ext4 errors=remount-ro 0 1")
    );
    assert!(t
        .path()
        .join(format!("boot/initrd.img-{KVER}.xen2kvm-orig"))
        .is_file());
    assert_eq!(
        runner.calls.borrow().as_slice(),
        [
            format!("/usr/bin/dracut --force --no-hostonly-cmdline --add-drivers virtio_blk virtio_pci virtio_net virtio_balloon /boot/initrd.img-{KVER} {KVER}"),
            "/usr/sbin/grub-mkconfig -o /boot/grub/grub.cfg".to_owned(),
        ]
    );
    assert!(applied.changes.iter().any(|c| c.rule == "rebuild-initrd"));
    // A second conversion of the result changes nothing and runs nothing.
    let again = plan_of(&fs_, &[]);
    assert!(again.is_empty(), "second plan: {:#?}", again);
}

#[test]
fn skip_leaves_a_rule_out() {
    let t = debian_xenpv();
    let fs_ = DirFs::new(t.path());
    let p = plan_of(&fs_, &["consoles".to_owned(), "rebuild-initrd".to_owned()]);
    assert!(p.changes.iter().all(|c| c.rule != "consoles"));
    assert!(p.remove_links.is_empty());
    assert!(p
        .steps
        .iter()
        .all(|s| !matches!(s, Step::RebuildInitrd { .. })));
    let f = facts::read(&fs_).unwrap();
    let skip = ["no-such-rule".to_owned()];
    let err = plan(
        &fs_,
        &Ctx {
            facts: &f,
            boot_disk: None,
            skip: &skip,
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
    let t = debian_xenpv();
    let fs_ = DirFs::new(t.path());
    let p = plan_of(&fs_, &[]);
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
fn an_initrd_without_virtio_is_an_error() {
    let t = debian_xenpv();
    let fs_ = DirFs::new(t.path());
    let p = plan_of(&fs_, &[]);
    let mut runner = fake(t.path(), &[]);
    runner.bad_initrd = true;
    let err = apply(&fs_, &runner, &p).unwrap_err();
    let msg = err.error.to_string();
    assert!(msg.contains("lacks virtio_blk, virtio_pci"), "{msg}");
    assert!(msg.contains(".xen2kvm-orig"), "{msg}");
    // The original initrd is kept.
    let orig = fs::read(
        t.path()
            .join(format!("boot/initrd.img-{KVER}.xen2kvm-orig")),
    )
    .unwrap();
    assert_eq!(orig, cpio(&[module("xen-blkfront"), "init".into()]));
}

#[test]
fn mkconfig_output_naming_xen_devices_is_an_error() {
    let t = debian_xenpv();
    let fs_ = DirFs::new(t.path());
    // Skipping the command line rule leaves root=/dev/xvda1 for mkconfig.
    let p = plan_of(&fs_, &["kernel-cmdline".to_owned()]);
    let runner = fake(t.path(), &[]);
    let err = apply(&fs_, &runner, &p).unwrap_err();
    assert!(
        err.error.to_string().contains("still names a Xen device"),
        "{}",
        err.error
    );
}

/// A SLES 12 GA-style guest: GRUB 2 with `GRUB_DEFAULT=saved`, the saved
/// entry boots the Xen-only kernel-xen; kernel-default is installed too.
#[test]
fn grub2_default_moves_off_the_xen_kernel_through_grubenv() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let xen = "3.12.49-11-xen";
    let def = "3.12.49-11-default";
    put(r, "/etc/os-release", b"NAME=\"SLES\"\nVERSION_ID=\"12\"\nID=\"sles\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 12\"\n");
    put(r, "/etc/default/grub", b"GRUB_DEFAULT=saved\nGRUB_CMDLINE_LINUX_DEFAULT=\"console=ttyS0,115200\"\nGRUB_CMDLINE_LINUX=\"\"\nGRUB_TERMINAL=\"console serial\"\nGRUB_SERIAL_COMMAND=\"serial\"\n");
    let menu = |v: &str| {
        format!("menuentry 'SLES 12, with Linux {v}' $menuentry_id_option 'gnulinux-{v}-advanced-5a3d' {{\n\tlinux\t/boot/vmlinuz-{v} root=UUID=5a3d console=ttyS0,115200\n\tinitrd\t/boot/initrd-{v}\n}}\n")
    };
    let cfg = format!("load_env\nset default=\"${{saved_entry}}\"\nsubmenu 'Advanced options for SLES 12' $menuentry_id_option 'gnulinux-advanced-5a3d' {{\n{}{}}}\n", menu(xen), menu(def));
    put(r, "/boot/grub2/grub.cfg", cfg.as_bytes());
    let mut env = "# GRUB Environment Block\nsaved_entry=gnulinux-advanced-5a3d>gnulinux-3.12.49-11-xen-advanced-5a3d\n".to_owned();
    env.push_str(&"#".repeat(1024 - env.len()));
    put(r, "/boot/grub2/grubenv", env.as_bytes());
    put(r, &format!("/boot/vmlinuz-{xen}"), b"k");
    put(
        r,
        &format!("/boot/config-{xen}"),
        b"CONFIG_X86_64_XEN=y\nCONFIG_XEN=y\n",
    );
    put(
        r,
        &format!("/lib/modules/{xen}/kernel/drivers/xen/blkfront/xenblk.ko"),
        b"",
    );
    put(r, &format!("/boot/vmlinuz-{def}"), b"k");
    put(
        r,
        &format!("/boot/config-{def}"),
        b"CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=m\n",
    );
    put(
        r,
        &format!("/lib/modules/{def}/kernel/drivers/block/virtio_blk.ko"),
        b"",
    );
    put(
        r,
        &format!("/lib/modules/{def}/kernel/drivers/virtio/virtio_pci.ko"),
        b"",
    );
    let virtio_initrd = cpio(&[
        format!("lib/modules/{def}/kernel/drivers/block/virtio_blk.ko"),
        format!("lib/modules/{def}/kernel/drivers/virtio/virtio_pci.ko"),
    ]);
    put(r, &format!("/boot/initrd-{def}"), &virtio_initrd);
    put(r, "/usr/sbin/grub2-mkconfig", b"#!/bin/sh\n");
    let fs_ = DirFs::new(r);
    let p = plan_of(&fs_, &[]);
    assert_eq!(p.kernel.as_deref(), Some(def));
    assert!(
        matches!(&p.steps[..], [Step::Grub2Default { image, set_default: None, .. }] if image == "vmlinuz-3.12.49-11-default"),
        "{:#?}",
        p.steps
    );
    let runner = fake(r, &[]);
    let applied = apply(&fs_, &runner, &p).unwrap();
    let env = read(r, "/boot/grub2/grubenv");
    assert_eq!(env.len(), 1024);
    assert!(
        env.contains(
            "saved_entry=gnulinux-advanced-5a3d>gnulinux-3.12.49-11-default-advanced-5a3d\n"
        ),
        "{env}"
    );
    assert!(
        runner.calls.borrow().is_empty(),
        "{:?}",
        runner.calls.borrow()
    );
    assert_eq!(applied.changes.len(), 1, "{:?}", applied.changes);
    // Now the default boots kernel-default: nothing more to do.
    assert!(plan_of(&fs_, &[]).is_empty());
}
