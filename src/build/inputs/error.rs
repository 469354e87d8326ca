//! The one error type of `build::inputs`: every way finding a step's input files can fail,
//! each naming the path it is about.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InputError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("host path {path} does not exist")]
    #[diagnostic(help("{missing} is missing on the host"))]
    NotFound { path: String, missing: String },

    #[error("host path {path} has a leading component that is not a directory")]
    #[diagnostic(help("{component} is not a directory on the host"))]
    NotADirectory { path: String, component: String },

    #[error("too many levels of symbolic links resolving {path}")]
    #[diagnostic(help("the symbolic links under it form a loop (limit: 40)"))]
    SymlinkLoop { path: String },

    #[error("{path} is neither an ELF executable nor a script")]
    #[diagnostic(help("use host-path to copy files that are not executables"))]
    NotExecutable { path: String },

    #[error("{path} is not a valid ELF file")]
    BadElf {
        path: String,
        #[source]
        source: goblin::error::Error,
    },

    #[error("shared library {library} needed by {needed_by} was not found")]
    #[diagnostic(help("the library was not found in: {searched}"))]
    LibraryNotFound {
        library: String,
        needed_by: String,
        searched: String,
    },

    #[error("the interpreter of script {script} ({interpreter}) was not found")]
    #[diagnostic(help(
        "give the interpreter by its absolute path, and add it to host-binary as well"
    ))]
    InterpreterNotFound { script: String, interpreter: String },

    #[error("{path} is a {kind}, which an image layer cannot hold")]
    #[diagnostic(help("exclude it (for a copy: in .kilnignore) or copy its parent selectively"))]
    UnsupportedFileType { path: String, kind: &'static str },

    #[error("path {} is not valid UTF-8", path.display())]
    NotUtf8 { path: PathBuf },

    #[error("host path {path} is not absolute")]
    #[diagnostic(help("host-binary and host-path take absolute paths, e.g. \"/bin/sh\""))]
    NotAbsolute { path: String },

    #[error("cannot open the build context {}", path.display())]
    BadContext {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot parse {}", path.display())]
    BadIgnoreFile {
        path: PathBuf,
        #[source]
        source: ignore::Error,
    },

    #[error("copy source {path} is outside the build context")]
    #[diagnostic(help(
        "copy sources are relative to the project directory; `..` may not leave it"
    ))]
    EscapesContext { path: String },

    #[error("symbolic link {link} points outside the build context (to {target})")]
    #[diagnostic(help(
        "make the link relative and keep its target inside the project directory, or exclude it in .kilnignore"
    ))]
    SymlinkEscapes { link: String, target: String },

    #[error("copy source {path} does not exist in the build context")]
    CopySourceNotFound { path: String },

    #[error("copy source is excluded by .kilnignore: {path}")]
    #[diagnostic(help("remove the matching pattern from .kilnignore, or re-include it with `!`"))]
    Excluded { path: String },

    #[error("copy pattern {pattern} matches nothing in the build context")]
    NoMatch { pattern: String },

    #[error("copy pattern {pattern} is not a valid glob")]
    BadGlob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
}

/// Builds the closure that turns an `io::Error` into [`InputError::Io`] for `path`.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(io::Error) -> InputError + '_ {
    move |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    }
}
