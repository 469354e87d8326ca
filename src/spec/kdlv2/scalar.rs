//! Scalar tokens of KDL v2: identifier strings, quoted strings (single- and multi-line, with
//! escapes and dedent), raw strings (any number of `#`), numbers and `#` keywords.
//!
//! Each reader starts at the cursor and leaves it just past the token; it never looks at what
//! follows (whether the token is properly separated is the parser's business).

use kdl::KdlValue;

use super::chars::{ident_run, newline_len, space_len, utf8_len};
use super::lexer::{Cursor, PResult};

/// The error for a single-line raw string whose body starts with `"` and then `"` or its
/// end (`kdl` 6.5 rejects only the body `"`).
pub(crate) const RAW_LOOKS_MULTILINE: &str =
    "a single-line raw string cannot start like a multi-line one";

/// A scalar read from the source: its value, whether it was a string, and its byte range.
pub(super) struct Scalar {
    pub(super) value: KdlValue,
    pub(super) is_string: bool,
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Cursor<'_> {
    /// Reads a string, number or keyword at the cursor.
    pub(super) fn scalar(&mut self) -> PResult<Scalar> {
        let start = self.pos;
        let (value, is_string) = match self.peek() {
            Some(b'"') => (KdlValue::String(self.quoted()?), true),
            Some(b'#') if matches!(self.peek_at(1), Some(b'"' | b'#')) => {
                (KdlValue::String(self.raw()?), true)
            }
            Some(b'#') => (self.keyword()?, false),
            _ => self.bare()?,
        };
        Ok(Scalar {
            value,
            is_string,
            start,
            end: self.pos,
        })
    }

    /// Length of the run of identifier characters starting at `i`.
    fn ident_run(&self, i: usize) -> usize {
        ident_run(self.b, i)
    }

    /// `#true`, `#false`, `#null`, `#inf`, `#-inf`, `#nan`.
    fn keyword(&mut self) -> PResult<KdlValue> {
        let start = self.pos;
        let n = self.ident_run(start + 1);
        let value = match &self.src[start + 1..start + 1 + n] {
            "true" => KdlValue::Bool(true),
            "false" => KdlValue::Bool(false),
            "null" => KdlValue::Null,
            "inf" => KdlValue::Float(f64::INFINITY),
            "-inf" => KdlValue::Float(f64::NEG_INFINITY),
            "nan" => KdlValue::Float(f64::NAN),
            _ => return self.err(start, "unknown keyword"),
        };
        self.pos = start + 1 + n;
        Ok(value)
    }

    /// An identifier string or a number: a maximal run of identifier characters.
    fn bare(&mut self) -> PResult<(KdlValue, bool)> {
        let start = self.pos;
        let n = self.ident_run(start);
        if n == 0 {
            return self.err(start, "expected a string, number or keyword");
        }
        let text = &self.src[start..start + n];
        let t = text.as_bytes();
        let unsigned = if matches!(t[0], b'+' | b'-') {
            &t[1..]
        } else {
            t
        };
        let value = match unsigned.first() {
            Some(c) if c.is_ascii_digit() => match number(text) {
                Ok(v) => (v, false),
                Err(message) => return self.err(start, message),
            },
            Some(b'.') if unsigned.get(1).is_some_and(u8::is_ascii_digit) => {
                return self.err(start, "a number needs a digit before the '.'");
            }
            _ => {
                if matches!(text, "true" | "false" | "null" | "inf" | "-inf" | "nan") {
                    return self.err(start, "keywords need a '#' prefix (e.g. #true)");
                }
                (KdlValue::String(text.to_owned()), true)
            }
        };
        self.pos = start + n;
        Ok(value)
    }

    /// A quoted string at the cursor (on `"`), single- or multi-line.
    fn quoted(&mut self) -> PResult<String> {
        if self.starts_with(b"\"\"\"") {
            return self.multiline_quoted();
        }
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut seg = self.pos;
        loop {
            let Some(c) = self.peek() else {
                return self.err(open, "unterminated string");
            };
            match c {
                b'"' => {
                    out.push_str(&self.src[seg..self.pos]);
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    out.push_str(&self.src[seg..self.pos]);
                    self.escape(&mut out)?;
                    seg = self.pos;
                }
                b'\n' | b'\r' | 0x0B | 0x0C | 0xC2 | 0xE2 if self.newline() != 0 => {
                    return self.err(self.pos, "newline in a single-line string");
                }
                _ => self.pos += 1,
            }
        }
    }

