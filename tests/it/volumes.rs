//! Named volumes, `--mount` and labels: volumes made on first use and filled from the image
//! (unless `nocopy`), shared by containers, refused removal while used, pruned when not,
//! scoped per project; `--mount` of binds, volumes and tmpfs with Docker's keys; labels in
//! the record. Each test leaves nothing behind.

use crate::harness::{Lab, Project, images};

const PROJECT: &str = r#"
project "vols"

container "app" image="seeded" {
    volume "data" "/seed"
    label tier="db" owner="ops"
    cmd "sleep" "1000"
}
"#;

fn lab() -> Option<Lab> {
    let seeded = images::tools(
        "seeded",
        r#"run "mkdir" "/seed"
    run "sh" "-c" "echo from the image > /seed/f""#,
    );
    Lab::build(Project::new(&format!("{seeded}{PROJECT}")))
}

#[test]
fn named_volumes_are_filled_from_the_image_shared_and_kept_until_unused() {
    let Some(lab) = lab() else {
        return;
    };
    // First use: made, and the image's /seed moved in.
    lab.kiln()
        .args(["run", "--rm", "-v", "data:/seed", "seeded", "sh", "-c"])
        .args(["cat /seed/f; echo more > /seed/g"])
        .run()
        .success()
        .stdout_is("from the image\n");
    // A volume is not filled again: what the last container wrote stays.
    lab.kiln()
        .args([
            "run",
            "--rm",
            "--mount",
            "type=volume,src=data,dst=/x,readonly",
        ])
        .args(["seeded", "sh", "-c", "cat /x/g; echo no > /x/h"])
        .run()
        .code(2)
        .stdout_contains("more")
        .stderr_contains("Read-only file system");
    // nocopy: a new volume stays empty.
    lab.kiln()
        .args([
            "run",
            "--rm",
            "-v",
            "empty:/seed:nocopy",
            "seeded",
            "ls",
            "/seed",
        ])
        .run()
        .success()
        .stdout_is("");
    // `-v /DST`: an anonymous volume, filled too; `--rm` removes it with the container,
    // `kiln rm` keeps it (as Docker's without -v).
    lab.kiln()
        .args(["run", "--rm", "-v", "/seed", "seeded", "cat", "/seed/f"])
        .run()
        .success()
        .stdout_is("from the image\n");
    lab.kiln()
        .args([
            "run", "--name", "anon", "-v", "/seed", "seeded", "cat", "/seed/f",
        ])
        .run()
        .success()
        .stdout_is("from the image\n");
    lab.kiln().args(["rm", "anon"]).run().success();
    let listed = lab
        .kiln()
        .args(["volume", "ls", "--format", "json"])
        .run()
        .success()
        .json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|v| v["name"] == "data" && v["project"].is_null())
    );
    assert_eq!(
        listed.iter().filter(|v| v["anonymous"] == true).count(),
        1,
        "{listed:?}"
    );

    // In use by a container (running or not): not removed, not pruned.
    lab.kiln()
        .args(["run", "-d", "--name", "holder", "-v", "data:/d"])
        .args([
            "--label", "team=web", "-l", "canary", "seeded", "sleep", "1000",
        ])
        .run()
        .success();
    let ps = lab.root.ps();
    assert_eq!(
        ps.named("holder")["labels"],
        serde_json::json!({"team": "web", "canary": ""})
    );
    lab.kiln()
        .args(["volume", "rm", "data"])
        .run()
        .code(1)
        .says("volume data is in use by holder");
    lab.kiln()
        .args(["volume", "ls", "-q", "--filter", "dangling=false"])
        .run()
        .success()
        .stdout_is("data\n");
    // Prune without --all takes the anonymous volume only; with it, `empty` too.
    lab.kiln()
        .args(["volume", "prune", "-f"])
        .run()
        .success()
        .stdout_contains("Deleted Volumes:\n")
        .stdout_contains("Total reclaimed space:");
    lab.kiln()
        .args(["volume", "prune", "--all"])
        .run()
        .success()
        .stdout_is("Deleted Volumes:\nempty\n\nTotal reclaimed space: 0 B\n");
    lab.kiln().args(["rm", "-f", "holder"]).run().success();
    lab.kiln()
        .args(["volume", "rm", "data"])
        .run()
        .success()
        .stdout_is("data\n");
    lab.kiln()
        .args(["volume", "rm", "data"])
        .run()
        .code(1)
        .stderr_contains("no such volume: data");
    lab.kiln()
        .args(["volume", "rm", "-f", "data"])
        .run()
        .success();
    lab.kiln()
        .args(["volume", "ls", "-q"])
        .run()
        .success()
        .stdout_is("");
    lab.root.assert_clean();
}

