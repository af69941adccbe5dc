//! [`RULES`]: the one table of what `convert` does, in order. File rules
//! come first; the steps (commands in the guest) after them, because they
//! read what the file rules wrote.

use std::io;

use xen2kvm_vfs::{GuestFs, GuestPath};

use crate::initrd_conf::{self, DRACUT_CONF};
use crate::plan::{initrd_drivers, Ctx, Planner, Step};
use crate::{cmdline, consoles, default_kernel, devices};

/// One conversion rule.
pub struct Rule {
    /// Its name, for `--skip` and in reports.
    pub name: &'static str,
    /// What it does, one line (`--list`).
    pub summary: &'static str,
    pub(crate) plan: fn(&Ctx<'_>, &mut Planner<'_>) -> io::Result<()>,
}

/// Every rule, in the order they run.
pub static RULES: &[Rule] = &[
    Rule {
        name: "initrd-drivers",
        summary: "Xen drivers out of, virtio drivers into the initrd configuration (sysconfig/kernel, dracut.conf.d, initramfs-tools, modprobe aliases)",
        plan: initrd_drivers_rule,
    },
    Rule {
        name: "block-devices",
        summary: "/dev/xvdX[N] and by-path xen-vbd names -> /dev/vdX[N] in fstab, crypttab, device.map, lvm.conf, mdadm.conf",
        plan: block_devices,
    },
    Rule {
        name: "kernel-cmdline",
        summary: "root=/resume= remapped, Xen consoles removed, console=ttyS0 added, in /etc/default/grub, GRUB legacy menus, sysconfig/bootloader",
        plan: kernel_cmdline,
    },
    Rule {
        name: "consoles",
        summary: "xvc0/hvc0 -> ttyS0 in securetty and inittab; getty links for Xen consoles removed",
        plan: consoles_rule,
    },
    Rule {
        name: "rebuild-initrd",
        summary: "rebuild the chosen kernel's initrd with the guest's tool and check it holds virtio_blk and virtio_pci",
        plan: rebuild_initrd,
    },
    Rule {
        name: "grub-install",
        summary: "install GRUB's BIOS boot code when the disk has none (a pygrub-only guest)",
        plan: grub_install,
    },
    Rule {
        name: "grub-config",
        summary: "regenerate grub.cfg with the guest's grub-mkconfig and check it names no Xen device",
        plan: grub_config,
    },
    Rule {
        name: "default-kernel",
        summary: "make the chosen kernel (not Xen-only, with virtio, newest) the default boot entry",
        plan: default_kernel_rule,
    },
];

fn p(s: &str) -> GuestPath {
    GuestPath::new(s).unwrap_or_else(|_| GuestPath::root())
}

/// The first of `candidates` that exists in the guest.
fn find_tool(fs: &dyn GuestFs, candidates: &[&str]) -> io::Result<Option<String>> {
    for c in candidates {
        if fs.exists(&p(c))? {
            return Ok(Some((*c).to_owned()));
        }
    }
    Ok(None)
}

/// `*.conf` files of a directory (sorted), skipping `except`.
fn conf_files(fs: &dyn GuestFs, dir: &str, except: &str) -> io::Result<Vec<GuestPath>> {
    let mut out = Vec::new();
    for name in fs.list(&p(dir))?.unwrap_or_default() {
        let path = p(&format!("{dir}/{name}"));
        if name.ends_with(".conf") && path.as_str() != except {
            out.push(path);
        }
    }
    Ok(out)
}

fn is_suse(ctx: &Ctx<'_>) -> bool {
    let d = ctx.facts.os.distro.as_str();
    d.starts_with("sles") || d.starts_with("opensuse") || d == "suse"
}

fn initrd_drivers_rule(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    const R: &str = "initrd-drivers";
    p_.edit(
        R,
        &p("/etc/sysconfig/kernel"),
        initrd_conf::sysconfig_kernel,
    )?;
    match ctx.facts.initrd_tool {
        "dracut" => dracut_drivers(p_)?,
        "update-initramfs" => {
            let path = p("/etc/initramfs-tools/modules");
            if p_.fs.exists(&path)? {
                p_.edit(R, &path, initrd_conf::initramfs_modules)?;
            } else {
                let e = initrd_conf::initramfs_modules("");
                p_.create(R, &path, e.text, &e.changes.join(", "))?;
            }
        }
        _ => {}
    }
    p_.edit(R, &p("/etc/modprobe.conf"), initrd_conf::modprobe_aliases)?;
    for f in conf_files(p_.fs, "/etc/modprobe.d", "")? {
        p_.edit(R, &f, initrd_conf::modprobe_aliases)?;
    }
    Ok(())
}

