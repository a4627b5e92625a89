//! Uploading blobs: streamed from a file (a range of it: a layout blob or a tar entry), from
//! memory, or from another repository, with the digest checked on the way. A failed attempt is
//! retried, resuming the registry's upload session where it stopped when the content can be
//! read again from any offset, or starting over.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use reqwest::header;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use url::Url;

use super::RegistryClient;
use super::auth::Scopes;
use super::transport::{Activity, location, status_error};
use crate::digest::Sha256Hasher;
use crate::error::{Error, Result};
use crate::policy::display_url;
use crate::progress::{BlobOutcome, BlobProgress, ImageProgress, ProgressEvent};
use crate::reference::ImageRef;

/// Size of each read from disk while streaming a blob.
const READ_CHUNK: usize = 256 * 1024;

/// Where the bytes of a blob come from.
#[derive(Clone, Debug)]
pub(crate) enum BlobContent {
    /// `size` bytes of a file starting at `offset` (a layout blob or a tar entry).
    File { path: PathBuf, offset: u64 },
    /// Bytes in memory (small blobs: configs).
    Bytes(Bytes),
    /// The same digest in another registry repository.
    Remote(ImageRef),
}

impl BlobContent {
    fn describe(&self) -> String {
        match self {
            BlobContent::File { path, offset: 0 } => path.display().to_string(),
            BlobContent::File { path, offset } => format!("{} at byte {offset}", path.display()),
            BlobContent::Bytes(_) => "in-memory blob".to_owned(),
            BlobContent::Remote(image) => image.to_string(),
        }
    }
}

impl RegistryClient {
    /// Uploads `size` bytes of the file at `path` as blob `digest`, streaming from disk,
    /// verifying the digest and retrying (resuming where possible) on failure.
    pub async fn upload_blob_file(
        &self,
        image: &ImageRef,
        digest: &str,
        size: u64,
        path: &Path,
    ) -> Result<()> {
        let content = BlobContent::File {
            path: path.to_owned(),
            offset: 0,
        };
        let progress = BlobProgress::new(self.options.progress.clone(), digest, size, None);
        self.upload_blob(image, digest, size, &content, Arc::new(progress), None)
            .await
    }

    /// Uploads in-memory `bytes` as blob `digest` (for small blobs such as configs).
    pub async fn upload_blob_bytes(
        &self,
        image: &ImageRef,
        digest: &str,
        bytes: Bytes,
    ) -> Result<()> {
        let size = bytes.len() as u64;
        let progress = BlobProgress::new(self.options.progress.clone(), digest, size, None);
        self.upload_blob(
            image,
            digest,
            size,
            &BlobContent::Bytes(bytes),
            Arc::new(progress),
            None,
        )
        .await
    }

    pub(crate) fn blob_progress(
        &self,
        digest: &str,
        size: u64,
        image: Option<Arc<ImageProgress>>,
    ) -> Arc<BlobProgress> {
        Arc::new(BlobProgress::new(
            self.options.progress.clone(),
            digest,
            size,
            image,
        ))
    }

    async fn start_upload(&self, image: &ImageRef) -> Result<Url> {
        let url = self.url(image, "blobs/uploads/")?;
        let scopes = Scopes::push(image.repository());
        let response = self
            .send(image, &scopes, Method::POST, &url, |request| {
                request.header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error(image, &Method::POST, &url, response).await);
        }
        location(&url, &response)
    }

    /// Asks how much of an interrupted upload the registry holds: `(session URL, bytes held)`.
    async fn upload_status(&self, image: &ImageRef, session: &Url) -> Result<(Url, u64)> {
        let scopes = Scopes::push(image.repository());
        let response = self
            .send(image, &scopes, Method::GET, session, |request| request)
            .await?;
        if response.status() != StatusCode::NO_CONTENT {
            return Err(status_error(image, &Method::GET, session, response).await);
        }
        let held = response
            .headers()
            .get(header::RANGE)
            .and_then(|value| value.to_str().ok())
            .and_then(|range| range.trim_start_matches("bytes=").split_once('-'))
            .and_then(|(_, end)| end.parse::<u64>().ok())
            .map_or(0, |end| end + 1);
        Ok((location(session, &response)?, held))
    }

