//! The builder's error type and `Result` alias; registry failures wrap the crate's [`crate::Error`].

use std::path::PathBuf;

/// Everything that can go wrong while building and pushing a code image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `.dockerignore` line could not be parsed.
    #[error("{path}:{line}: {message}; fix or remove this line of .dockerignore")]
    DockerIgnore {
        /// The `.dockerignore` file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the pattern.
        message: String,
    },
    /// A file or directory of the build context could not be read.
    #[error("cannot read {path} in the build context: {source}")]
    ReadContext {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A path in the build context is not valid UTF-8, so `.dockerignore` cannot be applied.
    #[error("file name {path:?} is not valid UTF-8; rename it")]
    NonUtf8Path {
        /// The offending path.
        path: PathBuf,
    },
    /// The build context holds a socket, FIFO or device, which a layer cannot carry.
    #[error("{path} is not a regular file, directory or symlink; add it to .dockerignore")]
    UnsupportedFileType {
        /// The offending path.
        path: PathBuf,
    },
    /// The temporary layer file could not be written.
    #[error("cannot write the code layer in {path}: {source}")]
    WriteLayer {
        /// The temporary directory used.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The tag to push is not a valid image tag.
    #[error("invalid image tag {tag:?}: {reason}")]
    InvalidTag {
        /// The rejected tag.
        tag: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The working directory is not an absolute path without `..`.
    #[error("invalid working directory `{workdir}`: expected an absolute path such as `/app`")]
    InvalidWorkdir {
        /// The value given.
        workdir: String,
    },
    /// A parent of the working directory is a symlink or a file in the base image, so a
    /// directory entry for it would replace it.
    #[error(
        "{path} is {kind} in base image {image}, so the code cannot go below it; choose a --workdir whose parents are directories (the path a symlink points to, or /app)"
    )]
    WorkdirParentNotDirectory {
        /// The parent, absolute.
        path: String,
        /// What it is: `a symlink`, `a hard link` or `a file`.
        kind: &'static str,
        /// The base image.
        image: String,
    },
    /// A location's `python_file` is not in the build directory (or `.dockerignore` leaves it
    /// out), so the code server could not find it.
    #[error(
        "python_file `{file}` is not in the build directory {context} (relative paths are relative to the code directory in the image, which holds the build directory's files); fix python_file or build.directory, or stop .dockerignore from leaving it out"
    )]
    PythonFileMissing {
        /// The `python_file` value.
        file: String,
        /// The build directory.
        context: PathBuf,
    },
    /// A platform string is not `os/arch[/variant]`.
    #[error("invalid platform `{platform}`: expected `os/arch[/variant]`, e.g. `linux/amd64`")]
    InvalidPlatform {
        /// The value given.
        platform: String,
    },
    /// `SOURCE_DATE_EPOCH` is negative.
    #[error("invalid SOURCE_DATE_EPOCH `{value}`: expected a non-negative number of seconds")]
    InvalidSourceDateEpoch {
        /// The value given.
        value: i64,
    },
    /// The base image is multi-platform but has no manifest for the requested platform.
    #[error(
        "base image {image} has no manifest for platform {platform}; available: {available}; choose one with --platform"
    )]
    PlatformNotFound {
        /// The base image.
        image: String,
        /// The platform requested.
        platform: String,
        /// The platforms the index offers, comma-separated.
        available: String,
    },
    /// The base image is a single-platform image for another platform.
    #[error(
        "base image {image} is built for {actual}, not {platform}; pass --platform {actual} or use a base image for {platform}"
    )]
    PlatformMismatch {
        /// The base image.
        image: String,
        /// The platform requested.
        platform: String,
        /// The platform in the base image's config.
        actual: String,
    },
    /// The base image's manifest or config is not what the image spec describes.
    #[error("base image {image} is malformed: {reason}")]
    InvalidBaseImage {
        /// The base image (with the digest of the offending document when known).
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// The base image could not be read from its registry (missing, unauthorized, unreachable).
    #[error("cannot read base image {image}: {source}")]
    BaseImage {
        /// The base image.
        image: String,
        /// The registry error.
        source: crate::Error,
    },
    /// The built image could not be pushed to the target repository.
    #[error("cannot push the code image to {target}: {source}")]
    Push {
        /// The target repository.
        target: String,
        /// The registry error.
        source: crate::Error,
    },
    /// A background task panicked or was cancelled.
    #[error("the layer-building task failed: {reason}")]
    Task {
        /// The join error, as text.
        reason: String,
    },
}

impl Error {
    /// Whether this is an authentication failure: a registry refused the credentials, or they
    /// could not be obtained (Docker's config.json or a credential helper failed).
    pub fn is_authentication(&self) -> bool {
        match self {
            Error::BaseImage { source, .. } | Error::Push { source, .. } => {
                source.is_authentication()
            }
            _ => false,
        }
    }

    /// Whether the failure was the registry refusing our credentials.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            Error::BaseImage {
                source: crate::Error::Unauthorized { .. },
                ..
            } | Error::Push {
                source: crate::Error::Unauthorized { .. },
                ..
            }
        )
    }
}

/// The builder's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
