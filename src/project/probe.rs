//! The real [`Prober`] of `kiln test`: every observation is made from inside the named
//! running container — connections and pings from a thread in its network namespace,
//! commands through `kiln exec`'s machinery — so images need no curl, ping or dig.
//!
//! Names in kiln.kdl (`http://web:8080/`) are resolved as the container would resolve
//! them: a DNS query to the first `nameserver` of the container's own `/etc/resolv.conf`,
//! sent from inside its network namespace. It never asks the host's resolver and never
//! sends anything from the host's namespace. It does not judge results: `assert` does.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::assert::{ExecSeen, HttpSeen, PingSeen, Prober, TcpSeen};
use crate::containers::Target;
use crate::net::dns::message::{TYPE_A, build_query, parse_response};
use crate::probe::{HttpOutcome, TcpOutcome, http_get, in_netns, parse_url, ping, tcp_connect};

/// How long one DNS query waits for its answer, and how often it is sent.
const DNS_WAIT: Duration = Duration::from_secs(1);
const DNS_ATTEMPTS: u32 = 3;
/// The DNS port: the container's resolver listens there.
const DNS_PORT: u16 = 53;
/// Between two echo requests, and how long a reply may take.
const PING_INTERVAL: Duration = Duration::from_millis(200);
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an `exec` assertion's command may run, and how much of its stdout is kept.
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);
const EXEC_STDOUT_BYTES: usize = 64 * 1024;

/// Observes running containers of one project of the state root.
#[derive(Debug, Clone)]
pub struct LiveProber {
    pub state_root: PathBuf,
    /// The project whose containers kiln.kdl names.
    pub project: String,
}

impl LiveProber {
    pub fn new(state_root: impl Into<PathBuf>, project: impl Into<String>) -> LiveProber {
        LiveProber {
            state_root: state_root.into(),
            project: project.into(),
        }
    }

    fn container(&self, name: &str) -> Result<Container, String> {
        // Names in kiln.kdl are exact and the project's: never an id prefix, never
        // another project's container.
        let records = crate::state::Records::open(&self.state_root).map_err(|e| e.to_string())?;
        let record = records
            .find_member(Some(&self.project), name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no container named {name}"))?;
        let target = Target::of(&self.state_root, &records, record).map_err(|e| e.to_string())?;
        Ok(Container {
            name: name.to_string(),
            pid: target.pid,
            target,
        })
    }
}

/// A running container a probe starts from.
struct Container {
    name: String,
    pid: i32,
    target: Target,
}

impl Container {
    fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid))
    }

    /// Runs `probe` inside the container's network namespace.
    fn inside<T: Send>(&self, probe: impl FnOnce() -> T + Send) -> Result<T, String> {
        in_netns(&self.netns(), probe).map_err(|e| format!("{}: {e}", self.name))
    }

    /// The container's `/etc/resolv.conf`, empty when it has none.
    fn resolv_conf(&self) -> String {
        // Inside the container's root: its own links (`/etc -> /somewhere`) stay in it.
        let root = Path::new("/proc").join(self.pid.to_string()).join("root");
        crate::inroot::Root::open(root)
            .and_then(|root| root.read("/etc/resolv.conf", 1 << 20))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The A records of `name` from the container's resolver; empty for NXDOMAIN.
    fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let conf = self.resolv_conf();
        let cannot = |why: &str| format!("cannot resolve {name} from {}: {why}", self.name);
        let server = first_nameserver(&conf).ok_or_else(|| cannot("no nameserver"))?;
        let candidates = candidates(name, &search_domains(&conf));
        let found = self.inside(|| -> Result<Vec<IpAddr>, String> {
            for candidate in &candidates {
                let server = SocketAddr::new(server, DNS_PORT);
                if let Some(addresses) = query_a(server, candidate, DNS_WAIT, DNS_ATTEMPTS)? {
                    return Ok(addresses.into_iter().map(IpAddr::V4).collect());
                }
            }
            Ok(Vec::new())
        })?;
        found.map_err(|why| cannot(&why))
    }

    /// The address `host` stands for, as the container sees it.
    fn resolve(&self, host: &str) -> Result<IpAddr, String> {
        if let Some(ip) = literal_ip(host) {
            return Ok(ip);
        }
        if host.eq_ignore_ascii_case("localhost") {
            return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        self.lookup(host)?.first().copied().ok_or_else(|| {
            format!(
                "cannot resolve {host} from {}: no such name (NXDOMAIN)",
                self.name
            )
        })
    }
}

