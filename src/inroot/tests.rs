//! The primitive on real directories (openat2 needs no privilege): hostile links resolve
//! inside the root, what is missing is created there, nothing outside is touched.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use nix::errno::Errno;

use super::{Create, How, Root};

/// A root and, beside it, a host directory an image's link names.
fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let host = dir.path().join("host");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&host).unwrap();
    (dir, root, host)
}

fn errno(result: Result<impl std::fmt::Debug, super::InRootError>) -> Errno {
    result.unwrap_err().errno().expect("an errno")
}

fn inside(root: &Path, path: &str) -> std::path::PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_absolute_link_to_a_host_directory_is_followed_inside_the_root() {
    let (_dir, root, host) = setup();
    symlink(&host, root.join("evil")).unwrap();
    let r = Root::open(&root).unwrap();
    r.resolve("/evil/new/deeper", How::DIR).unwrap();
    // Created where the link points as the root sees it: <root>/<host path>/new/deeper.
    assert!(
        inside(&root, host.to_str().unwrap())
            .join("new/deeper")
            .is_dir()
    );
    assert!(listing(&host).is_empty(), "nothing created on the host");
    // A file too.
    r.resolve("evil/file", How::FILE).unwrap();
    assert!(inside(&root, host.to_str().unwrap()).join("file").is_file());
    assert!(listing(&host).is_empty());
}

#[test]
fn a_link_to_a_missing_target_is_created_where_it_points_inside_the_root() {
    let (_dir, root, _host) = setup();
    symlink("/a/b", root.join("x")).unwrap();
    symlink("x", root.join("y")).unwrap();
    let r = Root::open(&root).unwrap();
    r.resolve("y/c", How::DIR).unwrap();
    assert!(root.join("a/b/c").is_dir());
    assert!(root.join("x").is_symlink() && root.join("y").is_symlink());
    // Relative targets are taken from the link's directory, resolved.
    fs::create_dir(root.join("d")).unwrap();
    symlink("../e/f", root.join("d/rel")).unwrap();
    r.resolve("d/rel", How::DIR).unwrap();
    assert!(root.join("e/f").is_dir());
}

#[test]
fn dot_dot_stops_at_the_root() {
    let (_dir, root, host) = setup();
    fs::create_dir_all(root.join("a/b")).unwrap();
    symlink("../../../../..", root.join("a/b/up")).unwrap();
    let r = Root::open(&root).unwrap();
    r.resolve("a/b/up/host/x", How::DIR).unwrap();
    assert!(root.join("host/x").is_dir());
    assert!(listing(&host).is_empty());
    r.resolve("../../host/y", How::DIR).unwrap();
    assert!(root.join("host/y").is_dir());
    assert!(listing(&host).is_empty());
}

#[test]
fn kinds_are_checked() {
    let (_dir, root, _host) = setup();
    fs::write(root.join("file"), "x").unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    let r = Root::open(&root).unwrap();
    assert_eq!(errno(r.resolve("file", How::DIR)), Errno::ENOTDIR);
    assert_eq!(errno(r.resolve("file/below", How::DIR)), Errno::ENOTDIR);
    assert_eq!(errno(r.resolve("dir", How::FILE)), Errno::EISDIR);
    assert_eq!(errno(r.resolve("missing", How::EXISTING)), Errno::ENOENT);
    assert!(!root.join("missing").exists());
    r.resolve("file", How::FILE).unwrap();
    r.resolve("dir", How::DIR).unwrap();
    r.resolve("dir/new/f", How::FILE).unwrap();
    assert!(root.join("dir/new/f").is_file());
}

#[test]
fn links_can_be_refused_and_loops_end() {
    let (_dir, root, _host) = setup();
    fs::create_dir(root.join("real")).unwrap();
    symlink("real", root.join("proc")).unwrap();
    symlink("b", root.join("a")).unwrap();
    symlink("a", root.join("b")).unwrap();
    let r = Root::open(&root).unwrap();
    let strict = How {
        create: Create::Dir,
        symlinks: false,
    };
    assert_eq!(errno(r.resolve("proc", strict)), Errno::ELOOP);
    r.resolve("real", strict).unwrap();
    assert_eq!(errno(r.resolve("a/x", How::DIR)), Errno::ELOOP);
    // A dangling link is refused too, not replaced, when links are not allowed.
    symlink("/nowhere", root.join("dangling")).unwrap();
    assert_eq!(errno(r.resolve("dangling", strict)), Errno::ELOOP);
    assert!(!root.join("nowhere").exists());
}

#[test]
fn magic_links_are_refused() {
    // /proc/self/root and /proc/self/cwd lead anywhere: never through them.
    let r = Root::open("/proc/self").unwrap();
    assert_eq!(errno(r.resolve("root/etc", How::EXISTING)), Errno::ELOOP);
    assert_eq!(errno(r.resolve("cwd", How::EXISTING)), Errno::ELOOP);
    assert_eq!(errno(r.resolve("fd/0", How::EXISTING)), Errno::ELOOP);
}

#[test]
fn only_regular_files_are_read() {
    let (_dir, root, host) = setup();
    fs::write(host.join("secret"), "host secret").unwrap();
    fs::create_dir(root.join("etc")).unwrap();
    symlink(host.join("secret"), root.join("etc/passwd")).unwrap();
    let r = Root::open(&root).unwrap();
    assert!(r.read("/etc/passwd", 1024).unwrap_err().is_not_found());
    fs::remove_file(root.join("etc/passwd")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    assert_eq!(
        r.read("/etc/passwd", 1024).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert!(r.read("/etc/passwd", 4).is_err(), "over the limit");
    nix::unistd::mkfifo(&root.join("etc/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    // Refused before it is opened (opening a FIFO for reading would block).
    assert!(r.read("etc/fifo", 1024).is_err());
    assert_eq!(errno(r.read("etc", 1024)), Errno::EISDIR);
}

#[test]
fn long_paths_are_refused() {
    let (_dir, root, _host) = setup();
    let r = Root::open(&root).unwrap();
    let long = "a/".repeat(3000);
    assert_eq!(errno(r.resolve(&long, How::DIR)), Errno::ENAMETOOLONG);
    assert!(!root.join("a").exists());
}
