//! Byte-exact tar headers: a POSIX ustar block, preceded by a PAX extended header only when
//! some field does not fit ustar. Every byte depends only on the fields passed in, so the
//! same entry always encodes the same way.

use std::collections::BTreeMap;

use tar::{EntryType, Header};

pub(super) const BLOCK: usize = 512;

/// The octal ceiling of ustar's 8-byte uid/gid fields.
const MAX_OCTAL_ID: u64 = 0o7777777;
/// The octal ceiling of ustar's 12-byte size field.
const MAX_OCTAL_SIZE: u64 = 0o77777777777;

/// The fields of one tar member.
pub(super) struct Member<'a> {
    /// The path in the archive; directories end with `/`.
    pub(super) path: &'a str,
    pub(super) kind: EntryType,
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) size: u64,
    pub(super) mtime: u64,
    pub(super) link: Option<&'a str>,
    pub(super) device: Option<(u32, u32)>,
    pub(super) xattrs: &'a BTreeMap<String, Vec<u8>>,
}

/// The header blocks of `member` (PAX header and its records if needed, then the ustar
/// block). The caller writes the content and pads it to a block.
pub(super) fn encode(member: &Member<'_>) -> Vec<u8> {
    let mut records = Vec::new();
    let (prefix, name, path_fits) = split_ustar_path(member.path);
    if !path_fits {
        pax_record(&mut records, "path", member.path.as_bytes());
    }
    if let Some(link) = member.link {
        if link.len() > 100 || !link.is_ascii() {
            pax_record(&mut records, "linkpath", link.as_bytes());
        }
    }
    if member.size > MAX_OCTAL_SIZE {
        pax_record(&mut records, "size", member.size.to_string().as_bytes());
    }
    if u64::from(member.uid) > MAX_OCTAL_ID {
        pax_record(&mut records, "uid", member.uid.to_string().as_bytes());
    }
    if u64::from(member.gid) > MAX_OCTAL_ID {
        pax_record(&mut records, "gid", member.gid.to_string().as_bytes());
    }
    for (key, value) in member.xattrs {
        pax_record(&mut records, &format!("SCHILY.xattr.{key}"), value);
    }

    let mut out = Vec::with_capacity(BLOCK * 3 + records.len());
    if !records.is_empty() {
        let pax_name = pax_header_name(member.path);
        let pax = ustar_block(&UstarFields {
            prefix: "",
            name: &pax_name,
            kind: EntryType::XHeader,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime: member.mtime,
            link: "",
            device: None,
        });
        out.extend_from_slice(&pax);
        out.extend_from_slice(&records);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    let link = member.link.unwrap_or("");
    out.extend_from_slice(&ustar_block(&UstarFields {
        prefix,
        name,
        kind: member.kind,
        mode: member.mode,
        uid: member.uid,
        gid: member.gid,
        size: member.size,
        mtime: member.mtime,
        link: truncate(link, 100),
        device: member.device,
    }));
    out
}

/// The bytes that pad `size` content bytes to a whole block.
pub(super) fn padding(size: u64) -> usize {
    let rest = (size % BLOCK as u64) as usize;
    if rest == 0 { 0 } else { BLOCK - rest }
}

struct UstarFields<'a> {
    prefix: &'a str,
    name: &'a str,
    kind: EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: u64,
    link: &'a str,
    device: Option<(u32, u32)>,
}

fn ustar_block(fields: &UstarFields<'_>) -> [u8; BLOCK] {
    let mut header = Header::new_ustar();
    {
        let ustar = header
            .as_ustar_mut()
            .expect("a new ustar header has the ustar magic");
        copy_field(&mut ustar.name, fields.name);
        copy_field(&mut ustar.prefix, fields.prefix);
        copy_field(&mut ustar.linkname, fields.link);
    }
    header.set_entry_type(fields.kind);
    header.set_mode(fields.mode & 0o7777);
    header.set_uid(u64::from(fields.uid));
    header.set_gid(u64::from(fields.gid));
    header.set_size(fields.size);
    header.set_mtime(fields.mtime);
    // ustar writes device numbers for every member (zero when not a device), as GNU tar does.
    let (major, minor) = fields.device.unwrap_or((0, 0));
    header
        .set_device_major(major)
        .expect("ustar headers have device fields");
    header
        .set_device_minor(minor)
        .expect("ustar headers have device fields");
    header.set_cksum();
    *header.as_bytes()
}

fn copy_field(field: &mut [u8], value: &str) {
    field.fill(0);
    let bytes = value.as_bytes();
    let len = bytes.len().min(field.len());
    field[..len].copy_from_slice(&bytes[..len]);
}

/// Splits `path` into ustar `prefix` and `name`. The flag says whether the split holds the
/// whole path in portable ASCII; when it does not, the fields hold a truncated fallback and
/// a PAX `path` record carries the real path.
fn split_ustar_path(path: &str) -> (&str, &str, bool) {
    if !path.is_ascii() {
        return ("", truncate(path, 100), false);
    }
    if path.len() <= 100 {
        return ("", path, true);
    }
    // A directory's trailing slash stays with the name.
    let body = path.strip_suffix('/').unwrap_or(path);
    for (index, _) in body.match_indices('/') {
        let (prefix, name) = (&path[..index], &path[index + 1..]);
        if prefix.len() <= 155 && name.len() <= 100 {
            return (prefix, name, true);
        }
        if prefix.len() > 155 {
            break;
        }
    }
    ("", truncate(path, 100), false)
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `PaxHeaders/<basename>`, ASCII only and at most 100 bytes, like other deterministic
/// writers (GNU tar's default includes its process id).
fn pax_header_name(path: &str) -> String {
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let base: String = base
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    let mut name = format!("PaxHeaders/{base}");
    name.truncate(100);
    name
}

/// Appends `"<len> <key>=<value>\n"`, where len counts the whole record including itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, "path", b"abc");
        assert_eq!(out, b"12 path=abc\n");
        // 9 + 90 digits bytes: the length crosses from two to three digits.
        let mut out = Vec::new();
        pax_record(&mut out, "path", &[b'x'; 92]);
        let text = String::from_utf8(out.clone()).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), out.len());
    }

    #[test]
    fn long_ascii_paths_split_into_prefix_and_name() {
        let path = format!("{}/{}", "a".repeat(120), "b".repeat(90));
        let (prefix, name, fits) = split_ustar_path(&path);
        assert!(fits);
        assert_eq!(prefix.len(), 120);
        assert_eq!(name.len(), 90);
        let too_long = "c".repeat(101);
        assert!(!split_ustar_path(&too_long).2);
        assert!(!split_ustar_path("héllo").2);
    }
}
