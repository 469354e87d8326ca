//! UDP: a session per client address — a socket made on the proxy thread (so in the
//! target's namespace), connected to the target so that only its replies come back on it —
//! and a task per session that sends those replies to the client from the published
//! address, until the session has been idle for the idle timeout.
//!
//! Datagrams from a new client while `max_open` sessions exist are dropped (UDP has no
//! refusal to send) and counted as refused.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{Settings, notice_refusal, release_memory};

const SCRATCH: usize = 64 * 1024;

struct Session {
    upstream: UdpSocket,
    last_activity: Cell<Instant>,
}

/// What the receiving loop and the sessions' tasks share (all on the proxy thread).
struct Shared {
    socket: UdpSocket,
    settings: Settings,
    sessions: RefCell<HashMap<SocketAddr, Rc<Session>>>,
    scratch: RefCell<Vec<u8>>,
}

/// Receives until `stopped`: each datagram goes out on its client's session.
pub(super) async fn serve(
    socket: std::net::UdpSocket,
    settings: Settings,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    ready: &std::sync::mpsc::Sender<io::Result<()>>,
) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    let socket = UdpSocket::from_std(socket)?;
    let _ = ready.send(Ok(()));
    let shared = Rc::new(Shared {
        socket,
        settings,
        sessions: RefCell::default(),
        scratch: RefCell::new(vec![0u8; SCRATCH]),
    });
    let mut last_notice = None;
    loop {
        let received = poll_fn(|cx| {
            if Pin::new(&mut stopped).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            match shared.socket.poll_recv_ready(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(result) => Poll::Ready(Some(result)),
            }
        })
        .await;
        match received {
            None => return Ok(()),
            Some(Err(_)) => continue,
            Some(Ok(())) => {}
        }
        let mut buffer = shared.scratch.borrow_mut();
        let (len, client) = match shared.socket.try_recv_from(&mut buffer) {
            Ok(received) => received,
            // Spurious readiness, or an ICMP error for an earlier reply: the next one may do.
            Err(_) => continue,
        };
        let existing = shared.sessions.borrow().get(&client).cloned();
        let session = match existing {
            Some(session) => session,
            None => {
                if shared.sessions.borrow().len() >= shared.settings.max_open {
                    notice_refusal(&shared.settings, &mut last_notice);
                    continue;
                }
                let Ok(session) = open_session(shared.settings.target) else {
                    continue; // the datagram is lost, as UDP allows
                };
                let session = Rc::new(session);
                shared
                    .sessions
                    .borrow_mut()
                    .insert(client, Rc::clone(&session));
                let counters = &shared.settings.counters;
                counters.open.fetch_add(1, Ordering::Relaxed);
                counters.accepted.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_local(replies(Rc::clone(&shared), Rc::clone(&session), client));
                session
            }
        };
        session.last_activity.set(Instant::now());
        // Sent as is, not through tokio's readiness (a new socket has none recorded yet): a
        // full send buffer loses the datagram, as UDP may.
        let _ = socket2::SockRef::from(&session.upstream).send(&buffer[..len]);
    }
}

/// A socket on this thread (so in the target's namespace), connected to the target.
fn open_session(target: SocketAddr) -> io::Result<Session> {
    let any: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let upstream = std::net::UdpSocket::bind(any)?;
    upstream.connect(target)?;
    upstream.set_nonblocking(true)?;
    Ok(Session {
        upstream: UdpSocket::from_std(upstream)?,
        last_activity: Cell::new(Instant::now()),
    })
}

/// Sends the target's replies to `client` from the published address until the session has
/// been idle for the idle timeout; then ends it.
async fn replies(shared: Rc<Shared>, session: Rc<Session>, client: SocketAddr) {
    let idle = shared.settings.idle;
    let mut timer = Box::pin(tokio::time::sleep_until(session.last_activity.get() + idle));
    poll_fn(|cx| {
        loop {
            match session.upstream.poll_recv_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let mut buffer = shared.scratch.borrow_mut();
                    // An error is "would block", or an ICMP report (nobody listens yet):
                    // the next datagram may do.
                    if let Ok(len) = session.upstream.try_recv(&mut buffer) {
                        let _ = socket2::SockRef::from(&shared.socket)
                            .send_to(&buffer[..len], &client.into());
                        session.last_activity.set(Instant::now());
                    }
                    continue;
                }
                Poll::Ready(Err(_)) | Poll::Pending => {}
            }
            let deadline = session.last_activity.get() + idle;
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) if Instant::now() >= deadline => return Poll::Ready(()),
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    let mut sessions = shared.sessions.borrow_mut();
    sessions.remove(&client);
    if sessions.is_empty() {
        *sessions = HashMap::new(); // its table is freed too
    }
    drop(sessions);
    let counters = &shared.settings.counters;
    counters.timed_out.fetch_add(1, Ordering::Relaxed);
    if counters.open.fetch_sub(1, Ordering::Relaxed) == 1 {
        release_memory();
    }
}
