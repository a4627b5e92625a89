//! The reproducible code layer: the build directory as a gzipped tar under the working directory.
//!
//! Entries are sorted by path, owned by uid/gid 0 with empty user and group names, stamped with
//! one fixed mtime, and their modes normalised (0644 files, 0755 executables and directories);
//! symlinks stay symlinks. The parents of the working directory (`var/` and `var/tmp/` for
//! `/var/tmp/code`) are written with the metadata the base image gives them (found by
//! `base_dirs.rs`), or 0755 root-owned when the base has none, so that unpacking the layer never
//! changes a directory the base owns. The layer is written twice from one listing
//! ([`ScannedLayer`]): [`scan_layer`] streams the tar into a SHA-256 hasher only (the diff_id,
//! from which the caller derives the content key), and [`ScannedLayer::compress`], called only
//! when the registry lacks the image, streams it again through `gzip.rs` into a temporary file
//! while hashing the compressed bytes (the blob digest), and checks that the tar still has the
//! scanned diff_id. Neither holds the layer in memory. Which paths are left out is decided by
//! `dockerignore.rs`; uploading is done by the caller.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::Sha256Hasher;

use super::base_dirs::DirectoryMetadata;
use super::dockerignore::IgnoreRules;
use super::gzip;
use crate::error::{Error, Result};

/// The gzip level: a fixed value keeps the compressed bytes, hence the digest, reproducible.
pub(crate) const GZIP_LEVEL: u32 = 6;
const FILE_MODE: u32 = 0o644;
const EXECUTABLE_MODE: u32 = 0o755;
const DIRECTORY_MODE: u32 = 0o755;
const SYMLINK_MODE: u32 = 0o777;
const COPY_BUFFER_SIZE: usize = 256 * 1024;

/// One path the layer will contain, relative to the context root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContextEntry {
    /// A directory (its own metadata is normalised; contents are separate entries).
    Directory,
    /// A regular file with its size and whether any execute bit is set.
    File { size: u64, executable: bool },
    /// A symbolic link, kept as such, with its target.
    Symlink { target: PathBuf },
}

/// The finished layer on disk.
#[derive(Debug)]
pub(crate) struct LayerFile {
    /// The gzipped tar; deleted when this value is dropped.
    pub(crate) file: tempfile::NamedTempFile,
    /// `sha256:<hex>` of the compressed bytes: the blob digest.
    pub(crate) digest: String,
    /// Size of the compressed blob in bytes.
    pub(crate) size: u64,
    /// Number of tar entries (directories included).
    pub(crate) entries: usize,
}

/// Lists what the layer will contain, keyed by slash-separated path relative to the context
/// root (the root itself is not listed). Parent directories of included paths are always
/// present, even when `.dockerignore` excludes the directory but re-includes something inside.
pub(crate) fn collect_entries(
    context_dir: &Path,
    rules: &IgnoreRules,
) -> Result<BTreeMap<String, ContextEntry>> {
    let mut entries = BTreeMap::new();
    walk(context_dir, "", rules, &mut entries)?;
    let parents: Vec<String> = entries
        .keys()
        .flat_map(|path| {
            path.match_indices('/')
                .map(|(position, _)| path[..position].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    for parent in parents {
        entries.entry(parent).or_insert(ContextEntry::Directory);
    }
    Ok(entries)
}

fn walk(
    directory: &Path,
    relative_dir: &str,
    rules: &IgnoreRules,
    entries: &mut BTreeMap<String, ContextEntry>,
) -> Result<()> {
    let read_error = |source| Error::ReadContext {
        path: directory.to_path_buf(),
        source,
    };
    for child in std::fs::read_dir(directory).map_err(read_error)? {
        let child = child.map_err(read_error)?;
        let path = child.path();
        let name = child.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| Error::NonUtf8Path { path: path.clone() })?;
        let relative = if relative_dir.is_empty() {
            name.to_owned()
        } else {
            format!("{relative_dir}/{name}")
        };
        let metadata = std::fs::symlink_metadata(&path).map_err(|source| Error::ReadContext {
            path: path.clone(),
            source,
        })?;
        let excluded = rules.is_excluded(&relative);
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            if !excluded {
                entries.insert(relative.clone(), ContextEntry::Directory);
                walk(&path, &relative, rules, entries)?;
            } else if rules.may_include_inside(&relative) {
                walk(&path, &relative, rules, entries)?;
            }
            continue;
        }
        if excluded {
            continue;
        }
        let entry = if file_type.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|source| Error::ReadContext {
                path: path.clone(),
                source,
            })?;
            ContextEntry::Symlink { target }
        } else if file_type.is_file() {
            ContextEntry::File {
                size: metadata.len(),
                executable: is_executable(&metadata),
            }
        } else {
            return Err(Error::UnsupportedFileType { path });
        };
        entries.insert(relative, entry);
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_metadata: &std::fs::Metadata) -> bool {
    false
}

