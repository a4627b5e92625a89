//! Turning what `uv pip install --target` wrote into a virtual environment for the image's
//! interpreter, as a plan of layer entries (uv's output and its cache are only read).
//!
//! uv's flat target directory becomes `<venv>/lib/pythonX.Y/site-packages`, except its `bin/`,
//! which becomes `<venv>/bin`. Console scripts there name the interpreter uv ran with (the
//! machine's); their first line is replaced with `#!<venv>/bin/python`, and the `RECORD` of each
//! package points at the moved, rewritten scripts (path, hash and size), so that tools reading
//! it (`pip uninstall`, `pip show -f`) stay right. The environment's own files are what
//! `python -m venv` writes: `pyvenv.cfg` (`home` is the interpreter's directory) and
//! `bin/python`, `bin/python3`, `bin/pythonX.Y` as symlinks to the image's interpreter. Data
//! files a wheel installs into the environment's root (rare; Jupyter kernel specs, for one) stay
//! under site-packages, where uv's target layout puts them.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::layer::{Content, LayerEntry};
use crate::target::TargetPython;

/// The lock file uv leaves in a target directory.
const UV_TARGET_LOCK: &str = ".lock";

/// The entries of the environment at `venv_dir` (absolute) made from uv's `installed`
/// directory, keyed by path in the image without the leading `/`.
pub(crate) fn plan_venv(
    installed: &Path,
    venv_dir: &str,
    target: &TargetPython,
) -> Result<BTreeMap<String, LayerEntry>> {
    let root = venv_dir.trim_matches('/').to_owned();
    let site = format!("{root}/{}", target.site_packages());
    let mut entries = BTreeMap::new();
    let mut prefix = String::new();
    for segment in target.site_packages().split('/') {
        prefix = if prefix.is_empty() {
            format!("{root}/{segment}")
        } else {
            format!("{prefix}/{segment}")
        };
        entries.insert(prefix.clone(), LayerEntry::Directory);
    }
    entries.insert(root.clone(), LayerEntry::Directory);
    entries.insert(format!("{root}/bin"), LayerEntry::Directory);

    let (home, _) = target
        .interpreter
        .rsplit_once('/')
        .expect("the interpreter path is absolute");
    let home = if home.is_empty() { "/" } else { home };
    let pyvenv = format!(
        "home = {home}\ninclude-system-site-packages = false\nversion = {}\n",
        target.version
    );
    entries.insert(
        format!("{root}/pyvenv.cfg"),
        LayerEntry::File {
            content: Content::Bytes(pyvenv.into_bytes()),
            executable: false,
        },
    );
    let versioned = format!("python{}.{}", target.version.major, target.version.minor);
    for (name, link) in [
        ("python", target.interpreter.as_str()),
        ("python3", "python"),
        (versioned.as_str(), "python"),
    ] {
        entries.insert(
            format!("{root}/bin/{name}"),
            LayerEntry::Symlink {
                target: link.to_owned(),
            },
        );
    }

    // Scripts first, so each package's RECORD can be given their new hashes.
    let shebang = format!("#!{venv_dir}/bin/python\n");
    let mut moved: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let bin = installed.join("bin");
    if bin.is_dir() {
        let mut scripts = BTreeMap::new();
        walk(&bin, "", &mut scripts)?;
        for (relative, entry) in scripts {
            let path = format!("{root}/bin/{relative}");
            if entries.contains_key(&path) {
                // The environment's own `python` links win over a package's file of that name.
                continue;
            }
            let entry = match entry {
                LayerEntry::File {
                    content: Content::Path { path: source, size },
                    executable,
                } => {
                    let bytes = read(&source)?;
                    let content = match rewrite_shebang(&bytes, &shebang) {
                        Some(rewritten) => Content::Bytes(rewritten),
                        None => Content::Path { path: source, size },
                    };
                    let (hash, size) = match &content {
                        Content::Bytes(rewritten) => {
                            (record_hash(rewritten), rewritten.len() as u64)
                        }
                        Content::Path { .. } => (record_hash(&bytes), size),
                    };
                    moved.insert(format!("bin/{relative}"), (hash, size));
                    LayerEntry::File {
                        content,
                        executable,
                    }
                }
                other => other,
            };
            entries.insert(path, entry);
        }
    }

    let mut packages = BTreeMap::new();
    walk(installed, "", &mut packages)?;
    for (relative, entry) in packages {
        let top = relative.split('/').next().unwrap_or_default();
        if top == "bin" || relative == UV_TARGET_LOCK {
            continue;
        }
        let is_record =
            relative.ends_with(".dist-info/RECORD") && relative.matches('/').count() == 1;
        let entry = match entry {
            LayerEntry::File {
                content: Content::Path { path, .. },
                executable,
            } if is_record => LayerEntry::File {
                content: Content::Bytes(rewrite_record(&read(&path)?, &moved, target)),
                executable,
            },
            other => other,
        };
        entries.insert(format!("{site}/{relative}"), entry);
    }
    Ok(entries)
}

