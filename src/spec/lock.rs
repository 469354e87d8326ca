//! `kiln.lock`: the registry images a project uses, pinned by digest, beside kiln.kdl.
//!
//! Owns the lock's text both ways: reading it (KDL, one `image "REFERENCE"
//! digest="sha256:…"` node per pinned reference, each value with its span for diagnostics)
//! and writing it (sorted by reference, one line each, so two resolutions of the same
//! images give the same bytes and a change is one line in a diff). References are stored
//! in their full spelling (`docker.io/library/debian:12`), whatever kiln.kdl wrote. Pure:
//! the command line reads and writes the file.

use std::collections::BTreeMap;

use super::diag::{Code, Diagnostics};
use super::kdlv2;
use super::model::{FromRef, Name, Project, Step};
use super::reader::Node;
use super::source::{FileId, Spanned};
use crate::digest::Digest;
use crate::reference::Reference;

/// The lock's file name, beside the project file.
pub const LOCK_FILE: &str = "kiln.lock";

/// A parsed lock: its entries as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lock {
    /// The file it was read from (`None`: there is none).
    pub file: Option<FileId>,
    pub entries: Vec<LockEntry>,
}

/// One pin: a reference (full spelling) and the digest it resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct LockEntry {
    pub reference: Spanned<String>,
    pub digest: Spanned<Digest>,
}

impl Lock {
    /// The pin of a reference (given in any spelling that normalises to it).
    pub fn get(&self, reference: &Reference) -> Option<&LockEntry> {
        let full = reference.to_string();
        self.entries.iter().find(|e| e.reference.value == full)
    }

    /// The pins as a sorted map.
    pub fn pins(&self) -> BTreeMap<String, Digest> {
        self.entries
            .iter()
            .map(|e| (e.reference.value.clone(), e.digest.value.clone()))
            .collect()
    }
}

/// The text of a lock holding `pins`.
pub fn render(pins: &BTreeMap<String, Digest>) -> String {
    let mut out = String::from(
        "// kiln.lock: the registry images of kiln.kdl, pinned by digest. Written by kiln;\n\
         // commit it. `kiln lock` (or `kiln build --update`) resolves the tags again.\n",
    );
    for (reference, digest) in pins {
        out.push_str(&format!(
            "image {} digest=\"{digest}\"\n",
            kdl_string(reference)
        ));
    }
    out
}

fn kdl_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const USAGE: &str = "image \"REGISTRY/NAME:TAG\" digest=\"sha256:…\"";

/// Reads a lock's parsed KDL; problems go to `diags` with their spans.
pub(crate) fn parse(doc: &kdlv2::Document, file: FileId, diags: &mut Diagnostics) -> Lock {
    let mut lock = Lock {
        file: Some(file),
        entries: Vec::new(),
    };
    for node in doc.nodes() {
        if node.name().value() != "image" {
            let span = super::source::Span::from_miette(file, node.name().span());
            diags
                .error(
                    Code::InvalidLock,
                    span,
                    format!("unknown node `{}` in kiln.lock", node.name().value()),
                )
                .help(format!(
                    "kiln.lock holds only `{USAGE}` lines; `kiln lock` rewrites it"
                ));
            continue;
        }
        let mut n = Node::new(node, file, diags, USAGE);
        let reference = n.str_arg(diags, 0, "a reference");
        let digest = n.required_str(diags, "digest");
        n.max_args(diags, 1);
        n.no_children(diags);
        n.finish(diags);
        let (Some(reference), Some(digest)) = (reference, digest) else {
            continue;
        };
        let parsed = match Reference::parse(&reference.value) {
            Ok(r) if r.digest.is_none() && r.to_string() == reference.value => r,
            _ => {
                diags
                    .error(
                        Code::InvalidLock,
                        reference.span,
                        format!("`{}` is not a full image reference with a tag", reference.value),
                    )
                    .help("kiln writes references like `docker.io/library/debian:12`; `kiln lock` rewrites the file");
                continue;
            }
        };
        let Ok(value) = digest.value.parse::<Digest>() else {
            diags
                .error(
                    Code::InvalidLock,
                    digest.span,
                    format!("`{}` is not a sha256 digest", digest.value),
                )
                .help("`kiln lock` resolves the reference again");
            continue;
        };
        if let Some(first) = lock.get(&parsed) {
            diags
                .error(
                    Code::InvalidLock,
                    reference.span,
                    format!("`{}` is pinned twice", reference.value),
                )
                .related(first.reference.span, "first pinned here")
                .help("remove one of the lines, or run `kiln lock`");
            continue;
        }
        lock.entries.push(LockEntry {
            reference,
            digest: Spanned::new(value, digest.span),
        });
    }
    lock
}

/// Every image name the project uses that is not one of its own images and is written as
/// a registry reference (with `:`, `/` or `@`): `from`, `copy … from=` and `image=`.
pub fn registry_names(project: &Project) -> Vec<Name> {
    let own: std::collections::BTreeSet<&str> = project
        .images
        .iter()
        .map(|i| i.name.value.as_str())
        .collect();
    let mut out = Vec::new();
    for image in &project.images {
        if let Some(from) = &image.from
            && let FromRef::Image(base) = &from.value
        {
            out.push(Name::new(base.clone(), from.span));
        }
        for step in &image.steps {
            if let Step::Copy {
                from: Some(source), ..
            } = &step.value
            {
                out.push(source.clone());
            }
        }
    }
    for c in &project.containers {
        out.push(c.image.clone());
    }
    out.retain(|n| !own.contains(n.value.as_str()) && n.value.contains([':', '/', '@']));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::source::Sources;

    #[test]
    fn a_rendered_lock_reads_back_and_is_sorted() {
        let a: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let b: Digest = format!("sha256:{}", "b".repeat(64)).parse().unwrap();
        let mut pins = BTreeMap::new();
        pins.insert("quay.io/x/y:1".to_string(), b.clone());
        pins.insert("docker.io/library/debian:12".to_string(), a.clone());
        let text = render(&pins);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("image")).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("debian"), "sorted: {text}");
        let mut sources = Sources::default();
        let file = sources.add("kiln.lock", None, &text);
        let doc = kdlv2::parse(&text).unwrap();
        let mut diags = Diagnostics::default();
        let lock = parse(&doc, file, &mut diags);
        assert!(diags.is_empty());
        assert_eq!(lock.pins(), pins);
        let debian = Reference::parse("debian:12").unwrap();
        assert_eq!(lock.get(&debian).unwrap().digest.value, a);
        assert_eq!(render(&lock.pins()), text, "the same pins, the same bytes");
    }

    #[test]
    fn a_broken_lock_says_where() {
        let text = "image \"debian\" digest=\"sha256:x\"\nfrob\nimage \"docker.io/library/a:1\" digest=\"nope\"\n";
        let mut sources = Sources::default();
        let file = sources.add("kiln.lock", None, text);
        let doc = kdlv2::parse(text).unwrap();
        let mut diags = Diagnostics::default();
        let lock = parse(&doc, file, &mut diags);
        assert!(lock.entries.is_empty());
        let items = diags.into_sorted();
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(items.iter().all(|d| d.code == Code::InvalidLock));
    }
}
