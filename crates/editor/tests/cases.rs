//! The whole-guest cases of `test_data/<case>/`: `before/` (a guest tree),
//! `after/` (the tree after `plan` and `apply`, with [`common::Fake`]
//! playing the guest's tools) and `changes.txt` (the plan as `--dry-run`
//! shows it, what apply changed, the commands run).
//!
//! Each case also proves the one-model promise: after the conversion,
//! `facts::read` finds no Xen-ism and the verdict is `ready` (so a second
//! conversion has nothing to do), and every file the plan showed is exactly
//! what was written.

#![allow(clippy::disallowed_methods)]

mod common;

use std::fmt::Write as _;

use common::{case_dir, cases, facts_of, fake, plan_of, tree};
use xen2kvm_editor::{apply, verdict, Ctx, Plan};
use xen2kvm_golden::Goldens;
use xen2kvm_inspector::facts::Verdict;
use xen2kvm_vfs::DirFs;

fn render(plan: &Plan, applied: &xen2kvm_editor::Applied, calls: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "kernel: {}", plan.kernel.as_deref().unwrap_or("none"));
    s.push_str("== plan: changes\n");
    for c in &plan.changes {
        let _ = writeln!(s, "[{}] {}: {}", c.rule, c.target, c.what);
    }
    s.push_str("== plan: steps\n");
    for st in &plan.steps {
        let _ = writeln!(s, "[{}] {}", st.rule, st.step.describe());
    }
    s.push_str("== plan: warnings\n");
    for w in &plan.warnings {
        let _ = writeln!(s, "[{}] {}: {}", w.rule, w.target, w.what);
    }
    s.push_str("== applied: changes\n");
    for c in &applied.changes {
        let _ = writeln!(s, "[{}] {}: {}", c.rule, c.target, c.what);
    }
    s.push_str("== commands run\n");
    for c in calls {
        let _ = writeln!(s, "{c}");
    }
    s
}

#[test]
fn whole_guest_cases() {
    let all = cases();
    assert!(all.len() >= 4, "test_data has the cases: {all:?}");
    let mut goldens = Goldens::new();
    for name in all {
        let dir = case_dir(&name);
        let boot_code = !dir.join("no-boot-code").exists();
        let t = tree(&name);
        let fs_ = DirFs::new(t.path());
        let plan = plan_of(&fs_, boot_code, &[]);
        assert!(!plan.is_empty(), "{name}: nothing planned");
        let runner = fake(t.path(), &[]);
        let applied = apply(&fs_, &runner, &plan).unwrap_or_else(|e| {
            panic!(
                "{name}: apply failed: {} (done: {:?})",
                e.error, e.applied.done
            )
        });
        // What the dry run shows is what apply writes.
        for f in &plan.files {
            let written = common::read(t.path(), f.path.as_str());
            assert_eq!(written, f.after, "{name}: {} differs from the plan", f.path);
        }
        goldens.check(
            &dir.join("changes.txt"),
            &render(&plan, &applied, &runner.calls.borrow()),
        );
        goldens.check_tree(&dir.join("after"), t.path());

        // One model: what inspect reports as a Xen-ism, convert fixed.
        // (grub-install, when it ran, put boot code on the disk.)
        let f = facts_of(&fs_, true);
        let left: Vec<String> = f
            .xenisms
            .iter()
            .map(|x| format!("{} {}:{} {}", x.kind.as_str(), x.file, x.line, x.text))
            .collect();
        assert!(
            left.is_empty(),
            "{name}: Xen-isms left after convert: {left:#?}"
        );
        let v = verdict(
            &fs_,
            &Ctx {
                facts: &f,
                boot_disk: Some("/dev/sdX".to_owned()),
                skip: &[],
                macs: &[],
                disks: &xen2kvm_inspector::xen::DiskMap::BY_LETTER,
            },
        )
        .unwrap();
        assert_eq!(v, Verdict::Ready, "{name}: not ready after convert");
    }
    goldens.finish();
}

