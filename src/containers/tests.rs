use super::*;

#[test]
fn volumes_parse_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().display().to_string();
    let v = parse_volume(&format!("{src}:/data:ro")).unwrap();
    assert_eq!((v.destination.as_str(), v.read_only), ("/data", true));
    assert!(!parse_volume(&format!("{src}:/data")).unwrap().read_only);
    for bad in [
        src.clone(),
        format!("{src}:data"),
        format!("{src}:/data:rx"),
        "/no/such/dir:/data".to_string(),
        format!("{src}:/a:ro:x"),
    ] {
        assert!(parse_volume(&bad).is_err(), "{bad}");
    }
}

#[test]
fn memory_limits_parse_with_units() {
    assert_eq!(parse_memory("64MiB").unwrap(), 64 * 1024 * 1024);
    assert_eq!(parse_memory("67108864").unwrap(), 64 * 1024 * 1024);
    assert!(parse_memory("1k").is_err(), "below the minimum");
    assert!(parse_memory("lots").is_err());
}

#[test]
fn cgroup_names_separate_state_roots() {
    let id = crate::runtime::records::ContainerId::parse(&"ab".repeat(32)).unwrap();
    let a = cgroup_name(std::path::Path::new("/tmp/a"), &id);
    let b = cgroup_name(std::path::Path::new("/tmp/b"), &id);
    assert_ne!(a, b);
    assert!(
        a.starts_with("kiln/") && a.ends_with("/abababababab"),
        "{a}"
    );
}
