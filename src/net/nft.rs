//! A small nf_tables client over netlink (`NETLINK_NETFILTER`), bound to one network
//! namespace: tables, base chains on a device's ingress hook, rules made of a handful of
//! expressions (meta, payload, cmp, counter, verdict), and the rules' counters read back.
//!
//! Hand-written on purpose, and kept to what anti-spoofing needs: the pure-Rust crate for
//! nftables (`rustables`) is GPL-3.0, which kiln's licence cannot take; `nftnl`/`mnl`
//! wrap the C libraries libnftnl and libmnl (a build and run-time dependency on every
//! machine); the `nftables` crate runs the `nft` binary, a process and a ruleset parse per
//! container start, several milliseconds where an attachment has a budget of five. The wire
//! format is stable kernel ABI (`linux/netfilter/nf_tables.h`), and `nft list ruleset`
//! reads back what this module writes (a root test checks it).
//!
//! Changes go in batches, which the kernel applies atomically: all of a batch or nothing.
//! Like [`super::Netlink`], the socket is made by a thread inside the namespace and talks
//! to that namespace for its whole life. It does not decide what to filter: `antispoof`
//! does.

use std::io::{self, Read};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::NetError;
use super::netns::{NetNs, run_in};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
/// `NFTNL_UDATA_RULE_COMMENT`: how nft stores a rule's comment in its user data.
const UDATA_RULE_COMMENT: u8 = 0;

/// `NF_NETDEV_INGRESS`.
const HOOK_INGRESS: u32 = 0;
/// `NF_INET_POST_ROUTING`.
const HOOK_POSTROUTING: u32 = 4;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
/// The verdict register and the first 16-byte data register.
const REG_VERDICT: u32 = 0;
pub(crate) const REG_1: u32 = 1;

/// Address families of tables (`NFPROTO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Ipv4 = 2,
    Netdev = 5,
}

/// Where a payload expression reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// The link-layer (Ethernet) header. A VLAN tag the kernel moved out of the frame is
    /// put back for the read, so offsets are those of the frame as it was sent.
    Link = 0,
    Network = 1,
    Transport = 2,
}

/// `NFT_META_*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaKey {
    /// The layer-4 protocol, found past any IPv6 extension headers.
    L4Proto = 16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq = 0,
    Neq = 1,
}

/// One expression of a rule; a rule's expressions run in order and stop at the first
/// comparison that fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Meta {
        key: MetaKey,
    },
    /// Loads `len` bytes at `offset` of `base` into register 1.
    Payload {
        base: Base,
        offset: u32,
        len: u32,
    },
    /// Compares register 1 with `data`.
    Cmp {
        op: CmpOp,
        data: Vec<u8>,
    },
    Counter,
    Drop,
    /// Source NAT to the address of the interface the packet leaves by (`masquerade`).
    Masquerade,
}

/// A rule: its expressions and a comment (`nft list` shows it; counters are found by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) comment: String,
    pub(crate) exprs: Vec<Expr>,
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    /// Creates the table unless it exists.
    AddTable { family: Family, table: &'a str },
    /// Creates a base chain on `device`'s ingress hook, policy accept; fails with EEXIST
    /// if it exists.
    AddIngressChain {
        family: Family,
        table: &'a str,
        chain: &'a str,
        device: &'a str,
        priority: i32,
    },
    /// Creates a NAT base chain on the postrouting hook, policy accept (an `ip` family
    /// table: `type nat hook postrouting`).
    AddPostroutingNatChain {
        family: Family,
        table: &'a str,
        chain: &'a str,
        priority: i32,
    },
    /// Deletes a chain and its rules.
    DelChain {
        family: Family,
        table: &'a str,
        chain: &'a str,
    },
    /// Appends a rule to a chain.
    AddRule {
        family: Family,
        table: &'a str,
        chain: &'a str,
        rule: &'a Rule,
    },
}

/// A rule's counter as read back: its comment, packets and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counted {
    pub(crate) comment: String,
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
}

/// A netlink socket talking nf_tables to one namespace.
pub(crate) struct Nft {
    socket: Socket,
    seq: u32,
}

