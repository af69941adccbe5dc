//! xl.cfg (Xen's `xl` domain config) → the equivalent Xen libvirt XML.
//!
//! The syntax is `KEY = VALUE` lines, where a value is a number, a quoted
//! string or a `[ ... ]` list that may span lines; `#` starts a comment. The
//! translation covers the keys a PV or HVM guest's config has in practice
//! (see [`KNOWN`]); any other key is reported, never silently dropped.

use crate::dom::{self, Document};
use crate::Error;

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string.
    Str(String),
    /// A number, as written.
    Num(String),
    /// A list of values.
    List(Vec<Value>),
}

impl Value {
    fn as_text(&self) -> String {
        match self {
            Value::Str(s) | Value::Num(s) => s.clone(),
            Value::List(v) => v.iter().map(Value::as_text).collect::<Vec<_>>().join(","),
        }
    }

    fn items(&self) -> Vec<String> {
        match self {
            Value::List(v) => v.iter().map(Value::as_text).collect(),
            other => vec![other.as_text()],
        }
    }
}

/// One `KEY = VALUE` setting, with its line.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
    /// 1-based line number of the key.
    pub line: usize,
}

/// The keys that are translated (besides [`VNC_KEYS`]).
pub const KNOWN: &[&str] = &[
    "name",
    "uuid",
    "memory",
    "maxmem",
    "vcpus",
    "maxvcpus",
    "cpus",
    "builder",
    "type",
    "bootloader",
    "bootloader_args",
    "kernel",
    "ramdisk",
    "extra",
    "root",
    "cmdline",
    "disk",
    "vif",
    "vfb",
    "serial",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "localtime",
    "boot",
    "acpi",
    "apic",
    "pae",
    "usbdevice",
];

/// The top-level graphics keys of an HVM config (also the keys of a PV
/// `vfb` item); translated too.
const VNC_KEYS: &[&str] = &[
    "vnc",
    "vnclisten",
    "vncdisplay",
    "vncunused",
    "vncpasswd",
    "keymap",
];

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl Lexer<'_> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::Xl {
            line: self.line,
            message: message.into(),
        }
    }

    /// Skips blanks, comments and (when `newlines`) line ends.
    fn skip(&mut self, newlines: bool) {
        while let Some(&c) = self.chars.peek() {
            match c {
                '#' => {
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.chars.next();
                    }
                }
                '\n' if newlines => {
                    self.line += 1;
                    self.chars.next();
                }
                c if c.is_whitespace() && c != '\n' => {
                    self.chars.next();
                }
                _ => break,
            }
        }
    }

    fn value(&mut self) -> Result<Value, Error> {
        self.skip(false);
        match self.chars.peek().copied() {
            Some(q @ ('\'' | '"')) => {
                self.chars.next();
                let mut s = String::new();
                loop {
                    match self.chars.next() {
                        None | Some('\n') => return Err(self.err("unterminated string")),
                        Some(c) if c == q => break,
                        Some('\\') if q == '"' => match self.chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(c) => s.push(c),
                            None => return Err(self.err("unterminated string")),
                        },
                        Some(c) => s.push(c),
                    }
                }
                Ok(Value::Str(s))
            }
            Some('[') => {
                self.chars.next();
                let start = self.line;
                let unterminated = || Error::Xl {
                    line: start,
                    message: "unterminated list: this '[' has no closing ']'".to_owned(),
                };
                let mut items = Vec::new();
                loop {
                    self.skip(true);
                    match self.chars.peek() {
                        Some(']') => {
                            self.chars.next();
                            break;
                        }
                        None => return Err(unterminated()),
                        _ => {}
                    }
                    items.push(self.value()?);
                    self.skip(true);
                    match self.chars.next() {
                        Some(',') => {}
                        Some(']') => break,
                        Some(c) => {
                            return Err(
                                self.err(format!("expected ',' or ']' in a list, found {c:?}"))
                            )
                        }
                        None => return Err(unterminated()),
                    }
                }
                Ok(Value::List(items))
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let mut s = String::new();
                while let Some(&c) = self.chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                        s.push(c);
                        self.chars.next();
                    } else {
                        break;
                    }
                }
                Ok(Value::Num(s))
            }
            Some(c) => Err(self.err(format!(
                "expected a value (number, 'string' or [list]), found {c:?}"
            ))),
            None => Err(self.err("expected a value, found the end of the file")),
        }
    }
}

