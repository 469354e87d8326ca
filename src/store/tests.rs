use std::io::Write;

use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("store")).expect("open");
    (dir, store)
}

/// A manifest referencing a config and one layer, all committed; returns its descriptor.
fn image(store: &Store, layer: &[u8]) -> Descriptor {
    let (config, config_size) = store.put(b"{}").expect("config");
    let (layer, layer_size) = store.put(layer).expect("layer");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": layer_size}],
    });
    let bytes = serde_json::to_vec(&manifest).expect("json");
    let (digest, size) = store.put(&bytes).expect("manifest");
    Descriptor {
        media_type: MEDIA_MANIFEST.into(),
        digest,
        size,
        annotations: BTreeMap::new(),
    }
}

#[test]
fn layout_files_exist_after_open() {
    let (_dir, store) = store();
    let layout = fs::read_to_string(store.root().join("oci-layout")).expect("oci-layout");
    assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(store.root().join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], serde_json::json!([]));
}

#[test]
fn blobs_round_trip_and_are_named_by_digest() {
    let (_dir, store) = store();
    let (digest, size) = store.put(b"hello").expect("put");
    assert_eq!(size, 5);
    assert_eq!(digest, Digest::of(b"hello"));
    assert!(store.blob_path(&digest).ends_with(digest.hex()));
    assert_eq!(store.read(&digest).expect("read"), b"hello");
    // The same content twice is one blob.
    let mut ingest = store.ingest().expect("ingest");
    ingest.write_all(b"hello").expect("write");
    assert_eq!(ingest.commit().expect("commit").0, digest);
    assert_eq!(
        fs::read_dir(store.root().join("ingest"))
            .expect("dir")
            .count(),
        0
    );
}

#[test]
fn an_abandoned_ingest_leaves_nothing() {
    let (_dir, store) = store();
    let mut ingest = store.ingest().expect("ingest");
    ingest.write_all(b"half a layer").expect("write");
    drop(ingest);
    assert_eq!(
        fs::read_dir(store.root().join("ingest"))
            .expect("dir")
            .count(),
        0
    );
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256"))
            .expect("dir")
            .count(),
        0
    );
}

#[test]
fn reading_a_missing_or_corrupt_blob_says_which() {
    let (_dir, store) = store();
    let missing = Digest::of(b"never written");
    assert!(
        matches!(store.read(&missing), Err(StoreError::MissingBlob { digest }) if digest == missing)
    );
    let (digest, _) = store.put(b"content").expect("put");
    fs::write(store.blob_path(&digest), b"tampered").expect("tamper");
    assert!(matches!(
        store.read(&digest),
        Err(StoreError::CorruptBlob { .. })
    ));
}

#[test]
fn tags_are_set_replaced_and_removed() {
    let (_dir, store) = store();
    let a = image(&store, b"layer a");
    let b = image(&store, b"layer b");
    store.set_tag("web", &a).expect("tag");
    store.set_tag("db", &a).expect("tag");
    store.set_tag("web", &b).expect("retag");
    let tags = store.tags().expect("tags");
    assert_eq!(tags.keys().collect::<Vec<_>>(), ["db", "web"]);
    assert_eq!(tags["web"].digest, b.digest);
    assert!(store.remove_tag("db").expect("rm"));
    assert!(!store.remove_tag("db").expect("rm again"));
    assert_eq!(store.tags().expect("tags").len(), 1);
    let missing = Descriptor {
        digest: Digest::of(b"nope"),
        ..a
    };
    assert!(matches!(
        store.set_tag("x", &missing),
        Err(StoreError::MissingBlob { .. })
    ));
}

