//! Restart policies (`no`, `on-failure[:max]`, `always`, `unless-stopped`, `on-unhealthy`)
//! and the exponential backoff between restarts, as Docker applies them.

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    No,
    /// Restart after a non-zero exit, at most `max` times (unlimited without one).
    OnFailure {
        max: Option<u32>,
    },
    Always,
    /// Like `always`, but not after the user stopped it.
    UnlessStopped,
    /// Restart when the health check says unhealthy (and after a failure).
    OnUnhealthy,
}

/// Why the container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// It exited (or was killed) by itself: the code, 128+signal when killed.
    Exited(i32),
    /// `kiln stop` / `kiln kill`: never restarted.
    StoppedByUser,
    /// The supervisor killed it because its health check failed.
    Unhealthy,
}

impl RestartPolicy {
    pub fn parse(text: &str) -> Result<RestartPolicy, String> {
        let (name, max) = match text.split_once(':') {
            Some((name, max)) => (name, Some(max)),
            None => (text, None),
        };
        let policy = match name {
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-unhealthy" => RestartPolicy::OnUnhealthy,
            "on-failure" => RestartPolicy::OnFailure {
                max: match max {
                    None => None,
                    Some(n) => Some(n.parse::<u32>().map_err(|_| {
                        format!("`{n}` is not a number of restarts (on-failure:N)")
                    })?),
                },
            },
            other => {
                return Err(format!(
                    "unknown restart policy `{other}`: use no, on-failure[:N], always, unless-stopped or on-unhealthy"
                ));
            }
        };
        if max.is_some() && !matches!(policy, RestartPolicy::OnFailure { .. }) {
            return Err(format!("only on-failure takes a maximum, not `{name}`"));
        }
        Ok(policy)
    }

    /// Whether to start the container again after `reason`, having restarted it
    /// `restarts` times already.
    pub fn should_restart(self, reason: ExitReason, restarts: u32) -> bool {
        match (self, reason) {
            (_, ExitReason::StoppedByUser) => false,
            (RestartPolicy::No, _) => false,
            (RestartPolicy::Always | RestartPolicy::UnlessStopped, _) => true,
            (RestartPolicy::OnFailure { max }, ExitReason::Exited(code)) => {
                code != 0 && max.is_none_or(|m| restarts < m)
            }
            (RestartPolicy::OnFailure { max }, ExitReason::Unhealthy) => {
                max.is_none_or(|m| restarts < m)
            }
            (RestartPolicy::OnUnhealthy, ExitReason::Unhealthy) => true,
            (RestartPolicy::OnUnhealthy, ExitReason::Exited(code)) => code != 0,
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure { max: None } => f.write_str("on-failure"),
            RestartPolicy::OnFailure { max: Some(n) } => write!(f, "on-failure:{n}"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
            RestartPolicy::OnUnhealthy => f.write_str("on-unhealthy"),
        }
    }
}

/// Exponential backoff: 100 ms, doubling, capped at a minute; a run that lasted longer than
/// ten seconds resets it (the container was healthy for a while: the next failure is new).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::FIRST }
    }
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(100);
    pub const MAX: Duration = Duration::from_secs(60);
    pub const RESET_AFTER: Duration = Duration::from_secs(10);

    /// The wait before the next start, given how long the last run lasted.
    pub fn after_run(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= Self::RESET_AFTER {
            self.next = Self::FIRST;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }
}
