//! Image references: [`ImageRef`], a parsed `registry/repository[:tag][@digest]` with Docker Hub
//! normalisation, and [`Registry`], the repository a location's images are pushed to, kept as
//! written. Both follow the one grammar in `grammar.rs`; no network code lives here.

mod grammar;
mod registry;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use grammar::{HostProblem, PathProblem, split_registry};
pub use registry::{InvalidRegistry, Registry, RegistryProblem};

use grammar::{NAME_MAX, check_digest, check_host, check_path, tag_ok};

/// A parsed image reference such as `127.0.0.1:5000/team/app:v1` or `ghcr.io/a/b@sha256:…`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// An image reference that does not follow the grammar, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidImageRef {
    reference: String,
    problem: ImageRefProblem,
}

/// What is wrong with an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageRefProblem {
    /// There is no repository name.
    Empty,
    /// The name is longer than the grammar allows.
    TooLong {
        /// Its length in bytes.
        length: usize,
    },
    /// The registry host is not `host[:port]`.
    Host {
        /// The host as written.
        host: String,
        /// What is wrong with it.
        problem: HostProblem,
    },
    /// The repository path breaks the grammar.
    Path(PathProblem),
    /// The tag is not 1 to 128 of `A-Za-z0-9_.-`, not starting with `.` or `-`.
    Tag {
        /// The tag as written.
        tag: String,
    },
    /// The digest is not `algorithm:encoded`.
    Digest {
        /// The digest as written.
        digest: String,
        /// Why, as a clause: `has no algorithm`.
        why: &'static str,
    },
}

impl ImageRef {
    /// Parses a reference; a missing registry means Docker Hub, a missing tag and digest
    /// `latest`.
    ///
    /// Follows the distribution reference grammar, `[host[:port]/]path[:tag][@digest]`: the
    /// first `/`-separated component is the registry as [`split_registry`] says; path
    /// components are lowercase letters and digits joined by `.`, `_`, `__` or dashes.
    ///
    /// ```
    /// use dagster_deploy_types::ImageRef;
    ///
    /// let image = ImageRef::parse("127.0.0.1:5000/team/app:v1").unwrap();
    /// assert_eq!((image.registry(), image.repository(), image.tag()), ("127.0.0.1:5000", "team/app", Some("v1")));
    /// assert_eq!(ImageRef::parse("alpine").unwrap().to_string(), "docker.io/library/alpine:latest");
    /// assert!(ImageRef::parse("ghcr.io/Acme/app").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, InvalidImageRef> {
        parse_reference(text).map_err(|problem| InvalidImageRef {
            reference: text.to_owned(),
            problem,
        })
    }

    /// Checks a tag against the distribution spec: 1 to 128 characters of `[A-Za-z0-9_.-]`,
    /// the first not `.` or `-`. The error is a sentence naming the tag.
    pub fn validate_tag(tag: &str) -> Result<(), String> {
        if tag_ok(tag) {
            Ok(())
        } else {
            Err(format!("{tag:?} is not a valid image tag"))
        }
    }

    /// Checks a digest against the OCI image spec: `algorithm:encoded`, where `sha256` and
    /// `sha512` are lowercase hex of their exact length. Digests come from manifests and
    /// indexes written by others and end up in URLs and file names, so each one is checked.
    /// The error is a sentence naming the digest.
    pub fn validate_digest(digest: &str) -> Result<(), String> {
        check_digest(digest).map_err(|why| digest_reason(digest, why))
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

    /// The same repository, addressed by `digest` instead of a tag; the digest is checked
    /// first (see [`ImageRef::validate_digest`]).
    pub fn with_digest(&self, digest: &str) -> Result<Self, InvalidImageRef> {
        check_digest(digest).map_err(|why| {
            self.invalid_part(ImageRefProblem::Digest {
                digest: digest.to_owned(),
                why,
            })
        })?;
        Ok(Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_owned()),
        })
    }

    /// The same repository, addressed by `tag`; the tag is checked first (see
    /// [`ImageRef::validate_tag`]).
    pub fn with_tag(&self, tag: &str) -> Result<Self, InvalidImageRef> {
        if !tag_ok(tag) {
            return Err(self.invalid_part(ImageRefProblem::Tag {
                tag: tag.to_owned(),
            }));
        }
        Ok(Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    fn invalid_part(&self, problem: ImageRefProblem) -> InvalidImageRef {
        InvalidImageRef {
            reference: format!("{}/{}", self.registry, self.repository),
            problem,
        }
    }

    /// The host the distribution API is served from (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" || self.registry == "index.docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// What the manifest endpoint is addressed by: the digest if present, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

/// Parses `text` into its parts, or says what is wrong with it.
fn parse_reference(text: &str) -> Result<ImageRef, ImageRefProblem> {
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => {
            check_digest(digest).map_err(|why| ImageRefProblem::Digest {
                digest: digest.to_owned(),
                why,
            })?;
            (rest, Some(digest.to_owned()))
        }
        None => (text, None),
    };
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            let tag = &rest[colon + 1..];
            if !tag_ok(tag) {
                return Err(ImageRefProblem::Tag {
                    tag: tag.to_owned(),
                });
            }
            (&rest[..colon], Some(tag.to_owned()))
        }
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(ImageRefProblem::Empty);
    }
    if name.len() > NAME_MAX {
        return Err(ImageRefProblem::TooLong { length: name.len() });
    }
    let (registry, path) = match split_registry(name) {
        (Some(host), path) => {
            check_host(host).map_err(|problem| ImageRefProblem::Host {
                host: host.to_owned(),
                problem,
            })?;
            (host, path)
        }
        (None, path) => ("docker.io", path),
    };
    check_path(path).map_err(ImageRefProblem::Path)?;
    let registry = if registry == "index.docker.io" {
        "docker.io"
    } else {
        registry
    };
    let repository = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    let tag = if tag.is_none() && digest.is_none() {
        Some("latest".to_owned())
    } else {
        tag
    };
    Ok(ImageRef {
        registry: registry.to_owned(),
        repository,
        tag,
        digest,
    })
}

