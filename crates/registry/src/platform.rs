//! Image platforms (`os/arch[/variant]`), how well an offered platform fits a requested one,
//! and choosing one manifest from an index. Only parsed documents are looked at here;
//! fetching them is the caller's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::manifest::Descriptor;

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

    /// The platform an image config declares (`os`, `architecture`, `variant`), if it
    /// declares one; `location` names the config in errors.
    pub(crate) fn from_config(config: &[u8], location: &str) -> Result<Option<Self>> {
        #[derive(Deserialize)]
        struct Config {
            #[serde(flatten)]
            platform: Option<Platform>,
        }
        serde_json::from_slice::<Config>(config)
            .map(|config| config.platform)
            .map_err(|error| Error::InvalidManifest {
                location: location.to_owned(),
                reason: format!("the image config is not JSON with a platform: {error}"),
            })
    }

    /// Whether an image whose config declares `offered` can serve this platform.
    pub(crate) fn accepts(&self, offered: &Platform) -> bool {
        self.fit(offered).is_some()
    }
}

impl<'de> Deserialize<'de> for Platform {
    /// Reads `os`, `architecture` and `variant` (of an index entry's `platform`, or of an image
    /// config), normalising aliases as [`FromStr`] does.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            os: String,
            architecture: String,
            #[serde(default)]
            variant: Option<String>,
        }
        let fields = Fields::deserialize(deserializer)?;
        Ok(Platform::new(
            &fields.os,
            &fields.architecture,
            fields
                .variant
                .as_deref()
                .filter(|variant| !variant.is_empty()),
        ))
    }
}

/// Chooses the entry for `platform` among an index's `manifests`; on failure, the error lists
/// what `image` offers.
pub(crate) fn select<'a>(
    manifests: &'a [Descriptor],
    platform: &Platform,
    image: &str,
) -> Result<&'a Descriptor> {
    let mut best: Option<(u8, &Descriptor)> = None;
    let mut available = Vec::new();
    for descriptor in manifests {
        let Some(offered) = &descriptor.platform else {
            continue;
        };
        // Attestation manifests (BuildKit provenance) are tagged unknown/unknown.
        if offered.os == "unknown" {
            continue;
        }
        available.push(offered.to_string());
        let Some(score) = platform.fit(offered) else {
            continue;
        };
        if best
            .as_ref()
            .is_none_or(|(best_score, _)| score > *best_score)
        {
            best = Some((score, descriptor));
        }
    }
    best.map(|(_, descriptor)| descriptor)
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

/// Fails unless an image config declares a platform `platform` accepts (a config that
/// declares none is accepted); `image` names the image in errors.
pub(crate) fn check_config(config: &[u8], platform: &Platform, image: &str) -> Result<()> {
    match Platform::from_config(config, image)? {
        Some(offered) if !platform.accepts(&offered) => Err(Error::PlatformNotFound {
            image: image.to_owned(),
            platform: platform.to_string(),
            available: offered.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::OCI_MANIFEST;

    fn platform(text: &str) -> Platform {
        text.parse().expect("valid platform")
    }

    fn index() -> Vec<Descriptor> {
        let entry = |digest: &str, platform: &str| {
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{}","size":1,"platform":{platform}}}"#,
                digest.repeat(64)
            )
        };
        let text = format!(
            "[{},{},{},{}]",
            entry("a", r#"{"os":"linux","architecture":"amd64"}"#),
            entry(
                "b",
                r#"{"os":"linux","architecture":"arm64","variant":"v8"}"#
            ),
            entry("c", r#"{"os":"linux","architecture":"arm","variant":"v6"}"#),
            entry("d", r#"{"os":"unknown","architecture":"unknown"}"#),
        );
        serde_json::from_str(&text).expect("descriptors")
    }

    fn check(requested: &str, expected_letter: &str) {
        let manifests = index();
        let choice = select(&manifests, &platform(requested), "base:1")
            .unwrap_or_else(|error| panic!("{requested}: {error}"));
        assert_eq!(
            choice.digest,
            format!("sha256:{}", expected_letter.repeat(64)),
            "{requested}"
        );
    }

    #[test]
    fn parses_and_displays_platforms() {
        assert_eq!(Platform::default().to_string(), "linux/amd64");
        assert_eq!(platform("linux/arm64/v8").to_string(), "linux/arm64/v8");
        assert_eq!(platform("linux/x86_64"), Platform::default());
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            let error = bad.parse::<Platform>().expect_err(bad);
            assert!(matches!(error, Error::InvalidPlatform { .. }), "{error}");
        }
    }

    #[test]
    fn selects_by_os_architecture_and_variant() {
        check("linux/amd64", "a");
        check("linux/arm64", "b");
        check("linux/arm64/v8", "b");
        check("linux/arm/v6", "c");
    }

    #[test]
    fn missing_platform_lists_what_is_available() {
        let manifests = index();
        let error = select(&manifests, &platform("linux/arm/v7"), "base:1").expect_err("no arm/v7");
        let message = error.to_string();
        assert!(message.contains("linux/arm/v7"), "{message}");
        assert!(
            message.contains("linux/amd64, linux/arm64/v8, linux/arm/v6"),
            "{message}"
        );
        assert!(!message.contains("unknown"), "{message}");
        let error =
            select(&manifests, &platform("windows/amd64"), "base:1").expect_err("no windows");
        assert!(matches!(error, Error::PlatformNotFound { .. }));
    }

    #[test]
    fn single_image_platform_check_accepts_implied_variants() {
        let config = br#"{"os":"linux","architecture":"arm64","rootfs":{}}"#;
        assert!(check_config(config, &platform("linux/arm64"), "img").is_ok());
        let error = check_config(config, &Platform::default(), "img").expect_err("amd64");
        assert!(error.to_string().contains("linux/arm64"), "{error}");
        assert!(check_config(b"{}", &Platform::default(), "img").is_ok());
    }
}
