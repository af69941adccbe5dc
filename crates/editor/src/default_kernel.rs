//! The default boot entry: the chosen kernel (not Xen-only, with virtio,
//! newest first) becomes what the bootloader boots.
//!
//! GRUB legacy is edited here (`default N`, and a section for the kernel
//! when the menu has none). GRUB 2's menu is generated, so its default is set
//! after `grub-mkconfig` from the new `grub.cfg` (`Step::Grub2Default`,
//! decided at plan time): in `grubenv` when `GRUB_DEFAULT=saved`, else in
//! `GRUB_DEFAULT`. And so that the next kernel update keeps it that way,
//! RHEL's `DEFAULTKERNEL` names the chosen kernel's package, not
//! `kernel-xen` ([`sysconfig_defaultkernel`]).

use crate::text::{edit_lines, ending_of, is_comment, Assign};
use crate::Edit;

/// A GRUB legacy section, as far as choosing a default needs.
#[derive(Debug)]
struct Section {
    /// 0-based line of its `title`.
    start: usize,
    /// One past its last line.
    end: usize,
    title: String,
    kernel: Option<String>,
}

fn sections(text: &str) -> (Vec<Section>, Option<(usize, usize)>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<Section> = Vec::new();
    let mut default = None;
    for (i, line) in lines.iter().enumerate() {
        if is_comment(line) {
            continue;
        }
        let body = line.trim();
        let (key, value) = body
            .split_once(|c: char| c.is_whitespace() || c == '=')
            .map_or((body, ""), |(k, v)| (k, v.trim()));
        match key {
            "default" if out.is_empty() => {
                default = value.parse().ok().map(|n| (i, n));
            }
            "title" => {
                if let Some(last) = out.last_mut() {
                    last.end = i;
                }
                out.push(Section {
                    start: i,
                    end: lines.len(),
                    title: value.to_owned(),
                    kernel: None,
                });
            }
            "kernel" => {
                if let Some(last) = out.last_mut() {
                    let k = value.split_whitespace().next().unwrap_or("");
                    let k = k.rsplit(')').next().unwrap_or(k);
                    last.kernel = Some(k.to_owned());
                }
            }
            _ => {}
        }
    }
    // A section ends before the comments that precede the next one.
    for s in 0..out.len().saturating_sub(1) {
        let mut end = out[s].end;
        while end > out[s].start + 1 && lines[end - 1].trim_start().starts_with('#') {
            end -= 1;
        }
        out[s].end = end;
    }
    (out, default)
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// GRUB legacy: makes the section booting `image` (kernel file name) the
/// default; adds one, copied from the current default section with the
/// kernel and `initrd` replaced, when the menu has none.
pub fn legacy_menu(text: &str, image: &str, initrd: Option<&str>, title: &str) -> Edit {
    let mut edit = Edit::default();
    let (secs, default) = sections(text);
    let current = default.map_or(0, |(_, n)| n);
    let wanted = secs
        .iter()
        .position(|s| s.kernel.as_deref().map(base) == Some(image));
    let nl = ending_of(text);
    let mut out = text.to_owned();
    let index = match wanted {
        Some(i) => i,
        None => {
            // The model must boot a kernel: a section without a `kernel`
            // line (a chainloader, a broken entry) cannot be copied into
            // one that boots `image`.
            let has_kernel = |s: &&Section| s.kernel.is_some();
            let Some(model) = secs
                .get(current)
                .filter(has_kernel)
                .or_else(|| secs.iter().find(has_kernel))
            else {
                edit.warnings.push(format!(
                    "no menu section with a kernel line to copy for {image}; left the menu as it is"
                ));
                edit.text = out;
                return edit;
            };
            let lines: Vec<&str> = text.lines().collect();
            let mut section = String::new();
            for line in &lines[model.start..model.end] {
                let body = line.trim_start();
                let indent = &line[..line.len() - body.len()];
                let mut words = body.splitn(2, char::is_whitespace);
                let key = words.next().unwrap_or("");
                let rest = words.next().unwrap_or("").trim_start();
                let (path, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let dir = &path[..path.len() - base(path).len()];
                let new = match (key, initrd) {
                    ("title", _) => format!("{indent}title {title}"),
                    ("kernel", _) => format!("{indent}kernel {dir}{image} {args}")
                        .trim_end()
                        .to_owned(),
                    ("initrd", Some(i)) => format!("{indent}initrd {dir}{i}"),
                    ("initrd", None) => continue,
                    _ => (*line).to_owned(),
                };
                section.push_str(&new);
                section.push_str(nl);
            }
            if !out.ends_with('\n') {
                out.push_str(nl);
            }
            out.push_str(nl);
            out.push_str(&section);
            edit.changes.push(format!(
                "added section \"{title}\" for {image} (copied from \"{}\")",
                model.title
            ));
            secs.len()
        }
    };
    if index == current && default.is_some() {
        edit.text = out;
        return edit;
    }
    match default {
        Some((line_no, _)) => {
            out = edit_lines(&out, |n, line| {
                if n != line_no + 1 {
                    return None;
                }
                let body = line.trim_start();
                let sep = body[7..]
                    .chars()
                    .next()
                    .filter(|c| *c == '=')
                    .map_or(" ", |_| "=");
                Some(format!(
                    "{}default{sep}{index}",
                    &line[..line.len() - body.len()]
                ))
            });
        }
        None => {
            out = format!("default {index}{nl}{out}");
        }
    }
    let now = secs.get(current).map_or("none", |s| s.title.as_str());
    edit.changes.push(format!(
        "default {current} (\"{now}\") -> {index} ({image})"
    ));
    edit.text = out;
    edit
}

/// GRUB 2 `grubenv`: sets `key=value` in the 1024-byte environment block the
/// way `grub-editenv` does (same size, `#` padding). `None` when the result
/// would not fit or the block is not a GRUB environment block.
pub fn grubenv_set(block: &str, key: &str, value: &str) -> Option<String> {
    const HEADER: &str = "# GRUB Environment Block\n";
    let body = block.strip_prefix(HEADER)?;
    let size = block.len();
    let mut vars: Vec<String> = body
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(str::to_owned)
        .collect();
    let line = format!("{key}={value}");
    match vars.iter_mut().find(|l| l.split('=').next() == Some(key)) {
        Some(l) => *l = line,
        None => vars.push(line),
    }
    let mut out = HEADER.to_owned();
    for v in &vars {
        out.push_str(v);
        out.push('\n');
    }
    let size = size.max(1024);
    if out.len() > size {
        return None;
    }
    out.push_str(&"#".repeat(size - out.len()));
    Some(out)
}

/// `/etc/default/grub`: `GRUB_DEFAULT` set to `value` (added when absent).
pub fn default_grub_default(text: &str, value: &str) -> Edit {
    let mut edit = Edit::default();
    let mut found = false;
    let mut out = edit_lines(text, |n, line| {
        let a = Assign::parse(line)?;
        if a.key != "GRUB_DEFAULT" || is_comment(line) {
            return None;
        }
        found = true;
        if a.value == value {
            return None;
        }
        edit.changes
            .push(format!("line {n}: GRUB_DEFAULT: {} -> {value}", a.value));
        let quoted = if a.quote.is_empty() { "\"" } else { a.quote };
        Some(format!(
            "{}GRUB_DEFAULT={quoted}{value}{quoted}{}",
            a.prefix, a.suffix
        ))
    });
    if !found {
        crate::text::append_line(&mut out, &format!("GRUB_DEFAULT=\"{value}\""));
        edit.changes.push(format!("added GRUB_DEFAULT=\"{value}\""));
    }
    edit.text = out;
    edit
}

/// RHEL's `/etc/sysconfig/kernel`: `DEFAULTKERNEL=kernel-xen` (the next
/// kernel update would become the default entry, on Xen's kernel) becomes
/// `DEFAULTKERNEL=package`; every other line is kept.
pub fn sysconfig_defaultkernel(text: &str, package: &str) -> Edit {
    let mut edit = Edit::default();
    edit.text = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let a = Assign::parse(line)?;
        if a.key != "DEFAULTKERNEL" || !xen2kvm_inspector::xen::is_xen_kernel_package(a.value) {
            return None;
        }
        edit.changes
            .push(format!("line {n}: DEFAULTKERNEL: {} -> {package}", a.value));
        Some(a.with_value(package))
    });
    edit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::check;

    const MENU: &str = "# Modified by YaST2.\ndefault 0\ntimeout 8\n\n###Don't change this comment - YaST2 identifier: Original name: xen###\ntitle Xen -- SLES 11 SP4 - 3.0.101-63\n    root (hd0,1)\n    kernel /boot/vmlinuz-3.0.101-63-xen root=/dev/xvda2\n    initrd /boot/initrd-3.0.101-63-xen\n\n###Don't change this comment - YaST2 identifier: Original name: linux###\ntitle SLES 11 SP4 - 3.0.101-63\n    root (hd0,1)\n    kernel (hd0,1)/boot/vmlinuz-3.0.101-63-default root=/dev/xvda2\n    initrd /boot/initrd-3.0.101-63-default\n";

    #[test]
    fn rhel_defaultkernel_leaves_kernel_xen() {
        check(
            |t| sysconfig_defaultkernel(t, "kernel"),
            "# UPDATEDEFAULT specifies if new-kernel-pkg should make\nUPDATEDEFAULT=yes\nDEFAULTKERNEL=kernel-xen\n",
            "# UPDATEDEFAULT specifies if new-kernel-pkg should make\nUPDATEDEFAULT=yes\nDEFAULTKERNEL=kernel\n",
            &["line 3: DEFAULTKERNEL: kernel-xen -> kernel"],
        );
        crate::tests::check_noop(
            |t| sysconfig_defaultkernel(t, "kernel"),
            "DEFAULTKERNEL=kernel-PAE\n",
        );
    }

    /// Found by the property tests: a default section without a `kernel`
    /// line was copied (and copied again on every run).
    #[test]
    fn never_copies_a_section_without_a_kernel() {
        let menu = "default 0\ntitle chainload\n    chainloader +1\n";
        let e = legacy_menu(menu, "vmlinuz-6.1", None, "Linux 6.1");
        assert_eq!(e.text, menu);
        assert!(e.changes.is_empty());
        assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
    }

    #[test]
    fn picks_the_existing_section() {
        let e = legacy_menu(
            MENU,
            "vmlinuz-3.0.101-63-default",
            Some("initrd-3.0.101-63-default"),
            "x",
        );
        assert_eq!(e.text, MENU.replace("default 0", "default 1"));
        assert_eq!(
            e.changes,
            ["default 0 (\"Xen -- SLES 11 SP4 - 3.0.101-63\") -> 1 (vmlinuz-3.0.101-63-default)"]
        );
        let again = legacy_menu(&e.text, "vmlinuz-3.0.101-63-default", None, "x");
        assert!(again.changes.is_empty());
        assert_eq!(again.text, e.text);
    }

    #[test]
    fn adds_a_section_when_there_is_none() {
        check(
            |t| legacy_menu(t, "vmlinuz-2.6.32-754.el6.x86_64", Some("initramfs-2.6.32-754.el6.x86_64.img"), "CentOS (2.6.32-754.el6.x86_64)"),
            "default=0\ntitle CentOS xen\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.18-xen ro root=/dev/xvda2\n\tinitrd /initrd-2.6.18-xen.img\n",
            "default=1\ntitle CentOS xen\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.18-xen ro root=/dev/xvda2\n\tinitrd /initrd-2.6.18-xen.img\n\ntitle CentOS (2.6.32-754.el6.x86_64)\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.32-754.el6.x86_64 ro root=/dev/xvda2\n\tinitrd /initramfs-2.6.32-754.el6.x86_64.img\n",
            &[
                "added section \"CentOS (2.6.32-754.el6.x86_64)\" for vmlinuz-2.6.32-754.el6.x86_64 (copied from \"CentOS xen\")",
                "default 0 (\"CentOS xen\") -> 1 (vmlinuz-2.6.32-754.el6.x86_64)",
            ],
        );
    }

    #[test]
    fn grubenv() {
        let mut block = "# GRUB Environment Block\nsaved_entry=SLES 12-SP5\n".to_owned();
        block.push_str(&"#".repeat(1024 - block.len()));
        let out = grubenv_set(
            &block,
            "saved_entry",
            "gnulinux-advanced-x>gnulinux-4.12-advanced-x",
        )
        .unwrap();
        assert_eq!(out.len(), 1024);
        assert!(out.starts_with(
            "# GRUB Environment Block\nsaved_entry=gnulinux-advanced-x>gnulinux-4.12-advanced-x\n#"
        ));
        assert_eq!(
            grubenv_set(
                &out,
                "saved_entry",
                "gnulinux-advanced-x>gnulinux-4.12-advanced-x"
            )
            .unwrap(),
            out
        );
        assert!(grubenv_set("garbage", "a", "b").is_none());
        assert!(grubenv_set(&block, "k", &"v".repeat(2000)).is_none());
    }

    #[test]
    fn grub_default_key() {
        check(
            |t| default_grub_default(t, "gnulinux-advanced-x>gnulinux-6.1-advanced-x"),
            "GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n",
            "GRUB_DEFAULT=\"gnulinux-advanced-x>gnulinux-6.1-advanced-x\"\nGRUB_TIMEOUT=5\n",
            &["line 1: GRUB_DEFAULT: 0 -> gnulinux-advanced-x>gnulinux-6.1-advanced-x"],
        );
    }
}
