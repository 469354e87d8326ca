//! Device rules in real containers: root in a container has CAP_MKNOD and may make any
//! device node, but may open only the standard devices. On a hybrid machine the v1 rules
//! are lifted from outside first, so that the cgroup v2 device program (attached in the
//! unified hierarchy) is what answers: a `/dev/kmsg` twin and a block device twin are
//! made but not opened (EPERM); null, zero, full, random, urandom, tty, ptmx and the ptys
//! are. Nothing is left after `kiln rm`: no cgroup in any hierarchy, no program.

use std::path::{Path, PathBuf};

use crate::harness::{Lab, Project, eventually, host, images};

fn lab() -> Option<Lab> {
    Lab::build(Project::new(&images::tools(
        "tools",
        r#"host-binary "/usr/bin/mknod""#,
    )))
}

/// The container's cgroup directories (every hierarchy): the one directory below each of
/// the state root's.
fn container_cgroups(root: &Path) -> Vec<PathBuf> {
    host::cgroups_of(root)
        .iter()
        .flat_map(|parent| std::fs::read_dir(parent).unwrap().flatten())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Runs `script` in container `name`; its status and stderr.
fn exec(lab: &Lab, name: &str, script: &str) -> (bool, String) {
    let ran = lab.kiln().args(["exec", name, "sh", "-c", script]).run();
    (ran.ok(), ran.stderr())
}

#[test]
fn host_devices_made_in_a_container_cannot_be_opened_under_the_v2_program() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["run", "-d", "--name", "box", "tools", "sleep", "1000"])
        .run()
        .success();
    eventually("the container", || {
        let ran = lab.kiln().args(["exec", "box", "cat", "/dev/null"]).run();
        if ran.ok() { Ok(()) } else { Err(ran.stderr()) }
    });
    let cgroups = container_cgroups(lab.path());
    // The container has a cgroup in the cgroup2 hierarchy (hybrid: `unified`), where its
    // device program is attached.
    assert!(
        cgroups
            .iter()
            .any(|dir| dir.join("cgroup.controllers").exists()),
        "{cgroups:?}"
    );
    // Lift the v1 rules: from here on the program alone decides.
    for dir in &cgroups {
        if dir.join("devices.allow").exists() {
            std::fs::write(dir.join("devices.allow"), "a").unwrap();
            let list = std::fs::read_to_string(dir.join("devices.list")).unwrap();
            assert_eq!(list.trim(), "a *:* rwm");
        }
    }

    let block = host::a_block_device();
    for (node, kind) in [("kmsg2", "c 1 11"), ("disk2", &format!("b {block}"))] {
        let (ok, stderr) = exec(&lab, "box", &format!("mknod /dev/{node} {kind}"));
        assert!(ok, "mknod {kind}: {stderr}");
        let (ok, stderr) = exec(&lab, "box", &format!(": < /dev/{node}"));
        assert!(!ok, "/dev/{node} ({kind}) opened");
        assert!(stderr.contains("Operation not permitted"), "{stderr}");
    }
    for device in ["null", "zero", "full", "random", "urandom", "ptmx"] {
        let (ok, stderr) = exec(&lab, "box", &format!(": <> /dev/{device}"));
        assert!(ok, "/dev/{device}: {stderr}");
    }
    // Allowed, but there is no terminal behind them here: never EPERM.
    for script in [
        ": <> /dev/tty",
        "mknod /dev/pty2 c 136 4000 && : <> /dev/pty2",
    ] {
        let (_, stderr) = exec(&lab, "box", script);
        assert!(
            !stderr.contains("Operation not permitted"),
            "{script}: {stderr}"
        );
    }

    lab.kiln().args(["rm", "-f", "box"]).run().success();
    assert!(host::cgroups_of(lab.path()).is_empty(), "no cgroup left");
    for dir in &cgroups {
        assert!(!dir.exists(), "{}", dir.display());
    }
}
