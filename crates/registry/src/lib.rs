//! OCI image pushes and daemonless code-image builds, over the OCI distribution API.
//!
//! - [`push_image`] pushes an image from an OCI layout, an OCI or `docker save` archive, or
//!   another registry ([`ImageSource`]), byte for byte: the digest is the source's.
//! - [`build::build_code_image`] adds a reproducible code layer to a base image and pushes the
//!   result without a Docker daemon.
//! - [`RegistryClient`] holds what both share: credentials (Docker's `config.json`, credential
//!   helpers, or explicit), tokens, the HTTP transport ([`ClientOptions::transport`]) and the
//!   distribution-API primitives.
//!
//! Inside: `engine` is the one push engine both entry points run (blobs made present by HEAD,
//! mount or streamed upload, then manifests); `source` turns an [`ImageSource`] into a push
//! plan; `client` speaks the protocol (transport and retries, auth, blobs, resumable uploads,
//! manifests); `policy` is the one rule for where credentials may go and where plain HTTP is
//! allowed; `manifest`, `media_type`, `digest` and `platform` are the vocabulary; image
//! references are [`ImageRef`]s, whose grammar lives in `dagster-deploy-types`.
//! Errors are data: [`Error::kind`], predicates such as [`Error::is_retryable`], accessors
//! such as [`Error::registry`], and [`Error::help`] kept apart from the message.
//!
//! With the `test-support` feature, `test_support` offers the harnesses this crate's own
//! tests use: a real `docker-registry` on a free loopback port and an OCI layout writer.

pub mod build;
mod client;
mod credentials;
mod digest;
mod engine;
mod error;
mod manifest;
pub mod media_type;
mod platform;
mod policy;
mod progress;
#[cfg(test)]
mod property_tests;
mod push;
mod source;
#[cfg(feature = "test-support")]
pub mod test_support;

/// Image references: the grammar is shared with the configuration reader and lives in
/// `dagster-deploy-types`; this path keeps the crate's own modules naming it as before.
mod reference {
    pub(crate) use dagster_deploy_types::ImageRef;
}

pub use client::{ClientOptions, RegistryClient};
pub use credentials::{Credentials, Secret};
pub use dagster_deploy_http_policy::{
    Certificate, HttpTransport, ProxyMode, ProxySettings, TransportSettings,
};
pub use dagster_deploy_types::{ImageRef, InvalidImageRef};
pub use digest::sha256_digest;
pub use engine::PushReport;
pub use error::{Error, ErrorKind, Result};
pub use manifest::RawManifest;
pub use platform::Platform;
pub use progress::{BlobOutcome, ProgressCallback, ProgressEvent};
pub use push::{push_image, push_image_with};
pub use source::{ImageSource, PlatformSelection};

// The README's examples are compiled as doctests, so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
