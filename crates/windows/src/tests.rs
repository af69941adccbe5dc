//! Tier-1 tests: the phony guests' own `.reg` files (images/win*/) loaded
//! into [`MemHive`]s, facts, plans (golden), apply, and the one promise:
//! after apply nothing Xen is left and a second plan is empty.

use std::path::{Path, PathBuf};

use xen2kvm_golden::Goldens;

use crate::facts::{self, Base, WinFacts};
use crate::plan::{self, DiskBus, NicModel, Options, Plan, Source};
use crate::reg::{parse_reg, Hive, HiveKind, MemHive, Value};
use crate::xen::DriverSet;

const SYS: &str = "HKEY_LOCAL_MACHINE\\SYSTEM";
const SOFT: &str = "HKEY_LOCAL_MACHINE\\SOFTWARE";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn image_hives(name: &str) -> (MemHive, MemHive) {
    let dir = repo().join("images").join(name);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("reg file");
    (
        MemHive::from_reg(&read("system.reg"), SYS).expect("system.reg"),
        MemHive::from_reg(&read("software.reg"), SOFT).expect("software.reg"),
    )
}

fn base_2003() -> Base {
    Base {
        product: "Microsoft Windows Server 2003 R2".into(),
        version: (5, 2),
        arch: "i386".into(),
        systemroot: "/WINDOWS".into(),
        staged: Vec::new(),
    }
}

fn base_2008r2() -> Base {
    Base {
        product: "Windows Server 2008 R2 Standard".into(),
        version: (6, 1),
        arch: "x86_64".into(),
        systemroot: "/Windows".into(),
        staged: Vec::new(),
    }
}

/// A virtio-win tree in the ISO's layout (file names only).
fn tree() -> Vec<String> {
    let mut t = Vec::new();
    for (rel, arch) in [
        ("2k3", "x86"),
        ("2k3", "amd64"),
        ("2k8R2", "amd64"),
        ("2k12R2", "amd64"),
    ] {
        for (dir, base) in [
            ("viostor", "viostor"),
            ("NetKVM", "netkvm"),
            ("Balloon", "balloon"),
        ] {
            for ext in ["sys", "inf", "cat"] {
                t.push(format!("{dir}/{rel}/{arch}/{base}.{ext}"));
            }
        }
    }
    t.push("virtio-win_license.txt".into());
    t
}

fn tools() -> Option<(PathBuf, PathBuf)> {
    Some((
        "/usr/share/virt-tools/rhsrvany.exe".into(),
        "/usr/share/virt-tools/pnp_wait.exe".into(),
    ))
}

fn opts(tree: &[String]) -> Options<'_> {
    Options {
        tree: Some(tree),
        tree_name: "virtio-win".into(),
        ide: false,
        firstboot_tools: tools(),
    }
}

/// Applies a plan to the hives; returns the new staged file list.
fn apply(p: &Plan, base: &Base, system: &mut MemHive, software: &mut MemHive) -> Base {
    plan::apply_edits(p, HiveKind::System, system).expect("system edits");
    plan::apply_edits(p, HiveKind::Software, software).expect("software edits");
    let mut b = base.clone();
    for f in &p.files {
        let prefix = format!("{}/{}/", base.systemroot, plan::STAGE_DIR);
        if let Some(name) = f.dest.strip_prefix(&prefix) {
            b.staged.push(name.to_ascii_lowercase());
        }
    }
    b
}

fn report(f: &WinFacts, p: &Plan) -> String {
    let mut out = format!(
        "{} ({}) {} {}, control set {}, build {}\n",
        f.release(),
        f.base.product,
        f.base.arch,
        if f.server { "server" } else { "client" },
        f.control_set,
        f.build
    );
    for x in f.xenisms() {
        out.push_str(&format!("xenism: {}\n", x.describe(&f.control_set)));
    }
    out.push_str(&format!(
        "virtio storage: {:?}\ndisk bus {}, nic {}\n",
        f.virtio,
        p.disk_bus.as_str(),
        p.nic.as_str()
    ));
    for l in p.lines() {
        out.push_str(&l);
        out.push('\n');
    }
    for w in &p.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    for b in &p.blockers {
        out.push_str(&format!("blocked: {b}\n"));
    }
    out
}

fn converts(name: &str, base: Base, g: &mut Goldens) {
    let (mut system, mut software) = image_hives(name);
    let t = tree();
    let f = facts::read(base.clone(), &system, &software).expect("facts");
    assert!(
        !f.xenisms().is_empty(),
        "{name}: the phony guest has Xen-isms"
    );
    let p = plan::plan(&f, &system, &software, &opts(&t)).expect("plan");
    assert!(p.blockers.is_empty(), "{name}: {:?}", p.blockers);
    assert_eq!(p.disk_bus, DiskBus::Virtio);
    assert_eq!(p.nic, NicModel::Virtio);
    let golden = repo().join("crates/windows/tests/golden").join(name);
    g.check(&golden.join("plan.txt"), &report(&f, &p));
    let after = apply(&p, &base, &mut system, &mut software);
    g.check(&golden.join("system.after.reg"), &system.export(SYS));
    g.check(&golden.join("software.after.reg"), &software.export(SOFT));
    // The one promise: nothing Xen left, a second plan does nothing.
    let again = facts::read(after, &system, &software).expect("facts after");
    assert_eq!(again.xenisms(), Vec::new(), "{name}: residue");
    assert!(
        again.virtio.ready(again.base.version),
        "{name}: {:?}",
        again.virtio
    );
    assert!(again.firstboot);
    let second = plan::plan(&again, &system, &software, &opts(&t)).expect("plan");
    assert!(
        second.is_empty(),
        "{name}: second plan {:?}",
        second.lines()
    );
    assert!(second.blockers.is_empty());
}

