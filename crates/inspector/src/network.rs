//! The guest's network configuration, as it names interfaces, and whether
//! those names survive the move from Xen's netfront NIC to KVM's virtio-net.
//!
//! Under Xen a netfront NIC is the kernel's `eth<n>` (systemd before v250
//! gives it no predictable name) or, from systemd v250 (Debian 12), `enX<n>`.
//! Under KVM a virtio-net NIC on PCI gets a predictable name (`ens3`,
//! `enp1s0`) wherever systemd's udev names interfaces, so a configuration
//! that says `eth0` or `enX0` no longer applies and the guest boots with no
//! network. This module reads which names the guest's configurations use
//! (ifupdown, netplan, systemd-networkd, NetworkManager keyfiles, RHEL and
//! SUSE `ifcfg`), whether the guest names NICs predictably, and which names
//! are already pinned (a `.link` file, a udev rule, netplan's `set-name`).
//! A configured Xen name that is not pinned is a Xen-ism
//! ([`XenismKind::NetworkName`](crate::xen::XenismKind::NetworkName)); the
//! editor pins it.
//!
//! Pure: reads through [`GuestFs`], never writes.

use std::io;

use xen2kvm_vfs::{GuestFs, GuestPath};

use crate::facts::path;

/// Where interface names are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigKind {
    /// Debian's `/etc/network/interfaces` (and `interfaces.d`).
    Ifupdown,
    /// Ubuntu's `/etc/netplan/*.yaml`.
    Netplan,
    /// `systemd-networkd`'s `/etc/systemd/network/*.network`.
    Networkd,
    /// NetworkManager keyfiles.
    NetworkManager,
    /// RHEL's `/etc/sysconfig/network-scripts/ifcfg-*`.
    RhelIfcfg,
    /// SUSE's `/etc/sysconfig/network/ifcfg-*` (wicked).
    SuseIfcfg,
}

impl ConfigKind {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::Ifupdown => "ifupdown",
            ConfigKind::Netplan => "netplan",
            ConfigKind::Networkd => "systemd-networkd",
            ConfigKind::NetworkManager => "NetworkManager",
            ConfigKind::RhelIfcfg => "ifcfg",
            ConfigKind::SuseIfcfg => "wicked ifcfg",
        }
    }
}

/// One interface name a configuration uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    /// The interface name (`eth0`, `enX0`).
    pub name: String,
    /// The kind of configuration.
    pub kind: ConfigKind,
    /// The file.
    pub file: GuestPath,
    /// 1-based line (0: the file's name says it).
    pub line: usize,
    /// The line (or file name) as found.
    pub text: String,
}

/// How the guest's udev names network interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// systemd's predictable names (`ens3`): a virtio NIC is not `eth0`.
    Predictable,
    /// Kernel names kept (`eth0`), and why.
    Kernel(String),
}

