//! The seccomp filter of a container: profiles, the system call tables, and the classic BPF
//! program built from them ahead of time.
//!
//! kiln's default profile ([`default`]) is an allow-list equivalent to Docker's: about 370
//! system calls are allowed, with argument conditions on `clone`, `socket` and
//! `personality`, more for containers holding certain capabilities, and everything else
//! fails with EPERM. `--security-opt seccomp=PROFILE.json` takes a profile in Docker's JSON
//! format instead ([`Profile`]), `seccomp=unconfined` none. A profile is resolved against
//! the container's capabilities into an OCI `linux.seccomp` (so `runc run` of `kiln bundle`
//! applies the same), and [`SeccompFilter::from_spec`] compiles that into the program the
//! child loads ([`compile`], with seccompiler for the codegen).
//!
//! Only the native architecture is filtered (x86_64 or aarch64, each with its own table in
//! [`table`]): a process of another architecture (an i386 or arm32 binary) is killed,
//! because its system call numbers mean other calls, and x32 calls on x86_64 fail with
//! EPERM. A profile listing sub-architectures is accepted, and they are refused all the
//! same — stricter than Docker, never looser.
//!
//! This module only builds data. Loading the program is [`super::Sys::load_seccomp`]'s job,
//! in the child, which must not allocate: so the program is complete before clone.

mod arch;
mod compile;
pub mod default;
mod profile;
mod table;

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;
use oci_spec::runtime::{Capability, LinuxSeccomp, Spec};

pub use profile::{Profile, SeccompError};

use arch::Native;

/// One instruction of a classic BPF program, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInstruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (class | size | mode or op | source) and return values from
// linux/bpf_common.h and linux/seccomp.h.
/// BPF_LD | BPF_W | BPF_ABS: load the 32-bit word at offset k of `seccomp_data`.
pub(crate) const BPF_LD_W_ABS: u16 = 0x20;
/// BPF_JMP | BPF_JA: jump k instructions ahead.
pub(crate) const BPF_JMP_JA: u16 = 0x05;
/// BPF_JMP | BPF_JEQ | BPF_K.
pub(crate) const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
/// BPF_JMP | BPF_JGE | BPF_K.
pub(crate) const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
/// BPF_JMP | BPF_JSET | BPF_K.
pub(crate) const BPF_JMP_JSET_K: u16 = 0x05 | 0x40;
/// BPF_RET | BPF_K.
pub(crate) const BPF_RET_K: u16 = 0x06;
pub(crate) const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
pub(crate) const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
pub(crate) const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
pub(crate) const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
pub(crate) const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// Offsets in `struct seccomp_data`.
pub(crate) const DATA_NR: u32 = 0;
pub(crate) const DATA_ARCH: u32 = 4;

/// The annotation of `config.json` that names the container's profile: `default`,
/// `unconfined`, or the profile's file. `--trace` and `kiln exec` show it.
pub const PROFILE_ANNOTATION: &str = "dev.kiln.seccomp.profile";

/// The profile name of a container without a filter.
pub const UNCONFINED: &str = "unconfined";

/// Which profile a container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompChoice {
    /// kiln's default allow-list.
    #[default]
    Default,
    /// No filter at all (`seccomp=unconfined`).
    Unconfined,
    /// A profile in Docker's format, read and checked already.
    Profile(Profile),
    /// A profile in Docker's format in this file, read when the container is made.
    File(PathBuf),
}

impl SeccompChoice {
    /// The OCI `linux.seccomp` for a container whose bounding set is `caps`, and the name
    /// for [`PROFILE_ANNOTATION`].
    pub fn resolve(
        &self,
        caps: &[Capability],
    ) -> Result<(Option<LinuxSeccomp>, String), SeccompError> {
        let caps = cap_names(caps);
        Ok(match self {
            SeccompChoice::Default => (
                Some(default::profile().resolve(&caps)),
                default::DEFAULT_NAME.to_string(),
            ),
            SeccompChoice::Unconfined => (None, UNCONFINED.to_string()),
            SeccompChoice::Profile(profile) => (Some(profile.resolve(&caps)), profile.name.clone()),
            SeccompChoice::File(path) => {
                let profile = Profile::load(path)?;
                (Some(profile.resolve(&caps)), profile.name)
            }
        })
    }
}

