//! The conversion of a Xen guest's files, as data: pure rewrite rules, a
//! [`Plan`] computed from a guest read through `&dyn GuestFs`, and the
//! [`apply`] that writes it and runs the guest's own tools.
//!
//! Modules, imports going one way: `rules` (the table, and [`plan`]) →
//! `planner` (what a rule may do) → `model` (the plan as data) ← `apply`.
//! The pure rules (`devices`, `cmdline`, `initrd_conf`, `consoles`,
//! `default_kernel`, on `text` helpers) know none of them.
//!
//! Every rule is a pure function (text in → text out, with the list of
//! changes and warnings) tested with golden before/after pairs and an
//! idempotence check. [`RULES`] is the one table of what `convert` does, so
//! `--list` and `--skip` come from it.
//!
//! This crate never touches the host: no `std::fs`, no `std::process`, no
//! libguestfs (`clippy.toml` forbids the first two). Guest files are read and
//! written through [`GuestFs`](xen2kvm_vfs::GuestFs), guest commands run
//! through [`Runner`](plan::Runner), both supplied by the caller.

mod apply;
pub mod cmdline;
pub mod consoles;
pub mod default_kernel;
pub mod devices;
pub mod initrd_conf;
mod model;
mod planner;
mod rules;
mod text;
mod verdict;

pub use apply::{apply, Applied, ApplyError, Runner};
pub use model::{
    shell_words, Blocker, Change, FileEdit, Grub2DefaultMethod, Plan, PlannedStep, Step, BOOT_AREA,
};
pub use planner::Ctx;
pub use rules::{is_rule, plan, Rule, RULES};
pub use verdict::{blocked, needs, verdict};

/// What a pure rule made of one text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    /// The new text (equal to the input when `changes` is empty).
    pub text: String,
    /// One line per change, e.g. `line 3: /dev/xvda1 -> /dev/vda1`.
    pub changes: Vec<String>,
    /// Things left as they were that a person should look at.
    pub warnings: Vec<String>,
}

/// A unified diff of one file (`before` `None`: a new file).
pub fn unified_diff(path: &str, before: Option<&str>, after: &str) -> String {
    let old = before.unwrap_or("");
    let diff = similar::TextDiff::from_lines(old, after);
    let from = if before.is_some() {
        format!("a{path}")
    } else {
        "/dev/null".to_owned()
    };
    diff.unified_diff()
        .context_radius(3)
        .header(&from, &format!("b{path}"))
        .to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Edit;

    /// Checks one rule: `before` becomes `after` with exactly `changes`, and
    /// applying the rule to `after` changes nothing (idempotence).
    #[track_caller]
    pub(crate) fn check(rule: impl Fn(&str) -> Edit, before: &str, after: &str, changes: &[&str]) {
        let e = rule(before);
        assert_eq!(e.text, after, "rule output differs");
        assert_eq!(e.changes, changes, "change list differs");
        assert!(
            e.warnings.is_empty(),
            "unexpected warnings: {:?}",
            e.warnings
        );
        check_noop(rule, after);
    }

    /// Checks that `text` is left exactly as it is.
    #[track_caller]
    pub(crate) fn check_noop(rule: impl Fn(&str) -> Edit, text: &str) {
        let e = rule(text);
        assert_eq!(e.text, text, "a second application changed the text");
        assert!(
            e.changes.is_empty(),
            "a second application reported {:?}",
            e.changes
        );
    }

    #[test]
    fn diffs() {
        let d = super::unified_diff("/etc/fstab", Some("a\nb\n"), "a\nc\n");
        assert_eq!(
            d,
            "--- a/etc/fstab\n+++ b/etc/fstab\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
        );
        let d = super::unified_diff("/etc/x.conf", None, "new\n");
        assert!(d.starts_with("--- /dev/null\n+++ b/etc/x.conf\n"), "{d}");
    }
}
