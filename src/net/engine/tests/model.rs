use std::time::Duration;

use crate::net::engine::model::{Emulator, Packet};
use crate::net::engine::rng::Rng;
use crate::net::netem::{Distribution, LossModel, Netem};

const MS: u64 = 1_000_000;

/// A packet of the tests: an id, a length, and how many packets it stands for.
#[derive(Debug, Clone, PartialEq)]
struct P {
    id: u32,
    len: u64,
    segments: u32,
    corrupted: bool,
}

impl P {
    fn new(id: u32) -> P {
        P {
            id,
            len: 1000,
            segments: 1,
            corrupted: false,
        }
    }
}

impl Packet for P {
    fn wire_len(&self) -> u64 {
        self.len * u64::from(self.segments)
    }
    fn is_segmented(&self) -> bool {
        self.segments > 1
    }
    fn segment(self) -> Vec<P> {
        (0..self.segments)
            .map(|i| P {
                id: self.id * 100 + i,
                segments: 1,
                ..self.clone()
            })
            .collect()
    }
    fn corrupt(&mut self, _: &mut Rng) {
        self.corrupted = true;
    }
    fn duplicate(&self) -> P {
        self.clone()
    }
}

fn emulator(netem: Netem, seed: u64) -> Emulator<P> {
    Emulator::new(&netem, Rng::seeded(seed))
}

/// Sends `n` packets `gap_ns` apart, taking each packet out at its departure time:
/// (id, arrival, departure).
fn run(e: &mut Emulator<P>, n: u32, gap_ns: u64) -> Vec<(u32, u64, u64)> {
    let mut out = Vec::new();
    let mut arrivals = std::collections::HashMap::new();
    let mut clock = 0;
    for id in 0..n {
        let now = u64::from(id) * gap_ns;
        drain_until(e, now, &mut clock, &arrivals, &mut out);
        arrivals.insert(id, now);
        clock = now;
        e.enqueue(now, P::new(id));
    }
    drain_until(e, u64::MAX, &mut clock, &arrivals, &mut out);
    out
}

/// Takes out every packet due by `until`, each at its own departure time.
fn drain_until(
    e: &mut Emulator<P>,
    until: u64,
    clock: &mut u64,
    arrivals: &std::collections::HashMap<u32, u64>,
    out: &mut Vec<(u32, u64, u64)>,
) {
    while let Some(at) = e.next_departure() {
        if at > until {
            break;
        }
        *clock = (*clock).max(at);
        while let Some(p) = e.dequeue(*clock) {
            out.push((p.id, arrivals.get(&p.id).copied().unwrap_or(0), *clock));
        }
    }
}

fn delays_ms(out: &[(u32, u64, u64)]) -> Vec<f64> {
    out.iter()
        .map(|(_, a, d)| (d - a) as f64 / MS as f64)
        .collect()
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (
        mean,
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt(),
    )
}

#[test]
fn a_plain_delay_delays_every_packet_exactly() {
    let mut e = emulator(
        Netem {
            delay: Duration::from_millis(30),
            ..Netem::default()
        },
        1,
    );
    let out = run(&mut e, 100, MS);
    assert_eq!(out.len(), 100);
    assert!(delays_ms(&out).iter().all(|&d| d == 30.0));
    // In order, nothing lost.
    assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    let c = e.counters();
    assert_eq!((c.received, c.sent, c.lost), (100, 100, 0));
}

#[test]
fn nothing_is_held_without_a_delay() {
    let mut e = emulator(Netem::default(), 1);
    e.enqueue(5, P::new(1));
    assert_eq!(e.next_departure(), Some(5));
    assert_eq!(e.dequeue(5).map(|p| p.id), Some(1));
    assert!(e.is_empty());
}