/// Parses the settings of an xl.cfg.
pub fn parse(text: &str) -> Result<Vec<Setting>, Error> {
    let mut lx = Lexer {
        chars: text.chars().peekable(),
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        lx.skip(true);
        let Some(&c) = lx.chars.peek() else { break };
        if c == ';' {
            lx.chars.next();
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_') {
            return Err(lx.err(format!("expected a setting name, found {c:?}")));
        }
        let line = lx.line;
        let mut key = String::new();
        while let Some(&c) = lx.chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                key.push(c);
                lx.chars.next();
            } else {
                break;
            }
        }
        lx.skip(false);
        if lx.chars.next() != Some('=') {
            return Err(lx.err(format!("expected '=' after {key}")));
        }
        let value = lx.value()?;
        lx.skip(false);
        match lx.chars.peek().copied() {
            None | Some('\n' | ';') => {}
            Some(c) => return Err(lx.err(format!("unexpected {c:?} after the value of {key}"))),
        }
        out.push(Setting { key, value, line });
    }
    Ok(out)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// Splits `a=b` items of a disk/vif spec.
fn kv(item: &str) -> Option<(&str, &str)> {
    let (k, v) = item.split_once('=')?;
    k.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        .then_some((k.trim(), v.trim()))
}

struct Disk {
    target: String,
    format: Option<String>,
    vdev: String,
    readonly: bool,
    cdrom: bool,
    phy: bool,
}

fn parse_disk(spec: &str, line: usize) -> Result<Disk, Error> {
    let bad = |m: String| Error::Xl { line, message: m };
    let mut d = Disk {
        target: String::new(),
        format: None,
        vdev: String::new(),
        readonly: false,
        cdrom: false,
        phy: false,
    };
    let mut positional = Vec::new();
    // `target=` must be last and takes the rest (it may contain commas).
    let (head, target_kv) = match spec.find("target=") {
        Some(i) if i == 0 || spec[..i].trim_end().ends_with(',') => {
            (&spec[..i], Some(&spec[i + "target=".len()..]))
        }
        _ => (spec, None),
    };
    for item in head.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match kv(item) {
            Some(("format", v)) => d.format = Some(v.to_owned()),
            Some(("vdev", v)) => d.vdev = v.to_owned(),
            Some(("access", v)) => d.readonly = matches!(v, "ro" | "r"),
            Some(("devtype", v)) => d.cdrom = v == "cdrom",
            Some(("backendtype", v)) => d.phy = v == "phy",
            Some(("script" | "backend" | "discard" | "no-discard" | "direct-io-safe", _)) => {}
            Some((k, _)) => return Err(bad(format!("unknown disk parameter {k:?} in {spec:?}"))),
            None if item == "cdrom" => d.cdrom = true,
            None => positional.push(item.to_owned()),
        }
    }
    if let Some(t) = target_kv {
        d.target = t.trim().to_owned();
    }
    // Positional: target,format,vdev,access (xl) or prefix:target,vdev,access (xm).
    let pos: Vec<&str> = positional.iter().map(String::as_str).collect();
    let (target, format, vdev, access) = match pos.as_slice() {
        [t, f, v, a] => (Some(*t), Some(*f), Some(*v), Some(*a)),
        [t, v, a] => (Some(*t), None, Some(*v), Some(*a)),
        [t, v] => (Some(*t), None, Some(*v), None),
        [] => (None, None, None, None),
        _ => {
            return Err(bad(format!(
                "cannot read disk spec {spec:?}: expected target,format,vdev,access"
            )))
        }
    };
    if let Some(t) = target {
        let mut t = t;
        // xm prefixes: file:, phy:, tap:aio:, tap:qcow2:, qcow2:, raw:, aio:
        loop {
            match t.split_once(':') {
                Some(("phy", rest)) => {
                    d.phy = true;
                    t = rest;
                }
                Some(("file" | "tap" | "tap2" | "aio", rest)) => t = rest,
                Some((f @ ("qcow" | "qcow2" | "vhd" | "raw" | "vmdk"), rest)) => {
                    d.format = Some(f.to_owned());
                    t = rest;
                }
                _ => break,
            }
        }
        d.target = t.to_owned();
    }
    if let Some(f) = format.filter(|f| !f.is_empty()) {
        d.format = Some(f.to_owned());
    }
    if let Some(v) = vdev {
        let (v, cd) = match v.split_once(':') {
            Some((v, "cdrom")) => (v, true),
            _ => (v, false),
        };
        d.vdev = v.to_owned();
        d.cdrom |= cd;
    }
    if let Some(a) = access {
        d.readonly = matches!(a, "ro" | "r");
    }
    if d.vdev.is_empty() {
        return Err(bad(format!(
            "disk spec {spec:?} has no virtual device (vdev)"
        )));
    }
    if d.target.starts_with("/dev/") {
        d.phy = true;
    }
    Ok(d)
}

