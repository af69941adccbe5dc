//! Login consoles: Xen's `xvc0`/`hvc0` become the serial port `ttyS0` in
//! `/etc/securetty` and in `/etc/inittab` getty lines. (systemd getty links
//! for Xen consoles are found by `facts::getty_links` and removed by the
//! `consoles` rule.)

use crate::text::{edit_lines, filter_lines, is_comment};
use crate::Edit;

use xen2kvm_inspector::xen::is_console_tty as is_xen_tty;

/// `/etc/securetty`: the first Xen console becomes `ttyS0` (unless it is
/// already listed), the others are dropped; everything else is kept.
pub fn securetty(text: &str) -> Edit {
    let mut edit = Edit::default();
    let mut has_serial = text.lines().any(|l| l.trim() == "ttyS0");
    let new = filter_lines(text, |n, line| {
        let name = line.trim();
        if is_comment(line) || !is_xen_tty(name) {
            return None;
        }
        if has_serial {
            edit.changes.push(format!("line {n}: {name} removed"));
            Some(None)
        } else {
            has_serial = true;
            edit.changes.push(format!("line {n}: {name} -> ttyS0"));
            Some(Some(line.replace(name, "ttyS0")))
        }
    });
    edit.text = new;
    edit
}

/// `/etc/inittab`: a getty on a Xen console is moved to `ttyS0` (at
/// 115200 baud when it names a speed); when a `ttyS0` getty exists already
/// the Xen one is commented out instead.
pub fn inittab(text: &str) -> Edit {
    let mut edit = Edit::default();
    let serial_getty = text.lines().filter(|l| !is_comment(l)).any(|l| {
        l.split(':')
            .nth(3)
            .is_some_and(|p| p.split_whitespace().any(|w| w == "ttyS0"))
    });
    let mut moved = serial_getty;
    let new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let fields: Vec<&str> = line.splitn(4, ':').collect();
        let [id, levels, action, process] = fields.as_slice() else {
            return None;
        };
        let words: Vec<&str> = process.split_whitespace().collect();
        let tty = words.iter().position(|w| is_xen_tty(w))?;
        if moved {
            edit.changes.push(format!(
                "line {n}: getty on {} commented out (ttyS0 has one)",
                words[tty]
            ));
            return Some(format!("#{line}"));
        }
        moved = true;
        // The first Xen tty becomes ttyS0; any other one on the same line
        // (a line that names two) is dropped, so the line names none.
        let new_words: Vec<String> = words
            .iter()
            .enumerate()
            .filter(|(i, w)| *i == tty || !is_xen_tty(w))
            .map(|(i, w)| {
                if i == tty {
                    "ttyS0".to_owned()
                } else if w.bytes().all(|b| b.is_ascii_digit()) && i + 1 == tty {
                    "115200".to_owned()
                } else {
                    (*w).to_owned()
                }
            })
            .collect();
        edit.changes
            .push(format!("line {n}: getty on {} -> ttyS0", words[tty]));
        Some(format!("{id}:{levels}:{action}:{}", new_words.join(" ")))
    });
    edit.text = new;
    edit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{check, check_noop};

    #[test]
    fn securetty_files() {
        check(
            securetty,
            "console\ntty1\nhvc0\nxvc0\n",
            "console\ntty1\nttyS0\n",
            &["line 3: hvc0 -> ttyS0", "line 4: xvc0 removed"],
        );
        check(
            securetty,
            "tty1\nttyS0\nxvc0\n",
            "tty1\nttyS0\n",
            &["line 3: xvc0 removed"],
        );
        check_noop(securetty, "tty1\nttyS0\n# hvc0\n");
    }

    /// Found by the property tests: a getty line naming two Xen consoles
    /// kept the second, and a second run commented the line out.
    #[test]
    fn a_line_with_two_xen_consoles_names_none_after() {
        check(
            inittab,
            "x0:12345:respawn:/sbin/agetty hvc0 xvc0\n",
            "x0:12345:respawn:/sbin/agetty ttyS0\n",
            &["line 1: getty on hvc0 -> ttyS0"],
        );
    }

    #[test]
    fn sles11_inittab() {
        check(
            inittab,
            "1:2345:respawn:/sbin/mingetty --noclear tty1\nx0:12345:respawn:/sbin/agetty -L 9600 xvc0 xterm\n",
            "1:2345:respawn:/sbin/mingetty --noclear tty1\nx0:12345:respawn:/sbin/agetty -L 115200 ttyS0 xterm\n",
            &["line 2: getty on xvc0 -> ttyS0"],
        );
        check(
            inittab,
            "S0:12345:respawn:/sbin/agetty -L 115200 ttyS0 vt102\nh0:2345:respawn:/sbin/getty 38400 hvc0\n",
            "S0:12345:respawn:/sbin/agetty -L 115200 ttyS0 vt102\n#h0:2345:respawn:/sbin/getty 38400 hvc0\n",
            &["line 2: getty on hvc0 commented out (ttyS0 has one)"],
        );
    }
}
