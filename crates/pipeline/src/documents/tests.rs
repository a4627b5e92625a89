//! The document logic on states and files built in memory: no session, no disk.

use std::path::Path;

use dagster_deploy_statedir::{
    BuildMetadata, BuildOutput, DefsStateInfo, DefsStateVersion, GitMetadata, NewLocation, Status,
    StatusChange,
};
use serde_json::json;

use super::*;

const FILE: &str = "/repo/dagster_cloud.yaml";

fn yaml(text: &str) -> DagsterCloudYaml {
    DagsterCloudYaml::parse(text, Path::new(FILE)).unwrap()
}

fn state(name: &str, build_output: Option<BuildOutput>) -> LocationState {
    let mut state = LocationState::new(
        NewLocation {
            location_name: name.to_owned(),
            url: "https://acme.dagster.cloud".to_owned(),
            deployment_name: "prod".to_owned(),
            location_file: FILE.to_owned(),
            is_branch_deployment: false,
            build: BuildMetadata {
                git: GitMetadata {
                    commit_hash: Some("abc".to_owned()),
                    url: Some("https://github.com/acme/repo/tree/abc".to_owned()),
                    provider: Some("github".to_owned()),
                    ..GitMetadata::default()
                },
                build_config: None,
            },
            status_url: None,
            project_dir: None,
        },
        vec![StatusChange::new(
            jiff::Timestamp::UNIX_EPOCH,
            Status::Pending,
            "initialized",
        )],
    );
    state.build_output = build_output;
    state
}

fn docker(image: &str, pex_bundle: bool) -> Option<BuildOutput> {
    Some(BuildOutput::Docker {
        image: image.to_owned(),
        python_version: None,
        pex_bundle,
    })
}

#[test]
fn a_docker_output_gives_the_entry_with_image_and_git_facts() {
    let file = yaml(
        "locations:\n  - location_name: sales\n    code_source: {module_name: sales.defs}\n    build: {registry: ghcr.io/acme/sales}\n    agent_queue: gpu\n",
    );
    let document = document(
        &state("sales", docker("ghcr.io/acme/sales:v1", false)),
        &file,
    )
    .unwrap();
    assert_eq!(
        document,
        json!({
            "location_name": "sales",
            "code_source": {"module_name": "sales.defs"},
            "agent_queue": "gpu",
            "image": "ghcr.io/acme/sales:v1",
            "git": {
                "commit_hash": "abc",
                "url": "https://github.com/acme/repo/tree/abc",
                "provider": "github"
            }
        })
    );
    // The document's keys keep the entry's order, then the overlay's.
    let keys: Vec<&str> = document
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "location_name",
            "code_source",
            "agent_queue",
            "image",
            "git"
        ]
    );
}

#[test]
fn pex_outputs_written_by_the_reference_reach_the_document() {
    let file = yaml(
        "locations:\n  - location_name: pex\n    code_source: {package_name: pex}\n  - location_name: bundled\n    code_source: {package_name: bundled}\n",
    );
    let pex = document(
        &state(
            "pex",
            Some(BuildOutput::PythonExecutable {
                python_version: "3.11".to_owned(),
                image: None,
                pex_tag: "files=abc:deps=def".to_owned(),
            }),
        ),
        &file,
    )
    .unwrap();
    assert_eq!(
        pex["pex_metadata"],
        json!({"pex_tag": "files=abc:deps=def", "python_version": "3.11"})
    );
    assert!(pex.get("image").is_none(), "{pex}");
    assert!(pex.get("pex_bundle").is_none(), "{pex}");
    let bundled = document(&state("bundled", docker("r.example.com/b:1", true)), &file).unwrap();
    assert_eq!(bundled["pex_bundle"], true);
    assert_eq!(bundled["image"], "r.example.com/b:1");
    assert!(bundled.get("pex_metadata").is_none(), "{bundled}");
}

/// As in the reference, null values of the overlay are dropped before the merge, so a key
/// whose version is `null` is not sent.
#[test]
fn definitions_state_is_sent_without_null_versions() {
    let file = yaml("locations:\n  - location_name: a\n");
    let mut with_state = state("a", docker("r.io/a:1", false));
    with_state.defs_state_info = Some(DefsStateInfo {
        info_mapping: vec![
            (
                "key".to_owned(),
                Some(DefsStateVersion {
                    version: "v1".to_owned(),
                    create_timestamp: 1.5,
                }),
            ),
            ("gone".to_owned(), None),
        ],
    });
    let document = document(&with_state, &file).unwrap();
    assert_eq!(
        document["defs_state_info"],
        json!({"info_mapping": {"key": {"version": "v1", "create_timestamp": 1.5}}})
    );
}

#[test]
fn a_location_missing_from_its_file_is_an_error_that_names_both() {
    let file = yaml("locations:\n  - location_name: other\n");
    let error = document(&state("sales", docker("r.io/s:1", false)), &file).unwrap_err();
    assert!(
        matches!(&error, Error::LocationNotInFile { location, file } if location == "sales" && file == Path::new(FILE)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "location sales is not in /repo/dagster_cloud.yaml any more"
    );
    assert_eq!(
        error.help().as_deref(),
        Some("run start again, or deselect the location")
    );
}

#[test]
fn the_overlay_has_no_image_before_a_build() {
    let overlay = overlay(&state("a", None));
    assert_eq!(overlay.image, None);
    assert_eq!(overlay.git.commit_hash.as_deref(), Some("abc"));
    assert!(!overlay.pex_bundle);
}
