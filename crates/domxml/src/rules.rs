//! The conversion rules. [`RULES`] names them for `--list`; they run on the
//! domain first (domain-type, name, bootloader, os-type with boot-dev and
//! direct-boot, then xen-only's domain-level part), then on its devices in
//! the table's order, xen-only's device part last.

use std::collections::BTreeSet;

use crate::dom::{self, Document, Element};
use crate::{Change, Conversion, Error, NetTarget, Options, MAX_INPUT};

/// Every rule, with what it does (`xen2kvm domxml --list`).
pub const RULES: &[(&str, &str)] = &[
    ("domain-type", "/domain/@type xen -> kvm (refused for other hypervisors without --force)"),
    ("name", "-on NAME renames the domain"),
    ("bootloader", "remove bootloader and bootloader_args (pygrub runs on the Xen host only)"),
    ("os-type", "os/type linux (PV) or xenpv/xenfv machines -> hvm, with an arch"),
    ("lifecycle", "on_poweroff/on_reboot preserve and rename-restart (Xen only) -> destroy/restart"),
    ("features", "ACPI and APIC on (a PV domain has neither; without ACPI `virsh shutdown` does nothing and current QEMU refuses libvirt's -no-acpi)"),
    ("boot-dev", "add <boot dev='hd'/> when nothing says what to boot"),
    ("direct-boot", "remove PV direct kernel boot (kernel/initrd/cmdline on the Xen host), unless --keep-direct-boot"),
    ("emulator", "devices/emulator -> the host's QEMU"),
    ("disk", "driver qemu with the image format; xvdX/hdX/sdX -> vdX on bus virtio (drive addresses removed), or hdX on ide for a Windows guest without a virtio driver; cdroms and floppies on ide/fdc"),
    ("interface", "model virtio (a Windows guest: the model it has a driver for); remove <script> and vif*/vnet*/veth* targets; a bridge with no source is Xen's default xenbr0; --bridge/--network mappings"),
    ("console", "remove Xen console and serial; add a pty serial with a console on it"),
    ("input", "input bus xen -> ps2"),
    ("memballoon", "a virtio memballoon"),
    ("video", "a VGA adapter when the domain has no video or graphics device (a KVM domain has one; GRUB's graphical terminal waits for it), unless --no-video"),
    ("windows", "a Windows guest: i440fx machine (pc), clock localtime with RTC catch-up, no HPET; Hyper-V enlightenments from Windows 2008/Vista (6.0), the Hyper-V clock from 2008 R2/7 (6.1)"),
    ("xen-only", "remove or replace elements that KVM libvirt rejects (hvmloader, xenbus, viridian, xen features, xen video, Xen USB controllers)"),
];

struct Cx {
    changes: Vec<Change>,
    warnings: Vec<String>,
}

impl Cx {
    fn change(&mut self, rule: &'static str, what: impl Into<String>) {
        self.changes.push(Change {
            rule,
            what: what.into(),
        });
    }
}

/// Converts a Xen domain XML document to KVM.
pub fn convert(xml: &str, opts: &Options<'_>) -> Result<Conversion, Error> {
    if xml.len() > MAX_INPUT {
        return Err(Error::TooLarge(xml.len()));
    }
    let doc = dom::parse(xml).map_err(|e| Error::Xml(e.message))?;
    convert_document(doc, opts)
}

/// Converts an already parsed Xen domain document to KVM.
pub fn convert_document(mut doc: Document, opts: &Options<'_>) -> Result<Conversion, Error> {
    if doc.root.name != "domain" {
        return Err(Error::NotADomain(doc.root.name.clone()));
    }
    let mut cx = Cx {
        changes: Vec::new(),
        warnings: Vec::new(),
    };
    let d = &mut doc.root;
    domain_type(d, opts, &mut cx)?;
    if let Some(name) = &opts.name {
        let old = d.child("name").map(Element::text);
        if old.as_deref() != Some(name.as_str()) {
            match d.child_mut("name") {
                Some(n) => n.set_text(name),
                None => d.insert_element(Some(0), Element::with_text("name", &[], name), "\n"),
            }
            cx.change(
                "name",
                format!("name {} -> {name}", old.unwrap_or_default()),
            );
        }
    }
    for gone in d.remove_children(|e| e.name == "bootloader" || e.name == "bootloader_args") {
        cx.change(
            "bootloader",
            format!("removed <{}>{}</{}>", gone.name, gone.text(), gone.name),
        );
    }
    os(d, opts, &mut cx);
    lifecycle(d, &mut cx);
    xen_only_domain(d, &mut cx);
    features(d, &mut cx);
    if let Some(w) = &opts.windows {
        windows(d, w, &mut cx);
    }
    if d.child("devices").is_none() {
        d.insert_element(None, Element::new("devices", &[]), "\n");
    }
    let devices = d.child_mut("devices").expect("devices exists");
    emulator(devices, opts, &mut cx);
    disks(devices, opts, &mut cx)?;
    interfaces(devices, opts, &mut cx);
    console(devices, &mut cx);
    inputs(devices, &mut cx);
    memballoon(devices, &mut cx);
    video(devices, opts, &mut cx);
    xen_only_devices(devices, &mut cx);
    Ok(Conversion {
        xml: doc.to_xml(),
        changes: cx.changes,
        warnings: cx.warnings,
    })
}

