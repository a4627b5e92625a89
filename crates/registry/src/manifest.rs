//! The one manifest model: [`RawManifest`] (a manifest or index exactly as stored, never
//! re-serialised, so pushing it keeps its digest) and what it references, parsed from those
//! bytes ([`ManifestContents`], [`Descriptor`]). Every digest is checked as it is parsed,
//! because digests become URL paths and file names. Writing new manifests (the native
//! builder's, a `docker save` archive's) is done where they are made.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::media_type;
use crate::platform::Platform;

/// A manifest or index exactly as stored: pushing `bytes` unchanged preserves `digest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawManifest {
    /// The exact manifest bytes.
    pub bytes: Bytes,
    /// Its media type (the `Content-Type` it is pushed with).
    pub media_type: String,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl RawManifest {
    /// Wraps manifest bytes, computing their digest.
    pub fn new(bytes: Bytes, media_type: impl Into<String>) -> Self {
        let digest = crate::sha256_digest(&bytes);
        Self {
            bytes,
            media_type: media_type.into(),
            digest,
        }
    }

    /// What this manifest references; `location` names it in errors.
    pub(crate) fn contents(&self, location: &str) -> Result<ManifestContents> {
        parse(&self.bytes, location)
    }
}

/// A content descriptor: what a manifest says about one blob or child manifest.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    #[serde(deserialize_with = "checked_digest")]
    pub(crate) digest: String,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) urls: Vec<String>,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
    /// The platform of an index entry.
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
}

/// Deserialises a digest, refusing anything that is not `algorithm:encoded` (so no `/`, `..`
/// or `%` can reach a URL or a path).
fn checked_digest<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let digest = String::deserialize(deserializer)?;
    crate::ImageRef::validate_digest(&digest).map_err(serde::de::Error::custom)?;
    Ok(digest)
}

impl Descriptor {
    /// Foreign layers (Windows base layers) live elsewhere and are never pushed.
    pub(crate) fn is_foreign(&self) -> bool {
        self.media_type.contains("foreign") || !self.urls.is_empty()
    }
}

#[derive(Deserialize)]
struct AnyManifest {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// What a manifest references.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ManifestContents {
    /// A single-platform image: config and layers.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// An index (multi-platform image, or an OCI layout's `index.json`): child manifests.
    Index { manifests: Vec<Descriptor> },
}

fn read(bytes: &[u8], location: &str) -> Result<AnyManifest> {
    serde_json::from_slice(bytes).map_err(|error| Error::InvalidManifest {
        location: location.to_owned(),
        reason: format!("line {} column {}: {error}", error.line(), error.column()),
    })
}

/// Parses `bytes` (found at `location`) into what it references.
pub(crate) fn parse(bytes: &[u8], location: &str) -> Result<ManifestContents> {
    let manifest = read(bytes, location)?;
    match (manifest.manifests, manifest.config) {
        (Some(manifests), None) => Ok(ManifestContents::Index { manifests }),
        (None, Some(config)) => Ok(ManifestContents::Image { config, layers: manifest.layers.unwrap_or_default() }),
        _ => Err(Error::InvalidManifest {
            location: location.to_owned(),
            reason: "neither an image manifest (`config` and `layers`) nor an index (`manifests`); Docker schema 1 manifests are not supported".to_owned(),
        }),
    }
}

/// The media type of a manifest: its `mediaType` field, else guessed from its shape.
pub(crate) fn media_type_of(bytes: &[u8], location: &str) -> Result<String> {
    let manifest = read(bytes, location)?;
    if let Some(media_type) = manifest
        .media_type
        .filter(|media_type| !media_type.is_empty())
    {
        return Ok(media_type);
    }
    Ok(if manifest.manifests.is_some() {
        media_type::OCI_INDEX
    } else {
        media_type::OCI_MANIFEST
    }
    .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn parses_images_and_indexes() {
        let image = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"c","digest":"{DIGEST}","size":3}},"layers":[{{"mediaType":"l","digest":"{DIGEST}","size":5}}]}}"#
        );
        match parse(image.as_bytes(), "m").unwrap() {
            ManifestContents::Image { config, layers } => {
                assert_eq!((config.size, layers.len()), (3, 1))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            media_type_of(image.as_bytes(), "m").unwrap(),
            media_type::OCI_MANIFEST
        );
        let index = format!(
            r#"{{"manifests":[{{"mediaType":"{}","digest":"{DIGEST}","size":9,"platform":{{"os":"linux","architecture":"x86_64"}}}}]}}"#,
            media_type::OCI_MANIFEST
        );
        match parse(index.as_bytes(), "m").unwrap() {
            ManifestContents::Index { manifests } => assert_eq!(
                manifests[0].platform.as_ref().map(ToString::to_string),
                Some("linux/amd64".to_owned())
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            media_type_of(index.as_bytes(), "m").unwrap(),
            media_type::OCI_INDEX
        );
    }

    #[test]
    fn rejects_descriptors_whose_digest_could_escape_a_path() {
        for digest in [
            "sha256:../../etc/passwd",
            "sha256:ab/cd",
            "../x",
            "sha256:%2e",
        ] {
            let image = format!(r#"{{"config":{{"digest":"{digest}","size":3}},"layers":[]}}"#);
            let error = parse(image.as_bytes(), "m").unwrap_err().to_string();
            assert!(error.contains("digest"), "{digest}: {error}");
        }
    }

    #[test]
    fn rejects_schema1_with_the_location() {
        let error = parse(
            br#"{"schemaVersion":1,"fsLayers":[]}"#,
            "/x/blobs/sha256/ab",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("/x/blobs/sha256/ab") && error.contains("schema 1"),
            "{error}"
        );
    }
}
