//! Another process, held by a pidfd (Linux 5.3+): signalled and waited for without races
//! with pid reuse and without sleep-polling. A pidfd becomes readable when its process
//! exits, so "wait until it is gone, at most T" is one `poll`, and `kiln rm -f` returns as
//! soon as the supervisor it waits for has ended instead of on the next tick of a timer.
//!
//! A process is named by its pid and, where a record kept it, its start time (field 22 of
//! `/proc/PID/stat`): [`Pidfd::open`] checks the start time *after* opening, so the
//! descriptor refers to that very process or is not returned. Works on any process, not
//! only children. It knows nothing of containers or records: callers pass pids.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::Signal;

/// The start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/PID/stat`); `None` if it does not exist or is a zombie. Together with the pid it
/// names a process for good: a recycled pid has another start time.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // `after` starts at field 3 (state).
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// A process held by a pidfd.
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pid: i32,
}

impl Pidfd {
    /// Process `pid` — when `start_time` is given, only if it is still the process that
    /// started then. `None` when it is gone, a zombie, or another process now.
    pub fn open(pid: i32, start_time: Option<u64>) -> Option<Pidfd> {
        if pid <= 0 {
            return None;
        }
        let pidfd = Pidfd::open_any(pid).ok()?;
        // Checked after opening: from here on the descriptor cannot change process.
        let now = process_start_time(pid)?;
        if start_time.is_some_and(|t| t != now) {
            return None;
        }
        Some(pidfd)
    }

    /// Process `pid`, whatever it is (zombies included): `pidfd_open(2)`.
    pub fn open_any(pid: i32) -> io::Result<Pidfd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Pidfd { fd, pid })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal`: `Ok(false)` if the process has already exited.
    pub fn signal(&self, signal: Signal) -> io::Result<bool> {
        // SAFETY: pidfd_send_signal takes our descriptor, a signal number, no siginfo and
        // no flags.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if sent == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ESRCH) => Ok(false),
            _ => Err(err),
        }
    }

    /// Whether it has exited (a zombie has).
    pub fn exited(&self) -> bool {
        self.wait(Duration::ZERO)
    }

    /// Waits at most `timeout` for it to exit; whether it did.
    pub fn wait(&self, timeout: Duration) -> bool {
        wait_readable(self.fd.as_fd(), timeout)
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Waits at most `timeout` for `fd` to be readable (a pidfd: its process exited); whether
/// it is. Interrupted waits resume with the time left.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let mut fds = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up: a 0.5 ms wait must not become a busy loop of zero-timeout polls.
        let millis = libc::c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid array of one pollfd.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, millis) };
        match ready {
            n if n > 0 => return true,
            0 => return false,
            _ if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            // A bad descriptor cannot become readable: report "not yet".
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_seen_running_then_exited() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = process_start_time(pid).expect("it runs");
        let pidfd = Pidfd::open(pid, Some(start)).expect("the same process");
        assert!(
            Pidfd::open(pid, Some(start + 1)).is_none(),
            "another start time"
        );
        assert!(!pidfd.exited());
        assert!(!pidfd.wait(Duration::from_millis(20)));
        assert!(pidfd.signal(Signal::SIGKILL).unwrap());
        assert!(pidfd.wait(Duration::from_secs(30)), "readable once it died");
        // A zombie is not running: no start time, so `open` refuses it.
        assert_eq!(process_start_time(pid), None);
        assert!(Pidfd::open(pid, None).is_none());
        child.wait().unwrap();
        assert!(!pidfd.signal(Signal::SIGKILL).unwrap(), "reaped: ESRCH");
    }

    #[test]
    fn nonsense_pids_are_not_opened() {
        assert!(Pidfd::open(0, None).is_none());
        assert!(Pidfd::open(-1, None).is_none());
    }
}
