//! Login consoles: Xen's `xvc0`/`hvc0` become the serial port `ttyS0` in
//! `/etc/securetty` and in `/etc/inittab` getty lines, except where
//! xen-tools moved tty1's getty to the Xen console (inittab id `1`, upstart's
//! tty1 job): that one goes back to `tty1`. (systemd getty links
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
    let getty_on = |tty: &str| {
        text.lines().filter(|l| !is_comment(l)).any(|l| {
            l.split(':')
                .nth(3)
                .is_some_and(|p| p.split_whitespace().any(|w| w == tty))
        })
    };
    let serial_getty = getty_on("ttyS0");
    let tty1_getty = getty_on("tty1");
    let mut moved = serial_getty;
    let mut serial_line = None;
    let mut new = edit_lines(text, |n, line| {
        if is_comment(line) {
            return None;
        }
        let fields: Vec<&str> = line.splitn(4, ':').collect();
        let [id, levels, action, process] = fields.as_slice() else {
            return None;
        };
        let words: Vec<&str> = process.split_whitespace().collect();
        let tty = words.iter().position(|w| is_xen_tty(w))?;
        // xen-tools put the Xen console where tty1's getty was (id 1): it
        // goes back to tty1, and the serial port gets a getty of its own.
        if *id == "1" && !tty1_getty {
            let restored = on_tty(&words, tty, "tty1");
            edit.changes.push(format!(
                "line {n}: getty on {} -> tty1 (xen-tools had replaced tty1's)",
                words[tty]
            ));
            if !moved {
                moved = true;
                serial_line = Some((words[0].to_owned(), levels.to_string()));
            }
            return Some(format!("{id}:{levels}:{action}:{}", restored.join(" ")));
        }
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
    if let Some((getty, levels)) = serial_line {
        let line = format!("T0:{levels}:respawn:{getty} -L ttyS0 115200 vt100");
        crate::text::append_line(&mut new, &line);
        edit.changes.push(format!("added {line}"));
    }
    edit.text = new;
    edit
}

/// A getty's words with the Xen tty at `tty` replaced by `to`, and any
/// other Xen tty on the line dropped.
fn on_tty<'a>(words: &[&'a str], tty: usize, to: &'a str) -> Vec<&'a str> {
    words
        .iter()
        .enumerate()
        .filter(|(i, w)| *i == tty || !is_xen_tty(w))
        .map(|(i, w)| if i == tty { to } else { *w })
        .collect()
}

/// Upstart's `tty1` job (`/etc/init/tty1.conf`, `/etc/event.d/tty1`), whose
/// getty xen-tools moved to a Xen console: back on `tty1`.
pub fn upstart_tty1(text: &str) -> Edit {
    let mut edit = Edit::default();
    let new = edit_lines(text, |n, line| {
        if is_comment(line) || !line.trim_start().starts_with("exec") {
            return None;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let tty = words.iter().position(|w| is_xen_tty(w))?;
        edit.changes.push(format!(
            "line {n}: getty on {} -> tty1 (xen-tools had replaced tty1's)",
            words[tty]
        ));
        let indent = &line[..line.len() - line.trim_start().len()];
        let restored = on_tty(&words, tty, "tty1");
        Some(format!("{indent}{}", restored.join(" ")))
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

    /// xen-tools' sysvinit guests: tty1's getty was moved to hvc0.
    #[test]
    fn xen_tools_tty1_is_restored() {
        check(
            inittab,
            "id:2:initdefault:\n1:2345:respawn:/sbin/getty 38400 hvc0\n#2:23:respawn:/sbin/getty 38400 tty2\n",
            "id:2:initdefault:\n1:2345:respawn:/sbin/getty 38400 tty1\n#2:23:respawn:/sbin/getty 38400 tty2\nT0:2345:respawn:/sbin/getty -L ttyS0 115200 vt100\n",
            &[
                "line 2: getty on hvc0 -> tty1 (xen-tools had replaced tty1's)",
                "added T0:2345:respawn:/sbin/getty -L ttyS0 115200 vt100",
            ],
        );
        check(
            upstart_tty1,
            "start on runlevel [2345]\nrespawn\nexec /sbin/getty -8 38400 hvc0\n",
            "start on runlevel [2345]\nrespawn\nexec /sbin/getty -8 38400 tty1\n",
            &["line 3: getty on hvc0 -> tty1 (xen-tools had replaced tty1's)"],
        );
        check_noop(upstart_tty1, "exec /sbin/getty -8 38400 tty1\n");
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
