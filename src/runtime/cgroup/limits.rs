//! [`Limits`], their validation, and which file gets which value on each cgroup version.
//! Pure: the files are written by the hierarchy and the cgroup.

use super::CgroupError;

/// The CFS period kiln uses: quotas are per 100 ms, as Docker's.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Docker's minimum memory limit: below it even a shell is killed at once.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// Resource limits of a container. `None` leaves the kernel's default (no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Bytes of memory (swap excluded: the container gets none where swap is accounted).
    pub memory: Option<u64>,
    /// CPU time as a number of CPUs: 0.5 is half of one CPU, 2.0 two full CPUs.
    pub cpus: Option<f64>,
    /// Most processes (and threads) alive at once.
    pub pids: Option<u64>,
}

impl Limits {
    /// Rejects values the kernel would refuse or that could not run anything.
    pub fn validate(&self) -> Result<(), CgroupError> {
        if let Some(memory) = self.memory
            && memory < MIN_MEMORY
        {
            return Err(CgroupError::BadLimit {
                what: "memory",
                value: memory.to_string(),
                reason: "the minimum is 6MiB",
            });
        }
        if let Some(cpus) = self.cpus {
            let bad = |reason| CgroupError::BadLimit {
                what: "cpus",
                value: cpus.to_string(),
                reason,
            };
            if !cpus.is_finite() || cpus <= 0.0 {
                return Err(bad("it must be a positive number"));
            }
            if cpus < 0.01 {
                return Err(bad("the minimum is 0.01"));
            }
            if cpus > 1_000_000.0 {
                return Err(bad("no machine has that many CPUs"));
            }
        }
        if self.pids == Some(0) {
            return Err(CgroupError::BadLimit {
                what: "pids",
                value: "0".into(),
                reason: "the minimum is 1",
            });
        }
        Ok(())
    }

    /// The CFS quota in microseconds per [`CPU_PERIOD_US`] (0.5 CPU → 50000).
    pub fn cpu_quota_us(&self) -> Option<u64> {
        self.cpus
            .map(|cpus| (cpus * CPU_PERIOD_US as f64).round() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpus.is_none() && self.pids.is_none()
    }
}

/// One value for one file of a cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LimitWrite {
    /// The controller the file belongs to (selects the v1 hierarchy).
    pub(crate) controller: &'static str,
    pub(crate) file: &'static str,
    pub(crate) value: String,
    /// Skipped when the file does not exist (swap accounting off).
    pub(crate) only_if_exists: bool,
}

pub(crate) fn write(controller: &'static str, file: &'static str, value: String) -> LimitWrite {
    LimitWrite {
        controller,
        file,
        value,
        only_if_exists: false,
    }
}

/// The writes that apply `limits` on v2, in order.
pub(crate) fn v2_writes(limits: &Limits) -> Vec<LimitWrite> {
    let mut writes = Vec::new();
    if let Some(memory) = limits.memory {
        writes.push(write("memory", "memory.max", memory.to_string()));
        writes.push(LimitWrite {
            only_if_exists: true,
            ..write("memory", "memory.swap.max", "0".into())
        });
    }
    if let Some(quota) = limits.cpu_quota_us() {
        writes.push(write("cpu", "cpu.max", format!("{quota} {CPU_PERIOD_US}")));
    }
    if let Some(pids) = limits.pids {
        writes.push(write("pids", "pids.max", pids.to_string()));
    }
    writes
}

/// The writes that apply `limits` on v1, in order. v1 insists that the memory limit never
/// exceeds the memory+swap limit, so when the memory limit goes up the memsw limit must
/// be raised first: `memory_rises` says whether it does.
pub(crate) fn v1_writes(limits: &Limits, memory_rises: bool) -> Vec<LimitWrite> {
    let mut writes = Vec::new();
    if let Some(memory) = limits.memory {
        let memory_limit = write("memory", "memory.limit_in_bytes", memory.to_string());
        let memsw_limit = LimitWrite {
            only_if_exists: true,
            ..write("memory", "memory.memsw.limit_in_bytes", memory.to_string())
        };
        if memory_rises {
            writes.extend([memsw_limit, memory_limit]);
        } else {
            writes.extend([memory_limit, memsw_limit]);
        }
    }
    if let Some(quota) = limits.cpu_quota_us() {
        writes.push(write("cpu", "cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
        writes.push(write("cpu", "cpu.cfs_quota_us", quota.to_string()));
    }
    if let Some(pids) = limits.pids {
        writes.push(write("pids", "pids.max", pids.to_string()));
    }
    writes
}

/// Parses a limit file: a number, or `max` (v2) or `-1` (v1 cpu quota) — no limit — as `None`. v1 spells "no memory
/// limit" as a huge number (`PAGE_COUNTER_MAX` pages, about 2^63); anything from 2^62 up
/// is taken as no limit.
pub(crate) fn parse_limit(text: &str) -> Option<Option<u64>> {
    match text.trim() {
        "max" | "-1" => Some(None),
        number => number
            .parse::<u64>()
            .ok()
            .map(|value| (value < 1 << 62).then_some(value)),
    }
}
