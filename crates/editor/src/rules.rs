//! [`RULES`]: the one table of what `convert` does, in order, and
//! [`plan`], which runs it. File rules come first; the steps (commands in
//! the guest) after them, because they read what the file rules wrote.
//! Rules find files through [`xen2kvm_inspector::xen`], the model `inspect`
//! scans with, and speak only through the [`Planner`].

use std::io;

use xen2kvm_inspector::facts::{self, path, Avail, BootloaderKind, InitrdTool, Kernel};
use xen2kvm_inspector::network;
use xen2kvm_inspector::xen::{self, XenismKind};
use xen2kvm_vfs::{GuestFs, GuestPath};

use crate::apply::grubenv_of;
use crate::initrd_conf::{self, DRACUT_CONF};
use crate::model::{Grub2DefaultMethod, Plan, Step};
use crate::planner::{Ctx, Planner};
use crate::{cmdline, consoles, default_kernel, devices};

/// The rules whose file changes call for a new initrd.
const INITRD_DRIVERS: &str = "initrd-drivers";
const BLOCK_DEVICES: &str = "block-devices";

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
        name: INITRD_DRIVERS,
        summary: "Xen drivers out of, virtio drivers into the initrd configuration (sysconfig/kernel, dracut.conf.d, initramfs-tools, modprobe aliases)",
        plan: initrd_drivers_rule,
    },
    Rule {
        name: BLOCK_DEVICES,
        summary: "/dev/xvdX[N] and by-path xen-vbd names -> /dev/vdX[N] in fstab, crypttab, device.map, lvm.conf, mdadm.conf, initramfs-tools resume, debconf (grub-pc/install_devices)",
        plan: block_devices,
    },
    Rule {
        name: "kernel-cmdline",
        summary: "root=/resume= remapped, Xen consoles removed, console=ttyS0 added, in /etc/default/grub (and grub.d/*.cfg), GRUB legacy menus, sysconfig/bootloader",
        plan: kernel_cmdline,
    },
    Rule {
        name: "consoles",
        summary: "xvc0/hvc0 -> ttyS0 in securetty and inittab (tty1 restored where xen-tools moved its getty, in inittab and upstart), getty links for Xen consoles removed (getty.target.wants, multi-user.target.wants)",
        plan: consoles_rule,
    },
    Rule {
        name: "guest-tools",
        summary: "Xen guest agents (xe-linux-distribution, xen-guest-agent) no longer started at boot: their systemd and SysV start links removed",
        plan: guest_tools,
    },
    Rule {
        name: "network-names",
        summary: "a NIC configured by its Xen name (enX0; eth0 where udev names virtio NICs ens3) keeps that name: a systemd .link file pins it, by the domain's MAC when known",
        plan: network_names,
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
        summary: "make the chosen kernel (not Xen-only, with virtio, newest) the default boot entry, and RHEL's DEFAULTKERNEL its package (not kernel-xen)",
        plan: default_kernel_rule,
    },
    Rule {
        name: "selinux-relabel",
        summary: "a guest with SELinux not disabled is relabeled at its first boot (/.autorelabel): the files written here have no labels",
        plan: selinux_relabel,
    },
];

/// Whether `name` is a rule of [`RULES`].
pub fn is_rule(name: &str) -> bool {
    RULES.iter().any(|r| r.name == name)
}

/// Plans the conversion of the guest `fs` (only reads). A name in
/// `ctx.skip` that is no rule is an error.
pub fn plan(fs: &dyn GuestFs, ctx: &Ctx<'_>) -> io::Result<Plan> {
    if let Some(s) = ctx.skip.iter().find(|s| !is_rule(s)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown rule '{s}' (convert --list shows them)"),
        ));
    }
    let mut p = Planner::new(fs, ctx.kernel().map(|k| k.version.clone()));
    for rule in RULES {
        if ctx.skip.iter().any(|s| s == rule.name) {
            continue;
        }
        p.as_rule(rule.name, |p| (rule.plan)(ctx, p))?;
    }
    Ok(p.finish())
}

fn lit(s: &'static str) -> GuestPath {
    GuestPath::lit(s)
}

/// The first of `candidates` that exists in the guest.
fn find_tool(fs: &dyn GuestFs, candidates: &[&str]) -> io::Result<Option<String>> {
    for c in candidates {
        if fs.exists(&path(c)?)? {
            return Ok(Some((*c).to_owned()));
        }
    }
    Ok(None)
}

