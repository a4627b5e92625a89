//! End-to-end pushes from every source kind into a real registry.

use dagster_deploy_registry::{BlobOutcome, Credentials, ImageSource, ProgressEvent, push_image};

use crate::images;
use crate::{recording_client, skopeo_inspect};
use dagster_deploy_registry::test_support::RegistryServer;

#[tokio::test]
async fn oci_layout_push_preserves_the_digest_and_repush_skips_every_blob() {
    let registry = RegistryServer::start();
    let layout = tempfile::tempdir().unwrap();
    let manifest_digest = images::oci_layout(
        layout.path(),
        &[
            images::random_bytes(1_000_000),
            images::random_bytes(3_000_000),
        ],
        "v1",
    );
    let (client, events) = recording_client(Credentials::Anonymous);
    let source: ImageSource = format!("oci:{}:v1", layout.path().display())
        .parse()
        .unwrap();
    let dest = registry.image("team/app:v1");

    let report = push_image(&client, &source, &dest).await.unwrap();
    assert_eq!(report.digest, manifest_digest);
    assert_eq!(
        (
            report.blobs_uploaded,
            report.blobs_skipped,
            report.blobs_mounted
        ),
        (3, 0, 0)
    );
    assert!(report.bytes_uploaded > 4_000_000);

    let fetched = client.fetch_manifest(&dest).await.unwrap();
    assert_eq!(fetched.digest, manifest_digest);
    let local = std::fs::read(
        layout
            .path()
            .join("blobs/sha256")
            .join(manifest_digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_eq!(
        fetched.bytes.as_ref(),
        local.as_slice(),
        "manifest bytes must be pushed unchanged"
    );
    let inspected = skopeo_inspect(&format!("{}/team/app:v1", registry.host()), false);
    assert_eq!(inspected["Digest"], manifest_digest.as_str());
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);

    let image_totals: Vec<(u64, u64)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|event| match event {
            ProgressEvent::ImageBytes { done, total } => Some((*done, *total)),
            _ => None,
        })
        .collect();
    let (done, total) = *image_totals.last().unwrap();
    assert_eq!(done, total);
    events.lock().unwrap().clear();

    let again = push_image(&client, &source, &dest).await.unwrap();
    assert_eq!(again.digest, manifest_digest);
    assert_eq!(
        (
            again.blobs_uploaded,
            again.blobs_skipped,
            again.bytes_uploaded
        ),
        (0, 3, 0)
    );
    let skipped = events
        .lock()
        .unwrap()
        .iter()
        .filter(|event| {
            matches!(
                event,
                ProgressEvent::BlobDone {
                    outcome: BlobOutcome::Skipped,
                    ..
                }
            )
        })
        .count();
    assert_eq!(skipped, 3);
}

#[tokio::test]
async fn oci_archive_push_matches_the_layout_digest() {
    let registry = RegistryServer::start();
    let layout = tempfile::tempdir().unwrap();
    let manifest_digest =
        images::oci_layout(layout.path(), &[images::random_bytes(500_000)], "latest");
    let archive_dir = tempfile::tempdir().unwrap();
    let archive = archive_dir.path().join("image.tar");
    images::tar_dir(layout.path(), &archive);
    let (client, _) = recording_client(Credentials::Anonymous);
    let source: ImageSource = format!("oci-archive:{}", archive.display())
        .parse()
        .unwrap();
    let report = push_image(&client, &source, &registry.image("archived:1"))
        .await
        .unwrap();
    assert_eq!(report.digest, manifest_digest);
    assert_eq!(report.blobs_uploaded, 2);
}

#[tokio::test]
async fn docker_archive_push_uses_diff_ids_as_layer_digests() {
    let registry = RegistryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("save.tar");
    let layers = [images::random_bytes(300_000), images::random_bytes(200_000)];
    let config_digest = images::docker_archive(&archive, &layers);
    let (client, _) = recording_client(Credentials::Anonymous);
    let dest = registry.image("saved:v2");
    let source: ImageSource = format!("docker-archive:{}", archive.display())
        .parse()
        .unwrap();
    let report = push_image(&client, &source, &dest).await.unwrap();
    assert_eq!(report.blobs_uploaded, 3);

    let manifest = client.fetch_manifest(&dest).await.unwrap();
    assert_eq!(manifest.digest, report.digest);
    let parsed: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    assert_eq!(parsed["config"]["digest"], config_digest.as_str());
    let layer_digests: Vec<&str> = parsed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        layer_digests,
        [images::digest(&layers[0]), images::digest(&layers[1])]
    );
    let config = client
        .fetch_blob(&dest, &config_digest, 1 << 20)
        .await
        .unwrap();
    assert_eq!(images::digest(&config), config_digest);
}

