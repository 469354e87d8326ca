//! More of `kiln run`'s options with Docker's meaning, on the command line and in
//! kiln.kdl: `--sysctl` (namespaced ones, in the container's own /proc), `--stop-signal`
//! and `--stop-timeout` (used by `kiln stop`, `restart`, `down` and rollouts).

use crate::harness::{Lab, Project, images};

fn lab(extra: &str) -> Option<Lab> {
    let kdl = format!(
        "{}{extra}",
        images::tools("tools", "host-binary \"/bin/grep\"\n    cmd \"true\"")
    );
    Lab::build(Project::new(&kdl))
}

fn host_sysctl(path: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{path}")).unwrap()
}

#[test]
fn sysctls_are_set_in_the_containers_namespaces_only() {
    let Some(lab) = lab("") else {
        return;
    };
    let forward = host_sysctl("net/ipv4/ip_forward");
    let shmmni = host_sysctl("kernel/shmmni");
    let value = if forward.trim() == "1" { "0" } else { "1" };
    lab.kiln()
        .args(["run", "--rm", "--sysctl"])
        .args([format!("net.ipv4.ip_forward={value}")])
        .args(["--sysctl", "kernel.shmmni=1234", "tools", "cat"])
        .args(["/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni"])
        .run()
        .success()
        .stdout_is(&format!("{value}\n1234\n"));
    // The machine's own values are untouched.
    assert_eq!(host_sysctl("net/ipv4/ip_forward"), forward);
    assert_eq!(host_sysctl("kernel/shmmni"), shmmni);
    // /proc/sys stays read-only for the command.
    lab.kiln()
        .args([
            "run",
            "--rm",
            "--sysctl",
            "kernel.shmmni=1234",
            "tools",
            "sh",
        ])
        .args(["-c", "echo 1 > /proc/sys/kernel/shmmni"])
        .run()
        .code(2)
        .stderr_contains("Read-only file system");
    lab.kiln()
        .args([
            "run",
            "--rm",
            "--trace",
            "--sysctl",
            "kernel.sem=250 32000 32 128",
        ])
        .args(["tools", "echo"])
        .run()
        .success()
        .stderr_contains("sysctl -w kernel.sem='250 32000 32 128'");
    for (options, message) in [
        (&["--sysctl", "vm.swappiness=1"][..], "it is not namespaced"),
        (
            &["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"][..],
            "need a network namespace",
        ),
        (&["--sysctl", "kernel.hostname=x"][..], "--hostname"),
        (&["--sysctl", "net.ipv4.ip_forward"][..], "NAME=VALUE"),
    ] {
        lab.kiln()
            .args(["run", "--rm"])
            .args(options)
            .args(["tools", "true"])
            .run()
            .code(125)
            .stderr_contains(message);
    }
    assert_eq!(host_sysctl("net/ipv4/ip_forward"), forward);
    lab.root.assert_clean();
}

/// The annotations of container `name`'s `config.json`.
fn annotations(lab: &Lab, name: &str) -> serde_json::Value {
    let id = lab.root.ps().named(name)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = lab
        .root
        .path()
        .join("containers")
        .join(id)
        .join("config.json");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    spec["annotations"].clone()
}

#[test]
fn stop_uses_the_containers_stop_signal_and_timeout() {
    let Some(lab) = lab("") else {
        return;
    };
    // pid 1 catches USR1 only: a TERM would not end it (and is never sent).
    lab.kiln()
        .args(["run", "-d", "--name", "quits", "--stop-signal", "usr1"])
        .args(["--stop-timeout", "30", "tools", "sh", "-c"])
        .args(["trap 'echo got usr1; exit 3' USR1; echo ready; while :; do sleep 0.1; done"])
        .run()
        .success();
    crate::harness::wait_for("the container is ready", || {
        lab.kiln()
            .args(["logs", "quits"])
            .run()
            .stdout()
            .contains("ready")
    });
    let notes = annotations(&lab, "quits");
    assert_eq!(notes["org.opencontainers.image.stopSignal"], "usr1");
    assert_eq!(notes["dev.kiln.stop-timeout"], "30");
    lab.kiln().args(["stop", "quits"]).run().success();
    lab.kiln()
        .args(["logs", "quits"])
        .run()
        .success()
        .stdout_contains("got usr1");
    assert_eq!(lab.root.ps().named("quits")["exit_code"], 3);
    lab.kiln()
        .args(["run", "--rm", "--stop-signal", "SIGNOPE", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("SIGNOPE");
    lab.kiln().args(["rm", "quits"]).run().success();
    lab.root.assert_clean();
}

const SERVICE: &str = r#"
container "box" image="tools" {
    sysctl net.ipv4.ip_forward="1" kernel.shmmni=1234
    stop-signal "SIGUSR1"
    stop-timeout "30s"
    cmd "sh" "-c" "trap 'exit 0' USR1; while :; do sleep 0.1; done"
}
"#;

#[test]
fn a_project_container_takes_them_from_kiln_kdl_and_a_change_recreates_it() {
    let Some(lab) = lab(SERVICE) else {
        return;
    };
    lab.kiln().args(["check"]).run().success();
    lab.kiln().args(["up", "-d"]).run().success();
    lab.kiln()
        .args(["exec", "box", "cat", "/proc/sys/net/ipv4/ip_forward"])
        .args(["/proc/sys/kernel/shmmni"])
        .run()
        .success()
        .stdout_is("1\n1234\n");
    let notes = annotations(&lab, "box");
    assert_eq!(notes["org.opencontainers.image.stopSignal"], "SIGUSR1");
    assert_eq!(notes["dev.kiln.stop-timeout"], "30");
    let kdl = std::fs::read_to_string(lab.project.file_path()).unwrap();
    lab.project
        .write("kiln.kdl", &kdl.replace("shmmni=1234", "shmmni=2345"));
    lab.kiln()
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains("box: removed")
        .stderr_contains("box: started");
    lab.kiln()
        .args(["exec", "box", "cat", "/proc/sys/kernel/shmmni"])
        .run()
        .success()
        .stdout_is("2345\n");
    // Stopped by its own signal: exit 0, not 137.
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}
