//! Reads a guest's boot menu (GRUB 2 `grub.cfg`, or GRUB legacy
//! `menu.lst`/`grub.conf`) to find the entry its bootloader boots by default:
//! title, kernel, initrd and kernel command line.
//!
//! Parsing is deliberately shallow: menu entries, `set default=`, GRUB 2's
//! `saved_entry` from `grubenv`, and literal `linux`/`initrd` lines. That is
//! what `grub-mkconfig`, perl-Bootloader and anaconda write, and what pygrub
//! reads on a Xen host.

use std::io;

use xen2kvm_vfs::{GuestFs, GuestPath};

/// One boot menu entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    /// The menu title.
    pub title: String,
    /// The kernel path as the config writes it (relative to GRUB's root).
    pub kernel: String,
    /// The initrd path, if the entry has one.
    pub initrd: Option<String>,
    /// The kernel command line.
    pub cmdline: String,
    /// The config file it came from.
    pub config: GuestPath,
}

/// Where bootloaders look for their config, in pygrub's order: GRUB 2 files
/// first, then GRUB legacy.
const GRUB2: &[&str] = &[
    "/boot/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
    "/grub/grub.cfg",
    "/grub2/grub.cfg",
];
/// `grub.conf` before `menu.lst`: on RHEL, menu.lst is a symlink to it.
const LEGACY: &[&str] = &[
    "/boot/grub/grub.conf",
    "/boot/grub/menu.lst",
    "/grub/grub.conf",
    "/grub/menu.lst",
];

/// The default entry of the first boot config found, or `None` when the
/// guest has no config (or no usable entry in it).
pub fn default_entry(fs: &dyn GuestFs) -> io::Result<Option<BootEntry>> {
    for p in GRUB2 {
        let path = GuestPath::lit(p);
        if let Some(text) = fs.read_text(&path)? {
            let env = match path.parent().map(|d| d.join("grubenv")) {
                Some(Ok(envp)) => fs.read_text(&envp)?.unwrap_or_default(),
                _ => String::new(),
            };
            return Ok(grub2_default(&text, &env, &path));
        }
    }
    for p in LEGACY {
        let path = GuestPath::lit(p);
        if let Some(text) = fs.read_text(&path)? {
            return Ok(legacy_default(&text, &path));
        }
    }
    Ok(None)
}

/// A menu item of `grub.cfg`: an entry or a submenu of items.
#[derive(Debug)]
enum Item {
    Entry {
        title: String,
        id: Option<String>,
        linux: Option<String>,
        initrd: Option<String>,
    },
    Submenu {
        title: String,
        id: Option<String>,
        items: Vec<Item>,
    },
}

/// The default entry of a GRUB 2 config, with `grubenv` for `saved_entry`.
pub fn grub2_default(cfg: &str, grubenv: &str, path: &GuestPath) -> Option<BootEntry> {
    let (items, defaults) = grub2_items(cfg)?;
    let saved = grubenv
        .lines()
        .find_map(|l| l.strip_prefix("saved_entry="))
        .map(str::to_owned);
    let wanted = if defaults.iter().any(|d| d.contains("saved_entry")) && saved.is_some() {
        saved
    } else {
        defaults.iter().find(|d| !d.contains('$')).cloned()
    }
    .unwrap_or_else(|| "0".to_owned());
    let (title, linux, initrd) = find_item(&items, &wanted).or_else(|| find_item(&items, "0"))?;
    let (kernel, cmdline) = match linux.split_once(char::is_whitespace) {
        Some((k, rest)) => (k.to_owned(), rest.trim().to_owned()),
        None => (linux.clone(), String::new()),
    };
    let initrd = initrd.and_then(|i| i.split_whitespace().next().map(str::to_owned));
    Some(BootEntry {
        title,
        kernel,
        initrd,
        cmdline,
        config: path.clone(),
    })
}

/// The GRUB 2 entry path (`id>id`, or titles where an item has no id) of
/// the first entry that boots a kernel image named `image` (a file name such
/// as `vmlinuz-6.1.0-50-amd64`), in the form `grub-set-default` takes.
pub fn grub2_entry_path(cfg: &str, image: &str) -> Option<String> {
    fn walk(items: &[Item], image: &str, prefix: &str) -> Option<String> {
        for it in items {
            match it {
                Item::Entry {
                    title,
                    id,
                    linux: Some(l),
                    ..
                } => {
                    let kernel = l.split_whitespace().next().unwrap_or("");
                    if kernel.rsplit('/').next() == Some(image) {
                        return Some(format!("{prefix}{}", id.as_deref().unwrap_or(title)));
                    }
                }
                Item::Submenu { title, id, items } => {
                    let p = format!("{prefix}{}>", id.as_deref().unwrap_or(title));
                    if let Some(found) = walk(items, image, &p) {
                        return Some(found);
                    }
                }
                Item::Entry { .. } => {}
            }
        }
        None
    }
    let (items, _) = grub2_items(cfg)?;
    walk(&items, image, "")
}

