//! [`Guest`]: one appliance launch with a guest's disks, inspected and mounted.

use std::io;
use std::path::PathBuf;

use guestfs::{AddDriveOptArgs, Handle, IsDirOptArgs};
use xen2kvm_vfs::{Entry, FileKind, GuestFs, GuestPath, Metadata};

use crate::error::{gerr, Error, Result};

/// How to open a guest.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Add the disks read-only (no write can reach them).
    pub readonly: bool,
    /// Disk format (`raw`, `qcow2`, …); `None` lets libguestfs detect it.
    pub format: Option<String>,
    /// Which root to use when inspection finds several (e.g. `/dev/sda2`).
    pub root: Option<String>,
}

/// What inspection says about the chosen root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootInfo {
    /// The root filesystem's device in the appliance (e.g. `/dev/sda1`).
    pub device: String,
    /// `linux`, `windows`, … (libguestfs' `inspect_get_type`).
    pub os_type: String,
    /// `debian`, `sles`, `rhel`, … (libguestfs' `inspect_get_distro`).
    pub distro: String,
    /// The product name, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub product_name: String,
    /// Major and minor version.
    pub version: (i32, i32),
    /// `x86_64`, `i386`, …
    pub arch: String,
    /// Mount points and their devices, as mounted (shortest path first).
    pub mounts: Vec<(String, String)>,
    /// Mount points that could not be mounted, with the reason.
    pub mount_failures: Vec<String>,
    /// A btrfs root: the subvolume mounted as `/` (the default one, e.g.
    /// snapper's `@/.snapshots/1/snapshot`), where every edit goes.
    pub subvolume: Option<String>,
    /// Snapshots that inspection also reported as operating systems
    /// (snapper's), as subvolume paths of the root's filesystem
    /// (`@/.snapshots/2/snapshot`): older states of the guest that it does
    /// not boot; not converted.
    pub snapshots_ignored: Vec<String>,
}

/// A guest opened by [`Guest::open_any`].
pub enum Opened {
    /// A Linux guest (what [`Guest::open`] returns).
    Linux(Guest),
    /// A Windows guest.
    Windows(crate::windows::WindowsGuest),
}

/// A guest's disks in a running appliance, with its root mounted at `/`.
pub struct Guest {
    g: Handle,
    root: RootInfo,
    disks: Vec<PathBuf>,
}

impl Guest {
    /// Launches the appliance with `disks`, inspects them and mounts the
    /// chosen root's filesystems (read-only when `opts.readonly`).
    pub fn open(disks: &[PathBuf], opts: &OpenOptions) -> Result<Guest> {
        match Guest::open_any(disks, opts)? {
            Opened::Linux(g) => Ok(g),
            Opened::Windows(w) => {
                let what = format!("windows ({})", w.base().product);
                // Closing a read-only look cannot lose anything.
                let _ = w.close();
                Err(Error::NotLinux(what))
            }
        }
    }

    /// Like [`Guest::open`], for a Linux or a Windows guest.
    pub fn open_any(disks: &[PathBuf], opts: &OpenOptions) -> Result<Opened> {
        for d in disks {
            std::fs::File::open(d)
                .map_err(|e| Error::Disk(format!("cannot open disk {}: {e}", d.display())))?;
            if opts.format.as_deref() == Some("qcow2") {
                check_qcow2(d)?;
            }
        }
        let g = Handle::create().map_err(gerr("create", ""))?;
        // The appliance in a process group of its own: a Ctrl-C at the
        // terminal reaches xen2kvm, which decides how to stop, and not the
        // appliance in the middle of a write.
        g.set_pgroup(true).map_err(gerr("set_pgroup", ""))?;
        if let Some(settings) = crate::appliance_env() {
            g.set_backend_settings(&[settings.as_str()])
                .map_err(gerr("set_backend_settings", ""))?;
        }
        for d in disks {
            let name = d.to_string_lossy();
            g.add_drive(
                &name,
                AddDriveOptArgs {
                    readonly: Some(opts.readonly),
                    format: opts.format.as_deref(),
                    ..Default::default()
                },
            )
            .map_err(gerr("add_drive", &name))?;
        }
        g.launch().map_err(gerr("launch", ""))?;
        let roots = g.inspect_os().map_err(gerr("inspect_os", ""))?;
        if roots.is_empty() {
            if let Some(fs) = windows_filesystem(&g) {
                return Err(Error::NotLinux(format!(
                    "Windows-like (\\Windows\\System32 on {fs}, no Linux root)"
                )));
            }
        }
        let (device, snapshots_ignored) = choose_root(roots, opts.root.as_deref())?;
        let os_type = g
            .inspect_get_type(&device)
            .map_err(gerr("inspect_get_type", &device))?;
        if os_type == "windows" {
            return Ok(Opened::Windows(crate::windows::WindowsGuest::new(
                g,
                &device,
                disks,
                opts.readonly,
            )?));
        }
        if os_type != "linux" {
            let product = g.inspect_get_product_name(&device).unwrap_or_default();
            return Err(Error::NotLinux(format!("{os_type} ({product})")));
        }
        let mut root = describe_and_mount(&g, &device, opts.readonly)?;
        root.snapshots_ignored = snapshots_ignored;
        root.subvolume = default_subvolume(&g, &device);
        Ok(Opened::Linux(Guest {
            g,
            root,
            disks: disks.to_vec(),
        }))
    }

