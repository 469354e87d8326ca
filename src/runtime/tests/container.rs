//! Real containers (root, real kernel) on a tiny root filesystem copied from the host:
//! isolation (pid 1, hostname, processes, files, volumes), the hardening (capabilities,
//! no_new_privs, seccomp, masked and read-only paths, mounts denied), rlimits, exit codes, signals,
//! the pty, hooks and the trace. Each test checks that the host's mount table is unchanged
//! and that no process of the container survived.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;

use super::real::processes_with;
use super::rootfs::host_rootfs;
use crate::image::RuntimeConfig;
use crate::runtime::spec::{RunOptions, Volume, container_spec};
use crate::runtime::{
    HookError, NoHooks, RootfsLayout, SandboxError, SandboxStatus, StartHooks, Started, Stdio,
    TraceEvent, run_foreground, start,
};

macro_rules! require_root {
    () => {
        if !crate::test_support::is_root() {
            return;
        }
    };
}

/// A container's directories and the host's mounts that mention them when it was made.
struct Fixture {
    dir: tempfile::TempDir,
    mountinfo: Vec<String>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("lower");
        fs::create_dir(&lower).unwrap();
        host_rootfs(
            &lower,
            &[
                "/bin/sh",
                "/bin/cat",
                "/bin/ls",
                "/bin/sleep",
                "/bin/mount",
                "/usr/bin/unshare",
            ],
        );
        fs::create_dir(lower.join("etc")).unwrap();
        fs::write(
            lower.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
        )
        .unwrap();
        fs::write(lower.join("etc/group"), "root:x:0:\nusers:x:100:user\n").unwrap();
        fs::write(lower.join("not-executable"), "#!/bin/sh\n").unwrap();
        for name in ["upper", "scratch", "volume", "readonly"] {
            fs::create_dir(dir.path().join(name)).unwrap();
        }
        let mountinfo = crate::test_support::mounts_mentioning(dir.path());
        Fixture { dir, mountinfo }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn layout(&self) -> RootfsLayout {
        RootfsLayout {
            lower_dirs: vec![self.path("lower")],
            upper_dir: self.path("upper"),
            scratch_dir: self.path("scratch"),
        }
    }

    fn options(&self, script: &str) -> RunOptions {
        RunOptions {
            args: vec!["sh".into(), "-c".into(), script.into()],
            hostname: Some("box".into()),
            ..RunOptions::default()
        }
    }

    fn spec(&self, options: &RunOptions) -> Spec {
        let image = RuntimeConfig {
            env: vec!["PATH=/usr/bin:/bin".into()],
            ..RuntimeConfig::default()
        };
        let lower = self.path("lower");
        container_spec(&image, options, &[lower.as_path()]).expect("valid options")
    }

    fn start(&self, options: &RunOptions) -> Result<Started, SandboxError> {
        start(
            &self.spec(options),
            &self.layout(),
            Stdio::Pipe { stdin: false },
            &mut NoHooks,
        )
    }

    /// Runs the container to its end: status, stdout, stderr.
    fn run(&self, options: &RunOptions) -> (SandboxStatus, String, String) {
        let mut started = self.start(options).expect("the container starts");
        let stdout = read_all(started.stdout.take().unwrap());
        let stderr = read_all(started.stderr.take().unwrap());
        let status = started.wait().unwrap();
        (status, stdout, stderr)
    }

    fn sh(&self, script: &str) -> (SandboxStatus, String, String) {
        self.run(&self.options(script))
    }

    /// The host's mounts of the fixture's directories are as they were (other tests change
    /// the rest of the table meanwhile), the scratch directory is empty, and no process
    /// whose command line holds `marker` is left.
    fn assert_clean(&self, marker: &str) {
        assert_eq!(
            crate::test_support::mounts_mentioning(self.dir.path()),
            self.mountinfo,
            "the host's mount table changed"
        );
        assert!(
            fs::read_dir(self.path("scratch/mnt"))
                .unwrap()
                .next()
                .is_none()
        );
        assert_eq!(processes_with(marker), 0, "a container process survived");
    }
}

