//! Ethernet frames as the engine moves them: each preceded by the 10-byte `virtio_net_hdr`
//! that AF_PACKET adds with `PACKET_VNET_HDR`. The header carries what the kernel would
//! otherwise have done in hardware — a checksum still to compute (`NEEDS_CSUM`, from
//! `csum_start` to the end, stored at `csum_start + csum_offset`) and segmentation offload
//! (`gso_type`, `gso_size`: one 64 KiB TCP frame stands for ~45 packets on the wire) — so a
//! large segment crosses the engine as one frame and the receiving kernel finishes the job.
//!
//! What the model needs from a frame lives here: its length on the wire (every segment's
//! headers counted), a copy, and corruption the way netem does it: a segmentation-offload
//! frame is first cut into its packets (TCP and UDP, IPv4 and IPv6), the checksum of the
//! chosen packet is completed, then one random bit is flipped, so receivers see a bad
//! checksum rather than silently wrong data.
//!
//! Pure: bytes in, bytes out.

use super::model::Packet;
use super::rng::Rng;

/// `sizeof(struct virtio_net_hdr)`.
pub const VNET_HDR_LEN: usize = 10;

pub const F_NEEDS_CSUM: u8 = 1;
pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_UDP: u8 = 3;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;
pub const GSO_ECN: u8 = 0x80;

const ETH_HLEN: usize = 14;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// One frame: the virtio-net header, then the Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub bytes: Vec<u8>,
}

/// The fields of a `virtio_net_hdr` (little-endian on the wire, as AF_PACKET writes it on
/// every little-endian machine).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(bytes: &[u8]) -> Option<VnetHdr> {
        let b = bytes.get(..VNET_HDR_LEN)?;
        let word = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: word(2),
            gso_size: word(4),
            csum_start: word(6),
            csum_offset: word(8),
        })
    }

    pub fn write(&self, out: &mut [u8]) {
        out[0] = self.flags;
        out[1] = self.gso_type;
        out[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
    }
}

/// Where the headers of an IP packet in an Ethernet frame are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Offset of the IP header in the frame.
    l3: usize,
    ipv4: bool,
    /// Offset of the TCP/UDP header.
    l4: usize,
    tcp: bool,
    /// Offset of the payload (end of all headers).
    payload: usize,
}

fn layout(frame: &[u8]) -> Option<Layout> {
    let mut l3 = ETH_HLEN;
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    // VLAN tags (802.1Q, 802.1ad).
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = u16::from_be_bytes([*frame.get(l3 + 2)?, *frame.get(l3 + 3)?]);
        l3 += 4;
    }
    let (ipv4, protocol, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(frame.get(l3)? & 0x0f) * 4;
            (ihl >= 20).then_some(())?;
            (true, *frame.get(l3 + 9)?, l3 + ihl)
        }
        0x86dd => (false, *frame.get(l3 + 6)?, l3 + 40),
        _ => return None,
    };
    let (tcp, payload) = match protocol {
        IPPROTO_TCP => {
            let offset = usize::from(frame.get(l4 + 12)? >> 4) * 4;
            (offset >= 20).then_some(())?;
            (true, l4 + offset)
        }
        IPPROTO_UDP => (false, l4 + 8),
        _ => return None,
    };
    (payload <= frame.len()).then_some(Layout {
        l3,
        ipv4,
        l4,
        tcp,
        payload,
    })
}

impl Frame {
    pub fn new(bytes: Vec<u8>) -> Frame {
        Frame { bytes }
    }

    pub fn header(&self) -> VnetHdr {
        VnetHdr::parse(&self.bytes).unwrap_or_default()
    }

    /// The Ethernet frame, without the virtio-net header.
    pub fn ethernet(&self) -> &[u8] {
        self.bytes.get(VNET_HDR_LEN..).unwrap_or(&[])
    }

    fn gso(&self) -> Option<(u8, u16)> {
        let h = self.header();
        let kind = h.gso_type & !GSO_ECN;
        (kind != GSO_NONE && h.gso_size > 0).then_some((kind, h.gso_size))
    }

    /// The packets this frame stands for on the wire.
    pub fn segments(&self) -> u64 {
        match (self.gso(), layout(self.ethernet())) {
            (Some((_, size)), Some(l)) => {
                let payload = self.ethernet().len() - l.payload;
                (payload as u64).div_ceil(u64::from(size)).max(1)
            }
            _ => 1,
        }
    }

    /// Completes a checksum left to the hardware (netem's `skb_checksum_help`).
    pub fn complete_checksum(&mut self) {
        let h = self.header();
        if h.flags & F_NEEDS_CSUM == 0 {
            return;
        }
        let start = VNET_HDR_LEN + usize::from(h.csum_start);
        let at = start + usize::from(h.csum_offset);
        if at + 2 > self.bytes.len() {
            return;
        }
        // The field holds the pseudo-header's sum; the sum over the rest completes it.
        let sum = fold(sum16(&self.bytes[start..], 0));
        let value = match !sum {
            0 => 0xffff,
            v => v,
        };
        self.bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
        let mut h = h;
        h.flags &= !F_NEEDS_CSUM;
        if self.segments() <= 1 {
            // A one-packet "segmentation" frame: nothing left to segment either.
            h.gso_type = GSO_NONE;
            h.gso_size = 0;
        }
        h.write(&mut self.bytes);
    }

