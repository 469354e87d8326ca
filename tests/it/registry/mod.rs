//! `kiln pull`, `push`, `login`, `logout` against Debian's docker-registry (plain HTTP; TLS
//! with a test CA and htpasswd; a bearer-token service), interop with skopeo and podman
//! both ways, and hostile registries: every bad answer a clear error, the store unchanged.

mod fixture;
mod hostile;

use std::path::Path;
use std::process::Command;

use fixture::{Certs, Registry, Setup, TokenService, htpasswd};

use crate::harness::tools::{Podman, run as checked};
use crate::harness::{Kiln, Project, Root, images, is_root, which};

/// Nothing but empty directories under `store/blobs` and `store/ingest`, and no names.
pub(crate) fn assert_store_empty(root: &Path) {
    for dir in ["store/blobs/sha256", "store/ingest"] {
        let path = root.join(dir);
        if let Ok(entries) = std::fs::read_dir(&path) {
            let names: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect();
            assert!(names.is_empty(), "{} holds {names:?}", path.display());
        }
    }
    let images = Kiln::new()
        .root(root)
        .args(["images", "--format", "json"])
        .run()
        .success();
    assert_eq!(images.json(), serde_json::json!([]));
}

/// Standard error with miette's wrapping undone, so messages can be matched whole.
pub(crate) fn flat_stderr(ran: &crate::harness::Ran) -> String {
    let mut out = String::new();
    for line in ran.stderr().lines() {
        let text = line
            .trim_start()
            .trim_start_matches(['│', '×', '╰', '─', '├'])
            .trim();
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(text);
    }
    out
}

/// Fails unless kiln failed (exit 1) saying `text` (wrapping ignored).
pub(crate) fn fails_saying(ran: crate::harness::Ran, text: &str) {
    let squeeze = |t: &str| t.split_whitespace().collect::<String>();
    let flat = squeeze(&flat_stderr(&ran));
    let ran = ran.failure();
    assert!(
        flat.contains(&squeeze(text)),
        "stderr lacks {text:?}:\n{}",
        ran.stderr()
    );
}

fn layers(json: &serde_json::Value, outcome: &str) -> u64 {
    json["layers"][outcome].as_u64().unwrap()
}

