//! A base image as a caller sees it before building on it: its config facts ([`inspect_base`],
//! two small documents) and, when a caller must look inside, the merged file system of its
//! layers ([`read_image_files`]): every entry's kind and symlink target, and the content of
//! the few files the caller names.
//!
//! Reading the files downloads every base layer once (streamed and decompressed on blocking
//! threads, nothing written to disk), because any layer may add, replace or delete (whiteout)
//! an entry. Callers that can remember what they learnt from a base (by [`BaseSummary::digest`])
//! should, so that a rebuild on the same base reads only the two documents.

use std::collections::BTreeMap;
use std::io::Read;

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::Value;

use super::base_dirs::{normalise_entry_name, read_layer, uncompressed};
use super::{Platform, fetch_base};
use crate::client::Scopes;
use crate::error::{Error, Result};
use crate::{ImageRef, RegistryClient};

/// How many base layers are read at once.
const LAYERS_AT_ONCE: usize = 4;

/// What a base image's manifest and config say, for the chosen platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseSummary {
    /// Digest of the platform manifest (`sha256:…`): the same digest means the same files.
    pub digest: String,
    /// The config's `architecture`, e.g. `amd64`.
    pub architecture: String,
    /// The config's `Env`, as `NAME=value` strings.
    pub env: Vec<String>,
    /// `(digest, size)` of each layer, bottom first.
    pub layers: Vec<(String, u64)>,
}

/// Reads the manifest and config of `base` for `platform` (an index is resolved to it).
pub async fn inspect_base(
    client: &RegistryClient,
    base: &ImageRef,
    platform: &Platform,
) -> Result<BaseSummary> {
    client.plan_access(base, &Scopes::pull(base.repository()));
    let fetched = fetch_base(client, base, platform)
        .await
        .map_err(|source| Error::BaseImage {
            image: base.to_string(),
            source: Box::new(source),
        })?;
    let text = |pointer: &str| {
        fetched
            .config
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let env = fetched
        .config
        .pointer("/config/Env")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(BaseSummary {
        digest: fetched.digest,
        architecture: text("/architecture"),
        env,
        layers: fetched.layers,
    })
}

/// What an entry of the merged file system is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageEntry {
    /// A regular file (or a hard link to one).
    File,
    /// A directory.
    Directory,
    /// A symbolic link, with its target as stored.
    Symlink(String),
    /// A device, FIFO or socket.
    Other,
}

/// The merged file system of an image's layers: entries by absolute path (`/usr/bin/python3`),
/// whiteouts applied, with the content of the files asked for.
#[derive(Debug, Clone, Default)]
pub struct ImageFiles {
    entries: BTreeMap<String, ImageEntry>,
    contents: BTreeMap<String, Vec<u8>>,
}

impl ImageFiles {
    /// The entry at `path` (absolute, no `.` or `..`), not following a final symlink. A
    /// directory that only appears as the parent of other entries is a directory too.
    pub fn entry(&self, path: &str) -> Option<&ImageEntry> {
        let path = absolute(path);
        self.entries.get(&path).or_else(|| {
            let below = format!("{}/", path.trim_end_matches('/'));
            self.entries
                .range(below.clone()..)
                .next()
                .filter(|(name, _)| name.starts_with(&below))
                .map(|_| &ImageEntry::Directory)
        })
    }

    /// The names directly in the directory at `path`, sorted; empty when there is none.
    pub fn list(&self, path: &str) -> Vec<String> {
        let prefix = format!("{}/", absolute(path).trim_end_matches('/'));
        let names: std::collections::BTreeSet<&str> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(name, _)| name.starts_with(&prefix))
            .filter_map(|(name, _)| name[prefix.len()..].split('/').next())
            .filter(|name| !name.is_empty())
            .collect();
        names.into_iter().map(str::to_owned).collect()
    }

    /// The content of the file at `path`, if it was asked for and is in the image.
    pub fn content(&self, path: &str) -> Option<&[u8]> {
        self.contents.get(&absolute(path)).map(Vec::as_slice)
    }

    /// Applies one layer on top: its deletions first (they hide only lower layers), then its
    /// entries.
    fn apply(&mut self, layer: LayerFiles) {
        for (root, includes_root) in layer.hidden {
            let below = if root == "/" {
                "/".to_owned()
            } else {
                format!("{root}/")
            };
            if includes_root {
                self.entries.remove(&root);
                self.contents.remove(&root);
            }
            let doomed: Vec<String> = self
                .entries
                .range(below.clone()..)
                .take_while(|(name, _)| name.starts_with(&below))
                .map(|(name, _)| name.clone())
                .collect();
            for name in doomed {
                self.entries.remove(&name);
                self.contents.remove(&name);
            }
        }
        for (path, entry) in layer.entries {
            // A file replaced by another kind loses its old content.
            self.contents.remove(&path);
            self.entries.insert(path, entry);
        }
        self.contents.extend(layer.contents);
    }
}

