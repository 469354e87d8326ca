//! Differential tests: this parser against the `kdl` crate (through [`convert::from_kdl`]), on
//! every KDL text in the repository and on generated documents and mutations of them.
//!
//! The property checked everywhere: when this parser accepts a text, `kdl` accepts it with an
//! identical tree (names, types, values, every span). On the repository's files and on
//! generated valid documents both must also accept. On mutations, `kdl` may accept what this
//! parser rejects only in the cases listed in the module docs (see [`known_stricter`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kdl::KdlValue;
use miette::SourceSpan;
use proptest::prelude::*;

use super::{Document, Entry, Ident, Node, ParseError, convert, parse};

// ---------------------------------------------------------------------------------------------
// Tree dumps: one line per item, every span, floats by their bits.

fn sp(s: SourceSpan) -> String {
    format!("{}+{}", s.offset(), s.len())
}

fn ident(out: &mut String, what: &str, id: Option<&Ident>) {
    if let Some(id) = id {
        let _ = write!(out, " {what}={:?}@{}", id.value(), sp(id.span()));
    }
}

fn show_value(v: &KdlValue) -> String {
    match v {
        KdlValue::Float(f) if f.is_nan() => "float(nan)".to_owned(),
        KdlValue::Float(f) => format!("float({f:?}/{:x})", f.to_bits()),
        other => format!("{other:?}"),
    }
}

fn dump_entry(out: &mut String, depth: usize, e: &Entry) {
    let _ = write!(out, "{:depth$}entry {}", "", sp(e.span()));
    ident(out, "key", e.name());
    ident(out, "ty", e.ty());
    let _ = writeln!(
        out,
        " {} value@{}",
        show_value(e.value()),
        sp(e.value_span())
    );
}

fn dump_node(out: &mut String, depth: usize, n: &Node) {
    let _ = write!(out, "{:depth$}node {}", "", sp(n.span()));
    ident(out, "name", Some(n.name()));
    ident(out, "ty", n.ty());
    if let Some(open) = n.children_open() {
        let _ = write!(out, " {{@{}", sp(open));
    }
    out.push('\n');
    for e in n.entries() {
        dump_entry(out, depth + 1, e);
    }
    if let Some(children) = n.children() {
        dump_doc(out, depth + 1, children);
    }
}

fn dump_doc(out: &mut String, depth: usize, d: &Document) {
    let _ = writeln!(out, "{:depth$}doc {}", "", sp(d.span()));
    for n in d.nodes() {
        dump_node(out, depth + 1, n);
    }
}

fn dump(d: &Document) -> String {
    let mut out = String::new();
    dump_doc(&mut out, 0, d);
    out
}

/// What `kdl` makes of a text: its tree dump, or None.
fn kdl_dump(text: &str) -> Option<String> {
    // `kdl`'s parser recurses deeply (huge frames in debug builds): give it room.
    let text = text.to_owned();
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            kdl::KdlDocument::parse_v2(&text)
                .ok()
                .map(|d| dump(&convert::from_kdl(&d)))
        })
        .expect("thread")
        .join()
        .expect("kdl does not panic")
}

/// What this parser makes of a text.
fn our_dump(text: &str) -> Result<String, ParseError> {
    parse(text).map(|d| dump(&d))
}

/// Texts `kdl` accepts and this parser rejects on purpose: it follows the spec there (see
/// the module docs), given the error this parser reported.
fn known_stricter(text: &str, error: &ParseError) -> bool {
    let b = text.as_bytes();
    let uppercase_radix = b.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'0'
            && matches!(w[1], b'X' | b'O' | b'B')
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
    });
    let bare_minus_inf = text
        .match_indices("-inf")
        .any(|(i, _)| i == 0 || b[i - 1] != b'#');
    // `kdl` takes `/-` with no node-space before it as a slash-dashed *node* in the trailing
    // space of a block (`a #null/- b`, `a {}/- b`).
    let glued_slashdash =
        text[error.offset..].starts_with("/-") || text[..error.offset].trim_end().ends_with("/-");
    // `kdl` needs no terminator after a slash-dashed node (`/-a {}b` is the node `b`).
    let unterminated_dashed_node = error.message == super::parser::AFTER_DASHED_NODE;
    // `kdl` ends a keyword at its last letter (`#true.`); this parser reads the whole word.
    let glued_keyword = ["#true", "#false", "#null", "#inf", "#-inf", "#nan"]
        .iter()
        .any(|k| text[error.offset..].starts_with(k));
    super::chars::first_disallowed(b).is_some()
        || unterminated_dashed_node
        || glued_keyword
        || uppercase_radix
        || bare_minus_inf
        || error.message == super::scalar::RAW_LOOKS_MULTILINE
        || glued_slashdash
}

