//! Where a `copy` puts what its sources name, and which directories a `workdir` creates,
//! decided against the image below the step: BuildKit's rules (its Dockerfile frontend's
//! `COPY` on fsutil's copier, and `WORKDIR` as `mkdir -p`), where Docker's documentation is
//! vague. Pure: it reads an [`ImageIndex`] and the sources' [`CopyMatch`]es and returns
//! image paths; nothing is read or written here.
//!
//! `copy SRC… DST`:
//! 1. DST is taken from the working directory when relative; a trailing `/` (or `.`, `..`
//!    as its last part) says it is a directory.
//! 2. The directory DST names (with the trailing `/`), or else DST's parent, is created with
//!    its missing parents (`mkdir -p`: 0755, root), following symbolic links of the image
//!    inside the image; an existing non-directory on the way is an error.
//! 3. DST itself is resolved, following its symbolic links (the last one too) inside the
//!    image: `copy "f" "/bin/"` on an image where `/bin -> usr/bin` writes `/usr/bin/f`.
//! 4. More than one match (sources, or a glob's matches) needs DST to end in `/` or to be an
//!    existing directory.
//! 5. A file goes into DST when DST is a directory (`DST/NAME`, NAME being the source's last
//!    component as written), else to DST itself; a directory there is an error (it is never
//!    replaced by a file). A symbolic link at `DST/NAME` is replaced, not followed.
//! 6. A directory's contents go under DST, merged with what is there: DST is created (0755,
//!    root) when missing and keeps its metadata when it exists; each entry below takes the
//!    source's metadata, a directory onto a non-directory (or a link) is an error, and so is
//!    a non-directory onto a directory.
//!
//! `workdir PATH`: PATH is resolved the same way and created with its missing parents
//! (0755, owned by the image's user, see `owner`); an existing non-directory is an error.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::layer::{ImageIndex, IndexKind, IndexNode, SymlinkLoop};

use super::inputs::{CopyMatch, ItemKind};

/// What goes at one image path of a `copy`'s layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placed {
    /// A directory the copy creates because it was missing (0755, root).
    NewDir,
    /// An item of a source: `group` is the index of the source argument it came from (hard
    /// links are kept within one source, as BuildKit keeps them within one copy action).
    Item {
        source: PathBuf,
        kind: ItemKind,
        group: usize,
    },
}

/// The layer of a `copy`: normalized image paths (`usr/bin/f`) in tar order.
pub(crate) type Placement = BTreeMap<String, Placed>;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlaceError {
    #[error("`{path}` is not a directory in the image")]
    #[diagnostic(help("a file or link is in the way of the destination's directories"))]
    NotADirectory { path: String },
    #[error("copy of {count} sources into `{dst}`, which is not a directory")]
    #[diagnostic(help(
        "end the destination with `/` (\"{dst}/\") to copy them into a directory, as Docker requires"
    ))]
    MultipleSources { dst: String, count: usize },
    #[error("cannot copy a directory onto `{path}`: it is not a directory in the image")]
    #[diagnostic(help("remove it in an earlier step, or copy to another destination"))]
    DirectoryOntoFile { path: String },
    #[error("cannot replace the directory `{path}` with a file")]
    #[diagnostic(help(
        "copy into it with a destination ending in `/`, or remove it in an earlier step"
    ))]
    FileOntoDirectory { path: String },
    #[error(
        "the host's `{path}` is a symbolic link (to `{target}`), but the image has a directory there"
    )]
    #[diagnostic(help(
        "name the host file by its real path (below `{target}`), or remove the directory in an earlier step"
    ))]
    LinkOntoDirectory { path: String, target: String },
    #[error(transparent)]
    SymlinkLoop(#[from] SymlinkLoop),
}

/// `/path` for messages.
fn shown(path: &str) -> String {
    format!("/{path}")
}

