//! `cargo xtask images [NAME...]`: builds the test guests of `images/`.
//!
//! Each recipe's `build.sh` writes a raw disk; it is stored compressed as
//! qcow2 in the cache (outside the checkout) under a name that carries the
//! recipe's hash, with the guest's package manifest beside it. A cached
//! image is reused as long as its recipe is unchanged. A recipe with a
//! `from` file is derived: its parent is built first and its `build.sh`
//! starts from the parent's image (`$PARENT`) instead of building a guest
//! again. A guest with more than one disk writes the others as
//! `$WORK/extra/LABEL.raw`; each is cached beside the image as
//! `<image>.LABEL.qcow2` (`xen2kvm_tests::image_extra`).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xen2kvm_tests::{cache_dir, image_extra, image_path, recipe_parent, recipes, repo_root};

use crate::run;

/// Builds the named images (all recipes when `names` is empty); returns
/// their cached paths in the same order.
pub(crate) fn build(names: &[String]) -> Result<Vec<PathBuf>> {
    let all = recipes().context("listing images/")?;
    let names: Vec<String> = if names.is_empty() {
        all.clone()
    } else {
        names.to_vec()
    };
    let mut out = Vec::new();
    for name in &names {
        if !all.contains(name) {
            bail!("no image recipe {name:?} (recipes: {})", all.join(", "));
        }
        out.push(build_one(name)?);
    }
    Ok(out)
}

/// Prints each recipe's cache path and whether it is built.
pub(crate) fn paths() -> Result<()> {
    for name in recipes().context("listing images/")? {
        let p = image_path(&name)?;
        println!(
            "{name}\t{}\t{}",
            if p.is_file() { "built" } else { "missing" },
            p.display()
        );
    }
    Ok(())
}

fn build_one(name: &str) -> Result<PathBuf> {
    let image = image_path(name)?;
    if image.is_file() {
        eprintln!("images: {name}: cached at {}", image.display());
        return Ok(image);
    }
    // A derived recipe starts from its parent's image (built first).
    let parent = match recipe_parent(name)? {
        Some(p) => Some(build_one(&p).with_context(|| format!("{name}: building its parent {p}"))?),
        None => None,
    };
    if !crate::deps::is_root() {
        bail!("building image {name} needs root (debootstrap, chroot): run as root");
    }
    let cache = cache_dir();
    let work = cache.join(format!("work-{name}"));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let t = Instant::now();
    eprintln!("images: {name}: building (recipe changed or never built)");
    let raw = work.join("disk.raw");
    let recipe = repo_root().join("images").join(name);
    let mut cmd = Command::new("bash");
    if let Some(p) = &parent {
        cmd.env("PARENT", p);
    }
    run(cmd
        .arg(recipe.join("build.sh"))
        .env("OUT", &raw)
        .env("WORK", &work)
        .env("BASE_CACHE", cache.join("base"))
        .env("RECIPE_DIR", &recipe))?;
    let part = image.with_extension("qcow2.part");
    run(Command::new("qemu-img")
        .args(["convert", "-c", "-O", "qcow2"])
        .arg(&raw)
        .arg(&part))?;
    let extra = work.join("extra");
    if extra.is_dir() {
        for e in fs::read_dir(&extra)? {
            let p = e?.path();
            let Some(label) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".raw"))
            else {
                continue;
            };
            let dst = image_extra(name, label)?;
            let part = dst.with_extension("qcow2.part");
            run(Command::new("qemu-img")
                .args(["convert", "-c", "-O", "qcow2"])
                .arg(&p)
                .arg(&part))?;
            fs::rename(&part, &dst)?;
        }
    }
    let manifest = work.join("manifest.txt");
    if manifest.is_file() {
        fs::copy(&manifest, image.with_extension("manifest.txt"))?;
    }
    fs::rename(&part, &image)?;
    remove_stale(name, &image)?;
    fs::remove_dir_all(&work)?;
    eprintln!(
        "images: {name}: built in {:.0}s: {}",
        t.elapsed().as_secs_f64(),
        image.display()
    );
    Ok(image)
}

/// Removes older builds of the same recipe.
fn remove_stale(name: &str, keep: &std::path::Path) -> Result<()> {
    let keep_stem = keep
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for e in fs::read_dir(cache_dir())? {
        let p = e?.path();
        let file = p
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(rest) = file.strip_prefix(&format!("{name}-")) else {
            continue;
        };
        // Another recipe whose name extends this one (debian12-xenpv-lvm).
        if rest.len() < 16 || !rest[..16].chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        if !file.starts_with(&keep_stem) {
            eprintln!("images: removing stale {}", p.display());
            fs::remove_file(&p)?;
        }
    }
    Ok(())
}
