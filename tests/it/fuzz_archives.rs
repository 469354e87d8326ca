//! Fuzzing extraction and import with crafted tar streams and OCI layouts: hostile names
//! (`..`, absolute, through symlinks, whiteouts, long PAX names, duplicates), links out of
//! the target, devices, odd modes, valid image archives with members swapped for links.
//! Properties: never a panic; nothing outside the target is created, changed or removed;
//! a failed import leaves the store byte-identical, a successful one a store `fsck` finds
//! sound, and no host file's content ever reaches the store.
//!
//! A fixed seed, so CI sees the same cases every run; `KILN_PROPTEST_RANDOM=1` hunts with
//! fresh ones, `PROPTEST_CASES=N` raises the count.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRng, TestRunner};

use crate::tarball::{self, Kind, Member};

/// Stands for the absolute path of the directory outside the target.
const OUT: &str = "@OUT";

const NAMES: &[&str] = &[
    "a",
    "a/b",
    "dir",
    "dir/f",
    "dir/sub/f",
    "dir/secret-dir",
    "link/secret-dir",
    "link",
    "link/f",
    "link/sub/f",
    "./x",
    "../outside/evil",
    "dir/../../outside/evil",
    "@OUT/evil",
    "/etc/kiln-fuzz-evil",
    "dir/.wh.f",
    ".wh.dir",
    ".wh.link",
    "link/.wh.secret",
    "dir/.wh..wh..opq",
    "link/.wh..wh..opq",
    ".wh..wh..opq",
    ".wh...",
    "manifest.json",
    "index.json",
    "oci-layout",
    "blobs/sha256/aaaa",
    "blobs",
    "x/very/long/name/that/needs/a/pax/header/because/it/is/longer/than/one/hundred/bytes/of/ustar/name/field/f",
];

const TARGETS: &[&str] = &[
    "/",
    "..",
    "../..",
    "../outside",
    "../outside/secret",
    "@OUT",
    "@OUT/secret",
    "dir",
    "a",
    "link",
    "link/f",
    "dir/f",
    "./dir",
    "/etc/shadow",
    "",
];

const CONTENTS: &[&str] = &["x", "", "{}", "[]", "not json"];

/// Known attack shapes spliced into the random members: a directory replaced by a link
/// out after entries below it were made, a hard link to a link out, a whiteout through one.
fn pattern(which: u8) -> Vec<Member> {
    let m = |name: &str, kind: Kind| Member {
        name: name.into(),
        kind,
        mode: 0o777,
    };
    match which % 3 {
        0 => vec![
            m("dir", Kind::Dir),
            m("dir/secret-dir", Kind::Dir),
            m("dir", Kind::Symlink(OUT.into())),
        ],
        1 => vec![
            m("link", Kind::Symlink(format!("{OUT}/secret"))),
            m("h", Kind::Hardlink("link".into())),
            m("h", Kind::File(b"overwrite".to_vec())),
        ],
        _ => vec![
            m("link", Kind::Symlink(OUT.into())),
            m("link/.wh.secret", Kind::File(Vec::new())),
            m("link/.wh..wh..opq", Kind::File(Vec::new())),
        ],
    }
}

fn members() -> impl Strategy<Value = Vec<Member>> {
    (
        proptest::collection::vec(member(), 1..10),
        proptest::option::of((any::<u8>(), any::<usize>())),
    )
        .prop_map(|(mut members, splice)| {
            if let Some((which, at)) = splice {
                let at = at % (members.len() + 1);
                for (i, m) in pattern(which).into_iter().enumerate() {
                    members.insert(at + i, m);
                }
            }
            members
        })
}

fn member() -> impl Strategy<Value = Member> {
    let kind = prop_oneof![
        4 => proptest::sample::select(CONTENTS).prop_map(|c| Kind::File(c.as_bytes().to_vec())),
        2 => Just(Kind::Dir),
        3 => proptest::sample::select(TARGETS).prop_map(|t| Kind::Symlink(t.to_string())),
        2 => proptest::sample::select(TARGETS).prop_map(|t| Kind::Hardlink(t.to_string())),
        1 => proptest::sample::select(&[(1u32, 3u32), (0, 0), (1, 11)][..])
            .prop_map(|(a, b)| Kind::Char(a, b)),
        1 => Just(Kind::Block(8, 0)),
        1 => Just(Kind::Fifo),
    ];
    (
        proptest::sample::select(NAMES),
        kind,
        proptest::sample::select(&[0o644u32, 0o755, 0o4755, 0o777, 0, 0o7777][..]),
    )
        .prop_map(|(name, kind, mode)| Member {
            name: name.to_string(),
            kind,
            mode,
        })
}

/// Replaces the `@OUT` placeholder with the real path of the outside directory.
fn placed(members: &[Member], outside: &Path) -> Vec<Member> {
    let out = outside.display().to_string();
    members
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.name = m.name.replace(OUT, &out);
            m.kind = match m.kind {
                Kind::Symlink(t) => Kind::Symlink(t.replace(OUT, &out)),
                Kind::Hardlink(t) => Kind::Hardlink(t.replace(OUT, &out)),
                other => other,
            };
            m
        })
        .collect()
}

/// A sandbox: `outside/` (with a secret) beside `target/`. Returns the listing of
/// everything in the sandbox except the target, with metadata: it must not change.
fn outside_state(sandbox: &Path) -> BTreeMap<String, (u32, u64, i64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![sandbox.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path == sandbox.join("target") || path == sandbox.join("store") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.insert(
                path.display().to_string(),
                (meta.mode(), meta.len(), meta.mtime(), meta.uid() as u64),
            );
        }
    }
    out
}

