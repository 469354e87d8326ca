//! The supervisor of a detached container (`kiln __supervise ID`, started by `kiln run -d`
//! and `kiln restart`): starts the container with its output on pipes, copies each line into
//! `log.jsonl` with a timestamp, records pid, exit code and OOM kills in `state.json`,
//! runs its health check on a thread of its own (recording `starting`, `healthy` or
//! `unhealthy`, and killing it when unhealthy under `--restart on-unhealthy`), applies the
//! restart policy with its backoff, and cleans the cgroup once it is done.
//!
//! It stops restarting once `containers/<id>/stop` exists (`kiln stop`, `kiln kill`,
//! `kiln rm -f`). It does not decide what a policy means (`supervise::policy`) nor how a
//! container is made (`runtime::start`); the thread that starts the container waits for it.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::ContainerError;
use super::exec::Target;
use super::health::{Health, HealthCheck, HealthTracker};
use super::lifecycle::{
    Launch, STARTED, cgroup, layout, log_path, remove_files, remove_parent_cgroups, stop_marker,
};
use super::probing::probe_once;
use crate::runtime::cgroup::Cgroup;
use crate::runtime::supervise::{Backoff, ExitReason, LogWriter, RestartPolicy, Stream};
use crate::runtime::{HookError, SandboxStatus, StartHooks, Stdio, start};
use crate::state::{Record, RecordError, Records, Status, process_start_time};
use crate::timestamp::now;

/// The record, shared by the thread that runs the container and its health checker:
/// every change is made and saved under the lock, so neither overwrites the other's.
struct Shared<'a> {
    records: &'a Records,
    record: Mutex<Record>,
}

impl Shared<'_> {
    fn update(&self, change: impl FnOnce(&mut Record)) -> Result<(), RecordError> {
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut record);
        self.records.save(&record)
    }

    fn read<T>(&self, read: impl FnOnce(&Record) -> T) -> T {
        read(&self.record.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct Hooks<'a> {
    cgroup: Option<&'a Cgroup>,
    shared: &'a Shared<'a>,
    checked: bool,
    state_root: &'a Path,
    interfaces: &'a [crate::net::attach::Interface],
}

impl StartHooks for Hooks<'_> {
    fn before_continue(&mut self, pid: i32) -> Result<(), HookError> {
        if let Some(cgroup) = self.cgroup {
            cgroup.attach(pid).map_err(HookError::new)?;
        }
        crate::net::attach::attach(self.state_root, pid, self.interfaces)
            .map_err(HookError::new)?;
        let checked = self.checked;
        self.shared
            .update(|record| {
                let state = &mut record.state;
                state.status = Status::Running;
                state.pid = Some(pid);
                state.pid_start_time = process_start_time(pid);
                state.started_at = Some(now());
                state.exit_code = None;
                state.oom_killed = false;
                if checked {
                    state.health = Some(Health::Starting.as_str().into());
                    state.health_failing_streak = 0;
                    state.health_output = None;
                }
            })
            .map_err(HookError::new)
    }
}

/// Supervises container `id` until it is done; writes the first start's outcome to
/// `report` (then closes it). Returns the exit code of the supervisor process.
pub fn supervise(
    state_root: &Path,
    id: &str,
    report: Option<OwnedFd>,
) -> Result<u8, ContainerError> {
    let mut report = report.map(File::from);
    let records = Records::open(state_root)?;
    let mut record = records.find(id)?;
    let me = std::process::id() as i32;
    record.state.supervisor_pid = Some(me);
    record.state.supervisor_start_time = process_start_time(me);
    records.save(&record)?;
    let outcome = supervise_record(state_root, &records, &mut record, &mut report);
    if let (Err(err), Some(file)) = (&outcome, report.as_mut()) {
        let message = crate::causes::one_line(err).replace('\n', " ");
        let _ = writeln!(file, "failed {} {message}", err.exit_code());
    }
    let remove = Launch::load(&records.dir(&record.id)).is_ok_and(|l| l.remove);
    if remove && records.load(&record.id).is_ok() {
        remove_files(&records, &record)?;
    }
    outcome.map(|()| 0)
}

