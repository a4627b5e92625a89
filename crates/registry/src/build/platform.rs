//! Target platforms (`os/arch[/variant]`) and choosing one manifest from an image index.
//!
//! Only JSON inspection lives here; fetching the index and the chosen manifest is the caller's.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use super::error::{Error, Result};

/// Media type of an OCI image index.
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of a Docker manifest list.
pub(crate) const DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// An image platform such as `linux/amd64` or `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in Go's naming, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8` for arm64 or `v7` for arm.
    pub variant: Option<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Self {
            os: "linux".to_owned(),
            architecture: "amd64".to_owned(),
            variant: None,
        }
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = || Error::InvalidPlatform {
            platform: text.to_owned(),
        };
        let parts: Vec<&str> = text.trim().split('/').collect();
        if parts.iter().any(|part| part.is_empty()) {
            return Err(invalid());
        }
        match parts.as_slice() {
            [os, architecture] => Ok(Self::new(os, architecture, None)),
            [os, architecture, variant] => Ok(Self::new(os, architecture, Some(variant))),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(formatter, "/{variant}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// Builds a platform, normalising common aliases (`x86_64` → `amd64`, `aarch64` → `arm64`).
    fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let architecture = match architecture.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".to_owned(),
            "aarch64" => "arm64".to_owned(),
            other => other.to_owned(),
        };
        Self {
            os: os.to_ascii_lowercase(),
            architecture,
            variant: variant.map(str::to_owned),
        }
    }

    /// The variant an unspecified variant stands for on this architecture.
    fn default_variant(&self) -> Option<&'static str> {
        match self.architecture.as_str() {
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        }
    }

    /// How well an image's platform fits this request: `None` if it does not fit, higher is
    /// better (an exact variant beats an implied one).
    fn fit(&self, offered: &Platform) -> Option<u8> {
        if self.os != offered.os || self.architecture != offered.architecture {
            return None;
        }
        let wanted = self.variant.as_deref().or(self.default_variant());
        let offered_variant = offered.variant.as_deref().or(offered.default_variant());
        match (wanted, offered_variant) {
            (Some(wanted), Some(offered)) if wanted == offered => Some(2),
            (None, None) => Some(2),
            // No variant asked for: any variant of the architecture will do.
            (None, Some(_)) if self.variant.is_none() => Some(1),
            _ => None,
        }
    }

    /// Reads `os`, `architecture` and `variant` from a descriptor's `platform` or an image config.
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let os = value.get("os")?.as_str()?;
        let architecture = value.get("architecture")?.as_str()?;
        let variant = value.get("variant").and_then(Value::as_str);
        Some(Self::new(os, architecture, variant))
    }

    /// Whether an image whose config declares `offered` can serve this platform.
    pub(crate) fn accepts(&self, offered: &Platform) -> bool {
        self.fit(offered).is_some()
    }
}

/// Whether a manifest (by media type, or by its `manifests` field when the type is absent) is an
/// index / manifest list rather than a single image manifest.
pub(crate) fn is_index(media_type: &str, document: &Value) -> bool {
    media_type == OCI_INDEX
        || media_type == DOCKER_MANIFEST_LIST
        || (document.get("manifests").is_some() && document.get("layers").is_none())
}

/// The manifest an index offers for a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexChoice {
    /// Digest of the chosen manifest.
    pub(crate) digest: String,
    /// Its media type, when the index states it.
    pub(crate) media_type: Option<String>,
}