    /// What inspection found about the mounted root.
    pub fn root(&self) -> &RootInfo {
        &self.root
    }

    /// Every fact of the guest ([`crate::facts::read`] over this guest),
    /// with what only the appliance knows: whether the disk has boot code,
    /// and the OS as inspection names it when the guest's files do not.
    pub fn facts(&self) -> Result<crate::facts::Facts> {
        let mut f = crate::facts::read(self).map_err(Error::Files)?;
        f.bootloader.boot_code = Some(self.boot_code()?);
        if f.os.distro.is_empty() {
            f.os.distro = self.root.distro.clone();
            f.os.product = self.root.product_name.clone();
            f.os.version = format!("{}.{}", self.root.version.0, self.root.version.1);
        }
        Ok(f)
    }

    /// The host paths of the disks.
    pub fn disks(&self) -> &[PathBuf] {
        &self.disks
    }

    /// Runs `argv` inside the guest (chrooted into its root, with `/dev`,
    /// `/proc` and `/sys` bound) and returns its standard output.
    pub fn run(&self, argv: &[&str]) -> Result<String> {
        self.g
            .command(argv)
            .map_err(gerr("command", &argv.join(" ")))
    }

    /// The filesystem holding `/boot`: its own when mounted separately
    /// (RHEL's `/boot` partition beside an LVM root), else the root.
    fn boot_fs(&self) -> &str {
        self.root
            .mounts
            .iter()
            .find(|(mp, _)| mp == "/boot")
            .map_or(self.root.device.as_str(), |(_, dev)| dev.as_str())
    }

    /// The API name of the disk holding `/boot` (see [`Guest::boot_fs`]),
    /// every partition, and whether that filesystem is one of them (else a
    /// whole-disk filesystem or LVM, and the disk is the first one).
    fn root_disk(&self) -> Result<(String, Vec<String>, bool)> {
        let partitions = self
            .g
            .list_partitions()
            .map_err(gerr("list_partitions", ""))?;
        let fs = self.boot_fs();
        let is_partition = partitions.iter().any(|p| p == fs);
        let disk = if is_partition {
            self.g.part_to_dev(fs).map_err(gerr("part_to_dev", fs))?
        } else {
            let devices = self.g.list_devices().map_err(gerr("list_devices", ""))?;
            devices.into_iter().next().unwrap_or_default()
        };
        Ok((disk, partitions, is_partition))
    }

    /// Copies a guest file (`/boot/vmlinuz-…`) to a new host file.
    pub fn download(&self, path: &xen2kvm_vfs::GuestPath, host: &std::path::Path) -> Result<()> {
        let host_s = host.to_string_lossy();
        self.g
            .download(path.as_str(), &host_s)
            .map_err(gerr("download", path.as_str()))
    }

    /// The index (in the disks' order) of the disk that is, as a whole,
    /// the filesystem holding `/boot`: a filesystem given to Xen without a
    /// partition table (xen-tools' partition images, whole-disk roots),
    /// which has no place for boot code; with its API name (`/dev/sda`).
    pub fn bare_boot_disk(&self) -> Result<Option<(usize, String)>> {
        let devices = self.g.list_devices().map_err(gerr("list_devices", ""))?;
        let fs = self.boot_fs();
        Ok(devices.into_iter().enumerate().find(|(_, d)| d == fs))
    }

    /// Each filesystem's and swap area's UUID, by API device name
    /// (`/dev/sdb1`, or `/dev/sda` for a whole-disk filesystem); logical
    /// volumes and devices without a UUID are left out.
    pub fn filesystem_uuids(&self) -> Result<Vec<(String, String)>> {
        let filesystems = self
            .g
            .list_filesystems()
            .map_err(gerr("list_filesystems", ""))?;
        let mut out = Vec::new();
        for (dev, fstype) in filesystems {
            if fstype == "unknown" || !dev.starts_with("/dev/sd") {
                continue;
            }
            if let Ok(uuid) = self.g.vfs_uuid(&dev) {
                if !uuid.is_empty() {
                    out.push((dev, uuid));
                }
            }
        }
        Ok(out)
    }

