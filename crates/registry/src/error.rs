//! The crate's one error type, its [`ErrorKind`] classes and its `Result` alias; no I/O lives
//! here.
//!
//! Each message is plain: it says what failed and names the thing (file, image, URL, digest),
//! and never repeats its [`source`](std::error::Error::source), which callers print themselves.
//! What the reader could do about it is a separate [`Error::help`]. Neither names a flag, an
//! environment variable or a command of any program that embeds this crate: that advice belongs
//! to the embedding program, which can branch on [`Error::kind`] and the predicates.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// What kind of failure an [`Error`] is, for callers that branch on it (an exit code, a retry,
/// a different hint) without matching every variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A value the caller passed is malformed: an image reference, a source, a tag, a platform,
    /// a working directory, a timestamp.
    InvalidInput,
    /// A local file could not be read or written.
    LocalIo,
    /// A local image or the build directory is not usable as it is: a malformed layout or
    /// archive, a `.dockerignore` line, a file a layer cannot hold.
    InvalidContent,
    /// The image (or the platform asked for) is not where it was looked for.
    NotFound,
    /// Content does not hash to the digest that names it.
    DigestMismatch,
    /// The registry refused the credentials, or they could not be obtained.
    Authentication,
    /// A request would have travelled over plain HTTP to a host that may only get HTTPS.
    InsecureTransport,
    /// The registry could not be reached, the connection broke, or a transfer stalled.
    Network,
    /// The registry answered, but not as the distribution API promises, or with an error status.
    Registry,
    /// The HTTP client could not be set up, or a task of this crate failed.
    Internal,
}

