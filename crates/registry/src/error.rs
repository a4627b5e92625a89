//! The crate's one error type and its `Result` alias; no I/O lives here.

use std::path::PathBuf;

/// Everything that can go wrong while talking to a registry or reading an image source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An image reference could not be parsed.
    #[error(
        "invalid image reference `{reference}`: {reason}; expected e.g. `127.0.0.1:5000/team/app:v1`"
    )]
    InvalidReference {
        /// The text that was given.
        reference: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An image source string could not be parsed.
    #[error(
        "invalid image source `{source_text}`: {reason}; expected `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE` or a registry reference"
    )]
    InvalidSource {
        /// The text that was given.
        source_text: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A local file could not be read.
    #[error("cannot read {path}: {source}")]
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
    /// The source has no image for the requested platform.
    #[error("{source_text} has no image for platform {platform}; it offers: {available}")]
    PlatformNotInSource {
        /// The image source.
        source_text: String,
        /// The platform asked for.
        platform: String,
        /// What the source offers, comma-separated.
        available: String,
    },
    /// An image index in a local source names child manifests the source does not hold (what
    /// `docker save` writes for a multi-platform image it has only partly).
    #[error(
        "the image index in {source_text} lists {missing}, which the source does not hold; push one platform of it"
    )]
    IncompleteIndex {
        /// The image source.
        source_text: String,
        /// The missing children, as `platform (digest)`, comma-separated.
        missing: String,
    },
    /// A manifest or descriptor JSON document is malformed.
    #[error("invalid manifest {location}: {reason}")]
    InvalidManifest {
        /// Where the manifest came from (file or URL).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Content did not hash to the digest that names it.
    #[error(
        "digest mismatch for {location}: expected {expected}, got {actual}; the source is corrupt or was modified"
    )]
    DigestMismatch {
        /// Where the content came from.
        location: String,
        /// The digest the content should have.
        expected: String,
        /// The digest it actually has.
        actual: String,
    },
    /// The registry refused our credentials, or asked for some we do not have.
    #[error(
        "registry {registry} refused access ({status}) to {url}: {detail}; log in with `docker login {registry}` or pass a username and password"
    )]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// The URL that was refused.
        url: String,
        /// HTTP status.
        status: u16,
        /// Explanation (never contains secrets).
        detail: String,
    },
    /// The registry answered with an unexpected HTTP status.
    #[error("registry request {method} {url} failed with HTTP {status}: {body}")]
    Status {
        /// HTTP method.
        method: String,
        /// URL without query secrets.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The connection to a registry failed.
    #[error("cannot reach registry at {url}: {source}")]
    Transport {
        /// URL that was being requested.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// A registry response was not what the distribution protocol promises.
    #[error("unexpected response from {url}: {reason}")]
    Protocol {
        /// The URL that answered.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A request (which may carry credentials, or a token fetched with them) would travel
    /// unencrypted to a remote host: only loopback and listed insecure hosts get plain HTTP.
    #[error(
        "refusing to talk to {host} over {scheme} for registry {registry} ({url}): credentials and images travel only over https, or plain http to loopback; only if {host} is a trusted network, list `{host}` as an insecure registry (`insecure_registries`, `--insecure-registry`)"
    )]
    InsecureTransport {
        /// The registry the credentials are for.
        registry: String,
        /// The host (and port) they would have been sent to.
        host: String,
        /// The URL scheme that was refused (`http`, or something other than http/https).
        scheme: String,
        /// The URL without its query.
        url: String,
    },
    /// A streamed blob transfer moved no byte for longer than the request timeout.
    #[error("the transfer to {url} stalled: no data moved for {seconds} s")]
    Stalled {
        /// The upload URL, without its query.
        url: String,
        /// The request timeout that passed.
        seconds: u64,
    },
    /// A blob is larger than the caller allowed.
    #[error("blob {digest} at {url} is larger than the {max_size} bytes allowed")]
    BlobTooLarge {
        /// The blob digest.
        digest: String,
        /// Where it was fetched from.
        url: String,
        /// The limit.
        max_size: u64,
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
    /// The HTTP client could not be built.
    #[error("cannot create the HTTP client: {0}")]
    ClientSetup(reqwest::Error),
}

impl Error {
    /// Whether retrying the same (idempotent) request may succeed, as the shared retry policy
    /// says: dropped connections, stalls, and HTTP 429, 500, 502, 503 and 504.
    pub fn is_retryable(&self) -> bool {
        use dagster_deploy_http_policy::{Failure, Idempotency, RetryPolicy};
        match self {
            Error::Transport { .. } | Error::Stalled { .. } => true,
            Error::Status { status, .. } => {
                RetryPolicy::is_retryable(Failure::Status(*status), Idempotency::Idempotent)
            }
            _ => false,
        }
    }

    /// Whether the registry refused the credentials (or their absence).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized { .. })
    }

    /// Whether this is an authentication failure: the registry refused the credentials, or
    /// they could not be obtained (Docker's config.json or a credential helper failed).
    pub fn is_authentication(&self) -> bool {
        matches!(self, Error::Unauthorized { .. } | Error::Credentials { .. })
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
