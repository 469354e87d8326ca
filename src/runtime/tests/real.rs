//! Real sandboxes on a tiny root filesystem (dash, cat, rm, sleep and their libraries copied
//! from the host). They need root; without it they say so and pass vacuously (CI runs them
//! as root).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::rootfs::host_rootfs;
use crate::runtime::{
    NoObserver, SandboxError, SandboxObserver, SandboxOutcome, SandboxSpec, SandboxStatus,
    SetupStep, TraceEvent, UserIds, plan, run,
};

/// Returns early from a test when not root.
macro_rules! require_root {
    () => {
        if !crate::test_support::is_root() {
            return;
        }
    };
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("lower");
        fs::create_dir(&lower).unwrap();
        host_rootfs(&lower, &["/bin/sh", "/bin/cat", "/bin/rm", "/bin/sleep"]);
        for dir_name in ["upper", "scratch"] {
            fs::create_dir(dir.path().join(dir_name)).unwrap();
        }
        Fixture { dir }
    }

    fn lower(&self) -> PathBuf {
        self.dir.path().join("lower")
    }

    fn upper(&self) -> PathBuf {
        self.dir.path().join("upper")
    }

    fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    fn spec(&self, script: &str) -> SandboxSpec {
        SandboxSpec {
            lower_dirs: vec![self.lower()],
            upper_dir: self.upper(),
            scratch_dir: self.scratch(),
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/usr/bin:/bin".into()],
            cwd: "/".into(),
            user: None,
            hostname: "kiln-test".into(),
            network: false,
            cgroup: None,
        }
    }

    /// Runs `script`; the command must start.
    fn sh(&self, script: &str) -> (SandboxStatus, String) {
        outcome(run(&self.spec(script), &mut NoObserver).expect("sandbox runs"))
    }

    /// Only the two reusable directories remain, both empty: nothing of the sandbox's
    /// tmpfs leaked onto the host, and overlayfs's work directory was emptied.
    fn assert_scratch_clean(&self) {
        let scratch = self.scratch();
        assert_eq!(
            names(&scratch),
            BTreeSet::from(["mnt".into(), "overlay-work".into()])
        );
        assert!(names(&scratch.join("mnt")).is_empty());
        let work = scratch.join("overlay-work/work");
        assert!(
            !work.exists() || names(&work).is_empty(),
            "{:?}",
            names(&work)
        );
    }
}

fn outcome(outcome: SandboxOutcome) -> (SandboxStatus, String) {
    (
        outcome.status,
        String::from_utf8(outcome.output_tail).unwrap(),
    )
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn exit_code_and_output_tail() {
    require_root!();
    let fixture = Fixture::new();
    let (status, output) = fixture.sh("echo hi; echo oops >&2; exit 3");
    assert_eq!(status, SandboxStatus::Exited(3));
    assert_eq!(output, "hi\noops\n");
    fixture.assert_scratch_clean();
}

#[test]
fn the_command_is_pid_1_with_its_own_hostname() {
    require_root!();
    let fixture = Fixture::new();
    assert_eq!(
        fixture.sh("echo $$"),
        (SandboxStatus::Exited(0), "1\n".into())
    );
    assert_eq!(
        fixture.sh("cat /proc/sys/kernel/hostname"),
        (SandboxStatus::Exited(0), "kiln-test\n".into())
    );
}

#[test]
fn changes_land_in_the_upper_dir_deletions_as_whiteouts() {
    require_root!();
    let fixture = Fixture::new();
    fs::create_dir(fixture.lower().join("etc")).unwrap();
    fs::write(fixture.lower().join("etc/greeting"), "hello\n").unwrap();
    let (status, output) =
        fixture.sh("cat /etc/greeting && echo new > /made && rm /etc/greeting && echo done");
    assert_eq!(
        (status, output.as_str()),
        (SandboxStatus::Exited(0), "hello\ndone\n")
    );

    let upper = fixture.upper();
    // Only what the command changed: no proc/, dev/ or sys/ mountpoints in the layer.
    assert_eq!(names(&upper), BTreeSet::from(["etc".into(), "made".into()]));
    assert_eq!(fs::read_to_string(upper.join("made")).unwrap(), "new\n");
    let whiteout = fs::symlink_metadata(upper.join("etc/greeting")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert_eq!(whiteout.rdev(), 0);
    // The lower layer is untouched.
    assert_eq!(
        fs::read_to_string(fixture.lower().join("etc/greeting")).unwrap(),
        "hello\n"
    );
    fixture.assert_scratch_clean();
}

#[test]
fn dev_proc_and_sys_are_there_and_signals_start_clean() {
    require_root!();
    let fixture = Fixture::new();
    let (status, output) = fixture.sh(
        "test -c /dev/null && test -c /dev/zero && test -c /dev/urandom && test -L /dev/stdout \
         && test -d /dev/shm && echo quiet > /dev/null && echo > /dev/shm/x \
         && ! echo > /sys/kernel/x && cat /proc/self/status",
    );
    assert_eq!(status, SandboxStatus::Exited(0), "{output}");
    assert!(
        output.starts_with("sh: 1: cannot create /sys/kernel/x: Read-only file system"),
        "{output}"
    );
    assert!(output.contains("SigBlk:\t0000000000000000"), "{output}");
    assert!(output.contains("SigIgn:\t0000000000000000"), "{output}");
    assert!(output.contains("Uid:\t0\t0\t0\t0"), "{output}");
    assert!(
        names(&fixture.upper()).is_empty(),
        "/dev and /sys never reach the layer"
    );
}

#[test]
fn without_network_only_lo_exists_and_it_is_up() {
    require_root!();
    let fixture = Fixture::new();
    let (status, output) = fixture.sh("cat /proc/net/dev; cat /sys/class/net/lo/flags");
    assert_eq!(status, SandboxStatus::Exited(0));
    let interfaces: Vec<&str> = output
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim()))
        .collect();
    assert_eq!(interfaces, ["lo"], "{output}");
    // IFF_UP | IFF_LOOPBACK
    assert_eq!(output.lines().last(), Some("0x9"), "{output}");
}

