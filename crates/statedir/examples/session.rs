//! A deploy session from start to status, as separate CI steps would drive it: create it with
//! two locations, record an image for each, record a deploy outcome, and print the status
//! table; then show the error (and its help) for a directory that holds no session.
//!
//! ```text
//! cargo run -p dagster-deploy-statedir --example session [-- DIR]
//! ```
//!
//! DIR is the state directory (it must be empty or hold a previous session); without it, a
//! temporary directory is used and removed afterwards.

#![allow(clippy::print_stdout, reason = "an example prints what it did")]

use std::path::PathBuf;

use dagster_deploy_statedir::{
    BuildMetadata, DeployOutcome, DeployResult, Error, NewLocation, Session, SessionInfo,
};

fn main() -> Result<(), Error> {
    let temporary = tempfile::tempdir().map_err(|source| Error::Io {
        action: "create a temporary directory in",
        path: std::env::temp_dir(),
        source,
    })?;
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| temporary.path().join("state"), PathBuf::from);

    let info = SessionInfo {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: "2026-01-01T12:00:00Z".parse().expect("a valid timestamp"),
        project_dir: "/repo".into(),
        organization_url: "https://acme.dagster.cloud".to_owned(),
    };
    let location = |name: &str| NewLocation {
        location_name: name.to_owned(),
        url: "https://acme.dagster.cloud".to_owned(),
        deployment_name: "prod".to_owned(),
        location_file: "/repo/dagster_cloud.yaml".to_owned(),
        is_branch_deployment: false,
        build: BuildMetadata::default(),
        status_url: None,
        project_dir: Some(".".to_owned()),
    };
    // Step 1 (`start`): one state file per location, written all or nothing.
    let session = Session::create(&dir, info, vec![location("sales"), location("marketing")])?;
    println!("Opened a session in {}", session.dir().display());

    // Step 2 (one build job per location, each a separate process): record the image.
    let opened = Session::open(&dir)?;
    let recorded = opened.record_build_output(&[], |state| {
        Ok(format!("ghcr.io/acme/{}:abc123", state.location_name))
    })?;
    for (location, image) in &recorded {
        println!("Recorded {image} for {location}");
    }

    // Step 3 (`deploy`): record each location's own outcome, against the state it was built
    // from, so that a location rebuilt meanwhile is not marked deployed.
    let results: Vec<DeployResult> = opened
        .selected(&[])?
        .into_iter()
        .map(|state| DeployResult {
            outcome: if state.location_name == "sales" {
                DeployOutcome::Deployed
            } else {
                DeployOutcome::Failed("ImportError: no module named marketing".to_owned())
            },
            sent: state,
        })
        .collect();
    opened.record_deploy_results(&results)?;

    // Step 4 (`status`).
    print!("{}", opened.status_table()?);

    // Errors are data: a message, a `help()`, predicates and accessors.
    let missing = temporary.path().join("no-session-here");
    if let Err(error) = Session::open(&missing) {
        println!("error: {error}");
        println!("  help: {}", error.help().unwrap_or("-"));
        println!(
            "  no session: {}, path: {:?}",
            error.is_no_session(),
            error.path()
        );
    }
    Ok(())
}
