//! `kiln run`, `ps`, `rm` and `bundle` on kiln-built images: isolation, limits, exit codes,
//! errors before anything is created, runc interop, and nothing left behind.

use std::path::Path;

use crate::harness::tools::runc_run;
use crate::harness::{Lab, Project, host, images, which};

fn lab() -> Option<Lab> {
    Lab::build(Project::new(&images::tools(
        "tools",
        r#"cmd "echo" "default command""#,
    )))
}

#[test]
fn a_container_is_isolated_and_returns_its_exit_code() {
    let Some(lab) = lab() else {
        return;
    };
    let before = host::mounts_under(lab.path());
    lab.kiln()
        .args(["run", "--rm", "-h", "box", "tools", "sh", "-c"])
        .args(["echo pid $$; hostname; ls /proc | grep -c . ; exit 3"])
        .run()
        .code(3)
        .stdout_contains("pid 1\nbox\n");
    lab.kiln()
        .args(["run", "--rm", "tools"])
        .run()
        .success()
        .stdout_is("default command\n");
    lab.kiln()
        .args(["run", "--rm", "tools", "no-such-command"])
        .run()
        .code(127)
        .stderr_contains("command `no-such-command` not found in the image");
    // Capabilities: Docker's default set, nothing else; no_new_privs.
    lab.kiln()
        .args(["run", "--rm", "tools", "cat", "/proc/self/status"])
        .run()
        .success()
        .stdout_contains("CapEff:\t00000000a80425fb")
        .stdout_contains("NoNewPrivs:\t1");
    // /proc/sys is read-only.
    lab.kiln()
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
    assert_eq!(
        host::mounts_under(lab.path()),
        before,
        "nothing stays mounted"
    );
    assert!(host::cgroups_of(lab.path()).is_empty());
    assert!(lab.root.ps().is_empty(), "--rm removed every container");
}

#[test]
fn volumes_limits_and_the_oom_killer() {
    let Some(lab) = lab() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "from the host\n").unwrap();
    let volume = format!("{}:/data:ro", data.path().display());
    lab.kiln()
        .args(["run", "--rm", "-v", &volume, "tools", "sh", "-c"])
        .args(["cat /data/in.txt; echo no > /data/out.txt"])
        .run()
        .code(2)
        .stdout_contains("from the host")
        .stderr_contains("Read-only file system");
    assert!(!data.path().join("out.txt").exists());
    lab.kiln()
        .args(["run", "--rm", "--memory", "16MiB", "tools"])
        .args(["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"])
        .run()
        .code(137)
        .stderr_contains("killed by the kernel, out of memory (limit 16MiB)");
    lab.kiln()
        .args(["run", "--rm", "--pids-limit", "3", "tools", "sh", "-c"])
        .args(["for i in 1 2 3 4 5; do sleep 1 & done; wait"])
        .run()
        .stderr_contains("fork");
    assert!(
        host::cgroups_of(lab.path()).is_empty(),
        "cgroups are removed"
    );
}

#[test]
fn bad_input_is_refused_before_anything_is_created() {
    let Some(lab) = lab() else {
        return;
    };
    for (args, message) in [
        // --pull never: a missing image is not looked for in a registry.
        (
            vec!["run", "--pull", "never", "nope"],
            "no image named `nope`",
        ),
        (
            vec!["run", "--mount", "type=bind,src=/no/such,dst=/x", "tools"],
            "bad mount",
        ),
        (vec!["run", "-v", "relative", "tools"], "bad mount"),
        (vec!["run", "--memory", "lots", "tools"], "invalid memory"),
        (vec!["run", "--cpus", "0", "tools"], "invalid cpus"),
        (
            vec!["run", "--name", "a b", "tools"],
            "invalid container name",
        ),
    ] {
        lab.kiln()
            .args(&args)
            .run()
            .code(125)
            .stderr_contains(message);
    }
    assert!(lab.root.ps().is_empty());
}

#[test]
fn exited_containers_are_listed_until_removed() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["run", "--name", "once", "tools", "sh", "-c", "exit 4"])
        .run()
        .code(4);
    lab.kiln()
        .args(["run", "--name", "once", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("already in use");
    let ps = lab.root.ps();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["name"], "once");
    assert_eq!(ps[0]["state"], "exited");
    assert_eq!(ps[0]["exit_code"], 4);
    lab.kiln()
        .args(["ps"])
        .run()
        .success()
        .stdout_is("CONTAINER ID   PROJECT   NAME   IMAGE   COMMAND   CREATED   STATUS\n");
    // -q: the short ids only (Docker's), of running containers unless -a.
    lab.kiln().args(["ps", "-q"]).run().success().stdout_is("");
    let id = ps[0]["id"].as_str().unwrap();
    lab.kiln()
        .args(["ps", "-aq"])
        .run()
        .success()
        .stdout_is(&format!("{}\n", &id[..12]));
    lab.kiln()
        .args(["rm", "once"])
        .run()
        .success()
        .stdout_is("once\n");
    lab.kiln().args(["rm", "once"]).run().failure();
}

#[test]
fn trace_shows_the_kernel_steps() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args([
            "run", "--rm", "--trace", "--memory", "64MiB", "tools", "sh", "-c", "true",
        ])
        .run()
        .success()
        .stderr_contains("trace: clone: new mount, pid")
        .stderr_contains("pivot_root")
        .stderr_contains("capset")
        .stderr_contains("limit_in_bytes")
        .stderr_contains("bpf: load a cgroup device program")
        .stderr_contains("allow c *:* m, b *:* m, c 1:3 rwm")
        .stderr_contains("exec");
}

#[test]
fn runc_runs_the_bundle_kiln_writes() {
    let Some(lab) = lab() else {
        return;
    };
    if !which("runc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    lab.kiln()
        .args(["bundle", "tools"])
        .args([&bundle])
        .run()
        .success();
    // The bundle kiln made is private: its rootfs may hold an image's devices and setuid
    // programs (issue 10, finding 2).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&bundle).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o700);
    let kiln_output = lab
        .kiln()
        .args(["run", "--rm", "tools"])
        .run()
        .success()
        .stdout();
    let out = runc_run(&bundle, "test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), kiln_output);
}

#[test]
fn two_hundred_run_rm_cycles_leave_nothing_behind() {
    let Some(lab) = lab() else {
        return;
    };
    let before = host::mounts_under(lab.path());
    for _ in 0..200 {
        lab.kiln()
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
    assert_eq!(host::mounts_under(lab.path()), before, "no mount left");
    assert!(host::cgroups_of(lab.path()).is_empty(), "no cgroup left");
    let containers = std::fs::read_dir(lab.path().join("containers"))
        .unwrap()
        .count();
    let names = std::fs::read_dir(lab.path().join("names")).unwrap().count();
    assert_eq!((containers, names), (0, 0), "no record left");
    assert_eq!(
        host::processes_naming(lab.path()),
        Vec::<String>::new(),
        "no process left"
    );
    lab.root.assert_clean();
}

#[test]
fn only_the_standard_devices_can_be_opened() {
    let Some(lab) = lab() else {
        return;
    };
    if !Path::new("/sys/fs/cgroup/devices").is_dir() {
        eprintln!("skipped: no v1 devices controller here (devices.rs tests the v2 program)");
        return;
    }
    let list = lab
        .kiln()
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