/// What one layer says.
#[derive(Default)]
struct LayerFiles {
    entries: Vec<(String, ImageEntry)>,
    contents: Vec<(String, Vec<u8>)>,
    /// Paths deleted (whiteout: the path and all below it) or made opaque (only below it).
    hidden: Vec<(String, bool)>,
}

/// Reads the merged file system of `base` (whose layers [`inspect_base`] listed), keeping the
/// content of each regular file named in `read` that is at most `limit` bytes; a name ending
/// in `/` asks for every file directly in that directory.
pub async fn read_image_files(
    client: &RegistryClient,
    base: &ImageRef,
    summary: &BaseSummary,
    read: &[&str],
    limit: u64,
) -> Result<ImageFiles> {
    client.plan_access(base, &Scopes::pull(base.repository()));
    let wanted: Vec<String> = read.iter().map(|path| (*path).to_owned()).collect();
    let layers: Vec<LayerFiles> = futures_util::stream::iter(summary.layers.iter())
        .map(|(digest, _)| {
            let wanted = wanted.clone();
            read_layer(client, base, digest, move |chunks| {
                layer_files(chunks, &wanted, limit)
            })
        })
        .buffered(LAYERS_AT_ONCE)
        .try_collect()
        .await?;
    let mut files = ImageFiles::default();
    for layer in layers {
        files.apply(layer);
    }
    Ok(files)
}

/// Lists one layer's entries, deletions and wanted contents.
fn layer_files(
    layer: impl Read,
    wanted: &[String],
    limit: u64,
) -> std::result::Result<LayerFiles, String> {
    let reader = uncompressed(layer)?.ok_or_else(|| {
        "the layer is zstd-compressed, which the native builder cannot read".to_owned()
    })?;
    let mut archive = tar::Archive::new(reader);
    let mut files = LayerFiles::default();
    let entries = archive
        .entries()
        .map_err(|error| format!("not a tar: {error}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|error| format!("not a valid tar: {error}"))?;
        let name = entry
            .path()
            .map_err(|error| format!("bad entry name: {error}"))?
            .to_string_lossy()
            .into_owned();
        let path = absolute(&normalise_entry_name(&name));
        let (directory, file_name) = path.rsplit_once('/').unwrap_or(("", &path));
        let directory = if directory.is_empty() { "/" } else { directory };
        if let Some(deleted) = file_name.strip_prefix(".wh.") {
            if deleted == ".wh..opq" {
                files.hidden.push((directory.to_owned(), false));
            } else {
                files
                    .hidden
                    .push((absolute(&format!("{directory}/{deleted}")), true));
            }
            continue;
        }
        let kind = entry.header().entry_type();
        let image_entry = if kind.is_dir() {
            ImageEntry::Directory
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|error| format!("{path}: bad link target: {error}"))?
                .map(|target| target.to_string_lossy().into_owned())
                .unwrap_or_default();
            ImageEntry::Symlink(target)
        } else if kind.is_file() || kind.is_hard_link() {
            ImageEntry::File
        } else {
            ImageEntry::Other
        };
        let is_wanted = wanted.iter().any(|want| {
            *want == path
                || want
                    .strip_suffix('/')
                    .is_some_and(|wanted_directory| wanted_directory == directory)
        });
        if is_wanted && kind.is_file() && entry.size() <= limit {
            let mut content = Vec::new();
            entry
                .read_to_end(&mut content)
                .map_err(|error| format!("{path}: {error}"))?;
            files.contents.push((path.clone(), content));
        }
        files.entries.push((path, image_entry));
    }
    Ok(files)
}