impl Nft {
    /// Opens a socket in `ns` (a thread inside the namespace makes it).
    pub(crate) fn open_in(ns: &NetNs) -> Result<Nft, NetError> {
        let socket = run_in(ns, || {
            Socket::new(
                Domain::from(libc::AF_NETLINK),
                Type::RAW.cloexec(),
                Some(Protocol::from(libc::NETLINK_NETFILTER)),
            )
        })?
        .map_err(NetError::Socket)?;
        // A reply that never comes must not hang a container's start.
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(NetError::Socket)?;
        Ok(Nft { socket, seq: 1 })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Applies `ops` as one batch: all of them, or none and the kernel's error.
    pub(crate) fn apply(&mut self, ops: &[Op<'_>]) -> io::Result<()> {
        let mut batch = Vec::new();
        let begin = self.next_seq();
        Message::new(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            begin,
            0,
            NFNL_SUBSYS_NFTABLES,
        )
        .finish_into(&mut batch);
        let mut acks = Vec::new();
        for op in ops {
            let seq = self.next_seq();
            encode(op, seq).finish_into(&mut batch);
            acks.push(seq);
        }
        let end = self.next_seq();
        Message::new(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            end,
            0,
            NFNL_SUBSYS_NFTABLES,
        )
        .finish_into(&mut batch);
        self.socket.send(&batch)?;
        // Every message asked for an ack; the first error is the batch's (it was undone).
        let mut buffer = vec![0u8; 64 * 1024];
        while !acks.is_empty() {
            let len = recv(&self.socket, &mut buffer)?;
            for (kind, seq, payload) in messages(&buffer[..len]) {
                if kind != NLMSG_ERROR {
                    continue;
                }
                let code = payload
                    .get(..4)
                    .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
                acks.retain(|s| *s != seq);
            }
        }
        Ok(())
    }

    /// The counters of every rule of `chain` that has one, in rule order.
    pub(crate) fn counters(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
    ) -> io::Result<Vec<Counted>> {
        let seq = self.next_seq();
        let mut request = Message::new(
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family as u8,
            0,
        );
        request.put_str(NFTA_RULE_TABLE, table);
        request.put_str(NFTA_RULE_CHAIN, chain);
        let mut counted = Vec::new();
        self.dump(request, seq, |attributes| {
            if let Some(rule) = parse_rule_counter(attributes) {
                counted.push(rule);
            }
        })?;
        Ok(counted)
    }

    /// The names of the chains of `table` (none when there is no such table). One dump,
    /// so that a caller removing many chains deletes only those that exist in one batch
    /// (a missing chain would undo the whole batch).
    pub(crate) fn chains(&mut self, family: Family, table: &str) -> io::Result<Vec<String>> {
        let seq = self.next_seq();
        let request = Message::new(
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family as u8,
            0,
        );
        let mut chains = Vec::new();
        self.dump(request, seq, |attributes| {
            if let Some(chain) = parse_chain_of(attributes, table) {
                chains.push(chain);
            }
        })?;
        Ok(chains)
    }

    /// Sends a dump request and hands each reply's attributes (after the nfgenmsg) to
    /// `each` until the kernel says it is done.
    fn dump(&mut self, request: Message, seq: u32, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        let mut out = Vec::new();
        request.finish_into(&mut out);
        self.socket.send(&out)?;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let len = recv(&self.socket, &mut buffer)?;
            for (kind, reply_seq, payload) in messages(&buffer[..len]) {
                if reply_seq != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ => {
                        if let Some(attributes) = payload.get(4..) {
                            each(attributes);
                        }
                    }
                }
            }
        }
    }
}