fn read_all(fd: std::os::fd::OwnedFd) -> String {
    let mut text = String::new();
    fs::File::from(fd).read_to_string(&mut text).unwrap();
    text
}

fn ok(status: SandboxStatus, stderr: &str) {
    assert_eq!(status, SandboxStatus::Exited(0), "stderr: {stderr}");
}

#[test]
fn pid_1_own_hostname_and_no_host_processes() {
    require_root!();
    let fixture = Fixture::new();
    let (status, stdout, stderr) =
        fixture.sh("echo $$; cat /proc/sys/kernel/hostname; ls /proc # marker-pid1");
    ok(status, &stderr);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("1"));
    assert_eq!(lines.next(), Some("box"));
    let pids: Vec<&str> = lines
        .filter(|l| l.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    // sh (1) and ls, nothing of the host's.
    assert!(pids.len() <= 2, "{pids:?}");
    fixture.assert_clean("marker-pid1");
}

#[test]
fn host_files_are_invisible_except_volumes() {
    require_root!();
    let fixture = Fixture::new();
    fs::write(fixture.path("volume/shared"), "from the host\n").unwrap();
    fs::write(fixture.path("readonly/kept"), "read me\n").unwrap();
    let mut options = fixture.options(&format!(
        "test ! -e {host}; ls /; cat /data/shared; echo back > /data/written; \
         cat /config/kept; echo x > /config/new || echo refused # marker-volumes",
        host = fixture.path("volume").display()
    ));
    options.volumes = vec![
        Volume {
            source: fixture.path("volume"),
            destination: "/data".into(),
            read_only: false,
            ..Default::default()
        },
        Volume {
            source: fixture.path("readonly"),
            destination: "/config".into(),
            read_only: true,
            ..Default::default()
        },
    ];
    let (status, stdout, stderr) = fixture.run(&options);
    ok(status, &stderr);
    let lines: Vec<&str> = stdout.lines().collect();
    let root: Vec<&str> = lines[..lines.len() - 3].to_vec();
    for entry in &root {
        assert!(
            [
                "bin",
                "config",
                "data",
                "dev",
                "etc",
                "lib",
                "lib64",
                "not-executable",
                "proc",
                "sbin",
                "sys",
                "usr"
            ]
            .contains(entry),
            "unexpected /{entry}: {root:?}"
        );
    }
    assert_eq!(
        lines[lines.len() - 3..],
        ["from the host", "read me", "refused"]
    );
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(
        fs::read_to_string(fixture.path("volume/written")).unwrap(),
        "back\n"
    );
    assert!(!fixture.path("readonly/new").exists());
    fixture.assert_clean("marker-volumes");
}

#[test]
fn mounting_and_kernel_knobs_are_denied() {
    require_root!();
    let fixture = Fixture::new();
    let (status, stdout, stderr) = fixture.sh("mount -t tmpfs none /mnt && echo mounted; \
         echo evil > /proc/sys/kernel/hostname && echo wrote-proc; \
         echo 1 > /proc/sysrq-trigger && echo wrote-sysrq; \
         echo x > /sys/kernel/x && echo wrote-sys; \
         echo x > /sys/fs/cgroup/x && echo wrote-cgroup; \
         cat /proc/sys/kernel/hostname # marker-denied");
    ok(status, &stderr);
    assert_eq!(stdout, "box\n", "stderr: {stderr}");
    assert!(stderr.contains("mount: "), "{stderr}");
    assert!(
        stderr.contains("/proc/sys/kernel/hostname: Read-only file system"),
        "{stderr}"
    );
    fixture.assert_clean("marker-denied");
}

/// Runs `script` in a container of `spec` (with the fixture's layout) to its end.
fn run_spec(fixture: &Fixture, spec: &Spec) -> (SandboxStatus, String, String) {
    let mut started = start(
        spec,
        &fixture.layout(),
        Stdio::Pipe { stdin: false },
        &mut NoHooks,
    )
    .expect("the container starts");
    let stdout = read_all(started.stdout.take().unwrap());
    let stderr = read_all(started.stderr.take().unwrap());
    let status = started.wait().unwrap();
    (status, stdout, stderr)
}

