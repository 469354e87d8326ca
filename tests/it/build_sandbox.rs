//! A build's `run` steps get a container's protections, since a base image may be anyone's:
//! a cgroup per step with the device rules (v1 `devices` and the cgroup v2 program), the
//! default seccomp profile and Docker's capability set. Root in a step may make a `/dev/kmsg`
//! or block device twin (CAP_MKNOD, as in Docker) but not open it; it cannot make a user
//! namespace. Each step's cgroup is gone when it ends — succeeded, failed or interrupted.

use std::path::PathBuf;
use std::process::Stdio;

use crate::harness::{Lab, Project, eventually, host, images, wait_for};

/// The tools image plus `extra` steps, in a fresh root, not built yet.
fn lab(extra: &str) -> Option<Lab> {
    Lab::unbuilt(Project::new(&images::tools(
        "tools",
        &format!(r#"host-binary "/usr/bin/mknod" "/usr/bin/unshare"{extra}"#),
    )))
}

/// Builds with one more `run` step, `script`; it must fail with `expected` in its output.
fn step_fails(script: &str, expected: &str) {
    let Some(lab) = lab(&format!("\n    run \"sh\" \"-c\" \"{script}\"")) else {
        return;
    };
    let ran = lab.kiln().args(["build"]).run().failure();
    assert!(
        ran.stderr().contains(expected),
        "`{script}` did not fail with `{expected}`:\n{}",
        ran.stderr()
    );
    lab.root.assert_clean();
}

#[test]
fn a_run_step_cannot_open_a_kmsg_twin_it_made() {
    // mknod succeeds (CAP_MKNOD, `m` on every device), opening does not.
    step_fails(
        "mknod /kmsg2 c 1 11 && echo made && dd if=/dev/null of=/kmsg2 count=0",
        "Operation not permitted",
    );
}

#[test]
fn a_run_step_cannot_read_a_block_device_twin_it_made() {
    let block = host::a_block_device();
    step_fails(
        &format!("mknod /disk2 b {block} && dd if=/disk2 of=/dev/null count=1"),
        "Operation not permitted",
    );
}

#[test]
fn a_run_step_cannot_make_a_user_namespace() {
    // unshare(CLONE_NEWUSER) needs no capability: only the seccomp profile stops it.
    step_fails("unshare -U true", "Operation not permitted");
}

#[test]
fn the_device_files_of_a_run_step_still_work() {
    let Some(lab) = lab(
        "\n    run \"sh\" \"-c\" \"echo x > /dev/null && dd if=/dev/zero of=/dev/null count=1 && dd if=/dev/urandom of=/dev/null count=1\"",
    ) else {
        return;
    };
    lab.kiln().args(["build"]).run().success();
    lab.root.assert_clean();
}

/// The cgroup directories of the `run` step that runs now (every hierarchy), once the
/// step is in them.
fn running_step(lab: &Lab) -> Vec<PathBuf> {
    eventually("the step's cgroup", || {
        let steps: Vec<_> = host::cgroups_of(lab.path())
            .iter()
            .flat_map(|parent| std::fs::read_dir(parent).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("build-")
            })
            .filter(|p| {
                let procs = std::fs::read_to_string(p.join("cgroup.procs")).unwrap_or_default();
                !procs.trim().is_empty()
            })
            .collect();
        if steps.is_empty() {
            Err("no build cgroup with the step in it yet".into())
        } else {
            Ok(steps)
        }
    })
}

#[test]
fn the_cgroup_of_a_step_whose_kiln_was_killed_is_removed_by_gc() {
    let Some(lab) = lab("\n    run \"sleep\" \"1000\"") else {
        return;
    };
    let mut build = lab
        .kiln()
        .args(["build"])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let steps = running_step(&lab);
    build.kill().unwrap();
    build.wait().unwrap();
    // The step died with kiln (PR_SET_PDEATHSIG); its empty cgroup is what is left.
    wait_for("the step to die", || {
        steps.iter().all(|dir| {
            std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty())
        })
    });
    assert!(!host::cgroups_of(lab.path()).is_empty());
    lab.kiln()
        .args(["gc"])
        .run()
        .success()
        .stdout_contains("removed 1 cgroups of build steps whose kiln was killed");
    lab.root.assert_clean();
}

#[test]
fn ctrl_c_during_a_run_step_leaves_no_cgroup() {
    let Some(lab) = lab("\n    run \"sleep\" \"1000\"") else {
        return;
    };
    let build = lab
        .kiln()
        .args(["build"])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The step runs in a cgroup of its own, below the root's, in every hierarchy: v1's
    // devices with the allow list, and the unified one where the device program is.
    let steps = running_step(&lab);
    let unified = steps
        .iter()
        .any(|dir| dir.join("cgroup.controllers").exists());
    assert!(unified, "{steps:?}");
    if std::path::Path::new("/sys/fs/cgroup/devices").exists() {
        let devices = steps
            .iter()
            .find(|dir| dir.join("devices.list").exists())
            .expect("a cgroup in the devices hierarchy");
        let list = std::fs::read_to_string(devices.join("devices.list")).unwrap();
        assert!(!list.contains("a *:* rwm"), "{list}");
        assert!(list.contains("c 1:3 rwm"), "{list}");
    }
    host::signal(build.id().into(), nix::sys::signal::Signal::SIGINT);
    let output = build.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    lab.root.assert_clean();
    let scratch: Vec<_> = std::fs::read_dir(lab.path().join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(scratch.is_empty(), "{scratch:?}");
}