/// `*.conf` files of a directory (sorted), skipping `except`.
fn conf_files(fs: &dyn GuestFs, dir: &str, except: &str) -> io::Result<Vec<GuestPath>> {
    let mut files = facts::conf_files(fs, dir)?;
    files.retain(|f| f.as_str() != except);
    Ok(files)
}

fn is_suse(ctx: &Ctx<'_>) -> bool {
    let d = ctx.facts.os.distro.as_str();
    d.starts_with("sles") || d.starts_with("opensuse") || d == "suse"
}

fn initrd_drivers_rule(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    p_.edit(&lit(xen::SYSCONFIG_KERNEL), initrd_conf::sysconfig_kernel)?;
    match ctx.facts.initrd_tool {
        InitrdTool::Dracut => dracut_drivers(p_)?,
        InitrdTool::UpdateInitramfs => {
            let file = lit(xen::INITRAMFS_MODULES);
            if p_.fs.exists(&file)? {
                p_.edit(&file, initrd_conf::initramfs_modules)?;
            } else {
                let e = initrd_conf::initramfs_modules("");
                p_.create(&file, e.text, &e.changes.join(", "))?;
            }
        }
        _ => {}
    }
    p_.edit(&lit(xen::MODPROBE_CONF), initrd_conf::modprobe_aliases)?;
    for f in conf_files(p_.fs, xen::MODPROBE_D, "")? {
        p_.edit(&f, initrd_conf::modprobe_aliases)?;
    }
    Ok(())
}

