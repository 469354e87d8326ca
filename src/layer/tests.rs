//! Tests of the layer module. Parts that need root (chown, security xattrs, device nodes,
//! overlay mounts) print a note and skip when not run as root; CI runs as root.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use super::compress::Encoder;
use super::write::Pipeline;
use super::*;
use crate::digest::Digest;

/// Whether the tests run as root, for tests that check more as root and less otherwise
/// (tests that need root use `require_root!`).
pub(super) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Returns from a test that needs root when not root (under CI, fails it instead).
macro_rules! require_root {
    () => {
        if !crate::test_support::is_root() {
            return;
        }
    };
}

/// `ping`'s file capability: cap_net_raw+ep as VFS_CAP_REVISION_2 bytes.
const CAP_NET_RAW_EP: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];
const ALL_COMPRESSIONS: [Compression; 3] =
    [Compression::None, Compression::Gzip, Compression::Zstd];

fn write_layer(entries: &Entries, compression: Compression, epoch: u64) -> (Vec<u8>, LayerInfo) {
    let mut out = Vec::new();
    let opts = WriteOptions {
        compression,
        source_date_epoch: epoch,
        skip_implicit_dirs: false,
    };
    let info = write(entries, &opts, &mut out).expect("layer written");
    (out, info)
}

fn decompress(bytes: &[u8]) -> Vec<u8> {
    let mut tar = Vec::new();
    decompressing_reader(bytes)
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    tar
}

fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| String::from_utf8_lossy(&entry.unwrap().path_bytes()).into_owned())
        .collect()
}

fn file(bytes: &[u8], mode: u32) -> Entry {
    Entry::new(EntryKind::File(Content::Bytes(bytes.to_vec())), mode, 0, 0)
}

fn set_mtime(path: &Path, seconds: i64) {
    let time = TimeSpec::new(seconds, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// A comparable description of a tree: kind (with file content), mode, uid, gid, xattrs.
fn view(entries: &Entries) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(path, entry)| {
            let kind = match &entry.kind {
                EntryKind::File(content @ (Content::Host { .. } | Content::Beneath { .. })) => {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut content.open().unwrap().unwrap(), &mut bytes)
                        .unwrap();
                    assert_eq!(bytes.len() as u64, content.size());
                    format!("file {}", Digest::of(&bytes))
                }
                EntryKind::File(Content::Bytes(bytes)) => format!("file {}", Digest::of(bytes)),
                other => format!("{other:?}"),
            };
            let description = format!(
                "{kind} mode={:o} uid={} gid={} xattrs={:?}",
                entry.mode, entry.uid, entry.gid, entry.xattrs
            );
            (path.to_string(), description)
        })
        .collect()
}

// ---------------------------------------------------------------- entries