/// The index of a Xen NIC name: `eth<n>` or `enX<n>` (netfront's
/// predictable name) gives `n`.
pub fn xen_index(name: &str) -> Option<u32> {
    let n = name
        .strip_prefix("enX")
        .or_else(|| name.strip_prefix("eth"))?;
    if n.is_empty() || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Whether `name` is netfront's predictable name (`enX0`), which exists
/// only on Xen.
pub fn is_netfront_name(name: &str) -> bool {
    name.starts_with("enX") && xen_index(name).is_some()
}

const IFUPDOWN: &str = "/etc/network/interfaces";
const IFUPDOWN_D: &str = "/etc/network/interfaces.d";
const NETPLAN_D: &str = "/etc/netplan";
/// Where `.link` files pinning names are written (and read).
pub const NETWORKD_D: &str = "/etc/systemd/network";
const NM_D: &str = "/etc/NetworkManager/system-connections";
const RHEL_D: &str = "/etc/sysconfig/network-scripts";
const SUSE_D: &str = "/etc/sysconfig/network";
const UDEV_RULES_D: &str = "/etc/udev/rules.d";
const UDEV_LIB: &[&str] = &["/lib/udev/rules.d", "/usr/lib/udev/rules.d"];
const NAMING_RULES: &[&str] = &["80-net-setup-link.rules", "80-net-name-slot.rules"];

/// Regular files of `dir` (sorted; names that make no path skipped), with
/// their text (at most [`xen2kvm_vfs::MAX_TEXT`] bytes each).
fn texts(
    fs: &dyn GuestFs,
    dir: &str,
    keep: impl Fn(&str) -> bool,
) -> io::Result<Vec<(GuestPath, String)>> {
    let mut names = fs.list(&path(dir)?)?.unwrap_or_default();
    names.sort();
    let mut out = Vec::new();
    for name in names.into_iter().filter(|n| keep(n)) {
        let Ok(p) = path(&format!("{dir}/{name}")) else {
            continue;
        };
        if fs.read_link(&p)?.is_some() {
            continue;
        }
        if let Some(b) = fs.read_limited(&p, xen2kvm_vfs::MAX_TEXT)? {
            out.push((p, String::from_utf8_lossy(&b).into_owned()));
        }
    }
    Ok(out)
}

fn text_of(fs: &dyn GuestFs, file: &str) -> io::Result<Option<(GuestPath, String)>> {
    let p = path(file)?;
    Ok(fs
        .read_limited(&p, xen2kvm_vfs::MAX_TEXT)?
        .map(|b| (p, String::from_utf8_lossy(&b).into_owned())))
}

/// A shell-style value without its quotes.
fn unquote(v: &str) -> &str {
    v.trim().trim_matches(['"', '\''])
}

/// An interface name as a configuration line spells it, without a VLAN
/// (`eth0.100`) or alias (`eth0:1`) suffix.
fn base_name(word: &str) -> &str {
    word.split([':', '.']).next().unwrap_or(word)
}

/// Every interface name the guest's network configurations use, in file
/// order (loopback left out).
pub fn configured(fs: &dyn GuestFs) -> io::Result<Vec<Configured>> {
    let mut out = Vec::new();
    let mut push = |name: &str, kind, file: &GuestPath, line: usize, text: &str| {
        if name.is_empty()
            || name == "lo"
            || out
                .iter()
                .any(|c: &Configured| c.name == name && &c.file == file)
        {
            return;
        }
        out.push(Configured {
            name: name.to_owned(),
            kind,
            file: file.clone(),
            line,
            text: text.trim_end().to_owned(),
        });
    };
    let mut ifupdown: Vec<(GuestPath, String)> = text_of(fs, IFUPDOWN)?.into_iter().collect();
    ifupdown.extend(texts(fs, IFUPDOWN_D, |n| !n.starts_with('.'))?);
    for (file, text) in &ifupdown {
        for (i, line) in text.lines().enumerate() {
            let mut words = line.split_whitespace();
            let names: Vec<&str> = match words.next() {
                Some("auto" | "allow-hotplug" | "allow-auto") => words.collect(),
                Some("iface") => words.next().into_iter().collect(),
                _ => continue,
            };
            for w in names {
                push(base_name(w), ConfigKind::Ifupdown, file, i + 1, line);
            }
        }
    }
    for (file, text) in texts(fs, NETPLAN_D, |n| {
        n.ends_with(".yaml") || n.ends_with(".yml")
    })? {
        for (name, line) in netplan_ethernets(&text)
            .into_iter()
            .filter(|e| !e.matched)
            .map(|e| (e.id, e.line))
        {
            let l = text.lines().nth(line - 1).unwrap_or("");
            push(&name, ConfigKind::Netplan, &file, line, l);
        }
    }
    for (file, text) in texts(fs, NETWORKD_D, |n| n.ends_with(".network"))? {
        for (i, key, value, line) in ini_entries(&text) {
            if key.0 == "Match" && key.1 == "Name" {
                for w in value.split_whitespace() {
                    // Globs (`en*`) are not one interface's name.
                    if !w.contains(['*', '?', '[']) {
                        push(w, ConfigKind::Networkd, &file, i, line);
                    }
                }
            }
        }
    }
    for (file, text) in texts(fs, NM_D, |n| !n.starts_with('.') && !n.ends_with('~'))? {
        for (i, key, value, line) in ini_entries(&text) {
            if key.0 == "connection" && key.1 == "interface-name" {
                push(value.trim(), ConfigKind::NetworkManager, &file, i, line);
            }
        }
    }
    for (dir, kind) in [
        (RHEL_D, ConfigKind::RhelIfcfg),
        (SUSE_D, ConfigKind::SuseIfcfg),
    ] {
        let ifcfgs = texts(fs, dir, |n| {
            n.starts_with("ifcfg-")
                && !n.ends_with('~')
                && !n.contains(".rpm")
                && !n.ends_with(".bak")
        })?;
        for (file, text) in ifcfgs {
            let suffix = file
                .file_name()
                .unwrap_or("")
                .trim_start_matches("ifcfg-")
                .to_owned();
            let device = text.lines().enumerate().find_map(|(i, l)| {
                let v = l.trim().strip_prefix("DEVICE=")?;
                Some((i + 1, unquote(v).to_owned(), l.to_owned()))
            });
            match (kind, device) {
                (ConfigKind::RhelIfcfg, Some((i, dev, line))) => push(&dev, kind, &file, i, &line),
                _ => push(&suffix, kind, &file, 0, file.as_str()),
            }
        }
    }
    Ok(out)
}

/// `(line, (section, key), value, line text)` of an ini-style file
/// (systemd units, NetworkManager keyfiles); comments skipped.
fn ini_entries(text: &str) -> Vec<(usize, (String, String), String, &str)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('#') || t.starts_with(';') || t.is_empty() {
            continue;
        }
        if let Some(s) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim().to_owned();
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            out.push((
                i + 1,
                (section.clone(), k.trim().to_owned()),
                v.trim().to_owned(),
                line,
            ));
        }
    }
    out
}

