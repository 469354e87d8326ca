//! CVE-2019-5736's class: while kiln sets up a process inside a container (`kiln exec`,
//! and a container's pid 1 before its command runs), that process is the kiln binary, and
//! once it has dropped to the container's capabilities, root in the container could open
//! `/proc/PID/exe` — the host's kiln binary — and, after kiln has moved on, overwrite it.
//! kiln makes its setup processes non-dumpable (`PR_SET_DUMPABLE` 0, reset by execve), so
//! the kernel refuses that without `CAP_SYS_PTRACE`, which containers do not have.
//!
//! The window is short, so the test widens it: `strace -f -e inject=execve:delay_enter=…`
//! holds `kiln exec`'s process at its last step (execve, after the capabilities dropped)
//! while a loop in the container reads every process's `/proc/PID/exe`.

use std::time::Duration;

use crate::harness::{Lab, Project, eventually, images, which};

#[test]
fn a_container_cannot_open_the_kiln_binary_of_a_process_kiln_sets_up_in_it() {
    if !which("strace") {
        return;
    }
    let Some(lab) = Lab::build(Project::new(&images::tools(
        "tools",
        r#"host-binary "/usr/bin/readlink""#,
    ))) else {
        return;
    };
    // Every process's executable, as the container sees it, again and again.
    lab.kiln()
        .args(["run", "-d", "--name", "box", "tools", "sh", "-c"])
        .args([
            "touch /seen; while :; do for p in /proc/[0-9]*; do readlink $p/exe >> /seen 2>/dev/null; done; done",
        ])
        .run()
        .success();
    eventually("the watcher", || {
        let ran = lab.kiln().args(["exec", "box", "cat", "/seen"]).run();
        if ran.ok() && !ran.stdout().trim().is_empty() {
            Ok(())
        } else {
            Err(ran.stderr())
        }
    });
    // `kiln exec` under strace: each execve waits 1.5 s before it runs, the last one after
    // the process joined the container and dropped to its capabilities.
    let kiln = lab
        .kiln()
        .args(["exec", "box", "/bin/sh", "-c", ":"])
        .command();
    let status = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=execve"])
        .args(["-e", "inject=execve:delay_enter=1500000"])
        .arg(kiln.get_program())
        .args(kiln.get_args())
        .envs(kiln.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(200));
    let seen = lab
        .kiln()
        .args(["exec", "box", "cat", "/seen"])
        .run()
        .success()
        .stdout();
    let binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_kiln")).unwrap();
    let leaked: Vec<&str> = seen
        .lines()
        .filter(|l| l.contains("kiln") || *l == binary.to_string_lossy())
        .collect();
    assert!(
        leaked.is_empty(),
        "the container saw kiln's binary: {leaked:?}"
    );
    lab.kiln().args(["rm", "-f", "box"]).run().success();
}
