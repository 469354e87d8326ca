//! Ctrl-C during `kiln build`: SIGINT and SIGTERM are blocked before the build's threads
//! exist (they inherit the mask) and a thread of ours waits for them; one arriving kills
//! the running `run` steps through their cgroups ([`crate::runtime::interrupt`]), so each
//! step ends and removes its cgroup and scratch directory as a failed step does, and the
//! build returns. kiln then exits 130, leaving nothing behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use nix::sys::signal::{SigSet, Signal};

use super::CliError;

/// Catches SIGINT and SIGTERM while it lives.
pub(super) struct Interrupts {
    signals: SigSet,
    stop: Arc<AtomicBool>,
    caught: Arc<AtomicBool>,
    waiter: Option<JoinHandle<()>>,
}

impl Interrupts {
    /// From here on, SIGINT and SIGTERM interrupt the sandboxes instead of ending kiln.
    /// Call before starting threads.
    pub(super) fn catch() -> Result<Interrupts, CliError> {
        let mut signals = SigSet::empty();
        signals.add(Signal::SIGINT);
        signals.add(Signal::SIGTERM);
        signals.thread_block().map_err(CliError::BlockSignals)?;
        let stop = Arc::new(AtomicBool::new(false));
        let caught = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (stop, caught) = (Arc::clone(&stop), Arc::clone(&caught));
            std::thread::spawn(move || {
                let timeout = nix::libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 100_000_000,
                };
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: `signals` is a valid sigset, `info` may be null, `timeout`
                    // lives across the call.
                    let got = unsafe {
                        nix::libc::sigtimedwait(signals.as_ref(), std::ptr::null_mut(), &timeout)
                    };
                    if got > 0 {
                        caught.store(true, Ordering::Relaxed);
                        crate::runtime::interrupt();
                    }
                }
            })
        };
        Ok(Interrupts {
            signals,
            stop,
            caught,
            waiter: Some(waiter),
        })
    }

    /// Whether SIGINT or SIGTERM came.
    pub(super) fn caught(&self) -> bool {
        self.caught.load(Ordering::Relaxed)
    }
}

impl Drop for Interrupts {
    /// Stops waiting and restores the signals' default effect.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(waiter) = self.waiter.take() {
            let _ = waiter.join();
        }
        let _ = self.signals.thread_unblock();
    }
}
