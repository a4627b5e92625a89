//! Credentials stay with their origin (scheme, host and port): upload sessions, redirects and
//! challenges from anywhere but the registry itself get none of them, and a credential lookup
//! or token fetch happens once per registry however many requests run at once.

use base64::Engine as _;
use dagster_deploy_registry::{Credentials, Error, ImageRef, sha256_digest};
use mockito::{Matcher, Mock, ServerGuard};

use crate::recording_client;

const PASSWORD: &str = "origin-bound-Pa55word";

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("robot:{PASSWORD}"))
    )
}

/// A mock that fails the test if any `method` request reaches `server` with credentials.
async fn no_credentials_expected(server: &mut ServerGuard, method: &str) -> Mock {
    server
        .mock(method, Matcher::Any)
        .match_header("authorization", Matcher::Regex(".+".into()))
        .with_status(400)
        .expect(0)
        .create_async()
        .await
}

/// Mocks `GET path` on the registry: a Basic challenge without credentials, and with them a
/// redirect (`status`) to `location`, which is the mock returned.
async fn challenge_then_redirect(
    registry: &mut ServerGuard,
    path: &str,
    status: usize,
    location: &str,
) -> Mock {
    registry
        .mock("GET", path)
        .match_header("authorization", Matcher::Missing)
        .with_status(401)
        .with_header("www-authenticate", r#"Basic realm="reg""#)
        .create_async()
        .await;
    registry
        .mock("GET", path)
        .match_header("authorization", basic().as_str())
        .with_status(status)
        .with_header("location", location)
        .create_async()
        .await
}

/// Registry A asks for Basic auth, then opens upload sessions on server B (another origin).
#[tokio::test]
async fn an_upload_session_on_another_origin_gets_no_credentials() {
    let mut registry = mockito::Server::new_async().await;
    let mut uploads = mockito::Server::new_async().await;
    let host = registry.host_with_port();
    let session = format!("{}/upload/1", uploads.url());
    let challenge = registry
        .mock("POST", "/v2/team/app/blobs/uploads/")
        .match_header("authorization", Matcher::Missing)
        .with_status(401)
        .with_header("www-authenticate", r#"Basic realm="reg""#)
        .expect(1)
        .create_async()
        .await;
    let started = registry
        .mock("POST", "/v2/team/app/blobs/uploads/")
        .match_header("authorization", basic().as_str())
        .with_status(202)
        .with_header("location", &session)
        .expect(1)
        .create_async()
        .await;
    let patched = uploads
        .mock("PATCH", "/upload/1")
        .match_header("authorization", Matcher::Missing)
        .with_status(202)
        .with_header("location", &session)
        .expect(1)
        .create_async()
        .await;
    let committed = uploads
        .mock("PUT", "/upload/1")
        .match_query(Matcher::Any)
        .match_header("authorization", Matcher::Missing)
        .with_status(201)
        .expect(1)
        .create_async()
        .await;
    let leaked_patch = no_credentials_expected(&mut uploads, "PATCH").await;
    let leaked_put = no_credentials_expected(&mut uploads, "PUT").await;

    let (client, _) = recording_client(Credentials::basic(host.clone(), "robot", PASSWORD));
    let image = ImageRef::parse(&format!("{host}/team/app:v1")).unwrap();
    let bytes = bytes::Bytes::from_static(b"{}");
    let digest = sha256_digest(&bytes);
    client
        .upload_blob_bytes(&image, &digest, bytes)
        .await
        .unwrap();
    for mock in [
        challenge,
        started,
        patched,
        committed,
        leaked_patch,
        leaked_put,
    ] {
        mock.assert_async().await;
    }
}

/// A blob download redirected to a CDN (another origin) is followed without credentials.
#[tokio::test]
async fn a_redirect_to_another_origin_is_followed_without_credentials() {
    let mut registry = mockito::Server::new_async().await;
    let mut cdn = mockito::Server::new_async().await;
    let host = registry.host_with_port();
    let blob = b"{\"config\":{}}";
    let digest = sha256_digest(blob);
    let path = format!("/v2/team/app/blobs/{digest}");
    let redirected = challenge_then_redirect(
        &mut registry,
        &path,
        307,
        &format!("{}/signed/blob?sig=abc", cdn.url()),
    )
    .await;
    let served = cdn
        .mock("GET", "/signed/blob")
        .match_query(Matcher::UrlEncoded("sig".into(), "abc".into()))
        .match_header("authorization", Matcher::Missing)
        .with_body(blob)
        .expect(1)
        .create_async()
        .await;
    let leaked = no_credentials_expected(&mut cdn, "GET").await;

    let (client, _) = recording_client(Credentials::basic(host.clone(), "robot", PASSWORD));
    let image = ImageRef::parse(&format!("{host}/team/app:v1")).unwrap();
    let fetched = client.fetch_blob(&image, &digest, 1024).await.unwrap();
    assert_eq!(fetched.as_ref(), blob);
    for mock in [redirected, served, leaked] {
        mock.assert_async().await;
    }
}

/// Another origin (here the target of a redirect) cannot name a token realm: its challenge is
/// not the registry's, so no credentials go to its realm.
#[tokio::test]
async fn a_challenge_from_another_origin_is_not_answered_with_credentials() {
    let mut registry = mockito::Server::new_async().await;
    let mut elsewhere = mockito::Server::new_async().await;
    let host = registry.host_with_port();
    let digest = format!("sha256:{}", "d".repeat(64));
    let path = format!("/v2/team/app/blobs/{digest}");
    challenge_then_redirect(
        &mut registry,
        &path,
        302,
        &format!("{}/blob", elsewhere.url()),
    )
    .await;
    let _foreign_challenge = elsewhere
        .mock("GET", "/blob")
        .with_status(401)
        .with_header(
            "www-authenticate",
            &format!(
                r#"Bearer realm="{}/token",service="phish""#,
                elsewhere.url()
            ),
        )
        .create_async()
        .await;
    let phished = elsewhere
        .mock("GET", "/token")
        .match_query(Matcher::Any)
        .with_body(r#"{"token":"stolen"}"#)
        .expect(0)
        .create_async()
        .await;

    let (client, _) = recording_client(Credentials::basic(host.clone(), "robot", PASSWORD));
    let image = ImageRef::parse(&format!("{host}/team/app:v1")).unwrap();
    let error = client.fetch_blob(&image, &digest, 1024).await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(
        matches!(error, Error::Status { status: 401, .. }),
        "{shown}"
    );
    phished.assert_async().await;
}

/// Blob HEADs run in parallel; the first challenge must lead to one token fetch, not one per
/// request in flight.
#[tokio::test]
async fn parallel_requests_fetch_one_token() {
    let mut registry = mockito::Server::new_async().await;
    let host = registry.host_with_port();
    let challenge = format!(r#"Bearer realm="{}/token",service="reg""#, registry.url());
    let _challenged = registry
        .mock("HEAD", Matcher::Regex("^/v2/team/app/blobs/".into()))
        .match_header("authorization", Matcher::Missing)
        .with_status(401)
        .with_header("www-authenticate", &challenge)
        .create_async()
        .await;
    let token = registry
        .mock("GET", "/token")
        .match_query(Matcher::Any)
        .match_header("authorization", basic().as_str())
        .with_body(r#"{"token":"tok-1"}"#)
        .expect(1)
        .create_async()
        .await;
    let _present = registry
        .mock("HEAD", Matcher::Regex("^/v2/team/app/blobs/".into()))
        .match_header("authorization", "Bearer tok-1")
        .with_status(200)
        .create_async()
        .await;

    let (client, _) = recording_client(Credentials::basic(host.clone(), "robot", PASSWORD));
    let image = ImageRef::parse(&format!("{host}/team/app:v1")).unwrap();
    let digests: Vec<String> = (0..6)
        .map(|index| format!("sha256:{}", format!("{index:x}").repeat(64)))
        .collect();
    let checks = digests
        .iter()
        .map(|digest| client.blob_exists(&image, digest));
    for exists in futures_util::future::join_all(checks).await {
        assert!(exists.unwrap());
    }
    token.assert_async().await;
}

/// Digests and tags from outside (a manifest, a caller) never reach a URL unchecked.
#[tokio::test]
async fn invalid_digests_are_refused_before_any_request() {
    let mut registry = mockito::Server::new_async().await;
    let host = registry.host_with_port();
    let get = registry
        .mock("GET", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let head = registry
        .mock("HEAD", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let (client, _) = recording_client(Credentials::Anonymous);
    let image = ImageRef::parse(&format!("{host}/team/app:v1")).unwrap();
    for digest in [
        "sha256:../../other/manifests/latest",
        "sha256:abc/../../x",
        "sha256:%2e%2e",
        "",
        "latest",
    ] {
        let error = client.fetch_blob(&image, digest, 1024).await.unwrap_err();
        assert!(
            matches!(error, Error::InvalidReference { .. }),
            "{digest}: {error:?}"
        );
        assert!(
            client.blob_exists(&image, digest).await.is_err(),
            "{digest}"
        );
    }
    for tag in ["../x", "a b", "", "v1/../../x"] {
        assert!(image.with_tag(tag).is_err(), "{tag}");
    }
    get.assert_async().await;
    head.assert_async().await;
}

/// Signed URLs (a CDN's redirect target, an upload session) carry secrets in their query:
/// errors show the URL without it, and never the password.
#[tokio::test]
async fn errors_never_show_signed_url_queries_or_passwords() {
    let mut registry = mockito::Server::new_async().await;
    let mut cdn = mockito::Server::new_async().await;
    let host = registry.host_with_port();
    let blob = b"abc";
    let digest = sha256_digest(blob);
    let path = format!("/v2/team/app/blobs/{digest}");
    challenge_then_redirect(
        &mut registry,
        &path,
        307,
        &format!("{}/blob?X-Amz-Signature=SIGNED-SECRET-42", cdn.url()),
    )
    .await;
    let _broken = cdn
        .mock("GET", "/blob")
        .match_query(Matcher::Any)
        .with_status(500)
        .with_body("storage unavailable")
        .create_async()
        .await;
    let client =
        dagster_deploy_registry::RegistryClient::new(dagster_deploy_registry::ClientOptions {
            credentials: Credentials::basic(host.clone(), "robot", PASSWORD),
            retry_base_delay: std::time::Duration::from_millis(1),
            ..Default::default()
        })
        .unwrap();
    let image = ImageRef::parse(&format!("{host}/team/app:v1")).unwrap();
    let error = client.fetch_blob(&image, &digest, 1024).await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(
        matches!(error, Error::Status { status: 500, .. }) && shown.contains("/blob"),
        "{shown}"
    );
    for secret in ["SIGNED-SECRET-42", PASSWORD] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
