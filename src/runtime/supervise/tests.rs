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
    let mut writer = LogWriter::open(&path, Default::default()).unwrap();
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

/// The numbers of the lines `reader` gives until the current end (lines say `line N`).
fn numbers(reader: &mut LogReader) -> Vec<u32> {
    let mut out = Vec::new();
    while let Some(line) = reader.next_line().unwrap() {
        out.push(line.line.strip_prefix("line ").unwrap().parse().unwrap());
    }
    out
}

#[test]
fn a_log_is_capped_rotated_and_read_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let limits = LogLimits {
        max_size: Some(1000),
        max_files: 3,
    };
    let mut writer = LogWriter::open(&path, limits).unwrap();
    for i in 0..200 {
        writer
            .append(Stream::Stdout, format!("line {i}").as_bytes())
            .unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["log.jsonl", "log.jsonl.1", "log.jsonl.2"]);
    for name in &names {
        let size = std::fs::metadata(dir.path().join(name)).unwrap().len();
        assert!(size <= 1000, "{name}: {size} bytes");
    }
    // The newest lines, oldest first, without a gap.
    let read = numbers(&mut LogReader::open(&path).unwrap());
    assert_eq!(read.last(), Some(&199));
    assert!(read.len() > 20 && read[0] > 0, "{read:?}");
    assert!(read.windows(2).all(|w| w[1] == w[0] + 1), "{read:?}");
    // Lower limits on reopening delete the generations beyond them.
    drop(writer);
    let fewer = LogLimits {
        max_files: 2,
        ..limits
    };
    LogWriter::open(&path, fewer).unwrap();
    assert!(!rotate::generation(&path, 2).exists());
}

#[test]
fn a_follower_reads_across_rotations_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let limits = LogLimits {
        max_size: Some(500),
        max_files: 100,
    };
    let mut writer = LogWriter::open(&path, limits).unwrap();
    writer.append(Stream::Stdout, b"line 0").unwrap();
    let mut reader = LogReader::open(&path).unwrap();
    assert_eq!(numbers(&mut reader), [0]);
    // Several rotations while the reader waits at the end of the live file.
    for i in 1..100 {
        writer
            .append(Stream::Stdout, format!("line {i}").as_bytes())
            .unwrap();
    }
    assert!(rotate::generation(&path, 5).exists(), "rotated many times");
    assert_eq!(numbers(&mut reader), (1..100).collect::<Vec<_>>());
    writer.append(Stream::Stdout, b"line 100").unwrap();
    assert_eq!(numbers(&mut reader), [100]);

    // One file: deleted when full and a new one begun; the follower goes on in it.
    let one = dir.path().join("one.jsonl");
    let limits = LogLimits {
        max_size: Some(200),
        max_files: 1,
    };
    let mut writer = LogWriter::open(&one, limits).unwrap();
    writer.append(Stream::Stdout, b"line 0").unwrap();
    let mut reader = LogReader::open(&one).unwrap();
    assert_eq!(numbers(&mut reader), [0]);
    for i in 1..4 {
        writer
            .append(Stream::Stdout, format!("line {i}").as_bytes())
            .unwrap();
    }
    let after = numbers(&mut reader);
    assert_eq!(after.last(), Some(&3), "{after:?}");
    assert!(std::fs::metadata(&one).unwrap().len() <= 200);
    assert!(!rotate::generation(&one, 1).exists());
}

/// A supervisor's smaps, cut down: its executable (read-only data, code, the relocated
/// part with copied pages, the writable data), a library, the heap and the stack.
const SMAPS: &str = "\
00200000-003bb000 r--p 00000000 fe:00 1234       /opt/kiln/kiln-supervise
Size:               1772 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
003bb000-007af000 r-xp 001ba000 fe:00 1234       /opt/kiln/kiln-supervise
Anonymous:             0 kB
007af000-00812000 r--p 005ad000 fe:00 1234       /opt/kiln/kiln-supervise
Anonymous:            20 kB
00812000-00813000 rw-p 00610000 fe:00 1234       /opt/kiln/kiln-supervise
Anonymous:             0 kB
329c2000-329eb000 rw-p 00000000 00:00 0          [heap]
Anonymous:           164 kB
7f1870792000-7f18708e8000 r-xp 00028000 fe:00 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7ffdccfa0000-7ffdccfc1000 rw-p 00000000 00:00 0  [stack]
Anonymous:           132 kB
";

#[test]
fn a_supervisor_drops_only_pages_it_never_wrote_and_the_stack_below_its_frame() {
    let exe = std::path::Path::new("/opt/kiln/kiln-supervise");
    // The code and the read-only data of the executable; not its relocated part (a copied
    // page), not its writable data, not a library, not the heap; the stack below the page
    // of `keep`.
    let keep = 0x7ffdccfb8123;
    assert_eq!(
        shed::droppable(SMAPS, exe, keep),
        vec![
            0x200000..0x3bb000,
            0x3bb000..0x7af000,
            0x7ffdccfa0000..0x7ffdccfb8000
        ]
    );
    // Another executable: only the stack. A frame outside the stack (another thread's):
    // not the stack.
    let other = std::path::Path::new("/usr/bin/kiln");
    assert_eq!(
        shed::droppable(SMAPS, other, keep),
        vec![0x7ffdccfa0000..0x7ffdccfb8000]
    );
    assert!(shed::droppable(SMAPS, other, 0x1000).is_empty());
}

#[test]
fn shedding_leaves_a_process_that_runs_on() {
    // On a test thread (not the main thread's stack): the executable's clean pages and the
    // heap; the code then runs on from the page cache.
    let dropped = shed::shed();
    assert!(dropped > 0);
    let lines: Vec<String> = (0..1000).map(|i| format!("line {i}")).collect();
    assert_eq!(lines[999], "line 999");
    assert!(shed::shed() > 0);
}
