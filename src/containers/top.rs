//! `kiln top`: the processes of a running container — the pids of its cgroup, each read
//! from `/proc/PID` — in `ps` columns: by default `ps -ef`'s (UID PID PPID C STIME TTY TIME
//! CMD, as `docker top` shows), or the keywords of `-o` (pid, ppid, user, uid, comm, args,
//! stat, time, etime, rss, vsz, tty, c, stime). Pids are the machine's, as in Docker. It
//! reads and never signals; a process that exits while it reads is left out.

use std::path::Path;

use super::ContainerError;
use super::lifecycle::cgroup_name;
use crate::runtime::cgroup::Hierarchy;
use crate::state::{Record, Records, Status};

/// The columns `kiln top` shows without `-o`: `ps -ef`'s.
const DEFAULT_COLUMNS: &[(&str, &str)] = &[
    ("user", "UID"),
    ("pid", "PID"),
    ("ppid", "PPID"),
    ("c", "C"),
    ("stime", "STIME"),
    ("tty", "TTY"),
    ("time", "TIME"),
    ("cmd", "CMD"),
];

/// The `ps -o` keywords kiln knows, with their headers.
const KEYWORDS: &[(&str, &str)] = &[
    ("pid", "PID"),
    ("ppid", "PPID"),
    ("user", "USER"),
    ("uid", "UID"),
    ("comm", "COMMAND"),
    ("args", "COMMAND"),
    ("cmd", "CMD"),
    ("command", "COMMAND"),
    ("stat", "STAT"),
    ("time", "TIME"),
    ("etime", "ELAPSED"),
    ("rss", "RSS"),
    ("vsz", "VSZ"),
    ("tty", "TTY"),
    ("c", "C"),
    ("stime", "STIME"),
];

/// The `ps` options `kiln top` takes: none (or `-ef`, Docker's default) for `ps -ef`'s
/// columns, `-o LIST` (`-o pid,comm`, repeatable) for those keywords. The columns in
/// order, with their headers.
pub fn columns(options: &[String]) -> Result<Vec<(String, String)>, ContainerError> {
    let bad = |option: &str, reason: &str| ContainerError::BadTopOption {
        option: option.to_string(),
        reason: reason.to_string(),
    };
    let mut chosen: Vec<String> = Vec::new();
    let mut rest = options.iter();
    while let Some(option) = rest.next() {
        let list = match option.as_str() {
            "-e" | "-f" | "-ef" | "-fe" | "-A" => continue,
            "-o" | "--format" => rest
                .next()
                .ok_or_else(|| bad(option, "give it a list of keywords"))?
                .clone(),
            other => match other.strip_prefix("-o").or(other.strip_prefix("--format=")) {
                Some(list) => list.trim_start_matches('=').to_string(),
                None => return Err(bad(other, "not an option kiln top knows")),
            },
        };
        for keyword in list.split([',', ' ']).filter(|k| !k.is_empty()) {
            // `pid=` / `pid=HEADER`: ps's way to rename a column; kiln keeps its header.
            let keyword = keyword.split('=').next().unwrap_or(keyword);
            if !KEYWORDS.iter().any(|(k, _)| *k == keyword) {
                return Err(bad(keyword, "not a keyword kiln top knows"));
            }
            chosen.push(keyword.to_string());
        }
    }
    if chosen.is_empty() {
        return Ok(DEFAULT_COLUMNS
            .iter()
            .map(|(keyword, header)| (keyword.to_string(), header.to_string()))
            .collect());
    }
    Ok(chosen
        .into_iter()
        .map(|keyword| {
            let header = KEYWORDS
                .iter()
                .find(|(k, _)| *k == keyword)
                .map_or("?", |(_, h)| h)
                .to_string();
            (keyword, header)
        })
        .collect())
}

/// What `/proc/PID/stat` says, in the fields `top` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stat {
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub tty_nr: u32,
    /// User and system time, in clock ticks.
    pub cpu_ticks: u64,
    /// Since boot, in clock ticks.
    pub start_ticks: u64,
    pub vsize: u64,
    /// Pages.
    pub rss: u64,
}

/// Parses one `/proc/PID/stat` line (the command name is in parentheses and may hold
/// spaces and parentheses: it ends at the last `)`).
pub(super) fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = line.get(close + 2..)?.split_whitespace().collect();
    // `fields[0]` is field 3 (state).
    let field = |n: usize| fields.get(n - 3).copied();
    let number = |n: usize| field(n).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        comm,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        tty_nr: field(7)?.parse::<i64>().ok()? as u32,
        cpu_ticks: number(14)? + number(15)?,
        start_ticks: number(22)?,
        vsize: number(23)?,
        rss: number(24)?,
    })
}

/// `ps`'s TTY: `?` for none, `pts/N`, `ttyN`.
fn tty_name(tty_nr: u32) -> String {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        0 => "?".into(),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 => format!("tty{minor}"),
        _ => format!("{major}:{minor}"),
    }
}

