//! The supervisor of a detached container (`kiln-supervise`, or `kiln __supervise ID`,
//! started by `kiln run -d`, `kiln restart` and `kiln up`): starts the container with its
//! output on pipes, copies each line into `log.jsonl` with a timestamp (capped and rotated:
//! `runtime::supervise::rotate`), records pid, exit code and OOM kills in `state.json`,
//! runs its health check (recording `starting`, `healthy` or `unhealthy`, and killing it
//! when unhealthy under `--restart on-unhealthy`), applies the restart policy with its
//! backoff, and cleans the cgroup once it is done.
//!
//! It is one thread with one `poll` loop per run (the container's pidfd, its two output
//! pipes, the health timer): a supervisor lives as long as its container, one per
//! container, so what it costs in memory and threads is paid a thousand times in a large
//! project. Only a health round in progress has a thread of its own, and a published port
//! its proxy's.
//!
//! It stops restarting once `containers/<id>/stop` exists (`kiln stop`, `kiln kill`,
//! `kiln rm -f`). It does not decide what a policy means (`supervise::policy`) nor how a
//! container is made (`runtime::start`).

use std::cell::Cell;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::ContainerError;
use super::exec::Target;
use super::health::{Health, HealthCheck, HealthTracker};
use super::lifecycle::{
    Launch, STARTED, cgroup, layout, log_path, remove_files, remove_parent_cgroups, stop_marker,
};
use super::probing::{RoundResult, probe_once};
use crate::process::Pidfd;
use crate::runtime::cgroup::Cgroup;
use crate::runtime::supervise::{Backoff, ExitReason, LogLimits, LogWriter, RestartPolicy, Stream};
use crate::runtime::{HookError, SandboxStatus, StartHooks, Stdio, start};
use crate::state::{Record, RecordError, RecordWatch, Records, Status, process_start_time};
use crate::timestamp::now;

/// The record as the supervisor keeps it: every change is made and saved under the lock
/// (the start hooks and the health rounds each change their part of it).
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

/// The whole of a supervisor process (`kiln-supervise` and `kiln __supervise` both are
/// this): sets its allocator up for a long life (`shed::prepare`), moves to `/` (not to
/// keep the starting command's directory busy for as long as the container runs), takes
/// the report pipe from [`super::REPORT_FD`] if it is open, and supervises container `id`. Returns the process's exit code; an error goes to stderr on
/// one line (a supervisor's stderr is /dev/null, unless someone runs it by hand).
pub fn supervise_entry(state_root: &Path, id: &str) -> u8 {
    crate::runtime::supervise::shed::prepare();
    let _ = std::env::set_current_dir("/");
    let report = take_report_fd();
    match supervise(state_root, id, report) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kiln supervise: {}", crate::causes::one_line(&err));
            1
        }
    }
}