    /// Cuts a segmentation-offload TCP or UDP frame into its packets, each with complete
    /// headers and checksums; `None` for frames it does not understand.
    fn split(&self) -> Option<Vec<Frame>> {
        let (kind, size) = self.gso()?;
        let eth = self.ethernet();
        let l = layout(eth)?;
        if !matches!(kind, GSO_TCPV4 | GSO_TCPV6 | GSO_UDP_L4) || (kind == GSO_UDP_L4) == l.tcp {
            return None;
        }
        let size = usize::from(size);
        let payload = &eth[l.payload..];
        let chunks: Vec<&[u8]> = payload.chunks(size).collect();
        let count = chunks.len();
        let mut out = Vec::with_capacity(count);
        let mut offset = 0u32;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut bytes = vec![0u8; VNET_HDR_LEN];
            bytes.extend_from_slice(&eth[..l.payload]);
            bytes.extend_from_slice(chunk);
            let f = &mut bytes[VNET_HDR_LEN..];
            let l4_len = f.len() - l.l4;
            if l.ipv4 {
                let total = (f.len() - l.l3) as u16;
                f[l.l3 + 2..l.l3 + 4].copy_from_slice(&total.to_be_bytes());
                let id = u16::from_be_bytes([f[l.l3 + 4], f[l.l3 + 5]]).wrapping_add(i as u16);
                f[l.l3 + 4..l.l3 + 6].copy_from_slice(&id.to_be_bytes());
                f[l.l3 + 10..l.l3 + 12].fill(0);
                let sum = !fold(sum16(&f[l.l3..l.l4], 0));
                f[l.l3 + 10..l.l3 + 12].copy_from_slice(&sum.to_be_bytes());
            } else {
                f[l.l3 + 4..l.l3 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            }
            let check_at = if l.tcp {
                let seq = u32::from_be_bytes(f[l.l4 + 4..l.l4 + 8].try_into().unwrap())
                    .wrapping_add(offset);
                f[l.l4 + 4..l.l4 + 8].copy_from_slice(&seq.to_be_bytes());
                let flags = &mut f[l.l4 + 13];
                if i + 1 < count {
                    *flags &= !(0x01 | 0x08); // FIN, PSH: last segment only
                }
                if i > 0 {
                    *flags &= !0x80; // CWR: first segment only
                }
                l.l4 + 16
            } else {
                f[l.l4 + 4..l.l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                l.l4 + 6
            };
            f[check_at..check_at + 2].fill(0);
            let protocol = if l.tcp { IPPROTO_TCP } else { IPPROTO_UDP };
            let pseudo = pseudo_header_sum(f, &l, protocol, l4_len);
            let mut sum = !fold(sum16(&f[l.l4..], pseudo));
            if !l.tcp && sum == 0 {
                sum = 0xffff;
            }
            f[check_at..check_at + 2].copy_from_slice(&sum.to_be_bytes());
            offset = offset.wrapping_add(chunk.len() as u32);
            out.push(Frame { bytes });
        }
        Some(out)
    }
}

/// The one's complement sum of the pseudo-header (addresses, protocol, length).
fn pseudo_header_sum(f: &[u8], l: &Layout, protocol: u8, l4_len: usize) -> u32 {
    let addresses = if l.ipv4 {
        &f[l.l3 + 12..l.l3 + 20]
    } else {
        &f[l.l3 + 8..l.l3 + 40]
    };
    let mut sum = sum16(addresses, 0);
    sum += u32::from(protocol);
    sum += (l4_len as u32) >> 16;
    sum += (l4_len as u32) & 0xffff;
    sum
}

/// Adds `bytes` as big-endian 16-bit words to `sum` (one's complement, not folded).
pub fn sum16(bytes: &[u8], mut sum: u32) -> u32 {
    let mut words = bytes.chunks_exact(2);
    for w in &mut words {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])));
        if sum >= 0xffff_0000 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let [last] = words.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// Folds a 32-bit one's complement sum to 16 bits.
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

impl Packet for Frame {
    fn wire_len(&self) -> u64 {
        let len = self.ethernet().len() as u64;
        let segments = self.segments();
        if segments <= 1 {
            return len;
        }
        let headers = layout(self.ethernet()).map_or(0, |l| l.payload as u64);
        len + (segments - 1) * headers
    }

    fn is_segmented(&self) -> bool {
        self.segments() > 1
    }

    fn segment(self) -> Vec<Frame> {
        self.split().unwrap_or_default()
    }

    fn corrupt(&mut self, rng: &mut Rng) {
        self.complete_checksum();
        let len = self.bytes.len() - VNET_HDR_LEN;
        if len == 0 {
            return;
        }
        let byte = VNET_HDR_LEN + rng.below(len as u32) as usize;
        self.bytes[byte] ^= 1 << rng.below(8);
    }

    fn duplicate(&self) -> Frame {
        self.clone()
    }
}
