//! Every golden KVM document validates against libvirt's domain schema
//! (`virt-xml-validate`, package libvirt-clients: `cargo xtask deps`).

#![allow(clippy::print_stderr)]

use std::path::Path;
use std::process::Command;

#[test]
fn golden_outputs_validate_with_virt_xml_validate() {
    if Command::new("virt-xml-validate")
        .arg("--version")
        .output()
        .is_err()
    {
        let ci =
            std::env::var_os("CI").is_some() || std::env::var("XEN2KVM_E2E").as_deref() == Ok("1");
        assert!(!ci, "virt-xml-validate is missing: run `cargo xtask deps`");
        eprintln!(
            "skipping: virt-xml-validate is missing (cargo xtask deps installs libvirt-clients)"
        );
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data");
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with(".kvm.xml") {
            continue;
        }
        let out = Command::new("virt-xml-validate")
            .arg(&p)
            .arg("domain")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not validate:\n{}{}",
            p.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} documents checked");
}
