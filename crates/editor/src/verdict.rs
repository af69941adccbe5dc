//! The readiness verdict: `blocked` comes from the facts (no kernel that
//! boots on KVM); otherwise the guest needs exactly what the plan would do,
//! grouped by rule. `inspect` computes it on the read-only guest, so what it
//! says a guest needs is what `convert` does.

use std::io;

use xen2kvm_inspector::facts::{self, Verdict};
use xen2kvm_vfs::GuestFs;

use crate::model::{Plan, Step};
use crate::planner::Ctx;
use crate::rules::{plan, RULES};

/// The verdict for the guest `fs` (only reads).
pub fn verdict(fs: &dyn GuestFs, ctx: &Ctx<'_>) -> io::Result<Verdict> {
    if let Some(b) = facts::blocked(ctx.facts) {
        return Ok(b);
    }
    let plan = plan(fs, ctx)?;
    if let Some(b) = blocked(&plan) {
        return Ok(b);
    }
    let needs = needs(&plan);
    Ok(if needs.is_empty() {
        Verdict::Ready
    } else {
        Verdict::Needs(needs)
    })
}

/// The plan's blockers as a verdict (`None` when it has none).
pub fn blocked(plan: &Plan) -> Option<Verdict> {
    if plan.blockers.is_empty() {
        return None;
    }
    let join = |f: &dyn Fn(&crate::model::Blocker) -> String| {
        plan.blockers.iter().map(f).collect::<Vec<_>>().join("; ")
    };
    Some(Verdict::Blocked {
        reason: join(&|b| format!("{} ({})", b.reason, b.target)),
        remedy: join(&|b| b.remedy.clone()),
    })
}

/// One line per rule that would act, in the order of [`RULES`]: the files
/// and links it changes, the commands it runs, and its warnings.
pub fn needs(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for rule in RULES {
        let changes: Vec<&str> = plan
            .changes
            .iter()
            .filter(|c| c.rule == rule.name)
            .map(|c| c.target.as_str())
            .collect();
        if !changes.is_empty() {
            let mut targets = changes.clone();
            targets.dedup();
            out.push(format!(
                "{}: {} change(s) in {}",
                rule.name,
                changes.len(),
                targets.join(", ")
            ));
        }
        for s in plan.steps.iter().filter(|s| s.rule == rule.name) {
            out.push(format!("{}: {}", rule.name, summary(&s.step)));
        }
        for w in plan.warnings.iter().filter(|w| w.rule == rule.name) {
            out.push(format!("{}: warning: {}: {}", rule.name, w.target, w.what));
        }
    }
    out
}

/// A step in a few words (the full command is in `--dry-run`).
fn summary(step: &Step) -> String {
    match step {
        Step::RebuildInitrd {
            kernel,
            initrd,
            argv,
            ..
        } => format!(
            "rebuild {initrd} for {kernel} with {} (virtio drivers in)",
            argv.first().map_or("", String::as_str)
        ),
        // The device is the appliance's name for the disk: not the user's.
        Step::GrubInstall { argv, .. } => format!(
            "install GRUB's boot code with {} on the disk that holds / (it has none: the Xen host booted it with pygrub)",
            argv.first().map_or("", String::as_str)
        ),
        Step::GrubMkconfig { output, .. } => format!("regenerate {output}"),
        Step::Grub2Default { image, .. } => {
            format!("make the menu entry that boots {image} the default")
        }
    }
}
