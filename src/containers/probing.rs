//! One round of a health check against a running container ([`probe_once`]): `http` and
//! `tcp` probes from a thread inside the container's network namespace, `exec` probes
//! through `kiln exec`'s machinery ([`Target`]).
//!
//! Apart from `health` (what to probe, and the pure rule that turns rounds into a state),
//! so that the health check's description, kept in `launch.json`, does not depend on
//! `exec`. It does not schedule rounds or record results: the supervisor does.

use std::path::PathBuf;
use std::time::Duration;

use super::exec::Target;
use super::health::{HealthCheck, HealthProbe};
use crate::probe::{http_get, in_netns, tcp_connect};

/// How much of an exec probe's output (stdout then stderr) is kept.
const OUTPUT_BYTES: usize = 4096;

/// One round's result: whether it passed and what the probes said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundResult {
    pub passed: bool,
    /// One line per probe (the first lines of an exec probe's output).
    pub output: String,
}

/// Runs every probe of `check` once against the running container `target`.
pub fn probe_once(target: &Target, check: &HealthCheck) -> RoundResult {
    let mut passed = true;
    let mut lines = Vec::new();
    for probe in &check.probes {
        let (ok, line) = run_probe(target, probe, check.timeout);
        passed &= ok;
        lines.push(line);
    }
    RoundResult {
        passed,
        output: lines.join("\n"),
    }
}

fn run_probe(target: &Target, probe: &HealthProbe, timeout: Duration) -> (bool, String) {
    let netns = PathBuf::from(format!("/proc/{}/ns/net", target.pid));
    match probe {
        HealthProbe::Http { url, status } => match in_netns(&netns, || http_get(url, timeout)) {
            Ok(Ok(result)) => (result.passed(*status), result.to_string()),
            Ok(Err(err)) | Err(err) => (false, err.to_string()),
        },
        HealthProbe::Tcp { address } => match in_netns(&netns, || tcp_connect(address, timeout)) {
            Ok(Ok(result)) => (result.passed(), result.to_string()),
            Ok(Err(err)) | Err(err) => (false, err.to_string()),
        },
        HealthProbe::Exec { command } => exec_probe(target, command, timeout),
    }
}

/// The command in the container, its output captured, killed at `timeout`.
fn exec_probe(target: &Target, command: &[String], timeout: Duration) -> (bool, String) {
    let shown = command.join(" ");
    let captured = match target.run_captured(command, timeout, OUTPUT_BYTES) {
        Ok(Some(captured)) => captured,
        Ok(None) => return (false, format!("exec {shown}: timed out after {timeout:?}")),
        Err(err) => return (false, format!("exec {shown}: {err}")),
    };
    let mut output = captured.stdout;
    output.extend_from_slice(&captured.stderr);
    output.truncate(OUTPUT_BYTES);
    let text = String::from_utf8_lossy(&output).trim_end().to_string();
    let status = captured.status;
    let summary = if text.is_empty() {
        format!("exec {shown}: {status}")
    } else {
        format!("exec {shown}: {status}: {text}")
    };
    (status.success(), summary)
}