fn join(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (_, true) => dir.to_string(),
        _ => format!("{dir}/{name}"),
    }
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// DST taken from `workdir` when relative, normalized (`""` is the root), and whether its
/// spelling says it is a directory.
pub(crate) fn destination(dst: &str, workdir: &str) -> (String, bool) {
    let dir_syntax = dst.is_empty()
        || dst.ends_with('/')
        || dst == "."
        || dst == ".."
        || dst.ends_with("/.")
        || dst.ends_with("/..");
    let joined = if dst.starts_with('/') {
        dst.to_string()
    } else {
        format!("{workdir}/{dst}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    (parts.join("/"), dir_syntax)
}

fn dir_node(uid: u32, gid: u32) -> IndexNode {
    IndexNode {
        kind: IndexKind::Dir,
        mode: 0o755,
        uid,
        gid,
    }
}

/// `mkdir -p` of the resolved path `path` in `tree`: the directories created, parents first.
fn mkdir_all(
    tree: &mut ImageIndex,
    path: &str,
    owner: (u32, u32),
) -> Result<Vec<String>, PlaceError> {
    let mut created = Vec::new();
    let mut here = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        here = join(&here, part);
        match tree.get(&here) {
            Some(node) if node.is_dir() => {}
            Some(_) => return Err(PlaceError::NotADirectory { path: shown(&here) }),
            None => {
                tree.insert(&here, dir_node(owner.0, owner.1));
                created.push(here.clone());
            }
        }
    }
    Ok(created)
}

/// The directories `workdir PATH` creates (absolute `path`, already joined with the previous
/// working directory), parents first, as normalized image paths; none when it exists.
pub(crate) fn workdir(parent: &ImageIndex, path: &str) -> Result<Vec<String>, PlaceError> {
    let mut tree = parent.clone();
    let resolved = tree.resolve(path, true)?;
    mkdir_all(&mut tree, &resolved, (0, 0))
}

/// Places `matches` (each with the index of its source argument) for `copy … DST` on the
/// image `parent`, with `workdir` the working directory in effect.
pub(crate) fn place(
    matches: &[(usize, CopyMatch)],
    dst: &str,
    workdir: &str,
    parent: &ImageIndex,
) -> Result<Placement, PlaceError> {
    let (dest, dir_syntax) = destination(dst, workdir);
    let mut tree = parent.clone();
    let mut out = Placement::new();
    let mkdir = |tree: &mut ImageIndex, path: &str, out: &mut Placement| {
        for dir in mkdir_all(tree, path, (0, 0))? {
            out.insert(dir, Placed::NewDir);
        }
        Ok::<(), PlaceError>(())
    };
    let ensure = if dir_syntax {
        dest.as_str()
    } else {
        parent_of(&dest)
    };
    let ensure = tree.resolve(ensure, true)?;
    mkdir(&mut tree, &ensure, &mut out)?;
    let target = tree.resolve(&dest, true)?;
    let is_dir = |tree: &ImageIndex, path: &str| tree.get(path).is_some_and(IndexNode::is_dir);
    if matches.len() > 1 && !dir_syntax && !is_dir(&tree, &target) {
        return Err(PlaceError::MultipleSources {
            dst: dst.to_string(),
            count: matches.len(),
        });
    }
    for (group, m) in matches {
        let item = |source: &PathBuf, kind: &ItemKind| Placed::Item {
            source: source.clone(),
            kind: kind.clone(),
            group: *group,
        };
        if !m.is_dir {
            let path = if is_dir(&tree, &target) {
                join(&target, m.name())
            } else {
                target.clone()
            };
            if is_dir(&tree, &path) {
                return Err(PlaceError::FileOntoDirectory { path: shown(&path) });
            }
            // Only a link to a missing place leaves parents to make here.
            mkdir(&mut tree, parent_of(&path), &mut out)?;
            tree.insert(&path, node_of(&ItemKind::File));
            out.insert(path, item(&m.source, &ItemKind::File));
            continue;
        }
        match tree.get(&target) {
            Some(node) if node.is_dir() => {}
            Some(_) => {
                return Err(PlaceError::DirectoryOntoFile {
                    path: shown(&target),
                });
            }
            None => mkdir(&mut tree, &target, &mut out)?,
        }
        for entry in &m.contents {
            let path = join(&target, &entry.rel);
            match (&entry.kind, tree.get(&path)) {
                (ItemKind::Dir, Some(node)) if !node.is_dir() => {
                    return Err(PlaceError::DirectoryOntoFile { path: shown(&path) });
                }
                (ItemKind::File | ItemKind::Symlink(_) | ItemKind::Special, Some(node))
                    if node.is_dir() =>
                {
                    return Err(PlaceError::FileOntoDirectory { path: shown(&path) });
                }
                _ => {}
            }
            tree.insert(&path, node_of(&entry.kind));
            out.insert(path, item(&entry.source, &entry.kind));
        }
    }
    Ok(out)
}

/// Where the items of a `host-binary` or `host-path` step go on the image `parent` (each
/// given by its path as written, the host path, and its kind; parents before children): the
/// image's symbolic links on the way are followed inside the image, as `copy` follows them
/// (`/bin/sh` on an image where `/bin -> usr/bin` goes to `usr/bin/sh`, not over the link).
/// A directory at a link to a directory merges into the link's target; a file or a link
/// replaces a link at its own name; a directory onto a non-directory, or a non-directory onto
/// a directory, is an error. Returns the normalized image path of each item, in order.
pub(crate) fn host_items<'a>(
    parent: &ImageIndex,
    items: impl IntoIterator<Item = (&'a str, &'a ItemKind)>,
) -> Result<Vec<String>, PlaceError> {
    let mut tree = parent.clone();
    let mut out = Vec::new();
    for (path, kind) in items {
        let is_dir = *kind == ItemKind::Dir;
        let resolved = tree.resolve(path, is_dir)?;
        mkdir_all(&mut tree, parent_of(&resolved), (0, 0))?;
        match (tree.get(&resolved), is_dir) {
            (Some(node), true) if !node.is_dir() => {
                return Err(PlaceError::DirectoryOntoFile {
                    path: shown(&resolved),
                });
            }
            (Some(node), false) if node.is_dir() => {
                return Err(match kind {
                    ItemKind::Symlink(target) => PlaceError::LinkOntoDirectory {
                        path: shown(&resolved),
                        target: target.to_string_lossy().into_owned(),
                    },
                    _ => PlaceError::FileOntoDirectory {
                        path: shown(&resolved),
                    },
                });
            }
            (Some(_), true) => {}
            _ => tree.insert(&resolved, node_of(kind)),
        }
        out.push(resolved);
    }
    Ok(out)
}

