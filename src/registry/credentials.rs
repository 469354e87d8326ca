//! Credentials in the files Docker and Podman keep them in, read and written both ways, so
//! `podman login` works for kiln and `kiln login` for Podman, Docker, Buildah and Skopeo.
//!
//! Reading follows Podman's order: `--authfile` (or `REGISTRY_AUTH_FILE`), then
//! `${XDG_RUNTIME_DIR}/containers/auth.json` (`/run/containers/UID/auth.json` without it),
//! `~/.config/containers/auth.json`, then Docker's `$DOCKER_CONFIG/config.json`
//! (`~/.docker/config.json`). Entries are keyed by registry (`quay.io`, `localhost:5000`) or
//! by a repository prefix (`quay.io/team`); Docker's `https://index.docker.io/v1/` is
//! `docker.io`. A `credHelpers` or `credsStore` entry runs `docker-credential-NAME` as Docker
//! does. `kiln login` writes Docker's file (every tool reads it) and also updates Podman's
//! where that already has an entry for the registry, so an old one does not shadow the new.
//! Files are written atomically with mode 0600; a secret is never printed, and `Debug` of
//! [`Credentials`] hides it.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::RegistryError;

/// A user name and its password (or token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value.
    pub(crate) fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// The files kiln reads credentials from, first wins.
pub fn read_paths(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path.to_path_buf()];
    }
    if let Some(path) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(path)];
    }
    let mut paths = vec![podman_runtime_file()];
    if let Some(home) = home() {
        paths.push(
            std::env::var_os("XDG_CONFIG_HOME")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".config"))
                .join("containers/auth.json"),
        );
    }
    if let Some(docker) = docker_file() {
        paths.push(docker);
    }
    paths
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Podman's default: `${XDG_RUNTIME_DIR}/containers/auth.json`.
fn podman_runtime_file() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("containers/auth.json"),
        None => PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            nix::unistd::geteuid()
        )),
    }
}