/// The menu items of a `grub.cfg`, and its top-level `set default=` values.
fn grub2_items(cfg: &str) -> Option<(Vec<Item>, Vec<String>)> {
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut heads: Vec<(bool, String, Option<String>)> = Vec::new(); // (is_submenu, title, id)
    let mut defaults: Vec<String> = Vec::new();
    for raw in cfg.lines() {
        let line = raw.trim();
        let words = split_words(line);
        let Some(first) = words.first().map(String::as_str) else {
            continue;
        };
        match first {
            "menuentry" | "submenu" if line.ends_with('{') => {
                let title = words.get(1).cloned().unwrap_or_default();
                let id = words
                    .iter()
                    .position(|w| w == "$menuentry_id_option")
                    .and_then(|i| words.get(i + 1).cloned());
                heads.push((first == "submenu", title, id));
                stack.push(Vec::new());
            }
            "}" if !heads.is_empty() => {
                let (is_sub, title, id) = heads.pop()?;
                let body = stack.pop()?;
                let item = if is_sub {
                    Item::Submenu {
                        title,
                        id,
                        items: body,
                    }
                } else {
                    let mut linux = None;
                    let mut initrd = None;
                    for it in body {
                        if let Item::Entry {
                            title: kind,
                            linux: Some(args),
                            ..
                        } = it
                        {
                            match kind.as_str() {
                                "linux" => linux = Some(args),
                                "initrd" => initrd = Some(args),
                                _ => {}
                            }
                        }
                    }
                    Item::Entry {
                        title,
                        id,
                        linux,
                        initrd,
                    }
                };
                stack.last_mut()?.push(item);
            }
            "linux" | "linux16" | "linuxefi" | "initrd" | "initrd16" | "initrdefi"
                if !heads.is_empty() =>
            {
                // Recorded as a pseudo entry in the open block; folded at '}'.
                let kind = if first.starts_with("linux") {
                    "linux"
                } else {
                    "initrd"
                };
                let args = line
                    .split_once(char::is_whitespace)
                    .map(|x| x.1.trim().to_owned())
                    .unwrap_or_default();
                stack.last_mut()?.push(Item::Entry {
                    title: kind.to_owned(),
                    id: None,
                    linux: Some(args),
                    initrd: None,
                });
            }
            "set" if heads.is_empty() => {
                if let Some(v) = words.get(1).and_then(|w| w.strip_prefix("default=")) {
                    defaults.push(v.to_owned());
                }
            }
            _ => {}
        }
    }
    let items = stack.into_iter().next()?;
    Some((items, defaults))
}

/// Finds a bootable entry by index path (`0`, `1>2`), title or id.
fn find_item(items: &[Item], wanted: &str) -> Option<(String, String, Option<String>)> {
    let (head, rest) = match wanted.split_once('>') {
        Some((h, r)) => (h, Some(r)),
        None => (wanted, None),
    };
    let item = match head.parse::<usize>() {
        Ok(i) => items.get(i),
        Err(_) => items.iter().find(|it| match it {
            Item::Entry { title, id, .. } | Item::Submenu { title, id, .. } => {
                title == head || id.as_deref() == Some(head)
            }
        }),
    }?;
    match (item, rest) {
        (
            Item::Entry {
                title,
                linux: Some(l),
                initrd,
                ..
            },
            None,
        ) => Some((title.clone(), l.clone(), initrd.clone())),
        (Item::Submenu { items, .. }, Some(r)) => find_item(items, r),
        (Item::Submenu { items, .. }, None) => find_item(items, "0"),
        _ => None,
    }
}

/// The default entry of a GRUB legacy `menu.lst`/`grub.conf`.
pub fn legacy_default(cfg: &str, path: &GuestPath) -> Option<BootEntry> {
    let mut default = 0usize;
    let mut entries: Vec<BootEntry> = Vec::new();
    for raw in cfg.lines() {
        let line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (k, v.trim()),
            None => (line, ""),
        };
        match key {
            "default" if entries.is_empty() => default = value.parse().unwrap_or(0),
            "title" => entries.push(BootEntry {
                title: value.to_owned(),
                kernel: String::new(),
                initrd: None,
                cmdline: String::new(),
                config: path.clone(),
            }),
            "kernel" => {
                if let Some(e) = entries.last_mut() {
                    let (k, args) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
                    e.kernel = strip_grub_device(k);
                    e.cmdline = args.trim().to_owned();
                }
            }
            "initrd" => {
                if let Some(e) = entries.last_mut() {
                    e.initrd = value.split_whitespace().next().map(strip_grub_device);
                }
            }
            _ => {}
        }
    }
    let pick = if entries.get(default).is_some_and(|e| !e.kernel.is_empty()) {
        default
    } else {
        0
    };
    entries
        .into_iter()
        .nth(pick)
        .filter(|e| !e.kernel.is_empty())
}