/// `usr/bin/` and `/usr/bin` are the same path.
fn absolute(path: &str) -> String {
    format!("/{}", normalise_entry_name(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Item<'a> {
        Dir(&'a str),
        File(&'a str, &'a str),
        Symlink(&'a str, &'a str),
    }

    fn layer(items: &[Item<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            match item {
                Item::Dir(path) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_cksum();
                    builder.append_data(&mut header, path, &[][..]).unwrap();
                }
                Item::File(path, text) => {
                    header.set_size(text.len() as u64);
                    header.set_cksum();
                    builder
                        .append_data(&mut header, path, text.as_bytes())
                        .unwrap();
                }
                Item::Symlink(path, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn merged(layers: &[Vec<u8>], wanted: &[&str]) -> ImageFiles {
        let wanted: Vec<String> = wanted.iter().map(|path| (*path).to_owned()).collect();
        let mut files = ImageFiles::default();
        for bytes in layers {
            files.apply(layer_files(&bytes[..], &wanted, 1024).unwrap());
        }
        files
    }

    #[test]
    fn upper_layers_replace_and_delete_lower_entries() {
        let lower = layer(&[
            Item::Dir("./usr/bin/"),
            Item::File("./usr/bin/python3.11", "elf"),
            Item::Symlink("./usr/bin/python3", "python3.11"),
            Item::Dir("./etc/old/"),
            Item::File("./etc/old/a", "a"),
            Item::Dir("./opt/"),
            Item::File("./opt/x", "x"),
            Item::File("./var/lib/dpkg/status", "Package: libc6\n"),
        ]);
        let upper = layer(&[
            Item::File("usr/bin/.wh.python3", ""),
            Item::File("etc/.wh.old", ""),
            Item::File("opt/.wh..wh..opq", ""),
            Item::File("opt/y", "y"),
            Item::File("var/lib/dpkg/status", "Package: libc6\nVersion: 2.36-9\n"),
        ]);
        let files = merged(&[lower, upper], &["/var/lib/dpkg/status"]);
        assert_eq!(files.entry("/usr/bin/python3"), None);
        assert_eq!(files.entry("/usr/bin/python3.11"), Some(&ImageEntry::File));
        assert_eq!(files.entry("/etc/old"), None);
        assert_eq!(files.entry("/etc/old/a"), None);
        assert_eq!(files.entry("/opt"), Some(&ImageEntry::Directory));
        assert_eq!(files.list("/opt"), vec!["y".to_owned()]);
        assert_eq!(
            files.content("/var/lib/dpkg/status"),
            Some(&b"Package: libc6\nVersion: 2.36-9\n"[..])
        );
        assert_eq!(files.content("/opt/y"), None, "not asked for");
    }

    #[test]
    fn symlinks_keep_their_targets_and_directories_list_their_children() {
        let only = layer(&[
            Item::Symlink("bin", "usr/bin"),
            Item::Dir("usr/bin/"),
            Item::Symlink("usr/bin/python3", "python3.12"),
            Item::File("var/lib/dpkg/status.d/libc6", "Package: libc6\n"),
            Item::File("var/lib/dpkg/status.d/big", &"x".repeat(2000)),
        ]);
        let files = merged(&[only], &["/var/lib/dpkg/status.d/"]);
        assert_eq!(
            files.entry("/bin"),
            Some(&ImageEntry::Symlink("usr/bin".to_owned()))
        );
        assert_eq!(
            files.entry("usr/bin/python3"),
            Some(&ImageEntry::Symlink("python3.12".to_owned()))
        );
        assert_eq!(
            files.list("/"),
            vec!["bin".to_owned(), "usr".to_owned(), "var".to_owned()]
        );
        assert_eq!(
            files.content("/var/lib/dpkg/status.d/libc6"),
            Some(&b"Package: libc6\n"[..])
        );
        assert_eq!(
            files.content("/var/lib/dpkg/status.d/big"),
            None,
            "over the limit"
        );
    }
}
