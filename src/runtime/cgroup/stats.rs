//! [`Stats`] and the parsers of the files they come from (`cpu.stat`, `memory.events`,
//! `memory.oom_control`, `memory.stat`: "key value" lines; `io.stat` on v2 and the blkio
//! `*io_service_bytes*` tables on v1 for block I/O). Pure.

/// A cgroup's resource usage at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// CPU time used by all members since the cgroup was created, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Memory charged to the cgroup, page cache included, in bytes.
    pub memory_usage: u64,
    /// The part of [`memory_usage`](Stats::memory_usage) that is inactive file cache
    /// (`inactive_file` on v2, `total_inactive_file` on v1): the kernel drops it first, so
    /// Docker leaves it out of the usage it shows.
    pub memory_inactive_file: u64,
    /// `None`: no memory limit.
    pub memory_limit: Option<u64>,
    pub pids_current: u64,
    /// `None`: no pids limit.
    pub pids_limit: Option<u64>,
    /// How many processes the kernel killed for lack of memory in this cgroup.
    pub oom_kills: u64,
    /// Bytes read from block devices by the members, all devices together.
    pub block_read: u64,
    /// Bytes written to block devices by the members, all devices together.
    pub block_write: u64,
}

/// The value of `key` in a file of `key value` lines (`cpu.stat`, `memory.events`).
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

/// Bytes read and written, summed over the devices of a v2 `io.stat`:
/// `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N` per line. `None` when a line
/// is not of that shape.
pub(crate) fn parse_io_stat(text: &str) -> Option<(u64, u64)> {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        fields.next().filter(|device| device.contains(':'))?;
        for field in fields {
            let (key, value) = field.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            match key {
                "rbytes" => read = read.saturating_add(value),
                "wbytes" => write = write.saturating_add(value),
                _ => {}
            }
        }
    }
    Some((read, write))
}

/// Bytes read and written, summed over the devices of a v1 blkio table such as
/// `blkio.throttle.io_service_bytes`: `MAJ:MIN Read N` and `MAJ:MIN Write N` lines (the
/// `Sync`, `Async`, `Discard` and `Total` lines count the same bytes again and are
/// skipped, as is the closing `Total N`). `None` when a line is not of that shape.
pub(crate) fn parse_blkio_bytes(text: &str) -> Option<(u64, u64)> {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Total", value] => {
                value.parse::<u64>().ok()?;
            }
            [device, op, value] if device.contains(':') => {
                let value: u64 = value.parse().ok()?;
                match *op {
                    "Read" => read = read.saturating_add(value),
                    "Write" => write = write.saturating_add(value),
                    _ => {}
                }
            }
            _ => return None,
        }
    }
    Some((read, write))
}
