//! The cursor and the trivia of KDL v2: unicode spaces, newlines, nested block comments,
//! line comments, line continuations (`\`), `node-space`, `line-space` and the `/-` marker.
//!
//! Scalar tokens (strings, numbers, keywords) live in `scalar.rs`; structure in `parser.rs`.

use super::ParseError;
use super::chars::{newline_len, space_len};
use super::parser::Scratch;

/// A position in the source text. All offsets are byte offsets.
pub(super) struct Cursor<'a> {
    pub(super) src: &'a str,
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
    /// The parser's work stacks (kept here so every parse function can reach them).
    pub(super) scratch: Scratch,
}

pub(super) type PResult<T> = Result<T, ParseError>;

impl<'a> Cursor<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Cursor {
            src,
            b: src.as_bytes(),
            pos: 0,
            scratch: Scratch::default(),
        }
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    pub(super) fn peek_at(&self, n: usize) -> Option<u8> {
        self.b.get(self.pos + n).copied()
    }

    #[inline]
    pub(super) fn at_eof(&self) -> bool {
        self.pos >= self.b.len()
    }

    #[inline]
    pub(super) fn starts_with(&self, s: &[u8]) -> bool {
        self.b[self.pos..].starts_with(s)
    }

    pub(super) fn err<T>(&self, offset: usize, message: &'static str) -> PResult<T> {
        Err(ParseError { offset, message })
    }

    /// Length of the newline at the cursor, or 0.
    #[inline]
    pub(super) fn newline(&self) -> usize {
        newline_len(self.b, self.pos)
    }

    /// `ws := unicode-space | multi-line-comment`, repeated; returns whether any was consumed.
    pub(super) fn skip_ws(&mut self) -> PResult<bool> {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment()?,
                Some(c) if c >= 0x80 => {
                    let n = space_len(self.b, self.pos);
                    if n == 0 {
                        break;
                    }
                    self.pos += n;
                }
                _ => break,
            }
        }
        Ok(self.pos != start)
    }

    /// `multi-line-comment`, nested, at the cursor (which is on `/*`). Iterative.
    fn block_comment(&mut self) -> PResult<()> {
        let open = self.pos;
        self.pos += 2;
        let mut depth = 1usize;
        while depth > 0 {
            match self.b[self.pos..]
                .iter()
                .position(|&c| c == b'*' || c == b'/')
            {
                None => {
                    self.pos = self.b.len();
                    return self.err(open, "unterminated block comment");
                }
                Some(k) => {
                    self.pos += k;
                    if self.starts_with(b"*/") {
                        depth -= 1;
                        self.pos += 2;
                    } else if self.starts_with(b"/*") {
                        depth += 1;
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// `single-line-comment` at the cursor (which is on `//`): up to and including the newline.
    pub(super) fn line_comment(&mut self) {
        self.pos += 2;
        while !self.at_eof() {
            let n = self.newline();
            if n != 0 {
                self.pos += n;
                return;
            }
            self.pos += 1;
        }
    }

    /// `escline := '\' ws* (single-line-comment | newline | eof)` followed by `ws*`.
    /// Consumes nothing and returns false if the backslash does not start one.
    fn escline(&mut self) -> PResult<bool> {
        let save = self.pos;
        self.pos += 1;
        self.skip_ws()?;
        if self.starts_with(b"//") {
            self.line_comment();
        } else if self.at_eof() {
        } else {
            let n = self.newline();
            if n == 0 {
                self.pos = save;
                return Ok(false);
            }
            self.pos += n;
        }
        self.skip_ws()?;
        Ok(true)
    }

    /// `node-space*`; returns whether any was consumed.
    pub(super) fn skip_node_space(&mut self) -> PResult<bool> {
        let start = self.pos;
        loop {
            self.skip_ws()?;
            if self.peek() == Some(b'\\') && self.escline()? {
                continue;
            }
            break;
        }
        Ok(self.pos != start)
    }

    /// `line-space*` (node-space, newlines, line comments).
    pub(super) fn skip_line_space(&mut self) -> PResult<()> {
        loop {
            self.skip_node_space()?;
            if self.starts_with(b"//") {
                self.line_comment();
                continue;
            }
            let n = self.newline();
            if n == 0 {
                return Ok(());
            }
            self.pos += n;
        }
    }

    /// `slashdash := '/-' line-space*`, if at the cursor.
    pub(super) fn slashdash(&mut self) -> PResult<bool> {
        if self.starts_with(b"/-") {
            self.pos += 2;
            self.skip_line_space()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}
