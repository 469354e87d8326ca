//! The plan of a container spec against the recording fake: what a container adds to the
//! build sandbox's setup (cgroupfs of a v1 host, volumes, created working directory, a
//! controlling terminal, no_new_privs, the seccomp filter), and how the hardening steps behave.

use std::ffi::CString;

use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType, Spec};

use super::fake::{Call, FakeSys, RESOLVED};
use super::plan::{
    DOCKER_CAPS, again, drop_bounding_calls, hardening_calls, mount, nofile_call, pivot_calls,
    resolve_dir, rootfs_calls, strings,
};
use crate::image::RuntimeConfig;
use crate::inroot::How;
use crate::runtime::plan::{PlanOptions, plan_with};
use crate::runtime::spec::{RunOptions, Volume, container_spec};
use crate::runtime::{
    Hierarchy, HostCgroups, RootfsLayout, SandboxError, SeccompFilter, SetupStep, default_seccomp,
    execute,
};

pub(super) fn default_program_len() -> usize {
    SeccompFilter::from_spec(
        &default_seccomp(&crate::runtime::spec::defaults::DEFAULT_CAPABILITIES),
        "default",
    )
    .unwrap()
    .program()
    .len()
}

fn layout() -> RootfsLayout {
    RootfsLayout {
        lower_dirs: vec!["/layers/b".into(), "/layers/a".into()],
        upper_dir: "/step/upper".into(),
        scratch_dir: "/step/scratch".into(),
    }
}

const OVERLAY: &str = "lowerdir=/layers/b:/layers/a:/step/scratch/mnt/skeleton,upperdir=/step/upper,workdir=/step/scratch/overlay-work,index=off,metacopy=off,redirect_dir=off,volatile";

/// A v1 host with two hierarchies, a v2 `unified` and a comount link.
fn v1_host() -> HostCgroups {
    HostCgroups::V1 {
        hierarchies: vec![
            Hierarchy {
                name: "memory".into(),
                fstype: "cgroup".into(),
                options: "memory".into(),
            },
            Hierarchy {
                name: "unified".into(),
                fstype: "cgroup2".into(),
                options: String::new(),
            },
        ],
        links: vec![("cpuacct".into(), "cpu,cpuacct".into())],
    }
}

fn v1_cgroup_calls() -> Vec<Call> {
    let base = "/sys/fs/cgroup";
    let restrict = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let flags = restrict | MsFlags::MS_RELATIME;
    let seal = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags;
    vec![
        resolve_dir(base),
        mount(
            Some("tmpfs"),
            RESOLVED,
            Some("tmpfs"),
            restrict,
            Some("mode=755"),
        ),
        resolve_dir(&format!("{base}/memory")),
        mount(
            Some("cgroup"),
            RESOLVED,
            Some("cgroup"),
            flags,
            Some("memory"),
        ),
        again(&format!("{base}/memory")),
        mount(None, RESOLVED, None, seal, None),
        resolve_dir(&format!("{base}/unified")),
        mount(Some("cgroup2"), RESOLVED, Some("cgroup2"), flags, None),
        again(&format!("{base}/unified")),
        mount(None, RESOLVED, None, seal, None),
        again(base),
        Call::SymlinkAt("cpu,cpuacct".into(), "cpuacct".into()),
        again(base),
        mount(
            None,
            RESOLVED,
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | restrict,
            Some("mode=755"),
        ),
    ]
}

fn container(options: &RunOptions) -> Spec {
    let image = RuntimeConfig {
        env: vec!["PATH=/bin".into()],
        cmd: Some(vec!["app".into()]),
        ..RuntimeConfig::default()
    };
    container_spec(&image, options, &[]).unwrap()
}

