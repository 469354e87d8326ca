//! Delay distributions as netem has them: a table of 4096 signed 16-bit values, the inverse
//! of the distribution's cumulative function sampled at evenly spaced probabilities and
//! scaled by [`SCALE`] (one standard deviation = 8192), and `tabledist`, which turns a
//! uniform random number into a delay with mean `mu` and spread `sigma`.
//!
//! The tables are computed here, from the same definitions iproute2's generators use
//! (`normal`, `pareto` with a = 3, and `paretonormal` = (normal + 3 × pareto) / 4), rather
//! than shipped as data files; the kernel receives the same numbers (`TCA_NETEM_DELAY_DIST`).
//!
//! Pure: no I/O.

use std::sync::OnceLock;

use super::Distribution;

/// netem's `NETEM_DIST_SCALE`: table values are standard deviations × 8192.
pub const SCALE: i64 = 8192;

/// Entries per table, as iproute2 makes them.
pub const TABLE_SIZE: usize = 4096;

/// The table of a distribution; `None` for uniform (netem uses no table for it).
pub fn table(distribution: Distribution) -> Option<&'static [i16]> {
    static NORMAL: OnceLock<Vec<i16>> = OnceLock::new();
    static PARETO: OnceLock<Vec<i16>> = OnceLock::new();
    static PARETONORMAL: OnceLock<Vec<i16>> = OnceLock::new();
    match distribution {
        Distribution::Uniform => None,
        Distribution::Normal => {
            Some(NORMAL.get_or_init(|| (0..TABLE_SIZE).map(|i| clamp16(normal_value(i))).collect()))
        }
        Distribution::Pareto => {
            Some(PARETO.get_or_init(|| (0..TABLE_SIZE).map(|i| clamp16(pareto_value(i))).collect()))
        }
        Distribution::Paretonormal => Some(PARETONORMAL.get_or_init(|| {
            (0..TABLE_SIZE)
                .map(|i| {
                    // C's integer division truncates toward zero, as Rust's does.
                    clamp16((normal_value(i) + 3 * pareto_value(i)) / 4)
                })
                .collect()
        })),
    }
}

fn clamp16(value: i64) -> i16 {
    value.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
}

/// Entry `i` of the normal table: the largest x whose rounded CDF × 16384 is 4i, i.e. the
/// inverse CDF at (4i + ½) / 16384, scaled and rounded.
fn normal_value(i: usize) -> i64 {
    let p = (4.0 * i as f64 + 0.5) / 16384.0;
    (inverse_normal_cdf(p) * SCALE as f64).round() as i64
}

/// Entry `i` of the Pareto table (a = 3, shifted to mean 0): probabilities from 1 down.
fn pareto_value(i: usize) -> i64 {
    let u = (65536 - 16 * i) as f64 / 65536.0;
    let value = (u.powf(-1.0 / 3.0) - 1.5) * (4.0 / 3.0) * SCALE as f64;
    value.min(32767.0).round() as i64
}

/// The standard normal distribution's quantile function (Acklam's rational
/// approximation, relative error below 1.2e-9).
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// netem's `tabledist`: a value with mean `mu` and spread `sigma` (ns) from the uniform
/// random `rnd`. Without a table the value is uniform in `[mu - sigma, mu + sigma)`.
pub fn tabledist(mu: i64, sigma: i32, rnd: u32, table: Option<&[i16]>) -> i64 {
    if sigma <= 0 {
        return mu;
    }
    let Some(table) = table else {
        let span = 2 * u64::from(sigma.unsigned_abs());
        return (u64::from(rnd) % span) as i64 + mu - i64::from(sigma);
    };
    let t = i64::from(table[rnd as usize % table.len()]);
    let sigma = i64::from(sigma);
    let mut x = (sigma % SCALE) * t;
    if x >= 0 {
        x += SCALE / 2;
    } else {
        x -= SCALE / 2;
    }
    x / SCALE + (sigma / SCALE) * t + mu
}
