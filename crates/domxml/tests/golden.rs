//! Whole-document golden tests: every `test_data/<case>.xen.xml` or
//! `<case>.xl.cfg` converts to `<case>.kvm.xml`, with the changes and
//! warnings of `<case>.changes.txt`. A first-line comment
//! `xen2kvm-test: ARGS` gives the case's options: the CLI's option names
//! without their dashes (`--` is not allowed in an XML comment).
//!
//! Compared through `xen2kvm-golden`: `UPDATE_GOLDEN=1 cargo test` rewrites
//! the expected files and still fails, so that an update is always a
//! deliberate, reviewed change.

use std::fs;
use std::path::{Path, PathBuf};

use xen2kvm_domxml::{
    convert, convert_document, xl, Conversion, NetMap, NetTarget, Options, Windows,
};

const EMULATOR: &str = "/usr/bin/qemu-system-x86_64";

fn no_probe(_: &str) -> Option<String> {
    None
}

fn options_from(input: &str) -> Options<'static> {
    let mut o = Options::new(EMULATOR, &no_probe);
    let Some(args) = input
        .lines()
        .next()
        .and_then(|l| l.split_once("xen2kvm-test:"))
        .map(|x| x.1)
    else {
        return o;
    };
    let mut words = args.trim_end_matches("-->").split_whitespace();
    while let Some(w) = words.next() {
        let mut val = || {
            words
                .next()
                .unwrap_or_else(|| panic!("{w} needs a value"))
                .to_owned()
        };
        match w {
            "keep-direct-boot" => o.keep_direct_boot = true,
            "no-video" => o.no_video = true,
            "force" => o.force = true,
            "on" => o.name = Some(val()),
            "arch" => o.arch = Some(val()),
            "windows" => {
                let v = val();
                let (a, b) = v.split_once('.').unwrap();
                o.windows = Some(Windows {
                    version: (a.parse().unwrap(), b.parse().unwrap()),
                    disk_bus: "virtio".to_owned(),
                    nic: "virtio".to_owned(),
                });
            }
            "disk-bus" => o.windows.as_mut().expect("windows first").disk_bus = val(),
            "nic-model" => o.windows.as_mut().expect("windows first").nic = val(),
            "disk" => {
                let v = val();
                let (t, p) = v.split_once('=').unwrap();
                o.disks.push((t.to_owned(), p.to_owned()));
            }
            "bridge" | "network" => {
                let v = val();
                let (from, to) = match v.split_once('=') {
                    Some((a, b)) => (Some(a.to_owned()), b.to_owned()),
                    None => (None, v),
                };
                let to = if w == "bridge" {
                    NetTarget::Bridge(to)
                } else {
                    NetTarget::Network(to)
                };
                o.nets.push(NetMap { from, to });
            }
            _ => panic!("unknown test option {w}"),
        }
    }
    o
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".xen.xml") || n.ends_with(".xl.cfg")
        })
        .collect();
    v.sort();
    v
}

/// Converts one case input.
pub fn run_case(input: &Path) -> (Conversion, Vec<String>) {
    let text = fs::read_to_string(input).unwrap();
    let opts = options_from(&text);
    if input.to_string_lossy().ends_with(".xl.cfg") {
        let (doc, w) =
            xl::to_xen_domain(&text).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        (convert_document(doc, &opts).unwrap(), w)
    } else {
        (
            convert(&text, &opts).unwrap_or_else(|e| panic!("{}: {e}", input.display())),
            Vec::new(),
        )
    }
}

fn render_changes(c: &Conversion, xl_warnings: &[String]) -> String {
    let mut s = String::new();
    for ch in &c.changes {
        s.push_str(&format!("[{}] {}\n", ch.rule, ch.what));
    }
    for w in xl_warnings.iter().chain(&c.warnings) {
        s.push_str(&format!("warning: {w}\n"));
    }
    s
}

#[test]
fn golden_cases() {
    let mut goldens = xen2kvm_golden::Goldens::new();
    let all = cases();
    assert!(all.len() >= 8, "test_data has the cases");
    for input in all {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let stem = name
            .trim_end_matches(".xen.xml")
            .trim_end_matches(".xl.cfg");
        let (conv, xlw) = run_case(&input);
        let dir = input.parent().unwrap();
        for (file, actual) in [
            (dir.join(format!("{stem}.kvm.xml")), conv.xml.clone()),
            (
                dir.join(format!("{stem}.changes.txt")),
                render_changes(&conv, &xlw),
            ),
        ] {
            goldens.check(&file, &actual);
        }
        // Idempotence: converting the output again (it is now a KVM domain,
        // so --force) changes nothing.
        let mut again_opts = options_from(&fs::read_to_string(&input).unwrap());
        again_opts.force = true;
        let again = convert(&conv.xml, &again_opts).unwrap();
        assert_eq!(
            again.xml, conv.xml,
            "{name}: a second conversion changed the XML"
        );
        assert!(
            again.changes.is_empty(),
            "{name}: a second conversion made changes: {:?}",
            again.changes
        );
    }
    goldens.finish();
}
