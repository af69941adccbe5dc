//! Whether the booted guest brought its NIC up: QEMU's `filter-dump` writes
//! every frame of the user-mode NIC to a pcap file; this module reads it
//! and judges the frames the guest sent from its MAC (a DHCP request is the
//! best evidence, any frame will do).
//!
//! Pure: bytes in, a verdict out. The pcap file is untrusted input (the
//! guest chooses what it sends): lengths are checked, never trusted.

use std::fmt;

/// What the capture shows about the guest's NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// The guest sent frames from its MAC.
    Up {
        /// It asked for an address by DHCP.
        dhcp: bool,
        /// Frames it sent.
        frames: usize,
        /// What the first frame (or the first DHCP request) was.
        evidence: String,
    },
    /// Nothing came from the guest's MAC.
    Down {
        /// Seconds the capture was watched after the guest booted.
        waited: u64,
    },
}

impl Network {
    /// Whether the NIC came up.
    pub fn is_up(&self) -> bool {
        matches!(self, Network::Up { .. })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Network::Up {
                dhcp,
                frames,
                evidence,
            } => write!(
                f,
                "up: {frames} frame(s) from the guest's MAC{}; {evidence}",
                if *dhcp { ", a DHCP request among them" } else { "" }
            ),
            Network::Down { waited } => write!(
                f,
                "down: no frame from the guest's MAC (watched {waited}s after it booted): its network configuration did not bring the NIC up"
            ),
        }
    }
}

/// One captured frame: its bytes (as captured, maybe cut short).
fn frames(pcap: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if pcap.len() < 24 {
        return out;
    }
    let little = match pcap[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return out,
    };
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut at = 24usize;
    while at + 16 <= pcap.len() {
        let incl = u32_at(&pcap[at + 8..at + 12]) as usize;
        let start = at + 16;
        let Some(end) = start.checked_add(incl).filter(|e| *e <= pcap.len()) else {
            break;
        };
        out.push(&pcap[start..end]);
        at = end;
    }
    out
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// What a frame the guest sent is, in a few words.
fn describe(frame: &[u8]) -> (bool, String) {
    if frame.len() < 14 {
        return (false, "a short frame".into());
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let payload = &frame[14..];
    match ethertype {
        0x0800 if payload.len() >= 20 => {
            let ihl = usize::from(payload[0] & 0x0f) * 4;
            let proto = payload[9];
            if proto == 17 && payload.len() >= ihl + 8 {
                let udp = &payload[ihl..];
                let sport = u16::from_be_bytes([udp[0], udp[1]]);
                let dport = u16::from_be_bytes([udp[2], udp[3]]);
                if sport == 68 && dport == 67 {
                    return (true, "a DHCP request (UDP 68 -> 67)".into());
                }
                return (false, format!("an IPv4 UDP packet to port {dport}"));
            }
            (false, format!("an IPv4 packet (protocol {proto})"))
        }
        0x0806 => (false, "an ARP packet".into()),
        0x86dd => (false, "an IPv6 packet".into()),
        t => (false, format!("a frame of ethertype {t:#06x}")),
    }
}

/// Judges a capture: the frames whose source is `mac`. `None` when nothing
/// came from it (the caller knows how long it watched).
pub fn judge(pcap: &[u8], mac: &[u8; 6]) -> Option<Network> {
    let mut sent = 0usize;
    let mut first = None;
    let mut dhcp = None;
    for f in frames(pcap) {
        if f.len() < 12 || &f[6..12] != mac {
            continue;
        }
        sent += 1;
        let (is_dhcp, what) = describe(f);
        if first.is_none() {
            first = Some(what.clone());
        }
        if is_dhcp && dhcp.is_none() {
            dhcp = Some(what);
        }
    }
    if sent == 0 {
        return None;
    }
    Some(Network::Up {
        dhcp: dhcp.is_some(),
        frames: sent,
        evidence: format!("first: {}", dhcp.or(first).unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x00, 0x16, 0x3e, 0x0a, 0x0b, 0x0c];

    fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        v.extend([0u8; 8]);
        v.extend(65535u32.to_le_bytes());
        v.extend(1u32.to_le_bytes());
        for f in frames {
            v.extend([0u8; 8]);
            v.extend((f.len() as u32).to_le_bytes());
            v.extend((f.len() as u32).to_le_bytes());
            v.extend(f);
        }
        v
    }

    fn frame(src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend(src);
        f.extend(ethertype.to_be_bytes());
        f.extend(payload);
        f
    }

    fn dhcp_discover() -> Vec<u8> {
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255,
        ];
        ip.extend(68u16.to_be_bytes());
        ip.extend(67u16.to_be_bytes());
        ip.extend([0, 8, 0, 0]);
        ip
    }

    #[test]
    fn a_dhcp_request_from_the_mac_is_up() {
        let other = frame([0x52, 0x55, 0x0a, 0, 2, 2], 0x0806, &[0; 28]);
        let ra = frame(MAC, 0x86dd, &[0; 40]);
        let d = frame(MAC, 0x0800, &dhcp_discover());
        let n = judge(&pcap(&[other.clone(), ra, d]), &MAC).unwrap();
        assert_eq!(
            n,
            Network::Up {
                dhcp: true,
                frames: 2,
                evidence: "first: a DHCP request (UDP 68 -> 67)".into()
            }
        );
        assert!(judge(&pcap(&[other]), &MAC).is_none());
    }

    #[test]
    fn hostile_captures_are_judged_not_trusted() {
        assert!(judge(&[], &MAC).is_none());
        assert!(judge(b"not a pcap file at all, but long enough", &MAC).is_none());
        // A record claiming more bytes than the file has.
        let mut p = pcap(&[frame(MAC, 0x0806, &[0; 28])]);
        p[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(judge(&p, &MAC).is_none());
        // A frame too short for an IPv4 header still counts as a frame.
        let n = judge(&pcap(&[frame(MAC, 0x0800, &[0x45])]), &MAC).unwrap();
        assert!(n.is_up());
        assert_eq!(parse_mac("00:16:3e:0a:0b:0c"), Some(MAC));
        assert_eq!(parse_mac("00:16:3e:0a:0b"), None);
        assert_eq!(parse_mac("00:16:3e:0a:0b:0c:0d"), None);
    }
}
