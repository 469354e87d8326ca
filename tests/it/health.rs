//! Health checks of detached containers: an http probe served from inside the container
//! turns it healthy, a tcp probe on a closed port unhealthy, `--restart on-unhealthy`
//! restarts it, and an exec probe follows a file `kiln exec` creates.

use crate::harness::{Lab, Project, eventually, has_python, images};

fn lab() -> Option<Lab> {
    // The http probe's server is Python's.
    if !has_python() {
        return None;
    }
    Lab::build(Project::new(&format!(
        "{}{}",
        images::tools("tools", ""),
        images::python("py", "")
    )))
}

/// Polls `kiln ps` until `done` holds for container `name`.
fn wait_until(lab: &Lab, name: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    eventually(&format!("{name} to be {what}"), || {
        let container = lab.root.ps().get(name);
        if done(&container) {
            Ok(())
        } else {
            Err(container.to_string())
        }
    });
}

/// What the last health probe of container `id` said.
fn output(lab: &Lab, id: &str) -> String {
    lab.root.record(id)["state"]["health_output"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_http_check_served_inside_the_container_makes_it_healthy() {
    let Some(lab) = lab() else {
        return;
    };
    let id = lab
        .kiln()
        .args(["run", "-d", "--name", "web"])
        .args([
            "--health-http",
            "http://localhost:8000/",
            "--health-interval",
            "200ms",
        ])
        .args(["py", "python3", "-m", "http.server", "8000"])
        .run()
        .success()
        .word();
    // Nothing listens on the host's port 8000: the probe can only pass from inside.
    wait_until(&lab, "web", "healthy", |c| c["health"] == "healthy");
    let said = output(&lab, &id);
    assert!(
        said.starts_with("GET http://localhost:8000/: 200 OK"),
        "{said}"
    );
    lab.kiln()
        .args(["ps"])
        .run()
        .success()
        .stdout_contains("running (healthy)");
    lab.kiln().args(["rm", "-f", "web"]).run().success();
}

#[test]
fn a_tcp_check_on_a_closed_port_makes_it_unhealthy_and_on_unhealthy_restarts_it() {
    let Some(lab) = lab() else {
        return;
    };
    let closed = ["--health-tcp", "127.0.0.1:9", "--health-interval", "100ms"];
    let id = lab
        .kiln()
        .args(["run", "-d", "--name", "closed", "--health-retries", "2"])
        .args(closed)
        .args(["tools", "sleep", "1000"])
        .run()
        .success()
        .word();
    wait_until(&lab, "closed", "unhealthy", |c| c["health"] == "unhealthy");
    let said = output(&lab, &id);
    assert_eq!(said, "tcp 127.0.0.1:9: connection refused");
    // Without on-unhealthy, it keeps running.
    let container = lab.root.ps().get("closed");
    assert_eq!(container["state"], "running", "{container}");
    assert_eq!(container["restarts"], 0, "{container}");

    lab.kiln()
        .args(["run", "-d", "--name", "flappy", "--health-retries", "1"])
        .args(["--restart", "on-unhealthy"])
        .args(closed)
        .args(["tools", "sleep", "1000"])
        .run()
        .success();
    wait_until(&lab, "flappy", "restarted twice", |c| {
        c["restarts"].as_u64().unwrap_or(0) >= 2
    });
    lab.kiln()
        .args(["rm", "-f", "closed", "flappy"])
        .run()
        .success();
    assert_eq!(lab.root.ps().get("flappy"), serde_json::Value::Null);
}

#[test]
fn an_exec_check_turns_healthy_once_kiln_exec_creates_its_file() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["run", "-d", "--name", "ready"])
        .args([
            "--health-cmd",
            "test -f /ready",
            "--health-interval",
            "100ms",
        ])
        .args(["--health-retries", "1"])
        .args(["tools", "sleep", "1000"])
        .run()
        .success();
    wait_until(&lab, "ready", "unhealthy", |c| c["health"] == "unhealthy");
    lab.kiln()
        .args(["exec", "ready", "touch", "/ready"])
        .run()
        .success();
    wait_until(&lab, "ready", "healthy", |c| c["health"] == "healthy");
    lab.kiln().args(["rm", "-f", "ready"]).run().success();
}

