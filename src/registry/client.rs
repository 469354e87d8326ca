//! One registry's HTTP side: which scheme it may be spoken to with, how to authenticate,
//! retries and redirects. Pull and push say what to request; this says how.
//!
//! - Scheme: HTTPS, with the system roots and the registry's `certs.d` CA. Plain HTTP only
//!   for a loopback registry (`localhost`, `127.0.0.0/8`, `[::1]`) or with `--insecure`
//!   (which also accepts any certificate), as Docker treats its insecure registries: HTTPS
//!   is tried first. A registry that only speaks HTTP elsewhere is a clear error.
//! - Auth: the first request to `/v2/` tells the scheme (`WWW-Authenticate`). `Basic` sends
//!   the stored user and password with each request; `Bearer` fetches a token for each
//!   scope (`repository:NAME:pull,push`) from the realm, anonymously or with the stored
//!   credentials, and caches it; a 401 later (an expired token, a wider scope) fetches a new
//!   one once. Credentials go to a realm only over HTTPS or to loopback.
//! - Retries: 429 and 5xx answers and dropped connections are tried again, up to
//!   [`ATTEMPTS`] times in all, waiting 250 ms, 500 ms, 1 s… (or what `Retry-After` says, up
//!   to 10 s) in between.
//! - Redirects (GET and HEAD; object-store backed registries redirect blob downloads) are
//!   followed up to five times, without the registry's credentials when the host changes,
//!   and never from HTTPS down to plain HTTP except to loopback.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{Method, Request, Response, StatusCode};

use super::challenge::{self, Challenge};
use super::credentials::{self, Credentials};
use super::{Event, Events, NetOptions, RegistryError, tls};

/// Tries per request (the first and the retries).
pub(crate) const ATTEMPTS: u32 = 4;

/// A request body that can be sent again on a retry.
#[derive(Clone, Copy)]
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
}

/// A request: method, a path under the registry (`/v2/…`) or an absolute URL (an upload's
/// `Location`), extra headers, and the scope its token needs.
pub(crate) struct Req<'a> {
    pub method: Method,
    pub target: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    pub scope: &'a str,
    /// Shown in errors: `GET manifest debian:12`.
    pub what: &'a str,
    /// The blob whose upload progress to report as the body is sent.
    pub progress: Option<&'a crate::digest::Digest>,
}

