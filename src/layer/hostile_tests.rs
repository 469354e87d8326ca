//! Extraction reviewed as a runc/youki reviewer would: the cases beyond plain `..` and
//! absolute names (those are in `tests.rs`). One test per attack.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tar::{EntryType, Header};

use super::tests::{assert_refused, crafted, extract_hostile, is_root};
use super::*;

/// Mode and mtime of a host directory next to the root: must not change.
fn stamp(path: &Path) -> (u32, i64) {
    let meta = fs::metadata(path).unwrap();
    (meta.mode(), meta.mtime())
}

#[test]
fn a_directory_replaced_by_a_symlink_is_never_chmodded_through_it() {
    // `d/`, `d/etc/` (mode 0777, mtime 0), then `d` becomes a symlink to a directory that
    // has an `etc`: the deferred chmod of `d/etc` must not land on the host's.
    let sandbox = tempfile::tempdir().unwrap();
    let host = sandbox.path().join("host");
    fs::create_dir_all(host.join("etc")).unwrap();
    let before = stamp(&host.join("etc"));
    let mut modes = vec![ExtractOptions::default()];
    if is_root() {
        modes.push(ExtractOptions {
            whiteouts: WhiteoutMode::Overlay,
            preserve_ownership: true,
            allow_devices: true,
        });
    }
    for opts in modes {
        let root = sandbox.path().join(format!("root-{:?}", opts.whiteouts));
        fs::create_dir(&root).unwrap();
        let mut tar = crafted(&[("d/", EntryType::Directory, "", b"")]);
        tar.truncate(tar.len() - 1024);
        let mut header = Header::new_ustar();
        header.set_path("d/etc/").unwrap();
        header.set_entry_type(EntryType::Directory);
        header.set_mode(0o777);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(0);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend(crafted(&[(
            "d",
            EntryType::Symlink,
            host.to_str().unwrap(),
            b"",
        )]));
        extract(&tar[..], &root, &opts).unwrap();
        assert_eq!(stamp(&host.join("etc")), before, "{:?}", opts.whiteouts);
        assert!(fs::symlink_metadata(root.join("d")).unwrap().is_symlink());
    }
}

#[test]
fn a_replaced_directory_cannot_be_written_through() {
    let tar = crafted(&[
        ("d/", EntryType::Directory, "", b""),
        ("d", EntryType::Symlink, "/etc", b""),
        ("d/passwd", EntryType::Regular, "", b"pwned"),
    ]);
    let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "d/passwd", "symlink to `/etc`");
}

#[test]
fn a_hardlink_to_a_symlink_links_the_symlink_not_its_target() {
    let sandbox = tempfile::tempdir().unwrap();
    let secret = sandbox.path().join("secret");
    fs::write(&secret, "host secret").unwrap();
    let root = sandbox.path().join("root");
    fs::create_dir(&root).unwrap();
    let tar = crafted(&[
        ("l", EntryType::Symlink, secret.to_str().unwrap(), b""),
        ("h", EntryType::Link, "l", b""),
    ]);
    extract(&tar[..], &root, &ExtractOptions::default()).unwrap();
    let h = fs::symlink_metadata(root.join("h")).unwrap();
    assert!(
        h.is_symlink(),
        "a hard link to the link, not to the host file"
    );
    assert_ne!(h.ino(), fs::metadata(&secret).unwrap().ino());
}

