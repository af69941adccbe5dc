//! The disk data path of `migrate` and `backup`: one read of a source
//! (an image file's bytes, or a block device) feeds every copy of it and
//! its SHA-256 at once.
//!
//! - Holes of the source (`SEEK_HOLE`) are not read; zero blocks are not
//!   written: a [`Allocation::Sparse`] copy allocates about what the source
//!   allocates, a [`Allocation::Preallocated`] one is fully allocated first
//!   (`fallocate`), so that a full filesystem is found before the copy, not
//!   in the middle of it.
//! - A copy is created new (never over an existing file) and removed when
//!   the copy fails or is stopped.
//! - [`sha256_file`] re-reads a file from the disk, not from the page cache
//!   (`posix_fadvise(DONTNEED)` after a sync), to verify what was written.
//! - [`sums`]: `SHA256SUMS` manifests in the format `sha256sum -c` reads.
//!
//! Pure std + rustix; no process is run here.

pub mod mbr;
pub mod sums;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// How a copy allocates its space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Holes and zero blocks stay holes.
    Sparse,
    /// Every byte allocated before the copy starts.
    Preallocated,
}

/// One copy to make.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Created new; must not exist.
    pub path: PathBuf,
    /// Its allocation.
    pub allocation: Allocation,
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The source's size in bytes (what the guest sees, for a raw image).
    pub size: u64,
    /// Bytes that were data (not holes, not zero blocks).
    pub data: u64,
    /// SHA-256 of the source's bytes, lower-case hex.
    pub sha256: String,
}

/// The unit of reading and of the progress reports.
const CHUNK: usize = 4 << 20;
/// The unit of zero detection: blocks of zeros are not written.
const BLOCK: usize = 64 << 10;

/// Reports progress (`done`, `total` bytes) and says whether to stop.
pub trait Progress {
    /// Called after each chunk.
    fn update(&mut self, done: u64, total: u64);
    /// Whether the copy must stop now (a signal): it then fails with
    /// [`io::ErrorKind::Interrupted`] and removes its copies.
    fn stop(&self) -> bool {
        false
    }
}

/// No progress reports, never stops.
pub struct Quiet;

impl Progress for Quiet {
    fn update(&mut self, _: u64, _: u64) {}
}

/// The size of a file or a block device.
pub fn size_of(file: &mut File) -> io::Result<u64> {
    let meta = file.metadata()?;
    if meta.file_type().is_file() {
        return Ok(meta.len());
    }
    let end = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    Ok(end)
}

/// The bytes a file allocates on its filesystem.
pub fn allocated(path: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(path)?.blocks() * 512)
}

/// What identifies a file's content without reading it: a write changes
/// its ctime (the user cannot set it back), a replacement its inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// The [`Stamp`] of a file now.
pub fn stamp(path: &Path) -> io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// Removes the copies unless the copy finished.
struct Made(Vec<PathBuf>);

impl Drop for Made {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The copies being written, removed unless finished.
struct Outputs<'a> {
    sinks: &'a [Sink],
    files: Vec<File>,
    made: Made,
    hash: Sha256,
    data: u64,
}

fn ctx(what: &str, p: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
}

impl<'a> Outputs<'a> {
    fn create(sinks: &'a [Sink], size: u64) -> io::Result<Outputs<'a>> {
        let mut made = Made(Vec::new());
        let mut files = Vec::new();
        for s in sinks {
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&s.path)
                .map_err(|e| ctx("creating", &s.path, e))?;
            made.0.push(s.path.clone());
            match s.allocation {
                Allocation::Sparse => f.set_len(size),
                Allocation::Preallocated => preallocate(&f, size),
            }
            .map_err(|e| ctx("allocating", &s.path, e))?;
            files.push(f);
        }
        Ok(Outputs {
            sinks,
            files,
            made,
            hash: Sha256::new(),
            data: 0,
        })
    }

    /// Hashes `buf` (the bytes at `pos`) and writes its non-zero blocks.
    fn data(&mut self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.hash.update(buf);
        for (i, block) in buf.chunks(BLOCK).enumerate() {
            if is_zero(block) {
                continue;
            }
            let at = pos + (i * BLOCK) as u64;
            self.data += block.len() as u64;
            for (f, s) in self.files.iter().zip(self.sinks) {
                f.write_all_at(block, at)
                    .map_err(|e| ctx("writing", &s.path, e))?;
            }
        }
        Ok(())
    }

    /// Hashes `n` zeros (a hole: nothing to write).
    fn hole(&mut self, zeros: &[u8], mut n: u64) {
        while n > 0 {
            let k = n.min(zeros.len() as u64) as usize;
            self.hash.update(&zeros[..k]);
            n -= k as u64;
        }
    }