impl<'a> Req<'a> {
    pub(crate) fn new(method: Method, target: &'a str, scope: &'a str, what: &'a str) -> Self {
        Req {
            method,
            target,
            headers: Vec::new(),
            body: Body::Empty,
            scope,
            what,
            progress: None,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    /// scope → bearer token.
    tokens: HashMap<String, String>,
}

/// A connection to one registry, shared by the threads of a pull or push.
pub struct Client<'e> {
    registry: String,
    host: String,
    agent: ureq::Agent,
    plain_allowed: bool,
    insecure: bool,
    base: Mutex<Option<String>>,
    credentials: Option<Credentials>,
    auth: Mutex<AuthState>,
    events: Events<'e>,
}

/// Whether a `host[:port]` is this machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    bare == "localhost"
        || bare.ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host[:port]` of an absolute URL.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// Percent-encodes a query value (keeping `:`, `/` and `,`, which scopes are made of).
pub(crate) fn query_escape(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:/,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The registry's own explanation from an error body (`{"errors":[{"code","message"}]}`),
/// as ` (CODE: message)`, or the empty string.
fn error_message(response: Response<ureq::Body>) -> String {
    let mut text = String::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(64 * 1024)
        .read_to_string(&mut text);
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Errors>(&text) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.code, e.message))
                .collect();
            format!(" ({})", parts.join("; "))
        }
        _ => {
            let line = text.lines().next().unwrap_or("").trim();
            if line.is_empty() {
                String::new()
            } else {
                format!(" ({})", line.chars().take(200).collect::<String>())
            }
        }
    }
}

fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether a transport error may pass on another try.
fn transient(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::Interrupted
        ),
        ureq::Error::Timeout(_) => true,
        _ => false,
    }
}

impl<'e> Client<'e> {
    /// A client for `registry` (as in references: `docker.io`, `localhost:5000`), with the
    /// credentials stored for `repository`.
    pub fn new(
        registry: &str,
        api_host: &str,
        repository: &str,
        net: &NetOptions,
        events: Events<'e>,
    ) -> Result<Client<'e>, RegistryError> {
        let credentials = credentials::lookup(registry, repository, net.auth_file.as_deref())?;
        Self::with_credentials(registry, api_host, net, credentials, events)
    }

    /// A client with the given credentials (`kiln login` checks them with this).
    pub fn with_credentials(
        registry: &str,
        api_host: &str,
        net: &NetOptions,
        credentials: Option<Credentials>,
        events: Events<'e>,
    ) -> Result<Client<'e>, RegistryError> {
        Ok(Client {
            registry: registry.to_string(),
            host: api_host.to_string(),
            agent: tls::agent(registry, net, !net.insecure)?,
            plain_allowed: net.insecure || is_loopback(api_host),
            insecure: net.insecure,
            base: Mutex::new(None),
            credentials,
            auth: Mutex::new(AuthState::default()),
            events,
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub(crate) fn events(&self) -> Events<'e> {
        self.events
    }

    /// `https://host` or `http://host`, found by the first `GET /v2/`.
    fn base(&self) -> Result<String, RegistryError> {
        // Held while probing: the threads of a push wait for the first answer.
        let mut known = self.base.lock().expect("not poisoned");
        if let Some(base) = known.clone() {
            return Ok(base);
        }
        let https = format!("https://{}", self.host);
        let probe = |base: &str| -> Result<Response<ureq::Body>, ureq::Error> {
            self.agent.get(format!("{base}/v2/")).call()
        };
        // Where plain HTTP is allowed, one HTTPS try tells (a plain server may just hang
        // up on a TLS hello); elsewhere HTTPS is the only way and gets the retries.
        let first = if self.plain_allowed {
            match probe(&https) {
                Ok(response) => Ok(response),
                Err(err) => Err(RegistryError::Connect {
                    registry: self.registry.clone(),
                    source: Box::new(err),
                }),
            }
        } else {
            self.retrying("GET /v2/", || probe(&https))
        };
        let chosen = match first {
            Ok(response) => {
                self.note_challenge(&response);
                https
            }
            Err(RegistryError::Network { source, .. })
            | Err(RegistryError::Connect { source, .. }) => {
                let http = format!("http://{}", self.host);
                // Only a registry's answer to `/v2/` counts (a TLS server answers plain
                // HTTP with 400).
                let answered = |r: &Response<ureq::Body>| matches!(r.status().as_u16(), 200 | 401);
                match probe(&http) {
                    Ok(response) if self.plain_allowed && answered(&response) => {
                        self.note_challenge(&response);
                        http
                    }
                    Ok(response) if answered(&response) => {
                        return Err(RegistryError::PlainHttpRefused {
                            registry: self.registry.clone(),
                            source,
                        });
                    }
                    _ => {
                        return Err(RegistryError::Connect {
                            registry: self.registry.clone(),
                            source,
                        });
                    }
                }
            }
            Err(other) => return Err(other),
        };
        *known = Some(chosen.clone());
        Ok(chosen)
    }

    fn note_challenge(&self, response: &Response<ureq::Body>) {
        if response.status() == StatusCode::UNAUTHORIZED
            && let Some(found) =
                header(response, "www-authenticate").and_then(|h| challenge::parse(&h))
        {
            self.auth.lock().expect("not poisoned").challenge = Some(found);
        }
    }

