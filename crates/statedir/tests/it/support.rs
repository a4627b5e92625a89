//! Shared builders for the integration tests.

use std::path::{Path, PathBuf};

use dagster_deploy_statedir::{
    BuildConfig, BuildMetadata, GitMetadata, NewLocation, Session, SessionInfo,
};

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Copies a recorded state directory into a fresh temp dir.
pub(crate) fn copy_fixture(relative: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join(relative)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

pub(crate) fn info() -> SessionInfo {
    SessionInfo {
        tool_version: "0.1.0".into(),
        created_at: "2026-11-26T13:47:52Z".parse().unwrap(),
        project_dir: "/w".into(),
        organization_url: "https://acme.dagster.cloud".into(),
    }
}

pub(crate) fn new_location(name: &str) -> NewLocation {
    NewLocation {
        location_name: name.into(),
        url: "https://acme.dagster.cloud".into(),
        deployment_name: "prod".into(),
        location_file: "/w/dagster_cloud.yaml".into(),
        is_branch_deployment: false,
        build: BuildMetadata {
            git: GitMetadata {
                url: Some("https://github.com/acme/data/tree/4f2a9c1".into()),
                commit_hash: Some("4f2a9c1".into()),
                ..GitMetadata::default()
            },
            build_config: Some(BuildConfig {
                directory: Some(format!("/w/{name}")),
                registry: Some(format!("registry.example.com/data/{name}")),
            }),
        },
        status_url: Some("https://github.com/acme/data/actions/runs/42".into()),
        project_dir: Some("/w".into()),
    }
}

pub(crate) fn create(dir: &Path, names: &[&str]) -> Session {
    Session::create(
        dir,
        info(),
        names.iter().map(|name| new_location(name)).collect(),
    )
    .unwrap()
}

/// The image rule of reference-behaviour §2.6, as the CLI would pass it.
pub(crate) fn registry_image(
    tag: &str,
) -> impl Fn(&dagster_deploy_statedir::LocationState) -> Result<String, String> + '_ {
    move |state| {
        state
            .build
            .build_config
            .as_ref()
            .and_then(|config| config.registry.as_deref())
            .map(|registry| format!("{registry}:{tag}"))
            .ok_or_else(|| {
                format!(
                    "no build registry defined for location {}",
                    state.location_name
                )
            })
    }
}

pub(crate) fn names(states: &[dagster_deploy_statedir::LocationState]) -> Vec<&str> {
    states
        .iter()
        .map(|state| state.location_name.as_str())
        .collect()
}

pub(crate) fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

pub(crate) fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