#[test]
fn random_loss_loses_its_share() {
    for seed in [1, 2, 3] {
        let mut e = emulator(
            Netem {
                loss_percent: 10.0,
                ..Netem::default()
            },
            seed,
        );
        let out = run(&mut e, 50_000, 1000);
        let lost = 50_000 - out.len();
        let share = lost as f64 / 50_000.0;
        assert!((share - 0.10).abs() < 0.006, "seed {seed}: {share}");
        assert_eq!(e.counters().lost as usize, lost);
    }
}

#[test]
fn the_same_seed_loses_the_same_packets() {
    let netem = Netem {
        loss_percent: 30.0,
        jitter: Duration::from_millis(5),
        delay: Duration::from_millis(10),
        ..Netem::default()
    };
    let a = run(&mut emulator(netem.clone(), 42), 1000, MS);
    let b = run(&mut emulator(netem.clone(), 42), 1000, MS);
    let c = run(&mut emulator(netem, 43), 1000, MS);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn uniform_jitter_spreads_evenly_around_the_delay() {
    let mut e = emulator(
        Netem {
            delay: Duration::from_millis(30),
            jitter: Duration::from_millis(10),
            ..Netem::default()
        },
        7,
    );
    let d = delays_ms(&run(&mut e, 20_000, MS));
    let (mean, sd) = mean_sd(&d);
    assert!(d.iter().all(|&x| (20.0..40.0).contains(&x)));
    assert!((mean - 30.0).abs() < 0.15, "{mean}");
    // A uniform spread of ±10 ms has a standard deviation of 10/√3.
    assert!((sd - 10.0 / 3f64.sqrt()).abs() < 0.1, "{sd}");
}

#[test]
fn normal_jitter_has_the_declared_standard_deviation() {
    let mut e = emulator(
        Netem {
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(5),
            distribution: Distribution::Normal,
            ..Netem::default()
        },
        11,
    );
    let d = delays_ms(&run(&mut e, 20_000, MS));
    let (mean, sd) = mean_sd(&d);
    assert!((mean - 50.0).abs() < 0.15, "{mean}");
    assert!((sd - 5.0).abs() < 0.15, "{sd}");
    let within_one_sd = d.iter().filter(|&&x| (x - 50.0).abs() <= 5.0).count();
    let share = within_one_sd as f64 / d.len() as f64;
    assert!((share - 0.6827).abs() < 0.015, "{share}");
}

#[test]
fn pareto_jitter_has_a_long_right_tail() {
    let netem = |distribution| Netem {
        delay: Duration::from_millis(50),
        jitter: Duration::from_millis(5),
        distribution,
        ..Netem::default()
    };
    let mut pareto = emulator(netem(Distribution::Pareto), 3);
    let d = delays_ms(&run(&mut pareto, 20_000, MS));
    let (mean, _) = mean_sd(&d);
    assert!((mean - 50.0).abs() < 0.5, "{mean}");
    let max = d.iter().cloned().fold(f64::MIN, f64::max);
    let min = d.iter().cloned().fold(f64::MAX, f64::min);
    // Never much below (-0.67 sigma), far above.
    assert!(min >= 50.0 - 5.0 * 0.67 - 0.01, "{min}");
    assert!(max > 50.0 + 5.0 * 3.0, "{max}");
    let mut mixed = emulator(netem(Distribution::Paretonormal), 3);
    let (mean, _) = mean_sd(&delays_ms(&run(&mut mixed, 20_000, MS)));
    assert!((mean - 50.0).abs() < 0.5, "{mean}");
}

#[test]
fn delay_correlation_is_netems_weak_one() {
    // netem correlates the 32-bit random number, then reduces it modulo the jitter's
    // range (or the table's size): little of the correlation survives in the delays. The
    // engine keeps that arithmetic, so both engines agree; the spread stays as declared.
    let lag1 = |correlation: f64| {
        let mut e = emulator(
            Netem {
                delay: Duration::from_millis(100),
                jitter: Duration::from_millis(20),
                delay_correlation: correlation,
                ..Netem::default()
            },
            5,
        );
        // Far apart, so that jitter never reorders them.
        let mut out = run(&mut e, 5000, 100 * MS);
        out.sort_by_key(|(id, _, _)| *id);
        let d = delays_ms(&out);
        let (mean, sd) = mean_sd(&d);
        let cov = d
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum::<f64>()
            / (d.len() - 1) as f64;
        cov / (sd * sd)
    };
    assert!(lag1(0.0).abs() < 0.05);
    let correlated = lag1(75.0);
    assert!(correlated.abs() < 0.1, "{correlated}");
}

#[test]
fn loss_correlation_makes_losses_come_in_runs() {
    let after_a_loss = |correlation: f64| {
        let mut e = emulator(
            Netem {
                loss_percent: 50.0,
                loss_correlation: correlation,
                ..Netem::default()
            },
            12,
        );
        let n = 50_000u32;
        let mut received = vec![false; n as usize];
        for (id, _, _) in run(&mut e, n, 1000) {
            received[id as usize] = true;
        }
        let lost_then = received.windows(2).filter(|w| !w[0]).count();
        let lost_twice = received.windows(2).filter(|w| !w[0] && !w[1]).count();
        lost_twice as f64 / lost_then as f64
    };
    let plain = after_a_loss(0.0);
    assert!((plain - 0.5).abs() < 0.02, "{plain}");
    let correlated = after_a_loss(75.0);
    assert!(correlated > 0.7, "{correlated}");
}

#[test]
fn jitter_reorders_packets_as_netem_does() {
    // netem sorts its queue by departure time: a packet whose delay came out shorter
    // overtakes an earlier one.
    let mut e = emulator(
        Netem {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(9),
            ..Netem::default()
        },
        9,
    );
    let out = run(&mut e, 1000, MS / 10);
    assert!(out.windows(2).any(|w| w[0].0 > w[1].0));
    assert!(out.windows(2).all(|w| w[0].2 <= w[1].2));
}

#[test]
fn gilbert_elliott_loses_in_bursts() {
    // Simple Gilbert: p = 1%, r = 20%, everything lost in the bad state, nothing in the
    // good one: the stationary loss is p / (p + r) = 4.76%, bursts last 1/r = 5 packets.
    let mut e = emulator(
        Netem {
            loss_model: Some(LossModel::GilbertElliott {
                p: 1.0,
                r: 20.0,
                bad_loss: 100.0,
                good_loss: 0.0,
            }),
            ..Netem::default()
        },
        21,
    );
    let n = 200_000;
    let out = run(&mut e, n, 1000);
    let mut received = vec![false; n as usize];
    for (id, _, _) in &out {
        received[*id as usize] = true;
    }
    let lost = received.iter().filter(|r| !**r).count();
    let share = lost as f64 / f64::from(n);
    assert!((share - 1.0 / 21.0).abs() < 0.004, "{share}");
    let bursts = received.windows(2).filter(|w| w[0] && !w[1]).count();
    let mean_burst = lost as f64 / bursts as f64;
    assert!((mean_burst - 5.0).abs() < 0.3, "{mean_burst}");
}

#[test]
fn the_four_state_model_loses_its_stationary_share() {
    // tc's `loss state 1% 30%`: p13 = 1%, p31 = 30%, p32 = 0, p23 = 100%, p14 = 0: from
    // the gap a burst starts with 1%, lasts 1/0.3 packets: 1 / (1 + 0.3 / 0.01) = 3.23%.
    let mut e = emulator(
        Netem {
            loss_model: Some(LossModel::FourState {
                p13: 1.0,
                p31: 30.0,
                p32: 0.0,
                p23: 100.0,
                p14: 0.0,
            }),
            ..Netem::default()
        },
        4,
    );
    let n = 200_000;
    let lost = n as usize - run(&mut e, n, 1000).len();
    let share = lost as f64 / f64::from(n);
    assert!((share - 0.0323).abs() < 0.003, "{share}");
}

#[test]
fn duplicates_follow_the_original_and_are_not_duplicated_again() {
    let mut e = emulator(
        Netem {
            duplicate_percent: 20.0,
            ..Netem::default()
        },
        8,
    );
    let out = run(&mut e, 20_000, 1000);
    let extra = out.len() - 20_000;
    let share = extra as f64 / 20_000.0;
    assert!((share - 0.20).abs() < 0.01, "{share}");
    assert_eq!(e.counters().duplicated as usize, extra);
    let mut seen = std::collections::HashMap::new();
    for (id, _, _) in &out {
        *seen.entry(*id).or_insert(0) += 1;
    }
    assert!(seen.values().all(|&n| n <= 2));
}

#[test]
fn a_lost_packet_that_was_to_be_duplicated_still_goes_once() {
    let mut e = emulator(
        Netem {
            duplicate_percent: 100.0,
            loss_percent: 100.0,
            ..Netem::default()
        },
        1,
    );
    // Duplicated (+1) and lost (-1): one copy; the copy itself may be lost again.
    e.enqueue(0, P::new(1));
    let c = e.counters();
    assert_eq!(c.duplicated, 0);
    assert_eq!(e.len(), 1);
}

#[test]
fn reordering_sends_one_in_gap_packets_at_once() {
    // reorder 100% gap 5: packets 1-4 delayed, the 5th sent at once, and again.
    let mut e = emulator(
        Netem {
            delay: Duration::from_millis(10),
            reorder_percent: 100.0,
            gap: 5,
            ..Netem::default()
        },
        1,
    );
    let out = run(&mut e, 20, MS);
    let immediate: Vec<u32> = out
        .iter()
        .filter(|(_, a, d)| a == d)
        .map(|(id, _, _)| *id)
        .collect();
    assert_eq!(immediate, vec![4, 9, 14, 19]);
    assert_eq!(e.counters().reordered, 4);
}

#[test]
fn reordering_without_a_gap_reorders_its_share() {
    let mut e = emulator(
        Netem {
            delay: Duration::from_millis(10),
            reorder_percent: 25.0,
            ..Netem::default()
        },
        2,
    );
    let n = 20_000;
    let out = run(&mut e, n, MS);
    let immediate = out.iter().filter(|(_, a, d)| a == d).count();
    let share = immediate as f64 / f64::from(n);
    assert!((share - 0.25).abs() < 0.01, "{share}");
}

#[test]
fn rate_spaces_packets_by_their_transmission_time() {
    // 1000-byte packets at 1 MB/s: one every millisecond, even when they arrive at once.
    let mut e = emulator(
        Netem {
            rate_bytes_per_sec: Some(1_000_000),
            ..Netem::default()
        },
        1,
    );
    for id in 0..10 {
        e.enqueue(0, P::new(id));
    }
    let mut departures = Vec::new();
    while let Some(at) = e.next_departure() {
        let p = e.dequeue(at).unwrap();
        departures.push((p.id, at));
    }
    let expected: Vec<(u32, u64)> = (0..10).map(|i| (i, u64::from(i + 1) * MS)).collect();
    assert_eq!(departures, expected);
}

#[test]
fn rate_and_delay_add_up_like_netem() {
    // The first packet: transmission + delay; the next ones queue behind it, the delay
    // being served meanwhile.
    let mut e = emulator(
        Netem {
            delay: Duration::from_millis(10),
            rate_bytes_per_sec: Some(1_000_000),
            ..Netem::default()
        },
        1,
    );
    e.enqueue(0, P::new(0));
    e.enqueue(0, P::new(1));
    assert_eq!(e.next_departure(), Some(11 * MS));
    e.dequeue(11 * MS);
    assert_eq!(e.next_departure(), Some(12 * MS));
}

#[test]
fn goodput_at_a_rate_matches_it() {
    // 10 Mbit/s: 1.25 MB/s; a saturating sender for one virtual second.
    let rate = 1_250_000u64;
    let mut e = emulator(
        Netem {
            rate_bytes_per_sec: Some(rate),
            ..Netem::default()
        },
        1,
    );
    let mut now = 0u64;
    let mut sent_bytes = 0u64;
    let mut id = 0;
    while now < 1_000 * MS {
        while e.len() < 10 {
            e.enqueue(now, P::new(id));
            id += 1;
        }
        let at = e.next_departure().unwrap().max(now);
        now = at;
        while let Some(p) = e.dequeue(now) {
            sent_bytes += p.wire_len();
        }
    }
    let measured = sent_bytes as f64 / (now as f64 / 1e9);
    assert!((measured / rate as f64 - 1.0).abs() < 0.002, "{measured}");
}

#[test]
fn packet_overhead_and_cells_are_charged() {
    // 1000 bytes + 4 overhead = 1004, in 48-byte cells (21 cells) of 53 bytes: 1113 bytes.
    let mut e = emulator(
        Netem {
            rate_bytes_per_sec: Some(1_113_000),
            packet_overhead: 4,
            cell_size: 48,
            cell_overhead: 5,
            ..Netem::default()
        },
        1,
    );
    e.enqueue(0, P::new(0));
    assert_eq!(e.next_departure(), Some(MS));
}

#[test]
fn the_queue_limit_drops_what_does_not_fit() {
    let mut e = emulator(
        Netem {
            delay: Duration::from_millis(10),
            limit: 3,
            ..Netem::default()
        },
        1,
    );
    for id in 0..5 {
        e.enqueue(0, P::new(id));
    }
    assert_eq!(e.len(), 3);
    assert_eq!(e.counters().overlimit, 2);
}

#[test]
fn corruption_splits_a_segmented_frame_and_corrupts_one_packet() {
    let mut e = emulator(
        Netem {
            corrupt_percent: 100.0,
            ..Netem::default()
        },
        1,
    );
    e.enqueue(
        0,
        P {
            segments: 3,
            ..P::new(7)
        },
    );
    let mut out = Vec::new();
    while let Some(p) = e.dequeue(0) {
        out.push(p);
    }
    // Every segment goes through the model again: with 100% each is corrupted.
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|p| p.corrupted && p.segments == 1));
    assert_eq!(e.counters().corrupted, 3);
}

