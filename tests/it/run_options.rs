//! `kiln run`'s filesystem and security options with Docker's meaning, on the command line
//! and in kiln.kdl: `--read-only`, `--tmpfs`, `--cap-add`/`--cap-drop`, `--ulimit`.

use crate::harness::tools::runc_script;
use crate::harness::{Lab, Project, images, which};

fn lab(extra: &str) -> Option<Lab> {
    let kdl = format!(
        "{}{extra}",
        images::tools("tools", "host-binary \"/bin/grep\"\n    cmd \"true\"")
    );
    Lab::build(Project::new(&kdl))
}

/// This process's own capability bounding set.
fn own_bounding_set() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap();
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

/// The soft and hard limit on the `Max NAME` line of a /proc/PID/limits.
fn limit_of(limits: &str, name: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(&format!("Max {name} ")))
        .unwrap_or_else(|| panic!("no {name} in {limits}"));
    let words: Vec<&str> = line[4 + name.len()..].split_whitespace().collect();
    (words[0].to_string(), words[1].to_string())
}

/// This process's own hard RLIMIT_NOFILE.
fn own_nofile_hard() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .1
}

#[test]
fn a_read_only_root_keeps_its_own_mounts_writable() {
    let Some(lab) = lab("") else {
        return;
    };
    lab.kiln()
        .args(["run", "--rm", "--read-only", "tools", "touch", "/file"])
        .run()
        .code(1)
        .stderr_contains("Read-only file system");
    // /dev, /dev/shm and a --tmpfs stay writable, as in Docker.
    lab.kiln()
        .args([
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "tools",
            "sh",
            "-c",
        ])
        .args(["touch /dev/shm/a /tmp/b /dev/c && echo written"])
        .run()
        .success()
        .stdout_is("written\n");
    lab.root.assert_clean();
}

