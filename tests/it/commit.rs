//! `kiln commit`: a container's new and deleted files as a layer on its image, the
//! history entry, determinism, `--change`, a running container frozen and thawed, skopeo
//! reading the result, and clear errors.

use crate::harness::tools::skopeo_inspect;
use crate::harness::{Lab, Project, images, wait_for, which};

fn lab() -> Option<Lab> {
    Lab::build(Project::new(&images::tools(
        "tools",
        r#"run "sh" "-c" "echo doomed > /doomed.txt"
    cmd "sh""#,
    )))
}

fn inspect(lab: &Lab, image: &str) -> serde_json::Value {
    lab.kiln()
        .args(["inspect", image, "--format", "json"])
        .run()
        .success()
        .json()
}

#[test]
fn a_stopped_containers_changes_become_a_reproducible_image() {
    let Some(lab) = lab() else {
        return;
    };
    let kiln = || lab.kiln();
    kiln()
        .args(["run", "--name", "changed", "tools", "sh", "-c"])
        .args(["echo hello > /new.txt && rm /doomed.txt"])
        .run()
        .success();
    let commit = || {
        kiln()
            .args(["commit", "-m", "snapshot"])
            .args(["--author", "Ada <ada@example.com>", "changed", "snap"])
            .run()
            .success()
            .stdout()
    };
    let first = commit();
    let digest = first.trim();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{first}"
    );
    // The container did not change: the same layer, and the same image.
    let again = commit();
    assert_eq!(again, first);
    let other = kiln()
        .args(["commit", "changed", "snap-plain"])
        .run()
        .success()
        .stdout();
    let layers = |image: &str| inspect(&lab, image)["manifest"]["layers"].clone();
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

    let snap = inspect(&lab, "snap");
    let base = inspect(&lab, "tools");
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
        let store = lab.path().join("store");
        let seen = skopeo_inspect(&format!("oci:{}:snap", store.display()));
        assert_eq!(seen["Digest"], digest);
        assert_eq!(seen["Layers"].as_array().unwrap().len(), snap_layers.len());
    }
    kiln().args(["rm", "changed"]).run().success();
}

#[test]
fn changes_apply_to_the_config_and_mistakes_are_refused() {
    let Some(lab) = lab() else {
        return;
    };
    let kiln = || lab.kiln();
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
    let config = &inspect(&lab, "snap")["config"]["config"];
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
        .args(["inspect", "--type", "image", "x"])
        .run()
        .failure()
        .stderr_contains("no image named `x`");
    kiln().args(["rm", "changed"]).run().success();
}

#[test]
fn a_running_container_is_frozen_for_the_commit_and_runs_on() {
    let Some(lab) = lab() else {
        return;
    };
    let kiln = || lab.kiln();
    let id = kiln()
        .args(["run", "-d", "--name", "live", "tools", "sh", "-c"])
        .args(["echo live > /live.txt; while :; do :; done"])
        .run()
        .success()
        .stdout();
    let written = lab
        .path()
        .join("containers")
        .join(id.trim())
        .join("upper/live.txt");
    wait_for("the container to write", || written.exists());
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
    kiln().args(["rm", "-f", "live"]).run().success();
}
