//! Forwarding to the machine's resolvers, for networks with egress: the query a container
//! sent, unchanged, to each upstream in turn until one answers with the same id.
//!
//! Upstreams are the `nameserver` lines of the machine's `/etc/resolv.conf`, read for every
//! query (a laptop's resolvers change) — or of the file `KILN_RESOLV_CONF` names, which tests
//! point at a resolver of their own. The socket is made by the calling thread, in its
//! namespace: the DNS daemon runs in the machine's, so a loopback resolver
//! (`127.0.0.53`) works, and nothing is added to the machine's network to reach it.
//!
//! A container given `--dns` (`dns` in kiln.kdl) on such a network has its own upstreams,
//! Docker's meaning on a user-defined network: [`Forwarder::with_client_upstreams`] asks
//! for a client's before the machine's are used.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The variable that names another resolv.conf to read upstreams from.
pub const RESOLV_CONF_VAR: &str = "KILN_RESOLV_CONF";
/// How long each upstream has to answer.
const TIMEOUT: Duration = Duration::from_secs(2);
/// resolv.conf's own limit (MAXNS).
const MAX_UPSTREAMS: usize = 3;

/// A client's own upstreams (`--dns`), if it has any.
type ClientUpstreams = Arc<dyn Fn(IpAddr) -> Vec<SocketAddr> + Send + Sync>;

/// Where the upstreams come from.
#[derive(Clone)]
pub struct Forwarder {
    upstreams: Upstreams,
    per_client: Option<ClientUpstreams>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("upstreams", &self.upstreams)
            .field("per_client", &self.per_client.is_some())
            .finish()
    }
}

#[derive(Debug, Clone)]
enum Upstreams {
    /// The `nameserver` lines of a resolv.conf, read for every query.
    File(PathBuf),
    /// Given once (tests).
    Fixed(Vec<SocketAddr>),
}

impl Forwarder {
    /// The machine's resolvers (or `KILN_RESOLV_CONF`'s).
    pub fn from_env() -> Forwarder {
        Forwarder {
            upstreams: Upstreams::File(
                std::env::var_os(RESOLV_CONF_VAR)
                    .map_or_else(|| PathBuf::from("/etc/resolv.conf"), PathBuf::from),
            ),
            per_client: None,
        }
    }

    /// Asks `client_upstreams` for a client's own upstreams first (`--dns`); the usual
    /// ones when it gives none.
    pub fn with_client_upstreams(
        self,
        client_upstreams: impl Fn(IpAddr) -> Vec<SocketAddr> + Send + Sync + 'static,
    ) -> Forwarder {
        Forwarder {
            per_client: Some(Arc::new(client_upstreams)),
            ..self
        }
    }

    /// These upstreams, whatever any file says.
    pub fn fixed(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder {
            upstreams: Upstreams::Fixed(upstreams),
            per_client: None,
        }
    }

    /// The upstreams as they are now (none when the file cannot be read).
    pub fn upstreams(&self) -> Vec<SocketAddr> {
        match &self.upstreams {
            Upstreams::File(path) => std::fs::read_to_string(path)
                .map(|text| nameservers(&text))
                .unwrap_or_default(),
            Upstreams::Fixed(list) => list.clone(),
        }
    }

    /// `client`'s upstreams: its own if it has some, else [`Forwarder::upstreams`].
    pub fn upstreams_for(&self, client: IpAddr) -> Vec<SocketAddr> {
        match self.per_client.as_ref().map(|f| f(client)) {
            Some(own) if !own.is_empty() => own,
            _ => self.upstreams(),
        }
    }

    /// The first upstream answer to `client`'s `query` (a whole DNS message), or the last
    /// error.
    pub fn ask(&self, query: &[u8], client: IpAddr) -> io::Result<Vec<u8>> {
        let id = query
            .get(..2)
            .ok_or_else(|| io::Error::other("not a DNS message"))?;
        let mut last = io::Error::other("no nameserver to forward to");
        for upstream in self.upstreams_for(client) {
            match ask_one(upstream, query, id) {
                Ok(reply) => return Ok(reply),
                Err(err) => last = err,
            }
        }
        Err(last)
    }
}

fn ask_one(upstream: SocketAddr, query: &[u8], id: &[u8]) -> io::Result<Vec<u8>> {
    let any: SocketAddr = match upstream {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any)?;
    socket.connect(upstream)?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    socket.send(query)?;
    let mut buffer = vec![0u8; 4096];
    loop {
        // A connected socket only hears from the upstream; a reply to another id is stale.
        let len = socket.recv(&mut buffer)?;
        if buffer.get(..2) == Some(id) {
            buffer.truncate(len);
            return Ok(buffer);
        }
    }
}

/// The `nameserver` addresses of a resolv.conf, at most three, port 53.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        // A scoped IPv6 address (`fe80::1%eth0`) names an interface of the machine: skipped.
        .filter_map(|address| address.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .take(MAX_UPSTREAMS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_like_the_resolver_reads_them() {
        let conf = "# comment\nsearch example\nnameserver 10.0.0.2\nnameserver  ::1\n\
                    nameserver fe80::1%eth0\nnameserver 10.0.0.3\nnameserver 10.0.0.4\nnameserver 10.0.0.5\n";
        let found: Vec<String> = nameservers(conf).iter().map(|a| a.to_string()).collect();
        assert_eq!(found, ["10.0.0.2:53", "[::1]:53", "10.0.0.3:53"]);
        assert!(nameservers("nameserver\nnameservers 1.1.1.1\n").is_empty());
    }

    #[test]
    fn the_first_upstream_that_answers_with_the_same_id_wins() {
        // An upstream on loopback that answers the query back with the QR bit set, after a
        // stale reply with another id.
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = upstream.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            let (len, peer) = upstream.recv_from(&mut buffer).unwrap();
            upstream.send_to(&[0xff, 0xff, 0x81, 0x80], peer).unwrap();
            buffer[2] |= 0x80;
            upstream.send_to(&buffer[..len], peer).unwrap();
        });
        let query = super::super::message::build_query(0x4242, "world.example", 1);
        let client = IpAddr::from([10, 0, 0, 9]);
        // The client's own upstream comes first; an unreachable default is never asked.
        let forwarder = Forwarder::fixed(vec!["192.0.2.1:53".parse().unwrap()])
            .with_client_upstreams(move |c| {
                if c == client {
                    vec![address]
                } else {
                    Vec::new()
                }
            });
        assert_eq!(forwarder.upstreams_for(client), [address]);
        assert_eq!(
            forwarder.upstreams_for(IpAddr::from([10, 0, 0, 8])),
            ["192.0.2.1:53".parse().unwrap()]
        );
        let reply = forwarder.ask(&query, client).unwrap();
        server.join().unwrap();
        assert_eq!(&reply[..2], &[0x42, 0x42]);
        assert_eq!(reply[2] & 0x80, 0x80);
        assert!(Forwarder::fixed(Vec::new()).ask(&query, client).is_err());
    }
}
