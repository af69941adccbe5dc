//! Runs one boot in QEMU and watches its serial console until a verdict.
//!
//! The image is attached with `snapshot=on`: every guest write goes to a
//! temporary overlay that QEMU throws away, so the image is never written.
//! The machine has the devices a KVM domain has (virtio disk and NIC, a
//! standard VGA adapter with no display), with the firmware's and GRUB's
//! BIOS console mirrored on the serial port, which is what is judged.
//! The console is a log file that is read as it grows.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::accel::Accel;
use crate::console::{self, End, Failure, Verdict};
use crate::network::{self, Network};

/// What to boot: the disk's own boot code, or a kernel given to QEMU.
#[derive(Debug, Clone)]
pub enum Source {
    /// Boot from the disk, through the firmware and the guest's bootloader.
    Disk,
    /// QEMU direct kernel boot (the disk still attached as virtio-blk).
    Kernel {
        /// Host path of the kernel.
        kernel: PathBuf,
        /// Host path of the initrd.
        initrd: Option<PathBuf>,
        /// The kernel command line.
        cmdline: String,
    },
}

/// One boot's settings.
#[derive(Debug, Clone)]
pub struct Boot<'a> {
    /// The QEMU binary.
    pub qemu: &'a Path,
    /// The disk image (never written).
    pub image: &'a Path,
    /// Its format (`raw`, `qcow2`, …).
    pub format: &'a str,
    /// More disks of the same guest (path, format), attached after it in
    /// this order (a guest's second disk is its `vdb`); never written.
    pub extra_disks: &'a [(PathBuf, String)],
    /// What to boot.
    pub source: Source,
    /// The accelerator.
    pub accel: Accel,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// The text that means "booted".
    pub marker: &'a str,
    /// Overall time limit.
    pub timeout: Duration,
    /// Stop early when the console stays silent this long.
    pub silence: Duration,
    /// Where the serial console is written.
    pub log: &'a Path,
    /// The NIC's MAC address (the one the guest's domain gives it).
    pub mac: &'a str,
    /// Where the NIC's frames are captured (pcap), when the network is
    /// judged: after the guest booted, its frames are watched for up to
    /// `network_wait`.
    pub dump: Option<&'a Path>,
    /// How long to watch for the guest's frames after it booted.
    pub network_wait: Duration,
}

/// How one boot ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Wall-clock seconds from start to verdict.
    pub seconds: f64,
    /// The QEMU command line that ran.
    pub command: Vec<String>,
    /// What the capture showed of the NIC, when it was judged (a guest
    /// that booted, with a capture).
    pub network: Option<Network>,
}