#[test]
fn push_and_pull_back_over_plain_http_with_chunks_skips_and_mounts() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let (project, root) = images::hello();
    let reference = format!("{}/team/hello:1", registry.addr);
    // Chunked: the layer (about 1 MB) goes in 64 KiB PATCH requests.
    let first = project
        .kiln(root.path())
        .args([
            "push",
            "hello",
            &reference,
            "--chunk-size",
            "64KiB",
            "--format",
            "json",
        ])
        .run()
        .success()
        .json();
    assert_eq!(layers(&first, "transferred"), 2);
    let digest = first["digest"].as_str().unwrap().to_string();
    // A second push sends no layer.
    let again = project
        .kiln(root.path())
        .args(["push", "hello", &reference, "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(layers(&again, "transferred"), 0);
    assert_eq!(layers(&again, "skipped"), 2);
    assert_eq!(again["transferred_bytes"], 0);
    // Another repository of the same registry: the blobs are mounted, not sent.
    let mounted = project
        .kiln(root.path())
        .args([
            "push",
            "hello",
            &format!("{}/other:2", registry.addr),
            "--format",
            "json",
        ])
        .run()
        .success()
        .json();
    assert_eq!(layers(&mounted, "mounted"), 2);
    assert_eq!(mounted["digest"], digest.as_str());

    // Another root pulls it back: same digest, named as Docker names it, runnable.
    let other = Root::new();
    let pulled = Kiln::new()
        .root(other.path())
        .args(["pull", &reference, "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(pulled["digest"], digest.as_str());
    assert_eq!(pulled["name"], reference.as_str());
    assert_eq!(layers(&pulled, "transferred"), 2);
    let repeat = Kiln::new()
        .root(other.path())
        .args(["pull", &reference, "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(layers(&repeat, "skipped"), 2);
    assert_eq!(repeat["transferred_bytes"], 0);
    Kiln::new()
        .root(other.path())
        .args(["images"])
        .run()
        .success()
        .stdout_contains(&reference)
        .stdout_contains(&format!("{}/team/hello@{digest}", registry.addr));
    Kiln::new()
        .root(other.path())
        .args(["fsck"])
        .run()
        .success();
    if is_root() {
        Kiln::new()
            .root(other.path())
            .args(["run", "--rm", &reference])
            .run()
            .success()
            .stdout_is("hello from kiln\n");
    }
    if which("skopeo") {
        let text = checked(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ]));
        let inspect: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(inspect["Digest"], digest.as_str());
        assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn podman_pulls_and_runs_what_kiln_pushed() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !is_root() || !which("podman") {
        return;
    }
    let (project, root) = images::hello();
    let reference = format!("{}/hello:podman", registry.addr);
    // Podman of Debian 12 reads zstd layers; gzip is the old-client path, tested too.
    for (tag, compression) in [("zstd", "zstd"), ("gzip", "gzip")] {
        let reference = format!("{reference}-{tag}");
        project
            .kiln(root.path())
            .args(["push", "hello", &reference, "--compression", compression])
            .run()
            .success();
        let podman = Podman::new();
        checked(
            podman
                .command()
                .args(["pull", "--tls-verify=false", &reference]),
        );
        let printed =
            checked(
                podman
                    .command()
                    .args(["run", "--rm", "--network", "none", &reference]),
            );
        assert_eq!(printed, "hello from kiln\n", "{compression}");
    }
}

/// An OCI layout holding an index of two images: the real one for this machine and a
/// copy whose config says linux/arm64.
fn multi_arch_layout(dir: &Path) {
    let blob = |digest: &str| {
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest_desc = index["manifests"][0].clone();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(manifest_desc["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let host_arch = config["architecture"].as_str().unwrap().to_string();
    config["architecture"] = "arm64".into();
    config["variant"] = "v8".into();
    let put = |bytes: Vec<u8>| -> (String, usize) {
        use sha2::Digest as _;
        let hex = format!("{:x}", sha2::Sha256::digest(&bytes));
        std::fs::write(dir.join("blobs/sha256").join(&hex), &bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (config_digest, config_size) = put(serde_json::to_vec(&config).unwrap());
    let mut arm = manifest.clone();
    arm["config"]["digest"] = config_digest.into();
    arm["config"]["size"] = config_size.into();
    let (arm_digest, arm_size) = put(serde_json::to_vec(&arm).unwrap());
    let image_index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_digest, "size": arm_size,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_desc["digest"], "size": manifest_desc["size"],
             "platform": {"os": "linux", "architecture": host_arch}},
        ]
    });
    let (index_digest, index_size) = put(serde_json::to_vec(&image_index).unwrap());
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest,
                       "size": index_size, "annotations": {"org.opencontainers.image.ref.name": "multi"}}]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn kiln_pulls_what_skopeo_copied_gzip_docker_schema2_and_multi_arch() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !which("skopeo") {
        return;
    }
    let (project, root) = images::hello();
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    project
        .kiln(root.path())
        .args([
            "export",
            "hello",
            "--format",
            "oci-dir",
            "--compression",
            "gzip",
            "--name",
            "hello",
            "-o",
        ])
        .args([&layout])
        .run()
        .success();
    let copy = |extra: &[&str], source: String, target: &str| {
        let mut command = Command::new("skopeo");
        command
            .args(["copy", "--dest-tls-verify=false"])
            .args(extra)
            .arg(source)
            .arg(format!("docker://{}/{target}", registry.addr));
        checked(&mut command);
    };
    copy(&[], format!("oci:{}:hello", layout.display()), "gz:1");
    copy(
        &["--format", "v2s2"],
        format!("oci:{}:hello", layout.display()),
        "v2s2:1",
    );
    let multi = out.path().join("multi");
    checked(Command::new("cp").arg("-a").arg(&layout).arg(&multi));
    multi_arch_layout(&multi);
    copy(
        &["--all"],
        format!("oci:{}:multi", multi.display()),
        "multi:1",
    );

    let other = Root::new();
    let pull = |reference: &str, extra: &[&str]| {
        Kiln::new()
            .root(other.path())
            .args(["pull", reference, "--format", "json"])
            .args(extra)
            .run()
    };
    let gz = pull(&format!("{}/gz:1", registry.addr), &[])
        .success()
        .json();
    assert_eq!(
        gz["media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let v2s2 = pull(&format!("{}/v2s2:1", registry.addr), &[])
        .success()
        .json();
    assert_eq!(
        v2s2["media_type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let multi_ref = format!("{}/multi:1", registry.addr);
    let host = pull(&multi_ref, &[]).success().json();
    assert_ne!(
        host["digest"], host["manifest"],
        "an index resolves to a manifest"
    );
    let arm = pull(&multi_ref, &["--platform", "linux/arm64"])
        .success()
        .json();
    assert_eq!(arm["platform"], "linux/arm64/v8");
    assert_eq!(arm["digest"], host["digest"], "the same index");
    assert_ne!(arm["manifest"], host["manifest"]);
    fails_saying(
        pull(&multi_ref, &["--platform", "linux/s390x"]),
        "has no image for linux/s390x; it has: linux/arm64/v8, linux/amd64",
    );
    // The pull by platform named the arm64 image; get the host's back for running.
    pull(&multi_ref, &[]).success();
    if is_root() {
        for name in ["gz:1", "v2s2:1", "multi:1"] {
            Kiln::new()
                .root(other.path())
                .args(["run", "--rm", &format!("{}/{name}", registry.addr)])
                .run()
                .success()
                .stdout_is("hello from kiln\n");
        }
    }
}

#[test]
fn tls_with_a_test_ca_and_htpasswd_basic_auth_and_podman_logins_both_ways() {
    let Some(certs) = Certs::make() else {
        return;
    };
    let Some(passwords) = htpasswd(certs.dir.path(), "kiln", "s3cret-pw") else {
        return;
    };
    let Some(registry) = Registry::start_with(Setup {
        tls: Some((certs.path("server.crt"), certs.path("server.key"))),
        auth: Some(format!(
            "  htpasswd:\n    realm: kiln-test\n    path: {}\n",
            passwords.display()
        )),
    }) else {
        return;
    };
    let (project, root) = images::hello();
    let auth = tempfile::tempdir().unwrap();
    let authfile = auth.path().join("auth.json");
    let cert_dir = certs.path("certs.d");
    let reference = format!("{}/secure/hello:1", registry.addr);
    let tls = |kiln: Kiln| {
        kiln.args(["--cert-dir"])
            .args([&cert_dir])
            .args(["--authfile"])
            .args([&authfile])
    };
    // Without the CA: a TLS error that says where the CA goes.
    let no_ca = project
        .kiln(root.path())
        .args(["push", "hello", &reference])
        .run();
    assert!(
        flat_stderr(&no_ca).contains("certs.d"),
        "{}",
        no_ca.stderr()
    );
    fails_saying(no_ca, "cannot reach registry");
    // Without credentials.
    fails_saying(
        tls(project
            .kiln(root.path())
            .args(["push", "hello", &reference]))
        .run(),
        "asks for credentials",
    );
    // A wrong password is refused and nothing is saved.
    fails_saying(
        tls(Kiln::new().args(["login", &registry.addr, "-u", "kiln", "--password-stdin"]))
            .stdin("wrong\n")
            .run(),
        "refused the credentials",
    );
    assert!(!authfile.exists());
    let login = tls(Kiln::new().args(["login", &registry.addr, "-u", "kiln", "--password-stdin"]))
        .stdin("s3cret-pw\n")
        .run()
        .success()
        .stdout_contains("Login Succeeded");
    assert!(!login.stdout().contains("s3cret") && !login.stderr().contains("s3cret"));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&authfile).unwrap()).unwrap();
    assert!(
        saved["auths"][&registry.addr]["auth"].is_string(),
        "{saved}"
    );

    let pushed = tls(project
        .kiln(root.path())
        .args(["push", "hello", &reference, "--format", "json"]))
    .run()
    .success()
    .json();
    let other = Root::new();
    let pulled = tls(Kiln::new()
        .root(other.path())
        .args(["pull", &reference, "--format", "json"]))
    .run()
    .success()
    .json();
    assert_eq!(pulled["digest"], pushed["digest"]);

    if which("skopeo") {
        // What kiln login wrote, skopeo uses.
        let text = checked(
            Command::new("skopeo")
                .arg("inspect")
                .arg("--authfile")
                .arg(&authfile)
                .arg("--cert-dir")
                .arg(&cert_dir)
                .arg(format!("docker://{reference}")),
        );
        assert!(text.contains(pushed["digest"].as_str().unwrap()));
    }
    if which("podman") {
        // What podman login writes, kiln uses.
        let podman_auth = auth.path().join("podman-auth.json");
        let mut login = Command::new("podman")
            .arg("login")
            .arg("--authfile")
            .arg(&podman_auth)
            .arg("--cert-dir")
            .arg(&cert_dir)
            .args(["-u", "kiln", "--password-stdin", &registry.addr])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        login
            .stdin
            .take()
            .unwrap()
            .write_all(b"s3cret-pw\n")
            .unwrap();
        let out = login.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let third = Root::new();
        Kiln::new()
            .root(third.path())
            .args(["pull", &reference, "--cert-dir"])
            .args([&cert_dir])
            .env("REGISTRY_AUTH_FILE", &podman_auth)
            .run()
            .success();
    }
    Kiln::new()
        .args(["logout", &registry.addr, "--authfile"])
        .args([&authfile])
        .run()
        .success()
        .stdout_contains("Removed login credentials");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&authfile).unwrap()).unwrap();
    assert!(saved["auths"].get(&registry.addr).is_none(), "{saved}");
}

#[test]
fn bearer_tokens_from_a_token_service_anonymous_and_credentialed() {
    let Some(tokens) = TokenService::start("kiln", "t0ken-pw") else {
        return;
    };
    let Some(registry) = Registry::start_with(Setup {
        tls: None,
        auth: Some(tokens.auth_yaml()),
    }) else {
        return;
    };
    let (project, root) = images::hello();
    let auth = tempfile::tempdir().unwrap();
    let authfile = auth.path().join("auth.json");
    let reference = format!("{}/tokens/hello:1", registry.addr);
    // Anonymous tokens grant pull only: a push is refused with the way out.
    fails_saying(
        project
            .kiln(root.path())
            .args(["push", "hello", &reference, "--authfile"])
            .args([&authfile])
            .run(),
        "asks for credentials",
    );
    fails_saying(
        Kiln::new()
            .args([
                "login",
                &registry.addr,
                "-u",
                "kiln",
                "--password-stdin",
                "--authfile",
            ])
            .args([&authfile])
            .stdin("nope")
            .run(),
        "refused the credentials",
    );
    Kiln::new()
        .args([
            "login",
            &registry.addr,
            "-u",
            "kiln",
            "--password-stdin",
            "--authfile",
        ])
        .args([&authfile])
        .stdin("t0ken-pw")
        .run()
        .success();
    let pushed = project
        .kiln(root.path())
        .args([
            "push",
            "hello",
            &reference,
            "--format",
            "json",
            "--authfile",
        ])
        .args([&authfile])
        .run()
        .success()
        .json();
    // Anyone may pull: no credentials at all.
    let other = Root::new();
    let pulled = Kiln::new()
        .root(other.path())
        .args(["pull", &reference, "--format", "json", "--authfile"])
        .args([auth.path().join("none.json")])
        .run()
        .success()
        .json();
    assert_eq!(pulled["digest"], pushed["digest"]);
    fails_saying(
        Kiln::new()
            .root(other.path())
            .args(["pull", &format!("{}/tokens/absent:1", registry.addr)])
            .env("REGISTRY_AUTH_FILE", auth.path().join("none.json"))
            .run(),
        "has no such manifest",
    );
    // The password went only to the token service, never to the registry.
    assert!(
        tokens.server.requests().iter().any(|r| r
            .header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))),
        "credentialed token requests"
    );
}

#[test]
fn from_a_registry_image_pins_it_in_kiln_lock_and_builds_offline_from_the_lock() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let (base_project, base_root) = images::hello();
    let base = format!("{}/team/base:1", registry.addr);
    let first = base_project
        .kiln(base_root.path())
        .args(["push", "hello", &base, "--format", "json"])
        .run()
        .success()
        .json();
    let first_digest = first["digest"].as_str().unwrap().to_string();

    let project = Project::new(&format!(
        "image \"app\" {{\n    from \"{base}\"\n    copy \"extra.txt\" \"/extra.txt\"\n}}\n"
    ))
    .file("extra.txt", "extra\n");
    let root = Root::new();
    project
        .kiln(root.path())
        .args(["check"])
        .run()
        .success()
        .stderr_contains("unpinned-image");
    project.kiln(root.path()).args(["build"]).run().success();
    let lock_path = project.path().join("kiln.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(
        lock.ends_with(&format!("image \"{base}\" digest=\"{first_digest}\"\n")),
        "{lock}"
    );
    let clean = project.kiln(root.path()).args(["check"]).run().success();
    assert!(
        !clean.stderr().contains("unpinned-image"),
        "{}",
        clean.stderr()
    );
    let app = |root: &Root| {
        project
            .kiln(root.path())
            .args(["inspect", "app", "--format", "json"])
            .run()
            .success()
            .json()["digest"]
            .clone()
    };
    let built_first = app(&root);

    // The tag moves on in the registry; builds keep the locked digest until --update.
    base_project.write("msg.txt", "a newer base\n");
    base_project
        .kiln(base_root.path())
        .args(["build"])
        .run()
        .success();
    let second = base_project
        .kiln(base_root.path())
        .args(["push", "hello", &base, "--format", "json"])
        .run()
        .success()
        .json();
    assert_ne!(second["digest"], first_digest.as_str());
    project.kiln(root.path()).args(["build"]).run().success();
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), lock);
    assert_eq!(app(&root), built_first);
    // A digest in kiln.kdl that disagrees with the lock is an error pointing at both.
    let pinned_project = Project::new(&format!(
        "image \"app\" {{\n    from \"{base}@{}\"\n}}\n",
        second["digest"].as_str().unwrap()
    ));
    std::fs::write(pinned_project.path().join("kiln.lock"), &lock).unwrap();
    fails_saying(
        pinned_project.kiln(root.path()).args(["check"]).run(),
        "kiln.lock to",
    );

    project
        .kiln(root.path())
        .args(["build", "--update"])
        .run()
        .success();
    let updated = std::fs::read_to_string(&lock_path).unwrap();
    assert!(
        updated.contains(second["digest"].as_str().unwrap()),
        "{updated}"
    );
    let built_second = app(&root);
    assert_ne!(built_second, built_first);

    // `kiln lock` resolves without pulling and gives the same bytes.
    std::fs::remove_file(&lock_path).unwrap();
    project.kiln(root.path()).args(["lock"]).run().success();
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), updated);

    // The registry goes away: builds from the lock and the store need no network.
    drop(registry);
    project
        .kiln(root.path())
        .args(["build", "--no-cache"])
        .run()
        .success();
    assert_eq!(app(&root), built_second);
}