/// One datagram from the socket.
fn recv(socket: &Socket, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match (&*socket).read(buffer) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The netlink messages of a datagram: (type, sequence number, payload after the header).
fn messages(mut data: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let seq = u32::from_ne_bytes([data[8], data[9], data[10], data[11]]);
        out.push((kind, seq, &data[16..len]));
        data = &data[align(len).min(data.len())..];
    }
    out
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// A netlink message being built: header, nfgenmsg, attributes.
struct Message {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Message {
    fn new(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Message {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        buf.push(family);
        buf.push(0); // NFNETLINK_V0
        buf.extend_from_slice(&res_id.to_be_bytes());
        Message {
            buf,
            nests: Vec::new(),
        }
    }

    fn put(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.buf
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn put_str(&mut self, kind: u16, value: &str) {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.put(kind, &bytes);
    }

    fn put_be32(&mut self, kind: u16, value: u32) {
        self.put(kind, &value.to_be_bytes());
    }

    fn begin(&mut self, kind: u16) {
        self.nests.push(self.buf.len());
        self.put(kind | NLA_F_NESTED, &[]);
    }

    fn end(&mut self) {
        let start = self.nests.pop().expect("a nest was begun");
        let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish_into(mut self, out: &mut Vec<u8>) {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&self.buf);
    }
}

fn nft_message(msg: u16, flags: u16, seq: u32, family: Family) -> Message {
    Message::new(
        (NFNL_SUBSYS_NFTABLES << 8) | msg,
        NLM_F_REQUEST | NLM_F_ACK | flags,
        seq,
        family as u8,
        0,
    )
}

fn encode(op: &Op<'_>, seq: u32) -> Message {
    match *op {
        Op::AddTable { family, table } => {
            let mut m = nft_message(NFT_MSG_NEWTABLE, NLM_F_CREATE, seq, family);
            m.put_str(NFTA_TABLE_NAME, table);
            m
        }
        Op::AddIngressChain {
            family,
            table,
            chain,
            device,
            priority,
        } => {
            let mut m = nft_message(NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, seq, family);
            m.put_str(NFTA_CHAIN_TABLE, table);
            m.put_str(NFTA_CHAIN_NAME, chain);
            m.begin(NFTA_CHAIN_HOOK);
            m.put_be32(NFTA_HOOK_HOOKNUM, HOOK_INGRESS);
            m.put_be32(NFTA_HOOK_PRIORITY, priority as u32);
            m.put_str(NFTA_HOOK_DEV, device);
            m.end();
            m.put_be32(NFTA_CHAIN_POLICY, NF_ACCEPT);
            m.put_str(NFTA_CHAIN_TYPE, "filter");
            m
        }
        Op::AddPostroutingNatChain {
            family,
            table,
            chain,
            priority,
        } => {
            let mut m = nft_message(NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, seq, family);
            m.put_str(NFTA_CHAIN_TABLE, table);
            m.put_str(NFTA_CHAIN_NAME, chain);
            m.begin(NFTA_CHAIN_HOOK);
            m.put_be32(NFTA_HOOK_HOOKNUM, HOOK_POSTROUTING);
            m.put_be32(NFTA_HOOK_PRIORITY, priority as u32);
            m.end();
            m.put_be32(NFTA_CHAIN_POLICY, NF_ACCEPT);
            m.put_str(NFTA_CHAIN_TYPE, "nat");
            m
        }
        Op::DelChain {
            family,
            table,
            chain,
        } => {
            let mut m = nft_message(NFT_MSG_DELCHAIN, 0, seq, family);
            m.put_str(NFTA_CHAIN_TABLE, table);
            m.put_str(NFTA_CHAIN_NAME, chain);
            m
        }
        Op::AddRule {
            family,
            table,
            chain,
            rule,
        } => {
            let mut m = nft_message(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, seq, family);
            m.put_str(NFTA_RULE_TABLE, table);
            m.put_str(NFTA_RULE_CHAIN, chain);
            m.begin(NFTA_RULE_EXPRESSIONS);
            for expr in &rule.exprs {
                encode_expr(&mut m, expr);
            }
            m.end();
            m.put(NFTA_RULE_USERDATA, &comment_udata(&rule.comment));
            m
        }
    }
}

fn encode_expr(m: &mut Message, expr: &Expr) {
    m.begin(NFTA_LIST_ELEM);
    match expr {
        Expr::Meta { key } => {
            m.put_str(NFTA_EXPR_NAME, "meta");
            m.begin(NFTA_EXPR_DATA);
            m.put_be32(NFTA_META_KEY, *key as u32);
            m.put_be32(NFTA_META_DREG, REG_1);
            m.end();
        }
        Expr::Payload { base, offset, len } => {
            m.put_str(NFTA_EXPR_NAME, "payload");
            m.begin(NFTA_EXPR_DATA);
            m.put_be32(NFTA_PAYLOAD_DREG, REG_1);
            m.put_be32(NFTA_PAYLOAD_BASE, *base as u32);
            m.put_be32(NFTA_PAYLOAD_OFFSET, *offset);
            m.put_be32(NFTA_PAYLOAD_LEN, *len);
            m.end();
        }
        Expr::Cmp { op, data } => {
            m.put_str(NFTA_EXPR_NAME, "cmp");
            m.begin(NFTA_EXPR_DATA);
            m.put_be32(NFTA_CMP_SREG, REG_1);
            m.put_be32(NFTA_CMP_OP, *op as u32);
            m.begin(NFTA_CMP_DATA);
            m.put(NFTA_DATA_VALUE, data);
            m.end();
            m.end();
        }
        Expr::Counter => {
            m.put_str(NFTA_EXPR_NAME, "counter");
            m.begin(NFTA_EXPR_DATA);
            m.put(NFTA_COUNTER_BYTES, &0u64.to_be_bytes());
            m.put(NFTA_COUNTER_PACKETS, &0u64.to_be_bytes());
            m.end();
        }
        Expr::Drop => {
            m.put_str(NFTA_EXPR_NAME, "immediate");
            m.begin(NFTA_EXPR_DATA);
            m.put_be32(NFTA_IMMEDIATE_DREG, REG_VERDICT);
            m.begin(NFTA_IMMEDIATE_DATA);
            m.begin(NFTA_DATA_VERDICT);
            m.put_be32(NFTA_VERDICT_CODE, NF_DROP);
            m.end();
            m.end();
            m.end();
        }
        Expr::Masquerade => {
            // No attributes: no port range, no flags.
            m.put_str(NFTA_EXPR_NAME, "masq");
        }
    }
    m.end();
}

/// A comment as nft keeps it: a TLV (type, length, text with its NUL).
fn comment_udata(comment: &str) -> Vec<u8> {
    let text = &comment.as_bytes()[..comment.len().min(127)];
    let mut out = vec![UDATA_RULE_COMMENT, (text.len() + 1) as u8];
    out.extend_from_slice(text);
    out.push(0);
    out
}

fn comment_from_udata(udata: &[u8]) -> Option<String> {
    let mut rest = udata;
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], usize::from(rest[1]));
        let value = rest.get(2..2 + len)?;
        if kind == UDATA_RULE_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        rest = &rest[2 + len..];
    }
    None
}

/// The attributes of a block: (type without flags, payload).
fn attributes(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([data[0], data[1]]));
        if len < 4 || len > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes([data[2], data[3]]) & !NLA_F_NESTED & 0x3fff;
        out.push((kind, &data[4..len]));
        data = &data[align(len).min(data.len())..];
    }
    out
}

