//! `cargo xtask`: the project's tasks beyond `cargo test` (matklad's
//! cargo-xtask pattern). Every external command is echoed before it runs.
//!
//! - `deps`: install the Debian packages the project needs (idempotent).
//! - `images [NAME...]`: build the test guest images (cached by recipe hash);
//!   `images --paths` prints where each one is (or will be) cached.
//! - `tidy`: the architecture invariants (see `tidy.rs`).
//! - `test`: every test tier: lint, tidy, unit tests, images (built in the
//!   background meanwhile), end-to-end tests.
//! - `demo`: the main job on the built-in demo guest: a Xen PV guest that
//!   does not boot under KVM, migrated from its Xen domain XML (`xen2kvm
//!   migrate -o local --boot-check`), and the boot verdict of the result.
//! - `bench convert`, `bench migrate`: xen2kvm's and virt-v2v's wall time
//!   on one conversion (`-i disk`), one migration (`-i libvirtxml`).
//!
//! This crate must build without libguestfs installed: it only runs
//! commands, and shares the image cache logic with the tests crate.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod deps;
mod images;
mod tidy;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

const USAGE: &str =
    "usage: cargo xtask <deps | images [NAME...] | images --paths | tidy | test | demo | bench convert | bench migrate>";

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("deps") => deps::ensure(),
        Some("images") if args.get(1).map(String::as_str) == Some("--paths") => images::paths(),
        Some("images") => images::build(&args[1..]).map(|_| ()),
        Some("test") => test(),
        Some("tidy") => tidy::check().and_then(|()| tidy::pure_crates("check")),
        Some("demo") => demo(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a command in the repository root, echoing it; fails on non-zero.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", show(cmd));
    let status = cmd
        .current_dir(xen2kvm_tests::repo_root())
        .status()
        .with_context(|| format!("starting {}", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

fn show(cmd: &Command) -> String {
    let envs: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())))
        .collect();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut s = envs.join(" ");
    if !s.is_empty() {
        s.push(' ');
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in args {
        s.push(' ');
        s.push_str(&a);
    }
    s
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `f` as a named step and prints its time.
fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("==> {name}");
    let t = Instant::now();
    let r = f().with_context(|| format!("step `{name}`"))?;
    eprintln!("==> {name}: done in {:.0}s", t.elapsed().as_secs_f64());
    Ok(r)
}

fn test() -> Result<()> {
    let t = Instant::now();
    step("deps", deps::ensure)?;
    // The images build in a child process while lint and tier 1 run (the
    // image builds mostly wait on debootstrap and a one-vCPU appliance);
    // its output goes to a log, shown when it fails.
    let log_path = std::env::temp_dir().join(format!("xen2kvm-images-{}.log", std::process::id()));
    let images = spawn_images(&log_path)?;
    let lint_and_tier1 = (|| {
        step("fmt", || {
            run(cargo().args(["fmt", "--all", "--", "--check"]))
        })?;
        step("clippy", || {
            run(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
        step("tidy", tidy::check)?;
        step("ansible: the collection's playbook parses", ansible_syntax)?;
        step("tier 1: the pure crates, without libguestfs", || {
            tidy::pure_crates("test")
        })?;
        step("tier 1: the CLI, the appliance half, xtask", || {
            run(cargo().args([
                "test",
                "-p",
                "xen2kvm",
                "-p",
                "xen2kvm-inspector",
                "-p",
                "xtask",
            ]))
        })
    })();
    let built = step("images (built in the background since the start)", || {
        wait_images(images, &log_path)
    });
    lint_and_tier1?;
    built?;
    step("build xen2kvm", || {
        run(cargo().args(["build", "-p", "xen2kvm"]))
    })?;
    step(
        "tiers 2 and 3: appliance and boot tests on real images",
        || {
            run(cargo()
                .args([
                    "test",
                    "-p",
                    "xen2kvm-tests",
                    "--",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env("XEN2KVM_E2E", "1"))
        },
    )?;
    eprintln!("all test tiers passed in {:.0}s", t.elapsed().as_secs_f64());
    Ok(())
}

/// `ansible-playbook --syntax-check` of the collection's playbook, with
/// the collection found from the checkout.
fn ansible_syntax() -> Result<()> {
    let root = xen2kvm_tests::repo_root();
    let dir = std::env::temp_dir().join(format!("xen2kvm-ansible-{}", std::process::id()));
    let coll = dir.join("ansible_collections/xen2kvm");
    std::fs::create_dir_all(&coll)?;
    let link = coll.join("migration");
    if !link.exists() {
        std::os::unix::fs::symlink(root.join("ansible"), &link)?;
    }
    let r = run(Command::new("ansible-playbook")
        .arg("--syntax-check")
        .arg("-i")
        .arg(root.join("ansible/inventory.example.yml"))
        .arg(root.join("ansible/playbooks/migrate.yml"))
        .env("ANSIBLE_COLLECTIONS_PATH", &dir)
        .env("ANSIBLE_NOCOLOR", "1"));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Starts `xtask images` (every recipe: the end-to-end tests use them
/// all) with its output in `log`.
fn spawn_images(log: &Path) -> Result<std::process::Child> {
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.arg("images")
        .current_dir(xen2kvm_tests::repo_root())
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    eprintln!("$ {} > {} (in the background)", show(&cmd), log.display());
    cmd.spawn().context("starting the image build")
}

/// Waits for the image build; prints its log, whole when it failed, else
/// only its summary lines.
fn wait_images(mut child: std::process::Child, log: &Path) -> Result<()> {
    let status = child.wait().context("waiting for the image build")?;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    if !status.success() {
        eprintln!("{text}");
        bail!(
            "the image build failed ({status}); its log is above and in {}",
            log.display()
        );
    }
    for line in text.lines().filter(|l| l.starts_with("images: ")) {
        eprintln!("{line}");
    }
    let _ = std::fs::remove_file(log);
    Ok(())
}

fn demo() -> Result<()> {
    step("deps", deps::ensure)?;
    step("build xen2kvm", || {
        run(cargo().args(["build", "-p", "xen2kvm"]))
    })?;
    let names = vec!["debian12-xenpv".to_owned()];
    let built = step("images", || images::build(&names))?;
    let root = xen2kvm_tests::repo_root();
    let bin = root.join("target/debug/xen2kvm");
    let work = std::env::temp_dir().join("xen2kvm-demo");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let source = &built[0];
    // The guest as a Xen host keeps it: a raw disk and its domain XML.
    let disk = work.join("demo-xen.img");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(source)
        .arg(&disk))?;
    let xml = work.join("demo-xen.xml");
    std::fs::write(&xml, xen2kvm_tests::xen_domain_xml("demo", &disk))?;
    let out = work.join("kvm");
    std::fs::create_dir_all(&out)?;
    let before = step("boot-check the Xen PV guest as it is", || {
        demo_run(
            &bin,
            &[
                "boot-check".as_ref(),
                disk.as_os_str(),
                "--log-dir".as_ref(),
                work.as_os_str(),
            ],
            &[0, 1],
        )
    })?;
    let after = step(
        "migrate it from its Xen domain XML (the source is only read)",
        || {
            demo_run(
                &bin,
                &[
                    "migrate".as_ref(),
                    "-i".as_ref(),
                    "libvirtxml".as_ref(),
                    xml.as_os_str(),
                    "-o".as_ref(),
                    "local".as_ref(),
                    "-os".as_ref(),
                    out.as_os_str(),
                    "--backup".as_ref(),
                    work.join("backup").as_os_str(),
                    "--boot-check".as_ref(),
                    "--log-dir".as_ref(),
                    work.as_os_str(),
                ],
                &[0, 1],
            )
        },
    )?;
    let example = root.join("crates/domxml/test_data/suse-example.xen.xml");
    step("domxml: the SUSE guide's Xen domain to KVM", || {
        demo_run(&bin, &["domxml".as_ref(), example.as_os_str()], &[0])
    })?;
    let verdict = |c: i32| if c == 0 { "booted" } else { "did not boot" };
    eprintln!(
        "demo: before migration the Xen PV guest {}; the domain `xen2kvm migrate` made {} (boot-check before it was written; disks and demo.xml in {})",
        verdict(before),
        if after == 0 { "booted" } else { "did not boot or failed" },
        out.display()
    );
    if before == 0 || after != 0 {
        bail!("the demo expected the Xen guest to fail before migration and its migrated domain to boot");
    }
    Ok(())
}

/// `bench convert`: a full conversion of debian12-xenpv by xen2kvm and by
/// virt-v2v (`-i disk -o local`) on the same image, one after the other.
fn bench(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("convert") => {}
        Some("migrate") => return bench_migrate(),
        _ => bail!("usage: cargo xtask bench convert | bench migrate"),
    }
    step("deps", deps::ensure)?;
    deps::ensure_bench()?;
    step("build xen2kvm (release)", || {
        run(cargo().args(["build", "--release", "-p", "xen2kvm"]))
    })?;
    let built = step("images", || images::build(&["debian12-xenpv".to_owned()]))?;
    let root = xen2kvm_tests::repo_root();
    let bin = root.join("target/release/xen2kvm");
    let work = std::env::temp_dir().join("xen2kvm-bench");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(work.join("v2v"))?;
    let out = work.join("xen2kvm.qcow2");
    let t = Instant::now();
    run(Command::new(&bin)
        .arg("convert")
        .arg(&built[0])
        .arg("-o")
        .arg(&out))?;
    let ours = t.elapsed().as_secs_f64();
    let t = Instant::now();
    run(Command::new("virt-v2v")
        .args(["-i", "disk"])
        .arg(&built[0])
        .args(["-o", "local", "-os"])
        .arg(work.join("v2v"))
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg"))?;
    let theirs = t.elapsed().as_secs_f64();
    println!(
        "bench convert debian12-xenpv: xen2kvm {ours:.0}s, virt-v2v {theirs:.0}s, ratio {:.2} (target <= 0.5)",
        ours / theirs
    );
    Ok(())
}

/// `bench migrate`: the Debian Xen PV guest's domain XML (raw disk)
/// migrated by `xen2kvm migrate -o local` and by `virt-v2v -i libvirtxml
/// -o local`, one after the other, with the same output format.
fn bench_migrate() -> Result<()> {
    step("deps", deps::ensure)?;
    deps::ensure_bench()?;
    step("build xen2kvm (release)", || {
        run(cargo().args(["build", "--release", "-p", "xen2kvm"]))
    })?;
    let built = step("images", || images::build(&["debian12-xenpv".to_owned()]))?;
    let root = xen2kvm_tests::repo_root();
    let bin = root.join("target/release/xen2kvm");
    let work = std::env::temp_dir().join("xen2kvm-bench-migrate");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    for d in ["xen2kvm", "v2v"] {
        std::fs::create_dir_all(work.join(d))?;
    }
    let disk = work.join("bench-xen.img");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&built[0])
        .arg(&disk))?;
    let xml = work.join("bench.xml");
    std::fs::write(&xml, xen2kvm_tests::xen_domain_xml("bench", &disk))?;
    let t = Instant::now();
    run(Command::new(&bin)
        .args(["migrate", "-i", "libvirtxml"])
        .arg(&xml)
        .args(["-o", "local", "-of", "raw", "-os"])
        .arg(work.join("xen2kvm")))?;
    let ours = t.elapsed().as_secs_f64();
    let t = Instant::now();
    run(Command::new("virt-v2v")
        .args(["-i", "libvirtxml"])
        .arg(&xml)
        .args(["-o", "local", "-of", "raw", "-os"])
        .arg(work.join("v2v"))
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg"))?;
    let theirs = t.elapsed().as_secs_f64();
    println!(
        "bench migrate debian12-xenpv (raw, libvirtxml): xen2kvm {ours:.0}s, virt-v2v {theirs:.0}s, ratio {:.2} (target <= 0.4)",
        ours / theirs
    );
    Ok(())
}

/// Runs `xen2kvm ARGS`, echoing it; an exit code outside `ok` is an error.
fn demo_run(bin: &Path, args: &[&std::ffi::OsStr], ok: &[i32]) -> Result<i32> {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    eprintln!("$ {}", show(&cmd));
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", bin.display()))?;
    match status.code() {
        Some(c) if ok.contains(&c) => Ok(c),
        _ => bail!("`{}` failed ({status})", show(&cmd)),
    }
}
