//! A port: one interface of the kiln host namespace that the engine reads frames from and
//! writes frames to, through two AF_PACKET sockets — one bound for receiving (every frame
//! the interface receives, none it sends: `PACKET_IGNORE_OUTGOING`), one for sending — both
//! with `PACKET_VNET_HDR`, so frames carry their offload state (a 64 KiB TCP segment moves
//! as one frame, a checksum left to "hardware" stays so).
//!
//! Why not a `TPACKET_V3` ring: a V3 ring hands frames over a block at a time, when the
//! block is full or its timer (at least a millisecond) expires — a delay on every frame of
//! a link meant to add none. Plain `recv` per frame costs a system call, which at 64 KiB a
//! frame is ~4000 calls per second for 2 Gbit/s.
//!
//! The sockets are made in the calling thread's network namespace (the daemon runs in
//! the kiln host namespace). This module moves bytes; it does not decide anything.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The largest frame a port receives whole: 64 KiB of IP (segmentation offload), the
/// Ethernet header, the virtio-net header and some room for VLAN tags.
pub const MAX_FRAME: usize = 65_536 + 14 + 10 + 16;

const ETH_P_ALL: u16 = 0x0003;
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// Socket buffers: enough for a burst of large frames while a thread is busy.
const BUFFER: libc::c_int = 8 << 20;

/// The two sockets of one interface.
#[derive(Debug)]
pub struct Port {
    pub name: String,
    pub ifindex: i32,
    rx: OwnedFd,
    tx: OwnedFd,
}

/// What one `recv` got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A frame of this many bytes (virtio-net header included) is in the buffer.
    Frame(usize),
    /// A frame larger than the buffer: dropped.
    Truncated,
    /// Nothing is waiting.
    Empty,
}

impl Port {
    /// Opens the interface `name` of the calling thread's namespace.
    pub fn open(name: &str) -> io::Result<Port> {
        let ifindex = ifindex(name)?;
        let rx = packet_socket()?;
        // Bound with ETH_P_ALL only now: the socket never sees another interface's frames.
        bind(&rx, ifindex, ETH_P_ALL)?;
        setsockopt(&rx, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)?;
        setsockopt(&rx, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, BUFFER)?;
        let tx = packet_socket()?;
        // Protocol 0: a socket that only sends.
        bind(&tx, ifindex, 0)?;
        setsockopt(&tx, libc::SOL_PACKET, PACKET_QDISC_BYPASS, 1)?;
        setsockopt(&tx, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, BUFFER)?;
        Ok(Port {
            name: name.to_string(),
            ifindex,
            rx,
            tx,
        })
    }

    /// The receiving socket, for polling.
    pub fn rx_fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }

    /// Receives one frame without waiting.
    pub fn recv(&self, buffer: &mut [u8]) -> io::Result<Received> {
        // SAFETY: `buffer` is valid for `buffer.len()` writable bytes; the socket is ours.
        let n = unsafe {
            libc::recv(
                self.rx.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN) => Ok(Received::Empty),
                _ => Err(err),
            };
        }
        let n = n as usize;
        Ok(if n > buffer.len() {
            Received::Truncated
        } else {
            Received::Frame(n)
        })
    }

    /// Sends one frame (virtio-net header first), waiting for room in the socket buffer.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // The frame's own EtherType tells the kernel its protocol.
        let protocol =
            match frame.get(super::frame::VNET_HDR_LEN + 12..super::frame::VNET_HDR_LEN + 14) {
                Some(t) => u16::from_be_bytes([t[0], t[1]]),
                None => return Ok(()),
            };
        let address = sockaddr(self.ifindex, protocol);
        loop {
            // SAFETY: `frame` is valid for reading `frame.len()` bytes and `address` is a
            // valid sockaddr_ll of the size given.
            let n = unsafe {
                libc::sendto(
                    self.tx.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&raw const address).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
                _ => return Err(err),
            }
        }
    }
}

/// The index of interface `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> io::Result<i32> {
    let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index as i32)
    }
}

fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Before binding: every frame the socket ever sees carries the header.
    setsockopt(&fd, libc::SOL_PACKET, PACKET_VNET_HDR, 1)?;
    Ok(fd)
}

fn sockaddr(ifindex: i32, protocol: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = protocol.to_be();
    address.sll_ifindex = ifindex;
    address
}

fn bind(fd: &OwnedFd, ifindex: i32, protocol: u16) -> io::Result<()> {
    let address = sockaddr(ifindex, protocol);
    // SAFETY: `address` is a valid sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const address).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn setsockopt(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the option's length.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
