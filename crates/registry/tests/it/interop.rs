//! Images as other tools write them: `docker save` archives from the containerd image store
//! (gzip layers, an `index.json` listing platforms it does not hold), one platform out of an
//! index, and cross-repository mounts for local sources that name their origin.

use dagster_deploy_registry::build::Platform;
use dagster_deploy_registry::{
    Credentials, Error, ImageSource, PlatformSelection, push_image, push_image_with,
};

use crate::images;
use crate::recording_client;
use crate::skopeo_inspect;
use dagster_deploy_registry::test_support::RegistryServer;

fn one(platform: &str) -> PlatformSelection {
    PlatformSelection::One(platform.parse::<Platform>().unwrap())
}

fn docker_archive(path: &std::path::Path) -> ImageSource {
    format!("docker-archive:{}", path.display())
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_docker_archive_with_gzip_layers_pushes_them_as_gzip_blobs() {
    let registry = RegistryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("save.tar");
    let layers = [images::random_bytes(100_000), images::random_bytes(50_000)];
    let gzip_digests = images::docker_archive_gzip(&archive, &layers, &["app:v1"]);
    let (client, _) = recording_client(Credentials::Anonymous);
    let dest = registry.image("saved/gzip:v1");
    let report = push_image(&client, &docker_archive(&archive), &dest)
        .await
        .unwrap();
    assert_eq!(report.blobs_uploaded, 3);
    let manifest = client.fetch_manifest(&dest).await.unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let pushed: Vec<(&str, &str)> = parsed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            (
                layer["digest"].as_str().unwrap(),
                layer["mediaType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pushed,
        gzip_digests
            .iter()
            .map(|digest| (
                digest.as_str(),
                "application/vnd.oci.image.layer.v1.tar+gzip"
            ))
            .collect::<Vec<_>>()
    );
    let inspected = skopeo_inspect(&format!("{}/saved/gzip:v1", registry.host()), false);
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_docker_save_archive_with_an_index_is_an_oci_layout_and_one_platform_can_be_chosen() {
    let registry = RegistryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("save.tar");
    let amd64_digest = images::docker_save_partial_index(&archive, "docker.io/acme/app:v1");
    let (client, _) = recording_client(Credentials::Anonymous);
    let source = docker_archive(&archive);

    let error = push_image(&client, &source, &registry.image("saved/all:v1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::IncompleteIndex { .. })
            && error.to_string().contains("lists linux/arm64 (sha256:"),
        "{error}"
    );

    let dest = registry.image("saved/amd64:v1");
    let report = push_image_with(&client, &source, &dest, &one("linux/amd64"))
        .await
        .unwrap();
    assert_eq!(
        report.digest, amd64_digest,
        "the manifest is pushed as saved"
    );
    assert_eq!(report.manifests_pushed, 1);
    assert_eq!(
        client.fetch_manifest(&dest).await.unwrap().digest,
        amd64_digest
    );

    let error = push_image_with(&client, &source, &dest, &one("linux/s390x"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("linux/amd64, linux/arm64"),
        "the error lists what the source offers: {error}"
    );
}

#[tokio::test]
async fn one_platform_of_a_registry_image_is_copied_alone() {
    let registry = RegistryServer::start();
    let layout = tempfile::tempdir().unwrap();
    let index_digest =
        images::oci_layout_multi_platform(layout.path(), &images::random_bytes(30_000), "multi");
    let (client, _) = recording_client(Credentials::Anonymous);
    let source: ImageSource = format!("oci:{}:multi", layout.path().display())
        .parse()
        .unwrap();
    let everything = push_image_with(
        &client,
        &source,
        &registry.image("multi/all:v1"),
        &PlatformSelection::All,
    )
    .await
    .unwrap();
    assert_eq!(everything.digest, index_digest);

    let remote: ImageSource = format!("{}/multi/all:v1", registry.host()).parse().unwrap();
    let dest = registry.image("multi/arm:v1");
    let report = push_image_with(&client, &remote, &dest, &one("linux/arm64"))
        .await
        .unwrap();
    let inspected = skopeo_inspect(&format!("{}/multi/arm:v1", registry.host()), true);
    assert!(inspected.get("manifests").is_none(), "{inspected}");
    assert_eq!(
        report.blobs_mounted, 3,
        "config and both layers mount from the source repository"
    );
    let config = skopeo_inspect(&format!("{}/multi/arm:v1", registry.host()), false);
    assert_eq!(config["Architecture"], "arm64");
}

#[tokio::test]
async fn a_local_source_mounts_blobs_from_the_repository_it_names() {
    let registry = RegistryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("save.tar");
    let origin = format!("{}/team/base:v1", registry.host());
    images::docker_archive_gzip(
        &archive,
        &[images::random_bytes(80_000), images::random_bytes(40_000)],
        &[&origin],
    );
    let (client, _) = recording_client(Credentials::Anonymous);
    let source = docker_archive(&archive);
    let first = push_image(&client, &source, &registry.image("team/base:v1"))
        .await
        .unwrap();
    assert_eq!((first.blobs_uploaded, first.blobs_mounted), (3, 0));
    let second = push_image(&client, &source, &registry.image("team/copy:v1"))
        .await
        .unwrap();
    assert_eq!(
        (
            second.blobs_uploaded,
            second.blobs_mounted,
            second.bytes_uploaded
        ),
        (0, 3, 0),
        "every blob mounts from team/base"
    );
    assert_eq!(second.digest, first.digest);
}