    /// Checks that the registry answers and accepts the credentials (`kiln login`).
    pub fn check_login(&self) -> Result<(), RegistryError> {
        let base = self.base()?;
        let challenge = self.auth.lock().expect("not poisoned").challenge.clone();
        let what = "log in";
        match challenge {
            None => Ok(()), // an open registry: nothing to check
            Some(Challenge::Basic) => {
                let creds = self.credentials.as_ref().expect("login has credentials");
                let response = self.retrying(what, || {
                    self.agent
                        .get(format!("{base}/v2/"))
                        .header("authorization", creds.basic_header())
                        .call()
                })?;
                match response.status().as_u16() {
                    200..=299 => Ok(()),
                    401 => Err(RegistryError::BadCredentials {
                        registry: self.registry.clone(),
                        what: what.to_string(),
                    }),
                    _ => Err(self.fail(response, what, "endpoint")),
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => self
                .fetch_token(&realm, service.as_deref(), &[], what)
                .map(|_| ()),
        }
    }

    /// An absolute URL for a target (a path under the registry, or already absolute).
    pub(crate) fn url(&self, target: &str) -> Result<String, RegistryError> {
        if target.starts_with("http://") || target.starts_with("https://") {
            return Ok(target.to_string());
        }
        Ok(format!("{}{target}", self.base()?))
    }

    /// Sends a request with authentication, retries and (for GET and HEAD) redirects.
    /// Returns any final response: callers judge its status, with [`Client::fail`] for the
    /// ones they do not expect.
    pub(crate) fn send(&self, req: &Req<'_>) -> Result<Response<ureq::Body>, RegistryError> {
        let mut url = self.url(req.target)?;
        let origin_host = url_host(&url).unwrap_or("").to_string();
        let mut refreshed = false;
        let mut redirects = 0;
        loop {
            let same_host = url_host(&url) == Some(origin_host.as_str());
            let authorization = if same_host {
                self.authorization(req.scope, req.what)?
            } else {
                None
            };
            let response = self.retrying(req.what, || {
                self.attempt(req, &url, authorization.as_deref())
            })?;
            let status = response.status().as_u16();
            if status == 401 && same_host {
                let fresh =
                    header(&response, "www-authenticate").and_then(|h| challenge::parse(&h));
                let give_up = refreshed
                    || match &fresh {
                        None => true,
                        // Basic credentials were sent and refused, or there are none.
                        Some(Challenge::Basic) => {
                            authorization.is_some() || self.credentials.is_none()
                        }
                        Some(Challenge::Bearer { .. }) => false,
                    };
                if give_up {
                    return Err(self.fail(response, req.what, "resource"));
                }
                refreshed = true;
                let mut auth = self.auth.lock().expect("not poisoned");
                auth.challenge = fresh;
                auth.tokens.remove(req.scope);
                continue;
            }
            let redirect = matches!(status, 301 | 302 | 303 | 307 | 308)
                && (req.method == Method::GET || req.method == Method::HEAD);
            if !redirect {
                return Ok(response);
            }
            redirects += 1;
            let location =
                header(&response, "location").ok_or_else(|| RegistryError::Redirect {
                    what: req.what.to_string(),
                    reason: format!("a {status} answer without a Location"),
                })?;
            if redirects > 5 {
                return Err(RegistryError::Redirect {
                    what: req.what.to_string(),
                    reason: "more than 5 redirects".to_string(),
                });
            }
            let next = resolve_location(&url, &location);
            if url.starts_with("https://")
                && next.starts_with("http://")
                && !url_host(&next).is_some_and(is_loopback)
                && !self.insecure
            {
                return Err(RegistryError::Redirect {
                    what: req.what.to_string(),
                    reason: format!(
                        "the registry redirected from HTTPS to plain HTTP ({})",
                        url_host(&next).unwrap_or("?")
                    ),
                });
            }
            url = next;
        }
    }

    fn attempt(
        &self,
        req: &Req<'_>,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        let mut builder = Request::builder().method(req.method.clone()).uri(url);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value.as_str());
        }
        if let Some(auth) = authorization {
            builder = builder.header("authorization", auth);
        }
        match req.body {
            Body::Empty => {
                let needs_length = matches!(req.method, Method::PUT | Method::POST | Method::PATCH);
                if needs_length {
                    builder = builder.header("content-length", "0");
                }
                let request = builder.body(()).map_err(ureq::Error::Http)?;
                self.agent.run(request)
            }
            Body::Bytes(bytes) => {
                let request = builder
                    .header("content-length", bytes.len().to_string())
                    .body(bytes)
                    .map_err(ureq::Error::Http)?;
                self.agent.run(request)
            }
            Body::File { path, offset, len } => {
                use std::io::{Seek, SeekFrom};
                let mut file = std::fs::File::open(path)?;
                file.seek(SeekFrom::Start(offset))?;
                let mut reader = Counting {
                    inner: file.take(len),
                    digest: req.progress,
                    events: self.events,
                };
                let request = builder
                    .header("content-length", len.to_string())
                    .body(ureq::SendBody::from_reader(&mut reader))
                    .map_err(ureq::Error::Http)?;
                self.agent.run(request)
            }
        }
    }

    /// Runs `attempt` until it gives an answer that is not worth another try.
    fn retrying(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let (reason, retry_after) = match attempt() {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status != 429 && !(500..600).contains(&status) || status == 501 {
                        return Ok(response);
                    }
                    let retry_after = header(&response, "retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(10)));
                    if tries >= ATTEMPTS {
                        return Err(RegistryError::GaveUp {
                            registry: self.registry.clone(),
                            what: what.to_string(),
                            status,
                            attempts: tries,
                            message: error_message(response),
                        });
                    }
                    (format!("the registry answered {status}"), retry_after)
                }
                Err(err) if transient(&err) => {
                    if tries >= ATTEMPTS {
                        return Err(RegistryError::Network {
                            registry: self.registry.clone(),
                            what: what.to_string(),
                            attempts: tries,
                            source: Box::new(err),
                        });
                    }
                    (err.to_string(), None)
                }
                Err(err) => {
                    return Err(RegistryError::Connect {
                        registry: self.registry.clone(),
                        source: Box::new(err),
                    });
                }
            };
            let wait = retry_after.unwrap_or(Duration::from_millis(250 << (tries - 1)));
            (self.events)(Event::Retrying {
                what: what.to_string(),
                attempt: tries + 1,
                reason,
                wait_ms: wait.as_millis() as u64,
            });
            std::thread::sleep(wait);
        }
    }

