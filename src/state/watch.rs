//! Waiting for a container's record to change, without polling: an inotify watch on its
//! directory wakes the waiter when `state.json` is replaced (by rename), when a file such
//! as the stop marker appears, or when the directory goes away. A wake-up says "look
//! again", never what changed: the caller reads the record and decides.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// A watch on one container's directory (see [`super::Records::watch`]).
#[derive(Debug)]
pub struct RecordWatch {
    inotify: Inotify,
}

impl RecordWatch {
    pub(super) fn new(dir: &Path) -> io::Result<RecordWatch> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        inotify.add_watch(
            dir,
            AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_DELETE_SELF
                | AddWatchFlags::IN_MOVE_SELF
                | AddWatchFlags::IN_ONLYDIR,
        )?;
        Ok(RecordWatch { inotify })
    }

    /// Waits at most `timeout` for a change; whether one came. Every change that came
    /// before is consumed, so the next wait waits for a new one.
    pub fn wait(&self, timeout: Duration) -> bool {
        let changed = crate::process::wait_readable(self.inotify.as_fd(), timeout);
        if changed {
            // Non-blocking: empties the queue and returns EAGAIN once it is empty.
            while matches!(self.inotify.read_events(), Ok(events) if !events.is_empty()) {}
        }
        changed
    }
}

impl AsFd for RecordWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }
}
