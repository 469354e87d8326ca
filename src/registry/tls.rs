//! TLS for one registry: the system's roots plus the registry's own CA, and a client
//! certificate where one is configured, following Podman's and Docker's `certs.d`
//! convention: in `/etc/containers/certs.d/HOST:PORT/`, `~/.config/containers/certs.d/…`
//! or `/etc/docker/certs.d/HOST:PORT/`, every `*.crt` is a CA, and `NAME.cert` with
//! `NAME.key` is a client certificate. `--cert-dir DIR` replaces the search with DIR.
//!
//! Owns the HTTP agent's configuration (timeouts, no automatic redirects: the client
//! follows them itself, without credentials), and the loopback-only guard: with
//! `KILN_REGISTRY_LOOPBACK_ONLY` set, every connection (registry, token realm, redirect,
//! proxy) must go to a loopback address named as such — nothing is even looked up in DNS.
//! The tests set it, so that no test can reach a registry outside the machine.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use super::{NetOptions, RegistryError};

/// The system's trusted roots, loaded once (`SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured).
fn system_roots() -> &'static [Certificate<'static>] {
    static ROOTS: OnceLock<Vec<Certificate<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        rustls_native_certs::load_native_certs()
            .certs
            .into_iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect()
    })
}

/// The `certs.d` directories for `host` (`HOST:PORT` as written in the reference).
fn cert_dirs(host: &str, net: &NetOptions) -> Vec<PathBuf> {
    if let Some(dir) = &net.cert_dir {
        return vec![dir.clone()];
    }
    let mut dirs = vec![PathBuf::from("/etc/containers/certs.d").join(host)];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(
            PathBuf::from(home)
                .join(".config/containers/certs.d")
                .join(host),
        );
    }
    dirs.push(PathBuf::from("/etc/docker/certs.d").join(host));
    dirs
}

fn bad(path: &Path, reason: impl Into<String>) -> RegistryError {
    RegistryError::Certificates {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The CAs and client certificate of the first `certs.d` directory that exists.
fn load_dir(dir: &Path) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>), RegistryError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(dir, e.to_string()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut roots = Vec::new();
    let mut client = None;
    for path in &entries {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "crt" => {
                let pem = std::fs::read(path).map_err(|e| bad(path, e.to_string()))?;
                let before = roots.len();
                for item in ureq::tls::parse_pem(&pem) {
                    if let ureq::tls::PemItem::Certificate(cert) =
                        item.map_err(|e| bad(path, e.to_string()))?
                    {
                        roots.push(cert);
                    }
                }
                if roots.len() == before {
                    return Err(bad(path, "it holds no PEM certificate"));
                }
            }
            "cert" => {
                let key_path = path.with_extension("key");
                if !key_path.is_file() {
                    return Err(bad(path, format!("{} is missing", key_path.display())));
                }
                let pem = std::fs::read(path).map_err(|e| bad(path, e.to_string()))?;
                let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|i| match i {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                let key_pem =
                    std::fs::read(&key_path).map_err(|e| bad(&key_path, e.to_string()))?;
                let key =
                    PrivateKey::from_pem(&key_pem).map_err(|e| bad(&key_path, e.to_string()))?;
                if chain.is_empty() {
                    return Err(bad(path, "it holds no PEM certificate"));
                }
                client = Some(ClientCert::new_with_certs(&chain, key));
            }
            _ => {}
        }
    }
    Ok((roots, client))
}

/// An HTTP agent for one registry. `verify: false` (only with `--insecure`) accepts any
/// certificate.
pub(crate) fn agent(
    host: &str,
    net: &NetOptions,
    verify: bool,
) -> Result<ureq::Agent, RegistryError> {
    let mut roots: Vec<Certificate<'static>> = system_roots().to_vec();
    let mut client = None;
    for dir in cert_dirs(host, net) {
        if dir.is_dir() {
            let (extra, cert) = load_dir(&dir)?;
            roots.extend(extra);
            client = cert;
            break;
        } else if net.cert_dir.is_some() {
            return Err(bad(&dir, "it is not a directory"));
        }
    }
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&roots))
        .client_cert(client)
        .disable_verification(!verify)
        .build();
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .max_idle_connections_per_host(8)
        .build();
    if loopback_only() {
        return Ok(ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            LoopbackOnly(ureq::unversioned::resolver::DefaultResolver::default()),
        ));
    }
    Ok(ureq::Agent::new_with_config(config))
}

/// The variable that confines kiln's registry traffic to loopback.
pub(super) const LOOPBACK_ONLY: &str = "KILN_REGISTRY_LOOPBACK_ONLY";

/// Whether [`LOOPBACK_ONLY`] is set (to anything but `` or `0`).
fn loopback_only() -> bool {
    std::env::var_os(LOOPBACK_ONLY).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A resolver that refuses every host that is not loopback by its very name (`localhost`,
/// `*.localhost`, `127.0.0.0/8`, `::1`), before any lookup, and any address a lookup of
/// such a name gives that is not loopback.
#[derive(Debug)]
struct LoopbackOnly(ureq::unversioned::resolver::DefaultResolver);

fn refused(host: &str) -> ureq::Error {
    ureq::Error::Other(Box::new(std::io::Error::other(format!(
        "{LOOPBACK_ONLY} is set: kiln contacts registries on loopback only, not `{host}`"
    ))))
}

impl ureq::unversioned::resolver::Resolver for LoopbackOnly {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or("");
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let named_loopback = bare == "localhost"
            || bare.ends_with(".localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !named_loopback {
            return Err(refused(host));
        }
        let addresses = self.0.resolve(uri, config, timeout)?;
        if addresses.iter().any(|a| !a.ip().is_loopback()) {
            return Err(refused(host));
        }
        Ok(addresses)
    }
}
