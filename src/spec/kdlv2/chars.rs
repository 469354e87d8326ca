//! Character classes of KDL v2: newlines, unicode spaces, identifier characters and the
//! disallowed literal code points. Everything works on byte offsets into valid UTF-8, with an
//! ASCII fast path; no other module decides what a character "is".

/// Length in bytes of the newline starting at `i` (CRLF counts as one), or 0.
#[inline]
pub(super) fn newline_len(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'\n' | 0x0B | 0x0C) => 1,
        Some(b'\r') => {
            if b.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            }
        }
        // U+0085 NEL
        Some(0xC2) if b.get(i + 1) == Some(&0x85) => 2,
        // U+2028 LS, U+2029 PS
        Some(0xE2) if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xA8 | 0xA9)) => 3,
        _ => 0,
    }
}

/// Length in bytes of the unicode space (White_Space minus newlines) at `i`, or 0.
#[inline]
pub(super) fn space_len(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b' ' | b'\t') => 1,
        Some(c) if *c < 0x80 => 0,
        // U+00A0
        Some(0xC2) if b.get(i + 1) == Some(&0xA0) => 2,
        // U+1680
        Some(0xE1) if b.get(i + 1) == Some(&0x9A) && b.get(i + 2) == Some(&0x80) => 3,
        Some(0xE2) => match (b.get(i + 1), b.get(i + 2)) {
            // U+2000..=U+200A, U+202F
            (Some(0x80), Some(0x80..=0x8A | 0xAF)) => 3,
            // U+205F
            (Some(0x81), Some(0x9F)) => 3,
            _ => 0,
        },
        // U+3000
        Some(0xE3) if b.get(i + 1) == Some(&0x80) && b.get(i + 2) == Some(&0x80) => 3,
        _ => 0,
    }
}

/// Whether an ASCII byte may appear in an identifier string.
const fn ascii_ident(c: u8) -> bool {
    c > b' '
        && c != 0x7F
        && !matches!(
            c,
            b'\\' | b'/' | b'(' | b')' | b'{' | b'}' | b'[' | b']' | b';' | b'"' | b'#' | b'='
        )
}

/// [`ascii_ident`] as a table, for the hot loop over identifier characters.
static ASCII_IDENT: [bool; 128] = {
    let mut table = [false; 128];
    let mut c = 0;
    while c < 128 {
        table[c] = ascii_ident(c as u8);
        c += 1;
    }
    table
};

/// Length of the run of identifier characters starting at `i`.
#[inline]
pub(super) fn ident_run(b: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(&c) = b.get(i) {
        if c < 0x80 {
            if !ASCII_IDENT[usize::from(c)] {
                break;
            }
            i += 1;
        } else {
            let n = ident_char_len(b, i);
            if n == 0 {
                break;
            }
            i += n;
        }
    }
    i - start
}

/// Length in bytes of the identifier character at `i`, or 0 (also 0 at the end).
///
/// Assumes the disallowed code points were rejected up front (see [`first_disallowed`]).
#[inline]
pub(super) fn ident_char_len(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        None => 0,
        Some(&c) if c < 0x80 => usize::from(ascii_ident(c)),
        Some(&c) => {
            if space_len(b, i) != 0 || newline_len(b, i) != 0 {
                0
            } else {
                utf8_len(c)
            }
        }
    }
}

/// Length of the UTF-8 sequence introduced by lead byte `c`.
#[inline]
pub(super) fn utf8_len(c: u8) -> usize {
    match c {
        0..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Offset of the first disallowed literal code point in `b` (a BOM is allowed only at 0).
///
/// Disallowed: U+0000-0008, U+000E-001F, U+007F, U+200E-200F, U+202A-202E, U+2066-2069 and
/// U+FEFF. The spec forbids them anywhere in a document, comments included.
pub(super) fn first_disallowed(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            0x00..=0x08 | 0x0E..=0x1F | 0x7F => return Some(i),
            0xE2 => {
                let bad = matches!(
                    (b.get(i + 1), b.get(i + 2)),
                    (Some(0x80), Some(0x8E | 0x8F | 0xAA..=0xAE)) | (Some(0x81), Some(0xA6..=0xA9))
                );
                if bad {
                    return Some(i);
                }
            }
            0xEF if i != 0 && b.get(i + 1) == Some(&0xBB) && b.get(i + 2) == Some(&0xBF) => {
                return Some(i);
            }
            _ => {}
        }
        i += 1;
    }
    None
}
