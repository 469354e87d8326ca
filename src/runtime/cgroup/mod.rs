//! Control groups for containers: memory, cpu and pids limits, usage statistics, OOM
//! detection, killing every member and removing the group — on cgroup v2 and, as a
//! fallback, on v1 (including "hybrid" machines with v1 controllers and an empty cgroup2).
//!
//! It owns every file kiln writes under the cgroup filesystem, and nothing else: it knows
//! nothing of images, kiln.kdl or the command line. Callers name a cgroup with a relative
//! path such as `kiln/<root-hash>/<container-id>`; it lives at that path below the root of
//! each hierarchy (the mount point), like runc's absolute `cgroupsPath`, so that any kiln
//! process finds it again whatever cgroup that process runs in (`kiln ps` after a crash).
//!
//! # API
//!
//! - [`Hierarchy::detect`] reads `/proc/self/mountinfo` (and `/proc/self/cgroup`, for where
//!   kiln itself runs) and prefers v2 when its root's `cgroup.controllers` lists memory, cpu
//!   and pids, else v1 when memory, cpu, cpuacct and pids are mounted, else whichever has
//!   more of them. [`Hierarchy::at`] does the same below a fake root (tests),
//!   [`Hierarchy::new`] takes a [`Version`] and a [`CgroupFs`] directly.
//! - [`Hierarchy::create`] makes a cgroup with [`Limits`]: on v2 it enables the controllers
//!   in every ancestor's `cgroup.subtree_control`; on v1 it makes one directory per
//!   hierarchy (memory, cpu, cpuacct, pids, freezer — co-mounted controllers share one). On
//!   error it removes whatever it made. [`Hierarchy::open`] finds an existing one,
//!   [`Hierarchy::list`] lists every cgroup below a prefix (leftover checks), and
//!   [`Hierarchy::remove_if_empty`] removes a shared parent once nothing uses it.
//! - [`Cgroup`]: [`attach`](Cgroup::attach), [`stats`](Cgroup::stats),
//!   [`oom_killed`](Cgroup::oom_killed), [`pids`](Cgroup::pids),
//!   [`kill_all`](Cgroup::kill_all), [`freeze`](Cgroup::freeze) and [`thaw`](Cgroup::thaw)
//!   (`kiln commit` of a running container), [`remove`](Cgroup::remove) (idempotent;
//!   descendants first), [`update`](Cgroup::update) (changes only the limits that are
//!   `Some`).
//! - Every read and write goes through [`CgroupFs`] ([`RealFs`] for the kernel); every
//!   change is first reported to the observer given to [`Hierarchy::with_observer`] as a
//!   [`CgroupEvent`] (`kiln run --trace` prints them).
//!
//! # Files
//!
//! | what          | v2                                   | v1                                          |
//! |---------------|--------------------------------------|---------------------------------------------|
//! | memory limit  | `memory.max`, `memory.swap.max` = 0  | `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` = same |
//! | cpu limit     | `cpu.max` = `QUOTA 100000`           | `cpu.cfs_period_us` = 100000, `cpu.cfs_quota_us` |
//! | pids limit    | `pids.max`                           | `pids.max`                                  |
//! | cpu usage     | `cpu.stat` `usage_usec`              | `cpuacct.usage`                             |
//! | memory usage  | `memory.current`                     | `memory.usage_in_bytes`                     |
//! | OOM kills     | `memory.events` `oom_kill`           | `memory.oom_control` `oom_kill` (≥ 4.13), else `failcnt` |
//! | file cache    | `memory.stat` `inactive_file`        | `memory.stat` `total_inactive_file`         |
//! | block I/O     | `io.stat` `rbytes`, `wbytes`         | `blkio.throttle.io_service_bytes` (or the `bfq`/CFQ table) `Read`, `Write` |
//! | kill all      | `cgroup.kill`, else `cgroup.freeze`  | `freezer.state` FROZEN, SIGKILL each, THAWED |
//! | freeze, thaw  | `cgroup.freeze` 1, 0                 | `freezer.state` FROZEN, THAWED              |
//!
//! The swap files are written only when they exist (swap accounting on): with them a memory
//! limit really limits instead of pushing the excess to swap.
//!
//! # Starting a container
//!
//! `create` → clone the child, held on a pipe → `attach(child's host pid)` → release the
//! child; only then may it `unshare(CLONE_NEWCGROUP)`, so that its cgroup namespace is
//! rooted at its own cgroup. (On v2, `clone3(CLONE_INTO_CGROUP)` with a descriptor of
//! [`Cgroup::dirs`] does it in one step.) Every child the container forks is born inside.
//! When it has ended: [`Cgroup::oom_killed`] tells a SIGKILL by the OOM killer from any
//! other, then [`Cgroup::kill_all`] and [`Cgroup::remove`]. v1 does not move a process's
//! existing memory charge when it is attached, which is one more reason to attach before
//! the child execs.
//!
//! Not handled here: device access rules on v2 (eBPF), cpusets, block I/O limits, network
//! statistics (they belong to network namespaces, not cgroups), systemd-delegated scopes.

mod error;
mod fs;
mod group;
mod hierarchy;
mod limits;
mod mountinfo;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use error::CgroupError;
pub use fs::{CgroupEvent, CgroupFs, RealFs};
pub use group::Cgroup;
pub use hierarchy::{Hierarchy, Observer};
pub use limits::{CPU_PERIOD_US, Limits};
pub use mountinfo::{CgroupMounts, parse_mountinfo, parse_proc_cgroup};
pub use stats::Stats;

/// Which cgroup filesystem kiln uses, and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// One mount per hierarchy; co-mounted controllers (`cpu,cpuacct`) map to one path.
    V1 { mounts: BTreeMap<String, PathBuf> },
    /// The unified hierarchy's mount point.
    V2 { root: PathBuf },
}

/// The v1 controllers kiln makes a directory in (when mounted). `blkio` only counts block
/// I/O for `kiln stats`; kiln sets no block I/O limits.
pub const V1_CONTROLLERS: [&str; 7] = [
    "memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio",
];

/// Docker's default device rules, in the v1 `devices.allow` syntax, applied after
/// `devices.deny a`: any device node may be made (`m`), but only these may be opened — so
/// CAP_MKNOD in the default capability set does not open the host's disks. (cgroup v2 has no
/// devices files: it needs an eBPF program, which kiln does not load yet.)
pub const V1_DEVICE_RULES: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",    // null
    "c 1:5 rwm",    // zero
    "c 1:7 rwm",    // full
    "c 1:8 rwm",    // random
    "c 1:9 rwm",    // urandom
    "c 5:0 rwm",    // tty
    "c 5:2 rwm",    // ptmx
    "c 136:* rwm",  // pts
    "c 10:200 rwm", // net/tun
];

/// The v2 controllers kiln enables for its cgroups (when available).
pub const V2_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// The v2 controllers kiln enables when available, in a write of their own whose failure is
/// ignored: they only feed statistics (`io` counts block I/O for `kiln stats`), so their
/// absence must never keep a container from starting, nor weigh in detection.
pub const V2_OPTIONAL_CONTROLLERS: [&str; 1] = ["io"];

#[cfg(test)]
mod tests;