    /// An escape at the cursor (on `\`), appended to `out`. Whitespace escapes append nothing.
    fn escape(&mut self, out: &mut String) -> PResult<()> {
        let at = self.pos;
        let c = match self.peek_at(1) {
            Some(b'n') => '\n',
            Some(b't') => '\t',
            Some(b'r') => '\r',
            Some(b'\\') => '\\',
            Some(b'"') => '"',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b's') => ' ',
            Some(b'u') => {
                let hex_start = at + 3;
                if self.peek_at(2) != Some(b'{') {
                    return self.err(at, "expected '{' after \\u");
                }
                let digits = self.b[hex_start..]
                    .iter()
                    .take(7)
                    .take_while(|c| c.is_ascii_hexdigit())
                    .count();
                if !(1..=6).contains(&digits) || self.b.get(hex_start + digits) != Some(&b'}') {
                    return self.err(at, "a unicode escape is \\u{ and 1-6 hex digits and }");
                }
                let code = u32::from_str_radix(&self.src[hex_start..hex_start + digits], 16)
                    .ok()
                    .and_then(char::from_u32);
                let Some(ch) = code else {
                    return self.err(at, "unicode escape is not a scalar value");
                };
                out.push(ch);
                self.pos = hex_start + digits + 1;
                return Ok(());
            }
            _ => {
                self.pos += 1;
                if !self.skip_escaped_ws() {
                    return self.err(at, "invalid escape");
                }
                return Ok(());
            }
        };
        out.push(c);
        self.pos += 2;
        Ok(())
    }

    /// Skips unicode spaces and newlines; returns whether any were skipped.
    fn skip_escaped_ws(&mut self) -> bool {
        let start = self.pos;
        loop {
            let n = space_len(self.b, self.pos).max(newline_len(self.b, self.pos));
            if n == 0 {
                return self.pos != start;
            }
            self.pos += n;
        }
    }

    /// A multi-line quoted string at the cursor (on `"""`).
    ///
    /// Per spec: whitespace escapes are resolved first, then the text is dedented by the
    /// closing line's whitespace, then the other escapes are resolved.
    fn multiline_quoted(&mut self) -> PResult<String> {
        let open = self.pos;
        self.pos += 3;
        let n = self.newline();
        if n == 0 {
            return self.err(open, "\"\"\" must be followed by a newline");
        }
        self.pos += n;
        // Stage 1: resolve whitespace escapes and normalise newlines; keep other escapes.
        let mut text = String::new();
        let mut seg = self.pos;
        loop {
            let Some(c) = self.peek() else {
                return self.err(open, "unterminated multi-line string");
            };
            match c {
                b'\\' => {
                    let next = self.pos + 1;
                    if space_len(self.b, next) != 0 || newline_len(self.b, next) != 0 {
                        text.push_str(&self.src[seg..self.pos]);
                        self.pos = next;
                        self.skip_escaped_ws();
                        seg = self.pos;
                    } else {
                        match self.b.get(next) {
                            Some(&c) => self.pos = next + utf8_len(c),
                            None => return self.err(open, "unterminated multi-line string"),
                        }
                    }
                }
                b'"' if self.starts_with(b"\"\"\"") => {
                    text.push_str(&self.src[seg..self.pos]);
                    self.pos += 3;
                    break;
                }
                _ => {
                    let n = self.newline();
                    if n != 0 {
                        text.push_str(&self.src[seg..self.pos]);
                        text.push('\n');
                        self.pos += n;
                        seg = self.pos;
                    } else {
                        self.pos += 1;
                    }
                }
            }
        }
        // Stage 2: dedent.
        let dedented = match dedent(&text) {
            Ok(s) => s,
            Err(message) => return self.err(open, message),
        };
        // Stage 3: the remaining escapes.
        let mut out = String::with_capacity(dedented.len());
        let mut inner = Cursor::new(&dedented);
        let mut seg = 0;
        while let Some(k) = inner.b[inner.pos..].iter().position(|&c| c == b'\\') {
            inner.pos += k;
            out.push_str(&dedented[seg..inner.pos]);
            if inner.escape(&mut out).is_err() {
                return self.err(open, "invalid escape in multi-line string");
            }
            seg = inner.pos;
        }
        out.push_str(&dedented[seg..]);
        Ok(out)
    }

    /// A raw string at the cursor (on `#`): `#"..."#`, `##"""\n...\n"""##`, and so on.
    fn raw(&mut self) -> PResult<String> {
        let open = self.pos;
        let hashes = self.b[open..].iter().take_while(|&&c| c == b'#').count();
        self.pos += hashes;
        if self.peek() != Some(b'"') {
            return self.err(open, "expected '\"' after the '#'s of a raw string");
        }
        let multi = self.starts_with(b"\"\"\"") && newline_len(self.b, self.pos + 3) != 0;
        let quotes = if multi { 3 } else { 1 };
        let body_start = if multi {
            self.pos + 3 + newline_len(self.b, self.pos + 3)
        } else {
            self.pos + 1
        };
        let close = find_raw_close(&self.b[body_start..], quotes, hashes);
        let Some(rel) = close else {
            return self.err(open, "unterminated raw string");
        };
        let body = &self.src[body_start..body_start + rel];
        self.pos = body_start + rel + quotes + hashes;
        if multi {
            let mut text = String::with_capacity(body.len());
            let bb = body.as_bytes();
            let (mut i, mut seg) = (0, 0);
            while i < bb.len() {
                let n = newline_len(bb, i);
                if n == 0 {
                    i += 1;
                } else {
                    text.push_str(&body[seg..i]);
                    text.push('\n');
                    i += n;
                    seg = i;
                }
            }
            text.push_str(&body[seg..]);
            return dedent(&text).or_else(|message| self.err(open, message));
        }
        let bb = body.as_bytes();
        if (0..bb.len()).any(|i| newline_len(bb, i) != 0) {
            return self.err(open, "newline in a single-line raw string");
        }
        if bb.first() == Some(&b'"') && (bb.len() == 1 || bb[1] == b'"') {
            return self.err(open, RAW_LOOKS_MULTILINE);
        }
        Ok(body.to_owned())
    }
}