fn domain_type(d: &mut Element, opts: &Options<'_>, cx: &mut Cx) -> Result<(), Error> {
    let t = d.attr("type").unwrap_or("").to_owned();
    if t != "xen" && !opts.force {
        return Err(Error::NotXen(t));
    }
    if t != "kvm" {
        d.set_attr("type", "kvm");
        cx.change("domain-type", format!("domain type {t} -> kvm"));
    }
    Ok(())
}

fn os(d: &mut Element, opts: &Options<'_>, cx: &mut Cx) {
    let has_boot_order = d.child("devices").is_some_and(|dev| {
        dev.elements()
            .any(|e| e.elements().any(|c| c.name == "boot"))
    });
    if d.child("os").is_none() {
        let at = d.elements().position(|e| {
            !matches!(
                e.name.as_str(),
                "name"
                    | "uuid"
                    | "title"
                    | "description"
                    | "metadata"
                    | "memory"
                    | "currentMemory"
                    | "vcpu"
                    | "vcpus"
                    | "cputune"
                    | "memoryBacking"
                    | "iothreads"
                    | "resource"
                    | "sysinfo"
                    | "bootloader"
                    | "bootloader_args"
            )
        });
        d.insert_element(at, Element::new("os", &[]), "\n");
    }
    let os = d.child_mut("os").expect("os exists");
    if os.child("type").is_none() {
        os.insert_element(Some(0), Element::with_text("type", &[], "linux"), "\n  ");
    }
    let ty = os.child_mut("type").expect("type exists");
    let old = ty.text();
    if old.trim() != "hvm" {
        ty.set_text("hvm");
        cx.change("os-type", format!("os type {} -> hvm", old.trim()));
    }
    if let Some(m) = ty.attr("machine").map(str::to_owned) {
        if m.starts_with("xen") {
            ty.remove_attr("machine");
            cx.change("os-type", format!("removed Xen machine type {m}"));
        }
    }
    let arch = opts
        .arch
        .clone()
        .or_else(|| ty.attr("arch").map(str::to_owned))
        .unwrap_or_else(|| "x86_64".to_owned());
    if ty.attr("arch") != Some(arch.as_str()) {
        ty.set_attr("arch", &arch);
        cx.change("os-type", format!("arch {arch}"));
    }
    // Xen's HVM firmware.
    for gone in os.remove_children(|e| e.name == "loader" && e.text().contains("hvmloader")) {
        cx.change(
            "xen-only",
            format!("removed <loader>{}</loader>", gone.text()),
        );
    }
    let direct: Vec<&str> = ["kernel", "initrd", "cmdline"]
        .into_iter()
        .filter(|n| os.child(n).is_some())
        .collect();
    if let Some(db) = &opts.direct_boot {
        let wanted = [
            ("kernel", Some(db.kernel.as_str())),
            ("initrd", db.initrd.as_deref()),
            ("cmdline", Some(db.cmdline.as_str())),
        ];
        let same = wanted
            .iter()
            .all(|(n, v)| os.child(n).map(Element::text).as_deref() == *v)
            && os.child("root").is_none();
        if !same {
            os.remove_children(|e| {
                matches!(e.name.as_str(), "kernel" | "initrd" | "cmdline" | "root")
            });
            let at = os.elements().position(|e| e.name == "type").map(|i| i + 1);
            for (i, (n, v)) in wanted.iter().filter(|(_, v)| v.is_some()).enumerate() {
                let el = Element::with_text(n, &[], v.unwrap_or_default());
                os.insert_element(at.map(|a| a + i), el, "\n    ");
            }
            cx.change(
                "direct-boot",
                format!(
                    "boots the guest's kernel from the host: {} (initrd {}), cmdline {:?}",
                    db.kernel,
                    db.initrd.as_deref().unwrap_or("none"),
                    db.cmdline
                ),
            );
        }
        os.remove_children(|e| e.name == "boot");
        return;
    }
    if !direct.is_empty() {
        if opts.keep_direct_boot {
            if let Some(c) = os.child_mut("cmdline") {
                let old = c.text();
                let new = remap_cmdline(&old);
                if new != old {
                    c.set_text(&new);
                    cx.change("direct-boot", format!("cmdline {old:?} -> {new:?}"));
                }
            }
            cx.warnings.push("kept direct kernel boot: the kernel and initrd are files on the host, not in the guest; they must be a KVM-capable kernel with virtio drivers".to_owned());
        } else {
            let gone = os.remove_children(|e| {
                matches!(e.name.as_str(), "kernel" | "initrd" | "cmdline" | "root")
            });
            let desc: Vec<String> = gone
                .iter()
                .map(|e| format!("<{}>{}</{}>", e.name, e.text(), e.name))
                .collect();
            cx.change("direct-boot", format!("removed {}", desc.join(" ")));
            cx.warnings.push(format!(
                "removed PV direct kernel boot ({}): the guest must boot its own kernel from its disk (convert the disk with `xen2kvm convert`), or use --keep-direct-boot",
                desc.join(" ")
            ));
        }
    }
    let direct_kept = opts.keep_direct_boot && os.child("kernel").is_some();
    if os.child("boot").is_none() && !has_boot_order && !direct_kept {
        let at = os.elements().position(|e| e.name == "type").map(|i| i + 1);
        os.insert_element(at, Element::new("boot", &[("dev", "hd")]), "\n  ");
        cx.change("boot-dev", "added <boot dev='hd'/>");
    }
}

