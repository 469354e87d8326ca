//! What a blob refers to: the descriptors inside a manifest (its config and layers) or an
//! index (its manifests), OCI's media types and Docker's schema 2 equivalents alike. The
//! store follows these to keep what is reachable (`gc`), check it (`fsck`) and verify a
//! transaction before it commits; it reads no other field.

use super::{Descriptor, MEDIA_INDEX, MEDIA_MANIFEST};

/// Docker's schema 2 manifest, as registries still serve it.
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list (an index).
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest or index the store reads (the registry's own limit, 4 MiB): a
/// hostile "manifest" of gigabytes is refused before it is parsed.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Whether blobs of this media type refer to others.
pub fn has_children(media_type: &str) -> bool {
    is_manifest(media_type) || is_index(media_type)
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST
}

pub fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_INDEX || media_type == MEDIA_DOCKER_LIST
}

/// The descriptors a manifest or index of `media_type` refers to; an empty list for other
/// media types. An error says why the bytes are not such a document.
pub fn children(media_type: &str, bytes: &[u8]) -> Result<Vec<Descriptor>, String> {
    if !has_children(media_type) {
        return Ok(Vec::new());
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    let mut out = Vec::new();
    let mut take = |v: &serde_json::Value| -> Result<(), String> {
        out.push(serde_json::from_value::<Descriptor>(v.clone()).map_err(|e| e.to_string())?);
        Ok(())
    };
    let keys: &[&str] = if is_manifest(media_type) {
        match value.get("config") {
            Some(config) => take(config)?,
            None => return Err("a manifest without a config".into()),
        }
        &["layers"]
    } else {
        &["manifests"]
    };
    for key in keys {
        match value.get(*key) {
            None => {}
            Some(serde_json::Value::Array(list)) => {
                for v in list {
                    take(v)?;
                }
            }
            Some(_) => return Err(format!("`{key}` is not a list")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_and_indexes_name_their_children() {
        let d = |n: u8| serde_json::json!({"mediaType": "x", "digest": format!("sha256:{}", format!("{n:02x}").repeat(32)), "size": n});
        let manifest = serde_json::json!({"config": d(1), "layers": [d(2), d(3)]});
        let kids = children(MEDIA_MANIFEST, &serde_json::to_vec(&manifest).unwrap()).unwrap();
        assert_eq!(
            kids.iter().map(|k| k.size).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let index = serde_json::json!({"manifests": [d(4)]});
        let kids = children(MEDIA_DOCKER_LIST, &serde_json::to_vec(&index).unwrap()).unwrap();
        assert_eq!(kids.len(), 1);
        assert!(
            children("application/octet-stream", b"garbage")
                .unwrap()
                .is_empty()
        );
        assert!(children(MEDIA_MANIFEST, b"[]").is_err());
        assert!(children(MEDIA_MANIFEST, br#"{"layers": []}"#).is_err());
        assert!(children(MEDIA_INDEX, br#"{"manifests": {}}"#).is_err());
        let bad_size = serde_json::json!({"manifests": [{"mediaType": "x", "digest": "sha256:00", "size": 1}]});
        assert!(children(MEDIA_INDEX, &serde_json::to_vec(&bad_size).unwrap()).is_err());
    }
}
