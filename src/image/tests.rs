use super::*;

#[test]
fn config_json_is_sorted_and_stable() {
    let mut config = ImageConfig::empty();
    config.config.labels.insert("z".into(), "1".into());
    config.config.labels.insert("a".into(), "2".into());
    config.set_env("PATH", "/bin");
    config.set_env("A", "1");
    config.set_env("PATH", "/usr/bin");
    let json = String::from_utf8(config.to_canonical_json()).unwrap();
    assert!(json.contains(r#""Labels":{"a":"2","z":"1"}"#), "{json}");
    assert!(json.contains(r#""Env":["PATH=/usr/bin","A=1"]"#), "{json}");
    assert_eq!(config.env("PATH"), Some("/usr/bin"));
    let back: ImageConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
    assert_eq!(back.to_canonical_json(), config.to_canonical_json());
}

#[test]
fn images_round_trip_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let (layer, _) = store.put(b"not really a tar").unwrap();
    let layer = Descriptor {
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        digest: layer,
        size: 16,
        annotations: Default::default(),
    };
    let mut config = ImageConfig::empty();
    config.config.cmd = Some(vec!["sh".into()]);
    let (descriptor, manifest) =
        write_image(&store, &config, std::slice::from_ref(&layer)).unwrap();
    let (again, _) = write_image(&store, &config, &[layer]).unwrap();
    assert_eq!(descriptor, again, "same inputs, same digest");
    store.set_tag("demo", &descriptor).unwrap();
    let loaded = StoredImage::load(&store, "demo").unwrap();
    assert_eq!(loaded.manifest, manifest);
    assert_eq!(loaded.config, config);
    let by_digest = StoredImage::load(&store, &descriptor.digest.to_string()).unwrap();
    assert_eq!(by_digest.manifest, manifest);
    assert!(matches!(
        StoredImage::load(&store, "nope"),
        Err(ImageError::NotFound { .. })
    ));
}
