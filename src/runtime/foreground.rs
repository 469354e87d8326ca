//! A container in the foreground (`kiln run` without `-d`): start it, forward the signals
//! kiln receives to its pid 1, copy the terminal both ways with `-t` (kiln's terminal in
//! raw mode meanwhile, restored after), and wait for it.
//!
//! Signals reach kiln through a handler that only writes the signal number to a pipe (the
//! one async-signal-safe thing to do), whichever thread the kernel picks to run it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use oci_spec::runtime::Spec;

use super::container::{StartHooks, Started, Stdio, start};
use super::plan::RootfsLayout;
use super::sandbox::os;
use super::terminal::{RawMode, isatty, terminal_size};
use super::{SandboxError, SandboxStatus};

/// What `kiln run` passes on to the container (SIGWINCH resizes the pty instead).
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Runs the container in the foreground and returns how its pid 1 ended
/// ([`SandboxStatus::code`] is `kiln run`'s exit status; on `Err`,
/// [`SandboxError::exit_code`]). With [`Stdio::Pipe`] the caller must drain the pipes from
/// other threads — use [`start`] instead.
pub fn run_foreground(
    spec: &Spec,
    rootfs: &RootfsLayout,
    stdio: Stdio,
    hooks: &mut dyn StartHooks,
) -> Result<SandboxStatus, SandboxError> {
    let signals = ForwardedSignals::install()?;
    let mut started = start(spec, rootfs, stdio, hooks)?;
    let status = attach(&mut started, &signals)?;
    hooks.trace(&super::TraceEvent::Exited(status));
    Ok(status)
}

/// A process kiln runs in the foreground: a container's pid 1, or a `kiln exec`.
pub(super) trait Attached {
    /// Its pid, as kiln sees it.
    fn pid(&self) -> i32;
    /// The pty's master side, with `-t`.
    fn pty(&self) -> Option<RawFd>;
    fn signal(&self, signal: Signal);
    /// Reaps it (it has exited).
    fn wait(&mut self) -> Result<SandboxStatus, SandboxError>;
}

impl Attached for Started {
    fn pid(&self) -> i32 {
        Started::pid(self)
    }

    fn pty(&self) -> Option<RawFd> {
        self.pty.as_ref().map(AsRawFd::as_raw_fd)
    }

    fn signal(&self, signal: Signal) {
        let _ = Started::signal(self, signal);
    }

    fn wait(&mut self) -> Result<SandboxStatus, SandboxError> {
        Started::wait(self)
    }
}

/// Forwards `signals` to `process`, with its pty copied to and from kiln's terminal (in
/// raw mode meanwhile), until it exits; reaps it.
pub(super) fn attach(
    process: &mut dyn Attached,
    signals: &ForwardedSignals,
) -> Result<SandboxStatus, SandboxError> {
    let raw = match (process.pty(), isatty(0)) {
        (Some(_), true) => RawMode::enter(0),
        _ => None,
    };
    let result = supervise(process, signals);
    drop(raw);
    result
}

/// Forwards signals and copies the pty until the process exits, then reaps it.
fn supervise(
    started: &mut dyn Attached,
    signals: &ForwardedSignals,
) -> Result<SandboxStatus, SandboxError> {
    // SAFETY: pidfd_open takes a pid and flags; the result is checked.
    let pidfd = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, started.pid(), 0) })
        .map_err(os("watch the container"))?;
    // SAFETY: a new descriptor returned by pidfd_open, owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    let master = started.pty();
    if let Some(master) = master {
        set_nonblocking(master);
    }
    let mut stdin_open = master.is_some();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let mut fds = vec![
            poll_fd(pidfd.as_raw_fd()),
            poll_fd(signals.read_end.as_raw_fd()),
        ];
        if let Some(master) = master {
            fds.push(poll_fd(master));
            if stdin_open {
                fds.push(poll_fd(0));
            }
        }
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if ready < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                errno => return Err(os("wait for the container")(errno)),
            }
        }
        if fds[1].revents != 0 {
            for signal in signals.drain() {
                if signal == libc::SIGWINCH {
                    if let (Some(master), Some(size)) = (master, terminal_size()) {
                        // SAFETY: TIOCSWINSZ reads an initialised winsize.
                        unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &size) };
                    }
                } else if let Ok(signal) = Signal::try_from(signal) {
                    started.signal(signal);
                }
            }
        }
        if let Some(master) = master {
            if fds[2].revents != 0 {
                copy(master, 1, &mut buffer);
            }
            if stdin_open && fds[3].revents != 0 && !copy_all(0, master, &mut buffer) {
                stdin_open = false;
            }
        }
        if fds[0].revents != 0 {
            break;
        }
    }
    if let Some(master) = master {
        // What the command wrote just before it exited.
        while copy(master, 1, &mut buffer) {}
    }
    started.wait()
}

