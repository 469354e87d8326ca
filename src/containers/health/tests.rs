use std::time::Duration;

use super::*;

#[test]
fn a_passing_round_makes_it_healthy_and_retries_failures_unhealthy() {
    let mut tracker = HealthTracker::new(3);
    assert_eq!(tracker.status, Health::Starting);
    assert_eq!(tracker.record(true, false), Some(Health::Healthy));
    assert_eq!(
        tracker.record(true, false),
        None,
        "no change, no transition"
    );
    assert_eq!(tracker.record(false, false), None);
    assert_eq!(tracker.record(false, false), None);
    assert_eq!(tracker.failing_streak, 2);
    assert_eq!(tracker.status, Health::Healthy, "two failures of three");
    assert_eq!(tracker.record(false, false), Some(Health::Unhealthy));
    assert_eq!(tracker.failing_streak, 3);
    assert_eq!(tracker.record(false, false), None, "stays unhealthy");
    assert_eq!(tracker.failing_streak, 4);
    assert_eq!(tracker.record(true, false), Some(Health::Healthy));
    assert_eq!(tracker.failing_streak, 0, "a success resets the streak");
}

#[test]
fn failures_in_the_start_period_do_not_count_but_successes_do() {
    let mut tracker = HealthTracker::new(1);
    for _ in 0..5 {
        assert_eq!(tracker.record(false, true), None);
    }
    assert_eq!(tracker.status, Health::Starting);
    assert_eq!(tracker.failing_streak, 0);
    assert_eq!(tracker.record(true, true), Some(Health::Healthy));
    assert_eq!(
        tracker.record(false, false),
        Some(Health::Unhealthy),
        "retries 1"
    );
}

#[test]
fn zero_retries_behave_as_one() {
    let mut tracker = HealthTracker::new(0);
    assert_eq!(tracker.record(false, false), Some(Health::Unhealthy));
}

#[test]
fn a_check_round_trips_through_launch_json_in_milliseconds() {
    let check = HealthCheck {
        probes: vec![
            HealthProbe::Http {
                url: "http://localhost:8000/".into(),
                status: None,
            },
            HealthProbe::Tcp {
                address: "127.0.0.1:9".into(),
            },
            HealthProbe::Exec {
                command: vec!["/bin/sh".into(), "-c".into(), "test -f /ready".into()],
            },
        ],
        interval: Duration::from_millis(250),
        timeout: Duration::from_secs(2),
        retries: 2,
        start_period: Duration::ZERO,
    };
    let json = serde_json::to_value(&check).unwrap();
    assert_eq!(json["interval"], 250);
    assert_eq!(json["probes"][1]["probe"], "tcp");
    let back: HealthCheck = serde_json::from_value(json).unwrap();
    assert_eq!(back, check);
}

#[test]
fn flags_make_a_check_with_dockers_defaults() {
    assert_eq!(parse_health(&HealthFlags::default()).unwrap(), None);
    let check = parse_health(&HealthFlags {
        cmd: Some("test -f /ready".into()),
        tcp: Some("localhost:8080".into()),
        interval: Some("200ms".into()),
        ..HealthFlags::default()
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        check.probes,
        [
            HealthProbe::Exec {
                command: vec!["/bin/sh".into(), "-c".into(), "test -f /ready".into()]
            },
            HealthProbe::Tcp {
                address: "localhost:8080".into()
            }
        ]
    );
    assert_eq!(check.interval, Duration::from_millis(200));
    assert_eq!(check.timeout, DEFAULT_TIMEOUT);
    assert_eq!(check.retries, 3);
}

#[test]
fn bad_flags_are_refused_before_anything_runs() {
    let refused = |flags: HealthFlags| parse_health(&flags).unwrap_err().to_string();
    assert!(
        refused(HealthFlags {
            http: Some("https://x/".into()),
            ..HealthFlags::default()
        })
        .contains("--health-http")
    );
    assert!(
        refused(HealthFlags {
            tcp: Some("localhost".into()),
            ..HealthFlags::default()
        })
        .contains("--health-tcp")
    );
    assert!(
        refused(HealthFlags {
            cmd: Some("true".into()),
            interval: Some("soon".into()),
            ..HealthFlags::default()
        })
        .contains("--health-interval")
    );
    assert!(
        refused(HealthFlags {
            retries: Some(2),
            ..HealthFlags::default()
        })
        .contains("give a probe")
    );
}
