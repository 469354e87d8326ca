use std::time::Duration;

use crate::net::netem::{Netem, Psched, scale_percent, unscale_percent};

/// /proc/net/psched of every kernel since 2.6.31 (1 tick = 64 ns).
const PSCHED: &str = "000003e8 00000040 000f4240 3b9aca00\n";

fn psched() -> Psched {
    Psched::parse(PSCHED).unwrap()
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

/// Walks the attributes after the 24-byte struct: (type, payload).
fn attributes(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = &bytes[24..];
    while !rest.is_empty() {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]);
        out.push((kind, rest[4..len].to_vec()));
        rest = &rest[(len + 3) & !3..];
    }
    out
}

#[test]
fn psched_converts_microseconds_to_ticks_like_tc() {
    let psched = psched();
    assert_eq!(psched.ticks(Duration::from_millis(20)), 312_500);
    assert_eq!(psched.ticks(Duration::from_micros(1)), 15);
    assert_eq!(psched.time(312_500), Duration::from_millis(20));
    assert_eq!(psched.ticks(Duration::from_secs(1_000_000)), u32::MAX);
    assert!(Psched::parse("garbage").is_none());
    assert!(Psched::parse("0 0 0 0").is_none());
}

#[test]
fn percentages_scale_to_u32_like_iproute2() {
    assert_eq!(scale_percent(0.0), 0);
    assert_eq!(scale_percent(100.0), u32::MAX);
    // rint(0.01 * 4294967295) = rint(42949672.95)
    assert_eq!(scale_percent(1.0), 42_949_673);
    assert!((unscale_percent(scale_percent(0.5)) - 0.5).abs() < 1e-6);
}

#[test]
fn the_struct_comes_first_with_ticks_and_scaled_probabilities() {
    let netem = Netem {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        loss_percent: 1.0,
        duplicate_percent: 2.0,
        limit: 500,
        ..Netem::default()
    };
    let bytes = netem.encode(&psched()).unwrap();
    assert_eq!(u32_at(&bytes, 0), 312_500, "latency in ticks");
    assert_eq!(u32_at(&bytes, 4), 500, "limit");
    assert_eq!(u32_at(&bytes, 8), 42_949_673, "loss");
    assert_eq!(u32_at(&bytes, 12), 0, "gap (no reordering)");
    assert_eq!(u32_at(&bytes, 16), scale_percent(2.0), "duplicate");
    assert_eq!(u32_at(&bytes, 20), 78_125, "jitter in ticks");
}

#[test]
fn every_attribute_is_present_so_a_replace_clears_old_values() {
    let bytes = Netem::default().encode(&psched()).unwrap();
    let attrs = attributes(&bytes);
    let kinds: Vec<u16> = attrs.iter().map(|(k, _)| *k).collect();
    // LATENCY64, JITTER64, CORR, REORDER, CORRUPT, RATE; no RATE64 for small rates, no
    // loss model, delay table or seed when none is set.
    assert_eq!(kinds, vec![10, 11, 1, 3, 4, 6]);
    assert!(
        attrs
            .iter()
            .all(|(_, payload)| payload.iter().all(|b| *b == 0))
    );
    assert_eq!(bytes.len(), 24 + 12 + 12 + 16 + 12 + 12 + 20);
}

#[test]
fn latency64_reorder_corrupt_and_rate_carry_their_values() {
    let netem = Netem {
        delay: Duration::from_millis(100),
        jitter: Duration::from_micros(1500),
        reorder_percent: 25.0,
        corrupt_percent: 0.5,
        rate_bytes_per_sec: Some(125_000),
        ..Netem::default()
    };
    let bytes = netem.encode(&psched()).unwrap();
    assert_eq!(u32_at(&bytes, 12), 1, "reordering sets gap 1 as tc does");
    let attrs = attributes(&bytes);
    let get = |kind: u16| attrs.iter().find(|(k, _)| *k == kind).unwrap().1.clone();
    assert_eq!(i64::from_ne_bytes(get(10).try_into().unwrap()), 100_000_000);
    assert_eq!(i64::from_ne_bytes(get(11).try_into().unwrap()), 1_500_000);
    assert_eq!(u32_at(&get(3), 0), scale_percent(25.0));
    assert_eq!(u32_at(&get(3), 4), 0, "no correlation");
    assert_eq!(u32_at(&get(4), 0), scale_percent(0.5));
    let rate = get(6);
    assert_eq!(rate.len(), 16);
    assert_eq!(u32_at(&rate, 0), 125_000);
}