/// What an item looks like to later placements of the same copy.
fn node_of(kind: &ItemKind) -> IndexNode {
    let kind = match kind {
        ItemKind::File => IndexKind::File,
        ItemKind::Dir => IndexKind::Dir,
        ItemKind::Symlink(target) => IndexKind::Symlink(target.to_string_lossy().into_owned()),
        ItemKind::Special => IndexKind::Other,
    };
    IndexNode {
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::inputs::TreeItem;

    fn node(kind: IndexKind, mode: u32) -> IndexNode {
        IndexNode {
            kind,
            mode,
            uid: 0,
            gid: 0,
        }
    }

    /// An image with `/srv/www` (a directory with a file), `/etc/motd` (a file), merged
    /// `/usr` links (`/bin -> usr/bin`), an absolute link `/evil -> /tmp/x`, a link to a
    /// file and a dangling one.
    fn image() -> ImageIndex {
        let mut index = ImageIndex::new();
        index.insert("srv/www", node(IndexKind::Dir, 0o750));
        index.insert("srv/www/old.html", node(IndexKind::File, 0o644));
        index.insert("etc/motd", node(IndexKind::File, 0o644));
        index.insert("usr/bin", node(IndexKind::Dir, 0o755));
        index.insert("bin", node(IndexKind::Symlink("usr/bin".into()), 0o777));
        index.insert("evil", node(IndexKind::Symlink("/tmp/x".into()), 0o777));
        index.insert("target", node(IndexKind::File, 0o644));
        index.insert("flink", node(IndexKind::Symlink("/target".into()), 0o777));
        index.insert(
            "dangling",
            node(IndexKind::Symlink("/nowhere".into()), 0o777),
        );
        index.insert("d/f", node(IndexKind::Dir, 0o755));
        index.insert("d/l", node(IndexKind::Symlink("/etc".into()), 0o777));
        index
    }

    fn file(path: &str) -> CopyMatch {
        CopyMatch {
            path: path.into(),
            source: PathBuf::from("/ctx").join(path),
            is_dir: false,
            contents: Vec::new(),
        }
    }

    fn dir(path: &str, contents: &[(&str, ItemKind)]) -> CopyMatch {
        CopyMatch {
            path: path.into(),
            source: PathBuf::from("/ctx").join(path),
            is_dir: true,
            contents: contents
                .iter()
                .map(|(rel, kind)| TreeItem {
                    rel: (*rel).into(),
                    source: PathBuf::from("/ctx").join(path).join(rel),
                    kind: kind.clone(),
                })
                .collect(),
        }
    }

    /// `copy` of `matches` to `dst` (working directory `/srv`): one line per entry, `N` for
    /// a directory made, `F`/`D`/`L` with the source for an item.
    fn placed(matches: Vec<CopyMatch>, dst: &str) -> Result<Vec<String>, PlaceError> {
        let matches: Vec<(usize, CopyMatch)> = matches.into_iter().enumerate().collect();
        Ok(place(&matches, dst, "/srv", &image())?
            .into_iter()
            .map(|(path, placed)| match placed {
                Placed::NewDir => format!("N /{path}"),
                Placed::Item { source, kind, .. } => {
                    let letter = match kind {
                        ItemKind::File => "F",
                        ItemKind::Dir => "D",
                        ItemKind::Symlink(_) => "L",
                        ItemKind::Special => "S",
                    };
                    format!("{letter} /{path} <- {}", source.display())
                }
            })
            .collect())
    }

    fn ok(matches: Vec<CopyMatch>, dst: &str) -> Vec<String> {
        placed(matches, dst).unwrap_or_else(|e| panic!("{dst}: {e}"))
    }

    #[test]
    fn a_file_goes_into_an_existing_directory_or_becomes_the_destination() {
        // The case Docker users hit: `/srv/www` exists, no trailing slash.
        assert_eq!(
            ok(vec![file("index.html")], "/srv/www"),
            ["F /srv/www/index.html <- /ctx/index.html"]
        );
        assert_eq!(ok(vec![file("a.txt")], "/new"), ["F /new <- /ctx/a.txt"]);
        assert_eq!(
            ok(vec![file("a.txt")], "/x/y/"),
            ["N /x", "N /x/y", "F /x/y/a.txt <- /ctx/a.txt"]
        );
        // The name inside a directory is the source's last component as written.
        assert_eq!(
            ok(vec![file("sub/c.txt")], "/srv/www/"),
            ["F /srv/www/c.txt <- /ctx/sub/c.txt"]
        );
        // Relative to the working directory; `.` is the directory itself.
        assert_eq!(ok(vec![file("a.txt")], "rel"), ["F /srv/rel <- /ctx/a.txt"]);
        assert_eq!(ok(vec![file("a.txt")], "."), ["F /srv/a.txt <- /ctx/a.txt"]);
        assert_eq!(
            ok(vec![file("a.txt")], "www/.."),
            ["F /srv/a.txt <- /ctx/a.txt"]
        );
    }

    #[test]
    fn a_directory_merges_into_an_existing_one_and_a_new_one_is_made_0755() {
        let site = || {
            dir(
                "site",
                &[
                    ("css", ItemKind::Dir),
                    ("css/main.css", ItemKind::File),
                    ("index.html", ItemKind::File),
                ],
            )
        };
        // No entry for /srv/www itself: it keeps its mode (0750) and old.html stays.
        assert_eq!(
            ok(vec![site()], "/srv/www"),
            [
                "D /srv/www/css <- /ctx/site/css",
                "F /srv/www/css/main.css <- /ctx/site/css/main.css",
                "F /srv/www/index.html <- /ctx/site/index.html",
            ]
        );
        assert_eq!(
            ok(vec![site()], "/web")[..2],
            ["N /web", "D /web/css <- /ctx/site/css"]
        );
        assert_eq!(ok(vec![site()], "/a/b/")[..2], ["N /a", "N /a/b"]);
    }

    #[test]
    fn several_matches_need_a_directory() {
        let two = || vec![file("a.txt"), file("b.txt")];
        let err = placed(two(), "/multi").expect_err("not a directory");
        assert!(
            matches!(&err, PlaceError::MultipleSources { count: 2, .. }),
            "{err:?}"
        );
        assert_eq!(
            ok(two(), "/multi/"),
            [
                "N /multi",
                "F /multi/a.txt <- /ctx/a.txt",
                "F /multi/b.txt <- /ctx/b.txt"
            ]
        );
        // An existing directory is one, slash or not (BuildKit and Buildah agree).
        assert_eq!(ok(two(), "/srv/www").len(), 2);
    }

    #[test]
    fn links_of_the_image_are_followed_inside_it() {
        // Merged /usr: `/bin/` is `/usr/bin/`; nothing is written at `/bin`.
        assert_eq!(ok(vec![file("f")], "/bin/"), ["F /usr/bin/f <- /ctx/f"]);
        assert_eq!(ok(vec![file("g")], "/bin/g2"), ["F /usr/bin/g2 <- /ctx/g"]);
        // An absolute link means the image's `/`: never the host's /tmp.
        assert_eq!(
            ok(vec![file("f")], "/evil/e"),
            ["N /tmp", "N /tmp/x", "F /tmp/x/e <- /ctx/f"]
        );
        // The destination's own link is followed (BuildKit), to a file or a missing place.
        assert_eq!(ok(vec![file("f")], "/flink"), ["F /target <- /ctx/f"]);
        assert_eq!(ok(vec![file("f")], "/dangling"), ["F /nowhere <- /ctx/f"]);
        // A link at DST/NAME is replaced, not followed.
        assert_eq!(ok(vec![file("l")], "/d/"), ["F /d/l <- /ctx/l"]);
    }

    #[test]
    fn what_cannot_be_merged_is_an_error() {
        fn file_onto_dir(e: &PlaceError) -> bool {
            matches!(e, PlaceError::FileOntoDirectory { path } if path == "/d/f")
        }
        fn dir_onto_file(e: &PlaceError) -> bool {
            matches!(e, PlaceError::DirectoryOntoFile { .. })
        }
        fn not_a_dir(e: &PlaceError) -> bool {
            matches!(e, PlaceError::NotADirectory { path } if path == "/etc/motd")
        }
        type Case = (Vec<CopyMatch>, &'static str, fn(&PlaceError) -> bool);
        let cases: Vec<Case> = vec![
            // A file onto a directory: the directory is never replaced.
            (vec![file("f")], "/d/", file_onto_dir),
            (
                vec![dir("x", &[("f", ItemKind::File)])],
                "/d",
                file_onto_dir,
            ),
            // A directory onto a file, and onto a link inside the tree.
            (vec![dir("x", &[])], "/etc/motd", dir_onto_file),
            (vec![dir("x", &[("l", ItemKind::Dir)])], "/d", dir_onto_file),
            // A file in the way of the destination's directories.
            (vec![file("a")], "/etc/motd/x", not_a_dir),
            (vec![file("a")], "/etc/motd/", not_a_dir),
        ];
        for (matches, dst, expected) in cases {
            let err = placed(matches, dst).expect_err(dst);
            assert!(expected(&err), "{dst}: {err:?}");
        }
    }

    #[test]
    fn workdir_creates_what_is_missing_inside_the_image() {
        let image = image();
        assert_eq!(
            workdir(&image, "/app/data").expect("made"),
            ["app", "app/data"]
        );
        assert!(workdir(&image, "/srv/www").expect("exists").is_empty());
        assert!(workdir(&image, "/").expect("root").is_empty());
        assert_eq!(workdir(&image, "/bin/x").expect("made"), ["usr/bin/x"]);
        assert_eq!(workdir(&image, "/evil").expect("made"), ["tmp", "tmp/x"]);
        let err = workdir(&image, "/etc/motd").expect_err("a file");
        assert!(matches!(err, PlaceError::NotADirectory { .. }), "{err}");
    }

    #[test]
    fn host_items_follow_the_images_links_inside_the_image() {
        let image = image();
        let file = ItemKind::File;
        let dir = ItemKind::Dir;
        let link = ItemKind::Symlink("dash".into());
        let placed = host_items(
            &image,
            [
                ("/bin/sh", &link),
                ("/bin/dash", &file),
                ("/evil/tool", &file),
                ("/srv/www", &dir),
                ("/srv/www/new.html", &file),
                ("/flink", &file),
            ],
        )
        .expect("placed");
        assert_eq!(
            placed,
            [
                "usr/bin/sh",
                "usr/bin/dash",
                "tmp/x/tool",
                "srv/www",
                "srv/www/new.html",
                "flink"
            ],
            "through /bin -> usr/bin and /evil -> /tmp/x inside the image; a file replaces a link at its own name"
        );
        // A directory through a link to a directory merges into the target.
        assert_eq!(
            host_items(&image, [("/bin", &dir), ("/bin/x", &file)]).expect("placed"),
            ["usr/bin", "usr/bin/x"]
        );
        let err = host_items(&image, [("/etc/motd", &dir)]).expect_err("onto a file");
        assert!(matches!(err, PlaceError::DirectoryOntoFile { .. }), "{err}");
        let err = host_items(&image, [("/srv/www", &file)]).expect_err("onto a dir");
        assert!(matches!(err, PlaceError::FileOntoDirectory { .. }), "{err}");
        let err = host_items(&image, [("/srv", &link)]).expect_err("a link onto a dir");
        assert!(matches!(err, PlaceError::LinkOntoDirectory { .. }), "{err}");
        let err = host_items(&image, [("/etc/motd/x", &file)]).expect_err("through a file");
        assert!(matches!(err, PlaceError::NotADirectory { .. }), "{err}");
    }
}
