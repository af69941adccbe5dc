//! Tier 2: every golden KVM document of `crates/domxml/test_data` is
//! defined in a real libvirtd (`virsh define`), and what libvirt stores
//! keeps the source's UUID, MACs and vcpu cpuset; then it is undefined.
//!
//! libvirtd is started when it is not running (`libvirtd -d`; it needs
//! `/var/log/libvirt`). Needs root.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};

use xen2kvm_tests::{e2e_enabled, ensure_libvirtd, repo_root, virsh};

/// The values of `attr` on every `<tag ...>` in `xml`, in order.
fn attrs(xml: &str, tag: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in xml.split(&format!("<{tag} ")).skip(1) {
        let head = piece.split('>').next().unwrap_or("");
        for q in ['\'', '"'] {
            if let Some(i) = head.find(&format!("{attr}={q}")) {
                let rest = &head[i + attr.len() + 2..];
                out.push(rest[..rest.find(q).unwrap_or(0)].to_owned());
            }
        }
    }
    out
}

fn element_text(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    Some(xml[start..start + xml[start..].find('<')?].to_owned())
}

#[test]
fn converted_documents_define_in_libvirtd() {
    if !e2e_enabled() {
        eprintln!(
            "skipping: end-to-end tests are off (set XEN2KVM_E2E=1, or run `cargo xtask test`)"
        );
        return;
    }
    ensure_libvirtd();
    let dir = repo_root().join("crates/domxml/test_data");
    let mut docs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".kvm.xml"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 8);
    for doc in docs {
        check_one(&doc);
    }
}

fn check_one(doc: &Path) {
    let xml = std::fs::read_to_string(doc).unwrap();
    let name = element_text(&xml, "name").expect("a name");
    let _ = virsh(&["undefine", &name]);
    let (ok, out) = virsh(&["define", doc.to_str().unwrap()]);
    assert!(ok, "virsh define {} failed: {out}", doc.display());
    let (ok, stored) = virsh(&["dumpxml", "--inactive", &name]);
    let _ = virsh(&["undefine", &name]);
    assert!(ok, "virsh dumpxml {name}: {stored}");
    if let Some(uuid) = element_text(&xml, "uuid") {
        assert_eq!(
            element_text(&stored, "uuid").as_deref(),
            Some(uuid.as_str()),
            "{name}: UUID"
        );
    }
    let macs = attrs(&xml, "mac", "address");
    let stored_macs: Vec<String> = attrs(&stored, "mac", "address")
        .iter()
        .map(|m| m.to_lowercase())
        .collect();
    for m in &macs {
        assert!(
            stored_macs.contains(&m.to_lowercase()),
            "{name}: MAC {m} lost: {stored_macs:?}"
        );
    }
    let cpusets = attrs(&xml, "vcpu", "cpuset");
    for c in &cpusets {
        assert_eq!(
            attrs(&stored, "vcpu", "cpuset"),
            vec![c.clone()],
            "{name}: cpuset"
        );
    }
    eprintln!(
        "defined and checked {name} ({}): UUID, {} MAC(s){} kept",
        doc.file_name().unwrap().to_string_lossy(),
        macs.len(),
        if cpusets.is_empty() {
            String::new()
        } else {
            format!(", cpuset {}", cpusets.join(","))
        }
    );
}