impl Boot<'_> {
    /// The QEMU arguments for this boot.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-nodefaults".into(),
            "-display".into(),
            "none".into(),
            "-monitor".into(),
            "none".into(),
            // Firmware and GRUB's BIOS console go to the serial port too.
            "-machine".into(),
            "pc,graphics=off".into(),
            // The video adapter a KVM domain has: without one, GRUB's
            // default graphical terminal (Debian's gfxterm) stops after
            // "Welcome to GRUB!" and a guest that boots on KVM looks dead.
            "-device".into(),
            "VGA".into(),
            "-accel".into(),
            self.accel.name().into(),
            "-m".into(),
            self.memory_mib.to_string(),
            "-smp".into(),
            self.cpus.to_string(),
            "-no-reboot".into(),
        ];
        if self.accel == Accel::Kvm {
            a.extend(["-cpu".into(), "host".into()]);
        }
        let img = self.image.display().to_string().replace(',', ",,");
        a.extend([
            "-drive".into(),
            format!(
                "file={img},format={},if=none,id=disk0,snapshot=on",
                self.format
            ),
            "-device".into(),
            "virtio-blk-pci,drive=disk0".into(),
        ]);
        for (i, (path, format)) in self.extra_disks.iter().enumerate() {
            let p = path.display().to_string().replace(',', ",,");
            let id = i + 1;
            a.extend([
                "-drive".into(),
                format!("file={p},format={format},if=none,id=disk{id},snapshot=on"),
                "-device".into(),
                format!("virtio-blk-pci,drive=disk{id}"),
            ]);
        }
        a.extend([
            "-netdev".into(),
            "user,id=net0".into(),
            "-device".into(),
            format!("virtio-net-pci,netdev=net0,romfile=,mac={}", self.mac),
            "-serial".into(),
            format!("file:{}", self.log.display()),
        ]);
        if let Some(d) = self.dump {
            a.extend([
                "-object".into(),
                format!(
                    "filter-dump,id=dump0,netdev=net0,file={}",
                    d.display().to_string().replace(',', ",,")
                ),
            ]);
        }
        if let Source::Kernel {
            kernel,
            initrd,
            cmdline,
        } = &self.source
        {
            a.extend(["-kernel".into(), kernel.display().to_string()]);
            if let Some(i) = initrd {
                a.extend(["-initrd".into(), i.display().to_string()]);
            }
            a.extend(["-append".into(), cmdline.clone()]);
        }
        a
    }

    /// Boots and watches the console until a verdict, the silence limit or
    /// the time limit. QEMU failing to start is an error, not a verdict.
    pub fn run(&self) -> io::Result<Outcome> {
        let args = self.args();
        let _ = fs::remove_file(self.log);
        let stderr_path = self.log.with_extension("qemu-stderr");
        let stderr = fs::File::create(&stderr_path).map_err(|e| {
            io::Error::new(e.kind(), format!("creating {}: {e}", stderr_path.display()))
        })?;
        let start = Instant::now();
        let child = Command::new(self.qemu)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("starting {}: {e}", self.qemu.display()))
            })?;
        let mut child = KillOnDrop(child);
        let mut seen = 0usize;
        let mut last_growth = Instant::now();
        let mut text = String::new();
        let verdict = loop {
            thread::sleep(Duration::from_millis(250));
            let bytes = fs::read(self.log).unwrap_or_default();
            if bytes.len() != seen {
                seen = bytes.len();
                last_growth = Instant::now();
                text = String::from_utf8_lossy(&bytes).into_owned();
                if let Some(v) = console::scan(&text, self.marker) {
                    break v;
                }
            }
            if let Some(status) = child.0.try_wait()? {
                let err = fs::read_to_string(&stderr_path).unwrap_or_default();
                if !status.success() && seen == 0 {
                    return Err(io::Error::other(format!(
                        "QEMU failed ({status}): {}",
                        err.lines()
                            .find(|l| !l.contains("warning:"))
                            .unwrap_or(err.trim())
                    )));
                }
                let last = console::last_line(&text).unwrap_or_default();
                break Verdict::Failed(Failure::GuestStopped { last_line: last });
            }
            if last_growth.elapsed() >= self.silence {
                break Verdict::Failed(console::at_end(
                    &text,
                    End::Silence(self.silence.as_secs()),
                ));
            }
            if start.elapsed() >= self.timeout {
                break Verdict::Failed(console::at_end(
                    &text,
                    End::Timeout(self.timeout.as_secs()),
                ));
            }
        };
        let seconds = start.elapsed().as_secs_f64();
        let network = match (&verdict, self.dump) {
            (Verdict::Booted(_), Some(dump)) => Some(self.watch_network(dump, &mut child.0)?),
            _ => None,
        };
        drop(child);
        let _ = fs::remove_file(&stderr_path);
        Ok(Outcome {
            verdict,
            seconds,
            command: args,
            network,
        })
    }

    /// Watches the capture of a booted guest until it asked for an address
    /// by DHCP, or `network_wait` passed (its frames so far decide), or
    /// QEMU ended.
    fn watch_network(&self, dump: &Path, child: &mut Child) -> io::Result<Network> {
        let mac = network::parse_mac(self.mac).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{:?} is not a MAC address", self.mac),
            )
        })?;
        let t = Instant::now();
        loop {
            let bytes = fs::read(dump).unwrap_or_default();
            let seen = network::judge(&bytes, &mac);
            let done = t.elapsed() >= self.network_wait || child.try_wait()?.is_some();
            match seen {
                Some(n @ Network::Up { dhcp: true, .. }) => return Ok(n),
                Some(n) if done => return Ok(n),
                None if done => {
                    return Ok(Network::Down {
                        waited: t.elapsed().as_secs(),
                    })
                }
                _ => thread::sleep(Duration::from_millis(500)),
            }
        }
    }
}

/// Kills and reaps QEMU however the watch loop ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The image format from its first bytes: `qcow2`, or `raw` for anything
/// that has no known magic (QEMU must never be left to guess).
pub fn detect_format(image: &Path) -> io::Result<&'static str> {
    use std::io::Read;
    let mut f = fs::File::open(image)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", image.display())))?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic)?;
    Ok(match &magic[..n] {
        b"QFI\xfb" => "qcow2",
        b"KDMV" => "vmdk",
        b"<<< " => "vdi",
        _ => "raw",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guests_disks_are_attached_in_order_on_snapshots() {
        let extra = [
            (PathBuf::from("/d/b,x.img"), "raw".to_owned()),
            (PathBuf::from("/d/c.qcow2"), "qcow2".to_owned()),
        ];
        let b = Boot {
            qemu: Path::new("qemu-system-x86_64"),
            image: Path::new("/d/a.img"),
            format: "raw",
            extra_disks: &extra,
            source: Source::Disk,
            accel: Accel::Tcg,
            memory_mib: 512,
            cpus: 1,
            marker: "OK",
            timeout: Duration::from_secs(1),
            silence: Duration::from_secs(1),
            log: Path::new("/tmp/log"),
            mac: "52:54:00:12:34:56",
            dump: Some(Path::new("/tmp/n,et.pcap")),
            network_wait: Duration::from_secs(1),
        };
        let a = b.args().join(" ");
        let d0 = a
            .find("file=/d/a.img,format=raw,if=none,id=disk0,snapshot=on")
            .unwrap();
        let d1 = a
            .find("file=/d/b,,x.img,format=raw,if=none,id=disk1,snapshot=on -device virtio-blk-pci,drive=disk1")
            .unwrap();
        let d2 = a
            .find("file=/d/c.qcow2,format=qcow2,if=none,id=disk2,snapshot=on -device virtio-blk-pci,drive=disk2")
            .unwrap();
        assert!(d0 < d1 && d1 < d2, "{a}");
        assert!(
            a.contains("virtio-net-pci,netdev=net0,romfile=,mac=52:54:00:12:34:56"),
            "{a}"
        );
        assert!(
            a.contains("-object filter-dump,id=dump0,netdev=net0,file=/tmp/n,,et.pcap"),
            "{a}"
        );
    }
}
