//! [`Registry`]: the image repository a location's images are pushed to (the `registry:` of
//! `dagster_cloud.yaml` and `build.yaml`), a reference without tag or digest, kept as written
//! so that `<registry>:<tag>` is the image name the user expects.

use std::fmt;

use super::grammar::{HostProblem, NAME_MAX, PathProblem, check_host, check_path, split_registry};

/// An OCI image repository reference without tag or digest, e.g. `ghcr.io/org/img` or
/// `123456789012.dkr.ecr.us-east-1.amazonaws.com/repo`. The image tag is appended with `:`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Registry(String);

/// A registry that is not a repository reference, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRegistry {
    registry: String,
    problem: RegistryProblem,
}

/// What is wrong with a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryProblem {
    /// It is empty.
    Empty,
    /// It is longer than the grammar allows.
    TooLong {
        /// Its length in bytes.
        bytes: usize,
    },
    /// It starts with a URL scheme (`https://`).
    Scheme {
        /// The scheme, without `://`.
        scheme: String,
    },
    /// It includes a digest (`@sha256:…`).
    Digest {
        /// The digest, without `@`.
        digest: String,
    },
    /// It includes a tag (`:latest`).
    Tag {
        /// The tag, without `:`.
        tag: String,
    },
    /// Its registry host is not `host[:port]`.
    Host {
        /// The host as written.
        host: String,
        /// What is wrong with it.
        problem: HostProblem,
    },
    /// Its repository path breaks the grammar.
    Path(PathProblem),
}

impl Registry {
    /// Checks a repository reference.
    ///
    /// ```
    /// use dagster_deploy_types::Registry;
    ///
    /// assert_eq!(Registry::new("ghcr.io/acme/app").unwrap().host(), "ghcr.io");
    /// let error = Registry::new("ghcr.io/acme/app:latest").unwrap_err();
    /// assert_eq!(error.to_string(), "the registry `ghcr.io/acme/app:latest` includes a tag (`:latest`)");
    /// ```
    pub fn new(reference: &str) -> Result<Self, InvalidRegistry> {
        check(reference).map_err(|problem| InvalidRegistry {
            registry: reference.to_owned(),
            problem,
        })?;
        Ok(Self(reference.to_owned()))
    }

    /// The repository reference as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The registry host (and port) as written, `docker.io` when the reference names none.
    pub fn host(&self) -> &str {
        split_registry(&self.0).0.unwrap_or("docker.io")
    }
}

fn check(reference: &str) -> Result<(), RegistryProblem> {
    if reference.is_empty() {
        return Err(RegistryProblem::Empty);
    }
    if reference.len() > NAME_MAX {
        return Err(RegistryProblem::TooLong {
            bytes: reference.len(),
        });
    }
    if let Some((scheme, _)) = reference.split_once("://") {
        return Err(RegistryProblem::Scheme {
            scheme: scheme.to_owned(),
        });
    }
    if let Some((_, digest)) = reference.split_once('@') {
        return Err(RegistryProblem::Digest {
            digest: digest.to_owned(),
        });
    }
    let (host, path) = split_registry(reference);
    if let Some(host) = host {
        check_host(host).map_err(|problem| RegistryProblem::Host {
            host: host.to_owned(),
            problem,
        })?;
    }
    if let Some((_, tag)) = path.rsplit_once(':') {
        return Err(RegistryProblem::Tag {
            tag: tag.to_owned(),
        });
    }
    check_path(path).map_err(RegistryProblem::Path)
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Registry {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl InvalidRegistry {
    /// The rejected text.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &RegistryProblem {
        &self.problem
    }

    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self.problem {
            RegistryProblem::Scheme { .. } => {
                "remove the scheme: a repository is written as `host/path`, e.g. `ghcr.io/org/image`"
            }
            RegistryProblem::Digest { .. } => {
                "remove the `@...` part: the image digest is decided at build time"
            }
            RegistryProblem::Tag { .. } => {
                "remove the `:tag` part: the tag is appended at build time"
            }
            _ => {
                "write a repository without tag or digest, e.g. `ghcr.io/org/image` or `registry.example.com:5000/team/app`"
            }
        }
    }
}

impl fmt::Display for InvalidRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = self.registry.escape_debug();
        match &self.problem {
            RegistryProblem::Empty => f.write_str("the registry is empty"),
            RegistryProblem::TooLong { bytes } => write!(
                f,
                "the registry is {bytes} bytes long, more than the limit of {NAME_MAX}"
            ),
            RegistryProblem::Scheme { scheme } => write!(
                f,
                "the registry `{registry}` starts with a URL scheme (`{}://`)",
                scheme.escape_debug()
            ),
            RegistryProblem::Digest { digest } => write!(
                f,
                "the registry `{registry}` includes a digest (`@{}`)",
                digest.escape_debug()
            ),
            RegistryProblem::Tag { tag } => write!(
                f,
                "the registry `{registry}` includes a tag (`:{}`)",
                tag.escape_debug()
            ),
            RegistryProblem::Host { host, problem } => match problem {
                HostProblem::BadName { name } => write!(
                    f,
                    "the registry host `{}` is not a valid host name",
                    name.escape_debug()
                ),
                HostProblem::BadPort { port } => write!(
                    f,
                    "the registry port `{}` is not a number from 0 to 65535",
                    port.escape_debug()
                ),
                problem => write!(f, "the registry host `{}` {problem}", host.escape_debug()),
            },
            RegistryProblem::Path(problem) => write!(
                f,
                "the registry `{registry}` is not a valid repository: {problem}"
            ),
        }
    }
}

impl std::error::Error for InvalidRegistry {}
