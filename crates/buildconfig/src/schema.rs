//! Shared schema checks over parsed YAML trees: allowed keys (with a "did you mean" hint),
//! expected types, and path resolution for `build.directory`. Every failure is recorded in
//! [`Problems`] as a [`crate::Diagnostic`] pointing at the key or value in its file, and the
//! check returns [`Reported`] so that its caller can go on with the next one.

use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Checked, DiagnosticKind, Problems, Reported};
use crate::merge::kind;
use crate::values::Problem;
use crate::yaml::{FieldPath, Source, Target};

/// Reports every key of `map` that is not in `allowed`, suggesting the nearest allowed key.
pub(crate) fn check_keys(
    problems: &mut Problems,
    source: &Source<'_>,
    map: &Map<String, Value>,
    field: &FieldPath,
    allowed: &[&str],
    what: &str,
) -> Checked<()> {
    check_keys_at(problems, source, map, || field.clone(), allowed, what)
}

/// [`check_keys`] for a map whose path (`field`) is only built if there is an error.
pub(crate) fn check_keys_at(
    problems: &mut Problems,
    source: &Source<'_>,
    map: &Map<String, Value>,
    field: impl Fn() -> FieldPath,
    allowed: &[&str],
    what: &str,
) -> Checked<()> {
    let mut checked = Ok(());
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
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
            checked = Err(source.report(
                problems,
                &field().key(key),
                Target::Key,
                DiagnosticKind::UnknownKey,
                format!("unknown key `{}` in {what}", key.escape_debug()),
                help,
            ));
        }
    }
    checked
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

/// `value` as a mapping, or a reported problem saying what was found instead.
pub(crate) fn expect_map<'v>(
    problems: &mut Problems,
    source: &Source<'_>,
    value: &'v Value,
    field: &FieldPath,
    what: &str,
) -> Checked<&'v Map<String, Value>> {
    value.as_object().ok_or_else(|| {
        source.report(
            problems,
            field,
            Target::Value,
            DiagnosticKind::WrongType,
            format!("expected {what} (a mapping), found {}", kind(value)),
            "write `key: value` pairs indented under this key",
        )
    })
}

/// The optional string at `map[key]`: absent or null is `None`, anything but a string is a
/// problem.
pub(crate) fn optional_string<'v>(
    problems: &mut Problems,
    source: &Source<'_>,
    map: &'v Map<String, Value>,
    field: &FieldPath,
    key: &str,
) -> Checked<Option<&'v str>> {
    string_value(problems, source, map.get(key), || field.clone(), key)
}

/// [`optional_string`] for a value already looked up under `key` in the map at `field`; the
/// path is only built if there is an error.
pub(crate) fn string_value<'v>(
    problems: &mut Problems,
    source: &Source<'_>,
    value: Option<&'v Value>,
    field: impl Fn() -> FieldPath,
    key: &str,
) -> Checked<Option<&'v str>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(source.report(
            problems,
            &field().key(key),
            Target::Value,
            DiagnosticKind::WrongType,
            format!("expected a string, found {}", kind(other)),
            format!("quote the value, e.g. `{key}: \"...\"`"),
        )),
    }
}

/// An optional free-form mapping at `map[key]` (absent or null is `None`).
pub(crate) fn optional_map<'v>(
    problems: &mut Problems,
    source: &Source<'_>,
    map: &'v Map<String, Value>,
    field: &FieldPath,
    key: &str,
) -> Checked<Option<&'v Map<String, Value>>> {
    map_value(problems, source, map.get(key), || field.clone(), key)
}

/// [`optional_map`] for a value already looked up under `key` in the map at `field`; the path
/// is only built if there is an error.
pub(crate) fn map_value<'v>(
    problems: &mut Problems,
    source: &Source<'_>,
    value: Option<&'v Value>,
    field: impl Fn() -> FieldPath,
    key: &str,
) -> Checked<Option<&'v Map<String, Value>>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(value) => expect_map(
            problems,
            source,
            value,
            &field().key(key),
            &format!("`{key}`"),
        )
        .map(Some),
    }
}

/// Reports a value problem (from a checking constructor) at the position of `field`.
pub(crate) fn at(
    problems: &mut Problems,
    source: &Source<'_>,
    field: &FieldPath,
    kind: DiagnosticKind,
    problem: impl Into<Problem>,
) -> Reported {
    let problem = problem.into();
    source.report(
        problems,
        field,
        Target::Value,
        kind,
        problem.problem,
        problem.help,
    )
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
