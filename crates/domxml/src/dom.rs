//! A small XML tree that round-trips: element and attribute order, comments,
//! processing instructions, CDATA and whitespace survive a parse → serialize.
//!
//! Parsing uses quick-xml's event reader. A DOCTYPE (and so any entity
//! declaration) is rejected outright: entities are never expanded. Only the
//! five predefined entities and character references are decoded.

use std::fmt;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// A node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data (unescaped).
    Text(String),
    /// A comment's content.
    Comment(String),
    /// A CDATA section's content.
    CData(String),
    /// A processing instruction's content.
    Pi(String),
}

/// An element: name, attributes in document order, children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The tag name.
    pub name: String,
    /// Attributes (unescaped values), in document order.
    pub attrs: Vec<(String, String)>,
    /// Child nodes.
    pub children: Vec<Node>,
}

/// A parsed document: what precedes the root (declaration, comments), the
/// root, and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The XML declaration, verbatim, if any.
    pub decl: Option<String>,
    /// Comments and PIs before the root, with the whitespace between them.
    pub prolog: Vec<Node>,
    /// The root element.
    pub root: Element,
    /// Nodes after the root.
    pub epilog: Vec<Node>,
}

/// Why a text is not an acceptable XML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// One line, with the byte offset where known.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

fn perr(msg: impl Into<String>) -> ParseError {
    ParseError {
        message: msg.into(),
    }
}

fn element_of(start: &BytesStart<'_>, pos: u64) -> Result<Element, ParseError> {
    let name = String::from_utf8(start.name().as_ref().to_vec())
        .map_err(|_| perr(format!("invalid UTF-8 in a tag name at byte {pos}")))?;
    let mut attrs = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| {
            perr(format!(
                "malformed attribute in <{name}> at byte {pos}: {e}"
            ))
        })?;
        let key = String::from_utf8(a.key.as_ref().to_vec())
            .map_err(|_| perr(format!("invalid UTF-8 in <{name}> at byte {pos}")))?;
        let value = a
            .unescape_value()
            .map_err(|e| perr(format!("bad value of {key} in <{name}> at byte {pos}: {e}")))?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
    })
}

/// How deep elements may nest. A libvirt domain is about 6 levels deep; the
/// tree is written and dropped recursively, so an input nested 100,000 deep
/// (it fits in 1 MiB) would overflow the stack: refused, with a message.
pub const MAX_DEPTH: usize = 64;

/// Parses a whole document.
pub fn parse(text: &str) -> Result<Document, ParseError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut decl = None;
    let mut prolog = Vec::new();
    let mut epilog = Vec::new();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let pos = reader.buffer_position();
        let ev = reader.read_event().map_err(|e| {
            perr(format!(
                "malformed XML at byte {}: {e}",
                reader.error_position()
            ))
        })?;
        let node = match ev {
            Event::Eof => break,
            Event::DocType(_) => {
                return Err(perr(
                    "DOCTYPE and entity declarations are not accepted in a domain config",
                ))
            }
            Event::Decl(d) => {
                decl = Some(String::from_utf8_lossy(&d).into_owned());
                continue;
            }
            Event::Start(s) => {
                if root.is_some() {
                    return Err(perr(format!("second root element at byte {pos}")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(perr(format!(
                        "elements nested more than {MAX_DEPTH} deep at byte {pos}: not a domain config"
                    )));
                }
                stack.push(element_of(&s, pos)?);
                continue;
            }
            Event::End(_) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| perr(format!("unexpected end tag at byte {pos}")))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => root = Some(done),
                }
                continue;
            }
            Event::Empty(s) => {
                if root.is_some() && stack.is_empty() {
                    return Err(perr(format!("second root element at byte {pos}")));
                }
                Node::Element(element_of(&s, pos)?)
            }
            Event::Text(t) => {
                let s = t
                    .unescape()
                    .map_err(|e| perr(format!("bad text at byte {pos}: {e}")))?;
                Node::Text(s.into_owned())
            }
            Event::CData(c) => Node::CData(String::from_utf8_lossy(&c).into_owned()),
            Event::Comment(c) => {
                let c = String::from_utf8_lossy(&c).into_owned();
                if c.contains("--") || c.ends_with('-') {
                    return Err(perr(format!(
                        "'--' inside a comment at byte {pos} (not well-formed XML)"
                    )));
                }
                Node::Comment(c)
            }
            Event::PI(p) => Node::Pi(String::from_utf8_lossy(&p).into_owned()),
        };
        match (stack.last_mut(), &root, node) {
            (Some(parent), _, n) => parent.children.push(n),
            (None, None, Node::Element(e)) => root = Some(e),
            (None, None, n) => {
                if matches!(&n, Node::Text(t) if !t.trim().is_empty()) {
                    return Err(perr(format!("text outside the root element at byte {pos}")));
                }
                prolog.push(n)
            }
            (None, Some(_), n) => {
                if matches!(&n, Node::Text(t) if !t.trim().is_empty()) {
                    return Err(perr(format!("text after the root element at byte {pos}")));
                }
                epilog.push(n)
            }
        }
    }
    if !stack.is_empty() {
        return Err(perr(format!(
            "unclosed element <{}> at end of input",
            stack.last().map(|e| e.name.as_str()).unwrap_or("")
        )));
    }
    let root = root.ok_or_else(|| perr("no root element"))?;
    Ok(Document {
        decl,
        prolog,
        root,
        epilog,
    })
}

