//! Writing a reproducible gzipped layer from a planned set of entries.
//!
//! Entries are written in byte order of their paths (parents before children), owned by
//! uid/gid 0 with no user or group names, with one fixed mtime; files are 0755 when any
//! execute bit was set and 0644 otherwise, directories 0755, symlinks stay symlinks; hard links
//! become separate files. The gzip header carries no name or mtime. Two hashes are taken while
//! the layer streams to disk: the blob digest (compressed) and the diff_id (uncompressed), so
//! the layer is never held in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

/// A fixed gzip level: the compressed bytes, hence the digest, depend only on the content.
const GZIP_LEVEL: u32 = 6;
const BUFFER_SIZE: usize = 256 * 1024;

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// A file on disk of this size.
    Path { path: PathBuf, size: u64 },
    /// Bytes made by the planner (a rewritten script, `pyvenv.cfg`).
    Bytes(Vec<u8>),
}

/// One entry of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LayerEntry {
    Directory,
    File { content: Content, executable: bool },
    Symlink { target: String },
}

/// The written layer's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WrittenLayer {
    /// `sha256:<hex>` of the gzipped bytes.
    pub(crate) digest: String,
    /// `sha256:<hex>` of the tar.
    pub(crate) diff_id: String,
    /// Size of the gzipped bytes.
    pub(crate) size: u64,
    /// Number of tar entries.
    pub(crate) entries: usize,
}

/// Writes `entries` (keyed by their path in the image, without a leading `/`) to `file`.
pub(crate) fn write_layer(
    entries: &BTreeMap<String, LayerEntry>,
    mtime: u64,
    file: &File,
) -> io::Result<WrittenLayer> {
    let compressed = Hashing::new(BufWriter::with_capacity(BUFFER_SIZE, file.try_clone()?));
    let gzip = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(compressed, Compression::new(GZIP_LEVEL));
    let mut tar = tar::Builder::new(Hashing::new(BufWriter::with_capacity(BUFFER_SIZE, gzip)));
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, entry) in entries {
        match entry {
            LayerEntry::Directory => {
                let mut header = header(tar::EntryType::Directory, 0o755, 0, mtime);
                tar.append_data(&mut header, path, io::empty())?;
            }
            LayerEntry::Symlink { target } => {
                let mut header = header(tar::EntryType::Symlink, 0o777, 0, mtime);
                tar.append_link(&mut header, path, target)?;
            }
            LayerEntry::File {
                content,
                executable,
            } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                match content {
                    Content::Bytes(bytes) => {
                        let mut header =
                            header(tar::EntryType::Regular, mode, bytes.len() as u64, mtime);
                        tar.append_data(&mut header, path, bytes.as_slice())?;
                    }
                    Content::Path { path: source, size } => {
                        let mut header = header(tar::EntryType::Regular, mode, *size, mtime);
                        let reader = Exact {
                            inner: File::open(source)?,
                            remaining: *size,
                        };
                        tar.append_data(&mut header, path, reader)?;
                    }
                }
            }
        }
    }
    let (buffered_gzip, diff_id, _) = tar.into_inner()?.finish();
    let gzip = buffered_gzip
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    let (buffered_file, digest, size) = gzip.finish()?.finish();
    buffered_file
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()?;
    Ok(WrittenLayer {
        digest,
        diff_id,
        size,
        entries: entries.len(),
    })
}

fn header(entry_type: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Yields exactly `remaining` bytes of a file, and fails if it has fewer (a file that shrank
/// after it was listed would otherwise corrupt the archive).
struct Exact {
    inner: File,
    remaining: u64,
}

impl Read for Exact {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let wanted =
            usize::try_from(self.remaining).map_or(buffer.len(), |left| left.min(buffer.len()));
        let read = self.inner.read(&mut buffer[..wanted])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a file installed by uv shrank while the layer was written",
            ));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    sha256: Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            sha256: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer, `sha256:<hex>` of the bytes written, and their number.
    fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.sha256.finalize()));
        (self.inner, digest, self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buffer)?;
        self.sha256.update(&buffer[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
