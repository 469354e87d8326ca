//! The seccomp filter of a container, as a classic BPF program built ahead of time.
//!
//! kiln's default profile is a deny-list: the system calls Docker's default profile keeps
//! from a container without extra capabilities fail with EPERM, everything else is
//! allowed. Docker's profile is an allow-list (about 350 names, everything else EPERM);
//! a deny-list is shorter to read and to check, at the price of letting through system
//! calls added to the kernel later. A process of another architecture (an i386 binary on
//! x86_64, say) is killed, because its system call numbers mean other calls; x32 calls on
//! x86_64 fail with EPERM for the same reason.
//!
//! This module only builds data: [`SeccompFilter::from_spec`] compiles the (small) subset of
//! an OCI `linux.seccomp` kiln supports, [`default_seccomp`] is that profile for the spec.
//! Loading it is [`super::Sys::load_seccomp`]'s job, in the child, which must not allocate:
//! so the program is complete before clone.

use std::fmt;

use nix::errno::Errno;
use nix::libc;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

use super::SandboxError;

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
/// BPF_JMP | BPF_JEQ | BPF_K.
pub(crate) const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
/// BPF_JMP | BPF_JSET | BPF_K.
pub(crate) const BPF_JMP_JSET_K: u16 = 0x05 | 0x40;
/// BPF_RET | BPF_K.
pub(crate) const BPF_RET_K: u16 = 0x06;
pub(crate) const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// Offsets in `struct seccomp_data`.
pub(crate) const DATA_NR: u32 = 0;
pub(crate) const DATA_ARCH: u32 = 4;

/// The architecture this filter is for, as the kernel reports it in `seccomp_data.arch`.
#[cfg(target_arch = "x86_64")]
pub(crate) const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
pub(crate) const AUDIT_ARCH: u32 = 0xc000_00b7;

/// Bit 30 marks x32 system calls on x86_64.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Docker's default profile denies these to a container without extra capabilities (the
/// ones this architecture has). `personality` is left allowed: Docker allows it with the
/// usual personas only, which needs argument checks.
#[cfg(target_arch = "x86_64")]
pub const DEFAULT_DENIED: &[(&str, libc::c_long)] = &[
    ("acct", libc::SYS_acct),
    ("add_key", libc::SYS_add_key),
    ("bpf", libc::SYS_bpf),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("clock_settime", libc::SYS_clock_settime),
    // Numbers from arch/x86/entry/syscalls/syscall_64.tbl: libc has no constant for
    // these long-gone calls, and the kernel answers ENOSYS anyway.
    ("create_module", 174),
    ("delete_module", libc::SYS_delete_module),
    ("finit_module", libc::SYS_finit_module),
    ("get_kernel_syms", 177),
    ("get_mempolicy", libc::SYS_get_mempolicy),
    ("init_module", libc::SYS_init_module),
    ("ioperm", libc::SYS_ioperm),
    ("iopl", libc::SYS_iopl),
    ("kcmp", libc::SYS_kcmp),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("kexec_load", libc::SYS_kexec_load),
    ("keyctl", libc::SYS_keyctl),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("mbind", libc::SYS_mbind),
    ("mount", libc::SYS_mount),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_pages", libc::SYS_move_pages),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("nfsservctl", libc::SYS_nfsservctl),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("pivot_root", libc::SYS_pivot_root),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("ptrace", libc::SYS_ptrace),
    ("query_module", 178),
    ("quotactl", libc::SYS_quotactl),
    ("reboot", libc::SYS_reboot),
    ("request_key", libc::SYS_request_key),
    ("set_mempolicy", libc::SYS_set_mempolicy),
    ("setns", libc::SYS_setns),
    ("settimeofday", libc::SYS_settimeofday),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("sysfs", libc::SYS_sysfs),
    ("_sysctl", libc::SYS__sysctl),
    ("umount2", libc::SYS_umount2),
    ("unshare", libc::SYS_unshare),
    ("uselib", libc::SYS_uselib),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("ustat", libc::SYS_ustat),
];

#[cfg(target_arch = "aarch64")]
pub const DEFAULT_DENIED: &[(&str, libc::c_long)] = &[
    ("acct", libc::SYS_acct),
    ("add_key", libc::SYS_add_key),
    ("bpf", libc::SYS_bpf),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("clock_settime", libc::SYS_clock_settime),
    ("delete_module", libc::SYS_delete_module),
    ("finit_module", libc::SYS_finit_module),
    ("get_mempolicy", libc::SYS_get_mempolicy),
    ("init_module", libc::SYS_init_module),
    ("kcmp", libc::SYS_kcmp),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("kexec_load", libc::SYS_kexec_load),
    ("keyctl", libc::SYS_keyctl),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("mbind", libc::SYS_mbind),
    ("mount", libc::SYS_mount),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_pages", libc::SYS_move_pages),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("nfsservctl", libc::SYS_nfsservctl),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("pivot_root", libc::SYS_pivot_root),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("ptrace", libc::SYS_ptrace),
    ("quotactl", libc::SYS_quotactl),
    ("reboot", libc::SYS_reboot),
    ("request_key", libc::SYS_request_key),
    ("set_mempolicy", libc::SYS_set_mempolicy),
    ("setns", libc::SYS_setns),
    ("settimeofday", libc::SYS_settimeofday),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("umount2", libc::SYS_umount2),
    ("unshare", libc::SYS_unshare),
    ("userfaultfd", libc::SYS_userfaultfd),
];

