//! Rollouts: a second `kiln up` after kiln.kdl changed replaces a service's replicas one
//! at a time, each healthy before the next goes; a new version that fails its health
//! check is rolled back and stops the rollout; `kiln rollback` puts the kept previous
//! version back; `kiln down` leaves nothing, kept versions included.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::detach::assert_nothing_left;
use crate::harness::{Kiln, Project, is_root};

/// Ready once its command wrote /ready; /greeting says which version runs.
const PROJECT: &str = r#"
project "roll"

image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/cat" "/bin/sleep"
}

network "n" subnet="10.89.41.0/24"

container "app" image="tools" replicas=2 {
    network "n"
    env GREETING="hello"
    cmd "sh" "-c" "echo $GREETING > /greeting; echo > /ready; exec sleep 1000"
    health interval="100ms" timeout="1s" retries=2 {
        exec "cat" "/ready"
    }
}
"#;

fn ps(project: &Project, root: &Path) -> Vec<serde_json::Value> {
    project
        .kiln(root)
        .args(["ps", "-a", "--format", "json"])
        .run()
        .success()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

fn field(list: &[serde_json::Value], name: &str, key: &str) -> serde_json::Value {
    list.iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {list:?}"))[key]
        .clone()
}

/// What /greeting says in `name`, once its command has written it.
fn greeting(project: &Project, root: &Path, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ran = project
            .kiln(root)
            .args(["exec", name, "cat", "/greeting"])
            .run();
        if ran.output.status.success() {
            return ran.stdout().trim().to_string();
        }
        assert!(Instant::now() < deadline, "{name}: {}", ran.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The address `name` has on network n.
fn address(project: &Project, root: &Path, name: &str) -> String {
    let inspect = project
        .kiln(root)
        .args(["network", "inspect", "n", "--format", "json"])
        .run()
        .success()
        .json();
    inspect["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not on n: {inspect}"))["address"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs `kiln down` when dropped, so that a failed assertion leaves no container behind.
struct Down<'a> {
    project: &'a Project,
    root: &'a Path,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.project.kiln(self.root).args(["down"]).run();
        }
    }
}

/// The position of `line` in `text`'s lines (it must be there).
fn position(text: &str, line: &str) -> usize {
    text.lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no line {line:?} in:\n{text}"))
}

#[test]
fn replicas_roll_one_at_a_time_roll_back_on_failure_and_by_hand() {
    if !is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    let project = Project::new(PROJECT);
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let _down = Down {
        project: &project,
        root,
    };
    project.kiln(root).args(["up", "-d"]).run().success();
    let before = ps(&project, root);
    assert_eq!(before.len(), 2, "{before:?}");
    let addresses = [
        address(&project, root, "app-1"),
        address(&project, root, "app-2"),
    ];

    // A good change: app-1 is replaced and healthy before app-2 goes.
    project.write(
        "kiln.kdl",
        &PROJECT.replace("GREETING=\"hello\"", "GREETING=\"bonjour\""),
    );
    let up = project.kiln(root).args(["up", "-d"]).run().success();
    let events = up.stderr();
    let order = [
        "app-1: removed (old version kept as app-1~previous)",
        "app-1: started",
        "app-1: healthy",
        "app-2: removed (old version kept as app-2~previous)",
        "app-2: started",
        "app-2: healthy",
    ]
    .map(|line| position(&events, line));
    assert!(
        order.is_sorted(),
        "events out of order {order:?}:\n{events}"
    );
    let rolled = ps(&project, root);
    assert_eq!(rolled.len(), 2, "kept versions are not listed: {rolled:?}");
    for name in ["app-1", "app-2"] {
        assert_ne!(field(&rolled, name, "pid"), field(&before, name, "pid"));
        assert_eq!(field(&rolled, name, "health"), "healthy");
        assert_eq!(greeting(&project, root, name), "bonjour");
    }
    // The kept versions answer to their hidden names.
    project
        .kiln(root)
        .args(["logs", "app-1~previous"])
        .run()
        .success();
    // The new instances took the planned addresses of the old ones.
    assert_eq!(address(&project, root, "app-1"), addresses[0]);
    assert_eq!(address(&project, root, "app-2"), addresses[1]);

    // A bad change: the new app-1 never gets ready, so it is rolled back and app-2 is
    // left alone.
    project.write(
        "kiln.kdl",
        &PROJECT
            .replace("GREETING=\"hello\"", "GREETING=\"bonjour\"")
            .replace("echo > /ready; ", ""),
    );
    let failed = project.kiln(root).args(["up", "-d"]).run().failure();
    // miette wraps the message: as one line.
    let text = failed
        .stderr()
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for expected in [
        "app-1: new version unhealthy (",
        "cat: /ready: No such file or directory",
        "rolled back app-1 to sha256:",
        "rollout of app stopped",
        "app-1: rolled back to sha256:",
    ] {
        assert!(text.contains(expected), "lacks {expected:?}:\n{text}");
    }
    assert!(!text.contains("app-2: removed"), "{text}");
    let after = ps(&project, root);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        field(&after, "app-2", "pid"),
        field(&rolled, "app-2", "pid")
    );
    assert_eq!(field(&after, "app-1", "state"), "running");
    assert_eq!(greeting(&project, root, "app-1"), "bonjour");
    assert_eq!(address(&project, root, "app-1"), addresses[0]);
    wait_healthy(&project, root, "app-1");

    // By hand: both go back to the version kept before (hello), one at a time; a second
    // rollback undoes the first.
    let file = project.path().join("kiln.kdl");
    let rollback = || {
        Kiln::new()
            .root(root)
            .args(["rollback", "app", "-f"])
            .args([&file])
            .run()
            .success()
    };
    let back = rollback();
    let events = back.stderr();
    let order = [
        "app-1: removed (old version kept as app-1~previous)",
        "app-1: healthy",
        "app-2: removed (old version kept as app-2~previous)",
        "app-2: healthy",
    ]
    .map(|line| position(&events, line));
    assert!(
        order.is_sorted(),
        "events out of order {order:?}:\n{events}"
    );
    assert!(events.contains("app-2: rolled back to sha256:"), "{events}");
    for name in ["app-1", "app-2"] {
        assert_eq!(greeting(&project, root, name), "hello");
        wait_healthy(&project, root, name);
    }
    rollback();
    for name in ["app-1", "app-2"] {
        assert_eq!(greeting(&project, root, name), "bonjour");
    }
    assert_eq!(address(&project, root, "app-2"), addresses[1]);

    project.kiln(root).args(["down"]).run().success();
    assert!(ps(&project, root).is_empty());
    assert_nothing_left(root, &[]);
}

fn wait_healthy(project: &Project, root: &Path, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = ps(project, root);
        if field(&list, name, "health") == "healthy" {
            return;
        }
        assert!(Instant::now() < deadline, "{name} is not healthy: {list:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rollback_without_a_kept_version_says_so() {
    if !is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    let project = Project::new(PROJECT);
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let _down = Down {
        project: &project,
        root,
    };
    project.kiln(root).args(["up", "-d"]).run().success();
    Kiln::new()
        .root(root)
        .args(["rollback", "app", "-f"])
        .args([project.path().join("kiln.kdl")])
        .run()
        .failure()
        .stderr_contains("no previous version of app is kept");
    project.kiln(root).args(["down"]).run().success();
    assert_nothing_left(root, &[]);
}
