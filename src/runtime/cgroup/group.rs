//! [`Cgroup`]: one container's cgroup — attaching processes, reading usage and OOM kills,
//! killing every member, changing limits and removing it.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::hierarchy::Inner;
use super::limits::parse_limit;
use super::stats::{keyed_value, parse_blkio_bytes, parse_io_stat};
use super::{CgroupError, Limits, Stats, Version};

/// How long [`Cgroup::remove`] waits for killed processes to leave, and
/// [`Cgroup::kill_all`] and [`Cgroup::freeze`] for a freeze to take hold.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A parser of a block I/O file: bytes read and written.
type ParseBytes = fn(&str) -> Option<(u64, u64)>;

/// The v1 blkio tables of bytes per device, in the order they are tried.
const V1_BLKIO_FILES: [&str; 5] = [
    "blkio.throttle.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes",
    "blkio.bfq.io_service_bytes_recursive",
    "blkio.io_service_bytes_recursive",
    "blkio.io_service_bytes",
];

/// An existing cgroup. Dropping it changes nothing: call [`remove`](Cgroup::remove).
#[derive(Clone)]
pub struct Cgroup {
    name: String,
    inner: Arc<Inner>,
}

impl Cgroup {
    pub(crate) fn new(name: String, inner: Arc<Inner>) -> Cgroup {
        Cgroup { name, inner }
    }