impl Prober for LiveProber {
    fn http(&self, from: &str, url: &str, timeout: Duration) -> Result<HttpSeen, String> {
        let container = self.container(from)?;
        let parsed = parse_url(url).map_err(|e| e.to_string())?;
        let (host, port) = split_host_port(&parsed.address)?;
        let address = SocketAddr::new(container.resolve(&host)?, port);
        // The resolved address goes into the URL: http_get must not resolve names itself
        // (it would ask the host's resolver).
        let literal = format!("http://{address}{}", parsed.path);
        let result = container
            .inside(|| http_get(&literal, timeout))?
            .map_err(|e| e.to_string())?;
        let shown = shown_address(&host, address);
        match result.outcome {
            HttpOutcome::Response(response) => Ok(HttpSeen {
                status: response.status,
                body: response.body_excerpt,
            }),
            HttpOutcome::Refused => Err(format!("connection refused by {shown}")),
            HttpOutcome::Timeout => {
                Err(format!("no answer from {shown} within {}", millis(timeout)))
            }
            HttpOutcome::Error(error) => Err(format!("{shown}: {error}")),
        }
    }

    fn tcp(&self, from: &str, address: &str, timeout: Duration) -> Result<TcpSeen, String> {
        let container = self.container(from)?;
        let (host, port) = split_host_port(address)?;
        let socket = SocketAddr::new(container.resolve(&host)?, port);
        let result = container
            .inside(|| tcp_connect(&socket.to_string(), timeout))?
            .map_err(|e| e.to_string())?;
        match result.outcome {
            TcpOutcome::Open => Ok(TcpSeen::Open),
            TcpOutcome::Refused => Ok(TcpSeen::Refused),
            // A silently dropped SYN: the only way to a timeout.
            TcpOutcome::Timeout => Ok(TcpSeen::Timeout),
            // No route, network unreachable: not a timeout, say what happened.
            TcpOutcome::Error(error) => Err(format!("{}: {error}", shown_address(&host, socket))),
        }
    }

    fn ping(&self, from: &str, target: &str, count: u32) -> Result<PingSeen, String> {
        let container = self.container(from)?;
        let address = match container.resolve(target)? {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => return Err(format!("cannot ping {v6}: only IPv4 is supported")),
        };
        let result =
            container.inside(|| ping::ping(address, count, PING_INTERVAL, PING_TIMEOUT))?;
        match result {
            Ok(result) => Ok(PingSeen {
                address: IpAddr::V4(result.target),
                sent: result.sent,
                rtts: result.rtts,
            }),
            Err(err) => Err(ping_failure(&err, target, &container.name)),
        }
    }

    fn dns(&self, from: &str, name: &str) -> Result<Vec<IpAddr>, String> {
        self.container(from)?.lookup(name)
    }

    fn exec(&self, container: &str, command: &[String]) -> Result<ExecSeen, String> {
        let container = self.container(container)?;
        match container
            .target
            .run_captured(command, EXEC_TIMEOUT, EXEC_STDOUT_BYTES)
        {
            Ok(Some(captured)) => Ok(ExecSeen {
                code: captured.status.code(),
                stdout: String::from_utf8_lossy(&captured.stdout).into_owned(),
            }),
            Ok(None) => Err(format!(
                "still running after {} s: killed",
                EXEC_TIMEOUT.as_secs()
            )),
            Err(err) => Err(err.to_string()),
        }
    }
}