/// Translates an xl.cfg into the equivalent Xen libvirt domain; the strings
/// are the settings that were not translated (with their line).
pub fn to_xen_domain(text: &str) -> Result<(Document, Vec<String>), Error> {
    if text.len() > crate::MAX_INPUT {
        return Err(Error::TooLarge(text.len()));
    }
    let settings = parse(text)?;
    let get = |k: &str| settings.iter().rev().find(|s| s.key == k);
    let text_of = |k: &str| get(k).map(|s| s.value.as_text());
    let mut warnings = Vec::new();
    for s in &settings {
        if !KNOWN.contains(&s.key.as_str()) && !VNC_KEYS.contains(&s.key.as_str()) {
            warnings.push(format!(
                "xl.cfg line {}: {} = {} is not translated",
                s.line,
                s.key,
                s.value.as_text()
            ));
        }
    }
    let num = |k: &str| -> Result<Option<u64>, Error> {
        match get(k) {
            None => Ok(None),
            Some(s) => s.value.as_text().parse().map(Some).map_err(|_| Error::Xl {
                line: s.line,
                message: format!("{k} must be a number"),
            }),
        }
    };
    let name = text_of("name").ok_or(Error::Xl {
        line: 1,
        message: "no name = '...' setting".to_owned(),
    })?;
    let hvm = text_of("type")
        .or_else(|| text_of("builder"))
        .is_some_and(|t| t == "hvm");
    let mut x = String::new();
    x.push_str("<domain type='xen'>\n");
    x.push_str(&format!("  <name>{}</name>\n", esc(&name)));
    if let Some(u) = text_of("uuid") {
        x.push_str(&format!("  <uuid>{}</uuid>\n", esc(&u)));
    }
    let memory = num("memory")?.unwrap_or(128);
    let maxmem = num("maxmem")?.unwrap_or(memory).max(memory);
    x.push_str(&format!(
        "  <memory unit='KiB'>{}</memory>\n",
        maxmem * 1024
    ));
    x.push_str(&format!(
        "  <currentMemory unit='KiB'>{}</currentMemory>\n",
        memory * 1024
    ));
    let vcpus = num("vcpus")?.unwrap_or(1);
    let maxv = num("maxvcpus")?.unwrap_or(vcpus).max(vcpus);
    let mut vattrs = String::new();
    if let Some(c) = get("cpus") {
        vattrs.push_str(&format!(" cpuset='{}'", esc(&c.value.items().join(","))));
    }
    if maxv > vcpus {
        vattrs.push_str(&format!(" current='{vcpus}'"));
    }
    x.push_str(&format!(
        "  <vcpu placement='static'{vattrs}>{maxv}</vcpu>\n"
    ));
    if let Some(b) = text_of("bootloader") {
        x.push_str(&format!("  <bootloader>{}</bootloader>\n", esc(&b)));
    }
    if let Some(b) = text_of("bootloader_args") {
        x.push_str(&format!(
            "  <bootloader_args>{}</bootloader_args>\n",
            esc(&b)
        ));
    }
    x.push_str("  <os>\n");
    if hvm {
        x.push_str("    <type arch='x86_64' machine='xenfv'>hvm</type>\n");
        x.push_str("    <loader type='rom'>/usr/lib/xen/boot/hvmloader</loader>\n");
        let boot = text_of("boot").unwrap_or_else(|| "c".to_owned());
        for c in boot.chars() {
            let dev = match c {
                'c' => "hd",
                'd' => "cdrom",
                'n' => "network",
                'a' => "fd",
                _ => continue,
            };
            x.push_str(&format!("    <boot dev='{dev}'/>\n"));
        }
    } else {
        x.push_str("    <type arch='x86_64' machine='xenpv'>linux</type>\n");
        if let Some(k) = text_of("kernel") {
            x.push_str(&format!("    <kernel>{}</kernel>\n", esc(&k)));
        }
        if let Some(r) = text_of("ramdisk") {
            x.push_str(&format!("    <initrd>{}</initrd>\n", esc(&r)));
        }
        let cmdline = match text_of("cmdline") {
            Some(c) => Some(c),
            None => {
                let parts: Vec<String> = [
                    text_of("root").map(|r| format!("root={r}")),
                    text_of("extra"),
                ]
                .into_iter()
                .flatten()
                .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            }
        };
        if let Some(c) = cmdline {
            x.push_str(&format!("    <cmdline>{}</cmdline>\n", esc(&c)));
        }
    }
    x.push_str("  </os>\n");
    let flag = |k: &str, default: bool| text_of(k).map(|v| v != "0").unwrap_or(default);
    if hvm {
        x.push_str("  <features>\n");
        if flag("acpi", true) {
            x.push_str("    <acpi/>\n");
        }
        if flag("apic", true) {
            x.push_str("    <apic/>\n");
        }
        if flag("pae", true) {
            x.push_str("    <pae/>\n");
        }
        x.push_str("  </features>\n");
    }
    let offset = if flag("localtime", false) {
        "localtime"
    } else {
        "utc"
    };
    x.push_str(&format!("  <clock offset='{offset}'/>\n"));
    for (k, default) in [
        ("on_poweroff", "destroy"),
        ("on_reboot", "restart"),
        ("on_crash", "destroy"),
    ] {
        let v = text_of(k).unwrap_or_else(|| default.to_owned());
        x.push_str(&format!("  <{k}>{}</{k}>\n", esc(&v)));
    }
    x.push_str("  <devices>\n");
    if hvm {
        x.push_str("    <emulator>/usr/lib/xen/bin/qemu-system-i386</emulator>\n");
    }
    if let Some(s) = get("disk") {
        for spec in s.value.items() {
            let d = parse_disk(&spec, s.line)?;
            let kind = if d.phy { "block" } else { "file" };
            let device = if d.cdrom { "cdrom" } else { "disk" };
            let driver = if d.phy { "phy" } else { "qemu" };
            let bus = if d.vdev.starts_with("hd") {
                "ide"
            } else if d.vdev.starts_with("sd") {
                "scsi"
            } else {
                "xen"
            };
            x.push_str(&format!("    <disk type='{kind}' device='{device}'>\n"));
            match &d.format {
                Some(f) => x.push_str(&format!(
                    "      <driver name='{driver}' type='{}'/>\n",
                    esc(f)
                )),
                None => x.push_str(&format!("      <driver name='{driver}'/>\n")),
            }
            if !d.target.is_empty() {
                let attr = if d.phy { "dev" } else { "file" };
                x.push_str(&format!("      <source {attr}='{}'/>\n", esc(&d.target)));
            }
            x.push_str(&format!(
                "      <target dev='{}' bus='{bus}'/>\n",
                esc(&d.vdev)
            ));
            if d.readonly {
                x.push_str("      <readonly/>\n");
            }
            x.push_str("    </disk>\n");
        }
    }
    if let Some(s) = get("vif") {
        for spec in s.value.items() {
            let mut mac = None;
            let mut bridge = None;
            let mut model = None;
            let mut script = None;
            let mut vifname = None;
            let mut ip = None;
            for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                match kv(item) {
                    Some(("mac", v)) => mac = Some(v.to_owned()),
                    Some(("bridge", v)) => bridge = Some(v.to_owned()),
                    Some(("model", v)) => model = Some(v.to_owned()),
                    Some(("script", v)) => script = Some(v.to_owned()),
                    Some(("vifname", v)) => vifname = Some(v.to_owned()),
                    Some(("ip", v)) => ip = Some(v.to_owned()),
                    Some((
                        "type" | "rate" | "backend" | "gatewaydev" | "accel" | "devid" | "mtu",
                        _,
                    )) => {}
                    _ => {
                        return Err(Error::Xl {
                            line: s.line,
                            message: format!("cannot read vif item {item:?} in {spec:?}"),
                        })
                    }
                }
            }
            let bridge = bridge.unwrap_or_else(|| {
                warnings.push(format!(
                    "xl.cfg line {}: vif {spec:?} names no bridge: xl's default xenbr0 assumed",
                    s.line
                ));
                "xenbr0".to_owned()
            });
            x.push_str("    <interface type='bridge'>\n");
            if let Some(m) = mac {
                x.push_str(&format!("      <mac address='{}'/>\n", esc(&m)));
            }
            x.push_str(&format!("      <source bridge='{}'/>\n", esc(&bridge)));
            if let Some(i) = ip {
                x.push_str(&format!("      <ip address='{}'/>\n", esc(&i)));
            }
            if let Some(sc) = script {
                x.push_str(&format!("      <script path='{}'/>\n", esc(&sc)));
            }
            if let Some(v) = vifname {
                x.push_str(&format!("      <target dev='{}'/>\n", esc(&v)));
            }
            if let Some(m) = model {
                x.push_str(&format!("      <model type='{}'/>\n", esc(&m)));
            }
            x.push_str("    </interface>\n");
        }
    }
    if let Some(serial) = text_of("serial") {
        x.push_str(&format!(
            "    <serial type='{}'>\n      <target port='0'/>\n    </serial>\n",
            esc(&serial)
        ));
    }
    if !hvm {
        x.push_str(
            "    <console type='pty'>\n      <target type='xen' port='0'/>\n    </console>\n",
        );
    }
    // Graphics: PV vfb = [ 'vnc=1,...' ], or HVM top-level vnc=1 ...
    let mut vnc: Vec<(String, String)> = Vec::new();
    if let Some(s) = get("vfb") {
        for item in s.value.items().iter().flat_map(|v| {
            v.split(',')
                .map(str::trim)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }) {
            if let Some((k, v)) = kv(&item) {
                vnc.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    for k in VNC_KEYS {
        if let Some(v) = text_of(k) {
            vnc.push((k.to_string(), v));
        }
    }
    if let Some(u) = text_of("usbdevice") {
        for dev in get("usbdevice")
            .map(|s| s.value.items())
            .unwrap_or_default()
        {
            match dev.as_str() {
                "tablet" | "mouse" => x.push_str(&format!("    <input type='{dev}' bus='usb'/>\n")),
                _ => warnings.push(format!(
                    "xl.cfg: usbdevice {dev:?} (of {u:?}) is not translated"
                )),
            }
        }
    }
    let vget = |k: &str| {
        vnc.iter()
            .rev()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.clone())
    };
    if vget("vnc").is_some_and(|v| v != "0")
        || (get("vfb").is_some() && vget("vnc").is_none() && vget("sdl").is_none())
    {
        if !hvm {
            x.push_str(
                "    <input type='mouse' bus='xen'/>\n    <input type='keyboard' bus='xen'/>\n",
            );
        } else {
            x.push_str(
                "    <input type='mouse' bus='ps2'/>\n    <input type='keyboard' bus='ps2'/>\n",
            );
        }
        let port = match vget("vncdisplay").and_then(|d| d.parse::<u32>().ok()) {
            Some(d) => format!("port='{}' autoport='no'", 5900 + d),
            None => "port='-1' autoport='yes'".to_owned(),
        };
        let mut g = format!("    <graphics type='vnc' {port}");
        if let Some(l) = vget("vnclisten") {
            g.push_str(&format!(" listen='{}'", esc(&l)));
        }
        if let Some(k) = vget("keymap") {
            g.push_str(&format!(" keymap='{}'", esc(&k)));
        }
        if let Some(p) = vget("vncpasswd") {
            g.push_str(&format!(" passwd='{}'", esc(&p)));
        }
        g.push_str("/>\n");
        x.push_str(&g);
    }
    x.push_str("  </devices>\n</domain>\n");
    let doc = dom::parse(&x).map_err(|e| Error::Xml(format!("internal: generated XML: {e}")))?;
    Ok((doc, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_lists_comments_and_strings() {
        let s = parse(
            "# c\nname = \"g1\" # trailing\nmemory=512;\ndisk = [ 'a,b',\n  # inner\n  \"c\", ]\n",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[2].value,
            Value::List(vec![Value::Str("a,b".into()), Value::Str("c".into())])
        );
        assert_eq!(s[2].line, 4);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("name = 'a'\nmemory = \n").unwrap_err();
        assert!(matches!(e, Error::Xl { line: 2, .. }), "{e:?}");
        let e = parse("name = 'a'\ndisk = [ 'x'\n").unwrap_err();
        assert!(matches!(e, Error::Xl { .. }), "{e:?}");
        let e = parse("name 'a'\n").unwrap_err();
        assert_eq!(e.to_string(), "xl.cfg line 1: expected '=' after name");
    }

    #[test]
    fn disk_specs() {
        let d = parse_disk("file:/srv/g.img,xvda,w", 1).unwrap();
        assert_eq!(
            (d.target.as_str(), d.vdev.as_str(), d.readonly, d.phy),
            ("/srv/g.img", "xvda", false, false)
        );
        let d = parse_disk("phy:/dev/vg/lv,xvdb,w", 1).unwrap();
        assert!(d.phy);
        let d = parse_disk("tap:qcow2:/srv/g.qcow2,xvdc,r", 1).unwrap();
        assert_eq!((d.format.as_deref(), d.readonly), (Some("qcow2"), true));
        let d = parse_disk("/srv/g.qcow2,qcow2,xvdd,rw", 1).unwrap();
        assert_eq!(
            (d.format.as_deref(), d.vdev.as_str()),
            (Some("qcow2"), "xvdd")
        );
        let d = parse_disk("format=raw, vdev=xvde, access=rw, target=/srv/a,b.img", 1).unwrap();
        assert_eq!(
            (d.target.as_str(), d.vdev.as_str()),
            ("/srv/a,b.img", "xvde")
        );
        let d = parse_disk("/srv/cd.iso,raw,hdc:cdrom,r", 1).unwrap();
        assert!(d.cdrom && d.readonly);
        assert!(parse_disk("/srv/x.img", 3).is_err());
        assert!(parse_disk("bogus=1,vdev=xvda,target=/x", 3).is_err());
    }
}
