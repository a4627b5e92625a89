//! The native code-image builder against a real registry: layer contents, reproducibility,
//! platform selection, base-layer mounting and copying, and error reporting.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::Path;

use bytes::Bytes;
use dagster_deploy_registry::Error;
use dagster_deploy_registry::build::{
    CodeImageSpec, RECORD_CONFIG, build_code_image, find_config_record, push_config_record,
};
use dagster_deploy_registry::{
    ClientOptions, Credentials, ImageRef, RawManifest, RegistryClient, Secret, sha256_digest,
};
use serde_json::{Value, json};

use dagster_deploy_registry::test_support::RegistryServer;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn anonymous_client() -> RegistryClient {
    RegistryClient::new(ClientOptions {
        credentials: Credentials::Anonymous,
        ..ClientOptions::default()
    })
    .expect("client")
}

/// A gzipped tar holding one file, as a base layer; returns `(blob, diff_id)`.
fn base_layer(file_name: &str, contents: &[u8]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, file_name, contents)
        .expect("tar");
    let uncompressed = tar.into_inner().expect("tar");
    let diff_id = sha256_digest(&uncompressed);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&uncompressed).expect("gzip");
    (gzip.finish().expect("gzip"), diff_id)
}

/// Pushes a one-layer base image for `architecture` by digest; returns the manifest digest and
/// the layer digest. `docker` chooses Docker v2 media types instead of OCI.
async fn push_platform_image(
    client: &RegistryClient,
    repository: &ImageRef,
    architecture: &str,
    docker: bool,
) -> (String, String, u64) {
    let (layer, diff_id) = base_layer(&format!("etc/base-{architecture}"), architecture.as_bytes());
    let layer_digest = sha256_digest(&layer);
    client
        .upload_blob_bytes(repository, &layer_digest, Bytes::from(layer.clone()))
        .await
        .expect("upload base layer");
    let config = serde_json::to_vec(&json!({
        "architecture": architecture,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin", "PYTHONUNBUFFERED=1"],
            "Entrypoint": ["/usr/bin/tini", "--"],
            "Cmd": ["python"],
            "WorkingDir": "/"
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "base layer"}]
    }))
    .expect("config json");
    let config_digest = sha256_digest(&config);
    client
        .upload_blob_bytes(repository, &config_digest, Bytes::from(config.clone()))
        .await
        .expect("upload base config");
    let (manifest_type, config_type, layer_type) = if docker {
        (
            DOCKER_MANIFEST,
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    } else {
        (
            OCI_MANIFEST,
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    };
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "size": config.len(), "digest": config_digest},
        "layers": [{"mediaType": layer_type, "size": layer.len(), "digest": layer_digest}]
    }))
    .expect("manifest json");
    let raw = RawManifest::new(Bytes::from(manifest), manifest_type);
    let digest = client
        .push_manifest(&repository.with_digest(&raw.digest).unwrap(), &raw)
        .await
        .expect("push base manifest");
    (digest, layer_digest, raw.bytes.len() as u64)
}

/// Pushes a single-platform linux/amd64 Docker-format base image at `reference`.
async fn push_single_base(client: &RegistryClient, reference: &ImageRef) -> String {
    let (digest, layer_digest, _) = push_platform_image(client, reference, "amd64", true).await;
    let raw = client
        .fetch_manifest(&reference.with_digest(&digest).unwrap())
        .await
        .expect("fetch base");
    client
        .push_manifest(reference, &raw)
        .await
        .expect("tag base");
    layer_digest
}

/// Pushes an OCI index with linux/amd64 and linux/arm64/v8 images at `reference`; returns the
/// base layer digest of each platform.
async fn push_multi_platform_base(
    client: &RegistryClient,
    reference: &ImageRef,
) -> BTreeMap<&'static str, String> {
    let mut layers = BTreeMap::new();
    let mut descriptors = Vec::new();
    for (architecture, variant) in [("amd64", None), ("arm64", Some("v8"))] {
        let (digest, layer_digest, size) =
            push_platform_image(client, reference, architecture, false).await;
        layers.insert(architecture, layer_digest);
        let mut platform = json!({"architecture": architecture, "os": "linux"});
        if let Some(variant) = variant {
            platform["variant"] = json!(variant);
        }
        descriptors.push(
            json!({"mediaType": OCI_MANIFEST, "size": size, "digest": digest, "platform": platform}),
        );
    }
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}),
    )
    .expect("index json");
    let raw = RawManifest::new(Bytes::from(index), OCI_INDEX);
    client
        .push_manifest(reference, &raw)
        .await
        .expect("push index");
    layers
}

