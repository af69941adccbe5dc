//! `xen2kvm domxml`: Xen domain config → KVM libvirt domain XML.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use serde::Serialize;
use xen2kvm_domxml::{self as dx, NetMap, NetTarget};

use crate::Exit;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Xen domain config (libvirt XML, or xl.cfg with --from xl); - reads stdin.
    #[arg(required_unless_present = "list")]
    input: Option<PathBuf>,
    /// The input's format.
    #[arg(long, value_enum, default_value_t = From::Libvirt)]
    from: From,
    /// Write the KVM XML here (atomically; nothing is written on error) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Name of the converted domain.
    #[arg(long = "on", value_name = "NAME")]
    name: Option<String>,
    /// Guest architecture (default: the source's, else x86_64).
    #[arg(long)]
    arch: Option<String>,
    /// The host's QEMU for <emulator> (default: /usr/bin/qemu-system-x86_64 or /usr/bin/qemu-kvm, whichever exists).
    #[arg(long, value_name = "PATH")]
    emulator: Option<String>,
    /// Put interfaces on bridge BR (all), or those on bridge/network OLD on bridge NEW (OLD=NEW, or virt-v2v's OLD:NEW). Repeatable.
    #[arg(long, value_name = "BR|OLD=NEW")]
    bridge: Vec<String>,
    /// Put interfaces on libvirt network NET (all), or those on OLD on network NEW (OLD=NEW or OLD:NEW). Repeatable.
    #[arg(long, value_name = "NET|OLD=NEW")]
    network: Vec<String>,
    /// Point the disk whose Xen target is TARGET at PATH (its converted image). Repeatable.
    #[arg(long, value_name = "TARGET=PATH")]
    disk: Vec<String>,
    /// Keep PV direct kernel boot (kernel/initrd/cmdline files on the host).
    #[arg(long)]
    keep_direct_boot: bool,
    /// Do not add a video adapter to a domain that has none.
    #[arg(long)]
    no_video: bool,
    /// Convert a domain whose type is not xen.
    #[arg(long)]
    force: bool,
    /// The guest is Windows of this version (`5.2` Server 2003, `6.1` 2008
    /// R2): machine, clock and enlightenments for it (see `convert`'s
    /// report for its disk bus and NIC model).
    #[arg(long, value_name = "MAJOR.MINOR", value_parser = windows_version)]
    windows: Option<(u32, u32)>,
    /// With --windows: the disk bus it boots from (virtio after its
    /// conversion installed viostor; ide with `convert --ide`).
    #[arg(long, value_parser = ["virtio", "ide"], default_value = "virtio", requires = "windows")]
    disk_bus: String,
    /// With --windows: the NIC model it has a driver for.
    #[arg(long, value_parser = ["virtio", "e1000", "rtl8139"], default_value = "virtio", requires = "windows")]
    nic_model: String,
    /// List the rules and exit.
    #[arg(long)]
    list: bool,
    /// Print a JSON summary (schema in docs/json.md); the XML goes to -o, or into the JSON.
    #[arg(long)]
    json: bool,
}

