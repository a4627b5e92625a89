//! OCI image pushes and daemonless code-image builds.
//!
//! - `client`: `RegistryClient`, the distribution-API primitives (blobs, raw manifests).
//! - `push`: `push_image`, the one call behind `image push SOURCE DEST`.
//! - `source`: `ImageSource`, reading OCI layouts and archives without extracting them.
//! - `reference`, `credentials`, `auth`: image names and registry authentication.
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
mod reference;
mod source;

pub use client::{ClientOptions, RawManifest, RegistryClient, sha256_digest};
pub use credentials::{Credentials, Secret};
pub use error::{Error, Result};
pub use progress::{BlobOutcome, ProgressCallback, ProgressEvent};
pub use push::{PushReport, push_image, push_image_with};
pub use reference::ImageRef;
pub use source::{ImageSource, PlatformSelection};
