//! Registry values and hives: [`Value`] (typed, encoded as Windows stores
//! it), the [`Hive`] trait every reader and writer of a hive implements (the
//! appliance's hivex in the inspector, [`MemHive`] here), and the `.reg`-like
//! rendering used by reports, dry runs and goldens.
//!
//! Key paths are relative to the hive's root and separated by `\`
//! (`ControlSet001\Services\viostor`); names compare case-insensitively, as
//! Windows compares them. Hive contents are untrusted: decoding never fails,
//! odd data becomes [`Value::Other`] or a lossy string.

use std::fmt;
use std::io;

/// `REG_SZ`.
pub const REG_SZ: u32 = 1;
/// `REG_EXPAND_SZ`.
pub const REG_EXPAND_SZ: u32 = 2;
/// `REG_BINARY`.
pub const REG_BINARY: u32 = 3;
/// `REG_DWORD` (little-endian).
pub const REG_DWORD: u32 = 4;
/// `REG_MULTI_SZ`.
pub const REG_MULTI_SZ: u32 = 7;

/// Which hive of the guest (`%SystemRoot%\System32\config\…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HiveKind {
    /// `HKLM\SYSTEM`: services, control sets, class filters.
    System,
    /// `HKLM\SOFTWARE`: product, version, `DevicePath`.
    Software,
}

impl HiveKind {
    /// The name under `HKEY_LOCAL_MACHINE`.
    pub fn as_str(self) -> &'static str {
        match self {
            HiveKind::System => "SYSTEM",
            HiveKind::Software => "SOFTWARE",
        }
    }
}

/// A registry value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `REG_SZ`.
    Sz(String),
    /// `REG_EXPAND_SZ` (`%SystemRoot%` expanded by Windows when read).
    ExpandSz(String),
    /// `REG_MULTI_SZ`.
    MultiSz(Vec<String>),
    /// `REG_DWORD`.
    Dword(u32),
    /// `REG_BINARY`.
    Binary(Vec<u8>),
    /// Any other type, or a value whose data does not fit its type.
    Other {
        /// The registry type number.
        kind: u32,
        /// The raw data.
        data: Vec<u8>,
    },
}

fn utf16z(s: &str, out: &mut Vec<u8>) {
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out.extend_from_slice(&[0, 0]);
}

fn units(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

impl Value {
    /// The registry type number.
    pub fn kind(&self) -> u32 {
        match self {
            Value::Sz(_) => REG_SZ,
            Value::ExpandSz(_) => REG_EXPAND_SZ,
            Value::MultiSz(_) => REG_MULTI_SZ,
            Value::Dword(_) => REG_DWORD,
            Value::Binary(_) => REG_BINARY,
            Value::Other { kind, .. } => *kind,
        }
    }

    /// The data as Windows stores it (UTF-16LE strings with their
    /// terminators, little-endian DWORDs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Value::Sz(s) | Value::ExpandSz(s) => utf16z(s, &mut out),
            Value::MultiSz(items) => {
                for i in items {
                    utf16z(i, &mut out);
                }
                out.extend_from_slice(&[0, 0]);
            }
            Value::Dword(d) => out.extend_from_slice(&d.to_le_bytes()),
            Value::Binary(b) | Value::Other { data: b, .. } => out.extend_from_slice(b),
        }
        out
    }

    /// A value from its type number and data, as read from a hive.
    pub fn decode(kind: u32, data: &[u8]) -> Value {
        match kind {
            REG_SZ | REG_EXPAND_SZ => {
                let u = units(data);
                let end = u.iter().position(|&c| c == 0).unwrap_or(u.len());
                let s = String::from_utf16_lossy(&u[..end]);
                if kind == REG_SZ {
                    Value::Sz(s)
                } else {
                    Value::ExpandSz(s)
                }
            }
            REG_MULTI_SZ => {
                let u = units(data);
                let mut items: Vec<String> =
                    u.split(|&c| c == 0).map(String::from_utf16_lossy).collect();
                while items.last().is_some_and(String::is_empty) {
                    items.pop();
                }
                Value::MultiSz(items)
            }
            REG_DWORD if data.len() == 4 => {
                Value::Dword(u32::from_le_bytes([data[0], data[1], data[2], data[3]]))
            }
            REG_BINARY => Value::Binary(data.to_vec()),
            _ => Value::Other {
                kind,
                data: data.to_vec(),
            },
        }
    }

    /// The text of a `REG_SZ` or `REG_EXPAND_SZ`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Sz(s) | Value::ExpandSz(s) => Some(s),
            _ => None,
        }
    }

    /// The number of a `REG_DWORD`.
    pub fn as_dword(&self) -> Option<u32> {
        match self {
            Value::Dword(d) => Some(*d),
            _ => None,
        }
    }
}

