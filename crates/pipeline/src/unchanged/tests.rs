use dagster_deploy_cloud_client::WorkspaceEntry;
use serde_json::{Value, json};

use super::{Comparison, Running, compare};

/// The deploy document of `name` running `image`, as this session would send it.
fn ours(name: &str, image: &str, commit: &str) -> Value {
    json!({
        "location_name": name,
        "code_source": {"package_name": name},
        "image": image,
        "git": {"commit_hash": commit, "url": format!("https://github.com/acme/data/tree/{commit}")},
        "container_context": {"k8s": {"env_vars": ["A=1"]}},
    })
}

/// Dagster's serialization of the deploy data of `name`, running `image` from `commit`.
fn deploy_data(name: &str, image: &str, commit: &str) -> String {
    json!({
        "__class__": "CodeDeploymentMetadata",
        "image": image,
        "python_file": null,
        "package_name": name,
        "module_name": null,
        "working_directory": null,
        "executable_path": null,
        "attribute": null,
        "git_metadata": {"__class__": "GitMetadata", "commit_hash": commit, "url": null},
        "container_context": {"k8s": {"env_vars": ["A=1"]}},
        "cloud_context_env": {},
        "pex_metadata": null,
        "agent_queue": null,
        "autoload_defs_module_name": null,
        "defs_state_info": null,
    })
    .to_string()
}

fn entry(name: &str, data: Option<String>) -> WorkspaceEntry {
    WorkspaceEntry {
        location_name: name.to_owned(),
        serialized_deployment_metadata: data,
    }
}

/// A deployment running `documents`, with deploy data that matches each.
fn running(documents: &[Value]) -> Running {
    let entries: Vec<WorkspaceEntry> = documents
        .iter()
        .map(|document| {
            let name = document["location_name"].as_str().unwrap();
            let image = document["image"].as_str().unwrap();
            let commit = document["git"]["commit_hash"].as_str().unwrap_or("c0");
            entry(name, Some(deploy_data(name, image, commit)))
        })
        .collect();
    Running::new(&entries, &json!({ "locations": documents }))
}

fn check(document: &Value, running: &Running, expected: &str) {
    let actual = match compare(document, running) {
        Comparison::Unchanged { image, commit } => format!(
            "unchanged {} {}",
            image.unwrap_or_default(),
            commit.unwrap_or_default()
        ),
        Comparison::Changed(why) => format!("changed: {why}"),
    };
    assert_eq!(actual, expected);
}

#[test]
fn the_same_document_is_unchanged_and_names_the_commit_dagster_plus_shows() {
    let deployed = ours("sales", "r/sales:v1", "aaa");
    check(
        &deployed,
        &running(std::slice::from_ref(&deployed)),
        "unchanged r/sales:v1 aaa",
    );
}

#[test]
fn a_new_commit_alone_is_not_a_change() {
    let deployed = running(&[ours("sales", "r/sales:v1", "aaa")]);
    check(
        &ours("sales", "r/sales:v1", "bbb"),
        &deployed,
        "unchanged r/sales:v1 aaa",
    );
}

#[test]
fn another_image_is_a_change_in_the_deploy_data_or_in_the_document() {
    let deployed = running(&[ours("sales", "r/sales:v1", "aaa")]);
    check(
        &ours("sales", "r/sales:v2", "aaa"),
        &deployed,
        "changed: the deployment runs another image",
    );
    // The deploy data runs v2 but the document still says v1: it cannot be trusted.
    let mismatched = Running::new(
        &[entry(
            "sales",
            Some(deploy_data("sales", "r/sales:v2", "aaa")),
        )],
        &json!({"locations": [ours("sales", "r/sales:v1", "aaa")]}),
    );
    check(
        &ours("sales", "r/sales:v2", "aaa"),
        &mismatched,
        "changed: its document differs at `image`",
    );
}

#[test]
fn any_other_key_that_differs_is_a_change() {
    let deployed = running(&[ours("sales", "r/sales:v1", "aaa")]);
    let mut context = ours("sales", "r/sales:v1", "aaa");
    context["container_context"]["k8s"]["env_vars"] = json!(["A=2"]);
    check(
        &context,
        &deployed,
        "changed: its document differs at `container_context`",
    );
    let mut queue = ours("sales", "r/sales:v1", "aaa");
    queue["agent_queue"] = json!("gpu");
    check(
        &queue,
        &deployed,
        "changed: its document differs at `agent_queue`",
    );
    let mut unknown_to_us = ours("sales", "r/sales:v1", "aaa");
    let stored = Running::new(
        &[entry(
            "sales",
            Some(deploy_data("sales", "r/sales:v1", "aaa")),
        )],
        &json!({"locations": [{
            "location_name": "sales",
            "code_source": {"package_name": "sales"},
            "image": "r/sales:v1",
            "container_context": {"k8s": {"env_vars": ["A=1"]}},
            "server_side_default": 3,
        }]}),
    );
    check(
        &unknown_to_us,
        &stored,
        "changed: its document differs at `server_side_default`",
    );
    unknown_to_us["server_side_default"] = json!(3.0);
    check(
        &unknown_to_us,
        &stored,
        "changed: its document differs at `server_side_default`",
    );
}

#[test]
fn key_order_nulls_and_empty_mappings_do_not_count() {
    let deployed = Running::new(
        &[entry(
            "sales",
            Some(deploy_data("sales", "r/sales:v1", "aaa")),
        )],
        &json!({"locations": [{
            "working_directory": null,
            "container_context": {"k8s": {"env_vars": ["A=1"], "volumes": {}}},
            "image": "r/sales:v1",
            "code_source": {"package_name": "sales", "module_name": null},
            "location_name": "sales",
            "git": {"commit_hash": "aaa"},
        }]}),
    );
    check(
        &ours("sales", "r/sales:v1", "zzz"),
        &deployed,
        "unchanged r/sales:v1 aaa",
    );
}

#[test]
fn what_cannot_be_compared_counts_as_changed() {
    let document = ours("sales", "r/sales:v1", "aaa");
    check(
        &document,
        &running(&[]),
        "changed: the deployment does not have this location",
    );
    let unreadable = Running::new(
        &[entry("sales", Some("not json".to_owned()))],
        &json!({ "locations": [document.clone()] }),
    );
    check(
        &document,
        &unreadable,
        "changed: its deploy data in the deployment cannot be read, or is listed twice",
    );
    let absent = Running::new(
        &[entry("sales", None)],
        &json!({ "locations": [document.clone()] }),
    );
    check(
        &document,
        &absent,
        "changed: its deploy data in the deployment cannot be read, or is listed twice",
    );
    let data = || Some(deploy_data("sales", "r/sales:v1", "aaa"));
    let twice = Running::new(
        &[entry("sales", data()), entry("sales", data())],
        &json!({ "locations": [document.clone()] }),
    );
    check(
        &document,
        &twice,
        "changed: its deploy data in the deployment cannot be read, or is listed twice",
    );
    let no_document = Running::new(&[entry("sales", data())], &Value::Null);
    check(
        &document,
        &no_document,
        "changed: the deployment's document does not list this location",
    );
    let listed_twice = Running::new(
        &[entry("sales", data())],
        &json!({ "locations": [document.clone(), document.clone()] }),
    );
    check(
        &document,
        &listed_twice,
        "changed: the deployment's document lists this location twice",
    );
}
