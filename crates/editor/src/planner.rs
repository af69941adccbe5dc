//! The planner: what rules see of the guest ([`Ctx`]) and the only way they
//! speak ([`Planner`]'s methods: edit or create a file, remove a link, add a
//! step, warn). It keeps one working copy per file, so several rules can
//! edit one file. It only reads the guest.

use std::io;

use xen2kvm_inspector::facts::{Facts, Kernel};
use xen2kvm_inspector::xen::DiskMap;
use xen2kvm_vfs::{GuestFs, GuestPath};

use crate::model::{Blocker, Change, FileEdit, Plan, PlannedStep, Step};
use crate::Edit;

/// What the rules know about the guest besides its files.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// The inspection facts.
    pub facts: &'a Facts,
    /// The appliance's name of the disk holding the root (`/dev/sda`), where
    /// GRUB's boot code is installed when the disk has none.
    pub boot_disk: Option<String>,
    /// Rules not to run (names from [`RULES`]).
    pub skip: &'a [String],
    /// The MAC addresses of the KVM domain's NICs, in the domain's order
    /// (Xen's `eth<n>`/`enX<n>` is the n-th); empty when not known.
    pub macs: &'a [Option<String>],
    /// Which virtio disk each Xen disk becomes (by the domain's disk
    /// order when its Xen targets are known).
    pub disks: &'a DiskMap,
}

impl Ctx<'_> {
    /// The kernel the guest will boot on KVM.
    pub fn kernel(&self) -> Option<&Kernel> {
        xen2kvm_inspector::facts::chosen_kernel(self.facts)
    }
}

/// Collects the rules' edits, keeping one working copy per file so several
/// rules can edit one file. Every change it records carries the rule that
/// is running (set by the planner loop, never spelled by a rule).
pub(crate) struct Planner<'a> {
    /// The guest, read-only.
    pub(crate) fs: &'a dyn GuestFs,
    rule: &'static str,
    plan: Plan,
}

impl<'a> Planner<'a> {
    pub(crate) fn new(fs: &'a dyn GuestFs, kernel: Option<String>) -> Planner<'a> {
        Planner {
            fs,
            rule: "",
            plan: Plan {
                kernel,
                ..Plan::default()
            },
        }
    }

    /// Runs `f` as rule `name`: what it records is that rule's.
    pub(crate) fn as_rule(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&mut Self) -> io::Result<()>,
    ) -> io::Result<()> {
        self.rule = name;
        f(self)
    }

    pub(crate) fn finish(self) -> Plan {
        self.plan
    }

    /// `path`'s text as the plan leaves it so far (the guest's when no rule
    /// changed it; `None` when it does not exist).
    pub(crate) fn current(&self, path: &GuestPath) -> io::Result<Option<String>> {
        match self.plan.files.iter().find(|e| &e.path == path) {
            Some(e) => Ok(Some(e.after.clone())),
            None => self.fs.read_text(path),
        }
    }

    /// Applies a pure edit to `path`'s current text, if it exists.
    pub(crate) fn edit(
        &mut self,
        path: &GuestPath,
        f: impl FnOnce(&str) -> Edit,
    ) -> io::Result<()> {
        let Some(current) = self.current(path)? else {
            return Ok(());
        };
        let e = f(&current);
        for w in e.warnings {
            self.warn(path.as_str(), w);
        }
        if e.changes.is_empty() {
            return Ok(());
        }
        for c in e.changes {
            self.change(path.as_str(), c);
        }
        self.set(path, e.text);
        Ok(())
    }

    /// Creates (or replaces) a file with `content`, unless it has it already.
    pub(crate) fn create(
        &mut self,
        path: &GuestPath,
        content: String,
        what: &str,
    ) -> io::Result<()> {
        if self.current(path)?.as_deref() == Some(content.as_str()) {
            return Ok(());
        }
        self.change(path.as_str(), what.to_owned());
        self.set(path, content);
        Ok(())
    }

    /// Removes the symlink `link` (pointing at `target`).
    pub(crate) fn remove_link(&mut self, link: GuestPath, target: String, why: &str) {
        if self.plan.remove_links.iter().any(|(l, _)| l == &link) {
            return;
        }
        self.change(link.as_str(), format!("removed ({why}; -> {target})"));
        self.plan.remove_links.push((link, target));
    }

    /// Removes the file `path` (it exists, and no rule writes it).
    pub(crate) fn remove_file(&mut self, path: GuestPath, why: &str) {
        if self.plan.remove_files.contains(&path) {
            return;
        }
        self.change(path.as_str(), format!("removed ({why})"));
        self.plan.remove_files.push(path);
    }

    /// Adds a command to run after the files are written.
    pub(crate) fn step(&mut self, step: Step) {
        self.plan.steps.push(PlannedStep {
            rule: self.rule,
            step,
        });
    }

    /// Whether a step of this kind is planned already.
    pub(crate) fn has_step(&self, f: impl Fn(&Step) -> bool) -> bool {
        self.plan.steps.iter().any(|s| f(&s.step))
    }

    fn set(&mut self, path: &GuestPath, after: String) {
        match self.plan.files.iter_mut().find(|e| &e.path == path) {
            Some(e) => e.after = after,
            None => {
                let before = self.fs.read_text(path).ok().flatten();
                self.plan.files.push(FileEdit {
                    path: path.clone(),
                    before,
                    after,
                })
            }
        }
    }

    fn change(&mut self, target: &str, what: String) {
        self.plan.changes.push(Change {
            rule: self.rule,
            target: target.to_owned(),
            what,
        });
    }

    /// Whether a rule named in `rules` changed any file.
    pub(crate) fn changed_by(&self, rules: &[&str]) -> bool {
        self.plan.changes.iter().any(|c| rules.contains(&c.rule))
    }

    /// Whether the plan changes any file.
    pub(crate) fn changes_files(&self) -> bool {
        !self.plan.files.is_empty()
    }

    /// Whether the plan removes no link and no file.
    pub(crate) fn removes_nothing(&self) -> bool {
        self.plan.remove_links.is_empty() && self.plan.remove_files.is_empty()
    }

    /// Whether the plan changes `path`.
    pub(crate) fn changes_file(&self, path: &str) -> bool {
        self.plan.files.iter().any(|f| f.path.as_str() == path)
    }

    /// Records why the result could not boot (see [`Plan::blockers`]).
    pub(crate) fn block(&mut self, target: &str, reason: &str, remedy: &str) {
        self.plan.blockers.push(Blocker {
            rule: self.rule,
            target: target.to_owned(),
            reason: reason.to_owned(),
            remedy: remedy.to_owned(),
        });
    }

    /// Records a warning about `target`.
    pub(crate) fn warn(&mut self, target: &str, what: String) {
        self.plan.warnings.push(Change {
            rule: self.rule,
            target: target.to_owned(),
            what,
        });
    }
}