#[test]
fn rates_above_u32_use_rate64() {
    let netem = Netem {
        rate_bytes_per_sec: Some(10_000_000_000),
        ..Netem::default()
    };
    let bytes = netem.encode(&psched()).unwrap();
    let attrs = attributes(&bytes);
    let rate64 = attrs.iter().find(|(k, _)| *k == 8).unwrap();
    assert_eq!(
        u64::from_ne_bytes(rate64.1.clone().try_into().unwrap()),
        10_000_000_000
    );
    let rate = attrs.iter().find(|(k, _)| *k == 6).unwrap();
    assert_eq!(u32_at(&rate.1, 0), u32::MAX);
}

#[test]
fn decode_reads_back_what_encode_wrote() {
    let netem = Netem {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        loss_percent: 1.5,
        rate_bytes_per_sec: Some(10_000_000_000),
        corrupt_percent: 0.5,
        duplicate_percent: 2.0,
        reorder_percent: 25.0,
        limit: 321,
        ..Netem::default()
    };
    let decoded = Netem::decode(&netem.encode(&psched()).unwrap(), &psched()).unwrap();
    assert_eq!(decoded.delay, netem.delay);
    assert_eq!(decoded.jitter, netem.jitter);
    assert_eq!(decoded.rate_bytes_per_sec, netem.rate_bytes_per_sec);
    assert_eq!(decoded.limit, 321);
    for (a, b) in [
        (decoded.loss_percent, 1.5),
        (decoded.corrupt_percent, 0.5),
        (decoded.duplicate_percent, 2.0),
        (decoded.reorder_percent, 25.0),
    ] {
        assert!((a - b).abs() < 1e-6, "{a} != {b}");
    }
    assert!(Netem::decode(&[0; 10], &psched()).is_none());
}

#[test]
fn impossible_settings_are_refused() {
    let reorder_without_delay = Netem {
        reorder_percent: 10.0,
        ..Netem::default()
    };
    let err = reorder_without_delay.encode(&psched()).unwrap_err();
    assert!(
        err.to_string().contains("reordering needs a delay"),
        "{err}"
    );
    let too_lossy = Netem {
        loss_percent: 150.0,
        ..Netem::default()
    };
    assert!(too_lossy.encode(&psched()).is_err());
    let no_queue = Netem {
        limit: 0,
        ..Netem::default()
    };
    assert!(no_queue.validate().is_err());
}

/// The TCA_OPTIONS payload iproute2 6.1 sends for `tc qdisc replace dev lo root netem
/// limit 500 delay 20ms 5ms loss 1.5% duplicate 2% reorder 25% corrupt 0.5% rate 1mbit`
/// (captured with `strace -e write=all` on sendmsg).
const IPROUTE2_OPTIONS: &[u8] = &[
    0xb4, 0xc4, 0x04, 0x00, 0xf4, 0x01, 0x00, 0x00, 0x3d, 0x0a, 0xd7, 0x03, 0x01, 0x00, 0x00, 0x00,
    0x52, 0xb8, 0x1e, 0x05, 0x2d, 0x31, 0x01, 0x00, 0x0c, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x40,
    0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x04, 0x00, 0x14, 0xae, 0x47, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x14, 0x00, 0x06, 0x00, 0x48, 0xe8, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

#[test]
#[cfg(target_endian = "little")]
fn the_encoding_matches_what_iproute2_sends() {
    let netem = Netem {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        loss_percent: 1.5,
        rate_bytes_per_sec: Some(125_000),
        corrupt_percent: 0.5,
        duplicate_percent: 2.0,
        reorder_percent: 25.0,
        limit: 500,
        ..Netem::default()
    };
    let ours = netem.encode(&psched()).unwrap();
    assert_eq!(ours[..24], IPROUTE2_OPTIONS[..24], "struct tc_netem_qopt");
    let our_attrs = attributes(&ours);
    for theirs in attributes(IPROUTE2_OPTIONS) {
        assert!(our_attrs.contains(&theirs), "attribute {theirs:?} differs");
    }
    // The only additions: the correlations (all zero: a replace must not inherit old
    // ones), and exact 64-bit latency and jitter, which the kernel prefers.
    let extra: Vec<u16> = our_attrs
        .iter()
        .filter(|a| !attributes(IPROUTE2_OPTIONS).contains(a))
        .map(|(kind, _)| *kind)
        .collect();
    assert_eq!(extra, vec![10, 11, 1]);
    // And decoding iproute2's bytes gives the same settings back.
    let decoded = Netem::decode(IPROUTE2_OPTIONS, &psched()).unwrap();
    assert_eq!(decoded.delay, netem.delay);
    assert_eq!(decoded.jitter, netem.jitter);
    assert_eq!(decoded.rate_bytes_per_sec, Some(125_000));
    assert!((decoded.reorder_percent - 25.0).abs() < 1e-6);
}
