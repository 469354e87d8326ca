//! File trees to compare: an image's root filesystem as one line per path (type, mode,
//! owner, content hash, link target, hard-link group), from a directory on disk or from the
//! layers of an image kiln built.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::Project;

/// One line per path below `root` (the root itself left out), sorted: `d 0755 0:0`,
/// `f 0644 0:0 <sha256> [linked to PATH]` (PATH: the first path, in order, of the files
/// sharing its inode), `l -> TARGET` or `o` (a device, FIFO or socket). Modification times
/// are not compared.
pub fn listing(root: &Path) -> BTreeMap<String, String> {
    let mut paths = Vec::new();
    walk(root, "", &mut paths);
    paths.sort();
    let mut first_of_inode: HashMap<(u64, u64), String> = HashMap::new();
    let mut out = BTreeMap::new();
    for rel in paths {
        let path = root.join(&rel);
        let meta = std::fs::symlink_metadata(&path).expect("lstat");
        let owner = format!("{:04o} {}:{}", meta.mode() & 0o7777, meta.uid(), meta.gid());
        let kind = meta.file_type();
        let line = if kind.is_dir() {
            format!("d {owner}")
        } else if kind.is_symlink() {
            format!(
                "l -> {}",
                std::fs::read_link(&path).expect("readlink").display()
            )
        } else if kind.is_file() {
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .expect("read");
            let hash = hex(&Sha256::digest(&bytes));
            let mut line = format!("f {owner} {}", &hash[..16]);
            if meta.nlink() > 1 {
                let first = first_of_inode
                    .entry((meta.dev(), meta.ino()))
                    .or_insert_with(|| rel.clone());
                if *first != rel {
                    line.push_str(&format!(" linked to {first}"));
                }
            }
            line
        } else {
            "o".to_string()
        };
        out.insert(rel, line);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("readable") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = entry.file_type().expect("type").is_dir();
        out.push(child.clone());
        if is_dir {
            walk(&entry.path(), &child, out);
        }
    }
}

/// `a` and `b` side by side, only the lines that differ; empty when equal.
pub fn differences(
    a_name: &str,
    a: &BTreeMap<String, String>,
    b_name: &str,
    b: &BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let (x, y) = (a.get(path), b.get(path));
        if x != y {
            let show = |v: Option<&String>| v.map_or("(absent)".to_string(), Clone::clone);
            out.push_str(&format!(
                "/{path}\n    {a_name}: {}\n    {b_name}: {}\n",
                show(x),
                show(y)
            ));
        }
    }
    out
}

/// An OCI layout of `image` exported by kiln with uncompressed layers, in `out`.
fn export(project: &Project, state_root: &Path, image: &str, out: &Path) {
    project
        .kiln(state_root)
        .args([
            "export",
            image,
            "--format",
            "oci-dir",
            "--compression",
            "none",
            "-o",
        ])
        .args([out])
        .run()
        .success();
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("readable")).expect("json")
}

/// The layer blobs of the only image of an OCI layout, bottom first.
fn layer_blobs(layout: &Path) -> Vec<std::path::PathBuf> {
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index = json(&layout.join("index.json"));
    let manifest = json(&blob(
        index["manifests"][0]["digest"].as_str().expect("digest"),
    ));
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| blob(l["digest"].as_str().expect("digest")))
        .collect()
}

/// The root filesystem of `image` as kiln's extractor unpacks its layers (whiteouts applied,
/// ownership kept when running as root), in a temporary directory.
pub fn rootfs(project: &Project, state_root: &Path, image: &str) -> tempfile::TempDir {
    let work = tempfile::tempdir().expect("tempdir");
    let layout = work.path().join("layout");
    export(project, state_root, image, &layout);
    let root = tempfile::tempdir().expect("tempdir");
    let options = kiln::layer::ExtractOptions {
        whiteouts: kiln::layer::WhiteoutMode::Apply,
        preserve_ownership: nix::unistd::geteuid().is_root(),
        allow_devices: false,
    };
    for blob in layer_blobs(&layout) {
        let file = std::fs::File::open(&blob).expect("blob");
        kiln::layer::extract(file, root.path(), &options).expect("extract");
    }
    root
}

/// The tar members of each layer of `image`, bottom first: `NAME` for an entry, `NAME =>
/// TARGET` for a hard link.
pub fn layer_members(project: &Project, state_root: &Path, image: &str) -> Vec<Vec<String>> {
    let work = tempfile::tempdir().expect("tempdir");
    let layout = work.path().join("layout");
    export(project, state_root, image, &layout);
    layer_blobs(&layout)
        .iter()
        .map(|blob| {
            let mut archive = tar::Archive::new(std::fs::File::open(blob).expect("blob"));
            archive
                .entries()
                .expect("tar")
                .map(|e| {
                    let e = e.expect("entry");
                    let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                    match e.header().entry_type() {
                        tar::EntryType::Link => format!(
                            "{name} => {}",
                            String::from_utf8_lossy(&e.link_name_bytes().expect("target"))
                        ),
                        _ => name,
                    }
                })
                .collect()
        })
        .collect()
}