#[test]
fn a_container_plan_adds_volumes_cwd_tty_and_no_new_privs() {
    let volumes = tempfile::tempdir().unwrap();
    let file = volumes.path().join("app.conf");
    std::fs::write(&file, "").unwrap();
    let options = RunOptions {
        args: vec!["app".into()],
        hostname: Some("web".into()),
        workdir: Some("/srv/app".into()),
        user: Some("1000:1000".into()),
        volumes: vec![
            Volume {
                source: volumes.path().to_path_buf(),
                destination: "/data".into(),
                read_only: true,
                ..Default::default()
            },
            Volume {
                source: file.clone(),
                destination: "/etc/app/app.conf".into(),
                read_only: false,
                ..Default::default()
            },
        ],
        tty: true,
        ..RunOptions::default()
    };
    let spec = container(&options);
    let plan = plan_with(
        &spec,
        &layout(),
        PlanOptions {
            create_cwd: true,
            controlling_terminal: true,
            init: None,
        },
        &v1_host(),
    )
    .unwrap();
    let mut sys = FakeSys::new();
    execute(&plan.steps, &mut sys, &mut |_| {});

    let mut expected = rootfs_calls(OVERLAY, v1_cgroup_calls());
    // The volumes come after Docker's mounts (and before the devices), each resolved
    // inside the root and mounted onto its descriptor.
    let devices_at = expected
        .iter()
        .position(|c| *c == Call::Resolve("/dev/null".into(), How::FILE))
        .unwrap();
    let source = volumes.path().to_str().unwrap();
    let volume_calls = vec![
        resolve_dir("/data"),
        mount(
            Some(source),
            RESOLVED,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        ),
        // Found again: the descriptor names the directory under the new mount.
        again("/data"),
        mount(
            None,
            RESOLVED,
            None,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None,
        ),
        mount(
            None,
            RESOLVED,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        ),
        // A file's target is a file, its parents made inside the root.
        Call::Resolve("/etc/app/app.conf".into(), How::FILE),
        mount(
            Some(file.to_str().unwrap()),
            RESOLVED,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        ),
        again("/etc/app/app.conf"),
        mount(
            None,
            RESOLVED,
            None,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None,
        ),
    ];
    expected.splice(devices_at..devices_at, volume_calls);
    // The working directory, created inside the root when missing.
    expected.push(resolve_dir("/srv/app"));
    expected.extend(pivot_calls());
    expected.extend(hardening_calls());
    expected.extend([
        Call::Hostname("web".into()),
        Call::LoopbackUp,
        Call::Setsid,
        Call::ControllingTerminal,
        Call::Umask(0o022),
        nofile_call(),
        Call::KeepCaps,
    ]);
    expected.extend(drop_bounding_calls());
    expected.extend([
        Call::SetGroups(vec![]),
        Call::SetGid(1000),
        Call::SetUid(1000),
        Call::Capset(DOCKER_CAPS, DOCKER_CAPS, 0),
        Call::ClearAmbient,
        // As the user, before no_new_privs and the filter.
        Call::ChdirInRoot("/srv/app".into()),
        Call::NoNewPrivs,
        Call::Seccomp(default_program_len()),
    ]);
    let env = strings(&["HOSTNAME=web", "PATH=/bin", "TERM=xterm", "HOME=/"]);
    expected.push(Call::Execve("/bin/app".into(), strings(&["app"]), env));
    expected.push(Call::Exists("/bin/app".into()));
    assert_eq!(sys.calls, expected);
    assert_eq!(sys.open, 0, "every descriptor closed before the exec");
}

#[test]
fn masking_falls_back_to_tmpfs_for_directories_and_skips_what_is_missing() {
    let steps = [
        SetupStep::MaskPath {
            path: CString::new("/proc/kcore").unwrap(),
        },
        SetupStep::ReadonlyPath {
            path: CString::new("/proc/bus").unwrap(),
        },
        SetupStep::MaskPath {
            path: CString::new("/sys/firmware").unwrap(),
        },
    ];
    let mut sys = FakeSys::new();
    // Missing: both kinds of step skip it. A directory: /dev/null cannot cover it.
    sys.mount_errors.insert("/proc/kcore".into(), Errno::ENOENT);
    sys.mount_errors.insert("/proc/bus".into(), Errno::ENOENT);
    sys.mount_errors
        .insert("/sys/firmware".into(), Errno::ENOTDIR);
    let failure = execute(&steps, &mut sys, &mut |_| {});
    assert_eq!(
        sys.calls,
        [
            mount(
                Some("/dev/null"),
                "/proc/kcore",
                None,
                MsFlags::MS_BIND,
                None
            ),
            mount(
                Some("/proc/bus"),
                "/proc/bus",
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None
            ),
            mount(
                Some("/dev/null"),
                "/sys/firmware",
                None,
                MsFlags::MS_BIND,
                None
            ),
            mount(
                Some("tmpfs"),
                "/sys/firmware",
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None
            ),
        ]
    );
    // The fake fails the tmpfs too (every mount onto that path): that error is reported.
    assert_eq!(
        failure,
        crate::runtime::Failure::Step {
            index: 2,
            errno: Errno::ENOTDIR
        }
    );
}

