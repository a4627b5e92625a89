//! Builders shared by the unit tests of this crate: a session's info and its locations, as
//! `start` would pass them.

use std::path::Path;

use crate::model::{BuildMetadata, NewLocation, SessionInfo};
use crate::session::Session;

/// The session info every unit test uses.
pub(crate) fn info() -> SessionInfo {
    SessionInfo {
        tool_version: "0.1.0".into(),
        created_at: "2026-11-26T13:47:52Z".parse().unwrap(),
        project_dir: "/w".into(),
        organization_url: "https://acme.dagster.cloud".into(),
    }
}

/// A location of organization `acme`, deployment `prod`, without build metadata.
pub(crate) fn location(name: &str) -> NewLocation {
    NewLocation {
        location_name: name.into(),
        url: "https://acme.dagster.cloud".into(),
        deployment_name: "prod".into(),
        location_file: "/w/dagster_cloud.yaml".into(),
        is_branch_deployment: false,
        build: BuildMetadata::default(),
        status_url: None,
        project_dir: Some(".".into()),
    }
}

/// A new session in `dir` with the named locations.
pub(crate) fn session(dir: &Path, names: &[&str]) -> Session {
    Session::create(
        dir,
        info(),
        names.iter().map(|name| location(name)).collect(),
    )
    .unwrap()
}
