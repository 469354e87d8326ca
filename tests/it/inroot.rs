//! Hostile images against kiln's paths (issue 10, finding 1): an image's symbolic links,
//! `..` and /proc's magic links never make kiln create, mount or read anything outside the
//! container's root. Each test makes the attack, then checks the host (nothing created,
//! nothing read) and that kiln did the Docker-correct thing inside the root or said clearly
//! why it would not.

use std::path::Path;

use crate::harness::tools::hostile_tar;
use crate::harness::{Lab, Project, images, wait_for};
use crate::tarball::{self, Kind, Member};

/// The names of the entries of a host directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Image `evil`: the tools and `/evil -> HOST` (an absolute link to a directory of the host,
/// made by a `run` step); `wd`: on it, a configured working directory below the link that the
/// image itself no longer has, so `kiln run` must create it.
fn evil_lab(host: &Path) -> Option<Lab> {
    let host = host.display();
    let extra = format!(
        r#"host-binary "/bin/ln" "/bin/pwd"
    run "ln" "-s" "{host}" "/evil"
}}
image "wd" {{
    from "evil"
    workdir "/evil/cfg"
    run "rm" "-r" "/evil/cfg"
"#
    );
    Lab::build(Project::new(&images::tools("evil", &extra)))
}

#[test]
fn an_images_links_never_lead_run_out_of_its_root() {
    let host = tempfile::tempdir().unwrap();
    let Some(lab) = evil_lab(host.path()) else {
        return;
    };
    let inside = format!("{}", host.path().display());
    // -w below the link: created inside the root, where the link points as the container
    // sees it (Docker's WORKDIR creates a missing directory too).
    lab.kiln()
        .args(["run", "--rm", "-w", "/evil/new", "evil", "pwd"])
        .run()
        .success()
        .stdout_is(&format!("{inside}/new\n"));
    assert!(
        listing(host.path()).is_empty(),
        "nothing created on the host"
    );

    // The image's own working directory, missing: the same, with no flag at all.
    lab.kiln()
        .args(["run", "--rm", "wd", "pwd"])
        .run()
        .success()
        .stdout_is(&format!("{inside}/cfg\n"));
    assert!(
        listing(host.path()).is_empty(),
        "nothing created on the host"
    );

    // A volume below the link, and a volume onto the link itself: both land inside the root
    // (through the link, as runc resolves it), neither on the host nor lost.
    let volume = tempfile::tempdir().unwrap();
    std::fs::write(volume.path().join("data.txt"), "from the volume\n").unwrap();
    let below = format!("{}:/evil/x:ro", volume.path().display());
    lab.kiln()
        .args([
            "run",
            "--rm",
            "-v",
            &below,
            "evil",
            "cat",
            "/evil/x/data.txt",
        ])
        .run()
        .success()
        .stdout_is("from the volume\n");
    let onto = format!("{}:/evil", volume.path().display());
    lab.kiln()
        .args(["run", "--rm", "-v", &onto, "evil", "sh", "-c"])
        .args(["cat /evil/data.txt && echo written > /evil/back.txt"])
        .run()
        .success()
        .stdout_is("from the volume\n");
    assert_eq!(
        std::fs::read_to_string(volume.path().join("back.txt")).unwrap(),
        "written\n",
        "the volume is mounted, not lost"
    );
    assert!(
        listing(host.path()).is_empty(),
        "nothing created on the host"
    );
}