/// dracut: Xen drivers out of its config files, ours added (in
/// `dracut.conf.d`, else at the end of `dracut.conf`).
fn dracut_drivers(p_: &mut Planner<'_>) -> io::Result<()> {
    const R: &str = "initrd-drivers";
    p_.edit(R, &p("/etc/dracut.conf"), initrd_conf::dracut_file)?;
    for f in conf_files(p_.fs, "/etc/dracut.conf.d", DRACUT_CONF)? {
        p_.edit(R, &f, initrd_conf::dracut_file)?;
    }
    let what = "added virtio drivers to dracut's add_drivers";
    if p_.fs.exists(&p("/etc/dracut.conf.d"))? {
        return p_.create(R, &p(DRACUT_CONF), initrd_conf::dracut_conf(), what);
    }
    // No conf.d directory (GuestFs makes no directories): the same lines at
    // the end of /etc/dracut.conf.
    let conf = p("/etc/dracut.conf");
    let current = match p_.plan.files.iter().find(|f| f.path == conf) {
        Some(f) => Some(f.after.clone()),
        None => p_.fs.read_text(&conf)?,
    };
    let Some(text) = current else {
        return p_.create(R, &conf, initrd_conf::dracut_conf(), what);
    };
    if text.contains(initrd_conf::dracut_conf().trim_end()) {
        return Ok(());
    }
    p_.edit(R, &conf, |t| {
        let mut new = t.to_owned();
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str(&initrd_conf::dracut_conf());
        crate::Edit {
            text: new,
            changes: vec![what.to_owned()],
            warnings: Vec::new(),
        }
    })
}

fn block_devices(_ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    const R: &str = "block-devices";
    for f in [
        "/etc/fstab",
        "/etc/crypttab",
        "/boot/grub/device.map",
        "/boot/grub2/device.map",
        "/boot/grub2-efi/device.map",
        "/etc/default/grub_installdevice",
        "/etc/mdadm.conf",
        "/etc/mdadm/mdadm.conf",
    ] {
        p_.edit(R, &p(f), devices::remap_file)?;
    }
    p_.edit(R, &p("/etc/lvm/lvm.conf"), devices::remap_lvm_conf)?;
    Ok(())
}

/// The GRUB legacy menus to edit: each existing file that is not a symlink
/// (RHEL's `menu.lst -> grub.conf` is edited once, through its target).
fn legacy_menus(fs: &dyn GuestFs) -> io::Result<Vec<GuestPath>> {
    let mut out = Vec::new();
    for f in [
        "/boot/grub/menu.lst",
        "/boot/grub/grub.conf",
        "/grub/menu.lst",
        "/grub/grub.conf",
    ] {
        let path = p(f);
        if fs.read_link(&path)?.is_none() && fs.exists(&path)? {
            out.push(path);
        }
    }
    Ok(out)
}

fn kernel_cmdline(_ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    const R: &str = "kernel-cmdline";
    p_.edit(R, &p("/etc/default/grub"), cmdline::default_grub)?;
    for m in legacy_menus(p_.fs)? {
        p_.edit(R, &m, cmdline::legacy_menu)?;
    }
    p_.edit(
        R,
        &p("/etc/sysconfig/bootloader"),
        cmdline::sysconfig_bootloader,
    )?;
    Ok(())
}

fn consoles_rule(_ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    const R: &str = "consoles";
    p_.edit(R, &p("/etc/securetty"), consoles::securetty)?;
    p_.edit(R, &p("/etc/inittab"), consoles::inittab)?;
    let dir = "/etc/systemd/system/getty.target.wants";
    for name in p_.fs.list(&p(dir))?.unwrap_or_default() {
        if !consoles::is_xen_getty(&name) {
            continue;
        }
        let link = p(&format!("{dir}/{name}"));
        match p_.fs.read_link(&link)? {
            Some(target) => {
                p_.plan.changes.push(crate::Change {
                    rule: R,
                    target: link.to_string(),
                    what: format!("removed (a getty on a Xen console; -> {target})"),
                });
                p_.plan.remove_links.push((link, target));
            }
            None => p_.warn(
                R,
                link.as_str(),
                "a getty unit for a Xen console that is not a symlink; left as it is".to_owned(),
            ),
        }
    }
    Ok(())
}

/// The initrd file a tool writes for `version` when the kernel has none yet.
fn default_initrd(ctx: &Ctx<'_>, version: &str) -> GuestPath {
    let name = match (ctx.facts.initrd_tool, ctx.facts.os.distro.as_str()) {
        ("update-initramfs", _) | (_, "debian" | "ubuntu") => format!("/boot/initrd.img-{version}"),
        _ if is_suse(ctx) => format!("/boot/initrd-{version}"),
        _ => format!("/boot/initramfs-{version}.img"),
    };
    p(&name)
}

