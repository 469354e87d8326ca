//! kiln as a user who is not root: what needs no privilege works (the state root in
//! `$XDG_DATA_HOME/kiln`), and every command that needs root says so in one line, with
//! why, before it does anything — never a raw EPERM from half-way.

use std::os::unix::fs::chown;
use std::path::Path;

use crate::harness::{Kiln, Project, is_root};

/// `nobody`: no home, no groups.
const NOBODY: u32 = 65534;

const PROJECT: &str = r#"project "plain"

image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/cat"
    copy "hello.txt" "/hello.txt"
    cmd "cat" "/hello.txt"
}

image "stepped" {
    from "tools"
    run "sh" "-c" "echo made > /made"
}

container "app" image="tools"
"#;

/// Everything under `dir` is `nobody`'s (temporary directories are private to root).
fn give_to_nobody(dir: &Path) {
    chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            give_to_nobody(&path);
        } else {
            chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
        }
    }
}

#[test]
fn what_needs_no_root_works_and_the_rest_says_why() {
    if !is_root() {
        return;
    }
    let project = Project::new(PROJECT).file("hello.txt", "hello\n");
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for dir in [project.path(), data.path(), out.path()] {
        give_to_nobody(dir);
    }
    let kiln = || {
        Kiln::new()
            .user(NOBODY, NOBODY)
            .current_dir(project.path())
            .env("HOME", data.path())
            .env("XDG_DATA_HOME", data.path())
    };
    kiln().args(["check"]).run().success();
    kiln().args(["graph"]).run().success();
    kiln().args(["build", "tools"]).run().success();
    assert!(data.path().join("kiln/store/index.json").is_file());
    kiln()
        .args(["images"])
        .run()
        .success()
        .stdout_contains("plain/tools");
    kiln()
        .args(["inspect", "tools"])
        .run()
        .success()
        .stdout_contains("plain/tools");
    let archive = out.path().join("tools.tar");
    kiln()
        .args(["export", "tools", "-o"])
        .args([&archive])
        .run()
        .success();
    assert!(archive.is_file());

    // A `run` step needs a container: said before anything runs.
    let build = kiln().args(["build", "stepped"]).run();
    assert_eq!(build.output.status.code(), Some(1), "{}", build.stderr());
    assert!(
        build
            .stderr()
            .contains("`kiln build` needs root: a `run` step"),
        "{}",
        build.stderr()
    );
    for args in [
        &["run", "--rm", "tools"][..],
        &["up", "-d"],
        &["exec", "app", "true"],
        &["network", "create", "front"],
        &["down"],
    ] {
        let ran = kiln().args(args).run();
        assert!(!ran.ok(), "{args:?} succeeded");
        let stderr = ran.stderr();
        assert!(
            stderr.contains(&format!("`kiln {}` needs root: ", args[0])),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("Operation not permitted"), "{stderr}");
    }
}
