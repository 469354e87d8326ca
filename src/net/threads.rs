//! Two small tools the DNS server and the port proxy share: [`Stop`], which wakes every
//! thread blocked on a socket so it can be joined, and [`in_netns`], which runs a closure on
//! a thread inside another network namespace (sockets made there stay there).
//!
//! It does not create or name namespaces: callers pass a namespace's file descriptor.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// A stop signal threads can wait on together with a socket: a pipe whose write end is
/// closed on stop, so its read end reports hang-up to every poller, for ever.
#[derive(Debug)]
pub(crate) struct Stop {
    stopped: AtomicBool,
    read: OwnedFd,
    write: Mutex<Option<OwnedFd>>,
}

/// What [`Stop::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    Readable,
    Stopped,
    TimedOut,
}

impl Stop {
    pub(crate) fn new() -> io::Result<Stop> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        Ok(Stop {
            stopped: AtomicBool::new(false),
            read,
            write: Mutex::new(Some(write)),
        })
    }

    /// Wakes every waiter, now and later.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Ok(mut write) = self.write.lock() {
            write.take();
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Waits until `fd` is readable (or has an error to report), the stop signal, or
    /// `timeout` (`None`: no limit). A stop wins over a readable socket.
    pub(crate) fn wait(&self, fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<Wait> {
        let timeout = match timeout {
            None => PollTimeout::NONE,
            Some(t) => PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX),
        };
        loop {
            let mut fds = [
                PollFd::new(self.read.as_fd(), PollFlags::POLLIN),
                PollFd::new(fd, PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
                Ok(0) => return Ok(Wait::TimedOut),
                Ok(_) => {
                    if self.is_stopped() || fds[0].any().unwrap_or(false) {
                        return Ok(Wait::Stopped);
                    }
                    return Ok(Wait::Readable);
                }
            }
        }
    }
}

/// [`super::netns::run_in_fd`] with the `io::Error` the socket code around it speaks.
pub(crate) fn in_netns<T: Send>(
    netns: BorrowedFd<'_>,
    work: impl FnOnce() -> T + Send,
) -> io::Result<T> {
    super::netns::run_in_fd(netns, work).map_err(|err| match err {
        super::NetError::Enter(cause) => cause,
        other => io::Error::other(other),
    })
}
