use super::*;

fn check(interval: u64, timeout: u64, retries: u32, start_period: u64) -> HealthCheck {
    HealthCheck {
        probes: Vec::new(),
        interval: Duration::from_millis(interval),
        timeout: Duration::from_millis(timeout),
        retries,
        start_period: Duration::from_millis(start_period),
    }
}

#[test]
fn the_health_deadline_allows_every_round_the_check_allows() {
    // 4 rounds of (200 + 300) ms, after a 1 s start period, plus the slack.
    assert_eq!(
        health_deadline(&check(200, 300, 3, 1000)),
        Duration::from_millis(3000) + HEALTH_SLACK
    );
    // Without retries there is still the one round.
    assert_eq!(
        health_deadline(&check(1000, 2000, 0, 0)),
        Duration::from_secs(3) + HEALTH_SLACK
    );
    // A huge retry count does not overflow the multiplication of the count.
    assert!(health_deadline(&check(1, 1, u32::MAX - 1, 0)) > Duration::from_secs(3600));
}

#[test]
fn probe_output_is_one_short_line() {
    assert_eq!(short_output(None), "no probe output");
    assert_eq!(short_output(Some("\n  \n")), "no probe output");
    assert_eq!(
        short_output(Some("http: connection refused\nexec: exit 1\n")),
        "http: connection refused; exec: exit 1"
    );
    let long = "x".repeat(500);
    let short = short_output(Some(&long));
    assert_eq!(short.chars().count(), OUTPUT_CHARS);
    assert!(short.ends_with('…'));
}

#[test]
fn digests_are_shortened_to_twelve_digits() {
    assert_eq!(
        short_digest(&format!("sha256:{}", "ab".repeat(32))),
        "sha256:abababababab"
    );
    assert_eq!(short_digest("sha256:12"), "sha256:12");
    assert_eq!(short_digest("plain"), "plain");
}