    pub(crate) async fn upload_blob(
        &self,
        image: &ImageRef,
        digest: &str,
        size: u64,
        content: &BlobContent,
        progress: Arc<BlobProgress>,
        opened_session: Option<Url>,
    ) -> Result<()> {
        if let BlobContent::File { path, offset } = content {
            let length = tokio::fs::metadata(path)
                .await
                .map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?
                .len();
            if length < offset + size {
                return Err(Error::InvalidImage {
                    path: path.clone(),
                    reason: format!(
                        "blob {digest} should be {size} bytes but the file is too short ({length} bytes)"
                    ),
                });
            }
        }
        let resumable = !matches!(content, BlobContent::Remote(_));
        let mut fresh_session = opened_session;
        let mut interrupted_session: Option<Url> = None;
        let mut attempt: u32 = 0;
        loop {
            let (session, offset) = match (fresh_session.take(), interrupted_session.take()) {
                (Some(session), _) => (session, 0),
                (None, Some(session)) => match self.upload_status(image, &session).await {
                    Ok((session, held)) if held <= size => (session, held),
                    _ => (self.start_upload(image).await?, 0),
                },
                (None, None) => (self.start_upload(image).await?, 0),
            };
            match self
                .send_blob(
                    image,
                    digest,
                    size,
                    content,
                    &progress,
                    session.clone(),
                    offset,
                )
                .await
            {
                Ok(()) => {
                    progress.finish(BlobOutcome::Uploaded);
                    return Ok(());
                }
                Err(error) if error.is_retryable() && attempt < self.options.max_retries => {
                    attempt += 1;
                    tracing::debug!(%digest, attempt, %error, "retrying blob upload");
                    progress.emit(&ProgressEvent::BlobRetry {
                        digest: digest.to_owned(),
                        attempt: attempt + 1,
                        reason: error.to_string(),
                    });
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    // Resume the session we were writing to, unless we were already resuming it.
                    if resumable && offset == 0 {
                        interrupted_session = Some(session);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One attempt: PATCH the bytes from `offset` on, check the digest, then commit with PUT.
    #[allow(clippy::too_many_arguments, reason = "internal step of upload_blob")]
    async fn send_blob(
        &self,
        image: &ImageRef,
        digest: &str,
        size: u64,
        content: &BlobContent,
        progress: &Arc<BlobProgress>,
        mut session: Url,
        offset: u64,
    ) -> Result<()> {
        let activity = Arc::new(Activity::new());
        let hasher = Arc::new(Mutex::new(Sha256Hasher::default()));
        hash_prefix(content, offset, &hasher).await?;
        progress.reset_to(offset);
        let scopes = Scopes::push(image.repository());
        if offset < size || size == 0 {
            let body = self
                .content_stream(
                    content,
                    digest,
                    size,
                    offset,
                    hasher.clone(),
                    progress.clone(),
                    activity.clone(),
                )
                .await?;
            self.policy.check_transport(image.registry(), &session)?;
            let mut request = self
                .http
                .patch(session.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size - offset)
                .body(body);
            if offset > 0 {
                request = request.header(header::CONTENT_RANGE, format!("{offset}-{}", size - 1));
            }
            if let Some(value) = self.authorization(image, &scopes, &session).await? {
                request = request.header(header::AUTHORIZATION, value);
            }
            // The body streams for as long as it takes; only a stall ends it.
            let limit = self.options.request_timeout;
            let response = activity
                .watch(request.send(), limit)
                .await
                .ok_or_else(|| Error::Stalled {
                    url: display_url(&session),
                    seconds: limit.as_secs(),
                })?
                .map_err(|source| Error::Transport {
                    registry: image.registry().to_owned(),
                    url: display_url(&session),
                    source: source.without_url(),
                })?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(status_error(image, &Method::PATCH, &session, response).await);
            }
            session = location(&session, &response)?;
        }
        let actual = hasher.lock().map_err(|_| poisoned())?.clone().finish();
        if actual != digest {
            return Err(Error::DigestMismatch {
                location: content.describe(),
                expected: digest.to_owned(),
                actual,
            });
        }
        let mut commit = session.clone();
        commit.query_pairs_mut().append_pair("digest", digest);
        let response = self
            .send(image, &scopes, Method::PUT, &commit, |request| {
                request.header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        match response.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT => {}
            StatusCode::BAD_REQUEST => {
                let error = status_error(image, &Method::PUT, &commit, response).await;
                if error.to_string().contains("DIGEST_INVALID") {
                    return Err(Error::DigestMismatch {
                        location: content.describe(),
                        expected: digest.to_owned(),
                        actual: "a different digest (the registry rejected it)".to_owned(),
                    });
                }
                return Err(error);
            }
            // A retried commit after a lost response: the blob may be there already.
            StatusCode::NOT_FOUND if self.blob_exists(image, digest).await? => {}
            _ => return Err(status_error(image, &Method::PUT, &commit, response).await),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments, reason = "internal step of send_blob")]
    async fn content_stream(
        &self,
        content: &BlobContent,
        digest: &str,
        size: u64,
        offset: u64,
        hasher: Arc<Mutex<Sha256Hasher>>,
        progress: Arc<BlobProgress>,
        activity: Arc<Activity>,
    ) -> Result<reqwest::Body> {
        let observe = move |chunk: &Bytes| {
            if let Ok(mut hasher) = hasher.lock() {
                hasher.update(chunk);
            }
            progress.add(chunk.len() as u64);
            activity.touch();
        };
        match content {
            BlobContent::Bytes(bytes) => {
                let rest = bytes.slice(
                    usize::try_from(offset)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len())..,
                );
                observe(&rest);
                Ok(reqwest::Body::from(rest))
            }
            BlobContent::File {
                path,
                offset: start,
            } => {
                let stream = file_stream(path, start + offset, size - offset).await?;
                Ok(reqwest::Body::wrap_stream(stream.inspect_ok(observe)))
            }
            BlobContent::Remote(source) => {
                let stream = self.blob_stream(source, digest).await?;
                Ok(reqwest::Body::wrap_stream(stream.inspect_ok(observe)))
            }
        }
    }
}

fn poisoned() -> Error {
    Error::Protocol {
        url: String::new(),
        reason: "internal hasher lock poisoned".to_owned(),
    }
}

/// Feeds the first `length` bytes of `content` into `hasher` (to resume an upload).
async fn hash_prefix(
    content: &BlobContent,
    length: u64,
    hasher: &Mutex<Sha256Hasher>,
) -> Result<()> {
    if length == 0 {
        return Ok(());
    }
    match content {
        BlobContent::Bytes(bytes) => {
            let end = usize::try_from(length)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            hasher.lock().map_err(|_| poisoned())?.update(&bytes[..end]);
        }
        BlobContent::File { path, offset } => {
            let mut stream = std::pin::pin!(file_stream(path, *offset, length).await?);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                hasher.lock().map_err(|_| poisoned())?.update(&chunk);
            }
        }
        BlobContent::Remote(_) => {}
    }
    Ok(())
}

/// Streams `length` bytes of `path` from `offset` in bounded chunks.
async fn file_stream(
    path: &Path,
    offset: u64,
    length: u64,
) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
    let io_error = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io_error)?;
    file.seek(SeekFrom::Start(offset)).await.map_err(io_error)?;
    Ok(futures_util::stream::try_unfold(
        (file, length),
        |(mut file, remaining)| async move {
            if remaining == 0 {
                return Ok(None);
            }
            let want = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(READ_CHUNK);
            let mut buffer = BytesMut::with_capacity(want);
            while buffer.len() < want {
                let read = (&mut file)
                    .take((want - buffer.len()) as u64)
                    .read_buf(&mut buffer)
                    .await?;
                if read == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "file ended before the blob did",
                    ));
                }
            }
            let remaining = remaining - buffer.len() as u64;
            Ok(Some((buffer.freeze(), (file, remaining))))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_stream_reads_exactly_the_requested_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..700_000u32).map(|index| (index % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let chunks: Vec<Bytes> = file_stream(&path, 10, 600_000)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(chunks.iter().all(|chunk| chunk.len() <= READ_CHUNK));
        assert_eq!(chunks.concat(), data[10..600_010]);
        let short: std::io::Result<Vec<Bytes>> = file_stream(&path, 600_000, 200_000)
            .await
            .unwrap()
            .try_collect()
            .await;
        assert!(short.is_err());
    }
}
