//! KDL syntax errors, in kiln's words.
//!
//! Owns turning the `kdl` crate's parse errors into diagnostics: one error per mistake (an
//! unclosed string also leaves its block unclosed; only the string is reported), messages in
//! the house style (lowercase, backticks, no "not X" labels) and a fix where the mistake is a
//! common one (a bare property value, a KDL v1 `true`, an unclosed comment).

use super::diag::{Code, Diagnostics};
use super::source::{FileId, Span};

/// One syntax error before it becomes a diagnostic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub(crate) offset: usize,
    pub(crate) len: usize,
    pub(crate) message: String,
    pub(crate) label: Option<String>,
    pub(crate) help: Option<String>,
}

const UNCLOSED_BLOCK: &str = "no closing '}' for child block";
const UNCLOSED_NODES: &str = "closing '}' was not found after nodes";
const UNCLOSED_STRING: &str = "unexpected newline in single-line quoted string";

/// Reports the errors of a document that did not parse.
pub(crate) fn report(diags: &mut Diagnostics, file: FileId, text: &str, error: &kdl::KdlError) {
    let raw: Vec<SyntaxError> = error
        .diagnostics
        .iter()
        .map(|d| SyntaxError {
            offset: d.span.offset(),
            len: d.span.len(),
            message: d
                .message
                .clone()
                .unwrap_or_else(|| "invalid KDL".to_string()),
            label: d.label.clone(),
            help: d.help.clone(),
        })
        .collect();
    for e in rewrite(text, raw) {
        let builder = diags.error(Code::Syntax, Span::new(file, e.offset, e.len), e.message);
        let builder = match e.label {
            Some(label) => builder.label(label),
            None => builder,
        };
        builder.maybe_help(e.help);
    }
}

/// Reports an error the `kdl` crate cannot word: a text it accepts although KDL 2.0.0 does
/// not (kiln's own parser is the judge of validity, see `kdlv2`), or a disallowed character.
pub(crate) fn report_spec(
    diags: &mut Diagnostics,
    file: FileId,
    text: &str,
    error: &super::kdlv2::ParseError,
) {
    let e = spec_error(text, error);
    diags
        .error(Code::Syntax, Span::new(file, e.offset, e.len), e.message)
        .maybe_help(e.help);
}

/// The diagnostic text of one of kiln's own parse errors.
pub(crate) fn spec_error(text: &str, error: &super::kdlv2::ParseError) -> SyntaxError {
    let mut offset = error.offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let ch = text[offset..].chars().next();
    let len = ch.map_or(0, char::len_utf8);
    if error.disallowed_character() {
        let code = ch.map_or(0, u32::from);
        let what = match code {
            0xFEFF => "a byte order mark is only allowed as the first character of a file",
            0x200E..=0x200F | 0x202A..=0x202E | 0x2066..=0x2069 => {
                "KDL forbids Unicode direction controls anywhere in a file, comments included"
            }
            _ => "KDL forbids control characters anywhere in a file, comments included",
        };
        return SyntaxError {
            offset,
            len,
            message: format!("disallowed character U+{code:04X}"),
            label: None,
            help: Some(format!(
                "{what}; remove it, or write it as the escape `\\u{{{code:x}}}` inside a quoted string"
            )),
        };
    }
    let help = (error.message == super::kdlv2::RAW_LOOKS_MULTILINE).then(|| {
        "a raw string opened with `\"\"\"` is a multi-line one: put a newline after the opening \
         `\"\"\"` and the closing one on its own line, or use a quoted string"
            .to_string()
    });
    SyntaxError {
        offset,
        len,
        message: error.message.to_string(),
        label: None,
        help,
    }
}

/// Drops the errors that follow from another one and rewords the rest.
pub(crate) fn rewrite(text: &str, raw: Vec<SyntaxError>) -> Vec<SyntaxError> {
    let raw: Vec<SyntaxError> = raw
        .into_iter()
        .map(|e| SyntaxError {
            message: lowercase_first(e.message.trim_end_matches('.')),
            ..e
        })
        .collect();
    let has = |m: &str| raw.iter().any(|e| e.message == m);
    let unclosed_string = has(UNCLOSED_STRING);
    let unclosed_block = has(UNCLOSED_BLOCK);
    let mut out: Vec<(SyntaxError, Kind)> = Vec::new();
    for mut e in raw {
        // Spans come from another crate: keep them inside the text and on char boundaries.
        e.offset = e.offset.min(text.len());
        while !text.is_char_boundary(e.offset) {
            e.offset -= 1;
        }
        e.len = e.len.min(text.len() - e.offset);
        while !text.is_char_boundary(e.offset + e.len) {
            e.len -= 1;
        }
        let message = e.message.clone();
        // An unclosed string swallows the `}` after it; `kdl` reports the block twice.
        if (message == UNCLOSED_BLOCK || message == UNCLOSED_NODES) && unclosed_string {
            continue;
        }
        if message == UNCLOSED_NODES && unclosed_block {
            continue;
        }
        let (e, specific) = reword(text, SyntaxError { message, ..e });
        if !out.iter().any(|(o, _)| *o == e) {
            out.push((e, specific));
        }
    }
    // `kdl` recovers poorly from a broken string or value: what follows it on the line, and the
    // braces around it, are reported too. A mistake recognised for what it is explains them;
    // otherwise the first error that is not about braces does.
    if out.iter().any(|(_, kind)| *kind == Kind::Specific) {
        out.retain(|(_, kind)| *kind == Kind::Specific);
    } else if let Some(first) = out
        .iter()
        .filter(|(_, kind)| *kind == Kind::Generic)
        .min_by_key(|(e, _)| e.offset)
        .cloned()
    {
        out = vec![first];
    }
    out.into_iter().map(|(e, _)| e).collect()
}

