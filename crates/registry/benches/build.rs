//! Benchmark of the native builder: rebuild and push a code-only change of a 2,000-file, 50 MB
//! project onto a 200 MB base in the same local registry, against `tar czf` of the same
//! directory (the floor) in the same run. Prints a table; target: under 2x the floor.
//!
//! Run with `cargo bench -p dagster-deploy-registry --bench build`.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dagster_deploy_registry::build::{CodeImageSpec, build_code_image};
use dagster_deploy_registry::media_type::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use dagster_deploy_registry::{
    ClientOptions, Credentials, RawManifest, RegistryClient, sha256_digest,
};
use rand::{Rng, SeedableRng};
use serde_json::json;

const FILES: usize = 2_000;
const PROJECT_BYTES: usize = 50 * 1024 * 1024;
const BASE_LAYERS: usize = 4;
const BASE_LAYER_BYTES: usize = 50 * 1024 * 1024;
const RUNS: usize = 5;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let registry = dagster_deploy_registry::test_support::RegistryServer::start();
    let client = RegistryClient::new(ClientOptions {
        credentials: Credentials::Anonymous,
        ..ClientOptions::default()
    })
    .expect("client");
    let work = tempfile::tempdir().expect("tempdir");
    let base = registry.image("base/python:3.12");
    push_base(&client, &base, work.path()).await;
    let project = work.path().join("project");
    write_project(&project);

    let spec = CodeImageSpec::new(base, project.clone(), registry.image("team/app"));
    let started = Instant::now();
    let first = build_code_image(&client, &spec).await.expect("first build");
    let first_time = started.elapsed();
    assert_eq!(first.base_layers_mounted, BASE_LAYERS);

    let mut rebuilds = Vec::new();
    let mut floors = Vec::new();
    for run in 0..RUNS {
        let changed = project.join("pkg_000/module_0000.py");
        std::fs::write(&changed, format!("VERSION = {run}\n")).expect("change a file");
        let started = Instant::now();
        let built = build_code_image(&client, &spec).await.expect("rebuild");
        rebuilds.push(started.elapsed());
        assert!(built.layer_uploaded && built.base_layers_present == BASE_LAYERS);

        let archive = work.path().join("floor.tar.gz");
        let started = Instant::now();
        let status = Command::new("tar")
            .arg("czf")
            .arg(&archive)
            .arg("-C")
            .arg(&project)
            .arg(".")
            .status()
            .expect("run tar");
        floors.push(started.elapsed());
        assert!(status.success(), "tar czf failed");
    }
    let rebuild = median(&mut rebuilds);
    let floor = median(&mut floors);
    println!(
        "native build: {FILES} files / {} MB project on a {} MB base, {RUNS} runs",
        PROJECT_BYTES >> 20,
        (BASE_LAYERS * BASE_LAYER_BYTES) >> 20
    );
    println!("| case | median | min | max |");
    println!("|---|---|---|---|");
    println!(
        "| first build + push (base mounted) | {:.3} s | | |",
        first_time.as_secs_f64()
    );
    row("rebuild + push, one file changed", rebuild, &rebuilds);
    row("tar czf (floor)", floor, &floors);
    println!(
        "ratio rebuild / floor: {:.2}x (target < 2x)",
        rebuild.as_secs_f64() / floor.as_secs_f64()
    );
}

fn row(name: &str, median: Duration, samples: &[Duration]) {
    let min = samples.iter().min().copied().unwrap_or_default();
    let max = samples.iter().max().copied().unwrap_or_default();
    println!(
        "| {name} | {:.3} s | {:.3} s | {:.3} s |",
        median.as_secs_f64(),
        min.as_secs_f64(),
        max.as_secs_f64()
    );
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A Python-like project: mostly compressible source text plus some binary assets.
fn write_project(root: &Path) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let per_file = PROJECT_BYTES / FILES;
    for index in 0..FILES {
        let dir = root.join(format!("pkg_{:03}", index / 100));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut file =
            std::fs::File::create(dir.join(format!("module_{index:04}.py"))).expect("create");
        let mut written = 0;
        if index % 10 == 0 {
            let mut noise = vec![0u8; per_file];
            rng.fill(noise.as_mut_slice());
            file.write_all(&noise).expect("write");
            continue;
        }
        while written < per_file {
            let line = format!(
                "def function_{}(value_{}: int) -> int:\n    return value_{} * {} + {}\n",
                rng.random::<u32>(),
                rng.random::<u16>(),
                rng.random::<u16>(),
                rng.random::<u16>(),
                rng.random::<u32>()
            );
            file.write_all(line.as_bytes()).expect("write");
            written += line.len();
        }
    }
}

/// Pushes a base image of `BASE_LAYERS` random (incompressible) layers, streamed from disk.
async fn push_base(client: &RegistryClient, base: &dagster_deploy_registry::ImageRef, dir: &Path) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in 0..BASE_LAYERS {
        let mut bytes = vec![0u8; BASE_LAYER_BYTES];
        rng.fill(bytes.as_mut_slice());
        let digest = sha256_digest(&bytes);
        let path = dir.join(format!("base-layer-{layer}"));
        std::fs::write(&path, &bytes).expect("write base layer");
        client
            .upload_blob_file(base, &digest, bytes.len() as u64, &path)
            .await
            .expect("upload base layer");
        descriptors
            .push(json!({"mediaType": OCI_LAYER_GZIP, "size": bytes.len(), "digest": digest}));
        // The registry does not look inside layers, so any distinct digest serves as diff_id.
        diff_ids.push(digest);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["python"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config");
    let config_digest = sha256_digest(&config);
    let config_size = config.len();
    client
        .upload_blob_bytes(base, &config_digest, Bytes::from(config))
        .await
        .expect("upload config");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": config_size, "digest": config_digest},
        "layers": descriptors,
    }))
    .expect("manifest");
    let raw = RawManifest::new(Bytes::from(manifest), OCI_MANIFEST);
    client.push_manifest(base, &raw).await.expect("push base");
}
