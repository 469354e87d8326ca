//! Image references as Docker reads them (a leaf module: the language, the store's names
//! and the registry client all spell references this one way): `debian` is `docker.io/library/debian:latest`,
//! `localhost:5000/app` is on the registry `localhost:5000`, `app@sha256:…` is pinned.
//!
//! Owns the grammar (distribution's `reference` package: lowercase path components joined
//! by `.`, `_`, `__` or dashes; a first component with a `.` or a `:`, or `localhost`, is a
//! registry; tags of at most 128 word characters; sha256 digests) and the two spellings of a
//! reference: the full one (`docker.io/library/debian:12`) and the familiar one kiln names
//! images by in the store (`debian:12`). Pure: no I/O.

use std::fmt;

use crate::digest::Digest;

/// The registry of references without one.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Where `docker.io` is really served.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// A parsed, normalised reference: always a registry and a repository, a tag unless only a
/// digest was given (`latest` when neither was).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("`{text}` is not a valid image reference: {reason}")]
#[diagnostic(
    code(kiln::image::bad_reference),
    help("references look like `debian:12`, `localhost:5000/team/app:1` or `app@sha256:<64 hex>`")
)]
pub struct ReferenceError {
    pub text: String,
    pub reason: &'static str,
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &text[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A registry: a host name (labels of letters, digits and dashes joined by dots), an IPv4
/// address or a bracketed IPv6 address, with an optional port.
fn valid_registry(text: &str) -> bool {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if host.is_empty() {
        return text.starts_with('[');
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    })
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(text: &str) -> bool {
    let b = text.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Reference {
    /// Parses and normalises a reference as `docker pull` does.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let err = |reason| ReferenceError {
            text: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(digest.parse::<Digest>().map_err(|_| {
                    err("the digest must be `sha256:` and 64 lowercase hex digits")
                })?),
            ),
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/` (a registry's port comes before it).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !valid_tag(tag) {
                    return Err(err(
                        "a tag is at most 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
                    ));
                }
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':', '['])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                if !valid_registry(first) {
                    return Err(err("the registry is not a valid host[:port]"));
                }
                (first.to_string(), path.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(err(
                "a repository name is lowercase letters and digits, separated by `/`, `.`, `_` or `-`",
            ));
        }
        if registry.len() + 1 + path.len() > 255 {
            return Err(err("the name is longer than 255 characters"));
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host that serves the registry's API (`registry-1.docker.io` for `docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_HOST
        } else {
            &self.registry
        }
    }

    /// `docker.io/library/debian`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `debian`, `quay.io/team/app`: the name without Docker Hub's implied parts.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.full_name()
        }
    }

    /// The tag or the digest that the registry resolves (the digest when both are given).
    pub fn api_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `debian:12`, `app@sha256:…`: the name kiln gives the image in the store.
    pub fn familiar(&self) -> String {
        self.spell(&self.familiar_name())
    }

    /// This reference pinned to `digest` (the tag dropped): `debian@sha256:…`.
    pub fn pinned(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same reference without its digest (the tag kiln.lock pins).
    pub fn without_digest(&self) -> Reference {
        Reference {
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    fn spell(&self, name: &str) -> String {
        let mut out = name.to_string();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
        out
    }
}

/// The full spelling: `docker.io/library/debian:12`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spell(&self.full_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(text: &str) -> String {
        Reference::parse(text).unwrap().to_string()
    }

    #[test]
    fn normalises_as_docker_does() {
        assert_eq!(full("debian"), "docker.io/library/debian:latest");
        assert_eq!(full("debian:12"), "docker.io/library/debian:12");
        assert_eq!(full("library/debian:12"), "docker.io/library/debian:12");
        assert_eq!(full("docker.io/debian"), "docker.io/library/debian:latest");
        assert_eq!(
            full("index.docker.io/library/debian"),
            "docker.io/library/debian:latest"
        );
        assert_eq!(full("team/app"), "docker.io/team/app:latest");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(full("127.0.0.1:5000/a/b:v1.2"), "127.0.0.1:5000/a/b:v1.2");
        assert_eq!(full("[::1]:5000/a"), "[::1]:5000/a:latest");
        assert_eq!(
            full("quay.io/team/app-1.x__y"),
            "quay.io/team/app-1.x__y:latest"
        );
        let hex = "a".repeat(64);
        assert_eq!(
            full(&format!("debian@sha256:{hex}")),
            format!("docker.io/library/debian@sha256:{hex}")
        );
        assert_eq!(
            full(&format!("debian:12@sha256:{hex}")),
            format!("docker.io/library/debian:12@sha256:{hex}")
        );
    }

    #[test]
    fn familiar_spelling_round_trips() {
        for text in [
            "debian:12",
            "team/app:latest",
            "localhost:5000/x:latest",
            "quay.io/library/x:1",
        ] {
            let r = Reference::parse(text).unwrap();
            assert_eq!(r.familiar(), text);
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r);
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        }
        assert_eq!(
            Reference::parse("debian").unwrap().familiar(),
            "debian:latest"
        );
        let r = Reference::parse("debian:12").unwrap();
        assert_eq!(r.api_host(), DOCKER_HUB_HOST);
        assert_eq!(r.api_reference(), "12");
        let pinned = r.pinned(Digest::of(b""));
        assert_eq!(pinned.familiar(), format!("debian@{}", Digest::of(b"")));
        assert_eq!(pinned.api_reference(), Digest::of(b"").to_string());
    }

    #[test]
    fn rejects_what_docker_rejects() {
        for bad in [
            "",
            "Debian",
            "debian:",
            "debian:-x",
            ":12",
            "/debian",
            "debian/",
            "a//b",
            "a..b",
            "a-",
            "debian@sha256:short",
            "debian@md5:aaaa",
            "host:port/x",
            "localhost:/x",
            "[::1/x",
            "a b",
            "debian:12:13",
            &format!("debian:{}", "t".repeat(129)),
            &format!("x/{}", "a".repeat(260)),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
