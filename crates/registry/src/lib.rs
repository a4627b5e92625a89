//! OCI image pushes and daemonless code-image builds.
//!
//! - `client`: `RegistryClient`, the distribution-API primitives (blobs, raw manifests).
//! - `push`: `push_image`, the one call behind `image push SOURCE DEST`.
//! - `source`: `ImageSource`, reading OCI layouts and archives without extracting them.
//! - `credentials`, `auth`: registry authentication; image names are [`ImageRef`]s, whose
//!   grammar lives in `dagster-deploy-types`.
//! - `policy`: the one rule for where credentials may go and where plain HTTP is allowed;
//!   `access`: what a client remembers about authentication (single-flight logins and tokens).
//! - `build`: the native code-image builder on top of these primitives.

mod access;
mod auth;
pub mod build;
mod client;
mod credentials;
mod error;
pub mod manifest;
mod policy;
mod progress;
#[cfg(test)]
mod property_tests;
mod push;
mod source;

/// Image references: the grammar is shared with the configuration reader and lives in
/// `dagster-deploy-types`; this path keeps the crate's own modules naming it as before.
mod reference {
    pub(crate) use dagster_deploy_types::ImageRef;
}

pub use client::{ClientOptions, RawManifest, RegistryClient, sha256_digest};
pub use credentials::{Credentials, Secret};
pub use dagster_deploy_types::{ImageRef, InvalidImageRef};
pub use error::{Error, Result};
pub use progress::{BlobOutcome, ProgressCallback, ProgressEvent};
pub use push::{PushReport, push_image, push_image_with};
pub use source::{ImageSource, PlatformSelection};
