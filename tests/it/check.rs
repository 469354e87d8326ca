//! `kiln check` as a user runs it: summaries, exit codes, JSON, `--print`, and every
//! example and stdlib module valid.

use kiln::spec::{self, Options, RealFs};

use crate::harness::{Kiln, Project, example, examples, repo};

#[test]
fn every_example_is_valid_without_warnings() {
    let examples = examples();
    assert!(
        examples.len() >= 2,
        "examples/ holds the language tour and the two-host example at least"
    );
    for path in examples {
        let loaded = spec::load_file(
            &path,
            &RealFs,
            &Options {
                check_paths: true,
                ..Options::default()
            },
        )
        .expect("readable");
        assert!(
            loaded.diagnostics.is_empty(),
            "{}: {:#?}",
            path.display(),
            loaded.diagnostics
        );
    }
}

#[test]
fn every_stdlib_module_is_valid_and_embedded() {
    let dir = repo().join("stdlib");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("stdlib/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "kdl"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = spec::stdlib::names().map(str::to_string).collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "every file in stdlib/ is embedded, and only those"
    );
    for name in embedded {
        let text = format!("import \"std:{name}\"\n");
        let loaded = spec::load_source("kiln.kdl", None, &text, &RealFs, &Options::default());
        assert!(
            loaded.diagnostics.is_empty(),
            "std:{name}: {:#?}",
            loaded.diagnostics
        );
        assert!(
            !loaded.project.images.is_empty(),
            "std:{name} declares something"
        );
    }
}

#[test]
fn valid_project_prints_a_one_line_summary() {
    Kiln::new()
        .args(["check", "-f", &example("design")])
        .run()
        .success()
        .stdout_contains(": 4 images, 2 networks, 4 containers, 1 job, 1 link, 1 test\n");
}

#[test]
fn default_file_is_kiln_kdl_in_the_current_directory() {
    Kiln::new()
        .current_dir(repo().join("examples/design"))
        .args(["check"])
        .run()
        .success()
        .stdout_is("kiln.kdl: 4 images, 2 networks, 4 containers, 1 job, 1 link, 1 test\n");
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    Kiln::new()
        .current_dir(dir.path())
        .args(["check"])
        .run()
        .failure()
        .stderr_contains("cannot read kiln.kdl")
        .stderr_contains("No such file or directory");
}

#[test]
fn invalid_project_exits_1_with_every_diagnostic() {
    let project = Project::new("imgae \"a\" {}\nnetwork \"n\" subnet=\"10.0.0.0/33\"\n");
    let ran = project.kiln_here().args(["check"]).run().failure();
    let stderr = ran.stderr();
    assert!(stderr.contains("kiln::spec::unknown-node"), "{stderr}");
    assert!(stderr.contains("kiln::spec::invalid-subnet"), "{stderr}");
    assert!(stderr.contains("kiln.kdl: 2 errors"), "{stderr}");
    assert!(ran.stdout().is_empty());
}

#[test]
fn json_output_is_one_object_with_positions() {
    let project = Project::new("image \"a\" {\n    from \"scratch\"\n    expose 0\n}\n");
    let ran = project
        .kiln_here()
        .args(["check", "--format", "json"])
        .run()
        .failure();
    let json = ran.json();
    assert_eq!(json["ok"], false);
    let d = &json["diagnostics"][0];
    assert_eq!(d["code"], "kiln::spec::invalid-port");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "kiln.kdl");
    assert_eq!(d["line"], 3);
    assert_eq!(d["column"], 12);
    assert_eq!(d["length"], 1);
    assert!(d["help"].is_null() || d["help"].is_string());
    assert_eq!(d["labels"][0]["line"], 3);
    assert!(
        ran.stderr().is_empty(),
        "JSON mode prints nothing else: {}",
        ran.stderr()
    );
}

#[test]
fn json_output_for_a_valid_project() {
    let ran = Kiln::new()
        .args(["check", "-f", &example("design"), "--format", "json"])
        .run()
        .success();
    assert_eq!(
        ran.json(),
        serde_json::json!({ "ok": true, "diagnostics": [] })
    );
}