    /// Whether the disk holding the root has a bootloader on it: GRUB (2 or
    /// legacy) or LILO in the MBR, or a generic MBR chain-loading an active
    /// partition whose boot sector has one. `false` for an empty code area,
    /// a generic MBR with nothing to chain-load, or a disk without a
    /// partition table (a filesystem given to Xen as a whole disk): what
    /// pygrub-only guests have.
    pub fn boot_code(&self) -> Result<bool> {
        // Only calls that cannot fail here: libguestfs prints every failed
        // call on stderr, and this crate's binding cannot silence it.
        let (dev, partitions, _) = self.root_disk()?;
        if !partitions.iter().any(|p| p.starts_with(&dev)) {
            return Ok(false);
        }
        let mbr = self
            .g
            .pread_device(&dev, 512, 0)
            .map_err(gerr("pread_device", &dev))?;
        if mbr.len() < 512 {
            return Ok(false);
        }
        if has_loader(&mbr[..440]) {
            return Ok(true);
        }
        if mbr[..440].iter().all(|&b| b == 0) {
            return Ok(false);
        }
        for entry in mbr[446..510].chunks(16) {
            let lba = u32::from_le_bytes([entry[8], entry[9], entry[10], entry[11]]);
            if entry[0] == 0x80 && lba > 0 {
                let vbr = self
                    .g
                    .pread_device(&dev, 512, i64::from(lba) * 512)
                    .map_err(gerr("pread_device", &dev))?;
                return Ok(has_loader(&vbr));
            }
        }
        Ok(false)
    }

    /// The kernel's name, inside the appliance, of the whole disk holding
    /// the root filesystem (`/dev/sdb`): what commands run in the guest (such
    /// as `grub-install`) must be given. It is not always the libguestfs API
    /// name: the appliance's own disk and the guest's are probed in either
    /// order, and libguestfs translates its API names to hide that.
    pub fn boot_disk(&self) -> Result<String> {
        let (api_disk, _, _) = self.root_disk()?;
        // The filesystem's UUID names it for the appliance's blkid.
        let fs = self.boot_fs();
        let uuid = self.g.vfs_uuid(fs).map_err(gerr("vfs_uuid", fs))?;
        if uuid.is_empty() || !uuid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Ok(api_disk);
        }
        // blkid finds the filesystem's device (a partition, a logical
        // volume, an MD array); lsblk walks from it to the disk beneath
        // (an LV's physical volume's disk), which is where boot code goes.
        let script = format!("d=$(blkid -U {uuid}) && lsblk -nslpo NAME,TYPE \"$d\" || true");
        let found = self
            .g
            .debug("sh", &[script.as_str()])
            .map_err(gerr("debug sh blkid/lsblk", &uuid))?;
        Ok(disk_of_lsblk(&found).unwrap_or(api_disk))
    }

    /// Makes sure the appliance has `/dev/disk/by-uuid/<uuid>` for every
    /// filesystem of the guest: `grub-mkconfig` writes `root=UUID=…` only
    /// when that link exists, else the appliance's `/dev/sdX` name. Links
    /// udev made are kept; missing ones point where the appliance's blkid
    /// finds the filesystem (kernel names, see [`Guest::boot_disk`]).
    pub fn ensure_uuid_links(&self) -> Result<()> {
        let filesystems = self
            .g
            .list_filesystems()
            .map_err(gerr("list_filesystems", ""))?;
        let mut script = String::from("mkdir -p /dev/disk/by-uuid");
        for (dev, fstype) in filesystems {
            if fstype == "unknown" || !dev.starts_with("/dev/") {
                continue;
            }
            let Ok(uuid) = self.g.vfs_uuid(&dev) else {
                continue;
            };
            if uuid.is_empty() || !uuid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                continue;
            }
            script.push_str(&format!(
                "; l=/dev/disk/by-uuid/{uuid}; [ -e $l ] || {{ d=$(blkid -U {uuid}) && ln -s $d $l; }}"
            ));
        }
        self.g
            .debug("sh", &[script.as_str()])
            .map_err(gerr("debug sh", &script))?;
        Ok(())
    }

    /// The appliance's process id (to stop it when the run is interrupted).
    pub fn pid(&self) -> Option<u32> {
        self.g.get_pid().ok().and_then(|p| u32::try_from(p).ok())
    }

    /// The first `len` bytes of the disk holding the root: the MBR and the
    /// gap after it, where GRUB's BIOS boot code lives.
    pub fn read_boot_area(&self, len: usize) -> Result<Vec<u8>> {
        let (dev, _, _) = self.root_disk()?;
        let size = self
            .g
            .blockdev_getsize64(&dev)
            .map_err(gerr("blockdev_getsize64", &dev))?;
        let len = len.min(usize::try_from(size).unwrap_or(len));
        let mut out = Vec::with_capacity(len);
        // pread_device returns at most a protocol message's worth at once.
        while out.len() < len {
            let chunk = (len - out.len()).min(1 << 20);
            let part = self
                .g
                .pread_device(
                    &dev,
                    i32::try_from(chunk).unwrap_or(1 << 20),
                    out.len() as i64,
                )
                .map_err(gerr("pread_device", &dev))?;
            if part.is_empty() {
                break;
            }
            out.extend_from_slice(&part);
        }
        Ok(out)
    }

    /// Writes `bytes` at the start of the disk holding the root (restoring
    /// what [`Guest::read_boot_area`] read).
    pub fn write_boot_area(&self, bytes: &[u8]) -> Result<()> {
        let (dev, _, _) = self.root_disk()?;
        let mut done = 0;
        while done < bytes.len() {
            let end = (done + (1 << 20)).min(bytes.len());
            let n = self
                .g
                .pwrite_device(&dev, &bytes[done..end], done as i64)
                .map_err(gerr("pwrite_device", &dev))?;
            let n = usize::try_from(n).unwrap_or(0);
            if n == 0 {
                return Err(Error::Disk(format!(
                    "{dev}: short write restoring the boot area"
                )));
            }
            done += n;
        }
        Ok(())
    }

    /// Unmounts everything and shuts the appliance down, so that every write
    /// is on the disk before this returns.
    pub fn close(self) -> Result<()> {
        self.g.umount_all().map_err(gerr("umount_all", ""))?;
        self.g.shutdown().map_err(gerr("shutdown", ""))
    }
}

