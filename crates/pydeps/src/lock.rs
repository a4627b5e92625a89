//! Finding the `uv.lock` that pins a project's dependencies: the project's own, or its uv
//! workspace root's.
//!
//! uv's rule, which this follows: a project belongs to the nearest ancestor whose
//! `pyproject.toml` has a `[tool.uv.workspace]` table whose `members` globs match the project's
//! path and whose `exclude` globs do not; that root holds the one `uv.lock` of the workspace.
//! A project in no workspace is its own root. Reading the lock itself is uv's job.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The name of uv's lock file.
const LOCK_FILE: &str = "uv.lock";
/// The largest `pyproject.toml` read; real ones are a few kilobytes.
const MAX_PYPROJECT_SIZE: u64 = 4 * 1024 * 1024;

/// A project whose dependencies are pinned by a `uv.lock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedProject {
    /// The project directory (canonical).
    pub project_dir: PathBuf,
    /// The directory holding `uv.lock`: the project itself or its workspace root.
    pub root_dir: PathBuf,
    /// The lock file.
    pub lock_path: PathBuf,
    /// The project's `[project].name`, used to select its dependencies in a workspace; `None`
    /// for a project without a `[project]` table (a virtual workspace root: everything locked).
    pub package: Option<String>,
}

#[derive(Deserialize, Default)]
struct Pyproject {
    project: Option<ProjectTable>,
    tool: Option<ToolTable>,
}

#[derive(Deserialize)]
struct ProjectTable {
    name: Option<String>,
}

#[derive(Deserialize)]
struct ToolTable {
    uv: Option<UvTable>,
}

#[derive(Deserialize)]
struct UvTable {
    workspace: Option<WorkspaceTable>,
}

#[derive(Deserialize, Default)]
struct WorkspaceTable {
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

/// Finds the lock for the project in `project_dir`; `Ok(None)` when there is none (the project
/// is not managed by uv, or was never locked).
pub fn find_lock(project_dir: &Path) -> Result<Option<LockedProject>> {
    let project_dir = std::fs::canonicalize(project_dir).map_err(|source| Error::ReadProject {
        path: project_dir.to_path_buf(),
        source,
    })?;
    let own = read_pyproject(&project_dir.join("pyproject.toml"))?;
    let package = own
        .as_ref()
        .and_then(|pyproject| pyproject.project.as_ref())
        .and_then(|project| project.name.clone());
    let mut root_dir = project_dir.clone();
    for ancestor in project_dir.ancestors() {
        let read;
        let pyproject = if ancestor == project_dir {
            own.as_ref()
        } else {
            read = read_pyproject(&ancestor.join("pyproject.toml"))?;
            read.as_ref()
        };
        let Some(workspace) = pyproject.and_then(workspace_of) else {
            continue;
        };
        let relative = project_dir
            .strip_prefix(ancestor)
            .expect("an ancestor is a prefix");
        if ancestor == project_dir || workspace.includes(relative) {
            root_dir = ancestor.to_path_buf();
            break;
        }
    }
    let lock_path = root_dir.join(LOCK_FILE);
    if !lock_path.is_file() {
        return Ok(None);
    }
    Ok(Some(LockedProject {
        project_dir,
        root_dir,
        lock_path,
        package,
    }))
}

fn workspace_of(pyproject: &Pyproject) -> Option<&WorkspaceTable> {
    pyproject.tool.as_ref()?.uv.as_ref()?.workspace.as_ref()
}

impl WorkspaceTable {
    /// Whether the project at `relative` (to the workspace root) is a member.
    fn includes(&self, relative: &Path) -> bool {
        let Some(segments) = segments(relative) else {
            return false;
        };
        let matches = |patterns: &[String]| {
            patterns.iter().any(|pattern| {
                let pattern: Vec<&str> = pattern
                    .split('/')
                    .filter(|part| !part.is_empty() && *part != ".")
                    .collect();
                glob_path(&pattern, &segments)
            })
        };
        matches(&self.members) && !matches(&self.exclude)
    }
}

/// The UTF-8 segments of a relative path; `None` if one is not UTF-8.
fn segments(relative: &Path) -> Option<Vec<&str>> {
    relative
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_str()),
            _ => None,
        })
        .collect()
}

/// Matches path segments against glob segments, where `**` stands for any number of segments.
fn glob_path(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| glob_path(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((segment, path_rest)) => {
                glob_segment(first.as_bytes(), segment.as_bytes()) && glob_path(rest, path_rest)
            }
            None => false,
        },
    }
}

/// Matches one segment against `*`, `?` and `[...]` (with `!` or `^` negation) wildcards.
fn glob_segment(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| glob_segment(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && glob_segment(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some(close) = rest.iter().skip(1).position(|byte| *byte == b']') else {
                return name.first() == Some(&b'[') && glob_segment(rest, &name[1..]);
            };
            let class = &rest[..close + 1];
            let after = &rest[close + 2..];
            let (negated, class) = match class.split_first() {
                Some((b'!' | b'^', class)) => (true, class),
                _ => (false, class),
            };
            let Some((first, name_rest)) = name.split_first() else {
                return false;
            };
            in_class(class, *first) != negated && glob_segment(after, name_rest)
        }
        Some((literal, rest)) => name.first() == Some(literal) && glob_segment(rest, &name[1..]),
    }
}

fn in_class(class: &[u8], byte: u8) -> bool {
    let mut index = 0;
    while index < class.len() {
        if index + 2 < class.len() && class[index + 1] == b'-' {
            if (class[index]..=class[index + 2]).contains(&byte) {
                return true;
            }
            index += 3;
        } else {
            if class[index] == byte {
                return true;
            }
            index += 1;
        }
    }
    false
}

/// Reads a `pyproject.toml`; `Ok(None)` when there is none.
fn read_pyproject(path: &Path) -> Result<Option<Pyproject>> {
    let read_error = |source| Error::ReadProject {
        path: path.to_path_buf(),
        source,
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => metadata,
        Ok(_) => return Ok(None),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(read_error(error)),
    };
    if metadata.len() > MAX_PYPROJECT_SIZE {
        return Err(Error::Pyproject {
            path: path.to_path_buf(),
            message: format!(
                "the file is {} bytes, more than the {MAX_PYPROJECT_SIZE} a pyproject.toml may have",
                metadata.len()
            ),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    toml::from_str(&text)
        .map(Some)
        .map_err(|error: toml::de::Error| Error::Pyproject {
            path: path.to_path_buf(),
            message: position_message(&text, &error),
        })
}

/// The TOML error's message, prefixed with `line L, column C` when it has a position.
fn position_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests;
