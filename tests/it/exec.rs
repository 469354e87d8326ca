//! `kiln exec`: a new process inside a running container — its pid namespace, host name,
//! files, environment and cgroup — with the command's exit code, a clear error for a
//! stopped container, and nothing left after `kiln rm -f`.

use std::path::PathBuf;

use crate::harness::{Lab, Project, host, images, wait_for};

/// Writes a file, then waits for SIGTERM.
const SERVER: &str = "echo hi > /written; trap 'exit 0' TERM; sleep 1000 & wait";

fn lab() -> Option<Lab> {
    Lab::build(Project::new(&images::tools(
        "tools",
        r#"env FROM_IMAGE="yes""#,
    )))
}

/// Starts the server container `name` and waits until it has written /written; its id.
fn server(lab: &Lab, name: &str) -> String {
    let id = lab
        .kiln()
        .args(["run", "-d", "--name", name, "-h", "box", "-e", "RUN=1"])
        .args(["tools", "sh", "-c", SERVER])
        .run()
        .success()
        .word();
    wait_for("the container's file", || {
        lab.kiln()
            .args(["exec", name, "cat", "/written"])
            .run()
            .ok()
    });
    id
}

#[test]
fn exec_sees_the_containers_processes_host_name_files_and_environment() {
    let Some(lab) = lab() else {
        return;
    };
    server(&lab, "web");
    let kiln = || lab.kiln();

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

    // What follows the command is the command's, untouched, as Docker's trailing
    // arguments: exec's own flags (-e, -u, -d, --help), `--` and kiln's global --root.
    kiln()
        .args(["exec", "web", "test", "-e", "/dev/null"])
        .run()
        .success();
    kiln()
        .args(["exec", "web", "test", "-e", "/nonexistent"])
        .run()
        .code(1);
    kiln()
        .args([
            "exec", "-e", "A=1", "web", "echo", "-e", "-u", "--help", "--", "--root", "/x", "-d",
        ])
        .run()
        .success()
        .stdout_is("-u --help -- --root /x -d\n");
    kiln()
        .args([
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "echo \"$@\"",
            "sh",
            "-e",
            "--",
        ])
        .run()
        .success()
        .stdout_is("-e --\n");

    // -i: stdin reaches the command.
    kiln()
        .args(["exec", "-i", "web", "cat"])
        .stdin("typed\n")
        .run()
        .success()
        .stdout_is("typed\n");

    kiln().args(["rm", "-f", "web"]).run().success();
}

#[test]
fn exec_returns_the_commands_exit_code_and_127_when_it_is_missing() {
    let Some(lab) = lab() else {
        return;
    };
    server(&lab, "codes");
    lab.kiln()
        .args(["exec", "codes", "sh", "-c", "exit 7"])
        .run()
        .code(7);
    lab.kiln()
        .args(["exec", "codes", "nosuch"])
        .run()
        .code(127)
        .stderr_contains("command `nosuch` not found");
    lab.kiln()
        .args(["exec", "-w", "/nowhere", "codes", "true"])
        .run()
        .code(125)
        .stderr_contains("working directory `/nowhere` does not exist");
    lab.kiln().args(["rm", "-f", "codes"]).run().success();
}

#[test]
fn exec_in_a_stopped_or_unknown_container_fails_clearly() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["run", "--name", "done", "tools", "sh", "-c", "exit 0"])
        .run()
        .success();
    lab.kiln()
        .args(["exec", "done", "echo", "hi"])
        .run()
        .code(125)
        .stderr_contains("container done is not running");
    lab.kiln()
        .args(["exec", "nobody-here", "echo", "hi"])
        .run()
        .code(125)
        .stderr_contains("no container named or with id `nobody-here`");
    lab.kiln().args(["rm", "done"]).run().success();
}

#[test]
fn an_exec_process_is_in_the_containers_cgroup_and_goes_with_it() {
    let Some(lab) = lab() else {
        return;
    };
    let id = server(&lab, "grouped");
    lab.kiln()
        .args(["exec", "-d", "grouped", "sleep", "999"])
        .run()
        .success()
        .stdout_is("");
    let dirs = host::cgroups_of(lab.path());
    assert!(!dirs.is_empty(), "the container has a cgroup");
    let procs_file = dirs[0].join(&id[..12]).join("cgroup.procs");
    let mut execed = None;
    wait_for("the exec'd process in the cgroup", || {
        let procs = std::fs::read_to_string(&procs_file).unwrap_or_default();
        execed = procs
            .lines()
            .filter_map(|l| l.parse::<i64>().ok())
            .find(|pid| host::cmdline(*pid) == "sleep 999 ");
        execed.is_some()
    });
    let execed = execed.unwrap();
    // Inside, the cgroup namespace's root is the container's cgroup.
    let inside = lab
        .kiln()
        .args(["exec", "grouped", "cat", "/proc/self/cgroup"])
        .run()
        .success()
        .stdout();
    assert!(
        inside.lines().all(|l| l.ends_with(":/")),
        "every hierarchy at the container's root: {inside}"
    );

    lab.kiln().args(["rm", "-f", "grouped"]).run().success();
    wait_for("the exec'd process to die", || !host::alive(execed));
    assert_eq!(
        host::cgroups_of(lab.path()),
        Vec::<PathBuf>::new(),
        "cgroups left"
    );
    lab.root.assert_clean();
}