#[test]
fn the_seccomp_filter_denies_unshare_and_mount_with_eperm() {
    require_root!();
    let fixture = Fixture::new();
    // A user namespace needs no capability: only the filter stops it.
    let script = "cat /proc/self/status; \
         unshare --user sh -c : && echo unshared; \
         mount -t tmpfs none /mnt && echo mounted; \
         cat /proc/self/status > /dev/null && echo still-works # marker-seccomp";
    let (status, stdout, stderr) = fixture.sh(script);
    ok(status, &stderr);
    assert_eq!(status_field(&stdout, "Seccomp"), "2", "{stdout}");
    assert_eq!(status_field(&stdout, "Seccomp_filters"), "1", "{stdout}");
    assert!(!stdout.contains("unshared"), "{stdout}");
    assert!(!stdout.contains("mounted"), "{stdout}");
    assert!(stdout.ends_with("still-works\n"), "{stdout}");
    assert!(
        stderr.contains("unshare: unshare failed: Operation not permitted"),
        "{stderr}"
    );
    fixture.assert_clean("marker-seccomp");

    // The same container without the filter: the user namespace is created, so the
    // check above is the filter's doing.
    let mut spec =
        fixture.spec(&fixture.options(
            "cat /proc/self/status; unshare --user sh -c : && echo unshared # marker-open",
        ));
    let mut linux = spec.linux().clone().unwrap();
    linux.set_seccomp(None);
    spec.set_linux(Some(linux));
    let (status, stdout, stderr) = run_spec(&fixture, &spec);
    ok(status, &stderr);
    assert_eq!(status_field(&stdout, "Seccomp"), "0");
    assert!(
        stdout.ends_with("\nunshared\n"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    fixture.assert_clean("marker-open");
}

fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:\t")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

#[test]
fn capabilities_no_new_privs_and_rlimits_are_dockers() {
    require_root!();
    let fixture = Fixture::new();
    let (status, stdout, stderr) = fixture.sh("cat /proc/self/status /proc/self/limits");
    ok(status, &stderr);
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&stdout, field), "00000000a80425fb", "{field}");
    }
    assert_eq!(status_field(&stdout, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&stdout, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(&stdout, "NoNewPrivs"), "1");
    let nofile = stdout
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let limit = crate::runtime::spec::defaults::rlimits()[0].hard();
    let numbers: Vec<&str> = nofile.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, [limit.to_string(), limit.to_string()], "{nofile}");

    // A non-root user keeps the bounding set but has no capabilities at all.
    let mut options = fixture.options("cat /proc/self/status; id -u 2>/dev/null; echo $HOME");
    options.user = Some("user".into());
    let (status, stdout, stderr) = fixture.run(&options);
    ok(status, &stderr);
    assert_eq!(status_field(&stdout, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&stdout, "CapPrm"), "0000000000000000");
    assert_eq!(status_field(&stdout, "CapBnd"), "00000000a80425fb");
    assert!(status_field(&stdout, "Uid").starts_with("1000\t1000"));
    assert!(status_field(&stdout, "Gid").starts_with("1000\t1000"));
    assert_eq!(status_field(&stdout, "Groups").trim(), "100");
    assert!(stdout.ends_with("/home/user\n"), "{stdout}");
}

#[test]
fn masked_paths_are_empty_and_devices_are_standard() {
    require_root!();
    let fixture = Fixture::new();
    let (status, stdout, stderr) = fixture.sh(
        "cat /proc/kcore /proc/keys; echo end; ls -A /sys/firmware; echo end; \
         test -c /dev/null && test -c /dev/zero && test -c /dev/full && test -c /dev/random \
         && test -c /dev/urandom && test -c /dev/tty && test -c /dev/pts/ptmx \
         && test -L /dev/ptmx && test -L /dev/fd && test -d /dev/mqueue && test -d /dev/shm \
         && echo devices; cat /proc/self/cgroup",
    );
    ok(status, &stderr);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("end"),
        "/proc/kcore and /proc/keys are empty"
    );
    assert_eq!(lines.next(), Some("end"), "/sys/firmware is empty");
    assert_eq!(lines.next(), Some("devices"));
    // In its own cgroup namespace, the container is at the root of every hierarchy.
    for line in lines {
        assert!(line.ends_with(":/"), "{line}");
    }
}

