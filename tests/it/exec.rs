//! `kiln exec`: a new process inside a running container — its pid namespace, host name,
//! files, environment and cgroup — with the command's exit code, a clear error for a
//! stopped container, and nothing left after `kiln rm -f`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Project, is_root};

const TOOLS: &str = r#"
image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/echo" "/bin/sleep" "/bin/cat" "/bin/ls" "/bin/hostname"
    host-binary "/usr/bin/env" "/usr/bin/id" "/bin/touch"
    env FROM_IMAGE="yes"
}
"#;

/// Writes a file, then waits for SIGTERM.
const SERVER: &str = "echo hi > /written; trap 'exit 0' TERM; sleep 1000 & wait";

fn tools() -> Option<(Project, tempfile::TempDir)> {
    if !is_root() {
        eprintln!("skipped: containers need root");
        return None;
    }
    let project = Project::new(TOOLS);
    let root = tempfile::tempdir().unwrap();
    project.kiln(root.path()).args(["build"]).run().success();
    Some((project, root))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the server container `name` and waits until it has written /written.
fn server(project: &Project, root: &Path, name: &str) -> String {
    let ran = project
        .kiln(root)
        .args(["run", "-d", "--name", name, "-h", "box", "-e", "RUN=1"])
        .args(["tools", "sh", "-c", SERVER])
        .run()
        .success();
    wait_for("the container's file", || {
        project
            .kiln(root)
            .args(["exec", name, "cat", "/written"])
            .run()
            .output
            .status
            .success()
    });
    ran.stdout().trim().to_string()
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
}

fn cmdline(pid: i64) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

/// The container cgroup directories of a state root (each hierarchy's, v1 or v2).
fn cgroup_dirs(root: &Path) -> Vec<PathBuf> {
    let canonical = std::fs::canonicalize(root).unwrap();
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex()[..12].to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = entry.path().join("kiln").join(&hash);
        if dir.exists() {
            found.push(dir);
        }
    }
    let unified = Path::new("/sys/fs/cgroup/kiln").join(&hash);
    if unified.exists() {
        found.push(unified);
    }
    found
}

fn mounts_of(root: &Path) -> Vec<String> {
    let needle = root.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn exec_sees_the_containers_processes_host_name_files_and_environment() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    server(&project, root, "web");
    let kiln = || project.kiln(root);

    // Its pid namespace: pid 1 is the container's command, and exec's own pid is small.
    let init = kiln()
        .args(["exec", "web", "cat", "/proc/1/cmdline"])
        .run()
        .success()
        .stdout()
        .replace('\0', " ");
    assert!(init.starts_with("sh -c echo hi > /written"), "{init}");
    let listed = kiln().args(["exec", "web", "ls", "/proc"]).run().success();
    let pids: Vec<u32> = listed
        .stdout()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(pids.contains(&1), "{pids:?}");
    assert!(
        pids.iter().all(|p| *p < 100),
        "only the container's: {pids:?}"
    );
    kiln()
        .args(["exec", "web", "hostname"])
        .run()
        .success()
        .stdout_is("box\n");
    kiln()
        .args(["exec", "web", "cat", "/written"])
        .run()
        .success()
        .stdout_is("hi\n");
    // The container's seccomp filter holds for what is exec'd into it too.
    let status = kiln()
        .args(["exec", "web", "cat", "/proc/self/status"])
        .run()
        .success()
        .stdout();
    assert!(status.contains("Seccomp:\t2\n"), "{status}");

    let env = kiln()
        .args(["exec", "-e", "EXTRA=2", "-e", "RUN=over", "web", "env"])
        .run()
        .success()
        .stdout();
    let env: Vec<&str> = env.lines().collect();
    for expected in ["FROM_IMAGE=yes", "EXTRA=2", "RUN=over", "HOSTNAME=box"] {
        assert!(env.contains(&expected), "{expected} in {env:?}");
    }
    assert!(!env.contains(&"RUN=1"), "-e replaces: {env:?}");

    kiln()
        .args([
            "exec",
            "-u",
            "1000:1000",
            "-w",
            "/proc",
            "web",
            "sh",
            "-c",
            "id -u; id -g; echo $PWD",
        ])
        .run()
        .success()
        .stdout_is("1000\n1000\n/proc\n");

    // -i: stdin reaches the command.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_ROOT", root)
        .args(["exec", "-i", "web", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "typed\n");
    assert!(out.status.success());

    kiln().args(["rm", "-f", "web"]).run().success();
}

#[test]
fn exec_returns_the_commands_exit_code_and_127_when_it_is_missing() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    server(&project, root, "codes");
    project
        .kiln(root)
        .args(["exec", "codes", "sh", "-c", "exit 7"])
        .run()
        .code(7);
    project
        .kiln(root)
        .args(["exec", "codes", "nosuch"])
        .run()
        .code(127)
        .stderr_contains("command `nosuch` not found");
    project
        .kiln(root)
        .args(["exec", "-w", "/nowhere", "codes", "true"])
        .run()
        .code(125)
        .stderr_contains("working directory `/nowhere` does not exist");
    project
        .kiln(root)
        .args(["rm", "-f", "codes"])
        .run()
        .success();
}

#[test]
fn exec_in_a_stopped_or_unknown_container_fails_clearly() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    project
        .kiln(root)
        .args(["run", "--name", "done", "tools", "sh", "-c", "exit 0"])
        .run()
        .success();
    project
        .kiln(root)
        .args(["exec", "done", "echo", "hi"])
        .run()
        .code(125)
        .stderr_contains("container done is not running");
    project
        .kiln(root)
        .args(["exec", "nobody-here", "echo", "hi"])
        .run()
        .code(125)
        .stderr_contains("no container named or with id `nobody-here`");
    project.kiln(root).args(["rm", "done"]).run().success();
}

#[test]
fn an_exec_process_is_in_the_containers_cgroup_and_goes_with_it() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    let id = server(&project, root, "grouped");
    project
        .kiln(root)
        .args(["exec", "-d", "grouped", "sleep", "999"])
        .run()
        .success()
        .stdout_is("");
    let dirs = cgroup_dirs(root);
    assert!(!dirs.is_empty(), "the container has a cgroup");
    let procs_file = dirs[0].join(&id[..12]).join("cgroup.procs");
    let mut execed = None;
    wait_for("the exec'd process in the cgroup", || {
        let procs = std::fs::read_to_string(&procs_file).unwrap_or_default();
        execed = procs
            .lines()
            .filter_map(|l| l.parse::<i64>().ok())
            .find(|pid| cmdline(*pid) == "sleep 999 ");
        execed.is_some()
    });
    let execed = execed.unwrap();
    // Inside, the cgroup namespace's root is the container's cgroup.
    let inside = project
        .kiln(root)
        .args(["exec", "grouped", "cat", "/proc/self/cgroup"])
        .run()
        .success()
        .stdout();
    assert!(
        inside.lines().all(|l| l.ends_with(":/")),
        "every hierarchy at the container's root: {inside}"
    );

    project
        .kiln(root)
        .args(["rm", "-f", "grouped"])
        .run()
        .success();
    wait_for("the exec'd process to die", || !alive(execed));
    assert_eq!(cgroup_dirs(root), Vec::<PathBuf>::new(), "cgroups left");
    assert_eq!(mounts_of(root), Vec::<String>::new(), "mounts left");
}
