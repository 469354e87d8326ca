//! Registries for the tests: Debian's `docker-registry` (distribution 2.8) started per test
//! on 127.0.0.1 with its storage in a temporary directory, a test CA, an htpasswd file, a
//! bearer-token service, and a hostile registry that answers what a test tells it to.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

use crate::harness::tools::run as checked;
use crate::harness::{eventually, which};

pub use crate::harness::host::free_port;

/// A running `docker-registry`, killed (by its pid) when dropped.
pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

/// What a registry is configured with beyond the address and storage.
#[derive(Default)]
pub struct Setup {
    /// `http.tls` certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// An `auth:` section (YAML, indented by two).
    pub auth: Option<String>,
}

impl Registry {
    /// A plain-HTTP registry; `None` when docker-registry is missing (not under CI).
    pub fn start() -> Option<Registry> {
        Registry::start_with(Setup::default())
    }

    pub fn start_with(setup: Setup) -> Option<Registry> {
        if !which("docker-registry") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((cert, key)) = &setup.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some(auth) = &setup.auth {
            config.push_str("auth:\n");
            config.push_str(auth);
        }
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry { child, dir, addr };
        eventually(
            &format!("docker-registry to listen on {}", registry.addr),
            || {
                TcpStream::connect(&registry.addr)
                    .map(drop)
                    .map_err(|e| format!("{e}; its log: {}", registry.log()))
            },
        );
        Some(registry)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `DIR/NAME.key` and `DIR/NAME.crt`: a new key and a certificate for `subject` it signs
/// itself, valid for two days (openssl).
fn self_signed(dir: &Path, name: &str, subject: &str) {
    checked(Command::new("openssl").current_dir(dir).args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &format!("{name}.key"),
        "-out",
        &format!("{name}.crt"),
        "-days",
        "2",
        "-subj",
        subject,
    ]));
}

/// A test CA and a certificate for 127.0.0.1 signed by it (openssl).
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn make() -> Option<Certs> {
        if !which("openssl") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = || {
            let mut c = Command::new("openssl");
            c.current_dir(d);
            c
        };
        self_signed(d, "ca", "/CN=kiln test CA");
        checked(openssl().args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]));
        std::fs::write(
            d.join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        checked(openssl().args([
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]));
        // kiln's --cert-dir holds only the CA, as certs.d/HOST:PORT/ca.crt would.
        std::fs::create_dir(d.join("certs.d")).unwrap();
        std::fs::copy(d.join("ca.crt"), d.join("certs.d/ca.crt")).unwrap();
        Some(Certs { dir })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// An htpasswd file (bcrypt, as distribution requires) with one user.
pub fn htpasswd(dir: &Path, user: &str, password: &str) -> Option<PathBuf> {
    if !which("htpasswd") {
        return None;
    }
    let line = checked(Command::new("htpasswd").args(["-Bbn", user, password]));
    let path = dir.join("htpasswd");
    std::fs::write(&path, line.trim()).unwrap();
    Some(path)
}

/// One HTTP request as a test server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Seen, &mut TcpStream) + Send + Sync;

/// A small HTTP/1.1 server on 127.0.0.1: one request per connection, answered by the
/// test's handler, every request recorded. Stopped when dropped.
pub struct Server {
    pub addr: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(handler: impl Fn(&Seen, &mut TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let seen = seen.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            stream
                                .set_read_timeout(Some(Duration::from_secs(10)))
                                .unwrap();
                            let Some(request) = read_request(&mut stream) else {
                                continue;
                            };
                            seen.lock().unwrap().push(request.clone());
                            handler(&request, &mut stream);
                            let _ = stream.flush();
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Server {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let mut parts = first.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let seen = Seen {
        method,
        path,
        headers,
    };
    if let Some(len) = seen
        .header("content-length")
        .and_then(|l| l.parse::<u64>().ok())
    {
        let _ = std::io::copy(&mut (&mut reader).take(len), &mut std::io::sink());
    }
    Some(seen)
}

/// Writes a whole response (`Connection: close`).
pub fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// A bearer-token service for distribution's `auth: token:`: it grants `pull` to anyone
/// and `pull,push` to `user:password`, signing JWTs with its own key (openssl) whose
/// certificate is the registry's `rootcertbundle`.
pub struct TokenService {
    pub server: Server,
    pub certs: tempfile::TempDir,
}

pub const SERVICE: &str = "kiln-test-registry";
pub const ISSUER: &str = "kiln-test-issuer";

impl TokenService {
    pub fn start(user: &'static str, password: &'static str) -> Option<TokenService> {
        if !which("openssl") {
            return None;
        }
        let certs = tempfile::tempdir().unwrap();
        self_signed(certs.path(), "token", "/CN=kiln test token issuer");
        let der = checked_bytes(Command::new("openssl").current_dir(certs.path()).args([
            "x509",
            "-in",
            "token.crt",
            "-outform",
            "DER",
        ]));
        let key = certs.path().join("token.key");
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let server = Server::start(move |request, stream| {
            let query = request.path.split_once('?').map_or("", |(_, q)| q);
            let mut scopes = Vec::new();
            for pair in query.split('&') {
                if let Some(v) = pair.strip_prefix("scope=") {
                    scopes.push(percent_decode(v));
                }
            }
            let authed = match request.header("authorization") {
                None => false,
                Some(h) if h == expected => true,
                Some(_) => {
                    respond(
                        stream,
                        "401 Unauthorized",
                        &[],
                        b"{\"details\":\"bad credentials\"}",
                    );
                    return;
                }
            };
            let mut access = Vec::new();
            for scope in &scopes {
                let mut parts = scope.splitn(3, ':');
                let (Some(kind), Some(name), Some(actions)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let granted: Vec<&str> = actions
                    .split(',')
                    .filter(|a| *a == "pull" || (authed && *a == "push"))
                    .collect();
                access.push(serde_json::json!({"type": kind, "name": name, "actions": granted}));
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
            let claims = serde_json::json!({
                "iss": ISSUER, "sub": if authed { user } else { "" }, "aud": SERVICE,
                "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("{now}-{}", scopes.len()),
                "access": access,
            });
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let signing_input = format!(
                "{}.{}",
                url.encode(header.to_string()),
                url.encode(claims.to_string())
            );
            let mut sign = Command::new("openssl")
                .args(["dgst", "-sha256", "-sign"])
                .arg(&key)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            sign.stdin
                .take()
                .unwrap()
                .write_all(signing_input.as_bytes())
                .unwrap();
            let signature = sign.wait_with_output().unwrap().stdout;
            let token = format!("{signing_input}.{}", url.encode(signature));
            let body = serde_json::json!({"token": token, "expires_in": 600}).to_string();
            respond(
                stream,
                "200 OK",
                &[("Content-Type", "application/json".into())],
                body.as_bytes(),
            );
        });
        Some(TokenService { server, certs })
    }

    /// The registry's `auth:` section for this service.
    pub fn auth_yaml(&self) -> String {
        format!(
            "  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.server.addr,
            self.certs.path().join("token.crt").display()
        )
    }
}

fn checked_bytes(command: &mut Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}");
    out.stdout
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
