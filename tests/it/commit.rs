//! `kiln commit`: a container's new and deleted files as a layer on its image, the
//! history entry, determinism, `--change`, a running container frozen and thawed, skopeo
//! reading the result, and clear errors.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Project, is_root, which};

const TOOLS: &str = r#"
image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/cat" "/bin/rm" "/bin/sleep"
    run "sh" "-c" "echo doomed > /doomed.txt"
    cmd "sh"
}
"#;

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

/// Removes the containers it names when dropped, even when the test fails.
struct Containers<'a> {
    project: &'a Project,
    root: &'a Path,
    names: Vec<&'static str>,
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            self.project.kiln(self.root).args(["rm", "-f", name]).run();
        }
    }
}

fn inspect(project: &Project, root: &Path, image: &str) -> serde_json::Value {
    project
        .kiln(root)
        .args(["inspect", image, "--format", "json"])
        .run()
        .success()
        .json()
}

#[test]
fn a_stopped_containers_changes_become_a_reproducible_image() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    let _guard = Containers {
        project: &project,
        root,
        names: vec!["changed"],
    };
    let kiln = || project.kiln(root);
    kiln()
        .args(["run", "--name", "changed", "tools", "sh", "-c"])
        .args(["echo hello > /new.txt && rm /doomed.txt"])
        .run()
        .success();
    let first = kiln()
        .args([
            "commit",
            "-m",
            "snapshot",
            "--author",
            "Ada <ada@example.com>",
        ])
        .args(["changed", "snap"])
        .run()
        .success()
        .stdout();
    let digest = first.trim();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{first}"
    );
    // The container did not change: the same layer, and the same image.
    let again = kiln()
        .args([
            "commit",
            "-m",
            "snapshot",
            "--author",
            "Ada <ada@example.com>",
        ])
        .args(["changed", "snap"])
        .run()
        .success()
        .stdout();
    assert_eq!(again, first);
    let other = kiln()
        .args(["commit", "changed", "snap-plain"])
        .run()
        .success()
        .stdout();
    let layers = |image: &str| inspect(&project, root, image)["manifest"]["layers"].clone();
    assert_ne!(other, first, "another message, another config");
    assert_eq!(layers("snap-plain")[2], layers("snap")[2], "the same layer");

    kiln()
        .args(["run", "--rm", "snap", "cat", "/new.txt"])
        .run()
        .success()
        .stdout_is("hello\n");
    kiln()
        .args(["run", "--rm", "snap", "cat", "/doomed.txt"])
        .run()
        .failure()
        .stderr_contains("No such file");
    kiln()
        .args(["run", "--rm", "tools", "cat", "/doomed.txt"])
        .run()
        .success()
        .stdout_is("doomed\n");

    let snap = inspect(&project, root, "snap");
    let base = inspect(&project, root, "tools");
    let base_layers = base["manifest"]["layers"].as_array().unwrap();
    let snap_layers = snap["manifest"]["layers"].as_array().unwrap();
    assert_eq!(snap_layers.len(), base_layers.len() + 1);
    assert_eq!(snap_layers[..base_layers.len()], base_layers[..]);
    let config = &snap["config"];
    assert_eq!(
        config["config"], base["config"]["config"],
        "the config is kept"
    );
    assert_eq!(config["author"], "Ada <ada@example.com>");
    let history = config["history"].as_array().unwrap();
    let last = history.last().unwrap();
    assert_eq!(last["created_by"], "kiln commit: snapshot");
    assert_eq!(last["comment"], "snapshot");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        snap_layers.len()
    );
    kiln()
        .args(["history", "snap"])
        .run()
        .success()
        .stdout_contains("kiln commit: snapshot");

    if which("skopeo") {
        let store = root.join("store");
        let out = Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:snap", store.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(seen["Digest"], digest);
        assert_eq!(seen["Layers"].as_array().unwrap().len(), snap_layers.len());
    }
}

#[test]
fn changes_apply_to_the_config_and_mistakes_are_refused() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    let _guard = Containers {
        project: &project,
        root,
        names: vec!["changed"],
    };
    let kiln = || project.kiln(root);
    kiln()
        .args([
            "run",
            "--name",
            "changed",
            "tools",
            "sh",
            "-c",
            "echo hi > /hi.txt",
        ])
        .run()
        .success();
    kiln()
        .args([
            "commit",
            "-c",
            r#"CMD ["cat", "/hi.txt"]"#,
            "--change",
            "ENV MODE=snap",
        ])
        .args(["changed", "snap"])
        .run()
        .success();
    kiln()
        .args(["run", "--rm", "snap"])
        .run()
        .success()
        .stdout_is("hi\n");
    let config = &inspect(&project, root, "snap")["config"]["config"];
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .contains(&"MODE=snap".into()),
        "{config}"
    );

    kiln()
        .args(["commit", "nope", "x"])
        .run()
        .failure()
        .stderr_contains("no container named or with id `nope`");
    kiln()
        .args(["commit", "-c", "RUN make", "changed", "x"])
        .run()
        .failure()
        .stderr_contains("bad --change `RUN make`: unknown instruction");
    kiln()
        .args(["inspect", "x"])
        .run()
        .failure()
        .stderr_contains("no image named `x`");
}

#[test]
fn a_running_container_is_frozen_for_the_commit_and_runs_on() {
    let Some((project, root)) = tools() else {
        return;
    };
    let root = root.path();
    let _guard = Containers {
        project: &project,
        root,
        names: vec!["live"],
    };
    let kiln = || project.kiln(root);
    let id = kiln()
        .args(["run", "-d", "--name", "live", "tools", "sh", "-c"])
        .args(["echo live > /live.txt; while :; do :; done"])
        .run()
        .success()
        .stdout();
    let written = root
        .join("containers")
        .join(id.trim())
        .join("upper/live.txt");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !written.exists() {
        assert!(Instant::now() < deadline, "the container never wrote");
        std::thread::sleep(Duration::from_millis(20));
    }
    kiln().args(["commit", "live", "livesnap"]).run().success();
    // Thawed: it still spins.
    let stats = kiln()
        .args(["stats", "--no-stream", "--format", "json", "live"])
        .run()
        .success()
        .json();
    assert!(stats[0]["cpu_percent"].as_f64().unwrap() > 5.0, "{stats}");
    kiln()
        .args(["run", "--rm", "livesnap", "cat", "/live.txt"])
        .run()
        .success()
        .stdout_is("live\n");
}
