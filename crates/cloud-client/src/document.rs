//! The location document sent to `deployLocations` (reference-behaviour §3.6 step 3).
//!
//! This is a compatibility boundary with Dagster+: the exact keys and their order are pinned by
//! snapshot tests against what the reference sent. The function is pure; reading the YAML and
//! the state files is the caller's job.

use dagster_deploy_types::GitMetadata;
use serde_json::{Map, Value};

/// PEX build facts, only for `python-executable` build outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PexMetadata {
    /// The PEX tag.
    pub pex_tag: String,
    /// The Python version, e.g. `3.11`.
    pub python_version: String,
}

/// What the deploy step lays over the YAML entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocumentOverlay {
    /// The location name.
    pub location_name: String,
    /// The built image reference (`None` e.g. for a PEX deploy without image).
    pub image: Option<String>,
    /// Git metadata.
    pub git: GitMetadata,
    /// PEX metadata for `python-executable` outputs.
    pub pex: Option<PexMetadata>,
    /// `true` only for docker outputs recorded with `pex_bundle: true`.
    pub pex_bundle: bool,
    /// The stored `defs_state_info` mapping, if any.
    pub defs_state_info: Option<Value>,
}

/// Builds the document: the YAML entry minus `build`, deep-merged with the overlay.
///
/// As in the reference, the overlay always contains `code_source: {}` (so an entry without a
/// code source is sent with an empty one) and null values are removed from the overlay
/// recursively before the merge; mappings merge key by key, anything else is replaced.
/// Existing keys keep their position and new keys are appended, like Python dicts.
pub fn location_document(entry: &Map<String, Value>, overlay: &DocumentOverlay) -> Value {
    let mut document = entry.clone();
    document.shift_remove("build");
    let mut overlay_map = overlay_map(overlay);
    remove_nulls(&mut overlay_map);
    deep_merge(&mut document, overlay_map);
    Value::Object(document)
}

fn overlay_map(overlay: &DocumentOverlay) -> Map<String, Value> {
    let string = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
    let git = &overlay.git;
    let mut git_map = Map::new();
    for (key, value) in [
        ("commit_hash", &git.commit_hash),
        ("url", &git.url),
        ("provider", &git.provider),
        ("repo_owner", &git.repo_owner),
        ("repo_name", &git.repo_name),
        ("base_branch", &git.base_branch),
        ("defs_base_path", &git.defs_base_path),
    ] {
        git_map.insert(key.to_owned(), string(value));
    }

    let mut map = Map::new();
    map.insert(
        "location_name".to_owned(),
        Value::String(overlay.location_name.clone()),
    );
    map.insert("code_source".to_owned(), Value::Object(Map::new()));
    map.insert("image".to_owned(), string(&overlay.image));
    map.insert("git".to_owned(), Value::Object(git_map));
    if let Some(pex) = &overlay.pex {
        let mut pex_map = Map::new();
        pex_map.insert("pex_tag".to_owned(), Value::String(pex.pex_tag.clone()));
        pex_map.insert(
            "python_version".to_owned(),
            Value::String(pex.python_version.clone()),
        );
        map.insert("pex_metadata".to_owned(), Value::Object(pex_map));
    }
    if overlay.pex_bundle {
        map.insert("pex_bundle".to_owned(), Value::Bool(true));
    }
    if let Some(defs_state_info) = &overlay.defs_state_info {
        map.insert("defs_state_info".to_owned(), defs_state_info.clone());
    }
    map
}

/// Removes null values from mappings, recursively; empty mappings stay.
fn remove_nulls(map: &mut Map<String, Value>) {
    map.retain(|_, value| !value.is_null());
    for value in map.values_mut() {
        if let Value::Object(inner) = value {
            remove_nulls(inner);
        }
    }
}

fn deep_merge(onto: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (onto.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                deep_merge(existing, incoming);
            }
            (_, value) => {
                onto.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test entries are objects"),
        }
    }

    #[test]
    fn entry_without_code_source_gets_an_empty_one_and_build_is_dropped() {
        let document = location_document(
            &entry(json!({"location_name": "a", "build": {"registry": "r"}, "image": "old"})),
            &DocumentOverlay {
                location_name: "a".into(),
                image: Some("r:1".into()),
                ..DocumentOverlay::default()
            },
        );
        assert_eq!(
            serde_json::to_string(&document).unwrap(),
            r#"{"location_name":"a","image":"r:1","code_source":{},"git":{}}"#
        );
    }

    #[test]
    fn overlay_merges_into_nested_mappings_and_adds_pex_fields() {
        let document = location_document(
            &entry(json!({
                "location_name": "a",
                "code_source": {"package_name": "a"},
                "git": {"extra": "kept"},
            })),
            &DocumentOverlay {
                location_name: "a".into(),
                image: None,
                git: GitMetadata {
                    commit_hash: Some("abc".into()),
                    provider: Some("github".into()),
                    ..GitMetadata::default()
                },
                pex: Some(PexMetadata {
                    pex_tag: "files=x".into(),
                    python_version: "3.11".into(),
                }),
                pex_bundle: true,
                defs_state_info: Some(json!({"info_mapping": {"k": null, "j": {"version": "1"}}})),
            },
        );
        insta::assert_json_snapshot!(document, @r#"
        {
          "location_name": "a",
          "code_source": {
            "package_name": "a"
          },
          "git": {
            "extra": "kept",
            "commit_hash": "abc",
            "provider": "github"
          },
          "pex_metadata": {
            "pex_tag": "files=x",
            "python_version": "3.11"
          },
          "pex_bundle": true,
          "defs_state_info": {
            "info_mapping": {
              "j": {
                "version": "1"
              }
            }
          }
        }
        "#);
    }
}