/// Texts the spec allows and `kdl` 6.5 rejects, which this parser accepts (see the module
/// docs): node-space after a children block before the terminator (`a {} ;`, `a {}  ⏎ b`),
/// `;` after a slash-dashed node (`/- a; b`), and `/-` with no node-space before it
/// (`a 1/-2`, allowed since kdl-org/kdl#499). Recognised by what the text contains: a
/// generated or mutated document with one of these shapes is not compared.
fn known_laxer(text: &str) -> bool {
    let b = text.as_bytes();
    let space_after_block = b.iter().enumerate().any(|(i, &c)| {
        c == b'}'
            && (matches!(b.get(i + 1), Some(b' ' | b'\t' | b'\\'))
                || b[i + 1..].starts_with(b"/*")
                || super::chars::space_len(b, i + 1) != 0)
    });
    let dashed_then_semicolon = text.contains("/-") && text.contains(';');
    let glued_slashdash = text.match_indices("/-").any(|(i, _)| {
        i > 0
            && !matches!(b[i - 1], b' ' | b'\t' | b'\n' | b'\r' | b'/')
            && !text[..i].ends_with("*/")
    });
    space_after_block || dashed_then_semicolon || glued_slashdash
}

/// Both parsers must accept `text` and agree exactly.
fn assert_same(what: &str, text: &str) {
    let theirs = kdl_dump(text);
    let ours = our_dump(text);
    match (theirs, ours) {
        (Some(t), Ok(o)) => assert_eq!(o, t, "{what}: trees differ for\n{text}"),
        (None, Err(_)) => panic!("{what}: neither parser accepts\n{text}"),
        (Some(_), Err(e)) => panic!("{what}: kdl accepts, kdlv2 rejects ({e})\n{text}"),
        (None, Ok(_)) => panic!("{what}: kdlv2 accepts, kdl rejects\n{text}"),
    }
}

/// Whatever this parser accepts, `kdl` accepts with the same tree, but for [`known_laxer`]
/// texts; and what it rejects, `kdl` rejects too, but for [`known_stricter`] texts.
fn assert_sound(text: &str) -> Result<(), TestCaseError> {
    let theirs = kdl_dump(text);
    let ours = our_dump(text);
    match (theirs, ours) {
        (Some(t), Ok(o)) => prop_assert_eq!(o, t, "trees differ for {:?}", text),
        (None, Ok(o)) => prop_assert!(
            known_laxer(text),
            "kdlv2 accepts, kdl rejects {:?}\n{}",
            text,
            o
        ),
        (Some(_), Err(e)) => prop_assert!(
            known_stricter(text, &e),
            "kdl accepts, kdlv2 rejects ({}) {:?}",
            e,
            text
        ),
        (None, Err(_)) => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The repository's KDL.

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// The ```kdl blocks of a markdown file.
fn kdl_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let fence = line.trim_start();
        match &mut current {
            None if fence.starts_with("```kdl") => current = Some(String::new()),
            Some(block) if fence.starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// Every KDL text of the repository, with where it came from.
fn corpus() -> Vec<(String, String)> {
    let root = repo();
    let mut files = Vec::new();
    for dir in ["examples", "stdlib", "tests/diagnostics"] {
        walk(&root.join(dir), "kdl", &mut files);
    }
    let mut texts: Vec<(String, String)> = files
        .iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(p).expect("readable"),
            )
        })
        .collect();
    let mut docs = vec![root.join("README.md")];
    walk(&root.join("book/src"), "md", &mut docs);
    for path in docs {
        let text = std::fs::read_to_string(&path).expect("readable");
        for (i, block) in kdl_blocks(&text).into_iter().enumerate() {
            texts.push((format!("{} block {i}", path.display()), block));
        }
    }
    texts
}

#[test]
fn the_corpus_is_found() {
    let texts = corpus();
    assert!(texts.len() > 100, "only {} texts", texts.len());
    assert!(texts.iter().any(|(w, _)| w.contains("stdlib")));
    assert!(texts.iter().any(|(w, _)| w.contains("book")));
}