fn host_interfaces(proc_net_dev: &str) -> BTreeSet<String> {
    proc_net_dev
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_string()))
        .collect()
}

#[test]
fn with_network_the_hosts_interfaces_are_shared() {
    require_root!();
    let fixture = Fixture::new();
    let spec = SandboxSpec {
        network: true,
        ..fixture.spec("cat /proc/net/dev")
    };
    let (status, output) = outcome(run(&spec, &mut NoObserver).unwrap());
    assert_eq!(status, SandboxStatus::Exited(0));
    let host = host_interfaces(&fs::read_to_string("/proc/net/dev").unwrap());
    assert_eq!(host_interfaces(&output), host);
}

#[test]
fn user_and_groups_are_switched() {
    require_root!();
    let fixture = Fixture::new();
    let spec = SandboxSpec {
        user: Some(UserIds {
            uid: 1000,
            gid: 1001,
            groups: vec![1001, 20],
        }),
        ..fixture.spec("cat /proc/self/status")
    };
    let (status, output) = outcome(run(&spec, &mut NoObserver).unwrap());
    assert_eq!(status, SandboxStatus::Exited(0), "{output}");
    assert!(output.contains("Uid:\t1000\t1000\t1000\t1000"), "{output}");
    assert!(output.contains("Gid:\t1001\t1001\t1001\t1001"), "{output}");
    assert!(output.contains("Groups:\t20 1001"), "{output}");
}

#[test]
fn env_and_working_directory_are_the_specs_only() {
    require_root!();
    let fixture = Fixture::new();
    fs::create_dir(fixture.lower().join("work")).unwrap();
    let spec = SandboxSpec {
        env: vec!["PATH=/bin".into(), "GREETING=hello there".into()],
        cwd: "/work".into(),
        ..fixture.spec(
            "echo \"$GREETING|$HOME|$(pwd)\"; cat /proc/self/status | grep -c . >/dev/null; umask",
        )
    };
    let (status, output) = outcome(run(&spec, &mut NoObserver).unwrap());
    assert_eq!(status, SandboxStatus::Exited(0), "{output}");
    assert_eq!(output.lines().next(), Some("hello there||/work"));
    assert_eq!(output.lines().last(), Some("0022"));
}

fn expect_error(fixture: &Fixture, spec: SandboxSpec) -> SandboxError {
    let error = run(&spec, &mut NoObserver).expect_err("the command must not start");
    fixture.assert_scratch_clean();
    assert!(names(&fixture.upper()).is_empty());
    error
}

