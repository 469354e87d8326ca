//! Network probes made from inside a container's network namespace: an HTTP/1.1 GET
//! ([`http`]), a TCP connect ([`tcp`]) and an ICMP echo ([`ping`]), each with a timeout and
//! a rich result (outcome, status, body excerpt, round-trip times). The supervisor's health
//! checks and `kiln test` use them.
//!
//! [`in_netns`] runs a probe on a short-lived thread that has joined the namespace with
//! setns(CLONE_NEWNET) — a network namespace, unlike a mount namespace, may be joined by
//! one thread of a multithreaded process — so `localhost` is the container's and images
//! need no curl. The thread ends with the probe; no other thread ever changes namespace.
//!
//! It knows nothing of containers or records: it gets a namespace path and an address.

pub mod http;
pub mod ping;
pub mod tcp;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

pub use http::{HttpOutcome, HttpResponse, HttpResult, http_get, parse_status_line, parse_url};
pub use tcp::{TcpOutcome, TcpResult, tcp_connect};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ProbeError {
    #[error("cannot open the network namespace {}", path.display())]
    #[diagnostic(help("the container has exited, or kiln lacks the rights to see it"))]
    Namespace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot enter the network namespace {}", path.display())]
    #[diagnostic(help("joining a network namespace needs root (CAP_SYS_ADMIN)"))]
    Enter {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("invalid URL `{url}`: {reason}")]
    #[diagnostic(help("use http://HOST[:PORT]/PATH (https is not supported)"))]
    BadUrl { url: String, reason: String },
    #[error("invalid address `{address}`: {reason}")]
    #[diagnostic(help("use HOST:PORT, e.g. 127.0.0.1:8080 or localhost:80"))]
    BadAddress { address: String, reason: String },
}

/// Runs `probe` on a thread inside the network namespace at `netns` (`/proc/PID/ns/net`).
pub fn in_netns<T: Send>(netns: &Path, probe: impl FnOnce() -> T + Send) -> Result<T, ProbeError> {
    let file = File::open(netns).map_err(|source| ProbeError::Namespace {
        path: netns.to_path_buf(),
        source,
    })?;
    crate::net::netns::run_in_fd(file.as_fd(), probe).map_err(|err| ProbeError::Enter {
        path: netns.to_path_buf(),
        source: match err {
            crate::net::NetError::Enter(cause) => {
                nix::errno::Errno::from_raw(cause.raw_os_error().unwrap_or(0))
            }
            _ => nix::errno::Errno::UnknownErrno,
        },
    })
}
