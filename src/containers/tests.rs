use super::*;

fn bind(mount: Mount) -> crate::runtime::spec::Volume {
    match mount {
        Mount::Bind(bind) => bind,
        other => panic!("not a bind: {other:?}"),
    }
}

fn volume(mount: Mount) -> NamedVolume {
    match mount {
        Mount::Volume(volume) => volume,
        other => panic!("not a volume: {other:?}"),
    }
}

#[test]
fn volumes_parse_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().display().to_string();
    let v = bind(parse_volume(&format!("{src}:/data:ro")).unwrap());
    assert_eq!((v.destination.as_str(), v.read_only), ("/data", true));
    assert!(!bind(parse_volume(&format!("{src}:/data")).unwrap()).read_only);
    let v = bind(parse_volume(&format!("{src}:/data:ro,rslave")).unwrap());
    assert_eq!(v.propagation.as_deref(), Some("rslave"));
    // A name is a volume; a project's too; `/DST` alone an anonymous one.
    let v = volume(parse_volume("data:/data:nocopy").unwrap());
    assert_eq!(
        (v.project, v.name.as_deref(), v.no_copy),
        (None, Some("data"), true)
    );
    let v = volume(parse_volume("shop/data:/data").unwrap());
    assert_eq!(
        (v.project.as_deref(), v.name.as_deref()),
        (Some("shop"), Some("data"))
    );
    assert_eq!(volume(parse_volume("/cache").unwrap()).name, None);
    for bad in [
        "relative".to_string(),
        format!("{src}:data"),
        format!("{src}:/data:rx"),
        format!("{src}:/data:nocopy"),
        "data:/data:rslave".to_string(),
        format!("{src}:/data:z"),
        "da ta:/data".to_string(),
        format!("{src}:/a:ro:x"),
    ] {
        assert!(parse_volume(&bad).is_err(), "{bad}");
    }
}

#[test]
fn dash_v_makes_a_missing_host_directory_and_mount_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("a/b");
    let v = bind(parse_volume(&format!("{}:/data", missing.display())).unwrap());
    assert!(missing.is_dir());
    assert_eq!(v.source, missing.canonicalize().unwrap());
    let gone = dir.path().join("gone");
    let spec = format!("type=bind,src={},dst=/data", gone.display());
    let err = parse_mount(&spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "bad mount `{spec}`: bind source `{}` does not exist",
            gone.display()
        )
    );
    assert!(!gone.exists());
}

#[test]
fn mount_takes_dockers_keys_and_refuses_what_kiln_does_not_do() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().display().to_string();
    let v = bind(
        parse_mount(&format!(
            "type=bind,source={src},target=/etc/app,readonly,bind-propagation=rshared"
        ))
        .unwrap(),
    );
    assert_eq!(
        (
            v.destination.as_str(),
            v.read_only,
            v.propagation.as_deref()
        ),
        ("/etc/app", true, Some("rshared"))
    );
    let v =
        volume(parse_mount("src=data,dst=/data,ro=false,volume-nocopy,volume-label=a=b").unwrap());
    assert_eq!(
        (v.name.as_deref(), v.read_only, v.no_copy),
        (Some("data"), false, true)
    );
    assert_eq!(v.labels.get("a").map(String::as_str), Some("b"));
    assert_eq!(
        volume(parse_mount("type=volume,dst=/x").unwrap()).name,
        None
    );
    match parse_mount("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770,readonly").unwrap() {
        Mount::Tmpfs(t) => assert_eq!(t.options, ["size=67108864", "mode=1770", "ro"]),
        other => panic!("{other:?}"),
    }
    for bad in [
        "type=volume,src=data,dst=/d,volume-opt=type=nfs",
        "type=volume,src=data,dst=/d,volume-driver=nfs",
        "type=volume,src=data,dst=/d,volume-subpath=x",
        "type=bind,src=/tmp,dst=/d,volume-nocopy",
        "type=volume,src=data,dst=/d,bind-propagation=rslave",
        "type=bind,src=/tmp,dst=/d,bind-propagation=sideways",
        "type=bind,src=/tmp,dst=/d,bind-recursive=disabled",
        "type=tmpfs,src=x,dst=/d",
        "type=tmpfs,dst=/d,tmpfs-mode=999",
        "type=image,src=web,dst=/d",
        "type=volume,src=data",
        "type=volume,src=data,dst=d",
        "type=volume,src=data,dst=/d,readonly=maybe",
        "type=volume,src=data,dst=/d,consistency=cached",
        "type=volume,src=data,dst=/d,colour=blue",
    ] {
        assert!(parse_mount(bad).is_err(), "{bad}");
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
    let id = crate::state::ContainerId::parse(&"ab".repeat(32)).unwrap();
    let a = cgroup_name(std::path::Path::new("/tmp/a"), &id);
    let b = cgroup_name(std::path::Path::new("/tmp/b"), &id);
    assert_ne!(a, b);
    assert!(
        a.starts_with("kiln/") && a.ends_with("/abababababab"),
        "{a}"
    );
}

