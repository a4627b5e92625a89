//! Fault injection: a TCP proxy in front of the registry drops the connection in the middle of
//! a layer upload; the push must retry (resuming or restarting) and still succeed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dagster_deploy_registry::{Credentials, ImageRef, ImageSource, ProgressEvent, push_image};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::images;
use crate::recording_client;
use dagster_deploy_registry::test_support::RegistryServer;

/// Forwards 127.0.0.1:port to `upstream`; the first connection that sends more than
/// `drop_after` bytes upstream is cut there, once.
async fn start_dropping_proxy(upstream: String, drop_after: u64) -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let flag = flag.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let downstream = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                let mut forwarded = 0u64;
                let mut buffer = vec![0u8; 64 * 1024];
                while let Ok(read) = client_read.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    forwarded += read as u64;
                    if forwarded > drop_after && !flag.swap(true, Ordering::SeqCst) {
                        // Forward part of this read, then cut both directions.
                        let _ = server_write.write_all(&buffer[..read / 2]).await;
                        downstream.abort();
                        return;
                    }
                    if server_write.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
                let _ = downstream.await;
            });
        }
    });
    (address, dropped)
}

#[tokio::test]
async fn upload_interrupted_by_a_dropped_connection_is_retried_and_succeeds() {
    let registry = RegistryServer::start();
    let (proxy, dropped) = start_dropping_proxy(registry.host().clone(), 1_500_000).await;
    let layout = tempfile::tempdir().unwrap();
    let layer = images::random_bytes(4_000_000);
    let manifest_digest = images::oci_layout(layout.path(), std::slice::from_ref(&layer), "v1");
    let (client, events) = recording_client(Credentials::Anonymous);
    let dest = ImageRef::parse(&format!("{proxy}/faulty/app:v1")).unwrap();
    let source: ImageSource = format!("oci:{}", layout.path().display()).parse().unwrap();

    let report = push_image(&client, &source, &dest).await.unwrap();
    assert!(
        dropped.load(Ordering::SeqCst),
        "the proxy never cut a connection"
    );
    assert_eq!(report.digest, manifest_digest);
    let retries = events
        .lock()
        .unwrap()
        .iter()
        .filter(|event| matches!(event, ProgressEvent::BlobRetry { .. }))
        .count();
    assert!(retries >= 1, "expected a retry event");
    // Read back through the registry directly: the layer must be intact.
    let direct = registry.image("faulty/app:v1");
    let fetched = client
        .fetch_blob(&direct, &images::digest(&layer), 8_000_000)
        .await
        .unwrap();
    assert_eq!(fetched.as_ref(), layer.as_slice());
}

/// The shared retry policy: 429 (with its own `Retry-After`), 500, 502, 503 and 504 are retried;
/// a 501 is not.
#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_and_other_statuses_are_not() {
    let mut server = mockito::Server::new_async().await;
    let host = server.host_with_port();
    let digest = format!("sha256:{}", "e".repeat(64));
    let path = format!("/v2/team/app/blobs/{digest}");
    let mut failing = Vec::new();
    for (status, retry_after) in [
        (429, Some("0")),
        (500, None),
        (502, None),
        (503, Some("0.1")),
        (504, None),
    ] {
        let mut mock = server.mock("HEAD", path.as_str()).with_status(status);
        if let Some(seconds) = retry_after {
            mock = mock.with_header("retry-after", seconds);
        }
        failing.push(mock.expect(1).create_async().await);
    }
    let ok = server
        .mock("HEAD", path.as_str())
        .with_status(200)
        .expect(1)
        .create_async()
        .await;
    let client =
        dagster_deploy_registry::RegistryClient::new(dagster_deploy_registry::ClientOptions {
            credentials: Credentials::Anonymous,
            max_retries: 5,
            retry_base_delay: std::time::Duration::from_millis(1),
            ..Default::default()
        })
        .unwrap();
    let image = ImageRef::parse(&format!("{host}/team/app:v1")).unwrap();
    assert!(client.blob_exists(&image, &digest).await.unwrap());
    for mock in failing {
        mock.assert_async().await;
    }
    ok.assert_async().await;

    let other = format!("/v2/team/app/blobs/sha256:{}", "f".repeat(64));
    let not_implemented = server
        .mock("HEAD", other.as_str())
        .with_status(501)
        .expect(1)
        .create_async()
        .await;
    let error = client
        .blob_exists(&image, &format!("sha256:{}", "f".repeat(64)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            dagster_deploy_registry::Error::Status { status: 501, .. }
        ),
        "{error:?}"
    );
    not_implemented.assert_async().await;
}