#[test]
fn mount_binds_tmpfs_and_refusals() {
    let Some(lab) = lab() else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("conf"), "on the host\n").unwrap();
    let bind = format!(
        "type=bind,source={},target=/etc/app,ro",
        host.path().display()
    );
    lab.kiln()
        .args(["run", "--rm", "--mount", &bind])
        .args(["--mount", "type=tmpfs,dst=/scratch,tmpfs-size=1m,tmpfs-mode=1770"])
        .args(["seeded", "sh", "-c"])
        .args(["cat /etc/app/conf; cat /proc/mounts | while read _ at kind opts _; do [ $at = /scratch ] && echo $kind $opts; done; exit 0"])
        .run()
        .success()
        .stdout_contains("on the host\n")
        .stdout_contains("tmpfs rw,nosuid,nodev,noexec,")
        .stdout_contains("size=1024k,mode=1770");
    // `--mount` refuses a missing bind source, `-v` makes it (as Docker).
    let missing = host.path().join("made");
    lab.kiln()
        .args(["run", "--rm", "--mount"])
        .args([format!("type=bind,src={},dst=/m", missing.display())])
        .args(["seeded", "echo"])
        .run()
        .code(125)
        .says("does not exist");
    assert!(!missing.exists());
    lab.kiln()
        .args(["run", "--rm", "-v"])
        .args([format!("{}:/m", missing.display())])
        .args(["seeded", "touch", "/m/x"])
        .run()
        .success();
    assert!(missing.join("x").exists());
    for (mount, says) in [
        (
            "type=volume,src=v,dst=/d,volume-opt=o=x",
            "`volume-opt` is not supported",
        ),
        (
            "type=volume,src=v,dst=/d,volume-driver=nfs",
            "`volume-driver` is not supported",
        ),
        (
            "type=bind,src=/tmp,dst=/d,volume-nocopy",
            "does not go with type=bind",
        ),
        (
            "type=image,src=seeded,dst=/d",
            "type `image` is not supported",
        ),
    ] {
        lab.kiln()
            .args(["run", "--rm", "--mount", mount, "seeded", "echo"])
            .run()
            .code(125)
            .says(says);
    }
    lab.kiln()
        .args(["volume", "ls", "-q"])
        .run()
        .success()
        .stdout_is("");
    lab.root.assert_clean();
}