/// `CAP_…` names, as Docker's profiles write them.
pub(crate) fn cap_names(caps: &[Capability]) -> Vec<String> {
    // oci-spec displays capabilities without the prefix (`SYS_ADMIN`).
    caps.iter().map(|cap| format!("CAP_{cap}")).collect()
}

/// kiln's default profile for a container whose bounding set is `caps`, as OCI
/// `linux.seccomp`.
pub fn default_seccomp(caps: &[Capability]) -> LinuxSeccomp {
    match SeccompChoice::Default.resolve(caps) {
        Ok((Some(seccomp), _)) => seccomp,
        _ => LinuxSeccomp::default(),
    }
}

/// A compiled filter: the program and, for `--trace`, what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompFilter {
    name: String,
    /// System call rules kept for this architecture.
    rules: usize,
    /// The return value of calls no rule matches.
    default: u32,
    arch: &'static str,
    program: Vec<BpfInstruction>,
}

impl SeccompFilter {
    /// Compiles an OCI `linux.seccomp` for this machine's architecture; `name` says where
    /// it came from. What kiln cannot apply faithfully (notify, flags, unknown system
    /// calls) is refused rather than half applied.
    pub fn from_spec(seccomp: &LinuxSeccomp, name: &str) -> Result<SeccompFilter, SeccompError> {
        Self::compile_for(seccomp, name, Native::get())
    }

    pub(crate) fn compile_for(
        seccomp: &LinuxSeccomp,
        name: &str,
        arch: &'static Native,
    ) -> Result<SeccompFilter, SeccompError> {
        let compiled = compile::compile(seccomp, arch)?;
        Ok(SeccompFilter {
            name: name.to_string(),
            rules: compiled.rules,
            default: compiled.default,
            arch: arch.name,
            program: compiled.program,
        })
    }

    /// The filter `spec` asks for (its `linux.seccomp`, named by [`PROFILE_ANNOTATION`]).
    pub fn of_spec(spec: &Spec) -> Result<Option<SeccompFilter>, SeccompError> {
        let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
            return Ok(None);
        };
        let name = spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(PROFILE_ANNOTATION))
            .map_or("custom", String::as_str);
        SeccompFilter::from_spec(seccomp, name).map(Some)
    }

    /// The program, ready for `struct sock_fprog`.
    pub fn program(&self) -> &[BpfInstruction] {
        &self.program
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn rules(&self) -> usize {
        self.rules
    }
}

/// What a return value does, in words (`EPERM`, `allow`, `kill the process`).
pub(crate) fn describe_return(value: u32) -> String {
    let data = value & 0xffff;
    match value & 0xffff_0000 {
        SECCOMP_RET_ALLOW => "allow".into(),
        SECCOMP_RET_ERRNO => format!("{:?}", Errno::from_raw(data as i32)),
        SECCOMP_RET_KILL_PROCESS => "kill the process".into(),
        SECCOMP_RET_KILL_THREAD => "kill the thread".into(),
        SECCOMP_RET_TRAP => "SIGSYS".into(),
        SECCOMP_RET_TRACE => format!("trace ({data})"),
        SECCOMP_RET_LOG => "log and allow".into(),
        _ => format!("{value:#x}"),
    }
}

impl fmt::Display for SeccompFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seccomp: profile {}, {} rules for {}, otherwise {} ({} BPF instructions)",
            self.name,
            self.rules,
            self.arch,
            describe_return(self.default),
            self.program.len()
        )
    }
}

#[cfg(test)]
mod tests;
