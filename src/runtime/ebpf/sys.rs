//! bpf(2) for cgroup device programs: load one (`BPF_PROG_LOAD`, with the verifier's log
//! when the kernel refuses it), attach it to a cgroup (`BPF_PROG_ATTACH` with
//! `BPF_F_ALLOW_MULTI`), list what is attached (`BPF_PROG_QUERY`), and look a program up
//! by id (`BPF_PROG_GET_FD_BY_ID`, `BPF_OBJ_GET_INFO_BY_FD`).
//!
//! An attachment holds its program: once attached, kiln closes its descriptor and pins
//! nothing in a bpffs; the kernel frees the program when the cgroup is removed. The
//! `union bpf_attr` is passed as a zeroed 256-byte buffer with the fields written at their
//! offsets: the kernel reads what it knows and checks that the rest is zero, and some
//! kernels (6.17 and later) write `BPF_PROG_QUERY`'s revision field whatever size is
//! passed, so the buffer must be larger than any field the kernel might write.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::asm::{INSN_SIZE, Insn, encode_all};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;

/// `BPF_PROG_TYPE_CGROUP_DEVICE`.
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE`, the attach type.
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: programs attached below this cgroup run too, and all must allow.
pub const F_ALLOW_MULTI: u32 = 2;

/// Longest program name the kernel keeps (`BPF_OBJ_NAME_LEN` less the NUL).
const NAME_MAX: usize = 15;
/// The verifier log kiln asks for when a load fails.
const LOG_SIZE: usize = 64 * 1024;
/// A program loaded while a signal arrives may fail with EAGAIN; runc retries 30 times.
const LOAD_TRIES: usize = 30;

/// What went wrong in bpf(2), with the verifier's log for a refused program.
#[derive(Debug)]
pub struct BpfError {
    /// `load`, `attach`, `query`, …
    pub op: &'static str,
    pub source: io::Error,
    /// The verifier's explanation (`BPF_PROG_LOAD` only), trimmed.
    pub log: Option<String>,
}

impl fmt::Display for BpfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bpf {}: {}", self.op, self.source)?;
        if let Some(log) = &self.log {
            write!(f, "; verifier: {log}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BpfError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl BpfError {
    pub(crate) fn new(op: &'static str, source: io::Error) -> BpfError {
        BpfError {
            op,
            source,
            log: None,
        }
    }
}

/// `union bpf_attr`, zeroed, with fields written at their byte offsets.
#[repr(C, align(8))]
struct Attr([u8; 256]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 256])
    }

    fn u32(&mut self, offset: usize, value: u32) -> &mut Attr {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }

    fn u64(&mut self, offset: usize, value: u64) -> &mut Attr {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }

    fn get_u32(&self, offset: usize) -> u32 {
        u32::from_ne_bytes(self.0[offset..offset + 4].try_into().expect("four bytes"))
    }

    fn bytes(&mut self, offset: usize, bytes: &[u8]) -> &mut Attr {
        self.0[offset..offset + bytes.len()].copy_from_slice(bytes);
        self
    }

    /// bpf(`cmd`, self); the raw return value.
    fn call(&mut self, cmd: libc::c_long) -> io::Result<libc::c_long> {
        // SAFETY: the buffer is a valid, writable `union bpf_attr` of the size passed, and
        // every pointer written into it (by the callers) points to memory that outlives
        // this call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                self.0.as_mut_ptr(),
                self.0.len() as libc::c_uint,
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    /// bpf(`cmd`, self) for a command that returns a new descriptor.
    fn call_fd(&mut self, cmd: libc::c_long) -> io::Result<OwnedFd> {
        let fd = self.call(cmd)?;
        // SAFETY: on success these commands return a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        if fd.as_raw_fd() != 0 {
            return Ok(fd);
        }
        // bpf(2) reads a descriptor field of 0 as "none": move it (stdin was closed).
        // SAFETY: fcntl on a descriptor we own; the duplicate is new and ours.
        let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 1) };
        if moved < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(moved) })
    }
}

/// Loads `program` as a `BPF_PROG_TYPE_CGROUP_DEVICE` program named `name` (at most 15
/// characters of `[A-Za-z0-9_.]`, shown by `bpftool prog`).
pub fn load_cgroup_device(program: &[Insn], name: &str) -> Result<OwnedFd, BpfError> {
    let bytes = encode_all(program);
    let license = CString::new("MIT OR Apache-2.0").expect("no NUL");
    let mut prog_name = [0u8; NAME_MAX + 1];
    for (slot, byte) in prog_name.iter_mut().zip(name.bytes().take(NAME_MAX)) {
        *slot = byte;
    }
    let mut attr = Attr::new();
    // struct { prog_type; insn_cnt; insns; license; log_level; log_size; log_buf;
    //          kern_version; prog_flags; prog_name[16]; … }
    attr.u32(0, PROG_TYPE_CGROUP_DEVICE)
        .u32(4, (bytes.len() / INSN_SIZE) as u32)
        .u64(8, bytes.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64)
        .bytes(48, &prog_name);
    let mut result = attr.call_fd(BPF_PROG_LOAD);
    for _ in 1..LOAD_TRIES {
        match &result {
            Err(err) if err.raw_os_error() == Some(libc::EAGAIN) => {
                result = attr.call_fd(BPF_PROG_LOAD);
            }
            _ => break,
        }
    }
    let source = match result {
        Ok(fd) => return Ok(fd),
        Err(source) => source,
    };
    // Again with the verifier's log, to say why.
    let mut log = vec![0u8; LOG_SIZE];
    attr.u32(24, 1)
        .u32(28, log.len() as u32)
        .u64(32, log.as_mut_ptr() as u64);
    let retried = attr.call_fd(BPF_PROG_LOAD);
    drop((bytes, license));
    if let Ok(fd) = retried {
        return Ok(fd);
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]).trim().to_owned();
    Err(BpfError {
        op: "load",
        source,
        log: (!text.is_empty()).then_some(text),
    })
}

/// Attaches `program` to the cgroup open as `cgroup` (a directory descriptor in the
/// unified hierarchy) with `BPF_F_ALLOW_MULTI`.
pub fn attach_cgroup_device(
    cgroup: BorrowedFd<'_>,
    program: BorrowedFd<'_>,
) -> Result<(), BpfError> {
    let mut attr = Attr::new();
    // struct { target_fd; attach_bpf_fd; attach_type; attach_flags; replace_bpf_fd; }
    attr.u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, program.as_raw_fd() as u32)
        .u32(8, ATTACH_CGROUP_DEVICE)
        .u32(12, F_ALLOW_MULTI);
    attr.call(BPF_PROG_ATTACH)
        .map(drop)
        .map_err(|e| BpfError::new("attach", e))
}

/// The ids of the device programs attached to the cgroup open as `cgroup` itself (not
/// those inherited from its parents).
pub fn query_cgroup_device(cgroup: BorrowedFd<'_>) -> Result<Vec<u32>, BpfError> {
    // 64 is the most programs one cgroup takes per attach type.
    let mut ids = vec![0u32; 64];
    let mut attr = Attr::new();
    // struct { target_fd; attach_type; query_flags; attach_flags; prog_ids; prog_cnt; … }
    attr.u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, ATTACH_CGROUP_DEVICE)
        .u64(16, ids.as_mut_ptr() as u64)
        .u32(24, ids.len() as u32);
    attr.call(BPF_PROG_QUERY)
        .map_err(|e| BpfError::new("query", e))?;
    let count = attr.get_u32(24) as usize;
    ids.truncate(count.min(ids.len()));
    Ok(ids)
}

/// What the kernel says of a loaded program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramInfo {
    pub id: u32,
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    pub name: String,
}

/// The kernel's information on the program open as `program`.
pub fn program_info(program: BorrowedFd<'_>) -> Result<ProgramInfo, BpfError> {
    // struct bpf_prog_info: type @0, id @4, … name[16] @64; the kernel fills what fits.
    let mut info = [0u8; 128];
    let mut attr = Attr::new();
    // struct { bpf_fd; info_len; info; }
    attr.u32(0, program.as_raw_fd() as u32)
        .u32(4, info.len() as u32)
        .u64(8, info.as_mut_ptr() as u64);
    attr.call(BPF_OBJ_GET_INFO_BY_FD)
        .map_err(|e| BpfError::new("get info", e))?;
    let word = |offset: usize| u32::from_ne_bytes(info[offset..offset + 4].try_into().unwrap());
    let name = &info[64..80];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(ProgramInfo {
        prog_type: word(0),
        id: word(4),
        name: String::from_utf8_lossy(&name[..end]).into_owned(),
    })
}

/// The program with this id, if it still exists (`None` once the kernel freed it).
pub fn program_by_id(id: u32) -> Result<Option<OwnedFd>, BpfError> {
    let mut attr = Attr::new();
    // struct { prog_id; next_id; open_flags; }
    attr.u32(0, id);
    match attr.call_fd(BPF_PROG_GET_FD_BY_ID) {
        Ok(fd) => Ok(Some(fd)),
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(err) => Err(BpfError::new("get program by id", err)),
    }
}
