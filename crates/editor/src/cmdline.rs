//! Kernel command lines: in `/etc/default/grub` (every `GRUB_CMDLINE_LINUX*`
//! variable) and its `grub.d/*.cfg` snippets, in every GRUB legacy `kernel` line, and in SUSE's
//! `/etc/sysconfig/bootloader` `*_APPEND` keys.
//!
//! Device arguments (`root=`, `resume=`, `disk=`, …) naming Xen disks are
//! remapped; `console=xvc*`, `console=hvc*` and `xencons=` are removed; and
//! the line that boots the guest gets `console=ttyS0,115200` once, preceded
//! by `console=tty0` when no other console is left, so the kernel and the
//! login prompt reach both the serial port and the screen.

use crate::devices::{remap_in, Place};
use crate::text::{append_line, edit_lines, is_comment, Assign};
use crate::Edit;

/// The serial console a converted guest gets.
pub const SERIAL: &str = "console=ttyS0,115200";

use xen2kvm_inspector::xen::{self, is_console_arg as is_xen_console, DiskMap};

fn is_serial(arg: &str) -> bool {
    arg == "console=ttyS0" || arg.starts_with("console=ttyS0,")
}

/// What to do with consoles on one command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consoles {
    /// Remove Xen consoles, and make sure the serial console is there once.
    Serial,
    /// Only remove Xen consoles (options added to another line, e.g. SUSE's
    /// `GRUB_CMDLINE_LINUX_RECOVERY`, which follows `GRUB_CMDLINE_LINUX`).
    RemoveXen,
}

/// Rewrites one command line (space-separated arguments). Changes are
/// described in `changes`; the result is `args` joined by single spaces when
/// anything changed, else the input unchanged.
pub fn rewrite(
    line: &str,
    consoles: Consoles,
    disks: &DiskMap,
    changes: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> String {
    let mut args: Vec<String> = Vec::new();
    let mut changed = false;
    for arg in line.split_whitespace() {
        if is_xen_console(arg) {
            changes.push(format!("removed {arg}"));
            changed = true;
            continue;
        }
        let (new, pairs, notes) = remap_in(arg, disks, Place::Spec);
        warnings.extend(notes);
        if !pairs.is_empty() {
            changes.push(format!("{arg} -> {new}"));
            changed = true;
        }
        args.push(new);
    }
    if consoles == Consoles::Serial {
        let serial: Vec<usize> = (0..args.len()).filter(|&i| is_serial(&args[i])).collect();
        for &i in serial.iter().skip(1).rev() {
            changes.push(format!("removed duplicate {}", args[i]));
            args.remove(i);
            changed = true;
        }
        if serial.is_empty() {
            let others = args
                .iter()
                .any(|a| a.starts_with("console=") && !is_serial(a));
            if !others {
                args.push("console=tty0".to_owned());
                changes.push("added console=tty0".to_owned());
            }
            args.push(SERIAL.to_owned());
            changes.push(format!("added {SERIAL}"));
            changed = true;
        }
    }
    if changed {
        args.join(" ")
    } else {
        line.to_owned()
    }
}

/// Adds one line's changes (as `line N: LABEL: a, b`) and warnings to
/// `edit`; whether there were changes.
fn record(
    edit: &mut Edit,
    n: usize,
    label: &str,
    changes: Vec<String>,
    warnings: Vec<String>,
) -> bool {
    for w in warnings {
        edit.warnings.push(format!("line {n}: {w}"));
    }
    if changes.is_empty() {
        return false;
    }
    edit.changes
        .push(format!("line {n}: {label}: {}", changes.join(", ")));
    true
}

/// Whether `line`'s arguments include a serial console.
fn has_serial(line: &str) -> bool {
    line.split_whitespace().any(is_serial)
}

/// `/etc/default/grub`. The serial console goes into `GRUB_CMDLINE_LINUX`
/// (used by normal and recovery entries alike) unless `…_LINUX_DEFAULT`
/// already has one; the line is added when the file has none.
pub fn default_grub(text: &str, disks: &DiskMap) -> Edit {
    let mut edit = Edit::default();
    let vars: Vec<(usize, String, String)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !is_comment(l))
        .filter_map(|(i, l)| {
            Assign::parse(l).map(|a| (i + 1, a.key.to_owned(), a.value.to_owned()))
        })
        .filter(|(_, k, _)| is_linux_cmdline(k))
        .collect();
    let has = |key: &str| vars.iter().any(|(_, k, _)| k == key);
    // Where the serial console belongs.
    let serial_in_default = vars
        .iter()
        .any(|(_, k, v)| k == "GRUB_CMDLINE_LINUX_DEFAULT" && has_serial(v));
    let serial_key =
        if serial_in_default || !has("GRUB_CMDLINE_LINUX") && has("GRUB_CMDLINE_LINUX_DEFAULT") {
            "GRUB_CMDLINE_LINUX_DEFAULT"
        } else {
            "GRUB_CMDLINE_LINUX"
        };
    // The last assignment of the key wins in a sourced file.
    let serial_line = vars
        .iter()
        .rev()
        .find(|(_, k, _)| k == serial_key)
        .map(|(n, _, _)| *n);
    let mut text_out = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let a = Assign::parse(line)?;
        if !is_linux_cmdline(a.key) {
            return None;
        }
        let mode = if Some(n) == serial_line {
            Consoles::Serial
        } else {
            Consoles::RemoveXen
        };
        let mut changes = Vec::new();
        let mut warnings = Vec::new();
        let mut value = rewrite(a.value, mode, disks, &mut changes, &mut warnings);
        // A serial console elsewhere is a duplicate of the one kept.
        if mode == Consoles::RemoveXen && has_serial(&value) {
            let kept: Vec<&str> = value.split_whitespace().filter(|x| !is_serial(x)).collect();
            changes.push(format!("removed a second {SERIAL} (kept in {serial_key})"));
            value = kept.join(" ");
        }
        record(&mut edit, n, a.key, changes, warnings).then(|| a.with_value(&value))
    });
    if serial_line.is_none() {
        let mut c = Vec::new();
        let value = rewrite("", Consoles::Serial, disks, &mut c, &mut Vec::new());
        append_line(&mut text_out, &format!("{serial_key}=\"{value}\""));
        edit.changes.push(format!("added {serial_key}=\"{value}\""));
    }
    grub_terminal(&mut text_out, &mut edit.changes);
    edit.text = text_out;
    edit
}