/// Lists `directory` recursively into `entries`, keyed by `/`-separated path below it.
fn walk(
    directory: &Path,
    relative_dir: &str,
    entries: &mut BTreeMap<String, LayerEntry>,
) -> Result<()> {
    let read_error = |source| Error::ReadInstalled {
        path: directory.to_path_buf(),
        source,
    };
    for child in std::fs::read_dir(directory).map_err(read_error)? {
        let child = child.map_err(read_error)?;
        let path = child.path();
        let name = child.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::NonUtf8Path { path });
        };
        let relative = if relative_dir.is_empty() {
            name.to_owned()
        } else {
            format!("{relative_dir}/{name}")
        };
        let metadata = std::fs::symlink_metadata(&path).map_err(|source| Error::ReadInstalled {
            path: path.clone(),
            source,
        })?;
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            entries.insert(relative.clone(), LayerEntry::Directory);
            walk(&path, &relative, entries)?;
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|source| Error::ReadInstalled {
                path: path.clone(),
                source,
            })?;
            let Some(target) = target.to_str() else {
                return Err(Error::NonUtf8Path { path });
            };
            entries.insert(
                relative,
                LayerEntry::Symlink {
                    target: target.to_owned(),
                },
            );
        } else if file_type.is_file() {
            entries.insert(
                relative,
                LayerEntry::File {
                    content: Content::Path {
                        path,
                        size: metadata.len(),
                    },
                    executable: is_executable(&metadata),
                },
            );
        } else {
            return Err(Error::UnsupportedFileType { path });
        }
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

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ReadInstalled {
        path: path.to_path_buf(),
        source,
    })
}

/// The script with its interpreter line replaced by `shebang`, or `None` when it does not
/// start with a Python interpreter line. uv writes `#!/abs/path/python` or, for paths that are
/// too long or hold spaces, a `/bin/sh` trampoline of three lines (`#!/bin/sh`, `'''exec'
/// '/abs/path/python' "$0" "$@"`, `' '''`); both name the machine's Python.
pub(crate) fn rewrite_shebang(script: &[u8], shebang: &str) -> Option<Vec<u8>> {
    let lines: Vec<&[u8]> = script.splitn(4, |byte| *byte == b'\n').collect();
    let first = lines.first()?.strip_prefix(b"#!")?;
    let trampoline = first.trim_ascii() == b"/bin/sh"
        && lines
            .get(1)
            .is_some_and(|line| line.starts_with(b"'''exec' "))
        && lines
            .get(2)
            .is_some_and(|line| line.trim_ascii() == b"' '''");
    let skip = if trampoline {
        3
    } else {
        let interpreter = first.trim_ascii().split(u8::is_ascii_whitespace).next()?;
        let name = interpreter.rsplit(|byte| *byte == b'/').next()?;
        if !interpreter.starts_with(b"/") || !name.starts_with(b"python") {
            return None;
        }
        1
    };
    let mut rewritten = shebang.as_bytes().to_vec();
    let rest_start: usize = lines.iter().take(skip).map(|line| line.len() + 1).sum();
    rewritten.extend_from_slice(script.get(rest_start..).unwrap_or_default());
    Some(rewritten)
}

/// A `RECORD` whose `bin/` rows point at the scripts' place in the environment, with the
/// hashes and sizes of what the layer holds.
fn rewrite_record(
    record: &[u8],
    moved: &BTreeMap<String, (String, u64)>,
    target: &TargetPython,
) -> Vec<u8> {
    let up = "../".repeat(target.site_packages().split('/').count());
    let text = String::from_utf8_lossy(record);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let row = line.trim_end_matches(['\n', '\r']);
        let path = row.split(',').next().unwrap_or_default();
        match moved.get(path) {
            Some((hash, size)) if !row.starts_with('"') => {
                out.push_str(&format!("{up}{path},sha256={hash},{size}"));
                out.push_str(&line[row.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out.into_bytes()
}

/// The hash a wheel `RECORD` holds: URL-safe base64 of the SHA-256, without padding.
fn record_hash(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests;
