//! Detached containers: `kiln run -d` under a supervisor, `ps`, `logs`, `stop`, `kill`,
//! restart policies, a supervisor killed with SIGKILL, and nothing left behind.

use nix::sys::signal::Signal;

use crate::harness::{Lab, Project, host, images, wait_for};

/// Waits for SIGTERM (pid 1 only gets the signals it handles), then exits 0.
const SERVER: &str = "trap 'echo bye; exit 0' TERM; echo ready; echo warn >&2; sleep 1000 & wait";

fn lab() -> Option<Lab> {
    Lab::build(Project::new(&format!(
        "{}{}",
        images::tools("tools", r#"cmd "echo" "default command""#),
        images::tools("patient", r#"stop-signal "SIGUSR1""#)
    )))
}

#[test]
fn a_detached_container_runs_logs_and_stops_in_time() {
    let Some(lab) = lab() else {
        return;
    };
    let ran = lab
        .kiln()
        .args(["run", "-d", "--name", "web", "tools", "sh", "-c", SERVER])
        .run()
        .success();
    let id = ran.stdout().trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the id: {id}");
    let web = lab.root.ps().get("web");
    assert_eq!(web["state"], "running", "{web}");
    assert_eq!(web["id"], id.as_str());
    let recorded = lab.root.record(&id);
    let pids = [
        recorded["state"]["pid"].as_i64().unwrap(),
        recorded["state"]["supervisor_pid"].as_i64().unwrap(),
    ];
    assert!(pids.iter().all(|p| host::alive(*p)), "{recorded}");
    lab.kiln()
        .args(["ps"])
        .run()
        .success()
        .stdout_contains("web")
        .stdout_contains("running");

    lab.wait_for_log("web", "ready");
    let logs = lab
        .kiln()
        .args(["logs", "--timestamps", "web"])
        .run()
        .success();
    let first = logs.stdout().lines().next().unwrap().to_string();
    let (time, text) = first.split_once(' ').unwrap();
    assert_eq!(text, "ready");
    assert!(
        time.len() == 30 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    assert!(logs.stderr().contains("warn"), "stderr lines go to stderr");
    // --since in the future shows nothing; a long duration shows everything.
    lab.kiln()
        .args(["logs", "--since", "2999-01-01T00:00:00Z", "web"])
        .run()
        .success()
        .stdout_is("");
    lab.kiln()
        .args(["logs", "--since", "1h", "web"])
        .run()
        .success()
        .stdout_contains("ready");

    lab.kiln()
        .args(["stop", "-t", "5", "web"])
        .run()
        .success()
        .stdout_is("web\n");
    // Exit 0 is the trap's: SIGTERM did it (SIGKILL after the timeout would give 137).
    let web = lab.root.ps().get("web");
    assert_eq!(
        (&web["state"], &web["exit_code"]),
        (&"exited".into(), &0.into())
    );
    // The log ends with what the trap printed; -f returns once the container has exited.
    lab.kiln()
        .args(["logs", "-f", "web"])
        .run()
        .success()
        .stdout_is("ready\nbye\n");
    lab.kiln().args(["rm", "web"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn stop_sends_the_image_stop_signal_and_restart_starts_it_again() {
    let Some(lab) = lab() else {
        return;
    };
    let script = "trap 'echo got usr1; exit 0' USR1; echo up; sleep 1000 & wait";
    lab.kiln()
        .args(["run", "-d", "--name", "p", "--restart", "always"])
        .args(["patient", "sh", "-c", script])
        .run()
        .success();
    // The trap must be set before the signal comes.
    let ups = |n: usize| {
        let lab = &lab;
        move || {
            let logs = lab.kiln().args(["logs", "p"]).run();
            logs.stdout().matches("up").count() >= n
        }
    };
    wait_for("the first run to be up", ups(1));
    lab.kiln().args(["stop", "-t", "10", "p"]).run().success();
    // Exit 0 is the USR1 trap's (SIGKILL after the timeout would give 137).
    assert_eq!(lab.root.ps().get("p")["exit_code"], 0);
    lab.kiln()
        .args(["restart", "-t", "1", "p"])
        .run()
        .success()
        .stdout_is("p\n");
    assert_eq!(lab.root.ps().get("p")["state"], "running");
    wait_for("the second run to be up", ups(2));
    // Neither stop nor kill is followed by a restart, even under `always`; the log keeps
    // both runs.
    lab.kiln().args(["kill", "-s", "USR1", "p"]).run().success();
    wait_for("the container to exit", || {
        lab.root.ps().get("p")["state"] == "exited"
    });
    lab.kiln()
        .args(["logs", "-f", "p"])
        .run()
        .success()
        .stdout_is("up\ngot usr1\nup\ngot usr1\n");
    lab.kiln()
        .args(["kill", "p"])
        .run()
        .failure()
        .stderr_contains("is not running");
    lab.kiln().args(["rm", "p"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn on_failure_restarts_at_most_its_maximum() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["run", "-d", "--name", "flaky", "--restart", "on-failure:2"])
        .args(["tools", "sh", "-c", "echo try; exit 1"])
        .run()
        .success();
    wait_for("the restarts to end", || {
        let c = lab.root.ps().get("flaky");
        c["state"] == "exited" && c["restarts"] == 2
    });
    let c = lab.root.ps().get("flaky");
    assert_eq!(c["exit_code"], 1);
    lab.kiln()
        .args(["logs", "-f", "flaky"])
        .run()
        .success()
        .stdout_is("try\ntry\ntry\n");
    // A policy without -d is refused.
    lab.kiln()
        .args(["run", "--restart", "always", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("restarts are for");
    lab.kiln().args(["rm", "flaky"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn a_killed_supervisor_leaves_the_truth_and_rm_f_cleans_up() {
    let Some(lab) = lab() else {
        return;
    };
    let id = lab
        .kiln()
        .args(["run", "-d", "--name", "orphan", "tools", "sleep", "1000"])
        .run()
        .success()
        .word();
    let recorded = lab.root.record(&id);
    let pid = recorded["state"]["pid"].as_i64().unwrap();
    let supervisor = recorded["state"]["supervisor_pid"].as_i64().unwrap();
    host::signal(supervisor, Signal::SIGKILL);
    wait_for("the supervisor to die", || !host::alive(supervisor));
    // The runtime has the kernel kill pid 1 with the thread that started it: the container
    // goes with its supervisor, and ps — reading the kernel, not a supervisor — says so.
    wait_for("the container to die with its supervisor", || {
        !host::alive(pid)
    });
    assert_eq!(lab.root.ps().get("orphan")["state"], "exited");
    lab.kiln().args(["rm", "-f", "orphan"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn rm_f_of_running_detached_containers_leaves_nothing() {
    let Some(lab) = lab() else {
        return;
    };
    let mut names = Vec::new();
    for i in 0..50 {
        let name = format!("c{i}");
        let id = lab
            .kiln()
            .args(["run", "-d", "--name", &name, "--restart", "always"])
            .args(["tools", "sleep", "1000"])
            .run()
            .success()
            .stdout()
            .trim()
            .to_string();
        // Its pids are remembered: assert_clean checks they are gone.
        lab.root.record(&id);
        names.push(name);
    }
    let running = lab
        .kiln()
        .args(["ps", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(running.as_array().unwrap().len(), 50);
    lab.kiln().args(["rm", "web-not-there"]).run().failure();
    lab.kiln()
        .args(["rm", "c0"])
        .run()
        .failure()
        .stderr_contains("is running");
    lab.kiln().args(["rm", "-f"]).args(&names).run().success();
    lab.root.assert_clean();
}

/// The check every test relies on: a root with a running container is not clean, and names
/// what is left (its processes, its cgroup, its records), until `rm -f`.
#[test]
fn a_running_container_is_what_a_root_finds_left() {
    let Some(lab) = lab() else {
        return;
    };
    let id = lab
        .kiln()
        .args(["run", "-d", "--name", "left", "tools", "sleep", "1000"])
        .run()
        .success()
        .word();
    lab.root.record(&id);
    let left = lab.root.leftovers().join("\n");
    for what in ["process", "cgroup", "record"] {
        assert!(left.contains(what), "{what} in:\n{left}");
    }
    assert!(left.contains(&id), "{left}");
    lab.kiln().args(["rm", "-f", "left"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn a_supervisor_is_kiln_supervise_beside_kiln_and_kiln_itself_without_it() {
    let Some(lab) = lab() else {
        return;
    };
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_kiln"));
    let exe_of = |name: &str| {
        let record = lab
            .root
            .record(lab.root.ps().get(name)["id"].as_str().unwrap());
        let pid = record["state"]["supervisor_pid"].as_i64().unwrap();
        (pid, std::fs::read_link(format!("/proc/{pid}/exe")).unwrap())
    };
    lab.kiln()
        .args(["run", "-d", "--name", "beside", "tools", "sh", "-c", SERVER])
        .run()
        .success();
    let (pid, exe) = exe_of("beside");
    assert_eq!(exe, built.with_file_name("kiln-supervise"));
    assert!(
        host::cmdline(pid).contains(" __supervise "),
        "{}",
        host::cmdline(pid)
    );

    // kiln alone in a directory (a link to the same file): it supervises itself.
    let alone = tempfile::tempdir().unwrap();
    let kiln = alone.path().join("kiln");
    std::fs::hard_link(built, &kiln)
        .or_else(|_| std::fs::copy(built, &kiln).map(drop))
        .unwrap();
    lab.kiln()
        .program(&kiln)
        .args(["run", "-d", "--name", "alone", "tools", "sh", "-c", SERVER])
        .run()
        .success();
    let (pid, exe) = exe_of("alone");
    assert_eq!(exe, kiln);
    assert!(
        host::cmdline(pid).contains(" __supervise "),
        "{}",
        host::cmdline(pid)
    );
    for name in ["beside", "alone"] {
        lab.wait_for_log(name, "ready");
    }
    lab.kiln()
        .args(["rm", "-f", "beside", "alone"])
        .run()
        .success();
}
