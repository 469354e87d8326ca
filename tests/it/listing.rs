//! Listing and reading, as Docker users type it: `kiln ps --filter` (each key, repeated
//! filters combined as Docker combines them, with -q), `kiln images -q --filter`, and
//! `kiln logs --tail/--until` of a detached container.

use crate::harness::{Lab, Project, images, wait_for};

fn lab() -> Option<Lab> {
    Lab::build(Project::new(&format!(
        "{}{}",
        images::tools("tools", r#"label "tier"="front" "team"="web""#),
        // Built on tools: one more layer on top of its layers.
        r#"
image "child" {
    from "tools"
    run "sh" "-c" "echo child > /child"
}
"#
    )))
}

/// The names `kiln ps` lists with `args`, sorted.
fn names(lab: &Lab, args: &[&str]) -> Vec<String> {
    lab.kiln()
        .args(["ps", "--format", "json"])
        .args(args)
        .run()
        .success()
        .names()
}

#[test]
fn ps_filters_combine_as_dockers() {
    let Some(lab) = lab() else {
        return;
    };
    let kiln = || lab.kiln();
    kiln()
        .args(["network", "create", "front", "--subnet", "10.89.40.0/24"])
        .run()
        .success();
    for (name, image, extra) in [
        ("web", "tools", vec!["--network", "front"]),
        ("web-2", "child", vec![]),
        ("db", "tools", vec![]),
    ] {
        kiln()
            .args(["run", "-d", "--name", name])
            .args(extra)
            .args([image, "sleep", "1000"])
            .run()
            .success();
    }
    kiln()
        .args(["run", "-d", "--name", "done", "tools", "sh", "-c", "exit 0"])
        .run()
        .success();
    wait_for("done to exit", || {
        lab.root.ps().get("done")["state"] == "exited"
    });

    // name: any part, or a regular expression; repeated names are alternatives.
    assert_eq!(names(&lab, &["--filter", "name=web"]), ["web", "web-2"]);
    assert_eq!(names(&lab, &["--filter", "name=^web$"]), ["web"]);
    assert_eq!(
        names(&lab, &["-f", "name=^web$", "-f", "name=db"]),
        ["db", "web"]
    );
    // Different keys must all match.
    assert_eq!(
        names(&lab, &["-f", "name=web", "-f", "ancestor=child"]),
        ["web-2"]
    );
    // status looks at every container, as -a does.
    assert_eq!(names(&lab, &["--filter", "status=exited"]), ["done"]);
    assert_eq!(
        names(&lab, &["-f", "status=exited", "-f", "status=running"]),
        ["db", "done", "web", "web-2"]
    );
    assert!(names(&lab, &["-f", "status=paused"]).is_empty());
    // label: the image's labels are the container's; every label filter must match.
    assert_eq!(
        names(&lab, &["-f", "label=tier=front", "-f", "label=team"]),
        ["db", "web", "web-2"]
    );
    assert!(names(&lab, &["-f", "label=tier=front", "-f", "label=nope"]).is_empty());
    assert!(names(&lab, &["-f", "label=tier=back"]).is_empty());
    // ancestor: the image, by name or digest, or one built on it.
    assert_eq!(
        names(&lab, &["-f", "ancestor=tools"]),
        ["db", "web", "web-2"]
    );
    let child = lab.root.ps().get("web-2")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let digest = lab.root.record(&child)["image_digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        names(&lab, &["-f", &format!("ancestor={digest}")]),
        ["web-2"]
    );
    // network, id, project.
    assert_eq!(names(&lab, &["-f", "network=front"]), ["web"]);
    assert_eq!(
        names(&lab, &["-f", &format!("id={}", &child[..8])]),
        ["web-2"]
    );
    assert!(names(&lab, &["-f", "project=shop"]).is_empty());
    // -q with a filter: the short ids only.
    kiln()
        .args(["ps", "-q", "-f", "name=web-2"])
        .run()
        .success()
        .stdout_is(&format!("{}\n", &child[..12]));
    // A mistake is an error, never a filter dropped.
    kiln()
        .args(["ps", "-f", "colour=red"])
        .run()
        .failure()
        .stderr_contains("unknown filter key `colour`");
    kiln()
        .args(["ps", "-f", "status=sleeping"])
        .run()
        .failure()
        .stderr_contains("invalid filter `status=sleeping`");
    kiln()
        .args(["ps", "-f", "name"])
        .run()
        .failure()
        .stderr_contains("expected KEY=VALUE");

    kiln()
        .args(["rm", "-f", "web", "web-2", "db", "done"])
        .run()
        .success();
    kiln().args(["network", "rm", "front"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn images_quiet_and_filters() {
    let Some(lab) = lab() else {
        return;
    };
    let listed = lab
        .kiln()
        .args(["images", "--format", "json"])
        .run()
        .success();
    let digest = |name: &str| {
        listed
            .json()
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"].as_str().unwrap().ends_with(&format!("/{name}")))
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .chars()
            .take("sha256:".len() + 12)
            .collect::<String>()
    };
    let (child, tools) = (digest("child"), digest("tools"));
    lab.kiln()
        .args(["images", "-q"])
        .run()
        .success()
        .stdout_is(&format!("{child}\n{tools}\n"));
    lab.kiln()
        .args(["images", "-q", "--filter", "reference=*/t*"])
        .run()
        .success()
        .stdout_is(&format!("{tools}\n"));
    lab.kiln()
        .args([
            "images",
            "-q",
            "-f",
            "reference=*/tools",
            "-f",
            "reference=*/child",
        ])
        .run()
        .success()
        .stdout_is(&format!("{child}\n{tools}\n"));
    // Labels are inherited by an image built on another.
    lab.kiln()
        .args([
            "images",
            "-q",
            "-f",
            "label=tier=front",
            "-f",
            "dangling=false",
        ])
        .run()
        .success()
        .stdout_is(&format!("{child}\n{tools}\n"));
    lab.kiln()
        .args(["images", "-q", "-f", "dangling=true"])
        .run()
        .success()
        .stdout_is("");
    lab.kiln()
        .args(["images", "-f", "size=1"])
        .run()
        .failure()
        .stderr_contains("unknown filter key `size`");
}

#[test]
fn logs_tail_and_until() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["run", "-d", "--name", "count", "tools", "sh", "-c"])
        .args(["for i in 1 2 3 4 5; do echo line $i; done; sleep 1; echo late"])
        .run()
        .success();
    wait_for("count to exit", || {
        lab.root.ps().get("count")["state"] == "exited"
    });
    let kiln = || lab.kiln();
    kiln()
        .args(["logs", "--tail", "2", "count"])
        .run()
        .success()
        .stdout_is("line 5\nlate\n");
    kiln()
        .args(["logs", "-n", "0", "count"])
        .run()
        .success()
        .stdout_is("");
    kiln()
        .args(["logs", "--tail", "all", "count"])
        .run()
        .success()
        .stdout_is("line 1\nline 2\nline 3\nline 4\nline 5\nlate\n");
    // --until: the time of line 5 (with --timestamps) keeps `late` out, a second later.
    let stamped = kiln()
        .args(["logs", "-t", "--tail", "2", "count"])
        .run()
        .success()
        .stdout();
    let five = stamped.lines().next().unwrap().split_once(' ').unwrap().0;
    kiln()
        .args(["logs", "--until", five, "--tail", "3", "count"])
        .run()
        .success()
        .stdout_is("line 3\nline 4\nline 5\n");
    kiln()
        .args(["logs", "--since", five, "--until", five, "count"])
        .run()
        .success()
        .stdout_is("line 5\n");
    // A duration: nothing was written in the future, nor before an hour ago.
    kiln()
        .args(["logs", "--until", "1h", "count"])
        .run()
        .success()
        .stdout_is("");
    // -f with a past --until returns at once.
    kiln()
        .args(["logs", "-f", "--until", five, "--tail", "1", "count"])
        .run()
        .success()
        .stdout_is("line 5\n");
    kiln()
        .args(["logs", "--until", "yesterday", "count"])
        .run()
        .failure()
        .stderr_contains("invalid time `yesterday`");
    kiln()
        .args(["logs", "--tail", "many", "count"])
        .run()
        .code(2);
    kiln().args(["rm", "count"]).run().success();
    lab.root.assert_clean();
}
