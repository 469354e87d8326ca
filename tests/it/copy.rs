//! `copy` and `workdir` with Docker's meaning (BuildKit's where Docker's documentation is
//! vague): destinations that already exist in the image, links of the image followed inside
//! it, hard links kept, directories created as the image's user; and the same build made by
//! `buildah bud` compared file by file.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::harness::tools::{run, umoci_unpack};
use crate::harness::tree::{differences, layer_members, listing, rootfs};
use crate::harness::{Lab, Project, Root, host, is_root, which};

/// The steps of the side-by-side image, as kiln.kdl and as a Containerfile line.
const STEPS: &[(&str, &str)] = &[
    // A file onto an existing directory goes inside it; a directory merges into it.
    (
        r#"copy "site/index.html" "/srv/www""#,
        "COPY site/index.html /srv/www",
    ),
    (r#"copy "site" "/srv/www""#, "COPY site /srv/www"),
    (r#"copy "d/" "/dir/""#, "COPY d/ /dir/"),
    (r#"copy "f" "/dir""#, "COPY f /dir"),
    (r#"copy "f" "/newfile""#, "COPY f /newfile"),
    (r#"copy "d" "/newdir""#, "COPY d /newdir"),
    (r#"copy "f" "/a/b/c/""#, "COPY f /a/b/c/"),
    // Hard links: kept within one source, not across sources.
    (r#"copy "hl1" "hl2" "/hl/""#, "COPY hl1 hl2 /hl/"),
    (r#"copy "hld/" "/hld/""#, "COPY hld/ /hld/"),
    (r#"copy "hld" "hl1" "/hld2/""#, "COPY hld hl1 /hld2/"),
    // A linked source is followed.
    (r#"copy "link" "/lnk""#, "COPY link /lnk"),
    (r#"copy "link" "/dir/""#, "COPY link /dir/"),
    // Links of the image, followed inside the image.
    (r#"copy "f" "/bin/""#, "COPY f /bin/"),
    (r#"copy "g" "/bin/g2""#, "COPY g /bin/g2"),
    (r#"copy "f" "/evil/e""#, "COPY f /evil/e"),
    // workdir creates its directory, owned by the user.
    (r#"workdir "/work/deep""#, "WORKDIR /work/deep"),
    (r#"user "1000:1000""#, "USER 1000:1000"),
    (r#"workdir "/w2""#, "WORKDIR /w2"),
    (r#"user "bob""#, "USER bob"),
    (r#"workdir "w3""#, "WORKDIR w3"),
    (r#"user "1001""#, "USER 1001"),
    (r#"workdir "/w4""#, "WORKDIR /w4"),
    (r#"user "root""#, "USER root"),
    (r#"workdir "/srv""#, "WORKDIR /srv"),
    // Relative destinations are taken from the working directory.
    (r#"copy "f" "rel""#, "COPY f rel"),
    (r#"copy "g" "./""#, "COPY g ./"),
    (r#"copy "f" "g" "/multi/""#, "COPY f g /multi/"),
    (r#"copy "d" "/dir""#, "COPY d /dir"),
    (r#"copy "site" "/fresh""#, "COPY site /fresh"),
];

/// A host path no step may ever create: the image's `/evil` links to it.
fn evil_target() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("kiln-evil-{}-{nanos}", std::process::id()))
}

/// A root-filesystem tarball for the base image: /etc/passwd and /etc/group (user bob,
/// 1001:60), /srv/www (0750) holding old.html, merged /usr (`/bin -> usr/bin`), and
/// `/evil -> EVIL`, an absolute link to a host path.
fn base_rootfs(path: &Path, evil: &Path) {
    let mut tar = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: &str| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        if !link.is_empty() {
            header.set_link_name(link).unwrap();
        }
        tar.append_data(&mut header, name, data).unwrap();
    };
    use tar::EntryType::{Directory, Regular, Symlink};
    add("etc/", Directory, 0o755, b"", "");
    add(
        "etc/passwd",
        Regular,
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nbob:x:1001:60::/home/bob:/bin/sh\n",
        "",
    );
    add("etc/group", Regular, 0o644, b"root:x:0:\nstaff:x:60:\n", "");
    add("srv/", Directory, 0o755, b"", "");
    add("srv/www/", Directory, 0o750, b"", "");
    add("srv/www/old.html", Regular, 0o644, b"old\n", "");
    add("usr/", Directory, 0o755, b"", "");
    add("usr/bin/", Directory, 0o755, b"", "");
    add("bin", Symlink, 0o777, b"", "usr/bin");
    add("evil", Symlink, 0o777, b"", &evil.display().to_string());
    tar.finish().unwrap();
}

/// The side-by-side project: the context, `base.tar` (an OCI archive of [`base_rootfs`],
/// gzip layers for Debian's umoci and buildah) and kiln.kdl with [`STEPS`]; also the
/// Containerfile of the same build, `FROM` the same archive.
fn semantics_project(evil: &Path) -> (Project, String) {
    let mut kdl = String::from("image \"same\" {\n    from \"oci-archive:base.tar\"\n");
    for (step, _) in STEPS {
        kdl.push_str(&format!("    {step}\n"));
    }
    kdl.push_str("}\n");
    let project = Project::new(&kdl)
        .file("f", "F\n")
        .file("g", "G\n")
        .file("d/x", "X\n")
        .file("d/sub/y", "Y\n")
        .file("hl1", "H\n")
        .file("hld/a", "HD\n")
        .file("site/index.html", "<h1>\n")
        .file("site/css/main.css", "b{}\n");
    let at = |rel: &str| project.path().join(rel);
    let chmod = |rel: &str, mode: u32| {
        std::fs::set_permissions(at(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    chmod("f", 0o640);
    chmod("d", 0o700);
    chmod("d/sub", 0o750);
    chmod("site", 0o700);
    std::fs::hard_link(at("hl1"), at("hl2")).unwrap();
    std::fs::hard_link(at("hld/a"), at("hld/b")).unwrap();
    std::fs::hard_link(at("hld/a"), at("hld/c")).unwrap();
    symlink("f", at("link")).unwrap();

    let work = Root::new();
    let rootfs_tar = work.path().join("rootfs.tar");
    base_rootfs(&rootfs_tar, evil);
    project
        .kiln(work.path())
        .args([
            "import".as_ref(),
            rootfs_tar.as_os_str(),
            "--tag".as_ref(),
            "base".as_ref(),
        ])
        .run()
        .success();
    project
        .kiln(work.path())
        .args(["export", "base", "--compression", "gzip", "-o"])
        .args([at("base.tar")])
        .run()
        .success();

    let mut containerfile = format!("FROM oci-archive:{}\n", at("base.tar").display());
    for (_, instruction) in STEPS {
        containerfile.push_str(instruction);
        containerfile.push('\n');
    }
    (project, containerfile)
}

fn line<'a>(tree: &'a std::collections::BTreeMap<String, String>, path: &str) -> &'a str {
    tree.get(path)
        .unwrap_or_else(|| panic!("/{path} is missing: {tree:#?}"))
}

#[test]
fn copy_and_workdir_follow_dockers_rules_against_the_image_below() {
    if !is_root() {
        return;
    }
    let evil = evil_target();
    let (project, _) = semantics_project(&evil);
    let root = Root::new();
    project.kiln(root.path()).args(["build"]).run().success();
    let fs = rootfs(&project, root.path(), "same");
    let tree = listing(fs.path());

    // The existing /srv/www keeps its mode and content; the file and the tree go inside.
    assert_eq!(line(&tree, "srv/www"), "d 0750 0:0");
    assert!(line(&tree, "srv/www/old.html").starts_with("f 0644 0:0"));
    assert!(line(&tree, "srv/www/index.html").starts_with("f 0644 0:0"));
    assert!(line(&tree, "srv/www/css/main.css").starts_with("f 0644 0:0"));
    assert!(line(&tree, "dir/f").starts_with("f 0640 0:0"));
    // A directory copied to a new place is made 0755 root, whatever the source's mode.
    assert_eq!(line(&tree, "fresh"), "d 0755 0:0");
    assert_eq!(line(&tree, "newdir"), "d 0755 0:0");
    assert_eq!(line(&tree, "newdir/sub"), "d 0750 0:0");
    assert_eq!(line(&tree, "a/b"), "d 0755 0:0");
    // Through /bin -> usr/bin, and /evil resolved inside the image, never on the host.
    assert_eq!(line(&tree, "bin"), "l -> usr/bin");
    assert!(line(&tree, "usr/bin/f").starts_with("f 0640"));
    assert!(line(&tree, "usr/bin/g2").starts_with("f 0644"));
    let inside = evil.strip_prefix("/").unwrap().display().to_string();
    assert!(line(&tree, &format!("{inside}/e")).starts_with("f 0640"));
    assert!(!evil.exists(), "{} was created on the host", evil.display());
    // Relative destinations from the working directory.
    assert!(line(&tree, "srv/rel").starts_with("f 0640"));
    assert!(line(&tree, "srv/g").starts_with("f 0644"));
    // Hard links within one source, separate files across sources.
    assert!(
        line(&tree, "hld/c").ends_with("linked to hld/a"),
        "{tree:#?}"
    );
    assert!(line(&tree, "hld2/b").ends_with("linked to hld2/a"));
    assert!(!line(&tree, "hl/hl2").contains("linked"));
    assert!(!line(&tree, "hld2/hl1").contains("linked"));
    // workdir: created with its parents, owned by the user (a number: that group too).
    assert_eq!(line(&tree, "work/deep"), "d 0755 0:0");
    assert_eq!(line(&tree, "w2"), "d 0755 1000:1000");
    assert_eq!(line(&tree, "w2/w3"), "d 0755 1001:60");
    assert_eq!(line(&tree, "w4"), "d 0755 1001:1001");

    let layers = layer_members(&project, root.path(), "same");
    // The layer of `copy "hld/" "/hld/"` holds one file and two tar hard links.
    assert!(
        layers.iter().any(|members| {
            members.contains(&"hld/b => hld/a".to_string())
                && members.contains(&"hld/c => hld/a".to_string())
        }),
        "{layers:#?}"
    );
    // `workdir "/srv"` had nothing to create: no layer for it (one for the base, one for
    // each copy, one for each other workdir).
    let count = |keyword: &str| STEPS.iter().filter(|(s, _)| s.starts_with(keyword)).count();
    assert_eq!(
        layers.len(),
        1 + count("copy") + count("workdir") - 1,
        "{layers:#?}"
    );
}

#[test]
fn same_file_tree_as_buildah_for_the_same_context() {
    if !is_root() {
        return;
    }
    if !which("buildah") || !which("umoci") || !which("unshare") {
        return;
    }
    let evil = evil_target();
    let (project, containerfile) = semantics_project(&evil);
    std::fs::write(project.path().join("Containerfile"), &containerfile).unwrap();
    let root = Root::new();
    project
        .kiln(root.path())
        .args(["build", "--compression", "gzip"])
        .run()
        .success();

    // kiln's image, unpacked by umoci.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    project
        .kiln(root.path())
        .args(["export", "same", "--format", "oci-dir", "-o"])
        .args([&layout])
        .run()
        .success();
    let unpacked = work.path().join("kiln-rootfs");
    umoci_unpack(&layout, "same", &unpacked);

    // buildah's, written out as a directory. Its storage, temporary files and blob-info
    // cache (which has no flag: under /var/lib/containers) stay in `work`: buildah runs in
    // a private mount namespace where /var/lib is a directory of ours.
    let store = work.path().join("buildah");
    let var_lib = work.path().join("var-lib");
    std::fs::create_dir_all(store.join("tmp")).unwrap();
    std::fs::create_dir_all(&var_lib).unwrap();
    let built = work.path().join("buildah-rootfs");
    run(std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount --bind "$1" /var/lib && shift && exec "$@""#)
        .arg("sh")
        .arg(&var_lib)
        .arg("buildah")
        .arg("--root")
        .arg(store.join("root"))
        .arg("--runroot")
        .arg(store.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "bud",
            "--layers=false",
            "--pull=never",
        ])
        .arg("-o")
        .arg(format!("type=local,dest={}", built.display()))
        .arg("-f")
        .arg(project.path().join("Containerfile"))
        .arg(project.path())
        .env("TMPDIR", store.join("tmp")));
    // With vfs, buildah's storage is plain directories: they go with `work`.
    let ours = listing(&unpacked);
    let theirs = listing(&built);
    let diff = differences("kiln", &ours, "buildah", &theirs);
    assert!(diff.is_empty(), "the file trees differ:\n{diff}");
    assert!(ours.len() > 40, "{ours:#?}");
    assert!(!evil.exists(), "{} was created on the host", evil.display());
}

#[test]
fn copy_mistakes_name_the_step_and_the_fix() {
    let project = Project::new(
        r#"
image "base" {
    from "scratch"
    copy "a.txt" "/srv/www/"
}
image "two" {
    from "base"
    copy "a.txt" "b.txt" "/notadir"
}
image "over" {
    from "base"
    copy "a.txt" "/srv/www/a.txt/"
}
"#,
    )
    .file("a.txt", "a\n")
    .file("b.txt", "b\n");
    let root = Root::new();
    project
        .kiln(root.path())
        .args(["build", "two"])
        .run()
        .failure()
        .stderr_contains("copy of 2 sources into `/notadir`, which is not a directory")
        .stderr_contains("\"/notadir/\"")
        .stderr_contains("kiln.kdl:8");
    project
        .kiln(root.path())
        .args(["build", "over"])
        .run()
        .failure()
        .stderr_contains("`/srv/www/a.txt` is not a directory in the image");
}

#[test]
fn workdir_of_a_missing_directory_creates_it_and_run_steps_start_there() {
    let Some(lab) = Lab::unbuilt(Project::new(
        r#"
image "wd" {
    from "scratch"
    host-binary "/bin/sh" "/bin/pwd" "/bin/ls"
    workdir "/opt/app"
    run "sh" "-c" "pwd > here && ls -ld /opt/app > /listed"
    workdir "/opt"
}
"#,
    )) else {
        return;
    };
    lab.kiln().args(["build"]).run().success();
    let fs = rootfs(&lab.project, lab.path(), "wd");
    assert_eq!(
        std::fs::read_to_string(fs.path().join("opt/app/here")).unwrap(),
        "/opt/app\n"
    );
    let tree = listing(fs.path());
    assert_eq!(line(&tree, "opt/app"), "d 0755 0:0");
    // `workdir "/opt"` found /opt there: the image has no layer for it.
    let history = lab
        .kiln()
        .args(["inspect", "wd", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(
        history["manifest"]["layers"].as_array().unwrap().len(),
        3,
        "{history:#}"
    );
    assert_eq!(history["config"]["config"]["WorkingDir"], "/opt");
}

#[test]
fn copy_from_sees_the_source_image_as_its_containers_do() {
    // Later layers of the source remove files, replace a directory with a file, and empty
    // a directory and make it again (an opaque directory): `copy from=` reads the layers
    // merged, whiteouts and opaque directories honoured, as a container of the image sees
    // them.
    let project = Project::new(
        r#"
image "source" {
    from "scratch"
    host-binary "/bin/sh" "/bin/mkdir" "/bin/rm"
    run "sh" "-c" "mkdir -p /d/sub /d/gone /e && echo old > /d/old && echo keep > /d/keep && echo s > /d/sub/s && echo g > /d/gone/g && echo e > /e/e"
    run "sh" "-c" "rm /d/old && rm -r /d/gone /d/sub /e && mkdir /d/sub && echo new > /d/sub/new && echo file > /e"
}
image "picked" {
    from "scratch"
    copy "/d" "/d" from="source"
    copy "/e" "/e" from="source"
}
"#,
    );
    let Some(lab) = Lab::unbuilt(project) else {
        return;
    };
    lab.kiln().args(["build"]).run().success();
    let fs = rootfs(&lab.project, lab.path(), "picked");
    let tree = listing(fs.path());
    let paths: Vec<&str> = tree.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        ["d", "d/keep", "d/sub", "d/sub/new", "e"],
        "{tree:#?}"
    );
    let read = |path: &str| std::fs::read_to_string(fs.path().join(path)).unwrap();
    assert_eq!(read("d/keep"), "keep\n");
    assert_eq!(read("d/sub/new"), "new\n");
    assert_eq!(read("e"), "file\n");
    // The copy leaves nothing mounted and no scratch directory behind.
    assert!(host::mounts_under(lab.path()).is_empty());
    let tmp = lab.path().join("tmp");
    let scratch: Vec<_> = std::fs::read_dir(&tmp).into_iter().flatten().collect();
    assert!(scratch.is_empty(), "{scratch:?}");
}