/// Every path of a guest tree: kind, content hash or target, permissions.
fn snapshot(fs_: &DirFs) -> Vec<String> {
    use xen2kvm_vfs::{FileKind, GuestFs, GuestPath};
    let mut out = Vec::new();
    for p in fs_.walk(&GuestPath::lit("/")).unwrap() {
        let m = fs_.metadata(&p).unwrap().unwrap();
        out.push(match m.kind {
            FileKind::File => format!("{p} {:o} {}", m.mode, fs_.sha256(&p).unwrap().unwrap()),
            FileKind::Symlink => format!("{p} -> {}", fs_.read_link(&p).unwrap().unwrap()),
            k => format!("{p} {k:?} {:o}", m.mode),
        });
    }
    out
}

/// The boot disk's first MiB, in memory.
struct Disk(std::cell::RefCell<Vec<u8>>);

impl xen2kvm_journal::BootArea for Disk {
    fn read(&self, len: usize) -> std::io::Result<Vec<u8>> {
        Ok(self.0.borrow()[..len].to_vec())
    }
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.borrow_mut()[..bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

/// The fake tools, interrupted at the `at`-th safe point.
struct Interrupting<'a> {
    inner: common::Fake<'a>,
    at: usize,
    seen: std::cell::Cell<usize>,
}

impl xen2kvm_editor::Runner for Interrupting<'_> {
    fn run(&self, argv: &[String]) -> std::io::Result<String> {
        self.inner.run(argv)
    }
    fn interrupted(&self) -> bool {
        self.seen.set(self.seen.get() + 1);
        self.seen.get() > self.at
    }
}

/// The journal's promise on every case: convert in place, then revert, and
/// every path (content, kind, link target, mode) and the boot area are as
/// before; interrupted at any safe point, the rollback does the same.
#[test]
fn journal_reverts_every_case_and_every_interruption() {
    use xen2kvm_journal as journal;
    for name in cases() {
        let boot_code = !case_dir(&name).join("no-boot-code").exists();
        let t = tree(&name);
        let fs_ = DirFs::new(t.path());
        let before = snapshot(&fs_);
        let plan = plan_of(&fs_, boot_code, &[]);
        let disk = Disk(std::cell::RefCell::new(vec![
            0u8;
            xen2kvm_editor::BOOT_AREA
        ]));
        let scope = plan.journal_scope();
        let j = journal::begin(&fs_, Some(&disk), &scope).unwrap();
        apply(&fs_, &fake(t.path(), &[]), &plan).unwrap();
        if scope.boot_area > 0 {
            // What grub-install writes.
            disk.0.borrow_mut()[..4].copy_from_slice(b"GRUB");
        }
        j.finish(&fs_).unwrap();
        let r = journal::revert(&fs_, Some(&disk))
            .unwrap_or_else(|e| panic!("{name}: revert failed: {e}"));
        assert_eq!(snapshot(&fs_), before, "{name}: not restored by revert");
        assert!(disk.0.borrow().iter().all(|&b| b == 0), "{name}: boot area");
        assert_eq!(r.journals.len(), 1);

        // Interrupted at each safe point (before each file, link, step).
        let points = plan.files.len() + plan.remove_links.len() + plan.steps.len();
        for at in 0..points {
            let t = tree(&name);
            let fs_ = DirFs::new(t.path());
            let before = snapshot(&fs_);
            let plan = plan_of(&fs_, boot_code, &[]);
            let j = journal::begin(&fs_, Some(&disk), &plan.journal_scope()).unwrap();
            let runner = Interrupting {
                inner: fake(t.path(), &[]),
                at,
                seen: std::cell::Cell::new(0),
            };
            let e = apply(&fs_, &runner, &plan).unwrap_err();
            assert_eq!(e.error.kind(), std::io::ErrorKind::Interrupted, "{name}");
            journal::rollback(&fs_, Some(&disk), &j).unwrap();
            assert_eq!(snapshot(&fs_), before, "{name}: interrupted at {at}");
        }
    }
}