#[test]
fn mountpoints_the_image_replaced_with_links() {
    // A layer whose /proc and /dev are absolute links to directories of the host (kiln's
    // own build steps cannot make them: those are mountpoints there).
    let host = tempfile::tempdir().unwrap();
    let devices = tempfile::tempdir().unwrap();
    let project = Project::new(
        r#"
image "proc-link" {
    from "links"
    host-binary "/bin/sh" "/bin/ls" "/bin/echo"
}
image "dev-link" {
    from "links"
    host-binary "/bin/sh" "/bin/ls" "/bin/echo"
}
"#,
    );
    let Some(lab) = Lab::unbuilt(project) else {
        return;
    };
    let link = |name: &str, target: &Path| {
        format!(
            "i = tarfile.TarInfo('{name}'); i.type = tarfile.SYMTYPE; i.linkname = '{}'; t.addfile(i)\n",
            target.display()
        )
    };
    let tarball = lab.project.path().join("links.tar");
    hostile_tar(&tarball, &link("proc", host.path()));
    lab.kiln()
        .args(["import", "--tag", "links"])
        .args([&tarball])
        .run()
        .success();
    lab.kiln().args(["build", "proc-link"]).run().success();
    // /proc (and /sys) only ever on a real directory, as runc insists (CVE-2019-19921).
    lab.kiln()
        .args(["run", "--rm", "proc-link", "echo", "started"])
        .run()
        .code(125)
        .says("cannot mount proc on `/proc` in the container: it is a symbolic link in the image");
    // /dev through a link: mounted where the link points inside the root, devices there.
    hostile_tar(&tarball, &link("dev", devices.path()));
    lab.kiln()
        .args(["import", "--tag", "links"])
        .args([&tarball])
        .run()
        .success();
    lab.kiln().args(["build", "dev-link"]).run().success();
    lab.kiln()
        .args([
            "run",
            "--rm",
            "dev-link",
            "sh",
            "-c",
            "echo ok > /dev/null && ls /dev/",
        ])
        .run()
        .success()
        .stdout_contains("null\n");
    assert!(listing(host.path()).is_empty());
    assert!(listing(devices.path()).is_empty());
}

#[test]
fn binds_that_do_not_fit_the_image_are_clear_errors() {
    let Some(lab) = Lab::build(Project::new(&images::tools("tools", ""))) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "a file\n").unwrap();
    lab.kiln()
        .args(["run", "--rm", "-v", &format!("{}:/bin", file.display())])
        .args(["tools", "true"])
        .run()
        .code(125)
        .says(&format!(
            "cannot bind the file `{}` onto `/bin` in the container: it is a directory in the image",
            file.display()
        ));
    lab.kiln()
        .args(["run", "--rm", "-v", &format!("{}:/bin/sh/x", dir.path().display())])
        .args(["tools", "true"])
        .run()
        .code(125)
        .says("onto `/bin/sh/x` in the container: it, or a directory on its way, is not a directory in the image");
    // A file onto a file of the image: fine, as in Docker.
    lab.kiln()
        .args([
            "run",
            "--rm",
            "-v",
            &format!("{}:/bin/echo", file.display()),
        ])
        .args(["tools", "cat", "/bin/echo"])
        .run()
        .success()
        .stdout_is("a file\n");
}

#[test]
fn working_directories_through_proc_magic_links_are_refused() {
    let Some(lab) = Lab::build(Project::new(&images::tools("tools", ""))) else {
        return;
    };
    // runc's CVE-2024-21626: `-w /proc/self/fd/N` of a descriptor the runtime still holds
    // would start the process in a host directory. Whatever N is, never.
    for n in 3..8 {
        let dir = format!("/proc/self/fd/{n}");
        lab.kiln()
            .args(["run", "--rm", "-w", &dir, "tools", "sh", "-c", "pwd; ls"])
            .run()
            .code(125)
            .says(&format!(
                "the working directory `{dir}` in the container: too many symbolic links on the way, or a /proc magic link"
            ))
            .stdout_is("");
    }
    lab.kiln()
        .args(["run", "-d", "--name", "c", "tools", "sleep", "1000"])
        .run()
        .success();
    wait_for("the container", || {
        lab.kiln().args(["exec", "c", "echo"]).run().ok()
    });
    for n in 3..8 {
        let dir = format!("/proc/self/fd/{n}");
        lab.kiln()
            .args(["exec", "-w", &dir, "c", "sh", "-c", "pwd; ls"])
            .run()
            .code(125)
            .says("a /proc magic link")
            .stdout_is("");
    }
    lab.kiln().args(["rm", "-f", "c"]).run().success();
}

