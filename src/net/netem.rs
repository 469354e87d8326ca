//! Netem: the kernel's network emulator qdisc, and the byte encoding of its options.
//!
//! netlink-packet-route has no netem type, so kiln writes the `TCA_OPTIONS` payload itself,
//! as iproute2's `q_netem.c` does: a `struct tc_netem_qopt` (six u32: latency, limit, loss,
//! gap, duplicate, jitter; times in psched ticks) followed directly by netlink attributes
//! (not nested): `TCA_NETEM_LATENCY64`/`JITTER64` (ns, exact), `CORR`, `REORDER`,
//! `CORRUPT`, `RATE`, and when used `RATE64`, `LOSS` (nested: the Gilbert-Elliott or
//! 4-state model), `DELAY_DIST` (the distribution's table) and `PRNG_SEED`. Probabilities
//! are u32 scaled so that `u32::MAX` is 100%.
//!
//! The kernel's `netem_change` keeps attributes that a replace leaves out, so every encoding
//! carries all of them (zero means "off"): replacing an impairment never inherits old
//! values — except a delay distribution, which only a new qdisc forgets.
//!
//! [`Netem`] is also what kiln's own engine (`net::engine`) applies: one description of an
//! impairment, two engines. So are the delay distributions' tables ([`dist`]): the kernel
//! receives them, the engine draws from them.
//!
//! Pure: no I/O except [`Psched::read`]. It knows nothing of kiln.kdl: the project turns the
//! language's `impair` into a [`Netem`] (`project::plan::netem`).

use std::time::Duration;

use super::NetError;

pub mod dist;

const TCA_NETEM_CORR: u16 = 1;
const TCA_NETEM_DELAY_DIST: u16 = 2;
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_LOSS: u16 = 5;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
const TCA_NETEM_PRNG_SEED: u16 = 14;
const NETEM_LOSS_GI: u16 = 1;
const NETEM_LOSS_GE: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;

/// `sizeof(struct tc_netem_qopt)`.
const QOPT_LEN: usize = 24;

/// tc's default queue length for netem (packets).
pub const DEFAULT_LIMIT: u32 = 1000;

/// How jitter is spread around the delay (tc's `distribution`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Evenly between delay - jitter and delay + jitter (netem's default).
    #[default]
    Uniform,
    Normal,
    Pareto,
    Paretonormal,
}

impl Distribution {
    pub const NAMES: &'static [&'static str] = &["uniform", "normal", "pareto", "paretonormal"];

    pub fn name(self) -> &'static str {
        Distribution::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Distribution> {
        [
            Distribution::Uniform,
            Distribution::Normal,
            Distribution::Pareto,
            Distribution::Paretonormal,
        ]
        .into_iter()
        .find(|d| d.name() == name)
    }
}

/// A loss model with memory (tc's `loss gemodel` and `loss state`); percentages.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum LossModel {
    /// Gilbert-Elliott: a good and a bad state; `p` moves from good to bad, `r` back;
    /// `bad_loss` (tc's 1-h) and `good_loss` (tc's 1-k) are the loss in each state.
    GilbertElliott {
        p: f64,
        r: f64,
        bad_loss: f64,
        good_loss: f64,
    },
    /// The 4-state Markov model (Salsano et al.): 1 = received in a gap, 2 = received in a
    /// burst, 3 = lost in a burst, 4 = isolated loss; `pXY` moves from state X to Y.
    FourState {
        p13: f64,
        p31: f64,
        p32: f64,
        p23: f64,
        p14: f64,
    },
}

/// A netem configuration in human units: what either engine (the kernel's qdisc or
/// kiln's own) applies to each direction of a link.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Netem {
    pub delay: Duration,
    pub jitter: Duration,
    /// How much each random delay depends on the previous one (percent).
    #[serde(default)]
    pub delay_correlation: f64,
    #[serde(default)]
    pub distribution: Distribution,
    pub loss_percent: f64,
    #[serde(default)]
    pub loss_correlation: f64,
    /// Replaces `loss_percent` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_model: Option<LossModel>,
    /// Bytes per second; `None` is unlimited.
    pub rate_bytes_per_sec: Option<u64>,
    /// Bytes added to (or, negative, taken from) each packet by the rate limiter.
    #[serde(default)]
    pub packet_overhead: i32,
    /// Packets are sent in cells of this many bytes (0: no cells), each with
    /// `cell_overhead` more bytes.
    #[serde(default)]
    pub cell_size: u32,
    #[serde(default)]
    pub cell_overhead: i32,
    pub corrupt_percent: f64,
    #[serde(default)]
    pub corrupt_correlation: f64,
    pub duplicate_percent: f64,
    #[serde(default)]
    pub duplicate_correlation: f64,
    pub reorder_percent: f64,
    #[serde(default)]
    pub reorder_correlation: f64,
    /// One packet in `gap` may be reordered (0: tc's default, 1).
    #[serde(default)]
    pub gap: u32,
    /// Queue length in packets.
    pub limit: u32,
    /// The random generator's seed: the same seed, the same losses and delays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for Netem {
    fn default() -> Netem {
        Netem {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            delay_correlation: 0.0,
            distribution: Distribution::Uniform,
            loss_percent: 0.0,
            loss_correlation: 0.0,
            loss_model: None,
            rate_bytes_per_sec: None,
            packet_overhead: 0,
            cell_size: 0,
            cell_overhead: 0,
            corrupt_percent: 0.0,
            corrupt_correlation: 0.0,
            duplicate_percent: 0.0,
            duplicate_correlation: 0.0,
            reorder_percent: 0.0,
            reorder_correlation: 0.0,
            gap: 0,
            limit: DEFAULT_LIMIT,
            seed: None,
        }
    }
}