/// `[[DD-]HH:]MM:SS` as `ps` writes TIME (HH always) and ELAPSED (HH only when needed).
fn duration(seconds: u64, always_hours: bool) -> String {
    let (days, rest) = (seconds / 86400, seconds % 86400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    match (days, h, always_hours) {
        (0, 0, false) => format!("{m:02}:{s:02}"),
        (0, _, _) => format!("{h:02}:{m:02}:{s:02}"),
        (d, _, _) => format!("{d}-{h:02}:{m:02}:{s:02}"),
    }
}

/// The machine's view of time, read once per `kiln top`.
struct Clock {
    ticks_per_second: u64,
    boot_time: u64,
    now: u64,
    page_kib: u64,
}

impl Clock {
    fn read() -> Clock {
        // SAFETY: sysconf only reads a configuration value.
        let ticks = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) };
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
            })
            .unwrap_or(0);
        Clock {
            ticks_per_second: u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100),
            boot_time,
            now: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            page_kib: u64::try_from(page).unwrap_or(4096) / 1024,
        }
    }
}

/// One process's row, in `columns`' order; `None` when it is gone.
fn row(pid: i32, columns: &[(String, String)], clock: &Clock) -> Option<Vec<String>> {
    let proc = Path::new("/proc").join(pid.to_string());
    let stat = parse_stat(&std::fs::read_to_string(proc.join("stat")).ok()?)?;
    let status = std::fs::read_to_string(proc.join("status")).ok()?;
    let uid: u32 = status
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let args = if args.is_empty() {
        format!("[{}]", stat.comm)
    } else {
        args.join(" ")
    };
    let started = clock.boot_time + stat.start_ticks / clock.ticks_per_second;
    let elapsed = clock.now.saturating_sub(started);
    let cpu_seconds = stat.cpu_ticks / clock.ticks_per_second;
    let user = || {
        nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string())
    };
    Some(
        columns
            .iter()
            .map(|(keyword, _)| match keyword.as_str() {
                "pid" => pid.to_string(),
                "ppid" => stat.ppid.to_string(),
                "user" => user(),
                "uid" => uid.to_string(),
                "comm" => stat.comm.clone(),
                "args" | "cmd" | "command" => args.clone(),
                "stat" => stat.state.to_string(),
                "time" => duration(cpu_seconds, true),
                "etime" => duration(elapsed, false),
                "rss" => (stat.rss * clock.page_kib).to_string(),
                "vsz" => (stat.vsize / 1024).to_string(),
                "tty" => tty_name(stat.tty_nr),
                "c" => (cpu_seconds * 100)
                    .checked_div(elapsed)
                    .unwrap_or(0)
                    .min(99)
                    .to_string(),
                "stime" => {
                    let text = crate::timestamp::rfc3339_utc(started);
                    // HH:MM the same day, else MonDD-like `MM-DD`.
                    if clock.now / 86400 == started / 86400 {
                        text.get(11..16).unwrap_or(&text).to_string()
                    } else {
                        text.get(5..10).unwrap_or(&text).to_string()
                    }
                }
                _ => String::new(),
            })
            .collect(),
    )
}

/// The processes of running container `record`: a header row, then one row per process
/// in pid order.
pub fn top(
    records: &Records,
    record: &Record,
    columns: &[(String, String)],
) -> Result<Vec<Vec<String>>, ContainerError> {
    let current = records.load(&record.id)?.reconciled();
    let not_running = || ContainerError::NotRunning {
        name: record.reference(),
    };
    if current.state.status != Status::Running {
        return Err(not_running());
    }
    let hierarchy = Hierarchy::detect()?;
    let group = hierarchy
        .open(&cgroup_name(records.state_root(), &record.id))?
        .ok_or_else(not_running)?;
    let clock = Clock::read();
    let mut rows = vec![columns.iter().map(|(_, header)| header.clone()).collect()];
    rows.extend(
        group
            .pids()?
            .into_iter()
            .filter_map(|pid| row(pid, columns, &clock)),
    );
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "4242 (a (b) c) S 1 4242 4242 34816 4242 4194560 100 0 0 0 7 3 0 0 20 0 1 0 \
                    12345 4096000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "a (b) c");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!(tty_name(stat.tty_nr), "pts/0");
        assert_eq!(stat.cpu_ticks, 10);
        assert_eq!(stat.start_ticks, 12345);
        assert_eq!(stat.vsize, 4096000);
        assert_eq!(stat.rss, 250);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn columns_are_ps_ef_by_default_or_the_keywords_of_o() {
        let headers = |options: &[&str]| -> Vec<String> {
            columns(&strings(options))
                .unwrap()
                .into_iter()
                .map(|(_, h)| h)
                .collect()
        };
        let ps_ef = strings(&["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
        assert_eq!(headers(&[]), ps_ef);
        assert_eq!(headers(&["-ef"]), ps_ef);
        assert_eq!(headers(&["-o", "pid,comm"]), strings(&["PID", "COMMAND"]));
        assert_eq!(headers(&["-opid", "-o", "stat"]), strings(&["PID", "STAT"]));
        assert!(columns(&strings(&["aux"])).is_err());
        assert!(columns(&strings(&["-o", "pid,bogus"])).is_err());
        assert!(columns(&strings(&["-o"])).is_err());
    }

    #[test]
    fn clocks_read_as_ps_writes_them() {
        assert_eq!(duration(0, true), "00:00:00");
        assert_eq!(duration(65, false), "01:05");
        assert_eq!(duration(3700, false), "01:01:40");
        assert_eq!(duration(90000, true), "1-01:00:00");
    }
}
