//! DNS messages, just enough of RFC 1035 for a stub resolver's questions: parse a query
//! (header and its one question) and build the answer. Every read is bounds-checked; no
//! input makes it panic.
//!
//! It does not decide what a name means: [`respond`] asks a lookup function.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// What the lookup says about a name, for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The client may not ask this server (it is not a member of the network).
    Refused,
    /// No such name.
    NxDomain,
    /// The name's IPv4 addresses (empty: the name exists but has none).
    Addresses(Vec<Ipv4Addr>),
    /// Not a name of kiln's, on a network that forwards (`egress`): the machine's resolvers
    /// answer. [`respond`] answers SERVFAIL for it, which the server sends only when the
    /// forwarding fails.
    Forward,
}

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

/// Response codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
}

/// Seconds a client may cache an answer: none, as members come and go.
pub const TTL: u32 = 0;

/// Classic DNS over UDP without EDNS: answers beyond this are left out.
pub const MAX_UDP_RESPONSE: usize = 512;

const HEADER_LEN: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_RD: u16 = 0x0100;
const OPCODE_MASK: u16 = 0x7800;
/// Bytes in a name on the wire, length octets included (RFC 1035 §2.3.4).
const MAX_NAME_LEN: usize = 255;
/// Compression pointers followed before a name is called a loop.
const MAX_POINTERS: usize = 16;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    /// The header's flags as sent (opcode and RD are echoed).
    pub flags: u16,
    /// Lowercase, dot-separated, without the trailing dot; bytes that cannot be in a host
    /// name are escaped as `\DDD`, so they never match one.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// The question's name uncompressed as it came (its case kept: some resolvers check it).
    wire_name: Vec<u8>,
}

/// Why a packet is not a query this server answers normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadQuery {
    /// Shorter than a header, or a response: dropped without an answer.
    Ignore,
    /// An opcode other than QUERY: answered NOTIMP.
    NotImplemented { id: u16, flags: u16 },
    /// A header but no single well-formed question: answered FORMERR.
    Malformed { id: u16, flags: u16 },
}

fn u16_at(packet: &[u8], at: usize) -> Option<u16> {
    let bytes = packet.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Parses a query: its header and exactly one question. Other sections (an EDNS OPT record,
/// say) are ignored.
pub fn parse_query(packet: &[u8]) -> Result<Query, BadQuery> {
    let (Some(id), Some(flags), Some(qdcount)) =
        (u16_at(packet, 0), u16_at(packet, 2), u16_at(packet, 4))
    else {
        return Err(BadQuery::Ignore);
    };
    if packet.len() < HEADER_LEN || flags & FLAG_QR != 0 {
        return Err(BadQuery::Ignore);
    }
    if flags & OPCODE_MASK != 0 {
        return Err(BadQuery::NotImplemented { id, flags });
    }
    let malformed = BadQuery::Malformed { id, flags };
    if qdcount != 1 {
        return Err(malformed);
    }
    let (wire_name, end) = read_name(packet, HEADER_LEN).ok_or(malformed.clone())?;
    let (Some(qtype), Some(qclass)) = (u16_at(packet, end), u16_at(packet, end + 2)) else {
        return Err(malformed);
    };
    Ok(Query {
        id,
        flags,
        name: presentation(&wire_name),
        qtype,
        qclass,
        wire_name,
    })
}

/// Reads the name at `start`, following compression pointers (backwards only, at most
/// [`MAX_POINTERS`]); returns it uncompressed and where the bytes after it begin.
fn read_name(packet: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    let mut name = Vec::new();
    let mut at = start;
    let mut end = None;
    let mut pointers = 0;
    loop {
        let len = *packet.get(at)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                name.push(0);
                let end = end.unwrap_or(at + 1);
                return (name.len() <= MAX_NAME_LEN).then_some((name, end));
            }
            0x00 => {
                let label = packet.get(at + 1..at + 1 + usize::from(len))?;
                name.push(len);
                name.extend_from_slice(label);
                if name.len() >= MAX_NAME_LEN {
                    return None;
                }
                at += 1 + usize::from(len);
            }
            0xc0 => {
                let target = usize::from(u16_at(packet, at)? & 0x3fff);
                pointers += 1;
                if pointers > MAX_POINTERS || target >= at {
                    return None;
                }
                end.get_or_insert(at + 2);
                at = target;
            }
            _ => return None, // 0x40 and 0x80: extended label types, long obsolete
        }
    }
}

/// The dotted, lowercase form of an uncompressed wire name.
fn presentation(wire: &[u8]) -> String {
    let mut text = String::new();
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            break;
        }
        if !text.is_empty() {
            text.push('.');
        }
        for &byte in wire.get(at + 1..at + 1 + usize::from(len)).unwrap_or(&[]) {
            let byte = byte.to_ascii_lowercase();
            if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
                text.push(char::from(byte));
            } else {
                let _ = write!(text, "\\{byte:03}");
            }
        }
        at += 1 + usize::from(len);
    }
    text
}