    /// The `Authorization` value for a scope, fetching a token when the registry wants one.
    fn authorization(&self, scope: &str, what: &str) -> Result<Option<String>, RegistryError> {
        let challenge = {
            let auth = self.auth.lock().expect("not poisoned");
            if let Some(token) = auth.tokens.get(scope) {
                return Ok(Some(format!("Bearer {token}")));
            }
            auth.challenge.clone()
        };
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(Credentials::basic_header)),
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                let mut scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
                if let Some(asked) = asked.as_deref() {
                    for s in asked.split(' ') {
                        if !s.is_empty() && !scopes.contains(&s) {
                            scopes.push(s);
                        }
                    }
                }
                let token = self.fetch_token(&realm, service.as_deref(), &scopes, what)?;
                self.auth
                    .lock()
                    .expect("not poisoned")
                    .tokens
                    .insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// `GET realm?service=…&scope=…`, with the credentials when there are some.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[&str],
        what: &str,
    ) -> Result<String, RegistryError> {
        let failed = |reason: String| RegistryError::Token {
            registry: self.registry.clone(),
            realm: realm.to_string(),
            reason,
        };
        let realm_host = url_host(realm).unwrap_or("");
        let secure = realm.starts_with("https://");
        if !secure && !(realm.starts_with("http://") && (is_loopback(realm_host) || self.insecure))
        {
            return Err(failed(
                "its URL is not HTTPS (plain HTTP only for loopback or --insecure)".to_string(),
            ));
        }
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(service) = service {
            url.push_str(&format!("{sep}service={}", query_escape(service)));
            sep = '&';
        }
        for scope in scopes {
            url.push_str(&format!("{sep}scope={}", query_escape(scope)));
            sep = '&';
        }
        if let Some(c) = &self.credentials {
            url.push_str(&format!("{sep}account={}", query_escape(&c.username)));
        }
        let response = self.retrying(what, || {
            let mut request = self.agent.get(&url);
            if let Some(c) = &self.credentials {
                request = request.header("authorization", c.basic_header());
            }
            request.call()
        })?;
        match response.status().as_u16() {
            200..=299 => {}
            401 if self.credentials.is_some() => {
                return Err(RegistryError::BadCredentials {
                    registry: self.registry.clone(),
                    what: what.to_string(),
                });
            }
            401 | 403 => {
                return Err(RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                    what: what.to_string(),
                    message: error_message(response),
                });
            }
            status => {
                return Err(failed(format!(
                    "it answered {status}{}",
                    error_message(response)
                )));
            }
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let text = response
            .into_body()
            .with_config()
            .limit(1024 * 1024)
            .read_to_vec()
            .map_err(|e| failed(format!("its answer could not be read: {e}")))?;
        let answer: TokenAnswer = serde_json::from_slice(&text)
            .map_err(|e| failed(format!("its answer is not a token: {e}")))?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| failed("its answer holds no token".to_string()))
    }

    /// The error for an answer the caller did not expect.
    pub(crate) fn fail(
        &self,
        response: Response<ureq::Body>,
        what: &str,
        thing: &'static str,
    ) -> RegistryError {
        let status = response.status().as_u16();
        let registry = self.registry.clone();
        let what = what.to_string();
        let message = error_message(response);
        match status {
            401 if self.credentials.is_some() => RegistryError::BadCredentials { registry, what },
            401 => RegistryError::Unauthorized {
                registry,
                what,
                message,
            },
            403 => RegistryError::Denied {
                registry,
                what,
                message,
            },
            404 => RegistryError::NotFound {
                registry,
                what,
                thing,
                message,
            },
            _ => RegistryError::Status {
                registry,
                what,
                status,
                message,
            },
        }
    }

    /// Reads a response body of at most `limit` bytes.
    pub(crate) fn read_limited(
        &self,
        response: Response<ureq::Body>,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::Network {
                registry: self.registry.clone(),
                what: what.to_string(),
                attempts: 1,
                source: Box::new(ureq::Error::Io(e)),
            })?;
        Ok(bytes)
    }
}