/// Normalises a working directory such as `/app` or `/opt/code/` into its path segments.
pub(crate) fn workdir_segments(workdir: &str) -> Result<Vec<String>> {
    let segments: Vec<String> = workdir
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .map(str::to_owned)
        .collect();
    if !workdir.starts_with('/') || segments.iter().any(|segment| segment == "..") {
        return Err(Error::InvalidWorkdir {
            workdir: workdir.to_owned(),
        });
    }
    Ok(segments)
}

/// What the layer holds, listed once and then written twice: hashed without compression
/// (the content key), and compressed only when the registry does not have the image yet.
#[derive(Debug)]
pub(crate) struct ScannedLayer {
    context_dir: PathBuf,
    workdir: Vec<String>,
    parents: Vec<Option<DirectoryMetadata>>,
    mtime: u64,
    entries: BTreeMap<String, ContextEntry>,
    /// `sha256:<hex>` of the uncompressed tar: the config's diff_id.
    pub(crate) diff_id: String,
    /// Number of tar entries (directories included).
    pub(crate) entry_count: usize,
}

/// Lists the layer for `context_dir` under `workdir` (segments from [`workdir_segments`]), with
/// every entry's mtime set to `mtime` (seconds), and hashes its uncompressed tar, reading every
/// file once; nothing is compressed or written. `parents` holds the base's metadata for each
/// parent of the working directory (one fewer than `workdir` has segments; `None` for a parent
/// the base lacks); missing trailing values count as `None`.
pub(crate) fn scan_layer(
    context_dir: &Path,
    workdir: &[String],
    parents: &[Option<DirectoryMetadata>],
    mtime: u64,
) -> Result<ScannedLayer> {
    let rules = IgnoreRules::load(context_dir)?;
    let entries = collect_entries(context_dir, &rules)?;
    let mut scanned = ScannedLayer {
        context_dir: context_dir.to_path_buf(),
        workdir: workdir.to_vec(),
        parents: parents.to_vec(),
        mtime,
        entries,
        diff_id: String::new(),
        entry_count: 0,
    };
    let (_, diff_id, entry_count) = scanned.write_tar(io::sink())?;
    scanned.diff_id = diff_id;
    scanned.entry_count = entry_count;
    Ok(scanned)
}

impl ScannedLayer {
    /// Writes the gzipped layer into a temporary file in `temp_dir`, compressing on `threads`
    /// threads (the bytes do not depend on how many). Fails if the files no longer hash to
    /// [`ScannedLayer::diff_id`].
    pub(crate) fn compress(&self, temp_dir: &Path, threads: usize) -> Result<LayerFile> {
        let write_error = |source| Error::WriteLayer {
            path: temp_dir.to_path_buf(),
            source,
        };
        let temp_file = tempfile::Builder::new()
            .prefix("code-layer-")
            .suffix(".tar.gz")
            .tempfile_in(temp_dir)
            .map_err(write_error)?;
        let compressed = HashingWriter::new(BufWriter::with_capacity(
            COPY_BUFFER_SIZE,
            temp_file.as_file().try_clone().map_err(write_error)?,
        ));
        let (produced, compressed) = gzip::compress(compressed, GZIP_LEVEL, threads, |input| {
            self.write_tar(input).map(|(_, diff_id, _)| diff_id)
        });
        let diff_id = produced?;
        if diff_id != self.diff_id {
            return Err(Error::ContextChanged {
                path: self.context_dir.clone(),
            });
        }
        let (buffered_file, digest, size) = compressed.map_err(write_error)?.finish();
        // Flushed, not synced: the file is read back through the same page cache and deleted
        // after the push, so making it durable would only wait for the disk.
        buffered_file
            .into_inner()
            .map_err(|error| write_error(error.into_error()))?;
        Ok(LayerFile {
            file: temp_file,
            digest,
            size,
            entries: self.entry_count,
        })
    }

