//! The registry module's error: each says which registry and what request, never a secret.

use std::path::PathBuf;

use crate::digest::Digest;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Reference(#[from] crate::image::ReferenceError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::store::StoreError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] crate::image::ImageError),

    #[error("cannot reach registry {registry}")]
    #[diagnostic(help(
        "check the name and port and that the registry runs; for a TLS error, put its CA in /etc/containers/certs.d/{registry}/ca.crt (or pass --cert-dir DIR)"
    ))]
    Connect {
        registry: String,
        #[source]
        source: Box<ureq::Error>,
    },

    #[error(
        "registry {registry} does not speak HTTPS, and kiln uses plain HTTP only for loopback registries"
    )]
    #[diagnostic(help(
        "pass --insecure if you trust the network to {registry}, or give it a TLS certificate (CA in /etc/containers/certs.d/{registry}/ca.crt)"
    ))]
    PlainHttpRefused {
        registry: String,
        #[source]
        source: Box<ureq::Error>,
    },

    #[error("{what}: registry {registry} asks for credentials")]
    #[diagnostic(help("log in first: `kiln login {registry}`"))]
    Unauthorized {
        registry: String,
        what: String,
        message: String,
    },

    #[error("{what}: registry {registry} refused the credentials for {registry}")]
    #[diagnostic(help("check the user name and password: `kiln login {registry}` again"))]
    BadCredentials { registry: String, what: String },

    #[error("{what}: registry {registry} denies access{message}")]
    #[diagnostic(help(
        "the account lacks permission for this repository (push needs write access)"
    ))]
    Denied {
        registry: String,
        what: String,
        message: String,
    },

    #[error("{what}: registry {registry} has no such {thing}{message}")]
    #[diagnostic(help(
        "check the name and tag; `skopeo list-tags docker://…` lists a repository's tags"
    ))]
    NotFound {
        registry: String,
        what: String,
        thing: &'static str,
        message: String,
    },

    #[error("{what}: registry {registry} answered {status}{message}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        message: String,
    },

    #[error("{what}: registry {registry} kept answering {status} after {attempts} tries{message}")]
    #[diagnostic(help("the registry is overloaded or failing; try again later"))]
    GaveUp {
        registry: String,
        what: String,
        status: u16,
        attempts: u32,
        message: String,
    },

    #[error("{what}: the connection to {registry} failed after {attempts} tries")]
    #[diagnostic(help("the network or the registry dropped the connection; try again"))]
    Network {
        registry: String,
        what: String,
        attempts: u32,
        #[source]
        source: Box<ureq::Error>,
    },

    #[error("{what}: {reason}")]
    Redirect { what: String, reason: String },

    #[error("the token service {realm} of {registry} failed: {reason}")]
    Token {
        registry: String,
        realm: String,
        reason: String,
    },

    #[error("manifest {reference} is {size} bytes; kiln refuses manifests over {limit} bytes")]
    #[diagnostic(help(
        "a manifest that large is not an image manifest (containerd refuses it too)"
    ))]
    ManifestTooLarge {
        reference: String,
        size: u64,
        limit: u64,
    },

    #[error("manifest {reference} has media type `{media_type}`, which kiln does not pull")]
    #[diagnostic(help(
        "kiln pulls OCI image manifests and indexes and Docker schema 2 manifests and manifest lists"
    ))]
    UnsupportedManifest {
        reference: String,
        media_type: String,
    },

    #[error("{what} {digest} has media type `{media_type}`, which kiln does not pull")]
    #[diagnostic(help("kiln pulls tar layers, uncompressed or compressed with gzip or zstd"))]
    UnsupportedBlob {
        what: &'static str,
        digest: Digest,
        media_type: String,
    },

    #[error("{what} from {registry} is not valid: {reason}")]
    Malformed {
        registry: String,
        what: String,
        reason: String,
    },

    #[error(
        "manifest {reference} arrived with the wrong content: it hashes to {actual}, not {expected}"
    )]
    #[diagnostic(help("the registry (or something between) altered it; nothing was stored"))]
    ManifestDigest {
        reference: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("blob {digest} of {reference} failed verification")]
    Blob {
        reference: String,
        digest: Digest,
        #[source]
        #[diagnostic_source]
        source: crate::store::StoreError,
    },

    #[error("{reference} has no image for {wanted}; it has: {available}")]
    #[diagnostic(help("choose one with --platform OS/ARCH[/VARIANT]"))]
    NoPlatform {
        reference: String,
        wanted: String,
        available: String,
    },

    #[error("`{text}` is not a platform")]
    #[diagnostic(help("write OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64/v8"))]
    BadPlatform { text: String },

    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not a valid credentials file", path.display())]
    #[diagnostic(help("it should be JSON like {{\"auths\": {{\"HOST\": {{\"auth\": \"…\"}}}}}}"))]
    CredentialsFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("the credential helper `docker-credential-{helper}` failed for {registry}: {reason}")]
    CredentialHelper {
        helper: String,
        registry: String,
        reason: String,
    },

    #[error("cannot use the certificates in {}: {reason}", path.display())]
    Certificates { path: PathBuf, reason: String },

    #[error("the image has {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCount { layers: usize, diff_ids: usize },
}
