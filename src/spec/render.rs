//! Rendering diagnostics: rustc-style text with source snippets (through miette) and the
//! JSON that editors and CI consume.
//!
//! Owns the two output formats of a diagnostic and nothing else; the binary decides colour
//! and width. Labels in another file than the primary span (a duplicate declared in an
//! imported module) are shown as a nested note with that file's name and text.

use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;

use super::diag::{Diagnostic, Severity};
use super::source::{FileId, Sources, Span};

/// How text output looks.
#[derive(Debug, Clone, Copy)]
pub struct TextStyle {
    pub color: bool,
    pub width: usize,
}

impl Default for TextStyle {
    fn default() -> Self {
        TextStyle {
            color: false,
            width: 100,
        }
    }
}

/// A diagnostic (or one of its notes) in the shape miette renders.
#[derive(Debug)]
struct View {
    message: String,
    code: Option<String>,
    severity: miette::Severity,
    help: Option<String>,
    source: Option<NamedSource<Arc<str>>>,
    labels: Vec<LabeledSpan>,
    notes: Vec<View>,
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for View {}

impl miette::Diagnostic for View {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code
            .as_ref()
            .map(|c| Box::new(c) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.notes.is_empty() {
            return None;
        }
        Some(Box::new(
            self.notes.iter().map(|n| n as &dyn miette::Diagnostic),
        ))
    }
}

fn named_source(sources: &Sources, file: FileId) -> NamedSource<Arc<str>> {
    let f = sources.get(file);
    NamedSource::new(f.name.clone(), f.text.clone())
}

fn miette_span(span: Span) -> SourceSpan {
    SourceSpan::new((span.offset as usize).into(), span.len as usize)
}

fn view(d: &Diagnostic, sources: &Sources) -> View {
    let mut labels = vec![LabeledSpan::new_primary_with_span(
        d.label.clone(),
        miette_span(d.span),
    )];
    let mut notes = Vec::new();
    for related in &d.related {
        if related.span.file == d.span.file {
            labels.push(LabeledSpan::new_with_span(
                Some(related.message.clone()),
                miette_span(related.span),
            ));
        } else {
            notes.push(View {
                message: related.message.clone(),
                code: None,
                severity: miette::Severity::Advice,
                help: None,
                source: Some(named_source(sources, related.span.file)),
                labels: vec![LabeledSpan::new_primary_with_span(
                    None,
                    miette_span(related.span),
                )],
                notes: Vec::new(),
            });
        }
    }
    View {
        message: d.message.clone(),
        code: Some(d.code.as_str()),
        severity: match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        },
        help: d.help.clone(),
        source: Some(named_source(sources, d.span.file)),
        labels,
        notes,
    }
}

/// One diagnostic as text, with source snippets.
pub fn text(d: &Diagnostic, sources: &Sources, style: TextStyle) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false)
        .with_urls(false);
    let mut out = String::new();
    if handler.render_report(&mut out, &view(d, sources)).is_err() {
        // Rendering into a String cannot fail short of a bug in miette; keep the message.
        out = format!("{}: {}\n", d.code, d.message);
    }
    out
}

/// Every diagnostic as text, in order, separated by blank lines.
pub fn text_all(diagnostics: &[Diagnostic], sources: &Sources, style: TextStyle) -> String {
    diagnostics
        .iter()
        .map(|d| text(d, sources, style))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Serialize)]
pub struct JsonLabel {
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub length: usize,
    pub help: Option<String>,
    pub labels: Vec<JsonLabel>,
}

/// The JSON shape of `kiln check --format json` (1-based line and column, columns in
/// characters).
pub fn json(d: &Diagnostic, sources: &Sources) -> JsonDiagnostic {
    let at = sources.line_col(d.span);
    JsonDiagnostic {
        code: d.code.as_str(),
        severity: d.severity,
        message: d.message.clone(),
        file: sources.get(d.span.file).name.clone(),
        line: at.line,
        column: at.column,
        length: sources.slice(d.span).chars().count(),
        help: d.help.clone(),
        labels: d
            .label
            .iter()
            .map(|l| (d.span, l.clone()))
            .chain(d.related.iter().map(|r| (r.span, r.message.clone())))
            .map(|(span, message)| {
                let at = sources.line_col(span);
                JsonLabel {
                    message,
                    file: sources.get(span.file).name.clone(),
                    line: at.line,
                    column: at.column,
                }
            })
            .collect(),
    }
}
