//! Test images written by the tests themselves: OCI layouts with random layers, multi-platform
//! indexes, OCI archives and `docker save` archives. Shared with the bench.

#![allow(dead_code, reason = "the bench uses only part of this module")]

use std::io::Write as _;
use std::path::Path;

use serde_json::json;

pub(crate) use dagster_deploy_registry::sha256_digest as digest;
use dagster_deploy_registry::test_support::OciLayoutWriter;
pub(crate) use dagster_deploy_registry::test_support::random_bytes;

/// Writes `bytes` as a blob of the layout at `dir`; returns its descriptor.
pub(crate) fn write_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    OciLayoutWriter::new(dir)
        .unwrap()
        .blob(media_type, bytes)
        .unwrap()
}

/// Writes a random-layered image (config + manifest blobs) for `architecture`; returns the
/// manifest descriptor.
pub(crate) fn write_image(dir: &Path, layers: &[Vec<u8>], architecture: &str) -> serde_json::Value {
    OciLayoutWriter::new(dir)
        .unwrap()
        .image(layers, architecture)
        .unwrap()
}

fn write_index_json(dir: &Path, descriptor: serde_json::Value, tag: &str) {
    OciLayoutWriter::new(dir)
        .unwrap()
        .finish(&[(descriptor, tag)])
        .unwrap();
}

/// Writes a single-platform OCI layout tagged `tag`; returns the manifest digest.
pub(crate) fn oci_layout(dir: &Path, layers: &[Vec<u8>], tag: &str) -> String {
    dagster_deploy_registry::test_support::write_oci_layout(dir, layers, tag).unwrap()
}

/// Writes a two-platform OCI layout (sharing `shared` as first layer) tagged `tag`; returns
/// the index digest.
pub(crate) fn oci_layout_multi_platform(dir: &Path, shared: &[u8], tag: &str) -> String {
    let amd64 = write_image(dir, &[shared.to_vec(), random_bytes(10_000)], "amd64");
    let arm64 = write_image(dir, &[shared.to_vec(), random_bytes(20_000)], "arm64");
    let index = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd64, arm64],
    }))
    .unwrap();
    let descriptor = write_blob(dir, "application/vnd.oci.image.index.v1+json", &index);
    let index_digest = descriptor["digest"].as_str().unwrap().to_owned();
    write_index_json(dir, descriptor, tag);
    index_digest
}

/// Tars the directory `dir` into `archive` (uncompressed), as an `oci-archive`.
pub(crate) fn tar_dir(dir: &Path, archive: &Path) {
    let mut builder = tar::Builder::new(std::fs::File::create(archive).unwrap());
    builder.append_dir_all(".", dir).unwrap();
    builder.finish().unwrap();
}

fn append(builder: &mut tar::Builder<std::fs::File>, name: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, bytes).unwrap();
}

/// Writes a `docker save` archive (legacy layout, with a symlinked duplicate layer directory);
/// returns the config digest.
pub(crate) fn docker_archive(archive: &Path, layers: &[Vec<u8>]) -> String {
    let diff_ids: Vec<String> = layers.iter().map(|layer| digest(layer)).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = digest(&config);
    let config_name = format!("{}.json", config_digest.trim_start_matches("sha256:"));
    let mut builder = tar::Builder::new(std::fs::File::create(archive).unwrap());
    let mut layer_names = Vec::new();
    for (index, layer) in layers.iter().enumerate() {
        let name = format!("layer{index}/layer.tar");
        append(&mut builder, &name, layer);
        layer_names.push(name);
    }
    // `docker save` writes a symlink when two image layers have the same content.
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder
        .append_link(&mut header, "alias/layer.tar", "../layer0/layer.tar")
        .unwrap();
    layer_names[0] = "alias/layer.tar".to_owned();
    append(&mut builder, &config_name, &config);
    let manifest = json!([{"Config": config_name, "RepoTags": ["app:v1"], "Layers": layer_names}]);
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    builder.into_inner().unwrap().flush().unwrap();
    config_digest
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Writes a `docker save` archive as the containerd image store writes it without an
/// `index.json`: gzip layers stored as `blobs/sha256/<digest of the gzip>`, a config whose
/// diff_ids are the uncompressed digests, and `RepoTags`. Returns the gzip layer digests.
pub(crate) fn docker_archive_gzip(
    archive: &Path,
    layers: &[Vec<u8>],
    repo_tags: &[&str],
) -> Vec<String> {
    let diff_ids: Vec<String> = layers.iter().map(|layer| digest(layer)).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let mut builder = tar::Builder::new(std::fs::File::create(archive).unwrap());
    let mut names = Vec::new();
    let mut digests = Vec::new();
    for layer in layers {
        let compressed = gzip(layer);
        let layer_digest = digest(&compressed);
        let name = format!(
            "blobs/sha256/{}",
            layer_digest.trim_start_matches("sha256:")
        );
        append(&mut builder, &name, &compressed);
        names.push(name);
        digests.push(layer_digest);
    }
    let config_name = format!(
        "blobs/sha256/{}",
        digest(&config).trim_start_matches("sha256:")
    );
    append(&mut builder, &config_name, &config);
    let manifest = json!([{"Config": config_name, "RepoTags": repo_tags, "Layers": names}]);
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    builder.into_inner().unwrap().flush().unwrap();
    digests
}

/// Writes what Docker 25+ `docker save` writes for a two-platform image of which it holds only
/// linux/amd64: an OCI layout whose index lists linux/arm64 too (without its blobs), plus the
/// legacy `manifest.json`. Returns the amd64 manifest's digest.
pub(crate) fn docker_save_partial_index(archive: &Path, image_name: &str) -> String {
    let layout = tempfile::tempdir().unwrap();
    let dir = layout.path();
    let amd64 = write_image(dir, &[gzip(&random_bytes(50_000))], "amd64");
    let arm64 = write_image(dir, &[gzip(&random_bytes(60_000))], "arm64");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd64, arm64],
    }))
    .unwrap();
    let mut descriptor = write_blob(dir, "application/vnd.oci.image.index.v1+json", &index);
    // Docker keeps only the platform it pulled: the arm64 manifest, config and layer go.
    let arm64_manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.join("blobs/sha256").join(
                arm64["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:"),
            ),
        )
        .unwrap(),
    )
    .unwrap();
    for blob in std::iter::once(&arm64["digest"])
        .chain(std::iter::once(&arm64_manifest["config"]["digest"]))
        .chain(
            arm64_manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|layer| &layer["digest"]),
        )
    {
        std::fs::remove_file(
            dir.join("blobs/sha256")
                .join(blob.as_str().unwrap().trim_start_matches("sha256:")),
        )
        .unwrap();
    }
    descriptor["annotations"] = json!({
        "io.containerd.image.name": image_name,
        "org.opencontainers.image.ref.name": image_name.rsplit_once(':').unwrap().1,
    });
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [descriptor]})).unwrap(),
    )
    .unwrap();
    let amd64_manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.join("blobs/sha256").join(
                amd64["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:"),
            ),
        )
        .unwrap(),
    )
    .unwrap();
    let listing = json!([{
        "Config": format!("blobs/sha256/{}", amd64_manifest["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:")),
        "RepoTags": [image_name],
        "Layers": amd64_manifest["layers"].as_array().unwrap().iter().map(|layer| format!("blobs/sha256/{}", layer["digest"].as_str().unwrap().trim_start_matches("sha256:"))).collect::<Vec<_>>(),
    }]);
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&listing).unwrap(),
    )
    .unwrap();
    tar_dir(dir, archive);
    amd64["digest"].as_str().unwrap().to_owned()
}