/// A filesystem with a `/Windows/System32` directory, when inspection found
/// no root (a Windows guest whose registry it could not read).
fn windows_filesystem(g: &Handle) -> Option<String> {
    let filesystems = g.list_filesystems().ok()?;
    // Only NTFS: mounting anything else may fail, and libguestfs prints
    // every failed call on stderr.
    let mut names: Vec<&String> = filesystems
        .iter()
        .filter(|(_, t)| t.as_str() == "ntfs")
        .map(|(d, _)| d)
        .collect();
    names.sort();
    for fs in names {
        if g.mount_ro(fs, "/").is_err() {
            continue;
        }
        let found = g
            .is_dir(
                "/Windows/System32",
                IsDirOptArgs {
                    followsymlinks: Some(true),
                },
            )
            .unwrap_or(false);
        let _ = g.umount_all();
        if found {
            return Some(fs.clone());
        }
    }
    None
}

/// Refuses a damaged qcow2 image (truncated, corrupt metadata) before the
/// appliance reads garbage from it: `qemu-img check` exit 1 or 2.
fn check_qcow2(disk: &std::path::Path) -> Result<()> {
    let out = std::process::Command::new("qemu-img")
        .args(["check", "-q", "-f", "qcow2"])
        .arg(disk)
        .output()
        .map_err(|e| Error::Disk(format!("running qemu-img check on {}: {e}", disk.display())))?;
    match out.status.code() {
        Some(0) | Some(3) => Ok(()),
        _ => {
            let msg = String::from_utf8_lossy(&out.stderr);
            let first = msg
                .lines()
                .map(|l| l.trim_start_matches("qemu-img: "))
                .find(|l| !l.trim().is_empty())
                .unwrap_or("qemu-img check failed");
            Err(Error::Disk(format!(
                "{} is a damaged qcow2 image (truncated or corrupt): qemu-img check: {first}",
                disk.display()
            )))
        }
    }
}

/// The whole disk of a kernel partition name: `/dev/sdb1` → `/dev/sdb`,
/// `/dev/nvme0n1p2` → `/dev/nvme0n1`, `/dev/vda3` → `/dev/vda`.
/// The first whole disk in `lsblk -nslpo NAME,TYPE DEV`'s output (the
/// device, then what it is made of, down to disks).
fn disk_of_lsblk(out: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        match (w.next(), w.next()) {
            (Some(name), Some("disk")) if name.starts_with("/dev/") => Some(name.to_owned()),
            _ => None,
        }
    })
}

/// Whether a boot sector holds a known bootloader's code.
fn has_loader(sector: &[u8]) -> bool {
    [&b"GRUB"[..], b"LILO", b"SYSLINUX", b"EXTLINUX", b"ISOLINUX"]
        .iter()
        .any(|sig| sector.windows(sig.len()).any(|w| w == *sig))
}

