//! ICMP echo ("ping") from the calling thread's network namespace, over a raw socket: kiln
//! is root there, so images need no ping binary and no ping_group_range setting.
//!
//! It sends and counts; it does not resolve names (the caller passes an address) and does
//! not judge the result. A reply's time is the kernel's (`SO_TIMESTAMPNS`): when it reached
//! the socket, not when this thread got to read it, so a busy machine does not lengthen
//! round trips.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant, SystemTime};

use socket2::{Domain, Protocol, Socket, Type};

/// What `count` echo requests got back.
#[derive(Debug, Clone, PartialEq)]
pub struct PingResult {
    pub target: Ipv4Addr,
    pub sent: u32,
    /// Round-trip times of the replies, in the order they came.
    pub rtts: Vec<Duration>,
}

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;

/// The payload of every request (replies echo it back).
const PAYLOAD: &[u8; 16] = b"kiln ping probe!";

/// Sequence numbers are 16 bits: no more requests than that in one call.
pub const MAX_COUNT: u32 = u16::MAX as u32;

/// Distinguishes concurrent pings of this process (each gets its own echo id).
static NEXT_TAG: AtomicU16 = AtomicU16::new(0);

/// Sends `count` (at most [`MAX_COUNT`]) echo requests `interval` apart and waits up to
/// `timeout` after the last one for replies. IPv4 only.
///
/// An `Err` means nothing could be sent or received at all: "network unreachable" when the
/// namespace has no route to `target` (and no reply came back).
pub fn ping(
    target: Ipv4Addr,
    count: u32,
    interval: Duration,
    timeout: Duration,
) -> io::Result<PingResult> {
    let count = count.min(MAX_COUNT);
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
    let address = SocketAddr::V4(SocketAddrV4::new(target, 0)).into();
    // A raw ICMP socket sees every ICMP packet of the namespace: ours carry this id.
    let id = (std::process::id() as u16) ^ NEXT_TAG.fetch_add(0x9e37, Ordering::Relaxed);
    let mut sent_at: Vec<Option<(Instant, SystemTime)>> = vec![None; count as usize];
    // Kernel timestamps on replies; without them, the time the read returns.
    let stamped = set_timestamps(&socket).is_ok();
    let mut result = PingResult {
        target,
        sent: 0,
        rtts: Vec::new(),
    };
    // The last "unreachable" a send met: the answer when no reply ever comes.
    let mut unreachable: Option<io::Error> = None;
    let mut next_send = Instant::now();
    let mut last_deadline = Instant::now() + timeout;
    let mut buffer = [0u8; 1500];
    loop {
        let now = Instant::now();
        if result.sent < count && now >= next_send {
            let seq = result.sent as u16;
            let packet = echo_request(id, seq, PAYLOAD);
            // Stamped before the send: the request may be on its way (and a faster thread
            // may have taken it further) before `send_to` returns here.
            let stamp = (Instant::now(), SystemTime::now());
            match socket.send_to(&packet, &address) {
                Ok(_) => sent_at[usize::from(seq)] = Some(stamp),
                // A lost request, like one dropped on the way: later ones may still pass.
                Err(err) if is_unreachable(&err) => unreachable = Some(err),
                Err(err) => return Err(err),
            }
            result.sent += 1;
            next_send = now + interval;
            last_deadline = Instant::now() + timeout;
        }
        let all_sent = result.sent == count;
        if result.rtts.len() as u32 == count || (all_sent && now >= last_deadline) {
            break;
        }
        let wait_until = if all_sent { last_deadline } else { next_send };
        let wait = wait_until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait))?;
        let received = if stamped {
            recv_stamped(&socket, &mut buffer)
        } else {
            (&socket).read(&mut buffer).map(|n| (n, None))
        };
        match received {
            Ok((n, arrived)) => {
                if let Some(reply_seq) = echo_reply(&buffer[..n], id, target)
                    && let Some((at, sent)) = sent_at
                        .get_mut(usize::from(reply_seq))
                        .and_then(Option::take)
                {
                    let rtt = arrived
                        .and_then(|arrived| arrived.duration_since(sent).ok())
                        .unwrap_or_else(|| at.elapsed());
                    result.rtts.push(rtt);
                }
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(err) if is_unreachable(&err) => unreachable = Some(err),
            Err(err) => return Err(err),
        }
    }
    match unreachable {
        Some(err) if result.rtts.is_empty() => Err(err),
        _ => Ok(result),
    }
}

/// Asks the kernel to stamp every packet with its arrival time (`SO_TIMESTAMPNS`).
fn set_timestamps(socket: &Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid c_int of the given length for a socket option we own.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one packet and the kernel's stamp of its arrival (`SCM_TIMESTAMPNS`).
fn recv_stamped(socket: &Socket, buffer: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // Room for one timespec control message, aligned as cmsghdr wants.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; all zeroes is valid before the fields are set.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &raw mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `message` points at a valid iovec over `buffer` and at `control`, both alive
    // for the call.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut message, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut arrived = None;
    // SAFETY: CMSG_FIRSTHDR/NXTHDR walk the control buffer the kernel filled, within
    // `msg_controllen`; a SCM_TIMESTAMPNS message holds one timespec.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&raw const message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET
                && (*header).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let stamp: libc::timespec =
                    std::ptr::read_unaligned(libc::CMSG_DATA(header).cast());
                arrived = Some(
                    SystemTime::UNIX_EPOCH
                        + Duration::new(stamp.tv_sec as u64, stamp.tv_nsec as u32),
                );
            }
            header = libc::CMSG_NXTHDR(&raw const message, header);
        }
    }
    Ok((n as usize, arrived))
}

fn is_unreachable(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable
    )
}

/// An ICMP echo request with its checksum.
pub(crate) fn echo_request(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![ECHO_REQUEST, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(payload);
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// The sequence number of an echo reply to us from `from` (an IPv4 raw socket hands over
/// the IP header too), `None` for any other packet or a corrupt one.
pub(crate) fn echo_reply(packet: &[u8], id: u16, from: Ipv4Addr) -> Option<u16> {
    let first = *packet.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 || packet.len() < header_len + 8 {
        return None;
    }
    let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let icmp = &packet[header_len..];
    if source != from
        || icmp[0] != ECHO_REPLY
        || icmp[1] != 0
        || u16::from_be_bytes([icmp[4], icmp[5]]) != id
        || checksum(icmp) != 0
    {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// The Internet checksum (RFC 1071); over a packet that carries its checksum it is 0.
pub(crate) fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in bytes.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
        // Fold as we go: no overflow however long the packet.
        sum = (sum & 0xffff) + (sum >> 16);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The address to ping, when `target` is already an IPv4 address.
pub fn literal_ipv4(target: &str) -> Option<Ipv4Addr> {
    match target.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}