/// Docker's: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
fn docker_file() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|p| !p.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => home().map(|h| h.join(".docker/config.json")),
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/v2/` → `host:5000`.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.trim_end_matches('/');
    let key = key
        .strip_suffix("/v1")
        .or_else(|| key.strip_suffix("/v2"))
        .unwrap_or(key);
    match key.split_once('/') {
        Some((host, rest)) => format!("{}/{rest}", normalize_host(host)),
        None => normalize_host(key).to_string(),
    }
}

fn normalize_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    }
}

fn read_json(path: &Path) -> Result<Option<Map<String, Value>>, RegistryError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(source) => {
            return Err(RegistryError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(RegistryError::CredentialsFile {
            path: path.to_path_buf(),
            source: serde::de::Error::custom("not a JSON object"),
        }),
        Err(source) => Err(RegistryError::CredentialsFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The keys to look up for a repository, most specific first: `reg/a/b`, `reg/a`, `reg`.
fn candidates(registry: &str, repository: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = format!("{registry}/{repository}");
    loop {
        out.push(path.clone());
        match path.rfind('/') {
            Some(i) => path.truncate(i),
            None => break,
        }
    }
    out
}

/// Finds credentials for `registry` (and `repository`, for repository-scoped entries).
pub fn lookup(
    registry: &str,
    repository: &str,
    explicit: Option<&Path>,
) -> Result<Option<Credentials>, RegistryError> {
    for path in read_paths(explicit) {
        let Some(file) = read_json(&path)? else {
            continue;
        };
        if let Some(found) = lookup_in(&file, &path, registry, repository)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn lookup_in(
    file: &Map<String, Value>,
    path: &Path,
    registry: &str,
    repository: &str,
) -> Result<Option<Credentials>, RegistryError> {
    let keys = candidates(registry, repository);
    if let Some(Value::Object(helpers)) = file.get("credHelpers") {
        for (key, helper) in helpers {
            if normalize_key(key) == registry
                && let Some(helper) = helper.as_str()
            {
                return helper_get(helper, registry);
            }
        }
    }
    if let Some(Value::Object(auths)) = file.get("auths") {
        for wanted in &keys {
            for (key, entry) in auths {
                if normalize_key(key) != *wanted {
                    continue;
                }
                if let Some(found) = decode_entry(entry, path)? {
                    return Ok(Some(found));
                }
            }
        }
    }
    if let Some(store) = file.get("credsStore").and_then(Value::as_str)
        && !store.is_empty()
    {
        return helper_get(store, registry);
    }
    Ok(None)
}

fn decode_entry(entry: &Value, path: &Path) -> Result<Option<Credentials>, RegistryError> {
    let bad = |what: &str| RegistryError::CredentialsFile {
        path: path.to_path_buf(),
        source: serde::de::Error::custom(what),
    };
    if let Some(auth) = entry.get("auth").and_then(Value::as_str)
        && !auth.is_empty()
    {
        let decoded = STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("an `auth` value is not base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| bad("an `auth` value is not UTF-8"))?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| bad("an `auth` value is not `user:password`"))?;
        return Ok(Some(Credentials {
            username: user.to_string(),
            password: pass.to_string(),
        }));
    }
    if let (Some(user), Some(pass)) = (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        return Ok(Some(Credentials {
            username: user.to_string(),
            password: pass.to_string(),
        }));
    }
    Ok(None)
}

/// Runs `docker-credential-NAME ACTION` with `input` on stdin.
fn helper(name: &str, action: &str, input: &str, registry: &str) -> Result<String, RegistryError> {
    let failed = |reason: String| RegistryError::CredentialHelper {
        helper: name.to_string(),
        registry: registry.to_string(),
        reason,
    };
    let mut child = Command::new(format!("docker-credential-{name}"))
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| failed(format!("cannot write to it: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("cannot wait for it: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        // Helpers print "credentials not found in native keychain" on stdout.
        let text = if stdout.trim().is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            stdout.trim().to_string()
        };
        return Err(failed(text));
    }
    Ok(stdout)
}

fn helper_get(name: &str, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let server = helper_server(registry);
    let out = match helper(name, "get", &server, registry) {
        Ok(out) => out,
        Err(RegistryError::CredentialHelper { reason, .. })
            if reason.contains("not found") || reason.contains("no credentials") =>
        {
            return Ok(None);
        }
        Err(other) => return Err(other),
    };
    let value: Value = serde_json::from_str(&out).map_err(|_| RegistryError::CredentialHelper {
        helper: name.to_string(),
        registry: registry.to_string(),
        reason: "it did not print JSON".to_string(),
    })?;
    match (
        value.get("Username").and_then(Value::as_str),
        value.get("Secret").and_then(Value::as_str),
    ) {
        (Some(user), Some(secret)) if !secret.is_empty() => Ok(Some(Credentials {
            username: user.to_string(),
            password: secret.to_string(),
        })),
        _ => Ok(None),
    }
}

/// The server name helpers know Docker Hub by.
fn helper_server(registry: &str) -> String {
    if registry == "docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

/// The key Docker writes for a registry.
fn docker_key(registry: &str) -> String {
    helper_server(registry)
}

/// Where `kiln login` writes, and which files it wrote (for the message).
pub fn store(
    registry: &str,
    credentials: &Credentials,
    explicit: Option<&Path>,
) -> Result<Vec<PathBuf>, RegistryError> {
    let explicit = explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("REGISTRY_AUTH_FILE")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    });
    let mut written = Vec::new();
    if let Some(path) = explicit {
        write_entry(&path, registry, registry, Some(credentials))?;
        written.push(path);
        return Ok(written);
    }
    let docker = docker_file().ok_or_else(|| RegistryError::Io {
        path: PathBuf::from("~/.docker/config.json"),
        source: std::io::Error::other("neither HOME nor DOCKER_CONFIG is set"),
    })?;
    let file = read_json(&docker)?.unwrap_or_default();
    let helper_name = file
        .get("credHelpers")
        .and_then(|h| h.get(registry))
        .or_else(|| file.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    if let Some(helper_name) = helper_name {
        let input = serde_json::json!({
            "ServerURL": helper_server(registry),
            "Username": credentials.username,
            "Secret": credentials.password,
        })
        .to_string();
        helper(helper_name, "store", &input, registry)?;
    } else {
        write_entry(&docker, &docker_key(registry), registry, Some(credentials))?;
    }
    written.push(docker);
    for podman in read_paths(None).into_iter().take(2) {
        if has_entry(&podman, registry)? {
            write_entry(&podman, registry, registry, Some(credentials))?;
            written.push(podman);
        }
    }
    Ok(written)
}

/// Removes the registry's entries from every file kiln reads; returns the files changed.
pub fn erase(registry: &str, explicit: Option<&Path>) -> Result<Vec<PathBuf>, RegistryError> {
    let mut changed = Vec::new();
    for path in read_paths(explicit) {
        let Some(file) = read_json(&path)? else {
            continue;
        };
        if let Some(Value::Object(helpers)) = file.get("credHelpers")
            && let Some(helper_name) = helpers
                .iter()
                .find(|(k, _)| normalize_key(k) == registry)
                .and_then(|(_, v)| v.as_str())
        {
            helper(helper_name, "erase", &helper_server(registry), registry)?;
            changed.push(path.clone());
        }
        if has_entry(&path, registry)? {
            write_entry(&path, registry, registry, None)?;
            changed.push(path);
        }
    }
    changed.dedup();
    Ok(changed)
}

fn has_entry(path: &Path, registry: &str) -> Result<bool, RegistryError> {
    Ok(read_json(path)?
        .and_then(|f| f.get("auths").cloned())
        .and_then(|a| a.as_object().cloned())
        .is_some_and(|auths| auths.keys().any(|k| normalize_key(k) == registry)))
}

/// Sets (or with `None` removes) the registry's entry, keeping everything else in the file.
fn write_entry(
    path: &Path,
    key: &str,
    registry: &str,
    credentials: Option<&Credentials>,
) -> Result<(), RegistryError> {
    let io = |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = read_json(path)?.unwrap_or_default();
    let auths = file
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths.as_object_mut().expect("an object");
    auths.retain(|k, _| normalize_key(k) != registry);
    if let Some(c) = credentials {
        auths.insert(
            key.to_string(),
            serde_json::json!({
                "auth": STANDARD.encode(format!("{}:{}", c.username, c.password))
            }),
        );
    }
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(file)).expect("JSON serializes");
    bytes.push(b'\n');
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".kiln-auth-")
        .tempfile_in(dir)
        .map_err(io)?;
    // tempfile creates 0600 files: the secret is never readable by others.
    temp.write_all(&bytes).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_as_podman_does() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("http://localhost:5000/v2/"), "localhost:5000");
        assert_eq!(normalize_key("quay.io/team"), "quay.io/team");
        assert_eq!(
            candidates("quay.io", "team/app"),
            ["quay.io/team/app", "quay.io/team", "quay.io"]
        );
    }

    #[test]
    fn entries_are_found_and_written_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"quay.io/team":{"auth":"dGVhbTpzZWNyZXQ="}},"other":1}"#,
        )
        .unwrap();
        let hub = lookup("docker.io", "library/debian", Some(&path))
            .unwrap()
            .unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("u", "p"));
        let team = lookup("quay.io", "team/app", Some(&path)).unwrap().unwrap();
        assert_eq!(team.username, "team");
        assert!(
            lookup("quay.io", "other/app", Some(&path))
                .unwrap()
                .is_none()
        );
        assert!(!format!("{team:?}").contains("secret"), "Debug hides it");

        let c = Credentials {
            username: "kiln".into(),
            password: "s3cret".into(),
        };
        store("localhost:5000", &c, Some(&path)).unwrap();
        assert_eq!(lookup("localhost:5000", "x", Some(&path)).unwrap(), Some(c));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"other\": 1"), "the rest is kept: {text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(erase("localhost:5000", Some(&path)).unwrap().len(), 1);
        assert!(
            lookup("localhost:5000", "x", Some(&path))
                .unwrap()
                .is_none()
        );
        assert!(erase("localhost:5000", Some(&path)).unwrap().is_empty());
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = lookup("x.io", "a", Some(&path)).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
    }
}
