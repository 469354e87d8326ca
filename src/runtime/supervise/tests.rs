use std::time::Duration;

use super::*;

#[test]
fn restart_policies_parse_and_decide_like_docker() {
    let p = |t: &str| RestartPolicy::parse(t).unwrap();
    assert_eq!(p("on-failure:3"), RestartPolicy::OnFailure { max: Some(3) });
    assert_eq!(p("on-failure:3").to_string(), "on-failure:3");
    assert!(RestartPolicy::parse("sometimes").is_err());
    assert!(RestartPolicy::parse("always:2").is_err());
    assert!(RestartPolicy::parse("on-failure:x").is_err());

    let failed = ExitReason::Exited(1);
    let ok = ExitReason::Exited(0);
    assert!(!p("no").should_restart(failed, 0));
    assert!(p("always").should_restart(ok, 100));
    assert!(!p("always").should_restart(ExitReason::StoppedByUser, 0));
    assert!(p("on-failure").should_restart(failed, 1000));
    assert!(!p("on-failure").should_restart(ok, 0));
    assert!(p("on-failure:3").should_restart(failed, 2));
    assert!(!p("on-failure:3").should_restart(failed, 3));
    assert!(p("on-unhealthy").should_restart(ExitReason::Unhealthy, 9));
    assert!(!p("on-unhealthy").should_restart(ok, 0));
    assert!(p("unless-stopped").should_restart(failed, 0));
}

#[test]
fn backoff_doubles_from_100ms_caps_and_resets_after_a_long_run() {
    let mut backoff = Backoff::default();
    let short = Duration::from_millis(10);
    let waits: Vec<u128> = (0..4)
        .map(|_| backoff.after_run(short).as_millis())
        .collect();
    assert_eq!(waits, [100, 200, 400, 800]);
    for _ in 0..20 {
        backoff.after_run(short);
    }
    assert_eq!(backoff.after_run(short), Backoff::MAX);
    assert_eq!(backoff.after_run(Duration::from_secs(11)), Backoff::FIRST);
}

#[test]
fn log_lines_round_trip_and_torn_lines_wait_for_their_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let mut writer = LogWriter::open(&path).unwrap();
    writer.append(Stream::Stdout, b"hello").unwrap();
    writer
        .append(Stream::Stderr, "caf\u{e9}".as_bytes())
        .unwrap();
    let mut reader = LogReader::open(&path).unwrap();
    let first = reader.next_line().unwrap().unwrap();
    assert_eq!(
        (first.stream, first.line.as_str()),
        (Stream::Stdout, "hello")
    );
    assert!(first.timestamp().ends_with('Z') && first.timestamp().contains('.'));
    assert_eq!(reader.next_line().unwrap().unwrap().line, "café");
    assert_eq!(reader.next_line().unwrap(), None);
    // Half a record, then the rest: read once complete.
    use std::io::Write;
    let mut raw = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    raw.write_all(br#"{"time_ns":1,"stream":"stdout","#)
        .unwrap();
    assert_eq!(reader.next_line().unwrap(), None);
    raw.write_all(b"\"line\":\"late\"}\n").unwrap();
    assert_eq!(reader.next_line().unwrap().unwrap().line, "late");
}

#[test]
fn timestamps_have_nanoseconds() {
    let line = LogLine {
        time_ns: 1_700_000_000_000_000_123,
        stream: Stream::Stdout,
        line: String::new(),
    };
    assert_eq!(line.timestamp(), "2023-11-14T22:13:20.000000123Z");
}
