//! Error variants and retry paths: HTTP statuses, GraphQL errors, Retry-After, maintenance,
//! network failures, timeouts, plain-HTTP refusal, and that the token never leaks.

use std::time::{Duration, Instant};

use dagster_deploy_cloud_client::{ApiToken, ClientOptions, CloudClient, Error, OrgUrl};
use serde_json::json;

use crate::support::{TOKEN, assert_no_token, client, client_with, fast_options, graphql};

const OK_NAME: &str = r#"{"data": {"currentDeployment": {"deploymentName": "prod"}}}"#;

fn ok_body() -> serde_json::Value {
    serde_json::from_str(OK_NAME).unwrap()
}

#[tokio::test]
async fn http_401_is_unauthorized_with_a_hint_and_no_token() {
    let mut server = mockito::Server::new_async().await;
    let mock = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        401,
        json!({"errors": [{"message": format!("invalid token {TOKEN}")}]}),
    )
    .expect(1)
    .create_async()
    .await;
    let error = client(&server)
        .deployment("prod")
        .unwrap()
        .current_deployment_name()
        .await
        .unwrap_err();
    assert!(error.is_unauthorized(), "{error:?}");
    assert!(
        error
            .help()
            .is_some_and(|help| help.contains("check that the token is valid")),
        "{error:?}"
    );
    assert!(error.to_string().contains("invalid token ****"), "{error}");
    assert_no_token(&error);
    mock.assert_async().await;
}

#[tokio::test]
async fn a_graphql_unauthorized_error_on_http_200_is_unauthorized() {
    for body in [
        json!({"errors": [{"message": "Unauthorized: bad token", "extensions": {"code": "UNAUTHORIZED"}}]}),
        json!({"errors": [{"message": "Unauthorized: the token is not valid"}]}),
    ] {
        let mut server = mockito::Server::new_async().await;
        let _mock = graphql(
            &mut server,
            "/graphql",
            "CliOrganizationSettings",
            200,
            body,
        )
        .create_async()
        .await;
        let error = client(&server).organization_settings().await.unwrap_err();
        assert!(error.is_unauthorized(), "{error:?}");
        assert_no_token(&error);
    }
}

#[tokio::test]
async fn server_errors_and_echoed_tokens_are_scrubbed_everywhere() {
    let mut server = mockito::Server::new_async().await;
    let echo = format!("token was {TOKEN}");
    let _http = server
        .mock("POST", "/graphql")
        .with_status(400)
        .with_body(format!("<html>{echo}</html>"))
        .expect(1)
        .create_async()
        .await;
    let _graphql = graphql(
        &mut server,
        "/graphql",
        "CliOrganizationSettings",
        200,
        json!({"errors": [{"message": echo}]}),
    )
    .expect(1)
    .create_async()
    .await;
    let _python = graphql(
        &mut server,
        "/graphql",
        "CreateAgentTokenMutation",
        200,
        json!({"data": {"createAgentToken": {"__typename": "PythonError", "message": echo, "stack": [echo]}}}),
    )
    .create_async()
    .await;
    let _invalid = graphql(
        &mut server,
        "/prod/graphql",
        "CliDeployLocations",
        200,
        json!({"data": {"deployLocations": {"__typename": "InvalidLocationError", "errors": [echo]}}}),
    )
    .create_async()
    .await;
    let client = client(&server);

    let http = client.organization_settings().await.unwrap_err();
    match &http {
        Error::Http {
            status,
            body_excerpt,
            attempts,
            ..
        } => {
            assert_eq!((*status, *attempts), (400, 1), "400 is not retried");
            assert_eq!(body_excerpt, "<html>token was ****</html>");
        }
        other => panic!("unexpected {other:?}"),
    }
    let graphql_error = client.organization_settings().await.unwrap_err();
    assert!(
        matches!(graphql_error, Error::GraphQl { .. }),
        "{graphql_error:?}"
    );
    let python = client.create_agent_token(None).await.unwrap_err();
    assert!(matches!(python, Error::Server { .. }), "{python:?}");
    let invalid = client
        .deployment("prod")
        .unwrap()
        .deploy_locations(&[])
        .await
        .unwrap_err();
    assert!(
        matches!(invalid, Error::InvalidLocation { .. }),
        "{invalid:?}"
    );
    for error in [&http, &graphql_error, &python, &invalid] {
        assert!(error.to_string().contains("token was ****"), "{error}");
        assert_no_token(error);
    }
    assert!(!format!("{client:?}").contains(TOKEN));
}

#[tokio::test]
async fn retryable_statuses_are_retried_until_success() {
    for status in [500, 502, 503, 504, 429, 409] {
        let mut server = mockito::Server::new_async().await;
        let failing = graphql(
            &mut server,
            "/prod/graphql",
            "CliCurrentDeploymentName",
            status,
            json!({}),
        )
        .expect(2)
        .create_async()
        .await;
        let ok = graphql(
            &mut server,
            "/prod/graphql",
            "CliCurrentDeploymentName",
            200,
            ok_body(),
        )
        .expect(1)
        .create_async()
        .await;
        let name = client(&server)
            .deployment("prod")
            .unwrap()
            .current_deployment_name()
            .await
            .unwrap();
        assert_eq!(name, "prod", "status {status}");
        failing.assert_async().await;
        ok.assert_async().await;
    }
}