fn supervise_record(
    state_root: &Path,
    records: &Records,
    record: &mut Record,
    report: &mut Option<File>,
) -> Result<(), ContainerError> {
    let dir = records.dir(&record.id);
    let launch = Launch::load(&dir)?;
    let config = dir.join("config.json");
    let spec = oci_spec::runtime::Spec::load(&config).map_err(|e| ContainerError::Io {
        path: config.clone(),
        source: std::io::Error::other(e),
    })?;
    let policy = RestartPolicy::parse(&record.restart).unwrap_or(RestartPolicy::No);
    let limits = launch.limits();
    let cgroup = cgroup(state_root, &record.id, &limits, false)?;
    let layout = layout(&dir, &launch);
    let marker = stop_marker(records, &record.id);
    let log = log_path(records, &record.id);
    let shared = Shared {
        records,
        record: Mutex::new(record.clone()),
    };
    let mut backoff = Backoff::default();
    // Bound before the first start (a port taken meanwhile is `kiln run -d`'s error), kept
    // across restarts: the container's address does not change.
    let _proxies = super::network::start_proxies(state_root, &launch.interfaces, &launch.publish)?;
    let result = loop {
        let began = Instant::now();
        let mut hooks = Hooks {
            cgroup: cgroup.as_ref(),
            shared: &shared,
            checked: launch.health.is_some(),
            state_root,
            interfaces: &launch.interfaces,
        };
        let unhealthy = AtomicBool::new(false);
        let status = match start(&spec, &layout, Stdio::Pipe { stdin: false }, &mut hooks) {
            Ok(mut started) => {
                if let Some(mut file) = report.take() {
                    let _ = writeln!(file, "{STARTED}");
                }
                let copiers = [
                    (started.stdout.take(), Stream::Stdout),
                    (started.stderr.take(), Stream::Stderr),
                ]
                .into_iter()
                .filter_map(|(fd, stream)| fd.map(|fd| copy_lines(fd, stream, &log)))
                .collect::<Vec<_>>();
                let status = std::thread::scope(|scope| {
                    let (stop, stopped) = mpsc::channel::<()>();
                    if let Some(check) = &launch.health {
                        let target = Target {
                            record: shared.read(Record::clone),
                            pid: started.pid(),
                            spec: spec.clone(),
                            cgroup: cgroup.clone(),
                        };
                        let (shared, unhealthy) = (&shared, &unhealthy);
                        scope.spawn(move || {
                            let kill = policy == RestartPolicy::OnUnhealthy;
                            monitor(shared, &target, check, kill, &stopped, unhealthy)
                        });
                    }
                    // The thread that started the container waits for it.
                    let status = started.wait();
                    drop(stop);
                    status
                });
                for copier in copiers {
                    let _ = copier.join();
                }
                match status {
                    Ok(status) => status.code(),
                    Err(err) => err.exit_code(),
                }
            }
            // The first start's failure is `kiln run -d`'s error; later ones count as exits.
            Err(err) if report.is_some() => break Err(ContainerError::Sandbox(err)),
            Err(err) => err.exit_code(),
        };
        let oom = status == SandboxStatus::Signaled(9).code()
            && cgroup
                .as_ref()
                .is_some_and(|c| c.oom_killed().unwrap_or(false));
        let reason = if marker.exists() {
            ExitReason::StoppedByUser
        } else if unhealthy.load(Ordering::SeqCst) {
            ExitReason::Unhealthy
        } else {
            ExitReason::Exited(status)
        };
        let restarts = shared.read(|r| r.state.restarts);
        let restart = policy.should_restart(reason, restarts);
        shared.update(|record| {
            let state = &mut record.state;
            state.pid = None;
            state.pid_start_time = None;
            state.exit_code = Some(status);
            state.oom_killed = oom;
            state.finished_at = Some(now());
            state.status = if restart {
                Status::Restarting
            } else {
                Status::Exited
            };
        })?;
        if !restart {
            break Ok(());
        }
        if !wait_unless_stopped(backoff.after_run(began.elapsed()), &marker) {
            break Ok(());
        }
        shared.update(|record| record.state.restarts += 1)?;
    };
    if let Some(cgroup) = &cgroup {
        cgroup.kill_all()?;
        cgroup.remove()?;
        remove_parent_cgroups(state_root);
    }
    shared.update(|record| {
        let state = &mut record.state;
        state.status = Status::Exited;
        state.pid = None;
        state.supervisor_pid = None;
        state.supervisor_start_time = None;
        if result.is_err() {
            state.finished_at = Some(now());
        }
    })?;
    *record = shared.read(Record::clone);
    result
}

/// Runs `check` every interval until `stopped` says the container has exited; records
/// each round. With `kill` (`--restart on-unhealthy`), kills the container once it turns
/// unhealthy and sets `unhealthy` so that the supervisor knows why it ended.
fn monitor(
    shared: &Shared<'_>,
    target: &Target,
    check: &HealthCheck,
    kill: bool,
    stopped: &mpsc::Receiver<()>,
    unhealthy: &AtomicBool,
) {
    let began = Instant::now();
    let mut tracker = HealthTracker::new(check.retries);
    loop {
        match stopped.recv_timeout(check.interval) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let round = probe_once(target, check);
        let in_start_period = began.elapsed() < check.start_period;
        let changed = tracker.record(round.passed, in_start_period);
        // A full disk loses a health record, not the container.
        let _ = shared.update(|record| {
            let state = &mut record.state;
            state.health = Some(tracker.status.as_str().into());
            state.health_failing_streak = tracker.failing_streak;
            state.health_output = Some(round.output.clone());
        });
        if kill && changed == Some(Health::Unhealthy) {
            unhealthy.store(true, Ordering::SeqCst);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(target.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            return;
        }
    }
}

/// Sleeps `wait`, waking early (and returning `false`) when the stop marker appears.
fn wait_unless_stopped(wait: Duration, marker: &Path) -> bool {
    let until = Instant::now() + wait;
    loop {
        if marker.exists() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Copies the lines of `fd` into the log until the last writer closes it.
fn copy_lines(fd: OwnedFd, stream: Stream, log: &Path) -> std::thread::JoinHandle<()> {
    let log = log.to_path_buf();
    std::thread::spawn(move || {
        let Ok(mut writer) = LogWriter::open(&log) else {
            return;
        };
        let mut reader = BufReader::new(File::from(fd));
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    // A full disk loses lines, not the container.
                    let _ = writer.append(stream, &line);
                }
            }
        }
    })
}
