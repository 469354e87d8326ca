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
//!   hierarchy (memory, cpu, cpuacct, pids, freezer, devices, blkio — co-mounted
//!   controllers share one — and the unified one of a hybrid machine). It applies the
//!   device rules (below). On error it removes whatever it made. [`Hierarchy::open`] finds an existing one,
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
//! | device rules  | eBPF program (`BPF_PROG_ATTACH`)     | `devices.deny` a, `devices.allow` each rule (and the program in `unified`) |
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
//! # Device rules
//!
//! Every container gets [`DEVICE_RULES`] (Docker's: make any node, open only the standard
//! devices, ptys and tun) in every place the kernel checks them: on v1, `devices.deny a`
//! then one `devices.allow` per rule; on v2, and in the unified hierarchy of a hybrid
//! machine, a `BPF_CGROUP_DEVICE` program compiled from the same rules
//! ([`device_program`]) attached to the container's cgroup with `BPF_F_ALLOW_MULTI` (what
//! runs below may only restrict further). On a hybrid machine the kernel asks both and
//! both must allow. The attachment holds the program, nothing is pinned, and removing the
//! cgroup frees it. Loading needs root; when it fails on a hybrid machine whose v1 rules
//! are in place, the container still starts (the observer is told), elsewhere `create`
//! fails: a v2 container never runs without device rules.
//!
//! Not handled here: cpusets, block I/O limits, network statistics (they belong to network
//! namespaces, not cgroups), systemd-delegated scopes.

mod devices;
mod error;
mod fs;
mod group;
mod hierarchy;
mod limits;
mod mountinfo;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use devices::{
    Access, DEVICE_RULES, DeviceKind, DeviceProgramError, DeviceRule, allowed, device_program,
    program_context,
};
pub use error::CgroupError;
pub use fs::{CgroupEvent, CgroupFs, DEVICE_PROGRAM_NAME, RealFs};
pub use group::Cgroup;
pub use hierarchy::{DeviceRulesAt, Hierarchy, Observer};
pub use limits::{CPU_PERIOD_US, Limits};
pub use mountinfo::{CgroupMounts, parse_mountinfo, parse_proc_cgroup};
pub use stats::Stats;

/// `kiln/<hash of the canonical state root>`: the parent of every cgroup of one state root
/// (its containers, its build steps), so two roots never meet.
pub fn state_root_group(state_root: &std::path::Path) -> String {
    let canonical = std::fs::canonicalize(state_root).unwrap_or_else(|_| state_root.into());
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex();
    format!("kiln/{}", &hash[..12])
}

/// Which cgroup filesystem kiln uses, and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// One mount per hierarchy; co-mounted controllers (`cpu,cpuacct`) map to one path.
    V1 {
        mounts: BTreeMap<String, PathBuf>,
        /// The unified (cgroup2) hierarchy of a "hybrid" machine, with no controllers of
        /// its own: containers get a cgroup there too, where their device program is
        /// attached (cgroup BPF works on any cgroup2 hierarchy).
        unified: Option<PathBuf>,
    },
    /// The unified hierarchy's mount point.
    V2 { root: PathBuf },
}

/// The v1 controllers kiln makes a directory in (when mounted). `blkio` only counts block
/// I/O for `kiln stats`; kiln sets no block I/O limits.
pub const V1_CONTROLLERS: [&str; 7] = [
    "memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio",
];

/// The v2 controllers kiln enables for its cgroups (when available).
pub const V2_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// The v2 controllers kiln enables when available, in a write of their own whose failure is
/// ignored: they only feed statistics (`io` counts block I/O for `kiln stats`), so their
/// absence must never keep a container from starting, nor weigh in detection.
pub const V2_OPTIONAL_CONTROLLERS: [&str; 1] = ["io"];

#[cfg(test)]
mod tests;