/// Whether an inspection root is a snapper snapshot
/// (`btrfsvol:/dev/sda2/@/.snapshots/2/snapshot`): libguestfs reports each
/// snapshot holding an OS as a root of its own.
fn is_snapshot_root(root: &str) -> bool {
    let Some(rest) = root.strip_prefix("btrfsvol:") else {
        return false;
    };
    let Some(at) = rest.find(".snapshots/") else {
        return false;
    };
    rest[at + ".snapshots/".len()..]
        .strip_suffix("/snapshot")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The subvolume path of a `btrfsvol:DEVICE/PATH` root
/// (`@/.snapshots/2/snapshot`). libguestfs names DEVICE as the appliance's
/// kernel does (`/dev/sdb2` for what its API calls `/dev/sda2`, depending
/// on the probe order), so reports keep only the path.
fn subvolume_of(root: &str) -> String {
    let rest = root.strip_prefix("btrfsvol:").unwrap_or(root);
    let after_dev = rest
        .strip_prefix("/dev/mapper/")
        .or_else(|| rest.strip_prefix("/dev/"))
        .and_then(|r| r.split_once('/'))
        .map(|(_, path)| path);
    after_dev.unwrap_or(rest).to_owned()
}

/// The root to open, and the snapshots set aside (their subvolume paths): a guest's snapper
/// snapshots are older states of it, not other systems, so when a root
/// that is not a snapshot exists (the filesystem itself, whose default
/// subvolume is the snapshot that boots), the snapshots are ignored.
fn choose_root(roots: Vec<String>, wanted: Option<&str>) -> Result<(String, Vec<String>)> {
    if let Some(w) = wanted {
        return match roots.iter().find(|r| *r == w) {
            Some(r) => Ok((r.clone(), Vec::new())),
            None => Err(Error::UnknownRoot {
                wanted: w.to_owned(),
                found: roots,
            }),
        };
    }
    let (snapshots, mut others): (Vec<String>, Vec<String>) =
        roots.iter().cloned().partition(|r| is_snapshot_root(r));
    if others.is_empty() {
        others = snapshots.clone();
    }
    match others.len() {
        0 => Err(Error::NoOs),
        1 => {
            let root = others.remove(0);
            let ignored = snapshots
                .iter()
                .filter(|s| **s != root)
                .map(|s| subvolume_of(s))
                .collect();
            Ok((root, ignored))
        }
        _ => Err(Error::MultipleRoots(roots)),
    }
}

/// The path of a btrfs filesystem's default subvolume (what a mount
/// without `subvol=` gets), when `dev` is one and it is not the top level.
fn default_subvolume(g: &Handle, dev: &str) -> Option<String> {
    if dev.starts_with("btrfsvol:") || g.vfs_type(dev).ok()? != "btrfs" {
        return None;
    }
    let id = u64::try_from(g.btrfs_subvolume_get_default("/").ok()?).ok()?;
    g.btrfs_subvolume_list("/")
        .ok()?
        .into_iter()
        .find(|v| v.btrfssubvolume_id == id)
        .map(|v| v.btrfssubvolume_path)
}

fn describe_and_mount(g: &Handle, dev: &str, readonly: bool) -> Result<RootInfo> {
    let s =
        |r: std::result::Result<String, guestfs::Error>| r.unwrap_or_else(|_| "unknown".to_owned());
    let mut points: Vec<(String, String)> = g
        .inspect_get_mountpoints(dev)
        .map_err(gerr("inspect_get_mountpoints", dev))?
        .into_iter()
        .collect();
    // The chosen root is "/", whatever the guest's fstab says: a guest whose
    // fstab names a device that maps to another root (two guests with
    // "/dev/xvda1 /" on one disk) must not mount the other one.
    points.retain(|(p, _)| p != "/");
    points.push(("/".to_owned(), dev.to_owned()));
    // Mount parents before children: "/" then "/boot" then "/boot/efi".
    points.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
    let mut mounts = Vec::new();
    let mut mount_failures = Vec::new();
    for (point, device) in points {
        let r = if readonly {
            g.mount_ro(&device, &point)
        } else {
            g.mount(&device, &point)
        };
        match r {
            Ok(()) => mounts.push((point, device)),
            Err(e) if point == "/" => return Err(gerr("mount", &device)(e)),
            Err(e) => {
                mount_failures.push(format!("{point} ({device}): {}", gerr("mount", &device)(e)))
            }
        }
    }
    Ok(RootInfo {
        device: dev.to_owned(),
        os_type: s(g.inspect_get_type(dev)),
        distro: s(g.inspect_get_distro(dev)),
        product_name: s(g.inspect_get_product_name(dev)),
        version: (
            g.inspect_get_major_version(dev).unwrap_or(0),
            g.inspect_get_minor_version(dev).unwrap_or(0),
        ),
        arch: s(g.inspect_get_arch(dev)),
        subvolume: None,
        snapshots_ignored: Vec::new(),
        mounts,
        mount_failures,
    })
}

fn io_err(e: Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// The `S_IFMT` kinds of `st_mode`.
fn kind_of(mode: i64) -> FileKind {
    match mode & 0o170000 {
        0o100000 => FileKind::File,
        0o040000 => FileKind::Dir,
        0o120000 => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

impl Guest {
    /// The `stat` (links followed) of `p`, `None` when absent.
    fn stat_follow(&self, p: &str) -> io::Result<Option<guestfs::StatNS>> {
        // `exists` follows links: a dangling link is absent.
        if !self
            .g
            .exists(p)
            .map_err(gerr("exists", p))
            .map_err(io_err)?
        {
            return Ok(None);
        }
        self.g
            .statns(p)
            .map(Some)
            .map_err(gerr("statns", p))
            .map_err(io_err)
    }

    /// The size of the regular file `p`, `None` when absent, an error
    /// naming it for anything else.
    fn regular(&self, p: &str) -> io::Result<Option<u64>> {
        let Some(st) = self.stat_follow(p)? else {
            return Ok(None);
        };
        match kind_of(st.st_mode) {
            FileKind::File => Ok(Some(u64::try_from(st.st_size).unwrap_or(0))),
            FileKind::Dir => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("reading {p}: is a directory, not a regular file"),
            )),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("reading {p}: is a device node, FIFO or socket, not a regular file"),
            )),
        }
    }
}

