//! The seccomp filter in real containers: kiln's default allow-list stops what Docker's
//! stops (a `clone` into new user and network namespaces, `unshare`, io_uring, odd
//! personalities) with EPERM, answers `clone3` with ENOSYS so libc falls back to `clone`,
//! and lets ordinary programs (a shell, coreutils, Python's http.server) work;
//! `--security-opt seccomp=unconfined` lifts it, a Docker-format profile replaces it (on
//! `kiln run`, `kiln exec`, `kiln bundle` for runc, and `seccomp` in kiln.kdl), and a bad
//! profile is an error that says where in the JSON.
//!
//! The calls are made by a small C program (`seccomp/probe.c`, built with the host's cc)
//! that issues them raw, as an attacker would.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::tools::runc_script;
use crate::harness::{Project, Root, is_root, which};

/// A shell that waits until it is stopped (and exits 0 on SIGTERM).
const WAIT: &str = "trap 'exit 0' TERM; while :; do sleep 1; done";

/// An image with the probe, a shell, coreutils, util-linux's unshare and python3.
fn image(probe: &Path) -> String {
    format!(
        r#"
image "probe" {{
    from "scratch"
    host-binary "/bin/sh" "/bin/cat" "/bin/ls" "/bin/mkdir" "/bin/uname" "/usr/bin/wc"
    host-binary "/usr/bin/unshare" "/usr/bin/python3" "{probe}"
    host-path "/usr/lib/python3.11"
    env PATH="/usr/bin:/bin"
    cmd "{probe}" "fork"
}}
"#,
        probe = probe.display()
    )
}

/// The probe, built into `dir`.
fn build_probe(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/seccomp/probe.c");
    let probe = dir.join("probe");
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&probe)
        .arg(&source)
        .output()
        .expect("cc runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    probe
}