/// `.reg`-like: `"text"`, `expand:"text"`, `multi:"a","b"`, `dword:00000004`,
/// `hex:01,02`, `hex(N):…`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = |b: &[u8]| {
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Value::Sz(s) => write!(f, "{s:?}"),
            Value::ExpandSz(s) => write!(f, "expand:{s:?}"),
            Value::MultiSz(items) => {
                let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
                write!(f, "multi:{}", quoted.join(","))
            }
            Value::Dword(d) => write!(f, "dword:{d:08x}"),
            Value::Binary(b) => write!(f, "hex:{}", hex(b)),
            Value::Other { kind, data } => write!(f, "hex({kind:x}):{}", hex(data)),
        }
    }
}

/// The components of a key path (`A\B\C`), empty ones dropped.
pub fn components(key: &str) -> Vec<&str> {
    key.split('\\').filter(|c| !c.is_empty()).collect()
}

/// A hive, read and written by key path.
pub trait Hive {
    /// The names of the subkeys of `key`; `None` when `key` does not exist.
    fn subkeys(&self, key: &str) -> io::Result<Option<Vec<String>>>;
    /// The value `name` of `key` (`""`: the key's default value); `None`
    /// when the key or the value does not exist.
    fn value(&self, key: &str, name: &str) -> io::Result<Option<Value>>;
    /// Sets the value `name` of `key`, creating the key and its missing
    /// parents.
    fn set_value(&mut self, key: &str, name: &str, value: &Value) -> io::Result<()>;

    /// Whether `key` exists.
    fn exists(&self, key: &str) -> io::Result<bool> {
        Ok(self.subkeys(key)?.is_some())
    }
}

/// A hive in memory (tests, and the plan's view of a hive after edits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemHive {
    root: Node,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    name: String,
    values: Vec<(String, Value)>,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    fn child_mut(&mut self, name: &str) -> &mut Node {
        let i = match self
            .children
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
        {
            Some(i) => i,
            None => {
                self.children.push(Node {
                    name: name.to_owned(),
                    ..Node::default()
                });
                self.children.len() - 1
            }
        };
        &mut self.children[i]
    }

    fn export(&self, path: &str, prefix: &str, out: &mut String) {
        if path.is_empty() {
            out.push_str(&format!("[{prefix}]\n"));
        } else {
            out.push_str(&format!("[{prefix}\\{path}]\n"));
        }
        let mut values: Vec<&(String, Value)> = self.values.iter().collect();
        values.sort_by_key(|(n, _)| n.to_ascii_lowercase());
        for (n, v) in values {
            let name = if n.is_empty() {
                "@".to_owned()
            } else {
                format!("{n:?}")
            };
            out.push_str(&format!("{name}={v}\n"));
        }
        out.push('\n');
        let mut children: Vec<&Node> = self.children.iter().collect();
        children.sort_by_key(|c| c.name.to_ascii_lowercase());
        for c in children {
            let p = if path.is_empty() {
                c.name.clone()
            } else {
                format!("{path}\\{}", c.name)
            };
            c.export(&p, prefix, out);
        }
    }
}

impl MemHive {
    /// An empty hive.
    pub fn new() -> MemHive {
        MemHive::default()
    }

    fn node(&self, key: &str) -> Option<&Node> {
        let mut n = &self.root;
        for c in components(key) {
            n = n.child(c)?;
        }
        Some(n)
    }

    /// Every key and value, sorted, in the `.reg`-like form of
    /// [`Value`]'s `Display`, each key prefixed by `prefix`.
    pub fn export(&self, prefix: &str) -> String {
        let mut out = String::new();
        self.root.export("", prefix, &mut out);
        out
    }
}

impl Hive for MemHive {
    fn subkeys(&self, key: &str) -> io::Result<Option<Vec<String>>> {
        Ok(self
            .node(key)
            .map(|n| n.children.iter().map(|c| c.name.clone()).collect()))
    }