/// The kernel's packet scheduler clock, from `/proc/net/psched`: how many ticks make a
/// microsecond (15.625 on every current kernel: a tick is 64 ns).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Psched {
    ticks_per_usec: f64,
}

impl Psched {
    pub const PATH: &'static str = "/proc/net/psched";

    /// Reads the calling thread's `/proc/net/psched` (the clock is the same in every
    /// namespace).
    pub fn read() -> Result<Psched, NetError> {
        let io_error = |cause| NetError::Io {
            path: Psched::PATH.into(),
            cause,
        };
        let text = std::fs::read_to_string(Psched::PATH).map_err(io_error)?;
        Psched::parse(&text).ok_or_else(|| {
            io_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected contents {text:?}"),
            ))
        })
    }

    /// iproute2's `tc_core_init`: `t2us us2t clock_res hz`, in hex.
    pub fn parse(text: &str) -> Option<Psched> {
        let fields: Vec<u32> = text
            .split_whitespace()
            .map(|f| u32::from_str_radix(f, 16).ok())
            .collect::<Option<_>>()?;
        let [t2us, us2t, clock_res, ..] = fields[..] else {
            return None;
        };
        if t2us == 0 || us2t == 0 || clock_res == 0 {
            return None;
        }
        // A clock of 1 GHz means the ticks are nanoseconds already scaled by us2t.
        let t2us = if clock_res == 1_000_000_000 {
            us2t
        } else {
            t2us
        };
        let clock_factor = f64::from(clock_res) / 1_000_000.0;
        Some(Psched {
            ticks_per_usec: f64::from(t2us) / f64::from(us2t) * clock_factor,
        })
    }

    /// `tc_core_time2tick`, saturating at `u32::MAX` (the 64-bit attributes carry the exact
    /// value).
    pub fn ticks(&self, time: Duration) -> u32 {
        let ticks = time.as_secs_f64() * 1e6 * self.ticks_per_usec;
        if ticks >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            ticks as u32
        }
    }

    pub fn time(&self, ticks: u32) -> Duration {
        Duration::from_secs_f64(f64::from(ticks) / self.ticks_per_usec / 1e6)
    }
}

impl Netem {
    /// Every percentage with its name (for validation and display).
    fn percentages(&self) -> Vec<(&'static str, f64)> {
        let mut all = vec![
            ("loss", self.loss_percent),
            ("corrupt", self.corrupt_percent),
            ("duplicate", self.duplicate_percent),
            ("reorder", self.reorder_percent),
            ("delay correlation", self.delay_correlation),
            ("loss correlation", self.loss_correlation),
            ("corrupt correlation", self.corrupt_correlation),
            ("duplicate correlation", self.duplicate_correlation),
            ("reorder correlation", self.reorder_correlation),
        ];
        match &self.loss_model {
            None => {}
            Some(LossModel::GilbertElliott {
                p,
                r,
                bad_loss,
                good_loss,
            }) => all.extend([
                ("gilbert-elliott p", *p),
                ("gilbert-elliott r", *r),
                ("gilbert-elliott bad-loss", *bad_loss),
                ("gilbert-elliott good-loss", *good_loss),
            ]),
            Some(LossModel::FourState {
                p13,
                p31,
                p32,
                p23,
                p14,
            }) => all.extend([
                ("four-state p13", *p13),
                ("four-state p31", *p31),
                ("four-state p32", *p32),
                ("four-state p23", *p23),
                ("four-state p14", *p14),
            ]),
        }
        all
    }

