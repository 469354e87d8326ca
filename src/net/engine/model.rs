//! netem's model, in user space: what happens to each packet (lost, duplicated, corrupted,
//! reordered) and when it leaves (delay, jitter and its distribution, rate), and the
//! time-ordered queue that holds it until then.
//!
//! It follows the kernel's `sch_netem.c` decision by decision, in the same order and with
//! the same arithmetic (probabilities as `u32` where `u32::MAX` is 100%, netem's correlated
//! random numbers, `tabledist`, the Gilbert-Elliott and 4-state loss generators, the gap
//! counter of reordering, the rate's "last departure" reference and packet overhead/cells,
//! the queue limit), so a link behaves the same whichever engine carries it.
//!
//! Pure: time is a number of nanoseconds the caller passes in (a monotonic clock in the
//! engine, a virtual one in the tests) and packets are anything that implements
//! [`Packet`]; randomness comes from a seeded [`Rng`].

use std::collections::{BTreeMap, VecDeque};

use super::rng::Rng;
use crate::net::netem::{LossModel, Netem, dist, scale_percent};

/// What the model needs from a packet.
pub trait Packet: Sized {
    /// The length the rate limiter charges: netem's `qdisc_pkt_len`, the frame plus, for a
    /// segmentation-offload frame, the headers of every further segment.
    fn wire_len(&self) -> u64;
    /// A segmentation-offload frame (several packets on the wire).
    fn is_segmented(&self) -> bool;
    /// Splits a segmentation-offload frame into its packets (netem corrupts one packet, not
    /// a whole 64 KiB frame); empty when it cannot be split (the frame is dropped).
    fn segment(self) -> Vec<Self>;
    /// Flips one random bit (after completing a checksum left to the hardware).
    fn corrupt(&mut self, rng: &mut Rng);
    /// An identical copy.
    fn duplicate(&self) -> Self;
}

