//! `kiln build` and the commands around the store: real images from host binaries, the
//! build context and sandboxed `run` steps, checked for reproducibility, caching, explain,
//! failures and what `kiln images/inspect/history/tag/rmi/gc/fsck` say about them.

use std::path::Path;

use crate::harness::tools::{skopeo_inspect, umoci_unpack};
use crate::harness::{Kiln, Lab, Project, Root, examples, is_root, which};

const SMALL: &str = r#"
image "base" {
    from "scratch"
    host-binary "/bin/sh" "/bin/cat"
}
image "web" {
    from "base"
    copy "site/" "/srv/www/"
    env MODE="prod"
    workdir "/srv/www"
    expose 8080
    label "org.opencontainers.image.title"="web"
    cmd "cat" "/srv/www/index.html"
}
"#;

fn small() -> Project {
    Project::new(SMALL)
        .file("site/index.html", "<h1>hello</h1>\n")
        .file("site/css/main.css", "body{}\n")
}

fn digests(project: &Project, root: &Path) -> serde_json::Value {
    let images = project
        .kiln(root)
        .args(["images", "--format", "json"])
        .run()
        .success()
        .json();
    images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            // Tagged as the project's (`DIR/web`): the directory differs, the name not.
            let name = i["name"].as_str().unwrap();
            let short = name.split_once('/').map_or(name, |(_, n)| n);
            (short.to_string(), i["digest"].clone())
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn builds_an_image_from_host_binaries_and_the_context() {
    let project = small();
    let root = Root::new();
    project
        .kiln(root.path())
        .args(["build"])
        .run()
        .success()
        .stdout_contains("web  sha256:");
    let inspect = project
        .kiln(root.path())
        .args(["inspect", "web", "--format", "json"])
        .run()
        .success()
        .json();
    let config = &inspect["config"]["config"];
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["cat", "/srv/www/index.html"])
    );
    assert_eq!(config["WorkingDir"], "/srv/www");
    assert_eq!(config["Env"], serde_json::json!(["MODE=prod"]));
    assert!(config["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(inspect["config"]["created"], "1970-01-01T00:00:00Z");
    // base: one layer; web: base's layer plus the copy.
    assert_eq!(inspect["manifest"]["layers"].as_array().unwrap().len(), 2);
    project
        .kiln(root.path())
        .args(["history", "web"])
        .run()
        .success()
        .stdout_contains("copy \"site/\" \"/srv/www/\"")
        .stdout_contains("host-binary \"/bin/sh\" \"/bin/cat\"");
    project
        .kiln(root.path())
        .args(["fsck"])
        .run()
        .success()
        .stdout_contains(": ok");
}

#[test]
fn same_project_same_digests_whatever_the_root_path_and_mtimes() {
    let first = small();
    let root_a = Root::new();
    first.kiln(root_a.path()).args(["build"]).run().success();
    // Another checkout: files written in another order, later, with other mtimes.
    let second = Project::new(SMALL)
        .file("site/css/main.css", "body{}\n")
        .file("site/index.html", "<h1>hello</h1>\n");
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    std::fs::File::options()
        .write(true)
        .open(second.path().join("site/index.html"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let root_b = Root::new();
    second
        .kiln(root_b.path())
        .args(["build", "--jobs", "1"])
        .run()
        .success();
    assert_eq!(
        digests(&first, root_a.path()),
        digests(&second, root_b.path())
    );
    // A different SOURCE_DATE_EPOCH is a different (but again reproducible) image.
    let root_c = Root::new();
    first
        .kiln(root_c.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build"])
        .run()
        .success();
    assert_ne!(
        digests(&first, root_a.path()),
        digests(&first, root_c.path())
    );
}

#[test]
fn a_noop_rebuild_hits_the_cache_and_explain_names_what_changed() {
    let project = small();
    let root = Root::new();
    project.kiln(root.path()).args(["build"]).run().success();
    let report = root.path().join("report.json");
    project
        .kiln(root.path())
        .args(["build", "--report"])
        .args([&report])
        .run()
        .success();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let steps = report["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert!(steps.iter().all(|s| s["cache"] == "hit"), "{report:#}");
    assert!(
        report["images"][1]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    project.write("site/index.html", "<h1>changed</h1>\n");
    project
        .kiln(root.path())
        .args(["explain", "web"])
        .run()
        .success()
        .stdout_contains("miss")
        .stdout_contains("source site/index.html changed");
    let json = project
        .kiln(root.path())
        .args(["build", "--format", "json"])
        .run()
        .success()
        .json();
    let copy = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["image"] == "web" && s["kind"] == "copy")
        .unwrap()
        .clone();
    assert_eq!(copy["cache"], "miss");
    assert!(
        copy["reason"]
            .as_str()
            .unwrap()
            .contains("source site/index.html changed"),
        "{copy:#}"
    );
    let base = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["image"] == "base")
        .unwrap()
        .clone();
    assert_eq!(base["cache"], "hit");
}

#[test]
fn dry_run_prints_the_plan_with_keys_and_builds_nothing() {
    let project = small();
    let root = Root::new();
    let plan = project
        .kiln(root.path())
        .args(["build", "--dry-run", "--format", "json"])
        .run()
        .success()
        .json();
    let images = plan["images"].as_array().unwrap();
    assert_eq!(images[0]["name"], "base");
    assert_eq!(images[1]["needs"], serde_json::json!(["base"]));
    assert_eq!(images[1]["steps"][0]["cached"], false);
    assert_eq!(images[1]["steps"][0]["key"].as_str().unwrap().len(), 64);
    let listed = project
        .kiln(root.path())
        .args(["images", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn tag_rmi_and_gc() {
    let project = small();
    let root = Root::new();
    project.kiln(root.path()).args(["build"]).run().success();
    project
        .kiln(root.path())
        .args(["tag", "web", "web:v1"])
        .run()
        .success();
    project
        .kiln(root.path())
        .args(["images"])
        .run()
        .success()
        .stdout_contains("web:v1");
    project
        .kiln(root.path())
        .args(["rmi", "web", "web:v1", "base", "nope"])
        .run()
        .failure()
        .stdout_contains("untagged: web:v1")
        .stderr_contains("no image named `nope`");
    // The cache still holds the layers; forgetting it frees them.
    project
        .kiln(root.path())
        .args(["gc"])
        .run()
        .success()
        .stdout_contains("removed 4 blobs"); // two configs, two manifests
    project
        .kiln(root.path())
        .args(["gc", "--cache"])
        .run()
        .success()
        // The two layers, and the empty one of `workdir "/srv/www"` (the directory was
        // there: the image has no layer for it, the cache keeps it).
        .stdout_contains("removed 3 blobs");
    project.kiln(root.path()).args(["fsck"]).run().success();
}

#[test]
fn fsck_names_a_corrupt_blob() {
    let project = small();
    let root = Root::new();
    project.kiln(root.path()).args(["build"]).run().success();
    let blobs = root.path().join("store/blobs/sha256");
    let victim = std::fs::read_dir(&blobs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&victim, b"tampered").unwrap();
    project
        .kiln(root.path())
        .args(["fsck"])
        .run()
        .failure()
        .stderr_contains("is corrupt");
}

#[test]
fn unknown_image_and_missing_host_binary_are_clear_errors() {
    let project = small();
    let root = Root::new();
    project
        .kiln(root.path())
        .args(["build", "nope"])
        .run()
        .failure()
        .stderr_contains("no image named `nope` in the project");
    let broken = Project::new(
        r#"
image "bad" {
    from "scratch"
    host-binary "/no/such/binary"
}
"#,
    );
    broken
        .kiln(root.path())
        .args(["build"])
        .run()
        .failure()
        .stderr_contains("kiln.kdl:4:5")
        .stderr_contains("/no/such/binary");
}

const WITH_RUN: &str = r#"project "steps"
image "base" {
    from "scratch"
    host-binary "/bin/sh" "/bin/cat" "/bin/rm" "/bin/mkdir"
}
image "builder" {
    from "base"
    run "sh" "-c" "mkdir -p /out && echo 42 > /out/answer && rm /bin/cat"
}
image "final" {
    from "base"
    copy "/out/answer" "/answer" from="builder"
    env GREETING="hi"
    run "sh" "-c" "echo $GREETING > /greeting; echo to-stdout"
}
"#;

#[test]
fn run_steps_make_layers_and_copy_from_takes_files_from_another_image() {
    let Some(lab) = Lab::unbuilt(Project::new(WITH_RUN)) else {
        return;
    };
    // gzip: Debian's umoci predates zstd layers.
    lab.kiln()
        .args(["build", "--compression", "gzip"])
        .run()
        .success();
    let bundle = tempfile::tempdir().unwrap();
    // skopeo and umoci read the store as the OCI layout it is.
    if which("skopeo") {
        let image = format!("oci:{}:steps/final", lab.path().join("store").display());
        let inspect = skopeo_inspect(&image);
        assert_eq!(
            inspect["Layers"].as_array().unwrap().len(),
            3,
            "{inspect:#}"
        );
        assert_eq!(inspect["Env"], serde_json::json!(["GREETING=hi"]));
    }
    if which("umoci") {
        let rootfs = bundle.path().join("rootfs");
        umoci_unpack(&lab.path().join("store"), "steps/final", &rootfs);
        assert_eq!(
            std::fs::read_to_string(rootfs.join("answer")).unwrap(),
            "42\n"
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("greeting")).unwrap(),
            "hi\n"
        );
    }
    // builder's rm became a whiteout: cat is gone from builder, not from base.
    let history = lab
        .kiln()
        .args(["inspect", "builder", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(history["manifest"]["layers"].as_array().unwrap().len(), 2);
    // Nothing of the sandbox stays mounted.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&lab.path().display().to_string()),
        "{mounts}"
    );
}

#[test]
fn a_failing_run_step_reports_its_place_code_and_output_and_commits_nothing() {
    let Some(lab) = Lab::unbuilt(Project::new(
        r#"
image "base" {
    from "scratch"
    host-binary "/bin/sh"
}
image "broken" {
    from "base"
    run "sh" "-c" "echo about to fail; exit 3"
}
"#,
    )) else {
        return;
    };
    lab.kiln()
        .args(["build"])
        .run()
        .failure()
        .stderr_contains("`run` in image `broken` failed: exit 3")
        .stderr_contains("kiln.kdl:8:5")
        .stderr_contains("about to fail");
    let images = lab
        .kiln()
        .args(["images", "--format", "json"])
        .run()
        .success()
        .json();
    let names: Vec<&str> = images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"broken"), "{names:?}");
    lab.kiln().args(["build", "broken"]).run().failure();
    lab.kiln().args(["fsck"]).run().success();
}

#[test]
fn verify_rebuilds_from_scratch_and_finds_the_same_digests() {
    let project = small();
    let root = Root::new();
    project
        .kiln(root.path())
        .args(["build", "--verify"])
        .run()
        .success()
        .stdout_contains("verify: web")
        .stdout_contains("identical");
}

#[test]
fn two_builds_on_one_root_at_once_both_succeed() {
    let project = small();
    let root = Root::new();
    let spawn = || {
        project
            .kiln(&root)
            .args(["build", "--format", "json"])
            .command()
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let first: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let second: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(first["images"], second["images"]);
    project.kiln(root.path()).args(["fsck"]).run().success();
}

#[test]
fn verify_names_the_layer_and_file_of_an_unreproducible_step() {
    // /proc/uptime differs from one run to the next: the layer cannot be reproduced.
    let Some(lab) = Lab::unbuilt(Project::new(
        r#"
image "base" {
    from "scratch"
    host-binary "/bin/sh" "/bin/cat"
}
image "clock" {
    from "base"
    run "sh" "-c" "cat /proc/uptime /proc/self/stat > /stamp"
}
"#,
    )) else {
        return;
    };
    lab.kiln()
        .args(["build", "--verify"])
        .run()
        .failure()
        .stdout_contains("verify: base")
        .stderr_contains("verify: clock differs")
        .stderr_contains("layer 2 differs")
        .stderr_contains("first differing file: /stamp");
}

#[test]
fn explain_names_a_changed_env_value_and_an_argument() {
    let project = Project::new(&SMALL.replace(
        "cmd \"cat\" \"/srv/www/index.html\"",
        "copy \"site/index.html\" \"/again.html\"",
    ))
    .file("site/index.html", "x\n");
    let root = Root::new();
    project.kiln(root.path()).args(["build"]).run().success();
    let edited = std::fs::read_to_string(project.path().join("kiln.kdl"))
        .unwrap()
        .replace("MODE=\"prod\"", "MODE=\"dev\"");
    project.write("kiln.kdl", &edited);
    let explained = project
        .kiln(root.path())
        .args(["explain", "web", "--format", "json"])
        .run()
        .success()
        .json();
    let steps = explained.as_array().unwrap();
    let env = steps
        .iter()
        .find(|s| s["text"] == "env MODE=\"dev\"")
        .unwrap();
    assert_eq!(env["cache"], "miss");
    assert!(
        env["reason"]
            .as_str()
            .unwrap()
            .contains("env changed: MODE=prod → MODE=dev"),
        "{env:#}"
    );
    // The copy after it is invalidated by the env it now runs with.
    let copy = steps
        .iter()
        .rfind(|s| s["text"].as_str().unwrap().starts_with("copy"))
        .unwrap();
    assert_eq!(copy["cache"], "miss");
    assert!(
        copy["reason"].as_str().unwrap().contains("MODE=dev"),
        "{copy:#}"
    );
}

#[test]
fn a_build_killed_at_any_moment_leaves_a_sound_store_and_the_next_build_finishes() {
    let project = Project::new(
        r#"
image "big" {
    from "scratch"
    host-binary "/bin/sh" "/usr/bin/python3"
    host-path "/usr/lib/python3.11"
}
"#,
    );
    let root = Root::new();
    for delay_ms in [5u64, 40, 120, 300, 700] {
        let mut child = project
            .kiln(&root)
            .args(["build", "--no-cache"])
            .command()
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // SIGKILL: no chance to clean up, like a power cut for the process.
        let _ = child.kill();
        let _ = child.wait();
        // The only thing a killed build may leave is an ingest file, which fsck names.
        let fsck = project.kiln(root.path()).args(["fsck"]).run();
        if !fsck.output.status.success() {
            let stderr = fsck.stderr();
            assert!(
                stderr
                    .lines()
                    .filter(|l| l.starts_with("error:"))
                    .all(|l| l.contains("leftover of an interrupted write")),
                "{stderr}"
            );
        }
    }
    project.kiln(root.path()).args(["build"]).run().success();
    project.kiln(root.path()).args(["gc"]).run().success();
    let ingest = std::fs::read_dir(root.path().join("store/ingest"))
        .unwrap()
        .count();
    assert_eq!(ingest, 0, "gc removes what interrupted writes left");
    project.kiln(root.path()).args(["fsck"]).run().success();
}

#[test]
fn every_example_builds_and_rebuilds_from_the_cache() {
    if !is_root() {
        return;
    }
    let mut built = 0;
    for file in examples() {
        let root = Root::new();
        let run = || {
            Kiln::new()
                .root(root.path())
                .args(["build".as_ref(), "-f".as_ref(), file.as_os_str()])
                .run()
                .success()
        };
        let first = run().stdout();
        let again = run();
        assert_eq!(
            again.stdout(),
            first,
            "{}: same digests again",
            file.display()
        );
        let report = again.stderr();
        let counts = report
            .rsplit_once('(')
            .and_then(|(_, tail)| tail.split_once(" layer steps cached"))
            .map(|(counts, _)| counts.split(" of ").collect::<Vec<_>>())
            .unwrap_or_default();
        assert!(
            counts.len() == 2 && counts[0] == counts[1],
            "{}: the second build is all cache hits: {report}",
            file.display()
        );
        built += 1;
    }
    assert!(built >= 2, "examples/*/kiln.kdl");
}

#[test]
fn kiln_build_in_the_project_directory_needs_no_file_flag() {
    let project = small();
    let root = Root::new();
    Kiln::new()
        .root(root.path())
        .current_dir(project.path())
        .args(["build"])
        .run()
        .success()
        .stdout_contains("web  sha256:");
}

#[test]
fn compression_and_epoch_are_part_of_the_cache_key() {
    let project = small();
    let root = Root::new();
    let build = |extra: &[&str], epoch: &str| {
        let json = project
            .kiln(root.path())
            .env("SOURCE_DATE_EPOCH", epoch)
            .args(["build", "--format", "json"])
            .args(extra)
            .run()
            .success()
            .json();
        let digest = json["images"][1]["digest"].as_str().unwrap().to_string();
        let cached = json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| !s["layer"].is_null())
            .all(|s| s["cache"] == "hit");
        (digest, cached)
    };
    let (zstd, _) = build(&[], "0");
    let (gzip, gzip_cached) = build(&["--compression", "gzip"], "0");
    assert_ne!(zstd, gzip);
    assert!(!gzip_cached, "gzip layers are not the zstd ones");
    let (again, cached) = build(&[], "0");
    assert_eq!((again.as_str(), cached), (zstd.as_str(), true));
    let (later, later_cached) = build(&[], "1700000000");
    assert_ne!(later, zstd);
    assert!(!later_cached);
    // A fresh root gives the same digest for the same settings: the cache changes nothing.
    let fresh = Root::new();
    let json = project
        .kiln(fresh.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(json["images"][1]["digest"], later.as_str());
}

#[test]
fn copy_writes_the_directories_it_makes_and_leaves_existing_ones_alone() {
    let project = Project::new(
        r#"
image "tmpfile" {
    from "scratch"
    copy "note.txt" "/tmp/notes/note.txt"
    copy "other.txt" "/tmp/notes/more/"
}
"#,
    )
    .file("note.txt", "n\n")
    .file("other.txt", "o\n");
    let root = Root::new();
    project.kiln(root.path()).args(["build"]).run().success();
    let layers = crate::harness::tree::layer_members(&project, root.path(), "tmpfile");
    // The first copy makes /tmp and /tmp/notes (0755 root, as BuildKit does); the second
    // finds them and writes no entry for them, so they keep what lower layers gave them.
    assert_eq!(
        layers,
        [
            vec!["tmp/", "tmp/notes/", "tmp/notes/note.txt"],
            vec!["tmp/notes/more/", "tmp/notes/more/other.txt"],
        ]
    );
}

#[test]
fn run_steps_see_the_parent_directories_of_lower_layers_unchanged() {
    let Some(lab) = Lab::unbuilt(
        Project::new(
            r#"
image "sticky" {
    from "scratch"
    host-binary "/bin/sh" "/bin/mkdir" "/usr/bin/stat" "/bin/cat"
    run "sh" "-c" "mkdir -m 1777 /tmp"
    copy "x.txt" "/tmp/x/"
    run "sh" "-c" "stat -c %a /tmp > /mode"
}
"#,
        )
        .file("x.txt", "x\n"),
    ) else {
        return;
    };
    lab.kiln().args(["build"]).run().success();
    lab.kiln()
        .args(["run", "--rm", "sticky", "cat", "/mode"])
        .run()
        .success()
        .stdout_is("1777\n");
}
