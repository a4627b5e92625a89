//! Shared helpers: a client pointed at a mockito server, and GraphQL mock builders.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dagster_deploy_cloud_client::{ApiToken, ClientOptions, CloudClient, Error, OrgUrl};
use mockito::{Matcher, Mock, ServerGuard};
use serde_json::{Value, json};

/// A distinctive token, so a leak is easy to spot.
pub(crate) const TOKEN: &str = "user:LEAKY-t0ken-5ecret-8d1f";

/// Options with tiny delays so retry tests run fast.
pub(crate) fn fast_options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(5),
        retry_base_delay: Duration::from_millis(1),
        max_retry_delay: Duration::from_millis(200),
        maintenance_cap: Duration::from_secs(2),
        ..ClientOptions::default()
    }
}

pub(crate) fn client_with(server: &ServerGuard, options: ClientOptions) -> CloudClient {
    CloudClient::new(
        OrgUrl::parse(&server.url()).unwrap(),
        ApiToken::new(TOKEN),
        options,
    )
    .unwrap()
}

pub(crate) fn client(server: &ServerGuard) -> CloudClient {
    client_with(server, fast_options())
}

/// A POST mock for one operation on `path`, answering `status` with the JSON `body`.
pub(crate) fn graphql(
    server: &mut ServerGuard,
    path: &str,
    operation: &str,
    status: usize,
    body: Value,
) -> mockito::Mock {
    server
        .mock("POST", path)
        .match_body(Matcher::PartialJson(json!({ "operationName": operation })))
        .with_status(status)
        .with_header("content-type", "application/json")
        .with_body(body.to_string())
}

/// Like [`graphql`], but records every request body it answers.
pub(crate) fn recording(
    server: &mut ServerGuard,
    path: &str,
    operation: &str,
    body: Value,
) -> (Mock, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let response = body.to_string();
    let mock = server
        .mock("POST", path)
        .match_body(Matcher::PartialJson(json!({ "operationName": operation })))
        .with_header("content-type", "application/json")
        .with_body_from_request(move |request| {
            let body: Value = serde_json::from_slice(request.body().unwrap()).unwrap();
            sink.lock().unwrap().push(body);
            response.clone().into_bytes()
        });
    (mock, seen)
}

/// Fails if the token shows up in the error's Display, Debug or source chain.
pub(crate) fn assert_no_token(error: &Error) {
    let mut texts = vec![error.to_string(), format!("{error:?}")];
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        texts.push(inner.to_string());
        texts.push(format!("{inner:?}"));
        source = inner.source();
    }
    for text in texts {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(!text.contains("LEAKY-t0ken"), "token leaked: {text}");
    }
}
