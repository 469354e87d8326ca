use super::*;

fn record(records: &Records, name: &str) -> Record {
    let id = ContainerId::generate().unwrap();
    let record = Record {
        id,
        name: name.to_string(),
        image: "web".into(),
        image_digest: "sha256:00".into(),
        created: "1970-01-01T00:00:00Z".into(),
        command: vec!["sh".into()],
        restart: "no".into(),
        state: ContainerState::default(),
        member: None,
        labels: Default::default(),
        volumes: Vec::new(),
    };
    records.create(&record).unwrap();
    record
}

#[test]
fn names_are_unique_and_ids_resolve_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(dir.path()).unwrap();
    let a = record(&records, "web");
    let clash = Record {
        id: ContainerId::generate().unwrap(),
        ..a.clone()
    };
    assert!(matches!(
        records.create(&clash),
        Err(RecordError::NameInUse { .. })
    ));
    assert!(!records.dir(&clash.id).exists(), "a clash leaves nothing");
    assert_eq!(records.find("web").unwrap().id, a.id);
    assert_eq!(records.find(a.id.short()).unwrap().id, a.id);
    assert_eq!(records.find(a.id.as_str()).unwrap().id, a.id);
    assert!(matches!(
        records.find("nope"),
        Err(RecordError::NotFound { .. })
    ));
    records.remove(&a).unwrap();
    assert!(records.list().unwrap().is_empty());
    // The name is free again.
    record(&records, "web");
}

#[test]
fn invalid_names_are_refused() {
    for bad in ["", "-x", "a b", "a/b", "é"] {
        assert!(validate_name(bad).is_err(), "{bad:?}");
    }
    for good in ["web", "web-1", "a.b_c", "9lives"] {
        assert!(validate_name(good).is_ok(), "{good:?}");
    }
}

#[test]
fn generated_names_are_stable_per_id() {
    let id = ContainerId::parse(&"ab".repeat(32)).unwrap();
    assert_eq!(generate_name(&id), generate_name(&id));
    assert!(validate_name(&generate_name(&id)).is_ok());
    assert_eq!(ContainerId::parse("AB"), None);
}

#[test]
fn a_dead_or_recycled_pid_reconciles_to_exited_once_its_supervisor_is_gone_too() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(dir.path()).unwrap();
    let mut r = record(&records, "c");
    let me = std::process::id() as i32;
    r.state.status = Status::Running;
    r.state.pid = Some(me);
    r.state.pid_start_time = process_start_time(me);
    assert!(r.state.pid_start_time.is_some());
    assert_eq!(r.reconciled().state.status, Status::Running);
    // Same pid, other start time: a recycled pid.
    r.state.pid_start_time = r.state.pid_start_time.map(|t| t + 1);
    assert_eq!(r.reconciled().state.status, Status::Exited);
    // A process that is gone.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    r.state.pid = Some(pid);
    r.state.pid_start_time = None;
    assert_eq!(r.reconciled().state.status, Status::Exited);
    // Its supervisor still lives (draining the last output, about to record the exit
    // code): its record is the truth, as `kiln wait` has it.
    r.state.supervisor_pid = Some(me);
    r.state.supervisor_start_time = process_start_time(me);
    assert_eq!(r.reconciled().state.status, Status::Running);
    r.state.status = Status::Restarting;
    assert_eq!(r.reconciled().state.status, Status::Restarting);
    r.state.supervisor_start_time = r.state.supervisor_start_time.map(|t| t + 1);
    assert_eq!(r.reconciled().state.status, Status::Exited);
}

#[test]
fn find_named_never_matches_an_id_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(dir.path()).unwrap();
    let web = record(&records, "web");
    let prefix = &web.id.as_str()[..4];
    assert_eq!(
        records.find(prefix).unwrap().id,
        web.id,
        "find takes prefixes"
    );
    assert!(records.find_named(prefix).unwrap().is_none());
    assert_eq!(records.find_named("web").unwrap().unwrap().id, web.id);
    assert!(records.find_named("../x").unwrap().is_none());
}

