//! [`Stats`] and the parsers of the files they come from (`cpu.stat`, `memory.events`,
//! `memory.oom_control`: "key value" lines). Pure.

/// A cgroup's resource usage at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// CPU time used by all members since the cgroup was created, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Memory charged to the cgroup, page cache included, in bytes.
    pub memory_usage: u64,
    /// `None`: no memory limit.
    pub memory_limit: Option<u64>,
    pub pids_current: u64,
    /// `None`: no pids limit.
    pub pids_limit: Option<u64>,
    /// How many processes the kernel killed for lack of memory in this cgroup.
    pub oom_kills: u64,
}

/// The value of `key` in a file of `key value` lines (`cpu.stat`, `memory.events`).
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}
