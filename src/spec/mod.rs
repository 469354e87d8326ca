//! The language front end: kiln.kdl → a validated, typed [`Project`] with spans.
//!
//! Owns loading (the root file, its imports, stdlib modules), parsing, validation and
//! diagnostics. Pure: the only I/O goes through the [`FileSystem`] it is handed, so every
//! rule is tested without touching the disk. It must not build, run or touch the network.

pub mod diag;
pub(crate) mod kdlv2;
pub mod lock;
pub mod model;
mod parse;
mod reader;
pub mod render;
pub mod source;
pub mod stdlib;
mod syntax;
pub mod units;
mod validate;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

pub use diag::{Code, Diagnostic, Severity};
pub use model::Project;
pub use source::{FileId, Sources, Span, Spanned};
pub use validate::{Options, PlacementCheck, ProfileCheck, ProfileProblem};

use diag::{Diagnostics, did_you_mean};

/// The file access the front end needs: reading imported files and checking that paths
/// named in the project exist.
pub trait FileSystem {
    fn read_to_string(&self, path: &Path) -> io::Result<String>;
    fn exists(&self, path: &Path) -> bool;
}

/// The real file system.
pub struct RealFs;

impl FileSystem for RealFs {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// The root project file could not be read at all.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot read {}", path.display())]
#[diagnostic(
    code(kiln::spec::unreadable),
    help("pass the project file with `-f FILE`, or run kiln in the directory that holds kiln.kdl")
)]
pub struct ReadError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// A loaded project: the model, the text of every file it came from, and every diagnostic.
#[derive(Debug)]
pub struct Loaded {
    pub project: Project,
    /// kiln.lock beside the root file (empty when there is none).
    pub lock: lock::Lock,
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads, parses and validates the project file at `path`.
pub fn load_file(path: &Path, fs: &dyn FileSystem, options: &Options) -> Result<Loaded, ReadError> {
    let text = fs.read_to_string(path).map_err(|source| ReadError {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let display = if path.is_absolute() {
        path.display().to_string()
    } else {
        name
    };
    Ok(load_source(&display, Some(path), &text, fs, options))
}

/// Loads a project from text; `path` locates relative imports and paths (none: in memory).
pub fn load_source(
    name: &str,
    path: Option<&Path>,
    text: &str,
    fs: &dyn FileSystem,
    options: &Options,
) -> Loaded {
    let mut loader = Loader {
        fs,
        sources: Sources::default(),
        diags: Diagnostics::default(),
        loaded: BTreeMap::new(),
        stack: Vec::new(),
        project: Project::default(),
        incomplete: false,
    };
    let root = loader.sources.add(name, path.map(Path::to_path_buf), text);
    let project_name = loader.load(root, FileKey::of(path, name));
    let lock = loader.load_lock(path);
    let mut project = std::mem::take(&mut loader.project);
    project.name = project_name
        .map(|n| n.value)
        .unwrap_or_else(|| default_project_name(path));
    validate::validate(
        &project,
        &loader.sources,
        fs,
        options,
        loader.incomplete,
        &lock,
        &mut loader.diags,
    );
    Loaded {
        project,
        lock,
        sources: loader.sources,
        diagnostics: loader.diags.into_sorted(),
    }
}

/// The name of the project whose root file is at `path`, read cheaply: that file alone
/// (`project "NAME"`, else the name of its directory), imports and validation skipped.
/// `None` when the file cannot be read or is not valid KDL. For the command line, whose
/// bare names mean the current project's first ([`crate::scope`]).
pub fn project_name(path: &Path, fs: &dyn FileSystem) -> Option<String> {
    let text = fs.read_to_string(path).ok()?;
    let doc = kdlv2::parse(&text).ok()?;
    let mut diags = Diagnostics::default();
    let parsed = parse::parse_document(&doc, FileId(0), &mut diags);
    Some(
        parsed
            .project_name
            .map(|n| n.value)
            .unwrap_or_else(|| default_project_name(Some(path))),
    )
}

/// Parses KDL with the front end's parser; true if the text is valid. For the benchmarks
/// only (the parser itself is crate-private).
#[doc(hidden)]
pub fn parse_kdl_for_bench(text: &str) -> bool {
    kdlv2::parse(text).is_ok()
}

/// Without `project "NAME"`, a project is named after its directory.
fn default_project_name(path: Option<&Path>) -> String {
    let dir = path
        .and_then(|p| std::path::absolute(p).ok())
        .and_then(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
        });
    let cleaned: String = dir
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('-');
    if trimmed.is_empty() {
        "default".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Identifies a file for cycle and duplicate detection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum FileKey {
    Std(String),
    Path(PathBuf),
    Memory(String),
}

impl FileKey {
    fn of(path: Option<&Path>, name: &str) -> FileKey {
        match path {
            Some(p) => FileKey::Path(normalize(p)),
            None => FileKey::Memory(name.to_string()),
        }
    }
}

/// Lexical normalization (no symlink resolution: the file system may be a fake).
fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

struct Loader<'a> {
    fs: &'a dyn FileSystem,
    sources: Sources,
    diags: Diagnostics,
    loaded: BTreeMap<FileKey, FileId>,
    /// The chain of imports being loaded: the file and the import span that led to it.
    stack: Vec<(FileKey, Option<Span>)>,
    project: Project,
    /// An import could not be loaded (missing, or not valid KDL): names it declares are
    /// unknown, so references to undeclared names are not reported (they would only repeat
    /// the import's error).
    incomplete: bool,
}

impl Loader<'_> {
    /// Parses one file, loads its imports depth-first, then merges its declarations.
    fn load(&mut self, file: FileId, key: FileKey) -> Option<Spanned<String>> {
        self.loaded.insert(key.clone(), file);
        let text = self.sources.get(file).text.clone();
        let Some(doc) = self.parse_kdl(file, &text) else {
            if !self.stack.is_empty() {
                self.incomplete = true;
            }
            return None;
        };
        let parsed = parse::parse_document(&doc, file, &mut self.diags);
        let is_root = self.stack.is_empty();
        self.stack.push((key, None));
        for import in &parsed.imports {
            self.import(file, import);
        }
        self.stack.pop();
        if !is_root && let Some(name) = &parsed.project_name {
            self.diags
                .error(
                    Code::MisplacedNode,
                    name.span,
                    "`project` is only allowed in the root file",
                )
                .help("remove it from the imported module; the importing project names everything");
        }
        let items = parsed.items;
        self.project.images.extend(items.images);
        self.project.networks.extend(items.networks);
        self.project.containers.extend(items.containers);
        self.project.links.extend(items.links);
        self.project.tests.extend(items.tests);
        self.project.hosts.extend(items.hosts);
        self.project.underlay.extend(items.underlay);
        parsed.project_name
    }

    fn import(&mut self, from_file: FileId, import: &Spanned<String>) {
        let target = import.value.as_str();
        let (key, name, path, text) = if let Some(module) = target.strip_prefix("std:") {
            let Some(text) = stdlib::module(module) else {
                self.diags
                    .error(
                        Code::ImportNotFound,
                        import.span,
                        format!("no stdlib module `{module}`"),
                    )
                    .help({
                        let known: Vec<String> =
                            stdlib::names().map(|n| format!("std:{n}")).collect();
                        did_you_mean(target, known.iter().map(String::as_str)).unwrap_or_else(
                            || {
                                format!(
                                    "the stdlib has {}",
                                    known
                                        .iter()
                                        .map(|n| format!("`{n}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            },
                        )
                    });
                self.incomplete = true;
                return;
            };
            (
                FileKey::Std(module.to_string()),
                target.to_string(),
                None,
                text.to_string(),
            )
        } else {
            let base = self
                .sources
                .get(from_file)
                .path
                .as_ref()
                .and_then(|p| p.parent().map(Path::to_path_buf));
            let Some(base) = base else {
                self.diags
                    .error(
                        Code::ImportNotFound,
                        import.span,
                        format!("cannot import `{target}` from here"),
                    )
                    .label("this file has no directory to resolve relative imports against")
                    .help("only `std:` modules can be imported from a stdlib module");
                self.incomplete = true;
                return;
            };
            let path = base.join(target);
            let key = FileKey::Path(normalize(&path));
            if self.stack.iter().any(|(k, _)| *k == key) || self.loaded.contains_key(&key) {
                (key, target.to_string(), Some(path), String::new())
            } else {
                match self.fs.read_to_string(&path) {
                    Ok(text) => (key, target.to_string(), Some(path), text),
                    Err(err) => {
                        let reason = if err.kind() == io::ErrorKind::NotFound {
                            "no such file".to_string()
                        } else {
                            syntax::lowercase_first(&err.to_string())
                        };
                        self.diags
                            .error(Code::ImportNotFound, import.span, format!("cannot import `{target}`"))
                            .label(reason)
                            .help("relative imports are resolved from the directory of the importing file");
                        self.incomplete = true;
                        return;
                    }
                }
            }
        };
        if let Some(position) = self.stack.iter().position(|(k, _)| *k == key) {
            self.import_cycle(position, import, from_file);
            return;
        }
        if self.loaded.contains_key(&key) {
            return; // Already merged through another import.
        }
        let display = match &key {
            FileKey::Path(p) => path.map_or_else(
                || name.clone(),
                |_| relative_display(self.sources.get(from_file).name.as_str(), target, p),
            ),
            _ => name.clone(),
        };
        let file = self.sources.add(
            display,
            match &key {
                FileKey::Path(p) => Some(p.clone()),
                _ => None,
            },
            &text,
        );
        if let Some(top) = self.stack.last_mut() {
            top.1 = Some(import.span);
        }
        self.load(file, key);
        if let Some(top) = self.stack.last_mut() {
            top.1 = None;
        }
    }
}

impl Loader<'_> {
    /// Reads kiln.lock beside the root file, if there is one.
    fn load_lock(&mut self, root: Option<&Path>) -> lock::Lock {
        let Some(root) = root else {
            return lock::Lock::default();
        };
        let path = match root.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(lock::LOCK_FILE),
            _ => PathBuf::from(lock::LOCK_FILE),
        };
        let Ok(text) = self.fs.read_to_string(&path) else {
            return lock::Lock::default();
        };
        let file = self.sources.add(lock::LOCK_FILE, Some(path), &text);
        match self.parse_kdl(file, &text) {
            Some(doc) => lock::parse(&doc, file, &mut self.diags),
            None => lock::Lock {
                file: Some(file),
                entries: Vec::new(),
            },
        }
    }

    /// Parses one file's KDL with kiln's own parser, which decides what is valid (KDL 2.0.0
    /// exactly). Only when it rejects the text does the `kdl` crate run, to word the syntax
    /// error; where `kdl` accepts what the spec forbids (a DEL character, `#"""x"""#`), or
    /// the mistake is a disallowed character, kiln's parser words it.
    fn parse_kdl(&mut self, file: FileId, text: &str) -> Option<kdlv2::Document> {
        let ours = match kdlv2::parse(text) {
            Ok(doc) => return Some(doc),
            Err(ours) => ours,
        };
        match kdl::KdlDocument::parse_v2(text) {
            Err(err) if !ours.disallowed_character() => {
                syntax::report(&mut self.diags, file, text, &err);
            }
            _ => syntax::report_spec(&mut self.diags, file, text, &ours),
        }
        None
    }

    /// `import` closes a cycle that starts at `self.stack[position]`.
    fn import_cycle(&mut self, position: usize, import: &Spanned<String>, from_file: FileId) {
        let name_of = |loader: &Self, key: &FileKey| {
            loader
                .loaded
                .get(key)
                .map_or_else(String::new, |f| loader.sources.get(*f).name.clone())
        };
        let chain: Vec<String> = self.stack[position..]
            .iter()
            .map(|(k, _)| name_of(self, k))
            .collect();
        let importer = self.sources.get(from_file).name.clone();
        let edges: Vec<(Span, String, String)> = self.stack[position..]
            .windows(2)
            .filter_map(|w| {
                w[0].1
                    .map(|span| (span, name_of(self, &w[0].0), name_of(self, &w[1].0)))
            })
            .collect();
        let (message, label) = if chain.len() == 1 {
            (
                format!("`{importer}` imports itself"),
                "this import names the file it is in".to_string(),
            )
        } else {
            let mut path = chain.clone();
            path.push(chain[0].clone());
            (
                format!("import cycle: {}", path.join(" → ")),
                format!("`{importer}` imports `{}` here", chain[0]),
            )
        };
        let mut builder = self
            .diags
            .error(Code::ImportCycle, import.span, message)
            .label(label);
        for (span, from, to) in edges {
            builder = builder.related(span, format!("`{from}` imports `{to}` here"));
        }
        builder.help(if chain.len() == 1 {
            "remove this import"
        } else {
            "files cannot import each other in a cycle: move the shared declarations into a file both import"
        });
    }
}

/// How an imported file is named in diagnostics: relative to the importing file's name.
fn relative_display(importer: &str, target: &str, absolute: &Path) -> String {
    if Path::new(importer).is_absolute() {
        return absolute.display().to_string();
    }
    let dir = Path::new(importer).parent().unwrap_or(Path::new(""));
    let joined = dir.join(target);
    let text = joined.display().to_string();
    text.strip_prefix("./").map_or(text.clone(), str::to_string)
}
