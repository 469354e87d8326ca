//! The probes' parsers on samples of what the kernel writes, and the system call probes'
//! reading of errnos. (`tests/it/info.rs` runs the whole command on this machine.)

use super::probe::{
    KernelConfig, Permissions, Syscall, parse_filesystems, parse_number, parse_seccomp_status,
    parse_words,
};

#[test]
fn kernel_config_reads_built_in_modules_and_unset_options() {
    let config = KernelConfig::parse(
        "#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_NF_TABLES=y\n\
         CONFIG_NF_TABLES_BRIDGE=m\n# CONFIG_NET_SCH_NETEM is not set\nCONFIG_LOCALVERSION=\"-fc\"\n\
         CONFIG_HZ=1000\n",
    );
    assert!(config.known());
    assert_eq!(config.enabled("NF_TABLES"), Some(true));
    assert_eq!(config.enabled("NF_TABLES_BRIDGE"), Some(true));
    assert_eq!(config.enabled("NET_SCH_NETEM"), Some(false));
    assert_eq!(
        config.enabled("HZ"),
        Some(false),
        "a value is not `y` or `m`"
    );
    assert_eq!(config.enabled("NOT_THERE"), Some(false));
    let unknown = KernelConfig::default();
    assert!(!unknown.known());
    assert_eq!(unknown.enabled("NF_TABLES"), None);
}

#[test]
fn filesystems_are_the_last_word_of_each_line() {
    let text = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\nnodev\tcgroup2\n";
    assert!(parse_filesystems(text, "overlay"));
    assert!(parse_filesystems(text, "ext4"));
    assert!(!parse_filesystems(text, "nodev"));
    assert!(!parse_filesystems(text, "btrfs"));
}

#[test]
fn seccomp_status_and_actions() {
    let status = "Name:\tkiln\nNoNewPrivs:\t0\nSeccomp:\t2\nSeccomp_filters:\t1\n";
    assert_eq!(parse_seccomp_status(status), Some(2));
    assert_eq!(parse_seccomp_status("Name:\tkiln\n"), None);
    assert_eq!(
        parse_words("kill_process kill_thread trap errno user_notif trace log allow\n"),
        [
            "kill_process",
            "kill_thread",
            "trap",
            "errno",
            "user_notif",
            "trace",
            "log",
            "allow"
        ]
    );
}

#[test]
fn numbers_of_proc_sys() {
    assert_eq!(parse_number("96367\n"), Some(96367));
    assert_eq!(parse_number("0"), Some(0));
    assert_eq!(parse_number("x"), None);
}

#[test]
fn errnos_say_whether_a_call_exists() {
    assert_eq!(Syscall::from_errno(0, &[]), Syscall::Works);
    assert_eq!(Syscall::from_errno(libc::ENOSYS, &[]), Syscall::Missing);
    assert_eq!(Syscall::from_errno(libc::EPERM, &[]), Syscall::Refused);
    assert_eq!(
        Syscall::from_errno(libc::EINVAL, &[libc::EINVAL]),
        Syscall::Works
    );
    assert_eq!(
        Syscall::from_errno(libc::EINVAL, &[]),
        Syscall::Other(libc::EINVAL)
    );
    assert!(Syscall::Refused.describe().contains("EPERM"));
}

#[test]
fn a_state_root_is_private_without_group_or_other_bits() {
    assert!(
        Permissions {
            mode: 0o700,
            uid: 0
        }
        .private()
    );
    assert!(
        !Permissions {
            mode: 0o750,
            uid: 0
        }
        .private()
    );
    assert!(
        !Permissions {
            mode: 0o701,
            uid: 0
        }
        .private()
    );
}

#[test]
fn the_system_call_probes_answer_on_this_kernel() {
    // Linux 5.6 and later have all three; seccomp may refuse io_uring when kiln itself runs
    // confined. Either way the answer is one of the four, never a crash.
    for answer in [super::probe::openat2(), super::probe::pidfd()] {
        assert!(
            matches!(answer, Syscall::Works | Syscall::Missing | Syscall::Refused),
            "{answer:?}"
        );
    }
    let _ = super::probe::io_uring();
}
