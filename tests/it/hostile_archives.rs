//! The store and archive findings of a hostile-input review, tried as an attacker would:
//! device nodes and secrets of layers reachable by other users through the state root,
//! archives whose files are links to host files, imports that fail half-way or whose
//! descriptors lie, and ingest files a killed import leaves. Each test is the attack, then:
//! nothing created or readable outside, a clear error, a store unchanged.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::harness::{Kiln, Project, is_root};
use crate::tarball::{self, Member, device, dir, docker_archive, file, hardlink, symlink};

/// Every file under the store with its bytes (lock files aside): "byte-identical" means
/// two of these are equal.
pub fn snapshot(store: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![store.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.strip_prefix(store).unwrap().display().to_string();
            if entry.file_type().unwrap().is_dir() {
                out.insert(format!("{name}/"), Vec::new());
                stack.push(path);
            } else if !name.ends_with(".lock") {
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn write(path: &Path, members: &[Member]) {
    std::fs::write(path, tarball::tar(members)).unwrap();
}

/// A host file an attacker wants: readable by root only, with a recognisable content.
fn secret(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("shadow");
    let content = b"root:$y$j9T$host-password-hash:19000:0:99999:7:::\n".to_vec();
    std::fs::write(&path, &content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, content)
}

/// Whether any blob of the store holds `needle`.
fn store_holds(root: &Path, needle: &[u8]) -> bool {
    let blobs = root.join("store/blobs/sha256");
    std::fs::read_dir(blobs)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read(e.path())
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
}

fn kiln(root: &Path) -> Kiln {
    Kiln::new().root(root)
}

/// Runs `kiln`, which must fail with `needle` in its message (the report's wrapped lines
/// joined again: the messages name long temporary paths).
fn fails_with(kiln: Kiln, needle: &str) {
    let ran = kiln.run().failure();
    let joined = ran
        .stderr()
        .lines()
        .map(|l| l.trim_start().trim_start_matches(['×', '│']).trim())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        joined.contains(needle),
        "stderr lacks {needle:?}:\n{}",
        ran.stderr()
    );
}

fn assert_no_images_and_sound(root: &Path) {
    let images = kiln(root)
        .args(["images", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(images, serde_json::json!([]));
    kiln(root).args(["fsck"]).run().success();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The state root and the directories under it that hold images and containers are mode
/// 0700.
fn assert_private(root: &Path) {
    for dir in [
        "",
        "store",
        "store/ingest",
        "layers",
        "containers",
        "tmp",
        "volumes",
    ] {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
    }
}

/// Runs `sh -c script` as nobody (uid and gid 65534, no supplementary groups).
fn as_nobody(script: &str, args: &[&Path]) -> std::process::Output {
    std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap()
}

/// Finding 2: an image layer holding a 0666 character device (a `/dev/kmsg` twin; here
/// the harmless 1,3) and a world-readable secret is unpacked under the state root. Another
/// user of the machine must not reach either through it.
#[test]
fn device_nodes_and_secrets_of_layers_are_not_reachable_by_other_users() {
    if !is_root() {
        eprintln!("skipped: unpacking layers with devices needs root");
        return;
    }
    // A state root where /var/lib/kiln would be: its parent is world-traversable.
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = base.path().join("kiln");
    let layer = tarball::tar(&[
        dir("dev"),
        device("dev/kmsg", 1, 3),
        file("etc/api-token", "s3cret-token\n"),
    ]);
    let archive = base.path().join("hostile.tar");
    write(&archive, &docker_archive("hostile:1", &[layer], &[]));
    kiln(&root)
        .args(["import"])
        .args([&archive])
        .run()
        .success();
    let project = Project::new(
        r#"
image "probe" {
    from "hostile:1"
    host-binary "/bin/true"
    run "true"
}
"#,
    );
    project.kiln(&root).args(["build"]).run().success();
    let node = std::fs::read_dir(root.join("layers"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("dev/kmsg"))
        .find(|p| p.exists())
        .expect("the layer with the device is unpacked");
    let token = node
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("etc/api-token");
    // The attack: open the node for writing and read the secret, as another user.
    let write = as_nobody("printf attack > \"$1\"", &[&node]);
    assert!(
        !write.status.success(),
        "another user wrote to a device node of a layer: {}",
        node.display()
    );
    assert!(String::from_utf8_lossy(&write.stderr).contains("Permission denied"));
    let read = as_nobody("cat \"$1\"", &[&token]);
    assert!(!read.status.success(), "another user read a layer's file");
    assert!(read.stdout.is_empty());
    assert_private(&root);
}

/// Finding 2, for roots an older kiln made: their modes are narrowed on first use.
#[test]
fn an_existing_state_root_is_made_private_on_first_use() {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("kiln");
    for dir in ["store/ingest", "layers/abc", "containers", "tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for dir in ["", "store", "store/ingest", "layers", "containers", "tmp"] {
        std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    kiln(&root).args(["images"]).run().success();
    assert_private(&root);
    // A command that never touches the state (kiln check) does not create it.
    let fresh = base.path().join("untouched");
    Project::new("image \"a\" {\n    from \"scratch\"\n}\n")
        .kiln(&fresh)
        .args(["check"])
        .run()
        .success();
    assert!(!fresh.exists());
}

/// Finding 3, Docker archives: `layer.tar` as a link to a host file, whichever way the
/// link is spelled. (The config's diff_id is the secret's own hash, so a kiln that follows
/// the link finds everything consistent.)
#[test]
fn a_docker_archive_whose_layer_is_a_link_to_a_host_file_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let (secret, content) = secret(temp.path());
    let root = temp.path().join("root");
    let hex = tarball::sha256_hex(&content);
    let absolute = secret.display().to_string();
    let climbing = format!("../../../../../../../../..{absolute}");
    let cases: Vec<(&str, Member, &str)> = vec![
        (
            "absolute symlink",
            symlink(&format!("{hex}/layer.tar"), &absolute),
            "outside the archive",
        ),
        (
            "climbing symlink",
            symlink(&format!("{hex}/layer.tar"), &climbing),
            "outside the archive",
        ),
        (
            "hard link",
            hardlink(&format!("{hex}/layer.tar"), &absolute),
            "outside the archive",
        ),
        (
            "linked directory",
            symlink(&hex, secret.parent().unwrap().to_str().unwrap()),
            "outside the archive",
        ),
    ];
    for (what, member, message) in cases {
        // The archive as docker_archive makes it, with the layer member replaced.
        let mut members = docker_archive("stolen:1", std::slice::from_ref(&content), &[]);
        members.retain(|m| !m.name.starts_with(&hex));
        members.insert(0, member);
        let archive = temp.path().join("stolen.tar");
        write(&archive, &members);
        fails_with(kiln(&root).args(["import"]).args([&archive]), message);
        assert!(
            !store_holds(&root, &content),
            "{what}: the host file is in the store"
        );
        assert_no_images_and_sound(&root);
    }
}

/// Finding 3, OCI layouts: a blob (named by the host file's true digest), `index.json` or
/// the `blobs` directory as a link out, in an OCI archive and in a layout directory.
#[test]
fn an_oci_layout_whose_files_are_links_to_host_files_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let (secret, content) = secret(temp.path());
    let root = temp.path().join("root");
    let oci = tarball::oci("stolen", std::slice::from_ref(&content), None);
    let hex = tarball::sha256_hex(&content);
    // As an archive: the blob member is a symlink to the host file.
    let mut members = oci.members(&[&hex]);
    members.push(symlink(
        &format!("blobs/sha256/{hex}"),
        secret.to_str().unwrap(),
    ));
    let archive = temp.path().join("stolen-oci.tar");
    write(&archive, &members);
    fails_with(
        kiln(&root).args(["import"]).args([&archive]),
        "outside the archive",
    );
    assert!(!store_holds(&root, &content));
    // As a directory: the blob file, index.json, or the blobs directory is a symlink.
    let host_index = temp.path().join("index.json");
    std::fs::write(&host_index, &oci.index).unwrap();
    let host_blobs = temp.path().join("host-blobs");
    std::fs::create_dir_all(host_blobs.join("sha256")).unwrap();
    for (h, bytes) in &oci.blobs {
        std::fs::write(host_blobs.join("sha256").join(h), bytes).unwrap();
    }
    let cases: [(&str, PathBuf, &Path); 3] = [
        (
            "blob",
            PathBuf::from(format!("blobs/sha256/{hex}")),
            &secret,
        ),
        ("index.json", PathBuf::from("index.json"), &host_index),
        ("blobs", PathBuf::from("blobs"), &host_blobs),
    ];
    for (what, link, target) in cases {
        let layout = temp.path().join(format!("layout-{what}"));
        oci.write_dir(&layout);
        let at = layout.join(&link);
        if at.is_dir() {
            std::fs::remove_dir_all(&at).unwrap();
        } else {
            std::fs::remove_file(&at).unwrap();
        }
        std::os::unix::fs::symlink(target, &at).unwrap();
        fails_with(
            kiln(&root).args(["import"]).args([&layout]),
            "is a symbolic link",
        );
        assert!(
            !store_holds(&root, &content),
            "{what}: the host file is in the store"
        );
        assert_no_images_and_sound(&root);
    }
    // The same layout without links imports.
    let layout = temp.path().join("layout-ok");
    oci.write_dir(&layout);
    kiln(&root).args(["import"]).args([&layout]).run().success();
}

/// Imports that fail after some blobs were read, or whose descriptors lie about sizes:
/// nothing is committed, the store stays byte-identical and fsck finds nothing.
#[test]
fn a_failed_import_commits_nothing_and_lying_sizes_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    // Something in the store already.
    let good = temp.path().join("good.tar");
    write(
        &good,
        &docker_archive("good:1", &[tarball::tar(&[file("a", "a\n")])], &[]),
    );
    kiln(&root).args(["import"]).args([&good]).run().success();
    let before = snapshot(&root.join("store"));

    let layer1 = tarball::tar(&[file("one", "1\n")]);
    let layer2 = tarball::tar(&[file("two", "2\n")]);
    let layers = [layer1.clone(), layer2.clone()];
    let hex2 = tarball::sha256_hex(&layer2);
    let lying = tarball::oci("lying", &layers, Some(&[layer1.len() as u64, 3]));
    let incomplete = tarball::oci("incomplete", &layers, None);
    let mut bad_diff = docker_archive("bad:1", &layers, &[]);
    for m in &mut bad_diff {
        if m.name == format!("{hex2}/layer.tar") {
            m.kind = tarball::Kind::File(tarball::tar(&[file("two", "tampered\n")]));
        }
    }
    let no_diff_ids = {
        let mut members = docker_archive("nodiff:1", &layers, &[]);
        let config = tarball::config(&[]);
        let name = format!("{}.json", tarball::sha256_hex(&config));
        for m in &mut members {
            if m.name.ends_with(".json") && m.name != "manifest.json" {
                m.name = name.clone();
                m.kind = tarball::Kind::File(config.clone());
            }
            if m.name == "manifest.json" {
                let manifest = serde_json::json!([{"Config": name, "RepoTags": ["nodiff:1"],
                    "Layers": [format!("{}/layer.tar", tarball::sha256_hex(&layer1)), format!("{hex2}/layer.tar")]}]);
                m.kind = tarball::Kind::File(serde_json::to_vec(&manifest).unwrap());
            }
        }
        members
    };
    let mut wrong_manifest_size = tarball::oci("msize", &layers, None);
    wrong_manifest_size.index = String::from_utf8(wrong_manifest_size.index)
        .unwrap()
        .replacen("\"size\":", "\"size\":1", 1)
        .into_bytes();
    let cases: Vec<(&str, Vec<Member>, &str)> = vec![
        (
            "a layer whose descriptor lies about its size",
            lying.members(&[]),
            "descriptor says 3",
        ),
        (
            "a missing second layer",
            incomplete.members(&[&hex2]),
            "lacks",
        ),
        (
            "a second layer that is not its diff_id",
            bad_diff,
            "but the config says",
        ),
        ("a config without diff_ids", no_diff_ids, "lists 0 diff_ids"),
        (
            "a manifest whose size in index.json lies",
            wrong_manifest_size.members(&[]),
            "its descriptor says",
        ),
    ];
    for (what, members, message) in cases {
        let archive = temp.path().join("bad.tar");
        write(&archive, &members);
        fails_with(
            kiln(&root)
                .args(["import", "--tag", "bad"])
                .args([&archive]),
            message,
        );
        assert_eq!(
            snapshot(&root.join("store")),
            before,
            "{what}: the store changed"
        );
        kiln(&root).args(["fsck"]).run().success();
    }
}

/// Finding 9: an import killed while it streams a layer leaves its ingest file; fsck
/// names it (the import's lock died with it) and gc removes it.
#[test]
fn a_killed_import_leaves_an_ingest_file_that_fsck_reports_and_gc_removes() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    let fifo = temp.path().join("archive.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_ROOT", &root)
        .env(crate::harness::LOOPBACK_ONLY, "1")
        .arg("import")
        .args([&fifo])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A docker archive whose first member is a 1 MiB layer, of which 64 KiB arrive; the
    // writer then holds the pipe open, so kiln waits inside the layer.
    let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let name = format!("{}/layer.tar", "ab".repeat(32));
    pipe.write_all(&tarball::file_header(&name, 1 << 20))
        .unwrap();
    pipe.write_all(&vec![7u8; 64 << 10]).unwrap();
    let ingest = root.join("store/ingest");
    let staged = |min: u64| {
        std::fs::read_dir(&ingest)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.metadata().map(|m| m.len() >= min).unwrap_or(false))
    };
    // Bounded wait (not a timing assertion): kiln has read what was sent.
    let mut waited = 0;
    while !staged(64 << 10) && waited < 6000 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    drop(pipe);
    assert!(
        staged(64 << 10),
        "the import streamed its layer into store/ingest"
    );
    kiln(&root)
        .args(["fsck"])
        .run()
        .failure()
        .stderr_contains("is the leftover of an interrupted write");
    kiln(&root)
        .args(["gc"])
        .run()
        .success()
        .stdout_contains("1 leftover files");
    kiln(&root).args(["fsck"]).run().success();
    assert_eq!(std::fs::read_dir(&ingest).unwrap().count(), 0);
}
