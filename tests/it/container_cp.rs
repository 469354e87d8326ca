//! `kiln cp` with Docker's meanings for each form of SRC and DEST, into and out of
//! running, stopped and created containers, tar streams both ways; and hostile symbolic
//! links in a container, which never make kiln read or write a host path.

use std::path::Path;

use crate::harness::{Lab, Project, images};

fn lab() -> Option<Lab> {
    Lab::build(Project::new(&images::tools("tools", "")))
}

/// A tar archive of `(path, contents or link target, is a link)` entries, in order.
fn tar_of(entries: &[(&str, &str, bool)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, link) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        if *link {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, data).unwrap();
        } else if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, path, std::io::empty())
                .unwrap();
        } else {
            header.set_size(data.len() as u64);
            // Set by hand: the tar crate itself refuses to write a hostile name.
            header.as_mut_bytes()[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, data.as_bytes()).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

/// The names in a tar archive, in order.
fn names_in(archive: &[u8]) -> Vec<String> {
    tar::Archive::new(archive)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn cp_copies_in_and_out_as_docker_does_running_stopped_and_created() {
    let Some(lab) = lab() else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    std::fs::create_dir_all(h.join("site/sub")).unwrap();
    std::fs::write(h.join("site/index.html"), "<h1>hi</h1>\n").unwrap();
    std::fs::write(h.join("site/sub/a.txt"), "a\n").unwrap();
    std::fs::write(h.join("file.txt"), "file\n").unwrap();
    let at = |p: &str| h.join(p).display().to_string();
    lab.kiln()
        .args(["run", "-d", "--name", "web", "tools", "sleep", "1000"])
        .run()
        .success();
    lab.kiln()
        .args(["exec", "web", "mkdir", "/tmp"])
        .run()
        .success();
    let cat = |path: &str, expected: &str| {
        lab.kiln()
            .args(["exec", "web", "cat", path])
            .run()
            .success()
            .stdout_is(expected);
    };
    // A file into a directory keeps its name; to a new name, it takes that name.
    lab.kiln()
        .args(["cp", &at("file.txt"), "web:/tmp/"])
        .run()
        .success();
    cat("/tmp/file.txt", "file\n");
    lab.kiln()
        .args(["cp", &at("file.txt"), "web:tmp/renamed"])
        .run()
        .success();
    cat("/tmp/renamed", "file\n");
    // A directory to a new path is made there; into an existing one, it goes inside.
    lab.kiln()
        .args(["cp", &at("site"), "web:/srv"])
        .run()
        .success();
    cat("/srv/index.html", "<h1>hi</h1>\n");
    lab.kiln()
        .args(["cp", &at("site"), "web:/srv"])
        .run()
        .success();
    cat("/srv/site/sub/a.txt", "a\n");
    // `/.`: only the contents.
    lab.kiln()
        .args(["exec", "web", "mkdir", "/dst"])
        .run()
        .success();
    lab.kiln()
        .args(["cp", &format!("{}/.", at("site")), "web:/dst"])
        .run()
        .success();
    cat("/dst/sub/a.txt", "a\n");
    // Docker's refusals.
    lab.kiln()
        .args(["cp", &at("site"), "web:/tmp/file.txt"])
        .run()
        .code(1)
        .says("cannot copy a directory to a file");
    lab.kiln()
        .args(["cp", &at("file.txt"), "web:/nowhere/"])
        .run()
        .code(1)
        .says("must exist");
    lab.kiln()
        .args(["cp", "web:/nothing", &at("x")])
        .run()
        .code(1)
        .says("no such file or directory");
    lab.kiln()
        .args(["cp", &at("file.txt"), &at("y")])
        .run()
        .code(1)
        .says("needs a container");

    // Out of the container.
    lab.kiln()
        .args(["cp", "web:/srv", &at("out")])
        .run()
        .success();
    assert_eq!(read(&h.join("out/site/sub/a.txt")), "a\n");
    assert_eq!(read(&h.join("out/index.html")), "<h1>hi</h1>\n");
    lab.kiln()
        .args(["cp", "web:/tmp/renamed", &at("site")])
        .run()
        .success();
    assert_eq!(read(&h.join("site/renamed")), "file\n");

    // Tar streams: out on stdout, in from stdin (extracted into a directory).
    let out = lab.kiln().args(["cp", "web:/dst", "-"]).run().success();
    let names = names_in(&out.output.stdout);
    assert!(names.contains(&"dst/sub/a.txt".to_string()), "{names:?}");
    assert_eq!(names[0], "dst", "the directory first: {names:?}");
    lab.kiln()
        .args(["cp", "-", "web:/tmp"])
        .stdin(tar_of(&[
            ("conf/", "", false),
            ("conf/x.conf", "x=1\n", false),
        ]))
        .run()
        .success();
    cat("/tmp/conf/x.conf", "x=1\n");
    lab.kiln()
        .args(["cp", "-", "web:/tmp/file.txt"])
        .stdin(tar_of(&[("a", "a", false)]))
        .run()
        .code(1)
        .says("must be a directory");

    // Stopped: its files, as it left them; a copy in is there at the next start.
    lab.kiln().args(["stop", "-t", "1", "web"]).run().success();
    lab.kiln()
        .args(["cp", "web:/srv/index.html", &at("stopped.html")])
        .run()
        .success();
    assert_eq!(read(&h.join("stopped.html")), "<h1>hi</h1>\n");
    lab.kiln()
        .args(["cp", &at("file.txt"), "web:/while-stopped"])
        .run()
        .success();
    lab.kiln().args(["start", "web"]).run().success();
    cat("/while-stopped", "file\n");

    // Created and never started.
    lab.kiln()
        .args(["create", "--name", "job", "tools", "cat", "/in.txt"])
        .run()
        .success();
    lab.kiln()
        .args(["cp", &at("file.txt"), "job:/in.txt"])
        .run()
        .success();
    lab.kiln()
        .args(["start", "-a", "job"])
        .run()
        .success()
        .stdout_is("file\n");
    lab.kiln().args(["rm", "-f", "web", "job"]).run().success();
}

#[test]
fn cp_never_follows_a_container_symlink_to_the_host() {
    let Some(lab) = lab() else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    let victim = h.join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("secret.txt"), "host secret\n").unwrap();
    std::fs::write(h.join("file.txt"), "file\n").unwrap();
    let at = |p: &str| h.join(p).display().to_string();
    let victim_abs = victim.display().to_string();
    let climb = format!("../../../../../../../..{victim_abs}");
    let untouched = || {
        let names: Vec<String> = std::fs::read_dir(&victim)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["secret.txt"],
            "nothing written in the host's directory"
        );
        assert_eq!(read(&victim.join("secret.txt")), "host secret\n");
    };
    lab.kiln()
        .args(["run", "-d", "--name", "evil", "tools", "sleep", "1000"])
        .run()
        .success();
    // The container's links to the host's directory, absolute and climbing.
    lab.kiln()
        .args(["cp", "-", "evil:/"])
        .stdin(tar_of(&[
            ("abs", &victim_abs, true),
            ("rel", &climb, true),
            ("secret", &format!("{victim_abs}/secret.txt"), true),
            ("d/", "", false),
            ("d/link", &victim_abs, true),
        ]))
        .run()
        .success();
    for running in [true, false] {
        if !running {
            lab.kiln().args(["stop", "-t", "1", "evil"]).run().success();
        }
        // Reading through them: inside the container's root there is no such file.
        for src in ["evil:/abs/secret.txt", "evil:/rel/secret.txt"] {
            lab.kiln()
                .args(["cp", src, &at("stolen")])
                .run()
                .code(1)
                .says("no such file or directory");
            assert!(!h.join("stolen").exists(), "{src}");
        }
        lab.kiln()
            .args(["cp", "-L", "evil:/secret", &at("stolen")])
            .run()
            .code(1)
            .says("no such file or directory");
        assert!(!h.join("stolen").exists());
        // A link is copied out as a link: data, not the host file it names.
        lab.kiln()
            .args(["cp", "evil:/secret", &at("link-out")])
            .run()
            .success();
        let copied = h.join("link-out");
        assert!(copied.is_symlink());
        std::fs::remove_file(&copied).unwrap();
        lab.kiln()
            .args(["cp", "evil:/d", &at("d-out")])
            .run()
            .success();
        assert!(h.join("d-out/link").is_symlink());
        std::fs::remove_dir_all(h.join("d-out")).unwrap();
        // Writing through them: refused while the directory they name is not in the
        // container (the first round), written inside the container once it is.
        for dest in ["evil:/abs/", "evil:/abs/new.txt", "evil:/rel/new.txt"] {
            let ran = lab.kiln().args(["cp", &at("file.txt"), dest]).run();
            if running {
                ran.code(1);
            }
            untouched();
        }
        // A tar stream whose entries climb or go through the links.
        lab.kiln()
            .args(["cp", "-", "evil:/"])
            .stdin(tar_of(&[("../../escape.txt", "x", false)]))
            .run()
            .code(1)
            .says("`..`");
        lab.kiln()
            .args(["cp", "-", "evil:/"])
            .stdin(tar_of(&[("abs/pwned.txt", "x", false)]))
            .run()
            .success();
        untouched();
    }
    // What went through `abs` is inside the container, where its link points there.
    lab.kiln().args(["start", "evil"]).run().success();
    lab.kiln()
        .args(["exec", "evil", "cat", &format!("{victim_abs}/pwned.txt")])
        .run()
        .success()
        .stdout_is("x");
    untouched();
    lab.kiln().args(["rm", "-f", "evil"]).run().success();
}
