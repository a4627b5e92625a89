//! The metadata the base image gives the code directory's parents (`/var` and `/var/tmp` for
//! `--workdir /var/tmp/code`), so that the code layer can repeat their entries unchanged.
//!
//! A layer that leaves a parent directory out is unpacked differently by different runtimes:
//! some create it with default metadata in the new layer, which then hides the base's (Docker's
//! overlay2 storage does: `/var/tmp` would lose its sticky bit, `/home/u` its owner); see
//! opencontainers/image-spec#737. So the code layer carries every parent, with the metadata of
//! the base's merged file system. Finding it means reading the base layers' tar headers; the
//! topmost layer that says something about a parent decides: present (its entry), or absent (a
//! whiteout or an opaque directory, or no entry in any layer). Layers are streamed and
//! decompressed on blocking threads, each dropped as soon as it has an entry for every parent;
//! nothing is written to disk. A parent that is a symlink or a file in the base is an error:
//! writing a directory there would replace it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};

use crate::error::{Error, Result};
use crate::{ImageRef, RegistryClient};

/// Chunks of a layer in flight between the download and the tar reader.
const CHANNEL_CHUNKS: usize = 16;
/// How many base layers are read at once.
const LAYERS_AT_ONCE: usize = 4;

/// A directory entry's metadata, as a tar header carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirectoryMetadata {
    /// Permission bits, including setuid, setgid and sticky.
    pub(crate) mode: u32,
    /// Owner id.
    pub(crate) uid: u64,
    /// Group id.
    pub(crate) gid: u64,
    /// Owner name, often empty.
    pub(crate) user: String,
    /// Group name, often empty.
    pub(crate) group: String,
    /// Modification time in seconds.
    pub(crate) mtime: u64,
}

/// What one wanted path is in the base image.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Directory(DirectoryMetadata),
    /// A symlink, file or other non-directory, by kind.
    Other(&'static str),
    /// Deleted by a whiteout or hidden by an opaque directory in this layer.
    Hidden,
}

/// Returns, for each of `paths` (relative, slash-separated, parents before children), the
/// base's metadata for that directory, or `None` when the base does not have it.
/// `layers` are the base's `(digest, size)` in manifest order.
///
/// The layers are read at the same time (decompressing is the cost, and layers are
/// independent), then the findings are combined top layer first. Results are remembered for the
/// life of the process, keyed by the layer digests, so the locations of a workspace built on one
/// base read it once.
pub(crate) async fn base_directories(
    client: &RegistryClient,
    base: &ImageRef,
    layers: &[(String, u64)],
    paths: &[String],
) -> Result<Vec<Option<DirectoryMetadata>>> {
    let key = (
        layers
            .iter()
            .map(|(digest, _)| digest.clone())
            .collect::<Vec<_>>(),
        paths.to_vec(),
    );
    if let Some(found) = remembered()
        .lock()
        .ok()
        .and_then(|memo| memo.get(&key).cloned())
    {
        return Ok(found);
    }
    let findings: Vec<Vec<Option<Found>>> = futures_util::stream::iter(layers.iter())
        .map(|(digest, _)| scan_layer(client, base, digest, paths.to_vec()))
        .buffered(LAYERS_AT_ONCE)
        .try_collect()
        .await?;
    let mut decided: Vec<Option<DirectoryMetadata>> = Vec::with_capacity(paths.len());
    for (index, path) in paths.iter().enumerate() {
        let topmost = findings
            .iter()
            .rev()
            .find_map(|layer| layer.get(index).cloned().flatten());
        decided.push(match topmost {
            None | Some(Found::Hidden) => None,
            Some(Found::Directory(metadata)) => Some(metadata),
            Some(Found::Other(kind)) => {
                return Err(Error::WorkdirParentNotDirectory {
                    path: format!("/{path}"),
                    kind,
                    image: base.to_string(),
                });
            }
        });
    }
    if let Ok(mut memo) = remembered().lock() {
        memo.insert(key, decided.clone());
    }
    Ok(decided)
}

/// Layer digests and wanted paths to what was found, for this process.
type Memo = HashMap<(Vec<String>, Vec<String>), Vec<Option<DirectoryMetadata>>>;

fn remembered() -> &'static Mutex<Memo> {
    static MEMO: OnceLock<Mutex<Memo>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Streams one layer into a blocking tar reader that looks for `paths`.