/// One entry under netplan's `ethernets:`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NetplanEthernet {
    id: String,
    line: usize,
    /// It has a `match:` block: the id is no interface name.
    matched: bool,
    /// Its `set-name:`.
    set_name: Option<String>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The entries of netplan's `ethernets:` mapping, read by indentation (the
/// block style netplan files are written in).
fn netplan_ethernets(text: &str) -> Vec<NetplanEthernet> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let Some(start) = lines
        .iter()
        .position(|l| l.trim_start().starts_with("ethernets:"))
    else {
        return out;
    };
    let base = indent(lines[start]);
    let mut key_indent = None;
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let ind = indent(l);
        if ind <= base {
            break;
        }
        let k = *key_indent.get_or_insert(ind);
        if ind == k {
            let id = t
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\'']);
            out.push(NetplanEthernet {
                id: id.to_owned(),
                line: i + 1,
                matched: false,
                set_name: None,
            });
        } else if let Some(e) = out.last_mut() {
            if t.starts_with("match:") {
                e.matched = true;
            } else if let Some(v) = t.strip_prefix("set-name:") {
                e.set_name = Some(unquote(v).to_owned());
            }
        }
    }
    out
}

/// Names the guest pins to its NICs whatever udev would call them: `.link`
/// files' `Name=`, udev rules' `NAME=` (`70-persistent-net.rules`, by the
/// MAC the KVM domain keeps) and netplan's `set-name:`.
pub fn pinned(fs: &dyn GuestFs) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for (_, text) in texts(fs, NETWORKD_D, |n| n.ends_with(".link"))? {
        for (_, key, value, _) in ini_entries(&text) {
            if key.0 == "Link" && key.1 == "Name" {
                out.push(value.trim().to_owned());
            }
        }
    }
    for (_, text) in texts(fs, UDEV_RULES_D, |n| n.ends_with(".rules"))? {
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            for field in line.split(',') {
                let f = field.trim();
                if let Some(v) = f.strip_prefix("NAME=").or_else(|| f.strip_prefix("NAME:=")) {
                    out.push(unquote(v).to_owned());
                }
            }
        }
    }
    for (_, text) in texts(fs, NETPLAN_D, |n| {
        n.ends_with(".yaml") || n.ends_with(".yml")
    })? {
        out.extend(
            netplan_ethernets(&text)
                .into_iter()
                .filter_map(|e| e.set_name),
        );
    }
    Ok(out)
}

/// Whether a file is masked: a link to `/dev/null`, or empty.
fn masked(fs: &dyn GuestFs, file: &GuestPath) -> io::Result<bool> {
    if fs.read_link(file)?.as_deref() == Some("/dev/null") {
        return Ok(true);
    }
    Ok(fs.file_size(file)? == Some(0))
}

/// How the guest's udev names NICs: predictably when it has systemd's
/// naming rules, not masked, and no `net.ifnames=0` on the kernel command
/// line its GRUB defaults give.
pub fn naming(fs: &dyn GuestFs) -> io::Result<Naming> {
    let mut has_rules = false;
    for dir in UDEV_LIB {
        for r in NAMING_RULES {
            has_rules |= fs.exists(&path(&format!("{dir}/{r}"))?)?;
        }
    }
    if !has_rules {
        return Ok(Naming::Kernel(
            "no systemd naming rules (80-net-setup-link.rules) in the guest's udev".into(),
        ));
    }
    for r in NAMING_RULES {
        let p = path(&format!("{UDEV_RULES_D}/{r}"))?;
        if masked(fs, &p)? {
            return Ok(Naming::Kernel(format!("{p} masks the naming rules")));
        }
    }
    let default_link = path(&format!("{NETWORKD_D}/99-default.link"))?;
    if masked(fs, &default_link)? {
        return Ok(Naming::Kernel(format!("{default_link} is masked")));
    }
    for file in [crate::xen::DEFAULT_GRUB, crate::xen::SYSCONFIG_BOOTLOADER] {
        if let Some((p, text)) = text_of(fs, file)? {
            let off = text.lines().any(|l| {
                !l.trim_start().starts_with('#')
                    && l.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                        .any(|w| w == "net.ifnames=0")
            });
            if off {
                return Ok(Naming::Kernel(format!("net.ifnames=0 in {p}")));
            }
        }
    }
    Ok(Naming::Predictable)
}