#[test]
fn every_repository_text_parses_as_with_kdl() {
    let mut rejected = 0;
    for (what, text) in corpus() {
        match kdl_dump(&text) {
            Some(theirs) => match our_dump(&text) {
                Ok(ours) => assert_eq!(ours, theirs, "{what}: trees differ"),
                // Syntax-error fixtures of what only the spec forbids.
                Err(e) if what.contains("tests/diagnostics") && known_stricter(&text, &e) => {
                    rejected += 1;
                }
                Err(e) => panic!("{what}: kdl accepts, kdlv2 rejects: {e}"),
            },
            None => {
                rejected += 1;
                assert!(
                    our_dump(&text).is_err(),
                    "{what}: kdl rejects, kdlv2 accepts"
                );
            }
        }
    }
    // tests/diagnostics has syntax-error fixtures: both sides are exercised.
    assert!(rejected > 0);
}

// ---------------------------------------------------------------------------------------------
// Hand-picked cases (each one a past or likely mistake).

#[test]
fn hand_picked_valid_documents_agree() {
    let cases = [
        "",
        "a",
        "a\n",
        "  \n// c\n/* b */ a",
        "a 1 2 3",
        "a k=1 k = 2 \"q\"=(t)3 k=(t) 4",
        "(t)a (u)1 k=(v)\"s\"",
        "( t )a",
        "a {}",
        "a{}",
        "a \"x\"{}",
        "a {\n  b\n  /- c\n}",
        "a {\n /-b\n}",
        "a {b}",
        "a { b; c; }",
        "a {} // c",
        "a {}//c\nb",
        "a {};b",
        "a {}  ",
        "p {\n a {}  \n}",
        "a /-{} {}",
        "a {} /-{} /-{}",
        "a{}/-{}",
        "a /- {}\nb",
        "a 1 /-2 {}",
        "a /-x=1 {}",
        "a x=1 /-y=2\nb",
        "a /-\n  1 2",
        "/- a\nb",
        "/- a {}\nb",
        "/-a {}  \nb",
        "a\n/-b",
        "a \\\n  b",
        "a \\ // c\n 1",
        "a\\\n1",
        "a \\",
        "\\",
        "a /*c*/ 1",
        "a 1 /*c*/\nb",
        "a /* /* */ */ b",
        "a -x +.x .x -- --1 - +",
        "a 1e5 1.5e-3 +1_000 1_ -0 -0.0 1E+5 0x1f -0xFF 0o17 0b101_1",
        "a 170141183460469231731687303715884105727",
        "a #true #false #null #inf #-inf #nan",
        "a \"\\u{10FFFF}\" \"\\s\\    x\" \"\\n\\t\\r\\\\\\\"\\b\\f\"",
        "a \"x\\\n   y\"",
        "a #\"raw \\n\"# ##\"a\"#b\"## #\"\"#",
        "a \"\"\"\n  x\n  \"\"\"",
        "a \"\"\"\n    foo\n  bar\n\n  \"\"\"",
        "a \"\"\"\n  \"\"\"",
        "a #\"\"\"\n  x \"\" y\n  \"\"\"#",
        "a \"\"\"\r\n  x\r\n  \"\"\"",
        "a\u{85}b",
        "a\u{a0}b",
        "a b\u{2028}c",
        "\u{feff}a",
        "é ü=\"ß\"",
        "\"quoted name\" #\"raw name\"#=1",
    ];
    for text in cases {
        assert_same("hand-picked", text);
    }
}

#[test]
fn hand_picked_invalid_documents_are_rejected_by_both() {
    let cases = [
        "a {}{}",
        "a {} 1",
        "a 1 /-{} 2",
        "a #true=1",
        "a (t)k=1",
        "a 1.",
        "a 1e",
        "a 1._5",
        "a 0x_1",
        "a 0b102",
        "a 0o8",
        "a 1.5e5.5",
        "a .5",
        "a -.5",
        "a .\"x\"",
        "a x\"y\"",
        "a inf",
        "a true",
        "a /-",
        "a /* *",
        "a \"\\\"\"\"",
        "a #\"\"\"#",
        "a \"\"\"x\"\"\"",
        "a \"\"\"\n  x\"\"\"",
        "a \"\"\"\n x\n  \"\"\"",
        "a \"\"\"\nx\\\n\n\"\"\"",
        "a \"\\q\"",
        "a \"\\u{D800}\"",
        "a \"\\u{110000}\"",
        "a \"x\ny\"",
        "{}",
        "}",
        "a }",
        "a {",
        "a \u{1}",
        "a \u{200e}",
        "a \u{feff}",
        "a 1 170141183460469231731687303715884105728",
        "a 1234567890123456789012345678901234567890.5",
    ];
    for text in cases {
        assert!(kdl_dump(text).is_none(), "kdl accepts {text:?}");
        assert!(parse(text).is_err(), "kdlv2 accepts {text:?}");
    }
}

