//! Explains a boot that said too little: read the guest's default boot entry
//! (read-only), then boot the same kernel, initrd and command line directly,
//! with the console moved to the serial port.
//!
//! A Xen PV guest's console is `hvc0`, so under QEMU its serial log stays
//! empty after GRUB, and systemd then waits for `/dev/xvda1` with no time
//! limit: neither an error nor a shell ever shows. The diagnostic boot makes
//! that wait visible.

use std::io;

use xen2kvm_vfs::{GuestFs, GuestPath};

use xen2kvm_inspector::bootconf::{self, BootEntry};

/// Kernel and initrd of the guest's default entry, read from the guest.
pub struct DiagInput {
    /// The default boot entry.
    pub entry: BootEntry,
    /// The kernel image's bytes.
    pub kernel: Vec<u8>,
    /// The initrd's bytes, when the entry has one.
    pub initrd: Option<Vec<u8>>,
}

/// Reads the default entry and its files; `Err` says why that is impossible.
pub fn read_input(fs: &dyn GuestFs) -> io::Result<Result<DiagInput, String>> {
    let Some(entry) = bootconf::default_entry(fs)? else {
        return Ok(Err(
            "the guest has no GRUB configuration (grub.cfg, menu.lst or grub.conf): nothing to boot from its disk".to_owned(),
        ));
    };
    let Some(kernel) = read_boot_file(fs, &entry.kernel)? else {
        return Ok(Err(format!(
            "the default entry's kernel {} is not in the guest",
            entry.kernel
        )));
    };
    let initrd = match &entry.initrd {
        Some(i) => match read_boot_file(fs, i)? {
            Some(b) => Some(b),
            None => {
                return Ok(Err(format!(
                    "the default entry's initrd {i} is not in the guest"
                )))
            }
        },
        None => None,
    };
    Ok(Ok(DiagInput {
        entry,
        kernel,
        initrd,
    }))
}

/// A file named by a boot entry: the path as written, or under `/boot` when
/// `/boot` is its own partition (the config then says `/vmlinuz-…`).
fn read_boot_file(fs: &dyn GuestFs, path: &str) -> io::Result<Option<Vec<u8>>> {
    let Ok(p) = GuestPath::new(path) else {
        return Ok(None);
    };
    if let Some(b) = fs.read(&p)? {
        return Ok(Some(b));
    }
    match GuestPath::new(&format!("/boot{path}")) {
        Ok(p) => fs.read(&p),
        Err(_) => Ok(None),
    }
}

/// The command line for the diagnostic boot: Xen consoles and `quiet` out,
/// `console=ttyS0` in, and systemd's status shown.
pub fn diagnostic_cmdline(cmdline: &str) -> String {
    let mut out: Vec<&str> = cmdline
        .split_whitespace()
        .filter(|w| !is_xen_console(w) && *w != "quiet" && !w.starts_with("splash"))
        .filter(|w| !w.starts_with("console=ttyS0"))
        .collect();
    out.extend(["console=ttyS0,115200", "systemd.show_status=1"]);
    out.join(" ")
}

fn is_xen_console(word: &str) -> bool {
    word.starts_with("xencons=")
        || word
            .strip_prefix("console=")
            .is_some_and(|c| c.starts_with("hvc") || c.starts_with("xvc"))
}

/// What the command line says about where the kernel console goes, when
/// that explains an empty serial log.
pub fn console_note(entry: &BootEntry) -> Option<String> {
    let consoles: Vec<&str> = entry
        .cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("console="))
        .collect();
    let xen: Vec<&str> = consoles
        .iter()
        .copied()
        .filter(|c| c.starts_with("hvc") || c.starts_with("xvc"))
        .collect();
    let on_serial = consoles.iter().any(|c| c.starts_with("ttyS"));
    let src = format!(
        "the kernel command line of {:?} in {}",
        entry.title, entry.config
    );
    if let (Some(last), false) = (xen.last(), on_serial) {
        Some(format!(
            "{src} sends the console to {} (console={last}), a Xen PV console that does not exist under KVM, so nothing reaches the serial port",
            last.split(',').next().unwrap_or(last)
        ))
    } else if !on_serial {
        Some(format!(
            "{src} has no console=ttyS0, so the kernel console is not on the serial port"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cmdline: &str) -> BootEntry {
        BootEntry {
            title: "Debian GNU/Linux".into(),
            kernel: "/boot/vmlinuz".into(),
            initrd: None,
            cmdline: cmdline.into(),
            config: GuestPath::lit("/boot/grub/grub.cfg"),
        }
    }

    #[test]
    fn diagnostic_cmdline_moves_console() {
        assert_eq!(
            diagnostic_cmdline("root=UUID=x ro  root=/dev/xvda1 console=hvc0 quiet xencons=xvc0"),
            "root=UUID=x ro root=/dev/xvda1 console=ttyS0,115200 systemd.show_status=1"
        );
    }

    #[test]
    fn notes_name_the_xen_console() {
        let n = console_note(&entry("root=/dev/xvda1 console=hvc0")).unwrap();
        assert!(
            n.contains("hvc0") && n.contains("/boot/grub/grub.cfg"),
            "{n}"
        );
        assert!(console_note(&entry("root=/dev/vda1 console=tty0 console=ttyS0,115200")).is_none());
        assert!(console_note(&entry("root=/dev/vda1 quiet"))
            .unwrap()
            .contains("no console=ttyS0"));
    }
}