/// Offset of the closing `"` (or `"""`) followed by `hashes` `#`s.
fn find_raw_close(b: &[u8], quotes: usize, hashes: usize) -> Option<usize> {
    let mut i = 0;
    while let Some(k) = b[i..].iter().position(|&c| c == b'"') {
        let q = i + k;
        let after = q + quotes;
        if b.len() >= after + hashes
            && b[q..after].iter().all(|&c| c == b'"')
            && b[after..after + hashes].iter().all(|&c| c == b'#')
        {
            return Some(q);
        }
        i = q + 1;
    }
    None
}

/// Whether `s` consists only of unicode spaces.
fn all_space(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let n = space_len(b, i);
        if n == 0 {
            return false;
        }
        i += n;
    }
    true
}

/// Dedents the lines of a multi-line string (newlines already normalised to `\n`): the last
/// line must be whitespace only and is the prefix every other non-blank line must start with;
/// blank lines become empty. The first and last newlines are not part of the value.
fn dedent(text: &str) -> Result<String, &'static str> {
    let (body, prefix) = match text.rfind('\n') {
        Some(i) => (Some(&text[..i]), &text[i + 1..]),
        None => (None, text),
    };
    if !all_space(prefix) {
        return Err("the closing \"\"\" must be on its own line, after whitespace only");
    }
    let Some(body) = body else {
        return Ok(String::new());
    };
    let mut out = String::with_capacity(body.len());
    for (i, line) in body.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if all_space(line) {
            continue;
        }
        match line.strip_prefix(prefix) {
            Some(rest) => out.push_str(rest),
            None => return Err("multi-line string line does not start with the closing indent"),
        }
    }
    Ok(out)
}

/// A number token (the whole token must match): decimal, hex, octal or binary integer, or a
/// decimal float. Integers must fit in i128 (as in the `kdl` crate).
fn number(text: &str) -> Result<KdlValue, &'static str> {
    let (neg, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let b = body.as_bytes();
    let radix = match (b.first(), b.get(1)) {
        (Some(b'0'), Some(b'x')) => 16,
        (Some(b'0'), Some(b'o')) => 8,
        (Some(b'0'), Some(b'b')) => 2,
        _ => 10,
    };
    if radix != 10 {
        let magnitude = integer(&b[2..], radix).ok_or("invalid or too large integer")?;
        return Ok(KdlValue::Integer(if neg { -magnitude } else { magnitude }));
    }
    let mut i = digits(b, 0).ok_or("invalid number")?;
    // Like `kdl`, each digit group of a float must fit in an i128.
    let mut groups = vec![&b[..i]];
    let mut float = false;
    if b.get(i) == Some(&b'.') {
        let from = i + 1;
        i = digits(b, from).ok_or("a '.' in a number must be followed by a digit")?;
        groups.push(&b[from..i]);
        float = true;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let from = i;
        i = digits(b, from).ok_or("an exponent needs digits")?;
        groups.push(&b[from..i]);
        float = true;
    }
    if i != b.len() {
        return Err("invalid number");
    }
    if float {
        if groups.iter().any(|g| integer(g, 10).is_none()) {
            return Err("a digit group of the number is too large");
        }
        let cleaned: String = text.chars().filter(|&c| c != '_').collect();
        cleaned
            .parse::<f64>()
            .map(KdlValue::Float)
            .map_err(|_| "invalid float")
    } else {
        let magnitude = integer(b, 10).ok_or("integer too large")?;
        Ok(KdlValue::Integer(if neg { -magnitude } else { magnitude }))
    }
}

/// End of `digit (digit | '_')*` starting at `i`, or None if no digit at `i`.
fn digits(b: &[u8], i: usize) -> Option<usize> {
    if !b.get(i)?.is_ascii_digit() {
        return None;
    }
    Some(
        i + b[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == b'_')
            .count(),
    )
}

/// `digit (digit | '_')*` in `radix`, the whole slice, as an i128 magnitude.
fn integer(b: &[u8], radix: u32) -> Option<i128> {
    let first = char::from(*b.first()?).to_digit(radix)?;
    let mut v = i128::from(first);
    for &c in &b[1..] {
        if c == b'_' {
            continue;
        }
        let d = char::from(c).to_digit(radix)?;
        v = v
            .checked_mul(i128::from(radix))?
            .checked_add(i128::from(d))?;
    }
    Some(v)
}
