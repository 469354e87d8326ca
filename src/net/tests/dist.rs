use crate::net::netem::Distribution;
use crate::net::netem::dist::{TABLE_SIZE, inverse_normal_cdf, table, tabledist};

fn mean_and_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[test]
fn the_inverse_normal_is_right_at_known_points() {
    assert!(inverse_normal_cdf(0.5).abs() < 1e-9);
    assert!((inverse_normal_cdf(0.975) - 1.959_964).abs() < 1e-5);
    assert!((inverse_normal_cdf(0.001) + 3.090_232).abs() < 1e-5);
}

#[test]
fn tables_have_netems_shape() {
    assert!(table(Distribution::Uniform).is_none());
    let normal = table(Distribution::Normal).unwrap();
    assert_eq!(normal.len(), TABLE_SIZE);
    // Sorted (an inverse CDF), clamped at the ends, symmetric, one sigma = 8192.
    assert!(normal.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(normal[0], i16::MIN);
    assert!((i32::from(normal[TABLE_SIZE / 2])).abs() < 10);
    let (mean, sd) = mean_and_sd(&normal.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
    assert!(mean.abs() < 40.0, "{mean}");
    assert!((sd - 8192.0).abs() < 100.0, "{sd}");
    // Pareto: a long right tail, capped at i16::MAX, mean near 0.
    let pareto = table(Distribution::Pareto).unwrap();
    assert_eq!(pareto.len(), TABLE_SIZE);
    assert_eq!(pareto[0], -5461);
    assert_eq!(*pareto.last().unwrap(), i16::MAX);
    let paretonormal = table(Distribution::Paretonormal).unwrap();
    assert_eq!(paretonormal.len(), TABLE_SIZE);
    assert_eq!(
        i32::from(paretonormal[100]),
        (i32::from(normal[100]) + 3 * i32::from(pareto[100])) / 4
    );
}

#[test]
fn tabledist_spreads_around_mu() {
    // Uniform: [mu - sigma, mu + sigma).
    assert_eq!(tabledist(1000, 0, 12345, None), 1000);
    assert_eq!(tabledist(1000, 100, 0, None), 900);
    assert_eq!(tabledist(1000, 100, 199, None), 1099);
    // Table: t = table[rnd % size]; one table step of 8192 = one sigma.
    let normal = table(Distribution::Normal).unwrap();
    let sigma = 5_000_000; // 5 ms
    let at = |i: u32| tabledist(30_000_000, sigma, i, Some(normal));
    let expected = 30_000_000 + i64::from(normal[3000]) * i64::from(sigma) / 8192;
    assert!((at(3000) - expected).abs() <= 1, "{} {expected}", at(3000));
}
