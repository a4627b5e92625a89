//! Shared helpers: a client pointed at a mockito server, and GraphQL mock builders (over the
//! crate's `test_support`, which embedders use too).

use std::sync::{Arc, Mutex};

use dagster_deploy_cloud_client::test_support::{self, Answer};
use dagster_deploy_cloud_client::{ApiToken, ClientOptions, CloudClient, Error, OrgUrl};
use mockito::{Mock, ServerGuard};
use serde_json::Value;

/// A distinctive token, so a leak is easy to spot.
pub(crate) const TOKEN: &str = "user:LEAKY-t0ken-5ecret-8d1f";

pub(crate) use dagster_deploy_cloud_client::test_support::fast_options;

pub(crate) fn client_with(server: &ServerGuard, options: ClientOptions) -> CloudClient {
    CloudClient::new(
        OrgUrl::parse(&server.url()).unwrap(),
        ApiToken::new(TOKEN),
        options,
    )
    .unwrap()
}

pub(crate) fn client(server: &ServerGuard) -> CloudClient {
    test_support::client(server, TOKEN)
}

/// A POST mock for one operation on `path`, answering `status` with the JSON `body`.
pub(crate) fn graphql(
    server: &mut ServerGuard,
    path: &str,
    operation: &'static str,
    status: usize,
    body: Value,
) -> Mock {
    Answer::new(operation, body)
        .with_status(status)
        .mock(server, path)
}

/// Like [`graphql`], but records every request body it answers.
pub(crate) fn recording(
    server: &mut ServerGuard,
    path: &str,
    operation: &'static str,
    body: Value,
) -> (Mock, Arc<Mutex<Vec<Value>>>) {
    Answer::new(operation, body).recording(server, path)
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
