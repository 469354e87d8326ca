//! Health checks of detached containers: an http probe served from inside the container
//! turns it healthy, a tcp probe on a closed port unhealthy, `--restart on-unhealthy`
//! restarts it, and an exec probe follows a file `kiln exec` creates.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Project, is_root};

const IMAGES: &str = r#"
image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/sleep" "/bin/touch"
}

image "py" {
    from "scratch"
    host-binary "/bin/sh" "/usr/bin/python3"
    host-path "/usr/lib/python3.11"
}
"#;

fn images() -> Option<(Project, tempfile::TempDir)> {
    if !is_root() {
        eprintln!("skipped: containers need root");
        return None;
    }
    if !Path::new("/usr/lib/python3.11").is_dir() {
        eprintln!("skipped: the http probe's server needs python 3.11 on the host");
        return None;
    }
    let project = Project::new(IMAGES);
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

/// Polls `kiln ps` until `done` holds for the container, or fails after 30 s.
fn wait_for(
    project: &Project,
    root: &Path,
    name: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let container = ps(project, root, name);
        if done(&container) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {name} to be {what}: {container}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn output(root: &Path, id: &str) -> String {
    let path = root.join("containers").join(id).join("state.json");
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    state["state"]["health_output"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_http_check_served_inside_the_container_makes_it_healthy() {
    let Some((project, root)) = images() else {
        return;
    };
    let root = root.path();
    let id = project
        .kiln(root)
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
        .stdout()
        .trim()
        .to_string();
    // Nothing listens on the host's port 8000: the probe can only pass from inside.
    wait_for(&project, root, "web", "healthy", |c| {
        c["health"] == "healthy"
    });
    let said = output(root, &id);
    assert!(
        said.starts_with("GET http://localhost:8000/: 200 OK"),
        "{said}"
    );
    project
        .kiln(root)
        .args(["ps"])
        .run()
        .success()
        .stdout_contains("running (healthy)");
    project.kiln(root).args(["rm", "-f", "web"]).run().success();
}

#[test]
fn a_tcp_check_on_a_closed_port_makes_it_unhealthy_and_on_unhealthy_restarts_it() {
    let Some((project, root)) = images() else {
        return;
    };
    let root = root.path();
    let closed = ["--health-tcp", "127.0.0.1:9", "--health-interval", "100ms"];
    let id = project
        .kiln(root)
        .args(["run", "-d", "--name", "closed", "--health-retries", "2"])
        .args(closed)
        .args(["tools", "sleep", "1000"])
        .run()
        .success()
        .stdout()
        .trim()
        .to_string();
    wait_for(&project, root, "closed", "unhealthy", |c| {
        c["health"] == "unhealthy"
    });
    let said = output(root, &id);
    assert_eq!(said, "tcp 127.0.0.1:9: connection refused");
    // Without on-unhealthy, it keeps running.
    let container = ps(&project, root, "closed");
    assert_eq!(container["state"], "running", "{container}");
    assert_eq!(container["restarts"], 0, "{container}");

    project
        .kiln(root)
        .args(["run", "-d", "--name", "flappy", "--health-retries", "1"])
        .args(["--restart", "on-unhealthy"])
        .args(closed)
        .args(["tools", "sleep", "1000"])
        .run()
        .success();
    wait_for(&project, root, "flappy", "restarted twice", |c| {
        c["restarts"].as_u64().unwrap_or(0) >= 2
    });
    project
        .kiln(root)
        .args(["rm", "-f", "closed", "flappy"])
        .run()
        .success();
    assert_eq!(ps(&project, root, "flappy"), serde_json::Value::Null);
}

#[test]
fn an_exec_check_turns_healthy_once_kiln_exec_creates_its_file() {
    let Some((project, root)) = images() else {
        return;
    };
    let root = root.path();
    project
        .kiln(root)
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
    wait_for(&project, root, "ready", "unhealthy", |c| {
        c["health"] == "unhealthy"
    });
    project
        .kiln(root)
        .args(["exec", "ready", "touch", "/ready"])
        .run()
        .success();
    wait_for(&project, root, "ready", "healthy", |c| {
        c["health"] == "healthy"
    });
    project
        .kiln(root)
        .args(["rm", "-f", "ready"])
        .run()
        .success();
}

#[test]
fn health_flags_need_a_detached_container_and_valid_values() {
    let Some((project, root)) = images() else {
        return;
    };
    let root = root.path();
    project
        .kiln(root)
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
    project
        .kiln(root)
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
