//! A registry that lies or fails on purpose: wrong digests and sizes, a truncated blob,
//! 401/403/404/429/500, a redirect, an oversized manifest, an unknown media type. Each is a
//! clear error and the store is left as it was; the redirect and a passing 429 work.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::Digest as _;

use super::fixture::{Seen, Server, respond};
use super::{assert_store_empty, fails_saying};
use crate::harness::{Kiln, Root};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// An image whose blobs are served by hand (pull does not unpack, so the layer needs no
/// tar inside).
struct Image {
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

fn image() -> Image {
    let layer = b"layer bytes: pull verifies them, it does not unpack them".repeat(100);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
    }))
    .unwrap();
    Image {
        config,
        layer,
        manifest,
    }
}

/// What goes wrong, and where.
#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    WrongDigest,
    WrongSize,
    Truncated,
    ManifestStatus(u16),
    BlobStatus(u16),
    /// 429 on the first manifest request only.
    Busy,
    Redirect,
    HugeManifest,
    MediaType,
}

fn serve(fault: Fault) -> Server {
    let image = Arc::new(image());
    let manifest_hits = Arc::new(AtomicUsize::new(0));
    Server::start(move |request: &Seen, stream: &mut TcpStream| {
        let image = &image;
        let path = request.path.as_str();
        let ok = |stream: &mut TcpStream, body: &[u8], content_type: &str| {
            respond(
                stream,
                "200 OK",
                &[
                    ("Content-Type", content_type.to_string()),
                    ("Docker-Content-Digest", digest(body)),
                ],
                if request.method == "HEAD" { &[] } else { body },
            )
        };
        let status = |stream: &mut TcpStream, code: u16| {
            let (line, extra) = match code {
                401 => (
                    "401 Unauthorized",
                    vec![("WWW-Authenticate", "Basic realm=\"hostile\"".to_string())],
                ),
                403 => ("403 Forbidden", vec![]),
                404 => ("404 Not Found", vec![]),
                429 => (
                    "429 Too Many Requests",
                    vec![("Retry-After", "0".to_string())],
                ),
                _ => ("500 Internal Server Error", vec![]),
            };
            let body = format!(
                "{{\"errors\":[{{\"code\":\"TEST_{code}\",\"message\":\"the test says {code}\"}}]}}"
            );
            respond(stream, line, &extra, body.as_bytes());
        };
        if path == "/v2/" {
            return respond(stream, "200 OK", &[], b"{}");
        }
        if path.starts_with("/v2/hostile/manifests/") {
            let hit = manifest_hits.fetch_add(1, Ordering::SeqCst);
            return match fault {
                Fault::ManifestStatus(code) => status(stream, code),
                Fault::Busy if hit == 0 => status(stream, 429),
                Fault::HugeManifest => {
                    let mut big = image.manifest.clone();
                    big.resize(5 * 1024 * 1024, b' ');
                    ok(stream, &big, OCI_MANIFEST)
                }
                Fault::MediaType => ok(
                    stream,
                    &image.manifest,
                    "application/vnd.docker.distribution.manifest.v1+prettyjws",
                ),
                _ => ok(stream, &image.manifest, OCI_MANIFEST),
            };
        }
        let config_path = format!("/v2/hostile/blobs/{}", digest(&image.config));
        let layer_path = format!("/v2/hostile/blobs/{}", digest(&image.layer));
        if path == config_path {
            return ok(stream, &image.config, "application/octet-stream");
        }
        if path == layer_path || path == "/elsewhere/layer" {
            let layer = &image.layer;
            return match fault {
                Fault::BlobStatus(code) => status(stream, code),
                Fault::WrongDigest => {
                    let mut bad = layer.clone();
                    bad[10] ^= 1;
                    ok(stream, &bad, "application/octet-stream")
                }
                Fault::WrongSize => {
                    let mut longer = layer.clone();
                    longer.push(b'!');
                    ok(stream, &longer, "application/octet-stream")
                }
                Fault::Truncated => respond(
                    stream,
                    "200 OK",
                    &[("Content-Length", layer.len().to_string())],
                    &layer[..layer.len() / 2],
                ),
                Fault::Redirect if path == layer_path => respond(
                    stream,
                    "307 Temporary Redirect",
                    &[("Location", "/elsewhere/layer".to_string())],
                    b"",
                ),
                _ => ok(stream, layer, "application/octet-stream"),
            };
        }
        status(stream, 404)
    })
}

fn pull(server: &Server) -> (Root, crate::harness::Ran) {
    let root = Root::new();
    let ran = Kiln::new()
        .root(root.path())
        .args([
            "pull",
            &format!("{}/hostile:1", server.addr),
            "--format",
            "json",
        ])
        .env("REGISTRY_AUTH_FILE", root.path().join("no-auth.json"))
        .run();
    (root, ran)
}

fn refused(fault: Fault, message: &str) -> Server {
    let server = serve(fault);
    let (root, ran) = pull(&server);
    fails_saying(ran, message);
    assert_store_empty(root.path());
    server
}

#[test]
fn blobs_that_do_not_match_their_descriptor_are_refused_and_nothing_is_stored() {
    refused(Fault::WrongDigest, "does not match its digest");
    refused(Fault::WrongSize, "has 5601 bytes, its descriptor says 5600");
    let server = refused(Fault::Truncated, "has 2800 bytes, its descriptor says 5600");
    let layer_gets = server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/blobs/") && r.path.ends_with(&digest(&image().layer)))
        .count();
    assert_eq!(layer_gets, 4, "a broken connection is tried 4 times in all");
}

#[test]
fn error_statuses_are_clear_and_bounded() {
    refused(Fault::ManifestStatus(401), "asks for credentials");
    refused(Fault::ManifestStatus(403), "denies access");
    refused(Fault::ManifestStatus(404), "has no such manifest");
    refused(Fault::BlobStatus(404), "has no such blob");
    let server = refused(
        Fault::ManifestStatus(429),
        "kept answering 429 after 4 tries",
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.path.contains("/manifests/"))
            .count(),
        4
    );
    refused(
        Fault::BlobStatus(500),
        "kept answering 500 after 4 tries (TEST_500: the test says 500)",
    );
    refused(
        Fault::HugeManifest,
        "kiln refuses manifests over 4194304 bytes",
    );
    refused(
        Fault::MediaType,
        "has media type `application/vnd.docker.distribution.manifest.v1+prettyjws`",
    );
}

#[test]
fn a_passing_429_and_a_blob_redirect_are_followed() {
    for fault in [Fault::Busy, Fault::Redirect, Fault::None] {
        let server = serve(fault);
        let (root, ran) = pull(&server);
        let json = ran.success().json();
        assert_eq!(json["layers"]["transferred"], 1, "{fault:?}");
        Kiln::new().root(root.path()).args(["fsck"]).run().success();
        if let Fault::Redirect = fault {
            assert!(
                server
                    .requests()
                    .iter()
                    .any(|r| r.path == "/elsewhere/layer")
            );
        }
    }
}
