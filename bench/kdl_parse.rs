//! KDL parsing alone: kiln's parser (`spec::kdlv2`) against the `kdl` crate, on the project
//! the `validate` bench generates (~870 KB).
//!
//! Run with `cargo bench --bench kdl_parse`.

mod generate;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use generate::generate;
use kiln::spec;

fn bench_parse(c: &mut Criterion) {
    let text = generate(4000);
    assert!(
        spec::parse_kdl_for_bench(&text),
        "kdlv2 parses the generated project"
    );
    assert!(
        kdl::KdlDocument::parse_v2(&text).is_ok(),
        "kdl parses the generated project"
    );
    let mut group = c.benchmark_group("kdl-parse");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("kdlv2", |b| b.iter(|| spec::parse_kdl_for_bench(&text)));
    group.bench_function("kdl crate", |b| {
        b.iter(|| kdl::KdlDocument::parse_v2(&text).is_ok())
    });
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
