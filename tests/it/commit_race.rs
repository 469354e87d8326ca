//! `kiln commit` reads a container's upper directory while the container may change it
//! (a running container whose cgroup has no freezer is committed as it runs). A hostile
//! container swaps one of its directories for a symbolic link to a host directory, over
//! and over, hoping kiln follows it between the scan and the read: kiln must never put a
//! host file's bytes in the layer. The test plays the container from outside (this machine
//! has a freezer, which would stop a real one during the commit): it flips `upper/d`
//! between a real directory and a link to a host directory with `renameat2(RENAME_EXCHANGE)`
//! while committing; commits may fail ("changed"), but no blob ever holds the host's bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};

use crate::harness::{Lab, Project, images};

/// The host's secret, as long as the container's own file so that sizes match.
const HOST_BYTES: &str = "HOST-SECRET-7f3a91";
const OWN_BYTES: &str = "container-file-ok!";

/// Every file below `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_directory_swapped_for_a_link_during_commit_never_leaks_host_files() {
    assert_eq!(HOST_BYTES.len(), OWN_BYTES.len());
    let Some(lab) = Lab::build(Project::new(&images::tools("tools", ""))) else {
        return;
    };
    lab.kiln()
        .args(["run", "--name", "box", "tools", "sh", "-c"])
        .args([format!(
            "mkdir /d && for i in 1 2 3 4 5 6 7 8; do echo -n {OWN_BYTES} > /d/f$i; done"
        )])
        .run()
        .success();
    let uppers: Vec<PathBuf> = std::fs::read_dir(lab.path().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("upper"))
        .filter(|p| p.join("d").is_dir())
        .collect();
    let [upper] = uppers.as_slice() else {
        panic!("one container upper directory: {uppers:?}");
    };
    // The host directory the link points to, with files of the same names and sizes.
    let host = tempfile::tempdir().unwrap();
    for i in 1..=8 {
        std::fs::write(host.path().join(format!("f{i}")), HOST_BYTES).unwrap();
    }
    std::os::unix::fs::symlink(host.path(), upper.join("link")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, d, link) = (Arc::clone(&stop), upper.join("d"), upper.join("link"));
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                renameat2(AT_FDCWD, &d, AT_FDCWD, &link, RenameFlags::RENAME_EXCHANGE).unwrap();
                flips += 1;
            }
            // Leave `d` a directory, as the container made it.
            if std::fs::symlink_metadata(&d)
                .unwrap()
                .file_type()
                .is_symlink()
            {
                renameat2(AT_FDCWD, &d, AT_FDCWD, &link, RenameFlags::RENAME_EXCHANGE).unwrap();
            }
            flips
        })
    };
    let mut committed = 0;
    for attempt in 0..40 {
        let ran = lab
            .kiln()
            .args(["commit", "--compression", "none", "box"])
            .args([format!("snap{attempt}")])
            .run();
        if ran.ok() {
            committed += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    assert!(flips > 0);

    // Uncompressed layers: the host's bytes would be visible in a blob.
    let leaked: Vec<PathBuf> = files(&lab.path().join("store"))
        .into_iter()
        .filter(|path| {
            let bytes = std::fs::read(path).unwrap_or_default();
            bytes
                .windows(HOST_BYTES.len())
                .any(|w| w == HOST_BYTES.as_bytes())
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "host bytes in {leaked:?} ({committed} of 40 commits succeeded)"
    );
    // Without the race the commit works and reads the container's own files.
    std::fs::remove_file(upper.join("link")).unwrap();
    lab.kiln()
        .args(["commit", "--compression", "none", "box", "calm"])
        .run()
        .success();
    lab.kiln().args(["rm", "box"]).run().success();
}
