//! The `defaults` merge algorithm of `dagster_cloud.yaml` (reference-behaviour §1.6.3), also used
//! to merge a dg workspace's `container_context.yaml` under a project's (with the
//! `container_context.` prefix, so the per-path list strategies apply; the reference passes an
//! empty prefix, reference-behaviour ref-bug 2). Pure functions over `serde_json` values; no schema
//! checks and no positions here.

use serde_json::{Map, Value};

/// Two values that cannot be merged: the location side is a mapping or list, the defaults side
/// is a scalar or the other kind of collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MergeConflict {
    /// Dotted keys below the merged mappings, e.g. `["container_context", "k8s"]`.
    pub(crate) keys: Vec<String>,
    /// Kind of the defaults value (`a string`, `a list`, ...).
    pub(crate) defaults_kind: &'static str,
    /// Kind of the location value.
    pub(crate) location_kind: &'static str,
}

/// Merges `location` on top of `defaults`. Nulls are removed from both sides first (recursively).
/// `prefix` is prepended (with its trailing dot) to the dotted paths used to choose list strategies.
pub(crate) fn merge_with_defaults(
    defaults: &Map<String, Value>,
    location: Map<String, Value>,
    prefix: &str,
) -> Result<Map<String, Value>, MergeConflict> {
    merge_onto_clean_defaults(&drop_nulls_map(defaults), location, prefix)
}

/// [`merge_with_defaults`] with `clean_defaults` already cleaned by [`drop_nulls_map`], so that
/// defaults shared by many locations are cleaned once.
pub(crate) fn merge_onto_clean_defaults(
    clean_defaults: &Map<String, Value>,
    mut location: Map<String, Value>,
    prefix: &str,
) -> Result<Map<String, Value>, MergeConflict> {
    let mut merged = clean_defaults.clone();
    remove_nulls(&mut location);
    merge_maps(&mut merged, location, prefix, None)?;
    Ok(merged)
}

/// A copy of `map` with null values removed recursively (inside lists too).
pub(crate) fn drop_nulls_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| (key.clone(), drop_nulls(value)))
        .collect()
}

/// Removes null values from `map` in place, recursively (inside lists too).
pub(crate) fn remove_nulls(map: &mut Map<String, Value>) {
    map.retain(|_, value| !value.is_null());
    map.values_mut().for_each(remove_nulls_value);
}

fn remove_nulls_value(value: &mut Value) {
    match value {
        Value::Object(map) => remove_nulls(map),
        Value::Array(items) => {
            items.retain(|item| !item.is_null());
            items.iter_mut().for_each(remove_nulls_value);
        }
        _ => {}
    }
}

fn drop_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(drop_nulls_map(map)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|item| !item.is_null())
                .map(drop_nulls)
                .collect(),
        ),
        other => other.clone(),
    }
}

pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The keys from the merged mappings down to the value being merged, innermost last; kept on the
/// stack so that merging allocates no paths unless a list strategy or a conflict needs one.
struct Trail<'t> {
    parent: Option<&'t Trail<'t>>,
    key: &'t str,
}

impl Trail<'_> {
    /// The keys, outermost first.
    fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut step = Some(self);
        while let Some(trail) = step {
            keys.push(trail.key.to_owned());
            step = trail.parent;
        }
        keys.reverse();
        keys
    }
}

fn merge_maps(
    target: &mut Map<String, Value>,
    source: Map<String, Value>,
    prefix: &str,
    trail: Option<&Trail<'_>>,
) -> Result<(), MergeConflict> {
    for (key, location_value) in source {
        match target.get_mut(&key) {
            None | Some(Value::Null) => {
                target.insert(key, location_value);
            }
            Some(defaults_value) => {
                let here = Trail {
                    parent: trail,
                    key: &key,
                };
                let merged = merge_values(defaults_value, location_value, prefix, &here)?;
                *defaults_value = merged;
            }
        }
    }
    Ok(())
}

