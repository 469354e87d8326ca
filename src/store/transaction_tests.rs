//! Ingest transactions: verified staging, all-or-nothing commits, leftovers.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("store")).expect("open");
    (dir, store)
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        annotations: BTreeMap::new(),
    }
}

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

fn manifest_bytes(config: &Descriptor, layers: &[Descriptor]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config,
        "layers": layers,
    }))
    .unwrap()
}

/// Every file under the store with its bytes (lock files aside): "byte-identical" means
/// this map is equal.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if entry.file_type().unwrap().is_dir() {
                out.insert(format!("{name}/"), Vec::new());
                stack.push(path);
            } else if !name.ends_with(".lock") {
                out.insert(name, fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_transaction_commits_blobs_and_tags_together() {
    let (_dir, store) = store();
    let tx = store.begin().unwrap();
    let config = descriptor(CONFIG, b"{}");
    let layer = descriptor(LAYER, b"layer bytes");
    tx.put(b"{}", Some(&config)).unwrap();
    let mut w = tx.writer(Some(&layer)).unwrap();
    w.write_all(b"layer ").unwrap();
    w.write_all(b"bytes").unwrap();
    assert_eq!(w.finish().unwrap(), (layer.digest.clone(), 11));
    // An extra staged blob that nothing refers to is not published.
    tx.put(b"unreferenced", None).unwrap();
    let bytes = manifest_bytes(&config, std::slice::from_ref(&layer));
    let manifest = descriptor(MEDIA_MANIFEST, &bytes);
    tx.put(&bytes, Some(&manifest)).unwrap();
    tx.tag("web", &manifest).unwrap();
    // Nothing is visible before the commit.
    assert!(!store.contains(&layer.digest));
    assert!(store.tags().unwrap().is_empty());
    let report = tx.commit().unwrap();
    assert_eq!(report.blobs_added, 3);
    assert_eq!(report.blobs_discarded, 1);
    assert!(store.contains(&layer.digest));
    assert!(!store.contains(&Digest::of(b"unreferenced")));
    assert_eq!(store.tag("web").unwrap().unwrap().digest, manifest.digest);
    assert_eq!(
        fs::read_dir(store.root().join("ingest")).unwrap().count(),
        0
    );
    assert_eq!(store.fsck(&[]).unwrap(), vec![]);
}

#[test]
fn a_blob_that_is_not_what_its_descriptor_says_is_refused_while_streaming() {
    let (_dir, store) = store();
    let tx = store.begin().unwrap();
    let layer = descriptor(LAYER, b"12345");
    // Too many bytes: the write fails as soon as they pass the announced size.
    let mut w = tx.writer(Some(&layer)).unwrap();
    assert!(w.write_all(b"123456").is_err());
    drop(w);
    // Too few bytes.
    let mut w = tx.writer(Some(&layer)).unwrap();
    w.write_all(b"1234").unwrap();
    assert!(matches!(
        w.finish(),
        Err(StoreError::WrongSize {
            expected: 5,
            actual: 4,
            ..
        })
    ));
    // The right size, other content.
    let mut w = tx.writer(Some(&layer)).unwrap();
    w.write_all(b"54321").unwrap();
    assert!(matches!(w.finish(), Err(StoreError::WrongDigest { .. })));
    assert!(matches!(
        tx.put(b"54321", Some(&layer)),
        Err(StoreError::WrongDigest { .. })
    ));
    // Nothing staged is left but the transaction's own lock file.
    assert_eq!(
        fs::read_dir(store.root().join("ingest")).unwrap().count(),
        1
    );
}

#[test]
fn a_commit_that_does_not_verify_leaves_the_store_byte_identical() {
    let (_dir, store) = store();
    // Something already in the store.
    let old_layer = descriptor(LAYER, b"old");
    store.put(b"old").unwrap();
    let old_config = descriptor(CONFIG, b"{\"old\":1}");
    store.put(b"{\"old\":1}").unwrap();
    let old_bytes = manifest_bytes(&old_config, std::slice::from_ref(&old_layer));
    store.put(&old_bytes).unwrap();
    store
        .set_tag("old", &descriptor(MEDIA_MANIFEST, &old_bytes))
        .unwrap();
    let before = snapshot(store.root());

    let config = descriptor(CONFIG, b"{}");
    let layer = descriptor(LAYER, b"new layer");
    let lying = Descriptor {
        size: 3,
        ..layer.clone()
    };
    let missing = descriptor(LAYER, b"never staged");
    let cases: Vec<(&str, Vec<Descriptor>)> = vec![
        ("a layer size that lies", vec![lying]),
        ("a missing layer", vec![layer.clone(), missing]),
        (
            "a stored blob with the wrong size",
            vec![Descriptor {
                size: 99,
                ..old_layer.clone()
            }],
        ),
    ];
    for (what, layers) in cases {
        let tx = store.begin().unwrap();
        tx.put(b"{}", Some(&config)).unwrap();
        tx.put(b"new layer", None).unwrap();
        let bytes = manifest_bytes(&config, &layers);
        let manifest = descriptor(MEDIA_MANIFEST, &bytes);
        tx.put(&bytes, None).unwrap();
        tx.tag("old", &manifest).unwrap();
        tx.tag("new", &manifest).unwrap();
        let err = tx.commit().expect_err(what);
        assert!(
            matches!(
                err,
                StoreError::WrongSize { .. } | StoreError::MissingReference { .. }
            ),
            "{what}: {err}"
        );
        assert_eq!(snapshot(store.root()), before, "{what}");
    }
    // A manifest whose own descriptor lies about its size, and one that is not JSON.
    let tx = store.begin().unwrap();
    let bytes = manifest_bytes(&old_config, std::slice::from_ref(&old_layer));
    tx.put(&bytes, None).unwrap();
    let mut manifest = descriptor(MEDIA_MANIFEST, &bytes);
    manifest.size += 1;
    tx.tag("x", &manifest).unwrap();
    assert!(matches!(tx.commit(), Err(StoreError::WrongSize { .. })));
    let tx = store.begin().unwrap();
    tx.put(b"not json", None).unwrap();
    tx.tag("x", &descriptor(MEDIA_MANIFEST, b"not json"))
        .unwrap();
    assert!(matches!(tx.commit(), Err(StoreError::BadReference { .. })));
    // A tag must name a manifest.
    let tx = store.begin().unwrap();
    assert!(matches!(
        tx.tag("x", &old_layer),
        Err(StoreError::NotAManifest { .. })
    ));
    drop(tx);
    assert_eq!(snapshot(store.root()), before);
    assert_eq!(store.fsck(&[]).unwrap(), vec![]);
}

#[test]
fn blobs_stream_into_one_transaction_from_several_threads() {
    let (_dir, store) = store();
    let tx = store.begin().unwrap();
    let layers: Vec<Descriptor> = (0..8)
        .map(|i| descriptor(LAYER, format!("layer {i}").as_bytes()))
        .collect();
    std::thread::scope(|scope| {
        for (i, layer) in layers.iter().enumerate() {
            let tx = &tx;
            scope.spawn(move || {
                let mut w = tx.writer(Some(layer)).unwrap();
                w.write_all(format!("layer {i}").as_bytes()).unwrap();
                w.finish().unwrap();
            });
        }
    });
    let config = descriptor(CONFIG, b"{}");
    tx.put(b"{}", None).unwrap();
    let bytes = manifest_bytes(&config, &layers);
    let manifest = descriptor(MEDIA_MANIFEST, &bytes);
    tx.put(&bytes, None).unwrap();
    tx.keep(&manifest);
    assert_eq!(tx.commit().unwrap().blobs_added, 10);
    assert!(store.tags().unwrap().is_empty());
    assert!(layers.iter().all(|l| store.contains(&l.digest)));
}

#[test]
fn fsck_reports_a_leftover_ingest_file_but_not_a_write_in_progress() {
    let (_dir, store) = store();
    let mut live = store.ingest().unwrap();
    live.write_all(b"in progress").unwrap();
    // What a SIGKILLed writer leaves: a file nobody holds a lock on.
    let leftover = store.root().join("ingest/.blob-999999-0.tmp");
    fs::write(&leftover, vec![0; 4096]).unwrap();
    let problems = store.fsck(&[]).unwrap();
    assert_eq!(
        problems,
        vec![Problem::Leftover {
            path: "ingest/.blob-999999-0.tmp".into(),
            size: 4096
        }]
    );
    assert!(problems[0].to_string().contains("kiln gc"));
    drop(live);
    assert_eq!(store.gc(&[]).unwrap().ingest_files_removed, 1);
    assert_eq!(store.fsck(&[]).unwrap(), vec![]);
}

#[test]
fn the_store_directories_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    fs::create_dir_all(root.join("ingest")).unwrap();
    for d in [&root, &root.join("ingest")] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let store = Store::open(&root).unwrap();
    for d in [store.root().to_path_buf(), store.root().join("ingest")] {
        let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
}

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_transaction_holds_one_lock_not_one_descriptor_per_blob() {
    let (_dir, store) = store();
    let tx = store.begin().unwrap();
    let before = open_fds();
    for i in 0..200 {
        tx.put(format!("blob {i}").as_bytes(), None).unwrap();
    }
    // Other tests' threads open files too: a margin, far below one per blob.
    assert!(open_fds() < before + 50, "{} → {}", before, open_fds());
    // Its staged files are live while it is: fsck leaves them alone.
    assert_eq!(store.fsck(&[]).unwrap(), vec![]);
    drop(tx);
    assert_eq!(
        fs::read_dir(store.root().join("ingest")).unwrap().count(),
        0
    );
}

#[test]
fn a_killed_transactions_files_are_leftovers() {
    let (_dir, store) = store();
    // What a SIGKILLed transaction leaves: its lock file (unlocked now) and a blob.
    let ingest = store.root().join("ingest");
    fs::write(ingest.join(".tx-999999-3.lock"), b"").unwrap();
    fs::write(ingest.join(".tx-999999-3-0.tmp"), b"half a layer").unwrap();
    assert_eq!(
        store.fsck(&[]).unwrap(),
        vec![Problem::Leftover {
            path: "ingest/.tx-999999-3-0.tmp".into(),
            size: 12
        }]
    );
    assert_eq!(store.gc(&[]).unwrap().ingest_files_removed, 1);
    assert_eq!(fs::read_dir(&ingest).unwrap().count(), 0);
}

#[test]
fn fsck_checks_the_size_of_every_reference_to_a_blob() {
    let (_dir, store) = store();
    let layer = descriptor(LAYER, b"layer");
    store.put(b"layer").unwrap();
    let config = descriptor(CONFIG, b"{}");
    store.put(b"{}").unwrap();
    // Two manifests name the same layer; the second says the wrong size.
    let good = manifest_bytes(&config, std::slice::from_ref(&layer));
    let bad = manifest_bytes(
        &config,
        &[Descriptor {
            size: 99,
            ..layer.clone()
        }],
    );
    for (name, bytes) in [("a", &good), ("b", &bad)] {
        store.put(bytes).unwrap();
        store
            .set_tag(name, &descriptor(MEDIA_MANIFEST, bytes))
            .unwrap();
    }
    assert_eq!(
        store.fsck(&[]).unwrap(),
        vec![Problem::WrongSize {
            digest: layer.digest.clone(),
            expected: 99,
            actual: 5
        }]
    );
}