#[test]
fn a_missing_command_is_127_with_a_clear_message() {
    require_root!();
    let fixture = Fixture::new();
    let error = expect_error(
        &fixture,
        SandboxSpec {
            argv: vec!["frobnicate".into()],
            ..fixture.spec("")
        },
    );
    assert!(
        matches!(error, SandboxError::CommandNotFound { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "command `frobnicate` not found in the image"
    );
    assert_eq!(error.exit_code(), 127);
}

#[test]
fn a_non_executable_command_is_126() {
    require_root!();
    let fixture = Fixture::new();
    let script = fixture.lower().join("usr/bin/script");
    fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let error = expect_error(
        &fixture,
        SandboxSpec {
            argv: vec!["script".into()],
            ..fixture.spec("")
        },
    );
    assert!(
        matches!(error, SandboxError::NotExecutable { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "command `script` (`/usr/bin/script`) is not executable"
    );
    assert_eq!(error.exit_code(), 126);
}

#[test]
fn a_missing_interpreter_is_named_as_such() {
    require_root!();
    let fixture = Fixture::new();
    let script = fixture.lower().join("usr/bin/needs-bash");
    fs::write(&script, "#!/bin/bash\necho hi\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let error = expect_error(
        &fixture,
        SandboxSpec {
            argv: vec!["needs-bash".into()],
            ..fixture.spec("")
        },
    );
    assert!(
        matches!(error, SandboxError::MissingInterpreter { .. }),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), 127);
}

#[test]
fn a_missing_working_directory_is_an_error() {
    require_root!();
    let fixture = Fixture::new();
    let error = expect_error(
        &fixture,
        SandboxSpec {
            cwd: "/nowhere".into(),
            ..fixture.spec("true")
        },
    );
    assert_eq!(
        error.to_string(),
        "working directory `/nowhere` does not exist in the image"
    );
}

#[test]
fn no_lower_layers_runs_on_the_skeleton_alone() {
    require_root!();
    let fixture = Fixture::new();
    let spec = SandboxSpec {
        lower_dirs: vec![],
        ..fixture.spec("true")
    };
    let error = expect_error(&fixture, spec);
    assert!(
        matches!(error, SandboxError::CommandNotFound { .. }),
        "{error:?}"
    );
}

/// Counts processes whose command line contains `marker`.
pub(super) fn processes_with(marker: &str) -> usize {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(marker))
        .count()
}

#[test]
fn nothing_leaks_mounts_or_processes() {
    require_root!();
    let fixture = Fixture::new();
    let before = crate::test_support::mounts_mentioning(fixture.dir.path());
    // The background sleep outlives the shell; the kernel must kill it with pid 1.
    let (status, output) = fixture.sh("sleep 31337.25 & echo started; exit 0");
    assert_eq!(
        (status, output.as_str()),
        (SandboxStatus::Exited(0), "started\n")
    );
    let after = crate::test_support::mounts_mentioning(fixture.dir.path());
    assert_eq!(before, after, "the host's mount table changed");
    assert_eq!(
        processes_with("31337.25"),
        0,
        "a sandboxed process survived"
    );
    fixture.assert_scratch_clean();
}

#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    steps: Vec<SetupStep>,
    lines: Vec<String>,
}

impl SandboxObserver for Recorder {
    fn trace(&mut self, event: &TraceEvent<'_>) {
        if let TraceEvent::Step(step) = event {
            self.steps.push((*step).clone());
        }
        self.events.push(event.to_string());
    }

    fn output_line(&mut self, line: &[u8]) {
        self.lines.push(String::from_utf8_lossy(line).into_owned());
    }
}

#[test]
fn trace_reports_every_planned_step_and_lines_stream() {
    require_root!();
    let fixture = Fixture::new();
    let spec =
        fixture.spec("i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done; printf end");
    let mut recorder = Recorder::default();
    let outcome = run(&spec, &mut recorder).unwrap();
    assert_eq!(outcome.status, SandboxStatus::Exited(0));
    assert_eq!(recorder.steps, plan(&spec).unwrap().steps);
    assert!(
        recorder.events[0].starts_with("clone: new mount, pid, ipc, uts, net namespaces"),
        "{:?}",
        recorder.events[0]
    );
    assert_eq!(recorder.events.last().map(String::as_str), Some("exit 0"));
    assert_eq!(recorder.lines.len(), 20001);
    assert_eq!(recorder.lines[19999], "line19999");
    assert_eq!(recorder.lines[20000], "end");
    assert_eq!(outcome.output_tail.len(), crate::runtime::OUTPUT_TAIL_BYTES);
    assert!(outcome.output_tail.ends_with(b"line19999\nend"));
}

#[test]
fn many_sandboxes_in_parallel_threads() {
    require_root!();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let fixture = Fixture::new();
                for i in 0..10 {
                    let (status, output) = fixture.sh(&format!("echo {t}-{i}"));
                    assert_eq!(status, SandboxStatus::Exited(0));
                    assert_eq!(output, format!("{t}-{i}\n"));
                }
                fixture.assert_scratch_clean();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}
