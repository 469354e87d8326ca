//! A small HTTP/1.1 client for probes: one GET with `Connection: close`, the status line
//! parsed, the first bytes of the body kept. Plain HTTP only; no redirects followed.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::ProbeError;
use super::tcp::{TcpOutcome, classify, connect_first, resolve};

/// How much of the body a result keeps.
pub const BODY_EXCERPT_BYTES: usize = 512;

/// Most bytes read for the status line and headers.
const HEAD_LIMIT: usize = 16 * 1024;

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpResponse {
    pub status: u16,
    pub reason: String,
    /// The first [`BODY_EXCERPT_BYTES`] of the body, lossily as UTF-8.
    pub body_excerpt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "outcome", content = "detail")]
pub enum HttpOutcome {
    Response(HttpResponse),
    /// Nothing listens at the URL's host and port.
    Refused,
    /// No connection or no complete answer within the timeout.
    Timeout,
    /// Anything else: a reset, a reply that is not HTTP, an unreachable network.
    Error(String),
}

/// One HTTP probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpResult {
    pub url: String,
    #[serde(flatten)]
    pub outcome: HttpOutcome,
    pub elapsed: Duration,
}

impl HttpResult {
    /// The status, if a response came.
    pub fn status(&self) -> Option<u16> {
        match &self.outcome {
            HttpOutcome::Response(response) => Some(response.status),
            _ => None,
        }
    }

    /// Whether the status is `expected`, or without one any 2xx or 3xx.
    pub fn passed(&self, expected: Option<u16>) -> bool {
        match (self.status(), expected) {
            (Some(status), Some(expected)) => status == expected,
            (Some(status), None) => (200..400).contains(&status),
            (None, _) => false,
        }
    }
}

impl std::fmt::Display for HttpResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.elapsed.as_millis();
        match &self.outcome {
            HttpOutcome::Response(r) => {
                write!(f, "GET {}: {} {} ({ms} ms)", self.url, r.status, r.reason)?;
                let body = r.body_excerpt.trim();
                if !body.is_empty() {
                    let line: String = body.lines().next().unwrap_or("").chars().take(80).collect();
                    write!(f, ": {line}")?;
                }
                Ok(())
            }
            HttpOutcome::Refused => write!(f, "GET {}: connection refused", self.url),
            HttpOutcome::Timeout => write!(f, "GET {}: timed out after {ms} ms", self.url),
            HttpOutcome::Error(error) => write!(f, "GET {}: {error}", self.url),
        }
    }
}

/// The parts of an `http://` URL a GET needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `HOST:PORT` (port 80 unless given).
    pub address: String,
    /// The `Host` header: the URL's authority as written.
    pub host: String,
    /// Path and query, `/` when empty.
    pub path: String,
}

pub fn parse_url(url: &str) -> Result<Url, ProbeError> {
    let bad = |reason: &str| ProbeError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs can be probed"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let path = path.split('#').next().unwrap_or("/").to_string();
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains('@') {
        return Err(bad("credentials in the URL are not supported"));
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let address = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok(Url {
        address,
        host: authority.to_string(),
        path,
    })
}

/// `HTTP/1.1 200 OK` to `(200, "OK")`; `None` if it is not a status line.
pub fn parse_status_line(line: &str) -> Option<(u16, String)> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (version, rest) = line.split_once(' ')?;
    let digits = version.strip_prefix("HTTP/")?;
    if !digits
        .split('.')
        .all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (code, reason) = match rest.split_once(' ') {
        Some((code, reason)) => (code, reason),
        None => (rest, ""),
    };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let status: u16 = code.parse().ok()?;
    (100..=599)
        .contains(&status)
        .then(|| (status, reason.to_string()))
}

/// GETs `url` within `timeout` (connecting, sending and reading the head and the body
/// excerpt), in the caller's network namespace.
pub fn http_get(url: &str, timeout: Duration) -> Result<HttpResult, ProbeError> {
    let parsed = parse_url(url)?;
    let addrs = resolve(&parsed.address).map_err(|_| ProbeError::BadUrl {
        url: url.to_string(),
        reason: format!("cannot resolve `{}`", parsed.address),
    })?;
    let began = Instant::now();
    let (connected, stream) = connect_first(&addrs, began, timeout);
    let outcome = match (connected, stream) {
        (TcpOutcome::Open, Some(stream)) => exchange(stream, &parsed, began, timeout),
        (TcpOutcome::Refused, _) => HttpOutcome::Refused,
        (TcpOutcome::Timeout, _) => HttpOutcome::Timeout,
        (TcpOutcome::Error(error), _) => HttpOutcome::Error(error),
        (TcpOutcome::Open, None) => HttpOutcome::Error("no connection".into()),
    };
    Ok(HttpResult {
        url: url.to_string(),
        outcome,
        elapsed: began.elapsed(),
    })
}

fn exchange(
    mut stream: std::net::TcpStream,
    url: &Url,
    began: Instant,
    timeout: Duration,
) -> HttpOutcome {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kiln-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path, url.host
    );
    let left = |began: Instant| {
        timeout
            .saturating_sub(began.elapsed())
            .max(Duration::from_millis(1))
    };
    let _ = stream.set_write_timeout(Some(left(began)));
    if let Err(err) = stream.write_all(request.as_bytes()) {
        return failure(&err);
    }
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = find_head_end(&received) {
            break end;
        }
        if received.len() > HEAD_LIMIT {
            return HttpOutcome::Error("the response head is too long".into());
        }
        if began.elapsed() >= timeout {
            return HttpOutcome::Timeout;
        }
        let _ = stream.set_read_timeout(Some(left(began)));
        match stream.read(&mut buffer) {
            Ok(0) => return HttpOutcome::Error(incomplete(&received)),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return failure(&err),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let Some((status, reason)) = head.lines().next().and_then(parse_status_line) else {
        return HttpOutcome::Error(format!(
            "not an HTTP response: {:?}",
            head.lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect::<String>()
        ));
    };
    let mut body: Vec<u8> = received[head_end..].to_vec();
    while body.len() < BODY_EXCERPT_BYTES && began.elapsed() < timeout {
        let _ = stream.set_read_timeout(Some(left(began)));
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            // The status is in: a slow or cut body does not undo it.
            Err(_) => break,
        }
    }
    body.truncate(BODY_EXCERPT_BYTES);
    HttpOutcome::Response(HttpResponse {
        status,
        reason,
        body_excerpt: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The index just past the blank line that ends the head.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
}

fn incomplete(received: &[u8]) -> String {
    if received.is_empty() {
        "the server closed the connection without answering".into()
    } else {
        "the server closed the connection mid-response".into()
    }
}

fn failure(err: &io::Error) -> HttpOutcome {
    match classify(err) {
        TcpOutcome::Timeout => HttpOutcome::Timeout,
        TcpOutcome::Refused => HttpOutcome::Refused,
        _ => HttpOutcome::Error(err.to_string()),
    }
}
