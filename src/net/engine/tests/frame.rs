use crate::net::engine::frame::{
    F_NEEDS_CSUM, Frame, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_HDR_LEN, VnetHdr, fold,
    sum16,
};
use crate::net::engine::model::Packet;
use crate::net::engine::rng::Rng;

const MAC: [u8; 12] = [2, 0x42, 10, 0, 0, 1, 2, 0x42, 10, 0, 0, 2];

/// An Ethernet + IPv4/IPv6 + TCP/UDP frame with `payload` bytes, as a sender's kernel
/// hands it over with offloads: the checksum field holds the pseudo-header sum only.
fn frame(ipv6: bool, tcp: bool, payload: usize, gso_size: u16) -> Frame {
    let mut f = MAC.to_vec();
    let l4_len = if tcp { 20 } else { 8 } + payload;
    let protocol = if tcp { 6 } else { 17 };
    if ipv6 {
        f.extend_from_slice(&[0x86, 0xdd]);
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[protocol, 64]);
        f.extend_from_slice(&[0xfd; 16]);
        f.extend_from_slice(&[0xfe; 16]);
    } else {
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, protocol, 0, 0]);
        f.extend_from_slice(&[10, 99, 0, 1, 10, 99, 0, 2]);
        let sum = !fold(sum16(&f[14..34], 0));
        f[24..26].copy_from_slice(&sum.to_be_bytes());
    }
    let l4 = f.len();
    if tcp {
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x50]);
        f.extend_from_slice(&1000u32.to_be_bytes());
        f.extend_from_slice(&0u32.to_be_bytes());
        f.extend_from_slice(&[0x50, 0x80 | 0x08 | 0x10 | 0x01, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35]);
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend((0..payload).map(|i| (i % 251) as u8));
    // The pseudo-header sum, as CHECKSUM_PARTIAL leaves it.
    let addresses = if ipv6 { &f[22..54] } else { &f[26..34] };
    let mut pseudo = sum16(addresses, 0) + u32::from(protocol) + l4_len as u32;
    pseudo = u32::from(fold(pseudo));
    let check = l4 + if tcp { 16 } else { 6 };
    f[check..check + 2].copy_from_slice(&(pseudo as u16).to_be_bytes());
    let header = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: if gso_size == 0 {
            GSO_NONE
        } else if !tcp {
            GSO_UDP_L4
        } else if ipv6 {
            GSO_TCPV6
        } else {
            GSO_TCPV4
        },
        hdr_len: (l4 + if tcp { 20 } else { 8 }) as u16,
        gso_size,
        csum_start: l4 as u16,
        csum_offset: if tcp { 16 } else { 6 },
    };
    let mut bytes = vec![0u8; VNET_HDR_LEN];
    header.write(&mut bytes);
    bytes.extend_from_slice(&f);
    Frame::new(bytes)
}

/// Whether the L4 checksum of a complete frame verifies.
fn l4_checksum_ok(f: &[u8]) -> bool {
    let ipv6 = f[12] == 0x86;
    let (l4, protocol, addresses) = if ipv6 {
        (54, f[20], &f[22..54])
    } else {
        (14 + usize::from(f[14] & 0xf) * 4, f[23], &f[26..34])
    };
    let len = f.len() - l4;
    let sum = sum16(
        &f[l4..],
        sum16(addresses, 0) + u32::from(protocol) + len as u32,
    );
    fold(sum) == 0xffff
}

fn ipv4_header_ok(f: &[u8]) -> bool {
    fold(sum16(&f[14..34], 0)) == 0xffff
}

#[test]
fn the_virtio_header_round_trips() {
    let h = VnetHdr {
        flags: 1,
        gso_type: GSO_TCPV4,
        hdr_len: 66,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
    };
    let mut bytes = [0u8; 10];
    h.write(&mut bytes);
    assert_eq!(bytes, [1, 1, 66, 0, 0xa8, 5, 34, 0, 16, 0]);
    assert_eq!(VnetHdr::parse(&bytes), Some(h));
}