fn write(root: &Path, relative: &str, contents: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, contents).expect("write");
}

/// A Dagster-like project with files `.dockerignore` must drop, and a `.git` directory.
fn sample_project(root: &Path) {
    write(root, "pyproject.toml", "[project]\nname = 'analytics'\n");
    write(root, "src/analytics/__init__.py", "");
    write(root, "src/analytics/defs.py", "assets = []\n");
    write(
        root,
        "src/analytics/__pycache__/defs.cpython-312.pyc",
        "bytecode",
    );
    write(root, "tests/test_defs.py", "def test(): pass\n");
    write(root, ".venv/bin/python", "binary");
    write(root, "data/big.csv", "a,b\n");
    write(root, "data/schema.json", "{}");
    write(root, ".env", "SECRET=1");
    write(root, ".git/HEAD", "ref: refs/heads/main\n");
    write(
        root,
        ".dockerignore",
        "# local only\n.venv\n**/__pycache__\n.env\ntests/\ndata\n!data/schema.json\n",
    );
}

fn spec(base: ImageRef, context: &Path, target: ImageRef) -> CodeImageSpec {
    let mut spec = CodeImageSpec::new(base, context.to_path_buf(), target);
    spec.env = vec![("DAGSTER_HOME".to_owned(), "/app/.dagster".to_owned())];
    spec
}

/// The pushed manifest and config of `image`.
async fn fetch_image(client: &RegistryClient, image: &ImageRef) -> (RawManifest, Value, Value) {
    let raw = client.fetch_manifest(image).await.expect("fetch manifest");
    let manifest: Value = serde_json::from_slice(&raw.bytes).expect("manifest json");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config = client
        .fetch_blob(image, config_digest, 1 << 20)
        .await
        .expect("fetch config");
    let config = serde_json::from_slice(&config).expect("config json");
    (raw, manifest, config)
}

/// The paths inside a pushed gzipped tar layer.
async fn layer_paths(client: &RegistryClient, image: &ImageRef, digest: &str) -> Vec<String> {
    let blob = client
        .fetch_blob(image, digest, 16 << 20)
        .await
        .expect("fetch layer");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_ref()));
    archive
        .entries()
        .expect("entries")
        .map(|entry| {
            let mut entry = entry.expect("entry");
            let mut sink = Vec::new();
            entry.read_to_end(&mut sink).expect("read entry");
            entry.path().expect("path").to_string_lossy().into_owned()
        })
        .collect()
}

#[tokio::test]
async fn build_pushes_one_code_layer_honouring_dockerignore_and_mounts_the_base() {
    let registry = RegistryServer::start();
    let client = anonymous_client();
    let base = registry.image("base/python:3.12");
    let base_layer_digest = push_single_base(&client, &base).await;
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());

    let built = build_code_image(
        &client,
        &spec(base.clone(), project.path(), registry.image("team/app")),
    )
    .await
    .expect("build");

    // The content tag: `code-` and 12 hex digits of the content key.
    let tag = built.image.tag().expect("tag").to_owned();
    let key = tag.strip_prefix("code-").expect("content tag");
    assert!(
        key.len() == 12 && key.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{tag}"
    );
    assert!(!built.reused);
    assert_eq!(built.image.repository(), "team/app");
    assert!(built.layer_uploaded);
    assert_eq!(
        (
            built.base_layers_present,
            built.base_layers_mounted,
            built.base_layers_copied
        ),
        (0, 1, 0)
    );

    let (raw, manifest, config) = fetch_image(&client, &built.image).await;
    assert_eq!(raw.digest, built.digest);
    assert_eq!(raw.media_type, DOCKER_MANIFEST);
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["digest"], base_layer_digest.as_str());
    assert_eq!(layers[1]["digest"], built.layer_digest.as_str());
    assert_eq!(
        layers[1]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().expect("ids").len(),
        2
    );
    assert_eq!(config["config"]["WorkingDir"], "/app");
    assert_eq!(
        config["config"]["Env"],
        json!([
            "PATH=/usr/local/bin:/usr/bin",
            "PYTHONUNBUFFERED=1",
            "DAGSTER_HOME=/app/.dagster"
        ])
    );
    assert_eq!(
        config["config"]["Entrypoint"],
        json!(["/usr/bin/tini", "--"])
    );
    assert_eq!(config["config"]["Cmd"], json!(["python"]));
    assert_eq!(config["history"].as_array().expect("history").len(), 2);

    let paths = layer_paths(&client, &built.image, &built.layer_digest).await;
    assert_eq!(
        paths,
        [
            "app",
            "app/.dockerignore",
            "app/data",
            "app/data/schema.json",
            "app/pyproject.toml",
            "app/src",
            "app/src/analytics",
            "app/src/analytics/__init__.py",
            "app/src/analytics/defs.py",
        ]
    );
    assert_eq!(built.layer_entries, paths.len());
}