/// A reader that reports how much of a blob was sent.
struct Counting<'a, R> {
    inner: R,
    digest: Option<&'a crate::digest::Digest>,
    events: Events<'a>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(digest) = self.digest
            && n > 0
        {
            (self.events)(Event::BlobBytes {
                digest: digest.clone(),
                bytes: n as u64,
            });
        }
        Ok(n)
    }
}

/// Resolves a `Location` against the URL it answered.
pub(crate) fn resolve_location(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with("//") {
        return format!("{}{location}", &base[..scheme_end - 2]);
    }
    if location.starts_with('/') {
        return format!("{}{location}", &base[..host_end]);
    }
    let path_end = base.find('?').unwrap_or(base.len());
    let dir_end = base[..path_end].rfind('/').map_or(path_end, |i| i + 1);
    format!("{}{location}", &base[..dir_end.max(host_end)])
}

/// Adds a query parameter to a URL that may already have some.
pub(crate) fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", query_escape(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.4.5",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn locations_resolve_like_a_browser() {
        let base = "http://127.0.0.1:5000/v2/a/blobs/uploads/";
        assert_eq!(
            resolve_location(base, "/v2/a/blobs/uploads/u?_state=x"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x"
        );
        assert_eq!(
            resolve_location(base, "https://s3.example/b?sig=1"),
            "https://s3.example/b?sig=1"
        );
        assert_eq!(
            resolve_location(base, "u1"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u1"
        );
        assert_eq!(
            resolve_location(base, "//cdn.example/x"),
            "http://cdn.example/x"
        );
        assert_eq!(
            with_query("http://h/u?_state=a", "digest", "sha256:ab"),
            "http://h/u?_state=a&digest=sha256:ab"
        );
        assert_eq!(query_escape("a b+c"), "a%20b%2Bc");
    }
}