/// The errno the default profile returns: EPERM, what a process without the capability
/// gets from most of these calls anyway, so programs already handle it (ENOSYS would make
/// some believe the kernel is too old and take odd fallbacks).
pub(crate) const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// kiln's default profile as OCI `linux.seccomp`: allow by default, one rule denying
/// [`DEFAULT_DENIED`] with EPERM. runc applies the same from a bundle.
pub fn default_seccomp() -> LinuxSeccomp {
    let mut rule = LinuxSyscall::default();
    rule.set_names(
        DEFAULT_DENIED
            .iter()
            .map(|(name, _)| (*name).to_string())
            .collect(),
    );
    rule.set_action(LinuxSeccompAction::ScmpActErrno);
    rule.set_errno_ret(Some(DEFAULT_ERRNO));
    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(LinuxSeccompAction::ScmpActAllow);
    seccomp.set_syscalls(Some(vec![rule]));
    seccomp
}

/// A compiled deny-list filter: the program and, for `--trace`, what it denies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompFilter {
    /// System call numbers that fail with `errno`, in the spec's order.
    denied: Vec<u32>,
    errno: u32,
    program: Vec<BpfInstruction>,
}

impl SeccompFilter {
    /// A filter denying `numbers` with `errno` (and killing foreign architectures).
    pub fn deny(numbers: Vec<u32>, errno: u32) -> SeccompFilter {
        let program = deny_program(&numbers, errno);
        SeccompFilter {
            denied: numbers,
            errno,
            program,
        }
    }

    /// Compiles an OCI `linux.seccomp` of the form kiln writes: default action
    /// SCMP_ACT_ALLOW, rules SCMP_ACT_ERRNO without argument conditions, system calls
    /// kiln knows on this architecture (those of [`DEFAULT_DENIED`]). Anything else is
    /// refused rather than half applied.
    pub fn from_spec(seccomp: &LinuxSeccomp) -> Result<SeccompFilter, SandboxError> {
        let unsupported = |what: &str| SandboxError::Unsupported {
            what: format!("a seccomp profile with {what} (kiln supports deny-lists only)"),
        };
        if seccomp.default_action() != LinuxSeccompAction::ScmpActAllow {
            return Err(unsupported("a default action other than SCMP_ACT_ALLOW"));
        }
        if seccomp.listener_path().is_some()
            || seccomp.flags().as_ref().is_some_and(|f| !f.is_empty())
        {
            return Err(unsupported("flags or a listener"));
        }
        let mut numbers = Vec::new();
        let mut errno = None;
        for rule in seccomp.syscalls().as_deref().unwrap_or(&[]) {
            if rule.args().as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(unsupported("argument conditions"));
            }
            match rule.action() {
                LinuxSeccompAction::ScmpActAllow => continue,
                LinuxSeccompAction::ScmpActErrno => {}
                _ => return Err(unsupported("actions other than SCMP_ACT_ERRNO")),
            }
            let rule_errno = rule.errno_ret().unwrap_or(DEFAULT_ERRNO);
            if *errno.get_or_insert(rule_errno) != rule_errno {
                return Err(unsupported("several errno values"));
            }
            for name in rule.names() {
                let number = syscall_number(name).ok_or_else(|| SandboxError::Unsupported {
                    what: format!(
                        "a seccomp rule for `{name}` (kiln knows only its default list's \
                         system calls)"
                    ),
                })?;
                if !numbers.contains(&number) {
                    numbers.push(number);
                }
            }
        }
        Ok(SeccompFilter::deny(numbers, errno.unwrap_or(DEFAULT_ERRNO)))
    }

    /// The program, ready for `struct sock_fprog`.
    pub fn program(&self) -> &[BpfInstruction] {
        &self.program
    }

    pub fn denied(&self) -> &[u32] {
        &self.denied
    }

    pub fn errno(&self) -> u32 {
        self.errno
    }

    /// Whether this is exactly kiln's default profile.
    pub fn is_default(&self) -> bool {
        self.errno == DEFAULT_ERRNO
            && self.denied.len() == DEFAULT_DENIED.len()
            && DEFAULT_DENIED
                .iter()
                .all(|(_, nr)| self.denied.contains(&(*nr as u32)))
    }
}

impl fmt::Display for SeccompFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errno = Errno::from_raw(self.errno as i32);
        write!(
            f,
            "seccomp: deny {} system calls with {errno:?}",
            self.denied.len()
        )?;
        if self.is_default() {
            f.write_str(" (default profile)")?;
        }
        Ok(())
    }
}

/// This architecture's number for `name`, if kiln knows it.
pub(crate) fn syscall_number(name: &str) -> Option<u32> {
    DEFAULT_DENIED
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, nr)| *nr as u32)
}

/// The program: check the architecture (kill on mismatch), refuse x32 calls on x86_64,
/// then one compare-and-return per denied number, then allow.
fn deny_program(numbers: &[u32], errno: u32) -> Vec<BpfInstruction> {
    let deny = SECCOMP_RET_ERRNO | (errno & 0xffff);
    let mut program = vec![
        load(DATA_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH, 1, 0),
        ret(SECCOMP_RET_KILL_PROCESS),
        load(DATA_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    program.extend([jump(BPF_JMP_JSET_K, X32_SYSCALL_BIT, 0, 1), ret(deny)]);
    for &number in numbers {
        program.extend([jump(BPF_JMP_JEQ_K, number, 0, 1), ret(deny)]);
    }
    program.push(ret(SECCOMP_RET_ALLOW));
    program
}

fn load(offset: u32) -> BpfInstruction {
    BpfInstruction {
        code: BPF_LD_W_ABS,
        jt: 0,
        jf: 0,
        k: offset,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> BpfInstruction {
    BpfInstruction { code, jt, jf, k }
}

fn ret(k: u32) -> BpfInstruction {
    BpfInstruction {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k,
    }
}

#[cfg(test)]
mod tests;