/// A registry holding a one-layer base image, a client, the base, and the sample project.
async fn registry_with_base() -> (RegistryServer, RegistryClient, ImageRef, tempfile::TempDir) {
    let registry = RegistryServer::start();
    let client = anonymous_client();
    let base = registry.image("base/python:3.12");
    push_single_base(&client, &base).await;
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());
    (registry, client, base, project)
}

#[tokio::test]
async fn same_inputs_give_the_same_digest_and_an_unchanged_image_is_reused_with_one_request() {
    let (registry, client, base, project) = registry_with_base().await;
    let mut spec = spec(base, project.path(), registry.image("team/app"));
    spec.source_date_epoch = Some(1_700_000_000);

    let first = build_code_image(&client, &spec).await.expect("first build");
    assert!(first.layer_uploaded && !first.reused);
    // Rewriting a file with the same content changes its mtime, which must not matter.
    write(project.path(), "src/analytics/defs.py", "assets = []\n");
    let before = registry.requests().len();
    let second = build_code_image(&client, &spec)
        .await
        .expect("second build");
    assert_eq!(second.digest, first.digest);
    assert_eq!(second.image, first.image);
    assert_eq!(second.layer_digest, first.layer_digest);
    assert_eq!(second.layer_size, first.layer_size);
    assert!(
        second.reused,
        "an unchanged image is found by its content tag"
    );
    assert!(!second.layer_uploaded);
    // The base manifest and config, then the content tag: no blob is looked at or sent, and
    // nothing is written.
    let requests = registry.requests()[before..].to_vec();
    let repository = format!("/v2/team/app/manifests/{}", first.image.tag().expect("tag"));
    assert_eq!(
        requests
            .iter()
            .filter(|request| !request.contains("/base/python/"))
            .cloned()
            .collect::<Vec<_>>(),
        [format!("GET {repository} 200")],
        "{requests:#?}"
    );

    write(
        project.path(),
        "src/analytics/defs.py",
        "assets = ['changed']\n",
    );
    let changed = build_code_image(&client, &spec)
        .await
        .expect("changed build");
    assert_ne!(changed.digest, first.digest);
    assert_ne!(changed.layer_digest, first.layer_digest);
    assert!(changed.layer_uploaded && !changed.reused);

    // A requested tag for unchanged content: one manifest PUT, the same image.
    spec.tag = Some("v1".to_owned());
    let before = registry.requests().len();
    let tagged = build_code_image(&client, &spec)
        .await
        .expect("tagged build");
    assert!(tagged.reused);
    assert_eq!(tagged.digest, changed.digest);
    assert_eq!(
        tagged.image.to_string(),
        format!("{}/team/app:v1", registry.host())
    );
    let writes: Vec<String> = registry.requests()[before..]
        .iter()
        .filter(|request| !request.starts_with("GET ") && !request.starts_with("HEAD "))
        .cloned()
        .collect();
    assert_eq!(writes, ["PUT /v2/team/app/manifests/v1 201"]);
    let (raw, _, config) = fetch_image(&client, &tagged.image).await;
    assert_eq!(raw.digest, changed.digest);
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");

    // A requested tag for new content also gets the content tag, for the next build.
    write(project.path(), "src/analytics/defs.py", "assets = [1]\n");
    spec.tag = Some("v2".to_owned());
    let fresh = build_code_image(&client, &spec).await.expect("v2");
    assert!(!fresh.reused && fresh.layer_uploaded);
    spec.tag = None;
    let again = build_code_image(&client, &spec).await.expect("content tag");
    assert!(again.reused, "the content tag was pushed beside v2");
    assert_eq!(again.digest, fresh.digest);
}