#[test]
fn bounding_set_drops_stop_at_the_kernels_last_capability() {
    let steps = [SetupStep::DropBoundingCaps { keep: DOCKER_CAPS }];
    let mut sys = FakeSys::new();
    sys.last_cap = 37;
    execute(&steps, &mut sys, &mut |_| {});
    let dropped: Vec<u32> = sys
        .calls
        .iter()
        .map(|c| match c {
            Call::DropBounding(cap) => *cap,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(dropped.last(), Some(&37));
    assert!(dropped.iter().all(|cap| DOCKER_CAPS & (1 << cap) == 0));
}

#[test]
fn a_target_the_image_made_unusable_stops_the_setup_with_a_clear_error() {
    let volumes = tempfile::tempdir().unwrap();
    let file = volumes.path().join("app.conf");
    std::fs::write(&file, "").unwrap();
    let options = RunOptions {
        args: vec!["app".into()],
        volumes: vec![
            Volume {
                source: file.clone(),
                destination: "/etc".into(),
                read_only: false,
                ..Default::default()
            },
            Volume {
                source: volumes.path().to_path_buf(),
                destination: "/bin/sh".into(),
                read_only: false,
                ..Default::default()
            },
        ],
        ..RunOptions::default()
    };
    let plan = plan_with(
        &container(&options),
        &layout(),
        PlanOptions::default(),
        &HostCgroups::Absent,
    )
    .unwrap();
    let run = |path: &str, errno: Errno| {
        let mut sys = FakeSys::new();
        sys.resolve_errors.insert(path.into(), errno);
        let failure = execute(&plan.steps, &mut sys, &mut |_| {});
        assert_eq!(sys.open, 0, "the root is closed on failure too");
        assert!(
            !sys.calls.iter().any(|c| matches!(c, Call::PivotRoot(..))),
            "nothing runs after the failure"
        );
        crate::runtime::sandbox::setup_error(&plan, failure).to_string()
    };
    assert_eq!(
        run("/etc", Errno::EISDIR),
        format!(
            "cannot bind the file `{}` onto `/etc` in the container: it is a directory in the image",
            file.display()
        )
    );
    assert_eq!(
        run("/bin/sh", Errno::ENOTDIR),
        format!(
            "cannot bind the directory `{}` onto `/bin/sh` in the container: it, or a directory on its way, is not a directory in the image",
            volumes.path().display()
        )
    );
    assert_eq!(
        run("/sys", Errno::ELOOP),
        "cannot mount sysfs on `/sys` in the container: it is a symbolic link in the image"
    );
    assert_eq!(
        run("/dev/null", Errno::ELOOP),
        "cannot bind the host's device onto `/dev/null` in the container: too many symbolic links on the way, or a /proc magic link"
    );
}

#[test]
fn steps_on_a_resolved_descriptor_need_one() {
    let steps = [SetupStep::Mount {
        source: None,
        target: crate::runtime::Target::Resolved(CString::new("/x").unwrap()),
        fstype: None,
        flags: MsFlags::MS_BIND,
        data: None,
    }];
    let mut sys = FakeSys::new();
    let failure = execute(&steps, &mut sys, &mut |_| {});
    assert_eq!(
        failure,
        crate::runtime::Failure::Step {
            index: 0,
            errno: Errno::EBADF
        }
    );
    assert!(sys.calls.is_empty(), "never a mount onto nothing");
}

#[test]
fn unsupported_specs_are_refused() {
    let base = container(&RunOptions::default());
    let with_namespaces = |namespaces| {
        let mut spec = base.clone();
        let mut linux = spec.linux().clone().unwrap();
        linux.set_namespaces(Some(namespaces));
        spec.set_linux(Some(linux));
        spec
    };
    let ns = |typ, path: Option<&str>| {
        let mut builder = LinuxNamespaceBuilder::default().typ(typ);
        if let Some(path) = path {
            builder = builder.path(path);
        }
        builder.build().unwrap()
    };
    let cases = [
        (
            with_namespaces(vec![
                ns(LinuxNamespaceType::Mount, None),
                ns(LinuxNamespaceType::Network, Some("/run/netns/x")),
            ]),
            "kiln's runtime does not support joining an existing net namespace",
        ),
        (
            with_namespaces(vec![
                ns(LinuxNamespaceType::Mount, None),
                ns(LinuxNamespaceType::User, None),
            ]),
            "kiln's runtime does not support a user namespace",
        ),
        (
            with_namespaces(vec![ns(LinuxNamespaceType::Pid, None)]),
            "without a mount namespace",
        ),
    ];
    for (spec, message) in cases {
        let error = plan_with(&spec, &layout(), PlanOptions::default(), &HostCgroups::V2)
            .expect_err(message);
        assert!(error.to_string().contains(message), "{error}");
    }
    let mut escaping = base.clone();
    let mut mounts = escaping.mounts().clone().unwrap();
    mounts[0].set_destination("/proc/../../etc".into());
    escaping.set_mounts(Some(mounts));
    assert!(matches!(
        plan_with(
            &escaping,
            &layout(),
            PlanOptions::default(),
            &HostCgroups::V2
        ),
        Err(SandboxError::BadMountDestination { .. })
    ));
    // An image's `WorkingDir` with `..` is named as what it is, not as a mount.
    let mut climbing = base.clone();
    let mut process = climbing.process().clone().unwrap();
    process.set_cwd("/proc/self/cwd/../../tmp".into());
    climbing.set_process(Some(process));
    let options = PlanOptions {
        create_cwd: true,
        ..PlanOptions::default()
    };
    let error = plan_with(&climbing, &layout(), options, &HostCgroups::V2).unwrap_err();
    assert!(
        matches!(&error, SandboxError::BadWorkdir { path } if path == "/proc/self/cwd/../../tmp"),
        "{error:?}"
    );
}

#[test]
fn host_cgroups_are_read_from_mountinfo() {
    let hybrid = "\
25 1 8:1 / / rw - ext4 /dev/sda1 rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
";
    let links = vec![("cpu".to_string(), "cpu,cpuacct".to_string())];
    assert_eq!(
        HostCgroups::from_mountinfo(hybrid, links.clone()),
        HostCgroups::V1 {
            hierarchies: vec![
                Hierarchy {
                    name: "unified".into(),
                    fstype: "cgroup2".into(),
                    options: String::new()
                },
                Hierarchy {
                    name: "systemd".into(),
                    fstype: "cgroup".into(),
                    options: "xattr,name=systemd".into()
                },
                Hierarchy {
                    name: "cpu,cpuacct".into(),
                    fstype: "cgroup".into(),
                    options: "cpu,cpuacct".into()
                },
            ],
            links,
        }
    );
    let v2 = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
    assert_eq!(HostCgroups::from_mountinfo(v2, vec![]), HostCgroups::V2);
    assert_eq!(HostCgroups::from_mountinfo("", vec![]), HostCgroups::Absent);
}

fn step_index(steps: &[SetupStep], wanted: impl Fn(&SetupStep) -> bool) -> usize {
    steps
        .iter()
        .position(wanted)
        .unwrap_or_else(|| panic!("no such step in {steps:#?}"))
}

#[test]
fn the_seccomp_filter_comes_after_no_new_privs_and_right_before_exec() {
    let spec = container(&RunOptions {
        args: vec!["app".into()],
        ..RunOptions::default()
    });
    let plan = plan_with(
        &spec,
        &layout(),
        PlanOptions::default(),
        &HostCgroups::Absent,
    )
    .unwrap();
    let steps = &plan.steps;
    let seccomp = step_index(steps, |s| matches!(s, SetupStep::Seccomp { .. }));
    let no_new_privs = step_index(steps, |s| *s == SetupStep::NoNewPrivs);
    let capabilities = step_index(steps, |s| matches!(s, SetupStep::SetCapabilities { .. }));
    assert!(capabilities < no_new_privs && no_new_privs + 1 == seccomp);
    // Only the exec follows; the working directory was entered before no_new_privs.
    assert!(matches!(
        steps[no_new_privs - 1],
        SetupStep::ChdirInRoot { .. }
    ));
    assert!(matches!(steps[seccomp + 1], SetupStep::Exec { .. }));
    assert_eq!(seccomp + 2, steps.len());
    assert_eq!(
        steps
            .iter()
            .filter(|s| matches!(s, SetupStep::Seccomp { .. }))
            .count(),
        1
    );
    let line = steps[seccomp].to_string();
    assert!(line.starts_with("seccomp: profile default, "), "{line}");
    assert!(line.contains(" rules for "), "{line}");
}

#[test]
fn without_no_new_privs_the_filter_is_loaded_before_the_capabilities_go() {
    let mut spec = container(&RunOptions {
        args: vec!["app".into()],
        ..RunOptions::default()
    });
    let mut process = spec.process().clone().unwrap();
    process.set_no_new_privileges(Some(false));
    spec.set_process(Some(process));
    let plan = plan_with(
        &spec,
        &layout(),
        PlanOptions::default(),
        &HostCgroups::Absent,
    )
    .unwrap();
    let seccomp = step_index(&plan.steps, |s| matches!(s, SetupStep::Seccomp { .. }));
    let drop_bounding = step_index(&plan.steps, |s| {
        matches!(s, SetupStep::DropBoundingCaps { .. })
    });
    assert!(seccomp < drop_bounding);
    assert!(!plan.steps.contains(&SetupStep::NoNewPrivs));
}

#[test]
fn a_spec_without_seccomp_gets_no_filter() {
    let mut spec = container(&RunOptions {
        args: vec!["app".into()],
        ..RunOptions::default()
    });
    let mut linux = spec.linux().clone().unwrap();
    linux.set_seccomp(None);
    spec.set_linux(Some(linux));
    let plan = plan_with(
        &spec,
        &layout(),
        PlanOptions::default(),
        &HostCgroups::Absent,
    )
    .unwrap();
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, SetupStep::Seccomp { .. }))
    );
}