#[test]
fn user_names_are_looked_up_inside_the_image() {
    // A host file the image's /etc/passwd links to: kiln must never read it.
    let host = tempfile::tempdir().unwrap();
    let passwd = host.path().join("passwd");
    std::fs::write(&passwd, "intruder:x:4242:4242::/:/bin/sh\n").unwrap();
    let extra = format!(
        r#"host-binary "/bin/ln"
    run "mkdir" "/etc"
    run "ln" "-s" "{}" "/etc/passwd"
"#,
        passwd.display()
    );
    let project = Project::new(&images::tools("linked", &extra));
    let Some(lab) = Lab::build(project) else {
        return;
    };
    lab.kiln()
        .args(["run", "--rm", "-u", "intruder", "linked", "id", "-u"])
        .run()
        .code(125)
        .says("user `intruder` is not in the container's /etc/passwd")
        .stdout_is("");
    // A build step as that user: the same lookup.
    lab.project.write(
        "kiln.kdl",
        &format!(
            "{}\nimage \"as-intruder\" {{\n    from \"linked\"\n    user \"intruder\"\n    run \"id\" \"-u\"\n}}\n",
            images::tools("linked", &extra)
        ),
    );
    lab.kiln()
        .args(["build", "as-intruder"])
        .run()
        .failure()
        .stderr_contains("intruder");
    // A running container that links its /etc/passwd to the host's file: `exec -u` reads
    // the container's own, inside its root.
    lab.kiln()
        .args(["run", "-d", "--name", "c", "linked", "sleep", "1000"])
        .run()
        .success();
    wait_for("the container", || {
        lab.kiln().args(["exec", "c", "echo"]).run().ok()
    });
    lab.kiln()
        .args(["exec", "-u", "intruder", "c", "id", "-u"])
        .run()
        .code(125)
        .says("user `intruder` is not in the container's /etc/passwd")
        .stdout_is("");
    lab.kiln().args(["rm", "-f", "c"]).run().success();
}

#[test]
fn host_steps_follow_the_images_links_inside_the_image() {
    // An image whose `/tmp` is a link to `/srv` (as `/bin -> usr/bin` is on merged-/usr
    // systems): a later `host-path` of a file below the host's /tmp goes through the link,
    // inside the image, as `copy` does, and leaves the link in place (before, its layer put
    // a directory `/tmp` over the link).
    let host = tempfile::Builder::new()
        .prefix("kiln-inroot-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::write(host.path().join("data.txt"), "from the host\n").unwrap();
    let name = host.path().file_name().unwrap().to_string_lossy();
    let extra = format!(
        r#"host-binary "/bin/ln" "/bin/readlink"
    run "mkdir" "/srv"
    run "ln" "-s" "/srv" "/tmp"
    host-path "{}/data.txt"
"#,
        host.path().display()
    );
    let Some(lab) = Lab::build(Project::new(&images::tools("linked", &extra))) else {
        return;
    };
    lab.kiln()
        .args(["run", "--rm", "linked", "sh", "-c"])
        .args([format!("readlink /tmp && cat /srv/{name}/data.txt")])
        .run()
        .success()
        .stdout_is("/srv\nfrom the host\n");
}

#[test]
fn copy_from_an_image_carries_its_devices_and_fifos() {
    // An image with a FIFO and a character device (1,5: a twin of /dev/zero), in a
    // directory and at the top: `copy from=` carries them as nodes, as BuildKit does; it
    // never skips them silently and never opens them (a FIFO would block the build, a
    // device would read the machine's).
    let project = Project::new(&images::tools(
        "carried",
        r#"copy "/dir" "/carried" from="special:1"
    copy "/zero" "/top-zero" from="special:1"
"#,
    ));
    let Some(lab) = Lab::unbuilt(project) else {
        return;
    };
    let layer = tarball::tar(&[
        tarball::dir("dir"),
        Member {
            name: "dir/pipe".into(),
            kind: Kind::Fifo,
            mode: 0o644,
        },
        tarball::device("dir/zero", 1, 5),
        tarball::device("zero", 1, 5),
    ]);
    let archive = lab.project.path().join("special.tar");
    std::fs::write(
        &archive,
        tarball::tar(&tarball::docker_archive("special:1", &[layer], &[])),
    )
    .unwrap();
    lab.kiln().args(["import"]).args([&archive]).run().success();
    lab.kiln().args(["build", "carried"]).run().success();
    lab.kiln()
        .args(["run", "--rm", "carried", "sh", "-c"])
        .args([
            "test -p /carried/pipe && test -c /carried/zero && test -c /top-zero && echo carried",
        ])
        .run()
        .success()
        .stdout_is("carried\n");
}