fn digest_reason(digest: &str, why: &str) -> String {
    format!("digest {digest:?} {why}; write it as sha256: followed by 64 lowercase hex digits")
}

impl InvalidImageRef {
    /// The text that was given (for [`ImageRef::with_tag`] and [`ImageRef::with_digest`], the
    /// repository the part was meant to address).
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &ImageRefProblem {
        &self.problem
    }

    /// Why the reference was rejected, in one sentence that says what a valid one looks like.
    pub fn reason(&self) -> String {
        match &self.problem {
            ImageRefProblem::Empty => {
                "the repository name is empty; write e.g. registry.example.com/team/app:v1"
                    .to_owned()
            }
            ImageRefProblem::TooLong { length } => {
                format!("the name is {length} characters long; at most {NAME_MAX} are allowed")
            }
            ImageRefProblem::Host { host, .. } => format!(
                "registry {host:?} is not a valid host[:port]; write e.g. registry.example.com:5000"
            ),
            ImageRefProblem::Path(problem) => {
                let shown = match problem.component() {
                    None => "an empty path component".to_owned(),
                    Some(component) => format!("path component {component:?}"),
                };
                format!(
                    "{shown} is not allowed: each `/`-separated part of the repository must be \
                     lowercase letters and digits joined by '.', '_', '__' or '-'"
                )
            }
            ImageRefProblem::Tag { tag } => format!(
                "{tag:?} is not a valid image tag: a tag is 1 to 128 of A-Z a-z 0-9 _ . -, not starting with . or -"
            ),
            ImageRefProblem::Digest { digest, why } => digest_reason(digest, why),
        }
    }
}

impl fmt::Display for InvalidImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid image reference `{}`: {}",
            self.reference,
            self.reason()
        )
    }
}

impl std::error::Error for InvalidImageRef {}

impl FromStr for ImageRef {
    type Err = InvalidImageRef;

    fn from_str(text: &str) -> Result<Self, InvalidImageRef> {
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