#[test]
fn a_seccomp_profile_kiln_cannot_apply_is_refused() {
    let mut spec = container(&RunOptions {
        args: vec!["app".into()],
        ..RunOptions::default()
    });
    let mut linux = spec.linux().clone().unwrap();
    let mut seccomp = default_seccomp(&crate::runtime::spec::defaults::DEFAULT_CAPABILITIES);
    // A notify listener needs an agent kiln does not run.
    seccomp.set_default_action(oci_spec::runtime::LinuxSeccompAction::ScmpActNotify);
    linux.set_seccomp(Some(seccomp));
    spec.set_linux(Some(linux));
    let error = plan_with(
        &spec,
        &layout(),
        PlanOptions::default(),
        &HostCgroups::Absent,
    )
    .unwrap_err();
    assert!(matches!(error, SandboxError::Seccomp(_)), "{error:?}");
    assert!(error.to_string().contains("SCMP_ACT_NOTIFY"), "{error}");
}

#[test]
fn sysctls_are_written_after_pivot_root_before_proc_sys_is_read_only() {
    let spec = container(&RunOptions {
        args: vec!["app".into()],
        sysctls: vec![
            ("net.ipv4.ip_forward".into(), "1".into()),
            ("kernel.shmmni".into(), "1234".into()),
        ],
        ..RunOptions::default()
    });
    let plan = plan_with(
        &spec,
        &layout(),
        PlanOptions::default(),
        &HostCgroups::Absent,
    )
    .unwrap();
    let steps = &plan.steps;
    let pivot = step_index(steps, |s| matches!(s, SetupStep::PivotRoot { .. }));
    let first = step_index(steps, |s| matches!(s, SetupStep::Sysctl { .. }));
    let read_only = step_index(steps, |s| matches!(s, SetupStep::ReadonlyPath { .. }));
    assert!(pivot < first && first + 2 <= read_only);
    assert_eq!(
        steps[first].to_string(),
        "sysctl -w kernel.shmmni=1234  # /proc/sys/kernel/shmmni of the container's /proc"
    );
    let mut sys = FakeSys::new();
    execute(steps, &mut sys, &mut |_| {});
    let written: Vec<&Call> = sys
        .calls
        .iter()
        .filter(|c| matches!(c, Call::Sysctl(..)))
        .collect();
    assert_eq!(
        written,
        [
            &Call::Sysctl("kernel/shmmni".into(), "1234".into()),
            &Call::Sysctl("net/ipv4/ip_forward".into(), "1".into()),
        ]
    );
    // Without a network namespace of its own, a net.* sysctl would be the machine's.
    let mut host = spec.clone();
    let mut linux = host.linux().clone().unwrap();
    let namespaces = linux
        .namespaces()
        .clone()
        .unwrap()
        .into_iter()
        .filter(|n| n.typ() != LinuxNamespaceType::Network)
        .collect();
    linux.set_namespaces(Some(namespaces));
    host.set_linux(Some(linux));
    let error = plan_with(
        &host,
        &layout(),
        PlanOptions::default(),
        &HostCgroups::Absent,
    )
    .unwrap_err();
    assert!(
        matches!(&error, SandboxError::BadSysctl { name, .. } if name == "net.ipv4.ip_forward"),
        "{error:?}"
    );
}

