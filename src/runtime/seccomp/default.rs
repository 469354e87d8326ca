//! kiln's default seccomp profile: an allow-list equivalent to Docker's (moby's
//! `profiles/seccomp/default.json`), kept as kiln's own table.
//!
//! What it blocks for a container with Docker's default capabilities: everything not
//! listed — new namespaces (`unshare`, `setns`, `clone` with a namespace flag), mounting,
//! kernel keyrings, modules, kexec, reboot, BPF, perf, `ptrace`-like peeking at other
//! processes' memory beyond `process_vm_*`, clock setting, swap, quotas, `userfaultfd`,
//! io_uring (which runs I/O outside the reach of the filter), AF_ALG and AF_VSOCK sockets,
//! unusual `personality` values — and every system call added to the kernel after this
//! table was written. Denied calls fail with EPERM, what programs already expect from a
//! missing privilege. `clone3` fails with ENOSYS instead: its flags sit in memory the
//! filter cannot read, and ENOSYS makes glibc and musl fall back to `clone`, whose flags
//! the filter checks.
//!
//! Capabilities widen it as in Docker: a container holding CAP_SYS_ADMIN may mount and
//! unshare, CAP_SYS_PTRACE may `kcmp`, CAP_SYS_TIME may set the clock, and so on
//! ([`BY_CAPABILITY`]). The table is data; [`profile`] turns it into a [`Profile`] that is
//! resolved, like any user profile, against the container's capabilities.
//!
//! Two deliberate differences from Docker's file: no `minKernel` conditions (kiln needs a
//! kernel far newer than 4.8, so `ptrace` and `process_vm_*` are simply allowed), and no
//! `archMap` (kiln filters the native architecture only; see the module above).

use oci_spec::runtime::{LinuxSeccompArg, LinuxSeccompOperator};

use super::profile::{Action, Condition, Profile, Rule, seccomp_arg};

/// The profile's name in `--trace` and `config.json`'s annotation.
pub const DEFAULT_NAME: &str = "default";

/// Allowed to every container, whatever its capabilities (names another architecture
/// has are dropped when the profile is resolved).
pub const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // Docker allows these on kernels from 4.8 on, where seccomp can no longer be
    // bypassed through ptrace.
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
];

/// Allowed on one architecture family only (Docker's `includes.arches`).
pub const BY_ARCH: &[(&[&str], &[&str])] = &[
    (&["ppc64le"], &["sync_file_range2", "swapcontext"]),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "x86"], &["modify_ldt"]),
    (
        &["s390", "s390x"],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    (&["riscv64"], &["riscv_flush_icache"]),
];

/// Allowed to a container that holds the capability (Docker's `includes.caps`). A later
/// `--cap-add` composes: the profile is resolved against the final capability set.
pub const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// `clone` flags that make a namespace (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
/// NEWPID, NEWNET): without CAP_SYS_ADMIN, `clone` is allowed only with none of them.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7e02_0000;

/// The `personality(2)` values allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26 |
/// PER_LINUX32, and 0xffffffff (query only).
pub const PERSONAS: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Socket families that are refused: AF_ALG (38, the kernel's crypto API) and AF_VSOCK
/// (40, to the hypervisor). All others are allowed.
pub const DENIED_SOCKET_FAMILIES: [u64; 2] = [38, 40];

fn arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> Vec<LinuxSeccompArg> {
    vec![seccomp_arg(index, op, value, value_two)]
}

fn rule(names: &[&str], action: Action, args: Vec<LinuxSeccompArg>) -> Rule {
    Rule {
        names: names.iter().map(|n| (*n).to_string()).collect(),
        action,
        errno: None,
        args,
        includes: Condition::default(),
        excludes: Condition::default(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

/// The default profile: deny with EPERM unless a rule allows.
pub fn profile() -> Profile {
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpGt, ScmpCmpLt, ScmpCmpMaskedEq};
    let mut rules = vec![rule(ALLOWED, Action::Allow, Vec::new())];
    let [alg, vsock] = DENIED_SOCKET_FAMILIES;
    rules.push(rule(
        &["socket"],
        Action::Allow,
        arg(0, ScmpCmpLt, alg, None),
    ));
    for family in alg + 1..vsock {
        rules.push(rule(
            &["socket"],
            Action::Allow,
            arg(0, ScmpCmpEq, family, None),
        ));
    }
    rules.push(rule(
        &["socket"],
        Action::Allow,
        arg(0, ScmpCmpGt, vsock, None),
    ));
    for persona in PERSONAS {
        rules.push(rule(
            &["personality"],
            Action::Allow,
            arg(0, ScmpCmpEq, persona, None),
        ));
    }
    for (arches, names) in BY_ARCH {
        let mut r = rule(names, Action::Allow, Vec::new());
        r.includes.arches = strings(arches);
        rules.push(r);
    }
    for (cap, names) in BY_CAPABILITY {
        let mut r = rule(names, Action::Allow, Vec::new());
        r.includes.caps = vec![(*cap).to_string()];
        rules.push(r);
    }
    let without_sys_admin = || Condition {
        caps: vec!["CAP_SYS_ADMIN".into()],
        ..Condition::default()
    };
    // clone's flags are its first argument, except on s390 (second).
    let mut clone = rule(
        &["clone"],
        Action::Allow,
        arg(0, ScmpCmpMaskedEq, CLONE_NAMESPACE_FLAGS, Some(0)),
    );
    clone.excludes = without_sys_admin();
    clone.excludes.arches = strings(&["s390", "s390x"]);
    rules.push(clone);
    let mut clone_s390 = rule(
        &["clone"],
        Action::Allow,
        arg(1, ScmpCmpMaskedEq, CLONE_NAMESPACE_FLAGS, Some(0)),
    );
    clone_s390.includes.arches = strings(&["s390", "s390x"]);
    clone_s390.excludes = without_sys_admin();
    rules.push(clone_s390);
    let mut clone3 = rule(&["clone3"], Action::Errno, Vec::new());
    clone3.errno = Some(libc::ENOSYS as u32);
    clone3.excludes = without_sys_admin();
    rules.push(clone3);
    Profile {
        name: DEFAULT_NAME.to_string(),
        default_action: Action::Errno,
        default_errno: Some(libc::EPERM as u32),
        rules,
    }
}