#[test]
fn a_busybox_userland_pushed_by_skopeo_is_a_base_to_build_from() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !is_root() || !which("skopeo") || !which("busybox") {
        return;
    }
    // A distro userland: Debian's static busybox and its applet links, as a rootfs tarball.
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    let busybox = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v busybox"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::copy(busybox.trim(), rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "cat", "ls"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let tarball = work.path().join("rootfs.tar");
    checked(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    );
    let scratch = Root::new();
    Kiln::new()
        .root(scratch.path())
        .args(["import", "--tag", "busybox"])
        .args([&tarball])
        .run()
        .success();
    let archive = work.path().join("busybox.tar");
    Kiln::new()
        .root(scratch.path())
        .args(["export", "busybox", "--compression", "gzip", "-o"])
        .args([&archive])
        .run()
        .success();
    let reference = format!("{}/distro/busybox:1", registry.addr);
    checked(
        Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", "--format", "v2s2"])
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("docker://{reference}")),
    );
    let project = Project::new(&format!(
        "image \"app\" {{\n    from \"{reference}\"\n    run \"sh\" \"-c\" \"echo built on busybox > /built.txt\"\n    cmd \"cat\" \"/built.txt\"\n}}\n"
    ));
    let root = Root::new();
    project.kiln(root.path()).args(["build"]).run().success();
    project
        .kiln(root.path())
        .args(["run", "--rm", "app"])
        .run()
        .success()
        .stdout_is("built on busybox\n");
}

