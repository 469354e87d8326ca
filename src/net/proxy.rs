//! Published ports: a userspace proxy from a listening address in the machine's network
//! namespace (`127.0.0.1:HOST_PORT`) to a container's address inside kiln's namespace.
//!
//! The listener is bound first, in the caller's namespace, so a port in use is an error
//! before anything runs. Then one thread per published port enters the target's namespace
//! (sockets it makes are made there; the listener stays where it was bound) and runs a
//! small single-threaded tokio runtime: every connection is a task, not a thread, and costs
//! two descriptors and a few hundred bytes while idle (a copy buffer is shared by the
//! thread's tasks; a connection holds bytes of its own only while a peer is slower than the
//! other). TCP half-closes pass through; UDP keeps a session (an outgoing socket) per
//! client address.
//!
//! Bounded: at most [`ProxyOptions::max_connections`] connections (or UDP sessions) at
//! once — the next client is reset at once, and the refusal counted — and a connection or
//! session with no byte either way for [`ProxyOptions::idle_timeout`] is closed. When the
//! load is gone, descriptors, tasks and memory are given back.
//!
//! It never touches a firewall: no DNAT rule, nothing to clean up in the machine's netfilter.
//! It does not know about containers or the language: callers pass addresses and limits.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

mod tcp;
mod udp;

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

/// The most connections (or UDP sessions) a published port holds at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// A TCP connection with no byte either way for this long is closed. An hour: a database
/// or SSH session left open over lunch survives, a connection whose client vanished (a
/// laptop closed, a crashed program behind a NAT) is reclaimed the same afternoon.
pub const DEFAULT_TCP_IDLE: Duration = Duration::from_secs(3600);
/// A UDP client's session ends after this long without a datagram either way (Linux's
/// conntrack keeps an answered UDP flow 120 s, an unanswered one 30 s).
pub const DEFAULT_UDP_IDLE: Duration = Duration::from_secs(60);

/// Limits of a proxy; [`PortProxy::start`] uses the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyOptions {
    /// How long a TCP connection to the target may take before the client is dropped.
    pub connect_timeout: Duration,
    /// The most connections (TCP) or sessions (UDP) at once; the next client is refused.
    pub max_connections: usize,
    /// How long a connection or session may pass no byte before it is closed; `None`: the
    /// protocol's default ([`DEFAULT_TCP_IDLE`], [`DEFAULT_UDP_IDLE`]).
    pub idle_timeout: Option<Duration>,
}

impl Default for ProxyOptions {
    fn default() -> ProxyOptions {
        ProxyOptions {
            connect_timeout: Duration::from_secs(5),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: None,
        }
    }
}

impl ProxyOptions {
    /// The idle timeout in force for `protocol`.
    pub fn idle(&self, protocol: Protocol) -> Duration {
        self.idle_timeout.unwrap_or(match protocol {
            Protocol::Tcp => DEFAULT_TCP_IDLE,
            Protocol::Udp => DEFAULT_UDP_IDLE,
        })
    }
}

/// What a proxy has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections (TCP) or sessions (UDP) open now.
    pub open: usize,
    /// Connections accepted, or sessions opened, since the start.
    pub accepted: u64,
    /// Clients turned away because `max_connections` were open.
    pub refused: u64,
    /// Connections or sessions closed for being idle.
    pub timed_out: u64,
}

/// Counters the proxy thread writes and [`PortProxy::stats`] reads.
#[derive(Debug, Default)]
struct Counters {
    open: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
}

/// What the proxy thread needs.
#[derive(Debug)]
struct Settings {
    target: SocketAddr,
    options: ProxyOptions,
    /// `max_connections`, lowered to what the descriptor limit allows.
    max_open: usize,
    idle: Duration,
    counters: Arc<Counters>,
    local_addr: SocketAddr,
}

