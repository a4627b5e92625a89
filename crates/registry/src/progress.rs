//! Progress reporting: the events a push emits through the caller's callback, and the counters
//! that produce them. Nothing here prints; the caller decides what to show.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The callback type a caller supplies to observe progress.
pub type ProgressCallback = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// What happened to one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Its bytes were sent to the registry.
    Uploaded,
    /// The registry already had it.
    Skipped,
    /// It was mounted from another repository of the same registry.
    Mounted,
}

/// One progress notification.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// Bytes of one blob confirmed sent so far (cumulative; may go down after a restart).
    BlobBytes {
        /// The blob digest.
        digest: String,
        /// Bytes sent so far.
        sent: u64,
        /// Total blob size.
        size: u64,
    },
    /// A blob upload failed and is being retried.
    BlobRetry {
        /// The blob digest.
        digest: String,
        /// The attempt about to start (2 = first retry).
        attempt: u32,
        /// Why the previous attempt failed.
        reason: String,
    },
    /// A blob is finished.
    BlobDone {
        /// The blob digest.
        digest: String,
        /// Total blob size.
        size: u64,
        /// What happened.
        outcome: BlobOutcome,
    },
    /// Bytes of the whole image handled so far (uploaded, skipped or mounted) out of its total.
    ImageBytes {
        /// Bytes handled.
        done: u64,
        /// Total bytes of all blobs.
        total: u64,
    },
    /// A manifest (or index) was pushed.
    ManifestPushed {
        /// Tag or digest it was pushed under.
        reference: String,
        /// Its digest.
        digest: String,
    },
}

/// Byte counters for one image, shared by all its blob uploads.
pub(crate) struct ImageProgress {
    done: AtomicU64,
    total: u64,
}

impl ImageProgress {
    pub(crate) fn new(total: u64) -> Self {
        Self {
            done: AtomicU64::new(0),
            total,
        }
    }

    fn add(&self, callback: Option<&ProgressCallback>, delta: i64) {
        let done = if delta >= 0 {
            self.done.fetch_add(delta.unsigned_abs(), Ordering::Relaxed) + delta.unsigned_abs()
        } else {
            self.done.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed) - delta.unsigned_abs()
        };
        if let Some(callback) = callback {
            callback(&ProgressEvent::ImageBytes {
                done,
                total: self.total,
            });
        }
    }
}

/// Byte counter for one blob upload; also feeds the image counter.
pub(crate) struct BlobProgress {
    callback: Option<ProgressCallback>,
    digest: String,
    size: u64,
    sent: AtomicU64,
    image: Option<Arc<ImageProgress>>,
}

impl BlobProgress {
    pub(crate) fn new(
        callback: Option<ProgressCallback>,
        digest: &str,
        size: u64,
        image: Option<Arc<ImageProgress>>,
    ) -> Self {
        Self {
            callback,
            digest: digest.to_owned(),
            size,
            sent: AtomicU64::new(0),
            image,
        }
    }

    /// Records `bytes` more sent.
    pub(crate) fn add(&self, bytes: u64) {
        let sent = self.sent.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.emit_blob(sent);
        if let Some(image) = &self.image {
            image.add(
                self.callback.as_ref(),
                i64::try_from(bytes).unwrap_or(i64::MAX),
            );
        }
    }

    /// Sets the sent count back (or forward) to `bytes`, e.g. when an upload restarts.
    pub(crate) fn reset_to(&self, bytes: u64) {
        let previous = self.sent.swap(bytes, Ordering::Relaxed);
        if previous == bytes {
            return;
        }
        self.emit_blob(bytes);
        if let Some(image) = &self.image {
            let delta = i64::try_from(bytes).unwrap_or(i64::MAX)
                - i64::try_from(previous).unwrap_or(i64::MAX);
            image.add(self.callback.as_ref(), delta);
        }
    }

    /// Reports the blob as finished; a skipped or mounted blob counts fully towards the image.
    pub(crate) fn finish(&self, outcome: BlobOutcome) {
        if outcome != BlobOutcome::Uploaded {
            self.reset_to(self.size);
        }
        self.emit(&ProgressEvent::BlobDone {
            digest: self.digest.clone(),
            size: self.size,
            outcome,
        });
    }

    pub(crate) fn emit(&self, event: &ProgressEvent) {
        if let Some(callback) = &self.callback {
            callback(event);
        }
    }

    fn emit_blob(&self, sent: u64) {
        self.emit(&ProgressEvent::BlobBytes {
            digest: self.digest.clone(),
            sent,
            size: self.size,
        });
    }
}