#[test]
fn laxer_than_kdl_where_the_spec_says_so() {
    let cases = [
        ("a 1/-2", "a 1"),
        ("a \"s\"/-x=1 {}/-{}", "a \"s\""),
        ("a {} ;", "a {}"),
        ("a {}  \nb", "a {}\nb"),
        ("a; /- b; c", "a; c"),
        ("/- a;\nb", "b"),
    ];
    for (text, same_as) in cases {
        assert!(kdl_dump(text).is_none(), "kdl accepts {text:?}");
        assert!(known_laxer(text), "{text:?}");
        let ours = parse(text).unwrap_or_else(|e| panic!("kdlv2 rejects {text:?}: {e}"));
        let want = parse(same_as).expect("valid");
        let names = |d: &Document| {
            d.nodes()
                .iter()
                .map(|n| (n.name().value().to_owned(), n.entries().len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&ours), names(&want), "{text:?}");
    }
}

#[test]
fn stricter_than_kdl_where_the_spec_says_so() {
    for text in ["a \u{7f}", "a 0X1F", "a #\"\"\"\"#", "a -inf"] {
        assert!(kdl_dump(text).is_some(), "kdl rejects {text:?}");
        assert!(parse(text).is_err(), "kdlv2 accepts {text:?}");
        assert!(known_stricter(text, &parse(text).expect_err("rejected")));
    }
}

#[test]
fn errors_carry_an_offset_into_the_text() {
    let err = parse("a {\n  b \"open\n}").expect_err("unterminated");
    assert!(err.offset <= 15, "{err}");
    let err = parse("a 1 2 }").expect_err("stray brace");
    assert_eq!(err.offset, 6);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let text = "a {".repeat(10_000);
    assert!(parse(&text).is_err());
}

#[test]
fn children_open_points_at_the_real_block() {
    let doc = parse("a 1 /-2 /-{ x } { y }").expect("valid");
    let node = &doc.nodes()[0];
    assert_eq!(node.children_open().map(|s| s.offset()), Some(16));
    assert_eq!(
        node.children().expect("block").nodes()[0].name().value(),
        "y"
    );
}

// ---------------------------------------------------------------------------------------------
// Generated documents.

fn ident_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_-]{0,6}",
        "[-+][a-z_][a-z0-9]{0,3}",
        "[-+]?\\.[a-z_][a-z0-9]{0,3}",
        Just("é".to_owned()),
        Just("a.b:c".to_owned()),
        Just("-".to_owned()),
        Just("+".to_owned()),
    ]
    .prop_filter("not a keyword", |s| {
        !matches!(
            s.as_str(),
            "true" | "false" | "null" | "inf" | "-inf" | "nan"
        )
    })
}

fn string_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z ]{1,5}",
        1 => prop_oneof![
            Just("\\n"), Just("\\t"), Just("\\\""), Just("\\\\"), Just("\\s"), Just("\\b"),
            Just("\\f"), Just("\\r"), Just("\\u{41}"), Just("\\u{1F600}"), Just("\\   "),
            Just("\\\n   "), Just("é"), Just("'"), Just("#"), Just("/"),
        ]
        .prop_map(str::to_owned),
    ]
}

fn quoted_string() -> impl Strategy<Value = String> {
    prop::collection::vec(string_piece(), 0..4).prop_map(|p| format!("\"{}\"", p.concat()))
}

fn raw_string() -> impl Strategy<Value = String> {
    (1usize..3, "[a-z \"#\\\\]{0,8}")
        .prop_map(|(n, body)| {
            let hashes = "#".repeat(n);
            format!("{hashes}\"{body}\"{hashes}")
        })
        .prop_filter("closes early or looks multi-line", |s| {
            let n = s.bytes().take_while(|&c| c == b'#').count();
            let body = &s[n + 1..s.len() - n - 1];
            let close = format!("\"{}", "#".repeat(n));
            !body.contains(&close) && !body.starts_with('"') && !body.ends_with('"')
        })
}

