//! Shared by the editor's whole-guest tests: the cases of `test_data/`
//! (each `before/` tree copied into a temporary directory) and [`Fake`], a
//! `Runner` that plays the guest's tools on the tree the way the real ones
//! would, as far as xen2kvm looks: initrd tools write an initrd holding the
//! kernel's modules, grub-mkconfig writes a menu from `/etc/default/grub`
//! and the kernels in `/boot`, grub-set-default writes the grubenv.

#![allow(clippy::disallowed_methods, dead_code)]

use std::cell::RefCell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use xen2kvm_editor::{default_kernel, Ctx, Plan, Runner};
use xen2kvm_inspector::facts::{self, Facts};
use xen2kvm_vfs::DirFs;

/// The folder of the case `name`.
pub(crate) fn case_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(name)
}

/// Every case name, sorted.
pub(crate) fn cases() -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().join("before").is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
    names.sort();
    names
}

/// A temporary copy of the case's `before/` tree.
pub(crate) fn tree(name: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    xen2kvm_golden::copy_tree(&case_dir(name).join("before"), t.path()).unwrap();
    t
}

/// The facts of a tree; a DirFs knows no boot code, so the case says it:
/// boot code present unless the case has a `no-boot-code` file.
pub(crate) fn facts_of(fs: &DirFs, boot_code: bool) -> Facts {
    let mut f = facts::read(fs).unwrap();
    f.bootloader.boot_code = Some(boot_code);
    f
}

/// Plans the conversion of `fs`, skipping `skip`.
pub(crate) fn plan_of(fs: &DirFs, boot_code: bool, skip: &[String]) -> Plan {
    let f = facts_of(fs, boot_code);
    let ctx = Ctx {
        facts: &f,
        boot_disk: Some("/dev/sdX".to_owned()),
        skip,
        macs: &[],
        disks: &xen2kvm_inspector::xen::DiskMap::BY_LETTER,
    };
    xen2kvm_editor::plan(fs, &ctx).unwrap()
}

/// Plays the guest's tools on the tree at `root`; fails the programs named
/// in `fail`; initrds lack virtio when `bad_initrd`.
pub(crate) struct Fake<'a> {
    pub(crate) root: &'a Path,
    pub(crate) calls: RefCell<Vec<String>>,
    pub(crate) fail: &'a [&'a str],
    pub(crate) bad_initrd: bool,
}

pub(crate) fn fake<'a>(root: &'a Path, fail: &'a [&'a str]) -> Fake<'a> {
    Fake {
        root,
        calls: RefCell::new(Vec::new()),
        fail,
        bad_initrd: false,
    }
}

pub(crate) fn put(root: &Path, path: &str, content: &[u8]) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

pub(crate) fn read(root: &Path, p: &str) -> String {
    fs::read_to_string(root.join(p.trim_start_matches('/'))).unwrap()
}

