//! `kiln create`, `start`, `wait`, `port` and `top` with Docker's meanings: a container made and
//! not started, started detached or in the foreground, waited for, its ports listed; and
//! nothing left behind.

use std::process::Stdio;

use crate::harness::host::free_port;
use crate::harness::{Lab, Project, images};

fn lab() -> Option<Lab> {
    Lab::build(Project::new(&images::tools("tools", "")))
}

#[test]
fn create_makes_a_container_start_runs_it_and_wait_gives_its_code() {
    let Some(lab) = lab() else {
        return;
    };
    let id = lab
        .kiln()
        .args([
            "create",
            "--name",
            "job",
            "-e",
            "CODE=3",
            "tools",
            "sh",
            "-c",
            "echo hi; exit $CODE",
        ])
        .run()
        .success()
        .stdout()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "create prints the id: {id}");
    let job = lab.root.ps().get("job");
    assert_eq!(job["state"], "created", "{job}");
    assert!(job["pid"].is_null(), "nothing runs: {job}");
    // A created container does not run: wait returns at once, with 0 (Docker's
    // `not-running`).
    lab.kiln()
        .args(["wait", "job"])
        .run()
        .success()
        .stdout_is("0\n");
    lab.kiln()
        .args(["start", "job"])
        .run()
        .success()
        .stdout_is("job\n");
    lab.kiln()
        .args(["wait", "job"])
        .run()
        .success()
        .stdout_is("3\n");
    lab.kiln()
        .args(["logs", "job"])
        .run()
        .success()
        .stdout_is("hi\n");
    // Started again: the same container, the same files.
    lab.kiln().args(["start", "job"]).run().success();
    lab.kiln()
        .args(["wait", "job", "job"])
        .run()
        .success()
        .stdout_is("3\n3\n");
    // In the foreground: its output on ours, its code ours.
    lab.kiln()
        .args(["start", "-a", "job"])
        .run()
        .code(3)
        .stdout_is("hi\n");
    assert_eq!(lab.root.ps().get("job")["exit_code"], 3);
    lab.kiln()
        .args(["wait", "job", "nosuch"])
        .run()
        .code(1)
        .stdout_is("3\n")
        .says("no container named or with id `nosuch`");
    lab.kiln().args(["rm", "job"]).run().success();
}

#[test]
fn start_leaves_a_running_container_alone_and_wait_blocks_until_it_stops() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["run", "-d", "--name", "srv", "tools", "sh", "-c"])
        .args(["trap 'exit 7' TERM; sleep 1000 & wait"])
        .run()
        .success();
    let before = lab.root.ps().get("srv")["pid"].clone();
    lab.kiln()
        .args(["start", "srv"])
        .run()
        .success()
        .stdout_is("srv\n");
    assert_eq!(lab.root.ps().get("srv")["pid"], before, "not started twice");
    lab.root.pids();
    // top: the cgroup's processes, in ps -ef's columns or those of -o.
    let top = lab.kiln().args(["top", "srv"]).run().success();
    let header: Vec<String> = top
        .stdout()
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{}",
        top.stdout()
    );
    assert!(top.stdout().contains("sleep 1000"), "{}", top.stdout());
    assert_eq!(
        top.stdout().lines().count(),
        3,
        "sh and sleep: {}",
        top.stdout()
    );
    let pid = lab.root.ps().get("srv")["pid"].as_i64().unwrap();
    lab.kiln()
        .args(["top", "srv", "-o", "pid,comm"])
        .run()
        .success()
        .stdout_contains("PID")
        .stdout_contains(&format!("{pid}   sh\n"))
        .stdout_contains("sleep");
    lab.kiln()
        .args(["top", "srv", "aux"])
        .run()
        .code(1)
        .says("not an option kiln top knows");
    let waiting = lab
        .kiln()
        .args(["wait", "srv"])
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("kiln wait starts");
    lab.kiln().args(["stop", "srv"]).run().success();
    let out = waiting.wait_with_output().expect("kiln wait ends");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "7\n");
    lab.kiln()
        .args(["top", "srv"])
        .run()
        .code(1)
        .says("is not running");
    lab.kiln().args(["rm", "srv"]).run().success();
}

#[test]
fn create_takes_every_run_option_and_refuses_what_cannot_apply() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["create", "--trace", "tools"])
        .run()
        .code(125)
        .says("--trace");
    // A terminal needs someone at it.
    lab.kiln()
        .args(["create", "--name", "term", "-t", "tools", "echo"])
        .run()
        .success();
    lab.kiln()
        .args(["start", "term"])
        .run()
        .code(1)
        .says("was created with a terminal");
    assert_eq!(lab.root.ps().get("term")["state"], "created");
    // A restart policy is the supervisor's: not in the foreground.
    lab.kiln()
        .args([
            "create",
            "--name",
            "again",
            "--restart",
            "always",
            "tools",
            "echo",
        ])
        .run()
        .success();
    lab.kiln()
        .args(["start", "-a", "again"])
        .run()
        .code(125)
        .says("restart policy");
    lab.kiln()
        .args(["start", "-a", "again", "term"])
        .run()
        .failure()
        .says("one container");
    // The run options are the same: limits and volumes, checked at create.
    lab.kiln()
        .args(["create", "--memory", "1k", "tools"])
        .run()
        .code(125)
        .says("minimum");
    // --rm: removed once it has run.
    lab.kiln()
        .args(["create", "--rm", "--name", "once", "tools", "echo"])
        .run()
        .success();
    lab.kiln().args(["start", "-a", "once"]).run().success();
    assert!(lab.root.ps().get("once").is_null(), "removed after its run");
    // -i: kiln's input is the container's.
    lab.kiln()
        .args(["create", "-i", "--name", "cat", "tools", "cat"])
        .run()
        .success();
    lab.kiln()
        .args(["start", "-ai", "cat"])
        .stdin("typed\n")
        .run()
        .success()
        .stdout_is("typed\n");
    lab.kiln()
        .args(["rm", "term", "again", "cat"])
        .run()
        .success();
}

