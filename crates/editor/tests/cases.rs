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
            },
        )
        .unwrap();
        assert_eq!(v, Verdict::Ready, "{name}: not ready after convert");
    }
    goldens.finish();
}