fn sandbox() -> tempfile::TempDir {
    let sandbox = tempfile::tempdir().unwrap();
    let outside = sandbox.path().join("outside");
    std::fs::create_dir_all(outside.join("secret-dir")).unwrap();
    std::fs::write(outside.join("secret"), SECRET).unwrap();
    std::fs::create_dir(sandbox.path().join("target")).unwrap();
    sandbox
}

const SECRET: &[u8] = b"host secret: kiln-fuzz-0123456789";

/// Runs `test` over `cases` values of `strategy`, with a fixed seed unless
/// `KILN_PROPTEST_RANDOM` is set.
fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = if std::env::var_os("KILN_PROPTEST_RANDOM").is_some() {
        TestRunner::new(config)
    } else {
        let rng = TestRng::deterministic_rng(config.rng_algorithm);
        TestRunner::new_with_rng(config, rng)
    };
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

#[test]
fn extraction_never_writes_outside_its_target() {
    let root = crate::harness::is_root();
    run(
        192,
        (members(), any::<bool>(), any::<bool>()),
        |(members, overlay, devices)| {
            let sandbox = sandbox();
            let before = outside_state(sandbox.path());
            let members = placed(&members, &sandbox.path().join("outside"));
            let stream = tarball::tar(&members);
            let options = kiln::layer::ExtractOptions {
                whiteouts: if overlay && root {
                    kiln::layer::WhiteoutMode::Overlay
                } else {
                    kiln::layer::WhiteoutMode::Apply
                },
                preserve_ownership: root,
                allow_devices: devices && root,
            };
            // Twice into the same target: the second pass meets the first one's links.
            let target = sandbox.path().join("target");
            let _ = kiln::layer::extract(&stream[..], &target, &options);
            let _ = kiln::layer::extract(&stream[..], &target, &options);
            prop_assert_eq!(
                outside_state(sandbox.path()),
                before,
                "extracting {:?} changed something outside the target",
                members
            );
            prop_assert!(!Path::new("/etc/kiln-fuzz-evil").exists());
            Ok(())
        },
    );
}

/// A valid image archive to start from: none, a Docker archive or an OCI archive.
fn skeleton(kind: u8) -> Vec<Member> {
    let layer = tarball::tar(&[tarball::file("hello", "hi\n")]);
    match kind % 3 {
        0 => Vec::new(),
        1 => tarball::docker_archive("fuzz:1", &[layer], &[]),
        _ => tarball::oci("fuzz", &[layer], None).members(&[]),
    }
}

#[test]
fn import_reads_archives_as_data_and_commits_all_or_nothing() {
    run(
        96,
        (
            any::<u8>(),
            members(),
            proptest::collection::vec(any::<usize>(), 0..3),
            any::<bool>(),
        ),
        |(kind, extra, drop, as_dir)| {
            let sandbox = sandbox();
            let outside = sandbox.path().join("outside");
            let mut members = skeleton(kind);
            for index in drop {
                if !members.is_empty() {
                    let at = index % members.len();
                    members.remove(at);
                }
            }
            // Hostile members replace skeleton members of the same name or are added.
            for member in placed(&extra, &outside) {
                members.retain(|m| m.name != member.name);
                members.push(member);
            }
            let store = kiln::store::Store::open(sandbox.path().join("store")).unwrap();
            let before_store = crate::hostile_archives::snapshot(store.root());
            let before = outside_state(sandbox.path());
            let input = if as_dir {
                let dir = sandbox.path().join("target/layout");
                write_layout(&dir, &members);
                dir
            } else {
                let file = sandbox.path().join("target/archive.tar");
                std::fs::write(&file, tarball::tar(&members)).unwrap();
                file
            };
            let result = kiln::image::import(&store, &input, Some("fuzzed"));
            prop_assert_eq!(outside_state(sandbox.path()), before.clone());
            match result {
                Ok(_) => {
                    prop_assert_eq!(store.fsck(&[]).unwrap(), vec![]);
                }
                Err(err) => {
                    prop_assert_eq!(
                        crate::hostile_archives::snapshot(store.root()),
                        before_store,
                        "a failed import ({}) changed the store",
                        err
                    );
                }
            }
            let blobs = store.root().join("blobs/sha256");
            for blob in std::fs::read_dir(blobs).unwrap().flatten() {
                let bytes = std::fs::read(blob.path()).unwrap();
                prop_assert!(
                    !bytes.windows(SECRET.len()).any(|w| w == SECRET),
                    "a host file reached the store"
                );
            }
            Ok(())
        },
    );
}

/// Writes members as an OCI layout directory would hold them: only plain names inside
/// `dir` (the fuzzer's own writes must not escape either); symlinks as given.
fn write_layout(dir: &Path, members: &[Member]) {
    std::fs::create_dir_all(dir).unwrap();
    for member in members {
        let name = member.name.trim_start_matches("./");
        if name.starts_with('/') || name.split('/').any(|p| p == ".." || p.is_empty()) {
            continue;
        }
        let path = dir.join(name);
        let Some(parent) = path.parent() else {
            continue;
        };
        // Parents through a symlink written earlier would lead out: skip those.
        if parent
            .ancestors()
            .take_while(|p| *p != dir)
            .any(|p| std::fs::symlink_metadata(p).is_ok_and(|m| !m.is_dir()))
        {
            continue;
        }
        if std::fs::create_dir_all(parent).is_err() || std::fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        let _ = match &member.kind {
            Kind::File(bytes) => std::fs::write(&path, bytes),
            Kind::Dir => std::fs::create_dir(&path),
            Kind::Symlink(target) => std::os::unix::fs::symlink(target, &path),
            Kind::Fifo => {
                nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(std::io::Error::from)
            }
            _ => Ok(()),
        };
    }
}