/// netem's parameters in the kernel's units.
#[derive(Debug, Clone, PartialEq)]
struct Params {
    latency: i64,
    /// ns, at most `i32::MAX` (netem caps it there too).
    jitter: i32,
    dist: Option<&'static [i16]>,
    loss: u32,
    loss_model: Loss,
    duplicate: u32,
    corrupt: u32,
    reorder: u32,
    gap: u32,
    /// Bytes per second; 0 is unlimited.
    rate: u64,
    packet_overhead: i32,
    cell_size: u32,
    cell_overhead: i32,
    limit: u32,
    correlation: Correlations,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Correlations {
    delay: u32,
    loss: u32,
    duplicate: u32,
    reorder: u32,
    corrupt: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Loss {
    Random,
    /// a1..a4 = p, r, h, 1-k (the kernel's `tc_netem_gemodel`).
    GilbertElliott {
        p: u32,
        r: u32,
        h: u32,
        k1: u32,
    },
    FourState {
        p13: u32,
        p31: u32,
        p32: u32,
        p23: u32,
        p14: u32,
    },
}

impl From<&Netem> for Params {
    fn from(n: &Netem) -> Params {
        let reorder = scale_percent(n.reorder_percent);
        let loss_model = match &n.loss_model {
            None => Loss::Random,
            Some(LossModel::GilbertElliott {
                p,
                r,
                bad_loss,
                good_loss,
            }) => Loss::GilbertElliott {
                p: scale_percent(*p),
                r: scale_percent(*r),
                // tc's option is 1-h (loss in the bad state); the kernel keeps h.
                h: u32::MAX - scale_percent(*bad_loss),
                k1: scale_percent(*good_loss),
            },
            Some(LossModel::FourState {
                p13,
                p31,
                p32,
                p23,
                p14,
            }) => Loss::FourState {
                p13: scale_percent(*p13),
                p31: scale_percent(*p31),
                p32: scale_percent(*p32),
                p23: scale_percent(*p23),
                p14: scale_percent(*p14),
            },
        };
        Params {
            latency: i64::try_from(n.delay.as_nanos()).unwrap_or(i64::MAX),
            jitter: i32::try_from(n.jitter.as_nanos()).unwrap_or(i32::MAX),
            dist: dist::table(n.distribution),
            loss: scale_percent(n.loss_percent),
            loss_model,
            duplicate: scale_percent(n.duplicate_percent),
            corrupt: scale_percent(n.corrupt_percent),
            reorder,
            // tc: reordering without a gap reorders any packet.
            gap: if reorder > 0 { n.gap.max(1) } else { n.gap },
            rate: n.rate_bytes_per_sec.unwrap_or(0),
            packet_overhead: n.packet_overhead,
            cell_size: n.cell_size,
            cell_overhead: n.cell_overhead,
            limit: n.limit,
            correlation: Correlations {
                delay: scale_percent(n.delay_correlation),
                loss: scale_percent(n.loss_correlation),
                duplicate: scale_percent(n.duplicate_correlation),
                reorder: scale_percent(n.reorder_correlation),
                corrupt: scale_percent(n.corrupt_correlation),
            },
        }
    }
}

/// netem's correlated random number generator (`get_crandom`): each value is a weighted
/// mean of a fresh random number and the previous value, `rho` being the weight of the
/// previous one.
#[derive(Debug, Clone, Copy)]
struct Crandom {
    last: u32,
    rho: u32,
}

impl Crandom {
    fn new(rho: u32, rng: &mut Rng) -> Crandom {
        Crandom {
            last: rng.next_u32(),
            rho,
        }
    }

    fn next(&mut self, rng: &mut Rng) -> u32 {
        let value = u64::from(rng.next_u32());
        if self.rho == 0 {
            return value as u32;
        }
        let rho = u64::from(self.rho) + 1;
        let answer = ((value * ((1u64 << 32) - rho) + u64::from(self.last) * rho) >> 32) as u32;
        self.last = answer;
        answer
    }
}

// The states of netem's loss generators.
const TX_IN_GAP: u8 = 1;
const TX_IN_BURST: u8 = 2;
const LOST_IN_GAP: u8 = 3;
const LOST_IN_BURST: u8 = 4;
const GOOD: u8 = 1;
const BAD: u8 = 2;

/// The decisions: netem's state apart from its queue.
#[derive(Debug, Clone)]
struct Model {
    params: Params,
    rng: Rng,
    delay_cor: Crandom,
    loss_cor: Crandom,
    dup_cor: Crandom,
    reorder_cor: Crandom,
    corrupt_cor: Crandom,
    /// The Markov chain's state (Gilbert-Elliott or 4-state).
    state: u8,
    /// Packets delayed since the last reordered one.
    counter: u32,
}

impl Model {
    fn new(netem: &Netem, mut rng: Rng) -> Model {
        let params = Params::from(netem);
        let c = params.correlation;
        Model {
            delay_cor: Crandom::new(c.delay, &mut rng),
            loss_cor: Crandom::new(c.loss, &mut rng),
            dup_cor: Crandom::new(c.duplicate, &mut rng),
            reorder_cor: Crandom::new(c.reorder, &mut rng),
            corrupt_cor: Crandom::new(c.corrupt, &mut rng),
            state: initial_state(params.loss_model),
            counter: 0,
            params,
            rng,
        }
    }

    /// `loss_event`: random (with correlation), Gilbert-Elliott or 4-state.
    fn loss_event(&mut self) -> bool {
        let rng = &mut self.rng;
        match self.params.loss_model {
            Loss::Random => self.params.loss > 0 && self.params.loss >= self.loss_cor.next(rng),
            Loss::GilbertElliott { p, r, h, k1 } => match self.state {
                GOOD => {
                    if rng.next_u32() < p {
                        self.state = BAD;
                    }
                    rng.next_u32() < k1
                }
                _ => {
                    if rng.next_u32() < r {
                        self.state = GOOD;
                    }
                    rng.next_u32() > h
                }
            },
            Loss::FourState {
                p13,
                p31,
                p32,
                p23,
                p14,
            } => {
                let rnd = rng.next_u32();
                match self.state {
                    TX_IN_GAP => {
                        if rnd < p14 {
                            self.state = LOST_IN_GAP;
                            true
                        } else if rnd < p13.saturating_add(p14) {
                            self.state = LOST_IN_BURST;
                            true
                        } else {
                            false
                        }
                    }
                    TX_IN_BURST => {
                        if rnd < p23 {
                            self.state = LOST_IN_BURST;
                            true
                        } else {
                            false
                        }
                    }
                    LOST_IN_BURST => {
                        if rnd < p32 {
                            self.state = TX_IN_BURST;
                            false
                        } else if rnd < p31.saturating_add(p32) {
                            self.state = TX_IN_GAP;
                            false
                        } else {
                            true
                        }
                    }
                    _ => {
                        // LOST_IN_GAP: an isolated loss; back to the gap.
                        self.state = TX_IN_GAP;
                        false
                    }
                }
            }
        }
    }

    /// `packet_time_ns`: how long `len` bytes take at the rate, with overhead and cells.
    fn packet_time(&self, len: u64) -> i64 {
        let p = &self.params;
        let mut len = (len as i64 + i64::from(p.packet_overhead)).max(0) as u64;
        if p.cell_size > 0 {
            let cell = u64::from(p.cell_size);
            let cells = len.div_ceil(cell);
            len = (cells as i64 * (i64::from(p.cell_size) + i64::from(p.cell_overhead))).max(0)
                as u64;
        }
        i64::try_from(u128::from(len) * 1_000_000_000 / u128::from(p.rate.max(1)))
            .unwrap_or(i64::MAX)
    }
}

fn initial_state(loss: Loss) -> u8 {
    match loss {
        Loss::GilbertElliott { .. } => GOOD,
        Loss::FourState { .. } => TX_IN_GAP,
        Loss::Random => 0,
    }
}

/// What became of the packets the emulator has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Packets offered (segments of a split frame count once more each).
    pub received: u64,
    /// Packets that left the queue.
    pub sent: u64,
    pub sent_bytes: u64,
    /// Lost by the loss model.
    pub lost: u64,
    /// Dropped because the queue held `limit` packets.
    pub overlimit: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    /// Sent ahead of the delayed ones.
    pub reordered: u64,
}

/// One direction of an impaired link: netem's decisions and its queue.
#[derive(Debug)]
pub struct Emulator<P> {
    model: Model,
    /// Reordered packets: they leave first, newest first (netem's `sch->q`, filled at its
    /// head).
    head: VecDeque<(u64, P)>,
    /// Delayed packets by departure time, then arrival (netem's tfifo).
    tfifo: BTreeMap<(u64, u64), P>,
    arrivals: u64,
    counters: Counters,
}

impl<P: Packet> Emulator<P> {
    /// An emulator with `netem`'s settings, drawing from `rng`.
    pub fn new(netem: &Netem, rng: Rng) -> Emulator<P> {
        Emulator {
            model: Model::new(netem, rng),
            head: VecDeque::new(),
            tfifo: BTreeMap::new(),
            arrivals: 0,
            counters: Counters::default(),
        }
    }