#[test]
fn a_device_without_the_hosts_node_at_its_path_is_made() {
    let spec = container(&RunOptions {
        args: vec!["app".into()],
        devices: vec!["/dev/null:/dev/extra/null2:rw".parse().unwrap()],
        ..RunOptions::default()
    });
    let plan = plan_with(
        &spec,
        &layout(),
        PlanOptions::default(),
        &HostCgroups::Absent,
    )
    .unwrap();
    let made = step_index(&plan.steps, |s| matches!(s, SetupStep::MakeNode { .. }));
    assert!(matches!(
        &plan.steps[made - 1],
        SetupStep::Resolve { path, how, .. } if path.as_bytes() == b"/dev/extra" && *how == How::DIR
    ));
    assert_eq!(
        plan.steps[made].to_string(),
        "mknod -m 666 /proc/self/fd/N/null2 c 1 3 && chown 0:0 /proc/self/fd/N/null2"
    );
    let mut sys = FakeSys::new();
    execute(&plan.steps, &mut sys, &mut |_| {});
    assert!(
        sys.calls
            .contains(&Call::Mknod("null2".into(), libc_mode(0o666), 0x103)),
        "{:?}",
        sys.calls
    );
    // The standard devices are still the host's, bound.
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, SetupStep::MakeNode { name, .. } if name.as_bytes() == b"null"))
    );
}

