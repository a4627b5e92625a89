//! What a deployment runs, as the two queries `deploy --skip-unchanged` reads answer it:
//! `workspace{workspaceEntries{locationName serializedDeploymentMetadata}}` and
//! `locationsAsDocument{document}`, both made from the documents last deployed.
//!
//! The deploy data is serialized as Dagster's serdes writes a `CodeLocationDeployData` (stored
//! under its old name `CodeDeploymentMetadata`): a JSON object with `__class__` markers, every
//! field present, null when unset, and `{}` for an unset container context. The document lists
//! each location's deploy document as it was received, with `container_context` defaulted to
//! `{}` the same way, so that a client's comparison meets a server-side default.

use serde_json::{Map, Value, json};

/// `workspace`: one entry per deployed location.
pub(crate) fn workspace<'a>(documents: impl Iterator<Item = &'a Value>) -> Value {
    let entries: Vec<Value> = documents
        .map(|document| {
            json!({
                "__typename": "WorkspaceEntry",
                "locationName": document.get("location_name").cloned().unwrap_or(Value::Null),
                "serializedDeploymentMetadata": deploy_data(document).to_string(),
            })
        })
        .collect();
    json!({"__typename": "Workspace", "workspaceEntries": entries})
}

/// `locationsAsDocument`: the deployed documents as one.
pub(crate) fn locations_as_document<'a>(documents: impl Iterator<Item = &'a Value>) -> Value {
    let locations: Vec<Value> = documents
        .map(|document| {
            let mut document = document.clone();
            if let Some(map) = document.as_object_mut() {
                map.entry("container_context")
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            document
        })
        .collect();
    json!({
        "__typename": "LocationsAsDocument",
        "document": {"locations": locations},
    })
}

/// The serdes form of a location's deploy data.
fn deploy_data(document: &Value) -> Value {
    let field = |key: &str| document.get(key).cloned().unwrap_or(Value::Null);
    let source = |key: &str| {
        document
            .get("code_source")
            .and_then(|source| source.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let git = document.get("git").map_or(Value::Null, |git| {
        json!({
            "__class__": "GitMetadata",
            "commit_hash": git.get("commit_hash").cloned().unwrap_or(Value::Null),
            "url": git.get("url").cloned().unwrap_or(Value::Null),
        })
    });
    let pex = document.get("pex_metadata").map_or(Value::Null, |pex| {
        json!({
            "__class__": "PexMetadata",
            "pex_tag": pex.get("pex_tag").cloned().unwrap_or(Value::Null),
            "python_version": pex.get("python_version").cloned().unwrap_or(Value::Null),
        })
    });
    json!({
        "__class__": "CodeDeploymentMetadata",
        "image": field("image"),
        "python_file": source("python_file"),
        "package_name": source("package_name"),
        "module_name": source("module_name"),
        "working_directory": field("working_directory"),
        "executable_path": field("executable_path"),
        "attribute": field("attribute"),
        "git_metadata": git,
        "container_context": document.get("container_context").cloned().unwrap_or_else(|| json!({})),
        "cloud_context_env": {},
        "pex_metadata": pex,
        "agent_queue": field("agent_queue"),
        "autoload_defs_module_name": source("autoload_defs_module_name"),
        "defs_state_info": field("defs_state_info"),
    })
}