fn be64(bytes: &[u8]) -> u64 {
    bytes
        .get(..8)
        .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
}

/// The comment and counter of a rule message's attributes, if it has both.
fn parse_rule_counter(data: &[u8]) -> Option<Counted> {
    let attrs = attributes(data);
    let comment = attrs
        .iter()
        .find(|(k, _)| *k == NFTA_RULE_USERDATA)
        .and_then(|(_, v)| comment_from_udata(v))?;
    let (_, expressions) = attrs.iter().find(|(k, _)| *k == NFTA_RULE_EXPRESSIONS)?;
    for (_, element) in attributes(expressions) {
        let fields = attributes(element);
        let name = fields.iter().find(|(k, _)| *k == NFTA_EXPR_NAME)?.1;
        if name.strip_suffix(&[0]).unwrap_or(name) != b"counter" {
            continue;
        }
        let (_, counter) = fields.iter().find(|(k, _)| *k == NFTA_EXPR_DATA)?;
        let counter = attributes(counter);
        let get = |kind| {
            counter
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(0, |(_, v)| be64(v))
        };
        return Some(Counted {
            comment,
            packets: get(NFTA_COUNTER_PACKETS),
            bytes: get(NFTA_COUNTER_BYTES),
        });
    }
    None
}

/// The chain's name, if a chain message's attributes say it belongs to `table`.
fn parse_chain_of(data: &[u8], table: &str) -> Option<String> {
    let attrs = attributes(data);
    let text = |kind| {
        attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| {
            let v = v.strip_suffix(&[0]).unwrap_or(v);
            String::from_utf8_lossy(v).into_owned()
        })
    };
    (text(NFTA_CHAIN_TABLE)? == table)
        .then(|| text(NFTA_CHAIN_NAME))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_aligned_and_nests_carry_their_length() {
        let mut m = Message::new(0x0a06, NLM_F_REQUEST, 7, 5, 0);
        m.put_str(NFTA_RULE_TABLE, "kiln"); // 4 + 5 bytes → padded to 12
        m.begin(NFTA_RULE_EXPRESSIONS);
        m.put_be32(1, 0xdead_beef);
        m.end();
        let mut out = Vec::new();
        m.finish_into(&mut out);
        assert_eq!(out.len(), 16 + 4 + 12 + 4 + 8);
        assert_eq!(
            u32::from_ne_bytes(out[..4].try_into().unwrap()) as usize,
            out.len()
        );
        assert_eq!(
            &out[16..20],
            &[5, 0, 0, 0],
            "family netdev, version 0, res_id 0"
        );
        assert_eq!(&out[24..29], b"kiln\0");
        let nest = &out[32..];
        assert_eq!(u16::from_ne_bytes([nest[0], nest[1]]), 12);
        assert_eq!(
            u16::from_ne_bytes([nest[2], nest[3]]),
            NFTA_RULE_EXPRESSIONS | NLA_F_NESTED
        );
        assert_eq!(&nest[8..12], &0xdead_beef_u32.to_be_bytes());
    }

    #[test]
    fn a_rule_reads_back_its_comment_and_counter() {
        let rule = Rule {
            comment: "kiln: arp".into(),
            exprs: vec![
                Expr::Payload {
                    base: Base::Network,
                    offset: 14,
                    len: 4,
                },
                Expr::Cmp {
                    op: CmpOp::Neq,
                    data: vec![10, 89, 0, 10],
                },
                Expr::Counter,
                Expr::Drop,
            ],
        };
        let op = Op::AddRule {
            family: Family::Netdev,
            table: "kiln",
            chain: "kv0",
            rule: &rule,
        };
        let mut out = Vec::new();
        encode(&op, 3).finish_into(&mut out);
        let parsed = messages(&out);
        assert_eq!(parsed.len(), 1);
        let (kind, seq, payload) = parsed[0];
        assert_eq!((kind, seq), ((10 << 8) | NFT_MSG_NEWRULE, 3));
        let counted = parse_rule_counter(&payload[4..]).unwrap();
        assert_eq!(
            counted,
            Counted {
                comment: "kiln: arp".into(),
                packets: 0,
                bytes: 0
            }
        );
    }

    #[test]
    fn a_chain_message_names_its_chain_only_for_its_table() {
        let op = Op::AddIngressChain {
            family: Family::Netdev,
            table: "kiln",
            chain: "kv0a1b",
            device: "kv0a1b",
            priority: -500,
        };
        let mut out = Vec::new();
        encode(&op, 9).finish_into(&mut out);
        let (_, _, payload) = messages(&out)[0];
        assert_eq!(
            parse_chain_of(&payload[4..], "kiln").as_deref(),
            Some("kv0a1b")
        );
        assert_eq!(parse_chain_of(&payload[4..], "other"), None);
        assert_eq!(parse_chain_of(&[1, 2, 3], "kiln"), None);
    }

    #[test]
    fn comments_survive_the_udata_encoding_and_garbage_does_not_panic() {
        assert_eq!(
            comment_from_udata(&comment_udata("kiln: mac")).as_deref(),
            Some("kiln: mac")
        );
        for junk in [&[][..], &[0], &[0, 200, 1], &[1, 0, 0, 3, b'a']] {
            let _ = comment_from_udata(junk);
            let _ = attributes(junk);
            let _ = messages(junk);
            let _ = parse_rule_counter(junk);
        }
    }
}