/// `root=/dev/xvda1` → `root=/dev/vda1`, Xen consoles → ttyS0.
fn remap_cmdline(cmdline: &str) -> String {
    let words: Vec<String> = cmdline
        .split_whitespace()
        .filter(|w| !w.starts_with("xencons="))
        .map(|w| {
            if let Some(c) = w.strip_prefix("console=") {
                if c.starts_with("hvc") || c.starts_with("xvc") {
                    return "console=ttyS0".to_owned();
                }
            }
            match w.split_once("=/dev/xvd") {
                Some((k, rest)) => format!("{k}=/dev/vd{rest}"),
                None => w.to_owned(),
            }
        })
        .collect();
    words.join(" ")
}

/// A KVM guest has ACPI (power button, shutdown) and an APIC.
fn features(d: &mut Element, cx: &mut Cx) {
    if d.child("features").is_none() {
        let at = d.elements().position(|e| {
            matches!(
                e.name.as_str(),
                "cpu"
                    | "clock"
                    | "on_poweroff"
                    | "on_reboot"
                    | "on_crash"
                    | "pm"
                    | "perf"
                    | "devices"
            )
        });
        d.insert_element(at, Element::new("features", &[]), "\n");
    }
    let f = d.child_mut("features").expect("features exists");
    for feature in ["acpi", "apic"] {
        if f.child(feature).is_none() {
            f.insert_element(None, Element::new(feature, &[]), "\n  ");
            cx.change("features", format!("added <{feature}/>"));
        }
    }
}

