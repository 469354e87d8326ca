//! The filters, run by a tiny classic BPF interpreter on made-up `seccomp_data` (system
//! call, architecture, arguments), for the default profile with various capability sets,
//! on both architectures, and for Docker-format profiles.

use nix::libc;
use oci_spec::runtime::{Capability, LinuxSeccompAction};

use super::arch::{AARCH64, Native, X86_64};
use super::*;

/// BPF_JMP | BPF_JGT | BPF_K, BPF_ALU | BPF_AND | BPF_K: what seccompiler's argument
/// comparisons use besides the opcodes kiln writes itself.
const BPF_JMP_JGT_K: u16 = 0x05 | 0x20;
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;

/// Runs `program` on a `seccomp_data` of `nr`, `arch` and `args`, the way the kernel does
/// for the instructions a filter may use here; panics on anything else (or a backward or
/// out-of-range jump, which the kernel would refuse to load).
fn run_with(program: &[BpfInstruction], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    assert!(program.len() <= 4096, "too long for the kernel");
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, arg) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
    }
    let mut accumulator = 0u32;
    let mut pc = 0usize;
    loop {
        let i = program.get(pc).expect("the program ran off its end");
        pc += 1;
        match i.code {
            BPF_LD_W_ABS => {
                let at = i.k as usize;
                assert!(at % 4 == 0 && at + 4 <= 64, "load out of seccomp_data");
                accumulator = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
            }
            BPF_ALU_AND_K => accumulator &= i.k,
            BPF_JMP_JA => pc += i.k as usize,
            BPF_JMP_JEQ_K | BPF_JMP_JSET_K | BPF_JMP_JGT_K | BPF_JMP_JGE_K => {
                let taken = match i.code {
                    BPF_JMP_JEQ_K => accumulator == i.k,
                    BPF_JMP_JSET_K => accumulator & i.k != 0,
                    BPF_JMP_JGT_K => accumulator > i.k,
                    _ => accumulator >= i.k,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            BPF_RET_K => return i.k,
            code => panic!("unexpected opcode {code:#x}"),
        }
    }
}

fn filter_for(choice: &SeccompChoice, caps: &[Capability], arch: &'static Native) -> SeccompFilter {
    let caps = cap_names(caps);
    let (profile, name) = match choice {
        SeccompChoice::Default => (default::profile(), "default"),
        SeccompChoice::Profile(p) => (p.clone(), "custom"),
        _ => unreachable!(),
    };
    let seccomp = profile.resolve_for(arch, &caps, &|| (6, 18));
    SeccompFilter::compile_for(&seccomp, name, arch).unwrap()
}

fn default_caps() -> Vec<Capability> {
    crate::runtime::spec::defaults::DEFAULT_CAPABILITIES.to_vec()
}

/// A profile in the container with Docker's default capabilities, checked by calls.
struct Probe {
    filter: SeccompFilter,
    arch: &'static Native,
}

impl Probe {
    fn default_on(arch: &'static Native, caps: &[Capability]) -> Probe {
        Probe {
            filter: filter_for(&SeccompChoice::Default, caps, arch),
            arch,
        }
    }

    fn call(&self, name: &str, args: [u64; 6]) -> u32 {
        let nr = self
            .arch
            .number(name)
            .unwrap_or_else(|| panic!("{name} on {}", self.arch.name));
        run_with(self.filter.program(), nr, self.arch.audit, args)
    }

    fn plain(&self, name: &str) -> u32 {
        self.call(name, [0; 6])
    }
}

const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
const ALLOW: u32 = SECCOMP_RET_ALLOW;

const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
const CLONE_NEWNS: u64 = 0x0002_0000;
/// What glibc's fork passes: CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD.
const FORK_FLAGS: u64 = 0x0120_0011;
/// What pthread_create passes (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
/// CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
/// CLONE_CHILD_CLEARTID).
const THREAD_FLAGS: u64 = 0x003d_0f00;

#[test]
fn ordinary_programs_calls_are_allowed_on_both_architectures() {
    for arch in [&X86_64, &AARCH64] {
        let probe = Probe::default_on(arch, &default_caps());
        for name in [
            "read",
            "write",
            "openat",
            "close",
            "execve",
            "exit_group",
            "mmap",
            "mprotect",
            "brk",
            "rt_sigaction",
            "futex",
            "chdir",
            "getdents64",
            "prctl",
            "setuid",
            "capset",
            "wait4",
            "pipe2",
            "epoll_pwait",
            "bind",
            "listen",
            "accept4",
            "sendto",
            "recvfrom",
            "statx",
            "newfstatat",
            "getrandom",
            "rseq",
            "chroot",
            "ptrace",
            "seccomp",
        ] {
            assert_eq!(probe.plain(name), ALLOW, "{name} on {}", arch.name);
        }
        // fork and threads: clone without namespace flags.
        assert_eq!(probe.call("clone", [FORK_FLAGS, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(probe.call("clone", [THREAD_FLAGS, 0, 0, 0, 0, 0]), ALLOW);
    }
    let x86 = Probe::default_on(&X86_64, &default_caps());
    for name in [
        "arch_prctl",
        "open",
        "stat",
        "fork",
        "vfork",
        "select",
        "poll",
    ] {
        assert_eq!(x86.plain(name), ALLOW, "{name}");
    }
}

#[test]
fn namespaces_mounts_and_kernel_knobs_are_denied_with_eperm() {
    for arch in [&X86_64, &AARCH64] {
        let probe = Probe::default_on(arch, &default_caps());
        for name in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "pivot_root",
            "bpf",
            "perf_event_open",
            "keyctl",
            "add_key",
            "init_module",
            "kexec_load",
            "reboot",
            "swapon",
            "settimeofday",
            "clock_settime",
            "userfaultfd",
            "open_by_handle_at",
            "kcmp",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "fsopen",
            "open_tree",
            "move_mount",
            "quotactl",
            "acct",
            "syslog",
            "sethostname",
            "lookup_dcookie",
            "vhangup",
            "mbind",
            "fanotify_init",
        ] {
            assert_eq!(probe.plain(name), EPERM, "{name} on {}", arch.name);
        }
        for flags in [
            CLONE_NEWUSER,
            CLONE_NEWUSER | CLONE_NEWNET,
            CLONE_NEWNS | FORK_FLAGS,
            // The high half of the register does not hide a flag.
            0xffff_ffff_0000_0000 | CLONE_NEWNET,
        ] {
            assert_eq!(
                probe.call("clone", [flags, 0, 0, 0, 0, 0]),
                EPERM,
                "{flags:#x}"
            );
        }
        // clone3's flags are behind a pointer: ENOSYS sends libc back to clone.
        assert_eq!(probe.plain("clone3"), ENOSYS);
    }
    let x86 = Probe::default_on(&X86_64, &default_caps());
    for name in [
        "iopl",
        "ioperm",
        "create_module",
        "uselib",
        "_sysctl",
        "ustat",
        "sysfs",
    ] {
        assert_eq!(x86.plain(name), EPERM, "{name}");
    }
}

#[test]
fn personality_and_socket_are_allowed_with_dockers_values_only() {
    let probe = Probe::default_on(&X86_64, &default_caps());
    for persona in [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff] {
        assert_eq!(
            probe.call("personality", [persona, 0, 0, 0, 0, 0]),
            ALLOW,
            "{persona:#x}"
        );
    }
    // READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, PER_BSD, and a 64-bit value whose low half is
    // allowed.
    for persona in [0x0040_0000, 0x0004_0000, 0x6, 0x1_0000_0000] {
        assert_eq!(
            probe.call("personality", [persona, 0, 0, 0, 0, 0]),
            EPERM,
            "{persona:#x}"
        );
    }
    for family in [1, 2, 10, 16, 17, 37, 39, 41, 45] {
        assert_eq!(
            probe.call("socket", [family, 1, 0, 0, 0, 0]),
            ALLOW,
            "{family}"
        );
    }
    for family in [38, 40] {
        assert_eq!(
            probe.call("socket", [family, 1, 0, 0, 0, 0]),
            EPERM,
            "{family}"
        );
    }
}

#[test]
fn capabilities_add_their_system_calls_as_in_docker() {
    let with = |extra: &[Capability]| {
        let mut caps = default_caps();
        caps.extend_from_slice(extra);
        Probe::default_on(&X86_64, &caps)
    };
    let admin = with(&[Capability::SysAdmin]);
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "sethostname",
        "clone3",
        "fsopen",
    ] {
        assert_eq!(admin.plain(name), ALLOW, "{name}");
    }
    assert_eq!(
        admin.call("clone", [CLONE_NEWUSER | CLONE_NEWNET, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(admin.plain("reboot"), EPERM);
    let ptrace = with(&[Capability::SysPtrace]);
    for name in ["kcmp", "pidfd_getfd", "process_madvise"] {
        assert_eq!(ptrace.plain(name), ALLOW, "{name}");
    }
    assert_eq!(ptrace.plain("mount"), EPERM);
    assert_eq!(with(&[Capability::SysModule]).plain("finit_module"), ALLOW);
    assert_eq!(with(&[Capability::SysTime]).plain("clock_settime"), ALLOW);
    assert_eq!(with(&[Capability::SysBoot]).plain("reboot"), ALLOW);
    assert_eq!(with(&[Capability::SysRawio]).plain("iopl"), ALLOW);
    assert_eq!(
        with(&[Capability::DacReadSearch]).plain("open_by_handle_at"),
        ALLOW
    );
    assert_eq!(with(&[Capability::Bpf]).plain("bpf"), ALLOW);
    // Without CAP_SYS_CHROOT (dropped), chroot goes.
    let mut fewer = default_caps();
    fewer.retain(|c| *c != Capability::SysChroot);
    assert_eq!(Probe::default_on(&X86_64, &fewer).plain("chroot"), EPERM);
}

#[test]
fn a_foreign_architecture_is_killed_and_x32_is_refused() {
    let filter = filter_for(&SeccompChoice::Default, &default_caps(), &X86_64);
    let i386 = 0x4000_0003;
    let arm = 0x4000_0028;
    for arch in [i386, arm, AARCH64.audit, 0] {
        // Even a call the native table allows: its number means something else there.
        assert_eq!(
            run_with(filter.program(), libc::SYS_read as u32, arch, [0; 6]),
            SECCOMP_RET_KILL_PROCESS
        );
    }
    // x32's read is 0x40000000 | 0, reported with the x86_64 audit arch.
    assert_eq!(
        run_with(filter.program(), 0x4000_0000, X86_64.audit, [0; 6]),
        EPERM
    );
    let aarch64 = filter_for(&SeccompChoice::Default, &default_caps(), &AARCH64);
    assert_eq!(
        run_with(aarch64.program(), 63, X86_64.audit, [0; 6]),
        SECCOMP_RET_KILL_PROCESS
    );
}

#[test]
fn unknown_numbers_and_new_system_calls_are_denied() {
    let filter = filter_for(&SeccompChoice::Default, &default_caps(), &X86_64);
    for nr in [470, 999, 0x3fff_ffff] {
        assert_eq!(
            run_with(filter.program(), nr, X86_64.audit, [0; 6]),
            EPERM,
            "{nr}"
        );
    }
}

#[test]
fn the_default_profile_shows_itself_in_one_line() {
    let filter = filter_for(&SeccompChoice::Default, &default_caps(), &X86_64);
    let line = filter.to_string();
    assert!(
        line.starts_with("seccomp: profile default, ")
            && line.contains(" rules for x86_64, otherwise EPERM"),
        "{line}"
    );
    assert!(filter.rules() > 300, "{line}");
    // The spec form runc reads: an allow-list, native architecture only.
    let seccomp = default_seccomp(&default_caps());
    assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(seccomp.default_errno_ret(), Some(libc::EPERM as u32));
    let rules = seccomp.syscalls().as_ref().unwrap();
    let named = |name: &str| {
        rules
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .count()
    };
    assert_eq!(named("read"), 1);
    assert_eq!(named("mount"), 0);
    assert_eq!(
        named("chown32"),
        0,
        "other architectures' names are dropped"
    );
    assert_eq!(named("personality"), 5);
}

#[test]
fn the_number_dispatch_answers_as_the_plain_list_for_every_call() {
    let caps = cap_names(&default_caps());
    let mut with_admin = caps.clone();
    with_admin.push("CAP_SYS_ADMIN".into());
    let docker = Profile::parse("docker-like.json", DOCKER_LIKE).unwrap();
    for arch in [&X86_64, &AARCH64] {
        for (profile, caps) in [
            (default::profile(), &caps),
            (default::profile(), &with_admin),
            (docker.clone(), &caps),
        ] {
            let seccomp = profile.resolve_for(arch, caps, &|| (6, 18));
            let plain = compile::compile_with(&seccomp, arch, usize::MAX).unwrap();
            let fast = compile::compile(&seccomp, arch).unwrap();
            if profile.name == "default" {
                assert!(
                    fast.program.len() > plain.program.len(),
                    "a dispatch was built"
                );
            }
            for nr in (0..600).chain([0x3fff_ffff, 0x4000_0001, u32::MAX]) {
                for args in [
                    [0; 6],
                    [CLONE_NEWUSER, 15, 7, 0, 0, 0],
                    [FORK_FLAGS, 9, 3, 0, 0, 0],
                    [0x2_0008, 1, 0, 0, 0, 0],
                    [40, 1, 0, 0, 0, 0],
                ] {
                    assert_eq!(
                        run_with(&fast.program, nr, arch.audit, args),
                        run_with(&plain.program, nr, arch.audit, args),
                        "{nr} {args:?} on {}",
                        arch.name
                    );
                }
            }
        }
    }
}

#[test]
fn compiling_the_default_is_quick_enough_to_do_per_container() {
    // Not a timing assertion: the program stays far below the kernel's limit, and an
    // allowed call walks a few comparisons and one bucket, not the whole list.
    let filter = filter_for(&SeccompChoice::Default, &default_caps(), &X86_64);
    assert!(filter.program().len() < 2048, "{}", filter.program().len());
    let walked = |nr: u32| {
        let mut steps = 0;
        let program = filter.program();
        let (mut pc, mut acc) = (0, 0);
        // Count instructions until a return, for zero arguments.
        while program[pc].code != BPF_RET_K {
            steps += 1;
            let i = program[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS if i.k == DATA_ARCH => acc = X86_64.audit,
                BPF_LD_W_ABS if i.k == DATA_NR => acc = nr,
                BPF_LD_W_ABS => acc = 0,
                BPF_JMP_JA => pc += i.k as usize,
                BPF_JMP_JEQ_K => pc += usize::from(if acc == i.k { i.jt } else { i.jf }),
                BPF_JMP_JGE_K => pc += usize::from(if acc >= i.k { i.jt } else { i.jf }),
                BPF_JMP_JGT_K => pc += usize::from(if acc > i.k { i.jt } else { i.jf }),
                BPF_JMP_JSET_K => pc += usize::from(if acc & i.k != 0 { i.jt } else { i.jf }),
                BPF_ALU_AND_K => acc &= i.k,
                code => panic!("unexpected opcode {code:#x}"),
            }
        }
        steps
    };
    let most = (0..470).map(walked).max().unwrap();
    assert!(most < 200, "{most} instructions for the worst call");
}

const DOCKER_LIKE: &str = r#"{
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        { "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
        { "architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"] }
    ],
    "syscalls": [
        { "names": ["read", "write", "exit_group", "chown32", "mkdir"], "action": "SCMP_ACT_ALLOW" },
        { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "most restrictive wins" },
        { "names": ["getpid"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["CAP_SYS_ADMIN"] } },
        { "names": ["getppid"], "action": "SCMP_ACT_ALLOW", "excludes": { "caps": ["CAP_SYS_ADMIN"] } },
        { "names": ["gettid"], "action": "SCMP_ACT_ALLOW", "includes": { "arches": ["arm64"] } },
        { "names": ["sync"], "action": "SCMP_ACT_ALLOW", "includes": { "minKernel": "99.1" } },
        { "names": ["fsync"], "action": "SCMP_ACT_ALLOW", "includes": { "minKernel": "4.8" } },
        { "names": ["kill"], "action": "SCMP_ACT_ALLOW",
          "args": [ { "index": 1, "value": 15, "op": "SCMP_CMP_EQ" }, { "index": 1, "value": 9, "op": "SCMP_CMP_EQ" } ] },
        { "names": ["lseek"], "action": "SCMP_ACT_ALLOW",
          "args": [ { "index": 0, "value": 3, "op": "SCMP_CMP_GE" }, { "index": 2, "value": 0, "op": "SCMP_CMP_EQ" } ] },
        { "names": ["mmap"], "action": "SCMP_ACT_ALLOW",
          "args": [ { "index": 2, "value": 4, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" } ] },
        { "name": "uname", "action": "SCMP_ACT_KILL_PROCESS" }
    ]
}"#;

fn docker_like(caps: &[Capability], arch: &'static Native) -> Probe {
    let profile = Profile::parse("docker-like.json", DOCKER_LIKE).unwrap();
    Probe {
        filter: filter_for(&SeccompChoice::Profile(profile), caps, arch),
        arch,
    }
}

#[test]
fn a_docker_profile_applies_its_actions_conditions_and_includes() {
    let probe = docker_like(&default_caps(), &X86_64);
    assert_eq!(probe.plain("read"), ALLOW);
    assert_eq!(
        probe.plain("mkdir"),
        SECCOMP_RET_ERRNO | libc::EACCES as u32
    );
    assert_eq!(probe.plain("getpid"), EPERM, "needs CAP_SYS_ADMIN");
    assert_eq!(
        probe.plain("getppid"),
        ALLOW,
        "excluded with CAP_SYS_ADMIN only"
    );
    assert_eq!(probe.plain("gettid"), EPERM, "arm64 only");
    assert_eq!(probe.plain("sync"), EPERM, "kernel 99.1 only");
    assert_eq!(probe.plain("fsync"), ALLOW);
    assert_eq!(probe.plain("uname"), SECCOMP_RET_KILL_PROCESS);
    // Two conditions on one argument are alternatives (as runc reads them).
    assert_eq!(probe.call("kill", [1, 15, 0, 0, 0, 0]), ALLOW);
    assert_eq!(probe.call("kill", [1, 9, 0, 0, 0, 0]), ALLOW);
    assert_eq!(probe.call("kill", [1, 2, 0, 0, 0, 0]), EPERM);
    // Conditions on two arguments must both hold.
    assert_eq!(probe.call("lseek", [3, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(probe.call("lseek", [2, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(probe.call("lseek", [3, 0, 1, 0, 0, 0]), EPERM);
    // MASKED_EQ: (prot & PROT_EXEC) == 0.
    assert_eq!(probe.call("mmap", [0, 4096, 3, 0, 0, 0]), ALLOW);
    assert_eq!(probe.call("mmap", [0, 4096, 7, 0, 0, 0]), EPERM);

    let admin = docker_like(&[Capability::SysAdmin], &X86_64);
    assert_eq!(admin.plain("getpid"), ALLOW);
    assert_eq!(admin.plain("getppid"), EPERM);
    assert_eq!(docker_like(&[], &AARCH64).plain("gettid"), ALLOW);
}

#[test]
fn a_deny_list_profile_allows_the_rest_but_never_x32() {
    let text = r#"{ "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [ { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" } ] }"#;
    let probe = Probe {
        filter: filter_for(
            &SeccompChoice::Profile(Profile::parse("deny.json", text).unwrap()),
            &[],
            &X86_64,
        ),
        arch: &X86_64,
    };
    assert_eq!(probe.plain("mkdirat"), EPERM, "errnoRet defaults to EPERM");
    assert_eq!(probe.plain("mount"), ALLOW);
    assert_eq!(
        run_with(
            probe.filter.program(),
            0x4000_0000 | 83,
            X86_64.audit,
            [0; 6]
        ),
        EPERM
    );
    assert_eq!(
        probe.filter.to_string(),
        format!(
            "seccomp: profile custom, 2 rules for x86_64, otherwise allow ({} BPF instructions)",
            probe.filter.program().len()
        )
    );
}

#[test]
fn podmans_errno_names_are_read() {
    let text = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "defaultErrno": "ENOSYS",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errno": "EACCES"}]}"#;
    let profile = Profile::parse("podman.json", text).unwrap();
    assert_eq!(profile.default_errno, Some(38));
    assert_eq!(profile.rules[0].errno, Some(libc::EACCES as u32));
}

#[test]
fn dockers_own_default_json_is_accepted() {
    // The shape of moby's default.json: archMap, names of every architecture, comments,
    // includes and excludes by caps, arches and minKernel.
    let profile = Profile::parse("default.json", DOCKER_LIKE).unwrap();
    assert_eq!(profile.rules.len(), 11);
}

fn problem(text: &str) -> (String, String) {
    match Profile::parse("p.json", text).unwrap_err() {
        SeccompError::Invalid { at, message, .. } => (at, message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bad_profile_says_where_in_the_json() {
    let cases = [
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALOW"}]}"#,
            "syscalls[0].action",
            "unknown action `SCMP_ACT_ALOW`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "raed"], "action": "SCMP_ACT_ALLOW"}]}"#,
            "syscalls[0].names[1]",
            "unknown system call `raed`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "syscalls[0].args[0].index",
            "argument index 7 is past the sixth argument",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}"#,
            "syscalls[0].args[0].op",
            "unknown operator `SCMP_CMP_LIKE`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMN"]}}]}"#,
            "syscalls[0].includes.caps[0]",
            "unknown capability `CAP_SYS_ADMN`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}"#,
            "syscalls[0].includes.minKernel",
            "invalid kernel version `4`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}"#,
            "syscalls[0].action",
            "SCMP_ACT_NOTIFY needs a seccomp agent, which kiln does not run",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}"#,
            "flags[0]",
            "filter flag `SECCOMP_FILTER_FLAG_LOG` is not supported",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}"#,
            "listenerPath",
            "seccomp notify listeners are not supported",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
            "archMap",
            "both `architectures` and `archMap` are given",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_AMD64"]}"#,
            "architectures[0]",
            "unknown architecture `SCMP_ARCH_AMD64`",
        ),
        (
            r#"{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#,
            "defaultAction",
            "the profile has no default action",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#,
            "syscalls[0].names",
            "the rule names no system call",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "defaultErrno": "ENOSYS"}"#,
            "defaultErrno",
            "`ENOSYS` is 38, but errnoRet says 1",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errno": "EWHAT"}]}"#,
            "syscalls[0].errno",
            "unknown errno `EWHAT`",
        ),
    ];
    for (text, at, message) in cases {
        assert_eq!(
            problem(text),
            (at.to_string(), message.to_string()),
            "{text}"
        );
    }
    // An unknown key, a wrong type: serde's message, at the key's path.
    let (at, message) = problem(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "argz": []}]}"#,
    );
    assert_eq!(at, "syscalls[0].argz");
    assert!(message.starts_with("unknown field `argz`"), "{message}");
    let (at, message) = problem(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(at, "syscalls[0].names");
    assert!(message.contains("expected a sequence"), "{message}");
    let (at, _) = problem("{ not json");
    assert_eq!(at, ".");
    // The help of a misspelt name.
    let error = Profile::parse(
        "p.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["clone4"], "action": "SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap_err();
    let help = miette::Diagnostic::help(&error).unwrap().to_string();
    assert!(help.starts_with("did you mean `clone"), "{help}");
    assert_eq!(
        error.to_string(),
        "seccomp profile p.json: at `syscalls[0].names[0]`: unknown system call `clone4`"
    );
}

#[test]
fn an_oci_spec_kiln_cannot_apply_is_refused() {
    let mut notify = default_seccomp(&default_caps());
    notify.set_default_action(LinuxSeccompAction::ScmpActNotify);
    let mut flags = default_seccomp(&default_caps());
    flags.set_flags(Some(vec![
        oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    ]));
    let mut unknown = default_seccomp(&default_caps());
    let mut rule = oci_spec::runtime::LinuxSyscall::default();
    rule.set_names(vec!["no_such_call".into()]);
    rule.set_action(LinuxSeccompAction::ScmpActErrno);
    unknown.set_syscalls(Some(vec![rule]));
    for seccomp in [notify, flags, unknown] {
        let error = SeccompFilter::from_spec(&seccomp, "custom").unwrap_err();
        assert!(matches!(error, SeccompError::Invalid { .. }), "{error:?}");
    }
}
