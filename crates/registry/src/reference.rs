//! `ImageRef`: a parsed image reference (`registry/repository[:tag][@digest]`) with Docker Hub
//! normalisation. Parsing is delegated to `oci-client`; no network code lives here.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A parsed image reference such as `127.0.0.1:5000/team/app:v1` or `ghcr.io/a/b@sha256:…`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference; a missing registry means Docker Hub, a missing tag and digest `latest`.
    pub fn parse(text: &str) -> Result<Self> {
        let parsed =
            oci_client::Reference::try_from(text).map_err(|error| Error::InvalidReference {
                reference: text.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            registry: parsed.registry().to_owned(),
            repository: parsed.repository().to_owned(),
            tag: parsed.tag().map(str::to_owned),
            digest: parsed.digest().map(str::to_owned),
        })
    }

    /// Checks a tag against the distribution spec: 1 to 128 characters of `[A-Za-z0-9_.-]`,
    /// the first not `.` or `-`.
    pub fn validate_tag(tag: &str) -> std::result::Result<(), String> {
        let mut chars = tag.chars();
        let valid_first = chars
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_');
        let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if tag.len() <= 128 && valid_first && valid_rest {
            Ok(())
        } else {
            Err(format!("{tag:?} is not a valid image tag"))
        }
    }

    /// The registry host (and port) as written, `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `team/app` or `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any (`sha256:…`).
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same repository, addressed by `digest` instead of a tag.
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_owned()),
        }
    }

    /// The same repository, addressed by `tag`.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        }
    }

    /// The host the distribution API is served from (`registry-1.docker.io` for Docker Hub).
    pub(crate) fn api_host(&self) -> &str {
        if self.registry == "docker.io" || self.registry == "index.docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// What the manifest endpoint is addressed by: the digest if present, else the tag.
    pub(crate) fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(formatter, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(formatter, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ImageRef({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_tag_accepts_spec_tags_and_rejects_the_rest() {
        for good in ["v1", "4f2a9c1-42", "_x", "A.b-c_d", &"a".repeat(128)] {
            assert_eq!(ImageRef::validate_tag(good), Ok(()), "{good}");
        }
        for bad in ["", ".v1", "-v1", "v1:2", "v/1", "ü", &"a".repeat(129)] {
            assert!(ImageRef::validate_tag(bad).is_err(), "{bad}");
        }
    }

    fn check(
        input: &str,
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) {
        let image = ImageRef::parse(input).unwrap();
        assert_eq!(
            (
                image.registry(),
                image.repository(),
                image.tag(),
                image.digest()
            ),
            (registry, repository, tag, digest),
            "{input}"
        );
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parse_splits_registry_repository_tag_and_digest() {
        check(
            "127.0.0.1:5000/team/app:v1",
            "127.0.0.1:5000",
            "team/app",
            Some("v1"),
            None,
        );
        check(
            &format!("ghcr.io/a/b@{DIGEST}"),
            "ghcr.io",
            "a/b",
            None,
            Some(DIGEST),
        );
        check(
            "localhost:5000/app",
            "localhost:5000",
            "app",
            Some("latest"),
            None,
        );
    }

    #[test]
    fn parse_normalises_docker_hub_names() {
        check(
            "alpine",
            "docker.io",
            "library/alpine",
            Some("latest"),
            None,
        );
        check("acme/app:1", "docker.io", "acme/app", Some("1"), None);
        assert_eq!(
            ImageRef::parse("alpine").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn parse_rejects_uppercase_with_the_reference_in_the_message() {
        let error = ImageRef::parse("127.0.0.1:5000/Team/App")
            .unwrap_err()
            .to_string();
        assert!(error.contains("127.0.0.1:5000/Team/App"), "{error}");
    }

    #[test]
    fn display_round_trips() {
        let text = format!("127.0.0.1:5000/team/app:v1@{DIGEST}");
        assert_eq!(ImageRef::parse(&text).unwrap().to_string(), text);
        let by_digest = ImageRef::parse("ghcr.io/a/b:v1")
            .unwrap()
            .with_digest(DIGEST);
        assert_eq!(by_digest.manifest_reference(), DIGEST);
    }
}