fn rebuild_initrd(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    const R: &str = "rebuild-initrd";
    let Some(k) = ctx.kernel() else {
        return Ok(());
    };
    let config_changed = p_.changed_by(&["initrd-drivers", "block-devices"]);
    if k.initrd_virtio_blk == Some(true) && !config_changed {
        return Ok(());
    }
    let initrd = k
        .initrd
        .clone()
        .unwrap_or_else(|| default_initrd(ctx, &k.version));
    let (add, require) = initrd_drivers(k);
    let fs = p_.fs;
    let argv: Vec<String> = match ctx.facts.initrd_tool {
        "suse-mkinitrd" => {
            let tool = find_tool(fs, &["/sbin/mkinitrd", "/usr/sbin/mkinitrd"])?
                .unwrap_or_else(|| "/sbin/mkinitrd".into());
            vec![
                tool,
                "-k".into(),
                k.image.file_name().unwrap_or_default().to_owned(),
                "-i".into(),
                initrd.file_name().unwrap_or_default().to_owned(),
                "-m".into(),
                add.join(" "),
                "-B".into(),
            ]
        }
        "dracut" => {
            let tool = find_tool(fs, &["/usr/bin/dracut", "/sbin/dracut", "/usr/sbin/dracut"])?
                .unwrap_or_else(|| "dracut".into());
            let mut argv = vec![tool, "--force".to_owned()];
            // dracut 004 (RHEL 6) has no host-only command line to turn off.
            let old_rhel = ctx.facts.os.distro == "rhel" || ctx.facts.os.distro == "centos";
            let major: u32 = ctx
                .facts
                .os
                .version
                .split('.')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if !(old_rhel && major <= 6) {
                // Built the way the guest built it: host-only when its
                // initrd was (seen inside it), which in the appliance keeps
                // the appliance's disk and root filesystem drivers; the
                // virtio drivers are asked for explicitly either way, and
                // the appliance's root device is never written into it.
                if k.initrd_hostonly == Some(true) {
                    argv.push("--hostonly".to_owned());
                }
                argv.push("--no-hostonly-cmdline".to_owned());
            }
            argv.push("--add-drivers".to_owned());
            argv.push(add.join(" "));
            argv.push(initrd.to_string());
            argv.push(k.version.clone());
            argv
        }
        "update-initramfs" => {
            let tool = find_tool(
                fs,
                &["/usr/sbin/update-initramfs", "/sbin/update-initramfs"],
            )?
            .unwrap_or_else(|| "update-initramfs".into());
            let mode = if fs.exists(&initrd)? { "-u" } else { "-c" };
            vec![tool, mode.into(), "-k".into(), k.version.clone()]
        }
        "mkinitrd" => {
            let mut argv = vec!["/sbin/mkinitrd".to_owned(), "-f".to_owned()];
            argv.extend(add.iter().map(|d| format!("--with={d}")));
            argv.push(initrd.to_string());
            argv.push(k.version.clone());
            argv
        }
        other => {
            p_.warn(R, &k.version, format!("no known initrd tool in the guest ({other}); the initrd of {} is not rebuilt and may lack virtio drivers", k.version));
            return Ok(());
        }
    };
    p_.plan.steps.push(Step::RebuildInitrd {
        kernel: k.version.clone(),
        initrd,
        argv,
        require,
    });
    Ok(())
}

fn grub_install(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    const R: &str = "grub-install";
    let bl = &ctx.facts.bootloader;
    if bl.boot_code != Some(false) || bl.kind == "none" || bl.kind == "grub2-efi" {
        return Ok(());
    }
    let Some(disk) = ctx.boot_disk.clone() else {
        p_.warn(
            R,
            "boot code",
            "the disk has no boot code and its device is unknown; GRUB not installed".to_owned(),
        );
        return Ok(());
    };
    let fs = p_.fs;
    let argv = if bl.kind == "grub2" {
        let Some(tool) = find_tool(
            fs,
            &[
                "/usr/sbin/grub2-install",
                "/usr/sbin/grub-install",
                "/sbin/grub2-install",
                "/sbin/grub-install",
            ],
        )?
        else {
            p_.warn(R, &disk, "the disk has no boot code and the guest has no grub-install; install grub2 (SUSE, RHEL) or grub-pc (Debian) in the guest".to_owned());
            return Ok(());
        };
        let modules = find_tool(
            fs,
            &[
                "/usr/lib/grub/i386-pc",
                "/usr/share/grub2/i386-pc",
                "/usr/lib/grub2/i386-pc",
            ],
        )?;
        if modules.is_none() {
            p_.warn(R, &disk, "the disk has no boot code and the guest has no GRUB BIOS modules (i386-pc); install grub2-i386-pc (SUSE), grub2-pc-modules (RHEL) or grub-pc-bin (Debian)".to_owned());
            return Ok(());
        }
        vec![tool, "--target=i386-pc".to_owned(), disk]
    } else {
        let Some(tool) = find_tool(fs, &["/usr/sbin/grub-install", "/sbin/grub-install"])? else {
            p_.warn(
                R,
                &disk,
                "the disk has no boot code and the guest has no grub-install".to_owned(),
            );
            return Ok(());
        };
        vec![tool, disk]
    };
    // GRUB 2 reads the device.map of its own directory; SUSE's is grub2.
    let dir = if argv[0].contains("grub2") {
        "/boot/grub2"
    } else {
        "/boot/grub"
    };
    let disk = argv.last().cloned().unwrap_or_default();
    let pin = if fs.exists(&p(dir))? {
        vec![(p(&format!("{dir}/device.map")), format!("(hd0)\t{disk}\n"))]
    } else {
        Vec::new()
    };
    p_.plan.steps.push(Step::GrubInstall { argv, pin });
    Ok(())
}

