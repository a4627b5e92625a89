//! Deploys two code locations and waits for each to load, against the crate's own Dagster+
//! stand-in (the `test-support` answers on a local mockito server), so it runs anywhere:
//! builds the deploy documents, sends one batched deploy, reports load events per location,
//! then shows how an error reads (message, help, predicates, accessors).
//!
//! ```text
//! cargo run -p dagster-deploy-cloud-client --example deploy_and_wait
//! ```
//!
//! The example needs the `test-support` feature, which the crate's dev-dependencies turn on
//! for its examples and tests. Against a real organization, build the client with
//! `CloudClient::new(OrgUrl::from_organization(..)?, ApiToken::new(..), ..)` instead of
//! `test_support::client`; the rest is the same.

#![allow(clippy::print_stdout, reason = "an example prints what happened")]

use std::time::Duration;

use dagster_deploy_cloud_client::test_support::{self, Answer};
use dagster_deploy_cloud_client::{
    DocumentOverlay, Error, GitMetadata, LoadEvent, WaitOptions, location_document,
};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut server = test_support::mockito::Server::new_async().await;
    let prod = test_support::deployment_path("prod");
    let answers = [
        Answer::agents(&["RUNNING"]),
        Answer::deploy_locations(&["sales", "marketing"]),
        Answer::locations(vec![
            test_support::location_entry("sales", "LOADED", None),
            test_support::location_entry(
                "marketing",
                "LOADED",
                Some(json!({
                    "__typename": "PythonError",
                    "message": "ModuleNotFoundError: No module named 'marketing'",
                    "stack": [],
                    "errorChain": [],
                })),
            ),
        ]),
    ];
    for answer in &answers {
        answer.mock(&mut server, &prod).create_async().await;
    }
    let client = test_support::client(&server, "user:example-token");

    // One document per location: its dagster_cloud.yaml entry with the built image laid over.
    let documents: Vec<_> = ["sales", "marketing"]
        .into_iter()
        .map(|name| {
            let entry = json!({
                "location_name": name,
                "code_source": {"package_name": name},
                "build": {"registry": "ghcr.io/acme/data"},
            });
            let overlay = DocumentOverlay {
                location_name: name.to_owned(),
                image: Some(format!("ghcr.io/acme/data:{name}-abc123")),
                git: GitMetadata {
                    commit_hash: Some("abc123".to_owned()),
                    ..GitMetadata::default()
                },
                ..DocumentOverlay::default()
            };
            location_document(entry.as_object().expect("an object"), &overlay)
        })
        .collect();

    let deployment = client.deployment("prod")?;
    let accepted = deployment.deploy_locations(&documents).await?;
    println!("Dagster+ accepted: {}", accepted.join(", "));

    let options = WaitOptions {
        load_timeout: Duration::from_secs(10),
        agent_heartbeat_timeout: Some(Duration::from_secs(10)),
        // The stand-in answers LOADED at once; a real deploy is first seen loading.
        stale_loaded_grace: Duration::ZERO,
        ..WaitOptions::default()
    };
    let mut on_event = |event: &LoadEvent| println!("  event: {event:?}");
    let loads = deployment
        .wait_for_load(&accepted, &options, &mut on_event)
        .await?;
    for load in &loads {
        println!("{}: {:?}", load.location, load.outcome);
    }

    // An error is data: the message says what failed, `help()` what to do.
    let error = client.deployment("not a deployment name").unwrap_err();
    println!("error: {error}");
    println!("  help: {}", error.help().unwrap_or("-"));
    println!(
        "  invalid setting (nothing was sent): {}",
        error.is_invalid_setting()
    );
    Ok(())
}
