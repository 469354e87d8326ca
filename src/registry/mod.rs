//! Registries: `kiln pull`, `push`, `login` and `logout` by the OCI distribution protocol
//! (spec 1.1, the Docker Registry HTTP API v2).
//!
//! Owns talking to registries: the HTTP exchanges ([`client`]: TLS, which scheme a registry
//! may use, bearer-token and basic auth, bounded retries, redirects), credentials
//! ([`credentials`]: Docker's and Podman's files, both ways), manifests and indexes
//! ([`media`]: media types, platform selection), and moving images between a registry and
//! the store ([`pull`], [`push`]). Everything a registry sends is hostile: manifests are
//! capped at 4 MiB and hashed, every blob is hashed and counted while it streams into the
//! store's ingest area, and nothing is committed until every blob of the image checked out.
//! It must not know kiln.kdl, render progress (it reports [`Event`]s) or print secrets:
//! passwords and tokens never appear in an error, an event or a log line.
//!
//! Why not the `oci-client` crate: it is async (reqwest, hyper, tokio) where kiln is
//! synchronous, and what kiln needs sits mostly outside it: Docker's and Podman's
//! credential files, `certs.d` CAs and client certificates per registry (it takes one root
//! list per client), plain HTTP only for loopback or an explicit `--insecure`, bounded
//! retries with backoff on 429/5xx and resets, the 4 MiB manifest cap, size checks, resuming
//! a chunked upload, blob redirects without credentials, commit-only-when-verified into the
//! store, and per-blob progress. Wrapping it would have meant re-doing each of these around
//! it, so kiln speaks the protocol itself (it is a dozen requests) over `ureq`, a small
//! blocking HTTP client with rustls: no runtime to hide, and the rest of kiln stays free of
//! async.

mod challenge;
mod client;
pub mod credentials;
mod error;
pub mod media;
mod pull;
mod push;
mod tls;

use std::path::PathBuf;

pub use client::Client;
pub use error::RegistryError;
pub use media::Platform;
pub use pull::{PULLED_DIGEST, PULLED_FROM, Pulled, pull, pulled_from, resolve};
pub use push::{PushOptions, Pushed, push};

use crate::digest::Digest;
pub use crate::image::Reference;

/// How to reach registries: what the user allowed on the command line.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Plain HTTP and unverified TLS for this registry (`--insecure`). Loopback registries
    /// may use plain HTTP without it.
    pub insecure: bool,
    /// A directory of `*.crt` CAs and `*.cert`/`*.key` client pairs for this registry,
    /// instead of `certs.d` (`--cert-dir`, as Podman's).
    pub cert_dir: Option<PathBuf>,
    /// The credentials file to read (and `login` to write) instead of the defaults
    /// (`--authfile`, as Podman's; `REGISTRY_AUTH_FILE` too).
    pub auth_file: Option<PathBuf>,
}

/// What a blob's transfer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Its bytes went over the network.
    Transferred,
    /// The other side already had it.
    Skipped,
    /// The registry linked it from another repository (a cross-repository mount).
    Mounted,
}

/// Progress of a pull or push, for the command line to render.
#[derive(Debug, Clone)]
pub enum Event {
    /// A tag was resolved to a manifest (or index) digest.
    Resolved { reference: String, digest: Digest },
    /// A blob starts (or is skipped right away).
    BlobStarted { digest: Digest, size: u64 },
    /// More bytes of a blob went over the network.
    BlobBytes { digest: Digest, bytes: u64 },
    /// A blob is done.
    BlobDone { digest: Digest, outcome: Outcome },
    /// A request failed in a way worth another try.
    Retrying {
        what: String,
        attempt: u32,
        reason: String,
        wait_ms: u64,
    },
}

/// A sink for [`Event`]s; `&|_| {}` ignores them.
pub type Events<'a> = &'a (dyn Fn(Event) + Sync);

/// One blob's line in a report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BlobReport {
    pub digest: Digest,
    pub size: u64,
    pub outcome: Outcome,
}

/// Runs `work` over `items` on up to `threads` threads; the results in order, or the first
/// error (the remaining items are not started).
pub(crate) fn parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> Result<R, RegistryError> + Sync,
) -> Result<Vec<R>, RegistryError> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(items.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        return;
                    };
                    match work(item) {
                        Ok(result) => results.lock().expect("not poisoned")[i] = Some(result),
                        Err(err) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error.lock().expect("not poisoned").get_or_insert(err);
                        }
                    }
                }
            });
        }
    });
    if let Some(err) = first_error.into_inner().expect("not poisoned") {
        return Err(err);
    }
    Ok(results
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|r| r.expect("every item done"))
        .collect())
}
