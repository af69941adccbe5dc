//! The plan as data: [`Plan`] (files before and after, links to remove,
//! [`Step`]s, every [`Change`] with its rule). Built by the planner, shown by
//! `--dry-run`, carried out by `apply`; this module knows neither.

use xen2kvm_journal::Scope;
use xen2kvm_vfs::GuestPath;

/// The bytes at the start of the boot disk saved before GRUB's boot code is
/// installed: the MBR and the gap after it, where `core.img` goes.
pub const BOOT_AREA: usize = 1 << 20;

/// One change, and the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The rule's name.
    pub rule: &'static str,
    /// The file, link or command it is about.
    pub target: String,
    /// What changed.
    pub what: String,
}

/// A file's content before and after the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    /// The file.
    pub path: GuestPath,
    /// Its content now (`None`: the plan creates it).
    pub before: Option<String>,
    /// Its content after the plan.
    pub after: String,
}

/// A command, or a command-driven job, run after the files are written.
/// Everything about it is decided when planning, so `--dry-run` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Rebuild the initrd of the chosen kernel with the guest's tool, then
    /// check it has `require`.
    RebuildInitrd {
        /// The kernel release.
        kernel: String,
        /// The initrd file the command writes.
        initrd: GuestPath,
        /// The command.
        argv: Vec<String>,
        /// Modules the new initrd must contain.
        require: Vec<String>,
        /// Where the current initrd is copied first (`None`: there is none,
        /// or a backup from an earlier conversion is kept as it is: the
        /// first backup is the Xen original).
        backup: Option<GuestPath>,
    },
    /// Install GRUB's BIOS boot code on the disk. While it runs, each file
    /// of `pin` holds the given content (GRUB's device.map says `(hd0)` is
    /// the appliance's disk: the guest's names Xen or KVM disks, and without
    /// one grub-install may take the appliance's own disk for BIOS disk 0
    /// and refuse a "cross-disk install"); the files are restored after.
    GrubInstall {
        /// The command.
        argv: Vec<String>,
        /// Files and their content during the command.
        pin: Vec<(GuestPath, String)>,
    },
    /// Regenerate `grub.cfg`, then check it names no Xen device.
    GrubMkconfig {
        /// The command.
        argv: Vec<String>,
        /// The file it writes.
        output: GuestPath,
    },
    /// Make the GRUB 2 menu's entry for `image` the default, after
    /// `grub-mkconfig` (the entry's id is read from the regenerated menu).
    Grub2Default {
        /// The kernel image's file name.
        image: String,
        /// `grub.cfg`.
        config: GuestPath,
        /// How.
        method: Grub2DefaultMethod,
    },
}

/// How the GRUB 2 default entry is set, decided from the guest's
/// `/etc/default/grub` (as the plan leaves it) and tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grub2DefaultMethod {
    /// `GRUB_DEFAULT=saved`: the guest's `grub(2)-set-default ENTRY`.
    SetDefault {
        /// The tool.
        tool: String,
    },
    /// `GRUB_DEFAULT=saved` and no tool: `saved_entry=ENTRY` written into
    /// the GRUB environment block.
    Grubenv {
        /// The grubenv file.
        env: GuestPath,
    },
    /// `GRUB_DEFAULT="ENTRY"` in `/etc/default/grub`, then `mkconfig` again.
    DefaultGrub {
        /// The `grub-mkconfig` command.
        mkconfig: Vec<String>,
    },
}

impl Step {
    /// What it runs, as shell-like text for people (`--dry-run`).
    pub fn describe(&self) -> String {
        match self {
            Step::RebuildInitrd {
                argv,
                initrd,
                require,
                backup,
                ..
            } => {
                let first = match backup {
                    Some(b) => format!("first copy {initrd} to {b}; then "),
                    None => String::new(),
                };
                format!(
                    "{first}{} (the new initrd must hold {})",
                    shell_words(argv),
                    require.join(", ")
                )
            }
            Step::GrubInstall { argv, pin } => {
                let pinned: Vec<String> = pin
                    .iter()
                    .map(|(p, c)| format!("{p} saying {}", c.trim().replace('\t', " ")))
                    .collect();
                if pinned.is_empty() {
                    shell_words(argv)
                } else {
                    format!(
                        "{} (with {} while it runs; restored after)",
                        shell_words(argv),
                        pinned.join(", ")
                    )
                }
            }
            Step::GrubMkconfig { argv, .. } => {
                format!("{} (the result must name no Xen device)", shell_words(argv))
            }
            Step::Grub2Default {
                image,
                config,
                method,
            } => {
                let entry = format!("<the entry of {config} that boots {image}>");
                match method {
                    Grub2DefaultMethod::SetDefault { tool } => format!("{tool} '{entry}'"),
                    Grub2DefaultMethod::Grubenv { env } => {
                        format!("write saved_entry={entry} into {env}")
                    }
                    Grub2DefaultMethod::DefaultGrub { mkconfig } => format!(
                        "set GRUB_DEFAULT=\"{entry}\" in /etc/default/grub, then {}",
                        shell_words(mkconfig)
                    ),
                }
            }
        }
    }
}

