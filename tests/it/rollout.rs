//! Rollouts: a second `kiln up` after kiln.kdl changed replaces a service's replicas one
//! at a time, each healthy before the next goes; a new version that fails its health
//! check is rolled back and stops the rollout; `kiln rollback` puts the kept previous
//! version back; `kiln down` leaves nothing, kept versions included.

use crate::harness::{Lab, Project, eventually};

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

/// What /greeting says in `name`, once its command has written it.
fn greeting(lab: &Lab, name: &str) -> String {
    eventually(&format!("{name} to write /greeting"), || {
        let ran = lab.kiln().args(["exec", name, "cat", "/greeting"]).run();
        if ran.ok() {
            Ok(ran.word())
        } else {
            Err(ran.stderr())
        }
    })
}

/// The address `name` has on network n.
fn address(lab: &Lab, name: &str) -> String {
    let inspect = lab
        .kiln()
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

/// Waits until `name` is healthy.
fn wait_healthy(lab: &Lab, name: &str) {
    eventually(&format!("{name} to be healthy"), || {
        let list = lab.root.ps();
        if list.named(name)["health"] == "healthy" {
            Ok(())
        } else {
            Err(format!("{:?}", list.0))
        }
    });
}

/// Asserts that `events` has each of `lines`, in that order.
fn assert_in_order(events: &str, lines: &[&str]) {
    let order: Vec<usize> = lines
        .iter()
        .map(|line| {
            events
                .lines()
                .position(|l| l == *line)
                .unwrap_or_else(|| panic!("no line {line:?} in:\n{events}"))
        })
        .collect();
    assert!(
        order.is_sorted(),
        "events out of order {order:?}:\n{events}"
    );
}

#[test]
fn replicas_roll_one_at_a_time_roll_back_on_failure_and_by_hand() {
    let Some(lab) = Lab::unbuilt(Project::new(PROJECT)) else {
        return;
    };
    lab.kiln().args(["up", "-d"]).run().success();
    let before = lab.root.ps();
    assert_eq!(before.len(), 2, "{before:?}");
    let addresses = [address(&lab, "app-1"), address(&lab, "app-2")];

    // A good change: app-1 is replaced and healthy before app-2 goes.
    lab.project.write(
        "kiln.kdl",
        &PROJECT.replace("GREETING=\"hello\"", "GREETING=\"bonjour\""),
    );
    let up = lab.kiln().args(["up", "-d"]).run().success();
    let events = up.stderr();
    assert_in_order(
        &events,
        &[
            "app-1: removed (old version kept as app-1~previous)",
            "app-1: started",
            "app-1: healthy",
            "app-2: removed (old version kept as app-2~previous)",
            "app-2: started",
            "app-2: healthy",
        ],
    );
    let rolled = lab.root.ps();
    assert_eq!(rolled.len(), 2, "kept versions are not listed: {rolled:?}");
    for name in ["app-1", "app-2"] {
        assert_ne!(rolled.named(name)["pid"], before.named(name)["pid"]);
        assert_eq!(rolled.named(name)["health"], "healthy");
        assert_eq!(greeting(&lab, name), "bonjour");
    }
    // The kept versions answer to their hidden names.
    lab.kiln().args(["logs", "app-1~previous"]).run().success();
    // The new instances took the planned addresses of the old ones.
    assert_eq!(address(&lab, "app-1"), addresses[0]);
    assert_eq!(address(&lab, "app-2"), addresses[1]);

    // A bad change: the new app-1 never gets ready, so it is rolled back and app-2 is
    // left alone.
    lab.project.write(
        "kiln.kdl",
        &PROJECT
            .replace("GREETING=\"hello\"", "GREETING=\"bonjour\"")
            .replace("echo > /ready; ", ""),
    );
    let failed = lab.kiln().args(["up", "-d"]).run().failure();
    // miette wraps the message: as one line.
    let text = failed.message();
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
    let after = lab.root.ps();
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after.named("app-2")["pid"], rolled.named("app-2")["pid"]);
    assert_eq!(after.named("app-1")["state"], "running");
    assert_eq!(greeting(&lab, "app-1"), "bonjour");
    assert_eq!(address(&lab, "app-1"), addresses[0]);
    wait_healthy(&lab, "app-1");

    // By hand: both go back to the version kept before (hello), one at a time; a second
    // rollback undoes the first.
    let rollback = || lab.kiln().args(["rollback", "app"]).run().success();
    let back = rollback();
    let events = back.stderr();
    assert_in_order(
        &events,
        &[
            "app-1: removed (old version kept as app-1~previous)",
            "app-1: healthy",
            "app-2: removed (old version kept as app-2~previous)",
            "app-2: healthy",
        ],
    );
    assert!(events.contains("app-2: rolled back to sha256:"), "{events}");
    for name in ["app-1", "app-2"] {
        assert_eq!(greeting(&lab, name), "hello");
        wait_healthy(&lab, name);
    }
    rollback();
    for name in ["app-1", "app-2"] {
        assert_eq!(greeting(&lab, name), "bonjour");
    }
    assert_eq!(address(&lab, "app-2"), addresses[1]);

    lab.kiln().args(["down"]).run().success();
    assert!(lab.root.ps().is_empty());
    lab.root.assert_clean();
}

#[test]
fn rollback_without_a_kept_version_says_so() {
    let Some(lab) = Lab::unbuilt(Project::new(PROJECT)) else {
        return;
    };
    lab.kiln().args(["up", "-d"]).run().success();
    lab.kiln()
        .args(["rollback", "app"])
        .run()
        .failure()
        .stderr_contains("no previous version of app is kept");
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}
