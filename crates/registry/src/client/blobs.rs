//! Blobs already in a registry: whether a repository has one (HEAD), mounting one from
//! another repository of the same registry, and reading one (whole and checked, or streamed).

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt as _};
use reqwest::header;
use reqwest::{Method, StatusCode};
use url::Url;

use super::auth::Scopes;
use super::transport::{Bound, location, read_limited, status_error};
use super::{RegistryClient, check_digest};
use crate::error::{Error, Result};
use crate::policy::display_url;
use crate::reference::ImageRef;

/// What a cross-repository mount request did.
pub(crate) enum MountOutcome {
    /// The registry now has the blob in the target repository.
    Mounted,
    /// The registry could not mount and opened an upload session instead.
    Started(Url),
}

impl RegistryClient {
    /// Whether the registry already has blob `digest` in `image`'s repository.
    pub async fn blob_exists(&self, image: &ImageRef, digest: &str) -> Result<bool> {
        let url = self.blob_url(image, digest)?;
        let response = self
            .send(
                image,
                &Scopes::pull(image.repository()),
                Method::HEAD,
                &url,
                |request| request,
            )
            .await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(image, &Method::HEAD, &url, response).await),
        }
    }

    /// Mounts blob `digest` from `from_repository` (same registry) into `to`; false if the
    /// registry could not mount it.
    pub async fn mount_blob(
        &self,
        to: &ImageRef,
        from_repository: &str,
        digest: &str,
    ) -> Result<bool> {
        match self.mount_or_start(to, from_repository, digest).await? {
            MountOutcome::Mounted => Ok(true),
            MountOutcome::Started(session) => {
                // Cancel the session the registry opened instead; failure only leaks a temp upload.
                let scopes = Scopes::push(to.repository());
                let _ = self
                    .send(to, &scopes, Method::DELETE, &session, |request| request)
                    .await;
                Ok(false)
            }
        }
    }

    /// Asks the registry to mount blob `digest` from `from_repository` into `to`; a registry
    /// that cannot (no access to the source, say) opens an upload session instead.
    pub(crate) async fn mount_or_start(
        &self,
        to: &ImageRef,
        from_repository: &str,
        digest: &str,
    ) -> Result<MountOutcome> {
        check_digest(to, digest)?;
        let mut url = self.url(to, "blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from_repository);
        let scopes = Scopes::push(to.repository()).union(&Scopes::pull(from_repository));
        let response = self
            .send(to, &scopes, Method::POST, &url, |request| {
                request.header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Started(location(&url, &response)?)),
            _ => Err(status_error(to, &Method::POST, &url, response).await),
        }
    }

    /// Fetches a small blob (e.g. an image config), refusing anything over `max_size` bytes.
    pub async fn fetch_blob(&self, image: &ImageRef, digest: &str, max_size: u64) -> Result<Bytes> {
        let url = self.blob_url(image, digest)?;
        let scopes = Scopes::pull(image.repository());
        let response = self
            .send(image, &scopes, Method::GET, &url, |request| request)
            .await?;
        if !response.status().is_success() {
            return Err(status_error(image, &Method::GET, &url, response).await);
        }
        let bytes = read_limited(response, image.registry(), &url, digest, max_size).await?;
        let actual = crate::sha256_digest(&bytes);
        if actual != digest {
            return Err(Error::DigestMismatch {
                location: display_url(&url),
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Streams a blob's bytes as they arrive, unverified: the caller checks the digest (an
    /// upload does), or stops early (the builder reading directory entries from base layers).
    pub(crate) async fn blob_stream(
        &self,
        image: &ImageRef,
        digest: &str,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + use<>> {
        let url = self.blob_url(image, digest)?;
        let scopes = Scopes::pull(image.repository());
        let response = self
            .send_bounded(
                image,
                &scopes,
                Method::GET,
                &url,
                Bound::Streaming,
                |request| request,
            )
            .await?;
        if !response.status().is_success() {
            return Err(status_error(image, &Method::GET, &url, response).await);
        }
        let shown = display_url(&url);
        let registry = image.registry().to_owned();
        Ok(response
            .bytes_stream()
            .map_err(move |source| Error::Transport {
                registry: registry.clone(),
                url: shown.clone(),
                source,
            }))
    }
}