impl Fake<'_> {
    /// Every module file of kernel `kver` in the tree (relative paths, as
    /// an initrd lists them), without virtio ones when `bad_initrd`.
    fn modules(&self, kver: &str) -> Vec<String> {
        let mut out = Vec::new();
        for base in ["lib/modules", "usr/lib/modules"] {
            let dir = self.root.join(base).join(kver);
            for e in walk(&dir) {
                let rel = e
                    .strip_prefix(self.root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if rel.contains(".ko") && !(self.bad_initrd && rel.contains("virtio")) {
                    out.push(rel);
                }
            }
        }
        out.sort();
        out.push("init".to_owned());
        out
    }

    fn write_initrd(&self, path: &str, kver: &str) {
        put(
            self.root,
            path,
            &xen2kvm_inspector::initrd::newc(&self.modules(kver)),
        );
    }

    /// A GRUB 2 menu as grub-mkconfig writes it: one entry per kernel,
    /// newest first, with the command line of /etc/default/grub.
    fn mkconfig(&self, out: &str) {
        let dg = fs::read_to_string(self.root.join("etc/default/grub")).unwrap_or_default();
        let var = |k: &str| {
            dg.lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches('"').trim_matches('\'').to_owned())
                .unwrap_or_default()
        };
        let mut kernels: Vec<String> = fs::read_dir(self.root.join("boot"))
            .unwrap()
            .flatten()
            .filter(|e| !e.file_type().unwrap().is_symlink())
            .filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_prefix("vmlinuz-")
                    .map(str::to_owned)
            })
            .collect();
        kernels.sort();
        kernels.reverse();
        let default = var("GRUB_DEFAULT");
        let mut cfg = if default == "saved" {
            "load_env\nset default=\"${saved_entry}\"\n".to_owned()
        } else {
            format!(
                "set default=\"{}\"\n",
                if default.is_empty() { "0" } else { &default }
            )
        };
        for k in kernels {
            let initrd = ["initrd.img-", "initrd-", "initramfs-"]
                .iter()
                .map(|p| {
                    if *p == "initramfs-" {
                        format!("{p}{k}.img")
                    } else {
                        format!("{p}{k}")
                    }
                })
                .find(|n| self.root.join("boot").join(n).is_file());
            let args = format!(
                "{} {}",
                var("GRUB_CMDLINE_LINUX"),
                var("GRUB_CMDLINE_LINUX_DEFAULT")
            );
            cfg.push_str(&format!(
                "menuentry 'Linux {k}' $menuentry_id_option 'gnulinux-{k}-advanced-ROOT' {{\n\tlinux\t/boot/vmlinuz-{k} root=UUID=ROOT ro {}\n",
                args.trim()
            ));
            if let Some(i) = initrd {
                cfg.push_str(&format!("\tinitrd\t/boot/{i}\n"));
            }
            cfg.push_str("}\n");
        }
        put(self.root, out, cfg.as_bytes());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

impl Runner for Fake<'_> {
    fn run(&self, argv: &[String]) -> io::Result<String> {
        self.calls.borrow_mut().push(argv.join(" "));
        let prog = argv[0].rsplit('/').next().unwrap();
        if self.fail.contains(&prog) {
            return Err(io::Error::other(format!("{prog}: exit status 1")));
        }
        let after = |flag: &str| {
            argv.iter()
                .position(|a| a == flag)
                .and_then(|i| argv.get(i + 1))
                .cloned()
                .unwrap_or_default()
        };
        match prog {
            // dracut [options] IMAGE KVER; nash mkinitrd -f [--with=…] IMAGE KVER
            "dracut" => self.write_initrd(&argv[argv.len() - 2], &argv[argv.len() - 1]),
            "mkinitrd" if argv.iter().any(|a| a == "-k") => {
                let k = after("-k");
                let i = after("-i");
                self.write_initrd(&format!("/boot/{i}"), k.trim_start_matches("vmlinuz-"));
            }
            "mkinitrd" => self.write_initrd(&argv[argv.len() - 2], &argv[argv.len() - 1]),
            "update-initramfs" => {
                let k = after("-k");
                self.write_initrd(&format!("/boot/initrd.img-{k}"), &k);
            }
            "grub-mkconfig" | "grub2-mkconfig" => self.mkconfig(&after("-o")),
            "grub-set-default" | "grub2-set-default" => {
                let dir = if self.root.join("boot/grub2").is_dir() {
                    "boot/grub2"
                } else {
                    "boot/grub"
                };
                let path = format!("{dir}/grubenv");
                let mut block = fs::read_to_string(self.root.join(&path)).unwrap_or_default();
                if block.len() != 1024 {
                    block = "# GRUB Environment Block\n".to_owned();
                    block.push_str(&"#".repeat(1024 - block.len()));
                }
                let new = default_kernel::grubenv_set(&block, "saved_entry", &argv[1]).unwrap();
                put(self.root, &path, new.as_bytes());
            }
            _ => {}
        }
        Ok(String::new())
    }
}
