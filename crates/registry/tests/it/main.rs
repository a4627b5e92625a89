//! Integration tests of `dagster-deploy-registry` against a real `docker-registry`.

mod auth;
mod build;
mod faults;
mod images;
mod interop;
mod origins;
mod push;

use std::sync::{Arc, Mutex};

use dagster_deploy_registry::{ClientOptions, Credentials, ProgressEvent, RegistryClient};

/// An error's message and its causes, as a program would print them.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An anonymous client that records every progress event.
pub(crate) fn recording_client(
    credentials: Credentials,
) -> (RegistryClient, Arc<Mutex<Vec<ProgressEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let client = RegistryClient::new(ClientOptions {
        credentials,
        progress: Some(Arc::new(move |event: &ProgressEvent| {
            sink.lock().unwrap().push(event.clone())
        })),
        ..ClientOptions::default()
    })
    .unwrap();
    (client, events)
}

/// Runs `skopeo inspect` on an image in a loopback registry and returns its JSON.
pub(crate) fn skopeo_inspect(reference: &str, raw: bool) -> serde_json::Value {
    let mut command = std::process::Command::new("skopeo");
    command.args(["inspect", "--tls-verify=false"]);
    if raw {
        command.arg("--raw");
    }
    let output = command
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap_or_else(|error| {
            panic!("skopeo not found ({error}): install it with `apt-get install -y skopeo`")
        });
    assert!(
        output.status.success(),
        "skopeo inspect failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
