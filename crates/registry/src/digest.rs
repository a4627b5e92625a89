//! Content digests, formatted in one place: `sha256:<64 lowercase hex digits>`. Checking that
//! a digest from elsewhere is well formed lives with the reference grammar
//! ([`ImageRef::validate_digest`](crate::ImageRef::validate_digest)).

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `bytes`.
///
/// ```
/// assert_eq!(
///     dagster_deploy_registry::sha256_digest(b""),
///     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
pub fn sha256_digest(bytes: &[u8]) -> String {
    format_sha256(&Sha256::digest(bytes))
}

/// The digest string of a finished SHA-256 hash (from a hasher fed in pieces).
pub(crate) fn format_sha256(hash: &[u8]) -> String {
    sha256_from_hex(&hex::encode(hash))
}

/// The digest string of a SHA-256 hash already in hex (a blob's file name in a layout).
pub(crate) fn sha256_from_hex(hex: &str) -> String {
    format!("sha256:{hex}")
}

/// A SHA-256 hasher for content that arrives in pieces.
#[derive(Clone, Default)]
pub(crate) struct Sha256Hasher(Sha256);

impl Sha256Hasher {
    /// Feeds more bytes.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed, as `sha256:<hex>`.
    pub(crate) fn finish(self) -> String {
        format_sha256(&self.0.finalize())
    }
}

/// The hex part of a `sha256:` digest (for tags and file names derived from it).
pub(crate) fn sha256_hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}