#[test]
fn phony_guests_convert_and_a_second_plan_is_empty() {
    let mut g = Goldens::new();
    converts("win2003-xenpv", base_2003(), &mut g);
    converts("win2008r2-xenpv", base_2008r2(), &mut g);
    g.finish();
}

#[test]
fn facts_of_the_phony_guests() {
    let (system, software) = image_hives("win2008r2-xenpv");
    let f = facts::read(base_2008r2(), &system, &software).expect("facts");
    assert_eq!(f.control_set, "ControlSet002");
    assert!(f.server);
    assert_eq!(f.build, 7601);
    let names: Vec<(&str, DriverSet)> = f
        .pv_services
        .iter()
        .map(|s| (s.name.as_str(), s.set))
        .collect();
    assert!(names.contains(&("xenfilt", DriverSet::XenProject)));
    assert!(names.contains(&("xenagent", DriverSet::XenProject)));
    assert_eq!(f.filters.len(), 3, "{:?}", f.filters);
    let volume = f
        .filters
        .iter()
        .find(|c| c.class == "Volume")
        .expect("volume class");
    assert_eq!(volume.without_xen(), vec!["volsnap".to_owned()]);
    assert_eq!(f.virtio, facts::VirtioStorage::default());

    let (system, software) = image_hives("win2003-xenpv");
    let f = facts::read(base_2003(), &system, &software).expect("facts");
    assert_eq!(f.control_set, "ControlSet001");
    assert_eq!(f.release(), "Windows Server 2003");
    assert!(f.pv_services.iter().all(|s| s.set == DriverSet::SuseVmdp));
    assert_eq!(f.pv_services.len(), 3);
    assert!(f.filters.is_empty());
}

#[test]
fn without_a_tree_the_storage_driver_blocks_and_names_what_to_pass() {
    let (system, software) = image_hives("win2003-xenpv");
    let f = facts::read(base_2003(), &system, &software).expect("facts");
    let p = plan::plan(&f, &system, &software, &Options::default()).expect("plan");
    assert_eq!(p.blockers.len(), 1, "{:?}", p.blockers);
    let b = p.blockers[0].to_string();
    assert!(b.contains("--virtio-win"), "{b}");
    assert!(b.contains("viostor/2k3/x86/viostor.sys"));
    assert!(b.contains("--ide"));
    // The Xen drivers are still planned (shown by --dry-run), nothing staged.
    assert!(p.edits.iter().all(|e| e.rule == plan::Rule::XenDrivers));
    assert!(p.files.is_empty());
}

#[test]
fn ide_keeps_the_emulated_disk_and_still_disables_xen() {
    let (mut system, mut software) = image_hives("win2008r2-xenpv");
    let f = facts::read(base_2008r2(), &system, &software).expect("facts");
    let o = Options {
        ide: true,
        ..Options::default()
    };
    let p = plan::plan(&f, &system, &software, &o).expect("plan");
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert_eq!(p.disk_bus, DiskBus::Ide);
    assert_eq!(p.nic, NicModel::E1000);
    assert!(p.files.is_empty());
    let after = apply(&p, &f.base, &mut system, &mut software);
    let again = facts::read(after, &system, &software).expect("facts");
    assert!(again.xenisms().is_empty());
    assert!(plan::plan(&again, &system, &software, &o)
        .expect("plan")
        .is_empty());
}

#[test]
fn a_tree_without_the_release_blocks_and_says_where_it_looked() {
    let (system, software) = image_hives("win2003-xenpv");
    let f = facts::read(base_2003(), &system, &software).expect("facts");
    let t: Vec<String> = tree()
        .into_iter()
        .filter(|p| !p.contains("/2k3/"))
        .collect();
    let p = plan::plan(&f, &system, &software, &opts(&t)).expect("plan");
    assert!(
        p.blockers.iter().any(|b| b.remedy.contains("0.1.173")),
        "{:?}",
        p.blockers
    );
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("NetKVM/2k3/x86/netkvm.sys") && w.contains("rtl8139")));
}