impl GuestFs for Guest {
    fn read(&self, path: &GuestPath) -> io::Result<Option<Vec<u8>>> {
        let p = path.as_str();
        if self.regular(p)?.is_none() {
            return Ok(None);
        }
        self.g
            .read_file(p)
            .map(Some)
            .map_err(gerr("read_file", p))
            .map_err(io_err)
    }

    fn file_size(&self, path: &GuestPath) -> io::Result<Option<u64>> {
        self.regular(path.as_str())
    }

    fn metadata(&self, path: &GuestPath) -> io::Result<Option<Metadata>> {
        let p = path.as_str();
        if !self.exists(path)? {
            return Ok(None);
        }
        let st = self
            .g
            .lstatns(p)
            .map_err(gerr("lstatns", p))
            .map_err(io_err)?;
        let n = |v: i64| u32::try_from(v).unwrap_or(0);
        Ok(Some(Metadata {
            kind: kind_of(st.st_mode),
            size: u64::try_from(st.st_size).unwrap_or(0),
            mode: n(st.st_mode & 0o7777),
            uid: n(st.st_uid),
            gid: n(st.st_gid),
        }))
    }

    fn set_metadata(&self, path: &GuestPath, mode: u32, uid: u32, gid: u32) -> io::Result<()> {
        let p = path.as_str();
        let i = |v: u32| i32::try_from(v).unwrap_or(0);
        self.g
            .chown(i(uid), i(gid), p)
            .map_err(gerr("chown", p))
            .map_err(io_err)?;
        self.g
            .chmod(i(mode), p)
            .map_err(gerr("chmod", p))
            .map_err(io_err)
    }

    fn sha256(&self, path: &GuestPath) -> io::Result<Option<String>> {
        let p = path.as_str();
        if self.regular(p)?.is_none() {
            return Ok(None);
        }
        self.g
            .checksum("sha256", p)
            .map(Some)
            .map_err(gerr("checksum", p))
            .map_err(io_err)
    }

    fn mkdir_all(&self, dir: &GuestPath) -> io::Result<()> {
        self.g
            .mkdir_p(dir.as_str())
            .map_err(gerr("mkdir_p", dir.as_str()))
            .map_err(io_err)
    }

    fn remove_all(&self, path: &GuestPath) -> io::Result<bool> {
        if !self.exists(path)? {
            return Ok(false);
        }
        self.g
            .rm_rf(path.as_str())
            .map_err(gerr("rm_rf", path.as_str()))
            .map_err(io_err)?;
        Ok(true)
    }

    fn sync(&self) -> io::Result<()> {
        self.g.sync().map_err(gerr("sync", "")).map_err(io_err)
    }