#[tokio::test]
async fn graphql_errors_on_a_503_are_retried() {
    let mut server = mockito::Server::new_async().await;
    let failing = graphql(
        &mut server,
        "/prod/graphql",
        "CliDeployLocations",
        503,
        json!({"errors": [{"message": "overloaded"}]}),
    )
    .expect(1)
    .create_async()
    .await;
    let _ok = graphql(
        &mut server,
        "/prod/graphql",
        "CliDeployLocations",
        200,
        json!({"data": {"deployLocations": {"__typename": "DeployLocationsSuccess", "locations": []}}}),
    )
    .expect(1)
    .create_async()
    .await;
    client(&server)
        .deployment("prod")
        .unwrap()
        .deploy_locations(&[])
        .await
        .unwrap();
    failing.assert_async().await;
}

#[tokio::test]
async fn exhausted_retries_report_the_status_and_attempt_count() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("POST", "/prod/graphql")
        .with_status(503)
        .with_body("maintenance window")
        .expect(4)
        .create_async()
        .await;
    let error = client(&server)
        .deployment("prod")
        .unwrap()
        .current_deployment_name()
        .await
        .unwrap_err();
    match &error {
        Error::Http {
            status,
            attempts,
            body_excerpt,
            ..
        } => {
            assert_eq!((*status, *attempts), (503, 4));
            assert_eq!(body_excerpt, "maintenance window");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(error.is_retryable());
    mock.assert_async().await;
}

#[tokio::test]
async fn retry_after_applies_to_its_own_attempt_only() {
    let mut server = mockito::Server::new_async().await;
    let _first = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        429,
        json!({}),
    )
    .with_header("retry-after", "0.4")
    .expect(1)
    .create_async()
    .await;
    let _second = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        503,
        json!({}),
    )
    .expect(2)
    .create_async()
    .await;
    let _ok = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        200,
        ok_body(),
    )
    .expect(1)
    .create_async()
    .await;
    let options = ClientOptions {
        max_retry_delay: Duration::from_secs(5),
        ..fast_options()
    };
    let started = Instant::now();
    client_with(&server, options)
        .deployment("prod")
        .unwrap()
        .current_deployment_name()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    // 0.4 s for the first retry, then ~2 ms and ~4 ms backoff; reusing Retry-After would take 1.2 s.
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");
}

#[tokio::test]
async fn retry_after_is_capped() {
    let mut server = mockito::Server::new_async().await;
    let _first = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        503,
        json!({}),
    )
    .with_header("retry-after", "3600")
    .expect(1)
    .create_async()
    .await;
    let _ok = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        200,
        ok_body(),
    )
    .expect(1)
    .create_async()
    .await;
    let started = Instant::now();
    client(&server)
        .deployment("prod")
        .unwrap()
        .current_deployment_name()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn maintenance_is_waited_out_without_counting_as_a_retry() {
    let mut server = mockito::Server::new_async().await;
    let maintenance = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        200,
        json!({"maintenance": {"message": "upgrading", "retry_interval": 0.01, "timeout": 60}}),
    )
    .expect(5)
    .create_async()
    .await;
    let _ok = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        200,
        ok_body(),
    )
    .expect(1)
    .create_async()
    .await;
    let options = ClientOptions {
        max_retries: 0,
        ..fast_options()
    };
    let name = client_with(&server, options)
        .deployment("prod")
        .unwrap()
        .current_deployment_name()
        .await
        .unwrap();
    assert_eq!(name, "prod");
    maintenance.assert_async().await;
}