    fn value(&self, key: &str, name: &str) -> io::Result<Option<Value>> {
        Ok(self.node(key).and_then(|n| {
            n.values
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        }))
    }

    fn set_value(&mut self, key: &str, name: &str, value: &Value) -> io::Result<()> {
        let mut n = &mut self.root;
        for c in components(key) {
            n = n.child_mut(c);
        }
        match n
            .values
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => *v = value.clone(),
            None => n.values.push((name.to_owned(), value.clone())),
        }
        Ok(())
    }
}

/// Parses a `.reg` text: `[KEY]` lines (with `prefix` stripped), then
/// `"name"=…` / `@=…` lines in the forms [`Value`]'s `Display` writes, plus
/// `hex(N):` for any type. Continuation lines (`\` at the end) are joined.
/// Used by tests on the phony guests' own `.reg` files.
pub fn parse_reg(text: &str, prefix: &str) -> io::Result<Vec<(String, String, Value)>> {
    let bad = |line: &str, why: &str| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{why}: {line:?}"))
    };
    let mut out = Vec::new();
    let mut key: Option<String> = None;
    let mut joined = String::new();
    for raw in text.lines() {
        let raw = raw.trim_end_matches('\r');
        if let Some(start) = raw.strip_suffix('\\') {
            joined.push_str(start.trim_start());
            continue;
        }
        joined.push_str(raw.trim_start());
        let line = std::mem::take(&mut joined);
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with("Windows Registry") {
            continue;
        }
        if let Some(k) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let k = k.strip_prefix(prefix).unwrap_or(k);
            key = Some(k.trim_start_matches('\\').to_owned());
            continue;
        }
        let k = key
            .clone()
            .ok_or_else(|| bad(line, "value before any key"))?;
        let (name, rest) = if let Some(rest) = line.strip_prefix("@=") {
            (String::new(), rest)
        } else {
            let body = line
                .strip_prefix('"')
                .ok_or_else(|| bad(line, "no value name"))?;
            let end = body
                .find("\"=")
                .ok_or_else(|| bad(line, "no '=' after the name"))?;
            (body[..end].replace("\\\\", "\\"), &body[end + 2..])
        };
        out.push((
            k,
            name,
            parse_data(rest).ok_or_else(|| bad(line, "bad data"))?,
        ));
    }
    Ok(out)
}

fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn parse_data(s: &str) -> Option<Value> {
    if let Some(d) = s.strip_prefix("dword:") {
        return u32::from_str_radix(d.trim(), 16).ok().map(Value::Dword);
    }
    if let Some(q) = s.strip_prefix("expand:") {
        return unquote(q).map(Value::ExpandSz);
    }
    if let Some(list) = s.strip_prefix("multi:") {
        let mut items = Vec::new();
        let mut rest = list.trim();
        while !rest.is_empty() {
            let body = rest.strip_prefix('"')?;
            let mut end = None;
            let mut escaped = false;
            for (i, c) in body.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            let end = end?;
            items.push(unquote(&format!("\"{}\"", &body[..end]))?);
            rest = body[end + 1..].trim_start_matches(',').trim();
        }
        return Some(Value::MultiSz(items));
    }
    if s.starts_with('"') {
        return unquote(s).map(Value::Sz);
    }
    let (kind, hex) = if let Some(h) = s.strip_prefix("hex:") {
        (REG_BINARY, h)
    } else {
        let h = s.strip_prefix("hex(")?;
        let close = h.find("):")?;
        (u32::from_str_radix(&h[..close], 16).ok()?, &h[close + 2..])
    };
    let mut data = Vec::new();
    for b in hex.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        data.push(u8::from_str_radix(b, 16).ok()?);
    }
    Some(Value::decode(kind, &data))
}

impl MemHive {
    /// A hive holding the keys and values of a `.reg` text (see
    /// [`parse_reg`]); keys listed without values exist too.
    pub fn from_reg(text: &str, prefix: &str) -> io::Result<MemHive> {
        let mut h = MemHive::new();
        for line in text.lines() {
            if let Some(k) = line
                .trim()
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
            {
                let k = k.strip_prefix(prefix).unwrap_or(k);
                let mut n = &mut h.root;
                for c in components(k) {
                    n = n.child_mut(c);
                }
            }
        }
        for (key, name, value) in parse_reg(text, prefix)? {
            h.set_value(&key, &name, &value)?;
        }
        Ok(h)
    }
}