#[test]
fn fsck_passes_a_sound_store_and_names_each_problem() {
    let (_dir, store) = store();
    let manifest = image(&store, b"layer");
    store.set_tag("web", &manifest).expect("tag");
    assert_eq!(store.fsck(&[]).expect("fsck"), vec![]);

    let layer = Digest::of(b"layer");
    fs::write(store.blob_path(&layer), b"rot").expect("corrupt");
    let config = Digest::of(b"{}");
    fs::remove_file(store.blob_path(&config)).expect("remove");
    fs::write(store.root().join("blobs/sha256/not-a-digest"), b"").expect("stray");
    let problems = store.fsck(&[]).expect("fsck");
    assert!(
        problems.contains(&Problem::Corrupt {
            digest: layer.clone(),
            actual: Digest::of(b"rot")
        }),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::Missing { digest, .. } if *digest == config)),
        "{problems:?}"
    );
    assert!(
        problems.contains(&Problem::StrayFile {
            name: "not-a-digest".into()
        }),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::WrongSize { digest, .. } if *digest == layer)),
        "{problems:?}"
    );
    assert!(problems.iter().all(|p| !p.to_string().is_empty()));
}

#[test]
fn gc_keeps_what_tags_and_roots_reach_and_removes_the_rest() {
    let (_dir, store) = store();
    let tagged = image(&store, b"tagged layer");
    store.set_tag("web", &tagged).expect("tag");
    let (cached, cached_size) = store.put(b"cached layer").expect("put");
    let root = Descriptor {
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        digest: cached.clone(),
        size: cached_size,
        annotations: BTreeMap::new(),
    };
    let (garbage, _) = store.put(b"garbage").expect("put");
    // Leftovers of a crash: an ingest file and an index temp file.
    fs::write(store.root().join("ingest/.blob-1-1.tmp"), b"partial").expect("leftover");
    fs::write(store.root().join(".write-1-1.tmp"), b"partial").expect("leftover");

    let report = store.gc(std::slice::from_ref(&root)).expect("gc");
    assert_eq!(report.blobs_removed, 1);
    assert_eq!(report.bytes_freed, 7);
    assert_eq!(report.ingest_files_removed, 2);
    assert!(!store.contains(&garbage));
    assert!(store.contains(&cached));
    assert!(store.contains(&Digest::of(b"tagged layer")));
    assert_eq!(store.fsck(&[root]).expect("fsck"), vec![]);
}

#[test]
fn concurrent_writers_and_taggers_keep_the_store_consistent() {
    let (_dir, store) = store();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = store.clone();
            scope.spawn(move || {
                let _guard = store.lock_shared().expect("shared");
                for i in 0..10 {
                    let manifest = image(&store, format!("layer {t}-{i}").as_bytes());
                    store
                        .set_tag(&format!("img-{t}-{i}"), &manifest)
                        .expect("tag");
                }
            });
        }
    });
    assert_eq!(store.tags().expect("tags").len(), 40);
    assert_eq!(store.fsck(&[]).expect("fsck"), vec![]);
}

#[test]
fn cache_entries_are_gc_roots_and_misses_when_their_layer_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (digest, size) = store.put(b"layer bytes").unwrap();
    let entry = CacheEntry {
        layer: Descriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            digest: digest.clone(),
            size,
            annotations: Default::default(),
        },
        diff_id: digest.clone(),
    };
    store.cache_put("k1", &entry).unwrap();
    assert_eq!(store.cache_get("k1").unwrap(), Some(entry.clone()));
    assert_eq!(store.cache_get("k2").unwrap(), None);
    let roots = store.cache_roots().unwrap();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0], entry.layer);
    let report = store.gc(&roots).unwrap();
    assert_eq!(report.blobs_removed, 0);
    assert!(store.contains(&digest));
    assert_eq!(store.cache_clear().unwrap(), 1);
    let report = store.gc(&store.cache_roots().unwrap()).unwrap();
    assert_eq!(report.blobs_removed, 1);
    store.cache_put("k1", &entry).unwrap();
    assert_eq!(store.cache_get("k1").unwrap(), None, "layer gone: a miss");
}
