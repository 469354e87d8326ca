//! Source files and spans.
//!
//! Owns the text of every file a project is read from (the root file, imported files, stdlib
//! modules) and the [`Span`] type that points into them. Every node, argument and property of
//! the model carries a span, so any later stage can point back at kiln.kdl. This module does
//! no I/O: files arrive as strings.

use std::path::PathBuf;
use std::sync::Arc;

/// Index of a file in [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub(crate) u32);

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub file: FileId,
    pub offset: u32,
    pub len: u32,
}

impl Span {
    pub fn new(file: FileId, offset: usize, len: usize) -> Self {
        Span {
            file,
            offset: u32::try_from(offset).unwrap_or(u32::MAX),
            len: u32::try_from(len).unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn from_miette(file: FileId, span: miette::SourceSpan) -> Self {
        Span::new(file, span.offset(), span.len())
    }

    /// The byte just past the end of the span.
    pub fn end(&self) -> usize {
        self.offset as usize + self.len as usize
    }

    /// An empty span at the end of this one (where a missing argument would go).
    pub fn at_end(&self) -> Span {
        Span::new(self.file, self.end(), 0)
    }
}

/// One source file: its display name (`kiln.kdl`, `std:toolbox`, `lib/net.kdl`), where it
/// lives on disk (stdlib modules live in the binary) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub path: Option<PathBuf>,
    pub text: Arc<str>,
}

/// Every file read while loading a project, indexed by [`FileId`].
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl Sources {
    pub fn add(&mut self, name: impl Into<String>, path: Option<PathBuf>, text: &str) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).expect("fewer than 2^32 source files"));
        self.files.push(SourceFile {
            name: name.into(),
            path,
            text: Arc::from(text),
        });
        id
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    /// The text a span covers (empty if the span is out of range).
    pub fn slice(&self, span: Span) -> &str {
        let text = &self.get(span.file).text;
        text.get(span.offset as usize..span.end()).unwrap_or("")
    }

    /// Line and column of the start of `span`.
    pub fn line_col(&self, span: Span) -> LineCol {
        let text = &self.get(span.file).text;
        let mut offset = (span.offset as usize).min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        LineCol { line, column }
    }
}

/// A value together with the span it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            span: self.span,
        }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// The resolved model prints values only: spans are for diagnostics.
impl<T: serde::Serialize> serde::Serialize for Spanned<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_chars() {
        let mut sources = Sources::default();
        let id = sources.add("x.kdl", None, "ab\né x\n");
        assert_eq!(
            sources.line_col(Span::new(id, 0, 1)),
            LineCol { line: 1, column: 1 }
        );
        // "x" is after a two-byte character: column 3, not 4.
        assert_eq!(
            sources.line_col(Span::new(id, 6, 1)),
            LineCol { line: 2, column: 3 }
        );
        assert_eq!(sources.slice(Span::new(id, 6, 1)), "x");
    }
}
