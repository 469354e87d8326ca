//! `kiln logs`: a container's log lines between `--since` and `--until`, the last
//! `--tail N` of them, and with `-f` as they come until the container has exited and the
//! log is drained. Rendering is the caller's.

use std::time::Duration;

use super::ContainerError;
use super::lifecycle::log_path;
use crate::runtime::supervise::{LogLimits, LogLine, LogReader};
use crate::state::{Record, Records, Status};

/// `--log-opt KEY=VALUE` flags over kiln's default cap, with Docker's json-file and local
/// drivers' keys: `max-size` (`10m`, `512k`, `1g`, bytes; `-1`: no cap) and `max-file` (the
/// files kept, the live one included). Any other key is refused.
pub fn parse_log_opts(opts: &[String]) -> Result<LogLimits, ContainerError> {
    let mut limits = LogLimits::default();
    for opt in opts {
        let bad = |reason: &str| ContainerError::BadLogOpt {
            opt: opt.clone(),
            reason: reason.to_string(),
        };
        let Some((key, value)) = opt.split_once('=') else {
            return Err(bad("expected KEY=VALUE"));
        };
        match key {
            "max-size" if value == "-1" => limits.max_size = None,
            "max-size" => {
                let size = crate::spec::units::Size::parse(value).map_err(|e| bad(&e))?;
                if size.0 == 0 {
                    return Err(bad("a log file must hold at least one byte"));
                }
                limits.max_size = Some(size.0);
            }
            "max-file" => match value.parse::<u32>() {
                Ok(n) if n >= 1 => limits.max_files = n,
                _ => return Err(bad("max-file is a number of files, at least 1")),
            },
            _ => return Err(bad("kiln's logs take max-size and max-file")),
        }
    }
    Ok(limits)
}

/// `--since` and `--until`: a duration before now (`10m`, `1h30m`) or an RFC 3339 time
/// (`2026-11-30T10:00:00Z`, with optional fraction and offset); nanoseconds since the epoch.
pub fn parse_since(text: &str, now_ns: u128) -> Result<u128, ContainerError> {
    if let Ok(duration) = crate::spec::units::Duration::parse(text) {
        return Ok(now_ns.saturating_sub(u128::from(duration.0)));
    }
    parse_rfc3339(text).ok_or_else(|| ContainerError::BadSince {
        since: text.to_string(),
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` as nanoseconds since the epoch.
fn parse_rfc3339(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: u128 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<9}", &fraction[..digits.min(9)]);
        nanos = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u128::try_from(secs).ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

/// Howard Hinnant's days-from-civil (proleptic Gregorian calendar).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether nothing more will be written to the log: the container has exited and no
/// supervisor will start it again.
fn finished(records: &Records, record: &Record) -> bool {
    match records.load(&record.id) {
        Ok(current) => {
            let current = current.reconciled();
            current.state.status == Status::Exited && !current.state.supervisor_alive()
        }
        Err(_) => true,
    }
}

/// What `kiln logs` asks of a log: a time window, the last lines only, following.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogQuery {
    /// `--since`: lines at or after this time (nanoseconds since the epoch).
    pub since: Option<u128>,
    /// `--until`: lines at or before this time; with `follow`, following ends once it
    /// has passed.
    pub until: Option<u128>,
    /// `--tail N`: only the last N lines (of the window) already written.
    pub tail: Option<usize>,
    /// `-f`: keep reading as the log grows.
    pub follow: bool,
}

impl LogQuery {
    fn wants(&self, line: &LogLine) -> bool {
        self.since.is_none_or(|s| line.time_ns >= s) && self.until.is_none_or(|u| line.time_ns <= u)
    }
}

/// Gives each log line `query` asks for to `emit`; with `follow`, keeps reading as the log
/// grows until the container has finished and the log is drained (or `until` has passed).
pub fn read_logs(
    records: &Records,
    record: &Record,
    query: &LogQuery,
    mut emit: impl FnMut(&LogLine) -> std::io::Result<()>,
) -> Result<(), ContainerError> {
    let follow = query.follow;
    let path = log_path(records, &record.id);
    let mut reader = loop {
        match LogReader::open(&path) {
            Ok(reader) => break reader,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if !follow || finished(records, record) || passed(query.until) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => return Err(super::io_err(&path)(err)),
        }
    };
    let stdout = std::path::Path::new("<stdout>");
    if let Some(tail) = query.tail {
        // The last `tail` lines written so far; then, when following, what comes next.
        let mut last = std::collections::VecDeque::with_capacity(tail.min(4096));
        while let Some(line) = reader.next_line().map_err(super::io_err(&path))? {
            if tail > 0 && query.wants(&line) {
                if last.len() == tail {
                    last.pop_front();
                }
                last.push_back(line);
            }
        }
        for line in &last {
            emit(line).map_err(super::io_err(stdout))?;
        }
    }
    let mut done = false;
    loop {
        while let Some(line) = reader.next_line().map_err(super::io_err(&path))? {
            if query.wants(&line) {
                emit(&line).map_err(super::io_err(stdout))?;
            }
        }
        // Checked before the last read: whatever the supervisor wrote before it finished
        // has been read by then.
        if !follow || done {
            return Ok(());
        }
        done = finished(records, record) || passed(query.until);
        if !done {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether `--until` lies in the past.
fn passed(until: Option<u128>) -> bool {
    until.is_some_and(|u| crate::timestamp::now_ns() > u)
}