/// The configured names a virtio-net NIC will not get under KVM: Xen's
/// names (`enX<n>` always; `eth<n>` when udev names NICs predictably) that
/// nothing pins. One entry per configuration that uses such a name.
pub fn unpinned(fs: &dyn GuestFs) -> io::Result<Vec<Configured>> {
    let all = configured(fs)?;
    if all.iter().all(|c| xen_index(&c.name).is_none()) {
        return Ok(Vec::new());
    }
    let predictable = naming(fs)? == Naming::Predictable;
    let pinned = pinned(fs)?;
    Ok(all
        .into_iter()
        .filter(|c| {
            xen_index(&c.name).is_some()
                && (predictable || is_netfront_name(&c.name))
                && !pinned.contains(&c.name)
        })
        .collect())
}

/// The `.link` file that pins `name` to the NIC Xen called that: by `mac`
/// when the domain's MAC is known, else by the kernel's name for the n-th
/// virtio-net NIC (`eth<n>`, probed in PCI order, which is the domain's
/// interface order).
pub fn link_file(name: &str, mac: Option<&str>, configs: &[String]) -> (GuestPath, String) {
    let file = GuestPath::new(&format!("{NETWORKD_D}/10-xen2kvm-{name}.link"))
        .unwrap_or_else(|_| GuestPath::lit("/etc/systemd/network/10-xen2kvm.link"));
    let index = xen_index(name).unwrap_or(0);
    let matching = match mac {
        Some(m) => format!("MACAddress={m}\n"),
        None => format!("OriginalName=eth{index}\nDriver=virtio_net\n"),
    };
    let uses: String = configs.iter().map(|c| format!("#   {c}\n")).collect();
    let text = format!(
        "# Written by xen2kvm: under Xen this NIC was {name}. Under KVM it is a\n\
         # virtio-net NIC that udev would name otherwise (ens3, enp1s0): keep\n\
         # the name, so that what configures it still applies:\n\
         {uses}\
         [Match]\n{matching}\n[Link]\nName={name}\n"
    );
    (file, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_names() {
        assert_eq!(xen_index("eth0"), Some(0));
        assert_eq!(xen_index("enX12"), Some(12));
        assert_eq!(xen_index("ens3"), None);
        assert_eq!(xen_index("eth"), None);
        assert_eq!(xen_index("eth0.100"), None);
        assert!(is_netfront_name("enX0") && !is_netfront_name("eth0"));
        assert_eq!(base_name("eth0:1"), "eth0");
        assert_eq!(base_name("eth0.100"), "eth0");
    }

    #[test]
    fn netplan_blocks() {
        let t = "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n    lan:\n      match:\n        macaddress: 00:16:3e:00:00:01\n      set-name: eth1\n  bridges:\n    br0: {}\n";
        let e = netplan_ethernets(t);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(
            (e[0].id.as_str(), e[0].line, e[0].matched),
            ("eth0", 4, false)
        );
        assert_eq!((e[1].id.as_str(), e[1].matched), ("lan", true));
        assert_eq!(e[1].set_name.as_deref(), Some("eth1"));
    }

    #[test]
    fn link_files_match_by_mac_or_kernel_name() {
        let (p, t) = link_file("enX0", Some("00:16:3e:aa:bb:cc"), &["/etc/x".into()]);
        assert_eq!(p.as_str(), "/etc/systemd/network/10-xen2kvm-enX0.link");
        assert!(
            t.contains("[Match]\nMACAddress=00:16:3e:aa:bb:cc\n")
                && t.ends_with("[Link]\nName=enX0\n")
        );
        let (_, t) = link_file("eth1", None, &[]);
        assert!(t.contains("OriginalName=eth1\nDriver=virtio_net\n"), "{t}");
    }
}
