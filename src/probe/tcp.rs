//! A TCP connect probe: does something accept connections at HOST:PORT?

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::ProbeError;

/// How a connection attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "outcome", content = "error")]
pub enum TcpOutcome {
    /// Something accepted the connection (it is closed at once).
    Open,
    /// Nothing listens there (RST).
    Refused,
    /// No answer within the timeout.
    Timeout,
    /// Any other failure (no route, unreachable network), as the OS words it.
    Error(String),
}

/// One TCP probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcpResult {
    pub address: String,
    #[serde(flatten)]
    pub outcome: TcpOutcome,
    pub elapsed: Duration,
}

impl TcpResult {
    pub fn passed(&self) -> bool {
        self.outcome == TcpOutcome::Open
    }
}

impl std::fmt::Display for TcpResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.elapsed.as_millis();
        match &self.outcome {
            TcpOutcome::Open => write!(f, "tcp {}: open ({ms} ms)", self.address),
            TcpOutcome::Refused => write!(f, "tcp {}: connection refused", self.address),
            TcpOutcome::Timeout => write!(f, "tcp {}: timed out after {ms} ms", self.address),
            TcpOutcome::Error(error) => write!(f, "tcp {}: {error}", self.address),
        }
    }
}

/// `HOST:PORT` to the addresses to try (names through the resolver; `localhost` without).
pub fn resolve(address: &str) -> Result<Vec<SocketAddr>, ProbeError> {
    let bad = |reason: &str| ProbeError::BadAddress {
        address: address.to_string(),
        reason: reason.to_string(),
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host == "localhost" {
        return Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .collect();
    if found.is_empty() {
        return Err(bad("the host name has no address"));
    }
    Ok(found)
}

/// Connects to `address` (`HOST:PORT`) within `timeout`, in the caller's network namespace.
pub fn tcp_connect(address: &str, timeout: Duration) -> Result<TcpResult, ProbeError> {
    let addrs = resolve(address)?;
    let began = Instant::now();
    let (outcome, _) = connect_first(&addrs, began, timeout);
    Ok(TcpResult {
        address: address.to_string(),
        outcome,
        elapsed: began.elapsed(),
    })
}

/// The first address that accepts, else the last failure; the stream when one accepted.
pub(crate) fn connect_first(
    addrs: &[SocketAddr],
    began: Instant,
    timeout: Duration,
) -> (TcpOutcome, Option<TcpStream>) {
    let mut outcome = TcpOutcome::Error("no address".into());
    for addr in addrs {
        let left = timeout.saturating_sub(began.elapsed());
        if left.is_zero() {
            return (TcpOutcome::Timeout, None);
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(stream) => return (TcpOutcome::Open, Some(stream)),
            Err(err) => outcome = classify(&err),
        }
    }
    (outcome, None)
}

pub(crate) fn classify(err: &io::Error) -> TcpOutcome {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => TcpOutcome::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TcpOutcome::Timeout,
        _ => TcpOutcome::Error(err.to_string()),
    }
}