/// The report pipe `kiln run -d` put on [`super::REPORT_FD`], made close-on-exec (it is
/// not for the container's processes); `None` when that descriptor is not open.
fn take_report_fd() -> Option<OwnedFd> {
    use std::os::fd::FromRawFd;
    let fd = super::REPORT_FD;
    // SAFETY: fcntl only queries the descriptor's flags; an invalid one gives an error.
    if unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the starting kiln put the report pipe on this descriptor for this process
    // alone; nothing else in the supervisor owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sets FD_CLOEXEC on a descriptor this process owns.
    unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
    Some(owned)
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
    // By id, as `kiln run -d` names it: one record read, not a scan of every name and
    // record of the root (which made each start cost more the more containers there were).
    let mut record = match crate::state::ContainerId::parse(id) {
        Some(id) => records.load(&id)?,
        None => records.find(id)?,
    };
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
        super::lifecycle::remove_anonymous_volumes(&records, &record);
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
    let cgroup = cgroup(state_root, &record.id, &limits, &spec, false)?;
    let layout = layout(&dir, &launch);
    let marker = stop_marker(records, &record.id);
    let log = log_path(records, &record.id);
    let shared = Shared {
        records,
        record: Mutex::new(record.clone()),
    };
    let mut backoff = Backoff::default();
    // Wakes the backoff wait when the stop marker appears.
    let watch = records.watch(&record.id).ok();
    // Bound before the first start (a port taken meanwhile is `kiln run -d`'s error), kept
    // across restarts: the container's address does not change.
    let net_root = launch.net_root(state_root);
    let _proxies = super::network::start_proxies(net_root, &launch.interfaces, &launch.publish)?;
    let result = loop {
        let began = Instant::now();
        let mut hooks = Hooks {
            cgroup: cgroup.as_ref(),
            shared: &shared,
            checked: launch.health.is_some(),
            state_root: net_root,
            interfaces: &launch.interfaces,
        };
        let unhealthy = Cell::new(false);
        let status = match start(&spec, &layout, Stdio::Pipe { stdin: false }, &mut hooks) {
            Ok(mut started) => {
                if let Some(mut file) = report.take() {
                    let _ = writeln!(file, "{STARTED}");
                }
                // `kiln stop` or `rm -f` may have made the marker after it was last looked
                // at and read the record before this run's pid was in it: then nobody else
                // stops this run. (Made after the record was saved, the check sees any
                // marker made before the record was read.)
                if marker.exists() {
                    let _ = started.signal(nix::sys::signal::Signal::SIGKILL);
                }
                let health = launch.health.as_ref().map(|check| Monitor {
                    check,
                    target: Target {
                        record: shared.read(Record::clone),
                        pid: started.pid(),
                        spec: spec.clone(),
                        cgroup: cgroup.clone(),
                    },
                    kill: policy == RestartPolicy::OnUnhealthy,
                    tracker: std::cell::RefCell::new(HealthTracker::new(check.retries)),
                    began: Instant::now(),
                });
                let status = follow(
                    &mut started,
                    (&log, launch.log),
                    health,
                    &shared,
                    &unhealthy,
                );
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
        } else if unhealthy.get() {
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
        if !wait_unless_stopped(backoff.after_run(began.elapsed()), &marker, &watch) {
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

/// Sleeps `wait`, waking early (and returning `false`) when the stop marker appears.
fn wait_unless_stopped(wait: Duration, marker: &Path, watch: &Option<RecordWatch>) -> bool {
    let until = Instant::now() + wait;
    loop {
        if marker.exists() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        match watch {
            Some(watch) => {
                watch.wait(left);
            }
            None => std::thread::sleep(left.min(Duration::from_millis(50))),
        }
    }
}

/// The health check of one run: a round every `interval` while the container runs.
struct Monitor<'a> {
    check: &'a HealthCheck,
    target: Target,
    /// `--restart on-unhealthy`: kill the container once it turns unhealthy.
    kill: bool,
    /// The rounds so far (changed by the loop, never by a round's thread).
    tracker: std::cell::RefCell<HealthTracker>,
    began: Instant,
}

/// Follows one run of the container on this one thread until it has exited and its
/// output has ended: copies each line of its stdout and stderr into the log as it comes,
/// and runs a health round every interval. A single `poll` waits on the container's pidfd,
/// both pipes, the next round's time and the end of a round in progress. A round runs on
/// a short-lived thread (an exec probe may take its whole timeout, and the output must
/// keep flowing meanwhile); between rounds the supervisor is one thread. Under
/// `--restart on-unhealthy`, a round that turns the container unhealthy kills it and sets
/// `unhealthy`, so that the supervisor knows why it ended.
fn follow(
    started: &mut crate::runtime::Started,
    (log, limits): (&Path, LogLimits),
    health: Option<Monitor<'_>>,
    shared: &Shared<'_>,
    unhealthy: &Cell<bool>,
) -> Result<SandboxStatus, crate::runtime::SandboxError> {
    let mut writer = LogWriter::open(log, limits).ok();
    let mut outputs: Vec<Output> = [
        (started.stdout.take(), Stream::Stdout),
        (started.stderr.take(), Stream::Stderr),
    ]
    .into_iter()
    .filter_map(|(fd, stream)| Output::new(fd?, stream).ok())
    .collect();
    // Without a pidfd (it cannot fail on a kernel kiln runs on), the end of the output
    // says the container is gone.
    let pidfd = Pidfd::open_any(started.pid()).ok();
    let mut status = None;
    let mut next_round = health.as_ref().map(|h| Instant::now() + h.check.interval);
    // Starting the container (the spec, the rootfs, the network) left freed memory in the
    // heap, a deep stack and much of kiln's code mapped; the supervisor then lives as long
    // as the container: give them back.
    crate::runtime::supervise::shed::shed();
    std::thread::scope(|scope| {
        // A round in progress: its thread, and the read end of a pipe whose write end the
        // thread holds (it hangs up when the round is done).
        let mut round: Option<(std::thread::ScopedJoinHandle<'_, RoundResult>, OwnedFd)> = None;
        loop {
            let running = status.is_none() && pidfd.is_some();
            if !running && outputs.is_empty() && round.is_none() {
                break;
            }
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4);
            if running && let Some(pidfd) = &pidfd {
                fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
            }
            for output in &outputs {
                fds.push(PollFd::new(output.file.as_fd(), PollFlags::POLLIN));
            }
            if let Some((_, done)) = &round {
                fds.push(PollFd::new(done.as_fd(), PollFlags::POLLIN));
            }
            let timeout = match next_round {
                Some(at) if running && round.is_none() => {
                    let left = at.saturating_duration_since(Instant::now());
                    // Rounded up: a wait of 0.4 ms must not become a busy loop.
                    PollTimeout::try_from(left.as_micros().div_ceil(1000))
                        .unwrap_or(PollTimeout::MAX)
                }
                _ => PollTimeout::NONE,
            };
            let ready: Vec<bool> = match poll(&mut fds, timeout) {
                Ok(_) => fds
                    .iter()
                    .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
                    .collect(),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => vec![true; fds.len()],
            };
            drop(fds);
            let mut ready = ready.into_iter();
            if running && pidfd.is_some() && ready.next() == Some(true) {
                status = Some(started.wait());
            }
            let mut ended = Vec::new();
            for (index, output) in outputs.iter_mut().enumerate() {
                if ready.next() == Some(true) && !output.copy(writer.as_mut()) {
                    ended.push(index);
                }
            }
            for index in ended.into_iter().rev() {
                outputs.remove(index);
            }
            if round.is_some() && ready.next() == Some(true) {
                let (thread, _) = round.take().expect("a round in progress");
                let result = thread.join().expect("a health round panicked");
                if let Some(monitor) = &health {
                    monitor.record(result, shared, started, unhealthy);
                    next_round = Some(Instant::now() + monitor.check.interval);
                }
            }
            let due = next_round.is_some_and(|at| Instant::now() >= at);
            if due && round.is_none() && status.is_none() && !unhealthy.get() {
                if let Some(monitor) = &health {
                    let Ok((done, hang_up)) = nix::unistd::pipe2(OFlag::O_CLOEXEC) else {
                        next_round = Some(Instant::now() + monitor.check.interval);
                        continue;
                    };
                    let (target, check) = (&monitor.target, monitor.check);
                    let thread = scope.spawn(move || {
                        let result = probe_once(target, check);
                        drop(hang_up);
                        result
                    });
                    round = Some((thread, done));
                    next_round = None;
                }
            }
        }
    });
    match status {
        Some(status) => status,
        None => started.wait(),
    }
}

impl Monitor<'_> {
    /// Records a round's outcome; kills the container when it turns unhealthy under
    /// `--restart on-unhealthy`.
    fn record(
        &self,
        round: RoundResult,
        shared: &Shared<'_>,
        started: &crate::runtime::Started,
        unhealthy: &Cell<bool>,
    ) {
        let in_start_period = self.began.elapsed() < self.check.start_period;
        let mut tracker = self.tracker.borrow_mut();
        let changed = tracker.record(round.passed, in_start_period);
        // A full disk loses a health record, not the container.
        let _ = shared.update(|record| {
            let state = &mut record.state;
            state.health = Some(tracker.status.as_str().into());
            state.health_failing_streak = tracker.failing_streak;
            state.health_output = Some(round.output.clone());
        });
        if self.kill && changed == Some(Health::Unhealthy) {
            unhealthy.set(true);
            let _ = started.signal(nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// The longest piece of a line one log record holds.
const MAX_LINE: usize = 16 * 1024;

/// One of the container's output pipes, split into lines for the log.
struct Output {
    file: File,
    stream: Stream,
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
}

impl Output {
    fn new(fd: OwnedFd, stream: Stream) -> nix::Result<Output> {
        let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
        fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(Output {
            file: File::from(fd),
            stream,
            partial: Vec::new(),
        })
    }

    /// Copies what the pipe holds into the log, line by line; `false` once every writer
    /// has closed it (a last line without a newline is logged as it is).
    fn copy(&mut self, mut writer: Option<&mut LogWriter>) -> bool {
        let mut buffer = [0u8; 4096];
        loop {
            match self.file.read(&mut buffer) {
                Ok(0) => {
                    if !self.partial.is_empty()
                        && let Some(writer) = writer.as_deref_mut()
                    {
                        // A full disk loses lines, not the container.
                        let _ = writer.append(self.stream, &self.partial);
                    }
                    self.partial.clear();
                    return false;
                }
                Ok(n) => {
                    let mut rest = &buffer[..n];
                    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                        let line: &[u8] = if self.partial.is_empty() {
                            &rest[..end]
                        } else {
                            self.partial.extend_from_slice(&rest[..end]);
                            &self.partial
                        };
                        if let Some(writer) = writer.as_deref_mut() {
                            let _ = writer.append(self.stream, line);
                        }
                        self.partial.clear();
                        rest = &rest[end + 1..];
                    }
                    self.partial.extend_from_slice(rest);
                    if self.partial.len() >= MAX_LINE {
                        // A line without end is logged in pieces (Docker's 16 KiB), so
                        // that neither the supervisor's memory nor one record grows
                        // without bound.
                        if let Some(writer) = writer.as_deref_mut() {
                            let _ = writer.append(self.stream, &self.partial);
                        }
                        self.partial.clear();
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}
