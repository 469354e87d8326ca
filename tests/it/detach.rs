//! Detached containers: `kiln run -d` under a supervisor, `ps`, `logs`, `stop`, `kill`,
//! restart policies, a supervisor killed with SIGKILL, and nothing left behind.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Project, is_root};

const TOOLS: &str = r#"
image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/echo" "/bin/sleep"
    cmd "echo" "default command"
}

image "patient" {
    from "scratch"
    host-binary "/bin/sh" "/bin/echo" "/bin/sleep"
    stop-signal "SIGUSR1"
}
"#;

/// Waits for SIGTERM (pid 1 only gets the signals it handles), then exits 0.
const SERVER: &str = "trap 'echo bye; exit 0' TERM; echo ready; echo warn >&2; sleep 1000 & wait";

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

/// `kiln ps -a --format json`, by name.
fn ps(project: &Project, root: &Path, name: &str) -> serde_json::Value {
    let list = project
        .kiln(root)
        .args(["ps", "-a", "--format", "json"])
        .run()
        .success()
        .json();
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state(root: &Path, id: &str) -> serde_json::Value {
    let path = root.join("containers").join(id).join("state.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
}

/// Processes whose command line names the state root (supervisors get `--root ROOT`).
fn processes_of(root: &Path) -> Vec<String> {
    let needle = root.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(cmdline);
        }
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

fn cgroups_of(root: &Path) -> Vec<String> {
    let canonical = std::fs::canonicalize(root).unwrap();
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex()[..12].to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = entry.path().join("kiln").join(&hash);
        if dir.exists() {
            found.push(dir.display().to_string());
        }
    }
    // cgroup v2 alone: the hierarchy is /sys/fs/cgroup itself.
    let unified = Path::new("/sys/fs/cgroup/kiln").join(&hash);
    if unified.exists() {
        found.push(unified.display().to_string());
    }
    found
}

pub fn assert_nothing_left(root: &Path, pids: &[i64]) {
    for pid in pids {
        assert!(!alive(*pid), "process {pid} is still alive");
    }
    assert_eq!(processes_of(root), Vec::<String>::new(), "processes left");
    assert_eq!(mounts_of(root), Vec::<String>::new(), "mounts left");
    assert_eq!(cgroups_of(root), Vec::<String>::new(), "cgroups left");
    let containers: Vec<_> = std::fs::read_dir(root.join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(containers.is_empty(), "records left: {containers:?}");
}

#[test]
fn a_detached_container_runs_logs_and_stops_in_time() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    let ran = project
        .kiln(root)
        .args(["run", "-d", "--name", "web", "tools", "sh", "-c", SERVER])
        .run()
        .success();
    let id = ran.stdout().trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the id: {id}");
    let web = ps(&project, root, "web");
    assert_eq!(web["state"], "running", "{web}");
    assert_eq!(web["id"], id.as_str());
    let recorded = state(root, &id);
    let pids = [
        recorded["state"]["pid"].as_i64().unwrap(),
        recorded["state"]["supervisor_pid"].as_i64().unwrap(),
    ];
    assert!(pids.iter().all(|p| alive(*p)), "{recorded}");
    project
        .kiln(root)
        .args(["ps"])
        .run()
        .success()
        .stdout_contains("web")
        .stdout_contains("running");

    wait_for("the output in the log", || {
        project
            .kiln(root)
            .args(["logs", "web"])
            .run()
            .stdout()
            .contains("ready")
    });
    let logs = project
        .kiln(root)
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
    project
        .kiln(root)
        .args(["logs", "--since", "2999-01-01T00:00:00Z", "web"])
        .run()
        .success()
        .stdout_is("");
    project
        .kiln(root)
        .args(["logs", "--since", "1h", "web"])
        .run()
        .success()
        .stdout_contains("ready");

    project
        .kiln(root)
        .args(["stop", "-t", "5", "web"])
        .run()
        .success()
        .stdout_is("web\n");
    // Exit 0 is the trap's: SIGTERM did it (SIGKILL after the timeout would give 137).
    let web = ps(&project, root, "web");
    assert_eq!(
        (&web["state"], &web["exit_code"]),
        (&"exited".into(), &0.into())
    );
    // The log ends with what the trap printed; -f returns once the container has exited.
    project
        .kiln(root)
        .args(["logs", "-f", "web"])
        .run()
        .success()
        .stdout_is("ready\nbye\n");
    project.kiln(root).args(["rm", "web"]).run().success();
    assert_nothing_left(root, &pids);
}

#[test]
fn stop_sends_the_image_stop_signal_and_restart_starts_it_again() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    let script = "trap 'echo got usr1; exit 0' USR1; echo up; sleep 1000 & wait";
    project
        .kiln(root)
        .args(["run", "-d", "--name", "p", "--restart", "always"])
        .args(["patient", "sh", "-c", script])
        .run()
        .success();
    // The trap must be set before the signal comes.
    let ups = |n: usize| {
        let project = &project;
        move || {
            let logs = project.kiln(root).args(["logs", "p"]).run();
            logs.stdout().matches("up").count() >= n
        }
    };
    wait_for("the first run to be up", ups(1));
    project
        .kiln(root)
        .args(["stop", "-t", "10", "p"])
        .run()
        .success();
    // Exit 0 is the USR1 trap's (SIGKILL after the timeout would give 137).
    assert_eq!(ps(&project, root, "p")["exit_code"], 0);
    project
        .kiln(root)
        .args(["restart", "-t", "1", "p"])
        .run()
        .success()
        .stdout_is("p\n");
    assert_eq!(ps(&project, root, "p")["state"], "running");
    wait_for("the second run to be up", ups(2));
    // Neither stop nor kill is followed by a restart, even under `always`; the log keeps
    // both runs.
    project
        .kiln(root)
        .args(["kill", "-s", "USR1", "p"])
        .run()
        .success();
    wait_for("the container to exit", || {
        ps(&project, root, "p")["state"] == "exited"
    });
    project
        .kiln(root)
        .args(["logs", "-f", "p"])
        .run()
        .success()
        .stdout_is("up\ngot usr1\nup\ngot usr1\n");
    project
        .kiln(root)
        .args(["kill", "p"])
        .run()
        .failure()
        .stderr_contains("is not running");
    project.kiln(root).args(["rm", "p"]).run().success();
    assert_nothing_left(root, &[]);
}

