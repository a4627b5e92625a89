//! Shared schema checks over parsed YAML trees: allowed keys (with a "did you mean" hint),
//! expected types, and path resolution for `build.directory`. Every failure becomes an
//! [`crate::Error::Invalid`] pointing at the key or value in its file.

use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::Result;
use crate::merge::kind;
use crate::values::Problem;
use crate::yaml::{FieldPath, Source, Target};

/// Fails on the first key of `map` that is not in `allowed`, suggesting the nearest allowed key.
pub(crate) fn check_keys(
    source: &Source<'_>,
    map: &Map<String, Value>,
    field: &FieldPath,
    allowed: &[&str],
    what: &str,
) -> Result<()> {
    check_keys_at(source, map, || field.clone(), allowed, what)
}

/// [`check_keys`] for a map whose path (`field`) is only built if there is an error.
pub(crate) fn check_keys_at(
    source: &Source<'_>,
    map: &Map<String, Value>,
    field: impl Fn() -> FieldPath,
    allowed: &[&str],
    what: &str,
) -> Result<()> {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            let field = field();
            let help = match nearest(key, allowed) {
                Some(near) => format!(
                    "did you mean `{near}`? The keys allowed here are: {}",
                    allowed.join(", ")
                ),
                None => format!(
                    "remove it; the keys allowed here are: {}",
                    allowed.join(", ")
                ),
            };
            return Err(source.invalid(
                &field.key(key),
                Target::Key,
                format!("unknown key `{}` in {what}", key.escape_debug()),
                help,
            ));
        }
    }
    Ok(())
}

/// The allowed key closest to `key`, if it is close enough to be a plausible typo.
pub(crate) fn nearest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let lowered = key.to_lowercase().replace('-', "_");
    allowed
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(&lowered, candidate), *candidate))
        .filter(|(distance, candidate)| {
            *distance <= 2.max(candidate.len() / 3)
                || (lowered.len() >= 4 && candidate.starts_with(lowered.as_str()))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// `value` as a mapping, or an error saying what was found instead.
pub(crate) fn expect_map<'v>(
    source: &Source<'_>,
    value: &'v Value,
    field: &FieldPath,
    what: &str,
) -> Result<&'v Map<String, Value>> {
    value.as_object().ok_or_else(|| {
        source.invalid(
            field,
            Target::Value,
            format!("expected {what} (a mapping), found {}", kind(value)),
            "write `key: value` pairs indented under this key",
        )
    })
}

/// The optional string at `map[key]`: absent or null is `None`, anything but a string is an error.
pub(crate) fn optional_string<'v>(
    source: &Source<'_>,
    map: &'v Map<String, Value>,
    field: &FieldPath,
    key: &str,
) -> Result<Option<&'v str>> {
    string_value(source, map.get(key), || field.clone(), key)
}

/// [`optional_string`] for a value already looked up under `key` in the map at `field`; the
/// path is only built if there is an error.
pub(crate) fn string_value<'v>(
    source: &Source<'_>,
    value: Option<&'v Value>,
    field: impl Fn() -> FieldPath,
    key: &str,
) -> Result<Option<&'v str>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(source.invalid(
            &field().key(key),
            Target::Value,
            format!("expected a string, found {}", kind(other)),
            format!("quote the value, e.g. `{key}: \"...\"`"),
        )),
    }
}

/// An optional free-form mapping at `map[key]` (absent or null is `None`).
pub(crate) fn optional_map<'v>(
    source: &Source<'_>,
    map: &'v Map<String, Value>,
    field: &FieldPath,
    key: &str,
) -> Result<Option<&'v Map<String, Value>>> {
    map_value(source, map.get(key), || field.clone(), key)
}

/// [`optional_map`] for a value already looked up under `key` in the map at `field`; the path
/// is only built if there is an error.
pub(crate) fn map_value<'v>(
    source: &Source<'_>,
    value: Option<&'v Value>,
    field: impl Fn() -> FieldPath,
    key: &str,
) -> Result<Option<&'v Map<String, Value>>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(value) => expect_map(source, value, &field().key(key), &format!("`{key}`")).map(Some),
    }
}

/// Attaches the position of `field` to a value problem.
pub(crate) fn at(
    source: &Source<'_>,
    field: &FieldPath,
    problem: impl Into<Problem>,
) -> crate::Error {
    let problem = problem.into();
    source.invalid(field, Target::Value, problem.problem, problem.help)
}

/// Resolves a `build.directory` against the folder of the file that names it, lexically: the
/// result is absolute, with `.` removed and `..` applied. No file-system access beyond the
/// current directory for a relative file path.
pub(crate) fn resolve_directory(file: &Path, directory: &str) -> PathBuf {
    let base = file.parent().unwrap_or(Path::new(""));
    let joined = base.join(directory);
    if joined.is_absolute() {
        // `normalize` does all that `absolute` would do to an absolute path, without a copy.
        return normalize(&joined);
    }
    let absolute = std::path::absolute(&joined).unwrap_or(joined);
    normalize(&absolute)
}

fn normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !normalized.pop() {
                    normalized.push(component);
                }
            }
            other => normalized.push(other),
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_suggests_close_keys_only() {
        let allowed = ["location_name", "code_source", "build", "agent_queue"];
        assert_eq!(nearest("location_nme", &allowed), Some("location_name"));
        assert_eq!(nearest("Location-Name", &allowed), Some("location_name"));
        assert_eq!(nearest("buidl", &allowed), Some("build"));
        assert_eq!(nearest("code", &allowed), Some("code_source"));
        assert_eq!(nearest("completely_different", &allowed), None);
    }

    #[test]
    fn resolve_directory_is_relative_to_the_file_folder() {
        assert_eq!(
            resolve_directory(Path::new("/repo/app/dagster_cloud.yaml"), "./pkg/../src"),
            PathBuf::from("/repo/app/src")
        );
        assert_eq!(
            resolve_directory(Path::new("/repo/app/dagster_cloud.yaml"), "/abs/dir"),
            PathBuf::from("/abs/dir")
        );
    }
}
