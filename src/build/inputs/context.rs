//! The build context (the project directory) and what a `copy SRC…` names in it, with
//! Docker's COPY semantics and a `.kilnignore` at the context's top (gitignore syntax and
//! semantics: an excluded directory is not descended into, so `!` cannot re-include a file
//! below it; the file may exclude itself).
//!
//! - SRC is relative to the context; a leading `/` or `./` means the context's top, not the
//!   host's root. `..` that would leave the context is an error.
//! - A file SRC is one [`CopyMatch`]; a directory SRC is one whose contents are copied (the
//!   directory itself is not).
//! - A SRC with `*`, `?` or `[` is a glob (each `*` stays within one path component; `**`
//!   crosses them) and every match is a [`CopyMatch`] of its own, as if named on its own.
//! - Symbolic links on the way to SRC, SRC's own included, are followed inside the context
//!   (Docker follows the top-level source); inside a copied tree they are kept as links, and a
//!   link whose target resolves outside the context is an error.
//!
//! Where the matches land (DST, an existing directory, a symbolic link in the image) is not
//! decided here: `build::place` does it against the image below the step.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::resolve::{Failure, Follow, Scope, host_of, walk};
use super::tree::{self, TreePolicy};
use super::{CopyMatch, InputError, ItemSet, TreeItem, error::io_err, show};

/// The ignore file at the context's top.
pub const IGNORE_FILE: &str = ".kilnignore";

#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    ignore: Gitignore,
}

impl Context {
    /// Opens the context at `root`, reading its `.kilnignore` if there is one.
    pub fn open(root: impl AsRef<Path>) -> Result<Context, InputError> {
        let given = root.as_ref();
        let bad = |source| InputError::BadContext {
            path: given.to_path_buf(),
            source,
        };
        let root = fs::canonicalize(given).map_err(bad)?;
        if !fs::metadata(&root).map_err(bad)?.is_dir() {
            return Err(bad(io::Error::from(io::ErrorKind::NotADirectory)));
        }
        let mut builder = GitignoreBuilder::new(&root);
        let file = root.join(IGNORE_FILE);
        if fs::symlink_metadata(&file).is_ok() {
            if let Some(source) = builder.add(&file) {
                return Err(InputError::BadIgnoreFile { path: file, source });
            }
        }
        let ignore = builder
            .build()
            .map_err(|source| InputError::BadIgnoreFile { path: file, source })?;
        Ok(Context { root, ignore })
    }

    /// The context's directory, canonical.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `rel` (relative to the context) is excluded by `.kilnignore`, by itself or
    /// through a parent directory.
    /// As in git, a path under an excluded directory stays excluded whatever `!` says.
    pub fn is_excluded(&self, rel: &Path, is_dir: bool) -> bool {
        let mut parents: Vec<&Path> = rel.ancestors().skip(1).collect();
        parents.reverse();
        parents
            .into_iter()
            .filter(|p| !p.as_os_str().is_empty())
            .any(|p| self.ignore.matched(p, true).is_ignore())
            || (!rel.as_os_str().is_empty() && self.ignore.matched(rel, is_dir).is_ignore())
    }

    /// What `copy SRC …` names in the context (see the module documentation): one match,
    /// or one per match of a glob, in order.
    pub fn copy_matches(&self, src: &str) -> Result<Vec<CopyMatch>, InputError> {
        let rel = clean_source(src)?;
        if is_glob(&rel) {
            self.glob(src, &rel)?
                .iter()
                .map(|found| self.match_one(src, found))
                .collect()
        } else {
            Ok(vec![self.match_one(src, &rel)?])
        }
    }

    /// The context path `rel` (a file or directory) as a match.
    fn match_one(&self, src: &str, rel: &Path) -> Result<CopyMatch, InputError> {
        let rooted = Path::new("/").join(rel);
        let found = walk(
            &self.root,
            Scope::Context,
            Path::new("/"),
            &rooted,
            Follow::All,
        )
        .map_err(|failure| match failure {
            Failure::Missing { .. } | Failure::NotDir { .. } => {
                InputError::CopySourceNotFound { path: src.into() }
            }
            Failure::Escapes { link, target } => self.escape(&link, &target),
            other => other.into_error(src),
        })?;
        let meta = found
            .meta
            .expect("Follow::All never returns a missing path");
        let physical = found
            .path
            .strip_prefix("/")
            .unwrap_or(&found.path)
            .to_path_buf();
        if self.is_excluded(rel, meta.is_dir()) || self.is_excluded(&physical, meta.is_dir()) {
            return Err(InputError::Excluded { path: src.into() });
        }
        let source = host_of(&self.root, &found.path);
        let path = rel
            .to_str()
            .ok_or_else(|| InputError::NotUtf8 { path: rel.into() })?
            .to_owned();
        if meta.is_dir() {
            let policy = ContextTree {
                context: self,
                top: physical,
            };
            let mut items = ItemSet::default();
            tree::add_tree(&source, Path::new("/"), &policy, &mut items)?;
            let contents = items
                .into_items()?
                .into_iter()
                .map(|item| TreeItem {
                    rel: item.image_path.trim_start_matches('/').to_owned(),
                    source: item.source,
                    kind: item.kind,
                })
                .collect();
            Ok(CopyMatch {
                path,
                source,
                is_dir: true,
                contents,
            })
        } else if meta.is_file() {
            Ok(CopyMatch {
                path,
                source,
                is_dir: false,
                contents: Vec::new(),
            })
        } else {
            Err(InputError::UnsupportedFileType {
                path: show(&source),
                kind: "special file",
            })
        }
    }