/// `/vmlinuz` from `(hd0,1)/vmlinuz`.
fn strip_grub_device(p: &str) -> String {
    match p.strip_prefix('(').and_then(|r| r.split_once(')')) {
        Some((_, rest)) => rest.to_owned(),
        None => p.to_owned(),
    }
}

/// Splits a GRUB script line into words, honouring single and double quotes.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = r#"
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="0"
fi
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux $menuentry_id_option 'gnulinux-simple-5e1f' {
	load_video
	insmod ext2
	echo	'Loading Linux 6.1.0-50-amd64 ...'
	linux	/boot/vmlinuz-6.1.0-50-amd64 root=UUID=5e1f ro  root=/dev/xvda1 console=hvc0
	echo	'Loading initial ramdisk ...'
	initrd	/boot/initrd.img-6.1.0-50-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-5e1f' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-50-amd64' --class debian $menuentry_id_option 'gnulinux-6.1.0-50-amd64-advanced-5e1f' {
		linux	/boot/vmlinuz-6.1.0-50-amd64 root=UUID=5e1f ro  root=/dev/xvda1 console=hvc0
		initrd	/boot/initrd.img-6.1.0-50-amd64
	}
	menuentry 'Debian GNU/Linux, with Linux 5.10.0-9-amd64' --class debian $menuentry_id_option 'gnulinux-5.10.0-9-amd64-advanced-5e1f' {
		linux	/boot/vmlinuz-5.10.0-9-amd64 root=UUID=5e1f ro single
		initrd	/boot/initrd.img-5.10.0-9-amd64
	}
}
"#;

    fn cfg() -> GuestPath {
        GuestPath::lit("/boot/grub/grub.cfg")
    }

    #[test]
    fn debian_default_is_first_entry() {
        let e = grub2_default(DEBIAN, "", &cfg()).unwrap();
        assert_eq!(e.title, "Debian GNU/Linux");
        assert_eq!(e.kernel, "/boot/vmlinuz-6.1.0-50-amd64");
        assert_eq!(e.initrd.as_deref(), Some("/boot/initrd.img-6.1.0-50-amd64"));
        assert_eq!(e.cmdline, "root=UUID=5e1f ro  root=/dev/xvda1 console=hvc0");
    }

    #[test]
    fn submenu_paths_titles_and_ids() {
        let with = |d: &str| DEBIAN.replace("set default=\"0\"", &format!("set default=\"{d}\""));
        assert_eq!(
            grub2_default(&with("1>1"), "", &cfg()).unwrap().kernel,
            "/boot/vmlinuz-5.10.0-9-amd64"
        );
        assert_eq!(
            grub2_default(
                &with("gnulinux-advanced-5e1f>gnulinux-5.10.0-9-amd64-advanced-5e1f"),
                "",
                &cfg()
            )
            .unwrap()
            .kernel,
            "/boot/vmlinuz-5.10.0-9-amd64"
        );
        // An unknown default falls back to the first entry, as GRUB does.
        assert_eq!(
            grub2_default(&with("7"), "", &cfg()).unwrap().title,
            "Debian GNU/Linux"
        );
    }

    #[test]
    fn saved_entry_from_grubenv() {
        let suse = DEBIAN.replace("set default=\"0\"", "set default=\"${saved_entry}\"");
        let env = "# GRUB Environment Block\nsaved_entry=Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 5.10.0-9-amd64\n####";
        assert_eq!(
            grub2_default(&suse, env, &cfg()).unwrap().kernel,
            "/boot/vmlinuz-5.10.0-9-amd64"
        );
    }

    #[test]
    fn legacy_menu_lst() {
        let m = "default 1\ntimeout 8\ntitle Xen -- SLES 11\n    root (hd0,1)\n    kernel /boot/vmlinuz-xen root=/dev/xvda2 console=xvc0\n    initrd /boot/initrd-xen\ntitle SLES 11\n    root (hd0,1)\n    kernel (hd0,1)/boot/vmlinuz-3.0.101-63-default root=/dev/xvda2\n    initrd /boot/initrd-3.0.101-63-default\n";
        let e = legacy_default(m, &GuestPath::lit("/boot/grub/menu.lst")).unwrap();
        assert_eq!(e.title, "SLES 11");
        assert_eq!(e.kernel, "/boot/vmlinuz-3.0.101-63-default");
        assert_eq!(e.cmdline, "root=/dev/xvda2");
        let rhel = "default=0\ntitle CentOS\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.32 ro root=/dev/xvda1 console=hvc0\n\tinitrd /initramfs-2.6.32.img\n";
        let e = legacy_default(rhel, &GuestPath::lit("/boot/grub/grub.conf")).unwrap();
        assert_eq!(
            (e.kernel.as_str(), e.initrd.as_deref()),
            ("/vmlinuz-2.6.32", Some("/initramfs-2.6.32.img"))
        );
    }

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"menuentry 'A b' --class x "c d" {"#),
            ["menuentry", "A b", "--class", "x", "c d", "{"]
        );
    }
}