#[test]
fn corruption_hits_its_share() {
    let mut e = emulator(
        Netem {
            corrupt_percent: 5.0,
            ..Netem::default()
        },
        3,
    );
    for id in 0..20_000 {
        e.enqueue(0, P::new(id));
    }
    let share = e.counters().corrupted as f64 / 20_000.0;
    assert!((share - 0.05).abs() < 0.005, "{share}");
}

#[test]
fn new_settings_keep_the_queue() {
    let mut e = emulator(
        Netem {
            delay: Duration::from_millis(100),
            ..Netem::default()
        },
        1,
    );
    e.enqueue(0, P::new(1));
    e.set(
        &Netem {
            delay: Duration::from_millis(1),
            ..Netem::default()
        },
        None,
    );
    e.enqueue(MS, P::new(2));
    assert_eq!(e.len(), 2);
    assert_eq!(e.dequeue(2 * MS).map(|p| p.id), Some(2));
    assert_eq!(e.dequeue(100 * MS).map(|p| p.id), Some(1));
    assert_eq!(e.flush(), 0);
}

#[test]
fn loss_correlation_narrows_losses_like_netem() {
    // netem's correlated generator averages uniform numbers: with a correlation, a small
    // loss probability is hit less often than declared (a known property of netem's
    // model, kept so both engines agree) and losses come in runs.
    let loss = |correlation| {
        let mut e = emulator(
            Netem {
                loss_percent: 10.0,
                loss_correlation: correlation,
                ..Netem::default()
            },
            6,
        );
        let n = 50_000;
        (n - run(&mut e, n, 1000).len() as u32) as f64 / f64::from(n)
    };
    let plain = loss(0.0);
    let correlated = loss(50.0);
    assert!((plain - 0.10).abs() < 0.006);
    assert!(correlated < plain, "{correlated} {plain}");
}
