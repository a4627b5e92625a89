//! The Python version a project asks for, read from its files the way uv reads them: a
//! `.python-version` file (the project's, then its workspace root's), else the lock's
//! `requires-python`, else the project's `[project] requires-python`. From a specifier, the
//! lower bound (`>=3.11` → 3.11): the oldest version the project supports, which is the one
//! its lock was resolved to work with.
//!
//! Used to choose a base image (`python:3.11-slim`); the layer itself is built for the Python
//! the base image has, whatever the project asks for.

use std::path::{Path, PathBuf};

use crate::lock::LockedProject;

/// The largest file read; real ones are a few kilobytes (a lock: a few hundred).
const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// A `major.minor` Python version a project asks for, and the file that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedPython {
    /// Major version (3).
    pub major: u32,
    /// Minor version, e.g. 12.
    pub minor: u32,
    /// The file it was read from.
    pub source: PathBuf,
}

/// The Python `project` asks for, if any of its files says.
pub fn requested_python(project: &LockedProject) -> Option<RequestedPython> {
    let mut candidates = vec![project.project_dir.join(".python-version")];
    if project.root_dir != project.project_dir {
        candidates.push(project.root_dir.join(".python-version"));
    }
    for path in candidates {
        if let Some(text) = read_small(&path)
            && let Some(line) = text
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty() && !line.starts_with('#'))
            && let Some((major, minor)) = major_minor(line.trim_start_matches("cpython-"))
        {
            return Some(RequestedPython {
                major,
                minor,
                source: path,
            });
        }
    }
    for path in [
        project.lock_path.clone(),
        project.project_dir.join("pyproject.toml"),
    ] {
        let Some(text) = read_small(&path) else {
            continue;
        };
        let Ok(document) = text.parse::<toml::Table>() else {
            continue;
        };
        let specifier = document
            .get("requires-python")
            .or_else(|| document.get("project")?.get("requires-python"))
            .and_then(toml::Value::as_str);
        if let Some((major, minor)) = specifier.and_then(lower_bound) {
            return Some(RequestedPython {
                major,
                minor,
                source: path,
            });
        }
    }
    None
}

fn read_small(path: &Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    (metadata.is_file() && metadata.len() <= MAX_FILE_SIZE)
        .then(|| std::fs::read_to_string(path).ok())
        .flatten()
}

/// `3.12`, `3.12.4` or `3.12t` → (3, 12).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// The lower bound of a specifier such as `>=3.10, <3.14` or `~=3.11` or `==3.12.*`.
fn lower_bound(specifier: &str) -> Option<(u32, u32)> {
    specifier.split(',').map(str::trim).find_map(|clause| {
        let version = clause
            .strip_prefix(">=")
            .or_else(|| clause.strip_prefix("~="))
            .or_else(|| clause.strip_prefix("=="))?;
        major_minor(version.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(dir: &Path, root: &Path) -> LockedProject {
        LockedProject {
            project_dir: dir.to_path_buf(),
            root_dir: root.to_path_buf(),
            lock_path: root.join("uv.lock"),
            package: None,
        }
    }

    #[test]
    fn specifiers_give_their_lower_bound() {
        assert_eq!(lower_bound(">=3.10, <3.14"), Some((3, 10)));
        assert_eq!(lower_bound("<3.14,>=3.11"), Some((3, 11)));
        assert_eq!(lower_bound("~=3.12.1"), Some((3, 12)));
        assert_eq!(lower_bound("==3.13.*"), Some((3, 13)));
        assert_eq!(lower_bound("<3.14"), None);
        assert_eq!(major_minor("3.13t"), Some((3, 13)));
    }

    #[test]
    fn python_version_files_come_first_then_the_lock_then_the_project() {
        let root = tempfile::tempdir().unwrap();
        let member = root.path().join("projects/a");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(
            member.join("pyproject.toml"),
            "[project]\nname = \"a\"\nrequires-python = \">=3.9\"\n",
        )
        .unwrap();
        let locked = project(&member, root.path());
        let found = |expected: (u32, u32), source: PathBuf| {
            let requested = requested_python(&locked).expect("a version");
            assert_eq!((requested.major, requested.minor), expected);
            assert_eq!(requested.source, source);
        };
        found((3, 9), member.join("pyproject.toml"));
        std::fs::write(
            root.path().join("uv.lock"),
            "version = 1\nrequires-python = \">=3.11, <3.14\"\n",
        )
        .unwrap();
        found((3, 11), root.path().join("uv.lock"));
        std::fs::write(root.path().join(".python-version"), "3.12.4\n").unwrap();
        found((3, 12), root.path().join(".python-version"));
        std::fs::write(member.join(".python-version"), "# pinned\ncpython-3.13\n").unwrap();
        found((3, 13), member.join(".python-version"));
    }
}