#[test]
fn tmpfs_takes_dockers_defaults_under_the_users_options() {
    let Some(lab) = lab("") else {
        return;
    };
    let mounts = lab
        .kiln()
        .args(["run", "--rm", "--tmpfs", "/scratch"])
        .args(["--tmpfs", "/run:exec,size=1m,mode=1770", "tools"])
        .args(["grep", "tmpfs /scratch\\|tmpfs /run", "/proc/self/mounts"])
        .run()
        .success()
        .stdout();
    let scratch = mounts.lines().find(|l| l.contains(" /scratch ")).unwrap();
    assert!(scratch.contains("nosuid,nodev,noexec"), "{scratch}");
    let run = mounts.lines().find(|l| l.contains(" /run ")).unwrap();
    assert!(!run.contains("noexec"), "{run}");
    assert!(
        run.contains("size=1024k") && run.contains("mode=1770"),
        "{run}"
    );
    lab.kiln()
        .args(["run", "--rm", "--tmpfs", "/x:volume-opt=1", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("tmpfs option `volume-opt=1`");
    lab.kiln()
        .args(["run", "--rm", "--tmpfs", "x", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("absolute path");
    lab.root.assert_clean();
}

#[test]
fn capabilities_are_added_and_dropped_by_dockers_names() {
    let Some(lab) = lab("") else {
        return;
    };
    let caps = |options: &[&str]| {
        lab.kiln()
            .args(["run", "--rm"])
            .args(options)
            .args(["tools", "grep", "CapEff", "/proc/self/status"])
            .run()
            .success()
            .stdout()
    };
    // NET_ADMIN is bit 12.
    assert_eq!(
        caps(&["--cap-drop", "ALL", "--cap-add", "cap_net_admin"]),
        "CapEff:\t0000000000001000\n"
    );
    // The default set (00000000a80425fb) without CHOWN (bit 0), with SYS_TIME (bit 25).
    assert_eq!(
        caps(&["--cap-drop", "chown", "--cap-add", "SYS_TIME"]),
        "CapEff:\t00000000aa0425fa\n"
    );
    // ALL: every capability kiln holds.
    assert_eq!(
        caps(&["--cap-add", "ALL"]),
        format!("CapEff:\t{:016x}\n", own_bounding_set())
    );
    lab.kiln()
        .args(["run", "--rm", "--cap-add", "NET_ADMINS", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("unknown capability `NET_ADMINS` in --cap-add");
    if own_bounding_set() & (1 << 24) == 0 {
        lab.kiln()
            .args(["run", "--rm", "--cap-add", "SYS_RESOURCE", "tools", "true"])
            .run()
            .code(125)
            .stderr_contains("kiln does not hold CAP_SYS_RESOURCE itself");
    }
    lab.root.assert_clean();
}

#[test]
fn ulimits_are_set_and_never_above_the_hard_limit() {
    let Some(lab) = lab("") else {
        return;
    };
    let hard = own_nofile_hard().min(4096);
    let limit = format!("nofile=100:{hard}");
    let out = lab
        .kiln()
        .args(["run", "--rm", "--ulimit", &limit, "--ulimit", "core=0"])
        .args([
            "tools",
            "grep",
            "open files\\|core file",
            "/proc/self/limits",
        ])
        .run()
        .success()
        .stdout();
    assert_eq!(
        limit_of(&out, "open files"),
        ("100".into(), hard.to_string())
    );
    assert_eq!(limit_of(&out, "core file size"), ("0".into(), "0".into()));
    if own_nofile_hard() != u64::MAX {
        let above = format!("nofile=1:{}", own_nofile_hard() + 1);
        lab.kiln()
            .args(["run", "--rm", "--ulimit", &above, "tools", "true"])
            .run()
            .code(125)
            .stderr_contains("is above kiln's own")
            .stderr_contains("CAP_SYS_RESOURCE");
    }
    for (bad, message) in [
        (
            "nofile=2:1",
            "the soft limit cannot be above the hard limit",
        ),
        ("files=1", "the resources are core"),
        ("nofile", "NAME=SOFT[:HARD]"),
    ] {
        lab.kiln()
            .args(["run", "--rm", "--ulimit", bad, "tools", "true"])
            .run()
            .code(125)
            .stderr_contains(message);
    }
    lab.root.assert_clean();
}

const SERVICE: &str = r#"
container "box" image="tools" {
    read-only
    tmpfs "/run" size="1MiB" mode="1770"
    cap-drop "ALL"
    cap-add "net_admin"
    ulimit "nofile" 100 200
    cmd "sh" "-c" "trap 'exit 0' TERM; while :; do sleep 1; done"
}
"#;

#[test]
fn a_project_container_takes_them_from_kiln_kdl_and_a_change_recreates_it() {
    let Some(lab) = lab(SERVICE) else {
        return;
    };
    lab.kiln().args(["check"]).run().success();
    lab.kiln().args(["up", "-d"]).run().success();
    let exec = |script: &str| lab.kiln().args(["exec", "box", "sh", "-c", script]).run();
    exec("grep CapEff /proc/self/status")
        .success()
        .stdout_is("CapEff:\t0000000000001000\n");
    let limits = exec("cat /proc/1/limits").success().stdout();
    assert_eq!(
        limit_of(&limits, "open files"),
        ("100".into(), "200".into())
    );
    exec("grep ' /run ' /proc/self/mounts")
        .success()
        .stdout_contains("noexec,relatime,size=1024k,mode=1770");
    exec("touch /file")
        .code(1)
        .stderr_contains("Read-only file system");

    // A changed option is a changed container: `up` replaces it.
    let kdl = std::fs::read_to_string(lab.project.file_path()).unwrap();
    lab.project
        .write("kiln.kdl", &kdl.replace("100 200", "50 200"));
    lab.kiln()
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains("box: removed")
        .stderr_contains("box: started");
    let limits = exec("cat /proc/1/limits").success().stdout();
    assert_eq!(limit_of(&limits, "open files"), ("50".into(), "200".into()));
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn runc_sees_the_same_options_in_the_bundle() {
    let Some(lab) = lab("") else {
        return;
    };
    if !which("runc") {
        return;
    }
    let options = [
        "--read-only",
        "--tmpfs",
        "/run:size=1m",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_ADMIN",
        "--ulimit",
        "nofile=100:200",
    ];
    let script = "grep CapEff /proc/self/status; grep ' /run ' /proc/self/mounts; \
                  grep 'open files' /proc/self/limits; touch /file 2>/dev/null || echo read-only";
    let kiln_output = lab
        .kiln()
        .args(["run", "--rm"])
        .args(options)
        .args(["tools", "sh", "-c", script])
        .run()
        .success()
        .stdout();
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = runc_script(
        lab.kiln(),
        &options,
        "tools",
        &dir.path().join("runopts"),
        script,
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), kiln_output);
    assert!(
        kiln_output.starts_with("CapEff:\t0000000000001000\n"),
        "{kiln_output}"
    );
    assert!(kiln_output.ends_with("read-only\n"), "{kiln_output}");
}