#[test]
fn whiteouts_never_reach_through_links() {
    // Through an absolute symlink parent: refused (Apply and Overlay alike).
    let tar = crafted(&[
        ("a", EntryType::Symlink, "/etc", b""),
        ("a/.wh.passwd", EntryType::Regular, "", b""),
    ]);
    let (error, _s) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "a/.wh.passwd", "symlink to `/etc`");
    let tar = crafted(&[
        ("a", EntryType::Symlink, "../..", b""),
        ("a/.wh..wh..opq", EntryType::Regular, "", b""),
    ]);
    let (error, _s) = extract_hostile(&tar, &ExtractOptions::default());
    assert_refused(&error, "a/.wh..wh..opq", "outside the extraction root");
    // A whiteout of a symlink removes the link only.
    let sandbox = tempfile::tempdir().unwrap();
    let host = sandbox.path().join("host");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("keep"), "x").unwrap();
    let root = sandbox.path().join("root");
    fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(&host, root.join("l")).unwrap();
    extract(
        &crafted(&[(".wh.l", EntryType::Regular, "", b"")])[..],
        &root,
        &ExtractOptions::default(),
    )
    .unwrap();
    assert!(!root.join("l").exists());
    assert!(host.join("keep").exists());
}

#[test]
fn setuid_bits_are_applied_after_the_chown_that_would_clear_them() {
    // chown needs root (under CI, the test fails without).
    if !crate::test_support::is_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut header = Header::new_ustar();
    header.set_path("bin/su").unwrap();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o4755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(1);
    header.set_cksum();
    let mut tar = header.as_bytes().to_vec();
    tar.push(b'x');
    tar.resize(1024 + 1024, 0);
    let opts = ExtractOptions {
        preserve_ownership: true,
        ..ExtractOptions::default()
    };
    extract(&tar[..], root.path(), &opts).unwrap();
    let meta = fs::metadata(root.path().join("bin/su")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o4755);
    // Such a file sits below the state root, which is 0700: see store::private.
}

#[test]
fn absurd_headers_are_errors_not_panics() {
    let root = tempfile::tempdir().unwrap();
    // A size of 8 GiB with 3 bytes behind it.
    let mut header = Header::new_gnu();
    header.set_path("big").unwrap();
    header.set_size(8 << 30);
    header.set_cksum();
    let mut tar = header.as_bytes().to_vec();
    tar.extend_from_slice(b"abc");
    assert!(extract(&tar[..], root.path(), &ExtractOptions::default()).is_err());
    // A uid beyond u32 with ownership kept; a mtime beyond i64.
    for (uid, mtime) in [(1u64 << 40, 0u64), (0, u64::MAX)] {
        let mut header = Header::new_gnu();
        header.set_path(format!("odd-{uid}")).unwrap();
        header.set_uid(uid);
        header.set_mtime(mtime);
        header.set_size(0);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.resize(512 + 1024, 0);
        let opts = ExtractOptions {
            preserve_ownership: true,
            ..ExtractOptions::default()
        };
        assert!(
            extract(&tar[..], root.path(), &opts).is_err(),
            "{uid} {mtime}"
        );
    }
    // Garbage instead of a header.
    let garbage = vec![0xffu8; 2048];
    assert!(extract(&garbage[..], root.path(), &ExtractOptions::default()).is_err());
}

#[test]
fn pax_paths_and_link_targets_are_checked_like_ustar_names() {
    let cases: [(&str, &str, EntryType, &str); 4] = [
        ("path", "../escaped", EntryType::Regular, "`..`"),
        (
            "path",
            "/tmp/kiln-pax-absolute",
            EntryType::Regular,
            "absolute",
        ),
        ("linkpath", "../../etc/passwd", EntryType::Link, "`..`"),
        ("path", "a/../../x", EntryType::Directory, "`..`"),
    ];
    for (key, value, kind, reason) in cases {
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_pax_extensions([(key, value.as_bytes())])
            .unwrap();
        let mut header = Header::new_ustar();
        header.set_path("innocent").unwrap();
        if kind == EntryType::Link {
            header.set_link_name("target").unwrap();
        }
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(0);
        header.set_cksum();
        builder.append(&header, &[][..]).unwrap();
        let tar = builder.into_inner().unwrap();
        let (error, _sandbox) = extract_hostile(&tar, &ExtractOptions::default());
        let entry = if key == "path" { value } else { "innocent" };
        assert_refused(&error, entry, reason);
    }
    assert!(!Path::new("/tmp/kiln-pax-absolute").exists());
}