/// How a ping that got no reply at all failed, in words `assert` recognises
/// ("unreachable" passes `expect="unreachable"`).
fn ping_failure(err: &std::io::Error, target: &str, from: &str) -> String {
    match err.kind() {
        std::io::ErrorKind::NetworkUnreachable => {
            format!("{target} is unreachable from {from}: network unreachable (no route)")
        }
        std::io::ErrorKind::HostUnreachable => {
            format!("{target} is unreachable from {from}: host unreachable")
        }
        _ => format!("cannot ping {target} from {from}: {err}"),
    }
}

fn millis(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// `web (10.89.0.10:8080)` for a name, just the address for a literal.
fn shown_address(host: &str, address: SocketAddr) -> String {
    if literal_ip(host).is_some() {
        address.to_string()
    } else {
        format!("{host} ({address})")
    }
}

/// `host` as an address, brackets of an IPv6 literal allowed.
fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// `HOST:PORT` (`[V6]:PORT` too) into its parts.
pub(crate) fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("invalid address `{address}`: {why}");
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host.to_string(), port))
}

/// The first `nameserver` of a resolv.conf.
pub(crate) fn first_nameserver(resolv_conf: &str) -> Option<IpAddr> {
    resolv_conf.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => words.next()?.parse().ok(),
            _ => None,
        }
    })
}

/// The `search` domains of a resolv.conf (the last `search` line wins, as in glibc).
pub(crate) fn search_domains(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("search")).then(|| words.map(str::to_string).collect())
        })
        .next_back()
        .unwrap_or_default()
}

/// The names to ask, in order: the name as written, then (for a name without a dot) with
/// each search domain. A trailing dot means the name is complete.
pub(crate) fn candidates(name: &str, search: &[String]) -> Vec<String> {
    if name.ends_with('.') {
        return vec![name.trim_end_matches('.').to_string()];
    }
    let mut names = vec![name.to_string()];
    if !name.contains('.') {
        names.extend(search.iter().map(|domain| format!("{name}.{domain}")));
    }
    names
}

/// One A query to `server`, from the calling thread's network namespace, sent up to
/// `attempts` times `wait` apart: the addresses (`Some`, maybe empty for a name without A
/// records), `None` for NXDOMAIN.
pub(crate) fn query_a(
    server: SocketAddr,
    name: &str,
    wait: Duration,
    attempts: u32,
) -> Result<Option<Vec<Ipv4Addr>>, String> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket_error = |e: std::io::Error| format!("DNS query to {server}: {e}");
    let socket = UdpSocket::bind(local).map_err(socket_error)?;
    // Connected: the kernel drops datagrams from anyone but the server.
    socket.connect(server).map_err(socket_error)?;
    let id = query_id();
    let query = build_query(id, name, TYPE_A);
    let mut buffer = [0u8; 4096];
    for _ in 0..attempts.max(1) {
        socket.send(&query).map_err(socket_error)?;
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left)).map_err(socket_error)?;
            let n = match socket.recv(&mut buffer) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(format!("nothing answers DNS at {server}"));
                }
                Err(e) => return Err(socket_error(e)),
            };
            let Some(response) = parse_response(&buffer[..n]) else {
                continue;
            };
            if response.id != id {
                continue;
            }
            return match response.rcode {
                0 => Ok(Some(response.addresses)),
                3 => Ok(None),
                5 => Err(format!("the DNS server {} refused the query", server.ip())),
                code => Err(format!(
                    "the DNS server {} answered with error code {code}",
                    server.ip()
                )),
            };
        }
    }
    Err(format!(
        "no answer from the DNS server {} within {} s",
        server.ip(),
        (wait * attempts.max(1)).as_secs()
    ))
}

/// A query id that differs between queries (it only matches answers to questions).
fn query_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos as u16) ^ (std::process::id() as u16)
}

#[cfg(test)]
mod tests;