#[test]
fn port_lists_the_published_ports_of_a_running_container_as_docker_does() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["network", "create", "pub", "--subnet", "10.89.77.0/24"])
        .run()
        .success();
    let (tcp, udp) = (free_port(), free_port());
    lab.kiln()
        .args(["create", "--name", "web", "--network", "pub"])
        .args(["-p", &format!("{tcp}:8080"), "-p", &format!("{udp}:53/udp")])
        .args(["tools", "sleep", "1000"])
        .run()
        .success();
    // Not running: nothing published, as in Docker.
    lab.kiln()
        .args(["port", "web"])
        .run()
        .success()
        .stdout_is("");
    lab.kiln().args(["start", "web"]).run().success();
    lab.kiln()
        .args(["port", "web"])
        .run()
        .success()
        .stdout_is(&format!(
            "53/udp -> 127.0.0.1:{udp}\n8080/tcp -> 127.0.0.1:{tcp}\n"
        ));
    for query in ["8080", "8080/tcp"] {
        lab.kiln()
            .args(["port", "web", query])
            .run()
            .success()
            .stdout_is(&format!("127.0.0.1:{tcp}\n"));
    }
    lab.kiln()
        .args(["port", "web", "53/udp"])
        .run()
        .success()
        .stdout_is(&format!("127.0.0.1:{udp}\n"));
    lab.kiln()
        .args(["port", "web", "53"])
        .run()
        .code(1)
        .says("no public port `53/tcp` published for web");
    lab.kiln()
        .args(["port", "web", "80/sctp"])
        .run()
        .code(1)
        .says("tcp or udp");
    lab.kiln().args(["rm", "-f", "web"]).run().success();
    lab.kiln().args(["network", "rm", "pub"]).run().success();
}

#[test]
fn inspect_shows_containers_networks_and_images_and_asks_when_a_name_is_several() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["network", "create", "front", "--subnet", "10.89.78.0/24"])
        .run()
        .success();
    let port = free_port();
    lab.kiln()
        .args(["create", "--name", "web", "--network", "front", "--restart"])
        .args([
            "on-failure:2",
            "-p",
            &format!("{port}:8080"),
            "--memory",
            "64MiB",
        ])
        .args(["tools", "sh", "-c", "exit 4"])
        .run()
        .success();
    let created = lab
        .kiln()
        .args(["inspect", "--type", "container", "web", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(created["State"]["Status"], "created", "{created}");
    assert_eq!(created["State"]["Running"], false);
    // The project's image, by its full name.
    assert!(
        created["Config"]["Image"]
            .as_str()
            .is_some_and(|i| i.ends_with("/tools")),
        "{created}"
    );
    assert_eq!(created["Path"], "sh");
    assert_eq!(created["Args"], serde_json::json!(["-c", "exit 4"]));
    assert_eq!(created["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(
        created["HostConfig"]["RestartPolicy"]["MaximumRetryCount"],
        2
    );
    assert_eq!(created["HostConfig"]["Memory"], 64 * 1024 * 1024);
    assert_eq!(
        created["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"],
        port.to_string()
    );
    assert_eq!(
        created["NetworkSettings"]["Networks"]["front"]["Gateway"],
        "10.89.78.1"
    );
    // The one kind the name names, without --type.
    lab.kiln()
        .args(["inspect", "web"])
        .run()
        .success()
        .stdout_contains("status:        created")
        .stdout_contains("network:       front eth0 10.89.78.");
    lab.kiln().args(["start", "web"]).run().success();
    lab.kiln()
        .args(["wait", "web"])
        .run()
        .success()
        .stdout_is("4\n");
    let exited = lab
        .kiln()
        .args(["inspect", "web", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(exited["State"]["ExitCode"], 4, "{exited}");
    lab.kiln()
        .args(["inspect", "front"])
        .run()
        .success()
        .stdout_contains("front: 10.89.78.0/24");
    // A container named as the image: the name is two things.
    lab.kiln()
        .args(["create", "--name", "tools", "tools", "echo"])
        .run()
        .success();
    lab.kiln()
        .args(["inspect", "tools"])
        .run()
        .failure()
        .says("`tools` names several things: image, container");
    lab.kiln()
        .args(["inspect", "--type", "image", "tools"])
        .run()
        .success()
        .stdout_contains("digest:");
    lab.kiln()
        .args(["inspect", "nothing"])
        .run()
        .failure()
        .says("no image, container, network or volume named `nothing`");
    // Restarted by its policy meanwhile, perhaps.
    lab.kiln()
        .args(["rm", "-f", "web", "tools"])
        .run()
        .success();
    lab.kiln().args(["network", "rm", "front"]).run().success();
}
