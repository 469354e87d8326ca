//! Manifests and indexes as registries serve them: the media types kiln accepts, and the
//! choice of one image from an index (manifest list) by platform.
//!
//! Owns the distinction between OCI and Docker schema 2 documents and which layer media
//! types kiln can unpack. Pure: bytes in, decisions out.

use serde::Deserialize;

use super::RegistryError;
use crate::store::{Descriptor, MEDIA_INDEX, MEDIA_MANIFEST};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = crate::image::MEDIA_CONFIG;

/// What kiln asks for when it fetches a manifest, most wanted first.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Manifests over this are refused, as containerd does.
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;
/// Image configs are JSON read into memory: cap them too.
pub const MAX_CONFIG: u64 = 16 * 1024 * 1024;

/// What a manifest document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Index,
}

/// The kind of a manifest media type, `None` for ones kiln does not pull (Docker schema 1,
/// artifacts of other kinds).
pub fn kind(media_type: &str) -> Option<Kind> {
    match media_type {
        MEDIA_MANIFEST | DOCKER_MANIFEST => Some(Kind::Manifest),
        MEDIA_INDEX | DOCKER_LIST => Some(Kind::Index),
        _ => None,
    }
}

/// The media type of a manifest: the `Content-Type` the registry sent unless it is generic,
/// else the document's own `mediaType`, else guessed from its shape (OCI allows leaving
/// it out).
pub fn media_type_of(content_type: Option<&str>, bytes: &[u8]) -> String {
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let probe: Option<Probe> = serde_json::from_slice(bytes).ok();
    let own = probe.as_ref().and_then(|p| p.media_type.clone());
    header.or(own).unwrap_or_else(|| match probe {
        Some(Probe {
            manifests: Some(_), ..
        }) => MEDIA_INDEX.to_string(),
        Some(Probe {
            layers: Some(_), ..
        }) => MEDIA_MANIFEST.to_string(),
        _ => "application/octet-stream".to_string(),
    })
}

/// Layer media types kiln unpacks (`layer::decompressing_reader` detects the compression).
pub fn layer_supported(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar"
    )
}

/// Config media types kiln reads.
pub fn config_supported(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}

/// An OS/architecture pair with an optional variant (`linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// This machine: `linux/amd64`, `linux/arm64/v8`, …
    pub fn host() -> Platform {
        let architecture = crate::image::oci_architecture().to_string();
        let variant = match architecture.as_str() {
            "arm64" => Some("v8".to_string()),
            "arm" => Some("v7".to_string()),
            _ => None,
        };
        Platform {
            os: "linux".to_string(),
            architecture,
            variant,
        }
    }

    /// `OS/ARCH[/VARIANT]`.
    pub fn parse(text: &str) -> Result<Platform, RegistryError> {
        let bad = || RegistryError::BadPlatform {
            text: text.to_string(),
        };
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// Whether an index entry for `other` serves this platform. A missing variant matches
    /// the usual one (arm64 is v8), as containerd's matcher does.
    fn matches(&self, other: &Platform) -> bool {
        let normal = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_string()),
            _ => p.variant.clone(),
        };
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || normal(self) == normal(other))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An index entry: a descriptor with a platform.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexEntry {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: crate::digest::Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    pub manifests: Vec<IndexEntry>,
}

/// The entry of `index` for `wanted`; the error lists what the index has.
pub fn select<'a>(
    index: &'a Index,
    wanted: &Platform,
    reference: &str,
) -> Result<&'a IndexEntry, RegistryError> {
    index
        .manifests
        .iter()
        .filter(|e| kind(&e.media_type) == Some(Kind::Manifest) || e.media_type.is_empty())
        .find(|e| e.platform.as_ref().is_some_and(|p| wanted.matches(p)))
        .ok_or_else(|| RegistryError::NoPlatform {
            reference: reference.to_string(),
            wanted: wanted.to_string(),
            available: {
                let list: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|e| e.platform.as_ref().map(Platform::to_string))
                    .filter(|p| p != "unknown/unknown")
                    .collect();
                if list.is_empty() {
                    "no platforms".to_string()
                } else {
                    list.join(", ")
                }
            },
        })
}

/// A manifest as far as pulling needs it (OCI and Docker schema 2 share this shape).
#[derive(Debug, Clone, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match_like_containerd() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        assert!(p.matches(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(
            Platform::parse("linux/arm64/v8")
                .unwrap()
                .matches(&Platform::parse("linux/arm64").unwrap())
        );
        assert!(
            !Platform::parse("linux/arm/v7")
                .unwrap()
                .matches(&Platform::parse("linux/arm/v6").unwrap())
        );
        assert!(!p.matches(&Platform::parse("linux/amd64").unwrap()));
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_index_entry_is_chosen_by_platform() {
        let index: Index = serde_json::from_str(&format!(
            r#"{{"manifests":[
                {{"mediaType":"{DOCKER_MANIFEST}","digest":"sha256:{a}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
                {{"mediaType":"{MEDIA_MANIFEST}","digest":"sha256:{b}","size":2,"platform":{{"os":"linux","architecture":"amd64"}}}},
                {{"mediaType":"{MEDIA_MANIFEST}","digest":"sha256:{c}","size":3,"platform":{{"os":"unknown","architecture":"unknown"}}}}
            ]}}"#,
            a = "a".repeat(64),
            b = "b".repeat(64),
            c = "c".repeat(64)
        ))
        .unwrap();
        let amd = select(&index, &Platform::parse("linux/amd64").unwrap(), "x").unwrap();
        assert_eq!(amd.size, 2);
        let arm = select(&index, &Platform::parse("linux/arm64").unwrap(), "x").unwrap();
        assert_eq!(arm.size, 1);
        let err = select(&index, &Platform::parse("linux/s390x").unwrap(), "x").unwrap_err();
        assert!(
            err.to_string().contains("has: linux/arm64/v8, linux/amd64"),
            "{err}"
        );
    }

    #[test]
    fn media_types_come_from_the_header_or_the_document() {
        let doc = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[]}"#;
        assert_eq!(media_type_of(None, doc), DOCKER_MANIFEST);
        assert_eq!(
            media_type_of(Some("application/json; charset=utf-8"), doc),
            DOCKER_MANIFEST
        );
        assert_eq!(
            media_type_of(Some(MEDIA_INDEX), doc),
            MEDIA_INDEX,
            "the header wins"
        );
        assert_eq!(media_type_of(None, br#"{"manifests":[]}"#), MEDIA_INDEX);
        assert_eq!(media_type_of(None, br#"{"layers":[]}"#), MEDIA_MANIFEST);
        assert_eq!(kind(DOCKER_LIST), Some(Kind::Index));
        assert_eq!(
            kind("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            None
        );
    }
}