#[test]
fn newer_windows_and_missing_tools_block() {
    let (system, software) = image_hives("win2008r2-xenpv");
    let mut base = base_2008r2();
    base.version = (6, 3);
    let f = facts::read(base, &system, &software).expect("facts");
    let t = tree();
    let p = plan::plan(&f, &system, &software, &opts(&t)).expect("plan");
    assert!(p.blockers.iter().any(|b| b.reason.contains("driver store")));

    let f = facts::read(base_2008r2(), &system, &software).expect("facts");
    let o = Options {
        firstboot_tools: None,
        ..opts(&t)
    };
    let p = plan::plan(&f, &system, &software, &o).expect("plan");
    assert!(
        p.blockers
            .iter()
            .any(|b| b.remedy.contains("rhsrvany package")),
        "{:?}",
        p.blockers
    );
}

#[test]
fn gplpv_services_and_filters_are_found_and_removed() {
    let mut s = MemHive::new();
    let mut w = MemHive::new();
    s.set_value("Select", "Current", &Value::Dword(1)).unwrap();
    for (name, start) in [("xenpci", 0), ("xenhide", 0), ("xenvbd", 0), ("xennet", 4)] {
        s.set_value(
            &format!("ControlSet001\\Services\\{name}"),
            "Start",
            &Value::Dword(start),
        )
        .unwrap();
    }
    let hdc = "ControlSet001\\Control\\Class\\{4D36E96A-E325-11CE-BFC1-08002BE10318}";
    s.set_value(hdc, "Class", &Value::Sz("hdc".into())).unwrap();
    s.set_value(
        hdc,
        "UpperFilters",
        &Value::MultiSz(vec!["XenHide".into(), "other".into()]),
    )
    .unwrap();
    w.set_value(
        "Microsoft\\Windows NT\\CurrentVersion",
        "CurrentBuildNumber",
        &Value::Sz("3790".into()),
    )
    .unwrap();
    let f = facts::read(base_2003(), &s, &w).expect("facts");
    assert!(f.pv_services.iter().all(|x| x.set == DriverSet::Gplpv));
    // xennet is already disabled: not a Xen-ism.
    assert_eq!(f.xenisms().len(), 4, "{:?}", f.xenisms());
    let o = Options {
        ide: true,
        ..Options::default()
    };
    let p = plan::plan(&f, &s, &w, &o).expect("plan");
    plan::apply_edits(&p, HiveKind::System, &mut s).unwrap();
    assert_eq!(
        s.value(hdc, "UpperFilters").unwrap(),
        Some(Value::MultiSz(vec!["other".into()]))
    );
    let again = facts::read(base_2003(), &s, &w).expect("facts");
    assert!(again.xenisms().is_empty());
}

#[test]
fn values_encode_decode_and_render_parse_round_trip() {
    let values = [
        Value::Sz("C:\\Windows \"quoted\"".into()),
        Value::ExpandSz("%SystemRoot%\\inf".into()),
        Value::MultiSz(vec!["a".into(), "b\\c".into()]),
        Value::MultiSz(Vec::new()),
        Value::Dword(0x10),
        Value::Binary(vec![0, 1, 255]),
        Value::Other {
            kind: 11,
            data: vec![1, 2, 3, 4, 5, 6, 7, 8],
        },
    ];
    for v in &values {
        assert_eq!(&Value::decode(v.kind(), &v.encode()), v);
        let text = format!("[K]\n\"n\"={v}\n");
        let parsed = parse_reg(&text, "").expect("parse");
        assert_eq!(parsed, vec![("K".to_owned(), "n".to_owned(), v.clone())]);
    }
    // Hostile data decodes without panicking.
    assert_eq!(
        Value::decode(4, &[1, 2]),
        Value::Other {
            kind: 4,
            data: vec![1, 2]
        }
    );
    assert_eq!(Value::decode(1, &[0x41]), Value::Sz(String::new()));
    assert_eq!(
        Value::decode(1, &[0x41, 0, 0x42, 0]),
        Value::Sz("AB".into())
    );
}

#[test]
fn the_firstboot_script_installs_with_pnputil_only_where_windows_has_it() {
    let (system, software) = image_hives("win2003-xenpv");
    let f = facts::read(base_2003(), &system, &software).expect("facts");
    assert!(!plan::firstboot_script(&f).contains("pnputil"));
    let t = tree();
    let p = plan::plan(&f, &system, &software, &opts(&t)).expect("plan");
    let bat = p
        .files
        .iter()
        .find_map(|x| match &x.source {
            Source::Text(t) => Some(t.clone()),
            _ => None,
        })
        .expect("firstboot.bat");
    assert!(bat.contains("\r\n") && bat.contains("pnp_wait.exe"));
    let (system, software) = image_hives("win2008r2-xenpv");
    let f = facts::read(base_2008r2(), &system, &software).expect("facts");
    assert!(plan::firstboot_script(&f).contains("pnputil -i -a"));
}

#[test]
fn facts_refuse_a_hive_that_is_not_a_system_hive() {
    let err = facts::read(base_2003(), &MemHive::new(), &MemHive::new()).unwrap_err();
    assert!(err.to_string().contains("Select\\Current"), "{err}");
    let mut s = MemHive::new();
    s.set_value("Select", "Current", &Value::Dword(7)).unwrap();
    let err = facts::read(base_2003(), &s, &MemHive::new()).unwrap_err();
    assert!(err.to_string().contains("ControlSet007"), "{err}");
    let _ = s.exists("x");
}
