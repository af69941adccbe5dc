//! Small text helpers shared by the rules: line-wise editing that keeps
//! line endings, and shell-style `KEY="value"` assignments.

/// Calls `f(line_number, line)` for every line (without its ending); where it
/// returns `Some(new)`, the line is replaced and its ending kept. Lines `f`
/// returns `None` for are kept byte for byte.
pub(crate) fn edit_lines(text: &str, mut f: impl FnMut(usize, &str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let (line, ending) = split_ending(raw);
        match f(i + 1, line) {
            Some(new) => {
                out.push_str(&new);
                out.push_str(ending);
            }
            None => out.push_str(raw),
        }
    }
    out
}

/// Like [`edit_lines`], but `f` may also drop a line (`Some(None)`).
pub(crate) fn filter_lines(
    text: &str,
    mut f: impl FnMut(usize, &str) -> Option<Option<String>>,
) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let (line, ending) = split_ending(raw);
        match f(i + 1, line) {
            Some(Some(new)) => {
                out.push_str(&new);
                out.push_str(ending);
            }
            Some(None) => {}
            None => out.push_str(raw),
        }
    }
    out
}

fn split_ending(raw: &str) -> (&str, &str) {
    if let Some(l) = raw.strip_suffix("\r\n") {
        (l, "\r\n")
    } else if let Some(l) = raw.strip_suffix('\n') {
        (l, "\n")
    } else {
        (raw, "")
    }
}

/// The line ending a file uses (for lines the rules add).
pub(crate) fn ending_of(text: &str) -> &'static str {
    if text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

/// Appends `line` (without ending) to `text`, adding a missing final newline.
pub(crate) fn append_line(text: &mut String, line: &str) {
    let nl = ending_of(text);
    if !text.is_empty() && !text.ends_with('\n') {
        text.push_str(nl);
    }
    text.push_str(line);
    text.push_str(nl);
}

/// Blank or `#` comment.
pub(crate) fn is_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// A shell assignment `[export ]KEY=VALUE` as found on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assign<'a> {
    /// Everything before the key (indentation, `export `).
    pub(crate) prefix: &'a str,
    pub(crate) key: &'a str,
    /// `+=` or `=`.
    pub(crate) op: &'a str,
    /// The quote used (`"`, `'` or none).
    pub(crate) quote: &'static str,
    /// The value without its quotes.
    pub(crate) value: &'a str,
    /// What follows the closing quote (a comment, spaces).
    pub(crate) suffix: &'a str,
}

impl Assign<'_> {
    /// Parses one line; `None` for anything else, including values this
    /// simple reader cannot reproduce exactly (escaped quotes, `$(…)`).
    pub(crate) fn parse(line: &str) -> Option<Assign<'_>> {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let (prefix_len, body) = match body.strip_prefix("export ") {
            Some(b) => (indent.len() + 7, b.trim_start()),
            None => (indent.len(), body),
        };
        let prefix = &line[..line.len() - body.len()];
        debug_assert!(prefix.len() >= prefix_len);
        let key_len = body
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if key_len == 0 {
            return None;
        }
        let key = &body[..key_len];
        let after = &body[key_len..];
        let (op, rest) = if let Some(r) = after.strip_prefix("+=") {
            ("+=", r)
        } else if let Some(r) = after.strip_prefix('=') {
            ("=", r)
        } else {
            return None;
        };
        for q in ["\"", "'"] {
            if let Some(inner) = rest.strip_prefix(q) {
                let end = inner.find(q)?;
                let value = &inner[..end];
                if value.contains('\\') || (q == "\"" && value.contains("$(")) {
                    return None;
                }
                let suffix = &inner[end + 1..];
                if !(suffix.trim().is_empty() || suffix.trim_start().starts_with('#')) {
                    return None;
                }
                return Some(Assign {
                    prefix,
                    key,
                    op,
                    quote: if q == "\"" { "\"" } else { "'" },
                    value,
                    suffix,
                });
            }
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let value = &rest[..end];
        let suffix = &rest[end..];
        if value.contains(['\\', '"', '\'', '`', '$'])
            || !(suffix.trim().is_empty() || suffix.trim_start().starts_with('#'))
        {
            return None;
        }
        Some(Assign {
            prefix,
            key,
            op,
            quote: "",
            value,
            suffix,
        })
    }

    /// The line with `value` in place of the old one (quoted as before, or
    /// with double quotes when a bare value gets a space).
    pub(crate) fn with_value(&self, value: &str) -> String {
        let quote =
            if self.quote.is_empty() && (value.contains(char::is_whitespace) || value.is_empty()) {
                "\""
            } else {
                self.quote
            };
        format!(
            "{}{}{}{quote}{value}{quote}{}",
            self.prefix, self.key, self.op, self.suffix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments() {
        let a = Assign::parse("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet console=hvc0\"").unwrap();
        assert_eq!(
            (a.key, a.value, a.quote),
            ("GRUB_CMDLINE_LINUX_DEFAULT", "quiet console=hvc0", "\"")
        );
        assert_eq!(
            a.with_value("quiet"),
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\""
        );
        let a = Assign::parse("  export add_drivers+=' xenblk ' # xen").unwrap();
        assert_eq!(
            (a.prefix, a.key, a.op, a.value),
            ("  export ", "add_drivers", "+=", " xenblk ")
        );
        assert_eq!(
            a.with_value(" virtio_blk "),
            "  export add_drivers+=' virtio_blk ' # xen"
        );
        let a = Assign::parse("GRUB_DEFAULT=saved").unwrap();
        assert_eq!(a.with_value("a b"), "GRUB_DEFAULT=\"a b\"");
        assert!(Assign::parse("X=\"$(cat /x)\"").is_none());
        assert!(Assign::parse("X=\"a\" ; Y=b").is_none());
        assert!(Assign::parse("# X=1").is_none());
    }

    #[test]
    fn lines_keep_endings() {
        let out = edit_lines("a\r\nb\nc", |_, l| Some(l.to_uppercase()));
        assert_eq!(out, "A\r\nB\nC");
        let out = filter_lines("a\nb\nc\n", |_, l| (l == "b").then_some(None));
        assert_eq!(out, "a\nc\n");
    }
}
