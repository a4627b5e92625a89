//! Authentication flows: htpasswd basic auth on a real registry, Docker config files, and the
//! bearer-token handshake against a scripted server.

use base64::Engine as _;
use dagster_deploy_registry::{Credentials, Error, ImageRef, ImageSource, Secret, push_image};

use crate::images;
use crate::recording_client;
use dagster_deploy_registry::test_support::RegistryServer;

fn layout_source(dir: &std::path::Path) -> ImageSource {
    images::oci_layout(dir, &[images::random_bytes(50_000)], "v1");
    format!("oci:{}", dir.display()).parse().unwrap()
}

#[tokio::test]
async fn basic_auth_registry_accepts_explicit_credentials_and_docker_config() {
    let registry = RegistryServer::start_with_login("ci", "correct horse");
    let layout = tempfile::tempdir().unwrap();
    let source = layout_source(layout.path());

    let (client, _) = recording_client(Credentials::Basic {
        registries: vec![registry.host().clone()],
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
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
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
    let registry = RegistryServer::start_with_login("ci", "correct horse");
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
    let help = error.help().unwrap_or_default();
    assert!(
        message.contains("no credentials found") && help.contains("Docker's config.json"),
        "{message} / {help}"
    );

    let (wrong, _) = recording_client(Credentials::Basic {
        registries: vec![registry.host().clone()],
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
        registries: vec![host.clone()],
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

/// A minimal OCI manifest body, served by the scripted registries below.
const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

#[tokio::test]
async fn explicit_credentials_never_reach_another_registry_or_its_token_service() {
    let password = "only-for-registry-a";
    let registry_a = RegistryServer::start_with_login("ci", password);
    let mut registry_b = mockito::Server::new_async().await;
    let host_b = registry_b.host_with_port();
    assert_ne!(registry_a.host(), host_b);
    let with_any_authorization = mockito::Matcher::Regex(".+".into());

    // Registry B: a Docker-Hub-like registry with an anonymous token service.
    let challenge = format!(r#"Bearer realm="http://{host_b}/token",service="registry-b""#);
    let manifest_path = "/v2/base/python/manifests/3.12";
    let challenged = registry_b
        .mock("GET", manifest_path)
        .match_header("authorization", mockito::Matcher::Missing)
        .with_status(401)
        .with_header("www-authenticate", &challenge)
        .expect(1)
        .create_async()
        .await;
    let anonymous_token = registry_b
        .mock("GET", "/token")
        .match_query(mockito::Matcher::Any)
        .match_header("authorization", mockito::Matcher::Missing)
        .with_body(r#"{"token":"anonymous-token"}"#)
        .expect(1)
        .create_async()
        .await;
    let token_with_credentials = registry_b
        .mock("GET", "/token")
        .match_query(mockito::Matcher::Any)
        .match_header("authorization", with_any_authorization.clone())
        .with_status(500)
        .expect(0)
        .create_async()
        .await;
    let manifest = registry_b
        .mock("GET", manifest_path)
        .match_header("authorization", "Bearer anonymous-token")
        .with_header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .with_body(MANIFEST)
        .expect(1)
        .create_async()
        .await;
    let basic_on_manifest = registry_b
        .mock("GET", manifest_path)
        .match_header(
            "authorization",
            mockito::Matcher::Regex("(?i)^basic".into()),
        )
        .with_status(500)
        .expect(0)
        .create_async()
        .await;
    // Registry C: an htpasswd-style Basic challenge on a blob.
    let mut registry_c = mockito::Server::new_async().await;
    let host_c = registry_c.host_with_port();
    let digest = format!("sha256:{}", "b".repeat(64));
    let blob_path = format!("/v2/other/repo/blobs/{digest}");
    let basic_challenge = registry_c
        .mock("HEAD", blob_path.as_str())
        .match_header("authorization", mockito::Matcher::Missing)
        .with_status(401)
        .with_header("www-authenticate", r#"Basic realm="registry-b""#)
        .expect(2)
        .create_async()
        .await;
    let blob_with_credentials = registry_c
        .mock("HEAD", blob_path.as_str())
        .match_header("authorization", with_any_authorization)
        .with_status(200)
        .expect(0)
        .create_async()
        .await;

    let (client, _) = recording_client(Credentials::Basic {
        registries: vec![registry_a.host().clone()],
        username: "ci".into(),
        password: Secret::new(password),
    });
    // The credentials work where they belong ...
    let layout = tempfile::tempdir().unwrap();
    let source = layout_source(layout.path());
    let pushed = push_image(&client, &source, &registry_a.image("team/app:v1"))
        .await
        .unwrap();
    assert_eq!(pushed.blobs_uploaded, 2);

    // ... and pulls from registries B and C (as a build's base image) go anonymous.
    let base = ImageRef::parse(&format!("{host_b}/base/python:3.12")).unwrap();
    let fetched = client.fetch_manifest(&base).await.unwrap();
    assert_eq!(fetched.bytes, MANIFEST.as_bytes());

    let other = ImageRef::parse(&format!("{host_c}/other/repo:1")).unwrap();
    let error = client.blob_exists(&other, &digest).await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(
        matches!(error, Error::Unauthorized { status: 401, .. })
            && shown.contains(&format!("are for {} only", registry_a.host()))
            && !shown.contains(password),
        "{shown}"
    );

    challenged.assert_async().await;
    anonymous_token.assert_async().await;
    token_with_credentials.assert_async().await;
    manifest.assert_async().await;
    basic_on_manifest.assert_async().await;
    basic_challenge.assert_async().await;
    blob_with_credentials.assert_async().await;
}

#[tokio::test]
async fn token_realm_on_plain_http_to_a_remote_host_is_refused() {
    let password = "never-in-plaintext";
    let mut registry = mockito::Server::new_async().await;
    let host = registry.host_with_port();
    let digest = format!("sha256:{}", "c".repeat(64));
    let challenge = registry
        .mock("HEAD", format!("/v2/team/app/blobs/{digest}").as_str())
        .with_status(401)
        .with_header(
            "www-authenticate",
            r#"Bearer realm="http://auth.example.invalid:8080/token",service="reg""#,
        )
        .expect(1)
        .create_async()
        .await;

    let (client, _) = recording_client(Credentials::basic(host.clone(), "robot", password));
    let image = ImageRef::parse(&format!("{host}/team/app:v1")).unwrap();
    let error = client.blob_exists(&image, &digest).await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(
        matches!(&error, Error::InsecureTransport { host, .. } if host == "auth.example.invalid:8080"),
        "{shown}"
    );
    assert!(
        error.to_string().contains("auth.example.invalid:8080")
            && error
                .help()
                .is_some_and(|help| help.contains("insecure registries"))
            && !shown.contains(password),
        "{shown}"
    );
    challenge.assert_async().await;
}

#[tokio::test]
async fn upload_session_on_plain_http_to_a_remote_host_gets_no_credentials() {
    let password = "session-secret";
    let mut registry = mockito::Server::new_async().await;
    let host = registry.host_with_port();
    let start_challenged = registry
        .mock("POST", "/v2/team/app/blobs/uploads/")
        .match_header("authorization", mockito::Matcher::Missing)
        .with_status(401)
        .with_header("www-authenticate", r#"Basic realm="reg""#)
        .expect(1)
        .create_async()
        .await;
    let started = registry
        .mock("POST", "/v2/team/app/blobs/uploads/")
        .match_header("authorization", mockito::Matcher::Regex("^Basic ".into()))
        .with_status(202)
        .with_header("location", "http://uploads.example.invalid/session/1")
        .expect(1)
        .create_async()
        .await;

    let (client, _) = recording_client(Credentials::basic(host.clone(), "robot", password));
    let image = ImageRef::parse(&format!("{host}/team/app:v1")).unwrap();
    let bytes = bytes::Bytes::from_static(b"{}");
    let digest = dagster_deploy_registry::sha256_digest(&bytes);
    let error = client
        .upload_blob_bytes(&image, &digest, bytes)
        .await
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(
        matches!(&error, Error::InsecureTransport { host, .. } if host == "uploads.example.invalid")
            && !shown.contains(password),
        "{shown}"
    );
    start_challenged.assert_async().await;
    started.assert_async().await;
}

/// The credential helper named by `credsStore` runs once per registry, however many blobs a
/// push sends in parallel.
#[cfg(unix)]
#[tokio::test]
async fn a_credential_helper_runs_once_per_push() {
    use std::os::unix::fs::PermissionsExt as _;

    let registry = RegistryServer::start_with_login("ci", "helper horse");
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls.log");
    let helper = dir.path().join("docker-credential-counting");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\necho \"$server\" >> '{}'\nprintf '{{\"Username\":\"ci\",\"Secret\":\"helper horse\"}}'\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"credsStore":"counting"}"#).unwrap();
    let layout = tempfile::tempdir().unwrap();
    images::oci_layout(
        layout.path(),
        &[
            images::random_bytes(10_000),
            images::random_bytes(20_000),
            images::random_bytes(30_000),
        ],
        "v1",
    );
    let source: ImageSource = format!("oci:{}", layout.path().display()).parse().unwrap();

    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let client =
        dagster_deploy_registry::RegistryClient::new(dagster_deploy_registry::ClientOptions {
            credentials: Credentials::DockerConfigFile(config),
            helper_search_path: Some(path.into()),
            ..Default::default()
        })
        .unwrap();
    let report = push_image(&client, &source, &registry.image("team/app:v1"))
        .await
        .unwrap();
    assert_eq!(report.blobs_uploaded, 4);
    let logged = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        logged.lines().collect::<Vec<_>>(),
        [registry.host().as_str()]
    );
}