#[test]
fn print_shows_the_resolved_model_with_defaults_and_imports() {
    let ran = Kiln::new()
        .args(["check", "-f", &example("design"), "--print"])
        .run()
        .success();
    let model = ran.json();
    assert_eq!(model["name"], "hello-web");
    let images: Vec<&str> = model["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["name"].as_str().expect("name"))
        .collect();
    assert!(
        images.contains(&"toolbox"),
        "the import is applied: {images:?}"
    );
    let client = model["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == "client")
        .expect("client");
    assert_eq!(client["replicas"], 2);
    assert_eq!(
        client["restart"]["policy"], "no",
        "default restart policy is filled"
    );
    let web = model["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == "web")
        .expect("web");
    assert_eq!(web["memory"], "128MiB");
    assert_eq!(
        web["health"]["timeout"], "2s",
        "default health timeout is filled"
    );
    assert_eq!(model["links"][0]["impair"]["delay"], "20ms");
}

#[test]
fn help_teaches() {
    Kiln::new()
        .args(["--help"])
        .run()
        .success()
        .stdout_contains("check")
        .stdout_contains("--root");
    Kiln::new()
        .args(["check", "--help"])
        .run()
        .success()
        .stdout_contains("Examples:")
        .stdout_contains("--format");
    Kiln::new()
        .args(["chek"])
        .run()
        .code(2)
        .stderr_contains("check");
}

#[test]
fn errors_in_imported_files_show_that_file() {
    let project =
        Project::new("import \"lib/net.kdl\"\nnetwork \"front\" subnet=\"10.1.0.0/24\"\n");
    project.write(
        "lib/net.kdl",
        "network \"back\" subnet=\"10.1.0.0/16\"\nimgae \"x\" {}\n",
    );
    let ran = project.kiln_here().args(["check"]).run().failure();
    let stderr = ran.stderr();
    assert!(stderr.contains("[lib/net.kdl:2:1]"), "{stderr}");
    assert!(
        stderr.contains("kiln::spec::overlapping-subnets"),
        "{stderr}"
    );
}

#[test]
fn json_output_when_the_file_cannot_be_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = Kiln::new()
        .current_dir(dir.path())
        .args(["check", "--format", "json"])
        .run()
        .failure();
    let json = ran.json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["error"]["message"], "cannot read kiln.kdl");
    assert_eq!(json["diagnostics"], serde_json::json!([]));
}

#[test]
fn images_tagged_in_the_store_can_be_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = kiln::store::Store::open(dir.path().join("root/store")).expect("store");
    let (digest, size) = store.put(b"{}").expect("blob");
    let manifest = kiln::store::Descriptor {
        media_type: kiln::store::MEDIA_MANIFEST.into(),
        digest,
        size,
        annotations: Default::default(),
    };
    store.set_tag("pulled", &manifest).expect("tag");
    std::fs::write(
        dir.path().join("kiln.kdl"),
        "image \"app\" {\n    from \"pulled\"\n}\n",
    )
    .expect("write");
    let root = dir.path().join("root");
    Kiln::new()
        .current_dir(dir.path())
        .args(["check", "--root"])
        .args([&root])
        .run()
        .success();
    Kiln::new()
        .current_dir(dir.path())
        .args(["check", "--root"])
        .args([dir.path().join("empty")])
        .run()
        .failure()
        .stderr_contains("unknown image `pulled`");
}

/// The official KDL test suite (vendored in tests/kdl-spec) through the whole front end, as
/// `kiln check` reads a file: every `_fail` case is a syntax error, no valid case is (the
/// parser's own test compares the parsed documents too).
#[test]
fn the_official_kdl_test_suite_passes_the_front_end() {
    let dir = repo().join("tests/kdl-spec/input");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/kdl-spec/input exists")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    assert!(cases.len() > 300, "only {} cases", cases.len());
    let mut wrong = Vec::new();
    for path in cases {
        let name = path
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let should_fail = name.ends_with("_fail");
        let Ok(text) = std::fs::read_to_string(&path) else {
            // Not UTF-8: kiln cannot even read it as text.
            if !should_fail {
                wrong.push(format!("{name}: unreadable"));
            }
            continue;
        };
        let loaded = spec::load_source("kiln.kdl", None, &text, &RealFs, &Options::default());
        let syntax = loaded
            .diagnostics
            .iter()
            .any(|d| d.code == spec::Code::Syntax);
        if syntax != should_fail {
            wrong.push(format!("{name}: syntax error reported: {syntax}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