/// What a Windows guest of its age needs: the i440fx machine (Windows
/// 2003 has no driver for q35's AHCI and PCIe), local time in the RTC
/// (Windows keeps local time there), RTC catch-up and a delayed PIT (lost
/// ticks are replayed), no HPET, and from 6.0 on the Hyper-V
/// enlightenments Windows uses under any hypervisor that offers them.
fn windows(d: &mut Element, w: &crate::Windows, cx: &mut Cx) {
    if let Some(ty) = d.child_mut("os").and_then(|o| o.child_mut("type")) {
        if ty.attr("machine") != Some("pc") {
            ty.set_attr("machine", "pc");
            cx.change("windows", "machine pc (i440fx)");
        }
    }
    if w.version >= (6, 0) {
        let f = d.child_mut("features").expect("features exists");
        if f.child("hyperv").is_none() {
            let mut hv = Element::new("hyperv", &[("mode", "custom")]);
            hv.insert_element(None, Element::new("relaxed", &[("state", "on")]), "\n    ");
            hv.insert_element(None, Element::new("vapic", &[("state", "on")]), "\n    ");
            hv.insert_element(
                None,
                Element::new("spinlocks", &[("state", "on"), ("retries", "8191")]),
                "\n    ",
            );
            f.insert_element(None, hv, "\n  ");
            cx.change(
                "windows",
                "Hyper-V enlightenments (relaxed, vapic, spinlocks)",
            );
        }
    }
    let mut timers = vec![
        ("rtc", vec![("tickpolicy", "catchup")]),
        ("pit", vec![("tickpolicy", "delay")]),
        ("hpet", vec![("present", "no")]),
    ];
    if w.version >= (6, 1) {
        timers.push(("hypervclock", vec![("present", "yes")]));
    }
    let clock_ok = d.child("clock").is_some_and(|c| {
        c.attr("offset") == Some("localtime")
            && timers.iter().all(|(n, _)| {
                c.elements()
                    .any(|t| t.name == "timer" && t.attr("name") == Some(n))
            })
    });
    if !clock_ok {
        let old = d
            .child("clock")
            .and_then(|c| c.attr("offset"))
            .unwrap_or("utc")
            .to_owned();
        let at = d.elements().position(|e| e.name == "clock").or_else(|| {
            d.elements().position(|e| {
                matches!(
                    e.name.as_str(),
                    "on_poweroff" | "on_reboot" | "on_crash" | "pm" | "devices"
                )
            })
        });
        d.remove_children(|e| e.name == "clock");
        let mut clock = Element::new("clock", &[("offset", "localtime")]);
        for (name, attrs) in &timers {
            let mut a = vec![("name", *name)];
            a.extend(attrs.iter().copied());
            clock.insert_element(None, Element::new("timer", &a), "\n  ");
        }
        d.insert_element(at, clock, "\n");
        cx.change(
            "windows",
            format!(
                "clock {old} -> localtime, timers {}",
                timers
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}

/// QEMU refuses `preserve` on power-off and reboot, and Xen's
/// `rename-restart` anywhere (`preserve` on crash it accepts).
fn lifecycle(d: &mut Element, cx: &mut Cx) {
    for (event, instead) in [
        ("on_poweroff", "destroy"),
        ("on_reboot", "restart"),
        ("on_crash", "restart"),
    ] {
        let Some(e) = d.child_mut(event) else {
            continue;
        };
        let old = e.text();
        let refused = match old.trim() {
            "rename-restart" => true,
            "preserve" => event != "on_crash",
            _ => false,
        };
        if refused {
            e.set_text(instead);
            cx.change(
                "lifecycle",
                format!("{event} {} -> {instead} (QEMU has no {0})", old.trim()),
            );
        }
    }
}

fn xen_only_domain(d: &mut Element, cx: &mut Cx) {
    if let Some(f) = d.child_mut("features") {
        for gone in f.remove_children(|e| e.name == "xen" || e.name == "viridian") {
            cx.change("xen-only", format!("removed feature <{}>", gone.name));
        }
        if f.elements().next().is_none() {
            d.remove_children(|e| e.name == "features");
        }
    }
}

fn emulator(devices: &mut Element, opts: &Options<'_>, cx: &mut Cx) {
    match devices.child_mut("emulator") {
        Some(e) => {
            let old = e.text();
            if old != opts.emulator {
                e.set_text(&opts.emulator);
                cx.change("emulator", format!("emulator {old} -> {}", opts.emulator));
            }
        }
        None => {
            devices.insert_element(
                Some(0),
                Element::with_text("emulator", &[], &opts.emulator),
                "\n  ",
            );
            cx.change("emulator", format!("emulator {}", opts.emulator));
        }
    }
}

/// Splits `xvda1` into (`a`, `1`) after the given prefix.
fn letters_after<'a>(dev: &'a str, prefixes: &[&str]) -> Option<(&'a str, &'a str)> {
    let rest = prefixes.iter().find_map(|p| dev.strip_prefix(p))?;
    let cut = rest
        .find(|c: char| !c.is_ascii_lowercase())
        .unwrap_or(rest.len());
    let (letters, tail) = rest.split_at(cut);
    (!letters.is_empty() && tail.chars().all(|c| c.is_ascii_digit())).then_some((letters, tail))
}

/// `a`, `b`, … `z`, `aa`, … for index 0, 1, … (the letters of `vda`, `vdb`, …).
pub fn letters(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

fn free_name(prefix: &str, wanted: &str, used: &mut BTreeSet<String>) -> String {
    let first = format!("{prefix}{wanted}");
    if !used.contains(&first) {
        used.insert(first.clone());
        return first;
    }
    (0..)
        .map(|i| format!("{prefix}{}", letters(i)))
        .find(|n| used.insert(n.clone()))
        .unwrap_or(first)
}

pub(crate) fn format_of_driver_type(t: &str) -> Option<&'static str> {
    Some(match t {
        "aio" | "raw" => "raw",
        "qcow" => "qcow",
        "qcow2" => "qcow2",
        "vhd" | "vpc" => "vpc",
        "vmdk" => "vmdk",
        _ => return None,
    })
}

fn disks(devices: &mut Element, opts: &Options<'_>, cx: &mut Cx) -> Result<(), Error> {
    // Virtio disks are named in the domain's order (vda, vdb, …): the
    // guest names them by PCI order, which is this order, whatever the
    // targets say — a guest whose Xen disks were xvda and xvdc sees vda
    // and vdb, and `convert` maps its names the same way.
    let mut next_virtio = 0usize;
    let mut used_hd: BTreeSet<String> = BTreeSet::new();
    let ide = opts.windows.as_ref().is_some_and(|w| w.disk_bus == "ide");
    if ide {
        used_hd = devices
            .elements()
            .filter(|e| e.name == "disk")
            .filter_map(|e| e.child("target").and_then(|t| t.attr("dev")))
            .filter(|d| d.starts_with("hd"))
            .map(str::to_owned)
            .collect();
    }
    let (disk_prefix, disk_bus) = if ide { ("hd", "ide") } else { ("vd", "virtio") };
    for disk in devices.elements_mut().filter(|e| e.name == "disk") {
        let device = disk.attr("device").unwrap_or("disk").to_owned();
        let Some(target) = disk.child("target") else {
            continue;
        };
        let dev = target.attr("dev").unwrap_or("").to_owned();
        let bus = target.attr("bus").unwrap_or("").to_owned();
        if !matches!(
            bus.as_str(),
            "" | "xen" | "ide" | "scsi" | "sata" | "virtio" | "usb" | "fdc"
        ) {
            return Err(Error::UnknownDiskBus(bus));
        }
        match device.as_str() {
            "disk" | "lun" => {
                if bus == "usb" {
                    cx.warnings.push(format!("disk {dev} stays on bus usb"));
                    continue;
                }
                if let Some((path, _)) = opts
                    .disks
                    .iter()
                    .find(|(t, _)| *t == dev)
                    .map(|(_, p)| (p.clone(), ()))
                {
                    disk.set_attr("type", "file");
                    disk.remove_children(|e| e.name == "source");
                    let at = disk.elements().position(|e| e.name == "target");
                    disk.insert_element(at, Element::new("source", &[("file", &path)]), "\n    ");
                    cx.change("disk", format!("disk {dev}: source -> {path}"));
                }
                let new = if ide && dev.starts_with(disk_prefix) {
                    dev.clone()
                } else {
                    let (l, part) =
                        letters_after(&dev, &["xvd", "hd", "sd", "vd"]).unwrap_or(("a", ""));
                    let new = if ide {
                        free_name("hd", l, &mut used_hd)
                    } else {
                        next_virtio += 1;
                        format!("vd{}", letters(next_virtio - 1))
                    };
                    if !part.is_empty() {
                        cx.warnings.push(format!(
                            "disk {dev} was given to the Xen guest as a partition; under KVM it is the whole disk {new}: its filesystem has no partition table, so the guest's /dev/{dev} is /dev/{new}"
                        ));
                    }
                    new
                };
                let t = disk.child_mut("target").expect("target exists");
                if dev != new || bus != disk_bus {
                    t.set_attr("dev", &new);
                    t.set_attr("bus", disk_bus);
                    cx.change(
                        "disk",
                        format!(
                            "disk {dev} ({}) -> {new} ({disk_bus})",
                            if bus.is_empty() { "no bus" } else { &bus }
                        ),
                    );
                }
                t.remove_attr("tray");
                // A drive address (IDE/SCSI unit) on a virtio disk is
                // refused; libvirt gives it a PCI address.
                let wrong_address = |e: &Element| {
                    e.name == "address"
                        && if ide {
                            e.attr("type") != Some("drive")
                        } else {
                            e.attr("type") != Some("pci")
                        }
                };
                for gone in disk.remove_children(wrong_address) {
                    cx.change(
                        "disk",
                        format!(
                            "disk {new}: removed <address type='{}'> (a {disk_bus} disk has {} address)",
                            gone.attr("type").unwrap_or(""),
                            if ide { "a drive" } else { "a PCI" }
                        ),
                    );
                }
                let source = disk
                    .child("source")
                    .and_then(|s| s.attr("file").or(s.attr("dev")))
                    .map(str::to_owned);
                let driver_type = disk
                    .child("driver")
                    .and_then(|d| d.attr("type"))
                    .and_then(format_of_driver_type);
                let format = source
                    .as_deref()
                    .and_then(|s| (opts.probe_format)(s))
                    .or_else(|| driver_type.map(str::to_owned))
                    .unwrap_or_else(|| {
                        cx.warnings.push(format!(
                            "disk {new}: format of {} unknown (image not readable here): assumed raw",
                            source.as_deref().unwrap_or("(no source)")
                        ));
                        "raw".to_owned()
                    });
                set_driver(disk, &format, &new, cx);
            }
            "cdrom" | "floppy" => {
                let (want_bus, prefix) = if device == "cdrom" {
                    ("ide", "hd")
                } else {
                    ("fdc", "fd")
                };
                let new = if device == "cdrom" && !dev.starts_with("hd") {
                    let (l, _) = letters_after(&dev, &["xvd", "sd", "vd"]).unwrap_or(("c", ""));
                    free_name(prefix, l, &mut used_hd)
                } else {
                    dev.clone()
                };
                let t = disk.child_mut("target").expect("target exists");
                if bus != want_bus && !(device == "cdrom" && bus == "sata") {
                    t.set_attr("bus", want_bus);
                    t.set_attr("dev", &new);
                    cx.change("disk", format!("{device} {dev} -> {new} ({want_bus})"));
                }
                if disk
                    .child("driver")
                    .is_some_and(|d| d.attr("name") != Some("qemu"))
                {
                    set_driver(disk, "raw", &new, cx);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn set_driver(disk: &mut Element, format: &str, dev: &str, cx: &mut Cx) {
    if disk.child("driver").is_none() {
        disk.insert_element(Some(0), Element::new("driver", &[]), "\n    ");
    }
    let drv = disk.child_mut("driver").expect("driver exists");
    let before = (
        drv.attr("name").map(str::to_owned),
        drv.attr("type").map(str::to_owned),
    );
    drv.set_attr("name", "qemu");
    drv.set_attr("type", format);
    if before != (Some("qemu".to_owned()), Some(format.to_owned())) {
        cx.change(
            "disk",
            format!(
                "disk {dev}: driver {}/{} -> qemu/{format}",
                before.0.as_deref().unwrap_or("-"),
                before.1.as_deref().unwrap_or("-")
            ),
        );
    }
}

/// The bridge a Xen `vif` with no `bridge=` joins (xl's default).
const XEN_DEFAULT_BRIDGE: &str = "xenbr0";

fn interfaces(devices: &mut Element, opts: &Options<'_>, cx: &mut Cx) {
    for nic in devices.elements_mut().filter(|e| e.name == "interface") {
        let mac = nic
            .child("mac")
            .and_then(|m| m.attr("address"))
            .unwrap_or("?")
            .to_owned();
        let kind = nic.attr("type").unwrap_or("").to_owned();
        if kind == "bridge"
            && nic
                .child("source")
                .is_none_or(|s| s.attr("bridge").is_none())
        {
            // xl's default bridge; libvirt's QEMU driver wants it named.
            nic.remove_children(|e| e.name == "source");
            let at = nic.elements().position(|e| e.name == "mac").map(|i| i + 1);
            nic.insert_element(
                at,
                Element::new("source", &[("bridge", XEN_DEFAULT_BRIDGE)]),
                "\n    ",
            );
            cx.change(
                "interface",
                format!("interface {mac}: no bridge named: Xen's default {XEN_DEFAULT_BRIDGE}"),
            );
            if opts.nets.is_empty() {
                cx.warnings.push(format!("interface {mac}: it was on Xen's default bridge; it is now on a bridge named {XEN_DEFAULT_BRIDGE}, which must exist on the KVM host (or map it with --bridge {XEN_DEFAULT_BRIDGE}:BR)"));
            }
        }
        let src = nic
            .child("source")
            .and_then(|s| s.attr("bridge").or(s.attr("network")))
            .map(str::to_owned);
        if let Some(map) = opts.nets.iter().find(|m| m.from.is_none() || m.from == src) {
            let (t, key, value) = match &map.to {
                NetTarget::Bridge(b) => ("bridge", "bridge", b),
                NetTarget::Network(n) => ("network", "network", n),
            };
            let already =
                kind == t && nic.child("source").and_then(|s| s.attr(key)) == Some(value.as_str());
            if !already {
                nic.set_attr("type", t);
                nic.remove_children(|e| e.name == "source");
                let at = nic.elements().position(|e| e.name == "mac").map(|i| i + 1);
                nic.insert_element(at, Element::new("source", &[(key, value)]), "\n    ");
                cx.change(
                    "interface",
                    format!(
                        "interface {mac}: {kind} {} -> {t} {value}",
                        src.as_deref().unwrap_or("-")
                    ),
                );
            }
        }
        let model = opts.windows.as_ref().map_or("virtio", |w| w.nic.as_str());
        nic_rules(nic, &mac, model, cx);
    }
}

/// The per-interface rules that do not depend on the network mapping.
fn nic_rules(nic: &mut Element, mac: &str, model: &str, cx: &mut Cx) {
    for gone in nic.remove_children(|e| e.name == "script") {
        cx.change(
            "interface",
            format!(
                "interface {mac}: removed script {}",
                gone.attr("path").unwrap_or("")
            ),
        );
    }
    for gone in nic.remove_children(|e| {
        e.name == "target"
            && e.attr("dev")
                .is_some_and(|d| ["vif", "vnet", "veth"].iter().any(|p| d.starts_with(p)))
    }) {
        cx.change(
            "interface",
            format!(
                "interface {mac}: removed target {}",
                gone.attr("dev").unwrap_or("")
            ),
        );
    }
    if nic.attr("type") != Some("user") {
        for gone in nic.remove_children(|e| e.name == "ip" || e.name == "route") {
            let addr = gone.attr("address").unwrap_or("");
            cx.change("xen-only", format!("interface {mac}: removed <{} address='{addr}'> (QEMU cannot set guest addresses)", gone.name));
            cx.warnings.push(format!("interface {mac}: Xen's vif-route/antispoof address {addr} is not carried over: the guest's own network config must have it"));
        }
    }
    for gone in nic.remove_children(|e| e.name == "backenddomain") {
        cx.change(
            "xen-only",
            format!(
                "interface {mac}: removed backenddomain {}",
                gone.attr("name").unwrap_or("")
            ),
        );
    }
    match nic.child_mut("model") {
        Some(m) if m.attr("type") == Some(model) => {}
        Some(m) => {
            let old = m.attr("type").unwrap_or("").to_owned();
            m.set_attr("type", model);
            cx.change(
                "interface",
                format!("interface {mac}: model {old} -> {model}"),
            );
        }
        None => {
            nic.insert_element(None, Element::new("model", &[("type", model)]), "\n    ");
            cx.change("interface", format!("interface {mac}: model {model}"));
        }
    }
}

fn console(devices: &mut Element, cx: &mut Cx) {
    let first = devices
        .elements()
        .position(|e| e.name == "console" || e.name == "serial");
    let already = devices.elements().any(|e| {
        e.name == "serial"
            && e.attr("type") == Some("pty")
            && e.child("target")
                .is_none_or(|t| t.attr("type").is_none_or(|x| x != "xen"))
    }) && devices.elements().all(|e| {
        e.name != "console" || e.child("target").and_then(|t| t.attr("type")) == Some("serial")
    });
    if already {
        return;
    }
    let gone = devices.remove_children(|e| e.name == "console" || e.name == "serial");
    for g in &gone {
        let t = g
            .child("target")
            .and_then(|t| t.attr("type"))
            .unwrap_or("-");
        cx.change(
            "console",
            format!(
                "removed <{} type='{}'> (target {t})",
                g.name,
                g.attr("type").unwrap_or("")
            ),
        );
    }
    let mut serial = Element::new("serial", &[("type", "pty")]);
    serial.insert_element(None, Element::new("target", &[("port", "0")]), "\n    ");
    let mut cons = Element::new("console", &[("type", "pty")]);
    cons.insert_element(
        None,
        Element::new("target", &[("type", "serial"), ("port", "0")]),
        "\n    ",
    );
    match first {
        Some(k) => {
            devices.insert_element(Some(k), cons, "\n  ");
            devices.insert_element(Some(k), serial, "\n  ");
        }
        None => {
            devices.insert_element(None, serial, "\n  ");
            devices.insert_element(None, cons, "\n  ");
        }
    }
    cx.change("console", "added a pty serial port and a console on it");
}

fn inputs(devices: &mut Element, cx: &mut Cx) {
    for i in devices.elements_mut().filter(|e| e.name == "input") {
        if i.attr("bus") == Some("xen") {
            i.set_attr("bus", "ps2");
            cx.change(
                "input",
                format!("input {} bus xen -> ps2", i.attr("type").unwrap_or("")),
            );
        }
    }
}

fn memballoon(devices: &mut Element, cx: &mut Cx) {
    match devices.child_mut("memballoon") {
        Some(m) if m.attr("model") == Some("virtio") => {}
        Some(m) => {
            let old = m.attr("model").unwrap_or("").to_owned();
            m.set_attr("model", "virtio");
            cx.change("memballoon", format!("memballoon {old} -> virtio"));
        }
        None => {
            devices.insert_element(
                None,
                Element::new("memballoon", &[("model", "virtio")]),
                "\n  ",
            );
            cx.change("memballoon", "added a virtio memballoon");
        }
    }
}

/// A Xen PV domain usually has no video device; a KVM domain has one, and
/// GRUB's default (graphical) terminal stalls without it.
fn video(devices: &mut Element, opts: &Options<'_>, cx: &mut Cx) {
    // With a <graphics>, libvirt adds a video device of its own.
    if opts.no_video
        || devices
            .elements()
            .any(|e| e.name == "video" || e.name == "graphics")
    {
        return;
    }
    let mut v = Element::new("video", &[]);
    v.insert_element(None, Element::new("model", &[("type", "vga")]), "\n    ");
    let at = devices
        .elements()
        .position(|e| e.name == "memballoon")
        .or_else(|| devices.elements().position(|e| e.name == "hostdev"));
    devices.insert_element(at, v, "\n  ");
    cx.change(
        "video",
        "added a VGA video adapter (the Xen domain had no display device; --no-video leaves it out)",
    );
}

fn xen_only_devices(devices: &mut Element, cx: &mut Cx) {
    for c in devices
        .elements_mut()
        .filter(|e| e.name == "controller" && e.attr("type") == Some("usb"))
    {
        if let Some(m) = c.attr("model").filter(|m| m.starts_with("qusb")) {
            let m = m.to_owned();
            c.set_attr("model", "qemu-xhci");
            cx.change(
                "xen-only",
                format!("USB controller model {m} (Xen's) -> qemu-xhci"),
            );
        }
    }
    for gone in
        devices.remove_children(|e| e.name == "controller" && e.attr("type") == Some("xenbus"))
    {
        cx.change(
            "xen-only",
            format!(
                "removed <controller type='{}'>",
                gone.attr("type").unwrap_or("")
            ),
        );
    }
    for v in devices.elements_mut().filter(|e| e.name == "video") {
        if let Some(m) = v
            .child_mut("model")
            .filter(|m| m.attr("type") == Some("xen"))
        {
            m.set_attr("type", "vga");
            cx.change("xen-only", "video model xen -> vga");
        }
    }
    for h in devices.elements_mut().filter(|e| e.name == "hostdev") {
        for gone in h.remove_children(|e| e.name == "driver" && e.attr("name") == Some("xen")) {
            cx.change(
                "xen-only",
                format!(
                    "hostdev: removed <driver name='{}'/> (KVM uses vfio)",
                    gone.attr("name").unwrap_or("")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_names() {
        assert_eq!(letters(0), "a");
        assert_eq!(letters(25), "z");
        assert_eq!(letters(26), "aa");
        assert_eq!(letters_after("xvdb2", &["xvd"]), Some(("b", "2")));
        assert_eq!(letters_after("xvd", &["xvd"]), None);
        assert_eq!(letters_after("hdc", &["xvd", "hd"]), Some(("c", "")));
    }

    #[test]
    fn cmdline_remap() {
        assert_eq!(
            remap_cmdline("root=/dev/xvda2 resume=/dev/xvda1 console=hvc0 xencons=xvc0 quiet"),
            "root=/dev/vda2 resume=/dev/vda1 console=ttyS0 quiet"
        );
    }
}