/// `--windows`'s parser: `MAJOR.MINOR`.
fn windows_version(s: &str) -> std::result::Result<(u32, u32), String> {
    let bad = || format!("{s:?}: expected MAJOR.MINOR, like 5.2 (Server 2003) or 6.1 (2008 R2)");
    let (a, b) = s.split_once('.').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum From {
    /// libvirt domain XML (`virsh dumpxml`).
    Libvirt,
    /// xl domain config (`/etc/xen/*.cfg`).
    Xl,
}

/// `--bridge`/`--network` values: `NEW`, `OLD=NEW` or virt-v2v's `OLD:NEW`.
pub(crate) fn parse_maps(values: &[String], bridge: bool) -> Vec<NetMap> {
    values
        .iter()
        .map(|v| {
            let (from, to) = match v.split_once('=').or_else(|| v.split_once(':')) {
                Some((a, b)) => (Some(a.to_owned()), b.to_owned()),
                None => (None, v.clone()),
            };
            NetMap {
                from,
                to: if bridge {
                    NetTarget::Bridge(to)
                } else {
                    NetTarget::Network(to)
                },
            }
        })
        .collect()
}

pub(crate) fn host_emulator() -> String {
    for p in [
        "/usr/bin/qemu-system-x86_64",
        "/usr/bin/qemu-kvm",
        "/usr/libexec/qemu-kvm",
    ] {
        if Path::new(p).exists() {
            return p.to_owned();
        }
    }
    "/usr/bin/qemu-system-x86_64".to_owned()
}

/// The format of an image (QEMU's probe), when it is readable here.
fn probe_format(path: &str) -> Option<String> {
    crate::image::info(Path::new(path)).ok().map(|i| i.format)
}

fn read_input(path: &Path) -> Result<String> {
    let mut text = String::new();
    let what = path.display().to_string();
    if what == "-" {
        std::io::stdin()
            .take(dx::MAX_INPUT as u64 + 1)
            .read_to_string(&mut text)
            .context("reading stdin")?;
    } else {
        let meta = fs::metadata(path).with_context(|| format!("reading {what}"))?;
        if meta.len() > dx::MAX_INPUT as u64 {
            bail!("{what}: {}", dx::Error::TooLarge(meta.len() as usize));
        }
        fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .with_context(|| format!("reading {what}"))?;
    }
    Ok(text)
}

pub(crate) fn run(args: Args) -> Result<Exit> {
    if args.list {
        for (name, what) in dx::RULES {
            println!("{name:<12} {what}");
        }
        return Ok(Exit::Ok);
    }
    let input = args.input.clone().unwrap_or_default();
    let text = read_input(&input)?;
    let mut disks = Vec::new();
    for d in &args.disk {
        let Some((t, p)) = d.split_once('=') else {
            bail!("--disk {d:?}: expected TARGET=PATH")
        };
        disks.push((t.to_owned(), p.to_owned()));
    }
    let mut nets = parse_maps(&args.bridge, true);
    nets.extend(parse_maps(&args.network, false));
    let opts = dx::Options {
        name: args.name.clone(),
        arch: args.arch.clone(),
        emulator: args.emulator.clone().unwrap_or_else(host_emulator),
        nets,
        disks,
        keep_direct_boot: args.keep_direct_boot,
        direct_boot: None,
        no_video: args.no_video,
        force: args.force,
        probe_format: &probe_format,
        windows: args.windows.map(|version| dx::Windows {
            version,
            disk_bus: args.disk_bus.clone(),
            nic: args.nic_model.clone(),
        }),
    };
    let src = input.display();
    let mut warnings = Vec::new();
    let conv = match args.from {
        From::Libvirt => dx::convert(&text, &opts).with_context(|| format!("{src}"))?,
        From::Xl => {
            let (doc, w) = dx::xl::to_xen_domain(&text).with_context(|| format!("{src}"))?;
            warnings = w;
            dx::convert_document(doc, &opts).with_context(|| format!("{src}"))?
        }
    };
    warnings.extend(conv.warnings.iter().cloned());
    if let Some(out) = &args.output {
        write_atomic(out, conv.xml.as_bytes())?;
    }
    if args.json {
        let doc = JsonDomxml {
            version: 1,
            input: src.to_string(),
            output: args.output.as_ref().map(|o| o.display().to_string()),
            changes: conv
                .changes
                .iter()
                .map(|c| JsonChange {
                    rule: c.rule,
                    what: c.what.clone(),
                })
                .collect(),
            warnings: warnings.clone(),
            xml: args.output.is_none().then(|| conv.xml.clone()),
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        if args.output.is_none() {
            print!("{}", conv.xml);
        }
        for c in &conv.changes {
            eprintln!("xen2kvm: [{}] {}", c.rule, c.what);
        }
    }
    if !args.json {
        for w in &warnings {
            eprintln!("xen2kvm: warning: {w}");
        }
    }
    Ok(Exit::Ok)
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.xen2kvm-tmp"));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// `domxml --json`, version 1 (docs/json.md).
#[derive(Serialize)]
struct JsonDomxml {
    version: u32,
    input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    changes: Vec<JsonChange>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xml: Option<String>,
}

#[derive(Serialize)]
struct JsonChange {
    rule: &'static str,
    what: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_configs_are_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        let bad = t.path().join("guest.xml");
        fs::write(&bad, b"<domain type='xen'><name>\xff\xfe</name></domain>").unwrap();
        let e = format!("{:#}", read_input(&bad).unwrap_err());
        assert!(e.contains("guest.xml") && e.contains("UTF-8"), "{e}");

        let huge = t.path().join("huge.cfg");
        fs::File::create(&huge).unwrap().set_len(4 << 30).unwrap();
        let e = format!("{:#}", read_input(&huge).unwrap_err());
        assert!(
            e.contains("huge.cfg") && e.contains("not a domain config"),
            "{e}"
        );
    }
}