    fn finish(mut self, size: u64) -> io::Result<Copied> {
        for (f, s) in self.files.iter().zip(self.sinks) {
            f.sync_all().map_err(|e| ctx("syncing", &s.path, e))?;
        }
        self.made.0.clear();
        Ok(Copied {
            size,
            data: self.data,
            sha256: hex(&self.hash.finalize()),
        })
    }
}

fn stopped(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Interrupted,
        format!("copying {what}: stopped"),
    )
}

/// Copies the bytes of `src` to every sink in one read, hashing them.
pub fn copy(src: &Path, sinks: &[Sink], progress: &mut dyn Progress) -> io::Result<Copied> {
    let mut input = File::open(src).map_err(|e| ctx("opening", src, e))?;
    let size = size_of(&mut input).map_err(|e| ctx("reading the size of", src, e))?;
    let mut out = Outputs::create(sinks, size)?;
    let zeros = vec![0u8; CHUNK];
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    while pos < size {
        if progress.stop() {
            return Err(stopped(&src.display().to_string()));
        }
        // A hole is hashed as zeros and neither read nor written.
        let (extent_end, is_data) = next_extent(&input, pos, size);
        let end = extent_end.min(pos + CHUNK as u64);
        let n = (end - pos) as usize;
        if is_data {
            input
                .read_exact_at(&mut buf[..n], pos)
                .map_err(|e| ctx("reading", src, e))?;
            out.data(&buf[..n], pos)?;
        } else {
            out.hole(&zeros, n as u64);
        }
        pos = end;
        progress.update(pos, size);
    }
    out.finish(size)
}

/// Copies `size` bytes read from a stream (a disk on another host, read
/// through ssh) to every sink, hashing them; fewer or more bytes than
/// `size` is an error naming `what`.
pub fn copy_stream(
    input: &mut dyn Read,
    size: u64,
    what: &str,
    sinks: &[Sink],
    progress: &mut dyn Progress,
) -> io::Result<Copied> {
    let mut out = Outputs::create(sinks, size)?;
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    while pos < size {
        if progress.stop() {
            return Err(stopped(what));
        }
        let want = (size - pos).min(CHUNK as u64) as usize;
        let mut got = 0;
        while got < want {
            match input.read(&mut buf[got..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{what}: the stream ended after {} of {size} bytes",
                            pos + got as u64
                        ),
                    ))
                }
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("reading {what}: {e}"))),
            }
        }
        out.data(&buf[..want], pos)?;
        pos += want as u64;
        progress.update(pos, size);
    }
    let mut extra = [0u8; 1];
    if matches!(input.read(&mut extra), Ok(k) if k > 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what}: more than the {size} bytes announced (the source changed?)"),
        ));
    }
    out.finish(size)
}

/// Where the extent at `pos` ends and whether it holds data. A source
/// that cannot say (a block device, a filesystem without SEEK_DATA) is
/// all data.
fn next_extent(f: &File, pos: u64, size: u64) -> (u64, bool) {
    use rustix::fs::{seek, SeekFrom as S};
    match seek(f, S::Data(pos)) {
        Ok(d) if d > pos => (d.min(size), false),
        Ok(_) => match seek(f, S::Hole(pos)) {
            Ok(h) if h > pos => (h.min(size), true),
            _ => (size, true),
        },
        // ENXIO: no data after pos, the rest is a hole.
        Err(rustix::io::Errno::NXIO) => (size, false),
        Err(_) => (size, true),
    }
}

fn preallocate(f: &File, size: u64) -> io::Result<()> {
    f.set_len(size)?;
    if size == 0 {
        return Ok(());
    }
    rustix::fs::fallocate(f, rustix::fs::FallocateFlags::empty(), 0, size).map_err(io::Error::from)
}

fn is_zero(block: &[u8]) -> bool {
    // Word by word: the hot loop of a sparse copy (built optimized even in
    // debug builds, see the workspace's Cargo.toml).
    let mut words = block.chunks_exact(8);
    words.all(|w| w.iter().fold(0u8, |acc, b| acc | b) == 0)
        && words.remainder().iter().all(|&b| b == 0)
}

/// The SHA-256 of a file's bytes, read from the disk: what is cached of it
/// is synced and dropped first, so a copy is verified as it was written.
pub fn sha256_file(path: &Path, progress: &mut dyn Progress) -> io::Result<String> {
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("reading {}: {e}", path.display()));
    let mut f = File::open(path).map_err(ctx)?;
    let size = size_of(&mut f).map_err(ctx)?;
    if f.metadata().map_err(ctx)?.file_type().is_file() {
        let _ = f.sync_all();
        let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
    }
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        if progress.stop() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                format!("reading {}: stopped", path.display()),
            ));
        }
        let n = f.read(&mut buf).map_err(ctx)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        done += n as u64;
        progress.update(done, size);
    }
    Ok(hex(&hash.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests;