fn merge_values(
    defaults_value: &mut Value,
    location_value: Value,
    prefix: &str,
    trail: &Trail<'_>,
) -> Result<Value, MergeConflict> {
    match (defaults_value, location_value) {
        (Value::Object(defaults_map), Value::Object(location_map)) => {
            let mut merged = std::mem::take(defaults_map);
            merge_maps(&mut merged, location_map, prefix, Some(trail))?;
            Ok(Value::Object(merged))
        }
        (Value::Array(defaults_list), Value::Array(location_list)) => {
            let dotted = format!("{prefix}{}", trail.keys().join("."));
            Ok(Value::Array(merge_lists(
                std::mem::take(defaults_list),
                location_list,
                &dotted,
            )))
        }
        (defaults_value, location_value @ (Value::Object(_) | Value::Array(_))) => {
            Err(MergeConflict {
                keys: trail.keys(),
                defaults_kind: kind(defaults_value),
                location_kind: kind(&location_value),
            })
        }
        (_, scalar) => Ok(scalar),
    }
}

enum ListStrategy {
    EnvVars,
    Identity(&'static str),
    Replace,
    ConcatUnique,
}

fn strategy(dotted: &str) -> ListStrategy {
    match dotted {
        "container_context.docker.env_vars"
        | "container_context.ecs.env_vars"
        | "container_context.k8s.env_vars" => ListStrategy::EnvVars,
        "container_context.ecs.run_sidecar_containers"
        | "container_context.ecs.secrets"
        | "container_context.ecs.server_sidecar_containers"
        | "container_context.ecs.volumes"
        | "container_context.k8s.image_pull_secrets"
        | "container_context.k8s.volumes"
        | "container_context.k8s.volume_mounts" => ListStrategy::Identity("name"),
        "container_context.ecs.run_ecs_tags" | "container_context.ecs.server_ecs_tags" => {
            ListStrategy::Identity("key")
        }
        "container_context.k8s.run_k8s_config.container_config.args"
        | "container_context.k8s.run_k8s_config.container_config.command"
        | "container_context.k8s.server_k8s_config.container_config.args"
        | "container_context.k8s.server_k8s_config.container_config.command" => {
            ListStrategy::Replace
        }
        _ => ListStrategy::ConcatUnique,
    }
}

fn merge_lists(defaults: Vec<Value>, location: Vec<Value>, dotted: &str) -> Vec<Value> {
    match strategy(dotted) {
        ListStrategy::EnvVars => merge_env_vars(defaults, location),
        ListStrategy::Identity(field) => merge_by_identity(defaults, location, field),
        ListStrategy::Replace => location,
        ListStrategy::ConcatUnique => {
            let mut merged: Vec<Value> = Vec::with_capacity(defaults.len() + location.len());
            for item in defaults.into_iter().chain(location) {
                if !merged.contains(&item) {
                    merged.push(item);
                }
            }
            merged
        }
    }
}

/// The variable name of an `env_vars` entry: the text before the first `=` (`NAME=value`), or the
/// whole entry (`NAME`, taken from the agent's environment). Unlike the reference, a value that
/// itself contains `=` is accepted (reference-behaviour ref-bug 24).
fn env_var_name(entry: &Value) -> Option<&str> {
    entry
        .as_str()
        .map(|text| text.split_once('=').map_or(text, |(name, _)| name))
}

fn merge_env_vars(defaults: Vec<Value>, location: Vec<Value>) -> Vec<Value> {
    let named: Vec<&str> = location.iter().filter_map(env_var_name).collect();
    let mut merged: Vec<Value> = defaults
        .into_iter()
        .filter(|entry| env_var_name(entry).is_none_or(|name| !named.contains(&name)))
        .collect();
    merged.extend(location);
    merged
}

/// Entries keyed by `field`; later duplicates within one list replace earlier ones (keeping the
/// first position). Entries without the field are kept as they are.
fn by_identity(items: Vec<Value>, field: &str) -> Vec<(Option<Value>, Value)> {
    let mut keyed: Vec<(Option<Value>, Value)> = Vec::with_capacity(items.len());
    for item in items {
        let identity = item.get(field).cloned();
        match identity.as_ref().and_then(|id| {
            keyed
                .iter_mut()
                .find(|(existing, _)| existing.as_ref() == Some(id))
        }) {
            Some(slot) => slot.1 = item,
            None => keyed.push((identity, item)),
        }
    }
    keyed
}

fn merge_by_identity(defaults: Vec<Value>, location: Vec<Value>, field: &str) -> Vec<Value> {
    let location = by_identity(location, field);
    let mut merged: Vec<Value> = by_identity(defaults, field)
        .into_iter()
        .filter(|(identity, _)| {
            identity
                .as_ref()
                .is_none_or(|id| !location.iter().any(|(other, _)| other.as_ref() == Some(id)))
        })
        .map(|(_, item)| item)
        .collect();
    merged.extend(location.into_iter().map(|(_, item)| item));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(defaults: Value, location: Value, prefix: &str, expected: Value) {
        let (Value::Object(defaults), Value::Object(location)) = (defaults, location) else {
            panic!("test inputs must be objects");
        };
        let merged = merge_with_defaults(&defaults, location, prefix).expect("merge");
        assert_eq!(Value::Object(merged), expected);
    }

    #[test]
    fn env_vars_from_the_location_replace_defaults_with_the_same_name() {
        check(
            json!({"container_context": {"k8s": {"env_vars": ["LOG_LEVEL=info", "REGION=us", "TOKEN"]}}}),
            json!({"container_context": {"k8s": {"env_vars": ["REGION=eu", "TOKEN=a=b"]}}}),
            "",
            json!({"container_context": {"k8s": {"env_vars": ["LOG_LEVEL=info", "REGION=eu", "TOKEN=a=b"]}}}),
        );
    }

    #[test]
    fn container_context_prefix_selects_the_list_strategies() {
        // Workspace container_context.yaml merged under a project's: the fix for
        // reference-behaviour ref-bug 2.
        check(
            json!({"k8s": {"env_vars": ["A=1"]}}),
            json!({"k8s": {"env_vars": ["A=9"]}}),
            "container_context.",
            json!({"k8s": {"env_vars": ["A=9"]}}),
        );
        // Without the prefix the generic strategy applies (what the reference does).
        check(
            json!({"k8s": {"env_vars": ["A=1"]}}),
            json!({"k8s": {"env_vars": ["A=9"]}}),
            "",
            json!({"k8s": {"env_vars": ["A=1", "A=9"]}}),
        );
    }

    #[test]
    fn identity_lists_merge_by_name_and_key() {
        check(
            json!({"container_context": {"k8s": {"volumes": [{"name": "a", "x": 1}, {"name": "b"}, {"name": "a", "x": 2}]},
                                         "ecs": {"run_ecs_tags": [{"key": "team", "value": "d"}, {"key": "env", "value": "prod"}]}}}),
            json!({"container_context": {"k8s": {"volumes": [{"name": "b", "y": 1}, {"name": "c"}]},
                                         "ecs": {"run_ecs_tags": [{"key": "team", "value": "data"}]}}}),
            "",
            json!({"container_context": {"k8s": {"volumes": [{"name": "a", "x": 2}, {"name": "b", "y": 1}, {"name": "c"}]},
                                         "ecs": {"run_ecs_tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "data"}]}}}),
        );
    }

    #[test]
    fn container_args_are_replaced_and_other_lists_concatenated_without_duplicates() {
        check(
            json!({"container_context": {"k8s": {"run_k8s_config": {"container_config": {"args": ["a", "b"]}}, "labels": ["x", "y"]}}}),
            json!({"container_context": {"k8s": {"run_k8s_config": {"container_config": {"args": ["c"]}}, "labels": ["y", "z"]}}}),
            "",
            json!({"container_context": {"k8s": {"run_k8s_config": {"container_config": {"args": ["c"]}}, "labels": ["x", "y", "z"]}}}),
        );
    }

    #[test]
    fn nulls_are_dropped_and_scalars_from_the_location_win() {
        check(
            json!({"image": "base", "build": {"registry": "r", "directory": null}, "agent_queue": null}),
            json!({"image": "mine", "build": {"registry": null, "directory": "."}, "agent_queue": "q"}),
            "",
            json!({"image": "mine", "build": {"registry": "r", "directory": "."}, "agent_queue": "q"}),
        );
    }

    #[test]
    fn a_location_mapping_over_a_defaults_scalar_is_a_conflict() {
        let Value::Object(defaults) = json!({"container_context": {"k8s": "oops"}}) else {
            unreachable!()
        };
        let Value::Object(location) = json!({"container_context": {"k8s": {"namespace": "n"}}})
        else {
            unreachable!()
        };
        let conflict = merge_with_defaults(&defaults, location, "").unwrap_err();
        assert_eq!(conflict.keys, ["container_context", "k8s"]);
        assert_eq!(conflict.defaults_kind, "a string");
        assert_eq!(conflict.location_kind, "a mapping");
    }
}