fn escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' if attr => out.push_str("&apos;"),
            '"' if attr => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn write_node(out: &mut String, n: &Node) {
    match n {
        Node::Element(e) => write_element(out, e),
        Node::Text(t) => out.push_str(&escape(t, false)),
        Node::Comment(c) => {
            out.push_str("<!--");
            out.push_str(c);
            out.push_str("-->");
        }
        Node::CData(c) => {
            out.push_str("<![CDATA[");
            out.push_str(c);
            out.push_str("]]>");
        }
        Node::Pi(p) => {
            out.push_str("<?");
            out.push_str(p);
            out.push_str("?>");
        }
    }
}

fn write_element(out: &mut String, e: &Element) {
    out.push('<');
    out.push_str(&e.name);
    for (k, v) in &e.attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("='");
        out.push_str(&escape(v, true));
        out.push('\'');
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for c in &e.children {
        write_node(out, c);
    }
    out.push_str("</");
    out.push_str(&e.name);
    out.push('>');
}

impl Document {
    /// Serializes the document (attribute values in single quotes, as
    /// libvirt writes them).
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        if let Some(d) = &self.decl {
            out.push_str("<?");
            out.push_str(d);
            out.push_str("?>");
        }
        for n in &self.prolog {
            write_node(&mut out, n);
        }
        write_element(&mut out, &self.root);
        for n in &self.epilog {
            write_node(&mut out, n);
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

impl Element {
    /// A new element with attributes and no children.
    pub fn new(name: &str, attrs: &[(&str, &str)]) -> Element {
        Element {
            name: name.to_owned(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            children: Vec::new(),
        }
    }

    /// The same, with one text child.
    pub fn with_text(name: &str, attrs: &[(&str, &str)], text: &str) -> Element {
        let mut e = Element::new(name, attrs);
        e.children.push(Node::Text(text.to_owned()));
        e
    }

    /// An attribute's value.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets an attribute, in place when it exists, else appended.
    pub fn set_attr(&mut self, key: &str, value: &str) {
        match self.attrs.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.attrs.push((key.to_owned(), value.to_owned())),
        }
    }

    /// Removes an attribute; returns its old value.
    pub fn remove_attr(&mut self, key: &str) -> Option<String> {
        let i = self.attrs.iter().position(|(k, _)| k == key)?;
        Some(self.attrs.remove(i).1)
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// Child elements, mutable.
    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The first child element named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// The first child element named `name`, mutable.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.name == name)
    }

    /// The concatenated text of the element's text children.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) | Node::CData(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Replaces the element's children with one text node.
    pub fn set_text(&mut self, text: &str) {
        self.children = vec![Node::Text(text.to_owned())];
    }

    /// Removes child elements for which `f` is true, with the whitespace
    /// that indented them; returns the removed elements.
    pub fn remove_children(&mut self, mut f: impl FnMut(&Element) -> bool) -> Vec<Element> {
        let mut removed = Vec::new();
        let mut i = 0;
        while i < self.children.len() {
            let hit = matches!(&self.children[i], Node::Element(e) if f(e));
            if hit {
                if let Node::Element(e) = self.children.remove(i) {
                    removed.push(e);
                }
                if i > 0 && matches!(&self.children[i - 1], Node::Text(t) if t.trim().is_empty()) {
                    self.children.remove(i - 1);
                    i -= 1;
                }
            } else {
                i += 1;
            }
        }
        removed
    }

    /// The whitespace that indents this element's children ("\n    "), from
    /// the existing children, else one level deeper than `own_indent`.
    fn child_indent(&self, own_indent: &str) -> String {
        for n in &self.children {
            if let Node::Text(t) = n {
                if t.trim().is_empty() && t.contains('\n') {
                    return t.clone();
                }
            }
        }
        format!("{own_indent}  ")
    }

    /// Inserts `child` at element position `at` (counted in child elements;
    /// `None` appends), indented like its siblings. `own_indent` is this
    /// element's own indentation ("\n  "), used when it has no children yet.
    pub fn insert_element(&mut self, at: Option<usize>, child: Element, own_indent: &str) {
        let indent = self.child_indent(own_indent);
        let positions: Vec<usize> = self
            .children
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n, Node::Element(_)))
            .map(|(i, _)| i)
            .collect();
        match at.and_then(|k| positions.get(k).copied()) {
            Some(mut i) => {
                // Before the comments that belong to the k-th element.
                while i >= 2
                    && matches!(&self.children[i - 1], Node::Text(t) if t.trim().is_empty())
                    && matches!(&self.children[i - 2], Node::Comment(_))
                {
                    i -= 2;
                }
                // Before the k-th element: element, then the indent that
                // preceded the old one, so the old one keeps its place.
                self.children.insert(i, Node::Text(indent));
                self.children.insert(i, Node::Element(child));
            }
            None => {
                let closing = match self.children.last() {
                    Some(Node::Text(t)) if t.trim().is_empty() => {
                        let t = t.clone();
                        self.children.pop();
                        t
                    }
                    _ => own_indent.to_owned(),
                };
                if self.children.is_empty() && closing.is_empty() {
                    self.children.push(Node::Element(child));
                    return;
                }
                self.children.push(Node::Text(indent));
                self.children.push(Node::Element(child));
                self.children.push(Node::Text(closing));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_comments_order_and_whitespace() {
        let src = "<?xml version='1.0'?>\n<!-- top -->\n<domain type='xen' id=\"3\">\n  <!-- keep me -->\n  <name>a &amp; b</name>\n  <x:unknown xmlns:x='urn:x' b='2' a='1'><![CDATA[raw <stuff>]]></x:unknown>\n</domain>\n";
        let doc = parse(src).unwrap();
        let out = doc.to_xml();
        assert_eq!(out, src.replace("id=\"3\"", "id='3'"));
        assert_eq!(parse(&out).unwrap(), doc);
    }

    #[test]
    fn rejects_doctype_and_unknown_entities() {
        let e = parse("<!DOCTYPE d [<!ENTITY x 'boom'>]><domain>&x;</domain>").unwrap_err();
        assert!(e.message.contains("DOCTYPE"), "{e}");
        assert!(parse("<domain>&x;</domain>").is_err());
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(parse("<domain><name></domain>").is_err());
        assert!(parse("<domain>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("<a><!-- x -- y --></a>").is_err());
    }

    #[test]
    fn insert_and_remove_keep_indentation() {
        let mut doc = parse("<os>\n    <type>linux</type>\n  </os>").unwrap();
        doc.root
            .insert_element(None, Element::new("boot", &[("dev", "hd")]), "\n  ");
        assert_eq!(
            doc.to_xml(),
            "<os>\n    <type>linux</type>\n    <boot dev='hd'/>\n  </os>\n"
        );
        doc.root.remove_children(|e| e.name == "type");
        assert_eq!(doc.to_xml(), "<os>\n    <boot dev='hd'/>\n  </os>\n");
        let mut empty = parse("<devices/>").unwrap();
        empty
            .root
            .insert_element(None, Element::new("memballoon", &[]), "\n  ");
        assert_eq!(
            empty.to_xml(),
            "<devices>\n    <memballoon/>\n  </devices>\n"
        );
    }
}