    /// Writes the uncompressed tar into `output`; returns `output`, the tar's `sha256:` digest
    /// and the number of entries.
    fn write_tar<W: Write>(&self, output: W) -> Result<(W, String, usize)> {
        let write_error = |source| Error::WriteLayer {
            path: self.context_dir.clone(),
            source,
        };
        // The buffer sits in front of the hasher so that file contents are copied in large
        // pieces (`io::copy` reads straight into a `BufWriter`'s buffer).
        let uncompressed = BufWriter::with_capacity(COPY_BUFFER_SIZE, HashingWriter::new(output));
        let mut tar = tar::Builder::new(uncompressed);
        tar.mode(tar::HeaderMode::Deterministic);
        let mtime = self.mtime;

        let mut count = 0;
        let mut prefix = String::new();
        for (index, segment) in self.workdir.iter().enumerate() {
            prefix.push_str(segment);
            match self.parents.get(index).and_then(Option::as_ref) {
                Some(metadata) if index + 1 < self.workdir.len() => {
                    append_base_directory(&mut tar, &prefix, metadata).map_err(write_error)?;
                }
                _ => append_directory(&mut tar, &prefix, mtime).map_err(write_error)?,
            }
            prefix.push('/');
            count += 1;
        }
        for (relative, entry) in &self.entries {
            let archive_path = format!("{prefix}{relative}");
            let source_path = self.context_dir.join(relative);
            match entry {
                ContextEntry::Directory => {
                    append_directory(&mut tar, &archive_path, mtime).map_err(write_error)?;
                }
                ContextEntry::Symlink { target } => {
                    let mut header = base_header(tar::EntryType::Symlink, SYMLINK_MODE, 0, mtime);
                    tar.append_link(&mut header, &archive_path, target)
                        .map_err(write_error)?;
                }
                ContextEntry::File { size, executable } => {
                    let mode = if *executable {
                        EXECUTABLE_MODE
                    } else {
                        FILE_MODE
                    };
                    let file = File::open(&source_path).map_err(|source| Error::ReadContext {
                        path: source_path.clone(),
                        source,
                    })?;
                    let mut header = base_header(tar::EntryType::Regular, mode, *size, mtime);
                    let reader = ExactReader {
                        inner: file,
                        remaining: *size,
                    };
                    tar.append_data(&mut header, &archive_path, reader)
                        .map_err(|source| Error::ReadContext {
                            path: source_path.clone(),
                            source,
                        })?;
                }
            }
            count += 1;
        }

        let uncompressed = tar.into_inner().map_err(write_error)?;
        let hashing = uncompressed
            .into_inner()
            .map_err(|error| write_error(error.into_error()))?;
        let (output, diff_id, _) = hashing.finish();
        Ok((output, diff_id, count))
    }
}

/// Writes the layer for `context_dir` under `workdir` into a temporary file in `temp_dir`:
/// [`scan_layer`], then [`ScannedLayer::compress`] on every core.
#[cfg(test)]
pub(crate) fn write_layer(
    context_dir: &Path,
    workdir: &[String],
    parents: &[Option<DirectoryMetadata>],
    mtime: u64,
    temp_dir: &Path,
) -> Result<LayerFile> {
    scan_layer(context_dir, workdir, parents, mtime)?.compress(temp_dir, gzip::default_threads())
}

fn base_header(entry_type: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_directory<W: Write>(
    tar: &mut tar::Builder<W>,
    archive_path: &str,
    mtime: u64,
) -> io::Result<()> {
    let mut header = base_header(tar::EntryType::Directory, DIRECTORY_MODE, 0, mtime);
    tar.append_data(&mut header, archive_path, io::empty())
}

/// A parent directory as the base image has it: mode bits (sticky, setgid included), owner
/// ids and names, and mtime, so the layer's entry changes nothing when unpacked over the base.
fn append_base_directory<W: Write>(
    tar: &mut tar::Builder<W>,
    archive_path: &str,
    metadata: &DirectoryMetadata,
) -> io::Result<()> {
    let mut header = base_header(tar::EntryType::Directory, metadata.mode, 0, metadata.mtime);
    header.set_uid(metadata.uid);
    header.set_gid(metadata.gid);
    if !metadata.user.is_empty() {
        header.set_username(&metadata.user)?;
    }
    if !metadata.group.is_empty() {
        header.set_groupname(&metadata.group)?;
    }
    tar.append_data(&mut header, archive_path, io::empty())
}

/// Yields exactly `remaining` bytes, failing if the file shrank since it was listed (a short
/// entry would corrupt the archive).
struct ExactReader {
    inner: File,
    remaining: u64,
}

impl Read for ExactReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let limit = buffer
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buffer[..limit])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while the layer was being written; retry the build",
            ));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

/// Passes bytes through while hashing and counting them.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256Hasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256Hasher::default(),
            written: 0,
        }
    }

    /// Returns the inner writer, the `sha256:<hex>` digest and the byte count.
    fn finish(self) -> (W, String, u64) {
        let digest = self.hasher.finish();
        (self.inner, digest, self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buffer)?;
        self.hasher.update(&buffer[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
