//! Sandbox start-up: run `sh -c true` in a fresh sandbox (namespaces, overlayfs, /proc,
//! /dev, /sys, pivot_root, exec, wait, cleanup) on a tiny rootfs copied from the host.
//!
//! Run as root with `cargo bench --bench sandbox`. The goal is a few
//! milliseconds. Without root it says so and measures nothing. The upper and scratch
//! directories live in a temporary directory under `$KILN_BENCH_DIR` (default: the system's
//! temporary directory); point it at a tmpfs such as /dev/shm to see the cost without the
//! disk (overlayfs creates and removes a few directories in its workdir at every mount).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};

use kiln::runtime::{NoObserver, SandboxSpec, SandboxStatus, run};

/// /bin/sh with the libraries `ldd` names, at their host paths, plus the merged-/usr links.
fn host_rootfs(root: &Path) {
    for top in ["bin", "sbin", "lib", "lib64"] {
        if let Ok(target) = fs::read_link(Path::new("/").join(top)) {
            fs::create_dir_all(root.join(&target)).unwrap();
            symlink(&target, root.join(top)).unwrap();
        }
    }
    let ldd = Command::new("ldd")
        .arg("/bin/sh")
        .output()
        .expect("ldd runs");
    let ldd = String::from_utf8_lossy(&ldd.stdout).into_owned();
    let libraries = ldd.split_whitespace().filter(|w| w.starts_with('/'));
    for path in std::iter::once("/bin/sh").chain(libraries) {
        let destination = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(destination.parent().unwrap()).unwrap();
        fs::copy(path, destination).unwrap();
    }
}

fn bench_sandbox(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the sandbox bench needs root");
        return;
    }
    let dir = match std::env::var_os("KILN_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let lower = dir.path().join("lower");
    fs::create_dir(&lower).unwrap();
    host_rootfs(&lower);
    fs::create_dir(dir.path().join("upper")).unwrap();
    let spec = SandboxSpec {
        lower_dirs: vec![lower],
        upper_dir: dir.path().join("upper"),
        scratch_dir: dir.path().join("scratch"),
        argv: vec!["sh".into(), "-c".into(), "true".into()],
        env: vec!["PATH=/usr/bin:/bin".into()],
        cwd: "/".into(),
        user: None,
        hostname: "bench".into(),
        network: false,
        cgroup: None,
    };
    let mut group = c.benchmark_group("sandbox");
    group.bench_function("sh -c true", |b| {
        b.iter(|| {
            let outcome = run(&spec, &mut NoObserver).expect("sandbox runs");
            assert_eq!(outcome.status, SandboxStatus::Exited(0));
        })
    });
    let shared_network = SandboxSpec {
        network: true,
        ..spec.clone()
    };
    group.bench_function("sh -c true, host network", |b| {
        b.iter(|| {
            let outcome = run(&shared_network, &mut NoObserver).expect("sandbox runs");
            assert_eq!(outcome.status, SandboxStatus::Exited(0));
        })
    });
    group.finish();
}

criterion_group!(benches, bench_sandbox);
criterion_main!(benches);