fn header(id: u16, query_flags: u16, rcode: Rcode, qdcount: u16, ancount: u16) -> Vec<u8> {
    let flags = FLAG_QR | FLAG_AA | (query_flags & (OPCODE_MASK | FLAG_RD)) | rcode as u16;
    let mut out = Vec::with_capacity(MAX_UDP_RESPONSE);
    for field in [id, flags, qdcount, ancount, 0, 0] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out
}

/// An answer to `query` with `rcode` and A records for `addresses`, as many as fit in
/// [`MAX_UDP_RESPONSE`] bytes.
pub fn answer(query: &Query, rcode: Rcode, addresses: &[Ipv4Addr]) -> Vec<u8> {
    const RECORD_LEN: usize = 16;
    let question_len = query.wire_name.len() + 4;
    let room = MAX_UDP_RESPONSE.saturating_sub(HEADER_LEN + question_len) / RECORD_LEN;
    let addresses = &addresses[..addresses.len().min(room)];
    let count = u16::try_from(addresses.len()).unwrap_or(0);
    let mut out = header(query.id, query.flags, rcode, 1, count);
    out.extend_from_slice(&query.wire_name);
    out.extend_from_slice(&query.qtype.to_be_bytes());
    out.extend_from_slice(&query.qclass.to_be_bytes());
    for address in addresses {
        out.extend_from_slice(&[0xc0, HEADER_LEN as u8]); // the question's name
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&address.octets());
    }
    out
}

/// The answer to `packet`, or `None` when it gets none (not a query). `lookup` is asked
/// about the question's name; `rotation` turns the order of several addresses, so
/// successive answers spread clients over replicas.
pub fn respond(
    packet: &[u8],
    lookup: impl FnOnce(&str) -> Lookup,
    rotation: usize,
) -> Option<Vec<u8>> {
    let query = match parse_query(packet) {
        Ok(query) => query,
        Err(BadQuery::Ignore) => return None,
        Err(BadQuery::NotImplemented { id, flags }) => {
            return Some(header(id, flags, Rcode::NotImp, 0, 0));
        }
        Err(BadQuery::Malformed { id, flags }) => {
            return Some(header(id, flags, Rcode::FormErr, 0, 0));
        }
    };
    if !matches!(query.qclass, CLASS_IN | CLASS_ANY) {
        return Some(answer(&query, Rcode::Refused, &[]));
    }
    Some(match lookup(&query.name) {
        Lookup::Refused => answer(&query, Rcode::Refused, &[]),
        Lookup::NxDomain => answer(&query, Rcode::NxDomain, &[]),
        Lookup::Forward => answer(&query, Rcode::ServFail, &[]),
        Lookup::Addresses(mut addresses) => {
            if !matches!(query.qtype, TYPE_A | TYPE_ANY) {
                // AAAA and the rest: the name exists, with no such records (NODATA).
                addresses.clear();
            }
            if !addresses.is_empty() {
                let turn = rotation % addresses.len();
                addresses.rotate_left(turn);
            }
            answer(&query, Rcode::NoError, &addresses)
        }
    })
}

/// A query for `name` (dotted, trailing dot optional) of type `qtype`: for tests and probes.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for field in [id, FLAG_RD, 1, 0, 0, 0] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// A response as a client sees it: for tests and probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    pub rcode: u8,
    pub authoritative: bool,
    /// The A records of the answer section, in order.
    pub addresses: Vec<Ipv4Addr>,
    /// Every record of the answer section, A or not.
    pub answer_count: u16,
}

/// Parses a response's header and the A records of its answer section.
pub fn parse_response(packet: &[u8]) -> Option<Response> {
    let id = u16_at(packet, 0)?;
    let flags = u16_at(packet, 2)?;
    let qdcount = u16_at(packet, 4)?;
    let answer_count = u16_at(packet, 6)?;
    if flags & FLAG_QR == 0 {
        return None;
    }
    let mut at = HEADER_LEN;
    for _ in 0..qdcount {
        at = read_name(packet, at)?.1 + 4;
    }
    let mut addresses = Vec::new();
    for _ in 0..answer_count {
        at = read_name(packet, at)?.1;
        let rtype = u16_at(packet, at)?;
        let rdlength = usize::from(u16_at(packet, at + 8)?);
        let rdata = packet.get(at + 10..at + 10 + rdlength)?;
        if rtype == TYPE_A && rdlength == 4 {
            addresses.push(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]));
        }
        at += 10 + rdlength;
    }
    Some(Response {
        id,
        rcode: (flags & 0x000f) as u8,
        authoritative: flags & FLAG_AA != 0,
        addresses,
        answer_count,
    })
}