    /// Refuses what the kernel would refuse or silently ignore.
    pub fn validate(&self) -> Result<(), NetError> {
        let invalid = |reason: String| Err(NetError::InvalidNetem { reason });
        for (what, value) in self.percentages() {
            if !(0.0..=100.0).contains(&value) {
                return invalid(format!("{what} {value}% is not between 0% and 100%"));
            }
        }
        if self.reorder_percent > 0.0 && self.delay.is_zero() {
            return invalid("reordering needs a delay (packets overtake delayed ones)".into());
        }
        if self.gap > 0 && self.reorder_percent == 0.0 {
            return invalid("a reorder gap needs a reorder probability".into());
        }
        if self.distribution != Distribution::Uniform && self.jitter.is_zero() {
            return invalid("a delay distribution needs a jitter".into());
        }
        if self.loss_model.is_some() && self.loss_percent > 0.0 {
            return invalid("random loss and a loss model exclude each other".into());
        }
        if self.limit == 0 {
            return invalid("a queue limit of 0 drops every packet".into());
        }
        for (what, value) in [("delay", self.delay), ("jitter", self.jitter)] {
            if value.as_nanos() > i64::MAX as u128 {
                return invalid(format!("{what} {value:?} is too long"));
            }
        }
        Ok(())
    }

    /// The `TCA_OPTIONS` payload of a `netem` qdisc.
    pub fn encode(&self, psched: &Psched) -> Result<Vec<u8>, NetError> {
        self.validate()?;
        let reorder = scale_percent(self.reorder_percent);
        // iproute2: reordering without a gap means "every packet may be reordered".
        let gap: u32 = if reorder > 0 { self.gap.max(1) } else { 0 };
        let mut out = Vec::with_capacity(QOPT_LEN + 80);
        for field in [
            psched.ticks(self.delay),
            self.limit,
            scale_percent(self.loss_percent),
            gap,
            scale_percent(self.duplicate_percent),
            psched.ticks(self.jitter),
        ] {
            out.extend_from_slice(&field.to_ne_bytes());
        }
        attr(
            &mut out,
            TCA_NETEM_LATENCY64,
            &(self.delay.as_nanos() as i64).to_ne_bytes(),
        );
        attr(
            &mut out,
            TCA_NETEM_JITTER64,
            &(self.jitter.as_nanos() as i64).to_ne_bytes(),
        );
        // struct tc_netem_corr { u32 delay_corr, loss_corr, dup_corr }
        attr(
            &mut out,
            TCA_NETEM_CORR,
            &words(&[
                scale_percent(self.delay_correlation),
                scale_percent(self.loss_correlation),
                scale_percent(self.duplicate_correlation),
            ]),
        );
        attr(
            &mut out,
            TCA_NETEM_REORDER,
            &words(&[reorder, scale_percent(self.reorder_correlation)]),
        );
        attr(
            &mut out,
            TCA_NETEM_CORRUPT,
            &words(&[
                scale_percent(self.corrupt_percent),
                scale_percent(self.corrupt_correlation),
            ]),
        );
        let rate = self.rate_bytes_per_sec.unwrap_or(0);
        if rate > u64::from(u32::MAX) {
            attr(&mut out, TCA_NETEM_RATE64, &rate.to_ne_bytes());
        }
        // struct tc_netem_rate { u32 rate; s32 packet_overhead; u32 cell_size; s32 cell_overhead }
        attr(
            &mut out,
            TCA_NETEM_RATE,
            &words(&[
                u32::try_from(rate).unwrap_or(u32::MAX),
                self.packet_overhead as u32,
                self.cell_size,
                self.cell_overhead as u32,
            ]),
        );
        if let Some(model) = &self.loss_model {
            // Nested: NETEM_LOSS_GI { p13, p31, p32, p14, p23 } or NETEM_LOSS_GE { p, r, h, k1 }.
            let mut nested = Vec::new();
            match model {
                LossModel::FourState {
                    p13,
                    p31,
                    p32,
                    p23,
                    p14,
                } => attr(
                    &mut nested,
                    NETEM_LOSS_GI,
                    &words(&[
                        scale_percent(*p13),
                        scale_percent(*p31),
                        scale_percent(*p32),
                        scale_percent(*p14),
                        scale_percent(*p23),
                    ]),
                ),
                LossModel::GilbertElliott {
                    p,
                    r,
                    bad_loss,
                    good_loss,
                } => attr(
                    &mut nested,
                    NETEM_LOSS_GE,
                    &words(&[
                        scale_percent(*p),
                        scale_percent(*r),
                        u32::MAX - scale_percent(*bad_loss),
                        scale_percent(*good_loss),
                    ]),
                ),
            }
            attr(&mut out, TCA_NETEM_LOSS | NLA_F_NESTED, &nested);
        }
        if let Some(table) = dist::table(self.distribution) {
            let bytes: Vec<u8> = table.iter().flat_map(|v| v.to_ne_bytes()).collect();
            attr(&mut out, TCA_NETEM_DELAY_DIST, &bytes);
        }
        if let Some(seed) = self.seed {
            attr(&mut out, TCA_NETEM_PRNG_SEED, &seed.to_ne_bytes());
        }
        Ok(out)
    }

