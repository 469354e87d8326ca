//! `kiln wait`: blocks until a container does not run, then gives its exit code, as
//! `docker wait` does (the condition `not-running`: a created container gives 0 at once,
//! one between two runs of its restart policy the code of the run that ended).
//!
//! Event-driven: one `poll` on an inotify watch of the container's record and the pidfds
//! of its pid 1 and its supervisor; every wake-up reads the record again. No timer ticks,
//! except a bounded grace for a record whose writer died with the container.

use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::ContainerError;
use crate::state::{Record, RecordError, Records, Status};

/// How long a record that says running, with its process and every writer gone, is given
/// to be written before its exit code is declared unknown.
const WRITER_GRACE: Duration = Duration::from_secs(10);

/// What `kiln wait` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited {
    pub exit_code: i32,
}

/// Waits until `record`'s container does not run; its exit code.
pub fn wait(records: &Records, record: &Record) -> Result<Waited, ContainerError> {
    let name = record.reference();
    // Watched before the first read: a change after it wakes the poll below.
    let watch = records.watch(&record.id)?;
    let mut orphaned_since: Option<std::time::Instant> = None;
    loop {
        let current = match records.load(&record.id) {
            Ok(current) => current,
            Err(RecordError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(ContainerError::RemovedWhileWaiting { name });
            }
            Err(err) => return Err(err.into()),
        };
        let state = &current.state;
        let supervisor = state.supervisor();
        let process = state.process();
        let code = |code: Option<i32>| {
            code.map(|exit_code| Waited { exit_code })
                .ok_or_else(|| ContainerError::ExitUnknown { name: name.clone() })
        };
        let mut timeout = PollTimeout::NONE;
        match state.status {
            // Not started (or on its way: its supervisor holds it).
            Status::Created if supervisor.is_none() => return code(state.exit_code.or(Some(0))),
            Status::Exited => return code(state.exit_code),
            Status::Restarting => return code(state.exit_code),
            Status::Running if process.is_none() && supervisor.is_none() => {
                // Its pid 1 is gone and nobody is left to say how it ended, unless a
                // foreground `kiln run` is writing it now: wait for that, a bounded time.
                let since = *orphaned_since.get_or_insert_with(std::time::Instant::now);
                let left = WRITER_GRACE.saturating_sub(since.elapsed());
                if left.is_zero() {
                    return Err(ContainerError::ExitUnknown { name });
                }
                timeout =
                    PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
            }
            Status::Created | Status::Running => {}
        }
        let mut fds = vec![PollFd::new(watch.as_fd(), PollFlags::POLLIN)];
        for pidfd in [&process, &supervisor].into_iter().flatten() {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => {
                return Err(ContainerError::Io {
                    path: records.dir(&record.id),
                    source: errno.into(),
                });
            }
        }
        drop(fds);
        // Empties the queue of changes seen: the record is read again anyway.
        watch.wait(Duration::ZERO);
    }
}