fn libc_mode(permissions: u32) -> u32 {
    nix::libc::S_IFCHR | permissions
}

#[test]
fn init_runs_the_sealed_copy_with_the_command_after_two_dashes() {
    let options = RunOptions {
        args: vec!["sh".into(), "-c".into(), "exit 3".into()],
        init: true,
        ..RunOptions::default()
    };
    let spec = container(&options);
    assert_eq!(
        spec.annotations().as_ref().unwrap()[crate::runtime::spec::INIT_ANNOTATION],
        "true"
    );
    let plan = plan_with(
        &spec,
        &layout(),
        PlanOptions {
            init: Some(7),
            ..PlanOptions::default()
        },
        &HostCgroups::Absent,
    )
    .unwrap();
    let last = plan.steps.last().unwrap();
    assert!(matches!(last, SetupStep::ExecInit { init: 7, .. }));
    assert!(
        last.to_string()
            .starts_with("exec kiln-init -- sh -c 'exit 3'"),
        "{last}"
    );
    let mut sys = FakeSys::new();
    execute(&plan.steps, &mut sys, &mut |_| {});
    assert!(matches!(
        sys.calls.last(),
        Some(Call::Execve(path, argv, _)) if path == "fd 7" && argv[..3] == ["kiln-init", "--", "sh"]
    ));
}
