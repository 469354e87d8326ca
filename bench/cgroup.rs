//! Cgroup set-up cost on the container start path: create a cgroup with memory, cpu and
//! pids limits and remove it again, and read its stats (`kiln stats` per container).
//!
//! Run as root with `cargo bench --bench cgroup`; without root it says so and measures
//! nothing. It works below `kiln-bench-<pid>` and removes it.

use criterion::{Criterion, criterion_group, criterion_main};

use kiln::runtime::cgroup::{Hierarchy, Limits};

fn bench_cgroup(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the cgroup bench needs root");
        return;
    }
    let hierarchy = Hierarchy::detect().expect("a cgroup filesystem");
    let prefix = format!("kiln-bench-{}", std::process::id());
    let limits = Limits {
        memory: Some(64 << 20),
        cpus: Some(0.5),
        pids: Some(100),
    };
    let mut group = c.benchmark_group("cgroup");
    let mut n = 0u64;
    group.bench_function("create with limits + remove", |b| {
        b.iter(|| {
            n += 1;
            let cgroup = hierarchy
                .create(&format!("{prefix}/c{n}"), &limits)
                .expect("create");
            cgroup.remove().expect("remove");
        })
    });
    let cgroup = hierarchy
        .create(&format!("{prefix}/stats"), &limits)
        .expect("create");
    group.bench_function("stats", |b| b.iter(|| cgroup.stats().expect("stats")));
    group.finish();
    cgroup.remove().expect("remove");
    if let Some(all) = hierarchy.open(&prefix).expect("open") {
        all.remove().expect("remove");
    }
    assert!(hierarchy.list(&prefix).expect("list").is_empty());
}

criterion_group!(benches, bench_cgroup);
criterion_main!(benches);