    /// The name it was created or opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its directories: one on v2, one per v1 hierarchy. On v2 this is the directory to
    /// open for `clone3(CLONE_INTO_CGROUP)`.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.inner.dirs(&self.name)
    }

    /// The ids of the device programs attached to it (see [`super::DEVICE_RULES`]); empty
    /// on a pure v1 machine, where `devices.list` holds the rules instead.
    pub fn device_programs(&self) -> Result<Vec<u32>, CgroupError> {
        match self.inner.device_dir(&self.name) {
            Some(dir) => self.inner.ops.device_programs(&dir),
            None => Ok(Vec::new()),
        }
    }

    /// Moves process `pid` (all its threads) into the cgroup, in every v1 hierarchy.
    /// Children it forks afterwards are born inside.
    pub fn attach(&self, pid: i32) -> Result<(), CgroupError> {
        let value = pid.to_string();
        // A container made by a kiln before hybrid machines got a unified cgroup has none
        // there: it keeps its v1 rules alone until it is made again.
        let unified = match &self.inner.version {
            Version::V1 { .. } => self.inner.device_dir(&self.name),
            Version::V2 { .. } => None,
        };
        for dir in self.dirs() {
            if unified.as_ref() == Some(&dir) && !self.inner.ops.exists(&dir) {
                continue;
            }
            self.inner.ops.write(&dir.join("cgroup.procs"), &value)?;
        }
        Ok(())
    }

    /// Current usage and limits. Figures of a controller kiln cannot use read as zero
    /// (`None` for limits).
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let inner = &self.inner;
        let mut stats = Stats::default();
        let v2 = matches!(inner.version, Version::V2 { .. });
        if let Some(dir) = self.controller_dir(if v2 { "cpu" } else { "cpuacct" }) {
            stats.cpu_usage_ns = if v2 {
                let path = dir.join("cpu.stat");
                let text = inner.ops.read(&path)?;
                keyed_value(&text, "usage_usec")
                    .ok_or_else(|| parse_error(path, &text))?
                    .saturating_mul(1000)
            } else {
                self.read_number(&dir.join("cpuacct.usage"))?
            };
        }
        if let Some(dir) = self.controller_dir("memory") {
            let (usage, limit) = if v2 {
                ("memory.current", "memory.max")
            } else {
                ("memory.usage_in_bytes", "memory.limit_in_bytes")
            };
            stats.memory_usage = self.read_number(&dir.join(usage))?;
            stats.memory_limit = self.read_limit(&dir.join(limit))?;
            stats.oom_kills = self.oom_kills(&dir)?;
            let inactive = if v2 {
                "inactive_file"
            } else {
                "total_inactive_file"
            };
            if let Some(text) = inner.ops.read_if_exists(&dir.join("memory.stat"))? {
                stats.memory_inactive_file = keyed_value(&text, inactive).unwrap_or(0);
            }
        }
        if let Some(dir) = self.controller_dir("pids") {
            stats.pids_current = self.read_number(&dir.join("pids.current"))?;
            stats.pids_limit = self.read_limit(&dir.join("pids.max"))?;
        }
        if let Some(dir) = self.controller_dir(if v2 { "io" } else { "blkio" }) {
            (stats.block_read, stats.block_write) = self.block_io(&dir, v2)?;
        }
        Ok(stats)
    }

    /// Bytes read and written on block devices: v2 `io.stat`; v1 the first blkio table
    /// that counted anything — the throttle tables see every bio whatever the I/O
    /// scheduler, the `bfq`/CFQ ones only that scheduler's (runc reads the same files).
    fn block_io(&self, dir: &Path, v2: bool) -> Result<(u64, u64), CgroupError> {
        let (files, parse): (&[&str], ParseBytes) = if v2 {
            (&["io.stat"], parse_io_stat)
        } else {
            (&V1_BLKIO_FILES, parse_blkio_bytes)
        };
        for file in files {
            let path = dir.join(file);
            let Some(text) = self.inner.ops.read_if_exists(&path)? else {
                continue;
            };
            let counted = parse(&text).ok_or_else(|| parse_error(path, &text))?;
            if counted != (0, 0) {
                return Ok(counted);
            }
        }
        Ok((0, 0))
    }

    /// Stops every process in the cgroup and below (v2 `cgroup.freeze`, v1 freezer) and
    /// waits up to two seconds for the freeze to take hold. `Ok(false)` when there is no
    /// freezer here: nothing was stopped. Pair it with [`thaw`](Cgroup::thaw).
    pub fn freeze(&self) -> Result<bool, CgroupError> {
        let Some((path, frozen, _)) = self.freezer_file() else {
            return Ok(false);
        };
        self.inner.ops.write(&path, frozen)?;
        self.wait_frozen(&path)?;
        Ok(true)
    }

    /// Lets the processes stopped by [`freeze`](Cgroup::freeze) run again. Without a
    /// freezer it does nothing.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer_file() {
            Some((path, _, thawed)) => self.inner.ops.write(&path, thawed),
            None => Ok(()),
        }
    }

    /// The freezer's state file with its frozen and thawed values, if it exists.
    fn freezer_file(&self) -> Option<(PathBuf, &'static str, &'static str)> {
        let file = match &self.inner.version {
            Version::V2 { root } => Some((root.join(&self.name).join("cgroup.freeze"), "1", "0")),
            Version::V1 { .. } => self
                .controller_dir("freezer")
                .map(|dir| (dir.join("freezer.state"), "FROZEN", "THAWED")),
        };
        file.filter(|(path, _, _)| self.inner.ops.exists(path))
    }

    /// Whether the kernel has killed a process of this cgroup for lack of memory. On v1
    /// kernels older than 4.13 (no `oom_kill` in `memory.oom_control`) this is a guess:
    /// the memory limit was hit at least once (`failcnt`), which page-cache reclaim can
    /// also cause.
    pub fn oom_killed(&self) -> Result<bool, CgroupError> {
        let Some(dir) = self.controller_dir("memory") else {
            return Ok(false);
        };
        if let Version::V1 { .. } = self.inner.version {
            let text = self.inner.ops.read(&dir.join("memory.oom_control"))?;
            if keyed_value(&text, "oom_kill").is_none() {
                for failcnt in ["memory.memsw.failcnt", "memory.failcnt"] {
                    let path = dir.join(failcnt);
                    if self.inner.ops.exists(&path) {
                        return Ok(self.read_number(&path)? > 0);
                    }
                }
            }
        }
        Ok(self.oom_kills(&dir)? > 0)
    }

    /// The processes in the cgroup and every cgroup below it (every v1 hierarchy), sorted.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = BTreeSet::new();
        for dir in self.dirs() {
            for cgroup in self.inner.ops.subtree(&dir)? {
                let path = cgroup.join("cgroup.procs");
                let Some(text) = self.inner.ops.read_if_exists(&path)? else {
                    continue;
                };
                for line in text.lines().filter(|line| !line.trim().is_empty()) {
                    let pid = line
                        .trim()
                        .parse()
                        .map_err(|_| parse_error(path.clone(), line))?;
                    pids.insert(pid);
                }
            }
        }
        Ok(pids.into_iter().collect())
    }

    /// Sends SIGKILL to every process in the cgroup and below, so none can fork away
    /// meanwhile: v2 `cgroup.kill`, else freeze, kill each, thaw (v2 `cgroup.freeze`, v1
    /// freezer). Returns once the signals are sent; [`remove`](Cgroup::remove) waits for
    /// the processes to be gone.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        let ops = &self.inner.ops;
        if let Version::V2 { root } = &self.inner.version {
            let kill_file = root.join(&self.name).join("cgroup.kill");
            if ops.exists(&kill_file) {
                return ops.write(&kill_file, "1");
            }
        }
        // A cgroup without a process cannot gain one by itself (only a fork inside adds
        // one): nothing to freeze. Freezing the first cgroup and thawing the last flips a
        // kernel-wide switch, which patches kernel code on every CPU: milliseconds per
        // container when a thousand supervisors end at once.
        if self.pids().is_ok_and(|pids| pids.is_empty()) {
            return Ok(());
        }
        match self.freezer_file() {
            Some((path, frozen, thawed)) => {
                ops.write(&path, frozen)?;
                self.wait_frozen(&path)?;
                let killed = self.signal_each();
                let thawed = ops.write(&path, thawed);
                killed.and(thawed)
            }
            // Without a freezer, a fork bomb could outrun one pass: repeat until empty.
            None => {
                let deadline = Instant::now() + SETTLE_TIMEOUT;
                while !self.pids()?.is_empty() && Instant::now() < deadline {
                    self.signal_each()?;
                    sleep(Duration::from_millis(1));
                }
                Ok(())
            }
        }
    }

    /// Removes the cgroup and every cgroup below it, deepest first, in every v1 hierarchy.
    /// Waits up to two seconds for exiting processes to leave; fails if some remain (kill
    /// them first). Removing a cgroup that is already gone succeeds.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut first_error = None;
        for dir in self.dirs() {
            for cgroup in self.inner.ops.subtree(&dir)?.into_iter().rev() {
                if let Err(err) = self.rmdir_when_empty(&cgroup, deadline) {
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Changes the limits that are `Some`; the others stay as they are.
    pub fn update(&self, limits: &Limits) -> Result<(), CgroupError> {
        let writes = self.inner.limit_writes(&self.name, limits)?;
        self.inner.apply(&self.name, &writes)
    }

    fn rmdir_when_empty(&self, dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
        let mut pause = Duration::from_micros(500);
        loop {
            match self.inner.ops.rmdir(dir) {
                Ok(()) => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(err)
                    if err.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                {
                    sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(source) => return Err(CgroupError::dir("remove", dir, source)),
            }
        }
    }

    /// Waits until the freeze requested through `state_file` has taken hold (v1
    /// `freezer.state` reads FROZEN, v2 `cgroup.events` says `frozen 1`); a process stuck
    /// in the kernel can delay it, and then the kill goes ahead anyway.
    fn wait_frozen(&self, state_file: &Path) -> Result<(), CgroupError> {
        let ops = &self.inner.ops;
        let v2 = state_file.ends_with("cgroup.freeze");
        let events = state_file.with_file_name("cgroup.events");
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while Instant::now() < deadline {
            let frozen = if v2 {
                keyed_value(&ops.read(&events)?, "frozen") == Some(1)
            } else {
                ops.read(state_file)?.trim() == "FROZEN"
            };
            if frozen {
                break;
            }
            sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// SIGKILL to each member, never to kiln itself or to init.
    fn signal_each(&self) -> Result<(), CgroupError> {
        let own = std::process::id() as i32;
        for pid in self.pids()? {
            if pid <= 1 || pid == own {
                continue;
            }
            match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(errno) => {
                    return Err(CgroupError::io(
                        format!("kill process {pid} of"),
                        &self.dirs()[0],
                        io::Error::from(errno),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The directory holding `controller`'s files, if kiln can use that controller.
    fn controller_dir(&self, controller: &str) -> Option<PathBuf> {
        let usable = self.inner.has(controller)
            || matches!(self.inner.version, Version::V2 { .. }) && controller == "cpu";
        usable
            .then(|| self.inner.dir(controller, &self.name))
            .flatten()
    }

    fn oom_kills(&self, memory_dir: &Path) -> Result<u64, CgroupError> {
        let file = match self.inner.version {
            Version::V2 { .. } => "memory.events",
            Version::V1 { .. } => "memory.oom_control",
        };
        let text = self.inner.ops.read(&memory_dir.join(file))?;
        Ok(keyed_value(&text, "oom_kill").unwrap_or(0))
    }

    fn read_number(&self, path: &Path) -> Result<u64, CgroupError> {
        let text = self.inner.ops.read(path)?;
        text.trim()
            .parse()
            .map_err(|_| parse_error(path.to_owned(), &text))
    }

    fn read_limit(&self, path: &Path) -> Result<Option<u64>, CgroupError> {
        let text = self.inner.ops.read(path)?;
        parse_limit(&text).ok_or_else(|| parse_error(path.to_owned(), &text))
    }
}

fn parse_error(path: PathBuf, content: &str) -> CgroupError {
    CgroupError::Parse {
        path,
        content: content.trim().to_owned(),
    }
}

impl fmt::Debug for Cgroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cgroup")
            .field("name", &self.name)
            .field("dirs", &self.dirs())
            .finish()
    }
}
