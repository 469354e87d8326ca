//! Netem: the kernel's network emulator qdisc, and the byte encoding of its options.
//!
//! netlink-packet-route has no netem type, so kiln writes the `TCA_OPTIONS` payload itself,
//! as iproute2's `q_netem.c` does: a `struct tc_netem_qopt` (six u32: latency, limit, loss,
//! gap, duplicate, jitter; times in psched ticks) followed directly by netlink attributes
//! (not nested): `TCA_NETEM_LATENCY64`/`JITTER64` (ns, exact), `REORDER`, `CORRUPT`, `RATE`
//! and `RATE64`. Probabilities are u32 scaled so that `u32::MAX` is 100%.
//!
//! The kernel's `netem_change` keeps attributes that a replace leaves out, so every encoding
//! carries all of them (zero means "off"): replacing an impairment never inherits old values.
//!
//! Pure: no I/O except [`Psched::read`]. It knows nothing of kiln.kdl: the project turns the
//! language's `impair` into a [`Netem`] (`project::plan::netem`).

use std::time::Duration;

use super::NetError;

const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;

/// `sizeof(struct tc_netem_qopt)`.
const QOPT_LEN: usize = 24;

/// tc's default queue length for netem (packets).
pub const DEFAULT_LIMIT: u32 = 1000;

/// A netem configuration in human units.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Netem {
    pub delay: Duration,
    pub jitter: Duration,
    pub loss_percent: f64,
    /// Bytes per second; `None` is unlimited.
    pub rate_bytes_per_sec: Option<u64>,
    pub corrupt_percent: f64,
    pub duplicate_percent: f64,
    pub reorder_percent: f64,
    /// Queue length in packets.
    pub limit: u32,
}

impl Default for Netem {
    fn default() -> Netem {
        Netem {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss_percent: 0.0,
            rate_bytes_per_sec: None,
            corrupt_percent: 0.0,
            duplicate_percent: 0.0,
            reorder_percent: 0.0,
            limit: DEFAULT_LIMIT,
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
    /// Refuses what the kernel would refuse or silently ignore.
    pub fn validate(&self) -> Result<(), NetError> {
        let invalid = |reason: String| Err(NetError::InvalidNetem { reason });
        for (what, value) in [
            ("loss", self.loss_percent),
            ("corrupt", self.corrupt_percent),
            ("duplicate", self.duplicate_percent),
            ("reorder", self.reorder_percent),
        ] {
            if !(0.0..=100.0).contains(&value) {
                return invalid(format!("{what} {value}% is not between 0% and 100%"));
            }
        }
        if self.reorder_percent > 0.0 && self.delay.is_zero() {
            return invalid("reordering needs a delay (packets overtake delayed ones)".into());
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
        let gap: u32 = if reorder > 0 { 1 } else { 0 };
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
        attr(&mut out, TCA_NETEM_REORDER, &probability(reorder));
        attr(
            &mut out,
            TCA_NETEM_CORRUPT,
            &probability(scale_percent(self.corrupt_percent)),
        );
        let rate = self.rate_bytes_per_sec.unwrap_or(0);
        if rate > u64::from(u32::MAX) {
            attr(&mut out, TCA_NETEM_RATE64, &rate.to_ne_bytes());
        }
        // struct tc_netem_rate { u32 rate; s32 packet_overhead; u32 cell_size; s32 cell_overhead }
        let mut tc_rate = [0u8; 16];
        tc_rate[..4].copy_from_slice(&u32::try_from(rate).unwrap_or(u32::MAX).to_ne_bytes());
        attr(&mut out, TCA_NETEM_RATE, &tc_rate);
        Ok(out)
    }

    /// Reads back a `TCA_OPTIONS` payload (as the kernel dumps it); `None` when it is not
    /// netem's layout.
    pub fn decode(bytes: &[u8], psched: &Psched) -> Option<Netem> {
        let qopt = bytes.get(..QOPT_LEN)?;
        let field = |i: usize| u32::from_ne_bytes(qopt[i * 4..i * 4 + 4].try_into().unwrap());
        let mut netem = Netem {
            delay: psched.time(field(0)),
            limit: field(1),
            loss_percent: unscale_percent(field(2)),
            duplicate_percent: unscale_percent(field(4)),
            jitter: psched.time(field(5)),
            ..Netem::default()
        };
        let mut rate64 = None;
        let mut rest = &bytes[QOPT_LEN..];
        while rest.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
            let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
            let payload = rest.get(4..len)?;
            let u32_at = |i: usize| {
                payload
                    .get(i..i + 4)
                    .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
            };
            let u64_at0 = || {
                payload
                    .get(..8)
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
            };
            match kind {
                TCA_NETEM_LATENCY64 => netem.delay = Duration::from_nanos(u64_at0()?),
                TCA_NETEM_JITTER64 => netem.jitter = Duration::from_nanos(u64_at0()?),
                TCA_NETEM_REORDER => netem.reorder_percent = unscale_percent(u32_at(0)?),
                TCA_NETEM_CORRUPT => netem.corrupt_percent = unscale_percent(u32_at(0)?),
                TCA_NETEM_RATE => {
                    let rate = u32_at(0)?;
                    netem.rate_bytes_per_sec = (rate > 0).then_some(u64::from(rate));
                }
                TCA_NETEM_RATE64 => rate64 = Some(u64_at0()?),
                _ => {}
            }
            rest = rest.get(align4(len)..).unwrap_or(&[]);
        }
        if let Some(rate) = rate64 {
            netem.rate_bytes_per_sec = Some(rate);
        }
        Some(netem)
    }
}

/// Percent (0..=100) to the kernel's u32 scale, rounded as iproute2's `rint` does.
pub fn scale_percent(percent: f64) -> u32 {
    (percent / 100.0 * f64::from(u32::MAX)).round() as u32
}

pub fn unscale_percent(value: u32) -> f64 {
    f64::from(value) * 100.0 / f64::from(u32::MAX)
}

/// `struct tc_netem_corrupt` / `tc_netem_reorder`: probability, correlation (0).
fn probability(value: u32) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&value.to_ne_bytes());
    bytes
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