/// A `/etc/default/grub.d/*.cfg` snippet (sourced after
/// `/etc/default/grub` by `grub-mkconfig`): Xen disks remapped and Xen
/// consoles removed on every Linux command line. A line that sets the
/// variable outright (it does not refer to `$VAR`) replaces what
/// `/etc/default/grub` says, so where it had a Xen console it gets the
/// serial console instead; a line that appends keeps the one already there.
pub fn default_grub_snippet(text: &str, disks: &DiskMap) -> Edit {
    let mut edit = Edit::default();
    let out = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let a = Assign::parse(line)?;
        if !is_linux_cmdline(a.key) {
            return None;
        }
        let overrides = !a.value.contains('$');
        let had_xen_console = a.value.split_whitespace().any(is_xen_console);
        let mode = if overrides && had_xen_console {
            Consoles::Serial
        } else {
            Consoles::RemoveXen
        };
        let mut changes = Vec::new();
        let mut warnings = Vec::new();
        let value = rewrite(a.value, mode, disks, &mut changes, &mut warnings);
        record(&mut edit, n, a.key, changes, warnings).then(|| a.with_value(&value))
    });
    edit.text = out;
    edit
}

/// GRUB's own menu on the serial port too (`GRUB_TERMINAL` with `serial`,
/// and a `GRUB_SERIAL_COMMAND`), as YaST does for a serial console: a KVM
/// guest run headless shows its boot menu, and GRUB's errors, on ttyS0.
fn grub_terminal(text: &mut String, changes: &mut Vec<String>) {
    let mut terminal = None;
    let mut serial_command = false;
    for (i, line) in text.lines().enumerate() {
        if is_comment(line) {
            continue;
        }
        if let Some(a) = Assign::parse(line) {
            match a.key {
                "GRUB_TERMINAL" | "GRUB_TERMINAL_OUTPUT" => {
                    terminal = Some((i + 1, a.key.to_owned(), a.value.to_owned()))
                }
                "GRUB_SERIAL_COMMAND" => serial_command = true,
                _ => {}
            }
        }
    }
    match terminal {
        None => {
            append_line(text, "GRUB_TERMINAL=\"console serial\"");
            changes.push("added GRUB_TERMINAL=\"console serial\"".to_owned());
        }
        Some((n, key, value)) if !value.split_whitespace().any(|t| t == "serial") => {
            let new_value = format!("{} serial", value.trim()).trim().to_owned();
            *text = edit_lines(text, |m, line| {
                let a = Assign::parse(line).filter(|_| m == n)?;
                Some(a.with_value(&new_value))
            });
            changes.push(format!("line {n}: {key}: added serial"));
        }
        Some(_) => {}
    }
    if !serial_command {
        append_line(
            text,
            "GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"",
        );
        changes.push("added GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"".to_owned());
    }
}

/// `GRUB_CMDLINE_LINUX`, `…_DEFAULT`, `…_RECOVERY`: the Linux command lines
/// (not the `…XEN…` ones, which are the hypervisor's, for a dom0).
fn is_linux_cmdline(key: &str) -> bool {
    xen::is_guest_cmdline_key(key)
}

/// GRUB legacy `menu.lst`/`grub.conf`: every `kernel` line except a Xen
/// hypervisor's (`xen.gz`, whose `module` lines are left too).
pub fn legacy_menu(text: &str, disks: &DiskMap) -> Edit {
    let mut edit = Edit::default();
    let new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let (key, rest) = body.split_once(|c: char| c.is_whitespace() || c == '=')?;
        if key != "kernel" {
            return None;
        }
        let sep = &body[key.len()..body.len() - rest.len()];
        let rest = rest.trim_start();
        let (image, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if xen::is_hypervisor_image(image) {
            return None;
        }
        let mut changes = Vec::new();
        let mut warnings = Vec::new();
        let args = rewrite(args, Consoles::Serial, disks, &mut changes, &mut warnings);
        if !record(&mut edit, n, &format!("kernel {image}"), changes, warnings) {
            return None;
        }
        Some(format!("{indent}{key}{sep}{image} {args}"))
    });
    edit.text = new;
    edit
}