#[test]
fn on_failure_restarts_at_most_its_maximum() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    project
        .kiln(root)
        .args(["run", "-d", "--name", "flaky", "--restart", "on-failure:2"])
        .args(["tools", "sh", "-c", "echo try; exit 1"])
        .run()
        .success();
    wait_for("the restarts to end", || {
        let c = ps(&project, root, "flaky");
        c["state"] == "exited" && c["restarts"] == 2
    });
    let c = ps(&project, root, "flaky");
    assert_eq!(c["exit_code"], 1);
    project
        .kiln(root)
        .args(["logs", "-f", "flaky"])
        .run()
        .success()
        .stdout_is("try\ntry\ntry\n");
    // A policy without -d is refused.
    project
        .kiln(root)
        .args(["run", "--restart", "always", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("restarts are for");
    project.kiln(root).args(["rm", "flaky"]).run().success();
    assert_nothing_left(root, &[]);
}

#[test]
fn a_killed_supervisor_leaves_the_truth_and_rm_f_cleans_up() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    let id = project
        .kiln(root)
        .args(["run", "-d", "--name", "orphan", "tools", "sleep", "1000"])
        .run()
        .success()
        .stdout()
        .trim()
        .to_string();
    let recorded = state(root, &id);
    let pid = recorded["state"]["pid"].as_i64().unwrap();
    let supervisor = recorded["state"]["supervisor_pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the supervisor to die", || !alive(supervisor));
    // The runtime has the kernel kill pid 1 with the thread that started it: the container
    // goes with its supervisor, and ps — reading the kernel, not a supervisor — says so.
    wait_for("the container to die with its supervisor", || !alive(pid));
    assert_eq!(ps(&project, root, "orphan")["state"], "exited");
    project
        .kiln(root)
        .args(["rm", "-f", "orphan"])
        .run()
        .success();
    assert_nothing_left(root, &[pid, supervisor]);
}

#[test]
fn rm_f_of_running_detached_containers_leaves_nothing() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    let mut pids = Vec::new();
    let mut names = Vec::new();
    for i in 0..50 {
        let name = format!("c{i}");
        let id = project
            .kiln(root)
            .args(["run", "-d", "--name", &name, "--restart", "always"])
            .args(["tools", "sleep", "1000"])
            .run()
            .success()
            .stdout()
            .trim()
            .to_string();
        let recorded = state(root, &id);
        pids.push(recorded["state"]["pid"].as_i64().unwrap());
        pids.push(recorded["state"]["supervisor_pid"].as_i64().unwrap());
        names.push(name);
    }
    let running = project
        .kiln(root)
        .args(["ps", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(running.as_array().unwrap().len(), 50);
    project
        .kiln(root)
        .args(["rm", "web-not-there"])
        .run()
        .failure();
    project
        .kiln(root)
        .args(["rm", "c0"])
        .run()
        .failure()
        .stderr_contains("is running");
    project
        .kiln(root)
        .args(["rm", "-f"])
        .args(&names)
        .run()
        .success();
    assert_nothing_left(root, &pids);
}