/// Chooses the manifest for `platform` from an index; on failure, the error lists what exists.
pub(crate) fn select_from_index(
    index: &Value,
    platform: &Platform,
    image: &str,
) -> Result<IndexChoice> {
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::InvalidBaseImage {
            image: image.to_owned(),
            reason: "the image index has no `manifests` array".to_owned(),
        })?;
    let mut best: Option<(u8, IndexChoice)> = None;
    let mut available = Vec::new();
    for descriptor in manifests {
        let Some(offered) = descriptor.get("platform").and_then(Platform::from_json) else {
            continue;
        };
        // Attestation manifests (BuildKit provenance) are tagged unknown/unknown.
        if offered.os == "unknown" {
            continue;
        }
        available.push(offered.to_string());
        let Some(score) = platform.fit(&offered) else {
            continue;
        };
        let Some(digest) = descriptor.get("digest").and_then(Value::as_str) else {
            return Err(Error::InvalidBaseImage {
                image: image.to_owned(),
                reason: format!("the index entry for {offered} has no digest"),
            });
        };
        if best
            .as_ref()
            .is_none_or(|(best_score, _)| score > *best_score)
        {
            let media_type = descriptor
                .get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_owned);
            best = Some((
                score,
                IndexChoice {
                    digest: digest.to_owned(),
                    media_type,
                },
            ));
        }
    }
    best.map(|(_, choice)| choice)
        .ok_or_else(|| Error::PlatformNotFound {
            image: image.to_owned(),
            platform: platform.to_string(),
            available: if available.is_empty() {
                "none".to_owned()
            } else {
                available.join(", ")
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn platform(text: &str) -> Platform {
        text.parse().expect("valid platform")
    }

    fn index() -> Value {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:amd", "size": 1,
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:arm64", "size": 1,
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:armv6", "size": 1,
                 "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:att", "size": 1,
                 "platform": {"os": "unknown", "architecture": "unknown"}}
            ]
        })
    }

    fn check(requested: &str, expected_digest: &str) {
        let choice = select_from_index(&index(), &platform(requested), "base:1")
            .unwrap_or_else(|error| panic!("{requested}: {error}"));
        assert_eq!(choice.digest, expected_digest, "{requested}");
    }

    #[test]
    fn parses_and_displays_platforms() {
        assert_eq!(Platform::default().to_string(), "linux/amd64");
        assert_eq!(platform("linux/arm64/v8").to_string(), "linux/arm64/v8");
        assert_eq!(platform("linux/x86_64"), Platform::default());
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            let error = bad.parse::<Platform>().expect_err(bad);
            assert!(error.to_string().contains("os/arch"), "{error}");
        }
    }

    #[test]
    fn selects_by_os_architecture_and_variant() {
        check("linux/amd64", "sha256:amd");
        check("linux/arm64", "sha256:arm64");
        check("linux/arm64/v8", "sha256:arm64");
        check("linux/arm/v6", "sha256:armv6");
    }

    #[test]
    fn missing_platform_lists_what_is_available() {
        let error = select_from_index(&index(), &platform("linux/arm/v7"), "base:1")
            .expect_err("no arm/v7");
        let message = error.to_string();
        assert!(message.contains("linux/arm/v7"), "{message}");
        assert!(
            message.contains("linux/amd64, linux/arm64/v8, linux/arm/v6"),
            "{message}"
        );
        assert!(!message.contains("unknown"), "{message}");
        let error = select_from_index(&index(), &platform("windows/amd64"), "base:1")
            .expect_err("no windows");
        assert!(matches!(error, Error::PlatformNotFound { .. }));
    }

    #[test]
    fn recognises_indexes() {
        assert!(is_index(OCI_INDEX, &json!({})));
        assert!(is_index(DOCKER_MANIFEST_LIST, &json!({})));
        assert!(is_index("", &json!({"manifests": []})));
        assert!(!is_index(
            "application/vnd.oci.image.manifest.v1+json",
            &json!({"layers": []})
        ));
    }

    #[test]
    fn single_image_platform_check_accepts_implied_variants() {
        let requested = platform("linux/arm64");
        let offered = Platform::from_json(&json!({"os": "linux", "architecture": "arm64"}))
            .expect("platform");
        assert!(requested.accepts(&offered));
        assert!(!Platform::default().accepts(&offered));
    }
}
