//! `kiln export` and `kiln import`: archives real clients accept (skopeo, umoci, podman),
//! round trips, building `from` an archive, and hostile archives refused.

use std::path::Path;
use std::process::Command;

use crate::harness::tools::{Podman, hostile_tar, run, skopeo_inspect, umoci_unpack};
use crate::harness::{Project, Root, images, is_root, which};

fn digest_of(project: &Project, root: &Path, name: &str) -> String {
    let inspect = project
        .kiln(root)
        .args(["inspect", name, "--format", "json"])
        .run()
        .success()
        .json();
    inspect["digest"].as_str().unwrap().to_string()
}

#[test]
fn oci_archive_is_deterministic_and_skopeo_reads_it() {
    let (project, root) = images::hello();
    let out = tempfile::tempdir().unwrap();
    let a = out.path().join("a.tar");
    let b = out.path().join("b.tar");
    for path in [&a, &b] {
        project
            .kiln(root.path())
            .args(["export", "hello", "-o"])
            .args([path])
            .run()
            .success();
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    project
        .kiln(root.path())
        .args(["export", "hello", "-o"])
        .args([&a])
        .run()
        .failure()
        .stderr_contains("already exists");
    if which("skopeo") {
        let inspect = skopeo_inspect(&format!("oci-archive:{}", a.display()));
        assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
        assert_eq!(inspect["Digest"], digest_of(&project, root.path(), "hello"));
    }
    // Back in: the same digest, under the name the archive carries.
    let other = Root::new();
    project
        .kiln(other.path())
        .args(["import"])
        .args([&a])
        .run()
        .success()
        .stdout_contains("hello  sha256:");
    assert_eq!(
        digest_of(&project, other.path(), "hello"),
        digest_of(&project, root.path(), "hello")
    );
}

#[test]
fn an_oci_dir_with_gzip_layers_unpacks_with_umoci() {
    let (project, root) = images::hello();
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    project
        .kiln(root.path())
        .args([
            "export",
            "hello",
            "--format",
            "oci-dir",
            "--compression",
            "gzip",
            "-o",
        ])
        .args([&layout])
        .run()
        .success();
    assert!(layout.join("oci-layout").is_file());
    if which("umoci") {
        let rootfs = out.path().join("rootfs");
        umoci_unpack(&layout, "hello", &rootfs);
        assert_eq!(
            std::fs::read_to_string(rootfs.join("msg.txt")).unwrap(),
            "hello from kiln\n"
        );
    }
    // Recompressed layers keep their diff_ids: importing gives the same config.
    let other = Root::new();
    project
        .kiln(other.path())
        .args(["import", "--tag", "again"])
        .args([&layout])
        .run()
        .success();
    let a = project
        .kiln(root.path())
        .args(["inspect", "hello", "--format", "json"])
        .run()
        .success()
        .json();
    let b = project
        .kiln(other.path())
        .args(["inspect", "again", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(a["config"], b["config"]);
    assert_ne!(
        a["digest"], b["digest"],
        "gzip layers make another manifest"
    );
}

#[test]
fn podman_loads_a_docker_archive_and_runs_it() {
    let (project, root) = images::hello();
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("hello-docker.tar");
    project
        .kiln(root.path())
        .args(["export", "hello", "--format", "docker-archive", "-o"])
        .args([&archive])
        .run()
        .success();
    // Round trip through kiln itself.
    let other = Root::new();
    project
        .kiln(other.path())
        .args(["import"])
        .args([&archive])
        .run()
        .success()
        .stdout_contains("hello:latest");
    if !is_root() || !which("podman") {
        return;
    }
    let podman = Podman::new();
    run(podman.command().arg("load").arg("-i").arg(&archive));
    let printed =
        run(podman
            .command()
            .args(["run", "--rm", "--network", "none", "localhost/hello:latest"]));
    assert_eq!(printed, "hello from kiln\n");
}

#[test]
fn a_build_can_start_from_an_archive_and_a_rootfs_tarball_imports() {
    let (project, root) = images::hello();
    let archive = project.path().join("hello.tar");
    project
        .kiln(root.path())
        .args(["export", "hello", "-o"])
        .args([&archive])
        .run()
        .success();
    project.write(
        "kiln.kdl",
        r#"
image "derived" {
    from "oci-archive:hello.tar"
    copy "msg.txt" "/again.txt"
}
"#,
    );
    let fresh = Root::new();
    project.kiln(fresh.path()).args(["build"]).run().success();
    let inspect = project
        .kiln(fresh.path())
        .args(["inspect", "derived", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(inspect["manifest"]["layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        inspect["config"]["config"]["Cmd"],
        serde_json::json!(["cat", "/msg.txt"])
    );

    // A plain rootfs tarball (gzip) becomes a one-layer image.
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("etc")).unwrap();
    std::fs::write(tree.path().join("etc/motd"), "hi\n").unwrap();
    // In a directory of its own: a fixed path in /tmp would be shared with other runs.
    let out = tempfile::tempdir().unwrap();
    let tarball = out.path().join("rootfs.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(tree.path())
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    project
        .kiln(fresh.path())
        .args(["import"])
        .args([&tarball])
        .run()
        .failure()
        .stderr_contains("--tag");
    project
        .kiln(fresh.path())
        .args(["import", "--tag", "mybase"])
        .args([&tarball])
        .run()
        .success()
        .stdout_contains("mybase  sha256:");
}

#[test]
fn hostile_archives_are_refused_and_write_nothing_outside() {
    // No project is read: import and images work on the state root alone.
    let project = Project::new("");
    let root = Root::new();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "dotdot",
            "i = tarfile.TarInfo('../escaped'); d = b'x'; i.size = 1; t.addfile(i, io.BytesIO(d))",
            "escaped",
        ),
        (
            "symlink",
            "i = tarfile.TarInfo('link'); i.type = tarfile.SYMTYPE; i.linkname = '../..'; t.addfile(i)\n\
             j = tarfile.TarInfo('link/escaped2'); j.size = 1; t.addfile(j, io.BytesIO(b'x'))",
            "escaped2",
        ),
        (
            "device",
            "i = tarfile.TarInfo('dev/sda'); i.type = tarfile.BLKTYPE; i.devmajor = 8; t.addfile(i)",
            "sda",
        ),
    ];
    for (name, script, marker) in cases {
        let tar = dir.path().join(format!("{name}.tar"));
        hostile_tar(&tar, script);
        project
            .kiln(root.path())
            .args(["import", "--tag", name])
            .args([&tar])
            .run()
            .failure()
            .stderr_contains("refusing");
        let leaked = walk_names(std::env::temp_dir().as_path(), 2)
            .into_iter()
            .chain(walk_names(dir.path(), 3))
            .any(|n| n == marker);
        assert!(
            !leaked,
            "{name}: `{marker}` was written outside the extraction root"
        );
    }
    let images = project
        .kiln(root.path())
        .args(["images", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(images, serde_json::json!([]));
}

fn walk_names(dir: &Path, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            out.push(entry.file_name().to_string_lossy().into_owned());
            if depth > 0 && entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walk_names(&entry.path(), depth - 1));
            }
        }
    }
    out
}
