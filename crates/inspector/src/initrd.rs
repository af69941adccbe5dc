//! Lists the files of an initramfs image: concatenated `newc` cpio archives
//! (an uncompressed early-microcode part first, as dracut writes it), the
//! last of them compressed with gzip, xz or zstd. Pure: bytes in, names out.

use std::io::Read;

/// The file names in an initramfs (without a leading `/`), or why they
/// cannot be read.
pub fn list(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = bytes;
    loop {
        while let Some((&0, tail)) = rest.split_first() {
            rest = tail;
        }
        if rest.is_empty() {
            return Ok(names);
        }
        if rest.starts_with(b"07070") {
            rest = cpio(rest, &mut names)?;
            continue;
        }
        let inner = decompress(rest)?;
        names.extend(list(&inner)?);
        return Ok(names);
    }
}

/// Whether the listing holds a kernel module (`virtio_blk` matches
/// `…/virtio_blk.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`; `-` and `_` alike).
pub fn has_module(names: &[String], module: &str) -> bool {
    let want = module.replace('-', "_");
    names.iter().any(|n| {
        let file = n.rsplit('/').next().unwrap_or(n);
        let stem = file.split(".ko").next().unwrap_or("");
        file.contains(".ko") && stem.replace('-', "_") == want
    })
}

fn hex(field: &[u8]) -> Result<usize, String> {
    let s = std::str::from_utf8(field).map_err(|_| "corrupt cpio header".to_owned())?;
    usize::from_str_radix(s, 16).map_err(|_| format!("corrupt cpio header field {s:?}"))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Reads one cpio archive; returns what follows its trailer.
fn cpio<'a>(mut data: &'a [u8], names: &mut Vec<String>) -> Result<&'a [u8], String> {
    let start_len = data.len();
    loop {
        if data.len() < 110 || !data.starts_with(b"07070") {
            return Err("truncated or corrupt cpio archive".to_owned());
        }
        let filesize = hex(&data[54..62])?;
        let namesize = hex(&data[94..102])?;
        let name_end = 110 + namesize;
        if namesize == 0 || data.len() < name_end {
            return Err("truncated cpio archive".to_owned());
        }
        let name = String::from_utf8_lossy(&data[110..name_end - 1]).into_owned();
        let data_start = align4(name_end);
        // Offsets are relative to the archive start, which is 4-aligned.
        let consumed = start_len - data.len();
        let data_end = align4(consumed + data_start + filesize) - consumed;
        if data.len() < data_start + filesize {
            return Err("truncated cpio archive".to_owned());
        }
        data = &data[data_end.min(data.len())..];
        if name == "TRAILER!!!" {
            return Ok(data);
        }
        names.push(name.trim_start_matches("./").to_owned());
    }
}

/// The most an initramfs may decompress to: real ones are tens to a few
/// hundred MB; a guest's "initrd" that inflates past this (a decompression
/// bomb) is refused rather than allowed to exhaust the host's memory.
pub const MAX_UNPACKED: u64 = 1 << 30;

/// A `Write` into a `Vec` that refuses to grow past [`MAX_UNPACKED`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() as u64 + buf.len() as u64 > MAX_UNPACKED {
            return Err(std::io::Error::other(too_big()));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn too_big() -> String {
    format!(
        "decompresses to more than {} MiB (not an initramfs xen2kvm reads)",
        MAX_UNPACKED >> 20
    )
}

fn read_capped(r: impl Read, what: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    r.take(MAX_UNPACKED + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{what}: {e}"))?;
    if out.len() as u64 > MAX_UNPACKED {
        return Err(too_big());
    }
    Ok(out)
}

fn decompress(data: &[u8]) -> Result<Vec<u8>, String> {
    let out;
    if data.starts_with(&[0x1f, 0x8b]) {
        out = read_capped(flate2::read::MultiGzDecoder::new(data), "gzip")?;
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        let mut w = Capped(Vec::new());
        lzma_rs::xz_decompress(&mut std::io::BufReader::new(data), &mut w)
            .map_err(|e| format!("xz: {e:?}"))?;
        out = w.0;
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let dec =
            ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| format!("zstd: {e}"))?;
        out = read_capped(dec, "zstd")?;
    } else {
        let kind = match data {
            [0x02, 0x21, 0x4c, 0x18, ..] | [0x04, 0x22, 0x4d, 0x18, ..] => "lz4",
            [b'B', b'Z', b'h', ..] => "bzip2",
            [0x89, b'L', b'Z', b'O', ..] => "lzo",
            [0x5d, 0, 0, ..] => "lzma",
            _ => "unknown",
        };
        return Err(format!("initramfs compression {kind} is not supported"));
    }
    Ok(out)
}

/// A newc cpio archive of empty files named `files` (for test fixtures:
/// the initrds of test guests and of the editor's tests).
pub fn newc<S: AsRef<str>>(files: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in files.iter().map(AsRef::as_ref).chain(["TRAILER!!!"]) {
        let mut h = format!("070701{:08x}{:08x}", 1, 0o100644);
        h.push_str(&"00000000".repeat(4)); // uid gid nlink mtime
        h.push_str("00000000"); // filesize
        h.push_str(&"00000000".repeat(4));
        h.push_str(&format!("{:08x}", name.len() + 1));
        h.push_str("00000000");
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn early_cpio_then_gzip() {
        let mut img = newc(&["kernel/x86/microcode/GenuineIntel.bin"]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&newc(&[
            "usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko.xz",
            "init",
        ]))
        .unwrap();
        img.extend(gz.finish().unwrap());
        let names = list(&img).unwrap();
        assert_eq!(names.len(), 3);
        assert!(has_module(&names, "virtio_blk"));
        assert!(!has_module(&names, "virtio_net"));
        assert!(!has_module(&names, "init"));
    }

    #[test]
    fn dash_and_underscore_match() {
        let names = vec!["lib/modules/3.0/kernel/drivers/xen/blkfront/xen-blkfront.ko".to_owned()];
        assert!(has_module(&names, "xen_blkfront"));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(list(b"BZh91AY&SY").unwrap_err().contains("bzip2"));
        assert!(list(b"0707010000").is_err());
        assert_eq!(list(&[]).unwrap(), Vec::<String>::new());
    }
}