    fn scan(&self, dir: &GuestPath) -> io::Result<Vec<Entry>> {
        let d = dir.as_str();
        if self.metadata(dir)?.map(|m| m.kind) != Some(FileKind::Dir) {
            return Ok(Vec::new());
        }
        // A few calls for the whole tree: the names, then per directory
        // the lstats and the link targets, then every hash at once
        // (sha256sum in the appliance, into a host file).
        let names: Vec<String> = self
            .g
            .find(d)
            .map_err(gerr("find", d))
            .map_err(io_err)?
            .into_iter()
            .map(|n| n.trim_start_matches('/').to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        let mut by_dir: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for n in &names {
            let (parent, base) = n.rsplit_once('/').unwrap_or(("", n.as_str()));
            by_dir.entry(parent).or_default().push(base);
        }
        let mut stat_of: std::collections::HashMap<String, guestfs::StatNS> = Default::default();
        let mut target_of: std::collections::HashMap<String, String> = Default::default();
        for (parent, bases) in &by_dir {
            let full = if parent.is_empty() {
                d.to_owned()
            } else {
                format!("{}/{parent}", d.trim_end_matches('/'))
            };
            let stats = self
                .g
                .lstatnslist(&full, bases)
                .map_err(gerr("lstatnslist", &full))
                .map_err(io_err)?;
            let rel = |b: &str| {
                if parent.is_empty() {
                    b.to_owned()
                } else {
                    format!("{parent}/{b}")
                }
            };
            let links: Vec<&str> = bases
                .iter()
                .zip(&stats)
                .filter(|(_, st)| kind_of(st.st_mode) == FileKind::Symlink)
                .map(|(b, _)| *b)
                .collect();
            if !links.is_empty() {
                let targets = self
                    .g
                    .readlinklist(&full, &links)
                    .map_err(gerr("readlinklist", &full))
                    .map_err(io_err)?;
                for (b, t) in links.iter().zip(targets) {
                    target_of.insert(rel(b), t);
                }
            }
            for (b, st) in bases.iter().zip(stats) {
                stat_of.insert(rel(b), st);
            }
        }
        // The guest's root is /sysroot in the appliance. (checksums_out
        // would do, but names each file by its base name only.)
        let quoted = format!("'{}'", d.replace('\'', "'\\''"));
        let script = format!("cd /sysroot{quoted} && find . -type f -exec sha256sum {{}} +");
        let sums = self
            .g
            .debug("sh", &[script.as_str()])
            .map_err(gerr("debug sh sha256sum", d))
            .map_err(io_err)?;
        let mut hash_of: std::collections::HashMap<String, String> = Default::default();
        for line in sums.lines() {
            // "HASH  ./name"; names sha256sum escapes (a leading '\') are
            // hashed one by one below.
            if line.starts_with('\\') {
                continue;
            }
            if let Some((h, name)) = line.split_once("  ") {
                hash_of.insert(name.trim_start_matches("./").to_owned(), h.to_owned());
            }
        }
        let n = |v: i64| u32::try_from(v).unwrap_or(0);
        let mut out = Vec::new();
        for name in &names {
            let Some(st) = stat_of.get(name) else {
                continue;
            };
            let Ok(path) = dir.join(name) else { continue };
            let kind = kind_of(st.st_mode);
            let sha256 = match kind {
                FileKind::File => match hash_of.remove(name.as_str()) {
                    Some(h) => Some(h),
                    None => self.sha256(&path)?,
                },
                _ => None,
            };
            out.push(Entry {
                target: target_of.remove(name.as_str()),
                path,
                meta: Metadata {
                    kind,
                    size: u64::try_from(st.st_size).unwrap_or(0),
                    mode: n(st.st_mode & 0o7777),
                    uid: n(st.st_uid),
                    gid: n(st.st_gid),
                },
                sha256,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn write(&self, path: &GuestPath, content: &[u8]) -> io::Result<()> {
        self.g
            .write(path.as_str(), content)
            .map_err(gerr("write", path.as_str()))
            .map_err(io_err)
    }

    fn list(&self, dir: &GuestPath) -> io::Result<Option<Vec<String>>> {
        let p = dir.as_str();
        if !self
            .g
            .is_dir(
                p,
                IsDirOptArgs {
                    followsymlinks: Some(true),
                },
            )
            .map_err(gerr("is_dir", p))
            .map_err(io_err)?
        {
            return Ok(None);
        }
        let mut names = self.g.ls(p).map_err(gerr("ls", p)).map_err(io_err)?;
        names.sort();
        Ok(Some(names))
    }

    fn read_link(&self, path: &GuestPath) -> io::Result<Option<String>> {
        let p = path.as_str();
        if !self
            .g
            .is_symlink(p)
            .map_err(gerr("is_symlink", p))
            .map_err(io_err)?
        {
            return Ok(None);
        }
        self.g
            .readlink(p)
            .map(Some)
            .map_err(gerr("readlink", p))
            .map_err(io_err)
    }

    fn symlink(&self, target: &str, link: &GuestPath) -> io::Result<()> {
        self.g
            .ln_s(target, link.as_str())
            .map_err(gerr("ln_s", link.as_str()))
            .map_err(io_err)
    }

    fn remove(&self, path: &GuestPath) -> io::Result<bool> {
        if !self.exists(path)? {
            return Ok(false);
        }
        self.g
            .rm(path.as_str())
            .map_err(gerr("rm", path.as_str()))
            .map_err(io_err)?;
        Ok(true)
    }

    fn copy(&self, from: &GuestPath, to: &GuestPath) -> io::Result<bool> {
        // In the appliance: `write` cannot carry more than a few MB (an
        // initrd is tens of MB).
        if !self.exists(from)? {
            return Ok(false);
        }
        self.g
            .cp_a(from.as_str(), to.as_str())
            .map_err(gerr("cp_a", from.as_str()))
            .map_err(io_err)?;
        Ok(true)
    }

    fn exists(&self, path: &GuestPath) -> io::Result<bool> {
        let p = path.as_str();
        Ok(self
            .g
            .is_symlink(p)
            .map_err(gerr("is_symlink", p))
            .map_err(io_err)?
            || self
                .g
                .exists(p)
                .map_err(gerr("exists", p))
                .map_err(io_err)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_under_a_filesystem() {
        let lv = "/dev/mapper/VolGroup-lv_root lvm\n/dev/sdb2                    part\n/dev/sdb                     disk\n";
        assert_eq!(disk_of_lsblk(lv).as_deref(), Some("/dev/sdb"));
        assert_eq!(
            disk_of_lsblk("/dev/sda1 part\n/dev/sda disk\n").as_deref(),
            Some("/dev/sda")
        );
        // A filesystem on the whole disk (a Xen partition image).
        assert_eq!(
            disk_of_lsblk("/dev/sdb disk\n").as_deref(),
            Some("/dev/sdb")
        );
        assert_eq!(disk_of_lsblk(""), None);
        assert_eq!(disk_of_lsblk("garbage\n"), None);
    }

    #[test]
    fn root_choice() {
        let one = |r: Result<(String, Vec<String>)>| r.unwrap().0;
        assert!(matches!(choose_root(vec![], None), Err(Error::NoOs)));
        assert_eq!(
            one(choose_root(vec!["/dev/sda1".into()], None)),
            "/dev/sda1"
        );
        assert!(matches!(
            choose_root(vec!["/dev/sda1".into(), "/dev/sdb1".into()], None),
            Err(Error::MultipleRoots(_))
        ));
        assert_eq!(
            one(choose_root(
                vec!["/dev/sda1".into(), "/dev/sdb1".into()],
                Some("/dev/sdb1")
            )),
            "/dev/sdb1"
        );
        assert!(matches!(
            choose_root(vec!["/dev/sda1".into()], Some("/dev/sdz")),
            Err(Error::UnknownRoot { .. })
        ));
        // snapper: the filesystem (its default subvolume) and two
        // snapshots that libguestfs also calls roots.
        let snap2 = "btrfsvol:/dev/sda2/@/.snapshots/2/snapshot".to_owned();
        let snap3 = "btrfsvol:/dev/sda2/@/.snapshots/3/snapshot".to_owned();
        let (root, ignored) =
            choose_root(vec!["/dev/sda2".into(), snap2.clone(), snap3.clone()], None).unwrap();
        assert_eq!(root, "/dev/sda2");
        assert_eq!(
            ignored,
            ["@/.snapshots/2/snapshot", "@/.snapshots/3/snapshot"]
        );
        assert_eq!(
            subvolume_of("btrfsvol:/dev/mapper/vg-srv/.snapshots/4/snapshot"),
            ".snapshots/4/snapshot"
        );
        // Asked for by name, a snapshot is the root.
        assert_eq!(
            one(choose_root(
                vec!["/dev/sda2".into(), snap2.clone()],
                Some(&snap2)
            )),
            snap2
        );
        // Only snapshots: one is the root; several are several roots.
        assert_eq!(one(choose_root(vec![snap3.clone()], None)), snap3);
        assert!(matches!(
            choose_root(vec![snap2.clone(), snap3.clone()], None),
            Err(Error::MultipleRoots(_))
        ));
        // Two systems and a snapshot are still two systems.
        assert!(matches!(
            choose_root(vec!["/dev/sda1".into(), "/dev/sdb2".into(), snap2], None),
            Err(Error::MultipleRoots(_))
        ));
        assert!(!is_snapshot_root("btrfsvol:/dev/sda2/@/home"));
        assert!(!is_snapshot_root("btrfsvol:/dev/sda2/@/.snapshots"));
        assert!(!is_snapshot_root("/dev/sda2"));
        assert!(is_snapshot_root(
            "btrfsvol:/dev/sda2/.snapshots/12/snapshot"
        ));
    }
}
