use std::fs;
use std::os::unix::fs::symlink;

use super::*;

/// Layer directories under one temporary directory, each made by `make` (bottom first);
/// returned top-most first, as `unpack_stack` does.
fn layers(dir: &Path, makers: &[&dyn Fn(&Path)]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (n, make) in makers.iter().enumerate() {
        let layer = dir.join(format!("layer{n}"));
        fs::create_dir(&layer).unwrap();
        make(&layer);
        out.insert(0, layer);
    }
    out
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn leaf(node: Node) -> PathBuf {
    match node {
        Node::Leaf { source, .. } => source,
        Node::Dir(dir) => panic!("a directory: {dir:?}"),
    }
}

fn names(view: &Union, path: &str) -> Vec<String> {
    let Node::Dir(dir) = view.resolve(path).unwrap() else {
        panic!("{path} is not a directory")
    };
    view.list(&dir)
        .unwrap()
        .into_iter()
        .map(|(name, node)| {
            let kind = if matches!(node, Node::Dir(_)) {
                "/"
            } else {
                ""
            };
            format!("{}{kind}", name.to_string_lossy())
        })
        .collect()
}

#[test]
fn the_top_most_layer_wins_and_directories_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let stack = layers(
        tmp.path(),
        &[
            &|l| {
                write(&l.join("d/old"), "old\n");
                write(&l.join("d/both"), "below\n");
                write(&l.join("e/hidden"), "hidden\n");
                write(&l.join("f"), "a file below\n");
            },
            &|l| {
                write(&l.join("d/new"), "new\n");
                write(&l.join("d/both"), "above\n");
                // A file over a directory hides the directory; a directory over a file
                // is the directory alone.
                write(&l.join("e"), "a file above\n");
                write(&l.join("f/inside"), "in\n");
            },
        ],
    );
    let view = Union::new(stack.clone()).unwrap();
    assert_eq!(names(&view, "/d"), ["both", "new", "old"]);
    assert_eq!(
        leaf(view.resolve("/d/both").unwrap()),
        stack[0].join("d/both")
    );
    assert_eq!(leaf(view.resolve("d/old").unwrap()), stack[1].join("d/old"));
    assert_eq!(leaf(view.resolve("/e").unwrap()), stack[0].join("e"));
    assert!(matches!(
        view.resolve("/e/hidden"),
        Err(UnionError::NotFound)
    ));
    assert_eq!(names(&view, "/f"), ["inside"]);
    assert_eq!(names(&view, "/"), ["d/", "e", "f/"]);
}

#[test]
fn links_are_followed_inside_the_image_never_on_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    // Outside every layer: what a climbing or absolute link must never reach.
    write(&tmp.path().join("secret"), "host\n");
    let stack = layers(
        tmp.path(),
        &[
            &|l| {
                write(&l.join("srv/www/index.html"), "hi\n");
                write(&l.join("secret"), "the image's\n");
            },
            &|l| {
                symlink("/srv/www", l.join("site")).unwrap();
                symlink("../../../../../secret", l.join("climb")).unwrap();
                symlink(tmp_secret(l), l.join("absolute")).unwrap();
                symlink("loop2", l.join("loop1")).unwrap();
                symlink("loop1", l.join("loop2")).unwrap();
                symlink("srv/www/index.html", l.join("file")).unwrap();
            },
        ],
    );
    let view = Union::new(stack.clone()).unwrap();
    let below = &stack[1];
    assert_eq!(
        leaf(view.resolve("/site/index.html").unwrap()),
        below.join("srv/www/index.html")
    );
    assert_eq!(leaf(view.resolve("/climb").unwrap()), below.join("secret"));
    // The host path of the secret, as an absolute target: looked for in the image.
    assert!(matches!(
        view.resolve("/absolute"),
        Err(UnionError::NotFound)
    ));
    assert!(matches!(
        view.resolve("/loop1"),
        Err(UnionError::SymlinkLoop)
    ));
    // `..` stops at the image's root.
    assert_eq!(
        leaf(view.resolve("/../../srv/../srv/www/index.html").unwrap()),
        below.join("srv/www/index.html")
    );
    // A file is no directory, through a link or not.
    assert!(matches!(view.resolve("/file/"), Err(UnionError::NotFound)));
    assert!(matches!(
        view.resolve("/secret/x"),
        Err(UnionError::NotFound)
    ));
    let Node::Dir(site) = view.resolve("/site").unwrap() else {
        panic!("/site is a directory")
    };
    assert_eq!(site.top(), below.join("srv/www"));
}

/// The host path of the test's secret (the layer's grandparent holds it).
fn tmp_secret(layer: &Path) -> PathBuf {
    layer.parent().unwrap().join("secret")
}

#[test]
fn whiteouts_and_opaque_directories_hide_what_is_below() {
    // Whiteouts are character devices 0/0 and opaque markers trusted.* xattrs: root only.
    if !crate::test_support::is_root() {
        return;
    }
    let whiteout = |path: &Path| {
        nix::sys::stat::mknod(
            path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
    };
    let tmp = tempfile::tempdir().unwrap();
    let stack = layers(
        tmp.path(),
        &[
            &|l| {
                write(&l.join("d/gone"), "gone\n");
                write(&l.join("d/kept"), "kept\n");
                write(&l.join("o/below"), "below\n");
                write(&l.join("w/inside"), "inside\n");
            },
            &|l| {
                fs::create_dir(l.join("d")).unwrap();
                whiteout(&l.join("d/gone"));
                whiteout(&l.join("w"));
                write(&l.join("o/above"), "above\n");
                xattr::set(l.join("o"), OPAQUE_XATTR, b"y").unwrap();
            },
            &|l| {
                // A layer above a whiteout brings the name back, alone.
                write(&l.join("w/again"), "again\n");
            },
        ],
    );
    let view = Union::new(stack).unwrap();
    assert_eq!(names(&view, "/d"), ["kept"]);
    assert!(matches!(view.resolve("/d/gone"), Err(UnionError::NotFound)));
    assert_eq!(names(&view, "/o"), ["above"]);
    assert_eq!(names(&view, "/w"), ["again"]);
    assert_eq!(names(&view, "/"), ["d/", "o/", "w/"]);
}