#[test]
fn working_directory_is_created_and_env_is_dockers() {
    require_root!();
    let fixture = Fixture::new();
    let mut options = fixture.options("pwd; echo $HOSTNAME $HOME $GREETING $PATH");
    options.workdir = Some("/srv/app".into());
    options.env = vec![("GREETING".into(), "hello".into())];
    let (status, stdout, stderr) = fixture.run(&options);
    ok(status, &stderr);
    assert_eq!(stdout, "/srv/app\nbox /root hello /usr/bin:/bin\n");
    assert!(fixture.path("upper/srv/app").is_dir());
}

#[test]
fn exit_codes_are_the_commands_or_dockers() {
    require_root!();
    let fixture = Fixture::new();
    assert_eq!(fixture.sh("exit 3").0, SandboxStatus::Exited(3));

    let not_found = fixture
        .start(&RunOptions {
            args: vec!["no-such-command".into()],
            ..fixture.options("")
        })
        .unwrap_err();
    assert_eq!(not_found.exit_code(), 127);
    assert_eq!(
        not_found.to_string(),
        "command `no-such-command` not found in the image"
    );
    let not_executable = fixture
        .start(&RunOptions {
            args: vec!["/not-executable".into()],
            ..fixture.options("")
        })
        .unwrap_err();
    assert_eq!(not_executable.exit_code(), 126, "{not_executable}");
    fixture.assert_clean("no-such-command");
}

#[test]
fn sigkill_is_128_plus_9_and_kills_the_whole_container() {
    require_root!();
    let fixture = Fixture::new();
    let mut started = fixture
        .start(&fixture.options("sleep 4242.5 & echo ready; wait"))
        .unwrap();
    let mut stdout = fs::File::from(started.stdout.take().unwrap());
    let mut ready = [0u8; 6];
    stdout.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    // pid 1 of a pid namespace ignores signals it has no handler for, SIGKILL excepted.
    started.signal(Signal::SIGKILL).unwrap();
    let status = started.wait().unwrap();
    assert_eq!(status, SandboxStatus::Signaled(9));
    assert_eq!(status.code(), 137);
    fixture.assert_clean("4242.5");
}

#[test]
fn signals_to_kiln_reach_the_container() {
    require_root!();
    let fixture = Fixture::new();
    let fifo = fixture.path("volume/ready");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut options = fixture.options(
        "trap 'echo TERM > /data/trapped; exit 143' TERM; echo > /data/ready; \
         sleep 4343.5 & wait",
    );
    options.volumes = vec![Volume {
        source: fixture.path("volume"),
        destination: "/data".into(),
        read_only: false,
        ..Default::default()
    }];
    let spec = fixture.spec(&options);
    let layout = fixture.layout();
    let runner = std::thread::spawn(move || {
        run_foreground(
            &spec,
            &layout,
            Stdio::Inherit { stdin: false },
            &mut NoHooks,
        )
    });
    // Opening the FIFO waits for the container's write: its trap is set by then, and so
    // is kiln's forwarding (installed before the container starts).
    fs::read(&fifo).unwrap();
    // SAFETY: kill(2) on our own pid; the forwarding handler catches SIGTERM.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    let status = runner.join().unwrap().unwrap();
    assert_eq!(status, SandboxStatus::Exited(143));
    assert_eq!(
        fs::read_to_string(fixture.path("volume/trapped")).unwrap(),
        "TERM\n"
    );
    fixture.assert_clean("4343.5");
}