#[test]
fn paths_are_normalized_and_checked() {
    assert_eq!(normalize_path("/usr//bin/./env").unwrap(), "usr/bin/env");
    assert_eq!(normalize_path("etc/").unwrap(), "etc");
    for bad in ["", "/", ".", "a/../b", "..", "a/.wh.b", "a\0b"] {
        assert!(normalize_path(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn insert_adds_parents_that_explicit_inserts_override() {
    let mut entries = Entries::new();
    entries
        .insert("usr/local/bin/tool", file(b"x", 0o755))
        .unwrap();
    let paths: Vec<&str> = entries.iter().map(|(path, _)| path).collect();
    assert_eq!(
        paths,
        ["usr", "usr/local", "usr/local/bin", "usr/local/bin/tool"]
    );
    assert_eq!(entries.get("usr/local").unwrap(), &Entry::implicit_dir());
    assert!(entries.is_implicit("usr/local"));

    entries
        .insert("usr/local", Entry::new(EntryKind::Dir, 0o700, 1000, 1000))
        .unwrap();
    assert!(!entries.is_implicit("usr/local"));
    assert_eq!(entries.get("usr/local").unwrap().uid, 1000);
    // A later child insert leaves the explicit parent alone.
    entries
        .insert("usr/local/share", Entry::implicit_dir())
        .unwrap();
    assert_eq!(entries.get("usr/local").unwrap().mode, 0o700);

    let error = entries.insert("usr/local/bin/tool/x", file(b"", 0o644));
    assert!(
        matches!(error, Err(LayerError::ParentNotDir { .. })),
        "{error:?}"
    );
    let error = entries.insert("usr", file(b"", 0o644));
    assert!(
        matches!(error, Err(LayerError::DirNotEmpty { .. })),
        "{error:?}"
    );
}

// ---------------------------------------------------------------- writing

#[test]
fn digests_match_the_bytes_written_and_the_tar() {
    let mut entries = Entries::new();
    entries
        .insert("etc/hostname", file(b"kiln\n", 0o644))
        .unwrap();
    entries
        .insert("big", file(&vec![7u8; 3 * 1024 * 1024 + 17], 0o600))
        .unwrap();
    for compression in ALL_COMPRESSIONS {
        let (bytes, info) = write_layer(&entries, compression, 0);
        assert_eq!(info.digest, Digest::of(&bytes), "{compression:?}");
        assert_eq!(info.size, bytes.len() as u64);
        let tar = decompress(&bytes);
        assert_eq!(info.diff_id, Digest::of(&tar), "{compression:?}");
        assert_eq!(info.uncompressed_size, tar.len() as u64);
        assert_eq!(info.media_type(), compression.media_type());
        assert_eq!(Compression::detect(&bytes), compression);
        if compression == Compression::None {
            assert_eq!(info.digest, info.diff_id);
        } else {
            assert!(
                info.size < info.uncompressed_size,
                "{compression:?} did not compress"
            );
        }
        assert_eq!(tar_names(&tar), ["big", "etc/", "etc/hostname"]);
    }
    assert_eq!(
        Compression::Gzip.media_type(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
}

#[test]
fn gzip_header_has_no_time_name_or_host() {
    let (bytes, _) = write_layer(&Entries::new(), Compression::Gzip, 1_700_000_000);
    assert_eq!(
        &bytes[..4],
        &[0x1f, 0x8b, 8, 0],
        "no FNAME/FEXTRA/FCOMMENT flags"
    );
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "mtime 0");
    assert_eq!(bytes[9], 255, "OS unknown");
}

#[test]
fn compressed_bytes_do_not_depend_on_write_sizes() {
    // 4 MB, compressible but not trivially: many zstd blocks, deflate windows and pipeline
    // blocks.
    let mut data = Vec::with_capacity(4 << 20);
    let mut state = 0x1234_5678u32;
    while data.len() < 4 << 20 {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let word = format!("w{} ", state >> 22);
        data.extend_from_slice(word.as_bytes());
    }
    // Deflate itself is sensitive to how its input is split, which is why the pipeline
    // re-blocks the tar stream; without that this layer's bytes would depend on read sizes.
    let raw_gzip = |chunk: usize| {
        let mut encoder = Encoder::new(Compression::Gzip, Vec::new()).unwrap();
        for piece in data.chunks(chunk) {
            encoder.write_all(piece).unwrap();
        }
        encoder.finish().unwrap()
    };
    let gzip_split_matters = raw_gzip(4093) != raw_gzip(1 << 20);
    eprintln!("raw deflate output depends on input split: {gzip_split_matters}");

    for compression in ALL_COMPRESSIONS {
        // A chunk size of 0 means irregular sizes, like short reads.
        let through_pipeline = |chunk: usize| {
            let mut out = Vec::new();
            let mut pipeline = Pipeline::new(compression, &mut out).unwrap();
            let mut rest = &data[..];
            let mut size = 1usize;
            while !rest.is_empty() {
                size = if chunk == 0 {
                    (size * 7919 + 13) % 70_001 + 1
                } else {
                    chunk
                };
                let (piece, tail) = rest.split_at(size.min(rest.len()));
                pipeline.write_all(piece).unwrap();
                rest = tail;
            }
            let info = pipeline.finish().unwrap();
            assert_eq!(info.digest, Digest::of(&out));
            (out, info)
        };
        let (reference, info) = through_pipeline(1 << 20);
        for chunk in [0, 4093, 3 << 20] {
            let (other, other_info) = through_pipeline(chunk);
            assert!(
                other == reference,
                "{compression:?} depends on write sizes ({chunk})"
            );
            assert_eq!(other_info, info);
        }
        assert_eq!(decompress(&reference), data);
        assert_eq!(info.diff_id, Digest::of(&data));
    }
}

#[test]
fn headers_carry_exact_metadata_and_fixed_times() {
    let mut entries = Entries::new();
    let mut big_owner = file(b"hello", 0o4755);
    big_owner.uid = 3_000_000;
    big_owner.gid = 2_097_152;
    entries.insert("bin/su", big_owner).unwrap();
    entries
        .insert("tmp", Entry::new(EntryKind::Dir, 0o1777, 0, 0))
        .unwrap();
    let (bytes, _) = write_layer(&entries, Compression::None, 1234);
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        assert_eq!(header.mtime().unwrap(), 1234);
        assert_eq!(header.username_bytes(), Some(&b""[..]));
        assert_eq!(header.groupname_bytes(), Some(&b""[..]));
        assert!(header.as_ustar().is_some(), "ustar format");
        seen.push((
            String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            header.mode().unwrap(),
            header.uid().unwrap(),
            header.gid().unwrap(),
        ));
    }
    assert_eq!(
        seen,
        [
            ("bin/".to_string(), 0o755, 0, 0),
            ("bin/su".to_string(), 0o4755, 3_000_000, 2_097_152),
            ("tmp/".to_string(), 0o1777, 0, 0),
        ]
    );
}

#[test]
fn bad_hardlinks_are_refused_when_writing() {
    let mut entries = Entries::new();
    entries
        .insert(
            "a",
            Entry::new(EntryKind::Hardlink("b".into()), 0o644, 0, 0),
        )
        .unwrap();
    entries.insert("b", file(b"later", 0o644)).unwrap();
    entries
        .insert(
            "c",
            Entry::new(EntryKind::Hardlink("nope".into()), 0o644, 0, 0),
        )
        .unwrap();
    let error = write(&entries, &WriteOptions::default(), Vec::new()).unwrap_err();
    assert!(
        matches!(&error, LayerError::BadHardlink { path, target } if path == "a" && target == "b"),
        "{error:?}"
    );
}

#[test]
fn a_host_file_swapped_for_a_fifo_after_the_scan_is_an_error_not_a_hang() {
    // A running container's upper directory (kiln commit without a freezer): a scanned
    // file replaced by a FIFO must not block the writer, nor be read as data.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("swapped");
    fs::write(&path, b"").unwrap();
    let entries = Entries::scan_dir(dir.path(), &ScanOptions::default()).unwrap();
    fs::remove_file(&path).unwrap();
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o644)).unwrap();
    let error = write(&entries, &WriteOptions::default(), Vec::new()).unwrap_err();
    assert!(
        error.to_string().contains("layer I/O failed")
            && format!("{error:?}").contains("no longer a regular file"),
        "{error:?}"
    );
}

#[test]
fn host_files_that_change_after_the_scan_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("grows"), b"0123").unwrap();
    let entries = Entries::scan_dir(dir.path(), &ScanOptions::default()).unwrap();
    fs::write(dir.path().join("grows"), b"0123456789").unwrap();
    let error = write(&entries, &WriteOptions::default(), Vec::new()).unwrap_err();
    assert!(
        matches!(
            error,
            LayerError::HostFileChanged {
                expected: 4,
                actual: 10,
                ..
            }
        ),
        "{error:?}"
    );
    fs::write(dir.path().join("grows"), b"01").unwrap();
    let error = write(&entries, &WriteOptions::default(), Vec::new()).unwrap_err();
    assert!(
        matches!(
            error,
            LayerError::HostFileChanged {
                expected: 4,
                actual: 2,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn gnu_tar_lists_what_we_write() {
    let mut entries = Entries::new();
    let mut owned = file(b"hello\n", 0o640);
    (owned.uid, owned.gid) = (1000, 1001);
    entries.insert("etc/motd", owned).unwrap();
    entries
        .insert(
            "bin/sh",
            Entry::new(EntryKind::Symlink("busybox".into()), 0o777, 0, 0),
        )
        .unwrap();
    let long = format!("deep/{}/{}.txt", "d".repeat(90), "f".repeat(120));
    entries.insert(&long, file(b"long", 0o644)).unwrap();
    entries
        .insert("caf\u{e9}/\u{6587}\u{4ef6}", file(b"unicode", 0o644))
        .unwrap();
    entries
        .insert(
            "etc/motd.link",
            Entry::new(EntryKind::Hardlink("etc/motd".into()), 0o640, 1000, 1001),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("layer.tar");
    let (bytes, _) = write_layer(&entries, Compression::None, 0);
    fs::write(&layer, bytes).unwrap();

    let output = Command::new("tar")
        .arg("-tvf")
        .arg(&layer)
        .env("TZ", "UTC")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("GNU tar runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tar failed: {stderr}");
    assert!(stderr.is_empty(), "tar warned: {stderr}");
    let listing = String::from_utf8(output.stdout).unwrap();
    // Columns are padded; compare with single spaces.
    let lines: Vec<String> = listing
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines.len(), 10, "{listing}");
    let line = |suffix: &str| {
        lines
            .iter()
            .find(|line| line.ends_with(suffix))
            .unwrap_or_else(|| panic!("no `{suffix}` in:\n{listing}"))
            .to_string()
    };
    assert!(line(" etc/motd").starts_with("-rw-r----- 1000/1001 6 1970-01-01 00:00"));
    assert!(line(" bin/sh -> busybox").starts_with("lrwxrwxrwx 0/0"));
    assert!(line(" etc/motd.link link to etc/motd").starts_with("hrw-r-----"));
    assert!(line(&format!(" {long}")).starts_with("-rw-r--r-- 0/0 4 "));
    assert!(line(" etc/").starts_with("drwxr-xr-x 0/0 0 1970-01-01 00:00"));
    line(" caf\u{e9}/\u{6587}\u{4ef6}");
}

// ---------------------------------------------------------------- scanning

/// One thing to create in a test tree.
enum Item<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
}

fn tree_items() -> Vec<Item<'static>> {
    // Leaked so the long names can be borrowed as 'static for the whole test.
    let long: &'static str = Box::leak(
        format!(
            "long/{}/{}/{}",
            "a".repeat(70),
            "b".repeat(80),
            "c".repeat(200)
        )
        .into_boxed_str(),
    );
    let long_target: &'static str = Box::leak("t/".repeat(80).into_boxed_str());
    vec![
        Item::Dir("etc", 0o755),
        Item::Dir("empty", 0o700),
        Item::Dir("tmp", 0o1777),
        Item::Dir("long", 0o755),
        Item::File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644),
        Item::File("etc/shadow", b"root:*::0:::::\n", 0o600),
        Item::File("usr/bin/su", b"#!/bin/sh\n", 0o4755),
        Item::File("usr/bin/tool", &[0u8; 70_000], 0o2711),
        Item::File(long, b"deep", 0o644),
        Item::File(
            "\u{fc}n\u{ef}c\u{f8}d\u{e9}-\u{444}\u{430}\u{439}\u{43b}-\u{6587}\u{4ef6}",
            b"u",
            0o644,
        ),
        Item::File("a-b", b"sorts between a and a/", 0o644),
        Item::File("a/b", b"sorted after a-b", 0o644),
        Item::Symlink("bin", "usr/bin"),
        Item::Symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
        Item::Symlink("dangling", long_target),
        Item::Hardlink("usr/bin/su-hardlink", "usr/bin/su"),
        Item::Hardlink("a/hardlink", "usr/bin/su"),
        Item::Fifo("run.fifo"),
    ]
}

