//! The deploy document built from the recorded legacy-flow inputs must be byte-identical to
//! what the reference sent (`requests-*.json`, first request).

use std::path::{Path, PathBuf};

use dagster_deploy_cloud_client::{DocumentOverlay, GitMetadata, location_document};
use serde_json::{Map, Value, json};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/legacy-flow")
        .join(path)
}

fn read_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(path)).unwrap()).unwrap()
}

/// The YAML entry for `name`, converted to JSON as the CLI will do.
fn yaml_entry(name: &str) -> Map<String, Value> {
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(fixture("dagster_cloud.yaml")).unwrap())
            .unwrap();
    let json: Value = serde_json::to_value(yaml).unwrap();
    json["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["location_name"] == name)
        .and_then(Value::as_object)
        .cloned()
        .unwrap()
}

/// The overlay from a recorded state file, read the way the deploy step reads it.
fn overlay(state: &Value) -> DocumentOverlay {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let build = &state["build"];
    DocumentOverlay {
        location_name: state["location_name"].as_str().unwrap().to_owned(),
        image: text(&state["build_output"]["image"]),
        git: GitMetadata {
            commit_hash: text(&build["commit_hash"]),
            url: text(&build["git_url"]),
            provider: text(&build["git_provider"]),
            repo_owner: text(&build["repo_owner"]),
            repo_name: text(&build["repo_name"]),
            base_branch: text(&build["base_branch"]),
            defs_base_path: text(&build["defs_base_path"]),
        },
        pex: None,
        pex_bundle: state["build_output"]["pex_bundle"] == true,
        defs_state_info: Some(state["defs_state_info"].clone()).filter(|value| !value.is_null()),
    }
}

fn deploy_document(statedir: &str) -> Value {
    // The reference listed marketing before warehouse; the CLI decides the order.
    let documents: Vec<Value> = ["marketing", "warehouse"]
        .iter()
        .map(|name| {
            let state = read_json(&format!("{statedir}/location-{name}.json"));
            location_document(&yaml_entry(name), &overlay(&state))
        })
        .collect();
    json!({ "locations": documents })
}

#[test]
fn document_matches_the_reference_byte_for_byte_after_a_successful_build() {
    let recorded = read_json("requests-success.json");
    let expected = &recorded[0]["variables"]["document"];
    let built = deploy_document("statedir-after-set-build-output");
    assert_eq!(
        serde_json::to_string(&built).unwrap(),
        serde_json::to_string(expected).unwrap()
    );
    insta::assert_json_snapshot!("legacy_flow_deploy_document", built);
}

#[test]
fn document_matches_the_reference_for_the_failure_recording() {
    let recorded = read_json("requests-failure.json");
    let expected = &recorded[0]["variables"]["document"];
    let built = deploy_document("statedir-after-deploy-failure");
    assert_eq!(
        serde_json::to_string(&built).unwrap(),
        serde_json::to_string(expected).unwrap()
    );
}
