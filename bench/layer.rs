//! Layer writing speed: scan a generated tree of 2,000 files (~50 MB, three quarters
//! text-like, one quarter random bytes) and write it as a layer with zstd, gzip and no
//! compression to a sink, reporting throughput of the uncompressed tar.
//!
//! Run with `cargo bench --bench layer`.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use kiln::layer::{self, Compression, Entries, ScanOptions, WriteOptions};

const FILES: usize = 2_000;
const TOTAL_BYTES: usize = 50 << 20;

/// A fixed pseudo-random sequence (xorshift), so every run writes the same tree.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Writes the tree under `root`: 2,000 files in 40 directories, sizes 1 KB–49 KB.
fn generate(root: &Path) -> usize {
    const WORDS: [&str; 16] = [
        "kiln",
        "layer",
        "image",
        "container",
        "network",
        "digest",
        "sha256",
        "zstd",
        "tar",
        "overlay",
        "whiteout",
        "entry",
        "mode",
        "uid",
        "gid",
        "\n",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total = 0;
    for index in 0..FILES {
        let dir = root.join(format!("dir{:02}", index % 40));
        fs::create_dir_all(&dir).unwrap();
        let size = 1024 + (rng.next() as usize % (2 * TOTAL_BYTES / FILES - 2048));
        let mut content = Vec::with_capacity(size);
        while content.len() < size * 3 / 4 {
            content.extend_from_slice(WORDS[rng.next() as usize % WORDS.len()].as_bytes());
            content.push(b' ');
        }
        while content.len() < size {
            content.extend_from_slice(&rng.next().to_le_bytes());
        }
        content.truncate(size);
        total += size;
        fs::write(dir.join(format!("file{index:04}.dat")), content).unwrap();
    }
    total
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let total = generate(dir.path());
    let entries = Entries::scan_dir(dir.path(), &ScanOptions::default()).unwrap();
    let mut group = c.benchmark_group("layer");
    group.throughput(Throughput::Bytes(total as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (name, compression) in [
        ("write_zstd", Compression::Zstd),
        ("write_gzip", Compression::Gzip),
        ("write_none", Compression::None),
    ] {
        let opts = WriteOptions {
            compression,
            source_date_epoch: 0,
            skip_implicit_dirs: false,
        };
        let info = layer::write(&entries, &opts, io::sink()).unwrap();
        eprintln!(
            "{name}: {} files, {:.1} MB tar -> {:.1} MB ({:.0}%)",
            FILES,
            info.uncompressed_size as f64 / 1e6,
            info.size as f64 / 1e6,
            100.0 * info.size as f64 / info.uncompressed_size as f64
        );
        group.bench_function(name, |b| {
            b.iter(|| layer::write(&entries, &opts, io::sink()).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