#[tokio::test]
async fn maintenance_waits_are_bounded() {
    let mut server = mockito::Server::new_async().await;
    let _maintenance = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        200,
        json!({"maintenance": {"message": "upgrading", "retry_interval": 30}}),
    )
    .create_async()
    .await;
    let options = ClientOptions {
        maintenance_cap: Duration::from_millis(150),
        ..fast_options()
    };
    let started = Instant::now();
    let error = client_with(&server, options)
        .deployment("prod")
        .unwrap()
        .current_deployment_name()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Maintenance { ref message, .. } if message == "upgrading"),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connection_failures_are_retried_then_reported_as_network_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = CloudClient::new(
        OrgUrl::parse(&url).unwrap(),
        ApiToken::new(TOKEN),
        fast_options(),
    )
    .unwrap();
    // Even a non-idempotent operation is retried when no connection was made.
    let error = client.create_agent_token(None).await.unwrap_err();
    match &error {
        Error::Network {
            attempts,
            url: failed,
            ..
        } => {
            assert_eq!(*attempts, 4);
            assert_eq!(failed, &format!("{url}/graphql"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(error.is_retryable());
    assert_no_token(&error);
}

fn slow_server_options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_millis(150),
        max_retries: 1,
        ..fast_options()
    }
}

#[tokio::test]
async fn timed_out_reads_of_idempotent_operations_are_retried() {
    let mut server = mockito::Server::new_async().await;
    let _slow = server
        .mock("POST", "/prod/graphql")
        .with_chunked_body(|writer| {
            std::thread::sleep(Duration::from_millis(400));
            writer.write_all(OK_NAME.as_bytes())
        })
        .create_async()
        .await;
    let error = client_with(&server, slow_server_options())
        .deployment("prod")
        .unwrap()
        .current_deployment_name()
        .await
        .unwrap_err();
    // The mock server handles one request at a time, so it may not have seen the second
    // attempt yet; the client's own attempt count is what matters here.
    assert!(
        matches!(error, Error::Timeout { attempts: 2, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("did not answer within 150ms"),
        "{error}"
    );
}

#[tokio::test]
async fn timed_out_non_idempotent_operations_are_not_resent() {
    let mut server = mockito::Server::new_async().await;
    let slow = server
        .mock("POST", "/graphql")
        .with_chunked_body(|writer| {
            std::thread::sleep(Duration::from_millis(400));
            writer.write_all(b"{}")
        })
        .expect(1)
        .create_async()
        .await;
    let error = client_with(&server, slow_server_options())
        .create_agent_token(None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Timeout { attempts: 1, .. }),
        "{error:?}"
    );
    slow.assert_async().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let mut server = mockito::Server::new_async().await;
    let _redirect = server
        .mock("POST", "/graphql")
        .with_status(302)
        .with_header("location", "http://example.com/graphql")
        .create_async()
        .await;
    let error = client(&server).organization_settings().await.unwrap_err();
    assert!(
        matches!(error, Error::Redirected { status: 302, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("to http://example.com/graphql"),
        "{error}"
    );
}

#[tokio::test]
async fn ok_without_data_is_an_unexpected_response() {
    let mut server = mockito::Server::new_async().await;
    let _empty = server
        .mock("POST", "/graphql")
        .with_body("not json")
        .create_async()
        .await;
    let error = client(&server).organization_settings().await.unwrap_err();
    assert!(
        matches!(error, Error::UnexpectedResponse { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("not json"), "{error}");
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_sending() {
    let error = CloudClient::new(
        OrgUrl::parse("http://acme.dagster.cloud").unwrap(),
        ApiToken::new(TOKEN),
        ClientOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(error, Error::InsecureUrl { .. }), "{error:?}");
    assert_no_token(&error);
}

#[tokio::test]
async fn a_token_with_a_trailing_newline_is_trimmed_and_accepted() {
    let mut server = mockito::Server::new_async().await;
    let mock = graphql(
        &mut server,
        "/prod/graphql",
        "CliCurrentDeploymentName",
        200,
        ok_body(),
    )
    .match_header("dagster-cloud-api-token", TOKEN)
    .expect(1)
    .create_async()
    .await;
    let client = CloudClient::new(
        OrgUrl::parse(&server.url()).unwrap(),
        ApiToken::new(format!("{TOKEN}\n")),
        fast_options(),
    )
    .unwrap();
    let name = client
        .deployment("prod")
        .unwrap()
        .current_deployment_name()
        .await
        .unwrap();
    assert_eq!(name, "prod");
    mock.assert_async().await;
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_fails_in_new_before_any_request() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("POST", mockito::Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let (head, tail) = TOKEN.split_at(10);
    let error = CloudClient::new(
        OrgUrl::parse(&server.url()).unwrap(),
        ApiToken::new(format!("{head}\n{tail}\n")),
        fast_options(),
    )
    .unwrap_err();
    assert!(matches!(error, Error::InvalidToken { .. }), "{error:?}");
    assert!(!error.is_unauthorized());
    let text = error.to_string();
    assert!(text.contains("line break at character 11"), "{text}");
    assert!(!text.contains("rejected the API token"), "{text}");
    for secret in [head, tail] {
        assert!(!text.contains(secret) && !format!("{error:?}").contains(secret));
    }
    assert_no_token(&error);
    mock.assert_async().await;
}

/// HTTP 500 is retried for idempotent operations (see `retryable_statuses_are_retried_until_success`)
/// but not for a non-idempotent mutation, since the server may have acted on it.
#[tokio::test]
async fn http_500_on_a_non_idempotent_mutation_is_not_resent() {
    let mut server = mockito::Server::new_async().await;
    let mint = graphql(
        &mut server,
        "/graphql",
        "CreateAgentTokenMutation",
        500,
        json!({}),
    )
    .expect(1)
    .create_async()
    .await;
    let error = client(&server).create_agent_token(None).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Http {
                status: 500,
                attempts: 1,
                ..
            }
        ),
        "{error:?}"
    );
    mint.assert_async().await;
}

/// A deployment name from a state file or the server becomes a URL path: it is checked.
#[tokio::test]
async fn deployment_names_that_would_change_the_url_path_are_refused() {
    let server = mockito::Server::new_async().await;
    for name in ["../graphql", "a/b", "prod?x=1", "", ".."] {
        let error = client(&server).deployment(name).unwrap_err();
        assert!(
            matches!(error, Error::InvalidDeployment { .. }),
            "{name}: {error:?}"
        );
    }
}
