//! Push benchmark: a single-layer image of random (incompressible) data pushed to a local
//! `docker-registry`, first push and unchanged re-push, against `skopeo copy`. Each push runs
//! in a child process under `/usr/bin/time -v` so wall time and peak RSS are measured alike.
//! Size and runs: `DD_BENCH_MB` (default 200) and `DD_BENCH_RUNS` (default 3).

#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports its table on stdout"
)]

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use dagster_deploy_registry::test_support::{OciLayoutWriter, RegistryServer, random_bytes};
use dagster_deploy_registry::{
    ClientOptions, Credentials, ImageRef, ImageSource, RegistryClient, media_type, push_image,
};

/// Child mode: push SOURCE to DEST and print the digest.
fn push_child(source: &str, dest: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = RegistryClient::new(ClientOptions {
        credentials: Credentials::Anonymous,
        ..ClientOptions::default()
    })
    .unwrap();
    let source: ImageSource = source.parse().unwrap();
    let dest = ImageRef::parse(dest).unwrap();
    let report = runtime
        .block_on(push_image(&client, &source, &dest))
        .unwrap();
    println!("{}", report.digest);
}

/// Writes a layout whose single layer is a gzip stream (stored blocks) of random bytes, so
/// skopeo passes it through as already compressed, as we do.
fn write_layout(dir: &Path, megabytes: usize) {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    for _ in 0..megabytes {
        encoder.write_all(&random_bytes(1 << 20)).unwrap();
    }
    let layer = encoder.finish().unwrap();
    let layout = OciLayoutWriter::new(dir).unwrap();
    let layer_descriptor = layout.blob(media_type::OCI_LAYER_GZIP, &layer).unwrap();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [dagster_deploy_registry::sha256_digest(b"placeholder")]}});
    let config = layout
        .blob(
            media_type::OCI_CONFIG,
            &serde_json::to_vec(&config).unwrap(),
        )
        .unwrap();
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": media_type::OCI_MANIFEST,
        "config": config, "layers": [layer_descriptor]});
    let descriptor = layout
        .blob(
            media_type::OCI_MANIFEST,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
    layout.finish(&[(descriptor, "v1")]).unwrap();
}

/// Runs `program args` under `/usr/bin/time -v`; returns (seconds, peak RSS in MiB).
fn measure(program: &Path, args: &[String]) -> (f64, f64) {
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(program)
        .args(args)
        .output()
        .expect("run /usr/bin/time");
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed:\n{stderr}",
        program.display()
    );
    let kilobytes: f64 = stderr
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|value| value.trim().parse().ok())
        .expect("peak RSS in /usr/bin/time output");
    (seconds, kilobytes / 1024.0)
}

fn summary(name: &str, samples: &[(f64, f64)]) -> String {
    let mut times: Vec<f64> = samples.iter().map(|sample| sample.0).collect();
    times.sort_by(f64::total_cmp);
    let rss = samples.iter().map(|sample| sample.1).fold(0.0, f64::max);
    format!(
        "| {name:<28} | {:>8.3} | {:>8.3} | {:>8.3} | {:>9.1} |",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        rss
    )
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    if arguments.get(1).map(String::as_str) == Some("--push-child") {
        push_child(&arguments[2], &arguments[3]);
        return;
    }
    let megabytes: usize = std::env::var("DD_BENCH_MB")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(200);
    let runs: usize = std::env::var("DD_BENCH_RUNS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(3);
    let skopeo = Path::new("/usr/bin/skopeo");
    assert!(
        skopeo.exists(),
        "skopeo not found: install it with `apt-get install -y skopeo`"
    );
    let layout = tempfile::tempdir().unwrap();
    write_layout(layout.path(), megabytes);
    let source = format!("oci:{}:v1", layout.path().display());
    let ours = std::env::current_exe().unwrap();
    let (mut first, mut again, mut skopeo_first, mut skopeo_again) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // A fresh registry per tool and run: nothing to skip or mount on the first push.
        let registry = RegistryServer::start();
        let dest = format!("{}/bench/app:v1", registry.host());
        let child = |dest: &str| vec!["--push-child".to_owned(), source.clone(), dest.to_owned()];
        first.push(measure(&ours, &child(&dest)));
        again.push(measure(&ours, &child(&dest)));
        drop(registry);

        let registry = RegistryServer::start();
        let skopeo_args = vec![
            "copy".to_owned(),
            "--quiet".to_owned(),
            "--dest-tls-verify=false".to_owned(),
            source.clone(),
            format!("docker://{}/bench/app:v1", registry.host()),
        ];
        skopeo_first.push(measure(skopeo, &skopeo_args));
        skopeo_again.push(measure(skopeo, &skopeo_args));
    }
    println!("push of a {megabytes} MB single-layer image to a local docker-registry, {runs} runs");
    println!(
        "| {:<28} | {:>8} | {:>8} | {:>8} | {:>9} |",
        "case", "median s", "min s", "max s", "peak RSS MiB"
    );
    println!(
        "|{:-<30}|{:-<10}|{:-<10}|{:-<10}|{:-<11}|",
        "", "", "", "", ""
    );
    println!("{}", summary("dagster-deploy first push", &first));
    println!("{}", summary("dagster-deploy re-push", &again));
    println!("{}", summary("skopeo copy first push", &skopeo_first));
    println!("{}", summary("skopeo copy re-push", &skopeo_again));
}
