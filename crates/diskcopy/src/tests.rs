//! The data path on real sparse files in a temporary directory.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

use super::*;

const MIB: u64 = 1 << 20;

/// 64 MiB: 1 MiB of data at 0, a 4 MiB written block of zeros at 8 MiB,
/// data at 40 MiB, holes elsewhere.
fn sparse_source(dir: &Path) -> PathBuf {
    let p = dir.join("src.img");
    let f = File::create(&p).unwrap();
    f.set_len(64 * MIB).unwrap();
    let data: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8 + 1).collect();
    f.write_all_at(&data, 0).unwrap();
    f.write_all_at(&vec![0u8; 4 * MIB as usize], 8 * MIB)
        .unwrap();
    f.write_all_at(b"the end of the data", 40 * MIB + 123)
        .unwrap();
    f.sync_all().unwrap();
    p
}

fn sha_of(p: &Path) -> String {
    hex(&Sha256::digest(fs::read(p).unwrap()))
}

struct Count(u64, bool);

impl Progress for Count {
    fn update(&mut self, done: u64, _: u64) {
        self.0 = done;
    }
    fn stop(&self) -> bool {
        self.1 && self.0 >= 8 * MIB
    }
}

#[test]
fn one_read_makes_a_sparse_and_a_preallocated_copy_and_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let src = sparse_source(dir.path());
    let sparse = dir.path().join("sparse.img");
    let full = dir.path().join("full.img");
    let mut count = Count(0, false);
    let c = copy(
        &src,
        &[
            Sink {
                path: sparse.clone(),
                allocation: Allocation::Sparse,
            },
            Sink {
                path: full.clone(),
                allocation: Allocation::Preallocated,
            },
        ],
        &mut count,
    )
    .unwrap();
    assert_eq!(c.size, 64 * MIB);
    assert_eq!(count.0, 64 * MIB);
    assert_eq!(c.sha256, sha_of(&src));
    assert_eq!(sha_of(&sparse), c.sha256);
    assert_eq!(sha_of(&full), c.sha256);
    // Only the data blocks were written: 1 MiB and the filesystem block
    // (at most one zero-detection block) around the string at 40 MiB.
    assert!(c.data > MIB && c.data <= MIB + BLOCK as u64, "{}", c.data);
    let (a_src, a_sparse, a_full) = (
        allocated(&src).unwrap(),
        allocated(&sparse).unwrap(),
        allocated(&full).unwrap(),
    );
    assert!(a_sparse <= a_src, "sparse {a_sparse} > source {a_src}");
    assert!(a_sparse < 2 * MIB, "sparse copy allocates {a_sparse}");
    assert!(a_full >= 64 * MIB, "preallocated copy allocates {a_full}");
    assert_eq!(sha256_file(&full, &mut Quiet).unwrap(), c.sha256);
}

#[test]
fn an_existing_output_is_never_overwritten_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let src = sparse_source(dir.path());
    let first = dir.path().join("new.img");
    let taken = dir.path().join("taken.img");
    fs::write(&taken, b"keep me").unwrap();
    let err = copy(
        &src,
        &[
            Sink {
                path: first.clone(),
                allocation: Allocation::Sparse,
            },
            Sink {
                path: taken.clone(),
                allocation: Allocation::Sparse,
            },
        ],
        &mut Quiet,
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("taken.img"), "{err}");
    assert_eq!(fs::read(&taken).unwrap(), b"keep me");
    assert!(!first.exists());
}

#[test]
fn a_stopped_copy_removes_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let src = sparse_source(dir.path());
    let out = dir.path().join("out.img");
    let err = copy(
        &src,
        &[Sink {
            path: out.clone(),
            allocation: Allocation::Preallocated,
        }],
        &mut Count(0, true),
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    assert!(!out.exists());
}

#[test]
fn a_missing_source_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = copy(&dir.path().join("nope.img"), &[], &mut Quiet).unwrap_err();
    assert!(err.to_string().contains("nope.img"), "{err}");
}

#[test]
fn stamps_see_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let src = sparse_source(dir.path());
    let before = stamp(&src).unwrap();
    assert_eq!(stamp(&src).unwrap(), before);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let f = fs::OpenOptions::new().write(true).open(&src).unwrap();
    f.write_all_at(b"x", 5).unwrap();
    assert_ne!(stamp(&src).unwrap(), before);
}

#[test]
fn manifests_round_trip_and_verify_finds_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.img");
    let b = dir.path().join("guest.xml");
    fs::write(&a, vec![7u8; 100_000]).unwrap();
    fs::write(&b, "<domain/>").unwrap();
    let entries = vec![
        sums::Entry {
            sha256: sha_of(&a),
            name: "a.img".into(),
        },
        sums::Entry {
            sha256: sha_of(&b),
            name: "guest.xml".into(),
        },
    ];
    let text = sums::render(&entries);
    assert_eq!(sums::parse(&text).unwrap(), entries);
    File::create(dir.path().join(sums::FILE))
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let (_, problems) = sums::verify(dir.path(), &mut Quiet).unwrap();
    assert!(problems.is_empty(), "{problems:?}");

    let f = fs::OpenOptions::new().write(true).open(&a).unwrap();
    f.write_all_at(&[8], 54_321).unwrap();
    drop(f);
    fs::remove_file(&b).unwrap();
    let (_, problems) = sums::verify(dir.path(), &mut Quiet).unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(matches!(&problems[0], sums::Problem::Mismatch { name, .. } if name == "a.img"));
    assert_eq!(problems[1], sums::Problem::Missing("guest.xml".into()));
}

#[test]
fn hostile_manifests_are_refused() {
    let sum = "0".repeat(64);
    for bad in [
        format!("{sum}  ../etc/shadow\n"),
        format!("{sum}  /etc/shadow\n"),
        format!("{sum}  ..\n"),
        "abc  a.img\n".to_owned(),
        format!("{sum}a.img\n"),
    ] {
        assert!(sums::parse(&bad).is_err(), "accepted {bad:?}");
    }
    // sha256sum's binary-mode marker is accepted.
    assert_eq!(
        sums::parse(&format!("{sum} *a.img\n")).unwrap()[0].name,
        "a.img"
    );
}

#[test]
fn a_stream_is_copied_hashed_and_checked_for_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let src = sparse_source(dir.path());
    let bytes = fs::read(&src).unwrap();
    let out = dir.path().join("from-stream.img");
    let c = copy_stream(
        &mut &bytes[..],
        bytes.len() as u64,
        "test stream",
        &[Sink {
            path: out.clone(),
            allocation: Allocation::Sparse,
        }],
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(c.sha256, sha_of(&src));
    assert_eq!(sha_of(&out), c.sha256);
    assert!(
        allocated(&out).unwrap() < 2 * MIB,
        "zero blocks are not written"
    );

    let short = dir.path().join("short.img");
    let err = copy_stream(
        &mut &bytes[..1000],
        bytes.len() as u64,
        "test stream",
        &[Sink {
            path: short.clone(),
            allocation: Allocation::Sparse,
        }],
        &mut Quiet,
    )
    .unwrap_err();
    assert!(err.to_string().contains("ended after 1000"), "{err}");
    assert!(!short.exists());
    let err = copy_stream(&mut &bytes[..], 10, "test stream", &[], &mut Quiet).unwrap_err();
    assert!(err.to_string().contains("more than"), "{err}");
}
