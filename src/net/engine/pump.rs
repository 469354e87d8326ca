//! One direction of a path: a thread that receives frames on one port, passes them
//! through an [`Emulator`], and sends each on the other port when its departure time
//! comes. It sleeps in `ppoll` until a frame arrives, the next departure is due, or the
//! daemon wakes it (new settings, stop).
//!
//! Settings change live: the emulator keeps its queue (as netem's `change` does). A
//! direction that is down drops what arrives and what it held.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::frame::Frame;
use super::model::{Counters, Emulator};
use super::port::{MAX_FRAME, Port, Received};
use super::rng::Rng;
use crate::net::Netem;

/// Frames read in one go before the due ones are sent.
const BATCH: usize = 64;

/// What a direction applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub netem: Netem,
    /// Down: nothing passes (the link's carrier is off).
    pub up: bool,
    /// Added to the impairment's seed, so the two directions of a seeded link differ.
    pub salt: u64,
}

/// A direction's counters and state, as `kiln network links` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectionStatus {
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub counters: Counters,
    /// Packets waiting for their departure time.
    pub queued: usize,
    /// Frames that arrived while the direction was down.
    pub dropped_down: u64,
    /// Frames too large to receive whole.
    pub truncated: u64,
    /// Frames the sending port refused.
    pub send_errors: u64,
    /// Why the thread stopped, when it did by itself (a port went away).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Shared {
    settings: Mutex<Settings>,
    version: AtomicU64,
    stop: AtomicBool,
    finished: AtomicBool,
    wake: OwnedFd,
    status: Mutex<DirectionStatus>,
}

/// A running direction.
pub struct Pump {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pump {
    /// Starts moving frames from `from` to `to`.
    pub fn start(from: Arc<Port>, to: Arc<Port>, settings: Settings) -> io::Result<Pump> {
        // SAFETY: eventfd(2) with constant flags; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let shared = Arc::new(Shared {
            settings: Mutex::new(settings),
            version: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            // SAFETY: a new descriptor nobody else owns.
            wake: unsafe { OwnedFd::from_raw_fd(fd) },
            status: Mutex::new(DirectionStatus {
                from: from.name.clone(),
                to: to.name.clone(),
                ..DirectionStatus::default()
            }),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("pump {}", from.name))
                .spawn(move || {
                    if let Err(err) = run(&from, &to, &shared) {
                        lock(&shared.status).error = Some(err.to_string());
                    }
                    shared.finished.store(true, Ordering::SeqCst);
                })?
        };
        Ok(Pump {
            shared,
            thread: Some(thread),
        })
    }

    /// New settings, applied at once.
    pub fn set(&self, settings: Settings) {
        *lock(&self.shared.settings) = settings;
        self.shared.version.fetch_add(1, Ordering::SeqCst);
        self.wake();
    }

    pub fn settings(&self) -> Settings {
        lock(&self.shared.settings).clone()
    }

    pub fn status(&self) -> DirectionStatus {
        lock(&self.shared.status).clone()
    }

    /// The thread ended by itself (a port went away).
    pub fn finished(&self) -> bool {
        self.shared.finished.load(Ordering::SeqCst)
    }

    fn wake(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.shared.wake.as_raw_fd(), (&raw const one).cast(), 8) };
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn rng_for(settings: &Settings) -> Rng {
    match settings.netem.seed {
        Some(seed) => Rng::seeded(seed.wrapping_add(settings.salt)),
        None => Rng::from_entropy(),
    }
}

/// The real-time priority of a pump (SCHED_FIFO, low among real-time priorities).
const PRIORITY: libc::c_int = 10;

/// Asks for what keeps departure times on a busy machine: the kernel's netem runs from a
/// timer interrupt, ahead of every process; a pump runs at a real-time priority (it only
/// ever sleeps in `ppoll` between frames, and the kernel caps real-time tasks at 95% of a
/// CPU) or, where that is refused, at the highest nice level. Wake-ups come as close to
/// the departure times as the kernel allows (timer slack 1 µs instead of 50).
fn keep_time() {
    // SAFETY: prctl and sched_setscheduler/setpriority with plain integer arguments and a
    // valid sched_param; they affect only the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
        let param = libc::sched_param {
            sched_priority: PRIORITY,
        };
        if libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, 0, -20);
        }
    }
}

fn run(from: &Port, to: &Port, shared: &Shared) -> io::Result<()> {
    keep_time();
    let base = Instant::now();
    let now = || base.elapsed().as_nanos() as u64;
    let mut buffer = vec![0u8; MAX_FRAME];
    let mut applied = 0;
    let mut settings = lock(&shared.settings).clone();
    let mut emulator: Emulator<Frame> = Emulator::new(&settings.netem, rng_for(&settings));
    let mut extra = DirectionStatus::default();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let version = shared.version.load(Ordering::SeqCst);
        if version != applied {
            let new = lock(&shared.settings).clone();
            if applied != 0 && new.netem != settings.netem {
                let rng = new
                    .netem
                    .seed
                    .map(|s| Rng::seeded(s.wrapping_add(new.salt)));
                emulator.set(&new.netem, rng);
            }
            settings = new;
            applied = version;
            if !settings.up {
                extra.dropped_down += emulator.flush() as u64;
            }
        }
        let t = now();
        while let Some(frame) = emulator.dequeue(t) {
            if let Err(err) = to.send(&frame.bytes) {
                if gone(&err) {
                    return Err(err);
                }
                extra.send_errors += 1;
            }
        }
        {
            let mut status = lock(&shared.status);
            status.counters = emulator.counters();
            status.queued = emulator.len();
            status.dropped_down = extra.dropped_down;
            status.truncated = extra.truncated;
            status.send_errors = extra.send_errors;
        }
        let timeout = emulator.next_departure().map(|at| at.saturating_sub(now()));
        if wait(from, shared, timeout)? {
            continue;
        }
        for _ in 0..BATCH {
            match from.recv(&mut buffer)? {
                Received::Empty => break,
                Received::Truncated => extra.truncated += 1,
                Received::Frame(n) => {
                    if settings.up {
                        emulator.enqueue(now(), Frame::new(buffer[..n].to_vec()));
                    } else {
                        extra.dropped_down += 1;
                    }
                }
            }
        }
    }
}

/// Errors after which a port is gone for good (its interface was deleted).
fn gone(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENXIO) | Some(libc::ENODEV) | Some(libc::ENETDOWN)
    )
}

/// Waits for a frame, the wake-up, or `timeout_ns`; `true` when woken (settings, stop).
fn wait(from: &Port, shared: &Shared, timeout_ns: Option<u64>) -> io::Result<bool> {
    let mut fds = [
        libc::pollfd {
            fd: from.rx_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: shared.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let timeout = timeout_ns.map(|ns| libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    });
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a valid array of two pollfd, `timeout_ptr` null or valid.
    let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, timeout_ptr, std::ptr::null()) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::EINTR) {
            Ok(true)
        } else {
            Err(err)
        };
    }
    if fds[1].revents != 0 {
        let mut value = 0u64;
        // SAFETY: reads 8 bytes into a valid u64 from our non-blocking eventfd.
        unsafe { libc::read(shared.wake.as_raw_fd(), (&raw mut value).cast(), 8) };
        return Ok(true);
    }
    if fds[0].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
        let mut error: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: reads SO_ERROR into a valid c_int of the given length.
        unsafe {
            libc::getsockopt(
                from.rx_fd().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&raw mut error).cast(),
                &mut len,
            )
        };
        return Err(io::Error::from_raw_os_error(if error == 0 {
            libc::ENETDOWN
        } else {
            error
        }));
    }
    Ok(false)
}
