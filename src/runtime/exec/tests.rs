use std::ffi::CString;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use oci_spec::runtime::{Process, User};

use super::join::ExecReport;
use super::*;
use crate::runtime::SetupStep;
use crate::runtime::sandbox::Report;
use crate::runtime::sys::{ExecFailure, Failure};

/// Records setns and fork calls; fails the call numbered `fail` (0-based), and the fork
/// answers `fork_result`.
struct FakeJoin {
    calls: Vec<String>,
    fail: Option<(usize, Errno)>,
    fork_result: i32,
}

impl FakeJoin {
    fn new(fork_result: i32) -> FakeJoin {
        FakeJoin {
            calls: Vec::new(),
            fail: None,
            fork_result,
        }
    }

    fn failing(&mut self) -> Result<(), Errno> {
        match self.fail {
            Some((n, errno)) if n + 1 == self.calls.len() => Err(errno),
            _ => Ok(()),
        }
    }
}

impl JoinSys for FakeJoin {
    fn setns(&mut self, fd: i32, kind: CloneFlags) -> Result<(), Errno> {
        self.calls.push(format!("setns {fd} {:?}", kind.bits()));
        self.failing()
    }

    fn fork_sibling(&mut self) -> Result<i32, Errno> {
        self.calls.push("fork".into());
        self.failing().map(|()| self.fork_result)
    }
}

fn namespaces() -> Vec<(CloneFlags, PathBuf, i32)> {
    vec![
        (CloneFlags::CLONE_NEWNET, "/proc/42/ns/net".into(), 7),
        (CloneFlags::CLONE_NEWPID, "/proc/42/ns/pid".into(), 8),
        (CloneFlags::CLONE_NEWNS, "/proc/42/ns/mnt".into(), 9),
    ]
}

/// The container exec'd into: Docker's defaults, kiln's default seccomp profile.
fn container() -> oci_spec::runtime::Spec {
    crate::runtime::spec::container_spec(
        &Default::default(),
        &crate::runtime::spec::RunOptions {
            args: vec!["sh".into()],
            ..Default::default()
        },
        &[],
    )
    .expect("a spec")
}

fn process(args: &[&str]) -> Process {
    let mut process = crate::runtime::spec::container_spec(
        &Default::default(),
        &crate::runtime::spec::RunOptions {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        &[],
    )
    .expect("a spec")
    .process()
    .clone()
    .expect("a process");
    process.set_cwd("/srv".into());
    process
}

#[test]
fn the_plan_joins_each_namespace_then_forks() {
    let plan = plan_exec(&namespaces(), &process(&["ls"]), &container()).unwrap();
    let rendered: Vec<String> = plan.joins.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "nsenter --net=/proc/42/ns/net",
            "nsenter --pid=/proc/42/ns/pid",
            "nsenter --mount=/proc/42/ns/mnt",
            "fork  # into the joined pid namespace (CLONE_PARENT)",
        ]
    );
    assert_eq!(
        plan.joins[0],
        JoinStep::SetNs {
            fd: 7,
            kind: CloneFlags::CLONE_NEWNET,
            path: CString::new("/proc/42/ns/net").unwrap(),
        }
    );
    assert_eq!(plan.len(), 4 + plan.process.steps.len());
    assert_eq!(
        plan.describe(3),
        "fork  # into the joined pid namespace (CLONE_PARENT)"
    );
    assert_eq!(plan.describe(4), "setsid");
}

#[test]
fn the_process_steps_are_the_containers_without_any_rootfs_setup() {
    let plan = plan_exec(&namespaces(), &process(&["ls", "-l"]), &container()).unwrap();
    let steps = &plan.process.steps;
    assert_eq!(steps[0], SetupStep::NewSession);
    assert!(
        !steps.iter().any(|s| matches!(
            s,
            SetupStep::Mount { .. }
                | SetupStep::PivotRoot { .. }
                | SetupStep::SetHostname { .. }
                | SetupStep::MakeDir { .. }
                | SetupStep::OpenRoot { .. }
                | SetupStep::Resolve { .. }
        )),
        "{steps:#?}"
    );
    assert!(steps.contains(&SetupStep::NoNewPrivs));
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, SetupStep::SetRlimit { .. }))
    );
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, SetupStep::DropBoundingCaps { .. }))
    );
    assert!(!steps.contains(&SetupStep::SetControllingTerminal));
    let n = steps.len();
    // The working directory is resolved inside the container's root, magic links refused
    // (runc's CVE-2024-21626: a `-w /proc/self/fd/N` of a descriptor kiln holds).
    let chdir = steps
        .iter()
        .position(|s| matches!(s, SetupStep::ChdirInRoot { .. }))
        .expect("a working directory step");
    assert_eq!(
        steps[chdir],
        SetupStep::ChdirInRoot {
            path: CString::new("/srv").unwrap()
        }
    );
    assert!(
        chdir
            < steps
                .iter()
                .position(|s| *s == SetupStep::NoNewPrivs)
                .unwrap()
    );
    match &steps[n - 1] {
        SetupStep::Exec { argv, .. } => assert_eq!(
            argv.strings(),
            [CString::new("ls").unwrap(), CString::new("-l").unwrap()]
        ),
        other => panic!("the last step is {other}"),
    }
    assert_eq!(plan.process.command, "ls");
}