#[tokio::test]
async fn an_image_under_the_content_tag_that_differs_is_not_reused() {
    let (registry, client, base, project) = registry_with_base().await;
    let spec = spec(base.clone(), project.path(), registry.image("team/app"));
    let first = build_code_image(&client, &spec).await.expect("first build");
    // Another image of the repository ends up under the first one's content tag.
    let other_project = tempfile::tempdir().expect("tempdir");
    write(other_project.path(), "other.py", "x = 1\n");
    let other = build_code_image(
        &client,
        &self::spec(base, other_project.path(), registry.image("team/app")),
    )
    .await
    .expect("other build");
    let other_manifest = client
        .fetch_manifest(&other.image)
        .await
        .expect("other manifest");
    client
        .push_manifest(&first.image, &other_manifest)
        .await
        .expect("overwrite the content tag");
    let second = build_code_image(&client, &spec).await.expect("rebuild");
    assert!(!second.reused, "another image under the tag is not ours");
    assert_eq!(second.digest, first.digest, "a full build restores it");
    let (raw, _, _) = fetch_image(&client, &first.image).await;
    assert_eq!(raw.digest, first.digest);
}

#[tokio::test]
async fn platform_is_selected_from_a_multi_platform_base() {
    let registry = RegistryServer::start();
    let client = anonymous_client();
    let base = registry.image("base/multi:1");
    let base_layers = push_multi_platform_base(&client, &base).await;
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());
    let target = registry.image("team/app");

    for (platform, architecture) in [("linux/amd64", "amd64"), ("linux/arm64", "arm64")] {
        let mut spec = spec(base.clone(), project.path(), target.clone());
        spec.platform = platform.parse().expect("platform");
        let built = build_code_image(&client, &spec).await.expect(platform);
        let (raw, manifest, config) = fetch_image(&client, &built.image).await;
        assert_eq!(raw.media_type, OCI_MANIFEST, "{platform}");
        assert_eq!(config["architecture"], architecture, "{platform}");
        assert_eq!(
            manifest["layers"][0]["digest"],
            base_layers[architecture].as_str(),
            "{platform}"
        );
        assert_eq!(
            manifest["layers"][1]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }

    let mut spec = spec(base, project.path(), target);
    spec.platform = "linux/s390x".parse().expect("platform");
    let error = build_code_image(&client, &spec)
        .await
        .expect_err("no s390x image");
    assert!(error.is_not_found(), "{error:?}");
    let message = crate::chain(&error);
    assert!(message.contains("linux/s390x"), "{message}");
    assert!(message.contains("linux/amd64, linux/arm64/v8"), "{message}");
}

#[tokio::test]
async fn base_in_another_registry_is_streamed_across() {
    let base_registry = RegistryServer::start();
    let target_registry = RegistryServer::start();
    let client = anonymous_client();
    let base = base_registry.image("base/python:3.12");
    let base_layer_digest = push_single_base(&client, &base).await;
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());

    let target = target_registry.image("team/app");
    let built = build_code_image(&client, &spec(base, project.path(), target.clone()))
        .await
        .expect("build");
    assert_eq!(built.base_layers_copied, 1);
    assert!(
        client
            .blob_exists(&target, &base_layer_digest)
            .await
            .expect("head")
    );
}

#[tokio::test]
async fn missing_base_image_is_reported_with_its_name() {
    let registry = RegistryServer::start();
    let client = anonymous_client();
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());
    let base = registry.image("base/missing:1");

    let error = build_code_image(
        &client,
        &spec(base, project.path(), registry.image("team/app")),
    )
    .await
    .expect_err("missing base");
    assert!(matches!(error, Error::BaseImage { .. }), "{error:?}");
    assert_eq!(error.status(), Some(404), "{error:?}");
    let message = crate::chain(&error);
    assert!(
        message.contains(&format!("{}/base/missing:1", registry.host())),
        "{message}"
    );
    assert!(message.contains("404"), "{message}");
}

