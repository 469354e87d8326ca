//! Interop: the bundle `write_bundle` writes runs under runc (Debian's) with the same
//! output as under kiln's own runtime.

use std::fs;
use std::io::Read;
use std::process::{Command, Stdio as ProcessStdio};

use super::rootfs::host_rootfs;
use crate::image::RuntimeConfig;
use crate::runtime::spec::{RunOptions, container_spec, write_bundle};
use crate::runtime::{NoHooks, RootfsLayout, SandboxStatus, Stdio, start};

/// What both runtimes print: identity, isolation and hardening as the process sees them.
const SCRIPT: &str = "echo pid $$ host $(cat /proc/sys/kernel/hostname) env $HOSTNAME; \
    while read key value; do case $key in CapEff:|CapBnd:|CapInh:|NoNewPrivs:|Seccomp:|Seccomp_filters:|Uid:) \
    echo $key $value;; esac; done < /proc/self/status; \
    echo x > /proc/sys/kernel/hostname 2>/dev/null || echo proc-sys-read-only; \
    cat /proc/kcore; echo kcore-empty";

#[test]
fn runc_runs_the_bundle_with_kilns_output() {
    if !crate::test_support::is_root() || !crate::test_support::has_program("runc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    host_rootfs(&rootfs, &["/bin/sh", "/bin/cat"]);
    let image = RuntimeConfig {
        env: vec!["PATH=/usr/bin:/bin".into()],
        cmd: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
        ..RuntimeConfig::default()
    };
    let options = RunOptions {
        hostname: Some("interop".into()),
        ..RunOptions::default()
    };
    let spec = container_spec(&image, &options, &[rootfs.as_path()]).unwrap();
    write_bundle(&bundle, &spec, &rootfs).unwrap();

    let id = format!("kiln-interop-{}", std::process::id());
    let state = dir.path().join("runc-state");
    let runc = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(ProcessStdio::null())
        .output()
        .unwrap();
    let deleted = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["delete", "-f", &id])
        .output()
        .unwrap();
    let runc_stdout = String::from_utf8_lossy(&runc.stdout).into_owned();
    assert!(
        runc.status.success(),
        "runc failed: {}\n{runc_stdout}",
        String::from_utf8_lossy(&runc.stderr)
    );
    // Nothing left for runc to delete: `run` removed the container when it exited.
    assert!(!deleted.status.success() || deleted.stderr.is_empty());

    for dir_name in ["upper", "scratch"] {
        fs::create_dir(dir.path().join(dir_name)).unwrap();
    }
    let layout = RootfsLayout {
        lower_dirs: vec![rootfs.clone()],
        upper_dir: dir.path().join("upper"),
        scratch_dir: dir.path().join("scratch"),
    };
    let mut started = start(&spec, &layout, Stdio::Pipe { stdin: false }, &mut NoHooks).unwrap();
    let mut kiln_stdout = String::new();
    fs::File::from(started.stdout.take().unwrap())
        .read_to_string(&mut kiln_stdout)
        .unwrap();
    assert_eq!(started.wait().unwrap(), SandboxStatus::Exited(0));

    assert_eq!(kiln_stdout, runc_stdout);
    assert_eq!(
        kiln_stdout,
        "pid 1 host interop env interop\nUid: 0 0 0 0\nCapInh: 0000000000000000\n\
         CapEff: 00000000a80425fb\nCapBnd: 00000000a80425fb\nNoNewPrivs: 1\nSeccomp: 2\nSeccomp_filters: 1\n\
         proc-sys-read-only\nkcore-empty\n"
    );
}
