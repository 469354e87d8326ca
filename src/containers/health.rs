//! Health checks of detached containers: what to probe and how often ([`HealthCheck`],
//! kept in `launch.json`) and the rule that turns probe results into `starting`, `healthy`
//! or `unhealthy` ([`HealthTracker`], pure). Running a round of probes is `probing`'s.
//!
//! It does not schedule rounds, record results or restart anything: the supervisor does.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ContainerError;

/// Docker's defaults.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_RETRIES: u32 = 3;

/// One thing to check; a round passes when every probe passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "probe", rename_all = "lowercase")]
pub enum HealthProbe {
    /// A GET from inside the container's network; passes on `status`, or on any 2xx/3xx.
    Http { url: String, status: Option<u16> },
    /// A TCP connect from inside the container's network.
    Tcp { address: String },
    /// A command in the container (as `kiln exec`); passes on exit 0.
    Exec { command: Vec<String> },
}

/// A container's health check, as `launch.json` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub probes: Vec<HealthProbe>,
    /// Between the end of one round and the start of the next.
    #[serde(with = "millis")]
    pub interval: Duration,
    /// Per probe.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Failed rounds in a row that make the container unhealthy.
    pub retries: u32,
    /// After a start, failures do not count (a success still counts).
    #[serde(with = "millis")]
    pub start_period: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            probes: Vec::new(),
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            start_period: Duration::ZERO,
        }
    }
}

/// `kiln run`'s `--health-*` flags, as given.
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    /// `--health-cmd`: run with `/bin/sh -c`, as Docker does.
    pub cmd: Option<String>,
    pub http: Option<String>,
    pub tcp: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub start_period: Option<String>,
}

/// The health check the flags ask for; `None` without a probe. Timing flags without a
/// probe are refused (they would do nothing).
pub fn parse_health(flags: &HealthFlags) -> Result<Option<HealthCheck>, ContainerError> {
    let bad = |what: &'static str, value: &str, reason: String| ContainerError::BadLimit {
        what,
        value: value.to_string(),
        reason,
    };
    let mut probes = Vec::new();
    if let Some(cmd) = &flags.cmd {
        probes.push(HealthProbe::Exec {
            command: vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
        });
    }
    if let Some(url) = &flags.http {
        crate::probe::parse_url(url).map_err(|e| bad("--health-http", url, e.to_string()))?;
        probes.push(HealthProbe::Http {
            url: url.clone(),
            status: None,
        });
    }
    if let Some(address) = &flags.tcp {
        crate::probe::tcp::resolve(address)
            .map_err(|e| bad("--health-tcp", address, e.to_string()))?;
        probes.push(HealthProbe::Tcp {
            address: address.clone(),
        });
    }
    let duration = |what: &'static str, text: &Option<String>, default: Duration| match text {
        None => Ok(default),
        Some(text) => crate::spec::units::Duration::parse(text)
            .map(|d| d.as_std())
            .map_err(|reason| bad(what, text, reason)),
    };
    let check = HealthCheck {
        interval: duration("--health-interval", &flags.interval, DEFAULT_INTERVAL)?,
        timeout: duration("--health-timeout", &flags.timeout, DEFAULT_TIMEOUT)?,
        start_period: duration("--health-start-period", &flags.start_period, Duration::ZERO)?,
        retries: flags.retries.unwrap_or(DEFAULT_RETRIES),
        probes,
    };
    if check.interval.is_zero() || check.timeout.is_zero() {
        return Err(bad(
            "health check",
            "0",
            "the interval and the timeout must be more than 0".into(),
        ));
    }
    if check.probes.is_empty() {
        let timing = flags.interval.is_some()
            || flags.timeout.is_some()
            || flags.retries.is_some()
            || flags.start_period.is_some();
        if timing {
            return Err(bad(
                "health check",
                "--health-*",
                "give a probe: --health-cmd, --health-http or --health-tcp".into(),
            ));
        }
        return Ok(None);
    }
    Ok(Some(check))
}

/// Durations as whole milliseconds in JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// What the record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// Docker's rule: a passing round makes the container healthy and resets the streak; a
/// failing one adds to the streak, and `retries` in a row make it unhealthy — except
/// during the start period, where failures are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTracker {
    pub status: Health,
    /// Failed rounds in a row (counted ones).
    pub failing_streak: u32,
    retries: u32,
}

impl HealthTracker {
    pub fn new(retries: u32) -> HealthTracker {
        HealthTracker {
            status: Health::Starting,
            failing_streak: 0,
            retries: retries.max(1),
        }
    }

    /// Records a round; returns the new status when it changed.
    pub fn record(&mut self, passed: bool, in_start_period: bool) -> Option<Health> {
        let before = self.status;
        if passed {
            self.failing_streak = 0;
            self.status = Health::Healthy;
        } else if !in_start_period {
            self.failing_streak += 1;
            if self.failing_streak >= self.retries {
                self.status = Health::Unhealthy;
            }
        }
        (self.status != before).then_some(self.status)
    }
}

#[cfg(test)]
mod tests;
