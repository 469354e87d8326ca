//! The filter, run by a tiny classic BPF interpreter on made-up `seccomp_data`, and the
//! OCI profile it is compiled from.

use nix::libc;
use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompArg, LinuxSyscall};

use super::*;

/// Runs `program` on a `seccomp_data` with `nr` and `arch` (arguments all zero), the way
/// the kernel does for the instructions a filter may use here; panics on anything else.
fn run(program: &[BpfInstruction], nr: u32, arch: u32) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    let mut accumulator = 0u32;
    let mut pc = 0usize;
    loop {
        let i = program.get(pc).expect("the program ran off its end");
        pc += 1;
        match i.code {
            BPF_LD_W_ABS => {
                let at = i.k as usize;
                accumulator = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
            }
            BPF_JMP_JEQ_K | BPF_JMP_JSET_K => {
                let taken = if i.code == BPF_JMP_JEQ_K {
                    accumulator == i.k
                } else {
                    accumulator & i.k != 0
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            BPF_RET_K => return i.k,
            code => panic!("unexpected opcode {code:#x}"),
        }
    }
}

fn default_filter() -> SeccompFilter {
    SeccompFilter::from_spec(&default_seccomp()).unwrap()
}

const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;

#[test]
fn denied_calls_fail_with_eperm_and_others_are_allowed() {
    let filter = default_filter();
    let program = filter.program();
    for nr in [
        libc::SYS_mount,
        libc::SYS_unshare,
        libc::SYS_ptrace,
        libc::SYS_setns,
        libc::SYS_bpf,
        libc::SYS_userfaultfd,
    ] {
        assert_eq!(run(program, nr as u32, AUDIT_ARCH), EPERM, "{nr}");
    }
    // What the child does before and after the filter, and what programs do all day.
    for nr in [
        libc::SYS_execve,
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_openat,
        libc::SYS_chdir,
        libc::SYS_clone,
        libc::SYS_exit_group,
        libc::SYS_personality,
        libc::SYS_prctl,
    ] {
        assert_eq!(
            run(program, nr as u32, AUDIT_ARCH),
            SECCOMP_RET_ALLOW,
            "{nr}"
        );
    }
}

#[test]
fn a_foreign_architecture_is_killed() {
    let program = default_filter().program().to_vec();
    let i386 = 0x4000_0003;
    let arm = 0x4000_0028;
    for arch in [i386, arm, 0] {
        // Even a call the native table allows: its number means something else there.
        assert_eq!(
            run(&program, libc::SYS_read as u32, arch),
            SECCOMP_RET_KILL_PROCESS
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_calls_are_denied_on_x86_64() {
    let program = default_filter().program().to_vec();
    // x32's read is 0x40000000 | 0, reported with the x86_64 audit arch.
    assert_eq!(run(&program, 0x4000_0000, AUDIT_ARCH), EPERM);
    assert_eq!(
        run(&program, 0x4000_0000 | libc::SYS_write as u32, AUDIT_ARCH),
        EPERM
    );
}

#[test]
fn the_default_profile_names_every_denied_call_once_and_shows_itself() {
    let filter = default_filter();
    assert_eq!(filter.denied().len(), DEFAULT_DENIED.len());
    assert!(filter.is_default());
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        filter.to_string(),
        "seccomp: deny 50 system calls with EPERM (default profile)"
    );
    let seccomp = default_seccomp();
    let rules = seccomp.syscalls().as_ref().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(rules[0].errno_ret(), Some(1));
    assert!(rules[0].names().contains(&"open_by_handle_at".to_string()));
    assert!(!rules[0].names().contains(&"personality".to_string()));
}

#[test]
fn a_custom_deny_list_compiles_and_says_it_is_not_the_default() {
    let mut rule = LinuxSyscall::default();
    rule.set_names(vec!["mount".into(), "umount2".into(), "mount".into()]);
    rule.set_action(LinuxSeccompAction::ScmpActErrno);
    rule.set_errno_ret(Some(libc::EACCES as u32));
    let mut seccomp = default_seccomp();
    seccomp.set_syscalls(Some(vec![rule.clone()]));
    let filter = SeccompFilter::from_spec(&seccomp).unwrap();
    assert_eq!(filter.denied().len(), 2);
    assert_eq!(
        filter.to_string(),
        "seccomp: deny 2 system calls with EACCES"
    );
    let program = filter.program();
    assert_eq!(
        run(program, libc::SYS_umount2 as u32, AUDIT_ARCH),
        SECCOMP_RET_ERRNO | libc::EACCES as u32
    );
    assert_eq!(
        run(program, libc::SYS_unshare as u32, AUDIT_ARCH),
        SECCOMP_RET_ALLOW
    );
}

#[test]
fn profiles_kiln_cannot_apply_faithfully_are_refused() {
    let mut allow_list = default_seccomp();
    allow_list.set_default_action(LinuxSeccompAction::ScmpActErrno);
    let mut unknown = default_seccomp();
    let mut rule = LinuxSyscall::default();
    rule.set_names(vec!["no_such_call".into()]);
    rule.set_action(LinuxSeccompAction::ScmpActErrno);
    unknown.set_syscalls(Some(vec![rule.clone()]));
    let mut with_args = default_seccomp();
    rule.set_names(vec!["mount".into()]);
    rule.set_args(Some(vec![LinuxSeccompArg::default()]));
    with_args.set_syscalls(Some(vec![rule]));
    for profile in [allow_list, unknown, with_args] {
        let error = SeccompFilter::from_spec(&profile).unwrap_err();
        assert!(
            matches!(error, SandboxError::Unsupported { .. }),
            "{error:?}"
        );
    }
}