#[tokio::test]
async fn multi_platform_index_is_pushed_whole_with_shared_blobs_once() {
    let registry = RegistryServer::start();
    let layout = tempfile::tempdir().unwrap();
    let index_digest =
        images::oci_layout_multi_platform(layout.path(), &images::random_bytes(100_000), "multi");
    let (client, _) = recording_client(Credentials::Anonymous);
    let dest = registry.image("multi/app:multi");
    let source: ImageSource = format!("oci:{}", layout.path().display()).parse().unwrap();
    let report = push_image(&client, &source, &dest).await.unwrap();
    assert_eq!(report.digest, index_digest);
    // shared layer + 2 own layers + 2 configs; 2 child manifests + the index.
    assert_eq!((report.blobs_uploaded, report.manifests_pushed), (5, 3));

    let index = client.fetch_manifest(&dest).await.unwrap();
    assert_eq!(index.media_type, "application/vnd.oci.image.index.v1+json");
    let raw = skopeo_inspect(&format!("{}/multi/app:multi", registry.host()), true);
    for child in raw["manifests"].as_array().unwrap() {
        let child_digest = child["digest"].as_str().unwrap();
        let fetched = client
            .fetch_manifest(&dest.with_digest(child_digest).unwrap())
            .await
            .unwrap();
        assert_eq!(fetched.digest, child_digest);
    }
}

#[tokio::test]
async fn registry_copy_mounts_within_a_registry_and_streams_across_registries() {
    let first = RegistryServer::start();
    let second = RegistryServer::start();
    let layout = tempfile::tempdir().unwrap();
    let digest = images::oci_layout(layout.path(), &[images::random_bytes(2_000_000)], "v1");
    let (client, _) = recording_client(Credentials::Anonymous);
    let original = first.image("origin/app:v1");
    let source: ImageSource = format!("oci:{}", layout.path().display()).parse().unwrap();
    push_image(&client, &source, &original).await.unwrap();

    let retag = push_image(
        &client,
        &ImageSource::Registry(original.clone()),
        &first.image("other/app:v2"),
    )
    .await
    .unwrap();
    assert_eq!(retag.digest, digest);
    assert_eq!((retag.blobs_mounted, retag.blobs_uploaded), (2, 0));

    let copy = push_image(
        &client,
        &ImageSource::Registry(original),
        &second.image("mirror/app:v1"),
    )
    .await
    .unwrap();
    assert_eq!(copy.digest, digest);
    assert_eq!(copy.blobs_uploaded, 2);
    assert_eq!(
        client
            .fetch_manifest(&second.image("mirror/app:v1"))
            .await
            .unwrap()
            .digest,
        digest
    );
}

#[tokio::test]
async fn corrupt_layer_is_a_digest_mismatch_and_no_manifest_is_pushed() {
    let registry = RegistryServer::start();
    let layout = tempfile::tempdir().unwrap();
    let layer = images::random_bytes(100_000);
    images::oci_layout(layout.path(), std::slice::from_ref(&layer), "v1");
    let layer_path = layout
        .path()
        .join("blobs/sha256")
        .join(images::digest(&layer).trim_start_matches("sha256:"));
    let mut corrupted = layer;
    corrupted[50_000] ^= 0xff;
    std::fs::write(&layer_path, corrupted).unwrap();

    let (client, _) = recording_client(Credentials::Anonymous);
    let dest = registry.image("corrupt:v1");
    let source: ImageSource = format!("oci:{}", layout.path().display()).parse().unwrap();
    let error = push_image(&client, &source, &dest).await.unwrap_err();
    assert!(
        matches!(error, dagster_deploy_registry::Error::DigestMismatch { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains(&layer_path.display().to_string()),
        "{error}"
    );
    assert!(
        client.fetch_manifest(&dest).await.is_err(),
        "the manifest must not be pushed"
    );
}

#[tokio::test]
async fn layout_with_several_images_asks_for_a_tag() {
    let layout = tempfile::tempdir().unwrap();
    images::oci_layout(layout.path(), &[images::random_bytes(10)], "v1");
    let (client, _) = recording_client(Credentials::Anonymous);
    let source: ImageSource = format!("oci:{}:v9", layout.path().display())
        .parse()
        .unwrap();
    let dest = dagster_deploy_registry::ImageRef::parse("127.0.0.1:9/x:y").unwrap();
    let error = push_image(&client, &source, &dest)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no manifest tagged `v9`")
            && error.contains("v1")
            && error.contains("index.json"),
        "{error}"
    );
}

/// A layout's `index.json` comes from whoever produced the layout (often another CI job): a
/// digest in it must not name a file outside the layout, and nothing is read or sent.
#[tokio::test]
async fn a_layout_digest_cannot_name_a_file_outside_the_layout() {
    let registry = RegistryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    images::oci_layout(&layout, &[images::random_bytes(1_000)], "v1");
    std::fs::write(dir.path().join("secret.json"), "{\"password\":\"outside\"}").unwrap();
    let hostile = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:../../../secret.json",
            "size": 22,
            "annotations": {"org.opencontainers.image.ref.name": "v1"}
        }]
    });
    std::fs::write(layout.join("index.json"), hostile.to_string()).unwrap();
    let (client, _) = recording_client(Credentials::Anonymous);
    let source: ImageSource = format!("oci:{}", layout.display()).parse().unwrap();
    let error = push_image(&client, &source, &registry.image("team/app:v1"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            dagster_deploy_registry::Error::InvalidManifest { .. }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("digest"), "{error}");
}
