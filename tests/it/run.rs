//! `kiln run`, `ps`, `rm` and `bundle` on kiln-built images: isolation, limits, exit codes,
//! errors before anything is created, runc interop, and nothing left behind.

use std::path::Path;

use crate::harness::{Project, is_root, which};

const TOOLS: &str = r#"
image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/cat" "/bin/ls" "/bin/hostname" "/bin/dd" "/bin/echo"
    cmd "echo" "default command"
}
"#;

/// A built `tools` image in a fresh state root, or `None` when not root.
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

/// The machine's mounts, but for network namespace pins (nsfs): the network tests, running
/// beside these, make and remove those, and check them themselves.
fn mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| !l.contains(" - nsfs "))
        .map(|l| l.split(' ').skip(3).take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

fn kiln_cgroups(root: &Path) -> Vec<String> {
    let hash = {
        let canonical = std::fs::canonicalize(root).unwrap();
        blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex()[..12].to_string()
    };
    let mut found = Vec::new();
    for controller in ["memory", "pids", "cpu", "unified"] {
        let dir = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("kiln")
            .join(&hash);
        // The state root's own cgroup goes with its last container.
        if dir.exists() {
            found.push(dir.display().to_string());
        }
    }
    found
}

#[test]
fn a_container_is_isolated_and_returns_its_exit_code() {
    let Some((project, root)) = tools() else {
        return;
    };
    let before = mounts();
    project
        .kiln(root.path())
        .args(["run", "--rm", "-h", "box", "tools", "sh", "-c"])
        .args(["echo pid $$; hostname; ls /proc | grep -c . ; exit 3"])
        .run()
        .code(3)
        .stdout_contains("pid 1\nbox\n");
    project
        .kiln(root.path())
        .args(["run", "--rm", "tools"])
        .run()
        .success()
        .stdout_is("default command\n");
    project
        .kiln(root.path())
        .args(["run", "--rm", "tools", "no-such-command"])
        .run()
        .code(127)
        .stderr_contains("command `no-such-command` not found in the image");
    // Capabilities: Docker's default set, nothing else; no_new_privs.
    project
        .kiln(root.path())
        .args(["run", "--rm", "tools", "cat", "/proc/self/status"])
        .run()
        .success()
        .stdout_contains("CapEff:\t00000000a80425fb")
        .stdout_contains("NoNewPrivs:\t1");
    // /proc/sys is read-only.
    project
        .kiln(root.path())
        .args([
            "run",
            "--rm",
            "tools",
            "sh",
            "-c",
            "echo x > /proc/sys/kernel/hostname",
        ])
        .run()
        .code(2);
    assert_eq!(mounts(), before, "nothing stays mounted");
    assert!(kiln_cgroups(root.path()).is_empty());
    let ps = project
        .kiln(root.path())
        .args(["ps", "-a", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(ps, serde_json::json!([]), "--rm removed every container");
}

#[test]
fn volumes_limits_and_the_oom_killer() {
    let Some((project, root)) = tools() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "from the host\n").unwrap();
    let volume = format!("{}:/data:ro", data.path().display());
    project
        .kiln(root.path())
        .args(["run", "--rm", "-v", &volume, "tools", "sh", "-c"])
        .args(["cat /data/in.txt; echo no > /data/out.txt"])
        .run()
        .code(2)
        .stdout_contains("from the host")
        .stderr_contains("Read-only file system");
    assert!(!data.path().join("out.txt").exists());
    project
        .kiln(root.path())
        .args(["run", "--rm", "--memory", "16MiB", "tools"])
        .args(["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"])
        .run()
        .code(137)
        .stderr_contains("killed by the kernel, out of memory (limit 16MiB)");
    project
        .kiln(root.path())
        .args(["run", "--rm", "--pids-limit", "3", "tools", "sh", "-c"])
        .args(["for i in 1 2 3 4 5; do sleep 1 & done; wait"])
        .run()
        .stderr_contains("fork");
    assert!(kiln_cgroups(root.path()).is_empty(), "cgroups are removed");
}

#[test]
fn bad_input_is_refused_before_anything_is_created() {
    let Some((project, root)) = tools() else {
        return;
    };
    for (args, message) in [
        (vec!["run", "nope"], "no image named `nope`"),
        (vec!["run", "-v", "/no/such:/x", "tools"], "bad volume"),
        (vec!["run", "-v", "relative", "tools"], "bad volume"),
        (vec!["run", "--memory", "lots", "tools"], "invalid memory"),
        (vec!["run", "--cpus", "0", "tools"], "invalid cpus"),
        (
            vec!["run", "--name", "a b", "tools"],
            "invalid container name",
        ),
    ] {
        project
            .kiln(root.path())
            .args(&args)
            .run()
            .code(125)
            .stderr_contains(message);
    }
    let ps = project
        .kiln(root.path())
        .args(["ps", "-a", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(ps, serde_json::json!([]));
}

#[test]
fn exited_containers_are_listed_until_removed() {
    let Some((project, root)) = tools() else {
        return;
    };
    project
        .kiln(root.path())
        .args(["run", "--name", "once", "tools", "sh", "-c", "exit 4"])
        .run()
        .code(4);
    project
        .kiln(root.path())
        .args(["run", "--name", "once", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("already in use");
    let ps = project
        .kiln(root.path())
        .args(["ps", "-a", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(ps[0]["name"], "once");
    assert_eq!(ps[0]["state"], "exited");
    assert_eq!(ps[0]["exit_code"], 4);
    project
        .kiln(root.path())
        .args(["ps"])
        .run()
        .success()
        .stdout_is("CONTAINER ID   NAME   IMAGE   COMMAND   CREATED   STATUS\n");
    project
        .kiln(root.path())
        .args(["rm", "once"])
        .run()
        .success()
        .stdout_is("once\n");
    project
        .kiln(root.path())
        .args(["rm", "once"])
        .run()
        .failure();
}

#[test]
fn trace_shows_the_kernel_steps() {
    let Some((project, root)) = tools() else {
        return;
    };
    project
        .kiln(root.path())
        .args([
            "run", "--rm", "--trace", "--memory", "64MiB", "tools", "sh", "-c", "true",
        ])
        .run()
        .success()
        .stderr_contains("trace: clone: new mount, pid")
        .stderr_contains("pivot_root")
        .stderr_contains("capset")
        .stderr_contains("limit_in_bytes")
        .stderr_contains("exec");
}

#[test]
fn runc_runs_the_bundle_kiln_writes() {
    let Some((project, root)) = tools() else {
        return;
    };
    if !which("runc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    project
        .kiln(root.path())
        .args(["bundle", "tools"])
        .args([&bundle])
        .run()
        .success();
    let kiln_output = project
        .kiln(root.path())
        .args(["run", "--rm", "tools"])
        .run()
        .success()
        .stdout();
    let state = dir.path().join("runc-state");
    let id = format!("kiln-test-{}", std::process::id());
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let _ = std::process::Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["delete", "-f", &id])
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), kiln_output);
}

#[test]
fn two_hundred_run_rm_cycles_leave_nothing_behind() {
    let Some((project, root)) = tools() else {
        return;
    };
    let before = mounts();
    for _ in 0..200 {
        project
            .kiln(root.path())
            .args([
                "run",
                "--rm",
                "--pids-limit",
                "16",
                "tools",
                "sh",
                "-c",
                "exit 0",
            ])
            .run()
            .success();
    }
    assert_eq!(mounts(), before, "no mount left");
    assert!(kiln_cgroups(root.path()).is_empty(), "no cgroup left");
    let containers = std::fs::read_dir(root.path().join("containers"))
        .unwrap()
        .count();
    let names = std::fs::read_dir(root.path().join("names"))
        .unwrap()
        .count();
    assert_eq!((containers, names), (0, 0), "no record left");
    let leftover: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmd| String::from_utf8_lossy(cmd).contains(&root.path().display().to_string()))
        .collect();
    assert!(leftover.is_empty(), "no process left");
}

#[test]
fn only_the_standard_devices_can_be_opened() {
    let Some((project, root)) = tools() else {
        return;
    };
    if !Path::new("/sys/fs/cgroup/devices").is_dir() {
        eprintln!("skipped: no v1 devices controller here (cgroup v2 needs eBPF, not done yet)");
        return;
    }
    let list = project
        .kiln(root.path())
        .args([
            "run",
            "--rm",
            "tools",
            "cat",
            "/sys/fs/cgroup/devices/devices.list",
        ])
        .run()
        .success()
        .stdout();
    assert!(list.contains("c 1:3 rwm"), "{list}");
    assert!(list.contains("b *:* m"), "{list}");
    assert!(
        !list.contains("a *:* rwm"),
        "everything else is denied: {list}"
    );
}
