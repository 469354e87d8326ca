//! The DNS server of one network: a UDP socket (usually on the network's gateway address,
//! in kiln's network namespace) and a thread answering from a lookup function until it is
//! shut down.
//!
//! It does not know what a name means: the lookup function does (see
//! [`super::NameTable`]); when it says [`Lookup::Forward`] and the server was given a
//! [`Forwarder`], the query goes to the machine's resolvers.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::thread::JoinHandle;

use std::sync::atomic::{AtomicUsize, Ordering};

use super::forward::Forwarder;
use super::message::{self, Lookup};
use crate::net::threads::{Stop, Wait, in_netns};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DnsError {
    #[error("cannot listen for DNS on {addr}")]
    #[diagnostic(help("is another DNS server already using this address?"))]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the DNS server")]
    Start(#[source] io::Error),
}

/// Answers a query's name for a client.
pub trait LookupFn: Fn(&str, IpAddr) -> Lookup + Send + Sync + 'static {}
impl<F: Fn(&str, IpAddr) -> Lookup + Send + Sync + 'static> LookupFn for F {}

/// A running DNS server; shut down (and its thread joined) by [`DnsServer::shutdown`] or
/// when dropped.
#[derive(Debug)]
pub struct DnsServer {
    local_addr: SocketAddr,
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Binds `addr` in the calling thread's network namespace and serves on it.
    pub fn bind(addr: SocketAddr, lookup: impl LookupFn) -> Result<DnsServer, DnsError> {
        let socket = UdpSocket::bind(addr).map_err(|source| DnsError::Bind { addr, source })?;
        DnsServer::serve(socket, lookup)
    }

    /// Binds `addr` inside the network namespace `netns` and serves on it.
    pub fn bind_in(
        netns: BorrowedFd<'_>,
        addr: SocketAddr,
        lookup: impl LookupFn,
    ) -> Result<DnsServer, DnsError> {
        let socket = in_netns(netns, || UdpSocket::bind(addr))
            .and_then(|bound| bound)
            .map_err(|source| DnsError::Bind { addr, source })?;
        DnsServer::serve(socket, lookup)
    }

    /// Serves on a socket bound already (in whatever namespace it was made).
    pub fn serve(socket: UdpSocket, lookup: impl LookupFn) -> Result<DnsServer, DnsError> {
        DnsServer::serve_forwarding(socket, lookup, None)
    }

    /// [`DnsServer::serve`], and names the lookup says to forward ([`Lookup::Forward`]) go
    /// to `forwarder`'s upstreams, from a thread of the caller's namespace (at most
    /// [`MAX_FORWARDS`] at a time; more are answered SERVFAIL).
    pub fn serve_forwarding(
        socket: UdpSocket,
        lookup: impl LookupFn,
        forwarder: Option<Forwarder>,
    ) -> Result<DnsServer, DnsError> {
        let local_addr = socket.local_addr().map_err(DnsError::Start)?;
        let stop = Arc::new(Stop::new().map_err(DnsError::Start)?);
        let thread = std::thread::Builder::new()
            .name(format!("kiln-dns {local_addr}"))
            .spawn({
                let stop = Arc::clone(&stop);
                move || serve_until_stopped(&socket, &lookup, forwarder.as_ref(), &stop)
            })
            .map_err(DnsError::Start)?;
        Ok(DnsServer {
            local_addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops answering, closes the socket and joins the thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// How many forwarded queries may wait for an upstream at once.
pub const MAX_FORWARDS: usize = 64;

fn serve_until_stopped(
    socket: &UdpSocket,
    lookup: &impl LookupFn,
    forwarder: Option<&Forwarder>,
    stop: &Stop,
) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    // Big enough for any query with EDNS options; longer datagrams are cut and then
    // answered FORMERR or as far as they parse.
    let mut buffer = [0u8; 4096];
    let mut rotation = 0usize;
    loop {
        match stop.wait(socket.as_fd(), None) {
            Ok(Wait::Readable) => {}
            Ok(Wait::Stopped) => return,
            Ok(Wait::TimedOut) => continue,
            Err(_) => return,
        }
        // Errors here are per datagram (an ICMP error of an earlier reply, say): next.
        let Ok((len, client)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let client_ip = client.ip().to_canonical();
        let mut forward = false;
        let reply = message::respond(
            &buffer[..len],
            |name| {
                let found = lookup(name, client_ip);
                forward = found == Lookup::Forward;
                found
            },
            rotation,
        );
        rotation = rotation.wrapping_add(1);
        let Some(reply) = reply else { continue };
        if forward
            && let Some(forwarder) = forwarder
            && in_flight.load(Ordering::Acquire) < MAX_FORWARDS
            && let Ok(replier) = socket.try_clone()
        {
            let forwarder = forwarder.clone();
            let query = buffer[..len].to_vec();
            let fallback = reply.clone();
            let counted = Arc::clone(&in_flight);
            in_flight.fetch_add(1, Ordering::AcqRel);
            let spawned = std::thread::Builder::new()
                .name("kiln-dns-forward".to_string())
                .spawn(move || {
                    let answer = forwarder.ask(&query, client_ip).unwrap_or(fallback);
                    let _ = replier.send_to(&answer, client);
                    counted.fetch_sub(1, Ordering::AcqRel);
                });
            if spawned.is_ok() {
                continue;
            }
            in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        let _ = socket.send_to(&reply, client);
    }
}