    /// New settings, as netem's `change` applies them: queued packets keep their departure
    /// times, the reorder counter and the correlations start over, and a loss model starts
    /// in its first state. A seed in the settings restarts the random sequence.
    pub fn set(&mut self, netem: &Netem, rng: Option<Rng>) {
        let rng = rng.unwrap_or_else(|| self.model.rng.clone());
        self.model = Model::new(netem, rng);
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Packets waiting (delayed or reordered).
    pub fn len(&self) -> usize {
        self.head.len() + self.tfifo.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the next packet may leave; `None` when the queue is empty. A time in the past
    /// means now.
    pub fn next_departure(&self) -> Option<u64> {
        if let Some((at, _)) = self.head.front() {
            return Some(*at);
        }
        self.tfifo.keys().next().map(|(at, _)| *at)
    }

    /// The next packet whose time has come.
    pub fn dequeue(&mut self, now: u64) -> Option<P> {
        let packet = match self.head.pop_front() {
            Some((_, packet)) => packet,
            None => {
                let entry = self.tfifo.first_entry()?;
                if entry.key().0 > now {
                    return None;
                }
                entry.remove()
            }
        };
        self.counters.sent += 1;
        self.counters.sent_bytes += packet.wire_len();
        Some(packet)
    }

    /// Drops every queued packet (the link went down); returns how many.
    pub fn flush(&mut self) -> usize {
        let n = self.len();
        self.head.clear();
        self.tfifo.clear();
        n
    }

    /// A packet arrives at `now`: netem's `enqueue`.
    pub fn enqueue(&mut self, now: u64, packet: P) {
        self.enqueue_one(now, packet, true);
    }

    fn enqueue_one(&mut self, now: u64, mut packet: P, may_duplicate: bool) {
        self.counters.received += 1;
        let m = &mut self.model;
        let mut count = 1;
        if may_duplicate
            && m.params.duplicate > 0
            && m.params.duplicate >= m.dup_cor.next(&mut m.rng)
        {
            count += 1;
        }
        if m.loss_event() {
            count -= 1;
        }
        if count == 0 {
            self.counters.lost += 1;
            return;
        }
        let copy = (count > 1).then(|| packet.duplicate());
        let mut segments = Vec::new();
        let m = &mut self.model;
        if m.params.corrupt > 0 && m.params.corrupt >= m.corrupt_cor.next(&mut m.rng) {
            if packet.is_segmented() {
                let mut parts = packet.segment().into_iter();
                let Some(first) = parts.next() else {
                    self.counters.lost += 1;
                    return;
                };
                packet = first;
                segments = parts.collect();
            }
            packet.corrupt(&mut self.model.rng);
            self.counters.corrupted += 1;
        }
        if self.len() >= self.model.params.limit as usize {
            self.counters.overlimit += 1 + segments.len() as u64 + u64::from(copy.is_some());
            return;
        }
        if let Some(copy) = copy {
            // Enqueued first, and never duplicated again (netem's `tc_depth`).
            self.counters.duplicated += 1;
            self.enqueue_one(now, copy, false);
        }
        self.schedule(now, packet);
        // The rest of a split frame goes through the whole model again, as netem's
        // `qdisc_enqueue` of each segment does.
        for segment in segments {
            self.enqueue_one(now, segment, true);
        }
    }

    /// Delays the packet, or (one in `gap`, with the reorder probability) sends it ahead.
    fn schedule(&mut self, now: u64, packet: P) {
        let m = &mut self.model;
        let p = &m.params;
        let delayed =
            p.gap == 0 || m.counter < p.gap - 1 || p.reorder < m.reorder_cor.next(&mut m.rng);
        if !delayed {
            m.counter = 0;
            self.counters.reordered += 1;
            self.head.push_front((now, packet));
            return;
        }
        let rnd = if m.params.jitter > 0 {
            m.delay_cor.next(&mut m.rng)
        } else {
            0
        };
        let mut delay = dist::tabledist(m.params.latency, m.params.jitter, rnd, m.params.dist);
        let mut base = now as i64;
        if m.params.rate > 0 {
            if let Some(last) = self.last_departure() {
                // The last packet queued is the reference: this one starts when it is
                // done, and what is left of its own delay is served meanwhile.
                delay = (delay - (last as i64 - now as i64)).max(0);
                base = last as i64;
            }
            delay += self.model.packet_time(packet.wire_len());
        }
        let at = (base + delay).max(0) as u64;
        self.model.counter += 1;
        self.arrivals += 1;
        self.tfifo.insert((at, self.arrivals), packet);
    }

    /// The latest departure time queued (netem compares its queue's tail, tfifo's last).
    fn last_departure(&self) -> Option<u64> {
        let head = self.head.back().map(|(at, _)| *at);
        let tfifo = self.tfifo.keys().next_back().map(|(at, _)| *at);
        head.max(tfifo)
    }
}