/// Creates `items` under `root`, in the given or reversed order, with mtimes from `seed`.
fn build_tree(root: &Path, items: &[Item<'_>], reverse: bool, seed: i64) {
    let mut order: Vec<&Item<'_>> = items.iter().collect();
    if reverse {
        order.reverse();
    }
    let parent = |path: &str| root.join(path).parent().unwrap().to_path_buf();
    for item in &order {
        match item {
            Item::Dir(path, _) => fs::create_dir_all(root.join(path)).unwrap(),
            Item::File(path, ..)
            | Item::Symlink(path, _)
            | Item::Hardlink(path, _)
            | Item::Fifo(path) => fs::create_dir_all(parent(path)).unwrap(),
        }
    }
    for item in &order {
        match item {
            Item::File(path, bytes, mode) => {
                fs::write(root.join(path), bytes).unwrap();
                fs::set_permissions(root.join(path), fs::Permissions::from_mode(*mode)).unwrap();
            }
            Item::Symlink(path, target) => symlink(target, root.join(path)).unwrap(),
            Item::Fifo(path) => {
                nix::unistd::mkfifo(&root.join(path), Mode::from_bits_truncate(0o644)).unwrap()
            }
            Item::Dir(..) | Item::Hardlink(..) => {}
        }
    }
    for item in &order {
        if let Item::Hardlink(path, target) = item {
            fs::hard_link(root.join(target), root.join(path)).unwrap();
        }
    }
    // Implicitly created directories get a fixed mode, whatever the umask.
    for dir in [
        "usr",
        "usr/bin",
        "a",
        "long",
        &format!("long/{}", "a".repeat(70)),
        &format!("long/{}/{}", "a".repeat(70), "b".repeat(80)),
    ] {
        fs::set_permissions(root.join(dir), fs::Permissions::from_mode(0o755)).unwrap();
    }
    for item in &order {
        if let Item::Dir(path, mode) = item {
            fs::set_permissions(root.join(path), fs::Permissions::from_mode(*mode)).unwrap();
        }
    }
    let mut step = 0;
    for entry in walk(root) {
        step += 1;
        set_mtime(&entry, seed + step * 7919);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for child in fs::read_dir(dir).unwrap() {
        let path = child.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn same_tree_gives_identical_layers_whatever_order_mtimes_and_location() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let items = tree_items();
    build_tree(one.path(), &items, false, 1_000_000);
    build_tree(two.path(), &items, true, 1_600_000_000);
    if is_root() {
        for root in [one.path(), two.path()] {
            std::os::unix::fs::lchown(root.join("etc/shadow"), Some(0), Some(42)).unwrap();
            std::os::unix::fs::lchown(root.join("bin"), Some(3_000_000), Some(3_000_001)).unwrap();
        }
    } else {
        eprintln!("note: ownership part skipped, needs root");
    }
    let scan_one = Entries::scan_dir(one.path(), &ScanOptions::default()).unwrap();
    let scan_two = Entries::scan_dir(two.path(), &ScanOptions::default()).unwrap();
    assert_eq!(view(&scan_one), view(&scan_two));
    assert_eq!(
        scan_one.get("usr/bin/su-hardlink").unwrap().kind,
        EntryKind::Hardlink("a/hardlink".into()),
        "hardlinks point to the first path in sorted order"
    );
    match &scan_one.get("a/hardlink").unwrap().kind {
        EntryKind::File(content @ Content::Beneath { path, .. }) => {
            assert_eq!(path, Path::new("a/hardlink"));
            assert_eq!(content.size(), 10);
            assert_eq!(content.shown(), Some(one.path().join("a/hardlink")));
        }
        other => panic!("{other:?}"),
    }
    for compression in ALL_COMPRESSIONS {
        let (bytes_one, info_one) = write_layer(&scan_one, compression, 0);
        let (bytes_two, info_two) = write_layer(&scan_two, compression, 0);
        assert!(bytes_one == bytes_two, "{compression:?} layers differ");
        assert_eq!(info_one, info_two);
        let (bytes_later, _) = write_layer(&scan_one, compression, 1);
        assert_ne!(bytes_later, bytes_one, "the epoch is in the bytes");
    }
}

#[test]
fn scan_keeps_capabilities_and_optionally_other_xattrs() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let ping = dir.path().join("ping");
    fs::write(&ping, b"elf").unwrap();
    xattr::set(&ping, "security.capability", &CAP_NET_RAW_EP).unwrap();
    xattr::set(&ping, "user.note", b"hi").unwrap();
    let default = Entries::scan_dir(dir.path(), &ScanOptions::default()).unwrap();
    let xattrs = &default.get("ping").unwrap().xattrs;
    assert_eq!(xattrs.keys().collect::<Vec<_>>(), ["security.capability"]);
    let all = Entries::scan_dir(dir.path(), &ScanOptions { all_xattrs: true }).unwrap();
    let xattrs = &all.get("ping").unwrap().xattrs;
    assert_eq!(xattrs.get("user.note").map(Vec::as_slice), Some(&b"hi"[..]));
    assert_eq!(
        xattrs.get("security.capability").map(Vec::as_slice),
        Some(&CAP_NET_RAW_EP[..])
    );
}

// ---------------------------------------------------------------- round trip

#[test]
fn write_then_extract_reproduces_the_tree() {
    let source = tempfile::tempdir().unwrap();
    let items = tree_items();
    build_tree(source.path(), &items, false, 5);
    let root = is_root();
    if root {
        let chown = |path: &str, uid, gid| {
            std::os::unix::fs::lchown(source.path().join(path), Some(uid), Some(gid)).unwrap()
        };
        chown("etc/shadow", 0, 42);
        chown("usr/bin/tool", 3_000_000, 2_097_152);
        chown("bin", 1000, 1000);
        chown("empty", 65534, 65534);
        // chown drops setuid/setgid; put them back.
        fs::set_permissions(
            source.path().join("usr/bin/tool"),
            fs::Permissions::from_mode(0o2711),
        )
        .unwrap();
        xattr::set(
            source.path().join("usr/bin/su"),
            "security.capability",
            &CAP_NET_RAW_EP,
        )
        .unwrap();
        // A read-only directory with content: its mode must come after its children.
        fs::create_dir(source.path().join("ro")).unwrap();
        fs::write(source.path().join("ro/inside"), b"x").unwrap();
        fs::set_permissions(source.path().join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
    } else {
        eprintln!("note: ownership, capability and read-only dir parts skipped, needs root");
    }
    let entries = Entries::scan_dir(source.path(), &ScanOptions::default()).unwrap();
    if root {
        assert_eq!(
            entries
                .get("usr/bin/su")
                .unwrap()
                .xattrs
                .get("security.capability"),
            Some(&CAP_NET_RAW_EP.to_vec())
        );
    }
    for compression in [Compression::None, Compression::Zstd] {
        let (bytes, _) = write_layer(&entries, compression, 86_400);
        let target = tempfile::tempdir().unwrap();
        let opts = ExtractOptions {
            preserve_ownership: root,
            ..ExtractOptions::default()
        };
        let report = extract(
            decompressing_reader(&bytes[..]).unwrap(),
            target.path(),
            &opts,
        )
        .expect("extracted");
        assert_eq!(report.entries, entries.len() as u64);
        let extracted = Entries::scan_dir(target.path(), &ScanOptions::default()).unwrap();
        assert_eq!(view(&extracted), view(&entries), "{compression:?}");
        for path in walk(target.path()) {
            assert_eq!(
                fs::symlink_metadata(&path).unwrap().mtime(),
                86_400,
                "{}",
                path.display()
            );
        }
        assert_eq!(
            fs::read_link(target.path().join("etc/localtime")).unwrap(),
            Path::new("/usr/share/zoneinfo/UTC")
        );
        let su = fs::metadata(target.path().join("usr/bin/su")).unwrap();
        let link = fs::metadata(target.path().join("a/hardlink")).unwrap();
        assert_eq!(
            (su.ino(), su.nlink()),
            (link.ino(), 3),
            "hardlinks share the inode"
        );
    }
    if root {
        fs::set_permissions(source.path().join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
    }
}

// ---------------------------------------------------------------- whiteouts

#[test]
fn applied_whiteouts_delete_and_opaque_dirs_clear_lower_content_only() {
    let root = tempfile::tempdir().unwrap();
    let mut lower = Entries::new();
    for path in ["keep", "gone", "gonedir/x", "opq/old", "opq/sub/older"] {
        lower.insert(path, file(b"lower", 0o644)).unwrap();
    }
    let (bytes, _) = write_layer(&lower, Compression::None, 0);
    extract(&bytes[..], root.path(), &ExtractOptions::default()).unwrap();

    let mut upper = Entries::new();
    let whiteout = || Entry::new(EntryKind::Whiteout, 0, 0, 0);
    upper.insert("gone", whiteout()).unwrap();
    upper.insert("gonedir", whiteout()).unwrap();
    upper.insert("missing", whiteout()).unwrap();
    upper
        .insert("opq", Entry::new(EntryKind::OpaqueDir, 0o755, 0, 0))
        .unwrap();
    upper.insert("opq/new", file(b"upper", 0o644)).unwrap();
    upper
        .insert("opq/sub/newer", file(b"upper", 0o644))
        .unwrap();
    let (bytes, _) = write_layer(&upper, Compression::None, 0);
    assert_eq!(
        tar_names(&bytes),
        [
            ".wh.gone",
            ".wh.gonedir",
            ".wh.missing",
            "opq/",
            "opq/.wh..wh..opq",
            "opq/new",
            "opq/sub/",
            "opq/sub/newer"
        ]
    );
    let report = extract(&bytes[..], root.path(), &ExtractOptions::default()).unwrap();
    assert_eq!(report.whiteouts, 4);
    let mut left: Vec<String> = walk(root.path())
        .iter()
        .map(|path| {
            path.strip_prefix(root.path())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    left.sort();
    assert_eq!(left, ["keep", "opq", "opq/new", "opq/sub", "opq/sub/newer"]);
}

/// An overlay mount, unmounted on drop.
struct OverlayMount(PathBuf);

impl OverlayMount {
    fn new(lower: &str, upper: &Path, work: &Path, merged: &Path) -> OverlayMount {
        let options = format!(
            "lowerdir={lower},upperdir={},workdir={}",
            upper.display(),
            work.display()
        );
        nix::mount::mount(
            Some("overlay"),
            merged,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(options.as_str()),
        )
        .expect("overlay mounted");
        OverlayMount(merged.to_path_buf())
    }

    fn read_only(lowers: &str, merged: &Path) -> OverlayMount {
        let options = format!("lowerdir={lowers}");
        nix::mount::mount(
            Some("overlay"),
            merged,
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(options.as_str()),
        )
        .expect("overlay mounted");
        OverlayMount(merged.to_path_buf())
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        nix::mount::umount2(&self.0, nix::mount::MntFlags::empty()).expect("overlay unmounted");
    }
}

fn is_mounted(path: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_str().unwrap();
    mounts
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(path))
}

#[test]
fn overlay_upper_dirs_become_oci_whiteouts_and_back() {
    require_root!();
    let base = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let path = base.path().join(name);
        fs::create_dir_all(&path).unwrap();
        path
    };
    let (lower, upper, work, merged) = (dir("lower"), dir("upper"), dir("work"), dir("merged"));
    let mut lower_entries = Entries::new();
    for path in ["keep", "gone", "gonedir/x", "opq/old"] {
        lower_entries.insert(path, file(b"lower", 0o644)).unwrap();
    }
    let (bytes, _) = write_layer(&lower_entries, Compression::None, 0);
    extract(&bytes[..], &lower, &ExtractOptions::default()).unwrap();

    {
        let _mount = OverlayMount::new(lower.to_str().unwrap(), &upper, &work, &merged);
        assert!(is_mounted(&merged));
        fs::remove_file(merged.join("gone")).unwrap();
        fs::remove_dir_all(merged.join("gonedir")).unwrap();
        fs::remove_dir_all(merged.join("opq")).unwrap();
        fs::create_dir(merged.join("opq")).unwrap();
        fs::write(merged.join("opq/new"), b"upper").unwrap();
        fs::write(merged.join("added"), b"upper").unwrap();
    }
    assert!(!is_mounted(&merged), "overlay left mounted");

    let entries = Entries::scan_overlay_upper(&upper, &ScanOptions { all_xattrs: true }).unwrap();
    assert_eq!(entries.get("gone").unwrap().kind, EntryKind::Whiteout);
    assert_eq!(entries.get("gonedir").unwrap().kind, EntryKind::Whiteout);
    assert_eq!(entries.get("opq").unwrap().kind, EntryKind::OpaqueDir);
    assert!(matches!(
        entries.get("added").unwrap().kind,
        EntryKind::File(_)
    ));
    for (path, entry) in entries.iter() {
        assert!(
            entry
                .xattrs
                .keys()
                .all(|name| !name.starts_with("trusted.overlay.")),
            "{path} keeps overlay xattrs: {:?}",
            entry.xattrs
        );
    }
    let plain = Entries::scan_dir(&upper, &ScanOptions::default()).unwrap();
    assert!(matches!(
        plain.get("gone").unwrap().kind,
        EntryKind::CharDevice { major: 0, minor: 0 }
    ));

    let (layer, _) = write_layer(&entries, Compression::Zstd, 0);
    let names = tar_names(&decompress(&layer));
    assert_eq!(
        names,
        [
            "added",
            ".wh.gone",
            ".wh.gonedir",
            "opq/",
            "opq/.wh..wh..opq",
            "opq/new"
        ]
    );

    // Apply: flatten lower + this layer into one rootfs.
    let flat = dir("flat");
    let (bytes, _) = write_layer(&lower_entries, Compression::None, 0);
    extract(&bytes[..], &flat, &ExtractOptions::default()).unwrap();
    extract(
        decompressing_reader(&layer[..]).unwrap(),
        &flat,
        &ExtractOptions::default(),
    )
    .unwrap();
    let flat_view = view(&Entries::scan_dir(&flat, &ScanOptions::default()).unwrap());
    assert_eq!(
        flat_view.keys().collect::<Vec<_>>(),
        ["added", "keep", "opq", "opq/new"]
    );

    // Overlay: unpack as a lowerdir, then the overlay of it over lower must look the same.
    let unpacked = dir("unpacked");
    let opts = ExtractOptions {
        whiteouts: WhiteoutMode::Overlay,
        preserve_ownership: true,
        allow_devices: false,
    };
    extract(decompressing_reader(&layer[..]).unwrap(), &unpacked, &opts).unwrap();
    let gone = fs::symlink_metadata(unpacked.join("gone")).unwrap();
    assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
    assert_eq!(
        xattr::get(unpacked.join("opq"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    let view_dir = dir("view");
    {
        let lowers = format!("{}:{}", unpacked.display(), lower.display());
        let _mount = OverlayMount::read_only(&lowers, &view_dir);
        let merged_view = view(&Entries::scan_dir(&view_dir, &ScanOptions::default()).unwrap());
        assert_eq!(merged_view, flat_view);
    }
    assert!(!is_mounted(&view_dir), "overlay left mounted");
}

// ---------------------------------------------------------------- hostile archives

/// A tar with members written verbatim (names are not checked), as an attacker would.
pub(super) fn crafted(members: &[(&str, EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in members {
        let mut header = Header::new_gnu();
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(if *kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        if matches!(kind, EntryType::Char | EntryType::Block) {
            header.set_device_major(1).unwrap();
            header.set_device_minor(3).unwrap();
        }
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Extracts `tar` into `<tmp>/outside/root`; returns the error and the sandbox, after
/// checking that nothing appeared in `<tmp>` or `<tmp>/outside` besides `outside/root`.
pub(super) fn extract_hostile(
    tar: &[u8],
    opts: &ExtractOptions,
) -> (LayerError, tempfile::TempDir) {
    let sandbox = tempfile::tempdir().unwrap();
    let root = sandbox.path().join("outside/root");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir(sandbox.path().join("outside/etc")).unwrap();
    let passwd = fs::read("/etc/passwd").unwrap();
    let error = extract(tar, &root, opts).expect_err("hostile archive refused");
    let listing = |dir: &Path| {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|child| child.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listing(sandbox.path()), ["outside"]);
    assert_eq!(listing(&sandbox.path().join("outside")), ["etc", "root"]);
    assert!(listing(&sandbox.path().join("outside/etc")).is_empty());
    assert_eq!(
        fs::read("/etc/passwd").unwrap(),
        passwd,
        "/etc/passwd changed"
    );
    (error, sandbox)
}

pub(super) fn assert_refused(error: &LayerError, entry: &str, reason: &str) {
    let message = error.to_string();
    assert!(
        matches!(error, LayerError::UnsafeEntry { .. }),
        "not an unsafe-entry error: {error:?}"
    );
    assert!(
        message.contains(&format!("`{entry}`")),
        "entry not named: {message}"
    );
    let LayerError::UnsafeEntry { reason: actual, .. } = error else {
        unreachable!()
    };
    assert!(
        actual.contains(reason),
        "reason `{actual}` lacks `{reason}`"
    );
}

#[test]
fn absolute_paths_are_refused() {
    let name = format!("/tmp/kiln-layer-abs-{}", std::process::id());
    let tar = crafted(&[(&name, EntryType::Regular, "", b"pwned")]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, &name, "absolute");
    assert!(!Path::new(&name).exists());
}

#[test]
fn dot_dot_paths_are_refused() {
    let tar = crafted(&[("../x", EntryType::Regular, "", b"pwned")]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "../x", "`..`");
    let tar = crafted(&[("a/../../x", EntryType::Directory, "", b"")]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "a/../../x", "`..`");
}

#[test]
fn files_through_an_absolute_symlink_are_refused() {
    let tar = crafted(&[
        ("a", EntryType::Symlink, "/etc", b""),
        (
            "a/passwd",
            EntryType::Regular,
            "",
            b"root::0:0::/:/bin/sh\n",
        ),
    ]);
    let (error, sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "a/passwd", "symlink to `/etc`");
    // Even pointing at a real directory next to the root.
    let outside = sandbox.path().join("outside/etc");
    let tar = crafted(&[
        ("a", EntryType::Symlink, outside.to_str().unwrap(), b""),
        ("a/passwd", EntryType::Regular, "", b"pwned"),
    ]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "a/passwd", "outside the extraction root");
}

#[test]
fn files_through_a_climbing_symlink_are_refused() {
    let tar = crafted(&[
        ("a", EntryType::Symlink, "../..", b""),
        ("a/x", EntryType::Regular, "", b"pwned"),
    ]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "a/x", "outside the extraction root");
    // Climbing one level at a time through a chain of links is caught too.
    let tar = crafted(&[
        ("d/", EntryType::Directory, "", b""),
        ("d/up", EntryType::Symlink, "..", b""),
        ("d/up2", EntryType::Symlink, "up/..", b""),
        ("d/up2/etc/x", EntryType::Regular, "", b"pwned"),
    ]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "d/up2/etc/x", "outside the extraction root");
}

#[test]
fn escaping_or_missing_hardlink_targets_are_refused() {
    let tar = crafted(&[("x", EntryType::Link, "../../etc/passwd", b"")]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "x", "`..`");
    let tar = crafted(&[("x", EntryType::Link, "/etc/passwd", b"")]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "x", "absolute");
    let tar = crafted(&[
        ("a", EntryType::Symlink, "/etc", b""),
        ("x", EntryType::Link, "a/passwd", b""),
    ]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "x", "outside the extraction root");
    let tar = crafted(&[("x", EntryType::Link, "nowhere", b"")]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "x", "does not exist");
}

#[test]
fn device_nodes_need_permission() {
    let tar = crafted(&[("dev/null", EntryType::Char, "", b"")]);
    let (error, sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert!(
        matches!(&error, LayerError::DeviceNotAllowed { entry } if entry == "dev/null"),
        "{error:?}"
    );
    assert!(!sandbox.path().join("outside/root/dev").exists());
    // The allowed-device part needs root (under CI, it fails without).
    if !crate::test_support::is_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let opts = ExtractOptions {
        allow_devices: true,
        ..ExtractOptions::default()
    };
    extract(&tar[..], root.path(), &opts).unwrap();
    let null = fs::symlink_metadata(root.path().join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), makedev(1, 3));
}

#[test]
fn symlinks_inside_the_root_are_followed_and_replaced_links_not() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"safe").unwrap();
    let tar = crafted(&[
        ("usr/lib/", EntryType::Directory, "", b""),
        ("lib", EntryType::Symlink, "usr/lib", b""),
        ("lib/libc.so", EntryType::Regular, "", b"elf"),
        ("x", EntryType::Symlink, victim.to_str().unwrap(), b""),
        ("x", EntryType::Regular, "", b"replaced"),
        ("h", EntryType::Link, "x", b""),
    ]);
    extract(&tar[..], root.path(), &ExtractOptions::default()).unwrap();
    assert_eq!(
        fs::read(root.path().join("usr/lib/libc.so")).unwrap(),
        b"elf"
    );
    assert_eq!(fs::read(root.path().join("x")).unwrap(), b"replaced");
    assert_eq!(fs::read(root.path().join("h")).unwrap(), b"replaced");
    assert_eq!(fs::read(&victim).unwrap(), b"safe");
}

#[test]
fn mknod_helper_matches_overlay_whiteouts() {
    // The scanner's device-number split must agree with the kernel's.
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev");
    mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(259, 70_000)).unwrap();
    let entries = Entries::scan_dir(dir.path(), &ScanOptions::default()).unwrap();
    assert_eq!(
        entries.get("dev").unwrap().kind,
        EntryKind::CharDevice {
            major: 259,
            minor: 70_000
        }
    );
}

#[test]
fn decompressing_reader_sniffs_each_format() {
    let mut entries = Entries::new();
    entries.insert("f", file(b"content", 0o644)).unwrap();
    let (plain, _) = write_layer(&entries, Compression::None, 0);
    for compression in ALL_COMPRESSIONS {
        let (bytes, info) = write_layer(&entries, compression, 0);
        let tar = decompress(&bytes);
        assert_eq!(tar, plain, "{compression:?}");
        let mut hasher = Sha256::new();
        hasher.update(&tar);
        assert_eq!(Digest::from_hasher(hasher), info.diff_id);
    }
    // Inputs shorter than a magic number are plain.
    assert_eq!(decompress(b"ab"), b"ab");
}