#[tokio::test]
async fn unauthorized_registry_is_reported_without_the_password() {
    let password = "s3cret-pa55";
    let registry = RegistryServer::start_with_login("ci", password);
    let authorized = RegistryClient::new(ClientOptions {
        credentials: Credentials::Basic {
            registries: vec![registry.host().clone()],
            username: "ci".to_owned(),
            password: Secret::new(password),
        },
        ..ClientOptions::default()
    })
    .expect("client");
    let base = registry.image("base/python:3.12");
    push_single_base(&authorized, &base).await;
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());
    let spec = spec(base, project.path(), registry.image("team/app"));

    let error = build_code_image(&anonymous_client(), &spec)
        .await
        .expect_err("no credentials");
    assert!(error.is_unauthorized(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("base/python"), "{message}");

    let wrong = RegistryClient::new(ClientOptions {
        credentials: Credentials::Basic {
            registries: vec![registry.host().clone()],
            username: "ci".to_owned(),
            password: Secret::new("wrong-password"),
        },
        ..ClientOptions::default()
    })
    .expect("client");
    let error = build_code_image(&wrong, &spec)
        .await
        .expect_err("wrong credentials");
    assert!(error.is_unauthorized(), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("wrong-password"));

    let built = build_code_image(&authorized, &spec)
        .await
        .expect("authorized build");
    assert!(built.layer_uploaded);
    assert!(!format!("{built:?}").contains(password));
}

/// A tar entry of a synthetic base layer.
enum BaseEntry {
    Dir(&'static str, u32, u64),
    File(&'static str),
    Symlink(&'static str, &'static str),
}

/// Pushes a base image whose layers hold `layers` (bottom first) at `reference`.
async fn push_layered_base(client: &RegistryClient, reference: &ImageRef, layers: &[&[BaseEntry]]) {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for entries in layers {
        let mut tar = tar::Builder::new(Vec::new());
        for entry in *entries {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(1_650_000_000);
            header.set_size(0);
            match entry {
                BaseEntry::Dir(name, mode, owner) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_uid(*owner);
                    header.set_gid(*owner);
                    tar.append_data(&mut header, name, std::io::empty())
                        .expect("tar");
                }
                BaseEntry::File(name) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    tar.append_data(&mut header, name, std::io::empty())
                        .expect("tar");
                }
                BaseEntry::Symlink(name, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    tar.append_link(&mut header, name, target).expect("tar");
                }
            }
        }
        let uncompressed = tar.into_inner().expect("tar");
        diff_ids.push(sha256_digest(&uncompressed));
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&uncompressed).expect("gzip");
        let blob = gzip.finish().expect("gzip");
        let digest = sha256_digest(&blob);
        client
            .upload_blob_bytes(reference, &digest, Bytes::from(blob.clone()))
            .await
            .expect("upload layer");
        descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": blob.len(), "digest": digest}));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config");
    let config_digest = sha256_digest(&config);
    client
        .upload_blob_bytes(reference, &config_digest, Bytes::from(config.clone()))
        .await
        .expect("upload config");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
        "layers": descriptors,
    }))
    .expect("manifest");
    client
        .push_manifest(
            reference,
            &RawManifest::new(Bytes::from(manifest), OCI_MANIFEST),
        )
        .await
        .expect("push base");
}