#[test]
fn a_projects_volumes_and_labels_are_its_own() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["volume", "create", "data"])
        .run()
        .success();
    lab.kiln().args(["up", "-d"]).run().success();
    lab.kiln()
        .args(["exec", "app", "cat", "/seed/f"])
        .run()
        .success()
        .stdout_is("from the image\n");
    assert_eq!(
        lab.root.ps().named("app")["labels"],
        serde_json::json!({"tier": "db", "owner": "ops"})
    );
    let table = lab.kiln().args(["volume", "ls"]).run().success().stdout();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().take(4).collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["NAME", "PROJECT", "DRIVER", "CONTAINERS"],
            vec!["data", "-", "local", "0"],
            vec!["vols/data", "vols", "local", "1"],
        ]
    );
    // In the project's directory a bare name is the project's volume.
    let inspected = lab
        .project
        .kiln_in(&lab.root)
        .args(["volume", "inspect", "data"])
        .run()
        .success()
        .json();
    assert_eq!(inspected[0]["name"], "vols/data");
    assert_eq!(inspected[0]["containers"], serde_json::json!(["vols/app"]));
    lab.kiln().args(["down", "-v"]).run().success();
    lab.kiln()
        .args(["volume", "ls", "-q"])
        .run()
        .success()
        .stdout_is("data\n");
    lab.kiln().args(["volume", "rm", "data"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn an_images_volumes_are_anonymous_volumes_that_rm_v_removes() {
    let declared = images::tools(
        "declared",
        r#"run "mkdir" "/seed"
    run "sh" "-c" "echo from the image > /seed/f"
    volume "/seed" "/cache""#,
    );
    let app = r#"
project "decl"

container "app" image="declared" {
    cmd "sleep" "1000"
}
"#;
    let Some(lab) = Lab::build(Project::new(&format!("{declared}{app}"))) else {
        return;
    };
    // Each of the image's volumes: an anonymous volume, filled from the image; a write
    // there outlives the container's own layer.
    lab.kiln()
        .args(["run", "--name", "one", "declared", "sh", "-c"])
        .args(["cat /seed/f; echo kept > /seed/g"])
        .run()
        .success()
        .stdout_is("from the image\n");
    let listed = lab
        .kiln()
        .args(["volume", "ls", "--format", "json"])
        .run()
        .success()
        .json();
    let listed = listed.as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|v| v["anonymous"] == true), "{listed:?}");
    let seed = listed
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .find(|name| {
            let inspected = lab
                .kiln()
                .args(["inspect", "--type", "volume", name, "--format", "json"])
                .run()
                .success()
                .json();
            let mountpoint = inspected[0]["mountpoint"].as_str().unwrap().to_string();
            std::path::Path::new(&mountpoint).join("g").exists()
        })
        .expect("the /seed volume has what the container wrote");
    // `kiln inspect NAME` finds a volume when nothing else has that name.
    let inspected = lab
        .kiln()
        .args(["inspect", &seed, "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(inspected[0]["containers"], serde_json::json!(["one"]));
    assert_eq!(inspected[0]["anonymous"], true);
    // A mount of the container's own at one of those paths wins: no volume for it.
    lab.kiln()
        .args(["run", "--rm", "--tmpfs", "/cache", "-v", "mine:/seed"])
        .args(["declared", "cat", "/seed/f"])
        .run()
        .success()
        .stdout_is("from the image\n");
    let count = |lab: &Lab| {
        lab.kiln()
            .args(["volume", "ls", "-q"])
            .run()
            .success()
            .stdout()
            .lines()
            .count()
    };
    assert_eq!(count(&lab), 3, "one's two and `mine`");
    // `rm -v`: the container's anonymous volumes go with it, named ones stay.
    lab.kiln()
        .args([
            "run",
            "--name",
            "two",
            "-v",
            "mine:/data",
            "declared",
            "echo",
        ])
        .run()
        .success();
    lab.kiln().args(["rm", "-v", "one", "two"]).run().success();
    lab.kiln()
        .args(["volume", "ls", "-q"])
        .run()
        .success()
        .stdout_is("mine\n");
    lab.kiln()
        .args(["inspect", "--type", "volume", "nope"])
        .run()
        .code(1)
        .stderr_contains("no such volume: nope");
    // A project's container keeps its image's volumes in the project: `down -v` takes them.
    lab.kiln().args(["up", "-d"]).run().success();
    let listed = lab
        .kiln()
        .args(["volume", "ls", "--format", "json"])
        .run()
        .success()
        .json();
    let projects: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["project"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(projects, ["decl", "decl", "-"], "{listed}");
    lab.kiln().args(["down", "-v"]).run().success();
    lab.kiln()
        .args(["volume", "ls", "-q"])
        .run()
        .success()
        .stdout_is("mine\n");
    lab.kiln().args(["volume", "rm", "mine"]).run().success();
    lab.root.assert_clean();
}
