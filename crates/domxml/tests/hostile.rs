//! Hostile and broken domain configs (they are untrusted input): each gives
//! a clear error or a correct result, in bounded time, never a crash.

use std::time::{Duration, Instant};

use xen2kvm_domxml::{convert, xl, Options};

fn no_probe(_: &str) -> Option<String> {
    None
}

fn opts() -> Options<'static> {
    Options::new("/usr/bin/qemu-system-x86_64", &no_probe)
}

/// Runs `f`, failing when it takes longer than `limit` (a sanity bound far
/// above the expected time, not a benchmark).
fn bounded<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    assert!(t.elapsed() < limit, "took {:?}", t.elapsed());
    r
}

#[test]
fn deeply_nested_xml_is_refused() {
    let depth = 120_000;
    let xml = format!(
        "<domain type='xen'>{}{}</domain>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    let err = bounded(Duration::from_secs(20), || convert(&xml, &opts())).unwrap_err();
    assert!(err.to_string().contains("nested"), "{err}");
}

#[test]
fn huge_attribute_values_are_kept_or_refused_not_crashed() {
    let big = "x".repeat(900_000);
    let xml = format!("<domain type='xen'><name>g</name><description a='{big}'/></domain>");
    let out = bounded(Duration::from_secs(20), || convert(&xml, &opts())).unwrap();
    assert!(out.xml.contains(&big));
    let too_big = format!(
        "<domain type='xen'><description a='{}'/></domain>",
        "x".repeat(2 << 20)
    );
    let err = convert(&too_big, &opts()).unwrap_err();
    assert!(err.to_string().contains("bytes"), "{err}");
}

#[test]
fn thousands_of_devices_convert_in_bounded_time() {
    let mut xml = String::from("<domain type='xen'><name>g</name><devices>");
    for i in 0..5000 {
        xml.push_str(&format!(
            "<interface type='bridge'><mac address='00:16:3e:00:{:02x}:{:02x}'/><source bridge='xenbr0'/></interface>",
            i / 256,
            i % 256
        ));
    }
    xml.push_str("</devices></domain>");
    let out = bounded(Duration::from_secs(60), || convert(&xml, &opts())).unwrap();
    assert_eq!(out.xml.matches("<model type='virtio'/>").count(), 5000);
}

#[test]
fn broken_xml_gives_one_clear_error() {
    for (xml, want) in [
        ("<domain type='xen'><name>g</name>", "unclosed"),
        ("<domain type='xen'><name>g</nam></domain>", "malformed"),
        ("", "no root"),
        (
            "<!DOCTYPE d [<!ENTITY x 'y'>]><domain type='xen'/>",
            "DOCTYPE",
        ),
        ("<domain type='xen'/><domain type='xen'/>", "second root"),
        ("<domain type='xen'>&undefined;</domain>", "bad text"),
    ] {
        let err = convert(xml, &opts()).unwrap_err().to_string();
        assert!(err.contains(want), "{xml:?}: {err}");
        assert!(!err.contains('\n'), "one line: {err:?}");
    }
}

#[test]
fn broken_xl_cfg_gives_errors_with_line_numbers() {
    for (cfg, want) in [
        ("name = \"g\nmemory = 512\n", "line 1"),
        ("disk = [ 'phy:/dev/vg/g,xvda,w'\n", "line 1"),
        ("name = 'g'\nvcpus = \n", "line 2"),
        ("= 3\n", "line 1"),
    ] {
        let err = bounded(Duration::from_secs(5), || xl::parse(cfg))
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(err.contains(want), "{cfg:?}: {err:?}");
    }
}