async fn scan_layer(
    client: &RegistryClient,
    base: &ImageRef,
    digest: &str,
    paths: Vec<String>,
) -> Result<Vec<Option<Found>>> {
    read_layer(client, base, digest, move |chunks| {
        find_entries(chunks, &paths)
    })
    .await
}

/// Streams one layer of `base` to `reader`, which runs on a blocking thread and may stop early
/// (the rest of the layer is then not downloaded). A `reader` error names the layer.
pub(crate) async fn read_layer<T: Send + 'static>(
    client: &RegistryClient,
    base: &ImageRef,
    digest: &str,
    reader: impl FnOnce(ChunkReader) -> std::result::Result<T, String> + Send + 'static,
) -> Result<T> {
    let read_error = |source| Error::BaseImage {
        image: base.to_string(),
        source: Box::new(source),
    };
    let mut stream = Box::pin(client.blob_stream(base, digest).await.map_err(read_error)?);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let layer_name = format!("{base} layer {digest}");
    let reader = tokio::task::spawn_blocking(move || {
        let chunks = ChunkReader {
            receiver,
            current: Bytes::new(),
        };
        reader(chunks).map_err(|reason| Error::InvalidManifest {
            location: layer_name,
            reason,
        })
    });
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(read_error)?;
        if sender.send(chunk).await.is_err() {
            // The reader has what it needs and stopped: the rest of the layer is not needed.
            break;
        }
    }
    drop(sender);
    reader.await.map_err(|error| Error::Task {
        reason: error.to_string(),
    })?
}

/// Bytes from the download, read on a blocking thread.
pub(crate) struct ChunkReader {
    receiver: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let count = buffer.len().min(self.current.len());
        buffer[..count].copy_from_slice(&self.current[..count]);
        self.current = self.current.slice(count..);
        Ok(count)
    }
}

/// Reads a layer (gzip or plain tar) and reports what it says about each of `paths`. Stops
/// once every path has an entry in this layer.
fn find_entries(
    layer: impl Read,
    paths: &[String],
) -> std::result::Result<Vec<Option<Found>>, String> {
    let reader = uncompressed(layer)?.ok_or_else(|| {
        "the layer is zstd-compressed, which the native builder cannot read to find the \
         metadata of the working directory's parents; use a top-level --workdir such as /app"
            .to_owned()
    })?;
    let mut archive = tar::Archive::new(reader);
    let mut found: Vec<Option<Found>> = vec![None; paths.len()];
    let mut entries = archive
        .entries()
        .map_err(|error| format!("not a tar: {error}"))?;
    for entry in &mut entries {
        let entry = entry.map_err(|error| format!("not a valid tar: {error}"))?;
        let name = entry
            .path()
            .map_err(|error| format!("bad entry name: {error}"))?
            .to_string_lossy()
            .into_owned();
        let name = normalise_entry_name(&name);
        let header = entry.header();
        let (directory, file_name) = match name.rsplit_once('/') {
            Some((directory, file_name)) => (directory, file_name),
            None => ("", name.as_str()),
        };
        if let Some(deleted) = file_name.strip_prefix(".wh.") {
            let hidden_root = if deleted == ".wh..opq" {
                // An opaque directory hides everything below it from lower layers.
                Some((directory.to_owned(), false))
            } else if directory.is_empty() {
                Some((deleted.to_owned(), true))
            } else {
                Some((format!("{directory}/{deleted}"), true))
            };
            if let Some((root, includes_root)) = hidden_root {
                for (path, slot) in paths.iter().zip(found.iter_mut()) {
                    let below = path
                        .strip_prefix(&root)
                        .is_some_and(|rest| rest.starts_with('/'))
                        || root.is_empty();
                    if slot.is_none() && ((includes_root && *path == root) || below) {
                        *slot = Some(Found::Hidden);
                    }
                }
            }
            continue;
        }
        let Some(index) = paths.iter().position(|path| *path == name) else {
            continue;
        };
        let kind = header.entry_type();
        found[index] = Some(if kind.is_dir() {
            Found::Directory(DirectoryMetadata {
                mode: header.mode().map_err(|error| format!("{name}: {error}"))? & 0o7777,
                uid: header.uid().map_err(|error| format!("{name}: {error}"))?,
                gid: header.gid().map_err(|error| format!("{name}: {error}"))?,
                user: header
                    .username()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
                    .to_owned(),
                group: header
                    .groupname()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
                    .to_owned(),
                mtime: header.mtime().map_err(|error| format!("{name}: {error}"))?,
            })
        } else if kind.is_symlink() {
            Found::Other("a symlink")
        } else if kind.is_hard_link() {
            Found::Other("a hard link")
        } else {
            Found::Other("a file")
        });
        if found
            .iter()
            .all(|slot| matches!(slot, Some(Found::Directory(_) | Found::Other(_))))
        {
            break;
        }
    }
    Ok(found)
}