#[test]
fn a_pty_is_the_controlling_terminal() {
    require_root!();
    let fixture = Fixture::new();
    let mut options = fixture.options("test -t 0 && test -t 1 && echo tty; echo hi > /dev/tty");
    options.tty = true;
    let mut started = start(
        &fixture.spec(&options),
        &fixture.layout(),
        Stdio::Pty,
        &mut NoHooks,
    )
    .unwrap();
    let mut master = fs::File::from(started.pty.take().unwrap());
    let mut output = Vec::new();
    let mut buffer = [0u8; 1024];
    // Read until the slave side is gone (EIO once the container has exited).
    while let Ok(n) = master.read(&mut buffer) {
        if n == 0 {
            break;
        }
        output.extend_from_slice(&buffer[..n]);
    }
    assert_eq!(started.wait().unwrap(), SandboxStatus::Exited(0));
    assert_eq!(String::from_utf8_lossy(&output), "tty\r\nhi\r\n");
}

/// A hook's own error, with a cause and a help.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("no cgroup for you")]
#[diagnostic(help("ask for one"))]
struct NoCgroup(#[source] nix::errno::Errno);

/// Records the hook call and the trace.
#[derive(Default)]
struct Hooks {
    pid: Option<i32>,
    fail: bool,
    lines: Vec<String>,
}

impl StartHooks for Hooks {
    fn before_continue(&mut self, pid: i32) -> Result<(), HookError> {
        // The child exists and waits: its /proc entry is there.
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        self.pid = Some(pid);
        if self.fail {
            Err(HookError::new(NoCgroup(nix::errno::Errno::EPERM)))
        } else {
            Ok(())
        }
    }
    fn trace(&mut self, event: &TraceEvent<'_>) {
        self.lines.push(event.to_string());
    }
}

#[test]
fn hooks_run_while_the_child_waits_and_the_trace_shows_each_step() {
    require_root!();
    let fixture = Fixture::new();
    let spec = fixture.spec(&fixture.options("true # marker-hooks"));
    let mut hooks = Hooks::default();
    let mut started = start(
        &spec,
        &fixture.layout(),
        Stdio::Pipe { stdin: false },
        &mut hooks,
    )
    .unwrap();
    assert_eq!(hooks.pid, Some(started.pid()));
    assert_eq!(started.wait().unwrap(), SandboxStatus::Exited(0));
    assert!(
        hooks.lines[0].starts_with("clone: new mount, pid, ipc, uts, net namespaces (pid "),
        "{:?}",
        hooks.lines
    );
    for expected in [
        "unshare --cgroup",
        "pivot_root . .",
        "prctl(PR_SET_NO_NEW_PRIVS, 1)",
        "exec sh -c 'true # marker-hooks'",
    ] {
        assert!(
            hooks.lines.iter().any(|l| l == expected),
            "{expected} not in {:#?}",
            hooks.lines
        );
    }

    let mut failing = Hooks {
        fail: true,
        ..Hooks::default()
    };
    let error = start(
        &spec,
        &fixture.layout(),
        Stdio::Pipe { stdin: false },
        &mut failing,
    )
    .unwrap_err();
    assert_eq!(
        crate::causes::chain(&error),
        [
            "cannot prepare the container",
            "no cgroup for you",
            "EPERM: Operation not permitted"
        ]
    );
    assert_eq!(crate::causes::help(&error).as_deref(), Some("ask for one"));
    assert_eq!(error.exit_code(), 125);
    let pid = failing.pid.unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "killed and reaped"
    );
    fixture.assert_clean("marker-hooks");
}

#[test]
fn many_containers_leave_nothing_behind() {
    require_root!();
    let fixture = Fixture::new();
    for i in 0..20 {
        let (status, stdout, _) = fixture.sh(&format!("sleep 4545.{i} & echo {i}"));
        assert_eq!(
            (status, stdout),
            (SandboxStatus::Exited(0), format!("{i}\n"))
        );
    }
    fixture.assert_clean("4545.");
    // The layer got nothing from the runtime itself.
    let upper: Vec<_> = fs::read_dir(fixture.path("upper")).unwrap().collect();
    assert!(upper.is_empty(), "{upper:?}");
}