fn poll_fd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: F_GETFL/F_SETFL on an open descriptor.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// One read from `from` written entirely to `to`; false at end of file or error.
fn copy(from: RawFd, to: RawFd, buffer: &mut [u8]) -> bool {
    // SAFETY: reads into a buffer of the given length.
    let n = unsafe { libc::read(from, buffer.as_mut_ptr().cast(), buffer.len()) };
    if n <= 0 {
        return false;
    }
    write_all(to, &buffer[..n as usize]);
    true
}

/// Like [`copy`]; false only at end of file or on a hard error (not EAGAIN).
fn copy_all(from: RawFd, to: RawFd, buffer: &mut [u8]) -> bool {
    // SAFETY: reads into a buffer of the given length.
    let n = unsafe { libc::read(from, buffer.as_mut_ptr().cast(), buffer.len()) };
    match n {
        0 => false,
        n if n < 0 => matches!(Errno::last(), Errno::EAGAIN | Errno::EINTR),
        n => {
            write_all(to, &buffer[..n as usize]);
            true
        }
    }
}

fn write_all(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::EAGAIN => {
                    let mut fds = [libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    // SAFETY: a valid one-element pollfd array.
                    unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) };
                    continue;
                }
                _ => return,
            }
        }
        bytes = &bytes[n as usize..];
    }
}

/// Write ends of the pipes of every [`ForwardedSignals`] alive, for the handler.
static SLOTS: [AtomicI32; 16] = [const { AtomicI32::new(-1) }; 16];

/// The handlers kiln had before the first [`ForwardedSignals`], and how many are alive.
static INSTALLED: Mutex<(usize, Vec<(Signal, SigAction)>)> = Mutex::new((0, Vec::new()));

extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: errno is thread-local; saving and restoring it keeps the interrupted code's.
    let saved = unsafe { *libc::__errno_location() };
    let byte = signal as u8;
    for slot in &SLOTS {
        let fd = slot.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, so a full
            // pipe drops the signal instead of hanging the handler.
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// While alive, the signals in [`FORWARDED`] and SIGWINCH are caught and queued for
/// [`run_foreground`] instead of acting on kiln. Several may be alive at once (threads):
/// each gets every signal.
pub struct ForwardedSignals {
    read_end: OwnedFd,
    write_end: OwnedFd,
    slot: usize,
}

impl ForwardedSignals {
    pub fn install() -> Result<ForwardedSignals, SandboxError> {
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(os("create a pipe"))?;
        let slot = SLOTS
            .iter()
            .position(|slot| {
                slot.compare_exchange(
                    -1,
                    write_end.as_raw_fd(),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
            })
            .ok_or(SandboxError::Unsupported {
                what: "more than 16 foreground containers in one process".into(),
            })?;
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        if installed.0 == 0 {
            let action = SigAction::new(
                SigHandler::Handler(on_signal),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            );
            for signal in FORWARDED.into_iter().chain([Signal::SIGWINCH]) {
                // SAFETY: the handler only does async-signal-safe things (see on_signal).
                if let Ok(old) = unsafe { sigaction(signal, &action) } {
                    installed.1.push((signal, old));
                }
            }
        }
        installed.0 += 1;
        Ok(ForwardedSignals {
            read_end,
            write_end,
            slot,
        })
    }

    /// The signals received since the last call, oldest first.
    pub fn drain(&self) -> Vec<i32> {
        let mut signals = Vec::new();
        let mut buffer = [0u8; 64];
        loop {
            // SAFETY: reads into a local buffer of the given length.
            let n = unsafe {
                libc::read(
                    self.read_end.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            if n <= 0 {
                return signals;
            }
            signals.extend(buffer[..n as usize].iter().map(|&b| i32::from(b)));
        }
    }
}

impl Drop for ForwardedSignals {
    fn drop(&mut self) {
        SLOTS[self.slot].store(-1, Ordering::SeqCst);
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        installed.0 -= 1;
        if installed.0 == 0 {
            for (signal, old) in installed.1.drain(..) {
                // SAFETY: restores the handler kiln had before.
                let _ = unsafe { sigaction(signal, &old) };
            }
        }
        let _ = &self.write_end;
    }
}
