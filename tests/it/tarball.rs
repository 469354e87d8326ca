//! Crafting tar streams and image archives for the hostile-input tests and the archive
//! fuzzer: any name (`..`, absolute, duplicates), any link target, devices, and valid OCI
//! and Docker archives around them. Written with raw headers, since a well-behaved tar
//! writer refuses to make hostile archives.

use sha2::{Digest as _, Sha256};

/// One tar member.
#[derive(Debug, Clone)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub kind: Kind,
    pub mode: u32,
}

pub fn file(name: &str, content: impl AsRef<[u8]>) -> Member {
    Member {
        name: name.into(),
        kind: Kind::File(content.as_ref().to_vec()),
        mode: 0o644,
    }
}

pub fn dir(name: &str) -> Member {
    Member {
        name: name.into(),
        kind: Kind::Dir,
        mode: 0o755,
    }
}

pub fn symlink(name: &str, target: &str) -> Member {
    Member {
        name: name.into(),
        kind: Kind::Symlink(target.into()),
        mode: 0o777,
    }
}

pub fn hardlink(name: &str, target: &str) -> Member {
    Member {
        name: name.into(),
        kind: Kind::Hardlink(target.into()),
        mode: 0o644,
    }
}

pub fn device(name: &str, major: u32, minor: u32) -> Member {
    Member {
        name: name.into(),
        kind: Kind::Char(major, minor),
        mode: 0o666,
    }
}

/// A ustar header for `member`; names and link targets longer than ustar allows get a
/// PAX header first.
fn header(member: &Member, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let target = match &member.kind {
        Kind::Symlink(t) | Kind::Hardlink(t) => t.as_str(),
        _ => "",
    };
    if member.name.len() > 100 || target.len() > 100 {
        let mut records = Vec::new();
        for (key, value) in [("path", member.name.as_str()), ("linkpath", target)] {
            if value.is_empty() {
                continue;
            }
            let body = format!(" {key}={value}\n");
            // The length prefix counts itself.
            let mut len = body.len() + 1;
            while format!("{len}{body}").len() != len {
                len += 1;
            }
            records.extend_from_slice(format!("{len}{body}").as_bytes());
        }
        let pax = Member {
            name: "PaxHeaders/x".into(),
            kind: Kind::File(Vec::new()),
            mode: 0o644,
        };
        let mut h = raw_header(&pax, records.len() as u64, b'x', "");
        fix_checksum(&mut h);
        out.extend_from_slice(&h);
        out.extend_from_slice(&records);
        pad(&mut out);
    }
    let kind = match &member.kind {
        Kind::File(_) => b'0',
        Kind::Hardlink(_) => b'1',
        Kind::Symlink(_) => b'2',
        Kind::Char(..) => b'3',
        Kind::Block(..) => b'4',
        Kind::Dir => b'5',
        Kind::Fifo => b'6',
    };
    let mut h = raw_header(member, size, kind, target);
    if let Kind::Char(major, minor) | Kind::Block(major, minor) = member.kind {
        octal(&mut h[329..337], u64::from(major));
        octal(&mut h[337..345], u64::from(minor));
    }
    fix_checksum(&mut h);
    out.extend_from_slice(&h);
    out
}

fn raw_header(member: &Member, size: u64, kind: u8, target: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    let name = member.name.as_bytes();
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    octal(&mut h[100..108], u64::from(member.mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = kind;
    let target = target.as_bytes();
    h[157..157 + target.len().min(100)].copy_from_slice(&target[..target.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h
}

fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    field[width] = 0;
}

fn fix_checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
}

fn pad(out: &mut Vec<u8>) {
    while out.len() % 512 != 0 {
        out.push(0);
    }
}

/// The tar stream of `members`, in order, with the two zero blocks at the end.
pub fn tar(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for member in members {
        let content: &[u8] = match &member.kind {
            Kind::File(bytes) => bytes,
            _ => &[],
        };
        out.extend_from_slice(&header(member, content.len() as u64));
        out.extend_from_slice(content);
        pad(&mut out);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Just the header of a file member of `size` bytes (to stream its content separately).
pub fn file_header(name: &str, size: u64) -> Vec<u8> {
    header(&file(name, []), size)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// An image config over uncompressed layers with these diff_ids.
pub fn config(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// A Docker archive (`docker save` layout) of one image named `tag` with these layer tars
/// (each `<diff_id hex>/layer.tar`); `extra` members go before `manifest.json`.
pub fn docker_archive(tag: &str, layers: &[Vec<u8>], extra: &[Member]) -> Vec<Member> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let config = config(&diff_ids);
    let config_name = format!("{}.json", sha256_hex(&config));
    let mut members = Vec::new();
    let mut names = Vec::new();
    for layer in layers {
        let name = format!("{}/layer.tar", sha256_hex(layer));
        members.push(file(&name, layer));
        names.push(name);
    }
    members.push(file(&config_name, &config));
    members.extend_from_slice(extra);
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": names,
    }]);
    members.push(file(
        "manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    ));
    members
}

/// An OCI layout's files: blobs by digest, a manifest over `layers` (uncompressed; their
/// descriptors' sizes from `sizes` where given), index.json naming it `tag`.
pub struct Oci {
    pub blobs: Vec<(String, Vec<u8>)>,
    pub index: Vec<u8>,
}

pub fn oci(tag: &str, layers: &[Vec<u8>], sizes: Option<&[u64]>) -> Oci {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let config = config(&diff_ids);
    let descriptor = |media: &str, bytes: &[u8], size: u64| serde_json::json!({"mediaType": media, "digest": format!("sha256:{}", sha256_hex(bytes)), "size": size});
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let size = sizes.map_or(l.len() as u64, |s| s[i]);
            descriptor("application/vnd.oci.image.layer.v1.tar", l, size)
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config, config.len() as u64),
        "layers": layer_descriptors,
    }))
    .unwrap();
    let mut manifest_descriptor = descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
        manifest.len() as u64,
    );
    manifest_descriptor["annotations"] =
        serde_json::json!({"org.opencontainers.image.ref.name": tag});
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [manifest_descriptor],
    }))
    .unwrap();
    let mut blobs: Vec<(String, Vec<u8>)> =
        layers.iter().map(|l| (sha256_hex(l), l.clone())).collect();
    blobs.push((sha256_hex(&config), config));
    blobs.push((sha256_hex(&manifest), manifest));
    Oci { blobs, index }
}

impl Oci {
    /// The layout as archive members (`skip` leaves out the blobs with these hex names).
    pub fn members(&self, skip: &[&str]) -> Vec<Member> {
        let mut out = vec![file("oci-layout", r#"{"imageLayoutVersion":"1.0.0"}"#)];
        out.push(file("index.json", &self.index));
        for (hex, bytes) in &self.blobs {
            if !skip.contains(&hex.as_str()) {
                out.push(file(&format!("blobs/sha256/{hex}"), bytes));
            }
        }
        out
    }

    /// Writes the layout as a directory.
    pub fn write_dir(&self, dir: &std::path::Path) {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(dir.join("index.json"), &self.index).unwrap();
        for (hex, bytes) in &self.blobs {
            std::fs::write(dir.join("blobs/sha256").join(hex), bytes).unwrap();
        }
    }
}
