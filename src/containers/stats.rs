//! `kiln stats`: what running containers use, as `docker stats` shows it — CPU % from two
//! readings of the cgroup's CPU time over the wall time between them (100 % is one CPU),
//! memory without the inactive file cache against the limit (the host's memory when there
//! is none), pids, network bytes of the container's own interfaces and block I/O bytes.
//!
//! Owns choosing the containers, reading their counters and turning two readings into
//! figures. The cgroup files are `runtime::cgroup`'s; network counters come from
//! `/proc/PID/net/dev` of the container's pid 1, which shows the interfaces of its network
//! namespace. It must not print: rendering is the command line's.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{ContainerError, cgroup_name, io_err};
use crate::runtime::cgroup::{Hierarchy, Stats};
use crate::state::{Record, Records, Status};

/// One container's figures, as `kiln stats --format json` prints them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContainerStats {
    pub name: String,
    pub id: String,
    /// CPU time used per wall time between two readings, in percent of one CPU (a process
    /// busy on two CPUs shows 200).
    pub cpu_percent: f64,
    /// Bytes of memory charged to the container, inactive file cache left out.
    pub memory_usage: u64,
    /// The container's memory limit, or the host's memory when it has none (or a larger
    /// one).
    pub memory_limit: u64,
    pub memory_percent: f64,
    /// Processes (and threads) in the container now.
    pub pids: u64,
    /// `None`: no pids limit.
    pub pids_limit: Option<u64>,
    /// Bytes received on the container's interfaces, `lo` left out.
    pub net_rx: u64,
    /// Bytes sent from the container's interfaces, `lo` left out.
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
}

/// Received and sent bytes of a network namespace's interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetIo {
    pub rx: u64,
    pub tx: u64,
}

/// The raw counters of one container at one moment.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    cgroup: Stats,
    net: NetIo,
}

/// Reads containers' counters again and again, remembering the last reading of each so
/// that CPU time turns into a percentage.
#[derive(Debug)]
pub struct Sampler {
    records: Records,
    state_root: PathBuf,
    /// `None` on a machine without cgroups: containers then run without one, and their
    /// cgroup figures read as zero.
    hierarchy: Option<Hierarchy>,
    host_memory: u64,
    previous: HashMap<String, Reading>,
}

impl Sampler {
    pub fn new(state_root: &Path) -> Result<Sampler, ContainerError> {
        Ok(Sampler {
            records: Records::open(state_root)?,
            state_root: state_root.to_path_buf(),
            hierarchy: Hierarchy::detect().ok(),
            host_memory: host_memory()?,
            previous: HashMap::new(),
        })
    }

    /// The containers to show, oldest first: those named (by name or id prefix), else every
    /// running one. A name that matches nothing is an error; a named container that does
    /// not run is one too when `require_running`, and is left out otherwise (it stopped
    /// while `kiln stats` was watching).
    pub fn select(
        &self,
        queries: &[String],
        require_running: bool,
    ) -> Result<Vec<Record>, ContainerError> {
        let running = |record: &Record| record.state.status == Status::Running;
        if queries.is_empty() {
            let all = self.records.list()?;
            return Ok(all.iter().map(Record::reconciled).filter(running).collect());
        }
        let mut selected: Vec<Record> = Vec::new();
        for query in queries {
            let record = self.records.find(query)?.reconciled();
            if !running(&record) {
                if require_running {
                    return Err(ContainerError::NotRunning { name: record.name });
                }
                continue;
            }
            if !selected.iter().any(|r| r.id == record.id) {
                selected.push(record);
            }
        }
        Ok(selected)
    }

    /// Reads the counters of `containers` and returns their figures. CPU % is over the time
    /// since the previous call for that container, and 0 the first time. Containers that
    /// stop while being read are left out.
    pub fn sample(&mut self, containers: &[Record]) -> Result<Vec<ContainerStats>, ContainerError> {
        let mut figures = Vec::new();
        let mut seen = HashMap::new();
        for record in containers {
            let Some(reading) = self.read(record)? else {
                continue;
            };
            let key = record.id.as_str().to_string();
            let previous = self.previous.get(&key);
            figures.push(figures_of(record, previous, &reading, self.host_memory));
            seen.insert(key, reading);
        }
        self.previous = seen;
        Ok(figures)
    }

    /// `None` when the container is no longer running.
    fn read(&self, record: &Record) -> Result<Option<Reading>, ContainerError> {
        let gone = || {
            self.records
                .load(&record.id)
                .map(|r| r.reconciled().state.status != Status::Running)
                .unwrap_or(true)
        };
        let Some(pid) = record.state.pid else {
            return Ok(None);
        };
        let cgroup = match self.cgroup_stats(record) {
            Ok(stats) => stats,
            Err(_) if gone() => return Ok(None),
            Err(err) => return Err(err),
        };
        let at = Instant::now();
        let net = match net_io(pid) {
            Ok(net) => net,
            Err(_) if gone() => return Ok(None),
            Err(err) => return Err(err),
        };
        Ok(Some(Reading { at, cgroup, net }))
    }