#[test]
fn a_terminal_and_another_user_add_their_steps() {
    let mut process = process(&["sh"]);
    process.set_terminal(Some(true));
    let mut user = User::default();
    user.set_uid(1000);
    user.set_gid(100);
    process.set_user(user);
    let steps = plan_exec(&[], &process, &container())
        .unwrap()
        .process
        .steps;
    assert_eq!(steps[1], SetupStep::SetControllingTerminal);
    assert!(steps.contains(&SetupStep::KeepCaps));
    assert!(steps.contains(&SetupStep::SetUid { uid: 1000 }));
    assert!(steps.contains(&SetupStep::SetGid { gid: 100 }));
}

#[test]
fn join_sets_each_namespace_and_the_caller_learns_the_forked_pid() {
    let plan = plan_exec(&namespaces(), &process(&["ls"]), &container()).unwrap();
    let mut sys = FakeJoin::new(1234);
    let mut begun = Vec::new();
    let joined = join(&plan.joins, &mut sys, &mut |i| begun.push(i));
    assert_eq!(joined, Joined::Parent { pid: 1234 });
    assert_eq!(
        sys.calls,
        [
            format!("setns 7 {}", CloneFlags::CLONE_NEWNET.bits()),
            format!("setns 8 {}", CloneFlags::CLONE_NEWPID.bits()),
            format!("setns 9 {}", CloneFlags::CLONE_NEWNS.bits()),
            "fork".to_string(),
        ]
    );
    assert_eq!(begun, [0, 1, 2, 3]);
    // In the forked child, fork answers 0: it goes on with the process's steps.
    let mut child = FakeJoin::new(0);
    assert_eq!(join(&plan.joins, &mut child, &mut |_| {}), Joined::Child);
}

#[test]
fn a_failed_setns_stops_the_join_at_its_step() {
    let plan = plan_exec(&namespaces(), &process(&["ls"]), &container()).unwrap();
    let mut sys = FakeJoin::new(1234);
    sys.fail = Some((1, Errno::EPERM));
    let joined = join(&plan.joins, &mut sys, &mut |_| {});
    assert_eq!(
        joined,
        Joined::Failed {
            index: 1,
            errno: Errno::EPERM
        }
    );
    assert_eq!(
        sys.calls.len(),
        2,
        "nothing after the failure: {:?}",
        sys.calls
    );
    let err = exec_error(
        &plan,
        Failure::Step {
            index: 1,
            errno: Errno::EPERM,
        },
    );
    assert_eq!(
        err.to_string(),
        "sandbox setup failed at `nsenter --pid=/proc/42/ns/pid`"
    );
}

#[test]
fn failures_of_the_process_steps_map_to_run_errors_and_exit_codes() {
    let plan = plan_exec(&namespaces(), &process(&["nosuch"]), &container()).unwrap();
    let not_found = exec_error(&plan, Failure::Exec(ExecFailure::NotFound));
    assert_eq!(not_found.exit_code(), 127);
    assert!(
        not_found.to_string().contains("`nosuch` not found"),
        "{not_found}"
    );
    let chdir = plan.joins.len()
        + plan
            .process
            .steps
            .iter()
            .position(|s| matches!(s, SetupStep::ChdirInRoot { .. }))
            .unwrap();
    let cwd = exec_error(
        &plan,
        Failure::Step {
            index: chdir,
            errno: Errno::ENOENT,
        },
    );
    assert_eq!(
        cwd.to_string(),
        "working directory `/srv` does not exist in the image"
    );
}

#[test]
fn reports_round_trip_including_the_forked_pid() {
    for report in [
        ExecReport::Forked(4242),
        ExecReport::Sandbox(Report::Begin(3)),
        ExecReport::Sandbox(Report::Failed(Failure::Step {
            index: 2,
            errno: Errno::EPERM,
        })),
    ] {
        assert_eq!(ExecReport::decode(&report.encode()), Some(report));
    }
}
