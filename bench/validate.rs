//! Front-end speed: parse and validate a generated ~1 MB project (thousands of containers,
//! networks, links and tests) in memory.
//!
//! Run with `cargo bench --bench validate`. The goal is under 100 ms.

mod generate;

use criterion::{Criterion, criterion_group, criterion_main};

use generate::generate;
use kiln::spec::{self, Options, RealFs};

fn bench_validate(c: &mut Criterion) {
    let text = generate(4800);
    let loaded = spec::load_source("big.kdl", None, &text, &RealFs, &Options::default());
    assert!(
        loaded.diagnostics.is_empty(),
        "the generated project is valid: {:?}",
        loaded.diagnostics.first()
    );
    eprintln!(
        "generated project: {} bytes, {} containers",
        text.len(),
        loaded.project.containers.len()
    );
    let mut group = c.benchmark_group("front-end");
    group.sample_size(20);
    group.bench_function("load+validate 1MB project", |b| {
        b.iter(|| spec::load_source("big.kdl", None, &text, &RealFs, &Options::default()))
    });
    group.finish();
}

criterion_group!(benches, bench_validate);
criterion_main!(benches);