    /// Reads back a `TCA_OPTIONS` payload (as the kernel dumps it); `None` when it is not
    /// netem's layout. The delay distribution is not dumped by the kernel: it reads back
    /// as uniform.
    pub fn decode(bytes: &[u8], psched: &Psched) -> Option<Netem> {
        let qopt = bytes.get(..QOPT_LEN)?;
        let field = |i: usize| u32::from_ne_bytes(qopt[i * 4..i * 4 + 4].try_into().unwrap());
        let mut netem = Netem {
            delay: psched.time(field(0)),
            limit: field(1),
            loss_percent: unscale_percent(field(2)),
            gap: field(3),
            duplicate_percent: unscale_percent(field(4)),
            jitter: psched.time(field(5)),
            ..Netem::default()
        };
        let mut rate64 = None;
        for (kind, payload) in attributes(&bytes[QOPT_LEN..])? {
            let u32_at = |i: usize| {
                payload
                    .get(i * 4..i * 4 + 4)
                    .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
            };
            let u64_at0 = || {
                payload
                    .get(..8)
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
            };
            let percent_at = |i: usize| u32_at(i).map(unscale_percent);
            match kind {
                TCA_NETEM_LATENCY64 => netem.delay = Duration::from_nanos(u64_at0()?),
                TCA_NETEM_JITTER64 => netem.jitter = Duration::from_nanos(u64_at0()?),
                TCA_NETEM_CORR => {
                    netem.delay_correlation = percent_at(0)?;
                    netem.loss_correlation = percent_at(1)?;
                    netem.duplicate_correlation = percent_at(2)?;
                }
                TCA_NETEM_REORDER => {
                    netem.reorder_percent = percent_at(0)?;
                    netem.reorder_correlation = percent_at(1)?;
                }
                TCA_NETEM_CORRUPT => {
                    netem.corrupt_percent = percent_at(0)?;
                    netem.corrupt_correlation = percent_at(1)?;
                }
                TCA_NETEM_RATE => {
                    let rate = u32_at(0)?;
                    netem.rate_bytes_per_sec = (rate > 0).then_some(u64::from(rate));
                    netem.packet_overhead = u32_at(1)? as i32;
                    netem.cell_size = u32_at(2)?;
                    netem.cell_overhead = u32_at(3)? as i32;
                }
                TCA_NETEM_RATE64 => rate64 = Some(u64_at0()?),
                TCA_NETEM_PRNG_SEED => netem.seed = Some(u64_at0()?),
                TCA_NETEM_LOSS => {
                    for (model, values) in attributes(&payload)? {
                        let word = |i: usize| {
                            values
                                .get(i * 4..i * 4 + 4)
                                .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
                        };
                        let pct = |i: usize| word(i).map(unscale_percent);
                        netem.loss_model = match model {
                            NETEM_LOSS_GI => Some(LossModel::FourState {
                                p13: pct(0)?,
                                p31: pct(1)?,
                                p32: pct(2)?,
                                p14: pct(3)?,
                                p23: pct(4)?,
                            }),
                            NETEM_LOSS_GE => Some(LossModel::GilbertElliott {
                                p: pct(0)?,
                                r: pct(1)?,
                                bad_loss: unscale_percent(u32::MAX - word(2)?),
                                good_loss: pct(3)?,
                            }),
                            _ => netem.loss_model,
                        };
                    }
                }
                _ => {}
            }
        }
        if netem.reorder_percent == 0.0 || netem.gap == 1 {
            // tc's default gap (1) is no gap given.
            netem.gap = 0;
        }
        if let Some(rate) = rate64 {
            netem.rate_bytes_per_sec = Some(rate);
        }
        Some(netem)
    }
}

/// The attributes of a netlink payload: (type without flags, payload).
fn attributes(mut rest: &[u8]) -> Option<Vec<(u16, Vec<u8>)>> {
    let mut out = Vec::new();
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        out.push((kind, rest.get(4..len)?.to_vec()));
        rest = rest.get(align4(len)..).unwrap_or(&[]);
    }
    Some(out)
}

/// u32 fields in native byte order, as the kernel's structs lay them out.
fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// Percent (0..=100) to the kernel's u32 scale, rounded as iproute2's `rint` does.
pub fn scale_percent(percent: f64) -> u32 {
    (percent / 100.0 * f64::from(u32::MAX)).round() as u32
}

pub fn unscale_percent(value: u32) -> f64 {
    f64::from(value) * 100.0 / f64::from(u32::MAX)
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Appends one netlink attribute (header + payload, padded to 4 bytes).
fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + align4(len) - len, 0);
}