fn multiline_string() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        "[ \t]{0,3}",
        prop::collection::vec(
            prop_oneof![
                3 => prop::collection::vec(string_piece(), 1..3).prop_map(|p| p.concat()),
                1 => Just(String::new()),
                1 => Just("  ".to_owned()),
                1 => Just("\"\" x".to_owned()),
            ],
            0..4,
        ),
        prop_oneof![Just("\n"), Just("\r\n")],
    )
        .prop_map(|(raw, indent, lines, nl)| {
            let mut body = String::new();
            for line in &lines {
                let line = if raw {
                    line.replace('\\', "/").replace('\n', "")
                } else {
                    // A line ending in a whitespace escape would swallow the newline.
                    line.trim_end_matches(['\\', ' ', '\n']).to_owned()
                };
                if line.trim().is_empty() {
                    body.push_str(&line);
                } else {
                    body.push_str(&indent);
                    body.push_str(&line);
                }
                body.push_str(nl);
            }
            let (open, close) = if raw {
                ("#\"\"\"", "\"\"\"#")
            } else {
                ("\"\"\"", "\"\"\"")
            };
            format!("{open}{nl}{body}{indent}{close}")
        })
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-+]?[0-9][0-9_]{0,6}",
        "[-+]?[0-9]{1,3}\\.[0-9][0-9_]{0,3}",
        "[-+]?[0-9]{1,3}(\\.[0-9]{1,3})?[eE][-+]?[0-9]{1,2}",
        "[-+]?0x[0-9a-fA-F][0-9a-fA-F_]{0,6}",
        "[-+]?0o[0-7][0-7_]{0,6}",
        "[-+]?0b[01][01_]{0,8}",
    ]
}

fn keyword() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("#true"),
        Just("#false"),
        Just("#null"),
        Just("#inf"),
        Just("#-inf"),
        Just("#nan"),
    ]
    .prop_map(str::to_owned)
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ident_string(),
        2 => quoted_string(),
        1 => raw_string(),
        1 => multiline_string(),
    ]
}

fn type_annotation() -> impl Strategy<Value = String> {
    (string(), prop_oneof![Just(""), Just(" ")]).prop_map(|(s, pad)| format!("({pad}{s}{pad})"))
}

fn value() -> impl Strategy<Value = String> {
    (
        prop::option::weighted(0.2, type_annotation()),
        prop_oneof![3 => string(), 2 => number(), 1 => keyword()],
    )
        .prop_map(|(ty, v)| format!("{}{v}", ty.unwrap_or_default()))
}

fn entry() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => value(),
        1 => (string(), prop_oneof![Just("="), Just(" = "), Just("= ")], value())
            .prop_map(|(k, eq, v)| format!("{k}{eq}{v}")),
    ]
}

/// `node-space+`.
fn node_space() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(" "),
        1 => Just("  "),
        1 => Just("\t"),
        1 => Just(" /* c */ "),
        1 => Just("/*/* n */*/ "),
        1 => Just(" \\\n  "),
        1 => Just(" \\ // c\n "),
        1 => Just("\u{3000}"),
    ]
    .prop_map(str::to_owned)
}

/// A node: `(ty)name entries {children}`, as text without terminator.
fn node(children: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    (
        prop::option::weighted(0.15, type_annotation()),
        string(),
        prop::collection::vec((node_space(), prop::bool::weighted(0.15), entry()), 0..4),
        prop::option::weighted(0.2, (node_space(), children.clone())),
        prop::option::weighted(0.1, (node_space(), children)),
        prop::option::weighted(0.2, node_space()),
    )
        .prop_map(|(ty, name, entries, block, dashed_block, trailing)| {
            let mut out = format!("{}{name}", ty.unwrap_or_default());
            for (space, dashed, e) in entries {
                out.push_str(&space);
                if dashed {
                    out.push_str("/-");
                }
                out.push_str(&e);
            }
            let has_block = block.is_some() || dashed_block.is_some();
            if let Some((space, b)) = block {
                out.push_str(&space);
                out.push_str(&b);
            }
            if let Some((space, b)) = dashed_block {
                out.push_str(&space);
                out.push_str("/-");
                out.push_str(&b);
            }
            // `kdl` 6.5 rejects node-space after a block when more nodes follow.
            if !has_block && let Some(t) = trailing {
                out.push_str(&t);
            }
            out
        })
}

/// `line-space` between nodes.
fn line_space() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("\n"),
        1 => Just("\n\n"),
        1 => Just("\n  // comment\n"),
        1 => Just("\r\n"),
        1 => Just("\n/* block\n comment */\n"),
        1 => Just("\u{85}"),
    ]
    .prop_map(str::to_owned)
}

