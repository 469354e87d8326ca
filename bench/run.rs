//! Container start-up: `true` in a container with Docker's defaults (namespaces, overlayfs,
//! /proc, /dev with pts/shm/mqueue, /sys, /sys/fs/cgroup, masked and read-only paths,
//! pivot_root, rlimits, capabilities, no_new_privs, exec, wait, cleanup) on a tiny rootfs
//! copied from the host, through `kiln::runtime::start` and `Started::wait`.
//!
//! Run as root with `cargo bench --bench run`. The goal: at or below
//! `runc run` on the same rootfs (about 40 ms here). Without root it says so and measures
//! nothing. `$KILN_BENCH_DIR` chooses where the temporary directories go (default: the
//! system's temporary directory).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};

use kiln::image::RuntimeConfig;
use kiln::runtime::spec::{NetworkMode, RunOptions, container_spec};
use kiln::runtime::{NoHooks, RootfsLayout, SandboxStatus, Stdio, start};

/// /bin/true with the libraries `ldd` names, at their host paths, plus the merged-/usr links.
fn host_rootfs(root: &Path) {
    for top in ["bin", "sbin", "lib", "lib64"] {
        if let Ok(target) = fs::read_link(Path::new("/").join(top)) {
            fs::create_dir_all(root.join(&target)).unwrap();
            symlink(&target, root.join(top)).unwrap();
        }
    }
    let ldd = Command::new("ldd")
        .arg("/bin/true")
        .output()
        .expect("ldd runs");
    let ldd = String::from_utf8_lossy(&ldd.stdout).into_owned();
    let libraries = ldd.split_whitespace().filter(|w| w.starts_with('/'));
    for path in std::iter::once("/bin/true").chain(libraries) {
        let destination = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(destination.parent().unwrap()).unwrap();
        fs::copy(path, destination).unwrap();
    }
}

fn bench_run(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the container bench needs root");
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
    let layout = RootfsLayout {
        lower_dirs: vec![lower.clone()],
        upper_dir: dir.path().join("upper"),
        scratch_dir: dir.path().join("scratch"),
    };
    let image = RuntimeConfig {
        cmd: Some(vec!["true".into()]),
        ..RuntimeConfig::default()
    };
    let mut group = c.benchmark_group("run");
    for (name, network) in [
        ("true", NetworkMode::None),
        ("true, host network", NetworkMode::Host),
    ] {
        let options = RunOptions {
            network,
            ..RunOptions::default()
        };
        let spec = container_spec(&image, &options, &[lower.as_path()]).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut started = start(
                    &spec,
                    &layout,
                    Stdio::Inherit { stdin: false },
                    &mut NoHooks,
                )
                .expect("the container starts");
                assert_eq!(started.wait().unwrap(), SandboxStatus::Exited(0));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_run);
criterion_main!(benches);