/// SUSE `/etc/sysconfig/bootloader`: every `*_APPEND` key but `XEN_APPEND`
/// (the hypervisor's) is remapped and loses Xen consoles; `DEFAULT_APPEND`,
/// which perl-Bootloader uses for new kernels' entries, gets the serial
/// console.
pub fn sysconfig_bootloader(text: &str, disks: &DiskMap) -> Edit {
    let mut edit = Edit::default();
    let new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let a = Assign::parse(line)?;
        if !xen::is_guest_append_key(a.key) {
            return None;
        }
        let mode = if a.key == "DEFAULT_APPEND" {
            Consoles::Serial
        } else {
            Consoles::RemoveXen
        };
        let mut changes = Vec::new();
        let mut warnings = Vec::new();
        let value = rewrite(a.value, mode, disks, &mut changes, &mut warnings);
        record(&mut edit, n, a.key, changes, warnings).then(|| a.with_value(&value))
    });
    edit.text = new;
    edit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{check, check_noop};

    #[test]
    fn one_line() {
        let mut c = Vec::new();
        let mut w = Vec::new();
        let out = rewrite(
            "root=/dev/xvda2 resume=/dev/xvda1 splash=silent xencons=xvc0 console=xvc0",
            Consoles::Serial,
            &DiskMap::BY_LETTER,
            &mut c,
            &mut w,
        );
        assert_eq!(
            out,
            "root=/dev/vda2 resume=/dev/vda1 splash=silent console=tty0 console=ttyS0,115200"
        );
        assert!(w.is_empty());
        let mut c2 = Vec::new();
        assert_eq!(
            rewrite(&out, Consoles::Serial, &DiskMap::BY_LETTER, &mut c2, &mut w),
            out
        );
        assert!(c2.is_empty(), "{c2:?}");
        // Another console stays, and then tty0 is not added.
        let out = rewrite(
            "quiet console=tty1 console=hvc0",
            Consoles::Serial,
            &DiskMap::BY_LETTER,
            &mut c,
            &mut w,
        );
        assert_eq!(out, "quiet console=tty1 console=ttyS0,115200");
        let out = rewrite(
            "console=ttyS0 console=ttyS0,9600",
            Consoles::Serial,
            &DiskMap::BY_LETTER,
            &mut c,
            &mut w,
        );
        assert_eq!(out, "console=ttyS0");
    }

    #[test]
    fn debian_default_grub() {
        check(
            |t| default_grub(t, &DiskMap::BY_LETTER),
            r#"GRUB_DEFAULT=0
GRUB_CMDLINE_LINUX_DEFAULT="root=/dev/xvda1 console=hvc0"
GRUB_CMDLINE_LINUX=""
"#,
            r#"GRUB_DEFAULT=0
GRUB_CMDLINE_LINUX_DEFAULT="root=/dev/vda1"
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
"#,
            &[
                "line 2: GRUB_CMDLINE_LINUX_DEFAULT: root=/dev/xvda1 -> root=/dev/vda1, removed console=hvc0",
                "line 3: GRUB_CMDLINE_LINUX: added console=tty0, added console=ttyS0,115200",
                "added GRUB_TERMINAL=\"console serial\"",
                "added GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"",
            ],
        );
    }

    #[test]
    fn suse_default_grub() {
        check(
            |t| default_grub(t, &DiskMap::BY_LETTER),
            r#"GRUB_DEFAULT=saved
GRUB_CMDLINE_LINUX_DEFAULT="console=hvc0 resume=/dev/disk/by-uuid/0b7e splash=silent quiet showopts"
GRUB_CMDLINE_LINUX=""
GRUB_CMDLINE_LINUX_RECOVERY="showopts xencons=hvc0 noresume"
GRUB_CMDLINE_XEN_DEFAULT="vga=gfx-1024x768x16 console=hvc0"
GRUB_TERMINAL="console"
"#,
            r#"GRUB_DEFAULT=saved
GRUB_CMDLINE_LINUX_DEFAULT="resume=/dev/disk/by-uuid/0b7e splash=silent quiet showopts"
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200"
GRUB_CMDLINE_LINUX_RECOVERY="showopts noresume"
GRUB_CMDLINE_XEN_DEFAULT="vga=gfx-1024x768x16 console=hvc0"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
"#,
            &[
                "line 2: GRUB_CMDLINE_LINUX_DEFAULT: removed console=hvc0",
                "line 3: GRUB_CMDLINE_LINUX: added console=tty0, added console=ttyS0,115200",
                "line 4: GRUB_CMDLINE_LINUX_RECOVERY: removed xencons=hvc0",
                "line 6: GRUB_TERMINAL: added serial",
                "added GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"",
            ],
        );
    }

    #[test]
    fn default_grub_without_cmdline_gets_one() {
        check(
            |t| default_grub(t, &DiskMap::BY_LETTER),
            "GRUB_TIMEOUT=5",
            "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200\"\nGRUB_TERMINAL=\"console serial\"\nGRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"\n",
            &[
                "added GRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200\"",
                "added GRUB_TERMINAL=\"console serial\"",
                "added GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"",
            ],
        );
        check_noop(
            |t| default_grub(t, &DiskMap::BY_LETTER),
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet console=ttyS0,115200\"\nGRUB_CMDLINE_LINUX=\"\"\nGRUB_TERMINAL=serial\nGRUB_SERIAL_COMMAND=\"serial\"\n",
        );
    }

    #[test]
    fn sles11_menu_lst() {
        check(
            |t| legacy_menu(t, &DiskMap::BY_LETTER),
            "default 0\ntitle Xen -- SLES 11\n    root (hd0,1)\n    kernel /boot/vmlinuz-3.0.101-63-xen root=/dev/xvda2 resume=/dev/xvda1 splash=silent showopts xencons=xvc0 console=xvc0\n    initrd /boot/initrd-3.0.101-63-xen\ntitle Xen host\n    kernel /boot/xen.gz dom0_mem=1G\n    module /boot/vmlinuz-xen root=/dev/xvda2 console=hvc0\n",
            "default 0\ntitle Xen -- SLES 11\n    root (hd0,1)\n    kernel /boot/vmlinuz-3.0.101-63-xen root=/dev/vda2 resume=/dev/vda1 splash=silent showopts console=tty0 console=ttyS0,115200\n    initrd /boot/initrd-3.0.101-63-xen\ntitle Xen host\n    kernel /boot/xen.gz dom0_mem=1G\n    module /boot/vmlinuz-xen root=/dev/xvda2 console=hvc0\n",
            &["line 4: kernel /boot/vmlinuz-3.0.101-63-xen: root=/dev/xvda2 -> root=/dev/vda2, resume=/dev/xvda1 -> resume=/dev/vda1, removed xencons=xvc0, removed console=xvc0, added console=tty0, added console=ttyS0,115200"],
        );
    }

    #[test]
    fn sles11_sysconfig_bootloader() {
        check(
            |t| sysconfig_bootloader(t, &DiskMap::BY_LETTER),
            "LOADER_TYPE=\"grub\"\nDEFAULT_APPEND=\"resume=/dev/xvda1 splash=silent showopts\"\nXEN_KERNEL_APPEND=\"resume=/dev/xvda1 console=xvc0\"\nXEN_APPEND=\"\"\n",
            "LOADER_TYPE=\"grub\"\nDEFAULT_APPEND=\"resume=/dev/vda1 splash=silent showopts console=tty0 console=ttyS0,115200\"\nXEN_KERNEL_APPEND=\"resume=/dev/vda1\"\nXEN_APPEND=\"\"\n",
            &[
                "line 2: DEFAULT_APPEND: resume=/dev/xvda1 -> resume=/dev/vda1, added console=tty0, added console=ttyS0,115200",
                "line 3: XEN_KERNEL_APPEND: resume=/dev/xvda1 -> resume=/dev/vda1, removed console=xvc0",
            ],
        );
    }
}
