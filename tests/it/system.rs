//! `kiln system df` and `kiln system prune`: Docker's four lines (count, active, size,
//! reclaimable) and Docker's prune — stopped containers, unused networks, dangling data,
//! the build cache; `-a` unused images, `--volumes` unused anonymous volumes — never taking
//! what is in use: a running container, the image of any container (even untagged), a
//! network with members, a volume a container names. Each test leaves nothing behind.

use serde_json::Value;

use crate::harness::{Lab, Project, images};

fn lab() -> Option<Lab> {
    let tools = images::tools("tools", r#"run "sh" "-c" "echo seeded > /seed""#);
    Lab::build(Project::new(&format!("project \"sys\"\n{tools}")))
}

/// `kiln system df --format json`'s line of `kind`.
fn row(df: &Value, kind: &str) -> Value {
    df["types"]
        .as_array()
        .expect("df lists types")
        .iter()
        .find(|t| t["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {df}"))
        .clone()
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a name").to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn system_df_counts_and_prune_removes_only_what_nothing_uses() {
    let Some(lab) = lab() else {
        return;
    };
    let kiln = || lab.kiln();
    // A running container on a network with an anonymous volume and a named one; a stopped
    // container with an anonymous volume; an empty network; an unused named volume.
    kiln().args(["network", "create", "busy"]).run().success();
    kiln().args(["network", "create", "idle"]).run().success();
    kiln().args(["volume", "create", "kept"]).run().success();
    kiln()
        .args(["run", "-d", "--name", "keep", "--network", "busy"])
        .args(["-v", "/data", "-v", "held:/held", "tools", "sleep", "1000"])
        .run()
        .success();
    kiln()
        .args([
            "run", "--name", "gone", "-v", "/scratch", "tools", "echo", "done",
        ])
        .run()
        .success();

    let df = kiln()
        .args(["system", "df", "--format", "json"])
        .run()
        .success()
        .json();
    let containers = row(&df, "Containers");
    assert_eq!(containers["total"], 2, "{df}");
    assert_eq!(containers["active"], 1, "{df}");
    let volumes = row(&df, "Local Volumes");
    assert_eq!(volumes["total"], 4, "{df}");
    assert_eq!(
        volumes["active"], 3,
        "a stopped container holds its volumes: {df}"
    );
    let images = row(&df, "Images");
    assert_eq!(images["total"], 1, "{df}");
    assert_eq!(images["active"], 1, "{df}");
    assert_eq!(images["reclaimable"], 0, "the image a container uses: {df}");
    assert!(images["size"].as_u64().unwrap() > 0, "{df}");
    assert_eq!(
        row(&df, "Build Cache")["total"],
        2,
        "two cached steps: {df}"
    );
    let table = kiln().args(["system", "df", "-v"]).run().success().stdout();
    for text in [
        "TYPE",
        "RECLAIMABLE",
        "Local Volumes",
        "Images space usage:",
        "sys/tools",
        "Containers space usage:",
        "keep",
        "Local Volumes space usage:",
        "held",
        "Build cache usage:",
    ] {
        assert!(table.contains(text), "no {text:?} in:\n{table}");
    }

    // Asked, and not confirmed: nothing goes.
    kiln()
        .args(["system", "prune"])
        .stdin("n\n")
        .run()
        .success()
        .stderr_contains("Are you sure you want to continue? [y/N]");
    assert_eq!(lab.root.ps().0.len(), 2);

    // Confirmed: the stopped container, the empty network, the anonymous volume no one
    // uses; the running container, its network and volumes, the named volume stay.
    let pruned = kiln()
        .args(["system", "prune", "--volumes", "--format", "json"])
        .stdin("y\n")
        .run()
        .success()
        .json();
    assert_eq!(
        pruned["containers"].as_array().unwrap().len(),
        1,
        "{pruned}"
    );
    assert_eq!(names(&pruned["networks"]), ["idle"], "{pruned}");
    assert_eq!(pruned["volumes"].as_array().unwrap().len(), 1, "{pruned}");
    assert_eq!(pruned["untagged"], serde_json::json!([]), "{pruned}");
    let ps = lab.root.ps();
    assert_eq!(ps.0.len(), 1);
    ps.named("keep");
    let listed = kiln().args(["volume", "ls", "-q"]).run().success().stdout();
    assert_eq!(
        listed.lines().filter(|l| !l.is_empty()).count(),
        3,
        "{listed}"
    );
    assert!(
        listed.contains("held") && listed.contains("kept"),
        "{listed}"
    );
    kiln()
        .args(["network", "ls"])
        .run()
        .success()
        .stdout_contains("busy");

    // The running container's image, untagged: -a removes every unused image but not that
    // one (blobs and unpacked layers), nor does `kiln gc`: it restarts from them.
    kiln().args(["rmi", "tools"]).run().success();
    let text = kiln()
        .args(["system", "prune", "-a", "-f"])
        .run()
        .success()
        .stdout();
    assert!(text.contains("Total reclaimed space:"), "{text}");
    kiln().args(["gc"]).run().success();
    let df = kiln()
        .args(["system", "df", "-v", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(row(&df, "Images")["active"], 1, "{df}");
    assert_eq!(df["images"][0]["names"], serde_json::json!([]), "{df}");
    assert_eq!(row(&df, "Build Cache")["total"], 0, "-a: all of it: {df}");
    kiln().args(["restart", "keep"]).run().success();
    kiln()
        .args(["exec", "keep", "cat", "/seed"])
        .run()
        .success()
        .stdout_is("seeded\n");

    // Once nothing runs, -a --volumes leaves only named volumes.
    kiln().args(["rm", "-f", "keep"]).run().success();
    kiln()
        .args(["system", "prune", "-a", "-f", "--volumes"])
        .run()
        .success()
        .stdout_contains("Deleted Networks:\nbusy\n");
    let df = kiln()
        .args(["system", "df", "--format", "json"])
        .run()
        .success()
        .json();
    for kind in ["Images", "Containers", "Build Cache"] {
        assert_eq!(row(&df, kind)["total"], 0, "{df}");
        assert_eq!(row(&df, kind)["size"], 0, "{df}");
    }
    assert_eq!(
        row(&df, "Local Volumes")["total"],
        2,
        "named ones stay: {df}"
    );
    for name in ["held", "kept"] {
        kiln().args(["volume", "rm", name]).run().success();
    }
    lab.root.assert_clean();
}