fn mkconfig_argv(ctx: &Ctx<'_>, fs: &dyn GuestFs) -> io::Result<Option<(Vec<String>, GuestPath)>> {
    let Some(config) = ctx.facts.bootloader.config.clone() else {
        return Ok(None);
    };
    let Some(tool) = find_tool(
        fs,
        &[
            "/usr/sbin/grub2-mkconfig",
            "/usr/sbin/grub-mkconfig",
            "/sbin/grub2-mkconfig",
            "/sbin/grub-mkconfig",
            "/usr/bin/grub2-mkconfig",
            "/usr/bin/grub-mkconfig",
        ],
    )?
    else {
        return Ok(None);
    };
    Ok(Some((
        vec![tool, "-o".to_owned(), config.to_string()],
        config,
    )))
}

fn grub_config(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    const R: &str = "grub-config";
    let bl = &ctx.facts.bootloader;
    if !bl.kind.starts_with("grub2") {
        return Ok(());
    }
    let Some(config) = bl.config.as_ref() else {
        return Ok(());
    };
    let inputs_changed = [
        "/etc/default/grub",
        "/boot/grub/device.map",
        "/boot/grub2/device.map",
    ]
    .iter()
    .any(|f| p_.changes_file(f));
    let stale = ctx
        .facts
        .xenisms
        .iter()
        .any(|x| &x.file == config && (x.kind == "block-device" || x.kind == "console"));
    let new_initrd = p_
        .plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::RebuildInitrd { .. }));
    if !(inputs_changed || stale || new_initrd && !p_.plan.files.is_empty()) {
        return Ok(());
    }
    match mkconfig_argv(ctx, p_.fs)? {
        Some((argv, output)) => p_.plan.steps.push(Step::GrubMkconfig { argv, output }),
        None => p_.warn(R, config.as_str(), format!("the guest has no grub-mkconfig; {config} is not regenerated and still names Xen devices")),
    }
    Ok(())
}

fn default_kernel_rule(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    const R: &str = "default-kernel";
    let Some(k) = ctx.kernel() else {
        return Ok(());
    };
    let image = k.image.file_name().unwrap_or_default().to_owned();
    let bl = &ctx.facts.bootloader;
    let current = bl
        .default_entry
        .as_ref()
        .map(|e| e.kernel.rsplit('/').next().unwrap_or("").to_owned());
    if bl.kind == "grub-legacy" {
        let initrd = k
            .initrd
            .as_ref()
            .and_then(|i| i.file_name())
            .map(str::to_owned);
        let title = format!("{} - {}", ctx.facts.os.product, k.version);
        if let Some(cfg) = bl.config.clone() {
            let cfg = match p_.fs.read_link(&cfg)? {
                Some(_) => legacy_menus(p_.fs)?.into_iter().next().unwrap_or(cfg),
                None => cfg,
            };
            p_.edit(R, &cfg, |t| {
                default_kernel::legacy_menu(t, &image, initrd.as_deref(), &title)
            })?;
        }
    } else if bl.kind.starts_with("grub2") && current.as_deref() != Some(image.as_str()) {
        let Some(config) = bl.config.clone() else {
            return Ok(());
        };
        let mkconfig = mkconfig_argv(ctx, p_.fs)?
            .map(|(a, _)| a)
            .unwrap_or_default();
        let set_default = find_tool(
            p_.fs,
            &[
                "/usr/sbin/grub2-set-default",
                "/usr/sbin/grub-set-default",
                "/sbin/grub2-set-default",
                "/sbin/grub-set-default",
            ],
        )?;
        p_.plan.steps.push(Step::Grub2Default {
            image,
            config,
            set_default,
            mkconfig,
        });
    }
    Ok(())
}