/// `(path, mode, uid, mtime)` of each entry of the code layer (the last layer) of `image`.
async fn code_layer_entries(
    client: &RegistryClient,
    image: &ImageRef,
) -> Vec<(String, u32, u64, u64)> {
    let (_, manifest, _) = fetch_image(client, image).await;
    let digest = manifest["layers"]
        .as_array()
        .and_then(|layers| layers.last())
        .and_then(|layer| layer["digest"].as_str())
        .expect("a code layer")
        .to_owned();
    let blob = client
        .fetch_blob(image, &digest, 1 << 24)
        .await
        .expect("fetch layer");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
    archive
        .entries()
        .expect("entries")
        .map(|entry| {
            let entry = entry.expect("entry");
            let header = entry.header();
            (
                entry.path().expect("path").display().to_string(),
                header.mode().expect("mode"),
                header.uid().expect("uid"),
                header.mtime().expect("mtime"),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_workdirs_parents_repeat_the_base_metadata_through_layers_and_whiteouts() {
    let registry = RegistryServer::start();
    let client = anonymous_client();
    let base = registry.image("base/layered:1");
    push_layered_base(
        &client,
        &base,
        &[
            &[
                BaseEntry::Dir("./", 0o755, 0),
                BaseEntry::Dir("./home/", 0o755, 0),
                BaseEntry::Dir("./home/u/", 0o700, 1000),
                BaseEntry::Dir("./srv/", 0o750, 0),
                BaseEntry::Dir("./var/", 0o755, 0),
                BaseEntry::Symlink("./var/run", "/run"),
                BaseEntry::Dir("./var/tmp/", 0o1777, 0),
            ],
            // A later layer changes /var's mode and deletes /srv.
            &[BaseEntry::Dir("var/", 0o775, 0), BaseEntry::File(".wh.srv")],
        ],
    )
    .await;
    let project = tempfile::tempdir().expect("project");
    write(project.path(), "main.py", "print('hi')\n");
    let build = |workdir: &str, repository: &str| {
        let mut spec = spec(
            base.clone(),
            project.path(),
            registry.image(&format!("{repository}:x")),
        );
        spec.workdir = workdir.to_owned();
        spec.source_date_epoch = Some(7);
        spec
    };

    let built = build_code_image(&client, &build("/var/tmp/code", "code/tmp"))
        .await
        .expect("build under /var/tmp");
    assert_eq!(
        code_layer_entries(&client, &built.image).await,
        [
            ("var".to_owned(), 0o775, 0, 1_650_000_000),
            ("var/tmp".to_owned(), 0o1777, 0, 1_650_000_000),
            ("var/tmp/code".to_owned(), 0o755, 0, 7),
            ("var/tmp/code/main.py".to_owned(), 0o644, 0, 7),
        ]
    );
    let built = build_code_image(&client, &build("/home/u/app", "code/home"))
        .await
        .expect("build under /home/u");
    let entries = code_layer_entries(&client, &built.image).await;
    assert_eq!(
        entries[1],
        ("home/u".to_owned(), 0o700, 1000, 1_650_000_000)
    );
    // The base deleted /srv, so the layer creates it afresh.
    let built = build_code_image(&client, &build("/srv/app", "code/srv"))
        .await
        .expect("build under a deleted directory");
    let entries = code_layer_entries(&client, &built.image).await;
    assert_eq!(entries[0], ("srv".to_owned(), 0o755, 0, 7));

    let error = build_code_image(&client, &build("/var/run/app", "code/run"))
        .await
        .expect_err("a symlinked parent");
    assert!(
        matches!(error, Error::WorkdirParentNotDirectory { .. })
            && error.to_string().contains("/var/run is a symlink")
            && error.help().is_some_and(|help| !help.contains("--")),
        "{error}"
    );
}

#[tokio::test]
async fn a_config_record_reads_back_from_the_real_registry_and_other_tags_are_not_records() {
    let (registry, client, base, _project) = registry_with_base().await;
    let target = registry.image("team/app");
    let facts =
        json!({"format": "test/1", "interpreter": "/usr/bin/python3", "version": [3, 11, 2]});
    assert_eq!(
        find_config_record(&client, &target, "facts-1")
            .await
            .unwrap(),
        None,
        "no tag, no record"
    );
    push_config_record(&client, &target, "facts-1", &facts)
        .await
        .expect("the real registry accepts a config record");
    let before = registry.requests().len();
    assert_eq!(
        find_config_record(&client, &target, "facts-1")
            .await
            .unwrap(),
        Some(facts)
    );
    // Finding it costs the manifest and the config, nothing else.
    let requests: Vec<String> = registry.requests()[before..]
        .iter()
        .filter(|line| !line.starts_with("GET /v2/ "))
        .cloned()
        .collect();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(
        requests[0].starts_with("GET /v2/team/app/manifests/facts-1 200"),
        "{requests:#?}"
    );
    assert!(
        requests[1].starts_with("GET /v2/team/app/blobs/sha256:"),
        "{requests:#?}"
    );

    // The manifest is an OCI artifact: the caller's JSON as config, the empty descriptor as its
    // one layer.
    let manifest: Value = serde_json::from_slice(
        &client
            .fetch_manifest(&target.with_tag("facts-1").unwrap())
            .await
            .unwrap()
            .bytes,
    )
    .unwrap();
    assert_eq!(manifest["config"]["mediaType"], json!(RECORD_CONFIG));
    assert_eq!(
        manifest["layers"],
        json!([{
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha256_digest(b"{}"),
            "size": 2,
        }])
    );

    // An image under a tag is not a config record.
    assert_eq!(
        find_config_record(&client, &base, "3.12").await.unwrap(),
        None
    );
}