/// How much a syntax error says about the mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A mistake recognised for what it is (an unclosed string, a bare value).
    Specific,
    /// The `kdl` crate's own words.
    Generic,
    /// An unclosed block or a stray `}`: often the consequence of another mistake.
    Brace,
}

/// The reworded error, and what kind of error it is.
fn reword(text: &str, e: SyntaxError) -> (SyntaxError, Kind) {
    let spanned = &text[e.offset..e.offset + e.len];
    let specific = |e: SyntaxError| (e, Kind::Specific);
    let structural = |e: SyntaxError| (e, Kind::Brace);
    let generic = |e: SyntaxError| (generic(e), Kind::Generic);
    // `.5`: KDL numbers start with a digit.
    let token: &str = text[e.offset..]
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '}' | '{'))
        .next()
        .unwrap_or("");
    if token.len() > 1
        && token.starts_with('.')
        && token[1..].starts_with(|c: char| c.is_ascii_digit())
    {
        return specific(SyntaxError {
            len: token.len(),
            message: format!("`{token}` is not a KDL number"),
            label: None,
            help: Some(format!("write `0{token}`")),
            ..e
        });
    }
    match e.message.as_str() {
        UNCLOSED_BLOCK => structural(SyntaxError {
            message: "unclosed block".into(),
            label: Some("this `{` is never closed".into()),
            help: Some("add a `}` where the block ends".into()),
            ..e
        }),
        UNCLOSED_NODES => structural(SyntaxError {
            message: "unclosed block".into(),
            label: None,
            help: Some("add a `}` where the block ends".into()),
            ..e
        }),
        UNCLOSED_STRING => {
            let line_end = text[e.offset..]
                .find('\n')
                .map_or(text.len(), |i| e.offset + i);
            specific(SyntaxError {
                offset: e.offset,
                len: line_end.saturating_sub(e.offset).max(1).min(text.len() - e.offset),
                message: "unclosed string".into(),
                label: Some("this string has no closing `\"`".into()),
                help: Some("close it on the same line, or write a multi-line string as `\"\"\"` … `\"\"\"`".into()),
            })
        }
        "expected property value" => {
            bare_property_value(text, &e).map_or_else(|| generic(e), specific)
        }
        "expected identifier string" if matches!(spanned, "true" | "false" | "null") => {
            specific(SyntaxError {
                message: format!("bare `{spanned}` is not a value in KDL v2"),
                label: None,
                help: Some(format!("write `#{spanned}`")),
                ..e
            })
        }
        "expected closing of multi-line comment" => specific(SyntaxError {
            len: 2.min(e.len),
            message: "unclosed comment".into(),
            label: Some("this `/*` is never closed".into()),
            help: Some("close the comment with `*/`".into()),
            ..e
        }),
        "expected end of document" if spanned.starts_with('}') => structural(SyntaxError {
            len: 1,
            message: "unexpected `}`".into(),
            label: Some("no block is open here".into()),
            help: Some("remove it, or look for a block closed too early above".into()),
            ..e
        }),
        "expected quoted string" => match spanned.find('\\') {
            Some(i)
                if !spanned[i + 1..]
                    .starts_with(['n', 'r', 't', '\\', '"', 'b', 'f', 's', 'u', '\n', ' ']) =>
            {
                let escape: String = spanned[i..].chars().take(2).collect();
                specific(SyntaxError {
                    offset: e.offset + i,
                    len: escape.len(),
                    message: format!("invalid escape `{escape}` in a string"),
                    label: None,
                    help: Some(
                        "write `\\\\` for a backslash, or use a raw string: `#\"…\"#`".into(),
                    ),
                })
            }
            _ => generic(e),
        },
        _ => generic(e),
    }
}

