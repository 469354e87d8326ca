//! Waiting for something that happens in its own time: poll, with a deadline far beyond what
//! a loaded machine needs. Not a timed assertion: the deadline only turns a hang into a
//! failure that says what was awaited and what was last seen.

use std::time::{Duration, Instant};

/// How long any wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// How often to look again.
const POLL: Duration = Duration::from_millis(50);

/// Polls `attempt` until it gives a value; on timeout fails with `what` and the last error.
pub fn eventually<T>(what: &str, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last seen: {last}"
            ),
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `done` until it holds; on timeout fails naming `what`.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    eventually(what, || {
        if done() {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
}
