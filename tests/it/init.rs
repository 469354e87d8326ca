//! `--init` (and `init` in kiln.kdl): kiln's own init as pid 1, as Docker's `--init`
//! (tini). It reaps orphans, forwards signals, passes the command's status through, and
//! runs from a sealed in-memory copy: `/proc/1/exe` is no way to a file of the host.

use crate::harness::{Lab, Project, eventually, images};

fn lab(extra: &str) -> Option<Lab> {
    let kdl = format!(
        "{}{extra}",
        images::tools(
            "tools",
            "host-binary \"/usr/bin/readlink\"\n    cmd \"true\""
        )
    );
    Lab::build(Project::new(&kdl))
}

/// The container's processes that are zombies, as `COMM` each.
fn zombies(lab: &Lab, name: &str) -> Result<Vec<String>, String> {
    let ran = lab
        .kiln()
        .args(["exec", name, "sh", "-c"])
        .args(["test -e /orphan-ran && cat /proc/[0-9]*/stat"])
        .run();
    if !ran.ok() {
        return Err(format!("the orphan has not run yet: {}", ran.stderr()));
    }
    Ok(ran
        .stdout()
        .lines()
        .filter(|l| l.contains(") Z "))
        .map(str::to_string)
        .collect())
}

/// A subshell starts a child and exits at once: the child, orphaned, becomes pid 1's; the
/// command itself then becomes `sleep`, which waits for nobody.
const ORPHANS: &str = "(sh -c 'touch /orphan-ran' &); exec sleep 1000";

#[test]
fn the_init_reaps_the_orphans_a_command_leaves() {
    let Some(lab) = lab("") else {
        return;
    };
    lab.kiln()
        .args([
            "run", "-d", "--init", "--name", "reaped", "tools", "sh", "-c",
        ])
        .args([ORPHANS])
        .run()
        .success();
    eventually("every orphan reaped", || match zombies(&lab, "reaped")? {
        z if z.is_empty() => Ok(()),
        z => Err(format!("zombies: {z:?}")),
    });
    // Without it, `sleep` as pid 1 leaves them: the test sees zombies when there are.
    lab.kiln()
        .args(["run", "-d", "--name", "unreaped", "tools", "sh", "-c"])
        .args([ORPHANS])
        .run()
        .success();
    eventually(
        "the zombies of a pid 1 that does not wait",
        || match zombies(&lab, "unreaped")? {
            z if z.is_empty() => Err("none yet".to_string()),
            _ => Ok(()),
        },
    );
    lab.kiln()
        .args(["rm", "-f", "reaped", "unreaped"])
        .run()
        .success();
    lab.root.assert_clean();
}

/// A shell that sets no handler: as pid 1 it never gets SIGTERM.
const NO_HANDLER: &str = "echo ready; sleep 1000; true";

#[test]
fn kiln_stop_reaches_a_command_that_set_no_handler() {
    let Some(lab) = lab("") else {
        return;
    };
    for (name, init) in [("with", true), ("without", false)] {
        lab.kiln()
            .args(["run", "-d", "--name", name])
            .args(init.then_some("--init"))
            .args(["tools", "sh", "-c", NO_HANDLER])
            .run()
            .success();
        lab.wait_for_log(name, "ready");
    }
    // The init forwards SIGTERM to the shell, which ends by it: 128+15. Without the init,
    // the shell as pid 1 never sees it and only the SIGKILL after the timeout ends it.
    lab.kiln()
        .args(["stop", "-t", "60", "with"])
        .run()
        .success();
    assert_eq!(lab.root.ps().named("with")["exit_code"], 143);
    lab.kiln()
        .args(["stop", "-t", "1", "without"])
        .run()
        .success();
    assert_eq!(lab.root.ps().named("without")["exit_code"], 137);
    lab.kiln().args(["rm", "with", "without"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn the_commands_status_passes_through() {
    let Some(lab) = lab("") else {
        return;
    };
    for (script, code) in [("exit 7", 7), ("kill -TERM $$", 143), ("true", 0)] {
        lab.kiln()
            .args(["run", "--rm", "--init", "tools", "sh", "-c", script])
            .run()
            .code(code);
    }
    lab.kiln()
        .args(["run", "--rm", "--init", "tools", "no-such-command"])
        .run()
        .code(127)
        .stderr_contains("`no-such-command` not found");
    // A PATH lookup as without --init; the command's arguments and environment unchanged.
    lab.kiln()
        .args(["run", "--rm", "--init", "-e", "WHO=me", "tools", "sh", "-c"])
        .args(["echo \"$0 $1 $WHO $$\"", "zero", "one"])
        .run()
        .success()
        .stdout_is("zero one me 2\n");
    lab.root.assert_clean();
}

#[test]
fn proc_1_exe_is_a_sealed_copy_not_a_file_of_the_host() {
    let Some(lab) = lab("") else {
        return;
    };
    let ran = lab
        .kiln()
        .args(["run", "--rm", "--init", "tools", "sh", "-c"])
        .args([
            "cat /proc/1/comm; readlink /proc/1/exe; echo x > /proc/1/exe && echo WROTE; echo x >> /proc/1/exe && echo APPENDED; true",
        ])
        .run()
        .success();
    let out = ran.stdout();
    assert!(
        out.starts_with("kiln-init\n/memfd:kiln-init (deleted)\n"),
        "{out}"
    );
    assert!(!out.contains("WROTE") && !out.contains("APPENDED"), "{out}");
    lab.root.assert_clean();
}

const SERVICE: &str = r#"
container "box" image="tools" {
    init
    cmd "sh" "-c" "echo ready; sleep 1000; true"
}
"#;

#[test]
fn a_project_container_takes_init_from_kiln_kdl() {
    let Some(lab) = lab(SERVICE) else {
        return;
    };
    lab.kiln().args(["check"]).run().success();
    lab.kiln().args(["up", "-d"]).run().success();
    lab.kiln()
        .args(["exec", "box", "cat", "/proc/1/comm"])
        .run()
        .success()
        .stdout_is("kiln-init\n");
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}
