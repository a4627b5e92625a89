//! Manifests: fetched exactly as stored (digest checked when the reference names one) and
//! pushed byte for byte, so digests never change.

use reqwest::Method;
use reqwest::header;

use super::RegistryClient;
use super::auth::Scopes;
use super::transport::{read_limited, status_error};
use crate::error::{Error, Result};
use crate::manifest::RawManifest;
use crate::media_type::MANIFEST_ACCEPT;
use crate::policy::display_url;
use crate::progress::ProgressEvent;
use crate::reference::ImageRef;

/// Largest manifest we read; the distribution spec recommends registries accept at least 4 MiB.
const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

impl RegistryClient {
    /// Fetches the manifest `image` names (by tag or digest), exactly as stored.
    pub async fn fetch_manifest(&self, image: &ImageRef) -> Result<RawManifest> {
        let url = self.url(image, &format!("manifests/{}", image.manifest_reference()))?;
        let scopes = Scopes::pull(image.repository());
        let response = self
            .send(image, &scopes, Method::GET, &url, |request| {
                request.header(header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if !response.status().is_success() {
            return Err(status_error(image, &Method::GET, &url, response).await);
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.split(';').next().unwrap_or(value).trim().to_owned());
        let bytes = read_limited(
            response,
            image.registry(),
            &url,
            image.manifest_reference(),
            MAX_MANIFEST_SIZE,
        )
        .await?;
        let media_type = match content_type
            .filter(|value| value.contains("manifest") || value.contains("index"))
        {
            Some(value) => value,
            None => crate::manifest::media_type_of(&bytes, url.as_ref())?,
        };
        let manifest = RawManifest::new(bytes, media_type);
        if let Some(expected) = image
            .digest()
            .filter(|expected| *expected != manifest.digest)
        {
            return Err(Error::DigestMismatch {
                location: display_url(&url),
                expected: expected.to_owned(),
                actual: manifest.digest,
            });
        }
        Ok(manifest)
    }

    /// Pushes `manifest` bytes unchanged under `image`'s tag (or digest); returns the digest.
    pub async fn push_manifest(&self, image: &ImageRef, manifest: &RawManifest) -> Result<String> {
        let reference = image.tag().unwrap_or(&manifest.digest).to_owned();
        let url = self.url(image, &format!("manifests/{reference}"))?;
        let scopes = Scopes::push(image.repository());
        let response = self
            .send(image, &scopes, Method::PUT, &url, |request| {
                request
                    .header(header::CONTENT_TYPE, manifest.media_type.as_str())
                    .body(manifest.bytes.clone())
            })
            .await?;
        if !response.status().is_success() {
            return Err(status_error(image, &Method::PUT, &url, response).await);
        }
        if let Some(returned) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .filter(|returned| *returned != manifest.digest)
        {
            return Err(Error::DigestMismatch {
                location: display_url(&url),
                expected: manifest.digest.clone(),
                actual: returned.to_owned(),
            });
        }
        self.emit(&ProgressEvent::ManifestPushed {
            reference,
            digest: manifest.digest.clone(),
        });
        Ok(manifest.digest.clone())
    }
}
