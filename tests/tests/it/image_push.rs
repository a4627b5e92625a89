//! `image push` through the binary: choosing one platform of an index that a local source holds
//! only partly, as `docker save` writes it for a multi-platform image.

use std::process::Command;

use dagster_deploy_e2e::Registry;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{dagster_deploy, describe, run, write_oci_layout};

/// Turns the single-image layout at `dir` into one whose root is an index listing that image
/// as linux/amd64 and a linux/arm64 image whose blobs are absent; returns the amd64 digest.
fn wrap_in_partial_index(dir: &std::path::Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let amd64 = index["manifests"][0].clone();
    let digest = amd64["digest"].as_str().unwrap().to_owned();
    let missing = format!("sha256:{}", hex::encode(Sha256::digest(b"not saved")));
    let inner = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": amd64["mediaType"], "digest": digest, "size": amd64["size"], "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": amd64["mediaType"], "digest": missing, "size": 10, "platform": {"os": "linux", "architecture": "arm64"}}
        ]
    }))
    .unwrap();
    let inner_digest = hex::encode(Sha256::digest(&inner));
    std::fs::write(dir.join("blobs/sha256").join(&inner_digest), &inner).unwrap();
    let outer = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": format!("sha256:{inner_digest}"),
        "size": inner.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}
    }]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&outer).unwrap()).unwrap();
    digest
}

#[test]
fn image_push_takes_one_platform_of_a_partly_saved_index_and_says_how_when_it_must() {
    let registry = Registry::start();
    let layout = tempfile::tempdir().unwrap();
    write_oci_layout(layout.path(), "v1", &[("hello.txt", b"hi")]);
    let amd64 = wrap_in_partial_index(layout.path());
    let source = format!("oci:{}:v1", layout.path().display());
    let destination = format!("{}/saved/app:v1", registry.host());

    let whole = run(Command::new(dagster_deploy()).args(["image", "push", &source, &destination]));
    assert_eq!(whole.status.code(), Some(5), "{}", describe(&whole));
    let stderr = String::from_utf8_lossy(&whole.stderr);
    assert!(
        stderr.contains("linux/arm64") && stderr.contains("--platform"),
        "{stderr}"
    );

    let one = run(Command::new(dagster_deploy()).args([
        "image",
        "push",
        "--platform",
        "linux/amd64",
        &source,
        &destination,
    ]));
    assert!(one.status.success(), "{}", describe(&one));
    assert_eq!(String::from_utf8_lossy(&one.stdout).trim(), amd64);
}

/// A proxy stand-in on loopback that answers every connection with 502 and counts them.
fn counting_proxy() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = connections.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (address, connections)
}

#[test]
fn a_proxy_in_the_environment_is_not_used_for_a_loopback_registry() {
    let registry = Registry::start();
    let (proxy, connections) = counting_proxy();
    let layout = tempfile::tempdir().unwrap();
    write_oci_layout(layout.path(), "v1", &[("hello.txt", b"hi")]);
    let source = format!("oci:{}:v1", layout.path().display());
    let destination = format!("{}/proxied/app:v1", registry.host());
    let proxy_url = format!("http://{proxy}");

    let pushed = run(Command::new(dagster_deploy())
        .args(["image", "push", &source, &destination])
        .env("HTTP_PROXY", &proxy_url)
        .env("HTTPS_PROXY", &proxy_url)
        .env("ALL_PROXY", &proxy_url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy"));
    assert!(pushed.status.success(), "{}", describe(&pushed));
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the loopback registry was reached through the proxy"
    );
}