/// dracut: Xen drivers out of its config files, ours added (in
/// `dracut.conf.d`, else at the end of `dracut.conf`).
fn dracut_drivers(p_: &mut Planner<'_>) -> io::Result<()> {
    p_.edit(&lit(xen::DRACUT_CONF), initrd_conf::dracut_file)?;
    for f in conf_files(p_.fs, xen::DRACUT_CONF_D, DRACUT_CONF)? {
        p_.edit(&f, initrd_conf::dracut_file)?;
    }
    let what = "added virtio drivers to dracut's add_drivers";
    if p_.fs.exists(&lit(xen::DRACUT_CONF_D))? {
        return p_.create(&lit(DRACUT_CONF), initrd_conf::dracut_conf(), what);
    }
    // No conf.d directory (GuestFs makes no directories): the same lines at
    // the end of /etc/dracut.conf.
    let conf = lit(xen::DRACUT_CONF);
    let Some(text) = p_.current(&conf)? else {
        return p_.create(&conf, initrd_conf::dracut_conf(), what);
    };
    if text.contains(initrd_conf::dracut_conf().trim_end()) {
        return Ok(());
    }
    p_.edit(&conf, |t| {
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

fn block_devices(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    for f in xen::DEVICE_FILES {
        if xen::CACHE_FILES.contains(f) {
            let names_xen = p_.current(&lit(f))?.is_some_and(|t| {
                t.lines()
                    .any(|l| !crate::text::is_comment(l) && xen::is_block_word(l))
            });
            if names_xen {
                p_.remove_file(
                    lit(f),
                    "a cache naming the Xen disks; rebuilt on the next scan",
                );
            }
            continue;
        }
        let place = if xen::SPEC_FILES.contains(f) {
            devices::Place::Spec
        } else {
            devices::Place::Path
        };
        p_.edit(&lit(f), |t| devices::remap_file(t, ctx.disks, place))?;
    }
    for f in xen::MDADM_FILES {
        p_.edit(&lit(f), |t| devices::remap_mdadm_conf(t, ctx.disks))?;
    }
    p_.edit(&lit(xen::LVM_CONF), devices::remap_lvm_conf)?;
    Ok(())
}

fn kernel_cmdline(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    let disks = ctx.disks;
    p_.edit(&lit(xen::DEFAULT_GRUB), |t| cmdline::default_grub(t, disks))?;
    for f in facts::files_ending(p_.fs, xen::DEFAULT_GRUB_D, ".cfg")? {
        p_.edit(&f, |t| cmdline::default_grub_snippet(t, disks))?;
    }
    for m in facts::legacy_menus(p_.fs)? {
        p_.edit(&m, |t| cmdline::legacy_menu(t, disks))?;
    }
    p_.edit(&lit(xen::SYSCONFIG_BOOTLOADER), |t| {
        cmdline::sysconfig_bootloader(t, disks)
    })?;
    Ok(())
}

fn consoles_rule(_ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    p_.edit(&lit(xen::SECURETTY), consoles::securetty)?;
    p_.edit(&lit(xen::INITTAB), consoles::inittab)?;
    for f in xen::UPSTART_TTY1 {
        p_.edit(&lit(f), consoles::upstart_tty1)?;
    }
    for (link, target) in facts::getty_links(p_.fs)? {
        match target {
            Some(target) => p_.remove_link(link, target, "a getty on a Xen console"),
            None => p_.warn(
                link.as_str(),
                "a getty unit for a Xen console that is not a symlink; left as it is".to_owned(),
            ),
        }
    }
    Ok(())
}

fn guest_tools(_ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    for (link, target) in facts::guest_tool_links(p_.fs)? {
        match target {
            Some(target) => p_.remove_link(
                link,
                target,
                "a Xen guest agent: no xenstore under KVM; the package stays installed",
            ),
            None => p_.warn(
                link.as_str(),
                "a Xen guest agent's start entry that is not a symlink; left as it is".to_owned(),
            ),
        }
    }
    Ok(())
}

fn network_names(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    let found = network::unpinned(p_.fs)?;
    let mut names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
    names.sort_by_key(|n| (network::xen_index(n), n.to_owned()));
    names.dedup();
    for name in names {
        let configs: Vec<String> = found
            .iter()
            .filter(|c| c.name == name)
            .map(|c| format!("{} ({})", c.file, c.kind.as_str()))
            .collect();
        let mac = network::xen_index(name)
            .and_then(|i| ctx.macs.get(i as usize))
            .and_then(|m| m.as_deref());
        let (file, text) = network::link_file(name, mac, &configs);
        let by = match mac {
            Some(m) => format!("the NIC with MAC {m}"),
            None => format!(
                "virtio NIC number {} (the domain's MAC not given)",
                network::xen_index(name).unwrap_or(0) + 1
            ),
        };
        p_.create(
            &file,
            text,
            &format!(
                "created: {by} is named {name}, as under Xen, so {} still applies",
                configs.join(", ")
            ),
        )?;
    }
    Ok(())
}

/// The initrd file a tool writes for `version` when the kernel has none yet.
fn default_initrd(ctx: &Ctx<'_>, version: &str) -> io::Result<GuestPath> {
    let name = match (ctx.facts.initrd_tool, ctx.facts.os.distro.as_str()) {
        (InitrdTool::UpdateInitramfs, _) | (_, "debian" | "ubuntu") => {
            format!("/boot/initrd.img-{version}")
        }
        _ if is_suse(ctx) => format!("/boot/initrd-{version}"),
        _ => format!("/boot/initramfs-{version}.img"),
    };
    path(&name)
}

fn rebuild_initrd(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    let Some(k) = ctx.kernel() else {
        return Ok(());
    };
    let config_changed = p_.changed_by(&[INITRD_DRIVERS, BLOCK_DEVICES]);
    if k.initrd_virtio_blk == Some(true) && !config_changed {
        return Ok(());
    }
    let initrd = match &k.initrd {
        Some(i) => i.clone(),
        None => default_initrd(ctx, &k.version)?,
    };
    let (add, require) = initrd_drivers(k);
    let fs = p_.fs;
    let argv: Vec<String> = match ctx.facts.initrd_tool {
        InitrdTool::SuseMkinitrd => {
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
        InitrdTool::Dracut => {
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
        InitrdTool::UpdateInitramfs => {
            let tool = find_tool(
                fs,
                &["/usr/sbin/update-initramfs", "/sbin/update-initramfs"],
            )?
            .unwrap_or_else(|| "update-initramfs".into());
            let mode = if fs.exists(&initrd)? { "-u" } else { "-c" };
            vec![tool, mode.into(), "-k".into(), k.version.clone()]
        }
        InitrdTool::NashMkinitrd => {
            let mut argv = vec!["/sbin/mkinitrd".to_owned(), "-f".to_owned()];
            argv.extend(add.iter().map(|d| format!("--with={d}")));
            argv.push(initrd.to_string());
            argv.push(k.version.clone());
            argv
        }
        InitrdTool::Unknown => {
            p_.warn(&k.version, format!("no known initrd tool in the guest; the initrd of {} is not rebuilt and may lack virtio drivers", k.version));
            return Ok(());
        }
    };
    // The first backup is the Xen original: a later conversion keeps it.
    let backup_path = path(&format!("{initrd}.xen2kvm-orig"))?;
    let backup = (fs.exists(&initrd)? && !fs.exists(&backup_path)?).then_some(backup_path);
    p_.step(Step::RebuildInitrd {
        kernel: k.version.clone(),
        initrd,
        argv,
        require,
        backup,
    });
    Ok(())
}

fn grub_install(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    let bl = &ctx.facts.bootloader;
    if bl.boot_code != Some(false)
        || matches!(bl.kind, BootloaderKind::None | BootloaderKind::Grub2Efi)
    {
        return Ok(());
    }
    let Some(disk) = ctx.boot_disk.clone() else {
        p_.block(
            "boot code",
            "the disk has no boot code and its device is unknown, so GRUB cannot be installed",
            "report this as a bug of xen2kvm, with the disk's layout",
        );
        return Ok(());
    };
    let fs = p_.fs;
    let argv = if bl.kind == BootloaderKind::Grub2 {
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
            p_.block(&disk, "the disk has no boot code and the guest has no grub-install", "install grub2 (SUSE, RHEL) or grub-pc (Debian) in the guest (on the Xen host), then convert again");
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
            p_.block(&disk, "the disk has no boot code and the guest has no GRUB BIOS modules (i386-pc)", "install grub2-i386-pc (SUSE), grub2-pc-modules (RHEL) or grub-pc-bin (Debian) in the guest (on the Xen host), then convert again");
            return Ok(());
        }
        vec![tool, "--target=i386-pc".to_owned(), disk]
    } else {
        let Some(tool) = find_tool(fs, &["/usr/sbin/grub-install", "/sbin/grub-install"])? else {
            p_.block(
                &disk,
                "the disk has no boot code and the guest has no grub-install",
                "install grub in the guest (on the Xen host), then convert again",
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
    let pin = if fs.exists(&path(dir)?)? {
        vec![(
            path(&format!("{dir}/device.map"))?,
            format!("(hd0)\t{disk}\n"),
        )]
    } else {
        Vec::new()
    };
    p_.step(Step::GrubInstall { argv, pin });
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
    let bl = &ctx.facts.bootloader;
    if !bl.kind.is_grub2() {
        return Ok(());
    }
    let Some(config) = bl.config.as_ref() else {
        return Ok(());
    };
    let inputs_changed = [
        xen::DEFAULT_GRUB,
        "/boot/grub/device.map",
        "/boot/grub2/device.map",
    ]
    .iter()
    .any(|f| p_.changes_file(f));
    let stale = ctx.facts.xenisms.iter().any(|x| {
        &x.file == config && matches!(x.kind, XenismKind::BlockDevice | XenismKind::Console)
    });
    let new_initrd = p_.has_step(|s| matches!(s, Step::RebuildInitrd { .. }));
    if !(inputs_changed || stale || new_initrd && p_.changes_files()) {
        return Ok(());
    }
    match mkconfig_argv(ctx, p_.fs)? {
        Some((argv, output)) => p_.step(Step::GrubMkconfig { argv, output }),
        None => p_.warn(config.as_str(), format!("the guest has no grub-mkconfig; {config} is not regenerated and still names Xen devices")),
    }
    Ok(())
}

/// Whether `/etc/default/grub` (as the plan leaves it) says
/// `GRUB_DEFAULT=saved`.
fn grub_default_saved(p_: &Planner<'_>) -> io::Result<bool> {
    let text = p_.current(&lit(xen::DEFAULT_GRUB))?.unwrap_or_default();
    Ok(text.lines().any(|l| {
        let l = l.trim();
        l == "GRUB_DEFAULT=saved" || l == "GRUB_DEFAULT=\"saved\"" || l == "GRUB_DEFAULT='saved'"
    }))
}

/// SELinux's configuration: `SELINUX=enforcing|permissive|disabled`.
const SELINUX_CONFIG: &str = "/etc/selinux/config";

/// The file that makes SELinux's boot scripts relabel every file once.
const AUTORELABEL: &str = "/.autorelabel";

/// Last: whatever the rules before it write, or the steps run (an initrd,
/// grub.cfg, boot code files), is written from the appliance without the
/// guest's SELinux labels. With SELinux enforcing such a guest can fail to
/// boot or log in; the guest's own boot scripts (selinux-autorelabel)
/// relabel the whole filesystem once and reboot, as virt-v2v arranges.
fn selinux_relabel(_ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    if !p_.changes_files() && !p_.has_step(|_| true) && p_.removes_nothing() {
        return Ok(());
    }
    let Some(conf) = p_.current(&lit(SELINUX_CONFIG))? else {
        return Ok(());
    };
    let mode = conf
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.trim().strip_prefix("SELINUX="))
        .next_back()
        .map(|v| v.trim().trim_matches(['"', '\'']).to_ascii_lowercase());
    match mode.as_deref() {
        None | Some("disabled") => Ok(()),
        Some(m) => p_.create(
            &lit(AUTORELABEL),
            String::new(),
            &format!("created: SELinux is {m}, and the files this conversion writes carry no labels; the first boot relabels the guest and reboots once"),
        ),
    }
}

fn default_kernel_rule(ctx: &Ctx<'_>, p_: &mut Planner<'_>) -> io::Result<()> {
    let Some(k) = ctx.kernel() else {
        return Ok(());
    };
    // RHEL: the next kernel update must not make kernel-xen the default.
    let package = if k.version.ends_with("PAE") {
        "kernel-PAE"
    } else {
        "kernel"
    };
    p_.edit(&lit(xen::SYSCONFIG_KERNEL), |t| {
        default_kernel::sysconfig_defaultkernel(t, package)
    })?;
    let image = k.image.file_name().unwrap_or_default().to_owned();
    let bl = &ctx.facts.bootloader;
    let current = bl
        .default_entry
        .as_ref()
        .map(|e| e.kernel.rsplit('/').next().unwrap_or("").to_owned());
    if bl.kind == BootloaderKind::GrubLegacy {
        let initrd = k
            .initrd
            .as_ref()
            .and_then(|i| i.file_name())
            .map(str::to_owned);
        let title = format!("{} - {}", ctx.facts.os.product, k.version);
        if let Some(cfg) = bl.config.clone() {
            let cfg = match p_.fs.read_link(&cfg)? {
                Some(_) => facts::legacy_menus(p_.fs)?
                    .into_iter()
                    .next()
                    .unwrap_or(cfg),
                None => cfg,
            };
            p_.edit(&cfg, |t| {
                default_kernel::legacy_menu(t, &image, initrd.as_deref(), &title)
            })?;
        }
    } else if bl.kind.is_grub2() && current.as_deref() != Some(image.as_str()) {
        let Some(config) = bl.config.clone() else {
            return Ok(());
        };
        let method = if grub_default_saved(p_)? {
            let set_default = find_tool(
                p_.fs,
                &[
                    "/usr/sbin/grub2-set-default",
                    "/usr/sbin/grub-set-default",
                    "/sbin/grub2-set-default",
                    "/sbin/grub-set-default",
                ],
            )?;
            match set_default {
                Some(tool) => Grub2DefaultMethod::SetDefault { tool },
                None => Grub2DefaultMethod::Grubenv {
                    env: grubenv_of(&config),
                },
            }
        } else {
            match mkconfig_argv(ctx, p_.fs)? {
                Some((mkconfig, _)) => Grub2DefaultMethod::DefaultGrub { mkconfig },
                None => {
                    p_.warn(
                        config.as_str(),
                        format!(
                            "the guest has no grub-mkconfig; the default entry stays {}",
                            current.unwrap_or_default()
                        ),
                    );
                    return Ok(());
                }
            }
        };
        p_.step(Step::Grub2Default {
            image,
            config,
            method,
        });
    }
    Ok(())
}

/// The drivers of [`crate::initrd_conf::VIRTIO_DRIVERS`] that `kernel` has
/// as modules (built-in ones need no initrd), and those the new initrd must
/// be checked for.
fn initrd_drivers(kernel: &Kernel) -> (Vec<String>, Vec<String>) {
    let avail = |name: &str| {
        kernel
            .virtio
            .iter()
            .find(|(d, _)| *d == name)
            .map(|(_, a)| a.clone())
    };
    let mut add = Vec::new();
    let mut require = Vec::new();
    for d in crate::initrd_conf::VIRTIO_DRIVERS {
        match avail(d) {
            Some(Avail::Module(_)) => {
                add.push((*d).to_owned());
                if *d == "virtio_blk" || *d == "virtio_pci" {
                    require.push((*d).to_owned());
                }
            }
            Some(Avail::Builtin) | Some(Avail::Missing) => {}
            // Not among the drivers inspection looks for (virtio_balloon):
            // asked for, not required.
            None => add.push((*d).to_owned()),
        }
    }
    (add, require)
}