/// A running proxy for one published port; stopped (its thread joined, every socket
/// closed) by [`PortProxy::stop`] or when dropped.
#[derive(Debug)]
pub struct PortProxy {
    local_addr: SocketAddr,
    protocol: Protocol,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The listening socket, bound in the caller's namespace.
enum Listener {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Descriptors kept free for everything else the process does.
const FD_RESERVE: u64 = 64;

/// Raises this process's soft descriptor limit towards what `max` connections need (two
/// descriptors each), never above the hard limit (raising that needs CAP_SYS_RESOURCE),
/// and returns how many connections the limit then allows.
fn fit_descriptor_limit(max: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let wanted = (max as u64).saturating_mul(2).saturating_add(FD_RESERVE);
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return max;
    };
    let soft = if soft < wanted && soft < hard {
        let raised = wanted.min(hard);
        if setrlimit(Resource::RLIMIT_NOFILE, raised, hard).is_ok() {
            raised
        } else {
            soft
        }
    } else {
        soft
    };
    let allowed = usize::try_from(soft.saturating_sub(FD_RESERVE) / 2).unwrap_or(usize::MAX);
    max.min(allowed.max(1))
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
        let (listener, local_addr) = match protocol {
            Protocol::Tcp => {
                let listener = TcpListener::bind(listen).map_err(bind_error)?;
                let addr = listener.local_addr().map_err(start_error)?;
                (Listener::Tcp(listener), addr)
            }
            Protocol::Udp => {
                let socket = UdpSocket::bind(listen).map_err(bind_error)?;
                let addr = socket.local_addr().map_err(start_error)?;
                (Listener::Udp(socket), addr)
            }
        };
        let counters = Arc::new(Counters::default());
        let settings = Settings {
            target,
            options,
            max_open: fit_descriptor_limit(options.max_connections.max(1)),
            idle: options.idle(protocol),
            counters: Arc::clone(&counters),
            local_addr,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("kiln-proxy {local_addr}"))
            .spawn(move || run(listener, target_netns, settings, stopped, &ready_tx))
            .map_err(start_error)?;
        // The thread says when it serves (or why it cannot).
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                let _ = thread.join();
                return Err(start_error(source));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(start_error(io::Error::other("the proxy thread ended")));
            }
        }
        Ok(PortProxy {
            local_addr,
            protocol,
            counters,
            stop: Some(stop),
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
        match self.protocol {
            Protocol::Udp => self.counters.open.load(Ordering::Relaxed),
            Protocol::Tcp => 0,
        }
    }

    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            open: self.counters.open.load(Ordering::Relaxed),
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
            timed_out: self.counters.timed_out.load(Ordering::Relaxed),
        }
    }

    /// Closes the listener and every connection, and joins the thread.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
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

/// The proxy thread: enters the target's namespace, serves until told to stop, and drops
/// every task (closing its sockets) on the way out.
fn run(
    listener: Listener,
    target_netns: Option<OwnedFd>,
    settings: Settings,
    stopped: tokio::sync::oneshot::Receiver<()>,
    ready: &std::sync::mpsc::Sender<io::Result<()>>,
) {
    let setup = (|| {
        if let Some(netns) = &target_netns {
            // This thread is the proxy's alone and ends with it: the process's other
            // threads stay where they are.
            nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
        }
        drop(target_netns);
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
    })();
    let runtime = match setup {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let served = match listener {
            Listener::Tcp(listener) => tcp::serve(listener, settings, stopped, ready).await,
            Listener::Udp(socket) => udp::serve(socket, settings, stopped, ready).await,
        };
        if let Err(err) = served {
            let _ = ready.send(Err(err));
        }
    });
    // Dropping the set drops every connection task still open: their sockets close.
    drop(local);
}

/// Gives freed heap memory back to the system (glibc keeps it in the thread's arena): called
/// when the last connection of a busy spell closes.
fn release_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Prints at most one line per this long about refused clients.
const REFUSAL_NOTICE: Duration = Duration::from_secs(10);

/// Tells (on stderr, at most every [`REFUSAL_NOTICE`]) that clients are being refused.
fn notice_refusal(settings: &Settings, last: &mut Option<std::time::Instant>) {
    settings.counters.refused.fetch_add(1, Ordering::Relaxed);
    if last.is_none_or(|at| at.elapsed() >= REFUSAL_NOTICE) {
        *last = Some(std::time::Instant::now());
        eprintln!(
            "kiln: published port {}: {} connections open, the limit; new clients are refused",
            settings.local_addr, settings.max_open
        );
    }
}