#[test]
fn run_pulls_a_missing_image_as_docker_run_does() {
    if !is_root() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let (project, root) = images::hello();
    let reference = format!("{}/team/hello:1", registry.addr);
    project
        .kiln(root.path())
        .args(["push", "hello", &reference])
        .run()
        .success();
    // A fresh root has no such image: `--pull missing` (the default) pulls it first.
    let fresh = Root::new();
    let first = fresh
        .kiln()
        .args(["run", "--rm", &reference])
        .run()
        .success()
        .stdout_is("hello from kiln\n");
    assert!(
        first.stderr().contains("not in the store, pulling"),
        "{}",
        first.stderr()
    );
    // Now it is there: no pull.
    let second = fresh
        .kiln()
        .args(["run", "--rm", &reference])
        .run()
        .success()
        .stdout_is("hello from kiln\n");
    assert!(!second.stderr().contains("pull"), "{}", second.stderr());
    // always: pulled again (nothing to fetch, the blobs are there); never: the store only.
    let always = fresh
        .kiln()
        .args(["run", "--rm", "--pull", "always", &reference])
        .run()
        .success();
    assert!(always.stderr().contains("pulled as"), "{}", always.stderr());
    let missing = format!("{}/team/nothing:1", registry.addr);
    fresh
        .kiln()
        .args(["run", "--rm", "--pull", "never", &missing])
        .run()
        .code(125)
        .stderr_contains("no image named");
    fresh
        .kiln()
        .args(["run", "--rm", "--pull", "sometimes", &reference])
        .run()
        .code(2);
    // A bare name is Docker Hub's (`docker.io/library/nope`): the tests' kiln contacts
    // registries on loopback only, so it is refused before any lookup.
    fresh
        .kiln()
        .args(["run", "--rm", "nope"])
        .run()
        .failure()
        .stderr_contains("loopback only, not `registry-1.docker.io`");
    fresh
        .kiln()
        .args(["create", "--pull", "never", "nope"])
        .run()
        .code(125)
        .stderr_contains("no image named `nope`");
    fresh.assert_clean();
}
