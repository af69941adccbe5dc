//! A DOS (MBR) partition table with one partition: the new disk a bare
//! filesystem is re-laid into (xen-tools' partition images, a filesystem
//! given to Xen as a whole disk), so that it has a place for boot code.
//!
//! The boot code area (bytes 0–439) stays zero: `grub-install` writes it
//! later, from the guest's own GRUB. The partition starts at 1 MiB (sector
//! 2048, where partitioning tools put it, leaving GRUB's core.img room),
//! is active, and has type 0x83 (Linux).

/// Sectors are 512 bytes.
pub const SECTOR: u64 = 512;

/// Where the partition starts: 1 MiB.
pub const START: u64 = 2048;

/// The bytes before the partition's data (the table and the gap).
pub const OFFSET: u64 = START * SECTOR;

/// A disk of `data_len` bytes of filesystem, re-laid: the whole disk's size
/// (the table and the gap before, the data rounded up to a sector).
pub fn disk_len(data_len: u64) -> u64 {
    OFFSET + data_len.div_ceil(SECTOR) * SECTOR
}

/// The 512-byte first sector of a disk holding `data_len` bytes of
/// filesystem at [`OFFSET`], with `signature` as its disk identifier (what
/// `PARTUUID=<signature>-01` names).
pub fn single_partition(data_len: u64, signature: u32) -> [u8; 512] {
    let sectors = data_len.div_ceil(SECTOR);
    let mut mbr = [0u8; 512];
    mbr[440..444].copy_from_slice(&signature.to_le_bytes());
    let e = &mut mbr[446..462];
    e[0] = 0x80;
    e[1..4].copy_from_slice(&chs(START));
    e[4] = 0x83;
    e[5..8].copy_from_slice(&chs(START + sectors - 1));
    e[8..12].copy_from_slice(&(START as u32).to_le_bytes());
    // An MBR counts sectors in 32 bits: 2 TiB at most (checked by the
    // caller, see [`fits`]).
    e[12..16].copy_from_slice(&(sectors.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr
}

/// Whether `data_len` bytes fit in one MBR partition (below 2 TiB).
pub fn fits(data_len: u64) -> bool {
    START + data_len.div_ceil(SECTOR) <= u64::from(u32::MAX)
}

/// The cylinder/head/sector address of a sector in the 255-head,
/// 63-sector geometry every tool assumes, or the "beyond" marker past
/// 1024 cylinders (the LBA fields are what counts).
fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    if lba >= 1024 * HEADS * SECTORS {
        return [0xFE, 0xFF, 0xFF];
    }
    let c = lba / (HEADS * SECTORS);
    let h = (lba / SECTORS) % HEADS;
    let s = lba % SECTORS + 1;
    [
        h as u8,
        (s as u8) | (((c >> 2) & 0xC0) as u8),
        (c & 0xFF) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_partition_at_one_mib() {
        // A 3 GiB filesystem: what sfdisk writes for `start=2048,
        // size=6291456, type=83, bootable` (its bytes 446..462, read back
        // from a file sfdisk partitioned).
        let m = single_partition(3 << 30, 0x1234_5678);
        assert_eq!(&m[..440], &[0u8; 440][..], "no boot code");
        assert_eq!(&m[440..444], &[0x78, 0x56, 0x34, 0x12]);
        assert_eq!(
            &m[446..462],
            &[
                0x80, 0x20, 0x21, 0x00, 0x83, 0xBF, 0x78, 0x87, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00,
                0x60, 0x00
            ]
        );
        assert_eq!(&m[462..510], &[0u8; 48][..], "one partition");
        assert_eq!(&m[510..], &[0x55, 0xAA]);
        assert_eq!(disk_len(3 << 30), (3 << 30) + (1 << 20));
        // A length that is not whole sectors is rounded up.
        let m = single_partition(1000, 0);
        assert_eq!(u32::from_le_bytes(m[458..462].try_into().unwrap()), 2);
        assert_eq!(disk_len(1000), OFFSET + 1024);
        // 64 MiB, as sfdisk writes it.
        let m = single_partition(64 << 20, 0);
        assert_eq!(
            &m[446..462],
            &[0x80, 0x20, 0x21, 0x00, 0x83, 0x49, 0x01, 0x08, 0x00, 0x08, 0, 0, 0, 0, 0x02, 0]
        );
        // Beyond 1024 cylinders (about 7.8 GiB): the marker.
        assert_eq!(chs(1024 * 255 * 63), [0xFE, 0xFF, 0xFF]);
        assert!(fits(1 << 40) && !fits(2 << 40));
    }
}