/// A sequence of nodes (slash-dashed ones too), with terminators.
fn nodes(node: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::bool::weighted(0.1),
            node,
            prop_oneof![
                4 => line_space(),
                1 => Just(";".to_owned()),
                1 => Just("; ".to_owned()),
                1 => Just("// c\n".to_owned()),
            ],
        ),
        0..5,
    )
    .prop_map(|items| {
        let mut out = String::new();
        for (dashed, node, terminator) in items {
            if dashed {
                out.push_str("/- ");
            }
            out.push_str(&node);
            // `kdl` 6.5 rejects `;` after a slash-dashed node.
            if dashed && terminator.starts_with(';') {
                out.push('\n');
            } else {
                out.push_str(&terminator);
            }
        }
        out
    })
}

fn document() -> impl Strategy<Value = String> {
    let leaf = node(Just("{}".to_owned()).boxed()).boxed();
    let tree = leaf.prop_recursive(3, 24, 4, |inner| {
        node(
            nodes(inner)
                .prop_map(|body| format!("{{\n{body}}}"))
                .boxed(),
        )
        .boxed()
    });
    nodes(tree.boxed())
}

/// Small edits that make interesting near-misses.
fn mutation() -> impl Strategy<Value = (prop::sample::Index, usize, String)> {
    let tokens = prop_oneof![
        Just("{"),
        Just("}"),
        Just("\""),
        Just("#"),
        Just("/-"),
        Just("\\"),
        Just("="),
        Just("(t)"),
        Just(" "),
        Just("\n"),
        Just(";"),
        Just("/*"),
        Just("*/"),
        Just("//"),
        Just("1"),
        Just("."),
        Just("-"),
        Just("e"),
        Just("0x"),
        Just("\"\"\""),
        Just("_"),
        Just("\u{85}"),
        Just("\u{feff}"),
        Just("\u{7f}"),
        Just("\t"),
        Just("#\""),
        Just(""),
    ];
    (
        any::<prop::sample::Index>(),
        0usize..4,
        tokens.prop_map(str::to_owned),
    )
}

fn apply(text: &str, (at, delete, insert): &(prop::sample::Index, usize, String)) -> String {
    let boundaries: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    let start = *at.get(&boundaries);
    let end = boundaries
        .iter()
        .copied()
        .filter(|&i| i >= start)
        .nth(*delete)
        .unwrap_or(text.len());
    format!("{}{insert}{}", &text[..start], &text[end..])
}

/// Runs `f` on a thread with a large stack: `kdl`'s parser and proptest's nested strategies
/// recurse deeply in debug builds.
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .expect("thread")
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

/// Runs a property over `cases` values of the strategy `make` builds (on the big stack).
fn run<S: Strategy + 'static>(
    cases: u32,
    make: fn() -> S,
    test: fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: 'static,
{
    // PROPTEST_CASES raises the count for a longer hunt.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    with_big_stack(move || {
        // A fixed seed, so CI sees the same documents every run (a random one once found an
        // obscure slash-dash quirk of `kdl`, `/- a /-{} c` accepted by kdl only, and made
        // CI flaky); KILN_PROPTEST_RANDOM=1 hunts with fresh ones.
        let config = ProptestConfig::with_cases(cases);
        let mut runner = if std::env::var_os("KILN_PROPTEST_RANDOM").is_some() {
            proptest::test_runner::TestRunner::new(config)
        } else {
            let rng = proptest::test_runner::TestRng::deterministic_rng(config.rng_algorithm);
            proptest::test_runner::TestRunner::new_with_rng(config, rng)
        };
        if let Err(e) = runner.run(&make(), test) {
            panic!("{e}");
        }
    });
}

#[test]
fn generated_documents_parse_as_with_kdl() {
    run(256, document, |doc| {
        let theirs = kdl_dump(&doc);
        let ours = our_dump(&doc);
        prop_assert!(
            theirs.is_some(),
            "kdl rejects a generated document {:?}",
            doc
        );
        prop_assert_eq!(ours.ok(), theirs, "for {:?}", doc);
        Ok(())
    });
}

#[test]
fn mutated_documents_are_never_accepted_differently() {
    let strategy = || (document(), prop::collection::vec(mutation(), 1..4));
    run(512, strategy, |(doc, edits)| {
        let mut text = doc;
        for edit in &edits {
            text = apply(&text, edit);
        }
        assert_sound(&text)
    });
}