#[test]
fn a_segmented_frame_is_charged_every_packets_headers() {
    let f = frame(false, true, 3000, 1000);
    assert!(f.is_segmented());
    assert_eq!(f.segments(), 3);
    // 14 + 20 + 20 header bytes for each of the two further packets.
    assert_eq!(f.wire_len(), (14 + 20 + 20 + 3000) + 2 * 54);
    let single = frame(false, true, 100, 0);
    assert!(!single.is_segmented());
    assert_eq!(single.wire_len(), 154);
}

#[test]
fn tcp_segments_get_their_own_lengths_sequence_numbers_flags_and_checksums() {
    for ipv6 in [false, true] {
        let parts = frame(ipv6, true, 2500, 1000).segment();
        assert_eq!(parts.len(), 3, "ipv6 {ipv6}");
        let l4 = if ipv6 { 54 } else { 34 };
        for (i, part) in parts.iter().enumerate() {
            let f = part.ethernet();
            let payload = if i == 2 { 500 } else { 1000 };
            assert_eq!(f.len(), l4 + 20 + payload);
            assert_eq!(
                part.header(),
                VnetHdr::default(),
                "checksums done, no offload"
            );
            let seq = u32::from_be_bytes(f[l4 + 4..l4 + 8].try_into().unwrap());
            assert_eq!(seq, 1000 + 1000 * i as u32);
            let flags = f[l4 + 13];
            assert_eq!(flags & 0x01 != 0, i == 2, "FIN on the last only");
            assert_eq!(flags & 0x08 != 0, i == 2, "PSH on the last only");
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR on the first only");
            assert!(l4_checksum_ok(f), "segment {i} ipv6 {ipv6}");
            if ipv6 {
                assert_eq!(u16::from_be_bytes([f[18], f[19]]), (20 + payload) as u16);
            } else {
                assert_eq!(u16::from_be_bytes([f[16], f[17]]), (40 + payload) as u16);
                assert_eq!(u16::from_be_bytes([f[18], f[19]]), 0x1234 + i as u16);
                assert!(ipv4_header_ok(f));
            }
        }
    }
}

#[test]
fn udp_segments_are_cut_too() {
    let parts = frame(false, false, 2000, 1200).segment();
    assert_eq!(parts.len(), 2);
    for part in &parts {
        let f = part.ethernet();
        let udp_len = u16::from_be_bytes([f[38], f[39]]) as usize;
        assert_eq!(udp_len, f.len() - 34);
        assert!(l4_checksum_ok(f));
    }
}

#[test]
fn corruption_completes_the_checksum_then_flips_one_bit() {
    for (ipv6, tcp) in [(false, true), (true, true), (false, false)] {
        let original = frame(ipv6, tcp, 200, 0);
        let mut complete = original.clone();
        complete.complete_checksum();
        assert_eq!(complete.header().flags & F_NEEDS_CSUM, 0);
        assert!(l4_checksum_ok(complete.ethernet()), "ipv6 {ipv6} tcp {tcp}");
        for seed in 0..20 {
            let mut corrupted = original.clone();
            corrupted.corrupt(&mut Rng::seeded(seed));
            let flipped: u32 = complete
                .bytes
                .iter()
                .zip(&corrupted.bytes)
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert_eq!(flipped, 1, "seed {seed}");
        }
    }
}

#[test]
fn frames_it_does_not_understand_are_not_split() {
    let mut arp = Frame::new(vec![0u8; VNET_HDR_LEN + 42]);
    arp.bytes[VNET_HDR_LEN + 12] = 0x08;
    arp.bytes[VNET_HDR_LEN + 13] = 0x06;
    assert!(!arp.is_segmented());
    assert_eq!(arp.wire_len(), 42);
    assert!(arp.clone().segment().is_empty());
}
