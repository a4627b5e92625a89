//! Authentication flows: htpasswd basic auth on a real registry, Docker config files, and the
//! bearer-token handshake against a scripted server.

use base64::Engine as _;
use dagster_deploy_registry::{Credentials, Error, ImageRef, ImageSource, Secret, push_image};

use crate::images;
use crate::recording_client;
use crate::registry_server::RegistryServer;

fn layout_source(dir: &std::path::Path) -> ImageSource {
    images::oci_layout(dir, &[images::random_bytes(50_000)], "v1");
    format!("oci:{}", dir.display()).parse().unwrap()
}

#[tokio::test]
async fn basic_auth_registry_accepts_explicit_credentials_and_docker_config() {
    let registry = RegistryServer::start_with_htpasswd("ci", "correct horse");
    let layout = tempfile::tempdir().unwrap();
    let source = layout_source(layout.path());

    let (client, _) = recording_client(Credentials::Basic {
        username: "ci".into(),
        password: Secret::new("correct horse"),
    });
    let report = push_image(&client, &source, &registry.image("private/app:v1"))
        .await
        .unwrap();
    assert_eq!(report.blobs_uploaded, 2);

    let config_dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("ci:correct horse");
    let config = config_dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host),
    )
    .unwrap();
    let (client, _) = recording_client(Credentials::DockerConfigFile(config));
    let again = push_image(&client, &source, &registry.image("private/app:v2"))
        .await
        .unwrap();
    assert_eq!((again.digest, again.blobs_skipped), (report.digest, 2));
}

#[tokio::test]
async fn basic_auth_registry_rejects_missing_and_wrong_credentials_without_leaking_them() {
    let registry = RegistryServer::start_with_htpasswd("ci", "correct horse");
    let layout = tempfile::tempdir().unwrap();
    let source = layout_source(layout.path());

    let (anonymous, _) = recording_client(Credentials::Anonymous);
    let error = push_image(&anonymous, &source, &registry.image("private/app:v1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("no credentials found") && message.contains("docker login"),
        "{message}"
    );

    let (wrong, _) = recording_client(Credentials::Basic {
        username: "ci".into(),
        password: Secret::new("battery staple"),
    });
    let error = push_image(&wrong, &source, &registry.image("private/app:v1"))
        .await
        .unwrap_err();
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(
            shown.contains("`ci`") && !shown.contains("battery staple"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn bearer_challenge_fetches_a_token_once_and_reuses_it() {
    let mut server = mockito::Server::new_async().await;
    let host = server.host_with_port();
    let digest = format!("sha256:{}", "a".repeat(64));
    let blob_path = format!("/v2/team/app/blobs/{digest}");
    let challenge = format!(r#"Bearer realm="http://{host}/token",service="test-registry""#);
    let unauthenticated = server
        .mock("HEAD", blob_path.as_str())
        .match_header("authorization", mockito::Matcher::Missing)
        .with_status(401)
        .with_header("www-authenticate", &challenge)
        .expect(1)
        .create_async()
        .await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("robot:tok-pw")
    );
    let token = server
        .mock("GET", "/token")
        .match_query(mockito::Matcher::AllOf(vec![
            mockito::Matcher::UrlEncoded("service".into(), "test-registry".into()),
            mockito::Matcher::UrlEncoded("scope".into(), "repository:team/app:pull".into()),
        ]))
        .match_header("authorization", basic.as_str())
        .with_body(r#"{"token":"tok123"}"#)
        .expect(1)
        .create_async()
        .await;
    let authenticated = server
        .mock("HEAD", blob_path.as_str())
        .match_header("authorization", "Bearer tok123")
        .with_status(200)
        .expect(2)
        .create_async()
        .await;

    let (client, _) = recording_client(Credentials::Basic {
        username: "robot".into(),
        password: Secret::new("tok-pw"),
    });
    let image = ImageRef::parse(&format!("{host}/team/app:v1")).unwrap();
    assert!(client.blob_exists(&image, &digest).await.unwrap());
    assert!(client.blob_exists(&image, &digest).await.unwrap());
    unauthenticated.assert_async().await;
    token.assert_async().await;
    authenticated.assert_async().await;
}