    fn cgroup_stats(&self, record: &Record) -> Result<Stats, ContainerError> {
        let Some(hierarchy) = &self.hierarchy else {
            return Ok(Stats::default());
        };
        match hierarchy.open(&cgroup_name(&self.state_root, &record.id))? {
            Some(cgroup) => Ok(cgroup.stats()?),
            None => Ok(Stats::default()),
        }
    }
}

/// `--no-stream`: the figures of the containers named (every running one when none is)
/// from two readings `interval` apart.
pub fn snapshot(
    state_root: &Path,
    queries: &[String],
    interval: Duration,
) -> Result<Vec<ContainerStats>, ContainerError> {
    let mut sampler = Sampler::new(state_root)?;
    let containers = sampler.select(queries, true)?;
    sampler.sample(&containers)?;
    std::thread::sleep(interval);
    sampler.sample(&containers)
}

/// Turns a reading (and the one before, for CPU) into the figures `kiln stats` shows.
fn figures_of(
    record: &Record,
    previous: Option<&Reading>,
    now: &Reading,
    host_memory: u64,
) -> ContainerStats {
    let stats = &now.cgroup;
    let cpu_percent = previous.map_or(0.0, |before| {
        cpu_percent(
            before.cgroup.cpu_usage_ns,
            stats.cpu_usage_ns,
            now.at.saturating_duration_since(before.at),
        )
    });
    let memory_usage = stats
        .memory_usage
        .saturating_sub(stats.memory_inactive_file);
    let memory_limit = match stats.memory_limit {
        Some(limit) if host_memory > 0 => limit.min(host_memory),
        Some(limit) => limit,
        None => host_memory,
    };
    ContainerStats {
        name: record.name.clone(),
        id: record.id.as_str().to_string(),
        cpu_percent,
        memory_usage,
        memory_limit,
        memory_percent: percent(memory_usage as f64, memory_limit as f64),
        pids: stats.pids_current,
        pids_limit: stats.pids_limit,
        net_rx: now.net.rx,
        net_tx: now.net.tx,
        block_read: stats.block_read,
        block_write: stats.block_write,
    }
}

/// CPU time used between two readings per wall time between them, in percent of one CPU.
/// 0 when no time passed or the counter went back (a new cgroup after a restart).
pub fn cpu_percent(before_ns: u64, after_ns: u64, wall: Duration) -> f64 {
    let wall_ns = wall.as_nanos() as f64;
    if wall_ns == 0.0 || after_ns < before_ns {
        return 0.0;
    }
    (after_ns - before_ns) as f64 / wall_ns * 100.0
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole == 0.0 {
        0.0
    } else {
        part / whole * 100.0
    }
}

/// The network counters of process `pid`'s network namespace. Zero when that namespace is
/// kiln's own (`--network host`): those are the host's counters, not the container's.
fn net_io(pid: i32) -> Result<NetIo, ContainerError> {
    let namespace = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let theirs = std::fs::metadata(&namespace).map_err(io_err(&namespace))?;
    let own = Path::new("/proc/self/ns/net");
    let ours = std::fs::metadata(own).map_err(io_err(own))?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return Ok(NetIo::default());
    }
    let path = PathBuf::from(format!("/proc/{pid}/net/dev"));
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    parse_net_dev(&text).ok_or_else(|| ContainerError::Io {
        path,
        source: std::io::Error::other("unexpected format"),
    })
}

/// Received and sent bytes summed over the interfaces of a `/proc/net/dev` table, `lo`
/// left out. Two header lines, then `NAME: rx_bytes rx_packets … (8 receive columns)
/// tx_bytes …`. `None` when a line is not of that shape.
pub fn parse_net_dev(text: &str) -> Option<NetIo> {
    let mut total = NetIo::default();
    for line in text.lines().skip(2).filter(|line| !line.trim().is_empty()) {
        let (name, counters) = line.split_once(':')?;
        let counters: Vec<u64> = counters
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        if counters.len() < 9 {
            return None;
        }
        if name.trim() == "lo" {
            continue;
        }
        total.rx = total.rx.saturating_add(counters[0]);
        total.tx = total.tx.saturating_add(counters[8]);
    }
    Some(total)
}

/// The host's memory in bytes (`MemTotal` of `/proc/meminfo`).
fn host_memory() -> Result<u64, ContainerError> {
    let path = Path::new("/proc/meminfo");
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    parse_mem_total(&text).ok_or_else(|| ContainerError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other("no MemTotal line"),
    })
}

/// `MemTotal:  16314020 kB` → bytes.
pub fn parse_mem_total(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        kib.checked_mul(1024)
    })
}

#[cfg(test)]
mod tests;
