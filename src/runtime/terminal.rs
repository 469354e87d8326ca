//! kiln's own terminal: whether stdin is one, its size (a container's pty starts with it,
//! and follows it on SIGWINCH), and raw mode while a container's pty is attached.
//!
//! Shared by [`super::container`] (which opens the pty) and [`super::foreground`] (which
//! copies it), so neither needs the other for it. It does not touch any container.

use std::os::fd::RawFd;

use nix::libc;
use nix::sys::termios::{self, SetArg, Termios};

pub(super) fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// The size of kiln's terminal (stdin's, else stdout's), if it has one.
pub(super) fn terminal_size() -> Option<libc::winsize> {
    [0, 1].into_iter().find_map(|fd| {
        let mut size: libc::winsize = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ fills the winsize it is given.
        let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
        (ok && size.ws_row > 0).then_some(size)
    })
}

/// kiln's terminal in raw mode (keys go to the container as typed: ^C reaches its shell),
/// restored on drop.
pub(super) struct RawMode {
    fd: RawFd,
    saved: Termios,
}

impl RawMode {
    pub(super) fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: the descriptor stays open for the life of the process (it is stdin).
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let saved = termios::tcgetattr(borrowed).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(borrowed, SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: as in `enter`.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(borrowed, SetArg::TCSADRAIN, &self.saved);
    }
}