/// `subnet=10.89.0.0/24`: a value that is not a KDL value needs quotes.
fn bare_property_value(text: &str, e: &SyntaxError) -> Option<SyntaxError> {
    let spanned = &text[e.offset..e.offset + e.len];
    let equals = e.offset + spanned.rfind('=')?;
    let key_start = text[..equals]
        .rfind(|c: char| c.is_whitespace())
        .map_or(0, |i| i + 1);
    let key = &text[key_start..equals];
    let value_start = equals + 1;
    let value_len = text[value_start..]
        .find(|c: char| c.is_whitespace() || matches!(c, ';' | '{' | '}'))
        .unwrap_or(text.len() - value_start);
    let value = &text[value_start..value_start + value_len];
    if key.is_empty() || value.is_empty() || value.starts_with(['"', '#']) {
        return None;
    }
    Some(SyntaxError {
        offset: value_start,
        len: value_len,
        message: format!("the value of `{key}` is not a KDL value"),
        label: Some("this needs quotes".into()),
        help: Some(format!("quote it: `{key}=\"{value}\"`")),
    })
}

/// The `kdl` crate's wording, in the house style.
fn generic(e: SyntaxError) -> SyntaxError {
    let message = backticks(&lowercase_first(&e.message));
    let label = e
        .label
        .filter(|l| l != "here")
        .and_then(|l| match l.strip_prefix("not ") {
            // "expected X" + "not X" says the same thing twice.
            Some(rest) if message.ends_with(rest) => None,
            Some("EOF") => Some("unexpected text".to_string()),
            Some(rest) => Some(format!("expected {rest}")),
            None => Some(l),
        });
    let help = e
        .help
        .map(|h| backticks(&lowercase_first(h.trim_end_matches('.'))));
    SyntaxError {
        message,
        label,
        help,
        ..e
    }
}

/// `'}'` → `` `}` ``.
fn backticks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        // A quote opens a code span when another quote closes it on the same line and the
        // quote does not sit inside a word (an apostrophe: "don't").
        let prev_alnum = text[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric);
        if c == '\''
            && !prev_alnum
            && let Some(close) = text[i + 1..].find('\'')
            && close > 0
        {
            out.push('`');
            out.push_str(&text[i + 1..i + 1 + close]);
            out.push('`');
            while chars.peek().is_some_and(|(j, _)| *j <= i + 1 + close) {
                chars.next();
            }
            continue;
        }
        out.push(c);
    }
    out
}

pub(crate) fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => {
            // Keep acronyms (`KDL`) as they are.
            let second_upper = text.chars().nth(1).is_some_and(char::is_uppercase);
            if second_upper {
                text.to_string()
            } else {
                first.to_lowercase().chain(chars).collect()
            }
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<SyntaxError> {
        let err = kdl::KdlDocument::parse_v2(text).expect_err("invalid");
        let raw = err
            .diagnostics
            .iter()
            .map(|d| SyntaxError {
                offset: d.span.offset(),
                len: d.span.len(),
                message: d.message.clone().unwrap_or_default(),
                label: d.label.clone(),
                help: d.help.clone(),
            })
            .collect();
        rewrite(text, raw)
    }

    #[test]
    fn an_unclosed_block_is_one_error() {
        let e = errors("image \"a\" {\n    from \"scratch\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].message, "unclosed block");
    }

    #[test]
    fn an_unclosed_string_hides_the_block_it_swallows() {
        let e = errors("image \"a\" { from \"scratch\"; cmd \"x }\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].message, "unclosed string");
    }

    #[test]
    fn a_bare_property_value_gets_quotes() {
        let text = "network \"front\" subnet=10.89.0.0/24\n";
        let e = errors(text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(&text[e[0].offset..e[0].offset + e[0].len], "10.89.0.0/24");
        assert_eq!(
            e[0].help.as_deref(),
            Some("quote it: `subnet=\"10.89.0.0/24\"`")
        );
    }

    #[test]
    fn an_invalid_escape_is_the_only_error() {
        let e = errors("image \"t\" {\n    run \"sh\" \"-c\" \"grep '\\d+' /etc/x > /y\"\n}\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].message, "invalid escape `\\d` in a string");
    }

    #[test]
    fn a_number_without_its_leading_zero_is_one_error() {
        let e = errors("container \"web\" image=\"base\" { cpus .5 }\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].help.as_deref(), Some("write `0.5`"));
    }

    #[test]
    fn v1_booleans_point_to_v2() {
        let e = errors("network \"b\" internal=true\n");
        assert_eq!(e[0].help.as_deref(), Some("write `#true`"));
    }

    #[test]
    fn spans_past_the_end_are_clamped() {
        let raw = vec![SyntaxError {
            offset: 99,
            len: 5,
            message: "x".into(),
            label: None,
            help: None,
        }];
        let e = rewrite("é", raw);
        assert_eq!((e[0].offset, e[0].len), (2, 0));
        let raw = vec![SyntaxError {
            offset: 1,
            len: 5,
            message: "x".into(),
            label: None,
            help: None,
        }];
        let e = rewrite("é", raw);
        assert_eq!((e[0].offset, e[0].len), (0, 2));
    }

    #[test]
    fn quotes_become_backticks() {
        assert_eq!(backticks("no closing '}' here"), "no closing `}` here");
        assert_eq!(backticks("don't touch"), "don't touch");
    }
}