/// A step and the rule that planned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// The rule's name.
    pub rule: &'static str,
    /// The step.
    pub step: Step,
}

/// `argv` as one line a shell would read back.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_.=,:+@".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything `convert` will do to one guest.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The kernel made the default (release).
    pub kernel: Option<String>,
    /// Files to write, in the order the rules first touched them.
    pub files: Vec<FileEdit>,
    /// Symlinks to remove, with their targets.
    pub remove_links: Vec<(GuestPath, String)>,
    /// Files to remove (caches that name Xen disks, which their tools
    /// rebuild on the next scan).
    pub remove_files: Vec<GuestPath>,
    /// Commands to run, in order.
    pub steps: Vec<PlannedStep>,
    /// Every change to a file or link, with its rule.
    pub changes: Vec<Change>,
    /// Warnings, with their rules.
    pub warnings: Vec<Change>,
    /// Why the result could not boot on KVM, with the rule that found it
    /// and the remedy: a plan with blockers is never applied (the guest is
    /// `blocked`, as when it has no kernel for KVM).
    pub blockers: Vec<Blocker>,
}

/// Why a plan's result could not boot, and what the user must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// The rule that found it.
    pub rule: &'static str,
    /// The disk, file or setting it is about.
    pub target: String,
    /// What is wrong.
    pub reason: String,
    /// What to do about it.
    pub remedy: String,
}

impl Plan {
    /// Whether the plan does nothing at all.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.remove_links.is_empty()
            && self.remove_files.is_empty()
            && self.steps.is_empty()
    }

    /// Whether `grub-mkconfig` runs (it needs the appliance to have the
    /// guest's `/dev/disk/by-uuid` links, see `Runner::prepare_grub_mkconfig`).
    pub fn runs_grub_mkconfig(&self) -> bool {
        self.steps.iter().any(|s| {
            matches!(
                s.step,
                Step::GrubMkconfig { .. }
                    | Step::Grub2Default {
                        method: Grub2DefaultMethod::DefaultGrub { .. },
                        ..
                    }
            )
        })
    }

    /// What the plan may change, for the in-place journal to save before
    /// anything is written: every file and link it writes or removes, the
    /// files its steps write (the initrd and its backup, `grub.cfg`,
    /// grubenv, update-initramfs' record of the initrd), GRUB's directory
    /// and the disk's first MiB when the boot code is installed, and `/boot`
    /// watched (what the tools create there is removed on revert).
    pub fn journal_scope(&self) -> Scope {
        let mut scope = Scope::default();
        let mut add = |p: &GuestPath| scope.paths.push(p.clone());
        for f in &self.files {
            add(&f.path);
        }
        for (link, _) in &self.remove_links {
            add(link);
        }
        for f in &self.remove_files {
            add(f);
        }
        for s in &self.steps {
            match &s.step {
                Step::RebuildInitrd {
                    kernel,
                    initrd,
                    argv,
                    backup,
                    ..
                } => {
                    add(initrd);
                    if let Some(b) = backup {
                        add(b);
                    }
                    if argv
                        .first()
                        .is_some_and(|a| a.ends_with("update-initramfs"))
                    {
                        if let Ok(rec) =
                            GuestPath::new(&format!("/var/lib/initramfs-tools/{kernel}"))
                        {
                            add(&rec);
                        }
                    }
                }
                Step::GrubInstall { argv, pin } => {
                    for (p, _) in pin {
                        add(p);
                    }
                    let dir = if argv.first().is_some_and(|a| a.contains("grub2")) {
                        "/boot/grub2"
                    } else {
                        "/boot/grub"
                    };
                    scope.saved_trees.push(GuestPath::lit(dir));
                    scope.boot_area = BOOT_AREA;
                }
                Step::GrubMkconfig { output, .. } => add(output),
                Step::Grub2Default { config, method, .. } => {
                    add(config);
                    add(&crate::apply::grubenv_of(config));
                    match method {
                        Grub2DefaultMethod::Grubenv { env } => add(env),
                        Grub2DefaultMethod::DefaultGrub { .. } => {
                            add(&GuestPath::lit("/etc/default/grub"))
                        }
                        Grub2DefaultMethod::SetDefault { .. } => {}
                    }
                }
            }
        }
        if !self.steps.is_empty() {
            scope.watched_trees.push(GuestPath::lit("/boot"));
        }
        scope.paths.sort();
        scope.paths.dedup();
        scope.saved_trees.sort();
        scope.saved_trees.dedup();
        scope
    }

    /// Unified diffs of every file, then one line per link removal.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            out.push_str(&crate::unified_diff(
                f.path.as_str(),
                f.before.as_deref(),
                &f.after,
            ));
        }
        for (link, target) in &self.remove_links {
            out.push_str(&format!("remove symlink {link} -> {target}\n"));
        }
        for f in &self.remove_files {
            out.push_str(&format!("remove file {f}\n"));
        }
        out
    }
}
