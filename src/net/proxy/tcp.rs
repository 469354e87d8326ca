//! TCP: the accept loop and the relay of one connection, as tasks of the proxy thread.
//!
//! A relay is a small state machine per direction — read, or write what the other side
//! could not take yet, or done — polled on socket readiness. Reads go into one copy buffer
//! shared by every task of the thread (the thread runs one task at a time); a connection
//! owns a buffer only while its receiver is slower than its sender, so an idle connection
//! costs its two sockets and its task.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::{Instant, Sleep};

use super::{Settings, notice_refusal, release_memory};

/// The copy buffer every relay of the thread reads into.
type Scratch = Rc<RefCell<Vec<u8>>>;
const SCRATCH: usize = 64 * 1024;
/// Transfers a relay makes before it lets the thread's other tasks run.
const BUDGET: usize = 32;
/// How long the accept loop rests when the process is out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts until `stopped`, a task per connection.
pub(super) async fn serve(
    listener: std::net::TcpListener,
    settings: super::Settings,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    ready: &std::sync::mpsc::Sender<io::Result<()>>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let _ = ready.send(Ok(()));
    let settings = Rc::new(settings);
    let scratch: Scratch = Rc::new(RefCell::new(vec![0u8; SCRATCH]));
    let mut last_notice = None;
    loop {
        let accepted = poll_fn(|cx| {
            if Pin::new(&mut stopped).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            listener.poll_accept(cx).map(Some)
        })
        .await;
        let client = match accepted {
            None => return Ok(()),
            Some(Ok((client, _))) => client,
            Some(Err(err)) if is_out_of_descriptors(&err) => {
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
            // The client gave up before we got to it, or another per-connection error.
            Some(Err(_)) => continue,
        };
        let counters = &settings.counters;
        if counters.open.load(Ordering::Relaxed) >= settings.max_open {
            // A reset, at once: the client knows, instead of hanging in a backlog.
            notice_refusal(&settings, &mut last_notice);
            let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
            drop(client);
            continue;
        }
        counters.open.fetch_add(1, Ordering::Relaxed);
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let (settings, scratch) = (Rc::clone(&settings), Rc::clone(&scratch));
        tokio::task::spawn_local(async move {
            let idle = connection(client, &settings, &scratch).await;
            let counters = &settings.counters;
            if idle {
                counters.timed_out.fetch_add(1, Ordering::Relaxed);
            }
            if counters.open.fetch_sub(1, Ordering::Relaxed) == 1 {
                release_memory();
            }
        });
    }
}

fn is_out_of_descriptors(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Connects to the target for `client` and relays until both sides are done, an error, or
/// the idle timeout; true when it was the idle timeout.
async fn connection(client: TcpStream, settings: &Settings, scratch: &Scratch) -> bool {
    let Ok(Ok(upstream)) =
        tokio::time::timeout(settings.options.connect_timeout, connect(settings.target)).await
    else {
        return false; // dropping the client closes it: the target is not there
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    Relay::new(client, upstream, settings.idle)
        .run(scratch)
        .await
}

/// A socket made on this thread, so in the target's namespace.
async fn connect(target: SocketAddr) -> io::Result<TcpStream> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.connect(target).await
}

/// One direction of a relay.
#[derive(Debug, PartialEq, Eq)]
enum Half {
    Reading,
    /// Bytes the receiver has not taken yet, and how many of them it has.
    Writing(Vec<u8>, usize),
    Done,
}

struct Relay {
    client: TcpStream,
    upstream: TcpStream,
    /// Client to upstream, upstream to client.
    halves: [Half; 2],
    idle: Duration,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Relay {
    fn new(client: TcpStream, upstream: TcpStream, idle: Duration) -> Relay {
        let now = Instant::now();
        Relay {
            client,
            upstream,
            halves: [Half::Reading, Half::Reading],
            idle,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    /// Relays until both directions are done (true: closed for being idle).
    async fn run(mut self, scratch: &Scratch) -> bool {
        poll_fn(|cx| self.poll(cx, scratch)).await
    }

    fn poll(&mut self, cx: &mut Context<'_>, scratch: &Scratch) -> Poll<bool> {
        let mut exhausted = false;
        for index in 0..2 {
            let (from, to) = if index == 0 {
                (&self.client, &self.upstream)
            } else {
                (&self.upstream, &self.client)
            };
            // Each direction its own share, so a busy one cannot starve the other.
            let mut budget = BUDGET / 2;
            match drive(&mut self.halves[index], from, to, scratch, cx, &mut budget) {
                Ok(moved) => {
                    if moved {
                        self.last_activity = Instant::now();
                    }
                }
                // Either side failing ends the connection; dropping closes both.
                Err(_) => return Poll::Ready(false),
            }
            exhausted |= budget == 0;
        }
        if self.halves.iter().all(|h| *h == Half::Done) {
            return Poll::Ready(false);
        }
        if exhausted {
            // More to do: let the thread's other connections have a turn first.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // The timer is armed for the last activity it knew of; move it on if there was more.
        loop {
            let deadline = self.last_activity + self.idle;
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) if Instant::now() >= self.last_activity + self.idle => {
                    return Poll::Ready(true);
                }
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Moves bytes in one direction as far as the sockets allow now; Ok(true) if any moved
/// (or the direction ended).
fn drive(
    half: &mut Half,
    from: &TcpStream,
    to: &TcpStream,
    scratch: &Scratch,
    cx: &mut Context<'_>,
    budget: &mut usize,
) -> io::Result<bool> {
    let mut moved = false;
    while *budget > 0 {
        match half {
            Half::Done => break,
            Half::Writing(pending, at) => {
                match to.poll_write_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(result) => result?,
                }
                match to.try_write(&pending[*at..]) {
                    Ok(written) => {
                        *budget -= 1;
                        moved = true;
                        *at += written;
                        if *at == pending.len() {
                            *half = Half::Reading; // the buffer is freed
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Err(err),
                }
            }
            Half::Reading => {
                match from.poll_read_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(result) => result?,
                }
                let mut buffer = scratch.borrow_mut();
                match from.try_read(&mut buffer) {
                    Ok(0) => {
                        // The sender is done: pass its half-close on, keep the other way.
                        let _ = socket2::SockRef::from(to).shutdown(Shutdown::Write);
                        *half = Half::Done;
                        moved = true;
                    }
                    Ok(read) => {
                        *budget -= 1;
                        moved = true;
                        // Straight to the socket: a connection just accepted has no write
                        // readiness recorded by tokio yet, and would take a detour.
                        let sent = socket2::SockRef::from(to)
                            .send_with_flags(&buffer[..read], libc::MSG_NOSIGNAL);
                        let written = match sent {
                            Ok(written) => written,
                            Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
                            Err(err) => return Err(err),
                        };
                        if written < read {
                            *half = Half::Writing(buffer[written..read].to_vec(), 0);
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }
    Ok(moved)
}