#[test]
fn health_flags_need_a_detached_container_and_valid_values() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args([
            "run",
            "--rm",
            "--health-cmd",
            "true",
            "tools",
            "sh",
            "-c",
            "exit 0",
        ])
        .run()
        .code(125)
        .stderr_contains("health checks are run by the supervisor");
    lab.kiln()
        .args([
            "run",
            "-d",
            "--health-http",
            "https://x/",
            "tools",
            "sleep",
            "1",
        ])
        .run()
        .code(125)
        .stderr_contains("--health-http");
}

/// `kiln pause` freezes a container: `ps` and `inspect` say paused, and its health check
/// neither runs nor counts meanwhile (Docker's rule) — a frozen server would time every
/// probe out and turn it unhealthy. `unpause` lets it (and its rounds) go on; `rm -f`
/// thaws a paused container first.
#[test]
fn a_paused_container_is_shown_paused_and_its_health_check_waits() {
    let Some(lab) = lab() else {
        return;
    };
    let id = lab
        .kiln()
        .args(["run", "-d", "--name", "web"])
        .args(["--health-http", "http://localhost:8000/"])
        .args(["--health-interval", "100ms", "--health-timeout", "100ms"])
        .args(["--health-retries", "1"])
        .args(["py", "python3", "-m", "http.server", "8000"])
        .run()
        .success()
        .word();
    wait_until(&lab, "web", "healthy", |c| c["health"] == "healthy");
    lab.kiln().args(["pause", "web"]).run().success();
    let container = lab.root.ps().get("web");
    assert_eq!(container["paused"], true, "{container}");
    assert_eq!(container["state"], "running", "{container}");
    lab.kiln()
        .args(["ps"])
        .run()
        .success()
        .stdout_contains("paused");
    let inspected = lab
        .kiln()
        .args(["inspect", "--format", "json", "web"])
        .run()
        .success()
        .json();
    assert_eq!(inspected["State"]["Status"], "paused", "{inspected}");
    assert_eq!(inspected["State"]["Paused"], true, "{inspected}");
    assert_eq!(inspected["State"]["Running"], true, "{inspected}");
    lab.kiln()
        .args(["inspect", "web"])
        .run()
        .success()
        .stdout_contains("status:        paused (pid");
    // Docker's status filter: paused, no longer running.
    let listed = |status: &str| {
        lab.kiln()
            .args(["ps", "--format", "json", "-f", &format!("status={status}")])
            .run()
            .success()
            .names()
    };
    assert_eq!(listed("paused"), ["web"]);
    assert!(listed("running").is_empty());
    lab.kiln()
        .args(["pause", "web"])
        .run()
        .failure()
        .stderr_contains("already paused");
    // Fifteen rounds' time: a round that ran would fail (retries 1: unhealthy at once).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let state = &lab.root.record(&id)["state"];
    assert_eq!(state["health"], "healthy", "{state}");
    assert_eq!(state["health_failing_streak"], 0, "{state}");
    lab.kiln().args(["unpause", "web"]).run().success();
    lab.kiln()
        .args(["unpause", "web"])
        .run()
        .failure()
        .stderr_contains("not paused");
    let container = lab.root.ps().get("web");
    assert_eq!(container["paused"], false, "{container}");
    lab.kiln()
        .args(["ps"])
        .run()
        .success()
        .stdout_contains("running (healthy)");
    // Removed while paused: thawed first, so that it can die.
    lab.kiln().args(["pause", "web"]).run().success();
    lab.kiln().args(["rm", "-f", "web"]).run().success();
    assert_eq!(lab.root.ps().get("web"), serde_json::Value::Null);
}