#[test]
fn rename_moves_the_name_and_hidden_names_cannot_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(dir.path()).unwrap();
    let web = record(&records, "web-1");
    let hidden = hidden_name("web-1", "previous");
    assert_eq!(hidden, "web-1~previous");
    assert_eq!(split_hidden(&hidden), Some(("web-1", "previous")));
    assert_eq!(split_hidden("web-1"), None);
    // Users cannot create such a name…
    assert!(validate_name(&hidden).is_err());
    let forged = Record {
        id: ContainerId::generate().unwrap(),
        ..web.clone()
    };
    assert!(matches!(
        records.create(&Record {
            name: hidden.clone(),
            ..forged
        }),
        Err(RecordError::InvalidName { .. })
    ));
    // …but a container can be renamed to it, and found by it.
    let renamed = records.rename(&web, &hidden).unwrap();
    assert_eq!(renamed.name, hidden);
    assert_eq!(records.load(&web.id).unwrap().name, hidden);
    assert_eq!(records.find(&hidden).unwrap().id, web.id);
    assert!(matches!(
        records.find("web-1"),
        Err(RecordError::NotFound { .. })
    ));
    // The old name is free for a new container; renaming back onto it then clashes.
    let new = record(&records, "web-1");
    assert!(matches!(
        records.rename(&renamed, "web-1"),
        Err(RecordError::NameInUse { .. })
    ));
    assert_eq!(
        records.find(&hidden).unwrap().id,
        web.id,
        "a clash changes nothing"
    );
    records.remove(&new).unwrap();
    let back = records.rename(&renamed, "web-1").unwrap();
    assert_eq!(back.name, "web-1");
    assert_eq!(records.find("web-1").unwrap().id, web.id);
    assert!(records.find(&hidden).is_err());
    // Bad targets are refused.
    for bad in ["web~", "web~a-b", "~x", "a b~previous"] {
        assert!(
            matches!(
                records.rename(&back, bad),
                Err(RecordError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn a_running_container_is_not_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(dir.path()).unwrap();
    let mut r = record(&records, "c");
    let me = std::process::id() as i32;
    r.state.status = Status::Running;
    r.state.pid = Some(me);
    r.state.pid_start_time = process_start_time(me);
    records.save(&r).unwrap();
    assert!(matches!(
        records.rename(&r, "d"),
        Err(RecordError::RenameRunning { .. })
    ));
    assert_eq!(records.find("c").unwrap().id, r.id);
}

fn member(records: &Records, project: &str, name: &str) -> Record {
    let record = Record {
        id: ContainerId::generate().unwrap(),
        name: name.to_string(),
        image: "web".into(),
        image_digest: "sha256:00".into(),
        created: "1970-01-01T00:00:00Z".into(),
        command: vec!["sh".into()],
        restart: "no".into(),
        state: ContainerState::default(),
        member: Some(Membership {
            project: project.to_string(),
            service: name.to_string(),
            fingerprint: "f".into(),
            host: None,
        }),
        labels: Default::default(),
        volumes: Vec::new(),
    };
    records.create(&record).unwrap();
    record
}

#[test]
fn each_project_has_its_own_names() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(dir.path()).unwrap();
    let shop = member(&records, "shop", "web");
    let blog = member(&records, "blog", "web");
    let plain = record(&records, "web");
    assert!(dir.path().join("names/shop+web").is_file());
    assert_eq!(
        records
            .find_member(Some("shop"), "web")
            .unwrap()
            .unwrap()
            .id,
        shop.id
    );
    assert_eq!(
        records
            .find_member(Some("blog"), "web")
            .unwrap()
            .unwrap()
            .id,
        blog.id
    );
    assert_eq!(
        records.find_member(None, "web").unwrap().unwrap().id,
        plain.id
    );
    assert_eq!(records.find("shop/web").unwrap().id, shop.id);
    assert_eq!(records.resolve("web", Some("blog")).unwrap().id, blog.id);
    // Without a current project, the bare name is the container whose whole name it is.
    assert_eq!(records.find("web").unwrap().id, plain.id);
    records.remove(&plain).unwrap();
    match records.find("web") {
        Err(RecordError::AmbiguousName(err)) => {
            assert_eq!(err.candidates, ["blog/web", "shop/web"])
        }
        other => panic!("{other:?}"),
    }
    records.remove(&blog).unwrap();
    assert_eq!(records.find("web").unwrap().id, shop.id);
    assert!(matches!(
        records.find("blog/web"),
        Err(RecordError::NotFound { .. })
    ));
    assert_eq!(shop.reference(), "shop/web");
}

#[test]
fn index_entries_of_an_older_kiln_move_to_their_project() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(dir.path()).unwrap();
    let old = member(&records, "shop", "web");
    let plain = record(&records, "db");
    // As kiln wrote it before names were per project.
    std::fs::rename(
        dir.path().join("names/shop+web"),
        dir.path().join("names/web"),
    )
    .unwrap();
    assert_eq!(records.upgrade_index().unwrap(), 1);
    assert!(!dir.path().join("names/web").exists());
    assert_eq!(
        records
            .find_member(Some("shop"), "web")
            .unwrap()
            .unwrap()
            .id,
        old.id
    );
    assert_eq!(records.find_named("db").unwrap().unwrap().id, plain.id);
    assert_eq!(records.upgrade_index().unwrap(), 0);
}
