//! Published ports: a userspace proxy from a listening address in the machine's network
//! namespace (`127.0.0.1:HOST_PORT`) to a container's address inside kiln's namespace.
//!
//! The listener is bound first, in the caller's namespace, so a port in use is an error
//! before anything runs. Each TCP connection gets an outgoing socket made on a thread inside
//! the target namespace, and bytes are copied both ways, half-closes included. UDP keeps one
//! outgoing socket per client address, closed after a while without traffic.
//!
//! It never touches a firewall: no DNAT rule, nothing to clean up in the machine's netfilter.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::net::threads::{Stop, Wait, in_netns};

#[cfg(test)]
mod tests;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ProxyError {
    #[error("port {port} is already in use")]
    #[diagnostic(help(
        "another program (or another kiln project) listens on it: stop it, or publish on another host port"
    ))]
    PortInUse {
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the port proxy for {addr}")]
    Start {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Limits of a proxy; [`PortProxy::start`] uses the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyOptions {
    /// How long a TCP connection to the target may take before the client is dropped.
    /// Stopping the proxy waits for connections still being made.
    pub connect_timeout: Duration,
    /// A UDP client's session ends after this long without a datagram either way.
    pub udp_idle: Duration,
}

impl Default for ProxyOptions {
    fn default() -> ProxyOptions {
        ProxyOptions {
            connect_timeout: Duration::from_secs(5),
            udp_idle: Duration::from_secs(60),
        }
    }
}

/// A running proxy for one published port; stopped (every thread joined, every socket
/// closed) by [`PortProxy::stop`] or when dropped.
#[derive(Debug)]
pub struct PortProxy {
    local_addr: SocketAddr,
    protocol: Protocol,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the proxy's threads share.
#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    /// `None`: the target is in the caller's own namespace.
    target_netns: Option<OwnedFd>,
    options: ProxyOptions,
    stop: Stop,
    /// Open TCP connections (client side, target side), shut down on stop.
    connections: Mutex<Connections>,
    /// UDP sessions by client address.
    sessions: Mutex<HashMap<SocketAddr, Session>>,
}

#[derive(Debug, Default)]
struct Connections {
    next: u64,
    open: HashMap<u64, (TcpStream, TcpStream)>,
}

#[derive(Debug)]
struct Session {
    upstream: Arc<UdpSocket>,
    last_active: Instant,
}

/// A poisoned lock only means another proxy thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PortProxy {
    /// Listens on `listen` in the calling thread's namespace and forwards to `target`, in
    /// `target_netns` (or the caller's namespace when `None`).
    pub fn start(
        listen: SocketAddr,
        target: SocketAddr,
        target_netns: Option<OwnedFd>,
        protocol: Protocol,
    ) -> Result<PortProxy, ProxyError> {
        PortProxy::start_with(
            listen,
            target,
            target_netns,
            protocol,
            ProxyOptions::default(),
        )
    }

    /// [`PortProxy::start`] with limits of one's own.
    pub fn start_with(
        listen: SocketAddr,
        target: SocketAddr,
        target_netns: Option<OwnedFd>,
        protocol: Protocol,
        options: ProxyOptions,
    ) -> Result<PortProxy, ProxyError> {
        let bind_error = |source: io::Error| {
            if source.kind() == io::ErrorKind::AddrInUse {
                ProxyError::PortInUse {
                    port: listen.port(),
                    source,
                }
            } else {
                ProxyError::Bind {
                    addr: listen,
                    source,
                }
            }
        };
        let start_error = |source| ProxyError::Start {
            addr: listen,
            source,
        };
        let shared = Arc::new(Shared {
            target,
            target_netns,
            options,
            stop: Stop::new().map_err(start_error)?,
            connections: Mutex::default(),
            sessions: Mutex::default(),
        });
        let (local_addr, work): (SocketAddr, Box<dyn FnOnce() + Send>) = match protocol {
            Protocol::Tcp => {
                let listener = TcpListener::bind(listen).map_err(bind_error)?;
                // A connection reset between poll and accept must not block the loop.
                listener.set_nonblocking(true).map_err(start_error)?;
                let shared = Arc::clone(&shared);
                (
                    listener.local_addr().map_err(start_error)?,
                    Box::new(move || accept_loop(&listener, &shared)),
                )
            }
            Protocol::Udp => {
                let socket = Arc::new(UdpSocket::bind(listen).map_err(bind_error)?);
                let shared = Arc::clone(&shared);
                (
                    socket.local_addr().map_err(start_error)?,
                    Box::new(move || datagram_loop(&socket, &shared)),
                )
            }
        };
        let thread = std::thread::Builder::new()
            .name(format!("kiln-proxy {local_addr}"))
            .spawn(work)
            .map_err(start_error)?;
        Ok(PortProxy {
            local_addr,
            protocol,
            shared,
            thread: Some(thread),
        })
    }

    /// The address listened on (with the port the kernel chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// How many UDP clients have a session now.
    pub fn udp_sessions(&self) -> usize {
        lock(&self.shared.sessions).len()
    }

    /// Closes the listener and every connection, and joins every thread.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.shared.stop.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PortProxy {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl Shared {
    /// Runs `work` in the target's namespace.
    fn in_target<T: Send>(&self, work: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
        match &self.target_netns {
            Some(netns) => in_netns(netns.as_fd(), work)?,
            None => work(),
        }
    }
}

/// Joins the threads that have finished, keeping the others.
fn reap(threads: &mut Vec<JoinHandle<()>>) {
    let (done, running): (Vec<_>, Vec<_>) = threads.drain(..).partition(|t| t.is_finished());
    *threads = running;
    for thread in done {
        let _ = thread.join();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut threads = Vec::new();
    loop {
        match shared.stop.wait(listener.as_fd(), None) {
            Ok(Wait::Readable) => {}
            Ok(Wait::TimedOut) => continue,
            Ok(Wait::Stopped) | Err(_) => break,
        }
        reap(&mut threads);
        let Ok((client, _)) = listener.accept() else {
            continue; // WouldBlock (the client gave up already) or a per-connection error
        };
        let shared = Arc::clone(shared);
        if let Ok(thread) = std::thread::Builder::new()
            .name("kiln-proxy-conn".into())
            .spawn(move || relay_connection(client, &shared))
        {
            threads.push(thread);
        }
    }
    // Unblock every copy, then wait for the copies to notice.
    for (client, upstream) in lock(&shared.connections).open.values() {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    }
    for thread in threads {
        let _ = thread.join();
    }
}

/// Connects to the target for `client` and copies both ways until both sides are done.
fn relay_connection(client: TcpStream, shared: &Shared) {
    let target = shared.target;
    let timeout = shared.options.connect_timeout;
    let Ok(upstream) = shared.in_target(|| TcpStream::connect_timeout(&target, timeout)) else {
        return; // dropping the client closes it: the target is not there
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(client_copy), Ok(upstream_copy)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let id = {
        let mut connections = lock(&shared.connections);
        // Checked under the lock the stopping thread takes to shut connections down, so a
        // connection registers before that sweep or sees the stop here.
        if shared.stop.is_stopped() {
            return;
        }
        let id = connections.next;
        connections.next += 1;
        connections.open.insert(id, (client_copy, upstream_copy));
        id
    };
    let back = {
        let (Ok(from), Ok(to)) = (upstream.try_clone(), client.try_clone()) else {
            lock(&shared.connections).open.remove(&id);
            return;
        };
        std::thread::Builder::new()
            .name("kiln-proxy-back".into())
            .spawn(move || pump(from, to))
    };
    match back {
        Ok(back) => {
            pump(client, upstream);
            let _ = back.join();
        }
        Err(_) => {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
    lock(&shared.connections).open.remove(&id);
}

/// Copies `from` to `to` until `from` ends, then half-closes `to` so its reader sees the
/// end too. A failure on either side closes both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(len) => {
                if to.write_all(&buffer[..len]).is_err() {
                    break;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn datagram_loop(socket: &Arc<UdpSocket>, shared: &Arc<Shared>) {
    let mut threads = Vec::new();
    let mut buffer = vec![0u8; 65536];
    loop {
        match shared.stop.wait(socket.as_fd(), None) {
            Ok(Wait::Readable) => {}
            Ok(Wait::TimedOut) => continue,
            Ok(Wait::Stopped) | Err(_) => break,
        }
        let Ok((len, client)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        reap(&mut threads);
        let mut sessions = lock(&shared.sessions);
        let upstream = match sessions.get_mut(&client) {
            Some(session) => {
                session.last_active = Instant::now();
                Arc::clone(&session.upstream)
            }
            None => {
                let Ok(upstream) = open_session(shared) else {
                    continue; // the datagram is lost, as UDP allows
                };
                let spawned = std::thread::Builder::new()
                    .name("kiln-proxy-udp".into())
                    .spawn({
                        let (socket, upstream) = (Arc::clone(socket), Arc::clone(&upstream));
                        let shared = Arc::clone(shared);
                        move || relay_replies(&socket, &upstream, client, &shared)
                    });
                let Ok(thread) = spawned else {
                    continue;
                };
                threads.push(thread);
                sessions.insert(
                    client,
                    Session {
                        upstream: Arc::clone(&upstream),
                        last_active: Instant::now(),
                    },
                );
                upstream
            }
        };
        drop(sessions);
        let _ = upstream.send(&buffer[..len]);
    }
    for thread in threads {
        let _ = thread.join();
    }
    lock(&shared.sessions).clear();
}

/// A socket in the target's namespace, connected to the target (so only its replies come
/// back on it).
fn open_session(shared: &Shared) -> io::Result<Arc<UdpSocket>> {
    let target = shared.target;
    let any: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let upstream = shared.in_target(|| UdpSocket::bind(any))?;
    upstream.connect(target)?;
    Ok(Arc::new(upstream))
}

/// Sends the target's replies back to `client` until the session has been idle for
/// `udp_idle`, or the proxy stops.
fn relay_replies(socket: &UdpSocket, upstream: &UdpSocket, client: SocketAddr, shared: &Shared) {
    let idle = shared.options.udp_idle;
    let mut buffer = vec![0u8; 65536];
    loop {
        match shared.stop.wait(upstream.as_fd(), Some(idle)) {
            Ok(Wait::Readable) => {
                // An error is an ICMP report (nobody listens yet): the next datagram may do.
                if let Ok(len) = upstream.recv(&mut buffer) {
                    let _ = socket.send_to(&buffer[..len], client);
                    if let Some(session) = lock(&shared.sessions).get_mut(&client) {
                        session.last_active = Instant::now();
                    }
                }
            }
            Ok(Wait::TimedOut) => {
                // Decided under the lock the receiving loop takes to use the session: it
                // either refreshed `last_active` already or finds no session and opens one.
                let mut sessions = lock(&shared.sessions);
                let expired = sessions
                    .get(&client)
                    .is_none_or(|s| s.last_active.elapsed() >= idle);
                if expired {
                    sessions.remove(&client);
                    return;
                }
            }
            Ok(Wait::Stopped) | Err(_) => return,
        }
    }
}
