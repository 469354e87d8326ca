//! The plan as data, executed against the recording fake: the exact kernel operations a
//! spec leads to, in order, and how failures are reported.

use std::path::PathBuf;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use super::container_plan::default_program_len;
use super::fake::{Call, FakeSys, RESOLVED};
use crate::inroot::{Create, How};
use crate::runtime::plan::{PlanOptions, plan_with};
use crate::runtime::sandbox::Report;
use crate::runtime::spec::defaults;
use crate::runtime::{
    ExecFailure, Failure, HostCgroups, OutputTail, SandboxError, SandboxSpec, SetupPlan, SetupStep,
    UserIds, execute, sandbox_oci_spec,
};

pub(super) fn spec() -> SandboxSpec {
    SandboxSpec {
        lower_dirs: vec!["/layers/b".into(), "/layers/a".into()],
        upper_dir: "/step/upper".into(),
        scratch_dir: "/step/scratch".into(),
        argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
        env: vec!["PATH=/usr/bin:/bin".into(), "HOME=/root".into()],
        cwd: "/work".into(),
        user: None,
        hostname: "kiln-build".into(),
        network: false,
        cgroup: None,
    }
}

/// The build sandbox's plan on a cgroup v2 host (the fake tests must not depend on this
/// machine's cgroups).
pub(super) fn plan(spec: &SandboxSpec) -> Result<SetupPlan, SandboxError> {
    plan_with(
        &sandbox_oci_spec(spec),
        &spec.rootfs(),
        PlanOptions::default(),
        &HostCgroups::V2,
    )
}

pub(super) fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Call {
    Call::Mount {
        source: source.map(str::to_string),
        target: target.to_string(),
        fstype: fstype.map(str::to_string),
        flags,
        data: data.map(str::to_string),
    }
}

pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Runs the plan of `spec` against `sys`; returns the failure (execute never succeeds on a
/// fake: a real execve would not return).
fn run_fake(spec: &SandboxSpec, sys: &mut FakeSys) -> (Failure, Vec<usize>) {
    let plan = plan(spec).expect("valid spec");
    let mut begun = Vec::new();
    let failure = execute(&plan.steps, sys, &mut |i| begun.push(i));
    (failure, begun)
}

pub(super) const ROOT: &str = "/step/scratch/mnt/merged";

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// Docker's default capabilities as the kernel's mask (what `CapEff` shows).
pub(super) const DOCKER_CAPS: u64 = 0x0000_0000_a804_25fb;

/// A mountpoint (or bind target directory) resolved inside the root, created when missing.
pub(super) fn resolve_dir(path: &str) -> Call {
    Call::Resolve(path.into(), How::DIR)
}

/// A mount found again inside the root, to change it.
pub(super) fn again(path: &str) -> Call {
    Call::Resolve(path.into(), How::EXISTING)
}

/// `/proc` and `/sys`: a real directory, no link on the way.
fn strict(path: &str) -> Call {
    Call::Resolve(
        path.into(),
        How {
            create: Create::Dir,
            symlinks: false,
        },
    )
}

/// Everything up to and including the pivot into the new root, with the cgroup mount of
/// `cgroup_calls`.
pub(super) fn rootfs_calls(overlay_data: &str, cgroup_calls: Vec<Call>) -> Vec<Call> {
    let mut calls = vec![
        Call::Unshare(CloneFlags::CLONE_NEWCGROUP),
        mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None),
        // The sandbox's own tmpfs: skeleton layer and merged mountpoint, never on disk.
        mount(
            Some("tmpfs"),
            "/step/scratch/mnt",
            Some("tmpfs"),
            NOSUID_NODEV_NOEXEC,
            Some("mode=755,size=64k"),
        ),
        Call::Mkdir("/step/scratch/mnt/skeleton".into(), 0o755),
        Call::Mkdir(ROOT.into(), 0o755),
        Call::Mkdir("/step/scratch/mnt/skeleton/proc".into(), 0o755),
        Call::Mkdir("/step/scratch/mnt/skeleton/dev".into(), 0o755),
        Call::Mkdir("/step/scratch/mnt/skeleton/sys".into(), 0o755),
        mount(
            Some("overlay"),
            ROOT,
            Some("overlay"),
            MsFlags::empty(),
            Some(overlay_data),
        ),
        // Every path of the image from here on: inside the root, onto its descriptor.
        Call::OpenRoot(ROOT.into()),
        strict("/proc"),
        mount(
            Some("proc"),
            RESOLVED,
            Some("proc"),
            NOSUID_NODEV_NOEXEC,
            None,
        ),
        resolve_dir("/dev"),
        mount(
            Some("tmpfs"),
            RESOLVED,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
        resolve_dir("/dev/pts"),
        mount(
            Some("devpts"),
            RESOLVED,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ),
        strict("/sys"),
        mount(
            Some("sysfs"),
            RESOLVED,
            Some("sysfs"),
            MsFlags::MS_RDONLY | NOSUID_NODEV_NOEXEC,
            None,
        ),
    ];
    calls.extend(cgroup_calls);
    calls.extend([
        resolve_dir("/dev/mqueue"),
        mount(
            Some("mqueue"),
            RESOLVED,
            Some("mqueue"),
            NOSUID_NODEV_NOEXEC,
            None,
        ),
        resolve_dir("/dev/shm"),
        mount(
            Some("shm"),
            RESOLVED,
            Some("tmpfs"),
            NOSUID_NODEV_NOEXEC,
            Some("mode=1777,size=65536k"),
        ),
    ]);
    for device in ["null", "zero", "full", "random", "urandom", "tty"] {
        calls.push(Call::Resolve(format!("/dev/{device}"), How::FILE));
        calls.push(mount(
            Some(&format!("/dev/{device}")),
            RESOLVED,
            None,
            MsFlags::MS_BIND,
            None,
        ));
    }
    calls.extend([
        Call::Resolve("/dev".into(), How::EXISTING),
        Call::SymlinkAt("/proc/self/fd".into(), "fd".into()),
        Call::SymlinkAt("/proc/self/fd/0".into(), "stdin".into()),
        Call::SymlinkAt("/proc/self/fd/1".into(), "stdout".into()),
        Call::SymlinkAt("/proc/self/fd/2".into(), "stderr".into()),
        Call::SymlinkAt("pts/ptmx".into(), "ptmx".into()),
    ]);
    calls
}

pub(super) fn v2_cgroup_calls() -> Vec<Call> {
    let flags = NOSUID_NODEV_NOEXEC | MsFlags::MS_RELATIME;
    vec![
        resolve_dir("/sys/fs/cgroup"),
        mount(Some("cgroup2"), RESOLVED, Some("cgroup2"), flags, None),
        again("/sys/fs/cgroup"),
        mount(
            None,
            RESOLVED,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
            None,
        ),
    ]
}

pub(super) fn pivot_calls() -> Vec<Call> {
    vec![
        Call::Chdir(ROOT.into()),
        Call::PivotRoot(".".into(), ".".into()),
        Call::UnmountDetach(".".into()),
        Call::Chdir("/".into()),
    ]
}

/// The masked and read-only paths, each existing (the fake's mounts succeed).
pub(super) fn hardening_calls() -> Vec<Call> {
    let mut calls = Vec::new();
    for path in defaults::MASKED_PATHS {
        calls.push(mount(Some("/dev/null"), path, None, MsFlags::MS_BIND, None));
    }
    for path in defaults::READONLY_PATHS {
        calls.push(mount(
            Some(path),
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        ));
        calls.push(mount(
            None,
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | NOSUID_NODEV_NOEXEC,
            None,
        ));
    }
    calls
}

/// The bounding set shrunk to Docker's capabilities (on a kernel whose last is 40).
pub(super) fn drop_bounding_calls() -> Vec<Call> {
    (0..=40)
        .filter(|cap| DOCKER_CAPS & (1 << cap) == 0)
        .map(Call::DropBounding)
        .collect()
}

pub(super) fn nofile_call() -> Call {
    let limit = defaults::rlimits()[0].hard();
    #[allow(clippy::unnecessary_cast)]
    let nofile = libc::RLIMIT_NOFILE as u32;
    Call::Rlimit(nofile, limit, limit)
}

const OVERLAY: &str = "lowerdir=/layers/b:/layers/a:/step/scratch/mnt/skeleton,upperdir=/step/upper,workdir=/step/scratch/overlay-work,index=off,metacopy=off,redirect_dir=off,volatile";

/// Index of the overlay mount in a plan.
const OVERLAY_STEP: usize = 8;

#[test]
fn plan_runs_the_exact_setup_sequence() {
    let spec = spec();
    let mut sys = FakeSys::new();
    sys.exec_errors.insert("/bin/sh".into(), Errno::ENOEXEC);
    let (failure, begun) = run_fake(&spec, &mut sys);

    let argv = strings(&["sh", "-c", "echo hi"]);
    let env = strings(&["PATH=/usr/bin:/bin", "HOME=/root"]);
    let mut expected = rootfs_calls(OVERLAY, v2_cgroup_calls());
    expected.extend(pivot_calls());
    expected.extend(hardening_calls());
    expected.extend([
        Call::Hostname("kiln-build".into()),
        Call::LoopbackUp,
        Call::Setsid,
        Call::Umask(0o022),
        nofile_call(),
        // Docker's default profile, before the identity steps (no no_new_privs: loading it
        // needs CAP_SYS_ADMIN, which they drop).
        Call::Seccomp(default_program_len()),
    ]);
    expected.extend(drop_bounding_calls());
    expected.extend([
        Call::SetGroups(vec![]),
        Call::SetGid(0),
        Call::SetUid(0),
        Call::Capset(DOCKER_CAPS, DOCKER_CAPS, 0),
        Call::ClearAmbient,
        // A build step may run setuid programs: no no_new_privs.
        Call::ChdirInRoot("/work".into()),
        // The PATH lookup: /usr/bin/sh does not exist, /bin/sh is tried next.
        Call::Execve("/usr/bin/sh".into(), argv.clone(), env.clone()),
        Call::Exists("/usr/bin/sh".into()),
        Call::Execve("/bin/sh".into(), argv, env),
    ]);
    assert_eq!(sys.calls, expected);
    assert_eq!(
        failure,
        Failure::Exec(ExecFailure::Other {
            candidate: 1,
            errno: Errno::ENOEXEC
        })
    );
    let steps = plan(&spec).unwrap().steps.len();
    assert_eq!(
        begun,
        (0..steps).collect::<Vec<_>>(),
        "every step is reported"
    );
    assert_eq!(sys.open, 0, "every descriptor closed before the exec");
}

#[test]
fn namespaces_include_net_only_without_network() {
    let isolated = plan(&spec()).unwrap();
    assert_eq!(
        isolated.namespaces,
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNET
    );
    // The cgroup namespace is unshared by the child, first thing.
    assert_eq!(
        isolated.steps[0],
        SetupStep::Unshare {
            flags: CloneFlags::CLONE_NEWCGROUP
        }
    );
    let shared = plan(&SandboxSpec {
        network: true,
        ..spec()
    })
    .unwrap();
    assert!(!shared.namespaces.contains(CloneFlags::CLONE_NEWNET));
    assert!(shared.namespaces.contains(CloneFlags::CLONE_NEWPID));
    // Never touch the host's interfaces: no `lo up` in the host's network namespace.
    assert!(!shared.steps.contains(&SetupStep::LoopbackUp));
    assert!(isolated.steps.contains(&SetupStep::LoopbackUp));
}

#[test]
fn user_is_switched_groups_first_before_the_working_directory() {
    let spec = SandboxSpec {
        user: Some(UserIds {
            uid: 1000,
            gid: 100,
            groups: vec![100, 27],
        }),
        ..spec()
    };
    let mut sys = FakeSys::new();
    run_fake(&spec, &mut sys);
    let mut expected = vec![
        Call::Hostname("kiln-build".into()),
        Call::LoopbackUp,
        Call::Setsid,
        Call::Umask(0o022),
        nofile_call(),
        Call::Seccomp(default_program_len()),
        // Permitted capabilities survive the change to a non-root uid.
        Call::KeepCaps,
    ];
    expected.extend(drop_bounding_calls());
    expected.extend([
        Call::SetGroups(vec![100, 27]),
        Call::SetGid(100),
        Call::SetUid(1000),
        Call::Capset(DOCKER_CAPS, DOCKER_CAPS, 0),
        Call::ClearAmbient,
        Call::ChdirInRoot("/work".into()),
    ]);
    let at = sys
        .calls
        .iter()
        .position(|c| *c == Call::Hostname("kiln-build".into()))
        .expect("hostname set");
    assert_eq!(sys.calls[at..at + expected.len()], expected);
}

#[test]
fn no_lower_layers_leaves_the_skeleton_as_the_only_lower() {
    let spec = SandboxSpec {
        lower_dirs: vec![],
        ..spec()
    };
    let mut sys = FakeSys::new();
    run_fake(&spec, &mut sys);
    assert_eq!(
        sys.calls[OVERLAY_STEP],
        mount(
            Some("overlay"),
            ROOT,
            Some("overlay"),
            MsFlags::empty(),
            Some(
                "lowerdir=/step/scratch/mnt/skeleton,upperdir=/step/upper,workdir=/step/scratch/overlay-work,index=off,metacopy=off,redirect_dir=off,volatile"
            ),
        )
    );
}

#[test]
fn overlay_paths_are_escaped() {
    let spec = SandboxSpec {
        lower_dirs: vec!["/l/a,b:c\\d".into()],
        ..spec()
    };
    let plan = plan(&spec).unwrap();
    let SetupStep::Mount {
        data: Some(data), ..
    } = &plan.steps[OVERLAY_STEP]
    else {
        panic!("the overlay mount: {:?}", plan.steps[OVERLAY_STEP]);
    };
    assert!(
        data.to_str()
            .unwrap()
            .starts_with(r"lowerdir=/l/a\,b\:c\\d:/step/scratch/mnt/skeleton,"),
        "{data:?}"
    );
}

#[test]
fn too_many_layers_for_one_mount_is_an_error() {
    let spec = SandboxSpec {
        lower_dirs: (0..100)
            .map(|i| PathBuf::from(format!("/var/lib/kiln/store/layers/{i:0>40}")))
            .collect(),
        ..spec()
    };
    assert!(matches!(
        plan(&spec),
        Err(SandboxError::OverlayOptionsTooLong { len }) if len > 4095
    ));
}

#[test]
fn invalid_specs_are_rejected_before_anything_runs() {
    let cases: Vec<(SandboxSpec, &str)> = vec![
        (
            SandboxSpec {
                upper_dir: "relative/upper".into(),
                ..spec()
            },
            "the sandbox needs an absolute upper directory, got `relative/upper`",
        ),
        (
            SandboxSpec {
                lower_dirs: vec!["layer".into()],
                ..spec()
            },
            "the sandbox needs an absolute lower directory, got `layer`",
        ),
        (
            SandboxSpec {
                upper_dir: "/step/scratch/upper".into(),
                ..spec()
            },
            "the upper directory `/step/scratch/upper` overlaps the scratch directory",
        ),
        (
            SandboxSpec {
                lower_dirs: vec!["/step".into()],
                ..spec()
            },
            "the lower directory `/step` overlaps the scratch directory",
        ),
        (
            SandboxSpec {
                cwd: "work".into(),
                ..spec()
            },
            "the sandbox needs an absolute working directory, got `work`",
        ),
        (
            SandboxSpec {
                argv: vec![],
                ..spec()
            },
            "the command is empty",
        ),
        (
            SandboxSpec {
                argv: vec!["".into()],
                ..spec()
            },
            "the command is empty",
        ),
        (
            SandboxSpec {
                env: vec!["NOEQUALS".into()],
                ..spec()
            },
            "environment entry `NOEQUALS` is not of the form KEY=VALUE",
        ),
        (
            SandboxSpec {
                hostname: "h".repeat(65),
                ..spec()
            },
            "is longer than 64 bytes",
        ),
        (
            SandboxSpec {
                argv: vec!["sh".into(), "a\0b".into()],
                ..spec()
            },
            "the command contains a NUL byte",
        ),
    ];
    for (spec, message) in cases {
        let error = plan(&spec).expect_err(message);
        assert!(error.to_string().contains(message), "{error} vs {message}");
    }
}

fn exec_candidates(spec: &SandboxSpec) -> Vec<String> {
    let plan = plan(spec).unwrap();
    let Some(SetupStep::Exec { candidates, .. }) = plan.steps.last() else {
        panic!("the last step execs");
    };
    candidates
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .collect()
}

#[test]
fn command_lookup_uses_the_env_path_or_the_default() {
    assert_eq!(exec_candidates(&spec()), ["/usr/bin/sh", "/bin/sh"]);
    let no_path = SandboxSpec {
        env: vec![],
        ..spec()
    };
    assert_eq!(
        exec_candidates(&no_path),
        [
            "/usr/local/sbin/sh",
            "/usr/local/bin/sh",
            "/usr/sbin/sh",
            "/usr/bin/sh",
            "/sbin/sh",
            "/bin/sh"
        ]
    );
    let odd_path = SandboxSpec {
        env: vec!["PATH=/a".into(), "PATH=/opt/bin/::/x".into()],
        ..spec()
    };
    assert_eq!(exec_candidates(&odd_path), ["/opt/bin/sh", "/x/sh"]);
    let with_slash = SandboxSpec {
        argv: vec!["./run.sh".into()],
        ..spec()
    };
    assert_eq!(exec_candidates(&with_slash), ["./run.sh"]);
}

#[test]
fn a_failing_step_stops_the_setup_and_names_its_index() {
    let mut sys = FakeSys {
        fail_call: Some((1, Errno::EINVAL)),
        ..FakeSys::new()
    };
    let (failure, begun) = run_fake(&spec(), &mut sys);
    assert_eq!(
        failure,
        Failure::Step {
            index: 1,
            errno: Errno::EINVAL
        }
    );
    assert_eq!(begun, [0, 1]);
    assert_eq!(sys.calls.len(), 2, "nothing runs after the failure");
}

#[test]
fn exec_failures_are_told_apart() {
    // Found but not executable somewhere on PATH, absent elsewhere → 126.
    let mut sys = FakeSys::new();
    sys.exec_errors.insert("/usr/bin/sh".into(), Errno::EACCES);
    assert_eq!(
        run_fake(&spec(), &mut sys).0,
        Failure::Exec(ExecFailure::NotExecutable { candidate: 0 })
    );
    // The file exists, yet execve says ENOENT: its interpreter is missing.
    let mut sys = FakeSys::new();
    sys.existing.insert("/bin/sh".into());
    assert_eq!(
        run_fake(&spec(), &mut sys).0,
        Failure::Exec(ExecFailure::MissingInterpreter { candidate: 1 })
    );
    // Nowhere at all.
    let mut sys = FakeSys::new();
    assert_eq!(
        run_fake(&spec(), &mut sys).0,
        Failure::Exec(ExecFailure::NotFound)
    );
}

#[test]
fn setup_failures_become_clear_errors() {
    use crate::runtime::sandbox::setup_error;
    let spec = spec();
    let plan = plan(&spec).unwrap();
    let position = |wanted: &dyn Fn(&SetupStep) -> bool| {
        plan.steps
            .iter()
            .position(wanted)
            .expect("the step is planned")
    };
    let chdir = position(&|s| matches!(s, SetupStep::ChdirInRoot { .. }));
    let cwd = setup_error(
        &plan,
        Failure::Step {
            index: chdir,
            errno: Errno::ENOENT,
        },
    );
    assert_eq!(
        cwd.to_string(),
        "working directory `/work` does not exist in the image"
    );
    let mount = setup_error(
        &plan,
        Failure::Step {
            index: OVERLAY_STEP,
            errno: Errno::EINVAL,
        },
    );
    assert!(
        mount
            .to_string()
            .starts_with("sandbox setup failed at `mount -t overlay overlay /step/scratch/mnt/merged -o lowerdir=/layers/b:"),
        "{mount}"
    );
    assert_eq!(mount.exit_code(), 125);
    // A working directory through a magic link, a mountpoint the image made a link, a file
    // bound onto a directory: said in words, with the fix.
    let magic = setup_error(
        &plan,
        Failure::Step {
            index: chdir,
            errno: Errno::ELOOP,
        },
    );
    assert_eq!(
        magic.to_string(),
        "cannot use the working directory `/work` in the container: too many symbolic links on the way, or a /proc magic link"
    );
    let proc =
        position(&|s| matches!(s, SetupStep::Resolve { path, .. } if path.as_c_str() == c"/proc"));
    let linked = setup_error(
        &plan,
        Failure::Step {
            index: proc,
            errno: Errno::ELOOP,
        },
    );
    assert_eq!(
        linked.to_string(),
        "cannot mount proc on `/proc` in the container: it is a symbolic link in the image"
    );
    assert_eq!(linked.exit_code(), 125);
    let not_found = setup_error(&plan, Failure::Exec(ExecFailure::NotFound));
    assert_eq!(not_found.to_string(), "command `sh` not found in the image");
    assert_eq!(not_found.exit_code(), 127);
    let denied = setup_error(
        &plan,
        Failure::Exec(ExecFailure::NotExecutable { candidate: 1 }),
    );
    assert_eq!(
        denied.to_string(),
        "command `sh` (`/bin/sh`) is not executable"
    );
    assert_eq!(denied.exit_code(), 126);
    let interpreter = setup_error(
        &plan,
        Failure::Exec(ExecFailure::MissingInterpreter { candidate: 0 }),
    );
    assert_eq!(interpreter.exit_code(), 127);
    assert!(interpreter.to_string().contains("`/usr/bin/sh`"));
}

#[test]
fn reports_survive_the_pipe_encoding() {
    let reports = [
        Report::Begin(0),
        Report::Begin(41),
        Report::Failed(Failure::Step {
            index: 7,
            errno: Errno::EPERM,
        }),
        Report::Failed(Failure::Exec(ExecFailure::NotFound)),
        Report::Failed(Failure::Exec(ExecFailure::NotExecutable { candidate: 3 })),
        Report::Failed(Failure::Exec(ExecFailure::MissingInterpreter {
            candidate: 2,
        })),
        Report::Failed(Failure::Exec(ExecFailure::Other {
            candidate: 1,
            errno: Errno::ENOEXEC,
        })),
    ];
    for report in reports {
        assert_eq!(Report::decode(&report.encode()), Some(report));
    }
    assert_eq!(Report::decode(&[0xff; 16]), None);
}

#[test]
fn trace_renders_steps_as_commands() {
    let plan = plan(&SandboxSpec {
        user: Some(UserIds {
            uid: 1,
            gid: 2,
            groups: vec![3, 4],
        }),
        ..spec()
    })
    .unwrap();
    let lines: Vec<String> = plan.steps.iter().map(ToString::to_string).collect();
    for expected in [
        "mount --make-rprivate /",
        &format!("mount -t overlay overlay {ROOT} -o {OVERLAY}"),
        &format!("exec {{root}}<{ROOT}  # O_PATH: later paths are resolved inside it"),
        "N=openat2({root}, /proc, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS|RESOLVE_NO_SYMLINKS), mkdir -p inside it",
        "mount -t proc proc /proc/self/fd/N -o nosuid,nodev,noexec  # N: /proc in the root",
        "N=openat2({root}, /dev, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), mkdir -p inside it",
        "mount -t tmpfs tmpfs /proc/self/fd/N -o nosuid,strictatime,mode=755,size=65536k  # N: /dev in the root",
        "N=openat2({root}, /dev/null, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), mkdir -p and touch inside it",
        "mount --bind /dev/null /proc/self/fd/N  # N: /dev/null in the root",
        "N=openat2({root}, /dev, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)",
        "ln -s /proc/self/fd /proc/self/fd/N/fd",
        "mount -t devpts devpts /proc/self/fd/N -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5  # N: /dev/pts in the root",
        "mount -t sysfs sysfs /proc/self/fd/N -o ro,nosuid,nodev,noexec  # N: /sys in the root",
        "mount -t cgroup2 cgroup2 /proc/self/fd/N -o nosuid,nodev,noexec,relatime  # N: /sys/fs/cgroup in the root",
        "mount -o remount,bind,ro,nosuid,nodev,noexec,relatime /proc/self/fd/N  # N: /sys/fs/cgroup in the root",
        "exec {root}>&- N>&-",
        "unshare --cgroup",
        "pivot_root . .",
        "umount --lazy .",
        "mount --bind /dev/null /proc/kcore  # or, for a directory: mount -t tmpfs -o ro tmpfs /proc/kcore",
        "mount --rbind /proc/sys /proc/sys && mount -o remount,bind,ro,nosuid,nodev,noexec /proc/sys",
        "hostname kiln-build",
        "ip link set lo up",
        "setsid",
        "umask 022",
        &format!("prlimit --nofile={0}:{0}", defaults::rlimits()[0].hard()),
        "prctl(PR_SET_KEEPCAPS, 1)",
        "prctl(PR_CAPBSET_DROP) cap_dac_read_search,cap_linux_immutable,cap_net_broadcast,cap_net_admin,cap_ipc_lock,cap_ipc_owner,cap_sys_module,cap_sys_rawio,cap_sys_ptrace,cap_sys_pacct,cap_sys_admin,cap_sys_boot,cap_sys_nice,cap_sys_resource,cap_sys_time,cap_sys_tty_config,cap_lease,cap_audit_control,cap_mac_override,cap_mac_admin,cap_syslog,cap_wake_alarm,cap_block_suspend,cap_audit_read,cap_perfmon,cap_bpf,cap_checkpoint_restore  # keep cap_chown,cap_dac_override,cap_fowner,cap_fsetid,cap_kill,cap_setgid,cap_setuid,cap_setpcap,cap_net_bind_service,cap_net_raw,cap_sys_chroot,cap_mknod,cap_audit_write,cap_setfcap",
        "setgroups [3,4]",
        "setgid 2",
        "setuid 1",
        "capset effective=cap_chown,cap_dac_override,cap_fowner,cap_fsetid,cap_kill,cap_setgid,cap_setuid,cap_setpcap,cap_net_bind_service,cap_net_raw,cap_sys_chroot,cap_mknod,cap_audit_write,cap_setfcap permitted=cap_chown,cap_dac_override,cap_fowner,cap_fsetid,cap_kill,cap_setgid,cap_setuid,cap_setpcap,cap_net_bind_service,cap_net_raw,cap_sys_chroot,cap_mknod,cap_audit_write,cap_setfcap inheritable=none ambient=none",
        "cd /work  # openat2(/, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), fchdir",
        "exec sh -c 'echo hi'",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing {expected:?} in {lines:#?}"
        );
    }
}

#[test]
fn output_tail_keeps_the_last_bytes_and_splits_lines() {
    let mut tail = OutputTail::new(8);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut on_line = |l: &[u8]| lines.push(l.to_vec());
    tail.push(b"first li", &mut on_line);
    tail.push(b"ne\nsecond\nthi", &mut on_line);
    tail.push(b"rd", &mut on_line);
    let kept = tail.finish(&mut on_line);
    assert_eq!(kept, b"nd\nthird");
    assert_eq!(lines, [&b"first line"[..], b"second", b"third"]);

    // Many small chunks: still bounded, still the last bytes.
    let mut tail = OutputTail::new(4);
    for i in 0..1000u32 {
        tail.push(format!("{}", i % 10).as_bytes(), &mut |_| {});
    }
    assert_eq!(tail.finish(&mut |_| {}), b"6789");
}

#[test]
fn an_endless_line_is_handed_on_in_pieces() {
    let mut tail = OutputTail::new(16);
    let mut sizes = Vec::new();
    let chunk = vec![b'x'; 40 * 1024];
    for _ in 0..4 {
        tail.push(&chunk, &mut |l| sizes.push(l.len()));
    }
    tail.finish(&mut |l| sizes.push(l.len()));
    assert_eq!(sizes.iter().sum::<usize>(), 160 * 1024);
    assert!(sizes.iter().all(|&n| n <= 80 * 1024), "{sizes:?}");
}