/// Everything that can go wrong while talking to a registry, reading an image source or
/// building a code image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An image reference could not be parsed.
    #[error("invalid image reference `{reference}`: {reason}")]
    InvalidReference {
        /// The text that was given.
        reference: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An image source string could not be parsed.
    #[error("invalid image source `{source_text}`: {reason}")]
    InvalidSource {
        /// The text that was given.
        source_text: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The tag to push is not a valid image tag.
    #[error("invalid image tag {tag:?}: {reason}")]
    InvalidTag {
        /// The rejected tag.
        tag: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A platform string is not `os/arch[/variant]`.
    #[error("invalid platform `{platform}`")]
    InvalidPlatform {
        /// The value given.
        platform: String,
    },
    /// The working directory is not an absolute path without `..`.
    #[error("invalid working directory `{workdir}`")]
    InvalidWorkdir {
        /// The value given.
        workdir: String,
    },
    /// The timestamp for files and history (`source_date_epoch`) is negative.
    #[error("invalid source date epoch {value}: it is negative")]
    InvalidSourceDateEpoch {
        /// The value given.
        value: i64,
    },
    /// A local file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A local image (layout or archive) is malformed.
    #[error("invalid image at {path}: {reason}")]
    InvalidImage {
        /// The layout directory, archive or file inside it.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// An image (a local source or a base image) has nothing for the requested platform.
    #[error("{image} has no image for platform {platform}; it offers: {available}")]
    PlatformNotFound {
        /// The image source or base image.
        image: String,
        /// The platform asked for.
        platform: String,
        /// What the image offers, comma-separated (`none` if nothing).
        available: String,
    },
    /// An image index in a local source names child manifests the source does not hold (what
    /// `docker save` writes for a multi-platform image it has only partly).
    #[error("the image index in {source_text} lists {missing}, which the source does not hold")]
    IncompleteIndex {
        /// The image source.
        source_text: String,
        /// The missing children, as `platform (digest)`, comma-separated.
        missing: String,
    },
    /// A manifest, index, image config or descriptor is malformed.
    #[error("invalid manifest {location}: {reason}")]
    InvalidManifest {
        /// Where the document came from (file, image or URL, with its digest when known).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Content did not hash to the digest that names it.
    #[error("digest mismatch for {location}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Where the content came from.
        location: String,
        /// The digest the content should have.
        expected: String,
        /// The digest it actually has.
        actual: String,
    },
    /// A blob or document is larger than the caller allowed.
    #[error("{digest} at {url} is larger than the {max_size} bytes allowed")]
    BlobTooLarge {
        /// The blob digest (or what was read).
        digest: String,
        /// Where it was fetched from.
        url: String,
        /// The limit.
        max_size: u64,
    },
    /// The registry refused our credentials, or asked for some we do not have.
    #[error("registry {registry} refused access ({status}) to {url}: {detail}")]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// The repository the request was for.
        repository: String,
        /// The URL that was refused, without its query.
        url: String,
        /// HTTP status.
        status: u16,
        /// Explanation (never contains secrets).
        detail: String,
    },
    /// The registry answered with an unexpected HTTP status.
    #[error("registry request {method} {url} failed with HTTP {status}: {body}")]
    Status {
        /// Registry host.
        registry: String,
        /// The repository the request was for.
        repository: String,
        /// HTTP method.
        method: String,
        /// URL without its query.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The connection to a registry (or its token service) failed.
    #[error("cannot reach {url}")]
    Transport {
        /// Registry host the request was made for.
        registry: String,
        /// URL that was being requested, without its query.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// A registry response was not what the distribution protocol promises.
    #[error("unexpected response from {url}: {reason}")]
    Protocol {
        /// The URL that answered, without its query.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A request (which may carry credentials, or a token fetched with them) would travel
    /// unencrypted to a remote host: only loopback and listed insecure hosts get plain HTTP.
    #[error("refusing to talk to {host} over {scheme} for registry {registry} ({url})")]
    InsecureTransport {
        /// The registry the request is for.
        registry: String,
        /// The host (and port) it would have been sent to.
        host: String,
        /// The URL scheme that was refused (`http`, or something other than http/https).
        scheme: String,
        /// The URL without its query.
        url: String,
    },
    /// A streamed blob transfer moved no byte for longer than the request timeout.
    #[error("the transfer to {url} stalled: no data moved for {seconds} s")]
    Stalled {
        /// The URL, without its query.
        url: String,
        /// The request timeout that passed.
        seconds: u64,
    },
    /// Docker's `config.json` or a credential helper failed.
    #[error("cannot get credentials for {registry} from {origin}: {reason}")]
    Credentials {
        /// Registry host.
        registry: String,
        /// Config file path or helper program name.
        origin: String,
        /// What went wrong (never contains secrets).
        reason: String,
    },
    /// The HTTP client could not be built from the transport settings.
    #[error("cannot create the HTTP client")]
    ClientSetup {
        /// What the transport settings got wrong.
        source: dagster_deploy_http_policy::Error,
    },
    /// A `.dockerignore` line could not be parsed.
    #[error("{path}:{line}: {message}")]
    DockerIgnore {
        /// The `.dockerignore` file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the pattern.
        message: String,
    },
    /// A file or directory of the build context could not be read.
    #[error("cannot read {path} in the build context")]
    ReadContext {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A path in the build context is not valid UTF-8, so `.dockerignore` cannot be applied.
    #[error("file name {path:?} is not valid UTF-8")]
    NonUtf8Path {
        /// The offending path.
        path: PathBuf,
    },
    /// The build context holds a socket, FIFO or device, which a layer cannot carry.
    #[error("{path} is not a regular file, directory or symlink")]
    UnsupportedFileType {
        /// The offending path.
        path: PathBuf,
    },
    /// The build context changed while the layer was being written: its content differs from
    /// what was hashed a moment before, so the image would not match its content key.
    #[error("the build context {path} changed while the code layer was being written")]
    ContextChanged {
        /// The build context directory.
        path: PathBuf,
    },
    /// The temporary layer file could not be written.
    #[error("cannot write the code layer in {path}")]
    WriteLayer {
        /// The temporary directory used.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A parent of the working directory is a symlink or a file in the base image, so a
    /// directory entry for it would replace it.
    #[error("{path} is {kind} in base image {image}, so the code cannot go below it")]
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
    #[error("python_file `{file}` is not in the build directory {context}")]
    PythonFileMissing {
        /// The `python_file` value.
        file: String,
        /// The build directory.
        context: PathBuf,
    },
    /// The base image could not be read or used.
    #[error("cannot use base image {image}")]
    BaseImage {
        /// The base image.
        image: String,
        /// What went wrong.
        source: Box<Error>,
    },
    /// The built image could not be pushed to the target repository.
    #[error("cannot push the code image to {target}")]
    Push {
        /// The target repository.
        target: String,
        /// What went wrong.
        source: Box<Error>,
    },
    /// A background task of this crate panicked or was cancelled.
    #[error("a background task failed: {reason}")]
    Task {
        /// The join error, as text.
        reason: String,
    },
}

impl Error {
    /// The class of this failure; a wrapped failure (base image, push) has its cause's class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidReference { .. }
            | Error::InvalidSource { .. }
            | Error::InvalidTag { .. }
            | Error::InvalidPlatform { .. }
            | Error::InvalidWorkdir { .. }
            | Error::InvalidSourceDateEpoch { .. } => ErrorKind::InvalidInput,
            Error::Io { .. }
            | Error::ReadContext { .. }
            | Error::WriteLayer { .. }
            | Error::ContextChanged { .. } => ErrorKind::LocalIo,
            Error::InvalidImage { .. }
            | Error::IncompleteIndex { .. }
            | Error::InvalidManifest { .. }
            | Error::BlobTooLarge { .. }
            | Error::DockerIgnore { .. }
            | Error::NonUtf8Path { .. }
            | Error::UnsupportedFileType { .. }
            | Error::WorkdirParentNotDirectory { .. }
            | Error::PythonFileMissing { .. } => ErrorKind::InvalidContent,
            Error::PlatformNotFound { .. } => ErrorKind::NotFound,
            Error::Status { status: 404, .. } => ErrorKind::NotFound,
            Error::DigestMismatch { .. } => ErrorKind::DigestMismatch,
            Error::Unauthorized { .. } | Error::Credentials { .. } => ErrorKind::Authentication,
            Error::InsecureTransport { .. } => ErrorKind::InsecureTransport,
            Error::Transport { .. } | Error::Stalled { .. } => ErrorKind::Network,
            Error::Status { .. } | Error::Protocol { .. } => ErrorKind::Registry,
            Error::ClientSetup { source } if source.is_invalid_setting() => ErrorKind::InvalidInput,
            Error::ClientSetup { .. } | Error::Task { .. } => ErrorKind::Internal,
            Error::BaseImage { source, .. } | Error::Push { source, .. } => source.kind(),
        }
    }

    /// What the reader could do about it, in words that fit any program embedding this crate;
    /// `None` when the message says it all.
    pub fn help(&self) -> Option<Cow<'static, str>> {
        let text: Cow<'static, str> = match self {
            Error::InvalidReference { .. } => {
                "an image reference looks like `registry.example/team/app:v1` or `127.0.0.1:5000/app@sha256:<hex>`".into()
            }
            Error::InvalidSource { .. } => {
                "an image source is `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE` or a registry reference".into()
            }
            Error::InvalidTag { .. } => {
                "a tag is 1 to 128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`".into()
            }
            Error::InvalidPlatform { .. } => {
                "a platform is `os/arch[/variant]`, such as `linux/amd64` or `linux/arm64/v8`".into()
            }
            Error::InvalidWorkdir { .. } => {
                "the working directory must be an absolute path without `..`, such as `/app`".into()
            }
            Error::InvalidSourceDateEpoch { .. } => {
                "the timestamp is a number of seconds since 1970-01-01, 0 or more".into()
            }
            Error::PlatformNotFound { .. } => {
                "build or push one of the platforms the image offers, or use an image built for this platform".into()
            }
            Error::IncompleteIndex { .. } => {
                "push one platform of it, one the source holds".into()
            }
            Error::DigestMismatch { .. } => "the content is corrupt or was modified".into(),
            Error::Unauthorized { registry, .. } => format!(
                "check the login for {registry}: the username and password given to the client, or Docker's config.json and its credential helpers"
            )
            .into(),
            Error::Credentials { .. } => {
                "fix the credential helper or Docker's config.json, or give the client the login explicitly".into()
            }
            Error::InsecureTransport { host, .. } => format!(
                "credentials and images travel only over https, or plain http to loopback; only if {host} is on a trusted network, list it among the client's insecure registries"
            )
            .into(),
            Error::DockerIgnore { .. } => "fix or remove this line of .dockerignore".into(),
            Error::NonUtf8Path { .. } => "rename it, or leave it out with .dockerignore".into(),
            Error::UnsupportedFileType { .. } => "leave it out with .dockerignore".into(),
            Error::ContextChanged { .. } => {
                "build again once nothing writes to the build directory".into()
            }
            Error::WorkdirParentNotDirectory { .. } => {
                "choose a working directory whose parents are directories in the base image (the path the symlink points to, or /app)".into()
            }
            Error::PythonFileMissing { .. } => {
                "relative paths are relative to the code directory in the image, which holds the build directory's files: fix python_file or the build directory, or stop .dockerignore from leaving it out".into()
            }
            Error::BaseImage { source, .. } | Error::Push { source, .. } => return source.help(),
            Error::ClientSetup { source } => return source.help().map(Cow::Borrowed),
            _ => return None,
        };
        Some(text)
    }

    /// Whether retrying the same (idempotent) request may succeed, as the shared retry policy
    /// says: dropped connections, stalls, and HTTP 429, 500, 502, 503 and 504.
    pub fn is_retryable(&self) -> bool {
        use dagster_deploy_http_policy::{Failure, Idempotency, RetryPolicy};
        match self {
            Error::Transport { .. } | Error::Stalled { .. } => true,
            Error::Status { status, .. } => {
                RetryPolicy::is_retryable(Failure::Status(*status), Idempotency::Idempotent)
            }
            Error::BaseImage { source, .. } | Error::Push { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// Whether the registry refused the credentials (or their absence).
    pub fn is_unauthorized(&self) -> bool {
        match self {
            Error::Unauthorized { .. } => true,
            Error::BaseImage { source, .. } | Error::Push { source, .. } => {
                source.is_unauthorized()
            }
            _ => false,
        }
    }

    /// Whether this is an authentication failure: the registry refused the credentials, or
    /// they could not be obtained (Docker's config.json or a credential helper failed).
    pub fn is_authentication(&self) -> bool {
        self.kind() == ErrorKind::Authentication
    }

    /// Whether a request or transfer ran out of time: the request timeout passed, or a
    /// streamed transfer stalled.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Stalled { .. } => true,
            Error::Transport { source, .. } => source.is_timeout(),
            Error::BaseImage { source, .. } | Error::Push { source, .. } => source.is_timeout(),
            _ => false,
        }
    }

    /// Whether the image, or the platform asked for, does not exist where it was looked for.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// The failure this one wraps with context (a base image, a push target), or itself.
    fn innermost(&self) -> &Error {
        match self {
            Error::BaseImage { source, .. } | Error::Push { source, .. } => source.innermost(),
            other => other,
        }
    }

    /// The registry host the failing request was for, when a request failed.
    pub fn registry(&self) -> Option<&str> {
        match self.innermost() {
            Error::Unauthorized { registry, .. }
            | Error::Status { registry, .. }
            | Error::Transport { registry, .. }
            | Error::InsecureTransport { registry, .. }
            | Error::Credentials { registry, .. } => Some(registry),
            _ => None,
        }
    }

    /// The repository the failing request was for, when a request failed.
    pub fn repository(&self) -> Option<&str> {
        match self.innermost() {
            Error::Unauthorized { repository, .. } | Error::Status { repository, .. } => {
                Some(repository)
            }
            _ => None,
        }
    }

    /// The digest of the content concerned: the expected one of a mismatch, or the blob that
    /// was too large.
    pub fn digest(&self) -> Option<&str> {
        match self.innermost() {
            Error::DigestMismatch { expected, .. } => Some(expected),
            Error::BlobTooLarge { digest, .. } => Some(digest),
            _ => None,
        }
    }

    /// The HTTP status the registry answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self.innermost() {
            Error::Unauthorized { status, .. } | Error::Status { status, .. } => Some(*status),
            Error::Transport { source, .. } => source.status().map(|status| status.as_u16()),
            _ => None,
        }
    }

    /// The URL concerned (without query, user name or password), when a request failed.
    pub fn url(&self) -> Option<&str> {
        match self.innermost() {
            Error::Unauthorized { url, .. }
            | Error::Status { url, .. }
            | Error::Transport { url, .. }
            | Error::Protocol { url, .. }
            | Error::InsecureTransport { url, .. }
            | Error::Stalled { url, .. }
            | Error::BlobTooLarge { url, .. } => Some(url),
            _ => None,
        }
    }

    /// The local file or directory concerned, when one is.
    pub fn path(&self) -> Option<&Path> {
        match self.innermost() {
            Error::Io { path, .. }
            | Error::InvalidImage { path, .. }
            | Error::DockerIgnore { path, .. }
            | Error::ReadContext { path, .. }
            | Error::NonUtf8Path { path }
            | Error::UnsupportedFileType { path }
            | Error::WriteLayer { path, .. } => Some(path),
            Error::PythonFileMissing { context, .. } => Some(context),
            _ => None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<dagster_deploy_types::InvalidImageRef> for Error {
    fn from(invalid: dagster_deploy_types::InvalidImageRef) -> Self {
        Error::InvalidReference {
            reference: invalid.reference().to_owned(),
            reason: invalid.reason(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn messages_never_repeat_their_source() {
        let io = Error::Io {
            path: "/layout/index.json".into(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied"),
        };
        let wrapped = Error::BaseImage {
            image: "reg.example/base:1".into(),
            source: Box::new(io),
        };
        let mut chain = vec![wrapped.to_string()];
        let mut source = wrapped.source();
        while let Some(cause) = source {
            chain.push(cause.to_string());
            source = cause.source();
        }
        assert_eq!(
            chain,
            [
                "cannot use base image reg.example/base:1",
                "cannot read /layout/index.json",
                "permission denied"
            ]
        );
    }

    #[test]
    fn wrapped_errors_answer_for_their_cause() {
        let refused = Error::Push {
            target: "reg.example/team/app".into(),
            source: Box::new(Error::Unauthorized {
                registry: "reg.example".into(),
                repository: "team/app".into(),
                url: "https://reg.example/v2/team/app/blobs/uploads/".into(),
                status: 401,
                detail: "no credentials found for reg.example".into(),
            }),
        };
        assert_eq!(refused.kind(), ErrorKind::Authentication);
        assert!(refused.is_unauthorized() && refused.is_authentication());
        assert!(!refused.is_retryable() && !refused.is_timeout());
        assert_eq!(refused.registry(), Some("reg.example"));
        assert_eq!(refused.repository(), Some("team/app"));
        assert_eq!(refused.status(), Some(401));
        assert!(
            refused
                .help()
                .is_some_and(|help| help.contains("reg.example"))
        );
    }

    #[test]
    fn no_message_or_help_gives_advice_about_a_command_line() {
        let errors = [
            Error::InsecureTransport {
                registry: "reg.example".into(),
                host: "reg.example".into(),
                scheme: "http".into(),
                url: "http://reg.example/v2/".into(),
            },
            Error::PlatformNotFound {
                image: "base:1".into(),
                platform: "linux/s390x".into(),
                available: "linux/amd64".into(),
            },
            Error::InvalidSourceDateEpoch { value: -1 },
            Error::WorkdirParentNotDirectory {
                path: "/var/run".into(),
                kind: "a symlink",
                image: "base:1".into(),
            },
        ];
        for error in errors {
            let text = format!("{error} {}", error.help().unwrap_or_default());
            for advice in ["--", "SOURCE_DATE_EPOCH", "docker login", "dagster-deploy"] {
                assert!(!text.contains(advice), "{advice} in {text}");
            }
        }
    }
}