    /// The context paths matching the glob `rel`, sorted, excluded ones left out.
    fn glob(&self, src: &str, rel: &Path) -> Result<Vec<PathBuf>, InputError> {
        let pattern = rel
            .to_str()
            .ok_or_else(|| InputError::NotUtf8 { path: rel.into() })?;
        let matcher = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|source| InputError::BadGlob {
                pattern: src.into(),
                source,
            })?
            .compile_matcher();
        // Walk from the longest literal prefix, and only as deep as the pattern reaches.
        let components: Vec<&str> = pattern.split('/').collect();
        let literal = components
            .iter()
            .take_while(|c| !is_glob(Path::new(c)))
            .copied()
            .collect::<Vec<_>>();
        let search = GlobSearch {
            context: self,
            matcher,
            depth: if pattern.contains("**") {
                usize::MAX
            } else {
                components.len()
            },
        };
        let start = PathBuf::from(literal.join("/"));
        let mut found = GlobFound::default();
        if !self.is_excluded(&start, true) {
            search.visit(&start, literal.len(), &mut found)?;
        }
        if found.matches.is_empty() {
            return Err(if found.excluded {
                InputError::Excluded { path: src.into() }
            } else {
                InputError::NoMatch {
                    pattern: src.into(),
                }
            });
        }
        Ok(found.matches)
    }

    /// The error for a link at the rooted context path `link` pointing out of the context.
    fn escape(&self, link: &Path, target: &Path) -> InputError {
        InputError::SymlinkEscapes {
            link: show(link.strip_prefix("/").unwrap_or(link)),
            target: show(target),
        }
    }
}

/// What a copied tree may hold: nothing excluded, no link out of the context.
struct ContextTree<'a> {
    context: &'a Context,
    /// The tree's top, relative to the context.
    top: PathBuf,
}

impl TreePolicy for ContextTree<'_> {
    fn skip(&self, rel: &Path, is_dir: bool) -> bool {
        // Parents were checked on the way down: only the entry itself matters.
        self.context
            .ignore
            .matched(self.top.join(rel), is_dir)
            .is_ignore()
    }

    fn check_link(&self, rel: &Path, target: &Path) -> Result<(), InputError> {
        let link = Path::new("/").join(&self.top).join(rel);
        let dir = link.parent().unwrap_or(Path::new("/"));
        // An absolute target is a host path: inside only if under the context's directory.
        let rooted;
        let target_in_context = if target.has_root() {
            let Ok(rest) = target.strip_prefix(&self.context.root) else {
                return Err(self.context.escape(&link, target));
            };
            rooted = Path::new("/").join(rest);
            rooted.as_path()
        } else {
            target
        };
        match walk(
            &self.context.root,
            Scope::Context,
            dir,
            target_in_context,
            Follow::AllowMissing,
        ) {
            Err(Failure::Escapes { .. }) => Err(self.context.escape(&link, target)),
            Err(Failure::Io { path, source }) => Err(InputError::Io { path, source }),
            // A loop or a dangling link stays inside: it is copied as it is.
            Ok(_) | Err(Failure::Loop | Failure::Missing { .. } | Failure::NotDir { .. }) => Ok(()),
        }
    }
}

struct GlobSearch<'a> {
    context: &'a Context,
    matcher: GlobMatcher,
    /// How many components deep a match can be.
    depth: usize,
}

#[derive(Default)]
struct GlobFound {
    matches: Vec<PathBuf>,
    /// Whether something matched but was excluded.
    excluded: bool,
}

impl GlobSearch<'_> {
    fn visit(&self, dir: &Path, depth: usize, found: &mut GlobFound) -> Result<(), InputError> {
        let host = self.context.root.join(dir);
        let entries = match fs::read_dir(&host) {
            Ok(entries) => entries,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(io_err(&host)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&host))?;
            let file_type = entry.file_type().map_err(io_err(&entry.path()))?;
            names.push((entry.file_name(), file_type.is_dir()));
        }
        names.sort();
        for (name, is_dir) in names {
            let rel = dir.join(&name);
            let excluded = self.context.ignore.matched(&rel, is_dir).is_ignore();
            if self.matcher.is_match(&rel) {
                if excluded {
                    found.excluded = true;
                } else {
                    found.matches.push(rel.clone());
                }
            }
            if is_dir && !excluded && depth + 1 < self.depth {
                self.visit(&rel, depth + 1, found)?;
            }
        }
        Ok(())
    }
}

/// SRC as a clean path relative to the context (empty for the context itself).
fn clean_source(src: &str) -> Result<PathBuf, InputError> {
    let mut parts: Vec<&str> = Vec::new();
    for part in src.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(InputError::EscapesContext { path: src.into() });
                }
            }
            name => parts.push(name),
        }
    }
    Ok(PathBuf::from(parts.join("/")))
}

fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}