/// The tar inside a layer, gzip or plain; `None` for zstd, which this crate does not read.
pub(crate) fn uncompressed<'a>(
    layer: impl Read + 'a,
) -> std::result::Result<Option<Box<dyn Read + 'a>>, String> {
    let mut buffered = BufReader::new(layer);
    let magic = buffered
        .fill_buf()
        .map_err(|error| format!("cannot read the layer: {error}"))?;
    Ok(match magic {
        [0x1f, 0x8b, ..] => Some(Box::new(flate2::bufread::MultiGzDecoder::new(buffered))),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => None,
        _ => Some(Box::new(buffered)),
    })
}

/// `./var/tmp/` and `var/tmp` are the same entry.
pub(crate) fn normalise_entry_name(name: &str) -> String {
    name.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Item<'a> {
        Dir(&'a str, u32, u64),
        Symlink(&'a str),
        File(&'a str),
    }

    fn layer(items: &[Item<'_>], gzip: bool) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            match item {
                Item::Dir(name, mode, uid) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_uid(*uid);
                    header.set_gid(*uid);
                    header.set_mtime(1_700_000_000);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, name, std::io::empty())
                        .unwrap();
                }
                Item::Symlink(name) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, name, "/run").unwrap();
                }
                Item::File(name) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(0);
                    header.set_mode(0o644);
                    builder
                        .append_data(&mut header, name, std::io::empty())
                        .unwrap();
                }
            }
        }
        let tar = builder.into_inner().unwrap();
        if !gzip {
            return tar;
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &tar).unwrap();
        encoder.finish().unwrap()
    }

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|path| (*path).to_owned()).collect()
    }

    #[test]
    fn directory_metadata_is_read_from_gzip_and_plain_layers() {
        let items = [
            Item::Dir("./", 0o755, 0),
            Item::Dir("./home/", 0o755, 0),
            Item::Dir("./home/u/", 0o700, 1000),
            Item::Dir("./var/", 0o755, 0),
            Item::Dir("./var/tmp/", 0o1777, 0),
        ];
        for gzip in [true, false] {
            let found = find_entries(
                &layer(&items, gzip)[..],
                &paths(&["var", "var/tmp", "home/u", "opt"]),
            )
            .unwrap();
            let Some(Found::Directory(tmp)) = &found[1] else {
                panic!("{found:?}")
            };
            assert_eq!((tmp.mode, tmp.uid, tmp.mtime), (0o1777, 0, 1_700_000_000));
            let Some(Found::Directory(home)) = &found[2] else {
                panic!("{found:?}")
            };
            assert_eq!((home.mode, home.uid, home.gid), (0o700, 1000, 1000));
            assert_eq!(found[3], None);
        }
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_layers() {
        let items = [
            Item::File("var/.wh.tmp"),
            Item::Dir("home/", 0o755, 0),
            Item::File("home/.wh..wh..opq"),
        ];
        let found = find_entries(
            &layer(&items, true)[..],
            &paths(&["var", "var/tmp", "var/tmp/x", "home", "home/u"]),
        )
        .unwrap();
        assert_eq!(found[0], None);
        assert_eq!(found[1], Some(Found::Hidden));
        assert_eq!(found[2], Some(Found::Hidden));
        assert!(matches!(found[3], Some(Found::Directory(_))));
        assert_eq!(found[4], Some(Found::Hidden));
    }

    #[test]
    fn symlinks_and_files_are_reported_by_kind() {
        let items = [Item::Symlink("var/run"), Item::File("srv")];
        let found = find_entries(&layer(&items, true)[..], &paths(&["var/run", "srv"])).unwrap();
        assert_eq!(
            found,
            vec![
                Some(Found::Other("a symlink")),
                Some(Found::Other("a file"))
            ]
        );
    }

    #[test]
    fn zstd_layers_are_refused_with_advice() {
        let error = find_entries(&[0x28, 0xb5, 0x2f, 0xfd, 0][..], &paths(&["var"])).unwrap_err();
        assert!(error.contains("--workdir"), "{error}");
    }
}