#[test]
fn since_takes_durations_and_rfc3339_times() {
    let now = 1_700_000_000_000_000_000u128;
    assert_eq!(parse_since("10s", now).unwrap(), now - 10_000_000_000);
    assert_eq!(parse_since("1h30m", now).unwrap(), now - 5_400_000_000_000);
    assert_eq!(
        parse_since("2023-11-14T22:13:20Z", 0).unwrap(),
        1_700_000_000_000_000_000
    );
    assert_eq!(
        parse_since("2023-11-14T22:13:20.5Z", 0).unwrap(),
        1_700_000_000_500_000_000
    );
    assert_eq!(
        parse_since("2023-11-15T00:13:20+02:00", 0).unwrap(),
        1_700_000_000_000_000_000
    );
    assert_eq!(parse_since("1970-01-01T00:00:00Z", 0).unwrap(), 0);
    for bad in [
        "yesterday",
        "2023-13-01T00:00:00Z",
        "2023-11-14T22:13:20",
        "",
    ] {
        assert!(parse_since(bad, now).is_err(), "{bad}");
    }
}

#[test]
fn signals_parse_by_name_or_number() {
    use nix::sys::signal::Signal;
    assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
    assert_eq!(parse_signal("sigkill").unwrap(), Signal::SIGKILL);
    assert_eq!(parse_signal("SIGQUIT").unwrap(), Signal::SIGQUIT);
    assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
    assert!(parse_signal("NOPE").is_err());
    assert!(parse_signal("999").is_err());
}

#[test]
fn caught_signals_come_from_sigcgt() {
    use nix::sys::signal::Signal;
    let status = "Name:\\tsh\\nSigIgn:\\t0000000000000004\\nSigCgt:\\t0000000000004002\\n"
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    assert_eq!(
        super::control::caught_in(&status, Signal::SIGTERM),
        Some(true)
    );
    assert_eq!(
        super::control::caught_in(&status, Signal::SIGINT),
        Some(true)
    );
    assert_eq!(
        super::control::caught_in(&status, Signal::SIGQUIT),
        Some(false)
    );
    assert_eq!(
        super::control::caught_in("Name:\tsh\n", Signal::SIGTERM),
        None
    );
    // `--init`'s pid 1 blocks what it forwards, and waits for it.
    let blocked = "SigBlk:\tfffffffbfffbfe00\nSigCgt:\t0000000000000000\n";
    assert_eq!(
        super::control::caught_in(blocked, Signal::SIGTERM),
        Some(true)
    );
}

#[test]
fn an_images_volumes_are_anonymous_volumes_where_no_mount_is() {
    let paths: Vec<String> = ["/data", "/cache/", "/srv//www/./x/..", "/tmp", "/data"]
        .map(String::from)
        .to_vec();
    let volumes = mounts::image_volumes(&paths, &["/tmp", "/cache"]).unwrap();
    let wanted: Vec<(&str, Option<&str>)> = volumes
        .iter()
        .map(|v| (v.destination.as_str(), v.name.as_deref()))
        .collect();
    assert_eq!(wanted, [("/data", None), ("/srv/www", None)]);
    for bad in ["relative", "/", "/..", "/a/../", "/x\0y"] {
        let err = mounts::image_volumes(&[bad.to_string()], &[]).unwrap_err();
        assert!(
            err.to_string().contains("not an absolute path below `/`"),
            "{bad:?}: {err}"
        );
    }
}
