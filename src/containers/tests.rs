use super::*;

#[test]
fn volumes_parse_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().display().to_string();
    let v = parse_volume(&format!("{src}:/data:ro")).unwrap();
    assert_eq!((v.destination.as_str(), v.read_only), ("/data", true));
    assert!(!parse_volume(&format!("{src}:/data")).unwrap().read_only);
    for bad in [
        src.clone(),
        format!("{src}:data"),
        format!("{src}:/data:rx"),
        "/no/such/dir:/data".to_string(),
        format!("{src}:/a:ro:x"),
    ] {
        assert!(parse_volume(&bad).is_err(), "{bad}");
    }
}

#[test]
fn a_missing_volume_source_says_how_to_make_it() {
    let err = parse_volume("/no/such/dir:/data").unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad volume `/no/such/dir:/data`: source `/no/such/dir` does not exist"
    );
    assert_eq!(
        crate::causes::help(&err).as_deref(),
        Some(
            "create it first (`mkdir -p /no/such/dir`), or correct the path; a relative source is taken from the current directory"
        )
    );
    let err = parse_volume("/tmp:data").unwrap_err();
    assert_eq!(
        crate::causes::help(&err).as_deref(),
        Some("write it from the container's root, e.g. /tmp:/data")
    );
}

#[test]
fn memory_limits_parse_with_units() {
    assert_eq!(parse_memory("64MiB").unwrap(), 64 * 1024 * 1024);
    assert_eq!(parse_memory("67108864").unwrap(), 64 * 1024 * 1024);
    assert!(parse_memory("1k").is_err(), "below the minimum");
    assert!(parse_memory("lots").is_err());
}

#[test]
fn cgroup_names_separate_state_roots() {
    let id = crate::state::ContainerId::parse(&"ab".repeat(32)).unwrap();
    let a = cgroup_name(std::path::Path::new("/tmp/a"), &id);
    let b = cgroup_name(std::path::Path::new("/tmp/b"), &id);
    assert_ne!(a, b);
    assert!(
        a.starts_with("kiln/") && a.ends_with("/abababababab"),
        "{a}"
    );
}

#[test]
fn since_takes_durations_and_rfc3339_times() {
    let now = 1_700_000_000_000_000_000u128;
    assert_eq!(parse_since("10s", now).unwrap(), now - 10_000_000_000);
    assert_eq!(parse_since("1h30m", now).unwrap(), now - 5_400_000_000_000);
    assert_eq!(
        parse_since("2023-11-14T22:13:20Z", 0).unwrap(),
        1_700_000_000_000_000_000
    );
    assert_eq!(
        parse_since("2023-11-14T22:13:20.5Z", 0).unwrap(),
        1_700_000_000_500_000_000
    );
    assert_eq!(
        parse_since("2023-11-15T00:13:20+02:00", 0).unwrap(),
        1_700_000_000_000_000_000
    );
    assert_eq!(parse_since("1970-01-01T00:00:00Z", 0).unwrap(), 0);
    for bad in [
        "yesterday",
        "2023-13-01T00:00:00Z",
        "2023-11-14T22:13:20",
        "",
    ] {
        assert!(parse_since(bad, now).is_err(), "{bad}");
    }
}

#[test]
fn signals_parse_by_name_or_number() {
    use nix::sys::signal::Signal;
    assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
    assert_eq!(parse_signal("sigkill").unwrap(), Signal::SIGKILL);
    assert_eq!(parse_signal("SIGQUIT").unwrap(), Signal::SIGQUIT);
    assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
    assert!(parse_signal("NOPE").is_err());
    assert!(parse_signal("999").is_err());
}

#[test]
fn caught_signals_come_from_sigcgt() {
    use nix::sys::signal::Signal;
    let status = "Name:\\tsh\\nSigIgn:\\t0000000000000004\\nSigCgt:\\t0000000000004002\\n"
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    assert_eq!(
        super::control::caught_in(&status, Signal::SIGTERM),
        Some(true)
    );
    assert_eq!(
        super::control::caught_in(&status, Signal::SIGINT),
        Some(true)
    );
    assert_eq!(
        super::control::caught_in(&status, Signal::SIGQUIT),
        Some(false)
    );
    assert_eq!(
        super::control::caught_in("Name:\tsh\n", Signal::SIGTERM),
        None
    );
}