/// A built `probe` image in a fresh state root, or `None` when not root.
struct Fixture {
    project: Project,
    root: Root,
    probe: PathBuf,
    _bin: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        if !is_root() {
            return None;
        }
        if !which("cc") {
            return None;
        }
        let bin = tempfile::tempdir().unwrap();
        let probe = build_probe(bin.path());
        let project = Project::new(&image(&probe));
        let root = Root::new();
        project.kiln(&root).args(["build"]).run().success();
        Some(Fixture {
            project,
            root,
            probe,
            _bin: bin,
        })
    }

    /// `kiln run --rm [options] probe sh -c SCRIPT`: its stdout (whatever the exit code).
    fn run(&self, options: &[&str], script: &str) -> String {
        self.project
            .kiln(self.root.path())
            .args(["run", "--rm"])
            .args(options)
            .args(["probe", "sh", "-c", script])
            .run()
            .stdout()
    }

    /// A script running the probe for each call.
    fn probes(&self, calls: &[&str]) -> String {
        calls
            .iter()
            .map(|call| format!("{} {call}", self.probe.display()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

const ATTACKS: [&str; 7] = [
    "clone-ns",
    "unshare",
    "io_uring",
    "clone3",
    "personality 0",
    "personality 0x0400000",
    "fork",
];

#[test]
fn the_default_profile_stops_namespaces_io_uring_and_odd_personas() {
    let Some(f) = Fixture::new() else {
        return;
    };
    let out = f.run(&[], &f.probes(&ATTACKS));
    assert_eq!(
        out,
        "clone-ns EPERM\nunshare EPERM\nio_uring EPERM\nclone3 ENOSYS\n\
         personality 0 ok\npersonality 0x0400000 EPERM\nfork ok\n"
    );
    // util-linux's unshare, too.
    let out = f.run(&[], "unshare --user --net true && echo unshared; echo done");
    assert_eq!(out, "done\n");
}

#[test]
fn ordinary_programs_still_work_under_the_filter() {
    let Some(f) = Fixture::new() else {
        return;
    };
    let out = f.run(
        &[],
        "ls / | wc -l > /dev/null && mkdir -p /a/b && uname -s && cat /proc/self/status | \
         while read k v; do case $k in Seccomp:|Seccomp_filters:) echo $k $v;; esac; done",
    );
    assert_eq!(out, "Linux\nSeccomp: 2\nSeccomp_filters: 1\n");
    // Python's http.server, with a thread, sockets and urllib, in one process.
    // (os._exit: a daemon thread torn down at exit would need libgcc_s, which the image
    // lacks.)
    let python = "import http.server, os, sys, threading, urllib.request\n\
        s = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n\
        threading.Thread(target=s.serve_forever, daemon=True).start()\n\
        print(urllib.request.urlopen(f'http://127.0.0.1:{s.server_port}/').status)\n\
        sys.stdout.flush()\n\
        os._exit(0)\n";
    let out = f
        .project
        .kiln(f.root.path())
        .args(["run", "--rm", "probe", "python3", "-c", python])
        .run()
        .success()
        .stdout();
    assert_eq!(out, "200\n");
}

#[test]
fn unconfined_lifts_the_filter() {
    let Some(f) = Fixture::new() else {
        return;
    };
    let script = format!(
        "{}; while read k v; do case $k in Seccomp:) echo $k $v;; esac; done < /proc/self/status",
        f.probes(&["clone-ns", "io_uring", "clone3", "personality 0x0400000"])
    );
    let out = f.run(&["--security-opt", "seccomp=unconfined"], &script);
    assert_eq!(
        out,
        "clone-ns ok\nio_uring ok\nclone3 ok\npersonality 0x0400000 ok\nSeccomp: 0\n"
    );
}

/// Docker's format: everything allowed but uname(2), which fails with EACCES.
const DENY_UNAME: &str = r#"{
    "defaultAction": "SCMP_ACT_ALLOW",
    "archMap": [ { "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] } ],
    "syscalls": [
        { "names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "no uname" }
    ]
}"#;

#[test]
fn a_docker_profile_replaces_the_default_for_run_and_exec() {
    let Some(f) = Fixture::new() else {
        return;
    };
    let profile = f.project.path().join("deny-uname.json");
    std::fs::write(&profile, DENY_UNAME).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let ran = f
        .project
        .kiln(f.root.path())
        .args([
            "run",
            "--rm",
            "--trace",
            "--security-opt",
            &opt,
            "probe",
            "sh",
            "-c",
        ])
        // uname's message goes to stdout: on stderr it is written in pieces (`uname: `,
        // the text, `: Permission denied`), and kiln's trace lines, printed as the sandbox
        // reports its steps, could land between them on a loaded machine.
        .args([format!("uname -s 2>&1; {}", f.probes(&["clone-ns"]))])
        .run();
    // uname is denied (errno 13, as the profile says); the profile allows everything
    // else, new namespaces included.
    assert_eq!(
        ran.stdout(),
        "uname: cannot get system name: Permission denied\nclone-ns ok\n",
        "{}",
        ran.stderr()
    );
    let line = format!(
        "trace: seccomp: profile {}, 1 rules for ",
        profile.display()
    );
    assert!(ran.stderr().contains(&line), "{}", ran.stderr());
    assert!(
        ran.stderr().contains(", otherwise allow ("),
        "{}",
        ran.stderr()
    );

    // A process exec'd into the container gets the container's filter.
    let kiln = || f.project.kiln(f.root.path());
    // A container that waits to be stopped, with `options` for `kiln run`.
    let waiting = |name: &str, options: &[&str]| {
        kiln()
            .args(["run", "-d", "--name", name])
            .args(options)
            .args(["probe", "sh", "-c", WAIT])
            .run()
            .success();
    };
    waiting("held", &["--security-opt", &opt]);
    let exec = kiln().args(["exec", "held", "uname", "-s"]).run();
    assert!(
        exec.stderr().contains("Permission denied"),
        "{}",
        exec.stderr()
    );
    kiln()
        .args(["exec", "held", "sh", "-c"])
        .args([f.probes(&["clone-ns"])])
        .run()
        .stdout_is("clone-ns ok\n");
    kiln().args(["rm", "-f", "held"]).run().success();

    // The default container's exec'd processes get the default filter.
    waiting("plain", &[]);
    kiln()
        .args(["exec", "plain", "sh", "-c"])
        .args([f.probes(&["clone-ns", "io_uring", "clone3"])])
        .run()
        .stdout_is("clone-ns EPERM\nio_uring EPERM\nclone3 ENOSYS\n");
    kiln().args(["rm", "-f", "plain"]).run().success();
}

#[test]
fn a_bad_profile_or_option_is_refused_before_anything_runs() {
    let Some(f) = Fixture::new() else {
        return;
    };
    let bad = f.project.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "raed"], "action": "SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    let kiln = || f.project.kiln(f.root.path());
    kiln()
        .args(["run", "--rm", "--security-opt"])
        .args([format!("seccomp={}", bad.display())])
        .args(["probe", "true"])
        .run()
        .code(125)
        .stderr_contains("`syscalls[0].names[1]`")
        .stderr_contains("unknown system call `raed`")
        .stderr_contains("did you mean `read`?");
    kiln()
        .args([
            "run",
            "--rm",
            "--security-opt",
            "seccomp=/no/such.json",
            "probe",
            "true",
        ])
        .run()
        .code(125)
        .stderr_contains("cannot read the seccomp profile /no/such.json");
    kiln()
        .args([
            "run",
            "--rm",
            "--security-opt",
            "apparmor=unconfined",
            "probe",
            "true",
        ])
        .run()
        .code(125)
        .stderr_contains("unsupported --security-opt `apparmor=unconfined`");
    let ps = kiln()
        .args(["ps", "-a", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(ps, serde_json::json!([]), "nothing was created");
}

#[test]
fn runc_applies_the_same_filter_from_the_bundle() {
    let Some(f) = Fixture::new() else {
        return;
    };
    if !which("runc") {
        return;
    }
    let script = f.probes(&ATTACKS);
    let kiln_output = f.run(&[], &script);
    let dir = tempfile::tempdir().unwrap();
    let runc = |options: &[&str], name: &str| {
        // The bundle runs the probe script instead of the image's command.
        let kiln = f.project.kiln(f.root.path());
        let bundle = dir.path().join(format!("seccomp-{name}"));
        let (out, spec) = runc_script(kiln, options, "probe", &bundle, &script, &[]);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            spec["linux"]["seccomp"].clone(),
        )
    };
    let (runc_output, seccomp) = runc(&[], "default");
    assert_eq!(runc_output, kiln_output);
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(
        seccomp["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64"])
    );

    let profile = f.project.path().join("deny-uname.json");
    std::fs::write(&profile, DENY_UNAME).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let (runc_output, seccomp) = runc(&["--security-opt", &opt], "custom");
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ALLOW");
    assert_eq!(
        runc_output,
        "clone-ns ok\nunshare ok\nio_uring ok\nclone3 ok\npersonality 0 ok\n\
         personality 0x0400000 ok\nfork ok\n"
    );
}

#[test]
fn a_project_container_takes_seccomp_from_kiln_kdl() {
    let Some(f) = Fixture::new() else {
        return;
    };
    let mut kdl = std::fs::read_to_string(f.project.path().join("kiln.kdl")).unwrap();
    kdl.push_str(
        r#"
container "open" image="probe" {
    seccomp "unconfined"
    cmd "sh" "-c" "trap 'exit 0' TERM; while :; do sleep 1; done"
}
container "custom" image="probe" {
    seccomp "profiles/deny-uname.json"
    cmd "sh" "-c" "trap 'exit 0' TERM; while :; do sleep 1; done"
}
"#,
    );
    f.project.write("kiln.kdl", &kdl);
    f.project.write("profiles/deny-uname.json", DENY_UNAME);
    let kiln = || f.project.kiln(f.root.path());
    kiln().args(["check"]).run().success();
    kiln().args(["up", "-d"]).run().success();
    let open = kiln()
        .args(["exec", "open", "sh", "-c"])
        .args([f.probes(&["clone-ns", "io_uring"])])
        .run()
        .stdout();
    let custom = kiln().args(["exec", "custom", "uname", "-s"]).run();
    kiln().args(["down"]).run().success();
    assert_eq!(open, "clone-ns ok\nio_uring ok\n");
    assert!(
        custom.stderr().contains("Permission denied"),
        "{}",
        custom.stderr()
    );
}

#[test]
fn podmans_own_profile_is_read_and_applied_with_its_meaning() {
    // Podman's default (containers-common) is the other style of profile: ENOSYS by
    // default, explicit EPERM rules, capability excludes. kiln applies it as written.
    let podman = Path::new("/usr/share/containers/seccomp.json");
    if !which("podman") || !podman.exists() {
        return;
    }
    let Some(f) = Fixture::new() else {
        return;
    };
    let opt = format!("seccomp={}", podman.display());
    let out = f.run(
        &["--security-opt", &opt],
        &f.probes(&["io_uring", "personality 0x0400000", "fork"]),
    );
    assert_eq!(
        out,
        "io_uring ENOSYS\npersonality 0x0400000 ENOSYS\nfork ok\n"
    );
}

#[test]
fn kiln_check_reads_the_profile_and_points_at_the_node() {
    let project = Project::new(
        r#"
image "base" {
    from "scratch"
}
container "good" image="base" {
    seccomp "good.json"
}
container "bad" image="base" {
    seccomp "bad.json"
}
container "gone" image="base" {
    seccomp "missing.json"
}
container "open" image="base" {
    seccomp "unconfined"
}
"#,
    )
    .file("good.json", DENY_UNAME)
    .file(
        "bad.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}"#,
    );
    let root = Root::new();
    let ran = project
        .kiln(root.path())
        .args(["check", "--format", "json"])
        .run()
        .code(1);
    let json = ran.json();
    let diagnostics = json["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 2, "{json:#}");
    let bad = &diagnostics[0];
    assert_eq!(
        bad["code"], "kiln::spec::invalid-seccomp-profile",
        "{bad:#}"
    );
    assert_eq!(bad["message"], "seccomp profile `bad.json` cannot be used");
    assert_eq!(
        bad["labels"][0]["message"],
        "at `syscalls[0].args[0].op`: unknown operator `SCMP_CMP_LIKE`",
        "{bad:#}"
    );
    assert_eq!(
        (&bad["line"], &bad["column"]),
        (&9.into(), &13.into()),
        "{bad:#}"
    );
    assert!(
        bad["help"].as_str().unwrap().starts_with("use SCMP_CMP_EQ"),
        "{bad:#}"
    );
    let gone = &diagnostics[1];
    assert_eq!(gone["code"], "kiln::spec::path-not-found", "{gone:#}");
    assert_eq!(
        gone["message"],
        "seccomp profile `missing.json` does not exist"
    );
}
