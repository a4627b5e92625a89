//! The forge client against mockito stand-ins of the GitHub and GitLab REST APIs: one comment
//! kept up to date across runs, foreign comments untouched, pagination, the token kept to its
//! origin, permission errors, retries and the avatar lookup.

mod comments;
mod transport;

use std::time::Duration;

use dagster_deploy_forge::{ForgeClient, ForgeOptions, ForgeToken};

const TOKEN: &str = "ghs_test_token_value";

/// Options with fast retries, so that retry tests take milliseconds.
fn options() -> ForgeOptions {
    let mut options = ForgeOptions {
        request_timeout: Duration::from_secs(5),
        ..ForgeOptions::default()
    };
    options.retry.base_delay = Duration::from_millis(1);
    options.retry.max_delay = Duration::from_millis(5);
    options
}

fn github(server: &mockito::Server) -> ForgeClient {
    ForgeClient::github(&server.url(), ForgeToken::new(TOKEN), options()).unwrap()
}

fn gitlab(server: &mockito::Server) -> ForgeClient {
    ForgeClient::gitlab(
        &format!("{}/api/v4", server.url()),
        ForgeToken::new(TOKEN),
        options(),
    )
    .unwrap()
}
